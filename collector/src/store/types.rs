//! What the store hands out and takes in (also the REST API's JSON).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Observations seen for the first time and filed.
    pub new: u64,
    /// Observations already filed earlier (resent after a reconnect, or
    /// filed by another replica).
    pub duplicates: u64,
    /// Counter values filed as good history.
    pub counter_values: u64,
    /// Counter values kept as anomalies (not history).
    pub anomalies: u64,
    /// Observations of products another account owns than the agent's:
    /// kept as raw observations (and acknowledged), not filed.
    pub foreign: u64,
    /// Service-request changes (opened, occurrence, closed).
    pub request_changes: u64,
    /// Highest seq in the batch: everything up to it is durable now.
    pub highest_seq: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Product {
    pub serial: String,
    /// None: not assigned to an account yet (listed as unassigned).
    pub account: Option<String>,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub firmware: Option<String>,
    pub mac: Option<String>,
    /// Network address the device was last read at.
    pub address: Option<String>,
    pub alt_name: Option<String>,
    pub site_address: Option<String>,
    /// Location on the site (floor, room).
    pub location: Option<String>,
    /// User id of the product administrator.
    pub administrator: Option<String>,
    pub emaintenance: bool,
    /// Day of the month the billing period ends on (1-31).
    pub billing_day: Option<u32>,
    pub entitlements: BTreeMap<String, String>,
    pub groups: Vec<String>,
    /// Agent that last reported the product.
    pub agent: Option<String>,
    pub first_seen_ms: Option<i64>,
    pub last_seen_ms: Option<i64>,
    /// Current (latest filed) value of each counter; only in single-product answers.
    pub counters: BTreeMap<String, u64>,
}

/// Changes to a product; absent fields stay as they are, `Some(None)`-like
/// clearing is an empty string.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProductUpdate {
    pub account: Option<String>,
    pub alt_name: Option<String>,
    pub site_address: Option<String>,
    pub location: Option<String>,
    pub administrator: Option<String>,
    pub emaintenance: Option<bool>,
    pub billing_day: Option<u32>,
    pub entitlements: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProductQuery {
    pub account: Option<String>,
    /// Substring of serial, model or alternative name (case-insensitive).
    pub q: Option<String>,
    /// Group name.
    pub group: Option<String>,
    /// Serial to continue after (the previous page's `next`).
    pub after: Option<String>,
    pub limit: Option<u32>,
    /// Only products this user administers (set by the API for product
    /// administrators, never taken from the query string).
    #[serde(skip)]
    pub administrator: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Reading {
    pub counter: String,
    /// Filed value (Counter32 wraps included).
    pub value: u64,
    /// The value the device reported, when it differs (wrapped counters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_value: Option<u64>,
    pub taken_at_ms: i64,
    pub filed_at_ms: i64,
    /// "agent" or "manual".
    pub source: String,
    /// The agent, or the user who entered a manual reading.
    pub agent: String,
    pub seq: u64,
    /// "filed" (billing history) or "anomaly" (kept beside it).
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anomaly: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct HistoryQuery {
    pub counter: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Include anomalies (default: filed history only).
    #[serde(default)]
    pub anomalies: bool,
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ManualReading {
    pub counter: String,
    pub value: u64,
    /// Default: now.
    pub taken_at_ms: Option<i64>,
    /// Who entered it.
    pub user: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub billing_code: String,
    pub service_code: String,
    /// Products first seen by this account's agents become its products
    /// (otherwise they wait in the unassigned list).
    #[serde(default)]
    pub auto_create_products: bool,
    /// Billing cutoffs are at midnight in this zone.
    #[serde(default = "utc")]
    pub time_zone: String,
}

fn utc() -> String {
    "UTC".into()
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AgentInfo {
    pub id: String,
    pub version: String,
    pub account: Option<String>,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    /// Highest sequence number filed.
    pub filed_seq: u64,
    /// Highest sequence number the agent held when it last connected:
    /// `held - filed` is its backlog then.
    pub held_seq: u64,
    pub backlog: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Group {
    pub id: i64,
    pub account: String,
    pub name: String,
    pub products: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RequestQuery {
    /// "open" or "closed".
    pub state: Option<String>,
    pub account: Option<String>,
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Article {
    pub id: String,
    /// "error_code", "faq" or "troubleshooter".
    pub kind: String,
    /// The error code this article explains (error_code articles).
    #[serde(default)]
    pub code: Option<String>,
    pub title: String,
    #[serde(default)]
    pub body: String,
}

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

/// An API token as listed: never its secret.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TokenInfo {
    pub id: String,
    pub user: String,
    pub label: String,
    pub created_at_ms: i64,
    pub expires_at_ms: Option<i64>,
}

/// A token just issued: the only time its text is shown.
#[derive(Clone, Serialize)]
pub struct IssuedToken {
    #[serde(flatten)]
    pub info: TokenInfo,
    /// Give as `Authorization: Bearer <token>`.
    pub token: String,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("info", &self.info)
            .field("token", &"***")
            .finish()
    }
}
