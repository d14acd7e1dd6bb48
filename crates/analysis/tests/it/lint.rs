//! Every lint rule: a policy that triggers it and one that does not; the seed's policies.

use portcullis_analysis::{lint, lint_together, Document, Finding, Severity, RULES};
use portcullis_iam::Policy;

fn doc(statements: &str) -> String {
    format!(r#"{{"Version": "2012-10-17", "Statement": [{statements}]}}"#)
}

fn findings(text: &str) -> Vec<Finding> {
    let policy = Policy::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    lint(&Document {
        name: "p.json",
        text,
        policy: &policy,
    })
}

fn codes(text: &str) -> Vec<&'static str> {
    findings(text).iter().map(|f| f.code).collect()
}

fn fires(code: &str, text: &str) -> Finding {
    let all = findings(text);
    all.iter()
        .find(|f| f.code == code)
        .cloned()
        .unwrap_or_else(|| panic!("{code} did not fire on {text}; got {all:#?}"))
}

fn quiet(code: &str, text: &str) {
    let all = findings(text);
    assert!(
        all.iter().all(|f| f.code != code),
        "{code} fired on {text}: {all:#?}"
    );
}

const INSTANCES: &str = "arn:aws:ec2:ap-northeast-1:123456789012:instance/*";

fn start(resource: &str, condition: &str) -> String {
    let condition = if condition.is_empty() {
        String::new()
    } else {
        format!(r#", "Condition": {condition}"#)
    };
    format!(
        r#"{{"Effect": "Allow", "Action": "ssm:StartSession", "Resource": {resource}{condition}}}"#
    )
}

fn seed(name: &str) -> String {
    let path = format!("{}/../../examples/seed/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn codes_are_stable_and_unique() {
    let codes: Vec<&str> = RULES.iter().map(|r| r.code).collect();
    let expected: Vec<String> = (1..=RULES.len()).map(|i| format!("PC{i:03}")).collect();
    assert_eq!(codes, expected);
}

#[test]
fn pc001_username_in_session_arn() {
    let text = seed("pattern-1-arn.json");
    let f = fires("PC001", &text);
    assert_eq!(f.pointer, "/Statement/1/Resource/0");
    assert_eq!((f.line, f.column), (20, 17));
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.fix.contains("ssm:resourceTag/aws:ssmmessages:session-id"));
    // The session-id tag holds the user id, never the name.
    let wrong_tag = doc(
        r#"{"Effect": "Allow", "Action": "ssm:TerminateSession", "Resource": "arn:aws:ssm:*:*:session/*",
            "Condition": {"StringEquals": {"ssm:resourceTag/aws:ssmmessages:session-id": "${aws:username}"}}}"#,
    );
    let f = fires("PC001", &wrong_tag);
    assert!(f.message.contains("user id"), "{}", f.message);
    let right = doc(
        r#"{"Effect": "Allow", "Action": ["ssm:TerminateSession", "ssm:ResumeSession"], "Resource": "arn:aws:ssm:*:*:session/*",
            "Condition": {"StringEquals": {"ssm:resourceTag/aws:ssmmessages:session-id": "${aws:userid}"}}}"#,
    );
    assert_eq!(codes(&right), Vec::<&str>::new());
    // In 2008-10-17 `${...}` is text, not a variable: another problem (the validator warns).
    quiet(
        "PC001",
        r#"{"Version": "2008-10-17", "Statement": {"Effect": "Allow", "Action": "ssm:TerminateSession", "Resource": "arn:aws:ssm:*:*:session/${aws:username}-*"}}"#,
    );
}

