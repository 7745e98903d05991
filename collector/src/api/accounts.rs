//! Accounts and their billing export.

use super::audit::{record, Change};
use super::caller::Caller;
use super::error::{ApiError, ApiResult};
use super::{Routes, S};
use crate::auth::Action;
use crate::model::Account;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

pub(super) fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/accounts", get(accounts))
        .route("/api/v1/accounts/{id}", get(account).put(put_account))
        .route("/api/v1/accounts/{id}/billing.csv", get(billing_csv))
}

async fn accounts(State(s): S, c: Caller) -> ApiResult<Json<Value>> {
    let mut a = s.accounts().await?;
    a.retain(|a| c.sees_account(&a.id));
    Ok(Json(json!({"accounts": a})))
}

async fn account(State(s): S, c: Caller, Path(id): Path<String>) -> ApiResult<Json<Account>> {
    match s.account(&id).await? {
        Some(a) if c.sees_account(&a.id) => Ok(Json(a)),
        _ => Err(ApiError::not_found(format!("account {id:?}"))),
    }
}

pub(super) async fn put_account(
    State(s): S,
    c: Caller,
    Path(id): Path<String>,
    body: Result<Json<Account>, JsonRejection>,
) -> ApiResult<Json<Account>> {
    c.need(Action::ManageAccounts, "creating or changing accounts")?;
    let a = body?.0;
    if a.id != id {
        return Err(ApiError::id_mismatch(&a.id, &id));
    }
    let before = s.account(&id).await?;
    let after = s.put_account(&a).await?;
    let what = Change::new("account", &id, "put", Some(&id));
    record(&s, &c, what, before.as_ref(), Some(&after)).await?;
    Ok(Json(after))
}

#[derive(Deserialize)]
struct PeriodQuery {
    /// YYYY-MM
    period: String,
}

async fn billing_csv(
    State(s): S,
    c: Caller,
    Path(id): Path<String>,
    q: Result<Query<PeriodQuery>, QueryRejection>,
) -> ApiResult<impl IntoResponse> {
    c.need(Action::Billing, "the billing export")?;
    c.account_in_reach(&id)?;
    let q = q?.0;
    let parsed = q
        .period
        .split_once('-')
        .and_then(|(y, m)| Some((y.parse::<i32>().ok()?, m.parse::<u32>().ok()?)))
        .filter(|(y, m)| (1970..=9999).contains(y) && (1..=12).contains(m));
    let Some((y, m)) = parsed else {
        return Err(ApiError::bad_request(
            "invalid_period",
            format!("period {:?}: give it as YYYY-MM", q.period),
        ));
    };
    let rows = s.billing(&id, y, m).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"billing-{id}-{y:04}-{m:02}.csv\""),
            ),
        ],
        crate::filing::billing::to_csv(&rows),
    ))
}
