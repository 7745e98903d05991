//! The SNMP engine: the IO edge of the SNMP stack.
//!
//! All requests of a process go out through a small pool of UDP sockets and
//! are matched to their responses by request id (v1/v2c) or msgID (v3), so
//! polling 10,000 devices needs a handful of file descriptors, not 10,000.
//! Each device is read by one task at a time (one request in flight per
//! device); a semaphore bounds how many devices are read at once.
//!
//! `transport` owns the sockets and matches answers to requests, `pacing`
//! spaces packets under a rate limit, `v3` discovers engines and keeps their
//! keys, `walk` holds the reads a profile's plan asks for (GET, column walks).

mod pacing;
mod transport;
mod v3;
mod walk;

use super::message::{decode_message, CommunityMessage, Message, Oid, Pdu, PduType, Version};
use super::usm::UsmUser;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI32, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use transport::{bind, Transport};
use v3::V3Peer;

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

pub(super) fn status_name(s: i64) -> &'static str {
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

/// Counters of what the engine did, for benchmarks and `status`.
#[derive(Debug, Default)]
pub struct EngineStats {
    pub requests_sent: AtomicU64,
    pub responses: AtomicU64,
    pub timeouts: AtomicU64,
    pub malformed: AtomicU64,
    pub stray: AtomicU64,
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
            pacer: pacing::Pacer::new(cfg.max_pps),
            closed: tokio::sync::watch::Sender::new(()),
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
}
