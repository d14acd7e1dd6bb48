//! AWS errors and the three body styles the SDKs parse them from.
//!
//! botocore reads an error's code and message from the body: for JSON from `__type` (the part
//! after any `#`) and `message`/`Message`; for Query from `ErrorResponse/Error/{Code,Message}`
//! and `RequestId`; for EC2 from `Response/Errors/Error/{Code,Message}` and `RequestID`. So
//! one [`AwsError`] renders into whichever of those the called service speaks.

use std::fmt;

use crate::xml::XmlWriter;

/// The IAM Query namespace, for IAM's XML replies.
pub const IAM_XMLNS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
/// The STS Query namespace, for STS's XML replies.
pub const STS_XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// The EC2 namespace, for EC2's successful XML replies (its errors carry none).
pub const EC2_XMLNS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// The wire protocol a service speaks; it decides error codes, statuses and body shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// AWS JSON 1.1 (SSM): `{"__type": ..., "message": ...}`.
    Json,
    /// The Query protocol with XML replies (IAM, STS), in the service's XML namespace.
    Query {
        /// The service's namespace, e.g. [`IAM_XMLNS`].
        xmlns: &'static str,
    },
    /// EC2's Query dialect: `<Response><Errors><Error>...`.
    Ec2,
}

impl Protocol {
    /// IAM: Query protocol in IAM's namespace.
    pub const IAM: Protocol = Protocol::Query { xmlns: IAM_XMLNS };
    /// STS: Query protocol in STS's namespace.
    pub const STS: Protocol = Protocol::Query { xmlns: STS_XMLNS };
}

/// Who is at fault, as the Query protocol's `<Type>` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The caller's request was wrong (4xx).
    Sender,
    /// The service failed (5xx).
    Receiver,
}

impl Fault {
    /// The `<Type>` text.
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Sender => "Sender",
            Fault::Receiver => "Receiver",
        }
    }
}

/// An error as AWS reports it: HTTP status, code, message and fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    /// The HTTP status.
    pub status: u16,
    /// The AWS error code, e.g. `AccessDeniedException` or `NoSuchEntity`.
    pub code: String,
    /// The human-readable message.
    pub message: String,
    /// Sender (4xx) or Receiver (5xx).
    pub fault: Fault,
}

/// A rendered error, ready for the HTTP layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorResponse {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type` header value.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
    /// Headers to add besides `Content-Type` (request id, error type).
    pub headers: Vec<(&'static str, String)>,
}

