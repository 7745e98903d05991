//! Contract lines: operators maintain them (one at a time, or a company's
//! CSV file at once); customers read their companies' lines, product
//! administrators those of their products.

use super::audit::{record, Change};
use super::caller::Caller;
use super::error::{ApiError, ApiResult};
use super::{Routes, S};
use crate::auth::Action;
use crate::model::{ContractLine, NewContractLine, Role};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

pub(super) fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/contract-lines", get(lines).post(put_line))
        .route("/api/v1/contract-lines/{id}", delete(delete_line))
        .route("/api/v1/accounts/{id}/contract-lines.csv", post(import_csv))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineQuery {
    account: Option<String>,
    serial: Option<String>,
}

async fn lines(
    State(s): S,
    c: Caller,
    q: Result<Query<LineQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let q = q?.0;
    let accounts = c.scoped_accounts(q.account)?;
    let admin = (c.role == Role::ProductAdministrator).then_some(c.id.as_str());
    let l = s
        .contract_lines(accounts.as_deref(), admin, q.serial.as_deref())
        .await?;
    Ok(Json(json!({"contract_lines": l})))
}

async fn put_line(
    State(s): S,
    c: Caller,
    body: Result<Json<NewContractLine>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<ContractLine>)> {
    c.need(Action::ManageAccounts, "maintaining contract lines")?;
    let l = body?.0;
    let line = s.put_contract_line(&l).await?;
    let id = line.id.to_string();
    let what = Change::new("contract_line", &id, "put", Some(&line.line.account));
    record::<(), _>(&s, &c, what, None, Some(&line)).await?;
    Ok((StatusCode::CREATED, Json(line)))
}

pub(super) async fn delete_line(
    State(s): S,
    c: Caller,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    c.need(Action::ManageAccounts, "maintaining contract lines")?;
    let before = s
        .contract_line(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("contract line {id}")))?;
    s.delete_contract_line(id).await?;
    let sid = id.to_string();
    let what = Change::new("contract_line", &sid, "deleted", Some(&before.line.account));
    record::<_, ()>(&s, &c, what, Some(&before), None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A company's contract lines from a CSV file (header
/// `contract_number,item,serial,service,kind,starts_on,ends_on`): every
/// row is checked first, the first bad one is named by its line, and
/// nothing is written unless all are good.
pub(super) async fn import_csv(
    State(s): S,
    c: Caller,
    Path(account): Path<String>,
    body: String,
) -> ApiResult<Json<Value>> {
    c.need(Action::ManageAccounts, "importing contract lines")?;
    let parsed = crate::model::parse_contract_csv(&account, &body)
        .map_err(|m| ApiError::unprocessable("invalid_contract_line", m))?;
    let written = s.put_contract_lines(&parsed).await?;
    let what = Change::new(
        "account",
        &account,
        "contract_lines_imported",
        Some(&account),
    );
    record::<(), _>(&s, &c, what, None, Some(&json!({"lines": written.len()}))).await?;
    Ok(Json(
        json!({"imported": written.len(), "contract_lines": written}),
    ))
}
