//! The fleet and its responder: `Fleet::handle` is pure (a packet and a
//! time in, a packet or nothing out), the agent side of v1, v2c and v3.

use crate::device::{Served, SimConfig, SimDevice};
use crate::recording::{Fault, Recording};

use meterlink_agent::snmp::message::{
    decode_message, error_status, CommunityMessage, Message, Pdu, PduType, ScopedData, ScopedPdu,
    UsmParams, V3Message, FLAG_AUTH, FLAG_PRIV, FLAG_REPORTABLE,
};
use meterlink_agent::snmp::usm::{LocalKeys, UsmError};
use meterlink_agent::snmp::{Oid, Value, VarBind, Version};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// All simulated devices and how they behave.
pub struct Fleet {
    pub cfg: SimConfig,
    pub devices: Vec<Arc<SimDevice>>,
    pub(crate) start: Instant,
    pub(crate) rng: Mutex<u64>,
}

impl Fleet {
    /// Builds `count` devices on `addrs`, cycling through `recordings`. Clone
    /// `i` gets serial `<original>-<i>`, a MAC ending in `i` and counters
    /// offset by `i * 1000`. Clone 0 is the recording as captured.
    pub fn new(cfg: SimConfig, recordings: Vec<Arc<Recording>>, addrs: Vec<SocketAddr>) -> Fleet {
        let mut devices = Vec::with_capacity(addrs.len());
        for (i, addr) in addrs.into_iter().enumerate() {
            let rec = recordings[i % recordings.len()].clone();
            let mut engine_id = vec![0x80, 0x00, 0x1f, 0x88, 0x04];
            engine_id.extend_from_slice(b"msim");
            engine_id.extend_from_slice(&(i as u32).to_be_bytes());
            devices.push(Arc::new(SimDevice {
                index: i,
                addr,
                served: Mutex::new(Arc::new(Served::new(rec, i))),
                counter_offset: i as u64 * 1000,
                engine_id,
                faults: AtomicU32::new(0),
                keys: Mutex::new(HashMap::new()),
                requests: AtomicU64::new(0),
                reports: AtomicU32::new(0),
            }));
        }
        let seed = cfg.seed | 1;
        Fleet {
            cfg,
            devices,
            start: Instant::now(),
            rng: Mutex::new(seed),
        }
    }

    fn random(&self) -> f64 {
        let mut s = self.rng.lock().expect("rng lock");
        // xorshift64: fast, deterministic for a seed; not for security.
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        (*s >> 11) as f64 / (1u64 << 53) as f64
    }

    /// How long to hold the answer: latency plus uniform jitter.
    pub fn delay(&self) -> Duration {
        let j = self.cfg.jitter.as_secs_f64();
        let d = self.cfg.latency.as_secs_f64() + (self.random() * 2.0 - 1.0) * j;
        Duration::from_secs_f64(d.max(0.0))
    }

    fn engine_time(&self) -> i64 {
        self.start.elapsed().as_secs() as i64 + 1
    }

    /// Answers one request to device `d`. None: no answer (loss, a fault, or
    /// a packet nothing would answer).
    pub fn handle(&self, d: &SimDevice, packet: &[u8]) -> Option<Vec<u8>> {
        d.requests.fetch_add(1, Ordering::Relaxed);
        if self.cfg.loss > 0.0 && self.random() < self.cfg.loss {
            return None;
        }
        if d.has(Fault::NoReply) {
            return None;
        }
        let mut out = match decode_message(packet).ok()? {
            Message::Community(m) => self.handle_community(d, m)?,
            Message::V3(v) => self.handle_v3(d, packet, v.auth_params_offset, v.msg)?,
        };
        if d.has(Fault::Truncated) {
            out.truncate(out.len() / 2);
        }
        Some(out)
    }

    fn handle_community(&self, d: &SimDevice, m: CommunityMessage) -> Option<Vec<u8>> {
        let c = String::from_utf8_lossy(&m.community);
        // Like snmpsim, the recording's name also works as its community.
        if c != self.cfg.community && c != d.recording().name {
            return None;
        }
        if m.version == Version::V1 && m.pdu.kind == PduType::GetBulk {
            return None;
        }
        let mut pdu = self.respond(d, &m.pdu, m.version, self.cfg.max_response)?;
        if d.has(Fault::WrongRequestId) {
            pdu.request_id = pdu.request_id.wrapping_add(1);
        }
        Some(
            CommunityMessage {
                version: m.version,
                community: m.community,
                pdu,
            }
            .encode(),
        )
    }

