//! Policy documents: reading them (with IAM's validation and errors), and writing them back.
//!
//! A [`Policy`] is only ever built from a document that passed validation, so every pattern,
//! number, date and network in it is already compiled for the evaluator.

use std::collections::HashSet;
use std::fmt;

use crate::error::{ErrorCode, PolicyError, PolicyWarning};
use crate::json::{self, Kind, Member, Span, Value};
use crate::key::Key;
use crate::operator::{Family, Operator, OperatorError};
use crate::pattern::{Pattern, PatternError, Syntax};
use crate::value::{is_base64, parse_bool, parse_date, parse_number, IpNet};

/// The policy language version. Only 2012-10-17 has policy variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    V2008_10_17,
    V2012_10_17,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V2008_10_17 => "2008-10-17",
            Version::V2012_10_17 => "2012-10-17",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    Allow,
    Deny,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "Allow",
            Effect::Deny => "Deny",
        }
    }
}

/// Where a document is used; decides IAM's version rule and size quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// An inline policy on a user, group or role. One document may be as large as a role's
    /// inline quota (10,240 characters); the totals per user (2,048) and per group (5,120)
    /// are checked where policies are stored, with [`policy_size`].
    Inline,
    /// A customer managed policy, also used as a permissions boundary: must say 2012-10-17.
    Managed,
    /// A service control policy (5,120 characters).
    ServiceControl,
    /// A session policy passed when assuming a role (2,048 characters).
    Session,
}

impl PolicyKind {
    /// IAM's size quota in characters, whitespace not counted.
    pub fn size_quota(self) -> usize {
        match self {
            PolicyKind::Inline => 10_240,
            PolicyKind::Session => 2048,
            PolicyKind::Managed => 6144,
            PolicyKind::ServiceControl => 5120,
        }
    }
}

/// A validated policy document.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `None` when the document has no `Version` (which means 2008-10-17).
    pub version: Option<Version>,
    pub id: Option<String>,
    pub statements: Vec<Statement>,
    /// Whether `Statement` was a list (not a lone object); `to_json` writes the same shape so
    /// the size IAM counts does not change.
    pub(crate) statement_list: bool,
}

impl PartialEq for Policy {
    fn eq(&self, other: &Self) -> bool {
        self.version == other.version
            && self.id == other.id
            && self.statements.len() == other.statements.len()
            && self
                .statements
                .iter()
                .zip(&other.statements)
                .all(|(a, b)| a.same_meaning(b))
    }
}

#[derive(Debug, Clone)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub action: Actions,
    pub resource: Resources,
    pub conditions: Vec<Condition>,
    /// JSON pointer of this statement (`/Statement/0`, or `/Statement` for a lone object).
    pub pointer: String,
    pub line: u32,
    pub column: u32,
}

impl Statement {
    fn same_meaning(&self, other: &Statement) -> bool {
        self.sid == other.sid
            && self.effect == other.effect
            && self.action.negated == other.action.negated
            && self.action.items == other.action.items
            && self.resource.negated == other.resource.negated
            && self.resource.items == other.resource.items
            && self.conditions.len() == other.conditions.len()
            && self.conditions.iter().zip(&other.conditions).all(|(a, b)| {
                a.operator == b.operator && a.key_name == b.key_name && a.values == b.values
            })
    }
}

/// `Action` or `NotAction`.
#[derive(Debug, Clone)]
pub struct Actions {
    pub negated: bool,
    pub items: Vec<String>,
    /// Written as a list rather than a lone string.
    pub(crate) list: bool,
    /// Lower-case patterns: action names are matched without regard to case.
    pub(crate) patterns: Vec<Pattern>,
}

/// `Resource` or `NotResource`.
#[derive(Debug, Clone)]
pub struct Resources {
    pub negated: bool,
    pub items: Vec<String>,
    /// Written as a list rather than a lone string.
    pub(crate) list: bool,
    pub(crate) patterns: Vec<Pattern>,
}

