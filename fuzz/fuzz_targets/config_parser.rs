//! Any text as a config file: a value or an error naming the file and a line
//! of it, never a panic. See `mqtrigger_parse::fuzzing::config_parser` for
//! what is checked, and what is left to mqtrigger's own config tests.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mqtrigger_parse::fuzzing::config_parser(data));
