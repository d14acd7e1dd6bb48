//! Policy tests as code: the expectation format.

use portcullis_analysis::expect::{is_expectations, Expectations};

fn example() -> (String, std::path::PathBuf) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/expectations");
    (std::fs::read_to_string(dir.join("seed.json")).unwrap(), dir)
}

fn parse(text: &str, dir: &std::path::Path) -> Result<Expectations, String> {
    Expectations::parse(text, |p| {
        std::fs::read_to_string(dir.join(p)).map_err(|e| e.to_string())
    })
}

#[test]
fn the_example_passes() {
    let (text, dir) = example();
    assert!(is_expectations(&text));
    let e = parse(&text, &dir).unwrap();
    let outcomes = e.run();
    assert_eq!(outcomes.len(), 12);
    for o in &outcomes {
        assert!(o.passed(), "{}: {:?}\n{}", o.case, o.failure, o.explanation);
    }
    // A conformance suite is not an expectation file.
    assert!(!is_expectations(
        r#"{"suite": "x", "policies": {}, "cases": []}"#
    ));
}

#[test]
fn failures_name_the_deciding_statement() {
    let (text, dir) = example();
    let text = text
        .replace(
            r#"{"principal": "TestUserA", "target": "prod-box", "decision": "implicit_deny"}"#,
            r#"{"principal": "TestUserA", "target": "prod-box", "decision": "allow"}"#,
        )
        .replace(
            r#""decision": "allow", "by": "pattern-3 /Statement/0"}"#,
            r#""decision": "allow", "by": "pattern-3 /Statement/1"}"#,
        )
        .replace(
            r#""decision": "explicit_deny", "by": "no-prod NoProd"}"#,
            r#""decision": "implicit_deny"}"#,
        );
    let outcomes = parse(&text, &dir).unwrap().run();
    let failures: Vec<(String, String)> = outcomes
        .iter()
        .filter_map(|o| o.failure.clone().map(|f| (o.case.clone(), f)))
        .collect();
    assert_eq!(
        failures,
        vec![
            (
                "#1 TestUserA ssm:StartSession test-box".to_owned(),
                "expected allow by `pattern-3 /Statement/1`, but it was decided by pattern-3 /Statement/0".to_owned()
            ),
            (
                "#2 TestUserA ssm:StartSession prod-box".to_owned(),
                "expected allow, got implicit deny".to_owned()
            ),
            (
                "#4 careful ssm:StartSession test-prod".to_owned(),
                "expected implicit_deny, got explicit deny".to_owned()
            ),
        ]
    );
    // The explanation of a failure names the statement that failed and why.
    let shown = outcomes[1].explanation.to_string();
    assert!(
        shown.contains("policy \"pattern-3\" /Statement/0: condition StringEquals aws:ResourceTag/Project failed"),
        "{shown}"
    );
}

#[test]
fn malformed_files_say_where() {
    let dir = std::path::Path::new(".");
    let base = r#"{"policies": {"p": {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "ssm:*", "Resource": "*"}}},
                   "principals": {"a": {"policies": ["p"]}}, "expect": [EXPECT]}"#;
    let err = |expect: &str| parse(&base.replace("EXPECT", expect), dir).err().unwrap();
    assert_eq!(
        err(r#"{"principal": "b", "target": "i-1", "decision": "allow"}"#),
        "expect[0]: no principal `b`"
    );
    assert_eq!(
        err(r#"{"principal": "a", "target": "i-1", "decision": "yes"}"#),
        "expect[0]: `decision` is allow, deny, implicit_deny or explicit_deny"
    );
    assert_eq!(
        err(r#"{"principal": "a", "decision": "allow"}"#),
        "expect[0]: give `target` or `resource`"
    );
    let missing = parse(
        r#"{"policies": {"p": "nope.json"}, "principals": {}, "expect": []}"#,
        dir,
    )
    .err()
    .unwrap();
    assert!(missing.starts_with("policy p: "), "{missing}");
    let unknown = parse(
        r#"{"policies": {}, "principals": {"a": {"policies": ["q"]}}, "expect": []}"#,
        dir,
    )
    .err()
    .unwrap();
    assert_eq!(unknown, "principal a: no policy `q`");
}
