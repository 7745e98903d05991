//! The buffer on sled 0.34.
//!
//! Layout: tree `obs` maps the big-endian seq to `[kind byte][Observation as
//! protobuf]`; tree `meta` keeps `next_seq`, `last_ack` and the drop counters.
//! sled recovers a prefix of its log after a crash, so writing observations
//! before `next_seq` and flushing before an append returns keeps both
//! consistent: on open, `next_seq` is at least one past the last record.

use super::{device_key, is_meter, Buffer, BufferError, BufferStats};
use meterlink_proto::v1::{observation::Body, Observation};
use prost::Message;
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const KIND_METER: u8 = 1;
const KIND_OTHER: u8 = 2;
/// sled's page cache (its default is 1 GiB). The buffer is written at its
/// tail and read at its head, so a small cache serves it; the agent's memory
/// then stays bounded on a small LAN host whatever the buffer's size.
const CACHE_CAPACITY: u64 = 16 * 1024 * 1024;

pub struct SledBuffer {
    path: PathBuf,
    db: sled::Db,
    obs: sled::Tree,
    meta: sled::Tree,
    quarantine: sled::Tree,
    state: Mutex<State>,
    max_bytes: u64,
}

#[derive(Debug, Default)]
struct State {
    next_seq: u64,
    count: u64,
    bytes: u64,
    last_ack: u64,
    dropped: u64,
    coalesced: u64,
    /// Non-meter records, oldest first, with their sizes: what goes first
    /// when the buffer is full.
    others: VecDeque<(u64, u64)>,
    /// Where the meter-merging sweep resumes.
    cursor: u64,
    /// Newest meter reading per device (seq, counter ids); built on first need.
    newest: Option<HashMap<String, (u64, HashSet<String>)>>,
}

fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

fn seq_of(k: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&k[..8.min(k.len())]);
    u64::from_be_bytes(b)
}

fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(1)
}

/// What happened when the buffer was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenOutcome {
    Opened,
    /// The directory could not be opened and was moved here; a fresh buffer replaced it.
    MovedAside(PathBuf),
}

impl SledBuffer {
    /// Opens (or creates) the buffer at `path`, holding about `max_bytes`.
    /// A directory that fails to open is moved aside, reported, and replaced
    /// by a fresh buffer: the agent keeps running.
    pub fn open(path: &Path, max_bytes: u64) -> Result<(SledBuffer, OpenOutcome), BufferError> {
        match Self::try_open(path, max_bytes) {
            Ok(b) => Ok((b, OpenOutcome::Opened)),
            // A full disk or a permission problem is not damage: moving the
            // buffer aside would only hide its data. Report and let the caller retry.
            Err(
                e @ BufferError::Storage {
                    source: sled::Error::Io(_),
                    ..
                },
            ) => Err(e),
            Err(first) => {
                let aside = aside_name(path);
                tracing::error!(
                    path = %path.display(), error = %first, moved_to = %aside.display(),
                    "buffer cannot be opened; moving it aside and starting a fresh one (unsent observations stay in the moved directory)"
                );
                if path.exists() {
                    std::fs::rename(path, &aside).map_err(|e| BufferError::Storage {
                        path: path.display().to_string(),
                        source: sled::Error::Io(e),
                    })?;
                }
                let b = Self::try_open(path, max_bytes)?;
                Ok((b, OpenOutcome::MovedAside(aside)))
            }
        }
    }

