//! Requests signed by the AWS Rust SDK's own signer (`aws-sigv4`), verified by ours: both
//! forms, JSON and Query bodies, paths and queries that need encoding, and every refusal.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SignatureLocation as SdkLocation,
    SigningSettings,
};
use aws_sigv4::sign::v4;
use portcullis_aws_api::sigv4::{self, SignatureLocation};
use portcullis_aws_api::{AuthError, Protocol, RequestParts, SigningKeyCache};

const AKID: &str = "AKIAPORTCULLISTEST01";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SSM_HOST: &str = "ssm.us-east-1.amazonaws.com";

/// 2026-11-30T00:00:00Z.
fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_996_800)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A request as the server would receive it, owned so tests can tamper with it.
#[derive(Debug, Clone)]
struct Wire {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Wire {
    fn with<R>(&self, f: impl FnOnce(&RequestParts<'_>) -> R) -> R {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        f(&RequestParts {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &headers,
            body: &self.body,
        })
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap()
    }

    fn set_header(&mut self, name: &str, value: &str) {
        self.remove_header(name);
        self.headers.push((name.to_owned(), value.to_owned()));
    }

    fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// Replaces one raw `name=value` query pair.
    fn set_query_param(&mut self, name: &str, raw_value: &str) {
        let pairs: Vec<String> = self
            .query
            .split('&')
            .map(|p| {
                if p.split('=').next() == Some(name) {
                    format!("{name}={raw_value}")
                } else {
                    p.to_owned()
                }
            })
            .collect();
        self.query = pairs.join("&");
    }

    fn parse(&self) -> Result<sigv4::SignedRequest, AuthError> {
        self.with(sigv4::parse)
    }

    /// parse + verify with `secret` at `now`.
    fn check(&self, secret: &str, now: SystemTime) -> Result<(), AuthError> {
        let keys = SigningKeyCache::default();
        self.with(|req| {
            let signed = sigv4::parse(req)?;
            sigv4::verify(&signed, req, secret, now, &keys)
        })
    }
}

/// How the SDK signer is set up for one request.
#[derive(Clone)]
struct Signer {
    token: Option<String>,
    region: &'static str,
    service: &'static str,
    time: SystemTime,
    presign: Option<Duration>,
    content_sha256_header: bool,
    unsigned_payload: bool,
}

impl Signer {
    fn new(service: &'static str) -> Self {
        Signer {
            token: None,
            region: "us-east-1",
            service,
            time: t0(),
            presign: None,
            content_sha256_header: false,
            unsigned_payload: false,
        }
    }

    /// Signs with `aws-sigv4` and applies the result to an `http::Request`, exactly as the
    /// AWS Rust SDK does, then hands back what went on the wire.
    fn sign(&self, method: &str, uri: &str, headers: &[(&str, &str)], body: &[u8]) -> Wire {
        let identity = Credentials::new(AKID, SECRET, self.token.clone(), None, "test").into();
        let mut settings = SigningSettings::default();
        if let Some(expires) = self.presign {
            settings.signature_location = SdkLocation::QueryParams;
            settings.expires_in = Some(expires);
        }
        if self.content_sha256_header {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(self.region)
            .name(self.service)
            .time(self.time)
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let signable_body = if self.unsigned_payload {
            SignableBody::UnsignedPayload
        } else {
            SignableBody::Bytes(body)
        };
        let signable =
            SignableRequest::new(method, uri, headers.iter().copied(), signable_body).unwrap();
        let (instructions, _signature) = sign(signable, &params).unwrap().into_parts();

        let mut builder = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let mut request = builder.body(()).unwrap();
        instructions.apply_to_request_http1x(&mut request);
        Wire {
            method: method.to_owned(),
            path: request.uri().path().to_owned(),
            query: request.uri().query().unwrap_or("").to_owned(),
            headers: request
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
                .collect(),
            body: body.to_vec(),
        }
    }
}

const START_SESSION: &[u8] = br#"{"Target":"i-0885b2e35926f1fb3","Reason":"debug"}"#;

fn ssm_start_session(signer: &Signer) -> Wire {
    signer.sign(
        "POST",
        &format!("https://{SSM_HOST}/"),
        &[
            ("host", SSM_HOST),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "AmazonSSM.StartSession"),
        ],
        START_SESSION,
    )
}

