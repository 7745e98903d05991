//! Enrollment over real TLS: a join token made through the API, the agent
//! making its key and enrolling, certificates of a minute renewed while
//! observations stream (once with the collector down in the renewal
//! window), an operator disabling the agent, re-enrollment retiring the old
//! certificate, and every way a token or a CSR is refused.

use meterlink_agent::config::AgentConfig;
use meterlink_agent::identity::{self, Material, Reach, Source};
use meterlink_collector::server::Running;
use meterlink_proto::v1::collector_client::CollectorClient;
use meterlink_proto::v1::{agent_message, AgentMessage, EnrollRequest, Hello};
use meterlink_sim::{serve, Fleet, Recording, SimConfig};
use meterlink_tests::http::Api;
use meterlink_tests::peers::{fixtures_dir, have_tool, until};
use meterlink_tests::stack::{collector_toml, drain_agent, AgentToml};
use serde_json::json;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A collector on a fixed address (so that it can be restarted where the
/// agent looks for it), with the development CA and `extra` config.
async fn collector(dir: &Path, grpc: &str, extra: &str) -> Running {
    let text = format!("{}{extra}", collector_toml(dir, grpc, "127.0.0.1:0"));
    let cfg = meterlink_collector::config::Config::parse("collector.toml", &text).unwrap();
    meterlink_collector::server::start(&cfg).await.unwrap()
}

async fn simulator(net: &str, n: u8) -> Vec<tokio::task::JoinHandle<()>> {
    let text = std::fs::read_to_string(fixtures_dir().join("canon_iradv_c5560.snmprec")).unwrap();
    let (rec, _) = Recording::parse("canon", &text);
    let addrs: Vec<SocketAddr> = (1..=n)
        .map(|i| format!("{net}.{i}:16161").parse().unwrap())
        .collect();
    let fleet = Arc::new(Fleet::new(SimConfig::default(), vec![Arc::new(rec)], addrs));
    serve(fleet).await.unwrap()
}

/// The account "acme", taking its agents' devices as products.
async fn acme(api: &Api) {
    let r = api
        .send(
            "PUT",
            "/api/v1/accounts/acme",
            json!({"id": "acme", "name": "Acme", "billing_code": "B1", "service_code": "S1",
                   "auto_create_products": true}),
        )
        .await;
    assert!(r.status < 300, "{}", r.body);
}

async fn join_token(api: &Api, body: serde_json::Value) -> String {
    let r = api.send("POST", "/api/v1/join-tokens", body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let t = r.json()["token"].as_str().unwrap().to_string();
    assert!(t.starts_with("mlj_"), "{t}");
    t
}

async fn agent_cli(args: &[&str]) -> (u8, String, String) {
    let argv = std::iter::once("meterlink-agent")
        .chain(args.iter().copied())
        .map(String::from);
    meterlink_agent::cli::run(argv).await
}

fn write_agent(spec: &AgentToml, conf: &Path) {
    std::fs::write(conf, spec.render()).unwrap();
}

/// Every file under `dir`, read as bytes.
fn all_files(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                out.push((p, b));
            }
        }
    }
    out
}

/// The base64 body of a PEM block: what any copy of the key would contain.
fn pem_body(pem: &str) -> String {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}

