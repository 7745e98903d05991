//! Groups of an account's products.

use super::audit::{record, Change};
use super::caller::Caller;
use super::error::ApiResult;
use super::{AccountFilter, Routes, S};
use crate::auth::Action;
use crate::model::{Group, Role};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, patch, put};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

pub(super) fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/groups", get(groups).post(create_group))
        .route(
            "/api/v1/groups/{id}",
            patch(rename_group).delete(delete_group),
        )
        .route(
            "/api/v1/groups/{id}/products/{serial}",
            put(add_to_group).delete(remove_from_group),
        )
        .route(
            "/api/v1/groups/{id}/administrators/{user}",
            put(add_administrator).delete(remove_administrator),
        )
}

async fn groups(
    State(s): S,
    c: Caller,
    q: Result<Query<AccountFilter>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let g = list(&s, &c, q?.0.account).await?;
    Ok(Json(json!({"groups": g})))
}

/// The groups the caller sees (of one company, when asked).
pub(super) async fn list(
    s: &crate::store::Store,
    c: &Caller,
    account: Option<String>,
) -> ApiResult<Vec<Group>> {
    c.need(Action::ManageGroups, "groups")?;
    let accounts = c.scoped_accounts(account)?;
    let mut g = s.groups(accounts.as_deref()).await?;
    g.retain(|g| c.sees_group(g));
    Ok(g)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewGroup {
    pub(super) account: String,
    pub(super) name: String,
}

pub(super) async fn create_group(
    State(s): S,
    c: Caller,
    body: Result<Json<NewGroup>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Group>)> {
    c.need(Action::ManageGroups, "groups")?;
    let g = body?.0;
    c.account_in_reach(&g.account)?;
    // A product administrator's group is their own.
    let by = (c.role == Role::ProductAdministrator).then_some(c.id.as_str());
    let g = s.create_group(&g.account, &g.name, by).await?;
    let gid = g.id.to_string();
    let what = Change::new("group", &gid, "created", Some(&g.account));
    record::<(), _>(&s, &c, what, None, Some(&g)).await?;
    Ok((StatusCode::CREATED, Json(g)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Rename {
    pub(super) name: String,
}

pub(super) async fn rename_group(
    State(s): S,
    c: Caller,
    Path(id): Path<i64>,
    body: Result<Json<Rename>, JsonRejection>,
) -> ApiResult<Json<Group>> {
    let before = c.group(&s, id).await?;
    let r = body?.0;
    let after = s.rename_group(id, &r.name).await?;
    changed(&s, &c, "renamed", &before, Some(&after)).await?;
    Ok(Json(after))
}

pub(super) async fn delete_group(
    State(s): S,
    c: Caller,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let before = c.group(&s, id).await?;
    s.delete_group(id).await?;
    changed(&s, &c, "deleted", &before, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn changed(
    s: &crate::store::Store,
    c: &Caller,
    action: &str,
    before: &Group,
    after: Option<&Group>,
) -> ApiResult<()> {
    let id = before.id.to_string();
    let what = Change::new("group", &id, action, Some(&before.account));
    record(s, c, what, Some(before), after).await
}

pub(super) async fn add_to_group(
    State(s): S,
    c: Caller,
    Path((id, serial)): Path<(i64, String)>,
) -> ApiResult<Json<Group>> {
    let before = c.group(&s, id).await?;
    // A product administrator's group holds only products they administer.
    c.product(&s, &serial).await?;
    let after = s.group_member(id, &serial, true).await?;
    changed(&s, &c, "product_added", &before, Some(&after)).await?;
    Ok(Json(after))
}

pub(super) async fn remove_from_group(
    State(s): S,
    c: Caller,
    Path((id, serial)): Path<(i64, String)>,
) -> ApiResult<Json<Group>> {
    let before = c.group(&s, id).await?;
    let after = s.group_member(id, &serial, false).await?;
    changed(&s, &c, "product_removed", &before, Some(&after)).await?;
    Ok(Json(after))
}

/// Names a product administrator of every product in the group (account
/// managers and operators), or no longer.
pub(super) async fn add_administrator(
    State(s): S,
    c: Caller,
    Path((id, user)): Path<(i64, String)>,
) -> ApiResult<Json<Group>> {
    set_administrator(&s, &c, id, &user, true).await
}

pub(super) async fn remove_administrator(
    State(s): S,
    c: Caller,
    Path((id, user)): Path<(i64, String)>,
) -> ApiResult<Json<Group>> {
    set_administrator(&s, &c, id, &user, false).await
}

async fn set_administrator(
    s: &crate::store::Store,
    c: &Caller,
    id: i64,
    user: &str,
    add: bool,
) -> ApiResult<Json<Group>> {
    c.need(
        Action::AssignAdministrators,
        "naming product administrators",
    )?;
    let before = c.group(s, id).await?;
    if add {
        c.user(s, user).await?;
    }
    let after = s.group_administrator(id, user, add).await?;
    let action = if add {
        "administrator_added"
    } else {
        "administrator_removed"
    };
    changed(s, c, action, &before, Some(&after)).await?;
    Ok(Json(after))
}
