//! Address ranges: HOST, HOST:PORT, CIDR blocks and a.b.c.d-e ranges
//! expanded to socket addresses. Pure; used by the configuration, the
//! daemon and the command line.
//!
//! Ranges are kept as spans of address numbers, never as lists of
//! addresses, until they are expanded: checking that a million-address
//! configuration fits its bound costs as much as checking a small one.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The most addresses an agent polls across all its targets.
pub const MAX_TARGET_ADDRESSES: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad address range {input:?}: {what}")]
pub struct RangeError {
    pub input: String,
    pub what: String,
    /// The ranges name more addresses than the bound (as opposed to an
    /// expression that does not parse): the caller may say how to raise it.
    pub too_many: bool,
}

/// The addresses `first..=last` of one family, on one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    v6: bool,
    port: u16,
    first: u128,
    last: u128,
}

impl Span {
    fn len(&self) -> u128 {
        self.last - self.first + 1
    }

    fn addr(&self, n: u128) -> SocketAddr {
        let ip = if self.v6 {
            IpAddr::V6(Ipv6Addr::from(n))
        } else {
            // A v4 span's numbers are below 2^32 by construction.
            IpAddr::V4(Ipv4Addr::from(n as u32))
        };
        SocketAddr::new(ip, self.port)
    }

    fn of(a: SocketAddr) -> Span {
        let (v6, n) = match a.ip() {
            IpAddr::V4(ip) => (false, u128::from(u32::from(ip))),
            IpAddr::V6(ip) => (true, u128::from(ip)),
        };
        Span {
            v6,
            port: a.port(),
            first: n,
            last: n,
        }
    }
}

/// Parses one range expression. A block or range larger than `max` is
/// refused by its size, before any address is made.
fn parse(input: &str, default_port: u16, max: usize) -> Result<Span, RangeError> {
    let err = |what: String, too_many: bool| RangeError {
        input: input.to_string(),
        what,
        too_many,
    };
    let s = input.trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(Span::of(a));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(Span::of(SocketAddr::new(ip, default_port)));
    }
    if let Ok(net) = s.parse::<ipnet::IpNet>() {
        let span = match net {
            ipnet::IpNet::V4(n) => {
                let (mut first, mut last) = (u32::from(n.network()), u32::from(n.broadcast()));
                // Blocks of more than two addresses skip the network and
                // broadcast addresses.
                if n.prefix_len() < 31 {
                    first += 1;
                    last -= 1;
                }
                Span {
                    v6: false,
                    port: default_port,
                    first: first.into(),
                    last: last.into(),
                }
            }
            ipnet::IpNet::V6(n) => {
                if n.prefix_len() < 112 {
                    return Err(err(
                        "IPv6 blocks larger than /112 are not scanned".into(),
                        false,
                    ));
                }
                Span {
                    v6: true,
                    port: default_port,
                    first: u128::from(n.network()),
                    last: u128::from(n.broadcast()),
                }
            }
        };
        if span.len() > max as u128 {
            return Err(err(
                format!("a block of {} addresses, more than {max}", span.len()),
                true,
            ));
        }
        return Ok(span);
    }
    if let Some((a, b)) = s.split_once('-') {
        let start: Ipv4Addr = a
            .trim()
            .parse()
            .map_err(|_| err("range start is not an IPv4 address".into(), false))?;
        let end: Ipv4Addr = match b.trim().parse::<Ipv4Addr>() {
            Ok(e) => e,
            Err(_) => {
                let last: u8 = b.trim().parse().map_err(|_| {
                    err(
                        "range end is neither an address nor a number 0-255".into(),
                        false,
                    )
                })?;
                let o = start.octets();
                Ipv4Addr::new(o[0], o[1], o[2], last)
            }
        };
        let (first, last) = (u32::from(start), u32::from(end));
        if last < first {
            return Err(err("range ends before it starts".into(), false));
        }
        if (last - first) as usize >= max {
            return Err(err(
                format!("{} addresses, more than {max}", u64::from(last - first) + 1),
                true,
            ));
        }
        return Ok(Span {
            v6: false,
            port: default_port,
            first: first.into(),
            last: last.into(),
        });
    }
    Err(err(
        "expected an address, HOST:PORT, a CIDR block or a range a.b.c.d-e".into(),
        false,
    ))
}

