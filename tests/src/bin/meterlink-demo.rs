//! meterlink-demo: the whole system on one machine with embedded defaults.
//! A simulated fleet of Canon devices on loopback (real SNMP), the collector
//! (real gRPC with mutual TLS, real SQLite, a development CA made on first
//! start) and the agent daemon polling the fleet every 10 seconds.

use clap::Parser;
use meterlink_collector::config::Config;
use meterlink_collector::pki::Pki;
use meterlink_sim::{serve, Fleet, Recording, SimConfig};
use meterlink_tests::stack::{collector_toml, AgentToml};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "meterlink-demo",
    about = "Collector, agent and a simulated Canon fleet on loopback"
)]
struct Args {
    /// Where the collector's database, the CA and the agent's buffer live.
    #[arg(long, default_value = "data/demo")]
    data_dir: PathBuf,
    /// Simulated devices.
    #[arg(long, default_value_t = 20)]
    devices: usize,
    #[arg(long, default_value = "127.0.0.1:50051")]
    grpc: SocketAddr,
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// Meter-read schedule (cron, 5 or 6 fields).
    #[arg(long, default_value = "*/10 * * * * *")]
    schedule: String,
}

const FIXTURES: [&str; 3] = ["canon_iradv_c5560", "canon_lbp_jam", "canon_ir2630_service"];

fn main() {
    let a = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if let Err(e) = rt.block_on(run(a)) {
        eprintln!("meterlink-demo: {e}");
        std::process::exit(1);
    }
}

async fn run(a: Args) -> Result<(), String> {
    let data = std::path::absolute(&a.data_dir).map_err(|e| e.to_string())?;
    // The fleet: Canon fixtures cloned, counters advancing.
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut recs = Vec::new();
    for f in FIXTURES {
        let text = std::fs::read_to_string(fixtures.join(format!("{f}.snmprec")))
            .map_err(|e| format!("{f}: {e}"))?;
        recs.push(Arc::new(Recording::parse(f, &text).0));
    }
    let addrs: Vec<SocketAddr> = (1..=a.devices)
        .map(|i| format!("127.0.20.{i}:16161").parse().expect("addr"))
        .collect();
    let sim = SimConfig {
        pages_per_minute: 30.0,
        ..SimConfig::default()
    };
    let fleet = Arc::new(Fleet::new(sim, recs, addrs));
    let _sim = serve(fleet.clone()).await.map_err(|e| e.to_string())?;

    // The collector, with a development CA in data/demo/collector/pki.
    let cfg = Config::parse(
        "demo",
        &collector_toml(
            &data.join("collector"),
            &a.grpc.to_string(),
            &a.http.to_string(),
        ),
    )
    .map_err(|e| e.to_string())?;
    let collector = meterlink_collector::server::start(&cfg)
        .await
        .map_err(|e| e.to_string())?;
    let pki = Pki::ensure(&data.join("collector/pki"), "meterlink development CA")
        .map_err(|e| e.to_string())?;
    let certs = data.join("agent-certs");
    if !certs.join("agent.pem").exists() {
        pki.issue("demo-agent", false, &certs, "agent", None)
            .map_err(|e| e.to_string())?;
    }

    // The agent, configured like a real installation.
    let conf = data.join("agent.toml");
    let last = a.devices.min(254);
    let range = format!("127.0.20.1-{last}");
    let mut spec = AgentToml::new(
        "demo-agent",
        &data.join("agent"),
        collector.grpc_addr,
        &pki.ca_cert(),
        &certs.join("agent.pem"),
        &certs.join("agent-key.pem"),
        &[&range],
    );
    spec.meter = a.schedule.clone();
    std::fs::write(
        &conf,
        format!("# Written by meterlink-demo.\n{}", spec.render()),
    )
    .map_err(|e| e.to_string())?;
    let v = meterlink_agent::config::AgentConfig::load(&conf).map_err(|e| e.to_string())?;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let agent = tokio::spawn(meterlink_agent::daemon::run(v, rx));

    println!(
        "meterlink demo: {} simulated Canon devices on 127.0.20.1-{last}:16161",
        a.devices
    );
    println!(
        "  collector gRPC  {} (mutual TLS, CA {})",
        collector.grpc_addr,
        pki.ca_cert().display()
    );
    println!(
        "  REST API        http://{}/api/v1/products",
        collector.http_addr
    );
    let token_file = cfg
        .data_dir
        .join(meterlink_collector::server::OPERATOR_TOKEN_FILE);
    if token_file.exists() {
        println!(
            "  API token       {}  (curl -H \"Authorization: Bearer $(cat {})\" ...)",
            token_file.display(),
            token_file.display()
        );
    }
    println!(
        "  agent config    {}  (meterlink-agent status --config {})",
        conf.display(),
        conf.display()
    );
    println!("  store           {}", cfg.sqlite_path().display());
    println!("Readings arriving (Ctrl-C to stop):");
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut last_count = 0;
    loop {
        tokio::select! {
            _ = meterlink_agent::cli::shutdown_signal() => break,
            _ = tick.tick() => {
                let products = collector.store.products().await.map_err(|e| e.to_string())?;
                let values: usize = products.iter().map(|p| p.counters.len()).sum();
                let n = collector.store.observation_count("demo-agent").await.map_err(|e| e.to_string())?;
                if n != last_count {
                    last_count = n;
                    let sample = products.first().map(|p| format!("{} {} canon.101 = {}", p.serial, p.model.clone().unwrap_or_default(), p.counters.get("canon.101").copied().unwrap_or(0))).unwrap_or_default();
                    println!("  {n} observations filed, {} products, {values} current counter values; e.g. {sample}", products.len());
                }
            }
        }
    }
    let _ = stop.send(true);
    let _ = agent.await;
    collector.stop().await;
    Ok(())
}
