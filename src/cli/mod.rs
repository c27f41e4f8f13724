//! The binary's own parts (not the library's): its log, `serve`, and the
//! API client commands. `main.rs` reads the command line and routes.

pub mod drain;
pub mod letters;
pub mod logging;
pub mod publish;
pub mod remote;
pub mod serve;
