//! Corrupted frames are refused with the right error and leave the session exactly as it
//! was; the transfer around them completes untouched.

use portcullis_stream::{
    AcknowledgeContent, ClientMessage, DecodeError, FrameError, MessageId, MessageType,
    PayloadType, Role, Session, FLAGS_CONTROL,
};

use crate::sim::{data, produce_output, Link, Pair, Producer, MS};

/// Everything observable about a session.
pub fn snapshot<R: Role>(s: &Session<R>) -> String {
    format!(
        "{:?} exp={} next={} unacked={} reorder={} held={} fin={:?} paused={} rto={:?} hs={} timeout={:?}",
        s.stats(),
        s.expected_sequence_number(),
        s.next_sequence_number(),
        s.unacknowledged(),
        s.reorder_buffered(),
        s.held(),
        s.finished(),
        s.is_paused(),
        s.rto(),
        s.is_handshake_complete(),
        s.poll_timeout(),
    )
}

type Check = fn(&FrameError) -> bool;

/// Damaged copies of a valid frame, each with the error it must get.
fn corruptions(frame: &[u8]) -> Vec<(&'static str, Vec<u8>, Check)> {
    let has_payload = frame.len() > 120;
    let mut out: Vec<(&'static str, Vec<u8>, Check)> = Vec::new();
    if has_payload {
        let mut f = frame.to_vec();
        *f.last_mut().unwrap() ^= 0x01;
        out.push(("payload bit flip", f, |e| {
            *e == FrameError::Decode(DecodeError::Digest)
        }));
        let mut f = frame.to_vec();
        f[80] ^= 0x80;
        out.push(("digest bit flip", f, |e| {
            *e == FrameError::Decode(DecodeError::Digest)
        }));
        out.push((
            "payload cut short",
            frame[..frame.len() - 1].to_vec(),
            |e| matches!(e, FrameError::Decode(DecodeError::PayloadLength { .. })),
        ));
    }
    let mut f = frame.to_vec();
    f[..4].copy_from_slice(&117u32.to_be_bytes());
    out.push(("header length 117", f, |e| {
        *e == FrameError::Decode(DecodeError::HeaderLength(117))
    }));
    let mut f = frame.to_vec();
    f[..4].copy_from_slice(&0u32.to_be_bytes());
    out.push(("header length 0", f, |e| {
        *e == FrameError::Decode(DecodeError::HeaderLength(0))
    }));
    out.push(("header cut short", frame[..119].to_vec(), |e| {
        *e == FrameError::Decode(DecodeError::Truncated { len: 119 })
    }));
    out.push(("empty", Vec::new(), |e| {
        *e == FrameError::Decode(DecodeError::Truncated { len: 0 })
    }));
    let mut f = frame.to_vec();
    f.push(0);
    out.push(("trailing byte", f, |e| {
        matches!(e, FrameError::Decode(DecodeError::PayloadLength { .. }))
    }));
    let mut f = frame.to_vec();
    let mut name = [b' '; 32];
    name[..10].copy_from_slice(b"bogus_data");
    f[4..36].copy_from_slice(&name);
    out.push(("unknown type", f, |e| {
        *e == FrameError::Decode(DecodeError::UnknownMessageType("bogus_data".into()))
    }));
    let mut f = frame.to_vec();
    f[40..48].fill(0);
    out.push(("zero created date", f, |e| {
        *e == FrameError::Decode(DecodeError::CreatedDate)
    }));
    out
}

fn refuse_all<R: Role>(
    session: &mut Session<R>,
    frame: &[u8],
    now: std::time::Instant,
    count: &mut usize,
) {
    let before = snapshot(session);
    for (what, bad, check) in corruptions(frame) {
        let err = session.on_frame(&bad, now).expect_err(what);
        assert!(check(&err), "{what}: {err:?}");
        assert_eq!(snapshot(session), before, "{what} changed the session");
        *count += 1;
    }
}

#[test]
fn corrupted_frames_are_refused_and_change_nothing() {
    let link = |s| Link::new(s, 5 * MS, 5 * MS, 0.0, 0.0);
    let mut pair = Pair::new(crate::sim::config(), crate::sim::config(), link(3), link(4));
    let mut output = Producer::new(data(256 * 1024, 9), 2048);
    let mut refused = 0;
    let mut ticks = 0;
    while !(output.done() && pair.quiescent()) {
        produce_output(&mut pair, &mut output);
        let (mut to_client, mut to_agent) = (0usize, 0usize);
        let now = pair.now + MS;
        pair.tick_inspecting(
            MS,
            &mut |client, frame| refuse_all(client, frame, now, &mut to_client),
            &mut |agent, frame| refuse_all(agent, frame, now, &mut to_agent),
        );
        refused += to_client + to_agent;
        ticks += 1;
        assert!(ticks < 100_000);
    }
    assert!(refused > 1000, "{refused}");
    assert!(pair.failures().is_empty());
    assert!(pair.output == output.data);
    // No refused frame cost a message or an acknowledgement: nothing waited for the timer,
    // and every duplicate the client saw is a fast retransmission caused by the links'
    // reordering (jitter).
    assert_eq!(pair.agent.stats().retransmissions, 0);
    assert!(pair.client.stats().duplicates <= pair.agent.stats().fast_retransmissions);
}

#[test]
fn wrong_direction_and_bad_acknowledgements_are_refused() {
    let mut pair = Pair::new(
        crate::sim::config(),
        crate::sim::config(),
        Link::perfect(MS),
        Link::perfect(MS),
    );
    while !pair.quiescent() {
        pair.tick(MS);
    }
    let now = pair.now;
    let stream = |t: MessageType| ClientMessage {
        message_type: t,
        schema_version: 1,
        created_date: 1_700_000_000_000,
        sequence_number: 0,
        flags: 0,
        message_id: MessageId::from_random([1; 16]),
        payload_type: PayloadType::Output,
        payload: b"x".to_vec(),
    };

    let before = snapshot(&pair.agent);
    let err = pair
        .agent
        .on_frame(&stream(MessageType::OutputStreamData).encode(), now)
        .unwrap_err();
    assert_eq!(
        err,
        FrameError::WrongDirection(MessageType::OutputStreamData)
    );
    assert_eq!(snapshot(&pair.agent), before);

    let before = snapshot(&pair.client);
    let err = pair
        .client
        .on_frame(&stream(MessageType::InputStreamData).encode(), now)
        .unwrap_err();
    assert_eq!(
        err,
        FrameError::WrongDirection(MessageType::InputStreamData)
    );
    assert_eq!(snapshot(&pair.client), before);

    // An acknowledgement whose JSON does not read (valid digest).
    let bad_ack = ClientMessage::control(
        MessageType::Acknowledge,
        MessageId::from_random([2; 16]),
        1_700_000_000_000,
        b"{not json".to_vec(),
    );
    assert_eq!(bad_ack.flags, FLAGS_CONTROL);
    let before = snapshot(&pair.agent);
    let err = pair.agent.on_frame(&bad_ack.encode(), now).unwrap_err();
    assert!(matches!(err, FrameError::Acknowledge(_)), "{err:?}");
    assert_eq!(snapshot(&pair.agent), before);

    // An acknowledgement for a sequence number never sent is counted and ignored.
    let stale = ClientMessage::control(
        MessageType::Acknowledge,
        MessageId::from_random([3; 16]),
        1_700_000_000_000,
        AcknowledgeContent {
            message_type: "output_stream_data".into(),
            message_id: MessageId::NIL.to_string(),
            sequence_number: 999,
            is_sequential_message: true,
        }
        .to_json(),
    );
    let step = pair.agent.on_frame(&stale.encode(), now).unwrap();
    assert!(step.is_empty());
    assert_eq!(pair.agent.stats().stale_acks, 1);
}
