//! One end of a data channel, as pure logic: frames in, frames and events out.
//!
//! A [`Session<Agent>`] speaks the agent's side (sends `output_stream_data`, receives
//! `input_stream_data`, leads the handshake); a [`Session<Client>`] speaks the client's side
//! (the plugin's). Neither does I/O or reads a clock: every entry point takes `now`, and
//! returns a [`Step`] holding the binary frames to write, in order, and the [`Event`]s for
//! the application. The transport (a WebSocket, a channel in tests) is the caller's.
//!
//! ```text
//! frame from the socket ──on_frame──▶ ┌─────────┐ ──Step.frames──▶ socket
//! bytes from the PTY/user ──send_*──▶ │ Session │ ──Step.events──▶ application
//! timer fired ───────────poll_timers─▶ └─────────┘   poll_timeout() = when to call again
//! new socket, same session ──on_reconnect──▶ (everything unacknowledged, resent)
//! ```
//!
//! # Sending
//!
//! - Every stream message takes the next sequence number, from 0, and stays in the outgoing
//!   buffer until the peer acknowledges that sequence number. Data longer than
//!   [`Config::max_payload_size`] is cut into several messages (never inside a UTF-8
//!   sequence when the data is UTF-8 there).
//! - The agent sets SYN on its sequence number 0, as AWS's agent does; the client sets no
//!   flags, as the plugin does.
//! - Until the handshake is complete, application data is *held*: kept in order but not
//!   given a sequence number, so nothing can overtake the handshake (the plugin would stall
//!   on output sequenced between HandshakeRequest and HandshakeComplete). It is sent as soon
//!   as the handshake completes (agent: HandshakeComplete sent; client: HandshakeComplete
//!   received, or a first message that is not a handshake, AWS's legacy no-handshake path).
//! - Held plus unacknowledged messages never exceed [`Config::outgoing_capacity`]; a send
//!   that would is refused whole with [`SendError::BufferFull`] (AWS drops a message instead),
//!   so the caller applies backpressure.
//!
//! # Retransmission
//!
//! Only the oldest unacknowledged message is retransmitted, as AWS does, so a link that is
//! merely slow is not flooded with copies:
//! - by the timer, when it has waited `max(RTO, Config::min_resend_interval)` since it was
//!   last sent (AWS: one resend per 100 ms tick at most). The RTO adapts to the measured
//!   round trip (see [`crate::rtt`]) and doubles on each timer resend until the next
//!   acknowledgement;
//! - at once, when three acknowledgements of later messages have arrived and it has been
//!   out for a smoothed round trip (fast retransmit; AWS does not do this).
//!
//! A message retransmitted more than [`Config::max_resend_attempts`] times by the timer
//! without the peer acknowledging anything in between (and without a reconnect) ends the
//! session with [`Failure::ResendExhausted`]. Over a WebSocket
//! nothing is lost while the socket lives, so retransmission matters around reconnects and
//! lossy relays; a reconnect resends everything at once (below).
//!
//! # Receiving
//!
//! For a stream message with sequence number `s`, the next expected being `e`:
//! - `s == e`: acknowledged, delivered, then every buffered successor is delivered in order.
//! - `s > e` (a gap: something was lost or reordered): acknowledged and buffered, unless it
//!   lies [`Config::incoming_capacity`] or more beyond `e` (then dropped *without* an
//!   acknowledgement, so the sender resends it later). A copy of an already buffered message
//!   is acknowledged again and dropped.
//! - `s < e` (a duplicate: already delivered): acknowledged again and dropped. The agent does
//!   the same; the plugin drops without acknowledging, which leaves a sender whose
//!   acknowledgement was lost resending forever.
//! - Each stream message is therefore delivered exactly once and in order.
//!
//! Acknowledgements are matched by sequence number only, as AWS does; one for a message no
//! longer buffered is counted in [`Stats::stale_acks`] and otherwise ignored.
//!
//! An acknowledgement leaves at once (AWS), or, with [`Config::ack_delay`], waits up to that
//! long for the next frame this side sends and leaves right behind it: a keystroke's echo
//! then overtakes the keystroke's acknowledgement through the relay and the client, and the
//! two share one write. [`Session::poll_timeout`] includes the wait; 64 waiting
//! acknowledgements leave at once.
//!
//! # Refused frames
//!
//! A frame that does not decode ([`crate::DecodeError`]), a stream message of the direction
//! this side sends, or an acknowledgement whose JSON does not read is refused with a
//! [`FrameError`] *before* any state changes: the session goes on as if it never arrived.
//!
//! # Reconnects and publication
//!
//! The session outlives its socket. After a client reconnects (`ResumeSession`, new socket,
//! new `OpenDataChannel` token), both ends call [`Session::on_reconnect`]: sequence numbers,
//! the outgoing buffer and the reorder buffer are kept, every unacknowledged message is
//! resent at once, and there is no new handshake. Duplicates this produces are dropped by the
//! receiver rules above, so nothing is lost or delivered twice.
//!
//! `pause_publication` (the service telling the agent the client is gone) stops all stream
//! transmission: new messages are sequenced and buffered but not sent, and nothing is
//! retransmitted. `start_publication` resumes and resends every unacknowledged message, like
//! `on_reconnect`; any stream message or acknowledgement from the peer also resumes (as the
//! agent does), sending only what was never sent. The plugin ignores both messages.
//!
//! # The end
//!
//! A session is finished by `channel_closed` (either way), by [`Session::close`], or by a
//! [`Failure`]. It then ignores frames (after checking they decode), its timers are idle, and
//! sends return [`SendError::Finished`].

use std::collections::{BTreeMap, VecDeque};
use std::marker::PhantomData;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::message::{
    ClientMessage, DecodeError, MessageId, MessageType, PayloadType, FLAG_SYN, SCHEMA_VERSION,
};
use crate::payload::{
    exit_code_payload, parse_exit_code, session_type, AcknowledgeContent, ActionStatus, ActionType,
    ChannelClosed, Flag, HandshakeComplete, HandshakeRequest, HandshakeResponse, PayloadError,
    ProcessedClientAction, SessionTypeRequest, SizeData,
};
use crate::rtt::RttEstimator;

