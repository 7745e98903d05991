//! The scale-out store: PostgreSQL, shared by several collector replicas.
//! Replicas file the same streams without duplicates: an observation's
//! (agent, seq) primary key decides which transaction files it, and the
//! others see the conflict and skip it (also when an agent moves to
//! another replica in the middle of a stream).

use super::{encoding, pg_array, Settings, StoreError};
use meterlink_proto::v1::Observation;
use sql::Tx;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Postgres;
use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

type Db = Postgres;
type Backend = PgStore;
const BACKEND: &str = "postgres";
/// Replicas update a product's request track one at a time.
const LOCK_PRODUCTS: &str = " FOR UPDATE OF p";
/// Row locks are taken by the statements themselves.
const BEGIN_WRITE: &str = "BEGIN";
/// Replicas starting together: one migrates, the others wait for it.
const MIGRATION_LOCK: Option<&str> = Some("SELECT pg_advisory_xact_lock(7220145339)");
const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)";
/// After the clock's rules changed many requests at once. Without fresh
/// statistics (autovacuum off, or not come round yet) PostgreSQL took the
/// open requests for a handful and joined them to the products in a nested
/// loop: the next tick over 100,000 silent products took 194 s.
const ANALYZE_REQUESTS: Option<&str> = Some("ANALYZE products, service_requests, request_tracks");
/// A counter's filed reading at or before a time, and the first after it.
/// The index is on (serial, taken_at_ms), so these walk a product's
/// observations from that time until one holds the counter filed: a
/// counter the product rarely or never reported walks its whole history.
/// The array test rules out an observation without the counter before its
/// arrays are unnested (about 7x faster on such a walk: 4 ms against 29 ms
/// over 11,700 observations).
const READING_BEFORE: &str = "SELECT u.value, r.taken_at_ms FROM reading_sets r \
     CROSS JOIN LATERAL unnest(r.counter_ids, r.vals, r.states) AS u(counter_id, value, state) \
     WHERE r.serial = $1 AND r.taken_at_ms <= $3 AND r.counter_ids @> ARRAY[$2::TEXT] \
     AND u.counter_id = $2 AND u.state = 'filed' ORDER BY r.taken_at_ms DESC, u.value DESC LIMIT 1";
const READING_AFTER: &str = "SELECT u.value, r.taken_at_ms FROM reading_sets r \
     CROSS JOIN LATERAL unnest(r.counter_ids, r.vals, r.states) AS u(counter_id, value, state) \
     WHERE r.serial = $1 AND r.taken_at_ms > $3 AND r.counter_ids @> ARRAY[$2::TEXT] \
     AND u.counter_id = $2 AND u.state = 'filed' ORDER BY r.taken_at_ms ASC, u.value ASC LIMIT 1";

/// Schema migrations, applied in order; the index is the schema version.
/// The first is the SQLite store's schema after its first three migrations.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/postgres/0001_schema.sql"),
    include_str!("migrations/postgres/0002_write_locality.sql"),
    include_str!("migrations/postgres/0003_operators_and_tokens.sql"),
    include_str!("migrations/postgres/0004_product_events.sql"),
    include_str!("migrations/postgres/0005_enrollment.sql"),
    include_str!("migrations/postgres/0006_people.sql"),
    include_str!("migrations/postgres/0007_email_outbox.sql"),
    include_str!("migrations/postgres/0008_user_links.sql"),
    include_str!("migrations/postgres/0009_portal_people.sql"),
    include_str!("migrations/postgres/0010_request_details.sql"),
    include_str!("migrations/postgres/0011_contract_lines.sql"),
    include_str!("migrations/postgres/0012_entitlement_terms.sql"),
    include_str!("migrations/postgres/0013_knowledge_and_configuration.sql"),
    include_str!("migrations/postgres/0014_product_supplies.sql"),
    include_str!("migrations/postgres/0015_room_for_updates.sql"),
    include_str!("migrations/postgres/0016_readings_per_observation.sql"),
];

