//! Property tests: random but valid policy documents, principals and requests drawn from
//! small pools (so that statements actually match), checked against the laws the engine
//! must keep whatever the policies say.
//!
//! Documents are built as a small model ([`Doc`]) and written out as JSON text, so that the
//! parser is part of every property and a failure prints the exact documents involved.

use std::fmt::Write as _;

use portcullis_iam::{
    policy_size, validate, Context, Decision, Policy, PolicyKind, PolicySet, Principal, Request,
    Tags,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{select, subsequence, Index};

// ---------------------------------------------------------------------------------------
// Pools
// ---------------------------------------------------------------------------------------

const ACTIONS: &[&str] = &[
    "ssm:StartSession",
    "ssm:*Session",
    "ssm:Describe*",
    "ssm:TerminateSession",
    "ec2:DescribeInstances",
    "ec2:Describe*",
    "SSM:startsession",
    "ssm:?tartSession",
    "ssm:*",
    "*",
];

const RESOURCES: &[&str] = &[
    "arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0885b2e35926f1fb3",
    "arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0123456789abcdef0",
    "arn:aws:ec2:*:*:instance/*",
    "arn:aws:ec2:*:123456789012:instance/i-0885*",
    "arn:aws:ssm:*:*:session/${aws:username}-*",
    "arn:aws:ssm:*:*:session/${aws:PrincipalTag/Project, 'none'}-*",
    "arn:aws:ssm:ap-northeast-1:123456789012:document/AWS-StartSSHSession",
    "arn:aws:ssm:*:*:document/*",
    "*",
];

const STRING_OPS: &[&str] = &[
    "StringEquals",
    "StringLike",
    "StringNotEquals",
    "StringNotLike",
    "StringEqualsIgnoreCase",
    "StringEqualsIfExists",
    "StringNotEqualsIfExists",
    "StringLikeIfExists",
    "ForAnyValue:StringEquals",
    "ForAllValues:StringLike",
    // Operator names are read without regard to case; two spellings are two blocks.
    "stringequals",
    "forAnyValue:stringLIKE",
];

const TAG_KEYS: &[&str] = &[
    "aws:ResourceTag/Project",
    "aws:resourcetag/project",
    "ssm:resourceTag/Env",
    "ec2:ResourceTag/Project",
    "aws:PrincipalTag/Project",
    "aws:username",
    "aws:PrincipalType",
];

const STRING_VALUES: &[&str] = &[
    "test",
    "prod",
    "dev",
    "${aws:PrincipalTag/Project}",
    "${aws:PrincipalTag/Env, 'dev'}",
    "te*",
    "*",
    "TestUserA",
    "${aws:username}",
    "User",
];

const BOOL_OPS: &[&str] = &["Bool", "BoolIfExists"];
const IP_OPS: &[&str] = &["IpAddress", "NotIpAddress", "IpAddressIfExists"];
const IP_VALUES: &[&str] = &[
    "203.0.113.0/24",
    "10.0.0.0/8",
    "2001:db8::/32",
    "198.51.100.7",
];
const NULL_KEYS: &[&str] = &[
    "aws:ResourceTag/Project",
    "ssm:resourceTag/Env",
    "aws:SourceIp",
    "aws:TagKeys",
    "aws:PrincipalTag/Project",
];
const TAG_KEYS_OPS: &[&str] = &[
    "ForAnyValue:StringEquals",
    "ForAllValues:StringEquals",
    "ForAnyValue:StringLike",
    "ForAllValues:StringLikeIfExists",
    "ForAnyValue:StringNotEqualsIfExists",
    "ForAllValues:StringNotLike",
];
const TAG_KEY_NAMES: &[&str] = &["Project", "Env", "Owner", "Proj*"];
const NUMERIC_OPS: &[&str] = &[
    "NumericLessThan",
    "NumericGreaterThanEquals",
    "NumericLessThanIfExists",
];
const DATE_OPS: &[&str] = &["DateLessThan", "DateGreaterThan", "DateLessThanIfExists"];
const ARN_OPS: &[&str] = &["ArnLike", "ArnEquals", "ArnNotLike", "ArnLikeIfExists"];
const ARN_VALUES: &[&str] = &[
    "arn:aws:iam::123456789012:user/*",
    "arn:aws:iam::*:role/OpsRole",
    "arn:aws:iam::123456789012:user/${aws:username}",
    "arn:aws:iam::123456789012:root",
];

const IDS: &[&str] = &[
    "PortcullisTest",
    "caf\u{e9}-policy",
    "with \"quotes\" and \\ backslash",
    "tab\there",
    "",
];

/// Actions and resources requests use: close to the policy pools so that matches happen.
const REQUEST_ACTIONS: &[&str] = &[
    "ssm:StartSession",
    "ssm:TerminateSession",
    "ssm:ResumeSession",
    "ssm:DescribeSessions",
    "ssm:DescribeInstanceInformation",
    "ec2:DescribeInstances",
    "SSM:StartSession",
    "s3:GetObject",
    // Longer than the 128-byte buffer `evaluate` lower-cases into, and not ASCII: both take
    // the allocating path.
    "ssm:VeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVerySession",
    "ssm:StartSess\u{130}on",
];

const REQUEST_RESOURCES: &[&str] = &[
    "arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0885b2e35926f1fb3",
    "arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0123456789abcdef0",
    "arn:aws:ec2:us-east-1:210987654321:instance/i-0885aaaa",
    "arn:aws:ssm:ap-northeast-1:123456789012:session/TestUserA-0a1b2c3d",
    "arn:aws:ssm:ap-northeast-1:123456789012:session/alice-0a1b2c3d",
    "arn:aws:ssm:ap-northeast-1:123456789012:session/test-0a1b2c3d",
    "arn:aws:ssm:ap-northeast-1:123456789012:document/AWS-StartSSHSession",
    "*",
];

// ---------------------------------------------------------------------------------------
// The document model and its JSON
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Cond {
    op: &'static str,
    key: &'static str,
    values: Vec<&'static str>,
    /// Write a single value as a plain string rather than a one-element list.
    as_list: bool,
    /// Write `true`/`false` as JSON booleans rather than strings.
    raw_bool: bool,
}

#[derive(Debug, Clone)]
struct Stmt {
    sid: bool,
    deny: bool,
    not_action: bool,
    actions: Vec<&'static str>,
    not_resource: bool,
    resources: Vec<&'static str>,
    conditions: Vec<Cond>,
    /// Write one-element Action/Resource lists as plain strings.
    plain_strings: bool,
}

#[derive(Debug, Clone)]
struct Doc {
    version: Option<&'static str>,
    id: Option<&'static str>,
    statements: Vec<Stmt>,
    /// A single statement written as an object rather than a list.
    lone_object: bool,
    pretty: bool,
    /// Write `/` as `\/` in strings.
    escape_slashes: bool,
}

fn json_str(out: &mut String, s: &str, escape_slashes: bool) {
    let mut lit = serde_json::to_string(s).unwrap_or_default();
    if escape_slashes {
        lit = lit.replace('/', "\\/");
    }
    out.push_str(&lit);
}

impl Doc {
    fn to_json(&self) -> String {
        let esc = self.escape_slashes;
        let (nl, sp) = if self.pretty { ("\n  ", " ") } else { ("", "") };
        let mut out = String::from("{");
        out.push_str(nl);
        let mut fields = Vec::new();
        if let Some(v) = self.version {
            fields.push(format!("\"Version\":{sp}\"{v}\""));
        }
        if let Some(id) = self.id {
            let mut f = format!("\"Id\":{sp}");
            json_str(&mut f, id, esc);
            fields.push(f);
        }
        let statements: Vec<String> = self
            .statements
            .iter()
            .enumerate()
            .map(|(i, s)| s.to_json(i, esc, nl, sp))
            .collect();
        let body = if self.lone_object && statements.len() == 1 {
            statements[0].clone()
        } else {
            format!("[{}]", statements.join(&format!(",{nl}")))
        };
        fields.push(format!("\"Statement\":{sp}{body}"));
        out.push_str(&fields.join(&format!(",{nl}")));
        out.push_str(if self.pretty { "\n}\n" } else { "}" });
        out
    }
}

impl Stmt {
    fn to_json(&self, index: usize, esc: bool, nl: &str, sp: &str) -> String {
        let list = |items: &[&str], plain: bool| {
            let mut out = String::new();
            if plain && items.len() == 1 {
                json_str(&mut out, items[0], esc);
            } else {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                        out.push_str(sp);
                    }
                    json_str(&mut out, item, esc);
                }
                out.push(']');
            }
            out
        };
        let mut fields = Vec::new();
        if self.sid {
            fields.push(format!("\"Sid\":{sp}\"S{index}\""));
        }
        let effect = if self.deny { "Deny" } else { "Allow" };
        fields.push(format!("\"Effect\":{sp}\"{effect}\""));
        let action = if self.not_action {
            "NotAction"
        } else {
            "Action"
        };
        fields.push(format!(
            "\"{action}\":{sp}{}",
            list(&self.actions, self.plain_strings)
        ));
        let resource = if self.not_resource {
            "NotResource"
        } else {
            "Resource"
        };
        fields.push(format!(
            "\"{resource}\":{sp}{}",
            list(&self.resources, self.plain_strings)
        ));
        if !self.conditions.is_empty() {
            // Group by operator, in order of first appearance; skip repeated (operator, key).
            let mut ops: Vec<(&str, Vec<&Cond>)> = Vec::new();
            for c in &self.conditions {
                match ops.iter_mut().find(|(op, _)| *op == c.op) {
                    Some((_, cs)) => {
                        if !cs.iter().any(|d| d.key == c.key) {
                            cs.push(c);
                        }
                    }
                    None => ops.push((c.op, vec![c])),
                }
            }
            let mut cond = String::from("{");
            for (oi, (op, cs)) in ops.iter().enumerate() {
                if oi > 0 {
                    cond.push(',');
                }
                let _ = write!(cond, "{nl}  \"{op}\":{sp}{{");
                for (ki, c) in cs.iter().enumerate() {
                    if ki > 0 {
                        cond.push(',');
                        cond.push_str(sp);
                    }
                    json_str(&mut cond, c.key, esc);
                    cond.push(':');
                    cond.push_str(sp);
                    let value = |v: &str, out: &mut String| {
                        if c.raw_bool && (v == "true" || v == "false") {
                            out.push_str(v);
                        } else {
                            json_str(out, v, esc);
                        }
                    };
                    if c.values.len() == 1 && !c.as_list {
                        value(c.values[0], &mut cond);
                    } else {
                        cond.push('[');
                        for (i, v) in c.values.iter().enumerate() {
                            if i > 0 {
                                cond.push(',');
                            }
                            value(v, &mut cond);
                        }
                        cond.push(']');
                    }
                }
                cond.push('}');
            }
            cond.push('}');
            fields.push(format!("\"Condition\":{sp}{cond}"));
        }
        format!("{{{}}}", fields.join(&format!(",{nl}  ")))
    }
}

