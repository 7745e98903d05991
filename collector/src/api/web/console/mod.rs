//! The operators' console: the fleet (agents, join tokens, unassigned
//! devices, silent devices and readings due), companies and their contract
//! lines, the knowledge base, the delivery queues and the registrations
//! waiting for a decision. Only operators see it; every change runs the
//! API's handler as the person.

mod articles;
mod companies;
mod fleet;
mod queues;

use super::form::{person, unavailable};
use super::i18n::{self, Texts};
use super::{error_page, html, Who};
use crate::api::{Routes, S};
use crate::auth::password::Sessions;
use crate::model::{RegistrationState, RequestQuery, Role};
use crate::store::Store;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Extension;

pub(super) fn routes() -> Routes {
    Routes::new()
        .route("/console", get(overview))
        .route("/console/agents", get(fleet::agents))
        .route("/console/agents/{id}", post(fleet::agent_change))
        .route(
            "/console/join-tokens",
            get(fleet::tokens).post(fleet::token_create),
        )
        .route(
            "/console/join-tokens/{id}/withdraw",
            post(fleet::token_withdraw),
        )
        .route("/console/devices", get(fleet::devices))
        .route("/console/devices/{serial}", post(fleet::device_assign))
        .route("/console/attention", get(fleet::attention))
        .route(
            "/console/companies",
            get(companies::list).post(companies::save),
        )
        .route(
            "/console/companies/{id}",
            get(companies::page).post(companies::change),
        )
        .route("/console/knowledge", get(articles::list))
        .route(
            "/console/knowledge/edit",
            get(articles::edit_page).post(articles::save),
        )
        .route("/console/knowledge/delete", post(articles::delete))
        .route("/console/queues", get(queues::page))
        .route("/console/queues/{queue}/{id}/retry", post(queues::retry))
        .route("/console/registrations", get(queues::registrations))
        .route("/console/registrations/{id}", post(queues::decide))
}

/// The operator, or the login page, or a page saying the console is the
/// service provider's.
pub(super) async fn operator(
    s: &Store,
    cfg: &Sessions,
    headers: &HeaderMap,
    posting: bool,
) -> Result<Who, Response> {
    let w = person(s, cfg, headers, posting).await?;
    if w.user.role != Role::Operator {
        let t = i18n::texts(&w.user.language);
        return Err(error_page(
            t,
            Some(w),
            StatusCode::FORBIDDEN,
            "error-title",
            "console-operators-only",
        ));
    }
    Ok(w)
}

#[derive(serde::Deserialize)]
pub(super) struct DoneQuery {
    pub(super) done: Option<String>,
}

/// An operator's form post: the operator, their texts and the fields.
pub(super) async fn operator_post(
    s: &Store,
    cfg: &Sessions,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Who, &'static Texts, crate::api::web::form::Fields), Response> {
    let (w, t, f) = crate::api::web::form::post(s, cfg, headers, body).await?;
    if w.user.role != Role::Operator {
        return Err(error_page(
            t,
            Some(w),
            StatusCode::FORBIDDEN,
            "error-title",
            "console-operators-only",
        ));
    }
    Ok((w, t, f))
}

/// The sections of the console, for its own menu.
pub(super) const SECTIONS: [(&str, &str); 8] = [
    ("/console", "console-overview"),
    ("/console/agents", "console-agents"),
    ("/console/join-tokens", "console-join-tokens"),
    ("/console/devices", "console-devices"),
    ("/console/attention", "console-attention"),
    ("/console/companies", "console-companies"),
    ("/console/knowledge", "console-knowledge"),
    ("/console/queues", "console-queues"),
];

/// The console's menu in a language: (address, label, current).
pub(super) fn sections(t: &Texts, here: &str) -> Vec<(&'static str, String, bool)> {
    SECTIONS
        .iter()
        .map(|(href, id)| (*href, t.get(id), *href == here))
        .collect()
}

struct Tile {
    href: &'static str,
    title: String,
    figure: String,
    detail: String,
    warn: bool,
}

