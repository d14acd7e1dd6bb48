//! Integration tests: signatures from the AWS Rust SDK's signer and AWS's own test vectors,
//! verified by our code; protocol detection; error bodies parsed back.

// Helpers outside `#[test]` functions fail loudly too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod errors;
mod protocol;
mod sdk;
mod suite;
mod suite_data;
