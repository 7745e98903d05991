//! The outage scenario: the collector is down while the agent daemon polls a
//! simulated fleet until its buffer has taken a given number of
//! observations; then the collector comes back and the backlog drains.
//! Shared by the outage test (small fleet) and `meterlink-bench outage`
//! (10,000 devices, a million observations and more).

use crate::peers::fixtures_dir;
use crate::stack::{collector_on_fixed_port, AgentToml};
use meterlink_agent::buffer::{Buffer, SledBuffer};
use meterlink_agent::config::AgentConfig;
use meterlink_agent::daemon::StatusReport;
use meterlink_sim::{serve, Fleet, Recording, SimConfig};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const AGENT_ID: &str = "agent-outage";

#[derive(Debug, Clone)]
pub struct OutageParams {
    pub devices: usize,
    /// Poll until the agent has appended at least this many observations.
    pub min_observations: u64,
    /// The buffer's bound (`[buffer] max_bytes`).
    pub bound_bytes: u64,
    /// First simulated device address; the fleet takes the next `devices`.
    pub first: Ipv4Addr,
    /// Longest the whole scenario may take.
    pub limit: Duration,
    /// The collector's store on PostgreSQL (a URL naming an empty schema);
    /// `None`: SQLite in the work folder.
    pub postgres: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct OutageReport {
    pub devices: usize,
    pub polling_secs: f64,
    pub appended: u64,
    pub dropped: u64,
    pub coalesced: u64,
    pub bound_bytes: u64,
    /// Largest backlog the status file showed while polling.
    pub max_backlog_bytes: u64,
    pub max_backlog_count: u64,
    /// The backlog when the collector came back.
    pub backlog_count: u64,
    pub backlog_bytes: u64,
    /// The buffer directory's size on disk (sled's log and snapshots).
    pub disk_bytes: u64,
    pub reopen_secs: f64,
    pub drain_secs: f64,
    pub filed: u64,
    pub counter_values: u64,
    /// Observations filed after one with a higher sequence number.
    pub out_of_order: u64,
    /// Devices whose filed canon.101 differs from the simulator's.
    pub wrong_values: usize,
    pub products: usize,
}

impl OutageReport {
    pub fn drain_rate(&self) -> f64 {
        self.filed as f64 / self.drain_secs.max(1e-9)
    }

