//! Outage: the collector is down while the agent polls; the buffer holds
//! its bound (status and supplies go first, meter readings are merged, never
//! lost); when the collector returns the backlog drains in sequence order.
//! The same scenario at full scale (10,000 devices, a million observations):
//! `meterlink-bench outage` (BENCHMARKS.md).

use meterlink_tests::outage::{run, OutageParams};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_down_buffer_holds_its_bound_then_drains_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let p = OutageParams {
        devices: 300,
        min_observations: 12_000,
        bound_bytes: 3 << 20,
        first: "127.91.0.1".parse().unwrap(),
        limit: Duration::from_secs(240),
        postgres: None,
    };
    let r = run(&p, tmp.path()).await;
    r.print();
    assert!(r.appended >= p.min_observations);
    assert!(r.dropped > 0, "the bound was reached: {r:?}");
    assert!(
        r.max_backlog_bytes <= p.bound_bytes,
        "backlog {} over the bound {}",
        r.max_backlog_bytes,
        p.bound_bytes
    );
    assert_eq!(
        r.filed, r.backlog_count,
        "every buffered observation filed once"
    );
    assert_eq!(r.out_of_order, 0, "filed in sequence order");
    assert_eq!(r.products, p.devices);
    assert_eq!(r.wrong_values, 0, "every device's latest counter filed");
}
