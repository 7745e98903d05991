//! collector.toml as `meterlink-collector check-config` and `serve` read it:
//! parsed, then every setting the server derives from it (without reading
//! the files it names).
#![no_main]

use libfuzzer_sys::fuzz_target;
use meterlink_collector::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(c) = Config::parse("collector.toml", text) else {
        return;
    };
    let _ = c.outbox();
    let _ = c.download_url();
    let _ = c.tick();
    let _ = c.mail();
    let _ = c.sessions();
    let _ = c.cert_lifetime_ms();
    let _ = c.token_ttl_ms();
    let _ = c.email.link_ttls_ms();
    let _ = c.store_url();
    let _ = c.agents_dir();
    let _ = c.agents_recheck();
});