// ---------------------------------------------------------------------------------------
// Strategies: documents
// ---------------------------------------------------------------------------------------

fn some_of(pool: &'static [&'static str], max: usize) -> impl Strategy<Value = Vec<&'static str>> {
    (1..=max)
        .prop_flat_map(move |n| subsequence(pool, n))
        .prop_shuffle()
}

fn bools() -> impl Strategy<Value = Vec<&'static str>> {
    prop_oneof![
        Just(vec!["true"]),
        Just(vec!["false"]),
        Just(vec!["true", "false"])
    ]
}

fn cond() -> impl Strategy<Value = Cond> {
    let shape = (any::<bool>(), any::<bool>());
    let parts = prop_oneof![
        4 => (select(STRING_OPS), select(TAG_KEYS), some_of(STRING_VALUES, 2)),
        1 => (select(BOOL_OPS), Just("aws:SecureTransport"), bools()),
        1 => (select(IP_OPS), Just("aws:SourceIp"), some_of(IP_VALUES, 2)),
        1 => (Just("Null"), select(NULL_KEYS), select(&["true", "false"][..]).prop_map(|v| vec![v])),
        2 => (select(TAG_KEYS_OPS), Just("aws:TagKeys"), some_of(TAG_KEY_NAMES, 3)),
        1 => (select(NUMERIC_OPS), Just("aws:MultiFactorAuthAge"), select(&["3600", "60"][..]).prop_map(|v| vec![v])),
        1 => (select(DATE_OPS), Just("aws:CurrentTime"), select(&["2026-01-01T00:00:00Z", "2025-01-01"][..]).prop_map(|v| vec![v])),
        1 => (select(ARN_OPS), Just("aws:PrincipalArn"), some_of(ARN_VALUES, 2)),
    ];
    (parts, shape).prop_map(|((op, key, values), (as_list, raw_bool))| Cond {
        op,
        key,
        values,
        as_list,
        raw_bool,
    })
}

