//! The portal's content at scale: knowledge search over many articles and
//! the service-request list over a million requests, over HTTP, against
//! /healthz over the same path as the baseline, on either store.

use meterlink_collector::model::{Account, Article, ProductUpdate, Role, User};
use meterlink_collector::store::{Settings, Store};
use meterlink_proto::v1::observation::Body;
use meterlink_proto::v1::{Identity, Observation};
use std::sync::Arc;
use std::time::Instant;

const COMPANIES: usize = 100;
const PRODUCTS_PER_COMPANY: usize = 10;
const MODELS: usize = 50;
/// Words are drawn by Zipf's law from this rank on: the ranks above stand
/// for the function words ("the", "of") a text index leaves out, so the
/// most frequent word drawn is in about a quarter of the articles.
const FIRST_CONTENT_WORD: usize = 50;

/// xorshift64: the same corpus and queries on every run and store.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// A rank in lo..hi, small ranks far more often (log-uniform: Zipf's
    /// law with exponent 1).
    fn zipf(&mut self, lo: usize, hi: usize) -> usize {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        let r = (lo as f64) * (hi as f64 / lo as f64).powf(u);
        (r as usize).clamp(lo, hi - 1)
    }
}

/// Words of the corpus: printer words first (the most frequent), then
/// made-up words from syllables.
fn vocabulary(n: usize) -> Vec<String> {
    let mut v: Vec<String> = "paper jam tray toner drum fuser duplex scan copy print error \
        cover drawer cassette finisher staple network driver firmware power cartridge waste \
        feed roller sheet colour black memory disk login address mail folder fax panel \
        display reboot update install replace clean check open close remove load"
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let syl = [
        "ka", "re", "mi", "to", "lu", "sa", "ne", "po", "di", "ga", "ve", "ri", "co", "ba", "fe",
        "ti", "mo", "la", "zu", "pe",
    ];
    let mut i = 0usize;
    while v.len() < n {
        let (a, b, c) = (i % 20, (i / 20) % 20, (i / 400) % 20);
        v.push(format!("{}{}{}", syl[a], syl[b], syl[c]));
        i += 1;
    }
    v
}

fn model(i: usize) -> String {
    format!("iR-ADV C{}", 3500 + i * 10)
}

fn code(i: usize) -> String {
    format!("E{:03}-{:04}", i % 1000, i / 1000)
}

fn corpus(n: usize, rng: &mut Rng, vocab: &[String]) -> Vec<Article> {
    let words = |rng: &mut Rng, k: usize| -> String {
        (0..k)
            .map(|_| vocab[rng.zipf(FIRST_CONTENT_WORD, vocab.len())].as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    (0..n)
        .map(|i| {
            let kind = ["faq", "error_code", "troubleshooter"][i % 3];
            let models = if rng.below(10) < 3 {
                Vec::new()
            } else {
                (0..1 + rng.below(3))
                    .map(|_| model(rng.below(MODELS)))
                    .collect()
            };
            Article {
                id: format!("kb-{i:06}"),
                kind: kind.into(),
                code: (kind == "error_code").then(|| code(i / 3)),
                language: if i % 5 == 4 { "it" } else { "en" }.into(),
                models,
                title: words(rng, 6),
                body: words(rng, 80),
            }
        })
        .collect()
}

async fn insert_requests(url: &str, n: usize) {
    let t0 = 1_700_000_000_000i64;
    // Product i % 1000 is company (i % 1000) / 10's; one in 20 is open.
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url).await.expect("postgres");
        sqlx::query(
            "INSERT INTO service_requests (account_id, serial, kind, priority, state, opened_by, title,
               first_seen_ms, last_seen_ms, opened_at_ms, closed_at_ms, description, status)
             SELECT 'c' || lpad(((i % 1000) / 10)::text, 3, '0'), 'P' || lpad((i % 1000)::text, 5, '0'),
               CASE i % 3 WHEN 0 THEN 'incident' WHEN 1 THEN 'consumables' ELSE 'meter_reading' END,
               'normal', CASE WHEN i % 20 = 0 THEN 'open' ELSE 'closed' END, 'bench',
               'Request ' || i, $2 + i * 60000, $2 + i * 60000, $2 + i * 60000,
               CASE WHEN i % 20 = 0 THEN NULL ELSE $2 + i * 60000 + 3600000 END,
               'Paper jams in tray 2 on every A3 sheet', 'new'
             FROM generate_series(1, $1) AS i",
        )
        .bind(n as i64)
        .bind(t0)
        .execute(&pool)
        .await
        .expect("requests");
        sqlx::query("ANALYZE service_requests")
            .execute(&pool)
            .await
            .expect("analyze");
    } else {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{url}"))
            .await
            .expect("sqlite");
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
             INSERT INTO service_requests (account_id, serial, kind, priority, state, opened_by, title,
               first_seen_ms, last_seen_ms, opened_at_ms, closed_at_ms, description, status)
             SELECT printf('c%03d', (i % 1000) / 10), printf('P%05d', i % 1000),
               CASE i % 3 WHEN 0 THEN 'incident' WHEN 1 THEN 'consumables' ELSE 'meter_reading' END,
               'normal', CASE WHEN i % 20 = 0 THEN 'open' ELSE 'closed' END, 'bench',
               'Request ' || i, $2 + i * 60000, $2 + i * 60000, $2 + i * 60000,
               CASE WHEN i % 20 = 0 THEN NULL ELSE $2 + i * 60000 + 3600000 END,
               'Paper jams in tray 2 on every A3 sheet', 'new'
             FROM n",
        )
        .bind(n as i64)
        .bind(t0)
        .execute(&pool)
        .await
        .expect("requests");
        sqlx::query("ANALYZE")
            .execute(&pool)
            .await
            .expect("analyze");
    }
}

