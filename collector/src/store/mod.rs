//! The collector's store. The embedded default is a SQLite file.
//!
//! Durability: WAL journal with `synchronous = FULL`. Every commit fsyncs the
//! WAL before it returns, so a committed batch survives a process crash and a
//! power loss (on storage that honours fsync). The collector acknowledges a
//! batch only after its commit returned.

mod sqlite;

pub use sqlite::SqliteStore;

use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store at {path}: {source}")]
    Db { path: String, source: sqlx::Error },
    #[error("observation {seq} from {agent}: {what}")]
    Invalid {
        agent: String,
        seq: u64,
        what: String,
    },
}

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Observations seen for the first time and filed.
    pub new: u64,
    /// Observations already filed earlier (resent after a reconnect).
    pub duplicates: u64,
    /// Counter values filed as history.
    pub counter_values: u64,
    /// Highest seq in the batch: everything up to it is durable now.
    pub highest_seq: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Product {
    pub serial: String,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub firmware: Option<String>,
    pub mac: Option<String>,
    pub address: Option<String>,
    pub last_seen_ms: Option<i64>,
    /// Current value of each counter.
    pub counters: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Reading {
    pub counter: String,
    pub value: u64,
    pub taken_at_ms: i64,
    pub filed_at_ms: i64,
    pub agent: String,
    pub seq: u64,
}
