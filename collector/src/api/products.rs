//! Products and their readings (history, manual entry).

use super::audit::{record, Change};
use super::caller::Caller;
use super::error::{ApiError, ApiResult};
use super::{Routes, S};
use crate::model::{
    HistoryQuery, ManualReading, Page, Product, ProductQuery, ProductUpdate, Reading, Role,
};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Json;
use serde_json::{json, Value};

pub(super) fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/products", get(products))
        .route(
            "/api/v1/products/{serial}",
            get(product).patch(update_product),
        )
        .route(
            "/api/v1/products/{serial}/readings",
            get(readings).post(manual_reading),
        )
        .route("/api/v1/products/{serial}/events", get(events))
        .route(
            "/api/v1/products/{serial}/configuration",
            get(configuration),
        )
        .route("/api/v1/products/{serial}/supplies", get(supplies))
}

/// The product list's `status` filters.
pub(super) const PRODUCT_STATUSES: [&str; 3] = ["open_requests", "emaintenance", "manual"];

async fn products(
    State(s): S,
    c: Caller,
    q: Result<Query<ProductQuery>, QueryRejection>,
) -> ApiResult<Json<Page<Product>>> {
    let mut q = q?.0;
    if let Some(st) = q.status.as_deref() {
        if !PRODUCT_STATUSES.contains(&st) {
            return Err(ApiError::bad_request(
                "invalid_status",
                format!("status is one of {}", PRODUCT_STATUSES.join(", ")),
            ));
        }
    }
    q.accounts = c.scoped_accounts(q.account.take())?;
    if c.role == Role::ProductAdministrator {
        q.administrator = Some(c.id.clone());
    }
    Ok(Json(s.product_page(&q).await?))
}

async fn product(State(s): S, c: Caller, Path(serial): Path<String>) -> ApiResult<Json<Product>> {
    Ok(Json(c.product(&s, &serial).await?))
}

pub(super) async fn update_product(
    State(s): S,
    c: Caller,
    Path(serial): Path<String>,
    body: Result<Json<ProductUpdate>, JsonRejection>,
) -> ApiResult<Json<Product>> {
    let before = c.product(&s, &serial).await?;
    let u = body?.0;
    let refused = c.refused_fields(&u);
    if !refused.is_empty() {
        return Err(ApiError::forbidden(
            &c,
            &format!("changing {}", refused.join(", ")),
        ));
    }
    let after = s.update_product(&serial, &u).await?;
    let what = Change::new("product", &serial, "updated", after.account.as_deref());
    record(&s, &c, what, Some(&before), Some(&after)).await?;
    Ok(Json(after))
}

async fn readings(
    State(s): S,
    c: Caller,
    Path(serial): Path<String>,
    q: Result<Query<HistoryQuery>, QueryRejection>,
) -> ApiResult<Json<ReadingsAnswer>> {
    let q = q?.0;
    let p = c.product_latest(&s, &serial).await?;
    let readings = s.history(&serial, &q).await?;
    Ok(Json(ReadingsAnswer {
        serial,
        latest: p.counters,
        readings,
    }))
}

/// Serialised as it is: no JSON tree built first.
#[derive(serde::Serialize)]
struct ReadingsAnswer {
    serial: String,
    latest: std::collections::BTreeMap<String, u64>,
    readings: Vec<Reading>,
}

async fn manual_reading(
    State(s): S,
    c: Caller,
    Path(serial): Path<String>,
    body: Result<Json<ManualReading>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Reading>)> {
    let p = c.product(&s, &serial).await?;
    let mut m = body?.0;
    // Who entered it is who is calling, whatever the body says.
    m.user = Some(c.id.clone());
    let r = s
        .manual_reading(&serial, &m, crate::store::now_ms())
        .await?;
    let what = Change::new("product", &serial, "reading_entered", p.account.as_deref());
    record::<(), _>(&s, &c, what, None, Some(&r)).await?;
    Ok((StatusCode::CREATED, Json(r)))
}

async fn events(State(s): S, c: Caller, Path(serial): Path<String>) -> ApiResult<Json<Value>> {
    c.product(&s, &serial).await?;
    let e = s.product_events(&serial).await?;
    Ok(Json(json!({"serial": serial, "events": e})))
}

/// Trays, bins, media paths and devices as the agent last read them.
async fn configuration(
    State(s): S,
    c: Caller,
    Path(serial): Path<String>,
) -> ApiResult<Json<crate::model::ProductConfiguration>> {
    c.product(&s, &serial).await?;
    Ok(Json(s.product_configuration(&serial).await?))
}

/// A product's supplies and their levels as the agent last read them.
async fn supplies(
    State(s): S,
    c: Caller,
    Path(serial): Path<String>,
) -> ApiResult<Json<crate::model::ProductSupplies>> {
    c.product(&s, &serial).await?;
    Ok(Json(s.product_supplies(&serial).await?))
}