/// p50 and p99 in ms of GETs of `paths` as the token's holder.
async fn measure(addr: std::net::SocketAddr, token: Option<&str>, paths: &[String]) -> (f64, f64) {
    let mut lat = Vec::with_capacity(paths.len());
    let mut slowest: Vec<(f64, &str)> = Vec::new();
    for p in paths {
        let t = Instant::now();
        let r = meterlink_tests::http::request_as(addr, token, "GET", p, None).await;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        lat.push(ms);
        slowest.push((ms, p));
        assert_eq!(r.status, 200, "{p}: {}", r.body);
    }
    slowest.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (ms, p) in slowest.iter().take(3) {
        eprintln!("  slowest: {ms:.1} ms {p}");
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let q = |f: f64| lat[((lat.len() as f64 * f) as usize).min(lat.len() - 1)];
    (q(0.5), q(0.99))
}

pub(crate) async fn content_bench(
    articles: usize,
    requests: usize,
    postgres: Option<String>,
    queries: usize,
) {
    let tmp = tempfile::tempdir().expect("tmp");
    let url = match &postgres {
        Some(base) => {
            std::env::set_var(meterlink_collector::store::TEST_DATABASE_ENV, base);
            meterlink_collector::store::scratch_postgres("content bench")
                .await
                .expect("schema")
        }
        None => std::env::var("METERLINK_BENCH_KEEP_DB")
            .unwrap_or_else(|_| tmp.path().join("content.db").display().to_string()),
    };
    let store = Arc::new(Store::open(&url, Settings::default()).await.expect("store"));
    println!(
        "# meterlink-bench content: {} store, {articles} articles, {requests} service requests\n",
        store.backend()
    );
    // Companies, each with ten products of known models.
    for c in 0..COMPANIES {
        store
            .put_account(&Account {
                id: format!("c{c:03}"),
                name: format!("Company {c}"),
                billing_code: "B".into(),
                service_code: "S".into(),
                auto_create_products: false,
                time_zone: "Europe/Rome".into(),
                organisation: None,
            })
            .await
            .expect("account");
    }
    store.agent_hello("bench", "1", 0).await.expect("hello");
    let products = COMPANIES * PRODUCTS_PER_COMPANY;
    let batch: Vec<Observation> = (0..products)
        .map(|p| Observation {
            seq: p as u64 + 1,
            taken_at_ms: 1_700_000_000_000,
            device_address: "10.0.0.1:161".into(),
            serial: format!("P{p:05}"),
            body: Some(Body::Identity(Identity {
                model: model(p % MODELS),
                serial: format!("P{p:05}"),
                ..Default::default()
            })),
        })
        .collect();
    store.ingest("bench", &batch).await.expect("products");
    for p in 0..products {
        store
            .update_product(
                &format!("P{p:05}"),
                &ProductUpdate {
                    account: Some(format!("c{:03}", p / PRODUCTS_PER_COMPANY)),
                    ..ProductUpdate::default()
                },
            )
            .await
            .expect("product account");
    }

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let vocab = vocabulary(20_000);
    let t = Instant::now();
    let all = corpus(articles, &mut rng, &vocab);
    for chunk in all.chunks(2_000) {
        store.put_articles(chunk).await.expect("articles");
    }
    let load_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    insert_requests(&url, requests).await;
    let requests_s = t.elapsed().as_secs_f64();
    eprintln!("articles written in {load_s:.1} s, requests in {requests_s:.1} s");

    let addr = crate::setup::serve_api(&store).await;
    let token = |id: &'static str, role: Role, account: Option<&'static str>| {
        let store = store.clone();
        async move {
            store
                .put_user(&User::new(id, id, role, account))
                .await
                .expect("user");
            store
                .issue_token(id, id, None, meterlink_collector::store::now_ms())
                .await
                .expect("token")
                .token
        }
    };
    let op = token("op", Role::Operator, None).await;
    let am = token("mia", Role::AccountManager, Some("c042")).await;

    let mut searches = Vec::with_capacity(queries);
    for _ in 0..queries {
        let lang = if rng.below(10) < 7 { "en" } else { "en,it" };
        let text = |rng: &mut Rng| {
            (0..1 + rng.below(3))
                .map(|_| vocab[rng.zipf(FIRST_CONTENT_WORD, 2_000)].clone())
                .collect::<Vec<_>>()
                .join("%20")
        };
        let c = code(rng.below(articles / 3));
        searches.push(match rng.below(3) {
            0 => format!("/api/v1/kb-articles?code={c}&lang={lang}"),
            1 => format!("/api/v1/kb-articles?q={}&lang={lang}", text(&mut rng)),
            _ => format!(
                "/api/v1/kb-articles?code={}&q={}&lang={lang}",
                &c[..4],
                text(&mut rng)
            ),
        });
    }
    let lists: Vec<String> = (0..queries)
        .map(|_| match rng.below(3) {
            0 => "/api/v1/service-requests?state=open&limit=50".to_string(),
            1 => "/api/v1/service-requests?limit=50".to_string(),
            _ => format!(
                "/api/v1/service-requests?state=closed&limit=50&before=SR-{:06}",
                1 + rng.below(requests)
            ),
        })
        .collect();
    let health: Vec<String> = (0..queries).map(|_| "/healthz".to_string()).collect();
    let base = measure(addr, None, &health).await;
    let rows = [
        ("GET /healthz (baseline)", base),
        (
            "knowledge search, operator (code, text, code prefix + text)",
            measure(addr, Some(&op), &searches).await,
        ),
        (
            "knowledge search, account manager (their models' articles)",
            measure(addr, Some(&am), &searches).await,
        ),
        (
            "service-request list, operator (50 a page)",
            measure(addr, Some(&op), &lists).await,
        ),
        (
            "service-request list, account manager (50 a page)",
            measure(addr, Some(&am), &lists).await,
        ),
    ];
    println!(
        "| request ({queries} each) | p50 ms | p99 ms | p99 / baseline p99 |\n|---|---|---|---|"
    );
    for (name, (p50, p99)) in rows {
        println!("| {name} | {p50:.2} | {p99:.2} | {:.1} |", p99 / base.1);
    }
    if postgres.is_some() {
        if std::env::var_os("METERLINK_BENCH_KEEP_DB").is_some() {
            eprintln!("kept: {url}");
        } else {
            meterlink_collector::store::drop_scratch_postgres(&url).await;
        }
    }
}
