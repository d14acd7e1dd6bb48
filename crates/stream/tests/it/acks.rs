//! Delayed acknowledgements (`Config::ack_delay`): an acknowledgement waits for the next frame
//! this side sends and leaves right behind it, or leaves alone once due.

use std::time::{Duration, Instant};

use portcullis_stream::{
    Agent, Client, ClientMessage, Config, MessageType, Session, WallClock, ACK_DELAY,
};

use crate::sim::{config, shell_request, MS, T0_UNIX_MS};

/// An agent that delays acknowledgements and a client that does not, past the handshake,
/// everything acknowledged, at the returned instant.
fn ready() -> (Instant, Session<Agent>, Session<Client>) {
    let t0 = Instant::now();
    let clock = WallClock::new(t0, T0_UNIX_MS);
    let delayed = Config {
        ack_delay: ACK_DELAY,
        ..config()
    };
    let mut agent = Session::<Agent>::new(delayed, clock);
    let mut client = Session::<Client>::new(config(), clock);
    let mut to_client = agent.start(&shell_request(), "", t0).unwrap().frames;
    let mut to_agent = Vec::new();
    let mut now = t0;
    while !to_client.is_empty() || !to_agent.is_empty() || agent.poll_timeout().is_some() {
        for f in std::mem::take(&mut to_client) {
            to_agent.extend(client.on_frame(&f, now).unwrap().frames);
        }
        for f in std::mem::take(&mut to_agent) {
            to_client.extend(agent.on_frame(&f, now).unwrap().frames);
        }
        if to_client.is_empty() && to_agent.is_empty() {
            // Only the agent's delayed acknowledgements are left: let them fall due.
            now += ACK_DELAY;
            to_client.extend(agent.poll_timers(now).frames);
            if agent.unacknowledged() == 0 && to_client.is_empty() {
                break;
            }
        }
    }
    assert_eq!(agent.unacknowledged(), 0);
    assert_eq!(client.unacknowledged(), 0);
    (now, agent, client)
}

fn kind(frame: &[u8]) -> MessageType {
    ClientMessage::decode(frame).unwrap().message_type
}

fn kinds(frames: &[Vec<u8>]) -> Vec<MessageType> {
    frames.iter().map(|f| kind(f)).collect()
}

#[test]
fn the_echo_leaves_first_and_the_acknowledgement_right_behind_it() {
    let (now, mut agent, mut client) = ready();
    let keystroke = client.send_input(b"a", now).unwrap().frames;
    assert_eq!(keystroke.len(), 1);

    // The keystroke is delivered; its acknowledgement waits.
    let step = agent.on_frame(&keystroke[0], now).unwrap();
    assert!(step.frames.is_empty(), "{:?}", kinds(&step.frames));
    assert_eq!(step.events.len(), 1);
    assert_eq!(agent.poll_timeout(), Some(now + ACK_DELAY));

    // The echo goes out, and the acknowledgement with it, after it.
    let echo = agent.send_output(b"a", now + MS / 10).unwrap().frames;
    assert_eq!(
        kinds(&echo),
        [MessageType::OutputStreamData, MessageType::Acknowledge]
    );
    assert_eq!(
        agent.poll_timeout(),
        Some(now + MS / 10 + agent.rto().max(100 * MS))
    );

    // The client reads both: the echo, and the acknowledgement that empties its buffer.
    for frame in &echo {
        let _ = client.on_frame(frame, now + MS / 5).unwrap();
    }
    assert_eq!(client.unacknowledged(), 0);
}

#[test]
fn an_acknowledgement_with_nothing_to_ride_on_leaves_when_due() {
    let (now, mut agent, mut client) = ready();
    let keystroke = client.send_input(b"a", now).unwrap().frames;
    let step = agent.on_frame(&keystroke[0], now).unwrap();
    assert!(step.frames.is_empty());

    // Not before its time...
    let early = agent.poll_timers(now + ACK_DELAY - Duration::from_micros(1));
    assert!(early.frames.is_empty());
    // ...then alone.
    let due = agent.poll_timers(now + ACK_DELAY);
    assert_eq!(kinds(&due.frames), [MessageType::Acknowledge]);
    assert_eq!(agent.poll_timeout(), None, "nothing left to wait for");
    let _ = client.on_frame(&due.frames[0], now + ACK_DELAY).unwrap();
    assert_eq!(client.unacknowledged(), 0);
}

#[test]
fn many_waiting_acknowledgements_leave_at_once() {
    let (now, mut agent, mut client) = ready();
    let mut released = Vec::new();
    for i in 0..64 {
        let keystroke = client.send_input(b"a", now).unwrap().frames;
        let step = agent.on_frame(&keystroke[0], now).unwrap();
        if i < 63 {
            assert!(step.frames.is_empty(), "message {i}");
        }
        released.extend(step.frames);
    }
    assert_eq!(released.len(), 64);
    assert!(kinds(&released)
        .iter()
        .all(|k| *k == MessageType::Acknowledge));
    assert_eq!(agent.poll_timeout(), None);
    for frame in &released {
        let _ = client.on_frame(frame, now).unwrap();
    }
    assert_eq!(client.unacknowledged(), 0);
}

#[test]
fn without_a_delay_every_acknowledgement_leaves_at_once() {
    let t0 = Instant::now();
    let clock = WallClock::new(t0, T0_UNIX_MS);
    let mut agent = Session::<Agent>::new(config(), clock);
    let mut client = Session::<Client>::new(config(), clock);
    let request = agent.start(&shell_request(), "", t0).unwrap().frames;
    let step = client.on_frame(&request[0], t0).unwrap();
    // AWS's order: the acknowledgement of the request, then the response.
    assert_eq!(
        kinds(&step.frames),
        [MessageType::Acknowledge, MessageType::InputStreamData]
    );
}
