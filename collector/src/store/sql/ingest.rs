//! Ingest: agents' hellos, a batch's raw observations (deduplicated by
//! (agent, seq)) and products, and the raw observations read back.

use crate::model::IngestOutcome;
use crate::requests::Change;
use crate::store::StoreError;
use meterlink_proto::v1::{observation::Body, CounterValue, MeterReading, Observation};
use prost::Message;
use sqlx::{QueryBuilder, Row};
use std::collections::{BTreeMap, BTreeSet};

use super::requests::TrackEvent;
use super::rows::Tx;
use super::{push_key_set, Backend, Db};

impl Backend {
    /// Records that an agent connected and the highest seq it holds;
    /// returns the highest seq filed from it.
    pub async fn agent_hello(
        &self,
        agent: &str,
        version: &str,
        held: u64,
    ) -> Result<u64, StoreError> {
        let now = crate::store::now_ms();
        // Shown, never parsed; PostgreSQL's text cannot hold NUL.
        let version = version.replace('\0', "");
        sqlx::query(
            "INSERT INTO agents (agent_id, version, first_seen_ms, last_seen_ms, held_seq) VALUES ($1, $2, $3, $3, $4)
             ON CONFLICT (agent_id) DO UPDATE SET version = excluded.version, last_seen_ms = excluded.last_seen_ms,
             held_seq = excluded.held_seq",
        )
        .bind(agent)
        .bind(&version)
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
        let cleaned = crate::model::without_nul(batch);
        let batch = cleaned.as_deref().unwrap_or(batch);
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
        let now = crate::store::now_ms();
        let mut tx = self.begin_write().await?;
        // Writing first takes SQLite's write lock, so the duplicate check and
        // the inserts see the same state even with several agents. The same
        // statement says the agent's account: an agent writes only to
        // products of its own account, or to products no account owns yet
        // (invariant 7).
        let agent_row: Option<(Option<String>, i64)> = sqlx::query_as(
            "UPDATE agents SET highest_seq = CASE WHEN highest_seq > $1 THEN highest_seq ELSE $1 END,
             last_seen_ms = $2 WHERE agent_id = $3
             RETURNING account_id,
                 COALESCE((SELECT a.auto_create FROM accounts a WHERE a.account_id = agents.account_id), 0)",
        )
        .bind(out.highest_seq as i64)
        .bind(now)
        .bind(agent)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        // The update locked the agent's row, if it has one, until this
        // transaction ends: no other ingest of the agent's files meanwhile.
        let agent_locked = agent_row.is_some();
        let (agent_account, auto_create) = agent_row.unwrap_or((None, 0));
        // 1. Raw observations: only those filed for the first time go on.
        let fresh_all = self
            .new_observations(&mut tx, agent, batch, now, agent_locked)
            .await?;
        out.new = fresh_all.len() as u64;
        out.duplicates = batch.len() as u64 - out.new;
        let mut fresh: Vec<&Observation> = fresh_all
            .into_iter()
            .filter(|o| !o.serial.is_empty())
            .collect();
        let (foreign, addresses) = self
            .batch_products(&mut tx, agent_account.as_deref(), &fresh)
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
        self.upsert_products(&mut tx, agent, auto_account.as_deref(), &fresh, &addresses)
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
                self.file_configuration(&mut tx, &o.serial, o.taken_at_ms, &id.components)
                    .await?;
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
                Some(Body::Supplies(s)) => {
                    self.file_supplies(&mut tx, &o.serial, o.taken_at_ms, &s.supplies)
                        .await?;
                    TrackEvent::Supplies(s)
                }
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
            let rules = &self.settings.rules;
            // Only the articles for the codes this batch shows: the
            // knowledge base may hold many thousands.
            let mut codes: Vec<String> = Vec::new();
            for evs in events.values() {
                for (_, ev) in evs {
                    if let TrackEvent::Status(s) = ev {
                        codes.extend(
                            crate::requests::conditions(rules, s)
                                .into_iter()
                                .filter_map(|c| c.code),
                        );
                    }
                }
            }
            codes.sort();
            codes.dedup();
            let articles = self.article_codes(&mut tx, &codes).await?;
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
            out.requests = self.apply_changes(&mut tx, &tracks, &changes, now).await?;
            out.request_changes = out.requests.total();
            self.save_tracks(&mut tx, &tracks).await?;
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(out)
    }

