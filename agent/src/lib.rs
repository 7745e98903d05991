//! meterlink agent library: SNMP codec and engine, device profiles, discovery.

pub mod snmp;