    fn try_open(path: &Path, max_bytes: u64) -> Result<SledBuffer, BufferError> {
        // sled's IO threads may hold the file lock for a moment after the last
        // handle of a previous open is dropped: wait for it, boundedly.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match Self::try_open_once(path, max_bytes) {
                Err(BufferError::Storage {
                    source: sled::Error::Io(e),
                    ..
                }) if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => return other,
            }
        }
    }

    fn try_open_once(path: &Path, max_bytes: u64) -> Result<SledBuffer, BufferError> {
        let p = path.to_path_buf();
        let storage = |source: sled::Error| BufferError::Storage {
            path: p.display().to_string(),
            source,
        };
        // sled may panic on some damaged files; a damaged buffer must not
        // take the agent down.
        let opened = std::panic::catch_unwind(|| {
            // No background flusher: every append and ack flushes itself, and
            // without that thread the file lock goes with the last handle.
            let db = sled::Config::new()
                .path(path)
                .cache_capacity(CACHE_CAPACITY)
                .flush_every_ms(None)
                .open()?;
            let obs = db.open_tree("obs")?;
            let meta = db.open_tree("meta")?;
            let quarantine = db.open_tree("quarantine")?;
            Ok::<_, sled::Error>((db, obs, meta, quarantine))
        })
        .map_err(|_| {
            storage(sled::Error::Unsupported(
                "sled panicked while opening the buffer".into(),
            ))
        })?
        .map_err(storage)?;
        let (db, obs, meta, quarantine) = opened;
        let get = |k: &str| -> Result<u64, BufferError> {
            Ok(meta
                .get(k)
                .map_err(storage)?
                .map(|v| seq_of(&v))
                .unwrap_or(0))
        };
        let mut st = State {
            next_seq: get("next_seq")?,
            last_ack: get("last_ack")?,
            dropped: get("dropped")?,
            coalesced: get("coalesced")?,
            ..State::default()
        };
        let scan = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut count = 0u64;
            let mut bytes = 0u64;
            let mut last = 0u64;
            let mut others = VecDeque::new();
            for item in obs.iter() {
                let (k, v) = item?;
                count += 1;
                bytes += v.len() as u64;
                last = seq_of(&k);
                if v.first() != Some(&KIND_METER) {
                    others.push_back((last, v.len() as u64));
                }
            }
            Ok::<_, sled::Error>((count, bytes, last, others))
        }))
        .map_err(|_| {
            storage(sled::Error::Unsupported(
                "sled panicked while reading the buffer".into(),
            ))
        })?
        .map_err(storage)?;
        st.count = scan.0;
        st.bytes = scan.1;
        st.others = scan.3;
        if st.next_seq == 0 {
            // A new buffer continues above anything an earlier buffer (one
            // moved aside, say) can have sent: the collector files (agent, seq)
            // once, so a reused seq would be taken for a duplicate.
            st.next_seq = now_micros().max(1);
        }
        st.next_seq = st.next_seq.max(scan.2 + 1);
        let b = SledBuffer {
            path: path.to_path_buf(),
            db,
            obs,
            meta,
            quarantine,
            state: Mutex::new(st),
            max_bytes,
        };
        b.put_meta("next_seq", b.lock().next_seq)?;
        b.flush()?;
        Ok(b)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked mid-call; the
        // counters are advisory and the data is in sled.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn storage(&self, source: sled::Error) -> BufferError {
        BufferError::Storage {
            path: self.path.display().to_string(),
            source,
        }
    }

    fn put_meta(&self, k: &str, v: u64) -> Result<(), BufferError> {
        self.meta
            .insert(k, &key(v))
            .map(|_| ())
            .map_err(|e| self.storage(e))
    }

    fn flush(&self) -> Result<(), BufferError> {
        self.db.flush().map(|_| ()).map_err(|e| self.storage(e))
    }

    fn decode(&self, k: &[u8], v: &[u8]) -> Result<Observation, BufferError> {
        let seq = seq_of(k);
        if v.is_empty() {
            return Err(BufferError::Corrupt {
                seq,
                what: "empty record".into(),
            });
        }
        Observation::decode(&v[1..]).map_err(|e| BufferError::Corrupt {
            seq,
            what: e.to_string(),
        })
    }

    /// Keeps the buffer within its bound: oldest status, supply and identity
    /// observations go first; meter readings are never dropped, only merged
    /// into the newest reading of the same device: counters that the newest
    /// reading also carries leave the older one (which goes when empty).
    ///
    /// Incremental: the non-meter records are indexed in memory, and the
    /// meter sweep resumes where it stopped, so an append over the bound
    /// costs about as much work as it adds, also with a million records.
    fn enforce_bound(&self, st: &mut State) -> Result<(), BufferError> {
        if st.bytes <= self.max_bytes {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        let mut dropped = 0u64;
        while st.bytes > self.max_bytes {
            let Some((seq, len)) = st.others.pop_front() else {
                break;
            };
            batch.remove(&key(seq));
            st.bytes = st.bytes.saturating_sub(len);
            st.count = st.count.saturating_sub(1);
            dropped += 1;
        }
        self.obs.apply_batch(batch).map_err(|e| self.storage(e))?;
        let mut coalesced = 0u64;
        if st.bytes > self.max_bytes {
            coalesced = self.coalesce(st)?;
        }
        st.dropped += dropped;
        st.coalesced += coalesced;
        if dropped > 0 || coalesced > 0 {
            tracing::warn!(
                dropped, coalesced, bytes = st.bytes, bound = self.max_bytes,
                "buffer full: dropped the oldest status/supply observations and merged older meter readings into newer ones"
            );
            self.put_meta("dropped", st.dropped)?;
            self.put_meta("coalesced", st.coalesced)?;
        }
        if st.bytes > self.max_bytes {
            tracing::warn!(bytes = st.bytes, bound = self.max_bytes, "buffer holds only distinct meter readings and stays above its bound; they are never dropped");
        }
        Ok(())
    }

    /// Merges meter readings, oldest first from the sweep cursor, until the
    /// buffer is within its bound or one full pass found nothing more.
    fn coalesce(&self, st: &mut State) -> Result<u64, BufferError> {
        if st.newest.is_none() {
            st.newest = Some(self.newest_meters()?);
        }
        let mut batch = sled::Batch::default();
        let mut coalesced = 0u64;
        let mut wrapped = false;
        while st.bytes > self.max_bytes {
            let item = self
                .obs
                .range(key(st.cursor)..)
                .next()
                .transpose()
                .map_err(|e| self.storage(e))?;
            let Some((k, v)) = item else {
                if wrapped || st.cursor == 0 {
                    break;
                }
                // The second pass must see this pass's changes, or it would
                // count a merged record twice.
                self.obs
                    .apply_batch(std::mem::take(&mut batch))
                    .map_err(|e| self.storage(e))?;
                wrapped = true;
                st.cursor = 0;
                continue;
            };
            let seq = seq_of(&k);
            st.cursor = seq + 1;
            if v.first() != Some(&KIND_METER) {
                continue;
            }
            let Ok(mut o) = self.decode(&k, &v) else {
                continue;
            };
            let dev = device_key(&o);
            let newest = st.newest.as_ref().and_then(|n| n.get(&dev));
            let Some((newest_seq, newer_ids)) = newest else {
                continue;
            };
            if *newest_seq <= seq {
                continue;
            }
            let Some(Body::Meter(m)) = o.body.as_mut() else {
                continue;
            };
            let before = m.counters.len();
            m.counters.retain(|c| !newer_ids.contains(c.id.as_str()));
            if m.counters.len() == before {
                continue;
            }
            coalesced += 1;
            st.bytes = st.bytes.saturating_sub(v.len() as u64);
            if m.counters.is_empty() {
                batch.remove(k);
                st.count = st.count.saturating_sub(1);
            } else {
                let mut nv = vec![KIND_METER];
                o.encode(&mut nv).expect("encoding into a Vec cannot fail");
                st.bytes += nv.len() as u64;
                batch.insert(k, nv);
            }
        }
        self.obs.apply_batch(batch).map_err(|e| self.storage(e))?;
        Ok(coalesced)
    }

    /// The newest meter reading of each device and its counter ids: built
    /// once, the first time the bound needs meters merged, then kept current
    /// by appends.
    fn newest_meters(&self) -> Result<HashMap<String, (u64, HashSet<String>)>, BufferError> {
        let mut newest: HashMap<String, (u64, HashSet<String>)> = HashMap::new();
        for item in self.obs.iter().rev() {
            let (k, v) = item.map_err(|e| self.storage(e))?;
            if v.first() != Some(&KIND_METER) {
                continue;
            }
            let Ok(o) = self.decode(&k, &v) else {
                continue;
            };
            if let Some(Body::Meter(m)) = &o.body {
                newest.entry(device_key(&o)).or_insert_with(|| {
                    (
                        seq_of(&k),
                        m.counters.iter().map(|c| c.id.clone()).collect(),
                    )
                });
            }
        }
        Ok(newest)
    }
}

