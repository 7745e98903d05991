// The store's SQL, written once for both backends: `include!`d by sqlite.rs
// and postgres.rs, each of which defines `Db` (the sqlx database), `Store`
// (its struct, with `pool`, `label` and `settings`), `MIGRATIONS`,
// `MIGRATION_LOCK`, `VERSION_TABLE`, `LOCK_PRODUCTS` and `new_observations`
// (the duplicate check, which differs by backend).
// Placeholders are `$n`, which both backends accept; QueryBuilder writes
// each backend's own. Integers are 64-bit and flags are 0/1 in both.

use crate::auth::{Role, User};
use crate::filing::{self, Decision, Filed, Incoming};
use crate::requests::{Articles, Change, Track};
use crate::store::{
    Account, AgentInfo, Article, Group, HistoryQuery, IngestOutcome, IssuedToken, ManualReading,
    NewRequest, OutboxCounts, OutboxItem, OutboxResult, Page, Product, ProductQuery, ProductUpdate,
    Reading, RequestEvent, RequestQuery, ServiceRequest, StoreError, TokenInfo,
};
use meterlink_proto::v1::{observation::Body, CounterValue, MeterReading, Observation};
use prost::Message;
use sqlx::{QueryBuilder, Row};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

type Tx = sqlx::Transaction<'static, Db>;
type DbRow = <Db as sqlx::Database>::Row;

const PRODUCT_COLS: &str =
    "p.serial, p.account_id, p.vendor, p.model, p.firmware, p.mac, p.address, \
     p.alt_name, p.site_address, p.location, p.administrator, p.emaintenance, p.billing_day, \
     p.entitlements, p.agent_id, p.first_seen_ms, p.last_seen_ms";

const REQUEST_COLS: &str = "request_id, account_id, serial, kind, priority, state, opened_by, \
     fingerprint, title, code, kb_article, occurrences, first_seen_ms, last_seen_ms, \
     opened_at_ms, closed_at_ms, close_reason";

const READING_COLS: &str =
    "counter_id, value, raw_value, taken_at_ms, filed_at_ms, agent_id, seq, state, anomaly";

fn kind(o: &Observation) -> &'static str {
    match o.body {
        Some(Body::Identity(_)) => "identity",
        Some(Body::Meter(_)) => "meter",
        Some(Body::Status(_)) => "status",
        Some(Body::Supplies(_)) => "supplies",
        None => "empty",
    }
}

/// The raw body kept with an observation. A meter reading whose values all
/// land in `readings` (and whose counter descriptions land in `counters`)
/// keeps an empty body: storing each reading twice halved ingest throughput.
/// Anything that would not round-trip that way keeps its full encoding.
fn stored_body(o: &Observation) -> Vec<u8> {
    if let Some(Body::Meter(m)) = &o.body {
        let mut ids = HashSet::new();
        let lossless = !o.serial.is_empty()
            && m.counters
                .iter()
                .all(|c| c.value <= i64::MAX as u64 && ids.insert(c.id.as_str()));
        if lossless {
            return Vec::new();
        }
    }
    o.encode_to_vec()
}

fn product_from(r: &DbRow) -> Product {
    let entitlements: String = r.get(13);
    Product {
        serial: r.get(0),
        account: r.get(1),
        vendor: r.get(2),
        model: r.get(3),
        firmware: r.get(4),
        mac: r.get(5),
        address: r.get(6),
        alt_name: r.get(7),
        site_address: r.get(8),
        location: r.get(9),
        administrator: r.get(10),
        emaintenance: r.get::<i64, _>(11) != 0,
        billing_day: r.get::<Option<i64>, _>(12).map(|d| d as u32),
        entitlements: serde_json::from_str(&entitlements).unwrap_or_default(),
        groups: Vec::new(),
        agent: r.get(14),
        first_seen_ms: r.get(15),
        last_seen_ms: r.get(16),
        counters: BTreeMap::new(),
    }
}

fn reading_from(r: &DbRow) -> Reading {
    let agent: String = r.get(5);
    let anomaly: Option<String> = r.get(8);
    Reading {
        counter: r.get(0),
        value: r.get::<i64, _>(1) as u64,
        raw_value: r.get::<Option<i64>, _>(2).map(|v| v as u64),
        taken_at_ms: r.get(3),
        filed_at_ms: r.get(4),
        source: if agent.starts_with("manual:") {
            "manual".into()
        } else {
            "agent".into()
        },
        agent: agent
            .strip_prefix("manual:")
            .map(str::to_string)
            .unwrap_or(agent),
        seq: r.get::<i64, _>(6) as u64,
        state: r.get(7),
        anomaly: anomaly.and_then(|a| serde_json::from_str(&a).ok()),
    }
}

pub(crate) fn request_number(id: i64) -> String {
    format!("SR-{id:06}")
}

fn request_id(number: &str) -> Option<i64> {
    number.strip_prefix("SR-")?.parse().ok()
}

fn request_from(r: &DbRow) -> ServiceRequest {
    ServiceRequest {
        number: request_number(r.get(0)),
        account: r.get(1),
        serial: r.get(2),
        kind: r.get(3),
        priority: r.get(4),
        state: r.get(5),
        opened_by: r.get(6),
        fingerprint: r.get(7),
        title: r.get(8),
        code: r.get(9),
        kb_article: r.get(10),
        occurrences: r.get::<i64, _>(11) as u32,
        first_seen_ms: r.get(12),
        last_seen_ms: r.get(13),
        opened_at_ms: r.get(14),
        closed_at_ms: r.get(15),
        close_reason: r.get(16),
        events: Vec::new(),
    }
}

/// None for a role this collector does not know (a newer schema's).
fn user_from(r: &DbRow) -> Option<User> {
    Some(User {
        id: r.get(0),
        name: r.get(1),
        role: Role::parse(r.get::<&str, _>(2))?,
        account: r.get(3),
    })
}

fn account_from(r: &DbRow) -> Account {
    Account {
        id: r.get(0),
        name: r.get(1),
        billing_code: r.get(2),
        service_code: r.get(3),
        auto_create_products: r.get::<i64, _>(4) != 0,
        time_zone: r.get(5),
    }
}

/// A reading of one batch on its way into `readings`.
struct NewReading<'a> {
    serial: &'a str,
    counter: &'a str,
    value: i64,
    raw: Option<i64>,
    taken_at_ms: i64,
    seq: i64,
    state: &'static str,
    anomaly: Option<String>,
}

/// Something that moves a product's request track, in time order.
enum TrackEvent<'a> {
    Status(&'a meterlink_proto::v1::DeviceStatus),
    Supplies(&'a meterlink_proto::v1::Supplies),
    /// The anomalous counters of one meter observation: (counter, what).
    Anomalies(Vec<(String, String)>),
}

/// A product's request track while a transaction works on it.
struct Tracked {
    account: Option<String>,
    emaintenance: bool,
    track: Track,
    changed: bool,
}

fn in_list<'a>(qb: &mut QueryBuilder<'a, Db>, items: impl IntoIterator<Item = &'a str>) {
    qb.push("(");
    let mut sep = qb.separated(", ");
    for i in items {
        sep.push_bind(i);
    }
    sep.push_unseparated(")");
}

fn anomaly_text(a: &filing::Anomaly) -> String {
    match a {
        filing::Anomaly::Regression { filed, value } => {
            format!("{value} is lower than the filed {filed} (or higher than a later one)")
        }
        filing::Anomaly::Jump {
            filed,
            value,
            pages_per_day,
        } => format!("{value} after {filed} is {pages_per_day} pages a day"),
    }
}

