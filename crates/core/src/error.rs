//! The one error type operations return: an AWS error code, an HTTP status and a message,
//! chosen by the operation because codes differ per service (`NoSuchEntity` in IAM,
//! `InvalidInstanceId` in SSM, ...). The server renders it in the request's protocol.

use std::fmt;

use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl Error {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Error {
        Error {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// A client error (400) with the given code.
    pub fn invalid(code: &str, message: impl Into<String>) -> Error {
        Error::new(400, code, message)
    }

    /// A request the server could not complete; details go to the log, not to the client.
    pub fn internal() -> Error {
        Error::new(
            500,
            "InternalFailure",
            "The request processing has failed because of an unknown error.",
        )
    }

    pub fn is_internal(&self) -> bool {
        self.status >= 500
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

/// Store failures that reach a client without a more specific meaning are internal errors.
impl From<StoreError> for Error {
    fn from(e: StoreError) -> Error {
        match e {
            StoreError::Backend(_) => Error::internal(),
            StoreError::NotFound => {
                Error::new(404, "NoSuchEntity", "The requested entity does not exist.")
            }
            StoreError::AlreadyExists => {
                Error::new(409, "EntityAlreadyExists", "The entity already exists.")
            }
            StoreError::LimitExceeded => Error::new(409, "LimitExceeded", "A limit was exceeded."),
            StoreError::Conflict(_) => Error::new(
                409,
                "DeleteConflict",
                "Cannot delete entity, must remove referenced objects first.",
            ),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
