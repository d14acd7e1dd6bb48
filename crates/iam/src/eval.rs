//! Evaluation: the layers a request passes through, the decision, and its explanation.
//!
//! Architecture invariant: evaluation cannot fail. A value that cannot be read (a request
//! key that is not a number for a Numeric operator, say) simply does not match, and the
//! decision is always one of allow, explicit deny or implicit deny.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

use crate::operator::{Base, SetQualifier};
use crate::pattern::{Pattern, Syntax, Variable};
use crate::policy::{ArnPattern, Compiled, Condition, Effect, Policy, Statement};
use crate::request::{Request, Values};
use crate::value::{parse_bool, parse_date, parse_number};

/// The outcome of an authorization request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Allow,
    /// A statement with `"Effect": "Deny"` matched somewhere.
    ExplicitDeny,
    /// Nothing denied, but some layer had no statement that allowed.
    ImplicitDeny,
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        self == Decision::Allow
    }

    /// `allow`, `explicit_deny` or `implicit_deny`, as in the conformance files.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::ExplicitDeny => "explicit_deny",
            Decision::ImplicitDeny => "implicit_deny",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Decision::Allow => "allow",
            Decision::ExplicitDeny => "explicit deny",
            Decision::ImplicitDeny => "implicit deny",
        })
    }
}

/// The kinds of policy a request must pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LayerKind {
    ServiceControl,
    Identity,
    PermissionsBoundary,
    Session,
}

impl LayerKind {
    /// How AWS names this kind in an access-denied message.
    pub fn aws_name(self) -> &'static str {
        match self {
            LayerKind::ServiceControl => "service control policy",
            LayerKind::Identity => "identity-based policy",
            LayerKind::PermissionsBoundary => "permissions boundary",
            LayerKind::Session => "session policy",
        }
    }

    fn article(self) -> &'static str {
        match self {
            LayerKind::Identity => "an",
            _ => "a",
        }
    }
}

/// FNV-1a: the index keys are short action names, where SipHash's setup dominates.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type FnvMap<V> = HashMap<Box<str>, V, BuildHasherDefault<Fnv>>;

/// Statements of one layer, indexed by action so that a request only looks at statements
/// that can name its action.
#[derive(Debug, Clone, Default)]
struct ActionIndex {
    /// Statements whose every action and resource is literal (pattern 1 of the seed, at
    /// fleet scale: one statement per instance), by action and then exact resource ARN.
    exact_pairs: FnvMap<FnvMap<Vec<u32>>>,
    /// Exact action names (lower case).
    exact: FnvMap<Vec<u32>>,
    /// Statements with a wildcard action inside one service (`ssm:Describe*`), by service.
    by_service: FnvMap<Vec<u32>>,
    /// `NotAction` statements and patterns whose service part has a wildcard (`*`).
    always: Vec<u32>,
}

impl ActionIndex {
    fn add(&mut self, at: u32, statement: &Statement) {
        fn push(list: &mut Vec<u32>, at: u32) {
            if list.last() != Some(&at) {
                list.push(at);
            }
        }
        if statement.action.negated {
            push(&mut self.always, at);
            return;
        }
        let literal_resources: Option<Vec<&str>> = if statement.resource.negated {
            None
        } else {
            statement
                .resource
                .patterns
                .iter()
                .map(Pattern::literal)
                .collect()
        };
        let literal_actions: Option<Vec<&str>> = statement
            .action
            .patterns
            .iter()
            .map(Pattern::literal)
            .collect();
        if let (Some(actions), Some(resources)) = (literal_actions, literal_resources) {
            for action in actions {
                let by_resource = self.exact_pairs.entry(action.into()).or_default();
                for resource in &resources {
                    push(by_resource.entry((*resource).into()).or_default(), at);
                }
            }
            return;
        }
        for pattern in &statement.action.patterns {
            if let Some(name) = pattern.literal() {
                push(self.exact.entry(name.into()).or_default(), at);
            } else if let Some((service, _)) = pattern.literal_prefix().split_once(':') {
                push(self.by_service.entry(service.into()).or_default(), at);
            } else {
                push(&mut self.always, at);
            }
        }
    }

    fn candidates<'a>(
        &'a self,
        action: &str,
        service: &str,
        resource: &str,
    ) -> impl Iterator<Item = u32> + 'a {
        let pairs = self
            .exact_pairs
            .get(action)
            .and_then(|by_resource| by_resource.get(resource))
            .map_or(&[][..], Vec::as_slice);
        let exact = self.exact.get(action).map_or(&[][..], Vec::as_slice);
        let by_service = self.by_service.get(service).map_or(&[][..], Vec::as_slice);
        pairs
            .iter()
            .chain(exact)
            .chain(by_service)
            .chain(&self.always)
            .copied()
    }
}

