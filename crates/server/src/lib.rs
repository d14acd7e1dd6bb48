//! The Portcullis server: one port for the AWS-compatible API (SigV4, then the operation in
//! its protocol), the node endpoints, `/healthz` and `/metrics`.
//!
//! [`serve`] takes a bound listener and a shutdown future, so tests bind port 0 and stop the
//! server when they are done.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use portcullis_aws_api::{sigv4, AwsError, Operation, Protocol, RequestParts, SigningKeyCache};
use portcullis_core::{Caller, Error, Service};
use tokio::net::{TcpListener, TcpStream};

mod access_api;
mod analyzer_api;
pub mod channels;
mod console;
mod console_admin;
mod ec2_api;
mod iam_api;
pub mod logs_api;
pub mod metrics;
mod nodes;
pub mod session_log;
mod ssm_api;
pub mod tls;

/// AWS's largest request bodies for these services are far below this; anything bigger is
/// refused before it is read whole.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub struct AppState {
    pub service: Arc<Service>,
    pub signing_keys: SigningKeyCache,
    pub metrics: metrics::Metrics,
    /// Whether clients reach this server over TLS (decides `aws:SecureTransport`, `wss://`).
    pub tls: bool,
    pub hub: channels::Hub,
    /// A session whose client dropped is terminated if nobody resumes it within this time.
    pub idle_timeout: std::time::Duration,
    /// A session whose agent data channel dropped (without `channel_closed`) ends if the
    /// agent has not reconnected within this time.
    pub agent_grace: std::time::Duration,
    /// Where what each session's terminal showed is written; `None`: nowhere.
    pub session_logs: Option<session_log::SessionLogs>,
    /// A session is terminated this long after it started, whatever it is doing (Session
    /// Manager's `maxSessionDuration`); `None`: no limit.
    pub max_session: Option<std::time::Duration>,
}

impl AppState {
    pub fn new(service: Arc<Service>, tls: bool) -> AppState {
        AppState {
            service,
            signing_keys: SigningKeyCache::new(1024),
            metrics: metrics::Metrics::default(),
            tls,
            hub: channels::Hub::default(),
            idle_timeout: std::time::Duration::from_secs(20 * 60),
            agent_grace: std::time::Duration::from_secs(60),
            session_logs: None,
            max_session: None,
        }
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", post(aws_api).get(aws_api))
        // IAM Access Analyzer speaks REST-JSON: the operation is in the path.
        .route("/policy/validation", post(aws_api))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics_text))
        .route("/v1/nodes/register", post(nodes::register))
        .route("/v1/nodes/heartbeat", post(nodes::heartbeat))
        .route("/v1/control", get(channels::control))
        .route("/v1/agent-data/{session_id}", get(channels::agent_data))
        .route("/v1/data-channel/{session_id}", get(channels::client_data))
        .merge(console::routes())
        // The AWS endpoint reads its body itself, to refuse an oversize one in AWS's shape.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_request(host_from_authority))
        .with_state(state)
}

/// HTTP/2 (what browsers and many SDKs speak over TLS) names the host in the `:authority`
/// pseudo-header, which arrives as the URI's authority, not as a `Host` header. Everything
/// here reads `Host`: the SigV4 canonical request (clients sign `host` with the authority),
/// the console's same-origin check, the `StreamUrl` handed out. So a request without one gets
/// it from the authority, once, before any handler.
async fn host_from_authority(mut request: axum::extract::Request) -> axum::extract::Request {
    if !request.headers().contains_key(axum::http::header::HOST) {
        let authority = request
            .uri()
            .authority()
            .and_then(|a| axum::http::HeaderValue::from_str(a.as_str()).ok());
        if let Some(host) = authority {
            request.headers_mut().insert(axum::http::header::HOST, host);
        }
    }
    request
}

/// Serves until `shutdown` completes, then lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    // Keystrokes are tiny frames: without TCP_NODELAY, Nagle's algorithm holds each one back
    // until the peer's delayed ACK (tens of milliseconds per echo).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut TcpStream| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    (
        [("content-type", "text/plain; version=0.0.4")],
        state.metrics.render(&{
            let mut figures = state.hub.figures();
            if let Some(logs) = &state.session_logs {
                (figures.session_log_bytes, figures.session_log_failures) = logs.figures();
            }
            figures
        }),
    )
        .into_response()
}

