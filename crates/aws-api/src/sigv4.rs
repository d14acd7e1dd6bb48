//! AWS Signature Version 4 verification, header and presigned-URL forms.
//!
//! Two steps, because the secret lives in the caller's store:
//! 1. [`parse`] reads the request's signing parts (access key id, date, credential scope,
//!    signed headers, signature, presign expiry, session token) and refuses malformed ones.
//! 2. The caller looks up the secret for [`SignedRequest::access_key_id`] (an unknown key is
//!    [`AuthError::UnknownAccessKey`]), then [`verify`] checks the time window and recomputes
//!    the signature over the canonical request.
//!
//! The canonical request follows AWS's documented algorithm for every service but S3: the
//! path is normalised (`.`/`..` and repeated slashes removed) and each segment of the raw
//! path is URI-encoded once more (which is the SDKs' "double encoding" seen from the wire);
//! query parameters are decoded and re-encoded with SigV4's strict set and sorted by name then
//! value; header values are trimmed with inner whitespace collapsed and repeated headers
//! joined with `,`.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::SystemTime;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::encoding::{form_decode, split_pairs, uri_encode};
use crate::error::{AwsError, Protocol};
use crate::time::{format_amz_date, parse_amz_date, parse_http_date, unix_secs};
use crate::RequestParts;

/// The only algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far a header-signed request's time may be from ours, either way (AWS's window).
pub const MAX_SKEW_SECS: u64 = 5 * 60;
/// The longest a presigned URL may live (seven days).
pub const MAX_PRESIGN_EXPIRES_SECS: u64 = 604_800;
/// The `X-Amz-Content-Sha256` value that opts out of signing the body.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

const SIGNATURE_MISMATCH_MESSAGE: &str = "The request signature we calculated does not match \
    the signature you provided. Check your AWS Secret Access Key and signing method. Consult \
    the service documentation for details.";

/// Why a request's signature was refused. Each variant maps to the code each protocol family
/// answers with ([`AuthError::code`]) and AWS's message text ([`AuthError::message`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization` header and no presigned query parameters.
    Missing,
    /// The signature is malformed or has a part missing; the message names what, in AWS's
    /// words (e.g. "Authorization header requires 'Credential' parameter. ...").
    Incomplete(String),
    /// The access key id is not known (the caller decides this, after [`parse`]).
    UnknownAccessKey,
    /// The signature does not match. Carries what we computed, which AWS's Query services
    /// return to help a client find its canonicalisation mistake.
    SignatureMismatch {
        /// The canonical request we computed.
        canonical_request: String,
        /// The string to sign we computed.
        string_to_sign: String,
    },
    /// The credential scope's date is not the day of the request's timestamp.
    ScopeDateMismatch {
        /// `YYYYMMDD` from the credential.
        scope_date: String,
        /// The request's `X-Amz-Date` (or `Date`) in ISO 8601 basic format.
        request_time: String,
    },
    /// `X-Amz-Content-Sha256` is not the SHA-256 of the body.
    ContentSha256Mismatch,
    /// The request is more than [`MAX_SKEW_SECS`] older than now.
    Expired {
        /// The request's time, the earliest time accepted, and now (ISO 8601 basic).
        request_time: String,
        /// `now - 5 min`.
        earliest: String,
        /// Now.
        now: String,
    },
    /// The request is more than [`MAX_SKEW_SECS`] ahead of now.
    NotYetCurrent {
        /// The request's time.
        request_time: String,
        /// `now + 5 min`.
        latest: String,
        /// Now.
        now: String,
    },
    /// A presigned URL used after `X-Amz-Date + X-Amz-Expires`.
    PresignedExpired,
}

