//! Snapshot in, observation out.

use super::{printer_mib as pm, Profile, Snapshot, TableShape};
use crate::observation::{
    Alert, Component, Counter, DerivedCounter, DeviceReading, Identity, Status, Supply,
};
use crate::snmp::{Oid, Value};
use std::collections::BTreeMap;

/// Builds the observation of one device from what was read.
pub fn observe(profile: &Profile, snap: &Snapshot, address: &str, version: &str) -> DeviceReading {
    let counters = counters(profile, snap);
    let derived = derived(profile, &counters);
    DeviceReading {
        address: address.to_string(),
        snmp_version: version.to_string(),
        profile: profile.name.clone(),
        identity: identity(profile, snap),
        counters,
        derived,
        supplies: supplies(snap),
        status: status(snap),
        configuration: configuration(snap),
    }
}

/// Text of an OctetString, if it is printable: trailing NULs and spaces are
/// dropped, and a value with control characters or invalid UTF-8 is not text.
pub fn printable(v: &Value) -> Option<String> {
    let b = v.as_bytes()?;
    let s = std::str::from_utf8(b).ok()?;
    let s = s
        .trim_end_matches(['\0', ' ', '\r', '\n', '\t'])
        .trim_start();
    if s.is_empty() || s.chars().any(|c| c.is_control()) {
        return None;
    }
    Some(s.to_string())
}

fn first_text(snap: &Snapshot, oids: &[Oid]) -> Option<String> {
    oids.iter().find_map(|o| snap.get(o).and_then(printable))
}

/// Rows of a column: (index suffix, value).
fn column<'a>(snap: &'a Snapshot, col: &Oid) -> impl Iterator<Item = (Vec<u32>, &'a Value)> {
    let root = col.clone();
    let n = col.arcs().len();
    snap.range(col.clone()..)
        .take_while(move |(o, _)| o.starts_with(&root))
        .filter_map(move |(o, v)| {
            let idx = o.arcs()[n..].to_vec();
            (!idx.is_empty() && !v.is_exception()).then_some((idx, v))
        })
}

