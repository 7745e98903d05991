//! Tables for people: a device reading, a discovery scan, the status.

use crate::daemon::StatusReport;
use crate::discovery::Found;
use crate::observation::DeviceReading;
use std::fmt::Write;

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("-")
}

/// The human-readable form of a reading.
pub fn render_table(r: &DeviceReading) -> String {
    let mut o = String::new();
    let id = &r.identity;
    let _ = writeln!(
        o,
        "Device {} ({}, profile {})",
        r.address, r.snmp_version, r.profile
    );
    for (k, v) in [
        ("Vendor", &id.vendor),
        ("Model", &id.model),
        ("Serial", &id.serial),
        ("Firmware", &id.firmware),
        ("MAC", &id.mac),
        ("sysObjectID", &id.sys_object_id),
        ("sysDescr", &id.sys_descr),
    ] {
        let _ = writeln!(o, "  {k:<12} {}", opt(v));
    }
    let _ = writeln!(o, "\nCounters");
    if r.counters.is_empty() {
        let _ = writeln!(o, "  (none)");
    } else {
        let w = r
            .counters
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let _ = writeln!(o, "  {:<14} {:<w$} {:>12}  UNIT", "ID", "NAME", "VALUE");
        for c in &r.counters {
            let _ = writeln!(
                o,
                "  {:<14} {:<w$} {:>12}  {}",
                c.id, c.name, c.value, c.unit
            );
        }
    }
    if !r.derived.is_empty() {
        let _ = writeln!(o, "\nTotals");
        for d in &r.derived {
            let _ = writeln!(
                o,
                "  {:<14} {:>12}  = {}",
                d.id,
                d.value,
                d.from.join(" + ")
            );
        }
    }
    let _ = writeln!(o, "\nSupplies");
    if r.supplies.is_empty() {
        let _ = writeln!(o, "  (none)");
    }
    for s in &r.supplies {
        let pct = s
            .percent
            .map(|p| format!("{p}%"))
            .unwrap_or_else(|| "-".into());
        let lvl = s.level.map(|l| l.to_string()).unwrap_or_else(|| "-".into());
        let max = s.max.map(|l| l.to_string()).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            o,
            "  {:>2} {:<28} {:<16} {:>6}/{:<6} {:>5} {}",
            s.index, s.description, s.kind, lvl, max, pct, s.state
        );
    }
    let st = &r.status;
    let _ = writeln!(o, "\nStatus");
    let _ = writeln!(
        o,
        "  device {}, printer {}",
        opt(&st.device),
        opt(&st.printer)
    );
    let _ = writeln!(
        o,
        "  errors: {}",
        if st.errors.is_empty() {
            "none".into()
        } else {
            st.errors.join(", ")
        }
    );
    if st.alerts.is_empty() {
        let _ = writeln!(o, "  alerts: none");
    }
    for a in &st.alerts {
        let _ = writeln!(
            o,
            "  alert {}: {} {} ({}), {} / {}: {}",
            a.index, a.severity, a.code_name, a.code, a.group, a.training_level, a.description
        );
    }
    for line in &st.console {
        let _ = writeln!(o, "  console: {line}");
    }
    o
}

/// The discovery table, one row per address shown.
pub fn render_discovery(shown: &[&Found]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<22} {:<8} {:<6} {:<12} {:<16} {:<24} {:<16} SYSDESCR",
        "ADDRESS", "KIND", "SNMP", "PROFILE", "VENDOR", "MODEL", "SERIAL"
    );
    for f in shown {
        let o = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "{:<22} {:<8} {:<6} {:<12} {:<16} {:<24} {:<16} {}",
            f.address,
            f.kind.as_str(),
            o(&f.snmp_version),
            o(&f.profile),
            o(&f.vendor),
            o(&f.model),
            o(&f.serial),
            o(&f.sys_descr)
        );
    }
    out
}

/// `meterlink-agent status`: the running agent's status file for people.
pub fn render_status(r: &StatusReport) -> String {
    let age = |ms: i64| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        format!("{:.0} s ago", (now - ms).max(0) as f64 / 1000.0)
    };
    let mut o = String::new();
    let _ = writeln!(o, "agent {} (status {})", r.agent_id, age(r.updated_at_ms));
    let _ = writeln!(o, "  connection   {}", r.connection);
    let _ = writeln!(
        o,
        "  last ack     seq {}{}",
        r.last_ack,
        if r.last_ack_at_ms > 0 {
            format!(", {}", age(r.last_ack_at_ms as i64))
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        o,
        "  backlog      {} observations, {} bytes{}",
        r.backlog_count,
        r.backlog_bytes,
        r.oldest_taken_at_ms
            .map(|t| format!(", oldest taken {}", age(t)))
            .unwrap_or_default()
    );
    if let (Some(p50), Some(p99)) = (r.ack_latency_p50_ms, r.ack_latency_p99_ms) {
        let _ = writeln!(
            o,
            "  poll to ack  p50 {p50} ms, p99 {p99} ms (recent observations)"
        );
    }
    let _ = writeln!(
        o,
        "  dropped      {} status/supply observations, {} meter readings merged",
        r.dropped, r.coalesced
    );
    let _ = writeln!(
        o,
        "  devices      {} (last poll: {} read, {} failed, {:.1} s)",
        r.devices,
        r.last_poll_read,
        r.last_poll_failed,
        r.last_poll_ms as f64 / 1000.0
    );
    if !r.config_version.is_empty() {
        let _ = writeln!(
            o,
            "  config       pushed by the collector, version {}",
            r.config_version
        );
    }
    if let Some(end) = r.cert_expires_at_ms {
        let at = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default()
        };
        let renew = r
            .cert_renew_at_ms
            .map(|t| format!(", renewed from {}", at(t)))
            .unwrap_or_default();
        let _ = writeln!(o, "  certificate  valid until {}{renew}", at(end));
    }
    if let Some(e) = &r.cert_error {
        let _ = writeln!(o, "  certificate  renewal failed: {e}");
    }
    if let Some(e) = &r.config_error {
        let _ = writeln!(o, "  config error {e}");
    }
    if let Some(e) = &r.last_error {
        let _ = writeln!(o, "  last error   {e}");
    }
    o
}
