//! The console's administration API under `/console/api/`: users (tags, groups, attached
//! and inline policies), the policy editor (validate as you type, save), node tags,
//! activations, and access analysis (who can open a shell on a node, which nodes a user can
//! reach, what a proposed change would do).
//!
//! Every action is the `Service` operation the AWS API runs for it (`ListUsers`, `TagUser`,
//! `AttachUserPolicy`, `CreatePolicyVersion`, `PutUserPolicy`, EC2 `CreateTags`, SSM
//! `CreateActivation`, ...) with a `Caller` for the signed-in principal, and is audited like
//! one: the console has no powers of its own, and a refusal is AWS's.
//!
//! Access analysis answers questions about other users' access, authorized as the API's
//! `Portcullis.WhoCan`/`WhatCan` are ([`crate::access_api::authorize_answer`]): an answer
//! that lists users (who can, what changes) needs `iam:SimulatePrincipalPolicy` allowed on
//! **every** IAM user in the account (it also says who cannot) and
//! `ssm:DescribeInstanceInformation` (it names nodes); an answer about one user (what can
//! this user reach) needs `iam:SimulatePrincipalPolicy` on that user and
//! `ssm:DescribeInstanceInformation`. The account root may always. A check that fails
//! refuses the whole answer with AWS's message.

use std::sync::Arc;

use axum::extract::{Path, RawQuery};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use futures_util::{StreamExt as _, TryStreamExt as _};
use portcullis_analysis::diff::{diff, Change, PairChange, Principal};
use portcullis_analysis::matrix::{answer_json, default_context, what_can, who_can};
use portcullis_analysis::{lint, Document, Fleet};
use portcullis_core::model::Tag;
use portcullis_core::ops_ec2::TagRemoval;
use portcullis_core::ops_ssm::NewActivation;
use portcullis_core::policies::UserPolicy;
use portcullis_core::policy_error;
use portcullis_iam::{validate, Policy, PolicyKind};
use serde_json::{json, Value};

use crate::console::{audit, json_reply, operation_error, Fail, Req, SignedIn, SignedInWithCsrf};
use crate::AppState;

/// The one action whose answers are shown: opening a shell.
const SHELL: &str = "ssm:StartSession";

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/console/api/capabilities", get(capabilities))
        .route("/console/api/users", get(users))
        .route("/console/api/users/{name}", get(user))
        .route("/console/api/users/{name}/tags/add", post(user_tag_add))
        .route(
            "/console/api/users/{name}/tags/remove",
            post(user_tag_remove),
        )
        .route("/console/api/users/{name}/attach", post(user_attach))
        .route("/console/api/users/{name}/detach", post(user_detach))
        .route("/console/api/users/{name}/what-can", get(user_what_can))
        .route("/console/api/policies", get(policies))
        .route("/console/api/policy", get(policy))
        .route("/console/api/policy/validate", post(policy_validate))
        .route("/console/api/policy/save", post(policy_save))
        .route("/console/api/nodes/{id}/tags/add", post(node_tag_add))
        .route("/console/api/nodes/{id}/tags/remove", post(node_tag_remove))
        .route("/console/api/nodes/{id}/who-can", get(node_who_can))
        .route(
            "/console/api/activations",
            get(activations).post(activation_create),
        )
        .route(
            "/console/api/activations/{id}/delete",
            post(activation_delete),
        )
        .route("/console/api/what-changes", post(what_changes))
}

fn bad(message: impl Into<String>) -> Fail {
    Fail::from(json_reply(
        StatusCode::BAD_REQUEST,
        json!({"code": "ValidationException", "message": message.into()}),
    ))
}

fn body_json(body: &[u8]) -> Result<Value, Fail> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(bad("The request body must be a JSON object.")),
    }
}

fn field<'a>(body: &'a Value, name: &str) -> Result<&'a str, Fail> {
    body.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("`{name}` must be a string.")))
}

