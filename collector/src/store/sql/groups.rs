//! Groups of a company's products and the product administrators of a group.

use crate::model::{Group, Role};
use crate::store::{Refusal, StoreError};
use sqlx::{QueryBuilder, Row};
use std::collections::BTreeMap;

use super::rows::within_accounts;
use super::{Backend, Db};

impl Backend {
    /// The groups of these companies (all when None), with their products
    /// and administrators.
    pub async fn groups(&self, accounts: Option<&[String]>) -> Result<Vec<Group>, StoreError> {
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT g.group_id, g.account_id, g.name, g.created_by, gp.serial, NULL FROM product_groups g
             LEFT JOIN group_products gp ON gp.group_id = g.group_id WHERE 1 = 1",
        );
        within_accounts(&mut qb, "g.account_id", accounts);
        qb.push(
            " UNION ALL SELECT g.group_id, g.account_id, g.name, g.created_by, NULL, ga.user_id \
             FROM product_groups g JOIN group_administrators ga ON ga.group_id = g.group_id WHERE 1 = 1",
        );
        within_accounts(&mut qb, "g.account_id", accounts);
        let rows = qb
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        let mut by: BTreeMap<(String, String, i64), Group> = BTreeMap::new();
        for r in rows {
            let id: i64 = r.get(0);
            let g = by.entry((r.get(1), r.get(2), id)).or_insert_with(|| Group {
                id,
                account: r.get(1),
                name: r.get(2),
                products: Vec::new(),
                administrators: Vec::new(),
                created_by: r.get(3),
            });
            if let Some(s) = r.get::<Option<String>, _>(4) {
                g.products.push(s);
            }
            if let Some(u) = r.get::<Option<String>, _>(5) {
                g.administrators.push(u);
            }
        }
        Ok(by
            .into_values()
            .map(|mut g| {
                g.products.sort();
                g.administrators.sort();
                g
            })
            .collect())
    }

    pub(super) async fn group(&self, id: i64) -> Result<Group, StoreError> {
        self.groups(None)
            .await?
            .into_iter()
            .find(|g| g.id == id)
            .ok_or_else(|| StoreError::NotFound(format!("group {id}")))
    }

    /// A new group of `account`; `created_by`: the product administrator
    /// whose own group it is.
    pub async fn create_group(
        &self,
        account: &str,
        name: &str,
        created_by: Option<&str>,
    ) -> Result<Group, StoreError> {
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
            "INSERT INTO product_groups (account_id, name, created_by) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING RETURNING group_id",
        )
        .bind(account)
        .bind(name.trim())
        .bind(created_by)
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
        let mut tx = self.begin_write().await?;
        for sql in [
            "DELETE FROM group_products WHERE group_id = $1",
            "DELETE FROM group_administrators WHERE group_id = $1",
        ] {
            sqlx::query(sql)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        }
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

    /// Names `user` a product administrator of every product in the group
    /// (or no longer); they must see the group's company.
    pub async fn group_administrator(
        &self,
        id: i64,
        user: &str,
        add: bool,
    ) -> Result<Group, StoreError> {
        let g = self.group(id).await?;
        if add {
            let fits = self
                .user(user)
                .await?
                .is_some_and(|u| u.role != Role::Operator && u.sees.contains(&g.account));
            if !fits {
                return Err(StoreError::refused(
                    Refusal::InvalidAdministrator,
                    format!(
                        "administrator {user:?}: name a user who sees the group's company {:?}",
                        g.account
                    ),
                ));
            }
            sqlx::query(
                "INSERT INTO group_administrators (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(user)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        } else {
            sqlx::query("DELETE FROM group_administrators WHERE group_id = $1 AND user_id = $2")
                .bind(id)
                .bind(user)
                .execute(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
        }
        self.group(id).await
    }
}
