-- Portcullis: the first schema. Migrations are append-only: never edit a released file,
-- add the next number instead (sqlx refuses to start when a checksum changes).
--
-- Conventions:
-- * Times are INTEGER seconds since the epoch (UTC).
-- * IAM names (users, groups, managed and inline policies) and IAM tag keys are unique
--   without regard to case, as in IAM, and keep the case they were written with:
--   `COLLATE NOCASE` on the column. SSM tag keys (nodes, activations) are case-sensitive.
-- * Tags keep the order they were written in (`position`).
-- * Records owned by a user, group, node, activation or policy go with it (`ON DELETE
--   CASCADE`); sessions and the audit log refer to nothing, so history outlives what it
--   names.

-- The one account this server is. `singleton` (always 1) pins it to one row.
CREATE TABLE account (
    singleton INTEGER PRIMARY KEY NOT NULL CHECK (singleton = 1),
    id        TEXT    NOT NULL,
    region    TEXT    NOT NULL,
    created   INTEGER NOT NULL
);

CREATE TABLE users (
    name                 TEXT    COLLATE NOCASE PRIMARY KEY NOT NULL,
    user_id              TEXT    NOT NULL UNIQUE,
    arn                  TEXT    NOT NULL UNIQUE,
    path                 TEXT    NOT NULL,
    created              INTEGER NOT NULL,
    -- A boundary may not vanish under a user (that would widen what the user may do), so
    -- deleting a policy in use as a boundary is refused.
    permissions_boundary TEXT    REFERENCES managed_policies (arn) ON DELETE RESTRICT
);
CREATE INDEX users_permissions_boundary ON users (permissions_boundary);

CREATE TABLE user_tags (
    user_name TEXT    COLLATE NOCASE NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    key       TEXT    COLLATE NOCASE NOT NULL,
    value     TEXT    NOT NULL,
    position  INTEGER NOT NULL,
    PRIMARY KEY (user_name, key)
);

CREATE TABLE login_profiles (
    user_name     TEXT COLLATE NOCASE PRIMARY KEY NOT NULL
                  REFERENCES users (name) ON DELETE CASCADE,
    password_hash TEXT NOT NULL
);

-- The root user's keys have no `user_name`.
CREATE TABLE access_keys (
    id        TEXT    PRIMARY KEY NOT NULL,
    secret    TEXT    NOT NULL,
    user_name TEXT    COLLATE NOCASE REFERENCES users (name) ON DELETE CASCADE,
    status    TEXT    NOT NULL CHECK (status IN ('Active', 'Inactive')),
    created   INTEGER NOT NULL
);
CREATE INDEX access_keys_user_name ON access_keys (user_name);

CREATE TABLE groups (
    name     TEXT    COLLATE NOCASE PRIMARY KEY NOT NULL,
    group_id TEXT    NOT NULL UNIQUE,
    arn      TEXT    NOT NULL UNIQUE,
    path     TEXT    NOT NULL,
    created  INTEGER NOT NULL
);

CREATE TABLE group_members (
    group_name TEXT COLLATE NOCASE NOT NULL REFERENCES groups (name) ON DELETE CASCADE,
    user_name  TEXT COLLATE NOCASE NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    PRIMARY KEY (group_name, user_name)
);
CREATE INDEX group_members_user_name ON group_members (user_name);

CREATE TABLE user_inline_policies (
    user_name TEXT COLLATE NOCASE NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    name      TEXT COLLATE NOCASE NOT NULL,
    document  TEXT NOT NULL,
    PRIMARY KEY (user_name, name)
);

CREATE TABLE group_inline_policies (
    group_name TEXT COLLATE NOCASE NOT NULL REFERENCES groups (name) ON DELETE CASCADE,
    name       TEXT COLLATE NOCASE NOT NULL,
    document   TEXT NOT NULL,
    PRIMARY KEY (group_name, name)
);

-- `default_version` and `attachment_count` of a `ManagedPolicy` are not stored here: they
-- are read from `policy_versions` and the attachment tables, so they cannot drift.
CREATE TABLE managed_policies (
    arn         TEXT    PRIMARY KEY NOT NULL,
    name        TEXT    COLLATE NOCASE NOT NULL UNIQUE,
    path        TEXT    NOT NULL,
    policy_id   TEXT    NOT NULL UNIQUE,
    description TEXT    NOT NULL,
    created     INTEGER NOT NULL,
    updated     INTEGER NOT NULL
);

