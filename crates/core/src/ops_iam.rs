//! IAM operations: users, groups, access keys, login profiles, tags, inline and managed
//! policies and their versions, boundaries, and the policy simulator.
//!
//! Each operation authorizes first (the action against the target's ARN), then checks
//! existence, then writes; IAM changes invalidate the identity cache. Whatever must hold
//! across a check and a write (quotas, a delete refused while something depends on it) is
//! checked by the store inside the write's transaction.

use std::collections::HashMap;

use portcullis_iam::{
    iso8601, policy_size, validate as validate_policy, Context, Decision, Effect, Key, LayerKind,
    Policy, PolicyError, PolicyKind, PolicySet, Principal, Request, Statement, StatementOutcome,
    Tags,
};

use crate::aws_policies::is_aws_managed;
use crate::error::{Error, Result};
use crate::ids;
use crate::model::{
    AccessKey, Group, InlinePolicy, KeyOwner, KeyStatus, LoginProfile, ManagedPolicy,
    PolicyVersion, SimulatedResource, SimulatedStatement, SimulationDecision, SimulationRequest,
    SimulationResult, Tag, User,
};
use crate::service::{now, Caller, Service};
use crate::store::{conflict, PolicyOwner, StoreError};
use crate::validate;

/// IAM's quota for a user's inline policies, together (characters without whitespace).
const USER_INLINE_QUOTA: usize = 2048;
/// IAM's quota for a group's inline policies, together (characters without whitespace).
const GROUP_INLINE_QUOTA: usize = 5120;
const ACCESS_KEYS_PER_USER: usize = 2;
const MAX_TAGS: usize = 50;
/// A managed policy keeps at most this many versions.
const VERSIONS_PER_POLICY: usize = 5;
/// IAM's default password policy: at least 8 characters.
const MIN_PASSWORD_LENGTH: usize = 8;
/// IAM's `passwordType`: at most 128 characters.
const MAX_PASSWORD_LENGTH: usize = 128;
/// IAM's `policyVersionIdType`.
const VERSION_ID_PATTERN: &str = "v[1-9][0-9]*(\\.[A-Za-z0-9-]*)?";

fn no_such_user(name: &str) -> Error {
    Error::new(
        404,
        "NoSuchEntity",
        format!("The user with name {name} cannot be found."),
    )
}

fn no_such_group(name: &str) -> Error {
    Error::new(
        404,
        "NoSuchEntity",
        format!("The group with name {name} cannot be found."),
    )
}

fn no_such_login_profile(name: &str) -> Error {
    Error::new(
        404,
        "NoSuchEntity",
        format!("Login Profile for User {name} cannot be found."),
    )
}

fn no_such_version(arn: &str, version_id: &str) -> Error {
    Error::new(
        404,
        "NoSuchEntity",
        format!("Policy {arn} version {version_id} does not exist or is not attachable."),
    )
}

/// IAM's `DeleteConflict` for what the store says is still there.
fn delete_conflict(what: &str) -> Error {
    let message = match what {
        conflict::LOGIN_PROFILE => "Cannot delete entity, must delete login profile first.",
        conflict::ACCESS_KEYS => "Cannot delete entity, must delete access keys first.",
        conflict::INLINE_POLICIES => "Cannot delete entity, must delete policies first.",
        conflict::ATTACHED_POLICIES => "Cannot delete entity, must detach all policies first.",
        conflict::GROUP_MEMBERSHIPS => "Cannot delete entity, must remove users from group first.",
        conflict::POLICY_ATTACHMENTS | conflict::PERMISSIONS_BOUNDARY => {
            "Cannot delete a policy attached to entities."
        }
        conflict::POLICY_VERSIONS => {
            "This policy has more than one version. Before you delete a policy, you must \
             delete the policy's versions. The default version is deleted with the policy."
        }
        conflict::DEFAULT_VERSION => "Cannot delete the default version of a policy.",
        _ => "Cannot delete entity, must remove referenced objects first.",
    };
    Error::new(409, "DeleteConflict", message)
}

/// A store error, with `Conflict` worded as IAM's `DeleteConflict`.
fn from_store(e: StoreError) -> Error {
    match e {
        StoreError::Conflict(what) => delete_conflict(&what),
        other => Error::from(other),
    }
}

/// A policy ARN's name and path: `arn:aws:iam::1:policy/ops/Start` → (`Start`, `/ops/`).
fn policy_name_and_path(arn: &str) -> (String, String) {
    let resource = arn.splitn(6, ':').nth(5).unwrap_or(arn);
    let within = resource.strip_prefix("policy").unwrap_or(resource);
    match within.rsplit_once('/') {
        Some((path, name)) => (name.to_owned(), format!("{path}/")),
        None => (within.to_owned(), "/".to_owned()),
    }
}

fn no_such_policy(arn: &str) -> Error {
    Error::new(
        404,
        "NoSuchEntity",
        format!("Policy {arn} does not exist or is not attachable."),
    )
}

/// IAM's refusal of a document: `MalformedPolicyDocument` (or `LimitExceeded`) with the
/// engine's message, which names the problem and where it is.
pub fn policy_error(e: &PolicyError) -> Error {
    let status = if e.code == portcullis_iam::ErrorCode::LimitExceeded {
        409
    } else {
        400
    };
    let location = if e.pointer.is_empty() {
        format!("line {}, column {}", e.line, e.column)
    } else {
        format!("{}, line {}, column {}", e.pointer, e.line, e.column)
    };
    Error::new(
        status,
        e.code.as_str(),
        format!("{} (at {location})", e.message),
    )
}

fn check_document(document: &str, kind: PolicyKind) -> Result<()> {
    validate_policy(document, kind)
        .map(|_| ())
        .map_err(|errors| errors.first().map_or_else(Error::internal, policy_error))
}

impl Service {
    pub fn user_arn(&self, path: &str, name: &str) -> String {
        format!("arn:aws:iam::{}:user{path}{name}", self.account.id)
    }

    pub fn policy_arn(&self, path: &str, name: &str) -> String {
        format!("arn:aws:iam::{}:policy{path}{name}", self.account.id)
    }

    /// The ARN to authorize against for a named user (their real path if they exist).
    async fn target_user(&self, name: &str) -> Result<(String, Option<User>)> {
        validate::iam_name("userName", name, 64)?;
        let user = self.store.user(name).await?;
        let arn = user
            .as_ref()
            .map_or_else(|| self.user_arn("/", name), |u| u.arn.clone());
        Ok((arn, user))
    }

    /// The user an operation without `UserName` acts on: the caller (IAM's rule).
    fn default_user<'a>(&self, caller: &'a Caller, given: Option<&'a str>) -> Result<&'a str> {
        match given {
            Some(name) => Ok(name),
            None => caller
                .identity
                .user
                .as_ref()
                .map(|u| u.name.as_str())
                .ok_or_else(|| {
                    Error::invalid(
                        "ValidationError",
                        "Must specify userName when calling with non-User credentials",
                    )
                }),
        }
    }

    pub async fn create_user(
        &self,
        caller: &Caller,
        name: &str,
        path: Option<&str>,
        tags: &[Tag],
        boundary: Option<&str>,
    ) -> Result<User> {
        let path = path.unwrap_or("/");
        validate::iam_name("userName", name, 64)?;
        validate::iam_path("path", path)?;
        validate::tags("InvalidInput", "tags", tags, MAX_TAGS)?;
        let arn = self.user_arn(path, name);
        let request_keys = validate::request_tag_keys(tags);
        let mut extra: Vec<(&str, Vec<String>)> = request_keys
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        if let Some(b) = boundary {
            extra.push(("iam:PermissionsBoundary", vec![b.to_owned()]));
        }
        self.authorize(caller, "iam:CreateUser", &arn, &[], &extra)?;
        if let Some(b) = boundary {
            if self.store.managed_policy(b).await?.is_none() {
                return Err(no_such_policy(b));
            }
        }
        let user = User {
            name: name.to_owned(),
            user_id: ids::iam_unique_id("AIDA"),
            arn,
            path: path.to_owned(),
            created: now(),
            permissions_boundary: boundary.map(str::to_owned),
        };
        match self.store.insert_user(&user, tags).await {
            Err(StoreError::AlreadyExists) => Err(Error::new(
                409,
                "EntityAlreadyExists",
                format!("User with name {name} already exists."),
            )),
            other => other.map_err(Error::from),
        }?;
        self.invalidate();
        Ok(user)
    }

    /// `GetUser`: a named user, or the caller.
    pub async fn get_user(&self, caller: &Caller, name: Option<&str>) -> Result<(User, Vec<Tag>)> {
        let name = self.default_user(caller, name)?;
        let (arn, user) = self.target_user(name).await?;
        self.authorize(caller, "iam:GetUser", &arn, &[], &[])?;
        let user = user.ok_or_else(|| no_such_user(name))?;
        let tags = self.store.user_tags(name).await?;
        Ok((user, tags))
    }

