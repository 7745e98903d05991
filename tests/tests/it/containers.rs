//! The container images and the compose file in deploy/container: the
//! images build with podman (`deploy/container/build`), hold no shell, run
//! as an unprivileged user, and their programs run from the image's own
//! root with the image's configuration; the compose file hangs together
//! (one-shot account and join token before the agent, the token file and
//! the names the configurations use).
//!
//! Building needs root (debootstrap, podman), so it runs only with
//! METERLINK_TEST_CONTAINERS=1 (set by `.ci/run`). On this machine kind
//! `podman run` is refused (setrlimit); the test says so when it is, and runs
//! each program from the mounted image root with chroot instead.

use meterlink_tests::peers::have_tool;
use std::path::Path;
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn output(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn run(cmd: &mut Command) -> String {
    let (ok, text) = output(cmd);
    assert!(ok, "{cmd:?} failed:\n{text}");
    text
}

fn skip(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED containers: {why}");
}

/// compose.yaml as JSON (python3's yaml module reads it).
fn compose() -> serde_json::Value {
    let file = repo().join("deploy/container/compose.yaml");
    let text = run(Command::new("python3").args([
        "-c",
        "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        file.to_str().unwrap(),
    ]));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn the_compose_file_enrolls_its_agent_and_its_names_agree() {
    if !have_tool("python3", "compose file") {
        return;
    }
    let c = compose();
    let s = &c["services"];
    let image = |svc: &str| s[svc]["image"].as_str().unwrap_or_default().to_string();
    for svc in ["collector", "account", "join-token"] {
        assert_eq!(image(svc), "localhost/meterlink-collector:latest", "{svc}");
    }
    assert_eq!(image("agent"), "localhost/meterlink-agent:latest");
    assert_eq!(image("sim"), "localhost/meterlink-sim:latest");
    assert!(image("postgres").contains("postgres"));
    // The order of the one-shot steps.
    let cond = |svc: &str, on: &str| s[svc]["depends_on"][on]["condition"].clone();
    assert_eq!(cond("collector", "postgres"), "service_healthy");
    assert_eq!(
        cond("join-token", "account"),
        "service_completed_successfully"
    );
    assert_eq!(
        cond("agent", "join-token"),
        "service_completed_successfully"
    );
    let cmd = |svc: &str| -> Vec<String> {
        s[svc]["command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let after = |args: &[String], flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .map(|i| args[i + 1].clone())
            .unwrap_or_else(|| panic!("no {flag} in {args:?}"))
    };
    let account = cmd("account");
    let token = cmd("join-token");
    assert_eq!(&account[..3], ["account", "add", "demo"]);
    assert_eq!(&token[..2], ["token", "create"]);
    assert_eq!(after(&token, "--account"), "demo");
    // The token file the agent reads is on the volume both mount.
    let agent_toml =
        std::fs::read_to_string(repo().join("deploy/container/compose/agent.toml")).unwrap();
    let agent: toml::Table = agent_toml.parse().unwrap();
    let token_file = agent["collector"]["token_file"].as_str().unwrap();
    let out = after(&token, "--out");
    assert_eq!(out, token_file);
    let dir = Path::new(token_file).parent().unwrap().to_str().unwrap();
    let mounts = |svc: &str| -> Vec<String> {
        s[svc]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    assert!(mounts("join-token").contains(&format!("join:{dir}")));
    assert!(mounts("agent").contains(&format!("join:{dir}:ro")));
    assert_eq!(
        after(&token, "--agent-id"),
        agent["agent_id"].as_str().unwrap()
    );
    // The agent reaches the collector by a name its certificate carries,
    // and the simulated printers where the sim listens.
    let collector: toml::Table =
        std::fs::read_to_string(repo().join("deploy/container/compose/collector.toml"))
            .unwrap()
            .parse()
            .unwrap();
    let url = agent["collector"]["url"].as_str().unwrap();
    let host = url
        .trim_start_matches("https://")
        .split(':')
        .next()
        .unwrap();
    assert!(s[host].is_object(), "{host} is not a service");
    let names = collector["grpc"]["server_names"].as_array().unwrap();
    assert!(names.iter().any(|n| n.as_str() == Some(host)), "{names:?}");
    let sim_ip = s["sim"]["networks"]["meterlink"]["ipv4_address"]
        .as_str()
        .unwrap();
    let targets = agent["targets"][0]["addresses"].as_array().unwrap();
    assert!(targets
        .iter()
        .all(|a| a.as_str().unwrap().starts_with(&format!("{sim_ip}:"))));
    let pg = collector["store"]["postgres"].as_str().unwrap();
    assert!(pg.contains("@postgres/"), "{pg}");
    // Both configurations pass check-config.
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("agent.toml");
    std::fs::write(
        &a,
        agent_toml.replace("/var/lib", dir.path().to_str().unwrap()),
    )
    .unwrap();
    let v = meterlink_agent::config::AgentConfig::load(&a).unwrap();
    assert!(v.cfg.collector.token_file.is_some());
    let cfg = meterlink_collector::config::Config::parse(
        "collector.toml",
        &std::fs::read_to_string(repo().join("deploy/container/compose/collector.toml")).unwrap(),
    )
    .unwrap();
    meterlink_collector::server::check_config(&cfg).unwrap();
}

#[test]
fn images_build_without_a_shell_and_their_programs_run_from_the_image_root() {
    if std::env::var("METERLINK_TEST_CONTAINERS").is_err() {
        skip("set METERLINK_TEST_CONTAINERS=1 to build the images (root, podman, debootstrap; .ci/run does)");
        return;
    }
    for tool in ["podman", "debootstrap", "strip"] {
        if !have_tool(tool, "containers") {
            return;
        }
    }
    run(&mut Command::new(repo().join("deploy/container/build")));
    for (program, check) in [
        (
            "collector",
            vec!["check-config", "--config", "/etc/meterlink/collector.toml"],
        ),
        (
            "agent",
            vec!["check-config", "--config", "/etc/meterlink/agent.toml"],
        ),
        ("sim", vec!["--version"]),
    ] {
        let image = format!("localhost/meterlink-{program}:latest");
        let inspect = run(Command::new("podman").args([
            "image",
            "inspect",
            &image,
            "--format",
            "{{.Config.User}}|{{json .Config.Entrypoint}}",
        ]));
        assert_eq!(
            inspect.trim(),
            format!("10001:10001|[\"/usr/bin/meterlink-{program}\"]"),
            "{image}"
        );
        let root = run(Command::new("podman").args(["image", "mount", &image]));
        let root = Path::new(root.trim());
        let files = run(Command::new("find").arg(root).args(["-type", "f"]));
        let unmount = || {
            let _ = Command::new("podman")
                .args(["image", "unmount", &image])
                .output();
        };
        for shell in ["bin/sh", "usr/bin/sh", "bin/bash", "usr/bin/bash"] {
            if root.join(shell).exists() {
                unmount();
                panic!("{image} has a shell: {shell}");
            }
        }
        let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
        assert!(passwd.starts_with("meterlink:x:10001:10001:"), "{passwd}");
        // The program runs from the image's root, as its user, with only
        // what the image holds.
        let (ok, text) = output(
            Command::new("/usr/sbin/chroot")
                .arg("--userspec=10001:10001")
                .arg(root)
                .arg(format!("/usr/bin/meterlink-{program}"))
                .args(&check)
                .env_clear(),
        );
        let tried = Command::new("podman")
            .args(["run", "--rm", &image, "--version"])
            .output()
            .unwrap();
        unmount();
        assert!(ok, "{program} in {image}:\n{text}\nfiles:\n{files}");
        if tried.status.success() {
            let v = String::from_utf8_lossy(&tried.stdout);
            assert!(v.contains(env!("CARGO_PKG_VERSION")), "{v}");
        } else {
            skip(&format!(
                "podman run {image}: refused on this machine ({})",
                String::from_utf8_lossy(&tried.stderr).trim()
            ));
        }
    }
}
