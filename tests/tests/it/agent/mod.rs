//! The agent against real and simulated devices: conformance to the
//! recordings, profiles, real SNMP peers, hostile devices, simulated
//! network faults, the uplink through a proxy.

mod conformance;
mod hostile;
mod profiles;
mod proxy;
mod real_peers;
mod sim_faults;
