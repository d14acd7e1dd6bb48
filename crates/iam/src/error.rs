//! Errors a policy document can be refused with, shaped like IAM's.

use std::fmt;

use crate::json::Span;

/// The AWS error code a refusal carries on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The document is not a valid policy (`MalformedPolicyDocument`).
    MalformedPolicyDocument,
    /// The document is over one of IAM's size quotas (`LimitExceeded`).
    LimitExceeded,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedPolicyDocument => "MalformedPolicyDocument",
            ErrorCode::LimitExceeded => "LimitExceeded",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem in a policy document: IAM's code, a message naming the problem, and where it
/// is (a JSON pointer into the document and the line and column where that value starts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub code: ErrorCode,
    pub message: String,
    /// JSON pointer (RFC 6901) to the offending value; empty for the whole document.
    pub pointer: String,
    pub line: u32,
    pub column: u32,
}

impl PolicyError {
    pub(crate) fn malformed(message: impl Into<String>, pointer: &str, span: Span) -> Self {
        PolicyError {
            code: ErrorCode::MalformedPolicyDocument,
            message: message.into(),
            pointer: pointer.to_owned(),
            line: span.line,
            column: span.column,
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pointer = if self.pointer.is_empty() {
            "the document"
        } else {
            &self.pointer
        };
        write!(
            f,
            "{}: {} (at {}, line {}, column {})",
            self.code, self.message, pointer, self.line, self.column
        )
    }
}

impl std::error::Error for PolicyError {}

/// A finding that does not make the document invalid but is probably not what was meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyWarning {
    pub message: String,
    pub pointer: String,
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for PolicyWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pointer = if self.pointer.is_empty() {
            "the document"
        } else {
            &self.pointer
        };
        write!(
            f,
            "warning: {} (at {}, line {}, column {})",
            self.message, pointer, self.line, self.column
        )
    }
}