impl AuthError {
    /// The AWS error code for this refusal in `protocol`'s family: JSON services say
    /// `...Exception`, Query services (IAM, STS) the bare name, EC2 `AuthFailure` for
    /// credential problems and `RequestExpired` for time ones.
    pub fn code(&self, protocol: Protocol) -> &'static str {
        use AuthError::*;
        let [json, query, ec2] = match self {
            Missing => [
                "MissingAuthenticationTokenException",
                "MissingAuthenticationToken",
                "MissingAuthenticationToken",
            ],
            Incomplete(_) => [
                "IncompleteSignatureException",
                "IncompleteSignature",
                "IncompleteSignature",
            ],
            UnknownAccessKey => [
                "UnrecognizedClientException",
                "InvalidClientTokenId",
                "AuthFailure",
            ],
            SignatureMismatch { .. } | ScopeDateMismatch { .. } | ContentSha256Mismatch => [
                "InvalidSignatureException",
                "SignatureDoesNotMatch",
                "AuthFailure",
            ],
            Expired { .. } | NotYetCurrent { .. } => [
                "InvalidSignatureException",
                "SignatureDoesNotMatch",
                "RequestExpired",
            ],
            PresignedExpired => ["RequestExpired", "RequestExpired", "RequestExpired"],
        };
        match protocol {
            Protocol::Json => json,
            Protocol::Query { .. } => query,
            Protocol::Ec2 => ec2,
        }
    }

    /// The HTTP status: JSON services answer 400 to every client error; Query services 403 to
    /// authentication failures and 400 to malformed signatures; EC2 401 to `AuthFailure`.
    pub fn status(&self, protocol: Protocol) -> u16 {
        match self.code(protocol) {
            "IncompleteSignature" | "IncompleteSignatureException" | "RequestExpired" => 400,
            "AuthFailure" => 401,
            _ if protocol == Protocol::Json => 400,
            _ if protocol == Protocol::Ec2 => 401,
            _ => 403,
        }
    }

    /// AWS's message text for this refusal, as JSON services word it;
    /// [`AuthError::to_aws_error`] adapts it to the other families.
    pub fn message(&self) -> String {
        use AuthError::*;
        match self {
            Missing => "Missing Authentication Token".to_owned(),
            Incomplete(message) => message.clone(),
            UnknownAccessKey => "The security token included in the request is invalid.".to_owned(),
            SignatureMismatch { .. } => SIGNATURE_MISMATCH_MESSAGE.to_owned(),
            ScopeDateMismatch {
                scope_date,
                request_time,
            } => format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
                 from HTTP: '{scope_date}' != '{}', from '{request_time}'.",
                request_time.get(..8).unwrap_or(request_time)
            ),
            ContentSha256Mismatch => {
                "The provided 'x-amz-content-sha256' header does not match what was computed."
                    .to_owned()
            }
            Expired {
                request_time,
                earliest,
                now,
            } => format!(
                "Signature expired: {request_time} is now earlier than {earliest} ({now} - 5 min.)"
            ),
            NotYetCurrent {
                request_time,
                latest,
                now,
            } => format!(
                "Signature not yet current: {request_time} is still later than {latest} \
                 ({now} + 5 min.)"
            ),
            PresignedExpired => "Request has expired.".to_owned(),
        }
    }

    /// The error to send: code and status for `protocol`, AWS's message in that family's
    /// wording. Query services append the canonical request and string to sign to a
    /// signature mismatch, as IAM and STS do.
    pub fn to_aws_error(&self, protocol: Protocol) -> AwsError {
        let code = self.code(protocol);
        let message = match (self, code) {
            (_, "AuthFailure") => {
                "AWS was not able to validate the provided access credentials".to_owned()
            }
            (_, "RequestExpired") => "Request has expired.".to_owned(),
            (AuthError::Missing, "MissingAuthenticationToken") => {
                "Request is missing Authentication Token".to_owned()
            }
            (
                AuthError::SignatureMismatch {
                    canonical_request,
                    string_to_sign,
                },
                "SignatureDoesNotMatch",
            ) => format!(
                "{SIGNATURE_MISMATCH_MESSAGE}\n\nThe Canonical String for this request should \
                 have been\n'{canonical_request}'\n\nThe String-to-Sign should have been\n\
                 '{string_to_sign}'\n"
            ),
            _ => self.message(),
        };
        AwsError::new(self.status(protocol), code, message)
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for AuthError {}

/// Where the signature was carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureLocation {
    /// The `Authorization` header.
    Header,
    /// Presigned-URL query parameters.
    Query,
}

/// `date/region/service/aws4_request` of a credential.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CredentialScope {
    date: String,
    region: String,
    service: String,
}

