//! REST API (axum) over either store. Errors are JSON
//! `{"error": {"code": "...", "message": "..."}}` with a stable code; the
//! OpenAPI document at /api/openapi.json describes every route.

use crate::auth::{Action, Role, User};
use crate::store::{
    Account, Article, HistoryQuery, ManualReading, NewRequest, Product, ProductQuery,
    ProductUpdate, RequestQuery, ServiceRequest, Store, StoreError,
};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
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
                "group_exists" | "request_closed" | "duplicate_reading" | "user_id_taken" => {
                    StatusCode::CONFLICT
                }
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

type C = Extension<User>;

/// An answer that ends a handler early (boxed: a Response is large).
type Refusal = Box<Response>;

fn forbidden(c: &User, what: &str) -> Response {
    error(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!(
            "{what}: not for a user with the role {}; ask an {}",
            c.role.as_str(),
            if c.role == Role::ProductAdministrator {
                "account manager"
            } else {
                "operator"
            }
        ),
    )
}

fn need(c: &User, a: Action, what: &str) -> Result<(), Refusal> {
    if c.may(a) {
        Ok(())
    } else {
        Err(forbidden(c, what).into())
    }
}

/// Tenant data outside the caller's reach answers as if it did not exist.
fn not_found(what: String) -> Response {
    fail(StoreError::NotFound(what))
}

/// The account a list is filtered by: the one asked for, confined to the
/// caller's (another account's name answers not found).
fn scoped_account(c: &User, asked: Option<String>) -> Result<Option<String>, Refusal> {
    match (c.confined_to(), asked) {
        (None, asked) => Ok(asked),
        (Some(own), Some(a)) if a != own => Err(not_found(format!("account {a:?}")).into()),
        (Some(own), _) => Ok(Some(own.to_string())),
    }
}

/// The product, when the caller may see it.
async fn visible_product(s: &Store, c: &User, serial: &str) -> Result<Product, Refusal> {
    match s.product(serial).await {
        Ok(Some(p)) if c.sees_product(&p) => Ok(p),
        Ok(_) => Err(not_found(format!("product {serial:?}")).into()),
        Err(e) => Err(fail(e).into()),
    }
}

/// The request, when the caller may see it.
async fn visible_request(s: &Store, c: &User, number: &str) -> Result<ServiceRequest, Refusal> {
    let r = match s.request(number).await {
        Ok(Some(r)) => r,
        Ok(None) => return Err(not_found(format!("service request {number:?}")).into()),
        Err(e) => return Err(fail(e).into()),
    };
    let product = match (&r.serial, c.role) {
        (Some(serial), Role::ProductAdministrator) => {
            s.product(serial).await.map_err(|e| Box::new(fail(e)))?
        }
        _ => None,
    };
    if c.sees_request(&r, product.as_ref()) {
        Ok(r)
    } else {
        Err(not_found(format!("service request {number:?}")).into())
    }
}

/// A group of the caller's account (groups are managed by account managers).
async fn visible_group(s: &Store, c: &User, id: i64) -> Result<(), Refusal> {
    need(c, Action::ManageGroups, "groups")?;
    match s.groups(c.confined_to()).await {
        Ok(g) if g.iter().any(|g| g.id == id) => Ok(()),
        Ok(_) => Err(not_found(format!("group {id}")).into()),
        Err(e) => Err(fail(e).into()),
    }
}

/// Unwraps a `Result<_, Refusal>` or returns the refusal.
macro_rules! check {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return *r,
        }
    };
}

async fn me(Extension(c): C) -> Response {
    Json(c).into_response()
}

async fn accounts(State(s): S, Extension(c): C) -> Response {
    let r = match c.confined_to() {
        None => s.accounts().await,
        Some(own) => s.account(own).await.map(|a| a.into_iter().collect()),
    };
    match r {
        Ok(a) => Json(json!({"accounts": a})).into_response(),
        Err(e) => fail(e),
    }
}

async fn account(State(s): S, Extension(c): C, Path(id): Path<String>) -> Response {
    match s.account(&id).await {
        Ok(Some(a)) if c.sees_account(&a.id) => Json(a).into_response(),
        Ok(_) => not_found(format!("account {id:?}")),
        Err(e) => fail(e),
    }
}

