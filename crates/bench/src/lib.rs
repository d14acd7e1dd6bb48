//! Fixtures and engine adapters for the `decisions` benchmark
//! (`cargo bench -p portcullis-bench --bench decisions`).
//!
//! Each [`Scenario`] is written once, as data:
//!
//! * the IAM identity policies as JSON text, fed unchanged to both
//!   `portcullis-iam` and `iam-rs`;
//! * an equivalent Cedar policy set (plus the Cedar action groups that stand in
//!   for IAM action wildcards);
//! * the principal (an IAM user with tags);
//! * an allowed and a denied request.
//!
//! The engine adapters ([`ours`], [`cedar`], [`iamrs`]) turn a scenario into
//! each engine's pre-parsed / pre-compiled form, so that the benchmark times
//! one authorization decision and nothing else.
//!
//! Modelling choices for Cedar (it has no IAM JSON front end):
//!
//! * Each identity policy is "attached" to the user, so every Cedar policy is
//!   scoped `principal == Iam::User::"<user ARN>"`.
//! * Resources are typed entities named by their ARN (`Ec2::Instance`,
//!   `Ssm::Session`, `Ssm::Parameter`, `S3::Object`, `Aws::Resource` for the
//!   synthetic services) with an `arn` attribute; AWS resource and principal
//!   tags are Cedar entity tags (`hasTag` / `getTag`).
//! * An IAM `Resource` ARN without wildcards becomes `resource == T::"arn"`;
//!   one with wildcards becomes `resource is T` plus `resource.arn like "..."`.
//! * IAM action wildcards (`ssm:Describe*`, ...) become a Cedar action group
//!   whose members are the concrete actions the wildcard covers.
//! * A policy variable that Cedar cannot put in a `like` pattern
//!   (`session/${aws:username}-*`) is expanded for the one user the policy is
//!   attached to (`session/TestUserA-*`).

use std::fmt;

/// The AWS account used throughout.
pub const ACCOUNT: &str = "123456789012";
/// The principal: an IAM user.
pub const USER_ARN: &str = "arn:aws:iam::123456789012:user/TestUserA";
/// `aws:username` of [`USER_ARN`].
pub const USER_NAME: &str = "TestUserA";
/// `aws:userid` of [`USER_ARN`].
pub const USER_ID: &str = "AIDAEXAMPLEUSERID0001";
/// The instance the seed policies grant `ssm:StartSession` on.
pub const ALLOWED_INSTANCE: &str =
    "arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0885b2e35926f1fb3";
/// An instance that no policy grants `ssm:StartSession` on by ARN.
pub const OTHER_INSTANCE: &str =
    "arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0123456789abcdef0";
/// The action every benchmarked request asks for.
pub const START_SESSION: &str = "ssm:StartSession";

/// The "ReadOnly-like" managed policy attached in every seed pattern.
pub const READ_ONLY_LIKE: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"ReadOnlyLike","Effect":"Allow","Action":["ssm:Describe*","ssm:Get*","ssm:List*","ec2:Describe*"],"Resource":"*"}]}"#;

/// Seed pattern 1: `ssm:StartSession` on one instance ARN, plus
/// Terminate/ResumeSession on the user's own sessions.
pub const SEED1_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ssm:StartSession"],"Resource":["arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0885b2e35926f1fb3"]},{"Effect":"Allow","Action":["ssm:TerminateSession","ssm:ResumeSession"],"Resource":["arn:aws:ssm:*:*:session/${aws:username}-*"]}]}"#;

