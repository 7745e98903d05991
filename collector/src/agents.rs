//! `meterlink-collector token ...`, `agent ...` and `account ...`: join
//! tokens for enrollment, the agents (list, disable, enable) and the
//! accounts they file into, straight in the configured store on the
//! collector's host.

use crate::config::Config;
use crate::model::NewAudit;
use crate::model::NewJoinToken;
use crate::store::{now_ms, Settings, Store, StoreError};
use clap::Subcommand;
use std::fmt::Write;

#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Make a single-use join token and print it (shown only this once).
    Create {
        /// The account the agent files into.
        #[arg(long)]
        account: String,
        /// The agent id it enrolls; default: the agent names itself.
        #[arg(long)]
        agent_id: Option<String>,
        /// How long it is good for: 90s, 30m, 24h, 7d; default
        /// [enrollment] token_ttl_secs (a day).
        #[arg(long, value_parser = parse_ttl)]
        ttl: Option<u64>,
        /// Also write the token to this file (mode 0600), for a deployment
        /// that hands it to the agent (a shared secret volume).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// List join tokens (ids, never the secrets).
    List {
        #[arg(long)]
        account: Option<String>,
    },
    /// Withdraw a token not used yet.
    Withdraw { id: String },
}

#[derive(Debug, Subcommand)]
pub enum AccountAction {
    /// Create an account (a customer's company) or change its name and codes.
    Add {
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        billing_code: String,
        #[arg(long, default_value = "")]
        service_code: String,
        /// Products first seen by the account's agents become its products.
        #[arg(long)]
        auto_create_products: bool,
        /// IANA time zone of its billing cutoffs.
        #[arg(long, default_value = "UTC")]
        time_zone: String,
        /// The organisation (customer) holding it, which must exist
        /// (PUT /api/v1/organisations/{id}); default: one of the account's own id.
        #[arg(long)]
        organisation: Option<String>,
    },
    /// List accounts.
    List,
}

#[derive(Debug, Subcommand)]
pub enum AgentAction {
    /// List agents: account, enabled, certificate expiry, last seen.
    List,
    /// Disable an agent: its stream ends within a second; it may not
    /// connect, renew or enroll until enabled.
    Disable { id: String },
    /// Enable a disabled agent again.
    Enable { id: String },
}

/// `--ttl`: seconds, or a number with s, m, h or d; from a minute to 30 days.
pub fn parse_ttl(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (n, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?}: give a number with s, m, h or d, as 24h"))?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(format!("{s:?}: the unit is s, m, h or d, as 24h")),
    };
    if !(60..=30 * 86_400).contains(&secs) {
        return Err(format!("{s:?}: from 1m to 30d"));
    }
    Ok(secs)
}

/// Why a `token` or `agent` command failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
    #[error("{0}")]
    Tls(String),
}

/// The fingerprint join tokens carry: of the CA the collector's
/// certificate chains to (the development CA unless [tls] names one).
pub fn pin_sha256(cfg: &Config) -> Result<String, AgentsError> {
    let ca = match &cfg.tls {
        Some(t) => {
            if t.client_ca_key.is_none() {
                return Err(AgentsError::Tls(
                    "this collector does not enroll agents: give [tls] client_ca_key in collector.toml"
                        .into(),
                ));
            }
            t.server_ca.clone().unwrap_or_else(|| t.client_ca.clone())
        }
        None => crate::pki::Pki::ensure(&cfg.data_dir.join("pki"), "meterlink development CA")?
            .ca_cert(),
    };
    let pem = std::fs::read_to_string(&ca)
        .map_err(|e| AgentsError::Tls(format!("{}: {e}", ca.display())))?;
    crate::pki::sign::first_cert_sha256(&pem)
        .ok_or_else(|| AgentsError::Tls(format!("{}: no certificate in it", ca.display())))
}

/// What to print: `text` on stdout, `note` on stderr.
pub use crate::users::Output;

