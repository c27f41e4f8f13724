//! The config file's text: TOML turned into a value, and every mistake in it
//! turned into an error that names the file, the line and the key.
//!
//! mqtrigger's `config` module owns what the file means (its types and
//! checks); this module owns where in the text a mistake is, which is the
//! part that reads arbitrary input: toml's parser, and the search for a key's
//! line from toml's byte offsets.

use serde::de::DeserializeOwned;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A config file that could not be used: names the file, the line and what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

/// A config file's text and where it came from, to parse it and to place
/// errors in it.
#[derive(Debug, Clone, Copy)]
pub struct ConfigText<'a> {
    path: &'a Path,
    text: &'a str,
}

impl<'a> ConfigText<'a> {
    pub fn new(path: &'a Path, text: &'a str) -> Self {
        ConfigText { path, text }
    }

    pub fn path(&self) -> &'a Path {
        self.path
    }

    pub fn text(&self) -> &'a str {
        self.text
    }

    /// The whole file as a `T`. A syntax or type error names its line and,
    /// when the error is about a value, the key it is written under.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        toml::from_str(self.text).map_err(|e| {
            // toml's own message repeats the source; the first line of
            // `message()` is the part a user needs.
            let message = e.message().trim();
            let message = match e.span().and_then(|s| key_of_value_at(self.text, s.start)) {
                Some(key) => format!("{key}: {message}"),
                None => message.to_owned(),
            };
            self.error_at(e.span(), message)
        })
    }

    /// An error about what toml found at `span` (a table, a value), or about
    /// the whole file when there is no span.
    pub fn error_at(&self, span: Option<Range<usize>>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: self.path.to_owned(),
            line: span.map(|s| self.line_of(s.start)),
            message: message.into(),
        }
    }

    /// An error about `key` in the table that starts at byte `start` (its
    /// span's start), on the key's line.
    pub fn error_in_table(
        &self,
        start: usize,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            path: self.path.to_owned(),
            line: Some(self.key_line(start, key)),
            message: message.into(),
        }
    }

    /// An error about `key` in the `[name]` table: on the key's line when the
    /// file has the table, else of the whole file (the table's defaults).
    pub fn error_in_named_table(
        &self,
        name: &str,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            path: self.path.to_owned(),
            line: table_start(self.text, name).map(|start| self.key_line(start, key)),
            message: message.into(),
        }
    }

    /// The line where `key` is written inside the table that starts at
    /// `start`; the table's first line when the key is not written.
    pub fn key_line(&self, start: usize, key: &str) -> usize {
        key_line(self.text, start, key)
    }

    /// The line (from 1) of byte `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        line_of(self.text, offset)
    }
}

fn key_line(text: &str, start: usize, key: &str) -> usize {
    let header_of = |line: &str| {
        let line = line.trim();
        line.starts_with('[').then(|| {
            line.trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_owned()
        })
    };
    let rest = text.get(start..).unwrap_or_default();
    // Sub-tables of the table (`[mappings.ScalingConfig]` under
    // `[[mappings]]`) are searched too: a key may be written as one.
    let table = rest.lines().next().and_then(header_of);
    let own_key = table.as_ref().map(|t| format!("{t}.{key}"));
    // toml's span of an array-of-tables entry may cover only its header, so
    // search on to the next table header that is not a sub-table.
    let mut offset = start;
    for (i, line) in rest.split_inclusive('\n').enumerate() {
        let line_text = line.trim();
        if let Some(header) = header_of(line).filter(|_| i > 0) {
            let is_own = own_key
                .as_ref()
                .is_some_and(|k| header == *k || header.starts_with(&format!("{k}.")));
            if !key.is_empty() && is_own {
                return line_of(text, offset);
            }
            match &table {
                Some(t) if header.starts_with(&format!("{t}.")) => {
                    offset += line.len();
                    continue;
                }
                _ => break,
            }
        }
        let rest = line_text
            .strip_prefix(key)
            .or_else(|| line_text.strip_prefix(&format!("\"{key}\"")));
        if !key.is_empty() && rest.is_some_and(|r| r.trim_start().starts_with('=')) {
            return line_of(text, offset);
        }
        offset += line.len();
    }
    line_of(text, start)
}

