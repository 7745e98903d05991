//! Meter readings: filing through the rules, current values, history and
//! manual entries.

use crate::filing::{self, Decision, Filed, Incoming};
use crate::model::{HistoryQuery, IngestOutcome, ManualReading, ProductLatest, Reading};
use crate::store::encoding::{anomaly_text, current_values, parse_current, render_current};
use crate::store::{Refusal, StoreError};
use meterlink_proto::v1::{observation::Body, CounterValue, MeterReading, Observation};
use sqlx::{QueryBuilder, Row};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::requests::TrackEvent;
use super::rows::{reading_from, DbRow, Tx, READING_COLS};
use super::{push_key_set, Backend, Db, LOCK_PRODUCTS, READING_AFTER, READING_BEFORE};

/// A reading of one batch on its way into `readings`.
pub(crate) struct NewReading<'a> {
    pub(crate) serial: &'a str,
    pub(crate) counter: &'a str,
    pub(crate) value: i64,
    pub(crate) raw: Option<i64>,
    pub(crate) taken_at_ms: i64,
    pub(crate) seq: i64,
    pub(crate) state: &'static str,
    pub(crate) anomaly: Option<String>,
}

/// A product's current filed values on their way into `product_current`.
pub(crate) struct CurrentRow<'a> {
    pub(crate) serial: &'a str,
    /// counter -> value and time, as JSON (`render_current`).
    pub(crate) counters: String,
    pub(crate) latest_ms: i64,
}

/// What `product_current` does with a product's row written again.
pub(crate) const CURRENT_AGAIN: &str =
    " ON CONFLICT (serial) DO UPDATE SET counters = excluded.counters, latest_ms = excluded.latest_ms";

