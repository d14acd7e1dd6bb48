//! The four Session Manager operations of the SSM API, over AWS JSON 1.1 with SigV4
//! (`aws-sigv4`, the AWS Rust SDK's signer).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials as SdkCredentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::Full;
use serde_json::{json, Map, Value};

use crate::config::{Credentials, ResolvedConfig};
use crate::net::{self, NetError, Target};

/// How long one API call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The service answered with an error, shown as the AWS CLI shows it.
    #[error("An error occurred ({code}) when calling the {operation} operation: {message}")]
    Aws {
        /// The operation, e.g. `StartSession`.
        operation: String,
        /// The error code (`__type` without its namespace).
        code: String,
        /// The message.
        message: String,
        /// The HTTP status.
        status: u16,
    },
    /// The call did not get an answer.
    #[error("Could not connect to the endpoint URL: \"{endpoint}\" ({source})")]
    Connect {
        /// The endpoint.
        endpoint: String,
        /// Why.
        source: NetError,
    },
    /// A request could not be built or signed, or a 2xx answer did not read.
    #[error("{operation}: {message}")]
    Other {
        /// The operation.
        operation: String,
        /// What went wrong.
        message: String,
    },
}

impl ApiError {
    /// The AWS error code, for service errors.
    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Aws { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Reads an AWS JSON error body as botocore does: the code from `__type` (anything before
/// `#` and after `:` dropped), the message from `message` or `Message`; the HTTP status when
/// there is no code.
pub fn parse_error(operation: &str, status: u16, body: &[u8]) -> ApiError {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = value
        .get("__type")
        .or_else(|| value.get("code"))
        .and_then(Value::as_str)
        .map(|t| {
            let t = t.rsplit('#').next().unwrap_or(t);
            t.split(':').next().unwrap_or(t).to_owned()
        })
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| status.to_string());
    let message = value
        .get("message")
        .or_else(|| value.get("Message"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| {
            if value.is_null() {
                String::from_utf8_lossy(body).trim().to_owned()
            } else {
                String::new()
            }
        });
    ApiError::Aws {
        operation: operation.to_owned(),
        code,
        message,
        status,
    }
}

/// What `StartSession` and `ResumeSession` return: where and how to open the data channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamGrant {
    /// The session.
    pub session_id: String,
    /// The one-time token for `OpenDataChannel` (empty: the session timed out).
    pub token_value: String,
    /// The data channel's URL.
    pub stream_url: String,
}

impl StreamGrant {
    /// Reads the `SessionId`/`TokenValue`/`StreamUrl` object (also what the AWS CLI hands
    /// the plugin).
    pub fn from_json(value: &Value) -> Option<StreamGrant> {
        let s = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(StreamGrant {
            session_id: s("SessionId")?,
            token_value: s("TokenValue").unwrap_or_default(),
            stream_url: s("StreamUrl").unwrap_or_default(),
        })
    }
}

/// `StartSession`'s input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartSession {
    /// The node.
    pub target: String,
    /// The session document (default: the service's, `SSM-SessionManagerRunShell`).
    pub document_name: Option<String>,
    /// Why, for the audit trail.
    pub reason: Option<String>,
    /// Document parameters.
    pub parameters: Vec<(String, Vec<String>)>,
}

impl StartSession {
    /// The request body, as the AWS CLI would send it.
    pub fn to_json(&self) -> Value {
        let mut body = Map::new();
        body.insert("Target".into(), json!(self.target));
        if let Some(d) = &self.document_name {
            body.insert("DocumentName".into(), json!(d));
        }
        if let Some(r) = &self.reason {
            body.insert("Reason".into(), json!(r));
        }
        if !self.parameters.is_empty() {
            let params: Map<String, Value> = self
                .parameters
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            body.insert("Parameters".into(), Value::Object(params));
        }
        Value::Object(body)
    }
}

/// A signed SSM client for one endpoint, region and set of credentials.
#[derive(Clone)]
pub struct SsmClient {
    endpoint: String,
    target: Target,
    region: String,
    credentials: Credentials,
    tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for SsmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsmClient")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl SsmClient {
    /// A client for a resolved configuration.
    pub fn new(config: &ResolvedConfig) -> Result<SsmClient, NetError> {
        let tls = net::tls_config(config.ca_bundle.as_deref())?;
        SsmClient::with_tls(config, tls)
    }

