//! The web portal in a real browser (Debian's Chromium driven by
//! Playwright) on both stores. tests/browser/journey.mjs: a company
//! registers and confirms from the captured e-mail (aiosmtpd), invites a
//! Product Administrator who accepts, makes a group with the wizard, opens
//! a service request and finds it among the open ones, enters a reading,
//! switches to Italian; the administrator sees only their products; then
//! every page at desktop and phone width. tests/browser/portal.mjs: a person logs in
//! (a wrong password first), sees their open request on the home page,
//! finds the product in the product list and opens its page (details,
//! counters, configuration, knowledge centre), switches to Italian and logs
//! out, enters a meter reading for a product without eMaintenance (a wrong
//! one first) and sees it in the chart, at desktop and phone width; axe-core
//! finds no serious or critical violation and the console no CSP violation
//! or script error. Screenshots are left in target/screenshots/.

use meterlink_collector::auth::password;
use meterlink_collector::model::OutboxResult;
use meterlink_collector::store::{scratch_postgres, Store};
use meterlink_proto::v1::observation::Body;
use meterlink_proto::v1::{
    Component, CounterValue, Identity, MeterReading, Observation, Supplies, Supply,
};
use meterlink_tests::http::{expect, get, Api};
use meterlink_tests::peers::{have_python_module, have_tool, skip};
use meterlink_tests::stack::start_collector;
use serde_json::json;
use std::path::PathBuf;

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Whether Chromium, node and the npm packages are here (skipped, or a
/// failure under CI, when not).
fn browser_ready(test: &str) -> bool {
    if !have_tool("chromium", test) || !have_tool("node", test) {
        return false;
    }
    if !browser_dir().join("node_modules/playwright-core").is_dir() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{test}: run `npm ci` in tests/browser (.ci/run does)");
        }
        skip(test, "npm ci in tests/browser first (.ci/run does)");
        return false;
    }
    true
}

