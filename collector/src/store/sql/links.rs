//! Single-use, expiring links e-mailed to people: a password reset, for
//! now. Only a hash of a link's token is stored; using a link spends it in
//! the same statement that checks it.

use crate::model::{User, UserState};
use crate::store::{Refusal, StoreError};

use super::rows::{user_from, USER_COLS};
use super::Backend;

impl Backend {
    /// For the active user with this e-mail address, if there is one: a
    /// reset link (its token's hash stored) and the message carrying it,
    /// queued in one transaction. Answers whether one was made.
    pub async fn request_password_reset(
        &self,
        email: &str,
        link_sha256: &str,
        link_url: &str,
        now: i64,
        expires_at_ms: i64,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE email = $1"))
            .bind(email.trim().to_lowercase())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        let Some(u) = row.as_ref().and_then(user_from) else {
            return Ok(false);
        };
        if u.state != UserState::Active {
            return Ok(false);
        }
        let minutes = (expires_at_ms - now) / 60_000;
        let Some(m) = crate::notify::reset_email(&u, link_url, minutes) else {
            return Ok(false);
        };
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO user_links (link_sha256, user_id, purpose, created_at_ms, expires_at_ms)
             VALUES ($1, $2, 'reset', $3, $4)",
        )
        .bind(link_sha256)
        .bind(&u.id)
        .bind(now)
        .bind(expires_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        sqlx::query(
            "INSERT INTO email_outbox (to_address, user_id, subject, body, created_at_ms, next_attempt_ms)
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(&m.to)
        .bind(&m.user)
        .bind(&m.subject)
        .bind(&m.body)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(true)
    }

    /// Spends a link of `purpose`: its user, or a refusal when the link is
    /// unknown, used or expired.
    pub async fn use_link(
        &self,
        link_sha256: &str,
        purpose: &str,
        now: i64,
    ) -> Result<User, StoreError> {
        let user: Option<String> = sqlx::query_scalar(
            "UPDATE user_links SET used_at_ms = $1
             WHERE link_sha256 = $2 AND purpose = $3 AND used_at_ms IS NULL AND expires_at_ms > $1
             RETURNING user_id",
        )
        .bind(now)
        .bind(link_sha256)
        .bind(purpose)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        let refused = || {
            StoreError::refused(
                Refusal::LinkInvalid,
                "the link is unknown, was used already or has expired: ask for a new one",
            )
        };
        let id = user.ok_or_else(refused)?;
        self.user(&id).await?.ok_or_else(refused)
    }
}
