//! The collector's metrics, served at `/metrics` in the OpenMetrics text
//! format (prometheus-client): what ingest filed and how long its commits
//! took, the agents connected and their backlog, API calls by route and
//! status with their latency, and, read when scraped, the outbox and the
//! store's connection pool. A leaf: it knows nothing of the rest (C1).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AgentLabel {
    pub agent: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    /// The route's pattern (`/api/v1/products/{serial}`), never the path
    /// itself: serials and ids would make a series each.
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// incident, consumables, device_silent, meter_due, meter_anomaly, ...
    pub kind: String,
    /// opened, occurrence or closed.
    pub change: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.25 ms to about 8 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    pub observations_filed: Counter,
    pub observations_duplicate: Counter,
    pub observations_foreign: Counter,
    pub counter_values_filed: Counter,
    pub counter_values_anomalous: Counter,
    pub request_changes: Counter,
    pub service_requests: Family<RequestLabels, Counter>,
    pub batch_commit_seconds: Histogram,
    pub agents_connected: Gauge,
    pub agent_backlog: Family<AgentLabel, Gauge>,
    pub api_requests: Family<ApiLabels, Counter>,
    pub api_request_seconds: HistogramFamily<RouteLabel>,
    pub outbox_pending: Gauge,
    pub outbox_dead: Gauge,
    pub email_pending: Gauge,
    pub email_dead: Gauge,
    pub store_connections: Gauge,
    pub store_connections_idle: Gauge,
    /// Tasks alive in the collector's async runtime: flat over days, or a leak.
    pub runtime_tasks: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("meterlink");
        let m = Metrics {
            observations_filed: Counter::default(),
            observations_duplicate: Counter::default(),
            observations_foreign: Counter::default(),
            counter_values_filed: Counter::default(),
            counter_values_anomalous: Counter::default(),
            request_changes: Counter::default(),
            service_requests: Family::default(),
            batch_commit_seconds: latency_histogram(),
            agents_connected: Gauge::default(),
            agent_backlog: Family::default(),
            api_requests: Family::default(),
            api_request_seconds: Family::new_with_constructor(latency_histogram),
            outbox_pending: Gauge::default(),
            outbox_dead: Gauge::default(),
            email_pending: Gauge::default(),
            email_dead: Gauge::default(),
            store_connections: Gauge::default(),
            store_connections_idle: Gauge::default(),
            runtime_tasks: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "observations_filed",
            "Observations filed for the first time",
            m.observations_filed.clone(),
        );
        registry.register(
            "observations_duplicate",
            "Observations sent again (after a reconnect, or filed by another replica) and not filed again",
            m.observations_duplicate.clone(),
        );
        registry.register(
            "observations_foreign",
            "Observations of products another account owns than the agent's: kept, not filed",
            m.observations_foreign.clone(),
        );
        registry.register(
            "meter_values_filed",
            "Meter counter values filed as history",
            m.counter_values_filed.clone(),
        );
        registry.register(
            "meter_values_anomalous",
            "Meter counter values kept as anomalies (lower than history, implausible jumps)",
            m.counter_values_anomalous.clone(),
        );
        registry.register(
            "service_request_changes",
            "Service requests opened, updated with an occurrence or closed, at ingest and by the clock",
            m.request_changes.clone(),
        );
        registry.register(
            "service_requests",
            "Service requests opened, updated with an occurrence or closed, at ingest and by the clock, by kind",
            m.service_requests.clone(),
        );
        registry.register(
            "batch_commit_seconds",
            "Time to file one batch, until its commit is durable and the Ack may go",
            m.batch_commit_seconds.clone(),
        );
        registry.register(
            "agents_connected",
            "Agents with a stream open to this collector",
            m.agents_connected.clone(),
        );
        registry.register(
            "agent_backlog_observations",
            "Observations an agent holds that are not acknowledged yet (from its Hello and the Acks)",
            m.agent_backlog.clone(),
        );
        registry.register(
            "api_requests",
            "REST API requests by route, method and status",
            m.api_requests.clone(),
        );
        registry.register(
            "api_request_seconds",
            "REST API request latency by route",
            m.api_request_seconds.clone(),
        );
        registry.register(
            "outbox_pending",
            "Request changes waiting to go to the external portal",
            m.outbox_pending.clone(),
        );
        registry.register(
            "outbox_dead",
            "Request changes the external portal refused for good (dead letters)",
            m.outbox_dead.clone(),
        );
        registry.register(
            "email_pending",
            "E-mail notifications waiting to be sent (or retried)",
            m.email_pending.clone(),
        );
        registry.register(
            "email_dead",
            "E-mail notifications given up (dead letters)",
            m.email_dead.clone(),
        );
        registry.register(
            "store_connections",
            "Connections the store's pool holds",
            m.store_connections.clone(),
        );
        registry.register(
            "store_connections_idle",
            "Of those, idle",
            m.store_connections_idle.clone(),
        );
        registry.register(
            "runtime_tasks",
            "Tasks alive in the collector's async runtime",
            m.runtime_tasks.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts what the rules did to service requests: (kind, change, how many).
    pub fn record_requests<'a>(&self, t: impl IntoIterator<Item = (&'a str, &'a str, u64)>) {
        for (kind, change, n) in t {
            self.service_requests
                .get_or_create(&RequestLabels {
                    kind: kind.to_string(),
                    change: change.to_string(),
                })
                .inc_by(n);
        }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String does not fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The content type of `render`'s text.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of `to_prometheus_text`'s.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub use meterlink_proto::exposition::to_prometheus_text;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_show_what_was_counted() {
        let m = Metrics::new();
        m.observations_filed.inc_by(7);
        m.agent_backlog
            .get_or_create(&AgentLabel {
                agent: "site-1".into(),
            })
            .set(42);
        m.api_requests
            .get_or_create(&ApiLabels {
                route: "/api/v1/products".into(),
                method: "GET".into(),
                status: 200,
            })
            .inc();
        let text = m.render();
        assert!(
            text.contains("meterlink_observations_filed_total 7"),
            "{text}"
        );
        assert!(
            text.contains("meterlink_agent_backlog_observations{agent=\"site-1\"} 42"),
            "{text}"
        );
        assert!(
            text.contains(
                "meterlink_api_requests_total{route=\"/api/v1/products\",method=\"GET\",status=\"200\"} 1"
            ),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");

        let prom = to_prometheus_text(&text);
        assert!(
            prom.contains("# HELP meterlink_observations_filed_total Observations filed"),
            "{prom}"
        );
        assert!(
            prom.contains("# TYPE meterlink_observations_filed_total counter\n"),
            "{prom}"
        );
        assert!(
            prom.contains("# TYPE meterlink_agents_connected gauge\n"),
            "{prom}"
        );
        assert!(
            prom.contains("meterlink_observations_filed_total 7\n"),
            "{prom}"
        );
        assert!(!prom.contains("# EOF"), "{prom}");
    }
}
