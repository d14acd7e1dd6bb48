//! IAM and STS over the Query protocol: decode parameters, call the service, write XML.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use portcullis_aws_api::error::{IAM_XMLNS, STS_XMLNS};
use portcullis_aws_api::xml::{query_response, XmlWriter};
use portcullis_aws_api::QueryParams;
use portcullis_core::model::{
    AccessKey, Group, LoginProfile, ManagedPolicy, PolicyVersion, SimulatedStatement,
    SimulationContextEntry, SimulationRequest, SimulationResult, Tag, User,
};
use portcullis_core::{Caller, Error, Result, Service};
use portcullis_iam::iso8601;

/// IAM returns policy documents URL-encoded (RFC 3986); botocore decodes them.
const DOCUMENT_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn required<'a>(p: &'a QueryParams, name: &str) -> Result<&'a str> {
    p.get(name).ok_or_else(|| {
        Error::invalid(
            "MissingParameter",
            format!("The request must contain the parameter {name}"),
        )
    })
}

fn tags(p: &QueryParams, prefix: &str) -> Result<Vec<Tag>> {
    p.structs(prefix)
        .iter()
        .map(|t| {
            let key = t.get("Key").ok_or_else(|| {
                Error::invalid("ValidationError", format!("1 validation error detected: Value null at '{prefix}.N.Key' failed to satisfy constraint: Member must not be null"))
            })?;
            Ok(Tag::new(key, t.get("Value").unwrap_or_default()))
        })
        .collect()
}

fn bool_param(p: &QueryParams, name: &str) -> Result<bool> {
    match p.get(name) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(Error::invalid(
            "ValidationError",
            format!("1 validation error detected: Value '{other}' at '{name}' failed to satisfy constraint: Member must be true or false"),
        )),
    }
}

/// `Some(true|false)` when the parameter is given, `None` when it is not.
fn opt_bool_param(p: &QueryParams, name: &str) -> Result<Option<bool>> {
    match p.get(name) {
        None => Ok(None),
        Some(_) => bool_param(p, name).map(Some),
    }
}

/// A list parameter that must have at least one member (`PolicyInputList.member.N`).
fn required_list(p: &QueryParams, name: &str) -> Result<Vec<String>> {
    let items: Vec<String> = p
        .list(&format!("{name}.member"))
        .into_iter()
        .map(str::to_owned)
        .collect();
    if items.is_empty() {
        return Err(Error::invalid(
            "MissingParameter",
            format!("The request must contain the parameter {name}"),
        ));
    }
    Ok(items)
}

fn string_list(p: &QueryParams, prefix: &str) -> Vec<String> {
    p.list(prefix).into_iter().map(str::to_owned).collect()
}