async fn agent_row(api: &Api, id: &str) -> serde_json::Value {
    let r = api.get("/api/v1/agents").await;
    r.json()["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .cloned()
        .unwrap_or_default()
}

fn enrolled(agent_dir: &Path) -> Material {
    Source::Enrolled {
        dir: agent_dir.join("identity"),
    }
    .load()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_enrolls_streams_and_renews_a_one_minute_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let cdir = tmp.path().join("collector");
    let grpc = "127.57.0.1:50061";
    let extra = "[enrollment]\ncert_lifetime_secs = 60\n";
    let running = collector(&cdir, grpc, extra).await;
    let api = Api::operator(running.http_addr, &cdir);
    acme(&api).await;
    let token = join_token(&api, json!({"account": "acme", "agent_id": "agent-en"})).await;
    let _sim = simulator("127.58.0", 5).await;

    let adir = tmp.path().join("agent");
    let conf = tmp.path().join("agent.toml");
    let mut spec =
        AgentToml::enrolling("agent-en", &adir, grpc.parse().unwrap(), &["127.58.0.1-5"]);
    spec.meter = "*/2 * * * * *".into();
    spec.engine = Some((0.5, 1, 8));
    write_agent(&spec, &conf);
    let conf_s = conf.to_str().unwrap();

    // Before enrollment check-config says what to do.
    let (code, out, err) = agent_cli(&["check-config", "--config", conf_s]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("not enrolled yet"), "{out}");

    let (code, out, err) = agent_cli(&["enroll", "--config", conf_s, "--token", &token]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("enrolled as agent-en"), "{out}");
    let first = enrolled(&adir);
    let file = Source::enrolled_file(&adir.join("identity"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let life = first.not_after_ms.unwrap() - identity_now();
    assert!((55_000..=61_000).contains(&life), "lifetime {life} ms");

    // The private key exists only on the agent's side.
    let key = pem_body(&first.key_pem);
    for (p, bytes) in all_files(&cdir) {
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(&key),
            "the agent's key is in {}",
            p.display()
        );
    }
    // The token was single-use.
    let (code, _, err) =
        agent_cli(&["enroll", "--config", conf_s, "--token", &token, "--force"]).await;
    assert_eq!(code, meterlink_agent::cli::exit::AUTH, "{err}");
    assert!(err.contains("used already"), "{err}");

    // Run: readings stream; the certificate is renewed at about two thirds
    // of its minute, with a new key, while observations go on.
    let v = AgentConfig::load(&conf).unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let daemon = tokio::spawn(meterlink_agent::daemon::run(v, rx));
    let store = running.store.clone();
    until(Duration::from_secs(30), "readings filed", || {
        let s = store.clone();
        async move { s.observation_count("agent-en").await.unwrap() > 20 }
    })
    .await;
    let expires = |m: &Material| m.not_after_ms.unwrap();
    until(Duration::from_secs(50), "the first renewal", || {
        let a = adir.clone();
        let before = expires(&first);
        async move { expires(&enrolled(&a)) > before }
    })
    .await;
    let second = enrolled(&adir);
    let renewed_after = second.not_before_ms.unwrap() - first.not_before_ms.unwrap();
    assert!(
        (30_000..=45_000).contains(&renewed_after),
        "renewed {renewed_after} ms after the first was issued (two thirds of 66 s is 44 s)"
    );
    assert_ne!(pem_body(&second.key_pem), key, "a new key");
    eprintln!("first renewal {renewed_after} ms after the first certificate was issued");
    let row = agent_row(&api, "agent-en").await;
    assert_eq!(row["cert_expires_at_ms"], expires(&second), "{row}");
    let filed_at_renewal = store.observation_count("agent-en").await.unwrap();
    until(
        Duration::from_secs(20),
        "readings after the renewal",
        || {
            let s = store.clone();
            async move { s.observation_count("agent-en").await.unwrap() > filed_at_renewal + 20 }
        },
    )
    .await;

    // The collector is down when the next renewal is due: the agent retries,
    // keeps its certificate and buffers; renewal succeeds once it is back.
    let renew_at = second.renew_at_ms().unwrap();
    let wait = (renew_at - identity_now() - 8_000).max(0) as u64;
    tokio::time::sleep(Duration::from_millis(wait)).await;
    running.stop().await;
    let down_until = renew_at + 6_000;
    tokio::time::sleep(Duration::from_millis(
        (down_until - identity_now()).max(0) as u64
    ))
    .await;
    assert_eq!(
        expires(&enrolled(&adir)),
        expires(&second),
        "no renewal while the collector is down"
    );
    assert!(!daemon.is_finished(), "the agent keeps running");
    let running = collector(&cdir, grpc, extra).await;
    let restarted = identity_now();
    until(
        Duration::from_secs(15),
        "the renewal after the outage",
        || {
            let a = adir.clone();
            let before = expires(&second);
            async move { expires(&enrolled(&a)) > before }
        },
    )
    .await;
    let third = enrolled(&adir);
    eprintln!(
        "renewal after the outage: {} ms after the collector came back",
        third.not_before_ms.unwrap() + 6_000 - restarted
    );
    assert!(third.not_before_ms.unwrap() < second.not_after_ms.unwrap());
    let (code, out, _) = agent_cli(&["status", "--config", conf_s]).await;
    assert_eq!(code, 0);
    assert!(out.contains("certificate  valid until"), "{out}");
    stop.send(true).unwrap();
    daemon.await.unwrap().unwrap();

    // None lost, none doubled.
    let next = drain_agent(&mut spec, &conf).await;
    let seqs = running.store.filed_seqs("agent-en").await.unwrap();
    let mut dedup = seqs.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), seqs.len(), "observations filed twice");
    let lost: Vec<u64> = (seqs[0]..next)
        .filter(|s| seqs.binary_search(s).is_err())
        .collect();
    assert!(lost.is_empty(), "observations lost: {lost:?}");
    running.stop().await;
}

