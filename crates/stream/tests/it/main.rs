//! Integration tests: byte-exact frames and AWS's own test values; an agent and a client
//! joined by simulated links (loss, duplication, reordering, cuts) in simulated time;
//! corrupted frames; property tests.

// Helpers outside `#[test]` functions fail loudly too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod acks;
mod corrupt;
mod handshake;
mod properties;
mod resume;
mod retransmit;
mod sim;
mod transfer;
mod wire;