/// The protocol of a service named in a SigV4 credential scope.
fn protocol_of(service: &str) -> Option<Protocol> {
    match service {
        "ssm" => Some(Protocol::Json),
        "iam" => Some(Protocol::IAM),
        "sts" => Some(Protocol::STS),
        "ec2" => Some(Protocol::Ec2),
        // REST-JSON; its errors read the same as JSON 1.1's (`__type` and `message`).
        "access-analyzer" => Some(Protocol::Json),
        // Portcullis's own operations (access analysis), JSON 1.1.
        "portcullis" => Some(Protocol::Json),
        // CloudWatch Logs: session logs (`logs_api`).
        "logs" => Some(Protocol::Json),
        _ => None,
    }
}

/// Before the signature is read, the best guess at the protocol to answer in.
fn guess_protocol(headers: &HeaderMap) -> Protocol {
    if headers.contains_key("x-amz-target") {
        return Protocol::Json;
    }
    let service = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(3));
    service.and_then(protocol_of).unwrap_or(Protocol::IAM)
}

fn render(err: &AwsError, protocol: Protocol, request_id: &str) -> Response {
    let rendered = err.render(protocol, request_id);
    let mut resp = (
        StatusCode::from_u16(rendered.status).unwrap_or(StatusCode::BAD_REQUEST),
        rendered.body,
    )
        .into_response();
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(rendered.content_type) {
        headers.insert("content-type", v);
    }
    for (name, value) in rendered.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    resp
}

fn aws_error(e: &Error) -> AwsError {
    AwsError::new(e.status, e.code.clone(), e.message.clone())
}

/// Every AWS API call: verify the signature, find the caller, decode the operation in its
/// protocol, run it, audit it, count it.
async fn aws_api(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let request_id = portcullis_core::ids::request_id();
    let mut protocol = guess_protocol(&headers);
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            let err = AwsError::new(
                413,
                "RequestEntityTooLarge",
                format!("The request body is larger than {MAX_BODY_BYTES} bytes."),
            );
            state
                .metrics
                .record("unknown", "unknown", &err.code, started.elapsed());
            return render(&err, protocol, &request_id);
        }
    };
    let mut header_pairs = Vec::with_capacity(headers.len());
    for (name, value) in &headers {
        match value.to_str() {
            Ok(v) => header_pairs.push((name.as_str(), v)),
            Err(_) => {
                let err = AwsError::new(
                    400,
                    "InvalidRequest",
                    format!("the value of header `{name}` is not valid text"),
                );
                return render(&err, protocol, &request_id);
            }
        }
    }
    let parts = RequestParts {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers: &header_pairs,
        body: &body,
    };
    let signed = match sigv4::parse(&parts) {
        Ok(s) => s,
        Err(e) => {
            state
                .metrics
                .record("unknown", "unknown", e.code(protocol), started.elapsed());
            return render(&e.to_aws_error(protocol), protocol, &request_id);
        }
    };
    let service_name = signed.scope().service().to_owned();
    let Some(p) = protocol_of(&service_name) else {
        let err = AwsError::new(
            400,
            "UnknownService",
            format!(
                "this server does not serve `{service_name}` (it serves iam, sts, ec2, ssm, logs, access-analyzer and portcullis)"
            ),
        );
        return render(&err, protocol, &request_id);
    };
    protocol = p;
    let fail = |e: AwsError| {
        state
            .metrics
            .record(&service_name, "unknown", &e.code, started.elapsed());
        render(&e, protocol, &request_id)
    };
    let identity = match state.service.authenticate(signed.access_key_id()).await {
        Ok(Some(identity)) => identity,
        Ok(None) => return fail(sigv4::AuthError::UnknownAccessKey.to_aws_error(protocol)),
        Err(e) => {
            tracing::error!(error = %e, "authentication failed");
            return fail(AwsError::internal(protocol));
        }
    };
    if let Err(e) = sigv4::verify(
        &signed,
        &parts,
        &identity.secret,
        SystemTime::now(),
        &state.signing_keys,
    ) {
        return fail(e.to_aws_error(protocol));
    }
    let caller = Caller::new(
        identity,
        signed.access_key_id(),
        &peer.ip().to_string(),
        state.tls,
    );
    let (name, result) = if service_name == "access-analyzer" {
        let (name, result) = analyzer_api::handle(
            &state.service,
            &caller,
            parts.method,
            parts.path,
            parts.query,
            parts.body,
        );
        (
            name,
            result.map(|v| ("application/json", v.to_string().into_bytes())),
        )
    } else {
        let operation = match portcullis_aws_api::detect(&parts) {
            Ok(op) => op,
            Err(e) => return fail(e),
        };
        let host = headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        dispatch(&state, &caller, &service_name, protocol, operation, host).await
    };
    let error = result.as_ref().err();
    if let Some(e) = error.filter(|e| e.is_internal()) {
        tracing::error!(request_id = %caller.request_id, operation = %name, error = %e, "operation failed");
    }
    if let Err(e) = state.service.audit(&caller, &name, error).await {
        tracing::error!(request_id = %caller.request_id, error = %e, "could not write the audit event");
    }
    let code = error.map_or("200", |e| e.code.as_str());
    state
        .metrics
        .record(&service_name, &name, code, started.elapsed());
    tracing::debug!(request_id = %caller.request_id, principal = %caller.arn(), operation = %name, code, "api call");
    match result {
        Ok((content_type, body)) => {
            let mut resp = (StatusCode::OK, body).into_response();
            let h = resp.headers_mut();
            h.insert("content-type", HeaderValue::from_static(content_type));
            if let Ok(v) = HeaderValue::from_str(&caller.request_id) {
                h.insert("x-amzn-requestid", v);
            }
            resp
        }
        Err(e) => render(&aws_error(&e), protocol, &caller.request_id),
    }
}

