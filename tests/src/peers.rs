//! Real SNMP peers for tests: Debian's snmpsim and net-snmp's snmpd, started
//! on loopback ports and stopped when dropped. Readiness is checked by
//! asking them over SNMP, never by sleeping.

use meterlink_agent::snmp::engine::{Credential, CredentialSet, Engine, EngineConfig, Secret};
use meterlink_agent::snmp::{oid, Version};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Whether a missing tool must fail the test (CI installs every peer) or
/// only skip it with a line that says so.
pub fn require_tools() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Returns true if `tool` is on PATH; otherwise prints a skip line (or panics in CI).
pub fn have_tool(tool: &str, test: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    if !found {
        if require_tools() {
            panic!("{test}: {tool} is not installed; .ci/run installs it");
        }
        skip(
            test,
            &format!("{tool} not installed (.ci/run installs the Debian packages)"),
        );
    }
    found
}

/// Whether python3 can import `module` (a PyPI peer such as aiosmtpd);
/// otherwise the test is skipped with a line that says so, or fails in CI.
pub fn have_python_module(module: &str, test: &str) -> bool {
    let found = std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if require_tools() {
            panic!("{test}: the Python module {module} is missing; .ci/run installs it");
        }
        skip(test, &format!("pip install {module} (.ci/run installs it)"));
    }
    found
}

/// Says that a test is skipped and why, on the real stderr (the test
/// harness's capture would hide an ordinary eprintln of a passing test).
pub fn skip(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {why}");
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
/// A loopback UDP endpoint of its own for a peer: an address in
/// 127.55.0.0/16 on a port below the kernel's ephemeral range, so that no
/// other test's ephemeral socket can take it between this choice and the
/// peer's bind (as with a port picked by binding port 0 and releasing it).
pub fn peer_endpoint() -> SocketAddr {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    assert!(n < 250 * 250, "out of peer endpoints");
    SocketAddr::from(([127, 55, (n / 250) as u8, (n % 250 + 1) as u8], 16161))
}

pub fn community(c: &str) -> CredentialSet {
    CredentialSet {
        name: format!("community {c}"),
        credential: Credential::Community {
            version: Version::V2c,
            community: Secret(c.to_string()),
        },
    }
}

/// Waits until `addr` answers a GET of sysDescr.0 with `cred`, for at most `limit`.
pub async fn wait_ready(
    addr: SocketAddr,
    cred: &CredentialSet,
    limit: Duration,
) -> Result<(), String> {
    let engine = Engine::new(EngineConfig {
        timeout: Duration::from_millis(200),
        retries: 0,
        ..EngineConfig::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + limit;
    let dev = engine.device(addr);
    loop {
        let mut mem = dev.lock().await;
        match engine
            .get(addr, cred, &mut mem, &[oid("1.3.6.1.2.1.1.1.0")])
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                return Err(format!("{addr} never became ready: {e}"))
            }
            Err(_) => {}
        }
    }
}

/// A running peer process, killed on drop.
pub struct Peer {
    pub addr: SocketAddr,
    child: Child,
    pub dir: tempfile::TempDir,
    log: PathBuf,
}

impl Peer {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn world_readable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777));
}

/// Starts Debian's snmpsimd serving copies of `recordings` (community = file
/// stem). Root must hand the files to an unprivileged user, so they are
/// copied into a temporary directory that user can read.
pub async fn start_snmpsim(recordings: &[PathBuf]) -> Result<Peer, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let data = dir.path().join("data");
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&cache).map_err(|e| e.to_string())?;
    world_readable(dir.path());
    world_readable(&data);
    world_readable(&cache);
    let mut first = None;
    for r in recordings {
        let name = r.file_name().ok_or("recording without a file name")?;
        std::fs::copy(r, data.join(name)).map_err(|e| format!("copy {}: {e}", r.display()))?;
        first.get_or_insert_with(|| r.file_stem().unwrap().to_string_lossy().to_string());
    }
    let addr = peer_endpoint();
    let log = dir.path().join("snmpsim.log");
    let mut cmd = Command::new("snmpsimd");
    cmd.arg(format!("--data-dir={}", data.display()))
        .arg(format!("--cache-dir={}", cache.display()))
        .arg(format!("--agent-udpv4-endpoint={addr}"));
    if running_as_root() {
        cmd.arg("--process-user=nobody")
            .arg("--process-group=nogroup");
    }
    let child = cmd
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("cannot start snmpsimd: {e}"))?;
    let peer = Peer {
        addr,
        child,
        dir,
        log,
    };
    let c = community(first.as_deref().unwrap_or("public"));
    wait_ready(addr, &c, Duration::from_secs(60))
        .await
        .map_err(|e| format!("{e}\nsnmpsimd log:\n{}", peer.log()))?;
    Ok(peer)
}

fn running_as_root() -> bool {
    // The effective uid, read from /proc: no libc call needed.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// A v3 user for snmpd: name, auth protocol and passphrase, privacy.
pub struct SnmpdUser {
    pub name: String,
    pub auth: String,
    pub auth_pass: String,
    pub privacy: Option<(String, String)>,
}

/// Starts net-snmp's snmpd on a loopback port with community `public` and
/// the given v3 users, using only the configuration written here.
pub async fn start_snmpd(users: &[SnmpdUser]) -> Result<Peer, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let addr = peer_endpoint();
    let mut conf = format!(
        "agentAddress udp:{addr}\nrocommunity public 127.0.0.0/8\nsysDescr meterlink test agent\n"
    );
    for u in users {
        match &u.privacy {
            Some((p, pp)) => conf.push_str(&format!(
                "createUser {} {} \"{}\" {} \"{}\"\nrouser {} authpriv\n",
                u.name, u.auth, u.auth_pass, p, pp, u.name
            )),
            None => conf.push_str(&format!(
                "createUser {} {} \"{}\"\nrouser {} auth\n",
                u.name, u.auth, u.auth_pass, u.name
            )),
        }
    }
    let conf_path = dir.path().join("snmpd.conf");
    std::fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
    let persist = dir.path().join("persist");
    std::fs::create_dir_all(&persist).map_err(|e| e.to_string())?;
    let log = dir.path().join("snmpd.log");
    let child = Command::new("snmpd")
        .arg("-f")
        .arg("-Lf")
        .arg(&log)
        .arg("-C")
        .arg("-c")
        .arg(&conf_path)
        .arg("-p")
        .arg(dir.path().join("snmpd.pid"))
        .env("SNMP_PERSISTENT_DIR", &persist)
        .env("MIBS", "")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start snmpd: {e}"))?;
    let peer = Peer {
        addr,
        child,
        dir,
        log,
    };
    wait_ready(addr, &community("public"), Duration::from_secs(30))
        .await
        .map_err(|e| format!("{e}\nsnmpd log:\n{}", peer.log()))?;
    Ok(peer)
}

/// The project's own fixture recordings.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The shared conformance recordings, when present beside the checkout.
pub fn shared_recordings() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/recordings");
    p.is_dir().then(|| p.canonicalize().unwrap_or(p))
}

/// Waits for `cond`, checked every 100 ms, for at most `limit`; panics naming
/// `what` when it does not come true.
pub async fn until<F, Fut>(limit: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
