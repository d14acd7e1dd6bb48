//! Policy tests as code: a project's own expectations about its Session Manager policies
//! (who may open a shell where), in a small JSON format `portcullis policy test` runs in CI.
//!
//! ```jsonc
//! {
//!   "expectations": "web team session access",       // marks the file; a name for reports
//!   "account": "123456789012",                       // optional (default 123456789012)
//!   "region": "ap-northeast-1",                      // optional (default us-east-1)
//!   "policies": {                                    // name -> file (relative to this file)
//!     "abac": "../examples/seed/pattern-3-abac.json",//         or the document itself
//!     "no-prod": { "Version": "2012-10-17", "Statement": [ ... ] }
//!   },
//!   "principals": {
//!     "alice": { "tags": { "Project": "test" }, "policies": ["abac", "no-prod"] },
//!     "ops":   { "type": "assumed-role", "role": "OpsRole", "session": "bob",
//!                "policies": ["abac"], "boundary": "no-prod" }
//!   },
//!   "nodes": { "web-1": { "id": "i-0885b2e35926f1fb3", "tags": { "Project": "test" } } },
//!   "expect": [
//!     { "principal": "alice", "target": "web-1", "decision": "allow", "by": "abac /Statement/0" },
//!     { "principal": "alice", "target": { "tags": { "Project": "prod" } }, "decision": "deny" },
//!     { "principal": "ops", "action": "ssm:TerminateSession",
//!       "resource": "arn:aws:ssm:ap-northeast-1:123456789012:session/bob-0123456789abcdef0",
//!       "resource_tags": { "aws:ssmmessages:session-id": "AROAEXAMPLE:bob" },
//!       "context": { "aws:SourceIp": "203.0.113.7" }, "decision": "allow" }
//!   ]
//! }
//! ```
//!
//! `action` defaults to `ssm:StartSession`. `target` is a node name from `nodes`, a node id
//! (`i-...` an EC2 instance, `mi-...` a managed instance), or `{"id": ..., "tags": ...}`;
//! `resource` (+ `resource_tags`) names any other resource by ARN. `decision` is `allow`,
//! `deny` (either kind), `implicit_deny` or `explicit_deny`. `by`, when given, must name a
//! deciding statement: `POLICY /Statement/N`, or `POLICY` and its `Sid`. A user's ARN,
//! user id and name are derived from the principal's name unless given (`arn`, `userid`).
//! Requests carry `aws:RequestedRegion` and whatever `context` adds, nothing else, so
//! results do not depend on the clock.

use std::collections::HashMap;

use portcullis_iam::{
    Context, Decision, Explanation, Policy, PolicyKind, PolicySet, Principal, Request, Tags,
};
use serde_json::{Map, Value};

/// What a case expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    Allow,
    /// Either kind of deny.
    Deny,
    ImplicitDeny,
    ExplicitDeny,
}

