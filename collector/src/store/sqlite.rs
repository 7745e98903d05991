//! SQLite store (sqlx): schema migrations, one transaction per batch.

use super::{IngestOutcome, Product, Reading, StoreError};
use meterlink_proto::v1::{observation::Body, Observation};
use prost::Message;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// Schema migrations, applied in order; the index is the schema version.
const MIGRATIONS: &[&str] = &[r#"
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
"#];

pub struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn kind(o: &Observation) -> &'static str {
    match o.body {
        Some(Body::Identity(_)) => "identity",
        Some(Body::Meter(_)) => "meter",
        Some(Body::Status(_)) => "status",
        Some(Body::Supplies(_)) => "supplies",
        None => "empty",
    }
}

impl SqliteStore {
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let err = |source| StoreError::Db {
            path: path.display().to_string(),
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
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(err)?;
        let store = SqliteStore {
            pool,
            path: path.to_path_buf(),
        };
        store.migrate().await?;
        Ok(store)
    }

    fn err(&self, source: sqlx::Error) -> StoreError {
        StoreError::Db {
            path: self.path.display().to_string(),
            source,
        }
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        sqlx::query("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        let v: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_version")
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        let have = v.unwrap_or(0) as usize;
        for (i, m) in MIGRATIONS.iter().enumerate().skip(have) {
            sqlx::raw_sql(m)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
            sqlx::query("INSERT INTO schema_version (version) VALUES (?)")
                .bind((i + 1) as i64)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        tx.commit().await.map_err(|e| self.err(e))
    }

    /// Records that an agent connected.
    pub async fn agent_hello(&self, agent: &str, version: &str) -> Result<u64, StoreError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO agents (agent_id, version, first_seen_ms, last_seen_ms) VALUES (?, ?, ?, ?)
             ON CONFLICT (agent_id) DO UPDATE SET version = excluded.version, last_seen_ms = excluded.last_seen_ms",
        )
        .bind(agent)
        .bind(version)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        let h: i64 = sqlx::query_scalar("SELECT highest_seq FROM agents WHERE agent_id = ?")
            .bind(agent)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(h as u64)
    }

    /// Files one batch in one transaction: raw observations deduplicated on
    /// (agent, seq), products, current counter values and reading history.
    pub async fn ingest(
        &self,
        agent: &str,
        batch: &[Observation],
    ) -> Result<IngestOutcome, StoreError> {
        let mut out = IngestOutcome::default();
        for o in batch {
            if o.seq == 0 || o.seq > i64::MAX as u64 {
                return Err(StoreError::Invalid {
                    agent: agent.into(),
                    seq: o.seq,
                    what: "sequence number out of range".into(),
                });
            }
        }
        let now = now_ms();
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        for o in batch {
            out.highest_seq = out.highest_seq.max(o.seq);
            let inserted = sqlx::query(
                "INSERT INTO observations (agent_id, seq, kind, serial, device_address, taken_at_ms, received_at_ms, body)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(agent)
            .bind(o.seq as i64)
            .bind(kind(o))
            .bind(&o.serial)
            .bind(&o.device_address)
            .bind(o.taken_at_ms)
            .bind(now)
            .bind(o.encode_to_vec())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?
            .rows_affected();
            if inserted == 0 {
                out.duplicates += 1;
                continue;
            }
            out.new += 1;
            if o.serial.is_empty() {
                continue;
            }
            sqlx::query(
                "INSERT INTO products (serial, address, first_seen_ms, last_seen_ms) VALUES (?, ?, ?, ?)
                 ON CONFLICT (serial) DO UPDATE SET address = excluded.address,
                   last_seen_ms = MAX(products.last_seen_ms, excluded.last_seen_ms)",
            )
            .bind(&o.serial)
            .bind(&o.device_address)
            .bind(o.taken_at_ms)
            .bind(o.taken_at_ms)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
            match &o.body {
                Some(Body::Identity(id)) => {
                    sqlx::query("UPDATE products SET vendor = ?, model = ?, firmware = ?, mac = ? WHERE serial = ?")
                        .bind(&id.vendor)
                        .bind(&id.model)
                        .bind(&id.firmware)
                        .bind(&id.mac)
                        .bind(&o.serial)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.err(e))?;
                }
                Some(Body::Meter(m)) => {
                    for c in &m.counters {
                        if c.value > i64::MAX as u64 {
                            continue;
                        }
                        sqlx::query(
                            "INSERT INTO readings (serial, counter_id, value, taken_at_ms, filed_at_ms, agent_id, seq)
                             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        )
                        .bind(&o.serial)
                        .bind(&c.id)
                        .bind(c.value as i64)
                        .bind(o.taken_at_ms)
                        .bind(now)
                        .bind(agent)
                        .bind(o.seq as i64)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.err(e))?;
                        // A late reading never replaces a newer current value.
                        sqlx::query(
                            "INSERT INTO counter_current (serial, counter_id, value, taken_at_ms) VALUES (?, ?, ?, ?)
                             ON CONFLICT (serial, counter_id) DO UPDATE SET value = excluded.value, taken_at_ms = excluded.taken_at_ms
                             WHERE excluded.taken_at_ms >= counter_current.taken_at_ms",
                        )
                        .bind(&o.serial)
                        .bind(&c.id)
                        .bind(c.value as i64)
                        .bind(o.taken_at_ms)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.err(e))?;
                        out.counter_values += 1;
                    }
                }
                _ => {}
            }
        }
        sqlx::query("UPDATE agents SET highest_seq = MAX(highest_seq, ?), last_seen_ms = ? WHERE agent_id = ?")
            .bind(out.highest_seq as i64)
            .bind(now)
            .bind(agent)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(out)
    }

    pub async fn products(&self) -> Result<Vec<Product>, StoreError> {
        let rows = sqlx::query("SELECT serial, vendor, model, firmware, mac, address, last_seen_ms FROM products ORDER BY serial")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let serial: String = r.get(0);
            out.push(Product {
                counters: self.current(&serial).await?,
                serial,
                vendor: r.get(1),
                model: r.get(2),
                firmware: r.get(3),
                mac: r.get(4),
                address: r.get(5),
                last_seen_ms: r.get(6),
            });
        }
        Ok(out)
    }

    pub async fn product(&self, serial: &str) -> Result<Option<Product>, StoreError> {
        Ok(self
            .products()
            .await?
            .into_iter()
            .find(|p| p.serial == serial))
    }

    async fn current(
        &self,
        serial: &str,
    ) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
        let rows = sqlx::query("SELECT counter_id, value FROM counter_current WHERE serial = ?")
            .bind(serial)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1) as u64))
            .collect())
    }

    pub async fn readings(&self, serial: &str) -> Result<Vec<Reading>, StoreError> {
        let rows = sqlx::query(
            "SELECT counter_id, value, taken_at_ms, filed_at_ms, agent_id, seq FROM readings
             WHERE serial = ? ORDER BY counter_id, taken_at_ms, seq",
        )
        .bind(serial)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|r| Reading {
                counter: r.get(0),
                value: r.get::<i64, _>(1) as u64,
                taken_at_ms: r.get(2),
                filed_at_ms: r.get(3),
                agent: r.get(4),
                seq: r.get::<i64, _>(5) as u64,
            })
            .collect())
    }

    /// How many raw observations of an agent are filed (for tests and status).
    pub async fn observation_count(&self, agent: &str) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM observations WHERE agent_id = ?")
            .bind(agent)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(n as u64)
    }

    /// All filed (agent, seq) pairs of an agent, ascending.
    pub async fn filed_seqs(&self, agent: &str) -> Result<Vec<u64>, StoreError> {
        let v: Vec<i64> =
            sqlx::query_scalar("SELECT seq FROM observations WHERE agent_id = ? ORDER BY seq")
                .bind(agent)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
        Ok(v.into_iter().map(|x| x as u64).collect())
    }
}