    pub async fn list_users(
        &self,
        caller: &Caller,
        path_prefix: Option<&str>,
    ) -> Result<Vec<User>> {
        let prefix = path_prefix.unwrap_or("/");
        self.authorize(
            caller,
            "iam:ListUsers",
            &self.user_arn(prefix, ""),
            &[],
            &[],
        )?;
        let users = self.store.list_users().await?;
        Ok(users
            .into_iter()
            .filter(|u| u.path.starts_with(prefix))
            .collect())
    }

    /// `DeleteUser`: refused with `DeleteConflict` while the user still has a login profile,
    /// keys, policies or groups, as IAM does (the store checks inside the delete).
    pub async fn delete_user(&self, caller: &Caller, name: &str) -> Result<()> {
        let (arn, user) = self.target_user(name).await?;
        self.authorize(caller, "iam:DeleteUser", &arn, &[], &[])?;
        user.ok_or_else(|| no_such_user(name))?;
        match self.store.delete_user(name).await {
            Err(StoreError::NotFound) => Err(no_such_user(name)),
            other => other.map_err(from_store),
        }?;
        self.invalidate();
        Ok(())
    }

    pub async fn tag_user(&self, caller: &Caller, name: &str, tags: &[Tag]) -> Result<()> {
        let (arn, user) = self.target_user(name).await?;
        validate::tags("InvalidInput", "tags", tags, MAX_TAGS)?;
        let request_keys = validate::request_tag_keys(tags);
        let extra: Vec<(&str, Vec<String>)> = request_keys
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        let existing = match &user {
            Some(_) => self.store.user_tags(name).await?,
            None => Vec::new(),
        };
        self.authorize(caller, "iam:TagUser", &arn, &existing, &extra)?;
        user.ok_or_else(|| no_such_user(name))?;
        let merged = validate::merge_tags(existing, tags);
        validate::tags("LimitExceeded", "tags", &merged, MAX_TAGS)?;
        self.store.set_user_tags(name, &merged).await?;
        self.invalidate();
        Ok(())
    }

    pub async fn untag_user(&self, caller: &Caller, name: &str, keys: &[String]) -> Result<()> {
        let (arn, user) = self.target_user(name).await?;
        let existing = match &user {
            Some(_) => self.store.user_tags(name).await?,
            None => Vec::new(),
        };
        self.authorize(
            caller,
            "iam:UntagUser",
            &arn,
            &existing,
            &[("aws:TagKeys", keys.to_vec())],
        )?;
        user.ok_or_else(|| no_such_user(name))?;
        let kept: Vec<Tag> = existing
            .into_iter()
            .filter(|t| !keys.contains(&t.key))
            .collect();
        self.store.set_user_tags(name, &kept).await?;
        self.invalidate();
        Ok(())
    }

    pub async fn list_user_tags(&self, caller: &Caller, name: &str) -> Result<Vec<Tag>> {
        let (arn, user) = self.target_user(name).await?;
        self.authorize(caller, "iam:ListUserTags", &arn, &[], &[])?;
        user.ok_or_else(|| no_such_user(name))?;
        Ok(self.store.user_tags(name).await?)
    }

    /// `CreateAccessKey`: at most two per user. The secret is returned once, here.
    pub async fn create_access_key(
        &self,
        caller: &Caller,
        name: Option<&str>,
    ) -> Result<AccessKey> {
        let name = self.default_user(caller, name)?;
        let (arn, user) = self.target_user(name).await?;
        self.authorize(caller, "iam:CreateAccessKey", &arn, &[], &[])?;
        user.ok_or_else(|| no_such_user(name))?;
        let (id, secret) = ids::access_key_pair();
        let key = AccessKey {
            id,
            secret,
            owner: KeyOwner::User(name.to_owned()),
            status: KeyStatus::Active,
            created: now(),
        };
        match self
            .store
            .insert_access_key(&key, ACCESS_KEYS_PER_USER)
            .await
        {
            Err(StoreError::LimitExceeded) => Err(Error::new(
                409,
                "LimitExceeded",
                format!("Cannot exceed quota for AccessKeysPerUser: {ACCESS_KEYS_PER_USER}"),
            )),
            Err(StoreError::NotFound) => Err(no_such_user(name)),
            other => other.map_err(Error::from),
        }?;
        Ok(key)
    }

    pub async fn list_access_keys(
        &self,
        caller: &Caller,
        name: Option<&str>,
    ) -> Result<(String, Vec<AccessKey>)> {
        let name = self.default_user(caller, name)?;
        let (arn, user) = self.target_user(name).await?;
        self.authorize(caller, "iam:ListAccessKeys", &arn, &[], &[])?;
        user.ok_or_else(|| no_such_user(name))?;
        let keys = self
            .store
            .list_access_keys(&KeyOwner::User(name.to_owned()))
            .await?;
        Ok((name.to_owned(), keys))
    }

    /// The user's own key, or `NoSuchEntity` (a key of someone else is reported as missing).
    async fn owned_key(&self, name: &str, key_id: &str) -> Result<AccessKey> {
        match self.store.access_key(key_id).await? {
            Some(key) if key.owner == KeyOwner::User(name.to_owned()) => Ok(key),
            _ => Err(Error::new(
                404,
                "NoSuchEntity",
                format!("The Access Key with id {key_id} cannot be found."),
            )),
        }
    }

    pub async fn update_access_key(
        &self,
        caller: &Caller,
        name: Option<&str>,
        key_id: &str,
        status: &str,
    ) -> Result<()> {
        let name = self.default_user(caller, name)?;
        let status = match status {
            "Active" => KeyStatus::Active,
            "Inactive" => KeyStatus::Inactive,
            other => {
                return Err(validate::constraint(
                    "ValidationError",
                    "status",
                    other,
                    "Member must satisfy enum value set: [Active, Inactive]",
                ))
            }
        };
        let (arn, user) = self.target_user(name).await?;
        self.authorize(caller, "iam:UpdateAccessKey", &arn, &[], &[])?;
        user.ok_or_else(|| no_such_user(name))?;
        self.owned_key(name, key_id).await?;
        self.store.set_access_key_status(key_id, status).await?;
        self.invalidate();
        Ok(())
    }

    pub async fn delete_access_key(
        &self,
        caller: &Caller,
        name: Option<&str>,
        key_id: &str,
    ) -> Result<()> {
        let name = self.default_user(caller, name)?;
        let (arn, user) = self.target_user(name).await?;
        self.authorize(caller, "iam:DeleteAccessKey", &arn, &[], &[])?;
        user.ok_or_else(|| no_such_user(name))?;
        self.owned_key(name, key_id).await?;
        self.store.delete_access_key(key_id).await?;
        self.invalidate();
        Ok(())
    }

    /// `PutUserPolicy`: validated as IAM does; the user's inline policies together must stay
    /// within 2,048 characters (whitespace not counted).
    pub async fn put_user_policy(
        &self,
        caller: &Caller,
        name: &str,
        policy_name: &str,
        document: &str,
    ) -> Result<()> {
        validate::iam_name("policyName", policy_name, 128)?;
        let (arn, user) = self.target_user(name).await?;
        self.authorize(caller, "iam:PutUserPolicy", &arn, &[], &[])?;
        user.ok_or_else(|| no_such_user(name))?;
        check_document(document, PolicyKind::Inline)?;
        let owner = PolicyOwner::User(name.to_owned());
        let others: usize = self
            .store
            .list_inline_policies(&owner)
            .await?
            .iter()
            .filter(|p| p.name != policy_name)
            .map(|p| policy_size(&p.document))
            .sum();
        if others + policy_size(document) > USER_INLINE_QUOTA {
            return Err(Error::new(
                409,
                "LimitExceeded",
                format!(
                    "Maximum policy size of {USER_INLINE_QUOTA} bytes exceeded for user {name}"
                ),
            ));
        }
        let policy = InlinePolicy {
            name: policy_name.to_owned(),
            document: document.to_owned(),
        };
        self.store.put_inline_policy(&owner, &policy).await?;
        self.invalidate();
        Ok(())
    }

    pub async fn get_user_policy(
        &self,
        caller: &Caller,
        name: &str,
        policy_name: &str,
    ) -> Result<InlinePolicy> {
        let (arn, user) = self.target_user(name).await?;
        self.authorize(caller, "iam:GetUserPolicy", &arn, &[], &[])?;
        user.ok_or_else(|| no_such_user(name))?;
        self.store
            .list_inline_policies(&PolicyOwner::User(name.to_owned()))
            .await?
            .into_iter()
            .find(|p| p.name == policy_name)
            .ok_or_else(|| {
                Error::new(
                    404,
                    "NoSuchEntity",
                    format!("The user policy with name {policy_name} cannot be found."),
                )
            })
    }

    pub async fn list_user_policies(&self, caller: &Caller, name: &str) -> Result<Vec<String>> {
        let (arn, user) = self.target_user(name).await?;
        self.authorize(caller, "iam:ListUserPolicies", &arn, &[], &[])?;
        user.ok_or_else(|| no_such_user(name))?;
        let policies = self
            .store
            .list_inline_policies(&PolicyOwner::User(name.to_owned()))
            .await?;
        Ok(policies.into_iter().map(|p| p.name).collect())
    }

