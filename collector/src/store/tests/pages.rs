//! What the portal's pages read without loading whole tables: a counter's
//! readings around given times and in buckets, a model's knowledge
//! categories in one statement, the delivery queues' entries and retries.

use super::*;
use crate::model::{Article, OutboxResult, Role};
use meterlink_proto::v1::{Supplies, Supply};

on_both!(seeks_and_buckets_read_only_what_a_page_needs);
async fn seeks_and_buckets_read_only_what_a_page_needs(s: Store) {
    s.agent_hello("a1", "1", 0).await.unwrap();
    // Readings of two counters an hour apart; canon.108 in between.
    let batch: Vec<Observation> = (0..48u64)
        .map(|i| {
            meter_of(
                i + 1,
                "S1",
                T0 + i as i64 * 60 * MIN,
                vec![
                    counter("canon.101", 1000 + 10 * i, 0),
                    counter("canon.108", 5 * i, 0),
                ],
            )
        })
        .collect();
    s.ingest("a1", &batch).await.unwrap();
    let hour = 60 * MIN;
    let before = s
        .readings_before("S1", "canon.101", &[T0, T0 + 10 * hour + 1, i64::MAX])
        .await
        .unwrap();
    assert_eq!(
        before,
        vec![
            None,
            Some((T0 + 10 * hour, 1100)),
            Some((T0 + 47 * hour, 1470))
        ]
    );
    let from = s
        .readings_from(
            "S1",
            "canon.101",
            &[i64::MIN, T0 + 10 * hour + 1, T0 + 48 * hour],
        )
        .await
        .unwrap();
    assert_eq!(
        from,
        vec![Some((T0, 1000)), Some((T0 + 11 * hour, 1110)), None]
    );
    assert!(s
        .readings_before("S1", "canon.101", &[])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        s.readings_before("NONE", "canon.101", &[i64::MAX])
            .await
            .unwrap(),
        vec![None]
    );
    // Twelve buckets of four hours: each its last time and highest value.
    let series = s
        .counter_series("S1", "canon.101", T0, T0 + 47 * hour, 12)
        .await
        .unwrap();
    // Buckets of 47 h / 12 (and a millisecond): hours 0-3 in the first.
    assert_eq!(series.len(), 12);
    assert_eq!(
        series[0],
        SeriesPoint {
            at_ms: T0 + 3 * hour,
            value: 1030,
            manual: false
        }
    );
    assert_eq!(
        series.last().unwrap(),
        &SeriesPoint {
            at_ms: T0 + 47 * hour,
            value: 1470,
            manual: false
        }
    );
    assert!(series
        .windows(2)
        .all(|w| w[0].at_ms < w[1].at_ms && w[0].value <= w[1].value));
    assert!(series.iter().all(|p| !p.manual));
    // A reading typed in by hand is marked in its bucket.
    s.update_product(
        "S1",
        &ProductUpdate {
            emaintenance: Some(false),
            ..ProductUpdate::default()
        },
    )
    .await
    .unwrap();
    s.manual_reading(
        "S1",
        &ManualReading {
            counter: "canon.101".into(),
            value: 1500,
            taken_at_ms: Some(T0 + 48 * hour),
            user: Some("mia".into()),
        },
        T0 + 49 * hour,
    )
    .await
    .unwrap();
    let series = s
        .counter_series("S1", "canon.101", T0, T0 + 48 * hour, 12)
        .await
        .unwrap();
    let last = series.last().unwrap();
    assert_eq!((last.value, last.manual), (1500, true));
}

on_both!(a_models_categories_in_one_read);
async fn a_models_categories_in_one_read(s: Store) {
    let article = |id: &str, kind: &str, language: &str, models: &[&str], title: &str| Article {
        id: id.into(),
        kind: kind.into(),
        code: (kind == "error_code").then(|| "E602-0001".into()),
        language: language.into(),
        models: models.iter().map(|m| m.to_string()).collect(),
        title: title.into(),
        body: "Text".into(),
    };
    let all = [
        article("f1", "faq", "en", &[], "B general"),
        article("f2", "faq", "en", &["iR-ADV C5560"], "A for the model"),
        article("f3", "faq", "en", &["LBP 325x"], "C another model"),
        article("f4", "faq", "it", &[], "D in Italian"),
        article("f5", "faq", "en", &[], "E general"),
        article("e1", "error_code", "en", &["iR-ADV C5560"], "E602"),
    ];
    s.put_articles(&all).await.unwrap();
    let langs = vec!["en".to_string()];
    let (first, counts) = s
        .article_categories(Some("iR-ADV C5560"), &langs, 2)
        .await
        .unwrap();
    let ids: Vec<&str> = first.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["e1", "f2", "f1"], "by kind, then title, two each");
    assert_eq!(counts.get("faq"), Some(&3));
    assert_eq!(counts.get("error_code"), Some(&1));
    assert_eq!(counts.get("troubleshooter"), None);
    let it = vec!["it".to_string(), "en".to_string()];
    let (_, counts) = s
        .article_categories(Some("iR-ADV C5560"), &it, 2)
        .await
        .unwrap();
    assert_eq!(counts.get("faq"), Some(&4));
}

