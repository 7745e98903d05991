//! The web portal in a real browser (Debian's Chromium driven by
//! Playwright, tests/browser/portal.mjs) on both stores: a person logs in
//! (a wrong password first), sees their open request on the home page,
//! finds the product in the product list and opens its page (details,
//! counters, configuration, knowledge centre), switches to Italian and logs
//! out, enters a meter reading for a product without eMaintenance (a wrong
//! one first) and sees it in the chart, at desktop and phone width; axe-core
//! finds no serious or critical violation and the console no CSP violation
//! or script error. Screenshots are left in target/screenshots/.

use meterlink_collector::auth::password;
use meterlink_collector::store::{scratch_postgres, Store};
use meterlink_proto::v1::observation::Body;
use meterlink_proto::v1::{Component, CounterValue, Identity, MeterReading, Observation};
use meterlink_tests::http::{expect, get, Api};
use meterlink_tests::peers::{have_tool, skip};
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

async fn portal(op: &Api, store: &Store, name: &str) {
    setup(op, store).await;
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

    // An address that is no page: a page saying so; the API's stay JSON.
    let lost = get(op.addr, "/no-such-page").await;
    assert_eq!(lost.status, 404);
    assert!(lost
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/html"));
    assert!(lost.body.contains("Page not found"), "{}", lost.body);
    assert!(lost.header("content-security-policy").is_some());
    let api = op.get("/api/v1/no-such-endpoint").await;
    assert_eq!((api.status, api.code().as_str()), (404, "not_found"));
    // Another site's form cannot log anyone in (login CSRF).
    let forged = meterlink_tests::http::request_with(
        op.addr,
        "POST",
        "/login",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", "https://evil.example"),
        ],
        Some("email=mia%40example.com&password=correct+horse+battery"),
    )
    .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(forged.header("set-cookie").is_none());

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
}

#[tokio::test]
async fn portal_in_a_browser_on_sqlite() {
    if !browser_ready("portal_in_a_browser_on_sqlite") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let c = start_collector(dir.path(), "", "agent-w", &dir.path().join("certs")).await;
    portal(&c.operator(), &c.running.store, "sqlite").await;
    c.running.stop().await;
}

#[tokio::test]
async fn portal_in_a_browser_on_postgres() {
    if !browser_ready("portal_in_a_browser_on_postgres") {
        return;
    }
    let Some(url) = scratch_postgres("portal_in_a_browser_on_postgres").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("[store]\npostgres = \"{url}\"\n");
    let c = start_collector(dir.path(), &extra, "agent-w", &dir.path().join("certs")).await;
    portal(&c.operator(), &c.running.store, "postgres").await;
    c.running.stop().await;
}
