//! snmpsim's `.snmprec` recording format: one `OID|TAG|VALUE` per line.
//! Text in, sorted varbinds out; no IO.
//!
//! Tags are BER type numbers in decimal (2 Integer, 4 OctetString, 5 Null,
//! 6 OID, 64 IpAddress, 65 Counter32, 66 Gauge32, 67 TimeTicks, 68 Opaque,
//! 70 Counter64, 128-130 the v2 exceptions); an `x` suffix means the value is
//! hex (`4x|4d6f6465`).

use super::message::{Oid, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}:{line}: {what}")]
pub struct SnmprecError {
    pub source_name: String,
    pub line: usize,
    pub what: String,
}

/// Parses a recording. `source_name` names it in errors. Duplicate OIDs keep
/// the last value, as snmpsim does; the result is sorted by OID.
pub fn parse(source_name: &str, text: &str) -> Result<Vec<(Oid, Value)>, SnmprecError> {
    let (items, mut errors) = parse_lenient(source_name, text);
    match errors.is_empty() {
        true => Ok(items),
        false => Err(errors.remove(0)),
    }
}

/// Like [`parse`], but skips bad lines and returns them as errors beside the
/// good ones: real captures carry the odd damaged line (a scrubbed value),
/// and one bad line should not take the whole device away.
pub fn parse_lenient(source_name: &str, text: &str) -> (Vec<(Oid, Value)>, Vec<SnmprecError>) {
    let mut errors = Vec::new();
    let mut out: Vec<(Oid, Value)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |what: String| SnmprecError {
            source_name: source_name.to_string(),
            line: i + 1,
            what,
        };
        let mut parts = line.splitn(3, '|');
        let (o, t, v) = match (parts.next(), parts.next(), parts.next()) {
            (Some(o), Some(t), Some(v)) => (o, t, v),
            _ => {
                errors.push(err("expected OID|TAG|VALUE".into()));
                continue;
            }
        };
        let oid: Oid = match o.parse() {
            Ok(x) => x,
            Err(e) => {
                errors.push(err(format!("{e}")));
                continue;
            }
        };
        match parse_value(t, v) {
            Ok(value) => out.push((oid, value)),
            Err(e) => errors.push(err(e)),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    // Keep the last of duplicates: sort is stable, so dedup from the back.
    out.reverse();
    out.dedup_by(|a, b| a.0 == b.0);
    out.reverse();
    (out, errors)
}

fn parse_value(tag: &str, v: &str) -> Result<Value, String> {
    let (num, hex) = match tag.strip_suffix('x') {
        Some(n) => (n, true),
        None => (tag, false),
    };
    let tag_no: u32 = num
        .parse()
        .map_err(|_| format!("unsupported tag {tag:?} (variation modules are not supported)"))?;
    let bytes = || -> Result<Vec<u8>, String> {
        if hex {
            decode_hex(v).ok_or_else(|| format!("bad hex value {v:?}"))
        } else {
            Ok(v.as_bytes().to_vec())
        }
    };
    let text = || -> Result<String, String> {
        let b = bytes()?;
        String::from_utf8(b).map_err(|_| "value is not text".to_string())
    };
    let uint = |max: u64| -> Result<u64, String> {
        let s = text()?;
        let n: u64 = s
            .trim()
            .parse()
            .map_err(|_| format!("bad unsigned number {s:?}"))?;
        if n > max {
            return Err(format!("{n} is out of range for tag {tag}"));
        }
        Ok(n)
    };
    Ok(match tag_no {
        2 => {
            let s = text()?;
            Value::Integer(s.trim().parse().map_err(|_| format!("bad integer {s:?}"))?)
        }
        4 => Value::OctetString(bytes()?),
        5 => Value::Null,
        6 => Value::ObjectId(text()?.parse().map_err(|e| format!("{e}"))?),
        64 => {
            let b = bytes()?;
            if hex {
                Value::IpAddress(b.try_into().map_err(|_| "IpAddress is not 4 bytes")?)
            } else {
                let s = String::from_utf8(b).map_err(|_| "bad IpAddress")?;
                let ip: std::net::Ipv4Addr =
                    s.parse().map_err(|_| format!("bad IpAddress {s:?}"))?;
                Value::IpAddress(ip.octets())
            }
        }
        65 => Value::Counter32(uint(u32::MAX as u64)? as u32),
        66 => Value::Gauge32(uint(u32::MAX as u64)? as u32),
        67 => Value::TimeTicks(uint(u32::MAX as u64)? as u32),
        68 => Value::Opaque(bytes()?),
        70 => Value::Counter64(uint(u64::MAX)?),
        128 => Value::NoSuchObject,
        129 => Value::NoSuchInstance,
        130 => Value::EndOfMibView,
        _ => return Err(format!("unsupported tag {tag:?}")),
    })
}

pub fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Writes varbinds in `.snmprec` form (text where it is printable, hex
/// otherwise), for recording a device.
pub fn render(items: &[(Oid, Value)]) -> String {
    let mut out = String::new();
    for (o, v) in items {
        let (tag, val) = match v {
            Value::Integer(i) => ("2".to_string(), i.to_string()),
            Value::OctetString(b) => match std::str::from_utf8(b) {
                Ok(s) if s.chars().all(|c| !c.is_control()) && !s.contains('|') => {
                    ("4".into(), s.to_string())
                }
                _ => ("4x".into(), b.iter().map(|x| format!("{x:02x}")).collect()),
            },
            Value::Null => ("5".into(), String::new()),
            Value::ObjectId(x) => ("6".into(), x.to_string()),
            Value::IpAddress(a) => ("64".into(), std::net::Ipv4Addr::from(*a).to_string()),
            Value::Counter32(n) => ("65".into(), n.to_string()),
            Value::Gauge32(n) => ("66".into(), n.to_string()),
            Value::TimeTicks(n) => ("67".into(), n.to_string()),
            Value::Opaque(b) => ("68x".into(), b.iter().map(|x| format!("{x:02x}")).collect()),
            Value::Counter64(n) => ("70".into(), n.to_string()),
            Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView => continue,
        };
        out.push_str(&format!("{o}|{tag}|{val}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snmp::message::oid;

    #[test]
    fn parses_every_tag() {
        let text = "\
1.3.6.1.2.1.1.1.0|4|Canon iR-ADV C5535 /P
1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.1602.4.7
1.3.6.1.2.1.2.2.1.6.1|4x|888717000001
1.3.6.1.2.1.4.20.1.1.10.0.0.1|64|10.0.0.1
1.3.6.1.2.1.43.10.2.1.4.1.1|65|4294967295
1.3.6.1.2.1.25.3.2.1.5.1|2|-3
1.3.6.1.2.1.1.3.0|67|261702
1.3.6.1.2.1.31.1.1.1.6.1|70|18446744073709551615
1.3.6.1.2.1.5|66|7
1.3.6.1.2.1.6|5|
";
        let r = parse("t", text).unwrap();
        assert_eq!(r.len(), 10);
        assert_eq!(r[0].0, oid("1.3.6.1.2.1.1.1.0"));
        let find = |s: &str| r.iter().find(|x| x.0 == oid(s)).unwrap().1.clone();
        assert_eq!(
            find("1.3.6.1.2.1.2.2.1.6.1"),
            Value::OctetString(vec![0x88, 0x87, 0x17, 0, 0, 1])
        );
        assert_eq!(find("1.3.6.1.2.1.31.1.1.1.6.1"), Value::Counter64(u64::MAX));
        assert_eq!(
            find("1.3.6.1.2.1.4.20.1.1.10.0.0.1"),
            Value::IpAddress([10, 0, 0, 1])
        );
        assert_eq!(find("1.3.6.1.2.1.25.3.2.1.5.1"), Value::Integer(-3));
        assert!(r.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("f.snmprec", "1.3.6|4|ok\n1.3.x|2|1\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().starts_with("f.snmprec:2:"));
        let e = parse("f", "1.3.6|65|-1\n").unwrap_err();
        assert!(e.what.contains("bad unsigned"), "{e}");
    }

    #[test]
    fn render_parses_back() {
        let items = vec![
            (
                oid("1.3.6.1.2.1.1.1.0"),
                Value::OctetString(b"Canon".to_vec()),
            ),
            (
                oid("1.3.6.1.2.1.1.5.0"),
                Value::OctetString(vec![0, 1, 0xff]),
            ),
            (oid("1.3.6.1.2.1.1.7.0"), Value::Counter64(5)),
        ];
        assert_eq!(parse("r", &render(&items)).unwrap(), items);
    }
}
