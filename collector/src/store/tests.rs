//! Store tests, each run against SQLite and, when METERLINK_TEST_DATABASE_URL
//! names a PostgreSQL database, against PostgreSQL (a fresh schema per test).

use super::*;
use meterlink_proto::v1::observation::Body;
use meterlink_proto::v1::{
    Alert, CounterValue, DeviceStatus, Identity, MeterReading, Observation, Supplies, Supply,
};

const MIN: i64 = 60_000;
const DAY: i64 = 86_400_000;
/// 2026-09-21T...: a fixed "now" keeps the tests independent of the date.
const T0: i64 = 1_790_000_000_000;

/// Generates `<name>::sqlite` and `<name>::postgres`, each calling
/// `<name>(store)` with a fresh store opened with `settings`.
macro_rules! on_both {
    ($name:ident) => {
        on_both!($name, Settings::default());
    };
    ($name:ident, $settings:expr) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("t.db");
                let s = Store::open(path.to_str().unwrap(), $settings)
                    .await
                    .unwrap();
                super::$name(s).await;
            }
            #[tokio::test]
            async fn postgres() {
                let Some(url) = scratch_postgres(concat!("store::", stringify!($name))).await
                else {
                    return;
                };
                let s = Store::open(&url, $settings).await.unwrap();
                super::$name(s).await;
            }
        }
    };
}

fn counter(id: &str, value: u64, bits: u32) -> CounterValue {
    CounterValue {
        id: id.into(),
        value,
        wraps_at_bits: bits,
        ..Default::default()
    }
}

fn meter_of(seq: u64, serial: &str, taken: i64, counters: Vec<CounterValue>) -> Observation {
    Observation {
        seq,
        taken_at_ms: taken,
        device_address: "10.0.0.5:161".into(),
        serial: serial.into(),
        body: Some(Body::Meter(MeterReading { counters })),
    }
}

fn meter(seq: u64, serial: &str, taken: i64, value: u64) -> Observation {
    meter_of(seq, serial, taken, vec![counter("canon.101", value, 0)])
}

fn status_of(seq: u64, serial: &str, taken: i64, s: DeviceStatus) -> Observation {
    Observation {
        seq,
        taken_at_ms: taken,
        device_address: "10.0.0.5:161".into(),
        serial: serial.into(),
        body: Some(Body::Status(s)),
    }
}

