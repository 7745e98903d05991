//! Device profiles as data: how to recognise a device, which OIDs to read,
//! and how to turn what was read into a [`DeviceReading`]. No IO: profile
//! texts in, a read plan out; a snapshot of OIDs in, an observation out.
//! Uses only the codec's values and the observation types (invariant A3).
//!
//! The profiles shipped with meterlink are embedded in the binary from
//! `agent/profiles/*.toml`; a directory of files with the same schema can add
//! profiles or replace embedded ones by name.

mod observe;
pub mod printer_mib;
#[cfg(test)]
mod tests;

#[cfg(test)]
use crate::snmp::oid;
use crate::snmp::{Oid, Value};
use serde::Deserialize;
use std::collections::BTreeMap;

pub use observe::{observe, printable as printable_text};

/// Everything read from one device, by OID.
pub type Snapshot = BTreeMap<Oid, Value>;

const EMBEDDED: &[(&str, &str)] = &[
    (
        "printer-mib.toml",
        include_str!("../../profiles/printer-mib.toml"),
    ),
    ("canon.toml", include_str!("../../profiles/canon.toml")),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("device profile {file}: {what}")]
pub struct ProfileError {
    pub file: String,
    pub what: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Detect {
    #[serde(default)]
    pub sys_object_id_prefixes: Vec<Oid>,
    /// Case-insensitive patterns where `*` matches any text.
    #[serde(default)]
    pub sys_descr_patterns: Vec<String>,
    /// Match any device that answers under the Printer-MIB.
    #[serde(default)]
    pub requires_printer_mib: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityOids {
    #[serde(default)]
    pub serial: Vec<Oid>,
    #[serde(default)]
    pub model: Vec<Oid>,
    #[serde(default)]
    pub firmware: Vec<Oid>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalarCounter {
    pub id: String,
    pub name: String,
    pub oid: Oid,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub unit_oid: Option<Oid>,
    #[serde(default)]
    pub wraps_at_bits: Option<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableShape {
    /// Value column indexed by counter number.
    Numbered,
    /// A name column and a value column sharing an index; rows matched by name.
    Named,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterTable {
    pub shape: TableShape,
    pub value_column: Oid,
    #[serde(default)]
    pub name_column: Option<Oid>,
    pub id_prefix: String,
    #[serde(default = "default_unit")]
    pub unit: String,
    #[serde(default)]
    pub wraps_at_bits: Option<u8>,
}

fn default_unit() -> String {
    "impressions".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Derived {
    pub id: String,
    pub name: String,
    pub alternatives: Vec<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    vendor: Option<String>,
    #[serde(default)]
    extends: Option<String>,
    #[serde(default)]
    detect: Detect,
    #[serde(default)]
    identity: IdentityOids,
    #[serde(default)]
    counter: Vec<ScalarCounter>,
    #[serde(default)]
    counter_table: Vec<CounterTable>,
    #[serde(default)]
    counter_names: BTreeMap<String, String>,
    #[serde(default)]
    derived: Vec<Derived>,
    #[serde(default)]
    enterprises: BTreeMap<String, String>,
}

/// TOML keys are strings; these tables are keyed by numbers.
fn numeric_keys(
    table: &BTreeMap<String, String>,
    what: &str,
) -> Result<BTreeMap<u32, String>, String> {
    table
        .iter()
        .map(|(k, v)| {
            k.parse::<u32>()
                .map(|n| (n, v.clone()))
                .map_err(|_| format!("[{what}] key {k:?} is not a number"))
        })
        .collect()
}

/// A profile with its parent's parts merged in.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub description: String,
    pub vendor: Option<String>,
    pub detect: Detect,
    pub identity: IdentityOids,
    pub counters: Vec<ScalarCounter>,
    pub tables: Vec<CounterTable>,
    pub counter_names: BTreeMap<u32, String>,
    pub derived: Vec<Derived>,
    pub enterprises: BTreeMap<u32, String>,
}

#[derive(Debug, Clone)]
pub struct ProfileSet {
    pub profiles: Vec<Profile>,
    /// Every scalar any profile needs, sorted; computed once.
    scalars: Vec<Oid>,
}

impl ProfileSet {
    /// The profiles built into the binary.
    pub fn embedded() -> ProfileSet {
        Self::from_sources(EMBEDDED.iter().map(|(n, t)| (n.to_string(), t.to_string())))
            .expect("embedded profiles are valid (checked by tests)")
    }

    /// The embedded profiles with `extra` files added; a file whose profile
    /// name equals an embedded one replaces it.
    pub fn with_overrides(
        extra: impl IntoIterator<Item = (String, String)>,
    ) -> Result<ProfileSet, ProfileError> {
        let mut all: Vec<(String, String)> = EMBEDDED
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        all.extend(extra);
        Self::from_sources(all)
    }

    pub fn from_sources(
        files: impl IntoIterator<Item = (String, String)>,
    ) -> Result<ProfileSet, ProfileError> {
        let mut parsed: BTreeMap<String, (String, ProfileFile)> = BTreeMap::new();
        for (file, text) in files {
            let p: ProfileFile = toml::from_str(&text).map_err(|e| ProfileError {
                file: file.clone(),
                what: e.to_string(),
            })?;
            // Later files win: overrides come after the embedded ones.
            parsed.insert(p.name.clone(), (file, p));
        }
        let mut profiles = Vec::new();
        for (name, (file, _)) in &parsed {
            profiles.push(resolve(name, file, &parsed, 0)?);
        }
        let scalars = scalars_of(&profiles);
        Ok(ProfileSet { profiles, scalars })
    }

    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.name == name)
    }

    /// Every scalar any profile may need, read in the first GET of a device.
    pub fn scalar_oids(&self) -> &[Oid] {
        &self.scalars
    }

    /// Picks the profile for a device from its first GET. None: not a printer
    /// that any profile knows.
    pub fn recognise(&self, snap: &Snapshot) -> Option<&Profile> {
        let sys_oid = match snap.get(&*printer_mib::SYS_OBJECT_ID) {
            Some(Value::ObjectId(o)) => Some(o),
            _ => None,
        };
        let descr = snap
            .get(&*printer_mib::SYS_DESCR)
            .and_then(|v| v.as_bytes())
            .map(|b| String::from_utf8_lossy(b).to_string());
        let printer = has_printer_mib(snap);
        let mut best: Option<(usize, &Profile)> = None;
        for p in &self.profiles {
            let d = &p.detect;
            let mut score = 0;
            if let Some(o) = sys_oid {
                if let Some(len) = d
                    .sys_object_id_prefixes
                    .iter()
                    .filter(|pre| o.starts_with(pre))
                    .map(|pre| pre.arcs().len())
                    .max()
                {
                    score = 1000 + len;
                }
            }
            if score == 0 {
                if let Some(s) = &descr {
                    if d.sys_descr_patterns.iter().any(|pat| glob_match(pat, s)) {
                        score = 500;
                    }
                }
            }
            if score == 0 && d.requires_printer_mib && printer {
                score = 100;
            }
            if score > 0 && best.is_none_or(|(b, _)| score > b) {
                best = Some((score, p));
            }
        }
        best.map(|(_, p)| p)
    }
}

fn scalars_of(profiles: &[Profile]) -> Vec<Oid> {
    let mut v = vec![
        printer_mib::SYS_DESCR.clone(),
        printer_mib::SYS_OBJECT_ID.clone(),
        printer_mib::HR_DEVICE_STATUS.clone(),
        printer_mib::HR_PRINTER_STATUS.clone(),
        printer_mib::HR_PRINTER_ERROR_STATE.clone(),
    ];
    for p in profiles {
        v.extend(p.identity.serial.iter().cloned());
        v.extend(p.identity.model.iter().cloned());
        v.extend(p.identity.firmware.iter().cloned());
        for c in &p.counters {
            v.push(c.oid.clone());
            v.extend(c.unit_oid.iter().cloned());
        }
    }
    v.sort();
    v.dedup();
    v
}

fn resolve(
    name: &str,
    file: &str,
    all: &BTreeMap<String, (String, ProfileFile)>,
    depth: usize,
) -> Result<Profile, ProfileError> {
    let err = |what: String| ProfileError {
        file: file.to_string(),
        what,
    };
    if depth > 8 {
        return Err(err(format!("'extends' chain through {name} is a loop")));
    }
    let (_, f) = all
        .get(name)
        .ok_or_else(|| err(format!("extends unknown profile '{name}'")))?;
    for t in &f.counter_table {
        if t.shape == TableShape::Named && t.name_column.is_none() {
            return Err(err(format!(
                "counter_table with value_column {} has shape \"named\" but no name_column",
                t.value_column
            )));
        }
    }
    let own = Profile {
        name: f.name.clone(),
        description: f.description.clone(),
        vendor: f.vendor.clone(),
        detect: f.detect.clone(),
        identity: f.identity.clone(),
        counters: f.counter.clone(),
        tables: f.counter_table.clone(),
        counter_names: numeric_keys(&f.counter_names, "counter_names").map_err(err)?,
        derived: f.derived.clone(),
        enterprises: numeric_keys(&f.enterprises, "enterprises").map_err(err)?,
    };
    let Some(parent_name) = &f.extends else {
        return Ok(own);
    };
    let parent = resolve(parent_name, file, all, depth + 1)?;
    let cat = |a: &[Oid], b: &[Oid]| a.iter().chain(b).cloned().collect::<Vec<_>>();
    let mut names = parent.counter_names.clone();
    names.extend(own.counter_names);
    let mut enterprises = parent.enterprises.clone();
    enterprises.extend(own.enterprises);
    let mut derived = own.derived.clone();
    derived.extend(
        parent
            .derived
            .into_iter()
            .filter(|d| !own.derived.iter().any(|o| o.id == d.id)),
    );
    Ok(Profile {
        name: own.name,
        description: own.description,
        vendor: own.vendor.or(parent.vendor),
        detect: own.detect,
        identity: IdentityOids {
            serial: cat(&own.identity.serial, &parent.identity.serial),
            model: cat(&own.identity.model, &parent.identity.model),
            firmware: cat(&own.identity.firmware, &parent.identity.firmware),
        },
        counters: parent.counters.into_iter().chain(own.counters).collect(),
        tables: own.tables.into_iter().chain(parent.tables).collect(),
        counter_names: names,
        derived,
        enterprises,
    })
}

impl Profile {
    /// Table columns this profile reads after recognition, walked side by side.
    pub fn walk_columns(&self) -> Vec<Oid> {
        let mut v = vec![printer_mib::IF_PHYS_ADDRESS.clone()];
        for t in &self.tables {
            v.extend(t.name_column.iter().cloned());
            v.push(t.value_column.clone());
        }
        let supplies = printer_mib::SUPPLIES_ENTRY.clone();
        v.extend(
            printer_mib::SUPPLY_COLUMNS
                .iter()
                .map(|c| supplies.child(*c)),
        );
        let alerts = printer_mib::ALERT_ENTRY.clone();
        v.extend(printer_mib::ALERT_COLUMNS.iter().map(|c| alerts.child(*c)));
        v.push(printer_mib::CONSOLE_TEXT.clone());
        for (entry, cols) in [
            (&*printer_mib::INPUT_ENTRY, &printer_mib::INPUT_COLUMNS[..]),
            (
                &*printer_mib::OUTPUT_ENTRY,
                &printer_mib::OUTPUT_COLUMNS[..],
            ),
            (
                &*printer_mib::MEDIA_PATH_ENTRY,
                &printer_mib::MEDIA_PATH_COLUMNS[..],
            ),
            (
                &*printer_mib::HR_DEVICE_ENTRY,
                &printer_mib::HR_DEVICE_COLUMNS[..],
            ),
        ] {
            v.extend(cols.iter().map(|c| entry.child(*c)));
        }
        v.dedup();
        v
    }
}

/// True when anything under the Printer-MIB answered.
pub fn has_printer_mib(snap: &Snapshot) -> bool {
    let root = printer_mib::PRINTER_MIB.clone();
    snap.range(root.clone()..)
        .take_while(|(o, _)| o.starts_with(&root))
        .any(|(_, v)| !v.is_exception())
}

/// Case-insensitive match where `*` stands for any run of characters.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// The outcome of executing the read plan, whoever executed it.
#[derive(Debug, Clone)]
pub struct PlannedRead<'a> {
    pub profile: Option<&'a Profile>,
    pub snapshot: Snapshot,
}

/// Executes the read plan against a recording instead of a device: the same
/// GET, the same Printer-MIB probe and the same column walks the engine
/// performs, answered from the recorded values. Used by data-driven tests and
/// to compare engine reads with the recording they came from.
pub fn read_recording<'a>(set: &'a ProfileSet, rec: &[(Oid, Value)]) -> PlannedRead<'a> {
    let index: BTreeMap<&Oid, &Value> = rec.iter().map(|(o, v)| (o, v)).collect();
    let mut snap = Snapshot::new();
    for o in set.scalar_oids() {
        if let Some(v) = index.get(o) {
            snap.insert(o.clone(), (*v).clone());
        }
    }
    if !has_printer_mib(&snap) {
        let root = printer_mib::PRINTER_MIB.clone();
        if let Some((o, v)) = rec.iter().find(|(o, _)| *o > root) {
            if o.starts_with(&root) {
                snap.insert(o.clone(), v.clone());
            }
        }
    }
    let profile = set.recognise(&snap);
    if let Some(p) = profile {
        for col in p.walk_columns() {
            for (o, v) in rec.iter().filter(|(o, _)| o.starts_with(&col) && *o != col) {
                snap.insert(o.clone(), v.clone());
            }
        }
    }
    PlannedRead {
        profile,
        snapshot: snap,
    }
}
