//! A collector for the targets that need one: its store (SQLite in a
//! temporary folder; with METERLINK_FUZZ_POSTGRES=1, a fresh schema in the
//! PostgreSQL database METERLINK_TEST_DATABASE_URL names, as the store
//! tests make, left behind for a look) and its REST API as the
//! server routes it, with an operator, an account manager of `acme`, the
//! products of the project recordings filed by an agent of acme, a group
//! and a service request. Built once per process.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use meterlink_collector::api::{self, Settings as ApiSettings};
use meterlink_collector::metrics::Metrics;
use meterlink_collector::model::{Account, Role, User};
use meterlink_collector::store::{Settings, Store};
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;

pub const AGENT: &str = "fuzz-agent";

pub struct Collector {
    pub rt: tokio::runtime::Runtime,
    pub store: Arc<Store>,
    pub router: axum::Router,
    /// Bearer tokens: an operator's and acme's account manager's.
    pub operator: String,
    pub manager: String,
    /// A serial acme owns, a group of acme, a request on that serial.
    pub serial: String,
    pub group: i64,
    pub request: String,
    _dir: tempfile::TempDir,
}

pub fn collector() -> &'static Collector {
    static C: OnceLock<Collector> = OnceLock::new();
    C.get_or_init(build)
}

fn build() -> Collector {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let store = rt.block_on(async {
        let url = match std::env::var("METERLINK_FUZZ_POSTGRES").as_deref() {
            Ok("1") => meterlink_collector::store::scratch_postgres("fuzz")
                .await
                .expect("METERLINK_FUZZ_POSTGRES=1 needs METERLINK_TEST_DATABASE_URL"),
            _ => dir.path().join("fuzz.db").display().to_string(),
        };
        eprintln!(
            "fuzzing the collector on {}",
            meterlink_collector::store::redact_url(&url)
        );
        let store = Store::open(&url, Settings::default())
            .await
            .unwrap_or_else(|e| panic!("cannot open the store {url}: {e}"));
        let acme = Account {
            id: "acme".into(),
            name: "Acme".into(),
            billing_code: "B-1".into(),
            service_code: "S-1".into(),
            auto_create_products: true,
            time_zone: "Europe/Rome".into(),
            organisation: None,
        };
        store.put_account(&acme).await.expect("account acme");
        store.agent_hello(AGENT, "fuzz", 0).await.expect("hello");
        store
            .set_agent_account(AGENT, Some("acme"))
            .await
            .expect("agent of acme");
        Arc::new(store)
    });
    let token = |user: User| {
        rt.block_on(async {
            store.put_user(&user).await.expect("a user");
            store
                .issue_token(&user.id, "fuzz", None, meterlink_collector::store::now_ms())
                .await
                .expect("a token")
                .token
        })
    };
    let operator = token(User::new("fuzz-op", "Olga Operator", Role::Operator, None));
    let manager = token(User::new(
        "fuzz-am",
        "Anna Manager",
        Role::AccountManager,
        Some("acme"),
    ));
    let router = api::router(
        store.clone(),
        Arc::new(Metrics::new()),
        ApiSettings::default(),
    );
    let filed = rt.block_on(store.ingest(AGENT, crate::fixture_observations()));
    filed.expect("the recordings' observations are filed");
    let serial = crate::fixture_observations()
        .iter()
        .find(|o| !o.serial.is_empty())
        .expect("a recording with a serial")
        .serial
        .clone();
    let group = rt
        .block_on(store.create_group("acme", "Print room", None))
        .expect("a group")
        .id;
    let mut c = Collector {
        rt,
        store,
        router,
        operator,
        manager,
        serial,
        group,
        request: String::new(),
        _dir: dir,
    };
    let body = format!(
        r#"{{"account":"acme","serial":"{}","kind":"incident","title":"Paper jam in tray 2"}}"#,
        c.serial
    );
    let (status, text) = c.send(
        "POST",
        "/api/v1/service-requests",
        &c.operator.clone(),
        "application/json",
        body.into_bytes(),
    );
    assert_eq!(status, StatusCode::CREATED, "a service request: {text}");
    c.request = text
        .split("\"number\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the request's number")
        .to_string();
    c
}

impl Collector {
    /// One request through the API's router; the status and the body.
    pub fn send(
        &self,
        method: &str,
        uri: &str,
        token: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, String) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", content_type)
            .body(Body::from(body))
            .expect("the harness builds valid requests");
        self.rt.block_on(async {
            let r = self
                .router
                .clone()
                .oneshot(req)
                .await
                .expect("the router is infallible");
            let status = r.status();
            let bytes = axum::body::to_bytes(r.into_body(), 1 << 24)
                .await
                .unwrap_or_default();
            (status, String::from_utf8_lossy(&bytes).into_owned())
        })
    }
}
