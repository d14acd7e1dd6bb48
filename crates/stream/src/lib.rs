//! The AWS Session Manager data channel, so AWS's `session-manager-plugin` (and other clients
//! of the protocol) can talk to Portcullis, and our agent and client can talk to each other.
//!
//! This crate is a leaf with no I/O: bytes in, bytes out, and `now` passed in.
//!
//! - [`message`]: the binary frame ([`ClientMessage`]): 116-byte header length, 32-byte
//!   message type, sequence number, flags, message id with its halves swapped, SHA-256
//!   payload digest, payload type. Strict [`ClientMessage::decode`] with typed
//!   [`DecodeError`]s.
//! - [`payload`]: the JSON payloads (acknowledge, channel_closed, the handshake, terminal
//!   size) with AWS's field names, flags and exit codes.
//! - [`open`]: the `OpenDataChannel` text frame a client sends first.
//! - [`session`]: one end of the channel ([`Session<Agent>`] or [`Session<Client>`]) as a
//!   state machine: sequencing, acknowledgements, reordering, retransmission with an adaptive
//!   timeout, the handshake, pause/resume and reconnects.
//!
//! A relay (the server) only needs [`ClientMessage::decode`] to watch frames go by, and
//! [`ClientMessage::control`] to make its own `channel_closed` or `start_publication`.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use portcullis_stream::{
//!     Agent, Client, Config, Event, ACK_DELAY, HandshakeRequest, PayloadType, Session, WallClock,
//!     session_type,
//! };
//!
//! let t0 = Instant::now();
//! let clock = WallClock::new(t0, 1_700_000_000_000);
//! let mut agent = Session::<Agent>::new(Config::default(), clock);
//! let mut client = Session::<Client>::new(Config::default(), clock);
//!
//! // The agent opens the handshake; output sent before it completes is held back.
//! let request = HandshakeRequest::new("3.3.987.0", session_type::STANDARD_STREAM,
//!                                     serde_json::Value::Null).unwrap();
//! let mut to_client = agent.start(&request, "", t0).unwrap().frames;
//! assert!(agent.send_output(b"$ ", t0).unwrap().frames.is_empty());
//!
//! // Shuttle frames until both sides are quiet.
//! let mut output = Vec::new();
//! let mut to_agent = Vec::new();
//! while !to_client.is_empty() || !to_agent.is_empty() {
//!     for frame in std::mem::take(&mut to_client) {
//!         let step = client.on_frame(&frame, t0).unwrap();
//!         to_agent.extend(step.frames);
//!         for event in step.events {
//!             if let Event::Data(data) = event {
//!                 assert_eq!(data.payload_type, PayloadType::Output);
//!                 output.extend(data.payload);
//!             }
//!         }
//!     }
//!     for frame in std::mem::take(&mut to_agent) {
//!         to_client.extend(agent.on_frame(&frame, t0).unwrap().frames);
//!     }
//! }
//! assert!(agent.is_handshake_complete() && client.is_handshake_complete());
//! assert_eq!(output, b"$ ");
//! assert_eq!(agent.unacknowledged(), 0);
//! assert_eq!(client.agent_version(), Some("3.3.987.0"));
//! ```

pub mod message;
pub mod open;
pub mod payload;
pub mod rtt;
pub mod session;

pub use message::{
    ClientMessage, DecodeError, MessageId, MessageType, PayloadType, FLAGS_CONTROL, FLAG_FIN,
    FLAG_SYN, HEADER_LENGTH, PAYLOAD_OFFSET,
};
pub use open::{OpenDataChannel, OpenError};
pub use payload::{
    exit_code_payload, parse_exit_code, session_type, AcknowledgeContent, ActionStatus, ActionType,
    ChannelClosed, Flag, HandshakeComplete, HandshakeRequest, HandshakeResponse, PayloadError,
    ProcessedClientAction, RequestedClientAction, SessionTypeRequest, SizeData,
};
pub use session::{
    Agent, Client, Config, Event, Failure, Finished, FrameError, Role, RoleKind, SendError,
    Session, Stats, Step, StreamData, WallClock, ACK_DELAY,
};
