//! How the agent reaches the collector: the uplink through an HTTP proxy
//! (CONNECT), as agents behind a corporate proxy do, TLS end to end inside
//! the tunnel; and the kernel's bound on data the peer does not acknowledge,
//! which ends a connection whose writes are blocked.

use meterlink_agent::buffer::{Buffer, SledBuffer};
use meterlink_agent::uplink::{self, UplinkConfig, UplinkStatus};
use meterlink_proto::v1::observation::Body;
use meterlink_proto::v1::{CounterValue, MeterReading, Observation};
use meterlink_tests::stack::{start_collector, LocalCollector};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A minimal CONNECT proxy on loopback; records what it was asked for.
/// With `credentials`, it answers 407 unless the request carries
/// `Proxy-Authorization: Basic` with exactly those.
async fn proxy(credentials: Option<&str>) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    use base64::Engine as _;
    let want = credentials.map(|c| {
        format!(
            "proxy-authorization: basic {}",
            base64::engine::general_purpose::STANDARD.encode(c)
        )
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((c, _)) = l.accept().await {
            let seen = s2.clone();
            let want = want.clone();
            tokio::spawn(async move {
                let mut r = BufReader::new(c);
                let mut line = String::new();
                if r.read_line(&mut line).await.is_err() {
                    return;
                }
                seen.lock().unwrap().push(line.trim().to_string());
                let mut authorized = want.is_none();
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).await.unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    // The header name is case-insensitive; the base64 is not.
                    let (name, value) = h.trim().split_once(':').unwrap_or(("", ""));
                    let got = format!(
                        "{}: basic {}",
                        name.to_ascii_lowercase(),
                        value.trim().trim_start_matches("Basic ")
                    );
                    if want.as_deref() == Some(got.as_str()) {
                        authorized = true;
                    }
                }
                let mut c = r.into_inner();
                if !authorized {
                    let _ = c
                        .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"t\"\r\n\r\n")
                        .await;
                    return;
                }
                let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let Ok(mut up) = tokio::net::TcpStream::connect(target).await else {
                    return;
                };
                let _ = c
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await;
                let _ = tokio::io::copy_bidirectional(&mut c, &mut up).await;
            });
        }
    });
    (addr, seen)
}

