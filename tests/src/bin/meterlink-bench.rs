//! meterlink-bench: reads a simulated fleet of Canon devices with the
//! meterlink agent, Prometheus snmp_exporter and net-snmp's command-line
//! tools, side by side in one run, and prints the figures and their ratios.
//!
//! The simulator and the exporter's load driver run in this process; the
//! agent runs as a child process (this binary in `agent-child` mode, using the
//! agent library's read path) so that its CPU time and peak memory are its
//! own; the exporter and the net-snmp tools are their own processes too.

use clap::{Parser, Subcommand};

// Reads of thousands of devices allocate many small buffers; mimalloc keeps
// that cheap (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use meterlink_agent::poll::read_device;
use meterlink_agent::profile::ProfileSet;
use meterlink_agent::snmp::engine::{Credential, CredentialSet, Engine, EngineConfig, Secret};
use meterlink_agent::snmp::{Oid, Value, Version};
use meterlink_tests::sim::{serve, Fleet, Recording, SimConfig};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Parser)]
#[command(
    name = "meterlink-bench",
    about = "Full-read benchmark: meterlink agent vs snmp_exporter vs net-snmp"
)]
struct Args {
    #[command(subcommand)]
    mode: Option<Mode>,
    /// Simulated Canon devices.
    #[arg(long, default_value_t = 10_000)]
    devices: usize,
    /// Devices read at once, by every reader.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Latency of the latency-bound scenario, in milliseconds.
    #[arg(long, default_value_t = 20.0)]
    latency_ms: f64,
    /// Devices read with the net-snmp tools (one process per request is slow).
    #[arg(long, default_value_t = 1000)]
    netsnmp_devices: usize,
    #[arg(long)]
    skip_exporter: bool,
    #[arg(long)]
    skip_netsnmp: bool,
    /// Recording to clone (default: the project's Canon iR-ADV fixture).
    #[arg(long)]
    recording: Option<PathBuf>,
    /// First device address; devices get consecutive addresses on one port.
    #[arg(long, default_value = "127.80.0.1:16161")]
    first: SocketAddr,
}

#[derive(Subcommand)]
enum Mode {
    /// Store and forward: collector ingest with durable acks against a plain
    /// SQLite insert loop, buffer append/ack, poll-to-ack latency.
    Store {
        /// Meter observations to file.
        #[arg(long, default_value_t = 20_000)]
        observations: usize,
        /// Counters per observation.
        #[arg(long, default_value_t = 20)]
        counters: usize,
        /// Poll cycles for the latency measurement.
        #[arg(long, default_value_t = 30)]
        cycles: usize,
        /// Skip the plain SQLite baseline (to profile ingest alone).
        #[arg(long)]
        no_baseline: bool,
    },
    /// Outage: the collector down while the agent daemon polls the fleet
    /// until the buffer has taken `observations`; then the backlog drains.
    Outage {
        #[arg(long, default_value_t = 10_000)]
        devices: usize,
        #[arg(long, default_value_t = 1_000_000)]
        observations: u64,
        /// The buffer's bound in MiB (the agent's default is 512).
        #[arg(long, default_value_t = 512)]
        bound_mib: u64,
    },
    /// Poll-to-ack latency: the agent daemon polls the fleet on a schedule
    /// with the collector up; from each device read's start to the Ack.
    Latency {
        #[arg(long, default_value_t = 1_000)]
        devices: usize,
        /// Simulated response time of each device, in milliseconds.
        #[arg(long, default_value_t = 20.0)]
        latency_ms: f64,
        /// Poll cycles, one every 5 seconds.
        #[arg(long, default_value_t = 6)]
        cycles: u64,
    },
    /// Portal backend: filing throughput, then the REST API's paged product
    /// list and one product's reading history over HTTP (p50/p99), against
    /// /healthz over the same connection path as the baseline.
    Portal {
        #[arg(long, default_value_t = 100_000)]
        products: usize,
        /// Filed readings per product (spread over 4 counters).
        #[arg(long, default_value_t = 100)]
        readings: usize,
        /// PostgreSQL database (a fresh schema is made in it); default SQLite.
        #[arg(long)]
        postgres: Option<String>,
        /// HTTP requests per measurement.
        #[arg(long, default_value_t = 2_000)]
        requests: usize,
    },
    /// Internal: read `devices` devices with the agent library and print figures.
    AgentChild {
        #[arg(long)]
        first: SocketAddr,
        #[arg(long)]
        devices: usize,
        #[arg(long)]
        concurrency: usize,
    },
}

