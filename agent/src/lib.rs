//! meterlink agent library: SNMP codec and engine, device profiles, discovery.

pub mod observation;
pub mod profile;
pub mod snmp;
