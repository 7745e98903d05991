//! The collector's command line as an operator runs it: exit codes by what
//! failed, JSON logs, certificates with an end.

use std::path::Path;
use std::process::{Command, Output};

fn collector(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meterlink-collector"))
        .args(args)
        .env("RUST_LOG", "info")
        .output()
        .expect("meterlink-collector runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

#[test]
fn json_logs_and_certificates_with_an_end() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let out = collector(&[
        "--log-format",
        "json",
        "ca",
        "--dir",
        pki.to_str().unwrap(),
        "init",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = text(&out.stderr)
        .lines()
        .find(|l| l.contains("created a development certificate authority"))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no log line: {}", text(&out.stderr)));
    let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(v["level"], "INFO", "{v}");

    let out = collector(&[
        "ca",
        "--dir",
        pki.to_str().unwrap(),
        "issue",
        "site-1",
        "--out",
        dir.path().to_str().unwrap(),
        "--days",
        "30",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("valid until: "),
        "{}",
        text(&out.stdout)
    );

    let bad = collector(&["--log-format", "yaml", "ca", "init"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn exit_codes_name_what_failed() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("collector.toml");
    // A configuration that does not parse: 2.
    std::fs::write(&conf, "[grpc]\nlisten = \"nowhere\"\n").unwrap();
    let out = collector(&["check-config", "--config", conf.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("listen"),
        "{}",
        text(&out.stderr)
    );

    // A key others can read: 4.
    let key = dir.path().join("key.pem");
    std::fs::write(&key, "x").unwrap();
    std::fs::write(dir.path().join("cert.pem"), "x").unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    write_config(
        &conf,
        dir.path(),
        "127.0.0.1:0",
        &format!(
            "[tls]\nclient_ca = \"{0}/cert.pem\"\ncert = \"{0}/cert.pem\"\nkey = \"{0}/key.pem\"\n",
            dir.path().display()
        ),
    );
    let out = collector(&["check-config", "--config", conf.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("chmod 600"),
        "{}",
        text(&out.stderr)
    );

    // An address already taken: 5.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    write_config(
        &conf,
        dir.path(),
        &taken.local_addr().unwrap().to_string(),
        "",
    );
    let out = collector(&["serve", "--config", conf.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));

    // And a good one passes check-config.
    write_config(&conf, dir.path(), "127.0.0.1:0", "");
    let out = collector(&["check-config", "--config", conf.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(": ok: gRPC on"),
        "{}",
        text(&out.stdout)
    );
}

fn write_config(path: &Path, data: &Path, grpc: &str, extra: &str) {
    std::fs::write(
        path,
        format!(
            "data_dir = \"{}\"\n[grpc]\nlisten = \"{grpc}\"\n[http]\nlisten = \"127.0.0.1:0\"\n{extra}",
            data.join("data").display()
        ),
    )
    .unwrap();
}

/// What a deployment script does without an API token: an account, a join
/// token written to a file for the agent, the agent listed and disabled.
#[test]
fn accounts_tokens_and_agents_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("collector.toml");
    write_config(&conf, &dir.path().join("data"), "127.0.0.1:0", "");
    let c = conf.to_str().unwrap();
    let out = collector(&["token", "create", "--account", "acme", "--config", c]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no account \"acme\""),
        "{}",
        text(&out.stderr)
    );
    let out = collector(&[
        "account",
        "add",
        "acme",
        "--name",
        "Acme Ltd",
        "--auto-create-products",
        "--config",
        c,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "account acme (Acme Ltd)\n");
    let file = dir.path().join("join-token");
    let out = collector(&[
        "token",
        "create",
        "--account",
        "acme",
        "--agent-id",
        "site-1",
        "--ttl",
        "2h",
        "--out",
        file.to_str().unwrap(),
        "--config",
        c,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_string();
    assert!(
        token.starts_with("mlj_") && token.len() == 4 + 16 + 1 + 32 + 1 + 64,
        "{token}"
    );
    assert!(
        !text(&out.stderr).contains(&token),
        "the note repeats the token"
    );
    assert!(
        text(&out.stderr).contains("meterlink-agent enroll"),
        "{}",
        text(&out.stderr)
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), token);
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let out = collector(&["token", "list", "--config", c]);
    let listed = text(&out.stdout);
    assert!(listed.contains("\tacme\tsite-1\tvalid until "), "{listed}");
    assert!(!listed.contains(&token[21..53]), "a secret listed");
    let out = collector(&[
        "token",
        "create",
        "--account",
        "acme",
        "--ttl",
        "5s",
        "--config",
        c,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("from 1m to 30d"),
        "{}",
        text(&out.stderr)
    );
    let out = collector(&["agent", "disable", "nobody", "--config", c]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("agent \"nobody\" not found"),
        "{}",
        text(&out.stderr)
    );
}