impl Store {
    pub fn backend(&self) -> &'static str {
        BACKEND
    }

    fn err(&self, source: sqlx::Error) -> StoreError {
        StoreError::Db {
            path: self.label.clone(),
            source,
        }
    }

    /// Applies the backend's migrations not applied yet, in one transaction.
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        if let Some(lock) = MIGRATION_LOCK {
            sqlx::query(lock)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        sqlx::query(VERSION_TABLE)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        let v: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_version")
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        let have = v.unwrap_or(0) as usize;
        if have > MIGRATIONS.len() {
            return Err(StoreError::refused(
                "schema_too_new",
                format!(
                    "{}: schema version {have} is newer than this collector knows ({}); run the newer collector",
                    self.label,
                    MIGRATIONS.len()
                ),
            ));
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(have) {
            sqlx::raw_sql(m)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
            sqlx::query("INSERT INTO schema_version (version) VALUES ($1)")
                .bind((i + 1) as i64)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        tx.commit().await.map_err(|e| self.err(e))
    }

    /// Records that an agent connected and the highest seq it holds;
    /// returns the highest seq filed from it.
    pub async fn agent_hello(
        &self,
        agent: &str,
        version: &str,
        held: u64,
    ) -> Result<u64, StoreError> {
        let now = super::now_ms();
        sqlx::query(
            "INSERT INTO agents (agent_id, version, first_seen_ms, last_seen_ms, held_seq) VALUES ($1, $2, $3, $3, $4)
             ON CONFLICT (agent_id) DO UPDATE SET version = excluded.version, last_seen_ms = excluded.last_seen_ms,
             held_seq = excluded.held_seq",
        )
        .bind(agent)
        .bind(version)
        .bind(now)
        .bind(held.min(i64::MAX as u64) as i64)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        let h: i64 = sqlx::query_scalar("SELECT highest_seq FROM agents WHERE agent_id = $1")
            .bind(agent)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(h as u64)
    }

    /// Files one batch in one transaction: raw observations deduplicated on
    /// (agent, seq), products, readings through the filing rules, and the
    /// service-request changes the observations cause. Rows go in multi-row
    /// statements: per-row round trips would cost more than the writes.
    pub async fn ingest(
        &self,
        agent: &str,
        batch: &[Observation],
    ) -> Result<IngestOutcome, StoreError> {
        let mut out = IngestOutcome::default();
        for o in batch {
            if o.seq == 0 || o.seq > i64::MAX as u64 {
                return Err(StoreError::Invalid {
                    agent: agent.into(),
                    seq: o.seq,
                    what: "sequence number out of range".into(),
                });
            }
            out.highest_seq = out.highest_seq.max(o.seq);
        }
        let now = super::now_ms();
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        // Writing first takes SQLite's write lock, so the duplicate check and
        // the inserts see the same state even with several agents.
        sqlx::query(
            "UPDATE agents SET highest_seq = CASE WHEN highest_seq > $1 THEN highest_seq ELSE $1 END,
             last_seen_ms = $2 WHERE agent_id = $3",
        )
        .bind(out.highest_seq as i64)
        .bind(now)
        .bind(agent)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        // 1. Raw observations: only those filed for the first time go on.
        let fresh_all = self.new_observations(&mut tx, agent, batch, now).await?;
        out.new = fresh_all.len() as u64;
        out.duplicates = batch.len() as u64 - out.new;
        let mut fresh: Vec<&Observation> = fresh_all
            .into_iter()
            .filter(|o| !o.serial.is_empty())
            .collect();
        // An agent writes only to products of its own account, or to
        // products no account owns yet (invariant 7).
        let (agent_account, auto_create): (Option<String>, i64) = sqlx::query_as(
            "SELECT g.account_id, COALESCE(a.auto_create, 0) FROM agents g
             LEFT JOIN accounts a ON a.account_id = g.account_id WHERE g.agent_id = $1",
        )
        .bind(agent)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.err(e))?
        .unwrap_or((None, 0));
        let foreign = self
            .foreign_products(&mut tx, agent_account.as_deref(), &fresh)
            .await?;
        if !foreign.is_empty() {
            let before = fresh.len();
            fresh.retain(|o| !foreign.contains(o.serial.as_str()));
            out.foreign = (before - fresh.len()) as u64;
            tracing::warn!(
                %agent,
                observations = out.foreign,
                products = ?foreign.iter().take(10).collect::<Vec<_>>(),
                "observations of products that another account owns are kept but not filed: \
                 assign the agent or the products to the right account"
            );
        }
        // Time order per product: the rules see a device's history as it happened.
        fresh.sort_by(|a, b| {
            (a.serial.as_str(), a.taken_at_ms, a.seq).cmp(&(
                b.serial.as_str(),
                b.taken_at_ms,
                b.seq,
            ))
        });
        let auto_account = agent_account.filter(|_| auto_create != 0);
        self.upsert_products(&mut tx, agent, auto_account.as_deref(), &fresh)
            .await?;
        // 2. Identity details.
        for o in &fresh {
            if let Some(Body::Identity(id)) = &o.body {
                sqlx::query(
                    "UPDATE products SET vendor = $1, model = $2, firmware = $3, mac = $4 WHERE serial = $5",
                )
                .bind(&id.vendor)
                .bind(&id.model)
                .bind(&id.firmware)
                .bind(&id.mac)
                .bind(&o.serial)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
            }
        }
        // 3. Meter readings through the filing rules.
        let mut events: BTreeMap<&str, Vec<(i64, TrackEvent)>> = BTreeMap::new();
        self.file_readings(&mut tx, agent, &fresh, now, &mut out, &mut events)
            .await?;
        // 4. Status and supplies through the request rules.
        for o in &fresh {
            let ev = match &o.body {
                Some(Body::Status(s)) => TrackEvent::Status(s),
                Some(Body::Supplies(s)) => TrackEvent::Supplies(s),
                _ => continue,
            };
            events
                .entry(o.serial.as_str())
                .or_default()
                .push((o.taken_at_ms, ev));
        }
        if !events.is_empty() {
            let serials: Vec<&str> = events.keys().copied().collect();
            let mut tracks = self.load_tracks(&mut tx, &serials).await?;
            let articles = self.article_codes(&mut tx).await?;
            let rules = &self.settings.rules;
            let mut changes: Vec<(String, Change)> = Vec::new();
            for (serial, mut evs) in events {
                let Some(t) = tracks.get_mut(serial) else {
                    continue;
                };
                evs.sort_by_key(|(at, _)| *at);
                for (at, ev) in evs {
                    let c = match ev {
                        TrackEvent::Status(s) => t.track.observe_status(rules, s, at, &articles),
                        TrackEvent::Supplies(s) => {
                            t.track.observe_supplies(rules, s, at, &articles)
                        }
                        TrackEvent::Anomalies(a) => t.track.meter_anomaly(&a, at),
                    };
                    t.changed = true;
                    changes.extend(c.into_iter().map(|c| (serial.to_string(), c)));
                }
            }
            out.request_changes = self.apply_changes(&mut tx, &tracks, &changes, now).await?;
            self.save_tracks(&mut tx, &tracks).await?;
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(out)
    }

    /// The serials in `fresh` of products that an account other than the
    /// agent's (`account`) owns: any account, when the agent has none.
    async fn foreign_products(
        &self,
        tx: &mut Tx,
        account: Option<&str>,
        fresh: &[&Observation],
    ) -> Result<BTreeSet<String>, StoreError> {
        let serials: BTreeSet<&str> = fresh.iter().map(|o| o.serial.as_str()).collect();
        let serials: Vec<&str> = serials.into_iter().collect();
        let mut out = BTreeSet::new();
        for chunk in serials.chunks(500) {
            let mut qb = QueryBuilder::<Db>::new(
                "SELECT p.serial FROM products p WHERE p.account_id IS NOT NULL \
                 AND p.account_id IS DISTINCT FROM ",
            );
            qb.push_bind(account).push(" AND p.serial IN ");
            in_list(&mut qb, chunk.iter().copied());
            let rows: Vec<String> = qb
                .build_query_scalar()
                .fetch_all(&mut **tx)
                .await
                .map_err(|e| self.err(e))?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// Products: one row per serial, with its latest address and agent. A
    /// serial without an account (new, or waiting in the unassigned list)
    /// joins the agent's account when that account creates products
    /// automatically (`auto_account`); otherwise it waits in the unassigned
    /// list. A product with an account keeps it.
    async fn upsert_products(
        &self,
        tx: &mut Tx,
        agent: &str,
        auto_account: Option<&str>,
        fresh: &[&Observation],
    ) -> Result<(), StoreError> {
        let mut products: BTreeMap<&str, (&str, i64, i64)> = BTreeMap::new();
        for o in fresh {
            let e = products.entry(o.serial.as_str()).or_insert((
                o.device_address.as_str(),
                o.taken_at_ms,
                o.taken_at_ms,
            ));
            e.1 = e.1.min(o.taken_at_ms);
            if o.taken_at_ms >= e.2 {
                e.0 = o.device_address.as_str();
                e.2 = o.taken_at_ms;
            }
        }
        let rows: Vec<_> = products.into_iter().collect();
        for chunk in rows.chunks(500) {
            let mut qb = QueryBuilder::<Db>::new(
                "INSERT INTO products (serial, address, agent_id, account_id, first_seen_ms, last_seen_ms) ",
            );
            qb.push_values(chunk, |mut b, (serial, (addr, first, last))| {
                b.push_bind(*serial)
                    .push_bind(*addr)
                    .push_bind(agent)
                    .push_bind(auto_account)
                    .push_bind(*first)
                    .push_bind(*last);
            });
            qb.push(
                " ON CONFLICT (serial) DO UPDATE SET address = excluded.address, agent_id = excluded.agent_id, \
                 account_id = COALESCE(products.account_id, excluded.account_id), \
                 last_seen_ms = CASE WHEN products.last_seen_ms > excluded.last_seen_ms \
                 THEN products.last_seen_ms ELSE excluded.last_seen_ms END",
            );
            qb.build()
                .execute(&mut **tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Files the meter readings of `fresh` (sorted by product and time):
    /// each value goes through `filing::decide` against the filed history,
    /// lands in `readings` as filed, anomaly or repeat, and moves the
    /// current value only when it is the newest filed one.
    async fn file_readings<'b>(
        &self,
        tx: &mut Tx,
        agent: &str,
        fresh: &[&'b Observation],
        now: i64,
        out: &mut IngestOutcome,
        events: &mut BTreeMap<&'b str, Vec<(i64, TrackEvent<'b>)>>,
    ) -> Result<(), StoreError> {
        let meters: Vec<(&Observation, &MeterReading)> = fresh
            .iter()
            .filter_map(|o| match &o.body {
                Some(Body::Meter(m)) => Some((*o, m)),
                _ => None,
            })
            .collect();
        if meters.is_empty() {
            return Ok(());
        }
        // Counter descriptions, once per distinct id in the batch.
        let mut described: BTreeMap<&str, &CounterValue> = BTreeMap::new();
        for (_, m) in &meters {
            for c in &m.counters {
                described.entry(c.id.as_str()).or_insert(c);
            }
        }
        let drows: Vec<_> = described.into_values().collect();
        for chunk in drows.chunks(500) {
            let mut qb = QueryBuilder::<Db>::new(
                "INSERT INTO counters (counter_id, name, unit, oid, wraps_at_bits) ",
            );
            qb.push_values(chunk, |mut b, c| {
                b.push_bind(c.id.as_str())
                    .push_bind(c.name.as_str())
                    .push_bind(c.unit.as_str())
                    .push_bind(c.oid.as_str())
                    .push_bind(c.wraps_at_bits as i64);
            });
            qb.push(
                " ON CONFLICT (counter_id) DO UPDATE SET name = excluded.name, unit = excluded.unit, \
                 oid = excluded.oid, wraps_at_bits = excluded.wraps_at_bits \
                 WHERE (counters.name, counters.unit, counters.oid, counters.wraps_at_bits) IS DISTINCT FROM \
                 (excluded.name, excluded.unit, excluded.oid, excluded.wraps_at_bits)",
            );
            qb.build()
                .execute(&mut **tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        // Current filed values of the batch's products (keyed by the batch's
        // own strings), one row per product.
        let mut serials: Vec<&str> = meters.iter().map(|(o, _)| o.serial.as_str()).collect();
        serials.dedup();
        let mut current = self.load_current(tx, &serials).await?;
        let policy = &self.settings.filing;
        let mut rows: Vec<NewReading> = Vec::new();
        let mut moved: BTreeSet<&str> = BTreeSet::new();
        for (o, m) in &meters {
            let mut anomalies: Vec<(String, String)> = Vec::new();
            for c in m.counters.iter().filter(|c| c.value <= i64::MAX as u64) {
                let key = (o.serial.as_str(), c.id.as_str());
                let incoming = Incoming {
                    raw: c.value,
                    taken_at_ms: o.taken_at_ms,
                    wraps_at_bits: c.wraps_at_bits,
                };
                let cur = current.get(key.0).and_then(|m| m.get(key.1)).copied();
                let decision = match cur {
                    Some(f) if o.taken_at_ms < f.taken_at_ms => {
                        // Late: judged against its filed neighbours. Rows of
                        // this batch go in first so that they count.
                        self.insert_readings(tx, agent, now, &mut rows).await?;
                        let (before, after) =
                            self.neighbours(tx, key.0, key.1, o.taken_at_ms).await?;
                        filing::decide(before, after, incoming, policy)
                    }
                    _ => filing::decide(cur, None, incoming, policy),
                };
                let (value, state, anomaly) = match decision {
                    Decision::File { value, latest } => {
                        let f = Filed {
                            value,
                            taken_at_ms: o.taken_at_ms,
                        };
                        if latest {
                            current
                                .entry(key.0)
                                .or_default()
                                .insert(key.1.to_string(), f);
                            moved.insert(key.0);
                        }
                        out.counter_values += 1;
                        (value, "filed", None)
                    }
                    Decision::Duplicate => (c.value, "repeat", None),
                    Decision::Anomaly(a) => {
                        out.anomalies += 1;
                        anomalies.push((c.id.clone(), anomaly_text(&a)));
                        (
                            c.value,
                            "anomaly",
                            Some(serde_json::to_string(&a).unwrap_or_default()),
                        )
                    }
                };
                rows.push(NewReading {
                    serial: key.0,
                    counter: key.1,
                    value: value.min(i64::MAX as u64) as i64,
                    raw: (value != c.value).then_some(c.value as i64),
                    taken_at_ms: o.taken_at_ms,
                    seq: o.seq as i64,
                    state,
                    anomaly,
                });
            }
            if !anomalies.is_empty() {
                events
                    .entry(o.serial.as_str())
                    .or_default()
                    .push((o.taken_at_ms, TrackEvent::Anomalies(anomalies)));
            }
        }
        self.insert_readings(tx, agent, now, &mut rows).await?;
        let moved: Vec<(&str, &BTreeMap<String, Filed>)> = moved
            .into_iter()
            .filter_map(|s| current.get(s).map(|m| (s, m)))
            .collect();
        self.save_current(tx, &moved).await
    }

    /// The current filed values of `serials`: counter -> value and time.
    /// Callers hold the products' rows (PostgreSQL) or the write lock
    /// (SQLite), so that what they save back is not stale.
    async fn load_current<'s>(
        &self,
        tx: &mut Tx,
        serials: &[&'s str],
    ) -> Result<HashMap<&'s str, BTreeMap<String, Filed>>, StoreError> {
        let wanted: HashSet<&'s str> = serials.iter().copied().collect();
        let mut out = HashMap::with_capacity(serials.len());
        for chunk in serials.chunks(500) {
            let mut qb = QueryBuilder::<Db>::new(
                "SELECT serial, counters FROM product_current WHERE serial IN ",
            );
            in_list(&mut qb, chunk.iter().copied());
            let rows = qb
                .build()
                .fetch_all(&mut **tx)
                .await
                .map_err(|e| self.err(e))?;
            for r in rows {
                let (s, json): (&str, &str) = (r.get(0), r.get(1));
                let Some(s) = wanted.get(s) else { continue };
                out.insert(*s, parse_current(s, json)?);
            }
        }
        Ok(out)
    }

    /// Writes products' whole current-value maps back, one row each.
    async fn save_current(
        &self,
        tx: &mut Tx,
        products: &[(&str, &BTreeMap<String, Filed>)],
    ) -> Result<(), StoreError> {
        for chunk in products.chunks(500) {
            let rows = chunk
                .iter()
                .map(|(s, m)| {
                    let latest = m.values().map(|f| f.taken_at_ms).max().unwrap_or(0);
                    Ok((*s, render_current(s, m)?, latest))
                })
                .collect::<Result<Vec<(&str, String, i64)>, StoreError>>()?;
            let mut qb = QueryBuilder::<Db>::new(
                "INSERT INTO product_current (serial, counters, latest_ms) ",
            );
            qb.push_values(&rows, |mut b, (serial, json, latest)| {
                b.push_bind(*serial)
                    .push_bind(json.as_str())
                    .push_bind(*latest);
            });
            qb.push(
                " ON CONFLICT (serial) DO UPDATE SET counters = excluded.counters, latest_ms = excluded.latest_ms",
            );
            qb.build()
                .execute(&mut **tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    async fn insert_readings(
        &self,
        tx: &mut Tx,
        agent: &str,
        now: i64,
        rows: &mut Vec<NewReading<'_>>,
    ) -> Result<(), StoreError> {
        for chunk in rows.chunks(800) {
            let mut qb = QueryBuilder::<Db>::new(
                "INSERT INTO readings (serial, counter_id, value, raw_value, taken_at_ms, filed_at_ms, agent_id, seq, state, anomaly) ",
            );
            qb.push_values(chunk, |mut b, r| {
                b.push_bind(r.serial)
                    .push_bind(r.counter)
                    .push_bind(r.value)
                    .push_bind(r.raw)
                    .push_bind(r.taken_at_ms)
                    .push_bind(now)
                    .push_bind(agent)
                    .push_bind(r.seq)
                    .push_bind(r.state)
                    .push_bind(r.anomaly.clone());
            });
            qb.push(" ON CONFLICT DO NOTHING");
            qb.build()
                .execute(&mut **tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        rows.clear();
        Ok(())
    }

    /// The filed readings just before (at or before `at`) and just after `at`.
    async fn neighbours(
        &self,
        tx: &mut Tx,
        serial: &str,
        counter: &str,
        at: i64,
    ) -> Result<(Option<Filed>, Option<Filed>), StoreError> {
        let one = |sql: &'static str| sqlx::query(sql).bind(serial).bind(counter).bind(at);
        let to_filed = |r: Option<DbRow>| {
            r.map(|r| Filed {
                value: r.get::<i64, _>(0) as u64,
                taken_at_ms: r.get(1),
            })
        };
        let before = one(
            "SELECT value, taken_at_ms FROM readings WHERE serial = $1 AND counter_id = $2 AND state = 'filed'
             AND taken_at_ms <= $3 ORDER BY taken_at_ms DESC, value DESC LIMIT 1",
        )
        .fetch_optional(&mut **tx)
        .await
        .map_err(|e| self.err(e))?;
        let after = one(
            "SELECT value, taken_at_ms FROM readings WHERE serial = $1 AND counter_id = $2 AND state = 'filed'
             AND taken_at_ms > $3 ORDER BY taken_at_ms ASC, value ASC LIMIT 1",
        )
        .fetch_optional(&mut **tx)
        .await
        .map_err(|e| self.err(e))?;
        Ok((to_filed(before), to_filed(after)))
    }

    /// Request tracks of `serials` (products that exist), locked for this
    /// transaction where the backend can lock rows.
    async fn load_tracks(
        &self,
        tx: &mut Tx,
        serials: &[&str],
    ) -> Result<BTreeMap<String, Tracked>, StoreError> {
        let mut out = BTreeMap::new();
        for chunk in serials.chunks(500) {
            let mut qb = QueryBuilder::<Db>::new(
                "SELECT p.serial, p.account_id, p.emaintenance, p.last_seen_ms, t.track FROM products p \
                 LEFT JOIN request_tracks t ON t.serial = p.serial WHERE p.serial IN ",
            );
            in_list(&mut qb, chunk.iter().copied());
            qb.push(" ORDER BY p.serial");
            qb.push(LOCK_PRODUCTS);
            let rows = qb
                .build()
                .fetch_all(&mut **tx)
                .await
                .map_err(|e| self.err(e))?;
            for r in rows {
                let serial: String = r.get(0);
                let text: Option<String> = r.get(4);
                let mut track: Track = match text.as_deref().map(serde_json::from_str) {
                    Some(Ok(t)) => t,
                    Some(Err(e)) => {
                        tracing::error!(%serial, error = %e, "request track unreadable; starting it again");
                        Track::default()
                    }
                    None => Track::default(),
                };
                let last_seen: Option<i64> = r.get(3);
                if let Some(t) = last_seen {
                    track.last_report_ms = Some(track.last_report_ms.map_or(t, |x| x.max(t)));
                }
                out.insert(
                    serial,
                    Tracked {
                        account: r.get(1),
                        emaintenance: r.get::<i64, _>(2) != 0,
                        track,
                        changed: false,
                    },
                );
            }
        }
        Ok(out)
    }

    async fn save_tracks(
        &self,
        tx: &mut Tx,
        tracks: &BTreeMap<String, Tracked>,
    ) -> Result<(), StoreError> {
        let rows: Vec<(&String, String, Option<i64>)> = tracks
            .iter()
            .filter(|(_, t)| t.changed)
            .map(|(s, t)| {
                (
                    s,
                    serde_json::to_string(&t.track).unwrap_or_default(),
                    t.track.due_ms(&self.settings.rules),
                )
            })
            .collect();
        for chunk in rows.chunks(500) {
            let mut qb =
                QueryBuilder::<Db>::new("INSERT INTO request_tracks (serial, track, due_ms) ");
            qb.push_values(chunk, |mut b, (s, t, due)| {
                b.push_bind(s.as_str()).push_bind(t.clone()).push_bind(*due);
            });
            qb.push(
                " ON CONFLICT (serial) DO UPDATE SET track = excluded.track, due_ms = excluded.due_ms",
            );
            qb.build()
                .execute(&mut **tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    async fn article_codes(&self, tx: &mut Tx) -> Result<Articles, StoreError> {
        let rows = sqlx::query("SELECT code, article_id FROM kb_articles WHERE code IS NOT NULL")
            .fetch_all(&mut **tx)
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
            .collect())
    }

    /// Writes request changes: service requests, their events and, with an
    /// external portal, one outbox row per change in the same transaction.
    /// Returns how many changes were written (a "still seen" is not one).
    async fn apply_changes(
        &self,
        tx: &mut Tx,
        tracks: &BTreeMap<String, Tracked>,
        changes: &[(String, Change)],
        now: i64,
    ) -> Result<u64, StoreError> {
        let mut n = 0;
        for (serial, c) in changes {
            let account = tracks.get(serial).and_then(|t| t.account.clone());
            let (id, event, text) = match c {
                Change::Open {
                    fingerprint,
                    kind,
                    priority,
                    title,
                    code,
                    article,
                    first_seen_ms,
                } => {
                    let id: Option<i64> = sqlx::query_scalar(
                        "INSERT INTO service_requests (account_id, serial, kind, priority, state, opened_by, fingerprint,
                         title, code, kb_article, occurrences, first_seen_ms, last_seen_ms, opened_at_ms)
                         VALUES ($1, $2, $3, $4, 'open', 'automatic', $5, $6, $7, $8, 1, $9, $10, $11)
                         ON CONFLICT DO NOTHING RETURNING request_id",
                    )
                    .bind(account)
                    .bind(serial)
                    .bind(kind.as_str())
                    .bind(priority_str(*priority))
                    .bind(fingerprint)
                    .bind(title)
                    .bind(code)
                    .bind(article)
                    .bind(first_seen_ms)
                    .bind(now.max(*first_seen_ms))
                    .bind(now)
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(|e| self.err(e))?;
                    (id, "opened", title.clone())
                }
                Change::Occurrence {
                    fingerprint,
                    occurrences,
                    at_ms,
                } => {
                    let id: Option<i64> = sqlx::query_scalar(
                        "UPDATE service_requests SET occurrences = $1, last_seen_ms = $2
                         WHERE serial = $3 AND fingerprint = $4 AND state = 'open' RETURNING request_id",
                    )
                    .bind(*occurrences as i64)
                    .bind(at_ms)
                    .bind(serial)
                    .bind(fingerprint)
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(|e| self.err(e))?;
                    (id, "occurrence", format!("occurrence {occurrences}"))
                }
                Change::Seen { fingerprint, at_ms } => {
                    sqlx::query(
                        "UPDATE service_requests SET last_seen_ms = $1
                         WHERE serial = $2 AND fingerprint = $3 AND state = 'open' AND last_seen_ms < $1",
                    )
                    .bind(at_ms)
                    .bind(serial)
                    .bind(fingerprint)
                    .execute(&mut **tx)
                    .await
                    .map_err(|e| self.err(e))?;
                    continue;
                }
                Change::Close {
                    fingerprint,
                    reason,
                    at_ms: _,
                } => {
                    let id: Option<i64> = sqlx::query_scalar(
                        "UPDATE service_requests SET state = 'closed', closed_at_ms = $1, close_reason = $2
                         WHERE serial = $3 AND fingerprint = $4 AND state = 'open' RETURNING request_id",
                    )
                    .bind(now)
                    .bind(reason)
                    .bind(serial)
                    .bind(fingerprint)
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(|e| self.err(e))?;
                    (id, "closed", reason.clone())
                }
            };
            if let Some(id) = id {
                self.request_event(tx, id, event, &text, now).await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Records an event of a request and, with an external portal, queues it.
    async fn request_event(
        &self,
        tx: &mut Tx,
        id: i64,
        event: &str,
        text: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let event_id: i64 = sqlx::query_scalar(
            "INSERT INTO request_events (request_id, at_ms, event, text) VALUES ($1, $2, $3, $4) RETURNING event_id",
        )
        .bind(id)
        .bind(now)
        .bind(event)
        .bind(text)
        .fetch_one(&mut **tx)
        .await
        .map_err(|e| self.err(e))?;
        if !self.settings.outbox {
            return Ok(());
        }
        let sql = format!("SELECT {REQUEST_COLS} FROM service_requests WHERE request_id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_one(&mut **tx)
            .await
            .map_err(|e| self.err(e))?;
        let request = request_from(&row);
        let key = format!("{}-{event_id}", request.number);
        let payload = serde_json::json!({
            "idempotency_key": key,
            "event": event,
            "text": text,
            "at_ms": now,
            "request": request,
        })
        .to_string();
        sqlx::query(
            "INSERT INTO outbox (request_id, idempotency_key, payload, created_ms, next_attempt_ms) VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(id)
        .bind(key)
        .bind(payload)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The clock's rules at `now`: hold-down closes that no observation has
    /// triggered, device-silent requests for eMaintenance products and their
    /// close once the device reports, meter-due requests after the billing
    /// cutoff and their close once the billing read is filed. Returns how many
    /// request changes it wrote.
    pub async fn tick(&self, now: i64) -> Result<u64, StoreError> {
        let rules = &self.settings.rules;
        let silent_before = now - (rules.silent_after_secs as i64).saturating_mul(1000);
        // Candidates are found outside the transaction (SQLite has one
        // writer; ingest should not wait for these reads).
        // Products whose track has something due, that went silent, or that
        // report again while a device-silent request is open.
        let serials: Vec<String> = sqlx::query_scalar(
            "SELECT serial FROM request_tracks WHERE due_ms <= $1
             UNION SELECT p.serial FROM products p WHERE p.emaintenance = 1 AND p.account_id IS NOT NULL
               AND p.last_seen_ms <= $2 AND NOT EXISTS (SELECT 1 FROM service_requests s
                 WHERE s.serial = p.serial AND s.fingerprint = 'device_silent:' AND s.state = 'open')
             UNION SELECT s.serial FROM service_requests s JOIN products p ON p.serial = s.serial
               WHERE s.fingerprint = 'device_silent:' AND s.state = 'open' AND p.last_seen_ms > s.first_seen_ms",
        )
        .bind(now)
        .bind(silent_before)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        let meter_changes = self.meter_due_candidates(now).await?;
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        let mut changes: Vec<(String, Change)> = Vec::new();
        let refs: Vec<&str> = serials
            .iter()
            .map(String::as_str)
            .chain(meter_changes.iter().map(|m| m.0.as_str()))
            .collect();
        let mut tracks = self.load_tracks(&mut tx, &refs).await?;
        // A set: with many silent products a list lookup per track is quadratic.
        let clocked: HashSet<&str> = serials.iter().map(String::as_str).collect();
        for (serial, t) in tracks
            .iter_mut()
            .filter(|(s, _)| clocked.contains(s.as_str()))
        {
            let last = t.track.last_report_ms;
            let mut c = Vec::new();
            // A report since the device-silent request opened closes it.
            if t.track
                .open
                .get("device_silent:")
                .is_some_and(|o| last.is_some_and(|l| l > o.first_seen_ms))
            {
                c.extend(t.track.heard_from(last.unwrap_or(now)));
            }
            c.extend(
                t.track
                    .tick(rules, t.emaintenance && t.account.is_some(), now),
            );
            t.changed = true;
            changes.extend(c.into_iter().map(|c| (serial.clone(), c)));
        }
        for (serial, period, cutoff, has_read) in &meter_changes {
            if let Some(t) = tracks.get_mut(serial) {
                let c = t.track.meter_due(rules, period, *cutoff, *has_read, now);
                t.changed = true;
                changes.extend(c.into_iter().map(|c| (serial.clone(), c)));
            }
        }
        let n = self.apply_changes(&mut tx, &tracks, &changes, now).await?;
        self.save_tracks(&mut tx, &tracks).await?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(n)
    }

    /// Products whose meter-due request should open (billing read still
    /// missing after cutoff and grace) or close (billing read filed):
    /// (serial, period, cutoff, has billing read).
    async fn meter_due_candidates(
        &self,
        now: i64,
    ) -> Result<Vec<(String, String, i64, bool)>, StoreError> {
        // Meter due: products with a billing day, per account time zone.
        let rows = sqlx::query(
            "SELECT p.serial, p.billing_day, a.time_zone FROM products p JOIN accounts a ON a.account_id = p.account_id
             WHERE p.billing_day IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        let mut due: Vec<(String, String, i64)> = Vec::new();
        for r in rows {
            let serial: String = r.get(0);
            let day = r.get::<i64, _>(1).clamp(1, 31) as u32;
            let tz: chrono_tz::Tz = r.get::<String, _>(2).parse().unwrap_or(chrono_tz::UTC);
            if let Some((period, cutoff)) = current_period(now, day, tz) {
                due.push((serial, period, cutoff));
            }
        }
        let rules = &self.settings.rules;
        let mut meter_changes = Vec::new();
        for chunk in due.chunks(200) {
            // Which of them have a billing read (product_current holds the newest
            // filed reading of each counter), and which have a request open.
            let mut qb = QueryBuilder::<Db>::new("SELECT v.serial, v.period, ");
            qb.push("CASE WHEN EXISTS (SELECT 1 FROM product_current c WHERE c.serial = v.serial AND c.latest_ms >= v.cutoff) THEN 1 ELSE 0 END, ");
            qb.push("CASE WHEN EXISTS (SELECT 1 FROM service_requests s WHERE s.serial = v.serial AND s.state = 'open' AND s.fingerprint = ");
            qb.push("'meter_due:' || v.period");
            qb.push(") THEN 1 ELSE 0 END FROM (");
            let mut first = true;
            for (serial, period, cutoff) in chunk {
                qb.push(if first {
                    "SELECT "
                } else {
                    " UNION ALL SELECT "
                });
                first = false;
                qb.push_bind(serial.as_str());
                qb.push(" AS serial, ");
                qb.push_bind(period.as_str());
                qb.push(" AS period, ");
                qb.push_bind(*cutoff);
                qb.push(" AS cutoff");
            }
            qb.push(") v");
            let rows = qb
                .build()
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
            for r in rows {
                let (serial, period): (String, String) = (r.get(0), r.get(1));
                let has_read = r.get::<i32, _>(2) != 0;
                let open = r.get::<i32, _>(3) != 0;
                let cutoff = chunk
                    .iter()
                    .find(|(s, _, _)| *s == serial)
                    .map(|(_, _, c)| *c)
                    .unwrap_or(now);
                let grace = (rules.meter_due_grace_secs as i64).saturating_mul(1000);
                if (open && has_read) || (!open && !has_read && now >= cutoff + grace) {
                    meter_changes.push((serial, period, cutoff, has_read));
                }
            }
        }
        Ok(meter_changes)
    }

    pub async fn products(&self) -> Result<Vec<Product>, StoreError> {
        let sql = format!("SELECT {PRODUCT_COLS} FROM products p ORDER BY p.serial");
        let rows = sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let mut p = product_from(&r);
            p.counters = self.current(&p.serial).await?;
            out.push(p);
        }
        Ok(out)
    }

    /// One page of products, ordered by serial (keyset paging: as fast on
    /// the last page as on the first).
    pub async fn product_page(&self, q: &ProductQuery) -> Result<Page<Product>, StoreError> {
        let limit = q.limit.unwrap_or(50).clamp(1, 1000) as i64;
        let mut qb =
            QueryBuilder::<Db>::new(format!("SELECT {PRODUCT_COLS} FROM products p WHERE 1 = 1"));
        if let Some(a) = &q.account {
            qb.push(" AND p.account_id = ").push_bind(a.as_str());
        }
        if let Some(u) = &q.administrator {
            qb.push(" AND p.administrator = ").push_bind(u.as_str());
        }
        if let Some(after) = &q.after {
            qb.push(" AND p.serial > ").push_bind(after.as_str());
        }
        if let Some(text) = q.q.as_deref().filter(|t| !t.is_empty()) {
            let pattern = format!(
                "%{}%",
                text.to_lowercase()
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            qb.push(" AND (LOWER(p.serial) LIKE ")
                .push_bind(pattern.clone())
                .push(" ESCAPE '\\' OR LOWER(p.model) LIKE ")
                .push_bind(pattern.clone())
                .push(" ESCAPE '\\' OR LOWER(p.alt_name) LIKE ")
                .push_bind(pattern)
                .push(" ESCAPE '\\')");
        }
        if let Some(g) = &q.group {
            qb.push(
                " AND p.serial IN (SELECT gp.serial FROM group_products gp JOIN product_groups g \
                 ON g.group_id = gp.group_id WHERE g.name = ",
            )
            .push_bind(g.as_str());
            if let Some(a) = &q.account {
                qb.push(" AND g.account_id = ").push_bind(a.as_str());
            }
            qb.push(")");
        }
        qb.push(" ORDER BY p.serial LIMIT ").push_bind(limit + 1);
        let rows = qb
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        let mut items: Vec<Product> = rows.iter().map(product_from).collect();
        let next = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items.last().map(|p| p.serial.clone())
        } else {
            None
        };
        self.fill_groups(&mut items).await?;
        Ok(Page { items, next })
    }

    async fn fill_groups(&self, items: &mut [Product]) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT gp.serial, g.name FROM group_products gp JOIN product_groups g ON g.group_id = gp.group_id WHERE gp.serial IN ",
        );
        in_list(&mut qb, items.iter().map(|p| p.serial.as_str()));
        qb.push(" ORDER BY g.name");
        let rows = qb
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        let mut by: HashMap<String, Vec<String>> = HashMap::new();
        for r in rows {
            by.entry(r.get(0)).or_default().push(r.get(1));
        }
        for p in items {
            p.groups = by.remove(&p.serial).unwrap_or_default();
        }
        Ok(())
    }

    pub async fn product(&self, serial: &str) -> Result<Option<Product>, StoreError> {
        let sql = format!("SELECT {PRODUCT_COLS} FROM products p WHERE p.serial = $1");
        let Some(row) = sqlx::query(&sql)
            .bind(serial)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.err(e))?
        else {
            return Ok(None);
        };
        let mut p = [product_from(&row)];
        self.fill_groups(&mut p).await?;
        let [mut p] = p;
        p.counters = self.current(serial).await?;
        Ok(Some(p))
    }

    pub async fn unassigned(&self) -> Result<Vec<Product>, StoreError> {
        let sql = format!(
            "SELECT {PRODUCT_COLS} FROM products p WHERE p.account_id IS NULL ORDER BY p.serial LIMIT 10000"
        );
        let rows = sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(product_from).collect())
    }

    /// Updates a product's portal fields. Assigning it to an account also
    /// gives the account the product's requests that have none.
    pub async fn update_product(
        &self,
        serial: &str,
        u: &ProductUpdate,
    ) -> Result<Product, StoreError> {
        if let Some(d) = u.billing_day {
            if !(1..=31).contains(&d) {
                return Err(StoreError::refused(
                    "invalid_billing_day",
                    format!("billing_day {d}: give a day of the month, 1 to 31"),
                ));
            }
        }
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        let found: Option<Option<String>> =
            sqlx::query_scalar("SELECT account_id FROM products WHERE serial = $1")
                .bind(serial)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        let Some(was_account) = found else {
            return Err(StoreError::NotFound(format!("product {serial:?}")));
        };
        if let Some(a) = &u.account {
            let found: Option<String> =
                sqlx::query_scalar("SELECT account_id FROM accounts WHERE account_id = $1")
                    .bind(a)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| self.err(e))?;
            if found.is_none() {
                return Err(StoreError::refused(
                    "account_not_found",
                    format!("no account {a:?}: create it first"),
                ));
            }
            sqlx::query("UPDATE service_requests SET account_id = $1 WHERE serial = $2 AND account_id IS NULL")
                .bind(a)
                .bind(serial)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        let text = |v: &Option<String>| v.as_ref().map(|s| (!s.is_empty()).then(|| s.clone()));
        let mut administrator = text(&u.administrator);
        if let Some(Some(admin)) = &administrator {
            // The administrator is a user of the account the product is in
            // (after this update): otherwise they could not see it.
            let account = text(&u.account).unwrap_or_else(|| was_account.clone());
            let theirs: Option<Option<String>> =
                sqlx::query_scalar("SELECT account_id FROM users WHERE user_id = $1")
                    .bind(admin)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| self.err(e))?;
            if account.is_none() || theirs != Some(account.clone()) {
                return Err(StoreError::refused(
                    "invalid_administrator",
                    format!(
                        "administrator {admin:?}: name a user of the product's account{}",
                        account.map(|a| format!(" {a:?}")).unwrap_or_default()
                    ),
                ));
            }
        } else if administrator.is_none() && text(&u.account).is_some_and(|a| a != was_account) {
            // A product that changes account leaves its administrator behind.
            administrator = Some(None);
        }
        let mut qb = QueryBuilder::<Db>::new("UPDATE products SET serial = serial");
        for (col, v) in [
            ("account_id", text(&u.account)),
            ("alt_name", text(&u.alt_name)),
            ("site_address", text(&u.site_address)),
            ("location", text(&u.location)),
            ("administrator", administrator),
        ] {
            if let Some(v) = v {
                qb.push(format!(", {col} = ")).push_bind(v);
            }
        }
        if let Some(e) = u.emaintenance {
            qb.push(", emaintenance = ").push_bind(e as i64);
        }
        if let Some(d) = u.billing_day {
            qb.push(", billing_day = ").push_bind(d as i64);
        }
        if let Some(e) = &u.entitlements {
            qb.push(", entitlements = ")
                .push_bind(serde_json::to_string(e).unwrap_or_default());
        }
        qb.push(" WHERE serial = ").push_bind(serial);
        qb.build()
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        self.product(serial)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("product {serial:?}")))
    }

    async fn current(&self, serial: &str) -> Result<BTreeMap<String, u64>, StoreError> {
        let json: Option<String> =
            sqlx::query_scalar("SELECT counters FROM product_current WHERE serial = $1")
                .bind(serial)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
        Ok(match json {
            Some(j) => parse_current(serial, &j)?
                .into_iter()
                .map(|(c, f)| (c, f.value))
                .collect(),
            None => BTreeMap::new(),
        })
    }

    /// Every reading of a product (filed, anomalies and repeats), by counter and time.
    pub async fn readings(&self, serial: &str) -> Result<Vec<Reading>, StoreError> {
        let sql = format!(
            "SELECT {READING_COLS} FROM readings WHERE serial = $1 ORDER BY counter_id, taken_at_ms, seq"
        );
        let rows = sqlx::query(&sql)
            .bind(serial)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(reading_from).collect())
    }

    /// A product's reading history, newest first.
    pub async fn history(
        &self,
        serial: &str,
        q: &HistoryQuery,
    ) -> Result<Vec<Reading>, StoreError> {
        let mut qb = QueryBuilder::<Db>::new(format!(
            "SELECT {READING_COLS} FROM readings WHERE serial = "
        ));
        qb.push_bind(serial);
        if let Some(c) = &q.counter {
            qb.push(" AND counter_id = ").push_bind(c.as_str());
        }
        if let Some(f) = q.from_ms {
            qb.push(" AND taken_at_ms >= ").push_bind(f);
        }
        if let Some(t) = q.to_ms {
            qb.push(" AND taken_at_ms < ").push_bind(t);
        }
        if q.anomalies {
            qb.push(" AND state <> 'repeat'");
        } else {
            qb.push(" AND state = 'filed'");
        }
        // The primary key's own order, read backwards: no sort, and LIMIT stops early.
        qb.push(" ORDER BY taken_at_ms DESC, counter_id DESC LIMIT ")
            .push_bind(q.limit.unwrap_or(1000).clamp(1, 10_000) as i64);
        let rows = qb
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(reading_from).collect())
    }

    /// Files a reading typed in by a user, checked like an automatic one;
    /// only for products without eMaintenance.
    pub async fn manual_reading(
        &self,
        serial: &str,
        m: &ManualReading,
        now: i64,
    ) -> Result<Reading, StoreError> {
        let taken = m.taken_at_ms.unwrap_or(now);
        if taken > now + 60_000 {
            return Err(StoreError::refused(
                "reading_in_future",
                "the reading's time is in the future; give the time it was read",
            ));
        }
        if m.value > i64::MAX as u64 || m.counter.is_empty() {
            return Err(StoreError::refused(
                "invalid_reading",
                "give a counter id and a value below 2^63",
            ));
        }
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        let em: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT emaintenance FROM products p WHERE p.serial = $1{LOCK_PRODUCTS}"
        ))
        .bind(serial)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        let Some(em) = em else {
            return Err(StoreError::NotFound(format!("product {serial:?}")));
        };
        let bits: Option<i64> =
            sqlx::query_scalar("SELECT wraps_at_bits FROM counters WHERE counter_id = $1")
                .bind(&m.counter)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        let (before, after) = self.neighbours(&mut tx, serial, &m.counter, taken).await?;
        let incoming = Incoming {
            raw: m.value,
            taken_at_ms: taken,
            wraps_at_bits: bits.unwrap_or(0) as u32,
        };
        let decision =
            filing::decide_manual(em != 0, before, after, incoming, &self.settings.filing)
                .map_err(|e| {
                    let code = match e {
                        filing::ManualRefused::Automatic => "emaintenance_product",
                        filing::ManualRefused::Duplicate => "duplicate_reading",
                        _ => "implausible_reading",
                    };
                    StoreError::refused(code, e.to_string())
                })?;
        let Decision::File { value, latest } = decision else {
            return Err(StoreError::refused(
                "implausible_reading",
                "reading refused",
            ));
        };
        let who = format!("manual:{}", m.user.as_deref().unwrap_or("unknown"));
        sqlx::query(
            "INSERT INTO readings (serial, counter_id, value, raw_value, taken_at_ms, filed_at_ms, agent_id, seq, state)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 'filed')",
        )
        .bind(serial)
        .bind(&m.counter)
        .bind(value as i64)
        .bind((value != m.value).then_some(m.value as i64))
        .bind(taken)
        .bind(now)
        .bind(&who)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        if latest {
            // The reading's insert above holds SQLite's write lock; the
            // product row is locked on PostgreSQL.
            let mut current = self.load_current(&mut tx, &[serial]).await?;
            let map = current.entry(serial).or_default();
            map.insert(
                m.counter.clone(),
                Filed {
                    value,
                    taken_at_ms: taken,
                },
            );
            self.save_current(&mut tx, &[(serial, &*map)]).await?;
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(Reading {
            counter: m.counter.clone(),
            value,
            raw_value: (value != m.value).then_some(m.value),
            taken_at_ms: taken,
            filed_at_ms: now,
            source: "manual".into(),
            agent: m.user.clone().unwrap_or_else(|| "unknown".into()),
            seq: 0,
            state: "filed".into(),
            anomaly: None,
        })
    }

    /// One filed observation as the agent sent it. A meter reading's counters
    /// come back ordered by counter id, described as the latest batch that
    /// carried that id described them.
    pub async fn observation(
        &self,
        agent: &str,
        seq: u64,
    ) -> Result<Option<Observation>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT kind, serial, device_address, taken_at_ms, body FROM observations WHERE agent_id = $1 AND seq = $2",
        )
        .bind(agent)
        .bind(seq as i64)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))?
        else {
            return Ok(None);
        };
        let (kind, serial, body): (String, String, Vec<u8>) = (row.get(0), row.get(1), row.get(4));
        if !body.is_empty() || kind != "meter" {
            return Observation::decode(body.as_slice()).map(Some).map_err(|e| {
                StoreError::Invalid {
                    agent: agent.into(),
                    seq,
                    what: format!("stored body does not decode: {e}"),
                }
            });
        }
        let counters = sqlx::query(
            "SELECT r.counter_id, r.value, r.raw_value, c.name, c.unit, c.oid, c.wraps_at_bits
             FROM readings r LEFT JOIN counters c ON c.counter_id = r.counter_id
             WHERE r.serial = $1 AND r.taken_at_ms = $2 AND r.agent_id = $3 AND r.seq = $4 ORDER BY r.counter_id",
        )
        .bind(&serial)
        .bind(row.get::<i64, _>(3))
        .bind(agent)
        .bind(seq as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?
        .into_iter()
        .map(|r| CounterValue {
            id: r.get(0),
            value: r
                .get::<Option<i64>, _>(2)
                .unwrap_or_else(|| r.get::<i64, _>(1)) as u64,
            name: r.get::<Option<String>, _>(3).unwrap_or_default(),
            unit: r.get::<Option<String>, _>(4).unwrap_or_default(),
            oid: r.get::<Option<String>, _>(5).unwrap_or_default(),
            wraps_at_bits: r.get::<Option<i64>, _>(6).unwrap_or_default() as u32,
        })
        .collect();
        Ok(Some(Observation {
            seq,
            taken_at_ms: row.get(3),
            device_address: row.get(2),
            serial,
            body: Some(Body::Meter(MeterReading { counters })),
        }))
    }

    /// How many raw observations of an agent are filed.
    pub async fn observation_count(&self, agent: &str) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM observations WHERE agent_id = $1")
            .bind(agent)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(n as u64)
    }

    /// All filed sequence numbers of an agent, ascending.
    pub async fn filed_seqs(&self, agent: &str) -> Result<Vec<u64>, StoreError> {
        let v: Vec<i64> =
            sqlx::query_scalar("SELECT seq FROM observations WHERE agent_id = $1 ORDER BY seq")
                .bind(agent)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
        Ok(v.into_iter().map(|x| x as u64).collect())
    }

    pub async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let rows = sqlx::query(
            "SELECT account_id, name, billing_code, service_code, auto_create, time_zone FROM accounts ORDER BY account_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(account_from).collect())
    }

    pub async fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query(
            "SELECT account_id, name, billing_code, service_code, auto_create, time_zone FROM accounts WHERE account_id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(row.as_ref().map(account_from))
    }

    /// Creates or replaces an account.
    pub async fn put_account(&self, a: &Account) -> Result<Account, StoreError> {
        if a.id.is_empty() || a.id.len() > 64 || a.id.contains(char::is_whitespace) {
            return Err(StoreError::refused(
                "invalid_account_id",
                "an account id is 1 to 64 characters without spaces",
            ));
        }
        if a.time_zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(StoreError::refused(
                "invalid_time_zone",
                format!(
                    "time zone {:?} is not an IANA zone name such as Europe/Amsterdam",
                    a.time_zone
                ),
            ));
        }
        sqlx::query(
            "INSERT INTO accounts (account_id, name, billing_code, service_code, auto_create, time_zone)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account_id) DO UPDATE SET name = excluded.name,
             billing_code = excluded.billing_code, service_code = excluded.service_code,
             auto_create = excluded.auto_create, time_zone = excluded.time_zone",
        )
        .bind(&a.id)
        .bind(&a.name)
        .bind(&a.billing_code)
        .bind(&a.service_code)
        .bind(a.auto_create_products as i64)
        .bind(&a.time_zone)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(a.clone())
    }

    /// Creates or replaces a user. Operators have no account; the customer
    /// roles need an existing one.
    pub async fn put_user(&self, u: &User) -> Result<User, StoreError> {
        self.put_user_within(u, None).await
    }

    /// As `put_user`, but an existing user is replaced only when they
    /// belong to `within` (an account manager's account): checked in the
    /// write itself, so two tenants racing for one id cannot move a user.
    pub async fn put_user_within(
        &self,
        u: &User,
        within: Option<&str>,
    ) -> Result<User, StoreError> {
        if u.id.is_empty() || u.id.len() > 64 || u.id.contains(char::is_whitespace) {
            return Err(StoreError::refused(
                "invalid_user_id",
                "a user id is 1 to 64 characters without spaces",
            ));
        }
        match (u.role, &u.account) {
            (Role::Operator, Some(_)) => return Err(StoreError::refused(
                "invalid_user",
                "an operator belongs to the service provider, not to an account: leave account out",
            )),
            (Role::Operator, None) => {}
            (_, None) => {
                return Err(StoreError::refused(
                    "invalid_user",
                    format!("a {} needs an account", u.role.as_str()),
                ))
            }
            (_, Some(a)) => {
                if self.account(a).await?.is_none() {
                    return Err(StoreError::refused(
                        "account_not_found",
                        format!("no account {a:?}: create it first"),
                    ));
                }
            }
        }
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        let was: Option<Option<String>> =
            sqlx::query_scalar("SELECT account_id FROM users WHERE user_id = $1")
                .bind(&u.id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        if was.as_ref().is_some_and(|a| a != &u.account) {
            // Their products stay behind in the old account.
            sqlx::query("UPDATE products SET administrator = NULL WHERE administrator = $1")
                .bind(&u.id)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        let written = sqlx::query(
            "INSERT INTO users (user_id, name, account_id, role) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id) DO UPDATE SET name = excluded.name,
             account_id = excluded.account_id, role = excluded.role
             WHERE $5 IS NULL OR users.account_id = $5",
        )
        .bind(&u.id)
        .bind(&u.name)
        .bind(&u.account)
        .bind(u.role.as_str())
        .bind(within)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?
        .rows_affected();
        if written == 0 {
            return Err(StoreError::refused(
                "user_id_taken",
                format!("user id {:?} is taken: choose another", u.id),
            ));
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(u.clone())
    }

    /// Creates `u` unless a user with that id exists; true when it did.
    pub async fn add_user_if_absent(&self, u: &User) -> Result<bool, StoreError> {
        if self.user(&u.id).await?.is_some() {
            return Ok(false);
        }
        let n = sqlx::query(
            "INSERT INTO users (user_id, name, account_id, role) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id) DO NOTHING",
        )
        .bind(&u.id)
        .bind(&u.name)
        .bind(&u.account)
        .bind(u.role.as_str())
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?
        .rows_affected();
        Ok(n == 1)
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let row =
            sqlx::query("SELECT user_id, name, role, account_id FROM users WHERE user_id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
        Ok(row.as_ref().and_then(user_from))
    }

    /// Users of `account` (all users when None), by id.
    pub async fn users(&self, account: Option<&str>) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(
            "SELECT user_id, name, role, account_id FROM users
             WHERE $1 IS NULL OR account_id = $1 ORDER BY user_id",
        )
        .bind(account)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows.iter().filter_map(user_from).collect())
    }

    /// Removes a user, their tokens, and their name from the products they administered.
    pub async fn delete_user(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        for sql in [
            "DELETE FROM api_tokens WHERE user_id = $1",
            "UPDATE products SET administrator = NULL WHERE administrator = $1",
        ] {
            sqlx::query(sql)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        let n = sqlx::query("DELETE FROM users WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("user {id:?}")));
        }
        tx.commit().await.map_err(|e| self.err(e))
    }

    /// Issues a token for `user`, valid until `expires_at_ms` (for ever when None).
    pub async fn issue_token(
        &self,
        user: &str,
        label: &str,
        expires_at_ms: Option<i64>,
        now: i64,
    ) -> Result<IssuedToken, StoreError> {
        if self.user(user).await?.is_none() {
            return Err(StoreError::NotFound(format!("user {user:?}")));
        }
        let t = crate::auth::generate().map_err(|e| StoreError::refused("no_randomness", e))?;
        sqlx::query(
            "INSERT INTO api_tokens (token_id, user_id, secret_sha256, label, created_at_ms, expires_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&t.id)
        .bind(user)
        .bind(&t.secret_hash)
        .bind(label)
        .bind(now)
        .bind(expires_at_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(IssuedToken {
            info: TokenInfo {
                id: t.id,
                user: user.to_string(),
                label: label.to_string(),
                created_at_ms: now,
                expires_at_ms,
            },
            token: t.text.0,
        })
    }

    pub async fn tokens(&self, user: &str) -> Result<Vec<TokenInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT token_id, user_id, label, created_at_ms, expires_at_ms FROM api_tokens
             WHERE user_id = $1 ORDER BY created_at_ms, token_id",
        )
        .bind(user)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| TokenInfo {
                id: r.get(0),
                user: r.get(1),
                label: r.get(2),
                created_at_ms: r.get(3),
                expires_at_ms: r.get(4),
            })
            .collect())
    }

    pub async fn revoke_token(&self, user: &str, id: &str) -> Result<(), StoreError> {
        let n = sqlx::query("DELETE FROM api_tokens WHERE user_id = $1 AND token_id = $2")
            .bind(user)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "token {id:?} of user {user:?}"
            )));
        }
        Ok(())
    }

    /// The user a token belongs to; None when the token is unknown,
    /// revoked, expired, or its secret does not match.
    pub async fn authenticate(&self, token: &str, now: i64) -> Result<Option<User>, StoreError> {
        let Some((id, secret)) = crate::auth::parse_token(token) else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT u.user_id, u.name, u.role, u.account_id, t.secret_sha256, t.expires_at_ms
             FROM api_tokens t JOIN users u ON u.user_id = t.user_id WHERE t.token_id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let stored: String = row.get(4);
        let expires: Option<i64> = row.get(5);
        if !crate::auth::same_hash(&crate::auth::hash_secret(secret), &stored)
            || expires.is_some_and(|e| e <= now)
        {
            return Ok(None);
        }
        Ok(user_from(&row))
    }

    /// For tests: every stored token row as text, to show no secret is kept.
    #[cfg(test)]
    pub(crate) async fn token_rows_text(&self) -> Vec<String> {
        sqlx::query("SELECT token_id, user_id, secret_sha256, label FROM api_tokens")
            .fetch_all(&self.pool)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (0..4)
                    .map(|i| r.get::<String, _>(i))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    pub async fn agents(&self) -> Result<Vec<AgentInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT agent_id, version, account_id, first_seen_ms, last_seen_ms, highest_seq, held_seq FROM agents ORDER BY agent_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| {
                let filed = r.get::<i64, _>(5) as u64;
                let held = r.get::<i64, _>(6) as u64;
                AgentInfo {
                    id: r.get(0),
                    version: r.get(1),
                    account: r.get(2),
                    first_seen_ms: r.get(3),
                    last_seen_ms: r.get(4),
                    filed_seq: filed,
                    held_seq: held,
                    backlog: held.saturating_sub(filed),
                }
            })
            .collect())
    }

    pub async fn set_agent_account(
        &self,
        agent: &str,
        account: Option<&str>,
    ) -> Result<AgentInfo, StoreError> {
        if let Some(a) = account {
            if self.account(a).await?.is_none() {
                return Err(StoreError::refused(
                    "account_not_found",
                    format!("no account {a:?}: create it first"),
                ));
            }
        }
        let n = sqlx::query("UPDATE agents SET account_id = $1 WHERE agent_id = $2")
            .bind(account)
            .bind(agent)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("agent {agent:?}")));
        }
        self.agents()
            .await?
            .into_iter()
            .find(|a| a.id == agent)
            .ok_or_else(|| StoreError::NotFound(format!("agent {agent:?}")))
    }

    pub async fn groups(&self, account: Option<&str>) -> Result<Vec<Group>, StoreError> {
        let rows = sqlx::query(
            "SELECT g.group_id, g.account_id, g.name, gp.serial FROM product_groups g
             LEFT JOIN group_products gp ON gp.group_id = g.group_id
             WHERE $1 IS NULL OR g.account_id = $1 ORDER BY g.account_id, g.name, gp.serial",
        )
        .bind(account)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        let mut out: Vec<Group> = Vec::new();
        for r in rows {
            let id: i64 = r.get(0);
            if out.last().is_none_or(|g| g.id != id) {
                out.push(Group {
                    id,
                    account: r.get(1),
                    name: r.get(2),
                    products: Vec::new(),
                });
            }
            if let (Some(g), Some(s)) = (out.last_mut(), r.get::<Option<String>, _>(3)) {
                g.products.push(s);
            }
        }
        Ok(out)
    }

    async fn group(&self, id: i64) -> Result<Group, StoreError> {
        self.groups(None)
            .await?
            .into_iter()
            .find(|g| g.id == id)
            .ok_or_else(|| StoreError::NotFound(format!("group {id}")))
    }

    pub async fn create_group(&self, account: &str, name: &str) -> Result<Group, StoreError> {
        if name.trim().is_empty() {
            return Err(StoreError::refused(
                "invalid_group_name",
                "give the group a name",
            ));
        }
        if self.account(account).await?.is_none() {
            return Err(StoreError::refused(
                "account_not_found",
                format!("no account {account:?}"),
            ));
        }
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO product_groups (account_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING group_id",
        )
        .bind(account)
        .bind(name.trim())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        match id {
            Some(id) => self.group(id).await,
            None => Err(StoreError::refused(
                "group_exists",
                format!("account {account:?} already has a group named {name:?}"),
            )),
        }
    }

    pub async fn rename_group(&self, id: i64, name: &str) -> Result<Group, StoreError> {
        if name.trim().is_empty() {
            return Err(StoreError::refused(
                "invalid_group_name",
                "give the group a name",
            ));
        }
        let r = sqlx::query("UPDATE product_groups SET name = $1 WHERE group_id = $2")
            .bind(name.trim())
            .bind(id)
            .execute(&self.pool)
            .await;
        match r {
            Ok(r) if r.rows_affected() == 0 => Err(StoreError::NotFound(format!("group {id}"))),
            Ok(_) => self.group(id).await,
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => Err(StoreError::refused(
                "group_exists",
                format!("the account already has a group named {name:?}"),
            )),
            Err(e) => Err(self.err(e)),
        }
    }

    pub async fn delete_group(&self, id: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        sqlx::query("DELETE FROM group_products WHERE group_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        let n = sqlx::query("DELETE FROM product_groups WHERE group_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("group {id}")));
        }
        tx.commit().await.map_err(|e| self.err(e))
    }

    /// Adds a product to a group (or removes it); the product must belong
    /// to the group's account.
    pub async fn group_member(
        &self,
        id: i64,
        serial: &str,
        add: bool,
    ) -> Result<Group, StoreError> {
        let g = self.group(id).await?;
        if add {
            let owner: Option<Option<String>> =
                sqlx::query_scalar("SELECT account_id FROM products WHERE serial = $1")
                    .bind(serial)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| self.err(e))?;
            match owner {
                None => return Err(StoreError::NotFound(format!("product {serial:?}"))),
                Some(a) if a.as_deref() != Some(g.account.as_str()) => {
                    return Err(StoreError::refused(
                        "product_of_another_account",
                        format!(
                            "product {serial:?} does not belong to account {:?}",
                            g.account
                        ),
                    ))
                }
                Some(_) => {}
            }
            sqlx::query("INSERT INTO group_products (group_id, serial) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(id)
                .bind(serial)
                .execute(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
        } else {
            sqlx::query("DELETE FROM group_products WHERE group_id = $1 AND serial = $2")
                .bind(id)
                .bind(serial)
                .execute(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
        }
        self.group(id).await
    }

    pub async fn requests(&self, q: &RequestQuery) -> Result<Vec<ServiceRequest>, StoreError> {
        let mut qb = QueryBuilder::<Db>::new(format!(
            "SELECT {REQUEST_COLS} FROM service_requests WHERE 1 = 1"
        ));
        if let Some(s) = &q.state {
            qb.push(" AND state = ").push_bind(s.as_str());
        }
        if let Some(a) = &q.account {
            qb.push(" AND account_id = ").push_bind(a.as_str());
        }
        if let Some(s) = &q.serial {
            qb.push(" AND serial = ").push_bind(s.as_str());
        }
        if let Some(k) = &q.kind {
            qb.push(" AND kind = ").push_bind(k.as_str());
        }
        if let Some(u) = &q.administrator {
            qb.push(" AND serial IN (SELECT serial FROM products WHERE administrator = ")
                .push_bind(u.as_str())
                .push(")");
        }
        qb.push(" ORDER BY request_id DESC LIMIT ")
            .push_bind(q.limit.unwrap_or(500).clamp(1, 10_000) as i64);
        let rows = qb
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(request_from).collect())
    }

    pub async fn request(&self, number: &str) -> Result<Option<ServiceRequest>, StoreError> {
        let Some(id) = request_id(number) else {
            return Ok(None);
        };
        let sql = format!("SELECT {REQUEST_COLS} FROM service_requests WHERE request_id = $1");
        let Some(row) = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.err(e))?
        else {
            return Ok(None);
        };
        let mut r = request_from(&row);
        r.events = sqlx::query(
            "SELECT at_ms, event, text FROM request_events WHERE request_id = $1 ORDER BY event_id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?
        .iter()
        .map(|e| RequestEvent {
            at_ms: e.get(0),
            event: e.get(1),
            text: e.get(2),
        })
        .collect();
        Ok(Some(r))
    }

    /// A request opened by a user: an incident (service), a move or an information request.
    pub async fn create_request(
        &self,
        r: &NewRequest,
        now: i64,
    ) -> Result<ServiceRequest, StoreError> {
        if !["incident", "move", "information"].contains(&r.kind.as_str()) {
            return Err(StoreError::refused(
                "invalid_kind",
                format!(
                    "kind {:?}: a user opens incident, move or information requests",
                    r.kind
                ),
            ));
        }
        let priority = r.priority.clone().unwrap_or_else(|| "normal".into());
        if !["low", "normal", "high"].contains(&priority.as_str()) {
            return Err(StoreError::refused(
                "invalid_priority",
                "priority is low, normal or high",
            ));
        }
        if r.title.trim().is_empty() {
            return Err(StoreError::refused(
                "invalid_title",
                "give the request a title",
            ));
        }
        if self.account(&r.account).await?.is_none() {
            return Err(StoreError::refused(
                "account_not_found",
                format!("no account {:?}", r.account),
            ));
        }
        if let Some(s) = &r.serial {
            match self.product(s).await? {
                None => return Err(StoreError::NotFound(format!("product {s:?}"))),
                Some(p) if p.account.as_deref() != Some(r.account.as_str()) => {
                    return Err(StoreError::refused(
                        "product_of_another_account",
                        format!("product {s:?} does not belong to account {:?}", r.account),
                    ))
                }
                Some(_) => {}
            }
        }
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO service_requests (account_id, serial, kind, priority, state, opened_by, title,
             occurrences, first_seen_ms, last_seen_ms, opened_at_ms)
             VALUES ($1, $2, $3, $4, 'open', $5, $6, 1, $7, $7, $7) RETURNING request_id",
        )
        .bind(&r.account)
        .bind(&r.serial)
        .bind(&r.kind)
        .bind(&priority)
        .bind(&r.user)
        .bind(r.title.trim())
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        self.request_event(&mut tx, id, "opened", r.title.trim(), now)
            .await?;
        tx.commit().await.map_err(|e| self.err(e))?;
        self.request(&request_number(id))
            .await?
            .ok_or_else(|| StoreError::NotFound(request_number(id)))
    }

    /// Closes a request by hand. An automatic request whose condition is
    /// still active opens again at the next observation that shows it.
    /// Closes a request by hand; `by` (the user) goes into its event log.
    pub async fn close_request(
        &self,
        number: &str,
        reason: &str,
        by: &str,
        now: i64,
    ) -> Result<ServiceRequest, StoreError> {
        let id = request_id(number)
            .ok_or_else(|| StoreError::NotFound(format!("request {number:?}")))?;
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        let row: Option<(Option<String>, Option<String>, String)> = sqlx::query_as(
            "UPDATE service_requests SET state = 'closed', closed_at_ms = $1, close_reason = $2
             WHERE request_id = $3 AND state = 'open' RETURNING serial, fingerprint, state",
        )
        .bind(now)
        .bind(reason)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        let Some((serial, fingerprint, _)) = row else {
            return match self.request(number).await? {
                None => Err(StoreError::NotFound(format!("request {number:?}"))),
                Some(_) => Err(StoreError::refused(
                    "request_closed",
                    format!("{number} is already closed"),
                )),
            };
        };
        // The track forgets it, so the rules can open a new one.
        if let (Some(serial), Some(fp)) = (serial, fingerprint) {
            let mut tracks = self.load_tracks(&mut tx, &[serial.as_str()]).await?;
            if let Some(t) = tracks.get_mut(&serial) {
                t.track.open.remove(&fp);
                t.track.pending.remove(&fp);
                t.changed = true;
            }
            self.save_tracks(&mut tx, &tracks).await?;
        }
        let text = format!("closed by {by}: {reason}");
        self.request_event(&mut tx, id, "closed", &text, now)
            .await?;
        tx.commit().await.map_err(|e| self.err(e))?;
        self.request(number)
            .await?
            .ok_or_else(|| StoreError::NotFound(number.to_string()))
    }

    pub async fn articles(&self) -> Result<Vec<Article>, StoreError> {
        let rows = sqlx::query(
            "SELECT article_id, kind, code, title, body FROM kb_articles ORDER BY article_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| Article {
                id: r.get(0),
                kind: r.get(1),
                code: r.get(2),
                title: r.get(3),
                body: r.get(4),
            })
            .collect())
    }

    pub async fn put_article(&self, a: &Article) -> Result<Article, StoreError> {
        if !["error_code", "faq", "troubleshooter"].contains(&a.kind.as_str()) {
            return Err(StoreError::refused(
                "invalid_kind",
                "an article's kind is error_code, faq or troubleshooter",
            ));
        }
        if a.id.is_empty() {
            return Err(StoreError::refused(
                "invalid_article_id",
                "give the article an id",
            ));
        }
        sqlx::query(
            "INSERT INTO kb_articles (article_id, kind, code, title, body) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (article_id) DO UPDATE SET kind = excluded.kind, code = excluded.code,
             title = excluded.title, body = excluded.body",
        )
        .bind(&a.id)
        .bind(&a.kind)
        .bind(&a.code)
        .bind(&a.title)
        .bind(&a.body)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(a.clone())
    }

    /// The billing rows of an account's products for a period.
    pub async fn billing(
        &self,
        account: &str,
        year: i32,
        month: u32,
    ) -> Result<Vec<crate::filing::billing::BillingRow>, StoreError> {
        use crate::filing::billing::{billing_rows, BillingProduct};
        let a = self
            .account(account)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("account {account:?}")))?;
        if !(1..=12).contains(&month) {
            return Err(StoreError::refused(
                "invalid_period",
                "give the period as YYYY-MM",
            ));
        }
        let tz: chrono_tz::Tz = a.time_zone.parse().unwrap_or(chrono_tz::UTC);
        // Readings of the previous, this and the next month (cutoffs and the
        // read after them fall in there), with two days for time zones.
        let day_ms = 86_400_000;
        let from =
            filing::billing_cutoff_ms(year, month, 1, chrono_tz::UTC).unwrap_or(0) - 33 * day_ms;
        let to =
            filing::billing_cutoff_ms(year, month, 1, chrono_tz::UTC).unwrap_or(0) + 64 * day_ms;
        let products = sqlx::query(
            "SELECT serial, COALESCE(model, ''), billing_day FROM products WHERE account_id = $1 AND billing_day IS NOT NULL ORDER BY serial",
        )
        .bind(account)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for p in products {
            let serial: String = p.get(0);
            let rows = sqlx::query(
                "SELECT counter_id, value, taken_at_ms FROM readings WHERE serial = $1 AND state = 'filed'
                 AND taken_at_ms >= $2 AND taken_at_ms < $3",
            )
            .bind(&serial)
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
            let mut history: BTreeMap<String, Vec<Filed>> = BTreeMap::new();
            for r in rows {
                history.entry(r.get(0)).or_default().push(Filed {
                    value: r.get::<i64, _>(1) as u64,
                    taken_at_ms: r.get(2),
                });
            }
            let bp = BillingProduct {
                account_billing_code: a.billing_code.clone(),
                serial,
                model: p.get(1),
                billing_day: p.get::<i64, _>(2).clamp(1, 31) as u32,
                tz,
            };
            out.extend(billing_rows(&bp, &history, year, month));
        }
        Ok(out)
    }

    /// Outbox rows ready to send: per request only the oldest unsent one,
    /// and none behind a dead letter, so a portal sees each request's
    /// changes in order. `outbox_claim` each before sending it.
    pub async fn outbox_due(&self, now: i64, limit: i64) -> Result<Vec<OutboxItem>, StoreError> {
        let rows = sqlx::query(
            "SELECT o.outbox_id, o.request_id, o.idempotency_key, o.payload, o.attempts FROM outbox o
             WHERE o.state = 'pending' AND o.next_attempt_ms <= $1
             AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.request_id = o.request_id
                             AND e.outbox_id < o.outbox_id AND e.state <> 'sent')
             ORDER BY o.outbox_id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| OutboxItem {
                id: r.get(0),
                request_number: request_number(r.get(1)),
                idempotency_key: r.get(2),
                payload: r.get(3),
                attempts: r.get::<i64, _>(4) as u32,
            })
            .collect())
    }

    /// Claims an outbox row for one delivery attempt until `until_ms`, so
    /// that other replicas skip it meanwhile; false when another took it.
    pub async fn outbox_claim(&self, id: i64, now: i64, until_ms: i64) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE outbox SET next_attempt_ms = $1 WHERE outbox_id = $2 AND state = 'pending' AND next_attempt_ms <= $3",
        )
        .bind(until_ms)
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?
        .rows_affected();
        Ok(n == 1)
    }

    pub async fn outbox_result(&self, id: i64, result: OutboxResult) -> Result<(), StoreError> {
        let q = match &result {
            OutboxResult::Sent => sqlx::query(
                "UPDATE outbox SET state = 'sent', attempts = attempts + 1, last_error = NULL WHERE outbox_id = $1",
            )
            .bind(id),
            OutboxResult::Retry { error, at_ms } => sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, last_error = $2, next_attempt_ms = $3 WHERE outbox_id = $1",
            )
            .bind(id)
            .bind(error.as_str())
            .bind(*at_ms),
            OutboxResult::Dead { error } => sqlx::query(
                "UPDATE outbox SET state = 'dead', attempts = attempts + 1, last_error = $2 WHERE outbox_id = $1",
            )
            .bind(id)
            .bind(error.as_str()),
        };
        q.execute(&self.pool).await.map_err(|e| self.err(e))?;
        Ok(())
    }

    pub async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        let rows = sqlx::query("SELECT state, COUNT(*) FROM outbox GROUP BY state")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        let mut c = OutboxCounts::default();
        for r in rows {
            let n = r.get::<i64, _>(1) as u64;
            match r.get::<String, _>(0).as_str() {
                "pending" => c.pending = n,
                "sent" => c.sent = n,
                _ => c.dead += n,
            }
        }
        Ok(c)
    }
}