/// Tuning. The defaults are AWS's (`src/config/config.go` in the plugin,
/// `agent/session/config/config.go` in the agent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Longest payload of one stream message; longer data is cut. AWS: 1024.
    pub max_payload_size: usize,
    /// Most messages held or waiting for an acknowledgement. Plugin 10 000, agent 100 000.
    pub outgoing_capacity: usize,
    /// Reorder window: messages further than this beyond the next expected one are dropped
    /// unacknowledged. Plugin 10 000, agent 100 000.
    pub incoming_capacity: usize,
    /// Round-trip estimate before the first sample. AWS: 100 ms.
    pub initial_rtt: Duration,
    /// Retransmission timeout before the first sample. AWS: 200 ms.
    pub initial_rto: Duration,
    /// The least variance term of the RTO. AWS: 10 ms.
    pub clock_granularity: Duration,
    /// The RTO never exceeds this. AWS: 1 s.
    pub max_rto: Duration,
    /// The oldest message is resent no more often than this (AWS's resend loop ticks every
    /// 100 ms), which also keeps `max_resend_attempts` meaning several minutes.
    pub min_resend_interval: Duration,
    /// Timer retransmissions of the oldest message, with no acknowledgement of anything in
    /// between, before the session fails (≈ this × the RTO, which backs off to 1 s). AWS's
    /// plugin: 3000; AWS's agent has no limit (`u32::MAX` here).
    ///
    /// The plugin never acknowledges a message it already delivered, so if its
    /// acknowledgement is lost with a socket, that message stays unacknowledged for good and
    /// an idle session reaches this limit. An agent may prefer no limit and rely on the
    /// transport (WebSocket ping, socket closure) and the service's idle timeout.
    pub max_resend_attempts: u32,
    /// Agent: how long to wait for the HandshakeResponse. AWS: 15 s.
    pub handshake_timeout: Duration,
    /// Client: the `ClientVersion` put in the HandshakeResponse.
    pub client_version: String,
    /// Seed for message ids (mixed with the wall clock's origin). Message ids need only be
    /// unique, not secret; seed from a random source for distinct ids across processes.
    pub id_seed: u64,
    /// How long an acknowledgement may wait to leave behind the next frame this side sends.
    /// AWS: zero, every acknowledgement at once. A few milliseconds lets the reply to a
    /// keystroke (its echo) overtake the keystroke's acknowledgement, so neither relay nor
    /// peer handles the acknowledgement first; it costs the peer that much RTT estimate.
    pub ack_delay: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_payload_size: 1024,
            outgoing_capacity: 10_000,
            incoming_capacity: 10_000,
            initial_rtt: Duration::from_millis(100),
            initial_rto: Duration::from_millis(200),
            clock_granularity: Duration::from_millis(10),
            max_rto: Duration::from_secs(1),
            min_resend_interval: Duration::from_millis(100),
            max_resend_attempts: 3000,
            handshake_timeout: Duration::from_secs(15),
            client_version: env!("CARGO_PKG_VERSION").to_owned(),
            id_seed: 0,
            ack_delay: Duration::ZERO,
        }
    }
}

/// Maps the monotonic `now` the session is driven with to the wall-clock milliseconds the
/// `CreatedDate` field carries: an origin instant and its Unix time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallClock {
    origin: Instant,
    origin_unix_ms: u64,
}

impl WallClock {
    /// `origin` is `origin_unix_ms` milliseconds after the Unix epoch.
    pub const fn new(origin: Instant, origin_unix_ms: u64) -> WallClock {
        WallClock {
            origin,
            origin_unix_ms,
        }
    }

    /// Reads the system clock once, now.
    pub fn system() -> WallClock {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(1);
        WallClock::new(Instant::now(), unix_ms)
    }

    /// Milliseconds since the Unix epoch at `now` (never 0: AWS refuses a zero date).
    pub fn unix_ms(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.origin).as_millis();
        self.origin_unix_ms
            .saturating_add(u64::try_from(since).unwrap_or(u64::MAX))
            .max(1)
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Agent {}
    impl Sealed for super::Client {}
}

/// Which side a [`Session`] speaks: [`Agent`] or [`Client`].
pub trait Role: sealed::Sealed + std::fmt::Debug + 'static {
    /// The side, as a value.
    const KIND: RoleKind;
}

/// The agent's side: on the node, running the shell.
#[derive(Debug)]
pub enum Agent {}

/// The client's side: the user's terminal (AWS's `session-manager-plugin`).
#[derive(Debug)]
pub enum Client {}

impl Role for Agent {
    const KIND: RoleKind = RoleKind::Agent;
}

impl Role for Client {
    const KIND: RoleKind = RoleKind::Client;
}

/// A side, as a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoleKind {
    /// The agent.
    Agent,
    /// The client.
    Client,
}

impl RoleKind {
    /// The stream message type this side sends.
    pub const fn sends(self) -> MessageType {
        match self {
            RoleKind::Agent => MessageType::OutputStreamData,
            RoleKind::Client => MessageType::InputStreamData,
        }
    }

    /// The stream message type this side receives.
    pub const fn receives(self) -> MessageType {
        match self {
            RoleKind::Agent => MessageType::InputStreamData,
            RoleKind::Client => MessageType::OutputStreamData,
        }
    }
}

/// What one call produced: frames to write to the socket, in this order, and events for the
/// application.
#[must_use = "the frames must be written and the events handled"]
#[derive(Debug, Default)]
pub struct Step {
    /// Binary WebSocket frames, in order.
    pub frames: Vec<Vec<u8>>,
    /// What happened.
    pub events: Vec<Event>,
}

impl Step {
    /// No frames and no events.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty() && self.events.is_empty()
    }

    /// Appends another step's frames and events.
    pub fn extend(&mut self, other: Step) {
        self.frames.extend(other.frames);
        self.events.extend(other.events);
    }
}

/// A stream message delivered in order (anything but the handshake's own messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamData {
    /// Its sequence number in the peer's stream.
    pub sequence_number: i64,
    /// What the payload holds: [`PayloadType::Output`] (terminal bytes) mostly; from a
    /// client also [`PayloadType::Size`] and [`PayloadType::Flag`]; from an agent also
    /// [`PayloadType::StdErr`] and [`PayloadType::ExitCode`].
    pub payload_type: PayloadType,
    /// The bytes.
    pub payload: Vec<u8>,
}

impl StreamData {
    /// The payload as a terminal size (for [`PayloadType::Size`]).
    pub fn size(&self) -> Result<SizeData, PayloadError> {
        SizeData::from_json(&self.payload)
    }