impl CredentialScope {
    /// `YYYYMMDD`.
    pub fn date(&self) -> &str {
        &self.date
    }
    /// The region the client signed for, e.g. `us-east-1`.
    pub fn region(&self) -> &str {
        &self.region
    }
    /// The service the client signed for (`ssm`, `iam`, `sts`, `ec2`): how the server tells
    /// which API a request is for.
    pub fn service(&self) -> &str {
        &self.service
    }
}

impl fmt::Display for CredentialScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// The signing parts of a request, as [`parse`] read them. Only `parse` makes one, so a
/// `SignedRequest` is always well-formed; it says nothing yet about the signature's validity.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedRequest {
    location: SignatureLocation,
    access_key_id: String,
    scope: CredentialScope,
    /// ISO 8601 basic, as it goes into the string to sign.
    request_time: String,
    request_secs: u64,
    signed_headers: Vec<String>,
    signature: String,
    expires_secs: Option<u64>,
    session_token: Option<String>,
}

impl SignedRequest {
    /// Header or presigned form.
    pub fn location(&self) -> SignatureLocation {
        self.location
    }
    /// The access key id the client claims; look its secret up, then call [`verify`].
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }
    /// The credential scope (date, region, service).
    pub fn scope(&self) -> &CredentialScope {
        &self.scope
    }
    /// The request's timestamp in ISO 8601 basic format (`20261130T000000Z`).
    pub fn request_time(&self) -> &str {
        &self.request_time
    }
    /// The request's timestamp.
    pub fn timestamp(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(self.request_secs)
    }
    /// The signed header names, lower-cased, as listed by the client.
    pub fn signed_headers(&self) -> &[String] {
        &self.signed_headers
    }
    /// The signature the client sent.
    pub fn signature(&self) -> &str {
        &self.signature
    }
    /// `X-Amz-Expires` of a presigned URL, in seconds.
    pub fn presign_expires_secs(&self) -> Option<u64> {
        self.expires_secs
    }
    /// `X-Amz-Security-Token`, for temporary credentials.
    pub fn session_token(&self) -> Option<&str> {
        self.session_token.as_deref()
    }
}

impl fmt::Debug for SignedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedRequest")
            .field("location", &self.location)
            .field("access_key_id", &self.access_key_id)
            .field("scope", &self.scope)
            .field("request_time", &self.request_time)
            .field("signed_headers", &self.signed_headers)
            .field("signature", &self.signature)
            .field("expires_secs", &self.expires_secs)
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "** redacted **"),
            )
            .finish()
    }
}

/// Reads a request's SigV4 signing parts, refusing a malformed or incomplete signature.
pub fn parse(req: &RequestParts<'_>) -> Result<SignedRequest, AuthError> {
    let mut authorization = req.header_values("authorization");
    let header = authorization.next();
    if authorization.next().is_some() {
        return Err(AuthError::Incomplete(
            "Only one Authorization header is allowed.".to_owned(),
        ));
    }
    let query = decode_query_lenient(req.query);
    let presigned = query.iter().any(|(k, _)| {
        matches!(
            k.as_slice(),
            b"X-Amz-Algorithm" | b"X-Amz-Credential" | b"X-Amz-Signature"
        )
    });
    match (header, presigned) {
        (Some(_), true) => Err(AuthError::Incomplete(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, \
             Signature query string parameter or the Authorization header should be specified"
                .to_owned(),
        )),
        (None, false) => Err(AuthError::Missing),
        (Some(value), false) => parse_header_form(req, value),
        (None, true) => parse_query_form(&query),
    }
}