impl AwsError {
    /// Any error; the fault is Receiver for 5xx statuses, Sender otherwise.
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        AwsError {
            status,
            code: code.into(),
            message: message.into(),
            fault: if status >= 500 {
                Fault::Receiver
            } else {
                Fault::Sender
            },
        }
    }

    /// The caller may not do this (`AccessDeniedException` for JSON, `AccessDenied` for Query,
    /// `UnauthorizedOperation` for EC2). `message` should be AWS's text naming the principal,
    /// action and resource.
    pub fn access_denied(protocol: Protocol, message: impl Into<String>) -> Self {
        match protocol {
            Protocol::Json => AwsError::new(400, "AccessDeniedException", message),
            Protocol::Query { .. } => AwsError::new(403, "AccessDenied", message),
            Protocol::Ec2 => AwsError::new(403, "UnauthorizedOperation", message),
        }
    }

    /// A parameter value is invalid (`ValidationException` for JSON, `ValidationError` for
    /// Query, `InvalidParameterValue` for EC2).
    pub fn validation(protocol: Protocol, message: impl Into<String>) -> Self {
        match protocol {
            Protocol::Json => AwsError::new(400, "ValidationException", message),
            Protocol::Query { .. } => AwsError::new(400, "ValidationError", message),
            Protocol::Ec2 => AwsError::new(400, "InvalidParameterValue", message),
        }
    }

    /// A required parameter is absent. JSON services say it the way their validators do;
    /// Query and EC2 answer `MissingParameter`.
    pub fn missing_parameter(protocol: Protocol, name: &str) -> Self {
        match protocol {
            Protocol::Json => AwsError::new(
                400,
                "ValidationException",
                format!(
                    "1 validation error detected: Value null at '{name}' failed to satisfy \
                     constraint: Member must not be null"
                ),
            ),
            Protocol::Query { .. } | Protocol::Ec2 => AwsError::new(
                400,
                "MissingParameter",
                format!("The request must contain the parameter {name}"),
            ),
        }
    }

    /// IAM's "no such user/policy/..." (`NoSuchEntity`, 404).
    pub fn no_such_entity(message: impl Into<String>) -> Self {
        AwsError::new(404, "NoSuchEntity", message)
    }

    /// IAM's "already exists" (`EntityAlreadyExists`, 409).
    pub fn entity_already_exists(message: impl Into<String>) -> Self {
        AwsError::new(409, "EntityAlreadyExists", message)
    }

    /// A service-specific "not found" with its own code and status, e.g. SSM's
    /// `InvalidInstanceId` (400) or EC2's `InvalidInstanceID.NotFound` (400).
    pub fn not_found(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        AwsError::new(status, code, message)
    }

    /// The request's body could not be read as the protocol requires
    /// (`SerializationException`, JSON protocol).
    pub fn serialization(message: impl Into<String>) -> Self {
        AwsError::new(400, "SerializationException", message)
    }

    /// The JSON protocol's answer to a missing or unknown `X-Amz-Target`.
    pub fn unknown_operation(message: impl Into<String>) -> Self {
        AwsError::new(400, "UnknownOperationException", message)
    }

    /// The Query protocol's answer to an unknown `Action`.
    pub fn invalid_action(action: &str, version: Option<&str>) -> Self {
        let version = version.unwrap_or("");
        AwsError::new(
            400,
            "InvalidAction",
            format!("Could not find operation {action} for version {version}"),
        )
    }

    /// A Query request without `Action`.
    pub fn missing_action() -> Self {
        AwsError::new(
            400,
            "MissingAction",
            "The request must contain the parameter Action",
        )
    }

    /// A Query request whose form text cannot be decoded.
    pub fn malformed_query_string(message: impl Into<String>) -> Self {
        AwsError::new(400, "MalformedQueryString", message)
    }

    /// Too many requests (`ThrottlingException` for JSON, `Throttling` for Query,
    /// `RequestLimitExceeded` for EC2).
    pub fn throttling(protocol: Protocol) -> Self {
        match protocol {
            Protocol::Json => AwsError::new(400, "ThrottlingException", "Rate exceeded"),
            Protocol::Query { .. } => AwsError::new(400, "Throttling", "Rate exceeded"),
            Protocol::Ec2 => AwsError::new(503, "RequestLimitExceeded", "Request limit exceeded."),
        }
    }

    /// Our fault (`InternalFailure` for JSON and Query, `InternalError` for EC2). The message
    /// says nothing of the cause: that goes to the log, not the client.
    pub fn internal(protocol: Protocol) -> Self {
        match protocol {
            Protocol::Json | Protocol::Query { .. } => AwsError::new(
                500,
                "InternalFailure",
                "The request processing has failed because of an unknown error, exception or \
                 failure.",
            ),
            Protocol::Ec2 => AwsError::new(500, "InternalError", "An internal error has occurred."),
        }
    }

    /// Renders the error in the body style of `protocol`, with `request_id` where that style
    /// carries it (a header for JSON, the body for Query and EC2, and a header for Query too).
    pub fn render(&self, protocol: Protocol, request_id: &str) -> ErrorResponse {
        match protocol {
            Protocol::Json => self.render_json(request_id),
            Protocol::Query { xmlns } => self.render_query(xmlns, request_id),
            Protocol::Ec2 => self.render_ec2(request_id),
        }
    }

    fn render_json(&self, request_id: &str) -> ErrorResponse {
        let body = serde_json::json!({ "__type": self.code, "message": self.message });
        ErrorResponse {
            status: self.status,
            content_type: "application/x-amz-json-1.1",
            body: body.to_string().into_bytes(),
            headers: vec![
                ("x-amzn-RequestId", request_id.to_owned()),
                ("x-amzn-ErrorType", self.code.clone()),
            ],
        }
    }

    fn render_query(&self, xmlns: &str, request_id: &str) -> ErrorResponse {
        let mut w = XmlWriter::new();
        w.start_ns("ErrorResponse", xmlns)
            .start("Error")
            .element("Type", self.fault.as_str())
            .element("Code", &self.code)
            .element("Message", &self.message)
            .end()
            .element("RequestId", request_id);
        ErrorResponse {
            status: self.status,
            content_type: "text/xml",
            body: w.finish().into_bytes(),
            headers: vec![("x-amzn-RequestId", request_id.to_owned())],
        }
    }

    fn render_ec2(&self, request_id: &str) -> ErrorResponse {
        let mut w = XmlWriter::with_declaration();
        w.start("Response")
            .start("Errors")
            .start("Error")
            .element("Code", &self.code)
            .element("Message", &self.message)
            .end()
            .end()
            .element("RequestID", request_id);
        ErrorResponse {
            status: self.status,
            content_type: "text/xml;charset=UTF-8",
            body: w.finish().into_bytes(),
            headers: Vec::new(),
        }
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for AwsError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_follows_status() {
        assert_eq!(AwsError::new(400, "X", "y").fault, Fault::Sender);
        assert_eq!(AwsError::internal(Protocol::Json).fault, Fault::Receiver);
    }

    #[test]
    fn codes_differ_by_protocol() {
        let m = "denied";
        assert_eq!(
            AwsError::access_denied(Protocol::Json, m).code,
            "AccessDeniedException"
        );
        assert_eq!(AwsError::access_denied(Protocol::IAM, m).status, 403);
        assert_eq!(
            AwsError::access_denied(Protocol::Ec2, m).code,
            "UnauthorizedOperation"
        );
        assert_eq!(
            AwsError::validation(Protocol::STS, m).code,
            "ValidationError"
        );
        assert_eq!(
            AwsError::missing_parameter(Protocol::Ec2, "InstanceId").message,
            "The request must contain the parameter InstanceId"
        );
    }

    #[test]
    fn display_names_code_and_status() {
        let e = AwsError::no_such_entity("The user with name bob cannot be found.");
        assert_eq!(
            e.to_string(),
            "NoSuchEntity (404): The user with name bob cannot be found."
        );
    }
}
