//! The SNMP engine: the IO edge of the SNMP stack.
//!
//! All requests of a process go out through a small pool of UDP sockets and
//! are matched to their responses by request id (v1/v2c) or msgID (v3), so
//! polling 10,000 devices needs a handful of file descriptors, not 10,000.
//! Each device is read by one task at a time (one request in flight per
//! device); a semaphore bounds how many devices are read at once.

use super::message::{
    decode_message, error_status, CommunityMessage, Message, Oid, Pdu, PduType, ScopedData,
    ScopedPdu, UsmParams, V3Message, Value, VarBind, Version, FLAG_REPORTABLE,
};
use super::usm::{LocalKeys, UsmError, UsmUser};
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

/// A community string. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone)]
pub enum Credential {
    Community { version: Version, community: Secret },
    V3 { user: Arc<UsmUser>, context: String },
}

/// A named credential set; the name is what errors and logs show.
#[derive(Debug, Clone)]
pub struct CredentialSet {
    pub name: String,
    pub credential: Credential,
}

impl CredentialSet {
    pub fn version(&self) -> Version {
        match &self.credential {
            Credential::Community { version, .. } => *version,
            Credential::V3 { .. } => Version::V3,
        }
    }
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Time to wait for the first answer; each retry waits `backoff` times longer.
    pub timeout: Duration,
    pub retries: u32,
    pub backoff: f64,
    /// How many devices are read at once.
    pub concurrency: usize,
    /// Rows per column asked for in one GETBULK.
    pub max_repetitions: u32,
    /// Upper bound on rows read from one table column.
    pub max_rows: usize,
    /// UDP sockets shared by all requests, per address family.
    pub sockets: usize,
    /// Packets per second over all devices, retransmissions included.
    pub max_pps: Option<u32>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            timeout: Duration::from_millis(1500),
            retries: 2,
            backoff: 1.5,
            concurrency: 256,
            max_repetitions: 25,
            max_rows: 2000,
            sockets: 4,
            max_pps: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SnmpError {
    #[error("no answer from {addr} with credential set '{credential}' ({version}) after {attempts} attempt(s): device unreachable, not speaking SNMP, or wrong community/credentials")]
    Timeout {
        addr: SocketAddr,
        credential: String,
        version: &'static str,
        attempts: u32,
    },
    #[error("{addr} refused credential set '{credential}': {reason}")]
    Auth {
        addr: SocketAddr,
        credential: String,
        reason: String,
    },
    #[error("{addr} answered with error status {status} ({name}) at varbind {index}")]
    Status {
        addr: SocketAddr,
        status: i64,
        name: &'static str,
        index: i64,
    },
    #[error("{addr} sent a malformed answer: {what}")]
    Malformed { addr: SocketAddr, what: String },
    #[error("network error talking to {addr}: {source}")]
    Io {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

impl SnmpError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, SnmpError::Timeout { .. })
    }
    pub fn is_auth(&self) -> bool {
        matches!(self, SnmpError::Auth { .. })
    }
}

fn status_name(s: i64) -> &'static str {
    match s {
        0 => "noError",
        1 => "tooBig",
        2 => "noSuchName",
        3 => "badValue",
        4 => "readOnly",
        5 => "genErr",
        6 => "noAccess",
        _ => "other",
    }
}

/// The kinds of read request the engine sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    Get,
    GetNext,
    GetBulk { max_repetitions: i64 },
}

struct Pending {
    peer: SocketAddr,
    tx: oneshot::Sender<Vec<u8>>,
}

/// Counters of what the engine did, for benchmarks and `status`.
#[derive(Debug, Default)]
pub struct EngineStats {
    pub requests_sent: AtomicU64,
    pub responses: AtomicU64,
    pub timeouts: AtomicU64,
    pub malformed: AtomicU64,
    pub stray: AtomicU64,
}

struct Transport {
    v4: Vec<Arc<UdpSocket>>,
    v6: Vec<Arc<UdpSocket>>,
    pending: Mutex<HashMap<i32, Pending>>,
    next_id: AtomicI32,
    stats: EngineStats,
    /// The next instant a packet may leave, when a rate limit is set.
    pacer: Option<(Duration, Mutex<Instant>)>,
}

