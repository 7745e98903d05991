//! REST API (axum) over either store. Errors are JSON
//! `{"error": {"code": "...", "message": "..."}}` with a stable code; the
//! OpenAPI document at /api/openapi.json describes every route.

use crate::store::{
    Account, Article, HistoryQuery, ManualReading, NewRequest, ProductQuery, ProductUpdate,
    RequestQuery, Store, StoreError,
};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// The OpenAPI 3.1 document of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

type S = State<Arc<Store>>;

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message.into()}})),
    )
        .into_response()
}

/// The store's answer as an HTTP response.
fn fail(e: StoreError) -> Response {
    match e {
        StoreError::NotFound(what) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        ),
        StoreError::Refused { code, message } => {
            let status = match code {
                "group_exists" | "request_closed" | "duplicate_reading" => StatusCode::CONFLICT,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            error(status, code, message)
        }
        e => {
            tracing::error!(error = %e, "API request failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the store failed; see the collector log, then retry",
            )
        }
    }
}

fn reply<T: serde::Serialize>(r: Result<T, StoreError>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => fail(e),
    }
}

fn bad_body(e: JsonRejection) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_body", e.body_text())
}

fn bad_query(e: QueryRejection) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_query", e.body_text())
}

/// Unwraps an extractor result or returns its JSON error.
macro_rules! take {
    ($e:expr, $bad:ident) => {
        match $e {
            Ok(v) => v.0,
            Err(e) => return $bad(e),
        }
    };
}

async fn accounts(State(s): S) -> Response {
    match s.accounts().await {
        Ok(a) => Json(json!({"accounts": a})).into_response(),
        Err(e) => fail(e),
    }
}

async fn account(State(s): S, Path(id): Path<String>) -> Response {
    match s.account(&id).await {
        Ok(Some(a)) => Json(a).into_response(),
        Ok(None) => fail(StoreError::NotFound(format!("account {id:?}"))),
        Err(e) => fail(e),
    }
}

async fn put_account(
    State(s): S,
    Path(id): Path<String>,
    body: Result<Json<Account>, JsonRejection>,
) -> Response {
    let a = take!(body, bad_body);
    if a.id != id {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "id_mismatch",
            format!("the body's id {:?} is not the path's {id:?}", a.id),
        );
    }
    reply(s.put_account(&a).await)
}

#[derive(Deserialize)]
struct PeriodQuery {
    /// YYYY-MM
    period: String,
}

async fn billing_csv(
    State(s): S,
    Path(id): Path<String>,
    q: Result<Query<PeriodQuery>, QueryRejection>,
) -> Response {
    let q = take!(q, bad_query);
    let parsed = q
        .period
        .split_once('-')
        .and_then(|(y, m)| Some((y.parse::<i32>().ok()?, m.parse::<u32>().ok()?)))
        .filter(|(y, m)| (1970..=9999).contains(y) && (1..=12).contains(m));
    let Some((y, m)) = parsed else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_period",
            format!("period {:?}: give it as YYYY-MM", q.period),
        );
    };
    match s.billing(&id, y, m).await {
        Ok(rows) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"billing-{id}-{y:04}-{m:02}.csv\""),
                ),
            ],
            crate::filing::billing::to_csv(&rows),
        )
            .into_response(),
        Err(e) => fail(e),
    }
}

async fn products(State(s): S, q: Result<Query<ProductQuery>, QueryRejection>) -> Response {
    let q = take!(q, bad_query);
    reply(s.product_page(&q).await)
}

async fn product(State(s): S, Path(serial): Path<String>) -> Response {
    match s.product(&serial).await {
        Ok(Some(p)) => Json(p).into_response(),
        Ok(None) => fail(StoreError::NotFound(format!("product {serial:?}"))),
        Err(e) => fail(e),
    }
}

async fn update_product(
    State(s): S,
    Path(serial): Path<String>,
    body: Result<Json<ProductUpdate>, JsonRejection>,
) -> Response {
    let u = take!(body, bad_body);
    reply(s.update_product(&serial, &u).await)
}

async fn readings(
    State(s): S,
    Path(serial): Path<String>,
    q: Result<Query<HistoryQuery>, QueryRejection>,
) -> Response {
    let q = take!(q, bad_query);
    let p = match s.product(&serial).await {
        Ok(Some(p)) => p,
        Ok(None) => return fail(StoreError::NotFound(format!("product {serial:?}"))),
        Err(e) => return fail(e),
    };
    match s.history(&serial, &q).await {
        Ok(r) => {
            Json(json!({"serial": serial, "latest": p.counters, "readings": r})).into_response()
        }
        Err(e) => fail(e),
    }
}

async fn manual_reading(
    State(s): S,
    Path(serial): Path<String>,
    body: Result<Json<ManualReading>, JsonRejection>,
) -> Response {
    let m = take!(body, bad_body);
    match s.manual_reading(&serial, &m, crate::store::now_ms()).await {
        Ok(r) => (StatusCode::CREATED, Json(r)).into_response(),
        Err(e) => fail(e),
    }
}

#[derive(Deserialize)]
struct AccountFilter {
    account: Option<String>,
}

