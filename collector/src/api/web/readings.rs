//! A product's meter readings on its page: a counter's history as a chart
//! (an SVG image made on the server) with its pages per month, and the
//! form that enters a reading by hand (products without eMaintenance).

use super::chart::{self, Point};
use super::i18n;
use super::products::{render, visible};
use super::{who, Who};
use crate::api::audit::{record, Change};
use crate::api::caller::Caller;
use crate::api::S;
use crate::auth::password::Sessions;
use crate::model::{url_part, HistoryQuery, ManualReading, Product};
use crate::store::{Store, StoreError};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

/// What a readings form sent back shows: the problem and what was typed.
pub(super) struct Entry {
    pub error: String,
    pub value: String,
}

/// The readings part of a product's page.
pub(super) struct Section {
    /// The product's counters, the chosen one first.
    pub counters: Vec<String>,
    pub counter: String,
    pub chart_url: String,
    /// Whether billing reads are marked (the caption says how).
    pub billing: bool,
    pub chart_alt: String,
    pub months: Vec<(String, u64)>,
    pub entry_error: Option<String>,
    pub entry_value: String,
}

/// The counter to show: the one asked if the product has it, else the
/// total (canon.101), else the first.
fn chosen(p: &Product, asked: Option<String>) -> String {
    asked
        .filter(|c| p.counters.contains_key(c))
        .or_else(|| {
            p.counters
                .contains_key("canon.101")
                .then(|| "canon.101".into())
        })
        .or_else(|| p.counters.keys().next().cloned())
        .unwrap_or_else(|| "canon.101".into())
}

async fn points(s: &Store, p: &Product, counter: &str) -> Result<Vec<Point>, StoreError> {
    let serial = p.serial.as_str();
    let h = s
        .history(
            serial,
            &HistoryQuery {
                counter: Some(counter.to_string()),
                limit: Some(5_000),
                ..HistoryQuery::default()
            },
        )
        .await?;
    let mut pts: Vec<Point> = h
        .iter()
        .filter(|r| r.counter == counter && r.state == "filed")
        .map(|r| Point {
            at_ms: r.taken_at_ms,
            value: r.value,
            manual: r.source == "manual",
            billing: false,
        })
        .collect();
    pts.sort_by_key(|p| p.at_ms);
    if let (Some(day), Some(account)) = (p.billing_day, &p.account) {
        let tz = match s.account(account).await? {
            Some(a) => a.time_zone.parse().unwrap_or(chrono_tz::UTC),
            None => chrono_tz::UTC,
        };
        chart::mark_billing(&mut pts, day, tz);
    }
    Ok(pts)
}

pub(super) async fn section(
    s: &Store,
    p: &Product,
    asked: Option<String>,
    entry: Option<Entry>,
) -> Result<Section, StoreError> {
    let counter = chosen(p, asked);
    let pts = points(s, p, &counter).await?;
    let mut counters: Vec<String> = p.counters.keys().cloned().collect();
    counters.sort_by_key(|c| c != &counter);
    let (entry_error, entry_value) = match entry {
        Some(e) => (Some(e.error), e.value),
        None => (None, String::new()),
    };
    Ok(Section {
        billing: pts.iter().any(|p| p.billing),
        chart_url: format!(
            "/products/{}/chart.svg?counter={}",
            url_part(&p.serial),
            url_part(&counter)
        ),
        chart_alt: match (pts.first(), pts.last()) {
            (Some(a), Some(b)) => format!(
                "{counter}: {} → {}, {} → {}",
                super::when(a.at_ms),
                super::when(b.at_ms),
                a.value,
                b.value
            ),
            _ => counter.clone(),
        },
        months: chart::per_month(&pts, 12),
        counters,
        counter,
        entry_error,
        entry_value,
    })
}

#[derive(Deserialize)]
pub(super) struct ChartQuery {
    counter: Option<String>,
    /// The image's width in pixels (a phone's page asks for a narrow one).
    w: Option<u32>,
}

/// The chart image of a counter of a product the person sees.
pub(super) async fn chart_svg(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    Path(serial): Path<String>,
    Query(q): Query<ChartQuery>,
) -> Response {
    let Some(w) = who(&s, &cfg, &headers).await else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let (_, p) = match visible(&s, w, &serial).await {
        Ok(v) => v,
        Err(_) => return StatusCode::NOT_FOUND.into_response(),
    };
    let counter = chosen(&p, q.counter);
    let pts = match points(&s, &p, &counter).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "a chart's readings could not be read");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    match chart::svg(&pts, &counter, q.w.unwrap_or(chart::WIDTH)) {
        Some(svg) => (
            [
                (header::CONTENT_TYPE, "image/svg+xml"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            svg,
        )
            .into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

#[derive(Deserialize)]
pub(super) struct EntryForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    counter: String,
    #[serde(default)]
    value: String,
}

/// A reading entered by hand: back to the product's chart when filed, the
/// form again with the reason when not.
pub(super) async fn enter(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    Extension(k): Extension<crate::api::Knowledge>,
    headers: HeaderMap,
    Path(serial): Path<String>,
    Form(f): Form<EntryForm>,
) -> Response {
    let Some(w) = who(&s, &cfg, &headers).await else {
        return Redirect::to("/login?why=expired").into_response();
    };
    let t = i18n::texts(&w.user.language);
    let back = |w: Who, error: String| {
        let s = &s;
        let serial = &serial;
        let counter = f.counter.clone();
        let value = f.value.clone();
        let more = super::products::More {
            download_url: k.download_url.as_deref(),
            notice: None,
        };
        async move {
            render(
                s,
                w,
                serial,
                Some(counter),
                Some(Entry { error, value }),
                more,
            )
            .await
        }
    };
    if !super::same_origin(&headers) || !crate::token::same_hash(&f.csrf, &w.csrf) {
        return back(w, t.get("csrf-failed")).await;
    }
    let Ok(value) = f
        .value
        .trim()
        .replace(['.', ' ', '\u{a0}'], "")
        .parse::<u64>()
    else {
        return back(w, t.get("reading-not-a-number")).await;
    };
    let m = ManualReading {
        counter: f.counter.trim().to_string(),
        value,
        taken_at_ms: None,
        user: Some(w.user.id.clone()),
    };
    let r = match s.manual_reading(&serial, &m, crate::store::now_ms()).await {
        Ok(r) => r,
        Err(e) => {
            let key = match crate::api::error::ApiError::from(e).code() {
                "emaintenance_product" => "reading-emaintenance",
                "implausible_reading" => "reading-implausible",
                "invalid_reading" => "reading-invalid",
                _ => "reading-failed",
            };
            return back(w, t.get(key)).await;
        }
    };
    let caller = Caller(w.user.clone(), "person");
    let account = s
        .product(&serial)
        .await
        .ok()
        .flatten()
        .and_then(|p| p.account);
    let what = Change::new("product", &serial, "reading_entered", account.as_deref());
    if let Err(e) = record::<(), _>(&s, &caller, what, None, Some(&r)).await {
        tracing::error!(
            code = e.code(),
            "a manual reading's audit entry was not written"
        );
    }
    Redirect::to(&format!(
        "/products/{}?counter={}#readings",
        url_part(&serial),
        url_part(&m.counter)
    ))
    .into_response()
}
