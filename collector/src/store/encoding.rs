//! How model values are written to and read from the columns both backends
//! share: observation kinds and raw bodies, request numbers, priorities,
//! current values as JSON, billing periods. Pure.

use crate::filing::{self, Filed};
use crate::store::StoreError;
use meterlink_proto::v1::{observation::Body, Observation};
use prost::Message;
use std::collections::BTreeMap;
use std::collections::HashSet;

pub(crate) fn kind(o: &Observation) -> &'static str {
    match o.body {
        Some(Body::Identity(_)) => "identity",
        Some(Body::Meter(_)) => "meter",
        Some(Body::Status(_)) => "status",
        Some(Body::Supplies(_)) => "supplies",
        None => "empty",
    }
}

/// The raw body kept with an observation. A meter reading whose values all
/// land in `readings` (and whose counter descriptions land in `counters`)
/// keeps an empty body: storing each reading twice halved ingest throughput.
/// Anything that would not round-trip that way keeps its full encoding.
pub(crate) fn stored_body(o: &Observation) -> Vec<u8> {
    if let Some(Body::Meter(m)) = &o.body {
        let mut ids = HashSet::new();
        let lossless = !o.serial.is_empty()
            && m.counters
                .iter()
                .all(|c| c.value <= i64::MAX as u64 && ids.insert(c.id.as_str()));
        if lossless {
            return Vec::new();
        }
    }
    o.encode_to_vec()
}

pub(crate) fn request_number(id: i64) -> String {
    format!("SR-{id:06}")
}

pub(crate) fn request_id(number: &str) -> Option<i64> {
    number.strip_prefix("SR-")?.parse().ok()
}

pub(crate) fn anomaly_text(a: &filing::Anomaly) -> String {
    match a {
        filing::Anomaly::Regression { filed, value } => {
            format!("{value} is lower than the filed {filed} (or higher than a later one)")
        }
        filing::Anomaly::Jump {
            filed,
            value,
            pages_per_day,
        } => format!("{value} after {filed} is {pages_per_day} pages a day"),
    }
}

pub(crate) fn priority_str(p: crate::requests::Priority) -> &'static str {
    match p {
        crate::requests::Priority::Low => "low",
        crate::requests::Priority::Normal => "normal",
        crate::requests::Priority::High => "high",
    }
}

/// The billing period whose cutoff is the latest at or before `now`, and
/// that cutoff: ("YYYY-MM", ms).
pub(crate) fn current_period(now: i64, day: u32, tz: chrono_tz::Tz) -> Option<(String, i64)> {
    use chrono::Datelike;
    let local = chrono::DateTime::from_timestamp_millis(now)?.with_timezone(&tz);
    let (y, m) = (local.year(), local.month());
    let this = filing::billing_cutoff_ms(y, m, day, tz)?;
    if now >= this {
        return Some((format!("{y:04}-{m:02}"), this));
    }
    let (py, pm) = if m == 1 { (y - 1, 12) } else { (y, m - 1) };
    Some((
        format!("{py:04}-{pm:02}"),
        filing::billing_cutoff_ms(py, pm, day, tz)?,
    ))
}

/// A product's current values as stored: `{"counter": [value, taken_at_ms]}`.
pub(crate) fn parse_current(
    serial: &str,
    json: &str,
) -> Result<BTreeMap<String, Filed>, StoreError> {
    let raw: BTreeMap<String, (u64, i64)> =
        serde_json::from_str(json).map_err(|e| StoreError::Invalid {
            agent: String::new(),
            seq: 0,
            what: format!("current values of {serial} unreadable: {e}"),
        })?;
    Ok(raw
        .into_iter()
        .map(|(c, (value, taken_at_ms))| (c, Filed { value, taken_at_ms }))
        .collect())
}

/// A product's current values without their times; none when the product
/// has no current values row.
pub(crate) fn current_values(
    serial: &str,
    json: Option<&str>,
) -> Result<BTreeMap<String, u64>, StoreError> {
    Ok(match json {
        Some(j) => parse_current(serial, j)?
            .into_iter()
            .map(|(c, f)| (c, f.value))
            .collect(),
        None => BTreeMap::new(),
    })
}

pub(crate) fn render_current(
    serial: &str,
    m: &BTreeMap<String, Filed>,
) -> Result<String, StoreError> {
    let raw: BTreeMap<&str, (u64, i64)> = m
        .iter()
        .map(|(c, f)| (c.as_str(), (f.value, f.taken_at_ms)))
        .collect();
    serde_json::to_string(&raw).map_err(|e| StoreError::Invalid {
        agent: String::new(),
        seq: 0,
        what: format!("current values of {serial} not writable: {e}"),
    })
}