impl Transport {
    fn socket_for(&self, addr: &SocketAddr) -> Option<&Arc<UdpSocket>> {
        let pool = if addr.is_ipv4() { &self.v4 } else { &self.v6 };
        if pool.is_empty() {
            return None;
        }
        let h = match addr {
            SocketAddr::V4(a) => u32::from(*a.ip()) as usize ^ a.port() as usize,
            SocketAddr::V6(a) => a.ip().octets()[15] as usize ^ a.port() as usize,
        };
        Some(&pool[h % pool.len()])
    }

    fn new_id(&self) -> i32 {
        loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed) & 0x7fff_ffff;
            if id != 0 {
                return id;
            }
        }
    }

    fn receive_loop(self: Arc<Self>, sock: Arc<UdpSocket>) {
        let weak = Arc::downgrade(&self);
        drop(self);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            loop {
                let (n, from) = match sock.recv_from(&mut buf).await {
                    Ok(x) => x,
                    // ICMP errors surface here on some systems; the request times out instead.
                    Err(_) => continue,
                };
                let Some(t) = weak.upgrade() else { return };
                let bytes = &buf[..n];
                let id = match peek_id(bytes) {
                    Some(id) => id,
                    None => {
                        t.stats.malformed.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%from, len = n, "dropped an undecodable SNMP packet");
                        continue;
                    }
                };
                let waiter = {
                    let mut p = t.pending.lock().expect("pending map lock");
                    match p.get(&id) {
                        Some(w) if same_peer(&w.peer, &from) => p.remove(&id),
                        _ => None,
                    }
                };
                match waiter {
                    Some(w) => {
                        t.stats.responses.fetch_add(1, Ordering::Relaxed);
                        let _ = w.tx.send(bytes.to_vec());
                    }
                    None => {
                        t.stats.stray.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%from, id, "dropped a response nobody waits for (late, duplicate or spoofed)");
                    }
                }
            }
        });
    }
}

fn same_peer(a: &SocketAddr, b: &SocketAddr) -> bool {
    a.port() == b.port() && a.ip().to_canonical() == b.ip().to_canonical()
}

/// Reads the request id (v1/v2c) or msgID (v3) without decoding the rest.
fn peek_id(bytes: &[u8]) -> Option<i32> {
    super::message::peek_id(bytes)
}

/// What the engine remembers about one device between reads.
#[derive(Default)]
pub struct DeviceMemory {
    /// Index into the credential list that last worked.
    pub credential: Option<usize>,
    /// The device answered GETBULK badly once: use GETNEXT from now on.
    pub bulk_broken: bool,
    /// Requests sent to this device (retransmissions not counted).
    pub pdus_sent: u64,
    v3: Option<V3Peer>,
}

struct V3Peer {
    engine_id: Vec<u8>,
    boots: i64,
    time: i64,
    synced_at: Instant,
    keys: LocalKeys,
    /// Which user these keys belong to.
    user: Arc<UsmUser>,
}

pub struct Engine {
    transport: Arc<Transport>,
    pub cfg: EngineConfig,
    devices: Mutex<HashMap<SocketAddr, Arc<tokio::sync::Mutex<DeviceMemory>>>>,
    limit: Arc<Semaphore>,
}

impl Engine {
    pub async fn new(cfg: EngineConfig) -> std::io::Result<Arc<Engine>> {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for _ in 0..cfg.sockets.max(1) {
            v4.push(Arc::new(bind("0.0.0.0:0".parse().expect("addr"))?));
            // IPv6 may be disabled on the host; IPv4 targets still work.
            if let Ok(s) = bind("[::]:0".parse().expect("addr")) {
                v6.push(Arc::new(s));
            }
        }
        let mut seed = [0u8; 4];
        let _ = getrandom::getrandom(&mut seed);
        let transport = Arc::new(Transport {
            v4: v4.clone(),
            v6: v6.clone(),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicI32::new(i32::from_ne_bytes(seed) & 0x3fff_ffff),
            stats: EngineStats::default(),
            pacer: cfg.max_pps.filter(|r| *r > 0).map(|r| {
                (
                    Duration::from_secs_f64(1.0 / r as f64),
                    Mutex::new(Instant::now()),
                )
            }),
        });
        for s in v4.into_iter().chain(v6) {
            transport.clone().receive_loop(s);
        }
        Ok(Arc::new(Engine {
            transport,
            limit: Arc::new(Semaphore::new(cfg.concurrency.max(1))),
            cfg,
            devices: Mutex::new(HashMap::new()),
        }))
    }

