//! `meterlink-agent run`: schedules polls, appends what they read to the
//! buffer, and streams the buffer to the collector; `admin` serves its
//! metrics.

mod admin;

use crate::buffer::{Buffer, BufferStats, SledBuffer};
use crate::config::Validated;
use crate::discovery;
use crate::identity::{IdentityStatus, Reach, Source};
use crate::known::{Change, KnownDevices, Seen};
use crate::metrics::{AgentMetrics, PollLabels};
use crate::observation::to_observations;
use crate::poll::read_device;
use crate::profile::ProfileSet;
use crate::schedule::Schedule;
use crate::snmp::engine::{CredentialSet, Engine, EngineConfig};
use crate::uplink::{self, UplinkConfig, UplinkStatus};
use meterlink_proto::v1::Observation;
use serde::Serialize;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// What `meterlink-agent status` shows; written by the daemon every few seconds.
#[derive(Debug, Clone, Serialize, serde::Deserialize, Default)]
pub struct StatusReport {
    pub agent_id: String,
    pub updated_at_ms: i64,
    pub connection: String,
    pub last_ack: u64,
    pub last_ack_at_ms: u64,
    pub last_error: Option<String>,
    pub backlog_count: u64,
    pub backlog_bytes: u64,
    pub oldest_seq: Option<u64>,
    pub oldest_taken_at_ms: Option<i64>,
    pub dropped: u64,
    pub coalesced: u64,
    /// The sequence number the next observation gets.
    pub next_seq: u64,
    /// Poll-to-ack latency over recently acknowledged observations.
    pub ack_latency_p50_ms: Option<u32>,
    pub ack_latency_p99_ms: Option<u32>,
    /// The collector-pushed configuration in use ("" when the file's own).
    pub config_version: String,
    /// Why the last pushed configuration was not applied.
    pub config_error: Option<String>,
    pub devices: usize,
    pub last_poll_at_ms: Option<i64>,
    /// How long the last poll of all devices took, in milliseconds.
    pub last_poll_ms: u64,
    pub last_poll_read: u64,
    pub last_poll_failed: u64,
    /// When the certificate in use expires, and when it is renewed.
    pub cert_expires_at_ms: Option<i64>,
    pub cert_renew_at_ms: Option<i64>,
    /// Why the last renewal failed (cleared by a good one).
    pub cert_error: Option<String>,
}

pub fn status_path(data_dir: &Path) -> PathBuf {
    data_dir.join("status.json")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Why the daemon could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A file the configuration names (certificate, key, CA) or the data
    /// directory cannot be used.
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {} can be read by other users; run `chmod 600 {}`", path.display(), path.display())]
    KeyReadable { path: PathBuf },
    #[error("cannot open UDP sockets: {0}")]
    Sockets(std::io::Error),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The collector refused the agent for good (its certificate, its id).
    #[error(transparent)]
    Uplink(#[from] crate::uplink::Fatal),
    /// No certificate, or enrollment refused.
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
}

impl DaemonError {
    fn file(path: &Path) -> impl FnOnce(std::io::Error) -> DaemonError + '_ {
        move |source| DaemonError::File {
            path: path.to_path_buf(),
            source,
        }
    }
}

fn read_key(path: &Path) -> Result<String, DaemonError> {
    let meta = std::fs::metadata(path).map_err(DaemonError::file(path))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(DaemonError::KeyReadable {
            path: path.to_path_buf(),
        });
    }
    std::fs::read_to_string(path).map_err(DaemonError::file(path))
}

fn read_file(path: &Path) -> Result<String, DaemonError> {
    std::fs::read_to_string(path).map_err(DaemonError::file(path))
}

/// The host's name: an agent's id when agent.toml gives none.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "agent".into())
}

/// The agent's id: agent.toml's, else its certificate's name, else the
/// host name.
pub fn agent_id(v: &Validated) -> String {
    if let Some(id) = &v.cfg.agent_id {
        return id.clone();
    }
    Source::from_config(&v.cfg.collector, &v.cfg.data_dir)
        .load()
        .ok()
        .and_then(|m| m.agent_id)
        .unwrap_or_else(host_name)
}

