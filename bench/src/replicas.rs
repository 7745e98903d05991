//! Collector replicas sharing one PostgreSQL: one replica with its agents,
//! then several with as many agents each, on a fresh schema each run. In
//! this process (each replica a store with its own connection pool), or as
//! processes of their own with a CPU share each, as replicas on hosts of
//! their own would have, while PostgreSQL keeps the rest of the machine.

use crate::cpu_share::CpuShare;
use crate::ingest::{file_agents, file_at_once, prepare_agents, Shape};
use crate::setup::{drop_store, open_store};
use meterlink_collector::store::{Settings, Store};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// One replica with `per_replica` agents, then `replicas` replicas with
/// `per_replica` agents each; with `cpus`, each replica a process limited
/// to that many CPUs. The rates and their ratio.
pub(crate) async fn replicas_bench(
    shape: &Shape,
    replicas: usize,
    per_replica: usize,
    postgres: &str,
    cpus: Option<f64>,
) {
    match cpus {
        Some(c) => println!("\nEach replica a process limited to {c} CPUs (a cgroup); PostgreSQL and the rest unlimited.\n\n| PostgreSQL | agents | values/s | / one replica | periods each replica was throttled in |\n|---|---|---|---|---|"),
        None => println!("\n| PostgreSQL | agents | values/s | / one replica |\n|---|---|---|---|"),
    }
    let mut one = None;
    for n in [1, replicas] {
        let tmp = tempfile::tempdir().expect("tmp");
        let (url, first) = open_store(Some(postgres), "ingest bench", tmp.path(), "").await;
        let agents = n * per_replica;
        prepare_agents(&first, agents).await;
        let (rate, throttled) = match cpus {
            Some(c) => {
                drop(first);
                replica_processes(&url, n, per_replica, shape, c).await
            }
            None => {
                let mut stores = vec![first];
                for _ in 1..n {
                    stores.push(Arc::new(
                        Store::open(&url, Settings::default()).await.expect("store"),
                    ));
                }
                (file_at_once(&stores, agents, shape).await, Vec::new())
            }
        };
        let base = *one.get_or_insert(rate);
        let mut row = format!(
            "| {n} replica(s) | {agents} | {rate:.0} | {:.2} |",
            rate / base
        );
        if cpus.is_some() {
            let shares: Vec<String> = throttled
                .iter()
                .map(|t| format!("{:.0} %", t * 100.0))
                .collect();
            row.push_str(&format!(" {} |", shares.join(", ")));
        }
        println!("{row}");
        drop_store(&url).await;
    }
}

/// `n` replica processes, each in a CPU share of `cpus`, filing at once
/// into the store at `url`; counter values per second over all of them
/// and the share of periods each was throttled in.
async fn replica_processes(
    url: &str,
    n: usize,
    per_replica: usize,
    shape: &Shape,
    cpus: f64,
) -> (f64, Vec<f64>) {
    let exe = std::env::current_exe().expect("own path");
    let mut running = Vec::new();
    for r in 0..n {
        let share = CpuShare::new(&format!("meterlink-bench-{}-{r}", std::process::id()), cpus)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut child = tokio::process::Command::new(&exe)
            .arg("replica-child")
            .args(["--url", url])
            .args(["--first-agent", &(r * per_replica).to_string()])
            .args(["--agents", &per_replica.to_string()])
            .args(["--total-agents", &(n * per_replica).to_string()])
            .args(["--products", &shape.products.to_string()])
            .args(["--readings", &shape.readings.to_string()])
            .args(["--batch", &shape.batch.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("a replica process");
        // Into its share before it files anything: until told to go it
        // only opens its store.
        share
            .add(child.id().expect("a running replica"))
            .unwrap_or_else(|e| panic!("{e}"));
        let stdin = child.stdin.take().expect("stdin");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        running.push((child, share, stdin, lines));
    }
    for (r, (_, _, _, lines)) in running.iter_mut().enumerate() {
        let ready = lines.next_line().await.expect("a replica's output");
        assert_eq!(
            ready.as_deref(),
            Some("ready"),
            "replica {r} did not start (see its stderr)"
        );
    }
    let started = Instant::now();
    for (_, _, stdin, _) in running.iter_mut() {
        stdin.write_all(b"go\n").await.expect("start a replica");
    }
    let mut values = 0u64;
    for (r, (_, _, _, lines)) in running.iter_mut().enumerate() {
        let line = lines
            .next_line()
            .await
            .expect("a replica's output")
            .unwrap_or_else(|| panic!("replica {r} ended without its figures (see its stderr)"));
        values += line
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("replica {r} printed {line:?}, not its figures"));
    }
    let rate = values as f64 / started.elapsed().as_secs_f64();
    let mut throttled = Vec::new();
    for (mut child, share, _, _) in running {
        child.wait().await.expect("a replica's exit");
        throttled.push(share.throttled().unwrap_or(f64::NAN));
    }
    (rate, throttled)
}

/// A replica process: opens the store at `url`, says "ready", files agents
/// `first..first + agents` (of `total` sharing the products) once a line
/// comes on stdin, and prints the counter values filed and the seconds.
pub(crate) async fn replica_child(
    url: &str,
    first: usize,
    agents: usize,
    total: usize,
    shape: &Shape,
) {
    let store = Arc::new(Store::open(url, Settings::default()).await.expect("store"));
    println!("ready");
    tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new()))
        .await
        .expect("the go line's task")
        .expect("the go line");
    let (values, secs) = file_agents(&[store], first..first + agents, total, shape).await;
    println!("{values} {secs}");
}
