//! `probe` against real SNMP peers: Debian's snmpsim serving the project's
//! fixtures, and net-snmp's snmpd with a v3 user for every authentication and
//! privacy protocol.

use meterlink_agent::cli::{self, exit};
use meterlink_agent::snmp::engine::{Credential, CredentialSet, Engine, EngineConfig, SnmpError};
use meterlink_agent::snmp::usm::{AuthProtocol, PrivProtocol, UsmUser};
use meterlink_agent::snmp::{oid, Value};
use meterlink_tests::peers::{self, fixtures_dir, have_tool, SnmpdUser};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

fn fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "snmprec"))
        .collect();
    v.sort();
    v
}

async fn probe(args: &[&str]) -> (u8, String, String) {
    let mut argv = vec!["meterlink-agent".to_string(), "probe".to_string()];
    argv.extend(args.iter().map(|s| s.to_string()));
    cli::run(argv).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_reads_every_fixture_served_by_snmpsim() {
    if !have_tool("snmpsimd", "probe_reads_every_fixture_served_by_snmpsim") {
        return;
    }
    let files = fixtures();
    let sim = peers::start_snmpsim(&files).await.unwrap();
    let addr = sim.addr.to_string();
    for f in &files {
        let name = f.file_stem().unwrap().to_string_lossy().to_string();
        let (code, out, err) = probe(&[&addr, "--community", &name, "--json"]).await;
        let expected: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(fixtures_dir().join("expected").join(format!("{name}.json")))
                .unwrap(),
        )
        .unwrap();
        if expected.get("not_a_printer").is_some() {
            assert_eq!(code, exit::NOT_PRINTER, "{name}: {err}");
            assert!(err.contains("not a printer"), "{name}: {err}");
            continue;
        }
        assert_eq!(code, exit::OK, "{name}: {err}");
        let mut got: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(got["address"], addr);
        got["address"] = "fixture".into();
        assert_eq!(
            got, expected,
            "{name}: snmpsim read differs from the expected observation"
        );
    }
    // The human table carries the same facts.
    let (code, out, _) = probe(&[&addr, "--community", "canon_iradv_c5560"]).await;
    assert_eq!(code, exit::OK);
    assert!(
        out.contains("2KM01234") && out.contains("canon.101") && out.contains("184527"),
        "{out}"
    );
    assert!(out.contains("markerTonerAlmostEmpty"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_community_and_unreachable_fail_fast_and_clearly() {
    // Nothing listens on this port: a clean timeout, exit code 3.
    let nobody = peers::peer_endpoint();
    let started = std::time::Instant::now();
    let (code, _, err) = probe(&[
        &nobody.to_string(),
        "--community",
        "s3cret-community",
        "--timeout",
        "0.2",
        "--retries",
        "1",
    ])
    .await;
    assert_eq!(code, exit::UNREACHABLE, "{err}");
    assert!(
        err.contains(&format!("no answer from {}", nobody.ip())),
        "{err}"
    );
    assert!(err.contains("'v2c community'"), "{err}");
    assert!(!err.contains("s3cret"), "secret leaked: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // Bounded by timeout x attempts, never a hang.
    assert!(started.elapsed() < Duration::from_secs(5));
    let (code, _, err) = probe(&[
        "127.0.0.1:1",
        "--v3-user",
        "u",
        "--auth-proto",
        "SHA",
        "--auth-pass",
        "short",
    ])
    .await;
    assert_eq!(code, exit::USAGE, "{err}");
    assert!(err.contains("at least 8"), "{err}");
}

const AUTHS: [&str; 6] = ["MD5", "SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512"];
const PRIVS: [&str; 6] = ["DES", "AES", "AES192", "AES256", "AES192C", "AES256C"];

fn v3(name: &str, auth: &str, ap: &str, privacy: Option<(&str, &str)>) -> CredentialSet {
    let a: AuthProtocol = auth.parse().unwrap();
    let p = privacy.map(|(x, xp)| (x.parse::<PrivProtocol>().unwrap(), xp));
    CredentialSet {
        name: format!("v3 {name}"),
        credential: Credential::V3 {
            user: Arc::new(UsmUser::new(name, Some((a, ap)), p).unwrap()),
            context: String::new(),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_every_auth_and_privacy_protocol_against_net_snmp() {
    if !have_tool(
        "snmpd",
        "v3_every_auth_and_privacy_protocol_against_net_snmp",
    ) {
        return;
    }
    let mut users = Vec::new();
    for (i, a) in AUTHS.iter().enumerate() {
        users.push(SnmpdUser {
            name: format!("a{i}"),
            auth: a.to_string(),
            auth_pass: format!("auth-pass-{i}"),
            privacy: None,
        });
        for (j, p) in PRIVS.iter().enumerate() {
            users.push(SnmpdUser {
                name: format!("a{i}p{j}"),
                auth: a.to_string(),
                auth_pass: format!("auth-pass-{i}"),
                privacy: Some((p.to_string(), format!("priv-pass-{i}-{j}"))),
            });
        }
    }
    let snmpd = peers::start_snmpd(&users).await.unwrap();
    let engine = Engine::new(EngineConfig {
        timeout: Duration::from_millis(500),
        retries: 1,
        ..EngineConfig::default()
    })
    .await
    .unwrap();
    let descr = oid("1.3.6.1.2.1.1.1.0");
    let mut failures = Vec::new();
    let mut read = 0;
    for u in &users {
        let cred = v3(
            &u.name,
            &u.auth,
            &u.auth_pass,
            u.privacy.as_ref().map(|(p, pp)| (p.as_str(), pp.as_str())),
        );
        let dev = engine.device(snmpd.addr);
        let mut mem = dev.lock().await;
        match engine
            .get(snmpd.addr, &cred, &mut mem, std::slice::from_ref(&descr))
            .await
        {
            Ok(v) if v[0].value == Value::OctetString(b"meterlink test agent".to_vec()) => {
                read += 1
            }
            Ok(v) => failures.push(format!("{}: unexpected {v:?}", cred.name)),
            Err(e) => failures.push(format!(
                "{} ({} {:?}): {e}",
                cred.name,
                u.auth,
                u.privacy.as_ref().map(|p| &p.0)
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}\nsnmpd log:\n{}",
        failures.len(),
        users.len(),
        failures.join("\n"),
        snmpd.log()
    );
    assert_eq!(read, 42);

    // The CLI path with one combination: snmpd is not a printer, so the
    // read ends with exit code 5 after authenticating and reading.
    let addr = snmpd.addr.to_string();
    let (code, _, err) = probe(&[
        &addr,
        "--v3-user",
        "a5p5",
        "--auth-proto",
        "SHA-512",
        "--auth-pass",
        "auth-pass-5",
        "--priv-proto",
        "AES256C",
        "--priv-pass",
        "priv-pass-5-5",
    ])
    .await;
    assert_eq!(code, exit::NOT_PRINTER, "{err}");
    assert!(err.contains("meterlink test agent"), "{err}");

    // Wrong passphrases and users: a clear error naming the credential set, never the secret.
    let cases = [
        (
            vec![
                "--v3-user",
                "a3p1",
                "--auth-proto",
                "SHA-256",
                "--auth-pass",
                "wrong-auth-pass",
                "--priv-proto",
                "AES",
                "--priv-pass",
                "priv-pass-3-1",
            ],
            "wrong-auth-pass",
        ),
        (
            vec![
                "--v3-user",
                "a3p1",
                "--auth-proto",
                "SHA-256",
                "--auth-pass",
                "auth-pass-3",
                "--priv-proto",
                "AES",
                "--priv-pass",
                "wrong-priv-pass",
            ],
            "wrong-priv-pass",
        ),
        (
            vec![
                "--v3-user",
                "nobody-here",
                "--auth-proto",
                "SHA-256",
                "--auth-pass",
                "auth-pass-3",
            ],
            "auth-pass-3",
        ),
    ];
    for (flags, secret) in cases {
        let mut a = vec![addr.as_str(), "--timeout", "0.5", "--retries", "1"];
        a.extend(flags.iter().copied());
        let (code, _, err) = probe(&a).await;
        assert!(
            code == exit::AUTH || code == exit::UNREACHABLE,
            "{code} {err}"
        );
        assert!(err.contains("v3 user"), "{err}");
        assert!(!err.contains(secret), "secret in error: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    // A wrong authentication passphrase is recognised as such.
    let bad = v3("a3", "SHA-256", "wrong-auth-pass", None);
    let dev = engine.device(snmpd.addr);
    let mut mem = dev.lock().await;
    let e = engine
        .get(snmpd.addr, &bad, &mut mem, &[descr])
        .await
        .unwrap_err();
    assert!(matches!(e, SnmpError::Auth { .. }), "{e}");
    assert!(e.to_string().contains("authentication"), "{e}");
}
