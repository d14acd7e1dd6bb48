//! IAM Access Analyzer's `ValidatePolicy` (REST-JSON, `POST /policy/validation`), answered
//! by the engine's validator and Portcullis's linter, so `aws accessanalyzer
//! validate-policy --endpoint-url ...` (or boto3) lints policies against this server.
//!
//! Findings keep AWS's shape: `findingType` (ERROR, SECURITY_WARNING, WARNING,
//! SUGGESTION), an `issueCode`, `findingDetails`, and `locations` with the JSON path and a
//! span whose lines count from 1 and columns and offsets from 0, as AWS's do.

use portcullis_analysis::{lint, Document, Finding, Severity};
use portcullis_core::{Caller, Error, Service};
use portcullis_iam::json::{self, Kind, Span};
use portcullis_iam::{validate, PolicyKind};
use serde_json::{json, Map, Value};

/// AWS's page for the policy grammar, linked from every finding.
const LEARN_MORE: &str =
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html";
const POLICY_TYPES: &str =
    "[IDENTITY_POLICY, RESOURCE_POLICY, SERVICE_CONTROL_POLICY, RESOURCE_CONTROL_POLICY]";

/// Runs the operation at `method path`; returns its name and the reply body.
pub fn handle(
    svc: &Service,
    caller: &Caller,
    method: &str,
    path: &str,
    query: &str,
    body: &[u8],
) -> (String, Result<Value, Error>) {
    if method != "POST" || path != "/policy/validation" {
        let e = Error::new(
            404,
            "UnknownOperationException",
            format!("`{method} {path}` is not an IAM Access Analyzer operation this server serves (it serves POST /policy/validation, ValidatePolicy)"),
        );
        return ("unknown".to_owned(), Err(e));
    }
    let result = svc
        .authorize(caller, "access-analyzer:ValidatePolicy", "*", &[], &[])
        .and_then(|()| validate_policy(query, body));
    ("ValidatePolicy".to_owned(), result)
}

fn invalid(field: &str, message: impl std::fmt::Display) -> Error {
    Error::new(
        400,
        "ValidationException",
        format!("1 validation error detected: Value at '{field}' failed to satisfy constraint: {message}"),
    )
}

fn validate_policy(query: &str, body: &[u8]) -> Result<Value, Error> {
    let input: Map<String, Value> = serde_json::from_slice(body).map_err(|e| {
        Error::new(
            400,
            "ValidationException",
            format!("The request body is not a JSON object: {e}"),
        )
    })?;
    let text = match input.get("policyDocument") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(invalid("policyDocument", "Member must be a string")),
        None => return Err(invalid("policyDocument", "Member must not be null")),
    };
    let kind = match input.get("policyType").and_then(Value::as_str) {
        Some("IDENTITY_POLICY") => PolicyKind::Inline,
        Some("SERVICE_CONTROL_POLICY") => PolicyKind::ServiceControl,
        Some(other @ ("RESOURCE_POLICY" | "RESOURCE_CONTROL_POLICY")) => {
            return Err(Error::new(
                400,
                "ValidationException",
                format!("policyType {other} is not supported by this server: it checks identity policies and service control policies"),
            ))
        }
        Some(other) => {
            return Err(invalid(
                "policyType",
                format!("'{other}' is not one of {POLICY_TYPES}"),
            ))
        }
        None => return Err(invalid("policyType", "Member must not be null")),
    };
    let (max_results, start) = paging(query)?;

    let tree = json::parse(text).ok();
    let mut findings = Vec::new();
    match validate(text, kind) {
        Err(errors) => {
            for e in errors {
                let at = Location::of(text, tree.as_ref(), &e.pointer, e.line, e.column);
                findings.push(finding(
                    "ERROR",
                    &screaming(e.code.as_str()),
                    &e.message,
                    at,
                ));
            }
        }
        Ok(valid) => {
            for w in &valid.warnings {
                let at = Location::of(text, tree.as_ref(), &w.pointer, w.line, w.column);
                findings.push(finding("WARNING", "POLICY_WARNING", &w.message, at));
            }
            let doc = Document {
                name: "policyDocument",
                text,
                policy: &valid.policy,
            };
            for f in lint(&doc) {
                let at = Location::of(text, tree.as_ref(), &f.pointer, f.line, f.column);
                let details = format!("{} ({}). Fix: {}", f.message, f.code, f.fix);
                findings.push(finding(finding_type(&f), &screaming(f.name), &details, at));
            }
        }
    }
    let total = findings.len();
    let page: Vec<Value> = findings.into_iter().skip(start).take(max_results).collect();
    let mut out = Map::new();
    out.insert("findings".into(), Value::Array(page));
    let next = start.saturating_add(max_results);
    if next < total {
        out.insert("nextToken".into(), json!(next.to_string()));
    }
    Ok(Value::Object(out))
}

/// `maxResults` and `nextToken` come in the query string.
fn paging(query: &str) -> Result<(usize, usize), Error> {
    let (mut max, mut start) = (usize::MAX, 0);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "maxResults" => {
                max =
                    v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                        invalid("maxResults", "Member must be a positive integer")
                    })?;
            }
            "nextToken" => {
                start = v
                    .parse()
                    .map_err(|_| invalid("nextToken", "Member is not a token this server gave"))?;
            }
            _ => {}
        }
    }
    Ok((max, start))
}

