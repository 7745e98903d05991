//! People logging in over real HTTP, on SQLite and on PostgreSQL: session
//! cookies (attributes, a new id at every login), CSRF on cookie writes,
//! the throttle, the same answer for an unknown e-mail as for a wrong
//! password, suspension and reinstatement (sessions and tokens), logout here
//! and everywhere, password changes, removal.

use meterlink_collector::auth::password;
use meterlink_collector::store::{scratch_postgres, Store};
use meterlink_tests::http::{request_with, Api, Reply};
use meterlink_tests::stack::start_collector;
use serde_json::json;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn expect(r: &Reply, status: u16) {
    assert_eq!(r.status, status, "{}\n{}", r.headers, r.body);
}

/// A person of the account acme with a password.
async fn person(op: &Api, store: &Store, id: &str, role: &str, email: &str, pw: &str) {
    let r = op
        .send(
            "PUT",
            &format!("/api/v1/users/{id}"),
            json!({"id": id, "name": id, "role": role, "account": "acme", "email": email}),
        )
        .await;
    expect(&r, 200);
    let phc = password::hash(pw, &[id.len() as u8; 16]).unwrap();
    store.set_password(id, &phc).await.unwrap();
}

async fn login(addr: SocketAddr, email: &str, pw: &str, headers: &[(&str, &str)]) -> Reply {
    let body = json!({"email": email, "password": pw}).to_string();
    request_with(addr, "POST", "/api/v1/sessions", headers, Some(&body)).await
}

/// `name=value` of the reply's Set-Cookie.
fn cookie(r: &Reply) -> String {
    let c = r
        .header("set-cookie")
        .unwrap_or_else(|| panic!("no cookie: {}", r.headers));
    c.split(';').next().unwrap().to_string()
}

/// A person's session: its cookie and CSRF token.
struct Session {
    addr: SocketAddr,
    cookie: String,
    csrf: String,
}

impl Session {
    async fn new(addr: SocketAddr, email: &str, pw: &str) -> Session {
        let r = login(addr, email, pw, &[]).await;
        expect(&r, 201);
        Session {
            addr,
            cookie: cookie(&r),
            csrf: r.json()["csrf_token"].as_str().unwrap().to_string(),
        }
    }

    async fn get(&self, path: &str) -> Reply {
        request_with(self.addr, "GET", path, &[("Cookie", &self.cookie)], None).await
    }

    /// A write with the session's CSRF token (`csrf`: true) or without.
    async fn write(&self, method: &str, path: &str, body: serde_json::Value, csrf: bool) -> Reply {
        let mut h = vec![("Cookie", self.cookie.as_str())];
        if csrf {
            h.push(("X-CSRF-Token", self.csrf.as_str()));
        }
        request_with(self.addr, method, path, &h, Some(&body.to_string())).await
    }
}

