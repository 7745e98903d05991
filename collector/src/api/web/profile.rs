//! The Profile page: personal data and language, the password, the e-mail
//! notifications, and the second factor (an authenticator app's code at
//! login, with recovery codes shown once). Each form runs the API's
//! handler as the person.

use super::form::{caller, done, notice, person, post, refusal, state};
use super::i18n::{self, Texts};
use super::{error_page, html, Who};
use crate::api::caller::SessionId;
use crate::api::{profile as api, sessions, S};
use crate::auth::password::Sessions;
use crate::model::{NotificationSetting, ProfileUpdate, NOTIFICATION_EVENTS};
use crate::store::Store;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Json};
use serde::Deserialize;

#[derive(Deserialize)]
pub(super) struct PageQuery {
    done: Option<String>,
}

/// The second factor's set-up in progress: the secret to type into the
/// app, or the recovery codes just made.
#[derive(Default)]
struct Totp {
    secret: String,
    uri: String,
    codes: Vec<String>,
}

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfilePage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    notifications: Vec<(&'static str, String, bool)>,
    totp: Totp,
    notice: Option<String>,
    error: Option<String>,
}

pub(super) async fn page(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let w = match person(&s, &cfg, &headers, false).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let n = notice(i18n::texts(&w.user.language), q.done.as_deref());
    render(&s, w, n, None, Totp::default()).await
}

async fn render(
    s: &Store,
    w: Who,
    notice: Option<String>,
    error: Option<String>,
    totp: Totp,
) -> Response {
    let t = i18n::texts(&w.user.language);
    let settings = s
        .notification_settings(&w.user.id)
        .await
        .unwrap_or_default();
    let notifications = NOTIFICATION_EVENTS
        .iter()
        .map(|e| {
            let on = settings
                .iter()
                .find(|x| x.event == *e)
                .is_none_or(|x| x.enabled);
            (*e, t.get(&format!("notify-{e}")), on)
        })
        .collect();
    html(ProfilePage {
        t,
        who: Some(w),
        page: "profile",
        notifications,
        totp,
        notice,
        error,
    })
}

/// One of the page's forms, named by `op`.
pub(super) async fn change(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (w, t, f) = match post(&s, &cfg, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let outcome = match f.get("op").as_str() {
        "personal" => {
            let language = f.get("language");
            let p = ProfileUpdate {
                name: None,
                first_name: Some(f.get("first_name").trim().to_string()),
                last_name: Some(f.get("last_name").trim().to_string()),
                phone: Some(f.get("phone").trim().to_string()),
                language: i18n::LANGUAGES
                    .iter()
                    .find(|l| **l == language)
                    .map(|l| l.to_string()),
            };
            api::update_profile(state(&s), caller(&w), Ok(Json(p)))
                .await
                .map(|_| "profile-saved")
        }
        "password" => {
            if f.get("password") != f.get("repeat") {
                let e = t.get("password-mismatch");
                return render(&s, w, None, Some(e), Totp::default()).await;
            }
            let body = sessions::PasswordChange {
                current_password: Some(f.get("current")),
                new_password: f.get("password"),
            };
            // This session stays; every other one of the person ends.
            let this = sessions::cookie_session(&headers)
                .map(|id| Extension(SessionId(crate::token::hash_secret(&id))));
            sessions::change_password(state(&s), caller(&w), this, Ok(Json(body)))
                .await
                .map(|_| "password-changed")
        }
        "notifications" => {
            let before = s
                .notification_settings(&w.user.id)
                .await
                .unwrap_or_default();
            let on = f.all("event");
            let settings = NOTIFICATION_EVENTS
                .iter()
                .map(|e| {
                    let kept = before.iter().find(|x| x.event == *e);
                    NotificationSetting {
                        event: e.to_string(),
                        enabled: on.iter().any(|x| x == e),
                        products: kept.map(|k| k.products.clone()).unwrap_or_default(),
                        groups: kept.map(|k| k.groups.clone()).unwrap_or_default(),
                    }
                })
                .collect();
            let b = api::Settings { settings };
            api::set_notifications(state(&s), caller(&w), Ok(Json(b)))
                .await
                .map(|_| "notifications-saved")
        }
        "totp_begin" => match api::totp_begin(state(&s), caller(&w)).await {
            Ok((_, Json(v))) => {
                let totp = Totp {
                    secret: v["secret"].as_str().unwrap_or_default().to_string(),
                    uri: v["otpauth_uri"].as_str().unwrap_or_default().to_string(),
                    codes: Vec::new(),
                };
                return render(&s, w, None, None, totp).await;
            }
            Err(e) => Err(e),
        },
        "totp_confirm" => {
            let code = api::Code {
                code: f.get("code").trim().to_string(),
            };
            match api::totp_confirm(state(&s), caller(&w), Ok(Json(code))).await {
                Ok(Json(v)) => {
                    let codes = v["recovery_codes"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|c| c.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    let totp = Totp {
                        codes,
                        ..Totp::default()
                    };
                    // Who is read again: the page shows the factor on.
                    let w = match person(&s, &cfg, &headers, true).await {
                        Ok(w) => w,
                        Err(r) => return r,
                    };
                    let n = Some(t.get("done-totp-on"));
                    return render(&s, w, n, None, totp).await;
                }
                Err(e) => {
                    // The secret stays shown so the next code can be typed.
                    let (secret, uri) = match s.totp_state(&w.user.id).await {
                        Ok(Some(st)) if !st.enabled => {
                            let label = w.user.email.clone().unwrap_or_else(|| w.user.id.clone());
                            let uri = crate::auth::totp::uri(&st.secret_b32, &label, "meterlink");
                            (st.secret_b32, uri)
                        }
                        _ => (String::new(), String::new()),
                    };
                    let e = refusal(t, &e);
                    let totp = Totp {
                        secret,
                        uri,
                        codes: Vec::new(),
                    };
                    return render(&s, w, None, Some(e), totp).await;
                }
            }
        }
        "totp_off" => {
            let off = api::Off {
                password: f.get("password"),
            };
            api::totp_off(state(&s), caller(&w), Ok(Json(off)))
                .await
                .map(|_| "totp-off")
        }
        _ => {
            return error_page(
                t,
                Some(w),
                StatusCode::BAD_REQUEST,
                "error-title",
                "api-invalid-body",
            )
        }
    };
    match outcome {
        Ok(what) => done("/profile", what),
        Err(e) => {
            let e = refusal(t, &e);
            render(&s, w, None, Some(e), Totp::default()).await
        }
    }
}
