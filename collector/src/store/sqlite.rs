//! SQLite store (sqlx): schema migrations, one transaction per batch.

use super::{IngestOutcome, Product, Reading, StoreError};
use meterlink_proto::v1::{observation::Body, CounterValue, MeterReading, Observation};
use prost::Message;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

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
];

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

/// The raw body kept with an observation. A meter reading whose values all
/// land in `readings` (and whose counter descriptions land in `counters`)
/// keeps an empty body: storing each reading twice halved ingest throughput.
/// Anything that would not round-trip that way keeps its full encoding.
fn stored_body(o: &Observation) -> Vec<u8> {
    if let Some(Body::Meter(m)) = &o.body {
        let mut ids = std::collections::HashSet::new();
        let lossless = !o.serial.is_empty()
            && m.counters
                .iter()
                .all(|c| c.value <= i64::MAX as u64 && ids.insert(c.id.as_str()));
        if lossless {
            return Vec::new();
        }
    }
    o.encode_to_vec()
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
            // A larger page cache and memory-mapped reads: the B-tree pages
            // that every insert walks stay in memory instead of being read
            // back through system calls (measured in BENCHMARKS.md).
            .pragma("cache_size", "-65536")
            .pragma("mmap_size", "268435456")
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
    /// Rows go in multi-row statements: per-row round trips would cost more
    /// than the writes themselves.
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
            out.highest_seq = out.highest_seq.max(o.seq);
        }
        let now = now_ms();
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        // Writing first takes the write lock, so the duplicate check below
        // and the inserts see the same state even with several agents.
        sqlx::query("UPDATE agents SET highest_seq = MAX(highest_seq, ?), last_seen_ms = ? WHERE agent_id = ?")
            .bind(out.highest_seq as i64)
            .bind(now)
            .bind(agent)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        // 1. Raw observations. Already-filed ones (resent after a reconnect)
        // are found with one range query; RETURNING would cost a round trip
        // to the database thread per row.
        let (lo, hi) = batch
            .iter()
            .fold((u64::MAX, 0), |(lo, hi), o| (lo.min(o.seq), hi.max(o.seq)));
        let filed: std::collections::HashSet<i64> = sqlx::query_scalar(
            "SELECT seq FROM observations WHERE agent_id = ? AND seq BETWEEN ? AND ?",
        )
        .bind(agent)
        .bind(lo as i64)
        .bind(hi as i64)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| self.err(e))?
        .into_iter()
        .collect();
        let mut new: std::collections::HashSet<i64> = std::collections::HashSet::new();
        let to_insert: Vec<&Observation> = batch
            .iter()
            .filter(|o| !filed.contains(&(o.seq as i64)) && new.insert(o.seq as i64))
            .collect();
        for chunk in to_insert.chunks(500) {
            let bodies: Vec<Vec<u8>> = chunk.iter().map(|o| stored_body(o)).collect();
            let mut qb = QueryBuilder::<Sqlite>::new(
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
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        out.new = to_insert.len() as u64;
        out.duplicates = batch.len() as u64 - out.new;
        let fresh: Vec<&Observation> = to_insert
            .into_iter()
            .filter(|o| !o.serial.is_empty())
            .collect();
        // 2. Products: one row per serial, with its latest address.
        let mut products: std::collections::BTreeMap<&str, (&str, i64)> = Default::default();
        for o in &fresh {
            let e = products
                .entry(o.serial.as_str())
                .or_insert((o.device_address.as_str(), o.taken_at_ms));
            if o.taken_at_ms >= e.1 {
                *e = (o.device_address.as_str(), o.taken_at_ms);
            }
        }
        let prows: Vec<_> = products.into_iter().collect();
        for chunk in prows.chunks(500) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO products (serial, address, first_seen_ms, last_seen_ms) ",
            );
            qb.push_values(chunk, |mut b, (serial, (addr, t))| {
                b.push_bind(*serial)
                    .push_bind(*addr)
                    .push_bind(*t)
                    .push_bind(*t);
            });
            qb.push(
                " ON CONFLICT (serial) DO UPDATE SET address = excluded.address, \
                 last_seen_ms = MAX(products.last_seen_ms, excluded.last_seen_ms)",
            );
            qb.build()
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        // 3. Identity details, reading history, current values.
        let mut readings: Vec<(&str, &str, i64, i64, i64)> = Vec::new();
        for o in &fresh {
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
                    for c in m.counters.iter().filter(|c| c.value <= i64::MAX as u64) {
                        readings.push((
                            o.serial.as_str(),
                            c.id.as_str(),
                            c.value as i64,
                            o.taken_at_ms,
                            o.seq as i64,
                        ));
                    }
                }
                _ => {}
            }
        }
        out.counter_values = readings.len() as u64;
        // Counter descriptions, once per distinct id in the batch.
        let mut described: std::collections::BTreeMap<&str, &CounterValue> = Default::default();
        for o in &fresh {
            if let Some(Body::Meter(m)) = &o.body {
                for c in &m.counters {
                    described.entry(c.id.as_str()).or_insert(c);
                }
            }
        }
        let drows: Vec<_> = described.into_values().collect();
        for chunk in drows.chunks(500) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO counters (counter_id, name, unit, oid, wraps_at_bits) ",
            );
            qb.push_values(chunk, |mut b, c| {
                b.push_bind(c.id.as_str())
                    .push_bind(c.name.as_str())
                    .push_bind(c.unit.as_str())
                    .push_bind(c.oid.as_str())
                    .push_bind(c.wraps_at_bits as i64);
            });
            qb.push(
                " ON CONFLICT (counter_id) DO UPDATE SET name = excluded.name, unit = excluded.unit, \
                 oid = excluded.oid, wraps_at_bits = excluded.wraps_at_bits \
                 WHERE (name, unit, oid, wraps_at_bits) IS NOT (excluded.name, excluded.unit, excluded.oid, excluded.wraps_at_bits)",
            );
            qb.build()
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        for chunk in readings.chunks(1000) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO readings (serial, counter_id, value, taken_at_ms, filed_at_ms, agent_id, seq) ",
            );
            qb.push_values(chunk, |mut b, r| {
                b.push_bind(r.0)
                    .push_bind(r.1)
                    .push_bind(r.2)
                    .push_bind(r.3)
                    .push_bind(now)
                    .push_bind(agent)
                    .push_bind(r.4);
            });
            qb.push(" ON CONFLICT DO NOTHING");
            qb.build()
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        // The latest value per (serial, counter) in this batch; a late reading
        // never replaces a newer current value.
        let mut current: std::collections::BTreeMap<(&str, &str), (i64, i64)> = Default::default();
        for r in &readings {
            let e = current.entry((r.0, r.1)).or_insert((r.2, r.3));
            if r.3 >= e.1 {
                *e = (r.2, r.3);
            }
        }
        let crows: Vec<_> = current.into_iter().collect();
        for chunk in crows.chunks(1000) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO counter_current (serial, counter_id, value, taken_at_ms) ",
            );
            qb.push_values(chunk, |mut b, ((serial, id), (v, t))| {
                b.push_bind(*serial)
                    .push_bind(*id)
                    .push_bind(*v)
                    .push_bind(*t);
            });
            qb.push(
                " ON CONFLICT (serial, counter_id) DO UPDATE SET value = excluded.value, taken_at_ms = excluded.taken_at_ms \
                 WHERE excluded.taken_at_ms >= counter_current.taken_at_ms",
            );
            qb.build()
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        }
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

    /// One filed observation as the agent sent it. A meter reading's counters
    /// come back ordered by counter id, described as the latest batch that
    /// carried that id described them.
    pub async fn observation(
        &self,
        agent: &str,
        seq: u64,
    ) -> Result<Option<Observation>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT kind, serial, device_address, taken_at_ms, body FROM observations WHERE agent_id = ? AND seq = ?",
        )
        .bind(agent)
        .bind(seq as i64)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))?
        else {
            return Ok(None);
        };
        let (kind, serial, body): (String, String, Vec<u8>) = (row.get(0), row.get(1), row.get(4));
        if !body.is_empty() || kind != "meter" {
            return Observation::decode(body.as_slice()).map(Some).map_err(|e| {
                StoreError::Invalid {
                    agent: agent.into(),
                    seq,
                    what: format!("stored body does not decode: {e}"),
                }
            });
        }
        let counters = sqlx::query(
            "SELECT r.counter_id, r.value, c.name, c.unit, c.oid, c.wraps_at_bits
             FROM readings r LEFT JOIN counters c ON c.counter_id = r.counter_id
             WHERE r.serial = ? AND r.agent_id = ? AND r.seq = ? ORDER BY r.counter_id",
        )
        .bind(&serial)
        .bind(agent)
        .bind(seq as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?
        .into_iter()
        .map(|r| CounterValue {
            id: r.get(0),
            value: r.get::<i64, _>(1) as u64,
            name: r.get::<Option<String>, _>(2).unwrap_or_default(),
            unit: r.get::<Option<String>, _>(3).unwrap_or_default(),
            oid: r.get::<Option<String>, _>(4).unwrap_or_default(),
            wraps_at_bits: r.get::<Option<i64>, _>(5).unwrap_or_default() as u32,
        })
        .collect();
        Ok(Some(Observation {
            seq,
            taken_at_ms: row.get(3),
            device_address: row.get(2),
            serial,
            body: Some(Body::Meter(MeterReading { counters })),
        }))
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

#[cfg(test)]
mod tests {
    use super::*;
    use meterlink_proto::v1::Identity;

    fn meter(seq: u64, serial: &str, taken: i64, value: u64) -> Observation {
        Observation {
            seq,
            taken_at_ms: taken,
            device_address: "10.0.0.5:161".into(),
            serial: serial.into(),
            body: Some(Body::Meter(MeterReading {
                counters: vec![CounterValue {
                    id: "canon.101".into(),
                    value,
                    ..Default::default()
                }],
            })),
        }
    }

    #[tokio::test]
    async fn dedupes_and_keeps_the_newest_current_value() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
        s.agent_hello("a1", "1").await.unwrap();
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
        assert_eq!(s.filed_seqs("a1").await.unwrap(), vec![1, 2, 3, 4]);
        // Raw observations come back as sent, whether their values live in
        // the readings table or in the stored body.
        let mut full = meter(5, "S1", 4000, 700);
        if let Some(Body::Meter(m)) = &mut full.body {
            m.counters[0].name = "Total 1".into();
            m.counters[0].unit = "impressions".into();
            m.counters[0].oid = "1.3.6.1.4.1.1602.1.11.1.3.1.4.101".into();
            m.counters[0].wraps_at_bits = 32;
            m.counters.push(CounterValue {
                id: "canon.301".into(),
                value: 9,
                ..Default::default()
            });
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
    }
}
