//! Connections to the server: TCP (plus TLS for `https`/`wss`, rustls with *ring*), the
//! WebSocket upgrade with the node's credential, and one HTTP request for registration.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;
use tokio_util::either::Either;
use url::Url;

/// How long a TCP connect, TLS handshake and WebSocket upgrade may take together.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// A connection to the server failed.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The server URL is not usable.
    #[error("server URL `{url}`: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// TCP connect, name resolution or I/O failed.
    #[error("connecting to {host}: {source}")]
    Io {
        /// `host:port`.
        host: String,
        /// Why.
        source: io::Error,
    },
    /// TLS could not be set up (no trusted roots, bad CA file).
    #[error("TLS: {0}")]
    Tls(String),
    /// The server answered the upgrade with an HTTP error (403: not this node's, 404: no
    /// such session).
    #[error("the server refused with HTTP {status}{}", if .body.is_empty() { String::new() } else { format!(": {}", .body) })]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The response body (truncated), for the log.
        body: String,
    },
    /// The WebSocket or HTTP exchange failed.
    #[error("{0}")]
    Protocol(String),
    /// No answer within [`CONNECT_TIMEOUT`].
    #[error("no answer within {} s", CONNECT_TIMEOUT.as_secs())]
    Timeout,
}

impl DialError {
    /// The HTTP status of a refusal, if the server answered with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            DialError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A TCP connection, in the clear (`http`/`ws`) or under TLS (`https`/`wss`).
pub type Conn = Either<TcpStream, Box<TlsStream<TcpStream>>>;

/// A WebSocket to the server.
pub type WebSocket = WebSocketStream<Conn>;

/// Opens connections to one server: knows its base URL, the TLS roots and (once registered)
/// the node's credential.
#[derive(Clone)]
pub struct Dialer {
    base: Url,
    tls: Option<TlsConnector>,
    authorization: Option<String>,
}

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialer")
            .field("base", &self.base.as_str())
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Dialer {
    /// A dialer for `server` (`http://`, `https://`, `ws://` or `wss://`; a path is kept as
    /// a prefix). `extra_roots_pem` adds trusted CAs to the system's.
    pub fn new(server: &str, extra_roots_pem: Option<&str>) -> Result<Dialer, DialError> {
        let bad = |reason: &str| DialError::Url {
            url: server.to_owned(),
            reason: reason.to_owned(),
        };
        let mut base = Url::parse(server).map_err(|e| bad(&e.to_string()))?;
        let secure = match base.scheme() {
            "http" | "ws" => false,
            "https" | "wss" => true,
            _ => return Err(bad("the scheme must be http or https")),
        };
        if base.host_str().is_none_or(str::is_empty) {
            return Err(bad("no host"));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(bad("no query or fragment, please"));
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(bad("no user name or password in the URL, please"));
        }
        let path = base.path().trim_end_matches('/').to_owned();
        base.set_path(&path);
        let tls = if secure {
            Some(tls_connector(extra_roots_pem)?)
        } else {
            None
        };
        Ok(Dialer {
            base,
            tls,
            authorization: None,
        })
    }

    /// The same dialer, sending `Authorization: Bearer NODE_ID:CREDENTIAL`.
    pub fn with_credential(mut self, node_id: &str, credential: &str) -> Dialer {
        self.authorization = Some(format!("Bearer {node_id}:{credential}"));
        self
    }

    /// The server's base URL, as normalised.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// `base` + the path segments, with the scheme for `ws` (`ws`/`wss`) or for HTTP.
    pub fn url(&self, segments: &[&str], websocket: bool) -> Url {
        let mut url = self.base.clone();
        let scheme = match (self.tls.is_some(), websocket) {
            (false, false) => "http",
            (true, false) => "https",
            (false, true) => "ws",
            (true, true) => "wss",
        };
        // Switching between these special schemes always succeeds.
        let _ = url.set_scheme(scheme);
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// The host and port to connect to.
    fn authority(&self) -> Result<(String, u16), DialError> {
        let host = self.base.host_str().unwrap_or_default();
        // IPv6 literals come bracketed; connect wants them bare.
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = self
            .base
            .port_or_known_default()
            .unwrap_or(if self.tls.is_some() { 443 } else { 80 });
        Ok((host, port))
    }

    /// A TCP (and TLS) connection to the server.
    pub async fn connect(&self) -> Result<Conn, DialError> {
        let (host, port) = self.authority()?;
        let io_err = |source| DialError::Io {
            host: format!("{host}:{port}"),
            source,
        };
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(io_err)?;
        // Keystrokes and echoes are small: do not let Nagle hold them.
        tcp.set_nodelay(true).map_err(io_err)?;
        let Some(tls) = &self.tls else {
            return Ok(Either::Left(tcp));
        };
        let name = ServerName::try_from(host.clone())
            .map_err(|e| DialError::Tls(format!("`{host}` is not a valid server name: {e}")))?;
        let stream = tls.connect(name, tcp).await.map_err(io_err)?;
        Ok(Either::Right(Box::new(stream)))
    }

    /// The local address a connection to the server leaves from (no packet is sent).
    pub async fn local_ip(&self) -> Option<std::net::IpAddr> {
        let (host, port) = self.authority().ok()?;
        let remote = tokio::net::lookup_host((host.as_str(), port))
            .await
            .ok()?
            .next()?;
        let bind: std::net::SocketAddr = if remote.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = tokio::net::UdpSocket::bind(bind).await.ok()?;
        socket.connect(remote).await.ok()?;
        socket.local_addr().ok().map(|a| a.ip())
    }

    /// Opens a WebSocket to `base/segments...`, with the credential if there is one.
    pub async fn websocket(&self, segments: &[&str]) -> Result<WebSocket, DialError> {
        tokio::time::timeout(CONNECT_TIMEOUT, self.websocket_inner(segments))
            .await
            .map_err(|_| DialError::Timeout)?
    }

    async fn websocket_inner(&self, segments: &[&str]) -> Result<WebSocket, DialError> {
        use tokio_tungstenite::tungstenite::Error as WsError;

        let url = self.url(segments, true);
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| DialError::Protocol(e.to_string()))?;
        if let Some(auth) = &self.authorization {
            let value = HeaderValue::from_str(auth)
                .map_err(|_| DialError::Protocol("the credential is not header-safe".into()))?;
            request.headers_mut().insert("authorization", value);
        }
        let conn = self.connect().await?;
        // Reads come in this many bytes at a time (frames may be larger); tungstenite's
        // default, 128 KiB, allocated up front, was most of an idle session's memory.
        let config = WebSocketConfig::default().read_buffer_size(16 * 1024);
        match tokio_tungstenite::client_async_with_config(request, conn, Some(config)).await {
            Ok((ws, _response)) => Ok(ws),
            Err(WsError::Http(response)) => {
                let body = response
                    .body()
                    .as_deref()
                    .map(|b| String::from_utf8_lossy(b).chars().take(200).collect())
                    .unwrap_or_default();
                Err(DialError::Refused {
                    status: response.status().as_u16(),
                    body,
                })
            }
            Err(e) => Err(DialError::Protocol(e.to_string())),
        }
    }

    /// `POST base/segments...` with a JSON body; returns the status and the body.
    pub async fn post_json(
        &self,
        segments: &[&str],
        body: Vec<u8>,
    ) -> Result<(u16, Bytes), DialError> {
        tokio::time::timeout(
            CONNECT_TIMEOUT.saturating_mul(2),
            self.post_inner(segments, body),
        )
        .await
        .map_err(|_| DialError::Timeout)?
    }

    async fn post_inner(
        &self,
        segments: &[&str],
        body: Vec<u8>,
    ) -> Result<(u16, Bytes), DialError> {
        let url = self.url(segments, false);
        let proto = |e: &dyn std::fmt::Display| DialError::Protocol(e.to_string());
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => String::new(),
        };
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let request = http::Request::post(target)
            .header(http::header::HOST, host)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, user_agent())
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| proto(&e))?;
        let conn = self.connect().await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(conn))
                .await
                .map_err(|e| proto(&e))?;
        let driver = tokio::spawn(connection);
        let result = async {
            let response = sender.send_request(request).await.map_err(|e| proto(&e))?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| proto(&e))?
                .to_bytes();
            Ok((status, body))
        }
        .await;
        driver.abort();
        result
    }
}