    /// The batch's products already stored: those another account owns
    /// than the agent's (`account`), and every one's address as stored.
    /// One query per 500 serials, which ingest makes anyway.
    pub(super) async fn batch_products(
        &self,
        tx: &mut Tx,
        account: Option<&str>,
        fresh: &[&Observation],
    ) -> Result<(BTreeSet<String>, BTreeMap<String, String>), StoreError> {
        let serials: BTreeSet<&str> = fresh.iter().map(|o| o.serial.as_str()).collect();
        let serials: Vec<&str> = serials.into_iter().collect();
        let mut foreign = BTreeSet::new();
        let mut addresses = BTreeMap::new();
        for chunk in serials.chunks(500) {
            let mut qb = QueryBuilder::<Db>::new(
                "SELECT serial, account_id, address FROM products WHERE serial",
            );
            push_key_set(&mut qb, chunk);
            let rows: Vec<(String, Option<String>, Option<String>)> = qb
                .build_query_as()
                .fetch_all(&mut **tx)
                .await
                .map_err(|e| self.err(e))?;
            for (serial, owner, address) in rows {
                if owner.is_some() && owner.as_deref() != account {
                    foreign.insert(serial.clone());
                }
                if let Some(a) = address {
                    addresses.insert(serial, a);
                }
            }
        }
        Ok((foreign, addresses))
    }

    /// Products: one row per serial, with its latest address and agent. A
    /// serial without an account (new, or waiting in the unassigned list)
    /// joins the agent's account when that account creates products
    /// automatically (`auto_account`); otherwise it waits in the unassigned
    /// list. A product with an account keeps it.
    pub(super) async fn upsert_products(
        &self,
        tx: &mut Tx,
        agent: &str,
        auto_account: Option<&str>,
        fresh: &[&Observation],
        stored_addresses: &BTreeMap<String, String>,
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
        // A product that answers at another address than stored: the agent
        // followed it by its serial; the move is an event of the product.
        let moves: Vec<(&str, &str, &str, i64)> = products
            .iter()
            .filter_map(|(serial, (addr, _, last))| {
                let was = stored_addresses.get(*serial)?;
                (was != addr).then_some((*serial, was.as_str(), *addr, *last))
            })
            .collect();
        for chunk in moves.chunks(500) {
            let mut qb =
                QueryBuilder::<Db>::new("INSERT INTO product_events (serial, at_ms, event, text) ");
            qb.push_values(chunk, |mut b, (serial, was, now, at)| {
                b.push_bind(*serial)
                    .push_bind(*at)
                    .push_bind("address_changed")
                    .push_bind(format!("answers at {now} (was {was})"));
            });
            qb.build()
                .execute(&mut **tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        let rows: Vec<ProductSeen> = products
            .into_iter()
            .map(|(serial, (address, first_ms, last_ms))| ProductSeen {
                serial,
                address,
                first_ms,
                last_ms,
            })
            .collect();
        self.write_products(tx, agent, auto_account, &rows).await?;
        Ok(())
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
}

/// A product as one batch saw it, on its way into `products`.
pub(crate) struct ProductSeen<'a> {
    pub(crate) serial: &'a str,
    pub(crate) address: &'a str,
    pub(crate) first_ms: i64,
    pub(crate) last_ms: i64,
}

/// What `products` does with a product seen again (the backends' bulk
/// upserts share it): the latest address and agent, an account only if it
/// had none, the latest time seen.
pub(crate) const PRODUCT_SEEN_AGAIN: &str = " ON CONFLICT (serial) DO UPDATE SET address = excluded.address, agent_id = excluded.agent_id, \
     account_id = COALESCE(products.account_id, excluded.account_id), \
     last_seen_ms = CASE WHEN products.last_seen_ms > excluded.last_seen_ms \
     THEN products.last_seen_ms ELSE excluded.last_seen_ms END";
