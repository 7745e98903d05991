//! Enrollment and renewal over gRPC, and the check that keeps streams of
//! disabled or replaced certificates from going on. The CSR checks and the
//! signing are `pki::sign`'s; here are the token, the store and the wire.

use crate::model::{AgentCredential, IssuedCert};
use crate::pki::sign::{check_csr, CsrError, Signer};
use crate::store::{Refusal, Store, StoreError};
use meterlink_proto::v1::{EnrollRequest, EnrollResponse, RenewRequest};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

/// The collector's enrolling half: its CA and the certificates' lifetime.
pub struct Enrollment {
    pub signer: Signer,
    pub cert_lifetime_ms: i64,
}

/// The credentials of every restricted agent (enrolled or disabled), as
/// the watcher last read them.
pub type Credentials = watch::Receiver<Arc<HashMap<String, AgentCredential>>>;

/// How often the watcher reads the agents' credentials: a disabled agent's
/// stream ends within this and a store round trip, on every replica.
pub const CREDENTIALS_EVERY: std::time::Duration = std::time::Duration::from_millis(400);

/// Reads the agents' credentials every `CREDENTIALS_EVERY` until stopped
/// and publishes them when they change.
pub async fn watch_credentials(
    store: Arc<Store>,
    tx: watch::Sender<Arc<HashMap<String, AgentCredential>>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(CREDENTIALS_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.changed() => return,
        }
        match store.agent_credentials().await {
            Ok(rows) => {
                failing = false;
                let fresh: HashMap<_, _> = rows.into_iter().collect();
                tx.send_if_modified(|cur| {
                    let changed = **cur != fresh;
                    if changed {
                        *cur = Arc::new(fresh);
                    }
                    changed
                });
            }
            Err(e) if !failing => {
                failing = true;
                tracing::error!(error = %e, "cannot read the agents' credentials; streams keep the last known state");
            }
            Err(_) => {}
        }
    }
}

fn random_serial() -> Result<[u8; 16], Status> {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| Status::internal("the system's random source failed"))?;
    Ok(b)
}

fn csr_status(e: CsrError) -> Status {
    Status::invalid_argument(format!("{e}; nothing was issued"))
}

fn refusal_status(e: StoreError) -> Status {
    match &e {
        StoreError::Refused { code, .. } => match code {
            Refusal::AgentOfAnotherAccount | Refusal::InvalidAgentId => {
                Status::invalid_argument(e.to_string())
            }
            _ => Status::permission_denied(e.to_string()),
        },
        _ => super::store_status(&e),
    }
}

fn off() -> Status {
    Status::failed_precondition(
        "this collector does not enroll agents: its operator gives [tls] client_ca_key in collector.toml",
    )
}

