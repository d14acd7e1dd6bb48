//! Access analysis over the API, for scripts: the access matrix (`WhoCan`, `WhatCan`) and
//! the linter over every stored policy (`LintStoredPolicies`), computed from the live store
//! by the same engine that authorizes. JSON 1.1 with `X-Amz-Target: Portcullis.<Operation>`,
//! signed with SigV4 for service `portcullis`, e.g.
//! `curl --aws-sigv4 aws:amz:REGION:portcullis --user KEY:SECRET -H 'X-Amz-Target:
//! Portcullis.WhoCan' -H 'Content-Type: application/x-amz-json-1.1' -d '{"Target": "i-..."}'`.
//!
//! Who may ask ([`authorize_answer`], the rule the console follows too): answers about
//! users' access are what `iam:SimulatePrincipalPolicy` gives through IAM's API, so a
//! `WhoCan` (it says who can and who cannot) needs it on every IAM user of the account, a
//! `WhatCan` on the one user; both also need `ssm:DescribeInstanceInformation` (they name
//! nodes). `LintStoredPolicies` reads every policy document, which IAM's API gives with
//! `iam:GetAccountAuthorizationDetails`. A failed check refuses the whole answer with
//! AWS's message.

use portcullis_analysis::matrix::{answer_json, default_context, tags_json, what_can, who_can};
use portcullis_analysis::{lint, lint_together, Document, Fleet};
use portcullis_core::service::now;
use portcullis_core::{Caller, Error, Service};
use portcullis_iam::{Decision, Policy};
use serde_json::{json, Value};

/// The default action of the matrix: opening a shell.
const START_SESSION: &str = "ssm:StartSession";

/// Runs `operation`; the JSON answer.
pub async fn handle(
    svc: &Service,
    caller: &Caller,
    operation: &str,
    body: &Value,
) -> Result<Value, Error> {
    match operation {
        "WhoCan" | "WhatCan" | "LintStoredPolicies" => {}
        _ => {
            return Err(Error::invalid(
                "UnknownOperationException",
                format!("`Portcullis.{operation}` is not an operation (WhoCan, WhatCan, LintStoredPolicies)"),
            ))
        }
    }
    if operation == "LintStoredPolicies" {
        svc.authorize(caller, "iam:GetAccountAuthorizationDetails", "*", &[], &[])?;
        let fleet = Fleet::load(svc.store().as_ref()).await?;
        return Ok(lint_stored(&fleet));
    }
    // Read the input first (a malformed request is refused as such), then authorize.
    let about = if operation == "WhoCan" {
        None
    } else {
        Some(required(body, "Principal")?)
    };
    let fleet = Fleet::load(svc.store().as_ref()).await?;
    let about_user = about.map(|p| fleet.user_index(p));
    authorize_answer(svc, caller, &fleet, about_user)?;
    match operation {
        "WhoCan" => run_who_can(&fleet, body),
        _ => run_what_can(&fleet, body),
    }
}

/// Authorizes an access-analysis answer: about every user (`None`) or about one
/// (`Some(index)`, `Some(None)` for a user who does not exist). The rule is in the module
/// docs; the console's answers follow it too.
pub(crate) fn authorize_answer(
    svc: &Service,
    caller: &Caller,
    fleet: &Fleet,
    about: Option<Option<usize>>,
) -> Result<(), Error> {
    svc.authorize(caller, "ssm:DescribeInstanceInformation", "*", &[], &[])?;
    let account = &fleet.account;
    match about {
        None => {
            // The whole account first, so a caller allowed on only some users is refused
            // without learning other users' names from the refusal.
            let every = format!("arn:aws:iam::{account}:user/*");
            svc.authorize(caller, "iam:SimulatePrincipalPolicy", &every, &[], &[])?;
            for user in &fleet.users {
                svc.authorize(caller, "iam:SimulatePrincipalPolicy", &user.arn, &[], &[])?;
            }
            Ok(())
        }
        Some(Some(i)) => {
            let arn = fleet
                .users
                .get(i)
                .map(|u| u.arn.as_str())
                .unwrap_or_default();
            svc.authorize(caller, "iam:SimulatePrincipalPolicy", arn, &[], &[])
        }
        // Authorized as IAM would before saying the user does not exist.
        Some(None) => {
            let every = format!("arn:aws:iam::{account}:user/*");
            svc.authorize(caller, "iam:SimulatePrincipalPolicy", &every, &[], &[])
        }
    }
}

fn string<'a>(body: &'a Value, field: &str) -> Result<Option<&'a str>, Error> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Error::invalid("ValidationException", format!(
            "1 validation error detected: Value at '{field}' failed to satisfy constraint: Member must be a string"
        ))),
    }
}

