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

    /// Adds another tally's counts to this one.
    pub fn merge(&mut self, other: RequestTally) {
        for (key, n) in other.0 {
            *self.0.entry(key).or_default() += n;
        }
    }
}

/// Calls `$f` on every text field of an observation, by `&` or (with
/// `mut`) by `&mut`: one list of the fields for reading and for writing.
macro_rules! each_text {
    ($o:expr, $f:expr $(, $m:ident)?) => {{
        use meterlink_proto::v1::observation::Body;
        let o = $o;
        let f = &mut $f;
        f(& $($m)? o.device_address);
        f(& $($m)? o.serial);
        match & $($m)? o.body {
            Some(Body::Identity(i)) => {
                for s in [& $($m)? i.vendor, & $($m)? i.model, & $($m)? i.serial, & $($m)? i.firmware,
                    & $($m)? i.sys_object_id, & $($m)? i.sys_descr, & $($m)? i.mac, & $($m)? i.profile] {
                    f(s);
                }
                for c in & $($m)? i.components {
                    for s in [& $($m)? c.kind, & $($m)? c.name, & $($m)? c.description, & $($m)? c.r#type, & $($m)? c.media] {
                        f(s);
                    }
                }
            }
            Some(Body::Meter(m)) => {
                for c in & $($m)? m.counters {
                    for s in [& $($m)? c.id, & $($m)? c.name, & $($m)? c.unit, & $($m)? c.oid] {
                        f(s);
                    }
                }
            }
            Some(Body::Status(st)) => {
                f(& $($m)? st.device);
                f(& $($m)? st.printer);
                for s in & $($m)? st.errors {
                    f(s);
                }
                for s in & $($m)? st.console {
                    f(s);
                }
                for a in & $($m)? st.alerts {
                    for s in [& $($m)? a.severity, & $($m)? a.training_level, & $($m)? a.group,
                        & $($m)? a.code_name, & $($m)? a.description] {
                        f(s);
                    }
                }
            }
            Some(Body::Supplies(su)) => {
                for x in & $($m)? su.supplies {
                    for s in [& $($m)? x.description, & $($m)? x.kind, & $($m)? x.state] {
                        f(s);
                    }
                }
            }
            None => {}
        }
    }};
}

/// The batch with NUL characters taken out of every text field, or None
/// when it has none (the usual case: nothing is copied). Device text is
/// shown, never parsed, and PostgreSQL's text cannot hold NUL: one such
/// string would otherwise fail the whole batch on every retry.
pub fn without_nul(
    batch: &[meterlink_proto::v1::Observation],
) -> Option<Vec<meterlink_proto::v1::Observation>> {
    let mut found = false;
    for o in batch {
        each_text!(o, |s: &String| found |= s.contains('\0'));
    }
    if !found {
        return None;
    }
    let mut out = batch.to_vec();
    for o in &mut out {
        each_text!(o, |s: &mut String| s.retain(|c| c != '\0'), mut);
    }
    Some(out)
}