    pub async fn delete_user_policy(
        &self,
        caller: &Caller,
        name: &str,
        policy_name: &str,
    ) -> Result<()> {
        let (arn, user) = self.target_user(name).await?;
        self.authorize(caller, "iam:DeleteUserPolicy", &arn, &[], &[])?;
        user.ok_or_else(|| no_such_user(name))?;
        match self
            .store
            .delete_inline_policy(&PolicyOwner::User(name.to_owned()), policy_name)
            .await
        {
            Err(StoreError::NotFound) => Err(Error::new(
                404,
                "NoSuchEntity",
                format!("The user policy with name {policy_name} cannot be found."),
            )),
            other => other.map_err(Error::from),
        }?;
        self.invalidate();
        Ok(())
    }

    /// `CreatePolicy`: a customer managed policy (must say 2012-10-17; 6,144 characters).
    pub async fn create_policy(
        &self,
        caller: &Caller,
        name: &str,
        path: Option<&str>,
        document: &str,
        description: Option<&str>,
    ) -> Result<ManagedPolicy> {
        let path = path.unwrap_or("/");
        validate::iam_name("policyName", name, 128)?;
        validate::iam_path("path", path)?;
        let arn = self.policy_arn(path, name);
        self.authorize(caller, "iam:CreatePolicy", &arn, &[], &[])?;
        check_document(document, PolicyKind::Managed)?;
        let created = now();
        let policy = ManagedPolicy {
            arn: arn.clone(),
            name: name.to_owned(),
            path: path.to_owned(),
            policy_id: ids::iam_unique_id("ANPA"),
            description: description.unwrap_or_default().to_owned(),
            default_version: "v1".to_owned(),
            created,
            updated: created,
            attachment_count: 0,
        };
        let version = PolicyVersion {
            version_id: "v1".to_owned(),
            document: document.to_owned(),
            is_default: true,
            created,
        };
        match self.store.insert_managed_policy(&policy, &version).await {
            Err(StoreError::AlreadyExists) => Err(Error::new(
                409,
                "EntityAlreadyExists",
                format!("A policy called {name} already exists. Duplicate names are not allowed."),
            )),
            other => other.map_err(Error::from),
        }?;
        Ok(policy)
    }

    async fn existing_policy(
        &self,
        caller: &Caller,
        action: &str,
        arn: &str,
    ) -> Result<ManagedPolicy> {
        self.authorize(caller, action, arn, &[], &[])?;
        self.store
            .managed_policy(arn)
            .await?
            .ok_or_else(|| no_such_policy(arn))
    }

    pub async fn get_policy(&self, caller: &Caller, arn: &str) -> Result<ManagedPolicy> {
        self.existing_policy(caller, "iam:GetPolicy", arn).await
    }

    pub async fn get_policy_version(
        &self,
        caller: &Caller,
        arn: &str,
        version_id: &str,
    ) -> Result<PolicyVersion> {
        self.existing_policy(caller, "iam:GetPolicyVersion", arn)
            .await?;
        self.store
            .policy_versions(arn)
            .await?
            .into_iter()
            .find(|v| v.version_id == version_id)
            .ok_or_else(|| {
                Error::new(
                    404,
                    "NoSuchEntity",
                    format!(
                        "Policy {arn} version {version_id} does not exist or is not attachable."
                    ),
                )
            })
    }

    /// `ListPolicies`: scope `All`, `AWS` or `Local`; optionally only attached ones.
    pub async fn list_policies(
        &self,
        caller: &Caller,
        scope: Option<&str>,
        only_attached: bool,
    ) -> Result<Vec<ManagedPolicy>> {
        self.authorize(
            caller,
            "iam:ListPolicies",
            &self.policy_arn("/", ""),
            &[],
            &[],
        )?;
        let scope = scope.unwrap_or("All");
        if !matches!(scope, "All" | "AWS" | "Local") {
            return Err(validate::constraint(
                "ValidationError",
                "scope",
                scope,
                "Member must satisfy enum value set: [All, AWS, Local]",
            ));
        }
        let policies = self.store.list_managed_policies().await?;
        Ok(policies
            .into_iter()
            .filter(|p| match scope {
                "AWS" => is_aws_managed(&p.arn),
                "Local" => !is_aws_managed(&p.arn),
                _ => true,
            })
            .filter(|p| !only_attached || p.attachment_count > 0)
            .collect())
    }

    pub async fn attach_user_policy(
        &self,
        caller: &Caller,
        name: &str,
        policy_arn: &str,
    ) -> Result<()> {
        let (arn, user) = self.target_user(name).await?;
        self.authorize(
            caller,
            "iam:AttachUserPolicy",
            &arn,
            &[],
            &[("iam:PolicyARN", vec![policy_arn.to_owned()])],
        )?;
        user.ok_or_else(|| no_such_user(name))?;
        if self.store.managed_policy(policy_arn).await?.is_none() {
            return Err(no_such_policy(policy_arn));
        }
        self.store
            .attach_policy(&PolicyOwner::User(name.to_owned()), policy_arn)
            .await?;
        self.invalidate();
        Ok(())
    }

    pub async fn detach_user_policy(
        &self,
        caller: &Caller,
        name: &str,
        policy_arn: &str,
    ) -> Result<()> {
        let (arn, user) = self.target_user(name).await?;
        self.authorize(
            caller,
            "iam:DetachUserPolicy",
            &arn,
            &[],
            &[("iam:PolicyARN", vec![policy_arn.to_owned()])],
        )?;
        user.ok_or_else(|| no_such_user(name))?;
        match self
            .store
            .detach_policy(&PolicyOwner::User(name.to_owned()), policy_arn)
            .await
        {
            Err(StoreError::NotFound) => Err(Error::new(
                404,
                "NoSuchEntity",
                format!("Policy {policy_arn} was not found."),
            )),
            other => other.map_err(Error::from),
        }?;
        self.invalidate();
        Ok(())
    }

