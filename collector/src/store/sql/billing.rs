//! The billing export's rows for one account and period.

use crate::filing::{self, Filed};
use crate::store::{Refusal, StoreError};
use sqlx::Row;
use std::collections::BTreeMap;

use super::Backend;

impl Backend {
    /// The billing rows of an account's products for a period.
    pub async fn billing(
        &self,
        account: &str,
        year: i32,
        month: u32,
    ) -> Result<Vec<crate::filing::billing::BillingRow>, StoreError> {
        use crate::filing::billing::{billing_rows, BillingProduct};
        let a = self
            .account(account)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("account {account:?}")))?;
        if !(1..=12).contains(&month) {
            return Err(StoreError::refused(
                Refusal::InvalidPeriod,
                "give the period as YYYY-MM",
            ));
        }
        let tz: chrono_tz::Tz = a.time_zone.parse().unwrap_or(chrono_tz::UTC);
        // Readings of the previous, this and the next month (cutoffs and the
        // read after them fall in there), with two days for time zones.
        let day_ms = 86_400_000;
        let from =
            filing::billing_cutoff_ms(year, month, 1, chrono_tz::UTC).unwrap_or(0) - 33 * day_ms;
        let to =
            filing::billing_cutoff_ms(year, month, 1, chrono_tz::UTC).unwrap_or(0) + 64 * day_ms;
        let products = sqlx::query(
            "SELECT serial, COALESCE(model, ''), billing_day FROM products WHERE account_id = $1 AND billing_day IS NOT NULL ORDER BY serial",
        )
        .bind(account)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for p in products {
            let serial: String = p.get(0);
            let rows = sqlx::query(
                "SELECT counter_id, value, taken_at_ms FROM readings WHERE serial = $1 AND state = 'filed'
                 AND taken_at_ms >= $2 AND taken_at_ms < $3",
            )
            .bind(&serial)
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
            let mut history: BTreeMap<String, Vec<Filed>> = BTreeMap::new();
            for r in rows {
                history.entry(r.get(0)).or_default().push(Filed {
                    value: r.get::<i64, _>(1) as u64,
                    taken_at_ms: r.get(2),
                });
            }
            let bp = BillingProduct {
                account_billing_code: a.billing_code.clone(),
                serial,
                model: p.get(1),
                billing_day: p.get::<i64, _>(2).clamp(1, 31) as u32,
                tz,
            };
            out.extend(billing_rows(&bp, &history, year, month));
        }
        Ok(out)
    }
}