    pub fn stats(&self) -> &EngineStats {
        &self.transport.stats
    }

    /// Waits for a slot under the global concurrency limit.
    pub async fn permit(&self) -> OwnedSemaphorePermit {
        self.limit
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore is never closed")
    }

    /// The memory of one device; holding its lock is holding the device's
    /// single request slot.
    pub fn device(&self, addr: SocketAddr) -> Arc<tokio::sync::Mutex<DeviceMemory>> {
        self.devices
            .lock()
            .expect("device map lock")
            .entry(addr)
            .or_default()
            .clone()
    }

    /// Sends one message and waits for the matching answer, with retries.
    async fn exchange(
        &self,
        addr: SocketAddr,
        id: i32,
        packet: &[u8],
        cred: &CredentialSet,
    ) -> Result<Vec<u8>, SnmpError> {
        let sock = self
            .transport
            .socket_for(&addr)
            .ok_or_else(|| SnmpError::Io {
                addr,
                source: std::io::Error::other(
                    "no socket for this address family (is IPv6 enabled?)",
                ),
            })?
            .clone();
        let (tx, mut rx) = oneshot::channel();
        self.transport
            .pending
            .lock()
            .expect("pending map lock")
            .insert(id, Pending { peer: addr, tx });
        let _guard = PendingGuard {
            t: &self.transport,
            id,
        };
        let mut wait = self.cfg.timeout;
        for _attempt in 0..=self.cfg.retries {
            if let Some((gap, next)) = &self.transport.pacer {
                let slot = {
                    let mut n = next.lock().expect("pacer lock");
                    let slot = (*n).max(Instant::now());
                    *n = slot + *gap;
                    slot
                };
                tokio::time::sleep_until(slot.into()).await;
            }
            self.transport
                .stats
                .requests_sent
                .fetch_add(1, Ordering::Relaxed);
            if let Err(e) = sock.send_to(packet, addr).await {
                return Err(SnmpError::Io { addr, source: e });
            }
            match tokio::time::timeout(wait, &mut rx).await {
                Ok(Ok(bytes)) => return Ok(bytes),
                Ok(Err(_)) => unreachable!("sender lives in the pending map until removed"),
                Err(_) => {
                    wait = wait.mul_f64(self.cfg.backoff.max(1.0));
                }
            }
        }
        self.transport
            .stats
            .timeouts
            .fetch_add(1, Ordering::Relaxed);
        Err(SnmpError::Timeout {
            addr,
            credential: cred.name.clone(),
            version: cred.version().name(),
            attempts: self.cfg.retries + 1,
        })
    }

    /// One request/response with a device, v1, v2c or v3. Returns the response PDU.
    pub async fn request(
        &self,
        addr: SocketAddr,
        cred: &CredentialSet,
        mem: &mut DeviceMemory,
        ask: Ask,
        oids: &[Oid],
    ) -> Result<Pdu, SnmpError> {
        mem.pdus_sent += 1;
        let id = self.transport.new_id();
        let pdu = match ask {
            Ask::Get => Pdu::request(PduType::Get, id, oids),
            Ask::GetNext => Pdu::request(PduType::GetNext, id, oids),
            Ask::GetBulk { max_repetitions } => Pdu::bulk(id, 0, max_repetitions, oids),
        };
        match &cred.credential {
            Credential::Community { version, community } => {
                let msg = CommunityMessage {
                    version: *version,
                    community: community.0.as_bytes().to_vec(),
                    pdu,
                };
                let bytes = self.exchange(addr, id, &msg.encode(), cred).await?;
                match decode_message(&bytes) {
                    Ok(Message::Community(m)) => Ok(m.pdu),
                    Ok(Message::V3(_)) => Err(SnmpError::Malformed {
                        addr,
                        what: "answered a community request with a v3 message".into(),
                    }),
                    Err(e) => Err(SnmpError::Malformed {
                        addr,
                        what: e.to_string(),
                    }),
                }
            }
            Credential::V3 { user, context } => {
                self.request_v3(addr, cred, user, context, mem, pdu).await
            }
        }
    }

