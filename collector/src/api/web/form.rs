//! What every page that changes something shares: the person or the login
//! page, the checks a form post passes (this site, the session's token),
//! the API's own handlers run as that person, and how an outcome is said
//! (a notice after the redirect, the API's refusal in the person's words).

use super::i18n::Texts;
use super::{same_origin, who, Who};
use crate::api::caller::Caller;
use crate::api::error::ApiError;
use crate::auth::password::Sessions;
use crate::store::Store;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use std::sync::Arc;

/// The logged-in person, or the login page (told the session ended when
/// a form was being sent).
pub(super) async fn person(
    s: &Store,
    cfg: &Sessions,
    headers: &HeaderMap,
    posting: bool,
) -> Result<Who, Response> {
    match who(s, cfg, headers).await {
        Some(w) => Ok(w),
        None if posting => Err(Redirect::to("/login?why=expired").into_response()),
        None => Err(Redirect::to("/login").into_response()),
    }
}

/// A form post's person, their texts and the fields: or the login page
/// (the session ended), or the page refusing a post from elsewhere.
pub(super) async fn post(
    s: &Store,
    cfg: &Sessions,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Who, &'static Texts, Fields), Response> {
    let w = person(s, cfg, headers, true).await?;
    let t = super::i18n::texts(&w.user.language);
    let f = Fields::parse(body);
    if !posted(&w, headers, &f.get("csrf")) {
        return Err(super::error_page(
            t,
            Some(w),
            axum::http::StatusCode::FORBIDDEN,
            "error-title",
            "csrf-failed",
        ));
    }
    Ok((w, t, f))
}

/// The page for a store that cannot answer now.
pub(super) fn unavailable(t: &'static Texts, w: Who) -> Response {
    super::error_page(
        t,
        Some(w),
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "error-title",
        "error-try-later",
    )
}

/// Whether a form post is this person's, made on this site's pages.
pub(super) fn posted(w: &Who, headers: &HeaderMap, csrf: &str) -> bool {
    same_origin(headers) && crate::token::same_hash(csrf, &w.csrf)
}

/// The person as the API's handlers take them.
pub(super) fn caller(w: &Who) -> Caller {
    Caller(w.user.clone(), "person")
}

pub(super) fn state(s: &Arc<Store>) -> State<Arc<Store>> {
    State(s.clone())
}

/// The API's refusal in the person's language: its own text for the
/// codes the catalogs know (`api-<code>`), else the API's message.
pub(super) fn refusal(t: &Texts, e: &ApiError) -> String {
    let id = format!("api-{}", e.code().replace('_', "-"));
    match t.get(&id) {
        known if known != id => known,
        _ => e.message().to_string(),
    }
}

/// Back to `path` after a change, with the notice `done-<what>` shown
/// there (post, redirect, get: a reload sends nothing twice).
pub(super) fn done(path: &str, what: &str) -> Response {
    let sep = if path.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{path}{sep}done={what}")).into_response()
}

/// The notice for `?done=`: only the catalog's own `done-*` messages, so
/// the address cannot put words on the page.
pub(super) fn notice(t: &Texts, done: Option<&str>) -> Option<String> {
    let what = done?;
    if what.is_empty() || !what.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
        return None;
    }
    let id = format!("done-{what}");
    let text = t.get(&id);
    (text != id).then_some(text)
}

/// "Are you sure?" before a change that cannot be undone: a form posting
/// `confirm=yes` (and `extra` hidden fields) to `action`.
#[derive(askama::Template)]
#[template(path = "confirm.html")]
pub(super) struct ConfirmPage<'a> {
    pub t: &'static Texts,
    pub who: Option<Who>,
    pub page: &'a str,
    pub title: String,
    pub text: String,
    pub action: String,
    pub extra: Vec<(&'a str, String)>,
    pub submit: String,
    pub back: &'a str,
}

/// A posted form's fields, repeated ones (check boxes) included.
pub(super) struct Fields(Vec<(String, String)>);

impl Fields {
    pub(super) fn parse(body: &[u8]) -> Fields {
        Fields(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The field's first value, "" when absent.
    pub(super) fn get(&self, name: &str) -> String {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// Every value of a repeated field.
    pub(super) fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// Serial numbers as people type them: separated by commas, semicolons,
/// spaces or lines.
pub(super) fn serials(text: &str) -> Vec<String> {
    text.split([',', ';', ' ', '\n', '\r', '\t'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::error::ApiError;

    #[test]
    fn repeated_fields_and_serials() {
        let f = Fields::parse(b"group=1&group=22&name=East+wing&csrf=x%26y");
        assert_eq!(f.all("group"), ["1", "22"]);
        assert_eq!(f.get("name"), "East wing");
        assert_eq!(f.get("csrf"), "x&y");
        assert_eq!(f.get("missing"), "");
        assert_eq!(
            serials(" A-1, B-2;C-3\r\nD-4 "),
            ["A-1", "B-2", "C-3", "D-4"]
        );
    }

    #[test]
    fn notices_come_only_from_the_catalog() {
        let t = super::super::i18n::texts("en");
        assert!(notice(t, Some("invited")).is_some());
        assert_eq!(notice(t, Some("you-won")), None);
        assert_eq!(notice(t, Some("<script>")), None);
        assert_eq!(notice(t, None), None);
    }

    #[test]
    fn refusals_in_the_persons_words() {
        let it = super::super::i18n::texts("it");
        let weak = ApiError::unprocessable("weak_password", "too short");
        assert_ne!(refusal(it, &weak), "too short");
        let odd = ApiError::unprocessable("odd_thing", "the API's words");
        assert_eq!(refusal(it, &odd), "the API's words");
    }
}
