//! The web portal's pages under load: wrk (Debian's package) with many
//! concurrent clients, logged in, on the product list and on the page of a
//! product with many readings (and its chart), against /healthz over the
//! same path as the baseline; either store.

use meterlink_collector::auth::password;
use meterlink_collector::model::{Account, ProductUpdate, Role, User};
use meterlink_proto::v1::observation::Body;
use meterlink_proto::v1::{CounterValue, Identity, MeterReading, Observation};
use std::net::SocketAddr;
use std::time::Instant;

const COMPANY: &str = "c000";
const EMAIL: &str = "mia@bench.example";
const PASSWORD: &str = "a long bench password";
/// The product with the long history.
const BUSY: &str = "P00000";
/// Minutes between two of its readings (eMaintenance every 15 minutes).
const EVERY_MIN: i64 = 15;

/// What wrk measured on one address.
pub(crate) struct Load {
    pub(crate) rps: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
}

/// A latency of wrk's text ("812.00us", "3.21ms", "1.02s") in ms.
fn ms(text: &str) -> Option<f64> {
    let t = text.trim();
    if let Some(v) = t.strip_suffix("us") {
        return v.parse::<f64>().ok().map(|v| v / 1e3);
    }
    if let Some(v) = t.strip_suffix("ms") {
        return v.parse().ok();
    }
    if let Some(v) = t.strip_suffix('s') {
        return v.parse::<f64>().ok().map(|v| v * 1e3);
    }
    None
}

/// wrk on `path` with `clients` connections for `secs`, each request with
/// `header` (a session cookie, a bearer token); `script`, a Lua file that
/// makes each request's path.
pub(crate) fn wrk(
    addr: SocketAddr,
    path: &str,
    header: &str,
    clients: usize,
    secs: u64,
    script: Option<&std::path::Path>,
) -> Load {
    let mut cmd = std::process::Command::new("wrk");
    cmd.args([
        "-t2",
        &format!("-c{clients}"),
        &format!("-d{secs}s"),
        "--latency",
        "-H",
        header,
    ]);
    if let Some(s) = script {
        cmd.arg("-s").arg(s);
    }
    let out = cmd
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("wrk runs (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "wrk failed: {text}");
    assert!(
        !text.contains("Non-2xx"),
        "{path}: answers other than 2xx/3xx under load:\n{text}"
    );
    let line = |prefix: &str| -> Option<&str> {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1))
    };
    Load {
        rps: line("Requests/sec:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0),
        p50_ms: line("50%").and_then(ms).unwrap_or(f64::NAN),
        p99_ms: line("99%").and_then(ms).unwrap_or(f64::NAN),
    }
}

