//! meterlink-sim: serves simulated printers from snmpsim `.snmprec` files.

use clap::Parser;

// Reads of thousands of devices allocate many small buffers; mimalloc keeps
// that cheap (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use meterlink_agent::snmp::usm::UsmUser;
use meterlink_sim::{serve, Fault, Fleet, Recording, SimConfig};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "meterlink-sim",
    version,
    about = "Serves simulated SNMP printers from .snmprec recordings"
)]
struct Args {
    /// Recording to serve (repeatable; devices cycle through them).
    #[arg(long = "recording", short = 'r')]
    recordings: Vec<PathBuf>,
    /// Serve every .snmprec file in this directory.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// First device address.
    #[arg(long, default_value = "127.0.0.1:16100")]
    listen: SocketAddr,
    /// Number of devices (clones of the recordings).
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// Give each device its own port (ports) or its own 127.x.y.z address (ips).
    #[arg(long, default_value = "ports", value_parser = ["ports", "ips"])]
    layout: String,
    /// v1/v2c community (the recording's file name works too).
    #[arg(long, default_value = "public")]
    community: String,
    /// v3 user: NAME:AUTH:AUTHPASS or NAME:AUTH:AUTHPASS:PRIV:PRIVPASS (repeatable).
    #[arg(long = "v3-user")]
    v3_users: Vec<String>,
    /// Response latency in milliseconds.
    #[arg(long, default_value_t = 0.0)]
    latency_ms: f64,
    /// Uniform jitter around the latency, in milliseconds.
    #[arg(long, default_value_t = 0.0)]
    jitter_ms: f64,
    /// Fraction of requests dropped (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Pages per minute each device's counters advance by.
    #[arg(long, default_value_t = 0.0)]
    pages_per_minute: f64,
    /// Fault to inject: KIND or KIND@I,J (device indexes). Kinds: no-reply,
    /// wrong-request-id, truncated, non-increasing, toobig-empty,
    /// counter-regression, broken-bulk.
    #[arg(long = "fault")]
    faults: Vec<String>,
    /// Largest v1/v2c response in bytes.
    #[arg(long, default_value_t = 65507)]
    max_response: usize,
    /// Seed for loss and jitter.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the devices (address, recording, serial) as JSON lines on stdout.
    #[arg(long)]
    list: bool,
    /// Accept control commands on this TCP address (loopback), one per line:
    /// `fault KIND on|off [all|I,J]`, `stats`, `list`.
    #[arg(long)]
    control: Option<SocketAddr>,
}

fn fail(msg: String) -> ExitCode {
    eprintln!("meterlink-sim: {msg}");
    ExitCode::from(2)
}

fn parse_user(s: &str) -> Result<UsmUser, String> {
    let p: Vec<&str> = s.split(':').collect();
    let bad = || {
        format!(
            "--v3-user {:?}: expected NAME:AUTH:AUTHPASS[:PRIV:PRIVPASS]",
            p.first().unwrap_or(&"")
        )
    };
    let (name, auth, privacy) = match p.as_slice() {
        [n] => (*n, None, None),
        [n, a, ap] => (*n, Some((a.parse().map_err(|_| bad())?, *ap)), None),
        [n, a, ap, x, xp] => (
            *n,
            Some((a.parse().map_err(|_| bad())?, *ap)),
            Some((x.parse().map_err(|_| bad())?, *xp)),
        ),
        _ => return Err(bad()),
    };
    UsmUser::new(name, auth, privacy).map_err(|e| format!("--v3-user {name}: {e}"))
}

