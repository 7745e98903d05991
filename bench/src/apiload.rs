//! The REST API under concurrent load while ingest runs: wrk with 32 and 128
//! connections on the paged product list, one product's readings and the
//! service-request list (each request a random product or page), on a store
//! of 100,000 products and 10 million readings, while an agent's batches are
//! filed at full rate; the ingest rate under load against ingest alone in
//! the same run. Either store.

use crate::ingest::{meter_batch, prepare, COUNTERS};
use meterlink_collector::model::{NewRequest, Role, User};
use meterlink_collector::store::{now_ms, Store};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Observations per batch, as an agent's uplink sends them by default.
const BATCH: usize = 500;

/// An agent filing new rounds of every product until told to stop: the
/// counter values filed and the seconds it ran.
struct Ingest {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(u64, f64, usize, u64)>,
}

impl Ingest {
    fn start(store: Arc<Store>, products: usize, round: usize, seq: u64) -> Ingest {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let all: Vec<usize> = (0..products).collect();
            let started = Instant::now();
            let (mut round, mut seq, mut values) = (round, seq, 0u64);
            'rounds: loop {
                for chunk in all.chunks(BATCH) {
                    if flag.load(Ordering::Relaxed) {
                        break 'rounds;
                    }
                    let obs = meter_batch(chunk, round, &mut seq);
                    values += store
                        .ingest("bench", &obs)
                        .await
                        .expect("ingest")
                        .counter_values;
                }
                round += 1;
            }
            // The next run goes on from the next round: new readings only.
            (values, started.elapsed().as_secs_f64(), round + 1, seq)
        });
        Ingest { stop, task }
    }

    async fn finish(self) -> (f64, usize, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let (values, secs, round, seq) = self.task.await.expect("ingest task");
        (values as f64 / secs.max(1e-9), round, seq)
    }
}

/// A wrk script whose every request is `prefix`, a random number below
/// `below` in `width` digits, then `suffix`.
fn random_path_script(
    dir: &std::path::Path,
    name: &str,
    prefix: &str,
    width: usize,
    below: usize,
    suffix: &str,
) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.lua"));
    let lua = format!(
        "math.randomseed(os.time())\n\
         request = function()\n\
         \x20 local n = string.format(\"%0{width}d\", math.random(0, {}))\n\
         \x20 return wrk.format(\"GET\", \"{prefix}\" .. n .. \"{suffix}\")\n\
         end\n",
        below.saturating_sub(1)
    );
    std::fs::write(&path, lua).expect("wrk script");
    path
}

pub(crate) async fn api_load_bench(
    products: usize,
    readings: usize,
    requests: usize,
    clients: &[usize],
    secs: u64,
    postgres: Option<String>,
) {
    let tmp = tempfile::tempdir().expect("tmp");
    let (url, store) =
        crate::setup::open_store(postgres.as_deref(), "api load bench", tmp.path(), "api.db").await;
    let rounds = readings.div_ceil(products * COUNTERS).max(1);
    println!(
        "# meterlink-bench api-load: {} store, {products} products x {} readings ({} in all), {requests} service requests; wrk {secs} s per address\n",
        store.backend(),
        rounds * COUNTERS,
        products * rounds * COUNTERS
    );
    prepare(&store).await;
    let (values, filing_s) = crate::ingest::file_rounds(&store, products, rounds, 5_000).await;
    eprintln!(
        "filed {values} counter values in {filing_s:.0} s ({:.0}/s)",
        values as f64 / filing_s
    );
    // Service requests of random products, every other one closed.
    let t = Instant::now();
    for i in 0..requests {
        let r = store
            .create_request(
                &NewRequest {
                    account: "acme".into(),
                    serial: Some(format!("P{:07}", (i * 7_919) % products)),
                    kind: "incident".into(),
                    title: format!("Paper jam, tray {}", i % 4 + 1),
                    priority: None,
                    description: "Jams on every A3 sheet".into(),
                    contact_name: "Mia".into(),
                    contact_phone: "+39 02 0000".into(),
                    destination_address: None,
                    destination_location: None,
                    user: "bench".into(),
                },
                now_ms(),
            )
            .await
            .expect("request");
        if i % 2 == 1 {
            store
                .close_request(&r.number, "fixed", "bench", now_ms())
                .await
                .expect("close");
        }
    }
    eprintln!("{requests} requests in {:.1} s", t.elapsed().as_secs_f64());

    let addr = crate::setup::serve_api(&store).await;
    store
        .put_user(&User::new("bench", "bench", Role::Operator, None))
        .await
        .expect("user");
    let token = store
        .issue_token("bench", "bench", None, now_ms())
        .await
        .expect("token")
        .token;
    let auth = format!("Authorization: Bearer {token}");
    let scripts = tmp.path();
    let pages: [(&str, String, std::path::PathBuf); 3] = [
        (
            "GET /api/v1/products?limit=50&after=<random>",
            "/api/v1/products".into(),
            random_path_script(
                scripts,
                "list",
                "/api/v1/products?limit=50&after=P",
                7,
                products,
                "",
            ),
        ),
        (
            "GET /api/v1/products/<random>/readings",
            "/api/v1/products".into(),
            random_path_script(
                scripts,
                "readings",
                "/api/v1/products/P",
                7,
                products,
                "/readings",
            ),
        ),
        (
            "GET /api/v1/service-requests?limit=50&before=<random>",
            "/api/v1/service-requests".into(),
            random_path_script(
                scripts,
                "requests",
                "/api/v1/service-requests?limit=50&before=SR-",
                6,
                requests.max(1),
                "",
            ),
        ),
    ];
    // Each address answers 200 before it is loaded.
    for (_, p, _) in &pages {
        let r = meterlink_tests::http::request_as(addr, Some(&token), "GET", p, None).await;
        assert_eq!(r.status, 200, "{p}: {}", r.body);
    }

    // Ingest alone, then under each load.
    let (mut round, mut seq) = (rounds, (products * rounds) as u64);
    let alone = Ingest::start(store.clone(), products, round, seq);
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (alone_rate, r, s) = alone.finish().await;
    (round, seq) = (r, s);
    println!("ingest alone: {alone_rate:.0} counter values/s\n");
    println!("| request | clients | requests/s | p50 ms | p99 ms | ingest values/s meanwhile | / ingest alone |\n|---|---|---|---|---|---|---|");
    for &c in clients {
        for (name, path, script) in &pages {
            let ingest = Ingest::start(store.clone(), products, round, seq);
            let (a, h, p, s) = (addr, auth.clone(), path.clone(), script.clone());
            let load =
                tokio::task::spawn_blocking(move || crate::web::wrk(a, &p, &h, c, secs, Some(&s)))
                    .await
                    .expect("wrk");
            let (rate, r, s) = ingest.finish().await;
            (round, seq) = (r, s);
            println!(
                "| {name} | {c} | {:.0} | {:.2} | {:.2} | {rate:.0} | {:.2} |",
                load.rps,
                load.p50_ms,
                load.p99_ms,
                rate / alone_rate
            );
        }
    }
    crate::setup::drop_store(&url).await;
}