fn parse_header_form(req: &RequestParts<'_>, value: &str) -> Result<SignedRequest, AuthError> {
    let value = value.trim();
    let (algorithm, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    if algorithm != ALGORITHM && algorithm.starts_with("AWS4-") {
        return Err(AuthError::Incomplete(format!(
            "Unsupported AWS 'algorithm': '{algorithm}'. Only '{ALGORITHM}' is supported."
        )));
    }

    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    if algorithm == ALGORITHM {
        // AWS separates the components by commas and/or whitespace.
        for part in rest.split([',', ' ', '\t']).filter(|p| !p.is_empty()) {
            let Some((key, val)) = part.split_once('=') else {
                return Err(AuthError::Incomplete(format!(
                    "'{part}' not a valid key=value pair (missing equal-sign) in Authorization \
                     header: '{value}'."
                )));
            };
            let slot = match key {
                "Credential" => &mut credential,
                "SignedHeaders" => &mut signed_headers,
                "Signature" => &mut signature,
                _ => continue,
            };
            if slot.is_some() {
                return Err(AuthError::Incomplete(format!(
                    "Authorization header has '{key}' more than once: '{value}'."
                )));
            }
            *slot = Some(val);
        }
    }

    let date = match (req.header("x-amz-date"), req.header("date")) {
        (Some(d), _) => Some(
            parse_amz_date(d.trim())
                .map(|secs| (d.trim().to_owned(), secs))
                .ok_or_else(|| bad_date(d))?,
        ),
        (None, Some(d)) => Some(
            parse_http_date(d)
                .map(|secs| (format_amz_date(secs), secs))
                .ok_or_else(|| {
                    AuthError::Incomplete(format!(
                        "The Date header must be an HTTP date such as \
                         'Mon, 30 Nov 2026 00:00:00 GMT'. Got '{d}'."
                    ))
                })?,
        ),
        (None, None) => None,
    };

    let mut missing = String::new();
    for (name, part) in [
        ("Credential", credential),
        ("Signature", signature),
        ("SignedHeaders", signed_headers),
    ] {
        if part.is_none_or(str::is_empty) {
            missing.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }
    if date.is_none() {
        missing.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' \
             header. ",
        );
    }
    let (Some(credential), Some(signed_headers), Some(signature), Some((request_time, secs))) =
        (credential, signed_headers, signature, date)
    else {
        return Err(AuthError::Incomplete(format!(
            "{missing}Authorization={value}"
        )));
    };
    if !missing.is_empty() {
        return Err(AuthError::Incomplete(format!(
            "{missing}Authorization={value}"
        )));
    }

    build(
        SignatureLocation::Header,
        credential,
        signed_headers,
        signature,
        request_time,
        secs,
        None,
        req.header("x-amz-security-token").map(str::to_owned),
    )
}

fn bad_date(value: &str) -> AuthError {
    AuthError::Incomplete(format!(
        "Date must be in ISO-8601 'basic format'. Got '{value}'. See \
         http://en.wikipedia.org/wiki/ISO_8601"
    ))
}

fn parse_query_form(query: &[(Vec<u8>, Vec<u8>)]) -> Result<SignedRequest, AuthError> {
    let get = |name: &str| -> Result<Option<String>, AuthError> {
        let mut values = query.iter().filter(|(k, _)| k == name.as_bytes());
        let first = values.next();
        if values.next().is_some() {
            return Err(AuthError::Incomplete(format!(
                "The query-string parameter '{name}' is given more than once."
            )));
        }
        Ok(first.map(|(_, v)| String::from_utf8_lossy(v).into_owned()))
    };
    let required = |name: &str| -> Result<String, AuthError> {
        get(name)?.filter(|v| !v.is_empty()).ok_or_else(|| {
            AuthError::Incomplete(format!(
                "AWS query-string parameters must include '{name}'. Re-examine the query-string \
                 parameters."
            ))
        })
    };

    let algorithm = required("X-Amz-Algorithm")?;
    if algorithm != ALGORITHM {
        return Err(AuthError::Incomplete(format!(
            "X-Amz-Algorithm only supports \"{ALGORITHM}\", not \"{algorithm}\"."
        )));
    }
    let credential = required("X-Amz-Credential")?;
    let date = required("X-Amz-Date")?;
    let expires = required("X-Amz-Expires")?;
    let signed_headers = required("X-Amz-SignedHeaders")?;
    let signature = required("X-Amz-Signature")?;
    let token = get("X-Amz-Security-Token")?;

    let secs = parse_amz_date(&date).ok_or_else(|| bad_date(&date))?;
    if expires.is_empty() || !expires.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AuthError::Incomplete(
            "X-Amz-Expires should be a number".to_owned(),
        ));
    }
    let expires_secs = match expires.parse::<u64>() {
        Ok(0) => {
            return Err(AuthError::Incomplete(
                "X-Amz-Expires must be non-negative and greater than zero".to_owned(),
            ))
        }
        Ok(n) if n <= MAX_PRESIGN_EXPIRES_SECS => n,
        _ => {
            return Err(AuthError::Incomplete(format!(
                "X-Amz-Expires must be less than a week (in seconds) that is \
                 {MAX_PRESIGN_EXPIRES_SECS}"
            )))
        }
    };

    build(
        SignatureLocation::Query,
        &credential,
        &signed_headers,
        &signature,
        date,
        secs,
        Some(expires_secs),
        token,
    )
}

