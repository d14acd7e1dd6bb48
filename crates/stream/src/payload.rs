//! Payloads carried inside [`ClientMessage`](crate::ClientMessage)s, with the JSON field
//! names AWS uses (plugin: `src/message/clientmessage.go`, `handshakemessage.go`; agent:
//! `agent/session/contracts/model.go`).
//!
//! Reading is as lenient as Go's `encoding/json` on the points that matter for
//! interoperability: a missing field takes its zero value, `null` for a list reads as an
//! empty list, and unknown fields are ignored. (Go also matches field names
//! case-insensitively; serde does not, and no AWS sender relies on it.) Writing produces
//! the same bytes as Go's `json.Marshal` of AWS's structs: the same field order, `null` for
//! an absent error list.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// A payload that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Not the JSON this payload type carries.
    #[error("malformed {what} payload: {message}")]
    Json {
        /// Which payload.
        what: &'static str,
        /// serde_json's description.
        message: String,
    },
    /// A flag payload is exactly 4 bytes.
    #[error("flag payload is {0} bytes, expected 4")]
    FlagLength(usize),
    /// An exit-code payload is `EXIT_CODE: <n>`.
    #[error("exit code payload `{0}` is not `EXIT_CODE: <n>`")]
    ExitCode(String),
    /// An agent version must have four numeric parts (the plugin compares them).
    #[error("agent version `{0}` does not have four numeric parts")]
    AgentVersion(String),
}

fn from_json<'a, T: Deserialize<'a>>(
    what: &'static str,
    bytes: &'a [u8],
) -> Result<T, PayloadError> {
    serde_json::from_slice(bytes).map_err(|e| PayloadError::Json {
        what,
        message: e.to_string(),
    })
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these types cannot fail: plain structs with string keys and
    // `serde_json::Value`s (which cannot hold a non-finite number).
    serde_json::to_vec(value).unwrap_or_default()
}

/// `null` reads as the default (Go's nil slice), as does a missing field (with `default`).
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// The payload of an `acknowledge` message (`AcknowledgeContent`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AcknowledgeContent {
    /// The acknowledged message's type, e.g. `output_stream_data`.
    #[serde(
        rename = "AcknowledgedMessageType",
        deserialize_with = "null_as_default"
    )]
    pub message_type: String,
    /// The acknowledged message's id, hyphenated.
    #[serde(rename = "AcknowledgedMessageId", deserialize_with = "null_as_default")]
    pub message_id: String,
    /// The acknowledged message's sequence number: what receivers match on.
    #[serde(rename = "AcknowledgedMessageSequenceNumber")]
    pub sequence_number: i64,
    /// Always `true` from AWS's code.
    #[serde(rename = "IsSequentialMessage")]
    pub is_sequential_message: bool,
}

impl AcknowledgeContent {
    /// Reads the JSON payload.
    pub fn from_json(payload: &[u8]) -> Result<AcknowledgeContent, PayloadError> {
        from_json("acknowledge", payload)
    }

    /// The JSON payload.
    pub fn to_json(&self) -> Vec<u8> {
        to_json(self)
    }
}

/// The payload of a `channel_closed` message.
///
/// The plugin prints `Output` (or `Exiting session with sessionId: <id>.` when it is empty)
/// and exits. The agent's copy of this struct has no `Output`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ChannelClosed {
    /// This message's id, hyphenated.
    #[serde(rename = "MessageId", deserialize_with = "null_as_default")]
    pub message_id: String,
    /// Creation time as text; AWS's comment says epoch milliseconds.
    #[serde(rename = "CreatedDate", deserialize_with = "null_as_default")]
    pub created_date: String,
    /// The session's target (instance id).
    #[serde(rename = "DestinationId", deserialize_with = "null_as_default")]
    pub destination_id: String,
    /// The session id.
    #[serde(rename = "SessionId", deserialize_with = "null_as_default")]
    pub session_id: String,
    /// `channel_closed`.
    #[serde(rename = "MessageType", deserialize_with = "null_as_default")]
    pub message_type: String,
    /// 1.
    #[serde(rename = "SchemaVersion")]
    pub schema_version: i64,
    /// Text for the user; empty for a normal end.
    #[serde(rename = "Output", deserialize_with = "null_as_default")]
    pub output: String,
}

impl ChannelClosed {
    /// Reads the JSON payload.
    pub fn from_json(payload: &[u8]) -> Result<ChannelClosed, PayloadError> {
        from_json("channel_closed", payload)
    }

    /// The JSON payload.
    pub fn to_json(&self) -> Vec<u8> {
        to_json(self)
    }
}

