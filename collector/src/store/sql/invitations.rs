//! Invitations: a pending user, what they will administer, the e-mailed
//! link (its hash) and the message, written in one transaction; accepting
//! or declining spends the link.

use crate::model::{LinkMail, NewInvitation, Role, User, UserState};
use crate::store::{Refusal, StoreError};

use super::rows::Tx;
use super::Backend;

impl Backend {
    /// Invites `u` (state pending) to administer `products` and `groups`;
    /// the message carries accept and decline links from `link`.
    pub async fn invite(
        &self,
        u: &User,
        inv: &NewInvitation,
        inviter: &str,
        link: &LinkMail,
    ) -> Result<User, StoreError> {
        if u.state != UserState::Pending || u.role == Role::Operator {
            return Err(StoreError::refused(
                Refusal::InvalidUser,
                "an invitation is for a pending account manager or product administrator",
            ));
        }
        let email = self.check_user(u).await?;
        if email.is_none() {
            return Err(StoreError::refused(
                Refusal::InvalidEmail,
                "an invitation needs the colleague's e-mail address",
            ));
        }
        let mut tx = self.begin_write().await?;
        if self.user(&u.id).await?.is_some() {
            return Err(StoreError::refused(
                Refusal::UserIdTaken,
                format!("user id {:?} is taken: choose another", u.id),
            ));
        }
        self.write_user(&mut tx, u, email, None).await?;
        sqlx::query("UPDATE users SET invited_by = $1 WHERE user_id = $2")
            .bind(inviter)
            .bind(&u.id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        for serial in &inv.products {
            let owner: Option<Option<String>> =
                sqlx::query_scalar("SELECT account_id FROM products WHERE serial = $1")
                    .bind(serial)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| self.err(e))?;
            if !self.within_reach(&mut tx, u, owner.flatten()).await? {
                return Err(StoreError::NotFound(format!("product {serial:?}")));
            }
            sqlx::query("INSERT INTO product_administrators (serial, user_id) VALUES ($1, $2)")
                .bind(serial)
                .bind(&u.id)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        for g in &inv.groups {
            let owner: Option<String> =
                sqlx::query_scalar("SELECT account_id FROM product_groups WHERE group_id = $1")
                    .bind(g)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| self.err(e))?;
            if !self.within_reach(&mut tx, u, owner).await? {
                return Err(StoreError::NotFound(format!("group {g}")));
            }
            sqlx::query("INSERT INTO group_administrators (group_id, user_id) VALUES ($1, $2)")
                .bind(g)
                .bind(&u.id)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        self.send_invitation(&mut tx, u, inviter, link).await?;
        tx.commit().await.map_err(|e| self.err(e))?;
        self.user(&u.id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {:?}", u.id)))
    }

    /// Whether `account` is one `u` will see (their organisation's, and
    /// among their companies when given).
    async fn within_reach(
        &self,
        tx: &mut Tx,
        u: &User,
        account: Option<String>,
    ) -> Result<bool, StoreError> {
        let (Some(account), Some(home)) = (account, &u.account) else {
            return Ok(false);
        };
        if u.companies.as_ref().is_some_and(|c| !c.contains(&account)) {
            return Ok(false);
        }
        self.same_organisation(tx, &account, home).await
    }

    /// A new invitation link for `u` (the earlier ones stop working) and
    /// the message carrying it.
    async fn send_invitation(
        &self,
        tx: &mut Tx,
        u: &User,
        inviter: &str,
        link: &LinkMail,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE user_links SET used_at_ms = $1 WHERE user_id = $2 AND purpose = 'invite' AND used_at_ms IS NULL",
        )
        .bind(link.now_ms)
        .bind(&u.id)
        .execute(&mut **tx)
        .await
        .map_err(|e| self.err(e))?;
        sqlx::query(
            "INSERT INTO user_links (link_sha256, user_id, purpose, created_at_ms, expires_at_ms)
             VALUES ($1, $2, 'invite', $3, $4)",
        )
        .bind(&link.sha256)
        .bind(&u.id)
        .bind(link.now_ms)
        .bind(link.expires_at_ms)
        .execute(&mut **tx)
        .await
        .map_err(|e| self.err(e))?;
        let base = link.base_url.trim_end_matches('/');
        let accept = format!("{base}/invitation/accept?token={}", link.token);
        let decline = format!("{base}/invitation/decline?token={}", link.token);
        let days = ((link.expires_at_ms - link.now_ms) / 86_400_000).max(1);
        if let Some(m) = crate::notify::invitation_email(u, inviter, &accept, &decline, days) {
            self.queue_email(tx, &m, link.now_ms).await?;
        }
        Ok(())
    }

    /// Sends a pending user a new invitation (the old link stops working).
    pub async fn resend_invitation(
        &self,
        user: &str,
        inviter: &str,
        link: &LinkMail,
    ) -> Result<User, StoreError> {
        let u = self
            .user(user)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {user:?}")))?;
        if u.state != UserState::Pending {
            return Err(not_pending(&u));
        }
        let mut tx = self.begin_write().await?;
        self.send_invitation(&mut tx, &u, inviter, link).await?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(u)
    }

    /// Accepts an invitation: the link is spent, the password set, the
    /// user active, in one transaction.
    pub async fn accept_invitation(
        &self,
        link_sha256: &str,
        password_phc: &str,
        now: i64,
    ) -> Result<User, StoreError> {
        self.answer_invitation(link_sha256, Some(password_phc), now)
            .await
    }

    /// Declines an invitation: the user is Refused.
    pub async fn decline_invitation(
        &self,
        link_sha256: &str,
        now: i64,
    ) -> Result<User, StoreError> {
        self.answer_invitation(link_sha256, None, now).await
    }

    async fn answer_invitation(
        &self,
        link_sha256: &str,
        password_phc: Option<&str>,
        now: i64,
    ) -> Result<User, StoreError> {
        let mut tx = self.begin_write().await?;
        let user: Option<String> = sqlx::query_scalar(
            "UPDATE user_links SET used_at_ms = $1
             WHERE link_sha256 = $2 AND purpose = 'invite' AND used_at_ms IS NULL AND expires_at_ms > $1
             RETURNING user_id",
        )
        .bind(now)
        .bind(link_sha256)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        let Some(id) = user else {
            return Err(StoreError::refused(
                Refusal::LinkInvalid,
                "the invitation link is unknown, was used already, was replaced or has expired: \
                 ask the person who invited you to send it again",
            ));
        };
        let n = match password_phc {
            Some(phc) => sqlx::query(
                "UPDATE users SET password_hash = $1, state = 'active' WHERE user_id = $2 AND state = 'pending'",
            )
            .bind(phc)
            .bind(&id),
            None => sqlx::query(
                "UPDATE users SET state = 'refused' WHERE user_id = $1 AND state = 'pending'",
            )
            .bind(&id),
        }
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::refused(
                Refusal::NotPending,
                "the invitation was answered or withdrawn already",
            ));
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        self.user(&id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {id:?}")))
    }
}

pub(super) fn not_pending(u: &User) -> StoreError {
    StoreError::refused(
        Refusal::NotPending,
        format!(
            "user {:?} is {}, not pending: only an unanswered invitation is resent or withdrawn",
            u.id,
            u.state.as_str()
        ),
    )
}
