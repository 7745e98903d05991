//! End to end, a scripted day at a customer compressed into seconds, on
//! SQLite and on PostgreSQL: six simulated Canon devices polled every second
//! by the agent daemon, filed by the collector with the shipped request rules
//! (only their times shortened). One device jams and is cleared, one runs low
//! on magenta toner, one shows service call E602-0001 (training level
//! fieldService), one reads its counters low (a counter reset), one goes
//! silent and comes back, one does nothing. Exactly the expected service
//! requests open and close, readings are filed and the anomaly is recorded.

use meterlink_agent::config::AgentConfig;
use meterlink_collector::requests::DEFAULT_RULES;
use meterlink_collector::store::{scratch_postgres, Store};
use meterlink_sim::{serve, Fault, Fleet, Recording, SimConfig};
use meterlink_tests::http::Api;
use meterlink_tests::peers::{fixtures_dir, until};
use meterlink_tests::stack::{start_collector, AgentToml};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

const AGENT: &str = "agent-scenario";
const WAIT: Duration = Duration::from_secs(60);

/// The shipped rules with times a test can wait for: conditions persist
/// 2 s, requests close after 3 s clear, a device is silent after 10 s
/// (well above any delivery delay on a loaded machine), judged 2 s after
/// the collector starts.
fn rules() -> String {
    let mut text = DEFAULT_RULES.to_string();
    for (from, to) in [
        ("hold_down_secs = 1800", "hold_down_secs = 3"),
        ("silent_after_secs = 86400", "silent_after_secs = 10"),
        ("catch_up_secs = 600", "catch_up_secs = 2"),
        ("persist_secs = 1800", "persist_secs = 2"),
    ] {
        assert!(text.contains(from), "default rules changed: no {from:?}");
        text = text.replace(from, to);
    }
    text
}

/// The project's C5560 recording (magenta toner at 8 %, alert 1104, error
/// bit lowToner) with lines removed (by OID prefix) and set.
fn variant(base: &str, name: &str, remove: &[&str], set: &[&str]) -> Arc<Recording> {
    let mut text: String = base
        .lines()
        .filter(|l| !remove.iter().any(|p| l.starts_with(p)))
        .map(|l| format!("{l}\n"))
        .collect();
    // The parser keeps the last of duplicate OIDs.
    for l in set {
        text.push_str(l);
        text.push('\n');
    }
    let (r, errors) = Recording::parse(name, &text);
    assert!(errors.is_empty(), "{name}: {errors:?}");
    Arc::new(r)
}

struct Recordings {
    clear: Arc<Recording>,
    toner_low: Arc<Recording>,
    jam: Arc<Recording>,
    service_call: Arc<Recording>,
}

