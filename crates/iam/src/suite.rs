//! Conformance suites: policies, a principal and cases with expected decisions, in the
//! engine-neutral JSON format of `shared/conformance/README.md`. Reading files is the
//! caller's job; this module takes text.

use std::fmt;

use serde_json::{Map, Value};

use crate::eval::{Decision, Explanation, PolicySet};
use crate::policy::{Policy, PolicyKind};
use crate::request::{Context, Principal, Request, Tags};

/// A suite that could not be read: which part and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteError(pub String);

impl fmt::Display for SuiteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SuiteError {}

fn err<T>(message: impl Into<String>) -> Result<T, SuiteError> {
    Err(SuiteError(message.into()))
}

#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub principal: Option<Principal>,
    pub action: String,
    pub resource: String,
    pub resource_tags: Tags,
    pub context: Context,
    pub expect: Decision,
}

#[derive(Debug, Clone)]
pub struct Suite {
    pub name: String,
    pub policies: PolicySet,
    pub principal: Option<Principal>,
    pub cases: Vec<Case>,
}

/// One case's result.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub suite: String,
    pub case: String,
    pub expected: Decision,
    pub explanation: Explanation,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.expected == self.explanation.decision
    }
}

impl Suite {
    pub fn parse(text: &str) -> Result<Suite, SuiteError> {
        let doc: Value =
            serde_json::from_str(text).map_err(|e| SuiteError(format!("invalid JSON: {e}")))?;
        let Some(doc) = doc.as_object() else {
            return err("a suite must be a JSON object");
        };
        let name = doc
            .get("suite")
            .and_then(Value::as_str)
            .unwrap_or("unnamed")
            .to_owned();
        let Some(policies) = doc.get("policies").and_then(Value::as_object) else {
            return err("`policies` must be an object");
        };
        let mut set = PolicySet::new();
        let read = |v: &Value, kind: PolicyKind, what: &str| -> Result<Policy, SuiteError> {
            Policy::parse_as(&v.to_string(), kind).map_err(|e| SuiteError(format!("{what}: {e}")))
        };
        if let Some(list) = policies.get("identity") {
            let Some(list) = list.as_array() else {
                return err("`policies.identity` must be a list");
            };
            for (i, p) in list.iter().enumerate() {
                let what = format!("identity policy {i}");
                set.add_identity(&what, &read(p, PolicyKind::Inline, &what)?);
            }
        }
        if let Some(p) = policies.get("permissions_boundary") {
            set.set_boundary(
                "permissions boundary",
                &read(p, PolicyKind::Managed, "permissions_boundary")?,
            );
        }
        if let Some(list) = policies.get("scp") {
            let Some(list) = list.as_array() else {
                return err("`policies.scp` must be a list");
            };
            for (i, p) in list.iter().enumerate() {
                let what = format!("scp {i}");
                set.add_scp(&what, &read(p, PolicyKind::ServiceControl, &what)?);
            }
        }
        if let Some(p) = policies.get("session") {
            set.set_session_policy("session policy", &read(p, PolicyKind::Session, "session")?);
        }
        let principal = doc.get("principal").map(principal).transpose()?;
        let Some(cases) = doc.get("cases").and_then(Value::as_array) else {
            return err("`cases` must be a list");
        };
        let cases = cases
            .iter()
            .enumerate()
            .map(|(i, c)| case(i, c))
            .collect::<Result<_, _>>()?;
        Ok(Suite {
            name,
            policies: set,
            principal,
            cases,
        })
    }

    pub fn run(&self) -> Vec<Outcome> {
        self.cases
            .iter()
            .map(|c| {
                let explanation = match c.principal.as_ref().or(self.principal.as_ref()) {
                    Some(principal) => {
                        let req = Request::new(principal, &c.action, &c.resource)
                            .with_resource_tags(&c.resource_tags)
                            .with_context(&c.context);
                        self.policies.explain(&req)
                    }
                    None => {
                        let nobody = Principal::root("000000000000");
                        let req = Request::new(&nobody, &c.action, &c.resource);
                        self.policies.explain(&req)
                    }
                };
                Outcome {
                    suite: self.name.clone(),
                    case: c.name.clone(),
                    expected: c.expect,
                    explanation,
                }
            })
            .collect()
    }
}

fn str_field<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
    what: &str,
) -> Result<&'a str, SuiteError> {
    obj.get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| SuiteError(format!("{what}: `{field}` must be a string")))
}

fn tags(v: Option<&Value>, what: &str) -> Result<Tags, SuiteError> {
    let mut tags = Tags::new();
    if let Some(v) = v {
        let Some(obj) = v.as_object() else {
            return err(format!("{what} must be an object"));
        };
        for (k, v) in obj {
            let Some(v) = v.as_str() else {
                return err(format!("{what}: tag `{k}` must be a string"));
            };
            tags.insert(k.as_str(), v);
        }
    }
    Ok(tags)
}

fn principal(v: &Value) -> Result<Principal, SuiteError> {
    let Some(obj) = v.as_object() else {
        return err("`principal` must be an object");
    };
    let kind = str_field(obj, "type", "principal")?;
    let arn = str_field(obj, "arn", "principal")?;
    let account = str_field(obj, "account", "principal")?;
    let userid = obj.get("userid").and_then(Value::as_str);
    let p = match kind {
        "user" => Principal::user(
            arn,
            account,
            str_field(obj, "username", "principal")?,
            userid.unwrap_or_default(),
        ),
        "assumed-role" => Principal::assumed_role(arn, account, userid.unwrap_or_default()),
        "root" => Principal::root(account),
        other => return err(format!("principal: unknown type `{other}`")),
    };
    Ok(p.with_tags(tags(obj.get("tags"), "principal.tags")?))
}

fn case(i: usize, v: &Value) -> Result<Case, SuiteError> {
    let what = format!("case {i}");
    let Some(obj) = v.as_object() else {
        return err(format!("{what} must be an object"));
    };
    let expect = match str_field(obj, "expect", &what)? {
        "allow" => Decision::Allow,
        "implicit_deny" => Decision::ImplicitDeny,
        "explicit_deny" => Decision::ExplicitDeny,
        other => return err(format!("{what}: unknown expectation `{other}`")),
    };
    let mut context = Context::new();
    if let Some(ctx) = obj.get("context") {
        let Some(ctx) = ctx.as_object() else {
            return err(format!("{what}: `context` must be an object"));
        };
        for (k, v) in ctx {
            match v {
                Value::String(s) => context.insert(k, s.as_str()),
                Value::Array(items) => {
                    let values = items
                        .iter()
                        .map(|i| i.as_str().map(str::to_owned))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| {
                            SuiteError(format!("{what}: context `{k}` must hold strings"))
                        })?;
                    context.insert_values(k, values);
                }
                _ => {
                    return err(format!(
                        "{what}: context `{k}` must be a string or a list of strings"
                    ))
                }
            }
        }
    }
    Ok(Case {
        name: obj
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(&what)
            .to_owned(),
        principal: obj.get("principal").map(principal).transpose()?,
        action: str_field(obj, "action", &what)?.to_owned(),
        resource: str_field(obj, "resource", &what)?.to_owned(),
        resource_tags: tags(obj.get("resource_tags"), &format!("{what}.resource_tags"))?,
        context,
        expect,
    })
}
