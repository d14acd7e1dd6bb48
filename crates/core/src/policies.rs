//! The policies and the principal that decide what a user may do, read from the store.
//!
//! Authorization ([`crate::Service::authenticate`]), the policy simulator and access
//! analysis (`crates/analysis`) all read them through here, so the three cannot drift apart.
//! These functions only read.

use portcullis_iam::{Policy, PolicyKind, PolicySet, Principal, Tags};

use crate::error::{Error, Result};
use crate::model::{Tag, User};
use crate::store::{PolicyOwner, Store};

/// One policy that applies to a user: an identity policy (the user's or a group's, inline or
/// managed) or the permissions boundary.
#[derive(Debug, Clone)]
pub struct UserPolicy {
    /// The name the engine and explanations know it by: `user NAME inline policy P`,
    /// `group NAME inline policy P`, or the managed policy's ARN.
    pub label: String,
    /// The document text (positions in explanations refer to it).
    pub document: String,
    pub policy: Policy,
    /// The permissions boundary rather than an identity policy.
    pub boundary: bool,
}

/// Reads a stored document. Stored documents passed validation when written, so one that
/// no longer parses fails the call (closed), never silently drops a statement.
pub(crate) fn stored_policy(document: &str, kind: PolicyKind) -> Result<Policy> {
    Policy::parse_as(document, kind).map_err(|_| Error::internal())
}

/// The default version's document of a managed policy.
pub async fn default_document(store: &dyn Store, arn: &str) -> Result<String> {
    let versions = store.policy_versions(arn).await?;
    versions
        .into_iter()
        .find(|v| v.is_default)
        .map(|v| v.document)
        .ok_or_else(Error::internal)
}

/// Every policy that applies to `user`, in the order authorization adds them: the user's
/// inline then attached policies, then each group's (in the store's group order), then
/// (with `with_boundary`) the permissions boundary.
pub async fn user_policies(
    store: &dyn Store,
    user: &User,
    with_boundary: bool,
) -> Result<Vec<UserPolicy>> {
    let mut out = Vec::new();
    let mut owners = vec![(
        PolicyOwner::User(user.name.clone()),
        format!("user {}", user.name),
    )];
    for group in store.groups_for_user(&user.name).await? {
        owners.push((
            PolicyOwner::Group(group.name.clone()),
            format!("group {}", group.name),
        ));
    }
    for (owner, label) in &owners {
        for inline in store.list_inline_policies(owner).await? {
            out.push(UserPolicy {
                label: format!("{label} inline policy {}", inline.name),
                policy: stored_policy(&inline.document, PolicyKind::Inline)?,
                document: inline.document,
                boundary: false,
            });
        }
        for arn in store.attached_policies(owner).await? {
            let document = default_document(store, &arn).await?;
            out.push(UserPolicy {
                policy: stored_policy(&document, PolicyKind::Managed)?,
                label: arn,
                document,
                boundary: false,
            });
        }
    }
    if let Some(arn) = user.permissions_boundary.as_ref().filter(|_| with_boundary) {
        let document = default_document(store, arn).await?;
        out.push(UserPolicy {
            policy: stored_policy(&document, PolicyKind::Managed)?,
            label: arn.clone(),
            document,
            boundary: true,
        });
    }
    Ok(out)
}

/// The engine's policy set for these policies.
pub fn policy_set(policies: &[UserPolicy]) -> PolicySet {
    let mut set = PolicySet::new();
    for p in policies {
        if p.boundary {
            set.set_boundary(&p.label, &p.policy);
        } else {
            set.add_identity(&p.label, &p.policy);
        }
    }
    set
}

/// The principal an IAM user's requests carry: their ARN, name, user id and tags.
pub fn user_principal(user: &User, account: &str, tags: &[Tag]) -> Principal {
    let tags: Tags = tags
        .iter()
        .map(|t| (t.key.as_str(), t.value.as_str()))
        .collect();
    Principal::user(&user.arn, account, &user.name, &user.user_id).with_tags(tags)
}
