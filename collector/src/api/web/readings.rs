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
use crate::model::{url_part, ManualReading, Product};
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
    /// Whether the counter has filed readings (else no chart).
    pub has_history: bool,
    /// Whether the counter has a single reading so far (no pages to count
    /// between two yet).
    pub one_reading: bool,
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

/// Months the pages-per-month table goes back.
const MONTHS: usize = 12;

/// The counter's first and last filed readings.
async fn ends(
    s: &Store,
    serial: &str,
    counter: &str,
) -> Result<Option<((i64, u64), (i64, u64))>, StoreError> {
    let first = s.readings_from(serial, counter, &[i64::MIN]).await?;
    let last = s.readings_before(serial, counter, &[i64::MAX]).await?;
    Ok(match (first.first(), last.first()) {
        (Some(Some(a)), Some(Some(b))) => Some((*a, *b)),
        _ => None,
    })
}

/// What the chart draws: the history in buckets (manual readings marked)
/// and the billing reads, when the product has a billing day.
async fn drawn(
    s: &Store,
    p: &Product,
    counter: &str,
    width: u32,
) -> Result<(Vec<Point>, Vec<(i64, u64)>), StoreError> {
    let Some(((t0, _), (t1, _))) = ends(s, &p.serial, counter).await? else {
        return Ok((Vec::new(), Vec::new()));
    };
    let series = s
        .counter_series(&p.serial, counter, t0, t1, chart::buckets(width))
        .await?;
    let points = series
        .iter()
        .map(|x| Point {
            at_ms: x.at_ms,
            value: x.value,
            manual: x.manual,
        })
        .collect();
    let billing = match (p.billing_day, &p.account) {
        (Some(day), Some(account)) => {
            let tz = match s.account(account).await? {
                Some(a) => a.time_zone.parse().unwrap_or(chrono_tz::UTC),
                None => chrono_tz::UTC,
            };
            let periods = chart::billing_periods(t0, t1, day, tz);
            let cutoffs: Vec<i64> = periods.iter().map(|(c, _)| *c).collect();
            let firsts = s.readings_from(&p.serial, counter, &cutoffs).await?;
            chart::billing_reads(&periods, &firsts)
        }
        _ => Vec::new(),
    };
    Ok((points, billing))
}

pub(super) async fn section(
    s: &Store,
    p: &Product,
    asked: Option<String>,
    entry: Option<Entry>,
) -> Result<Section, StoreError> {
    let counter = chosen(p, asked);
    // A few index seeks, not the history: the ends for the chart's text,
    // the readings at month bounds for pages per month.
    let bounds = chart::month_bounds(crate::store::now_ms(), MONTHS);
    let mut before_at = bounds.clone();
    before_at.push(i64::MAX);
    let mut from_at = bounds.clone();
    from_at.push(i64::MIN);
    let (before, from) = tokio::try_join!(
        s.readings_before(&p.serial, &counter, &before_at),
        s.readings_from(&p.serial, &counter, &from_at)
    )?;
    let ends = match (from.last(), before.last()) {
        (Some(Some(a)), Some(Some(b))) => Some((*a, *b)),
        _ => None,
    };
    let months = chart::per_month(&bounds, &before[..bounds.len()], &from[..bounds.len()]);
    let mut counters: Vec<String> = p.counters.keys().cloned().collect();
    counters.sort_by_key(|c| c != &counter);
    let (entry_error, entry_value) = match entry {
        Some(e) => (Some(e.error), e.value),
        None => (None, String::new()),
    };
    Ok(Section {
        billing: p.billing_day.is_some() && ends.is_some(),
        chart_url: format!(
            "/products/{}/chart.svg?counter={}",
            url_part(&p.serial),
            url_part(&counter)
        ),
        chart_alt: match ends {
            Some(((t0, v0), (t1, v1))) => format!(
                "{counter}: {} → {}, {v0} → {v1}",
                super::when(t0),
                super::when(t1),
            ),
            None => counter.clone(),
        },
        has_history: ends.is_some(),
        one_reading: matches!(ends, Some(((t0, _), (t1, _))) if t0 == t1),
        months,
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
    Extension(cache): Extension<super::chart_cache::ChartCache>,
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
    let width =
        q.w.unwrap_or(chart::WIDTH)
            .clamp(chart::PHONE_WIDTH, chart::WIDEST);
    let version = (p.last_seen_ms, p.counters.get(&counter).copied());
    let svg = match cache.get(&p.serial, &counter, width, version) {
        Some(svg) => svg,
        None => {
            let (pts, billing) = match drawn(&s, &p, &counter, width).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "a chart's readings could not be read");
                    return StatusCode::SERVICE_UNAVAILABLE.into_response();
                }
            };
            let Some(svg) = chart::svg(&pts, &billing, &counter, width) else {
                return StatusCode::NO_CONTENT.into_response();
            };
            let svg = std::sync::Arc::new(svg);
            cache.put(&p.serial, &counter, width, version, svg.clone());
            svg
        }
    };
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        svg.as_str().to_string(),
    )
        .into_response()
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
