//! Organisations (customers) and the companies they hold: operators
//! create and rename them; a customer's people see their own.

use super::audit::Change;
use super::caller::Caller;
use super::error::{ApiError, ApiResult};
use super::{Routes, S};
use crate::auth::Action;
use crate::model::Organisation;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::Json;
use serde_json::{json, Value};

pub(super) fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/organisations", get(organisations))
        .route(
            "/api/v1/organisations/{id}",
            get(organisation).put(put_organisation),
        )
}

fn sees(c: &Caller, o: &Organisation) -> bool {
    c.confined_to().is_none() || c.organisation.as_deref() == Some(o.id.as_str())
}

/// The caller's organisation with only the companies they see.
fn narrowed(c: &Caller, mut o: Organisation) -> Organisation {
    o.companies.retain(|a| c.sees_account(a));
    o
}

async fn organisations(State(s): S, c: Caller) -> ApiResult<Json<Value>> {
    let all = s.organisations().await?;
    let o: Vec<Organisation> = all
        .into_iter()
        .filter(|o| sees(&c, o))
        .map(|o| narrowed(&c, o))
        .collect();
    Ok(Json(json!({"organisations": o})))
}

async fn organisation(
    State(s): S,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Organisation>> {
    match s.organisation(&id).await? {
        Some(o) if sees(&c, &o) => Ok(Json(narrowed(&c, o))),
        _ => Err(ApiError::not_found(format!("organisation {id:?}"))),
    }
}

async fn put_organisation(
    State(s): S,
    c: Caller,
    Path(id): Path<String>,
    body: Result<Json<Organisation>, JsonRejection>,
) -> ApiResult<Json<Organisation>> {
    c.need(Action::ManageAccounts, "creating or renaming organisations")?;
    let o = body?.0;
    if o.id != id {
        return Err(ApiError::id_mismatch(&o.id, &id));
    }
    let before = s.organisation(&id).await?;
    let after = s.put_organisation(&o).await?;
    let what = Change::new("organisation", &id, "put", None);
    super::audit::record_as(
        &s,
        c.actor(),
        Some(id.clone()),
        what,
        before.as_ref().and_then(|b| serde_json::to_value(b).ok()),
        serde_json::to_value(&after).ok(),
    )
    .await?;
    Ok(Json(after))
}