/// `ActionType` of a handshake action.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ActionType {
    /// `SessionType`: which session plugin the client must run.
    SessionType,
    /// `KMSEncryption`: the client must set up KMS encryption (calls real AWS KMS in the
    /// plugin; not supported here).
    KmsEncryption,
    /// Anything else.
    Other(String),
}

impl ActionType {
    /// The name on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            ActionType::SessionType => "SessionType",
            ActionType::KmsEncryption => "KMSEncryption",
            ActionType::Other(s) => s,
        }
    }
}

impl From<String> for ActionType {
    fn from(s: String) -> ActionType {
        match s.as_str() {
            "SessionType" => ActionType::SessionType,
            "KMSEncryption" => ActionType::KmsEncryption,
            _ => ActionType::Other(s),
        }
    }
}

impl From<ActionType> for String {
    fn from(t: ActionType) -> String {
        match t {
            ActionType::Other(s) => s,
            t => t.as_str().to_owned(),
        }
    }
}

impl Default for ActionType {
    fn default() -> ActionType {
        ActionType::Other(String::new())
    }
}

/// Session types the plugin accepts in a `SessionType` action.
pub mod session_type {
    /// An interactive shell.
    pub const STANDARD_STREAM: &str = "Standard_Stream";
    /// A command with a terminal.
    pub const INTERACTIVE_COMMANDS: &str = "InteractiveCommands";
    /// A command without a terminal.
    pub const NON_INTERACTIVE_COMMANDS: &str = "NonInteractiveCommands";
    /// Port forwarding.
    pub const PORT: &str = "Port";
    /// Every session type the plugin knows.
    pub const ALL: [&str; 4] = [
        STANDARD_STREAM,
        INTERACTIVE_COMMANDS,
        NON_INTERACTIVE_COMMANDS,
        PORT,
    ];
}

/// The `ActionParameters` of a `SessionType` action (`SessionTypeRequest`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionTypeRequest {
    /// One of [`session_type::ALL`].
    #[serde(rename = "SessionType", deserialize_with = "null_as_default")]
    pub session_type: String,
    /// Plugin properties from the session document (for a shell, the
    /// `{"linux":{...},"windows":{...},"macos":{...}}` shell profiles); `null` if none.
    #[serde(rename = "Properties")]
    pub properties: Value,
}

/// One action the agent asks the client to perform.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RequestedClientAction {
    /// What to do.
    #[serde(rename = "ActionType")]
    pub action_type: ActionType,
    /// Parameters; their shape depends on the action type.
    #[serde(rename = "ActionParameters")]
    pub action_parameters: Value,
}

impl RequestedClientAction {
    /// A `SessionType` action.
    pub fn session_type(request: &SessionTypeRequest) -> RequestedClientAction {
        RequestedClientAction {
            action_type: ActionType::SessionType,
            action_parameters: serde_json::to_value(request).unwrap_or(Value::Null),
        }
    }

    /// The parameters read as a [`SessionTypeRequest`], if this is a `SessionType` action.
    pub fn as_session_type(&self) -> Option<Result<SessionTypeRequest, PayloadError>> {
        (self.action_type == ActionType::SessionType).then(|| {
            SessionTypeRequest::deserialize(&self.action_parameters).map_err(|e| {
                PayloadError::Json {
                    what: "SessionType action parameters",
                    message: e.to_string(),
                }
            })
        })
    }
}

/// The agent's handshake request (payload type 5, `HandshakeRequestPayload`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HandshakeRequest {
    /// The agent's version. The plugin compares it part by part with four-part versions
    /// (`2.3.722.0`, `3.0.196.0`, `3.1.1511.0`) to decide which features the agent has.
    #[serde(rename = "AgentVersion", deserialize_with = "null_as_default")]
    pub agent_version: String,
    /// What the client must do before the session starts.
    #[serde(
        rename = "RequestedClientActions",
        deserialize_with = "null_as_default"
    )]
    pub requested_client_actions: Vec<RequestedClientAction>,
}

impl HandshakeRequest {
    /// The request for a session of `session_type` (one of [`session_type::ALL`]): one
    /// `SessionType` action. `agent_version` must have four numeric parts.
    pub fn new(
        agent_version: &str,
        session_type: &str,
        properties: Value,
    ) -> Result<HandshakeRequest, PayloadError> {
        if !is_four_part_version(agent_version) {
            return Err(PayloadError::AgentVersion(agent_version.to_owned()));
        }
        Ok(HandshakeRequest {
            agent_version: agent_version.to_owned(),
            requested_client_actions: vec![RequestedClientAction::session_type(
                &SessionTypeRequest {
                    session_type: session_type.to_owned(),
                    properties,
                },
            )],
        })
    }

