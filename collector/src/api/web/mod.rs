//! The web portal: pages rendered on the server from templates checked at
//! compile time (askama, `templates/`), texts from Fluent catalogs in the
//! person's language, one stylesheet embedded in the binary and no script.
//! Pages run on the same sessions as the API (cookie, CSRF token in a
//! hidden field of every form that changes anything) and ask the same
//! access policy; a person who is not logged in is sent to the login page.

mod account;
mod chart;
mod chart_cache;
mod console;
mod customers;
mod form;
mod groups;
mod i18n;
mod knowledge;
mod product_edit;
mod products;
mod profile;
mod readings;
mod requests;
mod users;

use super::sessions::{self, Login};
use super::{Routes, S};
use crate::auth::password::Sessions;
use crate::model::{RequestQuery, Role, User};
use askama::Template;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form};
use i18n::Texts;
use serde::Deserialize;
use std::net::SocketAddr;

/// No script, no inline style, nothing from elsewhere; forms post only
/// here; no framing.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub(super) fn routes() -> Routes {
    Routes::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route(
            "/register",
            get(account::register_page).post(account::register),
        )
        .route(
            "/register/confirm",
            get(account::confirm_page).post(account::confirm),
        )
        .route(
            "/invitation/accept",
            get(account::accept_page).post(account::accept),
        )
        .route(
            "/invitation/decline",
            get(account::decline_page).post(account::decline),
        )
        .route(
            "/reset-password",
            get(account::reset_page).post(account::reset),
        )
        .route("/users", get(users::list))
        .route("/users/invite", get(users::invite_page).post(users::invite))
        .route("/users/{id}/{action}", post(users::act))
        .route("/groups", get(groups::list))
        .route("/groups/new", get(groups::new_page).post(groups::create))
        .route("/groups/{id}", get(groups::page).post(groups::change))
        .route("/requests", get(requests::list))
        .route(
            "/requests/new",
            get(requests::new_page).post(requests::create),
        )
        .route("/requests/{number}", get(requests::page))
        .route("/requests/{number}/comments", post(requests::comment))
        .route("/profile", get(profile::page).post(profile::change))
        .route("/customers", get(customers::list))
        .route("/customers/{id}", get(customers::page))
        .route("/knowledge", get(knowledge::search))
        .route("/knowledge/{id}", get(knowledge::article))
        .route("/products", get(products::list))
        .route("/products/{serial}", get(products::page))
        .route(
            "/products/{serial}/edit",
            get(product_edit::page).post(product_edit::save),
        )
        .route("/products/{serial}/chart.svg", get(readings::chart_svg))
        .route("/products/{serial}/readings", post(readings::enter))
        .merge(console::routes())
        .route("/static/app.css", get(stylesheet))
        .route("/static/icon.svg", get(icon))
        .layer(Extension(chart_cache::ChartCache::default()))
        .layer(axum::middleware::map_response(security_headers))
}

async fn security_headers(r: Response) -> Response {
    secured(r)
}

fn secured(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
    {
        // Pages show a person's data: not kept by shared caches.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../../static/app.css"),
    )
}

async fn icon() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("../../../static/icon.svg"),
    )
}

/// The person a page is for: who they are and their session's CSRF token.
pub struct Who {
    pub(super) user: User,
    /// "Signed in as ..." in their language.
    pub label: String,
    pub csrf: String,
}

impl Who {
    /// Account managers and operators manage colleagues.
    pub fn manages_users(&self) -> bool {
        self.user.role != Role::ProductAdministrator
    }

    /// The service provider's console.
    pub fn is_operator(&self) -> bool {
        self.user.role == Role::Operator
    }

    /// The Customers page: the companies a person's organisation has.
    pub fn shows_customers(&self) -> bool {
        self.user.role != Role::ProductAdministrator
    }
}

pub(super) fn display_name(u: &User) -> String {
    let full = format!("{} {}", u.first_name, u.last_name);
    match full.trim() {
        "" => u.name.clone(),
        n => n.to_string(),
    }
}

/// The logged-in person of this request, if the session cookie names a
/// live session of an active user.
pub(super) async fn who(
    s: &crate::store::Store,
    cfg: &Sessions,
    headers: &HeaderMap,
) -> Option<Who> {
    let id = sessions::cookie_session(headers)?;
    let sha = crate::token::hash_secret(&id);
    let now = crate::store::now_ms();
    let found = s
        .session(&sha, now, cfg.idle_ms, cfg.absolute_ms)
        .await
        .ok()??;
    if found.user.state != crate::model::UserState::Active {
        return None;
    }
    let t = i18n::texts(&found.user.language);
    let name = display_name(&found.user);
    Some(Who {
        label: t.with("nav-signed-in-as", &[("name", &name)]),
        user: found.user,
        csrf: found.csrf_token,
    })
}

