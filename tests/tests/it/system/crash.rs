//! Crash tests in the manner of sled's: the test binary runs itself as a
//! child (an agent, or a collector), kills it with SIGKILL at a random moment,
//! restarts it, 50 times, while the simulated fleet keeps advancing. At the
//! end every observation the agent had made durable is filed exactly once.
//!
//! The child entry point is the ignored test `crash_child`; the parents start
//! it with `--ignored --exact system::crash::crash_child` and an environment that says what
//! to be. Set CRASH_SEED to replay a run.

use meterlink_agent::buffer::{Buffer, SledBuffer};
use meterlink_agent::config::AgentConfig;
use meterlink_agent::observation::to_observations;
use meterlink_agent::poll::read_device;
use meterlink_agent::profile::ProfileSet;
use meterlink_agent::snmp::engine::{Engine, EngineConfig};
use meterlink_agent::uplink::{self, UplinkStatus};
use meterlink_collector::config::Config;
use meterlink_collector::pki::Pki;
use meterlink_collector::store::{Settings, Store};
use meterlink_sim::{serve, Fleet, Recording, SimConfig};
use meterlink_tests::peers::{fixtures_dir, until};
use meterlink_tests::stack::{collector_toml, AgentToml};
use std::collections::BTreeSet;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const KILLS: usize = 50;
const AGENT_ID: &str = "agent-crash";

struct Rng(u64);
impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("CRASH_SEED={seed}");
        Rng(seed | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

// ---------------------------------------------------------------- children

#[test]
#[ignore = "child process of the crash tests; started by them"]
fn crash_child() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    match std::env::var("METERLINK_CRASH_CHILD").as_deref() {
        Ok("agent") => rt.block_on(agent_child(
            PathBuf::from(std::env::var("CRASH_CONFIG").unwrap()),
            Some(PathBuf::from(std::env::var("CRASH_LEDGER").unwrap())),
        )),
        Ok("collector") => rt.block_on(collector_child(PathBuf::from(
            std::env::var("CRASH_CONFIG").unwrap(),
        ))),
        _ => panic!("crash_child is started by the crash tests"),
    }
}

/// Polls, appends, records what is durable in the ledger, and streams to the
/// collector, until killed. With no ledger it runs in-process for a parent.
async fn agent_child(conf: PathBuf, ledger: Option<PathBuf>) {
    let v = AgentConfig::load(&conf).unwrap();
    let mut up = meterlink_agent::daemon::uplink_config(&v).unwrap();
    up.backoff_min = Duration::from_millis(50);
    up.backoff_max = Duration::from_millis(400);
    up.batch_max_count = 40;
    let (buf, _) = SledBuffer::open(&v.cfg.data_dir.join("buffer"), u64::MAX).unwrap();
    let buf = Arc::new(buf);
    let engine = Engine::new(EngineConfig {
        timeout: Duration::from_millis(300),
        retries: 1,
        ..EngineConfig::default()
    })
    .await
    .unwrap();
    let profiles = ProfileSet::embedded();
    let notify = Arc::new(tokio::sync::Notify::new());
    let (_keep, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(uplink::run(
        up,
        buf.clone() as Arc<dyn Buffer>,
        notify.clone(),
        Arc::new(UplinkStatus::default()),
        rx,
    ));
    let t = &v.cfg.targets[0];
    let addrs = meterlink_agent::range::expand(&t.addresses, t.port, 1000).unwrap();
    let creds = v.target_creds[0].clone();
    let mut ledger = ledger.map(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap()
    });
    loop {
        let mut obs = Vec::new();
        for a in &addrs {
            if let Ok(r) = read_device(&engine, &profiles, *a, &creds).await {
                obs.extend(to_observations(&r.reading, now_ms(), true));
            }
        }
        let b = buf.clone();
        let seqs = tokio::task::spawn_blocking(move || b.append(obs))
            .await
            .unwrap()
            .unwrap();
        // append returned: these are durable. Record them before anything else.
        if let Some(l) = ledger.as_mut() {
            let text: String = seqs.iter().map(|s| format!("{s}\n")).collect();
            l.write_all(text.as_bytes()).unwrap();
            l.sync_data().unwrap();
        }
        notify.notify_one();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn collector_child(conf: PathBuf) {
    let cfg = Config::load(&conf).unwrap();
    let _running = meterlink_collector::server::start(&cfg).await.unwrap();
    std::future::pending::<()>().await;
}

fn spawn_child(kind: &str, conf: &Path, ledger: Option<&Path>) -> Child {
    // The child test's full name: this module's path without the crate's.
    let module = module_path!();
    let child_test = format!(
        "{}::crash_child",
        module.split_once("::").map_or(module, |(_, rest)| rest)
    );
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "--ignored",
        "--exact",
        child_test.as_str(),
        "--nocapture",
        "--test-threads=1",
    ])
    .env("METERLINK_CRASH_CHILD", kind)
    .env("CRASH_CONFIG", conf)
    .env("RUST_LOG", "error")
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    if let Some(l) = ledger {
        c.env("CRASH_LEDGER", l);
    }
    c.spawn().unwrap()
}

