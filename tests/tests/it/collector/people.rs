//! The portal's people over real HTTP, on SQLite and on PostgreSQL, with a
//! real SMTP server on loopback (aiosmtpd, keeping what it receives): an
//! organisation of two companies; a registration confirmed from the
//! e-mailed link (its first person becomes account manager) and one that
//! waits for an operator; a product administrator of a group invited,
//! accepting from the e-mail, seeing exactly the group's products; declined,
//! expired, resent and withdrawn invitations; suspension, reinstatement and
//! removal; surname search; notification settings; TOTP with recovery
//! codes; and the audit log of it all with the right actors.

use super::email::{received, smtp_server};
use meterlink_collector::auth::totp;
use meterlink_collector::store::{scratch_postgres, Store};
use meterlink_proto::v1::observation::Body;
use meterlink_proto::v1::{CounterValue, MeterReading, Observation};
use meterlink_tests::http::{request, request_with, Api, Reply};
use meterlink_tests::peers::{have_python_module, until};
use meterlink_tests::stack::start_collector;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const PW: &str = "una frase lunga e mia";
const PORTAL: &str = "https://portal.example.com";

fn expect(r: &Reply, status: u16) {
    assert_eq!(r.status, status, "{}\n{}", r.headers, r.body);
}

/// The tokens of the links starting `prefix` in the messages to `to`,
/// oldest message first.
fn tokens(maildir: &Path, to: &str, prefix: &str) -> Vec<String> {
    let mut found: Vec<(std::time::SystemTime, String, String)> = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(rd) = std::fs::read_dir(maildir.join(sub)) else {
            continue;
        };
        for e in rd.flatten() {
            let text = std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .replace("=\r\n", "")
                .replace("=\n", "")
                .replace("=3D", "=");
            if !text.contains(&format!("To: {to}")) {
                continue;
            }
            let when = e.metadata().and_then(|m| m.modified()).unwrap();
            for part in text.split(prefix).skip(1) {
                let t: String = part.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
                found.push((when, e.file_name().to_string_lossy().into(), t));
            }
        }
    }
    found.sort();
    found.into_iter().map(|(_, _, t)| t).collect()
}

async fn wait_token(maildir: &Path, to: &str, prefix: &str, n: usize) -> String {
    let (m, t, p) = (maildir.to_path_buf(), to.to_string(), prefix.to_string());
    until(Duration::from_secs(20), "the e-mailed link", || {
        let (m, t, p) = (m.clone(), t.clone(), p.clone());
        async move { tokens(&m, &t, &p).len() >= n }
    })
    .await;
    tokens(maildir, to, prefix)[n - 1].clone()
}

async fn public(addr: SocketAddr, path: &str, body: Value) -> Reply {
    request(addr, "POST", path, Some(&body.to_string())).await
}

/// A person's session: cookie and CSRF token.
struct Person {
    addr: SocketAddr,
    cookie: String,
    csrf: String,
}

async fn login(addr: SocketAddr, body: Value) -> Reply {
    request(addr, "POST", "/api/v1/sessions", Some(&body.to_string())).await
}

impl Person {
    async fn new(addr: SocketAddr, email: &str) -> Person {
        let r = login(addr, json!({"email": email, "password": PW})).await;
        expect(&r, 201);
        Person::from(addr, &r)
    }

    fn from(addr: SocketAddr, r: &Reply) -> Person {
        let c = r.header("set-cookie").unwrap();
        Person {
            addr,
            cookie: c.split(';').next().unwrap().to_string(),
            csrf: r.json()["csrf_token"].as_str().unwrap().to_string(),
        }
    }

    async fn get(&self, path: &str) -> Reply {
        request_with(self.addr, "GET", path, &[("Cookie", &self.cookie)], None).await
    }

    async fn send(&self, method: &str, path: &str, body: Value) -> Reply {
        let h = [
            ("Cookie", self.cookie.as_str()),
            ("X-CSRF-Token", self.csrf.as_str()),
        ];
        request_with(self.addr, method, path, &h, Some(&body.to_string())).await
    }
}

