//! Sends the e-mail outbox over SMTP (lettre): plain, STARTTLS or TLS as the
//! URL says, with authentication from it; one claim per attempt, so that
//! replicas do not send a message twice; retried with backoff until a limit,
//! then a dead letter; a permanent refusal (5xx) is a dead letter at once.
//! Each message has a Message-ID made from its row, so a receiver can tell a
//! repeat (a crash between sending and recording) from a new message.

use crate::model::{EmailItem, OutboxResult};
use crate::store::{now_ms, Store};
use lettre::message::header::ContentType;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::sync::Arc;
use std::time::Duration;

/// The longest one message's conversation with the server may take.
const SEND_DEADLINE: Duration = Duration::from_secs(60);

/// `[email]` as the mailer uses it.
#[derive(Clone)]
pub struct MailConfig {
    /// `smtp://host:port` (plain; `?tls=required` for STARTTLS) or
    /// `smtps://host:port` (TLS), with `user:password@` when the server asks.
    pub smtp_url: String,
    pub from: String,
    pub max_attempts: u32,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub idle: Duration,
    /// A private CA the server's certificate may chain to (PEM file).
    pub ca: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password (invariant 8).
        f.debug_struct("MailConfig")
            .field("smtp_url", &redact(&self.smtp_url))
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

/// The URL without its password.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let user = url[s + 3..at].split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// What one failed attempt leads to: a retry after a doubling wait (at most
/// `retry_max`), or a dead letter after `max_attempts` or a permanent refusal.
pub fn after_failure(
    cfg: &MailConfig,
    attempts_before: u32,
    error: String,
    permanent: bool,
    now: i64,
) -> OutboxResult {
    let attempts = attempts_before + 1;
    if permanent || attempts >= cfg.max_attempts {
        return OutboxResult::Dead { error };
    }
    let wait = cfg
        .retry_base
        .saturating_mul(1u32 << (attempts - 1).min(20))
        .min(cfg.retry_max);
    OutboxResult::Retry {
        error,
        at_ms: now + wait.as_millis() as i64,
    }
}

fn message(cfg: &MailConfig, m: &EmailItem) -> Result<Message, String> {
    Message::builder()
        .from(
            cfg.from
                .parse()
                .map_err(|e| format!("[email] from {:?}: {e}", cfg.from))?,
        )
        .to(m
            .to
            .parse()
            .map_err(|e| format!("address {:?}: {e}", m.to))?)
        .subject(m.subject.clone())
        .message_id(Some(format!("<email-{}@meterlink>", m.id)))
        .header(ContentType::TEXT_PLAIN)
        .body(m.body.clone())
        .map_err(|e| e.to_string())
}

/// The host and the `tls=` query of an SMTP URL, and whether it is `smtps`.
fn url_parts(url: &str) -> Option<(String, Option<String>, bool)> {
    let (scheme, rest) = url.split_once("://")?;
    let (authority, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let hostport = hostport.split('/').next().unwrap_or("");
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        hostport.rsplit_once(':').map_or(hostport, |(h, _)| h)
    };
    let tls = query.and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("tls=").map(str::to_string))
    });
    Some((host.to_string(), tls, scheme == "smtps"))
}

/// The SMTP transport `cfg` names: TLS as its URL says, checked against
/// the public roots and `ca` when given.
pub fn transport(cfg: &MailConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::from_url(&cfg.smtp_url)
        .map_err(|e| format!("[email] smtp_url {}: {e}", redact(&cfg.smtp_url)))?;
    if let Some(path) = &cfg.ca {
        let pem = std::fs::read(path).map_err(|e| format!("[email] ca {}: {e}", path.display()))?;
        let cert = Certificate::from_pem(&pem)
            .map_err(|e| format!("[email] ca {}: not a PEM certificate: {e}", path.display()))?;
        let (host, tls, wrapper) = url_parts(&cfg.smtp_url)
            .ok_or_else(|| format!("[email] smtp_url {}: no host", redact(&cfg.smtp_url)))?;
        let params = TlsParameters::builder(host)
            .add_root_certificate(cert)
            .build_rustls()
            .map_err(|e| format!("[email] ca {}: {e}", path.display()))?;
        b = match (wrapper, tls.as_deref()) {
            (true, _) => b.tls(Tls::Wrapper(params)),
            (false, Some("required")) => b.tls(Tls::Required(params)),
            (false, Some("opportunistic")) => b.tls(Tls::Opportunistic(params)),
            // A plain connection has no certificate to check.
            _ => b,
        };
    }
    Ok(b.timeout(Some(Duration::from_secs(20))).build())
}

