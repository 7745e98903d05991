//! Two collector replicas on one PostgreSQL, and an agent whose connection
//! is moved from one to the other in the middle of its stream (a load
//! balancer that fails over): every observation filed once, none lost.

use meterlink_agent::config::AgentConfig;
use meterlink_collector::store::scratch_postgres;
use meterlink_sim::{serve, Fleet, Recording, SimConfig};
use meterlink_tests::peers::{fixtures_dir, until};
use meterlink_tests::stack::{drain_agent, start_collector, AgentToml};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// A TCP forwarder standing in for a load balancer: new connections go to
/// `upstreams[current]`; `switch` moves to the next one and cuts every open
/// connection.
struct Balancer {
    addr: SocketAddr,
    current: Arc<AtomicUsize>,
    conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accepted: Arc<AtomicUsize>,
}

impl Balancer {
    async fn start(upstreams: Vec<SocketAddr>) -> Balancer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let current = Arc::new(AtomicUsize::new(0));
        let conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Default::default();
        let accepted = Arc::new(AtomicUsize::new(0));
        let (c, k, a) = (current.clone(), conns.clone(), accepted.clone());
        tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::Relaxed);
                let up_addr = upstreams[c.load(Ordering::Relaxed) % upstreams.len()];
                let task = tokio::spawn(async move {
                    if let Ok(mut up) = TcpStream::connect(up_addr).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                k.lock().unwrap().push(task);
            }
        });
        Balancer {
            addr,
            current,
            conns,
            accepted,
        }
    }

    fn switch(&self) {
        self.current.fetch_add(1, Ordering::Relaxed);
        for t in self.conns.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_moved_between_replicas_mid_stream_nothing_lost_nothing_doubled() {
    let Some(url) = scratch_postgres("agent_moved_between_replicas_mid_stream").await else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // Both replicas share the data directory's development CA and server
    // certificate, as replicas behind one name would.
    let dir = tmp.path().join("collector");
    let extra = format!("[store]\npostgres = \"{url}\"\n");
    let a = start_collector(&dir, &extra, "agent-rep", &tmp.path().join("certs")).await;
    let b = start_collector(&dir, &extra, "agent-rep", &tmp.path().join("certs-b")).await;
    let lb = Balancer::start(vec![a.running.grpc_addr, b.running.grpc_addr]).await;

    let text = std::fs::read_to_string(fixtures_dir().join("canon_iradv_c5560.snmprec")).unwrap();
    let (rec, _) = Recording::parse("canon", &text);
    let addrs: Vec<SocketAddr> = (1..=30)
        .map(|i| format!("127.49.0.{i}:16161").parse().unwrap())
        .collect();
    let fleet = Arc::new(Fleet::new(SimConfig::default(), vec![Arc::new(rec)], addrs));
    let _sim = serve(fleet.clone()).await.unwrap();

    let mut spec = AgentToml::new(
        "agent-rep",
        &tmp.path().join("agent"),
        lb.addr,
        &a.pki.ca_cert(),
        &a.agent_cert.cert,
        &a.agent_cert.key,
        &["127.49.0.1-30"],
    );
    spec.meter = "* * * * * *".into();
    spec.batch_max_count = Some(20);
    spec.engine = Some((0.5, 1, 64));
    let conf = tmp.path().join("agent.toml");
    std::fs::write(&conf, spec.render()).unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let daemon = tokio::spawn(meterlink_agent::daemon::run(
        AgentConfig::load(&conf).unwrap(),
        rx,
    ));

    let store = a.running.store.clone();
    let filed = |n: u64| {
        let s = store.clone();
        move || {
            let s = s.clone();
            async move { s.observation_count("agent-rep").await.unwrap() >= n }
        }
    };
    // Streaming to A; then moved to B in the middle of the stream, and back.
    until(
        Duration::from_secs(60),
        "observations filed through replica A",
        filed(150),
    )
    .await;
    lb.switch();
    until(
        Duration::from_secs(60),
        "observations filed through replica B",
        filed(450),
    )
    .await;
    lb.switch();
    until(
        Duration::from_secs(60),
        "observations filed through A again",
        filed(750),
    )
    .await;
    stop.send(true).unwrap();
    daemon.await.unwrap().unwrap();
    assert!(
        lb.accepted.load(Ordering::Relaxed) >= 3,
        "the agent reconnected"
    );

    // Drain the rest through B, with a schedule that does not fire.
    lb.switch();
    let next = drain_agent(&mut spec, &conf).await;

    // Every sequence number the agent assigned is filed exactly once, and
    // both replicas see the same.
    let seqs = b.running.store.filed_seqs("agent-rep").await.unwrap();
    assert_eq!(seqs, a.running.store.filed_seqs("agent-rep").await.unwrap());
    let first = seqs[0];
    let lost: Vec<u64> = (first..next)
        .filter(|s| seqs.binary_search(s).is_err())
        .collect();
    assert!(lost.is_empty(), "observations lost: {lost:?}");
    assert_eq!(
        seqs.len() as u64,
        next - first,
        "filed twice or out of range"
    );
    // Readings: one filed history row per (product, counter, time).
    let serial = fleet.devices[3].serial().unwrap();
    let readings = a.running.store.readings(&serial).await.unwrap();
    let mut keys: Vec<(String, i64)> = readings
        .iter()
        .map(|r| (r.counter.clone(), r.taken_at_ms))
        .collect();
    let n = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), n, "a reading filed twice");
    eprintln!(
        "{} observations filed once across two replicas; the agent connected {} times",
        seqs.len(),
        lb.accepted.load(Ordering::Relaxed)
    );
    a.running.stop().await;
    b.running.stop().await;
}
