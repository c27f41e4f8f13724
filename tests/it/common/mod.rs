//! Shared helpers for the tests that run against the real brokers, a file
//! per concept; everything is re-exported here, so a test's
//! `use crate::common::*` reaches all of it.

mod amqp;
mod clients;
mod database;
mod engine;
mod events;
mod publish;
mod serve;
mod setup;
mod stomp;
mod wait;

pub use amqp::*;
pub use clients::*;
pub use database::*;
pub use engine::*;
pub use events::*;
pub use publish::*;
pub use serve::*;
pub use setup::*;
pub use stomp::*;
pub use wait::*;