    /// The payload as a flag (for [`PayloadType::Flag`]).
    pub fn flag(&self) -> Result<Flag, PayloadError> {
        Flag::from_payload(&self.payload)
    }

    /// The payload as an exit code (for [`PayloadType::ExitCode`]).
    pub fn exit_code(&self) -> Result<i32, PayloadError> {
        parse_exit_code(&self.payload)
    }
}

/// Something the application should know.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Client: the agent's handshake request arrived and has been answered; the session type
    /// is in it ([`HandshakeRequest::session_type`]).
    HandshakeRequest(HandshakeRequest),
    /// Agent: the client accepted every requested action; HandshakeComplete has been sent
    /// and held data released.
    HandshakeResponse(HandshakeResponse),
    /// Client: the handshake is complete (print `customer_message` if non-empty); held input
    /// has been released.
    HandshakeComplete(HandshakeComplete),
    /// A stream message, in order, exactly once.
    Data(StreamData),
    /// The peer (or the service) closed the channel. The session is finished.
    ChannelClosed(ChannelClosed),
    /// `pause_publication`: sending is suspended.
    PublicationPaused,
    /// Sending resumed after a pause.
    PublicationResumed,
    /// The session failed and is finished.
    Failed(Failure),
}

/// Why a session failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The oldest unacknowledged message was retransmitted
    /// [`Config::max_resend_attempts`] times without an acknowledgement.
    #[error("message {sequence_number} was resent {attempts} times without acknowledgement")]
    ResendExhausted {
        /// Its sequence number.
        sequence_number: i64,
        /// Timer retransmissions made.
        attempts: u32,
    },
    /// Agent: no HandshakeResponse within [`Config::handshake_timeout`].
    #[error("handshake timed out; the client may not support the Session Manager handshake")]
    HandshakeTimedOut,
    /// Agent: the client failed a requested action.
    #[error("handshake refused by the client: {}", .0.join("; "))]
    HandshakeRejected(Vec<String>),
    /// A handshake payload did not read.
    #[error("handshake failed: {0}")]
    HandshakeMalformed(PayloadError),
}

/// How a session finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    /// By `channel_closed`: received (`by_peer`) or sent by [`Session::close`].
    Closed {
        /// Whether the other end (or the service) closed it.
        by_peer: bool,
    },
    /// By a failure.
    Failed(Failure),
}

/// A frame refused by [`Session::on_frame`]; the session is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The frame does not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A stream message of the type this side sends (e.g. `output_stream_data` at an agent).
    #[error("`{0}` is not a stream message this side receives")]
    WrongDirection(MessageType),
    /// An acknowledgement whose payload does not read.
    #[error("acknowledge: {0}")]
    Acknowledge(PayloadError),
}

/// A send refused; nothing was queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The session is finished.
    #[error("the session is finished")]
    Finished,
    /// Not enough room in the outgoing buffer; retry once acknowledgements have drained it.
    /// (A single send needing more than [`Config::outgoing_capacity`] messages never fits:
    /// split it.)
    #[error("outgoing buffer full: {used} of {capacity} messages in use, {needed} more needed")]
    BufferFull {
        /// Messages held or unacknowledged.
        used: usize,
        /// [`Config::outgoing_capacity`].
        capacity: usize,
        /// Messages this send needs.
        needed: usize,
    },
    /// Agent: [`Session::start`] was already called.
    #[error("the handshake was already started")]
    AlreadyStarted,
}

/// Counters, for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Stream messages given a sequence number.
    pub messages_sent: u64,
    /// Timer retransmissions.
    pub retransmissions: u64,
    /// Retransmissions triggered by acknowledgements of later messages.
    pub fast_retransmissions: u64,
    /// Messages resent by a reconnect or `start_publication`.
    pub reconnect_resends: u64,
    /// Acknowledgements sent (including re-acknowledgements of duplicates).
    pub acks_sent: u64,
    /// Acknowledgements that removed a message from the outgoing buffer.
    pub acks_received: u64,
    /// Acknowledgements for a sequence number not in the outgoing buffer.
    pub stale_acks: u64,
    /// Stream messages delivered in order.
    pub delivered: u64,
    /// Stream messages received again (already delivered or already buffered).
    pub duplicates: u64,
    /// Stream messages buffered because they arrived ahead of a gap.
    pub reordered: u64,
    /// Stream messages dropped unacknowledged because they were beyond the reorder window.
    pub beyond_window: u64,
}

#[derive(Debug)]
struct Pending {
    seq: i64,
    frame: Vec<u8>,
    /// `None` while paused and never sent.
    last_sent: Option<Instant>,
    /// Timer retransmissions since the last (re)connect.
    attempts: u32,
    /// Sent more than once: its acknowledgement gives no RTT sample.
    retransmitted: bool,
    /// Acknowledgements of later messages while this one was the oldest, since it was last
    /// sent.
    later_acks: u32,
}

/// Acknowledgements of later messages that trigger a fast retransmission of the oldest.
const FAST_RETRANSMIT_ACKS: u32 = 3;

/// The [`Config::ack_delay`] Portcullis's own agent and client use: far longer than a
/// terminal takes to echo, far shorter than any retransmission timeout (≥ 100 ms).
pub const ACK_DELAY: Duration = Duration::from_millis(2);

/// Deferred acknowledgements ([`Config::ack_delay`]) that are sent at once, however early.
const MAX_DEFERRED_ACKS: usize = 64;

#[derive(Debug)]
enum Handshake {
    /// Agent, before [`Session::start`].
    NotStarted,
    /// Agent, HandshakeRequest sent.
    AwaitingResponse {
        started: Instant,
        customer_message: String,
    },
    /// Client, nothing received yet.
    AwaitingRequest,
    /// Client, HandshakeResponse sent.
    AwaitingComplete,
    Complete,
}

/// One end of a data channel. See the [module documentation](self) for the rules.
#[derive(Debug)]
pub struct Session<R: Role> {
    config: Config,
    clock: WallClock,
    ids: IdGen,
    finished: Option<Finished>,
    handshake: Handshake,
    peer_version: Option<String>,
    session_type: Option<SessionTypeRequest>,
    // Sending.
    next_seq: i64,
    unacked: VecDeque<Pending>,
    held: VecDeque<(PayloadType, Vec<u8>)>,
    paused: bool,
    rtt: RttEstimator,
    // Receiving.
    expected: i64,
    reorder: BTreeMap<i64, ClientMessage>,
    /// Acknowledgements waiting for the next frame out, or for `acks_due`.
    deferred_acks: Vec<Vec<u8>>,
    acks_due: Option<Instant>,
    stats: Stats,
    role: PhantomData<fn() -> R>,
}