type Reply = Result<(&'static str, Vec<u8>), Error>;

/// Runs the operation; returns its name (for audit and metrics) and the reply body.
async fn dispatch(
    state: &Arc<AppState>,
    caller: &Caller,
    service: &str,
    protocol: Protocol,
    operation: Operation,
    host: &str,
) -> (String, Reply) {
    let svc = &state.service;
    match (protocol, operation) {
        (
            Protocol::Json,
            Operation::Json {
                service_target,
                operation,
                body,
            },
        ) => {
            if service == "portcullis" {
                if service_target != "Portcullis" {
                    let e = Error::invalid(
                        "UnknownOperationException",
                        format!("`{service_target}.{operation}` is not a Portcullis operation"),
                    );
                    return (operation, Err(e));
                }
                let result = access_api::handle(svc, caller, &operation, &body)
                    .await
                    .map(|v| ("application/x-amz-json-1.1", v.to_string().into_bytes()));
                return (operation, result);
            }
            if service == "logs" {
                if service_target != "Logs_20140328" {
                    let e = Error::invalid(
                        "UnknownOperationException",
                        format!(
                            "`{service_target}.{operation}` is not a CloudWatch Logs operation"
                        ),
                    );
                    return (operation, Err(e));
                }
                let result =
                    logs_api::handle(svc, caller, &operation, &body, state.session_logs.as_ref())
                        .map(|v| ("application/x-amz-json-1.1", v.to_string().into_bytes()));
                return (operation, result);
            }
            if service_target != "AmazonSSM" {
                let e = Error::invalid(
                    "UnknownOperationException",
                    format!("`{service_target}.{operation}` is not an SSM operation"),
                );
                return (operation, Err(e));
            }
            let at = ssm_api::Endpoint { host, state };
            let result = ssm_api::handle(svc, caller, &operation, &body, &at)
                .await
                .map(|v| ("application/x-amz-json-1.1", v.to_string().into_bytes()));
            (operation, result)
        }
        (_, Operation::Query { action, params, .. }) => {
            let result = match service {
                "iam" => iam_api::handle(svc, caller, &action, &params).await,
                "sts" => iam_api::handle_sts(svc, caller, &action),
                "ec2" => ec2_api::handle(svc, caller, &action, &params).await,
                _ => Err(Error::invalid(
                    "InvalidAction",
                    format!(
                        "`{action}` is not an operation of `{service}` over the Query protocol"
                    ),
                )),
            };
            (action, result.map(|xml| ("text/xml", xml.into_bytes())))
        }
        (_, Operation::Json { operation, .. }) => (
            operation,
            Err(Error::invalid(
                "InvalidAction",
                format!("`{service}` is served over the Query protocol, not JSON"),
            )),
        ),
    }
}
