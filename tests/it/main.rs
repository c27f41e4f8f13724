//! mqtrigger's integration tests, in one binary: `common` (the brokers,
//! the functions, the running engine) compiles once instead of once per
//! file, and the linker runs once. nextest still runs each test in a
//! process of its own, so tests share nothing but the brokers; each uses
//! queues of its own. Run one module's tests (a file, or a folder of them)
//! with a filter on its path: `cargo nextest run -E 'test(/^api::/)'`.

mod common;

mod api;
mod attach;
mod bench_smoke;
mod bootstrap;
mod cli;
mod competing;
mod concurrency;
mod console_snapshots;
mod console_tmux;
mod control_plane;
mod destinations;
mod drain;
mod engine_activemq;
mod engine_filter;
mod engine_lambda;
mod engine_rabbitmq;
mod faults;
mod filter_table;
mod flow;
mod invoke_command;
mod invoke_lambda;
mod item_failures;
mod metrics_flood;
mod properties;
mod republish_types;
mod runtime_api;
mod several_queues;
mod shared_connections;
mod sigkill;
mod store_postgres;
mod tls_rabbitmq;
mod traces;
mod validation_table;
