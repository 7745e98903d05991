//! The admin port: `/metrics` (OpenMetrics when asked for, else
//! Prometheus text) and `/healthz`, on a loopback address. What is read
//! when scraped (buffer size, batches in flight, last ack, certificate)
//! is read then.

use crate::buffer::{Buffer, SledBuffer};
use crate::identity::IdentityStatus;
use crate::metrics::AgentMetrics;
use crate::uplink::UplinkStatus;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What a scrape reads.
#[derive(Clone)]
pub struct Scraped {
    pub metrics: Arc<AgentMetrics>,
    pub buffer: Arc<SledBuffer>,
    pub uplink: Arc<UplinkStatus>,
    pub identity: Option<Arc<IdentityStatus>>,
    /// Expiry of a certificate from files (not renewed), ms.
    pub fixed_expiry_ms: Option<i64>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

async fn metrics(State(s): State<Scraped>, headers: HeaderMap) -> Response {
    let m = &s.metrics;
    let b = s.buffer.clone();
    if let Ok(st) = tokio::task::spawn_blocking(move || b.stats()).await {
        m.buffer_bytes.set(st.bytes as i64);
        m.buffer_records.set(st.count as i64);
    }
    m.unacked_batches
        .set(s.uplink.in_flight.load(Ordering::Relaxed) as i64);
    m.uplink_connected
        .set(i64::from(s.uplink.state() == "connected"));
    let last = s.uplink.last_ack_at_ms.load(Ordering::Relaxed) as i64;
    m.last_ack_age_seconds.set(if last > 0 {
        (now_ms() - last).max(0) / 1000
    } else {
        -1
    });
    let expiry = s
        .identity
        .as_ref()
        .map(|i| i.expires_at_ms.load(Ordering::Relaxed))
        .filter(|e| *e > 0)
        .or(s.fixed_expiry_ms);
    m.certificate_expiry_seconds.set(expiry.unwrap_or(0) / 1000);
    m.runtime_tasks.set(
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks() as i64,
    );
    let text = m.render();
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    if openmetrics {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            meterlink_proto::exposition::to_prometheus_text(&text),
        )
            .into_response()
    }
}

/// Binds `addr` and serves until `shutdown`; a bind failure is logged and
/// the agent goes on without its admin port.
pub async fn serve(
    addr: SocketAddr,
    scraped: Scraped,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Option<SocketAddr> {
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(%addr, error = %e, "cannot listen on the admin port; metrics are not served");
            return None;
        }
    };
    let bound = listener.local_addr().ok();
    let app = axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(scraped);
    tokio::spawn(async move {
        let r = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = shutdown.changed().await;
            })
            .await;
        if let Err(e) = r {
            tracing::error!(error = %e, "admin port stopped");
        }
    });
    tracing::info!(addr = ?bound, "admin port: /metrics and /healthz");
    bound
}
