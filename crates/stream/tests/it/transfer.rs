//! Agent ↔ client through lossy, duplicating, reordering links: everything arrives in order
//! exactly once, acknowledgements drain every buffer, and the retransmission timeout follows
//! the round trip.

use std::time::Duration;

use portcullis_stream::{Config, Event, SizeData};

use crate::sim::{data, produce_input, produce_output, Link, Pair, Producer, MS};

const MEGABYTE: usize = 1 << 20;

fn lossy_transfer(seed: u64, ack_delay: Duration) {
    let link = |s| Link::new(s, 10 * MS, 15 * MS, 0.10, 0.05);
    let config = || Config {
        ack_delay,
        ..crate::sim::config()
    };
    let mut pair = Pair::new(
        config(),
        config(),
        link(seed),
        link(seed.wrapping_mul(31).wrapping_add(7)),
    );
    let mut output = Producer::new(data(MEGABYTE, seed), 4096);
    let mut input = Producer::new(data(64 * 1024, seed + 1), 100);

    // The client sends a terminal size and input from the start: held until the handshake
    // completes, then sent in order.
    let step = pair
        .client
        .send_size(
            SizeData {
                cols: 120,
                rows: 40,
            },
            pair.now,
        )
        .unwrap();
    assert!(step.frames.is_empty(), "held until the handshake completes");
    pair.absorb_client(step);

    let mut ticks = 0;
    while !(output.done() && input.done() && pair.quiescent()) {
        produce_output(&mut pair, &mut output);
        produce_input(&mut pair, &mut input);
        pair.tick(MS);
        ticks += 1;
        assert!(
            ticks < 600_000,
            "seed {seed}: not done after {:?}: output {} of {}, agent unacked {}, client reorder {}",
            pair.elapsed(),
            pair.output.len(),
            MEGABYTE,
            pair.agent.unacknowledged(),
            pair.client.reorder_buffered()
        );
    }

    assert!(pair.failures().is_empty(), "{:?}", pair.failures());
    assert_eq!(pair.output.len(), MEGABYTE);
    assert!(pair.output == output.data, "seed {seed}: output differs");
    assert!(pair.input == input.data, "seed {seed}: input differs");

    // The size message was the client's first after the handshake response.
    let first_data = pair
        .agent_events
        .iter()
        .find_map(|e| match e {
            Event::Data(d) => Some(d.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(first_data.sequence_number, 1);
    assert_eq!(
        first_data.size().unwrap(),
        SizeData {
            cols: 120,
            rows: 40
        }
    );

    // One handshake.
    assert_eq!(
        pair.count_client(|e| matches!(e, Event::HandshakeRequest(_))),
        1
    );
    assert_eq!(
        pair.count_client(|e| matches!(e, Event::HandshakeComplete(_))),
        1
    );
    assert_eq!(
        pair.count_agent(|e| matches!(e, Event::HandshakeResponse(_))),
        1
    );

    // The network misbehaved, and the sessions coped.
    let (a, c) = (pair.agent.stats(), pair.client.stats());
    assert!(pair.to_client.dropped > 50, "{}", pair.to_client.dropped);
    assert!(a.retransmissions > 0, "{a:?}");
    assert!(c.duplicates > 0, "{c:?}");
    assert!(c.reordered > 0, "{c:?}");
    assert!(a.duplicates > 0 || a.reordered > 0, "{a:?}");
    // Every message delivered once: output messages plus the two handshake messages.
    assert_eq!(c.delivered, a.messages_sent);
    assert_eq!(a.delivered, c.messages_sent);
    assert_eq!(a.acks_received, a.messages_sent);
    assert_eq!(c.acks_received, c.messages_sent);
    eprintln!(
        "seed {seed}: {:?} simulated; agent {a:?}; client {c:?}; rto {:?}",
        pair.elapsed(),
        pair.agent.rto()
    );
}

#[test]
fn one_megabyte_over_a_lossy_link_arrives_once_in_order() {
    for seed in [1, 2, 3] {
        lossy_transfer(seed, Duration::ZERO);
    }
}

#[test]
fn delayed_acknowledgements_lose_nothing_over_a_lossy_link() {
    for seed in [4, 5] {
        lossy_transfer(seed, portcullis_stream::ACK_DELAY);
    }
}

/// Sends a little output every 20 ms over a clean link with the given one-way latency and
/// returns (retransmissions in the first half, in the second half, final RTO, final SRTT).
fn steady_stream(one_way: Duration) -> (u64, u64, Duration, Duration) {
    let link = |s| Link::new(s, one_way, 2 * MS, 0.0, 0.0);
    let mut pair = Pair::new(crate::sim::config(), crate::sim::config(), link(1), link(2));
    let mut halfway = None;
    for tick in 0..20_000 {
        if tick % 20 == 0 {
            let step = pair.agent.send_output(&[b'x'; 512], pair.now).unwrap();
            pair.absorb_agent(step);
        }
        if tick == 10_000 {
            halfway = Some(pair.agent.stats().retransmissions);
        }
        pair.tick(MS);
    }
    assert!(pair.failures().is_empty());
    let first = halfway.unwrap();
    let second = pair.agent.stats().retransmissions - first;
    (first, second, pair.agent.rto(), pair.agent.srtt())
}

#[test]
fn retransmission_timeout_follows_the_round_trip() {
    // Short round trip (10 ms): the RTO drops well below its 200 ms start, and nothing is
    // resent.
    let (first, second, rto, srtt) = steady_stream(5 * MS);
    assert!(srtt >= 10 * MS && srtt <= 14 * MS, "{srtt:?}");
    assert!(rto < 40 * MS, "{rto:?}");
    assert_eq!((first, second), (0, 0));

    // Long round trip (300 ms), longer than the initial 200 ms RTO: the first messages are
    // resent spuriously, then the RTO grows past the round trip and resends stop.
    let (first, second, rto, srtt) = steady_stream(150 * MS);
    assert!(first > 0, "the initial RTO is shorter than the round trip");
    assert_eq!(second, 0, "no spurious resends once adapted");
    assert!(srtt >= 295 * MS && srtt <= 310 * MS, "{srtt:?}");
    assert!(rto > 300 * MS && rto <= Duration::from_secs(1), "{rto:?}");
}

#[test]
fn backpressure_refuses_whole_sends_when_the_buffer_is_full() {
    let mut config = crate::sim::config();
    config.outgoing_capacity = 8;
    let link = || Link::perfect(50 * MS);
    let mut pair = Pair::new(config, crate::sim::config(), link(), link());
    while !pair.quiescent() {
        pair.tick(MS);
    }
    // 1 KB messages: 8 fit, a 9th is refused whole.
    let step = pair.agent.send_output(&[b'a'; 8 * 1024], pair.now).unwrap();
    assert_eq!(step.frames.len(), 8);
    pair.absorb_agent(step);
    let err = pair.agent.send_output(b"b", pair.now).unwrap_err();
    assert_eq!(
        err,
        portcullis_stream::SendError::BufferFull {
            used: 8,
            capacity: 8,
            needed: 1
        }
    );
    // Acknowledgements make room.
    while pair.agent.unacknowledged() > 0 {
        pair.tick(MS);
    }
    let step = pair.agent.send_output(b"b", pair.now).unwrap();
    pair.absorb_agent(step);
    while !pair.quiescent() {
        pair.tick(MS);
    }
    let mut expected = vec![b'a'; 8 * 1024];
    expected.push(b'b');
    assert_eq!(pair.output, expected);
}
