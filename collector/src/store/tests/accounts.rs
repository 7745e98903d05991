//! Accounts and groups.

use super::*;

on_both!(groups_and_accounts);
async fn groups_and_accounts(s: Store) {
    account(&s, "acme", true).await;
    account(&s, "other", true).await;
    s.agent_hello("a1", "1", 0).await.unwrap();
    s.set_agent_account("a1", Some("acme")).await.unwrap();
    s.ingest("a1", &[meter(1, "G1", T0, 1), meter(2, "G2", T0, 1)])
        .await
        .unwrap();
    let g = s.create_group("acme", "Floor 2", None).await.unwrap();
    assert!(matches!(
        s.create_group("acme", "Floor 2", None).await.unwrap_err(),
        StoreError::Refused {
            code: Refusal::GroupExists,
            ..
        }
    ));
    s.group_member(g.id, "G1", true).await.unwrap();
    let g = s.group_member(g.id, "G2", true).await.unwrap();
    assert_eq!(g.products, vec!["G1", "G2"]);
    let og = s.create_group("other", "Floor 2", None).await.unwrap();
    assert!(matches!(
        s.group_member(og.id, "G1", true).await.unwrap_err(),
        StoreError::Refused {
            code: Refusal::ProductOfAnotherAccount,
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

/// A product is an eMaintenance product while an eMaintenance line of its
/// company runs: set when lines change, and on the clock when a line's
/// start or end date passes.
async fn emaintenance_follows_contract_lines(s: Store) {
    account(&s, "acme", true).await;
    s.agent_hello("agent-c", "0.1.0", 1).await.unwrap();
    s.set_agent_account("agent-c", Some("acme")).await.unwrap();
    s.ingest("agent-c", &[meter(1, "E-1", T0, 100)])
        .await
        .unwrap();
    let day = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .format("%Y-%m-%d")
            .to_string()
    };
    let line = crate::model::NewContractLine {
        account: "acme".into(),
        contract_number: "C-1".into(),
        item: "1".into(),
        serial: Some("E-1".into()),
        service: None,
        kind: "emaintenance".into(),
        starts_on: day(T0 + DAY),
        ends_on: Some(day(T0 + 3 * DAY)),
    };
    s.put_contract_lines(&[line]).await.unwrap();
    let emaint = || async { s.product("E-1").await.unwrap().unwrap().emaintenance };
    // Before the line starts, during it, after it ends.
    s.tick(T0, LISTENING).await.unwrap();
    assert!(!emaint().await, "not started");
    s.tick(T0 + 2 * DAY, LISTENING).await.unwrap();
    assert!(emaint().await, "running");
    s.tick(T0 + 5 * DAY, LISTENING).await.unwrap();
    assert!(!emaint().await, "ended");
}
on_both!(emaintenance_follows_contract_lines);

/// What the readings answer reads in one statement agrees with the whole
/// product: its account, its administrators (its own and its groups') and
/// its latest values; an unknown serial is none.
async fn product_latest_agrees_with_the_product(s: Store) {
    use super::users::user;
    use crate::model::{ProductUpdate, Role};
    account_with_agent(&s, "acme", true, "a1").await;
    s.ingest(
        "a1",
        &[
            meter_of(
                1,
                "L1",
                T0,
                vec![counter("canon.101", 100, 32), counter("canon.102", 7, 32)],
            ),
            meter(2, "L2", T0, 50),
            status_of(3, "L3", T0, jam()),
        ],
    )
    .await
    .unwrap();
    for who in ["pat", "pia", "pam"] {
        s.put_user(&user(who, Role::ProductAdministrator, Some("acme")))
            .await
            .unwrap();
    }
    s.update_product(
        "L1",
        &ProductUpdate {
            administrators: Some(vec!["pat".into()]),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let g = s.create_group("acme", "Floor 1", None).await.unwrap();
    s.group_member(g.id, "L1", true).await.unwrap();
    s.group_administrator(g.id, "pia", true).await.unwrap();
    s.group_administrator(g.id, "pat", true).await.unwrap();

    for serial in ["L1", "L2", "L3"] {
        let p = s.product(serial).await.unwrap().unwrap();
        let l = s.product_latest(serial).await.unwrap().unwrap();
        assert_eq!(
            (l.account, l.administrators, l.counters),
            (p.account, p.administrators, p.counters),
            "{serial}"
        );
    }
    let l1 = s.product_latest("L1").await.unwrap().unwrap();
    assert_eq!(l1.administrators, vec!["pat", "pia"]);
    assert_eq!(l1.counters.get("canon.101"), Some(&100));
    assert!(s
        .product_latest("L3")
        .await
        .unwrap()
        .unwrap()
        .counters
        .is_empty());
    assert_eq!(s.product_latest("nowhere").await.unwrap(), None);
}
on_both!(product_latest_agrees_with_the_product);
