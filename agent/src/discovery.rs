//! Discovery: which addresses answer SNMP, and which of those are printers
//! (and of which brand). Range parsing is pure; the scan is the IO edge.

use crate::cli::{CredentialArgs, EngineArgs, Failure};
use crate::profile::{self, printer_mib, ProfileSet, Snapshot};
use crate::snmp::engine::{CredentialSet, Engine, SnmpError};
use crate::snmp::{Oid, Value};
use clap::Args;
use serde::Serialize;
use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct DiscoverArgs {
    /// What to scan: CIDR (192.0.2.0/24), ranges (192.0.2.10-192.0.2.40 or
    /// 192.0.2.10-40), hosts, HOST:PORT.
    #[arg(required = true)]
    pub ranges: Vec<String>,
    #[command(flatten)]
    pub creds: CredentialArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Devices probed at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Packets per second, all devices together (0: no limit).
    #[arg(long, default_value_t = 500)]
    pub rate: u32,
    /// Refuse to scan more addresses than this.
    #[arg(long, default_value_t = 65536)]
    pub max_hosts: usize,
    /// Port for entries that name none.
    #[arg(long, default_value_t = 161)]
    pub port: u16,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// List silent addresses too.
    #[arg(long)]
    pub all: bool,
}

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
                ipnet::IpNet::V4(n) if n.prefix_len() >= 31 => Box::new(n.hosts().map(IpAddr::V4)),
                ipnet::IpNet::V4(n) => Box::new(n.hosts().map(IpAddr::V4)),
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

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Found {
    pub address: String,
    /// printer, other (answers SNMP, not a printer), silent, refused.
    pub kind: String,
    pub snmp_version: Option<String>,
    pub profile: Option<String>,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub sys_object_id: Option<String>,
    pub sys_descr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Classifies a device from what its discovery GET returned. Pure.
pub fn classify(profiles: &ProfileSet, addr: SocketAddr, version: &str, snap: &Snapshot) -> Found {
    let p = profiles.recognise(snap);
    let sys_object_id = match snap.get(&*printer_mib::SYS_OBJECT_ID) {
        Some(Value::ObjectId(o)) => Some(o.to_string()),
        _ => None,
    };
    let sys_descr = snap
        .get(&*printer_mib::SYS_DESCR)
        .and_then(profile::printable_text);
    match p {
        Some(p) => {
            let r = profile::observe(p, snap, &addr.to_string(), version);
            Found {
                address: addr.to_string(),
                kind: "printer".into(),
                snmp_version: Some(version.into()),
                profile: Some(p.name.clone()),
                vendor: r.identity.vendor,
                model: r.identity.model,
                serial: r.identity.serial,
                sys_object_id,
                sys_descr,
                error: None,
            }
        }
        None => Found {
            address: addr.to_string(),
            kind: "other".into(),
            snmp_version: Some(version.into()),
            profile: None,
            vendor: None,
            model: None,
            serial: None,
            sys_object_id,
            sys_descr,
            error: None,
        },
    }
}

/// Probes one address with the cheap discovery read: one GET, plus one
/// GETNEXT into the Printer-MIB when the GET showed none of it.
pub async fn probe_one(
    engine: &Engine,
    profiles: &ProfileSet,
    scalars: &[Oid],
    addr: SocketAddr,
    cred: &CredentialSet,
) -> Found {
    let _permit = engine.permit().await;
    let dev = engine.device(addr);
    let mut mem = dev.lock().await;
    let silent = |kind: &str, e: Option<String>| Found {
        address: addr.to_string(),
        kind: kind.into(),
        snmp_version: None,
        profile: None,
        vendor: None,
        model: None,
        serial: None,
        sys_object_id: None,
        sys_descr: None,
        error: e,
    };
    let vbs = match engine.get(addr, cred, &mut mem, scalars).await {
        Ok(v) => v,
        Err(SnmpError::Timeout { .. }) => return silent("silent", None),
        Err(e @ SnmpError::Auth { .. }) => return silent("refused", Some(e.to_string())),
        Err(e) => return silent("error", Some(e.to_string())),
    };
    let snap = crate::poll::first_snapshot(engine, addr, cred, &mut mem, vbs).await;
    classify(profiles, addr, cred.version().name(), &snap)
}

/// Scans all addresses; `progress` is called after each one.
pub async fn scan(
    engine: Arc<Engine>,
    profiles: Arc<ProfileSet>,
    addrs: Vec<SocketAddr>,
    cred: CredentialSet,
    progress: impl Fn(usize, usize, usize) + Send + Sync + 'static,
) -> Vec<Found> {
    let scalars: Arc<Vec<Oid>> = Arc::new(profiles.scalar_oids().to_vec());
    let cred = Arc::new(cred);
    let total = addrs.len();
    let done = Arc::new(AtomicUsize::new(0));
    let printers = Arc::new(AtomicUsize::new(0));
    let progress = Arc::new(progress);
    let mut set = tokio::task::JoinSet::new();
    for (i, addr) in addrs.into_iter().enumerate() {
        let (engine, profiles, scalars, cred) = (
            engine.clone(),
            profiles.clone(),
            scalars.clone(),
            cred.clone(),
        );
        let (done, printers, progress) = (done.clone(), printers.clone(), progress.clone());
        set.spawn(async move {
            let f = probe_one(&engine, &profiles, &scalars, addr, &cred).await;
            if f.kind == "printer" {
                printers.fetch_add(1, Ordering::Relaxed);
            }
            let d = done.fetch_add(1, Ordering::Relaxed) + 1;
            progress(d, total, printers.load(Ordering::Relaxed));
            (i, f)
        });
    }
    let mut out: Vec<(usize, Found)> = Vec::with_capacity(total);
    while let Some(r) = set.join_next().await {
        if let Ok(x) = r {
            out.push(x);
        }
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, f)| f).collect()
}

