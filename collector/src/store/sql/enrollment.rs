//! Agent enrollment: join tokens, the certificate serials issued to each
//! agent, and agents disabled by an operator.

use crate::model::{
    valid_agent_id, AgentCredential, AgentInfo, IssuedCert, IssuedJoinToken, JoinToken,
    NewJoinToken,
};
use crate::store::{Refusal, StoreError};
use sqlx::Row;

use super::Backend;

const TOKEN_COLUMNS: &str = "token_id, secret_sha256, account_id, agent_id, created_by, created_at_ms, expires_at_ms, used_at_ms, used_by_agent";

fn token_from(r: &<super::Db as sqlx::Database>::Row) -> JoinToken {
    JoinToken {
        id: r.get(0),
        secret_sha256: r.get(1),
        account: r.get(2),
        agent: r.get(3),
        created_by: r.get(4),
        created_at_ms: r.get(5),
        expires_at_ms: r.get(6),
        used_at_ms: r.get(7),
        used_by_agent: r.get(8),
    }
}

impl Backend {
    /// Stores a join token's hash; answers the token, which carries
    /// `pin_sha256`, the fingerprint of the CA the agent is to trust.
    pub async fn create_join_token(
        &self,
        t: &NewJoinToken,
        pin_sha256: &str,
        now: i64,
    ) -> Result<IssuedJoinToken, StoreError> {
        if self.account(&t.account).await?.is_none() {
            return Err(StoreError::refused(
                Refusal::AccountNotFound,
                format!("no account {:?}: create it first", t.account),
            ));
        }
        if let Some(a) = &t.agent {
            if !valid_agent_id(a) {
                return Err(StoreError::refused(
                    Refusal::InvalidAgentId,
                    format!("agent id {a:?}: use 1 to 64 of A-Z a-z 0-9 - _ . (not starting with a dot)"),
                ));
            }
            self.check_agent_account(a, &t.account).await?;
        }
        let n = crate::token::generate_join()?;
        sqlx::query(
            "INSERT INTO join_tokens (token_id, secret_sha256, account_id, agent_id, created_by, created_at_ms, expires_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&n.id)
        .bind(&n.secret_hash)
        .bind(&t.account)
        .bind(&t.agent)
        .bind(&t.created_by)
        .bind(now)
        .bind(t.expires_at_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(IssuedJoinToken {
            token: crate::token::with_fingerprint(&n.text, pin_sha256).0,
            id: n.id,
            account: t.account.clone(),
            agent: t.agent.clone(),
            expires_at_ms: t.expires_at_ms,
        })
    }

    /// Join tokens, newest first; of one account, or all.
    pub async fn join_tokens(&self, account: Option<&str>) -> Result<Vec<JoinToken>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM join_tokens WHERE ($1 IS NULL OR account_id = $1)
             ORDER BY created_at_ms DESC, token_id"
        ))
        .bind(account)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(token_from).collect())
    }

    pub async fn join_token(&self, id: &str) -> Result<Option<JoinToken>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM join_tokens WHERE token_id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(row.as_ref().map(token_from))
    }

    /// Withdraws a token not used yet.
    pub async fn delete_join_token(&self, id: &str) -> Result<(), StoreError> {
        let n = sqlx::query("DELETE FROM join_tokens WHERE token_id = $1 AND used_at_ms IS NULL")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("unused join token {id:?}")));
        }
        Ok(())
    }

    /// Refuses when `agent` exists and files into another account.
    async fn check_agent_account(&self, agent: &str, account: &str) -> Result<(), StoreError> {
        let current: Option<Option<String>> =
            sqlx::query_scalar("SELECT account_id FROM agents WHERE agent_id = $1")
                .bind(agent)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
        match current.flatten() {
            Some(a) if a != account => Err(StoreError::refused(
                Refusal::AgentOfAnotherAccount,
                format!("agent id {agent:?} belongs to another account: choose another id"),
            )),
            _ => Ok(()),
        }
    }

    /// Uses join token `token_id` for `cert`: in one transaction the token
    /// becomes used (refused when another enrollment used it first) and the
    /// agent is recorded in the token's account with this certificate's
    /// serial as the only one it may use (earlier certificates stop working).
    pub async fn redeem_join_token(
        &self,
        token_id: &str,
        cert: &IssuedCert,
        now: i64,
    ) -> Result<(), StoreError> {
        let t = self
            .join_token(token_id)
            .await?
            .ok_or_else(|| StoreError::refused(Refusal::JoinTokenUnknown, "unknown join token"))?;
        self.check_agent_account(&cert.agent, &t.account).await?;
        let mut tx = self.begin_write().await?;
        let used = sqlx::query(
            "UPDATE join_tokens SET used_at_ms = $1, used_by_agent = $2
             WHERE token_id = $3 AND used_at_ms IS NULL AND expires_at_ms > $1",
        )
        .bind(now)
        .bind(&cert.agent)
        .bind(token_id)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?
        .rows_affected();
        if used == 0 {
            tx.rollback().await.map_err(|e| self.err(e))?;
            return Err(StoreError::refused(
                Refusal::JoinTokenUsed,
                "the join token was used or expired meanwhile: ask for a new one",
            ));
        }
        let disabled: Option<i64> =
            sqlx::query_scalar("SELECT disabled FROM agents WHERE agent_id = $1")
                .bind(&cert.agent)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        if disabled == Some(1) {
            tx.rollback().await.map_err(|e| self.err(e))?;
            return Err(StoreError::refused(
                Refusal::AgentDisabled,
                format!(
                    "agent {:?} is disabled: an operator enables it first (`meterlink-collector agent enable {}`)",
                    cert.agent, cert.agent
                ),
            ));
        }
        sqlx::query(
            "INSERT INTO agents (agent_id, first_seen_ms, last_seen_ms, account_id, cert_serial, cert_expires_at_ms)
             VALUES ($1, $2, $2, $3, $4, $5)
             ON CONFLICT (agent_id) DO UPDATE SET account_id = excluded.account_id,
             cert_serial = excluded.cert_serial, previous_serial = NULL,
             cert_expires_at_ms = excluded.cert_expires_at_ms",
        )
        .bind(&cert.agent)
        .bind(now)
        .bind(&t.account)
        .bind(&cert.serial)
        .bind(cert.expires_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))
    }

    /// Records a renewal made with the certificate `presented` (hex serial):
    /// refused when the agent is disabled or `presented` is no longer one of
    /// its certificates. The presented one stays good as the previous serial.
    pub async fn renew_agent_cert(
        &self,
        presented: &str,
        cert: &IssuedCert,
    ) -> Result<(), StoreError> {
        let c = self.agent_credential(&cert.agent).await?;
        if c.disabled {
            return Err(StoreError::refused(
                Refusal::AgentDisabled,
                format!("agent {:?} is disabled by an operator", cert.agent),
            ));
        }
        let n = sqlx::query(
            "UPDATE agents SET previous_serial = $1, cert_serial = $2, cert_expires_at_ms = $3
             WHERE agent_id = $4 AND disabled = 0
             AND (cert_serial IS NULL OR cert_serial = $1 OR previous_serial = $1)",
        )
        .bind(presented)
        .bind(&cert.serial)
        .bind(cert.expires_at_ms)
        .bind(&cert.agent)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::refused(
                Refusal::CertificateReplaced,
                format!(
                    "this certificate of agent {:?} was replaced by a later enrollment: enroll again with a new join token",
                    cert.agent
                ),
            ));
        }
        Ok(())
    }

    /// The agent's credential state (the default for an unknown agent).
    pub async fn agent_credential(&self, agent: &str) -> Result<AgentCredential, StoreError> {
        let row = sqlx::query(
            "SELECT disabled, cert_serial, previous_serial FROM agents WHERE agent_id = $1",
        )
        .bind(agent)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(row
            .map(|r| AgentCredential {
                disabled: r.get::<i64, _>(0) != 0,
                serial: r.get(1),
                previous_serial: r.get(2),
            })
            .unwrap_or_default())
    }

    /// Every agent whose certificates are restricted (enrolled or disabled):
    /// what the live streams are checked against.
    pub async fn agent_credentials(&self) -> Result<Vec<(String, AgentCredential)>, StoreError> {
        let rows = sqlx::query(
            "SELECT agent_id, disabled, cert_serial, previous_serial FROM agents
             WHERE disabled = 1 OR cert_serial IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    AgentCredential {
                        disabled: r.get::<i64, _>(1) != 0,
                        serial: r.get(2),
                        previous_serial: r.get(3),
                    },
                )
            })
            .collect())
    }

    /// Disables or enables an agent. A disabled agent may not connect, renew
    /// or enroll; its live stream ends.
    pub async fn set_agent_enabled(
        &self,
        agent: &str,
        enabled: bool,
    ) -> Result<AgentInfo, StoreError> {
        let n = sqlx::query("UPDATE agents SET disabled = $1 WHERE agent_id = $2")
            .bind(i64::from(!enabled))
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
