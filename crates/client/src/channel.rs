//! The client's end of a data channel, over a WebSocket: open it with the `OpenDataChannel`
//! frame, drive [`Session<Client>`] (handshake, input, terminal size, output), survive a
//! dropped socket with `ResumeSession` and a new token, and end on `channel_closed`.
//!
//! The transport-free logic is `portcullis_stream`'s; this module adds the socket, the clock
//! and the application: input arrives as [`Input`] on a channel (the terminal module feeds it
//! from stdin and signals; tests feed it directly), output goes to two writers (stdout,
//! stderr).
//!
//! **Resume.** When the socket drops (closed, read or write error, or nothing heard for three
//! keepalive periods) the driver calls `ResumeSession` through the same endpoint, opens the
//! returned stream URL with the new token, and calls [`Session::on_reconnect`], which resends
//! everything the agent has not acknowledged; the agent does the same when the server tells
//! it the client is back. Keystrokes typed meanwhile are queued. Up to
//! [`ChannelOptions::reconnect_attempts`] tries, with exponential backoff, as the plugin does.
//!
//! **Resume from another process** (`portcullis session resume`). The sequence numbers live
//! in the client's memory, so a new process needs them: while a session runs, the driver
//! keeps a small state file ([`SavedState`]: the next sequence number expected from the agent,
//! the client's first unacknowledged one and how many were unacknowledged), and
//! [`restore_session`] rebuilds a `Session<Client>` at that point.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use portcullis_stream::message::{ClientMessage, MessageId, MessageType, PayloadType};
use portcullis_stream::{
    session_type, AcknowledgeContent, Client, Config, Event, Failure, HandshakeComplete,
    HandshakeRequest, OpenDataChannel, SendError, Session, SizeData, Step, WallClock,
};
use serde_json::{json, Value};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::api::{ApiError, SsmClient, StreamGrant};
use crate::net::{self, NetError, WebSocket};

/// What the user (or a test) does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Bytes typed or piped in.
    Data(Vec<u8>),
    /// The terminal's size (at start and on every change).
    Size(SizeData),
    /// Standard input ended.
    Eof,
    /// Stop here and leave the session running (SIGTERM, SIGHUP): it can be resumed.
    Detach(String),
}

/// What to do when standard input ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnEof {
    /// Nothing: keep the session until the remote end closes it.
    Nothing,
    /// Send Ctrl-D (0x04) once, so a remote shell at its prompt exits, as `ssh` behaves
    /// with piped input.
    SendEot,
}

/// Tuning and behaviour.
#[derive(Debug, Clone)]
pub struct ChannelOptions {
    /// The version in `OpenDataChannel` and the HandshakeResponse.
    pub client_version: String,
    /// Tries of `ResumeSession` + reconnect after the socket drops.
    pub reconnect_attempts: u32,
    /// Backoff before the first retry; doubles each time.
    pub reconnect_initial_delay: Duration,
    /// Backoff cap.
    pub reconnect_max_delay: Duration,
    /// WebSocket ping interval; three intervals with nothing received count as a drop.
    pub keepalive: Duration,
    /// What end of input means.
    pub on_eof: OnEof,
    /// Where to keep [`SavedState`] while the session runs (removed when it closes).
    pub state_file: Option<PathBuf>,
    /// The stream's own tuning.
    pub stream: Config,
    /// Called once when the session is ready for the user (the handshake is complete, or a
    /// legacy agent's first output arrived, or at once for a restored session): the terminal
    /// goes raw only then, so Ctrl-C can still abort a session that never starts.
    pub on_ready: Option<ReadyHook>,
}

/// A callback for [`ChannelOptions::on_ready`].
#[derive(Clone)]
pub struct ReadyHook(pub std::sync::Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for ReadyHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadyHook")
    }
}

impl Default for ChannelOptions {
    fn default() -> ChannelOptions {
        ChannelOptions {
            client_version: crate::PLUGIN_VERSION.to_owned(),
            reconnect_attempts: 5,
            reconnect_initial_delay: Duration::from_millis(150),
            reconnect_max_delay: Duration::from_secs(5),
            keepalive: Duration::from_secs(30),
            on_eof: OnEof::Nothing,
            state_file: None,
            stream: Config {
                ack_delay: portcullis_stream::ACK_DELAY,
                ..Config::default()
            },
            on_ready: None,
        }
    }
}

