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
#[derive(Clone, Debug)]
pub struct Mail {
    pub on: bool,
    pub public_url: Option<String>,
    /// How long an invitation's link works.
    pub invitation_ttl_ms: i64,
    /// How long a registration's confirmation link works.
    pub confirmation_ttl_ms: i64,
}

impl Default for Mail {
    /// Off; invitations last 7 days, confirmation links a day.
    fn default() -> Self {
        Mail {
            on: false,
            public_url: None,
            invitation_ttl_ms: 7 * 86_400_000,
            confirmation_ttl_ms: 86_400_000,
        }
    }
}

/// How long a reset link works.
pub const RESET_LINK_MS: i64 = 60 * 60_000;
/// Requests that send e-mail to an address someone types (a reset, a
/// registration) are limited per address and per client in this window.
pub const MAIL_REQUESTS_WINDOW_MS: i64 = 15 * 60_000;
pub const MAIL_REQUESTS_PER_ADDRESS: usize = 3;
pub const MAIL_REQUESTS_PER_CLIENT: usize = 10;

/// Counts a request against each `(key, limit)` over `window_ms`; 429
/// with Retry-After once one of them is spent.
pub(super) async fn rate_limit(
    s: &crate::store::Store,
    keys: &[(&str, usize)],
    window_ms: i64,
    what: &str,
) -> ApiResult<()> {
    let now = crate::store::now_ms();
    let since = now - window_ms;
    for (key, limit) in keys {
        let mut times = s.login_failures(key, since).await?;
        if times.len() >= *limit {
            times.sort_unstable();
            let oldest = times[times.len() - limit];
            let secs = ((oldest + window_ms - now).max(1000) + 999) / 1000;
            return Err(ApiError::too_many(
                "too_many_requests",
                format!("too many {what} requests: try again in {secs} s"),
                secs as u64,
            ));
        }
    }
    let all: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
    s.add_login_failure(&all, now, now - window_ms.max(15 * 60_000))
        .await?;
    Ok(())
}

/// The client's address as throttles key it.
pub(super) fn client_of(connect: Option<Extension<ConnectInfo<SocketAddr>>>) -> String {
    connect.map(|c| c.0 .0.ip().to_string()).unwrap_or_default()
}