fn addrs(first: SocketAddr, n: usize) -> Vec<SocketAddr> {
    let IpAddr::V4(ip) = first.ip() else {
        panic!("IPv4 first address")
    };
    (0..n)
        .map(|i| {
            SocketAddr::new(
                IpAddr::V4(Ipv4Addr::from(u32::from(ip) + i as u32)),
                first.port(),
            )
        })
        .collect()
}

/// CPU seconds (user + system) of a process, and of its reaped children.
fn cpu_of(pid: &str) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<f64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // Fields after ')' start at field 3; utime=14, stime=15, cutime=16, cstime=17.
    let tick = 100.0;
    let g = |n: usize| f.get(n - 3).copied().unwrap_or(0.0) / tick;
    (g(14) + g(15), g(16) + g(17))
}

/// Peak resident set size in MB.
fn peak_rss_mb(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

async fn agent_child(first: SocketAddr, devices: usize, concurrency: usize) {
    let engine = Engine::new(EngineConfig {
        concurrency,
        timeout: Duration::from_secs(2),
        retries: 2,
        ..EngineConfig::default()
    })
    .await
    .expect("engine");
    let profiles = Arc::new(ProfileSet::embedded());
    let cred = Arc::new([CredentialSet {
        name: "public".into(),
        credential: Credential::Community {
            version: Version::V2c,
            community: Secret("public".into()),
        },
    }]);
    let cpu0 = cpu_of("self").0;
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for a in addrs(first, devices) {
        let (e, p, c) = (engine.clone(), profiles.clone(), cred.clone());
        set.spawn(async move {
            read_device(&e, &p, a, &c[..])
                .await
                .map(|r| (r.pdus, r.reading.counters.len()))
        });
    }
    let (mut ok, mut failed, mut pdus, mut counters) = (0u64, 0u64, 0u64, 0usize);
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok((p, c))) => {
                ok += 1;
                pdus += p;
                counters += c;
            }
            _ => failed += 1,
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_of("self").0 - cpu0;
    println!(
        "{}",
        serde_json::json!({"wall": wall, "cpu": cpu, "rss_mb": peak_rss_mb("self"), "ok": ok, "failed": failed,
            "pdus": pdus, "counters": counters})
    );
}

#[derive(Debug, Default, Clone)]
struct Figures {
    wall: f64,
    cpu: f64,
    rss_mb: f64,
    ok: u64,
    failed: u64,
    pdus_per_device: f64,
}

/// Writes an snmp_exporter module that reads the same OIDs as a full
/// meterlink read of `rec`: the scalars as `get`, the profile's columns as `walk`.
fn exporter_config(rec: &Recording, path: &std::path::Path) {
    let set = ProfileSet::embedded();
    let canon = set.get("canon").expect("canon profile");
    let value_of = |prefix: &Oid| {
        rec.items
            .iter()
            .find(|(o, _)| o.starts_with(prefix))
            .map(|x| (x.0.clone(), x.1.clone()))
    };
    let kind = |v: &Value, o: &Oid| match v {
        Value::OctetString(_) if o.to_string().starts_with("1.3.6.1.2.1.2.2.1.6") => {
            "PhysAddress48"
        }
        Value::OctetString(_) => "DisplayString",
        Value::ObjectId(_) => "OctetString",
        Value::Counter32(_) | Value::Counter64(_) => "counter",
        _ => "gauge",
    };
    let mut get = String::new();
    let mut walk = String::new();
    let mut metrics = String::new();
    let mut n = 0;
    for o in set.scalar_oids() {
        get.push_str(&format!("    - {o}\n"));
        if let Some((_, v)) = value_of(o) {
            let parent = Oid(o.arcs()[..o.arcs().len() - 1].to_vec());
            n += 1;
            metrics.push_str(&format!(
                "    - name: s{n}\n      oid: {parent}\n      type: {}\n",
                kind(&v, o)
            ));
            if o.arcs().last() != Some(&0) {
                metrics
                    .push_str("      indexes:\n        - labelname: idx\n          type: gauge\n");
            }
        }
    }
    for col in canon.walk_columns() {
        walk.push_str(&format!("    - {col}\n"));
        if let Some((o, v)) = value_of(&col) {
            n += 1;
            metrics.push_str(&format!(
                "    - name: w{n}\n      oid: {col}\n      type: {}\n      indexes:\n",
                kind(&v, &o)
            ));
            for k in 0..o.arcs().len() - col.arcs().len() {
                metrics.push_str(&format!(
                    "        - labelname: i{k}\n          type: gauge\n"
                ));
            }
        }
    }
    let text = format!(
        "# Generated by meterlink-bench from the meterlink read plan.\ncanon:\n  version: 2\n  auth:\n    community: public\n  max_repetitions: 25\n  retries: 2\n  timeout: 2s\n  get:\n{get}  walk:\n{walk}  metrics:\n{metrics}"
    );
    std::fs::write(path, text).expect("write exporter config");
}

async fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, usize)> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.ok()?;
    let head = String::from_utf8_lossy(&buf[..buf.len().min(64)]).to_string();
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, buf.len()))
}

fn requests(fleet: &Fleet) -> u64 {
    fleet.devices.iter().map(|d| d.requests()).sum()
}

async fn run_agent(fleet: &Fleet, a: &Args) -> Figures {
    let exe = std::env::current_exe().expect("own path");
    let before = requests(fleet);
    let out = tokio::process::Command::new(exe)
        .args([
            "agent-child",
            "--first",
            &a.first.to_string(),
            "--devices",
            &a.devices.to_string(),
            "--concurrency",
            &a.concurrency.to_string(),
        ])
        .output()
        .await
        .expect("agent child");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "agent child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    Figures {
        wall: v["wall"].as_f64().unwrap_or(0.0),
        cpu: v["cpu"].as_f64().unwrap_or(0.0),
        rss_mb: v["rss_mb"].as_f64().unwrap_or(0.0),
        ok: v["ok"].as_u64().unwrap_or(0),
        failed: v["failed"].as_u64().unwrap_or(0),
        pdus_per_device: (requests(fleet) - before) as f64 / a.devices as f64,
    }
}

async fn run_exporter(fleet: &Fleet, a: &Args, config: &std::path::Path) -> Option<Figures> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let listen: SocketAddr = format!("127.0.0.1:{port}").parse().ok()?;
    let mut child = tokio::process::Command::new("prometheus-snmp-exporter")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.listen-address={listen}"))
        .arg("--log.level=error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    let pid = child.id()?.to_string();
    // Ready when it answers HTTP (bounded).
    let deadline = Instant::now() + Duration::from_secs(20);
    while http_get(listen, "/").await.is_none() {
        if Instant::now() > deadline {
            eprintln!("snmp_exporter did not start");
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cpu0 = cpu_of(&pid).0;
    let before = requests(fleet);
    let start = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(a.concurrency));
    let mut set = tokio::task::JoinSet::new();
    for d in addrs(a.first, a.devices) {
        let sem = sem.clone();
        set.spawn(async move {
            let _p = sem.acquire_owned().await.ok()?;
            http_get(listen, &format!("/snmp?module=canon&target={d}")).await
        });
    }
    let (mut ok, mut failed) = (0, 0);
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Some((200, n))) if n > 1000 => ok += 1,
            _ => failed += 1,
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let f = Figures {
        wall,
        cpu: cpu_of(&pid).0 - cpu0,
        rss_mb: peak_rss_mb(&pid),
        ok,
        failed,
        pdus_per_device: (requests(fleet) - before) as f64 / a.devices as f64,
    };
    let _ = child.kill().await;
    Some(f)
}