/// How a session ended for this client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The agent (or the service) sent `channel_closed`: the session is over.
    Closed {
        /// Text for the user (empty for a normal end).
        output: String,
    },
    /// `ResumeSession` returned no token: the session timed out.
    TimedOut,
    /// Stopped locally ([`Input::Detach`]); the session is still running and resumable.
    Detached {
        /// Why (the signal).
        reason: String,
    },
    /// The socket is gone and could not be resumed.
    Lost {
        /// The last error.
        reason: String,
    },
    /// The protocol failed (handshake, resends exhausted).
    Failed {
        /// What failed.
        reason: String,
    },
}

/// The result of [`Channel::run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The session.
    pub session_id: String,
    /// How it ended.
    pub end: End,
    /// The remote command's exit code, when the agent reported one (payload type 12).
    pub exit_code: Option<i32>,
}

impl Outcome {
    /// The line the plugin prints when a session closes (`HandleChannelClosedMessage`), or
    /// `None` when it did not close.
    pub fn closing_message(&self) -> Option<String> {
        match &self.end {
            End::Closed { output } if output.is_empty() => Some(format!(
                "\n\nExiting session with sessionId: {}.\n\n",
                self.session_id
            )),
            End::Closed { output } => Some(format!(
                "\n\nSessionId: {} : {}\n\n",
                self.session_id, output
            )),
            End::TimedOut => Some(format!("Session: {} timed out.\n", self.session_id)),
            _ => None,
        }
    }
}

/// Where a session's sequence numbers stood, for resuming it from another process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedState {
    /// The session.
    pub session_id: String,
    /// The data channel URL.
    pub stream_url: String,
    /// The agent's version, from its handshake.
    pub agent_version: String,
    /// The next sequence number expected from the agent.
    pub expected: i64,
    /// The client's oldest unacknowledged sequence number (its next one if none).
    pub first_unacked: i64,
    /// How many of the client's messages were unacknowledged.
    pub unacked: usize,
}

impl SavedState {
    /// The state of a running session.
    pub fn of(session: &Session<Client>, session_id: &str, stream_url: &str) -> SavedState {
        let unacked = session.unacknowledged();
        let next = session.next_sequence_number();
        SavedState {
            session_id: session_id.to_owned(),
            stream_url: stream_url.to_owned(),
            agent_version: session.agent_version().unwrap_or_default().to_owned(),
            expected: session.expected_sequence_number(),
            first_unacked: next.saturating_sub(i64::try_from(unacked).unwrap_or(i64::MAX)),
            unacked,
        }
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        json!({
            "SessionId": self.session_id,
            "StreamUrl": self.stream_url,
            "AgentVersion": self.agent_version,
            "Expected": self.expected,
            "FirstUnacked": self.first_unacked,
            "Unacked": self.unacked,
        })
        .to_string()
    }

    /// Reads the JSON form.
    pub fn from_json(text: &str) -> Option<SavedState> {
        let v: Value = serde_json::from_str(text).ok()?;
        Some(SavedState {
            session_id: v.get("SessionId")?.as_str()?.to_owned(),
            stream_url: v.get("StreamUrl")?.as_str()?.to_owned(),
            agent_version: v.get("AgentVersion")?.as_str()?.to_owned(),
            expected: v.get("Expected")?.as_i64()?,
            first_unacked: v.get("FirstUnacked")?.as_i64()?,
            unacked: usize::try_from(v.get("Unacked")?.as_u64()?).ok()?,
        })
    }

    /// Reads a state file.
    pub fn load(path: &Path) -> Option<SavedState> {
        SavedState::from_json(&std::fs::read_to_string(path).ok()?)
    }

    /// Writes a state file (via a temporary file and a rename).
    pub fn store(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, self.to_json())?;
        std::fs::rename(&tmp, path)
    }
}