/// One `operator: { key: values }` entry of a `Condition` block.
#[derive(Debug, Clone)]
pub struct Condition {
    pub operator: Operator,
    /// The operator as written (names are read without regard to case, and two spellings
    /// are two blocks of the document).
    pub operator_name: String,
    /// The key as written in the policy.
    pub key_name: String,
    pub(crate) key: Key,
    pub values: Vec<String>,
    /// Written as a list rather than a lone value.
    pub(crate) list: bool,
    /// For each value, whether it was a JSON number or boolean rather than a string.
    pub(crate) literal: Vec<bool>,
    pub(crate) compiled: Compiled,
}

/// Condition values parsed for their operator's family.
#[derive(Debug, Clone)]
pub(crate) enum Compiled {
    Strings(Vec<Pattern>),
    Numbers(Vec<f64>),
    Dates(Vec<i64>),
    Bools(Vec<bool>),
    Binary(Vec<String>),
    Networks(Vec<IpNet>),
    Arns(Vec<ArnPattern>),
    Null(Vec<bool>),
}

/// An ARN pattern for the `Arn*` operators, which compare the six ARN fields one by one.
#[derive(Debug, Clone)]
pub(crate) struct ArnPattern {
    /// The whole value, used when it has variables (fields are split after substitution).
    pub whole: Pattern,
    /// The fields, when the value has no variables.
    pub fields: Option<Vec<Pattern>>,
}

/// A validated policy and what validation found that is legal but suspicious.
#[derive(Debug, Clone)]
pub struct Validated {
    pub policy: Policy,
    pub warnings: Vec<PolicyWarning>,
}

impl Policy {
    /// Reads an identity policy with the rules for inline policies.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        Policy::parse_as(text, PolicyKind::Inline)
    }

    /// Reads a policy with the rules of `kind`; the first problem found is returned.
    pub fn parse_as(text: &str, kind: PolicyKind) -> Result<Policy, PolicyError> {
        match validate(text, kind) {
            Ok(v) => Ok(v.policy),
            Err(mut errors) => Err(if errors.is_empty() {
                PolicyError::malformed("Syntax errors in policy.", "", Span::default())
            } else {
                errors.swap_remove(0)
            }),
        }
    }

    /// The policy's effective version (a missing `Version` means 2008-10-17).
    pub fn effective_version(&self) -> Version {
        self.version.unwrap_or(Version::V2008_10_17)
    }

    /// Writes the policy as compact JSON that reads back to an equal policy, in the shapes
    /// the document used (lone values stay lone), so its size as IAM counts it never grows.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{");
        if let Some(v) = self.version {
            out.push_str("\"Version\":");
            json::write_string(&mut out, v.as_str());
            out.push(',');
        }
        if let Some(id) = &self.id {
            out.push_str("\"Id\":");
            json::write_string(&mut out, id);
            out.push(',');
        }
        out.push_str("\"Statement\":");
        if self.statement_list {
            out.push('[');
        }
        for (i, s) in self.statements.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_statement(&mut out, s);
        }
        if self.statement_list {
            out.push(']');
        }
        out.push('}');
        out
    }
}

fn write_statement(out: &mut String, s: &Statement) {
    out.push('{');
    if let Some(sid) = &s.sid {
        out.push_str("\"Sid\":");
        json::write_string(out, sid);
        out.push(',');
    }
    out.push_str("\"Effect\":");
    json::write_string(out, s.effect.as_str());
    out.push_str(if s.action.negated {
        ",\"NotAction\":"
    } else {
        ",\"Action\":"
    });
    write_list(out, &s.action.items, s.action.list, &[]);
    out.push_str(if s.resource.negated {
        ",\"NotResource\":"
    } else {
        ",\"Resource\":"
    });
    write_list(out, &s.resource.items, s.resource.list, &[]);
    if !s.conditions.is_empty() {
        out.push_str(",\"Condition\":{");
        // Blocks in order of first appearance, each with its keys in document order.
        let mut operators: Vec<&str> = Vec::new();
        for c in &s.conditions {
            if !operators.contains(&c.operator_name.as_str()) {
                operators.push(&c.operator_name);
            }
        }
        for (oi, op) in operators.iter().enumerate() {
            if oi > 0 {
                out.push(',');
            }
            json::write_string(out, op);
            out.push_str(":{");
            let entries = s.conditions.iter().filter(|c| c.operator_name == *op);
            for (ki, c) in entries.enumerate() {
                if ki > 0 {
                    out.push(',');
                }
                json::write_string(out, &c.key_name);
                out.push(':');
                write_list(out, &c.values, c.list, &c.literal);
            }
            out.push('}');
        }
        out.push('}');
    }
    out.push('}');
}

