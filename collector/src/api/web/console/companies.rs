//! The console's companies: the list with a form for a new one; a
//! company's page to change it, import contract lines from CSV and remove
//! a line.

use super::{operator, operator_post, sections, DoneQuery};
use crate::api::web::form::{caller, done, notice, refusal, state, unavailable, Fields};
use crate::api::web::i18n::{self, Texts};
use crate::api::web::{error_page, html, Who};
use crate::api::{accounts, contracts, S};
use crate::auth::password::Sessions;
use crate::model::{url_part, Account, ContractLine};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Json};

#[derive(Template)]
#[template(path = "console/companies.html")]
struct ListPage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    sections: Vec<(&'static str, String, bool)>,
    companies: Vec<Account>,
    f: Account,
    notice: Option<String>,
    error: Option<String>,
}

fn blank() -> Account {
    Account {
        id: String::new(),
        name: String::new(),
        billing_code: String::new(),
        service_code: String::new(),
        auto_create_products: false,
        time_zone: "UTC".into(),
        organisation: None,
    }
}

pub(in crate::api::web) async fn list(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    Query(q): Query<DoneQuery>,
) -> Response {
    let w = match operator(&s, &cfg, &headers, false).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let n = notice(i18n::texts(&w.user.language), q.done.as_deref());
    list_page(&s, w, blank(), n, None).await
}

async fn list_page(
    s: &crate::store::Store,
    w: Who,
    f: Account,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let t = i18n::texts(&w.user.language);
    let companies = match s.accounts().await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "the companies could not be read");
            return unavailable(t, w);
        }
    };
    html(ListPage {
        t,
        who: Some(w),
        page: "console",
        sections: sections(t, "/console/companies"),
        companies,
        f,
        notice,
        error,
    })
}

fn account_from(f: &Fields, organisation: Option<String>) -> Account {
    let tz = f.get("time_zone").trim().to_string();
    Account {
        id: f.get("id").trim().to_string(),
        name: f.get("name").trim().to_string(),
        billing_code: f.get("billing_code").trim().to_string(),
        service_code: f.get("service_code").trim().to_string(),
        auto_create_products: f.get("auto_create_products") == "on",
        time_zone: if tz.is_empty() { "UTC".into() } else { tz },
        organisation,
    }
}

/// A new company (or an existing one written again).
pub(in crate::api::web) async fn save(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (w, t, f) = match operator_post(&s, &cfg, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let a = account_from(&f, None);
    let id = a.id.clone();
    match accounts::put_account(state(&s), caller(&w), Path(id.clone()), Ok(Json(a.clone()))).await
    {
        Ok(_) => done(
            &format!("/console/companies/{}", url_part(&id)),
            "company-saved",
        ),
        Err(e) => {
            let e = refusal(t, &e);
            list_page(&s, w, a, None, Some(e)).await
        }
    }
}

#[derive(Template)]
#[template(path = "console/company.html")]
struct CompanyPage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    sections: Vec<(&'static str, String, bool)>,
    f: Account,
    lines: Vec<ContractLine>,
    csv: String,
    notice: Option<String>,
    error: Option<String>,
}

pub(in crate::api::web) async fn page(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let w = match operator(&s, &cfg, &headers, false).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let n = notice(i18n::texts(&w.user.language), q.done.as_deref());
    company_page(&s, w, &id, None, String::new(), n, None).await
}

async fn company_page(
    s: &crate::store::Store,
    w: Who,
    id: &str,
    typed: Option<Account>,
    csv: String,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let t = i18n::texts(&w.user.language);
    let a = match s.account(id).await {
        Ok(Some(a)) => a,
        Ok(None) => {
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
    let one = [a.id.clone()];
    let lines = s
        .contract_lines(Some(&one), None, None)
        .await
        .unwrap_or_default();
    html(CompanyPage {
        t,
        who: Some(w),
        page: "console",
        sections: sections(t, "/console/companies"),
        f: typed.unwrap_or(a),
        lines,
        csv,
        notice,
        error,
    })
}

/// Change the company (`op=save`), import contract lines (`op=import`,
/// `csv`) or remove one (`op=remove_line`, `line`).
pub(in crate::api::web) async fn change(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let (w, t, f) = match operator_post(&s, &cfg, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let here = format!("/console/companies/{}", url_part(&id));
    match f.get("op").as_str() {
        "import" => {
            let csv = f.get("csv");
            match contracts::import_csv(state(&s), caller(&w), Path(id.clone()), csv.clone()).await
            {
                Ok(_) => done(&here, "lines-imported"),
                Err(e) => {
                    let e = refusal(t, &e);
                    company_page(&s, w, &id, None, csv, None, Some(e)).await
                }
            }
        }
        "remove_line" => {
            let line: i64 = f.get("line").parse().unwrap_or(-1);
            match contracts::delete_line(state(&s), caller(&w), Path(line)).await {
                Ok(_) => done(&here, "line-removed"),
                Err(e) => {
                    let e = refusal(t, &e);
                    company_page(&s, w, &id, None, String::new(), None, Some(e)).await
                }
            }
        }
        _ => {
            let organisation = s
                .account(&id)
                .await
                .ok()
                .flatten()
                .and_then(|a| a.organisation);
            let mut a = account_from(&f, organisation);
            a.id = id.clone();
            match accounts::put_account(
                state(&s),
                caller(&w),
                Path(id.clone()),
                Ok(Json(a.clone())),
            )
            .await
            {
                Ok(_) => done(&here, "company-saved"),
                Err(e) => {
                    let e = refusal(t, &e);
                    company_page(&s, w, &id, Some(a), String::new(), None, Some(e)).await
                }
            }
        }
    }
}
