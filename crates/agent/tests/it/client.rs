//! The test's relay and client in one: holds the agent data channel as the server would,
//! tells the agent `client_connected`/`client_disconnected`, and drives a
//! `Session<Client>` over it. While "disconnected" it drops whatever either side sends, as
//! the server's relay does when the other side is absent.

use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket};
use portcullis_stream::{
    ChannelClosed, Client as ClientRole, Config, Event, PayloadType, Session, SizeData, Step,
    WallClock,
};

pub struct Client {
    ws: WebSocket,
    pub session: Session<ClientRole>,
    pub output: Vec<u8>,
    pub exit_code: Option<i32>,
    pub closed: Option<ChannelClosed>,
    /// The agent closed the data channel (as read: frames it sent before are all seen).
    pub ws_closed: bool,
    /// A write failed (the agent is gone); reading goes on until the socket's end.
    send_broken: bool,
    connected: bool,
    /// The highest sequence number of the agent's stream messages the relay dropped while
    /// the client was away.
    pub dropped_max_seq: Option<i64>,
    /// Acknowledgements of messages up to this sequence number are never sent (lost), as
    /// with AWS's plugin when one was lost with a socket: it never acknowledges twice.
    pub lose_acks_up_to: Option<i64>,
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

impl Client {
    /// Attaches to the agent data channel: `client_connected`, then the handshake.
    pub async fn attach(ws: WebSocket) -> Client {
        let mut client = Client::attach_raw(ws).await;
        client
            .wait("the handshake", Duration::from_secs(20), |c| {
                c.session.is_handshake_complete()
            })
            .await;
        client
    }

    /// Attaches (`client_connected`) without waiting for anything.
    pub async fn attach_raw(ws: WebSocket) -> Client {
        let mut client = Client {
            ws,
            session: Session::new(Config::default(), WallClock::system()),
            output: Vec::new(),
            exit_code: None,
            closed: None,
            ws_closed: false,
            send_broken: false,
            connected: true,
            dropped_max_seq: None,
            lose_acks_up_to: None,
        };
        client.notice("client_connected").await;
        client
    }

    async fn notice(&mut self, kind: &str) {
        let text = format!(r#"{{"type":"{kind}"}}"#);
        self.ws.send(Message::Text(text.into())).await.unwrap();
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.output).into_owned()
    }

