//! Reading records out of rows. Column names are the schema's (`migrations/sqlite/`).

use portcullis_core::model::{
    AccessKey, Account, Activation, AuditEvent, Group, KeyOwner, KeyStatus, LoginProfile,
    ManagedPolicy, Node, NodeKind, PolicyVersion, Session, SessionStatus, Tag, User,
};
use portcullis_core::store::{StoreError, StoreResult};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use crate::error::Db;

fn get<'r, T>(row: &'r SqliteRow, column: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(column).db()
}

fn get_u32(row: &SqliteRow, column: &str) -> StoreResult<u32> {
    let n: i64 = get(row, column)?;
    u32::try_from(n).map_err(|_| StoreError::Backend(format!("`{column}` out of range: {n}")))
}

fn corrupt(column: &str, value: &str) -> StoreError {
    StoreError::Backend(format!("unknown `{column}` in the database: `{value}`"))
}

pub(crate) fn node_kind_str(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Ec2Instance => "Ec2Instance",
        NodeKind::ManagedInstance => "ManagedInstance",
    }
}

pub(crate) fn account(row: &SqliteRow) -> StoreResult<Account> {
    Ok(Account {
        id: get(row, "id")?,
        region: get(row, "region")?,
        created: get(row, "created")?,
    })
}

pub(crate) fn access_key(row: &SqliteRow) -> StoreResult<AccessKey> {
    let user: Option<String> = get(row, "user_name")?;
    let status: String = get(row, "status")?;
    let status = match status.as_str() {
        "Active" => KeyStatus::Active,
        "Inactive" => KeyStatus::Inactive,
        other => return Err(corrupt("status", other)),
    };
    Ok(AccessKey {
        id: get(row, "id")?,
        secret: get(row, "secret")?,
        owner: user.map_or(KeyOwner::Root, KeyOwner::User),
        status,
        created: get(row, "created")?,
    })
}

pub(crate) fn user(row: &SqliteRow) -> StoreResult<User> {
    Ok(User {
        name: get(row, "name")?,
        user_id: get(row, "user_id")?,
        arn: get(row, "arn")?,
        path: get(row, "path")?,
        created: get(row, "created")?,
        permissions_boundary: get(row, "permissions_boundary")?,
    })
}

pub(crate) fn group(row: &SqliteRow) -> StoreResult<Group> {
    Ok(Group {
        name: get(row, "name")?,
        group_id: get(row, "group_id")?,
        arn: get(row, "arn")?,
        path: get(row, "path")?,
        created: get(row, "created")?,
    })
}

pub(crate) fn login_profile(row: &SqliteRow) -> StoreResult<LoginProfile> {
    Ok(LoginProfile {
        user_name: get(row, "user_name")?,
        password_hash: get(row, "password_hash")?,
        created: get(row, "created")?,
        password_reset_required: get(row, "password_reset_required")?,
    })
}

pub(crate) fn tag(row: &SqliteRow) -> StoreResult<Tag> {
    Ok(Tag {
        key: get(row, "key")?,
        value: get(row, "value")?,
    })
}

/// Expects the columns of `POLICY_COLUMNS` in `sqlite.rs`.
pub(crate) fn managed_policy(row: &SqliteRow) -> StoreResult<ManagedPolicy> {
    Ok(ManagedPolicy {
        arn: get(row, "arn")?,
        name: get(row, "name")?,
        path: get(row, "path")?,
        policy_id: get(row, "policy_id")?,
        description: get(row, "description")?,
        default_version: get(row, "default_version")?,
        created: get(row, "created")?,
        updated: get(row, "updated")?,
        attachment_count: get_u32(row, "attachment_count")?,
    })
}

pub(crate) fn policy_version(row: &SqliteRow) -> StoreResult<PolicyVersion> {
    Ok(PolicyVersion {
        version_id: get(row, "version_id")?,
        document: get(row, "document")?,
        is_default: get(row, "is_default")?,
        created: get(row, "created")?,
    })
}

/// The activation without its tags (they are in their own table).
pub(crate) fn activation(row: &SqliteRow) -> StoreResult<Activation> {
    Ok(Activation {
        id: get(row, "id")?,
        code_hash: get(row, "code_hash")?,
        description: get(row, "description")?,
        default_instance_name: get(row, "default_instance_name")?,
        iam_role: get(row, "iam_role")?,
        registration_limit: get_u32(row, "registration_limit")?,
        registrations_count: get_u32(row, "registrations_count")?,
        expiration: get(row, "expiration")?,
        created: get(row, "created")?,
        tags: Vec::new(),
    })
}

pub(crate) fn node(row: &SqliteRow) -> StoreResult<Node> {
    let kind: String = get(row, "kind")?;
    let kind = match kind.as_str() {
        "Ec2Instance" => NodeKind::Ec2Instance,
        "ManagedInstance" => NodeKind::ManagedInstance,
        other => return Err(corrupt("kind", other)),
    };
    Ok(Node {
        id: get(row, "id")?,
        kind,
        name: get(row, "name")?,
        platform: get(row, "platform")?,
        agent_version: get(row, "agent_version")?,
        ip_address: get(row, "ip_address")?,
        activation_id: get(row, "activation_id")?,
        registered: get(row, "registered")?,
        last_ping: get(row, "last_ping")?,
        credential_hash: get(row, "credential_hash")?,
    })
}

pub(crate) fn session(row: &SqliteRow) -> StoreResult<Session> {
    let status: String = get(row, "status")?;
    let status = SessionStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?;
    Ok(Session {
        id: get(row, "id")?,
        owner: get(row, "owner")?,
        target: get(row, "target")?,
        document: get(row, "document")?,
        reason: get(row, "reason")?,
        status,
        started: get(row, "started")?,
        ended: get(row, "ended")?,
    })
}

pub(crate) fn audit_event(row: &SqliteRow) -> StoreResult<AuditEvent> {
    Ok(AuditEvent {
        time: get(row, "time")?,
        request_id: get(row, "request_id")?,
        principal: get(row, "principal")?,
        action: get(row, "action")?,
        resource: get(row, "resource")?,
        decision: get(row, "decision")?,
        statement: get(row, "statement")?,
        source_ip: get(row, "source_ip")?,
        error: get(row, "error")?,
    })
}