impl<R: Role> Session<R> {
    /// A new session. An agent then calls [`Session::start`]; a client waits for frames.
    pub fn new(config: Config, clock: WallClock) -> Session<R> {
        let handshake = match R::KIND {
            RoleKind::Agent => Handshake::NotStarted,
            RoleKind::Client => Handshake::AwaitingRequest,
        };
        Session {
            ids: IdGen::new(config.id_seed ^ clock.origin_unix_ms.rotate_left(32)),
            rtt: RttEstimator::new(&config),
            config,
            clock,
            finished: None,
            handshake,
            peer_version: None,
            session_type: None,
            next_seq: 0,
            unacked: VecDeque::new(),
            held: VecDeque::new(),
            paused: false,
            expected: 0,
            reorder: BTreeMap::new(),
            deferred_acks: Vec::new(),
            acks_due: None,
            stats: Stats::default(),
            role: PhantomData,
        }
    }

    /// Handles one binary frame from the socket.
    ///
    /// A refused frame returns an error and changes nothing. After the session finished,
    /// frames that decode are ignored.
    pub fn on_frame(&mut self, frame: &[u8], now: Instant) -> Result<Step, FrameError> {
        let mut step = self.frame_step(frame, now)?;
        self.release_acks(now, &mut step);
        Ok(step)
    }

    fn frame_step(&mut self, frame: &[u8], now: Instant) -> Result<Step, FrameError> {
        let message = ClientMessage::decode(frame)?;
        let mut step = Step::default();
        if self.finished.is_some() {
            return Ok(step);
        }
        match message.message_type {
            MessageType::Acknowledge => {
                let ack = AcknowledgeContent::from_json(&message.payload)
                    .map_err(FrameError::Acknowledge)?;
                self.resume(now, &mut step);
                self.on_ack(&ack, now, &mut step);
            }
            t if t == R::KIND.receives() => {
                self.resume(now, &mut step);
                self.on_stream(message, now, &mut step);
            }
            t @ (MessageType::InputStreamData | MessageType::OutputStreamData) => {
                return Err(FrameError::WrongDirection(t));
            }
            MessageType::ChannelClosed => {
                // The type is what counts (the plugin exits even if the payload is bad).
                let closed = ChannelClosed::from_json(&message.payload).unwrap_or_default();
                self.finished = Some(Finished::Closed { by_peer: true });
                step.events.push(Event::ChannelClosed(closed));
            }
            MessageType::PausePublication => {
                if !self.paused {
                    self.paused = true;
                    step.events.push(Event::PublicationPaused);
                }
            }
            MessageType::StartPublication => self.resend_all(now, &mut step),
        }
        Ok(step)
    }

    /// Queues data of any payload type as stream messages, cut into
    /// [`Config::max_payload_size`] pieces. Empty data sends nothing.
    pub fn send(
        &mut self,
        payload_type: PayloadType,
        data: &[u8],
        now: Instant,
    ) -> Result<Step, SendError> {
        let chunks = split_chunks(data, self.config.max_payload_size);
        self.send_messages(payload_type, &chunks, now)
    }

    /// Queues one stream message, whatever its length (for structured payloads).
    fn send_whole(
        &mut self,
        payload_type: PayloadType,
        payload: &[u8],
        now: Instant,
    ) -> Result<Step, SendError> {
        self.send_messages(payload_type, &[payload], now)
    }

    fn send_messages(
        &mut self,
        payload_type: PayloadType,
        payloads: &[&[u8]],
        now: Instant,
    ) -> Result<Step, SendError> {
        if self.finished.is_some() {
            return Err(SendError::Finished);
        }
        let used = self.unacked.len().saturating_add(self.held.len());
        let capacity = self.config.outgoing_capacity;
        if used.saturating_add(payloads.len()) > capacity {
            return Err(SendError::BufferFull {
                used,
                capacity,
                needed: payloads.len(),
            });
        }
        let mut step = Step::default();
        for payload in payloads {
            if self.is_handshake_complete() {
                self.enqueue(payload_type, payload.to_vec(), now, &mut step);
            } else {
                self.held.push_back((payload_type, payload.to_vec()));
            }
        }
        self.release_acks(now, &mut step);
        Ok(step)
    }

    /// Retransmits what is due and checks the handshake deadline. Call at
    /// [`Session::poll_timeout`] (calling more often is harmless).
    pub fn poll_timers(&mut self, now: Instant) -> Step {
        let mut step = Step::default();
        if self.finished.is_some() {
            return step;
        }
        self.due_timers(now, &mut step);
        self.release_acks(now, &mut step);
        step
    }

    fn due_timers(&mut self, now: Instant, step: &mut Step) {
        if let Handshake::AwaitingResponse { started, .. } = self.handshake {
            if started
                .checked_add(self.config.handshake_timeout)
                .is_some_and(|deadline| now >= deadline)
            {
                self.fail(Failure::HandshakeTimedOut, step);
                return;
            }
        }
        if self.paused {
            return;
        }
        self.send_unsent(now, step);
        let wait = self.resend_wait();
        let max_attempts = self.config.max_resend_attempts;
        let Some(oldest) = self.unacked.front_mut() else {
            return;
        };
        let due = oldest
            .last_sent
            .and_then(|t| t.checked_add(wait))
            .is_some_and(|due| now >= due);
        if !due {
            return;
        }
        if oldest.attempts >= max_attempts {
            let failure = Failure::ResendExhausted {
                sequence_number: oldest.seq,
                attempts: oldest.attempts,
            };
            self.fail(failure, step);
            return;
        }
        oldest.attempts = oldest.attempts.saturating_add(1);
        oldest.last_sent = Some(now);
        oldest.retransmitted = true;
        oldest.later_acks = 0;
        step.frames.push(oldest.frame.clone());
        self.stats.retransmissions = self.stats.retransmissions.saturating_add(1);
        self.rtt.back_off();
    }

