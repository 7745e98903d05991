//! The Activity panel: the history of service, move and information
//! requests (open or closed, per company), a new request (for a product
//! picked from the list, a move, a question), and a request's page with
//! its events, comments, due time and the knowledge articles for its code.

use super::form::{caller, done, notice, person, post, refusal, state, Fields};
use super::i18n::{self, Texts};
use super::{error_page, html, when, Who};
use crate::api::{requests as api, S};
use crate::auth::password::Sessions;
use crate::model::{url_part, NewRequest, ProductQuery, RequestNote, RequestQuery, Role};
use crate::store::Store;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::{Extension, Json};
use serde::Deserialize;
use std::sync::Arc;

const PAGE: u32 = 25;
/// The kinds a person opens (the rules open incidents and consumables too).
const KINDS: [&str; 3] = ["incident", "move", "information"];

#[derive(Deserialize)]
pub(super) struct ListQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    company: String,
    before: Option<String>,
    done: Option<String>,
}

struct Row {
    number: String,
    kind: String,
    product: String,
    title: String,
    status: String,
    opened: String,
    due: String,
    overdue: bool,
}

#[derive(Template)]
#[template(path = "requests.html")]
struct ListPage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    state: &'a str,
    company: String,
    companies: Vec<String>,
    rows: Vec<Row>,
    next: Option<String>,
    notice: Option<String>,
}

fn kind_label(t: &Texts, kind: &str) -> String {
    let id = format!("kind-{kind}");
    match t.get(&id) {
        k if k == id => kind.to_string(),
        k => k,
    }
}

pub(super) async fn list(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    let w = match person(&s, &cfg, &headers, false).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let t = i18n::texts(&w.user.language);
    let st = if q.state == "closed" {
        "closed"
    } else {
        "open"
    };
    let company = q.company.trim().to_string();
    let rq = RequestQuery {
        state: Some(st.into()),
        account: Some(company.clone()).filter(|c| !c.is_empty()),
        limit: Some(PAGE),
        before: q.before.clone(),
        ..RequestQuery::default()
    };
    let items = match api::list(&s, &caller(&w), rq).await {
        Ok(r) => r,
        Err(e) => return error_page(t, Some(w), e.status(), "error-title", "error-try-later"),
    };
    let next = (items.len() == PAGE as usize).then(|| {
        format!(
            "/requests?state={st}&company={}&before={}",
            url_part(&company),
            url_part(&items[items.len() - 1].number)
        )
    });
    let rows = items
        .iter()
        .map(|r| Row {
            number: r.number.clone(),
            kind: kind_label(t, &r.kind),
            product: r.serial.clone().unwrap_or_default(),
            title: r.title.clone(),
            status: if r.state == "closed" {
                t.get("state-closed")
            } else {
                t.get(&format!("status-{}", r.status))
            },
            opened: when(r.opened_at_ms),
            due: r.due_at_ms.map(when).unwrap_or_default(),
            overdue: r.overdue,
        })
        .collect();
    html(ListPage {
        t,
        notice: notice(t, q.done.as_deref()),
        companies: w.user.sees.clone(),
        who: Some(w),
        page: "requests",
        state: st,
        company,
        rows,
        next,
    })
}

// ---- a new request ------------------------------------------------------

#[derive(Default)]
pub(super) struct NewForm {
    kind: String,
    serial: String,
    account: String,
    title: String,
    description: String,
    contact_name: String,
    contact_phone: String,
    destination_address: String,
    destination_location: String,
}

impl NewForm {
    fn from(f: &Fields) -> NewForm {
        NewForm {
            kind: f.get("kind"),
            serial: f.get("serial"),
            account: f.get("account"),
            title: f.get("title"),
            description: f.get("description"),
            contact_name: f.get("contact_name"),
            contact_phone: f.get("contact_phone"),
            destination_address: f.get("destination_address"),
            destination_location: f.get("destination_location"),
        }
    }
}

