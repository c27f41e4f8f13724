//! The fuzz targets' bodies: each takes libFuzzer's bytes and panics when
//! the code under test breaks a promise. `fuzz/fuzz_targets/*.rs` only call
//! these, and this module's tests replay `fuzz/seeds/<target>/` through the
//! same functions, so the seeds are checked by every `cargo test`, without
//! the instrumented build.

use crate::config_text::{ConfigError, ConfigText};
use crate::filter::Filters;
use crate::stomp::{Frame, Inbound, StompCodec};
use bytes::BytesMut;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use tokio_util::codec::{Decoder, Encoder};
use toml::{Spanned, Table};

/// Bytes from a hostile or broken broker, arriving in arbitrary pieces (the
/// first byte is the piece size). The decoder must never panic, never hold
/// more than its limit, and any frame it returns must survive our own
/// encoder unchanged.
pub fn stomp_decoder(data: &[u8]) {
    const LIMIT: usize = 64 * 1024;
    let Some((&piece, wire)) = data.split_first() else {
        return;
    };
    let piece = usize::from(piece).max(1);
    let mut codec = StompCodec::default();
    codec.max_frame_bytes = LIMIT;
    codec.max_headers = 64;
    let mut buffer = BytesMut::new();
    for chunk in wire.chunks(piece) {
        buffer.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buffer) {
                Ok(Some(Inbound::Frame(frame))) => round_trip(frame),
                Ok(Some(Inbound::HeartBeat)) => {}
                Ok(None) => break,
                // A broken stream ends the connection; nothing more to read.
                Err(_) => return,
            }
        }
        // A frame cannot be over the limit and still incomplete.
        assert!(
            buffer.len() <= LIMIT + piece,
            "buffer grew to {}",
            buffer.len()
        );
    }
}

fn round_trip(frame: Frame) {
    let mut codec = StompCodec::default();
    let mut wire = BytesMut::new();
    if let Err(e) = codec.encode(frame.clone(), &mut wire) {
        // Only CONNECT and CONNECTED go unescaped, and only a line break or
        // a colon in a name cannot be sent that way.
        let unescaped = matches!(frame.command(), "CONNECT" | "CONNECTED");
        let unsendable =
            |(k, v): (&str, &str)| k.contains([':', '\r', '\n']) || v.contains(['\r', '\n']);
        assert!(
            unescaped && frame.headers().any(unsendable),
            "{frame:?}: {e}"
        );
        return;
    }
    match codec.decode(&mut wire) {
        Ok(Some(Inbound::Frame(again))) => {
            assert_eq!(again.command(), frame.command());
            assert_eq!(again.body, frame.body);
            for (name, value) in frame.headers() {
                assert_eq!(
                    again.get(name),
                    frame.get(name),
                    "header {name:?} = {value:?}"
                );
            }
        }
        other => panic!("{frame:?} encoded, then decoded as {other:?}"),
    }
}

/// FilterCriteria patterns as a user (or the API) may send them, and the
/// message bodies they meet: the pattern, a NUL, then the body. Parsing
/// refuses or accepts, matching answers; neither panics, and the two ways of
/// matching agree.
pub fn filter_pattern(data: &[u8]) {
    let (pattern, body) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b"{\"data\":{\"a\":1}}"[..]),
    };
    let pattern = String::from_utf8_lossy(pattern);
    let Ok(filters) = Filters::parse(&[pattern.as_ref()]) else {
        return;
    };
    let matched = filters.matches(body);
    assert_eq!(matched, filters.matching(body).is_some());
}

/// The config file's layout as mqtrigger reads it (`mqtrigger::config`'s
/// `RawConfig`), down to its tables. What is inside them is mqtrigger's
/// types, which this crate does not know; a mapping keeps three of its
/// fields, one of each kind (a string, a number, a list), so type errors
/// inside a table are located too.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Layout {
    #[serde(default)]
    brokers: Vec<Spanned<Table>>,
    // mqtrigger places no error inside a secret, so only its shape is read.
    #[serde(default, rename = "secrets")]
    _secrets: BTreeMap<String, Table>,
    #[serde(default)]
    functions: BTreeMap<String, Spanned<Table>>,
    #[serde(default)]
    mappings: Vec<Spanned<Mapping>>,
    #[serde(default)]
    engine: Table,
    #[serde(default)]
    api: Table,
    #[serde(default)]
    secrets_manager: Table,
    #[serde(default)]
    store: Table,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Mapping {
    #[serde(default)]
    function_name: Option<String>,
    #[serde(default)]
    batch_size: Option<u32>,
    #[serde(default)]
    queues: Option<Vec<String>>,
    #[serde(flatten)]
    rest: Table,
}