/// One layer: all identity policies together, the permissions boundary, one SCP, or the
/// session policy.
#[derive(Debug, Clone)]
struct Layer {
    kind: LayerKind,
    policy_names: Vec<String>,
    statements: Vec<Statement>,
    /// For each statement: which policy it came from and its index there.
    origin: Vec<(usize, usize)>,
    index: ActionIndex,
}

impl Layer {
    fn new(kind: LayerKind) -> Layer {
        Layer {
            kind,
            policy_names: Vec::new(),
            statements: Vec::new(),
            origin: Vec::new(),
            index: ActionIndex::default(),
        }
    }

    fn add(&mut self, name: &str, policy: &Policy) {
        let policy_at = self.policy_names.len();
        self.policy_names.push(name.to_owned());
        for (i, s) in policy.statements.iter().enumerate() {
            let at = u32::try_from(self.statements.len()).unwrap_or(u32::MAX);
            self.index.add(at, s);
            self.statements.push(s.clone());
            self.origin.push((policy_at, i));
        }
    }

    /// Whether some statement allows, and whether some statement denies (the scan stops at
    /// the first deny).
    fn scan(&self, req: &Request, action: &str) -> (bool, bool) {
        let mut allowed = false;
        for at in self
            .index
            .candidates(action, service_of(action), req.resource)
        {
            let Some(s) = self.statements.get(at as usize) else {
                continue;
            };
            if allowed && s.effect == Effect::Allow {
                continue;
            }
            if check(s, req, action) == Outcome::Matched {
                if s.effect == Effect::Deny {
                    return (allowed, true);
                }
                allowed = true;
            }
        }
        (allowed, false)
    }
}

fn service_of(action: &str) -> &str {
    action.split_once(':').map_or("", |(s, _)| s)
}

/// The policies that apply to a principal, ready to evaluate requests.
#[derive(Debug, Clone)]
pub struct PolicySet {
    identity: Layer,
    boundary: Option<Layer>,
    scps: Vec<Layer>,
    session: Option<Layer>,
}

impl Default for PolicySet {
    fn default() -> Self {
        PolicySet::new()
    }
}

impl PolicySet {
    pub fn new() -> PolicySet {
        PolicySet {
            identity: Layer::new(LayerKind::Identity),
            boundary: None,
            scps: Vec::new(),
            session: None,
        }
    }

    /// Adds an identity policy (inline or managed; any of them may allow).
    pub fn add_identity(&mut self, name: &str, policy: &Policy) {
        self.identity.add(name, policy);
    }

    /// Sets the permissions boundary: when present it must allow too.
    pub fn set_boundary(&mut self, name: &str, policy: &Policy) {
        let mut layer = Layer::new(LayerKind::PermissionsBoundary);
        layer.add(name, policy);
        self.boundary = Some(layer);
    }

    /// Adds a service control policy; every SCP added must allow.
    pub fn add_scp(&mut self, name: &str, policy: &Policy) {
        let mut layer = Layer::new(LayerKind::ServiceControl);
        layer.add(name, policy);
        self.scps.push(layer);
    }

    /// Sets the session policy: it limits, never grants.
    pub fn set_session_policy(&mut self, name: &str, policy: &Policy) {
        let mut layer = Layer::new(LayerKind::Session);
        layer.add(name, policy);
        self.session = Some(layer);
    }

    fn layers(&self) -> impl Iterator<Item = &Layer> {
        self.scps
            .iter()
            .chain(std::iter::once(&self.identity))
            .chain(&self.boundary)
            .chain(&self.session)
    }

    /// Decides a request. Explicit deny anywhere wins; otherwise every layer present must allow.
    pub fn evaluate(&self, req: &Request) -> Decision {
        let mut buf = [0_u8; 128];
        let lowered;
        let action = match lower_ascii(req.action, &mut buf) {
            Some(a) => a,
            None => {
                lowered = req.action.to_lowercase();
                &lowered
            }
        };
        let mut all_allow = true;
        for layer in self.layers() {
            let (allowed, denied) = layer.scan(req, action);
            if denied {
                return Decision::ExplicitDeny;
            }
            all_allow &= allowed;
        }
        if all_allow {
            Decision::Allow
        } else {
            Decision::ImplicitDeny
        }
    }

