//! The agent against real and simulated devices: conformance to the
//! recordings, profiles, real SNMP peers, hostile devices, simulated
//! network faults, the uplink through a proxy, the bound on unacknowledged
//! data.

mod conformance;
mod connect;
mod hostile;
mod profiles;
mod real_peers;
mod sim_faults;
