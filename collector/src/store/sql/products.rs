//! Products: lists, keyset pages with search, one product, updates.

use crate::model::{Page, Product, ProductEvent, ProductQuery, ProductUpdate};
use crate::store::{Refusal, StoreError};
use sqlx::{QueryBuilder, Row};
use std::collections::HashMap;

use super::rows::{
    administered_by, in_list, like_escaped, product_from, within_accounts, PRODUCT_COLS,
};
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
        self.fill_administrators(&mut out).await?;
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
        within_accounts(&mut qb, "p.account_id", q.accounts.as_deref());
        if let Some(u) = &q.administrator {
            qb.push(" AND p.serial IN ");
            administered_by(&mut qb, u);
        }
        if let Some(after) = &q.after {
            qb.push(" AND p.serial > ").push_bind(after.as_str());
        }
        if let Some(text) = q.q.as_deref().filter(|t| !t.is_empty()) {
            let text = text.replace('\t', " ");
            let pattern = format!("%{}%", like_escaped(&text.to_lowercase()));
            // One LIKE over the searched fields joined by tabs (taken out
            // of the text searched for, so no match spans two fields).
            qb.push(
                " AND LOWER(p.serial || '\t' || COALESCE(p.model, '') || '\t' || \
                 COALESCE(p.alt_name, '') || '\t' || COALESCE(p.location, '') || '\t' || \
                 COALESCE(p.site_address, '')) LIKE ",
            )
            .push_bind(pattern)
            .push(" ESCAPE '\\'");
        }
        match q.status.as_deref() {
            Some("open_requests") => {
                qb.push(
                    " AND EXISTS (SELECT 1 FROM service_requests s \
                     WHERE s.serial = p.serial AND s.state = 'open')",
                );
            }
            Some("emaintenance") => {
                qb.push(" AND p.emaintenance = 1");
            }
            Some("manual") => {
                qb.push(" AND p.emaintenance = 0");
            }
            _ => {}
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
        self.fill_administrators(&mut items).await?;
        Ok(Page { items, next })
    }

    /// Each product's administrators, direct and through its groups.
    pub(super) async fn fill_administrators(
        &self,
        items: &mut [Product],
    ) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT serial, user_id FROM product_administrators WHERE serial IN ",
        );
        in_list(&mut qb, items.iter().map(|p| p.serial.as_str()));
        qb.push(
            " UNION SELECT gp.serial, ga.user_id FROM group_products gp JOIN group_administrators ga \
             ON ga.group_id = gp.group_id WHERE gp.serial IN ",
        );
        in_list(&mut qb, items.iter().map(|p| p.serial.as_str()));
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
            let mut a = by.remove(&p.serial).unwrap_or_default();
            a.sort();
            a.dedup();
            p.administrators = a;
        }
        Ok(())
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
        self.fill_administrators(&mut p).await?;
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
        let mut tx = self.begin_write().await?;
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
        let account = text(&u.account).unwrap_or_else(|| was_account.clone());
        if let Some(admins) = &u.administrators {
            // Each one sees the product's company (after this update):
            // otherwise they could not see the product they administer.
            for admin in admins {
                let fits = match (self.user(admin).await?, &account) {
                    (Some(user), Some(a)) => {
                        user.role != crate::model::Role::Operator && user.sees.contains(a)
                    }
                    _ => false,
                };
                if !fits {
                    return Err(StoreError::refused(
                        Refusal::InvalidAdministrator,
                        format!(
                            "administrator {admin:?}: name a user who sees the product's company{}",
                            account
                                .as_ref()
                                .map(|a| format!(" {a:?}"))
                                .unwrap_or_default()
                        ),
                    ));
                }
            }
        }
        let moved = text(&u.account).is_some_and(|a| a != was_account);
        if u.administrators.is_some() || moved {
            // A product that changes company leaves its administrators behind.
            sqlx::query("DELETE FROM product_administrators WHERE serial = $1")
                .bind(serial)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        for admin in u.administrators.iter().flatten() {
            sqlx::query(
                "INSERT INTO product_administrators (serial, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(serial)
            .bind(admin)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        }
        let mut qb = QueryBuilder::<Db>::new("UPDATE products SET serial = serial");
        for (col, v) in [
            ("account_id", text(&u.account)),
            ("alt_name", text(&u.alt_name)),
            ("site_address", text(&u.site_address)),
            ("location", text(&u.location)),
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
        if let Some(t) = &u.terms {
            t.check()
                .map_err(|m| StoreError::refused(Refusal::InvalidTerms, format!("terms: {m}")))?;
            qb.push(", terms = ")
                .push_bind(serde_json::to_string(t).unwrap_or_default());
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
