//! The pages a person uses before they can log in: registering a company
//! (and the e-mailed confirmation link), accepting or declining an
//! invitation, and a forgotten password. Each runs the API's own handler,
//! so the rules, rate limits and audit are the API's.

use super::form::{refusal, state};
use super::i18n::{self, Texts};
use super::{accept_language, error_page, html, same_origin, Who};
use crate::api::sessions::Mail;
use crate::api::{people, sessions, S};
use crate::model::NewRegistration;
use askama::Template;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Form, Json};
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Deserialize, Default)]
pub(super) struct LinkQuery {
    #[serde(default)]
    token: String,
    lang: Option<String>,
}

fn texts_for(lang: Option<&str>, headers: &HeaderMap) -> &'static Texts {
    i18n::texts(i18n::choose(lang, accept_language(headers)))
}

/// A page that only says something (with a link onwards).
#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    title: String,
    text: String,
    link: Option<(&'a str, String)>,
}

fn message(t: &'static Texts, title: &str, text: &str, to_login: bool) -> Response {
    html(MessagePage {
        t,
        who: None,
        page: "message",
        title: t.get(title),
        text: t.get(text),
        link: to_login.then(|| ("/login", t.get("go-to-login"))),
    })
}

fn foreign(t: &'static Texts) -> Response {
    error_page(t, None, StatusCode::FORBIDDEN, "error-title", "csrf-failed")
}

// ---- registration ----------------------------------------------------

#[derive(Deserialize, Default)]
pub(super) struct RegisterForm {
    #[serde(default)]
    company_name: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    serials: String,
    #[serde(default)]
    lang: String,
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    f: RegisterForm,
    error: Option<String>,
}

pub(super) async fn register_page(headers: HeaderMap, Query(q): Query<LinkQuery>) -> Response {
    let t = texts_for(q.lang.as_deref(), &headers);
    html(RegisterPage {
        t,
        who: None,
        page: "register",
        f: RegisterForm::default(),
        error: None,
    })
}

pub(super) async fn register(
    State(s): S,
    Extension(mail): Extension<Mail>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(f): Form<RegisterForm>,
) -> Response {
    let t = texts_for(Some(&f.lang), &headers);
    if !same_origin(&headers) {
        return foreign(t);
    }
    let serials = super::form::serials(&f.serials);
    let r = NewRegistration {
        company_name: f.company_name.trim().to_string(),
        first_name: f.first_name.trim().to_string(),
        last_name: f.last_name.trim().to_string(),
        email: f.email.trim().to_string(),
        phone: f.phone.trim().to_string(),
        serials,
        language: Some(t.lang.to_string()),
    };
    match people::register(state(&s), Extension(mail), connect, Ok(Json(r))).await {
        Ok(_) => message(t, "register-sent-title", "register-sent-text", false),
        Err(e) => {
            let error = Some(refusal(t, &e));
            html(RegisterPage {
                t,
                who: None,
                page: "register",
                f,
                error,
            })
        }
    }
}

// ---- a new password through an e-mailed link --------------------------

/// The form that chooses a password for a link (confirming a registration,
/// accepting an invitation, resetting a forgotten password).
#[derive(Template)]
#[template(path = "set_password.html")]
struct SetPasswordPage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    title: String,
    intro: String,
    action: &'a str,
    token: String,
    submit: String,
    error: Option<String>,
}

#[derive(Clone, Copy)]
enum Link {
    Registration,
    Invitation,
    Reset,
}

impl Link {
    fn action(self) -> &'static str {
        match self {
            Link::Registration => "/register/confirm",
            Link::Invitation => "/invitation/accept",
            Link::Reset => "/reset-password",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Link::Registration => "confirm",
            Link::Invitation => "accept",
            Link::Reset => "reset",
        }
    }
}

fn set_password_page(
    t: &'static Texts,
    link: Link,
    token: String,
    error: Option<String>,
) -> Response {
    let k = link.key();
    html(SetPasswordPage {
        t,
        who: None,
        page: k,
        title: t.get(&format!("{k}-title")),
        intro: t.get(&format!("{k}-intro")),
        action: link.action(),
        token,
        submit: t.get(&format!("{k}-submit")),
        error,
    })
}

#[derive(Deserialize)]
pub(super) struct PasswordForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    repeat: String,
    #[serde(default)]
    lang: String,
}

fn link_page(link: Link, headers: &HeaderMap, q: LinkQuery) -> Response {
    let t = texts_for(q.lang.as_deref(), headers);
    if q.token.trim().is_empty() {
        return error_page(t, None, StatusCode::NOT_FOUND, "link-title", "link-missing");
    }
    set_password_page(t, link, q.token, None)
}

pub(super) async fn confirm_page(headers: HeaderMap, Query(q): Query<LinkQuery>) -> Response {
    link_page(Link::Registration, &headers, q)
}

pub(super) async fn accept_page(headers: HeaderMap, Query(q): Query<LinkQuery>) -> Response {
    link_page(Link::Invitation, &headers, q)
}

/// The form again, saying so, unless the password was typed twice alike.
fn not_twice(t: &'static Texts, link: Link, f: &PasswordForm) -> Option<Response> {
    (f.password != f.repeat)
        .then(|| set_password_page(t, link, f.token.clone(), Some(t.get("password-mismatch"))))
}

