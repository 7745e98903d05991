//! A faulty network between agent and collector: the fault-injecting proxy
//! of the test support sits on the gRPC path while the agent polls 1,000
//! simulated devices. In turn: the collector restarts, a slow link (latency,
//! a rate limit, stalls, resets at random byte offsets), a connection gone
//! half-open, a 60-second partition, and the collector restarts again. At
//! the end every observation the agent took is filed exactly once, the agent
//! came back within its backoff bound after each fault, no connection is
//! left open by either end, and no task outlives the programs.

use meterlink_agent::buffer::{Buffer, SledBuffer};
use meterlink_agent::daemon::StatusReport;
use meterlink_agent::uplink::{CONNECT_TIMEOUT, KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT};
use meterlink_collector::config::Config;
use meterlink_collector::server::Running;
use meterlink_sim::{serve, Fleet, Recording, SimConfig};
use meterlink_tests::fault_proxy::{FaultProxy, Faults};
use meterlink_tests::peers::{fixtures_dir, until};
use meterlink_tests::stack::{collector_on_fixed_port, drain_agent, AgentToml};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

const AGENT: &str = "agent-faulty";
const DEVICES: u32 = 1000;
/// The agent's longest backoff (`UplinkConfig`'s default), with its jitter.
const BACKOFF_BOUND: Duration = Duration::from_secs(45);

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn status(dir: &Path) -> StatusReport {
    std::fs::read_to_string(meterlink_agent::daemon::status_path(dir))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// Waits until the collector acknowledged something after `since_ms` and
/// returns how long after `since_ms` that was.
async fn acked_after(dir: &Path, since_ms: u64, limit: Duration, what: &str) -> Duration {
    until(limit, what, || async {
        status(dir).last_ack_at_ms > since_ms
    })
    .await;
    Duration::from_millis(status(dir).last_ack_at_ms - since_ms)
}

/// The collector's count of agent streams open.
async fn streams_open(c: &Running) -> Option<u64> {
    let r = meterlink_tests::http::get(c.http_addr, "/metrics").await;
    r.body
        .lines()
        .find_map(|l| l.strip_prefix("meterlink_agents_connected "))
        .and_then(|v| v.trim().parse().ok())
}

async fn stop_within(c: Running, limit: Duration) -> Duration {
    let t = Instant::now();
    tokio::time::timeout(limit, c.stop())
        .await
        .expect("the collector stops while an agent's stream is open");
    t.elapsed()
}

/// How many of the proxy's connections have reached the collector.
fn reached(proxy: &FaultProxy) -> u64 {
    proxy.stats().upstream_reached.load(Ordering::Relaxed)
}

/// Waits until the agent reaches the collector through the proxy on a
/// connection after the first `before`; returns how long after `since_ms`.
/// This is the agent's reconnection, apart from how long the collector
/// then takes to file what it sends.
async fn reconnected_after(
    proxy: &FaultProxy,
    before: u64,
    since_ms: u64,
    limit: Duration,
    what: &str,
) -> Duration {
    until(limit, what, || async { reached(proxy) > before }).await;
    Duration::from_millis(now_ms().saturating_sub(since_ms))
}

/// The longest an agent whose backoff started from its shortest wait
/// (0.2 s, doubled each time, jittered 0.5 to 1.5) can wait past an outage
/// of `outage`: the wait under way when it ends is at most three times
/// the waits before it, so three times the outage and one short wait; plus
/// a second for a machine busy with the rest of the suite. A backoff left
/// at its longest by an earlier outage would wait 15 to 45 s.
fn reconnect_bound(outage: Duration) -> Duration {
    outage * 3 + Duration::from_millis(300) + Duration::from_secs(1)
}

/// Stops the collector and starts it again on the same port and data; the
/// agent must reach the new collector within the backoff the outage
/// warrants (its backoff starts from the shortest wait, the link having
/// worked until the stop), and be acknowledged again.
async fn restart(
    collector: Running,
    cfg: &Config,
    adir: &Path,
    proxy: &FaultProxy,
    n: u32,
) -> Running {
    let stop_at = now_ms();
    let stopped = stop_within(collector, Duration::from_secs(30)).await;
    let down_at = now_ms();
    // Connections counted from here are the agent's attempts on the
    // stopped collector (refused) and then its reconnection.
    let before = reached(proxy);
    let collector = meterlink_collector::server::start(cfg)
        .await
        .expect("collector restarts");
    let up_at = now_ms();
    let bound = reconnect_bound(Duration::from_millis(up_at - stop_at));
    let what = format!("the agent back after restart {n}");
    let limit = BACKOFF_BOUND + CONNECT_TIMEOUT;
    let back = reconnected_after(proxy, before, up_at, limit, &what).await;
    let what = format!("acks after restart {n}");
    let acked = acked_after(adir, up_at, Duration::from_secs(60), &what).await;
    println!(
        "faulty: restart {n}: stopped in {:.2} s, down {} ms, the agent back {} ms after it was up (bound {} ms), acked again after {} ms",
        stopped.as_secs_f64(),
        up_at - down_at,
        back.as_millis(),
        bound.as_millis(),
        acked.as_millis()
    );
    assert!(back <= bound, "reconnect after restart {n} took {back:?}");
    collector
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faulty_network_loses_nothing_and_files_nothing_twice() {
    // RUST_LOG=meterlink_agent::uplink=info shows the agent's reconnections.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let detect = KEEPALIVE_INTERVAL + KEEPALIVE_TIMEOUT;
    let tasks_at_start = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();

    // 1,000 devices whose counters advance, so every read files new values.
    let text =
        std::fs::read_to_string(fixtures_dir().join("canon_iradv_c5560.snmprec")).expect("fixture");
    let (rec, _) = Recording::parse("canon", &text);
    let first = Ipv4Addr::new(127, 93, 0, 1);
    let addrs: Vec<SocketAddr> = (0..DEVICES)
        .map(|i| SocketAddr::new(Ipv4Addr::from(u32::from(first) + i).into(), 16161))
        .collect();
    let sim_cfg = SimConfig {
        pages_per_minute: 60.0,
        ..SimConfig::default()
    };
    let fleet = Arc::new(Fleet::new(sim_cfg, vec![Arc::new(rec)], addrs));
    let sim = serve(fleet).await.expect("simulated fleet");

    // The collector on a fixed port, so that it can restart on it.
    let (cfg, pki, cert) = collector_on_fixed_port(work, AGENT);
    let grpc = cfg.grpc.listen;
    let mut collector = meterlink_collector::server::start(&cfg)
        .await
        .expect("collector");
    let proxy = FaultProxy::start(grpc, Faults::default())
        .await
        .expect("proxy");

    let adir = work.join("agent");
    let last = Ipv4Addr::from(u32::from(first) + DEVICES - 1);
    let mut spec = AgentToml::new(
        AGENT,
        &adir,
        proxy.addr,
        &pki.ca_cert(),
        &cert.cert,
        &cert.key,
        &[&format!("{first}-{last}")],
    );
    spec.meter = "*/5 * * * * *".into();
    spec.engine = Some((1.0, 1, 128));
    let conf = work.join("agent.toml");
    std::fs::write(&conf, spec.render()).expect("agent.toml");
    let first_seq = {
        let (b, _) = SledBuffer::open(&adir.join("buffer"), u64::MAX).expect("buffer");
        b.stats().next_seq
    };
    let v = meterlink_agent::config::AgentConfig::load(&conf).expect("agent config");
    let (stop_agent, rx) = tokio::sync::watch::channel(false);
    let daemon = tokio::spawn(meterlink_agent::daemon::run(v, rx));

    // A clean start: the fleet is read and acknowledged.
    let t0 = now_ms();
    acked_after(&adir, t0, Duration::from_secs(60), "the first acks").await;
    until(
        Duration::from_secs(60),
        "a full read of the fleet",
        || async { status(&adir).last_poll_read >= u64::from(DEVICES) },
    )
    .await;
    let clean_s = (now_ms() - t0) as f64 / 1000.0;
    println!(
        "faulty: clean start, {DEVICES} devices read; {} observations, {} bytes up in {clean_s:.1} s",
        status(&adir).next_seq - first_seq,
        proxy.stats().bytes_up.load(Ordering::Relaxed)
    );

    // The collector restarts.
    collector = restart(collector, &cfg, &adir, &proxy, 1).await;

    // A slow, lossy link: latency, a rate limit, stalls and resets at random
    // offsets of every connection.
    proxy.set_faults(Faults {
        latency: Duration::from_millis(40),
        bytes_per_sec: Some(2 << 20),
        reset_below: Some(4 << 20),
        stall_chance: 0.002,
        stall_for: Duration::from_secs(3),
        ..Faults::default()
    });
    let acked_before = status(&adir).last_ack;
    tokio::time::sleep(Duration::from_secs(30)).await;
    proxy.set_faults(Faults::default());
    let slow_to = now_ms();
    let s = proxy.stats();
    println!(
        "faulty: slow link for 30 s: {} connections, {} reset, {} stalls, {} bytes up; acked seq {} -> {}",
        s.accepted.load(Ordering::Relaxed),
        s.resets.load(Ordering::Relaxed),
        s.stalls.load(Ordering::Relaxed),
        s.bytes_up.load(Ordering::Relaxed),
        acked_before,
        status(&adir).last_ack
    );
    assert!(
        s.resets.load(Ordering::Relaxed) > 0,
        "connections were reset"
    );
    assert!(
        status(&adir).last_ack > acked_before,
        "data went through the slow link"
    );
    // A run of sessions cut before their first ack leaves the agent in its
    // longest backoff: it may be waiting it out as the link recovers.
    let back = acked_after(
        &adir,
        slow_to,
        BACKOFF_BOUND + CONNECT_TIMEOUT + Duration::from_secs(5),
        "acks after the slow link",
    )
    .await;
    println!(
        "faulty: acked again {:.1} s after the slow link ended (bound {} s)",
        back.as_secs_f64(),
        (BACKOFF_BOUND + CONNECT_TIMEOUT).as_secs()
    );
    assert!(
        back <= BACKOFF_BOUND + CONNECT_TIMEOUT,
        "after the slow link: {back:?}"
    );

    // The connection goes half-open: nothing passes, neither end is told.
    let before = reached(&proxy);
    let cut_at = now_ms();
    let n = proxy.half_open_all();
    assert!(n >= 1, "a connection to cut");
    let back = reconnected_after(
        &proxy,
        before,
        cut_at,
        detect + BACKOFF_BOUND,
        "a new connection after half-open",
    )
    .await;
    let acked = acked_after(
        &adir,
        cut_at,
        detect + BACKOFF_BOUND,
        "acks after half-open",
    )
    .await;
    println!(
        "faulty: half-open: {n} connection(s) cut; a new connection after {:.1} s (bound: keepalive {} s + connect {} s), acked again after {:.1} s",
        back.as_secs_f64(),
        detect.as_secs(),
        CONNECT_TIMEOUT.as_secs(),
        acked.as_secs_f64()
    );
    // Found by the keepalive, then one short backoff and a new connection.
    assert!(
        back <= detect + CONNECT_TIMEOUT,
        "half-open found late: {back:?}"
    );

    // A 60-second partition.
    let accepted = || proxy.stats().accepted.load(Ordering::Relaxed);
    let accepted_before = accepted();
    proxy.partition(true);
    let part_at = now_ms();
    // The status file is written every 2 s: after 3 s it shows the last
    // ack that came before the partition.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = status(&adir).last_ack;
    // The agent gives up the connection it had when the partition began
    // (its pings go unanswered, or its data unacknowledged) and is
    // connecting, in vain, before the partition heals: the proxy takes
    // the new connection in (and holds it until the heal). Seen at the
    // proxy, not in the status file, which is written every 2 s.
    let mut given_up_after = None;
    let partition_end = Instant::now() + Duration::from_secs(57);
    while Instant::now() < partition_end {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if given_up_after.is_none() && accepted() > accepted_before {
            given_up_after = Some(Duration::from_millis(now_ms() - part_at));
        }
    }
    assert_eq!(status(&adir).last_ack, during, "nothing passes a partition");
    let given_up_after = given_up_after.expect("the connection is given up in a partition");
    println!(
        "faulty: the connection across the partition given up, a new one tried after {:.1} s (bound {} s)",
        given_up_after.as_secs_f64(),
        detect.as_secs()
    );
    proxy.partition(false);
    let healed_at = now_ms();
    let back = acked_after(
        &adir,
        healed_at,
        BACKOFF_BOUND + CONNECT_TIMEOUT + Duration::from_secs(5),
        "acks after the partition",
    )
    .await;
    println!(
        "faulty: partition of {} s; acked again {:.1} s after it healed (bound {} s)",
        (healed_at - part_at) / 1000,
        back.as_secs_f64(),
        (BACKOFF_BOUND + CONNECT_TIMEOUT).as_secs()
    );
    assert!(
        back <= BACKOFF_BOUND + CONNECT_TIMEOUT,
        "after the partition: {back:?}"
    );

    // Neither end keeps a dead connection: the half-open one and those
    // opened across the partition are closed, the agent's live one stays.
    let left = Instant::now() + detect;
    while proxy.open() != 1 {
        assert!(
            Instant::now() < left,
            "{} connections open, one expected: {:#?}",
            proxy.open(),
            proxy.describe_open()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    until(detect, "one agent stream at the collector", || async {
        streams_open(&collector).await == Some(1)
    })
    .await;

    // The collector restarts again; the link's earlier outage does not
    // leave the agent waiting out a long backoff.
    collector = restart(collector, &cfg, &adir, &proxy, 2).await;

    // Polling stops; the backlog the faults left drains (bounded by its
    // progress: how fast depends on the machine, not on the network).
    let left = status(&adir).backlog_count;
    stop_agent.send(true).expect("stop");
    daemon.await.expect("join").expect("daemon");
    for t in &sim {
        t.abort();
    }
    let s = status(&adir);
    assert_eq!(s.dropped, 0, "the buffer's bound was not reached");
    let next_seq = drain_agent(&mut spec, &conf).await;
    let taken = next_seq - first_seq;

    // Every observation taken is filed, once.
    let db = meterlink_tests::stack::read_only_database(&cfg).await;
    let (rows, distinct, lo, hi): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(DISTINCT seq), MIN(seq), MAX(seq) FROM observations WHERE agent_id = ?",
    )
    .bind(AGENT)
    .fetch_one(&db)
    .await
    .expect("observations");
    db.close().await;
    println!(
        "faulty: {left} observations waiting after the faults; {taken} taken (seq {first_seq}..{}), {rows} filed, {distinct} distinct; proxy: {} connections, {} refused while the collector was down, {} reset, {} half-open, {} stalls, {} bytes up, {} down",
        next_seq - 1,
        proxy.stats().accepted.load(Ordering::Relaxed),
        proxy.stats().upstream_refused.load(Ordering::Relaxed),
        proxy.stats().resets.load(Ordering::Relaxed),
        proxy.stats().half_opens.load(Ordering::Relaxed),
        proxy.stats().stalls.load(Ordering::Relaxed),
        proxy.stats().bytes_up.load(Ordering::Relaxed),
        proxy.stats().bytes_down.load(Ordering::Relaxed),
    );
    assert_eq!(rows as u64, taken, "every observation filed");
    assert_eq!(distinct, rows, "none filed twice");
    assert_eq!((lo as u64, hi as u64), (first_seq, next_seq - 1));

    // Everything stopped leaves nothing running.
    stop_within(collector, Duration::from_secs(30)).await;
    until(
        Duration::from_secs(10),
        "every proxied connection closed",
        || async { proxy.open() == 0 },
    )
    .await;
    drop(proxy);
    let rt = tokio::runtime::Handle::current();
    until(Duration::from_secs(10), "no task left", || async {
        rt.metrics().num_alive_tasks() <= tasks_at_start
    })
    .await;
}

/// An echo server on loopback, for the proxy's own test.
async fn echo() -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                while let Ok(n) = c.read(&mut buf).await {
                    if n == 0 || c.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// Sends `n` bytes through `addr` and reads the echo: the time it took, or
/// the error that ended it and how many bytes came back before.
async fn round_trip(addr: SocketAddr, n: usize) -> Result<Duration, (std::io::ErrorKind, usize)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = Instant::now();
    let c = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut r, mut w) = c.into_split();
    let writer = tokio::spawn(async move {
        let _ = w.write_all(&vec![7u8; n]).await;
        w
    });
    let mut got = 0;
    let mut buf = [0u8; 8192];
    while got < n {
        match r.read(&mut buf).await {
            Ok(0) => return Err((std::io::ErrorKind::UnexpectedEof, got)),
            Ok(k) => got += k,
            Err(e) => return Err((e.kind(), got)),
        }
    }
    let _ = writer.await;
    Ok(t.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fault_proxy_delays_limits_resets_and_partitions() {
    let upstream = echo().await;
    let proxy = FaultProxy::start(upstream, Faults::default())
        .await
        .unwrap();
    round_trip(proxy.addr, 1000).await.expect("clean");

    proxy.set_faults(Faults {
        latency: Duration::from_millis(100),
        ..Faults::default()
    });
    let rtt = round_trip(proxy.addr, 10).await.expect("delayed");
    assert!(
        rtt >= Duration::from_millis(200),
        "100 ms each way: {rtt:?}"
    );

    proxy.set_faults(Faults {
        bytes_per_sec: Some(64 * 1024),
        ..Faults::default()
    });
    let took = round_trip(proxy.addr, 128 * 1024).await.expect("limited");
    assert!(
        took >= Duration::from_millis(1500),
        "128 KiB at 64 KiB/s: {took:?}"
    );

    proxy.set_faults(Faults {
        reset_below: Some(1000),
        ..Faults::default()
    });
    let (kind, got) = round_trip(proxy.addr, 10_000).await.expect_err("reset");
    assert_eq!(kind, std::io::ErrorKind::ConnectionReset);
    assert!(got < 1000, "reset below 1,000 bytes: {got} came back");
    assert!(proxy.stats().resets.load(Ordering::Relaxed) >= 1);

    proxy.set_faults(Faults::default());
    proxy.partition(true);
    let across = tokio::spawn(round_trip(proxy.addr, 100));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!across.is_finished(), "nothing passes a partition");
    proxy.partition(false);
    across.await.unwrap().expect("through once healed");

    // An open connection across a partition: the network takes in nothing
    // of what is sent (a read already waiting when it began may take one
    // chunk), the sender's bytes wait in its own socket, and all of them
    // arrive once it heals.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut c = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
        c.write_all(b"x").await.unwrap();
        let mut one = [0u8; 1];
        c.read_exact(&mut one).await.unwrap();
        proxy.partition(true);
        let taken = proxy.stats().bytes_taken.load(Ordering::Relaxed);
        let sent = 1 << 20;
        let (mut r, mut w) = c.into_split();
        let writer = tokio::spawn(async move {
            w.write_all(&vec![7u8; sent]).await.unwrap();
            w
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        let across = proxy.stats().bytes_taken.load(Ordering::Relaxed) - taken;
        assert!(
            across <= 16 * 1024,
            "the network took in {across} bytes across a partition"
        );
        proxy.partition(false);
        let mut got = 0;
        let mut buf = vec![0u8; 64 * 1024];
        while got < sent {
            let n = tokio::time::timeout(Duration::from_secs(10), r.read(&mut buf))
                .await
                .expect("the echo once healed")
                .unwrap();
            assert_ne!(n, 0, "closed after {got} bytes");
            got += n;
        }
        drop(writer.await.unwrap());
    }

    until(
        Duration::from_secs(5),
        "the proxy's connections closed",
        || async { proxy.open() == 0 },
    )
    .await;
}