/// Distinct socket addresses as disjoint spans, with their count.
#[derive(Debug, Default)]
pub struct AddressSet {
    /// (family, port, first) -> last, no two overlapping or adjacent.
    spans: BTreeMap<(bool, u16, u128), u128>,
    len: u128,
}

impl AddressSet {
    /// How many distinct addresses the set holds.
    #[cfg(test)]
    fn len(&self) -> u128 {
        self.len
    }

    /// Adds the range expressions' addresses, refusing them when the set
    /// would then hold more than `max`. Nothing is expanded.
    pub fn add_ranges(
        &mut self,
        inputs: &[String],
        default_port: u16,
        max: usize,
    ) -> Result<(), RangeError> {
        for input in inputs {
            self.add_range(input, default_port, max)?;
        }
        Ok(())
    }

    /// Adds one range expression; returns its parts not in the set before.
    fn add_range(
        &mut self,
        input: &str,
        default_port: u16,
        max: usize,
    ) -> Result<Vec<Span>, RangeError> {
        let parts = self.add(parse(input, default_port, max)?);
        if self.len > max as u128 {
            return Err(RangeError {
                input: input.to_string(),
                what: format!("more than {max} addresses in all"),
                too_many: true,
            });
        }
        Ok(parts)
    }

    /// Adds a span; returns its parts that were not in the set, in order.
    fn add(&mut self, span: Span) -> Vec<Span> {
        let key = |first| (span.v6, span.port, first);
        // Spans that overlap or touch `span`: the one starting at or before
        // it, then those starting inside it or right after it.
        let mut touching: Vec<(u128, u128)> = Vec::new();
        if let Some((&(v6, port, first), &last)) = self.spans.range(..=key(span.first)).next_back()
        {
            if (v6, port) == (span.v6, span.port) && last.saturating_add(1) >= span.first {
                touching.push((first, last));
            }
        }
        let upper = span.last.saturating_add(1);
        for (&(_, _, first), &last) in self.spans.range(key(span.first)..=key(upper)) {
            if touching.last().map(|t| t.0) != Some(first) {
                touching.push((first, last));
            }
        }
        // The new parts: `span` less the spans it overlaps.
        let mut new = Vec::new();
        let mut next = span.first;
        for &(first, last) in &touching {
            if first > next {
                new.push(Span {
                    first: next,
                    last: (first - 1).min(span.last),
                    ..span
                });
            }
            next = next.max(last.saturating_add(1));
        }
        if next <= span.last {
            new.push(Span {
                first: next,
                ..span
            });
        }
        let first = touching.first().map_or(span.first, |t| t.0.min(span.first));
        let last = touching.last().map_or(span.last, |t| t.1.max(span.last));
        for (f, _) in touching {
            self.spans.remove(&key(f));
        }
        self.spans.insert(key(first), last);
        self.len += new.iter().map(Span::len).sum::<u128>();
        new
    }
}

