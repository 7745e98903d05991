//! People logging in: `POST /api/v1/sessions` (e-mail and password) sets a
//! session cookie (HttpOnly, SameSite=Lax, Secure behind TLS, a new id at
//! every login) and answers the CSRF token that cookie-authenticated writes
//! carry in `X-CSRF-Token`; log out here or everywhere; change the password.
//! Failed logins are throttled per e-mail address and per client address;
//! an unknown address gets the same answer, after the same work, as a wrong
//! password.

use super::caller::{Caller, SessionId};
use super::error::{ApiError, ApiResult};
use super::{Routes, S};
use crate::auth::password::{self, Sessions};
use crate::model::{User, UserState};
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post, put};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;

/// The cookie's name: with the `__Host-` prefix when Secure (the browser
/// then refuses it from anything but this host over TLS).
pub const COOKIE: &str = "meterlink_session";
pub const SECURE_COOKIE: &str = "__Host-meterlink_session";
/// The header a cookie-authenticated write carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Routes without a caller: logging in, resetting a forgotten password.
pub(super) fn public_routes() -> Routes {
    Routes::new()
        .route("/api/v1/sessions", post(login))
        .route("/api/v1/password-reset", post(request_reset))
        .route("/api/v1/password-reset/confirm", post(confirm_reset))
}

/// Whether e-mails go out, and where the portal is reached (links).
#[derive(Clone, Debug, Default)]
pub struct Mail {
    pub on: bool,
    pub public_url: Option<String>,
}

/// How long a reset link works.
pub const RESET_LINK_MS: i64 = 60 * 60_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetRequest {
    email: String,
}

/// Sends a single-use reset link to the address when it is an active
/// user's; the answer is the same either way (no one learns who has an
/// account).
async fn request_reset(
    State(s): S,
    Extension(mail): Extension<Mail>,
    body: Result<Json<ResetRequest>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let b = body?.0;
    if !mail.on {
        return Err(ApiError::conflict(
            "email_off",
            "this collector sends no e-mail ([email] smtp_url): an operator sets a password with `meterlink-collector user password ID`",
        ));
    }
    let (token, sha, _) =
        crate::token::generate_session().map_err(crate::store::StoreError::from)?;
    let link = match &mail.public_url {
        Some(base) => format!(
            "{}/reset-password?token={}",
            base.trim_end_matches('/'),
            token.0
        ),
        None => format!("reset token: {}", token.0),
    };
    let now = crate::store::now_ms();
    s.request_password_reset(&b.email, &sha, &link, now, now + RESET_LINK_MS)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(
            json!({"message": "if the address is an active user's, a link to choose a new password is on its way"}),
        ),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetConfirm {
    token: String,
    new_password: String,
}

/// Spends the link and sets the new password; every session of the user ends.
async fn confirm_reset(
    State(s): S,
    body: Result<Json<ResetConfirm>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let b = body?.0;
    // A weak password does not spend the link.
    password::check_strength(&b.new_password)
        .map_err(|m| ApiError::unprocessable("weak_password", m))?;
    let sha = crate::token::hash_secret(b.token.trim());
    let user = s.use_link(&sha, "reset", crate::store::now_ms()).await?;
    let salt = crate::token::random_bytes::<16>().map_err(crate::store::StoreError::from)?;
    let new = b.new_password;
    let phc = tokio::task::spawn_blocking(move || password::hash(&new, &salt))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    s.set_password(&user.id, &phc).await?;
    s.delete_sessions(&user.id, None).await?;
    tracing::info!(user = %user.id, "password reset through an e-mailed link");
    Ok(StatusCode::NO_CONTENT)
}

pub(super) fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/sessions", delete(logout_everywhere))
        .route("/api/v1/sessions/current", delete(logout))
        .route("/api/v1/me/password", put(change_password))
}

/// The session id a request's cookies carry, if any.
pub(crate) fn cookie_session(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE || *name == SECURE_COOKIE)
        .map(|(_, value)| value.trim().to_string())
}

