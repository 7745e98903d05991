//! The products pages: the list (search by serial, alternative name or
//! model; a company; paged) and a product's page (its details, current
//! counters, configuration, open requests, knowledge centre).

use super::form::unavailable;
use super::i18n::{self, Texts};
use super::readings;
use super::{error_page, html, when, who, Who};
use crate::api::{Knowledge, S};
use crate::auth::password::Sessions;
use crate::model::{url_part, Product, ProductQuery, RequestQuery, Role};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use serde::Deserialize;

const PAGE: u32 = 25;

#[derive(Deserialize)]
pub(super) struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    company: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    status: String,
    after: Option<String>,
}

struct Row {
    serial: String,
    alt_name: String,
    model: String,
    location: String,
    company: String,
}

#[derive(Template)]
#[template(path = "products.html")]
struct ListPage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    q: String,
    company: String,
    companies: Vec<String>,
    group: String,
    groups: Vec<String>,
    /// More than one company's products may be listed.
    show_company: bool,
    status: String,
    statuses: Vec<(&'static str, String)>,
    rows: Vec<Row>,
    next: Option<String>,
}

fn location(p: &Product) -> String {
    [p.site_address.as_deref(), p.location.as_deref()]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

fn next_link(lq: &ListQuery, after: &str) -> String {
    format!(
        "/products?q={}&company={}&group={}&status={}&after={}",
        url_part(&lq.q),
        url_part(&lq.company),
        url_part(&lq.group),
        url_part(&lq.status),
        url_part(after)
    )
}

pub(super) async fn list(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    Query(lq): Query<ListQuery>,
) -> Response {
    let Some(w) = who(&s, &cfg, &headers).await else {
        return Redirect::to("/login").into_response();
    };
    let t = i18n::texts(&w.user.language);
    let companies: Vec<String> = match w.user.confined_to() {
        Some(c) => c.to_vec(),
        None => Vec::new(),
    };
    let company = lq.company.trim().to_string();
    let accounts = match (w.user.confined_to(), company.is_empty()) {
        (_, false) if w.user.role == Role::Operator || companies.contains(&company) => {
            Some(vec![company.clone()])
        }
        (Some(own), _) => Some(own.to_vec()),
        (None, _) => None,
    };
    let group = lq.group.trim().to_string();
    let status = Some(lq.status.clone())
        .filter(|st| crate::api::products::PRODUCT_STATUSES.contains(&st.as_str()));
    // The groups to filter by: those the person may see (none for an
    // operator, who sees every company's).
    let groups: Vec<String> = if w.user.role == Role::Operator {
        Vec::new()
    } else {
        crate::api::groups::list(&s, &super::form::caller(&w), None)
            .await
            .map(|g| g.into_iter().map(|g| g.name).collect())
            .unwrap_or_default()
    };
    let q = ProductQuery {
        q: Some(lq.q.trim().to_string()).filter(|q| !q.is_empty()),
        group: Some(group.clone()).filter(|g| groups.contains(g)),
        status: status.clone(),
        accounts,
        administrator: (w.user.role == Role::ProductAdministrator).then(|| w.user.id.clone()),
        after: lq.after.clone(),
        limit: Some(PAGE),
        ..ProductQuery::default()
    };
    let found = match s.product_page(&q).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "the product list could not be read");
            return unavailable(t, w);
        }
    };
    let rows = found
        .items
        .iter()
        .map(|p| Row {
            serial: p.serial.clone(),
            alt_name: p.alt_name.clone().unwrap_or_default(),
            model: p.model.clone().unwrap_or_default(),
            location: location(p),
            company: p.account.clone().unwrap_or_default(),
        })
        .collect();
    let next = found.next.as_deref().map(|after| next_link(&lq, after));
    html(ListPage {
        t,
        who: Some(w),
        page: "products",
        statuses: crate::api::products::PRODUCT_STATUSES
            .iter()
            .map(|st| (*st, t.get(&format!("products-status-{st}"))))
            .collect(),
        status: status.unwrap_or_default(),
        show_company: companies.len() != 1,
        q: lq.q,
        company,
        companies,
        group,
        groups,
        rows,
        next,
    })
}

struct RequestRow {
    number: String,
    title: String,
    status: String,
    opened: String,
}

