use clap::{Parser, Subcommand};
use meterlink_collector::config::{Config, ConfigError};
use meterlink_collector::exit;
use meterlink_collector::pki::{Pki, PkiError, Validity};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "meterlink-collector",
    version,
    about = "meterlink collector: files meter readings sent by agents"
)]
struct Cli {
    /// Log lines as text or as JSON objects (one per line); the level comes
    /// from RUST_LOG.
    #[arg(long, global = true, value_parser = ["text", "json"], default_value = "text")]
    log_format: String,
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
    /// Check a configuration file and say what is wrong, with the key.
    CheckConfig {
        #[arg(long)]
        config: PathBuf,
    },
    /// API users and their tokens, straight in the configured store.
    User {
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: meterlink_collector::users::UserAction,
    },
    /// Join tokens that enroll agents.
    Token {
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: meterlink_collector::agents::TokenAction,
    },
    /// Accounts (customers' companies): add, list.
    Account {
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: meterlink_collector::agents::AccountAction,
    },
    /// Agents: list, disable, enable.
    Agent {
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: meterlink_collector::agents::AgentAction,
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
        /// Days the certificate lasts, from today.
        #[arg(long, default_value_t = meterlink_collector::pki::DEFAULT_CERT_DAYS)]
        days: u32,
    },
}

/// The configuration file given, or the embedded defaults.
fn load(config: Option<PathBuf>) -> Result<Config, ConfigError> {
    match config {
        Some(p) => Config::load(&p),
        None => Config::parse("(defaults)", ""),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
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
        .with_writer(std::io::stderr);
    if cli.log_format == "json" {
        logs.json().init();
    } else {
        logs.init();
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("meterlink-collector: cannot start the runtime: {e}");
            return ExitCode::from(exit::OTHER);
        }
    };
    // A failure: the exit code (meterlink_collector::exit) and what to say.
    let r: Result<(), (u8, String)> = rt.block_on(async {
        let usage = |e: ConfigError| (exit::USAGE, e.to_string());
        match cli.command {
            Command::Serve { config } => {
                let cfg = load(config).map_err(usage)?;
                let running = meterlink_collector::server::start(&cfg)
                    .await
                    .map_err(|e| (exit::of_start(&e), e.to_string()))?;
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
            Command::CheckConfig { config } => {
                let cfg = Config::load(&config).map_err(usage)?;
                let ok = meterlink_collector::server::check_config(&cfg)
                    .map_err(|e| (exit::of_start(&e), e.to_string()))?;
                print!("{}: {ok}", config.display());
                Ok(())
            }
            Command::User { config, action } => {
                let cfg = load(config).map_err(usage)?;
                let out = meterlink_collector::users::run(&cfg, action)
                    .await
                    .map_err(|e| (exit::of_user(&e), e.to_string()))?;
                if let Some(n) = out.note {
                    eprintln!("{n}");
                }
                print!("{}", out.text);
                Ok(())
            }
            Command::Token { config, action } => {
                let cfg = load(config).map_err(usage)?;
                let out = meterlink_collector::agents::token(&cfg, action)
                    .await
                    .map_err(|e| (exit::of_agents(&e), e.to_string()))?;
                if let Some(n) = out.note {
                    eprintln!("{n}");
                }
                print!("{}", out.text);
                Ok(())
            }
            Command::Account { config, action } => {
                let cfg = load(config).map_err(usage)?;
                let out = meterlink_collector::agents::account(&cfg, action)
                    .await
                    .map_err(|e| (exit::of_agents(&e), e.to_string()))?;
                print!("{}", out.text);
                Ok(())
            }
            Command::Agent { config, action } => {
                let cfg = load(config).map_err(usage)?;
                let out = meterlink_collector::agents::agent(&cfg, action)
                    .await
                    .map_err(|e| (exit::of_agents(&e), e.to_string()))?;
                print!("{}", out.text);
                Ok(())
            }
            Command::Ca { dir, action } => {
                let tls = |e: PkiError| (exit::TLS, e.to_string());
                let pki = Pki::ensure(&dir, "meterlink CA").map_err(tls)?;
                match action {
                    CaAction::Init => println!("CA certificate: {}", pki.ca_cert().display()),
                    CaAction::Issue { name, server, out, days } => {
                        let file = if server { "collector".to_string() } else { name.clone() };
                        let validity = Validity::days_from_now(days.max(1));
                        let i = pki.issue(&name, server, &out, &file, Some(validity)).map_err(tls)?;
                        let (y, m, d) = validity.not_after;
                        println!("certificate: {}\nkey:         {}\nvalid until: {y:04}-{m:02}-{d:02}", i.cert.display(), i.key.display());
                    }
                }
                Ok(())
            }
        }
    });
    match r {
        Ok(()) => ExitCode::from(exit::OK),
        Err((code, e)) => {
            eprintln!("meterlink-collector: {e}");
            ExitCode::from(code)
        }
    }
}
