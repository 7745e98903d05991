//! The e-mail outbox: notifications written in the transaction of the change
//! they tell of (`queue_request_emails`), handed to the mailer one claim at
//! a time, sent, retried or given up.

use crate::model::{EmailItem, OutboxCounts, OutboxResult, ServiceRequest};
use crate::store::StoreError;
use sqlx::Row;

use super::outbox::Queue;
use super::rows::{user_from, Tx, USER_COLS};
use super::Backend;

impl Backend {
    /// Queues a message about `event` of `r` for each person who hears of
    /// it (`notify::recipient`), in their language.
    pub(super) async fn queue_request_emails(
        &self,
        tx: &mut Tx,
        r: &ServiceRequest,
        event: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let Some(account) = &r.account else {
            return Ok(());
        };
        let public_url = self
            .settings
            .email
            .as_ref()
            .and_then(|e| e.public_url.clone());
        let Some(topic) = crate::notify::topic(r, event) else {
            return Ok(());
        };
        let (admins, product_groups): (Vec<String>, Vec<i64>) = match &r.serial {
            Some(serial) => (
                sqlx::query_scalar(
                    "SELECT user_id FROM product_administrators WHERE serial = $1
                     UNION SELECT ga.user_id FROM group_products gp
                     JOIN group_administrators ga ON ga.group_id = gp.group_id WHERE gp.serial = $1",
                )
                .bind(serial)
                .fetch_all(&mut **tx)
                .await
                .map_err(|e| self.err(e))?,
                sqlx::query_scalar("SELECT group_id FROM group_products WHERE serial = $1")
                    .bind(serial)
                    .fetch_all(&mut **tx)
                    .await
                    .map_err(|e| self.err(e))?,
            ),
            None => (Vec::new(), Vec::new()),
        };
        // The people who see the request's company: of its organisation,
        // with no companies given or this one among them.
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLS} FROM users WHERE users.email IS NOT NULL
             AND users.account_id IN (SELECT a2.account_id FROM accounts a1
                 JOIN accounts a2 ON a2.organisation_id = a1.organisation_id WHERE a1.account_id = $1)
             AND (NOT EXISTS (SELECT 1 FROM user_companies uc WHERE uc.user_id = users.user_id)
                  OR EXISTS (SELECT 1 FROM user_companies uc
                             WHERE uc.user_id = users.user_id AND uc.account_id = $1))
             ORDER BY users.user_id"
        ))
        .bind(account)
        .fetch_all(&mut **tx)
        .await
        .map_err(|e| self.err(e))?;
        for row in rows {
            let Some(u) = user_from(&row) else { continue };
            if !crate::notify::recipient(&u, r, &admins) {
                continue;
            }
            let settings = self.notification_settings_in(tx, &u.id).await?;
            if !crate::notify::wants(&settings, topic, r.serial.as_deref(), &product_groups) {
                continue;
            }
            let Some(m) = crate::notify::request_email(&u, r, event, public_url.as_deref()) else {
                continue;
            };
            sqlx::query(
                "INSERT INTO email_outbox (to_address, user_id, subject, body, created_at_ms, next_attempt_ms)
                 VALUES ($1, $2, $3, $4, $5, $5)",
            )
            .bind(&m.to)
            .bind(&m.user)
            .bind(&m.subject)
            .bind(&m.body)
            .bind(now)
            .execute(&mut **tx)
            .await
            .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Queues one message in `tx` (the change it tells of commits with it).
    pub(super) async fn queue_email(
        &self,
        tx: &mut Tx,
        m: &crate::notify::Email,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO email_outbox (to_address, user_id, subject, body, created_at_ms, next_attempt_ms)
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(&m.to)
        .bind((!m.user.is_empty()).then_some(m.user.as_str()))
        .bind(&m.subject)
        .bind(&m.body)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub async fn email_due(&self, now: i64, limit: i64) -> Result<Vec<EmailItem>, StoreError> {
        let rows = sqlx::query(
            "SELECT email_id, to_address, subject, body, attempts FROM email_outbox
             WHERE state = 'pending' AND next_attempt_ms <= $1 ORDER BY email_id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| EmailItem {
                id: r.get(0),
                to: r.get(1),
                subject: r.get(2),
                body: r.get(3),
                attempts: r.get::<i64, _>(4) as u32,
            })
            .collect())
    }

    /// Claims a message for one attempt until `until_ms` (other replicas skip
    /// it meanwhile); false when another took it.
    pub async fn email_claim(&self, id: i64, now: i64, until_ms: i64) -> Result<bool, StoreError> {
        self.claim_in(Queue::Email, id, now, until_ms).await
    }

    pub async fn email_result(&self, id: i64, result: OutboxResult) -> Result<(), StoreError> {
        self.result_in(Queue::Email, id, result).await
    }

    pub async fn email_counts(&self) -> Result<OutboxCounts, StoreError> {
        self.counts_in(Queue::Email).await
    }
}
