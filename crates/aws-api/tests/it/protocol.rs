//! Protocol detection: JSON 1.1 by `X-Amz-Target`, Query by form text.

use portcullis_aws_api::{detect, Operation, RequestParts};

fn req<'a>(
    method: &'a str,
    query: &'a str,
    headers: &'a [(&'a str, &'a str)],
    body: &'a [u8],
) -> RequestParts<'a> {
    RequestParts {
        method,
        path: "/",
        query,
        headers,
        body,
    }
}

const JSON_HEADERS: &[(&str, &str)] = &[
    ("Host", "localhost"),
    ("X-Amz-Target", "AmazonSSM.StartSession"),
    ("Content-Type", "application/x-amz-json-1.1"),
];

const FORM_HEADERS: &[(&str, &str)] = &[
    ("Host", "localhost"),
    (
        "Content-Type",
        "application/x-www-form-urlencoded; charset=utf-8",
    ),
];

#[test]
fn json_operation() {
    let op = detect(&req(
        "POST",
        "",
        JSON_HEADERS,
        br#"{"Target": "i-1", "Reason": "x"}"#,
    ))
    .unwrap();
    let Operation::Json {
        service_target,
        operation,
        body,
    } = op
    else {
        panic!("{op:?}")
    };
    assert_eq!(service_target, "AmazonSSM");
    assert_eq!(operation, "StartSession");
    assert_eq!(body["Target"], "i-1");
}

#[test]
fn json_empty_body_is_empty_object() {
    for body in [&b""[..], b"  \n"] {
        let op = detect(&req("POST", "", JSON_HEADERS, body)).unwrap();
        let Operation::Json { body, .. } = op else {
            panic!()
        };
        assert_eq!(body, serde_json::json!({}));
    }
}

#[test]
fn json_refusals() {
    for (body, needle) in [
        (&b"{\"Target\": "[..], "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"\"x\"", "must be a JSON object"),
        (b"\xff\xfe", "not valid JSON"),
    ] {
        let err = detect(&req("POST", "", JSON_HEADERS, body)).unwrap_err();
        assert_eq!(err.code, "SerializationException");
        assert_eq!(err.status, 400);
        assert!(err.message.contains(needle), "{}", err.message);
    }
    for target in ["AmazonSSM", "AmazonSSM.", ".StartSession"] {
        let headers = [("X-Amz-Target", target)];
        let err = detect(&req("POST", "", &headers, b"{}")).unwrap_err();
        assert_eq!(err.code, "UnknownOperationException", "{target}");
    }
    let headers = [("Content-Type", "application/x-amz-json-1.1")];
    let err = detect(&req("POST", "", &headers, b"{}")).unwrap_err();
    assert_eq!(err.code, "UnknownOperationException");
    assert!(err.message.contains("X-Amz-Target"));
}

#[test]
fn query_post_body() {
    let body = b"Action=CreateUser&Version=2010-05-08&UserName=TestUserA\
                 &Tags.member.1.Key=Project&Tags.member.1.Value=test%20%26%20prod\
                 &Path=%2Fdevs%2F";
    let op = detect(&req("POST", "", FORM_HEADERS, body)).unwrap();
    let Operation::Query {
        action,
        version,
        params,
    } = op
    else {
        panic!("{op:?}")
    };
    assert_eq!(action, "CreateUser");
    assert_eq!(version.as_deref(), Some("2010-05-08"));
    assert_eq!(params.required("UserName").unwrap(), "TestUserA");
    assert_eq!(params.get("Path"), Some("/devs/"));
    assert_eq!(params.get("Action"), None, "Action is taken out of params");
    let tags = params.structs("Tags.member");
    assert_eq!(tags[0].get("Value"), Some("test & prod"));
}

#[test]
fn query_get_and_presign_params() {
    let query = "Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-1&InstanceId.2=i-2\
                 &X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc";
    let op = detect(&req("GET", query, &[("Host", "localhost")], b"")).unwrap();
    let Operation::Query { action, params, .. } = op else {
        panic!()
    };
    assert_eq!(action, "DescribeInstances");
    assert_eq!(params.list("InstanceId"), ["i-1", "i-2"]);
    assert_eq!(params.get("X-Amz-Signature"), None);
    assert_eq!(params.len(), 2);
}

#[test]
fn query_plus_is_space() {
    let op = detect(&req("POST", "", FORM_HEADERS, b"Action=X&Description=a+b")).unwrap();
    let Operation::Query { params, .. } = op else {
        panic!()
    };
    assert_eq!(params.get("Description"), Some("a b"));
}

#[test]
fn query_refusals() {
    let cases: [(&str, &[u8], &str, &str); 6] = [
        (
            "",
            b"Action=X&UserName=%zz",
            "MalformedQueryString",
            "bad percent-encoding `%zz`",
        ),
        (
            "",
            b"Action=X&UserName=%4",
            "MalformedQueryString",
            "bad percent-encoding `%4`",
        ),
        (
            "",
            b"Action=X&UserName=%FF%FE",
            "MalformedQueryString",
            "not UTF-8",
        ),
        (
            "",
            b"Action=X&UserName=\xff",
            "MalformedQueryString",
            "not UTF-8",
        ),
        (
            "Action=Y",
            b"Action=X",
            "MalformedQueryString",
            "`Action` is given more than once",
        ),
        (
            "",
            b"Version=2010-05-08&UserName=x",
            "MissingAction",
            "Action",
        ),
    ];
    for (query, body, code, needle) in cases {
        let err = detect(&req("POST", query, FORM_HEADERS, body)).unwrap_err();
        assert_eq!(err.code, code, "{}", String::from_utf8_lossy(body));
        assert!(err.message.contains(needle), "{}", err.message);
    }
    let err = detect(&req("GET", "Action=X&a=%", &[], b"")).unwrap_err();
    assert!(err.message.contains("the query string"), "{}", err.message);
    let headers = [("Content-Type", "text/plain")];
    let err = detect(&req("POST", "", &headers, b"Action=X")).unwrap_err();
    assert!(err.message.contains("text/plain"), "{}", err.message);
}
