//! The portal backend: filing at scale and API latency on both stores.

use std::sync::Arc;
use std::time::Instant;

pub(crate) async fn portal_bench(
    products: usize,
    readings: usize,
    postgres: Option<String>,
    requests: usize,
) {
    use meterlink_collector::model::Account;
    use meterlink_collector::store::{Settings, Store};
    use meterlink_proto::v1::observation::Body;
    use meterlink_proto::v1::{CounterValue, MeterReading, Observation};
    let tmp = tempfile::tempdir().expect("tmp");
    let url = match &postgres {
        Some(base) => {
            std::env::set_var(meterlink_collector::store::TEST_DATABASE_ENV, base);
            meterlink_collector::store::scratch_postgres("portal bench")
                .await
                .expect("schema")
        }
        None => tmp.path().join("portal.db").display().to_string(),
    };
    let store = Arc::new(Store::open(&url, Settings::default()).await.expect("store"));
    let counters = 4;
    let per_product = readings.div_ceil(counters);
    println!(
        "# meterlink-bench portal: {} store, {products} products x {} readings\n",
        store.backend(),
        per_product * counters
    );
    store
        .put_account(&Account {
            id: "acme".into(),
            name: "Acme".into(),
            billing_code: "B".into(),
            service_code: "S".into(),
            auto_create_products: true,
            time_zone: "UTC".into(),
            organisation: None,
        })
        .await
        .expect("account");
    store.agent_hello("bench", "1", 0).await.expect("hello");
    store
        .set_agent_account("bench", Some("acme"))
        .await
        .expect("agent account");
    // Filing: each round reads every product once, a day after the last.
    let t0 = 1_700_000_000_000i64;
    let mut seq = 0u64;
    let t = Instant::now();
    let mut values = 0u64;
    for round in 0..per_product {
        for chunk in (0..products).collect::<Vec<_>>().chunks(5_000) {
            let batch: Vec<Observation> = chunk
                .iter()
                .map(|p| {
                    seq += 1;
                    Observation {
                        seq,
                        taken_at_ms: t0 + round as i64 * 86_400_000 + *p as i64,
                        device_address: "10.0.0.1:161".into(),
                        serial: format!("P{p:07}"),
                        body: Some(Body::Meter(MeterReading {
                            counters: (0..counters)
                                .map(|c| CounterValue {
                                    id: format!("canon.{}", 101 + c),
                                    value: 1_000 + round as u64 * 500 + c as u64,
                                    ..Default::default()
                                })
                                .collect(),
                        })),
                    }
                })
                .collect();
            values += store
                .ingest("bench", &batch)
                .await
                .expect("ingest")
                .counter_values;
        }
        if round == 0 || (round + 1) % 5 == 0 {
            eprintln!(
                "round {}/{per_product}: {values} values in {:.0} s",
                round + 1,
                t.elapsed().as_secs_f64()
            );
        }
    }
    let filing_s = t.elapsed().as_secs_f64();
    println!("| what | figure |\n|---|---|");
    println!("| filing (store.ingest, batches of 5,000 x {counters}) | {:.0} counter values/s ({values} in {filing_s:.0} s) |", values as f64 / filing_s);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(meterlink_collector::api::serve(
        listener,
        store.clone(),
        std::sync::Arc::new(meterlink_collector::metrics::Metrics::new()),
    ));
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
    if postgres.is_some() {
        meterlink_collector::store::drop_scratch_postgres(&url).await;
    }
}
