//! The scale-out store: PostgreSQL, shared by several collector replicas.
//! Replicas file the same streams without duplicates: an observation's
//! (agent, seq) primary key decides which transaction files it, and the
//! others see the conflict and skip it (also when an agent moves to
//! another replica in the middle of a stream).

use super::Settings;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Postgres;
use std::time::Duration;

type Db = Postgres;
type Store = PgStore;
const BACKEND: &str = "postgres";
/// Replicas update a product's request track one at a time.
const LOCK_PRODUCTS: &str = " FOR UPDATE OF p";
/// Replicas starting together: one migrates, the others wait for it.
const MIGRATION_LOCK: Option<&str> = Some("SELECT pg_advisory_xact_lock(7220145339)");
const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)";

/// Schema migrations, applied in order; the index is the schema version.
/// The first is the SQLite store's schema after its first three migrations.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE agents (
    agent_id TEXT PRIMARY KEY,
    version TEXT NOT NULL DEFAULT '',
    first_seen_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    highest_seq BIGINT NOT NULL DEFAULT 0,
    account_id TEXT,
    held_seq BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE observations (
    agent_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    serial TEXT NOT NULL,
    device_address TEXT NOT NULL,
    taken_at_ms BIGINT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    body BYTEA NOT NULL,
    PRIMARY KEY (agent_id, seq)
);
CREATE TABLE products (
    serial TEXT PRIMARY KEY,
    vendor TEXT, model TEXT, firmware TEXT, mac TEXT, address TEXT,
    first_seen_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    account_id TEXT,
    agent_id TEXT,
    alt_name TEXT,
    site_address TEXT,
    location TEXT,
    administrator TEXT,
    emaintenance BIGINT NOT NULL DEFAULT 1,
    billing_day BIGINT,
    entitlements TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX products_account ON products (account_id, serial);
CREATE TABLE counter_current (
    serial TEXT NOT NULL,
    counter_id TEXT NOT NULL,
    value BIGINT NOT NULL,
    taken_at_ms BIGINT NOT NULL,
    PRIMARY KEY (serial, counter_id)
);
CREATE TABLE readings (
    serial TEXT NOT NULL,
    counter_id TEXT NOT NULL,
    value BIGINT NOT NULL,
    taken_at_ms BIGINT NOT NULL,
    filed_at_ms BIGINT NOT NULL,
    agent_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    raw_value BIGINT,
    state TEXT NOT NULL DEFAULT 'filed',
    anomaly TEXT,
    PRIMARY KEY (serial, counter_id, taken_at_ms, agent_id, seq)
);
CREATE TABLE counters (
    counter_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    unit TEXT NOT NULL,
    oid TEXT NOT NULL,
    wraps_at_bits BIGINT NOT NULL
);
CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    billing_code TEXT NOT NULL,
    service_code TEXT NOT NULL,
    auto_create BIGINT NOT NULL DEFAULT 0,
    time_zone TEXT NOT NULL DEFAULT 'UTC'
);
CREATE TABLE product_groups (
    group_id BIGSERIAL PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    name TEXT NOT NULL,
    UNIQUE (account_id, name)
);
CREATE TABLE group_products (
    group_id BIGINT NOT NULL REFERENCES product_groups (group_id),
    serial TEXT NOT NULL,
    PRIMARY KEY (group_id, serial)
);
CREATE INDEX group_products_serial ON group_products (serial);
CREATE TABLE users (
    user_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    role TEXT NOT NULL CHECK (role IN ('account_manager', 'product_administrator'))
);
CREATE TABLE user_products (
    user_id TEXT NOT NULL REFERENCES users (user_id),
    serial TEXT NOT NULL,
    PRIMARY KEY (user_id, serial)
);
CREATE TABLE kb_articles (
    article_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    code TEXT,
    title TEXT NOT NULL,
    body TEXT NOT NULL DEFAULT ''
);
CREATE INDEX kb_articles_code ON kb_articles (code);
CREATE TABLE service_requests (
    request_id BIGSERIAL PRIMARY KEY,
    account_id TEXT,
    serial TEXT,
    kind TEXT NOT NULL,
    priority TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'closed')),
    opened_by TEXT NOT NULL,
    fingerprint TEXT,
    title TEXT NOT NULL,
    code TEXT,
    kb_article TEXT,
    occurrences BIGINT NOT NULL DEFAULT 1,
    first_seen_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    opened_at_ms BIGINT NOT NULL,
    closed_at_ms BIGINT,
    close_reason TEXT
);
CREATE UNIQUE INDEX service_requests_one_open ON service_requests (serial, fingerprint)
    WHERE state = 'open' AND fingerprint IS NOT NULL;