    /// `ListAttachedUserPolicies`: (policy name, policy ARN).
    pub async fn list_attached_user_policies(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<Vec<(String, String)>> {
        let (arn, user) = self.target_user(name).await?;
        self.authorize(caller, "iam:ListAttachedUserPolicies", &arn, &[], &[])?;
        user.ok_or_else(|| no_such_user(name))?;
        let mut out = Vec::new();
        for policy_arn in self
            .store
            .attached_policies(&PolicyOwner::User(name.to_owned()))
            .await?
        {
            let name = policy_arn
                .rsplit('/')
                .next()
                .unwrap_or(&policy_arn)
                .to_owned();
            out.push((name, policy_arn));
        }
        Ok(out)
    }

    pub async fn put_user_permissions_boundary(
        &self,
        caller: &Caller,
        name: &str,
        policy_arn: &str,
    ) -> Result<()> {
        let (arn, user) = self.target_user(name).await?;
        self.authorize(
            caller,
            "iam:PutUserPermissionsBoundary",
            &arn,
            &[],
            &[("iam:PermissionsBoundary", vec![policy_arn.to_owned()])],
        )?;
        user.ok_or_else(|| no_such_user(name))?;
        if self.store.managed_policy(policy_arn).await?.is_none() {
            return Err(no_such_policy(policy_arn));
        }
        self.store.set_user_boundary(name, Some(policy_arn)).await?;
        self.invalidate();
        Ok(())
    }

    pub async fn delete_user_permissions_boundary(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<()> {
        let (arn, user) = self.target_user(name).await?;
        self.authorize(caller, "iam:DeleteUserPermissionsBoundary", &arn, &[], &[])?;
        user.ok_or_else(|| no_such_user(name))?;
        self.store.set_user_boundary(name, None).await?;
        self.invalidate();
        Ok(())
    }
}

// Groups

impl Service {
    pub fn group_arn(&self, path: &str, name: &str) -> String {
        format!("arn:aws:iam::{}:group{path}{name}", self.account.id)
    }

    /// The ARN to authorize against for a named group (its real path if it exists).
    async fn target_group(&self, name: &str) -> Result<(String, Option<Group>)> {
        validate::iam_name("groupName", name, 128)?;
        let group = self.store.group(name).await?;
        let arn = group
            .as_ref()
            .map_or_else(|| self.group_arn("/", name), |g| g.arn.clone());
        Ok((arn, group))
    }

    /// The group an operation names, after authorizing `action` on it.
    async fn authorized_group(
        &self,
        caller: &Caller,
        action: &str,
        name: &str,
        extra: crate::service::ExtraKeys<'_>,
    ) -> Result<Group> {
        let (arn, group) = self.target_group(name).await?;
        self.authorize(caller, action, &arn, &[], extra)?;
        group.ok_or_else(|| no_such_group(name))
    }

    pub async fn create_group(
        &self,
        caller: &Caller,
        name: &str,
        path: Option<&str>,
    ) -> Result<Group> {
        let path = path.unwrap_or("/");
        validate::iam_name("groupName", name, 128)?;
        validate::iam_path("path", path)?;
        let arn = self.group_arn(path, name);
        self.authorize(caller, "iam:CreateGroup", &arn, &[], &[])?;
        let group = Group {
            name: name.to_owned(),
            group_id: ids::iam_unique_id("AGPA"),
            arn,
            path: path.to_owned(),
            created: now(),
        };
        match self.store.insert_group(&group).await {
            Err(StoreError::AlreadyExists) => Err(Error::new(
                409,
                "EntityAlreadyExists",
                format!("Group with name {name} already exists."),
            )),
            other => other.map_err(Error::from),
        }?;
        Ok(group)
    }

    /// `GetGroup`: the group and its members.
    pub async fn get_group(&self, caller: &Caller, name: &str) -> Result<(Group, Vec<User>)> {
        let group = self
            .authorized_group(caller, "iam:GetGroup", name, &[])
            .await?;
        let mut users = Vec::new();
        for member in self.store.group_members(&group.name).await? {
            if let Some(user) = self.store.user(&member).await? {
                users.push(user);
            }
        }
        Ok((group, users))
    }

    pub async fn list_groups(
        &self,
        caller: &Caller,
        path_prefix: Option<&str>,
    ) -> Result<Vec<Group>> {
        let prefix = path_prefix.unwrap_or("/");
        self.authorize(
            caller,
            "iam:ListGroups",
            &self.group_arn(prefix, ""),
            &[],
            &[],
        )?;
        let groups = self.store.list_groups().await?;
        Ok(groups
            .into_iter()
            .filter(|g| g.path.starts_with(prefix))
            .collect())
    }

    /// `DeleteGroup`: refused with `DeleteConflict` while the group has members or policies.
    pub async fn delete_group(&self, caller: &Caller, name: &str) -> Result<()> {
        self.authorized_group(caller, "iam:DeleteGroup", name, &[])
            .await?;
        match self.store.delete_group(name).await {
            Err(StoreError::NotFound) => Err(no_such_group(name)),
            other => other.map_err(from_store),
        }?;
        self.invalidate();
        Ok(())
    }

    /// `AddUserToGroup`: authorized against the group. Adding a member again changes nothing.
    pub async fn add_user_to_group(&self, caller: &Caller, group: &str, user: &str) -> Result<()> {
        validate::iam_name("userName", user, 128)?;
        self.authorized_group(caller, "iam:AddUserToGroup", group, &[])
            .await?;
        if self.store.user(user).await?.is_none() {
            return Err(no_such_user(user));
        }
        match self.store.add_user_to_group(group, user).await {
            Err(StoreError::NotFound) => Err(no_such_user(user)),
            other => other.map_err(Error::from),
        }?;
        self.invalidate();
        Ok(())
    }

    /// `RemoveUserFromGroup`: authorized against the group; a user who is not a member is
    /// `NoSuchEntity`.
    pub async fn remove_user_from_group(
        &self,
        caller: &Caller,
        group: &str,
        user: &str,
    ) -> Result<()> {
        validate::iam_name("userName", user, 128)?;
        self.authorized_group(caller, "iam:RemoveUserFromGroup", group, &[])
            .await?;
        if self.store.user(user).await?.is_none() {
            return Err(no_such_user(user));
        }
        match self.store.remove_user_from_group(group, user).await {
            Err(StoreError::NotFound) => Err(no_such_user(user)),
            other => other.map_err(Error::from),
        }?;
        self.invalidate();
        Ok(())
    }

    pub async fn list_groups_for_user(&self, caller: &Caller, name: &str) -> Result<Vec<Group>> {
        let (arn, user) = self.target_user(name).await?;
        self.authorize(caller, "iam:ListGroupsForUser", &arn, &[], &[])?;
        user.ok_or_else(|| no_such_user(name))?;
        Ok(self.store.groups_for_user(name).await?)
    }

    /// `PutGroupPolicy`: validated as IAM does; the group's inline policies together must
    /// stay within 5,120 characters (whitespace not counted).
    pub async fn put_group_policy(
        &self,
        caller: &Caller,
        name: &str,
        policy_name: &str,
        document: &str,
    ) -> Result<()> {
        validate::iam_name("policyName", policy_name, 128)?;
        self.authorized_group(caller, "iam:PutGroupPolicy", name, &[])
            .await?;
        check_document(document, PolicyKind::Inline)?;
        let owner = PolicyOwner::Group(name.to_owned());
        let others: usize = self
            .store
            .list_inline_policies(&owner)
            .await?
            .iter()
            .filter(|p| !p.name.eq_ignore_ascii_case(policy_name))
            .map(|p| policy_size(&p.document))
            .sum();
        if others + policy_size(document) > GROUP_INLINE_QUOTA {
            return Err(Error::new(
                409,
                "LimitExceeded",
                format!(
                    "Maximum policy size of {GROUP_INLINE_QUOTA} bytes exceeded for group {name}"
                ),
            ));
        }
        let policy = InlinePolicy {
            name: policy_name.to_owned(),
            document: document.to_owned(),
        };
        self.store.put_inline_policy(&owner, &policy).await?;
        self.invalidate();
        Ok(())
    }

    pub async fn get_group_policy(
        &self,
        caller: &Caller,
        name: &str,
        policy_name: &str,
    ) -> Result<(Group, InlinePolicy)> {
        let group = self
            .authorized_group(caller, "iam:GetGroupPolicy", name, &[])
            .await?;
        let policy = self
            .store
            .list_inline_policies(&PolicyOwner::Group(group.name.clone()))
            .await?
            .into_iter()
            .find(|p| p.name.eq_ignore_ascii_case(policy_name))
            .ok_or_else(|| no_such_group_policy(policy_name))?;
        Ok((group, policy))
    }

    pub async fn list_group_policies(&self, caller: &Caller, name: &str) -> Result<Vec<String>> {
        let group = self
            .authorized_group(caller, "iam:ListGroupPolicies", name, &[])
            .await?;
        let policies = self
            .store
            .list_inline_policies(&PolicyOwner::Group(group.name))
            .await?;
        Ok(policies.into_iter().map(|p| p.name).collect())
    }

    pub async fn delete_group_policy(
        &self,
        caller: &Caller,
        name: &str,
        policy_name: &str,
    ) -> Result<()> {
        self.authorized_group(caller, "iam:DeleteGroupPolicy", name, &[])
            .await?;
        match self
            .store
            .delete_inline_policy(&PolicyOwner::Group(name.to_owned()), policy_name)
            .await
        {
            Err(StoreError::NotFound) => Err(no_such_group_policy(policy_name)),
            other => other.map_err(Error::from),
        }?;
        self.invalidate();
        Ok(())
    }

    pub async fn attach_group_policy(
        &self,
        caller: &Caller,
        name: &str,
        policy_arn: &str,
    ) -> Result<()> {
        self.authorized_group(
            caller,
            "iam:AttachGroupPolicy",
            name,
            &[("iam:PolicyARN", vec![policy_arn.to_owned()])],
        )
        .await?;
        if self.store.managed_policy(policy_arn).await?.is_none() {
            return Err(no_such_policy(policy_arn));
        }
        self.store
            .attach_policy(&PolicyOwner::Group(name.to_owned()), policy_arn)
            .await?;
        self.invalidate();
        Ok(())
    }

    pub async fn detach_group_policy(
        &self,
        caller: &Caller,
        name: &str,
        policy_arn: &str,
    ) -> Result<()> {
        self.authorized_group(
            caller,
            "iam:DetachGroupPolicy",
            name,
            &[("iam:PolicyARN", vec![policy_arn.to_owned()])],
        )
        .await?;
        match self
            .store
            .detach_policy(&PolicyOwner::Group(name.to_owned()), policy_arn)
            .await
        {
            Err(StoreError::NotFound) => Err(Error::new(
                404,
                "NoSuchEntity",
                format!("Policy {policy_arn} was not found."),
            )),
            other => other.map_err(Error::from),
        }?;
        self.invalidate();
        Ok(())
    }

    /// `ListAttachedGroupPolicies`: (policy name, policy ARN), only policies under
    /// `path_prefix` when one is given.
    pub async fn list_attached_group_policies(
        &self,
        caller: &Caller,
        name: &str,
        path_prefix: Option<&str>,
    ) -> Result<Vec<(String, String)>> {
        let group = self
            .authorized_group(caller, "iam:ListAttachedGroupPolicies", name, &[])
            .await?;
        let arns = self
            .store
            .attached_policies(&PolicyOwner::Group(group.name))
            .await?;
        Ok(arns
            .into_iter()
            .filter_map(|arn| {
                let (policy_name, path) = policy_name_and_path(&arn);
                path.starts_with(path_prefix.unwrap_or("/"))
                    .then_some((policy_name, arn))
            })
            .collect())
    }
}

fn no_such_group_policy(policy_name: &str) -> Error {
    Error::new(
        404,
        "NoSuchEntity",
        format!("The group policy with name {policy_name} cannot be found."),
    )
}

// Managed policy versions

/// AWS managed policies belong to AWS: no account may change or delete them.
fn refuse_aws_managed(caller: &Caller, action: &str, arn: &str) -> Result<()> {
    if is_aws_managed(arn) {
        return Err(Error::new(
            403,
            "AccessDenied",
            format!(
                "User: {} is not authorized to perform: {action} on resource: {arn} because \
                 no resource-based policy allows the {action} action",
                caller.arn()
            ),
        ));
    }
    Ok(())
}

fn check_version_id(version_id: &str) -> Result<()> {
    let ok = version_id.strip_prefix('v').is_some_and(|rest| {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (number, suffix) = rest.split_at(digits);
        !number.is_empty()
            && !number.starts_with('0')
            && (suffix.is_empty()
                || suffix
                    .strip_prefix('.')
                    .is_some_and(|s| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')))
    });
    if ok {
        Ok(())
    } else {
        Err(validate::constraint(
            "ValidationError",
            "versionId",
            version_id,
            &format!("Member must satisfy regular expression pattern: {VERSION_ID_PATTERN}"),
        ))
    }
}

impl Service {
    /// `CreatePolicyVersion`: at most five versions; with `set_as_default` the new version
    /// is the one in force from now on.
    pub async fn create_policy_version(
        &self,
        caller: &Caller,
        arn: &str,
        document: &str,
        set_as_default: bool,
    ) -> Result<PolicyVersion> {
        self.authorize(caller, "iam:CreatePolicyVersion", arn, &[], &[])?;
        refuse_aws_managed(caller, "iam:CreatePolicyVersion", arn)?;
        if self.store.managed_policy(arn).await?.is_none() {
            return Err(no_such_policy(arn));
        }
        check_document(document, PolicyKind::Managed)?;
        let version = match self
            .store
            .add_policy_version(arn, document, set_as_default, now(), VERSIONS_PER_POLICY)
            .await
        {
            Err(StoreError::LimitExceeded) => Err(Error::new(
                409,
                "LimitExceeded",
                format!(
                    "A managed policy can have up to {VERSIONS_PER_POLICY} versions. Before you \
                     create a new version, you must delete an existing version."
                ),
            )),
            Err(StoreError::NotFound) => Err(no_such_policy(arn)),
            other => other.map_err(Error::from),
        }?;
        if set_as_default {
            self.invalidate();
        }
        Ok(version)
    }

    /// `ListPolicyVersions`: newest first, as IAM lists them.
    pub async fn list_policy_versions(
        &self,
        caller: &Caller,
        arn: &str,
    ) -> Result<Vec<PolicyVersion>> {
        self.existing_policy(caller, "iam:ListPolicyVersions", arn)
            .await?;
        let mut versions = self.store.policy_versions(arn).await?;
        versions.reverse();
        Ok(versions)
    }

    pub async fn set_default_policy_version(
        &self,
        caller: &Caller,
        arn: &str,
        version_id: &str,
    ) -> Result<()> {
        check_version_id(version_id)?;
        self.authorize(caller, "iam:SetDefaultPolicyVersion", arn, &[], &[])?;
        refuse_aws_managed(caller, "iam:SetDefaultPolicyVersion", arn)?;
        if self.store.managed_policy(arn).await?.is_none() {
            return Err(no_such_policy(arn));
        }
        match self.store.set_default_policy_version(arn, version_id).await {
            Err(StoreError::NotFound) => Err(no_such_version(arn, version_id)),
            other => other.map_err(Error::from),
        }?;
        self.invalidate();
        Ok(())
    }

    /// `DeletePolicyVersion`: never the default version (that goes with `DeletePolicy`).
    pub async fn delete_policy_version(
        &self,
        caller: &Caller,
        arn: &str,
        version_id: &str,
    ) -> Result<()> {
        check_version_id(version_id)?;
        self.authorize(caller, "iam:DeletePolicyVersion", arn, &[], &[])?;
        refuse_aws_managed(caller, "iam:DeletePolicyVersion", arn)?;
        if self.store.managed_policy(arn).await?.is_none() {
            return Err(no_such_policy(arn));
        }
        match self.store.delete_policy_version(arn, version_id).await {
            Err(StoreError::NotFound) => Err(no_such_version(arn, version_id)),
            other => other.map_err(from_store),
        }
    }

    /// `DeletePolicy`: refused while the policy is attached, is a permissions boundary, or
    /// has versions besides the default one (IAM's order: detach, delete the other versions,
    /// then delete the policy with its default version).
    pub async fn delete_policy(&self, caller: &Caller, arn: &str) -> Result<()> {
        self.authorize(caller, "iam:DeletePolicy", arn, &[], &[])?;
        refuse_aws_managed(caller, "iam:DeletePolicy", arn)?;
        let not_found = || Error::new(404, "NoSuchEntity", format!("Policy {arn} was not found."));
        if self.store.managed_policy(arn).await?.is_none() {
            return Err(not_found());
        }
        match self.store.delete_managed_policy(arn).await {
            Err(StoreError::NotFound) => Err(not_found()),
            other => other.map_err(from_store),
        }?;
        self.invalidate();
        Ok(())
    }
}

// Login profiles

/// IAM's checks on a password: the wire rule (1 to 128 characters, tab, newlines and
/// U+0020..U+00FF), then the password policy (at least 8 characters). The password is never
/// quoted in a message.
fn check_password(password: &str) -> Result<()> {
    let rule = |rule: &str| {
        Error::invalid(
            "ValidationError",
            format!(
                "1 validation error detected: Value at 'password' failed to satisfy \
                 constraint: {rule}"
            ),
        )
    };
    let len = password.chars().count();
    if len == 0 {
        return Err(rule("Member must have length greater than or equal to 1"));
    }
    if len > MAX_PASSWORD_LENGTH {
        return Err(rule(&format!(
            "Member must have length less than or equal to {MAX_PASSWORD_LENGTH}"
        )));
    }
    if !password
        .chars()
        .all(|c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{ff}'))
    {
        return Err(rule(
            "Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+",
        ));
    }
    if len < MIN_PASSWORD_LENGTH {
        return Err(Error::invalid(
            "PasswordPolicyViolation",
            format!("Password should have a minimum length of {MIN_PASSWORD_LENGTH}"),
        ));
    }
    Ok(())
}

/// An Argon2id hash of the password (PHC string, random 16-byte salt), made on the blocking
/// pool: tens of milliseconds of CPU that would otherwise stall every connection sharing the
/// worker, relayed keystrokes included.
pub(crate) async fn hash_password(password: &str) -> Result<String> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || argon2_hash(&password))
        .await
        .map_err(|_| Error::internal())?
}

/// Whether `password` is the one `hash` was made from (the console's sign-in), checked on the
/// blocking pool. `None` checks against a decoy, so that a missing user or profile costs as
/// much time as a wrong password.
pub(crate) async fn verify_password(hash: Option<String>, password: &str) -> bool {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || match hash {
        Some(hash) => argon2_verify(&hash, &password),
        None => {
            let _ = argon2_verify(decoy_hash(), &password);
            false
        }
    })
    .await
    .unwrap_or(false)
}

/// A hash of a random secret, for [`verify_password`] to spend its time on.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| argon2_hash(&crate::ids::token()).unwrap_or_default())
}

fn argon2_hash(password: &str) -> Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    use rand::RngCore;
    let mut salt = [0_u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|_| Error::internal())?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|_| Error::internal())
}

