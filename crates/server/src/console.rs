//! The web console under `/console/`: static pages (hand-written, in `web/`, embedded at
//! build time) and a small JSON API they call.
//!
//! Every API route that acts runs the same `Service` operation an AWS API call would, with a
//! `Caller` for the signed-in principal, and is audited like one; a refusal carries AWS's
//! code and message and, for principals that may simulate their own policies, the engine's
//! explanation.
//!
//! Sessions: cookie `portcullis_console` (256-bit random id; `HttpOnly`, `SameSite=Strict`,
//! `Path=/console`, `Secure` under TLS). CSRF: every POST must come from this origin
//! (`Origin` / `Sec-Fetch-Site` when the browser sends them), and every POST made while
//! signed in must carry the session's token in `X-CSRF-Token` (the page reads it from
//! `/console/api/me`, which another origin cannot read).
//!
//! The terminal page (`/console/terminal?session=ID`) runs xterm.js and our own Session
//! Manager client (`web/ssm.js`) over the session's data channel, as the plugin does. The
//! xterm.js files come from npm at build time (`build.rs`) and are served under
//! `/console/assets/vendor/<hash>/` with year-long caching; a build without them serves a
//! terminal page that says so.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use portcullis_core::console::{same_secret, ConsoleUser, Login, NewSession, SignIn};
use portcullis_core::model::{NodeKind, Session};
use portcullis_core::ops_ssm::{StreamGrant, DEFAULT_SESSION_DOCUMENT};
use portcullis_core::store::SessionFilter;
use portcullis_core::{Caller, Error};
use serde_json::{json, Value};

use crate::AppState;

const COOKIE: &str = "portcullis_console";

const SIGNIN_HTML: &str = include_str!("../../../web/signin.html");
const APP_HTML: &str = include_str!("../../../web/app.html");
const CONSOLE_CSS: &str = include_str!("../../../web/console.css");
const CONSOLE_JS: &str = include_str!("../../../web/console.js");
const ADMIN_JS: &str = include_str!("../../../web/admin.js");
const SIGNIN_JS: &str = include_str!("../../../web/signin.js");
const TERMINAL_HTML: &str = include_str!("../../../web/terminal.html");
const TERMINAL_JS: &str = include_str!("../../../web/terminal.js");
const SSM_JS: &str = include_str!("../../../web/ssm.js");

/// The npm packages `build.rs` embedded (empty files when the build had none).
mod vendor {
    include!(concat!(env!("OUT_DIR"), "/vendor.rs"));
    pub const XTERM_JS: &str = include_str!(concat!(env!("OUT_DIR"), "/xterm.js"));
    pub const XTERM_CSS: &str = include_str!(concat!(env!("OUT_DIR"), "/xterm.css"));
    pub const FIT_JS: &str = include_str!(concat!(env!("OUT_DIR"), "/addon-fit.js"));
    pub const LICENSES: &str = include_str!(concat!(env!("OUT_DIR"), "/licenses.txt"));
}

