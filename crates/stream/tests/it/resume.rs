//! The client loses its socket mid-stream and resumes: sequence numbers carry on, everything
//! unacknowledged is resent, nothing is lost or delivered twice, and there is no second
//! handshake.

use std::time::Duration;

use portcullis_stream::{ClientMessage, Event, MessageId, MessageType, PayloadType, WallClock};

use crate::sim::{data, produce_input, produce_output, Link, Pair, Producer, MS, T0_UNIX_MS};

const SIZE: usize = 1 << 20;

fn pair() -> Pair {
    let link = |s| Link::new(s, 5 * MS, 3 * MS, 0.0, 0.0);
    Pair::new(
        crate::sim::config(),
        crate::sim::config(),
        link(11),
        link(12),
    )
}

fn payload_types(frames: &[Vec<u8>]) -> Vec<PayloadType> {
    frames
        .iter()
        .map(|f| ClientMessage::decode(f).unwrap().payload_type)
        .collect()
}

fn run_to_the_end(pair: &mut Pair, output: &mut Producer, input: &mut Producer) {
    let mut ticks = 0;
    while !(output.done() && input.done() && pair.quiescent()) {
        produce_output(pair, output);
        produce_input(pair, input);
        pair.tick(MS);
        ticks += 1;
        assert!(ticks < 200_000, "not done after {:?}", pair.elapsed());
    }
}

fn check_exactly_once(pair: &Pair, output: &Producer, input: &Producer) {
    assert!(pair.failures().is_empty(), "{:?}", pair.failures());
    assert_eq!(pair.output.len(), output.data.len());
    assert!(pair.output == output.data, "output differs");
    assert!(pair.input == input.data, "input differs");
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
    assert_eq!(
        pair.client.stats().delivered,
        pair.agent.stats().messages_sent
    );
    assert_eq!(
        pair.agent.stats().delivered,
        pair.client.stats().messages_sent
    );
}

#[test]
fn reconnect_mid_stream_loses_nothing_and_delivers_nothing_twice() {
    let mut pair = pair();
    let mut output = Producer::new(data(SIZE, 5), 1024);
    let mut input = Producer::new(data(16 * 1024, 6), 64);

    // Stream until the client has about a third.
    while pair.output.len() < SIZE / 3 {
        produce_output(&mut pair, &mut output);
        produce_input(&mut pair, &mut input);
        pair.tick(MS);
    }
    assert!(
        pair.agent.unacknowledged() > 0,
        "frames are in flight when we cut"
    );

    // The socket dies: frames in flight are lost. Both ends keep working for 3 s; what they
    // send and resend in that time is lost too.
    pair.cut();
    let before = pair.output.len();
    for _ in 0..3000 {
        produce_output(&mut pair, &mut output);
        produce_input(&mut pair, &mut input);
        pair.tick(MS);
    }
    assert_eq!(pair.output.len(), before);
    assert!(pair.agent.stats().retransmissions > 0);

    // ResumeSession, new socket: both ends resend what is unacknowledged. Neither has a
    // handshake message left to resend.
    pair.restore();
    let seq_before = pair.agent.next_sequence_number();
    let step = pair.client.on_reconnect(pair.now);
    assert!(!payload_types(&step.frames)
        .iter()
        .any(|t| matches!(t, PayloadType::HandshakeResponse)));
    pair.absorb_client(step);
    let step = pair.agent.on_reconnect(pair.now);
    assert_eq!(step.frames.len(), pair.agent.unacknowledged());
    assert!(payload_types(&step.frames)
        .iter()
        .all(|t| *t == PayloadType::Output));
    pair.absorb_agent(step);
    assert_eq!(
        pair.agent.next_sequence_number(),
        seq_before,
        "sequence numbers carry on"
    );

    run_to_the_end(&mut pair, &mut output, &mut input);
    check_exactly_once(&pair, &output, &input);
    assert!(pair.agent.stats().reconnect_resends > 0);
    // Frames acknowledged before the cut but resent by the timer during it never arrived;
    // the ones resent on reconnect that had in fact arrived were dropped as duplicates.
    assert!(pair.client.stats().duplicates > 0 || pair.client.stats().reordered > 0);
}