/// What a link's password form passes before its token is used: sent from
/// this site's page, the password typed twice alike. The texts in the
/// form's language, or the page to answer with.
fn checked(
    link: Link,
    headers: &HeaderMap,
    f: &PasswordForm,
) -> Result<&'static Texts, Box<Response>> {
    let t = texts_for(Some(&f.lang), headers);
    if !same_origin(headers) {
        return Err(Box::new(foreign(t)));
    }
    match not_twice(t, link, f) {
        Some(r) => Err(Box::new(r)),
        None => Ok(t),
    }
}

pub(super) async fn confirm(
    State(s): S,
    headers: HeaderMap,
    Form(f): Form<PasswordForm>,
) -> Response {
    let t = match checked(Link::Registration, &headers, &f) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let body = people::Confirm {
        token: f.token.clone(),
        password: f.password,
    };
    match people::confirm(state(&s), Ok(Json(body))).await {
        Ok(Json(v)) if v["user"].is_object() => {
            message(t, "confirmed-title", "confirmed-active", true)
        }
        Ok(_) => message(t, "confirmed-title", "confirmed-queued", false),
        Err(e) => set_password_page(t, Link::Registration, f.token, Some(refusal(t, &e))),
    }
}

pub(super) async fn accept(
    State(s): S,
    headers: HeaderMap,
    Form(f): Form<PasswordForm>,
) -> Response {
    let t = match checked(Link::Invitation, &headers, &f) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let body = people::Accept {
        token: f.token.clone(),
        password: f.password,
    };
    match people::accept(state(&s), Ok(Json(body))).await {
        Ok(Json(u)) => message(
            i18n::texts(&u.language),
            "accepted-title",
            "accepted-text",
            true,
        ),
        Err(e) => set_password_page(t, Link::Invitation, f.token, Some(refusal(t, &e))),
    }
}

#[derive(Template)]
#[template(path = "decline.html")]
struct DeclinePage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    token: String,
}

pub(super) async fn decline_page(headers: HeaderMap, Query(q): Query<LinkQuery>) -> Response {
    let t = texts_for(q.lang.as_deref(), &headers);
    if q.token.trim().is_empty() {
        return error_page(t, None, StatusCode::NOT_FOUND, "link-title", "link-missing");
    }
    html(DeclinePage {
        t,
        who: None,
        page: "decline",
        token: q.token,
    })
}

pub(super) async fn decline(State(s): S, headers: HeaderMap, Form(f): Form<LinkQuery>) -> Response {
    let t = texts_for(f.lang.as_deref(), &headers);
    if !same_origin(&headers) {
        return foreign(t);
    }
    let body = people::Decline { token: f.token };
    match people::decline(state(&s), Ok(Json(body))).await {
        Ok(_) => message(t, "declined-title", "declined-text", false),
        Err(e) => {
            let mut r = html(MessagePage {
                t,
                who: None,
                page: "message",
                title: t.get("link-title"),
                text: refusal(t, &e),
                link: None,
            });
            *r.status_mut() = StatusCode::FORBIDDEN;
            r
        }
    }
}

// ---- a forgotten password ---------------------------------------------

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    email: String,
    error: Option<String>,
}

/// With a link's token: the new password's form; without: the form that
/// asks for a link.
pub(super) async fn reset_page(headers: HeaderMap, Query(q): Query<LinkQuery>) -> Response {
    let t = texts_for(q.lang.as_deref(), &headers);
    if !q.token.trim().is_empty() {
        return set_password_page(t, Link::Reset, q.token, None);
    }
    html(ForgotPage {
        t,
        who: None,
        page: "forgot",
        email: String::new(),
        error: None,
    })
}

#[derive(Deserialize)]
pub(super) struct ResetForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    repeat: String,
    #[serde(default)]
    lang: String,
}

pub(super) async fn reset(
    State(s): S,
    Extension(mail): Extension<Mail>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(f): Form<ResetForm>,
) -> Response {
    let t = texts_for(Some(&f.lang), &headers);
    if !same_origin(&headers) {
        return foreign(t);
    }
    if f.token.trim().is_empty() {
        let body = sessions::ResetRequest {
            email: f.email.clone(),
        };
        return match sessions::request_reset(state(&s), Extension(mail), connect, Ok(Json(body)))
            .await
        {
            Ok(_) => message(t, "reset-sent-title", "reset-sent-text", true),
            Err(e) => html(ForgotPage {
                t,
                who: None,
                page: "forgot",
                email: f.email,
                error: Some(refusal(t, &e)),
            }),
        };
    }
    let pf = PasswordForm {
        token: f.token,
        password: f.password,
        repeat: f.repeat,
        lang: f.lang,
    };
    if let Some(r) = not_twice(t, Link::Reset, &pf) {
        return r;
    }
    let body = sessions::ResetConfirm {
        token: pf.token.clone(),
        new_password: pf.password,
    };
    match sessions::confirm_reset(state(&s), Ok(Json(body))).await {
        Ok(_) => message(t, "reset-done-title", "reset-done-text", true),
        Err(e) => set_password_page(t, Link::Reset, pf.token, Some(refusal(t, &e))),
    }
}