fn random_id() -> MessageId {
    MessageId::from_random(rand::random::<u128>().to_be_bytes())
}

/// A random version-4 UUID, hyphenated.
pub fn uuid() -> String {
    random_id().to_string()
}

/// Rebuilds a client session where [`SavedState`] left it, with the stream's public API:
/// it replays the agent's handshake and `expected` stream messages into a fresh session,
/// and acknowledges the client's own messages up to `first_unacked`. Then it queues
/// `unacked` size messages: those sequence numbers may or may not have reached the agent,
/// and a size message is harmless either way, so the agent's expected number and ours agree
/// whichever it is. [`Session::on_reconnect`] sends them after the new `OpenDataChannel`.
///
/// (A `Session::restore` in `portcullis_stream` would make this replay unnecessary.)
pub fn restore_session(
    config: Config,
    clock: WallClock,
    saved: &SavedState,
    size: SizeData,
    now: Instant,
) -> Session<Client> {
    let mut session = Session::<Client>::new(config, clock);
    let created = clock.unix_ms(now);
    let from_agent = |seq: i64, payload_type: PayloadType, payload: Vec<u8>| {
        ClientMessage {
            message_type: MessageType::OutputStreamData,
            schema_version: 1,
            created_date: created,
            sequence_number: seq,
            flags: 0,
            message_id: random_id(),
            payload_type,
            payload,
        }
        .encode()
    };
    let ack = |seq: i64| {
        let content = AcknowledgeContent {
            message_type: MessageType::InputStreamData.as_str().to_owned(),
            message_id: String::new(),
            sequence_number: seq,
            is_sequential_message: true,
        };
        ClientMessage::control(
            MessageType::Acknowledge,
            random_id(),
            created,
            content.to_json(),
        )
        .encode()
    };
    // Replayed frames are built here and always decode; their answers are discarded.
    let feed = |session: &mut Session<Client>, frame: Vec<u8>| {
        let _ = session.on_frame(&frame, now);
    };
    let mut next_agent = 0_i64;
    if saved.expected >= 2 {
        let version = if portcullis_stream::payload::is_four_part_version(&saved.agent_version) {
            saved.agent_version.as_str()
        } else {
            "3.0.0.0"
        };
        if let Ok(request) =
            HandshakeRequest::new(version, session_type::STANDARD_STREAM, Value::Null)
        {
            feed(
                &mut session,
                from_agent(0, PayloadType::HandshakeRequest, request.to_json()),
            );
            // Our HandshakeResponse took sequence number 0.
            feed(&mut session, ack(0));
            let complete = HandshakeComplete::new(Duration::ZERO, "");
            feed(
                &mut session,
                from_agent(1, PayloadType::HandshakeComplete, complete.to_json()),
            );
            next_agent = 2;
        }
    }
    while next_agent < saved.expected {
        feed(
            &mut session,
            from_agent(next_agent, PayloadType::Output, Vec::new()),
        );
        next_agent += 1;
    }
    while session.next_sequence_number() < saved.first_unacked {
        let seq = session.next_sequence_number();
        if session.send_size(size, now).is_err() {
            break;
        }
        feed(&mut session, ack(seq));
    }
    for _ in 0..saved.unacked {
        let _ = session.send_size(size, now);
    }
    session
}

/// Why [`Channel::run`] could not start at all.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The first connection failed.
    #[error(transparent)]
    Connect(#[from] NetError),
}

/// A data channel to drive.
pub struct Channel<'a> {
    grant: StreamGrant,
    api: Option<&'a SsmClient>,
    tls: std::sync::Arc<rustls::ClientConfig>,
    options: ChannelOptions,
    restored: Option<Session<Client>>,
}

