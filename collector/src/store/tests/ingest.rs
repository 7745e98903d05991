//! Ingest: deduplication, filing at ingest, unassigned serials, tenant
//! checks on agents, replicas.

use super::*;

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
    // That agent, known from its next hello on, resends it with a new one:
    // the filed one is found whether it came before the agent's row or not.
    s.agent_hello("a2", "1", 3).await.unwrap();
    let o = s
        .ingest("a2", &[meter(3, "S2", 3000, 8), meter(2, "S2", 2000, 7)])
        .await
        .unwrap();
    assert_eq!((o.new, o.duplicates), (1, 1));
    // Seqs far apart (not a range worth reading): filed and found alike.
    let o = s
        .ingest(
            "a2",
            &[meter(1 << 40, "S2", 4000, 9), meter(3, "S2", 3000, 8)],
        )
        .await
        .unwrap();
    assert_eq!((o.new, o.duplicates), (1, 1));
    assert_eq!(s.filed_seqs("a2").await.unwrap(), vec![2, 3, 1 << 40]);
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
    account_with_agent(&s, "acme", true, "a1").await;
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
        // The same reading again (same time and value): nothing new, no
        // second row (the observation is kept).
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
        vec![("filed", 120_000), ("filed", 120_500), ("anomaly", 12)]
    );
    assert!(s.observation("a1", 8).await.unwrap().is_some());
    assert!(br[2].anomaly.as_ref().unwrap()["kind"] == "regression");
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

on_both!(a_late_reading_is_judged_past_observations_without_its_counter);
/// A late reading of a counter the product reports only now and then is
/// judged against the nearest observations that hold it, however many
/// without it lie between.
async fn a_late_reading_is_judged_past_observations_without_its_counter(s: Store) {
    account_with_agent(&s, "acme", true, "a1").await;
    const HOUR: i64 = 3_600_000;
    let both = |seq, t, total, colour| {
        meter_of(
            seq,
            "R",
            T0 + t * HOUR,
            vec![
                counter("canon.101", total, 32),
                counter("canon.112", colour, 32),
            ],
        )
    };
    let mut batch = vec![both(1, 0, 1_000, 50)];
    for i in 1..=20u64 {
        batch.push(meter_of(
            1 + i,
            "R",
            T0 + i as i64 * HOUR,
            vec![counter("canon.101", 1_000 + i * 10, 32)],
        ));
    }
    batch.push(both(30, 30, 1_400, 90));
    s.ingest("a1", &batch).await.unwrap();
    let colour = |seq, t, value| {
        meter_of(
            seq,
            "R",
            T0 + t * HOUR,
            vec![counter("canon.112", value, 32)],
        )
    };
    // Between 50 (hour 0) and 90 (hour 30): filed.
    s.ingest("a1", &[colour(31, 10, 70)]).await.unwrap();
    // Below 50, four observations without the counter back: lower than
    // before it.
    s.ingest("a1", &[colour(32, 5, 45)]).await.unwrap();
    // Above 90, eight observations without it ahead: higher than after.
    s.ingest("a1", &[colour(33, 12, 95)]).await.unwrap();
    let mut got: Vec<(i64, u64, String)> = s
        .readings("R")
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.counter == "canon.112")
        .map(|r| ((r.taken_at_ms - T0) / HOUR, r.value, r.state))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (0, 50, "filed".to_string()),
            (5, 45, "anomaly".to_string()),
            (10, 70, "filed".to_string()),
            (12, 95, "anomaly".to_string()),
            (30, 90, "filed".to_string()),
        ]
    );
    assert_eq!(
        s.product("R").await.unwrap().unwrap().counters["canon.112"],
        90
    );
}

