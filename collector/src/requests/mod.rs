//! Service-request rules. No IO: device observations and the clock come in
//! as values, the per-product tracking state is handed in and out, and the
//! result is a list of request changes for the store and the portal.
//!
//! - Conditions come from alert rows, error bits, alert descriptions and
//!   console text, matched by TOML rules (`default-rules.toml`).
//! - One open request per product and fingerprint; a condition that comes
//!   back while its request is open adds an occurrence.
//! - A request closes once its condition has stayed clear for the hold-down
//!   time, so a flapping condition does not open and close over and over.
//! - Conditions with `persist_secs` (paper out, door open, a jam) open a
//!   request only when they last that long.
//! - A consumables request when a supply falls to its threshold, once per
//!   cartridge; device-silent and meter-due requests from the clock.

#[cfg(test)]
mod tests;

use meterlink_proto::v1::{DeviceStatus, Supplies};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Incident,
    Consumables,
    MeterAnomaly,
    DeviceSilent,
    MeterDue,
    Move,
    Information,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Incident => "incident",
            Kind::Consumables => "consumables",
            Kind::MeterAnomaly => "meter_anomaly",
            Kind::DeviceSilent => "device_silent",
            Kind::MeterDue => "meter_due",
            Kind::Move => "move",
            Kind::Information => "information",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Normal,
    High,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    #[serde(default)]
    pub severity: Vec<String>,
    #[serde(default)]
    pub training_level: Vec<String>,
    #[serde(default)]
    pub group: Vec<String>,
    #[serde(default)]
    pub alert_codes: Vec<i64>,
    #[serde(default)]
    pub error_bits: Vec<String>,
    /// Matched against each console line.
    #[serde(default, with = "opt_regex")]
    pub console_pattern: Option<regex::Regex>,
    /// Matched against alert descriptions (the alert criteria must match too).
    #[serde(default, with = "opt_regex")]
    pub description_pattern: Option<regex::Regex>,
    /// Its first match in the description or console line is the code.
    #[serde(default, with = "opt_regex")]
    pub code_pattern: Option<regex::Regex>,
    /// None: the condition opens nothing.
    #[serde(default)]
    pub kind: Option<Kind>,
    #[serde(default = "normal")]
    pub priority: Priority,
    #[serde(default)]
    pub persist_secs: u64,
    #[serde(default)]
    pub only_alone: bool,
}

fn normal() -> Priority {
    Priority::Normal
}

mod opt_regex {
    use serde::{Deserialize, Deserializer};

    /// The largest a console pattern may compile to. A console code is a
    /// few characters (the embedded rules' `E\d{3}-\d{4}` is below
    /// it); the regex crate's own bound (10 MiB) let a repeated Unicode
    /// class such as `\d{411}` take a good part of a second to compile,
    /// per rule.
    const SIZE_LIMIT: usize = 256 * 1024;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<regex::Regex>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|p| {
            regex::RegexBuilder::new(&p)
                .size_limit(SIZE_LIMIT)
                .build()
                .map_err(|e| match e {
                    regex::Error::CompiledTooBig(_) => serde::de::Error::custom(format!(
                        "console_pattern {p:?} is too large a regex (over {} KiB compiled): \
                         shorten its repetitions, or use [0-9] for \\d",
                        SIZE_LIMIT / 1024
                    )),
                    e => serde::de::Error::custom(e),
                })
        })
        .transpose()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupplyRule {
    pub threshold_percent: u32,
    pub replaced_above_percent: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    pub hold_down_secs: u64,
    pub silent_after_secs: u64,
    pub meter_due_grace_secs: u64,
    /// After the collector starts, how long the absence rules (device
    /// silent, meter due) wait before judging: agents reconnect and send
    /// what they buffered while it was away.
    #[serde(default = "default_catch_up_secs")]
    pub catch_up_secs: u64,
    pub supplies: SupplyRule,
    pub rules: Vec<Rule>,
}