/// Writes a lone value or a list; `literal[i]` marks a number or boolean written bare.
fn write_list(out: &mut String, items: &[String], list: bool, literal: &[bool]) {
    if list {
        out.push('[');
    }
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if literal.get(i).copied().unwrap_or(false) {
            out.push_str(item);
        } else {
            json::write_string(out, item);
        }
    }
    if list {
        out.push(']');
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

/// IAM counts a policy's size in characters without whitespace.
pub fn policy_size(text: &str) -> usize {
    text.chars().filter(|c| !c.is_whitespace()).count()
}

/// Validates a document as IAM does for `kind`, returning every error found (in document
/// order), or the policy with warnings.
pub fn validate(text: &str, kind: PolicyKind) -> Result<Validated, Vec<PolicyError>> {
    let mut v = Validator {
        errors: Vec::new(),
        warnings: Vec::new(),
        version: Version::V2008_10_17,
    };
    if let Some(err) = check_characters(text) {
        return Err(vec![err]);
    }
    let size = policy_size(text);
    if size > kind.size_quota() {
        return Err(vec![PolicyError {
            code: ErrorCode::LimitExceeded,
            message: format!(
                "Cannot exceed quota for PolicySize: {} (this document has {size} characters without whitespace)",
                kind.size_quota()
            ),
            pointer: String::new(),
            line: 1,
            column: 1,
        }]);
    }
    let doc = match json::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            return Err(vec![PolicyError::malformed(
                format!("Syntax errors in policy: {}", e.message),
                "",
                e.span,
            )])
        }
    };
    if let Some(err) = check_decoded_strings(&doc, "") {
        return Err(vec![err]);
    }
    let policy = v.document(&doc, kind);
    match policy {
        Some(policy) if v.errors.is_empty() => Ok(Validated {
            policy,
            warnings: v.warnings,
        }),
        _ => Err(v.errors),
    }
}

/// IAM accepts tab, line feed, carriage return and U+0020 to U+00FF.
fn check_characters(text: &str) -> Option<PolicyError> {
    let mut line = 1;
    let mut column = 0;
    for c in text.chars() {
        if c == '\n' {
            line += 1;
            column = 0;
            continue;
        }
        column += 1;
        let ok = matches!(c, '\t' | '\r') || ('\u{20}'..='\u{ff}').contains(&c);
        if !ok {
            return Some(PolicyError::malformed(
                format!(
                    "Syntax errors in policy: character `{}` (U+{:04X}) is outside the allowed range (tab, line feed, carriage return, U+0020 to U+00FF)",
                    c.escape_debug(),
                    c as u32
                ),
                "",
                Span {
                    offset: 0,
                    line,
                    column,
                },
            ));
        }
    }
    None
}

/// The same character rule for what `\uXXXX` escapes spell: IAM's limit is on the
/// characters of the policy, however they are written.
fn check_decoded_strings(value: &Value, pointer: &str) -> Option<PolicyError> {
    let bad = |s: &str| {
        s.chars()
            .find(|&c| !(matches!(c, '\t' | '\r' | '\n') || ('\u{20}'..='\u{ff}').contains(&c)))
    };
    let refuse = |c: char, pointer: &str, span: Span| {
        PolicyError::malformed(
            format!(
                "Syntax errors in policy: character `{}` (U+{:04X}) is outside the allowed range (tab, line feed, carriage return, U+0020 to U+00FF)",
                c.escape_debug(),
                c as u32
            ),
            pointer,
            span,
        )
    };
    match &value.kind {
        Kind::String(s) => bad(s).map(|c| refuse(c, pointer, value.span)),
        Kind::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| check_decoded_strings(item, &format!("{pointer}/{i}"))),
        Kind::Object(members) => members.iter().find_map(|m| {
            let p = child(pointer, &m.key);
            bad(&m.key)
                .map(|c| refuse(c, &p, m.key_span))
                .or_else(|| check_decoded_strings(&m.value, &p))
        }),
        _ => None,
    }
}

struct Validator {
    errors: Vec<PolicyError>,
    warnings: Vec<PolicyWarning>,
    version: Version,
}

