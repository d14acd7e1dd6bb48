//! An agent and a client joined by two simulated links, in simulated time.
//!
//! Each link delays every frame by `latency + U(0, jitter)` (so frames reorder when the
//! jitter exceeds their spacing), drops it with probability `loss`, and delivers it twice
//! with probability `dup`, all from a seeded RNG. A link that is cut drops everything in
//! flight and everything sent until it is restored.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use portcullis_stream::{
    session_type, Agent, Client, Config, Event, HandshakeRequest, PayloadType, Session, Step,
    WallClock,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const MS: Duration = Duration::from_millis(1);
pub const T0_UNIX_MS: u64 = 1_700_000_000_000;
pub const AGENT_VERSION: &str = "3.3.987.0";

pub struct Link {
    rng: StdRng,
    pub latency: Duration,
    pub jitter: Duration,
    pub loss: f64,
    pub dup: f64,
    up: bool,
    counter: u64,
    queue: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>>,
    pub sent: u64,
    pub dropped: u64,
}

impl Link {
    pub fn new(seed: u64, latency: Duration, jitter: Duration, loss: f64, dup: f64) -> Link {
        Link {
            rng: StdRng::seed_from_u64(seed),
            latency,
            jitter,
            loss,
            dup,
            up: true,
            counter: 0,
            queue: BinaryHeap::new(),
            sent: 0,
            dropped: 0,
        }
    }

    pub fn perfect(latency: Duration) -> Link {
        Link::new(0, latency, Duration::ZERO, 0.0, 0.0)
    }

    pub fn send(&mut self, now: Instant, frame: Vec<u8>) {
        self.sent += 1;
        if !self.up || self.rng.gen_bool(self.loss) {
            self.dropped += 1;
            return;
        }
        let copies = if self.rng.gen_bool(self.dup) { 2 } else { 1 };
        for _ in 0..copies {
            let jitter_ns = self.jitter.as_nanos() as u64;
            let jitter = Duration::from_nanos(if jitter_ns == 0 {
                0
            } else {
                self.rng.gen_range(0..=jitter_ns)
            });
            self.counter += 1;
            self.queue.push(Reverse((
                now + self.latency + jitter,
                self.counter,
                frame.clone(),
            )));
        }
    }

    /// Frames whose delivery time has come, earliest first.
    pub fn due(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(Reverse((at, _, _))) = self.queue.peek() {
            if *at > now {
                break;
            }
            let Reverse((_, _, frame)) = self.queue.pop().unwrap();
            out.push(frame);
        }
        out
    }

    pub fn cut(&mut self) {
        self.up = false;
        self.queue.clear();
    }

    pub fn restore(&mut self) {
        self.up = true;
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

pub fn config() -> Config {
    Config {
        client_version: "1.2.0.0".to_owned(),
        ..Config::default()
    }
}

pub fn shell_request() -> HandshakeRequest {
    HandshakeRequest::new(
        AGENT_VERSION,
        session_type::STANDARD_STREAM,
        serde_json::json!({"linux": {"commands": "", "runAsElevated": false}}),
    )
    .unwrap()
}

/// Seeded pseudo-random bytes (not UTF-8).
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.gen()).collect()
}

pub struct Pair {
    pub t0: Instant,
    pub now: Instant,
    pub agent: Session<Agent>,
    pub client: Session<Client>,
    pub to_client: Link,
    pub to_agent: Link,
    pub agent_events: Vec<Event>,
    pub client_events: Vec<Event>,
    /// Output payloads the client received, concatenated.
    pub output: Vec<u8>,
    /// Output-type payloads the agent received (keystrokes), concatenated.
    pub input: Vec<u8>,
    last_client_seq: i64,
    last_agent_seq: i64,
}

