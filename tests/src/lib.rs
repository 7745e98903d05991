//! meterlink-sim, the SNMP device simulator, and helpers for the end-to-end
//! tests: real peers (snmpsim, net-snmp snmpd) started on loopback.

pub mod fault_proxy;
pub mod http;
pub mod outage;
pub mod peers;
pub mod stack;