/// `portcullis-agent/VERSION`.
pub fn user_agent() -> String {
    format!("portcullis-agent/{}", env!("CARGO_PKG_VERSION"))
}

/// rustls with the *ring* provider, the system's roots plus `extra_roots_pem`.
fn tls_connector(extra_roots_pem: Option<&str>) -> Result<TlsConnector, DialError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::debug!(%error, "reading the system's CA certificates");
    }
    let (_added, _ignored) = roots.add_parsable_certificates(native.certs);
    if let Some(pem) = extra_roots_pem {
        let mut any = false;
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| DialError::Tls(format!("the CA certificates: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| DialError::Tls(format!("the CA certificates: {e}")))?;
            any = true;
        }
        if !any {
            return Err(DialError::Tls(
                "the CA certificate file holds no PEM certificate".into(),
            ));
        }
    }
    if roots.is_empty() {
        return Err(DialError::Tls(
            "no trusted CA certificates (install ca-certificates, or pass --ca-cert)".into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DialError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Reads a PEM file of CA certificates and checks it holds at least one.
pub fn read_ca_file(path: &std::path::Path) -> Result<String, DialError> {
    let pem = std::fs::read_to_string(path)
        .map_err(|e| DialError::Tls(format!("`{}`: {e}", path.display())))?;
    let count = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| DialError::Tls(format!("`{}`: {e}", path.display())))?
        .len();
    if count == 0 {
        return Err(DialError::Tls(format!(
            "`{}` holds no PEM certificate",
            path.display()
        )));
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let d = Dialer::new("http://127.0.0.1:8066/", None).unwrap();
        assert_eq!(
            d.url(&["v1", "control"], true).as_str(),
            "ws://127.0.0.1:8066/v1/control"
        );
        assert_eq!(
            d.url(&["v1", "nodes", "register"], false).as_str(),
            "http://127.0.0.1:8066/v1/nodes/register"
        );
        let d = Dialer::new("http://h/prefix/", None).unwrap();
        assert_eq!(
            d.url(&["v1", "agent-data", "a b/c"], true).as_str(),
            "ws://h/prefix/v1/agent-data/a%20b%2Fc"
        );
        assert!(Dialer::new("ftp://h", None).is_err());
        assert!(Dialer::new("http://u:p@h", None).is_err());
        assert!(Dialer::new("nonsense", None).is_err());
    }
}
