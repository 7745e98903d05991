//! Service, move and information requests and their events.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RequestQuery {
    /// "open" or "closed".
    pub state: Option<String>,
    pub account: Option<String>,
    /// The companies the caller sees (set by the API); None: all.
    #[serde(skip)]
    pub accounts: Option<Vec<String>>,
    pub serial: Option<String>,
    pub kind: Option<String>,
    pub limit: Option<u32>,
    /// Only requests of products this user administers (set by the API).
    #[serde(skip)]
    pub administrator: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RequestEvent {
    pub at_ms: i64,
    /// "opened", "occurrence", "closed".
    pub event: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServiceRequest {
    pub number: String,
    pub account: Option<String>,
    pub serial: Option<String>,
    pub kind: String,
    pub priority: String,
    pub state: String,
    /// "automatic" or the user who opened it.
    pub opened_by: String,
    pub fingerprint: Option<String>,
    pub title: String,
    pub code: Option<String>,
    pub kb_article: Option<String>,
    pub occurrences: u32,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub opened_at_ms: i64,
    pub closed_at_ms: Option<i64>,
    pub close_reason: Option<String>,
    /// Only in single-request answers.
    pub events: Vec<RequestEvent>,
}

/// A request opened by a user: service (incident), move or information.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    pub account: String,
    pub serial: Option<String>,
    /// "incident", "move" or "information".
    pub kind: String,
    pub title: String,
    #[serde(default)]
    pub priority: Option<String>,
    /// Recorded by the API as the caller, whatever is given here.
    #[serde(default)]
    pub user: String,
}