fn tags_of(body: &Value, name: &str) -> Result<Vec<Tag>, Fail> {
    let Some(items) = body.get(name).and_then(Value::as_array) else {
        return Err(bad(format!(
            "`{name}` must be a list of {{\"Key\", \"Value\"}}."
        )));
    };
    items
        .iter()
        .map(|t| {
            match (
                t.get("Key").and_then(Value::as_str),
                t.get("Value").and_then(Value::as_str),
            ) {
                (Some(k), Some(v)) => Ok(Tag::new(k, v)),
                _ => Err(bad(format!(
                    "Each item of `{name}` must have a string Key and Value."
                ))),
            }
        })
        .collect()
}

fn keys_of(body: &Value, name: &str) -> Result<Vec<String>, Fail> {
    let Some(items) = body.get(name).and_then(Value::as_array) else {
        return Err(bad(format!("`{name}` must be a list of tag keys.")));
    };
    items
        .iter()
        .map(|k| {
            k.as_str()
                .map(str::to_owned)
                .ok_or_else(|| bad(format!("Each item of `{name}` must be a string.")))
        })
        .collect()
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

fn ok(body: Value) -> Response {
    json_reply(StatusCode::OK, body)
}

// ---- what the signed-in principal may use -------------------------------------------------

async fn capabilities(SignedIn(r): SignedIn) -> Response {
    let svc = &r.state.service;
    let users = svc.user_arn("/", "*");
    let policies = svc.policy_arn("/", "*");
    let account = svc.account();
    let instances = format!("arn:aws:ec2:{}:{}:instance/*", account.region, account.id);
    let activations = format!("arn:aws:ssm:{}:{}:activation/*", account.region, account.id);
    ok(json!({
        "listUsers": r.may("iam:ListUsers", &svc.user_arn("/", "")),
        "tagUsers": r.may("iam:TagUser", &users) || r.may("iam:UntagUser", &users),
        "attachPolicies": r.may("iam:AttachUserPolicy", &users) || r.may("iam:DetachUserPolicy", &users),
        "listPolicies": r.may("iam:ListPolicies", &svc.policy_arn("/", "")),
        "validatePolicies": r.may("access-analyzer:ValidatePolicy", "*"),
        "editPolicies": r.may("iam:CreatePolicyVersion", &policies) || r.may("iam:PutUserPolicy", &users),
        "tagNodes": r.may("ec2:CreateTags", &instances) || r.may("ec2:DeleteTags", &instances),
        "listActivations": r.may("ssm:DescribeActivations", "*"),
        "createActivations": r.may("ssm:CreateActivation", "*"),
        "deleteActivations": r.may("ssm:DeleteActivation", &activations),
        "analyzeAccess": r.may("iam:SimulatePrincipalPolicy", &users),
    }))
}

// ---- users --------------------------------------------------------------------------------

/// One user as the Users page shows them, from `GetUser`, `ListGroupsForUser`,
/// `ListAttachedUserPolicies` and `ListUserPolicies`; a refused list is `null` with its
/// refusal in `errors`.
/// In a list (`in_list`), a refused `GetUser` is that user's row saying so; alone, it is
/// the reply.
async fn user_json(r: &Req, name: &str, in_list: bool) -> Result<Value, Fail> {
    let svc = &r.state.service;
    let c = r.caller();
    let got = svc.get_user(&c, Some(name)).await;
    let (u, tags) = match got {
        Err(e) if in_list => {
            audit(&r.state, &c, "GetUser", Some(&e)).await;
            return Ok(json!({
                "UserName": name, "Tags": null, "Groups": null,
                "AttachedPolicies": null, "InlinePolicies": null,
                "errors": [{"operation": "GetUser", "code": e.code, "message": e.message}],
            }));
        }
        got => r.done(&c, "GetUser", got).await?,
    };
    let mut errors = Vec::new();
    let c = r.caller();
    let groups = svc.list_groups_for_user(&c, name).await;
    audit(&r.state, &c, "ListGroupsForUser", groups.as_ref().err()).await;
    let groups = match groups {
        Ok(g) => json!(g.iter().map(|g| g.name.as_str()).collect::<Vec<_>>()),
        Err(e) => {
            errors.push(
                json!({"operation": "ListGroupsForUser", "code": e.code, "message": e.message}),
            );
            Value::Null
        }
    };
    let c = r.caller();
    let attached = svc.list_attached_user_policies(&c, name).await;
    audit(
        &r.state,
        &c,
        "ListAttachedUserPolicies",
        attached.as_ref().err(),
    )
    .await;
    let attached = match attached {
        Ok(a) => json!(a
            .iter()
            .map(|(n, arn)| json!({"PolicyName": n, "PolicyArn": arn}))
            .collect::<Vec<_>>()),
        Err(e) => {
            errors.push(json!({"operation": "ListAttachedUserPolicies", "code": e.code, "message": e.message}));
            Value::Null
        }
    };
    let c = r.caller();
    let inline = svc.list_user_policies(&c, name).await;
    audit(&r.state, &c, "ListUserPolicies", inline.as_ref().err()).await;
    let inline = match inline {
        Ok(names) => json!(names),
        Err(e) => {
            errors.push(
                json!({"operation": "ListUserPolicies", "code": e.code, "message": e.message}),
            );
            Value::Null
        }
    };
    Ok(json!({
        "UserName": u.name,
        "Arn": u.arn,
        "UserId": u.user_id,
        "Path": u.path,
        "CreateDate": u.created,
        "PermissionsBoundary": u.permissions_boundary,
        "Tags": crate::ssm_api::tag_list(&tags),
        "Groups": groups,
        "AttachedPolicies": attached,
        "InlinePolicies": inline,
        "errors": errors,
    }))
}

/// Users whose details the Users page's list reads at once.
const USERS_AT_ONCE: usize = 16;

async fn users(SignedIn(r): SignedIn) -> Result<Response, Fail> {
    let c = r.caller();
    let list = r
        .done(&c, "ListUsers", r.state.service.list_users(&c, None).await)
        .await?;
    // Each user is four audited reads, as AWS's console makes them; several users at a time
    // let their audit events share commits (one at a time, 300 users took ~300 ms).
    let r = &r;
    let out: Vec<Value> = futures_util::stream::iter(list.into_iter().map(|u| u.name))
        .map(|name| async move { user_json(r, &name, true).await })
        .buffered(USERS_AT_ONCE)
        .try_collect()
        .await?;
    Ok(ok(json!({"users": out})))
}

async fn user(SignedIn(r): SignedIn, Path(name): Path<String>) -> Result<Response, Fail> {
    Ok(ok(user_json(&r, &name, false).await?))
}

async fn user_tag_add(
    SignedInWithCsrf(r): SignedInWithCsrf,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, Fail> {
    let tags = tags_of(&body_json(&body)?, "Tags")?;
    let c = r.caller();
    r.done(
        &c,
        "TagUser",
        r.state.service.tag_user(&c, &name, &tags).await,
    )
    .await?;
    Ok(ok(json!({"UserName": name})))
}

async fn user_tag_remove(
    SignedInWithCsrf(r): SignedInWithCsrf,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, Fail> {
    let keys = keys_of(&body_json(&body)?, "TagKeys")?;
    let c = r.caller();
    r.done(
        &c,
        "UntagUser",
        r.state.service.untag_user(&c, &name, &keys).await,
    )
    .await?;
    Ok(ok(json!({"UserName": name})))
}

async fn user_attach(
    SignedInWithCsrf(r): SignedInWithCsrf,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, Fail> {
    let body = body_json(&body)?;
    let arn = field(&body, "PolicyArn")?;
    let c = r.caller();
    r.done(
        &c,
        "AttachUserPolicy",
        r.state.service.attach_user_policy(&c, &name, arn).await,
    )
    .await?;
    Ok(ok(json!({"UserName": name, "PolicyArn": arn})))
}

async fn user_detach(
    SignedInWithCsrf(r): SignedInWithCsrf,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, Fail> {
    let body = body_json(&body)?;
    let arn = field(&body, "PolicyArn")?;
    let c = r.caller();
    r.done(
        &c,
        "DetachUserPolicy",
        r.state.service.detach_user_policy(&c, &name, arn).await,
    )
    .await?;
    Ok(ok(json!({"UserName": name, "PolicyArn": arn})))
}

// ---- policies -----------------------------------------------------------------------------

async fn policies(SignedIn(r): SignedIn) -> Result<Response, Fail> {
    let c = r.caller();
    let list = r
        .done(
            &c,
            "ListPolicies",
            r.state.service.list_policies(&c, None, false).await,
        )
        .await?;
    let out: Vec<Value> = list
        .iter()
        .map(|p| {
            json!({
                "PolicyName": p.name,
                "Arn": p.arn,
                "DefaultVersionId": p.default_version,
                "AttachmentCount": p.attachment_count,
                "Description": p.description,
                "AwsManaged": portcullis_core::aws_policies::is_aws_managed(&p.arn),
            })
        })
        .collect();
    Ok(ok(json!({"policies": out})))
}

/// `?arn=ARN`: a managed policy's default version (`GetPolicy` + `GetPolicyVersion`);
/// `?user=U&name=P`: a user's inline policy (`GetUserPolicy`).
async fn policy(SignedIn(r): SignedIn, RawQuery(query): RawQuery) -> Result<Response, Fail> {
    let q = query.as_deref();
    let svc = &r.state.service;
    if let Some(arn) = query_param(q, "arn") {
        let c = r.caller();
        let p = r
            .done(&c, "GetPolicy", svc.get_policy(&c, &arn).await)
            .await?;
        let c = r.caller();
        let v = r
            .done(
                &c,
                "GetPolicyVersion",
                svc.get_policy_version(&c, &arn, &p.default_version).await,
            )
            .await?;
        return Ok(ok(json!({
            "Kind": "managed",
            "PolicyArn": p.arn,
            "PolicyName": p.name,
            "DefaultVersionId": p.default_version,
            "AttachmentCount": p.attachment_count,
            "AwsManaged": portcullis_core::aws_policies::is_aws_managed(&p.arn),
            "Document": v.document,
        })));
    }
    match (query_param(q, "user"), query_param(q, "name")) {
        (Some(user), Some(name)) => {
            let c = r.caller();
            let p = r
                .done(
                    &c,
                    "GetUserPolicy",
                    svc.get_user_policy(&c, &user, &name).await,
                )
                .await?;
            Ok(ok(json!({
                "Kind": "inline",
                "UserName": user,
                "PolicyName": p.name,
                "Document": p.document,
            })))
        }
        _ => Err(bad("Name the policy: `arn`, or `user` and `name`.")),
    }
}

fn kind_of(body: &Value) -> Result<PolicyKind, Fail> {
    match body.get("Kind").and_then(Value::as_str) {
        Some("managed") => Ok(PolicyKind::Managed),
        Some("inline") => Ok(PolicyKind::Inline),
        _ => Err(bad("`Kind` must be `managed` or `inline`.")),
    }
}

/// The engine's validator (as `CreatePolicy` / `PutUserPolicy` run it) and the linter, for
/// the editor: every error and finding with its line and column (both from 1).
pub fn check_document(text: &str, kind: PolicyKind) -> Value {
    match validate(text, kind) {
        Err(errors) => json!({
            "valid": false,
            "errors": errors.iter().map(|e| json!({
                "code": e.code.as_str(),
                "message": e.message,
                "pointer": e.pointer,
                "line": e.line,
                "column": e.column,
            })).collect::<Vec<_>>(),
            "findings": [],
        }),
        Ok(valid) => {
            let mut findings: Vec<Value> = valid
                .warnings
                .iter()
                .map(|w| {
                    json!({
                        "code": "warning",
                        "severity": "warning",
                        "message": w.message,
                        "fix": "",
                        "pointer": w.pointer,
                        "line": w.line,
                        "column": w.column,
                    })
                })
                .collect();
            let doc = Document {
                name: "policy",
                text,
                policy: &valid.policy,
            };
            findings.extend(lint(&doc).iter().map(|f| {
                json!({
                    "code": f.code,
                    "name": f.name,
                    "severity": f.severity.as_str(),
                    "message": f.message,
                    "fix": f.fix,
                    "pointer": f.pointer,
                    "line": f.line,
                    "column": f.column,
                })
            }));
            json!({"valid": true, "errors": [], "findings": findings})
        }
    }
}

/// `POST /console/api/policy/validate` `{"Document", "Kind"}`: IAM Access Analyzer's
/// `ValidatePolicy`, authorized as `access-analyzer:ValidatePolicy`.
async fn policy_validate(
    SignedInWithCsrf(r): SignedInWithCsrf,
    body: axum::body::Bytes,
) -> Result<Response, Fail> {
    let body = body_json(&body)?;
    let text = field(&body, "Document")?;
    let kind = kind_of(&body)?;
    let c = r.caller();
    let allowed = r
        .state
        .service
        .authorize(&c, "access-analyzer:ValidatePolicy", "*", &[], &[]);
    r.done(&c, "ValidatePolicy", allowed).await?;
    Ok(ok(check_document(text, kind)))
}

/// `POST /console/api/policy/save`: `{"PolicyArn", "Document"}` is `CreatePolicyVersion`
/// with `SetAsDefault`; `{"UserName", "PolicyName", "Document"}` is `PutUserPolicy`.
async fn policy_save(
    SignedInWithCsrf(r): SignedInWithCsrf,
    body: axum::body::Bytes,
) -> Result<Response, Fail> {
    let body = body_json(&body)?;
    let text = field(&body, "Document")?;
    let svc = &r.state.service;
    let c = r.caller();
    if let Some(arn) = body.get("PolicyArn").and_then(Value::as_str) {
        let v = r
            .done(
                &c,
                "CreatePolicyVersion",
                svc.create_policy_version(&c, arn, text, true).await,
            )
            .await?;
        return Ok(ok(json!({"PolicyArn": arn, "VersionId": v.version_id})));
    }
    let user = field(&body, "UserName")?;
    let name = field(&body, "PolicyName")?;
    r.done(
        &c,
        "PutUserPolicy",
        svc.put_user_policy(&c, user, name, text).await,
    )
    .await?;
    Ok(ok(json!({"UserName": user, "PolicyName": name})))
}

// ---- node tags ----------------------------------------------------------------------------

fn is_managed_instance(id: &str) -> bool {
    id.starts_with("mi-")
}

/// EC2 `CreateTags` on an instance, SSM `AddTagsToResource` on a managed instance.
async fn node_tag_add(
    SignedInWithCsrf(r): SignedInWithCsrf,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, Fail> {
    let tags = tags_of(&body_json(&body)?, "Tags")?;
    let svc = &r.state.service;
    let c = r.caller();
    if is_managed_instance(&id) {
        r.done(
            &c,
            "AddTagsToResource",
            svc.add_tags_to_resource(&c, "ManagedInstance", &id, &tags)
                .await,
        )
        .await?;
    } else {
        r.done(
            &c,
            "CreateTags",
            svc.create_tags(&c, std::slice::from_ref(&id), &tags).await,
        )
        .await?;
    }
    Ok(ok(json!({"InstanceId": id})))
}

/// EC2 `DeleteTags` (by key, any value) or SSM `RemoveTagsFromResource`.
async fn node_tag_remove(
    SignedInWithCsrf(r): SignedInWithCsrf,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, Fail> {
    let keys = keys_of(&body_json(&body)?, "TagKeys")?;
    let svc = &r.state.service;
    let c = r.caller();
    if is_managed_instance(&id) {
        r.done(
            &c,
            "RemoveTagsFromResource",
            svc.remove_tags_from_resource(&c, "ManagedInstance", &id, &keys)
                .await,
        )
        .await?;
    } else {
        let removals: Vec<TagRemoval> = keys
            .iter()
            .map(|k| TagRemoval {
                key: k.clone(),
                value: None,
            })
            .collect();
        r.done(
            &c,
            "DeleteTags",
            svc.delete_tags(&c, std::slice::from_ref(&id), &removals)
                .await,
        )
        .await?;
    }
    Ok(ok(json!({"InstanceId": id})))
}

// ---- activations --------------------------------------------------------------------------

async fn activations(SignedIn(r): SignedIn) -> Result<Response, Fail> {
    let c = r.caller();
    let list = r
        .done(
            &c,
            "DescribeActivations",
            r.state.service.describe_activations(&c).await,
        )
        .await?;
    // The same shape as DescribeActivations on the API (and the same `Expired` rule).
    let out: Vec<Value> = list.iter().map(crate::ssm_api::activation_json).collect();
    Ok(ok(json!({"activations": out})))
}

/// `CreateActivation`: the reply is the only place the code is ever shown.
async fn activation_create(
    SignedInWithCsrf(r): SignedInWithCsrf,
    body: axum::body::Bytes,
) -> Result<Response, Fail> {
    let body = body_json(&body)?;
    let text = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let limit = match body.get("RegistrationLimit") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| bad("`RegistrationLimit` must be a whole number."))?,
        ),
    };
    let new = NewActivation {
        iam_role: text("IamRole"),
        description: text("Description"),
        default_instance_name: text("DefaultInstanceName"),
        registration_limit: limit,
        expiration: None,
        tags: Vec::new(),
    };
    let c = r.caller();
    let (a, code) = r
        .done(
            &c,
            "CreateActivation",
            r.state.service.create_activation(&c, &new).await,
        )
        .await?;
    Ok(ok(json!({"ActivationId": a.id, "ActivationCode": code})))
}

async fn activation_delete(
    SignedInWithCsrf(r): SignedInWithCsrf,
    Path(id): Path<String>,
) -> Result<Response, Fail> {
    let c = r.caller();
    r.done(
        &c,
        "DeleteActivation",
        r.state.service.delete_activation(&c, &id).await,
    )
    .await?;
    Ok(ok(json!({"ActivationId": id})))
}

// ---- access analysis ----------------------------------------------------------------------

/// Authorizes an access-analysis answer (the rule in the module docs) and loads the fleet.
/// `users`: the user names the answer is about, or `None` for every user.
async fn analysis_fleet(r: &Req, users: Option<&[String]>) -> Result<Fleet, Fail> {
    let svc = &r.state.service;
    let fleet = Fleet::load(svc.store().as_ref()).await.map_err(|e| {
        let c = r.caller();
        Fail::from(operation_error(&r.state, &c, "SimulatePrincipalPolicy", &e))
    })?;
    let c = r.caller();
    let check = match users {
        None => crate::access_api::authorize_answer(svc, &c, &fleet, None),
        Some(names) => names.iter().try_for_each(|name| {
            crate::access_api::authorize_answer(svc, &c, &fleet, Some(fleet.user_index(name)))
        }),
    };
    r.done(&c, "SimulatePrincipalPolicy", check).await?;
    Ok(fleet)
}

async fn node_who_can(SignedIn(r): SignedIn, Path(id): Path<String>) -> Result<Response, Fail> {
    let fleet = analysis_fleet(&r, None).await?;
    let Some(n) = fleet.node_index(&id) else {
        return Err(Fail::from(json_reply(
            StatusCode::BAD_REQUEST,
            json!({"code": "InvalidInstanceId", "message": format!("Instance id {id} is not valid.")}),
        )));
    };
    let context = default_context(&fleet, portcullis_core::service::now());
    let answers = who_can(&fleet, n, SHELL, &context);
    Ok(ok(json!({
        "node": id,
        "action": SHELL,
        "users": answers.len(),
        "allowed": answers.iter().filter(|a| a.decision.is_allowed()).count(),
        "answers": answers.iter().map(|a| answer_json(&fleet, a)).collect::<Vec<_>>(),
        "rootAlwaysAllowed": true,
    })))
}

async fn user_what_can(SignedIn(r): SignedIn, Path(name): Path<String>) -> Result<Response, Fail> {
    let fleet = analysis_fleet(&r, Some(std::slice::from_ref(&name))).await?;
    let Some(u) = fleet.user_index(&name) else {
        return Err(Fail::from(json_reply(
            StatusCode::NOT_FOUND,
            json!({"code": "NoSuchEntity", "message": format!("The user with name {name} cannot be found.")}),
        )));
    };
    let context = default_context(&fleet, portcullis_core::service::now());
    let answers = what_can(&fleet, u, &[SHELL], &context);
    Ok(ok(json!({
        "user": name,
        "action": SHELL,
        "nodes": answers.len(),
        "allowed": answers.iter().filter(|a| a.decision.is_allowed()).count(),
        "answers": answers.iter().map(|a| answer_json(&fleet, a)).collect::<Vec<_>>(),
    })))
}

fn proposed(text: &str, kind: PolicyKind) -> Result<Policy, Fail> {
    Policy::parse_as(text, kind).map_err(|e| {
        let err = policy_error(&e);
        Fail::from(json_reply(
            StatusCode::BAD_REQUEST,
            json!({"code": err.code, "message": err.message}),
        ))
    })
}

/// The change a "what changes?" request proposes: `Node` with `AddTags`/`RemoveTags`;
/// `PolicyArn` with `Document` (a new default version); or `User` with tags, `AttachPolicy`
/// (its document read beforehand, as `attach_doc`), `DetachPolicy`, or `InlinePolicy` with
/// `Document`.
fn proposed_change(body: &Value, attach_doc: Option<String>) -> Result<Change, Fail> {
    let text = |k: &str| body.get(k).and_then(Value::as_str);
    let has = |k: &str| body.get(k).is_some();
    let add = if has("AddTags") {
        tags_of(body, "AddTags")?
    } else {
        Vec::new()
    };
    let remove = if has("RemoveTags") {
        keys_of(body, "RemoveTags")?
    } else {
        Vec::new()
    };
    if let Some(node) = text("Node") {
        return Ok(Change::NodeTags {
            node: node.to_owned(),
            add,
            remove,
        });
    }
    if let (Some(arn), Some(doc)) = (text("PolicyArn"), text("Document")) {
        return Ok(Change::NewVersion {
            arn: arn.to_owned(),
            document: doc.to_owned(),
            policy: proposed(doc, PolicyKind::Managed)?,
        });
    }
    let user =
        text("User").ok_or_else(|| bad("Say what changes: `Node`, `User` or `PolicyArn`."))?;
    if !add.is_empty() || !remove.is_empty() {
        return Ok(Change::UserTags {
            user: user.to_owned(),
            add,
            remove,
        });
    }
    if let (Some(arn), Some(document)) = (text("AttachPolicy"), attach_doc) {
        let policy = proposed(&document, PolicyKind::Managed)?;
        return Ok(Change::Attach {
            to: Principal::User(user.to_owned()),
            policy: UserPolicy {
                label: arn.to_owned(),
                document,
                policy,
                boundary: false,
            },
        });
    }
    if let Some(arn) = text("DetachPolicy") {
        return Ok(Change::Detach {
            from: Principal::User(user.to_owned()),
            policy: arn.to_owned(),
        });
    }
    if let (Some(name), Some(doc)) = (text("InlinePolicy"), text("Document")) {
        return Ok(Change::PutInline {
            user: user.to_owned(),
            name: name.to_owned(),
            document: doc.to_owned(),
            policy: proposed(doc, PolicyKind::Inline)?,
        });
    }
    Err(bad(
        "Say what changes: `AddTags`/`RemoveTags`, `AttachPolicy`, `DetachPolicy`, or `InlinePolicy` with `Document`.",
    ))
}

/// `POST /console/api/what-changes`: the access diff of a proposed change, nothing saved.
async fn what_changes(
    SignedInWithCsrf(r): SignedInWithCsrf,
    body: axum::body::Bytes,
) -> Result<Response, Fail> {
    let body = body_json(&body)?;
    let before = analysis_fleet(&r, None).await?;
    // A managed policy to attach is read as `GetPolicyVersion` would read it.
    let attach_doc = match body.get("AttachPolicy").and_then(Value::as_str) {
        Some(arn) => {
            let svc = &r.state.service;
            let c = r.caller();
            let p = r
                .done(&c, "GetPolicy", svc.get_policy(&c, arn).await)
                .await?;
            let c = r.caller();
            let v = r
                .done(
                    &c,
                    "GetPolicyVersion",
                    svc.get_policy_version(&c, arn, &p.default_version).await,
                )
                .await?;
            Some(v.document)
        }
        None => None,
    };
    let mut after = before.clone();
    let change = proposed_change(&body, attach_doc)?
        .apply(&mut after)
        .map_err(|e| bad(e.to_string()))?;
    let context = default_context(&before, portcullis_core::service::now());
    let found = diff(&before, &after, &[SHELL], &context);
    let pair = |c: &PairChange| {
        json!({
            "before": answer_json(&before, &c.before),
            "after": answer_json(&after, &c.after),
        })
    };
    Ok(ok(json!({
        "change": change,
        "action": SHELL,
        "gained": found.iter().filter(|c| c.gained).map(pair).collect::<Vec<_>>(),
        "lost": found.iter().filter(|c| !c.gained).map(pair).collect::<Vec<_>>(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_document_gets_errors_with_line_and_column() {
        let text = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [{\"Effect\": \"Allow\", \"Action\": \"ssm:StartSession\", \"Resource\": 5}]\n}";
        let out = check_document(text, PolicyKind::Managed);
        assert_eq!(out["valid"], json!(false));
        let first = &out["errors"][0];
        assert_eq!(first["line"], json!(3));
        assert!(first["column"].as_u64().is_some_and(|c| c > 1), "{out}");
        assert_eq!(first["code"], json!("MalformedPolicyDocument"));
    }

    #[test]
    fn a_valid_document_gets_the_linters_findings() {
        let text = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ssm:StartSession", "Resource": "*"}]}"#;
        let out = check_document(text, PolicyKind::Managed);
        assert_eq!(out["valid"], json!(true));
        let codes: Vec<&str> = out["findings"]
            .as_array()
            .map(|f| f.iter().filter_map(|x| x["code"].as_str()).collect())
            .unwrap_or_default();
        assert!(codes.contains(&"PC010"), "{out}");
    }

    #[test]
    fn query_parameters_are_decoded() {
        let q = Some("arn=arn%3Aaws%3Aiam%3A%3A1%3Apolicy%2FX&user=a+b");
        assert_eq!(
            query_param(q, "arn").as_deref(),
            Some("arn:aws:iam::1:policy/X")
        );
        assert_eq!(query_param(q, "user").as_deref(), Some("a b"));
        assert_eq!(query_param(q, "name"), None);
    }
}
