//! The embedded store: one SQLite file (sqlx), WAL with FULL sync.

use super::{encoding, Settings, StoreError};
use meterlink_proto::v1::Observation;
use sql::Tx;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool};
use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

type Db = Sqlite;
type Backend = SqliteStore;
const BACKEND: &str = "sqlite";
/// SQLite has one writer at a time: a transaction that has written holds
/// the whole database, so rows need no locks of their own.
const LOCK_PRODUCTS: &str = "";
/// A transaction that writes takes SQLite's write lock when it begins: one
/// that read first and then wrote would fail (SQLITE_BUSY, no waiting)
/// when another writer committed between its read and its write.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";
/// Taken before migrating: SQLite's write lock comes with the first write.
const MIGRATION_LOCK: Option<&str> = None;
const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)";
/// SQLite plans these statements by their indexes, without statistics.
const ANALYZE_REQUESTS: Option<&str> = None;
/// A counter's filed reading at or before a time, and the first after it.
/// `readings`' primary key is (serial, taken_at_ms, counter_id, ...): a
/// plain range on the time would read every row of every time it passes
/// (every counter, every anomaly) until one is the counter filed. These step from one reading time to the next by the
/// key instead, and look the counter up at each time by the key: a seek per
/// time passed, not a row per counter (13 ms -> 1 ms for a counter absent
/// behind 56,000 rows at 9 times; 2,000 random probes give the same
/// neighbours both ways).
const READING_BEFORE: &str = "WITH RECURSIVE t(at) AS (\
     SELECT max(taken_at_ms) FROM readings WHERE serial = $1 AND taken_at_ms <= $3 \
     UNION ALL SELECT (SELECT max(taken_at_ms) FROM readings WHERE serial = $1 AND taken_at_ms < t.at) \
     FROM t WHERE t.at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM readings \
     WHERE serial = $1 AND taken_at_ms = t.at AND counter_id = $2 AND state = 'filed')) \
     SELECT value, taken_at_ms FROM readings WHERE serial = $1 AND counter_id = $2 \
     AND state = 'filed' AND taken_at_ms = (SELECT min(at) FROM t) ORDER BY value DESC LIMIT 1";
const READING_AFTER: &str = "WITH RECURSIVE t(at) AS (\
     SELECT min(taken_at_ms) FROM readings WHERE serial = $1 AND taken_at_ms > $3 \
     UNION ALL SELECT (SELECT min(taken_at_ms) FROM readings WHERE serial = $1 AND taken_at_ms > t.at) \
     FROM t WHERE t.at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM readings \
     WHERE serial = $1 AND taken_at_ms = t.at AND counter_id = $2 AND state = 'filed')) \
     SELECT value, taken_at_ms FROM readings WHERE serial = $1 AND counter_id = $2 \
     AND state = 'filed' AND taken_at_ms = (SELECT max(at) FROM t) ORDER BY value ASC LIMIT 1";

/// Schema migrations, applied in order; the index is the schema version.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/sqlite/0001_agents_observations_readings.sql"),
    include_str!("migrations/sqlite/0002_counters.sql"),
    include_str!("migrations/sqlite/0003_portal_domain.sql"),
    include_str!("migrations/sqlite/0004_write_locality.sql"),
    include_str!("migrations/sqlite/0005_operators_and_tokens.sql"),
    include_str!("migrations/sqlite/0006_product_events.sql"),
    include_str!("migrations/sqlite/0007_enrollment.sql"),
    include_str!("migrations/sqlite/0008_people.sql"),
    include_str!("migrations/sqlite/0009_email_outbox.sql"),
    include_str!("migrations/sqlite/0010_user_links.sql"),
    include_str!("migrations/sqlite/0011_portal_people.sql"),
    include_str!("migrations/sqlite/0012_request_details.sql"),
    include_str!("migrations/sqlite/0013_contract_lines.sql"),
    include_str!("migrations/sqlite/0014_entitlement_terms.sql"),
    include_str!("migrations/sqlite/0015_knowledge_and_configuration.sql"),
    include_str!("migrations/sqlite/0016_product_supplies.sql"),
];

