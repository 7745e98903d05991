//! meterlink agent library: SNMP codec and engine, device profiles, discovery.

pub mod buffer;
pub mod cli;
pub mod config;
pub mod connect;
pub mod daemon;
pub mod discovery;
pub mod identity;
pub mod known;
pub mod metrics;
pub mod observation;
pub mod poll;
pub mod profile;
pub mod range;
pub mod schedule;
pub mod snmp;
pub mod uplink;
