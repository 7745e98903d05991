//! Hostile devices at scale: a share of a simulated fleet (1 % of 10,000 by
//! default) shows faults (no reply, truncated answers, non-increasing
//! walks, tooBig with nothing in it, GETBULK never answered) while the
//! agent's engine reads the whole fleet at once, as a poll does; the healthy
//! devices' full-read times against a clean run of the same fleet,
//! alternating in one process.

use crate::fullread::addrs;
use meterlink_agent::poll::read_device;
use meterlink_agent::profile::ProfileSet;
use meterlink_agent::snmp::engine::{Credential, CredentialSet, Engine, EngineConfig, Secret};
use meterlink_agent::snmp::Version;
use meterlink_sim::{serve, Fault, Fleet, Recording, SimConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const FAULTS: [Fault; 5] = [
    Fault::NoReply,
    Fault::Truncated,
    Fault::NonIncreasing,
    Fault::TooBigEmpty,
    Fault::BrokenBulk,
];

struct Poll {
    wall: f64,
    /// Healthy devices' read times (from the poll's start, as the agent's
    /// `poll_seconds` counts them), sorted, in ms.
    healthy_ms: Vec<f64>,
    healthy_failed: usize,
    faulty_read: usize,
    faulty_failed: usize,
}

impl Poll {
    fn q(&self, f: f64) -> f64 {
        let v = &self.healthy_ms;
        v[((v.len() as f64 * f) as usize).min(v.len().saturating_sub(1))]
    }
}

/// One poll of the whole fleet with a fresh engine (the agent's defaults
/// and `concurrency`).
async fn poll(fleet: &Fleet, faulty: &[bool], concurrency: usize) -> Poll {
    let engine = Engine::new(EngineConfig {
        concurrency,
        ..EngineConfig::default()
    })
    .await
    .expect("engine");
    let profiles = Arc::new(ProfileSet::embedded());
    let creds = Arc::new([CredentialSet {
        name: "public".into(),
        credential: Credential::Community {
            version: Version::V2c,
            community: Secret("public".into()),
        },
    }]);
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for (i, d) in fleet.devices.iter().enumerate() {
        let (e, p, c, addr) = (engine.clone(), profiles.clone(), creds.clone(), d.addr);
        set.spawn(async move {
            let t = Instant::now();
            let ok = read_device(&e, &p, addr, &c[..]).await.is_ok();
            (i, ok, t.elapsed())
        });
    }
    let mut p = Poll {
        wall: 0.0,
        healthy_ms: Vec::with_capacity(fleet.devices.len()),
        healthy_failed: 0,
        faulty_read: 0,
        faulty_failed: 0,
    };
    while let Some(r) = set.join_next().await {
        let (i, ok, took) = r.expect("read task");
        match (faulty[i], ok) {
            (false, true) => p.healthy_ms.push(took.as_secs_f64() * 1e3),
            (false, false) => p.healthy_failed += 1,
            (true, true) => p.faulty_read += 1,
            (true, false) => p.faulty_failed += 1,
        }
    }
    p.wall = started.elapsed().as_secs_f64();
    p.healthy_ms.sort_by(|a, b| a.total_cmp(b));
    p
}

pub(crate) async fn hostile_bench(
    first: SocketAddr,
    devices: usize,
    percent: f64,
    concurrency: usize,
    latency_ms: f64,
    rounds: usize,
) {
    let text = std::fs::read_to_string(
        meterlink_tests::peers::fixtures_dir().join("canon_iradv_c5560.snmprec"),
    )
    .expect("fixture");
    let (rec, _) = Recording::parse("canon", &text);
    let cfg = SimConfig {
        latency: Duration::from_secs_f64(latency_ms / 1000.0),
        ..SimConfig::default()
    };
    let fleet = Arc::new(Fleet::new(cfg, vec![Arc::new(rec)], addrs(first, devices)));
    let tasks = serve(fleet.clone())
        .await
        .expect("serve the fleet (raise ulimit -n above the device count)");
    // Every n-th device is faulty, the faults in turn.
    let every = (100.0 / percent.max(0.01)).round().max(1.0) as usize;
    let faulty: Vec<bool> = (0..devices).map(|i| i % every == every / 2).collect();
    let n_faulty = faulty.iter().filter(|f| **f).count();
    println!(
        "# meterlink-bench hostile: {devices} devices ({n_faulty} faulty: {}), {latency_ms} ms per response, engine concurrency {concurrency}\n",
        FAULTS.map(|f| format!("{f:?}")).join(", ")
    );
    println!("| run | poll wall s | healthy p50 ms | healthy p99 ms | healthy max ms | healthy failed | faulty read / failed |\n|---|---|---|---|---|---|---|");
    let mut p99 = [Vec::new(), Vec::new()];
    for round in 0..rounds.max(1) {
        for (k, hostile) in [false, true].into_iter().enumerate() {
            let mut kind = 0;
            for (i, d) in fleet.devices.iter().enumerate() {
                for f in FAULTS {
                    d.set_fault(f, false);
                }
                if hostile && faulty[i] {
                    d.set_fault(FAULTS[kind % FAULTS.len()], true);
                    kind += 1;
                }
            }
            let p = poll(&fleet, &faulty, concurrency).await;
            println!(
                "| {} {} | {:.2} | {:.1} | {:.1} | {:.1} | {} | {} / {} |",
                if hostile { "hostile" } else { "clean" },
                round + 1,
                p.wall,
                p.q(0.5),
                p.q(0.99),
                p.healthy_ms.last().copied().unwrap_or(0.0),
                p.healthy_failed,
                p.faulty_read,
                p.faulty_failed
            );
            assert_eq!(p.healthy_failed, 0, "every healthy device read");
            p99[k].push(p.q(0.99));
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    println!(
        "\nhealthy devices' p99, hostile / clean: {:.3} (mean of {} runs each)",
        mean(&p99[1]) / mean(&p99[0]),
        p99[0].len()
    );
    for t in tasks {
        t.abort();
    }
}
