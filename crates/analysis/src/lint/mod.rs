//! The policy linter: documents that are valid IAM but probably not what was meant, with the
//! Session Manager pitfalls seen in the field first.
//!
//! Each finding has a stable code (`PC001`...; [`RULES`] lists them), a severity, the JSON
//! pointer, line and column of what it is about (positions as the engine's validator
//! reports them), a message and a fix. [`lint`] looks at one document; [`lint_together`]
//! treats several as the policies of one principal, which the cross-statement rules
//! (self-tagging, shadowed and redundant statements) need.

use std::fmt;

use portcullis_iam::json::{self, Kind, Value};
use portcullis_iam::Policy;

mod rules;

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth knowing; not necessarily wrong.
    Info,
    /// Probably grants or refuses something other than what was meant.
    Warning,
    /// Certainly wrong.
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A lint rule: its stable code, a short name, its severity and what it looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub code: &'static str,
    pub name: &'static str,
    pub severity: Severity,
    pub summary: &'static str,
}

macro_rules! rules {
    ($($id:ident = $code:literal, $name:literal, $sev:ident, $summary:literal;)*) => {
        $(pub(crate) const $id: Rule = Rule {
            code: $code,
            name: $name,
            severity: Severity::$sev,
            summary: $summary,
        };)*
        /// Every rule, in code order.
        pub const RULES: &[Rule] = &[$($id),*];
    };
}

rules! {
    USERNAME_IN_SESSION = "PC001", "username-in-session", Warning,
        "`${aws:username}` names sessions: roles and federated users have no aws:username, so they can never match";
    SELF_TAGGING = "PC002", "self-tagging", Warning,
        "StartSession is granted by a resource tag that the same principal may set (ec2:CreateTags, ssm:AddTagsToResource)";
    TAG_CONDITION_WITH_DOCUMENTS = "PC003", "tag-condition-with-documents", Warning,
        "a resource-tag condition in a statement that also lists session documents never matches the documents";
    FOREIGN_SERVICE_TAG_KEY = "PC004", "foreign-service-tag-key", Warning,
        "`SERVICE:ResourceTag/K` with actions of another service (e.g. ec2:ResourceTag on ssm:StartSession) is never present";
    NO_DOCUMENT_ACCESS_CHECK = "PC005", "no-document-access-check", Warning,
        "StartSession on any session document without ssm:SessionDocumentAccessCheck: a looser document can be chosen";
    FOR_ALL_VALUES_SINGLE = "PC006", "forallvalues-single-valued", Warning,
        "ForAllValues on a single-valued key is true when the key is absent, so the Allow also applies without it";
    UNKNOWN_ACTION = "PC007", "unknown-action", Warning,
        "an action that the service (ssm, ssmmessages, ec2, iam, sts, logs) does not have";
    UNKNOWN_KEY = "PC008", "unknown-condition-key", Warning,
        "a condition key or policy variable that AWS does not document for the service (or globally)";
    VARIABLE_IN_KEY = "PC009", "variable-in-condition-key", Warning,
        "a policy variable in a condition key (Null included) is never substituted: the key is read literally";
    WILDCARD_SESSION_RESOURCE = "PC010", "wildcard-session-resource", Warning,
        "`Resource: \"*\"` on a session action covers every node, document and session";
    UNGUARDED_VARIABLE = "PC011", "unguarded-variable", Warning,
        "a policy variable in a negated condition or NotResource of an Allow, without a Null guard: a missing key makes it match";
    ALLOW_NOT_ACTION = "PC012", "allow-notaction", Warning,
        "Allow with NotAction grants every other action, of every service, including ones added later";
    REDUNDANT = "PC013", "redundant-statement", Info,
        "a statement whose every request another statement with the same effect already covers";
    SHADOWED = "PC014", "shadowed-by-deny", Warning,
        "an Allow statement that a Deny statement always overrides, so it never allows anything";
}

/// One finding in one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub code: &'static str,
    pub name: &'static str,
    pub severity: Severity,
    /// The document's name, as given to [`lint`].
    pub document: String,
    /// JSON pointer of what the finding is about.
    pub pointer: String,
    pub line: u32,
    pub column: u32,
    pub message: String,
    pub fix: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}: {} (at {}, line {}, column {}); fix: {}",
            self.severity,
            self.code,
            self.name,
            self.message,
            if self.pointer.is_empty() {
                "the document"
            } else {
                &self.pointer
            },
            self.line,
            self.column,
            self.fix
        )
    }
}

/// A validated document to lint, with its text (for positions) and a name for findings.
#[derive(Debug, Clone, Copy)]
pub struct Document<'a> {
    pub name: &'a str,
    pub text: &'a str,
    pub policy: &'a Policy,
}

/// Lints one document.
pub fn lint(doc: &Document<'_>) -> Vec<Finding> {
    lint_together(std::slice::from_ref(doc))
}

/// Lints documents that apply to one principal together: every per-document rule on each,
/// and the rules that look across statements over all of them. Findings come in document
/// order, then by position.
pub fn lint_together(docs: &[Document<'_>]) -> Vec<Finding> {
    let located: Vec<Located> = docs.iter().map(|d| Located::new(*d)).collect();
    let mut out = rules::run(&located);
    let order = |name: &str| {
        docs.iter()
            .position(|d| d.name == name)
            .unwrap_or(usize::MAX)
    };
    out.sort_by(|a, b| {
        (order(&a.document), a.line, a.column, a.code).cmp(&(
            order(&b.document),
            b.line,
            b.column,
            b.code,
        ))
    });
    out.dedup();
    out
}

/// A document with its JSON tree, to turn pointers into lines and columns.
pub(crate) struct Located<'a> {
    pub doc: Document<'a>,
    tree: Option<Value>,
}

impl<'a> Located<'a> {
    fn new(doc: Document<'a>) -> Located<'a> {
        Located {
            doc,
            tree: json::parse(doc.text).ok(),
        }
    }

    /// The value at a JSON pointer.
    pub fn value(&self, pointer: &str) -> Option<&Value> {
        json::at_pointer(self.tree.as_ref()?, pointer)
    }

    /// Pointer of item `i` of a string-or-list member (`/Statement/0/Resource` + `/1`).
    pub fn item(&self, member: &str, i: usize) -> String {
        match self.value(member).map(|v| &v.kind) {
            Some(Kind::Array(_)) => format!("{member}/{i}"),
            _ => member.to_owned(),
        }
    }

    /// A finding at `pointer` (line and column of its value; `fallback` when it has none).
    pub fn finding(
        &self,
        rule: Rule,
        pointer: String,
        fallback: (u32, u32),
        message: String,
        fix: String,
    ) -> Finding {
        let (line, column) = self
            .value(&pointer)
            .map_or(fallback, |v| (v.span.line, v.span.column));
        Finding {
            code: rule.code,
            name: rule.name,
            severity: rule.severity,
            document: self.doc.name.to_owned(),
            pointer,
            line,
            column,
            message,
            fix,
        }
    }
}

/// Escapes a member name for a JSON pointer (RFC 6901).
pub(crate) fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}
