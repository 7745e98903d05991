//! What each subcommand does, returning what it prints.

use super::args::{DiscoverArgs, ProbeArgs};
use super::render::{render_discovery, render_status, render_table};
use super::{exit, Failure};
use crate::discovery::{scan, Found, FoundKind};
use crate::poll::read_device;
use crate::range::expand;
use crate::snmp::engine::Engine;
use std::io::IsTerminal;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

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

/// Runs `discover`: the scan with progress on a terminal, then the table
/// (or JSON) of what answered.
pub async fn discover(args: DiscoverArgs) -> Result<String, Failure> {
    let addrs = expand(&args.ranges, args.port, args.max_hosts).map_err(|e| {
        let hint = if e.too_many {
            "; narrow the ranges or raise --max-hosts"
        } else {
            ""
        };
        Failure::usage(format!("{e}{hint}"))
    })?;
    let cred = args.creds.credential_set()?;
    let profiles = Arc::new(args.engine.profile_set()?);
    let mut cfg = args.engine.engine_config()?;
    cfg.concurrency = args.concurrency.max(1);
    cfg.max_pps = (args.rate > 0).then_some(args.rate);
    let engine = Engine::new(cfg).await.map_err(|e| Failure {
        code: exit::OTHER,
        message: format!("cannot open a UDP socket: {e}"),
    })?;
    let tty = std::io::stderr().is_terminal();
    let found = scan(engine, profiles, addrs, cred, move |d, t, p| {
        if tty && (d % 16 == 0 || d == t) {
            eprint!("\rscanned {d}/{t}, printers found: {p}   ");
            if d == t {
                eprintln!();
            }
        }
    })
    .await;
    let shown: Vec<&Found> = found
        .iter()
        .filter(|f| args.all || f.kind != FoundKind::Silent)
        .collect();
    if args.json {
        return Ok(serde_json::to_string_pretty(&shown).expect("serialises") + "\n");
    }
    let printers = found
        .iter()
        .filter(|f| f.kind == FoundKind::Printer)
        .count();
    let answered = found
        .iter()
        .filter(|f| matches!(f.kind, FoundKind::Printer | FoundKind::Other))
        .count();
    eprintln!(
        "{} addresses scanned, {answered} answered, {printers} printers",
        found.len()
    );
    Ok(render_discovery(&shown))
}

fn load(config: &std::path::Path) -> Result<crate::config::Validated, Failure> {
    crate::config::AgentConfig::load(config).map_err(|e| Failure::usage(e.to_string()))
}

pub(super) fn check_config(config: &std::path::Path) -> Result<String, Failure> {
    let v = load(config)?;
    let source = crate::identity::Source::from_config(&v.cfg.collector, &v.cfg.data_dir);
    let identity = if source.present() {
        crate::daemon::uplink_config(&v).map_err(|e| Failure::usage(e.to_string()))?;
        match source {
            crate::identity::Source::Files { .. } => "certificate files".to_string(),
            crate::identity::Source::Enrolled { .. } => {
                format!("enrolled as {}", crate::daemon::agent_id(&v))
            }
        }
    } else if v.cfg.collector.token.is_some() || v.cfg.collector.token_file.is_some() {
        "not enrolled yet: `run` enrolls with the token".to_string()
    } else {
        "not enrolled yet: run `meterlink-agent enroll --config ... --token ...`".to_string()
    };
    Ok(format!(
        "{}: ok ({} credential sets, {} target groups, meter schedule {:?}; {identity})\n",
        config.display(),
        v.credentials.len(),
        v.target_creds.len(),
        v.meter.expr
    ))
}

pub(super) async fn enroll(
    config: &std::path::Path,
    token: Option<String>,
    force: bool,
) -> Result<String, Failure> {
    let v = load(config)?;
    let source = crate::identity::Source::from_config(&v.cfg.collector, &v.cfg.data_dir);
    let crate::identity::Source::Enrolled { dir } = &source else {
        return Err(Failure::usage(
            "agent.toml names ca, cert and key files: remove them from [collector] to use enrollment",
        ));
    };
    if source.present() && !force {
        return Err(Failure::usage(format!(
            "already enrolled as {}; give --force to enroll again (its current certificate stops working)",
            crate::daemon::agent_id(&v)
        )));
    }
    let token = token
        .or(v
            .cfg
            .collector
            .join_token()
            .map_err(|e| Failure::usage(e.to_string()))?
            .map(|t| t.0))
        .ok_or_else(|| Failure::usage("give --token (or [collector] token in agent.toml)"))?;
    let reach = crate::identity::Reach::from_config(&v.cfg.collector);
    let m = crate::identity::enroll(&reach, &token, &crate::daemon::agent_id(&v), dir)
        .await
        .map_err(|e| Failure {
            code: if e.is_transient() {
                exit::UNREACHABLE
            } else {
                exit::AUTH
            },
            message: format!("enrollment failed: {e}"),
        })?;
    Ok(format!(
        "enrolled as {} with {}; certificate valid until {}, renewed automatically; key and certificate in {}\n",
        m.agent_id.as_deref().unwrap_or("?"),
        v.cfg.collector.url,
        m.not_after_ms
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_else(|| "?".into()),
        crate::identity::Source::enrolled_file(&v.cfg.data_dir.join("identity")).display()
    ))
}

pub(super) fn status(config: &std::path::Path) -> Result<String, Failure> {
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
    Ok(render_status(&r))
}

pub(super) async fn run_daemon(config: &std::path::Path) -> Result<String, Failure> {
    let v = load(config)?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        super::shutdown_signal().await;
        let _ = tx.send(true);
    });
    crate::daemon::run(v, rx).await.map_err(|e| Failure {
        code: exit::OTHER,
        message: e.to_string(),
    })?;
    Ok(String::new())
}