prop_compose! {
    fn stmt_with(deny: BoxedStrategy<bool>)(
        sid in any::<bool>(),
        deny in deny,
        not_action in prop::bool::weighted(0.15),
        actions in some_of(ACTIONS, 3),
        not_resource in prop::bool::weighted(0.15),
        resources in some_of(RESOURCES, 3),
        conditions in prop_oneof![2 => Just(Vec::new()), 3 => vec(cond(), 1..=3)],
        plain_strings in any::<bool>(),
    ) -> Stmt {
        Stmt { sid, deny, not_action, actions, not_resource, resources, conditions, plain_strings }
    }
}

fn stmt() -> impl Strategy<Value = Stmt> {
    stmt_with(prop::bool::weighted(0.3).boxed())
}

fn deny_stmt() -> impl Strategy<Value = Stmt> {
    stmt_with(Just(true).boxed())
}

fn allow_stmt() -> impl Strategy<Value = Stmt> {
    stmt_with(Just(false).boxed())
}

fn version() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![
        6 => Just(Some("2012-10-17")),
        1 => Just(Some("2008-10-17")),
        1 => Just(None),
    ]
}

prop_compose! {
    fn doc_with(version: BoxedStrategy<Option<&'static str>>)(
        version in version,
        id in option::weighted(0.2, select(IDS)),
        statements in vec(stmt(), 1..=4),
        lone_object in any::<bool>(),
        pretty in any::<bool>(),
        escape_slashes in prop::bool::weighted(0.1),
    ) -> Doc {
        Doc { version, id, statements, lone_object, pretty, escape_slashes }
    }
}

