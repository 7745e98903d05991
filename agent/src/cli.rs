//! Command-line interface: argument parsing, output rendering, exit codes.

use crate::observation::DeviceReading;
use crate::poll::{read_device, ReadError};
use crate::profile::ProfileSet;
use crate::snmp::engine::{Credential, CredentialSet, Engine, EngineConfig, Secret, SnmpError};
use crate::snmp::usm::{AuthProtocol, PrivProtocol, UsmUser};
use crate::snmp::Version;
use clap::{Args, Parser, Subcommand};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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

#[derive(Parser, Debug)]
#[command(
    name = "meterlink-agent",
    version,
    about = "meterlink agent: reads page counters, supplies and alerts from printers over SNMP"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Read everything meterlink reads from one device and print it.
    Probe(ProbeArgs),
    /// Find SNMP devices in address ranges and tell printers from the rest.
    Discover(crate::discovery::DiscoverArgs),
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
    /// Show the running agent's backlog, last ack and connection state.
    Status {
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Args, Debug, Clone)]
pub struct CredentialArgs {
    /// SNMP v1/v2c community.
    #[arg(long, short = 'c', env = "METERLINK_COMMUNITY", hide_env_values = true)]
    pub community: Option<String>,
    /// SNMP version for --community: 1 or 2c.
    #[arg(long, default_value = "2c", value_parser = ["1", "2c"])]
    pub snmp_version: String,
    /// SNMPv3 user name.
    #[arg(long)]
    pub v3_user: Option<String>,
    /// SNMPv3 authentication protocol: MD5, SHA, SHA-224, SHA-256, SHA-384, SHA-512.
    #[arg(long)]
    pub auth_proto: Option<AuthProtocol>,
    /// SNMPv3 authentication passphrase.
    #[arg(long, env = "METERLINK_AUTH_PASS", hide_env_values = true)]
    pub auth_pass: Option<String>,
    /// SNMPv3 privacy protocol: DES, AES, AES192, AES256, AES192C, AES256C.
    #[arg(long)]
    pub priv_proto: Option<PrivProtocol>,
    /// SNMPv3 privacy passphrase.
    #[arg(long, env = "METERLINK_PRIV_PASS", hide_env_values = true)]
    pub priv_pass: Option<String>,
    /// SNMPv3 context name.
    #[arg(long, default_value = "")]
    pub context: String,
}

#[derive(Args, Debug, Clone)]
pub struct EngineArgs {
    /// Seconds to wait for the first answer to a request.
    #[arg(long, default_value_t = 1.5)]
    pub timeout: f64,
    /// Retransmissions after the first attempt.
    #[arg(long, default_value_t = 2)]
    pub retries: u32,
    /// Directory of extra device profiles (*.toml); same-named ones replace the built-in.
    #[arg(long)]
    pub profiles: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// Device address: HOST or HOST:PORT (default port 161).
    pub target: String,
    #[command(flatten)]
    pub creds: CredentialArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
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

impl CredentialArgs {
    /// The credential set the flags describe. Named after its kind and user,
    /// never after a secret.
    pub fn credential_set(&self) -> Result<CredentialSet, Failure> {
        if let Some(user) = &self.v3_user {
            if self.community.is_some() {
                return Err(Failure::usage(
                    "give either --community or --v3-user, not both",
                ));
            }
            let auth = match (&self.auth_proto, &self.auth_pass) {
                (Some(p), Some(a)) => Some((*p, a.as_str())),
                (None, None) => None,
                (Some(_), None) => return Err(Failure::usage("--auth-proto needs --auth-pass")),
                (None, Some(_)) => return Err(Failure::usage("--auth-pass needs --auth-proto")),
            };
            let privacy = match (&self.priv_proto, &self.priv_pass) {
                (Some(p), Some(a)) => Some((*p, a.as_str())),
                (None, None) => None,
                (Some(_), None) => return Err(Failure::usage("--priv-proto needs --priv-pass")),
                (None, Some(_)) => return Err(Failure::usage("--priv-pass needs --priv-proto")),
            };
            let u = UsmUser::new(user, auth, privacy)
                .map_err(|e| Failure::usage(format!("SNMPv3 user {user:?}: {e}")))?;
            let level = match (auth, privacy) {
                (Some((a, _)), Some((p, _))) => format!("authPriv {}/{}", a.name(), p.name()),
                (Some((a, _)), None) => format!("authNoPriv {}", a.name()),
                _ => "noAuthNoPriv".into(),
            };
            return Ok(CredentialSet {
                name: format!("v3 user {user} ({level})"),
                credential: Credential::V3 {
                    user: Arc::new(u),
                    context: self.context.clone(),
                },
            });
        }
        let version = if self.snmp_version == "1" {
            Version::V1
        } else {
            Version::V2c
        };
        let community = self.community.clone().unwrap_or_else(|| "public".into());
        Ok(CredentialSet {
            name: format!(
                "{} community{}",
                version.name(),
                if self.community.is_none() {
                    " (default)"
                } else {
                    ""
                }
            ),
            credential: Credential::Community {
                version,
                community: Secret(community),
            },
        })
    }
}

impl EngineArgs {
    pub fn engine_config(&self) -> Result<EngineConfig, Failure> {
        if !(self.timeout.is_finite() && self.timeout > 0.0 && self.timeout <= 60.0) {
            return Err(Failure::usage("--timeout must be between 0 and 60 seconds"));
        }
        Ok(EngineConfig {
            timeout: Duration::from_secs_f64(self.timeout),
            retries: self.retries.min(10),
            ..EngineConfig::default()
        })
    }

