//! The Users page: colleagues by state (Active, Pending, Suspended,
//! Refused) with a search by surname; inviting a colleague (an Account
//! Manager, or a Product Administrator of given groups and products);
//! suspending, reinstating and removing, and resending or withdrawing an
//! invitation. Every change runs the API's handler as the person.

use super::form::{caller, done, notice, person, post, posted, refusal, serials, state, Fields};
use super::i18n::Texts;
use super::{display_name, error_page, html, Who};
use crate::api::sessions::Mail;
use crate::api::{groups as api_groups, people, users as api_users, S};
use crate::auth::password::Sessions;
use crate::model::{url_part, Group, NewInvitation, Role, User, UserQuery, UserState};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Form, Json};
use serde::Deserialize;

const STATES: [UserState; 4] = [
    UserState::Active,
    UserState::Pending,
    UserState::Suspended,
    UserState::Refused,
];

#[derive(Deserialize)]
pub(super) struct ListQuery {
    #[serde(default)]
    surname: String,
    #[serde(default)]
    state: String,
    done: Option<String>,
}

struct Row {
    id: String,
    name: String,
    email: String,
    role: String,
    companies: String,
    /// The actions offered: (action, label).
    actions: Vec<(&'static str, String)>,
}

#[derive(Template)]
#[template(path = "users.html")]
struct ListPage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    surname: String,
    state: &'static str,
    tabs: Vec<(&'static str, String)>,
    rows: Vec<Row>,
    notice: Option<String>,
    error: Option<String>,
}

fn state_named(s: &str) -> UserState {
    STATES
        .into_iter()
        .find(|x| x.as_str() == s)
        .unwrap_or(UserState::Active)
}

fn actions(t: &Texts, me: &User, u: &User) -> Vec<(&'static str, String)> {
    if u.id == me.id {
        return Vec::new();
    }
    let mut a: Vec<&'static str> = match u.state {
        UserState::Active => vec!["suspend", "remove"],
        UserState::Suspended => vec!["reinstate", "remove"],
        UserState::Pending => vec!["resend", "withdraw"],
        UserState::Refused => vec!["remove"],
    };
    a.retain(|_| me.may_write_user(u));
    a.into_iter()
        .map(|k| (k, t.get(&format!("users-{k}"))))
        .collect()
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
    render(&s, w, q, None).await
}

async fn render(
    s: &std::sync::Arc<crate::store::Store>,
    w: Who,
    q: ListQuery,
    error: Option<String>,
) -> Response {
    let t = super::i18n::texts(&w.user.language);
    let st = state_named(&q.state);
    let uq = UserQuery {
        account: None,
        surname: Some(q.surname.trim().to_string()).filter(|s| !s.is_empty()),
        state: Some(st),
    };
    let users = match api_users::list(s, &caller(&w), uq).await {
        Ok(u) => u,
        Err(e) => {
            let status = e.status();
            return error_page(t, Some(w), status, "error-title", "users-not-allowed");
        }
    };
    let rows = users
        .iter()
        .map(|u| Row {
            id: u.id.clone(),
            name: display_name(u),
            email: u.email.clone().unwrap_or_default(),
            role: t.get(&format!("role-{}", u.role.as_str())),
            companies: match &u.companies {
                None => t.get("users-all-companies"),
                Some(c) => c.join(", "),
            },
            actions: actions(t, &w.user, u),
        })
        .collect();
    let tabs = STATES
        .iter()
        .map(|x| (x.as_str(), t.get(&format!("state-{}", x.as_str()))))
        .collect();
    html(ListPage {
        t,
        notice: notice(t, q.done.as_deref()),
        who: Some(w),
        page: "users",
        surname: q.surname,
        state: st.as_str(),
        tabs,
        rows,
        error,
    })
}

#[derive(Deserialize)]
pub(super) struct ActForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
}

