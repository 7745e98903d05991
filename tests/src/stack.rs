//! Configuration files for a collector and an agent on loopback, written as
//! an operator would write them; shared by the tests, the demo and the bench.

use std::fmt::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// collector.toml with the embedded defaults (SQLite, development CA).
pub fn collector_toml(data_dir: &Path, grpc: &str, http: &str) -> String {
    format!(
        "data_dir = \"{}\"\n[grpc]\nlisten = \"{grpc}\"\n[http]\nlisten = \"{http}\"\n",
        data_dir.display()
    )
}

/// agent.toml for one SNMPv2c target group.
#[derive(Debug, Clone)]
pub struct AgentToml {
    pub agent_id: String,
    pub data_dir: PathBuf,
    pub grpc: SocketAddr,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Address expressions, as in `[[targets]] addresses`.
    pub addresses: Vec<String>,
    pub port: u16,
    /// Meter-read schedule; the default never fires in a test's lifetime.
    pub meter: String,
    pub batch_max_count: Option<usize>,
    pub max_bytes: Option<u64>,
    /// (timeout seconds, retries, concurrency)
    pub engine: Option<(f64, u32, usize)>,
    /// A join token for `[collector] token`.
    pub token: Option<String>,
    /// `[admin] listen`: the agent's metrics port.
    pub admin: Option<SocketAddr>,
}

impl AgentToml {
    pub fn new(
        agent_id: &str,
        data_dir: &Path,
        grpc: SocketAddr,
        ca: &Path,
        cert: &Path,
        key: &Path,
        addresses: &[&str],
    ) -> AgentToml {
        AgentToml {
            agent_id: agent_id.into(),
            data_dir: data_dir.into(),
            grpc,
            ca: ca.into(),
            cert: cert.into(),
            key: key.into(),
            addresses: addresses.iter().map(|s| s.to_string()).collect(),
            port: 16161,
            meter: "0 0 1 1 *".into(),
            batch_max_count: None,
            max_bytes: None,
            engine: None,
            token: None,
            admin: None,
        }
    }

    /// An agent.toml without certificate files: the agent enrolls, and
    /// keeps its certificate in data_dir/identity.
    pub fn enrolling(
        agent_id: &str,
        data_dir: &Path,
        grpc: SocketAddr,
        addresses: &[&str],
    ) -> AgentToml {
        let none = Path::new("");
        AgentToml::new(agent_id, data_dir, grpc, none, none, none, addresses)
    }

    pub fn render(&self) -> String {
        let mut s = format!(
            "agent_id = \"{}\"\ndata_dir = \"{}\"\n[collector]\nurl = \"https://{}\"\nserver_name = \"localhost\"\n",
            self.agent_id,
            self.data_dir.display(),
            self.grpc,
        );
        if !self.cert.as_os_str().is_empty() {
            let _ = writeln!(
                s,
                "ca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"",
                self.ca.display(),
                self.cert.display(),
                self.key.display()
            );
        }
        if let Some(t) = &self.token {
            let _ = writeln!(s, "token = \"{t}\"");
        }
        if let Some(n) = self.batch_max_count {
            let _ = writeln!(s, "batch_max_count = {n}");
        }
        if let Some(a) = self.admin {
            let _ = writeln!(s, "[admin]\nlisten = \"{a}\"");
        }
        if let Some(b) = self.max_bytes {
            let _ = writeln!(s, "[buffer]\nmax_bytes = {b}");
        }
        if let Some((timeout, retries, concurrency)) = self.engine {
            let _ = writeln!(
                s,
                "[engine]\ntimeout = {timeout:?}\nretries = {retries}\nconcurrency = {concurrency}"
            );
        }
        let addrs: Vec<String> = self.addresses.iter().map(|a| format!("{a:?}")).collect();
        let _ = write!(
            s,
            "[[credentials]]\nname = \"office\"\nversion = \"2c\"\ncommunity = \"public\"\n\
             [[targets]]\naddresses = [{}]\nport = {}\ncredentials = [\"office\"]\n\
             [schedule]\ntimezone = \"UTC\"\nmeter = \"{}\"\n",
            addrs.join(", "),
            self.port,
            self.meter
        );
        s
    }
}

/// A collector on loopback with the embedded defaults (SQLite, a development
/// CA in `dir/pki`) and a client certificate for one agent.
pub struct LocalCollector {
    pub config: meterlink_collector::config::Config,
    pub running: meterlink_collector::server::Running,
    pub pki: meterlink_collector::pki::Pki,
    pub agent_cert: meterlink_collector::pki::Issued,
}

impl LocalCollector {
    /// The API as the operator the collector's first start created.
    pub fn operator(&self) -> crate::http::Api {
        crate::http::Api::operator(self.running.http_addr, &self.config.data_dir)
    }
}