fn argon2_verify(hash: &str, password: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

impl Service {
    /// `CreateLoginProfile`: a console password for the user (the caller when no user is
    /// named). Only its Argon2id hash is kept.
    pub async fn create_login_profile(
        &self,
        caller: &Caller,
        name: Option<&str>,
        password: &str,
        password_reset_required: bool,
    ) -> Result<LoginProfile> {
        let name = self.default_user(caller, name)?;
        let (arn, user) = self.target_user(name).await?;
        self.authorize(caller, "iam:CreateLoginProfile", &arn, &[], &[])?;
        let user = user.ok_or_else(|| no_such_user(name))?;
        check_password(password)?;
        let profile = LoginProfile {
            user_name: user.name.clone(),
            password_hash: hash_password(password).await?,
            created: now(),
            password_reset_required,
        };
        match self.store.insert_login_profile(&profile).await {
            Err(StoreError::AlreadyExists) => Err(Error::new(
                409,
                "EntityAlreadyExists",
                format!("Login Profile for user {name} already exists."),
            )),
            Err(StoreError::NotFound) => Err(no_such_user(name)),
            other => other.map_err(Error::from),
        }?;
        Ok(profile)
    }

    pub async fn get_login_profile(
        &self,
        caller: &Caller,
        name: Option<&str>,
    ) -> Result<LoginProfile> {
        let name = self.default_user(caller, name)?;
        let (arn, user) = self.target_user(name).await?;
        self.authorize(caller, "iam:GetLoginProfile", &arn, &[], &[])?;
        user.ok_or_else(|| no_such_user(name))?;
        self.store
            .login_profile(name)
            .await?
            .ok_or_else(|| no_such_login_profile(name))
    }

    /// `UpdateLoginProfile`: a new password and/or reset flag; what is not given stays.
    pub async fn update_login_profile(
        &self,
        caller: &Caller,
        name: &str,
        password: Option<&str>,
        password_reset_required: Option<bool>,
    ) -> Result<()> {
        let (arn, user) = self.target_user(name).await?;
        self.authorize(caller, "iam:UpdateLoginProfile", &arn, &[], &[])?;
        user.ok_or_else(|| no_such_user(name))?;
        if let Some(password) = password {
            check_password(password)?;
        }
        if self.store.login_profile(name).await?.is_none() {
            return Err(no_such_login_profile(name));
        }
        let hash = match password {
            Some(password) => Some(hash_password(password).await?),
            None => None,
        };
        match self
            .store
            .update_login_profile(name, hash.as_deref(), password_reset_required)
            .await
        {
            Err(StoreError::NotFound) => Err(no_such_login_profile(name)),
            other => other.map_err(Error::from),
        }
    }

    pub async fn delete_login_profile(&self, caller: &Caller, name: Option<&str>) -> Result<()> {
        let name = self.default_user(caller, name)?;
        let (arn, user) = self.target_user(name).await?;
        self.authorize(caller, "iam:DeleteLoginProfile", &arn, &[], &[])?;
        user.ok_or_else(|| no_such_user(name))?;
        match self.store.delete_login_profile(name).await {
            Err(StoreError::NotFound) => Err(no_such_login_profile(name)),
            other => other.map_err(Error::from),
        }
    }
}

// Policy simulation

/// `SourcePolicyType` of the policies a principal has (what IAM reports for them).
const PRINCIPAL_POLICY_TYPE: &str = "IAM Policy";

/// IAM's `ContextKeyTypeEnum`.
const CONTEXT_KEY_TYPES: [&str; 12] = [
    "string",
    "stringList",
    "numeric",
    "numericList",
    "boolean",
    "booleanList",
    "ip",
    "ipList",
    "binary",
    "binaryList",
    "date",
    "dateList",
];

/// A policy taking part in a simulation, with the text its positions refer to.
pub(crate) struct Source {
    /// The name the engine and `SourcePolicyId` know it by.
    pub(crate) label: String,
    source_type: Option<&'static str>,
    document: String,
    pub(crate) policy: Policy,
    pub(crate) boundary: bool,
}

/// The 1-based line and column (in characters) of byte `offset` in `text`.
fn position(text: &str, offset: usize) -> (u32, u32) {
    let before = text.get(..offset).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

/// Byte offsets of the `{` and the matching `}` of statement `index` in `document`.
fn statement_bounds(document: &str, index: usize) -> Option<(usize, usize)> {
    use portcullis_iam::json::{self, Kind};
    let doc = json::parse(document).ok()?;
    let Kind::Object(members) = &doc.kind else {
        return None;
    };
    let statement = &members.iter().find(|m| m.key == "Statement")?.value;
    let value = match &statement.kind {
        Kind::Array(items) => items.get(index)?,
        Kind::Object(_) if index == 0 => statement,
        _ => return None,
    };
    let start = value.span.offset;
    let (mut depth, mut in_string, mut escaped) = (0_usize, false, false);
    for (i, &b) in document.as_bytes().iter().enumerate().skip(start) {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some((start, i));
                }
            }
            _ => {}
        }
    }
    None
}

