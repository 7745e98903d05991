//! The HTTP outbox against an external portal on loopback that fails every
//! other request and goes away for a while (restarts), with the collector
//! itself restarted in between: every change arrives, each idempotency key
//! is accepted once, and each request's changes arrive in order.

use meterlink_collector::model::NewRequest;
use meterlink_collector::store::Store;
use meterlink_tests::stack::start_collector;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
struct Portal {
    /// Requests seen, accepted or not.
    seen: u64,
    /// Attempts per idempotency key: odd ones (the 1st, 3rd, ...) fail.
    attempts: BTreeMap<String, u32>,
    /// Accepted changes in arrival order: (idempotency key, event).
    accepted: Vec<(String, String)>,
}

/// Reads one HTTP/1.1 request: its idempotency key and body.
async fn read_request(s: &mut TcpStream) -> Option<(String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
        };
        let len: usize = header("content-length")?.trim().parse().ok()?;
        if buf.len() >= end + 4 + len {
            let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
            return Some((header("idempotency-key")?, body));
        }
    }
}

/// Serves until `until` passes; half the requests (each key's 1st, 3rd, ...
/// attempt) get 503.
async fn serve_portal(listener: TcpListener, portal: Arc<Mutex<Portal>>, until: Instant) {
    while let Ok(Ok((mut s, _))) = tokio::time::timeout(
        until.saturating_duration_since(Instant::now()),
        listener.accept(),
    )
    .await
    {
        let Some((key, body)) = read_request(&mut s).await else {
            continue;
        };
        let ok = {
            let mut p = portal.lock().unwrap();
            p.seen += 1;
            let n = p.attempts.entry(key.clone()).or_default();
            *n += 1;
            let ok = (*n).is_multiple_of(2);
            if ok {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                assert_eq!(v["idempotency_key"], key.as_str(), "key in header and body");
                p.accepted
                    .push((key, v["event"].as_str().unwrap().to_string()));
            }
            ok
        };
        let status = if ok {
            "200 OK"
        } else {
            "503 Service Unavailable"
        };
        let _ = s
            .write_all(
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await;
    }
}

async fn make_changes(store: &Store, from: usize, to: usize) {
    for i in from..to {
        let r = store
            .create_request(
                &NewRequest {
                    account: "acme".into(),
                    serial: None,
                    kind: "information".into(),
                    title: format!("question {i}"),
                    priority: None,
                    user: "jan".into(),
                    description: String::new(),
                    contact_name: String::new(),
                    contact_phone: String::new(),
                    destination_address: None,
                    destination_location: None,
                },
                1_790_000_000_000 + i as i64,
            )
            .await
            .unwrap();
        if i % 2 == 0 {
            store
                .close_request(&r.number, "answered", "ops", 1_790_000_000_000)
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn every_change_arrives_once_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let portal = Arc::new(Mutex::new(Portal::default()));
    let extra = format!(
        "[portal]\nurl = \"http://127.0.0.1:{port}/meterlink/changes\"\nmax_attempts = 1000\nretry_base_ms = 20\nretry_max_ms = 400\n"
    );
    let c = start_collector(dir.path(), &extra, "agent-x", &dir.path().join("certs")).await;
    c.running
        .store
        .put_account(&meterlink_collector::model::Account {
            id: "acme".into(),
            name: "Acme".into(),
            billing_code: "B".into(),
            service_code: "S".into(),
            auto_create_products: false,
            time_zone: "UTC".into(),
            organisation: None,
        })
        .await
        .unwrap();
    // The portal is up for a second, then down (a restart) while changes pile up.
    let first = tokio::spawn(serve_portal(
        listener,
        portal.clone(),
        Instant::now() + Duration::from_secs(1),
    ));
    make_changes(&c.running.store, 0, 20).await;
    first.await.unwrap();
    make_changes(&c.running.store, 20, 30).await;
    // The collector restarts too; its outbox is in the store.
    let config = c.config.clone();
    c.running.stop().await;
    let running = meterlink_collector::server::start(&config).await.unwrap();
    make_changes(&running.store, 30, 40).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let second = tokio::spawn(serve_portal(
        listener,
        portal.clone(),
        Instant::now() + Duration::from_secs(60),
    ));

    // 40 opened + 20 closed.
    let total = 60;
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let counts = running.store.outbox_counts().await.unwrap();
        if counts.sent == total || Instant::now() > deadline {
            assert_eq!(
                (counts.sent, counts.pending, counts.dead),
                (total, 0, 0),
                "{counts:?}"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    second.abort();
    {
        let p = portal.lock().unwrap();
        assert!(p.seen >= 2 * total, "half of {} requests failed", p.seen);
        // Each key accepted once; per request, event ids rise.
        let mut keys: BTreeMap<&str, u32> = BTreeMap::new();
        let mut per_request: BTreeMap<&str, Vec<(i64, &str)>> = BTreeMap::new();
        for (key, event) in &p.accepted {
            *keys.entry(key).or_default() += 1;
            let (number, event_id) = key.rsplit_once('-').unwrap();
            per_request
                .entry(number)
                .or_default()
                .push((event_id.parse().unwrap(), event));
        }
        assert_eq!(keys.len() as u64, total);
        assert!(
            keys.values().all(|n| *n == 1),
            "a key accepted twice: {keys:?}"
        );
        assert_eq!(per_request.len(), 40);
        for (number, events) in &per_request {
            assert!(
                events.windows(2).all(|w| w[0].0 < w[1].0),
                "{number}: {events:?}"
            );
            assert_eq!(events[0].1, "opened", "{number}: {events:?}");
        }
        eprintln!(
        "outbox: {total} changes delivered through {} attempts (every other refused, portal and collector restarted)",
        p.seen
    );
    }
    running.stop().await;
}