#[allow(clippy::too_many_arguments)]
fn build(
    location: SignatureLocation,
    credential: &str,
    signed_headers: &str,
    signature: &str,
    request_time: String,
    request_secs: u64,
    expires_secs: Option<u64>,
    session_token: Option<String>,
) -> Result<SignedRequest, AuthError> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = parts.as_slice() else {
        return Err(malformed_credential(credential));
    };
    if [access_key_id, date, region, service]
        .iter()
        .any(|p| p.is_empty())
    {
        return Err(malformed_credential(credential));
    }
    if *terminator != "aws4_request" {
        return Err(AuthError::Incomplete(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not \
             '{terminator}'."
        )));
    }
    if request_time.get(..8) != Some(*date) {
        return Err(AuthError::ScopeDateMismatch {
            scope_date: (*date).to_owned(),
            request_time,
        });
    }

    let signed_headers: Vec<String> = signed_headers
        .split(';')
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    if signed_headers.iter().any(String::is_empty) {
        return Err(AuthError::Incomplete(format!(
            "SignedHeaders has an empty header name: '{}'.",
            signed_headers.join(";")
        )));
    }
    if !signed_headers.iter().any(|h| h == "host") {
        return Err(AuthError::Incomplete(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".to_owned(),
        ));
    }

    Ok(SignedRequest {
        location,
        access_key_id: (*access_key_id).to_owned(),
        scope: CredentialScope {
            date: (*date).to_owned(),
            region: (*region).to_owned(),
            service: (*service).to_owned(),
        },
        request_time,
        request_secs,
        signed_headers,
        signature: signature.to_owned(),
        expires_secs,
        session_token,
    })
}

fn malformed_credential(credential: &str) -> AuthError {
    AuthError::Incomplete(format!(
        "Credential must have exactly 5 slash-delimited elements, e.g. \
         keyid/date/region/service/term, got '{credential}'"
    ))
}

