//! The Customers page: the companies of the person's organisation with
//! their billing and service customer codes; a company's page with its
//! contract lines, products and open requests.

use super::form::{caller, person, unavailable};
use super::i18n::{self, Texts};
use super::{error_page, html, when, Who};
use crate::api::S;
use crate::auth::password::Sessions;
use crate::model::{Account, ContractLine, ProductQuery, RequestQuery, Role};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;

#[derive(Template)]
#[template(path = "customers.html")]
struct ListPage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    companies: Vec<Account>,
}

pub(super) async fn list(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
) -> Response {
    let w = match person(&s, &cfg, &headers, false).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let t = i18n::texts(&w.user.language);
    let mut companies = match s.accounts().await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "the companies could not be read");
            return unavailable(t, w);
        }
    };
    companies.retain(|a| w.user.sees_account(&a.id));
    html(ListPage {
        t,
        who: Some(w),
        page: "customers",
        companies,
    })
}

struct Line {
    contract: String,
    item: String,
    covers: String,
    kind: String,
    period: String,
}

#[derive(Template)]
#[template(path = "customer.html")]
struct CompanyPage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    a: Account,
    lines: Vec<Line>,
    products: Vec<(String, String)>,
    more_products: bool,
    requests: Vec<(String, String, String)>,
}

const SHOWN: u32 = 25;

pub(super) async fn page(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let w = match person(&s, &cfg, &headers, false).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let t = i18n::texts(&w.user.language);
    let a = match s.account(&id).await {
        Ok(Some(a)) if w.user.sees_account(&a.id) => a,
        Ok(_) => {
            return error_page(
                t,
                Some(w),
                StatusCode::NOT_FOUND,
                "error-title",
                "api-not-found",
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "a company could not be read");
            return unavailable(t, w);
        }
    };
    let one = vec![a.id.clone()];
    let admin = (w.user.role == Role::ProductAdministrator).then(|| w.user.id.clone());
    let lines = s.contract_lines(Some(&one), admin.as_deref(), None);
    let pq = ProductQuery {
        accounts: Some(one.clone()),
        administrator: admin.clone(),
        limit: Some(SHOWN),
        ..ProductQuery::default()
    };
    let products = s.product_page(&pq);
    let c = caller(&w);
    let requests = crate::api::requests::list(
        &s,
        &c,
        RequestQuery {
            state: Some("open".into()),
            account: Some(a.id.clone()),
            limit: Some(SHOWN),
            ..RequestQuery::default()
        },
    );
    let (Ok(lines), Ok(products), Ok(requests)) = tokio::join!(lines, products, requests) else {
        return unavailable(t, w);
    };
    let lines = lines
        .into_iter()
        .map(|l: ContractLine| {
            let l = l.line;
            Line {
                contract: l.contract_number,
                item: l.item,
                covers: l.serial.or(l.service).unwrap_or_default(),
                kind: l.kind,
                period: format!("{} – {}", l.starts_on, l.ends_on.unwrap_or_default()),
            }
        })
        .collect();
    html(CompanyPage {
        t,
        who: Some(w),
        page: "customers",
        lines,
        more_products: products.next.is_some(),
        products: products
            .items
            .into_iter()
            .map(|p| (p.serial, p.model.unwrap_or_default()))
            .collect(),
        requests: requests
            .into_iter()
            .map(|r| (r.number, r.title, when(r.opened_at_ms)))
            .collect(),
        a,
    })
}