/// IAM's `StartPosition` and `EndPosition` of a statement: the line and column just after
/// its opening and its closing brace.
fn statement_positions(document: &str, index: usize) -> ((u32, u32), (u32, u32)) {
    match statement_bounds(document, index) {
        Some((open, close)) => {
            let (l1, c1) = position(document, open);
            let (l2, c2) = position(document, close);
            ((l1, c1.saturating_add(1)), (l2, c2.saturating_add(1)))
        }
        None => ((1, 1), (1, 1)),
    }
}

/// Adds the condition keys of `statement` that `req` has no value for (each once).
fn missing_keys(statement: &Statement, req: &Request<'_>, out: &mut Vec<String>) {
    for c in &statement.conditions {
        if req.lookup(&Key::parse(&c.key_name)).is_none()
            && !out.iter().any(|k| k.eq_ignore_ascii_case(&c.key_name))
        {
            out.push(c.key_name.clone());
        }
    }
}

fn simulation_decision(decision: Decision) -> SimulationDecision {
    match decision {
        Decision::Allow => SimulationDecision::Allowed,
        Decision::ExplicitDeny => SimulationDecision::ExplicitDeny,
        Decision::ImplicitDeny => SimulationDecision::ImplicitDeny,
    }
}

/// One resource's result from the engine's explanation: the identity statements that
/// decided, the condition keys missing from statements that apply, and the boundary's say.
fn simulated_resource(
    resource: &str,
    explanation: &portcullis_iam::Explanation,
    req: &Request<'_>,
    sources: &HashMap<&str, &Source>,
) -> SimulatedResource {
    let decision = simulation_decision(explanation.decision);
    let deciding = match decision {
        SimulationDecision::Allowed => Some(Effect::Allow),
        SimulationDecision::ExplicitDeny => Some(Effect::Deny),
        SimulationDecision::ImplicitDeny => None,
    };
    let mut matched: Vec<SimulatedStatement> = Vec::new();
    let mut missing = Vec::new();
    let mut allowed_by_boundary = None;
    for layer in &explanation.layers {
        if layer.kind == LayerKind::PermissionsBoundary {
            allowed_by_boundary = Some(layer.allowed && !layer.denied);
        }
        if layer.kind != LayerKind::Identity {
            continue;
        }
        for report in &layer.statements {
            let applies = matches!(
                report.outcome,
                StatementOutcome::Matched | StatementOutcome::ConditionFailed { .. }
            );
            let Some(source) = sources.get(report.policy.as_str()).filter(|_| applies) else {
                continue;
            };
            if let Some(statement) = source.policy.statements.get(report.index) {
                missing_keys(statement, req, &mut missing);
            }
            if Some(report.effect) == deciding && report.outcome == StatementOutcome::Matched {
                let (start, end) = statement_positions(&source.document, report.index);
                let statement = SimulatedStatement {
                    source_policy_id: source.label.clone(),
                    source_policy_type: source.source_type.map(str::to_owned),
                    start,
                    end,
                };
                if !matched.contains(&statement) {
                    matched.push(statement);
                }
            }
        }
    }
    SimulatedResource {
        resource: resource.to_owned(),
        decision,
        matched_statements: matched,
        missing_context_values: missing,
        allowed_by_boundary,
    }
}

/// One action's result over its resources: the most restrictive decision, the statements
/// that made it, every missing key, each once.
fn aggregate(action: &str, per_resource: Vec<SimulatedResource>, named: bool) -> SimulationResult {
    let decision = per_resource
        .iter()
        .map(|r| r.decision)
        .max()
        .unwrap_or(SimulationDecision::ImplicitDeny);
    let mut matched: Vec<SimulatedStatement> = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    for r in &per_resource {
        if r.decision == decision {
            for s in &r.matched_statements {
                if !matched.contains(s) {
                    matched.push(s.clone());
                }
            }
        }
        for key in &r.missing_context_values {
            if !missing.iter().any(|k| k.eq_ignore_ascii_case(key)) {
                missing.push(key.clone());
            }
        }
    }
    let allowed_by_boundary = per_resource
        .iter()
        .any(|r| r.allowed_by_boundary.is_some())
        .then(|| {
            per_resource
                .iter()
                .all(|r| r.allowed_by_boundary != Some(false))
        });
    SimulationResult {
        action: action.to_owned(),
        resource_name: "*".to_owned(),
        decision,
        matched_statements: matched,
        missing_context_values: missing,
        allowed_by_boundary,
        resources: if named { per_resource } else { Vec::new() },
    }
}

/// `tag` when `key` is `PREFIX/tag` for a prefix that ends in `marker` (any case).
fn tag_key<'a>(key: &'a str, marker: &str) -> Option<&'a str> {
    let (prefix, tag) = key.split_once('/')?;
    (prefix.to_ascii_lowercase().ends_with(marker) && !tag.is_empty()).then_some(tag)
}

/// Checks a simulation request as IAM does before it evaluates anything.
fn check_simulation(request: &SimulationRequest) -> Result<()> {
    if request.actions.is_empty() {
        return Err(Error::invalid(
            "MissingParameter",
            "The request must contain the parameter ActionNames",
        ));
    }
    for (n, action) in (1..).zip(&request.actions) {
        let len = action.chars().count();
        if !(3..=128).contains(&len) {
            return Err(validate::constraint(
                "ValidationError",
                &format!("actionNames.{n}.member"),
                action,
                "Member must have length between 3 and 128",
            ));
        }
    }
    for (n, entry) in (1..).zip(&request.context) {
        if let Some(t) = entry.key_type.as_deref() {
            if !CONTEXT_KEY_TYPES.contains(&t) {
                return Err(validate::constraint(
                    "ValidationError",
                    &format!("contextEntries.{n}.member.contextKeyType"),
                    t,
                    &format!(
                        "Member must satisfy enum value set: [{}]",
                        CONTEXT_KEY_TYPES.join(", ")
                    ),
                ));
            }
        }
    }
    if request.boundary_policies.len() > 1 {
        return Err(Error::invalid(
            "InvalidInput",
            "PermissionsBoundaryPolicyInputList may contain at most one policy: an entity \
             has one permissions boundary at a time.",
        ));
    }
    Ok(())
}