    pub fn print(&self) {
        println!(
            "outage: {} devices polled for {:.1} s with the collector down: {} observations appended ({} status/supply dropped, {} meter readings merged)",
            self.devices, self.polling_secs, self.appended, self.dropped, self.coalesced
        );
        println!(
            "  bound {} bytes; largest backlog seen {} bytes ({} observations); at return {} observations, {} bytes; {} bytes on disk",
            self.bound_bytes, self.max_backlog_bytes, self.max_backlog_count, self.backlog_count, self.backlog_bytes, self.disk_bytes
        );
        println!(
            "  reopen {:.2} s; drain {} observations ({} counter values) in {:.1} s: {:.0} observations/s, {:.0} counter values/s; out of order {}; wrong values {}",
            self.reopen_secs,
            self.filed,
            self.counter_values,
            self.drain_secs,
            self.drain_rate(),
            self.counter_values as f64 / self.drain_secs.max(1e-9),
            self.out_of_order,
            self.wrong_values
        );
    }
}

fn read_status(path: &Path) -> Option<StatusReport> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

fn dir_size(p: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Runs the scenario in `work`. Panics with a message when a step does not
/// finish within `p.limit`.
pub async fn run(p: &OutageParams, work: &Path) -> OutageReport {
    let deadline = Instant::now() + p.limit;
    let left = || deadline.saturating_duration_since(Instant::now());
    let text =
        std::fs::read_to_string(fixtures_dir().join("canon_iradv_c5560.snmprec")).expect("fixture");
    let (rec, _) = Recording::parse("canon", &text);
    let first = u32::from(p.first);
    let addrs: Vec<SocketAddr> = (0..p.devices as u32)
        .map(|i| SocketAddr::new(Ipv4Addr::from(first + i).into(), 16161))
        .collect();
    let fleet = Arc::new(Fleet::new(SimConfig::default(), vec![Arc::new(rec)], addrs));
    let _sim = serve(fleet.clone()).await.expect("simulated fleet");

    // The collector's address, reserved now, listened on only later.
    let (mut cfg, pki, cert) = collector_on_fixed_port(work, AGENT_ID);
    cfg.store.postgres = p
        .postgres
        .clone()
        .map(meterlink_collector::config::DatabaseUrl);
    let grpc = cfg.grpc.listen;

    let last = Ipv4Addr::from(first + p.devices as u32 - 1);
    let range = format!("{}-{}", p.first, last);
    let mut spec = AgentToml::new(
        AGENT_ID,
        &work.join("agent"),
        grpc,
        &pki.ca_cert(),
        &cert.cert,
        &cert.key,
        &[&range],
    );
    spec.meter = "* * * * * *".into();
    spec.max_bytes = Some(p.bound_bytes);
    spec.engine = Some((1.0, 1, 256));
    let conf = work.join("agent.toml");
    std::fs::write(&conf, spec.render()).expect("agent.toml");
    let buffer_dir = work.join("agent/buffer");
    let first_seq = {
        let (b, _) = SledBuffer::open(&buffer_dir, p.bound_bytes).expect("buffer");
        b.stats().next_seq
    };

    // Poll with the collector down.
    let status_file = meterlink_agent::daemon::status_path(&work.join("agent"));
    let (stop, rx) = tokio::sync::watch::channel(false);
    let v = AgentConfig::load(&conf).expect("agent config");
    let daemon = tokio::spawn(meterlink_agent::daemon::run(v, rx));
    let mut r = OutageReport {
        devices: p.devices,
        bound_bytes: p.bound_bytes,
        ..OutageReport::default()
    };
    let t = Instant::now();
    loop {
        assert!(
            !left().is_zero(),
            "outage: polling did not reach {} observations in time",
            p.min_observations
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let Some(s) = read_status(&status_file) else {
            continue;
        };
        r.max_backlog_bytes = r.max_backlog_bytes.max(s.backlog_bytes);
        r.max_backlog_count = r.max_backlog_count.max(s.backlog_count);
        assert_ne!(s.connection, "connected", "the collector is down");
        if s.next_seq.saturating_sub(first_seq) >= p.min_observations {
            break;
        }
    }
    stop.send(true).expect("stop");
    daemon.await.expect("join").expect("daemon");
    r.polling_secs = t.elapsed().as_secs_f64();
    let s = read_status(&status_file).expect("final status");
    r.max_backlog_bytes = r.max_backlog_bytes.max(s.backlog_bytes);
    r.max_backlog_count = r.max_backlog_count.max(s.backlog_count);
    r.appended = s.next_seq - first_seq;
    r.dropped = s.dropped;
    r.coalesced = s.coalesced;
    r.disk_bytes = dir_size(&buffer_dir);

    // What is buffered, read back in order, to compare with what gets filed.
    let t = Instant::now();
    let (b, _) = SledBuffer::open(&buffer_dir, p.bound_bytes).expect("reopen");
    r.reopen_secs = t.elapsed().as_secs_f64();
    let st = b.stats();
    r.backlog_count = st.count;
    r.backlog_bytes = st.bytes;
    let (held_first, held_last) = {
        let first = b.read(0, 1, usize::MAX).expect("read");
        (first.first().map(|o| o.seq), st.next_seq - 1)
    };
    drop(b);

    // The collector returns; the agent (restarted, not polling) drains.
    let collector = meterlink_collector::server::start(&cfg)
        .await
        .expect("collector");
    spec.meter = "0 0 1 1 *".into();
    std::fs::write(&conf, spec.render()).expect("agent.toml");
    let v = AgentConfig::load(&conf).expect("agent config");
    let t = Instant::now();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let daemon = tokio::spawn(meterlink_agent::daemon::run(v, rx));
    loop {
        assert!(!left().is_zero(), "outage: backlog did not drain in time");
        let n = collector
            .store
            .observation_count(AGENT_ID)
            .await
            .expect("count");
        if n >= r.backlog_count {
            r.filed = n;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    r.drain_secs = t.elapsed().as_secs_f64();
    // The last ack reaches the buffer just after the last commit.
    loop {
        assert!(!left().is_zero(), "outage: last acknowledgement missing");
        if read_status(&status_file).is_some_and(|s| s.backlog_count == 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(true).expect("stop");
    daemon.await.expect("join").expect("daemon");

    // Filed in sequence order, and exactly what was buffered.
    let db = match &p.postgres {
        Some(url) => Filed::Postgres(sqlx::PgPool::connect(url).await.expect("PostgreSQL")),
        None => Filed::Sqlite(crate::stack::read_only_database(&cfg).await),
    };
    r.out_of_order = db
        .count(
            "SELECT COUNT(*) FROM (SELECT received_at_ms, LAG(received_at_ms) OVER (ORDER BY seq) AS prev
             FROM observations WHERE agent_id = $1) AS filed WHERE received_at_ms < prev",
        )
        .await;
    let lo = db
        .count("SELECT MIN(seq) FROM observations WHERE agent_id = $1")
        .await;
    let hi = db
        .count("SELECT MAX(seq) FROM observations WHERE agent_id = $1")
        .await;
    assert_eq!(
        Some(lo),
        held_first,
        "the oldest buffered observation is filed"
    );
    assert!(hi <= held_last);
    r.counter_values = db
        .count("SELECT COUNT(*) FROM readings WHERE agent_id = $1")
        .await;
    db.close().await;

    // Every device's latest counter survived the bound with the right value.
    let products = collector.store.products().await.expect("products");
    r.products = products.len();
    let counter: meterlink_agent::snmp::Oid =
        "1.3.6.1.4.1.1602.1.11.1.3.1.4.101".parse().expect("oid");
    let by_serial: std::collections::HashMap<&str, u64> = products
        .iter()
        .filter_map(|p| p.counters.get("canon.101").map(|v| (p.serial.as_str(), *v)))
        .collect();
    r.wrong_values = fleet
        .devices
        .iter()
        .filter(|d| {
            let serial = d.serial().unwrap_or_default();
            d.counter_value(&fleet, &counter) != by_serial.get(serial.as_str()).copied()
        })
        .count();
    collector.stop().await;
    r
}

/// The filed rows, read beside the collector on either store.
enum Filed {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Filed {
    /// A count or a seq of the outage agent's rows (`$1` is its id).
    async fn count(&self, sql: &str) -> u64 {
        let n: Option<i64> = match self {
            Filed::Sqlite(db) => sqlx::query_scalar(sql).bind(AGENT_ID).fetch_one(db).await,
            Filed::Postgres(db) => sqlx::query_scalar(sql).bind(AGENT_ID).fetch_one(db).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
        n.unwrap_or(0) as u64
    }

    async fn close(self) {
        match self {
            Filed::Sqlite(db) => db.close().await,
            Filed::Postgres(db) => db.close().await,
        }
    }
}
