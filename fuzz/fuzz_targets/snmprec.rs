//! A recording in snmpsim's .snmprec format, as the simulator and the
//! conformance tests read it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meterlink_agent::snmp::snmprec;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = snmprec::parse_lenient("fuzz.snmprec", text);
        let _ = snmprec::parse("fuzz.snmprec", text);
    }
});