// ---------------------------------------------------------------- set-up

struct World {
    tmp: tempfile::TempDir,
    _fleet: Arc<Fleet>,
    _sim: Vec<tokio::task::JoinHandle<()>>,
    agent_conf: PathBuf,
    collector_conf: PathBuf,
}

async fn world(net: u8, grpc: SocketAddr) -> World {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixtures_dir().join("canon_iradv_c5560.snmprec")).unwrap();
    let (rec, _) = Recording::parse("canon", &text);
    let addrs: Vec<SocketAddr> = (1..=10)
        .map(|i| format!("127.{net}.0.{i}:16161").parse().unwrap())
        .collect();
    // The fleet keeps printing all the while.
    let fleet = Arc::new(Fleet::new(
        SimConfig {
            pages_per_minute: 600.0,
            ..SimConfig::default()
        },
        vec![Arc::new(rec)],
        addrs,
    ));
    let sim = serve(fleet.clone()).await.unwrap();
    let cdir = tmp.path().join("collector");
    let collector_conf = tmp.path().join("collector.toml");
    std::fs::write(
        &collector_conf,
        collector_toml(&cdir, &grpc.to_string(), "127.0.0.1:0"),
    )
    .unwrap();
    let pki = Pki::ensure(&cdir.join("pki"), "crash CA").unwrap();
    pki.issue("localhost", true, &cdir.join("pki"), "collector", None)
        .unwrap();
    let cert = pki
        .issue(AGENT_ID, false, &tmp.path().join("certs"), "agent", None)
        .unwrap();
    let agent_conf = tmp.path().join("agent.toml");
    let range = format!("127.{net}.0.1-10");
    let spec = AgentToml::new(
        AGENT_ID,
        &tmp.path().join("agent"),
        grpc,
        &pki.ca_cert(),
        &cert.cert,
        &cert.key,
        &[&range],
    );
    std::fs::write(&agent_conf, spec.render()).unwrap();
    World {
        tmp,
        _fleet: fleet,
        _sim: sim,
        agent_conf,
        collector_conf,
    }
}

fn free_tcp() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn ledger_seqs(p: &Path) -> BTreeSet<u64> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect()
}

