//! IAM operations: users, access keys, tags, inline and managed policies, boundaries.
//!
//! Each operation authorizes first (the action against the target's ARN), then checks
//! existence, then writes; IAM changes invalidate the identity cache.

use portcullis_iam::{policy_size, validate as validate_policy, PolicyError, PolicyKind};

use crate::aws_policies::is_aws_managed;
use crate::error::{Error, Result};
use crate::ids;
use crate::model::{
    AccessKey, InlinePolicy, KeyOwner, KeyStatus, ManagedPolicy, PolicyVersion, Tag, User,
};
use crate::service::{now, Caller, Service};
use crate::store::{PolicyOwner, StoreError};
use crate::validate;

/// IAM's quota for a user's inline policies, together (characters without whitespace).
const USER_INLINE_QUOTA: usize = 2048;
const ACCESS_KEYS_PER_USER: usize = 2;
const MAX_TAGS: usize = 50;

fn no_such_user(name: &str) -> Error {
    Error::new(
        404,
        "NoSuchEntity",
        format!("The user with name {name} cannot be found."),
    )
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
fn policy_error(e: &PolicyError) -> Error {
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

    /// `DeleteUser`: refused with `DeleteConflict` while the user still has keys, policies,
    /// groups or a login profile, as IAM does.
    pub async fn delete_user(&self, caller: &Caller, name: &str) -> Result<()> {
        let (arn, user) = self.target_user(name).await?;
        self.authorize(caller, "iam:DeleteUser", &arn, &[], &[])?;
        user.ok_or_else(|| no_such_user(name))?;
        let owner = PolicyOwner::User(name.to_owned());
        let conflict = |what: &str| {
            Error::new(
                409,
                "DeleteConflict",
                format!("Cannot delete entity, must {what} first."),
            )
        };
        if self.store.login_profile(name).await?.is_some() {
            return Err(conflict("delete login profile"));
        }
        if !self
            .store
            .list_access_keys(&KeyOwner::User(name.to_owned()))
            .await?
            .is_empty()
        {
            return Err(conflict("delete access keys"));
        }
        if !self.store.list_inline_policies(&owner).await?.is_empty()
            || !self.store.attached_policies(&owner).await?.is_empty()
        {
            return Err(conflict("delete policies"));
        }
        if !self.store.groups_for_user(name).await?.is_empty() {
            return Err(conflict("remove users from group"));
        }
        self.store.delete_user(name).await?;
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
        let owner = KeyOwner::User(name.to_owned());
        if self.store.list_access_keys(&owner).await?.len() >= ACCESS_KEYS_PER_USER {
            return Err(Error::new(
                409,
                "LimitExceeded",
                format!("Cannot exceed quota for AccessKeysPerUser: {ACCESS_KEYS_PER_USER}"),
            ));
        }
        let (id, secret) = ids::access_key_pair();
        let key = AccessKey {
            id,
            secret,
            owner,
            status: KeyStatus::Active,
            created: now(),
        };
        self.store.insert_access_key(&key).await?;
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