/// Suspend, reinstate, remove (after a confirmation page), resend or
/// withdraw an invitation.
pub(super) async fn act(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    Extension(mail): Extension<Mail>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(f): Form<ActForm>,
) -> Response {
    let w = match person(&s, &cfg, &headers, true).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let t = super::i18n::texts(&w.user.language);
    if !posted(&w, &headers, &f.csrf) {
        return error_page(
            t,
            Some(w),
            StatusCode::FORBIDDEN,
            "error-title",
            "csrf-failed",
        );
    }
    let c = caller(&w);
    let outcome = match action.as_str() {
        "suspend" => api_users::suspend(state(&s), c, Path(id.clone()))
            .await
            .map(|_| "user-suspended"),
        "reinstate" => api_users::reinstate(state(&s), c, Path(id.clone()))
            .await
            .map(|_| "user-reinstated"),
        "resend" => people::resend(state(&s), c, Extension(mail), Path(id.clone()))
            .await
            .map(|_| "user-resent"),
        "withdraw" => people::withdraw(state(&s), c, Path(id.clone()))
            .await
            .map(|_| "user-withdrawn"),
        "remove" if f.confirm != "yes" => {
            let name = match s.user(&id).await {
                Ok(Some(u)) if w.user.sees_user(&u) => display_name(&u),
                _ => {
                    return error_page(
                        t,
                        Some(w),
                        StatusCode::NOT_FOUND,
                        "error-title",
                        "api-not-found",
                    )
                }
            };
            return html(super::form::ConfirmPage {
                t,
                who: Some(w),
                page: "users",
                title: t.with("users-remove-title", &[("name", &name)]),
                text: t.get("users-remove-text"),
                action: format!("/users/{}/remove", url_part(&id)),
                extra: Vec::new(),
                submit: t.get("users-remove"),
                back: "/users",
            });
        }
        "remove" => api_users::delete_user(state(&s), c, Path(id.clone()))
            .await
            .map(|_| "user-removed"),
        _ => {
            return error_page(
                t,
                Some(w),
                StatusCode::NOT_FOUND,
                "not-found-title",
                "not-found-text",
            )
        }
    };
    match outcome {
        Ok(what) => done("/users", what),
        Err(e) => {
            let error = Some(refusal(t, &e));
            let q = ListQuery {
                surname: String::new(),
                state: String::new(),
                done: None,
            };
            let mut r = render(&s, w, q, error).await;
            *r.status_mut() = e.status();
            r
        }
    }
}

// ---- inviting a colleague ----------------------------------------------

#[derive(Default)]
pub(super) struct InviteForm {
    first_name: String,
    last_name: String,
    email: String,
    role: String,
    language: String,
    /// Product serials, separated by commas or spaces.
    serials: String,
    /// Checked groups and companies.
    group: Vec<i64>,
    company: Vec<String>,
}

impl InviteForm {
    fn from(f: &Fields) -> InviteForm {
        InviteForm {
            first_name: f.get("first_name"),
            last_name: f.get("last_name"),
            email: f.get("email"),
            role: f.get("role"),
            language: f.get("language"),
            serials: f.get("serials"),
            group: f
                .all("group")
                .iter()
                .filter_map(|g| g.parse().ok())
                .collect(),
            company: f.all("company"),
        }
    }
}

#[derive(Deserialize)]
pub(super) struct InviteQuery {
    role: Option<String>,
    serial: Option<String>,
}

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitePage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    f: InviteForm,
    groups: Vec<(Group, bool)>,
    companies: Vec<(String, bool)>,
    error: Option<String>,
}

async fn invite_form(
    s: &std::sync::Arc<crate::store::Store>,
    w: Who,
    f: InviteForm,
    error: Option<String>,
) -> Response {
    let groups = api_groups::list(s, &caller(&w), None)
        .await
        .unwrap_or_default();
    let groups = groups
        .into_iter()
        .map(|g| {
            let on = f.group.contains(&g.id);
            (g, on)
        })
        .collect();
    let companies = w
        .user
        .sees
        .iter()
        .map(|c| (c.clone(), f.company.is_empty() || f.company.contains(c)))
        .collect();
    html(InvitePage {
        t: super::i18n::texts(&w.user.language),
        who: Some(w),
        page: "users",
        f,
        groups,
        companies,
        error,
    })
}

pub(super) async fn invite_page(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    Query(q): Query<InviteQuery>,
) -> Response {
    let w = match person(&s, &cfg, &headers, false).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    if w.user.role == Role::ProductAdministrator {
        let t = super::i18n::texts(&w.user.language);
        return error_page(
            t,
            Some(w),
            StatusCode::FORBIDDEN,
            "error-title",
            "users-not-allowed",
        );
    }
    let f = InviteForm {
        role: q.role.unwrap_or_else(|| "product_administrator".into()),
        serials: q.serial.unwrap_or_default(),
        language: w.user.language.clone(),
        ..InviteForm::default()
    };
    invite_form(&s, w, f, None).await
}

pub(super) async fn invite(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    Extension(mail): Extension<Mail>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (w, t, fields) = match post(&s, &cfg, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let f = InviteForm::from(&fields);
    let role = match f.role.as_str() {
        "account_manager" => Role::AccountManager,
        _ => Role::ProductAdministrator,
    };
    let all = w.user.sees.clone();
    let companies =
        (!f.company.is_empty() && f.company.len() < all.len()).then(|| f.company.clone());
    let inv = NewInvitation {
        email: f.email.trim().to_string(),
        first_name: f.first_name.trim().to_string(),
        last_name: f.last_name.trim().to_string(),
        role,
        account: None,
        companies,
        products: serials(&f.serials),
        groups: f.group.clone(),
        language: Some(if f.language == "it" { "it" } else { "en" }.to_string()),
    };
    match people::invite(state(&s), caller(&w), Extension(mail), Ok(Json(inv))).await {
        Ok(_) => done("/users?state=pending", "invited"),
        Err(e) => {
            let error = Some(refusal(t, &e));
            invite_form(&s, w, f, error).await
        }
    }
}
