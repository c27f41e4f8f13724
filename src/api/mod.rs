//! Lambda's event-source-mapping REST API over [`crate::engine::Control`].

pub mod sigv4;
