//! Service requests: request tracks at ingest, their changes, events and
//! outbox rows, and requests opened and closed through the API.

use crate::model::{
    NewRequest, RequestEvent, RequestNote, RequestQuery, RequestTally, ServiceRequest,
    REQUEST_STATUSES,
};
use crate::requests::{Articles, Change, Track};
use crate::store::encoding::{priority_str, request_id, request_number};
use crate::store::{Refusal, StoreError};
use sqlx::{QueryBuilder, Row};
use std::collections::BTreeMap;

use super::rows::{administered_by, in_list, request_from, within_accounts, Tx, REQUEST_COLS};
use super::{Backend, Db, LOCK_PRODUCTS};

/// Something that moves a product's request track, in time order.
pub(super) enum TrackEvent<'a> {
    Status(&'a meterlink_proto::v1::DeviceStatus),
    Supplies(&'a meterlink_proto::v1::Supplies),
    /// The anomalous counters of one meter observation: (counter, what).
    Anomalies(Vec<(String, String)>),
}

/// A product's request track while a transaction works on it.
pub(super) struct Tracked {
    pub(super) account: Option<String>,
    pub(super) emaintenance: bool,
    pub(super) track: Track,
    pub(super) changed: bool,
}

impl Backend {
    /// Request tracks of `serials` (products that exist), locked for this
    /// transaction where the backend can lock rows.
    pub(super) async fn load_tracks(
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

    pub(super) async fn save_tracks(
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

    /// The article for each of these codes (English when there are
    /// several languages).
    pub(super) async fn article_codes(
        &self,
        tx: &mut Tx,
        codes: &[String],
    ) -> Result<Articles, StoreError> {
        if codes.is_empty() {
            return Ok(Articles::new());
        }
        // Articles keep codes upper case; the rules' codes are looked up as
        // the rules wrote them.
        let normal: Vec<String> = codes.iter().map(|c| crate::model::normal_code(c)).collect();
        let mut qb =
            QueryBuilder::<Db>::new("SELECT code, article_id FROM kb_articles WHERE code IN ");
        in_list(&mut qb, normal.iter().map(String::as_str));
        // English last, so that it is the one kept for a code.
        qb.push(" ORDER BY CASE WHEN language = 'en' THEN 1 ELSE 0 END, article_id");
        let rows = qb
            .build()
            .fetch_all(&mut **tx)
            .await
            .map_err(|e| self.err(e))?;
        let by_code: BTreeMap<String, String> = rows
            .into_iter()
            .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
            .collect();
        Ok(codes
            .iter()
            .zip(&normal)
            .filter_map(|(c, n)| by_code.get(n).map(|a| (c.clone(), a.clone())))
            .collect())
    }

    /// Writes request changes: service requests, their events and, with an
    /// external portal, one outbox row per change in the same transaction.
    /// Returns how many changes were written (a "still seen" is not one).
    pub(super) async fn apply_changes(
        &self,
        tx: &mut Tx,
        tracks: &BTreeMap<String, Tracked>,
        changes: &[(String, Change)],
        now: i64,
    ) -> Result<RequestTally, StoreError> {
        let mut n = RequestTally::default();
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
                    if let (Some(id), "incident") = (id, kind.as_str()) {
                        self.set_due(tx, id, serial, now).await?;
                    }
                    let id = id.map(|id| (id, kind.as_str().to_string()));
                    (id, "opened", title.clone())
                }
                Change::Occurrence {
                    fingerprint,
                    occurrences,
                    at_ms,
                } => {
                    let id: Option<(i64, String)> = sqlx::query_as(
                        "UPDATE service_requests SET occurrences = $1, last_seen_ms = $2
                         WHERE serial = $3 AND fingerprint = $4 AND state = 'open' RETURNING request_id, kind",
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
                    let id: Option<(i64, String)> = sqlx::query_as(
                        "UPDATE service_requests SET state = 'closed', closed_at_ms = $1, close_reason = $2
                         WHERE serial = $3 AND fingerprint = $4 AND state = 'open' RETURNING request_id, kind",
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
            if let Some((id, kind)) = id {
                self.request_event(tx, id, event, &text, now).await?;
                n.add(&kind, event);
            }
        }
        Ok(n)
    }

    /// Records an event of a request and, with an external portal, queues it.
    pub(super) async fn request_event(
        &self,
        tx: &mut Tx,
        id: i64,
        event: &str,
        text: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.request_event_by(tx, id, event, text, None, now).await
    }

    /// As `request_event`, written by `author` (a user).
    pub(super) async fn request_event_by(
        &self,
        tx: &mut Tx,
        id: i64,
        event: &str,
        text: &str,
        author: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let event_id: i64 = sqlx::query_scalar(
            "INSERT INTO request_events (request_id, at_ms, event, text, author) VALUES ($1, $2, $3, $4, $5) RETURNING event_id",
        )
        .bind(id)
        .bind(now)
        .bind(event)
        .bind(text)
        .bind(author)
        .fetch_one(&mut **tx)
        .await
        .map_err(|e| self.err(e))?;
        let mail = self.settings.email.is_some() && crate::notify::notifies(event);
        if !self.settings.outbox && !mail {
            return Ok(());
        }
        let sql = format!("SELECT {REQUEST_COLS} FROM service_requests WHERE request_id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_one(&mut **tx)
            .await
            .map_err(|e| self.err(e))?;
        let request = request_from(&row);
        if mail {
            self.queue_request_emails(tx, &request, event, now).await?;
        }
        if !self.settings.outbox {
            return Ok(());
        }
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
        within_accounts(&mut qb, "account_id", q.accounts.as_deref());
        if let Some(s) = &q.serial {
            qb.push(" AND serial = ").push_bind(s.as_str());
        }
        if let Some(k) = &q.kind {
            qb.push(" AND kind = ").push_bind(k.as_str());
        }
        if q.overdue {
            qb.push(" AND state = 'open' AND due_at_ms < ")
                .push_bind(crate::store::now_ms());
        }
        if let Some(u) = &q.administrator {
            qb.push(" AND serial IN ");
            administered_by(&mut qb, u);
        }
        if let Some(b) = &q.before {
            // A number that is no request's: nothing is older than it.
            qb.push(" AND request_id < ")
                .push_bind(request_id(b).unwrap_or(i64::MIN));
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
            "SELECT at_ms, event, text, author FROM request_events WHERE request_id = $1 ORDER BY event_id",
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
            author: e.get(3),
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
                Refusal::InvalidKind,
                format!(
                    "kind {:?}: a user opens incident, move or information requests",
                    r.kind
                ),
            ));
        }
        let priority = r.priority.clone().unwrap_or_else(|| "normal".into());
        if !["low", "normal", "high"].contains(&priority.as_str()) {
            return Err(StoreError::refused(
                Refusal::InvalidPriority,
                "priority is low, normal or high",
            ));
        }
        if r.title.trim().is_empty() {
            return Err(StoreError::refused(
                Refusal::InvalidTitle,
                "give the request a title",
            ));
        }
        let trimmed = |v: &str| v.trim().to_string();
        for (field, value, limit) in [
            ("title", r.title.as_str(), 200),
            ("description", r.description.as_str(), 10_000),
            ("contact_name", r.contact_name.as_str(), 200),
            ("contact_phone", r.contact_phone.as_str(), 40),
            (
                "destination_address",
                r.destination_address.as_deref().unwrap_or(""),
                500,
            ),
            (
                "destination_location",
                r.destination_location.as_deref().unwrap_or(""),
                200,
            ),
        ] {
            if value.chars().count() > limit {
                return Err(StoreError::refused(
                    Refusal::InvalidRequest,
                    format!("{field} is at most {limit} characters"),
                ));
            }
        }
        let destination = r
            .destination_address
            .as_deref()
            .map(trimmed)
            .filter(|d| !d.is_empty());
        match (r.kind.as_str(), &destination, &r.serial) {
            ("move", None, _) => return Err(StoreError::refused(
                Refusal::InvalidRequest,
                "a move request needs destination_address (and, if it helps, destination_location)",
            )),
            ("move", _, None) | ("incident", _, None) => {
                return Err(StoreError::refused(
                    Refusal::InvalidRequest,
                    format!("a {} request is about a product: give serial", r.kind),
                ))
            }
            (k, Some(_), _) if k != "move" => {
                return Err(StoreError::refused(
                    Refusal::InvalidRequest,
                    "only a move request has a destination",
                ))
            }
            _ => {}
        }
        if self.account(&r.account).await?.is_none() {
            return Err(StoreError::refused(
                Refusal::AccountNotFound,
                format!("no account {:?}", r.account),
            ));
        }
        let mut location = String::new();
        if let Some(s) = &r.serial {
            match self.product(s).await? {
                None => return Err(StoreError::NotFound(format!("product {s:?}"))),
                Some(p) if p.account.as_deref() != Some(r.account.as_str()) => {
                    return Err(StoreError::refused(
                        Refusal::ProductOfAnotherAccount,
                        format!("product {s:?} does not belong to account {:?}", r.account),
                    ))
                }
                Some(p) => {
                    location = [p.site_address, p.location]
                        .into_iter()
                        .flatten()
                        .filter(|x| !x.is_empty())
                        .collect::<Vec<_>>()
                        .join(", ");
                }
            }
        }
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO service_requests (account_id, serial, kind, priority, state, opened_by, title,
             occurrences, first_seen_ms, last_seen_ms, opened_at_ms, description, contact_name,
             contact_phone, location, destination_address, destination_location)
             VALUES ($1, $2, $3, $4, 'open', $5, $6, 1, $7, $7, $7, $8, $9, $10, $11, $12, $13)
             RETURNING request_id",
        )
        .bind(&r.account)
        .bind(&r.serial)
        .bind(&r.kind)
        .bind(&priority)
        .bind(&r.user)
        .bind(r.title.trim())
        .bind(now)
        .bind(r.description.trim())
        .bind(r.contact_name.trim())
        .bind(r.contact_phone.trim())
        .bind(&location)
        .bind(&destination)
        .bind(
            r.destination_location
                .as_deref()
                .map(trimmed)
                .filter(|d| !d.is_empty()),
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        if let (Some(serial), "incident" | "move") = (&r.serial, r.kind.as_str()) {
            self.set_due(&mut tx, id, serial, now).await?;
        }
        self.request_event_by(&mut tx, id, "opened", r.title.trim(), Some(&r.user), now)
            .await?;
        tx.commit().await.map_err(|e| self.err(e))?;
        self.request(&request_number(id))
            .await?
            .ok_or_else(|| StoreError::NotFound(request_number(id)))
    }

    /// Sets a request's due time from its product's terms (none: none).
    async fn set_due(
        &self,
        tx: &mut Tx,
        id: i64,
        serial: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let terms: Option<Option<String>> =
            sqlx::query_scalar("SELECT terms FROM products WHERE serial = $1")
                .bind(serial)
                .fetch_optional(&mut **tx)
                .await
                .map_err(|e| self.err(e))?;
        let due = terms
            .flatten()
            .and_then(|t| serde_json::from_str::<crate::model::Entitlements>(&t).ok())
            .and_then(|t| t.due_at_ms(now));
        if let Some(due) = due {
            sqlx::query("UPDATE service_requests SET due_at_ms = $1 WHERE request_id = $2")
                .bind(due)
                .bind(id)
                .execute(&mut **tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// An operator's status update or anyone's comment on an open or
    /// closed request, as an event by `by`. `operator`: an update the
    /// customer is told of ("updated"); otherwise a customer's "comment".
    pub async fn note_request(
        &self,
        number: &str,
        note: &RequestNote,
        by: &str,
        operator: bool,
        now: i64,
    ) -> Result<ServiceRequest, StoreError> {
        let id = request_id(number)
            .ok_or_else(|| StoreError::NotFound(format!("request {number:?}")))?;
        let text = note.text.trim();
        if text.chars().count() > 10_000 {
            return Err(StoreError::refused(
                Refusal::InvalidRequest,
                "text is at most 10000 characters",
            ));
        }
        if let Some(st) = &note.status {
            if !REQUEST_STATUSES.contains(&st.as_str()) {
                return Err(StoreError::refused(
                    Refusal::InvalidRequest,
                    format!("status {st:?}: give one of {}", REQUEST_STATUSES.join(", ")),
                ));
            }
        } else if text.is_empty() {
            return Err(StoreError::refused(
                Refusal::InvalidRequest,
                "give a comment's text (or, operators, a status)",
            ));
        }
        let mut tx = self.begin_write().await?;
        if let Some(st) = &note.status {
            let n = sqlx::query("UPDATE service_requests SET status = $1 WHERE request_id = $2")
                .bind(st)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound(format!("request {number:?}")));
            }
        }
        let shown = match &note.status {
            Some(st) if text.is_empty() => format!("status: {st}"),
            Some(st) => format!("status: {st}: {text}"),
            None => text.to_string(),
        };
        let event = if operator { "updated" } else { "comment" };
        self.request_event_by(&mut tx, id, event, &shown, Some(by), now)
            .await?;
        tx.commit().await.map_err(|e| self.err(e))?;
        self.request(number)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("request {number:?}")))
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
        let mut tx = self.begin_write().await?;
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
                    Refusal::RequestClosed,
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
}
