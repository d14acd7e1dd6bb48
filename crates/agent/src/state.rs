//! The agent's state directory: `registration.json` (server, node id, credential), mode 0600.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where the agent keeps its state unless told otherwise (systemd's
/// `StateDirectory=portcullis-agent`).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/portcullis-agent";

/// The environment variable that overrides [`DEFAULT_STATE_DIR`].
pub const STATE_DIR_ENV: &str = "PORTCULLIS_AGENT_STATE_DIR";

/// The file in the state directory that holds the [`Registration`].
pub const REGISTRATION_FILE: &str = "registration.json";

/// What registration gave this node: who to talk to and how to prove who it is.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// The server's base URL (`http://` or `https://`), as given to `register`.
    pub server: String,
    /// The node id the server assigned (`mi-...`).
    pub node_id: String,
    /// The node's secret; sent as `Authorization: Bearer NODE_ID:CREDENTIAL`.
    pub credential: String,
    /// Extra trusted CA certificates (PEM) for an `https://` server whose certificate the
    /// system store does not vouch for (`register --ca-cert`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificates: Option<String>,
}

impl std::fmt::Debug for Registration {
    // The credential never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("server", &self.server)
            .field("node_id", &self.node_id)
            .field("credential", &"<redacted>")
            .field("ca_certificates", &self.ca_certificates.is_some())
            .finish()
    }
}

/// Reading or writing the state directory failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// No registration yet.
    #[error("this node is not registered (no `{}`): run `portcullis agent register` first", .0.display())]
    NotRegistered(PathBuf),
    /// A registration exists and overwriting it was not asked for.
    #[error("this node is already registered (`{}`); pass --force to register it again", .0.display())]
    AlreadyRegistered(PathBuf),
    /// The file system refused.
    #[error("`{}`: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The registration file does not read.
    #[error("`{}` is not a registration file: {source}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
}

/// The state directory: `--state-dir`, else `$PORTCULLIS_AGENT_STATE_DIR`, else
/// [`DEFAULT_STATE_DIR`].
pub fn state_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(dir) = explicit {
        return dir.to_owned();
    }
    match std::env::var_os(STATE_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(DEFAULT_STATE_DIR),
    }
}

/// `DIR/registration.json`.
pub fn registration_path(state_dir: &Path) -> PathBuf {
    state_dir.join(REGISTRATION_FILE)
}

/// Reads `DIR/registration.json`.
pub fn load(state_dir: &Path) -> Result<Registration, StateError> {
    let path = registration_path(state_dir);
    let text = match fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StateError::NotRegistered(path))
        }
        Err(source) => return Err(StateError::Io { path, source }),
    };
    serde_json::from_slice(&text).map_err(|source| StateError::Malformed { path, source })
}

/// Whether `DIR/registration.json` exists.
pub fn is_registered(state_dir: &Path) -> bool {
    registration_path(state_dir).exists()
}

/// Writes `DIR/registration.json` with mode 0600, atomically (a temporary file in the same
/// directory, synced, then renamed). Creates the directory with mode 0700 if it is missing.
pub fn store(state_dir: &Path, registration: &Registration) -> Result<PathBuf, StateError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| StateError::Io { path, source }
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .map_err(io(state_dir))?;
    let path = registration_path(state_dir);
    let tmp = state_dir.join(format!(".{REGISTRATION_FILE}.{}.tmp", std::process::id()));
    let mut text =
        serde_json::to_vec_pretty(registration).map_err(|source| StateError::Malformed {
            path: path.clone(),
            source,
        })?;
    text.push(b'\n');
    let written = (|| {
        // A stale temporary file from a crashed run would keep its old mode: start afresh.
        match fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(&text)?;
        file.sync_all()?;
        fs::rename(&tmp, &path)
    })();
    if let Err(source) = written {
        let _ = fs::remove_file(&tmp);
        return Err(StateError::Io { path, source });
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_credential() {
        let r = Registration {
            server: "http://s".into(),
            node_id: "mi-1".into(),
            credential: "hunter2".into(),
            ca_certificates: None,
        };
        assert!(!format!("{r:?}").contains("hunter2"));
    }

    #[test]
    fn explicit_dir_wins() {
        assert_eq!(state_dir(Some(Path::new("/x"))), PathBuf::from("/x"));
    }
}