    /// When [`Session::poll_timers`] next has something to do, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.finished.is_some() {
            return None;
        }
        let handshake = match self.handshake {
            Handshake::AwaitingResponse { started, .. } => {
                started.checked_add(self.config.handshake_timeout)
            }
            _ => None,
        };
        let resend = if self.paused {
            None
        } else {
            self.unacked
                .front()
                .and_then(|p| p.last_sent)
                .and_then(|t| t.checked_add(self.resend_wait()))
        };
        [handshake, resend, self.acks_due]
            .into_iter()
            .flatten()
            .min()
    }

    /// The socket was replaced (the client resumed the session): resends every
    /// unacknowledged message now, in order, and lifts a pause. Sequence numbers, buffers
    /// and the handshake state are kept; no new handshake happens. Resend attempt counts
    /// start again.
    ///
    /// A client calls this after sending its new `OpenDataChannel` frame; an agent when it
    /// learns the client is back (our relay may instead send it `start_publication`, which
    /// does the same).
    pub fn on_reconnect(&mut self, now: Instant) -> Step {
        let mut step = Step::default();
        if self.finished.is_none() {
            self.resend_all(now, &mut step);
            self.release_acks(now, &mut step);
        }
        step
    }

    /// Whether the handshake is over (always, once the session finished after it).
    pub fn is_handshake_complete(&self) -> bool {
        matches!(self.handshake, Handshake::Complete)
    }

    /// How the session finished, if it did.
    pub fn finished(&self) -> Option<&Finished> {
        self.finished.as_ref()
    }

    /// Messages sent (or sequenced while paused) and not yet acknowledged.
    pub fn unacknowledged(&self) -> usize {
        self.unacked.len()
    }

    /// Whether the newest stream message this side sequenced has been acknowledged (`true`
    /// before any). Older ones may still be unacknowledged: a peer that never acknowledges a
    /// message twice (AWS's plugin) leaves one so for good when its acknowledgement was lost
    /// with a socket. Over an in-order transport on which every older unacknowledged message
    /// was resent before the newest one (a reconnect resends them all, in order), this
    /// acknowledgement shows the peer has seen them all.
    pub fn is_newest_acknowledged(&self) -> bool {
        self.unacked
            .back()
            .is_none_or(|newest| newest.seq < self.next_seq.saturating_sub(1))
    }

    /// Messages held until the handshake completes.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Messages received ahead of a gap, waiting for it to fill.
    pub fn reorder_buffered(&self) -> usize {
        self.reorder.len()
    }

    /// The sequence number the next stream message will carry.
    pub fn next_sequence_number(&self) -> i64 {
        self.next_seq
    }

    /// The sequence number of the next stream message to deliver.
    pub fn expected_sequence_number(&self) -> i64 {
        self.expected
    }

    /// Whether `pause_publication` is in effect.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// The current retransmission timeout.
    pub fn rto(&self) -> Duration {
        self.rtt.rto()
    }

    /// The smoothed round-trip time.
    pub fn srtt(&self) -> Duration {
        self.rtt.srtt()
    }

    /// The round-trip time variation.
    pub fn rttvar(&self) -> Duration {
        self.rtt.rttvar()
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn resend_wait(&self) -> Duration {
        self.rtt.rto().max(self.config.min_resend_interval)
    }

    fn fail(&mut self, failure: Failure, step: &mut Step) {
        self.finished = Some(Finished::Failed(failure.clone()));
        step.events.push(Event::Failed(failure));
    }

    /// Gives `payload` the next sequence number, buffers it, and sends it unless paused.
    fn enqueue(
        &mut self,
        payload_type: PayloadType,
        payload: Vec<u8>,
        now: Instant,
        step: &mut Step,
    ) {
        let seq = self.next_seq;
        self.next_seq = seq.saturating_add(1);
        let flags = match R::KIND {
            RoleKind::Agent if seq == 0 => FLAG_SYN,
            _ => 0,
        };
        let frame = ClientMessage {
            message_type: R::KIND.sends(),
            schema_version: SCHEMA_VERSION,
            created_date: self.clock.unix_ms(now),
            sequence_number: seq,
            flags,
            message_id: self.ids.next_id(),
            payload_type,
            payload,
        }
        .encode();
        let last_sent = if self.paused {
            None
        } else {
            step.frames.push(frame.clone());
            Some(now)
        };
        self.unacked.push_back(Pending {
            seq,
            frame,
            last_sent,
            attempts: 0,
            retransmitted: false,
            later_acks: 0,
        });
        self.stats.messages_sent = self.stats.messages_sent.saturating_add(1);
    }

    fn release_held(&mut self, now: Instant, step: &mut Step) {
        while let Some((payload_type, payload)) = self.held.pop_front() {
            self.enqueue(payload_type, payload, now, step);
        }
    }

    /// Lifts a pause, sending what was never sent.
    fn resume(&mut self, now: Instant, step: &mut Step) {
        if self.paused {
            self.paused = false;
            step.events.push(Event::PublicationResumed);
            self.send_unsent(now, step);
        }
    }

    fn send_unsent(&mut self, now: Instant, step: &mut Step) {
        for pending in self.unacked.iter_mut().filter(|p| p.last_sent.is_none()) {
            pending.last_sent = Some(now);
            step.frames.push(pending.frame.clone());
        }
    }

    fn resend_all(&mut self, now: Instant, step: &mut Step) {
        if self.paused {
            self.paused = false;
            step.events.push(Event::PublicationResumed);
        }
        for pending in &mut self.unacked {
            if pending.last_sent.is_some() {
                pending.retransmitted = true;
                self.stats.reconnect_resends = self.stats.reconnect_resends.saturating_add(1);
            }
            pending.last_sent = Some(now);
            pending.attempts = 0;
            pending.later_acks = 0;
            step.frames.push(pending.frame.clone());
        }
    }

    fn on_ack(&mut self, ack: &AcknowledgeContent, now: Instant, step: &mut Step) {
        let Ok(index) = self
            .unacked
            .binary_search_by_key(&ack.sequence_number, |p| p.seq)
        else {
            self.stats.stale_acks = self.stats.stale_acks.saturating_add(1);
            return;
        };
        let Some(pending) = self.unacked.remove(index) else {
            return;
        };
        if let (false, Some(sent)) = (pending.retransmitted, pending.last_sent) {
            self.rtt.sample(now.saturating_duration_since(sent));
        }
        self.rtt.reset_back_off();
        self.stats.acks_received = self.stats.acks_received.saturating_add(1);
        if index > 0 {
            self.later_ack(now, step);
        }
    }

    /// An acknowledgement overtook the oldest message's. After [`FAST_RETRANSMIT_ACKS`] of
    /// them, if the oldest has had a round trip's time to be acknowledged, it is resent
    /// without waiting for its timer (over an ordered transport this means it, or its
    /// acknowledgement, was lost).
    fn later_ack(&mut self, now: Instant, step: &mut Step) {
        if self.paused {
            return;
        }
        let srtt = self.rtt.srtt();
        let Some(oldest) = self.unacked.front_mut() else {
            return;
        };
        let Some(sent) = oldest.last_sent else {
            return;
        };
        // The peer is alive: the exhaustion count is about silence.
        oldest.attempts = 0;
        oldest.later_acks = oldest.later_acks.saturating_add(1);
        if oldest.later_acks >= FAST_RETRANSMIT_ACKS && now.saturating_duration_since(sent) >= srtt
        {
            oldest.later_acks = 0;
            oldest.last_sent = Some(now);
            oldest.retransmitted = true;
            step.frames.push(oldest.frame.clone());
            self.stats.fast_retransmissions = self.stats.fast_retransmissions.saturating_add(1);
        }
    }

    fn on_stream(&mut self, message: ClientMessage, now: Instant, step: &mut Step) {
        let seq = message.sequence_number;
        if seq < self.expected {
            self.stats.duplicates = self.stats.duplicates.saturating_add(1);
            self.acknowledge(&message, now, step);
        } else if seq == self.expected {
            self.acknowledge(&message, now, step);
            self.expected = self.expected.saturating_add(1);
            self.deliver(message, now, step);
            while self.finished.is_none() {
                let Some(next) = self.reorder.remove(&self.expected) else {
                    break;
                };
                self.expected = self.expected.saturating_add(1);
                self.deliver(next, now, step);
            }
        } else if self.reorder.contains_key(&seq) {
            self.stats.duplicates = self.stats.duplicates.saturating_add(1);
            self.acknowledge(&message, now, step);
        } else if usize::try_from(seq.saturating_sub(self.expected))
            .map_or(true, |ahead| ahead >= self.config.incoming_capacity)
        {
            self.stats.beyond_window = self.stats.beyond_window.saturating_add(1);
        } else {
            self.stats.reordered = self.stats.reordered.saturating_add(1);
            self.acknowledge(&message, now, step);
            self.reorder.insert(seq, message);
        }
    }

    fn acknowledge(&mut self, message: &ClientMessage, now: Instant, step: &mut Step) {
        let content = AcknowledgeContent {
            message_type: message.message_type.as_str().to_owned(),
            message_id: message.message_id.to_string(),
            sequence_number: message.sequence_number,
            is_sequential_message: true,
        };
        let ack = ClientMessage::control(
            MessageType::Acknowledge,
            self.ids.next_id(),
            self.clock.unix_ms(now),
            content.to_json(),
        );
        self.stats.acks_sent = self.stats.acks_sent.saturating_add(1);
        let delay = self.config.ack_delay;
        match now.checked_add(delay).filter(|_| !delay.is_zero()) {
            Some(due) => {
                self.deferred_acks.push(ack.encode());
                self.acks_due.get_or_insert(due);
            }
            None => step.frames.push(ack.encode()),
        }
    }

    /// Sends the deferred acknowledgements behind the step's own frames, if it has any, or
    /// when they are due or too many.
    fn release_acks(&mut self, now: Instant, step: &mut Step) {
        let due = self.acks_due.is_some_and(|due| now >= due);
        let release =
            due || !step.frames.is_empty() || self.deferred_acks.len() >= MAX_DEFERRED_ACKS;
        if release && !self.deferred_acks.is_empty() {
            step.frames.append(&mut self.deferred_acks);
        }
        if self.deferred_acks.is_empty() {
            self.acks_due = None;
        }
    }

    fn deliver(&mut self, message: ClientMessage, now: Instant, step: &mut Step) {
        self.stats.delivered = self.stats.delivered.saturating_add(1);
        match (R::KIND, message.payload_type) {
            (RoleKind::Agent, PayloadType::HandshakeResponse) => {
                self.on_handshake_response(&message.payload, now, step);
            }
            (RoleKind::Client, PayloadType::HandshakeRequest) => {
                self.on_handshake_request(&message.payload, now, step);
            }
            (RoleKind::Client, PayloadType::HandshakeComplete) => {
                self.on_handshake_complete(&message.payload, now, step);
            }
            _ => {
                if matches!(self.handshake, Handshake::AwaitingRequest) {
                    // An agent that does not do the handshake (the plugin's legacy path):
                    // the session starts with its first message.
                    self.handshake = Handshake::Complete;
                    self.release_held(now, step);
                }
                step.events.push(Event::Data(StreamData {
                    sequence_number: message.sequence_number,
                    payload_type: message.payload_type,
                    payload: message.payload,
                }));
            }
        }
    }

    /// Agent: the client's answer.
    fn on_handshake_response(&mut self, payload: &[u8], now: Instant, step: &mut Step) {
        let Handshake::AwaitingResponse {
            started,
            customer_message,
        } = &self.handshake
        else {
            // Unsolicited or repeated: nothing to do.
            return;
        };
        let (started, customer_message) = (*started, customer_message.clone());
        let response = match HandshakeResponse::from_json(payload) {
            Ok(response) => response,
            Err(e) => return self.fail(Failure::HandshakeMalformed(e), step),
        };
        let failures = response.failures();
        if !failures.is_empty() {
            return self.fail(Failure::HandshakeRejected(failures), step);
        }
        let complete =
            HandshakeComplete::new(now.saturating_duration_since(started), &customer_message);
        self.handshake = Handshake::Complete;
        self.peer_version = Some(response.client_version.clone());
        self.enqueue(
            PayloadType::HandshakeComplete,
            complete.to_json(),
            now,
            step,
        );
        step.events.push(Event::HandshakeResponse(response));
        self.release_held(now, step);
    }

    /// Client: the agent's request. Answers every action.
    fn on_handshake_request(&mut self, payload: &[u8], now: Instant, step: &mut Step) {
        if !matches!(self.handshake, Handshake::AwaitingRequest) {
            return;
        }
        let request = match HandshakeRequest::from_json(payload) {
            Ok(request) => request,
            Err(e) => return self.fail(Failure::HandshakeMalformed(e), step),
        };
        let mut processed = Vec::new();
        let mut errors = Vec::new();
        for action in &request.requested_client_actions {
            let (status, error) = match &action.action_type {
                ActionType::SessionType => match action.as_session_type() {
                    Some(Ok(st)) if session_type::ALL.contains(&st.session_type.as_str()) => {
                        self.session_type = Some(st);
                        (ActionStatus::Success, String::new())
                    }
                    Some(Ok(st)) => (
                        ActionStatus::Failed,
                        format!("unknown session type `{}`", st.session_type),
                    ),
                    Some(Err(e)) => (ActionStatus::Failed, e.to_string()),
                    None => (ActionStatus::Failed, "not a SessionType action".to_owned()),
                },
                ActionType::KmsEncryption => (
                    ActionStatus::Failed,
                    "KMS encryption is not supported by this client".to_owned(),
                ),
                ActionType::Other(name) => (
                    ActionStatus::Unsupported,
                    format!("unsupported action `{name}`"),
                ),
            };
            if !error.is_empty() {
                errors.push(error.clone());
            }
            processed.push(ProcessedClientAction {
                action_type: action.action_type.clone(),
                action_status: status,
                action_result: Value::Null,
                error,
            });
        }
        let response = HandshakeResponse {
            client_version: self.config.client_version.clone(),
            processed_client_actions: processed,
            errors: (!errors.is_empty()).then_some(errors),
        };
        self.peer_version = Some(request.agent_version.clone());
        self.handshake = Handshake::AwaitingComplete;
        self.enqueue(
            PayloadType::HandshakeResponse,
            response.to_json(),
            now,
            step,
        );
        step.events.push(Event::HandshakeRequest(request));
    }

    /// Client: the agent is done.
    fn on_handshake_complete(&mut self, payload: &[u8], now: Instant, step: &mut Step) {
        if self.is_handshake_complete() {
            return;
        }
        match HandshakeComplete::from_json(payload) {
            Ok(complete) => {
                self.handshake = Handshake::Complete;
                step.events.push(Event::HandshakeComplete(complete));
                self.release_held(now, step);
            }
            Err(e) => self.fail(Failure::HandshakeMalformed(e), step),
        }
    }
}