/// The policies given in the request (`PolicyInputList`, `PermissionsBoundaryPolicyInputList`),
/// validated as IAM validates identity policies and boundaries.
fn input_sources(request: &SimulationRequest) -> Result<Vec<Source>> {
    let mut sources = Vec::new();
    let lists = [
        (
            "PolicyInputList",
            &request.policies,
            PolicyKind::Inline,
            false,
        ),
        (
            "PermissionsBoundaryPolicyInputList",
            &request.boundary_policies,
            PolicyKind::Managed,
            true,
        ),
    ];
    for (list, documents, kind, boundary) in lists {
        for (n, document) in (1..).zip(documents.iter()) {
            let policy = validate_policy(document, kind)
                .map(|v| v.policy)
                .map_err(|errors| errors.first().map_or_else(Error::internal, policy_error))?;
            sources.push(Source {
                label: format!("{list}.{n}"),
                source_type: None,
                document: document.clone(),
                policy,
                boundary,
            });
        }
    }
    Ok(sources)
}

impl Service {
    /// Everything that decides what a user may do: the user's and their groups' inline and
    /// attached policies, and (with `with_boundary`) the permissions boundary, with the
    /// documents kept for positions: [`crate::policies::user_policies`], which authorization
    /// (`user_policy_set`) and access analysis read too, so they cannot drift apart.
    pub(crate) async fn user_sources(
        &self,
        user: &User,
        with_boundary: bool,
    ) -> Result<Vec<Source>> {
        Ok(
            crate::policies::user_policies(self.store.as_ref(), user, with_boundary)
                .await?
                .into_iter()
                .map(|p| Source {
                    label: p.label,
                    source_type: Some(PRINCIPAL_POLICY_TYPE),
                    document: p.document,
                    policy: p.policy,
                    boundary: p.boundary,
                })
                .collect(),
        )
    }

    /// The tags of the node whose ARN this is, if it is a registered node's.
    async fn node_tags_for_arn(&self, arn: &str) -> Result<Vec<Tag>> {
        let id = arn.rsplit('/').next().unwrap_or_default();
        if id.is_empty() || self.node_arn(id) != arn || self.store.node(id).await?.is_none() {
            return Ok(Vec::new());
        }
        match self.store.node_tags(id).await {
            Err(StoreError::NotFound) => Ok(Vec::new()),
            other => other.map_err(Error::from),
        }
    }

    /// Evaluates every action on every resource with `sources`, as `principal`. Context
    /// entries named `aws:PrincipalTag/K` and `...ResourceTag/K` set principal and resource
    /// tags; `aws:CurrentTime` and `aws:EpochTime` default to now, as IAM's simulator does.
    async fn simulate(
        &self,
        principal: &Principal,
        sources: &[Source],
        request: &SimulationRequest,
        registered_resources: bool,
    ) -> Result<Vec<SimulationResult>> {
        let mut set = PolicySet::new();
        for s in sources {
            if s.boundary {
                set.set_boundary(&s.label, &s.policy);
            } else {
                set.add_identity(&s.label, &s.policy);
            }
        }
        let by_label: HashMap<&str, &Source> =
            sources.iter().map(|s| (s.label.as_str(), s)).collect();

        let t = now();
        let given = |name: &str| {
            request
                .context
                .iter()
                .any(|e| e.key.eq_ignore_ascii_case(name))
        };
        let mut context = Context::new();
        if !given("aws:CurrentTime") {
            context.insert("aws:CurrentTime", iso8601(t));
        }
        if !given("aws:EpochTime") {
            context.insert("aws:EpochTime", t.to_string());
        }
        let mut principal_tags: Tags = principal
            .tags()
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let mut resource_tag_overrides: Vec<(&str, &str)> = Vec::new();
        for entry in &request.context {
            let first = entry.values.first().map_or("", String::as_str);
            if let Some(tag) = tag_key(&entry.key, "aws:principaltag") {
                principal_tags.insert(tag, first);
            } else if let Some(tag) = tag_key(&entry.key, "resourcetag") {
                resource_tag_overrides.push((tag, first));
            } else {
                context.insert_values(&entry.key, entry.values.clone());
            }
        }
        let principal = principal.clone().with_tags(principal_tags);

        let named = !request.resources.is_empty();
        let resources: Vec<String> = if named {
            request.resources.clone()
        } else {
            vec!["*".to_owned()]
        };
        let mut resource_tags = Vec::with_capacity(resources.len());
        for resource in &resources {
            let mut tags: Tags = if registered_resources {
                self.node_tags_for_arn(resource)
                    .await?
                    .into_iter()
                    .map(|t| (t.key, t.value))
                    .collect()
            } else {
                Tags::new()
            };
            for (k, v) in &resource_tag_overrides {
                tags.insert(*k, *v);
            }
            resource_tags.push(tags);
        }

        Ok(request
            .actions
            .iter()
            .map(|action| {
                let per_resource = resources
                    .iter()
                    .zip(&resource_tags)
                    .map(|(resource, tags)| {
                        let req = Request::new(&principal, action, resource)
                            .with_resource_tags(tags)
                            .with_context(&context);
                        let explanation = set.explain(&req);
                        simulated_resource(resource, &explanation, &req, &by_label)
                    })
                    .collect();
                aggregate(action, per_resource, named)
            })
            .collect())
    }

    /// `SimulatePrincipalPolicy` for a user: their policies and their groups' (plus any in
    /// `PolicyInputList`), their boundary unless one is given, their tags; a resource that
    /// is a registered node's ARN carries the node's tags. Authorized as
    /// `iam:SimulatePrincipalPolicy` on the user's ARN.
    pub async fn simulate_principal_policy(
        &self,
        caller: &Caller,
        source_arn: &str,
        request: &SimulationRequest,
    ) -> Result<Vec<SimulationResult>> {
        self.authorize(caller, "iam:SimulatePrincipalPolicy", source_arn, &[], &[])?;
        check_simulation(request)?;
        let extra = input_sources(request)?;
        let prefix = format!("arn:aws:iam::{}:user/", self.account.id);
        let name = source_arn
            .strip_prefix(&prefix)
            .and_then(|rest| rest.rsplit('/').next())
            .filter(|name| !name.is_empty())
            .ok_or_else(|| {
                Error::invalid(
                    "InvalidInput",
                    format!(
                        "PolicySourceArn {source_arn} is not the ARN of a user in account {}.",
                        self.account.id
                    ),
                )
            })?;
        let user = self
            .store
            .user(name)
            .await?
            .filter(|u| u.arn.eq_ignore_ascii_case(source_arn))
            .ok_or_else(|| no_such_user(name))?;
        let tags: Tags = self
            .store
            .user_tags(&user.name)
            .await?
            .into_iter()
            .map(|t| (t.key, t.value))
            .collect();
        let principal =
            Principal::user(&user.arn, &self.account.id, &user.name, &user.user_id).with_tags(tags);
        let mut sources = self
            .user_sources(&user, request.boundary_policies.is_empty())
            .await?;
        sources.extend(extra);
        self.simulate(&principal, &sources, request, true).await
    }