-- `seq` keeps creation order (`v10` sorts before `v2` as text).
CREATE TABLE policy_versions (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    policy_arn TEXT    NOT NULL REFERENCES managed_policies (arn) ON DELETE CASCADE,
    version_id TEXT    NOT NULL,
    document   TEXT    NOT NULL,
    is_default INTEGER NOT NULL CHECK (is_default IN (0, 1)),
    created    INTEGER NOT NULL,
    UNIQUE (policy_arn, version_id)
);
-- At most one default version per policy.
CREATE UNIQUE INDEX policy_versions_one_default ON policy_versions (policy_arn) WHERE is_default = 1;

CREATE TABLE user_policy_attachments (
    user_name  TEXT COLLATE NOCASE NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    policy_arn TEXT NOT NULL REFERENCES managed_policies (arn) ON DELETE CASCADE,
    PRIMARY KEY (user_name, policy_arn)
);
CREATE INDEX user_policy_attachments_policy_arn ON user_policy_attachments (policy_arn);

CREATE TABLE group_policy_attachments (
    group_name TEXT COLLATE NOCASE NOT NULL REFERENCES groups (name) ON DELETE CASCADE,
    policy_arn TEXT NOT NULL REFERENCES managed_policies (arn) ON DELETE CASCADE,
    PRIMARY KEY (group_name, policy_arn)
);
CREATE INDEX group_policy_attachments_policy_arn ON group_policy_attachments (policy_arn);

CREATE TABLE activations (
    id                    TEXT    PRIMARY KEY NOT NULL,
    code_hash             TEXT    NOT NULL,
    description           TEXT    NOT NULL,
    default_instance_name TEXT    NOT NULL,
    iam_role              TEXT    NOT NULL,
    registration_limit    INTEGER NOT NULL CHECK (registration_limit >= 0),
    registrations_count   INTEGER NOT NULL
                          CHECK (registrations_count >= 0 AND registrations_count <= registration_limit),
    expiration            INTEGER NOT NULL,
    created               INTEGER NOT NULL
);

CREATE TABLE activation_tags (
    activation_id TEXT    NOT NULL REFERENCES activations (id) ON DELETE CASCADE,
    key           TEXT    NOT NULL,
    value         TEXT    NOT NULL,
    position      INTEGER NOT NULL,
    PRIMARY KEY (activation_id, key)
);

-- `activation_id` is not a foreign key: deleting an activation does not deregister the
-- nodes registered with it (as in SSM), and they keep naming it.
CREATE TABLE nodes (
    id            TEXT    PRIMARY KEY NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('Ec2Instance', 'ManagedInstance')),
    name          TEXT    NOT NULL,
    platform      TEXT    NOT NULL,
    agent_version TEXT    NOT NULL,
    ip_address    TEXT    NOT NULL,
    activation_id TEXT,
    registered    INTEGER NOT NULL,
    last_ping     INTEGER,
    -- SHA-256 (hex) of the credential the node's agent presents.
    credential_hash TEXT    NOT NULL
);

CREATE TABLE node_tags (
    node_id  TEXT    NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    key      TEXT    NOT NULL,
    value    TEXT    NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (node_id, key)
);

-- `target` and `owner` are not foreign keys: a session's history stays after its node is
-- deregistered or its owner deleted.
CREATE TABLE sessions (
    id       TEXT    PRIMARY KEY NOT NULL,
    owner    TEXT    NOT NULL,
    target   TEXT    NOT NULL,
    document TEXT    NOT NULL,
    reason   TEXT    NOT NULL,
    status   TEXT    NOT NULL CHECK (status IN ('Connected', 'Connecting', 'Disconnected',
                                                'Terminated', 'Terminating', 'Failed')),
    started  INTEGER NOT NULL,
    ended    INTEGER
);
CREATE INDEX sessions_status_started ON sessions (status, started);
CREATE INDEX sessions_started ON sessions (started);
CREATE INDEX sessions_target ON sessions (target);
CREATE INDEX sessions_owner ON sessions (owner);

-- Append-only; `seq` is the order events happened in.
CREATE TABLE audit_events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    time       INTEGER NOT NULL,
    request_id TEXT    NOT NULL,
    principal  TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    resource   TEXT    NOT NULL,
    decision   TEXT    NOT NULL,
    statement  TEXT,
    source_ip  TEXT    NOT NULL,
    error      TEXT
);