fn required<'a>(body: &'a Value, field: &str) -> Result<&'a str, Error> {
    string(body, field)?.ok_or_else(|| {
        Error::invalid("ValidationException", format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

/// `All: true` also lists who is refused.
fn all(body: &Value) -> Result<bool, Error> {
    match body.get("All") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(Error::invalid("ValidationException",
            "1 validation error detected: Value at 'All' failed to satisfy constraint: Member must be a boolean",
        )),
    }
}

fn run_who_can(fleet: &Fleet, body: &Value) -> Result<Value, Error> {
    let target = required(body, "Target")?;
    let action = string(body, "Action")?.unwrap_or(START_SESSION);
    let show_all = all(body)?;
    let node = fleet.node_index(target).ok_or_else(|| {
        Error::invalid(
            "InvalidInstanceId",
            format!("Instance {target} is not a node of this account."),
        )
    })?;
    let context = default_context(fleet, now());
    let answers = who_can(fleet, node, action, &context);
    let allowed = answers.iter().filter(|a| a.decision.is_allowed()).count();
    let n = fleet.nodes.get(node);
    Ok(json!({
        "Action": action,
        "Node": n.map(|n| n.id.as_str()),
        "Resource": n.map(|n| n.arn.as_str()),
        "Tags": n.map(|n| tags_json(&n.tags)),
        "Users": answers.len(),
        "Allowed": allowed,
        "RootAlwaysAllowed": true,
        "Answers": answers
            .iter()
            .filter(|a| show_all || a.decision != Decision::ImplicitDeny)
            .map(|a| answer_json(fleet, a))
            .collect::<Vec<_>>(),
    }))
}

fn run_what_can(fleet: &Fleet, body: &Value) -> Result<Value, Error> {
    let principal = required(body, "Principal")?;
    let actions: Vec<&str> = match body.get("Actions") {
        None | Some(Value::Null) => vec![START_SESSION],
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| v.as_str())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                Error::invalid("ValidationException",
                    "1 validation error detected: Value at 'Actions' failed to satisfy constraint: Member must be a list of strings",
                )
            })?,
        Some(_) => {
            return Err(Error::invalid("ValidationException",
                "1 validation error detected: Value at 'Actions' failed to satisfy constraint: Member must be a non-empty list of strings",
            ))
        }
    };
    let show_all = all(body)?;
    let user = fleet.user_index(principal).ok_or_else(|| {
        Error::new(
            404,
            "NoSuchEntity",
            format!("The user with name {principal} cannot be found."),
        )
    })?;
    let context = default_context(fleet, now());
    let answers = what_can(fleet, user, &actions, &context);
    let allowed = answers.iter().filter(|a| a.decision.is_allowed()).count();
    let u = fleet.users.get(user);
    Ok(json!({
        "Principal": u.map(|u| u.arn.as_str()),
        "User": u.map(|u| u.name.as_str()),
        "Tags": u.map(|u| tags_json(&u.tags)),
        "Actions": actions,
        "Nodes": fleet.nodes.len(),
        "Allowed": allowed,
        "Answers": answers
            .iter()
            .filter(|a| show_all || a.decision != Decision::ImplicitDeny)
            .map(|a| answer_json(fleet, a))
            .collect::<Vec<_>>(),
    }))
}

/// Every stored document on its own (each once, by its label), then each user's documents
/// together for the rules that look across statements (self-tagging, shadowed, redundant):
/// only what those add is listed per user.
fn lint_stored(fleet: &Fleet) -> Value {
    let mut documents: Vec<(&str, &str, &Policy)> = Vec::new();
    for i in 0..fleet.users.len() {
        for p in fleet.user_policies(i) {
            if !documents.iter().any(|(label, _, _)| *label == p.label) {
                documents.push((&p.label, &p.document, &p.policy));
            }
        }
    }
    let mut on_their_own = Vec::new();
    let mut alone: Vec<portcullis_analysis::Finding> = Vec::new();
    for (label, text, policy) in &documents {
        let findings = lint(&Document {
            name: label,
            text,
            policy,
        });
        on_their_own.push(json!({
            "Policy": label,
            "Findings": findings.iter().map(finding_json).collect::<Vec<_>>(),
        }));
        alone.extend(findings);
    }
    let mut per_user = Vec::new();
    for (i, user) in fleet.users.iter().enumerate() {
        let docs: Vec<Document> = fleet
            .user_policies(i)
            .iter()
            .filter(|p| !p.boundary)
            .map(|p| Document {
                name: &p.label,
                text: &p.document,
                policy: &p.policy,
            })
            .collect();
        let added: Vec<Value> = lint_together(&docs)
            .iter()
            .filter(|f| !alone.contains(f))
            .map(finding_json)
            .collect();
        if !added.is_empty() {
            per_user.push(json!({ "Principal": user.arn, "Findings": added }));
        }
    }
    json!({ "Policies": on_their_own, "Users": per_user })
}

fn finding_json(f: &portcullis_analysis::Finding) -> Value {
    json!({
        "Code": f.code,
        "Name": f.name,
        "Severity": f.severity.as_str(),
        "Policy": f.document,
        "Pointer": f.pointer,
        "Line": f.line,
        "Column": f.column,
        "Message": f.message,
        "Fix": f.fix,
    })
}