/// An argon2id hash of a new password (checked for strength first), made
/// off the async runtime.
pub(super) async fn new_password_hash(password: String) -> ApiResult<String> {
    password::check_strength(&password).map_err(|m| ApiError::unprocessable("weak_password", m))?;
    let salt = crate::token::random_bytes::<16>().map_err(crate::store::StoreError::from)?;
    tokio::task::spawn_blocking(move || password::hash(&password, &salt))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ResetRequest {
    pub(super) email: String,
}

/// Sends a single-use reset link to the address when it is an active
/// user's; the answer is the same either way (no one learns who has an
/// account).
pub(super) async fn request_reset(
    State(s): S,
    Extension(mail): Extension<Mail>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Result<Json<ResetRequest>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let b = body?.0;
    if !mail.on {
        return Err(ApiError::conflict(
            "email_off",
            "this collector sends no e-mail ([email] smtp_url): an operator sets a password with `meterlink-collector user password ID`",
        ));
    }
    let email = b.email.trim().to_lowercase();
    let client = client_of(connect);
    rate_limit(
        &s,
        &[
            (&format!("reset:{email}"), MAIL_REQUESTS_PER_ADDRESS),
            (&format!("mail-client:{client}"), MAIL_REQUESTS_PER_CLIENT),
        ],
        MAIL_REQUESTS_WINDOW_MS,
        "password-reset",
    )
    .await?;
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
pub(super) struct ResetConfirm {
    pub(super) token: String,
    pub(super) new_password: String,
}

/// Spends the link and sets the new password; every session of the user ends.
pub(super) async fn confirm_reset(
    State(s): S,
    body: Result<Json<ResetConfirm>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let b = body?.0;
    // A weak password does not spend the link.
    let phc = new_password_hash(b.new_password).await?;
    let sha = crate::token::hash_secret(b.token.trim());
    let user = s.use_link(&sha, "reset", crate::store::now_ms()).await?;
    s.set_password(&user.id, &phc).await?;
    s.delete_sessions(&user.id, None).await?;
    tracing::info!(user = %user.id, "password reset through an e-mailed link");
    let actor = crate::model::Actor {
        kind: "person".into(),
        id: user.id.clone(),
    };
    let what =
        super::audit::Change::new("user", &user.id, "password_reset", user.account.as_deref());
    super::audit::record_as(&s, actor, None, what, None, None).await?;
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

pub(super) fn secure(cfg: &Sessions, headers: &HeaderMap) -> bool {
    cfg.secure
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

pub(super) fn set_cookie(secure: bool, value: &str, clear: bool) -> HeaderValue {
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
pub(super) struct Login {
    pub(super) email: String,
    pub(super) password: String,
    /// The current TOTP code, when the user has the second factor on.
    #[serde(default)]
    pub(super) totp: Option<String>,
    /// Or one of their recovery codes (each works once).
    #[serde(default)]
    pub(super) recovery_code: Option<String>,
}

/// Runs argon2 off the async runtime (invariant 6).
pub(super) async fn verify(password: String, phc: String) -> bool {
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
    let client = client_of(connect);
    let (user, cookie, csrf) = log_in(&s, &cfg, &client, &headers, b).await?;
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
    r.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(r)
}

/// Logs a person in, for the API and the web pages alike: the throttle,
/// the password (the same work for an unknown address), the user's state,
/// the second factor; then a new session. Answers the user, the
/// Set-Cookie value and the session's CSRF token.
pub(super) async fn log_in(
    s: &crate::store::Store,
    cfg: &Sessions,
    client: &str,
    headers: &HeaderMap,
    b: Login,
) -> ApiResult<(User, HeaderValue, String)> {
    let email = b.email.trim().to_lowercase();
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
    if user.totp {
        if let Err(e) = second_factor(s, &user, b.totp, b.recovery_code, now).await {
            if e.code() == "second_factor_wrong" {
                s.add_login_failure(&[&email_key, &client_key], now, since)
                    .await?;
            }
            return Err(e);
        }
    }
    s.clear_login_failures(&email_key).await?;
    // Never adopt a session id the client brought (fixation): a new one.
    if let Some(old) = cookie_session(headers) {
        s.delete_session(&crate::token::hash_secret(&old)).await?;
    }
    let (id, sha, csrf) =
        crate::token::generate_session().map_err(crate::store::StoreError::from)?;
    s.create_session(&user.id, &sha, &csrf, client, now).await?;
    tracing::info!(user = %user.id, %client, "logged in");
    let cookie = set_cookie(secure(cfg, headers), &id.0, false);
    Ok((user, cookie, csrf))
}

/// Checks the second factor after a right password: a TOTP code of the
/// window not used before, or an unused recovery code.
async fn second_factor(
    s: &crate::store::Store,
    user: &User,
    totp: Option<String>,
    recovery: Option<String>,
    now: i64,
) -> ApiResult<()> {
    let wrong = || {
        ApiError::unauthenticated(
            "second_factor_wrong",
            "the code is wrong, expired or used already: give the current code of your authenticator app, or a recovery code",
        )
    };
    if let Some(code) = recovery.filter(|c| !c.trim().is_empty()) {
        let sha = crate::token::hash_secret(&normal_recovery_code(&code));
        return if s.use_recovery_code(&user.id, &sha, now).await? {
            tracing::info!(user = %user.id, "logged in with a recovery code");
            Ok(())
        } else {
            Err(wrong())
        };
    }
    let Some(code) = totp.filter(|c| !c.trim().is_empty()) else {
        return Err(ApiError::unauthenticated(
            "second_factor_required",
            "this user logs in with a second factor: give `totp` (the authenticator app's code) or `recovery_code`",
        ));
    };
    let state = s.totp_state(&user.id).await?.ok_or_else(wrong)?;
    let secret = crate::auth::totp::decode_secret(&state.secret_b32).ok_or_else(wrong)?;
    let step =
        crate::auth::totp::verify(&secret, &code, now / 1000, state.last_step).ok_or_else(wrong)?;
    // Spent in the store too: two logins racing with one code, one wins.
    if s.totp_spend_step(&user.id, step).await? {
        Ok(())
    } else {
        Err(wrong())
    }
}

/// A recovery code as hashed: lower case, without spaces and dashes.
pub(super) fn normal_recovery_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
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
pub(super) struct PasswordChange {
    /// Not needed to set the first password.
    #[serde(default)]
    pub(super) current_password: Option<String>,
    pub(super) new_password: String,
}

/// A new password; every other session of the user ends.
pub(super) async fn change_password(
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
    let phc = new_password_hash(b.new_password).await?;
    s.set_password(&c.id, &phc).await?;
    let keep = session.map(|Extension(SessionId(sha))| sha);
    s.delete_sessions(&c.id, keep.as_deref()).await?;
    let what = super::audit::Change::new("user", &c.id, "password_changed", c.account.as_deref());
    super::audit::record::<(), ()>(&s, &c, what, None, None).await?;
    Ok(StatusCode::NO_CONTENT)
}
