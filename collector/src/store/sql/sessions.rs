//! People logging in: passwords (argon2id PHC strings), sessions (only the
//! SHA-256 of a session id is stored, with its CSRF token), failed logins
//! for the throttle, and users' states.

use crate::model::{SessionUser, User, UserState};
use crate::store::StoreError;
use sqlx::Row;

use super::rows::{user_from, USER_COLS, USER_N};
use super::Backend;

impl Backend {
    pub async fn set_password(&self, user: &str, phc: &str) -> Result<(), StoreError> {
        let n = sqlx::query("UPDATE users SET password_hash = $1 WHERE user_id = $2")
            .bind(phc)
            .bind(user)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("user {user:?}")));
        }
        Ok(())
    }

    /// The user with this e-mail address (lower case) and their password
    /// hash, if they have one.
    pub async fn login_user(
        &self,
        email: &str,
    ) -> Result<Option<(User, Option<String>)>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLS}, password_hash FROM users WHERE email = $1"
        ))
        .bind(email.to_lowercase())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        let Some((u, hash)) = row.and_then(|r| Some((user_from(&r)?, r.get(USER_N)))) else {
            return Ok(None);
        };
        Ok(Some((u, hash)))
    }

    pub async fn password_hash(&self, user: &str) -> Result<Option<String>, StoreError> {
        let h: Option<Option<String>> =
            sqlx::query_scalar("SELECT password_hash FROM users WHERE user_id = $1")
                .bind(user)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
        Ok(h.flatten())
    }

    pub async fn create_session(
        &self,
        user: &str,
        session_sha256: &str,
        csrf_token: &str,
        client: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (session_sha256, user_id, csrf_token, created_at_ms, last_seen_ms, client)
             VALUES ($1, $2, $3, $4, $4, $5)",
        )
        .bind(session_sha256)
        .bind(user)
        .bind(csrf_token)
        .bind(now)
        .bind(client)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The session's user, unless it is unknown or has passed its idle or
    /// absolute timeout (then it is deleted). Seen now: the idle time starts
    /// again (written at most once a minute).
    pub async fn session(
        &self,
        session_sha256: &str,
        now: i64,
        idle_ms: i64,
        absolute_ms: i64,
    ) -> Result<Option<SessionUser>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLS}, s.csrf_token, s.created_at_ms, s.last_seen_ms
             FROM sessions s JOIN users ON users.user_id = s.user_id WHERE s.session_sha256 = $1"
        ))
        .bind(session_sha256)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        let Some(row) = row else { return Ok(None) };
        let (created, seen): (i64, i64) = (row.get(USER_N + 1), row.get(USER_N + 2));
        if now - seen > idle_ms || now - created > absolute_ms {
            self.delete_session(session_sha256).await?;
            return Ok(None);
        }
        if now - seen > 60_000 {
            sqlx::query("UPDATE sessions SET last_seen_ms = $1 WHERE session_sha256 = $2")
                .bind(now)
                .bind(session_sha256)
                .execute(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
        }
        let Some(user) = user_from(&row) else {
            return Ok(None);
        };
        Ok(Some(SessionUser {
            user,
            csrf_token: row.get(USER_N),
        }))
    }

    pub async fn delete_session(&self, session_sha256: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE session_sha256 = $1")
            .bind(session_sha256)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Ends every session of `user` but `keep` (the one asking, if any);
    /// answers how many ended.
    pub async fn delete_sessions(&self, user: &str, keep: Option<&str>) -> Result<u64, StoreError> {
        let n = sqlx::query(
            "DELETE FROM sessions WHERE user_id = $1 AND ($2 IS NULL OR session_sha256 <> $2)",
        )
        .bind(user)
        .bind(keep)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?
        .rows_affected();
        Ok(n)
    }

    /// When the failed logins under `key` happened, since `since_ms`.
    pub async fn login_failures(&self, key: &str, since_ms: i64) -> Result<Vec<i64>, StoreError> {
        sqlx::query_scalar("SELECT at_ms FROM login_failures WHERE failure_key = $1 AND at_ms > $2")
            .bind(key)
            .bind(since_ms)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))
    }

    /// Records a failed login under each key, and forgets those older than
    /// `forget_before_ms`.
    pub async fn add_login_failure(
        &self,
        keys: &[&str],
        now: i64,
        forget_before_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for k in keys {
            sqlx::query("INSERT INTO login_failures (failure_key, at_ms) VALUES ($1, $2)")
                .bind(*k)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        sqlx::query("DELETE FROM login_failures WHERE at_ms < $1")
            .bind(forget_before_ms)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))
    }

    pub async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_failures WHERE failure_key = $1")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Suspends, reinstates (active) or otherwise sets a user's state.
    pub async fn set_user_state(&self, user: &str, state: UserState) -> Result<User, StoreError> {
        let n = sqlx::query("UPDATE users SET state = $1 WHERE user_id = $2")
            .bind(state.as_str())
            .bind(user)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("user {user:?}")));
        }
        self.user(user)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {user:?}")))
    }
}