fn identity(p: &Profile, snap: &Snapshot) -> Identity {
    let sys_object_id = match snap.get(&*pm::SYS_OBJECT_ID) {
        Some(Value::ObjectId(o)) => Some(o.clone()),
        _ => None,
    };
    let vendor = p.vendor.clone().or_else(|| {
        let o = sys_object_id.as_ref()?;
        let a = o.arcs();
        if a.len() > 6 && a[..6] == [1, 3, 6, 1, 4, 1] {
            p.enterprises.get(&a[6]).cloned()
        } else {
            None
        }
    });
    let mac = column(snap, &pm::IF_PHYS_ADDRESS).find_map(|(_, v)| {
        let b = v.as_bytes()?;
        (b.len() == 6 && b.iter().any(|x| *x != 0)).then(|| {
            b.iter()
                .map(|x| format!("{x:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        })
    });
    Identity {
        vendor,
        model: first_text(snap, &p.identity.model),
        serial: first_text(snap, &p.identity.serial),
        firmware: first_text(snap, &p.identity.firmware),
        sys_object_id: sys_object_id.map(|o| o.to_string()),
        sys_descr: snap.get(&*pm::SYS_DESCR).and_then(printable),
        mac,
    }
}

/// Counter names in tables are often sent as hex text ("546F74616C2031");
/// decode that when it yields printable text.
pub fn counter_name_text(v: &Value) -> Option<String> {
    let raw = printable(v)?;
    let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.len() >= 4
        && compact.len().is_multiple_of(2)
        && compact.chars().all(|c| c.is_ascii_hexdigit())
    {
        if let Some(b) = crate::snmp::snmprec::decode_hex(&compact) {
            if let Some(s) = printable(&Value::OctetString(b)) {
                return Some(s);
            }
        }
    }
    Some(raw)
}

fn normalise(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn slug(name: &str) -> String {
    let mut s = String::new();
    for c in name.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c);
        } else if !s.ends_with('-') {
            s.push('-');
        }
    }
    s.trim_matches('-').to_string()
}

fn counters(p: &Profile, snap: &Snapshot) -> Vec<Counter> {
    let by_name: BTreeMap<String, u32> = p
        .counter_names
        .iter()
        .map(|(n, name)| (normalise(name), *n))
        .collect();
    let mut out: Vec<Counter> = Vec::new();
    let push = |c: Counter, out: &mut Vec<Counter>| {
        if !out.iter().any(|x| x.id == c.id) {
            out.push(c);
        }
    };
    for t in &p.tables {
        match t.shape {
            TableShape::Numbered => {
                for (idx, v) in column(snap, &t.value_column) {
                    let (Some(value), Some(&n)) = (v.as_u64(), idx.last()) else {
                        continue;
                    };
                    let name = p
                        .counter_names
                        .get(&n)
                        .cloned()
                        .unwrap_or_else(|| format!("Counter {n}"));
                    let mut o = t.value_column.clone();
                    o.0.extend(&idx);
                    push(
                        Counter {
                            id: format!("{}.{n}", t.id_prefix),
                            name,
                            value,
                            unit: t.unit.clone(),
                            oid: o.to_string(),
                            wraps_at_bits: wrap_bits(t.wraps_at_bits, v),
                        },
                        &mut out,
                    );
                }
            }
            TableShape::Named => {
                let Some(name_col) = &t.name_column else {
                    continue;
                };
                for (idx, nv) in column(snap, name_col) {
                    let Some(name) = counter_name_text(nv) else {
                        continue;
                    };
                    let mut o = t.value_column.clone();
                    o.0.extend(&idx);
                    let Some(value) = snap.get(&o).and_then(|v| v.as_u64()) else {
                        continue;
                    };
                    let id = match by_name.get(&normalise(&name)) {
                        Some(n) => format!("{}.{n}", t.id_prefix),
                        None => format!("{}.{}", t.id_prefix, slug(&name)),
                    };
                    let wraps = wrap_bits(t.wraps_at_bits, &snap[&o]);
                    push(
                        Counter {
                            id,
                            name,
                            value,
                            unit: t.unit.clone(),
                            oid: o.to_string(),
                            wraps_at_bits: wraps,
                        },
                        &mut out,
                    );
                }
            }
        }
    }
    out.sort_by_key(|c| {
        let n: u64 =
            c.id.rsplit('.')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(u64::MAX);
        (
            c.id.split('.').next().unwrap_or("").to_string(),
            n,
            c.id.clone(),
        )
    });
    for c in &p.counters {
        let Some(v) = snap.get(&c.oid) else { continue };
        let Some(value) = v.as_u64() else { continue };
        let unit = c
            .unit_oid
            .as_ref()
            .and_then(|u| snap.get(u))
            .and_then(|u| u.as_i64())
            .map(pm::counter_unit)
            .or_else(|| c.unit.clone())
            .unwrap_or_else(default_unit);
        push(
            Counter {
                id: c.id.clone(),
                name: c.name.clone(),
                value,
                unit,
                oid: c.oid.to_string(),
                wraps_at_bits: wrap_bits(c.wraps_at_bits, v),
            },
            &mut out,
        );
    }
    out
}

fn default_unit() -> String {
    "impressions".into()
}

/// A Counter32 wraps at 32 bits whatever the profile says; otherwise the
/// profile's statement holds.
fn wrap_bits(profile_says: Option<u8>, v: &Value) -> Option<u8> {
    match v {
        Value::Counter32(_) => Some(32),
        Value::Counter64(_) => Some(64),
        _ => profile_says,
    }
}

fn derived(p: &Profile, counters: &[Counter]) -> Vec<DerivedCounter> {
    let by_id: BTreeMap<&str, u64> = counters.iter().map(|c| (c.id.as_str(), c.value)).collect();
    let mut out = Vec::new();
    for d in &p.derived {
        for alt in &d.alternatives {
            if !alt.is_empty() && alt.iter().all(|id| by_id.contains_key(id.as_str())) {
                out.push(DerivedCounter {
                    id: d.id.clone(),
                    name: d.name.clone(),
                    value: alt.iter().map(|id| by_id[id.as_str()]).sum(),
                    from: alt.clone(),
                });
                break;
            }
        }
    }
    out
}

fn supplies(snap: &Snapshot) -> Vec<Supply> {
    let entry = pm::SUPPLIES_ENTRY.clone();
    let mut rows: BTreeMap<Vec<u32>, BTreeMap<u32, &Value>> = BTreeMap::new();
    for c in pm::SUPPLY_COLUMNS {
        for (idx, v) in column(snap, &entry.child(c)) {
            rows.entry(idx).or_default().insert(c, v);
        }
    }
    rows.into_iter()
        .map(|(idx, cols)| {
            let level = cols.get(&9).and_then(|v| v.as_i64());
            let max = cols.get(&8).and_then(|v| v.as_i64());
            let percent = level_percent(level, max);
            let state = match (level, percent) {
                (Some(-3), _) => "some_remaining",
                (Some(-2), _) | (None, _) => "unknown",
                (Some(l), _) if l < 0 => "other",
                (Some(0), _) => "empty",
                (_, Some(p)) if p <= 10 => "low",
                _ => "ok",
            };
            Supply {
                index: idx.last().copied().unwrap_or(0),
                description: cols.get(&6).and_then(|v| printable(v)).unwrap_or_default(),
                kind: cols
                    .get(&5)
                    .and_then(|v| v.as_i64())
                    .map(pm::supply_kind)
                    .unwrap_or_else(|| "unknown".into()),
                level,
                max,
                percent,
                state: state.into(),
            }
        })
        .collect()
}

/// A supply's level as a percent of its maximum, rounded; none when either
/// is not a real amount (negative levels are the MIB's "unknown", "some
/// remaining"). In 128 bits: a device may answer with any 64-bit number.
fn level_percent(level: Option<i64>, max: Option<i64>) -> Option<u8> {
    match (level, max) {
        (Some(l), Some(m)) if l >= 0 && m > 0 => {
            let (l, m) = (i128::from(l), i128::from(m));
            Some(((l * 100 + m / 2) / m).clamp(0, 100) as u8)
        }
        _ => None,
    }
}

fn status(snap: &Snapshot) -> Status {
    let int = |o: &Oid| snap.get(o).and_then(|v| v.as_i64());
    let errors = snap
        .get(&*pm::HR_PRINTER_ERROR_STATE)
        .and_then(|v| v.as_bytes())
        .map(pm::error_bits)
        .unwrap_or_default();
    let entry = pm::ALERT_ENTRY.clone();
    let mut rows: BTreeMap<Vec<u32>, BTreeMap<u32, &Value>> = BTreeMap::new();
    for c in pm::ALERT_COLUMNS {
        for (idx, v) in column(snap, &entry.child(c)) {
            rows.entry(idx).or_default().insert(c, v);
        }
    }
    let alerts = rows
        .into_iter()
        .map(|(idx, cols)| {
            let i = |c: u32| cols.get(&c).and_then(|v| v.as_i64());
            let code = i(7).unwrap_or(2);
            Alert {
                index: idx.last().copied().unwrap_or(0),
                severity: i(2)
                    .map(pm::alert_severity)
                    .unwrap_or_else(|| "other".into()),
                training_level: i(3)
                    .map(pm::training_level)
                    .unwrap_or_else(|| "unknown".into()),
                group: i(4).map(pm::alert_group).unwrap_or_else(|| "other".into()),
                code,
                code_name: pm::alert_code(code),
                description: cols.get(&8).and_then(|v| printable(v)).unwrap_or_default(),
            }
        })
        .collect();
    let console = column(snap, &pm::CONSOLE_TEXT)
        .filter_map(|(_, v)| printable(v))
        .collect();
    Status {
        device: int(&pm::HR_DEVICE_STATUS).map(pm::device_status),
        printer: int(&pm::HR_PRINTER_STATUS).map(pm::printer_status),
        errors,
        alerts,
        console,
    }
}

/// Rows of a table's columns: index suffix -> column -> value.
fn rows<'a>(
    snap: &'a Snapshot,
    entry: &Oid,
    cols: &[u32],
) -> BTreeMap<Vec<u32>, BTreeMap<u32, &'a Value>> {
    let mut rows: BTreeMap<Vec<u32>, BTreeMap<u32, &Value>> = BTreeMap::new();
    for c in cols {
        for (idx, v) in column(snap, &entry.child(*c)) {
            rows.entry(idx).or_default().insert(*c, v);
        }
    }
    rows
}

