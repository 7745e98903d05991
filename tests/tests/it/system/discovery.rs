//! Scheduled discovery on the simulator, with the daemon: a printer that
//! answers only the second credential set is found; a printer that is off
//! during scans stays polled; a printer that answers at another address is
//! followed by its serial (polled once; the collector files its new address
//! and the move as an event of the product).

use meterlink_agent::config::AgentConfig;
use meterlink_sim::{serve, Fault, Fleet, Recording, SimConfig};
use meterlink_tests::peers::{fixtures_dir, until};
use meterlink_tests::stack::{start_collector, LocalCollector};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn fleet(fixture: &str, name: &str, community: &str, addrs: &[&str]) -> Arc<Fleet> {
    let text = std::fs::read_to_string(fixtures_dir().join(fixture)).unwrap();
    let (rec, _) = Recording::parse(name, &text);
    let cfg = SimConfig {
        community: community.into(),
        ..SimConfig::default()
    };
    let addrs: Vec<SocketAddr> = addrs.iter().map(|a| a.parse().unwrap()).collect();
    Arc::new(Fleet::new(cfg, vec![Arc::new(rec)], addrs))
}

fn status(path: &Path) -> Option<serde_json::Value> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
}

fn now_ms() -> i64 {
    meterlink_collector::store::now_ms()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_keeps_finds_and_follows_printers() {
    let tmp = tempfile::tempdir().unwrap();
    let LocalCollector {
        running: collector,
        pki,
        agent_cert,
        ..
    } = start_collector(
        &tmp.path().join("collector"),
        "",
        "agent-disc",
        &tmp.path().join("certs"),
    )
    .await;

    // Two iR-ADVs on the first community, an LBP only on the second, and
    // the first iR-ADV's twin (same serial) at .4, silent until it "moves".
    let a = fleet(
        "canon_iradv_c5560.snmprec",
        "a",
        "public",
        &["127.53.0.1:16161", "127.53.0.2:16161"],
    );
    let b = fleet(
        "canon_lbp_jam.snmprec",
        "b",
        "private",
        &["127.53.0.3:16161"],
    );
    let moved = fleet(
        "canon_iradv_c5560.snmprec",
        "a2",
        "public",
        &["127.53.0.4:16161"],
    );
    moved.devices[0].set_fault(Fault::NoReply, true);
    let _sims = (
        serve(a.clone()).await.unwrap(),
        serve(b.clone()).await.unwrap(),
        serve(moved.clone()).await.unwrap(),
    );
    let serial = a.devices[0]
        .serial()
        .expect("the iR-ADV recording has a serial");

    let data = tmp.path().join("agent");
    let conf = tmp.path().join("agent.toml");
    std::fs::write(
        &conf,
        format!(
            "agent_id = \"agent-disc\"\ndata_dir = \"{}\"\n\
             [collector]\nurl = \"https://{}\"\nserver_name = \"localhost\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n\
             [engine]\ntimeout = 0.3\nretries = 0\nconcurrency = 16\n\
             [discovery]\nmax_missed = 1000\n\
             [[credentials]]\nname = \"first\"\nversion = \"2c\"\ncommunity = \"public\"\n\
             [[credentials]]\nname = \"second\"\nversion = \"2c\"\ncommunity = \"private\"\n\
             [[targets]]\naddresses = [\"127.53.0.1-4\"]\nport = 16161\ncredentials = [\"first\", \"second\"]\n\
             [schedule]\ntimezone = \"UTC\"\nmeter = \"* * * * * *\"\ndiscovery = \"* * * * * *\"\n",
            data.display(),
            collector.grpc_addr,
            pki.ca_cert().display(),
            agent_cert.cert.display(),
            agent_cert.key.display(),
        ),
    )
    .unwrap();
    let v = AgentConfig::load(&conf).unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let daemon = tokio::spawn(meterlink_agent::daemon::run(v, rx));
    let status_file = data.join("status.json");

    // The LBP answers only the second credential set, and is found.
    until(Duration::from_secs(30), "three printers polled", || {
        let s = status(&status_file);
        async move { s.is_some_and(|s| s["devices"] == 3 && s["last_poll_read"] == 3) }
    })
    .await;

    // .2 is off: every scan misses it, it stays polled (and fails).
    a.devices[1].set_fault(Fault::NoReply, true);
    let off_at = now_ms();
    until(
        Duration::from_secs(30),
        "polls two scans after .2 went off",
        || {
            let s = status(&status_file);
            async move {
                s.is_some_and(|s| {
                    s["last_poll_at_ms"].as_i64().unwrap_or(0) > off_at + 2_500
                        && s["last_poll_failed"] == 1
                })
            }
        },
    )
    .await;
    let s = status(&status_file).unwrap();
    assert_eq!(
        s["devices"], 3,
        "the printer that is off is still polled: {s}"
    );
    assert_eq!(s["last_poll_read"], 2, "{s}");

    // .1 "moves" to .4: the same serial answers there. It is followed: the
    // collector files the new address, and it is polled once, not twice.
    a.devices[0].set_fault(Fault::NoReply, true);
    moved.devices[0].set_fault(Fault::NoReply, false);
    let store = collector.store.clone();
    let serial_moved = serial.clone();
    until(
        Duration::from_secs(30),
        "the collector to file the new address",
        || {
            let store = store.clone();
            let serial = serial_moved.clone();
            async move {
                store
                    .product(&serial)
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|p| p.address.as_deref() == Some("127.53.0.4:16161"))
            }
        },
    )
    .await;
    // The move is an event of the product.
    let events = collector.store.product_events(&serial).await.unwrap();
    assert!(
        events.iter().any(|e| e.event == "address_changed"
            && e.text.contains("127.53.0.4:16161")
            && e.text.contains("was 127.53.0.1:16161")),
        "{events:?}"
    );
    let moved_at = now_ms();
    until(Duration::from_secs(30), "a poll after the move", || {
        let s = status(&status_file);
        async move {
            s.is_some_and(|s| s["last_poll_at_ms"].as_i64().unwrap_or(0) > moved_at + 1_500)
        }
    })
    .await;
    let s = status(&status_file).unwrap();
    assert_eq!(
        s["devices"], 3,
        "followed by serial (.4), not kept at .1 as well: {s}"
    );
    // .2 (still off) fails; .3 and .4 are read.
    assert_eq!(
        (&s["last_poll_read"], &s["last_poll_failed"]),
        (&2.into(), &1.into()),
        "{s}"
    );

    stop.send(true).unwrap();
    daemon.await.unwrap().unwrap();
    collector.stop().await;
}
