//! Schema migrations: the backend's `.sql` files applied in order, once.

use crate::store::StoreError;

use super::{Backend, MIGRATIONS, MIGRATION_LOCK, VERSION_TABLE};

impl Backend {
    /// Applies the backend's migrations not applied yet, in one transaction.
    pub(crate) async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        if let Some(lock) = MIGRATION_LOCK {
            sqlx::query(lock)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        sqlx::query(VERSION_TABLE)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        let v: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_version")
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        let have = v.unwrap_or(0) as usize;
        if have > MIGRATIONS.len() {
            return Err(StoreError::SchemaTooNew {
                store: self.label.clone(),
                have,
                known: MIGRATIONS.len(),
            });
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(have) {
            sqlx::raw_sql(m)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
            sqlx::query("INSERT INTO schema_version (version) VALUES ($1)")
                .bind((i + 1) as i64)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        tx.commit().await.map_err(|e| self.err(e))
    }

    /// Readiness: the database answers and its schema is the one this
    /// collector knows (a newer collector may have migrated it since).
    pub async fn ready(&self) -> Result<(), StoreError> {
        let v: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_version")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        let have = v.unwrap_or(0) as usize;
        match have.cmp(&MIGRATIONS.len()) {
            std::cmp::Ordering::Equal => Ok(()),
            std::cmp::Ordering::Greater => Err(StoreError::SchemaTooNew {
                store: self.label.clone(),
                have,
                known: MIGRATIONS.len(),
            }),
            std::cmp::Ordering::Less => Err(StoreError::Invalid {
                agent: String::new(),
                seq: 0,
                what: format!(
                    "{}: schema version {have}, older than this collector's {}",
                    self.label,
                    MIGRATIONS.len()
                ),
            }),
        }
    }
}