/// Scripts and styles only from this origin, no framing, no plugins.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The terminal page's policy: the same, except that xterm.js inserts `<style>` elements
/// (cell metrics, theme colours), which `style-src` must allow. Scripts stay `'self'` only,
/// and `connect-src 'self'` covers the data channel's `ws:`/`wss:` to this host.
const TERMINAL_CSP: &str =
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/console", get(|| async { redirect("/console/") }))
        .route("/console/", get(home))
        .route("/console/signin", get(signin_page))
        .route("/console/nodes", get(app_page))
        .route("/console/sessions", get(app_page))
        .route("/console/node", get(app_page))
        .route("/console/users", get(app_page))
        .route("/console/user", get(app_page))
        .route("/console/policy", get(app_page))
        .route("/console/activations", get(app_page))
        .route("/console/session-log", get(app_page))
        .route("/console/terminal", get(terminal_page))
        .route(
            "/console/assets/console.css",
            get(|| async { asset("text/css", CONSOLE_CSS) }),
        )
        .route(
            "/console/assets/console.js",
            get(|| async { asset("text/javascript", CONSOLE_JS) }),
        )
        .route(
            "/console/assets/admin.js",
            get(|| async { asset("text/javascript", ADMIN_JS) }),
        )
        .route(
            "/console/assets/signin.js",
            get(|| async { asset("text/javascript", SIGNIN_JS) }),
        )
        .route(
            "/console/assets/terminal.js",
            get(|| async { asset("text/javascript", TERMINAL_JS) }),
        )
        .route(
            "/console/assets/ssm.js",
            get(|| async { asset("text/javascript", SSM_JS) }),
        )
        .route("/console/assets/vendor/{tag}/{file}", get(vendor_asset))
        .route("/console/api/signin", post(sign_in))
        .route("/console/api/signout", post(sign_out))
        .route("/console/api/me", get(me))
        .route("/console/api/nodes", get(nodes))
        .route("/console/api/sessions", get(sessions).post(start_session))
        .route("/console/api/sessions/{id}/terminate", post(terminate))
        .route("/console/api/sessions/{id}/resume", post(resume_session))
        .route("/console/api/sessions/{id}/log", get(session_log))
        .merge(crate::console_admin::routes())
}

fn secure_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn redirect(to: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    secure_headers(&mut resp);
    resp
}

fn html(body: &'static str) -> Response {
    let mut resp = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    secure_headers(&mut resp);
    resp
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    secure_headers(&mut resp);
    resp
}

pub(crate) fn json_reply(status: StatusCode, body: Value) -> Response {
    let mut resp = (status, Json(body)).into_response();
    secure_headers(&mut resp);
    resp
}

pub(crate) fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    json_reply(status, json!({"code": code, "message": message}))
}

fn not_signed_in() -> Response {
    refuse(
        StatusCode::UNAUTHORIZED,
        "NotSignedIn",
        "You are not signed in, or your session has expired.",
    )
}

/// The session id from the request's cookies.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

fn set_cookie(resp: &mut Response, value: &str, max_age: i64, tls: bool) {
    let secure = if tls { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

pub(crate) async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<ConsoleUser, Response> {
    let Some(id) = session_cookie(headers) else {
        return Err(not_signed_in());
    };
    match state.service.console_user(id).await {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(not_signed_in()),
        Err(e) => {
            tracing::error!(error = %e, "console session lookup failed");
            Err(refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalFailure",
                "The server could not look up your session.",
            ))
        }
    }
}

/// A request refused before any operation ran.
pub(crate) struct Refused(StatusCode, &'static str, &'static str);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        refuse(self.0, self.1, self.2)
    }
}

/// A POST must come from this origin: refused when the browser says it is cross-site
/// (`Sec-Fetch-Site`) or names another origin (`Origin`).
fn same_origin(state: &AppState, headers: &HeaderMap) -> Result<(), Refused> {
    let cross = || {
        Err(Refused(
            StatusCode::FORBIDDEN,
            "CrossSiteRequestRefused",
            "This request did not come from the console's own pages.",
        ))
    };
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site != "same-origin" && site != "none" {
            return cross();
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let scheme = if state.tls { "https" } else { "http" };
        if origin != format!("{scheme}://{host}") {
            return cross();
        }
    }
    Ok(())
}

/// Same origin, and the session's CSRF token in `X-CSRF-Token`.
pub(crate) fn check_csrf(
    state: &AppState,
    headers: &HeaderMap,
    user: &ConsoleUser,
) -> Result<(), Refused> {
    same_origin(state, headers)?;
    let token = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if token.is_empty() || !same_secret(token, &user.csrf) {
        return Err(Refused(
            StatusCode::FORBIDDEN,
            "InvalidCsrfToken",
            "This request is missing the console's CSRF token, or it is wrong.",
        ));
    }
    Ok(())
}

