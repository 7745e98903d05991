//! Migration tests, shared by both backends (each runs them on its own).

use crate::model::{Role, User};
use meterlink_proto::v1::{observation::Body, CounterValue, MeterReading, Observation};
use std::collections::BTreeMap;

use super::{Backend, Db, MIGRATIONS, VERSION_TABLE};

/// Brings `pool` to schema `version` as an older collector left it, with
/// one product whose current values are in the per-counter table that
/// the next migration replaces.
async fn apply_up_to(pool: &sqlx::Pool<Db>, version: usize) {
    sqlx::raw_sql(VERSION_TABLE).execute(pool).await.unwrap();
    for (i, m) in MIGRATIONS[..version].iter().enumerate() {
        sqlx::raw_sql(m).execute(pool).await.unwrap();
        sqlx::query("INSERT INTO schema_version (version) VALUES ($1)")
            .bind((i + 1) as i64)
            .execute(pool)
            .await
            .unwrap();
    }
}

/// Schema `version`, before operators and tokens, with one account
/// manager in it.
pub(crate) async fn old_users(pool: &sqlx::Pool<Db>, version: usize) {
    apply_up_to(pool, version).await;
    for sql in [
        "INSERT INTO accounts (account_id, name, billing_code, service_code) VALUES ('acme', 'Acme', 'B', 'S')",
        "INSERT INTO users (user_id, name, account_id, role) VALUES ('mia', 'Mia', 'acme', 'account_manager')",
    ] {
        sqlx::query(sql).execute(pool).await.unwrap();
    }
}

/// The old user is kept; operators and tokens work; the constraints hold.
pub(crate) async fn check_users(s: &Backend) {
    let mia = s.user("mia").await.unwrap().expect("mia kept");
    assert_eq!(
        (mia.role, mia.account.as_deref()),
        (Role::AccountManager, Some("acme"))
    );
    let ops = User::new("ops", "Ops", Role::Operator, None);
    s.put_user(&ops).await.unwrap();
    let t = s.issue_token("mia", "", None, 1).await.unwrap();
    assert_eq!(s.authenticate(&t.token, 2).await.unwrap(), Some(mia));
    // The schema itself refuses an operator with an account.
    let bad = sqlx::query("UPDATE users SET account_id = 'acme' WHERE user_id = 'ops'")
        .execute(&s.pool)
        .await;
    assert!(bad.is_err(), "an operator with an account was stored");
}

pub(crate) async fn old_current_values(pool: &sqlx::Pool<Db>, version: usize) {
    apply_up_to(pool, version).await;
    sqlx::query("INSERT INTO products (serial, first_seen_ms, last_seen_ms) VALUES ('OLD1', 1, 2)")
        .execute(pool)
        .await
        .unwrap();
    for (counter, value, at) in [("canon.101", 1_000i64, 2i64), ("canon.102", 50, 1)] {
        sqlx::query("INSERT INTO counter_current (serial, counter_id, value, taken_at_ms) VALUES ('OLD1', $1, $2, $3)")
            .bind(counter)
            .bind(value)
            .bind(at)
            .execute(pool)
            .await
            .unwrap();
    }
}

/// A meter reading of the old product's canon.101, as an agent sends it.
fn canon_101_of_old1(seq: u64, taken_at_ms: i64, value: u64) -> Observation {
    Observation {
        seq,
        taken_at_ms,
        device_address: "10.0.0.1:161".into(),
        serial: "OLD1".into(),
        body: Some(Body::Meter(MeterReading {
            counters: vec![CounterValue {
                id: "canon.101".into(),
                value,
                ..Default::default()
            }],
        })),
    }
}

/// After the migration the values are there, and filing goes on from them.
pub(crate) async fn check_current_values(s: &Backend) {
    let want = |a: u64, b: u64| {
        BTreeMap::from([("canon.101".to_string(), a), ("canon.102".to_string(), b)])
    };
    assert_eq!(s.current("OLD1").await.unwrap(), want(1_000, 50));
    let o = canon_101_of_old1(1, 3, 1_200);
    s.agent_hello("a", "1", 0).await.unwrap();
    let out = s.ingest("a", &[o]).await.unwrap();
    assert_eq!(out.counter_values, 1);
    assert_eq!(s.current("OLD1").await.unwrap(), want(1_200, 50));
}