pub(crate) async fn web_bench(
    products: usize,
    readings: usize,
    postgres: Option<String>,
    clients: usize,
    secs: u64,
) {
    let tmp = tempfile::tempdir().expect("tmp");
    let (url, store) =
        crate::setup::open_store(postgres.as_deref(), "web bench", tmp.path(), "web.db").await;
    println!(
        "# meterlink-bench web: {} store, {products} products, {readings} readings of {BUSY}, \
         wrk with {clients} clients for {secs} s per page\n",
        store.backend()
    );
    store
        .put_account(&Account {
            id: COMPANY.into(),
            name: "Bench Srl".into(),
            billing_code: "B".into(),
            service_code: "S".into(),
            auto_create_products: true,
            time_zone: "Europe/Rome".into(),
            organisation: None,
        })
        .await
        .expect("account");
    store.agent_hello("bench", "1", 0).await.expect("hello");
    store
        .set_agent_account("bench", Some(COMPANY))
        .await
        .expect("agent's company");
    let now = meterlink_collector::store::now_ms();
    let identities: Vec<Observation> = (0..products)
        .map(|p| Observation {
            seq: p as u64 + 1,
            taken_at_ms: now - 86_400_000,
            device_address: "10.0.0.1:161".into(),
            serial: format!("P{p:05}"),
            body: Some(Body::Identity(Identity {
                vendor: "Canon".into(),
                model: format!("iR-ADV C{}", 3500 + (p % 50) * 10),
                serial: format!("P{p:05}"),
                ..Default::default()
            })),
        })
        .collect();
    for chunk in identities.chunks(1_000) {
        store.ingest("bench", chunk).await.expect("products");
    }
    // The busy product's history: every 15 minutes up to now, two counters.
    let t = Instant::now();
    let first_seq = products as u64 + 1;
    let history: Vec<Observation> = (0..readings)
        .map(|i| {
            let age = (readings - i) as i64 * EVERY_MIN * 60_000;
            Observation {
                seq: first_seq + i as u64,
                taken_at_ms: now - age,
                device_address: "10.0.0.1:161".into(),
                serial: BUSY.into(),
                body: Some(Body::Meter(MeterReading {
                    counters: vec![
                        CounterValue {
                            id: "canon.101".into(),
                            value: 100_000 + 7 * i as u64,
                            ..Default::default()
                        },
                        CounterValue {
                            id: "canon.108".into(),
                            value: 40_000 + 3 * i as u64,
                            ..Default::default()
                        },
                    ],
                })),
            }
        })
        .collect();
    for chunk in history.chunks(500) {
        store.ingest("bench", chunk).await.expect("readings");
    }
    store
        .update_product(
            BUSY,
            &ProductUpdate {
                billing_day: Some(1),
                ..ProductUpdate::default()
            },
        )
        .await
        .expect("billing day");
    eprintln!("history written in {:.1} s", t.elapsed().as_secs_f64());

    // A chart made afresh reads the counter's history in buckets; pages
    // ask for it again only when the product reports.
    let t = Instant::now();
    for _ in 0..20 {
        store
            .counter_series(
                BUSY,
                "canon.101",
                now - readings as i64 * EVERY_MIN * 60_000,
                now,
                360,
            )
            .await
            .expect("series");
    }
    let series_ms = t.elapsed().as_secs_f64() * 1e3 / 20.0;
    let mut mia = User::new("mia", "Mia Bench", Role::AccountManager, Some(COMPANY));
    mia.email = Some(EMAIL.into());
    store.put_user(&mia).await.expect("user");
    let phc = password::hash(PASSWORD, &[3u8; 16]).expect("hash");
    store.set_password("mia", &phc).await.expect("password");

    let addr = crate::setup::serve_api(&store).await;
    // Logged in as a person would be: the login form's cookie.
    let login = meterlink_tests::http::request_with(
        addr,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(&format!(
            "email={}&password={}",
            EMAIL.replace('@', "%40"),
            PASSWORD.replace(' ', "+")
        )),
    )
    .await;
    assert_eq!(login.status, 303, "login: {}", login.body);
    let cookie = login
        .header("set-cookie")
        .and_then(|c| c.split(';').next().map(str::to_string))
        .expect("a session cookie");
    let pages = [
        ("GET /healthz (baseline)", "/healthz".to_string()),
        ("product list (25 a page)", "/products".to_string()),
        ("product list, a search", "/products?q=P0001".to_string()),
        ("product page, 10,000 readings", format!("/products/{BUSY}")),
        (
            "its chart (SVG)",
            format!("/products/{BUSY}/chart.svg?counter=canon.101"),
        ),
    ];
    for (_, path) in &pages {
        let r =
            meterlink_tests::http::request_with(addr, "GET", path, &[("Cookie", &cookie)], None)
                .await;
        assert_eq!(
            r.status,
            200,
            "{path}: {}",
            &r.body[..r.body.len().min(300)]
        );
    }
    println!("| page | requests/s | p50 ms | p99 ms | p99 / baseline p99 |");
    println!("|---|---|---|---|---|");
    let mut base_p99 = f64::NAN;
    for (i, (what, path)) in pages.iter().enumerate() {
        let l = wrk(
            addr,
            path,
            &format!("Cookie: {cookie}"),
            clients,
            secs,
            None,
        );
        if i == 0 {
            base_p99 = l.p99_ms;
        }
        println!(
            "| {what} | {:.0} | {:.2} | {:.2} | {:.1}x |",
            l.rps,
            l.p50_ms,
            l.p99_ms,
            l.p99_ms / base_p99
        );
    }
    println!(
        "\nthe chart's history read afresh (counter_series, {readings} readings into 360 buckets): {series_ms:.2} ms"
    );
    crate::setup::drop_store(&url).await;
}
