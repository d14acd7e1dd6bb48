//! Connections: TCP, TLS (rustls with the ring provider), one HTTP/1.1 request, a WebSocket.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::WebSocketStream;
use tokio_util::either::Either;

/// How long a TCP connect plus TLS handshake may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// A connection problem.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The URL does not read, or has a scheme this side of the call does not speak.
    #[error("invalid URL `{url}`: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The trusted CA bundle could not be read.
    #[error("cannot load the CA bundle {path}: {message}")]
    CaBundle {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// Connecting, TLS, HTTP or WebSocket failed.
    #[error("{context}: {message}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        message: String,
    },
}

impl NetError {
    pub(crate) fn io(context: impl Into<String>, e: impl std::fmt::Display) -> NetError {
        NetError::Io {
            context: context.into(),
            message: e.to_string(),
        }
    }
}

/// The TLS client configuration (ring provider): the system's roots, or only the CAs in
/// `ca_bundle` when one is given (as `AWS_CA_BUNDLE` does for the AWS CLI).
pub fn tls_config(ca_bundle: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, NetError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_bundle {
        Some(path) => {
            let err = |message: String| NetError::CaBundle {
                path: path.display().to_string(),
                message,
            };
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| err(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| err(e.to_string()))?;
            if certs.is_empty() {
                return Err(err("no certificates in the file".to_owned()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| err(e.to_string()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // A system certificate that does not parse is skipped, as browsers do.
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| NetError::io("TLS configuration", e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A URL split into what a connection needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Whether to speak TLS.
    pub tls: bool,
    /// The host, without brackets for IPv6.
    pub host: String,
    /// The port (the scheme's default when absent).
    pub port: u16,
    /// `host[:port]` as written, for the `Host` header.
    pub authority: String,
    /// The path and query, at least `/`.
    pub path_and_query: String,
}

impl Target {
    /// Parses `http(s)://` (`web == false`) or `ws(s)://` (`web == true`) URLs.
    pub fn parse(url: &str, websocket: bool) -> Result<Target, NetError> {
        let bad = |reason: &str| NetError::Url {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: http::Uri = url.parse().map_err(|_| bad("not a URL"))?;
        let tls = match (uri.scheme_str(), websocket) {
            (Some("https"), false) | (Some("wss"), true) => true,
            (Some("http"), false) | (Some("ws"), true) => false,
            (_, false) => return Err(bad("the scheme must be http or https")),
            (_, true) => return Err(bad("the scheme must be ws or wss")),
        };
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let path_and_query = uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".to_owned());
        Ok(Target {
            tls,
            host,
            port,
            authority: authority.as_str().to_owned(),
            path_and_query,
        })
    }
}

/// A TCP connection, in the clear (`http`/`ws`) or under TLS (`https`/`wss`).
pub type Stream = Either<TcpStream, Box<TlsStream<TcpStream>>>;

/// Connects to the target, with TLS when it says so.
pub async fn connect(target: &Target, tls: &Arc<rustls::ClientConfig>) -> Result<Stream, NetError> {
    let what = format!("connecting to {}", target.authority);
    let fut = async {
        let tcp = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|e| NetError::io(&what, e))?;
        let _ = tcp.set_nodelay(true);
        if !target.tls {
            return Ok(Either::Left(tcp));
        }
        let name = ServerName::try_from(target.host.clone()).map_err(|e| NetError::io(&what, e))?;
        let tls = TlsConnector::from(tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| NetError::io(&what, e))?;
        Ok(Either::Right(Box::new(tls)))
    };
    tokio::time::timeout(CONNECT_TIMEOUT, fut)
        .await
        .map_err(|_| NetError::io(&what, "timed out"))?
}

/// A response: status and body.
#[derive(Debug, Clone)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Bytes,
}

/// Sends one request on a new connection and reads the whole response.
pub async fn send(
    target: &Target,
    tls: &Arc<rustls::ClientConfig>,
    request: http::Request<Full<Bytes>>,
) -> Result<Response, NetError> {
    let stream = connect(target, tls).await?;
    let what = format!("HTTP request to {}", target.authority);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| NetError::io(&what, e))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| NetError::io(&what, e))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| NetError::io(&what, e))?
            .to_bytes();
        Ok(Response { status, body })
    }
    .await;
    driver.abort();
    result
}

/// A WebSocket client over [`Stream`].
pub type WebSocket = WebSocketStream<Stream>;

/// Opens a WebSocket to `url` (`ws://` or `wss://`).
pub async fn websocket(url: &str, tls: &Arc<rustls::ClientConfig>) -> Result<WebSocket, NetError> {
    let target = Target::parse(url, true)?;
    let stream = connect(&target, tls).await?;
    let what = format!("opening the data channel at {}", target.authority);
    let handshake = tokio_tungstenite::client_async(url, stream);
    let (ws, _response) = tokio::time::timeout(CONNECT_TIMEOUT, handshake)
        .await
        .map_err(|_| NetError::io(&what, "timed out"))?
        .map_err(|e| NetError::io(&what, e))?;
    Ok(ws)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = Target::parse("http://127.0.0.1:8080", false).unwrap();
        assert_eq!((t.tls, t.host.as_str(), t.port), (false, "127.0.0.1", 8080));
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert_eq!(t.path_and_query, "/");
        let t = Target::parse("https://ssm.eu-west-1.amazonaws.com/", false).unwrap();
        assert_eq!((t.tls, t.port), (true, 443));
        let t = Target::parse(
            "wss://[::1]:9/v1/data-channel/s?role=publish_subscribe",
            true,
        )
        .unwrap();
        assert_eq!((t.tls, t.host.as_str(), t.port), (true, "::1", 9));
        assert_eq!(
            t.path_and_query,
            "/v1/data-channel/s?role=publish_subscribe"
        );
        assert!(Target::parse("ftp://x", false).is_err());
        assert!(Target::parse("http://x", true).is_err());
        assert!(Target::parse("not a url", false).is_err());
    }
}