fn identity_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A Stream call made with `m`'s certificate: its first answer.
async fn stream_with(reach: &Reach, m: &Material) -> Result<(), tonic::Status> {
    let channel = reach
        .channel(&m.ca_pem, Some((&m.cert_pem, &m.key_pem)))
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let hello = AgentMessage {
        kind: Some(agent_message::Kind::Hello(Hello {
            agent_id: m.agent_id.clone().unwrap_or_default(),
            ..Default::default()
        })),
    };
    let mut inbound = CollectorClient::new(channel)
        .stream(tokio_stream::iter(vec![hello]).chain(tokio_stream::pending()))
        .await?
        .into_inner();
    match tokio::time::timeout(Duration::from_millis(1500), inbound.message()).await {
        Ok(Err(s)) => Err(s),
        _ => Ok(()),
    }
}

use tokio_stream::StreamExt as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_agent_stops_within_a_second_and_reenrollment_retires_the_old_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let cdir = tmp.path().join("collector");
    let grpc = "127.57.0.2:50061";
    let running = collector(&cdir, grpc, "").await;
    let api = Api::operator(running.http_addr, &cdir);
    acme(&api).await;
    let _sim = simulator("127.58.1", 3).await;
    let adir = tmp.path().join("agent");
    let conf = tmp.path().join("agent.toml");
    let mut spec =
        AgentToml::enrolling("agent-off", &adir, grpc.parse().unwrap(), &["127.58.1.1-3"]);
    spec.meter = "* * * * * *".into();
    spec.engine = Some((0.5, 1, 8));
    // `run` with a token and no certificate enrolls by itself.
    spec.token = Some(join_token(&api, json!({"account": "acme"})).await);
    write_agent(&spec, &conf);
    let v = AgentConfig::load(&conf).unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let daemon = tokio::spawn(meterlink_agent::daemon::run(v, rx));
    let store = running.store.clone();
    until(Duration::from_secs(30), "readings filed", || {
        let s = store.clone();
        async move { s.observation_count("agent-off").await.unwrap() > 5 }
    })
    .await;
    let old = enrolled(&adir);
    assert_eq!(agent_row(&api, "agent-off").await["account"], "acme");

    // Disabled: the live stream ends within a second.
    let connected = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("meterlink_agents_connected "))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(-1.0)
    };
    let metrics = || async {
        meterlink_tests::http::get(running.http_addr, "/metrics")
            .await
            .body
    };
    assert_eq!(connected(&metrics().await), 1.0);
    let t0 = Instant::now();
    let r = api
        .request("POST", "/api/v1/agents/agent-off/disable", None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["enabled"], false);
    while connected(&metrics().await) != 0.0 {
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "the stream outlived a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ended_in = t0.elapsed();
    // The agent is told why; it polls on into its buffer; nothing more is filed.
    let status = adir.join("status.json");
    until(
        Duration::from_secs(5),
        "the agent to show the refusal",
        || {
            let status = status.clone();
            async move {
                std::fs::read_to_string(&status)
                    .ok()
                    .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                    .is_some_and(|v| {
                        v["connection"] == "refused"
                            && v["last_error"].as_str().unwrap_or("").contains("disabled")
                    })
            }
        },
    )
    .await;
    let filed = store.observation_count("agent-off").await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(store.observation_count("agent-off").await.unwrap(), filed);
    assert!(!daemon.is_finished());
    stop.send(true).unwrap();
    daemon.await.unwrap().unwrap();
    let reach = Reach {
        url: format!("https://{grpc}"),
        server_name: "localhost".into(),
        proxy: None,
    };
    let refused = stream_with(&reach, &old).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused}");
    let renewal = identity::renew(&reach, &old, &tmp.path().join("scratch")).await;
    assert!(
        matches!(&renewal, Err(identity::IdentityError::Refused(m)) if m.contains("disabled")),
        "{renewal:?}"
    );
    // Enrolling a disabled agent is refused too, and spends nothing.
    let t2 = join_token(&api, json!({"account": "acme", "agent_id": "agent-off"})).await;
    let conf_s = conf.to_str().unwrap();
    let (code, _, err) =
        agent_cli(&["enroll", "--config", conf_s, "--token", &t2, "--force"]).await;
    assert_eq!(code, meterlink_agent::cli::exit::AUTH);
    assert!(err.contains("disabled"), "{err}");
    assert_eq!(store.observation_count("agent-off").await.unwrap(), filed);

    // Enabled and enrolled again: the new certificate works, the old is refused.
    let r = api
        .request("POST", "/api/v1/agents/agent-off/enable", None)
        .await;
    assert_eq!(r.json()["enabled"], true);
    let t3 = join_token(&api, json!({"account": "acme", "agent_id": "agent-off"})).await;
    let (code, _, err) =
        agent_cli(&["enroll", "--config", conf_s, "--token", &t3, "--force"]).await;
    assert_eq!(code, 0, "{err}");
    let new = enrolled(&adir);
    assert!(stream_with(&reach, &new).await.is_ok());
    let refused = stream_with(&reach, &old).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    assert!(refused.message().contains("replaced"), "{refused}");
    spec.token = None;
    drain_agent(&mut spec, &conf).await;
    eprintln!(
        "disabled agent's stream ended {} ms after the API call",
        ended_in.as_millis()
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_and_bad_csrs_are_refused_and_nothing_is_issued() {
    let tmp = tempfile::tempdir().unwrap();
    let cdir = tmp.path().join("collector");
    let grpc = "127.57.0.3:50061";
    let running = collector(&cdir, grpc, "").await;
    let api = Api::operator(running.http_addr, &cdir);
    acme(&api).await;
    let reach = Reach {
        url: format!("https://{grpc}"),
        server_name: "localhost".into(),
        proxy: None,
    };
    let dir = tmp.path().join("identity");
    let good = join_token(&api, json!({"account": "acme", "agent_id": "agent-a"})).await;

    // Another collector's fingerprint: the agent does not trust this one.
    let fp_at = good.rfind('_').unwrap() + 1;
    let foreign = format!("{}{}", &good[..fp_at], "0".repeat(64));
    let e = identity::enroll(&reach, &foreign, "agent-a", &dir)
        .await
        .unwrap_err();
    assert!(
        matches!(e, identity::IdentityError::NotPinned { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("another collector"), "{e}");
    // A CSR for another name than the token's.
    let e = identity::enroll(&reach, &good, "agent-b", &dir)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("is for agent \"agent-a\""), "{e}");
    // Unknown token (right fingerprint, made-up id and secret).
    let fp = &good[fp_at..];
    let unknown = format!("mlj_{}_{}_{fp}", "a".repeat(16), "b".repeat(32));
    let e = identity::enroll(&reach, &unknown, "agent-a", &dir)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("unknown join token"), "{e}");
    // The right id with a wrong secret is just as unknown.
    let wrong_secret = format!("{}{}_{fp}", &good[..21], "c".repeat(32));
    let e = identity::enroll(&reach, &wrong_secret, "agent-a", &dir)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("unknown join token"), "{e}");

    // Straight to the Enroll call (a TLS client that trusts the CA): a
    // malformed CSR, and a weak key.
    let ca = std::fs::read_to_string(cdir.join("pki/ca.pem")).unwrap();
    let channel = reach.channel(&ca, None).await.unwrap();
    let mut client = CollectorClient::new(channel);
    let e = client
        .enroll(EnrollRequest {
            token: good.clone(),
            csr_pem:
                "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
                    .into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
    assert!(e.message().contains("nothing was issued"), "{e}");
    if have_tool("openssl", "weak CSR refused") {
        let key = tmp.path().join("weak.key");
        let out = std::process::Command::new("openssl")
            .args([
                "req",
                "-new",
                "-newkey",
                "rsa:1024",
                "-nodes",
                "-subj",
                "/CN=agent-a",
                "-keyout",
            ])
            .arg(&key)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let e = client
            .enroll(EnrollRequest {
                token: good.clone(),
                csr_pem: String::from_utf8(out.stdout).unwrap(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
        assert!(e.message().contains("too weak (RSA 1024 bits)"), "{e}");
    }
    // Without a client certificate nothing but Enroll answers.
    let e = client
        .stream(tokio_stream::iter(Vec::<AgentMessage>::new()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e}");
    assert!(e.message().contains("enroll the agent first"), "{e}");

    // None of that spent the token: it still enrolls, once.
    identity::enroll(&reach, &good, "agent-a", &dir)
        .await
        .unwrap();
    let e = identity::enroll(&reach, &good, "agent-a", &dir)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("used already"), "{e}");

    // Expired: made in the past through the store.
    let pin = meterlink_collector::agents::pin_sha256(
        &meterlink_collector::config::Config::parse(
            "c.toml",
            &format!("data_dir = \"{}\"\n", cdir.display()),
        )
        .unwrap(),
    )
    .unwrap();
    let now = meterlink_collector::store::now_ms();
    let old = running
        .store
        .create_join_token(
            &meterlink_collector::model::NewJoinToken {
                account: "acme".into(),
                agent: None,
                created_by: "test".into(),
                expires_at_ms: now - 1,
            },
            &pin,
            now - 60_000,
        )
        .await
        .unwrap();
    let e = identity::enroll(&reach, &old.token, "agent-c", &dir)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("expired"), "{e}");
    // Only agent-a was ever issued a certificate.
    let agents = running.store.agents().await.unwrap();
    let ids: Vec<&str> = agents.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["agent-a"]);

    let listed = api.get("/api/v1/join-tokens?account=acme").await.json();
    assert_eq!(listed["join_tokens"].as_array().unwrap().len(), 2);
    assert!(
        !listed.to_string().contains(&good[21..53]),
        "a secret listed"
    );

    // Account managers make tokens for their own account only; product
    // administrators make none.
    api.send(
        "PUT",
        "/api/v1/accounts/other",
        json!({"id": "other", "name": "Other", "billing_code": "B2", "service_code": "S2"}),
    )
    .await;
    let mut as_role = Vec::new();
    for (id, role) in [("mia", "account_manager"), ("pat", "product_administrator")] {
        let r = api
            .send(
                "PUT",
                &format!("/api/v1/users/{id}"),
                json!({"id": id, "name": id, "role": role, "account": "acme"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let t = api
            .send(
                "POST",
                &format!("/api/v1/users/{id}/tokens"),
                json!({"label": "test"}),
            )
            .await;
        assert_eq!(t.status, 201, "{}", t.body);
        as_role.push(Api::new(
            running.http_addr,
            t.json()["token"].as_str().unwrap(),
        ));
    }
    let (mia, pat) = (&as_role[0], &as_role[1]);
    join_token(mia, json!({"account": "acme", "ttl_secs": 3600})).await;
    let r = mia
        .send("POST", "/api/v1/join-tokens", json!({"account": "other"}))
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = pat
        .send("POST", "/api/v1/join-tokens", json!({"account": "acme"}))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = mia
        .send(
            "POST",
            "/api/v1/join-tokens",
            json!({"account": "acme", "ttl_secs": 5}),
        )
        .await;
    assert_eq!(r.code(), "invalid_ttl");
    running.stop().await;
}
