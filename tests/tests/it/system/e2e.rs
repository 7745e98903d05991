//! End to end: a simulated fleet of 50 Canon devices, the agent daemon
//! polling it on a cron schedule, the collector filing over gRPC with mutual
//! TLS into SQLite. Every reading the agent took is filed once, with the
//! simulator's counter values.

use meterlink_agent::config::AgentConfig;
use meterlink_sim::{serve, Fleet, Recording, SimConfig};
use meterlink_tests::peers::{fixtures_dir, until};
use meterlink_tests::stack::{drain_agent, start_collector, AgentToml, LocalCollector};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_devices_every_reading_filed_once_with_ground_truth_values() {
    let tmp = tempfile::tempdir().unwrap();
    let LocalCollector {
        running: collector,
        pki,
        agent_cert,
        ..
    } = start_collector(
        &tmp.path().join("collector"),
        "",
        "agent-e2e",
        &tmp.path().join("certs"),
    )
    .await;

    let text = std::fs::read_to_string(fixtures_dir().join("canon_iradv_c5560.snmprec")).unwrap();
    let (rec, _) = Recording::parse("canon", &text);
    let addrs: Vec<SocketAddr> = (1..=50)
        .map(|i| format!("127.47.0.{i}:16161").parse().unwrap())
        .collect();
    let fleet = Arc::new(Fleet::new(SimConfig::default(), vec![Arc::new(rec)], addrs));
    let _sim = serve(fleet.clone()).await.unwrap();

    let mut spec = AgentToml::new(
        "agent-e2e",
        &tmp.path().join("agent"),
        collector.grpc_addr,
        &pki.ca_cert(),
        &agent_cert.cert,
        &agent_cert.key,
        &["127.47.0.1-50"],
    );
    spec.meter = "*/2 * * * * *".into();
    spec.batch_max_count = Some(100);
    spec.engine = Some((0.5, 1, 64));
    let admin: SocketAddr = "127.47.1.1:9464".parse().unwrap();
    spec.admin = Some(admin);
    let toml = spec.render();
    let conf = tmp.path().join("agent.toml");
    std::fs::write(&conf, &toml).unwrap();
    let v = AgentConfig::load(&conf).unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let daemon = tokio::spawn(meterlink_agent::daemon::run(v, rx));

    // At least three poll cycles of 50 devices filed.
    let store = collector.store.clone();
    until(Duration::from_secs(60), "three poll cycles filed", || {
        let s = store.clone();
        async move { s.observation_count("agent-e2e").await.unwrap() >= 50 * 4 * 3 }
    })
    .await;
    // The agent's admin port counts the same work: at a moment when all it
    // buffered is acknowledged, acknowledged = buffered = filed.
    let scrape = || async move { meterlink_tests::http::get(admin, "/metrics").await.body };
    let last = Arc::new(std::sync::Mutex::new(String::new()));
    until(Duration::from_secs(30), "buffered = acked = filed", || {
        let (s, last) = (store.clone(), last.clone());
        let text = scrape();
        async move {
            let text = text.await;
            let (b, a) = (
                sample(&text, "meterlink_agent_observations_buffered_total"),
                sample(&text, "meterlink_agent_observations_acked_total"),
            );
            let filed = s.observation_count("agent-e2e").await.unwrap() as f64;
            *last.lock().unwrap() = text;
            b > 0.0 && b == a && a == filed
        }
    })
    .await;
    let last = last.lock().unwrap().clone();
    let polls_ok = sample(
        &last,
        "meterlink_agent_polls_total{group=\"targets[1]\",result=\"ok\"}",
    );
    assert!(polls_ok >= 150.0, "{last}");
    assert!(sample(&last, "meterlink_agent_poll_seconds_count") >= polls_ok);
    assert_eq!(
        sample(&last, "meterlink_agent_buffer_records"),
        0.0,
        "{last}"
    );
    assert!(
        sample(
            &last,
            "meterlink_agent_certificate_expiry_timestamp_seconds"
        ) > 1.7e9
    );
    promtool_accepts(&last);
    stop.send(true).unwrap();
    daemon.await.unwrap().unwrap();

    // Drain what is still buffered with a schedule that does not fire.
    let next = drain_agent(&mut spec, &conf).await;

    // Every sequence number the agent assigned is filed, exactly once.
    let seqs = collector.store.filed_seqs("agent-e2e").await.unwrap();
    let first = seqs[0];
    let lost: Vec<u64> = (first..next)
        .filter(|s| seqs.binary_search(s).is_err())
        .collect();
    let mut dedup = seqs.clone();
    dedup.dedup();
    assert_eq!(lost.len(), 0, "observations lost: {lost:?}");
    assert_eq!(dedup.len(), seqs.len(), "observations filed twice");
    assert_eq!(seqs.len() as u64, next - first);
    eprintln!("filed {} observations, none lost, none doubled", seqs.len());

    // Filed counter values equal the simulator's ground truth.
    let products = collector.store.products().await.unwrap();
    assert_eq!(products.len(), 50);
    let counter: meterlink_agent::snmp::Oid = "1.3.6.1.4.1.1602.1.11.1.3.1.4.101".parse().unwrap();
    for d in &fleet.devices {
        let serial = d.serial().unwrap();
        let truth = d.counter_value(&fleet, &counter).unwrap();
        let readings = collector.store.readings(&serial).await.unwrap();
        let total: Vec<u64> = readings
            .iter()
            .filter(|r| r.counter == "canon.101")
            .map(|r| r.value)
            .collect();
        assert!(total.len() >= 3, "{serial}: {} readings", total.len());
        assert!(
            total.iter().all(|v| *v == truth),
            "{serial}: {total:?} != {truth}"
        );
        let p = products.iter().find(|p| p.serial == serial).unwrap();
        assert_eq!(p.counters["canon.101"], truth);
        assert_eq!(p.model.as_deref(), Some("iR-ADV C5560"));
    }

    // The REST API serves the same.
    let serial = fleet.devices[7].serial().unwrap();
    let api =
        meterlink_tests::http::Api::operator(collector.http_addr, &tmp.path().join("collector"));
    let v = api
        .get(&format!("/api/v1/products/{serial}/readings"))
        .await
        .json();
    assert!(v["readings"].as_array().unwrap().len() >= 3 * 20);
    // The configuration the agent read with the identity: the recording's
    // four paper trays, three output bins (two on the finisher), duplex.
    let cfg = api
        .get(&format!("/api/v1/products/{serial}/configuration"))
        .await
        .json();
    let names = |kind: &str| -> Vec<String> {
        cfg["components"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["kind"] == kind)
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names("input"),
        ["Multi-Purpose Tray", "Drawer 1", "Drawer 2", "Paper Deck"],
        "{cfg}"
    );
    assert_eq!(
        names("output"),
        ["Output Tray", "Finisher Tray A", "Finisher Tray B"]
    );
    assert_eq!(cfg["duplex"], true);
    assert!(cfg["seen_at_ms"].as_i64().unwrap() > 0);

    // /metrics counts the same work: every observation filed, the counter
    // values, the batches; promtool accepts the exposition.
    let m = meterlink_tests::http::get(collector.http_addr, "/metrics").await;
    assert_eq!(m.status, 200, "{}", m.body);
    let value = |name: &str| -> f64 {
        m.body
            .lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in:\n{}", m.body))
    };
    assert_eq!(
        value("meterlink_observations_filed_total"),
        seqs.len() as f64
    );
    let mut values = 0;
    for p in &products {
        let r = collector.store.readings(&p.serial).await.unwrap();
        values += r.iter().filter(|r| r.state == "filed").count();
    }
    assert_eq!(value("meterlink_meter_values_filed_total"), values as f64);
    assert!(value("meterlink_batch_commit_seconds_count") >= 1.0);
    assert_eq!(
        value("meterlink_agents_connected"),
        0.0,
        "the agent is stopped"
    );
    let route = "meterlink_api_requests_total{route=\"/api/v1/products/{serial}/readings\",method=\"GET\",status=\"200\"} 1";
    assert!(m.body.contains(route), "{}", m.body);
    promtool_accepts(&m.body);
    collector.stop().await;
}

/// A sample's value in an exposition (the whole series name with labels).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1.0)
}

/// `promtool check metrics` (Debian's prometheus) on an exposition.
fn promtool_accepts(text: &str) {
    if !meterlink_tests::peers::have_tool("promtool", "promtool_accepts") {
        return;
    }
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