fn meter(i: u64) -> Observation {
    Observation {
        seq: 0,
        taken_at_ms: 1_700_000_000_000,
        device_address: "127.0.0.1:161".into(),
        serial: format!("PROXY{i}"),
        body: Some(Body::Meter(MeterReading {
            counters: vec![CounterValue {
                id: "canon.101".into(),
                value: 10 + i,
                ..Default::default()
            }],
        })),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uplink_through_a_connect_proxy() {
    let tmp = tempfile::tempdir().unwrap();
    let LocalCollector {
        running: r,
        pki,
        agent_cert: cert,
        ..
    } = start_collector(
        &tmp.path().join("c"),
        "",
        "agent-proxy",
        &tmp.path().join("certs"),
    )
    .await;
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap();

    // (proxy wants, agent's proxy userinfo, drains?)
    let cases: [(Option<&str>, &str, bool); 4] = [
        (None, "", true),
        // Special characters percent-encoded in the URL, sent decoded.
        (Some("meter:p@ss:w rd"), "meter:p%40ss%3Aw%20rd@", true),
        (Some("meter:p@ss:w rd"), "", false),
        (Some("meter:p@ss:w rd"), "meter:wrong@", false),
    ];
    for (i, (wants, userinfo, drains)) in cases.into_iter().enumerate() {
        let refuse = !drains;
        let (paddr, seen) = proxy(wants).await;
        let (buf, _) = SledBuffer::open(&tmp.path().join(format!("buf-{i}")), u64::MAX).unwrap();
        buf.append((0..5).map(meter).collect()).unwrap();
        let buf = Arc::new(buf);
        let mut up = UplinkConfig::new(
            &format!("https://{}", r.grpc_addr),
            "localhost",
            read(&pki.ca_cert()),
            read(&cert.cert),
            read(&cert.key),
            "agent-proxy",
        );
        up.proxy = Some(format!("http://{userinfo}{paddr}"));
        up.backoff_min = Duration::from_millis(50);
        up.backoff_max = Duration::from_millis(200);
        let status = Arc::new(UplinkStatus::default());
        let (stop, rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(uplink::run(
            up,
            buf.clone() as Arc<dyn Buffer>,
            Arc::new(tokio::sync::Notify::new()),
            status.clone(),
            rx,
        ));
        let deadline = Instant::now() + Duration::from_secs(20);
        if refuse {
            // The refusal is reported, retried, and nothing is sent.
            while status.last_error.lock().unwrap().is_none() {
                assert!(Instant::now() < deadline, "no error reported");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let e = status.last_error.lock().unwrap().clone().unwrap();
            assert!(e.contains("407") && e.contains("proxy"), "{e}");
            let hint = if userinfo.is_empty() {
                "wants a user and password"
            } else {
                "refused the user and password"
            };
            assert!(e.contains(hint), "{e}");
            assert!(
                !e.contains("wrong") && !e.contains("p%40ss"),
                "secret in {e}"
            );
            assert_eq!(buf.stats().count, 5);
        } else {
            while buf.stats().count > 0 {
                assert!(
                    Instant::now() < deadline,
                    "buffer not drained through the proxy"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(
                r.store.observation_count("agent-proxy").await.unwrap(),
                5 * (i as u64 + 1)
            );
        }
        let asked = seen.lock().unwrap().clone();
        assert!(
            asked
                .iter()
                .all(|l| l.starts_with(&format!("CONNECT {} ", r.grpc_addr))),
            "{asked:?}"
        );
        assert!(!asked.is_empty());
        stop.send(true).unwrap();
        task.await.unwrap().unwrap();
    }
    r.stop().await;
}

/// A listener whose accepted connections are never read, with a small
/// receive buffer: a client's writes soon meet a zero window, as they meet
/// silence across a partition.
async fn sink() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let l = socket.listen(8).unwrap();
    let addr = l.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut kept = Vec::new();
        while let Ok((c, _)) = l.accept().await {
            kept.push(c);
        }
    });
    (addr, held)
}

/// Writes until a write fails; answers the error and how long after the
/// first blocked write it came. Gives up (None) after `limit`.
async fn write_until_failed(
    s: &mut tokio::net::TcpStream,
    limit: Duration,
) -> Option<(std::io::Error, Duration)> {
    let chunk = vec![0x55u8; 64 * 1024];
    let end = Instant::now() + limit;
    loop {
        let started = Instant::now();
        match tokio::time::timeout_at(end.into(), s.write_all(&chunk)).await {
            Err(_) => return None,
            Ok(Err(e)) => return Some((e, started.elapsed())),
            Ok(Ok(())) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_whose_data_goes_unacknowledged_is_given_up() {
    let (addr, _held) = sink().await;
    let uri: tonic::transport::Uri = format!("https://{addr}").parse().unwrap();
    let bound = Duration::from_secs(2);
    let mut tuned = meterlink_agent::connect::Connect::new(None)
        .unacked_timeout(bound)
        .open(&uri)
        .await
        .expect("connects");
    // The same peer without the bound: its writes wait for ever.
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();

    let limit = Duration::from_secs(30);
    let (tuned_end, plain_end) = tokio::join!(
        write_until_failed(&mut tuned, limit),
        write_until_failed(&mut plain, bound * 4),
    );
    let (e, blocked) = tuned_end.expect("the connection is given up");
    println!("unacknowledged: given up {blocked:?} after the write blocked ({e})");
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
    assert!(blocked >= bound, "not before the bound: {blocked:?}");
    assert!(
        plain_end.is_none(),
        "without the bound the writes wait: {plain_end:?}"
    );
}