const CREATE_USER: &[u8] = b"Action=CreateUser&Version=2010-05-08&UserName=TestUserA\
    &Tags.member.1.Key=Project&Tags.member.1.Value=test%20%2F%20%E3%83%86%E3%82%B9%E3%83%88";

fn iam_create_user(signer: &Signer) -> Wire {
    signer.sign(
        "POST",
        "https://iam.amazonaws.com/",
        &[
            ("host", "iam.amazonaws.com"),
            (
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
        ],
        CREATE_USER,
    )
}

fn expect_incomplete(result: Result<impl std::fmt::Debug, AuthError>, needle: &str) {
    match result {
        Err(AuthError::Incomplete(message)) => {
            assert!(message.contains(needle), "{message:?} lacks {needle:?}")
        }
        other => panic!("expected Incomplete({needle:?}), got {other:?}"),
    }
}

fn expect_mismatch(result: Result<(), AuthError>) {
    match result {
        Err(AuthError::SignatureMismatch { .. }) => {}
        other => panic!("expected SignatureMismatch, got {other:?}"),
    }
}

// ---- accepted ----------------------------------------------------------------------------

#[test]
fn header_form_json_ssm() {
    let wire = ssm_start_session(&Signer::new("ssm"));
    let signed = wire.parse().unwrap();
    assert_eq!(signed.location(), SignatureLocation::Header);
    assert_eq!(signed.access_key_id(), AKID);
    assert_eq!(signed.scope().date(), "20261130");
    assert_eq!(signed.scope().region(), "us-east-1");
    assert_eq!(signed.scope().service(), "ssm");
    assert_eq!(signed.request_time(), "20261130T000000Z");
    assert_eq!(signed.timestamp(), t0());
    assert!(signed.signed_headers().contains(&"host".to_owned()));
    assert!(signed.signed_headers().contains(&"x-amz-target".to_owned()));
    assert_eq!(signed.session_token(), None);
    assert_eq!(signed.presign_expires_secs(), None);
    wire.check(SECRET, t0() + secs(1)).unwrap();
}

#[test]
fn header_form_query_iam() {
    let wire = iam_create_user(&Signer::new("iam"));
    assert_eq!(wire.parse().unwrap().scope().service(), "iam");
    wire.check(SECRET, t0()).unwrap();
}

#[test]
fn header_form_sts_get_request() {
    let wire = Signer::new("sts").sign(
        "GET",
        "https://sts.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15",
        &[("host", "sts.amazonaws.com")],
        b"",
    );
    wire.check(SECRET, t0()).unwrap();
}

#[test]
fn session_token_is_read_and_signed() {
    let mut signer = Signer::new("ssm");
    signer.token = Some("FQoGZXIvYXdzEXAMPLETOKEN//+=".to_owned());
    let mut wire = ssm_start_session(&signer);
    let signed = wire.parse().unwrap();
    assert_eq!(signed.session_token(), Some("FQoGZXIvYXdzEXAMPLETOKEN//+="));
    assert!(signed
        .signed_headers()
        .contains(&"x-amz-security-token".to_owned()));
    assert!(
        !format!("{signed:?}").contains("EXAMPLETOKEN"),
        "Debug redacts the token"
    );
    wire.check(SECRET, t0()).unwrap();
    wire.set_header("x-amz-security-token", "another-token");
    expect_mismatch(wire.check(SECRET, t0()));
}

#[test]
fn content_sha256_header_is_checked() {
    let mut signer = Signer::new("ssm");
    signer.content_sha256_header = true;
    let mut wire = ssm_start_session(&signer);
    assert!(wire
        .parse()
        .unwrap()
        .signed_headers()
        .contains(&"x-amz-content-sha256".to_owned()));
    wire.check(SECRET, t0()).unwrap();
    wire.body = br#"{"Target":"i-00000000000000000","Reason":"debug"}"#.to_vec();
    assert_eq!(
        wire.check(SECRET, t0()),
        Err(AuthError::ContentSha256Mismatch)
    );
}

#[test]
fn unsigned_payload_is_accepted_as_signed() {
    let mut signer = Signer::new("ssm");
    signer.unsigned_payload = true;
    signer.content_sha256_header = true;
    let wire = ssm_start_session(&signer);
    assert_eq!(wire.header("x-amz-content-sha256"), "UNSIGNED-PAYLOAD");
    wire.check(SECRET, t0()).unwrap();
}

#[test]
fn paths_and_queries_needing_encoding() {
    let signer = Signer::new("ssm");
    for uri in [
        "https://h.example/a%20b/c~d/%E1%88%B4/x%2Fy",
        "https://h.example/a/./b/../c//d/",
        "https://h.example/?q=a%20b&z=%2F&u=%E3%83%A6&t=~&empty=&sp=a+b&b=2&b=1&B=0",
        "https://h.example/%7Euser?%E1%88%B4=bar&key%20with%20space=v",
        "https://h.example:8443/path?x=%25",
    ] {
        let wire = signer.sign("GET", uri, &[("host", "h.example")], b"");
        wire.check(SECRET, t0())
            .unwrap_or_else(|e| panic!("{uri}: {e:?}"));
    }
}

#[test]
fn repeated_headers_are_joined() {
    let wire = Signer::new("ssm").sign(
        "POST",
        &format!("https://{SSM_HOST}/"),
        &[
            ("host", SSM_HOST),
            ("x-amz-target", "AmazonSSM.StartSession"),
            ("x-custom", "first"),
            ("x-custom", "  second   value "),
        ],
        START_SESSION,
    );
    assert_eq!(
        wire.headers.iter().filter(|(n, _)| n == "x-custom").count(),
        2
    );
    wire.check(SECRET, t0()).unwrap();
}

#[test]
fn unsigned_extra_header_is_ignored() {
    let mut wire = ssm_start_session(&Signer::new("ssm"));
    wire.set_header("user-agent", "aws-cli/2.0 added-by-proxy");
    wire.set_header("x-forwarded-for", "127.0.0.1");
    wire.check(SECRET, t0()).unwrap();
}

#[test]
fn presigned_get() {
    let mut signer = Signer::new("sts");
    signer.presign = Some(secs(900));
    signer.token = Some("session-token".to_owned());
    let wire = signer.sign(
        "GET",
        "https://sts.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15",
        &[("host", "sts.amazonaws.com")],
        b"",
    );
    assert!(wire.query.contains("X-Amz-Signature="));
    assert!(wire.headers.iter().all(|(n, _)| n != "authorization"));
    let signed = wire.parse().unwrap();
    assert_eq!(signed.location(), SignatureLocation::Query);
    assert_eq!(signed.presign_expires_secs(), Some(900));
    assert_eq!(signed.session_token(), Some("session-token"));
    assert_eq!(signed.scope().service(), "sts");
    wire.check(SECRET, t0()).unwrap();
    wire.check(SECRET, t0() + secs(900)).unwrap();
    assert_eq!(
        wire.check(SECRET, t0() + secs(901)),
        Err(AuthError::PresignedExpired)
    );
    expect_mismatch(wire.check("wrong", t0()));
}

#[test]
fn presigned_longest_expiry() {
    let mut signer = Signer::new("ssm");
    signer.presign = Some(secs(604_800));
    let wire = signer.sign(
        "GET",
        "https://h.example/ws?a=1",
        &[("host", "h.example")],
        b"",
    );
    wire.check(SECRET, t0() + secs(604_800)).unwrap();
    assert_eq!(
        wire.check(SECRET, t0() + secs(604_801)),
        Err(AuthError::PresignedExpired)
    );
}

#[test]
fn presigned_post_with_body() {
    let mut signer = Signer::new("iam");
    signer.presign = Some(secs(60));
    let mut wire = iam_create_user(&signer);
    wire.check(SECRET, t0()).unwrap();
    wire.body = CREATE_USER.to_vec();
    wire.body.extend_from_slice(b"&Path=%2Fadmins%2F");
    expect_mismatch(wire.check(SECRET, t0()));
}

#[test]
fn signing_keys_are_cached_per_scope() {
    let keys = SigningKeyCache::default();
    for service in ["ssm", "ssm", "iam"] {
        let wire = ssm_start_session(&Signer::new(service));
        wire.with(|req| {
            let signed = sigv4::parse(req).unwrap();
            sigv4::verify(&signed, req, SECRET, t0(), &keys).unwrap();
        });
    }
    assert_eq!(keys.len(), 2);
}

// ---- refused -----------------------------------------------------------------------------

#[test]
fn wrong_secret() {
    let wire = ssm_start_session(&Signer::new("ssm"));
    let err = wire
        .check("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ", t0())
        .unwrap_err();
    assert_eq!(err.code(Protocol::Json), "InvalidSignatureException");
    assert_eq!(err.code(Protocol::IAM), "SignatureDoesNotMatch");
    assert_eq!(err.code(Protocol::Ec2), "AuthFailure");
    assert_eq!(
        err.message(),
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. Consult the service \
         documentation for details."
    );
}

#[test]
fn unknown_access_key() {
    // The caller looks the key up between parse and verify; an unknown one is refused so.
    let wire = ssm_start_session(&Signer::new("ssm"));
    let signed = wire.parse().unwrap();
    assert_eq!(signed.access_key_id(), AKID);
    let err = AuthError::UnknownAccessKey;
    assert_eq!(err.code(Protocol::Json), "UnrecognizedClientException");
    assert_eq!(err.code(Protocol::IAM), "InvalidClientTokenId");
    assert_eq!(
        err.message(),
        "The security token included in the request is invalid."
    );
}

#[test]
fn clock_skew_both_directions() {
    let wire = ssm_start_session(&Signer::new("ssm"));
    wire.check(SECRET, t0() + secs(300)).unwrap();
    wire.check(SECRET, t0() - secs(300)).unwrap();

    let late = wire.check(SECRET, t0() + secs(600)).unwrap_err();
    assert_eq!(
        late.message(),
        "Signature expired: 20261130T000000Z is now earlier than 20261130T000500Z \
         (20261130T001000Z - 5 min.)"
    );
    assert_eq!(late.code(Protocol::Json), "InvalidSignatureException");
    assert_eq!(late.code(Protocol::STS), "SignatureDoesNotMatch");
    assert_eq!(late.code(Protocol::Ec2), "RequestExpired");
    assert!(matches!(
        wire.check(SECRET, t0() + secs(301)),
        Err(AuthError::Expired { .. })
    ));

    let early = wire.check(SECRET, t0() - secs(301)).unwrap_err();
    assert_eq!(
        early.message(),
        "Signature not yet current: 20261130T000000Z is still later than 20261129T235959Z \
         (20261129T235459Z + 5 min.)"
    );
}

#[test]
fn presigned_from_the_future() {
    let mut signer = Signer::new("ssm");
    signer.presign = Some(secs(900));
    let wire = signer.sign("GET", "https://h.example/", &[("host", "h.example")], b"");
    assert!(matches!(
        wire.check(SECRET, t0() - secs(301)),
        Err(AuthError::NotYetCurrent { .. })
    ));
}

#[test]
fn tampered_body() {
    let mut wire = ssm_start_session(&Signer::new("ssm"));
    wire.body = br#"{"Target":"i-00000000000000000","Reason":"debug"}"#.to_vec();
    expect_mismatch(wire.check(SECRET, t0()));

    let mut wire = iam_create_user(&Signer::new("iam"));
    wire.body = wire
        .body
        .iter()
        .map(|&b| if b == b'A' { b'B' } else { b })
        .collect();
    expect_mismatch(wire.check(SECRET, t0()));
}

#[test]
fn tampered_signed_header_path_query_method() {
    let base = Signer::new("ssm").sign(
        "POST",
        &format!("https://{SSM_HOST}/p?a=1"),
        &[
            ("host", SSM_HOST),
            ("x-amz-target", "AmazonSSM.StartSession"),
        ],
        START_SESSION,
    );
    base.check(SECRET, t0()).unwrap();

    let mut wire = base.clone();
    wire.set_header("x-amz-target", "AmazonSSM.TerminateSession");
    expect_mismatch(wire.check(SECRET, t0()));

    let mut wire = base.clone();
    wire.set_header("host", "evil.example");
    expect_mismatch(wire.check(SECRET, t0()));

    let mut wire = base.clone();
    wire.path = "/q".to_owned();
    expect_mismatch(wire.check(SECRET, t0()));

    let mut wire = base.clone();
    wire.query = "a=2".to_owned();
    expect_mismatch(wire.check(SECRET, t0()));

    let mut wire = base.clone();
    wire.method = "PUT".to_owned();
    expect_mismatch(wire.check(SECRET, t0()));

    let mut wire = base;
    let auth = wire.header("authorization").to_owned();
    let sig_at = auth.find("Signature=").unwrap() + "Signature=".len();
    let mut forged = auth.clone();
    let flipped = if auth.as_bytes()[sig_at] == b'0' {
        "1"
    } else {
        "0"
    };
    forged.replace_range(sig_at..sig_at + 1, flipped);
    wire.set_header("authorization", &forged);
    expect_mismatch(wire.check(SECRET, t0()));
}

#[test]
fn missing_signed_header() {
    let mut wire = ssm_start_session(&Signer::new("ssm"));
    wire.remove_header("x-amz-target");
    expect_mismatch(wire.check(SECRET, t0()));
}

#[test]
fn host_must_be_signed() {
    let mut wire = ssm_start_session(&Signer::new("ssm"));
    let auth = wire.header("authorization").replace("host;", "");
    assert!(!auth.contains("host"));
    wire.set_header("authorization", &auth);
    expect_incomplete(
        wire.parse(),
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
    );

    let mut signer = Signer::new("ssm");
    signer.presign = Some(secs(60));
    let mut wire = signer.sign("GET", "https://h.example/", &[("host", "h.example")], b"");
    wire.set_query_param("X-Amz-SignedHeaders", "x-amz-date");
    expect_incomplete(wire.parse(), "'Host' or ':authority'");
}

#[test]
fn scope_date_must_match_request_day() {
    let mut wire = ssm_start_session(&Signer::new("ssm"));
    wire.set_header("x-amz-date", "20261201T000000Z");
    let err = wire.parse().unwrap_err();
    assert_eq!(
        err.message(),
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
         HTTP: '20261130' != '20261201', from '20261201T000000Z'."
    );
    assert_eq!(err.code(Protocol::Json), "InvalidSignatureException");
}

#[test]
fn date_header_stands_in_for_x_amz_date() {
    let mut wire = ssm_start_session(&Signer::new("ssm"));
    wire.remove_header("x-amz-date");
    wire.set_header("date", "Mon, 30 Nov 2026 00:00:00 GMT");
    let signed = wire.parse().unwrap();
    assert_eq!(signed.request_time(), "20261130T000000Z");
    // The SDK signed x-amz-date, which is now gone.
    expect_mismatch(wire.check(SECRET, t0()));
}

#[test]
fn no_auth_at_all() {
    let mut wire = ssm_start_session(&Signer::new("ssm"));
    wire.remove_header("authorization");
    let err = wire.parse().unwrap_err();
    assert_eq!(err, AuthError::Missing);
    assert_eq!(
        err.code(Protocol::Json),
        "MissingAuthenticationTokenException"
    );
    assert_eq!(err.code(Protocol::IAM), "MissingAuthenticationToken");
}

#[test]
fn both_auth_mechanisms() {
    let mut signer = Signer::new("ssm");
    signer.presign = Some(secs(60));
    let mut wire = signer.sign("GET", "https://h.example/", &[("host", "h.example")], b"");
    wire.set_header("authorization", "AWS4-HMAC-SHA256 Credential=x");
    expect_incomplete(wire.parse(), "Only one auth mechanism allowed");
}

#[test]
fn malformed_authorization_headers() {
    let wire = ssm_start_session(&Signer::new("ssm"));
    let auth = wire.header("authorization").to_owned();
    // "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..."
    let (algorithm, rest) = auth.split_once(' ').unwrap();
    let parts: Vec<&str> = rest.split(", ").collect();
    assert_eq!(parts.len(), 3, "{auth}");
    let without = |prefix: &str| {
        let kept: Vec<&str> = parts
            .iter()
            .copied()
            .filter(|p| !p.starts_with(prefix))
            .collect();
        format!("{algorithm} {}", kept.join(", "))
    };
    let run = |value: &str| {
        let mut w = wire.clone();
        w.set_header("authorization", value);
        w.parse()
    };

    let v = without("Credential=");
    expect_incomplete(
        run(&v),
        "Authorization header requires 'Credential' parameter.",
    );
    expect_incomplete(run(&v), &format!("Authorization={v}"));
    expect_incomplete(
        run(&without("Signature=")),
        "Authorization header requires 'Signature' parameter.",
    );
    expect_incomplete(
        run(&without("SignedHeaders=")),
        "Authorization header requires 'SignedHeaders' parameter.",
    );
    let empty_signature = format!("{} Signature=", without("Signature="));
    expect_incomplete(
        run(&empty_signature.replace(" Signature=", ", Signature=")),
        "Authorization header requires 'Signature' parameter.",
    );

    let mut no_date = wire.clone();
    no_date.remove_header("x-amz-date");
    expect_incomplete(
        no_date.parse(),
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
    );

    let mut bad_date = wire.clone();
    bad_date.set_header("x-amz-date", "2026-11-30T00:00:00Z");
    expect_incomplete(bad_date.parse(), "Date must be in ISO-8601 'basic format'");

    // Everything missing at once: AWS lists each requirement, then echoes the header.
    let err = run("Bearer abc.def").unwrap_err();
    assert_eq!(
        err.message(),
        "Authorization header requires 'Credential' parameter. Authorization header requires \
         'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. \
         Authorization=Bearer abc.def"
    );
    assert_eq!(err.code(Protocol::Json), "IncompleteSignatureException");
    assert_eq!(err.code(Protocol::IAM), "IncompleteSignature");

    let space_in_credential = auth.replacen(&format!("{AKID}/"), &format!("{AKID} /"), 1);
    expect_incomplete(
        run(&space_in_credential),
        "not a valid key=value pair (missing equal-sign) in Authorization header",
    );
    expect_incomplete(
        run(&auth.replacen("/ssm/", "/", 1)),
        "Credential must have exactly 5 slash-delimited elements, e.g. \
         keyid/date/region/service/term, got 'AKIAPORTCULLISTEST01/20261130/us-east-1/aws4_request'",
    );
    expect_incomplete(
        run(&auth.replacen("/aws4_request", "/aws5_request", 1)),
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'.",
    );
    expect_incomplete(
        run(&auth.replacen("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", 1)),
        "Unsupported AWS 'algorithm': 'AWS4-ECDSA-P256-SHA256'",
    );
    expect_incomplete(run(&format!("{auth}, Signature=00")), "more than once");

    let mut two = wire.clone();
    two.headers.push(("authorization".to_owned(), auth.clone()));
    expect_incomplete(two.parse(), "Only one Authorization header");
}

#[test]
fn malformed_presigned_queries() {
    let mut signer = Signer::new("ssm");
    signer.presign = Some(secs(60));
    let wire = signer.sign(
        "GET",
        "https://h.example/?a=1",
        &[("host", "h.example")],
        b"",
    );
    let run = |name: &str, raw: &str| {
        let mut w = wire.clone();
        w.set_query_param(name, raw);
        w.parse()
    };
    expect_incomplete(run("X-Amz-Expires", "0"), "greater than zero");
    expect_incomplete(run("X-Amz-Expires", "604801"), "less than a week");
    expect_incomplete(
        run("X-Amz-Expires", "99999999999999999999999"),
        "less than a week",
    );
    expect_incomplete(run("X-Amz-Expires", "abc"), "should be a number");
    expect_incomplete(run("X-Amz-Expires", "-5"), "should be a number");
    expect_incomplete(run("X-Amz-Algorithm", "AWS4-HMAC-SHA512"), "only supports");
    expect_incomplete(run("X-Amz-Date", "yesterday"), "ISO-8601 'basic format'");
    expect_incomplete(
        run("X-Amz-Credential", "AKID%2F20261130"),
        "exactly 5 slash-delimited",
    );
    for name in [
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
    ] {
        let mut w = wire.clone();
        w.query = w
            .query
            .split('&')
            .filter(|p| !p.starts_with(&format!("{name}=")))
            .collect::<Vec<_>>()
            .join("&");
        expect_incomplete(
            w.parse(),
            &format!("AWS query-string parameters must include '{name}'."),
        );
    }
    let mut dup = wire.clone();
    dup.query.push_str("&X-Amz-Date=20261130T000000Z");
    expect_incomplete(dup.parse(), "more than once");
}