#[derive(Template)]
#[template(path = "console/overview.html")]
struct OverviewPage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    sections: Vec<(&'static str, String, bool)>,
    tiles: Vec<Tile>,
}

/// Certificates expiring within this are flagged.
pub(super) const CERT_WARNING_MS: i64 = 30 * 86_400_000;

async fn overview(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
) -> Response {
    let w = match operator(&s, &cfg, &headers, false).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let t = i18n::texts(&w.user.language);
    let now = crate::store::now_ms();
    let open_of = |kind: &str| RequestQuery {
        state: Some("open".into()),
        kind: Some(kind.into()),
        limit: Some(1000),
        ..RequestQuery::default()
    };
    let (silent_q, due_q) = (open_of("device_silent"), open_of("meter_due"));
    let (agents, unassigned, silent, due, outbox, email, queued) = tokio::join!(
        s.agents(),
        s.unassigned(),
        s.requests(&silent_q),
        s.requests(&due_q),
        s.outbox_counts(),
        s.email_counts(),
        s.registrations(Some(RegistrationState::Queued)),
    );
    let (Ok(agents), Ok(unassigned), Ok(silent), Ok(due), Ok(outbox), Ok(email), Ok(queued)) =
        (agents, unassigned, silent, due, outbox, email, queued)
    else {
        return unavailable(t, w);
    };
    let disabled = agents.iter().filter(|a| !a.enabled).count();
    let backlog: u64 = agents.iter().map(|a| a.backlog).sum();
    let expiring = agents
        .iter()
        .filter(|a| {
            a.cert_expires_at_ms
                .is_some_and(|e| e - now < CERT_WARNING_MS)
        })
        .count();
    let n = |x: usize| x.to_string();
    let tiles = vec![
        Tile {
            href: "/console/agents",
            title: t.get("console-agents"),
            figure: n(agents.len()),
            detail: t.with(
                "console-agents-detail",
                &[
                    ("disabled", &n(disabled)),
                    ("backlog", &backlog.to_string()),
                    ("expiring", &n(expiring)),
                ],
            ),
            warn: expiring > 0,
        },
        Tile {
            href: "/console/devices",
            title: t.get("console-devices"),
            figure: n(unassigned.len()),
            detail: t.get("console-devices-detail"),
            warn: !unassigned.is_empty(),
        },
        Tile {
            href: "/console/attention",
            title: t.get("console-silent"),
            figure: n(silent.len()),
            detail: t.get("console-silent-detail"),
            warn: !silent.is_empty(),
        },
        Tile {
            href: "/console/attention",
            title: t.get("console-due"),
            figure: n(due.len()),
            detail: t.get("console-due-detail"),
            warn: !due.is_empty(),
        },
        Tile {
            href: "/console/queues",
            title: t.get("console-outbox"),
            figure: outbox.pending.to_string(),
            detail: t.with(
                "console-queue-detail",
                &[("dead", &outbox.dead.to_string())],
            ),
            warn: outbox.dead > 0,
        },
        Tile {
            href: "/console/queues?queue=email",
            title: t.get("console-email"),
            figure: email.pending.to_string(),
            detail: t.with("console-queue-detail", &[("dead", &email.dead.to_string())]),
            warn: email.dead > 0,
        },
        Tile {
            href: "/console/registrations",
            title: t.get("console-registrations"),
            figure: n(queued.len()),
            detail: t.get("console-registrations-detail"),
            warn: !queued.is_empty(),
        },
    ];
    html(OverviewPage {
        t,
        sections: sections(t, "/console"),
        who: Some(w),
        page: "console",
        tiles,
    })
}

/// A company's name for a select: (id, "name (id)").
pub(super) async fn company_choices(s: &Store) -> Vec<(String, String)> {
    match s.accounts().await {
        Ok(a) => a
            .into_iter()
            .map(|a| (a.id.clone(), format!("{} ({})", a.name, a.id)))
            .collect(),
        Err(e) => {
            tracing::error!(error = %e, "the companies could not be read");
            Vec::new()
        }
    }
}
