//! The outboxes: request changes on their way to an external portal, and
//! (the same claims, results and counts) e-mail notifications (`Queue`).

use crate::model::{OutboxCounts, OutboxItem, OutboxResult, QueueEntry};
use crate::store::encoding::request_number;
use crate::store::StoreError;
use sqlx::Row;

use super::Backend;

impl Backend {
    /// Outbox rows ready to send: per request only the oldest unsent one,
    /// and none behind a dead letter, so a portal sees each request's
    /// changes in order. `outbox_claim` each before sending it.
    pub async fn outbox_due(&self, now: i64, limit: i64) -> Result<Vec<OutboxItem>, StoreError> {
        let rows = sqlx::query(
            "SELECT o.outbox_id, o.request_id, o.idempotency_key, o.payload, o.attempts FROM outbox o
             WHERE o.state = 'pending' AND o.next_attempt_ms <= $1
             AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.request_id = o.request_id
                             AND e.outbox_id < o.outbox_id AND e.state <> 'sent')
             ORDER BY o.outbox_id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| OutboxItem {
                id: r.get(0),
                request_number: request_number(r.get(1)),
                idempotency_key: r.get(2),
                payload: r.get(3),
                attempts: r.get::<i64, _>(4) as u32,
            })
            .collect())
    }

    /// Claims an outbox row for one delivery attempt until `until_ms`, so
    /// that other replicas skip it meanwhile; false when another took it.
    pub async fn outbox_claim(&self, id: i64, now: i64, until_ms: i64) -> Result<bool, StoreError> {
        self.claim_in(Queue::Portal, id, now, until_ms).await
    }

    pub async fn outbox_result(&self, id: i64, result: OutboxResult) -> Result<(), StoreError> {
        self.result_in(Queue::Portal, id, result).await
    }

    pub async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        self.counts_in(Queue::Portal).await
    }

    /// Claims a row of `q` for one attempt until `until_ms`.
    pub(super) async fn claim_in(
        &self,
        q: Queue,
        id: i64,
        now: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let (table, key) = q.table();
        let n = sqlx::query(&format!(
            "UPDATE {table} SET next_attempt_ms = $1 WHERE {key} = $2 AND state = 'pending' AND next_attempt_ms <= $3"
        ))
        .bind(until_ms)
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?
        .rows_affected();
        Ok(n == 1)
    }

    /// Records how an attempt on a row of `q` went.
    pub(super) async fn result_in(
        &self,
        q: Queue,
        id: i64,
        result: OutboxResult,
    ) -> Result<(), StoreError> {
        let (table, key) = q.table();
        let sql = match &result {
            OutboxResult::Sent => format!(
                "UPDATE {table} SET state = 'sent', attempts = attempts + 1, last_error = NULL WHERE {key} = $1"
            ),
            OutboxResult::Retry { .. } => format!(
                "UPDATE {table} SET attempts = attempts + 1, last_error = $2, next_attempt_ms = $3 WHERE {key} = $1"
            ),
            OutboxResult::Dead { .. } => format!(
                "UPDATE {table} SET state = 'dead', attempts = attempts + 1, last_error = $2 WHERE {key} = $1"
            ),
        };
        let q = sqlx::query(&sql).bind(id);
        let q = match &result {
            OutboxResult::Sent => q,
            OutboxResult::Retry { error, at_ms } => q.bind(error.as_str()).bind(*at_ms),
            OutboxResult::Dead { error } => q.bind(error.as_str()),
        };
        q.execute(&self.pool).await.map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The newest `limit` rows of `q` in `state` ("pending" or "dead").
    pub(super) async fn entries_in(
        &self,
        q: Queue,
        state: &str,
        limit: i64,
    ) -> Result<Vec<QueueEntry>, StoreError> {
        let (table, key) = q.table();
        let (target, subject, created) = match q {
            Queue::Portal => ("request_id", "idempotency_key", "created_ms"),
            Queue::Email => ("to_address", "subject", "created_at_ms"),
        };
        let rows = sqlx::query(&format!(
            "SELECT {key}, {target}, {subject}, state, attempts, last_error, {created}, next_attempt_ms
             FROM {table} WHERE state = $1 ORDER BY {key} DESC LIMIT $2"
        ))
        .bind(state)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| QueueEntry {
                id: r.get(0),
                target: match q {
                    Queue::Portal => request_number(r.get(1)),
                    Queue::Email => r.get(1),
                },
                subject: r.get(2),
                state: r.get(3),
                attempts: r.get::<i64, _>(4) as u32,
                last_error: r.get(5),
                created_at_ms: r.get(6),
                next_attempt_ms: r.get(7),
            })
            .collect())
    }

    /// Puts a dead letter of `q` back in line, tried at `now` with a full
    /// round of attempts; false when `id` is no dead letter.
    pub(super) async fn retry_in(&self, q: Queue, id: i64, now: i64) -> Result<bool, StoreError> {
        let (table, key) = q.table();
        let n = sqlx::query(&format!(
            "UPDATE {table} SET state = 'pending', attempts = 0, next_attempt_ms = $1
             WHERE {key} = $2 AND state = 'dead'"
        ))
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?
        .rows_affected();
        Ok(n == 1)
    }

    pub async fn outbox_entries(
        &self,
        state: &str,
        limit: i64,
    ) -> Result<Vec<QueueEntry>, StoreError> {
        self.entries_in(Queue::Portal, state, limit).await
    }

    pub async fn outbox_retry(&self, id: i64, now: i64) -> Result<bool, StoreError> {
        self.retry_in(Queue::Portal, id, now).await
    }

    pub async fn email_entries(
        &self,
        state: &str,
        limit: i64,
    ) -> Result<Vec<QueueEntry>, StoreError> {
        self.entries_in(Queue::Email, state, limit).await
    }

    pub async fn email_retry(&self, id: i64, now: i64) -> Result<bool, StoreError> {
        self.retry_in(Queue::Email, id, now).await
    }

    /// How many rows of `q` are pending, sent and dead.
    pub(super) async fn counts_in(&self, q: Queue) -> Result<OutboxCounts, StoreError> {
        let (table, _) = q.table();
        let rows = sqlx::query(&format!(
            "SELECT state, COUNT(*) FROM {table} GROUP BY state"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        let mut c = OutboxCounts::default();
        for r in rows {
            let n = r.get::<i64, _>(1) as u64;
            match r.get::<String, _>(0).as_str() {
                "pending" => c.pending = n,
                "sent" => c.sent = n,
                _ => c.dead += n,
            }
        }
        Ok(c)
    }
}

/// The two queues of deliveries with the same life (pending, sent, dead).
#[derive(Clone, Copy)]
pub(super) enum Queue {
    /// Request changes for the external portal.
    Portal,
    /// E-mail notifications.
    Email,
}

impl Queue {
    /// (table, primary key column): constants, never input.
    fn table(self) -> (&'static str, &'static str) {
        match self {
            Queue::Portal => ("outbox", "outbox_id"),
            Queue::Email => ("email_outbox", "email_id"),
        }
    }
}