impl<'a> Channel<'a> {
    /// A channel for what `StartSession` (or `ResumeSession`) returned. `api` is used to
    /// resume after a drop (and to terminate the session if the agent stops
    /// acknowledging); without it a drop ends the run.
    pub fn new(
        grant: StreamGrant,
        api: Option<&'a SsmClient>,
        tls: std::sync::Arc<rustls::ClientConfig>,
        options: ChannelOptions,
    ) -> Channel<'a> {
        Channel {
            grant,
            api,
            tls,
            options,
            restored: None,
        }
    }

    /// Continues a session from [`SavedState`] (see [`restore_session`]) instead of starting
    /// with a handshake.
    pub fn restore(mut self, saved: &SavedState, size: SizeData) -> Channel<'a> {
        let clock = WallClock::system();
        let mut config = self.options.stream.clone();
        config.client_version = self.options.client_version.clone();
        self.restored = Some(restore_session(config, clock, saved, size, Instant::now()));
        self
    }

    /// Runs the session until it closes, is detached, or is lost.
    pub async fn run<O, E>(
        self,
        input: &mut mpsc::Receiver<Input>,
        out: &mut O,
        err: &mut E,
    ) -> Result<Outcome, ChannelError>
    where
        O: AsyncWrite + Unpin,
        E: AsyncWrite + Unpin,
    {
        let Channel {
            grant,
            api,
            tls,
            options,
            restored,
        } = self;
        let client_id = uuid();
        let reconnecting = restored.is_some();
        let session = restored.unwrap_or_else(|| {
            let mut config = options.stream.clone();
            config.client_version = options.client_version.clone();
            config.id_seed = rand::random();
            Session::<Client>::new(config, WallClock::system())
        });
        let ws = open(
            &grant.stream_url,
            &grant.token_value,
            &client_id,
            &options,
            &tls,
        )
        .await?;
        let mut driver = Driver {
            session,
            session_id: grant.session_id.clone(),
            stream_url: grant.stream_url.clone(),
            client_id,
            api,
            tls,
            options,
            exit_code: None,
            pending: VecDeque::new(),
            input_open: true,
            last_saved: None,
            last_heard: Instant::now(),
            ready: false,
        };
        let end = driver.drive(ws, reconnecting, input, out, err).await;
        let _ = out.flush().await;
        let _ = err.flush().await;
        match (&end, &driver.options.state_file) {
            (End::Closed { .. } | End::TimedOut, Some(path)) => {
                let _ = std::fs::remove_file(path);
            }
            (_, Some(path)) => {
                let _ = SavedState::of(&driver.session, &driver.session_id, &driver.stream_url)
                    .store(path);
            }
            _ => {}
        }
        Ok(Outcome {
            session_id: driver.session_id,
            end,
            exit_code: driver.exit_code,
        })
    }
}

/// Connects and sends `OpenDataChannel`.
async fn open(
    url: &str,
    token: &str,
    client_id: &str,
    options: &ChannelOptions,
    tls: &std::sync::Arc<rustls::ClientConfig>,
) -> Result<WebSocket, NetError> {
    let mut ws = net::websocket(url, tls).await?;
    let frame = OpenDataChannel::client(&uuid(), token, client_id, &options.client_version);
    ws.send(Message::Text(frame.to_json().into()))
        .await
        .map_err(|e| NetError::io("sending OpenDataChannel", e))?;
    Ok(ws)
}

/// What an iteration of the loop decided.
enum Next {
    Continue,
    Reconnect(String),
    Finish(End),
}

struct Driver<'a> {
    session: Session<Client>,
    session_id: String,
    stream_url: String,
    client_id: String,
    api: Option<&'a SsmClient>,
    tls: std::sync::Arc<rustls::ClientConfig>,
    options: ChannelOptions,
    exit_code: Option<i32>,
    /// Input read while reconnecting, to send once connected.
    pending: VecDeque<Input>,
    input_open: bool,
    last_saved: Option<(i64, i64, usize)>,
    last_heard: Instant,
    ready: bool,
}

/// How long to wait, after `channel_closed`, for the server to close the socket.
const CLOSE_GRACE: Duration = Duration::from_millis(500);

/// Most input items queued while reconnecting before input is left unread (backpressure).
const MAX_PENDING: usize = 4096;

