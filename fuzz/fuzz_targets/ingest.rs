//! What an agent's stream brings to ingest: the bytes of one `AgentMessage`
//! decoded as tonic decodes them, then a Hello recorded or a Batch filed in
//! the store as the Collector service does (dedupe, products, readings
//! through the filing rules, request rules), and now and then the clock
//! rules run. Bad input may be refused (`StoreError::Invalid`); any other
//! store error is a defect. The first byte's low bit renumbers the batch
//! from a fresh sequence, so that it is filed and not deduplicated.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meterlink_collector::ingest::MAX_BATCH;
use meterlink_collector::store::StoreError;
use meterlink_fuzz::collector::{collector, AGENT};
use meterlink_proto::v1::{agent_message::Kind, AgentMessage};
use prost::Message;
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_SEQ: AtomicU64 = AtomicU64::new(1 << 40);
static RUNS: AtomicU64 = AtomicU64::new(0);

// The store is made (and migrated) before the first input: its second or
// so on PostgreSQL is not an input's time.
fuzz_target!(init: { collector(); }, |data: &[u8]| {
    let [mode, bytes @ ..] = data else {
        return;
    };
    let Ok(msg) = AgentMessage::decode(bytes) else {
        return;
    };
    let c = collector();
    let result = match msg.kind {
        Some(Kind::Hello(h)) => {
            c.rt.block_on(c.store.agent_hello(AGENT, &h.version, h.highest_seq))
                .map(|_| ())
        }
        Some(Kind::Batch(mut b))
            if !b.observations.is_empty() && b.observations.len() <= MAX_BATCH =>
        {
            if mode & 1 == 1 {
                for o in &mut b.observations {
                    o.seq = NEXT_SEQ.fetch_add(1, Ordering::Relaxed);
                }
            }
            let filed = c.rt.block_on(c.store.ingest(AGENT, &b.observations));
            if RUNS.fetch_add(1, Ordering::Relaxed) % 64 == 0 {
                let now = b
                    .observations
                    .iter()
                    .map(|o| o.taken_at_ms)
                    .max()
                    .unwrap_or(0);
                let started = std::time::Instant::now();
                let ticked = c.rt.block_on(c.store.tick(now, i64::MIN));
                // A slow tick is named, so that a timeout is told from it.
                if started.elapsed() > std::time::Duration::from_millis(250) {
                    eprintln!(
                        "the clock's rules took {:?} ({:?} changes)",
                        started.elapsed(),
                        ticked.as_ref().map(|t| t.total())
                    );
                }
                assert!(
                    ticked.is_ok(),
                    "the clock rules failed after a batch: {ticked:?}"
                );
            }
            filed.map(|_| ())
        }
        _ => Ok(()),
    };
    match result {
        Ok(()) | Err(StoreError::Invalid { .. }) => {}
        Err(e) => panic!("ingest failed on what an agent may send: {e:?}"),
    }
});
