//! What one ingested batch did.

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
    /// The same by request kind and change.
    pub requests: RequestTally,
    /// Highest seq in the batch: everything up to it is durable now.
    pub highest_seq: u64,
}

/// Service-request changes counted by (kind, change): `("incident",
/// "opened")`, `("consumables", "closed")`, ...
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestTally(pub std::collections::BTreeMap<(String, &'static str), u64>);

impl RequestTally {
    pub fn add(&mut self, kind: &str, change: &'static str) {
        *self.0.entry((kind.to_string(), change)).or_default() += 1;
    }

    /// (kind, change, how many).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, u64)> {
        self.0.iter().map(|((k, c), n)| (k.as_str(), *c, *n))
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
}
