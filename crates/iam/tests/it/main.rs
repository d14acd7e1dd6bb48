//! Integration tests for the policy engine: one test binary, one module per concern.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod conformance;
mod malformed;
mod properties;
mod seed;
