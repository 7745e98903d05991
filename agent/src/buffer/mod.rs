//! Store and forward: every observation is kept on disk, under a sequence
//! number, until the collector acknowledges it.
//!
//! The rest of the agent sees only the [`Buffer`] trait; [`SledBuffer`] is the
//! engine behind it today. Its calls block (they may fsync): async callers run
//! them on a blocking thread.

pub mod sled_buffer;
#[cfg(test)]
mod tests;

pub use sled_buffer::SledBuffer;

use meterlink_proto::v1::{observation::Body, Observation};

#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    #[error("buffer storage at {path} failed: {source} (check free disk space and permissions)")]
    Storage { path: String, source: sled::Error },
    #[error("buffer record {seq} cannot be decoded: {what}")]
    Corrupt { seq: u64, what: String },
}

/// What the buffer holds, for `status` and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BufferStats {
    pub count: u64,
    pub bytes: u64,
    pub oldest_seq: Option<u64>,
    pub oldest_taken_at_ms: Option<i64>,
    pub next_seq: u64,
    pub last_ack: u64,
    /// Status, supply and identity observations dropped to stay within the bound.
    pub dropped: u64,
    /// Meter readings merged into a newer reading of the same device.
    pub coalesced: u64,
}

pub trait Buffer: Send + Sync {
    /// Assigns sequence numbers to `obs`, stores them, and makes them durable
    /// before returning. Returns the sequence numbers assigned.
    fn append(&self, obs: Vec<Observation>) -> Result<Vec<u64>, BufferError>;
    /// Up to `max_count` observations (and about `max_bytes`) with seq > `after`, in order.
    fn read(
        &self,
        after: u64,
        max_count: usize,
        max_bytes: usize,
    ) -> Result<Vec<Observation>, BufferError>;
    /// Deletes every observation with seq <= `upto`. Returns how many went.
    fn ack(&self, upto: u64) -> Result<u64, BufferError>;
    fn stats(&self) -> BufferStats;
}

/// The kind of an observation, for the eviction policy.
pub fn is_meter(o: &Observation) -> bool {
    matches!(o.body, Some(Body::Meter(_)))
}

/// The device an observation is about: its serial, or its address.
pub fn device_key(o: &Observation) -> String {
    if o.serial.is_empty() {
        format!("addr:{}", o.device_address)
    } else {
        format!("serial:{}", o.serial)
    }
}