on_both!(an_observation_resent_under_new_numbers_adds_no_readings);
/// An agent that resends an observation under new seqs (its buffer restored
/// from a copy, or lying): each copy is kept as an observation, but the
/// readings it repeats, filed or anomalous, are stored once, so they do not
/// pile up at one time for every later lookup to read.
async fn an_observation_resent_under_new_numbers_adds_no_readings(s: Store) {
    account_with_agent(&s, "acme", true, "a1").await;
    let copy = |seq| {
        meter_of(
            seq,
            "RS",
            T0 + DAY,
            vec![
                counter("canon.101", 2_000, 32),
                counter("canon.112", 300, 32),
            ],
        )
    };
    let first = s.ingest("a1", &[copy(1)]).await.unwrap();
    assert_eq!(first.counter_values, 2);
    let copies: Vec<_> = (2..=50).map(copy).collect();
    let again = s.ingest("a1", &copies).await.unwrap();
    assert_eq!(
        (again.new, again.counter_values, again.anomalies),
        (49, 0, 0)
    );
    assert_eq!(s.observation_count("a1").await.unwrap(), 50);
    assert_eq!(s.readings("RS").await.unwrap().len(), 2);
    // An anomalous reading resent, in one batch and in the next: one row,
    // one occurrence of the meter-anomaly request.
    let low = |seq| meter_of(seq, "RS", T0 + DAY, vec![counter("canon.101", 1_000, 32)]);
    let first = s.ingest("a1", &[low(100), low(101)]).await.unwrap();
    assert_eq!((first.new, first.anomalies), (2, 1));
    let again = s.ingest("a1", &[low(102)]).await.unwrap();
    assert_eq!((again.new, again.anomalies), (1, 0));
    let states: Vec<String> = s
        .readings("RS")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.state)
        .collect();
    assert_eq!(
        states,
        ["filed", "anomaly", "filed"],
        "canon.101 by seq, canon.112"
    );
    let open = open_requests(&s, "RS").await;
    assert_eq!((open.len(), open[0].occurrences), (1, 1));
    // A late reading is still judged against the one filed after it.
    let late = meter_of(51, "RS", T0, vec![counter("canon.101", 1_500, 32)]);
    assert_eq!(s.ingest("a1", &[late]).await.unwrap().counter_values, 1);
    let late_high = meter_of(52, "RS", T0 + 1, vec![counter("canon.101", 2_500, 32)]);
    assert_eq!(s.ingest("a1", &[late_high]).await.unwrap().anomalies, 1);
}

