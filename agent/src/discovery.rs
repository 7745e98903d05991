//! Discovery: which addresses answer SNMP, and which of those are printers
//! (and of which brand). Classification is pure; the scan is the IO edge.
//! Results are typed; the command line renders them (`cli`).

use crate::profile::{self, printer_mib, ProfileSet, Snapshot};
use crate::snmp::engine::{CredentialSet, Engine, SnmpError};
use crate::snmp::{Oid, Value};
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// What an address turned out to be.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FoundKind {
    /// A printer one of the profiles recognises.
    Printer,
    /// Answers SNMP, not a printer.
    Other,
    /// No answer in time.
    Silent,
    /// Refused the credentials (v3 authentication).
    Refused,
    /// Answered, but the read failed otherwise.
    Error,
}

impl FoundKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FoundKind::Printer => "printer",
            FoundKind::Other => "other",
            FoundKind::Silent => "silent",
            FoundKind::Refused => "refused",
            FoundKind::Error => "error",
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Found {
    pub address: String,
    pub kind: FoundKind,
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
                kind: FoundKind::Printer,
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
            kind: FoundKind::Other,
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
    let silent = |kind: FoundKind, e: Option<String>| Found {
        address: addr.to_string(),
        kind,
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
        Err(SnmpError::Timeout { .. }) => return silent(FoundKind::Silent, None),
        Err(e @ SnmpError::Auth { .. }) => return silent(FoundKind::Refused, Some(e.to_string())),
        Err(e) => return silent(FoundKind::Error, Some(e.to_string())),
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
            if f.kind == FoundKind::Printer {
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