/// The uplink settings the configuration describes: the TLS files it
/// names (read now), or the enrolled identity (read at each connection).
pub fn uplink_config(v: &Validated) -> Result<UplinkConfig, DaemonError> {
    let c = &v.cfg.collector;
    let reach = Reach::from_config(c);
    let source = Source::from_config(c, &v.cfg.data_dir);
    let (ca, cert, key, identity) = match &source {
        Source::Files { ca, cert, key } => (read_file(ca)?, read_file(cert)?, read_key(key)?, None),
        Source::Enrolled { .. } => {
            source.load()?;
            let st = Arc::new(IdentityStatus::default());
            (
                String::new(),
                String::new(),
                String::new(),
                Some((source, st)),
            )
        }
    };
    let mut u = UplinkConfig::new(&c.url, &reach.server_name, ca, cert, key, &agent_id(v));
    u.identity = identity;
    u.refused_retry = Some(Duration::from_secs(300));
    u.batch_max_count = c.batch_max_count.max(1);
    u.proxy = c.proxy.clone();
    u.window = c.window.max(1);
    Ok(u)
}

/// Enrolls with `token` (agent.toml's or the command line's): retries
/// while the collector cannot be reached, stops at a refusal.
pub async fn enroll(
    v: &Validated,
    token: &str,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<crate::identity::Material>, DaemonError> {
    let reach = Reach::from_config(&v.cfg.collector);
    let Source::Enrolled { dir } = Source::from_config(&v.cfg.collector, &v.cfg.data_dir) else {
        return Err(DaemonError::Config(crate::config::ConfigError {
            file: "agent.toml".into(),
            what: "[collector] names ca, cert and key files: remove them to use enrollment".into(),
        }));
    };
    let id = agent_id(v);
    let mut backoff = Duration::from_secs(1);
    loop {
        match crate::identity::enroll(&reach, token, &id, &dir).await {
            Ok(m) => {
                tracing::info!(agent = %id, expires_at_ms = m.not_after_ms.unwrap_or(0), "enrolled with the collector");
                return Ok(Some(m));
            }
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, retry_in = ?backoff, "enrollment: the collector cannot be reached; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return Ok(None),
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Poll targets: (address, credential sets).
type Devices = Arc<Mutex<Vec<(SocketAddr, Vec<CredentialSet>)>>>;

/// Opens the buffer, retrying while the disk is full or the directory unusable.
async fn open_buffer(
    dir: PathBuf,
    max_bytes: u64,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Arc<SledBuffer>> {
    loop {
        let d = dir.clone();
        match tokio::task::spawn_blocking(move || SledBuffer::open(&d, max_bytes)).await {
            Ok(Ok((b, outcome))) => {
                if let crate::buffer::sled_buffer::OpenOutcome::MovedAside(p) = outcome {
                    tracing::error!(moved_to = %p.display(), "the buffer was damaged and has been replaced; see the moved directory");
                }
                return Some(Arc::new(b));
            }
            Ok(Err(e)) => tracing::error!(error = %e, "cannot open the buffer; retrying in 10 s"),
            Err(e) => tracing::error!(error = %e, "buffer open task failed; retrying in 10 s"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(10)) => {}
            _ = shutdown.changed() => return None,
        }
    }
}

/// Runs the agent until `shutdown` turns true.
pub async fn run(v: Validated, mut shutdown: watch::Receiver<bool>) -> Result<(), DaemonError> {
    let source = Source::from_config(&v.cfg.collector, &v.cfg.data_dir);
    if !source.present() {
        let Some(token) = v.cfg.collector.join_token()? else {
            return Err(crate::identity::IdentityError::NotEnrolled.into());
        };
        if enroll(&v, &token.0, &mut shutdown).await?.is_none() {
            return Ok(());
        }
    }
    let up_cfg = uplink_config(&v)?;
    let renewal = match (&source, &up_cfg.identity) {
        (Source::Enrolled { dir }, Some((_, st))) => {
            Some(tokio::spawn(crate::identity::keep_renewed(
                Reach::from_config(&v.cfg.collector),
                dir.clone(),
                st.clone(),
                shutdown.clone(),
            )))
        }
        _ => None,
    };
    let id_status = up_cfg.identity.as_ref().map(|(_, st)| st.clone());
    std::fs::create_dir_all(&v.cfg.data_dir).map_err(DaemonError::file(&v.cfg.data_dir))?;
    let Some(buffer) = open_buffer(
        v.cfg.data_dir.join("buffer"),
        v.cfg.buffer.max_bytes,
        &mut shutdown,
    )
    .await
    else {
        return Ok(());
    };
    let engine = Engine::new(EngineConfig {
        timeout: Duration::from_secs_f64(v.cfg.engine.timeout.clamp(0.05, 60.0)),
        retries: v.cfg.engine.retries.min(10),
        concurrency: v.cfg.engine.concurrency.max(1),
        max_pps: v.cfg.engine.max_pps,
        ..EngineConfig::default()
    })
    .await
    .map_err(DaemonError::Sockets)?;
    let profiles = Arc::new(ProfileSet::embedded());
    let appended = Arc::new(Notify::new());
    let metrics = Arc::new(AgentMetrics::new());
    let up_status = Arc::new(UplinkStatus {
        acked: metrics.observations_acked.clone(),
        ..Default::default()
    });
    if let Some(addr) = v.cfg.admin.listen {
        let fixed_expiry_ms = match &source {
            Source::Files { .. } => source.load().ok().and_then(|m| m.not_after_ms),
            Source::Enrolled { .. } => None,
        };
        admin::serve(
            addr,
            admin::Scraped {
                metrics: metrics.clone(),
                buffer: buffer.clone(),
                uplink: up_status.clone(),
                identity: id_status.clone(),
                fixed_expiry_ms,
            },
            shutdown.clone(),
        )
        .await;
    }
    let report = Arc::new(Mutex::new(StatusReport {
        agent_id: up_cfg.agent_id.clone(),
        ..Default::default()
    }));

    let uplink_task = {
        let (b, n, s, sd) = (
            buffer.clone() as Arc<dyn Buffer>,
            appended.clone(),
            up_status.clone(),
            shutdown.clone(),
        );
        tokio::spawn(async move { uplink::run(up_cfg, b, n, s, sd).await })
    };

    // The file's configuration, and what runs: the file's, or the file's
    // with the collector's pushed targets and schedules (kept across restarts).
    let base = v;
    let pushed_file = base.cfg.data_dir.join("pushed-config.json");
    let mut cur = match load_pushed(&pushed_file) {
        Some(p) => match base.with_pushed(&p.version, &p.settings_toml) {
            Ok(nv) => {
                tracing::info!(version = %p.version, "running the configuration the collector pushed earlier");
                set_version(&up_status, &report, &p.version);
                nv
            }
            Err(e) => {
                tracing::error!(error = %e, "the kept pushed configuration is not valid with this agent.toml; using the file's targets and schedules");
                base.with_pushed("", "")?
            }
        },
        None => base.with_pushed("", "")?,
    };

    // Devices: every address of the targets, narrowed by discovery when a
    // schedule for it exists; discovery merges into what it knows.
    let mut all = target_devices(&cur);
    let mut groups = target_groups(&cur);
    let devices: Devices = Arc::new(Mutex::new(all.clone()));
    let mut known = KnownDevices::new(base.cfg.discovery.max_missed);
    if cur.discovery.is_some() {
        discover(&engine, &profiles, &all, &mut known, &devices).await;
    }

    let status_file = status_path(&base.cfg.data_dir);
    let mut next_meter = cur.meter.next_after(chrono::Utc::now());
    let mut next_status = advance(&cur.status, chrono::Utc::now());
    let mut next_disc = advance(&cur.discovery, chrono::Utc::now());
    let mut status_tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        let soonest = [next_meter, next_status, next_disc]
            .into_iter()
            .flatten()
            .min();
        let sleep = soonest
            .map(|t| (t - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = status_tick.tick() => {
                write_status(&status_file, &report, &buffer, &up_status, id_status.as_deref(), devices.lock().map(|d| d.len()).unwrap_or(0)).await;
                continue;
            }
            _ = up_status.config_pushed.notified() => {
                let Some(p) = up_status.pushed.lock().ok().and_then(|mut p| p.take()) else {
                    continue;
                };
                match base.with_pushed(&p.version, &p.settings_toml) {
                    Ok(nv) => {
                        save_pushed(&pushed_file, &p).await;
                        cur = nv;
                        all = target_devices(&cur);
                        groups = target_groups(&cur);
                        if cur.discovery.is_some() {
                            known.retain_addresses(|a| all.iter().any(|(t, _)| t == a));
                            discover(&engine, &profiles, &all, &mut known, &devices).await;
                        } else if let Ok(mut d) = devices.lock() {
                            *d = all.clone();
                        }
                        let now = chrono::Utc::now();
                        next_meter = cur.meter.next_after(now);
                        next_status = advance(&cur.status, now);
                        next_disc = advance(&cur.discovery, now);
                        set_version(&up_status, &report, &p.version);
                        tracing::info!(version = %p.version, devices = all.len(), "applied the configuration the collector pushed");
                    }
                    Err(e) => {
                        tracing::error!(version = %p.version, error = %e, "configuration pushed by the collector not applied; keeping the current one");
                        if let Ok(mut r) = report.lock() {
                            r.config_error = Some(e.to_string());
                        }
                    }
                }
                continue;
            }
            _ = tokio::time::sleep(sleep) => {}
        }
        let now = chrono::Utc::now();
        let due = |t: &Option<chrono::DateTime<chrono::Utc>>| t.is_some_and(|t| t <= now);
        if due(&next_disc) {
            discover(&engine, &profiles, &all, &mut known, &devices).await;
            next_disc = advance(&cur.discovery, now);
        }
        let meter_due = due(&next_meter);
        if meter_due || due(&next_status) {
            let polled = Polled {
                metrics: &metrics,
                groups: &groups,
            };
            poll_all(
                &engine, &profiles, &devices, &buffer, &appended, &report, meter_due, polled,
            )
            .await;
            if meter_due {
                next_meter = cur.meter.next_after(now);
            }
            if due(&next_status) {
                next_status = advance(&cur.status, now);
            }
        }
    }
    write_status(
        &status_file,
        &report,
        &buffer,
        &up_status,
        id_status.as_deref(),
        0,
    )
    .await;
    if let Some(r) = renewal {
        let _ = r.await;
    }
    match uplink_task.await {
        Ok(Err(f)) => Err(f.into()),
        _ => Ok(()),
    }
}

/// Every address of the targets, with the credential sets to try.
fn target_devices(v: &Validated) -> Vec<(SocketAddr, Vec<CredentialSet>)> {
    v.cfg
        .targets
        .iter()
        .zip(&v.target_creds)
        .flat_map(|(t, creds)| {
            crate::range::expand(&t.addresses, t.port, crate::range::MAX_TARGET_ADDRESSES)
                .unwrap_or_default()
                .into_iter()
                .map(move |a| (a, creds.clone()))
        })
        .collect()
}

/// The `[[targets]]` group each target address belongs to, for metrics.
fn target_groups(v: &Validated) -> Groups {
    let mut m = std::collections::HashMap::new();
    for (i, t) in v.cfg.targets.iter().enumerate() {
        let name: Arc<str> = t
            .name
            .clone()
            .unwrap_or_else(|| format!("targets[{}]", i + 1))
            .into();
        for a in crate::range::expand(&t.addresses, t.port, crate::range::MAX_TARGET_ADDRESSES)
            .unwrap_or_default()
        {
            m.entry(a).or_insert_with(|| name.clone());
        }
    }
    Arc::new(m)
}

type Groups = Arc<std::collections::HashMap<SocketAddr, Arc<str>>>;

/// A pushed configuration as kept in data_dir.
#[derive(Serialize, serde::Deserialize)]
struct KeptConfig {
    version: String,
    settings_toml: String,
}

fn load_pushed(path: &Path) -> Option<KeptConfig> {
    let text = std::fs::read_to_string(path).ok()?;
    match serde_json::from_str(&text) {
        Ok(k) => Some(k),
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "kept pushed configuration unreadable; ignoring it until the collector pushes again");
            None
        }
    }
}

async fn save_pushed(path: &Path, p: &meterlink_proto::v1::AgentConfig) {
    let text = serde_json::to_string_pretty(&KeptConfig {
        version: p.version.clone(),
        settings_toml: p.settings_toml.clone(),
    })
    .unwrap_or_default();
    let (path, tmp) = (path.to_path_buf(), path.with_extension("json.tmp"));
    let written = tokio::task::spawn_blocking(move || {
        std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, &path))
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        tracing::error!("pushed configuration applied but not kept: it is lost at restart until the collector pushes it again");
    }
}

fn set_version(up: &UplinkStatus, report: &Mutex<StatusReport>, version: &str) {
    *up.config_version.lock().unwrap_or_else(|p| p.into_inner()) = version.to_string();
    if let Ok(mut r) = report.lock() {
        r.config_version = version.to_string();
        r.config_error = None;
    }
}

fn advance(
    s: &Option<Schedule>,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    s.as_ref().and_then(|s| s.next_after(now))
}

/// Scans the targets and merges what answered into the known devices: each
/// target group's addresses with its credential sets in order (an address
/// that is no printer with the first set is asked with the next), printers
/// kept while they miss fewer than `max_missed` scans, followed by serial.
async fn discover(
    engine: &Arc<Engine>,
    profiles: &Arc<ProfileSet>,
    all: &[(SocketAddr, Vec<CredentialSet>)],
    known: &mut KnownDevices<Vec<CredentialSet>>,
    devices: &Devices,
) {
    let mut found = Vec::new();
    let mut groups: Vec<(Vec<SocketAddr>, Vec<CredentialSet>)> = Vec::new();
    for (a, c) in all {
        match groups
            .iter_mut()
            .find(|g| g.1.iter().map(|x| &x.name).eq(c.iter().map(|x| &x.name)))
        {
            Some(g) => g.0.push(*a),
            None => groups.push((vec![*a], c.clone())),
        }
    }
    for (addrs, creds) in groups {
        let mut left = addrs;
        for cred in &creds {
            if left.is_empty() {
                break;
            }
            let res = discovery::scan(
                engine.clone(),
                profiles.clone(),
                std::mem::take(&mut left),
                cred.clone(),
                |_, _, _| {},
            )
            .await;
            for f in res {
                let Ok(addr) = f.address.parse::<SocketAddr>() else {
                    continue;
                };
                if f.kind == discovery::FoundKind::Printer {
                    found.push((
                        Seen {
                            addr,
                            serial: f.serial,
                        },
                        creds.clone(),
                    ));
                } else {
                    left.push(addr);
                }
            }
        }
    }
    let printers = found.len();
    for c in known.merge(found) {
        match c {
            Change::Added { addr, serial } => {
                tracing::info!(%addr, serial = serial.as_deref().unwrap_or("-"), "discovery: new printer")
            }
            Change::Moved { serial, from, to } => {
                tracing::info!(%serial, %from, %to, "discovery: printer moved; following it by its serial")
            }
            Change::Missed {
                addr,
                serial,
                missed,
            } => {
                tracing::info!(%addr, serial = serial.as_deref().unwrap_or("-"), missed, "discovery: printer did not answer; still polled")
            }
            Change::Dropped {
                addr,
                serial,
                missed,
            } => {
                tracing::warn!(%addr, serial = serial.as_deref().unwrap_or("-"), missed, "discovery: printer missed too many scans in a row; no longer polled")
            }
        }
    }
    tracing::info!(printers, polled = known.len(), "discovery finished");
    if let Ok(mut d) = devices.lock() {
        *d = known.list();
    }
}

/// Where a poll's results are counted.
struct Polled<'a> {
    metrics: &'a AgentMetrics,
    groups: &'a Groups,
}

impl Polled<'_> {
    fn count(&self, addr: SocketAddr, ok: bool) {
        let group = self
            .groups
            .get(&addr)
            .map(|g| g.to_string())
            .unwrap_or_else(|| "discovered".into());
        self.metrics
            .polls
            .get_or_create(&PollLabels {
                group,
                result: if ok { "ok" } else { "failed" }.into(),
            })
            .inc();
    }
}

