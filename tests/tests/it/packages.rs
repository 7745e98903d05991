//! The Debian packages as an IT team installs them: lintian finds no
//! errors; `dpkg -i` makes the system users, the data directories and the
//! configuration files with their owners and modes and enables the units;
//! the collector runs as its unit's user with its unit's ExecStart line and
//! the installed configuration; `token create` and `enroll` work; the
//! agent's readings arrive in the collector's API; remove keeps the data and
//! purge deletes it.
//!
//! The packages come from `cargo deb` (target/debian; `.ci/run` builds
//! them). The test installs them on this machine, so it runs only with
//! METERLINK_TEST_DEBS=1 (set by `.ci/run`), as root.

use meterlink_sim::{serve, Fleet, Recording, SimConfig};
use meterlink_tests::http::{get, Api};
use meterlink_tests::peers::{fixtures_dir, have_tool, until};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;

fn skip(why: &str) {
    use std::io::Write;
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(
        !ci || std::env::var("METERLINK_TEST_DEBS").is_err(),
        "{why}"
    );
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED debian_packages: {why}");
}

fn debs() -> Option<(PathBuf, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debian");
    let find = |name: &str| {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("{name}_")) && n.ends_with(".deb"))
            })
            .collect();
        found.sort();
        found.pop()
    };
    Some((find("meterlink-agent")?, find("meterlink-collector")?))
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

/// The installed unit's ExecStart, User and WorkingDirectory.
fn unit(program: &str) -> (Vec<String>, String, String) {
    let path = ["/lib/systemd/system", "/usr/lib/systemd/system"]
        .iter()
        .map(|d| Path::new(d).join(format!("{program}.service")))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{program}.service not installed"));
    let text = std::fs::read_to_string(&path).unwrap();
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key} in {}", path.display()))
            .to_string()
    };
    let exec = value("ExecStart")
        .split_whitespace()
        .map(String::from)
        .collect();
    (exec, value("User"), value("WorkingDirectory"))
}