/// Whether a form post comes from this site's own pages: a browser names
/// the page's origin in `Origin` (or at least `Referer`); one that names
/// another site is refused (cross-site request forgery, also of the login
/// form, which has no session to carry a token yet). Clients that send
/// neither are not browsers following another site's form.
pub(super) fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let from = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    match from {
        None => true,
        Some(o) => {
            let rest = o
                .strip_prefix("https://")
                .or_else(|| o.strip_prefix("http://"))
                .unwrap_or("");
            rest.split('/').next() == Some(host)
        }
    }
}

pub(super) fn accept_language(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
}

pub(super) fn html(t: impl Template) -> Response {
    match t.render() {
        Ok(body) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page did not render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be shown",
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    email: String,
    error: Option<String>,
    notice: Option<String>,
}

#[derive(Deserialize)]
struct LoginQuery {
    lang: Option<String>,
    /// Why the login page is shown: "out" (logged out), "expired".
    why: Option<String>,
}

async fn login_page(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    if who(&s, &cfg, &headers).await.is_some() {
        return Redirect::to("/").into_response();
    }
    let t = i18n::texts(i18n::choose(q.lang.as_deref(), accept_language(&headers)));
    let notice = match q.why.as_deref() {
        Some("out") => Some(t.get("logged-out")),
        Some("expired") => Some(t.get("session-ended")),
        _ => None,
    };
    html(LoginPage {
        t,
        who: None,
        page: "login",
        email: String::new(),
        error: None,
        notice,
    })
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
    #[serde(default)]
    totp: String,
    #[serde(default)]
    lang: String,
}

async fn login(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    if !same_origin(&headers) {
        let t = i18n::texts(i18n::choose(Some(&f.lang), accept_language(&headers)));
        return error_page(t, None, StatusCode::FORBIDDEN, "error-title", "csrf-failed");
    }
    let client = sessions::client_of(connect);
    let code = f.totp.trim().to_string();
    // A code of digits is a TOTP code; anything else a recovery code.
    let (totp, recovery_code) = match code.as_str() {
        "" => (None, None),
        c if c.chars().all(|d| d.is_ascii_digit()) => (Some(code.clone()), None),
        _ => (None, Some(code.clone())),
    };
    let attempt = Login {
        email: f.email.clone(),
        password: f.password,
        totp,
        recovery_code,
    };
    match sessions::log_in(&s, &cfg, &client, &headers, attempt).await {
        Ok((_, cookie, _)) => {
            let mut r = Redirect::to("/").into_response();
            r.headers_mut().insert(header::SET_COOKIE, cookie);
            r
        }
        Err(e) => {
            let t = i18n::texts(i18n::choose(Some(&f.lang), accept_language(&headers)));
            let error = match e.code() {
                "invalid_credentials" => t.get("login-failed"),
                "too_many_attempts" => {
                    let secs = e.retry_after().unwrap_or(60).to_string();
                    t.with("login-throttled", &[("secs", &secs)])
                }
                "user_not_active" => t.get("login-not-active"),
                "second_factor_needed" | "second_factor_wrong" => t.get("login-second-factor"),
                _ => t.with("login-error", &[("reason", e.code())]),
            };
            // The form again, saying what went wrong (200: the page
            // itself is fine), with what was typed but the password.
            html(LoginPage {
                t,
                who: None,
                page: "login",
                email: f.email,
                error: Some(error),
                notice: None,
            })
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let Some(w) = who(&s, &cfg, &headers).await else {
        return Redirect::to("/login?why=expired").into_response();
    };
    if !same_origin(&headers) || !crate::token::same_hash(&f.csrf, &w.csrf) {
        return error_page(
            i18n::texts(&w.user.language),
            Some(w),
            StatusCode::FORBIDDEN,
            "error-title",
            "csrf-failed",
        );
    }
    if let Some(id) = sessions::cookie_session(&headers) {
        if let Err(e) = s.delete_session(&crate::token::hash_secret(&id)).await {
            tracing::error!(error = %e, "logging out did not end the session");
        }
    }
    let mut r = Redirect::to("/login?why=out").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        sessions::set_cookie(sessions::secure(&cfg, &headers), "", true),
    );
    r
}

/// The page for an address that is no page, in the browser's language.
pub(super) fn not_found(headers: &HeaderMap) -> Response {
    let t = i18n::texts(i18n::choose(None, accept_language(headers)));
    secured(error_page(
        t,
        None,
        StatusCode::NOT_FOUND,
        "not-found-title",
        "not-found-text",
    ))
}

/// A form or address holding a NUL character (`nul::refuse_nul`), as a page.
pub(super) fn invalid_text(headers: &HeaderMap) -> Response {
    let t = i18n::texts(i18n::choose(None, accept_language(headers)));
    secured(error_page(
        t,
        None,
        StatusCode::BAD_REQUEST,
        "invalid-text-title",
        "invalid-text-text",
    ))
}

/// An address or form the handlers' extractors could not read (a path
/// segment that is not a number, a form without a field), as a page.
pub(super) fn request_not_understood(headers: &HeaderMap, status: StatusCode) -> Response {
    let t = i18n::texts(i18n::choose(None, accept_language(headers)));
    secured(error_page(
        t,
        None,
        status,
        "not-understood-title",
        "not-understood-text",
    ))
}

#[cfg(test)]
mod tests {
    use super::same_origin;
    use axum::http::HeaderMap;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn a_form_from_another_site_is_refused() {
        let here = ("host", "portal.example:8080");
        assert!(same_origin(&headers(&[
            here,
            ("origin", "http://portal.example:8080")
        ])));
        assert!(same_origin(&headers(&[
            here,
            ("referer", "https://portal.example:8080/login?x=1")
        ])));
        assert!(same_origin(&headers(&[here])));
        assert!(!same_origin(&headers(&[
            here,
            ("origin", "https://evil.example")
        ])));
        assert!(!same_origin(&headers(&[
            here,
            ("origin", "http://portal.example:8080.evil.example")
        ])));
        assert!(!same_origin(&headers(&[here, ("origin", "null")])));
        assert!(!same_origin(&headers(&[(
            "origin",
            "http://portal.example:8080"
        )])));
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    title: String,
    text: String,
}

pub(super) fn error_page(
    t: &'static Texts,
    who: Option<Who>,
    status: StatusCode,
    title: &str,
    text: &str,
) -> Response {
    let mut r = html(ErrorPage {
        t,
        who,
        page: "error",
        title: t.get(title),
        text: t.get(text),
    });
    *r.status_mut() = status;
    r
}

/// One open request as the home page lists it.
struct OpenRow {
    number: String,
    product: String,
    title: String,
    status: String,
    opened: String,
    due: String,
    overdue: bool,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    welcome: String,
    attention: Vec<(String, usize, String)>,
    open: Vec<OpenRow>,
}

/// A time as people read it: the date and the minute, in UTC.
pub(super) fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

async fn home(State(s): S, Extension(cfg): Extension<Sessions>, headers: HeaderMap) -> Response {
    let Some(w) = who(&s, &cfg, &headers).await else {
        return Redirect::to("/login").into_response();
    };
    let t = i18n::texts(&w.user.language);
    let q = RequestQuery {
        state: Some("open".into()),
        accounts: w.user.confined_to().map(<[String]>::to_vec),
        administrator: (w.user.role == Role::ProductAdministrator).then(|| w.user.id.clone()),
        limit: Some(200),
        ..RequestQuery::default()
    };
    let open = match s.requests(&q).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "the home page could not read the requests");
            return error_page(
                t,
                Some(w),
                StatusCode::SERVICE_UNAVAILABLE,
                "error-title",
                "error-title",
            );
        }
    };
    // A product needs attention when it has open requests: the rules open
    // them for low supplies, a silent device and a reading due too.
    let mut attention: Vec<(String, usize, Vec<String>)> = Vec::new();
    for r in &open {
        if let Some(serial) = &r.serial {
            let kind = t.get(&format!("kind-{}", r.kind));
            match attention.iter_mut().find(|(s, _, _)| s == serial) {
                Some((_, n, kinds)) => {
                    *n += 1;
                    if !kinds.contains(&kind) {
                        kinds.push(kind);
                    }
                }
                None => attention.push((serial.clone(), 1, vec![kind])),
            }
        }
    }
    attention.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let attention: Vec<(String, usize, String)> = attention
        .into_iter()
        .map(|(s, n, k)| (s, n, k.join(", ")))
        .collect();
    let rows = open
        .iter()
        .take(50)
        .map(|r| OpenRow {
            number: r.number.clone(),
            product: r.serial.clone().unwrap_or_default(),
            title: r.title.clone(),
            status: t.get(&format!("status-{}", r.status)),
            opened: when(r.opened_at_ms),
            due: r.due_at_ms.map(when).unwrap_or_default(),
            overdue: r.overdue,
        })
        .collect();
    let welcome = t.with("home-welcome", &[("name", &display_name(&w.user))]);
    html(HomePage {
        t,
        who: Some(w),
        page: "home",
        welcome,
        attention,
        open: rows,
    })
}
