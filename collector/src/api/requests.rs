//! Service, move and information requests.

use super::audit::{record, Change};
use super::caller::Caller;
use super::error::{ApiError, ApiResult};
use super::{Routes, S};
use crate::auth::Action;
use crate::model::{ArticleHit, NewRequest, RequestNote, RequestQuery, Role, ServiceRequest};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Json;
use serde::{Deserialize, Serialize};

pub(super) fn routes() -> Routes {
    Routes::new()
        .route(
            "/api/v1/service-requests",
            get(requests).post(create_request),
        )
        .route("/api/v1/service-requests/{number}", get(request))
        .route(
            "/api/v1/service-requests/{number}/close",
            post(close_request),
        )
        .route(
            "/api/v1/service-requests/{number}/updates",
            post(update_request),
        )
        .route(
            "/api/v1/service-requests/{number}/comments",
            post(comment_request),
        )
}

async fn requests(
    State(s): S,
    c: Caller,
    q: Result<Query<RequestQuery>, QueryRejection>,
) -> ApiResult<Json<RequestList>> {
    let service_requests = list(&s, &c, q?.0).await?;
    Ok(Json(RequestList { service_requests }))
}

/// Serialised as it is: no JSON tree built first.
#[derive(Serialize)]
struct RequestList {
    service_requests: Vec<ServiceRequest>,
}

/// The requests the caller sees that `q` asks for.
pub(super) async fn list(
    s: &crate::store::Store,
    c: &Caller,
    mut q: RequestQuery,
) -> ApiResult<Vec<ServiceRequest>> {
    if let Some(st) = &q.state {
        if st != "open" && st != "closed" {
            return Err(ApiError::bad_request(
                "invalid_state",
                "state is open or closed",
            ));
        }
    }
    q.accounts = c.scoped_accounts(q.account.take())?;
    if c.role == Role::ProductAdministrator {
        q.administrator = Some(c.id.clone());
    }
    Ok(s.requests(&q).await?)
}

/// A request with its events and the knowledge articles for its code.
#[derive(Serialize)]
pub(super) struct RequestDetail {
    #[serde(flatten)]
    pub(super) request: ServiceRequest,
    pub(super) articles: Vec<ArticleHit>,
}

pub(super) async fn request(
    State(s): S,
    c: Caller,
    Path(number): Path<String>,
) -> ApiResult<Json<RequestDetail>> {
    let r = c.request(&s, &number).await?;
    let articles = match &r.code {
        Some(code) => {
            let model = match &r.serial {
                Some(serial) => s.product(serial).await?.and_then(|p| p.model),
                None => None,
            };
            super::kb::for_code(&s, &c, code, model).await?
        }
        None => Vec::new(),
    };
    Ok(Json(RequestDetail {
        request: r,
        articles,
    }))
}

pub(super) async fn create_request(
    State(s): S,
    c: Caller,
    body: Result<Json<NewRequest>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<ServiceRequest>)> {
    let mut r = body?.0;
    c.account_in_reach(&r.account)?;
    match &r.serial {
        Some(serial) => {
            c.product(&s, serial).await?;
        }
        None if c.role == Role::ProductAdministrator => {
            return Err(ApiError::forbidden(
                &c,
                "a request without a product (give serial)",
            ));
        }
        None => {}
    }
    // Who opened it is who is calling, whatever the body says.
    r.user = c.id.clone();
    let r = s.create_request(&r, crate::store::now_ms()).await?;
    let what = Change::new("service_request", &r.number, "opened", r.account.as_deref());
    record::<(), _>(&s, &c, what, None, Some(&r)).await?;
    Ok((StatusCode::CREATED, Json(r)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Close {
    pub(super) reason: String,
}

pub(super) async fn close_request(
    State(s): S,
    c: Caller,
    Path(number): Path<String>,
    body: Result<Json<Close>, JsonRejection>,
) -> ApiResult<Json<ServiceRequest>> {
    let before = c.request(&s, &number).await?;
    let b = body?.0;
    let r = s
        .close_request(&number, &b.reason, &c.id, crate::store::now_ms())
        .await?;
    let what = Change::new("service_request", &r.number, "closed", r.account.as_deref());
    record(&s, &c, what, Some(&before), Some(&r)).await?;
    Ok(Json(r))
}

/// An operator's status update (assigned, technician scheduled, waiting
/// for parts, solved, ...) with an optional text: the customer sees it and
/// is told by e-mail.
async fn update_request(
    State(s): S,
    c: Caller,
    Path(number): Path<String>,
    body: Result<Json<RequestNote>, JsonRejection>,
) -> ApiResult<Json<ServiceRequest>> {
    c.need(
        Action::ManageFleet,
        "status updates (the service provider's)",
    )?;
    note(&s, &c, &number, body?.0, true).await
}

/// A comment on a request, by anyone who sees it.
pub(super) async fn comment_request(
    State(s): S,
    c: Caller,
    Path(number): Path<String>,
    body: Result<Json<RequestNote>, JsonRejection>,
) -> ApiResult<Json<ServiceRequest>> {
    let mut n = body?.0;
    if n.status.is_some() {
        return Err(ApiError::unprocessable(
            "invalid_request_data",
            "a comment has no status: operators post status updates to /updates",
        ));
    }
    n.status = None;
    // An operator's comment is an update the customer hears of.
    let operator = c.role == Role::Operator;
    note(&s, &c, &number, n, operator).await
}

async fn note(
    s: &crate::store::Store,
    c: &Caller,
    number: &str,
    n: RequestNote,
    operator: bool,
) -> ApiResult<Json<ServiceRequest>> {
    let before = c.request(s, number).await?;
    let after = s
        .note_request(number, &n, &c.id, operator, crate::store::now_ms())
        .await?;
    let action = if n.status.is_some() {
        "status_updated"
    } else {
        "commented"
    };
    let what = Change::new("service_request", number, action, after.account.as_deref());
    record(s, c, what, Some(&before.status), Some(&n)).await?;
    Ok(Json(after))
}
