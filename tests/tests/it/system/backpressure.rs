//! A slow store pushes back: while the collector's database is held by
//! another writer, its Acks stop, the agent keeps at most its window of
//! batches in flight and everything else stays in its buffer; once the store
//! moves again, the backlog drains and is filed once.

use meterlink_agent::buffer::{Buffer, SledBuffer};
use meterlink_agent::uplink::{self, UplinkConfig, UplinkStatus};
use meterlink_proto::v1::observation::Body;
use meterlink_proto::v1::{CounterValue, MeterReading, Observation};
use meterlink_tests::peers::until;
use meterlink_tests::stack::{start_collector, LocalCollector};
use sqlx::Connection;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn meter(i: u64) -> Observation {
    Observation {
        seq: 0,
        taken_at_ms: 1_700_000_000_000 + i as i64,
        device_address: "127.0.0.1:161".into(),
        serial: format!("SLOW{}", i % 50),
        body: Some(Body::Meter(MeterReading {
            counters: vec![CounterValue {
                id: "canon.101".into(),
                value: 1000 + i,
                ..Default::default()
            }],
        })),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_store_stops_the_agent_at_its_window() {
    let tmp = tempfile::tempdir().unwrap();
    let LocalCollector {
        config: cfg,
        running: collector,
        pki,
        agent_cert: cert,
    } = start_collector(
        &tmp.path().join("c"),
        "",
        "agent-slow",
        &tmp.path().join("certs"),
    )
    .await;
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap();
    let (buf, _) = SledBuffer::open(&tmp.path().join("buf"), u64::MAX).unwrap();
    let buf = Arc::new(buf);
    let first = buf.append((0..100).map(meter).collect()).unwrap();
    let first_last = *first.last().unwrap();

    let mut up = UplinkConfig::new(
        &format!("https://{}", collector.grpc_addr),
        "localhost",
        read(&pki.ca_cert()),
        read(&cert.cert),
        read(&cert.key),
        "agent-slow",
    );
    up.batch_max_count = 50;
    up.window = 3;
    let window = up.window as u64;
    let status = Arc::new(UplinkStatus::default());
    let notify = Arc::new(tokio::sync::Notify::new());
    let (stop, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(uplink::run(
        up,
        buf.clone() as Arc<dyn Buffer>,
        notify.clone(),
        status.clone(),
        rx,
    ));
    until(
        Duration::from_secs(20),
        "the first observations filed",
        || {
            // Both: the uplink empties the buffer before it records the Ack.
            let (b, st) = (buf.clone(), status.clone());
            async move { b.stats().count == 0 && st.last_ack.load(Ordering::Relaxed) == first_last }
        },
    )
    .await;

    // Another writer holds the database: every commit of the collector waits.
    let mut blocker = sqlx::sqlite::SqliteConnection::connect_with(
        &sqlx::sqlite::SqliteConnectOptions::new().filename(cfg.sqlite_path()),
    )
    .await
    .unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let acked_before = status.last_ack.load(Ordering::Relaxed);
    let sent_before = status.sent_batches.load(Ordering::Relaxed);
    let filed_before = collector
        .store
        .observation_count("agent-slow")
        .await
        .unwrap();
    for i in 0..40 {
        buf.append((0..50).map(|j| meter(1000 + i * 50 + j)).collect())
            .unwrap();
        notify.notify_one();
    }
    // Over two seconds of stall (well inside the store's 10 s busy timeout):
    // no Ack, and never more than the window of batches sent ahead.
    let stall_end = Instant::now() + Duration::from_secs(2);
    let mut most_ahead = 0;
    while Instant::now() < stall_end {
        let ahead = status.sent_batches.load(Ordering::Relaxed) - sent_before;
        most_ahead = most_ahead.max(ahead);
        assert!(
            ahead <= window,
            "{ahead} batches sent ahead of a stalled store (window {window})"
        );
        assert_eq!(status.last_ack.load(Ordering::Relaxed), acked_before);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        most_ahead, window,
        "the agent filled its window and then waited"
    );
    assert_eq!(
        buf.stats().count,
        2000,
        "the rest waits in the agent's buffer"
    );
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut blocker)
        .await
        .unwrap();
    drop(blocker);

    // The store moves again: everything drains, filed once.
    until(Duration::from_secs(30), "the backlog to drain", || {
        let b = buf.clone();
        async move { b.stats().count == 0 }
    })
    .await;
    assert_eq!(
        collector
            .store
            .observation_count("agent-slow")
            .await
            .unwrap(),
        filed_before + 2000
    );
    assert_eq!(
        collector
            .store
            .filed_seqs("agent-slow")
            .await
            .unwrap()
            .len(),
        2100
    );
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    collector.stop().await;
    eprintln!("stalled store: at most {most_ahead} batches ahead (window {window}), 2000 observations held by the agent, then drained");
}
