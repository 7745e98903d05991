//! meterlink-sim: serves simulated devices from `.snmprec` recordings.
//!
//! The responder ([`Fleet::handle`]) is pure: a packet and a time in, a
//! packet (or nothing) out. [`serve`] is the IO edge: one UDP socket per
//! simulated device, so every device has its own address as on a real LAN.

use meterlink_agent::profile::ProfileSet;
use meterlink_agent::snmp::message::{
    decode_message, error_status, CommunityMessage, Message, Pdu, PduType, ScopedData, ScopedPdu,
    UsmParams, V3Message, FLAG_AUTH, FLAG_PRIV, FLAG_REPORTABLE,
};
use meterlink_agent::snmp::usm::{LocalKeys, UsmError, UsmUser};
use meterlink_agent::snmp::{snmprec, Oid, Value, VarBind, Version};
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Faults a device can be told to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Never answer.
    NoReply,
    /// Answer with a request id (msgID on v3) the request did not carry.
    WrongRequestId,
    /// Answer with only the first half of the packet.
    Truncated,
    /// In walks, answer GETNEXT/GETBULK with the OID asked for (not increasing).
    NonIncreasing,
    /// Answer every GETBULK with tooBig and an empty varbind list.
    TooBigEmpty,
    /// Counters read lower than before (a board swap or half-failed read).
    CounterRegression,
    /// Never answer GETBULK (GET and GETNEXT still work).
    BrokenBulk,
}

impl Fault {
    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl std::str::FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "no-reply" => Fault::NoReply,
            "wrong-request-id" => Fault::WrongRequestId,
            "truncated" => Fault::Truncated,
            "non-increasing" => Fault::NonIncreasing,
            "toobig-empty" => Fault::TooBigEmpty,
            "counter-regression" => Fault::CounterRegression,
            "broken-bulk" => Fault::BrokenBulk,
            _ => return Err(format!(
                "unknown fault {s:?}; one of no-reply, wrong-request-id, truncated, non-increasing, toobig-empty, counter-regression, broken-bulk"
            )),
        })
    }
}

/// A loaded recording: sorted OIDs and values, plus which entries are
/// counters, serials and MACs (from the device profiles) so clones differ.
#[derive(Debug)]
pub struct Recording {
    pub name: String,
    pub items: Vec<(Oid, Value)>,
    counters: Vec<usize>,
    serials: Vec<usize>,
    macs: Vec<usize>,
}

impl Recording {
    /// Parses a recording. Bad lines are skipped and returned beside it.
    pub fn parse(name: &str, text: &str) -> (Recording, Vec<snmprec::SnmprecError>) {
        let (items, errors) = snmprec::parse_lenient(name, text);
        let profiles = ProfileSet::embedded();
        let mut counter_roots: BTreeSet<Oid> = BTreeSet::new();
        let mut serial_oids: BTreeSet<Oid> = BTreeSet::new();
        for p in &profiles.profiles {
            for t in &p.tables {
                counter_roots.insert(t.value_column.clone());
            }
            for c in &p.counters {
                counter_roots.insert(c.oid.clone());
            }
            serial_oids.extend(p.identity.serial.iter().cloned());
        }
        let mac_root: Oid = "1.3.6.1.2.1.2.2.1.6".parse().expect("oid");
        let mut counters = Vec::new();
        let mut serials = Vec::new();
        let mut macs = Vec::new();
        for (i, (o, v)) in items.iter().enumerate() {
            if counter_roots.iter().any(|r| o.starts_with(r)) && v.as_u64().is_some() {
                counters.push(i);
            }
            if serial_oids.contains(o) && v.as_bytes().is_some_and(|b| !b.is_empty()) {
                serials.push(i);
            }
            if o.starts_with(&mac_root) && v.as_bytes().is_some_and(|b| b.len() == 6) {
                macs.push(i);
            }
        }
        (
            Recording {
                name: name.to_string(),
                items,
                counters,
                serials,
                macs,
            },
            errors,
        )
    }
}

