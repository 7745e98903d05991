//! The full-read benchmark: the agent, snmp_exporter and net-snmp reading
//! the same simulated fleet, one after another in one run.

use meterlink_agent::poll::read_device;
use meterlink_agent::profile::ProfileSet;
use meterlink_agent::snmp::engine::{Credential, CredentialSet, Engine, EngineConfig, Secret};
use meterlink_agent::snmp::{Oid, Value, Version};
use meterlink_sim::{serve, Fleet, Recording, SimConfig};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Args;

pub(crate) fn addrs(first: SocketAddr, n: usize) -> Vec<SocketAddr> {
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
pub(crate) fn cpu_of(pid: &str) -> (f64, f64) {
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
pub(crate) fn peak_rss_mb(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

pub(crate) async fn agent_child(first: SocketAddr, devices: usize, concurrency: usize) {
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
pub(crate) struct Figures {
    wall: f64,
    cpu: f64,
    rss_mb: f64,
    ok: u64,
    failed: u64,
    pdus_per_device: f64,
}

/// Writes an snmp_exporter module that reads the same OIDs as a full
/// meterlink read of `rec`: the scalars as `get`, the profile's columns as `walk`.
pub(crate) fn exporter_config(rec: &Recording, path: &std::path::Path) {
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

pub(crate) async fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, usize)> {
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

pub(crate) fn requests(fleet: &Fleet) -> u64 {
    fleet.devices.iter().map(|d| d.requests()).sum()
}

pub(crate) async fn run_agent(fleet: &Fleet, a: &Args) -> Figures {
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

pub(crate) async fn run_exporter(
    fleet: &Fleet,
    a: &Args,
    config: &std::path::Path,
) -> Option<Figures> {
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

pub(crate) async fn run_netsnmp(fleet: &Fleet, a: &Args) -> Figures {
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

pub(crate) fn have(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

pub(crate) async fn scenario(
    a: &Args,
    rec: &Arc<Recording>,
    latency_ms: f64,
    config: &std::path::Path,
) {
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