fn aside_name(path: &Path) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".corrupt-{secs}"));
    let mut p = path.with_file_name(name);
    let mut i = 1;
    while p.exists() {
        let mut n = p.file_name().unwrap_or_default().to_os_string();
        n.push(format!(".{i}"));
        p = p.with_file_name(n);
        i += 1;
    }
    p
}

impl Buffer for SledBuffer {
    fn append(&self, obs: Vec<Observation>) -> Result<Vec<u64>, BufferError> {
        let mut st = self.lock();
        let mut batch = sled::Batch::default();
        let mut seqs = Vec::with_capacity(obs.len());
        let mut added = 0u64;
        let mut next = st.next_seq;
        let mut others = Vec::new();
        let mut meters = Vec::new();
        for mut o in obs {
            o.seq = next;
            next += 1;
            let mut v = Vec::with_capacity(o.encoded_len() + 1);
            let meter = is_meter(&o);
            v.push(if meter { KIND_METER } else { KIND_OTHER });
            o.encode(&mut v).expect("encoding into a Vec cannot fail");
            added += v.len() as u64;
            if meter {
                if st.newest.is_some() {
                    meters.push(o.clone());
                }
            } else {
                others.push((o.seq, v.len() as u64));
            }
            batch.insert(&key(o.seq), v);
            seqs.push(o.seq);
        }
        self.obs.apply_batch(batch).map_err(|e| self.storage(e))?;
        self.put_meta("next_seq", next)?;
        self.flush()?;
        st.next_seq = next;
        st.others.extend(others);
        if let Some(newest) = st.newest.as_mut() {
            for o in meters {
                if let Some(Body::Meter(m)) = &o.body {
                    let ids = m.counters.iter().map(|c| c.id.clone()).collect();
                    newest.insert(device_key(&o), (o.seq, ids));
                }
            }
        }
        st.count += seqs.len() as u64;
        st.bytes += added;
        self.enforce_bound(&mut st)?;
        Ok(seqs)
    }

