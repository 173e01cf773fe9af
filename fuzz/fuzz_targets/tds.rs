//! The simulator's TDS decoders: what any client may send it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    btsdr_sim::tds::decode_all_for_fuzzing(data);
});