pub(crate) fn caller_for(state: &AppState, user: &ConsoleUser, peer: SocketAddr) -> Caller {
    Caller::new(
        user.identity.clone(),
        user.access_key_id(),
        &peer.ip().to_string(),
        state.tls,
    )
}

/// Audits one operation the console ran for its user, as the API pipeline does.
pub(crate) async fn audit(
    state: &AppState,
    caller: &Caller,
    operation: &str,
    error: Option<&Error>,
) {
    if let Err(e) = state.service.audit(caller, operation, error).await {
        tracing::error!(request_id = %caller.request_id, error = %e, "could not write the audit event");
    }
}

/// AWS's code and message for a failed operation, and the engine's explanation of a
/// refusal for those who may see it.
pub(crate) fn operation_error(
    state: &AppState,
    caller: &Caller,
    operation: &str,
    e: &Error,
) -> Response {
    if e.is_internal() {
        tracing::error!(request_id = %caller.request_id, operation, error = %e, "console operation failed");
    }
    let mut body = json!({"code": e.code, "message": e.message, "operation": operation});
    if let Some(explanation) = caller.refusal_explanation() {
        if state.service.may_see_explanations(caller) {
            if let Some(obj) = body.as_object_mut() {
                obj.insert("explanation".into(), json!(explanation));
            }
        }
    }
    json_reply(
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
        body,
    )
}

async fn home(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers).await {
        Ok(_) => redirect("/console/nodes"),
        Err(_) => redirect("/console/signin"),
    }
}

async fn signin_page() -> Response {
    html(SIGNIN_HTML)
}

async fn app_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    match signed_in(&state, &headers).await {
        Ok(_) => html(APP_HTML),
        Err(_) => redirect(&format!("/console/signin?next={}", uri.path())),
    }
}

/// The terminal page: `{{ASSETS}}` becomes the xterm.js tags (or nothing, in a build without
/// them) and `{{ASSETS_STATE}}` `present` or `missing`, which the page's script reads.
fn terminal_html(present: bool, tag: &str) -> String {
    let tags = if present {
        let base = format!("/console/assets/vendor/{tag}");
        format!(
            "<link rel=\"stylesheet\" href=\"{base}/xterm.css\">\n\
             <script src=\"{base}/xterm.js\" defer></script>\n\
             <script src=\"{base}/addon-fit.js\" defer></script>"
        )
    } else {
        String::new()
    };
    TERMINAL_HTML
        .replace("{{ASSETS}}", &tags)
        .replace(
            "{{ASSETS_STATE}}",
            if present { "present" } else { "missing" },
        )
        .replace("{{VERSIONS}}", if present { vendor::VERSIONS } else { "" })
}

static TERMINAL_PAGE: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| terminal_html(vendor::PRESENT, vendor::TAG));

async fn terminal_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    if signed_in(&state, &headers).await.is_err() {
        return redirect(&format!("/console/signin?next={}", uri.path()));
    }
    let mut resp = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        TERMINAL_PAGE.as_str(),
    )
        .into_response();
    secure_headers(&mut resp);
    resp.headers_mut().insert(
        "content-security-policy",
        HeaderValue::from_static(TERMINAL_CSP),
    );
    resp
}

/// `/console/assets/vendor/{tag}/{file}`: the embedded npm files. The tag is a hash of them,
/// so a URL's content never changes and browsers may keep it for a year.
async fn vendor_asset(Path((tag, file)): Path<(String, String)>) -> Response {
    let found = match file.as_str() {
        "xterm.js" => Some(("text/javascript", vendor::XTERM_JS)),
        "addon-fit.js" => Some(("text/javascript", vendor::FIT_JS)),
        "xterm.css" => Some(("text/css", vendor::XTERM_CSS)),
        "licenses.txt" => Some(("text/plain; charset=utf-8", vendor::LICENSES)),
        _ => None,
    };
    match found {
        Some((content_type, body)) if vendor::PRESENT && tag == vendor::TAG => {
            let mut resp = asset(content_type, body);
            resp.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            );
            resp
        }
        _ => {
            let mut resp = (StatusCode::NOT_FOUND, "no such asset in this build\n").into_response();
            secure_headers(&mut resp);
            resp
        }
    }
}