    fn report(
        &self,
        d: &SimDevice,
        msg_id: i32,
        which: u32,
        keys: Option<&LocalKeys>,
        user: &[u8],
    ) -> Vec<u8> {
        let n = d.reports.fetch_add(1, Ordering::Relaxed) + 1;
        let oid: Oid = format!("1.3.6.1.6.3.15.1.1.{which}.0")
            .parse()
            .expect("oid");
        let msg = V3Message {
            msg_id,
            max_size: 65507,
            flags: 0,
            usm: UsmParams {
                engine_id: d.engine_id.clone(),
                engine_boots: 1,
                engine_time: self.engine_time(),
                user_name: user.to_vec(),
                auth_params: vec![],
                priv_params: vec![],
            },
            data: ScopedData::Plain(ScopedPdu {
                context_engine_id: d.engine_id.clone(),
                context_name: vec![],
                pdu: Pdu {
                    kind: PduType::Report,
                    request_id: msg_id,
                    error_status: 0,
                    error_index: 0,
                    varbinds: vec![VarBind::new(oid, Value::Counter32(n))],
                },
            }),
        };
        match keys {
            Some(k) => k.seal(msg),
            None => msg.encode().0,
        }
    }

    fn handle_v3(
        &self,
        d: &SimDevice,
        packet: &[u8],
        auth_at: usize,
        m: V3Message,
    ) -> Option<Vec<u8>> {
        let u = &m.usm;
        let reportable = m.flags & FLAG_REPORTABLE != 0;
        if u.engine_id != d.engine_id {
            return reportable.then(|| self.report(d, m.msg_id, 4, None, &u.user_name));
        }
        let Some(user) = self.cfg.v3_users.iter().find(|x| x.name == u.user_name) else {
            return reportable.then(|| self.report(d, m.msg_id, 3, None, &u.user_name));
        };
        let want = user.security_flags();
        if m.flags & (FLAG_AUTH | FLAG_PRIV) != want {
            return reportable.then(|| self.report(d, m.msg_id, 1, None, &u.user_name));
        }
        let keys = {
            let mut k = d.keys.lock().expect("keys lock");
            k.entry(user.name.clone())
                .or_insert_with(|| user.localize(&d.engine_id))
                .clone()
        };
        let scoped = match keys.open(packet, auth_at, &m) {
            Ok(s) => s,
            Err(UsmError::WrongDigest) | Err(UsmError::NotAuthenticated) => {
                return reportable.then(|| self.report(d, m.msg_id, 5, None, &u.user_name))
            }
            Err(_) => return reportable.then(|| self.report(d, m.msg_id, 6, None, &u.user_name)),
        };
        let now = self.engine_time();
        if u.engine_boots != 1 || (u.engine_time - now).abs() > 150 {
            return Some(self.report(d, m.msg_id, 2, Some(&keys), &u.user_name));
        }
        let max = (m.max_size.max(484) as usize).min(self.cfg.max_response);
        let mut pdu = self.respond(d, &scoped.pdu, Version::V3, max.saturating_sub(120))?;
        let mut msg_id = m.msg_id;
        if d.has(Fault::WrongRequestId) {
            msg_id = msg_id.wrapping_add(1);
            pdu.request_id = pdu.request_id.wrapping_add(1);
        }
        Some(keys.seal(V3Message {
            msg_id,
            max_size: 65507,
            flags: want,
            usm: UsmParams {
                engine_id: d.engine_id.clone(),
                engine_boots: 1,
                engine_time: now,
                user_name: u.user_name.clone(),
                auth_params: vec![],
                priv_params: vec![],
            },
            data: ScopedData::Plain(ScopedPdu {
                context_engine_id: d.engine_id.clone(),
                context_name: scoped.context_name,
                pdu,
            }),
        }))
    }

