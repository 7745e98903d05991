//! The fleet: agents, devices no account owns yet, the outbox.

use super::audit::{record, Change};
use super::caller::Caller;
use super::error::ApiResult;
use super::{Routes, S};
use crate::auth::Action;
use crate::model::{AgentInfo, OutboxCounts};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
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
struct AgentUpdate {
    account: Option<String>,
}

async fn update_agent(
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
async fn disable_agent(
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

async fn enable_agent(
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
