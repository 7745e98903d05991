//! The agent's metrics (prometheus-client), served on the admin port
//! (`[admin] listen`, loopback only, off unless configured): polls by
//! target group and result, poll duration, what was buffered and
//! acknowledged, and, read when scraped, the buffer's size, the batches in
//! flight, the age of the last ack and the certificate's expiry. A leaf.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PollLabels {
    /// The `[[targets]]` group's name (`name`, else `targets[N]`).
    pub group: String,
    /// ok or failed.
    pub result: String,
}

pub struct AgentMetrics {
    registry: Registry,
    pub polls: Family<PollLabels, Counter>,
    pub poll_seconds: Histogram,
    pub observations_buffered: Counter,
    /// Shared with the uplink, which counts what the collector acknowledged.
    pub observations_acked: Counter,
    pub buffer_bytes: Gauge,
    pub buffer_records: Gauge,
    pub unacked_batches: Gauge,
    pub uplink_connected: Gauge,
    pub last_ack_age_seconds: Gauge,
    pub certificate_expiry_seconds: Gauge,
    /// Tasks alive in the agent's async runtime: flat over days, or a leak.
    pub runtime_tasks: Gauge,
}

impl Default for AgentMetrics {
    fn default() -> Self {
        AgentMetrics::new()
    }
}

impl AgentMetrics {
    pub fn new() -> AgentMetrics {
        let mut r = Registry::with_prefix("meterlink_agent");
        let m = AgentMetrics {
            registry: Registry::default(),
            polls: Family::default(),
            // 10 ms to about 80 s.
            poll_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
            observations_buffered: Counter::default(),
            observations_acked: Counter::default(),
            buffer_bytes: Gauge::default(),
            buffer_records: Gauge::default(),
            unacked_batches: Gauge::default(),
            uplink_connected: Gauge::default(),
            last_ack_age_seconds: Gauge::default(),
            certificate_expiry_seconds: Gauge::default(),
            runtime_tasks: Gauge::default(),
        };
        r.register(
            "polls",
            "Device reads by target group and result (ok, failed)",
            m.polls.clone(),
        );
        r.register(
            "poll_seconds",
            "Time one full read of a device took",
            m.poll_seconds.clone(),
        );
        r.register(
            "observations_buffered",
            "Observations written to the on-disk buffer",
            m.observations_buffered.clone(),
        );
        r.register(
            "observations_acked",
            "Observations the collector acknowledged as durably filed",
            m.observations_acked.clone(),
        );
        r.register(
            "buffer_bytes",
            "Bytes of observations in the buffer, not acknowledged yet",
            m.buffer_bytes.clone(),
        );
        r.register(
            "buffer_records",
            "Observations in the buffer, not acknowledged yet",
            m.buffer_records.clone(),
        );
        r.register(
            "unacked_batches",
            "Batches sent and not acknowledged yet",
            m.unacked_batches.clone(),
        );
        r.register(
            "uplink_connected",
            "1 while a stream to the collector is open",
            m.uplink_connected.clone(),
        );
        r.register(
            "last_ack_age_seconds",
            "Seconds since the collector last acknowledged a batch (-1: none yet)",
            m.last_ack_age_seconds.clone(),
        );
        r.register(
            "certificate_expiry_timestamp_seconds",
            "When the agent's certificate expires, Unix seconds (0: unknown)",
            m.certificate_expiry_seconds.clone(),
        );
        r.register(
            "runtime_tasks",
            "Tasks alive in the agent's async runtime",
            m.runtime_tasks.clone(),
        );
        AgentMetrics { registry: r, ..m }
    }

    /// OpenMetrics text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counters_show_what_was_counted() {
        let m = AgentMetrics::new();
        m.polls
            .get_or_create(&PollLabels {
                group: "floor-2".into(),
                result: "ok".into(),
            })
            .inc_by(3);
        m.observations_buffered.inc_by(12);
        m.poll_seconds.observe(0.2);
        let t = m.render();
        assert!(
            t.contains("meterlink_agent_polls_total{group=\"floor-2\",result=\"ok\"} 3"),
            "{t}"
        );
        assert!(
            t.contains("meterlink_agent_observations_buffered_total 12"),
            "{t}"
        );
        assert!(t.contains("meterlink_agent_poll_seconds_count 1"), "{t}");
    }
}
