//! `meterlink-collector user ...`: API users and tokens, straight in the
//! configured store (on the collector's host, no API token needed).

use crate::config::Config;
use crate::model::NewAudit;
use crate::model::{Role, User};
use crate::store::{now_ms, Settings, Store, StoreError};
use clap::Subcommand;
use std::fmt::Write;

#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Create or change a user.
    Add {
        id: String,
        /// operator, account_manager or product_administrator.
        #[arg(long)]
        role: String,
        /// The account (not for operators).
        #[arg(long)]
        account: Option<String>,
        /// Display name; default the id.
        #[arg(long)]
        name: Option<String>,
        /// The e-mail address the person logs in with.
        #[arg(long)]
        email: Option<String>,
    },
    /// Set a user's password, read from standard input (one line), for
    /// logging in with their e-mail address.
    Password { id: String },
    /// List users.
    List,
    /// Issue an API token and print it (shown only this once).
    Token {
        id: String,
        #[arg(long, default_value = "")]
        label: String,
        /// Days until it expires; default: until revoked.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        expires_days: Option<u32>,
    },
    /// List a user's tokens (ids and labels, never the secrets).
    Tokens { id: String },
    /// Revoke one token.
    Revoke { id: String, token: String },
    /// Remove a user and their tokens.
    Remove { id: String },
}

/// What to print: `text` on stdout, `note` on stderr (so that
/// `TOKEN=$(meterlink-collector user token ...)` captures the token alone).
#[derive(Debug, Default)]
pub struct Output {
    pub text: String,
    pub note: Option<String>,
}

/// Why a `user` command failed: the arguments, or the store.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn run(cfg: &Config, action: UserAction) -> Result<Output, UserError> {
    let store = Store::open(&cfg.store_url(), Settings::default()).await?;
    apply(&store, action).await
}