/// Sends until stopped.
pub async fn run(store: Arc<Store>, cfg: MailConfig, mut stop: tokio::sync::watch::Receiver<bool>) {
    let transport = match transport(&cfg) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "e-mail cannot go out; it stays queued");
            return;
        }
    };
    tracing::info!(url = %redact(&cfg.smtp_url), "e-mail notifications go out by SMTP");
    loop {
        let due = match store.email_due(now_ms(), 50).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "e-mail outbox unreadable; trying again");
                Vec::new()
            }
        };
        if due.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(cfg.idle) => continue,
                _ = stop.changed() => return,
            }
        }
        for m in due {
            let now = now_ms();
            match store.email_claim(m.id, now, now + 60_000).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "e-mail outbox: cannot claim a message");
                    continue;
                }
            }
            let result = match message(&cfg, &m) {
                Err(e) => OutboxResult::Dead { error: e },
                // A server that stops answering mid-conversation must not
                // hold the queue: the whole send has a deadline.
                Ok(msg) => match tokio::time::timeout(SEND_DEADLINE, transport.send(msg)).await {
                    Ok(Ok(_)) => OutboxResult::Sent,
                    Ok(Err(e)) => {
                        tracing::warn!(email = m.id, error = %e, "e-mail not sent; it stays queued");
                        after_failure(&cfg, m.attempts, e.to_string(), e.is_permanent(), now_ms())
                    }
                    Err(_) => {
                        let e = format!(
                            "no answer from the SMTP server within {} s",
                            SEND_DEADLINE.as_secs()
                        );
                        tracing::warn!(email = m.id, error = %e, "e-mail not sent; it stays queued");
                        after_failure(&cfg, m.attempts, e, false, now_ms())
                    }
                },
            };
            if let OutboxResult::Dead { error } = &result {
                tracing::error!(email = m.id, %error, "e-mail given up: a dead letter");
            }
            if let Err(e) = store.email_result(m.id, result).await {
                tracing::error!(email = m.id, error = %e, "e-mail outcome not recorded");
            }
            if *stop.borrow() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> MailConfig {
        MailConfig {
            smtp_url: "smtp://mailer:s3cret@mail.example.com:587?tls=required".into(),
            from: "meterlink <noreply@example.com>".into(),
            max_attempts: 4,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(3),
            idle: Duration::from_secs(1),
            ca: None,
        }
    }

    #[test]
    fn url_parts_name_the_host_and_the_tls_mode() {
        assert_eq!(
            url_parts("smtp://u:p@mail.example.com:587?tls=required"),
            Some(("mail.example.com".into(), Some("required".into()), false))
        );
        assert_eq!(
            url_parts("smtps://127.0.0.1:465"),
            Some(("127.0.0.1".into(), None, true))
        );
        assert_eq!(
            url_parts("smtp://[::1]:25"),
            Some(("::1".into(), None, false))
        );
        assert_eq!(url_parts("mail.example.com"), None);
    }

    #[test]
    fn failures_back_off_then_give_up() {
        let c = cfg();
        let at = |r: OutboxResult| match r {
            OutboxResult::Retry { at_ms, .. } => at_ms,
            other => panic!("{other:?}"),
        };
        assert_eq!(at(after_failure(&c, 0, "down".into(), false, 0)), 1000);
        assert_eq!(at(after_failure(&c, 1, "down".into(), false, 0)), 2000);
        assert_eq!(
            at(after_failure(&c, 2, "down".into(), false, 0)),
            3000,
            "capped"
        );
        assert!(matches!(
            after_failure(&c, 3, "down".into(), false, 0),
            OutboxResult::Dead { .. }
        ));
        assert!(matches!(
            after_failure(&c, 0, "550".into(), true, 0),
            OutboxResult::Dead { .. }
        ));
    }

    #[test]
    fn the_password_never_shows() {
        let c = cfg();
        assert_eq!(
            redact(&c.smtp_url),
            "smtp://mailer:***@mail.example.com:587?tls=required"
        );
        assert!(!format!("{c:?}").contains("s3cret"));
        assert_eq!(redact("smtp://127.0.0.1:25"), "smtp://127.0.0.1:25");
    }
}
