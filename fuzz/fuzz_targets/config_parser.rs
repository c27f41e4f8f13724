//! Any text as a config file: a Config or an error naming the file, never
//! a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqtrigger::config::Config;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/fuzz/mqtrigger.toml");
    if let Err(e) = Config::parse(path, text) {
        let shown = e.to_string();
        assert!(
            shown.contains("mqtrigger.toml"),
            "error names no file: {shown}"
        );
        if let Some(line) = e.line {
            assert!(
                (1..=text.matches('\n').count() + 1).contains(&line),
                "line {line} of {shown}"
            );
        }
    }
});
