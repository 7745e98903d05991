//! Object identifiers and their BER content.

use crate::snmp::ber::{DResult, Reader};
use std::fmt;
use std::str::FromStr;

/// An object identifier. Ordering is lexicographic over the arcs, which is
/// SNMP's ordering for GETNEXT and walks.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Oid(pub Vec<u32>);

impl Oid {
    pub fn arcs(&self) -> &[u32] {
        &self.0
    }

    pub fn starts_with(&self, prefix: &Oid) -> bool {
        self.0.starts_with(&prefix.0)
    }

    pub fn child(&self, arc: u32) -> Oid {
        let mut v = self.0.clone();
        v.push(arc);
        Oid(v)
    }

    /// The arcs after `prefix`, if this OID lies under it.
    pub fn suffix(&self, prefix: &Oid) -> Option<&[u32]> {
        self.0.strip_prefix(prefix.0.as_slice())
    }

    #[inline]
    pub(crate) fn encode_content(&self, out: &mut Vec<u8>) {
        let a = &self.0;
        let (first, rest) = match a.len() {
            0 => (0u64, &a[..]),
            1 => (a[0] as u64 * 40, &a[1..]),
            _ => (a[0] as u64 * 40 + a[1] as u64, &a[2..]),
        };
        push_base128(out, first);
        for &x in rest {
            push_base128(out, x as u64);
        }
    }

    #[inline]
    pub(crate) fn decode_content(r: &Reader) -> DResult<Oid> {
        let b = r.bytes();
        if b.is_empty() {
            return r.err("empty object identifier");
        }
        let mut arcs = Vec::with_capacity(b.len() + 1);
        let mut acc: u64 = 0;
        let mut in_arc = false;
        for &x in b {
            acc = (acc << 7) | (x & 0x7f) as u64;
            in_arc = true;
            if acc > u32::MAX as u64 * 40 + 39 {
                return r.err("object identifier arc exceeds 32 bits");
            }
            if x & 0x80 == 0 {
                if arcs.is_empty() {
                    let first = (acc / 40).min(2);
                    arcs.push(first as u32);
                    arcs.push((acc - first * 40) as u32);
                } else {
                    if acc > u32::MAX as u64 {
                        return r.err("object identifier arc exceeds 32 bits");
                    }
                    arcs.push(acc as u32);
                }
                acc = 0;
                in_arc = false;
            }
        }
        if in_arc {
            return r.err("object identifier ends inside an arc");
        }
        Ok(Oid(arcs))
    }
}

pub(crate) fn push_base128(out: &mut Vec<u8>, v: u64) {
    let mut tmp = [0u8; 10];
    let mut n = 0;
    let mut x = v;
    loop {
        tmp[n] = (x & 0x7f) as u8;
        n += 1;
        x >>= 7;
        if x == 0 {
            break;
        }
    }
    for i in (0..n).rev() {
        out.push(tmp[i] | if i > 0 { 0x80 } else { 0 });
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an object identifier: {0:?} (expected dotted numbers such as 1.3.6.1.2.1.1.1.0)")]
pub struct OidParseError(pub String);

impl FromStr for Oid {
    type Err = OidParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().trim_start_matches('.');
        if t.is_empty() {
            return Err(OidParseError(s.to_string()));
        }
        t.split('.')
            .map(|p| p.parse::<u32>())
            .collect::<Result<Vec<_>, _>>()
            .map(Oid)
            .map_err(|_| OidParseError(s.to_string()))
    }
}

impl serde::Serialize for Oid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Oid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A shorthand for OID literals in code and tests.
pub fn oid(s: &str) -> Oid {
    s.parse().expect("valid OID literal")
}
