//! The service-request rules file (TOML, `[requests] rules`): parsed and
//! checked, then applied to the status of each project recording.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meterlink_collector::requests::{conditions, Rules};
use meterlink_fuzz::statuses;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(rules) = Rules::parse("rules.toml", text) else {
        return;
    };
    for s in statuses() {
        let _ = conditions(&rules, s);
    }
});
