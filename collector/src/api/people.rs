//! How people join. Invitations: an account manager invites a colleague
//! (`POST /api/v1/invitations`), who accepts with a password or declines
//! through the e-mailed link; resent or withdrawn while pending.
//! Registrations: anyone registers with serial numbers under contract and
//! confirms through the e-mailed link; an operator decides those that wait.

use super::audit::{record, record_as, Change};
use super::caller::Caller;
use super::error::{ApiError, ApiResult};
use super::sessions::{self, client_of, new_password_hash, rate_limit, Mail};
use super::{Routes, S};
use crate::auth::Action;
use crate::model::{
    Actor, LinkMail, NewInvitation, NewRegistration, Registration, RegistrationState, Role, User,
    UserState,
};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::SocketAddr;

/// Routes without a caller: answering an invitation, registering.
pub(super) fn public_routes() -> Routes {
    Routes::new()
        .route("/api/v1/invitations/accept", post(accept))
        .route("/api/v1/invitations/decline", post(decline))
        .route("/api/v1/registrations", post(register))
        .route("/api/v1/registrations/confirm", post(confirm))
}

pub(super) fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/invitations", post(invite))
        .route(
            "/api/v1/users/{id}/invitation",
            post(resend).delete(withdraw),
        )
        .route("/api/v1/registrations", get(registrations))
        .route("/api/v1/registrations/{id}/approve", post(approve))
        .route("/api/v1/registrations/{id}/reject", post(reject))
}

fn mail_on(mail: &Mail) -> ApiResult<()> {
    if mail.on {
        Ok(())
    } else {
        Err(ApiError::conflict(
            "email_off",
            "this collector sends no e-mail ([email] smtp_url), so no link can reach anyone: \
             configure SMTP, or create the user with `meterlink-collector user add`",
        ))
    }
}

/// A new link (its token for the message, its hash for the store).
fn new_link(mail: &Mail, ttl_ms: i64) -> ApiResult<LinkMail> {
    let (token, sha256, _) =
        crate::token::generate_session().map_err(crate::store::StoreError::from)?;
    let now_ms = crate::store::now_ms();
    Ok(LinkMail {
        token: token.0,
        sha256,
        base_url: mail.public_url.clone().unwrap_or_default(),
        now_ms,
        expires_at_ms: now_ms + ttl_ms,
    })
}

