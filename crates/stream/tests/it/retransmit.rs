//! Retransmission details, step by step: fast retransmit, timer back-off and its reset,
//! Karn's rule.

use std::time::{Duration, Instant};

use portcullis_stream::{Agent, Client, ClientMessage, Session, WallClock};

use crate::sim::{config, shell_request, MS, T0_UNIX_MS};

/// An agent and a client past the handshake, everything acknowledged, at `t0`.
fn ready() -> (Instant, Session<Agent>, Session<Client>) {
    let t0 = Instant::now();
    let clock = WallClock::new(t0, T0_UNIX_MS);
    let mut agent = Session::<Agent>::new(config(), clock);
    let mut client = Session::<Client>::new(config(), clock);
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
    assert_eq!(agent.unacknowledged(), 0);
    (t0, agent, client)
}

fn seq(frame: &[u8]) -> i64 {
    ClientMessage::decode(frame).unwrap().sequence_number
}

#[test]
fn three_later_acknowledgements_resend_the_oldest_at_once() {
    let (t0, mut agent, mut client) = ready();
    let frames = agent.send_output(&[b'o'; 5 * 1024], t0).unwrap().frames;
    assert_eq!(
        frames.iter().map(|f| seq(f)).collect::<Vec<_>>(),
        [2, 3, 4, 5, 6]
    );

    // Sequence 2 is lost; 3..6 arrive and are acknowledged (and buffered).
    let mut acks = Vec::new();
    for f in &frames[1..] {
        let step = client.on_frame(f, t0 + 10 * MS).unwrap();
        assert!(step.events.is_empty(), "held back behind the gap");
        acks.extend(step.frames);
    }
    assert_eq!(client.reorder_buffered(), 4);

    // The acknowledgements come back a round trip later: the third resends sequence 2.
    let later = t0 + agent.srtt() + 5 * MS;
    let mut resent = Vec::new();
    for (i, ack) in acks.iter().enumerate() {
        let step = agent.on_frame(ack, later).unwrap();
        if i < 2 {
            assert!(step.frames.is_empty(), "ack {i}");
        }
        resent.extend(step.frames);
    }
    assert_eq!(resent.iter().map(|f| seq(f)).collect::<Vec<_>>(), [2]);
    assert_eq!(agent.stats().fast_retransmissions, 1);
    assert_eq!(agent.stats().retransmissions, 0);
    assert_eq!(agent.unacknowledged(), 1);

    // The resent copy fills the gap: five messages delivered in order.
    let step = client.on_frame(&resent[0], later + 10 * MS).unwrap();
    assert_eq!(step.events.len(), 5);
    let step = agent.on_frame(&step.frames[0], later + 20 * MS).unwrap();
    assert!(step.is_empty());
    assert_eq!(agent.unacknowledged(), 0);
}

#[test]
fn the_timer_backs_off_and_an_acknowledgement_resets_it() {
    let (t0, mut agent, mut client) = ready();
    let rto = agent.rto();
    let srtt = agent.srtt();
    let frames = agent.send_output(b"lost once", t0).unwrap().frames;

    // Unanswered: resent at each due time, the RTO doubling up to 1 s.
    let mut now = t0;
    let mut waits = Vec::new();
    let mut resent = Vec::new();
    for _ in 0..5 {
        let due = agent.poll_timeout().unwrap();
        waits.push(due - now);
        now = due;
        resent.extend(agent.poll_timers(now).frames);
    }
    assert_eq!(resent.len(), 5);
    assert!(
        resent.iter().all(|f| *f == frames[0]),
        "the same bytes each time"
    );
    let expected: Vec<Duration> = (0..5)
        .map(|n| {
            (rto * 2u32.pow(n))
                .min(Duration::from_secs(1))
                .max(100 * MS)
        })
        .collect();
    assert_eq!(waits, expected);
    assert_eq!(agent.rto(), Duration::from_secs(1));

    // It finally arrives; the acknowledgement ends the back-off but gives no sample
    // (Karn: which copy does it answer?).
    let step = client.on_frame(&resent[4], now + 5 * MS).unwrap();
    let step = agent.on_frame(&step.frames[0], now + 10 * MS).unwrap();
    assert!(step.is_empty());
    assert_eq!(agent.rto(), rto);
    assert_eq!(agent.srtt(), srtt);
    assert_eq!(agent.poll_timeout(), None);
}