fn doc() -> impl Strategy<Value = Doc> {
    doc_with(version().boxed())
}

fn doc_of(stmt: Stmt) -> Doc {
    Doc {
        version: Some("2012-10-17"),
        id: None,
        statements: vec![stmt],
        lone_object: false,
        pretty: false,
        escape_slashes: false,
    }
}

// ---------------------------------------------------------------------------------------
// Strategies: principals, requests, policy sets
// ---------------------------------------------------------------------------------------

fn tags(
    keys: &'static [&'static str],
    values: &'static [&'static str],
) -> impl Strategy<Value = Tags> {
    vec((select(keys), select(values)), 0..=3).prop_map(|pairs| pairs.into_iter().collect())
}

fn principal() -> impl Strategy<Value = Principal> {
    let base = prop_oneof![
        Just(Principal::user(
            "arn:aws:iam::123456789012:user/TestUserA",
            "123456789012",
            "TestUserA",
            "AIDAEXAMPLEUSERID0001",
        )),
        Just(Principal::user(
            "arn:aws:iam::123456789012:user/alice",
            "123456789012",
            "alice",
            "AIDAEXAMPLEUSERID0002",
        )),
        Just(Principal::assumed_role(
            "arn:aws:sts::123456789012:assumed-role/OpsRole/alice",
            "123456789012",
            "AROAEXAMPLEROLEID0001:alice",
        )),
        Just(Principal::root("123456789012")),
    ];
    (
        base,
        tags(&["Project", "Env", "project"], &["test", "prod", "dev"]),
    )
        .prop_map(|(p, t)| p.with_tags(t))
}

/// An owned request: [`Request`] borrows, so the parts live here.
#[derive(Debug, Clone)]
struct Req {
    principal: Principal,
    action: &'static str,
    resource: &'static str,
    tags: Tags,
    context: Option<Context>,
}

impl Req {
    fn request(&self) -> Request<'_> {
        let req = Request::new(&self.principal, self.action, self.resource)
            .with_resource_tags(&self.tags);
        match &self.context {
            Some(c) => req.with_context(c),
            None => req,
        }
    }
}

fn context() -> impl Strategy<Value = Context> {
    (
        option::of(select(&["true", "false", "TRUE"][..])),
        option::of(select(
            &[
                "203.0.113.7",
                "10.1.2.3",
                "2001:db8::1",
                "192.0.2.1",
                "not-an-ip",
            ][..],
        )),
        option::of(subsequence(&["Project", "Env", "Owner"][..], 0..=3)),
        option::of(select(&["100", "7200", "x"][..])),
        option::of(select(
            &["2025-06-01T00:00:00Z", "2026-06-01T00:00:00Z"][..],
        )),
    )
        .prop_map(|(secure, ip, tag_keys, mfa_age, time)| {
            let mut c = Context::new();
            if let Some(v) = secure {
                c.insert("aws:SecureTransport", v);
            }
            if let Some(v) = ip {
                c.insert("aws:SourceIp", v);
            }
            if let Some(keys) = tag_keys {
                c.insert_values("aws:TagKeys", keys.into_iter().map(str::to_owned).collect());
            }
            if let Some(v) = mfa_age {
                c.insert("aws:MultiFactorAuthAge", v);
            }
            if let Some(v) = time {
                c.insert("aws:CurrentTime", v);
            }
            c
        })
}

fn request() -> impl Strategy<Value = Req> {
    (
        principal(),
        select(REQUEST_ACTIONS),
        select(REQUEST_RESOURCES),
        tags(&["Project", "Env", "project"], &["test", "prod", "dev"]),
        option::weighted(0.8, context()),
    )
        .prop_map(|(principal, action, resource, tags, context)| Req {
            principal,
            action,
            resource,
            tags,
            context,
        })
}

/// The policies of a principal, as documents.
#[derive(Debug, Clone)]
struct Scenario {
    identity: Vec<Doc>,
    boundary: Option<Doc>,
    scps: Vec<Doc>,
    session: Option<Doc>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        vec(doc(), 0..=3),
        option::weighted(0.25, doc()),
        prop_oneof![3 => Just(Vec::new()), 1 => vec(doc(), 1..=2)],
        option::weighted(0.2, doc()),
    )
        .prop_map(|(identity, boundary, scps, session)| Scenario {
            identity,
            boundary,
            scps,
            session,
        })
}

fn parse(doc: &Doc) -> Result<Policy, String> {
    let text = doc.to_json();
    Policy::parse(&text).map_err(|e| format!("generated document refused: {e}\n{text}"))
}

