//! Address ranges: HOST, HOST:PORT, CIDR blocks and a.b.c.d-e ranges
//! expanded to socket addresses. Pure; used by the configuration, the
//! daemon and the command line.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad address range {input:?}: {what}")]
pub struct RangeError {
    pub input: String,
    pub what: String,
}

/// Expands range expressions to socket addresses, in order, without
/// duplicates. CIDR blocks of more than one address skip the network and
/// broadcast addresses.
pub fn expand(
    inputs: &[String],
    default_port: u16,
    max: usize,
) -> Result<Vec<SocketAddr>, RangeError> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for input in inputs {
        let err = |what: &str| RangeError {
            input: input.clone(),
            what: what.to_string(),
        };
        let s = input.trim();
        let mut add = |a: SocketAddr, out: &mut Vec<SocketAddr>| -> Result<(), RangeError> {
            if seen.insert(a) {
                out.push(a);
                if out.len() > max {
                    return Err(err(&format!(
                        "more than {max} addresses in all; narrow the ranges or raise --max-hosts"
                    )));
                }
            }
            Ok(())
        };
        if let Ok(a) = s.parse::<SocketAddr>() {
            add(a, &mut out)?;
        } else if let Ok(ip) = s.parse::<IpAddr>() {
            add(SocketAddr::new(ip, default_port), &mut out)?;
        } else if let Ok(net) = s.parse::<ipnet::IpNet>() {
            let hosts: Box<dyn Iterator<Item = IpAddr>> = match net {
                ipnet::IpNet::V4(n) => {
                    // Refused by its size before a single address is made:
                    // a /2 is a billion of them.
                    let size = 1u64 << (32 - n.prefix_len());
                    if size > max as u64 + 2 {
                        return Err(err(&format!(
                            "a block of {size} addresses, more than {max}; \
                             narrow the range or raise --max-hosts"
                        )));
                    }
                    Box::new(n.hosts().map(IpAddr::V4))
                }
                ipnet::IpNet::V6(n) => {
                    if n.prefix_len() < 112 {
                        return Err(err("IPv6 blocks larger than /112 are not scanned"));
                    }
                    Box::new(n.hosts().map(IpAddr::V6))
                }
            };
            for ip in hosts {
                add(SocketAddr::new(ip, default_port), &mut out)?;
            }
        } else if let Some((a, b)) = s.split_once('-') {
            let start: Ipv4Addr = a
                .trim()
                .parse()
                .map_err(|_| err("range start is not an IPv4 address"))?;
            let end: Ipv4Addr = match b.trim().parse::<Ipv4Addr>() {
                Ok(e) => e,
                Err(_) => {
                    let last: u8 = b
                        .trim()
                        .parse()
                        .map_err(|_| err("range end is neither an address nor a number 0-255"))?;
                    let o = start.octets();
                    Ipv4Addr::new(o[0], o[1], o[2], last)
                }
            };
            let (s32, e32) = (u32::from(start), u32::from(end));
            if e32 < s32 {
                return Err(err("range ends before it starts"));
            }
            if (e32 - s32) as usize >= max {
                return Err(err(&format!(
                    "more than {max} addresses; narrow the range or raise --max-hosts"
                )));
            }
            for x in s32..=e32 {
                add(
                    SocketAddr::new(IpAddr::V4(x.into()), default_port),
                    &mut out,
                )?;
            }
        } else {
            return Err(err(
                "expected an address, HOST:PORT, a CIDR block or a range a.b.c.d-e",
            ));
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
        let e = expand(&s(&["10.0.0.0/8"]), 161, 1000).unwrap_err();
        assert!(e.what.contains("--max-hosts"), "{e}");
        // A block too large is refused by its size, not after expanding the
        // bound's worth of it (the agent_config fuzz target timed out on a
        // pushed /2).
        let e = expand(&s(&["192.0.2.9/2"]), 161, 1 << 20).unwrap_err();
        assert_eq!(
            e.what,
            "a block of 1073741824 addresses, more than 1048576; \
             narrow the range or raise --max-hosts"
        );
        // A block that fits (its network and broadcast addresses skipped).
        assert_eq!(expand(&s(&["10.0.0.0/22"]), 161, 1022).unwrap().len(), 1022);
        let e = expand(&s(&["printer.local.x y"]), 161, 10).unwrap_err();
        assert!(e.what.contains("expected"), "{e}");
    }
}
