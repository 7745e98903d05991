//! The embedded store: one SQLite file (sqlx), WAL with FULL sync.

use super::Settings;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

type Db = Sqlite;
type Store = SqliteStore;
const BACKEND: &str = "sqlite";
/// SQLite has one writer at a time: a transaction that has written holds
/// the whole database, so rows need no locks of their own.
const LOCK_PRODUCTS: &str = "";
/// Taken before migrating: SQLite's write lock comes with the first write.
const MIGRATION_LOCK: Option<&str> = None;
const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)";

/// Schema migrations, applied in order; the index is the schema version.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE agents (
    agent_id TEXT PRIMARY KEY,
    version TEXT NOT NULL DEFAULT '',
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    highest_seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE observations (
    agent_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    serial TEXT NOT NULL,
    device_address TEXT NOT NULL,
    taken_at_ms INTEGER NOT NULL,
    received_at_ms INTEGER NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (agent_id, seq)
) WITHOUT ROWID;
CREATE TABLE products (
    serial TEXT PRIMARY KEY,
    vendor TEXT, model TEXT, firmware TEXT, mac TEXT, address TEXT,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL
);
CREATE TABLE counter_current (
    serial TEXT NOT NULL,
    counter_id TEXT NOT NULL,
    value INTEGER NOT NULL,
    taken_at_ms INTEGER NOT NULL,
    PRIMARY KEY (serial, counter_id)
) WITHOUT ROWID;
CREATE TABLE readings (
    serial TEXT NOT NULL,
    counter_id TEXT NOT NULL,
    value INTEGER NOT NULL,
    taken_at_ms INTEGER NOT NULL,
    filed_at_ms INTEGER NOT NULL,
    agent_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (serial, counter_id, taken_at_ms, agent_id, seq)
) WITHOUT ROWID;
"#,
    r#"
CREATE TABLE counters (
    counter_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    unit TEXT NOT NULL,
    oid TEXT NOT NULL,
    wraps_at_bits INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    // The portal domain (postgres.rs holds the same schema).
    r#"
ALTER TABLE agents ADD COLUMN account_id TEXT;
ALTER TABLE agents ADD COLUMN held_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE products ADD COLUMN account_id TEXT;
ALTER TABLE products ADD COLUMN agent_id TEXT;
ALTER TABLE products ADD COLUMN alt_name TEXT;
ALTER TABLE products ADD COLUMN site_address TEXT;
ALTER TABLE products ADD COLUMN location TEXT;
ALTER TABLE products ADD COLUMN administrator TEXT;
ALTER TABLE products ADD COLUMN emaintenance INTEGER NOT NULL DEFAULT 1;
ALTER TABLE products ADD COLUMN billing_day INTEGER;
ALTER TABLE products ADD COLUMN entitlements TEXT NOT NULL DEFAULT '{}';
CREATE INDEX products_account ON products (account_id, serial);
ALTER TABLE readings ADD COLUMN raw_value INTEGER;
ALTER TABLE readings ADD COLUMN state TEXT NOT NULL DEFAULT 'filed';
ALTER TABLE readings ADD COLUMN anomaly TEXT;
CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    billing_code TEXT NOT NULL,
    service_code TEXT NOT NULL,
    auto_create INTEGER NOT NULL DEFAULT 0,
    time_zone TEXT NOT NULL DEFAULT 'UTC'
);
CREATE TABLE product_groups (
    group_id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    name TEXT NOT NULL,
    UNIQUE (account_id, name)
);
CREATE TABLE group_products (
    group_id INTEGER NOT NULL REFERENCES product_groups (group_id),
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
    request_id INTEGER PRIMARY KEY AUTOINCREMENT,
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
    occurrences INTEGER NOT NULL DEFAULT 1,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    opened_at_ms INTEGER NOT NULL,
    closed_at_ms INTEGER,
    close_reason TEXT
);
CREATE UNIQUE INDEX service_requests_one_open ON service_requests (serial, fingerprint)
    WHERE state = 'open' AND fingerprint IS NOT NULL;