impl Driver<'_> {
    fn has_room(&self) -> bool {
        let used = self
            .session
            .unacknowledged()
            .saturating_add(self.session.held());
        used.saturating_add(8) < self.session.config().outgoing_capacity
    }

    async fn drive<O, E>(
        &mut self,
        mut ws: WebSocket,
        reconnecting: bool,
        input: &mut mpsc::Receiver<Input>,
        out: &mut O,
        err: &mut E,
    ) -> End
    where
        O: AsyncWrite + Unpin,
        E: AsyncWrite + Unpin,
    {
        let mut first = if reconnecting {
            self.session.on_reconnect(Instant::now()).frames
        } else {
            Vec::new()
        };
        let mut keepalive = tokio::time::interval(self.options.keepalive);
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        keepalive.tick().await;
        let mut save = tokio::time::interval(Duration::from_millis(500));
        save.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.last_heard = Instant::now();
        self.mark_ready();
        loop {
            let mut next = Next::Continue;
            if !first.is_empty() {
                if let Err(e) = write(&mut ws, std::mem::take(&mut first)).await {
                    next = Next::Reconnect(e);
                }
            }
            // Input queued while reconnecting goes first, in order.
            while matches!(next, Next::Continue) && self.has_room() {
                let Some(item) = self.pending.pop_front() else {
                    break;
                };
                next = self.on_input(Some(item), &mut ws).await;
            }
            if matches!(next, Next::Continue) {
                let deadline = self.session.poll_timeout();
                let room = self.has_room() && self.pending.is_empty();
                next = tokio::select! {
                    msg = ws.next() => self.on_socket(msg, &mut ws, out, err).await,
                    item = input.recv(), if self.input_open && room => self.on_input(item, &mut ws).await,
                    _ = sleep_until(deadline), if deadline.is_some() => {
                        let step = self.session.poll_timers(Instant::now());
                        self.on_step(step, &mut ws, out, err).await
                    }
                    _ = keepalive.tick() => {
                        if self.last_heard.elapsed() > self.options.keepalive.saturating_mul(3) {
                            Next::Reconnect("nothing heard from the server".to_owned())
                        } else {
                            match ws.send(Message::Ping(b"keepalive".to_vec().into())).await {
                                Ok(()) => Next::Continue,
                                Err(e) => Next::Reconnect(e.to_string()),
                            }
                        }
                    }
                    _ = save.tick() => {
                        self.save_state();
                        Next::Continue
                    }
                };
            }
            match next {
                Next::Continue => {}
                Next::Finish(end) => {
                    if matches!(end, End::Closed { .. }) {
                        // Let the server close first: it does once the agent's side is gone,
                        // and a client that hangs up first makes it record the ended
                        // session as Disconnected if the two race (see the crate's notes).
                        let drain = async { while let Some(Ok(_)) = ws.next().await {} };
                        let _ = tokio::time::timeout(CLOSE_GRACE, drain).await;
                    }
                    let _ = ws.close(None).await;
                    return end;
                }
                Next::Reconnect(reason) => {
                    tracing::debug!(session = %self.session_id, %reason, "data channel dropped");
                    let _ = ws.close(None).await;
                    match self.reconnect(reason, input).await {
                        Ok(new) => {
                            ws = new;
                            self.last_heard = Instant::now();
                            first = self.session.on_reconnect(Instant::now()).frames;
                        }
                        Err(end) => return end,
                    }
                }
            }
        }
    }

    fn mark_ready(&mut self) {
        if !self.ready && self.session.is_handshake_complete() {
            self.ready = true;
            if let Some(hook) = &self.options.on_ready {
                (hook.0)();
            }
        }
    }

    fn save_state(&mut self) {
        let Some(path) = &self.options.state_file else {
            return;
        };
        let state = SavedState::of(&self.session, &self.session_id, &self.stream_url);
        let key = (state.expected, state.first_unacked, state.unacked);
        if self.last_saved != Some(key) && self.session.is_handshake_complete() {
            if let Err(e) = state.store(path) {
                tracing::debug!(error = %e, "could not save the session state");
            }
            self.last_saved = Some(key);
        }
    }

    async fn on_socket<O, E>(
        &mut self,
        msg: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
        ws: &mut WebSocket,
        out: &mut O,
        err: &mut E,
    ) -> Next
    where
        O: AsyncWrite + Unpin,
        E: AsyncWrite + Unpin,
    {
        match msg {
            Some(Ok(Message::Binary(frame))) => {
                self.last_heard = Instant::now();
                match self.session.on_frame(&frame, Instant::now()) {
                    Ok(step) => self.on_step(step, ws, out, err).await,
                    Err(e) => {
                        tracing::debug!(error = %e, "frame refused");
                        Next::Continue
                    }
                }
            }
            Some(Ok(Message::Close(_))) | None => {
                Next::Reconnect("the server closed the data channel".to_owned())
            }
            Some(Err(e)) => Next::Reconnect(e.to_string()),
            Some(Ok(_)) => {
                self.last_heard = Instant::now();
                Next::Continue
            }
        }
    }

    async fn on_input(&mut self, item: Option<Input>, ws: &mut WebSocket) -> Next {
        let now = Instant::now();
        let sent = match item {
            None => {
                self.input_open = false;
                return Next::Continue;
            }
            Some(Input::Detach(reason)) => return Next::Finish(End::Detached { reason }),
            Some(Input::Data(data)) => self.session.send_input(&data, now),
            Some(Input::Size(size)) => self.session.send_size(size, now),
            Some(Input::Eof) => {
                self.input_open = false;
                match self.options.on_eof {
                    OnEof::Nothing => return Next::Continue,
                    OnEof::SendEot => self.session.send_input(&[0x04], now),
                }
            }
        };
        match sent {
            Ok(step) => match write(ws, step.frames).await {
                Ok(()) => Next::Continue,
                Err(e) => Next::Reconnect(e),
            },
            // Finished: the closing frame is on its way; BufferFull cannot happen (has_room).
            Err(SendError::Finished | SendError::BufferFull { .. } | SendError::AlreadyStarted) => {
                Next::Continue
            }
        }
    }

    async fn on_step<O, E>(
        &mut self,
        step: Step,
        ws: &mut WebSocket,
        out: &mut O,
        err: &mut E,
    ) -> Next
    where
        O: AsyncWrite + Unpin,
        E: AsyncWrite + Unpin,
    {
        // Events first: output reaches the user even if the socket then fails.
        let mut finish = None;
        for event in step.events {
            match event {
                Event::Data(data) => match data.payload_type {
                    PayloadType::Output => {
                        let _ = out.write_all(&data.payload).await;
                        let _ = out.flush().await;
                    }
                    PayloadType::StdErr => {
                        let _ = err.write_all(&data.payload).await;
                        let _ = err.flush().await;
                    }
                    PayloadType::ExitCode => {
                        if let Ok(code) = data.exit_code() {
                            self.exit_code = Some(code);
                        }
                    }
                    _ => {}
                },
                Event::HandshakeRequest(request) => {
                    if let Some(st) = request.session_type() {
                        if st.session_type == session_type::PORT {
                            finish = Some(End::Failed {
                                reason:
                                    "port forwarding sessions are not supported by this client yet"
                                        .to_owned(),
                            });
                        }
                    }
                }
                Event::HandshakeComplete(complete) => {
                    if !complete.customer_message.is_empty() {
                        let _ = out
                            .write_all(format!("{}\n", complete.customer_message).as_bytes())
                            .await;
                        let _ = out.flush().await;
                    }
                }
                Event::ChannelClosed(closed) => {
                    finish = Some(End::Closed {
                        output: closed.output,
                    });
                }
                Event::Failed(failure) => {
                    if let (Failure::ResendExhausted { .. }, Some(api)) = (&failure, self.api) {
                        // As the plugin does: the agent is gone for good; end the session.
                        let _ = api.terminate_session(&self.session_id).await;
                    }
                    finish = Some(End::Failed {
                        reason: failure.to_string(),
                    });
                }
                Event::HandshakeResponse(_)
                | Event::PublicationPaused
                | Event::PublicationResumed => {}
            }
        }
        self.mark_ready();
        let written = write(ws, step.frames).await;
        if let Some(end) = finish {
            if matches!(end, End::Failed { .. }) && self.session.finished().is_none() {
                if let Some(api) = self.api {
                    let _ = api.terminate_session(&self.session_id).await;
                }
            }
            return Next::Finish(end);
        }
        match written {
            Ok(()) => Next::Continue,
            Err(e) => Next::Reconnect(e),
        }
    }

    /// `ResumeSession` and a new socket, with backoff; input arriving meanwhile is queued.
    async fn reconnect(
        &mut self,
        reason: String,
        input: &mut mpsc::Receiver<Input>,
    ) -> Result<WebSocket, End> {
        self.save_state();
        let Some(api) = self.api else {
            return Err(End::Lost { reason });
        };
        let mut last = reason;
        let mut delay = self.options.reconnect_initial_delay;
        for attempt in 1..=self.options.reconnect_attempts {
            tracing::debug!(session = %self.session_id, attempt, "resuming");
            let try_once = resume_once(
                api,
                &self.session_id,
                &self.stream_url,
                &self.client_id,
                &self.options,
                &self.tls,
                delay,
            );
            tokio::pin!(try_once);
            let result = loop {
                let accept = self.input_open && self.pending.len() < MAX_PENDING;
                tokio::select! {
                    r = &mut try_once => break r,
                    item = input.recv(), if accept => match item {
                        Some(Input::Detach(reason)) => return Err(End::Detached { reason }),
                        Some(item) => self.pending.push_back(item),
                        None => self.input_open = false,
                    },
                }
            };
            match result {
                Ok(Some(ws)) => return Ok(ws),
                Ok(None) => return Err(End::TimedOut),
                Err(Resume::Refused(e)) => {
                    return Err(End::Lost {
                        reason: e.to_string(),
                    })
                }
                Err(Resume::Retry(e)) => last = e,
            }
            delay = delay
                .saturating_mul(2)
                .min(self.options.reconnect_max_delay);
        }
        Err(End::Lost { reason: last })
    }
}

