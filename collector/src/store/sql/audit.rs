//! The audit log: who changed what, when, with the object before and after.

use crate::model::{Actor, AuditEntry, AuditQuery, NewAudit, Page};
use crate::store::StoreError;
use sqlx::{QueryBuilder, Row};

use super::{Backend, Db};

impl Backend {
    /// Records a change; the organisation is the one given, or the one of
    /// the object's company.
    pub async fn audit(&self, a: &NewAudit, now: i64) -> Result<(), StoreError> {
        let json = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string());
        sqlx::query(
            "INSERT INTO audit_log (at_ms, actor_kind, actor, organisation_id, object_kind, object_id,
             action, before_json, after_json)
             VALUES ($1, $2, $3,
                     COALESCE($4, (SELECT organisation_id FROM accounts WHERE account_id = $5)),
                     $6, $7, $8, $9, $10)",
        )
        .bind(now)
        .bind(&a.actor.kind)
        .bind(&a.actor.id)
        .bind(&a.organisation)
        .bind(&a.account)
        .bind(&a.object_kind)
        .bind(&a.object_id)
        .bind(&a.action)
        .bind(json(&a.before))
        .bind(json(&a.after))
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// A page of the log, newest first.
    pub async fn audit_log(&self, q: &AuditQuery) -> Result<Page<AuditEntry>, StoreError> {
        let limit = q.limit.unwrap_or(50).clamp(1, 500) as i64;
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT audit_id, at_ms, actor_kind, actor, organisation_id, object_kind, object_id, action,
             before_json, after_json FROM audit_log WHERE 1 = 1",
        );
        if let Some(o) = &q.organisation {
            qb.push(" AND organisation_id = ").push_bind(o.as_str());
        }
        if let Some(a) = &q.actor {
            qb.push(" AND actor = ").push_bind(a.as_str());
        }
        if let Some(k) = &q.object_kind {
            qb.push(" AND object_kind = ").push_bind(k.as_str());
        }
        if let Some(id) = &q.object_id {
            qb.push(" AND object_id = ").push_bind(id.as_str());
        }
        if let Some(b) = q.before {
            qb.push(" AND audit_id < ").push_bind(b);
        }
        qb.push(" ORDER BY audit_id DESC LIMIT ")
            .push_bind(limit + 1);
        let rows = qb
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        let parse = |v: Option<String>| v.and_then(|v| serde_json::from_str(&v).ok());
        let mut items: Vec<AuditEntry> = rows
            .iter()
            .map(|r| AuditEntry {
                id: r.get(0),
                at_ms: r.get(1),
                actor: Actor {
                    kind: r.get(2),
                    id: r.get(3),
                },
                organisation: r.get(4),
                object_kind: r.get(5),
                object_id: r.get(6),
                action: r.get(7),
                before: parse(r.get(8)),
                after: parse(r.get(9)),
            })
            .collect();
        let next = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items.last().map(|e| e.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next })
    }
}
