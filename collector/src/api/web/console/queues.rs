//! The console's delivery queues (the external portal's outbox and the
//! e-mails: pending, dead letters, retry) and the registrations waiting
//! for an operator (approve into a company, or reject).

use super::{company_choices, operator, operator_post, sections, DoneQuery};
use crate::api::fleet::{self as api, EntriesQuery, QueueName};
use crate::api::sessions::Mail;
use crate::api::web::form::{caller, done, notice, refusal, state, unavailable};
use crate::api::web::i18n::{self, Texts};
use crate::api::web::{html, when, Who};
use crate::api::{people, S};
use crate::auth::password::Sessions;
use crate::model::{QueueEntry, RegistrationState};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::{Extension, Json};
use serde::Deserialize;

#[derive(Deserialize)]
pub(in crate::api::web) struct QueueQuery {
    #[serde(default)]
    queue: String,
    #[serde(default)]
    state: String,
    done: Option<String>,
}

struct Row {
    id: i64,
    target: String,
    subject: String,
    attempts: u32,
    error: String,
    created: String,
    next: String,
}

#[derive(Template)]
#[template(path = "console/queues.html")]
struct QueuesPage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    sections: Vec<(&'static str, String, bool)>,
    queue: &'a str,
    state: &'a str,
    counts: [(String, u64); 3],
    rows: Vec<Row>,
    notice: Option<String>,
    error: Option<String>,
}

pub(in crate::api::web) async fn page(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    Query(q): Query<QueueQuery>,
) -> Response {
    let w = match operator(&s, &cfg, &headers, false).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let t = i18n::texts(&w.user.language);
    let n = notice(t, q.done.as_deref());
    render(&s, w, &q.queue, &q.state, n, None).await
}

async fn render(
    s: &crate::store::Store,
    w: Who,
    queue: &str,
    st: &str,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let t = i18n::texts(&w.user.language);
    let (name, queue) = if queue == "email" {
        (QueueName::Email, "email")
    } else {
        (QueueName::Portal, "portal")
    };
    let st = if st == "dead" { "dead" } else { "pending" };
    let q = EntriesQuery {
        state: Some(st.into()),
        limit: Some(200),
    };
    let counts = match name {
        QueueName::Portal => s.outbox_counts().await,
        QueueName::Email => s.email_counts().await,
    };
    let (entries, counts) = match (api::entries(s, &caller(&w), name, q).await, counts) {
        (Ok(e), Ok(c)) => (e, c),
        _ => return unavailable(t, w),
    };
    let rows = entries
        .into_iter()
        .map(|e: QueueEntry| Row {
            id: e.id,
            target: e.target,
            subject: e.subject,
            attempts: e.attempts,
            error: e.last_error.unwrap_or_default(),
            created: when(e.created_at_ms),
            next: when(e.next_attempt_ms),
        })
        .collect();
    html(QueuesPage {
        t,
        who: Some(w),
        page: "console",
        sections: sections(t, "/console/queues"),
        queue,
        state: st,
        counts: [
            (t.get("console-pending"), counts.pending),
            (t.get("console-sent"), counts.sent),
            (t.get("console-dead"), counts.dead),
        ],
        rows,
        notice,
        error,
    })
}

pub(in crate::api::web) async fn retry(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    Path((queue, id)): Path<(String, i64)>,
    body: axum::body::Bytes,
) -> Response {
    let (w, t, _) = match operator_post(&s, &cfg, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let name = if queue == "email" {
        QueueName::Email
    } else {
        QueueName::Portal
    };
    let back = if queue == "email" { "email" } else { "portal" };
    match api::retry(state(&s), caller(&w), Path((name, id))).await {
        Ok(_) => done(
            &format!("/console/queues?queue={back}&state=dead"),
            "retried",
        ),
        Err(e) => {
            let e = refusal(t, &e);
            render(&s, w, back, "dead", None, Some(e)).await
        }
    }
}

// ---- registrations waiting for an operator ------------------------------------

struct Waiting {
    id: String,
    company: String,
    person: String,
    email: String,
    phone: String,
    serials: String,
    confirmed: String,
    matched: String,
}

#[derive(Template)]
#[template(path = "console/registrations.html")]
struct RegistrationsPage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    sections: Vec<(&'static str, String, bool)>,
    rows: Vec<Waiting>,
    companies: Vec<(String, String)>,
    notice: Option<String>,
    error: Option<String>,
}

pub(in crate::api::web) async fn registrations(
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
    registrations_page(&s, w, n, None).await
}

async fn registrations_page(
    s: &crate::store::Store,
    w: Who,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let t = i18n::texts(&w.user.language);
    let queued = match s.registrations(Some(RegistrationState::Queued)).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "the registrations could not be read");
            return unavailable(t, w);
        }
    };
    let rows = queued
        .into_iter()
        .map(|r| Waiting {
            person: format!("{} {}", r.first_name, r.last_name),
            serials: r.serials.join(", "),
            confirmed: r.confirmed_at_ms.map(when).unwrap_or_default(),
            matched: r.account.clone().unwrap_or_default(),
            id: r.id,
            company: r.company_name,
            email: r.email,
            phone: r.phone,
        })
        .collect();
    html(RegistrationsPage {
        t,
        who: Some(w),
        page: "console",
        sections: sections(t, "/console"),
        rows,
        companies: company_choices(s).await,
        notice,
        error,
    })
}

/// `op=approve` with `account`, or `op=reject`.
pub(in crate::api::web) async fn decide(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    Extension(mail): Extension<Mail>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let (w, t, f) = match operator_post(&s, &cfg, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let outcome = if f.get("op") == "reject" {
        people::reject(state(&s), caller(&w), Extension(mail), Path(id))
            .await
            .map(|_| "registration-rejected")
    } else {
        let b = people::Approve {
            account: f.get("account"),
        };
        people::approve(
            state(&s),
            caller(&w),
            Extension(mail),
            Path(id),
            Ok(Json(b)),
        )
        .await
        .map(|_| "registration-approved")
    };
    match outcome {
        Ok(what) => done("/console/registrations", what),
        Err(e) => {
            let e = refusal(t, &e);
            registrations_page(&s, w, None, Some(e)).await
        }
    }
}