impl Expected {
    fn parse(s: &str) -> Option<Expected> {
        Some(match s {
            "allow" => Expected::Allow,
            "deny" => Expected::Deny,
            "implicit_deny" => Expected::ImplicitDeny,
            "explicit_deny" => Expected::ExplicitDeny,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Expected::Allow => "allow",
            Expected::Deny => "deny",
            Expected::ImplicitDeny => "implicit_deny",
            Expected::ExplicitDeny => "explicit_deny",
        }
    }

    pub fn accepts(self, d: Decision) -> bool {
        match self {
            Expected::Allow => d == Decision::Allow,
            Expected::Deny => d != Decision::Allow,
            Expected::ImplicitDeny => d == Decision::ImplicitDeny,
            Expected::ExplicitDeny => d == Decision::ExplicitDeny,
        }
    }
}

/// One case of an expectation file.
#[derive(Debug, Clone)]
pub struct Case {
    /// `#N principal action target`, for reports.
    pub name: String,
    principal: String,
    action: String,
    resource: String,
    resource_tags: Tags,
    context: Context,
    pub expected: Expected,
    pub by: Option<String>,
}

/// A case's result.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub case: String,
    pub expected: Expected,
    pub by: Option<String>,
    pub explanation: Explanation,
    /// Why it failed, when it did.
    pub failure: Option<String>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

struct Who {
    principal: Principal,
    set: PolicySet,
}

/// A parsed expectation file.
pub struct Expectations {
    pub name: String,
    principals: HashMap<String, Who>,
    pub cases: Vec<Case>,
}

/// Whether a JSON document is an expectation file (rather than a conformance suite).
pub fn is_expectations(text: &str) -> bool {
    serde_json::from_str::<Value>(text)
        .ok()
        .is_some_and(|v| v.get("expect").is_some())
}

fn tags(v: Option<&Value>, what: &str) -> Result<Tags, String> {
    let Some(v) = v else {
        return Ok(Tags::new());
    };
    let obj = v
        .as_object()
        .ok_or_else(|| format!("{what} must be an object"))?;
    obj.iter()
        .map(|(k, v)| {
            v.as_str()
                .map(|s| (k.clone(), s.to_owned()))
                .ok_or_else(|| format!("{what}.{k} must be a string"))
        })
        .collect()
}

fn str_of<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

/// A stable made-up unique id (`AIDA...`, `AROA...`) for a name.
fn unique_id(prefix: &str, name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut id = String::from(prefix);
    for i in 0..17 {
        let at = ((h >> ((i * 5) % 60)) & 31) as usize;
        id.push(char::from(alphabet.get(at).copied().unwrap_or(b'A')));
    }
    id
}

impl Expectations {
    /// Reads an expectation file; `load(path)` reads a policy file named in it (paths are
    /// the caller's to resolve, relative to the expectation file).
    pub fn parse(
        text: &str,
        load: impl Fn(&str) -> Result<String, String>,
    ) -> Result<Expectations, String> {
        let doc: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        let doc = doc.as_object().ok_or("an expectation file is an object")?;
        let name = str_of(doc, "expectations")
            .unwrap_or("expectations")
            .to_owned();
        let account = str_of(doc, "account").unwrap_or("123456789012");
        let region = str_of(doc, "region").unwrap_or("us-east-1");

        let mut policies: HashMap<String, Policy> = HashMap::new();
        for (pname, v) in doc
            .get("policies")
            .and_then(Value::as_object)
            .ok_or("`policies` must be an object")?
        {
            let text = match v {
                Value::String(path) => load(path).map_err(|e| format!("policy {pname}: {e}"))?,
                Value::Object(_) => v.to_string(),
                _ => return Err(format!("policy {pname}: a file name or a document")),
            };
            let policy = Policy::parse_as(&text, PolicyKind::Inline)
                .map_err(|e| format!("policy {pname}: {e}"))?;
            policies.insert(pname.clone(), policy);
        }

        let mut principals = HashMap::new();
        for (pname, v) in doc
            .get("principals")
            .and_then(Value::as_object)
            .ok_or("`principals` must be an object")?
        {
            let obj = v
                .as_object()
                .ok_or_else(|| format!("principal {pname} must be an object"))?;
            let principal = match str_of(obj, "type").unwrap_or("user") {
                "user" => Principal::user(
                    str_of(obj, "arn")
                        .map(str::to_owned)
                        .unwrap_or_else(|| format!("arn:aws:iam::{account}:user/{pname}"))
                        .as_str(),
                    account,
                    str_of(obj, "username").unwrap_or(pname),
                    str_of(obj, "userid")
                        .map(str::to_owned)
                        .unwrap_or_else(|| unique_id("AIDA", pname))
                        .as_str(),
                ),
                "assumed-role" => {
                    let role = str_of(obj, "role").unwrap_or(pname);
                    let session = str_of(obj, "session").unwrap_or(pname);
                    let userid = str_of(obj, "userid")
                        .map(str::to_owned)
                        .unwrap_or_else(|| format!("{}:{session}", unique_id("AROA", role)));
                    Principal::assumed_role(
                        &format!("arn:aws:sts::{account}:assumed-role/{role}/{session}"),
                        account,
                        &userid,
                    )
                }
                other => return Err(format!("principal {pname}: unknown type `{other}`")),
            }
            .with_tags(tags(obj.get("tags"), &format!("principal {pname} tags"))?);
            let mut set = PolicySet::new();
            for p in obj
                .get("policies")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice)
            {
                let p = p
                    .as_str()
                    .ok_or_else(|| format!("principal {pname}: policies are names"))?;
                let policy = policies
                    .get(p)
                    .ok_or_else(|| format!("principal {pname}: no policy `{p}`"))?;
                set.add_identity(p, policy);
            }
            if let Some(b) = str_of(obj, "boundary") {
                let policy = policies
                    .get(b)
                    .ok_or_else(|| format!("principal {pname}: no policy `{b}`"))?;
                set.set_boundary(b, policy);
            }
            principals.insert(pname.clone(), Who { principal, set });
        }

