//! meterlink-sim: serves simulated devices from `.snmprec` recordings.
//!
//! The responder ([`Fleet::handle`]) is pure: a packet and a time in, a
//! packet (or nothing) out. [`serve`] is the IO edge: one UDP socket per
//! simulated device, so every device has its own address as on a real LAN.

mod device;
mod fleet;
mod recording;
mod serve;
#[cfg(test)]
mod tests;

pub use device::{SimConfig, SimDevice};
pub use fleet::Fleet;
pub use recording::{Fault, Recording, UnknownFault};
pub use serve::{control, serve};
