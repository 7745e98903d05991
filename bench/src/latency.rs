//! Poll-to-ack latency through the whole pipeline.

use meterlink_sim::{serve, Fleet, Recording, SimConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Poll-to-ack latency through the real daemon, uplink and collector.
pub(crate) async fn latency_bench(devices: usize, latency_ms: f64, cycles: u64) {
    use meterlink_tests::stack::AgentToml;
    let tmp = tempfile::tempdir().expect("tmp");
    let text = std::fs::read_to_string(
        meterlink_tests::peers::fixtures_dir().join("canon_iradv_c5560.snmprec"),
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