/// Checks a parsed request against the secret of its access key: the time window first,
/// then the body hash, then the signature (compared in constant time).
///
/// `req` must be the same request [`parse`] read. `now` is a parameter so tests and the server
/// agree on one clock.
pub fn verify(
    signed: &SignedRequest,
    req: &RequestParts<'_>,
    secret: &str,
    now: SystemTime,
    keys: &SigningKeyCache,
) -> Result<(), AuthError> {
    check_time(signed, unix_secs(now))?;

    let body_hash = hex::encode(Sha256::digest(req.body));
    let payload_hash = match req.header("x-amz-content-sha256").map(str::trim) {
        Some(UNSIGNED_PAYLOAD) => UNSIGNED_PAYLOAD.to_owned(),
        Some(claimed) if claimed.eq_ignore_ascii_case(&body_hash) => claimed.to_owned(),
        Some(_) => return Err(AuthError::ContentSha256Mismatch),
        None => body_hash,
    };

    let canonical_request = canonical_request(signed, req, &payload_hash);
    let string_to_sign = format!(
        "{ALGORITHM}\n{}\n{}\n{}",
        signed.request_time,
        signed.scope,
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let key = keys.signing_key(secret, &signed.scope);
    let expected = hex::encode(hmac_sha256(&key, string_to_sign.as_bytes()));
    if constant_time_eq(expected.as_bytes(), signed.signature.as_bytes()) {
        Ok(())
    } else {
        Err(AuthError::SignatureMismatch {
            canonical_request,
            string_to_sign,
        })
    }
}

fn check_time(signed: &SignedRequest, now: u64) -> Result<(), AuthError> {
    let at = signed.request_secs;
    if at > now.saturating_add(MAX_SKEW_SECS) {
        return Err(AuthError::NotYetCurrent {
            request_time: signed.request_time.clone(),
            latest: format_amz_date(now.saturating_add(MAX_SKEW_SECS)),
            now: format_amz_date(now),
        });
    }
    match signed.expires_secs {
        Some(expires) if now > at.saturating_add(expires) => Err(AuthError::PresignedExpired),
        Some(_) => Ok(()),
        None if at.saturating_add(MAX_SKEW_SECS) < now => Err(AuthError::Expired {
            request_time: signed.request_time.clone(),
            earliest: format_amz_date(now.saturating_sub(MAX_SKEW_SECS)),
            now: format_amz_date(now),
        }),
        None => Ok(()),
    }
}

/// The canonical request, exactly as AWS documents it:
/// method, canonical URI, canonical query, canonical headers, signed headers, payload hash.
fn canonical_request(signed: &SignedRequest, req: &RequestParts<'_>, payload_hash: &str) -> String {
    let mut out = String::with_capacity(256 + req.query.len());
    out.push_str(req.method);
    out.push('\n');
    out.push_str(&canonical_uri(req.path));
    out.push('\n');
    out.push_str(&canonical_query(
        req.query,
        signed.location == SignatureLocation::Query,
    ));
    out.push('\n');
    for name in &signed.signed_headers {
        out.push_str(name);
        out.push(':');
        let mut first = true;
        for value in req.header_values(name) {
            if !first {
                out.push(',');
            }
            first = false;
            push_trimmed(&mut out, value);
        }
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed.signed_headers.join(";"));
    out.push('\n');
    out.push_str(payload_hash);
    out
}

/// Header value with leading/trailing whitespace removed and inner runs collapsed to one space.
fn push_trimmed(out: &mut String, value: &str) {
    let mut first = true;
    for word in value
        .split([' ', '\t', '\r', '\n'])
        .filter(|w| !w.is_empty())
    {
        if !first {
            out.push(' ');
        }
        first = false;
        out.push_str(word);
    }
}

/// The raw path, normalised per RFC 3986 section 5.2.4 with empty segments dropped (as AWS
/// services other than S3 do), then each byte but unreserved ones and `/` encoded.
fn canonical_uri(raw_path: &str) -> String {
    if raw_path.is_empty() {
        return "/".to_owned();
    }
    let path = if raw_path.contains('.') || raw_path.contains("//") || !raw_path.starts_with('/') {
        normalize_path(raw_path)
    } else {
        raw_path.to_owned()
    };
    uri_encode(path.as_bytes(), true)
}

fn normalize_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    out.push('/');
    out.push_str(&segments.join("/"));
    let trailing = ["/", "/.", "/..", "/./", "/../"]
        .iter()
        .any(|s| path.ends_with(s))
        || path == "."
        || path == "..";
    if trailing && !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// Query parameters decoded as `form_urlencoded` does (`+` is a space, a malformed escape kept
/// literally), so the canonical query matches what the SDKs sign.
fn decode_query_lenient(query: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    split_pairs(query)
        .map(|(k, v)| {
            (
                form_decode(k, false).unwrap_or_default(),
                form_decode(v, false).unwrap_or_default(),
            )
        })
        .collect()
}

/// Every parameter re-encoded with SigV4's strict set, sorted by encoded name then value;
/// a presigned request's own `X-Amz-Signature` left out.
fn canonical_query(raw_query: &str, presigned: bool) -> String {
    let mut pairs: Vec<(String, String)> = decode_query_lenient(raw_query)
        .into_iter()
        .filter(|(k, _)| !(presigned && k == b"X-Amz-Signature"))
        .map(|(k, v)| (uri_encode(&k, false), uri_encode(&v, false)))
        .collect();
    pairs.sort();
    let mut out = String::with_capacity(raw_query.len() + 16);
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length, so this never fails; the fallback keeps us panic-free.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Equality that takes the same time wherever the first difference is. Lengths are public
/// (a signature is always 64 hex digits), so a length mismatch may return early.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn derive_signing_key(secret: &str, scope: &CredentialScope) -> [u8; 32] {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), scope.date.as_bytes());
    let k_region = hmac_sha256(&k_date, scope.region.as_bytes());
    let k_service = hmac_sha256(&k_region, scope.service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    /// SHA-256 of the secret, so a rotated secret never reuses a stale key and the cache
    /// holds no secret in the clear.
    secret_digest: [u8; 32],
    scope: CredentialScope,
}

/// Derived signing keys, cached per (secret, date, region, service) so a busy client costs one
/// HMAC per request instead of five. Thread-safe, and bounded: when full, keys of other days
/// go first, then everything.
pub struct SigningKeyCache {
    keys: Mutex<HashMap<CacheKey, [u8; 32]>>,
    capacity: usize,
}

impl SigningKeyCache {
    /// A cache holding at most `capacity` keys (at least 1).
    pub fn new(capacity: usize) -> Self {
        SigningKeyCache {
            keys: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// How many keys are cached.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no key is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, [u8; 32]>> {
        // A panic elsewhere while holding the lock leaves the map intact: keep using it.
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn signing_key(&self, secret: &str, scope: &CredentialScope) -> [u8; 32] {
        let key = CacheKey {
            secret_digest: Sha256::digest(secret.as_bytes()).into(),
            scope: scope.clone(),
        };
        if let Some(k) = self.lock().get(&key) {
            return *k;
        }
        let derived = derive_signing_key(secret, scope);
        let mut keys = self.lock();
        if keys.len() >= self.capacity {
            keys.retain(|k, _| k.scope.date == scope.date);
            if keys.len() >= self.capacity {
                keys.clear();
            }
        }
        keys.insert(key, derived);
        derived
    }
}

impl Default for SigningKeyCache {
    /// Room for 1024 keys: far more users × regions × services than one server sees in a day.
    fn default() -> Self {
        SigningKeyCache::new(1024)
    }
}

impl fmt::Debug for SigningKeyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyCache")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_paths_like_the_sdks() {
        for (raw, want) in [
            ("", "/"),
            ("/", "/"),
            ("/a/./b/../c", "/a/c"),
            ("//a//b//", "/a/b/"),
            ("/a/b/.", "/a/b/"),
            ("/..", "/"),
            ("/../a", "/a"),
            ("/a%20b", "/a%2520b"),
            ("/~user", "/~user"),
            ("/ሴ", "/%E1%88%B4"),
            ("/.hidden", "/.hidden"),
        ] {
            assert_eq!(canonical_uri(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn sorts_and_encodes_query() {
        assert_eq!(
            canonical_query("b=2&a=z&a=y&c&d=a+b%2Fc~&%41=1", false),
            "A=1&a=y&a=z&b=2&c=&d=a%20b%2Fc~"
        );
        assert_eq!(canonical_query("X-Amz-Signature=abc&x=1", true), "x=1");
        assert_eq!(canonical_query("", false), "");
    }

    #[test]
    fn trims_header_values() {
        let mut s = String::new();
        push_trimmed(&mut s, "  a   b \t c  ");
        assert_eq!(s, "a b c");
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn derives_aws_documented_signing_key() {
        // From AWS's SigV4 documentation ("Examples of how to derive a signing key").
        let scope = CredentialScope {
            date: "20120215".into(),
            region: "us-east-1".into(),
            service: "iam".into(),
        };
        assert_eq!(
            hex::encode(derive_signing_key(
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                &scope
            )),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    #[test]
    fn cache_is_bounded() {
        let cache = SigningKeyCache::new(2);
        let scope = |d: &str| CredentialScope {
            date: d.into(),
            region: "us-east-1".into(),
            service: "ssm".into(),
        };
        let a = cache.signing_key("s1", &scope("20261130"));
        assert_eq!(cache.signing_key("s1", &scope("20261130")), a);
        cache.signing_key("s2", &scope("20261130"));
        assert_eq!(cache.len(), 2);
        cache.signing_key("s1", &scope("20261201"));
        assert!(cache.len() <= 2);
        assert_ne!(cache.signing_key("s2", &scope("20261130")), a);
    }
}
