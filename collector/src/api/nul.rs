//! Requests that carry a NUL character are refused before any handler
//! (400 `invalid_text`): no name, code or search needs one, and
//! PostgreSQL's text cannot hold it, so it would otherwise fail there as a
//! server error on one store and be kept on the other. A web page's form
//! or address gets a page saying so instead.

use super::error::ApiError;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// As axum's default body limit: the extractors refuse more anyway.
const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// `%00` in a path or a query string, or in a form's body.
pub(super) fn escaped_nul(text: &[u8]) -> bool {
    text.windows(3).any(|w| w == b"%00")
}

/// JSON's `\u0000` escape; a `\\u0000` is a backslash and text, not a NUL.
pub(super) fn json_nul(body: &[u8]) -> bool {
    let mut backslashes = 0usize;
    for (i, &b) in body.iter().enumerate() {
        if b == b'\\' {
            backslashes += 1;
            continue;
        }
        if b == b'u' && backslashes % 2 == 1 && body[i + 1..].starts_with(b"0000") {
            return true;
        }
        backslashes = 0;
    }
    false
}

/// People's browsers get a page; programs the API's JSON.
fn refused(path: &str, headers: &HeaderMap, where_: &str) -> Response {
    if !super::for_programs(path) {
        return super::web::invalid_text(headers);
    }
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_text",
        format!("{where_} holds a NUL character; text may not contain one"),
    )
    .into_response()
}

pub(super) async fn refuse_nul(req: Request, next: Next) -> Response {
    let uri = req.uri();
    if escaped_nul(uri.path().as_bytes()) || uri.query().is_some_and(|q| escaped_nul(q.as_bytes()))
    {
        return refused(uri.path(), req.headers(), "the address");
    }
    let kind = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|t| t.to_ascii_lowercase());
    let (json, form) = match kind.as_deref() {
        Some(t) => (
            t.contains("json"),
            t.starts_with("application/x-www-form-urlencoded"),
        ),
        // No body to look at.
        None if req.method() == "GET" || req.method() == "HEAD" => return next.run(req).await,
        None => (false, false),
    };
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request's body is larger than {} MiB", BODY_LIMIT >> 20),
        )
        .into_response();
    };
    if bytes.contains(&0) || (json && json_nul(&bytes)) || (form && escaped_nul(&bytes)) {
        return refused(parts.uri.path(), &parts.headers, "the request's body");
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nul_however_it_is_written() {
        assert!(escaped_nul(b"/api/v1/products/A%00B"));
        assert!(!escaped_nul(b"/api/v1/products/A%200B"));
        assert!(json_nul(br#"{"name":"a\u0000b"}"#));
        assert!(
            json_nul(br#"{"name":"\\\u0000"}"#),
            "an escaped backslash, then \\u0000"
        );
        assert!(
            !json_nul(br#"{"name":"\\u0000"}"#),
            "a backslash and the text u0000"
        );
        assert!(!json_nul(br#"{"name":"\u00e8 \u0001"}"#));
        assert!(!json_nul(br#"{"name":"0000u"}"#));
    }
}
