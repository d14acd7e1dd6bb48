//! Property tests: decoding never panics on any input, encoding round-trips, and a session fed
//! arbitrary or damaged frames either accepts them or is left unchanged.

use std::time::Instant;

use portcullis_stream::{
    Agent, Client, ClientMessage, Config, MessageId, MessageType, PayloadType, Session, WallClock,
};
use proptest::prelude::*;

use crate::corrupt::snapshot;
use crate::sim::{shell_request, T0_UNIX_MS};

fn message_type() -> impl Strategy<Value = MessageType> {
    proptest::sample::select(MessageType::ALL.to_vec())
}

prop_compose! {
    fn message()(
        message_type in message_type(),
        schema_version in any::<u32>(),
        created_date in 1..u64::MAX,
        sequence_number in any::<i64>(),
        flags in any::<u64>(),
        id in any::<[u8; 16]>(),
        payload_type in any::<u32>(),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
    ) -> ClientMessage {
        ClientMessage {
            message_type,
            schema_version,
            created_date,
            sequence_number,
            flags,
            message_id: MessageId::from_bytes(id),
            payload_type: PayloadType::from_u32(payload_type),
            payload,
        }
    }
}

/// Bytes that get past the first checks more often than uniform noise: a valid header
/// length and message type, then anything.
fn plausible_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        message_type(),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(t, rest)| {
            let mut frame = 116u32.to_be_bytes().to_vec();
            let mut name = t.as_str().as_bytes().to_vec();
            name.resize(32, b' ');
            frame.extend(name);
            frame.extend(rest);
            frame
        })
}

/// A client that has completed the handshake with an agent and holds some state.
fn live_client() -> (Session<Client>, Instant) {
    let t0 = Instant::now();
    let clock = WallClock::new(t0, T0_UNIX_MS);
    let mut agent = Session::<Agent>::new(Config::default(), clock);
    let mut client = Session::<Client>::new(Config::default(), clock);
    let mut to_client = agent.start(&shell_request(), "", t0).unwrap().frames;
    let mut to_agent = Vec::new();
    while !to_client.is_empty() || !to_agent.is_empty() {
        for f in std::mem::take(&mut to_client) {
            to_agent.extend(client.on_frame(&f, t0).unwrap().frames);
        }
        for f in std::mem::take(&mut to_agent) {
            to_client.extend(agent.on_frame(&f, t0).unwrap().frames);
        }
    }
    // Leave a gap so the reorder buffer holds something.
    let frames = agent.send_output(&[b'z'; 3000], t0).unwrap().frames;
    let _ = client.on_frame(&frames[2], t0).unwrap();
    (client, t0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = ClientMessage::decode(&bytes);
    }

    #[test]
    fn decode_never_panics_on_plausible_frames(frame in plausible_frame()) {
        if let Ok(message) = ClientMessage::decode(&frame) {
            // Whatever decodes re-encodes to the same bytes, except for what decode ignores
            // (the digest of empty or publication payloads).
            let again = message.encode();
            prop_assert_eq!(again.len(), frame.len());
            prop_assert_eq!(&again[..80], &frame[..80]);
            prop_assert_eq!(&again[112..], &frame[112..]);
        }
    }

    #[test]
    fn encode_then_decode_is_identity(message in message()) {
        let frame = message.encode();
        prop_assert_eq!(frame.len(), 120 + message.payload.len());
        prop_assert_eq!(ClientMessage::decode(&frame), Ok(message));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn a_session_survives_arbitrary_frames(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let (mut client, t0) = live_client();
        let before = snapshot(&client);
        if client.on_frame(&bytes, t0).is_err() {
            prop_assert_eq!(snapshot(&client), before);
        }
    }

    #[test]
    fn a_session_survives_damaged_frames(
        message in message(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1..=255u8), 1..4),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut frame = message.encode();
        for (index, mask) in flips {
            let i = index.index(frame.len());
            frame[i] ^= mask;
        }
        if let Some(cut) = cut {
            frame.truncate(cut.index(frame.len() + 1));
        }
        let (mut client, t0) = live_client();
        let before = snapshot(&client);
        if client.on_frame(&frame, t0).is_err() {
            prop_assert_eq!(snapshot(&client), before);
        }
        // Whatever happened, the session still works.
        let _ = client.poll_timers(t0);
        let _ = client.on_reconnect(t0);
    }
}