    /// Decides a request and says why: every statement of every layer, and what it did.
    pub fn explain(&self, req: &Request) -> Explanation {
        let action = req.action.to_lowercase();
        let mut layers = Vec::new();
        for layer in self.layers() {
            let mut report = LayerReport {
                kind: layer.kind,
                allowed: false,
                denied: false,
                statements: Vec::new(),
            };
            for (s, &(policy_at, index)) in layer.statements.iter().zip(&layer.origin) {
                let outcome = check(s, req, &action);
                if outcome == Outcome::Matched {
                    match s.effect {
                        Effect::Allow => report.allowed = true,
                        Effect::Deny => report.denied = true,
                    }
                }
                report.statements.push(StatementReport {
                    policy: layer
                        .policy_names
                        .get(policy_at)
                        .cloned()
                        .unwrap_or_default(),
                    index,
                    sid: s.sid.clone(),
                    effect: s.effect,
                    pointer: s.pointer.clone(),
                    outcome: describe(s, req, outcome),
                });
            }
            layers.push(report);
        }
        let decision = if layers.iter().any(|l| l.denied) {
            Decision::ExplicitDeny
        } else if layers.iter().all(|l| l.allowed) {
            Decision::Allow
        } else {
            Decision::ImplicitDeny
        };
        Explanation {
            decision,
            action: req.action.to_owned(),
            resource: req.resource.to_owned(),
            principal_arn: req.principal.arn().to_owned(),
            layers,
        }
    }
}

/// Lower-cases an ASCII string into `buf` without allocating.
fn lower_ascii<'b>(s: &str, buf: &'b mut [u8; 128]) -> Option<&'b str> {
    let dst = buf.get_mut(..s.len())?;
    if !s.is_ascii() {
        return None;
    }
    for (d, b) in dst.iter_mut().zip(s.bytes()) {
        *d = b.to_ascii_lowercase();
    }
    std::str::from_utf8(dst).ok()
}

/// What a statement did with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Matched,
    ActionNotMatched,
    ResourceNotMatched,
    /// The condition at this index was false.
    ConditionFailed(usize),
}

/// `action` is the request's action in lower case.
fn check(s: &Statement, req: &Request, action: &str) -> Outcome {
    let no_vars = |_: &Variable| None;
    let action_hit = s
        .action
        .patterns
        .iter()
        .any(|p| p.matches(action, &no_vars));
    if action_hit == s.action.negated {
        return Outcome::ActionNotMatched;
    }
    let resolve = resolver(req);
    let resource_hit = s
        .resource
        .patterns
        .iter()
        .any(|p| p.matches(req.resource, &resolve));
    if resource_hit == s.resource.negated {
        return Outcome::ResourceNotMatched;
    }
    for (i, c) in s.conditions.iter().enumerate() {
        if !condition_holds(c, req) {
            return Outcome::ConditionFailed(i);
        }
    }
    Outcome::Matched
}

fn resolver<'p>(req: &'p Request<'p>) -> impl Fn(&'p Variable) -> Option<&'p str> + 'p {
    move |var| variable_value(req, var)
}

/// A policy variable's value: the key's single value, or the default when the key is missing.
fn variable_value<'p>(req: &Request<'p>, var: &'p Variable) -> Option<&'p str> {
    match req.lookup(&var.key) {
        Some(values) => values.single(),
        None => var.default.as_deref(),
    }
}

fn condition_holds(c: &Condition, req: &Request) -> bool {
    let values = req.lookup(&c.key);
    if let Compiled::Null(flags) = &c.compiled {
        // `"Null": {"k": "true"}` holds when the key is absent.
        let absent = values.is_none();
        return flags.contains(&absent);
    }
    let base = c.operator.base;
    let Some(values) = values else {
        return c.operator.if_exists
            || match c.operator.set {
                SetQualifier::Single => base.is_negated(),
                SetQualifier::ForAnyValue => false,
                SetQualifier::ForAllValues => true,
            };
    };
    let negated = base.is_negated();
    let satisfies = |v: &str| matches_any(c, v, req) != negated;
    match c.operator.set {
        SetQualifier::Single if negated => !values.iter().any(|v| matches_any(c, v, req)),
        SetQualifier::Single | SetQualifier::ForAnyValue => values.iter().any(satisfies),
        SetQualifier::ForAllValues => values.iter().all(satisfies),
    }
}