on_both!(unknown_serials_wait_for_an_operator);
async fn unknown_serials_wait_for_an_operator(s: Store) {
    account_with_agent(&s, "acme", false, "a1").await;
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
                code: Refusal::AccountNotFound,
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

on_both!(an_observations_counters_come_back_whatever_their_names);
/// Counter ids are the agent's text: quotes, backslashes, commas, braces,
/// the word NULL and spaces are filed and read back as sent, each with its
/// own value, also when several share an observation (PostgreSQL stores an
/// observation's counters as arrays).
async fn an_observations_counters_come_back_whatever_their_names(s: Store) {
    s.agent_hello("a1", "1", 0).await.unwrap();
    let names = ["canon.101", r#"a"b\c"#, "x,{y}", "NULL", " è ", ""];
    let at = |seq: u64, taken: i64, base: u64| {
        let counters = names
            .iter()
            .enumerate()
            .filter(|(_, n)| !n.is_empty())
            .map(|(i, n)| counter(n, base + i as u64, 0))
            .collect();
        meter_of(seq, "ODD", taken, counters)
    };
    let out = s
        .ingest("a1", &[at(1, T0, 100), at(2, T0 + DAY, 200)])
        .await
        .unwrap();
    assert_eq!(out.counter_values, 10);
    let mut got: Vec<(String, u64, i64)> = s
        .readings("ODD")
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.counter, r.value, r.taken_at_ms))
        .collect();
    got.sort();
    let mut want: Vec<(String, u64, i64)> = Vec::new();
    for (taken, base) in [(T0, 100), (T0 + DAY, 200)] {
        for (i, n) in names.iter().enumerate().filter(|(_, n)| !n.is_empty()) {
            want.push((n.to_string(), base + i as u64, taken));
        }
    }
    want.sort();
    assert_eq!(got, want);
    let one = s
        .history(
            "ODD",
            &HistoryQuery {
                counter: Some(r#"a"b\c"#.into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let values: Vec<u64> = one.iter().map(|r| r.value).collect();
    assert_eq!(values, [201, 101], "newest first");
    let p = s.product("ODD").await.unwrap().unwrap();
    assert_eq!(p.counters["x,{y}"], 202);
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

on_both!(an_address_change_is_an_event_of_the_product);
async fn an_address_change_is_an_event_of_the_product(s: Store) {
    s.agent_hello("a1", "1", 0).await.unwrap();
    let at = |seq: u64, taken: i64, addr: &str| {
        let mut o = meter(seq, "S1", taken, 100 + seq);
        o.device_address = addr.into();
        o
    };
    s.ingest("a1", &[at(1, T0, "10.0.0.5:161")]).await.unwrap();
    s.ingest("a1", &[at(2, T0 + MIN, "10.0.0.5:161")])
        .await
        .unwrap();
    assert!(s.product_events("S1").await.unwrap().is_empty());
    // Followed to another address: one event, when it was seen there.
    s.ingest(
        "a1",
        &[
            at(3, T0 + 2 * MIN, "10.0.0.9:161"),
            at(4, T0 + 3 * MIN, "10.0.0.9:161"),
        ],
    )
    .await
    .unwrap();
    let e = s.product_events("S1").await.unwrap();
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].event, "address_changed");
    assert_eq!(e[0].at_ms, T0 + 3 * MIN);
    assert!(
        e[0].text.contains("10.0.0.9:161") && e[0].text.contains("was 10.0.0.5:161"),
        "{e:?}"
    );
    assert_eq!(
        s.product("S1").await.unwrap().unwrap().address.as_deref(),
        Some("10.0.0.9:161")
    );
    // A resent batch changes nothing.
    s.ingest("a1", &[at(3, T0 + 2 * MIN, "10.0.0.9:161")])
        .await
        .unwrap();
    assert_eq!(s.product_events("S1").await.unwrap().len(), 1);
}

on_both!(device_text_with_nul_characters_is_filed_without_them);
async fn device_text_with_nul_characters_is_filed_without_them(s: Store) {
    // An agent that sends what a device padded with NULs (or lies): the
    // batch is filed, not refused on every retry (PostgreSQL's text cannot
    // hold NUL), and both stores keep the same text.
    s.agent_hello("a1", "\u{0}1.2\0", 3).await.unwrap();
    let mut id = meter(1, "N\0-1", 1000, 0);
    id.device_address = "10.0.0.5:161\0".into();
    id.body = Some(Body::Identity(Identity {
        model: "iR-ADV\0 C5560\0\0".into(),
        ..Default::default()
    }));
    let mut m = meter(2, "N-1", 2000, 500);
    if let Some(Body::Meter(mr)) = &mut m.body {
        mr.counters[0].name = "Total\0".into();
    }
    let mut st = status_of(3, "N-1", 2000, jam());
    if let Some(Body::Status(d)) = &mut st.body {
        d.console.push("Jam\0 in tray 2".into());
        d.alerts[0].description = "\0".into();
    }
    let o = s.ingest("a1", &[id, m, st]).await.unwrap();
    assert_eq!((o.new, o.highest_seq), (3, 3));
    let p = s.product("N-1").await.unwrap().expect("filed under N-1");
    assert_eq!(p.model.as_deref(), Some("iR-ADV C5560"));
    assert_eq!(p.counters["canon.101"], 500);
    assert_eq!(s.products().await.unwrap().len(), 1);
    assert_eq!(s.agents().await.unwrap()[0].version, "1.2");
}