#[allow(clippy::too_many_arguments)]
async fn poll_all(
    engine: &Arc<Engine>,
    profiles: &Arc<ProfileSet>,
    devices: &Devices,
    buffer: &Arc<SledBuffer>,
    appended: &Arc<Notify>,
    report: &Arc<Mutex<StatusReport>>,
    meter: bool,
    polled: Polled<'_>,
) {
    let started = std::time::Instant::now();
    let list = devices.lock().map(|d| d.clone()).unwrap_or_default();
    let mut set = tokio::task::JoinSet::new();
    for (addr, creds) in list {
        let (e, p) = (engine.clone(), profiles.clone());
        set.spawn(async move {
            let taken = now_ms();
            let started = std::time::Instant::now();
            let r = read_device(&e, &p, addr, &creds)
                .await
                .map(|r| to_observations(&r.reading, taken, meter));
            (addr, r, started.elapsed())
        });
    }
    // Results go to the buffer in chunks as devices answer, so the uplink
    // can send the first readings while the slowest devices are still read.
    let mut obs = Vec::new();
    let (mut ok, mut failed, mut n) = (0u64, 0u64, 0usize);
    loop {
        let next = set.join_next().await;
        let done = next.is_none();
        match next {
            Some(Ok((addr, Ok(o), took))) => {
                ok += 1;
                polled.count(addr, true);
                polled.metrics.poll_seconds.observe(took.as_secs_f64());
                obs.extend(o);
            }
            Some(Ok((addr, Err(e), took))) => {
                failed += 1;
                polled.count(addr, false);
                polled.metrics.poll_seconds.observe(took.as_secs_f64());
                tracing::warn!(%addr, error = %e, "device not read");
            }
            Some(Err(e)) => {
                failed += 1;
                tracing::error!(error = %e, "poll task failed");
            }
            None => {}
        }
        if obs.len() >= APPEND_CHUNK || (done && !obs.is_empty()) {
            n += obs.len();
            append(buffer, appended, polled.metrics, std::mem::take(&mut obs)).await;
        }
        if done {
            break;
        }
    }
    if let Ok(mut r) = report.lock() {
        r.last_poll_at_ms = Some(now_ms());
        r.last_poll_ms = started.elapsed().as_millis() as u64;
        r.last_poll_read = ok;
        r.last_poll_failed = failed;
    }
    tracing::info!(read = ok, failed, observations = n, meter, "poll finished");
}

