//! SNMP: the codec (`ber`, `message`, `usm`; no IO) and the engine (`engine`;
//! sockets, timeouts, retries, walks).

pub mod ber;
pub mod engine;
pub mod message;
pub mod snmprec;
pub mod usm;

pub use message::{oid, Oid, Pdu, PduType, Value, VarBind, Version};
