//! Join tokens for agent enrollment: made by operators for any account and
//! by account managers for their own; shown once, kept only as a hash.

use super::audit::{record, Change};
use super::caller::Caller;
use super::error::{ApiError, ApiResult};
use super::{AccountFilter, Routes, S};
use crate::auth::Action;
use crate::model::{IssuedJoinToken, NewJoinToken};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

/// What the API needs to make join tokens.
#[derive(Clone, Debug)]
pub struct Joining {
    /// SHA-256 (hex) of the CA agents pin; None: this collector does not
    /// enroll (no CA key configured).
    pub pin_sha256: Option<String>,
    /// A token's life when the request gives none.
    pub token_ttl_ms: i64,
}

pub(super) fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/join-tokens", get(list).post(create))
        .route("/api/v1/join-tokens/{id}", delete(withdraw))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Create {
    pub(super) account: String,
    #[serde(default)]
    pub(super) agent_id: Option<String>,
    /// Seconds the token is good for.
    #[serde(default)]
    pub(super) ttl_secs: Option<u64>,
}

pub(super) async fn create(
    State(s): S,
    c: Caller,
    Extension(j): Extension<Joining>,
    body: Result<Json<Create>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<IssuedJoinToken>)> {
    c.need(Action::EnrollAgents, "join tokens")?;
    let b = body?.0;
    c.account_in_reach(&b.account)?;
    let Some(pin) = j.pin_sha256 else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "enrollment_off",
            "this collector does not enroll agents: give [tls] client_ca_key in collector.toml",
        ));
    };
    let ttl_ms = match b.ttl_secs {
        None => j.token_ttl_ms,
        Some(t) if (60..=30 * 86_400).contains(&t) => t as i64 * 1000,
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_ttl",
                "ttl_secs: from 60 (a minute) to 2592000 (30 days)",
            ))
        }
    };
    let now = crate::store::now_ms();
    let new = NewJoinToken {
        account: b.account,
        agent: b.agent_id,
        created_by: c.id.clone(),
        expires_at_ms: now + ttl_ms,
    };
    let issued = s.create_join_token(&new, &pin, now).await?;
    tracing::info!(token = %issued.id, account = %issued.account, by = %c.id, "join token made");
    // Never the token's text: it enrolls an agent.
    let what = Change::new("join_token", &issued.id, "created", Some(&issued.account));
    let shown = serde_json::json!({"id": issued.id, "account": issued.account,
        "agent": issued.agent, "expires_at_ms": issued.expires_at_ms});
    record::<(), _>(&s, &c, what, None, Some(&shown)).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

async fn list(
    State(s): S,
    c: Caller,
    q: Result<Query<AccountFilter>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    c.need(Action::EnrollAgents, "join tokens")?;
    let asked = q?.0.account;
    if let Some(a) = &asked {
        c.account_in_reach(a)?;
    }
    let mut t = s.join_tokens(asked.as_deref()).await?;
    t.retain(|t| c.sees_account(&t.account));
    Ok(Json(json!({"join_tokens": t})))
}

pub(super) async fn withdraw(
    State(s): S,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    c.need(Action::EnrollAgents, "join tokens")?;
    let t = s
        .join_token(&id)
        .await?
        .filter(|t| c.sees_account(&t.account))
        .ok_or_else(|| ApiError::not_found(format!("join token {id:?}")))?;
    s.delete_join_token(&t.id).await?;
    let what = Change::new("join_token", &t.id, "withdrawn", Some(&t.account));
    record::<_, ()>(&s, &c, what, Some(&t), None).await?;
    Ok(StatusCode::NO_CONTENT)
}
