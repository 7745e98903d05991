//! The REST API's request bodies and query strings, through the router,
//! the extractors and the handlers, as an operator or as an account
//! manager: the first byte picks the route, its top bit the caller; the
//! rest is the body (JSON, or CSV where the route takes CSV), the query
//! string, or a path segment. Whatever comes in, the answer is not a
//! server error: bad input is the caller's fault and is said so (4xx).
#![no_main]

use libfuzzer_sys::fuzz_target;
use meterlink_fuzz::collector::collector;

enum Shape {
    Json(&'static str, &'static str),
    Csv(&'static str),
    Query(&'static str),
    Segment(&'static str, &'static str),
}
use Shape::*;

/// `{serial}`, `{group}` and `{request}` are the harness's; `{}` in a
/// `Segment` is where the input goes.
const ROUTES: &[Shape] = &[
    Json("PUT", "/api/v1/accounts/acme"),
    Json("PUT", "/api/v1/accounts/fuzz-co"),
    Json("POST", "/api/v1/contract-lines"),
    Csv("/api/v1/accounts/acme/contract-lines.csv"),
    Json("POST", "/api/v1/join-tokens"),
    Json("PATCH", "/api/v1/agents/fuzz-agent"),
    Json("POST", "/api/v1/groups"),
    Json("PATCH", "/api/v1/groups/{group}"),
    Json("POST", "/api/v1/kb-articles/import"),
    Json("PUT", "/api/v1/kb-articles/fuzz-article"),
    Json("PUT", "/api/v1/organisations/acme"),
    Json("POST", "/api/v1/invitations"),
    Json("POST", "/api/v1/invitations/accept"),
    Json("POST", "/api/v1/invitations/decline"),
    Json("POST", "/api/v1/registrations"),
    Json("POST", "/api/v1/registrations/confirm"),
    Json("PATCH", "/api/v1/products/{serial}"),
    Json("POST", "/api/v1/products/{serial}/readings"),
    Json("PATCH", "/api/v1/me"),
    Json("PUT", "/api/v1/me/notifications"),
    Json("POST", "/api/v1/me/totp/confirm"),
    Json("POST", "/api/v1/service-requests"),
    Json("POST", "/api/v1/service-requests/{request}/updates"),
    Json("POST", "/api/v1/service-requests/{request}/comments"),
    Json("POST", "/api/v1/service-requests/{request}/close"),
    Json("POST", "/api/v1/sessions"),
    Json("POST", "/api/v1/password-reset"),
    Json("POST", "/api/v1/password-reset/confirm"),
    Json("PUT", "/api/v1/users/fuzz-user"),
    Query("/api/v1/products"),
    Query("/api/v1/products/{serial}/readings"),
    Query("/api/v1/service-requests"),
    Query("/api/v1/kb-articles"),
    Query("/api/v1/users"),
    Query("/api/v1/audit"),
    Query("/api/v1/contract-lines"),
    Query("/api/v1/accounts/acme/billing.csv"),
    Query("/api/v1/queues/email"),
    Query("/api/v1/agents"),
    Segment("GET", "/api/v1/products/{}"),
    Segment("GET", "/api/v1/products/{}/readings"),
    Segment("GET", "/api/v1/service-requests/{}"),
    Segment("GET", "/api/v1/kb-articles/{}"),
    Segment("GET", "/api/v1/accounts/{}"),
    Segment("GET", "/api/v1/users/{}"),
    Segment("PUT", "/api/v1/groups/{group}/products/{}"),
    Segment("PUT", "/api/v1/groups/{group}/administrators/{}"),
];

/// Percent-encodes what a URI may not hold; `=` and `&` stay, so that the
/// fuzzer can make pairs.
fn escape(bytes: &[u8], keep: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

// The store is made (and migrated) before the first input: its second or
// so on PostgreSQL is not an input's time.
fuzz_target!(init: { collector(); }, |data: &[u8]| {
    let [pick, input @ ..] = data else {
        return;
    };
    let c = collector();
    let token = if pick & 0x80 == 0 {
        &c.operator
    } else {
        &c.manager
    };
    let fill = |path: &str| {
        path.replace("{serial}", &c.serial)
            .replace("{group}", &c.group.to_string())
            .replace("{request}", &c.request)
    };
    let (method, uri, content_type, body) = match &ROUTES[usize::from(pick & 0x7f) % ROUTES.len()] {
        Json(m, p) => (*m, fill(p), "application/json", input.to_vec()),
        Csv(p) => ("POST", fill(p), "text/csv", input.to_vec()),
        Query(p) => (
            "GET",
            format!("{}?{}", fill(p), escape(input, b"=&+,:")),
            "application/json",
            vec![],
        ),
        Segment(m, p) => (
            *m,
            fill(p).replace("{}", &escape(input, b"")),
            "application/json",
            vec![],
        ),
    };
    let (status, text) = c.send(method, &uri, token, content_type, body);
    assert!(
        !status.is_server_error(),
        "{method} {uri} with {:?} answered {status}: {text}",
        String::from_utf8_lossy(input)
    );
});