    /// Handles one frame or timer, or returns at `until`. `false` once the socket closed.
    async fn step(&mut self, until: Instant) -> bool {
        if self.ws_closed {
            return false;
        }
        let timer = if self.connected {
            self.session.poll_timeout()
        } else {
            None
        };
        tokio::select! {
            message = self.ws.recv() => match message {
                Some(Ok(Message::Binary(frame))) => {
                    if self.connected {
                        let step = self
                            .session
                            .on_frame(&frame, Instant::now())
                            .expect("the agent's frames decode");
                        self.handle(step).await;
                    } else {
                        let message = portcullis_stream::ClientMessage::decode(&frame).unwrap();
                        if message.message_type == portcullis_stream::MessageType::OutputStreamData {
                            let seq = message.sequence_number;
                            self.dropped_max_seq = Some(self.dropped_max_seq.map_or(seq, |m| m.max(seq)));
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => self.ws_closed = true,
                Some(Ok(_)) => {}
            },
            () = sleep_until(timer) => {
                let step = self.session.poll_timers(Instant::now());
                self.handle(step).await;
            }
            () = tokio::time::sleep_until(until.into()) => {}
        }
        !self.ws_closed
    }

    async fn handle(&mut self, step: Step) {
        if self.connected && !self.send_broken {
            for frame in step.frames {
                if self.is_lost_ack(&frame) {
                    continue;
                }
                if self.ws.send(Message::Binary(frame.into())).await.is_err() {
                    self.send_broken = true;
                    break;
                }
            }
        }
        for event in step.events {
            match event {
                Event::Data(data) => match data.payload_type {
                    PayloadType::Output => self.output.extend(data.payload),
                    PayloadType::ExitCode => self.exit_code = Some(data.exit_code().unwrap()),
                    other => panic!("unexpected payload type {other:?}"),
                },
                Event::ChannelClosed(closed) => self.closed = Some(closed),
                Event::Failed(failure) => panic!("client session failed: {failure}"),
                _ => {}
            }
        }
    }

    fn is_lost_ack(&self, frame: &[u8]) -> bool {
        let Some(up_to) = self.lose_acks_up_to else {
            return false;
        };
        let message = portcullis_stream::ClientMessage::decode(frame).unwrap();
        message.message_type == portcullis_stream::MessageType::Acknowledge
            && portcullis_stream::AcknowledgeContent::from_json(&message.payload)
                .unwrap()
                .sequence_number
                <= up_to
    }

    /// Pumps until `done` holds, or panics after `timeout`.
    pub async fn wait(&mut self, what: &str, timeout: Duration, done: impl Fn(&Client) -> bool) {
        let until = Instant::now() + timeout;
        while !done(self) {
            let open = self.step(until).await;
            if done(self) {
                return;
            }
            if !open {
                panic!(
                    "the data channel closed while waiting for {what}; output:\n{}",
                    self.text()
                );
            }
            if Instant::now() >= until {
                panic!("timed out waiting for {what}; output:\n{}", self.text());
            }
        }
    }

    /// Waits for `needle` in the output after byte `from`; returns where it ends.
    pub async fn expect_from(&mut self, from: usize, needle: &str) -> usize {
        let find = |c: &Client| {
            c.output
                .get(from..)
                .and_then(|tail| find_bytes(tail, needle.as_bytes()))
                .map(|i| from + i + needle.len())
        };
        self.wait(&format!("`{needle}`"), Duration::from_secs(20), |c| {
            find(c).is_some()
        })
        .await;
        find(self).unwrap()
    }

    /// Waits for `needle` anywhere in the output.
    pub async fn expect(&mut self, needle: &str) -> usize {
        self.expect_from(0, needle).await
    }

    pub async fn type_text(&mut self, text: &str) {
        let step = self
            .session
            .send_input(text.as_bytes(), Instant::now())
            .unwrap();
        self.handle(step).await;
    }

    pub async fn resize(&mut self, cols: u32, rows: u32) {
        let step = self
            .session
            .send_size(SizeData { cols, rows }, Instant::now())
            .unwrap();
        self.handle(step).await;
    }

    pub async fn flag(&mut self, flag: portcullis_stream::Flag) {
        let step = self.session.send_flag(flag, Instant::now()).unwrap();
        self.handle(step).await;
    }

    /// Sends a frame made by hand.
    pub async fn send_raw(&mut self, frame: Vec<u8>) {
        self.ws.send(Message::Binary(frame.into())).await.unwrap();
    }

    /// Runs `command` and waits for its marker, so the shell is known to be idle after.
    /// `tag` makes a marker the echoed command line cannot contain.
    pub async fn run(&mut self, command: &str, tag: &str) -> usize {
        let from = self.output.len();
        self.type_text(&format!("{command}; echo {tag}-$((6*7))\r"))
            .await;
        self.expect_from(from, &format!("{tag}-42")).await
    }

    /// The relay loses the client: `client_disconnected`, and from now on frames are
    /// dropped both ways.
    pub async fn disconnect(&mut self) {
        self.connected = false;
        self.notice("client_disconnected").await;
    }

    /// The client is back (ResumeSession): `client_connected`, and both sides resend.
    pub async fn reconnect(&mut self) {
        self.connected = true;
        self.notice("client_connected").await;
        let step = self.session.on_reconnect(Instant::now());
        self.handle(step).await;
    }

    /// Waits for `channel_closed`.
    pub async fn expect_closed(&mut self) -> ChannelClosed {
        self.wait("channel_closed", Duration::from_secs(20), |c| {
            c.closed.is_some()
        })
        .await;
        self.closed.clone().unwrap()
    }

    /// Waits until the agent closes the data channel.
    pub async fn expect_socket_closed(&mut self) {
        let until = Instant::now() + Duration::from_secs(20);
        while self.step(until).await {
            assert!(
                Instant::now() < until,
                "the agent kept the data channel open"
            );
        }
    }
}

pub fn find_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The numbers after `label` (`label=1,2,3,`) in the first occurrence followed by a digit.
pub fn numbers_after(text: &str, label: &str) -> Vec<u32> {
    try_numbers_after(text, label)
        .unwrap_or_else(|| panic!("no `{label}` followed by numbers in:\n{text}"))
}

/// The same, `None` until the numbers and their closing comma arrived.
pub fn try_numbers_after(text: &str, label: &str) -> Option<Vec<u32>> {
    let mut rest = text;
    while let Some(i) = rest.find(label) {
        rest = &rest[i + label.len()..];
        if rest.starts_with(|c: char| c.is_ascii_digit()) {
            let (list, _) = rest.rsplit_once(',')?;
            let list = list.lines().next()?;
            return Some(
                list.split(',')
                    .map_while(|n| n.trim().parse().ok())
                    .collect(),
            );
        }
    }
    None
}

/// Whether a process is gone (no `/proc` entry, or a zombie nobody has reaped yet).
pub fn is_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next());
            matches!(state, Some('Z' | 'X'))
        }
    }
}

/// Waits up to `timeout` for every pid to be gone; returns the ones still there.
pub async fn wait_gone(pids: &[u32], timeout: Duration) -> Vec<u32> {
    let until = Instant::now() + timeout;
    loop {
        let alive: Vec<u32> = pids.iter().copied().filter(|p| !is_gone(*p)).collect();
        if alive.is_empty() || Instant::now() >= until {
            return alive;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