impl Session<Agent> {
    /// Sends the handshake request (sequence number 0, payload type 5, flag SYN).
    /// `customer_message` goes in the HandshakeComplete (the plugin prints it).
    pub fn start(
        &mut self,
        request: &HandshakeRequest,
        customer_message: &str,
        now: Instant,
    ) -> Result<Step, SendError> {
        if self.finished.is_some() {
            return Err(SendError::Finished);
        }
        if !matches!(self.handshake, Handshake::NotStarted) {
            return Err(SendError::AlreadyStarted);
        }
        self.handshake = Handshake::AwaitingResponse {
            started: now,
            customer_message: customer_message.to_owned(),
        };
        let mut step = Step::default();
        self.enqueue(
            PayloadType::HandshakeRequest,
            request.to_json(),
            now,
            &mut step,
        );
        self.release_acks(now, &mut step);
        Ok(step)
    }

    /// Terminal output (payload type 1).
    pub fn send_output(&mut self, data: &[u8], now: Instant) -> Result<Step, SendError> {
        self.send(PayloadType::Output, data, now)
    }

    /// Standard error, for clients that asked for it separately (payload type 11).
    pub fn send_stderr(&mut self, data: &[u8], now: Instant) -> Result<Step, SendError> {
        self.send(PayloadType::StdErr, data, now)
    }