fn priority_str(p: crate::requests::Priority) -> &'static str {
    match p {
        crate::requests::Priority::Low => "low",
        crate::requests::Priority::Normal => "normal",
        crate::requests::Priority::High => "high",
    }
}

/// The billing period whose cutoff is the latest at or before `now`, and
/// that cutoff: ("YYYY-MM", ms).
fn current_period(now: i64, day: u32, tz: chrono_tz::Tz) -> Option<(String, i64)> {
    use chrono::Datelike;
    let local = chrono::DateTime::from_timestamp_millis(now)?.with_timezone(&tz);
    let (y, m) = (local.year(), local.month());
    let this = filing::billing_cutoff_ms(y, m, day, tz)?;
    if now >= this {
        return Some((format!("{y:04}-{m:02}"), this));
    }
    let (py, pm) = if m == 1 { (y - 1, 12) } else { (y, m - 1) };
    Some((
        format!("{py:04}-{pm:02}"),
        filing::billing_cutoff_ms(py, pm, day, tz)?,
    ))
}

/// A product's current values as stored: `{"counter": [value, taken_at_ms]}`.
fn parse_current(serial: &str, json: &str) -> Result<BTreeMap<String, Filed>, StoreError> {
    let raw: BTreeMap<String, (u64, i64)> =
        serde_json::from_str(json).map_err(|e| StoreError::Invalid {
            agent: String::new(),
            seq: 0,
            what: format!("current values of {serial} unreadable: {e}"),
        })?;
    Ok(raw
        .into_iter()
        .map(|(c, (value, taken_at_ms))| (c, Filed { value, taken_at_ms }))
        .collect())
}

