//! How the agent's gRPC clients (the uplink and enrollment) reach the
//! collector: a TCP connection of their own or a tunnel through an HTTP
//! proxy with CONNECT (TLS runs inside it, end to end with the collector);
//! the socket options and timeouts both use.

use hyper_util::rt::TokioIo;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic::transport::{ClientTlsConfig, Endpoint, Uri};

/// Longest a TCP connect, and then a TLS handshake, may take: a collector
/// across a partition, or a peer that accepts and says nothing, must not
/// hold the uplink.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The HTTP/2 pings that find a connection gone silent (a NAT that forgot
/// it, a collector host that vanished): one after this much quiet...
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// ...and the connection is dropped when its answer takes longer than this.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest what the agent has sent may go unacknowledged by the peer's TCP
/// before the kernel gives the connection up (TCP_USER_TIMEOUT). The pings
/// cannot do this when the socket's send buffer is full, as it is when a
/// partition begins during a backlog's drain: a ping's timer starts when
/// the ping is written, and it never is. The same 20 s as the pings'
/// answer.
pub const UNACKED_TIMEOUT: Duration = KEEPALIVE_TIMEOUT;

/// The gRPC endpoint both clients use: `tls` with its handshake bounded,
/// the connect bound and the keepalive pings. Connect it with a [`Connect`].
pub fn endpoint(url: &str, tls: ClientTlsConfig) -> Result<Endpoint, tonic::transport::Error> {
    Ok(Endpoint::from_shared(url.to_string())?
        .tls_config(tls.timeout(CONNECT_TIMEOUT))?
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT))
}

#[derive(Clone)]
pub struct Connect {
    proxy: Option<Proxy>,
    unacked_timeout: Duration,
}

#[derive(Clone)]
struct Proxy {
    /// HOST:PORT
    addr: String,
    /// `Proxy-Authorization` value for Basic authentication.
    authorization: Option<String>,
}

impl Connect {
    /// Straight to the address in the URI, or through `proxy`:
    /// `http://[USER:PASSWORD@]HOST:PORT`; user and password may be
    /// percent-encoded.
    pub fn new(proxy: Option<&str>) -> Connect {
        Connect {
            proxy: proxy.map(Proxy::new),
            unacked_timeout: UNACKED_TIMEOUT,
        }
    }

    /// Another bound than [`UNACKED_TIMEOUT`] on unacknowledged data.
    pub fn unacked_timeout(mut self, d: Duration) -> Connect {
        self.unacked_timeout = d;
        self
    }
}

impl Proxy {
    fn new(url: &str) -> Proxy {
        use base64::Engine as _;
        let p = url.trim_start_matches("http://").trim_end_matches('/');
        let (auth, host) = match p.rsplit_once('@') {
            Some((a, h)) => (Some(a), h),
            None => (None, p),
        };
        let authorization = auth.map(|a| {
            let decoded = percent_encoding::percent_decode_str(a).decode_utf8_lossy();
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(decoded.as_bytes())
            )
        });
        Proxy {
            addr: host.to_string(),
            authorization,
        }
    }
}

/// The options every connection to the collector (or its proxy) gets:
/// no Nagle delay (gRPC's small frames), and the bound on unacknowledged
/// data.
fn tune(s: &TcpStream, unacked_timeout: Duration) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    socket2::SockRef::from(s).set_tcp_user_timeout(Some(unacked_timeout))
}

fn err(msg: String) -> std::io::Error {
    std::io::Error::other(msg)
}

impl tower::Service<Uri> for Connect {
    type Response = TokioIo<TcpStream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connect = self.clone();
        Box::pin(async move { connect.open(&uri).await.map(TokioIo::new) })
    }
}

impl Connect {
    /// A TCP connection to the host and port in `uri`, straight or through
    /// the tunnel, with its options set.
    pub async fn open(&self, uri: &Uri) -> std::io::Result<TcpStream> {
        let host = uri.host().ok_or_else(|| err(format!("no host in {uri}")))?;
        let port = uri.port_u16().unwrap_or(443);
        match &self.proxy {
            None => {
                let s = TcpStream::connect((host.trim_matches(['[', ']']), port)).await?;
                tune(&s, self.unacked_timeout)?;
                Ok(s)
            }
            Some(proxy) => {
                let target = if host.contains(':') && !host.starts_with('[') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                };
                let mut s = TcpStream::connect(&proxy.addr)
                    .await
                    .map_err(|e| err(format!("cannot reach the proxy {}: {e}", proxy.addr)))?;
                tune(&s, self.unacked_timeout)?;
                proxy.tunnel(&mut s, &target).await?;
                Ok(s)
            }
        }
    }
}

impl Proxy {
    /// Asks the proxy for a tunnel to `target` (HOST:PORT) on `s`.
    async fn tunnel(&self, s: &mut TcpStream, target: &str) -> std::io::Result<()> {
        let proxy = &self.addr;
        let auth = self
            .authorization
            .as_ref()
            .map(|a| format!("Proxy-Authorization: {a}\r\n"))
            .unwrap_or_default();
        s.write_all(
            format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{auth}\r\n").as_bytes(),
        )
        .await?;
        // Read the proxy's answer byte by byte: nothing past its end may be
        // taken from the tunnel.
        let mut head = Vec::with_capacity(128);
        while !head.ends_with(b"\r\n\r\n") {
            if head.len() > 8192 {
                return Err(err(format!(
                    "proxy {proxy} sent an over-long answer to CONNECT"
                )));
            }
            let b = s
                .read_u8()
                .await
                .map_err(|e| err(format!("proxy {proxy} closed during CONNECT: {e}")))?;
            head.push(b);
        }
        let status_line = String::from_utf8_lossy(&head)
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        let code = status_line.split_whitespace().nth(1);
        if code.is_some_and(|c| c.starts_with('2')) {
            return Ok(());
        }
        let hint = match (code, &self.authorization) {
            (Some("407"), None) => "; the proxy wants a user and password: use http://USER:PASSWORD@HOST:PORT in collector.proxy",
            (Some("407"), Some(_)) => "; the proxy refused the user and password in collector.proxy",
            _ => "",
        };
        Err(err(format!(
            "proxy {proxy} refused CONNECT {target}: {status_line}{hint}"
        )))
    }
}