/// Lost and duplicated among the durable observations.
async fn audit(store: &Store, durable: &BTreeSet<u64>) -> (usize, usize) {
    let filed = store.filed_seqs(AGENT_ID).await.unwrap();
    let set: BTreeSet<u64> = filed.iter().copied().collect();
    let duplicated = filed.len() - set.len();
    let lost = durable.iter().filter(|s| !set.contains(s)).count();
    (lost, duplicated)
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_killed_50_times_loses_and_doubles_nothing() {
    let grpc = free_tcp();
    let w = world(61, grpc).await;
    let cfg = Config::load(&w.collector_conf).unwrap();
    let collector = meterlink_collector::server::start(&cfg).await.unwrap();
    let ledger = w.tmp.path().join("ledger");
    let mut rng = Rng::new();
    for _ in 0..KILLS {
        let mut child = spawn_child("agent", &w.agent_conf, Some(&ledger));
        // Somewhere in start-up, polling, appending, sending or handling acks.
        tokio::time::sleep(Duration::from_millis(50 + rng.below(900))).await;
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let durable = ledger_seqs(&ledger);
    assert!(
        durable.len() > 500,
        "too little was polled to mean anything: {}",
        durable.len()
    );
    // A last run drains the buffer.
    let mut child = spawn_child("agent", &w.agent_conf, Some(&ledger));
    let store = collector.store.clone();
    let d = durable.clone();
    until(
        Duration::from_secs(60),
        "every durable observation filed",
        || {
            let (s, d) = (store.clone(), d.clone());
            async move { audit(&s, &d).await.0 == 0 }
        },
    )
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    let (lost, duplicated) = audit(&collector.store, &durable).await;
    eprintln!("agent crash test: {KILLS} kills, {} durable observations, lost {lost}, duplicated {duplicated}", durable.len());
    assert_eq!((lost, duplicated), (0, 0));
    collector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_killed_50_times_loses_and_doubles_nothing() {
    let grpc = free_tcp();
    let w = world(62, grpc).await;
    // The agent runs here and is never killed: all it appends is durable.
    // Its first sequence number is where its fresh buffer starts.
    let v = AgentConfig::load(&w.agent_conf).unwrap();
    let first = {
        let (b, _) = SledBuffer::open(&v.cfg.data_dir.join("buffer"), u64::MAX).unwrap();
        b.stats().next_seq
    };
    let agent = tokio::spawn(agent_child(w.agent_conf.clone(), None));
    let mut rng = Rng::new();
    for _ in 0..KILLS {
        let mut child = spawn_child("collector", &w.collector_conf, None);
        // Somewhere in start-up, ingesting or committing.
        tokio::time::sleep(Duration::from_millis(100 + rng.below(1200))).await;
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let mut child = spawn_child("collector", &w.collector_conf, None);
    // Stop polling, then wait for the agent's buffer to drain.
    tokio::time::sleep(Duration::from_millis(500)).await;
    agent.abort();
    let _ = agent.await;
    let next = agent_drain(w.agent_conf.clone()).await;
    child.kill().unwrap();
    child.wait().unwrap();
    // Everything the agent ever assigned, first..next, is durable and must be filed.
    let durable: BTreeSet<u64> = (first..next).collect();
    let cfg = Config::load(&w.collector_conf).unwrap();
    let store = Store::open(&cfg.store_url(), Settings::default())
        .await
        .unwrap();
    let (lost, duplicated) = audit(&store, &durable).await;
    eprintln!("collector crash test: {KILLS} kills, {} durable observations, lost {lost}, duplicated {duplicated}", durable.len());
    assert!(
        durable.len() > 500,
        "too little was polled to mean anything: {}",
        durable.len()
    );
    assert_eq!((lost, duplicated), (0, 0));
}

/// Reopens the agent's buffer and streams it until empty; returns the next
/// sequence number the agent would use.
async fn agent_drain(conf: PathBuf) -> u64 {
    let v = AgentConfig::load(&conf).unwrap();
    let up = meterlink_agent::daemon::uplink_config(&v).unwrap();
    // The aborted agent's sled handles may linger a moment: open waits for the lock.
    let dir = v.cfg.data_dir.join("buffer");
    let (buf, _) = tokio::task::spawn_blocking(move || SledBuffer::open(&dir, u64::MAX))
        .await
        .unwrap()
        .unwrap();
    let buf = Arc::new(buf);
    let (stop, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(uplink::run(
        up,
        buf.clone() as Arc<dyn Buffer>,
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(UplinkStatus::default()),
        rx,
    ));
    let b = buf.clone();
    until(
        Duration::from_secs(60),
        "the agent's buffer to drain",
        || {
            let b = b.clone();
            async move { b.stats().count == 0 }
        },
    )
    .await;
    let _ = stop.send(true);
    let _ = task.await;
    buf.stats().next_seq
}