    pub fn profile_set(&self) -> Result<ProfileSet, Failure> {
        let Some(dir) = &self.profiles else {
            return Ok(ProfileSet::embedded());
        };
        let mut files = Vec::new();
        let rd = std::fs::read_dir(dir).map_err(|e| {
            Failure::usage(format!(
                "cannot read profile directory {}: {e}",
                dir.display()
            ))
        })?;
        for entry in rd.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|x| x == "toml") {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    Failure::usage(format!("cannot read profile {}: {e}", path.display()))
                })?;
                files.push((path.display().to_string(), text));
            }
        }
        files.sort();
        ProfileSet::with_overrides(files).map_err(|e| Failure::usage(e.to_string()))
    }
}

/// HOST, HOST:PORT, [V6]:PORT; default port 161.
pub fn parse_target(s: &str, default_port: u16) -> Result<SocketAddr, Failure> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(ip) = s.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, default_port));
    }
    let with_port = if s.contains(':') {
        s.to_string()
    } else {
        format!("{s}:{default_port}")
    };
    with_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| Failure::usage(format!("cannot resolve device address {s:?}")))
}

/// Runs `probe` and returns what it prints.
pub async fn probe(args: ProbeArgs) -> Result<String, Failure> {
    let addr = parse_target(&args.target, 161)?;
    let cred = args.creds.credential_set()?;
    let profiles = args.engine.profile_set()?;
    let engine = Engine::new(args.engine.engine_config()?)
        .await
        .map_err(|e| Failure {
            code: exit::OTHER,
            message: format!("cannot open a UDP socket: {e}"),
        })?;
    let read = read_device(&engine, &profiles, addr, std::slice::from_ref(&cred)).await?;
    Ok(if args.json {
        serde_json::to_string_pretty(&read.reading).expect("reading serialises") + "\n"
    } else {
        render_table(&read.reading)
    })
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
        Command::Probe(a) => probe(a).await,
        Command::Discover(a) => crate::discovery::run(a).await,
        Command::Run { config } => run_daemon(&config).await,
        Command::CheckConfig { config } => check_config(&config),
        Command::Status { config } => status(&config),
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

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("-")
}

/// The human-readable form of a reading.
pub fn render_table(r: &DeviceReading) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let id = &r.identity;
    let _ = writeln!(
        o,
        "Device {} ({}, profile {})",
        r.address, r.snmp_version, r.profile
    );
    for (k, v) in [
        ("Vendor", &id.vendor),
        ("Model", &id.model),
        ("Serial", &id.serial),
        ("Firmware", &id.firmware),
        ("MAC", &id.mac),
        ("sysObjectID", &id.sys_object_id),
        ("sysDescr", &id.sys_descr),
    ] {
        let _ = writeln!(o, "  {k:<12} {}", opt(v));
    }
    let _ = writeln!(o, "\nCounters");
    if r.counters.is_empty() {
        let _ = writeln!(o, "  (none)");
    } else {
        let w = r
            .counters
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let _ = writeln!(o, "  {:<14} {:<w$} {:>12}  UNIT", "ID", "NAME", "VALUE");
        for c in &r.counters {
            let _ = writeln!(
                o,
                "  {:<14} {:<w$} {:>12}  {}",
                c.id, c.name, c.value, c.unit
            );
        }
    }
    if !r.derived.is_empty() {
        let _ = writeln!(o, "\nTotals");
        for d in &r.derived {
            let _ = writeln!(
                o,
                "  {:<14} {:>12}  = {}",
                d.id,
                d.value,
                d.from.join(" + ")
            );
        }
    }
    let _ = writeln!(o, "\nSupplies");
    if r.supplies.is_empty() {
        let _ = writeln!(o, "  (none)");
    }
    for s in &r.supplies {
        let pct = s
            .percent
            .map(|p| format!("{p}%"))
            .unwrap_or_else(|| "-".into());
        let lvl = s.level.map(|l| l.to_string()).unwrap_or_else(|| "-".into());
        let max = s.max.map(|l| l.to_string()).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            o,
            "  {:>2} {:<28} {:<16} {:>6}/{:<6} {:>5} {}",
            s.index, s.description, s.kind, lvl, max, pct, s.state
        );
    }
    let st = &r.status;
    let _ = writeln!(o, "\nStatus");
    let _ = writeln!(
        o,
        "  device {}, printer {}",
        opt(&st.device),
        opt(&st.printer)
    );
    let _ = writeln!(
        o,
        "  errors: {}",
        if st.errors.is_empty() {
            "none".into()
        } else {
            st.errors.join(", ")
        }
    );
    if st.alerts.is_empty() {
        let _ = writeln!(o, "  alerts: none");
    }
    for a in &st.alerts {
        let _ = writeln!(
            o,
            "  alert {}: {} {} ({}), {} / {}: {}",
            a.index, a.severity, a.code_name, a.code, a.group, a.training_level, a.description
        );
    }
    for line in &st.console {
        let _ = writeln!(o, "  console: {line}");
    }
    o
}