    fn read(
        &self,
        after: u64,
        max_count: usize,
        max_bytes: usize,
    ) -> Result<Vec<Observation>, BufferError> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let start = after.saturating_add(1);
        for item in self.obs.range(key(start)..) {
            if out.len() >= max_count || (bytes >= max_bytes && !out.is_empty()) {
                break;
            }
            let (k, v) = item.map_err(|e| self.storage(e))?;
            match self.decode(&k, &v) {
                Ok(o) => {
                    bytes += v.len();
                    out.push(o);
                }
                Err(e) => {
                    // Unreadable: keep it for inspection, out of the stream.
                    tracing::error!(error = %e, "buffer record unreadable; moved to quarantine");
                    let _ = self.quarantine.insert(k.clone(), v.clone());
                    let seq = seq_of(&k);
                    let _ = self.obs.remove(k);
                    let mut st = self.lock();
                    st.count = st.count.saturating_sub(1);
                    st.bytes = st.bytes.saturating_sub(v.len() as u64);
                    st.others.retain(|(s, _)| *s != seq);
                }
            }
        }
        Ok(out)
    }

    fn ack(&self, upto: u64) -> Result<u64, BufferError> {
        let mut st = self.lock();
        let mut batch = sled::Batch::default();
        let mut n = 0u64;
        let mut freed = 0u64;
        for item in self.obs.range(..=key(upto)) {
            let (k, v) = item.map_err(|e| self.storage(e))?;
            batch.remove(k);
            n += 1;
            freed += v.len() as u64;
        }
        // One atomic batch: an ack is applied whole or not at all.
        self.obs.apply_batch(batch).map_err(|e| self.storage(e))?;
        st.count -= n.min(st.count);
        st.bytes -= freed.min(st.bytes);
        st.last_ack = st.last_ack.max(upto);
        while st.others.front().is_some_and(|(s, _)| *s <= upto) {
            st.others.pop_front();
        }
        self.put_meta("last_ack", st.last_ack)?;
        // Durable, so that a restart does not resend what was acknowledged
        // (resending would be harmless: the collector files (agent, seq) once).
        self.flush()?;
        Ok(n)
    }

    fn stats(&self) -> BufferStats {
        let st = self.lock();
        let first = self.obs.first().ok().flatten();
        let oldest = first.as_ref().and_then(|(k, v)| self.decode(k, v).ok());
        BufferStats {
            count: st.count,
            bytes: st.bytes,
            oldest_seq: first.as_ref().map(|(k, _)| seq_of(k)),
            oldest_taken_at_ms: oldest.map(|o| o.taken_at_ms),
            next_seq: st.next_seq,
            last_ack: st.last_ack,
            dropped: st.dropped,
            coalesced: st.coalesced,
        }
    }
}
