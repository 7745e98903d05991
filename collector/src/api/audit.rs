//! The audit log: `GET /api/v1/audit` (operators all of it, account
//! managers their organisation's), and `record`, which every handler that
//! changes something calls after the change.

use super::caller::Caller;
use super::error::{ApiError, ApiResult};
use super::{Routes, S};
use crate::auth::Action;
use crate::model::{Actor, AuditEntry, AuditQuery, NewAudit, Page, Role};
use crate::store::Store;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::Json;
use serde::Serialize;

pub(super) fn routes() -> Routes {
    Routes::new().route("/api/v1/audit", get(log))
}

async fn log(
    State(s): S,
    c: Caller,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> ApiResult<Json<Page<AuditEntry>>> {
    c.need(Action::SeeAudit, "the audit log")?;
    let mut q = q?.0;
    if c.role != Role::Operator {
        // An account manager without an organisation sees nothing.
        q.organisation = Some(c.organisation.clone().unwrap_or_else(|| "\u{0}".into()));
    }
    Ok(Json(s.audit_log(&q).await?))
}

/// What changed, for the log.
pub(crate) struct Change<'a> {
    pub kind: &'a str,
    pub id: &'a str,
    pub action: &'a str,
    /// The object's company (its organisation is recorded).
    pub account: Option<&'a str>,
}

impl<'a> Change<'a> {
    pub fn new(kind: &'a str, id: &'a str, action: &'a str, account: Option<&'a str>) -> Self {
        Change {
            kind,
            id,
            action,
            account,
        }
    }
}

fn json<T: Serialize>(v: Option<&T>) -> Option<serde_json::Value> {
    v.and_then(|v| serde_json::to_value(v).ok())
}

/// Records a change the caller made.
pub(crate) async fn record<B: Serialize, A: Serialize>(
    s: &Store,
    c: &Caller,
    what: Change<'_>,
    before: Option<&B>,
    after: Option<&A>,
) -> ApiResult<()> {
    record_as(s, c.actor(), None, what, json(before), json(after)).await
}

/// Records a change made by `actor` (a person following a link, an agent).
/// The change has committed already: a failure here is logged and answered
/// as an error, so the caller learns the log is incomplete.
pub(crate) async fn record_as(
    s: &Store,
    actor: Actor,
    organisation: Option<String>,
    what: Change<'_>,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> ApiResult<()> {
    let entry = NewAudit {
        actor,
        account: what.account.map(str::to_string),
        organisation,
        object_kind: what.kind.to_string(),
        object_id: what.id.to_string(),
        action: what.action.to_string(),
        before,
        after,
    };
    if let Err(e) = s.audit(&entry, crate::store::now_ms()).await {
        tracing::error!(error = %e, object = %what.id, action = %what.action, "audit entry not written");
        return Err(ApiError::from(e));
    }
    Ok(())
}
