//! One simulated device: the recording it serves (with its own serial and
//! MAC), its faults, and what it counts.

use crate::fleet::Fleet;
use crate::recording::{Fault, Recording};

use meterlink_agent::snmp::usm::{LocalKeys, UsmUser};
use meterlink_agent::snmp::{Oid, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
pub(crate) struct Served {
    pub(crate) recording: Arc<Recording>,
    /// Replacement values (serial, MAC) by recording index.
    pub(crate) overrides: HashMap<usize, Value>,
}

impl Served {
    /// Clone `i` gets serial `<original>-<i>` and a MAC ending in `i`; clone 0
    /// is the recording as captured.
    pub(crate) fn new(recording: Arc<Recording>, i: usize) -> Served {
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
    pub(crate) fn value_at(&self, i: usize, offset: u64, regressed: bool) -> Value {
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
    pub(crate) served: Mutex<Arc<Served>>,
    /// Offset added to every counter of this clone.
    pub(crate) counter_offset: u64,
    pub(crate) engine_id: Vec<u8>,
    /// Active faults, one bit each.
    pub(crate) faults: AtomicU32,
    pub(crate) keys: Mutex<HashMap<Vec<u8>, LocalKeys>>,
    pub(crate) requests: AtomicU64,
    pub(crate) reports: AtomicU32,
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

    pub(crate) fn served(&self) -> Arc<Served> {
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

    pub(crate) fn has(&self, f: Fault) -> bool {
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

    pub(crate) fn value_at_fleet(&self, fleet: &Fleet, s: &Served, i: usize) -> Value {
        let elapsed = fleet.start.elapsed().as_secs_f64();
        let extra = (elapsed * fleet.cfg.pages_per_minute.max(0.0) / 60.0) as u64;
        s.value_at(
            i,
            self.counter_offset + extra,
            self.has(Fault::CounterRegression),
        )
    }
}