on_both!(dead_letters_are_listed_and_retried);
async fn dead_letters_are_listed_and_retried(s: Store) {
    account(&s, "acme", true).await;
    let mut u = User::new("mia", "Mia", Role::AccountManager, Some("acme"));
    u.email = Some("mia@example.com".into());
    s.put_user(&u).await.unwrap();
    assert!(s
        .request_password_reset(
            "mia@example.com",
            &"1".repeat(64),
            "https://x/1",
            T0,
            T0 + DAY
        )
        .await
        .unwrap());
    assert!(s
        .request_password_reset(
            "mia@example.com",
            &"2".repeat(64),
            "https://x/2",
            T0,
            T0 + DAY
        )
        .await
        .unwrap());
    let pending = s.email_entries("pending", 10).await.unwrap();
    assert_eq!(pending.len(), 2);
    assert!(pending[0].id > pending[1].id, "newest first");
    assert_eq!(pending[0].target, "mia@example.com");
    let dead_id = pending[1].id;
    s.email_result(
        dead_id,
        OutboxResult::Dead {
            error: "550 mailbox unavailable".into(),
        },
    )
    .await
    .unwrap();
    let dead = s.email_entries("dead", 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].last_error.as_deref(),
        Some("550 mailbox unavailable")
    );
    assert_eq!(dead[0].attempts, 1);
    // Back in line with a full round of attempts, due now; only once.
    assert!(s.email_retry(dead_id, T0 + 5 * MIN).await.unwrap());
    assert!(!s.email_retry(dead_id, T0 + 5 * MIN).await.unwrap());
    assert!(
        !s.email_retry(pending[0].id, T0).await.unwrap(),
        "not a dead letter"
    );
    assert!(s.email_entries("dead", 10).await.unwrap().is_empty());
    let due = s.email_due(T0 + 5 * MIN, 10).await.unwrap();
    assert!(due.iter().any(|e| e.id == dead_id && e.attempts == 0));
    assert_eq!(s.email_counts().await.unwrap().dead, 0);
    assert!(s.outbox_entries("dead", 10).await.unwrap().is_empty());
    assert!(!s.outbox_retry(1, T0).await.unwrap());
}

on_both!(supplies_as_last_read);
async fn supplies_as_last_read(s: Store) {
    s.agent_hello("a1", "1", 0).await.unwrap();
    let read = |seq: u64, taken: i64, black: Option<u32>| Observation {
        seq,
        taken_at_ms: taken,
        device_address: "10.0.0.5:161".into(),
        serial: "S1".into(),
        body: Some(Body::Supplies(Supplies {
            supplies: vec![
                Supply {
                    index: 1,
                    description: "Black Toner".into(),
                    kind: "toner".into(),
                    percent: black,
                    state: "ok".into(),
                    ..Default::default()
                },
                Supply {
                    index: 2,
                    description: "Waste Toner".into(),
                    kind: "wasteToner".into(),
                    level: Some(300),
                    max: Some(1200),
                    state: "ok".into(),
                    ..Default::default()
                },
            ],
        })),
    };
    assert_eq!(
        s.product_supplies("S1").await.unwrap(),
        ProductSupplies::default()
    );
    s.ingest("a1", &[read(1, T0, Some(42))]).await.unwrap();
    let got = s.product_supplies("S1").await.unwrap();
    assert_eq!(got.seen_at_ms, Some(T0));
    assert_eq!(got.supplies[0].percent, Some(42));
    // Level over maximum when the device gives no percent.
    assert_eq!(got.supplies[1].percent, Some(25));
    // A newer read replaces it; an older one, arriving late, does not.
    s.ingest("a1", &[read(2, T0 + MIN, Some(40))])
        .await
        .unwrap();
    s.ingest("a1", &[read(3, T0 - MIN, Some(90))])
        .await
        .unwrap();
    let got = s.product_supplies("S1").await.unwrap();
    assert_eq!(
        (got.seen_at_ms, got.supplies[0].percent),
        (Some(T0 + MIN), Some(40))
    );
}
