//! agent.toml as `meterlink-agent check-config` and `run` read it (parsed
//! and validated: credentials, targets, ranges, schedules, limits), and the
//! settings a collector pushes, validated against the example agent.toml.
//! The first byte's low bit picks which.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meterlink_agent::config::{AgentConfig, Validated};
use std::sync::OnceLock;

fn example() -> &'static Validated {
    static V: OnceLock<Validated> = OnceLock::new();
    V.get_or_init(|| {
        AgentConfig::parse(
            "agent.toml",
            include_str!("../../deploy/examples/agent.toml"),
        )
        .expect("the example agent.toml is valid")
    })
}

fuzz_target!(|data: &[u8]| {
    let [mode, bytes @ ..] = data else {
        return;
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    if mode & 1 == 0 {
        let _ = AgentConfig::parse("agent.toml", text);
    } else {
        let _ = example().with_pushed("fuzz", text);
    }
});
