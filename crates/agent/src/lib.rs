//! The Portcullis node agent (`portcullis agent`): registers a node once with an
//! activation, then keeps one outbound WebSocket control channel to the server and runs a
//! shell on a PTY for each session, speaking AWS's Session Manager data channel protocol
//! (`portcullis-stream`) to the client through the server. The wire contract is
//! `docs/CHANNELS.md`.
//!
//! - [`register()`]: `POST /v1/nodes/register`, then `STATE_DIR/registration.json` (0600).
//! - [`run()`]: the control channel (`hello`, heartbeats, `open`/`terminate`/`sessions`),
//!   reconnecting with jittered exponential backoff, until the shutdown future completes.
//! - [`session`]: one session's data channel, protocol state machine and shell.
//! - [`pty`]: the operating system behind a trait ([`PtySystem`], [`Pty`]).
//! - [`shell`]: a shell's blocking PTY I/O on dedicated threads, bridged to tokio.
//!
//! Sessions run as the agent's own user (a `runAsDefaultUser` option comes later).

mod agent;
pub mod backoff;
pub mod net;
pub mod protocol;
pub mod pty;
pub mod register;
pub mod session;
pub mod shell;
pub mod state;

pub use agent::{run, AgentConfig, AgentError};
pub use net::{DialError, Dialer};
pub use pty::{NativePtySystem, Pty, PtySystem, ShellCommand, WindowSize};
pub use register::{register, RegisterError, RegisterRequest};
pub use session::{SessionConfig, HANDSHAKE_AGENT_VERSION};
pub use state::{Registration, StateError};