fn jam() -> DeviceStatus {
    DeviceStatus {
        errors: vec!["jammed".into()],
        alerts: vec![Alert {
            index: 1,
            severity: "warning".into(),
            training_level: "untrained".into(),
            group: "mediaPath".into(),
            code: 8,
            description: "Paper jam".into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn service_call() -> DeviceStatus {
    DeviceStatus {
        errors: vec!["serviceRequested".into()],
        alerts: vec![Alert {
            index: 1,
            severity: "critical".into(),
            training_level: "fieldService".into(),
            group: "generalPrinter".into(),
            code: 1,
            description: "E602-0001 Call service representative".into(),
            ..Default::default()
        }],
        console: vec!["E602-0001".into()],
        ..Default::default()
    }
}

fn toner(seq: u64, serial: &str, taken: i64, percent: u32) -> Observation {
    Observation {
        seq,
        taken_at_ms: taken,
        device_address: "10.0.0.5:161".into(),
        serial: serial.into(),
        body: Some(Body::Supplies(Supplies {
            supplies: vec![Supply {
                index: 1,
                description: "Black Toner".into(),
                kind: "toner".into(),
                percent: Some(percent),
                state: "ok".into(),
                ..Default::default()
            }],
        })),
    }
}

async fn account(s: &Store, id: &str, auto: bool) {
    s.put_account(&Account {
        id: id.into(),
        name: format!("{id} Ltd"),
        billing_code: format!("B-{id}"),
        service_code: format!("S-{id}"),
        auto_create_products: auto,
        time_zone: "Europe/Amsterdam".into(),
    })
    .await
    .unwrap();
}

async fn open_requests(s: &Store, serial: &str) -> Vec<ServiceRequest> {
    s.requests(&RequestQuery {
        state: Some("open".into()),
        serial: Some(serial.into()),
        ..Default::default()
    })
    .await
    .unwrap()
}

on_both!(dedupes_and_keeps_the_newest_current_value);
async fn dedupes_and_keeps_the_newest_current_value(s: Store) {
    s.agent_hello("a1", "1", 3).await.unwrap();
    let mut id = meter(1, "S1", 1000, 0);
    id.body = Some(Body::Identity(Identity {
        model: "iR-ADV C5560".into(),
        ..Default::default()
    }));
    let o = s
        .ingest(
            "a1",
            &[id, meter(2, "S1", 2000, 500), meter(3, "S1", 3000, 600)],
        )
        .await
        .unwrap();
    assert_eq!(
        (o.new, o.duplicates, o.counter_values, o.highest_seq),
        (3, 0, 2, 3)
    );
    // Resent after a reconnect: acknowledged, not filed again.
    let o = s
        .ingest(
            "a1",
            &[meter(2, "S1", 2000, 500), meter(3, "S1", 3000, 600)],
        )
        .await
        .unwrap();
    assert_eq!((o.new, o.duplicates, o.counter_values), (0, 2, 0));
    // A late reading (taken before the current one) goes into history only.
    s.ingest("a1", &[meter(4, "S1", 1500, 450)]).await.unwrap();
    let p = s.product("S1").await.unwrap().unwrap();
    assert_eq!(p.counters["canon.101"], 600);
    assert_eq!(p.model.as_deref(), Some("iR-ADV C5560"));
    let r = s.readings("S1").await.unwrap();
    assert_eq!(
        r.iter().map(|r| r.value).collect::<Vec<_>>(),
        vec![450, 500, 600]
    );
    // The same seq from another agent is another observation.
    let o = s.ingest("a2", &[meter(2, "S2", 2000, 7)]).await.unwrap();
    assert_eq!(o.new, 1);
    assert_eq!(s.filed_seqs("a1").await.unwrap(), vec![1, 2, 3, 4]);
    // Raw observations come back as sent, whether their values live in
    // the readings table or in the stored body.
    let mut full = meter(5, "S1", 4000, 700);
    if let Some(Body::Meter(m)) = &mut full.body {
        m.counters[0].name = "Total 1".into();
        m.counters[0].unit = "impressions".into();
        m.counters[0].oid = "1.3.6.1.4.1.1602.1.11.1.3.1.4.101".into();
        m.counters.push(counter("canon.301", 9, 0));
    }
    let mut huge = meter(6, "S1", 5000, u64::MAX);
    huge.device_address = "10.0.0.9:161".into();
    let no_serial = meter(7, "", 5000, 3);
    s.ingest("a1", &[full.clone(), huge.clone(), no_serial.clone()])
        .await
        .unwrap();
    for o in [full, huge, no_serial] {
        assert_eq!(s.observation("a1", o.seq).await.unwrap(), Some(o));
    }
    assert_eq!(s.observation("a1", 99).await.unwrap(), None);
    // Invalid sequence numbers are refused whole.
    assert!(s
        .ingest("a1", &[meter(9, "S1", 1, 1), meter(0, "S1", 1, 1)])
        .await
        .is_err());
    assert_eq!(s.filed_seqs("a1").await.unwrap(), vec![1, 2, 3, 4, 5, 6, 7]);
    let agents = s.agents().await.unwrap();
    let a1 = agents.iter().find(|a| a.id == "a1").unwrap();
    assert_eq!(
        (a1.filed_seq, a1.held_seq, a1.version.as_str()),
        (7, 3, "1")
    );
}

on_both!(filing_rules_apply_at_ingest);
async fn filing_rules_apply_at_ingest(s: Store) {
    account(&s, "acme", true).await;
    s.agent_hello("a1", "1", 0).await.unwrap();
    s.set_agent_account("a1", Some("acme")).await.unwrap();
    let top = (1u64 << 32) - 1_000;
    let batch = vec![
        // A Counter32 near its top, then wrapped: filed extended.
        meter_of(1, "W", T0, vec![counter("canon.101", top, 32)]),
        meter_of(2, "W", T0 + DAY, vec![counter("canon.101", 4_000, 32)]),
        // Board swap: the counter restarts low. Anomaly, history untouched.
        meter(3, "B", T0, 120_000),
        meter(4, "B", T0 + DAY, 120_500),
        meter(5, "B", T0 + 2 * DAY, 12),
        // Implausible jump.
        meter(6, "J", T0, 1_000),
        meter(7, "J", T0 + DAY, 5_000_000),
        // The same reading again (same time and value): a repeat.
        meter(8, "B", T0 + DAY, 120_500),
    ];
    let o = s.ingest("a1", &batch).await.unwrap();
    assert_eq!((o.new, o.counter_values, o.anomalies), (8, 5, 2), "{o:?}");
    let w = s.product("W").await.unwrap().unwrap();
    assert_eq!(w.counters["canon.101"], (1u64 << 32) + 4_000);
    assert_eq!(
        w.account.as_deref(),
        Some("acme"),
        "auto-created for the agent's account"
    );
    let wr = s.readings("W").await.unwrap();
    assert_eq!(wr[1].raw_value, Some(4_000));
    let b = s.product("B").await.unwrap().unwrap();
    assert_eq!(b.counters["canon.101"], 120_500);
    let br = s.readings("B").await.unwrap();
    let states: Vec<(&str, u64)> = br.iter().map(|r| (r.state.as_str(), r.value)).collect();
    assert_eq!(
        states,
        vec![
            ("filed", 120_000),
            ("filed", 120_500),
            ("repeat", 120_500),
            ("anomaly", 12)
        ]
    );
    assert!(br[3].anomaly.as_ref().unwrap()["kind"] == "regression");
    // Anomalies open a meter-anomaly request (one per product; later
    // anomalous observations add occurrences).
    let open = open_requests(&s, "B").await;
    assert_eq!(open.len(), 1);
    assert_eq!(
        (open[0].kind.as_str(), open[0].account.as_deref()),
        ("meter_anomaly", Some("acme"))
    );
    s.ingest("a1", &[meter(9, "B", T0 + 3 * DAY, 40)])
        .await
        .unwrap();
    let open = open_requests(&s, "B").await;
    assert_eq!((open.len(), open[0].occurrences), (1, 2));
    assert_eq!(open_requests(&s, "J").await[0].kind, "meter_anomaly");
    assert_eq!(
        s.product("J").await.unwrap().unwrap().counters["canon.101"],
        1_000
    );
    // Late arrival: judged against both neighbours, never the latest.
    s.ingest("a1", &[meter(10, "B", T0 + DAY / 2, 120_200)])
        .await
        .unwrap();
    s.ingest("a1", &[meter(11, "B", T0 + DAY / 2 + 1, 130_000)])
        .await
        .unwrap();
    let filed: Vec<u64> = s
        .history("B", &HistoryQuery::default())
        .await
        .unwrap()
        .iter()
        .map(|r| r.value)
        .collect();
    assert_eq!(
        filed,
        vec![120_500, 120_200, 120_000],
        "newest first, the late one in place"
    );
    assert_eq!(
        s.product("B").await.unwrap().unwrap().counters["canon.101"],
        120_500
    );
    // History never moves backwards: filed values rise with time.
    let mut all = s.history("B", &HistoryQuery::default()).await.unwrap();
    all.reverse();
    assert!(all.windows(2).all(|w| w[0].value <= w[1].value));
}

on_both!(unknown_serials_wait_for_an_operator);
async fn unknown_serials_wait_for_an_operator(s: Store) {
    account(&s, "acme", false).await;
    s.agent_hello("a1", "1", 0).await.unwrap();
    s.set_agent_account("a1", Some("acme")).await.unwrap();
    s.ingest("a1", &[meter(1, "NEW1", T0, 10)]).await.unwrap();
    let u = s.unassigned().await.unwrap();
    assert_eq!(
        u.iter().map(|p| p.serial.as_str()).collect::<Vec<_>>(),
        vec!["NEW1"]
    );
    assert_eq!(u[0].agent.as_deref(), Some("a1"));
    // Readings are filed all the same, and the operator assigns it.
    let p = s
        .update_product(
            "NEW1",
            &ProductUpdate {
                account: Some("acme".into()),
                alt_name: Some("Reception".into()),
                location: Some("2nd floor, room 201".into()),
                billing_day: Some(25),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (p.account.as_deref(), p.counters["canon.101"]),
        (Some("acme"), 10)
    );
    assert!(s.unassigned().await.unwrap().is_empty());
    let e = s
        .update_product(
            "NEW1",
            &ProductUpdate {
                account: Some("nobody".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Refused {
                code: "account_not_found",
                ..
            }
        ),
        "{e}"
    );
}

on_both!(waiting_serials_join_an_account_that_creates_products);
async fn waiting_serials_join_an_account_that_creates_products(s: Store) {
    account(&s, "acme", true).await;
    account(&s, "other", false).await;
    s.agent_hello("a1", "1", 0).await.unwrap();
    // Before the agent has an account its devices wait.
    s.ingest("a1", &[meter(1, "W1", T0, 10), meter(2, "W2", T0, 20)])
        .await
        .unwrap();
    assert_eq!(s.unassigned().await.unwrap().len(), 2);
    // An operator puts W2 in another account; then the agent joins acme.
    s.update_product(
        "W2",
        &ProductUpdate {
            account: Some("other".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    s.set_agent_account("a1", Some("acme")).await.unwrap();
    let out = s
        .ingest(
            "a1",
            &[meter(3, "W1", T0 + 1, 11), meter(4, "W2", T0 + 1, 21)],
        )
        .await
        .unwrap();
    assert!(s.unassigned().await.unwrap().is_empty());
    let owner = |p: Option<Product>| p.unwrap().account;
    assert_eq!(
        owner(s.product("W1").await.unwrap()).as_deref(),
        Some("acme")
    );
    // A product with an account keeps it, and an agent of another account
    // does not write to it.
    assert_eq!(
        owner(s.product("W2").await.unwrap()).as_deref(),
        Some("other")
    );
    assert_eq!((out.new, out.foreign, out.counter_values), (2, 1, 1));
    assert_eq!(
        s.product("W2").await.unwrap().unwrap().counters["canon.101"],
        20
    );
}

on_both!(agents_write_only_to_products_of_their_account);
async fn agents_write_only_to_products_of_their_account(s: Store) {
    account(&s, "acme", true).await;
    account(&s, "other", false).await;
    for (agent, acct) in [("a1", Some("acme")), ("a2", Some("other")), ("a3", None)] {
        s.agent_hello(agent, "1", 0).await.unwrap();
        s.set_agent_account(agent, acct).await.unwrap();
    }
    s.ingest("a1", &[meter(1, "P", T0, 100)]).await.unwrap();
    let p = s.product("P").await.unwrap().unwrap();
    assert_eq!(p.account.as_deref(), Some("acme"));
    // An agent of another account, or of none, reports the same serial (a
    // scan of the wrong network, or a lying agent): kept, acknowledged,
    // not filed; the product, its readings and its requests stay as they were.
    for (agent, seq) in [("a2", 1), ("a3", 1)] {
        let mut o = meter(seq, "P", T0 + DAY, 1);
        o.device_address = "192.0.2.66:161".into();
        let out = s
            .ingest(
                agent,
                &[o, status_of(seq + 1, "P", T0 + DAY, service_call())],
            )
            .await
            .unwrap();
        assert_eq!(
            (out.new, out.foreign, out.counter_values),
            (2, 2, 0),
            "{agent}"
        );
        assert_eq!((out.anomalies, out.request_changes), (0, 0), "{agent}");
        // Resent, it is a duplicate like any other.
        let again = s
            .ingest(agent, &[meter(seq, "P", T0 + DAY, 1)])
            .await
            .unwrap();
        assert_eq!((again.new, again.duplicates), (0, 1));
    }
    let after = s.product("P").await.unwrap().unwrap();
    assert_eq!(after.counters["canon.101"], 100);
    assert_eq!(after.address, p.address);
    assert_eq!(after.agent.as_deref(), Some("a1"));
    assert_eq!(s.readings("P").await.unwrap().len(), 1);
    assert!(open_requests(&s, "P").await.is_empty());
    // A product no account owns yet takes readings from any agent.
    let out = s.ingest("a3", &[meter(10, "FREE", T0, 5)]).await.unwrap();
    assert_eq!((out.foreign, out.counter_values), (0, 1));
}

on_both!(
    service_requests_open_update_and_close,
    Settings {
        outbox: true,
        ..Settings::default()
    }
);
async fn service_requests_open_update_and_close(s: Store) {
    account(&s, "acme", true).await;
    s.agent_hello("a1", "1", 0).await.unwrap();
    s.set_agent_account("a1", Some("acme")).await.unwrap();
    s.put_article(&Article {
        id: "kb-e602".into(),
        kind: "error_code".into(),
        code: Some("E602-0001".into()),
        title: "E602: hard disk error".into(),
        body: "Switch off, wait 10 s, switch on.".into(),
    })
    .await
    .unwrap();
    let mut seq = 0;
    let mut next = || {
        seq += 1;
        seq
    };
    // A jam that clears within its persist time opens nothing.
    let mut obs = vec![
        status_of(next(), "P1", T0, jam()),
        status_of(next(), "P1", T0 + 10 * MIN, DeviceStatus::default()),
    ];
    // A jam that persists opens one incident; repeats are "seen".
    for i in 0..5 {
        obs.push(status_of(next(), "P1", T0 + (20 + 10 * i) * MIN, jam()));
    }
    s.ingest("a1", &obs).await.unwrap();
    let open = open_requests(&s, "P1").await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(
        (open[0].kind.as_str(), open[0].fingerprint.as_deref()),
        ("incident", Some("incident:jam"))
    );
    // Flapping: clear briefly and back: an occurrence, not a new request.
    s.ingest(
        "a1",
        &[
            status_of(next(), "P1", T0 + 70 * MIN, DeviceStatus::default()),
            status_of(next(), "P1", T0 + 75 * MIN, jam()),
            status_of(next(), "P1", T0 + 80 * MIN, DeviceStatus::default()),
        ],
    )
    .await
    .unwrap();
    let open = open_requests(&s, "P1").await;
    assert_eq!((open.len(), open[0].occurrences), (1, 2));
    // Clear for the hold-down time: the clock closes it.
    assert_eq!(s.tick(T0 + 100 * MIN).await.unwrap(), 0);
    assert_eq!(s.tick(T0 + 111 * MIN).await.unwrap(), 1);
    assert!(open_requests(&s, "P1").await.is_empty());
    // A service call: one high-priority incident linked to the KB article.
    s.ingest(
        "a1",
        &[status_of(next(), "P1", T0 + 120 * MIN, service_call())],
    )
    .await
    .unwrap();
    let open = open_requests(&s, "P1").await;
    assert_eq!(open.len(), 1, "{open:?}");
    let sc = &open[0];
    assert_eq!(
        (
            sc.priority.as_str(),
            sc.code.as_deref(),
            sc.kb_article.as_deref()
        ),
        ("high", Some("E602-0001"), Some("kb-e602"))
    );
    // Toner low: once per cartridge, closed by a new one.
    s.ingest(
        "a1",
        &[
            toner(next(), "P1", T0 + 130 * MIN, 9),
            toner(next(), "P1", T0 + 140 * MIN, 5),
            toner(next(), "P1", T0 + 150 * MIN, 100),
            toner(next(), "P1", T0 + 160 * MIN, 8),
        ],
    )
    .await
    .unwrap();
    let all = s
        .requests(&RequestQuery {
            serial: Some("P1".into()),
            kind: Some("consumables".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let states: Vec<&str> = all.iter().map(|r| r.state.as_str()).collect();
    assert_eq!(states, vec!["open", "closed"], "newest first");
    // Detail has the events; the outbox has one row per change, in order.
    let detail = s.request(&sc.number).await.unwrap().unwrap();
    assert_eq!(
        detail
            .events
            .iter()
            .map(|e| e.event.as_str())
            .collect::<Vec<_>>(),
        vec!["opened"]
    );
    let closed = s
        .close_request(&sc.number, "engineer replaced the disk", "jan", T0)
        .await
        .unwrap();
    assert_eq!(closed.state, "closed");
    let again = s
        .close_request(&sc.number, "twice", "jan", T0)
        .await
        .unwrap_err();
    assert!(matches!(
        again,
        StoreError::Refused {
            code: "request_closed",
            ..
        }
    ));
    let counts = s.outbox_counts().await.unwrap();
    // jam: opened, occurrence, closed; service call: opened, closed; toner: opened, closed, opened.
    assert_eq!(counts.pending, 8, "{counts:?}");
    let due = s.outbox_due(i64::MAX / 2, 100).await.unwrap();
    // One per request at a time, oldest first.
    assert_eq!(due.len(), 4, "{due:?}");
    let mut numbers: Vec<&str> = due.iter().map(|d| d.request_number.as_str()).collect();
    numbers.dedup();
    assert_eq!(numbers.len(), 4);
}

on_both!(clock_rules_silent_and_meter_due);
async fn clock_rules_silent_and_meter_due(s: Store) {
    account(&s, "acme", true).await;
    s.agent_hello("a1", "1", 0).await.unwrap();
    s.set_agent_account("a1", Some("acme")).await.unwrap();
    // 2026-09-21 is T0's date; billing day 1: cutoff 2026-10-01 00:00 Amsterdam.
    s.ingest("a1", &[meter(1, "E1", T0, 100), meter(2, "M1", T0, 100)])
        .await
        .unwrap();
    for serial in ["E1", "M1"] {
        s.update_product(
            serial,
            &ProductUpdate {
                billing_day: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    s.update_product(
        "M1",
        &ProductUpdate {
            emaintenance: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // A day later E1 (eMaintenance) is silent; M1 (manual readings) is not watched.
    let n = s.tick(T0 + DAY + MIN).await.unwrap();
    assert_eq!(n, 1);
    let open = open_requests(&s, "E1").await;
    assert_eq!(open[0].kind, "device_silent");
    assert!(open_requests(&s, "M1").await.is_empty());
    // It reports again: closed at the next tick.
    s.ingest("a1", &[meter(3, "E1", T0 + DAY + 2 * MIN, 150)])
        .await
        .unwrap();
    assert_eq!(s.tick(T0 + DAY + 3 * MIN).await.unwrap(), 1);
    assert!(open_requests(&s, "E1").await.is_empty());
    // The cutoff passes without a billing read: after the grace, meter due
    // for both (E1 silent again too).
    let cutoff =
        crate::filing::billing_cutoff_ms(2026, 10, 1, chrono_tz::Europe::Amsterdam).unwrap();
    let after_grace = cutoff + 3 * DAY + MIN;
    s.tick(after_grace).await.unwrap();
    let due: Vec<String> = s
        .requests(&RequestQuery {
            kind: Some("meter_due".into()),
            state: Some("open".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.serial.unwrap())
        .collect();
    assert_eq!(due.len(), 2, "{due:?}");
    // A manual reading for M1 (no eMaintenance) is the billing read: closed.
    let r = s
        .manual_reading(
            "M1",
            &ManualReading {
                counter: "canon.101".into(),
                value: 900,
                taken_at_ms: Some(cutoff + DAY),
                user: Some("jan".into()),
            },
            after_grace,
        )
        .await
        .unwrap();
    assert_eq!((r.source.as_str(), r.agent.as_str()), ("manual", "jan"));
    s.tick(after_grace + MIN).await.unwrap();
    assert!(open_requests(&s, "M1")
        .await
        .iter()
        .all(|r| r.kind != "meter_due"));
    // Manual readings are refused for eMaintenance products and when implausible.
    let m = |v: u64, at: i64| ManualReading {
        counter: "canon.101".into(),
        value: v,
        taken_at_ms: Some(at),
        user: None,
    };
    let e = s
        .manual_reading("E1", &m(1_000, cutoff + DAY), after_grace)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Refused {
                code: "emaintenance_product",
                ..
            }
        ),
        "{e}"
    );
    let e = s
        .manual_reading("M1", &m(800, cutoff + 2 * DAY), after_grace)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Refused {
                code: "implausible_reading",
                ..
            }
        ),
        "{e}"
    );
    // Billing export: the read at/after each cutoff, and the pages between.
    let rows = s.billing("acme", 2026, 10).await.unwrap();
    let m1 = rows.iter().find(|r| r.serial == "M1").unwrap();
    assert_eq!(m1.read.map(|r| r.value), Some(900));
    assert_eq!(m1.previous.map(|r| r.value), Some(100));
    assert_eq!(m1.pages, Some(800));
}

on_both!(groups_and_accounts);
async fn groups_and_accounts(s: Store) {
    account(&s, "acme", true).await;
    account(&s, "other", true).await;
    s.agent_hello("a1", "1", 0).await.unwrap();
    s.set_agent_account("a1", Some("acme")).await.unwrap();
    s.ingest("a1", &[meter(1, "G1", T0, 1), meter(2, "G2", T0, 1)])
        .await
        .unwrap();
    let g = s.create_group("acme", "Floor 2").await.unwrap();
    assert!(matches!(
        s.create_group("acme", "Floor 2").await.unwrap_err(),
        StoreError::Refused {
            code: "group_exists",
            ..
        }
    ));
    s.group_member(g.id, "G1", true).await.unwrap();
    let g = s.group_member(g.id, "G2", true).await.unwrap();
    assert_eq!(g.products, vec!["G1", "G2"]);
    let og = s.create_group("other", "Floor 2").await.unwrap();
    assert!(matches!(
        s.group_member(og.id, "G1", true).await.unwrap_err(),
        StoreError::Refused {
            code: "product_of_another_account",
            ..
        }
    ));
    let g = s.rename_group(g.id, "Second floor").await.unwrap();
    let page = s
        .product_page(&ProductQuery {
            group: Some("Second floor".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.items[0].groups, vec!["Second floor"]);
    let g = s.group_member(g.id, "G1", false).await.unwrap();
    assert_eq!(g.products, vec!["G2"]);
    s.delete_group(g.id).await.unwrap();
    assert!(matches!(
        s.delete_group(g.id).await.unwrap_err(),
        StoreError::NotFound(_)
    ));
    // Paging: keyset by serial.
    let p1 = s
        .product_page(&ProductQuery {
            limit: Some(1),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (p1.items[0].serial.as_str(), p1.next.as_deref()),
        ("G1", Some("G1"))
    );
    let p2 = s
        .product_page(&ProductQuery {
            limit: Some(1),
            after: p1.next.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((p2.items[0].serial.as_str(), p2.next), ("G2", None));
    let found = s
        .product_page(&ProductQuery {
            q: Some("g2".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1);
}

/// Two stores on one PostgreSQL schema (two collector replicas) file the
/// same stream at the same time: every observation once.
#[tokio::test]
async fn replicas_file_each_observation_once() {
    let Some(url) = scratch_postgres("store::replicas_file_each_observation_once").await else {
        return;
    };
    let a = std::sync::Arc::new(Store::open(&url, Settings::default()).await.unwrap());
    let b = std::sync::Arc::new(Store::open(&url, Settings::default()).await.unwrap());
    a.agent_hello("a1", "1", 0).await.unwrap();
    let obs: Vec<Observation> = (1..=2_000)
        .map(|i| meter(i, &format!("R{}", i % 50), T0 + i as i64 * MIN, i))
        .collect();
    // Overlapping batches from both replicas, concurrently.
    let mut tasks = Vec::new();
    for (k, chunk) in obs.chunks(250).enumerate() {
        for store in [a.clone(), b.clone()] {
            let mut c = chunk.to_vec();
            if k % 2 == 1 {
                c.reverse();
            }
            tasks.push(tokio::spawn(async move {
                store.ingest("a1", &c).await.unwrap()
            }));
        }
    }
    let mut new = 0;
    for t in tasks {
        new += t.await.unwrap().new;
    }
    assert_eq!(new, 2_000);
    assert_eq!(
        a.filed_seqs("a1").await.unwrap(),
        (1..=2_000).collect::<Vec<u64>>()
    );
    let readings: usize = {
        let mut n = 0;
        for i in 0..50 {
            n += b.readings(&format!("R{i}")).await.unwrap().len();
        }
        n
    };
    assert_eq!(readings, 2_000);
}

fn user(id: &str, role: crate::auth::Role, account: Option<&str>) -> crate::auth::User {
    crate::auth::User {
        id: id.into(),
        name: format!("User {id}"),
        role,
        account: account.map(Into::into),
    }
}

async fn users_and_tokens(s: Store) {
    use crate::auth::Role;
    account(&s, "acme", true).await;
    account(&s, "globex", true).await;
    // Roles and accounts go together.
    for (bad, code) in [
        (user("o", Role::Operator, Some("acme")), "invalid_user"),
        (user("m", Role::AccountManager, None), "invalid_user"),
        (
            user("m", Role::AccountManager, Some("nowhere")),
            "account_not_found",
        ),
        (user("two words", Role::Operator, None), "invalid_user_id"),
    ] {
        match s.put_user(&bad).await {
            Err(StoreError::Refused { code: c, .. }) => assert_eq!(c, code, "{bad:?}"),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    let pat = user("pat", Role::ProductAdministrator, Some("acme"));
    s.put_user(&pat).await.unwrap();
    s.put_user(&user("ops", Role::Operator, None))
        .await
        .unwrap();
    assert_eq!(s.users(Some("acme")).await.unwrap(), vec![pat.clone()]);
    assert_eq!(s.users(None).await.unwrap().len(), 2);

    // A token authenticates its user; its secret is not stored.
    let t = s.issue_token("pat", "laptop", None, T0).await.unwrap();
    assert_eq!(
        s.authenticate(&t.token, T0).await.unwrap(),
        Some(pat.clone())
    );
    let (_, secret) = crate::auth::parse_token(&t.token).unwrap();
    let rows = s.token_rows_text().await;
    assert_eq!(rows.len(), 1);
    assert!(!rows[0].contains(secret), "{rows:?}");
    // The same id with another secret does not.
    let forged = format!(
        "{}{}_{}",
        crate::auth::TOKEN_PREFIX,
        t.info.id,
        "0".repeat(64)
    );
    assert_eq!(s.authenticate(&forged, T0).await.unwrap(), None);
    assert_eq!(s.authenticate("not a token", T0).await.unwrap(), None);

    // Expiry.
    let short = s
        .issue_token("pat", "short", Some(T0 + MIN), T0 + 1)
        .await
        .unwrap();
    assert!(s.authenticate(&short.token, T0).await.unwrap().is_some());
    assert_eq!(s.authenticate(&short.token, T0 + MIN).await.unwrap(), None);
    assert_eq!(
        s.tokens("pat")
            .await
            .unwrap()
            .iter()
            .map(|t| t.label.as_str())
            .collect::<Vec<_>>(),
        vec!["laptop", "short"]
    );

    // Revoked.
    s.revoke_token("pat", &t.info.id).await.unwrap();
    assert_eq!(s.authenticate(&t.token, T0).await.unwrap(), None);
    assert!(matches!(
        s.revoke_token("pat", &t.info.id).await,
        Err(StoreError::NotFound(_))
    ));

    // A product's administrator is a user of its account.
    s.agent_hello("agent-u", "0.1.0", 1).await.unwrap();
    s.set_agent_account("agent-u", Some("acme")).await.unwrap();
    s.ingest("agent-u", &[meter(1, "U-1", T0, 100)])
        .await
        .unwrap();
    let admin = |who: &str| ProductUpdate {
        administrator: Some(who.into()),
        ..Default::default()
    };
    s.update_product("U-1", &admin("pat")).await.unwrap();
    s.put_user(&user("gus", Role::ProductAdministrator, Some("globex")))
        .await
        .unwrap();
    // Replacing a user only within an account leaves another account's alone.
    let grab = user("gus", Role::AccountManager, Some("acme"));
    match s.put_user_within(&grab, Some("acme")).await {
        Err(StoreError::Refused { code, .. }) => assert_eq!(code, "user_id_taken"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.user("gus").await.unwrap().and_then(|u| u.account),
        Some("globex".into())
    );
    s.put_user_within(
        &user("pat", Role::ProductAdministrator, Some("acme")),
        Some("acme"),
    )
    .await
    .unwrap();
    for who in ["gus", "nobody", "ops"] {
        match s.update_product("U-1", &admin(who)).await {
            Err(StoreError::Refused { code, .. }) => assert_eq!(code, "invalid_administrator"),
            other => panic!("{who}: {other:?}"),
        }
    }
    assert_eq!(
        s.product("U-1").await.unwrap().unwrap().administrator,
        Some("pat".into())
    );
    // Moving the product to another account leaves its administrator behind.
    let moved = s
        .update_product(
            "U-1",
            &ProductUpdate {
                account: Some("globex".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(moved.administrator, None);
    s.update_product("U-1", &admin("gus")).await.unwrap();

    // Removing a user takes their tokens and their products' administrator field.
    let g = s.issue_token("gus", "", None, T0).await.unwrap();
    s.delete_user("gus").await.unwrap();
    assert_eq!(s.authenticate(&g.token, T0).await.unwrap(), None);
    assert_eq!(s.product("U-1").await.unwrap().unwrap().administrator, None);
    assert!(s.tokens("gus").await.unwrap().is_empty());
}
on_both!(users_and_tokens);
