//! Registration: trade an activation (id and code) for a node id and credential, once.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::net::{DialError, Dialer};
use crate::state::{self, Registration, StateError};

/// What `portcullis agent register` was given.
#[derive(Clone)]
pub struct RegisterRequest {
    /// The server's base URL.
    pub server: String,
    /// The activation id (`ActivationId`).
    pub activation_id: String,
    /// The activation code (`ActivationCode`), secret.
    pub activation_code: String,
    /// An EC2-style instance id to claim, if any.
    pub instance_id: Option<String>,
    /// Extra trusted CAs (PEM) for an `https` server.
    pub ca_certificates: Option<String>,
    /// Overwrite an existing registration.
    pub force: bool,
}

impl std::fmt::Debug for RegisterRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterRequest")
            .field("server", &self.server)
            .field("activation_id", &self.activation_id)
            .field("activation_code", &"<redacted>")
            .field("instance_id", &self.instance_id)
            .finish_non_exhaustive()
    }
}

/// Registration failed.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The server said no (bad or expired activation, limit reached, ...).
    #[error("{message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The error code (`__type`), e.g. `InvalidActivation`.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The server could not be reached.
    #[error(transparent)]
    Dial(#[from] DialError),
    /// The server answered something that is not a registration.
    #[error("unexpected answer from the server (HTTP {status}): {detail}")]
    BadResponse {
        /// The HTTP status.
        status: u16,
        /// What was wrong.
        detail: String,
    },
    /// The state directory could not be written (or a registration exists).
    #[error(transparent)]
    State(#[from] StateError),
}

/// The host name, as `uname` has it.
pub fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// The platform name AWS uses: `Linux`, `MacOS`, `Windows`.
pub fn platform() -> String {
    match std::env::consts::OS {
        "linux" => "Linux".to_owned(),
        "macos" => "MacOS".to_owned(),
        "windows" => "Windows".to_owned(),
        other => {
            let mut chars = other.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect())
                .unwrap_or_default()
        }
    }
}

/// The agent's version.
pub fn agent_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Registers with the server and stores the result in `state_dir/registration.json` (0600).
pub async fn register(
    request: &RegisterRequest,
    state_dir: &Path,
) -> Result<(Registration, PathBuf), RegisterError> {
    if !request.force && state::is_registered(state_dir) {
        return Err(StateError::AlreadyRegistered(state::registration_path(state_dir)).into());
    }
    let dialer = Dialer::new(&request.server, request.ca_certificates.as_deref())?;
    let ip = dialer
        .local_ip()
        .await
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    let mut body = json!({
        "ActivationId": request.activation_id,
        "ActivationCode": request.activation_code,
        "Hostname": hostname(),
        "Platform": platform(),
        "AgentVersion": agent_version(),
        "IpAddress": ip,
    });
    if let (Some(id), Some(map)) = (&request.instance_id, body.as_object_mut()) {
        map.insert("InstanceId".to_owned(), Value::String(id.clone()));
    }
    let (status, reply) = dialer
        .post_json(&["v1", "nodes", "register"], body.to_string().into_bytes())
        .await?;
    let reply: Option<Value> = serde_json::from_slice(&reply).ok();
    let text = |name: &str| {
        reply
            .as_ref()
            .and_then(|r| r.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if !(200..300).contains(&status) {
        let message = text("message")
            .or_else(|| text("Message"))
            .unwrap_or_else(|| format!("the server refused the registration (HTTP {status})"));
        return Err(RegisterError::Refused {
            status,
            code: text("__type").unwrap_or_default(),
            message,
        });
    }
    let (Some(node_id), Some(credential)) = (text("NodeId"), text("Credential")) else {
        return Err(RegisterError::BadResponse {
            status,
            detail: "no NodeId and Credential".to_owned(),
        });
    };
    let registration = Registration {
        server: request.server.trim_end_matches('/').to_owned(),
        node_id,
        credential,
        ca_certificates: request.ca_certificates.clone(),
    };
    let path = state::store(state_dir, &registration)?;
    Ok((registration, path))
}