impl Pair {
    /// Sessions created and the handshake request sent.
    pub fn new(
        agent_config: Config,
        client_config: Config,
        to_client: Link,
        to_agent: Link,
    ) -> Pair {
        let t0 = Instant::now();
        let clock = WallClock::new(t0, T0_UNIX_MS);
        let mut pair = Pair {
            t0,
            now: t0,
            agent: Session::new(agent_config, clock),
            client: Session::new(client_config, clock),
            to_client,
            to_agent,
            agent_events: Vec::new(),
            client_events: Vec::new(),
            output: Vec::new(),
            input: Vec::new(),
            last_client_seq: -1,
            last_agent_seq: -1,
        };
        let step = pair.agent.start(&shell_request(), "", t0).unwrap();
        pair.absorb_agent(step);
        pair
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    pub fn absorb_agent(&mut self, step: Step) {
        for frame in step.frames {
            self.to_client.send(self.now, frame);
        }
        for event in step.events {
            if let Event::Data(data) = &event {
                assert!(
                    data.sequence_number > self.last_agent_seq,
                    "agent got {} after {}",
                    data.sequence_number,
                    self.last_agent_seq
                );
                self.last_agent_seq = data.sequence_number;
                if data.payload_type == PayloadType::Output {
                    self.input.extend_from_slice(&data.payload);
                }
            }
            self.agent_events.push(event);
        }
    }

    pub fn absorb_client(&mut self, step: Step) {
        for frame in step.frames {
            self.to_agent.send(self.now, frame);
        }
        for event in step.events {
            if let Event::Data(data) = &event {
                assert!(
                    data.sequence_number > self.last_client_seq,
                    "client got {} after {}",
                    data.sequence_number,
                    self.last_client_seq
                );
                self.last_client_seq = data.sequence_number;
                if data.payload_type == PayloadType::Output {
                    self.output.extend_from_slice(&data.payload);
                }
            }
            self.client_events.push(event);
        }
    }

    /// Advances time by `dt`, delivers what is due, and runs both sessions' timers.
    pub fn tick(&mut self, dt: Duration) {
        self.tick_inspecting(dt, &mut |_, _| {}, &mut |_, _| {});
    }

    /// Like [`Pair::tick`], calling `before_client(client, frame)` before each frame is
    /// given to the client, and `before_agent` likewise.
    pub fn tick_inspecting(
        &mut self,
        dt: Duration,
        before_client: &mut dyn FnMut(&mut Session<Client>, &[u8]),
        before_agent: &mut dyn FnMut(&mut Session<Agent>, &[u8]),
    ) {
        self.now += dt;
        let now = self.now;
        for frame in self.to_client.due(now) {
            before_client(&mut self.client, &frame);
            let step = self.client.on_frame(&frame, now).unwrap();
            self.absorb_client(step);
        }
        for frame in self.to_agent.due(now) {
            before_agent(&mut self.agent, &frame);
            let step = self.agent.on_frame(&frame, now).unwrap();
            self.absorb_agent(step);
        }
        let step = self.agent.poll_timers(now);
        self.absorb_agent(step);
        let step = self.client.poll_timers(now);
        self.absorb_client(step);
    }

    /// Nothing in flight, nothing unacknowledged, held or waiting in a reorder buffer.
    pub fn quiescent(&self) -> bool {
        self.to_client.is_empty()
            && self.to_agent.is_empty()
            && self.agent.unacknowledged() == 0
            && self.client.unacknowledged() == 0
            && self.agent.held() == 0
            && self.client.held() == 0
            && self.agent.reorder_buffered() == 0
            && self.client.reorder_buffered() == 0
    }

    pub fn cut(&mut self) {
        self.to_client.cut();
        self.to_agent.cut();
    }

    pub fn restore(&mut self) {
        self.to_client.restore();
        self.to_agent.restore();
    }

    pub fn failures(&self) -> Vec<&Event> {
        self.agent_events
            .iter()
            .chain(&self.client_events)
            .filter(|e| matches!(e, Event::Failed(_)))
            .collect()
    }

    pub fn count_client(&self, pred: impl Fn(&Event) -> bool) -> usize {
        self.client_events.iter().filter(|e| pred(e)).count()
    }

    pub fn count_agent(&self, pred: impl Fn(&Event) -> bool) -> usize {
        self.agent_events.iter().filter(|e| pred(e)).count()
    }
}

/// Feeds `source` to `send` in pieces of `piece` bytes, one piece per call, retrying a
/// piece the session refused for lack of room.
pub struct Producer {
    pub data: Vec<u8>,
    pub offset: usize,
    pub piece: usize,
    pub refusals: u64,
}

impl Producer {
    pub fn new(data: Vec<u8>, piece: usize) -> Producer {
        Producer {
            data,
            offset: 0,
            piece,
            refusals: 0,
        }
    }

    pub fn done(&self) -> bool {
        self.offset >= self.data.len()
    }

    /// The next piece, if any.
    pub fn next_piece(&self) -> Option<&[u8]> {
        let end = (self.offset + self.piece).min(self.data.len());
        (self.offset < end).then(|| &self.data[self.offset..end])
    }

    pub fn advance(&mut self) {
        self.offset = (self.offset + self.piece).min(self.data.len());
    }
}

/// Pushes one piece of agent output, if there is room.
pub fn produce_output(pair: &mut Pair, producer: &mut Producer) {
    let Some(piece) = producer.next_piece() else {
        return;
    };
    match pair.agent.send_output(piece, pair.now) {
        Ok(step) => {
            producer.advance();
            pair.absorb_agent(step);
        }
        Err(portcullis_stream::SendError::BufferFull { .. }) => producer.refusals += 1,
        Err(e) => panic!("{e}"),
    }
}

/// Pushes one piece of client input, if there is room.
pub fn produce_input(pair: &mut Pair, producer: &mut Producer) {
    let Some(piece) = producer.next_piece() else {
        return;
    };
    match pair.client.send_input(piece, pair.now) {
        Ok(step) => {
            producer.advance();
            pair.absorb_client(step);
        }
        Err(portcullis_stream::SendError::BufferFull { .. }) => producer.refusals += 1,
        Err(e) => panic!("{e}"),
    }
}