/// After a column: that it is one of `keys`, as an `IN` list (binding is
/// cheap in-process).
fn push_key_set<'a>(qb: &mut sqlx::QueryBuilder<'a, Db>, keys: &[&'a str]) {
    qb.push(" IN ");
    sql::in_list(qb, keys.iter().copied());
}

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

    /// The seqs of `batch` already filed from `agent`: with one range read
    /// for a batch as agents send them (seqs one after another), by the
    /// seqs themselves for one whose seqs lie far apart, which would
    /// otherwise read every observation filed between them.
    async fn filed_among(
        &self,
        tx: &mut Tx,
        agent: &str,
        batch: &[Observation],
    ) -> Result<HashSet<i64>, StoreError> {
        let (lo, hi) = batch
            .iter()
            .fold((u64::MAX, 0), |(lo, hi), o| (lo.min(o.seq), hi.max(o.seq)));
        if hi.saturating_sub(lo) < 4 * batch.len() as u64 {
            let filed: Vec<i64> = sqlx::query_scalar(
                "SELECT seq FROM observations WHERE agent_id = $1 AND seq BETWEEN $2 AND $3",
            )
            .bind(agent)
            .bind(lo as i64)
            .bind(hi as i64)
            .fetch_all(&mut **tx)
            .await
            .map_err(|e| self.err(e))?;
            return Ok(filed.into_iter().collect());
        }
        let mut filed = HashSet::new();
        let seqs: Vec<i64> = batch.iter().map(|o| o.seq as i64).collect();
        for chunk in seqs.chunks(500) {
            let mut qb =
                sqlx::QueryBuilder::<Db>::new("SELECT seq FROM observations WHERE agent_id = ");
            qb.push_bind(agent).push(" AND seq IN (");
            let mut list = qb.separated(", ");
            for seq in chunk {
                list.push_bind(*seq);
            }
            qb.push(")");
            let found: Vec<i64> = qb
                .build_query_scalar()
                .fetch_all(&mut **tx)
                .await
                .map_err(|e| self.err(e))?;
            filed.extend(found);
        }
        Ok(filed)
    }

    /// Inserts the observations of `batch` not filed before and returns them.
    /// Already-filed ones (resent after a reconnect) are found first
    /// (`filed_among`): RETURNING would cost a round trip to SQLite's thread
    /// per row. The caller's transaction has written first, so it holds the
    /// write lock (the whole database's: whether the agent has a row does
    /// not matter).
    async fn new_observations<'a>(
        &self,
        tx: &mut Tx,
        agent: &str,
        batch: &'a [Observation],
        now: i64,
        _agent_locked: bool,
    ) -> Result<Vec<&'a Observation>, StoreError> {
        let filed = self.filed_among(tx, agent, batch).await?;
        let mut new: HashSet<i64> = HashSet::new();
        let to_insert: Vec<&Observation> = batch
            .iter()
            .filter(|o| !filed.contains(&(o.seq as i64)) && new.insert(o.seq as i64))
            .collect();
        // At most 500 rows of 8 values a statement: SQLite's bind limit.
        for chunk in to_insert.chunks(500) {
            let mut qb = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO observations (agent_id, seq, kind, serial, device_address, taken_at_ms, received_at_ms, body) ",
            );
            qb.push_values(chunk.iter(), |mut b, o| {
                b.push_bind(agent)
                    .push_bind(o.seq as i64)
                    .push_bind(encoding::kind(o))
                    .push_bind(o.serial.as_str())
                    .push_bind(o.device_address.as_str())
                    .push_bind(o.taken_at_ms)
                    .push_bind(now)
                    .push_bind(encoding::stored_body(o));
            });
            qb.build()
                .execute(&mut **tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        Ok(to_insert)
    }

    /// Products in multi-row upserts (500 rows of 6 values: the bind limit).
    async fn write_products(
        &self,
        tx: &mut Tx,
        agent: &str,
        account: Option<&str>,
        rows: &[sql::ProductSeen<'_>],
    ) -> Result<(), StoreError> {
        for chunk in rows.chunks(500) {
            let mut qb = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO products (serial, address, agent_id, account_id, first_seen_ms, last_seen_ms) ",
            );
            qb.push_values(chunk, |mut b, p| {
                b.push_bind(p.serial)
                    .push_bind(p.address)
                    .push_bind(agent)
                    .push_bind(account)
                    .push_bind(p.first_ms)
                    .push_bind(p.last_ms);
            });
            qb.push(sql::PRODUCT_SEEN_AGAIN);
            qb.build()
                .execute(&mut **tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Readings in multi-row INSERTs: bound values are cheap in-process.
    async fn write_readings(
        &self,
        tx: &mut Tx,
        agent: &str,
        now: i64,
        rows: &[sql::NewReading<'_>],
    ) -> Result<(), StoreError> {
        for chunk in rows.chunks(800) {
            let mut qb = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO readings (serial, counter_id, value, raw_value, taken_at_ms, filed_at_ms, agent_id, seq, state, anomaly) ",
            );
            qb.push_values(chunk, |mut b, r| {
                b.push_bind(r.serial)
                    .push_bind(r.counter)
                    .push_bind(r.value)
                    .push_bind(r.raw)
                    .push_bind(r.taken_at_ms)
                    .push_bind(now)
                    .push_bind(agent)
                    .push_bind(r.seq)
                    .push_bind(r.state)
                    .push_bind(r.anomaly.clone());
            });
            qb.push(" ON CONFLICT DO NOTHING");
            qb.build()
                .execute(&mut **tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Products' current values, multi-row upserts.
    async fn write_current(
        &self,
        tx: &mut Tx,
        rows: &[sql::CurrentRow<'_>],
    ) -> Result<(), StoreError> {
        for chunk in rows.chunks(500) {
            let mut qb = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO product_current (serial, counters, latest_ms) ",
            );
            qb.push_values(chunk, |mut b, r| {
                b.push_bind(r.serial)
                    .push_bind(r.counters.as_str())
                    .push_bind(r.latest_ms);
            });
            qb.push(sql::CURRENT_AGAIN);
            qb.build()
                .execute(&mut **tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }
}

// The shared SQL, compiled for this backend (invariant S1).
/// The companies a user (a `users` row) sees, as a JSON array of account
/// ids (json_group_array): their organisation's, or the ones given to them. A column
/// of `USER_COLS`, so every user read comes resolved in one statement.
macro_rules! user_sees {
    () => {
        "(SELECT json_group_array(account_id) FROM (SELECT a.account_id FROM accounts a WHERE a.organisation_id = (SELECT oa.organisation_id FROM accounts oa WHERE oa.account_id = users.account_id) AND (NOT EXISTS (SELECT 1 FROM user_companies uc WHERE uc.user_id = users.user_id) OR EXISTS (SELECT 1 FROM user_companies uc WHERE uc.user_id = users.user_id AND uc.account_id = a.account_id)) ORDER BY a.account_id))"
    };
}

#[allow(
    clippy::duplicate_mod,
    reason = "the shared SQL is compiled once for each backend, by design"
)]
#[path = "sql/mod.rs"]
mod sql;

#[cfg(test)]
mod tests {
    use super::*;

    /// A database file left at an older schema by `old`, then opened by
    /// this collector (which migrates it).
    async fn migrated_from<F: std::future::Future<Output = ()>>(
        dir: &Path,
        old: impl FnOnce(SqlitePool) -> F,
    ) -> SqliteStore {
        let path = dir.join("old.db");
        let opts = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(opts).await.unwrap();
        old(pool.clone()).await;
        pool.close().await;
        SqliteStore::open(&path, Settings::default()).await.unwrap()
    }

    #[tokio::test]
    async fn current_values_survive_the_move_to_one_row_per_product() {
        let dir = tempfile::tempdir().unwrap();
        let s = migrated_from(dir.path(), |pool| async move {
            sql::migration_tests::old_current_values(&pool, 3).await
        })
        .await;
        sql::migration_tests::check_current_values(&s).await;
    }

    #[tokio::test]
    async fn readings_keyed_by_product_and_time_survive_later_migrations() {
        let dir = tempfile::tempdir().unwrap();
        let s = migrated_from(dir.path(), |pool| async move {
            sql::migration_tests::old_readings(&pool, 4).await
        })
        .await;
        sql::migration_tests::check_readings(&s).await;
    }

    #[tokio::test]
    async fn users_survive_the_move_to_operators_and_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let s = migrated_from(dir.path(), |pool| async move {
            sql::migration_tests::old_users(&pool, 4).await
        })
        .await;
        sql::migration_tests::check_users(&s).await;
    }

    #[tokio::test]
    async fn articles_survive_the_move_to_the_knowledge_centre() {
        let dir = tempfile::tempdir().unwrap();
        let s = migrated_from(dir.path(), |pool| async move {
            sql::migration_tests::old_articles(&pool).await
        })
        .await;
        sql::migration_tests::check_articles(&s).await;
    }

    #[tokio::test]
    async fn ready_while_the_schema_is_the_one_it_knows() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("s.db"), Settings::default())
            .await
            .unwrap();
        s.ready().await.unwrap();
        // A newer collector migrated the file meanwhile.
        sqlx::query("INSERT INTO schema_version (version) VALUES ($1)")
            .bind(MIGRATIONS.len() as i64 + 1)
            .execute(&s.pool)
            .await
            .unwrap();
        assert!(matches!(
            s.ready().await,
            Err(StoreError::SchemaTooNew { have, known, .. }) if have == known + 1
        ));
    }

    /// A late reading's neighbours look the counter up at each reading time
    /// by the key (serial, time, counter), rather than reading every row of
    /// the times they pass: with a product's other counters and anomalies
    /// at those times, that read grew with the rows, not with the times.
    #[tokio::test]
    async fn a_late_readings_neighbours_seek_the_counter_at_each_time() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("n.db"), Settings::default())
            .await
            .unwrap();
        for sql in [READING_BEFORE, READING_AFTER] {
            let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
                .bind("S1")
                .bind("canon.101")
                .bind(0i64)
                .fetch_all(&s.pool)
                .await
                .unwrap_or_else(|e| panic!("{e}: {sql}"));
            let plan: Vec<String> = rows
                .iter()
                .map(|r| sqlx::Row::get::<String, _>(r, "detail"))
                .collect();
            let plan = plan.join("\n");
            assert!(
                plan.contains("taken_at_ms=? AND counter_id=?") && !plan.contains("SCAN readings"),
                "{plan}"
            );
        }
    }
}