/// As the service does: when the client's socket goes, the relay tells the agent
/// `pause_publication`; when a new one comes, `start_publication`.
#[test]
fn pause_and_start_publication_carry_the_agent_through_a_reconnect() {
    let mut pair = pair();
    let mut output = Producer::new(data(SIZE, 7), 1024);
    let mut input = Producer::new(Vec::new(), 64);
    while pair.output.len() < SIZE / 2 {
        produce_output(&mut pair, &mut output);
        pair.tick(MS);
    }
    pair.cut();

    let relay_frame = |t: MessageType, pair: &Pair| {
        let clock = WallClock::new(pair.t0, T0_UNIX_MS);
        ClientMessage::control(
            t,
            MessageId::from_random([9; 16]),
            clock.unix_ms(pair.now),
            Vec::new(),
        )
        .encode()
    };
    let pause = relay_frame(MessageType::PausePublication, &pair);
    let step = pair.agent.on_frame(&pause, pair.now).unwrap();
    assert_eq!(step.events, [Event::PublicationPaused]);
    assert!(step.frames.is_empty());
    assert!(pair.agent.is_paused());

    // Paused: output is sequenced and buffered but not sent, and nothing is resent.
    let retransmissions = pair.agent.stats().retransmissions;
    for _ in 0..2000 {
        let unacked = pair.agent.unacknowledged();
        if let Some(piece) = output.next_piece() {
            let step = pair.agent.send_output(piece, pair.now).unwrap();
            assert!(step.frames.is_empty(), "nothing sent while paused");
            assert_eq!(pair.agent.unacknowledged(), unacked + 1);
            output.advance();
        }
        pair.tick(MS);
    }
    assert_eq!(pair.agent.stats().retransmissions, retransmissions);
    assert_eq!(pair.agent.poll_timeout(), None);

    pair.restore();
    let start = relay_frame(MessageType::StartPublication, &pair);
    let step = pair.agent.on_frame(&start, pair.now).unwrap();
    assert_eq!(step.events, [Event::PublicationResumed]);
    assert_eq!(step.frames.len(), pair.agent.unacknowledged());
    pair.absorb_agent(step);
    let step = pair.client.on_reconnect(pair.now);
    pair.absorb_client(step);

    run_to_the_end(&mut pair, &mut output, &mut input);
    check_exactly_once(&pair, &output, &input);
}

#[test]
fn reconnect_during_the_handshake_completes_it_once() {
    let link = |s| Link::new(s, 20 * MS, Duration::ZERO, 0.0, 0.0);
    let mut pair = Pair::new(crate::sim::config(), crate::sim::config(), link(1), link(2));
    // The handshake request is lost with the socket.
    pair.cut();
    let step = pair.agent.send_output(b"motd\r\n", pair.now).unwrap();
    assert!(
        step.frames.is_empty(),
        "held: the handshake is not complete"
    );
    for _ in 0..500 {
        pair.tick(MS);
    }
    assert!(!pair.client.is_handshake_complete());
    pair.restore();
    let step = pair.client.on_reconnect(pair.now);
    assert!(step.frames.is_empty(), "the client has sent nothing yet");
    let step = pair.agent.on_reconnect(pair.now);
    assert_eq!(payload_types(&step.frames), [PayloadType::HandshakeRequest]);
    pair.absorb_agent(step);
    let mut ticks = 0;
    while !pair.quiescent() {
        pair.tick(MS);
        ticks += 1;
        assert!(ticks < 10_000);
    }
    assert_eq!(pair.output, b"motd\r\n");
    assert_eq!(
        pair.count_client(|e| matches!(e, Event::HandshakeRequest(_))),
        1
    );
    assert_eq!(
        pair.count_agent(|e| matches!(e, Event::HandshakeResponse(_))),
        1
    );
    assert!(pair.failures().is_empty());
}

#[test]
fn a_session_outlives_its_socket_until_resends_are_exhausted() {
    let mut config = crate::sim::config();
    config.max_resend_attempts = 5;
    let mut pair = Pair::new(
        config,
        crate::sim::config(),
        Link::perfect(MS),
        Link::perfect(MS),
    );
    while !pair.quiescent() {
        pair.tick(MS);
    }
    pair.cut();
    let step = pair.agent.send_output(b"lost", pair.now).unwrap();
    pair.absorb_agent(step);
    let mut now = pair.now;
    let mut failed = None;
    for _ in 0..100 {
        let Some(due) = pair.agent.poll_timeout() else {
            break;
        };
        assert!(due > now, "the timer moves forward");
        now = due;
        pair.now = due;
        let step = pair.agent.poll_timers(due);
        if let Some(Event::Failed(f)) = step.events.first() {
            failed = Some(f.clone());
        }
        pair.absorb_agent(step);
    }
    assert_eq!(
        failed,
        Some(portcullis_stream::Failure::ResendExhausted {
            sequence_number: 2,
            attempts: 5
        })
    );
    assert!(pair.agent.finished().is_some());
    assert_eq!(pair.agent.poll_timeout(), None);
    assert_eq!(
        pair.agent.send_output(b"more", pair.now).unwrap_err(),
        portcullis_stream::SendError::Finished
    );
    // Five resends, each waiting at least 100 ms and twice the previous RTO (backoff,
    // capped at 1 s); the sixth due time gives up.
    assert!(
        pair.elapsed() > Duration::from_secs(1),
        "{:?}",
        pair.elapsed()
    );
}