/// Starts a collector with its data in `dir` (`extra_toml` appended to its
/// collector.toml) and issues `agent_id` a certificate into `certs`.
///
/// Its clock rules run once as it starts (before it serves, so before the
/// test files anything) and then once a day, unless `extra_toml` has a
/// `[requests]` table: the tests that use it file observations at fixed
/// past times, and the clock's rules judge them against the wall clock, so
/// a tick in the middle of a slow run would open "device silent" and
/// "meter due" requests the test did not ask for.
pub async fn start_collector(
    dir: &Path,
    extra_toml: &str,
    agent_id: &str,
    certs: &Path,
) -> LocalCollector {
    let clock = if extra_toml.contains("[requests]") {
        ""
    } else {
        "[requests]\ntick_secs = 86400\n"
    };
    let text = format!(
        "{}{extra_toml}\n{clock}",
        collector_toml(dir, "127.0.0.1:0", "127.0.0.1:0")
    );
    let config = meterlink_collector::config::Config::parse("collector.toml", &text)
        .expect("collector config");
    let running = meterlink_collector::server::start(&config)
        .await
        .expect("collector starts");
    let pki = meterlink_collector::pki::Pki::ensure(&dir.join("pki"), "meterlink development CA")
        .expect("development CA");
    let agent_cert = pki
        .issue(agent_id, false, certs, "agent", None)
        .expect("agent certificate");
    LocalCollector {
        config,
        running,
        pki,
        agent_cert,
    }
}

/// A collector's configuration in `work/collector` (embedded defaults) on a
/// gRPC port reserved now and listened on when it starts, so that it can
/// stop and start again on the same address; its CA, and a certificate for
/// `agent_id` in `work/certs`.
pub fn collector_on_fixed_port(
    work: &Path,
    agent_id: &str,
) -> (
    meterlink_collector::config::Config,
    meterlink_collector::pki::Pki,
    meterlink_collector::pki::Issued,
) {
    let grpc = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let cdir = work.join("collector");
    let cfg = meterlink_collector::config::Config::parse(
        "collector.toml",
        &collector_toml(&cdir, &grpc.to_string(), "127.0.0.1:0"),
    )
    .expect("collector config");
    let pki = meterlink_collector::pki::Pki::ensure(&cdir.join("pki"), "meterlink development CA")
        .expect("development CA");
    let cert = pki
        .issue(agent_id, false, &work.join("certs"), "agent", None)
        .expect("agent certificate");
    (cfg, pki, cert)
}

/// The SQLite database of a collector configured by `cfg`, opened read-only
/// beside it, for a test to check what was filed.
pub async fn read_only_database(cfg: &meterlink_collector::config::Config) -> sqlx::SqlitePool {
    sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(cfg.sqlite_path())
                .read_only(true),
        )
        .await
        .expect("open the collector's database")
}

/// Runs the agent daemon of `spec` (written to `conf`) with a schedule that
/// does not fire until its buffer has drained to the collector, then checks
/// the buffer is empty and returns its next sequence number: every seq below
/// it was assigned, so a test can check each one was filed.
pub async fn drain_agent(spec: &mut AgentToml, conf: &Path) -> u64 {
    use meterlink_agent::buffer::{Buffer, SledBuffer};
    spec.meter = "0 0 1 1 *".into();
    std::fs::write(conf, spec.render()).expect("write agent.toml");
    let v = meterlink_agent::config::AgentConfig::load(conf).expect("agent config");
    let buffer_dir = v.cfg.data_dir.join("buffer");
    let (stop, rx) = tokio::sync::watch::channel(false);
    let daemon = tokio::spawn(meterlink_agent::daemon::run(v, rx));
    // Bounded by progress rather than by one fixed time: a busy machine
    // files more slowly, but a drain that stops moving for 30 s fails.
    let status = spec.data_dir.join("status.json");
    let backlog = || -> Option<(u64, bool)> {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&status).ok()?).ok()?;
        Some((v["backlog_count"].as_u64()?, v["connection"] == "connected"))
    };
    let (started, mut least, mut moved_at) = (Instant::now(), u64::MAX, Instant::now());
    loop {
        match backlog() {
            Some((0, true)) => break,
            Some((n, _)) if n < least => (least, moved_at) = (n, Instant::now()),
            _ => {}
        }
        assert!(
            moved_at.elapsed() < Duration::from_secs(30),
            "the buffer stopped draining: {least} observations left for 30 s"
        );
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the buffer still draining after 10 minutes: {least} observations left"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(true).expect("stop");
    daemon.await.expect("join").expect("daemon");
    let (buf, _) = SledBuffer::open(&buffer_dir, u64::MAX).expect("buffer");
    assert_eq!(buf.stats().count, 0, "buffer drained");
    buf.stats().next_seq
}
