//! The seed article's three policies, pasted verbatim (`examples/seed/`), give the article's
//! results for TestUserA, and a refusal names the user, the action and the resource.

use portcullis_iam::{Decision, Policy, PolicyKind, PolicySet, Principal, Request, Tags};

const INSTANCE: &str = "arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0885b2e35926f1fb3";
const OTHER_INSTANCE: &str = "arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0123456789abcdef0";
const OWN_SESSION: &str =
    "arn:aws:ssm:ap-northeast-1:123456789012:session/TestUserA-0a1b2c3d4e5f67890";
const OTHER_SESSION: &str =
    "arn:aws:ssm:ap-northeast-1:123456789012:session/TestUserB-0a1b2c3d4e5f67890";

fn seed(name: &str) -> PolicySet {
    let path =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/seed/").to_owned() + name + ".json";
    let text = std::fs::read_to_string(&path).unwrap();
    // The article attaches them as customer managed policies.
    let policy = Policy::parse_as(&text, PolicyKind::Managed).unwrap();
    let mut set = PolicySet::new();
    set.add_identity(name, &policy);
    set
}

fn user(project: Option<&str>) -> Principal {
    let p = Principal::user(
        "arn:aws:iam::123456789012:user/TestUserA",
        "123456789012",
        "TestUserA",
        "AIDAEXAMPLEUSERID0001",
    );
    match project {
        Some(v) => p.with_tag("Project", v),
        None => p,
    }
}

fn decide(
    set: &PolicySet,
    who: &Principal,
    action: &str,
    resource: &str,
    project_tag: Option<&str>,
) -> Decision {
    let mut tags = Tags::new();
    if let Some(v) = project_tag {
        tags.insert("Project", v);
    }
    let req = Request::new(who, action, resource).with_resource_tags(&tags);
    let decision = set.evaluate(&req);
    assert_eq!(
        set.explain(&req).decision,
        decision,
        "explain and evaluate disagree"
    );
    decision
}

/// What every pattern shares: own sessions can be ended and resumed, others' cannot.
fn check_sessions(set: &PolicySet, who: &Principal) {
    for action in ["ssm:TerminateSession", "ssm:ResumeSession"] {
        assert_eq!(
            decide(set, who, action, OWN_SESSION, None),
            Decision::Allow,
            "{action} own"
        );
        assert_eq!(
            decide(set, who, action, OTHER_SESSION, None),
            Decision::ImplicitDeny,
            "{action} other"
        );
    }
}

#[test]
fn pattern_1_instance_arn() {
    let set = seed("pattern-1-arn");
    let who = user(None);
    assert_eq!(
        decide(&set, &who, "ssm:StartSession", INSTANCE, None),
        Decision::Allow
    );
    assert_eq!(
        decide(&set, &who, "ssm:StartSession", OTHER_INSTANCE, None),
        Decision::ImplicitDeny
    );
    check_sessions(&set, &who);
}

#[test]
fn pattern_2_fixed_tag() {
    let set = seed("pattern-2-fixed-tag");
    let who = user(None);
    assert_eq!(
        decide(&set, &who, "ssm:StartSession", OTHER_INSTANCE, Some("test")),
        Decision::Allow
    );
    assert_eq!(
        decide(&set, &who, "ssm:StartSession", INSTANCE, Some("prod")),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(&set, &who, "ssm:StartSession", INSTANCE, None),
        Decision::ImplicitDeny
    );
    check_sessions(&set, &who);
}

#[test]
fn pattern_3_abac() {
    let set = seed("pattern-3-abac");
    let tagged = user(Some("test"));
    assert_eq!(
        decide(&set, &tagged, "ssm:StartSession", INSTANCE, Some("test")),
        Decision::Allow
    );
    assert_eq!(
        decide(&set, &tagged, "ssm:StartSession", INSTANCE, Some("prod")),
        Decision::ImplicitDeny
    );
    // A user without the tag matches no instance, not even an untagged one.
    let untagged = user(None);
    assert_eq!(
        decide(&set, &untagged, "ssm:StartSession", INSTANCE, Some("test")),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(&set, &untagged, "ssm:StartSession", INSTANCE, None),
        Decision::ImplicitDeny
    );
    check_sessions(&set, &tagged);
}

#[test]
fn refusal_names_user_action_and_resource() {
    let set = seed("pattern-3-abac");
    let who = user(Some("test"));
    let mut tags = Tags::new();
    tags.insert("Project", "prod");
    let req = Request::new(&who, "ssm:StartSession", INSTANCE).with_resource_tags(&tags);
    let explanation = set.explain(&req);
    assert_eq!(
        explanation.aws_message().unwrap(),
        "User: arn:aws:iam::123456789012:user/TestUserA is not authorized to perform: ssm:StartSession \
         on resource: arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0885b2e35926f1fb3 \
         because no identity-based policy allows the ssm:StartSession action"
    );
    let text = explanation.to_string();
    assert!(
        text.contains("condition StringEquals aws:ResourceTag/Project failed: request has `prod`, policy wants `test`"),
        "{text}"
    );
}
