//! What an IT team installs: the systemd units in deploy/systemd (verified
//! and rated by systemd-analyze) and the example configurations in
//! deploy/examples (accepted by each program's `check-config`).

use meterlink_collector::config::Config;
use meterlink_collector::pki::Pki;
use meterlink_tests::peers::have_tool;
use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// The exposure `systemd-analyze security` gives a unit, 0 (best) to 10.
fn exposure(unit: &Path) -> f64 {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes"])
        .arg(unit)
        .output()
        .expect("systemd-analyze runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    line.rsplit(':')
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unreadable exposure line {line:?}"))
}

#[test]
fn systemd_units_verify_and_rate_ok() {
    if !have_tool("systemd-analyze", "systemd_units_verify_and_rate_ok") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for program in ["meterlink-agent", "meterlink-collector"] {
        let unit = deploy_dir().join(format!("systemd/{program}.service"));
        let text = std::fs::read_to_string(&unit).unwrap();
        for needed in [
            format!("User={program}"),
            format!("StateDirectory={program}"),
            "ConfigurationDirectory=meterlink".to_string(),
            "CapabilityBoundingSet=\n".to_string(),
            "ProtectSystem=strict".to_string(),
            "ProtectHome=yes".to_string(),
            "PrivateTmp=yes".to_string(),
            "NoNewPrivileges=yes".to_string(),
            "RestrictAddressFamilies=".to_string(),
            "SystemCallFilter=@system-service".to_string(),
        ] {
            assert!(text.contains(&needed), "{program}.service lacks {needed:?}");
        }
        // verify checks that ExecStart names an executable; the package
        // installs the program at /usr/bin, which this machine need not have.
        let exe = std::env::current_exe().unwrap();
        let here = tmp.path().join(format!("{program}.service"));
        std::fs::write(
            &here,
            text.replace(&format!("/usr/bin/{program}"), exe.to_str().unwrap()),
        )
        .unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&here)
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && said.trim().is_empty(),
            "{program}.service: systemd-analyze verify: {said}"
        );
        let level = exposure(&unit);
        assert!(
            level <= 2.0,
            "{program}.service: exposure {level} (systemd-analyze security), want 2.0 or lower"
        );
    }
}

#[tokio::test]
async fn example_configurations_pass_check_config() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // The agent's example, with its data_dir here: not enrolled yet.
    let example = std::fs::read_to_string(deploy_dir().join("examples/agent.toml"))
        .unwrap()
        .replace("/var/lib/meterlink-agent", dir.to_str().unwrap());
    let agent_toml = dir.join("agent.toml");
    let check = |text: String| {
        let agent_toml = agent_toml.clone();
        async move {
            std::fs::write(&agent_toml, text).unwrap();
            meterlink_agent::cli::run(
                [
                    "meterlink-agent",
                    "check-config",
                    "--config",
                    agent_toml.to_str().unwrap(),
                ]
                .map(String::from),
            )
            .await
        }
    };
    let (code, out, err) = check(example.clone()).await;
    assert_eq!(code, 0, "agent check-config: {err}");
    assert!(
        out.contains(": ok (2 credential sets, 1 target groups")
            && out.contains("not enrolled yet"),
        "{out}"
    );
    // With the certificate files it names instead, made as its comment says
    // (`meterlink-collector ca issue`).
    let pki = Pki::ensure(&dir.join("pki"), "test CA").unwrap();
    pki.issue("site-milano-1", false, dir, "site-milano-1", None)
        .unwrap();
    std::fs::copy(pki.ca_cert(), dir.join("ca.pem")).unwrap();
    let files = example
        .replace("# ca = \"/etc/meterlink", "ca = \"/etc/meterlink")
        .replace("# cert = \"/etc/meterlink", "cert = \"/etc/meterlink")
        .replace("# key = \"/etc/meterlink", "key = \"/etc/meterlink")
        .replace("/etc/meterlink", dir.to_str().unwrap());
    let (code, out, err) = check(files).await;
    assert_eq!(code, 0, "agent check-config: {err}");
    assert!(out.contains("certificate files"), "{out}");

    // The collector's example, with its data_dir here: nothing else to make.
    let collector = std::fs::read_to_string(deploy_dir().join("examples/collector.toml"))
        .unwrap()
        .replace("/var/lib/meterlink-collector", dir.to_str().unwrap());
    let collector_toml = dir.join("collector.toml");
    std::fs::write(&collector_toml, collector).unwrap();
    let cfg = Config::load(&collector_toml).unwrap();
    let ok = meterlink_collector::server::check_config(&cfg).unwrap();
    assert!(ok.starts_with("ok: gRPC on 0.0.0.0:50051"), "{ok}");
    assert!(
        !dir.join("pki/collector.pem").exists(),
        "check-config made files"
    );

    // A mistake is named with its key.
    std::fs::write(&collector_toml, "[grpc]\nlisten = \"nowhere\"\n").unwrap();
    let e = Config::load(&collector_toml).unwrap_err().to_string();
    assert!(e.contains("listen") || e.contains("grpc"), "{e}");
}
