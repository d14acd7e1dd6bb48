//! The `Store` trait: everything Portcullis remembers. Implementations (SQLite today,
//! PostgreSQL later) live in `crates/store`.
//!
//! Each method is one transaction: it either happens entirely or not at all, so an
//! operation that fails half-way leaves nothing behind.

use std::fmt;

use async_trait::async_trait;

use crate::model::{
    AccessKey, Account, Activation, AuditEvent, Group, InlinePolicy, KeyOwner, KeyStatus,
    LoginProfile, ManagedPolicy, Node, PolicyVersion, Session, SessionStatus, Tag, User,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The record does not exist.
    NotFound,
    /// A record with the same name or id exists.
    AlreadyExists,
    /// A limit was hit (an activation's registration limit, say).
    LimitExceeded,
    /// A delete was refused because something still depends on the record; the text is one
    /// of the [`conflict`] names, which the caller words for its clients (IAM's
    /// `DeleteConflict` messages).
    Conflict(String),
    /// The database failed; the message is for logs, not for clients.
    Backend(String),
}

/// What a refused delete still has: the text of [`StoreError::Conflict`].
pub mod conflict {
    /// A user's login profile.
    pub const LOGIN_PROFILE: &str = "login profile";
    /// A user's access keys.
    pub const ACCESS_KEYS: &str = "access keys";
    /// A user's or group's inline policies.
    pub const INLINE_POLICIES: &str = "inline policies";
    /// Managed policies attached to a user or group.
    pub const ATTACHED_POLICIES: &str = "attached policies";
    /// A user's group memberships, or a group's members.
    pub const GROUP_MEMBERSHIPS: &str = "group memberships";
    /// A managed policy attached to users or groups.
    pub const POLICY_ATTACHMENTS: &str = "policy attachments";
    /// A managed policy used as a user's permissions boundary.
    pub const PERMISSIONS_BOUNDARY: &str = "permissions boundary";
    /// A managed policy with versions besides its default one.
    pub const POLICY_VERSIONS: &str = "policy versions";
    /// The default version of a managed policy (only deleted with the policy).
    pub const DEFAULT_VERSION: &str = "default version";
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::NotFound => f.write_str("not found"),
            StoreError::AlreadyExists => f.write_str("already exists"),
            StoreError::LimitExceeded => f.write_str("limit exceeded"),
            StoreError::Conflict(what) => write!(f, "still has {what}"),
            StoreError::Backend(e) => write!(f, "store: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

pub type StoreResult<T> = Result<T, StoreError>;

/// Whose inline policies or attachments: a user's or a group's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PolicyOwner {
    User(String),
    Group(String),
}

/// Which sessions to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionFilter {
    /// `true`: active sessions only; `false`: ended ones only (AWS's `History`).
    pub active: bool,
    pub target: Option<String>,
    pub owner: Option<String>,
    pub status: Option<SessionStatus>,
    pub session_id: Option<String>,
    pub started_after: Option<i64>,
    pub started_before: Option<i64>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    // Account
    async fn account(&self) -> StoreResult<Option<Account>>;
    /// Creates the account and the root user's first access key together.
    async fn create_account(&self, account: &Account, root_key: &AccessKey) -> StoreResult<()>;

    // Access keys
    async fn access_key(&self, id: &str) -> StoreResult<Option<AccessKey>>;
    /// Inserts a key unless its owner already has `max_per_owner` (then `LimitExceeded`);
    /// the count and the insert are one transaction, so concurrent calls cannot pass it.
    async fn insert_access_key(&self, key: &AccessKey, max_per_owner: usize) -> StoreResult<()>;
    async fn list_access_keys(&self, owner: &KeyOwner) -> StoreResult<Vec<AccessKey>>;
    async fn set_access_key_status(&self, id: &str, status: KeyStatus) -> StoreResult<()>;
    async fn delete_access_key(&self, id: &str) -> StoreResult<()>;

    // Users
    async fn insert_user(&self, user: &User, tags: &[Tag]) -> StoreResult<()>;
    async fn user(&self, name: &str) -> StoreResult<Option<User>>;
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    /// Refused with `Conflict` (checked in this order: [`conflict::LOGIN_PROFILE`],
    /// [`conflict::ACCESS_KEYS`], [`conflict::ATTACHED_POLICIES`],
    /// [`conflict::INLINE_POLICIES`], [`conflict::GROUP_MEMBERSHIPS`]) while the user still has
    /// any of them, in the same transaction as the delete. Takes the user's tags with it.
    async fn delete_user(&self, name: &str) -> StoreResult<()>;
    async fn user_tags(&self, name: &str) -> StoreResult<Vec<Tag>>;
    /// Replaces all of the user's tags.
    async fn set_user_tags(&self, name: &str, tags: &[Tag]) -> StoreResult<()>;
    async fn set_user_boundary(&self, name: &str, policy_arn: Option<&str>) -> StoreResult<()>;
    /// Creates the user's login profile: `AlreadyExists` if they have one, `NotFound` if the
    /// user does not exist. `profile.user_name` names the user (any case).
    async fn insert_login_profile(&self, profile: &LoginProfile) -> StoreResult<()>;
    /// The profile, with the user's name as it was written.
    async fn login_profile(&self, user: &str) -> StoreResult<Option<LoginProfile>>;
    /// Changes what is given (the hash, the reset flag); `NotFound` when there is no profile.
    async fn update_login_profile(
        &self,
        user: &str,
        password_hash: Option<&str>,
        password_reset_required: Option<bool>,
    ) -> StoreResult<()>;
    /// `NotFound` when there is no profile.
    async fn delete_login_profile(&self, user: &str) -> StoreResult<()>;

