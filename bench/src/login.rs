//! People logging in: login throughput and latency (argon2id at OWASP's
//! cost, m = 19456 KiB, t = 2, p = 1) against a request that only checks a
//! session cookie, and against /healthz, in the same run over the same HTTP
//! path. Logins run `concurrency` at a time (argon2 runs on blocking
//! threads: the CPU bounds them); the session checks one after the other.

use meterlink_collector::model::{Account, Role, User};
use meterlink_collector::store::{Settings, Store};
use meterlink_tests::http::request_with;
use std::sync::Arc;
use std::time::Instant;

fn quantiles(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(|a, b| a.total_cmp(b));
    let q = |f: f64| ms[((ms.len() as f64 * f) as usize).min(ms.len() - 1)];
    (q(0.5), q(0.99))
}

pub async fn login_bench(logins: usize, checks: usize, concurrency: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        Store::open(
            dir.path().join("bench.db").to_str().unwrap(),
            Settings::default(),
        )
        .await
        .expect("store"),
    );
    store
        .put_account(&Account {
            id: "acme".into(),
            name: "Acme".into(),
            billing_code: String::new(),
            service_code: String::new(),
            auto_create_products: false,
            time_zone: "UTC".into(),
            organisation: None,
        })
        .await
        .expect("account");
    let password = "lungo il fiume blu";
    for i in 0..concurrency {
        let id = format!("u{i}");
        store
            .put_user(&User {
                email: Some(format!("{id}@example.com")),
                ..User::new(&id, &id, Role::AccountManager, Some("acme"))
            })
            .await
            .expect("user");
        let phc = meterlink_collector::auth::password::hash(password, &[i as u8; 16]).unwrap();
        store.set_password(&id, &phc).await.expect("password");
    }
    let addr = crate::setup::serve_api(&store).await;

    // Logins, `concurrency` users at once, each its own e-mail address.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..concurrency {
        let n = logins / concurrency;
        tasks.push(tokio::spawn(async move {
            let body =
                serde_json::json!({"email": format!("u{i}@example.com"), "password": password})
                    .to_string();
            let mut lat = Vec::with_capacity(n);
            let mut cookie = String::new();
            for _ in 0..n {
                let t = Instant::now();
                let r = request_with(addr, "POST", "/api/v1/sessions", &[], Some(&body)).await;
                lat.push(t.elapsed().as_secs_f64() * 1e3);
                assert_eq!(r.status, 201, "{}", r.body);
                cookie = r
                    .header("set-cookie")
                    .unwrap()
                    .split(';')
                    .next()
                    .unwrap()
                    .to_string();
            }
            (lat, cookie)
        }));
    }
    let mut login_ms = Vec::new();
    let mut cookie = String::new();
    for t in tasks {
        let (lat, c) = t.await.expect("login task");
        login_ms.extend(lat);
        cookie = c;
    }
    let login_s = started.elapsed().as_secs_f64();
    let done = login_ms.len();

    let measure = |path: &'static str, cookie: Option<String>| async move {
        let mut lat = Vec::with_capacity(checks);
        for _ in 0..checks {
            let h: Vec<(&str, &str)> = cookie
                .as_deref()
                .map(|c| vec![("Cookie", c)])
                .unwrap_or_default();
            let t = Instant::now();
            let r = request_with(addr, "GET", path, &h, None).await;
            lat.push(t.elapsed().as_secs_f64() * 1e3);
            assert_eq!(r.status, 200, "{path}: {}", r.body);
        }
        quantiles(lat)
    };
    let health = measure("/healthz", None).await;
    let me = measure("/api/v1/me", Some(cookie)).await;
    let (l50, l99) = quantiles(login_ms);
    println!(
        "argon2id m={} KiB, t={}, p=1; {concurrency} logins at a time on {} cores\n",
        meterlink_collector::auth::password::MEMORY_KIB,
        meterlink_collector::auth::password::PASSES,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    );
    println!("| request | count | per second | p50 ms | p99 ms | p99 / baseline p99 |\n|---|---|---|---|---|---|");
    println!(
        "| GET /healthz (baseline) | {checks} | | {:.2} | {:.2} | 1.0 |",
        health.0, health.1
    );
    println!(
        "| GET /api/v1/me with a session cookie (the session check) | {checks} | | {:.2} | {:.2} | {:.1} |",
        me.0,
        me.1,
        me.1 / health.1
    );
    println!(
        "| POST /api/v1/sessions (login) | {done} | {:.1} | {l50:.2} | {l99:.2} | {:.0} |",
        done as f64 / login_s,
        l99 / health.1
    );
}
