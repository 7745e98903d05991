//! Meter-reading filing rules. No IO: the store hands in the neighbours of
//! an incoming reading in the filed history and files what comes out.
//!
//! Invariant: filed history of a counter never moves backwards. A value
//! lower than what is filed before it (board swap, half-failed read) or an
//! implausible jump becomes an anomaly, kept beside the history, never in it.
//! A counter that the profile says wraps (Counter32) continues past 2^bits:
//! filed values are extended (raw + wraps x 2^bits), the raw value is kept.

pub mod billing;
#[cfg(test)]
mod tests;

use chrono::{Datelike, NaiveDate, TimeZone};
use serde::{Deserialize, Serialize};

const DAY_MS: f64 = 86_400_000.0;

/// Filing settings (collector.toml `[filing]`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FilingPolicy {
    /// More pages than this per day (over at least one day) is implausible.
    pub max_pages_per_day: u64,
    /// A drop from within this many counts of the wrap point is taken as a
    /// wrap, not a regression (only for counters that wrap).
    pub wrap_margin: u64,
}

impl Default for FilingPolicy {
    fn default() -> Self {
        FilingPolicy {
            max_pages_per_day: 100_000,
            wrap_margin: 10_000_000,
        }
    }
}

/// A reading already in the filed (good) history of one product and counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filed {
    /// Extended value (wraps included).
    pub value: u64,
    pub taken_at_ms: i64,
}

/// A reading arriving for one product and counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Incoming {
    /// The value as the device reported it.
    pub raw: u64,
    pub taken_at_ms: i64,
    /// 0 when the counter does not wrap (as the profile says).
    pub wraps_at_bits: u32,
}

/// Why a reading is an anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Anomaly {
    /// Lower than the filed reading before it (or higher than the one after
    /// it, for a late arrival).
    Regression { filed: u64, value: u64 },
    /// More pages per day than the policy allows since the filed reading before it.
    Jump {
        filed: u64,
        value: u64,
        pages_per_day: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Goes into the history with this extended value; `latest` when no
    /// filed reading is newer (it becomes the current value).
    File { value: u64, latest: bool },
    /// The same reading (time and value) is already filed.
    Duplicate,
    /// Kept as an anomaly; the history is not touched.
    Anomaly(Anomaly),
}

/// Decides how to file `r`, given the filed readings of the same product and
/// counter just before (`before`, taken at or before `r`) and just after it
/// (`after`, taken later; only for late arrivals).
pub fn decide(
    before: Option<Filed>,
    after: Option<Filed>,
    r: Incoming,
    policy: &FilingPolicy,
) -> Decision {
    let value = extend(before, r, policy);
    if let Some(b) = before {
        if b.taken_at_ms == r.taken_at_ms && b.value == value {
            return Decision::Duplicate;
        }
        if value < b.value {
            return Decision::Anomaly(Anomaly::Regression {
                filed: b.value,
                value,
            });
        }
        let days = ((r.taken_at_ms - b.taken_at_ms) as f64 / DAY_MS).max(1.0);
        let pages = value - b.value;
        if pages as f64 > policy.max_pages_per_day as f64 * days {
            return Decision::Anomaly(Anomaly::Jump {
                filed: b.value,
                value,
                pages_per_day: (pages as f64 / days) as u64,
            });
        }
    }
    if let Some(a) = after {
        if value > a.value {
            return Decision::Anomaly(Anomaly::Regression {
                filed: a.value,
                value,
            });
        }
    }
    Decision::File {
        value,
        latest: after.is_none(),
    }
}

