//! A global packet rate limit (`max_pps`): each packet takes the next free
//! slot, spaced `1 / max_pps` apart, so a scan never floods a LAN.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(super) struct Pacer {
    gap: Duration,
    /// The next instant a packet may leave.
    next: Mutex<Instant>,
}

impl Pacer {
    /// None when there is no limit.
    pub(super) fn new(max_pps: Option<u32>) -> Option<Pacer> {
        max_pps.filter(|r| *r > 0).map(|r| Pacer {
            gap: Duration::from_secs_f64(1.0 / r as f64),
            next: Mutex::new(Instant::now()),
        })
    }

    /// Waits for this packet's slot.
    pub(super) async fn wait(&self) {
        let slot = {
            let mut n = self.next.lock().expect("pacer lock");
            let slot = (*n).max(Instant::now());
            *n = slot + self.gap;
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }
}
