//! FilterCriteria patterns and the message bodies they meet (the pattern, a
//! NUL, then the body): see `mqtrigger_parse::fuzzing::filter_pattern` for
//! what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mqtrigger_parse::fuzzing::filter_pattern(data));
