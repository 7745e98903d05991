//! The fleet: agents, devices no account owns yet, the outbox.

use super::audit::{record, Change};
use super::caller::Caller;
use super::error::{ApiError, ApiResult};
use super::{Routes, S};
use crate::auth::Action;
use crate::model::{AgentInfo, OutboxCounts, QueueEntry};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

pub(super) fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/agents", get(agents))
        .route("/api/v1/agents/{id}", patch(update_agent))
        .route("/api/v1/agents/{id}/disable", post(disable_agent))
        .route("/api/v1/agents/{id}/enable", post(enable_agent))
        .route("/api/v1/unassigned-devices", get(unassigned))
        .route("/api/v1/outbox", get(outbox))
        .route("/api/v1/queues/{queue}", get(queue_entries))
        .route("/api/v1/queues/{queue}/{id}/retry", post(retry))
}

async fn agents(State(s): S, c: Caller) -> ApiResult<Json<Value>> {
    c.need(Action::SeeAgents, "agents")?;
    let mut a = s.agents().await?;
    a.retain(|a| {
        a.account.as_deref().is_some_and(|x| c.sees_account(x)) || c.confined_to().is_none()
    });
    Ok(Json(json!({"agents": a})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AgentUpdate {
    pub(super) account: Option<String>,
}

pub(super) async fn update_agent(
    State(s): S,
    c: Caller,
    Path(id): Path<String>,
    body: Result<Json<AgentUpdate>, JsonRejection>,
) -> ApiResult<Json<AgentInfo>> {
    c.need(Action::ManageFleet, "assigning agents")?;
    let u = body?.0;
    let before = s.agent(&id).await?;
    let after = s.set_agent_account(&id, u.account.as_deref()).await?;
    let what = Change::new("agent", &id, "assigned", after.account.as_deref());
    record(&s, &c, what, before.as_ref(), Some(&after)).await?;
    Ok(Json(after))
}

/// Its live stream ends within a second; it may not connect, renew or
/// enroll until enabled again.
pub(super) async fn disable_agent(
    State(s): S,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<AgentInfo>> {
    c.need(Action::ManageFleet, "disabling agents")?;
    let a = s.set_agent_enabled(&id, false).await?;
    tracing::warn!(agent = %id, by = %c.id, "agent disabled");
    let what = Change::new("agent", &id, "disabled", a.account.as_deref());
    record::<(), _>(&s, &c, what, None, Some(&a)).await?;
    Ok(Json(a))
}

pub(super) async fn enable_agent(
    State(s): S,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<AgentInfo>> {
    c.need(Action::ManageFleet, "enabling agents")?;
    let a = s.set_agent_enabled(&id, true).await?;
    tracing::info!(agent = %id, by = %c.id, "agent enabled");
    let what = Change::new("agent", &id, "enabled", a.account.as_deref());
    record::<(), _>(&s, &c, what, None, Some(&a)).await?;
    Ok(Json(a))
}

async fn unassigned(State(s): S, c: Caller) -> ApiResult<Json<Value>> {
    c.need(Action::ManageFleet, "unassigned devices")?;
    let p = s.unassigned().await?;
    Ok(Json(json!({"devices": p})))
}

async fn outbox(State(s): S, c: Caller) -> ApiResult<Json<OutboxCounts>> {
    c.need(Action::ManageFleet, "the outbox")?;
    Ok(Json(s.outbox_counts().await?))
}

/// The two delivery queues an operator looks into.
#[derive(Clone, Copy, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub(super) enum QueueName {
    /// Request changes for the external portal.
    Portal,
    /// E-mail notifications.
    Email,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EntriesQuery {
    /// "pending" (default) or "dead".
    pub(super) state: Option<String>,
    pub(super) limit: Option<u32>,
}

/// A queue's pending deliveries or dead letters, newest first.
pub(super) async fn entries(
    s: &crate::store::Store,
    c: &Caller,
    queue: QueueName,
    q: EntriesQuery,
) -> ApiResult<Vec<QueueEntry>> {
    c.need(Action::ManageFleet, "the delivery queues")?;
    let state = q.state.unwrap_or_else(|| "pending".into());
    if state != "pending" && state != "dead" {
        return Err(ApiError::bad_request(
            "invalid_state",
            "state is pending or dead",
        ));
    }
    let limit = q.limit.unwrap_or(100).clamp(1, 1000) as i64;
    Ok(match queue {
        QueueName::Portal => s.outbox_entries(&state, limit).await?,
        QueueName::Email => s.email_entries(&state, limit).await?,
    })
}

async fn queue_entries(
    State(s): S,
    c: Caller,
    Path(queue): Path<QueueName>,
    q: Result<Query<EntriesQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let e = entries(&s, &c, queue, q?.0).await?;
    Ok(Json(json!({"entries": e})))
}

/// A dead letter tried again, with a full round of attempts (after the
/// portal or the mail server is mended).
pub(super) async fn retry(
    State(s): S,
    c: Caller,
    Path((queue, id)): Path<(QueueName, i64)>,
) -> ApiResult<StatusCode> {
    c.need(Action::ManageFleet, "the delivery queues")?;
    let now = crate::store::now_ms();
    let done = match queue {
        QueueName::Portal => s.outbox_retry(id, now).await?,
        QueueName::Email => s.email_retry(id, now).await?,
    };
    if !done {
        return Err(ApiError::not_found(format!("dead letter {id}")));
    }
    let kind = match queue {
        QueueName::Portal => "outbox",
        QueueName::Email => "email",
    };
    let key = id.to_string();
    let what = Change::new(kind, &key, "retried", None);
    record::<(), ()>(&s, &c, what, None, None).await?;
    Ok(StatusCode::NO_CONTENT)
}
