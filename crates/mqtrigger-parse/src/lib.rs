//! mqtrigger's parsers of text it does not control: what a broker sends
//! ([`stomp`], the STOMP 1.2 frame codec), what a user or the API sends
//! ([`filter`], Lambda's FilterCriteria patterns), and the config file
//! ([`config_text`], TOML to a value or an error with the file and line).
//!
//! They are a crate of their own so the fuzz targets in `fuzz/` build them,
//! instrumented, without the rest of mqtrigger (the AWS SDK, lapin, rustls,
//! SQLite, ratatui). mqtrigger re-exports them where they used to live:
//! `mqtrigger::source::stomp`, `mqtrigger::filter`, and
//! `mqtrigger::config::ConfigError`.

pub mod config_text;
pub mod filter;
pub mod stomp;

// The fuzz targets' bodies are compiled for fuzz/ (the `fuzzing` feature)
// and for this crate's tests, which replay fuzz/seeds through them; the
// service never carries their assertions.
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
