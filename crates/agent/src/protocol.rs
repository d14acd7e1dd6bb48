//! The JSON text frames of the control channel and of the agent data channel
//! (`docs/CHANNELS.md`).

use serde::{Deserialize, Serialize};

/// The document of an ordinary shell session.
pub const RUN_SHELL_DOCUMENT: &str = "SSM-SessionManagerRunShell";

/// Agent → server, on the control channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentMessage {
    /// Once, right after connecting.
    Hello {
        /// The agent's version (`CARGO_PKG_VERSION`).
        agent_version: String,
        /// `Linux`, `MacOS`, ...
        platform: String,
        /// The node's host name.
        hostname: String,
        /// The address the node reaches the server from.
        ip_address: String,
    },
    /// Every heartbeat interval (20 s).
    Heartbeat,
    /// Answers `sessions`: the server thinks this session runs here, but it does not (the
    /// agent restarted and lost it); the server ends it now rather than after its grace.
    NotRunning {
        /// The session.
        session_id: String,
    },
}

/// Server → agent, on the control channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// A session was started for this node: open its data channel.
    Open {
        /// The session.
        session_id: String,
        /// The session document (`SSM-SessionManagerRunShell`).
        #[serde(default)]
        document: String,
    },
    /// End that session now.
    Terminate {
        /// The session.
        session_id: String,
    },
    /// Right after `hello`: the sessions the server still considers open; end any other.
    Sessions {
        /// Their ids.
        #[serde(default)]
        active: Vec<String>,
    },
    /// A message this agent does not know (a newer server): ignored.
    #[serde(other)]
    Unknown,
}

/// Server → agent, text frames on a session's data channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DataNotice {
    /// A client attached (first time: start the handshake; later: resend).
    ClientConnected,
    /// The client's socket dropped; it may resume.
    ClientDisconnected,
    /// Anything else: ignored.
    #[serde(other)]
    Unknown,
}

impl AgentMessage {
    /// The text frame.
    pub fn to_text(&self) -> String {
        // Serializing these plain structs cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_shapes() {
        let hello = AgentMessage::Hello {
            agent_version: "0.1.0".into(),
            platform: "Linux".into(),
            hostname: "h".into(),
            ip_address: "10.0.0.1".into(),
        };
        assert_eq!(
            hello.to_text(),
            r#"{"type":"hello","agent_version":"0.1.0","platform":"Linux","hostname":"h","ip_address":"10.0.0.1"}"#
        );
        assert_eq!(AgentMessage::Heartbeat.to_text(), r#"{"type":"heartbeat"}"#);
        let open: ServerMessage = serde_json::from_str(
            r#"{"type":"open","session_id":"TestUserA-0123456789abcdef0","document":"SSM-SessionManagerRunShell"}"#,
        )
        .unwrap();
        assert_eq!(
            open,
            ServerMessage::Open {
                session_id: "TestUserA-0123456789abcdef0".into(),
                document: RUN_SHELL_DOCUMENT.into()
            }
        );
        let sessions: ServerMessage =
            serde_json::from_str(r#"{"type":"sessions","active":["a","b"]}"#).unwrap();
        assert_eq!(
            sessions,
            ServerMessage::Sessions {
                active: vec!["a".into(), "b".into()]
            }
        );
        let unknown: ServerMessage =
            serde_json::from_str(r#"{"type":"upgrade","to":"9"}"#).unwrap();
        assert_eq!(unknown, ServerMessage::Unknown);
        let notice: DataNotice = serde_json::from_str(r#"{"type":"client_connected"}"#).unwrap();
        assert_eq!(notice, DataNotice::ClientConnected);
    }
}