impl Scenario {
    fn build(&self) -> Result<PolicySet, String> {
        let mut set = PolicySet::new();
        for (i, d) in self.identity.iter().enumerate() {
            set.add_identity(&format!("identity{i}"), &parse(d)?);
        }
        if let Some(d) = &self.boundary {
            set.set_boundary("boundary", &parse(d)?);
        }
        for (i, d) in self.scps.iter().enumerate() {
            set.add_scp(&format!("scp{i}"), &parse(d)?);
        }
        if let Some(d) = &self.session {
            set.set_session_policy("session", &parse(d)?);
        }
        Ok(set)
    }

    fn describe(&self) -> String {
        let mut out = String::new();
        let mut put = |what: &str, d: &Doc| {
            let _ = writeln!(out, "{what}: {}", d.to_json());
        };
        for (i, d) in self.identity.iter().enumerate() {
            put(&format!("identity{i}"), d);
        }
        if let Some(d) = &self.boundary {
            put("boundary", d);
        }
        for (i, d) in self.scps.iter().enumerate() {
            put(&format!("scp{i}"), d);
        }
        if let Some(d) = &self.session {
            put("session", d);
        }
        out
    }
}

/// Where an extra statement goes.
#[derive(Debug, Clone, Copy)]
enum Target {
    NewIdentityPolicy,
    /// Appended to an existing identity policy (index taken modulo their number).
    IdentityPolicy(Index),
    Boundary,
    Scp(Index),
    Session,
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        2 => Just(Target::NewIdentityPolicy),
        3 => any::<Index>().prop_map(Target::IdentityPolicy),
        1 => Just(Target::Boundary),
        1 => any::<Index>().prop_map(Target::Scp),
        1 => Just(Target::Session),
    ]
}

