#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

//! Integration tests: the linter's rules, and the access matrix over a generated fleet in
//! the real store, checked against brute-force evaluation and the server's authorizer.

mod diff;
mod expect;
mod lint;
mod matrix;
mod world;