async fn sign_in(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(refused) = same_origin(&state, &headers) {
        return refused.into_response();
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let body: Option<Value> = if is_json {
        serde_json::from_slice(&body).ok()
    } else {
        None
    };
    let Some(body) = body else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "Sign in with a JSON body from the sign-in page.",
        );
    };
    let field = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or_default();
    let attempt = match field("method") {
        "password" => SignIn::Password {
            user: field("user"),
            password: field("password"),
        },
        "key" => SignIn::AccessKey {
            id: field("accessKeyId"),
            secret: field("secretAccessKey"),
        },
        _ => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                "`method` must be `password` or `key`.",
            )
        }
    };
    let (result, audited) = state
        .service
        .console_sign_in(attempt, &peer.ip().to_string())
        .await;
    if let Err(e) = audited {
        tracing::error!(error = %e, "could not write the ConsoleLogin audit event");
    }
    match result {
        Ok(NewSession { id, expires, .. }) => {
            let max_age = expires - portcullis_core::service::now();
            let mut resp = json_reply(StatusCode::OK, json!({"signedIn": true}));
            set_cookie(&mut resp, &id, max_age, state.tls);
            resp
        }
        Err(e) => {
            if e.is_internal() {
                tracing::error!(error = %e, "console sign-in failed");
            }
            refuse(
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::UNAUTHORIZED),
                &e.code,
                &e.message,
            )
        }
    }
}

async fn sign_out(SignedInWithCsrf(r): SignedInWithCsrf, headers: HeaderMap) -> Response {
    if let Some(id) = session_cookie(&headers) {
        r.state.service.console_sign_out(id);
    }
    let mut resp = json_reply(StatusCode::OK, json!({"signedIn": false}));
    set_cookie(&mut resp, "", 0, r.state.tls);
    resp
}

async fn me(SignedIn(r): SignedIn) -> Response {
    let identity = &r.user.identity;
    json_reply(
        StatusCode::OK,
        json!({
            "arn": identity.principal.arn(),
            "name": identity.session_name(),
            "account": r.state.service.account().id,
            "signedInWith": match &r.user.login {
                Login::Password { .. } => "password",
                Login::AccessKey { .. } => "access key",
            },
            "expires": r.user.expires,
            "csrfToken": r.user.csrf,
            "seesExplanations": r.state.service.may_see_explanations(&r.caller()),
        }),
    )
}

async fn nodes(SignedIn(r): SignedIn) -> Result<Response, Fail> {
    let svc = &r.state.service;
    let caller = r.caller();
    let infos = r
        .done(
            &caller,
            "DescribeInstanceInformation",
            svc.describe_instance_information(&caller).await,
        )
        .await?;
    // Tags come from the calls AWS's console makes: EC2 DescribeTags for instances,
    // SSM ListTagsForResource for managed instances. A refused one leaves tags unknown.
    let mut tag_errors: Vec<Value> = Vec::new();
    let tag_caller = r.caller();
    let ec2_tags = svc.describe_tags(&tag_caller).await;
    audit(
        &r.state,
        &tag_caller,
        "DescribeTags",
        ec2_tags.as_ref().err(),
    )
    .await;
    let ec2_tags = match ec2_tags {
        Ok(tags) => Some(tags),
        Err(e) => {
            tag_errors
                .push(json!({"operation": "DescribeTags", "code": e.code, "message": e.message}));
            None
        }
    };
    let mut out = Vec::with_capacity(infos.len());
    for info in &infos {
        let n = &info.node;
        let tags = match n.kind {
            NodeKind::Ec2Instance => ec2_tags.as_ref().map(|all| {
                let mine: Vec<_> = all
                    .iter()
                    .filter(|(id, _)| *id == n.id)
                    .map(|(_, t)| t.clone())
                    .collect();
                crate::ssm_api::tag_list(&mine)
            }),
            NodeKind::ManagedInstance => {
                let c = r.caller();
                let listed = svc
                    .list_tags_for_resource(&c, "ManagedInstance", &n.id)
                    .await;
                audit(&r.state, &c, "ListTagsForResource", listed.as_ref().err()).await;
                match listed {
                    Ok(tags) => Some(crate::ssm_api::tag_list(&tags)),
                    Err(e) => {
                        tag_errors.push(json!({"operation": "ListTagsForResource", "code": e.code, "message": e.message}));
                        None
                    }
                }
            }
        };
        out.push(json!({
            "InstanceId": n.id,
            "Name": n.name,
            "PlatformName": n.platform,
            "PlatformType": "Linux",
            "PingStatus": if info.online { "Online" } else { "ConnectionLost" },
            "LastPingDateTime": n.last_ping,
            "AgentVersion": n.agent_version,
            "IPAddress": n.ip_address,
            "Tags": tags,
        }));
    }
    Ok(json_reply(
        StatusCode::OK,
        json!({"nodes": out, "tagErrors": tag_errors}),
    ))
}

