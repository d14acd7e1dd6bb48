//! The `OpenDataChannel` text frame: the first WebSocket frame on a data channel, before any
//! binary message. It carries the one-time token from `StartSession`/`ResumeSession`.
//!
//! The plugin sends (`FinalizeDataChannelHandshake` in `src/datachannel/streaming.go`,
//! `OpenDataChannelInput` in `src/service/service.go`):
//! `{"MessageSchemaVersion":"1.0","RequestId":"<uuid>","TokenValue":"<token>","ClientId":"<uuid>","ClientVersion":"<version>"}`;
//! plugins up to 1.2.650.0 (September 2024) have no `ClientVersion`. The agent's variant
//! (`agent/session/service/api.go`) has `ClientInstanceId` before `ClientId` and no
//! `ClientVersion`. Nothing is sent back: the next frames are binary messages.

use serde::{Deserialize, Serialize};

/// The only schema version AWS's clients send.
pub const MESSAGE_SCHEMA_VERSION: &str = "1.0";

/// An `OpenDataChannel` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenDataChannel {
    /// `"1.0"`.
    #[serde(rename = "MessageSchemaVersion")]
    pub message_schema_version: String,
    /// A fresh UUID per connection attempt.
    #[serde(rename = "RequestId")]
    pub request_id: String,
    /// The stream token.
    #[serde(rename = "TokenValue")]
    pub token_value: String,
    /// The agent's instance id (agent side only).
    #[serde(
        rename = "ClientInstanceId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_instance_id: Option<String>,
    /// The client's id: one UUID for the life of the plugin process, so a resumed
    /// connection carries the same one.
    #[serde(rename = "ClientId", default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The client's version (plugins after 1.2.650.0).
    #[serde(
        rename = "ClientVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_version: Option<String>,
}

/// Why an `OpenDataChannel` frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Not a JSON object with string `MessageSchemaVersion`, `RequestId` and `TokenValue`.
    #[error("malformed OpenDataChannel frame: {0}")]
    Json(String),
    /// A required field is empty.
    #[error("OpenDataChannel field `{0}` is empty")]
    Empty(&'static str),
}

impl OpenDataChannel {
    /// The frame a client sends, as the plugin builds it.
    pub fn client(
        request_id: &str,
        token_value: &str,
        client_id: &str,
        client_version: &str,
    ) -> OpenDataChannel {
        OpenDataChannel {
            message_schema_version: MESSAGE_SCHEMA_VERSION.to_owned(),
            request_id: request_id.to_owned(),
            token_value: token_value.to_owned(),
            client_instance_id: None,
            client_id: Some(client_id.to_owned()),
            client_version: Some(client_version.to_owned()),
        }
    }

    /// Reads a text frame. `MessageSchemaVersion`, `RequestId` and `TokenValue` must be
    /// present and non-empty; the schema version is not otherwise checked.
    pub fn parse(text: &str) -> Result<OpenDataChannel, OpenError> {
        let open: OpenDataChannel =
            serde_json::from_str(text).map_err(|e| OpenError::Json(e.to_string()))?;
        for (name, value) in [
            ("MessageSchemaVersion", &open.message_schema_version),
            ("RequestId", &open.request_id),
            ("TokenValue", &open.token_value),
        ] {
            if value.is_empty() {
                return Err(OpenError::Empty(name));
            }
        }
        Ok(open)
    }

    /// The text frame, fields in the plugin's order.
    pub fn to_json(&self) -> String {
        // Cannot fail: a struct of strings.
        serde_json::to_string(self).unwrap_or_default()
    }
}