    /// `SimulateCustomPolicy`: only the given policies, evaluated for the caller (principal
    /// keys are the caller's unless context entries say otherwise). Authorized as
    /// `iam:SimulateCustomPolicy` on `*`.
    pub async fn simulate_custom_policy(
        &self,
        caller: &Caller,
        request: &SimulationRequest,
    ) -> Result<Vec<SimulationResult>> {
        self.authorize(caller, "iam:SimulateCustomPolicy", "*", &[], &[])?;
        check_simulation(request)?;
        let sources = input_sources(request)?;
        self.simulate(&caller.identity.principal, &sources, request, false)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// IAM's own example (the AWS CLI's `simulate-custom-policy` documentation): a lone
    /// statement on one line starts at column 38 and ends at column 167.
    #[test]
    fn positions_match_iams_examples() {
        let doc = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"dynamodb:*","Resource":"*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2018-08-16T12:00:00Z"}}}}"#;
        assert_eq!(statement_positions(doc, 0), ((1, 38), (1, 167)));
        // And as boto3 users write it, `json.dumps` with its spaces: 41 and 113.
        let doc = r#"{"Version": "2012-10-17", "Statement": {"Sid": "", "Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"}}"#;
        assert_eq!(statement_positions(doc, 0), ((1, 41), (1, 113)));
    }

    #[test]
    fn positions_follow_lines_lists_and_strings() {
        let doc = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\"Effect\": \"Allow\", \"Action\": \"ssm:*\", \"Resource\": \"*\"},\n    {\n      \"Sid\": \"NoBob\",\n      \"Effect\": \"Deny\",\n      \"Action\": \"ssm:StartSession\",\n      \"Resource\": [\"*\"],\n      \"Condition\": {\"StringEquals\": {\"aws:username\": \"é}b\\\"{\"}}\n    }\n  ]\n}";
        let policy = Policy::parse(doc).unwrap();
        for (i, s) in policy.statements.iter().enumerate() {
            let ((line, column), _) = statement_positions(doc, i);
            assert_eq!((line, column), (s.line, s.column + 1), "statement {i}");
        }
        assert_eq!(statement_positions(doc, 0), ((4, 6), (4, 60)));
        // Braces inside strings do not count; the end is on its own line.
        assert_eq!(statement_positions(doc, 1), ((5, 6), (11, 6)));
        assert_eq!(
            statement_positions(doc, 2),
            ((1, 1), (1, 1)),
            "no such statement"
        );
    }

    #[test]
    fn version_ids() {
        for ok in ["v1", "v12", "v1.2", "v3.abc-1", "v1."] {
            assert!(check_version_id(ok).is_ok(), "{ok}");
        }
        for bad in ["v0", "1", "v", "v01", "v1_2", "V1", "v1.a_b"] {
            let e = check_version_id(bad).unwrap_err();
            assert_eq!(e.code, "ValidationError", "{bad}");
        }
        assert_eq!(
            check_version_id("x").unwrap_err().message,
            "1 validation error detected: Value 'x' at 'versionId' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: v[1-9][0-9]*(\\.[A-Za-z0-9-]*)?"
        );
    }

    #[test]
    fn passwords_are_checked_without_being_quoted() {
        let short = check_password("Sh0rt!").unwrap_err();
        assert_eq!(
            (short.code.as_str(), short.message.as_str()),
            (
                "PasswordPolicyViolation",
                "Password should have a minimum length of 8"
            )
        );
        assert!(check_password("exactly8").is_ok());
        assert!(check_password(&"a".repeat(128)).is_ok());
        let long = check_password(&"secret-".repeat(20)).unwrap_err();
        assert_eq!(long.code, "ValidationError");
        assert!(!long.message.contains("secret"), "{}", long.message);
        let bad = check_password("password\u{1}123").unwrap_err();
        assert_eq!(bad.code, "ValidationError");
        assert!(!bad.message.contains("password\u{1}"));
        assert_eq!(check_password("").unwrap_err().code, "ValidationError");
        // Latin-1 is allowed, beyond it is not.
        assert!(check_password("pässwörd").is_ok());
        assert!(check_password("passwörd€").is_err());
    }

    #[tokio::test]
    async fn password_hashes_are_salted_argon2id() {
        let a = hash_password("correct horse").await.unwrap();
        let b = hash_password("correct horse").await.unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "a random salt each time");
        assert!(!a.contains("correct horse"));
        assert!(verify_password(Some(a.clone()), "correct horse").await);
        assert!(verify_password(Some(b), "correct horse").await);
        assert!(!verify_password(Some(a), "correct horsf").await);
        assert!(!verify_password(Some("not a hash".to_owned()), "correct horse").await);
        assert!(
            !verify_password(None, "correct horse").await,
            "the decoy never matches"
        );
    }

    #[test]
    fn delete_conflicts_are_worded_as_iam_words_them() {
        let e = from_store(StoreError::Conflict(conflict::GROUP_MEMBERSHIPS.to_owned()));
        assert_eq!(
            (e.status, e.code.as_str(), e.message.as_str()),
            (
                409,
                "DeleteConflict",
                "Cannot delete entity, must remove users from group first."
            )
        );
        assert_eq!(
            delete_conflict(conflict::POLICY_VERSIONS).message,
            "This policy has more than one version. Before you delete a policy, you must delete \
             the policy's versions. The default version is deleted with the policy."
        );
        assert_eq!(
            delete_conflict("something new").message,
            "Cannot delete entity, must remove referenced objects first."
        );
        assert_eq!(from_store(StoreError::NotFound).code, "NoSuchEntity");
    }

    #[test]
    fn policy_arns_split_into_name_and_path() {
        assert_eq!(
            policy_name_and_path("arn:aws:iam::123456789012:policy/ops/team/Start"),
            ("Start".to_owned(), "/ops/team/".to_owned())
        );
        assert_eq!(
            policy_name_and_path("arn:aws:iam::aws:policy/ReadOnlyAccess"),
            ("ReadOnlyAccess".to_owned(), "/".to_owned())
        );
    }

    #[test]
    fn tag_keys_in_context_entries() {
        assert_eq!(
            tag_key("aws:PrincipalTag/Project", "aws:principaltag"),
            Some("Project")
        );
        assert_eq!(
            tag_key("AWS:ResourceTag/Project", "resourcetag"),
            Some("Project")
        );
        assert_eq!(
            tag_key("ssm:resourceTag/Project", "resourcetag"),
            Some("Project")
        );
        assert_eq!(tag_key("aws:ResourceTag/", "resourcetag"), None);
        assert_eq!(tag_key("aws:SourceIp", "resourcetag"), None);
        assert_eq!(tag_key("aws:RequestTag/Project", "resourcetag"), None);
    }

    fn statement(id: &str) -> SimulatedStatement {
        SimulatedStatement {
            source_policy_id: id.to_owned(),
            source_policy_type: None,
            start: (1, 1),
            end: (1, 2),
        }
    }

    fn resource(
        name: &str,
        decision: SimulationDecision,
        matched: &[&str],
        missing: &[&str],
        boundary: Option<bool>,
    ) -> SimulatedResource {
        SimulatedResource {
            resource: name.to_owned(),
            decision,
            matched_statements: matched.iter().map(|m| statement(m)).collect(),
            missing_context_values: missing.iter().map(|m| (*m).to_owned()).collect(),
            allowed_by_boundary: boundary,
        }
    }

    #[test]
    fn aggregation_takes_the_most_restrictive_decision() {
        use SimulationDecision::{Allowed, ExplicitDeny, ImplicitDeny};
        let r = aggregate(
            "ssm:StartSession",
            vec![
                resource("a", Allowed, &["p1"], &["aws:SourceIp"], Some(true)),
                resource(
                    "b",
                    ImplicitDeny,
                    &[],
                    &["aws:sourceip", "ssm:x"],
                    Some(true),
                ),
            ],
            true,
        );
        assert_eq!(r.decision, ImplicitDeny);
        assert!(
            r.matched_statements.is_empty(),
            "only what made the decision"
        );
        assert_eq!(r.missing_context_values, ["aws:SourceIp", "ssm:x"]);
        assert_eq!(r.allowed_by_boundary, Some(true));
        assert_eq!(r.resource_name, "*");
        assert_eq!(r.resources.len(), 2);

        let r = aggregate(
            "ssm:StartSession",
            vec![
                resource("a", ExplicitDeny, &["deny"], &[], Some(false)),
                resource("b", Allowed, &["p1"], &[], Some(true)),
                resource("c", ExplicitDeny, &["deny", "deny2"], &[], Some(true)),
            ],
            false,
        );
        assert_eq!(r.decision, ExplicitDeny);
        let ids: Vec<&str> = r
            .matched_statements
            .iter()
            .map(|s| s.source_policy_id.as_str())
            .collect();
        assert_eq!(ids, ["deny", "deny2"]);
        assert_eq!(r.allowed_by_boundary, Some(false));
        assert!(r.resources.is_empty(), "no resources were named");

        let r = aggregate(
            "ssm:StartSession",
            vec![resource("*", Allowed, &["p1", "p2"], &[], None)],
            false,
        );
        assert_eq!((r.decision, r.matched_statements.len()), (Allowed, 2));
        assert_eq!(r.allowed_by_boundary, None);
    }

    #[test]
    fn simulations_are_checked_before_they_run() {
        let base = SimulationRequest {
            actions: vec!["ssm:StartSession".to_owned()],
            ..SimulationRequest::default()
        };
        assert!(check_simulation(&base).is_ok());
        let e = check_simulation(&SimulationRequest::default()).unwrap_err();
        assert_eq!(e.code, "MissingParameter");
        let mut bad_type = base.clone();
        bad_type.context.push(crate::model::SimulationContextEntry {
            key: "aws:SourceIp".to_owned(),
            values: vec!["10.0.0.1".to_owned()],
            key_type: Some("ipaddress".to_owned()),
        });
        let e = check_simulation(&bad_type).unwrap_err();
        assert_eq!(e.code, "ValidationError");
        assert!(e.message.contains("contextEntries.1.member.contextKeyType"));
        let mut two_boundaries = base.clone();
        two_boundaries.boundary_policies = vec!["{}".to_owned(), "{}".to_owned()];
        assert_eq!(
            check_simulation(&two_boundaries).unwrap_err().code,
            "InvalidInput"
        );
        let mut short_action = base;
        short_action.actions = vec!["s3".to_owned()];
        assert_eq!(
            check_simulation(&short_action).unwrap_err().code,
            "ValidationError"
        );
    }
}
