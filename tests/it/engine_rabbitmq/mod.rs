//! The engine end to end against the real RabbitMQ, with a real function
//! process, a file per theme.

mod connections;
mod dead_letters;
mod delivery;
mod run_time_changes;
mod stop_codes;
