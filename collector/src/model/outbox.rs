//! Request changes on their way to an external portal.

use serde::Serialize;

/// One request change waiting to go to the external portal.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub id: i64,
    pub request_number: String,
    pub idempotency_key: String,
    pub payload: String,
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OutboxResult {
    Sent,
    /// Try again at this time.
    Retry {
        error: String,
        at_ms: i64,
    },
    /// Given up: kept as a dead letter (later changes of the request wait).
    Dead {
        error: String,
    },
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct OutboxCounts {
    pub pending: u64,
    pub sent: u64,
    pub dead: u64,
}

/// One e-mail waiting to be sent.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailItem {
    pub id: i64,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub attempts: u32,
}

/// One delivery of a queue as an operator sees it: for the portal's
/// outbox `target` is the request and `subject` the change; for e-mail the
/// address and the subject.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QueueEntry {
    pub id: i64,
    pub target: String,
    pub subject: String,
    /// "pending", "sent" or "dead".
    pub state: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub created_at_ms: i64,
    pub next_attempt_ms: i64,
}
