//! The client against the real server (in-process, SQLite in a temp dir) and a small test
//! agent; the `portcullis` binary as a subprocess when it has been built.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod agent;
mod bridge;
mod cli;
mod config_chain;
mod faults;
mod loss;
mod proxy;
mod real_agent;
mod server_bugs;
mod sessions;
mod world;