/// Schema `version` with three readings of one product, two of them of
/// one observation, filed by an older collector.
pub(crate) async fn old_readings(pool: &sqlx::Pool<Db>, version: usize) {
    apply_up_to(pool, version).await;
    sqlx::query("INSERT INTO products (serial, first_seen_ms, last_seen_ms) VALUES ('OLD1', 1, 2)")
        .execute(pool)
        .await
        .unwrap();
    let old = [
        (1i64, 1i64, "canon.101", 1_000i64),
        (1, 1, "canon.102", 50),
        (2, 2, "canon.101", 1_100),
    ];
    for (seq, at, counter, value) in old {
        sqlx::query(
            "INSERT INTO readings (serial, counter_id, value, taken_at_ms, filed_at_ms, agent_id, seq)
             VALUES ('OLD1', $1, $2, $3, $3, 'a', $4)",
        )
        .bind(counter)
        .bind(value)
        .bind(at)
        .bind(seq)
        .execute(pool)
        .await
        .unwrap();
    }
}

/// The old readings are read back, and a newer one is filed beside them.
pub(crate) async fn check_readings(s: &Backend) {
    s.agent_hello("a", "1", 0).await.unwrap();
    let o = canon_101_of_old1(3, 3, 1_200);
    assert_eq!(s.ingest("a", &[o]).await.unwrap().counter_values, 1);
    let readings = s.readings("OLD1").await.unwrap();
    let read: Vec<(&str, u64, i64, u64)> = readings
        .iter()
        .map(|r| (r.counter.as_str(), r.value, r.taken_at_ms, r.seq))
        .collect();
    assert_eq!(
        read,
        [
            ("canon.101", 1_000, 1, 1),
            ("canon.101", 1_100, 2, 2),
            ("canon.101", 1_200, 3, 3),
            ("canon.102", 50, 1, 1)
        ]
    );
}

/// The schema before the knowledge centre, with one article as an older
/// collector wrote it (code as typed, no language, no models).
pub(crate) async fn old_articles(pool: &sqlx::Pool<Db>) {
    let knowledge_centre = MIGRATIONS
        .iter()
        .position(|m| m.contains("CREATE TABLE kb_article_models"))
        .expect("the knowledge centre's migration");
    apply_up_to(pool, knowledge_centre).await;
    sqlx::query(
        "INSERT INTO kb_articles (article_id, kind, code, title, body) \
         VALUES ('kb-old', 'error_code', ' e602-0001', 'Hard disk error', 'Turn the power off and on.')",
    )
    .execute(pool)
    .await
    .unwrap();
}

/// The article is found by its code (now upper case) and by its words, in
/// English, for every model; the request rules find it by code.
pub(crate) async fn check_articles(s: &Backend) {
    use crate::model::{ArticleQuery, ArticleViewer};
    let find = |code: Option<&str>, text: &[&str]| ArticleQuery {
        code: code.map(str::to_string),
        text: text.iter().map(|w| w.to_string()).collect(),
        limit: 10,
        ..ArticleQuery::default()
    };
    let everyone = ArticleViewer::default();
    let hits = s
        .search_articles(&find(Some("E602-0001"), &[]), everyone)
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].article.code.as_deref(), Some("E602-0001"));
    assert_eq!(hits[0].article.language, "en");
    assert!(hits[0].article.models.is_empty());
    let hits = s
        .search_articles(&find(None, &["power"]), everyone)
        .await
        .unwrap();
    assert_eq!(hits.len(), 1, "the text index holds the old article");
    let customer = ArticleViewer {
        accounts: Some(&[]),
        admin: None,
    };
    assert_eq!(
        s.search_articles(&find(None, &["disk"]), customer)
            .await
            .unwrap()
            .len(),
        1,
        "an article for every model"
    );
}