/// Observations per buffer append while a poll is running.
const APPEND_CHUNK: usize = 2_000;

async fn append(
    buffer: &Arc<SledBuffer>,
    appended: &Arc<Notify>,
    metrics: &AgentMetrics,
    obs: Vec<Observation>,
) {
    let n = obs.len();
    let b = buffer.clone();
    match tokio::task::spawn_blocking(move || b.append(obs)).await {
        Ok(Ok(_)) => {
            metrics.observations_buffered.inc_by(n as u64);
            appended.notify_one()
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, observations = n, "poll results not stored; the next poll reads the devices again")
        }
        Err(e) => tracing::error!(error = %e, "buffer append task failed"),
    }
}

async fn write_status(
    path: &Path,
    report: &Arc<Mutex<StatusReport>>,
    buffer: &Arc<SledBuffer>,
    up: &Arc<UplinkStatus>,
    identity: Option<&IdentityStatus>,
    devices: usize,
) {
    let b = buffer.clone();
    let st: BufferStats = tokio::task::spawn_blocking(move || b.stats())
        .await
        .unwrap_or_default();
    let r = {
        let Ok(mut r) = report.lock() else { return };
        r.updated_at_ms = now_ms();
        r.connection = up.state();
        r.last_ack = up.last_ack.load(Ordering::Relaxed);
        r.last_ack_at_ms = up.last_ack_at_ms.load(Ordering::Relaxed);
        r.last_error = up.last_error.lock().map(|e| e.clone()).unwrap_or(None);
        r.backlog_count = st.count;
        r.backlog_bytes = st.bytes;
        r.oldest_seq = st.oldest_seq;
        r.oldest_taken_at_ms = st.oldest_taken_at_ms;
        r.dropped = st.dropped;
        r.coalesced = st.coalesced;
        r.next_seq = st.next_seq;
        if let Ok(l) = up.ack_latency.lock() {
            r.ack_latency_p50_ms = l.quantile(0.5);
            r.ack_latency_p99_ms = l.quantile(0.99);
        }
        if devices > 0 {
            r.devices = devices;
        }
        if let Some(i) = identity {
            let ms = |a: &std::sync::atomic::AtomicI64| {
                Some(a.load(Ordering::Relaxed)).filter(|v| *v > 0)
            };
            r.cert_expires_at_ms = ms(&i.expires_at_ms);
            r.cert_renew_at_ms = ms(&i.renew_at_ms);
            r.cert_error = i.last_error.lock().map(|e| e.clone()).unwrap_or(None);
        }
        r.clone()
    };
    let (path, tmp) = (path.to_path_buf(), path.with_extension("json.tmp"));
    let text = serde_json::to_string_pretty(&r).unwrap_or_default();
    let written = tokio::task::spawn_blocking(move || {
        std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, &path))
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        tracing::debug!("status file not written");
    }
}