/// Any text as a config file, parsed and located the way
/// `mqtrigger::config::Config::parse` does it: an error names the file and
/// a line of the text, never a panic; and on a file that parses, the errors
/// mqtrigger's checks would raise about any of its tables and keys land on a
/// line of the file, the key's own line when it is written there.
///
/// What this does not reach is what mqtrigger's checks decide (a mapping's
/// rules, a function's, the API's hosts): those are mqtrigger's types, and
/// its config tests replay the same seeds through the whole of
/// `Config::parse`.
pub fn config_parser(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = ConfigText::new(Path::new("/fuzz/mqtrigger.toml"), text);
    let layout = match file.deserialize::<Layout>() {
        Ok(layout) => layout,
        Err(e) => return assert_located(&e, text),
    };
    for broker in &layout.brokers {
        assert_located(&file.error_at(Some(broker.span()), "broker"), text);
        for key in broker.get_ref().keys() {
            assert_key_line(&file, broker.span().start, key);
        }
    }
    for (name, function) in &layout.functions {
        let e = file.error_in_table(function.span().start, name, "function");
        assert_located(&e, text);
        for key in function
            .get_ref()
            .keys()
            .map(String::as_str)
            .chain(["timeout"])
        {
            assert_key_line(&file, function.span().start, key);
        }
    }
    for mapping in &layout.mappings {
        let m = mapping.get_ref();
        let named = [
            m.function_name.as_ref().map(|_| "FunctionName"),
            m.batch_size.map(|_| "BatchSize"),
            m.queues.as_ref().map(|_| "Queues"),
        ];
        let keys = m.rest.keys().map(String::as_str);
        for key in keys
            .chain(named.into_iter().flatten())
            .chain(["ScalingConfig", ""])
        {
            assert_key_line(&file, mapping.span().start, key);
        }
    }
    for (name, table) in [
        ("engine", &layout.engine),
        ("api", &layout.api),
        ("secrets_manager", &layout.secrets_manager),
        ("store", &layout.store),
    ] {
        for key in table.keys().map(String::as_str).chain(["region"]) {
            assert_located(&file.error_in_named_table(name, key, name), text);
        }
    }
}

/// An error names the file, and its line, when it has one, is in the text.
fn assert_located(e: &ConfigError, text: &str) {
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

/// The line found for `key` in the table at `start` is the key's own (it
/// holds the key) or, when the key is not written, the table's first.
fn assert_key_line(file: &ConfigText<'_>, start: usize, key: &str) {
    let line = file.key_line(start, key);
    let text = file.text();
    let written = text.split('\n').nth(line - 1);
    assert!(
        line == file.line_of(start) || written.is_some_and(|l| l.contains(key)),
        "{key:?} in the table at byte {start} placed on line {line}: {written:?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A fuzz target's body.
    type Target = fn(&[u8]);

    /// Each target's seeds directory, as scripts/fuzz starts from it.
    const TARGETS: [(&str, Target); 3] = [
        ("stomp_decoder", stomp_decoder),
        ("config_parser", config_parser),
        ("filter_pattern", filter_pattern),
    ];

    fn seeds() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds")
    }

    #[test]
    fn every_seed_passes_its_targets_checks() {
        let mut replayed = 0;
        for (target, run) in TARGETS {
            let dir = seeds().join(target);
            let entries = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|entry| entry.unwrap().path())
                .collect::<Vec<_>>();
            assert!(!entries.is_empty(), "{} has no seeds", dir.display());
            for seed in entries {
                let data = std::fs::read(&seed).unwrap();
                // A panic names the seed, so a failure says which file to read.
                let outcome = std::panic::catch_unwind(|| run(&data));
                assert!(outcome.is_ok(), "{target}: {} failed", seed.display());
                replayed += 1;
            }
        }
        assert!(replayed >= TARGETS.len());
    }

    #[test]
    fn every_seed_directory_is_a_target() {
        for entry in std::fs::read_dir(seeds()).unwrap() {
            let name = entry.unwrap().file_name();
            let name = name.to_string_lossy();
            assert!(
                TARGETS.iter().any(|(target, _)| *target == name),
                "fuzz/seeds/{name} is the seeds of no target this test replays"
            );
        }
    }

    #[test]
    fn the_config_target_sees_a_located_error_and_a_located_key() {
        // A type error inside a mapping, and a file that parses: both are
        // checked without a panic.
        config_parser(b"[[mappings]]\nFunctionName = \"f\"\nBatchSize = \"ten\"\n");
        config_parser(b"[[mappings]]\nFunctionName = \"f\"\n\n[mappings.ScalingConfig]\nMaximumConcurrency = 2\n");
        let file = ConfigText::new(Path::new("/fuzz/mqtrigger.toml"), "\n[engines]\nx = 1\n");
        let e = file.deserialize::<Layout>().map(|_| ()).unwrap_err();
        assert!(e.message.contains("unknown field `engines`"), "{e}");
        assert_eq!(e.line, Some(2), "{e}");
    }
}
