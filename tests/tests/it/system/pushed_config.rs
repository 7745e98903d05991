//! Configuration pushed by the collector: targets and schedules from
//! `<agents dir>/<agent id>.toml` reach the connected agent, are applied,
//! survive the agent's restart with the collector down; a configuration the
//! agent cannot use is reported and the running one kept.

use meterlink_agent::config::AgentConfig;
use meterlink_agent::daemon::StatusReport;
use meterlink_sim::{serve, Fleet, Recording, SimConfig};
use meterlink_tests::peers::{fixtures_dir, until};
use meterlink_tests::stack::{start_collector, AgentToml, LocalCollector};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn status(path: &Path) -> Option<StatusReport> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

async fn wait_status(path: &Path, what: &str, cond: impl Fn(&StatusReport) -> bool) {
    until(Duration::from_secs(30), what, || {
        let ok = status(path).is_some_and(|s| cond(&s));
        async move { ok }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_targets_and_schedule_are_applied_kept_and_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let cdir = tmp.path().join("collector");
    let LocalCollector {
        running: collector,
        pki,
        agent_cert: cert,
        ..
    } = start_collector(
        &cdir,
        "[agents]\nrecheck_secs = 0.2\n",
        "agent-push",
        &tmp.path().join("certs"),
    )
    .await;

    let rec = fixtures_dir().join("canon_iradv_c5560.snmprec");
    let (rec, _) = Recording::parse("canon", &std::fs::read_to_string(rec).unwrap());
    let addrs: Vec<SocketAddr> = (1..=6)
        .map(|i| format!("127.48.0.{i}:16161").parse().unwrap())
        .collect();
    let fleet = Arc::new(Fleet::new(SimConfig::default(), vec![Arc::new(rec)], addrs));
    let _sim = serve(fleet).await.unwrap();

    // The agent's own file: two devices, a schedule that does not fire.
    let spec = AgentToml::new(
        "agent-push",
        &tmp.path().join("agent"),
        collector.grpc_addr,
        &pki.ca_cert(),
        &cert.cert,
        &cert.key,
        &["127.48.0.1-2"],
    );
    let conf = tmp.path().join("agent.toml");
    std::fs::write(&conf, spec.render()).unwrap();
    let status_file = tmp.path().join("agent/status.json");

    // The collector's configuration for this agent: six devices, every second.
    let agents = cdir.join("agents");
    std::fs::create_dir_all(&agents).unwrap();
    std::fs::write(
        agents.join("agent-push.toml"),
        "[schedule]\nmeter = \"* * * * * *\"\n[[targets]]\naddresses = [\"127.48.0.1-6\"]\nport = 16161\ncredentials = [\"office\"]\n",
    )
    .unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let daemon = tokio::spawn(meterlink_agent::daemon::run(
        AgentConfig::load(&conf).unwrap(),
        rx,
    ));
    let store = collector.store.clone();
    until(Duration::from_secs(30), "six devices filed", || {
        let s = store.clone();
        async move { s.products().await.unwrap().len() == 6 }
    })
    .await;
    wait_status(&status_file, "the pushed version in status", |s| {
        !s.config_version.is_empty() && s.devices == 6
    })
    .await;
    let applied = status(&status_file).unwrap().config_version;

    // A configuration naming a credential set the agent does not have:
    // reported, not applied; polling goes on as before.
    std::fs::write(
        agents.join("agent-push.toml"),
        "[[targets]]\naddresses = [\"127.48.0.1\"]\nport = 16161\ncredentials = [\"nonexistent\"]\n",
    )
    .unwrap();
    wait_status(&status_file, "the refused configuration reported", |s| {
        s.config_error
            .as_deref()
            .is_some_and(|e| e.contains("nonexistent") && e.contains("pushed by the collector"))
    })
    .await;
    let s = status(&status_file).unwrap();
    assert_eq!(
        s.config_version, applied,
        "the running configuration is kept"
    );
    assert_eq!(s.devices, 6);
    stop.send(true).unwrap();
    daemon.await.unwrap().unwrap();

    // Restart with the collector gone: the kept configuration still runs.
    collector.stop().await;
    std::fs::remove_file(&status_file).unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let daemon = tokio::spawn(meterlink_agent::daemon::run(
        AgentConfig::load(&conf).unwrap(),
        rx,
    ));
    wait_status(
        &status_file,
        "a poll of six devices with the collector down",
        |s| s.config_version == applied && s.last_poll_read == 6 && s.connection != "connected",
    )
    .await;
    stop.send(true).unwrap();
    daemon.await.unwrap().unwrap();
}
