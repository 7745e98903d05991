//! The command line: argument parsing, output rendering, terminal progress
//! and exit codes. The layer above everything else: nothing in the library
//! imports from `cli` (invariant A1); `main.rs` is a thin shell over `run`.

mod args;
mod commands;
mod render;

pub use args::{CredentialArgs, DiscoverArgs, EngineArgs, ProbeArgs};
pub use commands::{parse_target, probe};
pub use render::render_table;

use crate::poll::ReadError;
use crate::snmp::engine::SnmpError;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Exit codes, stable for scripts.
pub mod exit {
    pub const OK: u8 = 0;
    pub const OTHER: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const UNREACHABLE: u8 = 3;
    pub const AUTH: u8 = 4;
    pub const NOT_PRINTER: u8 = 5;
    pub const PROTOCOL: u8 = 6;
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// The format an argument list asks for, read before the logger starts
    /// (a wrong value is refused when the arguments are parsed).
    pub fn of_args(args: &[String]) -> LogFormat {
        let json = args
            .windows(2)
            .any(|w| w[0] == "--log-format" && w[1] == "json")
            || args.iter().any(|a| a == "--log-format=json");
        if json {
            LogFormat::Json
        } else {
            LogFormat::Text
        }
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "meterlink-agent",
    version,
    about = "meterlink agent: reads page counters, supplies and alerts from printers over SNMP"
)]
pub struct Cli {
    /// Log lines as text or as JSON objects (one per line); the level comes
    /// from RUST_LOG.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Read everything meterlink reads from one device and print it.
    Probe(ProbeArgs),
    /// Find SNMP devices in address ranges and tell printers from the rest.
    Discover(DiscoverArgs),
    /// Run the agent: poll on schedule, buffer, send to the collector.
    Run {
        #[arg(long)]
        config: PathBuf,
    },
    /// Validate a configuration file and say what is wrong, with the line.
    CheckConfig {
        #[arg(long)]
        config: PathBuf,
    },
    /// Join the collector with a join token: make a key here, get a
    /// certificate, keep both in data_dir/identity.
    Enroll {
        #[arg(long)]
        config: PathBuf,
        /// The join token `meterlink-collector token create` printed;
        /// default agent.toml's [collector] token.
        #[arg(long, env = "METERLINK_JOIN_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Enroll again although the agent has a certificate (its earlier
        /// certificates stop working).
        #[arg(long)]
        force: bool,
    },
    /// Show the running agent's backlog, last ack and connection state.
    Status {
        #[arg(long)]
        config: PathBuf,
    },
}

/// A user-facing failure: a message and an exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn usage(m: impl Into<String>) -> Failure {
        Failure {
            code: exit::USAGE,
            message: m.into(),
        }
    }
}

impl From<ReadError> for Failure {
    fn from(e: ReadError) -> Failure {
        let code = match &e {
            ReadError::Snmp(SnmpError::Timeout { .. }) => exit::UNREACHABLE,
            ReadError::Snmp(SnmpError::Auth { .. }) => exit::AUTH,
            ReadError::Snmp(SnmpError::Io { .. }) => exit::UNREACHABLE,
            ReadError::Snmp(_) => exit::PROTOCOL,
            ReadError::NotPrinter { .. } => exit::NOT_PRINTER,
            ReadError::NoCredentials(_) => exit::USAGE,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

/// Parses a command line and runs it; returns the exit code and what goes
/// to standard output. `main` and the tests share this path.
pub async fn run(argv: impl IntoIterator<Item = String>) -> (u8, String, String) {
    let cli = match Cli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            return (
                code,
                if code == exit::OK {
                    e.to_string()
                } else {
                    String::new()
                },
                e.to_string(),
            );
        }
    };
    let r = match cli.command {
        Command::Probe(a) => commands::probe(a).await,
        Command::Discover(a) => commands::discover(a).await,
        Command::Run { config } => commands::run_daemon(&config).await,
        Command::CheckConfig { config } => commands::check_config(&config),
        Command::Status { config } => commands::status(&config),
        Command::Enroll {
            config,
            token,
            force,
        } => commands::enroll(&config, token, force).await,
    };
    match r {
        Ok(out) => (exit::OK, out, String::new()),
        Err(f) => (
            f.code,
            String::new(),
            format!("meterlink-agent: {}\n", f.message),
        ),
    }
}

/// Ctrl-C or SIGTERM (what systemd sends).
pub async fn shutdown_signal() {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_log_format_is_read_before_the_logger_starts() {
        let json = [
            "meterlink-agent",
            "--log-format",
            "json",
            "status",
            "--config",
            "a",
        ];
        assert_eq!(LogFormat::of_args(&args(&json)), LogFormat::Json);
        let eq = [
            "meterlink-agent",
            "status",
            "--config",
            "a",
            "--log-format=json",
        ];
        assert_eq!(LogFormat::of_args(&args(&eq)), LogFormat::Json);
        let plain = ["meterlink-agent", "status", "--config", "a"];
        assert_eq!(LogFormat::of_args(&args(&plain)), LogFormat::Text);
        let cli = Cli::try_parse_from(json).unwrap();
        assert_eq!(cli.log_format, LogFormat::Json);
        assert!(Cli::try_parse_from([
            "meterlink-agent",
            "--log-format",
            "yaml",
            "status",
            "--config",
            "a"
        ])
        .is_err());
    }
}
