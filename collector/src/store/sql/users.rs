//! Users and their API tokens (only a token's SHA-256 is stored).

use crate::model::{IssuedToken, TokenInfo};
use crate::model::{Role, User, UserQuery};
use crate::store::{Refusal, StoreError};
use sqlx::{QueryBuilder, Row};

use super::rows::{in_list, like_escaped, user_from, Tx, USER_COLS, USER_N};
use super::{Backend, Db};

/// An e-mail address as stored: trimmed, lower case, one `@` with text on
/// both sides, no spaces, at most 254 characters.
pub(super) fn valid_email(e: &str) -> Result<String, StoreError> {
    let e = e.trim().to_lowercase();
    let ok = e.len() <= 254
        && !e.contains(char::is_whitespace)
        && e.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.contains('@'));
    if ok {
        Ok(e)
    } else {
        Err(StoreError::refused(
            Refusal::InvalidEmail,
            format!("{e:?} is not an e-mail address"),
        ))
    }
}

impl Backend {
    /// Creates or replaces a user. Operators have no account; the customer
    /// roles need an existing one.
    pub async fn put_user(&self, u: &User) -> Result<User, StoreError> {
        self.put_user_within(u, None).await
    }

    /// As `put_user`, but an existing user is replaced only when they
    /// belong to one of `within` (an account manager's companies): checked
    /// in the write itself, so two tenants racing for one id cannot move a user.
    pub async fn put_user_within(
        &self,
        u: &User,
        within: Option<&[String]>,
    ) -> Result<User, StoreError> {
        let email = self.check_user(u).await?;
        let mut tx = self.begin_write().await?;
        self.write_user(&mut tx, u, email, within).await?;
        tx.commit().await.map_err(|e| self.err(e))?;
        self.user(&u.id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {:?}", u.id)))
    }

    /// The rules a user's data keeps; their e-mail address as stored.
    pub(super) async fn check_user(&self, u: &User) -> Result<Option<String>, StoreError> {
        for (field, value, limit) in [
            ("name", &u.name, 200),
            ("first_name", &u.first_name, 100),
            ("last_name", &u.last_name, 100),
            ("phone", &u.phone, 40),
        ] {
            if value.trim().chars().count() > limit {
                return Err(StoreError::refused(
                    Refusal::InvalidUser,
                    format!("{field} is at most {limit} characters"),
                ));
            }
        }
        if u.id.is_empty() || u.id.len() > 64 || u.id.contains(char::is_whitespace) {
            return Err(StoreError::refused(
                Refusal::InvalidUserId,
                "a user id is 1 to 64 characters without spaces",
            ));
        }
        match (u.role, &u.account) {
            (Role::Operator, Some(_)) => return Err(StoreError::refused(
                Refusal::InvalidUser,
                "an operator belongs to the service provider, not to an account: leave account out",
            )),
            (Role::Operator, None) => {}
            (_, None) => {
                return Err(StoreError::refused(
                    Refusal::InvalidUser,
                    format!("a {} needs an account", u.role.as_str()),
                ))
            }
            (_, Some(a)) => {
                if self.account(a).await?.is_none() {
                    return Err(StoreError::refused(
                        Refusal::AccountNotFound,
                        format!("no account {a:?}: create it first"),
                    ));
                }
            }
        }
        let email = match &u.email {
            Some(e) => Some(valid_email(e)?),
            None => None,
        };
        if !["en", "it"].contains(&u.language.as_str()) {
            return Err(StoreError::refused(
                Refusal::InvalidUser,
                format!("language {:?}: the portal speaks en and it", u.language),
            ));
        }
        if let Some(e) = &email {
            let holder: Option<String> =
                sqlx::query_scalar("SELECT user_id FROM users WHERE email = $1 AND user_id <> $2")
                    .bind(e)
                    .bind(&u.id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| self.err(e))?;
            if holder.is_some() {
                return Err(StoreError::refused(
                    Refusal::EmailTaken,
                    format!("another user has the e-mail address {e:?}"),
                ));
            }
        }
        Ok(email)
    }

    /// Writes a checked user (`check_user`) in `tx`; an existing one only
    /// when they belong to one of `within`.
    pub(super) async fn write_user(
        &self,
        tx: &mut Tx,
        u: &User,
        email: Option<String>,
        within: Option<&[String]>,
    ) -> Result<(), StoreError> {
        let was: Option<Option<String>> =
            sqlx::query_scalar("SELECT account_id FROM users WHERE user_id = $1")
                .bind(&u.id)
                .fetch_optional(&mut **tx)
                .await
                .map_err(|e| self.err(e))?;
        if was.as_ref().is_some_and(|a| a != &u.account) {
            // What they administered stays behind in the old company.
            for sql in [
                "DELETE FROM product_administrators WHERE user_id = $1",
                "DELETE FROM group_administrators WHERE user_id = $1",
            ] {
                sqlx::query(sql)
                    .bind(&u.id)
                    .execute(&mut **tx)
                    .await
                    .map_err(|e| self.err(e))?;
            }
        }
        let mut qb = QueryBuilder::<Db>::new(
            "INSERT INTO users (user_id, name, account_id, role, email, state, language, first_name, last_name, phone) VALUES (",
        );
        {
            let mut v = qb.separated(", ");
            v.push_bind(&u.id)
                .push_bind(&u.name)
                .push_bind(&u.account)
                .push_bind(u.role.as_str())
                .push_bind(&email)
                .push_bind(u.state.as_str())
                .push_bind(&u.language)
                .push_bind(u.first_name.trim())
                .push_bind(u.last_name.trim())
                .push_bind(u.phone.trim());
        }
        qb.push(
            ") ON CONFLICT (user_id) DO UPDATE SET name = excluded.name,
             account_id = excluded.account_id, role = excluded.role,
             email = excluded.email, state = excluded.state, language = excluded.language,
             first_name = excluded.first_name, last_name = excluded.last_name, phone = excluded.phone",
        );
        if let Some(within) = within {
            qb.push(" WHERE users.account_id IN ");
            if within.is_empty() {
                qb.push("(NULL)");
            } else {
                in_list(&mut qb, within.iter().map(String::as_str));
            }
        }
        let written = qb
            .build()
            .execute(&mut **tx)
            .await
            .map_err(|e| self.err(e))?
            .rows_affected();
        if written == 0 {
            // The caller's transaction is dropped with the error: rolled back.
            return Err(StoreError::refused(
                Refusal::UserIdTaken,
                format!("user id {:?} is taken: choose another", u.id),
            ));
        }
        self.write_companies(tx, u).await
    }

    /// Creates `u` unless a user with that id exists; true when it did.
    pub async fn add_user_if_absent(&self, u: &User) -> Result<bool, StoreError> {
        if self.user(&u.id).await?.is_some() {
            return Ok(false);
        }
        let n = sqlx::query(
            "INSERT INTO users (user_id, name, account_id, role) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id) DO NOTHING",
        )
        .bind(&u.id)
        .bind(&u.name)
        .bind(&u.account)
        .bind(u.role.as_str())
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?
        .rows_affected();
        Ok(n == 1)
    }

    /// The user with the companies they see resolved.
    pub async fn user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE user_id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        let Some(u) = row.as_ref().and_then(user_from) else {
            return Ok(None);
        };
        Ok(Some(u))
    }

