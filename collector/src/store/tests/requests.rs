//! Service requests at ingest and on the clock.

use super::*;

on_both!(
    service_requests_open_update_and_close,
    Settings {
        outbox: true,
        ..Settings::default()
    }
);
async fn service_requests_open_update_and_close(s: Store) {
    account_with_agent(&s, "acme", true, "a1").await;
    s.put_article(&Article {
        id: "kb-e602".into(),
        kind: "error_code".into(),
        code: Some("E602-0001".into()),
        language: "en".into(),
        models: Vec::new(),
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
    let out = s.ingest("a1", &obs).await.unwrap();
    assert_eq!(
        out.requests.0.get(&("incident".to_string(), "opened")),
        Some(&1)
    );
    assert_eq!(out.requests.total(), out.request_changes);
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
    assert_eq!(s.tick(T0 + 100 * MIN, LISTENING).await.unwrap().total(), 0);
    let closed = s.tick(T0 + 111 * MIN, LISTENING).await.unwrap();
    assert_eq!(closed.total(), 1);
    assert_eq!(closed.0.get(&("incident".to_string(), "closed")), Some(&1));
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
            code: Refusal::RequestClosed,
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
    account_with_agent(&s, "acme", true, "a1").await;
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
    let n = s.tick(T0 + DAY + MIN, LISTENING).await.unwrap().total();
    assert_eq!(n, 1);
    let open = open_requests(&s, "E1").await;
    assert_eq!(open[0].kind, "device_silent");
    assert!(open_requests(&s, "M1").await.is_empty());
    // It reports again: closed at the next tick.
    s.ingest("a1", &[meter(3, "E1", T0 + DAY + 2 * MIN, 150)])
        .await
        .unwrap();
    assert_eq!(
        s.tick(T0 + DAY + 3 * MIN, LISTENING).await.unwrap().total(),
        1
    );
    assert!(open_requests(&s, "E1").await.is_empty());
    // The cutoff passes without a billing read: after the grace, meter due
    // for both (E1 silent again too).
    let cutoff =
        crate::filing::billing_cutoff_ms(2026, 10, 1, chrono_tz::Europe::Amsterdam).unwrap();
    let after_grace = cutoff + 3 * DAY + MIN;
    s.tick(after_grace, LISTENING).await.unwrap();
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
    s.tick(after_grace + MIN, LISTENING).await.unwrap();
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
                code: Refusal::EmaintenanceProduct,
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
                code: Refusal::ImplausibleReading,
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

on_both!(absence_waits_for_the_agents_after_an_outage);
/// A collector back from an outage longer than `silent_after` (and past a
/// billing cutoff's grace) calls no device silent and no billing read
/// missing before its agents have had the catch-up time to deliver what
/// they buffered; after it, only what is still absent opens a request.
async fn absence_waits_for_the_agents_after_an_outage(s: Store) {
    account_with_agent(&s, "acme", true, "a1").await;
    s.ingest("a1", &[meter(1, "E1", T0, 100), meter(2, "E2", T0, 100)])
        .await
        .unwrap();
    for serial in ["E1", "E2"] {
        let billing_day = ProductUpdate {
            billing_day: Some(1),
            ..Default::default()
        };
        s.update_product(serial, &billing_day).await.unwrap();
    }
    // Away from just after T0 until past the 2026-10 cutoff and its grace.
    let cutoff =
        crate::filing::billing_cutoff_ms(2026, 10, 1, chrono_tz::Europe::Amsterdam).unwrap();
    let back = cutoff + 3 * DAY + MIN;
    assert_eq!(s.tick(back, back).await.unwrap().total(), 0, "first tick");
    // E1's agent delivers its buffer: the billing read and the days since.
    s.ingest(
        "a1",
        &[
            meter(3, "E1", cutoff + 60 * MIN, 200),
            meter(4, "E1", back - MIN, 300),
        ],
    )
    .await
    .unwrap();
    assert_eq!(s.tick(back + 9 * MIN, back).await.unwrap().total(), 0);
    for serial in ["E1", "E2"] {
        assert!(open_requests(&s, serial).await.is_empty(), "{serial}");
    }
    // Catch-up over (600 s): E2 sent nothing, E1 is fine.
    assert_eq!(s.tick(back + 10 * MIN, back).await.unwrap().total(), 2);
    assert!(open_requests(&s, "E1").await.is_empty());
    let mut e2: Vec<String> = open_requests(&s, "E2")
        .await
        .into_iter()
        .map(|r| r.kind)
        .collect();
    e2.sort();
    assert_eq!(e2, ["device_silent", "meter_due"]);
}

on_both!(a_fleet_gone_silent_at_once_gets_a_request_per_product);
/// More products than the clock changes in one transaction fall silent at
/// once: every one gets its request, none twice, across the chunks.
async fn a_fleet_gone_silent_at_once_gets_a_request_per_product(s: Store) {
    account_with_agent(&s, "acme", true, "a1").await;
    let fleet: Vec<_> = (0..1_201u64)
        .map(|i| meter(i + 1, &format!("F{i:05}"), T0, 100))
        .collect();
    for batch in fleet.chunks(500) {
        s.ingest("a1", batch).await.unwrap();
    }
    let opened = s.tick(T0 + DAY + MIN, LISTENING).await.unwrap();
    assert_eq!(opened.total(), 1_201);
    assert_eq!(
        s.tick(T0 + DAY + 2 * MIN, LISTENING).await.unwrap().total(),
        0
    );
    let open = s
        .requests(&RequestQuery {
            kind: Some("device_silent".into()),
            state: Some("open".into()),
            limit: Some(5_000),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut serials: Vec<String> = open.into_iter().filter_map(|r| r.serial).collect();
    serials.sort();
    serials.dedup();
    assert_eq!(serials.len(), 1_201);
    // A billing day for a product in every chunk: after the cutoff's grace
    // each gets its meter-due request, whichever chunk it falls in.
    let billing: Vec<String> = (0..1_201)
        .step_by(100)
        .map(|i| format!("F{i:05}"))
        .collect();
    for serial in &billing {
        let day = ProductUpdate {
            billing_day: Some(1),
            ..Default::default()
        };
        s.update_product(serial, &day).await.unwrap();
    }
    let cutoff =
        crate::filing::billing_cutoff_ms(2026, 10, 1, chrono_tz::Europe::Amsterdam).unwrap();
    let due = s.tick(cutoff + 3 * DAY + MIN, LISTENING).await.unwrap();
    assert_eq!(
        due.0.get(&("meter_due".to_string(), "opened")),
        Some(&(billing.len() as u64)),
        "{due:?}"
    );
    let mut due: Vec<String> = s
        .requests(&RequestQuery {
            kind: Some("meter_due".into()),
            state: Some("open".into()),
            limit: Some(100),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| r.serial)
        .collect();
    due.sort();
    assert_eq!(due, billing);
}