fn session_json(s: &Session) -> Value {
    json!({
        "SessionId": s.id,
        "Owner": s.owner,
        "Target": s.target,
        "Status": s.status.as_str(),
        "StartDate": s.started,
        "EndDate": s.ended,
        "Reason": s.reason,
        "DocumentName": s.document,
    })
}

async fn sessions(SignedIn(r): SignedIn, RawQuery(query): RawQuery) -> Result<Response, Fail> {
    let wanted = query
        .as_deref()
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("state="));
    let active = match wanted {
        None | Some("Active") => true,
        Some("History") => false,
        Some(_) => {
            return Ok(refuse(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                "`state` must be Active or History.",
            ))
        }
    };
    let caller = r.caller();
    let filter = SessionFilter {
        active,
        ..SessionFilter::default()
    };
    let list = r
        .done(
            &caller,
            "DescribeSessions",
            r.state.service.describe_sessions(&caller, &filter).await,
        )
        .await?;
    Ok(json_reply(
        StatusCode::OK,
        json!({"sessions": list.iter().map(session_json).collect::<Vec<_>>()}),
    ))
}

/// A signed-in request: its user and a fresh `Caller` for each operation.
pub(crate) struct Req {
    pub(crate) state: Arc<AppState>,
    pub(crate) user: ConsoleUser,
    pub(crate) peer: SocketAddr,
}

impl Req {
    pub(crate) fn caller(&self) -> Caller {
        caller_for(&self.state, &self.user, self.peer)
    }

    /// Runs nothing; says whether `action` on `resource` would be allowed (a hint for which
    /// controls to show; the operation itself decides).
    pub(crate) fn may(&self, action: &str, resource: &str) -> bool {
        let probe = self.caller();
        self.state
            .service
            .authorize(&probe, action, resource, &[], &[])
            .is_ok()
    }

    /// Runs one operation's result through the audit log; a failure becomes AWS's reply.
    pub(crate) async fn done<T>(
        &self,
        caller: &Caller,
        operation: &str,
        result: Result<T, Error>,
    ) -> Result<T, Fail> {
        audit(&self.state, caller, operation, result.as_ref().err()).await;
        result.map_err(|e| operation_error(&self.state, caller, operation, &e).into())
    }
}

/// A signed-in console API request, as an extractor: the session cookie is checked before
/// the handler runs. For reads; anything that changes state takes [`SignedInWithCsrf`].
pub(crate) struct SignedIn(pub(crate) Req);

/// A signed-in console API request that may change state: the session cookie, and the
/// session's CSRF token from this origin.
pub(crate) struct SignedInWithCsrf(pub(crate) Req);

