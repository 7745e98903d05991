//! gRPC ingest: authenticates agents by their client certificate, files each
//! batch in one store transaction, and acknowledges only after the commit.
//! Batches of one stream are filed one after the other, so a slow store slows
//! the agent down (HTTP/2 flow control) instead of growing memory here.
//! Enrollment and renewal are in `enroll`.

pub mod enroll;

use crate::metrics::{AgentLabel, Metrics};
use crate::model::IngestOutcome;
use crate::pki::common_name;
use crate::store::{Store, StoreError};
use meterlink_proto::v1::collector_server::Collector;
use meterlink_proto::v1::{
    agent_message, collector_message, Ack, AgentConfig, AgentMessage, CollectorMessage,
};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

/// Most observations accepted in one batch.
pub const MAX_BATCH: usize = 20_000;
/// Largest message accepted, in bytes.
pub const MAX_MESSAGE: usize = 8 << 20;

pub struct Ingest {
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    /// Where configurations pushed to agents live (see `config::Agents`).
    pub agents_dir: std::path::PathBuf,
    pub recheck: std::time::Duration,
    /// None: this collector does not enroll (no CA key).
    pub enrollment: Option<Arc<enroll::Enrollment>>,
    pub credentials: enroll::Credentials,
}

/// The configuration for `agent`, if its file or the default exists and
/// parses as TOML (the agent checks the rest). Its version is the first 64
/// bits of the text's SHA-256, hex: the same on every replica, whatever Rust
/// built it (the standard library's hasher is not stable across releases).
fn pushed_config(dir: &std::path::Path, agent: &str) -> Option<AgentConfig> {
    // An agent id is a certificate name: keep it from naming another path.
    let safe = crate::model::valid_agent_id(agent);
    let own = dir.join(format!("{agent}.toml"));
    let path = if safe && own.exists() {
        own
    } else {
        dir.join("default.toml")
    };
    let text = std::fs::read_to_string(&path).ok()?;
    if let Err(e) = text.parse::<toml::Table>() {
        tracing::error!(path = %path.display(), %agent, error = %e, "agent configuration not pushed: not valid TOML");
        return None;
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    Some(AgentConfig {
        version: digest.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        settings_toml: text,
    })
}

/// Counts an agent's open stream while it lives.
struct Connected(prometheus_client::metrics::gauge::Gauge);

impl Connected {
    fn new(m: &Metrics) -> Connected {
        m.agents_connected.inc();
        Connected(m.agents_connected.clone())
    }
}

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn record(m: &Metrics, o: &IngestOutcome) {
    m.observations_filed.inc_by(o.new);
    m.observations_duplicate.inc_by(o.duplicates);
    m.observations_foreign.inc_by(o.foreign);
    m.counter_values_filed.inc_by(o.counter_values);
    m.counter_values_anomalous.inc_by(o.anomalies);
    m.request_changes.inc_by(o.request_changes);
    m.record_requests(o.requests.iter());
}

pub(crate) fn store_status(e: &StoreError) -> Status {
    match e {
        // The store is down or busy: the agent keeps its data and retries.
        StoreError::Db { .. } => {
            Status::unavailable(format!("store unavailable, retry later: {e}"))
        }
        StoreError::Invalid { .. } => Status::invalid_argument(e.to_string()),
        StoreError::Refused { .. } => Status::failed_precondition(e.to_string()),
        StoreError::NotFound(_) => Status::not_found(e.to_string()),
        StoreError::SchemaTooNew { .. } | StoreError::NoRandomness(_) => {
            Status::internal(e.to_string())
        }
    }
}

/// The agent's identity: the common name of its client certificate, and
/// the certificate's serial (hex).
fn identity_of<T>(req: &Request<T>) -> Result<(String, String), Status> {
    let none = || {
        Status::unauthenticated(
            "a client certificate is required: enroll the agent first (`meterlink-agent enroll --token ...`)",
        )
    };
    let certs = req.peer_certs().ok_or_else(none)?;
    let first = certs.first().ok_or_else(none)?;
    let agent = common_name(first.as_ref())
        .filter(|cn| !cn.is_empty())
        .ok_or_else(|| Status::permission_denied("the client certificate has no common name"))?;
    let serial = crate::pki::sign::serial_of(first.as_ref())
        .ok_or_else(|| Status::permission_denied("the client certificate does not parse"))?;
    Ok((agent, serial))
}

/// Why a certificate may not act as `agent` now, if it may not.
fn refusal(c: &crate::model::AgentCredential, agent: &str, serial: &str) -> Option<Status> {
    if c.disabled {
        Some(Status::permission_denied(format!(
            "agent {agent:?} is disabled by an operator; nothing more is filed until it is enabled again"
        )))
    } else if !c.accepts(serial) {
        Some(Status::permission_denied(format!(
            "this certificate of agent {agent:?} was replaced by a later enrollment: enroll again with a new join token"
        )))
    } else {
        None
    }
}

#[tonic::async_trait]
impl Collector for Ingest {
    type StreamStream = ReceiverStream<Result<CollectorMessage, Status>>;

    async fn stream(
        &self,
        req: Request<Streaming<AgentMessage>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let (agent, serial) = identity_of(&req)?;
        let peer = req.remote_addr();
        let cred = self
            .store
            .agent_credential(&agent)
            .await
            .map_err(|e| store_status(&e))?;
        if let Some(why) = refusal(&cred, &agent, &serial) {
            tracing::warn!(%agent, ?peer, %serial, "agent refused: {}", why.message());
            return Err(why);
        }
        let mut credentials = self.credentials.clone();
        credentials.mark_unchanged();
        let mut inbound = req.into_inner();
        let (tx, rx) = mpsc::channel(8);
        let store = self.store.clone();
        let metrics = self.metrics.clone();
        let (agents_dir, recheck) = (self.agents_dir.clone(), self.recheck);
        tokio::spawn(async move {
            let mut hello = false;
            // What the agent said it holds at Hello: the backlog is what of
            // it is not acknowledged yet.
            let mut held = 0u64;
            let backlog = metrics.agent_backlog.get_or_create_owned(&AgentLabel {
                agent: agent.clone(),
            });
            let _connected = Connected::new(&metrics);
            // The configuration version the agent runs, as far as we know.
            let mut agent_config = String::new();
            let mut recheck = tokio::time::interval(recheck);
            loop {
                let next = tokio::select! {
                    m = inbound.message() => m,
                    changed = credentials.changed() => {
                        if changed.is_err() {
                            // The collector is stopping.
                            break;
                        }
                        let now = credentials.borrow_and_update().get(&agent).cloned().unwrap_or_default();
                        if let Some(why) = refusal(&now, &agent, &serial) {
                            tracing::warn!(%agent, ?peer, "ending the agent's stream: {}", why.message());
                            let _ = tx.send(Err(why)).await;
                            break;
                        }
                        continue;
                    }
                    _ = recheck.tick(), if hello => {
                        let (d, a) = (agents_dir.clone(), agent.clone());
                        let pushed = tokio::task::spawn_blocking(move || pushed_config(&d, &a)).await.ok().flatten();
                        if let Some(c) = pushed.filter(|c| c.version != agent_config) {
                            tracing::info!(%agent, version = %c.version, "pushing configuration to the agent");
                            agent_config = c.version.clone();
                            let msg = CollectorMessage { kind: Some(collector_message::Kind::Config(c)) };
                            if tx.send(Ok(msg)).await.is_err() {
                                break;
                            }
                        }
                        continue;
                    }
                };
                let msg = match next {
                    Ok(Some(m)) => m,
                    Ok(None) => break,
                    Err(e) => {
                        // Malformed or oversized: refuse, say why, drop the stream.
                        tracing::warn!(%agent, ?peer, error = %e, "agent stream refused; nothing of the failed message was filed");
                        let _ = tx.send(Err(e)).await;
                        break;
                    }
                };
                let reply = match msg.kind {
                    Some(agent_message::Kind::Hello(h)) => {
                        if !h.agent_id.is_empty() && h.agent_id != agent {
                            Err(Status::permission_denied(format!(
                                "agent id {:?} does not match the certificate's {agent:?}",
                                h.agent_id
                            )))
                        } else {
                            hello = true;
                            agent_config = h.config_version.clone();
                            // The first tick of the recheck comes at once: the
                            // configuration goes out right after the Hello.
                            recheck.reset_immediately();
                            match store.agent_hello(&agent, &h.version, h.highest_seq).await {
                                Ok(highest) => {
                                    held = h.highest_seq;
                                    backlog.set(held.saturating_sub(highest) as i64);
                                    tracing::info!(%agent, version = %h.version, held = h.highest_seq, filed = highest, "agent connected");
                                    Ok(None)
                                }
                                Err(e) => Err(store_status(&e)),
                            }
                        }
                    }
                    Some(agent_message::Kind::Batch(b)) if hello => {
                        if b.observations.len() > MAX_BATCH {
                            Err(Status::invalid_argument(format!(
                                "batch of {} observations; at most {MAX_BATCH}",
                                b.observations.len()
                            )))
                        } else if b.observations.is_empty() {
                            Ok(None)
                        } else {
                            let started = std::time::Instant::now();
                            let filed = store.ingest(&agent, &b.observations).await;
                            metrics
                                .batch_commit_seconds
                                .observe(started.elapsed().as_secs_f64());
                            match filed {
                                Ok(o) => {
                                    record(&metrics, &o);
                                    held = held.max(o.highest_seq);
                                    backlog.set(held.saturating_sub(o.highest_seq) as i64);
                                    tracing::debug!(%agent, new = o.new, duplicates = o.duplicates, ack = o.highest_seq, "batch filed");
                                    Ok(Some(o.highest_seq))
                                }
                                Err(e) => {
                                    tracing::error!(%agent, error = %e, "batch not filed");
                                    Err(store_status(&e))
                                }
                            }
                        }
                    }
                    Some(agent_message::Kind::Batch(_)) => Err(Status::failed_precondition(
                        "send Hello before the first Batch",
                    )),
                    None => Err(Status::invalid_argument("empty agent message")),
                };
                match reply {
                    Ok(Some(seq)) => {
                        let ack = CollectorMessage {
                            kind: Some(collector_message::Kind::Ack(Ack { seq })),
                        };
                        if tx.send(Ok(ack)).await.is_err() {
                            break;
                        }
                    }
                    Ok(None) => {}
                    Err(status) => {
                        tracing::warn!(%agent, ?peer, status = %status, "closing agent stream");
                        let _ = tx.send(Err(status)).await;
                        break;
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn enroll(
        &self,
        req: Request<meterlink_proto::v1::EnrollRequest>,
    ) -> Result<Response<meterlink_proto::v1::EnrollResponse>, Status> {
        enroll::enroll(&self.store, self.enrollment.as_deref(), req).await
    }

    async fn renew(
        &self,
        req: Request<meterlink_proto::v1::RenewRequest>,
    ) -> Result<Response<meterlink_proto::v1::EnrollResponse>, Status> {
        enroll::renew(&self.store, self.enrollment.as_deref(), req).await
    }
}
