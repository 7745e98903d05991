//! Users, their API tokens, and `/me`.

use super::audit::{record, Change};
use super::caller::Caller;
use super::error::{ApiError, ApiResult};
use super::{Routes, S};
use crate::auth::Action;
use crate::model::{IssuedToken, User, UserQuery};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

pub(super) fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/me", get(me))
        .route("/api/v1/users", get(users))
        .route(
            "/api/v1/users/{id}",
            get(user).put(put_user).delete(delete_user),
        )
        .route("/api/v1/users/{id}/suspend", post(suspend))
        .route("/api/v1/users/{id}/reinstate", post(reinstate))
        .route("/api/v1/users/{id}/tokens", get(tokens).post(issue_token))
        .route("/api/v1/users/{id}/tokens/{token}", delete(revoke_token))
}

/// No access for now: the user's sessions and tokens are refused until
/// reinstated (they are kept, so they work again then).
pub(super) async fn suspend(
    State(s): S,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<User>> {
    set_state(&s, &c, &id, crate::model::UserState::Suspended).await
}

pub(super) async fn reinstate(
    State(s): S,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<User>> {
    set_state(&s, &c, &id, crate::model::UserState::Active).await
}

async fn set_state(
    s: &crate::store::Store,
    c: &Caller,
    id: &str,
    state: crate::model::UserState,
) -> ApiResult<Json<User>> {
    c.need(Action::ManageUsers, "suspending and reinstating users")?;
    let u = c.user(s, id).await?;
    if !c.may_write_user(&u) {
        return Err(ApiError::forbidden(c, "changing this user"));
    }
    if u.id == c.id {
        return Err(ApiError::self_lockout("suspending yourself"));
    }
    let before = u;
    let u = s.set_user_state(id, state).await?;
    tracing::info!(user = %id, state = state.as_str(), by = %c.id, "user state changed");
    let action = match state {
        crate::model::UserState::Suspended => "suspended",
        _ => "reinstated",
    };
    let what = Change::new("user", id, action, u.account.as_deref());
    record(s, c, what, Some(&before), Some(&u)).await?;
    Ok(Json(u))
}

async fn me(c: Caller) -> Json<User> {
    Json(c.0)
}

async fn users(
    State(s): S,
    c: Caller,
    q: Result<Query<UserQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let u = list(&s, &c, q?.0).await?;
    Ok(Json(json!({"users": u})))
}

/// The users the caller manages that `q` asks for.
pub(super) async fn list(
    s: &crate::store::Store,
    c: &Caller,
    mut q: UserQuery,
) -> ApiResult<Vec<User>> {
    c.need(Action::ManageUsers, "listing users")?;
    let accounts = c.scoped_accounts(q.account.take())?;
    let mut u = s.users(accounts.as_deref(), &q).await?;
    u.retain(|u| c.sees_user(u));
    Ok(u)
}

async fn user(State(s): S, c: Caller, Path(id): Path<String>) -> ApiResult<Json<User>> {
    Ok(Json(c.user(&s, &id).await?))
}

async fn put_user(
    State(s): S,
    c: Caller,
    Path(id): Path<String>,
    body: Result<Json<User>, JsonRejection>,
) -> ApiResult<Json<User>> {
    c.need(Action::ManageUsers, "creating or changing users")?;
    let u = body?.0;
    if u.id != id {
        return Err(ApiError::id_mismatch(&u.id, &id));
    }
    if !c.may_write_user(&u) {
        return Err(ApiError::forbidden(
            &c,
            "a user of another account, or an operator",
        ));
    }
    if u.id == c.id && (u.role != c.role || u.account != c.account) {
        return Err(ApiError::self_lockout("changing your own role or account"));
    }
    if u.id == c.id && u.state != crate::model::UserState::Active {
        return Err(ApiError::self_lockout("suspending yourself"));
    }
    let before = s.user(&id).await?;
    if let Some(was) = &before {
        if !c.may_write_user(was) {
            return Err(ApiError::conflict(
                "user_id_taken",
                format!("user id {id:?} is taken: choose another"),
            ));
        }
    }
    let after = s.put_user_within(&u, c.confined_to()).await?;
    let what = Change::new("user", &id, "put", after.account.as_deref());
    record(&s, &c, what, before.as_ref(), Some(&after)).await?;
    Ok(Json(after))
}

pub(super) async fn delete_user(
    State(s): S,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    c.need(Action::ManageUsers, "removing users")?;
    let u = c.user(&s, &id).await?;
    if !c.may_write_user(&u) {
        return Err(ApiError::forbidden(&c, "removing this user"));
    }
    if u.id == c.id {
        return Err(ApiError::self_lockout("removing yourself"));
    }
    s.delete_user(&id).await?;
    let what = Change::new("user", &id, "removed", u.account.as_deref());
    record::<_, ()>(&s, &c, what, Some(&u), None).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn tokens(State(s): S, c: Caller, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    c.token_owner(&s, &id).await?;
    let t = s.tokens(&id).await?;
    Ok(Json(json!({"tokens": t})))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewToken {
    #[serde(default)]
    label: String,
    /// Days until it expires; without it the token lasts until revoked.
    #[serde(default)]
    expires_in_days: Option<u32>,
}

async fn issue_token(
    State(s): S,
    c: Caller,
    Path(id): Path<String>,
    body: Result<Json<NewToken>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<IssuedToken>)> {
    let owner = c.token_owner(&s, &id).await?;
    let t = body?.0;
    if t.label.len() > 200 {
        return Err(ApiError::unprocessable(
            "invalid_label",
            "a token label is at most 200 bytes",
        ));
    }
    if t.expires_in_days == Some(0) {
        return Err(ApiError::unprocessable(
            "invalid_expiry",
            "expires_in_days is at least 1; leave it out for a token that lasts until revoked",
        ));
    }
    let now = crate::store::now_ms();
    let expires = t.expires_in_days.map(|d| now + i64::from(d) * 86_400_000);
    let t = s.issue_token(&id, &t.label, expires, now).await?;
    // The token's info, never its text.
    let what = Change::new("api_token", &t.info.id, "issued", owner.account.as_deref());
    record::<(), _>(&s, &c, what, None, Some(&t.info)).await?;
    Ok((StatusCode::CREATED, Json(t)))
}

async fn revoke_token(
    State(s): S,
    c: Caller,
    Path((id, token)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let owner = c.token_owner(&s, &id).await?;
    s.revoke_token(&id, &token).await?;
    let what = Change::new("api_token", &token, "revoked", owner.account.as_deref());
    record::<(), ()>(&s, &c, what, None, None).await?;
    Ok(StatusCode::NO_CONTENT)
}
