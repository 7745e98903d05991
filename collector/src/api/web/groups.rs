//! Groups of products (Products, "Manage groups"): the list; the wizard
//! (a name, then the products, then submit); a group's page to rename or
//! delete it, add and remove products, and assign and remove Product
//! Administrators. Every change runs the API's handler as the person.

use super::form::{caller, done, notice, person, post, refusal, state};
use super::i18n::{self, Texts};
use super::{display_name, error_page, html, Who};
use crate::api::error::ApiError;
use crate::api::{groups as api, S};
use crate::auth::password::Sessions;
use crate::model::{Group, ProductQuery, Role, User, UserQuery, UserState};
use crate::store::Store;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::{Extension, Json};
use serde::Deserialize;
use std::sync::Arc;

/// The most products the wizard and a group's page offer to pick from.
const PICK_LIMIT: u32 = 500;

#[derive(Deserialize)]
pub(super) struct DoneQuery {
    done: Option<String>,
}

#[derive(Template)]
#[template(path = "groups.html")]
struct ListPage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    groups: Vec<Group>,
    notice: Option<String>,
}

pub(super) async fn list(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    Query(q): Query<DoneQuery>,
) -> Response {
    let w = match person(&s, &cfg, &headers, false).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let t = i18n::texts(&w.user.language);
    let groups = match api::list(&s, &caller(&w), None).await {
        Ok(g) => g,
        Err(e) => return error_page(t, Some(w), e.status(), "error-title", "error-try-later"),
    };
    html(ListPage {
        t,
        notice: notice(t, q.done.as_deref()),
        who: Some(w),
        page: "products",
        groups,
    })
}

/// A product as the pickers list it.
struct Pick {
    serial: String,
    label: String,
    checked: bool,
}

/// The products this person may put in a group of `account`.
async fn products_of(s: &Store, w: &Who, account: &str) -> Vec<(String, String)> {
    let q = ProductQuery {
        accounts: Some(vec![account.to_string()]),
        administrator: (w.user.role == Role::ProductAdministrator).then(|| w.user.id.clone()),
        limit: Some(PICK_LIMIT),
        ..ProductQuery::default()
    };
    match s.product_page(&q).await {
        Ok(p) => p
            .items
            .into_iter()
            .map(|p| {
                let label = [p.alt_name, p.model, p.location]
                    .into_iter()
                    .flatten()
                    .filter(|x| !x.is_empty())
                    .collect::<Vec<_>>()
                    .join(" · ");
                (p.serial, label)
            })
            .collect(),
        Err(e) => {
            tracing::error!(error = %e, "the products to pick could not be read");
            Vec::new()
        }
    }
}

// ---- the wizard ---------------------------------------------------------

#[derive(Template)]
#[template(path = "group_new.html")]
struct WizardPage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    /// 1: the name; 2: the products.
    step: u8,
    name: String,
    account: String,
    companies: Vec<String>,
    picks: Vec<Pick>,
    pick_legend: String,
    error: Option<String>,
}

pub(super) async fn new_page(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
) -> Response {
    let w = match person(&s, &cfg, &headers, false).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    wizard(&s, w, 1, String::new(), String::new(), Vec::new(), None).await
}

async fn wizard(
    s: &Store,
    w: Who,
    step: u8,
    name: String,
    account: String,
    checked: Vec<String>,
    error: Option<String>,
) -> Response {
    let t = i18n::texts(&w.user.language);
    let companies = w.user.sees.clone();
    let account = match account.is_empty() {
        true => companies.first().cloned().unwrap_or_default(),
        false => account,
    };
    let picks = if step == 2 {
        products_of(s, &w, &account)
            .await
            .into_iter()
            .map(|(serial, label)| Pick {
                checked: checked.contains(&serial),
                serial,
                label,
            })
            .collect()
    } else {
        Vec::new()
    };
    let pick_legend = t.with("groups-pick", &[("name", &name)]);
    html(WizardPage {
        t,
        who: Some(w),
        page: "products",
        step,
        name,
        account,
        companies,
        picks,
        pick_legend,
        error,
    })
}

/// Step 1 posts the name (on to step 2); step 2 the products (the group
/// is made with them).
pub(super) async fn create(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (w, t, f) = match post(&s, &cfg, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let name = f.get("name").trim().to_string();
    let account = f.get("account");
    let serials = f.all("serial");
    if name.is_empty() || name.chars().count() > 100 {
        let e = t.get("api-invalid-group-name");
        return wizard(&s, w, 1, name, account, serials, Some(e)).await;
    }
    if f.get("step") != "2" {
        return wizard(&s, w, 2, name, account, serials, None).await;
    }
    if serials.is_empty() {
        let e = t.get("groups-pick-one");
        return wizard(&s, w, 2, name, account, serials, Some(e)).await;
    }
    let new = api::NewGroup {
        account: account.clone(),
        name: name.clone(),
    };
    let g = match api::create_group(state(&s), caller(&w), Ok(Json(new))).await {
        Ok((_, Json(g))) => g,
        Err(e) => {
            let step = if e.code() == "group_exists" { 1 } else { 2 };
            let e = refusal(t, &e);
            return wizard(&s, w, step, name, account, serials, Some(e)).await;
        }
    };
    for serial in serials {
        if let Err(e) = api::add_to_group(state(&s), caller(&w), Path((g.id, serial))).await {
            // The group is made; the page says which product did not go in.
            tracing::info!(code = e.code(), "a product was not added to a new group");
        }
    }
    done(&format!("/groups/{}", g.id), "group-created")
}

// ---- a group's page -----------------------------------------------------

struct Admin {
    id: String,
    name: String,
}

#[derive(Template)]
#[template(path = "group.html")]
struct GroupPage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    g: Group,
    members: Vec<Pick>,
    others: Vec<Pick>,
    admins: Vec<Admin>,
    candidates: Vec<Admin>,
    may_assign: bool,
    notice: Option<String>,
    error: Option<String>,
}

