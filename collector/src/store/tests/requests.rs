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
    account(&s, "acme", true).await;
    s.agent_hello("a1", "1", 0).await.unwrap();
    s.set_agent_account("a1", Some("acme")).await.unwrap();
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
    assert_eq!(s.tick(T0 + 100 * MIN).await.unwrap().total(), 0);
    let closed = s.tick(T0 + 111 * MIN).await.unwrap();
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
    let n = s.tick(T0 + DAY + MIN).await.unwrap().total();
    assert_eq!(n, 1);
    let open = open_requests(&s, "E1").await;
    assert_eq!(open[0].kind, "device_silent");
    assert!(open_requests(&s, "M1").await.is_empty());
    // It reports again: closed at the next tick.
    s.ingest("a1", &[meter(3, "E1", T0 + DAY + 2 * MIN, 150)])
        .await
        .unwrap();
    assert_eq!(s.tick(T0 + DAY + 3 * MIN).await.unwrap().total(), 1);
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
