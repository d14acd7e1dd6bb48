//! IAM and STS over the Query protocol: decode parameters, call the service, write XML.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use portcullis_aws_api::error::{IAM_XMLNS, STS_XMLNS};
use portcullis_aws_api::xml::{query_response, XmlWriter};
use portcullis_aws_api::QueryParams;
use portcullis_core::model::{AccessKey, ManagedPolicy, PolicyVersion, Tag, User};
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
                    w.start("member")
                        .element("Path", &u.path)
                        .element("UserName", &u.name)
                        .element("UserId", &u.user_id)
                        .element("Arn", &u.arn)
                        .element("CreateDate", &iso8601(u.created))
                        .end();
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
            reply(&|w| {
                w.start("PolicyNames");
                for n in &names {
                    w.element("member", n);
                }
                w.end().element("IsTruncated", "false");
            })
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
            reply(&|w| {
                w.start("AttachedPolicies");
                for (name, arn) in &attached {
                    w.start("member")
                        .element("PolicyName", name)
                        .element("PolicyArn", arn)
                        .end();
                }
                w.end().element("IsTruncated", "false");
            })
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