/// `Enroll`: a join token and a CSR in, the agent's certificate out. The
/// token is checked (known, secret right, not used, not expired, for this
/// CA), then the CSR (for the token's agent id), then the certificate is
/// signed and the token spent in one transaction.
pub async fn enroll(
    store: &Store,
    enrollment: Option<&Enrollment>,
    req: Request<EnrollRequest>,
) -> Result<Response<EnrollResponse>, Status> {
    let en = enrollment.ok_or_else(off)?;
    let peer = req.remote_addr();
    let r = req.into_inner();
    let parts = crate::token::parse_join(&r.token).ok_or_else(|| {
        Status::invalid_argument(
            "not a join token: give the whole text `meterlink-collector token create` printed (mlj_...)",
        )
    })?;
    if !crate::token::same_hash(&parts.ca_sha256.to_ascii_lowercase(), &en.signer.pin_sha256) {
        return Err(Status::permission_denied(
            "the join token names another CA: it was made by another collector",
        ));
    }
    let now = crate::store::now_ms();
    let refused = |why: &str| {
        tracing::warn!(token = %parts.id, ?peer, why, "enrollment refused");
        Status::permission_denied(format!("{why}: ask your operator for a new join token"))
    };
    let t = store
        .join_token(parts.id)
        .await
        .map_err(|e| super::store_status(&e))?
        .filter(|t| {
            crate::token::same_hash(&crate::token::hash_secret(parts.secret), &t.secret_sha256)
        })
        .ok_or_else(|| refused("unknown join token"))?;
    if t.used_at_ms.is_some() {
        return Err(refused("the join token was used already"));
    }
    if t.expires_at_ms <= now {
        return Err(refused("the join token has expired"));
    }
    let csr = check_csr(r.csr_pem.as_bytes(), t.agent.as_deref()).map_err(csr_status)?;
    let cert = en
        .signer
        .sign(&csr, now, en.cert_lifetime_ms, random_serial()?)
        .map_err(|e| Status::internal(format!("signing failed: {e}")))?;
    let issued = IssuedCert {
        agent: csr.agent.clone(),
        serial: cert.serial.clone(),
        expires_at_ms: cert.not_after_ms,
    };
    store
        .redeem_join_token(&t.id, &issued, now)
        .await
        .map_err(refusal_status)?;
    tracing::info!(agent = %csr.agent, account = %t.account, token = %t.id, serial = %cert.serial, ?peer, "agent enrolled");
    let after = serde_json::json!({"join_token": t.id, "token_made_by": t.created_by,
        "certificate_serial": cert.serial, "expires_at_ms": cert.not_after_ms});
    audit(
        store,
        &csr.agent,
        Some(t.account.clone()),
        "enrolled",
        after,
        now,
    )
    .await;
    Ok(Response::new(EnrollResponse {
        agent_id: csr.agent,
        certificate_pem: cert.pem,
        ca_pem: en.signer.trust_pem.clone(),
        expires_at_ms: cert.not_after_ms,
    }))
}

/// `Renew`: over mutual TLS, a CSR for a new key of the same agent.
pub async fn renew(
    store: &Store,
    enrollment: Option<&Enrollment>,
    req: Request<RenewRequest>,
) -> Result<Response<EnrollResponse>, Status> {
    let en = enrollment.ok_or_else(off)?;
    let (agent, serial) = super::identity_of(&req)?;
    let csr = check_csr(req.get_ref().csr_pem.as_bytes(), Some(&agent)).map_err(csr_status)?;
    let cred = store
        .agent_credential(&agent)
        .await
        .map_err(|e| super::store_status(&e))?;
    if let Some(why) = super::refusal(&cred, &agent, &serial) {
        return Err(why);
    }
    let now = crate::store::now_ms();
    let cert = en
        .signer
        .sign(&csr, now, en.cert_lifetime_ms, random_serial()?)
        .map_err(|e| Status::internal(format!("signing failed: {e}")))?;
    let issued = IssuedCert {
        agent: agent.clone(),
        serial: cert.serial.clone(),
        expires_at_ms: cert.not_after_ms,
    };
    store
        .renew_agent_cert(&serial, &issued)
        .await
        .map_err(refusal_status)?;
    tracing::info!(%agent, serial = %cert.serial, expires_at_ms = cert.not_after_ms, "agent certificate renewed");
    let after = serde_json::json!({"previous_serial": serial,
        "certificate_serial": cert.serial, "expires_at_ms": cert.not_after_ms});
    let account = store
        .agent(&agent)
        .await
        .ok()
        .flatten()
        .and_then(|a| a.account);
    audit(store, &agent, account, "certificate_renewed", after, now).await;
    Ok(Response::new(EnrollResponse {
        agent_id: agent,
        certificate_pem: cert.pem,
        ca_pem: en.signer.trust_pem.clone(),
        expires_at_ms: cert.not_after_ms,
    }))
}

/// Records an agent's enrollment or renewal in the audit log. The agent
/// has its certificate already (the store committed it): a failure here
/// is logged, not answered, or the agent would lose a spent token's work.
async fn audit(
    store: &Store,
    agent: &str,
    account: Option<String>,
    action: &str,
    after: serde_json::Value,
    now: i64,
) {
    let entry = crate::model::NewAudit {
        actor: crate::model::Actor {
            kind: "agent".into(),
            id: agent.to_string(),
        },
        account,
        organisation: None,
        object_kind: "agent".into(),
        object_id: agent.to_string(),
        action: action.to_string(),
        before: None,
        after: Some(after),
    };
    if let Err(e) = store.audit(&entry, now).await {
        tracing::error!(%agent, %action, error = %e, "audit entry not written");
    }
}
