//! Portcullis's Session Manager client: what `portcullis session` and the
//! `session-manager-plugin` face of the `portcullis` binary run.
//!
//! - [`config`]: the AWS CLI's credential, region and endpoint chain (environment, shared
//!   credentials file, config file).
//! - [`api`]: `StartSession`, `ResumeSession`, `TerminateSession`, `DescribeSessions`, signed
//!   with SigV4 (`aws-sigv4`), errors shown as the AWS CLI shows them.
//! - [`net`]: TCP, TLS (rustls, ring), one HTTP/1.1 request, a WebSocket.
//! - [`channel`]: the data channel: `OpenDataChannel`, the `portcullis_stream` client session,
//!   resume after a dropped socket, the end.
//! - [`terminal`] and [`attach`]: raw mode, size, stdin, signals, the plugin's messages.
//! - [`plugin`]: the AWS CLI → `session-manager-plugin` argument contract.

pub mod api;
pub mod attach;
pub mod channel;
pub mod config;
pub mod net;
pub mod plugin;
pub mod terminal;

/// The version `session-manager-plugin --version` prints. Above 1.2.497.0, so the AWS CLI
/// hands the `StartSession` response over in an environment variable; at least 1.2.764.0,
/// so awscli v1 does not warn about an old plugin.
pub const PLUGIN_VERSION: &str = "1.2.764.0";

pub use api::{ApiError, SsmClient, StartSession, StreamGrant};
pub use channel::{Channel, ChannelOptions, End, Input, OnEof, Outcome, ReadyHook, SavedState};
pub use config::{Env, Overrides, ResolvedConfig};