#[derive(Template)]
#[template(path = "request_new.html")]
struct NewPage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    f: NewForm,
    help: String,
    kinds: Vec<(&'static str, String)>,
    products: Vec<(String, String)>,
    companies: Vec<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct NewQuery {
    kind: Option<String>,
    serial: Option<String>,
}

async fn new_form(s: &Store, w: Who, f: NewForm, error: Option<String>) -> Response {
    let t = i18n::texts(&w.user.language);
    let q = ProductQuery {
        accounts: w.user.confined_to().map(<[String]>::to_vec),
        administrator: (w.user.role == Role::ProductAdministrator).then(|| w.user.id.clone()),
        limit: Some(1000),
        ..ProductQuery::default()
    };
    let products = match s.product_page(&q).await {
        Ok(p) => p
            .items
            .into_iter()
            .map(|p| {
                let label = match (&p.alt_name, &p.model) {
                    (Some(a), _) if !a.is_empty() => format!("{} · {a}", p.serial),
                    (_, Some(m)) => format!("{} · {m}", p.serial),
                    _ => p.serial.clone(),
                };
                (p.serial, label)
            })
            .collect(),
        Err(e) => {
            tracing::error!(error = %e, "the products for a new request could not be read");
            Vec::new()
        }
    };
    html(NewPage {
        t,
        kinds: KINDS.iter().map(|k| (*k, kind_label(t, k))).collect(),
        help: t.get(&format!("request-help-{}", f.kind)),
        companies: w.user.sees.clone(),
        who: Some(w),
        page: "requests",
        f,
        products,
        error,
    })
}

pub(super) async fn new_page(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    Query(q): Query<NewQuery>,
) -> Response {
    let w = match person(&s, &cfg, &headers, false).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let kind = q
        .kind
        .filter(|k| KINDS.contains(&k.as_str()))
        .unwrap_or_else(|| "incident".into());
    let f = NewForm {
        kind,
        serial: q.serial.unwrap_or_default(),
        contact_name: super::display_name(&w.user),
        contact_phone: w.user.phone.clone(),
        ..NewForm::default()
    };
    new_form(&s, w, f, None).await
}

pub(super) async fn create(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (w, t, fields) = match post(&s, &cfg, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let f = NewForm::from(&fields);
    let kind = if KINDS.contains(&f.kind.as_str()) {
        f.kind.clone()
    } else {
        "incident".into()
    };
    let serial = Some(f.serial.trim().to_string()).filter(|s| !s.is_empty());
    if serial.is_none() && kind != "information" {
        let e = t.get("request-pick-product");
        return new_form(&s, w, f, Some(e)).await;
    }
    // The company is the product's; a question without a product names it.
    let account = match &serial {
        Some(serial) => match caller(&w).product(&s, serial).await {
            Ok(p) => p.account.unwrap_or_default(),
            Err(e) => {
                let e = refusal(t, &e);
                return new_form(&s, w, f, Some(e)).await;
            }
        },
        None if !f.account.is_empty() => f.account.clone(),
        None => w.user.account.clone().unwrap_or_default(),
    };
    let text = |v: &str| Some(v.trim().to_string()).filter(|v| !v.is_empty());
    let r = NewRequest {
        account,
        serial,
        kind: kind.clone(),
        title: f.title.trim().to_string(),
        priority: None,
        description: f.description.trim().to_string(),
        contact_name: f.contact_name.trim().to_string(),
        contact_phone: f.contact_phone.trim().to_string(),
        destination_address: (kind == "move")
            .then(|| text(&f.destination_address))
            .flatten(),
        destination_location: (kind == "move")
            .then(|| text(&f.destination_location))
            .flatten(),
        user: String::new(),
    };
    match api::create_request(state(&s), caller(&w), Ok(Json(r))).await {
        Ok((_, Json(r))) => done(
            &format!("/requests/{}", url_part(&r.number)),
            "request-opened",
        ),
        Err(e) => {
            let e = refusal(t, &e);
            new_form(&s, w, f, Some(e)).await
        }
    }
}

// ---- a request's page ---------------------------------------------------

struct Event {
    at: String,
    what: String,
    text: String,
    author: String,
}

#[derive(Template)]
#[template(path = "request.html")]
struct RequestPage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    r: crate::model::ServiceRequest,
    kind: String,
    status: String,
    opened: String,
    due: String,
    closed: String,
    events: Vec<Event>,
    articles: Vec<(String, String)>,
    company: String,
    comment: String,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct PageQuery {
    done: Option<String>,
}

pub(super) async fn page(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    Path(number): Path<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    let w = match person(&s, &cfg, &headers, false).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let n = notice(i18n::texts(&w.user.language), q.done.as_deref());
    render(&s, w, &number, n, None, String::new()).await
}

async fn render(
    s: &Arc<Store>,
    w: Who,
    number: &str,
    notice: Option<String>,
    error: Option<String>,
    comment: String,
) -> Response {
    let t = i18n::texts(&w.user.language);
    let d = match api::request(state(s), caller(&w), Path(number.to_string())).await {
        Ok(Json(d)) => d,
        Err(e) => return error_page(t, Some(w), e.status(), "error-title", "api-not-found"),
    };
    let r = d.request;
    // Authors by name: colleagues the person sees, else the provider.
    let mut names: Vec<(String, String)> = Vec::new();
    for id in r.events.iter().filter_map(|e| e.author.as_ref()) {
        if names.iter().any(|(i, _)| i == id) {
            continue;
        }
        let name = match s.user(id).await {
            Ok(Some(u)) if w.user.sees_user(&u) => super::display_name(&u),
            _ => t.get("event-by-provider"),
        };
        names.push((id.clone(), name));
    }
    let company = match &r.account {
        Some(a) => match s.account(a).await {
            Ok(Some(acc)) => acc.name,
            _ => a.clone(),
        },
        None => String::new(),
    };
    let events = r
        .events
        .iter()
        .rev()
        .map(|e| Event {
            at: when(e.at_ms),
            what: {
                let id = format!("event-{}", e.event);
                match t.get(&id) {
                    x if x == id => e.event.clone(),
                    x => x,
                }
            },
            text: e.text.clone(),
            author: match &e.author {
                Some(id) => names
                    .iter()
                    .find(|(i, _)| i == id)
                    .map(|(_, n)| n.clone())
                    .unwrap_or_default(),
                None => t.get("event-by-system"),
            },
        })
        .collect();
    let articles = d
        .articles
        .iter()
        .map(|a| (a.article.id.clone(), a.article.title.clone()))
        .collect();
    html(RequestPage {
        t,
        who: Some(w),
        page: "requests",
        kind: kind_label(t, &r.kind),
        status: if r.state == "closed" {
            t.get("state-closed")
        } else {
            t.get(&format!("status-{}", r.status))
        },
        opened: when(r.opened_at_ms),
        due: r.due_at_ms.map(when).unwrap_or_default(),
        closed: r.closed_at_ms.map(when).unwrap_or_default(),
        r,
        events,
        articles,
        company,
        comment,
        notice,
        error,
    })
}

pub(super) async fn comment(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    Path(number): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let (w, t, f) = match post(&s, &cfg, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let text = f.get("text").trim().to_string();
    if text.is_empty() {
        let e = t.get("request-comment-empty");
        return render(&s, w, &number, None, Some(e), text).await;
    }
    let n = RequestNote {
        status: None,
        text: text.clone(),
    };
    match api::comment_request(state(&s), caller(&w), Path(number.clone()), Ok(Json(n))).await {
        Ok(_) => done(&format!("/requests/{}", url_part(&number)), "commented"),
        Err(e) => {
            let e = refusal(t, &e);
            render(&s, w, &number, None, Some(e), text).await
        }
    }
}