fn recordings() -> Recordings {
    let base = std::fs::read_to_string(fixtures_dir().join("canon_iradv_c5560.snmprec")).unwrap();
    const ALERTS: &str = "1.3.6.1.2.1.43.18.1.1.";
    let clear_lines = [
        "1.3.6.1.2.1.25.3.2.1.5.1|2|2",     // hrDeviceStatus running
        "1.3.6.1.2.1.25.3.5.1.2.1|4x|00",   // no error bits
        "1.3.6.1.2.1.43.11.1.1.9.1.3|2|60", // magenta 60 %
        "1.3.6.1.2.1.43.16.5.1.2.1.1|4|Ready to print.",
    ];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        clear_lines.iter().chain(extra).copied().collect()
    };
    Recordings {
        clear: variant(&base, "clear", &[ALERTS], &clear_lines),
        toner_low: variant(&base, "toner-low", &[], &[]),
        // A critical jam alert (code 8) with the jammed bit.
        jam: variant(
            &base,
            "jam",
            &[ALERTS],
            &with(&[
                "1.3.6.1.2.1.25.3.5.1.2.1|4x|04",
                "1.3.6.1.2.1.43.18.1.1.2.1.20|2|3",
                "1.3.6.1.2.1.43.18.1.1.3.1.20|2|3",
                "1.3.6.1.2.1.43.18.1.1.4.1.20|2|13",
                "1.3.6.1.2.1.43.18.1.1.5.1.20|2|1",
                "1.3.6.1.2.1.43.18.1.1.6.1.20|2|0",
                "1.3.6.1.2.1.43.18.1.1.7.1.20|2|8",
                "1.3.6.1.2.1.43.18.1.1.8.1.20|4|Paper jam in the fixing assembly.",
                "1.3.6.1.2.1.43.18.1.1.9.1.20|67|8639500",
            ]),
        ),
        // A service call for a field engineer: the alert, the
        // serviceRequested bit and the console all show it.
        service_call: variant(
            &base,
            "service-call",
            &[ALERTS],
            &with(&[
                "1.3.6.1.2.1.25.3.5.1.2.1|4x|01",
                "1.3.6.1.2.1.43.16.5.1.2.1.1|4|Call for service. E602-0001",
                "1.3.6.1.2.1.43.18.1.1.2.1.21|2|3",
                "1.3.6.1.2.1.43.18.1.1.3.1.21|2|5",
                "1.3.6.1.2.1.43.18.1.1.4.1.21|2|5",
                "1.3.6.1.2.1.43.18.1.1.5.1.21|2|1",
                "1.3.6.1.2.1.43.18.1.1.6.1.21|2|0",
                "1.3.6.1.2.1.43.18.1.1.7.1.21|2|1",
                "1.3.6.1.2.1.43.18.1.1.8.1.21|4|Call for service. E602-0001",
                "1.3.6.1.2.1.43.18.1.1.9.1.21|67|8639600",
            ]),
        ),
    }
}

async fn send(api: &Api, method: &str, path: &str, body: Value) {
    let r = api.send(method, path, body).await;
    assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
}

async fn service_requests(api: &Api) -> Vec<Value> {
    let r = api.get("/api/v1/service-requests?limit=1000").await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["service_requests"].as_array().unwrap().clone()
}