struct SupplyRow {
    name: String,
    /// 0-100 for the meter; None: the device gives no amount.
    percent: Option<u32>,
    /// What the level reads as: "42 %", or the device's state.
    text: String,
    low: bool,
}

struct PartRow {
    name: String,
    detail: String,
    level: String,
}

struct Category {
    title: String,
    total: i64,
    articles: Vec<(String, String)>,
    /// The knowledge centre's search for the rest ("view more").
    more: String,
    has_more: bool,
}

#[derive(Template)]
#[template(path = "product.html")]
struct ProductPage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    p: Product,
    location: String,
    administrators: String,
    counters: Vec<(String, u64)>,
    requests: Vec<RequestRow>,
    trays: Vec<PartRow>,
    bins: Vec<PartRow>,
    duplex: bool,
    seen: String,
    categories: Vec<Category>,
    supplies: Vec<SupplyRow>,
    supplies_seen: String,
    /// The product's entitlements as (what, terms).
    entitlements: Vec<(String, String)>,
    download: Option<String>,
    may_invite: bool,
    notice: Option<String>,
    history: readings::Section,
}

/// A product's entitlements in words: the typed terms (response time
/// within the coverage hours, on site or remote) and the free-form ones.
fn entitlement_rows(t: &Texts, p: &Product) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    if let Some(e) = &p.terms {
        let days: Vec<String> = e
            .coverage
            .days
            .iter()
            .map(|d| t.get(&format!("day-{d}")))
            .collect();
        rows.push((
            t.get("entitlement-response"),
            t.with(
                "entitlement-response-hours",
                &[("hours", &e.response_hours.to_string())],
            ),
        ));
        rows.push((
            t.get("entitlement-coverage"),
            format!(
                "{}, {}–{} ({})",
                days.join(" "),
                e.coverage.from,
                e.coverage.to,
                e.coverage.time_zone
            ),
        ));
        let service = format!("entitlement-service-{}", e.service);
        rows.push((
            t.get("entitlement-service"),
            match t.get(&service) {
                said if said == service => e.service.clone(),
                said => said,
            },
        ));
    }
    for (k, v) in &p.entitlements {
        rows.push((k.replace('_', " "), v.clone()));
    }
    rows
}

/// A level as people read it: sheets of capacity, or what the device says.
fn level(t: &Texts, level: Option<i64>, capacity: Option<i64>) -> String {
    match (level, capacity) {
        (Some(-3), _) => t.get("level-some"),
        (Some(l), Some(c)) if l >= 0 && c > 0 => format!("{l} / {c}"),
        (Some(l), None) if l >= 0 => l.to_string(),
        _ => t.get("level-unknown"),
    }
}

#[derive(Deserialize)]
pub(super) struct PageQuery {
    counter: Option<String>,
    done: Option<String>,
}

pub(super) async fn page(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    Extension(k): Extension<Knowledge>,
    headers: HeaderMap,
    Path(serial): Path<String>,
    Query(pq): Query<PageQuery>,
) -> Response {
    let Some(w) = who(&s, &cfg, &headers).await else {
        return Redirect::to("/login").into_response();
    };
    let n = super::form::notice(i18n::texts(&w.user.language), pq.done.as_deref());
    let more = More {
        download_url: k.download_url.as_deref(),
        notice: n,
    };
    render(&s, w, &serial, pq.counter, None, more).await
}

/// What a product's page shows besides the product: the download centre's
/// address template and a notice after a change.
#[derive(Default)]
pub(super) struct More<'a> {
    pub download_url: Option<&'a str>,
    pub notice: Option<String>,
}

/// The product `serial` for `w`, or the error page that says why not.
pub(super) async fn visible(
    s: &crate::store::Store,
    w: Who,
    serial: &str,
) -> Result<(Who, Product), Response> {
    let t = i18n::texts(&w.user.language);
    match s.product(serial).await {
        Ok(Some(p)) if w.user.sees_product(&p) => Ok((w, p)),
        Ok(_) => Err(error_page(
            t,
            Some(w),
            StatusCode::NOT_FOUND,
            "not-found-title",
            "product-not-found",
        )),
        Err(e) => {
            tracing::error!(error = %e, "a product page could not be read");
            Err(unavailable(t, w))
        }
    }
}

