//! Ingest on both stores in one run: the same batches filed through
//! `Store::ingest` (dedupe, products, filing rules, request rules; no gRPC)
//! into SQLite and into PostgreSQL, and the ratio of their rates.

use crate::setup::{drop_store, open_store};
use meterlink_collector::model::Account;
use meterlink_collector::store::Store;
use meterlink_proto::v1::observation::Body;
use meterlink_proto::v1::{CounterValue, MeterReading, Observation};
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

/// Counters per meter reading, as the portal bench files them.
pub(crate) const COUNTERS: usize = 4;

/// An account that creates products and the agent `bench` in it.
pub(crate) async fn prepare(store: &Store) {
    prepare_agents(store, 1).await;
}

/// The agent names of a run with `agents` agents.
fn agent_name(i: usize) -> String {
    if i == 0 {
        "bench".into()
    } else {
        format!("bench-{i}")
    }
}

pub(crate) async fn prepare_agents(store: &Store, agents: usize) {
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
    for i in 0..agents {
        let name = agent_name(i);
        store.agent_hello(&name, "1", 0).await.expect("hello");
        store
            .set_agent_account(&name, Some("acme"))
            .await
            .expect("agent account");
    }
}

/// Files `rounds` readings of every product (one round a day, each product
/// once per round) in batches of `batch`; the counter values filed and the
/// seconds it took.
pub(crate) async fn file_rounds(
    store: &Store,
    products: usize,
    rounds: usize,
    batch: usize,
) -> (u64, f64) {
    let started = Instant::now();
    let values = agent_rounds(store, "bench", 0..products, rounds, batch).await;
    (values, started.elapsed().as_secs_f64())
}

/// The meter readings of `products` in round `round` (a day after the
/// round before), numbered on from `seq`.
pub(crate) fn meter_batch(products: &[usize], round: usize, seq: &mut u64) -> Vec<Observation> {
    let t0 = 1_700_000_000_000i64;
    products
        .iter()
        .map(|p| {
            *seq += 1;
            Observation {
                seq: *seq,
                taken_at_ms: t0 + round as i64 * 86_400_000 + *p as i64,
                device_address: "10.0.0.1:161".into(),
                serial: format!("P{p:07}"),
                body: Some(Body::Meter(MeterReading {
                    counters: (0..COUNTERS)
                        .map(|c| CounterValue {
                            id: format!("canon.{}", 101 + c),
                            value: 1_000 + round as u64 * 500 + c as u64,
                            ..Default::default()
                        })
                        .collect(),
                })),
            }
        })
        .collect()
}

/// One agent filing its products' rounds, batch after batch as its uplink
/// sends them (the next after the ack).
async fn agent_rounds(
    store: &Store,
    agent: &str,
    products: std::ops::Range<usize>,
    rounds: usize,
    batch: usize,
) -> u64 {
    let mut seq = 0u64;
    let started = Instant::now();
    let mut values = 0u64;
    let all: Vec<usize> = products.collect();
    for round in 0..rounds {
        for chunk in all.chunks(batch.max(1)) {
            let obs = meter_batch(chunk, round, &mut seq);
            values += store
                .ingest(agent, &obs)
                .await
                .expect("ingest")
                .counter_values;
        }
        if round == 0 || (round + 1) % 5 == 0 {
            eprintln!(
                "{} {agent}: round {}/{rounds}: {values} values in {:.0} s",
                store.backend(),
                round + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    values
}

/// What the ingest benches file: `readings` per product in batches.
pub(crate) struct Shape {
    pub(crate) products: usize,
    pub(crate) readings: usize,
    pub(crate) batch: usize,
}

impl Shape {
    pub(crate) fn rounds(&self) -> usize {
        self.readings.div_ceil(COUNTERS)
    }
}

/// Agents `agents` (of `total` that share the products) filing at once,
/// agent `i` through `stores[i % stores.len()]`; the counter values filed
/// and the seconds it took.
pub(crate) async fn file_agents(
    stores: &[Arc<Store>],
    agents: Range<usize>,
    total: usize,
    shape: &Shape,
) -> (u64, f64) {
    let share = shape.products.div_ceil(total.max(1));
    let started = Instant::now();
    let tasks: Vec<_> = agents
        .map(|i| {
            let store = stores[i % stores.len()].clone();
            let range = (i * share).min(shape.products)..((i + 1) * share).min(shape.products);
            let (rounds, batch) = (shape.rounds(), shape.batch);
            tokio::spawn(
                async move { agent_rounds(&store, &agent_name(i), range, rounds, batch).await },
            )
        })
        .collect();
    let mut values = 0;
    for t in tasks {
        values += t.await.expect("an agent's task");
    }
    (values, started.elapsed().as_secs_f64())
}

/// `agents` agents filing at once, each its share of the products;
/// counter values per second.
pub(crate) async fn file_at_once(stores: &[Arc<Store>], agents: usize, shape: &Shape) -> f64 {
    let (values, secs) = file_agents(stores, 0..agents, agents, shape).await;
    values as f64 / secs
}

pub(crate) async fn ingest_bench(shape: &Shape, agents: &[usize], postgres: &str) {
    println!(
        "# meterlink-bench ingest: {} products x {} readings of {COUNTERS} counters, batches of {}\n",
        shape.products,
        shape.rounds() * COUNTERS,
        shape.batch
    );
    println!("| agents at once | SQLite values/s | PostgreSQL values/s | PostgreSQL / SQLite |\n|---|---|---|---|");
    for &n in agents {
        let n = n.max(1);
        let mut rates = Vec::new();
        for pg in [None, Some(postgres)] {
            let tmp = tempfile::tempdir().expect("tmp");
            let (url, store) = open_store(pg, "ingest bench", tmp.path(), "ingest.db").await;
            prepare_agents(&store, n).await;
            rates.push(file_at_once(&[store], n, shape).await);
            drop_store(&url).await;
        }
        println!(
            "| {n} | {:.0} | {:.0} | {:.2} |",
            rates[0],
            rates[1],
            rates[1] / rates[0]
        );
    }
}