fn load(config: &std::path::Path) -> Result<crate::config::Validated, Failure> {
    crate::config::AgentConfig::load(config).map_err(|e| Failure::usage(e.to_string()))
}

fn check_config(config: &std::path::Path) -> Result<String, Failure> {
    let v = load(config)?;
    crate::daemon::uplink_config(&v).map_err(Failure::usage)?;
    Ok(format!(
        "{}: ok ({} credential sets, {} target groups, meter schedule {:?})\n",
        config.display(),
        v.credentials.len(),
        v.target_creds.len(),
        v.meter.expr
    ))
}

fn status(config: &std::path::Path) -> Result<String, Failure> {
    let v = load(config)?;
    let path = crate::daemon::status_path(&v.cfg.data_dir);
    let text = std::fs::read_to_string(&path).map_err(|e| Failure {
        code: exit::OTHER,
        message: format!(
            "no status at {} ({e}): is the agent running with this configuration?",
            path.display()
        ),
    })?;
    let r: crate::daemon::StatusReport = serde_json::from_str(&text).map_err(|e| Failure {
        code: exit::OTHER,
        message: format!("{}: {e}", path.display()),
    })?;
    let age = |ms: i64| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        format!("{:.0} s ago", (now - ms).max(0) as f64 / 1000.0)
    };
    let mut o = String::new();
    use std::fmt::Write;
    let _ = writeln!(o, "agent {} (status {})", r.agent_id, age(r.updated_at_ms));
    let _ = writeln!(o, "  connection   {}", r.connection);
    let _ = writeln!(
        o,
        "  last ack     seq {}{}",
        r.last_ack,
        if r.last_ack_at_ms > 0 {
            format!(", {}", age(r.last_ack_at_ms as i64))
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        o,
        "  backlog      {} observations, {} bytes{}",
        r.backlog_count,
        r.backlog_bytes,
        r.oldest_taken_at_ms
            .map(|t| format!(", oldest taken {}", age(t)))
            .unwrap_or_default()
    );
    if let (Some(p50), Some(p99)) = (r.ack_latency_p50_ms, r.ack_latency_p99_ms) {
        let _ = writeln!(
            o,
            "  poll to ack  p50 {p50} ms, p99 {p99} ms (recent observations)"
        );
    }
    let _ = writeln!(
        o,
        "  dropped      {} status/supply observations, {} meter readings merged",
        r.dropped, r.coalesced
    );
    let _ = writeln!(
        o,
        "  devices      {} (last poll: {} read, {} failed, {:.1} s)",
        r.devices,
        r.last_poll_read,
        r.last_poll_failed,
        r.last_poll_ms as f64 / 1000.0
    );
    if !r.config_version.is_empty() {
        let _ = writeln!(
            o,
            "  config       pushed by the collector, version {}",
            r.config_version
        );
    }
    if let Some(e) = &r.config_error {
        let _ = writeln!(o, "  config error {e}");
    }
    if let Some(e) = r.last_error {
        let _ = writeln!(o, "  last error   {e}");
    }
    Ok(o)
}

async fn run_daemon(config: &std::path::Path) -> Result<String, Failure> {
    let v = load(config)?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = tx.send(true);
    });
    crate::daemon::run(v, rx).await.map_err(|e| Failure {
        code: exit::OTHER,
        message: e,
    })?;
    Ok(String::new())
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