/// Expands range expressions to socket addresses, in order, without
/// duplicates. CIDR blocks of more than one address skip the network and
/// broadcast addresses. More than `max` addresses in all are refused
/// before they are made.
pub fn expand(
    inputs: &[String],
    default_port: u16,
    max: usize,
) -> Result<Vec<SocketAddr>, RangeError> {
    let mut set = AddressSet::default();
    let mut out = Vec::new();
    for input in inputs {
        for part in set.add_range(input, default_port, max)? {
            out.extend((part.first..=part.last).map(|n| part.addr(n)));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn expands_all_forms() {
        let a = expand(
            &s(&[
                "192.0.2.0/30",
                "198.51.100.5-7",
                "203.0.113.9",
                "127.0.0.1:1161",
                "198.51.100.6",
            ]),
            161,
            100,
        )
        .unwrap();
        let txt: Vec<String> = a.iter().map(|x| x.to_string()).collect();
        assert_eq!(
            txt,
            vec![
                "192.0.2.1:161",
                "192.0.2.2:161",
                "198.51.100.5:161",
                "198.51.100.6:161",
                "198.51.100.7:161",
                "203.0.113.9:161",
                "127.0.0.1:1161"
            ]
        );
        assert_eq!(
            expand(&s(&["10.0.0.1-10.0.1.0"]), 161, 1000).unwrap().len(),
            256
        );
    }

    #[test]
    fn bad_ranges_are_explained() {
        let e = expand(&s(&["10.0.0.9-3"]), 161, 100).unwrap_err();
        assert!(e.what.contains("ends before"), "{e}");
        assert!(!e.too_many);
        let e = expand(&s(&["10.0.0.0/8"]), 161, 1000).unwrap_err();
        assert!(e.too_many, "{e}");
        // A block too large is refused by its size, not after expanding the
        // bound's worth of it (the agent_config fuzz target timed out on a
        // pushed /2).
        let e = expand(&s(&["192.0.2.9/2"]), 161, 1 << 20).unwrap_err();
        assert_eq!(e.what, "a block of 1073741822 addresses, more than 1048576");
        let e = expand(&s(&["10.0.0.0-10.0.3.255"]), 161, 1000).unwrap_err();
        assert_eq!(e.what, "1024 addresses, more than 1000");
        let e = expand(&s(&["fd00::/64"]), 161, 1000).unwrap_err();
        assert!(e.what.contains("/112"), "{e}");
        // A block that fits (its network and broadcast addresses skipped).
        assert_eq!(expand(&s(&["10.0.0.0/22"]), 161, 1022).unwrap().len(), 1022);
        let e = expand(&s(&["printer.local.x y"]), 161, 10).unwrap_err();
        assert!(e.what.contains("expected"), "{e}");
    }

    /// Ranges that each fit but together do not are refused by their count,
    /// before an address is made; ranges repeated or overlapping count once
    /// (the agent_config fuzz target took a second on a hundred copies of a
    /// /12, each expanded and looked up address by address).
    #[test]
    fn the_bound_is_on_distinct_addresses_in_all() {
        let twelve = "10.0.0.0/12".to_string();
        let mut set = AddressSet::default();
        set.add_ranges(&vec![twelve.clone(); 100], 161, 1 << 20)
            .unwrap();
        assert_eq!(set.len(), (1 << 20) - 2);
        // The network and broadcast addresses the block skipped, one each.
        set.add_ranges(&s(&["10.0.0.0", "10.15.255.255:161"]), 161, 1 << 20)
            .unwrap();
        assert_eq!(set.len(), 1 << 20);
        // The same addresses on another port are other addresses.
        let e = set
            .add_ranges(&s(&["10.0.0.1-10.0.0.1"]), 162, 1 << 20)
            .unwrap_err();
        assert!(e.too_many, "{e}");
        assert_eq!(e.what, "more than 1048576 addresses in all");
        let e = expand(&s(&["10.0.0.0/12", "10.16.0.0/12"]), 161, 1 << 20).unwrap_err();
        assert_eq!(e.input, "10.16.0.0/12");
        assert!(e.too_many);
    }

    /// The naive expansion: every address made, duplicates skipped with a
    /// hash set.
    fn naive(inputs: &[String], port: u16) -> Vec<SocketAddr> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for i in inputs {
            let span = parse(i, port, usize::MAX).unwrap();
            for n in span.first..=span.last {
                if seen.insert(span.addr(n)) {
                    out.push(span.addr(n));
                }
            }
        }
        out
    }

    proptest::proptest! {
        /// Spans of a small address space, overlapping, touching and
        /// repeated in any order, on two ports: the same addresses in the
        /// same order as the naive expansion, and the set's count is theirs.
        #[test]
        fn expansion_matches_the_naive_one(
            ranges in proptest::collection::vec((0u8..64, 0u8..16, proptest::bool::ANY), 0..12)
        ) {
            let inputs: Vec<String> = ranges
                .iter()
                .map(|&(a, n, other_port)| {
                    let end = a.saturating_add(n);
                    if other_port {
                        format!("10.0.0.{a}:1161")
                    } else if n % 4 == 0 {
                        format!("10.0.0.{}/30", a & !3)
                    } else {
                        format!("10.0.0.{a}-{end}")
                    }
                })
                .collect();
            let want = naive(&inputs, 161);
            proptest::prop_assert_eq!(&expand(&inputs, 161, 1000).unwrap(), &want);
            let mut set = AddressSet::default();
            set.add_ranges(&inputs, 161, 1000).unwrap();
            proptest::prop_assert_eq!(set.len(), want.len() as u128);
            if !want.is_empty() {
                let e = expand(&inputs, 161, want.len() - 1).unwrap_err();
                proptest::prop_assert!(e.too_many);
            }
        }
    }
}
