//! The environments file (config.toml).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = btsdr::config::Config::parse(text, "config.toml");
        let _ = btsdr::config::parse_server(text);
    }
});