CREATE INDEX service_requests_account ON service_requests (account_id, state);
CREATE INDEX service_requests_serial ON service_requests (serial, state);
CREATE TABLE request_events (
    event_id BIGSERIAL PRIMARY KEY,
    request_id BIGINT NOT NULL REFERENCES service_requests (request_id),
    at_ms BIGINT NOT NULL,
    event TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX request_events_request ON request_events (request_id);
CREATE TABLE request_tracks (
    serial TEXT PRIMARY KEY,
    track TEXT NOT NULL,
    due_ms BIGINT
);
CREATE INDEX request_tracks_due ON request_tracks (due_ms);
CREATE TABLE outbox (
    outbox_id BIGSERIAL PRIMARY KEY,
    request_id BIGINT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT
);
CREATE INDEX outbox_state ON outbox (state, request_id, outbox_id);
"#,
    // Write locality (SQLite migration 4): readings keyed product, time,
    // counter; current values one row per product.
    r#"
ALTER TABLE readings DROP CONSTRAINT readings_pkey;
ALTER TABLE readings ADD PRIMARY KEY (serial, taken_at_ms, counter_id, agent_id, seq);
CREATE TABLE product_current (
    serial TEXT PRIMARY KEY,
    counters TEXT NOT NULL,
    latest_ms BIGINT NOT NULL
);
INSERT INTO product_current (serial, counters, latest_ms)
    SELECT serial, json_object_agg(counter_id, json_build_array(value, taken_at_ms))::text, max(taken_at_ms)
    FROM counter_current GROUP BY serial;
DROP TABLE counter_current;
"#,
    // API users and tokens (SQLite migration 5).
    r#"
DROP TABLE user_products;
ALTER TABLE users ALTER COLUMN account_id DROP NOT NULL;
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('operator', 'account_manager', 'product_administrator'));
ALTER TABLE users ADD CONSTRAINT users_operator_has_no_account
    CHECK ((role = 'operator') = (account_id IS NULL));
CREATE INDEX users_account ON users (account_id);
CREATE TABLE api_tokens (
    token_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (user_id),
    secret_sha256 TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);
CREATE INDEX products_administrator ON products (administrator);
"#,
];

pub struct PgStore {
    pool: PgPool,
    label: String,
    settings: Settings,
}

/// The URL without its password, for errors and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{user}@{}", &url[..s], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

impl PgStore {
    pub async fn open(url: &str, settings: Settings) -> Result<PgStore, StoreError> {
        let label = redact(url);
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|source| StoreError::Db {
                path: label.clone(),
                source,
            })?;
        let store = PgStore {
            pool,
            label,
            settings,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Inserts the observations of `batch` not filed before and returns them.
    /// ON CONFLICT DO NOTHING RETURNING names the rows this transaction
    /// inserted: a replica filing the same (agent, seq) at the same moment
    /// makes this one wait for its commit and then skip the row.
    async fn new_observations<'a>(
        &self,
        tx: &mut Tx,
        agent: &str,
        batch: &'a [Observation],
        now: i64,
    ) -> Result<Vec<&'a Observation>, StoreError> {
        let mut sorted: Vec<&Observation> = batch.iter().collect();
        // One lock order for every replica: no deadlocks between them.
        sorted.sort_by_key(|o| o.seq);
        sorted.dedup_by_key(|o| o.seq);
        let mut inserted: HashSet<i64> = HashSet::new();
        for chunk in sorted.chunks(500) {
            let bodies: Vec<Vec<u8>> = chunk.iter().map(|o| stored_body(o)).collect();
            let mut qb = QueryBuilder::<Db>::new(
                "INSERT INTO observations (agent_id, seq, kind, serial, device_address, taken_at_ms, received_at_ms, body) ",
            );
            qb.push_values(chunk.iter().zip(bodies), |mut b, (o, body)| {
                b.push_bind(agent)
                    .push_bind(o.seq as i64)
                    .push_bind(kind(o))
                    .push_bind(o.serial.as_str())
                    .push_bind(o.device_address.as_str())
                    .push_bind(o.taken_at_ms)
                    .push_bind(now)
                    .push_bind(body);
            });
            qb.push(" ON CONFLICT DO NOTHING RETURNING seq");
            let seqs: Vec<i64> = qb
                .build_query_scalar()
                .fetch_all(&mut **tx)
                .await
                .map_err(|e| self.err(e))?;
            inserted.extend(seqs);
        }
        Ok(sorted
            .into_iter()
            .filter(|o| inserted.contains(&(o.seq as i64)))
            .collect())
    }
}

include!("common.rs");

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn current_values_survive_the_move_to_one_row_per_product() {
        let Some(url) = super::super::scratch_postgres(
            "current_values_survive_the_move_to_one_row_per_product",
        )
        .await
        else {
            return;
        };
        let pool = PgPoolOptions::new().connect(&url).await.unwrap();
        migration_tests::old_current_values(&pool, 1).await;
        pool.close().await;
        let s = PgStore::open(&url, Settings::default()).await.unwrap();
        migration_tests::check_current_values(&s).await;
    }

    #[tokio::test]
    async fn users_survive_the_move_to_operators_and_tokens() {
        let Some(url) =
            super::super::scratch_postgres("users_survive_the_move_to_operators_and_tokens").await
        else {
            return;
        };
        let pool = PgPoolOptions::new().connect(&url).await.unwrap();
        migration_tests::old_users(&pool, 2).await;
        pool.close().await;
        let s = PgStore::open(&url, Settings::default()).await.unwrap();
        migration_tests::check_users(&s).await;
    }
}