async fn run_netsnmp(fleet: &Fleet, a: &Args) -> Figures {
    let n = a.netsnmp_devices.min(a.devices);
    let set_ = ProfileSet::embedded();
    let scalars: Vec<String> = set_.scalar_oids().iter().map(|o| o.to_string()).collect();
    // Whole subtrees, as a person with the net-snmp tools would walk them.
    let walks = [
        "1.3.6.1.2.1.2.2.1.6",
        "1.3.6.1.4.1.1602.1.11",
        "1.3.6.1.2.1.43.11.1.1",
        "1.3.6.1.2.1.43.18.1.1",
        "1.3.6.1.2.1.43.16.5.1.2",
    ];
    let cpu0 = cpu_of("self").1;
    let before = requests(fleet);
    let start = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(a.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for d in addrs(a.first, n) {
        let sem = sem.clone();
        let scalars = scalars.clone();
        tasks.spawn(async move {
            let _p = sem.acquire_owned().await.ok()?;
            let target = format!("udp:{d}");
            let mut get = tokio::process::Command::new("snmpget");
            get.args([
                "-v2c", "-c", "public", "-t", "2", "-r", "2", "-Oqn", &target,
            ])
            .args(&scalars);
            let mut ok = get.output().await.ok()?.status.success();
            for w in walks {
                let o = tokio::process::Command::new("snmpbulkwalk")
                    .args([
                        "-v2c", "-c", "public", "-t", "2", "-r", "2", "-Cr25", "-Oqn", &target, w,
                    ])
                    .output()
                    .await
                    .ok()?;
                ok &= o.status.success();
            }
            Some(ok)
        });
    }
    let (mut ok, mut failed) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Some(true)) => ok += 1,
            _ => failed += 1,
        }
    }
    Figures {
        wall: start.elapsed().as_secs_f64(),
        cpu: cpu_of("self").1 - cpu0,
        rss_mb: 0.0,
        ok,
        failed,
        pdus_per_device: (requests(fleet) - before) as f64 / n as f64,
    }
}

fn have(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

async fn scenario(a: &Args, rec: &Arc<Recording>, latency_ms: f64, config: &std::path::Path) {
    let cfg = SimConfig {
        latency: Duration::from_secs_f64(latency_ms / 1000.0),
        ..SimConfig::default()
    };
    let fleet = Arc::new(Fleet::new(
        cfg,
        vec![rec.clone()],
        addrs(a.first, a.devices),
    ));
    let tasks = serve(fleet.clone())
        .await
        .expect("serve the fleet (raise ulimit -n above the device count)");
    let sim_cpu0 = cpu_of("self").0;
    println!(
        "\n## {} devices, {latency_ms} ms per response, concurrency {}\n",
        a.devices, a.concurrency
    );
    let agent = run_agent(&fleet, a).await;
    let exporter = if a.skip_exporter || !have("prometheus-snmp-exporter") {
        None
    } else {
        run_exporter(&fleet, a, config).await
    };
    let netsnmp = if a.skip_netsnmp || !have("snmpbulkwalk") {
        None
    } else {
        Some(run_netsnmp(&fleet, a).await)
    };
    let sim_cpu = cpu_of("self").0 - sim_cpu0;
    println!("| reader | devices read | failed | wall s | CPU s | CPU s per 10k reads | peak RSS MB | PDUs/device |");
    println!("|---|---|---|---|---|---|---|---|");
    let row = |name: &str, f: &Figures, n: usize| {
        println!(
            "| {name} | {} | {} | {:.2} | {:.2} | {:.2} | {} | {:.2} |",
            f.ok,
            f.failed,
            f.wall,
            f.cpu,
            f.cpu * 10_000.0 / n as f64,
            if f.rss_mb > 0.0 {
                format!("{:.1}", f.rss_mb)
            } else {
                "-".into()
            },
            f.pdus_per_device
        );
    };
    row("meterlink agent", &agent, a.devices);
    if let Some(e) = &exporter {
        row("snmp_exporter", e, a.devices);
    }
    if let Some(n) = &netsnmp {
        row("net-snmp tools", n, a.netsnmp_devices.min(a.devices));
    }
    println!("\nsimulator and load driver (this process): {sim_cpu:.2} CPU s over the scenario");
    let floor =
        a.devices as f64 * agent.pdus_per_device * latency_ms / 1000.0 / a.concurrency as f64;
    if latency_ms > 0.0 {
        println!("agent floor (devices x PDUs/device x latency / concurrency): {floor:.2} s; agent wall / floor = {:.2}", agent.wall / floor.max(1e-9));
    }
    if let Some(e) = &exporter {
        println!(
            "agent / snmp_exporter: wall {:.2}, CPU {:.3}, PDUs/device {:.2}",
            agent.wall / e.wall.max(1e-9),
            agent.cpu / e.cpu.max(1e-9),
            agent.pdus_per_device / e.pdus_per_device.max(1e-9)
        );
    }
    if let Some(n) = &netsnmp {
        let k = a.devices as f64 / a.netsnmp_devices.min(a.devices) as f64;
        println!(
            "agent / net-snmp tools (scaled to {} devices): CPU {:.3}, PDUs/device {:.2}",
            a.devices,
            agent.cpu / (n.cpu * k).max(1e-9),
            agent.pdus_per_device / n.pdus_per_device.max(1e-9)
        );
    }
    for t in tasks {
        t.abort();
        let _ = t.await;
    }
}

/// The first address of the next /16.
fn next_block(first: SocketAddr) -> SocketAddr {
    let IpAddr::V4(ip) = first.ip() else {
        return first;
    };
    let o = ip.octets();
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(o[0], o[1].wrapping_add(1), o[2], o[3])),
        first.port(),
    )
}