async fn people(op: &Api, store: &Store) {
    let addr = op.addr;
    let r = op
        .send(
            "PUT",
            "/api/v1/accounts/acme",
            json!({"id": "acme", "name": "Acme", "billing_code": "B1", "service_code": "S1"}),
        )
        .await;
    expect(&r, 200);
    let pw = "lungo il fiume blu";
    person(op, store, "mia", "account_manager", "Mia@Example.COM", pw).await;
    person(
        op,
        store,
        "pat",
        "product_administrator",
        "pat@example.com",
        pw,
    )
    .await;
    assert_eq!(
        op.get("/api/v1/users/mia").await.json()["email"],
        "mia@example.com",
        "stored lower case"
    );

    // An unknown e-mail and a wrong password get the same answer.
    let unknown = login(addr, "nobody@example.com", pw, &[]).await;
    let wrong = login(addr, "mia@example.com", "not her password!", &[]).await;
    expect(&unknown, 401);
    assert_eq!((unknown.status, &unknown.body), (wrong.status, &wrong.body));
    assert_eq!(unknown.code(), "invalid_credentials");

    // A good login: an HttpOnly, SameSite=Lax cookie, Secure behind TLS.
    let r = login(addr, "MIA@example.com", pw, &[]).await;
    expect(&r, 201);
    let set = r.header("set-cookie").unwrap();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(
        !set.contains("Secure") && set.starts_with("meterlink_session="),
        "{set}"
    );
    assert_eq!(r.json()["user"]["id"], "mia");
    assert_eq!(r.json()["idle_timeout_secs"], 1800);
    let tls = login(
        addr,
        "mia@example.com",
        pw,
        &[("X-Forwarded-Proto", "https")],
    )
    .await;
    let set = tls.header("set-cookie").unwrap();
    assert!(
        set.starts_with("__Host-meterlink_session=") && set.contains("; Secure"),
        "{set}"
    );

    // The session id changes at login, even when the client brings one.
    let mia = Session::new(addr, "mia@example.com", pw).await;
    let again = login(addr, "mia@example.com", pw, &[("Cookie", &mia.cookie)]).await;
    expect(&again, 201);
    assert_ne!(cookie(&again), mia.cookie);
    let old = mia.get("/api/v1/me").await;
    expect(&old, 401);
    assert_eq!(old.code(), "session_expired");
    let planted = login(
        addr,
        "mia@example.com",
        pw,
        &[("Cookie", "meterlink_session=attacker-chosen")],
    )
    .await;
    assert_ne!(cookie(&planted), "meterlink_session=attacker-chosen");
    let mia = Session::new(addr, "mia@example.com", pw).await;
    assert_eq!(mia.get("/api/v1/me").await.json()["id"], "mia");

    // Cookie-authenticated writes need the CSRF token; bearer ones do not.
    let group = json!({"account": "acme", "name": "east wing"});
    let r = mia
        .write("POST", "/api/v1/groups", group.clone(), false)
        .await;
    expect(&r, 403);
    assert_eq!(r.code(), "csrf");
    let forged = request_with(
        addr,
        "POST",
        "/api/v1/groups",
        &[("Cookie", &mia.cookie), ("X-CSRF-Token", "0000")],
        Some(&group.to_string()),
    )
    .await;
    expect(&forged, 403);
    expect(&mia.write("POST", "/api/v1/groups", group, true).await, 201);
    let t = op
        .send(
            "POST",
            "/api/v1/users/mia/tokens",
            json!({"label": "script"}),
        )
        .await;
    expect(&t, 201);
    let mia_token = Api::new(addr, t.json()["token"].as_str().unwrap());
    expect(
        &mia_token
            .send(
                "POST",
                "/api/v1/groups",
                json!({"account": "acme", "name": "west wing"}),
            )
            .await,
        201,
    );

    // Suspended: session and token refused at once; reinstated: both work.
    let pat = Session::new(addr, "pat@example.com", pw).await;
    let r = mia
        .write("POST", "/api/v1/users/pat/suspend", json!({}), true)
        .await;
    expect(&r, 200);
    assert_eq!(r.json()["state"], "suspended");
    let r = pat.get("/api/v1/me").await;
    expect(&r, 403);
    assert_eq!(r.code(), "user_not_active");
    let r = login(addr, "pat@example.com", pw, &[]).await;
    assert_eq!((r.status, r.code().as_str()), (403, "user_not_active"));
    let r = op.request("POST", "/api/v1/users/mia/suspend", None).await;
    expect(&r, 200);
    expect(&mia_token.get("/api/v1/me").await, 403);
    expect(&mia.get("/api/v1/me").await, 403);
    expect(
        &op.request("POST", "/api/v1/users/mia/reinstate", None)
            .await,
        200,
    );
    expect(&mia_token.get("/api/v1/me").await, 200);
    expect(&mia.get("/api/v1/me").await, 200);
    expect(
        &mia.write("POST", "/api/v1/users/pat/reinstate", json!({}), true)
            .await,
        200,
    );
    expect(&pat.get("/api/v1/me").await, 200);
    // Nobody suspends themselves.
    assert_eq!(
        mia.write("POST", "/api/v1/users/mia/suspend", json!({}), true)
            .await
            .code(),
        "self_lockout"
    );

    // The throttle: 5 failures for an e-mail address in 15 minutes, then even
    // the right password waits; another address from the same client goes on.
    for _ in 0..5 {
        expect(
            &login(addr, "pat@example.com", "guess guess guess", &[]).await,
            401,
        );
    }
    let r = login(addr, "pat@example.com", pw, &[]).await;
    expect(&r, 429);
    assert_eq!(r.code(), "too_many_attempts");
    let after: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((800..=900).contains(&after), "Retry-After {after}");
    expect(&login(addr, "mia@example.com", pw, &[]).await, 201);

    // A new password: wrong current refused, weak refused; then every other
    // session ends and the new password logs in.
    let other = Session::new(addr, "mia@example.com", pw).await;
    let body = |cur: &str, new: &str| json!({"current_password": cur, "new_password": new});
    let r = mia
        .write(
            "PUT",
            "/api/v1/me/password",
            body("nope nope nope", "a brand new phrase"),
            true,
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (403, "wrong_password"));
    let r = mia
        .write("PUT", "/api/v1/me/password", body(pw, "short"), true)
        .await;
    assert_eq!((r.status, r.code().as_str()), (422, "weak_password"));
    expect(
        &mia.write(
            "PUT",
            "/api/v1/me/password",
            body(pw, "a brand new phrase"),
            true,
        )
        .await,
        204,
    );
    expect(&mia.get("/api/v1/me").await, 200);
    expect(&other.get("/api/v1/me").await, 401);
    expect(&login(addr, "mia@example.com", pw, &[]).await, 401);
    let second = Session::new(addr, "mia@example.com", "a brand new phrase").await;

    // Log out here, then everywhere.
    let r = second
        .write("DELETE", "/api/v1/sessions/current", json!({}), true)
        .await;
    expect(&r, 204);
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    expect(&second.get("/api/v1/me").await, 401);
    let third = Session::new(addr, "mia@example.com", "a brand new phrase").await;
    let r = mia
        .write("DELETE", "/api/v1/sessions", json!({}), true)
        .await;
    expect(&r, 200);
    assert_eq!(r.json()["sessions_ended"], 2);
    expect(&third.get("/api/v1/me").await, 401);
    expect(&mia.get("/api/v1/me").await, 401);

    // A removed user cannot log in.
    expect(&op.request("DELETE", "/api/v1/users/pat", None).await, 204);
    store
        .clear_login_failures("email:pat@example.com")
        .await
        .unwrap();
    let r = login(addr, "pat@example.com", pw, &[]).await;
    assert_eq!((r.status, r.code().as_str()), (401, "invalid_credentials"));
}

