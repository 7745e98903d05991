//! The uplink: streams the buffer to the collector over gRPC with mutual
//! TLS, outbound only. Batches are bounded by count and bytes; at most
//! `window` batches are unacknowledged at once; the buffer deletes only what
//! an Ack covers. Retryable failures back off with jitter; fatal ones (the
//! collector says the agent is not allowed, or its data is invalid) stop the
//! uplink with a message that says why.

use crate::buffer::Buffer;
use meterlink_proto::v1::collector_client::CollectorClient;
use meterlink_proto::v1::{agent_message, collector_message, AgentMessage, Batch, Hello};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};
use tonic::Code;

#[derive(Debug, Clone)]
pub struct UplinkConfig {
    pub url: String,
    /// Name the collector's certificate must carry.
    pub server_name: String,
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub agent_id: String,
    pub batch_max_count: usize,
    pub batch_max_bytes: usize,
    /// Unacknowledged batches in flight.
    pub window: usize,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// HTTP proxy (`http://[USER:PASSWORD@]HOST:PORT`) to tunnel through with CONNECT.
    pub proxy: Option<String>,
    /// Where each session reads its certificate (in place of the PEM
    /// fields), and the renewal's notice that a new one is on disk.
    pub identity: Option<(
        crate::identity::Source,
        Arc<crate::identity::IdentityStatus>,
    )>,
    /// After a refusal for good (disabled, certificate replaced): try again
    /// after this long (an operator may enable the agent) or, None, stop.
    pub refused_retry: Option<Duration>,
}

impl UplinkConfig {
    pub fn new(
        url: &str,
        server_name: &str,
        ca_pem: String,
        cert_pem: String,
        key_pem: String,
        agent_id: &str,
    ) -> Self {
        UplinkConfig {
            url: url.to_string(),
            server_name: server_name.to_string(),
            ca_pem,
            cert_pem,
            key_pem,
            agent_id: agent_id.to_string(),
            batch_max_count: 500,
            batch_max_bytes: 1 << 20,
            window: 4,
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
            proxy: None,
            identity: None,
            refused_retry: None,
        }
    }
}

/// What the uplink is doing, for `status`.
#[derive(Debug, Default)]
pub struct UplinkStatus {
    pub state: Mutex<String>,
    pub last_ack: AtomicU64,
    pub last_ack_at_ms: AtomicU64,
    pub sent_batches: AtomicU64,
    pub last_error: Mutex<Option<String>>,
    /// Poll-to-ack latency of recently acknowledged observations.
    pub ack_latency: Mutex<LatencyWindow>,
    /// The pushed configuration the agent runs; reported in Hello.
    pub config_version: Mutex<String>,
    /// The latest configuration the collector pushed, until the daemon takes it.
    pub pushed: Mutex<Option<meterlink_proto::v1::AgentConfig>>,
    /// Notified when `pushed` is set.
    pub config_pushed: Notify,
    /// Batches sent and not acknowledged yet.
    pub in_flight: AtomicU64,
    /// Observations the collector acknowledged (the agent's metric).
    pub acked: prometheus_client::metrics::counter::Counter,
}

/// The last [`LatencyWindow::CAPACITY`] latencies, in milliseconds.
#[derive(Debug, Default)]
pub struct LatencyWindow {
    samples: std::collections::VecDeque<u32>,
}

impl LatencyWindow {
    pub const CAPACITY: usize = 16_384;

    pub fn record(&mut self, ms: u32) {
        if self.samples.len() == Self::CAPACITY {
            self.samples.pop_front();
        }
        self.samples.push_back(ms);
    }