    /// Builds the response PDU to a request; `max` bounds its encoded size.
    fn respond(&self, d: &SimDevice, req: &Pdu, version: Version, max: usize) -> Option<Pdu> {
        let served = d.served();
        let items = &served.recording.items;
        let value = |i: usize| d.value_at_fleet(self, &served, i);
        let v1 = version == Version::V1;
        let mut resp = Pdu {
            kind: PduType::Response,
            request_id: req.request_id,
            error_status: 0,
            error_index: 0,
            varbinds: Vec::with_capacity(req.varbinds.len()),
        };
        let next_index = |o: &Oid| items.partition_point(|(x, _)| x <= o);
        let walk_step = |o: &Oid| -> VarBind {
            if d.has(Fault::NonIncreasing) && items.binary_search_by(|(x, _)| x.cmp(o)).is_ok() {
                // Answer with the very OID that was asked: a broken agent.
                let i = items.binary_search_by(|(x, _)| x.cmp(o)).expect("found");
                return VarBind::new(o.clone(), value(i));
            }
            let i = next_index(o);
            match items.get(i) {
                Some((x, _)) => VarBind::new(x.clone(), value(i)),
                None => VarBind::new(o.clone(), Value::EndOfMibView),
            }
        };
        match req.kind {
            PduType::Get => {
                for (k, vb) in req.varbinds.iter().enumerate() {
                    match items.binary_search_by(|(x, _)| x.cmp(&vb.oid)) {
                        Ok(i) => resp.varbinds.push(VarBind::new(vb.oid.clone(), value(i))),
                        Err(_) if v1 => {
                            resp.error_status = error_status::NO_SUCH_NAME;
                            resp.error_index = k as i64 + 1;
                            resp.varbinds = req.varbinds.clone();
                            return Some(resp);
                        }
                        Err(_) => {
                            let instance = items.iter().any(|(x, _)| {
                                vb.oid.arcs().len() > 1
                                    && x.starts_with(&Oid(
                                        vb.oid.arcs()[..vb.oid.arcs().len() - 1].to_vec()
                                    ))
                            });
                            resp.varbinds.push(VarBind::new(
                                vb.oid.clone(),
                                if instance {
                                    Value::NoSuchInstance
                                } else {
                                    Value::NoSuchObject
                                },
                            ))
                        }
                    }
                }
            }
            PduType::GetNext => {
                for (k, vb) in req.varbinds.iter().enumerate() {
                    let r = walk_step(&vb.oid);
                    if v1 && r.value == Value::EndOfMibView {
                        resp.error_status = error_status::NO_SUCH_NAME;
                        resp.error_index = k as i64 + 1;
                        resp.varbinds = req.varbinds.clone();
                        return Some(resp);
                    }
                    resp.varbinds.push(r);
                }
            }
            PduType::GetBulk => {
                if d.has(Fault::BrokenBulk) {
                    return None;
                }
                if d.has(Fault::TooBigEmpty) {
                    resp.error_status = error_status::TOO_BIG;
                    return Some(resp);
                }
                let n = req.varbinds.len();
                let nr = (req.error_status.max(0) as usize).min(n);
                let reps = req.error_index.clamp(0, 1000) as usize;
                for vb in &req.varbinds[..nr] {
                    resp.varbinds.push(walk_step(&vb.oid));
                }
                let mut cursors: Vec<Oid> =
                    req.varbinds[nr..].iter().map(|v| v.oid.clone()).collect();
                let mut size = 64 + resp.varbinds.len() * 32;
                'rows: for _ in 0..reps {
                    if cursors.is_empty() {
                        break;
                    }
                    let mut all_end = true;
                    for c in cursors.iter_mut() {
                        let r = walk_step(c);
                        size += r.oid.arcs().len() + 16 + value_len(&r.value);
                        if size > max {
                            break 'rows;
                        }
                        if r.value != Value::EndOfMibView {
                            all_end = false;
                        }
                        *c = r.oid.clone();
                        resp.varbinds.push(r);
                    }
                    if all_end {
                        break;
                    }
                }
                if resp.varbinds.is_empty() && reps > 0 && n > nr {
                    resp.error_status = error_status::TOO_BIG;
                }
            }
            _ => return None,
        }
        let size: usize = resp
            .varbinds
            .iter()
            .map(|v| v.oid.arcs().len() + 16 + value_len(&v.value))
            .sum();
        if size > max {
            resp.error_status = error_status::TOO_BIG;
            resp.error_index = 0;
            resp.varbinds.clear();
        }
        Some(resp)
    }
}

pub(crate) fn value_len(v: &Value) -> usize {
    match v {
        Value::OctetString(b) | Value::Opaque(b) => b.len(),
        Value::ObjectId(o) => o.arcs().len() * 2,
        _ => 9,
    }
}