async fn signed_request(
    parts: &axum::http::request::Parts,
    state: &Arc<AppState>,
    csrf: bool,
) -> Result<Req, Fail> {
    let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>().copied() else {
        return Err(Refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            "The server could not tell where the request came from.",
        )
        .into_response()
        .into());
    };
    let user = signed_in(state, &parts.headers).await?;
    if csrf {
        check_csrf(state, &parts.headers, &user).map_err(IntoResponse::into_response)?;
    }
    Ok(Req {
        state: state.clone(),
        user,
        peer,
    })
}

impl axum::extract::FromRequestParts<Arc<AppState>> for SignedIn {
    type Rejection = Fail;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Arc<AppState>,
    ) -> Result<SignedIn, Fail> {
        signed_request(parts, state, false).await.map(SignedIn)
    }
}

impl axum::extract::FromRequestParts<Arc<AppState>> for SignedInWithCsrf {
    type Rejection = Fail;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Arc<AppState>,
    ) -> Result<SignedInWithCsrf, Fail> {
        signed_request(parts, state, true)
            .await
            .map(SignedInWithCsrf)
    }
}

/// A handler's failure: AWS's reply, boxed (a `Response` is large to move around in a
/// `Result`).
pub(crate) struct Fail(Box<Response>);

impl From<Response> for Fail {
    fn from(response: Response) -> Fail {
        Fail(Box::new(response))
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        *self.0
    }
}

async fn terminate(
    SignedInWithCsrf(r): SignedInWithCsrf,
    Path(id): Path<String>,
) -> Result<Response, Fail> {
    let c = r.caller();
    let session = r
        .done(
            &c,
            "TerminateSession",
            r.state.service.terminate_session(&c, &id).await,
        )
        .await?;
    r.state.hub.terminate_session(&session.target, &session.id);
    Ok(json_reply(StatusCode::OK, json!({"SessionId": session.id})))
}

/// How much of a session's log the console shows at once (its start).
const CONSOLE_LOG_BYTES: usize = 4 * 1024 * 1024;

/// `GET /console/api/sessions/{id}/log[?token=...]`: what the session's terminal showed,
/// read page by page with CloudWatch Logs' `GetLogEvents` as the signed-in principal (so
/// the IAM policy on the log stream decides), up to [`CONSOLE_LOG_BYTES`]; from the start,
/// or from a `NextToken` an earlier reply gave (how the page follows a live session).
/// `Active` says whether more may come.
async fn session_log(
    SignedIn(r): SignedIn,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, Fail> {
    let c = r.caller();
    let mut token: Option<String> = query.as_deref().and_then(|q| {
        q.split('&')
            .find_map(|pair| pair.strip_prefix("token="))
            .map(|t| {
                percent_encoding::percent_decode_str(t)
                    .decode_utf8_lossy()
                    .into_owned()
            })
    });
    let mut output = String::new();
    let complete = loop {
        let mut request = json!({
            "logGroupName": crate::logs_api::LOG_GROUP,
            "logStreamName": id,
            "startFromHead": true,
        });
        if let (Some(t), Some(obj)) = (&token, request.as_object_mut()) {
            obj.insert("nextToken".into(), json!(t));
        }
        let page = crate::logs_api::handle(
            &r.state.service,
            &c,
            "GetLogEvents",
            &request,
            r.state.session_logs.as_ref(),
        );
        let page = r.done(&c, "GetLogEvents", page).await?;
        let events = page
            .get("events")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for event in &events {
            output.push_str(
                event
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            );
        }
        let next = page
            .get("nextForwardToken")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let done = events.is_empty() || next.is_none() || next == token;
        if next.is_some() {
            token = next;
        }
        if done {
            break true;
        }
        if output.len() >= CONSOLE_LOG_BYTES {
            break false;
        }
    };
    // Allowed to read the log, so allowed to know whether it is still being written.
    let active = r
        .state
        .service
        .session_is_active(&id)
        .await
        .unwrap_or(false);
    Ok(json_reply(
        StatusCode::OK,
        json!({"SessionId": id, "Output": output, "Complete": complete, "NextToken": token, "Active": active}),
    ))
}

/// The reply to a started or resumed session: what `StartSession` returns on the AWS API,
/// with the stream URL for the host the browser used.
fn stream_reply(state: &Arc<AppState>, headers: &HeaderMap, grant: &StreamGrant) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let at = crate::ssm_api::Endpoint { host, state };
    json_reply(StatusCode::OK, crate::ssm_api::stream(grant, &at))
}

