//! AWS on the wire, so the stock AWS CLI and boto3 can talk to Portcullis with
//! `--endpoint-url`.
//!
//! This crate has no domain logic and no HTTP server: it takes the raw parts of a request
//! ([`RequestParts`]) and returns typed results.
//!
//! - [`sigv4`]: AWS Signature Version 4 verification, header and presigned-URL forms.
//!   [`sigv4::parse`] reads who signed and how; the caller looks up the secret for that access
//!   key id; [`sigv4::verify`] recomputes the signature.
//! - [`protocol`]: which operation a request asks for, in AWS JSON 1.1 (SSM) or the Query
//!   protocol (IAM, STS, EC2).
//! - [`error`]: [`AwsError`] and its three body styles (JSON 1.1, IAM/STS Query XML, EC2 XML),
//!   shaped the way botocore parses them.
//! - [`xml`]: a tiny XML writer for Query and EC2 responses.
//!
//! ```
//! use portcullis_aws_api::{protocol, sigv4, Operation, Protocol, RequestParts};
//!
//! let headers = [("Host", "localhost:8080"), ("X-Amz-Target", "AmazonSSM.StartSession"),
//!                ("Content-Type", "application/x-amz-json-1.1")];
//! let req = RequestParts {
//!     method: "POST", path: "/", query: "", headers: &headers,
//!     body: br#"{"Target":"i-0885b2e35926f1fb3"}"#,
//! };
//! // Unsigned: refused with the code the JSON protocol expects.
//! let refused = sigv4::parse(&req).unwrap_err();
//! assert_eq!(refused.code(Protocol::Json), "MissingAuthenticationTokenException");
//!
//! match protocol::detect(&req).unwrap() {
//!     Operation::Json { service_target, operation, body } => {
//!         assert_eq!((service_target.as_str(), operation.as_str()), ("AmazonSSM", "StartSession"));
//!         assert_eq!(body["Target"], "i-0885b2e35926f1fb3");
//!     }
//!     other => panic!("{other:?}"),
//! }
//! ```

pub mod error;
pub mod protocol;
pub mod sigv4;
pub mod xml;

mod encoding;
mod time;

pub use error::{AwsError, ErrorResponse, Fault, Protocol};
pub use protocol::{detect, Operation, QueryParams};
pub use sigv4::{AuthError, SignedRequest, SigningKeyCache};

/// The parts of an HTTP request this crate reads, exactly as they arrived.
///
/// Raw, because a signature covers the bytes the client sent: the path and query are still
/// percent-encoded, and header values are as received. The caller (the server) must:
/// - pass the path without the query, and the query without the `?` (`""` when there is none);
/// - include the `host` header; on HTTP/2, add `("host", authority)` from `:authority`;
/// - refuse, before calling, header values that are not UTF-8 (no AWS client sends them).
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// The HTTP method, as sent (`POST`, `GET`).
    pub method: &'a str,
    /// The raw, still percent-encoded path, e.g. `/` or `/a%20b`.
    pub path: &'a str,
    /// The raw query string without the leading `?`.
    pub query: &'a str,
    /// Every header as (name, value), repeated names included, in the order received.
    pub headers: &'a [(&'a str, &'a str)],
    /// The whole body.
    pub body: &'a [u8],
}

impl<'a> RequestParts<'a> {
    /// The first value of a header, matching the name case-insensitively.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.header_values(name).next()
    }

    /// Every value of a header, in the order received, matching the name case-insensitively.
    pub fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a str> + 's {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, v)| v)
    }

    /// The media type of `Content-Type`, lower-cased and without parameters
    /// (`application/x-www-form-urlencoded; charset=utf-8` gives
    /// `application/x-www-form-urlencoded`).
    pub fn media_type(&self) -> Option<String> {
        self.header("content-type").map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
    }
}