enum Resume {
    /// The service said no (the session ended, access denied): do not try again.
    Refused(ApiError),
    /// A connection problem: try again.
    Retry(String),
}

/// One try: wait, `ResumeSession`, open the (new) stream URL with the new token.
/// `Ok(None)`: no token, the session timed out.
async fn resume_once(
    api: &SsmClient,
    session_id: &str,
    stream_url: &str,
    client_id: &str,
    options: &ChannelOptions,
    tls: &std::sync::Arc<rustls::ClientConfig>,
    delay: Duration,
) -> Result<Option<WebSocket>, Resume> {
    tokio::time::sleep(delay).await;
    let grant = match api.resume_session(session_id).await {
        Ok(grant) => grant,
        Err(e @ ApiError::Aws { status, .. }) if status < 500 => return Err(Resume::Refused(e)),
        Err(e) => return Err(Resume::Retry(e.to_string())),
    };
    if grant.token_value.is_empty() {
        return Ok(None);
    }
    let url = if grant.stream_url.is_empty() {
        stream_url
    } else {
        grant.stream_url.as_str()
    };
    open(url, &grant.token_value, client_id, options, tls)
        .await
        .map(Some)
        .map_err(|e| Resume::Retry(e.to_string()))
}

async fn write(ws: &mut WebSocket, frames: Vec<Vec<u8>>) -> Result<(), String> {
    if frames.is_empty() {
        return Ok(());
    }
    for frame in frames {
        ws.feed(Message::Binary(frame.into()))
            .await
            .map_err(|e| e.to_string())?;
    }
    ws.flush().await.map_err(|e| e.to_string())
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_stream::Agent;

    /// Runs an agent and a client to `agent_sent` outputs and `client_sent` inputs, saves the
    /// client's state, restores it into a new session, and checks both ends agree.
    #[test]
    fn restored_session_continues_the_sequence() {
        let t0 = Instant::now();
        let clock = WallClock::new(t0, 1_700_000_000_000);
        let mut agent = Session::<Agent>::new(Config::default(), clock);
        let mut client = Session::<Client>::new(Config::default(), clock);
        let request =
            HandshakeRequest::new("3.3.987.0", session_type::STANDARD_STREAM, Value::Null).unwrap();
        let mut to_client = agent.start(&request, "", t0).unwrap().frames;
        let mut to_agent: Vec<Vec<u8>> = Vec::new();
        let shuttle = |agent: &mut Session<Agent>,
                       client: &mut Session<Client>,
                       to_client: &mut Vec<Vec<u8>>,
                       to_agent: &mut Vec<Vec<u8>>| {
            let mut input = Vec::new();
            while !to_client.is_empty() || !to_agent.is_empty() {
                for f in std::mem::take(to_client) {
                    to_agent.extend(client.on_frame(&f, t0).unwrap().frames);
                }
                for f in std::mem::take(to_agent) {
                    let step = agent.on_frame(&f, t0).unwrap();
                    to_client.extend(step.frames);
                    for e in step.events {
                        if let Event::Data(d) = e {
                            if d.payload_type == PayloadType::Output {
                                input.extend(d.payload);
                            }
                        }
                    }
                }
            }
            input
        };
        shuttle(&mut agent, &mut client, &mut to_client, &mut to_agent);
        for i in 0..5 {
            to_client.extend(
                agent
                    .send_output(format!("out{i}").as_bytes(), t0)
                    .unwrap()
                    .frames,
            );
            to_agent.extend(client.send_input(b"k", t0).unwrap().frames);
        }
        assert_eq!(
            shuttle(&mut agent, &mut client, &mut to_client, &mut to_agent),
            b"kkkkk"
        );
        // One more input the agent never sees (lost with the socket).
        let _lost = client.send_input(b"lost", t0).unwrap();
        let saved = SavedState::of(&client, "s-1", "ws://x");
        assert_eq!(saved.unacked, 1);
        assert_eq!(SavedState::from_json(&saved.to_json()), Some(saved.clone()));

        let size = SizeData { cols: 80, rows: 24 };
        let mut restored = restore_session(Config::default(), clock, &saved, size, t0);
        assert_eq!(
            restored.expected_sequence_number(),
            client.expected_sequence_number()
        );
        assert_eq!(
            restored.next_sequence_number(),
            client.next_sequence_number()
        );
        assert!(restored.is_handshake_complete());
        // Reconnect: the restored client resends its one queued size message; the agent
        // resends nothing (all acknowledged). New input then flows, and new output too.
        to_agent.extend(restored.on_reconnect(t0).frames);
        to_agent.extend(restored.send_input(b"after", t0).unwrap().frames);
        to_client.extend(agent.on_reconnect(t0).frames);
        to_client.extend(agent.send_output(b"more", t0).unwrap().frames);
        let mut output = Vec::new();
        let mut input = Vec::new();
        while !to_client.is_empty() || !to_agent.is_empty() {
            for f in std::mem::take(&mut to_client) {
                let step = restored.on_frame(&f, t0).unwrap();
                to_agent.extend(step.frames);
                for e in step.events {
                    if let Event::Data(d) = e {
                        output.extend(d.payload);
                    }
                }
            }
            for f in std::mem::take(&mut to_agent) {
                let step = agent.on_frame(&f, t0).unwrap();
                to_client.extend(step.frames);
                for e in step.events {
                    if let Event::Data(d) = e {
                        if d.payload_type == PayloadType::Output {
                            input.extend(d.payload);
                        }
                    }
                }
            }
        }
        assert_eq!(output, b"more");
        assert_eq!(input, b"after");
        assert_eq!(restored.unacknowledged(), 0);
        assert_eq!(agent.unacknowledged(), 0);
    }

    #[test]
    fn closing_messages_are_the_plugins() {
        let outcome = Outcome {
            session_id: "u-0123".into(),
            end: End::Closed {
                output: String::new(),
            },
            exit_code: None,
        };
        assert_eq!(
            outcome.closing_message().unwrap(),
            "\n\nExiting session with sessionId: u-0123.\n\n"
        );
        let outcome = Outcome {
            end: End::Closed {
                output: "bye".into(),
            },
            ..outcome
        };
        assert_eq!(
            outcome.closing_message().unwrap(),
            "\n\nSessionId: u-0123 : bye\n\n"
        );
    }
}
