//! SNMP: the codec (`ber`, `message`, `usm`, `snmprec`; no IO) and the engine
//! (`engine`; sockets, timeouts, retries, walks). A leaf of the agent's module
//! graph (invariant A2).

pub mod ber;
pub mod engine;
pub mod message;
pub mod snmprec;
pub mod usm;

pub use message::{oid, Oid, Pdu, PduType, Value, VarBind, Version};