/// Runs `argv` as `user` (its groups too) in `dir`, as systemd would.
fn as_user(user: &str, dir: &str, argv: &[String]) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        &format!("--reuid={user}"),
        &format!("--regid={user}"),
        "--init-groups",
        "--",
    ])
    .args(argv)
    .current_dir(dir)
    .env_clear()
    .env("PATH", "/usr/bin:/bin")
    .env("RUST_LOG", "info");
    c
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mode_owner(path: &str) -> (u32, String) {
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let group = run(Command::new("stat").args(["-c", "%G", path]));
    (m.permissions().mode() & 0o7777, group.trim().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debian_packages_install_run_enroll_and_purge() {
    let Some((agent_deb, collector_deb)) = debs() else {
        skip("no target/debian/*.deb: build them with `cargo deb -p meterlink-agent` and `-p meterlink-collector`");
        return;
    };
    if !have_tool("lintian", "debian_packages") {
        return;
    }
    for deb in [&agent_deb, &collector_deb] {
        let out = Command::new("lintian")
            .args(["--fail-on", "error", "--no-tag-display-limit"])
            .arg(deb)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "lintian {}:\n{text}", deb.display());
        eprintln!(
            "lintian {}: {} warnings",
            deb.display(),
            text.matches("\nW: ").count() + usize::from(text.starts_with("W: "))
        );
    }
    if std::env::var("METERLINK_TEST_DEBS").is_err() {
        skip("set METERLINK_TEST_DEBS=1 to install the packages on this machine (.ci/run does)");
        return;
    }
    if run(Command::new("id").arg("-u")).trim() != "0" {
        skip("installing packages needs root");
        return;
    }
    // A clean start: nothing of an earlier run.
    let _ = Command::new("dpkg")
        .args(["--purge", "meterlink-agent", "meterlink-collector"])
        .output();
    run(Command::new("dpkg")
        .arg("-i")
        .arg(&collector_deb)
        .arg(&agent_deb));

    // What dpkg made.
    for (program, conf) in [
        ("meterlink-agent", "/etc/meterlink/agent.toml"),
        ("meterlink-collector", "/etc/meterlink/collector.toml"),
    ] {
        run(Command::new("getent").args(["passwd", program]));
        assert_eq!(
            mode_owner(&format!("/var/lib/{program}")),
            (0o700, program.to_string())
        );
        assert_eq!(mode_owner(conf), (0o640, program.to_string()));
        let wants = format!("/etc/systemd/system/multi-user.target.wants/{program}.service");
        assert!(
            Path::new(&wants).exists(),
            "{program} not enabled: no {wants}"
        );
        let conffiles = run(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", program]));
        assert!(
            conffiles.contains(conf),
            "{conf} is not a conffile: {conffiles}"
        );
    }

    // The collector as its unit runs it, on the installed configuration.
    let (exec, user, dir) = unit("meterlink-collector");
    assert_eq!(exec[0], "/usr/bin/meterlink-collector");
    let logs = tempfile::tempdir().unwrap();
    let log = |name: &str| std::fs::File::create(logs.path().join(name)).unwrap();
    let collector = Killed(
        as_user(&user, &dir, &exec)
            .stdout(log("collector.out"))
            .stderr(log("collector.log"))
            .spawn()
            .unwrap(),
    );
    let http: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();
    until(
        Duration::from_secs(30),
        "the installed collector to answer",
        || async {
            tokio::net::TcpStream::connect(http).await.is_ok()
                && get(http, "/readyz").await.status == 200
        },
    )
    .await;
    let api = Api::operator(http, Path::new("/var/lib/meterlink-collector"));
    let r = api
        .send(
            "PUT",
            "/api/v1/accounts/acme",
            json!({"id": "acme", "name": "Acme", "billing_code": "B1", "service_code": "S1", "auto_create_products": true}),
        )
        .await;
    assert!(r.status < 300, "{}", r.body);
    let token = run(&mut as_user(
        &user,
        &dir,
        &[
            "/usr/bin/meterlink-collector",
            "token",
            "create",
            "--account",
            "acme",
            "--agent-id",
            "lan-1",
            "--ttl",
            "1h",
            "--config",
            "/etc/meterlink/collector.toml",
        ]
        .map(String::from),
    ));
    let token = token
        .lines()
        .find(|l| l.starts_with("mlj_"))
        .unwrap_or_else(|| panic!("no token in {token}"))
        .to_string();

    // The IT team points the agent at the collector and at its printers.
    let text = std::fs::read_to_string(fixtures_dir().join("canon_iradv_c5560.snmprec")).unwrap();
    let (rec, _) = Recording::parse("canon", &text);
    let addrs = (1..=3)
        .map(|i| format!("127.59.0.{i}:16161").parse().unwrap())
        .collect();
    let fleet = Arc::new(Fleet::new(SimConfig::default(), vec![Arc::new(rec)], addrs));
    let _sim = serve(fleet).await.unwrap();
    std::fs::write(
        "/etc/meterlink/agent.toml",
        "agent_id = \"lan-1\"\ndata_dir = \"/var/lib/meterlink-agent\"\n\
         [collector]\nurl = \"https://localhost:50051\"\n\
         [[credentials]]\nname = \"office\"\nversion = \"2c\"\ncommunity = \"public\"\n\
         [[targets]]\naddresses = [\"127.59.0.1-3\"]\nport = 16161\ncredentials = [\"office\"]\n\
         [schedule]\ntimezone = \"UTC\"\nmeter = \"*/2 * * * * *\"\n",
    )
    .unwrap();
    assert_eq!(
        mode_owner("/etc/meterlink/agent.toml").0,
        0o640,
        "an edit keeps the mode"
    );
    let (exec, user, dir) = unit("meterlink-agent");
    let enrolled = run(&mut as_user(
        &user,
        &dir,
        &[
            "/usr/bin/meterlink-agent",
            "enroll",
            "--config",
            "/etc/meterlink/agent.toml",
            "--token",
            &token,
        ]
        .map(String::from),
    ));
    assert!(enrolled.contains("enrolled as lan-1"), "{enrolled}");
    assert_eq!(
        mode_owner("/var/lib/meterlink-agent/identity/agent.pem"),
        (0o600, "meterlink-agent".to_string())
    );
    let agent = Killed(
        as_user(&user, &dir, &exec)
            .stdout(log("agent.out"))
            .stderr(log("agent.log"))
            .env("NO_COLOR", "1")
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let p = api.get("/api/v1/products?account=acme").await.json();
        let serials: Vec<String> = p["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|i| i["serial"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let mut arrived = serials.len() == 3;
        for s in &serials {
            let r = api
                .get(&format!("/api/v1/products/{s}/readings"))
                .await
                .json();
            arrived &= r["readings"]
                .as_array()
                .is_some_and(|r| r.iter().any(|x| x["counter"] == "canon.101"));
        }
        if arrived {
            break;
        }
        if std::time::Instant::now() > deadline {
            let read = |n: &str| std::fs::read_to_string(logs.path().join(n)).unwrap_or_default();
            panic!(
                "no readings in the API: {p}\nagent:\n{}\ncollector:\n{}",
                read("agent.log"),
                read("collector.log")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(agent);
    drop(collector);

    // Remove keeps the data; purge deletes it and the configuration.
    run(Command::new("dpkg").args(["--remove", "meterlink-agent", "meterlink-collector"]));
    assert!(Path::new("/var/lib/meterlink-collector/meterlink.db").exists());
    assert!(Path::new("/var/lib/meterlink-agent/identity/agent.pem").exists());
    run(Command::new("dpkg").args(["--purge", "meterlink-agent", "meterlink-collector"]));
    for gone in [
        "/var/lib/meterlink-collector",
        "/var/lib/meterlink-agent",
        "/etc/meterlink/agent.toml",
        "/etc/meterlink/collector.toml",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} left after purge");
    }
}
