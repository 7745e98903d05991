//! Recordings as served, and the faults a device can be told to show.

use meterlink_agent::profile::ProfileSet;
use meterlink_agent::snmp::{snmprec, Oid, Value};
use std::collections::BTreeSet;

/// Faults a device can be told to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Never answer.
    NoReply,
    /// Answer with a request id (msgID on v3) the request did not carry.
    WrongRequestId,
    /// Answer with only the first half of the packet.
    Truncated,
    /// In walks, answer GETNEXT/GETBULK with the OID asked for (not increasing).
    NonIncreasing,
    /// Answer every GETBULK with tooBig and an empty varbind list.
    TooBigEmpty,
    /// Counters read lower than before (a board swap or half-failed read).
    CounterRegression,
    /// Never answer GETBULK (GET and GETNEXT still work).
    BrokenBulk,
}

impl Fault {
    pub(crate) fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// A fault name the simulator does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFault(pub String);

impl std::fmt::Display for UnknownFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unknown fault {:?}; one of no-reply, wrong-request-id, truncated, non-increasing, toobig-empty, counter-regression, broken-bulk",
            self.0
        )
    }
}

impl std::error::Error for UnknownFault {}

impl std::str::FromStr for Fault {
    type Err = UnknownFault;
    fn from_str(s: &str) -> Result<Self, UnknownFault> {
        Ok(match s {
            "no-reply" => Fault::NoReply,
            "wrong-request-id" => Fault::WrongRequestId,
            "truncated" => Fault::Truncated,
            "non-increasing" => Fault::NonIncreasing,
            "toobig-empty" => Fault::TooBigEmpty,
            "counter-regression" => Fault::CounterRegression,
            "broken-bulk" => Fault::BrokenBulk,
            _ => return Err(UnknownFault(s.to_string())),
        })
    }
}

/// A loaded recording: sorted OIDs and values, plus which entries are
/// counters, serials and MACs (from the device profiles) so clones differ.
#[derive(Debug)]
pub struct Recording {
    pub name: String,
    pub items: Vec<(Oid, Value)>,
    pub(crate) counters: Vec<usize>,
    pub(crate) serials: Vec<usize>,
    pub(crate) macs: Vec<usize>,
}

impl Recording {
    /// Parses a recording. Bad lines are skipped and returned beside it.
    pub fn parse(name: &str, text: &str) -> (Recording, Vec<snmprec::SnmprecError>) {
        let (items, errors) = snmprec::parse_lenient(name, text);
        let profiles = ProfileSet::embedded();
        let mut counter_roots: BTreeSet<Oid> = BTreeSet::new();
        let mut serial_oids: BTreeSet<Oid> = BTreeSet::new();
        for p in &profiles.profiles {
            for t in &p.tables {
                counter_roots.insert(t.value_column.clone());
            }
            for c in &p.counters {
                counter_roots.insert(c.oid.clone());
            }
            serial_oids.extend(p.identity.serial.iter().cloned());
        }
        let mac_root: Oid = "1.3.6.1.2.1.2.2.1.6".parse().expect("oid");
        let mut counters = Vec::new();
        let mut serials = Vec::new();
        let mut macs = Vec::new();
        for (i, (o, v)) in items.iter().enumerate() {
            if counter_roots.iter().any(|r| o.starts_with(r)) && v.as_u64().is_some() {
                counters.push(i);
            }
            if serial_oids.contains(o) && v.as_bytes().is_some_and(|b| !b.is_empty()) {
                serials.push(i);
            }
            if o.starts_with(&mac_root) && v.as_bytes().is_some_and(|b| b.len() == 6) {
                macs.push(i);
            }
        }
        (
            Recording {
                name: name.to_string(),
                items,
                counters,
                serials,
                macs,
            },
            errors,
        )
    }
}