    /// Users of these companies (all users when None), by id; `q` narrows
    /// it (surname prefix, case-insensitive; state).
    pub async fn users(
        &self,
        accounts: Option<&[String]>,
        q: &UserQuery,
    ) -> Result<Vec<User>, StoreError> {
        let mut qb = QueryBuilder::<Db>::new(format!("SELECT {USER_COLS} FROM users WHERE 1 = 1"));
        if let Some(accounts) = accounts {
            qb.push(" AND users.account_id IN ");
            if accounts.is_empty() {
                qb.push("(NULL)");
            } else {
                in_list(&mut qb, accounts.iter().map(String::as_str));
            }
        }
        if let Some(surname) = q
            .surname
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            qb.push(" AND LOWER(users.last_name) LIKE ")
                .push_bind(format!("{}%", like_escaped(&surname.to_lowercase())))
                .push(" ESCAPE '\\'");
        }
        if let Some(state) = q.state {
            qb.push(" AND users.state = ").push_bind(state.as_str());
        }
        qb.push(" ORDER BY users.last_name, users.user_id");
        let rows = qb
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            if let Some(u) = user_from(r) {
                out.push(u);
            }
        }
        Ok(out)
    }

    /// Removes a user, their tokens, and their name from the products they administered.
    pub async fn delete_user(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for sql in [
            "DELETE FROM api_tokens WHERE user_id = $1",
            "DELETE FROM sessions WHERE user_id = $1",
            "DELETE FROM product_administrators WHERE user_id = $1",
            "DELETE FROM group_administrators WHERE user_id = $1",
            "DELETE FROM user_companies WHERE user_id = $1",
            "DELETE FROM user_links WHERE user_id = $1",
            "DELETE FROM recovery_codes WHERE user_id = $1",
            "DELETE FROM notification_settings WHERE user_id = $1",
        ] {
            sqlx::query(sql)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        let n = sqlx::query("DELETE FROM users WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("user {id:?}")));
        }
        tx.commit().await.map_err(|e| self.err(e))
    }

    /// Issues a token for `user`, valid until `expires_at_ms` (for ever when None).
    pub async fn issue_token(
        &self,
        user: &str,
        label: &str,
        expires_at_ms: Option<i64>,
        now: i64,
    ) -> Result<IssuedToken, StoreError> {
        if self.user(user).await?.is_none() {
            return Err(StoreError::NotFound(format!("user {user:?}")));
        }
        let t = crate::token::generate()?;
        sqlx::query(
            "INSERT INTO api_tokens (token_id, user_id, secret_sha256, label, created_at_ms, expires_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&t.id)
        .bind(user)
        .bind(&t.secret_hash)
        .bind(label)
        .bind(now)
        .bind(expires_at_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(IssuedToken {
            info: TokenInfo {
                id: t.id,
                user: user.to_string(),
                label: label.to_string(),
                created_at_ms: now,
                expires_at_ms,
            },
            token: t.text.0,
        })
    }

    pub async fn tokens(&self, user: &str) -> Result<Vec<TokenInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT token_id, user_id, label, created_at_ms, expires_at_ms FROM api_tokens
             WHERE user_id = $1 ORDER BY created_at_ms, token_id",
        )
        .bind(user)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| TokenInfo {
                id: r.get(0),
                user: r.get(1),
                label: r.get(2),
                created_at_ms: r.get(3),
                expires_at_ms: r.get(4),
            })
            .collect())
    }

    pub async fn revoke_token(&self, user: &str, id: &str) -> Result<(), StoreError> {
        let n = sqlx::query("DELETE FROM api_tokens WHERE user_id = $1 AND token_id = $2")
            .bind(user)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "token {id:?} of user {user:?}"
            )));
        }
        Ok(())
    }

    /// The user a token belongs to; None when the token is unknown,
    /// revoked, expired, or its secret does not match.
    pub async fn authenticate(&self, token: &str, now: i64) -> Result<Option<User>, StoreError> {
        let Some((id, secret)) = crate::token::parse_token(token) else {
            return Ok(None);
        };
        let row = sqlx::query(&format!(
            "SELECT {USER_COLS}, t.secret_sha256, t.expires_at_ms
             FROM api_tokens t JOIN users ON users.user_id = t.user_id WHERE t.token_id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let stored: String = row.get(USER_N);
        let expires: Option<i64> = row.get(USER_N + 1);
        if !crate::token::same_hash(&crate::token::hash_secret(secret), &stored)
            || expires.is_some_and(|e| e <= now)
        {
            return Ok(None);
        }
        let Some(u) = user_from(&row) else {
            return Ok(None);
        };
        Ok(Some(u))
    }

    /// For tests: every stored token row as text, to show no secret is kept.
    #[cfg(test)]
    pub(crate) async fn token_rows_text(&self) -> Vec<String> {
        sqlx::query("SELECT token_id, user_id, secret_sha256, label FROM api_tokens")
            .fetch_all(&self.pool)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (0..4)
                    .map(|i| r.get::<String, _>(i))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }
}
