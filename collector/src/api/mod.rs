//! REST API (axum) over either store. Errors are JSON
//! `{"error": {"code": "...", "message": "..."}}` with a stable code
//! (`error.rs`); the OpenAPI document at /api/openapi.json describes every
//! route. One module per resource, each with its own routes; every /api/v1
//! route runs behind `caller::authenticate`. The API uses only the store, the
//! access policy, the model, tokens and the billing export (invariant C4).

mod accounts;
mod audit;
mod caller;
mod contracts;
mod enrollment;
mod error;
mod fleet;
mod groups;
mod kb;
mod nul;
mod organisations;
mod people;
mod products;
mod profile;
mod requests;
mod sessions;
mod users;
mod web;

use crate::metrics::{ApiLabels, Metrics, RouteLabel};
use crate::store::Store;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use error::ApiError;
use serde::Deserialize;
use std::sync::Arc;

pub use crate::auth::password::Sessions;
pub use enrollment::Joining;
pub use kb::Knowledge;
pub use sessions::Mail;

/// What the API is configured with.
#[derive(Clone, Debug)]
pub struct Settings {
    pub joining: Joining,
    pub sessions: Sessions,
    pub mail: Mail,
    pub knowledge: Knowledge,
}

impl Default for Settings {
    /// No enrollment (no CA to pin), the default session lifetimes.
    fn default() -> Self {
        Settings {
            joining: Joining {
                pin_sha256: None,
                token_ttl_ms: 86_400_000,
            },
            sessions: Sessions::default(),
            mail: Mail::default(),
            knowledge: Knowledge::default(),
        }
    }
}

/// The OpenAPI 3.1 document of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

type S = State<Arc<Store>>;
type Routes = Router<Arc<Store>>;

/// `?account=` on the lists that take it.
#[derive(Deserialize)]
struct AccountFilter {
    account: Option<String>,
}

/// Whether a path is for programs (the API's JSON, the metrics); the rest
/// are people's pages, which answer with a page in their language.
fn for_programs(path: &str) -> bool {
    path.starts_with("/api/") || path == "/metrics"
}

/// Extractor refusals that axum writes as plain text (a path segment that
/// is not a number, bad percent-encoding, a form without a field) become
/// JSON errors like the rest of the API's, or a page for a person's browser.
async fn readable_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let page_language = (!for_programs(req.uri().path()))
        .then(|| req.headers().get(header::ACCEPT_LANGUAGE).cloned());
    let r = next.run(req).await;
    let plain = r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if !(r.status().is_client_error() && plain) {
        return r;
    }
    let status = r.status();
    if let Some(language) = page_language {
        let mut headers = axum::http::HeaderMap::new();
        if let Some(l) = language {
            headers.insert(header::ACCEPT_LANGUAGE, l);
        }
        return web::request_not_understood(&headers, status);
    }
    let text = axum::body::to_bytes(r.into_body(), 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).to_string())
        .unwrap_or_default();
    ApiError::new(status, "invalid_request", text).into_response()
}

/// Ready when the store answers with the schema this collector knows; a
/// load balancer sends nothing to a replica that is not.
async fn readyz(State(s): S) -> Result<&'static str, ApiError> {
    s.ready().await?;
    Ok("ready")
}

/// `/metrics`: the counters as they are, and what is read when scraped
/// (the outbox, the store's pool).
async fn metrics(
    State(s): S,
    Extension(m): Extension<Arc<Metrics>>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let outbox = s.outbox_counts().await?;
    m.outbox_pending.set(outbox.pending as i64);
    m.outbox_dead.set(outbox.dead as i64);
    let email = s.email_counts().await?;
    m.email_pending.set(email.pending as i64);
    m.email_dead.set(email.dead as i64);
    let (size, idle) = s.pool_stats();
    m.store_connections.set(i64::from(size));
    m.store_connections_idle.set(idle as i64);
    m.runtime_tasks.set(
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks() as i64,
    );
    let text = m.render();
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    Ok(if openmetrics {
        ([(header::CONTENT_TYPE, crate::metrics::OPENMETRICS)], text).into_response()
    } else {
        (
            [(header::CONTENT_TYPE, crate::metrics::PROMETHEUS_TEXT)],
            crate::metrics::to_prometheus_text(&text),
        )
            .into_response()
    })
}

/// Counts every request by route pattern, method and status, and times it.
async fn track(
    State(m): State<Arc<Metrics>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let started = std::time::Instant::now();
    let r = next.run(req).await;
    m.api_request_seconds
        .get_or_create(&RouteLabel {
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    m.api_requests
        .get_or_create(&ApiLabels {
            route,
            method,
            status: r.status().as_u16(),
        })
        .inc();
    r
}

pub fn router(store: Arc<Store>, metrics: Arc<Metrics>, settings: Settings) -> Router {
    let v1 = Routes::new()
        .merge(accounts::routes())
        .merge(products::routes())
        .merge(groups::routes())
        .merge(requests::routes())
        .merge(fleet::routes())
        .merge(kb::routes())
        .merge(users::routes())
        .merge(enrollment::routes())
        .merge(sessions::routes())
        .merge(audit::routes())
        .merge(contracts::routes())
        .merge(organisations::routes())
        .merge(people::routes())
        .merge(profile::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            store.clone(),
            caller::authenticate,
        ))
        .merge(sessions::public_routes())
        .merge(people::public_routes())
        .merge(web::routes());
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(self::metrics))
        .route(
            "/api/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .merge(v1)
        .fallback(
            |uri: axum::http::Uri, headers: axum::http::HeaderMap| async move {
                if for_programs(uri.path()) {
                    ApiError::new(
                        StatusCode::NOT_FOUND,
                        "not_found",
                        "no such endpoint; see /api/openapi.json",
                    )
                    .into_response()
                } else {
                    web::not_found(&headers)
                }
            },
        )
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method; see /api/openapi.json",
            )
        })
        .layer(axum::middleware::from_fn(nul::refuse_nul))
        .layer(axum::middleware::from_fn(readable_errors))
        .layer(axum::middleware::from_fn_with_state(metrics.clone(), track))
        .layer(Extension(metrics))
        .layer(Extension(settings.joining))
        .layer(Extension(settings.sessions))
        .layer(Extension(settings.mail))
        .layer(Extension(settings.knowledge))
        .with_state(store)
}

/// Serves the API on `listener` until the task is dropped (without
/// enrollment: no CA here to pin).
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
) -> std::io::Result<()> {
    let app = router(store, metrics, Settings::default());
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .await
}