pub const DEFAULT_RULES: &str = include_str!("default-rules.toml");

/// Twenty times an agent's longest reconnect wait (30 s), with time to send
/// a day's buffer.
fn default_catch_up_secs() -> u64 {
    600
}

/// A rules file that cannot be used: which file, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {what}")]
pub struct RulesError {
    pub file: String,
    pub what: String,
}

impl Rules {
    pub fn parse(file: &str, text: &str) -> Result<Rules, RulesError> {
        let err = |what: String| RulesError {
            file: file.to_string(),
            what,
        };
        let r: Rules = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        for (i, rule) in r.rules.iter().enumerate() {
            let alert = !rule.severity.is_empty()
                || !rule.training_level.is_empty()
                || !rule.group.is_empty()
                || !rule.alert_codes.is_empty()
                || rule.description_pattern.is_some();
            if !alert && rule.error_bits.is_empty() && rule.console_pattern.is_none() {
                return Err(err(format!(
                    "rules[{i}] ({:?}) matches nothing: give alert criteria, error_bits or console_pattern",
                    rule.name
                )));
            }
        }
        Ok(r)
    }

    /// Whether an absence (no report, no billing read) means anything at
    /// `now`: only once the collector, listening since `listening_since`,
    /// has given the agents `catch_up_secs` to deliver. Without it, the
    /// first tick after an outage longer than `silent_after_secs` would
    /// call every device silent while the reports sat in its agents' buffers.
    pub fn judges_absence(&self, now: i64, listening_since: i64) -> bool {
        now.saturating_sub(listening_since) >= (self.catch_up_secs as i64).saturating_mul(1000)
    }

    pub fn defaults() -> Rules {
        Rules::parse("default-rules.toml", DEFAULT_RULES).expect("the embedded rules parse")
    }
}

/// An active device condition that a rule turned into a would-be request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub fingerprint: String,
    pub kind: Kind,
    pub priority: Priority,
    pub rule: String,
    pub code: Option<String>,
    pub text: String,
    pub persist_ms: i64,
}

fn alert_matches(rule: &Rule, a: &meterlink_proto::v1::Alert) -> bool {
    let alert_rule = !rule.severity.is_empty()
        || !rule.training_level.is_empty()
        || !rule.group.is_empty()
        || !rule.alert_codes.is_empty()
        || rule.description_pattern.is_some();
    alert_rule
        && (rule.severity.is_empty() || rule.severity.contains(&a.severity))
        && (rule.training_level.is_empty() || rule.training_level.contains(&a.training_level))
        && (rule.group.is_empty() || rule.group.contains(&a.group))
        && (rule.alert_codes.is_empty() || rule.alert_codes.contains(&a.code))
        && rule
            .description_pattern
            .as_ref()
            .is_none_or(|p| p.is_match(&a.description))
}

fn condition(rule: &Rule, code: Option<String>, text: &str) -> Option<Condition> {
    let kind = rule.kind?;
    let key = code.clone().unwrap_or_else(|| rule.name.clone());
    Some(Condition {
        fingerprint: format!("{}:{key}", kind.as_str()),
        kind,
        priority: rule.priority,
        rule: rule.name.clone(),
        code,
        text: text.to_string(),
        persist_ms: (rule.persist_secs as i64).saturating_mul(1000),
    })
}

fn code_in(rule: &Rule, text: &str) -> Option<String> {
    rule.code_pattern
        .as_ref()
        .and_then(|p| p.find(text))
        .map(|m| m.as_str().to_string())
}