#[test]
fn pc002_self_tagging() {
    let abac = start(
        &format!("\"{INSTANCES}\""),
        r#"{"StringEquals": {"aws:ResourceTag/Project": "${aws:PrincipalTag/Project}"}}"#,
    );
    let tagging = r#"{"Effect": "Allow", "Action": ["ec2:CreateTags"], "Resource": "arn:aws:ec2:*:*:instance/*"}"#;
    let f = fires("PC002", &doc(&format!("{abac}, {tagging}")));
    assert_eq!(f.pointer, "/Statement/1/Action");
    assert!(f.message.contains("\"Project\""), "{}", f.message);
    // ssm:AddTagsToResource on managed instances, via a wildcard action.
    let ssm_tagging = r#"{"Effect": "Allow", "Action": "ssm:Add*", "Resource": "*"}"#;
    fires("PC002", &doc(&format!("{abac}, {ssm_tagging}")));
    // Across documents: the principal's policies together.
    let (a, b) = (doc(&abac), doc(tagging));
    let (pa, pb) = (Policy::parse(&a).unwrap(), Policy::parse(&b).unwrap());
    let together = lint_together(&[
        Document {
            name: "abac.json",
            text: &a,
            policy: &pa,
        },
        Document {
            name: "tagging.json",
            text: &b,
            policy: &pb,
        },
    ]);
    let f = together.iter().find(|f| f.code == "PC002").expect("PC002");
    assert_eq!(f.document, "tagging.json");
    assert!(f.message.contains("abac.json"));
    // Not when tag keys are limited, a Deny guards them, or the tags are not on nodes.
    let limited = r#"{"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "*",
        "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["Name"]}}}"#;
    quiet("PC002", &doc(&format!("{abac}, {limited}")));
    let guard = r#"{"Effect": "Deny", "Action": "ec2:CreateTags", "Resource": "*",
        "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["Project"]}}}"#;
    quiet("PC002", &doc(&format!("{abac}, {tagging}, {guard}")));
    let volumes = r#"{"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "arn:aws:ec2:*:*:volume/*"}"#;
    quiet("PC002", &doc(&format!("{abac}, {volumes}")));
    quiet(
        "PC002",
        &doc(&format!(
            "{}, {tagging}",
            start(&format!("\"{INSTANCES}\""), "")
        )),
    );
}

#[test]
fn pc003_tag_condition_with_documents() {
    let mixed = start(
        &format!(
            r#"["{INSTANCES}", "arn:aws:ssm:ap-northeast-1::document/SSM-SessionManagerRunShell"]"#
        ),
        r#"{"StringEquals": {"ssm:resourceTag/Project": "test"}}"#,
    );
    let f = fires("PC003", &doc(&mixed));
    assert_eq!(
        f.pointer,
        "/Statement/0/Condition/StringEquals/ssm:resourceTag~1Project"
    );
    let split = format!(
        "{}, {}",
        start(
            &format!("\"{INSTANCES}\""),
            r#"{"StringEquals": {"ssm:resourceTag/Project": "test"}}"#
        ),
        start(
            r#""arn:aws:ssm:ap-northeast-1::document/SSM-SessionManagerRunShell""#,
            ""
        )
    );
    assert_eq!(codes(&doc(&split)), Vec::<&str>::new());
}

#[test]
fn pc004_foreign_service_tag_key() {
    let f = fires(
        "PC004",
        &doc(&start(
            &format!("\"{INSTANCES}\""),
            r#"{"StringEquals": {"ec2:ResourceTag/Project": "test"}}"#,
        )),
    );
    assert!(f.message.contains("never holds"), "{}", f.message);
    assert!(f.fix.contains("aws:ResourceTag/Project"));
    quiet(
        "PC004",
        &doc(&start(
            &format!("\"{INSTANCES}\""),
            r#"{"StringEquals": {"ssm:resourceTag/Project": "test"}}"#,
        )),
    );
}