fn render_current(serial: &str, m: &BTreeMap<String, Filed>) -> Result<String, StoreError> {
    let raw: BTreeMap<&str, (u64, i64)> = m
        .iter()
        .map(|(c, f)| (c.as_str(), (f.value, f.taken_at_ms)))
        .collect();
    serde_json::to_string(&raw).map_err(|e| StoreError::Invalid {
        agent: String::new(),
        seq: 0,
        what: format!("current values of {serial} not writable: {e}"),
    })
}

/// Migration tests, shared by both backends (each runs them on its own).
#[cfg(test)]
mod migration_tests {
    use super::*;

    /// Brings `pool` to schema `version` as an older collector left it, with
    /// one product whose current values are in the per-counter table that
    /// the next migration replaces.
    async fn apply_up_to(pool: &sqlx::Pool<Db>, version: usize) {
        sqlx::raw_sql(VERSION_TABLE).execute(pool).await.unwrap();
        for (i, m) in MIGRATIONS[..version].iter().enumerate() {
            sqlx::raw_sql(m).execute(pool).await.unwrap();
            sqlx::query("INSERT INTO schema_version (version) VALUES ($1)")
                .bind((i + 1) as i64)
                .execute(pool)
                .await
                .unwrap();
        }
    }

    /// Schema `version`, before operators and tokens, with one account
    /// manager in it.
    pub(super) async fn old_users(pool: &sqlx::Pool<Db>, version: usize) {
        apply_up_to(pool, version).await;
        for sql in [
            "INSERT INTO accounts (account_id, name, billing_code, service_code) VALUES ('acme', 'Acme', 'B', 'S')",
            "INSERT INTO users (user_id, name, account_id, role) VALUES ('mia', 'Mia', 'acme', 'account_manager')",
        ] {
            sqlx::query(sql).execute(pool).await.unwrap();
        }
    }

