//! The store benchmark: durable filing against a plain insert loop.

use meterlink_agent::buffer::{Buffer, SledBuffer};
use meterlink_agent::uplink::{self, UplinkConfig, UplinkStatus};
use meterlink_proto::v1::observation::Body;
use meterlink_proto::v1::{CounterValue, MeterReading, Observation};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::ConnectOptions;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn observations(n: usize, counters: usize, seq0: u64) -> Vec<Observation> {
    (0..n)
        .map(|i| Observation {
            seq: seq0 + i as u64,
            taken_at_ms: 1_700_000_000_000 + i as i64,
            device_address: format!("10.0.{}.{}:161", (i / 250) % 250, i % 250),
            serial: format!("BENCH{:05}", i % 1000),
            body: Some(Body::Meter(MeterReading {
                counters: (0..counters)
                    .map(|c| CounterValue {
                        id: format!("canon.{}", 101 + c),
                        name: "Total".into(),
                        value: 100_000 + i as u64 + c as u64,
                        unit: "impressions".into(),
                        oid: format!("1.3.6.1.4.1.1602.1.11.1.3.1.4.{}", 101 + c),
                        wraps_at_bits: 32,
                    })
                    .collect(),
            })),
        })
        .collect()
}

/// The baseline: the same rows with a plain prepared INSERT loop, same
/// durability (WAL, synchronous FULL), one transaction per 500 observations.
async fn plain_sqlite(dir: &std::path::Path, obs: &[Observation]) -> f64 {
    let mut conn = SqliteConnectOptions::new()
        .filename(dir.join("plain.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .connect()
        .await
        .expect("sqlite");
    sqlx::raw_sql("CREATE TABLE readings (serial TEXT, counter_id TEXT, value INTEGER, taken_at_ms INTEGER, seq INTEGER)")
        .execute(&mut conn)
        .await
        .expect("schema");
    let t = Instant::now();
    for chunk in obs.chunks(500) {
        let mut tx = sqlx::Connection::begin(&mut conn).await.expect("begin");
        for o in chunk {
            let Some(Body::Meter(m)) = &o.body else {
                continue;
            };
            for c in &m.counters {
                sqlx::query("INSERT INTO readings VALUES (?, ?, ?, ?, ?)")
                    .bind(&o.serial)
                    .bind(&c.id)
                    .bind(c.value as i64)
                    .bind(o.taken_at_ms)
                    .bind(o.seq as i64)
                    .execute(&mut *tx)
                    .await
                    .expect("insert");
            }
        }
        tx.commit().await.expect("commit");
    }
    t.elapsed().as_secs_f64()
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

pub async fn run(n: usize, counters: usize, cycles: usize, baseline: bool) {
    let tmp = tempfile::tempdir().expect("tmp");
    let obs = observations(n, counters, 1);
    let values = (n * counters) as f64;
    println!("# meterlink-bench store: {n} meter observations x {counters} counters\n");

    let base = if baseline {
        plain_sqlite(tmp.path(), &obs).await
    } else {
        f64::NAN
    };

    // Collector ingest end to end: gRPC with mutual TLS, durable acks.
    let meterlink_tests::stack::LocalCollector {
        running: collector,
        pki,
        agent_cert: cert,
        ..
    } = meterlink_tests::stack::start_collector(
        &tmp.path().join("c"),
        "",
        "bench-agent",
        &tmp.path().join("certs"),
    )
    .await;
    let read = |p: &std::path::Path| std::fs::read_to_string(p).expect("read");
    let (buf, _) = SledBuffer::open(&tmp.path().join("buf"), u64::MAX).expect("buffer");
    let buf = Arc::new(buf);

    // Buffer append throughput (batches of 500, each flushed).
    let t = Instant::now();
    let mut last = 0;
    for chunk in observations(n, counters, 0).chunks(500) {
        last = *buf
            .append(chunk.to_vec())
            .expect("append")
            .last()
            .expect("seq");
    }
    let append_s = t.elapsed().as_secs_f64();

    let mut up = UplinkConfig::new(
        &format!("https://{}", collector.grpc_addr),
        "localhost",
        read(&pki.ca_cert()),
        read(&cert.cert),
        read(&cert.key),
        "bench-agent",
    );
    up.batch_max_count = 500;
    up.batch_max_bytes = 8 << 20;
    let status = Arc::new(UplinkStatus::default());
    let notify = Arc::new(tokio::sync::Notify::new());
    let (stop, rx) = tokio::sync::watch::channel(false);
    let t = Instant::now();
    let task = tokio::spawn(uplink::run(
        up,
        buf.clone() as Arc<dyn Buffer>,
        notify.clone(),
        status.clone(),
        rx,
    ));
    while status.last_ack.load(Ordering::Relaxed) < last {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let ingest_s = t.elapsed().as_secs_f64();
    assert_eq!(buf.stats().count, 0, "buffer drained and acked");

    // Poll-to-ack latency: a cycle of 50 observations appended, until acked.
    let mut lat = Vec::new();
    let mut seq0 = 10_000_000u64;
    for cycle in 0..cycles {
        // A poll cycle as a device reports it: newer than everything
        // filed, counters further on. (Observations older than a
        // product's latest reading take the late-arrival path: two
        // queries per counter, ~2.5 ms per observation of 20 counters.)
        let mut batch = observations(50, counters, seq0);
        for o in &mut batch {
            o.taken_at_ms = 1_800_000_000_000 + cycle as i64 * 60_000;
            if let Some(Body::Meter(m)) = &mut o.body {
                for c in &mut m.counters {
                    c.value += 10_000_000 + cycle as u64 * 100;
                }
            }
        }
        seq0 += 50;
        let t = Instant::now();
        let b = buf.clone();
        let top = *tokio::task::spawn_blocking(move || b.append(batch))
            .await
            .expect("join")
            .expect("append")
            .last()
            .expect("seq");
        notify.notify_one();
        while status.last_ack.load(Ordering::Relaxed) < top {
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let _ = stop.send(true);
    let _ = task.await;

    // Buffer ack throughput: append then ack in steps of 500.
    let (b2, _) = SledBuffer::open(&tmp.path().join("buf2"), u64::MAX).expect("buffer");
    let seqs: Vec<u64> = observations(n, counters, 0)
        .chunks(500)
        .flat_map(|c| b2.append(c.to_vec()).expect("append"))
        .collect();
    let t = Instant::now();
    for s in seqs.chunks(500) {
        b2.ack(*s.last().expect("seq")).expect("ack");
    }
    let ack_s = t.elapsed().as_secs_f64();

    println!("| what | observations/s | counter values/s |");
    println!("|---|---|---|");
    println!(
        "| plain SQLite insert loop (baseline) | {:.0} | {:.0} |",
        n as f64 / base,
        values / base
    );
    println!(
        "| collector ingest, gRPC + mTLS, durable acks | {:.0} | {:.0} |",
        n as f64 / ingest_s,
        values / ingest_s
    );
    println!(
        "| agent buffer append (flushed, 500 per batch) | {:.0} | - |",
        n as f64 / append_s
    );
    println!(
        "| agent buffer ack (500 per ack, flushed) | {:.0} | - |",
        n as f64 / ack_s
    );
    println!("\ningest / plain SQLite: {:.2}", base / ingest_s);
    let (p50, p99) = (pct(&mut lat.clone(), 0.5), pct(&mut lat, 0.99));
    println!("append-to-ack latency over {cycles} cycles of 50 observations: p50 {p50:.1} ms, p99 {p99:.1} ms");
    collector.stop().await;
}
