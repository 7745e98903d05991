//! E-mail notifications through a real SMTP server on loopback (aiosmtpd,
//! which keeps what it receives in a maildir): the server is down when a
//! request opens and the collector restarts meanwhile; when the server comes
//! up every message arrives exactly once, in the recipient's language, to
//! the account managers and the product's administrator only.

use meterlink_tests::http::Api;
use meterlink_tests::peers::{have_tool, until};
use meterlink_tests::stack::collector_toml;
use serde_json::json;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

pub(super) struct Smtp(Child);

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// aiosmtpd on `addr`, storing messages in `maildir`.
pub(super) fn smtp_server(addr: &str, maildir: &Path) -> Smtp {
    Smtp(
        Command::new("python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                addr,
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(maildir)
            .spawn()
            .expect("aiosmtpd starts"),
    )
}

/// The body of the message to `to` with `subject`, quoted-printable undone.
fn body_of(maildir: &Path, to: &str, subject: &str) -> Option<String> {
    for sub in ["new", "cur"] {
        let Ok(rd) = std::fs::read_dir(maildir.join(sub)) else {
            continue;
        };
        for e in rd.flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            if text.contains(&format!("To: {to}")) && text.contains(&format!("Subject: {subject}"))
            {
                let body = text.split("\n\n").skip(1).collect::<Vec<_>>().join("\n\n");
                return Some(
                    body.replace("=\r\n", "")
                        .replace("=\n", "")
                        .replace("=3D", "="),
                );
            }
        }
    }
    None
}

/// (to, subject) of every message received.
pub(super) fn received(maildir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(rd) = std::fs::read_dir(maildir.join(sub)) else {
            continue;
        };
        for e in rd.flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            let header = |name: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                    .unwrap_or("")
                    .to_string()
            };
            out.push((header("To"), header("Subject")));
        }
    }
    out.sort();
    out
}

