//! Tunnelling through an HTTP proxy with CONNECT; TLS runs inside the tunnel,
//! end to end with the collector. Also the timeouts both gRPC clients (the
//! uplink and enrollment) connect with.

use hyper_util::rt::TokioIo;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic::transport::Uri;

/// Longest a TCP connect, and then a TLS handshake, may take: a collector
/// across a partition, or a peer that accepts and says nothing, must not
/// hold the uplink.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// The HTTP/2 pings that find a connection gone silent (a NAT that forgot
/// it, a collector host that vanished): one after this much quiet...
pub const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);
/// ...and the connection is dropped when its answer takes longer than this.
pub const KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

#[derive(Clone)]
pub struct Connect {
    proxy: String,
    /// `Proxy-Authorization` value for Basic authentication.
    authorization: Option<String>,
}

impl Connect {
    /// `url` is `http://[USER:PASSWORD@]HOST:PORT`; user and password
    /// may be percent-encoded.
    pub fn new(url: &str) -> Connect {
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
        Connect {
            proxy: host.to_string(),
            authorization,
        }
    }
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
        let proxy = self.proxy.clone();
        let authorization = self.authorization.clone();
        Box::pin(async move {
            let authorization = authorization.as_deref();
            let host = uri.host().ok_or_else(|| err(format!("no host in {uri}")))?;
            let port = uri.port_u16().unwrap_or(443);
            let target = if host.contains(':') && !host.starts_with('[') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            let mut s = TcpStream::connect(&proxy)
                .await
                .map_err(|e| err(format!("cannot reach the proxy {proxy}: {e}")))?;
            let auth = authorization
                .map(|a| format!("Proxy-Authorization: {a}\r\n"))
                .unwrap_or_default();
            s.write_all(
                format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{auth}\r\n").as_bytes(),
            )
            .await?;
            // Read the proxy's answer byte by byte: nothing past its end
            // may be taken from the tunnel.
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
            let ok = status_line
                .split_whitespace()
                .nth(1)
                .is_some_and(|c| c.starts_with('2'));
            if !ok {
                let hint = match (status_line.split_whitespace().nth(1), &authorization) {
                    (Some("407"), None) => "; the proxy wants a user and password: use http://USER:PASSWORD@HOST:PORT in collector.proxy",
                    (Some("407"), Some(_)) => "; the proxy refused the user and password in collector.proxy",
                    _ => "",
                };
                return Err(err(format!(
                    "proxy {proxy} refused CONNECT {target}: {status_line}{hint}"
                )));
            }
            Ok(TokioIo::new(s))
        })
    }
}
