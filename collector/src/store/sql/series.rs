//! A counter's filed history as pages and charts need it, without reading
//! all of it: the last value before given times and the first at or after
//! them (one index seek each, in one statement), and the history reduced
//! to buckets of time for a chart.

use crate::model::SeriesPoint;
use crate::store::StoreError;
use sqlx::{QueryBuilder, Row};

use super::{Backend, Db};

/// Which side of each time a seek looks.
#[derive(Clone, Copy)]
enum Side {
    LastBefore,
    FirstAtOrAfter,
}

impl Backend {
    /// For each of `times`: the last filed reading of `counter` before it.
    pub async fn readings_before(
        &self,
        serial: &str,
        counter: &str,
        times: &[i64],
    ) -> Result<Vec<Option<(i64, u64)>>, StoreError> {
        self.seeks(serial, counter, times, Side::LastBefore).await
    }

    /// For each of `times`: the first filed reading of `counter` at or after it.
    pub async fn readings_from(
        &self,
        serial: &str,
        counter: &str,
        times: &[i64],
    ) -> Result<Vec<Option<(i64, u64)>>, StoreError> {
        self.seeks(serial, counter, times, Side::FirstAtOrAfter)
            .await
    }

    async fn seeks(
        &self,
        serial: &str,
        counter: &str,
        times: &[i64],
        side: Side,
    ) -> Result<Vec<Option<(i64, u64)>>, StoreError> {
        if times.is_empty() {
            return Ok(Vec::new());
        }
        let (cmp, order) = match side {
            Side::LastBefore => ("<", "DESC"),
            Side::FirstAtOrAfter => (">=", "ASC"),
        };
        // One statement: each time its own subquery that the primary key
        // (serial, taken_at_ms, ...) answers with a short range scan.
        let mut qb = QueryBuilder::<Db>::new("");
        for (k, t) in times.iter().enumerate() {
            if k > 0 {
                qb.push(" UNION ALL ");
            }
            qb.push(format!(
                "SELECT CAST({k} AS BIGINT) AS k, t, v FROM (SELECT taken_at_ms AS t, value AS v FROM readings \
                 WHERE serial = "
            ));
            qb.push_bind(serial);
            qb.push(" AND counter_id = ").push_bind(counter);
            qb.push(" AND state = 'filed' AND taken_at_ms ")
                .push(cmp)
                .push(" ")
                .push_bind(*t);
            qb.push(format!(" ORDER BY taken_at_ms {order} LIMIT 1) AS s{k}"));
        }
        let rows = qb
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        let mut out = vec![None; times.len()];
        for r in rows {
            let k = r.get::<i64, _>(0) as usize;
            if let Some(slot) = out.get_mut(k) {
                *slot = Some((r.get::<i64, _>(1), r.get::<i64, _>(2) as u64));
            }
        }
        Ok(out)
    }

    /// The filed history of `counter` from `from_ms` to `to_ms` (inclusive)
    /// in at most `buckets` buckets of time: each the bucket's last time
    /// and highest value (counters only rise), and whether a reading in it
    /// was entered by hand.
    pub async fn counter_series(
        &self,
        serial: &str,
        counter: &str,
        from_ms: i64,
        to_ms: i64,
        buckets: u32,
    ) -> Result<Vec<SeriesPoint>, StoreError> {
        let step = ((to_ms - from_ms) / buckets.max(1) as i64).max(1) + 1;
        let rows = sqlx::query(
            "SELECT (taken_at_ms - $3) / $5 AS b, MAX(taken_at_ms), MAX(value),
                    CAST(MAX(CASE WHEN agent_id LIKE 'manual:%' THEN 1 ELSE 0 END) AS BIGINT)
             FROM readings WHERE serial = $1 AND counter_id = $2 AND state = 'filed'
               AND taken_at_ms >= $3 AND taken_at_ms <= $4
             GROUP BY b ORDER BY b",
        )
        .bind(serial)
        .bind(counter)
        .bind(from_ms)
        .bind(to_ms)
        .bind(step)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| SeriesPoint {
                at_ms: r.get(1),
                value: r.get::<i64, _>(2) as u64,
                manual: r.get::<i64, _>(3) == 1,
            })
            .collect())
    }
}
