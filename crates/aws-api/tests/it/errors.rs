//! Each error body style, parsed back the way botocore reads it.

use portcullis_aws_api::error::{EC2_XMLNS, IAM_XMLNS, STS_XMLNS};
use portcullis_aws_api::xml::{ec2_response, query_response};
use portcullis_aws_api::{AuthError, AwsError, Protocol};

/// A message with every character XML must escape, and some that it cannot carry.
const NASTY: &str = "User: arn:aws:iam::123456789012:user/<a&b> \"q\" 'r' \u{1}\r\nend";

fn child<'a>(node: roxmltree::Node<'a, 'a>, name: &str) -> roxmltree::Node<'a, 'a> {
    node.children()
        .find(|c| c.has_tag_name(name))
        .unwrap_or_else(|| panic!("no <{name}> in <{}>", node.tag_name().name()))
}

fn text<'a>(node: roxmltree::Node<'a, 'a>, name: &str) -> &'a str {
    child(node, name).text().unwrap_or("")
}

#[test]
fn json_body_has_type_and_message() {
    let e = AwsError::access_denied(Protocol::Json, NASTY);
    let r = e.render(Protocol::Json, "req-1");
    assert_eq!(r.status, 400);
    assert_eq!(r.content_type, "application/x-amz-json-1.1");
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["__type"], "AccessDeniedException");
    assert_eq!(body["message"], NASTY);
    assert!(r
        .headers
        .contains(&("x-amzn-RequestId", "req-1".to_owned())));
    assert!(r
        .headers
        .contains(&("x-amzn-ErrorType", "AccessDeniedException".to_owned())));
}

#[test]
fn query_body_is_error_response() {
    for (protocol, ns) in [(Protocol::IAM, IAM_XMLNS), (Protocol::STS, STS_XMLNS)] {
        let e = AwsError::access_denied(protocol, NASTY);
        let r = e.render(protocol, "req-2");
        assert_eq!((r.status, r.content_type), (403, "text/xml"));
        let xml = String::from_utf8(r.body).unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "ErrorResponse");
        assert_eq!(root.tag_name().namespace(), Some(ns));
        let error = child(root, "Error");
        assert_eq!(text(error, "Type"), "Sender");
        assert_eq!(text(error, "Code"), "AccessDenied");
        // The one character XML cannot carry is replaced; everything else survives.
        assert_eq!(text(error, "Message"), NASTY.replace('\u{1}', "\u{fffd}"));
        assert_eq!(text(root, "RequestId"), "req-2");
    }
}

#[test]
fn query_receiver_fault() {
    let r = AwsError::internal(Protocol::IAM).render(Protocol::IAM, "r");
    let xml = String::from_utf8(r.body).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    assert_eq!(text(child(doc.root_element(), "Error"), "Type"), "Receiver");
    assert_eq!(r.status, 500);
}

#[test]
fn ec2_body_is_response_errors_error() {
    let e = AwsError::not_found(400, "InvalidInstanceID.NotFound", NASTY);
    let r = e.render(Protocol::Ec2, "req-3");
    assert_eq!(r.status, 400);
    let xml = String::from_utf8(r.body).unwrap();
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response>"));
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "Response");
    let error = child(child(root, "Errors"), "Error");
    assert_eq!(text(error, "Code"), "InvalidInstanceID.NotFound");
    assert_eq!(text(error, "Message"), NASTY.replace('\u{1}', "\u{fffd}"));
    assert_eq!(text(root, "RequestID"), "req-3");
}

#[test]
fn auth_errors_render_per_family() {
    let cases: [(AuthError, Protocol, u16, &str, &str); 10] = [
        (
            AuthError::Missing,
            Protocol::Json,
            400,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ),
        (
            AuthError::Missing,
            Protocol::IAM,
            403,
            "MissingAuthenticationToken",
            "Request is missing Authentication Token",
        ),
        (
            AuthError::UnknownAccessKey,
            Protocol::Json,
            400,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ),
        (
            AuthError::UnknownAccessKey,
            Protocol::STS,
            403,
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        ),
        (
            AuthError::UnknownAccessKey,
            Protocol::Ec2,
            401,
            "AuthFailure",
            "AWS was not able to validate the provided access credentials",
        ),
        (
            AuthError::ContentSha256Mismatch,
            Protocol::Json,
            400,
            "InvalidSignatureException",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        ),
        (
            AuthError::PresignedExpired,
            Protocol::IAM,
            400,
            "RequestExpired",
            "Request has expired.",
        ),
        (
            AuthError::Incomplete("x".into()),
            Protocol::Ec2,
            400,
            "IncompleteSignature",
            "x",
        ),
        (
            AuthError::Incomplete("x".into()),
            Protocol::Json,
            400,
            "IncompleteSignatureException",
            "x",
        ),
        (
            AuthError::Expired {
                request_time: "20261130T000000Z".into(),
                earliest: "20261130T000500Z".into(),
                now: "20261130T001000Z".into(),
            },
            Protocol::Ec2,
            400,
            "RequestExpired",
            "Request has expired.",
        ),
    ];
    for (err, protocol, status, code, message) in cases {
        let aws = err.to_aws_error(protocol);
        assert_eq!(
            (aws.status, aws.code.as_str(), aws.message.as_str()),
            (status, code, message),
            "{err:?} {protocol:?}"
        );
        assert_eq!(err.code(protocol), code);
        assert_eq!(err.status(protocol), status);
        // Every rendering parses.
        let r = aws.render(protocol, "rid");
        match protocol {
            Protocol::Json => {
                serde_json::from_slice::<serde_json::Value>(&r.body).unwrap();
            }
            _ => {
                roxmltree::Document::parse(std::str::from_utf8(&r.body).unwrap()).unwrap();
            }
        }
    }
}

#[test]
fn signature_mismatch_query_message_carries_canonical_strings() {
    let err = AuthError::SignatureMismatch {
        canonical_request: "POST\n/\n\nhost:h\n\nhost\nabc".into(),
        string_to_sign: "AWS4-HMAC-SHA256\n...".into(),
    };
    let iam = err.to_aws_error(Protocol::IAM);
    assert_eq!(iam.code, "SignatureDoesNotMatch");
    assert!(iam.message.starts_with(
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. Consult the service \
         documentation for details.\n\nThe Canonical String for this request should have been\n'POST\n/"
    ));
    let json = err.to_aws_error(Protocol::Json);
    assert_eq!(json.code, "InvalidSignatureException");
    assert_eq!(json.message, err.message());
}

#[test]
fn query_response_shape() {
    let xml = query_response("CreateUser", IAM_XMLNS, "rid-9", |w| {
        w.start("User")
            .element("UserName", "<bob & co>")
            .element("Arn", "arn:aws:iam::123456789012:user/bob")
            .end();
    });
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "CreateUserResponse");
    assert_eq!(root.tag_name().namespace(), Some(IAM_XMLNS));
    let user = child(child(root, "CreateUserResult"), "User");
    assert_eq!(text(user, "UserName"), "<bob & co>");
    assert_eq!(text(child(root, "ResponseMetadata"), "RequestId"), "rid-9");
}

#[test]
fn ec2_response_shape() {
    let xml = ec2_response("CreateTags", "rid-7", |w| {
        w.element("return", "true");
    });
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "CreateTagsResponse");
    assert_eq!(root.tag_name().namespace(), Some(EC2_XMLNS));
    assert_eq!(text(root, "requestId"), "rid-7");
    assert_eq!(text(root, "return"), "true");
}