/// The conditions a status observation shows, one per fingerprint.
pub fn conditions(rules: &Rules, s: &DeviceStatus) -> Vec<Condition> {
    let mut out: Vec<(Condition, bool)> = Vec::new();
    let mut push = |c: Option<Condition>, alone: bool| {
        if let Some(c) = c {
            if !out.iter().any(|(o, _)| o.fingerprint == c.fingerprint) {
                out.push((c, alone));
            }
        }
    };
    for a in &s.alerts {
        if let Some(rule) = rules.rules.iter().find(|r| alert_matches(r, a)) {
            let code = code_in(rule, &a.description);
            push(condition(rule, code, &a.description), rule.only_alone);
        }
    }
    for bit in &s.errors {
        if let Some(rule) = rules.rules.iter().find(|r| r.error_bits.contains(bit)) {
            push(condition(rule, None, bit), rule.only_alone);
        }
    }
    for line in &s.console {
        if let Some(rule) = rules
            .rules
            .iter()
            .find(|r| r.console_pattern.as_ref().is_some_and(|p| p.is_match(line)))
        {
            let code = code_in(rule, line);
            push(condition(rule, code, line), rule.only_alone);
        }
    }
    let kinds: Vec<(Kind, bool)> = out.iter().map(|(c, alone)| (c.kind, *alone)).collect();
    out.into_iter()
        .filter(|(c, alone)| !alone || !kinds.iter().any(|(k, a)| *k == c.kind && !a))
        .map(|(c, _)| c)
        .collect()
}