/// What both simulation actions share: actions, resources, context entries, and the
/// optional extra and boundary policies.
fn simulation_request(p: &QueryParams, policies: Vec<String>) -> Result<SimulationRequest> {
    let context = p
        .structs("ContextEntries.member")
        .iter()
        .map(|e| {
            let key = e.get("ContextKeyName").ok_or_else(|| {
                Error::invalid(
                    "InvalidInput",
                    "Every ContextEntries member must have a ContextKeyName.",
                )
            })?;
            Ok(SimulationContextEntry {
                key: key.to_owned(),
                values: string_list(e, "ContextKeyValues.member"),
                key_type: e.get("ContextKeyType").map(str::to_owned),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(SimulationRequest {
        actions: required_list(p, "ActionNames")?,
        resources: string_list(p, "ResourceArns.member"),
        context,
        policies,
        boundary_policies: string_list(p, "PermissionsBoundaryPolicyInputList.member"),
    })
}

fn write_tags(w: &mut XmlWriter, tags: &[Tag]) {
    w.start("Tags");
    for t in tags {
        w.start("member")
            .element("Key", &t.key)
            .element("Value", &t.value)
            .end();
    }
    w.end();
}

fn write_user(w: &mut XmlWriter, user: &User, tags: Option<&[Tag]>) {
    w.start("User")
        .element("Path", &user.path)
        .element("UserName", &user.name)
        .element("UserId", &user.user_id)
        .element("Arn", &user.arn)
        .element("CreateDate", &iso8601(user.created));
    if let Some(arn) = &user.permissions_boundary {
        w.start("PermissionsBoundary")
            .element("PermissionsBoundaryType", "PermissionsBoundaryPolicy")
            .element("PermissionsBoundaryArn", arn)
            .end();
    }
    if let Some(tags) = tags.filter(|t| !t.is_empty()) {
        write_tags(w, tags);
    }
    w.end();
}

/// A user as `ListUsers` and `GetGroup` list them.
fn write_user_member(w: &mut XmlWriter, u: &User) {
    w.start("member")
        .element("Path", &u.path)
        .element("UserName", &u.name)
        .element("UserId", &u.user_id)
        .element("Arn", &u.arn)
        .element("CreateDate", &iso8601(u.created))
        .end();
}

/// A group, in `<Group>` or a list's `<member>`.
fn write_group(w: &mut XmlWriter, element: &str, g: &Group) {
    w.start(element)
        .element("Path", &g.path)
        .element("GroupName", &g.name)
        .element("GroupId", &g.group_id)
        .element("Arn", &g.arn)
        .element("CreateDate", &iso8601(g.created))
        .end();
}

fn write_groups(w: &mut XmlWriter, groups: &[Group]) {
    w.start("Groups");
    for g in groups {
        write_group(w, "member", g);
    }
    w.end().element("IsTruncated", "false");
}

fn write_attached(w: &mut XmlWriter, attached: &[(String, String)]) {
    w.start("AttachedPolicies");
    for (name, arn) in attached {
        w.start("member")
            .element("PolicyName", name)
            .element("PolicyArn", arn)
            .end();
    }
    w.end().element("IsTruncated", "false");
}

fn write_policy_names(w: &mut XmlWriter, names: &[String]) {
    w.start("PolicyNames");
    for n in names {
        w.element("member", n);
    }
    w.end().element("IsTruncated", "false");
}

/// The password itself is never written back, nor its hash.
fn write_login_profile(w: &mut XmlWriter, profile: &LoginProfile) {
    w.start("LoginProfile")
        .element("UserName", &profile.user_name)
        .element("CreateDate", &iso8601(profile.created))
        .element(
            "PasswordResetRequired",
            if profile.password_reset_required {
                "true"
            } else {
                "false"
            },
        )
        .end();
}

/// A version without its document (`CreatePolicyVersion`, `ListPolicyVersions`).
fn write_version_metadata(w: &mut XmlWriter, element: &str, v: &PolicyVersion) {
    w.start(element)
        .element("VersionId", &v.version_id)
        .element(
            "IsDefaultVersion",
            if v.is_default { "true" } else { "false" },
        )
        .element("CreateDate", &iso8601(v.created))
        .end();
}

fn write_statements(w: &mut XmlWriter, statements: &[SimulatedStatement]) {
    w.start("MatchedStatements");
    for s in statements {
        w.start("member")
            .element("SourcePolicyId", &s.source_policy_id);
        if let Some(t) = &s.source_policy_type {
            w.element("SourcePolicyType", t);
        }
        for (element, (line, column)) in [("StartPosition", s.start), ("EndPosition", s.end)] {
            w.start(element)
                .element("Line", &line.to_string())
                .element("Column", &column.to_string())
                .end();
        }
        w.end();
    }
    w.end();
}

fn write_missing(w: &mut XmlWriter, keys: &[String]) {
    w.start("MissingContextValues");
    for k in keys {
        w.element("member", k);
    }
    w.end();
}

fn write_boundary_detail(w: &mut XmlWriter, allowed: Option<bool>) {
    if let Some(allowed) = allowed {
        w.start("PermissionsBoundaryDecisionDetail")
            .element(
                "AllowedByPermissionsBoundary",
                if allowed { "true" } else { "false" },
            )
            .end();
    }
}

/// `EvaluationResults`: one member per action; per resource under
/// `ResourceSpecificResults` when resources were named.
fn write_simulation(w: &mut XmlWriter, results: &[SimulationResult]) {
    w.start("EvaluationResults");
    for r in results {
        w.start("member")
            .element("EvalActionName", &r.action)
            .element("EvalResourceName", &r.resource_name)
            .element("EvalDecision", r.decision.as_str());
        write_statements(w, &r.matched_statements);
        write_missing(w, &r.missing_context_values);
        if !r.resources.is_empty() {
            // Present and empty for a same-account simulation of named resources.
            w.start("EvalDecisionDetails").end();
        }
        write_boundary_detail(w, r.allowed_by_boundary);
        if !r.resources.is_empty() {
            w.start("ResourceSpecificResults");
            for rr in &r.resources {
                w.start("member")
                    .element("EvalResourceName", &rr.resource)
                    .element("EvalResourceDecision", rr.decision.as_str());
                write_statements(w, &rr.matched_statements);
                write_missing(w, &rr.missing_context_values);
                write_boundary_detail(w, rr.allowed_by_boundary);
                w.end();
            }
            w.end();
        }
        w.end();
    }
    w.end().element("IsTruncated", "false");
}

fn write_policy(w: &mut XmlWriter, p: &ManagedPolicy) {
    w.start("Policy")
        .element("PolicyName", &p.name)
        .element("PolicyId", &p.policy_id)
        .element("Arn", &p.arn)
        .element("Path", &p.path)
        .element("DefaultVersionId", &p.default_version)
        .element("AttachmentCount", &p.attachment_count.to_string())
        .element("PermissionsBoundaryUsageCount", "0")
        .element("IsAttachable", "true")
        .element("Description", &p.description)
        .element("CreateDate", &iso8601(p.created))
        .element("UpdateDate", &iso8601(p.updated))
        .end();
}

fn write_version(w: &mut XmlWriter, v: &PolicyVersion) {
    w.start("PolicyVersion")
        .element("Document", &encode_document(&v.document))
        .element("VersionId", &v.version_id)
        .element(
            "IsDefaultVersion",
            if v.is_default { "true" } else { "false" },
        )
        .element("CreateDate", &iso8601(v.created))
        .end();
}

fn write_key_metadata(w: &mut XmlWriter, user: &str, k: &AccessKey) {
    w.element("UserName", user)
        .element("AccessKeyId", &k.id)
        .element("Status", k.status.as_str())
        .element("CreateDate", &iso8601(k.created));
}

fn encode_document(doc: &str) -> String {
    utf8_percent_encode(doc, DOCUMENT_ENCODE).to_string()
}

/// Answers an IAM action; the XML body on success.
pub async fn handle(
    svc: &Service,
    caller: &Caller,
    action: &str,
    p: &QueryParams,
) -> Result<String> {
    let rid = caller.request_id.as_str();
    let reply = |f: &dyn Fn(&mut XmlWriter)| query_response(action, IAM_XMLNS, rid, |w| f(w));
    let empty = || query_response(action, IAM_XMLNS, rid, |_| {});
    Ok(match action {
        "CreateUser" => {
            let tags = tags(p, "Tags.member")?;
            let user = svc
                .create_user(
                    caller,
                    required(p, "UserName")?,
                    p.get("Path"),
                    &tags,
                    p.get("PermissionsBoundary"),
                )
                .await?;
            reply(&|w| write_user(w, &user, Some(&tags)))
        }
        "GetUser" => {
            let (user, tags) = svc.get_user(caller, p.get("UserName")).await?;
            reply(&|w| write_user(w, &user, Some(&tags)))
        }
        "ListUsers" => {
            let users = svc.list_users(caller, p.get("PathPrefix")).await?;
            reply(&|w| {
                w.element("IsTruncated", "false").start("Users");
                for u in &users {
                    write_user_member(w, u);
                }
                w.end();
            })
        }
        "DeleteUser" => {
            svc.delete_user(caller, required(p, "UserName")?).await?;
            empty()
        }
        "TagUser" => {
            svc.tag_user(caller, required(p, "UserName")?, &tags(p, "Tags.member")?)
                .await?;
            empty()
        }
        "UntagUser" => {
            let keys: Vec<String> = p
                .list("TagKeys.member")
                .into_iter()
                .map(str::to_owned)
                .collect();
            svc.untag_user(caller, required(p, "UserName")?, &keys)
                .await?;
            empty()
        }
        "ListUserTags" => {
            let tags = svc.list_user_tags(caller, required(p, "UserName")?).await?;
            reply(&|w| {
                write_tags(w, &tags);
                w.element("IsTruncated", "false");
            })
        }
        "CreateAccessKey" => {
            let key = svc.create_access_key(caller, p.get("UserName")).await?;
            let user = match &key.owner {
                portcullis_core::model::KeyOwner::User(name) => name.clone(),
                portcullis_core::model::KeyOwner::Root => String::new(),
            };
            reply(&|w| {
                w.start("AccessKey");
                write_key_metadata(w, &user, &key);
                w.element("SecretAccessKey", &key.secret).end();
            })
        }
        "ListAccessKeys" => {
            let (user, keys) = svc.list_access_keys(caller, p.get("UserName")).await?;
            reply(&|w| {
                w.element("UserName", &user).start("AccessKeyMetadata");
                for k in &keys {
                    w.start("member");
                    write_key_metadata(w, &user, k);
                    w.end();
                }
                w.end().element("IsTruncated", "false");
            })
        }
        "UpdateAccessKey" => {
            svc.update_access_key(
                caller,
                p.get("UserName"),
                required(p, "AccessKeyId")?,
                required(p, "Status")?,
            )
            .await?;
            empty()
        }
        "DeleteAccessKey" => {
            svc.delete_access_key(caller, p.get("UserName"), required(p, "AccessKeyId")?)
                .await?;
            empty()
        }
        "PutUserPolicy" => {
            svc.put_user_policy(
                caller,
                required(p, "UserName")?,
                required(p, "PolicyName")?,
                required(p, "PolicyDocument")?,
            )
            .await?;
            empty()
        }
        "GetUserPolicy" => {
            let user = required(p, "UserName")?;
            let policy = svc
                .get_user_policy(caller, user, required(p, "PolicyName")?)
                .await?;
            reply(&|w| {
                w.element("UserName", user)
                    .element("PolicyName", &policy.name)
                    .element("PolicyDocument", &encode_document(&policy.document));
            })
        }
        "ListUserPolicies" => {
            let names = svc
                .list_user_policies(caller, required(p, "UserName")?)
                .await?;
            reply(&|w| write_policy_names(w, &names))
        }
        "DeleteUserPolicy" => {
            svc.delete_user_policy(caller, required(p, "UserName")?, required(p, "PolicyName")?)
                .await?;
            empty()
        }
        "CreatePolicy" => {
            let policy = svc
                .create_policy(
                    caller,
                    required(p, "PolicyName")?,
                    p.get("Path"),
                    required(p, "PolicyDocument")?,
                    p.get("Description"),
                )
                .await?;
            reply(&|w| write_policy(w, &policy))
        }
        "GetPolicy" => {
            let policy = svc.get_policy(caller, required(p, "PolicyArn")?).await?;
            reply(&|w| write_policy(w, &policy))
        }
        "GetPolicyVersion" => {
            let version = svc
                .get_policy_version(caller, required(p, "PolicyArn")?, required(p, "VersionId")?)
                .await?;
            reply(&|w| write_version(w, &version))
        }
        "ListPolicies" => {
            let policies = svc
                .list_policies(caller, p.get("Scope"), bool_param(p, "OnlyAttached")?)
                .await?;
            reply(&|w| {
                w.element("IsTruncated", "false").start("Policies");
                for policy in &policies {
                    w.start("member")
                        .element("PolicyName", &policy.name)
                        .element("PolicyId", &policy.policy_id)
                        .element("Arn", &policy.arn)
                        .element("Path", &policy.path)
                        .element("DefaultVersionId", &policy.default_version)
                        .element("AttachmentCount", &policy.attachment_count.to_string())
                        .element("IsAttachable", "true")
                        .element("CreateDate", &iso8601(policy.created))
                        .element("UpdateDate", &iso8601(policy.updated))
                        .end();
                }
                w.end();
            })
        }
        "AttachUserPolicy" => {
            svc.attach_user_policy(caller, required(p, "UserName")?, required(p, "PolicyArn")?)
                .await?;
            empty()
        }
        "DetachUserPolicy" => {
            svc.detach_user_policy(caller, required(p, "UserName")?, required(p, "PolicyArn")?)
                .await?;
            empty()
        }
        "ListAttachedUserPolicies" => {
            let attached = svc
                .list_attached_user_policies(caller, required(p, "UserName")?)
                .await?;
            reply(&|w| write_attached(w, &attached))
        }
        "PutUserPermissionsBoundary" => {
            svc.put_user_permissions_boundary(
                caller,
                required(p, "UserName")?,
                required(p, "PermissionsBoundary")?,
            )
            .await?;
            empty()
        }
        "DeleteUserPermissionsBoundary" => {
            svc.delete_user_permissions_boundary(caller, required(p, "UserName")?)
                .await?;
            empty()
        }
        "CreateGroup" => {
            let group = svc
                .create_group(caller, required(p, "GroupName")?, p.get("Path"))
                .await?;
            reply(&|w| write_group(w, "Group", &group))
        }
        "GetGroup" => {
            let (group, users) = svc.get_group(caller, required(p, "GroupName")?).await?;
            reply(&|w| {
                write_group(w, "Group", &group);
                w.start("Users");
                for u in &users {
                    write_user_member(w, u);
                }
                w.end().element("IsTruncated", "false");
            })
        }
        "ListGroups" => {
            let groups = svc.list_groups(caller, p.get("PathPrefix")).await?;
            reply(&|w| write_groups(w, &groups))
        }
        "DeleteGroup" => {
            svc.delete_group(caller, required(p, "GroupName")?).await?;
            empty()
        }
        "AddUserToGroup" => {
            svc.add_user_to_group(caller, required(p, "GroupName")?, required(p, "UserName")?)
                .await?;
            empty()
        }
        "RemoveUserFromGroup" => {
            svc.remove_user_from_group(caller, required(p, "GroupName")?, required(p, "UserName")?)
                .await?;
            empty()
        }
        "ListGroupsForUser" => {
            let groups = svc
                .list_groups_for_user(caller, required(p, "UserName")?)
                .await?;
            reply(&|w| write_groups(w, &groups))
        }
        "PutGroupPolicy" => {
            svc.put_group_policy(
                caller,
                required(p, "GroupName")?,
                required(p, "PolicyName")?,
                required(p, "PolicyDocument")?,
            )
            .await?;
            empty()
        }
        "GetGroupPolicy" => {
            let (group, policy) = svc
                .get_group_policy(
                    caller,
                    required(p, "GroupName")?,
                    required(p, "PolicyName")?,
                )
                .await?;
            reply(&|w| {
                w.element("GroupName", &group.name)
                    .element("PolicyName", &policy.name)
                    .element("PolicyDocument", &encode_document(&policy.document));
            })
        }
        "ListGroupPolicies" => {
            let names = svc
                .list_group_policies(caller, required(p, "GroupName")?)
                .await?;
            reply(&|w| write_policy_names(w, &names))
        }
        "DeleteGroupPolicy" => {
            svc.delete_group_policy(
                caller,
                required(p, "GroupName")?,
                required(p, "PolicyName")?,
            )
            .await?;
            empty()
        }
        "AttachGroupPolicy" => {
            svc.attach_group_policy(caller, required(p, "GroupName")?, required(p, "PolicyArn")?)
                .await?;
            empty()
        }
        "DetachGroupPolicy" => {
            svc.detach_group_policy(caller, required(p, "GroupName")?, required(p, "PolicyArn")?)
                .await?;
            empty()
        }
        "ListAttachedGroupPolicies" => {
            let attached = svc
                .list_attached_group_policies(
                    caller,
                    required(p, "GroupName")?,
                    p.get("PathPrefix"),
                )
                .await?;
            reply(&|w| write_attached(w, &attached))
        }
        "CreatePolicyVersion" => {
            let version = svc
                .create_policy_version(
                    caller,
                    required(p, "PolicyArn")?,
                    required(p, "PolicyDocument")?,
                    bool_param(p, "SetAsDefault")?,
                )
                .await?;
            reply(&|w| write_version_metadata(w, "PolicyVersion", &version))
        }
        "ListPolicyVersions" => {
            let versions = svc
                .list_policy_versions(caller, required(p, "PolicyArn")?)
                .await?;
            reply(&|w| {
                w.start("Versions");
                for v in &versions {
                    write_version_metadata(w, "member", v);
                }
                w.end().element("IsTruncated", "false");
            })
        }
        "SetDefaultPolicyVersion" => {
            svc.set_default_policy_version(
                caller,
                required(p, "PolicyArn")?,
                required(p, "VersionId")?,
            )
            .await?;
            empty()
        }
        "DeletePolicyVersion" => {
            svc.delete_policy_version(caller, required(p, "PolicyArn")?, required(p, "VersionId")?)
                .await?;
            empty()
        }
        "DeletePolicy" => {
            svc.delete_policy(caller, required(p, "PolicyArn")?).await?;
            empty()
        }
        "CreateLoginProfile" => {
            let profile = svc
                .create_login_profile(
                    caller,
                    p.get("UserName"),
                    required(p, "Password")?,
                    bool_param(p, "PasswordResetRequired")?,
                )
                .await?;
            reply(&|w| write_login_profile(w, &profile))
        }
        "GetLoginProfile" => {
            let profile = svc.get_login_profile(caller, p.get("UserName")).await?;
            reply(&|w| write_login_profile(w, &profile))
        }
        "UpdateLoginProfile" => {
            svc.update_login_profile(
                caller,
                required(p, "UserName")?,
                p.get("Password"),
                opt_bool_param(p, "PasswordResetRequired")?,
            )
            .await?;
            empty()
        }
        "DeleteLoginProfile" => {
            svc.delete_login_profile(caller, p.get("UserName")).await?;
            empty()
        }
        "SimulatePrincipalPolicy" => {
            // `CallerArn`, `ResourcePolicy`, `ResourceOwner` and `ResourceHandlingOption`
            // are not used: Portcullis has no resource-based policies.
            let source = required(p, "PolicySourceArn")?;
            let request = simulation_request(p, string_list(p, "PolicyInputList.member"))?;
            let results = svc
                .simulate_principal_policy(caller, source, &request)
                .await?;
            reply(&|w| write_simulation(w, &results))
        }
        "SimulateCustomPolicy" => {
            let request = simulation_request(p, required_list(p, "PolicyInputList")?)?;
            let results = svc.simulate_custom_policy(caller, &request).await?;
            reply(&|w| write_simulation(w, &results))
        }
        other => return Err(invalid_action(other)),
    })
}

fn invalid_action(action: &str) -> Error {
    Error::invalid(
        "InvalidAction",
        format!("Could not find operation {action} for version 2010-05-08"),
    )
}

/// Answers an STS action.
pub fn handle_sts(svc: &Service, caller: &Caller, action: &str) -> Result<String> {
    match action {
        "GetCallerIdentity" => {
            let id = svc.get_caller_identity(caller);
            Ok(query_response(action, STS_XMLNS, &caller.request_id, |w| {
                w.element("UserId", &id.user_id)
                    .element("Account", &id.account)
                    .element("Arn", &id.arn);
            }))
        }
        other => Err(Error::invalid(
            "InvalidAction",
            format!("Could not find operation {other} for version 2011-06-15"),
        )),
    }
}