/// Whether the request value `v` matches any of the condition's values under the operator's
/// positive form (`StringNotEquals` asks `StringEquals` and negates the answer).
fn matches_any(c: &Condition, v: &str, req: &Request) -> bool {
    let resolve = resolver(req);
    let base = c.operator.base;
    match &c.compiled {
        Compiled::Strings(patterns) => match base {
            Base::StringEqualsIgnoreCase | Base::StringNotEqualsIgnoreCase => {
                let v = v.to_lowercase();
                patterns.iter().any(|p| {
                    p.resolve(&resolve)
                        .is_some_and(|want| want.to_lowercase() == v)
                })
            }
            _ => patterns.iter().any(|p| p.matches(v, &resolve)),
        },
        Compiled::Numbers(wanted) => parse_number(v).is_some_and(|n| {
            wanted.iter().any(|&w| match base {
                Base::NumericLessThan => n < w,
                Base::NumericLessThanEquals => n <= w,
                Base::NumericGreaterThan => n > w,
                Base::NumericGreaterThanEquals => n >= w,
                _ => n == w,
            })
        }),
        Compiled::Dates(wanted) => parse_date(v).is_some_and(|d| {
            wanted.iter().any(|&w| match base {
                Base::DateLessThan => d < w,
                Base::DateLessThanEquals => d <= w,
                Base::DateGreaterThan => d > w,
                Base::DateGreaterThanEquals => d >= w,
                _ => d == w,
            })
        }),
        Compiled::Bools(wanted) => parse_bool(v).is_some_and(|b| wanted.contains(&b)),
        Compiled::Binary(wanted) => wanted.iter().any(|w| w == v),
        Compiled::Networks(nets) => v
            .trim()
            .parse::<IpAddr>()
            .is_ok_and(|ip| nets.iter().any(|n| n.contains(ip))),
        Compiled::Arns(patterns) => patterns.iter().any(|p| arn_matches(p, v, &resolve)),
        Compiled::Null(_) => false,
    }
}

/// `Arn*` operators compare the six ARN fields one by one, so a `*` never crosses a colon
/// between fields (the last field, the resource, may itself hold colons).
fn arn_matches<'p>(
    p: &'p ArnPattern,
    v: &str,
    resolve: &impl Fn(&'p Variable) -> Option<&'p str>,
) -> bool {
    let wanted: Vec<Pattern>;
    let fields = match &p.fields {
        Some(fields) => fields,
        None => {
            let Some(text) = p.whole.resolve(resolve) else {
                return false;
            };
            let syntax = Syntax {
                wildcards: true,
                variables: false,
            };
            let Some(parsed) = text
                .splitn(6, ':')
                .map(|f| Pattern::parse(f, syntax).ok())
                .collect::<Option<Vec<_>>>()
            else {
                return false;
            };
            wanted = parsed;
            &wanted
        }
    };
    let mut got = v.splitn(6, ':');
    if v.split(':').count() < 6 {
        return false;
    }
    let no_vars = |_: &Variable| None;
    let last = fields.len().saturating_sub(1);
    for (i, field) in fields.iter().enumerate() {
        let text = if i == last {
            // A short pattern's last field is matched against the rest of the ARN.
            let rest: Vec<&str> = got.by_ref().collect();
            rest.join(":")
        } else {
            match got.next() {
                Some(t) => t.to_owned(),
                None => return false,
            }
        };
        if !field.matches(&text, &no_vars) {
            return false;
        }
    }
    true
}

/// What a statement did, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatementOutcome {
    Matched,
    ActionNotMatched,
    ResourceNotMatched,
    ConditionFailed {
        operator: String,
        key: String,
        /// The request's values for the key; `None` when the key is missing.
        request: Option<Vec<String>>,
        /// The policy's values with variables substituted (`None` for a variable with no value).
        policy: Vec<Option<String>>,
    },
}

fn describe(s: &Statement, req: &Request, outcome: Outcome) -> StatementOutcome {
    match outcome {
        Outcome::Matched => StatementOutcome::Matched,
        Outcome::ActionNotMatched => StatementOutcome::ActionNotMatched,
        Outcome::ResourceNotMatched => StatementOutcome::ResourceNotMatched,
        Outcome::ConditionFailed(i) => {
            let Some(c) = s.conditions.get(i) else {
                return StatementOutcome::ConditionFailed {
                    operator: String::new(),
                    key: String::new(),
                    request: None,
                    policy: Vec::new(),
                };
            };
            let resolve = resolver(req);
            let policy = match &c.compiled {
                Compiled::Strings(patterns) => {
                    patterns.iter().map(|p| p.resolve(&resolve)).collect()
                }
                Compiled::Arns(patterns) => {
                    patterns.iter().map(|p| p.whole.resolve(&resolve)).collect()
                }
                _ => c.values.iter().cloned().map(Some).collect(),
            };
            StatementOutcome::ConditionFailed {
                operator: c.operator.to_string(),
                key: c.key_name.clone(),
                request: req.lookup(&c.key).map(Values::to_vec),
                policy,
            }
        }
    }
}

