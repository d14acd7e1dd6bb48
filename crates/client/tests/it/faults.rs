//! Damaged frames from a client, through the real relay, to the real agent: each is refused
//! (nothing runs, no state changes), nothing crashes, and the session goes on. The client
//! here is a bare `portcullis_stream::Session<Client>` on a WebSocket, so it can also write
//! frames no well-behaved client would.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use portcullis_client::net::{self, WebSocket};
use portcullis_stream::message::{ClientMessage, MessageId, MessageType, PayloadType};
use portcullis_stream::{
    AcknowledgeContent, Client, Config, Event, OpenDataChannel, Session, Step, WallClock,
};
use tokio_tungstenite::tungstenite::Message;

use crate::real_agent::{start_when_online, RealAgent};
use crate::world::World;

/// A client session driven by hand.
struct RawClient {
    ws: WebSocket,
    session: Session<Client>,
    output: String,
    closed: bool,
}

impl RawClient {
    async fn open(url: &str, token: &str, tls: &std::sync::Arc<rustls::ClientConfig>) -> Self {
        let mut ws = net::websocket(url, tls).await.unwrap();
        let open = OpenDataChannel::client("req-1", token, "client-1", "1.2.764.0");
        ws.send(Message::Text(open.to_json().into())).await.unwrap();
        RawClient {
            ws,
            session: Session::<Client>::new(Config::default(), WallClock::system()),
            output: String::new(),
            closed: false,
        }
    }

    async fn apply(&mut self, step: Step) {
        for event in step.events {
            match event {
                Event::Data(data) if data.payload_type == PayloadType::Output => {
                    self.output
                        .push_str(&String::from_utf8_lossy(&data.payload));
                }
                Event::ChannelClosed(_) => self.closed = true,
                _ => {}
            }
        }
        for frame in step.frames {
            self.raw(frame).await;
        }
    }

    /// Writes a binary frame as it is.
    async fn raw(&mut self, frame: Vec<u8>) {
        self.ws.send(Message::Binary(frame.into())).await.unwrap();
    }

    async fn input(&mut self, text: &str) {
        let step = self
            .session
            .send_input(text.as_bytes(), Instant::now())
            .unwrap();
        self.apply(step).await;
    }

    /// Runs the session until `done` holds (20 s at most).
    async fn until(&mut self, what: &str, done: impl Fn(&RawClient) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !done(self) {
            let timer = self.session.poll_timeout();
            tokio::select! {
                msg = self.ws.next() => match msg {
                    Some(Ok(Message::Binary(frame))) => {
                        let step = self.session.on_frame(&frame, Instant::now()).unwrap();
                        self.apply(step).await;
                    }
                    Some(Ok(_)) => {}
                    other => panic!("the data channel ended ({other:?}) waiting for {what}; output: {:?}", self.output),
                },
                () = sleep_until(timer) => {
                    let step = self.session.poll_timers(Instant::now());
                    self.apply(step).await;
                }
                () = tokio::time::sleep_until(deadline) => {
                    panic!("timed out waiting for {what}; output: {:?}", self.output)
                }
            }
        }
    }

    async fn expect(&mut self, needle: &str) {
        self.until(needle, |c| c.output.contains(needle)).await;
    }

    /// A well-formed `input_stream_data` frame carrying `text`, with the sequence number the
    /// session will use next: had the agent taken a damaged copy of it, the real message
    /// would then be dropped as a duplicate.
    fn next_input(&self, text: &str) -> ClientMessage {
        ClientMessage {
            message_type: MessageType::InputStreamData,
            schema_version: 1,
            created_date: now_ms(),
            sequence_number: self.session.next_sequence_number(),
            flags: 0,
            message_id: MessageId::from_random(rand::random::<u128>().to_be_bytes()),
            payload_type: PayloadType::Output,
            payload: text.as_bytes().to_vec(),
        }
    }
}

fn now_ms() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    u64::try_from(since.as_millis()).unwrap()
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// The header's payload-digest field (SHA-256), bytes 80..112.
const DIGEST: std::ops::Range<usize> = 80..112;
/// The header-length field, bytes 0..4.
const HEADER_LENGTH: std::ops::Range<usize> = 0..4;
/// The payload-length field, bytes 116..120.
const PAYLOAD_LENGTH: std::ops::Range<usize> = 116..120;