/// How the fleet behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub community: String,
    pub v3_users: Vec<Arc<UsmUser>>,
    pub latency: Duration,
    pub jitter: Duration,
    /// Probability (0..1) that a request is dropped.
    pub loss: f64,
    /// Pages per minute each clone's counters advance by.
    pub pages_per_minute: f64,
    /// Largest response, in bytes, for v1/v2c (v3 also honours msgMaxSize).
    pub max_response: usize,
    pub seed: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            community: "public".into(),
            v3_users: Vec::new(),
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
            pages_per_minute: 0.0,
            max_response: 65507,
            seed: 1,
        }
    }
}

/// What a device serves: a recording and this clone's own values in it.
struct Served {
    recording: Arc<Recording>,
    /// Replacement values (serial, MAC) by recording index.
    overrides: HashMap<usize, Value>,
}

impl Served {
    /// Clone `i` gets serial `<original>-<i>` and a MAC ending in `i`; clone 0
    /// is the recording as captured.
    fn new(recording: Arc<Recording>, i: usize) -> Served {
        let mut overrides = HashMap::new();
        if i > 0 {
            for &si in &recording.serials {
                if let Some(b) = recording.items[si].1.as_bytes() {
                    let s = format!("{}-{i}", String::from_utf8_lossy(b));
                    overrides.insert(si, Value::OctetString(s.into_bytes()));
                }
            }
            for &mi in &recording.macs {
                if let Some(b) = recording.items[mi].1.as_bytes() {
                    let mut m = b.to_vec();
                    m[3..6].copy_from_slice(&(i as u32).to_be_bytes()[1..]);
                    overrides.insert(mi, Value::OctetString(m));
                }
            }
        }
        Served {
            recording,
            overrides,
        }
    }

    /// The value of entry `i`, counters advanced by `offset` pages and
    /// halved while `regressed`.
    fn value_at(&self, i: usize, offset: u64, regressed: bool) -> Value {
        if let Some(v) = self.overrides.get(&i) {
            return v.clone();
        }
        let v = &self.recording.items[i].1;
        if self.recording.counters.binary_search(&i).is_err() {
            return v.clone();
        }
        let advanced = v.as_u64().unwrap_or(0) + offset;
        let value = if regressed { advanced / 2 } else { advanced };
        match v {
            Value::Counter32(_) => Value::Counter32(value as u32),
            Value::Counter64(_) => Value::Counter64(value),
            Value::Gauge32(_) => Value::Gauge32(value as u32),
            _ => Value::Integer(value as i64),
        }
    }
}

/// One simulated device.
pub struct SimDevice {
    pub index: usize,
    pub addr: SocketAddr,
    /// Swapped whole by `load`; each request answers from one snapshot.
    served: Mutex<Arc<Served>>,
    /// Offset added to every counter of this clone.
    counter_offset: u64,
    engine_id: Vec<u8>,
    /// Active faults, one bit each.
    faults: AtomicU32,
    keys: Mutex<HashMap<Vec<u8>, LocalKeys>>,
    requests: AtomicU64,
    reports: AtomicU32,
}

impl SimDevice {
    pub fn serial(&self) -> Option<String> {
        let s = self.served();
        let i = *s.recording.serials.first()?;
        s.value_at(i, 0, false)
            .as_bytes()
            .map(|b| String::from_utf8_lossy(b).to_string())
    }

    /// The recording this device serves now.
    pub fn recording(&self) -> Arc<Recording> {
        self.served().recording.clone()
    }

    /// Serves `recording` from the next request on, as this clone (its own
    /// serial, MAC and counter offset): a device whose alerts, supplies or
    /// console change while it runs.
    pub fn load(&self, recording: Arc<Recording>) {
        let next = Arc::new(Served::new(recording, self.index));
        *self.served.lock().expect("served lock") = next;
    }