/// Appends a member name to a JSON pointer, escaping as RFC 6901 says.
fn child(pointer: &str, name: &str) -> String {
    format!("{pointer}/{}", name.replace('~', "~0").replace('/', "~1"))
}

impl Validator {
    fn error(&mut self, message: impl Into<String>, pointer: &str, span: Span) {
        self.errors
            .push(PolicyError::malformed(message, pointer, span));
    }

    fn warn(&mut self, message: impl Into<String>, pointer: &str, span: Span) {
        self.warnings.push(PolicyWarning {
            message: message.into(),
            pointer: pointer.to_owned(),
            line: span.line,
            column: span.column,
        });
    }

    /// Members of an object, refusing duplicates.
    fn members<'v>(&mut self, value: &'v Value, pointer: &str, what: &str) -> Option<&'v [Member]> {
        let Kind::Object(members) = &value.kind else {
            self.error(
                format!(
                    "Syntax errors in policy: {what} must be an object, not {}",
                    value.kind.type_name()
                ),
                pointer,
                value.span,
            );
            return None;
        };
        let mut seen = HashSet::new();
        for m in members {
            if !seen.insert(m.key.as_str()) {
                self.error(
                    format!("Syntax errors in policy: duplicate element `{}`", m.key),
                    &child(pointer, &m.key),
                    m.key_span,
                );
            }
        }
        Some(members)
    }

    fn string<'v>(&mut self, value: &'v Value, pointer: &str, what: &str) -> Option<&'v str> {
        match &value.kind {
            Kind::String(s) => Some(s),
            other => {
                self.error(
                    format!(
                        "Syntax errors in policy: {what} must be a string, not {}",
                        other.type_name()
                    ),
                    pointer,
                    value.span,
                );
                None
            }
        }
    }

    /// A string or a non-empty array of strings.
    fn string_list<'v>(
        &mut self,
        value: &'v Value,
        pointer: &str,
        what: &str,
    ) -> Option<Vec<(&'v str, String, Span)>> {
        match &value.kind {
            Kind::String(s) => Some(vec![(s.as_str(), pointer.to_owned(), value.span)]),
            Kind::Array(items) if items.is_empty() => {
                self.error(
                    format!("Syntax errors in policy: {what} must not be an empty list"),
                    pointer,
                    value.span,
                );
                None
            }
            Kind::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{pointer}/{i}");
                    if let Some(s) = self.string(item, &p, what) {
                        out.push((s, p, item.span));
                    }
                }
                (out.len() == items.len()).then_some(out)
            }
            other => {
                self.error(
                    format!(
                        "Syntax errors in policy: {what} must be a string or a list of strings, not {}",
                        other.type_name()
                    ),
                    pointer,
                    value.span,
                );
                None
            }
        }
    }

    fn document(&mut self, doc: &Value, kind: PolicyKind) -> Option<Policy> {
        let members = self.members(doc, "", "the policy document")?;
        let mut version = None;
        let mut id = None;
        let mut statement = None;
        for m in members {
            let p = child("", &m.key);
            match m.key.as_str() {
                "Version" => {
                    if let Some(s) = self.string(&m.value, &p, "Version") {
                        match s {
                            "2012-10-17" => version = Some(Version::V2012_10_17),
                            "2008-10-17" => version = Some(Version::V2008_10_17),
                            other => self.error(
                                format!("Syntax errors in policy: invalid Version `{other}` (use 2012-10-17)"),
                                &p,
                                m.value.span,
                            ),
                        }
                    }
                }
                "Id" => id = self.string(&m.value, &p, "Id").map(str::to_owned),
                "Statement" => statement = Some((m, p)),
                other => self.unknown_element(other, &p, m.key_span),
            }
        }
        if kind != PolicyKind::Inline
            && kind != PolicyKind::Session
            && version != Some(Version::V2012_10_17)
        {
            let span = members
                .iter()
                .find(|m| m.key == "Version")
                .map_or(doc.span, |m| m.value.span);
            self.error(
                "Policy document must be version 2012-10-17 or greater.",
                "/Version",
                span,
            );
        }
        self.version = version.unwrap_or(Version::V2008_10_17);
        if version.is_none() {
            self.warn(
                "the document has no Version, so it is read as 2008-10-17, where policy variables such as ${aws:username} are plain text; add \"Version\": \"2012-10-17\"",
                "",
                doc.span,
            );
        }
        let Some((member, pointer)) = statement else {
            self.error(
                "Syntax errors in policy: missing required element `Statement`",
                "",
                doc.span,
            );
            return None;
        };
        let statements = match &member.value.kind {
            Kind::Object(_) => vec![self.statement(&member.value, &pointer)],
            Kind::Array(items) if items.is_empty() => {
                self.error(
                    "Syntax errors in policy: Statement must not be an empty list",
                    &pointer,
                    member.value.span,
                );
                return None;
            }
            Kind::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, s)| self.statement(s, &format!("{pointer}/{i}")))
                .collect(),
            other => {
                self.error(
                    format!(
                        "Syntax errors in policy: Statement must be an object or a list of objects, not {}",
                        other.type_name()
                    ),
                    &pointer,
                    member.value.span,
                );
                return None;
            }
        };
        let statements: Option<Vec<Statement>> = statements.into_iter().collect();
        let statements = statements?;
        let mut sids = HashSet::new();
        for s in &statements {
            if let Some(sid) = &s.sid {
                if !sids.insert(sid.as_str()) {
                    self.errors.push(PolicyError {
                        code: ErrorCode::MalformedPolicyDocument,
                        message: format!(
                            "Statement IDs (SID) in a single policy must be unique: `{sid}` is used more than once"
                        ),
                        pointer: format!("{}/Sid", s.pointer),
                        line: s.line,
                        column: s.column,
                    });
                }
            }
        }
        Some(Policy {
            version,
            id,
            statements,
            statement_list: matches!(member.value.kind, Kind::Array(_)),
        })
    }

    fn unknown_element(&mut self, name: &str, pointer: &str, span: Span) {
        let message = match name {
            "Principal" | "NotPrincipal" => format!(
                "Has prohibited field {name}: an identity policy applies to the principal it is attached to"
            ),
            _ => format!("Syntax errors in policy: unknown element `{name}`"),
        };
        self.error(message, pointer, span);
    }

    fn statement(&mut self, value: &Value, pointer: &str) -> Option<Statement> {
        let members = self.members(value, pointer, "a statement")?;
        let errors_before = self.errors.len();
        let mut sid = None;
        let mut effect = None;
        let mut action: Option<(bool, &Member)> = None;
        let mut resource: Option<(bool, &Member)> = None;
        let mut condition = None;
        for m in members {
            let p = child(pointer, &m.key);
            match m.key.as_str() {
                "Sid" => {
                    if let Some(s) = self.string(&m.value, &p, "Sid") {
                        if !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
                            self.error(
                                format!("Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*: `{s}`"),
                                &p,
                                m.value.span,
                            );
                        }
                        sid = Some(s.to_owned());
                    }
                }
                "Effect" => {
                    if let Some(s) = self.string(&m.value, &p, "Effect") {
                        match s {
                            "Allow" => effect = Some(Effect::Allow),
                            "Deny" => effect = Some(Effect::Deny),
                            other => self.error(
                                format!("Syntax errors in policy: invalid Effect `{other}` (use Allow or Deny)"),
                                &p,
                                m.value.span,
                            ),
                        }
                    }
                }
                "Action" | "NotAction" => {
                    if action.is_some() {
                        self.error(
                            "Syntax errors in policy: a statement cannot have both Action and NotAction",
                            &p,
                            m.key_span,
                        );
                    }
                    action = Some((m.key == "NotAction", m));
                }
                "Resource" | "NotResource" => {
                    if resource.is_some() {
                        self.error(
                            "Syntax errors in policy: a statement cannot have both Resource and NotResource",
                            &p,
                            m.key_span,
                        );
                    }
                    resource = Some((m.key == "NotResource", m));
                }
                "Condition" => condition = Some((m, p)),
                other => self.unknown_element(other, &p, m.key_span),
            }
        }
        if effect.is_none() && !members.iter().any(|m| m.key == "Effect") {
            self.error(
                "Syntax errors in policy: missing required element `Effect`",
                pointer,
                value.span,
            );
        }
        let actions = match action {
            None => {
                self.error(
                    "Policy statement must contain actions.",
                    pointer,
                    value.span,
                );
                None
            }
            Some((negated, m)) => self.actions(negated, m, pointer),
        };
        let resources = match resource {
            None => {
                self.error(
                    "Policy statement must contain resources.",
                    pointer,
                    value.span,
                );
                None
            }
            Some((negated, m)) => self.resources(negated, m, pointer),
        };
        let conditions = match condition {
            None => Some(Vec::new()),
            Some((m, p)) => self.conditions(&m.value, &p),
        };
        if self.errors.len() > errors_before {
            return None;
        }
        Some(Statement {
            sid,
            effect: effect?,
            action: actions?,
            resource: resources?,
            conditions: conditions?,
            pointer: pointer.to_owned(),
            line: value.span.line,
            column: value.span.column,
        })
    }

    fn actions(&mut self, negated: bool, m: &Member, pointer: &str) -> Option<Actions> {
        let p = child(pointer, &m.key);
        let items = self.string_list(&m.value, &p, &m.key)?;
        let mut out = Actions {
            negated,
            items: Vec::new(),
            list: matches!(m.value.kind, Kind::Array(_)),
            patterns: Vec::new(),
        };
        for (text, p, span) in items {
            if text != "*" {
                let Some((vendor, name)) = text.split_once(':') else {
                    self.error(
                        format!("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.: `{text}`"),
                        &p,
                        span,
                    );
                    continue;
                };
                let vendor_ok = !vendor.is_empty()
                    && vendor
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-');
                let name_ok = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'*' || b == b'?');
                if !vendor_ok {
                    self.error(
                        format!(
                            "Syntax errors in policy: invalid vendor `{vendor}` in action `{text}`"
                        ),
                        &p,
                        span,
                    );
                    continue;
                }
                if !name_ok {
                    self.error(
                        format!("Syntax errors in policy: invalid action name in `{text}` (letters, digits, `*` and `?` only)"),
                        &p,
                        span,
                    );
                    continue;
                }
            }
            let syntax = Syntax {
                wildcards: true,
                variables: false,
            };
            match Pattern::parse(&text.to_ascii_lowercase(), syntax) {
                Ok(pattern) => out.patterns.push(pattern),
                Err(_) => continue,
            }
            out.items.push(text.to_owned());
        }
        Some(out)
    }

    fn resources(&mut self, negated: bool, m: &Member, pointer: &str) -> Option<Resources> {
        let p = child(pointer, &m.key);
        let items = self.string_list(&m.value, &p, &m.key)?;
        let mut out = Resources {
            negated,
            items: Vec::new(),
            list: matches!(m.value.kind, Kind::Array(_)),
            patterns: Vec::new(),
        };
        let syntax = Syntax {
            wildcards: true,
            variables: self.version == Version::V2012_10_17,
        };
        for (text, p, span) in items {
            if text != "*" && !looks_like_arn(text) {
                self.error(
                    format!("Resource {text} must be in ARN format or \"*\"."),
                    &p,
                    span,
                );
                continue;
            }
            match Pattern::parse(text, syntax) {
                Ok(pattern) => {
                    self.check_variables(&pattern, &p, span);
                    out.patterns.push(pattern);
                    out.items.push(text.to_owned());
                }
                Err(e) => self.pattern_error(e, text, &p, span),
            }
        }
        if self.version == Version::V2008_10_17 && out.items.iter().any(|i| i.contains("${")) {
            self.warn(
                "policy variables are plain text in policy version 2008-10-17; add \"Version\": \"2012-10-17\" to use them",
                &p,
                m.value.span,
            );
        }
        Some(out)
    }

    fn pattern_error(&mut self, e: PatternError, text: &str, pointer: &str, span: Span) {
        let what = match e {
            PatternError::UnterminatedVariable => "a policy variable `${` is not closed with `}`",
            PatternError::EmptyVariable => "a policy variable `${}` names no key",
            PatternError::BadDefault => "a policy variable's default value must be in single quotes, as in ${aws:PrincipalTag/team, 'none'}",
        };
        self.error(
            format!("Syntax errors in policy: {what} in `{text}`"),
            pointer,
            span,
        );
    }

    fn check_variables(&mut self, pattern: &Pattern, pointer: &str, span: Span) {
        for var in pattern.variables() {
            if !var.key.name().contains(':') {
                self.error(
                    format!("Syntax errors in policy: policy variable `${{{}}}` is not a condition key (keys look like aws:username)", var.key.name()),
                    pointer,
                    span,
                );
            }
        }
    }

    fn conditions(&mut self, value: &Value, pointer: &str) -> Option<Vec<Condition>> {
        let operators = self.members(value, pointer, "Condition")?;
        let mut out = Vec::new();
        for om in operators {
            let op_pointer = child(pointer, &om.key);
            let operator = match Operator::parse(&om.key) {
                Ok(op) => Some(op),
                Err(OperatorError::Unknown) => {
                    self.error(
                        format!(
                            "Syntax errors in policy: unknown condition operator `{}`",
                            om.key
                        ),
                        &op_pointer,
                        om.key_span,
                    );
                    None
                }
                Err(OperatorError::NullIfExists) => {
                    self.error(
                        format!(
                            "Syntax errors in policy: the Null operator has no IfExists form: `{}`",
                            om.key
                        ),
                        &op_pointer,
                        om.key_span,
                    );
                    None
                }
            };
            let Some(keys) = self.members(&om.value, &op_pointer, "a condition operator's value")
            else {
                continue;
            };
            if keys.is_empty() {
                self.error(
                    format!(
                        "Syntax errors in policy: condition operator `{}` has no keys",
                        om.key
                    ),
                    &op_pointer,
                    om.value.span,
                );
            }
            let Some(operator) = operator else { continue };
            for km in keys {
                let p = child(&op_pointer, &km.key);
                if let Some(c) = self.condition(operator, &om.key, km, &p) {
                    out.push(c);
                }
            }
        }
        Some(out)
    }

    fn condition(
        &mut self,
        operator: Operator,
        operator_name: &str,
        m: &Member,
        pointer: &str,
    ) -> Option<Condition> {
        let key_name = m.key.as_str();
        if !key_name
            .split_once(':')
            .is_some_and(|(v, k)| !v.is_empty() && !k.is_empty())
        {
            self.error(
                format!("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.: condition key `{key_name}`"),
                pointer,
                m.key_span,
            );
            return None;
        }
        let values = self.condition_values(&m.value, pointer)?;
        let base = operator.base;
        let variables = self.version == Version::V2012_10_17;
        let errors_before = self.errors.len();
        let bad = |v: &mut Self, what: &str, text: &str, p: &str, span: Span| {
            v.error(
                format!("Syntax errors in policy: `{text}` is not {what} for {operator}"),
                p,
                span,
            );
        };
        let compiled = match base.family() {
            Family::String | Family::Arn => {
                let syntax = Syntax {
                    wildcards: base.uses_wildcards(),
                    variables: variables && base.takes_variables(),
                };
                let mut patterns = Vec::new();
                let mut arns = Vec::new();
                for (text, p, span) in &values {
                    match Pattern::parse(text, syntax) {
                        Ok(pattern) => {
                            self.check_variables(&pattern, p, *span);
                            if base.family() == Family::Arn {
                                arns.push(arn_pattern(text, pattern, syntax));
                            } else {
                                patterns.push(pattern);
                            }
                        }
                        Err(e) => {
                            self.pattern_error(e, text, p, *span);
                        }
                    }
                }
                if base.family() == Family::Arn {
                    Compiled::Arns(arns)
                } else {
                    Compiled::Strings(patterns)
                }
            }
            Family::Numeric => Compiled::Numbers(
                values
                    .iter()
                    .filter_map(|(t, p, s)| {
                        parse_number(t).or_else(|| {
                            bad(self, "a number", t, p, *s);
                            None
                        })
                    })
                    .collect(),
            ),
            Family::Date => Compiled::Dates(
                values
                    .iter()
                    .filter_map(|(t, p, s)| {
                        parse_date(t).or_else(|| {
                            bad(self, "a date (ISO 8601 or epoch seconds)", t, p, *s);
                            None
                        })
                    })
                    .collect(),
            ),
            Family::Bool => Compiled::Bools(
                values
                    .iter()
                    .filter_map(|(t, p, s)| {
                        parse_bool(t).or_else(|| {
                            bad(self, "true or false", t, p, *s);
                            None
                        })
                    })
                    .collect(),
            ),
            Family::Binary => Compiled::Binary(
                values
                    .iter()
                    .filter_map(|(t, p, s)| {
                        if is_base64(t) {
                            Some(t.clone())
                        } else {
                            bad(self, "base64", t, p, *s);
                            None
                        }
                    })
                    .collect(),
            ),
            Family::Ip => Compiled::Networks(
                values
                    .iter()
                    .filter_map(|(t, p, s)| {
                        IpNet::parse(t).or_else(|| {
                            bad(self, "an IPv4 or IPv6 address or CIDR range", t, p, *s);
                            None
                        })
                    })
                    .collect(),
            ),
            Family::Null => {
                let mut flags = Vec::new();
                for (t, p, s) in &values {
                    if variables && t.contains("${") {
                        self.error(
                            format!("Syntax errors in policy: policy variables cannot be used with the Null operator: `{t}`"),
                            p,
                            *s,
                        );
                    } else if let Some(b) = parse_bool(t) {
                        flags.push(b);
                    } else {
                        bad(self, "true or false", t, p, *s);
                    }
                }
                Compiled::Null(flags)
            }
        };
        if self.errors.len() > errors_before {
            return None;
        }
        let is_literal = |v: &Value| matches!(v.kind, Kind::Number(_) | Kind::Bool(_));
        let (list, literal) = match &m.value.kind {
            Kind::Array(items) => (true, items.iter().map(is_literal).collect()),
            _ => (false, vec![is_literal(&m.value)]),
        };
        Some(Condition {
            operator,
            operator_name: operator_name.to_owned(),
            list,
            literal,
            key_name: key_name.to_owned(),
            key: Key::parse(key_name),
            values: values.into_iter().map(|(t, _, _)| t).collect(),
            compiled,
        })
    }

    /// Condition values: a string, number or boolean, or a non-empty list of them.
    fn condition_values(
        &mut self,
        value: &Value,
        pointer: &str,
    ) -> Option<Vec<(String, String, Span)>> {
        let scalar = |v: &Value| match &v.kind {
            Kind::String(s) => Some(s.clone()),
            Kind::Number(n) => Some(n.clone()),
            Kind::Bool(b) => Some(b.to_string()),
            _ => None,
        };
        let type_error = |v: &mut Self, val: &Value, p: &str| {
            v.error(
                format!(
                    "Syntax errors in policy: a condition value must be a string, number or boolean, not {}",
                    val.kind.type_name()
                ),
                p,
                val.span,
            );
        };
        match &value.kind {
            Kind::Array(items) if items.is_empty() => {
                self.error(
                    "Syntax errors in policy: a condition key must have at least one value",
                    pointer,
                    value.span,
                );
                None
            }
            Kind::Array(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{pointer}/{i}");
                    match scalar(item) {
                        Some(s) => out.push((s, p, item.span)),
                        None => type_error(self, item, &p),
                    }
                }
                (out.len() == items.len()).then_some(out)
            }
            _ => match scalar(value) {
                Some(s) => Some(vec![(s, pointer.to_owned(), value.span)]),
                None => {
                    type_error(self, value, pointer);
                    None
                }
            },
        }
    }
}

/// IAM's check for a Resource: `arn:` and enough fields, or a wildcard that can stand for them.
fn looks_like_arn(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("arn:") else {
        return false;
    };
    // Colons inside `${...}` belong to a variable name, not to the ARN.
    let mut colons = 0;
    let mut in_var = false;
    let bytes = rest.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'$' if bytes.get(i + 1) == Some(&b'{') => in_var = true,
            b'}' if in_var => in_var = false,
            b':' if !in_var => colons += 1,
            _ => {}
        }
    }
    colons >= 4 || rest.contains('*')
}

/// Splits an `Arn*` value into its six fields when it has no variables.
fn arn_pattern(text: &str, whole: Pattern, syntax: Syntax) -> ArnPattern {
    let fields = if whole.has_variables() {
        None
    } else {
        // No variables, so no `${...}` holds a colon; escapes such as `${*}` stay literal.
        text.splitn(6, ':')
            .map(|f| Pattern::parse(f, syntax).ok())
            .collect::<Option<Vec<_>>>()
    };
    ArnPattern { whole, fields }
}