impl Backend {
    /// Files the meter readings of `fresh` (sorted by product and time):
    /// each value goes through `filing::decide` against the filed history,
    /// lands in `readings` as filed or anomaly (a reading held already, the
    /// same time and value, is not stored again), and moves the current
    /// value only when it is the newest filed one.
    pub(super) async fn file_readings<'b>(
        &self,
        tx: &mut Tx,
        agent: &str,
        fresh: &[&'b Observation],
        now: i64,
        out: &mut IngestOutcome,
        events: &mut BTreeMap<&'b str, Vec<(i64, TrackEvent<'b>)>>,
    ) -> Result<(), StoreError> {
        let meters: Vec<(&Observation, &MeterReading)> = fresh
            .iter()
            .filter_map(|o| match &o.body {
                Some(Body::Meter(m)) => Some((*o, m)),
                _ => None,
            })
            .collect();
        if meters.is_empty() {
            return Ok(());
        }
        // Counter descriptions, once per distinct id in the batch.
        let mut described: BTreeMap<&str, &CounterValue> = BTreeMap::new();
        for (_, m) in &meters {
            for c in &m.counters {
                described.entry(c.id.as_str()).or_insert(c);
            }
        }
        let drows: Vec<_> = described.into_values().collect();
        for chunk in drows.chunks(500) {
            let mut qb = QueryBuilder::<Db>::new(
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
                 WHERE (counters.name, counters.unit, counters.oid, counters.wraps_at_bits) IS DISTINCT FROM \
                 (excluded.name, excluded.unit, excluded.oid, excluded.wraps_at_bits)",
            );
            qb.build()
                .execute(&mut **tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        // Current filed values of the batch's products (keyed by the batch's
        // own strings), one row per product.
        let mut serials: Vec<&str> = meters.iter().map(|(o, _)| o.serial.as_str()).collect();
        serials.dedup();
        let mut current = self.load_current(tx, &serials).await?;
        let policy = &self.settings.filing;
        let mut rows: Vec<NewReading> = Vec::new();
        let mut moved: BTreeSet<&str> = BTreeSet::new();
        for (o, m) in &meters {
            let mut anomalies: Vec<(String, String)> = Vec::new();
            // One reading per counter and observation: a counter named
            // twice is filed as first named (the backends' bulk inserts rely
            // on a batch's rows being new).
            let mut named: HashSet<&str> = HashSet::new();
            for c in m
                .counters
                .iter()
                .filter(|c| c.value <= i64::MAX as u64 && named.insert(c.id.as_str()))
            {
                let key = (o.serial.as_str(), c.id.as_str());
                let incoming = Incoming {
                    raw: c.value,
                    taken_at_ms: o.taken_at_ms,
                    wraps_at_bits: c.wraps_at_bits,
                };
                let cur = current.get(key.0).and_then(|m| m.get(key.1)).copied();
                let decision = match cur {
                    Some(f) if o.taken_at_ms < f.taken_at_ms => {
                        // Late: judged against its filed neighbours. Rows of
                        // this batch go in first so that they count.
                        self.insert_readings(tx, agent, now, &mut rows).await?;
                        let (before, after) =
                            self.neighbours(tx, key.0, key.1, o.taken_at_ms).await?;
                        filing::decide(before, after, incoming, policy)
                    }
                    _ => filing::decide(cur, None, incoming, policy),
                };
                let (value, state, anomaly) = match decision {
                    Decision::File { value, latest } => {
                        let f = Filed {
                            value,
                            taken_at_ms: o.taken_at_ms,
                        };
                        if latest {
                            current
                                .entry(key.0)
                                .or_default()
                                .insert(key.1.to_string(), f);
                            moved.insert(key.0);
                        }
                        out.counter_values += 1;
                        (value, "filed", None)
                    }
                    // Nothing new: the observation itself is kept (in
                    // `observations`), a second row of the same reading is
                    // not. An agent resending an observation under new
                    // numbers would otherwise pile up rows at one time that
                    // every late reading's lookup of its neighbours reads.
                    Decision::Duplicate => continue,
                    Decision::Anomaly(a) => {
                        // The same anomaly again is nothing new either: no
                        // second row, no further occurrence of its request.
                        if self
                            .anomaly_held(tx, &rows, key, o.taken_at_ms, c.value)
                            .await?
                        {
                            continue;
                        }
                        out.anomalies += 1;
                        anomalies.push((c.id.clone(), anomaly_text(&a)));
                        (
                            c.value,
                            "anomaly",
                            Some(serde_json::to_string(&a).unwrap_or_default()),
                        )
                    }
                };
                rows.push(NewReading {
                    serial: key.0,
                    counter: key.1,
                    value: value.min(i64::MAX as u64) as i64,
                    raw: (value != c.value).then_some(c.value as i64),
                    taken_at_ms: o.taken_at_ms,
                    seq: o.seq as i64,
                    state,
                    anomaly,
                });
            }
            if !anomalies.is_empty() {
                events
                    .entry(o.serial.as_str())
                    .or_default()
                    .push((o.taken_at_ms, TrackEvent::Anomalies(anomalies)));
            }
        }
        self.insert_readings(tx, agent, now, &mut rows).await?;
        let moved: Vec<(&str, &BTreeMap<String, Filed>)> = moved
            .into_iter()
            .filter_map(|s| current.get(s).map(|m| (s, m)))
            .collect();
        self.save_current(tx, &moved).await
    }

    /// The current filed values of `serials`: counter -> value and time.
    /// Callers hold the products' rows (PostgreSQL) or the write lock
    /// (SQLite), so that what they save back is not stale.
    pub(super) async fn load_current<'s>(
        &self,
        tx: &mut Tx,
        serials: &[&'s str],
    ) -> Result<HashMap<&'s str, BTreeMap<String, Filed>>, StoreError> {
        let wanted: HashSet<&'s str> = serials.iter().copied().collect();
        let mut out = HashMap::with_capacity(serials.len());
        for chunk in serials.chunks(500) {
            let mut qb = QueryBuilder::<Db>::new(
                "SELECT serial, counters FROM product_current WHERE serial",
            );
            push_key_set(&mut qb, chunk);
            let rows = qb
                .build()
                .fetch_all(&mut **tx)
                .await
                .map_err(|e| self.err(e))?;
            for r in rows {
                let (s, json): (&str, &str) = (r.get(0), r.get(1));
                let Some(s) = wanted.get(s) else { continue };
                out.insert(*s, parse_current(s, json)?);
            }
        }
        Ok(out)
    }

    /// Writes products' whole current-value maps back, one row each (the
    /// backend's bulk upsert).
    pub(super) async fn save_current(
        &self,
        tx: &mut Tx,
        products: &[(&str, &BTreeMap<String, Filed>)],
    ) -> Result<(), StoreError> {
        if products.is_empty() {
            return Ok(());
        }
        let rows = products
            .iter()
            .map(|(s, m)| {
                let latest = m.values().map(|f| f.taken_at_ms).max().unwrap_or(0);
                Ok(CurrentRow {
                    serial: s,
                    counters: render_current(s, m)?,
                    latest_ms: latest,
                })
            })
            .collect::<Result<Vec<CurrentRow>, StoreError>>()?;
        self.write_current(tx, &rows).await
    }

    /// Writes the batch's readings so far (the backend's bulk insert) and
    /// empties `rows`.
    pub(super) async fn insert_readings(
        &self,
        tx: &mut Tx,
        agent: &str,
        now: i64,
        rows: &mut Vec<NewReading<'_>>,
    ) -> Result<(), StoreError> {
        if !rows.is_empty() {
            self.write_readings(tx, agent, now, rows).await?;
        }
        rows.clear();
        Ok(())
    }

    /// Whether the anomaly of `key` at `at` with `value` is held already:
    /// among this batch's rows not yet written, or in `readings`.
    async fn anomaly_held(
        &self,
        tx: &mut Tx,
        pending: &[NewReading<'_>],
        key: (&str, &str),
        at: i64,
        value: u64,
    ) -> Result<bool, StoreError> {
        let value = value as i64;
        if pending.iter().any(|r| {
            (r.serial, r.counter, r.taken_at_ms, r.value, r.state)
                == (key.0, key.1, at, value, "anomaly")
        }) {
            return Ok(true);
        }
        let held: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM readings WHERE serial = $1 AND taken_at_ms = $2 AND counter_id = $3
             AND value = $4 AND state = 'anomaly' LIMIT 1",
        )
        .bind(key.0)
        .bind(at)
        .bind(key.1)
        .bind(value)
        .fetch_optional(&mut **tx)
        .await
        .map_err(|e| self.err(e))?;
        Ok(held.is_some())
    }

    /// The filed readings just before (at or before `at`) and just after `at`.
    pub(super) async fn neighbours(
        &self,
        tx: &mut Tx,
        serial: &str,
        counter: &str,
        at: i64,
    ) -> Result<(Option<Filed>, Option<Filed>), StoreError> {
        let one = |sql: &'static str| sqlx::query(sql).bind(serial).bind(counter).bind(at);
        let to_filed = |r: Option<DbRow>| {
            r.map(|r| Filed {
                value: r.get::<i64, _>(0) as u64,
                taken_at_ms: r.get(1),
            })
        };
        let before = one(READING_BEFORE)
            .fetch_optional(&mut **tx)
            .await
            .map_err(|e| self.err(e))?;
        let after = one(READING_AFTER)
            .fetch_optional(&mut **tx)
            .await
            .map_err(|e| self.err(e))?;
        Ok((to_filed(before), to_filed(after)))
    }

    pub(super) async fn current(&self, serial: &str) -> Result<BTreeMap<String, u64>, StoreError> {
        let json: Option<String> =
            sqlx::query_scalar("SELECT counters FROM product_current WHERE serial = $1")
                .bind(serial)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
        current_values(serial, json.as_deref())
    }

    /// A product's account, administrators and latest values in one
    /// statement (a row per administrator); None when there is no such
    /// product. The readings answer's other statement is the history.
    pub async fn product_latest(&self, serial: &str) -> Result<Option<ProductLatest>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.account_id, c.counters, a.user_id FROM products p
             LEFT JOIN product_current c ON c.serial = p.serial
             LEFT JOIN (SELECT user_id FROM product_administrators WHERE serial = $1
                        UNION SELECT ga.user_id FROM group_products gp
                        JOIN group_administrators ga ON ga.group_id = gp.group_id
                        WHERE gp.serial = $1) a ON TRUE
             WHERE p.serial = $1",
        )
        .bind(serial)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let counters = current_values(serial, first.get::<Option<&str>, _>(1))?;
        let mut administrators: Vec<String> = rows
            .iter()
            .filter_map(|r| r.get::<Option<String>, _>(2))
            .collect();
        administrators.sort();
        administrators.dedup();
        Ok(Some(ProductLatest {
            account: first.get(0),
            administrators,
            counters,
        }))
    }

    /// Every reading of a product (filed and anomalies; stores older than
    /// this collector may hold repeats too), by counter and time.
    pub async fn readings(&self, serial: &str) -> Result<Vec<Reading>, StoreError> {
        let sql = format!(
            "SELECT {READING_COLS} FROM readings WHERE serial = $1 ORDER BY counter_id, taken_at_ms, seq"
        );
        let rows = sqlx::query(&sql)
            .bind(serial)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(reading_from).collect())
    }

    /// A product's reading history, newest first.
    pub async fn history(
        &self,
        serial: &str,
        q: &HistoryQuery,
    ) -> Result<Vec<Reading>, StoreError> {
        let mut qb = QueryBuilder::<Db>::new(format!(
            "SELECT {READING_COLS} FROM readings WHERE serial = "
        ));
        qb.push_bind(serial);
        if let Some(c) = &q.counter {
            qb.push(" AND counter_id = ").push_bind(c.as_str());
        }
        if let Some(f) = q.from_ms {
            qb.push(" AND taken_at_ms >= ").push_bind(f);
        }
        if let Some(t) = q.to_ms {
            qb.push(" AND taken_at_ms < ").push_bind(t);
        }
        if q.anomalies {
            qb.push(" AND state <> 'repeat'");
        } else {
            qb.push(" AND state = 'filed'");
        }
        // The key's order read backwards (SQLite; on PostgreSQL the index's,
        // each observation's counters sorted on the way): LIMIT stops early.
        qb.push(" ORDER BY taken_at_ms DESC, counter_id DESC LIMIT ")
            .push_bind(q.limit.unwrap_or(1000).clamp(1, 10_000) as i64);
        let rows = qb
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(reading_from).collect())
    }

    /// Files a reading typed in by a user, checked like an automatic one;
    /// only for products without eMaintenance.
    pub async fn manual_reading(
        &self,
        serial: &str,
        m: &ManualReading,
        now: i64,
    ) -> Result<Reading, StoreError> {
        let taken = m.taken_at_ms.unwrap_or(now);
        if taken > now + 60_000 {
            return Err(StoreError::refused(
                Refusal::ReadingInFuture,
                "the reading's time is in the future; give the time it was read",
            ));
        }
        if m.value > i64::MAX as u64 || m.counter.is_empty() {
            return Err(StoreError::refused(
                Refusal::InvalidReading,
                "give a counter id and a value below 2^63",
            ));
        }
        let mut tx = self.begin_write().await?;
        let em: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT emaintenance FROM products p WHERE p.serial = $1{LOCK_PRODUCTS}"
        ))
        .bind(serial)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        let Some(em) = em else {
            return Err(StoreError::NotFound(format!("product {serial:?}")));
        };
        let bits: Option<i64> =
            sqlx::query_scalar("SELECT wraps_at_bits FROM counters WHERE counter_id = $1")
                .bind(&m.counter)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        let (before, after) = self.neighbours(&mut tx, serial, &m.counter, taken).await?;
        let incoming = Incoming {
            raw: m.value,
            taken_at_ms: taken,
            wraps_at_bits: bits.unwrap_or(0) as u32,
        };
        let decision =
            filing::decide_manual(em != 0, before, after, incoming, &self.settings.filing)
                .map_err(|e| {
                    let code = match e {
                        filing::ManualRefused::Automatic => Refusal::EmaintenanceProduct,
                        filing::ManualRefused::Duplicate => Refusal::DuplicateReading,
                        _ => Refusal::ImplausibleReading,
                    };
                    StoreError::refused(code, e.to_string())
                })?;
        let Decision::File { value, latest } = decision else {
            return Err(StoreError::refused(
                Refusal::ImplausibleReading,
                "reading refused",
            ));
        };
        let who = format!("manual:{}", m.user.as_deref().unwrap_or("unknown"));
        let reading = NewReading {
            serial,
            counter: &m.counter,
            value: value as i64,
            raw: (value != m.value).then_some(m.value as i64),
            taken_at_ms: taken,
            seq: 0,
            state: "filed",
            anomaly: None,
        };
        self.write_readings(&mut tx, &who, now, &[reading]).await?;
        if latest {
            // The reading's insert above holds SQLite's write lock; the
            // product row is locked on PostgreSQL.
            let mut current = self.load_current(&mut tx, &[serial]).await?;
            let map = current.entry(serial).or_default();
            map.insert(
                m.counter.clone(),
                Filed {
                    value,
                    taken_at_ms: taken,
                },
            );
            self.save_current(&mut tx, &[(serial, &*map)]).await?;
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(Reading {
            counter: m.counter.clone(),
            value,
            raw_value: (value != m.value).then_some(m.value),
            taken_at_ms: taken,
            filed_at_ms: now,
            source: "manual".into(),
            agent: m.user.clone().unwrap_or_else(|| "unknown".into()),
            seq: 0,
            state: "filed".into(),
            anomaly: None,
        })
    }
}