/// A product's page; `entry` is a readings form sent back with what went
/// wrong and what was typed.
pub(super) async fn render(
    s: &crate::store::Store,
    w: Who,
    serial: &str,
    counter: Option<String>,
    entry: Option<readings::Entry>,
    more: More<'_>,
) -> Response {
    let notice = more.notice;
    let t = i18n::texts(&w.user.language);
    let (w, p) = match visible(s, w, serial).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let langs = vec![w.user.language.clone(), "en".to_string()];
    let open = RequestQuery {
        serial: Some(p.serial.clone()),
        state: Some("open".into()),
        limit: Some(20),
        ..RequestQuery::default()
    };
    // The person sees this product, so its model's articles and the
    // general ones are theirs to read (no need to work out every model
    // the person sees).
    let (history, requests, configuration, knowledge, supplies) = tokio::join!(
        readings::section(s, &p, counter, entry),
        s.requests(&open),
        s.product_configuration(&p.serial),
        s.article_categories(p.model.as_deref(), &langs, 3),
        s.product_supplies(&p.serial),
    );
    let (Ok(history), Ok(requests), Ok(configuration), Ok((articles, counts)), Ok(supplies)) =
        (history, requests, configuration, knowledge, supplies)
    else {
        tracing::error!("a product's page could not be read");
        return unavailable(t, w);
    };
    let mut categories = Vec::new();
    for kind in crate::model::ARTICLE_KINDS {
        let first: Vec<(String, String)> = articles
            .iter()
            .filter(|a| a.kind == kind)
            .map(|a| (a.id.clone(), a.title.clone()))
            .collect();
        let mut more = format!("/knowledge?kind={kind}");
        if let Some(m) = &p.model {
            more.push_str(&format!("&model={}", url_part(m)));
        }
        if t.lang != "en" {
            more.push_str(&format!("&lang={}", t.lang));
        }
        let total = counts.get(kind).copied().unwrap_or(0);
        categories.push(Category {
            title: t.get(&format!("kb-{kind}")),
            total,
            has_more: total > first.len() as i64,
            articles: first,
            more,
        });
    }
    let part = |c: &crate::model::Component| PartRow {
        name: c.label().to_string(),
        detail: c.media.clone(),
        level: level(t, c.level, c.capacity),
    };
    let trays = configuration
        .components
        .iter()
        .filter(|c| c.kind == "input")
        .map(part)
        .collect();
    let bins = configuration
        .components
        .iter()
        .filter(|c| c.kind == "output")
        .map(part)
        .collect();
    let administrators = p.administrators.join(", ");
    let download = match (more.download_url, &p.model) {
        (Some(template), Some(model)) => Some(crate::model::download_url(template, model)),
        _ => None,
    };
    let supply_rows = supplies
        .supplies
        .iter()
        .map(|x| SupplyRow {
            name: x.description.clone(),
            percent: x.percent,
            text: match x.percent {
                Some(pc) => format!("{pc} %"),
                None => {
                    let id = format!("supply-{}", x.state);
                    match t.get(&id) {
                        said if said == id => x.state.clone(),
                        said => said,
                    }
                }
            },
            low: x.state == "low" || x.state == "empty" || x.percent.is_some_and(|pc| pc <= 10),
        })
        .collect();
    let supplies_seen = supplies
        .seen_at_ms
        .map(|at| t.with("product-config-seen", &[("when", &when(at))]))
        .unwrap_or_default();
    let entitlements = entitlement_rows(t, &p);
    html(ProductPage {
        t,
        page: "products",
        entitlements,
        supplies: supply_rows,
        supplies_seen,
        download,
        may_invite: w.manages_users(),
        notice,
        location: location(&p),
        administrators,
        counters: p.counters.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        requests: requests
            .iter()
            .map(|r| RequestRow {
                number: r.number.clone(),
                title: r.title.clone(),
                status: t.get(&format!("status-{}", r.status)),
                opened: when(r.opened_at_ms),
            })
            .collect(),
        trays,
        bins,
        duplex: configuration.duplex,
        seen: t.with(
            "product-config-seen",
            &[(
                "when",
                &configuration.seen_at_ms.map(when).unwrap_or_default(),
            )],
        ),
        categories,
        history,
        who: Some(w),
        p,
    })
}