async fn put_account(
    State(s): S,
    Extension(c): C,
    Path(id): Path<String>,
    body: Result<Json<Account>, JsonRejection>,
) -> Response {
    check!(need(
        &c,
        Action::ManageAccounts,
        "creating or changing accounts"
    ));
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
    Extension(c): C,
    Path(id): Path<String>,
    q: Result<Query<PeriodQuery>, QueryRejection>,
) -> Response {
    check!(need(&c, Action::Billing, "the billing export"));
    if !c.sees_account(&id) {
        return not_found(format!("account {id:?}"));
    }
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

async fn products(
    State(s): S,
    Extension(c): C,
    q: Result<Query<ProductQuery>, QueryRejection>,
) -> Response {
    let mut q = take!(q, bad_query);
    q.account = check!(scoped_account(&c, q.account));
    if c.role == Role::ProductAdministrator {
        q.administrator = Some(c.id.clone());
    }
    reply(s.product_page(&q).await)
}

async fn product(State(s): S, Extension(c): C, Path(serial): Path<String>) -> Response {
    match visible_product(&s, &c, &serial).await {
        Ok(p) => Json(p).into_response(),
        Err(r) => *r,
    }
}

async fn update_product(
    State(s): S,
    Extension(c): C,
    Path(serial): Path<String>,
    body: Result<Json<ProductUpdate>, JsonRejection>,
) -> Response {
    check!(visible_product(&s, &c, &serial).await);
    let u = take!(body, bad_body);
    let refused = c.refused_fields(&u);
    if !refused.is_empty() {
        return forbidden(&c, &format!("changing {}", refused.join(", ")));
    }
    reply(s.update_product(&serial, &u).await)
}

async fn readings(
    State(s): S,
    Extension(c): C,
    Path(serial): Path<String>,
    q: Result<Query<HistoryQuery>, QueryRejection>,
) -> Response {
    let q = take!(q, bad_query);
    let p = check!(visible_product(&s, &c, &serial).await);
    match s.history(&serial, &q).await {
        Ok(r) => {
            Json(json!({"serial": serial, "latest": p.counters, "readings": r})).into_response()
        }
        Err(e) => fail(e),
    }
}

async fn manual_reading(
    State(s): S,
    Extension(c): C,
    Path(serial): Path<String>,
    body: Result<Json<ManualReading>, JsonRejection>,
) -> Response {
    check!(visible_product(&s, &c, &serial).await);
    let mut m = take!(body, bad_body);
    // Who entered it is who is calling, whatever the body says.
    m.user = Some(c.id.clone());
    match s.manual_reading(&serial, &m, crate::store::now_ms()).await {
        Ok(r) => (StatusCode::CREATED, Json(r)).into_response(),
        Err(e) => fail(e),
    }
}

#[derive(Deserialize)]
struct AccountFilter {
    account: Option<String>,
}

async fn groups(
    State(s): S,
    Extension(c): C,
    q: Result<Query<AccountFilter>, QueryRejection>,
) -> Response {
    check!(need(&c, Action::ManageGroups, "groups"));
    let q = take!(q, bad_query);
    let account = check!(scoped_account(&c, q.account));
    match s.groups(account.as_deref()).await {
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

async fn create_group(
    State(s): S,
    Extension(c): C,
    body: Result<Json<NewGroup>, JsonRejection>,
) -> Response {
    check!(need(&c, Action::ManageGroups, "groups"));
    let g = take!(body, bad_body);
    if !c.sees_account(&g.account) {
        return not_found(format!("account {:?}", g.account));
    }
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
    Extension(c): C,
    Path(id): Path<i64>,
    body: Result<Json<Rename>, JsonRejection>,
) -> Response {
    check!(visible_group(&s, &c, id).await);
    let r = take!(body, bad_body);
    reply(s.rename_group(id, &r.name).await)
}

async fn delete_group(State(s): S, Extension(c): C, Path(id): Path<i64>) -> Response {
    check!(visible_group(&s, &c, id).await);
    match s.delete_group(id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => fail(e),
    }
}

async fn add_to_group(
    State(s): S,
    Extension(c): C,
    Path((id, serial)): Path<(i64, String)>,
) -> Response {
    check!(visible_group(&s, &c, id).await);
    check!(visible_product(&s, &c, &serial).await);
    reply(s.group_member(id, &serial, true).await)
}

async fn remove_from_group(
    State(s): S,
    Extension(c): C,
    Path((id, serial)): Path<(i64, String)>,
) -> Response {
    check!(visible_group(&s, &c, id).await);
    reply(s.group_member(id, &serial, false).await)
}

async fn requests(
    State(s): S,
    Extension(c): C,
    q: Result<Query<RequestQuery>, QueryRejection>,
) -> Response {
    let mut q = take!(q, bad_query);
    if let Some(st) = &q.state {
        if st != "open" && st != "closed" {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_state",
                "state is open or closed",
            );
        }
    }
    q.account = check!(scoped_account(&c, q.account));
    if c.role == Role::ProductAdministrator {
        q.administrator = Some(c.id.clone());
    }
    match s.requests(&q).await {
        Ok(r) => Json(json!({"service_requests": r})).into_response(),
        Err(e) => fail(e),
    }
}

async fn request(State(s): S, Extension(c): C, Path(number): Path<String>) -> Response {
    match visible_request(&s, &c, &number).await {
        Ok(r) => Json(r).into_response(),
        Err(r) => *r,
    }
}

async fn create_request(
    State(s): S,
    Extension(c): C,
    body: Result<Json<NewRequest>, JsonRejection>,
) -> Response {
    let mut r = take!(body, bad_body);
    if !c.sees_account(&r.account) {
        return not_found(format!("account {:?}", r.account));
    }
    match &r.serial {
        Some(serial) => {
            check!(visible_product(&s, &c, serial).await);
        }
        None if c.role == Role::ProductAdministrator => {
            return forbidden(&c, "a request without a product (give serial)");
        }
        None => {}
    }
    // Who opened it is who is calling, whatever the body says.
    r.user = c.id.clone();
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
    Extension(c): C,
    Path(number): Path<String>,
    body: Result<Json<Close>, JsonRejection>,
) -> Response {
    check!(visible_request(&s, &c, &number).await);
    let b = take!(body, bad_body);
    reply(
        s.close_request(&number, &b.reason, &c.id, crate::store::now_ms())
            .await,
    )
}

async fn agents(State(s): S, Extension(c): C) -> Response {
    check!(need(&c, Action::SeeAgents, "agents"));
    match s.agents().await {
        Ok(mut a) => {
            if let Some(own) = c.confined_to() {
                a.retain(|a| a.account.as_deref() == Some(own));
            }
            Json(json!({"agents": a})).into_response()
        }
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
    Extension(c): C,
    Path(id): Path<String>,
    body: Result<Json<AgentUpdate>, JsonRejection>,
) -> Response {
    check!(need(&c, Action::ManageFleet, "assigning agents"));
    let u = take!(body, bad_body);
    reply(s.set_agent_account(&id, u.account.as_deref()).await)
}

async fn unassigned(State(s): S, Extension(c): C) -> Response {
    check!(need(&c, Action::ManageFleet, "unassigned devices"));
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
    Extension(c): C,
    Path(id): Path<String>,
    body: Result<Json<Article>, JsonRejection>,
) -> Response {
    check!(need(
        &c,
        Action::ManageKnowledgeBase,
        "writing knowledge-base articles"
    ));
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

async fn outbox(State(s): S, Extension(c): C) -> Response {
    check!(need(&c, Action::ManageFleet, "the outbox"));
    reply(s.outbox_counts().await)
}

async fn users(
    State(s): S,
    Extension(c): C,
    q: Result<Query<AccountFilter>, QueryRejection>,
) -> Response {
    check!(need(&c, Action::ManageUsers, "listing users"));
    let q = take!(q, bad_query);
    let account = check!(scoped_account(&c, q.account));
    match s.users(account.as_deref()).await {
        Ok(u) => Json(json!({"users": u})).into_response(),
        Err(e) => fail(e),
    }
}

/// The user `id`, when the caller may see them.
async fn visible_user(s: &Store, c: &User, id: &str) -> Result<User, Refusal> {
    match s.user(id).await {
        Ok(Some(u)) if c.sees_user(&u) => Ok(u),
        Ok(_) => Err(not_found(format!("user {id:?}")).into()),
        Err(e) => Err(fail(e).into()),
    }
}

async fn user(State(s): S, Extension(c): C, Path(id): Path<String>) -> Response {
    match visible_user(&s, &c, &id).await {
        Ok(u) => Json(u).into_response(),
        Err(r) => *r,
    }
}

async fn put_user(
    State(s): S,
    Extension(c): C,
    Path(id): Path<String>,
    body: Result<Json<User>, JsonRejection>,
) -> Response {
    check!(need(&c, Action::ManageUsers, "creating or changing users"));
    let u = take!(body, bad_body);
    if u.id != id {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "id_mismatch",
            format!("the body's id {:?} is not the path's {id:?}", u.id),
        );
    }
    if !c.may_write_user(&u) {
        return forbidden(&c, "a user of another account, or an operator");
    }
    if u.id == c.id && (u.role != c.role || u.account != c.account) {
        return self_lockout("changing your own role or account");
    }
    match s.user(&id).await {
        Ok(Some(was)) if !c.may_write_user(&was) => {
            return error(
                StatusCode::CONFLICT,
                "user_id_taken",
                format!("user id {id:?} is taken: choose another"),
            )
        }
        Ok(_) => {}
        Err(e) => return fail(e),
    }
    reply(s.put_user_within(&u, c.confined_to()).await)
}

async fn delete_user(State(s): S, Extension(c): C, Path(id): Path<String>) -> Response {
    check!(need(&c, Action::ManageUsers, "removing users"));
    let u = check!(visible_user(&s, &c, &id).await);
    if !c.may_write_user(&u) {
        return forbidden(&c, "removing this user");
    }
    if u.id == c.id {
        return self_lockout("removing yourself");
    }
    match s.delete_user(&id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => fail(e),
    }
}

/// Nobody locks themselves out: the last operator could not be replaced
/// through the API.
fn self_lockout(what: &str) -> Response {
    error(
        StatusCode::CONFLICT,
        "self_lockout",
        format!("{what}: ask another operator or account manager to do it"),
    )
}

/// A user whose tokens the caller may list, issue and revoke: themselves,
/// or a user they manage.
async fn token_owner(s: &Store, c: &User, id: &str) -> Result<User, Refusal> {
    let u = visible_user(s, c, id).await?;
    if u.id == c.id || c.may_write_user(&u) {
        Ok(u)
    } else {
        Err(forbidden(c, "tokens of another user").into())
    }
}

async fn tokens(State(s): S, Extension(c): C, Path(id): Path<String>) -> Response {
    check!(token_owner(&s, &c, &id).await);
    match s.tokens(&id).await {
        Ok(t) => Json(json!({"tokens": t})).into_response(),
        Err(e) => fail(e),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewToken {
    #[serde(default)]
    label: String,
    /// Days until it expires; without it the token lasts until revoked.
    #[serde(default)]
    expires_in_days: Option<u32>,
}

async fn issue_token(
    State(s): S,
    Extension(c): C,
    Path(id): Path<String>,
    body: Result<Json<NewToken>, JsonRejection>,
) -> Response {
    check!(token_owner(&s, &c, &id).await);
    let t = take!(body, bad_body);
    if t.label.len() > 200 {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_label",
            "a token label is at most 200 bytes",
        );
    }
    if t.expires_in_days == Some(0) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_expiry",
            "expires_in_days is at least 1; leave it out for a token that lasts until revoked",
        );
    }
    let now = crate::store::now_ms();
    let expires = t.expires_in_days.map(|d| now + i64::from(d) * 86_400_000);
    match s.issue_token(&id, &t.label, expires, now).await {
        Ok(t) => (StatusCode::CREATED, Json(t)).into_response(),
        Err(e) => fail(e),
    }
}

async fn revoke_token(
    State(s): S,
    Extension(c): C,
    Path((id, token)): Path<(String, String)>,
) -> Response {
    check!(token_owner(&s, &c, &id).await);
    match s.revoke_token(&id, &token).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => fail(e),
    }
}

/// Resolves the caller from `Authorization: Bearer <token>`; every
/// /api/v1 route runs behind it.
async fn authenticate(State(s): S, mut req: Request, next: Next) -> Response {
    let unauthenticated = |code: &str, message: &str| {
        let mut r = error(StatusCode::UNAUTHORIZED, code, message);
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"meterlink\""),
        );
        r
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_string());
    let Some(token) = given else {
        return unauthenticated(
            "unauthenticated",
            "give an API token as `Authorization: Bearer <token>` \
             (`meterlink-collector user token ID` issues one)",
        );
    };
    match s.authenticate(&token, crate::store::now_ms()).await {
        Ok(Some(u)) => {
            req.extensions_mut().insert(u);
            next.run(req).await
        }
        Ok(None) => unauthenticated(
            "invalid_token",
            "the API token is unknown, revoked or expired: ask for a new one",
        ),
        Err(e) => fail(e),
    }
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
    let v1 = Router::new()
        .route("/api/v1/me", get(me))
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
        .route("/api/v1/users", get(users))
        .route(
            "/api/v1/users/{id}",
            get(user).put(put_user).delete(delete_user),
        )
        .route("/api/v1/users/{id}/tokens", get(tokens).post(issue_token))
        .route(
            "/api/v1/users/{id}/tokens/{token}",
            axum::routing::delete(revoke_token),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            store.clone(),
            authenticate,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/api/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .merge(v1)
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