fn meter(seq: u64, serial: &str) -> Observation {
    Observation {
        seq,
        taken_at_ms: meterlink_collector::store::now_ms() - 60_000,
        device_address: "10.1.2.3:161".into(),
        serial: serial.into(),
        body: Some(Body::Meter(MeterReading {
            counters: vec![CounterValue {
                id: "canon.101".into(),
                value: 1000,
                ..Default::default()
            }],
        })),
    }
}

fn serials(page: &Reply) -> Vec<String> {
    page.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["serial"].as_str().unwrap().to_string())
        .collect()
}

async fn flows(op: &Api, store: &Store, maildir: &Path) {
    let addr = op.addr;
    // An organisation needs a name.
    let r = op
        .send(
            "PUT",
            "/api/v1/organisations/acme-group",
            json!({"id": "acme-group", "name": " "}),
        )
        .await;
    expect(&r, 422);
    assert_eq!(r.code(), "invalid_organisation_name");
    // An organisation with two companies, and another customer.
    expect(
        &op.send(
            "PUT",
            "/api/v1/organisations/acme-group",
            json!({"id": "acme-group", "name": "Acme Group"}),
        )
        .await,
        200,
    );
    for (id, org) in [
        ("acme", Some("acme-group")),
        ("acme-north", Some("acme-group")),
        ("globex", None),
    ] {
        let r = op
            .send(
                "PUT",
                &format!("/api/v1/accounts/{id}"),
                json!({"id": id, "name": id, "billing_code": "B", "service_code": "S", "organisation": org,
                       "auto_create_products": true}),
            )
            .await;
        expect(&r, 200);
    }
    let org = op.get("/api/v1/organisations/acme-group").await.json();
    assert_eq!(org["companies"], json!(["acme", "acme-north"]));
    for (agent, account, products) in [
        ("agent-a", "acme", vec!["A-1", "A-2", "A-3"]),
        ("agent-n", "acme-north", vec!["N-1"]),
        ("agent-g", "globex", vec!["G-1"]),
    ] {
        store.agent_hello(agent, "0.1.0", 10).await.unwrap();
        expect(
            &op.send(
                "PATCH",
                &format!("/api/v1/agents/{agent}"),
                json!({"account": account}),
            )
            .await,
            200,
        );
        let batch: Vec<Observation> = products
            .iter()
            .enumerate()
            .map(|(i, s)| meter(i as u64 + 1, s))
            .collect();
        store.ingest(agent, &batch).await.unwrap();
    }

    // Registration: Mia names A-1; her organisation has no account manager.
    let reg = |email: &str, first: &str, last: &str, serial: &str| {
        json!({"company_name": "Acme", "first_name": first, "last_name": last, "email": email,
               "phone": "+39 02 1234", "serials": [serial], "language": "it"})
    };
    let r = public(
        addr,
        "/api/v1/registrations",
        reg("mia@acme.example", "Mia", "Rossi", "a-1"),
    )
    .await;
    expect(&r, 202);
    let unknown = public(
        addr,
        "/api/v1/registrations",
        reg("bob@globex.example", "Bob", "Verdi", "NOPE-9"),
    )
    .await;
    assert_eq!((unknown.status, &unknown.body), (r.status, &r.body));
    let confirm_link = format!("{PORTAL}/register/confirm?token=");
    let token = wait_token(maildir, "mia@acme.example", &confirm_link, 1).await;
    let weak = public(
        addr,
        "/api/v1/registrations/confirm",
        json!({"token": token, "password": "short"}),
    )
    .await;
    assert_eq!((weak.status, weak.code().as_str()), (422, "weak_password"));
    let done = public(
        addr,
        "/api/v1/registrations/confirm",
        json!({"token": token, "password": PW}),
    )
    .await;
    expect(&done, 200);
    assert_eq!(done.json()["state"], "approved");
    assert_eq!(done.json()["user"]["role"], "account_manager");
    assert_eq!(done.json()["user"]["sees"], json!(["acme", "acme-north"]));
    let again = public(
        addr,
        "/api/v1/registrations/confirm",
        json!({"token": token, "password": PW}),
    )
    .await;
    assert_eq!((again.status, again.code().as_str()), (403, "link_invalid"));
    // A confirmation link expires.
    let now = meterlink_collector::store::now_ms();
    let stale = "ef".repeat(32);
    let late = meterlink_collector::model::LinkMail {
        token: stale.clone(),
        sha256: meterlink_collector::token::hash_secret(&stale),
        base_url: PORTAL.into(),
        now_ms: now - 2 * 86_400_000,
        expires_at_ms: now - 86_400_000,
    };
    let r: meterlink_collector::model::NewRegistration =
        serde_json::from_value(reg("late@acme.example", "Leo", "Tardi", "A-2")).unwrap();
    assert!(store
        .register("r-0000000000000001", &r, &late)
        .await
        .unwrap());
    let expired = public(
        addr,
        "/api/v1/registrations/confirm",
        json!({"token": stale, "password": PW}),
    )
    .await;
    assert_eq!(
        (expired.status, expired.code().as_str()),
        (403, "link_invalid")
    );
    // Bob's serial matches nothing: confirmed, he waits for an operator.
    let bob_token = wait_token(maildir, "bob@globex.example", &confirm_link, 1).await;
    let queued = public(
        addr,
        "/api/v1/registrations/confirm",
        json!({"token": bob_token, "password": PW}),
    )
    .await;
    expect(&queued, 200);
    assert_eq!(queued.json()["state"], "queued");
    assert_eq!(
        login(addr, json!({"email": "bob@globex.example", "password": PW}))
            .await
            .status,
        401
    );
    let q = op.get("/api/v1/registrations?state=queued").await.json();
    let bob_reg = q["registrations"][0]["id"].as_str().unwrap().to_string();
    let r = op
        .send(
            "POST",
            &format!("/api/v1/registrations/{bob_reg}/approve"),
            json!({"account": "globex"}),
        )
        .await;
    expect(&r, 200);
    let bob = Person::new(addr, "bob@globex.example").await;
    assert_eq!(serials(&bob.get("/api/v1/products").await), vec!["G-1"]);

    // Mia logs in, makes a group and invites Pat to administer it.
    let mia = Person::new(addr, "mia@acme.example").await;
    let me = mia.get("/api/v1/me").await.json();
    let mia_id = me["id"].as_str().unwrap().to_string();
    assert_eq!(
        serials(&mia.get("/api/v1/products").await),
        vec!["A-1", "A-2", "A-3", "N-1"]
    );
    let g = mia
        .send(
            "POST",
            "/api/v1/groups",
            json!({"account": "acme", "name": "Piano 2"}),
        )
        .await;
    expect(&g, 201);
    let gid = g.json()["id"].as_i64().unwrap();
    for s in ["A-1", "A-2"] {
        expect(
            &mia.send(
                "PUT",
                &format!("/api/v1/groups/{gid}/products/{s}"),
                json!({}),
            )
            .await,
            200,
        );
    }
    let invite = |email: &str, first: &str, last: &str, role: &str, groups: Vec<i64>| {
        json!({"email": email, "first_name": first, "last_name": last, "role": role,
               "groups": groups, "language": "en"})
    };
    let r = mia
        .send(
            "POST",
            "/api/v1/invitations",
            invite(
                "pat@acme.example",
                "Pat",
                "Bianchi",
                "product_administrator",
                vec![gid],
            ),
        )
        .await;
    expect(&r, 201);
    let pat_id = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(r.json()["state"], "pending");
    let pending = mia.get("/api/v1/users?state=pending").await.json();
    assert_eq!(pending["users"].as_array().unwrap().len(), 1);
    let accept_link = format!("{PORTAL}/invitation/accept?token=");
    let pat_token = wait_token(maildir, "pat@acme.example", &accept_link, 1).await;
    let weak = public(
        addr,
        "/api/v1/invitations/accept",
        json!({"token": pat_token, "password": "short"}),
    )
    .await;
    assert_eq!(
        weak.code(),
        "weak_password",
        "a weak password does not spend the link"
    );
    let r = public(
        addr,
        "/api/v1/invitations/accept",
        json!({"token": pat_token, "password": PW}),
    )
    .await;
    expect(&r, 200);
    assert_eq!(r.json()["state"], "active");
    let pat = Person::new(addr, "pat@acme.example").await;
    assert_eq!(
        serials(&pat.get("/api/v1/products").await),
        vec!["A-1", "A-2"],
        "exactly the group's"
    );
    expect(&pat.get("/api/v1/products/A-3").await, 404);
    expect(&pat.get("/api/v1/products/N-1").await, 404);
    expect(&pat.get("/api/v1/audit").await, 403);
    // The group names Pat; so does each product.
    let a1 = pat.get("/api/v1/products/A-1").await.json();
    assert_eq!(a1["administrators"], json!([pat_id]));
    // A product administrator's own group: only their products go in.
    let own = pat
        .send(
            "POST",
            "/api/v1/groups",
            json!({"account": "acme", "name": "Mine"}),
        )
        .await;
    expect(&own, 201);
    let own = own.json()["id"].as_i64().unwrap();
    expect(
        &pat.send(
            "PUT",
            &format!("/api/v1/groups/{own}/products/A-1"),
            json!({}),
        )
        .await,
        200,
    );
    expect(
        &pat.send(
            "PUT",
            &format!("/api/v1/groups/{own}/products/A-3"),
            json!({}),
        )
        .await,
        404,
    );
    expect(
        &pat.send("DELETE", &format!("/api/v1/groups/{gid}"), json!({}))
            .await,
        404,
    );

    // Rob sees one company of the organisation only.
    let mut rob = invite(
        "rob@acme.example",
        "Rob",
        "Conti",
        "account_manager",
        vec![],
    );
    rob["account"] = json!("acme-north");
    rob["companies"] = json!(["acme-north"]);
    expect(&mia.send("POST", "/api/v1/invitations", rob).await, 201);
    let t = wait_token(maildir, "rob@acme.example", &accept_link, 1).await;
    let r = public(
        addr,
        "/api/v1/invitations/accept",
        json!({"token": t, "password": PW}),
    )
    .await;
    expect(&r, 200);
    assert_eq!(r.json()["sees"], json!(["acme-north"]));
    let rob = Person::new(addr, "rob@acme.example").await;
    assert_eq!(serials(&rob.get("/api/v1/products").await), vec!["N-1"]);
    expect(&rob.get("/api/v1/products/A-1").await, 404);
    expect(&rob.get("/api/v1/accounts/acme").await, 404);
    // He may not make a colleague who sees more than he does.
    let wide = invite(
        "ivo@acme.example",
        "Ivo",
        "Sala",
        "product_administrator",
        vec![],
    );
    let mut wide = wide;
    wide["account"] = json!("acme-north");
    expect(&rob.send("POST", "/api/v1/invitations", wide).await, 403);

    // Ugo declines: Refused.
    let r = mia
        .send(
            "POST",
            "/api/v1/invitations",
            invite("ugo@acme.example", "Ugo", "Neri", "account_manager", vec![]),
        )
        .await;
    expect(&r, 201);
    let t = wait_token(maildir, "ugo@acme.example", &accept_link, 1).await;
    let r = public(addr, "/api/v1/invitations/decline", json!({"token": t})).await;
    expect(&r, 200);
    assert_eq!(r.json()["state"], "refused");
    let refused = mia.get("/api/v1/users?state=refused").await.json();
    assert_eq!(refused["users"][0]["last_name"], "Neri");
    let late = public(
        addr,
        "/api/v1/invitations/accept",
        json!({"token": t, "password": PW}),
    )
    .await;
    expect(&late, 403);

    // Eva: resent (the first link stops working), then expired.
    let r = mia
        .send(
            "POST",
            "/api/v1/invitations",
            invite(
                "eva@acme.example",
                "Eva",
                "Galli",
                "product_administrator",
                vec![],
            ),
        )
        .await;
    let eva_id = r.json()["id"].as_str().unwrap().to_string();
    let first = wait_token(maildir, "eva@acme.example", &accept_link, 1).await;
    expect(
        &mia.send(
            "POST",
            &format!("/api/v1/users/{eva_id}/invitation"),
            json!({}),
        )
        .await,
        200,
    );
    let second = wait_token(maildir, "eva@acme.example", &accept_link, 2).await;
    assert_ne!(first, second);
    let old = public(
        addr,
        "/api/v1/invitations/accept",
        json!({"token": first, "password": PW}),
    )
    .await;
    assert_eq!((old.status, old.code().as_str()), (403, "link_invalid"));
    let now = meterlink_collector::store::now_ms();
    let stale = "cd".repeat(32);
    store
        .resend_invitation(
            &eva_id,
            "Mia Rossi",
            &meterlink_collector::model::LinkMail {
                token: stale.clone(),
                sha256: meterlink_collector::token::hash_secret(&stale),
                base_url: PORTAL.into(),
                now_ms: now - 8 * 86_400_000,
                expires_at_ms: now - 86_400_000,
            },
        )
        .await
        .unwrap();
    let expired = public(
        addr,
        "/api/v1/invitations/accept",
        json!({"token": stale, "password": PW}),
    )
    .await;
    assert_eq!(
        (expired.status, expired.code().as_str()),
        (403, "link_invalid")
    );
    assert_eq!(
        op.get(&format!("/api/v1/users/{eva_id}")).await.json()["state"],
        "pending"
    );
    // Zoe's invitation is withdrawn: she is gone.
    let r = mia
        .send(
            "POST",
            "/api/v1/invitations",
            invite(
                "zoe@acme.example",
                "Zoe",
                "Bruni",
                "product_administrator",
                vec![],
            ),
        )
        .await;
    expect(&r, 201);
    let zoe_id = r.json()["id"].as_str().unwrap().to_string();
    expect(
        &mia.send(
            "DELETE",
            &format!("/api/v1/users/{zoe_id}/invitation"),
            json!({}),
        )
        .await,
        204,
    );
    expect(&op.get(&format!("/api/v1/users/{zoe_id}")).await, 404);
    expect(
        &mia.send(
            "DELETE",
            &format!("/api/v1/users/{pat_id}/invitation"),
            json!({}),
        )
        .await,
        409,
    );
    // Another organisation's user is not found; Bob cannot invite into acme.
    let r = bob
        .send(
            "POST",
            "/api/v1/invitations",
            json!({"email": "x@y.example", "first_name": "X", "last_name": "Y",
               "role": "product_administrator", "account": "acme"}),
        )
        .await;
    expect(&r, 404);
    expect(&bob.get(&format!("/api/v1/users/{pat_id}")).await, 404);

    // Surname search among the organisation's users.
    let found = mia
        .get("/api/v1/users?surname=bia&state=active")
        .await
        .json();
    let ids: Vec<&str> = found["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![pat_id.as_str()]);

    // Suspended: Pat's session and token stop at once; reinstated, both work.
    let t = pat
        .send(
            "POST",
            &format!("/api/v1/users/{pat_id}/tokens"),
            json!({"label": "script"}),
        )
        .await;
    expect(&t, 201);
    let pat_token = Api::new(addr, t.json()["token"].as_str().unwrap());
    expect(
        &mia.send(
            "POST",
            &format!("/api/v1/users/{pat_id}/suspend"),
            json!({}),
        )
        .await,
        200,
    );
    for r in [
        pat.get("/api/v1/me").await,
        pat_token.get("/api/v1/me").await,
    ] {
        assert_eq!((r.status, r.code().as_str()), (403, "user_not_active"));
    }
    expect(
        &mia.send(
            "POST",
            &format!("/api/v1/users/{pat_id}/reinstate"),
            json!({}),
        )
        .await,
        200,
    );
    expect(&pat.get("/api/v1/me").await, 200);
    expect(&pat_token.get("/api/v1/me").await, 200);

    // Notifications: Mia turns "opened" off; Pat keeps the defaults.
    let r = mia
        .send(
            "PUT",
            "/api/v1/me/notifications",
            json!({"settings": [{"event": "request_opened", "enabled": false}]}),
        )
        .await;
    expect(&r, 200);
    let bad = mia
        .send("PUT", "/api/v1/me/notifications", json!({"settings": [{"event": "request_opened", "enabled": true, "products": ["G-1"]}]}))
        .await;
    expect(&bad, 404);
    let sr = op
        .send(
            "POST",
            "/api/v1/service-requests",
            json!({"account": "acme", "serial": "A-1", "kind": "incident", "title": "Paper jam"}),
        )
        .await;
    expect(&sr, 201);
    let number = sr.json()["number"].as_str().unwrap().to_string();
    let about_it = |m: &Path, n: &str| {
        received(m)
            .into_iter()
            .filter(|(_, s)| s.contains(n))
            .count()
    };
    let (m, n) = (maildir.to_path_buf(), number.clone());
    until(Duration::from_secs(20), "the opened message", || {
        let (m, n) = (m.clone(), n.clone());
        async move { about_it(&m, &n) >= 1 }
    })
    .await;
    expect(
        &op.send(
            "POST",
            &format!("/api/v1/service-requests/{number}/close"),
            json!({"reason": "fixed"}),
        )
        .await,
        200,
    );
    let (m, n) = (maildir.to_path_buf(), number.clone());
    until(Duration::from_secs(20), "the closed messages", || {
        let (m, n) = (m.clone(), n.clone());
        async move { about_it(&m, &n) >= 3 }
    })
    .await;
    // Nothing else waits to be sent (Mia's "opened" would).
    until(Duration::from_secs(20), "an empty outbox", || async {
        store.email_counts().await.unwrap().pending == 0
    })
    .await;
    let about: Vec<(String, String)> = received(maildir)
        .into_iter()
        .filter(|(_, s)| s.contains(&number))
        .collect();
    let opened = |to: &str| {
        about
            .iter()
            .any(|(t, s)| t == to && (s.contains("opened") || s.contains("aperta")))
    };
    let closed = |to: &str| {
        about
            .iter()
            .any(|(t, s)| t == to && (s.contains("closed") || s.contains("chiusa")))
    };
    assert!(
        opened("pat@acme.example") && closed("pat@acme.example"),
        "{about:?}"
    );
    assert!(
        !opened("mia@acme.example"),
        "Mia turned opened off: {about:?}"
    );
    assert!(closed("mia@acme.example"), "{about:?}");
    assert_eq!(about.len(), 3, "{about:?}");

    // TOTP: on with a code; then a login needs a code of the window, once.
    let r = mia.send("POST", "/api/v1/me/totp", json!({})).await;
    expect(&r, 201);
    let secret = totp::decode_secret(r.json()["secret"].as_str().unwrap()).unwrap();
    let step = meterlink_collector::store::now_ms() / 1000 / totp::STEP_SECS;
    let code = |s: i64| format!("{:06}", totp::code(&secret, s));
    let wrong = mia
        .send(
            "POST",
            "/api/v1/me/totp/confirm",
            json!({"code": code(step + 5)}),
        )
        .await;
    assert_eq!((wrong.status, wrong.code().as_str()), (403, "code_invalid"));
    let on = mia
        .send(
            "POST",
            "/api/v1/me/totp/confirm",
            json!({"code": code(step)}),
        )
        .await;
    expect(&on, 200);
    let recovery: Vec<String> = on.json()["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(recovery.len(), 10);
    let creds = |extra: Value| {
        let mut b = json!({"email": "mia@acme.example", "password": PW});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    let r = login(addr, creds(json!({}))).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (401, "second_factor_required")
    );
    let r = login(addr, creds(json!({"totp": code(step)}))).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (401, "second_factor_wrong"),
        "used at confirmation"
    );
    let r = login(addr, creds(json!({"totp": code(step + 3)}))).await;
    assert_eq!(r.code(), "second_factor_wrong", "outside the window");
    let r = login(addr, creds(json!({"totp": code(step + 1)}))).await;
    expect(&r, 201);
    let r = login(addr, creds(json!({"totp": code(step + 1)}))).await;
    assert_eq!(r.code(), "second_factor_wrong", "a code works once");
    let r = login(
        addr,
        creds(json!({"recovery_code": recovery[0].to_uppercase()})),
    )
    .await;
    expect(&r, 201);
    let mia = Person::from(addr, &r);
    let r = login(addr, creds(json!({"recovery_code": recovery[0]}))).await;
    assert_eq!(
        r.code(),
        "second_factor_wrong",
        "a recovery code works once"
    );

    // Removed: Pat cannot log in; their token is refused.
    expect(
        &mia.send("DELETE", &format!("/api/v1/users/{pat_id}"), json!({}))
            .await,
        204,
    );
    assert_eq!(
        login(addr, json!({"email": "pat@acme.example", "password": PW}))
            .await
            .status,
        401
    );
    assert_eq!(pat_token.get("/api/v1/me").await.status, 401);

    // Requests that send e-mail to a typed address are limited per address.
    for i in 0..4 {
        let r = public(
            addr,
            "/api/v1/password-reset",
            json!({"email": "mia@acme.example"}),
        )
        .await;
        if i < 3 {
            expect(&r, 202);
        } else {
            assert_eq!(
                (r.status, r.code().as_str()),
                (429, "too_many_requests"),
                "{}",
                r.body
            );
            assert!(r.header("retry-after").is_some(), "{}", r.headers);
        }
    }

    // The audit log: each change with its actor.
    let log = op.get("/api/v1/audit?limit=500").await.json();
    let entries = log["items"].as_array().unwrap();
    let has = |kind: &str, actor: &str, action: &str, object: &str| {
        entries.iter().any(|e| {
            e["actor"]["kind"] == kind
                && e["actor"]["id"] == actor
                && e["action"] == action
                && e["object_id"] == object
        })
    };
    let mia_reg = entries
        .iter()
        .find(|e| e["action"] == "confirmed_and_approved")
        .map(|e| e["object_id"].as_str().unwrap().to_string())
        .expect("the approved registration");
    assert!(has("anonymous", "mia@acme.example", "registered", &mia_reg));
    assert!(has(
        "anonymous",
        "mia@acme.example",
        "confirmed_and_approved",
        &mia_reg
    ));
    assert!(has("program", "admin", "approved", &bob_reg));
    assert!(has("program", "admin", "put", "acme"));
    assert!(has("person", &mia_id, "created", &gid.to_string()));
    assert!(has("person", &mia_id, "invited", &pat_id));
    assert!(has("person", &pat_id, "invitation_accepted", &pat_id));
    assert!(has("person", &mia_id, "suspended", &pat_id));
    assert!(has("person", &mia_id, "reinstated", &pat_id));
    assert!(has("person", &mia_id, "removed", &pat_id));
    assert!(has("person", &mia_id, "invitation_withdrawn", &zoe_id));
    assert!(has("person", &mia_id, "second_factor_on", &mia_id));
    assert!(has("person", &mia_id, "notifications_changed", &mia_id));
    let suspended = entries.iter().find(|e| e["action"] == "suspended").unwrap();
    assert_eq!(
        (
            suspended["before"]["state"].as_str(),
            suspended["after"]["state"].as_str()
        ),
        (Some("active"), Some("suspended"))
    );
    // Mia reads her organisation's part only; filtered by user and object.
    let hers = mia.get("/api/v1/audit?limit=500").await.json();
    let hers = hers["items"].as_array().unwrap();
    assert!(!hers.is_empty());
    assert!(
        hers.iter().all(|e| e["organisation"] == "acme-group"),
        "{hers:?}"
    );
    assert!(!hers.iter().any(|e| e["object_id"] == bob_reg.as_str()));
    let by_pat = mia
        .get(&format!("/api/v1/audit?actor={pat_id}"))
        .await
        .json();
    assert!(by_pat["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["actor"]["id"] == pat_id.as_str()));
    let page = op
        .get("/api/v1/audit?object_kind=user&limit=2")
        .await
        .json();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let next = page["next"].as_str().unwrap();
    let older = op
        .get(&format!(
            "/api/v1/audit?object_kind=user&limit=2&before={next}"
        ))
        .await
        .json();
    assert!(older["items"][0]["id"].as_i64().unwrap() < next.parse::<i64>().unwrap());
}

async fn run(extra: &str, smtp: &str) {
    if !have_python_module("aiosmtpd", "the portal's people flows") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let maildir = tmp.path().join("maildir");
    let _server = smtp_server(smtp, &maildir);
    let extra = format!(
        "{extra}[email]\nsmtp_url = \"smtp://{smtp}\"\nfrom = \"meterlink <meterlink@example.com>\"\n\
         public_url = \"{PORTAL}\"\nretry_base_ms = 100\nretry_max_ms = 500\n"
    );
    let c = start_collector(
        &tmp.path().join("c"),
        &extra,
        "agent-p",
        &tmp.path().join("certs"),
    )
    .await;
    flows(&c.operator(), &c.running.store, &maildir).await;
    c.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_join_and_leave_on_sqlite() {
    run("", "127.60.0.2:2526").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_join_and_leave_on_postgres() {
    let Some(url) = scratch_postgres("people_join_and_leave_on_postgres").await else {
        return;
    };
    run(
        &format!("[store]\npostgres = \"{url}\"\n"),
        "127.60.0.3:2527",
    )
    .await;
}