impl Scenario {
    /// The scenario with `s` added at `target` (a layer that is absent gets a new identity
    /// policy instead, so that the statement always lands somewhere).
    fn with_statement(&self, target: Target, s: Stmt) -> Scenario {
        let mut out = self.clone();
        // Sids are written from the statement's index, so an appended one stays unique.
        let append = |d: &mut Doc, s: Stmt| d.statements.push(s);
        match target {
            Target::IdentityPolicy(i) if !out.identity.is_empty() => {
                let at = i.index(out.identity.len());
                append(&mut out.identity[at], s);
            }
            Target::Boundary if out.boundary.is_some() => {
                if let Some(d) = out.boundary.as_mut() {
                    append(d, s);
                }
            }
            Target::Scp(i) if !out.scps.is_empty() => {
                let at = i.index(out.scps.len());
                append(&mut out.scps[at], s);
            }
            Target::Session if out.session.is_some() => {
                if let Some(d) = out.session.as_mut() {
                    append(d, s);
                }
            }
            _ => out.identity.push(doc_of(s)),
        }
        out
    }
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(1024))]

    /// 1. A Deny statement, wherever it is added, never turns a deny into Allow, and an
    ///    explicit deny stays explicit.
    #[test]
    fn adding_a_deny_never_allows(sc in scenario(), req in request(), s in deny_stmt(), at in target()) {
        let before = sc.build().map_err(TestCaseError::fail)?;
        let more = sc.with_statement(at, s);
        let after = more.build().map_err(TestCaseError::fail)?;
        let (d0, d1) = (before.evaluate(&req.request()), after.evaluate(&req.request()));
        prop_assert!(
            d0.is_allowed() || !d1.is_allowed(),
            "a deny statement turned {d0:?} into {d1:?}\nbefore:\n{}after:\n{}request: {req:#?}",
            sc.describe(), more.describe()
        );
        prop_assert!(
            d0 != Decision::ExplicitDeny || d1 == Decision::ExplicitDeny,
            "a deny statement turned an explicit deny into {d1:?}\nbefore:\n{}after:\n{}request: {req:#?}",
            sc.describe(), more.describe()
        );
    }

    /// 2. An Allow statement, wherever it is added, never turns Allow into a deny, and never
    ///    lifts an explicit deny.
    #[test]
    fn adding_an_allow_never_denies(sc in scenario(), req in request(), s in allow_stmt(), at in target()) {
        let before = sc.build().map_err(TestCaseError::fail)?;
        let more = sc.with_statement(at, s);
        let after = more.build().map_err(TestCaseError::fail)?;
        let (d0, d1) = (before.evaluate(&req.request()), after.evaluate(&req.request()));
        prop_assert!(
            !d0.is_allowed() || d1.is_allowed(),
            "an allow statement turned Allow into {d1:?}\nbefore:\n{}after:\n{}request: {req:#?}",
            sc.describe(), more.describe()
        );
        prop_assert!(
            d0 != Decision::ExplicitDeny || d1 == Decision::ExplicitDeny,
            "an allow statement lifted an explicit deny ({d1:?})\nbefore:\n{}after:\n{}request: {req:#?}",
            sc.describe(), more.describe()
        );
    }

    /// 3. A permissions boundary (and likewise an SCP or a session policy) never widens
    ///    access.
    #[test]
    fn limiting_layers_never_widen(sc in scenario(), req in request(), limit in doc(), layer in 0..3_u8) {
        // `sc` is the set without the layer (a boundary or session policy replaces the
        // previous one, so it is compared with no such layer at all).
        let mut sc = sc;
        let mut limited = sc.clone();
        let what = match layer {
            0 => {
                sc.boundary = None;
                limited.boundary = Some(limit);
                "permissions boundary"
            }
            1 => {
                limited.scps.push(limit);
                "SCP"
            }
            _ => {
                sc.session = None;
                limited.session = Some(limit);
                "session policy"
            }
        };
        let before = sc.build().map_err(TestCaseError::fail)?;
        let after = limited.build().map_err(TestCaseError::fail)?;
        let (d0, d1) = (before.evaluate(&req.request()), after.evaluate(&req.request()));
        prop_assert!(
            d0.is_allowed() || !d1.is_allowed(),
            "setting a {what} turned {d0:?} into Allow\nbefore:\n{}after:\n{}request: {req:#?}",
            sc.describe(), limited.describe()
        );
        prop_assert!(
            d0 != Decision::ExplicitDeny || d1 == Decision::ExplicitDeny,
            "setting a {what} lifted an explicit deny ({d1:?})\nbefore:\n{}after:\n{}request: {req:#?}",
            sc.describe(), limited.describe()
        );
    }

    /// 4. Evaluation is deterministic, and the indexed `evaluate` agrees with `explain`.
    #[test]
    fn evaluate_is_deterministic_and_agrees_with_explain(sc in scenario(), req in request()) {
        let set = sc.build().map_err(TestCaseError::fail)?;
        let r = req.request();
        let first = set.evaluate(&r);
        let second = set.evaluate(&r);
        let copy = set.clone().evaluate(&r);
        let explanation = set.explain(&r);
        prop_assert!(
            first == second && first == copy,
            "evaluate is not deterministic: {first:?}, {second:?}, {copy:?}\npolicies:\n{}request: {req:#?}",
            sc.describe()
        );
        prop_assert!(
            explanation.decision == first,
            "explain says {:?} but evaluate says {first:?}\npolicies:\n{}request: {req:#?}\nexplanation:\n{explanation}",
            explanation.decision, sc.describe()
        );
        prop_assert_eq!(set.explain(&r), explanation.clone(), "explain is not deterministic");
        // The explanation is consistent with its own decision.
        let deciding = explanation.deciding();
        match first {
            Decision::Allow => prop_assert!(
                explanation.refusing_layer().is_none() && !deciding.is_empty(),
                "allow without an allowing statement:\n{explanation}"
            ),
            Decision::ExplicitDeny => prop_assert!(
                explanation.refusing_layer().is_some() && !deciding.is_empty(),
                "explicit deny without a denying statement:\n{explanation}"
            ),
            Decision::ImplicitDeny => prop_assert!(
                explanation.refusing_layer().is_some()
                    && explanation.aws_message().is_some()
                    && deciding.is_empty(),
                "implicit deny without a refusing layer:\n{explanation}"
            ),
        }
    }

    /// 4b. Action names are matched without regard to case, on both paths.
    #[test]
    fn action_case_does_not_matter(sc in scenario(), req in request()) {
        let set = sc.build().map_err(TestCaseError::fail)?;
        let upper = req.action.to_uppercase();
        let lower = req.action.to_lowercase();
        let r = req.request();
        let (mut ru, mut rl) = (r, r);
        ru.action = &upper;
        rl.action = &lower;
        let d = set.evaluate(&r);
        prop_assert!(
            set.evaluate(&ru) == d && set.evaluate(&rl) == d
                && set.explain(&ru).decision == d && set.explain(&rl).decision == d,
            "the action's case changed the decision\npolicies:\n{}request: {req:#?}",
            sc.describe()
        );
    }

    /// 5. parse → to_json → parse gives the same policy, for every version form, and
    ///    to_json is stable.
    #[test]
    fn to_json_round_trips(d in doc()) {
        let text = d.to_json();
        let p = Policy::parse(&text);
        prop_assert!(p.is_ok(), "generated document refused: {:?}\n{}", p.err(), text);
        let p = p.map_err(|e| TestCaseError::fail(e.to_string()))?;
        let written = p.to_json();
        let again = Policy::parse(&written);
        prop_assert!(again.is_ok(), "to_json output refused: {:?}\noriginal: {}\nwritten: {}", again.err(), text, written);
        let again = again.map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(again == p, "round trip changed the policy\noriginal: {}\nwritten: {}\n{:#?}\n{:#?}", text, written, p, again);
        prop_assert_eq!(again.to_json(), written.as_str(), "to_json is not stable");
        prop_assert!(
            policy_size(&written) <= policy_size(&text),
            "to_json grew the policy\noriginal: {}\nwritten: {}", text, written
        );
        prop_assert_eq!(again.version, d.version.map(|v| if v == "2012-10-17" {
            portcullis_iam::Version::V2012_10_17
        } else {
            portcullis_iam::Version::V2008_10_17
        }));
    }

    /// 5b. Round trip of versions spelled out: 2008-10-17 and no Version at all.
    #[test]
    fn to_json_round_trips_old_versions(d in doc_with(prop_oneof![Just(Some("2008-10-17")), Just(None)].boxed())) {
        let text = d.to_json();
        let p = Policy::parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let written = p.to_json();
        let again = Policy::parse(&written)
            .map_err(|e| TestCaseError::fail(format!("to_json output refused: {e}\n{written}")))?;
        prop_assert!(again == p, "round trip changed the policy\noriginal: {}\nwritten: {}", text, written);
        prop_assert_eq!(again.version, p.version);
    }
}

