//! Portal backends. The embedded one is the store itself, served by the
//! REST API. The HTTP outbox sends every service-request change to an
//! external portal: the store writes an outbox row in the same commit as the
//! change; this sender POSTs rows as JSON with an `Idempotency-Key` header,
//! retries with exponential backoff, and turns a row into a dead letter after
//! `max_attempts` or when the portal refuses it outright (a 4xx other than
//! 408, 425 and 429). The store hands out only the oldest unsent row of each
//! request, so a portal sees each request's changes in order, also across
//! collector restarts (the rows are in the store).

use crate::model::{OutboxItem, OutboxResult};
use crate::store::{now_ms, Store};
use std::sync::Arc;
use std::time::Duration;

/// A bearer token: never shown by Debug (logs, errors).
#[derive(Clone, serde::Deserialize)]
#[serde(transparent)]
pub struct Token(pub String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

#[derive(Debug, Clone)]
pub struct OutboxConfig {
    pub url: String,
    pub token: Option<Token>,
    pub max_attempts: u32,
    /// First retry after this; doubled per attempt, at most `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// How long an idle sender waits before looking for new rows.
    pub idle: Duration,
    pub timeout: Duration,
}

impl OutboxConfig {
    pub fn new(url: &str) -> OutboxConfig {
        OutboxConfig {
            url: url.to_string(),
            token: None,
            max_attempts: 20,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            idle: Duration::from_millis(500),
            timeout: Duration::from_secs(10),
        }
    }
}

/// A POST that got no HTTP status: connection, TLS or time-out. The text
/// never carries the URL (it may hold credentials).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot reach the portal: {0}")]
pub struct Unreachable(pub String);

/// What to do after an attempt: pure, so the policy is tested without a portal.
pub fn after_attempt(
    cfg: &OutboxConfig,
    attempts_before: u32,
    outcome: Result<u16, Unreachable>,
    now: i64,
) -> OutboxResult {
    let attempts = attempts_before + 1;
    let error = match outcome {
        Ok(s) if (200..300).contains(&s) => return OutboxResult::Sent,
        Ok(s) if (400..500).contains(&s) && ![408, 425, 429].contains(&s) => {
            return OutboxResult::Dead {
                error: format!("the portal refused the change with HTTP {s}"),
            }
        }
        Ok(s) => format!("HTTP {s}"),
        Err(e) => e.to_string(),
    };
    if attempts >= cfg.max_attempts {
        return OutboxResult::Dead {
            error: format!("{error} (gave up after {attempts} attempts)"),
        };
    }
    let backoff = cfg
        .retry_base
        .saturating_mul(1u32 << (attempts - 1).min(20))
        .min(cfg.retry_max);
    OutboxResult::Retry {
        error,
        at_ms: now + backoff.as_millis() as i64,
    }
}

/// Sends outbox rows until `stop` turns true.
pub async fn run_outbox(
    store: Arc<Store>,
    cfg: OutboxConfig,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let client = match reqwest::Client::builder().timeout(cfg.timeout).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "outbox: cannot build the HTTP client; changes stay queued");
            return;
        }
    };
    loop {
        let due = match store.outbox_due(now_ms(), 100).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "outbox: store unavailable; retrying");
                Vec::new()
            }
        };
        if due.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(cfg.idle) => continue,
                _ = stop.changed() => return,
            }
        }
        for item in due {
            if *stop.borrow() {
                return;
            }
            // Claimed just before sending: a sender that stops leaves no
            // claims behind but the one in flight.
            let now = now_ms();
            let lease = now + cfg.timeout.as_millis() as i64 * 2;
            match store.outbox_claim(item.id, now, lease).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "outbox: store unavailable; retrying");
                    break;
                }
            }
            let outcome = send(&client, &cfg, &item).await;
            let result = after_attempt(&cfg, item.attempts, outcome, now_ms());
            match &result {
                OutboxResult::Sent => {
                    tracing::debug!(key = %item.idempotency_key, "outbox: delivered")
                }
                OutboxResult::Retry { error, .. } => {
                    tracing::warn!(key = %item.idempotency_key, %error, "outbox: delivery failed; will retry")
                }
                OutboxResult::Dead { error } => {
                    tracing::error!(key = %item.idempotency_key, request = %item.request_number, %error, "outbox: dead letter; later changes of this request wait")
                }
            }
            if let Err(e) = store.outbox_result(item.id, result).await {
                // The row stays claimed until its lease ends, then is sent again
                // (the portal dedupes on the idempotency key).
                tracing::error!(error = %e, "outbox: could not record a delivery");
            }
        }
    }
}

async fn send(
    client: &reqwest::Client,
    cfg: &OutboxConfig,
    item: &OutboxItem,
) -> Result<u16, Unreachable> {
    let mut req = client
        .post(&cfg.url)
        .header("content-type", "application/json")
        .header("idempotency-key", &item.idempotency_key)
        .body(item.payload.clone());
    if let Some(t) = &cfg.token {
        req = req.bearer_auth(&t.0);
    }
    match req.send().await {
        Ok(r) => Ok(r.status().as_u16()),
        // Without the URL: it may carry credentials.
        Err(e) => Err(Unreachable(e.without_url().to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_stays_out_of_debug_output() {
        let mut cfg = OutboxConfig::new("https://portal");
        cfg.token = Some(Token("s3cret-token".into()));
        assert!(!format!("{cfg:?}").contains("s3cret"));
    }

    #[test]
    fn retry_policy() {
        let cfg = OutboxConfig {
            max_attempts: 4,
            ..OutboxConfig::new("http://portal")
        };
        assert_eq!(after_attempt(&cfg, 0, Ok(201), 0), OutboxResult::Sent);
        assert!(matches!(
            after_attempt(&cfg, 0, Ok(422), 0),
            OutboxResult::Dead { .. }
        ));
        let at = |r| match r {
            OutboxResult::Retry { at_ms, .. } => at_ms,
            other => panic!("{other:?}"),
        };
        assert_eq!(at(after_attempt(&cfg, 0, Ok(503), 0)), 1_000);
        assert_eq!(at(after_attempt(&cfg, 1, Ok(429), 0)), 2_000);
        assert_eq!(
            at(after_attempt(
                &cfg,
                2,
                Err(Unreachable("refused".into())),
                10
            )),
            4_010
        );
        assert!(matches!(
            after_attempt(&cfg, 3, Ok(500), 0),
            OutboxResult::Dead { .. }
        ));
        let capped = OutboxConfig {
            max_attempts: 100,
            ..OutboxConfig::new("http://portal")
        };
        assert_eq!(at(after_attempt(&capped, 40, Ok(500), 0)), 300_000);
    }
}
