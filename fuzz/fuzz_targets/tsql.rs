//! The simulator's T-SQL lexer and parser: any batch text a client sends.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(toks) = btsdr_sim::model::lex::lex(text) {
            let _ = btsdr_sim::model::parse::parse_batch(&toks);
        }
    }
});