#[test]
fn pc005_no_document_access_check() {
    let any_document = start(
        &format!(r#"["{INSTANCES}", "arn:aws:ssm:*:*:document/*"]"#),
        "",
    );
    let f = fires("PC005", &doc(&any_document));
    assert_eq!(f.pointer, "/Statement/0/Resource/1");
    let checked = start(
        &format!(r#"["{INSTANCES}", "arn:aws:ssm:*:*:document/*"]"#),
        r#"{"BoolIfExists": {"ssm:SessionDocumentAccessCheck": "true"}}"#,
    );
    quiet("PC005", &doc(&checked));
    let named = start(
        &format!(r#"["{INSTANCES}", "arn:aws:ssm:*::document/AWS-StartPortForwardingSession"]"#),
        "",
    );
    quiet("PC005", &doc(&named));
}

#[test]
fn pc006_for_all_values_on_single_valued_key() {
    let f = fires(
        "PC006",
        &doc(&start(
            &format!("\"{INSTANCES}\""),
            r#"{"ForAllValues:StringEquals": {"aws:ResourceTag/Project": ["a", "b"]}}"#,
        )),
    );
    assert!(f.fix.contains("`StringEquals`"), "{}", f.fix);
    quiet(
        "PC006",
        &doc(&start(
            &format!("\"{INSTANCES}\""),
            r#"{"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}"#,
        )),
    );
}

#[test]
fn pc007_unknown_action() {
    let f = fires(
        "PC007",
        &doc(r#"{"Effect": "Allow", "Action": ["ssm:StartSesion"], "Resource": "*"}"#),
    );
    assert_eq!(f.pointer, "/Statement/0/Action/0");
    assert_eq!(f.fix, "did you mean `ssm:StartSession`?");
    fires(
        "PC007",
        &doc(r#"{"Effect": "Allow", "Action": "ec2:Nothing*", "Resource": "*"}"#),
    );
    // Session logs are read through CloudWatch Logs' actions.
    let f = fires(
        "PC007",
        &doc(r#"{"Effect": "Allow", "Action": "logs:GetLogEvent", "Resource": "*"}"#),
    );
    assert_eq!(f.fix, "did you mean `logs:GetLogEvents`?");
    quiet(
        "PC007",
        &doc(
            r#"{"Effect": "Allow", "Action": ["ssm:Start*", "ec2:CreateTags", "iam:GetUser", "sts:GetCallerIdentity", "logs:GetLogEvents", "s3:Whatever"], "Resource": "arn:aws:s3:::b"}"#,
        ),
    );
}

#[test]
fn pc008_unknown_condition_key() {
    let f = fires(
        "PC008",
        &doc(&start(
            &format!("\"{INSTANCES}\""),
            r#"{"StringEquals": {"aws:ResourceTag/Project": "${aws:PrincipleTag/Project}"}}"#,
        )),
    );
    assert_eq!(f.fix, "did you mean `aws:PrincipalTag/Project`?");
    fires(
        "PC008",
        &doc(&start(
            &format!("\"{INSTANCES}\""),
            r#"{"Bool": {"ssm:SessionDocumentCheck": "true"}}"#,
        )),
    );
    quiet(
        "PC008",
        &doc(&start(
            &format!("\"{INSTANCES}\""),
            r#"{"StringEquals": {"aws:ResourceTag/Project": "${aws:PrincipalTag/Project}", "s3:prefix": "x"},
               "BoolIfExists": {"ssm:SessionDocumentAccessCheck": "true"}}"#,
        )),
    );
}

#[test]
fn pc009_variable_in_null_key() {
    let f = fires(
        "PC009",
        &doc(&start(
            &format!("\"{INSTANCES}\""),
            r#"{"Null": {"aws:ResourceTag/${aws:PrincipalTag/Key}": "false"}}"#,
        )),
    );
    assert!(f.message.starts_with("`Null` checks a key literally named"));
    quiet(
        "PC009",
        &doc(&start(
            &format!("\"{INSTANCES}\""),
            r#"{"Null": {"aws:ResourceTag/Project": "false"}}"#,
        )),
    );
}

#[test]
fn pc010_wildcard_resource_on_session_actions() {
    let f = fires("PC010", &doc(&start(r#""*""#, "")));
    assert!(f.message.contains("every node"), "{}", f.message);
    let f = fires(
        "PC010",
        &doc(r#"{"Effect": "Allow", "Action": ["ssm:ResumeSession"], "Resource": ["*"]}"#),
    );
    assert_eq!(f.pointer, "/Statement/0/Resource/0");
    quiet("PC010", &doc(&start(&format!("\"{INSTANCES}\""), "")));
    quiet(
        "PC010",
        &doc(r#"{"Effect": "Allow", "Action": "ssm:DescribeSessions", "Resource": "*"}"#),
    );
}

#[test]
fn pc011_unguarded_variable() {
    let negated = r#"{"StringNotEquals": {"aws:ResourceTag/Env": "${aws:PrincipalTag/Env}"}}"#;
    fires("PC011", &doc(&start(&format!("\"{INSTANCES}\""), negated)));
    let guarded = r#"{"StringNotEquals": {"aws:ResourceTag/Env": "${aws:PrincipalTag/Env}"},
                      "Null": {"aws:PrincipalTag/Env": "false"}}"#;
    quiet("PC011", &doc(&start(&format!("\"{INSTANCES}\""), guarded)));
    let defaulted =
        r#"{"StringNotEquals": {"aws:ResourceTag/Env": "${aws:PrincipalTag/Env, 'none'}"}}"#;
    quiet(
        "PC011",
        &doc(&start(&format!("\"{INSTANCES}\""), defaulted)),
    );
    fires(
        "PC011",
        &doc(
            r#"{"Effect": "Allow", "Action": "ssm:StartSession", "NotResource": "arn:aws:ec2:*:*:instance/${aws:PrincipalTag/Forbidden}"}"#,
        ),
    );
}

#[test]
fn pc012_allow_not_action() {
    let f = fires(
        "PC012",
        &doc(r#"{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}"#),
    );
    assert!(f.message.contains("ssm:StartSession among them"));
    quiet(
        "PC012",
        &doc(r#"{"Effect": "Deny", "NotAction": "iam:*", "Resource": "*"}"#),
    );
}

#[test]
fn pc013_redundant_statement() {
    let broad =
        r#"{"Effect": "Allow", "Action": "ssm:*", "Resource": "arn:aws:ec2:*:*:instance/*"}"#;
    let narrow = start(
        &format!("\"{INSTANCES}\""),
        r#"{"StringEquals": {"aws:ResourceTag/Project": "a"}}"#,
    );
    let f = fires("PC013", &doc(&format!("{broad}, {narrow}")));
    assert_eq!(f.pointer, "/Statement/1");
    assert_eq!(f.severity, Severity::Info);
    // A duplicate: the later one is reported.
    let f = fires("PC013", &doc(&format!("{narrow}, {narrow}")));
    assert_eq!(f.pointer, "/Statement/1");
    // Different conditions do not cover each other.
    let other = start(
        &format!("\"{INSTANCES}\""),
        r#"{"StringEquals": {"aws:ResourceTag/Project": "b"}}"#,
    );
    quiet("PC013", &doc(&format!("{narrow}, {other}")));
}

#[test]
fn pc014_shadowed_by_deny() {
    let allow = start(&format!("\"{INSTANCES}\""), "");
    let deny = r#"{"Effect": "Deny", "Action": "ssm:*", "Resource": "*"}"#;
    let f = fires("PC014", &doc(&format!("{allow}, {deny}")));
    assert_eq!(f.pointer, "/Statement/0");
    let conditional = r#"{"Effect": "Deny", "Action": "ssm:*", "Resource": "*",
        "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}}}"#;
    quiet("PC014", &doc(&format!("{allow}, {conditional}")));
}

/// The README's policy section lists what fires on the seed's policies; this keeps it true.
#[test]
fn seed_policies() {
    for name in [
        "pattern-1-arn.json",
        "pattern-2-fixed-tag.json",
        "pattern-3-abac.json",
    ] {
        let text = seed(name);
        let found = findings(&text);
        let summary: Vec<(&str, &str)> =
            found.iter().map(|f| (f.code, f.pointer.as_str())).collect();
        assert_eq!(
            summary,
            vec![("PC001", "/Statement/1/Resource/0")],
            "{name}"
        );
    }
}

#[test]
fn findings_display_with_position() {
    let text = seed("pattern-3-abac.json");
    let f = fires("PC001", &text);
    let shown = f.to_string();
    assert!(
        shown.starts_with(
            "warning PC001 username-in-session: `arn:aws:ssm:*:*:session/${aws:username}-*`"
        ),
        "{shown}"
    );
    assert!(shown.contains("(at /Statement/1/Resource/0, line 25, column 17); fix: "));
}