    fn served(&self) -> Arc<Served> {
        self.served.lock().expect("served lock").clone()
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn set_fault(&self, f: Fault, on: bool) {
        if on {
            self.faults.fetch_or(f.bit(), Ordering::Relaxed);
        } else {
            self.faults.fetch_and(!f.bit(), Ordering::Relaxed);
        }
    }

    fn has(&self, f: Fault) -> bool {
        self.faults.load(Ordering::Relaxed) & f.bit() != 0
    }

    /// The counter value this device reports for `oid` now: the ground truth
    /// that end-to-end tests compare filed readings against.
    pub fn counter_value(&self, fleet: &Fleet, oid: &Oid) -> Option<u64> {
        let s = self.served();
        let i = s
            .recording
            .items
            .binary_search_by(|(o, _)| o.cmp(oid))
            .ok()?;
        self.value_at_fleet(fleet, &s, i).as_u64()
    }

    fn value_at_fleet(&self, fleet: &Fleet, s: &Served, i: usize) -> Value {
        let elapsed = fleet.start.elapsed().as_secs_f64();
        let extra = (elapsed * fleet.cfg.pages_per_minute.max(0.0) / 60.0) as u64;
        s.value_at(
            i,
            self.counter_offset + extra,
            self.has(Fault::CounterRegression),
        )
    }
}

/// All simulated devices and how they behave.
pub struct Fleet {
    pub cfg: SimConfig,
    pub devices: Vec<Arc<SimDevice>>,
    start: Instant,
    rng: Mutex<u64>,
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

fn value_len(v: &Value) -> usize {
    match v {
        Value::OctetString(b) | Value::Opaque(b) => b.len(),
        Value::ObjectId(o) => o.arcs().len() * 2,
        _ => 9,
    }
}

/// Executes one line of the control protocol and returns the answer:
/// `fault KIND on|off [all|I[,J...]]`, `stats`, `list`.
pub fn control(fleet: &Fleet, line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["fault", kind, state, rest @ ..] => {
            let fault: Fault = match kind.parse() {
                Ok(f) => f,
                Err(e) => return format!("error: {e}"),
            };
            let on = match *state {
                "on" => true,
                "off" => false,
                other => return format!("error: expected on or off, got {other:?}"),
            };
            let which: Vec<usize> = match rest {
                [] | ["all"] => (0..fleet.devices.len()).collect(),
                [list] => match list
                    .split(',')
                    .map(|x| x.parse::<usize>())
                    .collect::<Result<Vec<_>, _>>()
                {
                    Ok(v) if v.iter().all(|i| *i < fleet.devices.len()) => v,
                    _ => return format!("error: device indexes are 0..{}", fleet.devices.len()),
                },
                _ => return "error: usage: fault KIND on|off [all|I,J,...]".into(),
            };
            for i in &which {
                fleet.devices[*i].set_fault(fault, on);
            }
            format!("ok: {kind} {state} on {} devices", which.len())
        }
        ["stats"] => format!(
            "devices {} requests {}",
            fleet.devices.len(),
            fleet.devices.iter().map(|d| d.requests()).sum::<u64>()
        ),
        ["list"] => fleet
            .devices
            .iter()
            .map(|d| {
                format!(
                    "{} {} {} {}",
                    d.index,
                    d.addr,
                    d.recording().name,
                    d.serial().unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => "error: commands: fault KIND on|off [all|I,J,...]; stats; list".into(),
    }
}

/// Serves the fleet until the returned handle is dropped or aborted.
pub async fn serve(fleet: Arc<Fleet>) -> std::io::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut tasks = Vec::with_capacity(fleet.devices.len());
    for d in fleet.devices.clone() {
        let sock = Arc::new(tokio::net::UdpSocket::bind(d.addr).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot listen on {}: {e}", d.addr))
        })?);
        let fleet = fleet.clone();
        tasks.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            loop {
                let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                    continue;
                };
                let Some(answer) = fleet.handle(&d, &buf[..n]) else {
                    continue;
                };
                let delay = fleet.delay();
                if delay.is_zero() {
                    let _ = sock.send_to(&answer, from).await;
                } else {
                    let sock = sock.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = sock.send_to(&answer, from).await;
                    });
                }
            }
        }));
    }
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(n: usize) -> Fleet {
        let (r, _) = Recording::parse(
            "t",
            "1.3.6.1.2.1.1.1.0|4|Canon LBP\n1.3.6.1.2.1.43.10.2.1.4.1.1|65|100\n",
        );
        let addrs = (0..n)
            .map(|i| format!("127.0.0.1:{}", 20000 + i).parse().unwrap())
            .collect();
        Fleet::new(SimConfig::default(), vec![Arc::new(r)], addrs)
    }

    fn get(f: &Fleet, d: usize, oid: &str) -> Option<Pdu> {
        let m = CommunityMessage {
            version: Version::V2c,
            community: b"public".to_vec(),
            pdu: Pdu::request(PduType::Get, 7, &[oid.parse().unwrap()]),
        };
        let out = f.handle(&f.devices[d], &m.encode())?;
        match decode_message(&out).ok()? {
            Message::Community(c) => Some(c.pdu),
            _ => None,
        }
    }

    #[test]
    fn control_switches_faults_on_and_off() {
        let f = fleet(3);
        assert!(get(&f, 1, "1.3.6.1.2.1.1.1.0").is_some());
        assert_eq!(
            control(&f, "fault no-reply on 1"),
            "ok: no-reply on on 1 devices"
        );
        assert!(get(&f, 1, "1.3.6.1.2.1.1.1.0").is_none());
        assert!(get(&f, 0, "1.3.6.1.2.1.1.1.0").is_some());
        assert_eq!(
            control(&f, "fault no-reply off all"),
            "ok: no-reply off on 3 devices"
        );
        assert!(get(&f, 1, "1.3.6.1.2.1.1.1.0").is_some());
        assert!(control(&f, "fault melt on").starts_with("error: unknown fault"));
        assert!(control(&f, "fault no-reply on 9").starts_with("error"));
        assert!(control(&f, "stats").starts_with("devices 3 requests"));
    }

    #[test]
    fn counters_offset_per_clone_and_regress_on_demand() {
        let f = fleet(2);
        let value = |d| {
            get(&f, d, "1.3.6.1.2.1.43.10.2.1.4.1.1").unwrap().varbinds[0]
                .value
                .clone()
        };
        assert_eq!(value(0), Value::Counter32(100));
        assert_eq!(value(1), Value::Counter32(1100));
        control(&f, "fault counter-regression on 1");
        assert_eq!(value(1), Value::Counter32(550));
    }

    #[test]
    fn a_loaded_recording_is_served_as_the_same_clone() {
        let f = fleet(2);
        let (r, _) = Recording::parse(
            "t2",
            "1.3.6.1.2.1.1.1.0|4|Canon LBP jammed\n1.3.6.1.2.1.43.10.2.1.4.1.1|65|200\n",
        );
        f.devices[1].load(Arc::new(r));
        let pdu = get(&f, 1, "1.3.6.1.2.1.1.1.0").unwrap();
        assert_eq!(
            pdu.varbinds[0].value,
            Value::OctetString(b"Canon LBP jammed".to_vec())
        );
        // Clone 1 keeps its counter offset in the new recording.
        let pdu = get(&f, 1, "1.3.6.1.2.1.43.10.2.1.4.1.1").unwrap();
        assert_eq!(pdu.varbinds[0].value, Value::Counter32(1200));
        assert_eq!(f.devices[1].recording().name, "t2");
        // The other device still serves the first recording.
        let pdu = get(&f, 0, "1.3.6.1.2.1.1.1.0").unwrap();
        assert_eq!(
            pdu.varbinds[0].value,
            Value::OctetString(b"Canon LBP".to_vec())
        );
    }

    #[test]
    fn wrong_community_gets_no_answer_and_garbage_is_ignored() {
        let f = fleet(1);
        let m = CommunityMessage {
            version: Version::V2c,
            community: b"nope".to_vec(),
            pdu: Pdu::request(PduType::Get, 7, &["1.3.6.1.2.1.1.1.0".parse().unwrap()]),
        };
        assert!(f.handle(&f.devices[0], &m.encode()).is_none());
        assert!(f.handle(&f.devices[0], &[0x30, 0x80, 0xff]).is_none());
    }
}
