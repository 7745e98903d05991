use clap::{Parser, Subcommand};
use meterlink_collector::config::Config;
use meterlink_collector::pki::Pki;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "meterlink-collector",
    version,
    about = "meterlink collector: files meter readings sent by agents"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the collector.
    Serve {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// API users and their tokens, straight in the configured store.
    User {
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: UserAction,
    },
    /// Certificate authority for agents: create it, issue certificates.
    Ca {
        /// Directory of the CA (ca.pem, ca-key.pem); created if missing.
        #[arg(long, default_value = "data/collector/pki")]
        dir: PathBuf,
        #[command(subcommand)]
        action: CaAction,
    },
}

#[derive(Subcommand)]
enum CaAction {
    /// Create the CA if it does not exist and print where it is.
    Init,
    /// Issue a certificate: an agent's (client) or a collector's (--server).
    Issue {
        /// Common name: the agent id, or the collector's host name.
        name: String,
        #[arg(long)]
        server: bool,
        /// Output directory.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum UserAction {
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
    },
    /// List users.
    List,
    /// Issue an API token and print it (shown only this once).
    Token {
        id: String,
        #[arg(long, default_value = "")]
        label: String,
        /// Days until it expires; default: until revoked.
        #[arg(long)]
        expires_days: Option<u32>,
    },
    /// List a user's tokens (ids and labels, never the secrets).
    Tokens { id: String },
    /// Revoke one token.
    Revoke { id: String, token: String },
    /// Remove a user and their tokens.
    Remove { id: String },
}

async fn user_command(config: Option<PathBuf>, action: UserAction) -> Result<(), String> {
    use meterlink_collector::auth::{Role, User};
    use meterlink_collector::store::{now_ms, Settings, Store};
    let cfg = match config {
        Some(p) => Config::load(&p).map_err(|e| e.to_string())?,
        None => Config::parse("(defaults)", "").map_err(|e| e.to_string())?,
    };
    let store = Store::open(&cfg.store_url(), Settings::default())
        .await
        .map_err(|e| e.to_string())?;
    match action {
        UserAction::Add {
            id,
            role,
            account,
            name,
        } => {
            let role = Role::parse(&role).ok_or_else(|| {
                format!("--role {role:?}: give operator, account_manager or product_administrator")
            })?;
            let u = User {
                name: name.unwrap_or_else(|| id.clone()),
                id,
                role,
                account,
            };
            store.put_user(&u).await.map_err(|e| e.to_string())?;
            println!(
                "user {} ({}{})",
                u.id,
                u.role.as_str(),
                u.account
                    .map(|a| format!(", account {a}"))
                    .unwrap_or_default()
            );
        }
        UserAction::List => {
            for u in store.users(None).await.map_err(|e| e.to_string())? {
                println!(
                    "{}\t{}\t{}\t{}",
                    u.id,
                    u.role.as_str(),
                    u.account.as_deref().unwrap_or("-"),
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
                .map_err(|e| e.to_string())?;
            eprintln!("token {} for {id}; give it as `Authorization: Bearer <token>`; it is not shown again:", t.info.id);
            println!("{}", t.token);
        }
        UserAction::Tokens { id } => {
            for t in store.tokens(&id).await.map_err(|e| e.to_string())? {
                println!(
                    "{}\t{}\t{}",
                    t.id,
                    t.label,
                    t.expires_at_ms
                        .map(|e| format!("expires_at_ms {e}"))
                        .unwrap_or_else(|| "no expiry".into())
                );
            }
        }
        UserAction::Revoke { id, token } => {
            store
                .revoke_token(&id, &token)
                .await
                .map_err(|e| e.to_string())?;
            println!("revoked token {token} of {id}");
        }
        UserAction::Remove { id } => {
            store.delete_user(&id).await.map_err(|e| e.to_string())?;
            println!("removed user {id} and their tokens");
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // Refused TLS handshakes (no, foreign or expired client
                // certificates) are logged by tonic at debug level: show them.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new(
                        "info,tonic::transport::server::io_stream=debug",
                    )
                }),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("meterlink-collector: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let r: Result<(), String> = rt.block_on(async {
        match cli.command {
            Command::Serve { config } => {
                let cfg = match config {
                    Some(p) => Config::load(&p).map_err(|e| e.to_string())?,
                    None => Config::parse("(defaults)", "").map_err(|e| e.to_string())?,
                };
                let running = meterlink_collector::server::start(&cfg).await.map_err(|e| e.to_string())?;
                println!("meterlink-collector: gRPC on {} (mutual TLS), REST API on http://{}/api/v1/products", running.grpc_addr, running.http_addr);
                let term = async {
                    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                        Ok(mut s) => {
                            s.recv().await;
                        }
                        Err(_) => std::future::pending::<()>().await,
                    }
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term => {}
                }
                running.stop().await;
                Ok(())
            }
            Command::User { config, action } => user_command(config, action).await,
            Command::Ca { dir, action } => {
                let pki = Pki::ensure(&dir, "meterlink CA").map_err(|e| e.to_string())?;
                match action {
                    CaAction::Init => println!("CA certificate: {}", pki.ca_cert().display()),
                    CaAction::Issue { name, server, out } => {
                        let file = if server { "collector".to_string() } else { name.clone() };
                        let i = pki.issue(&name, server, &out, &file, None).map_err(|e| e.to_string())?;
                        println!("certificate: {}\nkey:         {}", i.cert.display(), i.key.display());
                    }
                }
                Ok(())
            }
        }
    });
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("meterlink-collector: {e}");
            ExitCode::from(2)
        }
    }
}
