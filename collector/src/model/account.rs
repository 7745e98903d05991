//! Accounts (the customer's companies), their agents and groups.

use serde::{Deserialize, Serialize};

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
    /// The organisation (customer) the company belongs to; left out when
    /// written, an organisation of the account's own id and name.
    #[serde(default)]
    pub organisation: Option<String>,
}

/// A customer: one or more companies (accounts) and its people.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Organisation {
    pub id: String,
    pub name: String,
    /// Its companies' account ids (read only).
    #[serde(default, skip_deserializing)]
    pub companies: Vec<String>,
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
    /// False once an operator disabled it: it may not connect or renew.
    pub enabled: bool,
    /// When its certificate issued last expires (None: never enrolled).
    pub cert_expires_at_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Group {
    pub id: i64,
    pub account: String,
    pub name: String,
    pub products: Vec<String>,
    /// Product administrators of every product in the group.
    pub administrators: Vec<String>,
    /// The product administrator who made it (their own group); None: an
    /// account manager's or operator's.
    pub created_by: Option<String>,
}