    // Groups
    async fn insert_group(&self, group: &Group) -> StoreResult<()>;
    async fn group(&self, name: &str) -> StoreResult<Option<Group>>;
    async fn list_groups(&self) -> StoreResult<Vec<Group>>;
    /// Refused with `Conflict` ([`conflict::GROUP_MEMBERSHIPS`], then
    /// [`conflict::INLINE_POLICIES`], then [`conflict::ATTACHED_POLICIES`]) while the group
    /// still has members or policies, in the same transaction as the delete.
    async fn delete_group(&self, name: &str) -> StoreResult<()>;
    async fn add_user_to_group(&self, group: &str, user: &str) -> StoreResult<()>;
    async fn remove_user_from_group(&self, group: &str, user: &str) -> StoreResult<()>;
    async fn groups_for_user(&self, user: &str) -> StoreResult<Vec<Group>>;
    async fn group_members(&self, group: &str) -> StoreResult<Vec<String>>;

    // Inline policies
    /// Creates or replaces.
    async fn put_inline_policy(
        &self,
        owner: &PolicyOwner,
        policy: &InlinePolicy,
    ) -> StoreResult<()>;
    async fn list_inline_policies(&self, owner: &PolicyOwner) -> StoreResult<Vec<InlinePolicy>>;
    async fn delete_inline_policy(&self, owner: &PolicyOwner, name: &str) -> StoreResult<()>;

    // Managed policies
    async fn insert_managed_policy(
        &self,
        policy: &ManagedPolicy,
        first: &PolicyVersion,
    ) -> StoreResult<()>;
    async fn managed_policy(&self, arn: &str) -> StoreResult<Option<ManagedPolicy>>;
    async fn list_managed_policies(&self) -> StoreResult<Vec<ManagedPolicy>>;
    async fn policy_versions(&self, arn: &str) -> StoreResult<Vec<PolicyVersion>>;
    /// Adds a version with the next version id (`v2`, `v3`, ...; ids are never reused, even
    /// after a delete) and returns it. `LimitExceeded` when the policy already has
    /// `max_versions`. When `set_as_default`, the previous default stops being one. The
    /// policy's `updated` becomes `created` (never going backwards).
    async fn add_policy_version(
        &self,
        arn: &str,
        document: &str,
        set_as_default: bool,
        created: i64,
        max_versions: usize,
    ) -> StoreResult<PolicyVersion>;
    /// Makes a version the default; `NotFound` when the policy or the version does not exist.
    async fn set_default_policy_version(&self, arn: &str, version_id: &str) -> StoreResult<()>;
    /// Deletes a version that is not the default (the default: `Conflict`
    /// [`conflict::DEFAULT_VERSION`]); `NotFound` when the policy or the version does not exist.
    async fn delete_policy_version(&self, arn: &str, version_id: &str) -> StoreResult<()>;
    /// Deletes the policy with its (default) version. Refused with `Conflict`, in the same
    /// transaction, while it is attached ([`conflict::POLICY_ATTACHMENTS`]), is a user's
    /// permissions boundary ([`conflict::PERMISSIONS_BOUNDARY`]) or has other versions than the
    /// default ([`conflict::POLICY_VERSIONS`]), in that order.
    async fn delete_managed_policy(&self, arn: &str) -> StoreResult<()>;
    async fn attach_policy(&self, owner: &PolicyOwner, arn: &str) -> StoreResult<()>;
    async fn detach_policy(&self, owner: &PolicyOwner, arn: &str) -> StoreResult<()>;
    async fn attached_policies(&self, owner: &PolicyOwner) -> StoreResult<Vec<String>>;

    // Nodes and activations
    async fn insert_activation(&self, activation: &Activation) -> StoreResult<()>;
    async fn activation(&self, id: &str) -> StoreResult<Option<Activation>>;
    async fn list_activations(&self) -> StoreResult<Vec<Activation>>;
    async fn delete_activation(&self, id: &str) -> StoreResult<()>;
    /// Registers a node against an activation: counts the registration (refusing with
    /// `LimitExceeded` past the limit), inserts the node and its tags, all or nothing.
    async fn register_node(
        &self,
        activation_id: &str,
        node: &Node,
        tags: &[Tag],
    ) -> StoreResult<()>;
    async fn node(&self, id: &str) -> StoreResult<Option<Node>>;
    async fn list_nodes(&self) -> StoreResult<Vec<Node>>;
    async fn delete_node(&self, id: &str) -> StoreResult<()>;
    async fn node_tags(&self, id: &str) -> StoreResult<Vec<Tag>>;
    async fn set_node_tags(&self, id: &str, tags: &[Tag]) -> StoreResult<()>;
    async fn touch_node(&self, id: &str, time: i64) -> StoreResult<()>;

    // Sessions
    async fn insert_session(&self, session: &Session) -> StoreResult<()>;
    async fn session(&self, id: &str) -> StoreResult<Option<Session>>;
    async fn list_sessions(&self, filter: &SessionFilter) -> StoreResult<Vec<Session>>;
    /// Changes an active session's status. An ended session stays ended: setting the status
    /// of one is a no-op (so a late "client detached" cannot reopen a terminated session),
    /// checked in the same statement as the write. `NotFound` if there is no such session.
    async fn set_session_status(
        &self,
        id: &str,
        status: SessionStatus,
        ended: Option<i64>,
    ) -> StoreResult<()>;

    // Audit
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()>;
    /// The last `limit` events, oldest first.
    async fn audit_tail(&self, limit: u32) -> StoreResult<Vec<AuditEvent>>;
}