    /// Reads the JSON payload.
    pub fn from_json(payload: &[u8]) -> Result<HandshakeRequest, PayloadError> {
        from_json("HandshakeRequest", payload)
    }

    /// The JSON payload.
    pub fn to_json(&self) -> Vec<u8> {
        to_json(self)
    }

    /// The parameters of the first `SessionType` action, if there is one and it reads.
    pub fn session_type(&self) -> Option<SessionTypeRequest> {
        self.requested_client_actions
            .iter()
            .find_map(|a| a.as_session_type().and_then(Result::ok))
    }
}

/// `true` for versions like `3.3.987.0`: exactly four dot-separated runs of ASCII digits.
pub fn is_four_part_version(version: &str) -> bool {
    let parts: Vec<&str> = version.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `ActionStatus` of a processed action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(from = "i64", into = "i64")]
pub enum ActionStatus {
    /// 1.
    Success,
    /// 2.
    Failed,
    /// 3.
    Unsupported,
    /// Anything else. The plugin sends 0 for an action it does not know (it puts
    /// `Unsupported` in `ActionResult` instead of `ActionStatus`).
    #[default]
    Unknown,
    /// Another value, kept for re-encoding.
    Other(i64),
}

impl From<i64> for ActionStatus {
    fn from(n: i64) -> ActionStatus {
        match n {
            0 => ActionStatus::Unknown,
            1 => ActionStatus::Success,
            2 => ActionStatus::Failed,
            3 => ActionStatus::Unsupported,
            n => ActionStatus::Other(n),
        }
    }
}

impl From<ActionStatus> for i64 {
    fn from(s: ActionStatus) -> i64 {
        match s {
            ActionStatus::Unknown => 0,
            ActionStatus::Success => 1,
            ActionStatus::Failed => 2,
            ActionStatus::Unsupported => 3,
            ActionStatus::Other(n) => n,
        }
    }
}

/// The client's report on one requested action.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessedClientAction {
    /// The action's type, as requested.
    #[serde(rename = "ActionType")]
    pub action_type: ActionType,
    /// The outcome.
    #[serde(rename = "ActionStatus")]
    pub action_status: ActionStatus,
    /// Action-specific result (`null` for `SessionType`).
    #[serde(rename = "ActionResult")]
    pub action_result: Value,
    /// Why it failed; empty on success.
    #[serde(rename = "Error", deserialize_with = "null_as_default")]
    pub error: String,
}

/// The client's handshake response (payload type 6, `HandshakeResponsePayload`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HandshakeResponse {
    /// The client's version.
    #[serde(rename = "ClientVersion", deserialize_with = "null_as_default")]
    pub client_version: String,
    /// One entry per requested action.
    #[serde(
        rename = "ProcessedClientActions",
        deserialize_with = "null_as_default"
    )]
    pub processed_client_actions: Vec<ProcessedClientAction>,
    /// Error texts; `null` when there are none (Go's nil slice).
    #[serde(rename = "Errors")]
    pub errors: Option<Vec<String>>,
}

impl HandshakeResponse {
    /// Reads the JSON payload.
    pub fn from_json(payload: &[u8]) -> Result<HandshakeResponse, PayloadError> {
        from_json("HandshakeResponse", payload)
    }

    /// The JSON payload.
    pub fn to_json(&self) -> Vec<u8> {
        to_json(self)
    }

    /// A text for every action that did not succeed, in the agent's words
    /// (`<action> failed on client with status <n> error: <text>`).
    pub fn failures(&self) -> Vec<String> {
        self.processed_client_actions
            .iter()
            .filter(|a| a.action_status != ActionStatus::Success)
            .map(|a| {
                format!(
                    "{} failed on client with status {} error: {}",
                    a.action_type.as_str(),
                    i64::from(a.action_status),
                    a.error
                )
            })
            .collect()
    }
}

/// The agent's handshake-complete message (payload type 7, `HandshakeCompletePayload`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HandshakeComplete {
    /// How long the handshake took, in nanoseconds (a Go `time.Duration`).
    #[serde(rename = "HandshakeTimeToComplete")]
    pub handshake_time_to_complete: i64,
    /// Printed by the plugin when non-empty.
    #[serde(rename = "CustomerMessage", deserialize_with = "null_as_default")]
    pub customer_message: String,
}

impl HandshakeComplete {
    /// With the time given as a [`Duration`] (saturating at `i64::MAX` nanoseconds).
    pub fn new(time_to_complete: Duration, customer_message: &str) -> HandshakeComplete {
        HandshakeComplete {
            handshake_time_to_complete: i64::try_from(time_to_complete.as_nanos())
                .unwrap_or(i64::MAX),
            customer_message: customer_message.to_owned(),
        }
    }

