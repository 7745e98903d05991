//! An SNMP message as a device's answer arrives: v1, v2c and v3 framing,
//! the PDU and its varbinds, and a v3 scoped PDU on its own.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meterlink_agent::snmp::message::{decode_message, peek_id};

fuzz_target!(|data: &[u8]| {
    let _ = peek_id(data);
    let _ = decode_message(data);
});