    /// A command's exit code (payload type 12, `EXIT_CODE: <n>`).
    pub fn send_exit_code(&mut self, code: i32, now: Instant) -> Result<Step, SendError> {
        self.send_whole(PayloadType::ExitCode, &exit_code_payload(code), now)
    }

    /// A flag (payload type 10), e.g. [`Flag::ConnectToPortError`] in port sessions.
    pub fn send_flag(&mut self, flag: Flag, now: Instant) -> Result<Step, SendError> {
        self.send_whole(PayloadType::Flag, &flag.to_payload(), now)
    }

    /// Ends the session with a `channel_closed` message (not sequenced, not acknowledged).
    /// `output` is shown to the user; empty for a normal end.
    ///
    /// The plugin exits as soon as it reads it, so close once [`Session::unacknowledged`]
    /// is 0 (or a grace period has passed) or the tail of the output may be lost.
    pub fn close(
        &mut self,
        session_id: &str,
        destination_id: &str,
        output: &str,
        now: Instant,
    ) -> Step {
        let mut step = Step::default();
        if matches!(self.finished, Some(Finished::Closed { .. })) {
            return step;
        }
        step.frames.append(&mut self.deferred_acks);
        self.acks_due = None;
        let id = self.ids.next_id();
        let created = self.clock.unix_ms(now);
        let payload = ChannelClosed {
            message_id: id.to_string(),
            created_date: created.to_string(),
            destination_id: destination_id.to_owned(),
            session_id: session_id.to_owned(),
            message_type: MessageType::ChannelClosed.as_str().to_owned(),
            schema_version: i64::from(SCHEMA_VERSION),
            output: output.to_owned(),
        };
        let frame =
            ClientMessage::control(MessageType::ChannelClosed, id, created, payload.to_json());
        step.frames.push(frame.encode());
        self.finished = Some(Finished::Closed { by_peer: false });
        step
    }

    /// The client's version, from its HandshakeResponse.
    pub fn client_version(&self) -> Option<&str> {
        self.peer_version.as_deref()
    }
}

impl Session<Client> {
    /// Keystrokes (payload type 1). The plugin sends at most 1024 bytes per message and
    /// rewrites a lone `\n` to `\r`; that is the terminal's business, not done here.
    pub fn send_input(&mut self, data: &[u8], now: Instant) -> Result<Step, SendError> {
        self.send(PayloadType::Output, data, now)
    }

    /// The terminal size (payload type 3).
    pub fn send_size(&mut self, size: SizeData, now: Instant) -> Result<Step, SendError> {
        self.send_whole(PayloadType::Size, &size.to_json(), now)
    }