/// A duration for people: "45 s", "30 min", "4 h".
fn span(secs: u64) -> String {
    match secs {
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// What the tracker remembers about one product between observations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Track {
    /// Conditions waiting for their persist time: fingerprint -> first seen.
    pub pending: BTreeMap<String, i64>,
    pub open: BTreeMap<String, OpenRequest>,
    /// Supplies with a consumables request for their current cartridge.
    pub low_supplies: BTreeMap<String, i64>,
    pub last_status_ms: Option<i64>,
    pub last_report_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenRequest {
    pub kind: Kind,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub occurrences: u32,
    /// Since when the condition is clear (None while it is active).
    pub clear_since_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Open {
        fingerprint: String,
        kind: Kind,
        priority: Priority,
        title: String,
        code: Option<String>,
        /// Knowledge-base article for the code, when there is one.
        article: Option<String>,
        first_seen_ms: i64,
    },
    /// The condition came back while its request was open.
    Occurrence {
        fingerprint: String,
        occurrences: u32,
        at_ms: i64,
    },
    /// Still there (updates "last seen"; not sent to the portal).
    Seen { fingerprint: String, at_ms: i64 },
    Close {
        fingerprint: String,
        reason: String,
        at_ms: i64,
    },
}

/// Looks up the knowledge-base article for a code (no IO: a map the caller loaded).
pub type Articles = BTreeMap<String, String>;

impl Track {
    fn open(&mut self, c: &Condition, first_seen: i64, now: i64, articles: &Articles) -> Change {
        self.open.insert(
            c.fingerprint.clone(),
            OpenRequest {
                kind: c.kind,
                first_seen_ms: first_seen,
                last_seen_ms: now,
                occurrences: 1,
                clear_since_ms: None,
            },
        );
        Change::Open {
            fingerprint: c.fingerprint.clone(),
            kind: c.kind,
            priority: c.priority,
            title: match &c.code {
                Some(code) if !c.text.contains(code.as_str()) => {
                    format!("{}: {code} {}", c.rule, c.text)
                }
                _ => format!("{}: {}", c.rule, c.text),
            },
            code: c.code.clone(),
            article: c.code.as_ref().and_then(|k| articles.get(k).cloned()),
            first_seen_ms: first_seen,
        }
    }

    /// Applies the conditions of one status observation taken at `now`.
    /// A status older than the last one applied changes nothing.
    pub fn observe_status(
        &mut self,
        rules: &Rules,
        status: &DeviceStatus,
        now: i64,
        articles: &Articles,
    ) -> Vec<Change> {
        let mut out = self.heard_from(now);
        if self.last_status_ms.is_some_and(|t| now < t) {
            return out;
        }
        self.last_status_ms = Some(now);
        let active = conditions(rules, status);
        for c in &active {
            if let Some(o) = self.open.get_mut(&c.fingerprint) {
                o.last_seen_ms = now;
                if o.clear_since_ms.take().is_some() {
                    o.occurrences += 1;
                    out.push(Change::Occurrence {
                        fingerprint: c.fingerprint.clone(),
                        occurrences: o.occurrences,
                        at_ms: now,
                    });
                } else {
                    out.push(Change::Seen {
                        fingerprint: c.fingerprint.clone(),
                        at_ms: now,
                    });
                }
                continue;
            }
            let first = *self.pending.entry(c.fingerprint.clone()).or_insert(now);
            if now - first >= c.persist_ms {
                self.pending.remove(&c.fingerprint);
                out.push(self.open(c, first, now, articles));
            }
        }
        // Status-driven conditions that are gone.
        self.pending
            .retain(|fp, _| active.iter().any(|c| &c.fingerprint == fp));
        let status_kinds = |k: Kind| matches!(k, Kind::Incident) || k == Kind::Consumables;
        for (fp, o) in self.open.iter_mut() {
            if !status_kinds(o.kind) || fp.starts_with("consumables:supply:") {
                continue;
            }
            if !active.iter().any(|c| &c.fingerprint == fp) {
                o.clear_since_ms.get_or_insert(now);
            }
        }
        out.extend(self.close_held_down(rules, now));
        out
    }

    /// The earliest time at which `tick` would close a request that is
    /// clear and held down, if any: the store wakes the track then.
    pub fn due_ms(&self, rules: &Rules) -> Option<i64> {
        let hold = (rules.hold_down_secs as i64).saturating_mul(1000);
        self.open
            .values()
            .filter_map(|o| o.clear_since_ms.map(|t| t.saturating_add(hold)))
            .min()
    }

    /// Closes the requests whose condition has been clear for the hold-down time.
    fn close_held_down(&mut self, rules: &Rules, now: i64) -> Vec<Change> {
        let hold = (rules.hold_down_secs as i64).saturating_mul(1000);
        let due: Vec<String> = self
            .open
            .iter()
            .filter(|(_, o)| o.clear_since_ms.is_some_and(|t| now - t >= hold))
            .map(|(fp, _)| fp.clone())
            .collect();
        due.into_iter()
            .map(|fp| {
                self.open.remove(&fp);
                Change::Close {
                    reason: format!("condition clear for {}", span(rules.hold_down_secs)),
                    fingerprint: fp,
                    at_ms: now,
                }
            })
            .collect()
    }

    /// Applies one supplies observation: a consumables request when a
    /// supply falls to the threshold, once per cartridge; it closes when a
    /// new cartridge (a level above `replaced_above_percent`) is seen.
    pub fn observe_supplies(
        &mut self,
        rules: &Rules,
        s: &Supplies,
        now: i64,
        articles: &Articles,
    ) -> Vec<Change> {
        let mut out = self.heard_from(now);
        for sup in &s.supplies {
            let key = format!("{}:{}", sup.index, sup.description);
            let fp = format!("consumables:supply:{key}");
            let low = match sup.percent {
                Some(p) => p <= rules.supplies.threshold_percent,
                None => sup.state == "low" || sup.state == "empty",
            };
            let replaced = sup
                .percent
                .is_some_and(|p| p > rules.supplies.replaced_above_percent)
                || (sup.percent.is_none() && sup.state == "ok");
            if low && !self.low_supplies.contains_key(&key) {
                self.low_supplies.insert(key.clone(), now);
                let c = Condition {
                    fingerprint: fp.clone(),
                    kind: Kind::Consumables,
                    priority: Priority::Normal,
                    rule: "supply low".into(),
                    code: None,
                    text: match sup.percent {
                        Some(p) => format!("{} at {p}%", sup.description),
                        None => format!("{} {}", sup.description, sup.state),
                    },
                    persist_ms: 0,
                };
                out.push(self.open(&c, now, now, articles));
            } else if replaced
                && self.low_supplies.remove(&key).is_some()
                && self.open.remove(&fp).is_some()
            {
                out.push(Change::Close {
                    fingerprint: fp,
                    reason: "new cartridge".into(),
                    at_ms: now,
                });
            }
        }
        out
    }

    /// Any observation from the product: a device-silent request closes.
    pub fn heard_from(&mut self, now: i64) -> Vec<Change> {
        self.last_report_ms = Some(self.last_report_ms.map_or(now, |t| t.max(now)));
        match self.open.remove("device_silent:") {
            Some(_) => vec![Change::Close {
                fingerprint: "device_silent:".into(),
                reason: "the device reports again".into(),
                at_ms: now,
            }],
            None => Vec::new(),
        }
    }

    /// The clock's rules at `now`: device silent (eMaintenance products only)
    /// and hold-down closes that no observation has triggered.
    pub fn tick(&mut self, rules: &Rules, emaintenance: bool, now: i64) -> Vec<Change> {
        let mut out = Vec::new();
        let silent_ms = (rules.silent_after_secs as i64).saturating_mul(1000);
        if emaintenance && !self.open.contains_key("device_silent:") {
            if let Some(last) = self.last_report_ms.filter(|t| now - t >= silent_ms) {
                let c = Condition {
                    fingerprint: "device_silent:".into(),
                    kind: Kind::DeviceSilent,
                    priority: Priority::Normal,
                    rule: "device silent".into(),
                    code: None,
                    text: format!("no report for {}", span(((now - last) / 1000) as u64)),
                    persist_ms: 0,
                };
                out.push(self.open(&c, last, now, &Articles::new()));
            }
        }
        out.extend(self.close_held_down(rules, now));
        out
    }

    /// Meter due: after `cutoff + grace` without a billing read, a request
    /// for the period; it closes when the billing read is there.
    pub fn meter_due(
        &mut self,
        rules: &Rules,
        period: &str,
        cutoff_ms: i64,
        has_billing_read: bool,
        now: i64,
    ) -> Vec<Change> {
        let fp = format!("meter_due:{period}");
        let grace = (rules.meter_due_grace_secs as i64).saturating_mul(1000);
        if has_billing_read {
            return match self.open.remove(&fp) {
                Some(_) => vec![Change::Close {
                    fingerprint: fp,
                    reason: "billing read filed".into(),
                    at_ms: now,
                }],
                None => Vec::new(),
            };
        }
        if now >= cutoff_ms + grace && !self.open.contains_key(&fp) {
            let c = Condition {
                fingerprint: fp,
                kind: Kind::MeterDue,
                priority: Priority::Normal,
                rule: "meter reading due".into(),
                code: None,
                text: format!("no billing read for {period}"),
                persist_ms: 0,
            };
            return vec![self.open(&c, cutoff_ms, now, &Articles::new())];
        }
        Vec::new()
    }

    /// Applies the anomalies of one meter observation, `(counter, what)`
    /// each: one meter-anomaly request per product, however many counters
    /// a reset or a bad read touched; a later observation with anomalies
    /// adds an occurrence. Meter anomalies close only by hand.
    pub fn meter_anomaly(&mut self, anomalies: &[(String, String)], now: i64) -> Vec<Change> {
        let Some((counter, what)) = anomalies.first() else {
            return Vec::new();
        };
        let fp = "meter_anomaly:".to_string();
        if let Some(o) = self.open.get_mut(&fp) {
            o.occurrences += 1;
            o.last_seen_ms = now;
            return vec![Change::Occurrence {
                fingerprint: fp,
                occurrences: o.occurrences,
                at_ms: now,
            }];
        }
        let text = match anomalies.len() {
            1 => format!("{counter}: {what}"),
            n => format!("{counter}: {what} (and {} more counters)", n - 1),
        };
        let c = Condition {
            fingerprint: fp,
            kind: Kind::MeterAnomaly,
            priority: Priority::Normal,
            rule: "meter anomaly".into(),
            code: None,
            text,
            persist_ms: 0,
        };
        vec![self.open(&c, now, now, &Articles::new())]
    }
}