pub async fn run(args: DiscoverArgs) -> Result<String, Failure> {
    let addrs = expand(&args.ranges, args.port, args.max_hosts)
        .map_err(|e| Failure::usage(e.to_string()))?;
    let cred = args.creds.credential_set()?;
    let profiles = Arc::new(args.engine.profile_set()?);
    let mut cfg = args.engine.engine_config()?;
    cfg.concurrency = args.concurrency.max(1);
    cfg.max_pps = (args.rate > 0).then_some(args.rate);
    let engine = Engine::new(cfg).await.map_err(|e| Failure {
        code: crate::cli::exit::OTHER,
        message: format!("cannot open a UDP socket: {e}"),
    })?;
    let tty = std::io::stderr().is_terminal();
    let found = scan(engine, profiles, addrs, cred, move |d, t, p| {
        if tty && (d % 16 == 0 || d == t) {
            eprint!("\rscanned {d}/{t}, printers found: {p}   ");
            if d == t {
                eprintln!();
            }
        }
    })
    .await;
    let shown: Vec<&Found> = found
        .iter()
        .filter(|f| args.all || f.kind != "silent")
        .collect();
    use std::fmt::Write;
    let mut out = String::new();
    if args.json {
        out = serde_json::to_string_pretty(&shown).expect("serialises") + "\n";
    } else {
        let _ = writeln!(
            out,
            "{:<22} {:<8} {:<6} {:<12} {:<16} {:<24} {:<16} SYSDESCR",
            "ADDRESS", "KIND", "SNMP", "PROFILE", "VENDOR", "MODEL", "SERIAL"
        );
        for f in &shown {
            let o = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
            let _ = writeln!(
                out,
                "{:<22} {:<8} {:<6} {:<12} {:<16} {:<24} {:<16} {}",
                f.address,
                f.kind,
                o(&f.snmp_version),
                o(&f.profile),
                o(&f.vendor),
                o(&f.model),
                o(&f.serial),
                o(&f.sys_descr)
            );
        }
        let printers = found.iter().filter(|f| f.kind == "printer").count();
        let answered = found
            .iter()
            .filter(|f| f.kind == "printer" || f.kind == "other")
            .count();
        eprintln!(
            "{} addresses scanned, {answered} answered, {printers} printers",
            found.len()
        );
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
        let e = expand(&s(&["printer.local.x y"]), 161, 10).unwrap_err();
        assert!(e.what.contains("expected"), "{e}");
    }
}