/// (serial, kind, state) of every request, sorted.
fn summary(requests: &[Value]) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = requests
        .iter()
        .map(|r| {
            (
                r["serial"].as_str().unwrap_or_default().to_string(),
                r["kind"].as_str().unwrap().to_string(),
                r["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Waits until the requests are `want`; on time-out says what they are.
async fn requests_become(api: &Api, want: &[(String, String, String)], what: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let now = service_requests(api).await;
        if summary(&now) == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}: want {want:#?}\nhave {:#?}",
            now.iter()
                .map(|r| format!(
                    "{} {} {} {}",
                    r["serial"], r["kind"], r["state"], r["title"]
                ))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn run(store_toml: &str, net: u8) {
    let tmp = tempfile::tempdir().unwrap();
    let rules_path = tmp.path().join("rules.toml");
    std::fs::write(&rules_path, rules()).unwrap();
    let extra = format!(
        "{store_toml}[requests]\nrules = \"{}\"\ntick_secs = 0.2\n",
        rules_path.display()
    );
    let c = start_collector(
        &tmp.path().join("collector"),
        &extra,
        AGENT,
        &tmp.path().join("certs"),
    )
    .await;
    let api = &c.operator();
    let store = c.running.store.clone();

    // Six devices, all fine to begin with, counters advancing.
    let rec = recordings();
    let addrs: Vec<SocketAddr> = (1..=6)
        .map(|i| format!("127.{net}.0.{i}:16161").parse().unwrap())
        .collect();
    let fleet = Arc::new(Fleet::new(
        SimConfig {
            pages_per_minute: 120.0,
            ..SimConfig::default()
        },
        vec![rec.clear.clone()],
        addrs,
    ));
    let _sim = serve(fleet.clone()).await.unwrap();
    let serial = |i: usize| fleet.devices[i].serial().unwrap();
    let [jam, toner, call, reset, silent, quiet] = [0, 1, 2, 3, 4, 5];

    // The service provider's set-up: an account that takes the agent's
    // devices as products, and the knowledge-base article for E602.
    send(
        api,
        "PUT",
        "/api/v1/accounts/acme",
        json!({"id": "acme", "name": "Acme Ltd", "billing_code": "B-1", "service_code": "S-1",
               "auto_create_products": true, "time_zone": "UTC"}),
    )
    .await;
    send(
        api,
        "PUT",
        "/api/v1/kb-articles/kb-e602",
        json!({"id": "kb-e602", "kind": "error_code", "code": "E602-0001",
               "title": "E602-0001: hard disk error", "body": "Field service: replace the HDD."}),
    )
    .await;

    let mut spec = AgentToml::new(
        AGENT,
        &tmp.path().join("agent"),
        c.running.grpc_addr,
        &c.pki.ca_cert(),
        &c.agent_cert.cert,
        &c.agent_cert.key,
        &[&format!("127.{net}.0.1-6")],
    );
    spec.meter = "* * * * * *".into();
    spec.engine = Some((0.3, 1, 8));
    let conf = tmp.path().join("agent.toml");
    std::fs::write(&conf, spec.render()).unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let daemon = tokio::spawn(meterlink_agent::daemon::run(
        AgentConfig::load(&conf).unwrap(),
        rx,
    ));

    // The agent connects; its devices wait as unassigned until the
    // operator gives the agent its account, then become Acme's products.
    until(WAIT, "the agent's devices to be listed", || async {
        api.get("/api/v1/unassigned-devices").await.json()["devices"]
            .as_array()
            .is_some_and(|a| a.len() == 6)
    })
    .await;
    send(
        api,
        "PATCH",
        &format!("/api/v1/agents/{AGENT}"),
        json!({"account": "acme"}),
    )
    .await;
    until(WAIT, "six products in the account", || async {
        api.get("/api/v1/products?account=acme").await.json()["items"]
            .as_array()
            .is_some_and(|a| a.len() == 6)
    })
    .await;
    assert!(service_requests(api).await.is_empty(), "nothing wrong yet");

    // Things go wrong.
    fleet.devices[jam].load(rec.jam.clone());
    fleet.devices[toner].load(rec.toner_low.clone());
    fleet.devices[call].load(rec.service_call.clone());
    fleet.devices[reset].set_fault(Fault::CounterRegression, true);
    fleet.devices[silent].set_fault(Fault::NoReply, true);
    let expected_open = vec![
        (serial(jam), "incident".to_string(), "open".to_string()),
        (serial(toner), "consumables".into(), "open".into()),
        (serial(call), "incident".into(), "open".into()),
        (serial(reset), "meter_anomaly".into(), "open".into()),
        (serial(silent), "device_silent".into(), "open".into()),
    ];
    let mut want = expected_open.clone();
    want.sort();
    requests_become(api, &want, "five requests open").await;

    // ... and are put right: the jam cleared, the counters read right
    // again, the silent device answers again.
    fleet.devices[jam].load(rec.clear.clone());
    fleet.devices[reset].set_fault(Fault::CounterRegression, false);
    fleet.devices[silent].set_fault(Fault::NoReply, false);
    let mut want: Vec<_> = expected_open
        .iter()
        .map(|(s, k, st)| {
            let closes = *s == serial(jam) || *s == serial(silent);
            (
                s.clone(),
                k.clone(),
                if closes { "closed".into() } else { st.clone() },
            )
        })
        .collect();
    want.sort();
    requests_become(api, &want, "the jam and the silence closed").await;

    // Let every device report past the persist time once more, so that a
    // request that would open late (a reopened jam, a second toner
    // request) has had its chance.
    let settle = meterlink_collector::store::now_ms() + 3_000;
    until(
        WAIT,
        "every device reported after the settle time",
        || async {
            let mut all = true;
            for i in 0..6 {
                let p = api.get(&format!("/api/v1/products/{}", serial(i))).await;
                all &= p.json()["last_seen_ms"]
                    .as_i64()
                    .is_some_and(|t| t >= settle);
            }
            all
        },
    )
    .await;
    stop.send(true).unwrap();
    daemon.await.unwrap().unwrap();

    // /metrics counts the same changes by kind.
    let m = meterlink_tests::http::get(c.running.http_addr, "/metrics")
        .await
        .body;
    for (kind, change, n) in [
        ("incident", "opened", 2),
        ("consumables", "opened", 1),
        ("meter_anomaly", "opened", 1),
        ("device_silent", "opened", 1),
        ("incident", "closed", 1),
        ("device_silent", "closed", 1),
    ] {
        let series = format!(
            "meterlink_service_requests_total{{kind=\"{kind}\",change=\"{change}\"}} {n}\n"
        );
        assert!(m.contains(&series), "no {series:?} in\n{m}");
    }

    // Exactly the expected requests: two closed, three open.
    let requests = service_requests(api).await;
    assert_eq!(summary(&requests), want, "{requests:#?}");
    let by_serial: BTreeMap<String, &Value> = requests
        .iter()
        .map(|r| (r["serial"].as_str().unwrap().to_string(), r))
        .collect();
    let call_request = by_serial[&serial(call)];
    assert_eq!(call_request["code"], "E602-0001");
    assert_eq!(call_request["priority"], "high");
    assert_eq!(call_request["kb_article"], "kb-e602");
    assert_eq!(call_request["account"], "acme");
    let jam_request = by_serial[&serial(jam)];
    assert_eq!(jam_request["occurrences"], 1, "{jam_request}");
    assert!(jam_request["close_reason"].is_string(), "{jam_request}");
    assert!(
        by_serial[&serial(toner)]["title"]
            .as_str()
            .unwrap()
            .contains("Magenta"),
        "{}",
        by_serial[&serial(toner)]
    );
    assert!(!by_serial.contains_key(&serial(quiet)));
    // The detail carries its events: opened, then closed.
    let number = jam_request["number"].as_str().unwrap();
    let detail = api
        .get(&format!("/api/v1/service-requests/{number}"))
        .await
        .json();
    let events: Vec<&str> = detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["opened", "closed"], "{detail}");

    check_readings(&store, &fleet, serial(reset)).await;
    c.running.stop().await;
}

/// Every device's meter readings are filed, filed history never goes down,
/// and the reset device's low readings are recorded as anomalies beside it.
async fn check_readings(store: &Store, fleet: &Fleet, reset_serial: String) {
    for d in &fleet.devices {
        let serial = d.serial().unwrap();
        let readings = store.readings(&serial).await.unwrap();
        let mut filed: BTreeMap<&str, Vec<(i64, u64)>> = BTreeMap::new();
        for r in readings.iter().filter(|r| r.state == "filed") {
            filed
                .entry(r.counter.as_str())
                .or_default()
                .push((r.taken_at_ms, r.value));
        }
        assert!(
            filed.get("canon.101").is_some_and(|v| v.len() >= 3),
            "{serial}: {filed:?}"
        );
        for (counter, mut history) in filed {
            history.sort();
            assert!(
                history.windows(2).all(|w| w[0].1 <= w[1].1),
                "{serial} {counter}: filed history went down: {history:?}"
            );
        }
        let anomalies: Vec<_> = readings.iter().filter(|r| r.state == "anomaly").collect();
        if serial == reset_serial {
            let a = anomalies
                .iter()
                .find(|r| r.counter == "canon.101")
                .expect("the reset recorded as an anomaly");
            assert!(a.anomaly.is_some(), "{a:?}");
            let latest = store.product(&serial).await.unwrap().unwrap().counters["canon.101"];
            assert!(a.value < latest, "{a:?} vs latest {latest}");
        } else {
            assert!(anomalies.is_empty(), "{serial}: {anomalies:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_day_on_sqlite() {
    run("", 51).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_day_on_postgres() {
    let Some(url) = scratch_postgres("scripted_day_on_postgres").await else {
        return;
    };
    run(&format!("[store]\npostgres = \"{url}\"\n"), 52).await;
}
