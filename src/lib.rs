//! mqtrigger: event source mappings from RabbitMQ and ActiveMQ queues to
//! functions, with the exact events AWS Lambda's Amazon MQ trigger delivers.
//!
//! The data flow of one mapping: `source` → (filter) → `engine::batch` →
//! `event` → `invoke` → outcome (ack, retry, dead letter). The engine is a
//! library; the CLI drives it through [`engine::Control`].

pub mod api;
pub mod aws;
pub mod bench;
pub mod config;
pub mod config_file;
pub mod console;
pub mod engine;
pub mod error_text;
pub mod event;
pub mod invoke;
pub mod mapping;
pub mod metrics;
pub mod publish;
pub mod secrets;
pub mod source;
pub mod stamps;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod trace;
pub mod validation;

// The parsers of untrusted text live in a crate of their own
// (crates/mqtrigger-parse), which the fuzz targets build without the rest of
// mqtrigger; their old paths stay: `mqtrigger::filter`,
// `mqtrigger::source::stomp`, and `mqtrigger::config::ConfigError`.
pub use mqtrigger_parse::filter;