async fn apply(store: &Store, action: UserAction) -> Result<Output, UserError> {
    let mut out = Output::default();
    let e = UserError::Store;
    match action {
        UserAction::Add {
            id,
            role,
            account,
            name,
            email,
        } => {
            let role = Role::parse(&role).ok_or_else(|| {
                UserError::Usage(format!(
                    "--role {role:?}: give operator, account_manager or product_administrator"
                ))
            })?;
            let name = name.unwrap_or_else(|| id.clone());
            let mut u = User::new(&id, &name, role, account.as_deref());
            u.email = email;
            let u = store.put_user(&u).await.map_err(e)?;
            let entry = NewAudit::command_line(
                "user",
                &u.id,
                "put",
                u.account.as_deref(),
                serde_json::to_value(&u).ok(),
            );
            store.audit(&entry, now_ms()).await.map_err(e)?;
            let account = u.account.map(|a| format!(", account {a}"));
            let _ = writeln!(
                out.text,
                "user {} ({}{})",
                u.id,
                u.role.as_str(),
                account.unwrap_or_default()
            );
        }
        UserAction::List => {
            for u in store.users(None, &Default::default()).await.map_err(e)? {
                let account = u.account.as_deref().unwrap_or("-");
                let _ = writeln!(
                    out.text,
                    "{}\t{}\t{account}\t{}",
                    u.id,
                    u.role.as_str(),
                    u.name
                );
            }
        }
        UserAction::Token {
            id,
            label,
            expires_days,
        } => {
            let now = now_ms();
            let expires = expires_days.map(|d| now + i64::from(d) * 86_400_000);
            let t = store
                .issue_token(&id, &label, expires, now)
                .await
                .map_err(e)?;
            let entry = NewAudit::command_line(
                "api_token",
                &t.info.id,
                "issued",
                None,
                serde_json::to_value(&t.info).ok(),
            );
            store.audit(&entry, now).await.map_err(e)?;
            out.note = Some(format!(
                "token {} for {id}; give it as `Authorization: Bearer <token>`; it is not shown again:",
                t.info.id
            ));
            let _ = writeln!(out.text, "{}", t.token);
        }
        UserAction::Tokens { id } => {
            if store.user(&id).await.map_err(e)?.is_none() {
                return Err(UserError::Usage(format!("no user {id:?}")));
            }
            for t in store.tokens(&id).await.map_err(e)? {
                let expiry = t
                    .expires_at_ms
                    .map(|e| format!("expires_at_ms {e}"))
                    .unwrap_or_else(|| "no expiry".into());
                let _ = writeln!(out.text, "{}\t{}\t{expiry}", t.id, t.label);
            }
        }
        UserAction::Revoke { id, token } => {
            store.revoke_token(&id, &token).await.map_err(e)?;
            let entry = NewAudit::command_line("api_token", &token, "revoked", None, None);
            store.audit(&entry, now_ms()).await.map_err(e)?;
            let _ = writeln!(out.text, "revoked token {token} of {id}");
        }
        UserAction::Password { id } => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map_err(|e| {
                UserError::Usage(format!("cannot read the password from standard input: {e}"))
            })?;
            let password = line.trim_end_matches(['\r', '\n']);
            crate::auth::password::check_strength(password).map_err(UserError::Usage)?;
            let salt = crate::token::random_bytes::<16>().map_err(StoreError::from)?;
            let hash = crate::auth::password::hash(password, &salt)
                .map_err(|e| UserError::Usage(e.to_string()))?;
            store.set_password(&id, &hash).await.map_err(e)?;
            let entry = NewAudit::command_line("user", &id, "password_set", None, None);
            store.audit(&entry, now_ms()).await.map_err(e)?;
            let _ = writeln!(out.text, "password set for {id}");
        }
        UserAction::Remove { id } => {
            store.delete_user(&id).await.map_err(e)?;
            let entry = NewAudit::command_line("user", &id, "removed", None, None);
            store.audit(&entry, now_ms()).await.map_err(e)?;
            let _ = writeln!(out.text, "removed user {id} and their tokens");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The command line's steps against a collector's store, and the
    /// printed token working against the API's authentication.
    #[tokio::test]
    async fn add_token_list_revoke_remove() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::parse(
            "collector.toml",
            &format!("data_dir = \"{}\"\n", dir.path().display()),
        )
        .unwrap();
        let run = |a: UserAction| {
            let cfg = cfg.clone();
            async move { run(&cfg, a).await }
        };
        let out = run(UserAction::Add {
            id: "ops".into(),
            role: "operator".into(),
            account: None,
            name: Some("Operations".into()),
            email: None,
        })
        .await
        .unwrap();
        assert_eq!(out.text, "user ops (operator)\n");
        let bad = run(UserAction::Add {
            id: "x".into(),
            role: "admin".into(),
            account: None,
            name: None,
            email: None,
        })
        .await
        .unwrap_err();
        assert!(matches!(bad, UserError::Usage(_)), "{bad:?}");
        let bad = bad.to_string();
        assert!(
            bad.contains("operator, account_manager or product_administrator"),
            "{bad}"
        );
        let bad = run(UserAction::Add {
            id: "mia".into(),
            role: "account_manager".into(),
            account: Some("nowhere".into()),
            name: None,
            email: None,
        })
        .await
        .unwrap_err();
        assert!(matches!(bad, UserError::Store(_)), "{bad:?}");
        let bad = bad.to_string();
        assert!(bad.contains("no account \"nowhere\""), "{bad}");

        let out = run(UserAction::Token {
            id: "ops".into(),
            label: "laptop".into(),
            expires_days: Some(30),
        })
        .await
        .unwrap();
        let token = out.text.trim().to_string();
        assert!(token.starts_with(crate::token::TOKEN_PREFIX), "{token}");
        assert!(!out.note.as_deref().unwrap_or("").contains(&token));
        let listed = run(UserAction::Tokens { id: "ops".into() }).await.unwrap();
        let token_id = &token[4..20];
        assert!(
            listed
                .text
                .starts_with(&format!("{token_id}\tlaptop\texpires_at_ms ")),
            "{}",
            listed.text
        );
        assert!(!listed.text.contains(&token[21..]), "a secret listed");
        assert_eq!(
            run(UserAction::List).await.unwrap().text,
            "ops\toperator\t-\tOperations\n"
        );

        let store = Store::open(&cfg.store_url(), Settings::default())
            .await
            .unwrap();
        let who = store.authenticate(&token, now_ms()).await.unwrap();
        assert_eq!(who.map(|u| u.id), Some("ops".into()));
        run(UserAction::Revoke {
            id: "ops".into(),
            token: token_id.into(),
        })
        .await
        .unwrap();
        assert_eq!(store.authenticate(&token, now_ms()).await.unwrap(), None);
        run(UserAction::Remove { id: "ops".into() }).await.unwrap();
        assert!(run(UserAction::Tokens { id: "ops".into() }).await.is_err());
        assert!(run(UserAction::Remove { id: "ops".into() }).await.is_err());
    }
}
