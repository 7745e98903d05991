//! meterlink-demo: the whole system on one machine with embedded defaults.
//! A simulated fleet of Canon devices on loopback (real SNMP), the collector
//! (real gRPC with mutual TLS, real SQLite, a development CA made on first
//! start) and the agent daemon polling the fleet every 10 seconds. On its
//! first start it makes a customer company that takes the agent's devices
//! as products, with four months of daily readings behind them, an account
//! manager and an operator who log in to the web portal with the passwords
//! it prints (kept in data_dir/demo-passwords, 0600).

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
    let people = demo_customer(&collector.store, &fleet, &data).await?;
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
    println!("  web portal      http://{}/", collector.http_addr);
    for (who, email, password) in &people {
        println!("    {who:<18}{email}  password {password}");
    }
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

/// The demo's people: (who, e-mail, password).
type People = Vec<(&'static str, &'static str, String)>;

/// The demo customer, its people and the fleet's reading history, made on
/// the first start; later starts read the passwords back.
async fn demo_customer(
    store: &meterlink_collector::store::Store,
    fleet: &Fleet,
    data: &std::path::Path,
) -> Result<People, String> {
    use meterlink_collector::model::{Account, Organisation, Role, User};
    let kept = data.join("demo-passwords");
    if let Ok(text) = std::fs::read_to_string(&kept) {
        let mut people = People::new();
        for (line, (who, email)) in text.lines().zip(PEOPLE) {
            people.push((who, email, line.trim().to_string()));
        }
        return Ok(people);
    }
    let e = |e: meterlink_collector::store::StoreError| e.to_string();
    store
        .put_organisation(&Organisation {
            id: "demo".into(),
            name: "Demo Srl".into(),
            companies: Vec::new(),
        })
        .await
        .map_err(e)?;
    store
        .put_account(&Account {
            id: "demo-milano".into(),
            name: "Demo Srl, Milano".into(),
            billing_code: "100200".into(),
            service_code: "S-4711".into(),
            auto_create_products: true,
            time_zone: "Europe/Rome".into(),
            organisation: Some("demo".into()),
        })
        .await
        .map_err(e)?;
    for agent in ["demo-agent", "demo-history"] {
        store.agent_hello(agent, "demo", 0).await.map_err(e)?;
        store
            .set_agent_account(agent, Some("demo-milano"))
            .await
            .map_err(e)?;
    }
    // Four months of daily readings of the total counter, ending where the
    // simulated devices stand now.
    let total: meterlink_agent::snmp::Oid = "1.3.6.1.4.1.1602.1.11.1.3.1.4.101"
        .parse()
        .map_err(|_| "the total counter's OID".to_string())?;
    let now = meterlink_collector::store::now_ms();
    let mut seq = 0u64;
    for (i, d) in fleet.devices.iter().enumerate() {
        let (Some(serial), Some(value)) = (d.serial(), d.counter_value(fleet, &total)) else {
            continue;
        };
        let per_day = 150 + (i as u64 % 7) * 60;
        let batch: Vec<meterlink_proto::v1::Observation> = (1..=120u64)
            .rev()
            .map(|days| {
                seq += 1;
                meterlink_proto::v1::Observation {
                    seq,
                    taken_at_ms: now - days as i64 * 86_400_000,
                    device_address: d.addr.to_string(),
                    serial: serial.clone(),
                    body: Some(meterlink_proto::v1::observation::Body::Meter(
                        meterlink_proto::v1::MeterReading {
                            counters: vec![meterlink_proto::v1::CounterValue {
                                id: "canon.101".into(),
                                name: "Total 1".into(),
                                value: value.saturating_sub(days * per_day),
                                wraps_at_bits: 32,
                                ..Default::default()
                            }],
                        },
                    )),
                }
            })
            .collect();
        store.ingest("demo-history", &batch).await.map_err(e)?;
    }
    let mut people = People::new();
    let mut lines = String::new();
    for ((who, email), (id, first, last, role, account)) in PEOPLE.iter().zip([
        (
            "mia",
            "Mia",
            "Rossi",
            Role::AccountManager,
            Some("demo-milano"),
        ),
        ("luca", "Luca", "Bianchi", Role::Operator, None),
    ]) {
        let mut u = User::new(id, &format!("{first} {last}"), role, account);
        u.email = Some(email.to_string());
        u.first_name = first.into();
        u.last_name = last.into();
        store.put_user(&u).await.map_err(e)?;
        let password = new_password()?;
        let salt = meterlink_collector::token::random_bytes::<16>().map_err(|e| e.to_string())?;
        let phc = meterlink_collector::auth::password::hash(&password, &salt)
            .map_err(|e| e.to_string())?;
        store.set_password(id, &phc).await.map_err(e)?;
        lines.push_str(&password);
        lines.push('\n');
        people.push((who, email, password));
    }
    write_private(&kept, &lines)?;
    Ok(people)
}

const PEOPLE: [(&str, &str); 2] = [
    ("account manager", "mia@demo.example"),
    ("operator", "luca@demo.example"),
];

/// A password of 16 random letters and digits.
fn new_password() -> Result<String, String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let bytes = meterlink_collector::token::random_bytes::<16>().map_err(|e| e.to_string())?;
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect())
}

fn write_private(path: &std::path::Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}
