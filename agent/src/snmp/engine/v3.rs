//! SNMPv3: engine discovery (RFC 3414 §4), the keys localised per engine,
//! re-synchronisation on notInTimeWindow, and USM reports read as errors.

use super::{CredentialSet, DeviceMemory, Engine, SnmpError};
use crate::snmp::message::{
    decode_message, Message, Oid, Pdu, PduType, ScopedData, ScopedPdu, UsmParams, V3Message,
    FLAG_REPORTABLE,
};
use crate::snmp::usm::{LocalKeys, UsmError, UsmUser};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

pub(super) struct V3Peer {
    engine_id: Vec<u8>,
    boots: i64,
    time: i64,
    synced_at: Instant,
    keys: LocalKeys,
    /// Which user these keys belong to.
    user: Arc<UsmUser>,
}

impl Engine {
    pub(super) async fn request_v3(
        &self,
        addr: SocketAddr,
        cred: &CredentialSet,
        user: &Arc<UsmUser>,
        context: &str,
        mem: &mut DeviceMemory,
        pdu: Pdu,
    ) -> Result<Pdu, SnmpError> {
        let auth_err = |reason: String| SnmpError::Auth {
            addr,
            credential: cred.name.clone(),
            reason,
        };
        let mut resynced = false;
        loop {
            let fresh = match &mem.v3 {
                Some(p) => !Arc::ptr_eq(&p.user, user),
                None => true,
            };
            if fresh {
                mem.v3 = Some(self.discover_engine(addr, cred, user).await?);
            }
            let peer = mem.v3.as_ref().expect("discovered above");
            let elapsed = peer.synced_at.elapsed().as_secs() as i64;
            let id = self.transport.new_id();
            let mut pdu = pdu.clone();
            pdu.request_id = id;
            let msg = V3Message {
                msg_id: id,
                max_size: 65507,
                flags: user.security_flags() | FLAG_REPORTABLE,
                usm: UsmParams {
                    engine_id: peer.engine_id.clone(),
                    engine_boots: peer.boots,
                    engine_time: peer.time + elapsed,
                    user_name: user.name.clone(),
                    auth_params: vec![],
                    priv_params: vec![],
                },
                data: ScopedData::Plain(ScopedPdu {
                    context_engine_id: peer.engine_id.clone(),
                    context_name: context.as_bytes().to_vec(),
                    pdu,
                }),
            };
            let packet = peer.keys.seal(msg);
            let bytes = self.exchange(addr, id, &packet, cred).await?;
            let d = match decode_message(&bytes) {
                Ok(Message::V3(d)) => d,
                Ok(Message::Community(_)) => {
                    return Err(SnmpError::Malformed {
                        addr,
                        what: "answered a v3 request with a v1/v2c message".into(),
                    })
                }
                Err(e) => {
                    return Err(SnmpError::Malformed {
                        addr,
                        what: e.to_string(),
                    })
                }
            };
            // Error reports come unauthenticated; they never carry data.
            let scoped = match (&d.msg.data, d.msg.flags & crate::snmp::message::FLAG_AUTH) {
                (ScopedData::Plain(sp), 0) if sp.pdu.kind == PduType::Report => sp.clone(),
                _ => peer
                    .keys
                    .open(&bytes, d.auth_params_offset, &d.msg)
                    .map_err(|e| match e {
                        UsmError::WrongDigest => auth_err(
                            "its answer failed authentication (wrong authentication passphrase or protocol)".into(),
                        ),
                        other => auth_err(other.to_string()),
                    })?,
            };
            if scoped.pdu.kind != PduType::Report {
                return Ok(scoped.pdu);
            }
            let what = scoped.pdu.varbinds.first().map(|v| v.oid.clone());
            let report = what.as_ref().and_then(usm_report_name);
            match report {
                Some("notInTimeWindows") if !resynced => {
                    resynced = true;
                    if let Some(p) = mem.v3.as_mut() {
                        p.boots = d.msg.usm.engine_boots;
                        p.time = d.msg.usm.engine_time;
                        p.synced_at = Instant::now();
                    }
                    continue;
                }
                Some("unknownEngineIDs") if !resynced => {
                    // The device restarted with a new engine id.
                    resynced = true;
                    mem.v3 = None;
                    continue;
                }
                Some(name) => return Err(auth_err(match name {
                    "unknownUserNames" => "unknown user name".into(),
                    "wrongDigests" => {
                        "wrong authentication passphrase or protocol (wrongDigests)".into()
                    }
                    "decryptionErrors" => {
                        "wrong privacy passphrase or protocol (decryptionErrors)".into()
                    }
                    "unsupportedSecLevels" => {
                        "the user does not support this security level (check auth/priv protocols)"
                            .into()
                    }
                    other => format!("USM report {other}"),
                })),
                None => {
                    return Err(auth_err(format!(
                        "report {}",
                        what.map(|o| o.to_string()).unwrap_or_default()
                    )))
                }
            }
        }
    }

    /// RFC 3414 §4: learn the device's engine id, boots and time.
    pub(super) async fn discover_engine(
        &self,
        addr: SocketAddr,
        cred: &CredentialSet,
        user: &Arc<UsmUser>,
    ) -> Result<V3Peer, SnmpError> {
        let id = self.transport.new_id();
        let msg = V3Message {
            msg_id: id,
            max_size: 65507,
            flags: FLAG_REPORTABLE,
            usm: UsmParams::default(),
            data: ScopedData::Plain(ScopedPdu {
                context_engine_id: vec![],
                context_name: vec![],
                pdu: Pdu::request(PduType::Get, id, &[]),
            }),
        };
        let bytes = self.exchange(addr, id, &msg.encode().0, cred).await?;
        let d = match decode_message(&bytes) {
            Ok(Message::V3(d)) => d,
            _ => {
                return Err(SnmpError::Malformed {
                    addr,
                    what: "engine discovery got no v3 report".into(),
                })
            }
        };
        let u = d.msg.usm;
        if u.engine_id.is_empty() {
            return Err(SnmpError::Malformed {
                addr,
                what: "engine discovery report has an empty engine id".into(),
            });
        }
        Ok(V3Peer {
            keys: user.localize(&u.engine_id),
            engine_id: u.engine_id,
            boots: u.engine_boots,
            time: u.engine_time,
            synced_at: Instant::now(),
            user: user.clone(),
        })
    }
}

pub(super) fn usm_report_name(o: &Oid) -> Option<&'static str> {
    let a = o.arcs();
    if a.len() >= 10 && a[..9] == [1, 3, 6, 1, 6, 3, 15, 1, 1] {
        return Some(match a[9] {
            1 => "unsupportedSecLevels",
            2 => "notInTimeWindows",
            3 => "unknownUserNames",
            4 => "unknownEngineIDs",
            5 => "wrongDigests",
            6 => "decryptionErrors",
            _ => return None,
        });
    }
    None
}