/// Seed pattern 2: `ssm:StartSession` on any instance tagged `Project=test`.
pub const SEED2_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ssm:StartSession"],"Resource":["arn:aws:ec2:ap-northeast-1:123456789012:instance/*"],"Condition":{"StringEquals":{"ssm:resourceTag/Project":"test"}}},{"Effect":"Allow","Action":["ssm:TerminateSession","ssm:ResumeSession"],"Resource":["arn:aws:ssm:*:*:session/${aws:username}-*"]}]}"#;

/// Seed pattern 3 (ABAC): `ssm:StartSession` on any instance whose `Project`
/// tag equals the principal's `Project` tag.
pub const SEED3_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ssm:StartSession"],"Resource":["arn:aws:ec2:ap-northeast-1:123456789012:instance/*"],"Condition":{"StringEquals":{"aws:ResourceTag/Project":"${aws:PrincipalTag/Project}"}}},{"Effect":"Allow","Action":["ssm:TerminateSession","ssm:ResumeSession"],"Resource":["arn:aws:ssm:*:*:session/${aws:username}-*"]}]}"#;

/// The concrete actions that the ReadOnly-like wildcards (`ssm:Describe*`,
/// `ssm:Get*`, `ssm:List*`, `ec2:Describe*`) stand for in the Cedar
/// translation, where they are members of the action group `ReadOnlyLike`.
pub const READ_ONLY_LIKE_ACTIONS: &[&str] = &[
    "ssm:DescribeAssociation",
    "ssm:DescribeDocument",
    "ssm:DescribeInstanceInformation",
    "ssm:DescribeInstancePatches",
    "ssm:DescribeParameters",
    "ssm:DescribeSessions",
    "ssm:GetCommandInvocation",
    "ssm:GetConnectionStatus",
    "ssm:GetDocument",
    "ssm:GetInventory",
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:GetParametersByPath",
    "ssm:ListAssociations",
    "ssm:ListCommandInvocations",
    "ssm:ListCommands",
    "ssm:ListDocuments",
    "ssm:ListInventoryEntries",
    "ssm:ListTagsForResource",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceStatus",
    "ec2:DescribeInstances",
    "ec2:DescribeRegions",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeTags",
    "ec2:DescribeVolumes",
    "ec2:DescribeVpcs",
];

/// Number of statements in the large scenario.
pub const BULK_STATEMENTS: usize = 1_000;
/// The large scenario's statements are split into this many attached policies
/// (40 statements each, so that every document stays within IAM's 6,144
/// character quota for a managed policy, which portcullis-iam enforces).
pub const BULK_POLICIES: usize = 25;

/// A failure while building a scenario for an engine (never expected; the
/// benchmark treats it as fatal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupError {
    what: String,
}

impl SetupError {
    fn new(context: &str, err: impl fmt::Display) -> Self {
        Self {
            what: format!("{context}: {err}"),
        }
    }
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

impl std::error::Error for SetupError {}

/// What a case should decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// The request is allowed.
    Allow,
    /// The request is denied (implicitly: no scenario has a Deny statement).
    Deny,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Expected::Allow => "Allow",
            Expected::Deny => "Deny",
        })
    }
}

/// What an engine decided, normalised for comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Allowed.
    Allow,
    /// Denied; the string says how the engine put it (e.g. `ImplicitDeny`).
    Deny(String),
    /// The engine returned an error instead of a decision.
    Error(String),
}

impl Outcome {
    /// Does this outcome match what the case expects? An error never does.
    #[must_use]
    pub fn matches(&self, expected: Expected) -> bool {
        matches!(
            (self, expected),
            (Outcome::Allow, Expected::Allow) | (Outcome::Deny(_), Expected::Deny)
        )
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Allow => f.write_str("Allow"),
            Outcome::Deny(how) => write!(f, "Deny ({how})"),
            Outcome::Error(e) => write!(f, "error ({e})"),
        }
    }
}

/// The principal of every scenario: an IAM user.
#[derive(Debug, Clone)]
pub struct Subject {
    /// User ARN.
    pub arn: String,
    /// Account ID.
    pub account: String,
    /// `aws:username`.
    pub username: String,
    /// `aws:userid`.
    pub userid: String,
    /// Principal tags (`aws:PrincipalTag/<key>`).
    pub tags: Vec<(String, String)>,
}

impl Subject {
    /// `TestUserA` with tag `Project=test`.
    #[must_use]
    pub fn test_user_a() -> Self {
        Self {
            arn: USER_ARN.to_owned(),
            account: ACCOUNT.to_owned(),
            username: USER_NAME.to_owned(),
            userid: USER_ID.to_owned(),
            tags: vec![("Project".to_owned(), "test".to_owned())],
        }
    }
}

/// What a request asks for.
#[derive(Debug, Clone)]
pub struct Target {
    /// `service:Action`.
    pub action: String,
    /// Resource ARN.
    pub resource: String,
    /// Resource tags (`aws:ResourceTag/<key>`, `ssm:resourceTag/<key>`).
    pub resource_tags: Vec<(String, String)>,
}

impl Target {
    fn start_session(resource: &str, tags: &[(&str, &str)]) -> Self {
        Self {
            action: START_SESSION.to_owned(),
            resource: resource.to_owned(),
            resource_tags: tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }
}

/// One benchmarked request and its expected decision.
#[derive(Debug, Clone)]
pub struct Case {
    /// `allowed` or `denied`.
    pub label: &'static str,
    /// The expected decision.
    pub expected: Expected,
    /// The request.
    pub target: Target,
}

/// One benchmark scenario: policies in both languages, principal, cases.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Short id, used as the criterion group prefix (`seed-1-instance-arn`).
    pub id: &'static str,
    /// One-line description for reports.
    pub summary: String,
    /// IAM identity policies attached to the user: (name, JSON text).
    pub iam_policies: Vec<(String, String)>,
    /// The equivalent Cedar policy set, as Cedar text.
    pub cedar_policies: String,
    /// Cedar action groups: (group action id, member action ids).
    pub cedar_action_groups: Vec<(String, Vec<String>)>,
    /// The principal.
    pub subject: Subject,
    /// The allowed case, then the denied case.
    pub cases: Vec<Case>,
}

impl Scenario {
    /// Total IAM statements attached to the principal.
    ///
    /// # Errors
    /// If a policy is not valid JSON.
    pub fn statement_count(&self) -> Result<usize, SetupError> {
        let mut n = 0;
        for (name, text) in &self.iam_policies {
            let v: serde_json::Value =
                serde_json::from_str(text).map_err(|e| SetupError::new(name, e))?;
            n += match v.get("Statement") {
                Some(serde_json::Value::Array(a)) => a.len(),
                Some(_) => 1,
                None => 0,
            };
        }
        Ok(n)
    }
}

/// Escape a string for a Cedar string literal.
fn cedar_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Cedar entity type for a resource ARN (or ARN pattern).
#[must_use]
pub fn cedar_resource_type(arn: &str) -> &'static str {
    let mut parts = arn.splitn(6, ':');
    let service = parts.nth(2).unwrap_or("");
    let resource = parts.nth(2).unwrap_or("");
    let kind = resource.split(['/', ':']).next().unwrap_or("");
    match (service, kind) {
        ("ec2", "instance") => "Ec2::Instance",
        ("ssm", "session") => "Ssm::Session",
        ("ssm", "parameter") => "Ssm::Parameter",
        ("s3", _) => "S3::Object",
        _ => "Aws::Resource",
    }
}

/// The Cedar `principal` scope for policies attached to `subject`.
fn cedar_principal(subject: &Subject) -> String {
    format!("principal == Iam::User::{}", cedar_str(&subject.arn))
}

/// Cedar action scope for a list of concrete actions.
fn cedar_actions(actions: &[&str]) -> String {
    match actions {
        [one] => format!("action == Action::{}", cedar_str(one)),
        many => {
            let list: Vec<String> = many
                .iter()
                .map(|a| format!("Action::{}", cedar_str(a)))
                .collect();
            format!("action in [{}]", list.join(", "))
        }
    }
}

/// Cedar resource scope and `when` conjuncts for one IAM resource ARN/pattern.
fn cedar_resource(pattern: &str) -> (String, Vec<String>) {
    if pattern == "*" {
        return ("resource".to_owned(), Vec::new());
    }
    let ty = cedar_resource_type(pattern);
    if pattern.contains('*') || pattern.contains('?') {
        (
            format!("resource is {ty}"),
            vec![format!("resource.arn like {}", cedar_str(pattern))],
        )
    } else {
        (
            format!("resource == {ty}::{}", cedar_str(pattern)),
            Vec::new(),
        )
    }
}

/// One Cedar `permit` for an allow statement of concrete actions on one
/// resource pattern, with extra `when` conjuncts.
fn cedar_permit(subject: &Subject, actions: &[&str], resource: &str, extra: &[String]) -> String {
    let (scope, mut conds) = cedar_resource(resource);
    conds.extend(extra.iter().cloned());
    let mut text = format!(
        "permit({}, {}, {})",
        cedar_principal(subject),
        cedar_actions(actions),
        scope
    );
    if !conds.is_empty() {
        text.push_str(" when { ");
        text.push_str(&conds.join(" && "));
        text.push_str(" }");
    }
    text.push_str(";\n");
    text
}

/// The Cedar translation of [`READ_ONLY_LIKE`] plus the
/// Terminate/ResumeSession statement common to all seeds.
fn cedar_seed_common(subject: &Subject) -> String {
    let mut text = String::new();
    text.push_str("// ReadOnlyLike: ssm:Describe*, ssm:Get*, ssm:List*, ec2:Describe* on *\n");
    text.push_str(&format!(
        "permit({}, action in Action::\"ReadOnlyLike\", resource);\n",
        cedar_principal(subject)
    ));
    text.push_str("// arn:aws:ssm:*:*:session/${aws:username}-*, expanded for this user\n");
    text.push_str(&cedar_permit(
        subject,
        &["ssm:TerminateSession", "ssm:ResumeSession"],
        &format!("arn:aws:ssm:*:*:session/{}-*", subject.username),
        &[],
    ));
    text
}

fn read_only_group() -> Vec<(String, Vec<String>)> {
    vec![(
        "ReadOnlyLike".to_owned(),
        READ_ONLY_LIKE_ACTIONS
            .iter()
            .map(|a| (*a).to_owned())
            .collect(),
    )]
}

const INSTANCE_PATTERN: &str = "arn:aws:ec2:ap-northeast-1:123456789012:instance/*";

/// Seed pattern 1: StartSession granted on one instance ARN.
#[must_use]
pub fn seed1() -> Scenario {
    let subject = Subject::test_user_a();
    let mut cedar = cedar_seed_common(&subject);
    cedar.push_str(&cedar_permit(
        &subject,
        &[START_SESSION],
        ALLOWED_INSTANCE,
        &[],
    ));
    Scenario {
        id: "seed-1-instance-arn",
        summary: "seed 1: StartSession on one instance ARN (+ ReadOnly-like, session statement)"
            .to_owned(),
        iam_policies: vec![
            ("ReadOnlyLike".to_owned(), READ_ONLY_LIKE.to_owned()),
            ("seed-1".to_owned(), SEED1_POLICY.to_owned()),
        ],
        cedar_policies: cedar,
        cedar_action_groups: read_only_group(),
        subject,
        cases: vec![
            Case {
                label: "allowed",
                expected: Expected::Allow,
                target: Target::start_session(ALLOWED_INSTANCE, &[("Project", "test")]),
            },
            Case {
                label: "denied",
                expected: Expected::Deny,
                target: Target::start_session(OTHER_INSTANCE, &[("Project", "test")]),
            },
        ],
    }
}

/// Seed pattern 2: StartSession on `instance/*` where `ssm:resourceTag/Project`
/// is `test`.
#[must_use]
pub fn seed2() -> Scenario {
    let subject = Subject::test_user_a();
    let mut cedar = cedar_seed_common(&subject);
    cedar.push_str(&cedar_permit(
        &subject,
        &[START_SESSION],
        INSTANCE_PATTERN,
        &[
            "resource.hasTag(\"Project\")".to_owned(),
            "resource.getTag(\"Project\") == \"test\"".to_owned(),
        ],
    ));
    Scenario {
        id: "seed-2-fixed-tag",
        summary: "seed 2: StartSession on instance/* if ssm:resourceTag/Project = test".to_owned(),
        iam_policies: vec![
            ("ReadOnlyLike".to_owned(), READ_ONLY_LIKE.to_owned()),
            ("seed-2".to_owned(), SEED2_POLICY.to_owned()),
        ],
        cedar_policies: cedar,
        cedar_action_groups: read_only_group(),
        subject,
        cases: vec![
            Case {
                label: "allowed",
                expected: Expected::Allow,
                target: Target::start_session(ALLOWED_INSTANCE, &[("Project", "test")]),
            },
            Case {
                label: "denied",
                expected: Expected::Deny,
                target: Target::start_session(OTHER_INSTANCE, &[("Project", "prod")]),
            },
        ],
    }
}

/// Seed pattern 3 (ABAC): StartSession on `instance/*` where
/// `aws:ResourceTag/Project` equals `${aws:PrincipalTag/Project}`.
#[must_use]
pub fn seed3() -> Scenario {
    let subject = Subject::test_user_a();
    let mut cedar = cedar_seed_common(&subject);
    cedar.push_str(&cedar_permit(
        &subject,
        &[START_SESSION],
        INSTANCE_PATTERN,
        &[
            "resource.hasTag(\"Project\")".to_owned(),
            "principal.hasTag(\"Project\")".to_owned(),
            "resource.getTag(\"Project\") == principal.getTag(\"Project\")".to_owned(),
        ],
    ));
    Scenario {
        id: "seed-3-abac",
        summary: "seed 3: StartSession on instance/* if aws:ResourceTag/Project = ${aws:PrincipalTag/Project}"
            .to_owned(),
        iam_policies: vec![
            ("ReadOnlyLike".to_owned(), READ_ONLY_LIKE.to_owned()),
            ("seed-3".to_owned(), SEED3_POLICY.to_owned()),
        ],
        cedar_policies: cedar,
        cedar_action_groups: read_only_group(),
        subject,
        cases: vec![
            Case {
                label: "allowed",
                expected: Expected::Allow,
                target: Target::start_session(ALLOWED_INSTANCE, &[("Project", "test")]),
            },
            Case {
                label: "denied",
                expected: Expected::Deny,
                target: Target::start_session(OTHER_INSTANCE, &[("Project", "prod")]),
            },
        ],
    }
}

/// A `StringEquals` condition on one resource tag, in both languages.
struct TagCondition {
    /// IAM condition key (`aws:ResourceTag/Team`, `ssm:resourceTag/Project`).
    iam_key: &'static str,
    /// The tag it reads (`Team`, `Project`).
    tag: &'static str,
    /// The required value.
    value: String,
}

/// One generated Allow statement of a large scenario.
struct BulkStatement {
    sid: String,
    actions: Vec<String>,
    resource: String,
    condition: Option<TagCondition>,
}

impl BulkStatement {
    fn new(i: usize, actions: &[&str], resource: String) -> Self {
        Self {
            sid: format!("S{i:04}"),
            actions: actions.iter().map(|a| (*a).to_owned()).collect(),
            resource,
            condition: None,
        }
    }

    fn with_condition(mut self, iam_key: &'static str, tag: &'static str, value: String) -> Self {
        self.condition = Some(TagCondition {
            iam_key,
            tag,
            value,
        });
        self
    }

    fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "Sid": self.sid,
            "Effect": "Allow",
            "Action": self.actions,
            "Resource": self.resource,
        });
        if let (Some(c), Some(obj)) = (&self.condition, v.as_object_mut()) {
            obj.insert(
                "Condition".to_owned(),
                serde_json::json!({"StringEquals": {c.iam_key: c.value}}),
            );
        }
        v
    }

    fn to_cedar(&self, subject: &Subject) -> String {
        let actions: Vec<&str> = self.actions.iter().map(String::as_str).collect();
        let extra: Vec<String> = self
            .condition
            .iter()
            .flat_map(|c| {
                [
                    format!("resource.hasTag({})", cedar_str(c.tag)),
                    format!(
                        "resource.getTag({}) == {}",
                        cedar_str(c.tag),
                        cedar_str(&c.value)
                    ),
                ]
            })
            .collect();
        cedar_permit(subject, &actions, &self.resource, &extra)
    }
}

/// A distinct instance ARN for statement `i` (`prefix` keeps the two large
/// scenarios' instances apart).
fn bulk_instance(prefix: u64, i: usize) -> String {
    format!(
        "arn:aws:ec2:ap-northeast-1:{ACCOUNT}:instance/i-{:017x}",
        (prefix << 56) + i as u64
    )
}

/// The statements of `bulk-1000-statements`, in attachment order. The shape
/// (statement `i`, 0-based, of [`BULK_STATEMENTS`]):
///
/// * the last one (`i == 999`): `ssm:StartSession` on [`ALLOWED_INSTANCE`] —
///   the only statement that grants StartSession, placed last so that an
///   engine scanning in order sees every other statement first;
/// * `i % 5 == 0`: `ssm:SendCommand` on its own instance ARN
///   (`instance/i-0a...<i>`);
/// * `i % 5 == 1`: `ec2:RebootInstances` / `ec2:StopInstances` /
///   `ec2:StartInstances` on its own instance ARN; every other one
///   (`i % 10 == 1`) also has `StringEquals aws:ResourceTag/Team = team-<i%7>`;
/// * `i % 5 == 2`: `s3:GetObject` / `s3:PutObject` on `arn:aws:s3:::bucket-<i>/*`;
/// * `i % 5 == 3`: synthetic `svc<i%40>:Action<i>` on
///   `arn:aws:svc<i%40>:ap-northeast-1:123456789012:thing/<i>`;
/// * `i % 5 == 4`: `ssm:GetParameter` / `ssm:GetParameters` on
///   `arn:aws:ssm:ap-northeast-1:123456789012:parameter/app<i>/*`.
///
/// All actions are concrete (no wildcards), so the Cedar translation is one
/// `permit` per statement without action groups.
fn mixed_statements() -> Vec<BulkStatement> {
    (0..BULK_STATEMENTS)
        .map(|i| {
            if i + 1 == BULK_STATEMENTS {
                return BulkStatement::new(i, &[START_SESSION], ALLOWED_INSTANCE.to_owned());
            }
            match i % 5 {
                0 => BulkStatement::new(i, &["ssm:SendCommand"], bulk_instance(0x0a, i)),
                1 => {
                    let s = BulkStatement::new(
                        i,
                        &[
                            "ec2:RebootInstances",
                            "ec2:StopInstances",
                            "ec2:StartInstances",
                        ],
                        bulk_instance(0x0a, i),
                    );
                    if i % 10 == 1 {
                        s.with_condition("aws:ResourceTag/Team", "Team", format!("team-{}", i % 7))
                    } else {
                        s
                    }
                }
                2 => BulkStatement::new(
                    i,
                    &["s3:GetObject", "s3:PutObject"],
                    format!("arn:aws:s3:::bucket-{i}/*"),
                ),
                3 => BulkStatement::new(
                    i,
                    &[format!("svc{}:Action{i}", i % 40).as_str()],
                    format!("arn:aws:svc{}:ap-northeast-1:{ACCOUNT}:thing/{i}", i % 40),
                ),
                _ => BulkStatement::new(
                    i,
                    &["ssm:GetParameter", "ssm:GetParameters"],
                    format!("arn:aws:ssm:ap-northeast-1:{ACCOUNT}:parameter/app{i}/*"),
                ),
            }
        })
        .collect()
}

/// The statements of `bulk-1000-same-action`: every one of the
/// [`BULK_STATEMENTS`] grants `ssm:StartSession`, so indexing statements by
/// action cannot skip any of them (a stress case beyond the brief's
/// scenarios):
///
/// * the last one (`i == 999`): on [`ALLOWED_INSTANCE`];
/// * `i % 10 == 5` (100 statements): on `instance/*` with
///   `StringEquals ssm:resourceTag/Project = proj-<i>` (no request's
///   instance has such a tag);
/// * the other 899: each on its own instance ARN (`instance/i-0b...<i>`).
fn same_action_statements() -> Vec<BulkStatement> {
    (0..BULK_STATEMENTS)
        .map(|i| {
            if i + 1 == BULK_STATEMENTS {
                BulkStatement::new(i, &[START_SESSION], ALLOWED_INSTANCE.to_owned())
            } else if i % 10 == 5 {
                BulkStatement::new(i, &[START_SESSION], INSTANCE_PATTERN.to_owned()).with_condition(
                    "ssm:resourceTag/Project",
                    "Project",
                    format!("proj-{i}"),
                )
            } else {
                BulkStatement::new(i, &[START_SESSION], bulk_instance(0x0b, i))
            }
        })
        .collect()
}

/// A large scenario from generated statements, split into [`BULK_POLICIES`]
/// attached policies. Allowed: StartSession on [`ALLOWED_INSTANCE`] (granted
/// by the last statement only). Denied: StartSession on [`OTHER_INSTANCE`]
/// (granted by none). Both instances are tagged `Project=test`,
/// `Team=team-1`.
fn bulk_scenario(id: &'static str, summary: String, stmts: &[BulkStatement]) -> Scenario {
    let subject = Subject::test_user_a();
    let per_policy = stmts.len().div_ceil(BULK_POLICIES).max(1);
    let mut iam_policies = Vec::with_capacity(BULK_POLICIES);
    let mut cedar = String::new();
    for (p, chunk) in stmts.chunks(per_policy).enumerate() {
        let statements: Vec<serde_json::Value> = chunk.iter().map(BulkStatement::to_json).collect();
        let doc = serde_json::json!({"Version": "2012-10-17", "Statement": statements});
        iam_policies.push((format!("{id}-{p:02}"), doc.to_string()));
        for s in chunk {
            cedar.push_str(&s.to_cedar(&subject));
        }
    }
    let tags = [("Project", "test"), ("Team", "team-1")];
    Scenario {
        id,
        summary,
        iam_policies,
        cedar_policies: cedar,
        cedar_action_groups: Vec::new(),
        subject,
        cases: vec![
            Case {
                label: "allowed",
                expected: Expected::Allow,
                target: Target::start_session(ALLOWED_INSTANCE, &tags),
            },
            Case {
                label: "denied",
                expected: Expected::Deny,
                target: Target::start_session(OTHER_INSTANCE, &tags),
            },
        ],
    }
}

/// `bulk-1000-statements`: [`BULK_STATEMENTS`] Allow statements over many
/// actions and services, one of which grants StartSession (shape:
/// `mixed_statements`).
#[must_use]
pub fn bulk_1000() -> Scenario {
    bulk_scenario(
        "bulk-1000-statements",
        format!(
            "{BULK_STATEMENTS} Allow statements over many actions in {BULK_POLICIES} policies; StartSession granted by 1"
        ),
        &mixed_statements(),
    )
}

/// `bulk-1000-same-action`: [`BULK_STATEMENTS`] Allow statements that all
/// grant StartSession, on distinct instances or tag conditions (shape:
/// `same_action_statements`).
#[must_use]
pub fn bulk_1000_same_action() -> Scenario {
    bulk_scenario(
        "bulk-1000-same-action",
        format!(
            "{BULK_STATEMENTS} Allow statements in {BULK_POLICIES} policies, all for ssm:StartSession"
        ),
        &same_action_statements(),
    )
}

/// All scenarios, in report order.
#[must_use]
pub fn scenarios() -> Vec<Scenario> {
    vec![
        seed1(),
        seed2(),
        seed3(),
        bulk_1000(),
        bulk_1000_same_action(),
    ]
}

/// Adapter for our engine, `portcullis-iam`.
pub mod ours {
    use super::{Outcome, Scenario, SetupError, Subject, Target};
    use portcullis_iam::{Context, Decision, Policy, PolicySet, Principal, Request, Tags};

    /// Pre-parsed policies and principal of one scenario.
    pub struct Engine {
        /// The identity policies attached to the principal.
        pub set: PolicySet,
        /// The principal.
        pub principal: Principal,
    }

    /// The owned parts of one request; [`Input::request`] borrows them.
    pub struct Input {
        action: String,
        resource: String,
        tags: Tags,
        context: Context,
    }

    impl Engine {
        /// Parse the scenario's IAM policies.
        ///
        /// # Errors
        /// If a policy does not parse.
        pub fn new(scenario: &Scenario) -> Result<Self, SetupError> {
            let mut set = PolicySet::new();
            for (name, text) in &scenario.iam_policies {
                let policy = Policy::parse(text).map_err(|e| {
                    SetupError::new(&format!("portcullis-iam {name}"), format!("{e:?}"))
                })?;
                set.add_identity(name, &policy);
            }
            Ok(Self {
                set,
                principal: principal(&scenario.subject),
            })
        }

        /// The owned inputs of one request.
        #[must_use]
        pub fn input(&self, target: &Target) -> Input {
            let mut tags = Tags::new();
            for (k, v) in &target.resource_tags {
                tags.insert(k, v);
            }
            Input {
                action: target.action.clone(),
                resource: target.resource.clone(),
                tags,
                context: Context::new(),
            }
        }

        /// One decision.
        #[must_use]
        pub fn decide(&self, request: &Request<'_>) -> Decision {
            self.set.evaluate(request)
        }
    }

    impl Input {
        /// The request, borrowing `self` and the engine's principal.
        #[must_use]
        pub fn request<'a>(&'a self, engine: &'a Engine) -> Request<'a> {
            Request::new(&engine.principal, &self.action, &self.resource)
                .with_resource_tags(&self.tags)
                .with_context(&self.context)
        }
    }

    fn principal(subject: &Subject) -> Principal {
        let mut p = Principal::user(
            &subject.arn,
            &subject.account,
            &subject.username,
            &subject.userid,
        );
        for (k, v) in &subject.tags {
            p = p.with_tag(k, v);
        }
        p
    }

    /// Normalise a decision.
    #[must_use]
    pub fn outcome(d: Decision) -> Outcome {
        match d {
            Decision::Allow => Outcome::Allow,
            other => Outcome::Deny(format!("{other:?}")),
        }
    }
}

/// Adapter for `cedar-policy`.
pub mod cedar {
    use super::{cedar_resource_type, Outcome, Scenario, SetupError, Target};
    use cedar_policy::{
        Authorizer, Context, Decision, Entities, EntityUid, PolicySet, Request, Response,
    };
    use std::str::FromStr;

    /// Pre-parsed policy set and entity store of one scenario.
    pub struct Engine {
        authorizer: Authorizer,
        policies: PolicySet,
        entities: Entities,
        principal: EntityUid,
    }

    fn uid(ty: &str, id: &str) -> Result<EntityUid, SetupError> {
        let text = format!("{ty}::{}", super::cedar_str(id));
        EntityUid::from_str(&text).map_err(|e| SetupError::new(&format!("cedar uid {text}"), e))
    }

    fn tag_map(tags: &[(String, String)]) -> serde_json::Map<String, serde_json::Value> {
        tags.iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect()
    }

    impl Engine {
        /// Parse the Cedar policies and build the entity store once: the
        /// principal (attributes + tags), the action groups, and every
        /// resource a case asks for (attribute `arn` + tags).
        ///
        /// # Errors
        /// If the policies or entities do not parse.
        pub fn new(scenario: &Scenario) -> Result<Self, SetupError> {
            let policies = PolicySet::from_str(&scenario.cedar_policies)
                .map_err(|e| SetupError::new(&format!("cedar policies of {}", scenario.id), e))?;
            let s = &scenario.subject;
            let mut entities = vec![serde_json::json!({
                "uid": {"type": "Iam::User", "id": s.arn},
                "attrs": {"username": s.username, "userid": s.userid, "account": s.account},
                "parents": [],
                "tags": tag_map(&s.tags),
            })];
            for (group, members) in &scenario.cedar_action_groups {
                entities.push(serde_json::json!({
                    "uid": {"type": "Action", "id": group}, "attrs": {}, "parents": []
                }));
                for m in members {
                    entities.push(serde_json::json!({
                        "uid": {"type": "Action", "id": m},
                        "attrs": {},
                        "parents": [{"type": "Action", "id": group}],
                    }));
                }
            }
            for case in &scenario.cases {
                let t = &case.target;
                entities.push(serde_json::json!({
                    "uid": {"type": cedar_resource_type(&t.resource), "id": t.resource},
                    "attrs": {"arn": t.resource},
                    "parents": [],
                    "tags": tag_map(&t.resource_tags),
                }));
            }
            let entities = Entities::from_json_value(serde_json::Value::Array(entities), None)
                .map_err(|e| SetupError::new(&format!("cedar entities of {}", scenario.id), e))?;
            Ok(Self {
                authorizer: Authorizer::new(),
                policies,
                entities,
                principal: uid("Iam::User", &s.arn)?,
            })
        }

        /// Build one request (no schema, empty context).
        ///
        /// # Errors
        /// If a uid does not parse.
        pub fn request(&self, target: &Target) -> Result<Request, SetupError> {
            Request::new(
                self.principal.clone(),
                uid("Action", &target.action)?,
                uid(cedar_resource_type(&target.resource), &target.resource)?,
                Context::empty(),
                None,
            )
            .map_err(|e| SetupError::new("cedar request", e))
        }

        /// One decision.
        #[must_use]
        pub fn decide(&self, request: &Request) -> Response {
            self.authorizer
                .is_authorized(request, &self.policies, &self.entities)
        }

        /// Number of policies in the set.
        #[must_use]
        pub fn policy_count(&self) -> usize {
            self.policies.policies().count()
        }
    }

    /// Normalise a response. Evaluation errors of individual policies (which
    /// Cedar skips) count as an error outcome, so a broken translation shows.
    #[must_use]
    pub fn outcome(r: &Response) -> Outcome {
        let errors: Vec<String> = r.diagnostics().errors().map(ToString::to_string).collect();
        if !errors.is_empty() {
            return Outcome::Error(errors.join("; "));
        }
        match r.decision() {
            Decision::Allow => Outcome::Allow,
            Decision::Deny => Outcome::Deny("Deny".to_owned()),
        }
    }
}

/// Adapter for `iam-rs`.
pub mod iamrs {
    use super::{Outcome, Scenario, SetupError, Subject, Target};
    use iam_rs::{
        Arn, Context, ContextValue, Decision, EvaluationError, EvaluationOptions, EvaluationResult,
        IAMPolicy, IAMRequest, PolicyEvaluator, Principal, PrincipalId,
    };

    /// Pre-parsed policies of one scenario.
    pub struct Engine {
        evaluator: PolicyEvaluator,
        subject: Subject,
    }

    impl Engine {
        /// Parse the scenario's IAM policies. The statement cap is raised
        /// from iam-rs's default of 1,000 so the large scenario fits.
        ///
        /// # Errors
        /// If a policy does not parse.
        pub fn new(scenario: &Scenario) -> Result<Self, SetupError> {
            let mut policies = Vec::with_capacity(scenario.iam_policies.len());
            for (name, text) in &scenario.iam_policies {
                policies.push(
                    IAMPolicy::from_json(text)
                        .map_err(|e| SetupError::new(&format!("iam-rs {name}"), e))?,
                );
            }
            let options = EvaluationOptions {
                max_statements: 100_000,
                ..EvaluationOptions::default()
            };
            Ok(Self {
                evaluator: PolicyEvaluator::with_policies(policies).with_options(options),
                subject: scenario.subject.clone(),
            })
        }

        /// Build one request. iam-rs has no principal or resource model, so
        /// everything a condition or policy variable may read goes in the
        /// request context: the global `aws:` principal keys, the principal
        /// tags, and the resource tags under both `aws:ResourceTag/` and
        /// `ssm:resourceTag/`.
        ///
        /// # Errors
        /// If the resource ARN does not parse.
        pub fn request(&self, target: &Target) -> Result<IAMRequest, SetupError> {
            let s = &self.subject;
            let mut ctx = Context::new()
                .with_string("aws:username", s.username.as_str())
                .with_string("aws:userid", s.userid.as_str())
                .with_string("aws:PrincipalArn", s.arn.as_str())
                .with_string("aws:PrincipalAccount", s.account.as_str())
                .with_string("aws:PrincipalType", "User");
            for (k, v) in &s.tags {
                ctx.insert(
                    format!("aws:PrincipalTag/{k}"),
                    ContextValue::String(v.clone()),
                );
            }
            for (k, v) in &target.resource_tags {
                ctx.insert(
                    format!("aws:ResourceTag/{k}"),
                    ContextValue::String(v.clone()),
                );
                ctx.insert(
                    format!("ssm:resourceTag/{k}"),
                    ContextValue::String(v.clone()),
                );
            }
            let resource = Arn::parse(&target.resource)
                .map_err(|e| SetupError::new("iam-rs resource ARN", e))?;
            Ok(IAMRequest::new_with_context(
                Principal::Aws(PrincipalId::String(s.arn.clone())),
                target.action.as_str(),
                resource,
                ctx,
            ))
        }

        /// One decision.
        ///
        /// # Errors
        /// Whatever iam-rs reports.
        pub fn decide(&self, request: &IAMRequest) -> Result<EvaluationResult, EvaluationError> {
            self.evaluator.evaluate(request)
        }
    }

    /// Normalise a result.
    #[must_use]
    pub fn outcome(r: &Result<EvaluationResult, EvaluationError>) -> Outcome {
        match r {
            Ok(res) => match res.decision {
                Decision::Allow => Outcome::Allow,
                Decision::Deny => Outcome::Deny("Deny".to_owned()),
                Decision::NotApplicable => Outcome::Deny("NotApplicable".to_owned()),
            },
            Err(e) => Outcome::Error(e.to_string()),
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    #[test]
    fn bulk_scenarios_have_the_documented_shape() {
        for (s, start_session) in [(bulk_1000(), 1), (bulk_1000_same_action(), BULK_STATEMENTS)] {
            assert_eq!(s.statement_count().unwrap(), BULK_STATEMENTS, "{}", s.id);
            assert_eq!(s.iam_policies.len(), BULK_POLICIES, "{}", s.id);
            for (name, text) in &s.iam_policies {
                let size = portcullis_iam::policy_size(text);
                assert!(size <= 6_144, "{name} has {size} characters");
            }
            let granted = s
                .iam_policies
                .iter()
                .map(|(_, t)| t.matches("ssm:StartSession").count())
                .sum::<usize>();
            assert_eq!(granted, start_session, "{}", s.id);
            let cedar = cedar::Engine::new(&s).unwrap();
            assert_eq!(cedar.policy_count(), BULK_STATEMENTS, "{}", s.id);
        }
        let conditions = bulk_1000()
            .iam_policies
            .iter()
            .map(|(_, t)| t.matches("aws:ResourceTag/Team").count())
            .sum::<usize>();
        assert_eq!(conditions, 100);
        let conditions = bulk_1000_same_action()
            .iam_policies
            .iter()
            .map(|(_, t)| t.matches("ssm:resourceTag/Project").count())
            .sum::<usize>();
        assert_eq!(conditions, 100);
    }

    #[test]
    fn resource_types() {
        assert_eq!(cedar_resource_type(ALLOWED_INSTANCE), "Ec2::Instance");
        assert_eq!(
            cedar_resource_type("arn:aws:ssm:*:*:session/x-*"),
            "Ssm::Session"
        );
        assert_eq!(cedar_resource_type("arn:aws:s3:::b/*"), "S3::Object");
        assert_eq!(
            cedar_resource_type("arn:aws:svc3:r:a:thing/1"),
            "Aws::Resource"
        );
    }

    #[test]
    fn cedar_translation_decides_every_case_as_expected() {
        for s in scenarios() {
            let engine = cedar::Engine::new(&s).unwrap();
            for case in &s.cases {
                let req = engine.request(&case.target).unwrap();
                let got = cedar::outcome(&engine.decide(&req));
                assert!(got.matches(case.expected), "{} {}: {got}", s.id, case.label);
            }
        }
    }

    #[test]
    fn our_engine_decides_every_case_as_expected() {
        for s in scenarios() {
            let engine = ours::Engine::new(&s).unwrap();
            for case in &s.cases {
                let input = engine.input(&case.target);
                let got = ours::outcome(engine.decide(&input.request(&engine)));
                assert!(got.matches(case.expected), "{} {}: {got}", s.id, case.label);
            }
        }
    }

    /// iam-rs gets every case right except the ABAC allowed case: it does not
    /// substitute `${aws:PrincipalTag/Project}` inside a condition value. If
    /// this starts failing, a new iam-rs fixed it (or broke something else):
    /// update BENCHMARKS.md.
    #[test]
    fn iam_rs_decisions_including_its_known_gap() {
        for s in scenarios() {
            let engine = iamrs::Engine::new(&s).unwrap();
            for case in &s.cases {
                let req = engine.request(&case.target).unwrap();
                let got = iamrs::outcome(&engine.decide(&req));
                let known_gap = s.id == "seed-3-abac" && case.label == "allowed";
                assert_eq!(
                    got.matches(case.expected),
                    !known_gap,
                    "{} {}: {got}",
                    s.id,
                    case.label
                );
            }
        }
    }
}
