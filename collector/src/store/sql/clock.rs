//! The clock's rules: hold-down closes, device silent, meter reading due.

use crate::model::RequestTally;
use crate::requests::Change;
use crate::store::encoding::current_period;
use crate::store::StoreError;
use sqlx::{QueryBuilder, Row};
use std::collections::{HashMap, HashSet};

use super::{Backend, Db, ANALYZE_REQUESTS};

/// A meter-due change: (serial, period, cutoff, has billing read).
type MeterChange = (String, String, i64, bool);

/// Products the clock's rules change in one transaction.
const TICK_CHUNK: usize = 500;
/// Request changes in one tick after which the store's statistics are
/// renewed (PostgreSQL): the next tick's plan depends on them.
const ANALYZE_AFTER: u64 = 1_000;

impl Backend {
    /// The clock's rules at `now`: hold-down closes that no observation has
    /// triggered, device-silent requests for eMaintenance products and their
    /// close once the device reports, meter-due requests after the billing
    /// cutoff and their close once the billing read is filed. Absences open
    /// requests only once the collector, listening since `listening_since`,
    /// has waited the rules' catch-up time (`Rules::judges_absence`).
    /// Returns how many request changes it wrote.
    pub async fn tick(&self, now: i64, listening_since: i64) -> Result<RequestTally, StoreError> {
        // First: which products are eMaintenance products today.
        self.emaintenance_on(now).await?;
        let rules = &self.settings.rules;
        let absence = rules.judges_absence(now, listening_since);
        // Not judging absences yet: no product is a silent candidate (the
        // whole fleet would be after an outage, each track read and written
        // back for nothing).
        let silent_before = match absence {
            true => now.saturating_sub((rules.silent_after_secs as i64).saturating_mul(1000)),
            false => i64::MIN,
        };
        // Candidates are found outside the transaction (SQLite has one
        // writer; ingest should not wait for these reads).
        // Products whose track has something due, that went silent, or that
        // report again while a device-silent request is open.
        let serials: Vec<String> = sqlx::query_scalar(
            "SELECT serial FROM request_tracks WHERE due_ms <= $1
             UNION SELECT p.serial FROM products p WHERE p.emaintenance = 1 AND p.account_id IS NOT NULL
               AND p.last_seen_ms <= $2 AND NOT EXISTS (SELECT 1 FROM service_requests s
                 WHERE s.serial = p.serial AND s.fingerprint = 'device_silent:' AND s.state = 'open')
             UNION SELECT s.serial FROM service_requests s JOIN products p ON p.serial = s.serial
               WHERE s.fingerprint = 'device_silent:' AND s.state = 'open' AND p.last_seen_ms > s.first_seen_ms",
        )
        .bind(now)
        .bind(silent_before)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        let meter_changes = self.meter_due_candidates(now, absence).await?;
        let mut refs: Vec<&str> = serials
            .iter()
            .map(String::as_str)
            .chain(meter_changes.iter().map(|m| m.0.as_str()))
            .collect();
        refs.sort_unstable();
        refs.dedup();
        // A set and a map: with many silent or billing products a list walk
        // per track, or per chunk, is quadratic.
        let clocked: HashSet<&str> = serials.iter().map(String::as_str).collect();
        let mut meter_by_serial: HashMap<&str, Vec<&MeterChange>> = HashMap::new();
        for m in &meter_changes {
            meter_by_serial.entry(m.0.as_str()).or_default().push(m);
        }
        let mut tally = RequestTally::default();
        // A transaction per chunk of products: a fleet gone silent at once
        // (a site's network down, a clock jump) opens a request per
        // product, and one transaction for all of them would hold SQLite's
        // write lock, or PostgreSQL's product rows, from ingest meanwhile.
        for chunk in refs.chunks(TICK_CHUNK) {
            tally.merge(
                self.tick_products(chunk, &clocked, &meter_by_serial, absence, now)
                    .await?,
            );
        }
        if let Some(sql) = ANALYZE_REQUESTS.filter(|_| tally.total() >= ANALYZE_AFTER) {
            sqlx::query(sql)
                .execute(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
        }
        Ok(tally)
    }

    /// The clock's rules for `serials`, in one transaction: those in
    /// `clocked` (something due, silent, or reporting again) and those with
    /// a meter-due change.
    async fn tick_products(
        &self,
        serials: &[&str],
        clocked: &HashSet<&str>,
        meter_changes: &HashMap<&str, Vec<&MeterChange>>,
        absence: bool,
        now: i64,
    ) -> Result<RequestTally, StoreError> {
        let rules = &self.settings.rules;
        let mut tx = self.begin_write().await?;
        let mut tracks = self.load_tracks(&mut tx, serials).await?;
        let mut changes: Vec<(String, Change)> = Vec::new();
        for (serial, t) in tracks
            .iter_mut()
            .filter(|(s, _)| clocked.contains(s.as_str()))
        {
            let last = t.track.last_report_ms;
            let mut c = Vec::new();
            // A report since the device-silent request opened closes it.
            if t.track
                .open
                .get("device_silent:")
                .is_some_and(|o| last.is_some_and(|l| l > o.first_seen_ms))
            {
                c.extend(t.track.heard_from(last.unwrap_or(now)));
            }
            c.extend(
                t.track
                    .tick(rules, absence && t.emaintenance && t.account.is_some(), now),
            );
            t.changed = true;
            changes.extend(c.into_iter().map(|c| (serial.clone(), c)));
        }
        let meter = serials
            .iter()
            .filter_map(|s| meter_changes.get(s))
            .flatten();
        for (serial, period, cutoff, has_read) in meter {
            if let Some(t) = tracks.get_mut(serial) {
                let c = t.track.meter_due(rules, period, *cutoff, *has_read, now);
                t.changed = true;
                changes.extend(c.into_iter().map(|c| (serial.clone(), c)));
            }
        }
        let n = self.apply_changes(&mut tx, &tracks, &changes, now).await?;
        self.save_tracks(&mut tx, &tracks).await?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(n)
    }

    /// Products whose meter-due request should open (billing read still
    /// missing after cutoff and grace) or close (billing read filed):
    /// (serial, period, cutoff, has billing read). Without `absence` judged,
    /// only closes.
    pub(super) async fn meter_due_candidates(
        &self,
        now: i64,
        absence: bool,
    ) -> Result<Vec<MeterChange>, StoreError> {
        // Meter due: products with a billing day, per account time zone.
        let rows = sqlx::query(
            "SELECT p.serial, p.billing_day, a.time_zone FROM products p JOIN accounts a ON a.account_id = p.account_id
             WHERE p.billing_day IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        let mut due: Vec<(String, String, i64)> = Vec::new();
        for r in rows {
            let serial: String = r.get(0);
            let day = r.get::<i64, _>(1).clamp(1, 31) as u32;
            let tz: chrono_tz::Tz = r.get::<String, _>(2).parse().unwrap_or(chrono_tz::UTC);
            if let Some((period, cutoff)) = current_period(now, day, tz) {
                due.push((serial, period, cutoff));
            }
        }
        let rules = &self.settings.rules;
        let mut meter_changes = Vec::new();
        for chunk in due.chunks(200) {
            // Which of them have a billing read (product_current holds the newest
            // filed reading of each counter), and which have a request open.
            let mut qb = QueryBuilder::<Db>::new("SELECT v.serial, v.period, ");
            qb.push("CASE WHEN EXISTS (SELECT 1 FROM product_current c WHERE c.serial = v.serial AND c.latest_ms >= v.cutoff) THEN 1 ELSE 0 END, ");
            qb.push("CASE WHEN EXISTS (SELECT 1 FROM service_requests s WHERE s.serial = v.serial AND s.state = 'open' AND s.fingerprint = ");
            qb.push("'meter_due:' || v.period");
            qb.push(") THEN 1 ELSE 0 END FROM (");
            let mut first = true;
            for (serial, period, cutoff) in chunk {
                qb.push(if first {
                    "SELECT "
                } else {
                    " UNION ALL SELECT "
                });
                first = false;
                qb.push_bind(serial.as_str());
                qb.push(" AS serial, ");
                qb.push_bind(period.as_str());
                qb.push(" AS period, ");
                qb.push_bind(*cutoff);
                qb.push(" AS cutoff");
            }
            qb.push(") v");
            let rows = qb
                .build()
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
            for r in rows {
                let (serial, period): (String, String) = (r.get(0), r.get(1));
                let has_read = r.get::<i32, _>(2) != 0;
                let open = r.get::<i32, _>(3) != 0;
                let cutoff = chunk
                    .iter()
                    .find(|(s, _, _)| *s == serial)
                    .map(|(_, _, c)| *c)
                    .unwrap_or(now);
                let grace = (rules.meter_due_grace_secs as i64).saturating_mul(1000);
                if (open && has_read) || (absence && !open && !has_read && now >= cutoff + grace) {
                    meter_changes.push((serial, period, cutoff, has_read));
                }
            }
        }
        Ok(meter_changes)
    }
}