    /// The `p` quantile (0..=1) of the window, if it holds anything.
    pub fn quantile(&self, p: f64) -> Option<u32> {
        if self.samples.is_empty() {
            return None;
        }
        let mut v: Vec<u32> = self.samples.iter().copied().collect();
        let i = ((v.len() - 1) as f64 * p.clamp(0.0, 1.0)).round() as usize;
        Some(*v.select_nth_unstable(i).1)
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

impl UplinkStatus {
    fn set(&self, s: &str) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = s.to_string();
    }
    fn error(&self, e: String) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    }
    pub fn state(&self) -> String {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the collector refused this agent for good ({code:?}): {message}")]
pub struct Fatal {
    pub code: Code,
    pub message: String,
}

/// Retry, or stop and say why: gRPC codes by meaning.
pub fn is_fatal(code: Code) -> bool {
    matches!(
        code,
        Code::PermissionDenied
            | Code::Unauthenticated
            | Code::InvalidArgument
            | Code::DataLoss
            | Code::FailedPrecondition
            | Code::Unimplemented
            | Code::OutOfRange
    )
}

// How both gRPC clients connect (the uplink and enrollment).
pub use crate::connect::{CONNECT_TIMEOUT, KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT, UNACKED_TIMEOUT};
/// Longest from the start of a connection to the collector's answer to the
/// stream (its response headers).
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(30);

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    let _ = getrandom::getrandom(&mut b);
    let f = 0.5 + (u16::from_ne_bytes(b) as f64 / u16::MAX as f64);
    d.mul_f64(f)
}

enum Ended {
    Retry(String),
    /// The certificate was renewed: reconnect with it at once.
    Renewed,
    Fatal(Fatal),
    Shutdown,
}

/// Runs until `shutdown` fires or the collector refuses the agent for good.
/// `appended` is notified when the buffer has new data.
pub async fn run(
    cfg: UplinkConfig,
    buffer: Arc<dyn Buffer>,
    appended: Arc<Notify>,
    status: Arc<UplinkStatus>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), Fatal> {
    let mut backoff = cfg.backoff_min;
    loop {
        status.set("connecting");
        status.in_flight.store(0, Ordering::Relaxed);
        let acked_before = status.last_ack_at_ms.load(Ordering::Relaxed);
        let ended = tokio::select! {
            e = session(&cfg, &buffer, &appended, &status) => e,
            _ = shutdown.changed() => Ended::Shutdown,
        };
        match ended {
            Ended::Shutdown => {
                status.set("stopped");
                return Ok(());
            }
            Ended::Fatal(f) => {
                status.set("refused");
                status.error(f.to_string());
                let Some(wait) = cfg.refused_retry else {
                    tracing::error!(error = %f, "uplink stopped: fix the agent's configuration or certificate and restart it");
                    return Err(f);
                };
                tracing::error!(error = %f, retry_in = ?wait, "the collector refused the agent; polls go on into the buffer; trying again later");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => { status.set("stopped"); return Ok(()); }
                }
                backoff = cfg.backoff_min;
            }
            Ended::Renewed => {
                tracing::info!("reconnecting with the renewed certificate");
                backoff = cfg.backoff_min;
                continue;
            }
            Ended::Retry(why) => {
                // A session that got acks was a working link: the next
                // attempt starts from the shortest wait again, not from
                // where an earlier outage left the backoff.
                if status.last_ack_at_ms.load(Ordering::Relaxed) != acked_before {
                    backoff = cfg.backoff_min;
                }
                let wait = jitter(backoff);
                tracing::warn!(error = %why, retry_in = ?wait, "uplink interrupted; data stays buffered");
                status.set("backing off");
                status.error(why);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => { status.set("stopped"); return Ok(()); }
                }
                backoff = (backoff * 2).min(cfg.backoff_max);
            }
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("buffer task panicked")
}

async fn session(
    cfg: &UplinkConfig,
    buffer: &Arc<dyn Buffer>,
    appended: &Arc<Notify>,
    status: &Arc<UplinkStatus>,
) -> Ended {
    let (ca_pem, cert_pem, key_pem, renewed) = match &cfg.identity {
        Some((source, st)) => match source.load() {
            Ok(m) => {
                st.show(&m);
                (m.ca_pem, m.cert_pem, m.key_pem, Some(st.clone()))
            }
            Err(e) => return Ended::Retry(e.to_string()),
        },
        None => (
            cfg.ca_pem.clone(),
            cfg.cert_pem.clone(),
            cfg.key_pem.clone(),
            None,
        ),
    };
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&ca_pem))
        .identity(Identity::from_pem(&cert_pem, &key_pem))
        .domain_name(cfg.server_name.clone());
    let endpoint = match crate::connect::endpoint(&cfg.url, tls) {
        Ok(e) => e,
        Err(e) => {
            return Ended::Fatal(Fatal {
                code: Code::InvalidArgument,
                message: format!("collector url {:?}: {e}", cfg.url),
            })
        }
    };
    let connecting =
        endpoint.connect_with_connector(crate::connect::Connect::new(cfg.proxy.as_deref()));
    let Ok(connected) = tokio::time::timeout(OPEN_TIMEOUT, connecting).await else {
        return Ended::Retry(format!(
            "cannot connect to {}: no answer within {} s",
            cfg.url,
            OPEN_TIMEOUT.as_secs()
        ));
    };
    let channel = match connected {
        Ok(c) => c,
        Err(e) => {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            return Ended::Retry(format!("cannot connect to {}: {msg}", cfg.url));
        }
    };
    let mut client = CollectorClient::new(channel).max_decoding_message_size(4 << 20);
    let (tx, rx) = mpsc::channel::<AgentMessage>(cfg.window + 2);
    let stats = {
        let b = buffer.clone();
        blocking(move || b.stats()).await
    };
    let hello = AgentMessage {
        kind: Some(agent_message::Kind::Hello(Hello {
            agent_id: cfg.agent_id.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            lowest_seq: stats.oldest_seq.unwrap_or(0),
            highest_seq: stats.next_seq.saturating_sub(1),
            config_version: status
                .config_version
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        })),
    };
    if tx.send(hello).await.is_err() {
        return Ended::Retry("stream closed before hello".into());
    }
    let opening = client.stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let Ok(opened) = tokio::time::timeout(OPEN_TIMEOUT, opening).await else {
        return Ended::Retry(format!(
            "the collector at {} did not answer the stream within {} s",
            cfg.url,
            OPEN_TIMEOUT.as_secs()
        ));
    };
    let mut inbound = match opened {
        Ok(r) => r.into_inner(),
        Err(s) if is_fatal(s.code()) => {
            return Ended::Fatal(Fatal {
                code: s.code(),
                message: s.message().to_string(),
            })
        }
        Err(s) => return Ended::Retry(format!("collector: {s}")),
    };
    status.set("connected");
    tracing::info!(url = %cfg.url, "uplink connected");
    // Every unacknowledged observation is sent again on a new session, in order.
    let mut sent_upto = 0u64;
    // Batches in flight: their last seq and when their observations were taken.
    let mut in_flight: std::collections::VecDeque<(u64, Vec<i64>)> = Default::default();
    // After a renewal: send nothing new, wait (a while) for the acks of what
    // is in flight, then reconnect with the new certificate.
    let mut draining: Option<tokio::time::Instant> = None;
    loop {
        if let Some(since) = draining {
            if in_flight.is_empty() || since.elapsed() > Duration::from_secs(5) {
                return Ended::Renewed;
            }
        }
        // Fill the window.
        while draining.is_none() && in_flight.len() < cfg.window {
            let (b, after, n, bytes) = (
                buffer.clone(),
                sent_upto,
                cfg.batch_max_count,
                cfg.batch_max_bytes,
            );
            let obs = match blocking(move || b.read(after, n, bytes)).await {
                Ok(o) => o,
                Err(e) => return Ended::Retry(format!("buffer read failed: {e}")),
            };
            let Some(last) = obs.last().map(|o| o.seq) else {
                break;
            };
            let taken: Vec<i64> = obs.iter().map(|o| o.taken_at_ms).collect();
            let msg = AgentMessage {
                kind: Some(agent_message::Kind::Batch(Batch { observations: obs })),
            };
            if tx.send(msg).await.is_err() {
                return Ended::Retry("stream closed while sending".into());
            }
            sent_upto = last;
            in_flight.push_back((last, taken));
            status
                .in_flight
                .store(in_flight.len() as u64, Ordering::Relaxed);
            status.sent_batches.fetch_add(1, Ordering::Relaxed);
        }
        let notified = appended.notified();
        let renewal = async {
            match &renewed {
                Some(st) => st.renewed.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = renewal, if draining.is_none() => {
                draining = Some(tokio::time::Instant::now());
            }
            m = inbound.message() => match m {
                Ok(Some(msg)) => {
                    if let Some(collector_message::Kind::Config(c)) = msg.kind {
                        tracing::info!(version = %c.version, "collector pushed a configuration");
                        *status.pushed.lock().unwrap_or_else(|p| p.into_inner()) = Some(c);
                        status.config_pushed.notify_one();
                    } else if let Some(collector_message::Kind::Ack(a)) = msg.kind {
                        let b = buffer.clone();
                        let upto = a.seq;
                        if let Err(e) = blocking(move || b.ack(upto)).await {
                            return Ended::Retry(format!("buffer ack failed: {e}"));
                        }
                        let now = now_ms() as i64;
                        let mut lat = status.ack_latency.lock().unwrap_or_else(|p| p.into_inner());
                        while in_flight.front().is_some_and(|(s, _)| *s <= upto) {
                            if let Some((_, taken)) = in_flight.pop_front() {
                                status.acked.inc_by(taken.len() as u64);
                                for t in taken {
                                    lat.record((now - t).clamp(0, u32::MAX as i64) as u32);
                                }
                            }
                        }
                        drop(lat);
                        status.in_flight.store(in_flight.len() as u64, Ordering::Relaxed);
                        status.last_ack.fetch_max(upto, Ordering::Relaxed);
                        status.last_ack_at_ms.store(now_ms(), Ordering::Relaxed);
                    }
                }
                Ok(None) => return Ended::Retry("collector closed the stream".into()),
                Err(s) if is_fatal(s.code()) => return Ended::Fatal(Fatal { code: s.code(), message: s.message().to_string() }),
                Err(s) => return Ended::Retry(format!("collector: {s}")),
            },
            _ = notified, if in_flight.len() < cfg.window => {}
            // New data can also arrive without a notification reaching us
            // (appended before we started waiting): look again now and then.
            _ = tokio::time::sleep(Duration::from_millis(500)), if in_flight.len() < cfg.window => {}
        }
    }
}
