//! AWS's published SigV4 test vectors: our verifier accepts each signed request, and on a
//! wrong secret reports exactly the vector's canonical request.

use std::time::{Duration, SystemTime};

use portcullis_aws_api::sigv4::{self, SignatureLocation};
use portcullis_aws_api::{AuthError, RequestParts, SigningKeyCache};

use crate::suite_data::{SECRET, VECTORS};

/// 2015-08-30T12:36:00Z, the time every vector was signed at.
fn signed_at() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160)
}

struct HttpText {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Reads a request as the suite writes it: `METHOD target HTTP/1.1`, `Name:value` lines, a
/// blank line, the body. The target may hold a space (`/example space/`).
fn parse_http(text: &str) -> HttpText {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let request_line = lines.next().unwrap();
    let (method, rest) = request_line.split_once(' ').unwrap();
    let (target, _version) = rest.rsplit_once(' ').unwrap();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.to_owned(), v.to_owned())
        })
        .collect();
    HttpText {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: body.as_bytes().to_vec(),
    }
}

#[test]
fn every_vector_verifies_and_matches_the_canonical_request() {
    let keys = SigningKeyCache::default();
    for v in VECTORS {
        let http = parse_http(v.signed_request);
        let headers: Vec<(&str, &str)> = http
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let req = RequestParts {
            method: &http.method,
            path: &http.path,
            query: &http.query,
            headers: &headers,
            body: &http.body,
        };
        let signed = sigv4::parse(&req).unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(signed.access_key_id(), "AKIDEXAMPLE", "{}", v.name);
        assert_eq!(
            signed.scope().to_string(),
            "20150830/us-east-1/service/aws4_request"
        );
        assert_eq!(signed.session_token(), v.session_token, "{}", v.name);
        let location = if v.presigned {
            SignatureLocation::Query
        } else {
            SignatureLocation::Header
        };
        assert_eq!(signed.location(), location, "{}", v.name);

        let now = signed_at() + Duration::from_secs(30);
        sigv4::verify(&signed, &req, SECRET, now, &keys)
            .unwrap_or_else(|e| panic!("{}: {e:?}", v.name));

        match sigv4::verify(&signed, &req, "not-the-secret", now, &keys) {
            Err(AuthError::SignatureMismatch {
                canonical_request, ..
            }) => assert_eq!(canonical_request, v.canonical_request, "{}", v.name),
            other => panic!("{}: {other:?}", v.name),
        }
    }
}

#[test]
fn vectors_cover_both_forms() {
    assert!(VECTORS.iter().filter(|v| v.presigned).count() >= 4);
    assert!(VECTORS.iter().filter(|v| !v.presigned).count() >= 10);
}