/// `POST /console/api/sessions` with `{"Target": "<node id>"}`: `StartSession` as the
/// signed-in principal. The reply carries the one-time stream token for the terminal page.
async fn start_session(
    SignedInWithCsrf(r): SignedInWithCsrf,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Fail> {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(target) = body.get("Target").and_then(Value::as_str) else {
        return Ok(refuse(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "Send a JSON body with the node id in `Target`.",
        ));
    };
    let c = r.caller();
    let grant = r
        .done(
            &c,
            "StartSession",
            r.state.service.start_session(&c, target, None, None).await,
        )
        .await?;
    crate::channels::session_started(
        &r.state,
        target,
        &grant.session_id,
        DEFAULT_SESSION_DOCUMENT,
    );
    Ok(stream_reply(&r.state, &headers, &grant))
}

/// `POST /console/api/sessions/{id}/resume`: `ResumeSession`, a new token for the terminal
/// page after its data channel dropped.
async fn resume_session(
    SignedInWithCsrf(r): SignedInWithCsrf,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Fail> {
    let c = r.caller();
    let grant = r
        .done(
            &c,
            "ResumeSession",
            r.state.service.resume_session(&c, &id).await,
        )
        .await?;
    Ok(stream_reply(&r.state, &headers, &grant))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let h = headers(&[
            ("cookie", "a=1; portcullis_consoleX=no"),
            ("cookie", "b=2;  portcullis_console=abc ; c=3"),
        ]);
        assert_eq!(session_cookie(&h), Some("abc"));
        assert_eq!(session_cookie(&headers(&[("cookie", "a=1")])), None);
        assert_eq!(session_cookie(&HeaderMap::new()), None);
    }

    #[test]
    fn set_cookie_has_the_protective_attributes() {
        for (tls, secure) in [(false, ""), (true, "; Secure")] {
            let mut resp = StatusCode::OK.into_response();
            set_cookie(&mut resp, "id", 60, tls);
            let v = resp.headers().get(header::SET_COOKIE).expect("set");
            assert_eq!(
                v.to_str().expect("text"),
                format!(
                    "portcullis_console=id; Path=/console; HttpOnly; SameSite=Strict; Max-Age=60{secure}"
                )
            );
        }
    }

    #[test]
    fn the_embedded_pages_name_only_embedded_assets() {
        let terminal = terminal_html(true, "0123456789abcdef");
        for page in [SIGNIN_HTML, APP_HTML, terminal.as_str()] {
            for part in page.split("=\"").skip(1) {
                let url = part.split('"').next().unwrap_or_default();
                if url.starts_with('/') {
                    assert!(url.starts_with("/console/"), "{url}");
                }
                assert!(!url.starts_with("http"), "no third-party or CDN URL: {url}");
            }
        }
    }

    #[test]
    fn the_terminal_page_names_its_assets_or_says_they_are_missing() {
        let with = terminal_html(true, "0123456789abcdef");
        assert!(with.contains("/console/assets/vendor/0123456789abcdef/xterm.js"));
        assert!(with.contains("/console/assets/vendor/0123456789abcdef/addon-fit.js"));
        assert!(with.contains("/console/assets/vendor/0123456789abcdef/xterm.css"));
        assert!(with.contains("data-terminal-assets=\"present\""));
        assert!(!with.contains("{{"));
        let without = terminal_html(false, "0123456789abcdef");
        assert!(!without.contains("/console/assets/vendor/"));
        assert!(without.contains("data-terminal-assets=\"missing\""));
        assert!(without.contains("npm ci --prefix web"));
    }
}
