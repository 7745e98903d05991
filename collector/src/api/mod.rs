//! REST API (read side). Errors are JSON with a stable code.

use crate::store::SqliteStore;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

fn error(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "API request failed");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the store failed; see the collector log".into(),
    )
}

async fn products(State(s): State<Arc<SqliteStore>>) -> Response {
    match s.products().await {
        Ok(p) => Json(json!({"products": p})).into_response(),
        Err(e) => internal(e),
    }
}

async fn product(State(s): State<Arc<SqliteStore>>, Path(serial): Path<String>) -> Response {
    match s.product(&serial).await {
        Ok(Some(p)) => Json(p).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "product_not_found",
            format!("no product with serial {serial:?}"),
        ),
        Err(e) => internal(e),
    }
}

async fn readings(State(s): State<Arc<SqliteStore>>, Path(serial): Path<String>) -> Response {
    match s.product(&serial).await {
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                "product_not_found",
                format!("no product with serial {serial:?}"),
            )
        }
        Err(e) => return internal(e),
        Ok(Some(_)) => {}
    }
    match s.readings(&serial).await {
        Ok(r) => Json(json!({"serial": serial, "readings": r})).into_response(),
        Err(e) => internal(e),
    }
}

pub fn router(store: Arc<SqliteStore>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/v1/products", get(products))
        .route("/api/v1/products/{serial}", get(product))
        .route("/api/v1/products/{serial}/readings", get(readings))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint".into(),
            )
        })
        .with_state(store)
}