    /// The old user is kept; operators and tokens work; the constraints hold.
    pub(super) async fn check_users(s: &Store) {
        let mia = s.user("mia").await.unwrap().expect("mia kept");
        assert_eq!(
            (mia.role, mia.account.as_deref()),
            (Role::AccountManager, Some("acme"))
        );
        let ops = User {
            id: "ops".into(),
            name: "Ops".into(),
            role: Role::Operator,
            account: None,
        };
        s.put_user(&ops).await.unwrap();
        let t = s.issue_token("mia", "", None, 1).await.unwrap();
        assert_eq!(s.authenticate(&t.token, 2).await.unwrap(), Some(mia));
        // The schema itself refuses an operator with an account.
        let bad = sqlx::query("UPDATE users SET account_id = 'acme' WHERE user_id = 'ops'")
            .execute(&s.pool)
            .await;
        assert!(bad.is_err(), "an operator with an account was stored");
    }

    pub(super) async fn old_current_values(pool: &sqlx::Pool<Db>, version: usize) {
        apply_up_to(pool, version).await;
        sqlx::query(
            "INSERT INTO products (serial, first_seen_ms, last_seen_ms) VALUES ('OLD1', 1, 2)",
        )
        .execute(pool)
        .await
        .unwrap();
        for (counter, value, at) in [("canon.101", 1_000i64, 2i64), ("canon.102", 50, 1)] {
            sqlx::query("INSERT INTO counter_current (serial, counter_id, value, taken_at_ms) VALUES ('OLD1', $1, $2, $3)")
                .bind(counter)
                .bind(value)
                .bind(at)
                .execute(pool)
                .await
                .unwrap();
        }
    }

    /// After the migration the values are there, and filing goes on from them.
    pub(super) async fn check_current_values(s: &Store) {
        let want = |a: u64, b: u64| {
            BTreeMap::from([("canon.101".to_string(), a), ("canon.102".to_string(), b)])
        };
        assert_eq!(s.current("OLD1").await.unwrap(), want(1_000, 50));
        let o = Observation {
            seq: 1,
            taken_at_ms: 3,
            device_address: "10.0.0.1:161".into(),
            serial: "OLD1".into(),
            body: Some(Body::Meter(MeterReading {
                counters: vec![CounterValue {
                    id: "canon.101".into(),
                    value: 1_200,
                    ..Default::default()
                }],
            })),
        };
        s.agent_hello("a", "1", 0).await.unwrap();
        let out = s.ingest("a", &[o]).await.unwrap();
        assert_eq!(out.counter_values, 1);
        assert_eq!(s.current("OLD1").await.unwrap(), want(1_200, 50));
    }
}
