//! A runbook file: the loader returns diagnostics, never panics or overflows the stack.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = btsdr::runbook::loader::parse_with("fuzz.toml", text, None, &|_, _| None);
    }
});