    async fn request_v3(
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
            let scoped = match (&d.msg.data, d.msg.flags & super::message::FLAG_AUTH) {
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
    async fn discover_engine(
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

    /// GET of many OIDs. Missing objects come back as NoSuchObject, also on v1
    /// (whose noSuchName error fails the whole PDU: the culprit is dropped and
    /// the rest asked again). Large requests that draw tooBig are split.
    pub async fn get(
        &self,
        addr: SocketAddr,
        cred: &CredentialSet,
        mem: &mut DeviceMemory,
        oids: &[Oid],
    ) -> Result<Vec<VarBind>, SnmpError> {
        let mut out: Vec<VarBind> = Vec::with_capacity(oids.len());
        let mut queue: Vec<Vec<Oid>> = vec![oids.to_vec()];
        let mut missing: Vec<Oid> = Vec::new();
        let mut rounds = 0;
        while let Some(batch) = queue.pop() {
            if batch.is_empty() {
                continue;
            }
            rounds += 1;
            if rounds > oids.len() * 2 + 8 {
                return Err(SnmpError::Malformed {
                    addr,
                    what: "device keeps failing GET requests".into(),
                });
            }
            let r = self.request(addr, cred, mem, Ask::Get, &batch).await?;
            match r.error_status {
                error_status::NO_ERROR => {
                    if r.varbinds.len() != batch.len() {
                        return Err(SnmpError::Malformed {
                            addr,
                            what: format!(
                                "GET of {} objects answered with {}",
                                batch.len(),
                                r.varbinds.len()
                            ),
                        });
                    }
                    out.extend(r.varbinds);
                }
                error_status::NO_SUCH_NAME
                    if r.error_index >= 1 && (r.error_index as usize) <= batch.len() =>
                {
                    let mut b = batch;
                    missing.push(b.remove(r.error_index as usize - 1));
                    queue.push(b);
                }
                error_status::TOO_BIG | error_status::GEN_ERR if batch.len() > 1 => {
                    let mut a = batch;
                    let b = a.split_off(a.len() / 2);
                    queue.push(b);
                    queue.push(a);
                }
                error_status::NO_SUCH_NAME | error_status::GEN_ERR => {
                    missing.extend(batch);
                }
                s => {
                    return Err(SnmpError::Status {
                        addr,
                        status: s,
                        name: status_name(s),
                        index: r.error_index,
                    })
                }
            }
        }
        out.extend(
            missing
                .into_iter()
                .map(|o| VarBind::new(o, Value::NoSuchObject)),
        );
        Ok(out)
    }

    /// Walks several table columns side by side: one GETBULK (or GETNEXT on
    /// v1 and on devices with broken GETBULK) carries every column still
    /// going. A column ends when it leaves its subtree, at endOfMibView, at
    /// `max_rows`, or when the device returns a non-increasing OID.
    pub async fn walk_columns(
        &self,
        addr: SocketAddr,
        cred: &CredentialSet,
        mem: &mut DeviceMemory,
        roots: &[Oid],
    ) -> Result<Vec<VarBind>, SnmpError> {
        struct Col {
            root: Oid,
            last: Oid,
            rows: usize,
        }
        let mut live: Vec<Col> = roots
            .iter()
            .map(|r| Col {
                root: r.clone(),
                last: r.clone(),
                rows: 0,
            })
            .collect();
        let mut out = Vec::new();
        let mut reps = self.cfg.max_repetitions.max(1) as i64;
        let mut first_round = true;
        let mut guard = 0usize;
        while !live.is_empty() {
            guard += 1;
            if guard > self.cfg.max_rows + 64 {
                tracing::warn!(%addr, "walk stopped: too many requests");
                break;
            }
            let use_bulk = cred.version() != Version::V1 && !mem.bulk_broken;
            let asks: Vec<Oid> = live.iter().map(|c| c.last.clone()).collect();
            let (kind, r) = if use_bulk {
                // GETBULK runs every column `per` rows on, also past its
                // end: ask little while many columns are live (most tables
                // are short), more once only the long ones remain.
                let budget = if first_round { 120 } else { 240 };
                let per = (reps as usize).min((budget / asks.len()).max(2)) as i64;
                let r = self
                    .request(
                        addr,
                        cred,
                        mem,
                        Ask::GetBulk {
                            max_repetitions: per,
                        },
                        &asks,
                    )
                    .await;
                (PduType::GetBulk, r)
            } else {
                (
                    PduType::GetNext,
                    self.request(addr, cred, mem, Ask::GetNext, &asks).await,
                )
            };
            let r = match r {
                Ok(r) => r,
                Err(e) if kind == PduType::GetBulk && e.is_timeout() => {
                    // Some agents never answer GETBULK at all.
                    tracing::info!(%addr, "GETBULK unanswered; using GETNEXT for this device");
                    mem.bulk_broken = true;
                    continue;
                }
                Err(e) => return Err(e),
            };
            first_round = false;
            if r.error_status != error_status::NO_ERROR || r.varbinds.is_empty() {
                if kind == PduType::GetBulk {
                    if r.error_status == error_status::TOO_BIG && reps > 1 {
                        reps = (reps / 2).max(1);
                        continue;
                    }
                    tracing::info!(%addr, status = r.error_status, "GETBULK answered badly; using GETNEXT for this device");
                    mem.bulk_broken = true;
                    continue;
                }
                if r.error_status == error_status::NO_SUCH_NAME {
                    // v1 end of MIB: the column named by error-index is done.
                    let i = r.error_index as usize;
                    if i >= 1 && i <= live.len() {
                        live.remove(i - 1);
                        continue;
                    }
                    break;
                }
                if r.error_status == error_status::TOO_BIG && live.len() > 1 {
                    // Walk the columns in two halves: recurse on fewer columns.
                    let half = live.split_off(live.len() / 2);
                    let first: Vec<Oid> = live.iter().map(|c| c.root.clone()).collect();
                    let second: Vec<Oid> = half.iter().map(|c| c.root.clone()).collect();
                    out.extend(Box::pin(self.walk_columns(addr, cred, mem, &first)).await?);
                    out.extend(Box::pin(self.walk_columns(addr, cred, mem, &second)).await?);
                    return Ok(out);
                }
                return Err(SnmpError::Status {
                    addr,
                    status: r.error_status,
                    name: status_name(r.error_status),
                    index: r.error_index,
                });
            }
            let n = live.len();
            let mut done = vec![false; n];
            let mut broken_bulk = false;
            for (i, vb) in r.varbinds.into_iter().enumerate() {
                let c = i % n;
                if done[c] {
                    continue;
                }
                let col = &mut live[c];
                if vb.value == Value::EndOfMibView || !vb.oid.starts_with(&col.root) {
                    done[c] = true;
                    continue;
                }
                if vb.oid <= col.last {
                    if kind == PduType::GetBulk {
                        broken_bulk = true;
                    } else {
                        tracing::warn!(%addr, column = %col.root, oid = %vb.oid, "device returned a non-increasing OID; column walk stopped");
                    }
                    done[c] = true;
                    continue;
                }
                col.last = vb.oid.clone();
                col.rows += 1;
                out.push(vb);
                if col.rows >= self.cfg.max_rows {
                    tracing::warn!(%addr, column = %col.root, rows = col.rows, "row bound reached; column walk stopped");
                    done[c] = true;
                }
            }
            if broken_bulk {
                // Retry the affected columns from their last good row with GETNEXT.
                tracing::info!(%addr, "GETBULK returned non-increasing OIDs; using GETNEXT for this device");
                mem.bulk_broken = true;
                for (c, d) in done.iter_mut().enumerate() {
                    if live[c].rows < self.cfg.max_rows {
                        *d = false;
                    }
                }
            }
            let mut k = 0;
            live.retain(|_| {
                let keep = !done[k];
                k += 1;
                keep
            });
        }
        Ok(out)
    }
}

struct PendingGuard<'a> {
    t: &'a Transport,
    id: i32,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.t
            .pending
            .lock()
            .expect("pending map lock")
            .remove(&self.id);
    }
}

fn usm_report_name(o: &Oid) -> Option<&'static str> {
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

fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let domain = if addr.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    // Bursts of answers from hundreds of devices must not overflow the queue.
    let _ = s.set_recv_buffer_size(8 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    UdpSocket::from_std(s.into())
}
