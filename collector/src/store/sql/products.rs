//! Products: lists, keyset pages with search, one product, updates.

use crate::model::{Page, Product, ProductEvent, ProductQuery, ProductUpdate};
use crate::store::{Refusal, StoreError};
use sqlx::{QueryBuilder, Row};
use std::collections::HashMap;

use super::rows::{in_list, product_from, PRODUCT_COLS};
use super::{Backend, Db};

impl Backend {
    pub async fn products(&self) -> Result<Vec<Product>, StoreError> {
        let sql = format!("SELECT {PRODUCT_COLS} FROM products p ORDER BY p.serial");
        let rows = sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let mut p = product_from(&r);
            p.counters = self.current(&p.serial).await?;
            out.push(p);
        }
        Ok(out)
    }

    /// One page of products, ordered by serial (keyset paging: as fast on
    /// the last page as on the first).
    pub async fn product_page(&self, q: &ProductQuery) -> Result<Page<Product>, StoreError> {
        let limit = q.limit.unwrap_or(50).clamp(1, 1000) as i64;
        let mut qb =
            QueryBuilder::<Db>::new(format!("SELECT {PRODUCT_COLS} FROM products p WHERE 1 = 1"));
        if let Some(a) = &q.account {
            qb.push(" AND p.account_id = ").push_bind(a.as_str());
        }
        if let Some(u) = &q.administrator {
            qb.push(" AND p.administrator = ").push_bind(u.as_str());
        }
        if let Some(after) = &q.after {
            qb.push(" AND p.serial > ").push_bind(after.as_str());
        }
        if let Some(text) = q.q.as_deref().filter(|t| !t.is_empty()) {
            let pattern = format!(
                "%{}%",
                text.to_lowercase()
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            qb.push(" AND (LOWER(p.serial) LIKE ")
                .push_bind(pattern.clone())
                .push(" ESCAPE '\\' OR LOWER(p.model) LIKE ")
                .push_bind(pattern.clone())
                .push(" ESCAPE '\\' OR LOWER(p.alt_name) LIKE ")
                .push_bind(pattern)
                .push(" ESCAPE '\\')");
        }
        if let Some(g) = &q.group {
            qb.push(
                " AND p.serial IN (SELECT gp.serial FROM group_products gp JOIN product_groups g \
                 ON g.group_id = gp.group_id WHERE g.name = ",
            )
            .push_bind(g.as_str());
            if let Some(a) = &q.account {
                qb.push(" AND g.account_id = ").push_bind(a.as_str());
            }
            qb.push(")");
        }
        qb.push(" ORDER BY p.serial LIMIT ").push_bind(limit + 1);
        let rows = qb
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        let mut items: Vec<Product> = rows.iter().map(product_from).collect();
        let next = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items.last().map(|p| p.serial.clone())
        } else {
            None
        };
        self.fill_groups(&mut items).await?;
        Ok(Page { items, next })
    }

    pub(super) async fn fill_groups(&self, items: &mut [Product]) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT gp.serial, g.name FROM group_products gp JOIN product_groups g ON g.group_id = gp.group_id WHERE gp.serial IN ",
        );
        in_list(&mut qb, items.iter().map(|p| p.serial.as_str()));
        qb.push(" ORDER BY g.name");
        let rows = qb
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        let mut by: HashMap<String, Vec<String>> = HashMap::new();
        for r in rows {
            by.entry(r.get(0)).or_default().push(r.get(1));
        }
        for p in items {
            p.groups = by.remove(&p.serial).unwrap_or_default();
        }
        Ok(())
    }

    pub async fn product(&self, serial: &str) -> Result<Option<Product>, StoreError> {
        let sql = format!("SELECT {PRODUCT_COLS} FROM products p WHERE p.serial = $1");
        let Some(row) = sqlx::query(&sql)
            .bind(serial)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.err(e))?
        else {
            return Ok(None);
        };
        let mut p = [product_from(&row)];
        self.fill_groups(&mut p).await?;
        let [mut p] = p;
        p.counters = self.current(serial).await?;
        Ok(Some(p))
    }

    pub async fn unassigned(&self) -> Result<Vec<Product>, StoreError> {
        let sql = format!(
            "SELECT {PRODUCT_COLS} FROM products p WHERE p.account_id IS NULL ORDER BY p.serial LIMIT 10000"
        );
        let rows = sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(product_from).collect())
    }

    /// Updates a product's portal fields. Assigning it to an account also
    /// gives the account the product's requests that have none.
    pub async fn update_product(
        &self,
        serial: &str,
        u: &ProductUpdate,
    ) -> Result<Product, StoreError> {
        if let Some(d) = u.billing_day {
            if !(1..=31).contains(&d) {
                return Err(StoreError::refused(
                    Refusal::InvalidBillingDay,
                    format!("billing_day {d}: give a day of the month, 1 to 31"),
                ));
            }
        }
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        let found: Option<Option<String>> =
            sqlx::query_scalar("SELECT account_id FROM products WHERE serial = $1")
                .bind(serial)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        let Some(was_account) = found else {
            return Err(StoreError::NotFound(format!("product {serial:?}")));
        };
        if let Some(a) = &u.account {
            let found: Option<String> =
                sqlx::query_scalar("SELECT account_id FROM accounts WHERE account_id = $1")
                    .bind(a)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| self.err(e))?;
            if found.is_none() {
                return Err(StoreError::refused(
                    Refusal::AccountNotFound,
                    format!("no account {a:?}: create it first"),
                ));
            }
            sqlx::query("UPDATE service_requests SET account_id = $1 WHERE serial = $2 AND account_id IS NULL")
                .bind(a)
                .bind(serial)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        let text = |v: &Option<String>| v.as_ref().map(|s| (!s.is_empty()).then(|| s.clone()));
        let mut administrator = text(&u.administrator);
        if let Some(Some(admin)) = &administrator {
            // The administrator is a user of the account the product is in
            // (after this update): otherwise they could not see it.
            let account = text(&u.account).unwrap_or_else(|| was_account.clone());
            let theirs: Option<Option<String>> =
                sqlx::query_scalar("SELECT account_id FROM users WHERE user_id = $1")
                    .bind(admin)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| self.err(e))?;
            if account.is_none() || theirs != Some(account.clone()) {
                return Err(StoreError::refused(
                    Refusal::InvalidAdministrator,
                    format!(
                        "administrator {admin:?}: name a user of the product's account{}",
                        account.map(|a| format!(" {a:?}")).unwrap_or_default()
                    ),
                ));
            }
        } else if administrator.is_none() && text(&u.account).is_some_and(|a| a != was_account) {
            // A product that changes account leaves its administrator behind.
            administrator = Some(None);
        }
        let mut qb = QueryBuilder::<Db>::new("UPDATE products SET serial = serial");
        for (col, v) in [
            ("account_id", text(&u.account)),
            ("alt_name", text(&u.alt_name)),
            ("site_address", text(&u.site_address)),
            ("location", text(&u.location)),
            ("administrator", administrator),
        ] {
            if let Some(v) = v {
                qb.push(format!(", {col} = ")).push_bind(v);
            }
        }
        if let Some(e) = u.emaintenance {
            qb.push(", emaintenance = ").push_bind(e as i64);
        }
        if let Some(d) = u.billing_day {
            qb.push(", billing_day = ").push_bind(d as i64);
        }
        if let Some(e) = &u.entitlements {
            qb.push(", entitlements = ")
                .push_bind(serde_json::to_string(e).unwrap_or_default());
        }
        qb.push(" WHERE serial = ").push_bind(serial);
        qb.build()
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        self.product(serial)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("product {serial:?}")))
    }

    /// A product's events, oldest first.
    pub async fn product_events(&self, serial: &str) -> Result<Vec<ProductEvent>, StoreError> {
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT at_ms, event, text FROM product_events WHERE serial = $1 ORDER BY at_ms, event_id",
        )
        .bind(serial)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|(at_ms, event, text)| ProductEvent { at_ms, event, text })
            .collect())
    }
}