/// A random id with `prefix` (`u-`, `r-`).
fn new_id(prefix: &str) -> ApiResult<String> {
    let b = crate::token::random_bytes::<8>().map_err(crate::store::StoreError::from)?;
    Ok(format!(
        "{prefix}{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    ))
}

pub(super) async fn invite(
    State(s): S,
    c: Caller,
    Extension(mail): Extension<Mail>,
    body: Result<Json<NewInvitation>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<User>)> {
    c.need(Action::ManageUsers, "inviting colleagues")?;
    mail_on(&mail)?;
    let inv = body?.0;
    if inv.role == Role::Operator {
        return Err(ApiError::unprocessable(
            "invalid_user",
            "invite an account_manager or a product_administrator; operators are made with \
             `meterlink-collector user add`",
        ));
    }
    let account = inv
        .account
        .clone()
        .or_else(|| c.account.clone())
        .ok_or_else(|| ApiError::unprocessable("invalid_user", "name the colleague's account"))?;
    c.account_in_reach(&account)?;
    let name = format!("{} {}", inv.first_name.trim(), inv.last_name.trim());
    let mut u = User::new(&new_id("u-")?, name.trim(), inv.role, Some(&account));
    u.email = Some(inv.email.clone());
    u.first_name = inv.first_name.clone();
    u.last_name = inv.last_name.clone();
    u.companies = inv.companies.clone();
    u.state = UserState::Pending;
    u.language = inv.language.clone().unwrap_or_else(|| c.language.clone());
    if !c.may_write_user(&u) {
        return Err(ApiError::forbidden(
            &c,
            "a colleague who sees more companies than you do",
        ));
    }
    if name.trim().is_empty() {
        return Err(ApiError::unprocessable(
            "invalid_user",
            "give the colleague's first and last name",
        ));
    }
    let link = new_link(&mail, mail.invitation_ttl_ms)?;
    let u = s.invite(&u, &inv, &c.name, &link).await?;
    tracing::info!(user = %u.id, by = %c.id, role = u.role.as_str(), "invited");
    let what = Change::new("user", &u.id, "invited", u.account.as_deref());
    record(
        &s,
        &c,
        what,
        None::<&()>,
        Some(&json!({"user": u, "invitation": inv})),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(u)))
}

/// A pending user the caller manages.
async fn pending(s: &crate::store::Store, c: &Caller, id: &str) -> ApiResult<User> {
    c.need(Action::ManageUsers, "invitations")?;
    let u = c.user(s, id).await?;
    if !c.may_write_user(&u) {
        return Err(ApiError::forbidden(c, "this user's invitation"));
    }
    if u.state != UserState::Pending {
        return Err(ApiError::conflict(
            "not_pending",
            format!(
                "user {id:?} is {}: only an unanswered invitation is resent or withdrawn",
                u.state.as_str()
            ),
        ));
    }
    Ok(u)
}

pub(super) async fn resend(
    State(s): S,
    c: Caller,
    Extension(mail): Extension<Mail>,
    Path(id): Path<String>,
) -> ApiResult<Json<User>> {
    mail_on(&mail)?;
    let u = pending(&s, &c, &id).await?;
    let link = new_link(&mail, mail.invitation_ttl_ms)?;
    let u = s.resend_invitation(&u.id, &c.name, &link).await?;
    let what = Change::new("user", &u.id, "invitation_resent", u.account.as_deref());
    record::<(), ()>(&s, &c, what, None, None).await?;
    Ok(Json(u))
}

pub(super) async fn withdraw(
    State(s): S,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let u = pending(&s, &c, &id).await?;
    s.delete_user(&u.id).await?;
    let what = Change::new("user", &u.id, "invitation_withdrawn", u.account.as_deref());
    record::<_, ()>(&s, &c, what, Some(&u), None).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Accept {
    pub(super) token: String,
    pub(super) password: String,
}

pub(super) async fn accept(
    State(s): S,
    body: Result<Json<Accept>, JsonRejection>,
) -> ApiResult<Json<User>> {
    let b = body?.0;
    // A weak password does not spend the link.
    let phc = new_password_hash(b.password).await?;
    let sha = crate::token::hash_secret(b.token.trim());
    let u = s
        .accept_invitation(&sha, &phc, crate::store::now_ms())
        .await?;
    tracing::info!(user = %u.id, "invitation accepted");
    let what = Change::new("user", &u.id, "invitation_accepted", u.account.as_deref());
    record_as(
        &s,
        person(&u),
        None,
        what,
        None,
        serde_json::to_value(&u).ok(),
    )
    .await?;
    Ok(Json(u))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Decline {
    pub(super) token: String,
}

pub(super) async fn decline(
    State(s): S,
    body: Result<Json<Decline>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let b = body?.0;
    let sha = crate::token::hash_secret(b.token.trim());
    let u = s.decline_invitation(&sha, crate::store::now_ms()).await?;
    tracing::info!(user = %u.id, "invitation declined");
    let what = Change::new("user", &u.id, "invitation_declined", u.account.as_deref());
    record_as(&s, person(&u), None, what, None, None).await?;
    Ok(Json(json!({"state": u.state})))
}

fn person(u: &User) -> Actor {
    Actor {
        kind: "person".into(),
        id: u.id.clone(),
    }
}

pub(super) async fn register(
    State(s): S,
    Extension(mail): Extension<Mail>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Result<Json<NewRegistration>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    mail_on(&mail)?;
    let r = body?.0;
    let email = r.email.trim().to_lowercase();
    let client = client_of(connect);
    rate_limit(
        &s,
        &[
            (
                &format!("register:{email}"),
                sessions::MAIL_REQUESTS_PER_ADDRESS,
            ),
            (
                &format!("mail-client:{client}"),
                sessions::MAIL_REQUESTS_PER_CLIENT,
            ),
        ],
        sessions::MAIL_REQUESTS_WINDOW_MS,
        "registration",
    )
    .await?;
    let id = new_id("r-")?;
    let link = new_link(&mail, mail.confirmation_ttl_ms)?;
    if s.register(&id, &r, &link).await? {
        let what = Change::new("registration", &id, "registered", None);
        let actor = Actor {
            kind: "anonymous".into(),
            id: email.clone(),
        };
        record_as(&s, actor, None, what, None, serde_json::to_value(&r).ok()).await?;
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(
            json!({"message": "a link to complete the registration is on its way to the address"}),
        ),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Confirm {
    pub(super) token: String,
    pub(super) password: String,
}

pub(super) async fn confirm(
    State(s): S,
    body: Result<Json<Confirm>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let b = body?.0;
    let phc = new_password_hash(b.password).await?;
    let sha = crate::token::hash_secret(b.token.trim());
    let done = s
        .confirm_registration(&sha, &phc, crate::store::now_ms())
        .await?;
    let r = &done.registration;
    let actor = Actor {
        kind: "anonymous".into(),
        id: r.email.clone(),
    };
    let action = if done.user.is_some() {
        "confirmed_and_approved"
    } else {
        "confirmed_and_queued"
    };
    let what = Change::new("registration", &r.id, action, r.account.as_deref());
    record_as(
        &s,
        actor,
        None,
        what,
        None,
        serde_json::to_value(&done).ok(),
    )
    .await?;
    tracing::info!(registration = %r.id, state = r.state.as_str(), "registration confirmed");
    Ok(Json(json!({
        "state": r.state,
        "user": done.user,
        "message": match done.user {
            Some(_) => "registered: log in with your address and password",
            None => "confirmed: an operator checks the registration, and you hear by e-mail",
        },
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistrationFilter {
    state: Option<RegistrationState>,
}

async fn registrations(
    State(s): S,
    c: Caller,
    q: Result<Query<RegistrationFilter>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    c.need(Action::ManageAccounts, "the registration queue")?;
    let r = s.registrations(q?.0.state).await?;
    Ok(Json(json!({"registrations": r})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Approve {
    /// The company the registrant becomes account manager of.
    pub(super) account: String,
}

pub(super) async fn approve(
    State(s): S,
    c: Caller,
    Extension(mail): Extension<Mail>,
    Path(id): Path<String>,
    body: Result<Json<Approve>, JsonRejection>,
) -> ApiResult<Json<Registration>> {
    c.need(Action::ManageAccounts, "deciding registrations")?;
    let b = body?.0;
    decide(&s, &c, &mail, &id, Some(&b.account)).await
}

pub(super) async fn reject(
    State(s): S,
    c: Caller,
    Extension(mail): Extension<Mail>,
    Path(id): Path<String>,
) -> ApiResult<Json<Registration>> {
    c.need(Action::ManageAccounts, "deciding registrations")?;
    decide(&s, &c, &mail, &id, None).await
}

async fn decide(
    s: &crate::store::Store,
    c: &Caller,
    mail: &Mail,
    id: &str,
    account: Option<&str>,
) -> ApiResult<Json<Registration>> {
    let login = mail
        .public_url
        .as_ref()
        .map(|u| format!("{}/login", u.trim_end_matches('/')));
    let r = s
        .decide_registration(id, account, &c.id, login.as_deref(), crate::store::now_ms())
        .await?;
    let action = if account.is_some() {
        "approved"
    } else {
        "rejected"
    };
    let what = Change::new("registration", id, action, r.account.as_deref());
    record::<(), _>(s, c, what, None, Some(&r)).await?;
    Ok(Json(r))
}
