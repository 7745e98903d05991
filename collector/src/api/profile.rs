//! A person's own profile: personal data and language (`PATCH /api/v1/me`),
//! which events they are told of by e-mail, and the TOTP second factor
//! with its recovery codes.

use super::audit::{record, Change};
use super::caller::Caller;
use super::error::{ApiError, ApiResult};
use super::sessions::normal_recovery_code;
use super::{Routes, S};
use crate::auth::totp;
use crate::model::{NotificationSetting, ProfileUpdate, User, NOTIFICATION_EVENTS};
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// Recovery codes made when the second factor is turned on.
pub const RECOVERY_CODES: usize = 10;

pub(super) fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/me", axum::routing::patch(update_profile))
        .route(
            "/api/v1/me/notifications",
            get(notifications).put(set_notifications),
        )
        .route("/api/v1/me/totp", post(totp_begin).delete(totp_off))
        .route("/api/v1/me/totp/confirm", post(totp_confirm))
}

pub(super) async fn update_profile(
    State(s): S,
    c: Caller,
    body: Result<Json<ProfileUpdate>, JsonRejection>,
) -> ApiResult<Json<User>> {
    let p = body?.0;
    let before = c.0.clone();
    let after = s.update_profile(&c.id, &p).await?;
    let what = Change::new("user", &c.id, "profile_changed", c.account.as_deref());
    record(&s, &c, what, Some(&before), Some(&after)).await?;
    Ok(Json(after))
}

async fn notifications(State(s): S, c: Caller) -> ApiResult<Json<Value>> {
    let settings = s.notification_settings(&c.id).await?;
    Ok(Json(
        json!({"events": NOTIFICATION_EVENTS, "settings": settings}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Settings {
    pub(super) settings: Vec<NotificationSetting>,
}

pub(super) async fn set_notifications(
    State(s): S,
    c: Caller,
    body: Result<Json<Settings>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let b = body?.0;
    // Each product named is one the caller sees (404 otherwise).
    let mut named: Vec<String> = Vec::new();
    for serial in b.settings.iter().flat_map(|s| &s.products) {
        named.push(c.product(&s, serial).await?.serial);
    }
    let before = s.notification_settings(&c.id).await?;
    let after = s.set_notification_settings(&c, &b.settings, &named).await?;
    let what = Change::new("user", &c.id, "notifications_changed", c.account.as_deref());
    record(&s, &c, what, Some(&before), Some(&after)).await?;
    Ok(Json(
        json!({"events": NOTIFICATION_EVENTS, "settings": after}),
    ))
}

/// A new secret for the authenticator app; the second factor is on once a
/// code from it is confirmed.
pub(super) async fn totp_begin(State(s): S, c: Caller) -> ApiResult<(StatusCode, Json<Value>)> {
    let secret = crate::token::random_bytes::<20>().map_err(crate::store::StoreError::from)?;
    let b32 = totp::encode_secret(&secret);
    s.totp_begin(&c.id, &b32).await?;
    let label = c.email.clone().unwrap_or_else(|| c.id.clone());
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "secret": b32,
            "otpauth_uri": totp::uri(&b32, &label, "meterlink"),
            "step_secs": totp::STEP_SECS,
            "digits": totp::DIGITS,
        })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Code {
    pub(super) code: String,
}

/// Turns the second factor on with a right code; answers the recovery
/// codes (shown this once; only their hashes are kept).
pub(super) async fn totp_confirm(
    State(s): S,
    c: Caller,
    body: Result<Json<Code>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let b = body?.0;
    let not_started = || {
        ApiError::conflict(
            "totp_not_started",
            "start with POST /api/v1/me/totp (or the second factor is on already)",
        )
    };
    let state = s.totp_state(&c.id).await?.ok_or_else(not_started)?;
    if state.enabled {
        return Err(not_started());
    }
    let secret = totp::decode_secret(&state.secret_b32).ok_or_else(not_started)?;
    let step = totp::verify(
        &secret,
        &b.code,
        crate::store::now_ms() / 1000,
        state.last_step,
    )
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "code_invalid",
            "the code is wrong or expired: give the one the app shows now",
        )
    })?;
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let raw = crate::token::random_bytes::<7>().map_err(crate::store::StoreError::from)?;
        let text = totp::encode_secret(&raw).to_lowercase();
        codes.push(format!("{}-{}", &text[..5], &text[5..10]));
    }
    let hashes: Vec<String> = codes
        .iter()
        .map(|c| crate::token::hash_secret(&normal_recovery_code(c)))
        .collect();
    s.totp_enable(&c.id, step, &hashes).await?;
    let what = Change::new("user", &c.id, "second_factor_on", c.account.as_deref());
    record::<(), ()>(&s, &c, what, None, None).await?;
    Ok(Json(json!({"recovery_codes": codes})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Off {
    /// The user's password: a left-open session alone cannot turn it off.
    pub(super) password: String,
}

pub(super) async fn totp_off(
    State(s): S,
    c: Caller,
    body: Result<Json<Off>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let b = body?.0;
    let phc = s.password_hash(&c.id).await?.unwrap_or_default();
    if !super::sessions::verify(b.password, phc).await {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong_password",
            "password is not the user's password",
        ));
    }
    s.totp_disable(&c.id).await?;
    let what = Change::new("user", &c.id, "second_factor_off", c.account.as_deref());
    record::<(), ()>(&s, &c, what, None, None).await?;
    Ok(StatusCode::NO_CONTENT)
}
