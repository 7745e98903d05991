//! An SNMP message as a device's answer arrives: v1, v2c and v3 framing,
//! the PDU and its varbinds, and a v3 scoped PDU on its own. A v1/v2c
//! message that decodes must encode to bytes that decode to the same
//! message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meterlink_agent::snmp::message::{decode_message, peek_id, Message, ScopedPdu};

fuzz_target!(|data: &[u8]| {
    let _ = peek_id(data);
    let _ = ScopedPdu::decode(data);
    if let Ok(Message::Community(m)) = decode_message(data) {
        let again = decode_message(&m.encode());
        match again {
            Ok(Message::Community(a)) => assert_eq!(a, m, "re-encoding changed the message"),
            other => panic!("a decoded message does not decode once encoded: {other:?}"),
        }
    }
});