/// Where the `[name]` table starts, if the file has one.
fn table_start(text: &str, name: &str) -> Option<usize> {
    let header = format!("[{name}]");
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim() == header {
            return Some(offset);
        }
        offset += line.len();
    }
    None
}

/// The key whose value starts at `offset` (`BatchSize = "ten"` → `BatchSize`),
/// so a type error from serde, which names only the types, names the field.
fn key_of_value_at(text: &str, offset: usize) -> Option<&str> {
    let before = text.get(..offset)?;
    let line = &before[before.rfind('\n').map_or(0, |n| n + 1)..];
    let (key, between) = line.rsplit_once('=')?;
    if !between.chars().all(|c| c.is_whitespace() || c == '[') {
        return None;
    }
    let key = key
        .trim_end()
        .rsplit(|c: char| c.is_whitespace() || c == '{' || c == ',')
        .next()?
        .trim_matches('"');
    (!key.is_empty()).then_some(key)
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
[[mappings]]
FunctionName = \"echo\"
BatchSize = 10

[mappings.ScalingConfig]
MaximumConcurrency = 2

[[mappings]]
FunctionName = \"other\"

[engine]
retry_initial_ms = 10
";

    fn file(text: &str) -> ConfigText<'_> {
        ConfigText::new(Path::new("t.toml"), text)
    }

    #[test]
    fn a_key_is_found_in_its_table_and_its_sub_tables_only() {
        let f = file(FILE);
        assert_eq!(f.key_line(0, "BatchSize"), 3);
        assert_eq!(f.key_line(0, "ScalingConfig"), 5, "a sub-table's header");
        // The second mapping has no BatchSize: its own first line, not the
        // first mapping's key.
        let second = FILE.rfind("[[mappings]]").unwrap();
        assert_eq!(f.key_line(second, "BatchSize"), 8);
        assert_eq!(f.key_line(second, ""), 8);
        let e = f.error_in_named_table("engine", "retry_initial_ms", "too short");
        assert_eq!(e.line, Some(12), "{e}");
        let e = f.error_in_named_table("api", "region", "not a region");
        assert_eq!(e.line, None, "{e}");
        assert_eq!(e.to_string(), "t.toml: not a region");
    }

    #[test]
    fn a_type_error_names_its_key_and_line() {
        #[derive(Debug, serde::Deserialize)]
        struct File {
            mappings: Vec<Mapping>,
        }
        #[derive(Debug, serde::Deserialize)]
        struct Mapping {
            #[serde(rename = "BatchSize")]
            batch_size: Option<u32>,
        }
        let parsed = file(FILE).deserialize::<File>().unwrap();
        assert_eq!(parsed.mappings[0].batch_size, Some(10));
        assert_eq!(parsed.mappings[1].batch_size, None);
        let text = FILE.replace("BatchSize = 10", "BatchSize = \"ten\"");
        let e = file(&text).deserialize::<File>().unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.to_string().starts_with("t.toml:3: BatchSize: "), "{e}");
        assert_eq!(key_of_value_at("a = { b = [", 11), Some("b"));
        assert_eq!(key_of_value_at("x = 1\ny = 2", 6), None, "a line's start");
    }

    #[test]
    fn offsets_past_the_end_or_inside_a_character_stay_in_the_file() {
        let text = "é = 1\n";
        assert_eq!(line_of(text, 1), 1);
        assert_eq!(line_of(text, 100), 2);
        assert_eq!(key_line(text, 1, "é"), 1);
        assert_eq!(key_of_value_at(text, 1), None);
    }
}