#[tokio::test]
async fn people_log_in_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let c = start_collector(dir.path(), "", "agent-s", &dir.path().join("certs")).await;
    people(&c.operator(), &c.running.store).await;
    c.running.stop().await;
}

#[tokio::test]
async fn people_log_in_on_postgres() {
    let Some(url) = scratch_postgres("people_log_in_on_postgres").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("[store]\npostgres = \"{url}\"\n");
    let c = start_collector(dir.path(), &extra, "agent-s", &dir.path().join("certs")).await;
    people(&c.operator(), &c.running.store).await;
    c.running.stop().await;
}

/// An unknown e-mail takes as long to refuse as a wrong password (the
/// decoy hash): medians of 15 tries each within 25 % of each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_email_takes_as_long_as_a_wrong_password() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "[sessions]\nmax_failures_per_email = 1000\nmax_failures_per_client = 1000\n";
    let c = start_collector(dir.path(), extra, "agent-t", &dir.path().join("certs")).await;
    let op = c.operator();
    op.send(
        "PUT",
        "/api/v1/accounts/acme",
        json!({"id": "acme", "name": "Acme", "billing_code": "B1", "service_code": "S1"}),
    )
    .await;
    person(
        &op,
        &c.running.store,
        "ann",
        "account_manager",
        "ann@example.com",
        "lungo il fiume blu",
    )
    .await;
    let (mut unknown, mut wrong) = (Vec::new(), Vec::new());
    for i in 0..15 {
        let t = Instant::now();
        expect(
            &login(
                op.addr,
                &format!("nobody{i}@example.com"),
                "whatever whatever",
                &[],
            )
            .await,
            401,
        );
        unknown.push(t.elapsed());
        let t = Instant::now();
        expect(
            &login(op.addr, "ann@example.com", "whatever whatever", &[]).await,
            401,
        );
        wrong.push(t.elapsed());
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (u, w) = (median(&mut unknown), median(&mut wrong));
    let ratio = u.as_secs_f64() / w.as_secs_f64();
    eprintln!(
        "login refusal medians: unknown e-mail {u:?}, wrong password {w:?} (ratio {ratio:.2})"
    );
    assert!(
        (0.75..=1.33).contains(&ratio),
        "unknown {u:?} vs wrong {w:?}"
    );
    c.running.stop().await;
}