proptest! {
    #![proptest_config(config(1024))]

    /// 5c. Whatever the parser accepts (here: valid documents with random edits) reads back
    ///     equal from `to_json`.
    #[test]
    fn to_json_round_trips_mutated_documents(d in doc(), mutations in vec(mutation(), 1..6)) {
        let text = mutate(&d.to_json(), &mutations);
        if let Ok(p) = Policy::parse(&text) {
            let written = p.to_json();
            let again = Policy::parse(&written);
            prop_assert!(again.is_ok(), "to_json output refused: {:?}\noriginal: {}\nwritten: {}", again.err(), text, written);
            prop_assert!(again.ok() == Some(p), "round trip changed the policy\noriginal: {}\nwritten: {}", text, written);
            prop_assert!(
                policy_size(&written) <= policy_size(&text),
                "to_json grew the policy\noriginal: {}\nwritten: {}", text, written
            );
            for kind in KINDS {
                if let Ok(q) = Policy::parse_as(&text, kind) {
                    let written = q.to_json();
                    let again = Policy::parse_as(&written, kind);
                    prop_assert!(
                        again.is_ok(),
                        "to_json output refused as {:?}: {:?}\noriginal: {}\nwritten: {}",
                        kind, again.err(), text, written
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// 6. The parser never panics
// ---------------------------------------------------------------------------------------

const SNIPPETS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ",",
    ":",
    "\\",
    "\\u",
    "\\u0000",
    "\\u00e9",
    "\\ud800",
    "${",
    "}",
    "*",
    "?",
    "null",
    "true",
    "1e5",
    "-0.5",
    "[]",
    "{}",
    "\"Statement\"",
    "\"Effect\"",
    "\"Deny\"",
    "\"NotAction\"",
    "\"Condition\"",
    "\"StringLike\"",
    "\"Null\"",
    "\"ForAllValues:StringEquals\"",
    "\"${aws:username}\"",
    "${aws:PrincipalTag/x, 'd'}",
    "${}",
    "${a:b, none}",
    "arn:",
    "\u{e9}",
    "\u{100}",
    "\u{1F600}",
    "\n",
    "\t",
    "\u{0}",
];

#[derive(Debug, Clone)]
enum Mutation {
    Delete(Index, usize),
    Insert(Index, &'static str),
    Replace(Index, char),
    Truncate(Index),
    Duplicate(Index, usize),
    Swap(Index, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 1..8_usize).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<Index>(), select(SNIPPETS)).prop_map(|(i, s)| Mutation::Insert(i, s)),
        (any::<Index>(), any::<char>()).prop_map(|(i, c)| Mutation::Replace(i, c)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), 1..40_usize).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
    ]
}

fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for m in mutations {
        if chars.is_empty() {
            break;
        }
        let len = chars.len();
        match m {
            Mutation::Delete(i, n) => {
                let at = i.index(len);
                chars.drain(at..(at + n).min(len));
            }
            Mutation::Insert(i, s) => {
                let at = i.index(len + 1);
                chars.splice(at..at, s.chars());
            }
            Mutation::Replace(i, c) => chars[i.index(len)] = *c,
            Mutation::Truncate(i) => chars.truncate(i.index(len)),
            Mutation::Duplicate(i, n) => {
                let at = i.index(len);
                let piece: Vec<char> = chars[at..(at + n).min(len)].to_vec();
                chars.splice(at..at, piece);
            }
            Mutation::Swap(a, b) => chars.swap(a.index(len), b.index(len)),
        }
    }
    chars.into_iter().collect()
}

const KINDS: [PolicyKind; 4] = [
    PolicyKind::Inline,
    PolicyKind::Managed,
    PolicyKind::ServiceControl,
    PolicyKind::Session,
];

/// Everything the parser offers, on `text`; none of it may panic. When the text is a policy,
/// evaluation must not panic either and its two paths must agree.
fn exercise(text: &str, req: &Req) -> Result<(), TestCaseError> {
    for kind in KINDS {
        let v = validate(text, kind);
        let p = Policy::parse_as(text, kind);
        prop_assert_eq!(
            v.is_ok(),
            p.is_ok(),
            "validate and parse_as disagree for {:?}",
            kind
        );
        if let Err(errors) = v {
            prop_assert!(
                !errors.is_empty(),
                "validate failed with no error for {kind:?}:\n{text}"
            );
        }
    }
    if let Ok(p) = Policy::parse(text) {
        let mut set = PolicySet::new();
        set.add_identity("fuzzed", &p);
        set.set_boundary("fuzzed", &p);
        let r = req.request();
        let decision = set.evaluate(&r);
        let explanation = set.explain(&r);
        prop_assert!(
            explanation.decision == decision,
            "explain says {:?} but evaluate says {decision:?}\npolicy: {text}\nrequest: {req:#?}",
            explanation.decision
        );
        let _ = explanation.to_string();
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(2048))]

    /// 6a. Arbitrary strings.
    #[test]
    fn parser_never_panics_on_arbitrary_strings(text in any::<String>(), req in request()) {
        exercise(&text, &req)?;
    }

    /// 6b. Strings over JSON's own alphabet, which get further into the parser.
    #[test]
    fn parser_never_panics_on_json_like_strings(
        text in "[{}\\[\\]\":, \n\\\\a-zA-Z0-9*?$/\\-_.\u{e9}\u{100}]{0,120}",
        req in request(),
    ) {
        exercise(&text, &req)?;
    }

    /// 6c. Valid documents with random edits.
    #[test]
    fn parser_never_panics_on_mutated_documents(
        d in doc(),
        mutations in vec(mutation(), 1..6),
        req in request(),
    ) {
        let text = mutate(&d.to_json(), &mutations);
        exercise(&text, &req)?;
    }
}

// ---------------------------------------------------------------------------------------
// Engine bugs these properties found (round trip, property 5), fixed: each test is the
// minimal case, kept so they stay fixed.
// ---------------------------------------------------------------------------------------

fn assert_round_trip(text: &str) {
    let p = Policy::parse(text).unwrap_or_else(|e| panic!("the document itself is refused: {e}"));
    let written = p.to_json();
    let again = Policy::parse(&written).unwrap_or_else(|e| {
        panic!("to_json output refused: {e}\noriginal: {text}\nwritten: {written}")
    });
    assert!(
        again == p,
        "round trip changed the policy\noriginal: {text}\nwritten: {written}"
    );
}

/// A `\uXXXX` escape that spells a character outside U+0020..U+00FF is refused like the raw
/// character: IAM's limit is on the policy's characters, however they are written (so
/// `to_json`, which writes such characters raw, never meets one).
#[test]
fn escaped_character_above_u00ff_is_refused_like_a_raw_one() {
    let escaped = r#"{"Version":"2012-10-17","Id":"\u0100","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#;
    let e = Policy::parse(escaped).unwrap_err();
    assert_eq!(
        e.message,
        "Syntax errors in policy: character `\u{100}` (U+0100) is outside the allowed range (tab, line feed, carriage return, U+0020 to U+00FF)"
    );
    assert_eq!(e.pointer, "/Id");
}

/// Operator names are read without regard to case, so `StringEquals` and `stringequals`
/// are two blocks of one Condition; `to_json` used to write them as one block, where a
/// repeated key was refused as a duplicate element ...
#[test]
fn round_trip_operator_case_duplicate_key() {
    assert_round_trip(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:x":"a"},"stringequals":{"aws:x":"b"}}}}"#,
    );
}

/// ... and different keys came back in another order, so the policies were not equal.
#[test]
fn round_trip_operator_case_reorders_conditions() {
    assert_round_trip(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:x":"a"},"Bool":{"aws:y":"true"},"stringequals":{"aws:z":"b"}}}}"#,
    );
}

/// `to_json` used to write every Action, Resource and condition value as a list (and numbers
/// and booleans as strings), so a document under the size quota could come back over it.
#[test]
fn round_trip_near_the_size_quota() {
    let statement = r#"{"Effect":"Allow","Action":"ssm:StartSession","Resource":"*"}"#;
    let text = format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        vec![statement; 155].join(",")
    );
    assert!(portcullis_iam::policy_size(&text) <= PolicyKind::Inline.size_quota());
    assert_round_trip(&text);
}