fn secure(cfg: &Sessions, headers: &HeaderMap) -> bool {
    cfg.secure
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn set_cookie(secure: bool, value: &str, clear: bool) -> HeaderValue {
    let name = if secure { SECURE_COOKIE } else { COOKIE };
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if secure {
        c.push_str("; Secure");
    }
    if clear {
        c.push_str("; Max-Age=0");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    email: String,
    password: String,
}

/// Runs argon2 off the async runtime (invariant 6).
async fn verify(password: String, phc: String) -> bool {
    tokio::task::spawn_blocking(move || password::verify(&password, &phc))
        .await
        .unwrap_or(false)
}

async fn login(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Result<Json<Login>, JsonRejection>,
) -> ApiResult<Response> {
    let b = body?.0;
    let email = b.email.trim().to_lowercase();
    let client = connect.map(|c| c.0 .0.ip().to_string()).unwrap_or_default();
    let now = crate::store::now_ms();
    let since = now - cfg.throttle.window_ms;
    let (email_key, client_key) = (format!("email:{email}"), format!("client:{client}"));
    let by_email = s.login_failures(&email_key, since).await?;
    let by_client = s.login_failures(&client_key, since).await?;
    if let Some(wait) = cfg.throttle.wait_ms(&by_email, &by_client, now) {
        let secs = (wait + 999) / 1000;
        return Err(ApiError::too_many(
            "too_many_attempts",
            format!("too many failed logins: try again in {secs} s, or reset the password"),
            secs as u64,
        ));
    }
    let found = s.login_user(&email).await?;
    let (user, phc) = match found {
        Some((u, Some(h))) => (Some(u), h),
        // Unknown, or no password yet: the same work and the same answer.
        _ => (None, password::decoy().to_string()),
    };
    let good = verify(b.password, phc).await;
    let Some(user) = user.filter(|_| good) else {
        s.add_login_failure(&[&email_key, &client_key], now, since)
            .await?;
        tracing::info!(%client, "failed login");
        return Err(ApiError::unauthenticated(
            "invalid_credentials",
            "the e-mail address or the password is wrong",
        ));
    };
    if user.state != UserState::Active {
        return Err(not_active(&user));
    }
    s.clear_login_failures(&email_key).await?;
    // Never adopt a session id the client brought (fixation): a new one.
    if let Some(old) = cookie_session(&headers) {
        s.delete_session(&crate::token::hash_secret(&old)).await?;
    }
    let (id, sha, csrf) =
        crate::token::generate_session().map_err(crate::store::StoreError::from)?;
    s.create_session(&user.id, &sha, &csrf, &client, now)
        .await?;
    tracing::info!(user = %user.id, %client, "logged in");
    let mut r = (
        StatusCode::CREATED,
        Json(json!({
            "user": user,
            "csrf_token": csrf,
            "idle_timeout_secs": cfg.idle_ms / 1000,
            "absolute_timeout_secs": cfg.absolute_ms / 1000,
        })),
    )
        .into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(secure(&cfg, &headers), &id.0, false),
    );
    Ok(r)
}

/// 403 for a user who may not use the portal now.
pub(crate) fn not_active(u: &User) -> ApiError {
    let why = match u.state {
        UserState::Suspended => "is suspended: an account manager or an operator reinstates it",
        UserState::Pending => "has not accepted its invitation yet",
        UserState::Refused => "declined its invitation",
        UserState::Active => "is active",
    };
    ApiError::new(
        StatusCode::FORBIDDEN,
        "user_not_active",
        format!("the user {} {why}", u.id),
    )
}

async fn logout(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    session: Option<Extension<SessionId>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Some(Extension(SessionId(sha))) = session {
        s.delete_session(&sha).await?;
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(secure(&cfg, &headers), "", true),
    );
    Ok(r)
}

async fn logout_everywhere(State(s): S, c: Caller) -> ApiResult<Json<serde_json::Value>> {
    let n = s.delete_sessions(&c.id, None).await?;
    Ok(Json(json!({"sessions_ended": n})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    /// Not needed to set the first password.
    #[serde(default)]
    current_password: Option<String>,
    new_password: String,
}

/// A new password; every other session of the user ends.
async fn change_password(
    State(s): S,
    c: Caller,
    session: Option<Extension<SessionId>>,
    body: Result<Json<PasswordChange>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let b = body?.0;
    if let Some(phc) = s.password_hash(&c.id).await? {
        let given = b.current_password.unwrap_or_default();
        if !verify(given, phc).await {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "wrong_password",
                "current_password is not the user's password",
            ));
        }
    }
    password::check_strength(&b.new_password)
        .map_err(|m| ApiError::unprocessable("weak_password", m))?;
    let salt = crate::token::random_bytes::<16>().map_err(crate::store::StoreError::from)?;
    let new = b.new_password;
    let phc = tokio::task::spawn_blocking(move || password::hash(&new, &salt))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    s.set_password(&c.id, &phc).await?;
    let keep = session.map(|Extension(SessionId(sha))| sha);
    s.delete_sessions(&c.id, keep.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}
