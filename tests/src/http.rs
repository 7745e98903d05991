//! A minimal HTTP/1.1 client for API tests over real sockets (one request
//! per connection), so the tests see exactly what goes over the wire.

use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl Reply {
    /// The value of a response header (the first of that name).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The stable error code of a JSON error reply.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// A request without credentials.
pub async fn request(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> Reply {
    request_as(addr, None, method, path, body).await
}

/// A request with `Authorization: Bearer <token>` when a token is given.
pub async fn request_as(
    addr: SocketAddr,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Reply {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default();
    request_with(addr, method, path, &headers, body).await
}

/// A request with the given extra headers (a cookie, a CSRF token).
pub async fn request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let body = body.unwrap_or("");
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("send");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(buf.len());
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let rest = buf.get(split + 4..).unwrap_or_default();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Reply {
        status,
        headers: head,
        body: String::from_utf8_lossy(&body).to_string(),
    }
}

fn dechunk(mut s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = s.windows(2).position(|w| w == b"\r\n") {
        let n = std::str::from_utf8(&s[..eol])
            .ok()
            .and_then(|l| usize::from_str_radix(l.trim(), 16).ok())
            .unwrap_or(0);
        let rest = &s[eol + 2..];
        if n == 0 || rest.len() < n {
            break;
        }
        out.extend_from_slice(&rest[..n]);
        s = rest[n..].strip_prefix(b"\r\n").unwrap_or(&rest[n..]);
    }
    out
}

pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, None).await
}

/// A caller of the API: an address and an API token.
#[derive(Debug, Clone)]
pub struct Api {
    pub addr: SocketAddr,
    pub token: String,
}

impl Api {
    pub fn new(addr: SocketAddr, token: impl Into<String>) -> Api {
        Api {
            addr,
            token: token.into(),
        }
    }

    /// The operator `admin` of a collector started on `data_dir`, by the
    /// token the first start wrote there.
    pub fn operator(addr: SocketAddr, data_dir: &std::path::Path) -> Api {
        let file = data_dir.join(meterlink_collector::server::OPERATOR_TOKEN_FILE);
        let token =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        Api::new(addr, token.trim())
    }

    pub async fn get(&self, path: &str) -> Reply {
        request_as(self.addr, Some(&self.token), "GET", path, None).await
    }

    pub async fn request(&self, method: &str, path: &str, body: Option<&str>) -> Reply {
        request_as(self.addr, Some(&self.token), method, path, body).await
    }

    pub async fn send(&self, method: &str, path: &str, body: serde_json::Value) -> Reply {
        self.request(method, path, Some(&body.to_string())).await
    }
}

/// Fails the test, showing the body, unless the reply has this status.
pub fn expect(r: &Reply, status: u16) {
    assert_eq!(r.status, status, "{}", r.body);
}

/// Makes (or replaces) user `id` of `account` with `role` through the
/// operator's API, and returns an API client holding a new token of theirs.
pub async fn user(op: &Api, id: &str, role: &str, account: &str) -> Api {
    let r = op
        .send(
            "PUT",
            &format!("/api/v1/users/{id}"),
            serde_json::json!({"id": id, "name": id, "role": role, "account": account}),
        )
        .await;
    expect(&r, 200);
    let t = op
        .send(
            "POST",
            &format!("/api/v1/users/{id}/tokens"),
            serde_json::json!({}),
        )
        .await;
    expect(&t, 201);
    Api::new(op.addr, t.json()["token"].as_str().unwrap_or_default())
}