async fn start(dir: &Path, smtp: &str) -> meterlink_collector::server::Running {
    let text = format!(
        "{}[email]\nsmtp_url = \"smtp://{smtp}\"\nfrom = \"meterlink <meterlink@example.com>\"\n\
         public_url = \"https://portal.example.com\"\nretry_base_ms = 200\nretry_max_ms = 1000\n",
        collector_toml(dir, "127.0.0.1:0", "127.0.0.1:0")
    );
    let cfg = meterlink_collector::config::Config::parse("collector.toml", &text).unwrap();
    meterlink_collector::server::start(&cfg).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_arrive_once_after_an_smtp_outage_and_a_restart() {
    if !have_tool("python3", "e-mail notifications") {
        return;
    }
    if !meterlink_tests::peers::have_python_module(
        "aiosmtpd",
        "notifications_arrive_once_after_an_smtp_outage_and_a_restart",
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("collector");
    let smtp = "127.60.0.1:2525";
    let running = start(&dir, smtp).await;
    let op = Api::operator(running.http_addr, &dir);
    let put = |path: String, body: serde_json::Value| {
        let op = op.clone();
        async move {
            let r = op.send("PUT", &path, body).await;
            assert!(r.status < 300, "{path}: {}", r.body);
        }
    };
    put(
        "/api/v1/accounts/acme".into(),
        json!({"id": "acme", "name": "Acme", "billing_code": "B1", "service_code": "S1"}),
    )
    .await;
    for (id, role, email, language) in [
        ("mia", "account_manager", "mia@example.com", "en"),
        ("gio", "account_manager", "gio@example.com", "it"),
        ("pat", "product_administrator", "pat@example.com", "en"),
        ("sue", "account_manager", "sue@example.com", "en"),
    ] {
        put(
            format!("/api/v1/users/{id}"),
            json!({"id": id, "name": id, "role": role, "account": "acme", "email": email, "language": language}),
        )
        .await;
    }
    // A suspended user hears nothing.
    assert_eq!(
        op.request("POST", "/api/v1/users/sue/suspend", None)
            .await
            .status,
        200
    );

    // The SMTP server is down: a request opens, its messages wait.
    let r = op
        .send(
            "POST",
            "/api/v1/service-requests",
            json!({"account": "acme", "kind": "information", "title": "Invoice 2026-11 question"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let number = r.json()["number"].as_str().unwrap().to_string();
    let store = running.store.clone();
    until(Duration::from_secs(10), "a failed attempt", || {
        let s = store.clone();
        async move {
            let due = s.email_due(i64::MAX, 10).await.unwrap();
            due.len() == 2 && due.iter().all(|m| m.attempts >= 1)
        }
    })
    .await;
    // The collector restarts meanwhile; nothing is lost.
    running.stop().await;
    let running = start(&dir, smtp).await;
    let maildir = tmp.path().join("maildir");
    let _server = smtp_server(smtp, &maildir);
    let store = running.store.clone();
    until(Duration::from_secs(20), "both messages sent", || {
        let s = store.clone();
        async move {
            let c = s.email_counts().await.unwrap();
            c.sent == 2 && c.pending == 0
        }
    })
    .await;
    let got = received(&maildir);
    assert_eq!(
        got,
        vec![
            (
                "gio@example.com".to_string(),
                format!("Richiesta di assistenza {number} aperta: Invoice 2026-11 question")
            ),
            (
                "mia@example.com".to_string(),
                format!("Service request {number} opened: Invoice 2026-11 question")
            ),
        ],
        "each account manager once, in their language; not the product administrator \
         (no product), not the suspended user"
    );
    let op = Api::operator(running.http_addr, &dir);
    let r = op
        .send(
            "POST",
            &format!("/api/v1/service-requests/{number}/close"),
            json!({"reason": "answered by phone"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    until(Duration::from_secs(20), "the closing messages", || {
        let m = maildir.clone();
        async move { received(&m).len() == 4 }
    })
    .await;
    let got = received(&maildir);
    assert!(
        got.iter().any(|(to, s)| to == "mia@example.com"
            && s.starts_with(&format!("Service request {number} closed"))),
        "{got:?}"
    );
    // The server has a message before the mailer has its answer and
    // marks it sent.
    until(Duration::from_secs(10), "all four marked sent", || {
        let s = store.clone();
        async move {
            let c = s.email_counts().await.unwrap();
            c.sent == 4 && c.pending == 0
        }
    })
    .await;

    // A forgotten password: a single-use link by e-mail; the same answer for
    // an address nobody has (and for a suspended user, who gets nothing).
    let ask = |email: &str| {
        let op = op.clone();
        let body = json!({"email": email}).to_string();
        async move {
            meterlink_tests::http::request(op.addr, "POST", "/api/v1/password-reset", Some(&body))
                .await
        }
    };
    let known = ask("Mia@example.com").await;
    let unknown = ask("nobody@example.com").await;
    let suspended = ask("sue@example.com").await;
    assert_eq!(known.status, 202, "{}", known.body);
    assert_eq!((known.status, &known.body), (unknown.status, &unknown.body));
    assert_eq!(
        (known.status, &known.body),
        (suspended.status, &suspended.body)
    );
    let subject = "Reset your meterlink password";
    until(Duration::from_secs(20), "the reset message", || {
        let m = maildir.clone();
        async move { body_of(&m, "mia@example.com", subject).is_some() }
    })
    .await;
    assert_eq!(
        received(&maildir).len(),
        5,
        "one reset message, to mia only"
    );
    let body = body_of(&maildir, "mia@example.com", subject).unwrap();
    let token = body
        .split("https://portal.example.com/reset-password?token=")
        .nth(1)
        .map(|t| {
            t.chars()
                .take_while(|c| c.is_ascii_hexdigit())
                .collect::<String>()
        })
        .unwrap_or_else(|| panic!("no link in {body}"));
    assert_eq!(token.len(), 64, "{body}");
    let confirm = |token: &str, pw: &str| {
        let op = op.clone();
        let body = json!({"token": token, "new_password": pw}).to_string();
        async move {
            meterlink_tests::http::request(
                op.addr,
                "POST",
                "/api/v1/password-reset/confirm",
                Some(&body),
            )
            .await
        }
    };
    let weak = confirm(&token, "short").await;
    assert_eq!((weak.status, weak.code().as_str()), (422, "weak_password"));
    let done = confirm(&token, "a phrase of my own").await;
    assert_eq!(done.status, 204, "{}", done.body);
    let login = json!({"email": "mia@example.com", "password": "a phrase of my own"}).to_string();
    let r = meterlink_tests::http::request(op.addr, "POST", "/api/v1/sessions", Some(&login)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let again = confirm(&token, "another phrase of mine").await;
    assert_eq!((again.status, again.code().as_str()), (403, "link_invalid"));
    // An expired link is refused too.
    let now = meterlink_collector::store::now_ms();
    let old = "ab".repeat(32);
    assert!(store
        .request_password_reset(
            "gio@example.com",
            &meterlink_collector::token::hash_secret(&old),
            "link",
            now - 2 * 3_600_000,
            now - 3_600_000,
        )
        .await
        .unwrap());
    let expired = confirm(&old, "a phrase of my own").await;
    assert_eq!(
        (expired.status, expired.code().as_str()),
        (403, "link_invalid")
    );
    running.stop().await;
}
