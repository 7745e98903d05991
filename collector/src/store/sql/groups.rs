//! Groups of an account's products.

use crate::model::Group;
use crate::store::{Refusal, StoreError};
use sqlx::Row;

use super::Backend;

impl Backend {
    pub async fn groups(&self, account: Option<&str>) -> Result<Vec<Group>, StoreError> {
        let rows = sqlx::query(
            "SELECT g.group_id, g.account_id, g.name, gp.serial FROM product_groups g
             LEFT JOIN group_products gp ON gp.group_id = g.group_id
             WHERE $1 IS NULL OR g.account_id = $1 ORDER BY g.account_id, g.name, gp.serial",
        )
        .bind(account)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        let mut out: Vec<Group> = Vec::new();
        for r in rows {
            let id: i64 = r.get(0);
            if out.last().is_none_or(|g| g.id != id) {
                out.push(Group {
                    id,
                    account: r.get(1),
                    name: r.get(2),
                    products: Vec::new(),
                });
            }
            if let (Some(g), Some(s)) = (out.last_mut(), r.get::<Option<String>, _>(3)) {
                g.products.push(s);
            }
        }
        Ok(out)
    }

    pub(super) async fn group(&self, id: i64) -> Result<Group, StoreError> {
        self.groups(None)
            .await?
            .into_iter()
            .find(|g| g.id == id)
            .ok_or_else(|| StoreError::NotFound(format!("group {id}")))
    }

    pub async fn create_group(&self, account: &str, name: &str) -> Result<Group, StoreError> {
        if name.trim().is_empty() {
            return Err(StoreError::refused(
                Refusal::InvalidGroupName,
                "give the group a name",
            ));
        }
        if self.account(account).await?.is_none() {
            return Err(StoreError::refused(
                Refusal::AccountNotFound,
                format!("no account {account:?}"),
            ));
        }
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO product_groups (account_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING group_id",
        )
        .bind(account)
        .bind(name.trim())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        match id {
            Some(id) => self.group(id).await,
            None => Err(StoreError::refused(
                Refusal::GroupExists,
                format!("account {account:?} already has a group named {name:?}"),
            )),
        }
    }

    pub async fn rename_group(&self, id: i64, name: &str) -> Result<Group, StoreError> {
        if name.trim().is_empty() {
            return Err(StoreError::refused(
                Refusal::InvalidGroupName,
                "give the group a name",
            ));
        }
        let r = sqlx::query("UPDATE product_groups SET name = $1 WHERE group_id = $2")
            .bind(name.trim())
            .bind(id)
            .execute(&self.pool)
            .await;
        match r {
            Ok(r) if r.rows_affected() == 0 => Err(StoreError::NotFound(format!("group {id}"))),
            Ok(_) => self.group(id).await,
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => Err(StoreError::refused(
                Refusal::GroupExists,
                format!("the account already has a group named {name:?}"),
            )),
            Err(e) => Err(self.err(e)),
        }
    }

    pub async fn delete_group(&self, id: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        sqlx::query("DELETE FROM group_products WHERE group_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        let n = sqlx::query("DELETE FROM product_groups WHERE group_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("group {id}")));
        }
        tx.commit().await.map_err(|e| self.err(e))
    }

    /// Adds a product to a group (or removes it); the product must belong
    /// to the group's account.
    pub async fn group_member(
        &self,
        id: i64,
        serial: &str,
        add: bool,
    ) -> Result<Group, StoreError> {
        let g = self.group(id).await?;
        if add {
            let owner: Option<Option<String>> =
                sqlx::query_scalar("SELECT account_id FROM products WHERE serial = $1")
                    .bind(serial)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| self.err(e))?;
            match owner {
                None => return Err(StoreError::NotFound(format!("product {serial:?}"))),
                Some(a) if a.as_deref() != Some(g.account.as_str()) => {
                    return Err(StoreError::refused(
                        Refusal::ProductOfAnotherAccount,
                        format!(
                            "product {serial:?} does not belong to account {:?}",
                            g.account
                        ),
                    ))
                }
                Some(_) => {}
            }
            sqlx::query("INSERT INTO group_products (group_id, serial) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(id)
                .bind(serial)
                .execute(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
        } else {
            sqlx::query("DELETE FROM group_products WHERE group_id = $1 AND serial = $2")
                .bind(id)
                .bind(serial)
                .execute(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
        }
        self.group(id).await
    }
}