    /// The handshake time (negative values read as zero).
    pub fn time_to_complete(&self) -> Duration {
        Duration::from_nanos(u64::try_from(self.handshake_time_to_complete).unwrap_or(0))
    }

    /// Reads the JSON payload.
    pub fn from_json(payload: &[u8]) -> Result<HandshakeComplete, PayloadError> {
        from_json("HandshakeComplete", payload)
    }

    /// The JSON payload.
    pub fn to_json(&self) -> Vec<u8> {
        to_json(self)
    }
}

/// Terminal size (payload type 3, `SizeData`), lower-case field names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SizeData {
    /// Columns.
    pub cols: u32,
    /// Rows.
    pub rows: u32,
}

impl SizeData {
    /// Reads the JSON payload.
    pub fn from_json(payload: &[u8]) -> Result<SizeData, PayloadError> {
        from_json("Size", payload)
    }

    /// The JSON payload.
    pub fn to_json(&self) -> Vec<u8> {
        to_json(self)
    }
}

/// A flag (payload type 10): a 4-byte big-endian number (`PayloadTypeFlag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flag {
    /// 1: port forwarding: the local connection closed.
    DisconnectToPort,
    /// 2: end the session (sent by the plugin on Ctrl-C in port sessions, when the agent
    /// is newer than 2.3.722.0).
    TerminateSession,
    /// 3: port forwarding: the agent could not connect to the port.
    ConnectToPortError,
    /// Any other value.
    Other(u32),
}

impl Flag {
    /// The number on the wire.
    pub const fn to_u32(self) -> u32 {
        match self {
            Flag::DisconnectToPort => 1,
            Flag::TerminateSession => 2,
            Flag::ConnectToPortError => 3,
            Flag::Other(n) => n,
        }
    }

    /// The flag for a number.
    pub const fn from_u32(n: u32) -> Flag {
        match n {
            1 => Flag::DisconnectToPort,
            2 => Flag::TerminateSession,
            3 => Flag::ConnectToPortError,
            n => Flag::Other(n),
        }
    }

    /// The 4-byte payload.
    pub const fn to_payload(self) -> [u8; 4] {
        self.to_u32().to_be_bytes()
    }

    /// Reads a 4-byte payload.
    pub fn from_payload(payload: &[u8]) -> Result<Flag, PayloadError> {
        let raw: [u8; 4] = payload
            .try_into()
            .map_err(|_| PayloadError::FlagLength(payload.len()))?;
        Ok(Flag::from_u32(u32::from_be_bytes(raw)))
    }
}

/// The exit-code payload (type 12) the agent sends for commands: `EXIT_CODE: <n>`
/// (`sendExitCode` in `agent/session/shell/shell.go`).
pub fn exit_code_payload(code: i32) -> Vec<u8> {
    format!("EXIT_CODE: {code}").into_bytes()
}

/// Reads an exit-code payload.
pub fn parse_exit_code(payload: &[u8]) -> Result<i32, PayloadError> {
    let text = String::from_utf8_lossy(payload);
    text.strip_prefix("EXIT_CODE: ")
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| PayloadError::ExitCode(text.escape_debug().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        assert_eq!(Flag::TerminateSession.to_payload(), [0, 0, 0, 2]);
        assert_eq!(
            Flag::from_payload(&[0, 0, 0, 1]),
            Ok(Flag::DisconnectToPort)
        );
        assert_eq!(Flag::from_payload(&[0, 0, 0, 9]), Ok(Flag::Other(9)));
        assert_eq!(
            Flag::from_payload(&[0, 2]),
            Err(PayloadError::FlagLength(2))
        );
    }

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code_payload(-1), b"EXIT_CODE: -1");
        assert_eq!(parse_exit_code(b"EXIT_CODE: 127"), Ok(127));
        assert!(parse_exit_code(b"EXIT: 1").is_err());
    }

    #[test]
    fn versions() {
        assert!(is_four_part_version("3.3.987.0"));
        for bad in ["3.0", "3.0.0", "3.0.0.0.0", "3.a.0.0", "3..0.0", ""] {
            assert!(!is_four_part_version(bad), "{bad}");
        }
        assert!(HandshakeRequest::new("3.0", "Standard_Stream", Value::Null).is_err());
    }

    #[test]
    fn action_status_numbers() {
        for n in -2..6 {
            assert_eq!(i64::from(ActionStatus::from(n)), n);
        }
    }
}