/// The extended value of `r`: its raw value plus the wraps the history
/// before it has seen, plus one more when it has just wrapped.
fn extend(before: Option<Filed>, r: Incoming, policy: &FilingPolicy) -> u64 {
    let bits = r.wraps_at_bits;
    let Some(b) = before.filter(|_| (1..64).contains(&bits)) else {
        return r.raw;
    };
    let span = 1u64 << bits;
    if r.raw >= span {
        // Not a value of a counter of this width: leave it to the checks.
        return r.raw;
    }
    let base = b.value - b.value % span;
    let here = base + r.raw;
    let prev_raw = b.value % span;
    let near_top = prev_raw >= span.saturating_sub(policy.wrap_margin);
    let near_bottom = r.raw < policy.wrap_margin;
    if here < b.value && near_top && near_bottom {
        here.saturating_add(span)
    } else {
        here
    }
}

/// A manual reading refused, with what the user should know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManualRefused {
    #[error("this product reports its meter readings automatically (eMaintenance); manual readings are not taken")]
    Automatic,
    #[error("{value} is lower than the filed reading {filed}; check the value")]
    Lower { filed: u64, value: u64 },
    #[error(
        "{value} is higher than the later filed reading {filed}; check the value and its date"
    )]
    HigherThanLater { filed: u64, value: u64 },
    #[error("{value} means {pages_per_day} pages a day since the filed reading {filed}; check the value")]
    Implausible {
        filed: u64,
        value: u64,
        pages_per_day: u64,
    },
    #[error("this reading is already filed")]
    Duplicate,
}

/// A manual reading is taken only for products without eMaintenance, and is
/// checked like an automatic one; what would be an anomaly is refused.
pub fn decide_manual(
    emaintenance: bool,
    before: Option<Filed>,
    after: Option<Filed>,
    r: Incoming,
    policy: &FilingPolicy,
) -> Result<Decision, ManualRefused> {
    if emaintenance {
        return Err(ManualRefused::Automatic);
    }
    match decide(before, after, r, policy) {
        d @ Decision::File { .. } => Ok(d),
        Decision::Duplicate => Err(ManualRefused::Duplicate),
        Decision::Anomaly(Anomaly::Regression { filed, value }) if value < filed => {
            Err(ManualRefused::Lower { filed, value })
        }
        Decision::Anomaly(Anomaly::Regression { filed, value }) => {
            Err(ManualRefused::HigherThanLater { filed, value })
        }
        Decision::Anomaly(Anomaly::Jump {
            filed,
            value,
            pages_per_day,
        }) => Err(ManualRefused::Implausible {
            filed,
            value,
            pages_per_day,
        }),
    }
}

/// The billing cutoff of a period: `billing_day` (1-31, clamped to the
/// month's last day) of `year`/`month`, at midnight in `tz`, in ms.
pub fn billing_cutoff_ms(
    year: i32,
    month: u32,
    billing_day: u32,
    tz: chrono_tz::Tz,
) -> Option<i64> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    let last_day = next.pred_opt()?.day();
    let day = first.with_day(billing_day.clamp(1, last_day))?;
    let midnight = day.and_hms_opt(0, 0, 0)?;
    // earliest(): a midnight skipped by a DST change falls to the next valid instant.
    let at = tz.from_local_datetime(&midnight).earliest().or_else(|| {
        tz.from_local_datetime(&(midnight + chrono::Duration::hours(1)))
            .earliest()
    })?;
    Some(at.timestamp_millis())
}

/// The billing read: the first good reading taken at or after the cutoff.
/// `filed` is the good history of one product and counter, in any order.
pub fn billing_read(filed: &[Filed], cutoff_ms: i64) -> Option<Filed> {
    filed
        .iter()
        .filter(|f| f.taken_at_ms >= cutoff_ms)
        .min_by_key(|f| f.taken_at_ms)
        .copied()
}

/// What happens to observations of a serial no product has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnknownSerial {
    /// Listed for an operator to assign.
    Unassigned,
    /// Created as a product of the agent's account (the account's option).
    Create { account: String },
}

pub fn unknown_serial(agent_account: Option<&str>, auto_create: bool) -> UnknownSerial {
    match agent_account {
        Some(a) if auto_create => UnknownSerial::Create { account: a.into() },
        _ => UnknownSerial::Unassigned,
    }
}
