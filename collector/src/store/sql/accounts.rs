//! Accounts and the agents that file into them.

use crate::model::{Account, AgentInfo};
use crate::store::{Refusal, StoreError};
use sqlx::Row;

use super::rows::{account_from, ACCOUNT_COLS};
use super::Backend;

const AGENT_COLUMNS: &str = "agent_id, version, account_id, first_seen_ms, last_seen_ms, highest_seq, held_seq, disabled, cert_expires_at_ms";

fn agent_from(r: &<super::Db as sqlx::Database>::Row) -> AgentInfo {
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
        enabled: r.get::<i64, _>(7) == 0,
        cert_expires_at_ms: r.get(8),
    }
}

impl Backend {
    pub async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLS} FROM accounts ORDER BY account_id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(account_from).collect())
    }

    pub async fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLS} FROM accounts WHERE account_id = $1"
        ))
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
                Refusal::InvalidAccountId,
                "an account id is 1 to 64 characters without spaces",
            ));
        }
        if a.time_zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(StoreError::refused(
                Refusal::InvalidTimeZone,
                format!(
                    "time zone {:?} is not an IANA zone name such as Europe/Amsterdam",
                    a.time_zone
                ),
            ));
        }
        let mut tx = self.begin_write().await?;
        let organisation = match &a.organisation {
            Some(o) => {
                let found: Option<String> = sqlx::query_scalar(
                    "SELECT organisation_id FROM organisations WHERE organisation_id = $1",
                )
                .bind(o)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
                if found.is_none() {
                    return Err(StoreError::refused(
                        Refusal::OrganisationNotFound,
                        format!("no organisation {o:?}: create it first (PUT /api/v1/organisations/{o})"),
                    ));
                }
                o.clone()
            }
            None => {
                // Kept when the account exists; otherwise an organisation
                // of its own, named after it.
                let was: Option<Option<String>> = sqlx::query_scalar(
                    "SELECT organisation_id FROM accounts WHERE account_id = $1",
                )
                .bind(&a.id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
                match was.flatten() {
                    Some(o) => o,
                    None => {
                        sqlx::query(
                            "INSERT INTO organisations (organisation_id, name) VALUES ($1, $2)
                             ON CONFLICT (organisation_id) DO NOTHING",
                        )
                        .bind(&a.id)
                        .bind(&a.name)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.err(e))?;
                        a.id.clone()
                    }
                }
            }
        };
        sqlx::query(
            "INSERT INTO accounts (account_id, name, billing_code, service_code, auto_create, time_zone, organisation_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (account_id) DO UPDATE SET name = excluded.name,
             billing_code = excluded.billing_code, service_code = excluded.service_code,
             auto_create = excluded.auto_create, time_zone = excluded.time_zone,
             organisation_id = excluded.organisation_id",
        )
        .bind(&a.id)
        .bind(&a.name)
        .bind(&a.billing_code)
        .bind(&a.service_code)
        .bind(a.auto_create_products as i64)
        .bind(&a.time_zone)
        .bind(&organisation)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(Account {
            organisation: Some(organisation),
            ..a.clone()
        })
    }

    pub async fn agents(&self) -> Result<Vec<AgentInfo>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {AGENT_COLUMNS} FROM agents ORDER BY agent_id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(agent_from).collect())
    }

    pub async fn agent(&self, id: &str) -> Result<Option<AgentInfo>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {AGENT_COLUMNS} FROM agents WHERE agent_id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(row.as_ref().map(agent_from))
    }

    pub async fn set_agent_account(
        &self,
        agent: &str,
        account: Option<&str>,
    ) -> Result<AgentInfo, StoreError> {
        if let Some(a) = account {
            if self.account(a).await?.is_none() {
                return Err(StoreError::refused(
                    Refusal::AccountNotFound,
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
        self.agent(agent)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("agent {agent:?}")))
    }
}
