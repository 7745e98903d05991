//! The BER reader on any bytes: every TLV, nested as deep as the bytes
//! say (bounded), and the integer decoders; nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meterlink_agent::snmp::ber::{decode_signed, decode_unsigned, Reader};

fn walk(mut r: Reader, depth: u32) {
    while !r.is_empty() {
        let Ok((tag, inner)) = r.read_tlv() else {
            return;
        };
        let bytes = inner.bytes();
        let _ = decode_signed(bytes);
        let _ = decode_unsigned(bytes, 9);
        // Constructed types (bit 5) hold TLVs of their own.
        if tag & 0x20 != 0 && depth < 32 {
            walk(inner, depth + 1);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    walk(Reader::new(data), 0);
});