async fn setup(op: &Api, store: &Store) {
    expect(
        &op.send(
            "PUT",
            "/api/v1/accounts/acme",
            json!({"id": "acme", "name": "Acme Ltd", "billing_code": "B-1", "service_code": "S-1",
                   "auto_create_products": true}),
        )
        .await,
        200,
    );
    store.agent_hello("agent-w", "0.1.0", 10).await.unwrap();
    expect(
        &op.send(
            "PATCH",
            "/api/v1/agents/agent-w",
            json!({"account": "acme"}),
        )
        .await,
        200,
    );
    let now = meterlink_collector::store::now_ms();
    let tray = |index: u32, name: &str, level: i64, media: &str| Component {
        kind: "input".into(),
        index,
        name: name.into(),
        r#type: "sheetFeedAutoRemovableTray".into(),
        capacity: Some(550),
        level: Some(level),
        media: media.into(),
        ..Default::default()
    };
    let obs = |seq: u64, body: Body| Observation {
        seq,
        taken_at_ms: now - 60_000,
        device_address: "10.0.0.9:161".into(),
        serial: "A-1".into(),
        body: Some(body),
    };
    let batch = [
        obs(
            1,
            Body::Identity(Identity {
                vendor: "Canon".into(),
                model: "iR-ADV C5560".into(),
                serial: "A-1".into(),
                components: vec![
                    tray(1, "Drawer 1", 400, "A4, 297 x 210 mm, Plain"),
                    tray(2, "Drawer 2", -3, "A3, 420 x 297 mm"),
                    Component {
                        kind: "output".into(),
                        index: 1,
                        name: "Finisher Tray A".into(),
                        capacity: Some(3000),
                        level: Some(2400),
                        ..Default::default()
                    },
                    Component {
                        kind: "media_path".into(),
                        index: 1,
                        r#type: "longEdgeBindingDuplex".into(),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }),
        ),
        obs(
            2,
            Body::Meter(MeterReading {
                counters: vec![CounterValue {
                    id: "canon.101".into(),
                    value: 184_527,
                    ..Default::default()
                }],
            }),
        ),
    ];
    store.ingest("agent-w", &batch).await.unwrap();
    let supplies = Observation {
        seq: 5,
        taken_at_ms: now - 30_000,
        device_address: "10.0.0.9:161".into(),
        serial: "A-1".into(),
        body: Some(Body::Supplies(Supplies {
            supplies: vec![Supply {
                index: 1,
                description: "Black Toner".into(),
                kind: "toner".into(),
                percent: Some(42),
                state: "ok".into(),
                ..Default::default()
            }],
        })),
    };
    store.ingest("agent-w", &[supplies]).await.unwrap();
    expect(
        &op.send(
            "PATCH",
            "/api/v1/products/A-1",
            json!({"terms": {"response_hours": 8, "service": "on_site",
                   "coverage": {"days": [1, 2, 3, 4, 5], "from": "08:00", "to": "18:00",
                                "time_zone": "Europe/Rome"}}}),
        )
        .await,
        200,
    );
    // B-2: read by hand (no eMaintenance), with one reading two days ago.
    let b2 = |seq: u64, body: Body| Observation {
        seq,
        taken_at_ms: now - 2 * 86_400_000,
        device_address: "10.0.0.10:161".into(),
        serial: "B-2".into(),
        body: Some(body),
    };
    store
        .ingest(
            "agent-w",
            &[
                b2(
                    3,
                    Body::Identity(Identity {
                        vendor: "Canon".into(),
                        model: "iR-ADV C3530".into(),
                        serial: "B-2".into(),
                        ..Default::default()
                    }),
                ),
                b2(
                    4,
                    Body::Meter(MeterReading {
                        counters: vec![CounterValue {
                            id: "canon.101".into(),
                            value: 5_000,
                            ..Default::default()
                        }],
                    }),
                ),
            ],
        )
        .await
        .unwrap();
    expect(
        &op.send(
            "PATCH",
            "/api/v1/products/B-2",
            json!({"emaintenance": false}),
        )
        .await,
        200,
    );
    expect(
        &op.send(
            "PUT",
            "/api/v1/users/mia",
            json!({"id": "mia", "name": "mia", "first_name": "Mia", "last_name": "Rossi",
                   "role": "account_manager", "account": "acme", "email": "mia@example.com"}),
        )
        .await,
        200,
    );
    let phc = password::hash("correct horse battery", &[7u8; 16]).unwrap();
    store.set_password("mia", &phc).await.unwrap();
    expect(
        &op.send(
            "POST",
            "/api/v1/service-requests",
            json!({"account": "acme", "serial": "A-1", "kind": "incident", "title": "Paper jam in tray 2",
                   "description": "Jams on every A3 sheet"}),
        )
        .await,
        201,
    );
}

/// Beta Srl: a company without users whose serials C-1, C-2 (read by
/// hand) and C-3 a registration names; the knowledge centre's articles;
/// a group of Acme's for the tour.
async fn setup_beta(op: &Api, store: &Store) {
    expect(
        &op.send(
            "PUT",
            "/api/v1/accounts/beta",
            json!({"id": "beta", "name": "Beta Srl", "billing_code": "B-2000", "service_code": "S-2000",
                   "auto_create_products": true}),
        )
        .await,
        200,
    );
    store.agent_hello("agent-b", "0.1.0", 10).await.unwrap();
    expect(
        &op.send(
            "PATCH",
            "/api/v1/agents/agent-b",
            json!({"account": "beta"}),
        )
        .await,
        200,
    );
    let now = meterlink_collector::store::now_ms();
    let mut batch = Vec::new();
    for (i, (serial, model)) in [
        ("C-1", "iR-ADV C5560"),
        ("C-2", "iR-ADV C3530"),
        ("C-3", "LBP 325x"),
    ]
    .into_iter()
    .enumerate()
    {
        let obs = |seq: u64, body: Body| Observation {
            seq,
            taken_at_ms: now - 3 * 86_400_000,
            device_address: format!("10.0.1.{i}:161"),
            serial: serial.into(),
            body: Some(body),
        };
        batch.push(obs(
            10 + 2 * i as u64,
            Body::Identity(Identity {
                vendor: "Canon".into(),
                model: model.into(),
                serial: serial.into(),
                ..Default::default()
            }),
        ));
        batch.push(obs(
            11 + 2 * i as u64,
            Body::Meter(MeterReading {
                counters: vec![CounterValue {
                    id: "canon.101".into(),
                    value: 10_000,
                    ..Default::default()
                }],
            }),
        ));
    }
    store.ingest("agent-b", &batch).await.unwrap();
    expect(
        &op.send(
            "PATCH",
            "/api/v1/products/C-2",
            json!({"emaintenance": false}),
        )
        .await,
        200,
    );
    for (id, title, body) in [
        (
            "kb-jam-duplex",
            "Paper jam in the duplex unit",
            "Open the duplex cover on the right side.\n\nPull the jammed sheet out slowly,              without tearing it, and close the cover.",
        ),
        (
            "kb-jam-tray",
            "Paper jam in a drawer",
            "Pull the drawer out, remove the jammed paper and fan the stack before putting it back.",
        ),
    ] {
        expect(
            &op.send(
                "PUT",
                &format!("/api/v1/kb-articles/{id}"),
                json!({"id": id, "kind": "troubleshooter", "title": title, "body": body}),
            )
            .await,
            200,
        );
    }
    expect(
        &op.send(
            "POST",
            "/api/v1/groups",
            json!({"account": "acme", "name": "Print room"}),
        )
        .await,
        201,
    );
}

/// A form posted as a browser would, with extra headers.
async fn form_post(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> meterlink_tests::http::Reply {
    let mut all = vec![("Content-Type", "application/x-www-form-urlencoded")];
    all.extend_from_slice(headers);
    meterlink_tests::http::request_with(addr, "POST", path, &all, Some(body)).await
}

/// An answer is a page (not JSON) with this status and title, under the
/// pages' content security policy, setting no cookie.
fn assert_error_page(r: &meterlink_tests::http::Reply, status: u16, title: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    let kind = r.header("content-type").unwrap_or_default();
    assert!(kind.starts_with("text/html"), "{kind}: {}", r.body);
    assert!(r.body.contains(title), "no {title:?} in {}", r.body);
    assert!(r.header("content-security-policy").is_some());
    assert!(r.header("set-cookie").is_none());
}

/// What a person's browser gets for what no page answers, in the person's
/// language; the API's answers stay JSON.
async fn error_pages(op: &Api) {
    let it = ("Accept-Language", "it-IT,it;q=0.9");
    assert_error_page(&get(op.addr, "/no-such-page").await, 404, "Page not found");
    let api = op.get("/api/v1/no-such-endpoint").await;
    assert_eq!((api.status, api.code().as_str()), (404, "not_found"));
    // Another site's form cannot log anyone in (login CSRF).
    let forged = form_post(
        op.addr,
        "/login",
        &[("Origin", "https://evil.example")],
        "email=mia%40example.com&password=correct+horse+battery",
    )
    .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(forged.header("set-cookie").is_none());
    // A NUL in a form's text (the API's answer: tests/it/collector/api.rs).
    let nul = form_post(
        op.addr,
        "/login",
        &[it],
        "email=mia%40example.com%00&password=correct+horse+battery",
    )
    .await;
    assert_error_page(&nul, 400, "Testo non accettato");
    // An address or a form the handlers cannot read (a group's number that
    // is not one, a login form without its password), with the refusal's
    // status.
    let group =
        meterlink_tests::http::request_with(op.addr, "GET", "/groups/abc", &[it], None).await;
    assert_error_page(&group, 400, "Richiesta non compresa");
    let login = form_post(op.addr, "/login", &[it], "email=mia%40example.com").await;
    assert_error_page(&login, 422, "Richiesta non compresa");
    let api = op.request("DELETE", "/api/v1/groups/abc", None).await;
    assert_eq!((api.status, api.code().as_str()), (400, "invalid_request"));
}

async fn portal(op: &Api, store: &Store, name: &str, maildir: &std::path::Path) {
    setup(op, store).await;
    setup_beta(op, store).await;
    // The pages' headers, as a browser gets them.
    let login = get(op.addr, "/login").await;
    expect(&login, 200);
    let csp = login.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert_eq!(login.header("cache-control").as_deref(), Some("no-store"));
    let home = get(op.addr, "/").await;
    assert_eq!(home.status, 303, "{}", home.body);
    assert_eq!(home.header("location").as_deref(), Some("/login"));

    error_pages(op).await;

    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/screenshots")
        .join(name);
    let out = tokio::process::Command::new("node")
        .arg(browser_dir().join("portal.mjs"))
        .env("BASE_URL", format!("http://{}", op.addr))
        .env("EMAIL", "mia@example.com")
        .env("PASSWORD", "correct horse battery")
        .env("SCREENSHOTS", &shots)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "the browser test failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for page in [
        "login",
        "login-error",
        "home",
        "products",
        "product",
        "login-it",
    ] {
        for width in ["desktop", "phone"] {
            assert!(shots.join(format!("{width}-{page}.png")).is_file());
        }
    }

    let out = tokio::process::Command::new("node")
        .arg(browser_dir().join("journey.mjs"))
        .env("BASE_URL", format!("http://{}", op.addr))
        .env("MAILDIR", maildir)
        .env("TOUR_EMAIL", "mia@example.com")
        .env("TOUR_PASSWORD", "correct horse battery")
        .env("SCREENSHOTS", &shots)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "the browser journey failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // What the journey did, as the API sees it.
    let users = op.get("/api/v1/users?account=beta").await;
    expect(&users, 200);
    let state = |email: &str| {
        users.json()["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["email"] == email)
            .map(|u| {
                (
                    u["role"].as_str().unwrap_or("").to_string(),
                    u["state"].as_str().unwrap_or("").to_string(),
                )
            })
    };
    assert_eq!(
        state("bea@beta.example"),
        Some(("account_manager".into(), "active".into()))
    );
    assert_eq!(
        state("paolo@beta.example"),
        Some(("product_administrator".into(), "active".into()))
    );
    assert_eq!(
        state("dora@beta.example"),
        Some(("product_administrator".into(), "refused".into()))
    );
    let open = op
        .get("/api/v1/service-requests?account=beta&state=open")
        .await
        .json();
    // (The clock's rules may have opened device-silent requests too.)
    assert!(
        open["service_requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["title"] == "Toner smears on every page" && r["kind"] == "incident"),
        "{open}"
    );
    let c1 = op.get("/api/v1/products/C-1").await.json();
    assert_eq!(c1["alt_name"], "Reception");

    setup_console(op, store).await;
    let out = tokio::process::Command::new("node")
        .arg(browser_dir().join("console.mjs"))
        .env("BASE_URL", format!("http://{}", op.addr))
        .env("MAILDIR", maildir)
        .env("OPERATOR_EMAIL", "olga@provider.example")
        .env("OPERATOR_PASSWORD", "service desk keys 42")
        .env("SCREENSHOTS", &shots)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "the console in the browser failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // What the operator did, as the API sees it.
    assert_eq!(
        op.get("/api/v1/products/X-9").await.json()["account"],
        "acme"
    );
    let lines = op.get("/api/v1/contract-lines?account=gamma").await.json();
    assert_eq!(lines["contract_lines"].as_array().unwrap().len(), 1);
    let zoe = op.get("/api/v1/users?account=gamma").await.json();
    assert_eq!(zoe["users"][0]["email"], "zoe@zeta.example");
    assert_eq!(zoe["users"][0]["state"], "active");
    expect(&op.get("/api/v1/kb-articles/kb-e602-hdd").await, 404);
    // The retried letter is sent this time.
    meterlink_tests::peers::until(
        std::time::Duration::from_secs(20),
        "the retried e-mail to be sent",
        || async { store.email_counts().await.unwrap().dead == 0 },
    )
    .await;
    for page in [
        "journey-register",
        "journey-confirmed",
        "journey-group-wizard-products",
        "journey-request",
        "journey-profile-it",
        "journey-pa-products",
        "desktop-customers",
        "console-overview",
        "console-company",
        "phone-console-agents",
        "phone-console-queues-email",
        "phone-request",
        "phone-group",
        "phone-profile",
    ] {
        assert!(shots.join(format!("{page}.png")).is_file(), "{page}");
    }
}

/// For the console: an agent no company owns with a device, an
/// operator with a password, and an e-mail the mail server refused for
/// good (a dead letter).
async fn setup_console(op: &Api, store: &Store) {
    store.agent_hello("agent-x", "0.1.0", 0).await.unwrap();
    let now = meterlink_collector::store::now_ms();
    let obs = |seq: u64, body: Body| Observation {
        seq,
        taken_at_ms: now - 60_000,
        device_address: "10.0.9.9:161".into(),
        serial: "X-9".into(),
        body: Some(body),
    };
    store
        .ingest(
            "agent-x",
            &[obs(
                1,
                Body::Identity(Identity {
                    vendor: "Canon".into(),
                    model: "iR-ADV C5560".into(),
                    serial: "X-9".into(),
                    ..Default::default()
                }),
            )],
        )
        .await
        .unwrap();
    expect(
        &op.send(
            "PUT",
            "/api/v1/users/olga",
            json!({"id": "olga", "name": "olga", "first_name": "Olga", "last_name": "Ferri",
                   "role": "operator", "email": "olga@provider.example"}),
        )
        .await,
        200,
    );
    let phc = password::hash("service desk keys 42", &[9u8; 16]).unwrap();
    store.set_password("olga", &phc).await.unwrap();
    let sent = store.email_entries("sent", 1).await.unwrap();
    let refused = OutboxResult::Dead {
        error: "550 mailbox unavailable".into(),
    };
    store.email_result(sent[0].id, refused).await.unwrap();
}

/// A collector on `store_toml` that sends e-mail to aiosmtpd on `smtp`.
async fn run(test: &str, store_toml: &str, smtp: &str, name: &str) {
    if !browser_ready(test) || !have_python_module("aiosmtpd", test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("maildir");
    let _server = super::email::smtp_server(smtp, &maildir);
    let extra = format!(
        "{store_toml}[email]\nsmtp_url = \"smtp://{smtp}\"\nfrom = \"meterlink <meterlink@example.com>\"\n\
         public_url = \"https://portal.example.com\"\nretry_base_ms = 100\nretry_max_ms = 500\n"
    );
    let c = start_collector(dir.path(), &extra, "agent-w", &dir.path().join("certs")).await;
    portal(&c.operator(), &c.running.store, name, &maildir).await;
    c.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_in_a_browser_on_sqlite() {
    run(
        "portal_in_a_browser_on_sqlite",
        "",
        "127.60.0.6:2530",
        "sqlite",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_in_a_browser_on_postgres() {
    let Some(url) = scratch_postgres("portal_in_a_browser_on_postgres").await else {
        return;
    };
    let store = format!("[store]\npostgres = \"{url}\"\n");
    run(
        "portal_in_a_browser_on_postgres",
        &store,
        "127.60.0.7:2531",
        "postgres",
    )
    .await;
}