/// Damaged versions of a good frame, each with what is wrong with it.
fn damaged(good: &ClientMessage) -> Vec<(&'static str, Vec<u8>)> {
    let frame = good.encode();
    let mut out = Vec::new();
    let mut f = frame.clone();
    f[DIGEST.start] ^= 0xff;
    out.push(("bad digest", f));
    let mut f = frame.clone();
    f[DIGEST].fill(0);
    out.push(("zeroed digest", f));
    let mut f = frame.clone();
    *f.last_mut().unwrap() ^= 0x01;
    out.push(("payload changed after the digest", f));
    for bad in [115_u32, 117, 0, u32::MAX] {
        let mut f = frame.clone();
        f[HEADER_LENGTH].copy_from_slice(&bad.to_be_bytes());
        out.push(("bad header length", f));
    }
    out.push(("truncated payload", frame[..frame.len() - 3].to_vec()));
    out.push(("truncated header", frame[..60].to_vec()));
    out.push(("header only", frame[..120].to_vec()));
    out.push(("empty frame", Vec::new()));
    let mut f = frame.clone();
    f[PAYLOAD_LENGTH].copy_from_slice(&u32::MAX.to_be_bytes());
    out.push(("payload length says 4 GiB", f));
    let mut f = frame.clone();
    f.extend_from_slice(b"trailing");
    out.push(("bytes after the payload", f));
    let mut f = frame.clone();
    let mut name = [b' '; 32];
    name[..17].copy_from_slice(b"input_stream_datx");
    f[4..36].copy_from_slice(&name);
    out.push(("unknown message type", f));
    let mut zero_date = good.clone();
    zero_date.created_date = 0;
    out.push(("created date zero", zero_date.encode()));
    let mut wrong_way = good.clone();
    wrong_way.message_type = MessageType::OutputStreamData;
    out.push(("output_stream_data from a client", wrong_way.encode()));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_frames_are_refused_and_the_session_goes_on() {
    let world = World::start().await;
    let agent = RealAgent::start(&world);
    let api = world.client();
    let grant = start_when_online(&api).await;
    let mut client = RawClient::open(&grant.stream_url, &grant.token_value, api.tls()).await;

    // Garbage before the handshake does not stop it.
    client.raw(b"\x00\x00\x00\x74garbage".to_vec()).await;
    client.raw(vec![0xff; 300]).await;
    client
        .until("the handshake", |c| c.session.is_handshake_complete())
        .await;
    client.input("echo before-$((1+1))\n").await;
    client.expect("before-2").await;

    // Every damaged copy of a command: refused, so it never runs.
    let evil = client.next_input("echo ev''il-$((40+2))\n");
    for (i, (what, frame)) in damaged(&evil).into_iter().enumerate() {
        client.raw(frame).await;
        // Each time, the real message with that very sequence number still goes through.
        client.input(&format!("echo after-{i}-$((2+2))\n")).await;
        client.expect(&format!("after-{i}-4")).await;
        assert!(agent.is_running(), "the agent stopped after: {what}");
    }
    // An acknowledgement that does not read, with a good digest, and one for a message
    // never sent: the first is refused, the second ignored.
    let bad_ack = ClientMessage::control(
        MessageType::Acknowledge,
        MessageId::from_random(rand::random::<u128>().to_be_bytes()),
        now_ms(),
        b"{not json".to_vec(),
    );
    client.raw(bad_ack.encode()).await;
    let stray = AcknowledgeContent {
        message_type: MessageType::OutputStreamData.as_str().to_owned(),
        message_id: String::new(),
        sequence_number: 1_000_000,
        is_sequential_message: true,
    };
    let stray_ack = ClientMessage::control(
        MessageType::Acknowledge,
        MessageId::from_random(rand::random::<u128>().to_be_bytes()),
        now_ms(),
        stray.to_json(),
    );
    client.raw(stray_ack.encode()).await;
    // Text frames after OpenDataChannel are not frames at all.
    client
        .ws
        .send(Message::Text("{\"type\":\"terminate\"}".into()))
        .await
        .unwrap();
    client.input("echo still-$((3*3))\n").await;
    client.expect("still-9").await;
    assert!(!client.output.contains("evil-42"), "{:?}", client.output);

    // The server still answers, the session is still live, and it ends normally.
    let active = api.describe_sessions("Active", &[]).await.unwrap();
    assert_eq!(active.len(), 1, "{active:?}");
    assert_eq!(active[0]["Status"], "Connected");
    client.input("exit\n").await;
    client.until("channel_closed", |c| c.closed).await;
    assert!(agent.is_running());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let history = api.describe_sessions("History", &[]).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["Status"], "Terminated");
    agent.stop().await;
}
