//! The TOTP second factor's state: the secret, whether it is on, the last
//! step used (a code works once), and single-use recovery codes (hashed).

use crate::model::TotpState;
use crate::store::{Refusal, StoreError};
use sqlx::Row;

use super::Backend;

impl Backend {
    /// Starts turning the second factor on with a new secret (not on until
    /// `totp_enable` with a code from it). Refused while it is on.
    pub async fn totp_begin(&self, user: &str, secret_b32: &str) -> Result<(), StoreError> {
        let n = sqlx::query(
            "UPDATE users SET totp_secret = $1, totp_last_step = 0 WHERE user_id = $2 AND totp_enabled = 0",
        )
        .bind(secret_b32)
        .bind(user)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::refused(
                Refusal::TotpOn,
                "the second factor is on already: turn it off first to make a new secret",
            ));
        }
        Ok(())
    }

    pub async fn totp_state(&self, user: &str) -> Result<Option<TotpState>, StoreError> {
        let row = sqlx::query(
            "SELECT totp_secret, totp_enabled, totp_last_step FROM users WHERE user_id = $1",
        )
        .bind(user)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(row.and_then(|r| {
            Some(TotpState {
                secret_b32: r.get::<Option<String>, _>(0)?,
                enabled: r.get::<i64, _>(1) != 0,
                last_step: r.get(2),
            })
        }))
    }

    /// Spends `step`: false when it (or a later one) was used already.
    pub async fn totp_spend_step(&self, user: &str, step: i64) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE users SET totp_last_step = $1 WHERE user_id = $2 AND totp_last_step < $1",
        )
        .bind(step)
        .bind(user)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?
        .rows_affected();
        Ok(n == 1)
    }

    /// Turns the second factor on (the code of `step` was right) with new
    /// recovery codes (their hashes; earlier ones stop working).
    pub async fn totp_enable(
        &self,
        user: &str,
        step: i64,
        recovery_sha256: &[String],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE users SET totp_enabled = 1, totp_last_step = $1
             WHERE user_id = $2 AND totp_secret IS NOT NULL AND totp_enabled = 0 AND totp_last_step < $1",
        )
        .bind(step)
        .bind(user)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::refused(
                Refusal::TotpNotStarted,
                "start with POST /api/v1/me/totp (or the second factor is on already)",
            ));
        }
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        for h in recovery_sha256 {
            sqlx::query("INSERT INTO recovery_codes (user_id, code_sha256) VALUES ($1, $2)")
                .bind(user)
                .bind(h)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        tx.commit().await.map_err(|e| self.err(e))
    }

    /// Spends a recovery code: false when it is unknown or used.
    pub async fn use_recovery_code(
        &self,
        user: &str,
        code_sha256: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE recovery_codes SET used_at_ms = $1
             WHERE user_id = $2 AND code_sha256 = $3 AND used_at_ms IS NULL",
        )
        .bind(now)
        .bind(user)
        .bind(code_sha256)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?
        .rows_affected();
        Ok(n == 1)
    }

    /// Recovery codes not used yet.
    pub async fn recovery_codes_left(&self, user: &str) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at_ms IS NULL",
        )
        .bind(user)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.err(e))
    }

    pub async fn totp_disable(&self, user: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for sql in [
            "UPDATE users SET totp_enabled = 0, totp_secret = NULL, totp_last_step = 0 WHERE user_id = $1",
            "DELETE FROM recovery_codes WHERE user_id = $1",
        ] {
            sqlx::query(sql)
                .bind(user)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        tx.commit().await.map_err(|e| self.err(e))
    }
}
