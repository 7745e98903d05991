//! Editing a product: its alternative name and location on site (anyone
//! who sees it), the location address (another of the company's known
//! addresses, or a new one) and its Product Administrators (Account
//! Managers). Runs the API's update as the person.

use super::form::{caller, done, person, post, refusal, state};
use super::i18n::{self, Texts};
use super::products::visible;
use super::{display_name, html, Who};
use crate::api::{products as api, S};
use crate::auth::password::Sessions;
use crate::model::{url_part, Product, ProductQuery, ProductUpdate, Role, UserQuery, UserState};
use crate::store::Store;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::{Extension, Json};

/// How many of the company's products are read for their addresses.
const ADDRESS_SOURCES: u32 = 500;

struct Admin {
    id: String,
    name: String,
    checked: bool,
}

#[derive(Template)]
#[template(path = "product_edit.html")]
struct EditPage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    p: Product,
    alt_name: String,
    site_address: String,
    location: String,
    addresses: Vec<String>,
    may_move: bool,
    admins: Vec<Admin>,
    error: Option<String>,
}

fn value(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

async fn form(
    s: &Store,
    w: Who,
    p: Product,
    typed: Option<(String, String, String, Vec<String>)>,
    error: Option<String>,
) -> Response {
    let t = i18n::texts(&w.user.language);
    let manager = w.user.role != Role::ProductAdministrator;
    let mut addresses: Vec<String> = Vec::new();
    let mut admins = Vec::new();
    if manager {
        let q = ProductQuery {
            accounts: p.account.clone().map(|a| vec![a]),
            limit: Some(ADDRESS_SOURCES),
            ..ProductQuery::default()
        };
        if let Ok(found) = s.product_page(&q).await {
            for a in found.items.into_iter().filter_map(|x| x.site_address) {
                if !a.is_empty() && !addresses.contains(&a) {
                    addresses.push(a);
                }
            }
            addresses.sort();
        }
        let uq = UserQuery {
            account: None,
            surname: None,
            state: Some(UserState::Active),
        };
        let checked = match &typed {
            Some((_, _, _, ids)) => ids.clone(),
            None => p.administrators.clone(),
        };
        if let Ok(people) = crate::api::users::list(s, &caller(&w), uq).await {
            admins = people
                .iter()
                .filter(|u| u.role == Role::ProductAdministrator && w.user.sees_user(u))
                .map(|u| Admin {
                    id: u.id.clone(),
                    name: display_name(u),
                    checked: checked.contains(&u.id),
                })
                .collect();
        }
    }
    let (alt_name, site_address, location) = match typed {
        Some((a, s, l, _)) => (a, s, l),
        None => (
            value(&p.alt_name),
            value(&p.site_address),
            value(&p.location),
        ),
    };
    html(EditPage {
        t,
        who: Some(w),
        page: "products",
        p,
        alt_name,
        site_address,
        location,
        addresses,
        may_move: manager,
        admins,
        error,
    })
}

pub(super) async fn page(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    Path(serial): Path<String>,
) -> Response {
    let w = match person(&s, &cfg, &headers, false).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    match visible(&s, w, &serial).await {
        Ok((w, p)) => form(&s, w, p, None, None).await,
        Err(r) => r,
    }
}

pub(super) async fn save(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    Path(serial): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let (w, t, f) = match post(&s, &cfg, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let manager = w.user.role != Role::ProductAdministrator;
    let typed = (
        f.get("alt_name").trim().to_string(),
        f.get("site_address").trim().to_string(),
        f.get("location").trim().to_string(),
        f.all("administrator"),
    );
    // Only what this person may change is sent; an Account Manager's
    // check boxes replace the administrators given directly.
    let u = ProductUpdate {
        alt_name: Some(typed.0.clone()),
        location: Some(typed.2.clone()),
        site_address: manager.then(|| typed.1.clone()),
        administrators: (manager && f.get("admins_shown") == "1").then(|| typed.3.clone()),
        ..ProductUpdate::default()
    };
    match api::update_product(state(&s), caller(&w), Path(serial.clone()), Ok(Json(u))).await {
        Ok(_) => done(&format!("/products/{}", url_part(&serial)), "product-saved"),
        Err(e) => {
            let e = refusal(t, &e);
            match visible(&s, w, &serial).await {
                Ok((w, p)) => form(&s, w, p, Some(typed), Some(e)).await,
                Err(r) => r,
            }
        }
    }
}
