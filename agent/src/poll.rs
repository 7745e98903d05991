//! One full read of one device: the engine executes the profiles' read plan
//! (one GET of all scalars, then the chosen profile's columns walked side by
//! side) and the profile turns the result into a [`DeviceReading`].

use crate::observation::DeviceReading;
use crate::profile::{self, printer_mib, ProfileSet, Snapshot};
use crate::snmp::engine::{Ask, Credential, CredentialSet, DeviceMemory, Engine, SnmpError};
use crate::snmp::VarBind;
use crate::snmp::Version;
use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Snmp(#[from] SnmpError),
    #[error("{addr} answers SNMP but is not a printer any profile knows (sysDescr: {descr:?}, sysObjectID: {object_id:?})")]
    NotPrinter {
        addr: SocketAddr,
        descr: Option<String>,
        object_id: Option<String>,
    },
    #[error("no credential sets configured for {0}")]
    NoCredentials(SocketAddr),
}

/// A successful read and how it was done.
#[derive(Debug, Clone)]
pub struct DeviceRead {
    pub reading: DeviceReading,
    pub credential: String,
    /// Requests sent for this read, retransmissions not counted.
    pub pdus: u64,
    pub snapshot: Snapshot,
}

/// The answers of a device's first GET as a snapshot, plus one GETNEXT into
/// the Printer-MIB when the GET showed none of it (some printers answer no
/// Printer-MIB scalar but have its tables). A failed probe only means less to
/// recognise the device by.
pub async fn first_snapshot(
    engine: &Engine,
    addr: SocketAddr,
    cred: &CredentialSet,
    mem: &mut DeviceMemory,
    vbs: Vec<VarBind>,
) -> Snapshot {
    let mut snap: Snapshot = vbs
        .into_iter()
        .filter(|vb| !vb.value.is_exception())
        .map(|vb| (vb.oid, vb.value))
        .collect();
    if !profile::has_printer_mib(&snap) {
        let root = printer_mib::PRINTER_MIB.clone();
        match engine
            .request(addr, cred, mem, Ask::GetNext, std::slice::from_ref(&root))
            .await
        {
            Ok(r) => {
                if let Some(vb) = r.varbinds.into_iter().next() {
                    if r.error_status == 0 && vb.oid.starts_with(&root) && !vb.value.is_exception()
                    {
                        snap.insert(vb.oid, vb.value);
                    }
                }
            }
            Err(e) => tracing::debug!(%addr, error = %e, "Printer-MIB probe failed"),
        }
    }
    snap
}

/// The order to try credential sets in: the one that worked last first.
fn order(remembered: Option<usize>, n: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    if let Some(i) = remembered.filter(|i| *i < n) {
        v.retain(|x| *x != i);
        v.insert(0, i);
    }
    v
}

pub async fn read_device(
    engine: &Engine,
    profiles: &ProfileSet,
    addr: SocketAddr,
    creds: &[CredentialSet],
) -> Result<DeviceRead, ReadError> {
    if creds.is_empty() {
        return Err(ReadError::NoCredentials(addr));
    }
    let _permit = engine.permit().await;
    let dev = engine.device(addr);
    let mut mem = dev.lock().await;
    let start_pdus = mem.pdus_sent;
    let scalars = profiles.scalar_oids();
    let remembered = mem.credential;
    let mut last_err = None;
    let mut got = None;
    for i in order(remembered, creds.len()) {
        let cred = &creds[i];
        match engine.get(addr, cred, &mut mem, scalars).await {
            Ok(vbs) => {
                if remembered != Some(i) {
                    tracing::info!(%addr, credential = %cred.name, version = cred.version().name(), "credential set answered");
                }
                mem.credential = Some(i);
                got = Some((i, vbs));
                break;
            }
            Err(e) => {
                let v3 = matches!(cred.credential, Credential::V3 { .. });
                // A device that speaks v3 and refuses us must not be read
                // with a community instead: that would bypass its security.
                let stop = (v3 && e.is_auth())
                    || (remembered == Some(i) && v3 && !e.is_timeout())
                    || !(e.is_timeout() || e.is_auth());
                tracing::debug!(%addr, credential = %cred.name, error = %e, "credential set failed");
                last_err = Some(e);
                if stop {
                    break;
                }
            }
        }
    }
    let Some((ci, vbs)) = got else {
        return Err(last_err
            .expect("at least one credential set was tried")
            .into());
    };
    let cred = &creds[ci];
    let snap = first_snapshot(engine, addr, cred, &mut mem, vbs).await;
    let mut snap = snap;
    let Some(p) = profiles.recognise(&snap) else {
        let descr = snap
            .get(&*printer_mib::SYS_DESCR)
            .and_then(profile::printable_text);
        let object_id = snap.get(&*printer_mib::SYS_OBJECT_ID).map(|v| match v {
            crate::snmp::Value::ObjectId(o) => o.to_string(),
            other => format!("{other:?}"),
        });
        return Err(ReadError::NotPrinter {
            addr,
            descr,
            object_id,
        });
    };
    for vb in engine
        .walk_columns(addr, cred, &mut mem, &p.walk_columns())
        .await?
    {
        snap.insert(vb.oid, vb.value);
    }
    let version = match cred.version() {
        Version::V1 => "v1",
        Version::V2c => "v2c",
        Version::V3 => "v3",
    };
    let reading = profile::observe(p, &snap, &addr.to_string(), version);
    Ok(DeviceRead {
        reading,
        credential: cred.name.clone(),
        pdus: mem.pdus_sent - start_pdus,
        snapshot: snap,
    })
}

#[cfg(test)]
mod tests {
    use super::order;

    #[test]
    fn remembered_credential_goes_first() {
        assert_eq!(order(None, 3), vec![0, 1, 2]);
        assert_eq!(order(Some(2), 3), vec![2, 0, 1]);
        assert_eq!(order(Some(7), 2), vec![0, 1]);
    }
}