/// One statement in an explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementReport {
    pub policy: String,
    /// Index of the statement in its policy.
    pub index: usize,
    pub sid: Option<String>,
    pub effect: Effect,
    pub pointer: String,
    pub outcome: StatementOutcome,
}

impl StatementReport {
    /// `policy "name" /Statement/1 (Sid Foo)`.
    pub fn label(&self) -> String {
        match &self.sid {
            Some(sid) => format!("policy \"{}\" {} (Sid {sid})", self.policy, self.pointer),
            None => format!("policy \"{}\" {}", self.policy, self.pointer),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerReport {
    pub kind: LayerKind,
    pub allowed: bool,
    pub denied: bool,
    pub statements: Vec<StatementReport>,
}

/// A decision with the statements that made it and why the others did not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub decision: Decision,
    pub action: String,
    pub resource: String,
    pub principal_arn: String,
    pub layers: Vec<LayerReport>,
}

impl Explanation {
    /// The statements that decided: the matching denies for an explicit deny, the matching
    /// allows for an allow, none for an implicit deny.
    pub fn deciding(&self) -> Vec<&StatementReport> {
        let want = match self.decision {
            Decision::ExplicitDeny => Effect::Deny,
            Decision::Allow => Effect::Allow,
            Decision::ImplicitDeny => return Vec::new(),
        };
        self.layers
            .iter()
            .flat_map(|l| &l.statements)
            .filter(|s| s.effect == want && s.outcome == StatementOutcome::Matched)
            .collect()
    }

    /// The layer that refused, for a deny.
    pub fn refusing_layer(&self) -> Option<LayerKind> {
        match self.decision {
            Decision::Allow => None,
            Decision::ExplicitDeny => self.layers.iter().find(|l| l.denied).map(|l| l.kind),
            Decision::ImplicitDeny => self.layers.iter().find(|l| !l.allowed).map(|l| l.kind),
        }
    }

    /// AWS's access-denied text, e.g. `User: arn:... is not authorized to perform:
    /// ssm:StartSession on resource: arn:... because no identity-based policy allows the
    /// ssm:StartSession action`. `None` when the request is allowed.
    pub fn aws_message(&self) -> Option<String> {
        let layer = self.refusing_layer()?;
        let reason = match self.decision {
            Decision::ExplicitDeny => format!(
                "with an explicit deny in {} {}",
                layer.article(),
                layer.aws_name()
            ),
            _ => format!(
                "because no {} allows the {} action",
                layer.aws_name(),
                self.action
            ),
        };
        Some(format!(
            "User: {} is not authorized to perform: {} on resource: {} {reason}",
            self.principal_arn, self.action, self.resource
        ))
    }
}

fn quote_list(values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("`{v}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for StatementOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatementOutcome::Matched => f.write_str("matched"),
            StatementOutcome::ActionNotMatched => f.write_str("action did not match"),
            StatementOutcome::ResourceNotMatched => f.write_str("resource did not match"),
            StatementOutcome::ConditionFailed {
                operator,
                key,
                request,
                policy,
            } => {
                write!(f, "condition {operator} {key} failed: ")?;
                match request {
                    None => f.write_str("the request has no such key")?,
                    Some(v) if v.is_empty() => f.write_str("the request has an empty set")?,
                    Some(v) => write!(f, "request has {}", quote_list(v))?,
                }
                let wanted: Vec<String> = policy
                    .iter()
                    .map(|p| {
                        p.clone()
                            .unwrap_or_else(|| "(a variable with no value)".into())
                    })
                    .collect();
                write!(f, ", policy wants {}", quote_list(&wanted))
            }
        }
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.decision {
            Decision::Allow => {
                writeln!(f, "allow: {} on {}", self.action, self.resource)?;
            }
            Decision::ExplicitDeny | Decision::ImplicitDeny => {
                writeln!(
                    f,
                    "{}: {}",
                    self.decision,
                    self.aws_message().unwrap_or_default()
                )?;
            }
        }
        for s in self.deciding() {
            let verb = if s.effect == Effect::Deny {
                "denied by"
            } else {
                "allowed by"
            };
            writeln!(f, "  {verb} {}", s.label())?;
        }
        for layer in &self.layers {
            let state = match (layer.denied, layer.allowed) {
                (true, _) => "denies",
                (false, true) => "allows",
                (false, false) => "does not allow",
            };
            writeln!(f, "{} {state}:", layer.kind.aws_name())?;
            for s in &layer.statements {
                writeln!(f, "  {} {}: {}", s.effect.as_str(), s.label(), s.outcome)?;
            }
        }
        Ok(())
    }
}
