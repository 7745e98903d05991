//! E-mail over TLS with authentication, against a real SMTP server on
//! loopback (aiosmtpd with a certificate of a CA the test makes): STARTTLS
//! (`smtp://...?tls=required`) and TLS from the first byte (`smtps://`),
//! each with the right password (delivered) and a wrong one (refused by the
//! server: a dead letter, nothing delivered).

use super::email::received;
use meterlink_tests::stack::collector_toml;
use serde_json::json;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const SERVER: &str = r#"
import ssl, sys, time, warnings
warnings.filterwarnings("ignore")
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword

mode, host, port, cert, key, maildir = sys.argv[1:7]

def authenticate(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login == b"mailer" and data.password == b"s3cret-pass"
    return AuthResult(success=ok, handled=False)

ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
common = dict(authenticator=authenticate, auth_required=True)
if mode == "starttls":
    c = Controller(Mailbox(maildir), hostname=host, port=int(port), tls_context=ctx,
                   require_starttls=True, **common)
else:
    c = Controller(Mailbox(maildir), hostname=host, port=int(port), ssl_context=ctx,
                   auth_require_tls=False, **common)
c.start()
print("ready", flush=True)
while True:
    time.sleep(3600)
"#;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn server(dir: &Path, mode: &str, host: &str, port: u16, maildir: &Path) -> Server {
    let script = dir.join("smtp_tls_server.py");
    std::fs::write(&script, SERVER).unwrap();
    let mut child = Command::new("python3")
        .arg(&script)
        .args([mode, host, &port.to_string()])
        .arg(dir.join("certs/smtp.pem"))
        .arg(dir.join("certs/smtp-key.pem"))
        .arg(maildir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    // It prints "ready" once it listens.
    let mut out = child.stdout.take().unwrap();
    let mut buf = [0u8; 6];
    std::io::Read::read_exact(&mut out, &mut buf).expect("the SMTP server starts");
    assert_eq!(&buf, b"ready\n");
    Server(child)
}

async fn deliver_over(mode: &str, url: &str, host: &str, port: u16) {
    if !meterlink_tests::peers::have_python_module("aiosmtpd", &format!("SMTP over {mode}")) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pki = meterlink_collector::pki::Pki::ensure(&dir.join("ca"), "mail test CA").unwrap();
    pki.issue_named(
        "smtp",
        &[host.to_string()],
        true,
        &dir.join("certs"),
        "smtp",
        None,
    )
    .unwrap();
    let maildir = dir.join("maildir");
    let _server = server(dir, mode, host, port, &maildir);
    for (password, delivered) in [("s3cret-pass", true), ("not-the-password", false)] {
        let data = dir.join(format!("collector-{delivered}"));
        let text = format!(
            "{}[email]\nsmtp_url = \"{}\"\nfrom = \"meterlink <meterlink@example.com>\"\n\
             ca = \"{}\"\nretry_base_ms = 100\nretry_max_ms = 200\nmax_attempts = 3\n",
            collector_toml(&data, "127.0.0.1:0", "127.0.0.1:0"),
            url.replace("PASSWORD", password),
            pki.ca_cert().display()
        );
        let cfg = meterlink_collector::config::Config::parse("collector.toml", &text).unwrap();
        meterlink_collector::server::check_config(&cfg).unwrap();
        let running = meterlink_collector::server::start(&cfg).await.unwrap();
        let op = meterlink_tests::http::Api::operator(running.http_addr, &data);
        let to = format!("mia-{delivered}@example.com");
        for (path, body) in [
            (
                "/api/v1/accounts/acme".to_string(),
                json!({"id": "acme", "name": "Acme", "billing_code": "B", "service_code": "S"}),
            ),
            (
                "/api/v1/users/mia".to_string(),
                json!({"id": "mia", "name": "Mia", "role": "account_manager", "account": "acme", "email": to}),
            ),
        ] {
            let r = op.send("PUT", &path, body).await;
            assert!(r.status < 300, "{}", r.body);
        }
        let r = op
            .send(
                "POST",
                "/api/v1/service-requests",
                json!({"account": "acme", "kind": "information", "title": "Toner order"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let store = running.store.clone();
        let db = data.join("meterlink.db");
        let last_error = move || {
            let out = Command::new("sqlite3")
                .arg(&db)
                .arg("SELECT state, attempts, last_error FROM email_outbox")
                .output();
            out.map(|o| String::from_utf8_lossy(&o.stdout).to_string())
                .unwrap_or_default()
        };
        let settled = || {
            let s = store.clone();
            async move {
                let c = s.email_counts().await.unwrap();
                c.sent + c.dead == 1
            }
        };
        if tokio::time::timeout(Duration::from_secs(45), async {
            while !settled().await {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .is_err()
        {
            panic!("{mode}: the message did not settle: {}", last_error());
        }
        let c = store.email_counts().await.unwrap();
        let got = received(&maildir);
        if delivered {
            assert_eq!(c.sent, 1, "{mode}: sent");
            assert!(got.iter().any(|(t, _)| t == &to), "{mode}: {got:?}");
        } else {
            assert_eq!(c.dead, 1, "{mode}: a refused login is a dead letter");
            assert!(!got.iter().any(|(t, _)| t == &to), "{mode}: {got:?}");
        }
        running.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_over_starttls_with_authentication() {
    deliver_over(
        "starttls",
        "smtp://mailer:PASSWORD@127.60.0.4:2528?tls=required",
        "127.60.0.4",
        2528,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_over_tls_with_authentication() {
    deliver_over(
        "tls",
        "smtps://mailer:PASSWORD@127.60.0.5:2529",
        "127.60.0.5",
        2529,
    )
    .await;
}
