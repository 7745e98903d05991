//! Products, their readings, and the queries that list them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    /// Its product administrators' user ids, given directly or through a
    /// group, sorted.
    pub administrators: Vec<String>,
    pub emaintenance: bool,
    /// Day of the month the billing period ends on (1-31).
    pub billing_day: Option<u32>,
    pub entitlements: BTreeMap<String, String>,
    /// The typed entitlements a request's due time is computed from.
    pub terms: Option<super::Entitlements>,
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
    /// The product administrators given directly (groups add more).
    pub administrators: Option<Vec<String>>,
    pub emaintenance: Option<bool>,
    pub billing_day: Option<u32>,
    pub entitlements: Option<BTreeMap<String, String>>,
    /// The typed entitlements (operators).
    pub terms: Option<super::Entitlements>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProductQuery {
    pub account: Option<String>,
    /// The companies the caller sees (set by the API, never taken from the
    /// query string); None: every product.
    #[serde(skip)]
    pub accounts: Option<Vec<String>>,
    /// Substring of serial, model, alternative name, location or address
    /// (case-insensitive).
    pub q: Option<String>,
    /// Group name.
    pub group: Option<String>,
    /// `open_requests` (with an open request), `emaintenance` (reports by
    /// itself) or `manual` (its readings are typed in).
    pub status: Option<String>,
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

/// What a product's readings answer needs besides the readings: who may
/// see the product (its account and administrators) and its latest values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProductLatest {
    pub account: Option<String>,
    pub administrators: Vec<String>,
    pub counters: BTreeMap<String, u64>,
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

/// Something that happened to a product outside its requests.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProductEvent {
    pub at_ms: i64,
    /// "address_changed": the agent found the product at another address.
    pub event: String,
    pub text: String,
}

/// A point of a counter's history as a chart draws it (a bucket of time
/// reduced to its last time and highest value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SeriesPoint {
    pub at_ms: i64,
    pub value: u64,
    /// A reading in it was entered by hand.
    pub manual: bool,
}
