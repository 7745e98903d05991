//! The console's fleet pages: agents (last seen, version, backlog,
//! certificate expiry, enabled; assign a company), join tokens (make one,
//! shown once; withdraw), devices no company owns (assign one), and the
//! devices gone silent and meter readings due across the fleet.

use super::{company_choices, operator, operator_post, sections, DoneQuery, CERT_WARNING_MS};
use crate::api::web::form::{caller, done, notice, refusal, state, unavailable};
use crate::api::web::i18n::{self, Texts};
use crate::api::web::{html, when, Who};
use crate::api::{enrollment, fleet as api, products, S};
use crate::auth::password::Sessions;
use crate::model::{ProductUpdate, RequestQuery};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::{Extension, Json};

// ---- agents ---------------------------------------------------------------

struct AgentRow {
    id: String,
    company: String,
    version: String,
    last_seen: String,
    backlog: u64,
    cert: String,
    cert_warn: bool,
    enabled: bool,
}

#[derive(Template)]
#[template(path = "console/agents.html")]
struct AgentsPage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    sections: Vec<(&'static str, String, bool)>,
    rows: Vec<AgentRow>,
    companies: Vec<(String, String)>,
    notice: Option<String>,
    error: Option<String>,
}

pub(in crate::api::web) async fn agents(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    Query(q): Query<DoneQuery>,
) -> Response {
    let w = match operator(&s, &cfg, &headers, false).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let t = i18n::texts(&w.user.language);
    agents_page(&s, w, notice(t, q.done.as_deref()), None).await
}

async fn agents_page(
    s: &crate::store::Store,
    w: Who,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let t = i18n::texts(&w.user.language);
    let agents = match s.agents().await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "the agents could not be read");
            return unavailable(t, w);
        }
    };
    let now = crate::store::now_ms();
    let rows = agents
        .into_iter()
        .map(|a| AgentRow {
            cert: a.cert_expires_at_ms.map(when).unwrap_or_default(),
            cert_warn: a
                .cert_expires_at_ms
                .is_some_and(|e| e - now < CERT_WARNING_MS),
            id: a.id,
            company: a.account.unwrap_or_default(),
            version: a.version,
            last_seen: when(a.last_seen_ms),
            backlog: a.backlog,
            enabled: a.enabled,
        })
        .collect();
    html(AgentsPage {
        t,
        who: Some(w),
        page: "console",
        sections: sections(t, "/console/agents"),
        rows,
        companies: company_choices(s).await,
        notice,
        error,
    })
}

/// Enable, disable or assign a company (`op`, `account`).
pub(in crate::api::web) async fn agent_change(
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
    let c = caller(&w);
    let outcome = match f.get("op").as_str() {
        "disable" => api::disable_agent(state(&s), c, Path(id))
            .await
            .map(|_| "agent-disabled"),
        "enable" => api::enable_agent(state(&s), c, Path(id))
            .await
            .map(|_| "agent-enabled"),
        _ => {
            let account = Some(f.get("account")).filter(|a| !a.is_empty());
            let u = api::AgentUpdate { account };
            api::update_agent(state(&s), c, Path(id), Ok(Json(u)))
                .await
                .map(|_| "agent-assigned")
        }
    };
    match outcome {
        Ok(what) => done("/console/agents", what),
        Err(e) => {
            let e = refusal(t, &e);
            agents_page(&s, w, None, Some(e)).await
        }
    }
}

// ---- join tokens ------------------------------------------------------------

struct TokenRow {
    id: String,
    company: String,
    agent: String,
    expires: String,
    used: String,
}