fn main() {
    let a = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match a.mode {
        Some(Mode::AgentChild {
            first,
            devices,
            concurrency,
        }) => {
            rt.block_on(agent_child(first, devices, concurrency));
            return;
        }
        Some(Mode::Store {
            observations,
            counters,
            cycles,
            no_baseline,
        }) => {
            rt.block_on(store_bench::run(
                observations,
                counters,
                cycles,
                !no_baseline,
            ));
            return;
        }
        Some(Mode::Portal {
            products,
            readings,
            postgres,
            requests,
        }) => {
            rt.block_on(portal_bench(products, readings, postgres, requests));
            return;
        }
        Some(Mode::Latency {
            devices,
            latency_ms,
            cycles,
        }) => {
            rt.block_on(latency_bench(devices, latency_ms, cycles));
            return;
        }
        Some(Mode::Outage {
            devices,
            observations,
            bound_mib,
        }) => {
            let p = meterlink_tests::outage::OutageParams {
                devices,
                min_observations: observations,
                bound_bytes: bound_mib << 20,
                first: "127.92.0.1".parse().expect("address"),
                limit: Duration::from_secs(3600),
            };
            let dir = tempfile::tempdir().expect("temp dir");
            println!("# meterlink-bench outage: {devices} devices, at least {observations} observations, bound {bound_mib} MiB\n");
            let r = rt.block_on(meterlink_tests::outage::run(&p, dir.path()));
            r.print();
            // A day of 15-minute meter reads of this fleet (4 observations
            // per device and poll), and how long it takes to send.
            let day = (devices * 4 * 96) as f64;
            println!(
                "\na day's backlog of 15-minute polls ({day:.0} observations) drains in {:.1} min; polling made {:.0} observations/s back to back",
                day / r.drain_rate() / 60.0,
                r.appended as f64 / r.polling_secs
            );
            assert_eq!(r.filed, r.backlog_count, "every buffered observation filed");
            assert_eq!(r.out_of_order, 0, "filed in sequence order");
            assert_eq!(r.wrong_values, 0, "latest counters filed");
            return;
        }
        None => {}
    }
    let path = a.recording.clone().unwrap_or_else(|| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/canon_iradv_c5560.snmprec")
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (rec, _) = Recording::parse("canon", &text);
    let rec = Arc::new(rec);
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("snmp.yml");
    exporter_config(&rec, &config);
    println!(
        "# meterlink-bench: full read (identity, counters, supplies, status, alerts) of {}",
        path.display()
    );
    rt.block_on(async {
        scenario(&a, &rec, a.latency_ms, &config).await;
        // A fresh address block: the first fleet's sockets may linger a moment.
        let mut b = Args::parse();
        b.first = next_block(a.first);
        scenario(&b, &rec, 0.0, &config).await;
    });
}

/// Poll-to-ack latency through the real daemon, uplink and collector.
async fn latency_bench(devices: usize, latency_ms: f64, cycles: u64) {
    use meterlink_tests::stack::AgentToml;
    let tmp = tempfile::tempdir().expect("tmp");
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/canon_iradv_c5560.snmprec"),
    )
    .expect("fixture");
    let (rec, _) = Recording::parse("canon", &text);
    let first = u32::from("127.93.0.1".parse::<std::net::Ipv4Addr>().expect("ip"));
    let addrs: Vec<SocketAddr> = (0..devices as u32)
        .map(|i| SocketAddr::new(std::net::Ipv4Addr::from(first + i).into(), 16161))
        .collect();
    let sim = SimConfig {
        latency: Duration::from_secs_f64(latency_ms / 1000.0),
        ..SimConfig::default()
    };
    let fleet = Arc::new(Fleet::new(sim, vec![Arc::new(rec)], addrs));
    let _sim = serve(fleet).await.expect("fleet");
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
    let range = format!(
        "127.93.0.1-{}",
        std::net::Ipv4Addr::from(first + devices as u32 - 1)
    );
    let mut spec = AgentToml::new(
        "bench-agent",
        &tmp.path().join("agent"),
        collector.grpc_addr,
        &pki.ca_cert(),
        &cert.cert,
        &cert.key,
        &[&range],
    );
    spec.meter = "*/5 * * * * *".into();
    spec.engine = Some((2.0, 1, 256));
    let conf = tmp.path().join("agent.toml");
    std::fs::write(&conf, spec.render()).expect("agent.toml");
    let v = meterlink_agent::config::AgentConfig::load(&conf).expect("agent config");
    let (stop, rx) = tokio::sync::watch::channel(false);
    let daemon = tokio::spawn(meterlink_agent::daemon::run(v, rx));
    let status = meterlink_agent::daemon::status_path(&tmp.path().join("agent"));
    let want = devices as u64 * 4 * cycles;
    let deadline = Instant::now() + Duration::from_secs(60 + 10 * cycles);
    let report = loop {
        assert!(
            Instant::now() < deadline,
            "latency bench: {want} observations not acked in time"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Some(r) = std::fs::read_to_string(&status)
            .ok()
            .and_then(|t| serde_json::from_str::<meterlink_agent::daemon::StatusReport>(&t).ok())
        else {
            continue;
        };
        if collector
            .store
            .observation_count("bench-agent")
            .await
            .unwrap_or(0)
            >= want
            && r.backlog_count == 0
        {
            break r;
        }
    };
    let _ = stop.send(true);
    let _ = daemon.await;
    collector.stop().await;
    let (p50, p99) = (
        report.ack_latency_p50_ms.unwrap_or(0),
        report.ack_latency_p99_ms.unwrap_or(0),
    );
    println!("# meterlink-bench latency: {devices} devices answering in {latency_ms} ms, {cycles} polls 5 s apart\n");
    println!("| what | ms |");
    println!("|---|---|");
    println!(
        "| one poll of all devices (baseline: the read itself) | {} |",
        report.last_poll_ms
    );
    println!("| poll-to-ack p50 (device read start to Ack, last 16,384 observations) | {p50} |");
    println!("| poll-to-ack p99 | {p99} |");
    println!(
        "\np99 poll-to-ack / poll duration: {:.2}",
        p99 as f64 / report.last_poll_ms.max(1) as f64
    );
}

mod store_bench {
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
}

async fn portal_bench(products: usize, readings: usize, postgres: Option<String>, requests: usize) {
    use meterlink_collector::store::{Account, Settings, Store};
    use meterlink_proto::v1::observation::Body;
    use meterlink_proto::v1::{CounterValue, MeterReading, Observation};
    let tmp = tempfile::tempdir().expect("tmp");
    let url = match &postgres {
        Some(base) => {
            std::env::set_var(meterlink_collector::store::TEST_DATABASE_ENV, base);
            meterlink_collector::store::scratch_postgres("portal bench")
                .await
                .expect("schema")
        }
        None => tmp.path().join("portal.db").display().to_string(),
    };
    let store = Arc::new(Store::open(&url, Settings::default()).await.expect("store"));
    let counters = 4;
    let per_product = readings.div_ceil(counters);
    println!(
        "# meterlink-bench portal: {} store, {products} products x {} readings\n",
        store.backend(),
        per_product * counters
    );
    store
        .put_account(&Account {
            id: "acme".into(),
            name: "Acme".into(),
            billing_code: "B".into(),
            service_code: "S".into(),
            auto_create_products: true,
            time_zone: "UTC".into(),
        })
        .await
        .expect("account");
    store.agent_hello("bench", "1", 0).await.expect("hello");
    store
        .set_agent_account("bench", Some("acme"))
        .await
        .expect("agent account");
    // Filing: each round reads every product once, a day after the last.
    let t0 = 1_700_000_000_000i64;
    let mut seq = 0u64;
    let t = Instant::now();
    let mut values = 0u64;
    for round in 0..per_product {
        for chunk in (0..products).collect::<Vec<_>>().chunks(5_000) {
            let batch: Vec<Observation> = chunk
                .iter()
                .map(|p| {
                    seq += 1;
                    Observation {
                        seq,
                        taken_at_ms: t0 + round as i64 * 86_400_000 + *p as i64,
                        device_address: "10.0.0.1:161".into(),
                        serial: format!("P{p:07}"),
                        body: Some(Body::Meter(MeterReading {
                            counters: (0..counters)
                                .map(|c| CounterValue {
                                    id: format!("canon.{}", 101 + c),
                                    value: 1_000 + round as u64 * 500 + c as u64,
                                    ..Default::default()
                                })
                                .collect(),
                        })),
                    }
                })
                .collect();
            values += store
                .ingest("bench", &batch)
                .await
                .expect("ingest")
                .counter_values;
        }
        if round == 0 || (round + 1) % 5 == 0 {
            eprintln!(
                "round {}/{per_product}: {values} values in {:.0} s",
                round + 1,
                t.elapsed().as_secs_f64()
            );
        }
    }
    let filing_s = t.elapsed().as_secs_f64();
    println!("| what | figure |\n|---|---|");
    println!("| filing (store.ingest, batches of 5,000 x {counters}) | {:.0} counter values/s ({values} in {filing_s:.0} s) |", values as f64 / filing_s);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(meterlink_collector::api::serve(listener, store.clone()));
    // Every API call authenticates: an operator's token, as a portal would hold.
    store
        .put_user(&meterlink_collector::auth::User {
            id: "bench".into(),
            name: "bench".into(),
            role: meterlink_collector::auth::Role::Operator,
            account: None,
        })
        .await
        .expect("user");
    let token = store
        .issue_token("bench", "bench", None, meterlink_collector::store::now_ms())
        .await
        .expect("token")
        .token;
    let token = &token;
    let mut rng = 0x9e3779b97f4a7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let measure = |name: &str, paths: Vec<String>| {
        let name = name.to_string();
        async move {
            let mut lat = Vec::with_capacity(paths.len());
            for p in &paths {
                let t = Instant::now();
                let r = meterlink_tests::http::request_as(addr, Some(token), "GET", p, None).await;
                lat.push(t.elapsed().as_secs_f64() * 1e3);
                assert_eq!(r.status, 200, "{p}: {}", r.body);
            }
            lat.sort_by(|a, b| a.total_cmp(b));
            let q = |f: f64| lat[((lat.len() as f64 * f) as usize).min(lat.len() - 1)];
            (name, q(0.5), q(0.99))
        }
    };
    let health = measure(
        "GET /healthz (baseline)",
        (0..requests).map(|_| "/healthz".to_string()).collect(),
    )
    .await;
    let me = measure(
        "GET /api/v1/me (the token lookup alone)",
        (0..requests).map(|_| "/api/v1/me".to_string()).collect(),
    )
    .await;
    let list = measure(
        "GET /api/v1/products?limit=50&after=<random serial>",
        (0..requests)
            .map(|_| {
                format!(
                    "/api/v1/products?limit=50&after=P{:07}",
                    next() % products as u64
                )
            })
            .collect(),
    )
    .await;
    let history = measure(
        "GET /api/v1/products/<random>/readings",
        (0..requests)
            .map(|_| format!("/api/v1/products/P{:07}/readings", next() % products as u64))
            .collect(),
    )
    .await;
    println!(
        "\n| request ({requests} each) | p50 ms | p99 ms | p99 / baseline p99 |\n|---|---|---|---|"
    );
    for (name, p50, p99) in [&health, &me, &list, &history] {
        println!("| {name} | {p50:.2} | {p99:.2} | {:.1} |", p99 / health.2);
    }
    if postgres.is_some() {
        meterlink_collector::store::drop_scratch_postgres(&url).await;
    }
}
