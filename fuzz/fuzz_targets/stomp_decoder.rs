//! Bytes from a hostile or broken broker, arriving in arbitrary pieces: see
//! `mqtrigger_parse::fuzzing::stomp_decoder` for what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mqtrigger_parse::fuzzing::stomp_decoder(data));