/// A tray's paper size from its declared dimensions: cross-feed by feed,
/// in millimetres or inches as the unit says; none when unknown.
fn media_size(unit: Option<i64>, feed: Option<i64>, xfeed: Option<i64>) -> Option<String> {
    let (f, x) = (feed.filter(|v| *v > 0)?, xfeed.filter(|v| *v > 0)?);
    match unit {
        // micrometers
        Some(4) => Some(format!("{} x {} mm", (x + 500) / 1000, (f + 500) / 1000)),
        // ten-thousandths of inches
        Some(3) => Some(format!(
            "{} x {} in",
            (x as f64 / 10_000.0 * 100.0).round() / 100.0,
            (f as f64 / 10_000.0 * 100.0).round() / 100.0
        )),
        _ => None,
    }
}

/// Paper trays, output bins, media paths and Host Resources devices.
fn configuration(snap: &Snapshot) -> Vec<Component> {
    let text = |cols: &BTreeMap<u32, &Value>, c: u32| {
        cols.get(&c).and_then(|v| printable(v)).unwrap_or_default()
    };
    let int = |cols: &BTreeMap<u32, &Value>, c: u32| cols.get(&c).and_then(|v| v.as_i64());
    let index = |idx: &[u32]| idx.last().copied().unwrap_or(0);
    let mut out = Vec::new();
    for (idx, cols) in rows(snap, &pm::INPUT_ENTRY, &pm::INPUT_COLUMNS) {
        let size = media_size(int(&cols, 3), int(&cols, 4), int(&cols, 5));
        let media: Vec<String> = [Some(text(&cols, 12)), size, Some(text(&cols, 21))]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .collect();
        out.push(Component {
            kind: "input".into(),
            index: index(&idx),
            name: text(&cols, 13),
            description: text(&cols, 18),
            kind_type: int(&cols, 2).map(pm::input_type).unwrap_or_default(),
            capacity: int(&cols, 9),
            level: int(&cols, 10),
            media: media.join(", "),
        });
    }
    for (idx, cols) in rows(snap, &pm::OUTPUT_ENTRY, &pm::OUTPUT_COLUMNS) {
        out.push(Component {
            kind: "output".into(),
            index: index(&idx),
            name: text(&cols, 7),
            description: text(&cols, 12),
            kind_type: int(&cols, 2).map(pm::output_type).unwrap_or_default(),
            capacity: int(&cols, 4),
            level: int(&cols, 5),
            media: String::new(),
        });
    }
    for (idx, cols) in rows(snap, &pm::MEDIA_PATH_ENTRY, &pm::MEDIA_PATH_COLUMNS) {
        out.push(Component {
            kind: "media_path".into(),
            index: index(&idx),
            name: String::new(),
            description: text(&cols, 10),
            kind_type: int(&cols, 9).map(pm::media_path_type).unwrap_or_default(),
            capacity: None,
            level: None,
            media: String::new(),
        });
    }
    let types = pm::HR_DEVICE_TYPES.clone();
    for (idx, cols) in rows(snap, &pm::HR_DEVICE_ENTRY, &pm::HR_DEVICE_COLUMNS) {
        let kind_type = match cols.get(&2) {
            Some(Value::ObjectId(o)) if o.starts_with(&types) => o
                .arcs()
                .get(types.arcs().len())
                .map(|a| pm::hr_device_type(*a))
                .unwrap_or_default(),
            _ => String::new(),
        };
        out.push(Component {
            kind: "device".into(),
            index: index(&idx),
            name: String::new(),
            description: text(&cols, 3),
            kind_type,
            capacity: None,
            level: None,
            media: String::new(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::level_percent;

    #[test]
    fn a_supplys_percent_is_rounded_and_any_64_bit_answer_is_safe() {
        assert_eq!(level_percent(Some(125), Some(1000)), Some(13));
        assert_eq!(level_percent(Some(i64::MAX), Some(1)), Some(100));
        assert_eq!(level_percent(Some(i64::MAX), Some(i64::MAX)), Some(100));
        assert_eq!(level_percent(Some(-3), Some(100)), None);
        assert_eq!(level_percent(Some(50), Some(0)), None);
        assert_eq!(level_percent(None, Some(100)), None);
    }
}
