//! A device profile file (TOML) as `[agent] profiles_dir` adds it: parsed,
//! resolved with the embedded profiles (it may extend or replace one), and
//! then driving a read of each project recording: recognition, the walk
//! plan, and the observation the profile makes of what was read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meterlink_agent::observation::to_observations;
use meterlink_agent::profile::{observe, read_recording, ProfileSet};
use meterlink_fuzz::recordings;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(set) = ProfileSet::with_overrides([("fuzz.toml".to_string(), text.to_string())]) else {
        return;
    };
    for rec in recordings() {
        let read = read_recording(&set, rec);
        if let Some(p) = read.profile {
            let reading = observe(p, &read.snapshot, "192.0.2.1:161", "2c");
            let _ = to_observations(&reading, 1_790_000_000_000, true);
        }
    }
});