async fn groups(State(s): S, q: Result<Query<AccountFilter>, QueryRejection>) -> Response {
    let q = take!(q, bad_query);
    match s.groups(q.account.as_deref()).await {
        Ok(g) => Json(json!({"groups": g})).into_response(),
        Err(e) => fail(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewGroup {
    account: String,
    name: String,
}

async fn create_group(State(s): S, body: Result<Json<NewGroup>, JsonRejection>) -> Response {
    let g = take!(body, bad_body);
    match s.create_group(&g.account, &g.name).await {
        Ok(g) => (StatusCode::CREATED, Json(g)).into_response(),
        Err(e) => fail(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rename {
    name: String,
}

async fn rename_group(
    State(s): S,
    Path(id): Path<i64>,
    body: Result<Json<Rename>, JsonRejection>,
) -> Response {
    let r = take!(body, bad_body);
    reply(s.rename_group(id, &r.name).await)
}

async fn delete_group(State(s): S, Path(id): Path<i64>) -> Response {
    match s.delete_group(id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => fail(e),
    }
}

async fn add_to_group(State(s): S, Path((id, serial)): Path<(i64, String)>) -> Response {
    reply(s.group_member(id, &serial, true).await)
}

async fn remove_from_group(State(s): S, Path((id, serial)): Path<(i64, String)>) -> Response {
    reply(s.group_member(id, &serial, false).await)
}

async fn requests(State(s): S, q: Result<Query<RequestQuery>, QueryRejection>) -> Response {
    let q = take!(q, bad_query);
    if let Some(st) = &q.state {
        if st != "open" && st != "closed" {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_state",
                "state is open or closed",
            );
        }
    }
    match s.requests(&q).await {
        Ok(r) => Json(json!({"service_requests": r})).into_response(),
        Err(e) => fail(e),
    }
}

async fn request(State(s): S, Path(number): Path<String>) -> Response {
    match s.request(&number).await {
        Ok(Some(r)) => Json(r).into_response(),
        Ok(None) => fail(StoreError::NotFound(format!("service request {number:?}"))),
        Err(e) => fail(e),
    }
}

async fn create_request(State(s): S, body: Result<Json<NewRequest>, JsonRejection>) -> Response {
    let r = take!(body, bad_body);
    match s.create_request(&r, crate::store::now_ms()).await {
        Ok(r) => (StatusCode::CREATED, Json(r)).into_response(),
        Err(e) => fail(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Close {
    reason: String,
}

async fn close_request(
    State(s): S,
    Path(number): Path<String>,
    body: Result<Json<Close>, JsonRejection>,
) -> Response {
    let c = take!(body, bad_body);
    reply(
        s.close_request(&number, &c.reason, crate::store::now_ms())
            .await,
    )
}

async fn agents(State(s): S) -> Response {
    match s.agents().await {
        Ok(a) => Json(json!({"agents": a})).into_response(),
        Err(e) => fail(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentUpdate {
    account: Option<String>,
}

async fn update_agent(
    State(s): S,
    Path(id): Path<String>,
    body: Result<Json<AgentUpdate>, JsonRejection>,
) -> Response {
    let u = take!(body, bad_body);
    reply(s.set_agent_account(&id, u.account.as_deref()).await)
}

async fn unassigned(State(s): S) -> Response {
    match s.unassigned().await {
        Ok(p) => Json(json!({"devices": p})).into_response(),
        Err(e) => fail(e),
    }
}

async fn articles(State(s): S) -> Response {
    match s.articles().await {
        Ok(a) => Json(json!({"articles": a})).into_response(),
        Err(e) => fail(e),
    }
}

async fn put_article(
    State(s): S,
    Path(id): Path<String>,
    body: Result<Json<Article>, JsonRejection>,
) -> Response {
    let a = take!(body, bad_body);
    if a.id != id {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "id_mismatch",
            format!("the body's id {:?} is not the path's {id:?}", a.id),
        );
    }
    reply(s.put_article(&a).await)
}

async fn outbox(State(s): S) -> Response {
    reply(s.outbox_counts().await)
}

/// Extractor refusals that axum writes as plain text (a path segment that
/// is not a number, bad percent-encoding) become JSON errors like the rest.
async fn json_errors(r: Response) -> Response {
    let plain = r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if !(r.status().is_client_error() && plain) {
        return r;
    }
    let status = r.status();
    let text = axum::body::to_bytes(r.into_body(), 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).to_string())
        .unwrap_or_default();
    error(status, "invalid_request", text)
}

pub fn router(store: Arc<Store>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/api/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .route("/api/v1/accounts", get(accounts))
        .route("/api/v1/accounts/{id}", get(account).put(put_account))
        .route("/api/v1/accounts/{id}/billing.csv", get(billing_csv))
        .route("/api/v1/products", get(products))
        .route(
            "/api/v1/products/{serial}",
            get(product).patch(update_product),
        )
        .route(
            "/api/v1/products/{serial}/readings",
            get(readings).post(manual_reading),
        )
        .route("/api/v1/groups", get(groups).post(create_group))
        .route(
            "/api/v1/groups/{id}",
            axum::routing::patch(rename_group).delete(delete_group),
        )
        .route(
            "/api/v1/groups/{id}/products/{serial}",
            put(add_to_group).delete(remove_from_group),
        )
        .route(
            "/api/v1/service-requests",
            get(requests).post(create_request),
        )
        .route("/api/v1/service-requests/{number}", get(request))
        .route(
            "/api/v1/service-requests/{number}/close",
            post(close_request),
        )
        .route("/api/v1/agents", get(agents))
        .route("/api/v1/agents/{id}", axum::routing::patch(update_agent))
        .route("/api/v1/unassigned-devices", get(unassigned))
        .route("/api/v1/kb-articles", get(articles))
        .route("/api/v1/kb-articles/{id}", put(put_article))
        .route("/api/v1/outbox", get(outbox))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint; see /api/openapi.json",
            )
        })
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method; see /api/openapi.json",
            )
        })
        .layer(axum::middleware::map_response(json_errors))
        .with_state(store)
}

/// Serves the API on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, store: Arc<Store>) -> std::io::Result<()> {
    axum::serve(listener, router(store)).await
}