fn addresses(first: SocketAddr, count: usize, layout: &str) -> Result<Vec<SocketAddr>, String> {
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let a = if layout == "ips" {
            let IpAddr::V4(ip) = first.ip() else {
                return Err("--layout ips needs an IPv4 --listen address".into());
            };
            let n = u32::from(ip)
                .checked_add(i as u32)
                .ok_or("address range overflows")?;
            SocketAddr::new(IpAddr::V4(Ipv4Addr::from(n)), first.port())
        } else {
            let port = first.port() as usize + i;
            if port > 65535 {
                return Err(format!(
                    "{count} devices from port {} run past 65535; use --layout ips",
                    first.port()
                ));
            }
            SocketAddr::new(first.ip(), port as u16)
        };
        out.push(a);
    }
    Ok(out)
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut files = args.recordings.clone();
    if let Some(dir) = &args.dir {
        match std::fs::read_dir(dir) {
            Ok(rd) => {
                let mut v: Vec<PathBuf> = rd
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "snmprec"))
                    .collect();
                v.sort();
                files.extend(v);
            }
            Err(e) => return fail(format!("cannot read {}: {e}", dir.display())),
        }
    }
    if files.is_empty() {
        return fail("nothing to serve: give --recording FILE or --dir DIR".into());
    }
    let mut recs = Vec::new();
    for f in &files {
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => return fail(format!("cannot read {}: {e}", f.display())),
        };
        let name = f
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let (r, errors) = Recording::parse(&name, &text);
        for e in errors {
            eprintln!(
                "meterlink-sim: warning: {}: skipped line {}: {}",
                f.display(),
                e.line,
                e.what
            );
        }
        recs.push(Arc::new(r));
    }
    let mut users = Vec::new();
    for u in &args.v3_users {
        match parse_user(u) {
            Ok(u) => users.push(Arc::new(u)),
            Err(e) => return fail(e),
        }
    }
    if !(0.0..=1.0).contains(&args.loss) {
        return fail("--loss must be between 0 and 1".into());
    }
    let count = args.count.max(files.len());
    let addrs = match addresses(args.listen, count, &args.layout) {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let cfg = SimConfig {
        community: args.community.clone(),
        v3_users: users,
        latency: Duration::from_secs_f64(args.latency_ms.max(0.0) / 1000.0),
        jitter: Duration::from_secs_f64(args.jitter_ms.max(0.0) / 1000.0),
        loss: args.loss,
        pages_per_minute: args.pages_per_minute,
        max_response: args.max_response.max(484),
        seed: args.seed,
    };
    let fleet = Arc::new(Fleet::new(cfg, recs, addrs));
    for f in &args.faults {
        let (kind, which) = match f.split_once('@') {
            Some((k, w)) => (k, Some(w)),
            None => (f.as_str(), None),
        };
        let fault: Fault = match kind.parse() {
            Ok(x) => x,
            Err(e) => return fail(e.to_string()),
        };
        match which {
            None => fleet.devices.iter().for_each(|d| d.set_fault(fault, true)),
            Some(w) => {
                for i in w.split(',') {
                    match i
                        .trim()
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| fleet.devices.get(i))
                    {
                        Some(d) => d.set_fault(fault, true),
                        None => return fail(format!("--fault {f}: no device {i:?}")),
                    }
                }
            }
        }
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    rt.block_on(async {
        let tasks = match serve(fleet.clone()).await {
            Ok(t) => t,
            Err(e) => {
                let hint = if e.raw_os_error() == Some(24) {
                    " (too many open files: raise `ulimit -n` above the device count)"
                } else {
                    ""
                };
                return fail(format!("{e}{hint}"));
            }
        };
        if args.list {
            for d in &fleet.devices {
                println!(
                    "{}",
                    serde_json::json!({"index": d.index, "address": d.addr.to_string(), "recording": d.recording().name, "serial": d.serial()})
                );
            }
        }
        if let Some(addr) = args.control {
            let listener = match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => l,
                Err(e) => return fail(format!("cannot listen for control on {addr}: {e}")),
            };
            let fleet = fleet.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let fleet = fleet.clone();
                    tokio::spawn(async move {
                        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
                        let (r, mut w) = stream.into_split();
                        let mut lines = BufReader::new(r).lines();
                        while let Ok(Some(line)) = lines.next_line().await {
                            let answer = meterlink_sim::control(&fleet, &line);
                            if w.write_all(format!("{answer}\n").as_bytes()).await.is_err() {
                                break;
                            }
                        }
                    });
                }
            });
            eprintln!("meterlink-sim: control on {addr}");
        }
        let first = fleet.devices.first().map(|d| d.addr);
        let last = fleet.devices.last().map(|d| d.addr);
        eprintln!(
            "meterlink-sim: serving {} devices from {} to {}",
            fleet.devices.len(),
            first.map(|a| a.to_string()).unwrap_or_default(),
            last.map(|a| a.to_string()).unwrap_or_default()
        );
        let _ = tokio::signal::ctrl_c().await;
        for t in tasks {
            t.abort();
        }
        ExitCode::SUCCESS
    })
}