#[derive(Template)]
#[template(path = "console/tokens.html")]
struct TokensPage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    sections: Vec<(&'static str, String, bool)>,
    rows: Vec<TokenRow>,
    companies: Vec<(String, String)>,
    /// A token just made: shown this once.
    issued: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

pub(in crate::api::web) async fn tokens(
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
    tokens_page(&s, w, None, n, None).await
}

async fn tokens_page(
    s: &crate::store::Store,
    w: Who,
    issued: Option<String>,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let t = i18n::texts(&w.user.language);
    let tokens = s.join_tokens(None).await.unwrap_or_default();
    let rows = tokens
        .into_iter()
        .map(|k| TokenRow {
            id: k.id,
            company: k.account,
            agent: k.agent.unwrap_or_default(),
            expires: when(k.expires_at_ms),
            used: match (k.used_at_ms, k.used_by_agent) {
                (Some(at), Some(agent)) => format!("{} · {agent}", when(at)),
                (Some(at), None) => when(at),
                _ => String::new(),
            },
        })
        .collect();
    html(TokensPage {
        t,
        who: Some(w),
        page: "console",
        sections: sections(t, "/console/join-tokens"),
        rows,
        companies: company_choices(s).await,
        issued,
        notice,
        error,
    })
}

pub(in crate::api::web) async fn token_create(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    Extension(j): Extension<enrollment::Joining>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (w, t, f) = match operator_post(&s, &cfg, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let hours: u64 = f.get("hours").trim().parse().unwrap_or(24);
    let b = enrollment::Create {
        account: f.get("account"),
        agent_id: Some(f.get("agent").trim().to_string()).filter(|a| !a.is_empty()),
        ttl_secs: Some(hours.saturating_mul(3600)),
    };
    match enrollment::create(state(&s), caller(&w), Extension(j), Ok(Json(b))).await {
        Ok((_, Json(issued))) => {
            let n = Some(t.get("done-token-made"));
            tokens_page(&s, w, Some(issued.token), n, None).await
        }
        Err(e) => {
            let e = refusal(t, &e);
            tokens_page(&s, w, None, None, Some(e)).await
        }
    }
}

pub(in crate::api::web) async fn token_withdraw(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let (w, t, _) = match operator_post(&s, &cfg, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match enrollment::withdraw(state(&s), caller(&w), Path(id)).await {
        Ok(_) => done("/console/join-tokens", "token-withdrawn"),
        Err(e) => {
            let e = refusal(t, &e);
            tokens_page(&s, w, None, None, Some(e)).await
        }
    }
}

// ---- devices no company owns ---------------------------------------------------

struct DeviceRow {
    serial: String,
    model: String,
    address: String,
    agent: String,
    last_seen: String,
}

#[derive(Template)]
#[template(path = "console/devices.html")]
struct DevicesPage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    sections: Vec<(&'static str, String, bool)>,
    rows: Vec<DeviceRow>,
    companies: Vec<(String, String)>,
    notice: Option<String>,
    error: Option<String>,
}

pub(in crate::api::web) async fn devices(
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
    devices_page(&s, w, n, None).await
}

async fn devices_page(
    s: &crate::store::Store,
    w: Who,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let t = i18n::texts(&w.user.language);
    let found = match s.unassigned().await {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "the unassigned devices could not be read");
            return unavailable(t, w);
        }
    };
    let rows = found
        .into_iter()
        .map(|p| DeviceRow {
            model: [p.vendor, p.model]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" "),
            address: p.address.unwrap_or_default(),
            agent: p.agent.unwrap_or_default(),
            last_seen: p.last_seen_ms.map(when).unwrap_or_default(),
            serial: p.serial,
        })
        .collect();
    html(DevicesPage {
        t,
        who: Some(w),
        page: "console",
        sections: sections(t, "/console/devices"),
        rows,
        companies: company_choices(s).await,
        notice,
        error,
    })
}

/// A device becomes a product of the chosen company.
pub(in crate::api::web) async fn device_assign(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    Path(serial): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let (w, t, f) = match operator_post(&s, &cfg, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let u = ProductUpdate {
        account: Some(f.get("account")),
        ..ProductUpdate::default()
    };
    match products::update_product(state(&s), caller(&w), Path(serial), Ok(Json(u))).await {
        Ok(_) => done("/console/devices", "device-assigned"),
        Err(e) => {
            let e = refusal(t, &e);
            devices_page(&s, w, None, Some(e)).await
        }
    }
}

// ---- silent devices and readings due ------------------------------------------

struct Attention {
    number: String,
    serial: String,
    company: String,
    title: String,
    since: String,
}

#[derive(Template)]
#[template(path = "console/attention.html")]
struct AttentionPage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    sections: Vec<(&'static str, String, bool)>,
    silent: Vec<Attention>,
    due: Vec<Attention>,
}

/// The open device-silent and meter-due requests the clock's rules keep:
/// one per product gone quiet, one per product whose period's reading is
/// missing.
pub(in crate::api::web) async fn attention(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
) -> Response {
    let w = match operator(&s, &cfg, &headers, false).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let t = i18n::texts(&w.user.language);
    let q = |kind: &str| RequestQuery {
        state: Some("open".into()),
        kind: Some(kind.into()),
        limit: Some(200),
        ..RequestQuery::default()
    };
    let (sq, dq) = (q("device_silent"), q("meter_due"));
    let (silent, due) = tokio::join!(s.requests(&sq), s.requests(&dq));
    let (Ok(silent), Ok(due)) = (silent, due) else {
        return unavailable(t, w);
    };
    let rows = |v: Vec<crate::model::ServiceRequest>| -> Vec<Attention> {
        v.into_iter()
            .map(|r| Attention {
                number: r.number,
                serial: r.serial.unwrap_or_default(),
                company: r.account.unwrap_or_default(),
                title: r.title,
                since: when(r.first_seen_ms),
            })
            .collect()
    };
    html(AttentionPage {
        t,
        who: Some(w),
        page: "console",
        sections: sections(t, "/console/attention"),
        silent: rows(silent),
        due: rows(due),
    })
}