CREATE INDEX service_requests_account ON service_requests (account_id, state);
CREATE INDEX service_requests_serial ON service_requests (serial, state);
CREATE TABLE request_events (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id INTEGER NOT NULL REFERENCES service_requests (request_id),
    at_ms INTEGER NOT NULL,
    event TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX request_events_request ON request_events (request_id);
CREATE TABLE request_tracks (
    serial TEXT PRIMARY KEY,
    track TEXT NOT NULL,
    due_ms INTEGER
);
CREATE INDEX request_tracks_due ON request_tracks (due_ms);
CREATE TABLE outbox (
    outbox_id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id INTEGER NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT
);
CREATE INDEX outbox_state ON outbox (state, request_id, outbox_id);
"#,
    // Write locality. Current values: one row per product instead of one
    // per counter. Readings keyed product, time, counter: one observation's
    // counters share a leaf page, where they were spread over one page per
    // counter (an ingest batch dirtied ~20 pages per product, all of them
    // written to the WAL at every commit).
    r#"
CREATE TABLE readings_by_time (
    serial TEXT NOT NULL,
    counter_id TEXT NOT NULL,
    value INTEGER NOT NULL,
    taken_at_ms INTEGER NOT NULL,
    filed_at_ms INTEGER NOT NULL,
    agent_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    raw_value INTEGER,
    state TEXT NOT NULL DEFAULT 'filed',
    anomaly TEXT,
    PRIMARY KEY (serial, taken_at_ms, counter_id, agent_id, seq)
) WITHOUT ROWID;
INSERT INTO readings_by_time
    SELECT serial, counter_id, value, taken_at_ms, filed_at_ms, agent_id, seq, raw_value, state, anomaly
    FROM readings;
DROP TABLE readings;
ALTER TABLE readings_by_time RENAME TO readings;
CREATE TABLE product_current (
    serial TEXT PRIMARY KEY,
    counters TEXT NOT NULL,
    latest_ms INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO product_current (serial, counters, latest_ms)
    SELECT serial, json_group_object(counter_id, json_array(value, taken_at_ms)), max(taken_at_ms)
    FROM counter_current GROUP BY serial;
DROP TABLE counter_current;
"#,
    // API users: operators (no account) beside the two customer roles, and
    // their tokens (only a hash of each). A product administrator's
    // products are those naming them as administrator: user_products went.
    r#"
DROP TABLE user_products;
ALTER TABLE users RENAME TO users_old;
CREATE TABLE users (
    user_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    account_id TEXT REFERENCES accounts (account_id),
    role TEXT NOT NULL CHECK (role IN ('operator', 'account_manager', 'product_administrator')),
    CHECK ((role = 'operator') = (account_id IS NULL))
);
INSERT INTO users (user_id, name, account_id, role)
    SELECT user_id, name, account_id, role FROM users_old;
DROP TABLE users_old;
CREATE INDEX users_account ON users (account_id);
CREATE TABLE api_tokens (
    token_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (user_id),
    secret_sha256 TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);
CREATE INDEX products_administrator ON products (administrator);
"#,
];

pub struct SqliteStore {
    pool: SqlitePool,
    label: String,
    settings: Settings,
}

impl SqliteStore {
    pub async fn open(path: &Path, settings: Settings) -> Result<SqliteStore, StoreError> {
        let label = path.display().to_string();
        let err = |source| StoreError::Db {
            path: label.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(sqlx::Error::Io(e)))?;
        }
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: the WAL is fsynced at every commit (see the module docs).
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            // A larger page cache and memory-mapped reads: the B-tree pages
            // that every insert walks stay in memory instead of being read
            // back through system calls (measured in BENCHMARKS.md).
            .pragma("cache_size", "-65536")
            .pragma("mmap_size", "268435456")
            // Checkpoint every ~40 MB of WAL instead of every 4 MB: pages
            // that each batch rewrites (products, current values) reach the
            // database file once per checkpoint, not once per commit. The WAL
            // is still fsynced at every commit.
            .pragma("wal_autocheckpoint", "10000")
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(err)?;
        let store = SqliteStore {
            pool,
            label,
            settings,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Inserts the observations of `batch` not filed before and returns them.
    /// Already-filed ones (resent after a reconnect) are found with one range
    /// query: RETURNING would cost a round trip to SQLite's thread per row.
    /// The caller's transaction has written first, so it holds the write lock.
    async fn new_observations<'a>(
        &self,
        tx: &mut Tx,
        agent: &str,
        batch: &'a [Observation],
        now: i64,
    ) -> Result<Vec<&'a Observation>, StoreError> {
        let (lo, hi) = batch
            .iter()
            .fold((u64::MAX, 0), |(lo, hi), o| (lo.min(o.seq), hi.max(o.seq)));
        let filed: HashSet<i64> = sqlx::query_scalar(
            "SELECT seq FROM observations WHERE agent_id = $1 AND seq BETWEEN $2 AND $3",
        )
        .bind(agent)
        .bind(lo as i64)
        .bind(hi as i64)
        .fetch_all(&mut **tx)
        .await
        .map_err(|e| self.err(e))?
        .into_iter()
        .collect();
        let mut new: HashSet<i64> = HashSet::new();
        let to_insert: Vec<&Observation> = batch
            .iter()
            .filter(|o| !filed.contains(&(o.seq as i64)) && new.insert(o.seq as i64))
            .collect();
        for chunk in to_insert.chunks(500) {
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
            qb.build()
                .execute(&mut **tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        Ok(to_insert)
    }
}

include!("common.rs");

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn current_values_survive_the_move_to_one_row_per_product() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let opts = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(opts).await.unwrap();
        migration_tests::old_current_values(&pool, 3).await;
        pool.close().await;
        let s = SqliteStore::open(&path, Settings::default()).await.unwrap();
        migration_tests::check_current_values(&s).await;
    }

    #[tokio::test]
    async fn users_survive_the_move_to_operators_and_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let opts = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(opts).await.unwrap();
        migration_tests::old_users(&pool, 4).await;
        pool.close().await;
        let s = SqliteStore::open(&path, Settings::default()).await.unwrap();
        migration_tests::check_users(&s).await;
    }
}