/// After a column: that it is one of `keys`, bound as one array (one
/// parameter, one statement text whatever the set's size, instead of an
/// `IN` list of up to 500 parameters; about as fast in the ingest bench).
fn push_key_set<'a>(qb: &mut sqlx::QueryBuilder<'a, Db>, keys: &[&'a str]) {
    qb.push(" = ANY(");
    qb.push_bind(keys.to_vec());
    qb.push(")");
}

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
        let options = sqlx::postgres::PgConnectOptions::from_str(url)
            .map_err(|source| StoreError::Db {
                path: label.clone(),
                source,
            })?
            // Each statement is planned with its own values and the tables'
            // statistics as they are. A generic plan, which PostgreSQL takes
            // after a few runs of a prepared statement, is costed on the
            // statistics of its first runs: on a new store (or one whose
            // tables autovacuum has not analysed yet) that is an empty
            // table, and ingest's lookups by serial became sequential scans
            // of every product, a thousand times slower as the fleet grew.
            //
            // Random reads are costed as on an SSD, not as on the spinning
            // disk PostgreSQL's default (4) assumes: the store's hot tables
            // live in memory, and at the default the planner read every
            // product (a sequential scan) to find a batch's 500 by their key,
            // five times slower than the index.
            .options([
                ("plan_cache_mode", "force_custom_plan"),
                ("random_page_cost", "1.1"),
            ]);
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
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
    ///
    /// With the agent's row locked (`agent_locked`: every ingest of that
    /// agent takes it first, so no other transaction files its observations
    /// until this one ends), the seqs already filed in the batch's range are
    /// read in the same statement and the rest go in as plain rows: cheaper
    /// than ON CONFLICT's speculative insertion, which cost twice as much per
    /// row. Without the lock (an agent with no row yet), or for a batch of
    /// scattered seqs, ON CONFLICT DO NOTHING RETURNING names the rows this
    /// transaction inserted: a replica filing the same (agent, seq) at the
    /// same moment makes this one wait for its commit and then skip the row.
    async fn new_observations<'a>(
        &self,
        tx: &mut Tx,
        agent: &str,
        batch: &'a [Observation],
        now: i64,
        agent_locked: bool,
    ) -> Result<Vec<&'a Observation>, StoreError> {
        let mut sorted: Vec<&Observation> = batch.iter().collect();
        // One lock order for every replica: no deadlocks between them.
        sorted.sort_by_key(|o| o.seq);
        sorted.dedup_by_key(|o| o.seq);
        let (Some(first), Some(last)) = (sorted.first(), sorted.last()) else {
            return Ok(Vec::new());
        };
        let (lo, hi) = (first.seq as i64, last.seq as i64);
        // Columns as arrays, one statement for the whole batch (UNNEST):
        // the same prepared statement whatever the batch's size, instead of
        // a new multi-row text of thousands of parameters to parse and plan.
        let seqs: Vec<i64> = sorted.iter().map(|o| o.seq as i64).collect();
        let kinds: Vec<&str> = sorted.iter().map(|o| encoding::kind(o)).collect();
        let serials: Vec<&str> = sorted.iter().map(|o| o.serial.as_str()).collect();
        let addresses: Vec<&str> = sorted.iter().map(|o| o.device_address.as_str()).collect();
        let taken: Vec<i64> = sorted.iter().map(|o| o.taken_at_ms).collect();
        let bodies: Vec<Vec<u8>> = sorted.iter().map(|o| encoding::stored_body(o)).collect();
        // The range read is one index descent for a batch as agents send
        // them (seqs one after another); one whose seqs lie far apart would
        // read every observation filed between them, and takes the conflict
        // check instead.
        let dense = hi - lo < 4 * sorted.len() as i64;
        let plain = agent_locked && dense;
        let statement = if plain {
            "INSERT INTO observations (agent_id, seq, kind, serial, device_address, taken_at_ms, received_at_ms, body)
             SELECT $1, u.seq, u.kind, u.serial, u.address, u.taken, $2, u.body
             FROM UNNEST($3::int8[], $4::text[], $5::text[], $6::text[], $7::int8[], $8::bytea[])
                  AS u(seq, kind, serial, address, taken, body)
             WHERE u.seq NOT IN (SELECT f.seq FROM observations f WHERE f.agent_id = $1 AND f.seq BETWEEN $9 AND $10)
             RETURNING seq"
        } else {
            "INSERT INTO observations (agent_id, seq, kind, serial, device_address, taken_at_ms, received_at_ms, body)
             SELECT $1, u.seq, u.kind, u.serial, u.address, u.taken, $2, u.body
             FROM UNNEST($3::int8[], $4::text[], $5::text[], $6::text[], $7::int8[], $8::bytea[])
                  AS u(seq, kind, serial, address, taken, body)
             ON CONFLICT DO NOTHING RETURNING seq"
        };
        let mut query = sqlx::query_scalar(statement)
            .bind(agent)
            .bind(now)
            .bind(&seqs)
            .bind(&kinds)
            .bind(&serials)
            .bind(&addresses)
            .bind(&taken)
            .bind(&bodies);
        if plain {
            query = query.bind(lo).bind(hi);
        }
        let inserted: HashSet<i64> = query
            .fetch_all(&mut **tx)
            .await
            .map_err(|e| self.err(e))?
            .into_iter()
            .collect();
        Ok(sorted
            .into_iter()
            .filter(|o| inserted.contains(&(o.seq as i64)))
            .collect())
    }

    /// Products in one upsert, columns as arrays (UNNEST).
    async fn write_products(
        &self,
        tx: &mut Tx,
        agent: &str,
        account: Option<&str>,
        rows: &[sql::ProductSeen<'_>],
    ) -> Result<(), StoreError> {
        let serials: Vec<&str> = rows.iter().map(|p| p.serial).collect();
        let addresses: Vec<&str> = rows.iter().map(|p| p.address).collect();
        let first: Vec<i64> = rows.iter().map(|p| p.first_ms).collect();
        let last: Vec<i64> = rows.iter().map(|p| p.last_ms).collect();
        sqlx::query(&format!(
            "INSERT INTO products (serial, address, agent_id, account_id, first_seen_ms, last_seen_ms)
             SELECT u.serial, u.address, $1, $2, u.first_ms, u.last_ms
             FROM UNNEST($3::text[], $4::text[], $5::int8[], $6::int8[]) AS u(serial, address, first_ms, last_ms)
             {}",
            sql::PRODUCT_SEEN_AGAIN
        ))
        .bind(agent)
        .bind(account)
        .bind(&serials)
        .bind(&addresses)
        .bind(&first)
        .bind(&last)
        .execute(&mut **tx)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Readings, one row of `reading_sets` per observation (migration 16):
    /// a batch's readings come grouped by observation, its counters one
    /// after another; each observation's columns go as array literals and
    /// the observations as arrays (UNNEST), in one statement. They are new
    /// rows by construction (their observations are filed for the first
    /// time in this transaction), so they go in without a conflict check.
    async fn write_readings(
        &self,
        tx: &mut Tx,
        agent: &str,
        now: i64,
        rows: &[sql::NewReading<'_>],
    ) -> Result<(), StoreError> {
        let sets: Vec<&[sql::NewReading]> = rows
            .chunk_by(|a, b| (a.serial, a.taken_at_ms, a.seq) == (b.serial, b.taken_at_ms, b.seq))
            .collect();
        // One column a parameter: the sets' keys, and each set's arrays as literals.
        let (mut serials, mut taken, mut seqs) = (Vec::new(), Vec::new(), Vec::new());
        let (mut counters, mut values, mut raws) = (Vec::new(), Vec::new(), Vec::new());
        let (mut states, mut anomalies) = (Vec::new(), Vec::new());
        for set in &sets {
            serials.push(set[0].serial);
            taken.push(set[0].taken_at_ms);
            seqs.push(set[0].seq);
            counters.push(pg_array::text(set.iter().map(|r| Some(r.counter))));
            values.push(pg_array::int8(set.iter().map(|r| Some(r.value))));
            raws.push(pg_array::int8(set.iter().map(|r| r.raw)));
            states.push(pg_array::text(set.iter().map(|r| Some(r.state))));
            anomalies.push(pg_array::text(set.iter().map(|r| r.anomaly.as_deref())));
        }
        sqlx::query(
            "INSERT INTO reading_sets (serial, taken_at_ms, filed_at_ms, agent_id, seq, counter_ids, vals, raw_values, states, anomalies)
             SELECT u.serial, u.taken, $1, $2, u.seq, u.counters::text[], u.vals::int8[], u.raws::int8[],
                    u.states::text[], u.anomalies::text[]
             FROM UNNEST($3::text[], $4::int8[], $5::int8[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
                  AS u(serial, taken, seq, counters, vals, raws, states, anomalies)",
        )
        .bind(now)
        .bind(agent)
        .bind(&serials)
        .bind(&taken)
        .bind(&seqs)
        .bind(&counters)
        .bind(&values)
        .bind(&raws)
        .bind(&states)
        .bind(&anomalies)
        .execute(&mut **tx)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Products' current values in one upsert, columns as arrays (UNNEST).
    async fn write_current(
        &self,
        tx: &mut Tx,
        rows: &[sql::CurrentRow<'_>],
    ) -> Result<(), StoreError> {
        let serials: Vec<&str> = rows.iter().map(|r| r.serial).collect();
        let counters: Vec<&str> = rows.iter().map(|r| r.counters.as_str()).collect();
        let latest: Vec<i64> = rows.iter().map(|r| r.latest_ms).collect();
        sqlx::query(&format!(
            "INSERT INTO product_current (serial, counters, latest_ms)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[]){}",
            sql::CURRENT_AGAIN
        ))
        .bind(&serials)
        .bind(&counters)
        .bind(&latest)
        .execute(&mut **tx)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }
}

// The shared SQL, compiled for this backend (invariant S1).
/// The companies a user (a `users` row) sees, as a JSON array of account
/// ids (json_agg): their organisation's, or the ones given to them. A column
/// of `USER_COLS`, so every user read comes resolved in one statement.
macro_rules! user_sees {
    () => {
        "(SELECT COALESCE(json_agg(a.account_id ORDER BY a.account_id)::text, '[]') FROM accounts a WHERE a.organisation_id = (SELECT oa.organisation_id FROM accounts oa WHERE oa.account_id = users.account_id) AND (NOT EXISTS (SELECT 1 FROM user_companies uc WHERE uc.user_id = users.user_id) OR EXISTS (SELECT 1 FROM user_companies uc WHERE uc.user_id = users.user_id AND uc.account_id = a.account_id)))"
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
        sql::migration_tests::old_current_values(&pool, 1).await;
        pool.close().await;
        let s = PgStore::open(&url, Settings::default()).await.unwrap();
        sql::migration_tests::check_current_values(&s).await;
    }

    #[tokio::test]
    async fn readings_survive_the_move_to_one_row_per_observation() {
        let name = "readings_survive_the_move_to_one_row_per_observation";
        let Some(url) = super::super::scratch_postgres(name).await else {
            return;
        };
        let pool = PgPoolOptions::new().connect(&url).await.unwrap();
        sql::migration_tests::old_readings(&pool, 15).await;
        pool.close().await;
        let s = PgStore::open(&url, Settings::default()).await.unwrap();
        sql::migration_tests::check_readings(&s).await;
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'reading_sets'",
        )
        .fetch_all(&s.pool)
        .await
        .unwrap();
        assert_eq!(indexes, ["reading_sets_product_time"]);
        // A product's readings in a time range are found through it, not
        // by reading the table.
        let mut c = s.pool.acquire().await.unwrap();
        sqlx::query("SET enable_seqscan = off")
            .execute(&mut *c)
            .await
            .unwrap();
        let plan: Vec<String> = sqlx::query_scalar(
            "EXPLAIN SELECT value FROM readings WHERE serial = 'OLD1' AND counter_id = 'canon.101'
             AND taken_at_ms < 5 ORDER BY taken_at_ms DESC LIMIT 1",
        )
        .fetch_all(&mut *c)
        .await
        .unwrap();
        assert!(
            plan.iter().any(|l| l.contains("reading_sets_product_time")),
            "{plan:#?}"
        );
    }

    #[tokio::test]
    async fn users_survive_the_move_to_operators_and_tokens() {
        let Some(url) =
            super::super::scratch_postgres("users_survive_the_move_to_operators_and_tokens").await
        else {
            return;
        };
        let pool = PgPoolOptions::new().connect(&url).await.unwrap();
        sql::migration_tests::old_users(&pool, 2).await;
        pool.close().await;
        let s = PgStore::open(&url, Settings::default()).await.unwrap();
        sql::migration_tests::check_users(&s).await;
    }

    #[tokio::test]
    async fn a_lookup_by_serial_stays_an_index_scan_as_a_new_fleet_grows() {
        let name = "a_lookup_by_serial_stays_an_index_scan_as_a_new_fleet_grows";
        let Some(url) = super::super::scratch_postgres(name).await else {
            return;
        };
        let s = PgStore::open(&url, Settings::default()).await.unwrap();
        let mut c = s.pool.acquire().await.unwrap();
        let add = |from: i64, to: i64| {
            format!(
                "INSERT INTO products (serial, first_seen_ms, last_seen_ms)
                 SELECT 'S' || i, 0, 0 FROM generate_series({from}, {to}) AS i"
            )
        };
        sqlx::query(&add(1, 10)).execute(&mut *c).await.unwrap();
        // Run the lookup as a prepared statement often enough for
        // PostgreSQL to consider a generic plan while the table is small...
        sqlx::query(
            "PREPARE by_serial(text[]) AS SELECT serial FROM products WHERE serial = ANY($1)",
        )
        .execute(&mut *c)
        .await
        .unwrap();
        for _ in 0..10 {
            sqlx::query("EXECUTE by_serial('{S1,S2}')")
                .execute(&mut *c)
                .await
                .unwrap();
        }
        // ...then the fleet grows (no ANALYZE in between: autovacuum may
        // be off, or not have come round yet).
        sqlx::query(&add(11, 50_000))
            .execute(&mut *c)
            .await
            .unwrap();
        let plan: Vec<String> = sqlx::query_scalar("EXPLAIN EXECUTE by_serial('{S1,S2}')")
            .fetch_all(&mut *c)
            .await
            .unwrap();
        let plan = plan.join("\n");
        assert!(!plan.contains("Seq Scan"), "{plan}");
    }

    #[tokio::test]
    async fn articles_survive_the_move_to_the_knowledge_centre() {
        let name = "articles_survive_the_move_to_the_knowledge_centre";
        let Some(url) = super::super::scratch_postgres(name).await else {
            return;
        };
        let pool = PgPoolOptions::new().connect(&url).await.unwrap();
        sql::migration_tests::old_articles(&pool).await;
        pool.close().await;
        let s = PgStore::open(&url, Settings::default()).await.unwrap();
        sql::migration_tests::check_articles(&s).await;
    }
}