    /// A client with a given TLS configuration (shared with the data channel).
    pub fn with_tls(
        config: &ResolvedConfig,
        tls: Arc<rustls::ClientConfig>,
    ) -> Result<SsmClient, NetError> {
        Ok(SsmClient {
            endpoint: config.endpoint_url.clone(),
            target: Target::parse(&config.endpoint_url, false)?,
            region: config.region.clone(),
            credentials: config.credentials.clone(),
            tls,
        })
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The TLS configuration, for the data channel.
    pub fn tls(&self) -> &Arc<rustls::ClientConfig> {
        &self.tls
    }

    fn signed_request(
        &self,
        operation: &str,
        body: Vec<u8>,
    ) -> Result<http::Request<Full<Bytes>>, String> {
        let target = format!("AmazonSSM.{operation}");
        let headers = [
            ("host", self.target.authority.as_str()),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", target.as_str()),
        ];
        let c = &self.credentials;
        let identity = SdkCredentials::new(
            &c.access_key_id,
            &c.secret_access_key,
            c.session_token.clone(),
            None,
            "portcullis",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("ssm")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let scheme = if self.target.tls { "https" } else { "http" };
        let uri = format!(
            "{scheme}://{}{}",
            self.target.authority, self.target.path_and_query
        );
        let signable = SignableRequest::new(
            "POST",
            &uri,
            headers.iter().copied(),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| e.to_string())?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| e.to_string())?
            .into_parts();
        // Origin form on the wire (the signature covers the path; Host is a header).
        let mut builder = http::Request::builder()
            .method("POST")
            .uri(self.target.path_and_query.as_str());
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        builder = builder.header(
            "user-agent",
            concat!("portcullis/", env!("CARGO_PKG_VERSION")),
        );
        let mut request = builder
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        instructions.apply_to_request_http1x(&mut request);
        Ok(request)
    }

    /// Calls an operation with a JSON body; the JSON answer.
    pub async fn call(&self, operation: &str, body: &Value) -> Result<Value, ApiError> {
        let other = |message: String| ApiError::Other {
            operation: operation.to_owned(),
            message,
        };
        let bytes = serde_json::to_vec(body).map_err(|e| other(e.to_string()))?;
        let request = self.signed_request(operation, bytes).map_err(other)?;
        tracing::debug!(operation, endpoint = %self.endpoint, "calling");
        let response =
            tokio::time::timeout(CALL_TIMEOUT, net::send(&self.target, &self.tls, request))
                .await
                .map_err(|_| ApiError::Connect {
                    endpoint: self.endpoint.clone(),
                    source: NetError::io("request", "timed out"),
                })?
                .map_err(|source| ApiError::Connect {
                    endpoint: self.endpoint.clone(),
                    source,
                })?;
        if !(200..300).contains(&response.status) {
            return Err(parse_error(operation, response.status, &response.body));
        }
        if response.body.is_empty() {
            return Ok(json!({}));
        }
        serde_json::from_slice(&response.body)
            .map_err(|e| other(format!("the answer is not JSON: {e}")))
    }

    fn grant(operation: &str, value: &Value) -> Result<StreamGrant, ApiError> {
        StreamGrant::from_json(value).ok_or_else(|| ApiError::Other {
            operation: operation.to_owned(),
            message: "the answer has no SessionId".to_owned(),
        })
    }

    /// `StartSession`.
    pub async fn start_session(&self, input: &StartSession) -> Result<StreamGrant, ApiError> {
        let answer = self.call("StartSession", &input.to_json()).await?;
        SsmClient::grant("StartSession", &answer)
    }

    /// `ResumeSession`.
    pub async fn resume_session(&self, session_id: &str) -> Result<StreamGrant, ApiError> {
        let answer = self
            .call("ResumeSession", &json!({ "SessionId": session_id }))
            .await?;
        SsmClient::grant("ResumeSession", &answer)
    }

    /// `TerminateSession`.
    pub async fn terminate_session(&self, session_id: &str) -> Result<(), ApiError> {
        self.call("TerminateSession", &json!({ "SessionId": session_id }))
            .await?;
        Ok(())
    }

    /// `DescribeSessions`, every page: the `Sessions` objects as the service sent them.
    /// `filters` are `(key, value)` pairs (`Target`, `Owner`, `Status`, `SessionId`, ...).
    pub async fn describe_sessions(
        &self,
        state: &str,
        filters: &[(String, String)],
    ) -> Result<Vec<Value>, ApiError> {
        let mut sessions = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let mut body = Map::new();
            body.insert("State".into(), json!(state));
            body.insert("MaxResults".into(), json!(200));
            if !filters.is_empty() {
                let list = filters
                    .iter()
                    .map(|(k, v)| json!({ "key": k, "value": v }))
                    .collect();
                body.insert("Filters".into(), Value::Array(list));
            }
            if let Some(token) = &next {
                body.insert("NextToken".into(), json!(token));
            }
            let answer = self.call("DescribeSessions", &Value::Object(body)).await?;
            if let Some(list) = answer.get("Sessions").and_then(Value::as_array) {
                sessions.extend(list.iter().cloned());
            }
            next = answer
                .get("NextToken")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            if next.is_none() {
                return Ok(sessions);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_like_botocore() {
        let e = parse_error(
            "StartSession",
            400,
            br#"{"__type":"com.amazonaws.ssm#TargetNotConnected:http://internal","message":"i-1 is not connected."}"#,
        );
        assert_eq!(
            e.to_string(),
            "An error occurred (TargetNotConnected) when calling the StartSession operation: i-1 is not connected."
        );
        let e = parse_error(
            "TerminateSession",
            400,
            br#"{"__type":"AccessDeniedException","Message":"no"}"#,
        );
        assert_eq!(e.code(), Some("AccessDeniedException"));
        assert!(e.to_string().ends_with("operation: no"));
        let e = parse_error("ResumeSession", 503, b"");
        assert_eq!(e.code(), Some("503"));
    }

    #[test]
    fn start_session_body() {
        let input = StartSession {
            target: "i-1".into(),
            document_name: Some("AWS-StartSSHSession".into()),
            reason: None,
            parameters: vec![("portNumber".into(), vec!["22".into()])],
        };
        assert_eq!(
            input.to_json(),
            json!({"Target": "i-1", "DocumentName": "AWS-StartSSHSession", "Parameters": {"portNumber": ["22"]}})
        );
    }
}