        let mut nodes: HashMap<String, (String, Tags)> = HashMap::new();
        if let Some(obj) = doc.get("nodes").and_then(Value::as_object) {
            for (nname, v) in obj {
                let id = v
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or(nname)
                    .to_owned();
                let t = tags(v.get("tags"), &format!("node {nname} tags"))?;
                nodes.insert(nname.clone(), (id, t));
            }
        }
        let node_arn = |id: &str| {
            if id.starts_with("mi-") {
                format!("arn:aws:ssm:{region}:{account}:managed-instance/{id}")
            } else {
                format!("arn:aws:ec2:{region}:{account}:instance/{id}")
            }
        };

        let mut cases = Vec::new();
        for (i, v) in doc
            .get("expect")
            .and_then(Value::as_array)
            .ok_or("`expect` must be a list")?
            .iter()
            .enumerate()
        {
            let at = format!("expect[{i}]");
            let obj = v
                .as_object()
                .ok_or_else(|| format!("{at} must be an object"))?;
            let principal = str_of(obj, "principal")
                .ok_or_else(|| format!("{at}: `principal` names one of `principals`"))?;
            if !principals.contains_key(principal) {
                return Err(format!("{at}: no principal `{principal}`"));
            }
            let action = str_of(obj, "action").unwrap_or("ssm:StartSession");
            let (resource, resource_tags, shown) = match (obj.get("target"), obj.get("resource")) {
                (Some(Value::String(t)), None) => match nodes.get(t) {
                    Some((id, tags)) => (node_arn(id), tags.clone(), t.clone()),
                    None => (node_arn(t), Tags::new(), t.clone()),
                },
                (Some(Value::Object(t)), None) => {
                    let id = str_of(t, "id").unwrap_or("i-00000000000000000");
                    let tags = tags(t.get("tags"), &format!("{at}.target.tags"))?;
                    let shown = tags
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(",");
                    (node_arn(id), tags, format!("{id}[{shown}]"))
                }
                (None, Some(Value::String(arn))) => (
                    arn.clone(),
                    tags(obj.get("resource_tags"), &format!("{at}.resource_tags"))?,
                    arn.clone(),
                ),
                _ => return Err(format!("{at}: give `target` or `resource`")),
            };
            let mut context = Context::new();
            context.insert("aws:RequestedRegion", region);
            if let Some(c) = obj.get("context").and_then(Value::as_object) {
                for (k, v) in c {
                    match v {
                        Value::String(s) => context.insert(k, s.clone()),
                        Value::Array(items) => context.insert_values(
                            k,
                            items
                                .iter()
                                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                                .collect(),
                        ),
                        other => context.insert(k, other.to_string()),
                    }
                }
            }
            let expected = str_of(obj, "decision")
                .and_then(Expected::parse)
                .ok_or_else(|| {
                    format!("{at}: `decision` is allow, deny, implicit_deny or explicit_deny")
                })?;
            cases.push(Case {
                name: format!("#{} {principal} {action} {shown}", i + 1),
                principal: principal.to_owned(),
                action: action.to_owned(),
                resource,
                resource_tags,
                context,
                expected,
                by: str_of(obj, "by").map(str::to_owned),
            });
        }
        Ok(Expectations {
            name,
            principals,
            cases,
        })
    }

    /// Runs every case through the engine.
    pub fn run(&self) -> Vec<Outcome> {
        self.cases
            .iter()
            .filter_map(|c| {
                let who = self.principals.get(&c.principal)?;
                let req = Request::new(&who.principal, &c.action, &c.resource)
                    .with_resource_tags(&c.resource_tags)
                    .with_context(&c.context);
                let explanation = who.set.explain(&req);
                let failure = if !c.expected.accepts(explanation.decision) {
                    Some(format!(
                        "expected {}, got {}",
                        c.expected.as_str(),
                        explanation.decision
                    ))
                } else {
                    c.by.as_ref().and_then(|by| {
                        let deciding = explanation.deciding();
                        let hit = deciding.iter().any(|s| {
                            let label = format!("{} {}", s.policy, s.pointer);
                            let sid = s.sid.as_ref().map(|sid| format!("{} {sid}", s.policy));
                            label == *by || sid.as_deref() == Some(by.as_str())
                        });
                        (!hit).then(|| {
                            let names: Vec<String> = deciding
                                .iter()
                                .map(|s| format!("{} {}", s.policy, s.pointer))
                                .collect();
                            format!(
                                "expected {} by `{by}`, but it was decided by {}",
                                c.expected.as_str(),
                                if names.is_empty() {
                                    "no statement".to_owned()
                                } else {
                                    names.join(", ")
                                }
                            )
                        })
                    })
                };
                Some(Outcome {
                    case: c.name.clone(),
                    expected: c.expected,
                    by: c.by.clone(),
                    explanation,
                    failure,
                })
            })
            .collect()
    }
}
