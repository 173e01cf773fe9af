//! `when` conditions, check predicates, assertions and templates.
#![no_main]
use btsdr::runbook::expr::{Assertion, Cond, Predicate, parse_template, render_text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(c) = Cond::parse(text) {
            let _ = c.eval(&|_| Some("1".into()));
        }
        let _ = Predicate::parse(text);
        for kind in ["rows", "each", "any", "none"] {
            let _ = Assertion::parse(kind, text, "m");
        }
        let _ = parse_template(text);
        let _ = render_text(text, &|_| Some("v".into()));
    }
});
