//! The portal backend: filing at scale and API latency on both stores.

use std::time::Instant;

pub(crate) async fn portal_bench(
    products: usize,
    readings: usize,
    postgres: Option<String>,
    requests: usize,
) {
    let tmp = tempfile::tempdir().expect("tmp");
    let (url, store) =
        crate::setup::open_store(postgres.as_deref(), "portal bench", tmp.path(), "portal.db")
            .await;
    let counters = crate::ingest::COUNTERS;
    let per_product = readings.div_ceil(counters);
    println!(
        "# meterlink-bench portal: {} store, {products} products x {} readings\n",
        store.backend(),
        per_product * counters
    );
    crate::ingest::prepare(&store).await;
    // Filing: each round reads every product once, a day after the last.
    let (values, filing_s) = crate::ingest::file_rounds(&store, products, per_product, 5_000).await;
    println!("| what | figure |\n|---|---|");
    println!("| filing (store.ingest, batches of 5,000 x {counters}) | {:.0} counter values/s ({values} in {filing_s:.0} s) |", values as f64 / filing_s);
    clock_ticks(&store).await;

    let addr = crate::setup::serve_api(&store).await;
    // Every API call authenticates: an operator's token, as a portal would hold.
    store
        .put_user(&meterlink_collector::model::User::new(
            "bench",
            "bench",
            meterlink_collector::model::Role::Operator,
            None,
        ))
        .await
        .expect("user");
    let token = store
        .issue_token("bench", "bench", None, meterlink_collector::store::now_ms())
        .await
        .expect("token")
        .token;
    let token = &token;
    let mut rng = 0x9e3779b97f4a7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let measure = |name: &str, paths: Vec<String>| {
        let name = name.to_string();
        async move {
            let mut lat = Vec::with_capacity(paths.len());
            for p in &paths {
                let t = Instant::now();
                let r = meterlink_tests::http::request_as(addr, Some(token), "GET", p, None).await;
                lat.push(t.elapsed().as_secs_f64() * 1e3);
                assert_eq!(r.status, 200, "{p}: {}", r.body);
            }
            lat.sort_by(|a, b| a.total_cmp(b));
            let q = |f: f64| lat[((lat.len() as f64 * f) as usize).min(lat.len() - 1)];
            (name, q(0.5), q(0.99))
        }
    };
    let health = measure(
        "GET /healthz (baseline)",
        (0..requests).map(|_| "/healthz".to_string()).collect(),
    )
    .await;
    let me = measure(
        "GET /api/v1/me (the token lookup alone)",
        (0..requests).map(|_| "/api/v1/me".to_string()).collect(),
    )
    .await;
    let list = measure(
        "GET /api/v1/products?limit=50&after=<random serial>",
        (0..requests)
            .map(|_| {
                format!(
                    "/api/v1/products?limit=50&after=P{:07}",
                    next() % products as u64
                )
            })
            .collect(),
    )
    .await;
    let history = measure(
        "GET /api/v1/products/<random>/readings",
        (0..requests)
            .map(|_| format!("/api/v1/products/P{:07}/readings", next() % products as u64))
            .collect(),
    )
    .await;
    println!(
        "\n| request ({requests} each) | p50 ms | p99 ms | p99 / baseline p99 |\n|---|---|---|---|"
    );
    for (name, p50, p99) in [&health, &me, &list, &history] {
        println!("| {name} | {p50:.2} | {p99:.2} | {:.1} |", p99 / health.2);
    }
    crate::setup::drop_store(&url).await;
}

/// The clock's rules over the whole fleet, whose readings are years old: as
/// a collector starts (absences wait for the catch-up time), once absences
/// are judged (every product silent: a request each), and again (nothing new).
async fn clock_ticks(store: &meterlink_collector::store::Store) {
    let now = meterlink_collector::store::now_ms();
    for (what, since) in [
        ("at start, absences not judged yet", now),
        ("absences judged: every product silent", i64::MIN),
        ("again, nothing new", i64::MIN),
    ] {
        let t = Instant::now();
        let changes = store
            .tick(now, since)
            .await
            .expect("the clock's rules")
            .total();
        println!(
            "| clock tick over every product, {what} | {:.0} ms, {changes} request changes |",
            t.elapsed().as_secs_f64() * 1e3
        );
    }
}