pub async fn token(cfg: &Config, action: TokenAction) -> Result<Output, AgentsError> {
    let store = Store::open(&cfg.store_url(), Settings::default()).await?;
    let mut out = Output::default();
    match action {
        TokenAction::Create {
            account,
            agent_id,
            ttl,
            out: file,
        } => {
            let pin = pin_sha256(cfg)?;
            let now = now_ms();
            let ttl_ms = ttl.map(|s| s as i64 * 1000).unwrap_or(cfg.token_ttl_ms());
            let t = store
                .create_join_token(
                    &NewJoinToken {
                        account,
                        agent: agent_id,
                        created_by: "command line".into(),
                        expires_at_ms: now + ttl_ms,
                    },
                    &pin,
                    now,
                )
                .await?;
            out.note = Some(format!(
                "join token {} for account {}{}, single use, valid until {}; on the agent's host run \
                 `meterlink-agent enroll --config agent.toml --token <token>`; it is not shown again:",
                t.id,
                t.account,
                t.agent.as_deref().map(|a| format!(", agent {a}")).unwrap_or_default(),
                when(t.expires_at_ms),
            ));
            let _ = writeln!(out.text, "{}", t.token);
            let shown = serde_json::json!({"id": t.id, "account": t.account, "agent": t.agent,
                "expires_at_ms": t.expires_at_ms});
            let entry = NewAudit::command_line(
                "join_token",
                &t.id,
                "created",
                Some(&t.account),
                Some(shown),
            );
            store.audit(&entry, now).await?;
            if let Some(f) = file {
                crate::pki::write_secret(&f, &format!("{}\n", t.token))?;
            }
        }
        TokenAction::List { account } => {
            for t in store.join_tokens(account.as_deref()).await? {
                let state = match (&t.used_at_ms, &t.used_by_agent) {
                    (Some(at), by) => {
                        format!("used {} by {}", when(*at), by.as_deref().unwrap_or("?"))
                    }
                    (None, _) if t.expires_at_ms <= now_ms() => "expired".into(),
                    (None, _) => format!("valid until {}", when(t.expires_at_ms)),
                };
                let _ = writeln!(
                    out.text,
                    "{}\t{}\t{}\t{state}",
                    t.id,
                    t.account,
                    t.agent.as_deref().unwrap_or("-")
                );
            }
        }
        TokenAction::Withdraw { id } => {
            store.delete_join_token(&id).await?;
            let entry = NewAudit::command_line("join_token", &id, "withdrawn", None, None);
            store.audit(&entry, now_ms()).await?;
            let _ = writeln!(out.text, "withdrew join token {id}");
        }
    }
    Ok(out)
}

pub async fn agent(cfg: &Config, action: AgentAction) -> Result<Output, AgentsError> {
    let store = Store::open(&cfg.store_url(), Settings::default()).await?;
    let mut out = Output::default();
    match action {
        AgentAction::List => {
            for a in store.agents().await? {
                let _ = writeln!(
                    out.text,
                    "{}\t{}\t{}\tcertificate {}\tlast seen {}",
                    a.id,
                    a.account.as_deref().unwrap_or("-"),
                    if a.enabled { "enabled" } else { "disabled" },
                    a.cert_expires_at_ms
                        .map(|e| format!("until {}", when(e)))
                        .unwrap_or_else(|| "not enrolled".into()),
                    when(a.last_seen_ms),
                );
            }
        }
        AgentAction::Disable { id } => {
            let a = store.set_agent_enabled(&id, false).await?;
            let entry =
                NewAudit::command_line("agent", &id, "disabled", a.account.as_deref(), None);
            store.audit(&entry, now_ms()).await?;
            let _ = writeln!(
                out.text,
                "disabled agent {id}: its stream ends, nothing more is filed until `agent enable {id}`"
            );
        }
        AgentAction::Enable { id } => {
            let a = store.set_agent_enabled(&id, true).await?;
            let entry = NewAudit::command_line("agent", &id, "enabled", a.account.as_deref(), None);
            store.audit(&entry, now_ms()).await?;
            let _ = writeln!(out.text, "enabled agent {id}");
        }
    }
    Ok(out)
}

pub async fn account(cfg: &Config, action: AccountAction) -> Result<Output, AgentsError> {
    let store = Store::open(&cfg.store_url(), Settings::default()).await?;
    let mut out = Output::default();
    match action {
        AccountAction::Add {
            id,
            name,
            billing_code,
            service_code,
            auto_create_products,
            time_zone,
            organisation,
        } => {
            let a = store
                .put_account(&crate::model::Account {
                    id,
                    name,
                    billing_code,
                    service_code,
                    auto_create_products,
                    time_zone,
                    organisation,
                })
                .await?;
            let entry = NewAudit::command_line(
                "account",
                &a.id,
                "put",
                Some(&a.id),
                serde_json::to_value(&a).ok(),
            );
            store.audit(&entry, now_ms()).await?;
            let _ = writeln!(out.text, "account {} ({})", a.id, a.name);
        }
        AccountAction::List => {
            for a in store.accounts().await? {
                let _ = writeln!(
                    out.text,
                    "{}\t{}\tbilling {}\tservice {}",
                    a.id, a.name, a.billing_code, a.service_code
                );
            }
        }
    }
    Ok(out)
}

fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_read_as_people_write_them() {
        assert_eq!(parse_ttl("24h"), Ok(86_400));
        assert_eq!(parse_ttl("90"), Ok(90));
        assert_eq!(parse_ttl("30m"), Ok(1800));
        assert_eq!(parse_ttl("7d"), Ok(7 * 86_400));
        assert!(parse_ttl("10s").unwrap_err().contains("from 1m"));
        assert!(parse_ttl("31d").is_err());
        assert!(parse_ttl("2w").unwrap_err().contains("s, m, h or d"));
        assert!(parse_ttl("h").is_err());
    }
}