/// Rules whose finding means the policy may grant more than meant.
fn finding_type(f: &Finding) -> &'static str {
    match f.severity {
        Severity::Error => "ERROR",
        Severity::Info => "SUGGESTION",
        Severity::Warning => match f.code {
            // self-tagging, no document access check, ForAllValues on single-valued keys,
            // Resource "*" on sessions, unguarded variables, Allow + NotAction.
            "PC002" | "PC005" | "PC006" | "PC010" | "PC011" | "PC012" => "SECURITY_WARNING",
            _ => "WARNING",
        },
    }
}

/// `MalformedPolicyDocument` and `username-in-session` → `MALFORMED_POLICY_DOCUMENT`,
/// `USERNAME_IN_SESSION`.
fn screaming(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut prev_lower = false;
    for c in name.chars() {
        if c == '-' || c == '_' || c == ' ' {
            out.push('_');
            prev_lower = false;
        } else if c.is_ascii_uppercase() && prev_lower {
            out.push('_');
            out.push(c);
            prev_lower = false;
        } else {
            out.push(c.to_ascii_uppercase());
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        }
    }
    out
}

fn finding(kind: &str, code: &str, details: &str, at: Location) -> Value {
    json!({
        "findingType": kind,
        "issueCode": code,
        "findingDetails": details,
        "learnMoreLink": LEARN_MORE,
        "locations": [{ "path": at.path, "span": { "start": at.start, "end": at.end } }],
    })
}

struct Location {
    path: Vec<Value>,
    start: Value,
    end: Value,
}

impl Location {
    /// Where `pointer` is in `text` (its value's whole extent), or the point at `line` and
    /// `column` when the pointer leads nowhere (a syntax error).
    fn of(
        text: &str,
        tree: Option<&json::Value>,
        pointer: &str,
        line: u32,
        column: u32,
    ) -> Location {
        let mut path = Vec::new();
        let mut at = tree;
        if let Some(rest) = pointer.strip_prefix('/') {
            for token in rest.split('/') {
                let token = token.replace("~1", "/").replace("~0", "~");
                let next = match at.map(|v| &v.kind) {
                    Some(Kind::Array(items)) => {
                        let i = token.parse::<usize>().ok();
                        path.push(
                            i.map_or_else(|| json!({ "value": token }), |i| json!({ "index": i })),
                        );
                        i.and_then(|i| items.get(i))
                    }
                    Some(Kind::Object(members)) => {
                        path.push(json!({ "value": token }));
                        members.iter().find(|m| m.key == token).map(|m| &m.value)
                    }
                    _ => {
                        path.push(json!({ "value": token }));
                        None
                    }
                };
                at = next;
            }
        }
        let (start, end) = match at {
            Some(v) => {
                let end = json::value_end(text, v.span.offset).unwrap_or(v.span.offset);
                (v.span, json::position(text, end))
            }
            None => {
                let point = json::position(text, offset_of(text, line, column));
                (point, point)
            }
        };
        Location {
            path,
            start: position_json(start),
            end: position_json(end),
        }
    }
}

/// AWS's Position: line from 1, column and offset from 0.
fn position_json(span: Span) -> Value {
    json!({
        "line": span.line,
        "column": span.column.saturating_sub(1),
        "offset": span.offset,
    })
}

/// The byte offset of `line`, `column` (both from 1, columns in characters).
fn offset_of(text: &str, line: u32, column: u32) -> usize {
    let mut offset = 0;
    for (n, l) in text.split_inclusive('\n').enumerate() {
        if n + 1 == line as usize {
            let col = l
                .char_indices()
                .nth(column.saturating_sub(1) as usize)
                .map_or(l.len(), |(i, _)| i);
            return offset + col;
        }
        offset += l.len();
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_codes_are_screaming_snake_case() {
        assert_eq!(
            screaming("MalformedPolicyDocument"),
            "MALFORMED_POLICY_DOCUMENT"
        );
        assert_eq!(screaming("username-in-session"), "USERNAME_IN_SESSION");
        assert_eq!(
            screaming("forallvalues-single-valued"),
            "FORALLVALUES_SINGLE_VALUED"
        );
    }

    #[test]
    fn offsets_count_bytes_and_columns_count_characters() {
        let text = "{\n  \"é\": 1\n}";
        assert_eq!(offset_of(text, 1, 1), 0);
        assert_eq!(offset_of(text, 2, 3), 4);
        assert_eq!(offset_of(text, 2, 6), 8);
        assert_eq!(offset_of(text, 9, 1), text.len());
    }

    #[test]
    fn a_location_spans_the_whole_value() {
        let text = "{\"Statement\": [{\"Resource\": \"*\"}]}";
        let tree = json::parse(text).ok();
        let at = Location::of(text, tree.as_ref(), "/Statement/0/Resource", 0, 0);
        assert_eq!(
            at.path,
            vec![
                json!({"value": "Statement"}),
                json!({"index": 0}),
                json!({"value": "Resource"})
            ]
        );
        assert_eq!(at.start, json!({"line": 1, "column": 28, "offset": 28}));
        assert_eq!(at.end, json!({"line": 1, "column": 31, "offset": 31}));
    }
}