    /// A flag (payload type 10), e.g. [`Flag::TerminateSession`].
    pub fn send_flag(&mut self, flag: Flag, now: Instant) -> Result<Step, SendError> {
        self.send_whole(PayloadType::Flag, &flag.to_payload(), now)
    }

    /// The agent's version, from its HandshakeRequest.
    pub fn agent_version(&self) -> Option<&str> {
        self.peer_version.as_deref()
    }

    /// The accepted session type and its properties, from the HandshakeRequest.
    pub fn session_type(&self) -> Option<&SessionTypeRequest> {
        self.session_type.as_ref()
    }
}

/// Cuts `data` into pieces of at most `max` bytes (at least 4). A cut that would fall inside
/// a UTF-8 sequence moves back to the sequence's first byte, so text arrives in whole
/// characters when the caller writes whole characters.
fn split_chunks(data: &[u8], max: usize) -> Vec<&[u8]> {
    let max = max.max(4);
    let mut chunks = Vec::with_capacity(data.len().div_ceil(max));
    let mut rest = data;
    while !rest.is_empty() {
        if rest.len() <= max {
            chunks.push(rest);
            break;
        }
        let is_continuation = |i: usize| rest.get(i).is_some_and(|b| b & 0xC0 == 0x80);
        let mut cut = max;
        while cut > max - 3 && is_continuation(cut) {
            cut -= 1;
        }
        // Move back only onto the lead byte of a multi-byte sequence; otherwise the bytes
        // are not UTF-8 here and a plain cut is as good as any.
        if cut != max && rest.get(cut).is_none_or(|b| b & 0xC0 != 0xC0) {
            cut = max;
        }
        match rest.split_at_checked(cut) {
            Some((head, tail)) => {
                chunks.push(head);
                rest = tail;
            }
            None => {
                chunks.push(rest);
                break;
            }
        }
    }
    chunks
}

/// Message ids from a splitmix64 sequence, as version-4 UUIDs.
#[derive(Debug, Clone)]
struct IdGen(u64);

impl IdGen {
    fn new(seed: u64) -> IdGen {
        IdGen(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn next_id(&mut self) -> MessageId {
        let high = u128::from(self.next_u64());
        let low = u128::from(self.next_u64());
        MessageId::from_random(((high << 64) | low).to_be_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_respect_the_limit_and_utf8() {
        let data = vec![b'a'; 2500];
        let sizes: Vec<usize> = split_chunks(&data, 1024).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [1024, 1024, 452]);
        assert!(split_chunks(b"", 1024).is_empty());

        // "é" is 2 bytes: a cut at 5 would split the third one.
        let text = "ééééé".as_bytes();
        let chunks = split_chunks(text, 5);
        assert_eq!(chunks.concat(), text);
        for chunk in &chunks {
            assert!(std::str::from_utf8(chunk).is_ok(), "{chunk:?}");
        }
        // A 4-byte character straddling the limit.
        let text = "ab😀cd".as_bytes();
        let chunks = split_chunks(text, 4);
        assert_eq!(chunks, [&b"ab"[..], "😀".as_bytes(), b"cd"]);

        // Not UTF-8: plain cuts.
        let bytes = [0x80_u8; 10];
        let sizes: Vec<usize> = split_chunks(&bytes, 4).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [4, 4, 2]);
    }

    #[test]
    fn ids_are_distinct() {
        let mut ids = IdGen::new(7);
        let a = ids.next_id();
        let b = ids.next_id();
        assert_ne!(a, b);
        assert_eq!(a.to_string().as_bytes().get(14), Some(&b'4'));
    }

    /// Hands every frame to the other side until neither has more; `lose` drops the
    /// client's acknowledgements of the agent's messages up to that sequence number.
    fn exchange(
        agent: &mut Session<Agent>,
        client: &mut Session<Client>,
        mut to_client: Vec<Vec<u8>>,
        lose: i64,
        now: Instant,
    ) {
        while !to_client.is_empty() {
            let mut to_agent = Vec::new();
            for frame in to_client.drain(..) {
                for reply in client
                    .on_frame(&frame, now)
                    .map(|s| s.frames)
                    .unwrap_or_default()
                {
                    let lost = ClientMessage::decode(&reply).is_ok_and(|m| {
                        m.message_type == MessageType::Acknowledge
                            && AcknowledgeContent::from_json(&m.payload)
                                .is_ok_and(|a| a.sequence_number <= lose)
                    });
                    if !lost {
                        to_agent.push(reply);
                    }
                }
            }
            for frame in to_agent {
                if let Ok(step) = agent.on_frame(&frame, now) {
                    to_client.extend(step.frames);
                }
            }
        }
    }

    #[test]
    fn the_newest_message_acknowledged_despite_an_older_lost_acknowledgement() {
        let now = Instant::now();
        let clock = WallClock::new(now, 1_700_000_000_000);
        let mut agent = Session::<Agent>::new(Config::default(), clock);
        let mut client = Session::<Client>::new(Config::default(), clock);
        assert!(agent.is_newest_acknowledged());
        let request = HandshakeRequest::new("3.3.0.0", session_type::STANDARD_STREAM, Value::Null)
            .unwrap_or_else(|e| panic!("{e}"));
        let start = agent.start(&request, "", now).unwrap_or_default();
        exchange(&mut agent, &mut client, start.frames, -1, now);
        assert!(agent.is_handshake_complete() && agent.is_newest_acknowledged());

        // Delivered, but its acknowledgement is lost.
        let seq = agent.next_sequence_number();
        let out = agent.send_output(b"one", now).unwrap_or_default();
        exchange(&mut agent, &mut client, out.frames, seq, now);
        assert_eq!(agent.unacknowledged(), 1);
        assert!(!agent.is_newest_acknowledged());

        // A newer message is acknowledged: the newest is, the older one still is not.
        let out = agent.send_output(b"two", now).unwrap_or_default();
        exchange(&mut agent, &mut client, out.frames, seq, now);
        assert_eq!(agent.unacknowledged(), 1);
        assert!(agent.is_newest_acknowledged());
    }

    #[test]
    fn wall_clock_never_reads_zero() {
        let origin = Instant::now();
        let clock = WallClock::new(origin, 0);
        assert_eq!(clock.unix_ms(origin), 1);
        let clock = WallClock::new(origin, 1_700_000_000_000);
        assert_eq!(
            clock.unix_ms(origin + Duration::from_millis(1500)),
            1_700_000_001_500
        );
    }
}