pub(super) async fn page(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let w = match person(&s, &cfg, &headers, false).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let notice = notice(i18n::texts(&w.user.language), q.done.as_deref());
    render(&s, w, id, notice, None).await
}

async fn render(
    s: &Arc<Store>,
    w: Who,
    id: i64,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let t = i18n::texts(&w.user.language);
    let c = caller(&w);
    let g = match c.group(s, id).await {
        Ok(g) => g,
        Err(e) => return error_page(t, Some(w), e.status(), "error-title", "api-not-found"),
    };
    let all = products_of(s, &w, &g.account).await;
    let (members, others): (Vec<_>, Vec<_>) = all
        .into_iter()
        .map(|(serial, label)| Pick {
            checked: g.products.contains(&serial),
            serial,
            label,
        })
        .partition(|p| p.checked);
    let may_assign = w.user.role != Role::ProductAdministrator;
    let people: Vec<User> = if may_assign {
        let uq = UserQuery {
            account: None,
            surname: None,
            state: Some(UserState::Active),
        };
        crate::api::users::list(s, &caller(&w), uq)
            .await
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let admin = |u: &User| Admin {
        id: u.id.clone(),
        name: display_name(u),
    };
    let admins = g
        .administrators
        .iter()
        .map(|id| match people.iter().find(|u| &u.id == id) {
            Some(u) => admin(u),
            None => Admin {
                id: id.clone(),
                name: id.clone(),
            },
        })
        .collect();
    let candidates = people
        .iter()
        .filter(|u| u.role == Role::ProductAdministrator && !g.administrators.contains(&u.id))
        .filter(|u| u.account.as_deref() == Some(g.account.as_str()) || u.sees.contains(&g.account))
        .map(admin)
        .collect();
    html(GroupPage {
        t,
        who: Some(w),
        page: "products",
        g,
        members,
        others,
        admins,
        candidates,
        may_assign,
        notice,
        error,
    })
}

/// One change to a group, named by the form's `op`.
pub(super) async fn change(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> Response {
    let (w, t, f) = match post(&s, &cfg, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let st = || state(&s);
    let c = || caller(&w);
    let outcome: Result<&str, ApiError> = match f.get("op").as_str() {
        "rename" => {
            let r = api::Rename {
                name: f.get("name").trim().to_string(),
            };
            api::rename_group(st(), c(), Path(id), Ok(Json(r)))
                .await
                .map(|_| "group-renamed")
        }
        "delete" if f.get("confirm") != "yes" => {
            let name = match c().group(&s, id).await {
                Ok(g) => g.name,
                Err(e) => {
                    return error_page(t, Some(w), e.status(), "error-title", "api-not-found")
                }
            };
            return html(super::form::ConfirmPage {
                t,
                page: "products",
                title: t.with("groups-delete-title", &[("name", &name)]),
                text: t.get("groups-delete-text"),
                action: format!("/groups/{id}"),
                extra: vec![("op", "delete".into())],
                submit: t.get("groups-delete"),
                back: "/groups",
                who: Some(w),
            });
        }
        "delete" => {
            return match api::delete_group(st(), c(), Path(id)).await {
                Ok(_) => done("/groups", "group-deleted"),
                Err(e) => render(&s, w, id, None, Some(refusal(t, &e))).await,
            }
        }
        "add" => {
            let mut r = Ok("group-products-added");
            for serial in f.all("serial") {
                if let Err(e) = api::add_to_group(st(), c(), Path((id, serial))).await {
                    r = Err(e);
                    break;
                }
            }
            r
        }
        "remove" => api::remove_from_group(st(), c(), Path((id, f.get("serial"))))
            .await
            .map(|_| "group-product-removed"),
        "add_admin" => api::add_administrator(st(), c(), Path((id, f.get("user"))))
            .await
            .map(|_| "group-admin-added"),
        "remove_admin" => api::remove_administrator(st(), c(), Path((id, f.get("user"))))
            .await
            .map(|_| "group-admin-removed"),
        _ => Err(ApiError::bad_request("invalid_body", "no such change")),
    };
    match outcome {
        Ok(what) => done(&format!("/groups/{id}"), what),
        Err(e) => {
            let msg = refusal(t, &e);
            render(&s, w, id, None, Some(msg)).await
        }
    }
}
