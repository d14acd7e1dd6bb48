//! The SQLite store.
//!
//! Two pools on one file: a writer with a single connection, since SQLite runs one write
//! transaction at a time anyway (queueing in the pool is cheaper and fairer than
//! `SQLITE_BUSY` retries), and a few readers, which WAL lets run beside the writer on their
//! own snapshots. Write transactions start with `BEGIN IMMEDIATE`, so a transaction that
//! reads before it writes holds the write lock from its first statement and never has to
//! upgrade (which could fail with `SQLITE_BUSY` were another process writing the file).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use portcullis_core::model::{
    AccessKey, Account, Activation, AuditEvent, Group, InlinePolicy, KeyOwner, KeyStatus,
    LoginProfile, ManagedPolicy, Node, PolicyVersion, Session, SessionStatus, Tag, User,
};
use portcullis_core::store::{
    conflict, PolicyOwner, SessionFilter, Store, StoreError, StoreResult,
};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite, Transaction};
use tokio::sync::{mpsc, oneshot};

use crate::error::Db;
use crate::rows;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a connection waits for a lock held by another before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Reader connections (the writer has one of its own).
const READERS: u32 = 4;

/// A managed policy with the fields derived from its versions and attachments.
const POLICY_COLUMNS: &str = "p.arn, p.name, p.path, p.policy_id, p.description, p.created, \
     p.updated, \
     COALESCE((SELECT v.version_id FROM policy_versions v \
               WHERE v.policy_arn = p.arn AND v.is_default = 1), '') AS default_version, \
     (SELECT COUNT(*) FROM user_policy_attachments a WHERE a.policy_arn = p.arn) \
     + (SELECT COUNT(*) FROM group_policy_attachments a WHERE a.policy_arn = p.arn) \
       AS attachment_count";

const USER_COLUMNS: &str = "name, user_id, arn, path, created, permissions_boundary";
const GROUP_COLUMNS: &str = "name, group_id, arn, path, created";
const KEY_COLUMNS: &str = "id, secret, user_name, status, created";
const LOGIN_PROFILE_COLUMNS: &str = "user_name, password_hash, created, password_reset_required";
const ACTIVATION_COLUMNS: &str = "id, code_hash, description, default_instance_name, iam_role, \
     registration_limit, registrations_count, expiration, created";
const NODE_COLUMNS: &str = "id, kind, name, platform, agent_version, ip_address, \
     activation_id, registered, last_ping, credential_hash";
const SESSION_COLUMNS: &str = "id, owner, target, document, reason, status, started, ended";
const AUDIT_COLUMNS: &str =
    "time, request_id, principal, action, resource, decision, statement, source_ip, error";

const ALL_STATUSES: [SessionStatus; 6] = [
    SessionStatus::Connected,
    SessionStatus::Connecting,
    SessionStatus::Disconnected,
    SessionStatus::Terminated,
    SessionStatus::Terminating,
    SessionStatus::Failed,
];

/// A [`Store`] on one SQLite file. Cheap to clone (the pools are shared).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    writers: Writers,
}

/// One queued write and where its result goes.
type Pending<T> = (T, oneshot::Sender<StoreResult<()>>);
/// Writes a batch in one transaction; one result per item, in order.
type BatchWrite<T> =
    fn(
        SqlitePool,
        Vec<T>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<StoreResult<()>>> + Send>>;

/// Group commit for the hot inserts (audit events, sessions): one task writes whatever has
/// queued up in a single transaction, so under concurrency a commit's cost is shared, and
/// each caller still returns only once its own row is durable (or refused).
#[derive(Debug)]
struct GroupCommit<T> {
    queue: mpsc::Sender<Pending<T>>,
}

impl<T> Clone for GroupCommit<T> {
    fn clone(&self) -> Self {
        GroupCommit {
            queue: self.queue.clone(),
        }
    }
}

/// The most rows one batch takes (audit rows have 9 parameters: far under SQLite's limit).
const BATCH: usize = 256;

impl<T: Send + 'static> GroupCommit<T> {
    fn start(pool: SqlitePool, write: BatchWrite<T>) -> GroupCommit<T> {
        let (queue, mut rx) = mpsc::channel::<Pending<T>>(4 * BATCH);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let (items, waiters): (Vec<T>, Vec<_>) = batch.into_iter().unzip();
                let results = write(pool.clone(), items).await;
                for (waiter, result) in waiters.into_iter().zip(results) {
                    let _ = waiter.send(result);
                }
            }
        });
        GroupCommit { queue }
    }

    async fn write(&self, item: T) -> StoreResult<()> {
        let stopped = || StoreError::Backend("the store's writer has stopped".into());
        let (done, wait) = oneshot::channel();
        self.queue.send((item, done)).await.map_err(|_| stopped())?;
        wait.await.map_err(|_| stopped())?
    }
}

/// All of a batch's audit events in one multi-row INSERT.
fn write_audit(
    pool: SqlitePool,
    events: Vec<AuditEvent>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<StoreResult<()>>> + Send>> {
    Box::pin(async move {
        let mut insert =
            QueryBuilder::<Sqlite>::new(format!("INSERT INTO audit_events ({AUDIT_COLUMNS}) "));
        insert.push_values(&events, |mut row, e| {
            row.push_bind(e.time)
                .push_bind(e.request_id.clone())
                .push_bind(e.principal.clone())
                .push_bind(e.action.clone())
                .push_bind(e.resource.clone())
                .push_bind(e.decision.clone())
                .push_bind(e.statement.clone())
                .push_bind(e.source_ip.clone())
                .push_bind(e.error.clone());
        });
        let result = insert.build().execute(&pool).await.db().map(|_| ());
        vec![result; events.len()]
    })
}

/// A batch of sessions in one transaction, each INSERT on its own: in SQLite a refused row
/// (a duplicate id) fails its statement, not the transaction, so the others still land.
fn write_sessions(
    pool: SqlitePool,
    sessions: Vec<Session>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<StoreResult<()>>> + Send>> {
    Box::pin(async move {
        let mut tx = match pool.begin().await.db() {
            Ok(tx) => tx,
            Err(e) => return vec![Err(e); sessions.len()],
        };
        let mut results = Vec::with_capacity(sessions.len());
        for session in &sessions {
            let r = sqlx::query(&format!(
                "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .bind(&session.id)
            .bind(&session.owner)
            .bind(&session.target)
            .bind(&session.document)
            .bind(&session.reason)
            .bind(session.status.as_str())
            .bind(session.started)
            .bind(session.ended)
            .execute(&mut *tx)
            .await
            .db()
            .map(|_| ());
            results.push(r);
        }
        match tx.commit().await.db() {
            Ok(()) => results,
            Err(e) => vec![Err(e); sessions.len()],
        }
    })
}

#[derive(Debug, Clone)]
struct Writers {
    audit: GroupCommit<AuditEvent>,
    sessions: GroupCommit<Session>,
}

impl Writers {
    fn start(pool: &SqlitePool) -> Writers {
        Writers {
            audit: GroupCommit::start(pool.clone(), write_audit),
            sessions: GroupCommit::start(pool.clone(), write_sessions),
        }
    }
}

/// How often the WAL is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Checkpoints the WAL in the background, without blocking writers (`PASSIVE`), and stops
/// when the store's pools are closed.
fn spawn_checkpointer(reader: &SqlitePool) {
    let pool = reader.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        loop {
            tick.tick().await;
            if pool.is_closed() {
                break;
            }
            // A failure is not fatal: the next tick tries again, and the WAL grows meanwhile.
            let _ = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await;
        }
    });
}

impl SqliteStore {
    /// Opens the database at `path`, creating it (readable by its owner only: it holds
    /// access key secrets) if it is missing, and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        create_private(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        // The writer's one connection stays open for the store's life. It never checkpoints
        // the WAL itself (a checkpoint inside a commit is a multi-millisecond stall for every
        // request queued behind it); a background task does it with a reader connection.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone().pragma("wal_autocheckpoint", "0"))
            .await
            .db()?;
        migrate(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(options)
            .await
            .db()?;
        spawn_checkpointer(&reader);
        Ok(SqliteStore {
            writers: Writers::start(&writer),
            writer,
            reader,
        })
    }

    /// A private in-memory database, for tests. It lives on one connection, which reads and
    /// writes alike, for as long as the store does.
    pub async fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .db()?;
        migrate(&pool).await?;
        Ok(SqliteStore {
            writers: Writers::start(&pool),
            writer: pool.clone(),
            reader: pool,
        })
    }

    /// Waits for running queries to end and closes every connection.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    async fn write(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        self.writer.begin_with("BEGIN IMMEDIATE").await.db()
    }

    /// A read transaction: several statements on one snapshot.
    async fn read(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        self.reader.begin().await.db()
    }
}

async fn migrate(pool: &SqlitePool) -> StoreResult<()> {
    MIGRATOR
        .run(pool)
        .await
        .map_err(|e| StoreError::Backend(format!("migration failed: {e}")))
}

/// Creates the file with mode 0600 if it does not exist. An existing file is left as it is.
fn create_private(path: &Path) -> StoreResult<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Backend(format!(
            "cannot create `{}`: {e}",
            path.display()
        ))),
    }
}

/// The tables behind a [`PolicyOwner`]; all names are constants, never input.
struct OwnerTables {
    parent: &'static str,
    column: &'static str,
    inline: &'static str,
    attachments: &'static str,
}

fn owner_tables(owner: &PolicyOwner) -> (OwnerTables, &str) {
    match owner {
        PolicyOwner::User(name) => (
            OwnerTables {
                parent: "users",
                column: "user_name",
                inline: "user_inline_policies",
                attachments: "user_policy_attachments",
            },
            name,
        ),
        PolicyOwner::Group(name) => (
            OwnerTables {
                parent: "groups",
                column: "group_name",
                inline: "group_inline_policies",
                attachments: "group_policy_attachments",
            },
            name,
        ),
    }
}

/// The name of a user or group as it was written (lookups ignore case), or `NotFound`.
async fn canonical(
    conn: &mut SqliteConnection,
    table: &'static str,
    name: &str,
) -> StoreResult<String> {
    sqlx::query_scalar::<_, String>(&format!("SELECT name FROM {table} WHERE name = ?"))
        .bind(name)
        .fetch_optional(&mut *conn)
        .await
        .db()?
        .ok_or(StoreError::NotFound)
}

/// `NotFound` unless `sql` (which selects by one bound value) finds a row.
async fn must_exist(conn: &mut SqliteConnection, sql: &str, id: &str) -> StoreResult<()> {
    let found = sqlx::query(sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .db()?;
    found.map(|_| ()).ok_or(StoreError::NotFound)
}

/// `Conflict(what)` when `sql` (which selects by one bound value) finds a row: something
/// still depends on the record about to be deleted.
async fn refuse_if_any(
    conn: &mut SqliteConnection,
    sql: &str,
    id: &str,
    what: &str,
) -> StoreResult<()> {
    let found = sqlx::query(sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .db()?;
    match found {
        Some(_) => Err(StoreError::Conflict(what.to_owned())),
        None => Ok(()),
    }
}

/// The number in a version id (`v12` → 12; IAM's pattern is `v[1-9][0-9]*(\.[A-Za-z0-9-]*)?`).
fn version_number(version_id: &str) -> Option<i64> {
    let digits: String = version_id
        .strip_prefix('v')?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// `NotFound` when an update or delete touched nothing.
fn touched(result: sqlx::sqlite::SqliteQueryResult) -> StoreResult<()> {
    if result.rows_affected() == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// Tag tables: `user_tags`, `node_tags`, `activation_tags`, each with its owner column.
#[derive(Clone, Copy)]
struct TagTable {
    table: &'static str,
    owner: &'static str,
}

const USER_TAGS: TagTable = TagTable {
    table: "user_tags",
    owner: "user_name",
};
const NODE_TAGS: TagTable = TagTable {
    table: "node_tags",
    owner: "node_id",
};
const ACTIVATION_TAGS: TagTable = TagTable {
    table: "activation_tags",
    owner: "activation_id",
};

/// Adds tags in order; a key already there (as the table compares keys) is replaced,
/// keeping its place.
async fn insert_tags(
    conn: &mut SqliteConnection,
    t: TagTable,
    owner: &str,
    tags: &[Tag],
) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO {table} ({owner}, key, value, position) VALUES (?, ?, ?, ?) \
         ON CONFLICT ({owner}, key) DO UPDATE SET key = excluded.key, value = excluded.value",
        table = t.table,
        owner = t.owner,
    );
    for (position, tag) in (0_i64..).zip(tags) {
        sqlx::query(&sql)
            .bind(owner)
            .bind(&tag.key)
            .bind(&tag.value)
            .bind(position)
            .execute(&mut *conn)
            .await
            .db()?;
    }
    Ok(())
}

async fn replace_tags(
    conn: &mut SqliteConnection,
    t: TagTable,
    owner: &str,
    tags: &[Tag],
) -> StoreResult<()> {
    sqlx::query(&format!("DELETE FROM {} WHERE {} = ?", t.table, t.owner))
        .bind(owner)
        .execute(&mut *conn)
        .await
        .db()?;
    insert_tags(conn, t, owner, tags).await
}

async fn read_tags(conn: &mut SqliteConnection, t: TagTable, owner: &str) -> StoreResult<Vec<Tag>> {
    let rows = sqlx::query(&format!(
        "SELECT key, value FROM {} WHERE {} = ? ORDER BY position",
        t.table, t.owner
    ))
    .bind(owner)
    .fetch_all(&mut *conn)
    .await
    .db()?;
    rows.iter().map(rows::tag).collect()
}

async fn insert_key(conn: &mut SqliteConnection, key: &AccessKey) -> StoreResult<()> {
    let user = match &key.owner {
        KeyOwner::Root => None,
        KeyOwner::User(name) => Some(canonical(conn, "users", name).await?),
    };
    sqlx::query(
        "INSERT INTO access_keys (id, secret, user_name, status, created) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(&key.id)
    .bind(&key.secret)
    .bind(user)
    .bind(key.status.as_str())
    .bind(key.created)
    .execute(&mut *conn)
    .await
    .db()?;
    Ok(())
}

async fn insert_version(
    conn: &mut SqliteConnection,
    arn: &str,
    version: &PolicyVersion,
    is_default: bool,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO policy_versions (policy_arn, version_id, document, is_default, created) \
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(arn)
    .bind(&version.version_id)
    .bind(&version.document)
    .bind(is_default)
    .bind(version.created)
    .execute(&mut *conn)
    .await
    .db()?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    // Account

    async fn account(&self) -> StoreResult<Option<Account>> {
        let row = sqlx::query("SELECT id, region, created FROM account")
            .fetch_optional(&self.reader)
            .await
            .db()?;
        row.as_ref().map(rows::account).transpose()
    }

    async fn create_account(&self, account: &Account, root_key: &AccessKey) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query("INSERT INTO account (singleton, id, region, created) VALUES (1, ?, ?, ?)")
            .bind(&account.id)
            .bind(&account.region)
            .bind(account.created)
            .execute(&mut *tx)
            .await
            .db()?;
        insert_key(&mut tx, root_key).await?;
        tx.commit().await.db()
    }

    // Access keys

    async fn access_key(&self, id: &str) -> StoreResult<Option<AccessKey>> {
        let row = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM access_keys WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await
        .db()?;
        row.as_ref().map(rows::access_key).transpose()
    }

    async fn insert_access_key(&self, key: &AccessKey, max_per_owner: usize) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let count: i64 = match &key.owner {
            KeyOwner::Root => {
                sqlx::query_scalar("SELECT COUNT(*) FROM access_keys WHERE user_name IS NULL")
                    .fetch_one(&mut *tx)
                    .await
                    .db()?
            }
            KeyOwner::User(name) => {
                let name = canonical(&mut tx, "users", name).await?;
                sqlx::query_scalar("SELECT COUNT(*) FROM access_keys WHERE user_name = ?")
                    .bind(name)
                    .fetch_one(&mut *tx)
                    .await
                    .db()?
            }
        };
        if usize::try_from(count).unwrap_or(usize::MAX) >= max_per_owner {
            return Err(StoreError::LimitExceeded);
        }
        insert_key(&mut tx, key).await?;
        tx.commit().await.db()
    }

    async fn list_access_keys(&self, owner: &KeyOwner) -> StoreResult<Vec<AccessKey>> {
        let mut tx = self.read().await?;
        let rows = match owner {
            KeyOwner::Root => sqlx::query(&format!(
                "SELECT {KEY_COLUMNS} FROM access_keys WHERE user_name IS NULL \
                 ORDER BY created, id"
            ))
            .fetch_all(&mut *tx)
            .await
            .db()?,
            KeyOwner::User(name) => {
                let name = canonical(&mut tx, "users", name).await?;
                sqlx::query(&format!(
                    "SELECT {KEY_COLUMNS} FROM access_keys WHERE user_name = ? \
                     ORDER BY created, id"
                ))
                .bind(name)
                .fetch_all(&mut *tx)
                .await
                .db()?
            }
        };
        tx.commit().await.db()?;
        rows.iter().map(rows::access_key).collect()
    }

    async fn set_access_key_status(&self, id: &str, status: KeyStatus) -> StoreResult<()> {
        let result = sqlx::query("UPDATE access_keys SET status = ? WHERE id = ?")
            .bind(status.as_str())
            .bind(id)
            .execute(&self.writer)
            .await
            .db()?;
        touched(result)
    }

    async fn delete_access_key(&self, id: &str) -> StoreResult<()> {
        let result = sqlx::query("DELETE FROM access_keys WHERE id = ?")
            .bind(id)
            .execute(&self.writer)
            .await
            .db()?;
        touched(result)
    }

    // Users

    async fn insert_user(&self, user: &User, tags: &[Tag]) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO users (name, user_id, arn, path, created, permissions_boundary) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&user.name)
        .bind(&user.user_id)
        .bind(&user.arn)
        .bind(&user.path)
        .bind(user.created)
        .bind(&user.permissions_boundary)
        .execute(&mut *tx)
        .await
        .db()?;
        insert_tags(&mut tx, USER_TAGS, &user.name, tags).await?;
        tx.commit().await.db()
    }

    async fn user(&self, name: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?"))
            .bind(name)
            .fetch_optional(&self.reader)
            .await
            .db()?;
        row.as_ref().map(rows::user).transpose()
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        let rows = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"))
            .fetch_all(&self.reader)
            .await
            .db()?;
        rows.iter().map(rows::user).collect()
    }

    async fn delete_user(&self, name: &str) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let name = canonical(&mut tx, "users", name).await?;
        for (sql, what) in [
            (
                "SELECT 1 FROM login_profiles WHERE user_name = ?",
                conflict::LOGIN_PROFILE,
            ),
            (
                "SELECT 1 FROM access_keys WHERE user_name = ?",
                conflict::ACCESS_KEYS,
            ),
            (
                "SELECT 1 FROM user_policy_attachments WHERE user_name = ?",
                conflict::ATTACHED_POLICIES,
            ),
            (
                "SELECT 1 FROM user_inline_policies WHERE user_name = ?",
                conflict::INLINE_POLICIES,
            ),
            (
                "SELECT 1 FROM group_members WHERE user_name = ?",
                conflict::GROUP_MEMBERSHIPS,
            ),
        ] {
            refuse_if_any(&mut tx, sql, &name, what).await?;
        }
        sqlx::query("DELETE FROM users WHERE name = ?")
            .bind(&name)
            .execute(&mut *tx)
            .await
            .db()?;
        tx.commit().await.db()
    }

    async fn user_tags(&self, name: &str) -> StoreResult<Vec<Tag>> {
        let mut tx = self.read().await?;
        let name = canonical(&mut tx, "users", name).await?;
        let tags = read_tags(&mut tx, USER_TAGS, &name).await?;
        tx.commit().await.db()?;
        Ok(tags)
    }

    async fn set_user_tags(&self, name: &str, tags: &[Tag]) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let name = canonical(&mut tx, "users", name).await?;
        replace_tags(&mut tx, USER_TAGS, &name, tags).await?;
        tx.commit().await.db()
    }

    async fn set_user_boundary(&self, name: &str, policy_arn: Option<&str>) -> StoreResult<()> {
        // A missing policy is a foreign key violation, so `NotFound` too.
        let result = sqlx::query("UPDATE users SET permissions_boundary = ? WHERE name = ?")
            .bind(policy_arn)
            .bind(name)
            .execute(&self.writer)
            .await
            .db()?;
        touched(result)
    }

    async fn insert_login_profile(&self, profile: &LoginProfile) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let user = canonical(&mut tx, "users", &profile.user_name).await?;
        sqlx::query(&format!(
            "INSERT INTO login_profiles ({LOGIN_PROFILE_COLUMNS}) VALUES (?, ?, ?, ?)"
        ))
        .bind(user)
        .bind(&profile.password_hash)
        .bind(profile.created)
        .bind(profile.password_reset_required)
        .execute(&mut *tx)
        .await
        .db()?;
        tx.commit().await.db()
    }

    async fn login_profile(&self, user: &str) -> StoreResult<Option<LoginProfile>> {
        let row = sqlx::query(&format!(
            "SELECT {LOGIN_PROFILE_COLUMNS} FROM login_profiles WHERE user_name = ?"
        ))
        .bind(user)
        .fetch_optional(&self.reader)
        .await
        .db()?;
        row.as_ref().map(rows::login_profile).transpose()
    }

    async fn update_login_profile(
        &self,
        user: &str,
        password_hash: Option<&str>,
        password_reset_required: Option<bool>,
    ) -> StoreResult<()> {
        let result = sqlx::query(
            "UPDATE login_profiles SET password_hash = COALESCE(?, password_hash), \
             password_reset_required = COALESCE(?, password_reset_required) \
             WHERE user_name = ?",
        )
        .bind(password_hash)
        .bind(password_reset_required)
        .bind(user)
        .execute(&self.writer)
        .await
        .db()?;
        touched(result)
    }

    async fn delete_login_profile(&self, user: &str) -> StoreResult<()> {
        let result = sqlx::query("DELETE FROM login_profiles WHERE user_name = ?")
            .bind(user)
            .execute(&self.writer)
            .await
            .db()?;
        touched(result)
    }

    // Groups

    async fn insert_group(&self, group: &Group) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO groups (name, group_id, arn, path, created) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&group.name)
        .bind(&group.group_id)
        .bind(&group.arn)
        .bind(&group.path)
        .bind(group.created)
        .execute(&self.writer)
        .await
        .db()?;
        Ok(())
    }

    async fn group(&self, name: &str) -> StoreResult<Option<Group>> {
        let row = sqlx::query(&format!(
            "SELECT {GROUP_COLUMNS} FROM groups WHERE name = ?"
        ))
        .bind(name)
        .fetch_optional(&self.reader)
        .await
        .db()?;
        row.as_ref().map(rows::group).transpose()
    }

    async fn list_groups(&self) -> StoreResult<Vec<Group>> {
        let rows = sqlx::query(&format!("SELECT {GROUP_COLUMNS} FROM groups ORDER BY name"))
            .fetch_all(&self.reader)
            .await
            .db()?;
        rows.iter().map(rows::group).collect()
    }

    async fn delete_group(&self, name: &str) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let name = canonical(&mut tx, "groups", name).await?;
        for (sql, what) in [
            (
                "SELECT 1 FROM group_members WHERE group_name = ?",
                conflict::GROUP_MEMBERSHIPS,
            ),
            (
                "SELECT 1 FROM group_inline_policies WHERE group_name = ?",
                conflict::INLINE_POLICIES,
            ),
            (
                "SELECT 1 FROM group_policy_attachments WHERE group_name = ?",
                conflict::ATTACHED_POLICIES,
            ),
        ] {
            refuse_if_any(&mut tx, sql, &name, what).await?;
        }
        sqlx::query("DELETE FROM groups WHERE name = ?")
            .bind(&name)
            .execute(&mut *tx)
            .await
            .db()?;
        tx.commit().await.db()
    }

    /// Adding a member twice is not an error (as `AddUserToGroup`).
    async fn add_user_to_group(&self, group: &str, user: &str) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let group = canonical(&mut tx, "groups", group).await?;
        let user = canonical(&mut tx, "users", user).await?;
        sqlx::query(
            "INSERT INTO group_members (group_name, user_name) VALUES (?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(group)
        .bind(user)
        .execute(&mut *tx)
        .await
        .db()?;
        tx.commit().await.db()
    }

    /// `NotFound` when the user is not a member (or either does not exist).
    async fn remove_user_from_group(&self, group: &str, user: &str) -> StoreResult<()> {
        let result =
            sqlx::query("DELETE FROM group_members WHERE group_name = ? AND user_name = ?")
                .bind(group)
                .bind(user)
                .execute(&self.writer)
                .await
                .db()?;
        touched(result)
    }

    async fn groups_for_user(&self, user: &str) -> StoreResult<Vec<Group>> {
        let mut tx = self.read().await?;
        let user = canonical(&mut tx, "users", user).await?;
        let rows = sqlx::query(
            "SELECT g.name, g.group_id, g.arn, g.path, g.created \
             FROM groups g JOIN group_members m ON m.group_name = g.name \
             WHERE m.user_name = ? ORDER BY g.name",
        )
        .bind(user)
        .fetch_all(&mut *tx)
        .await
        .db()?;
        tx.commit().await.db()?;
        rows.iter().map(rows::group).collect()
    }

    async fn group_members(&self, group: &str) -> StoreResult<Vec<String>> {
        let mut tx = self.read().await?;
        let group = canonical(&mut tx, "groups", group).await?;
        let names = sqlx::query_scalar(
            "SELECT user_name FROM group_members WHERE group_name = ? ORDER BY user_name",
        )
        .bind(group)
        .fetch_all(&mut *tx)
        .await
        .db()?;
        tx.commit().await.db()?;
        Ok(names)
    }

    // Inline policies

    async fn put_inline_policy(
        &self,
        owner: &PolicyOwner,
        policy: &InlinePolicy,
    ) -> StoreResult<()> {
        let (t, name) = owner_tables(owner);
        let mut tx = self.write().await?;
        let name = canonical(&mut tx, t.parent, name).await?;
        sqlx::query(&format!(
            "INSERT INTO {inline} ({column}, name, document) VALUES (?, ?, ?) \
             ON CONFLICT ({column}, name) DO UPDATE \
             SET name = excluded.name, document = excluded.document",
            inline = t.inline,
            column = t.column,
        ))
        .bind(name)
        .bind(&policy.name)
        .bind(&policy.document)
        .execute(&mut *tx)
        .await
        .db()?;
        tx.commit().await.db()
    }

    async fn list_inline_policies(&self, owner: &PolicyOwner) -> StoreResult<Vec<InlinePolicy>> {
        let (t, name) = owner_tables(owner);
        let mut tx = self.read().await?;
        let name = canonical(&mut tx, t.parent, name).await?;
        let policies = sqlx::query_as::<_, (String, String)>(&format!(
            "SELECT name, document FROM {} WHERE {} = ? ORDER BY name",
            t.inline, t.column
        ))
        .bind(name)
        .fetch_all(&mut *tx)
        .await
        .db()?;
        tx.commit().await.db()?;
        Ok(policies
            .into_iter()
            .map(|(name, document)| InlinePolicy { name, document })
            .collect())
    }

    async fn delete_inline_policy(&self, owner: &PolicyOwner, name: &str) -> StoreResult<()> {
        let (t, owner_name) = owner_tables(owner);
        let result = sqlx::query(&format!(
            "DELETE FROM {} WHERE {} = ? AND name = ?",
            t.inline, t.column
        ))
        .bind(owner_name)
        .bind(name)
        .execute(&self.writer)
        .await
        .db()?;
        touched(result)
    }

    // Managed policies

    /// `first` becomes the default version whatever its `is_default` says.
    async fn insert_managed_policy(
        &self,
        policy: &ManagedPolicy,
        first: &PolicyVersion,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO managed_policies \
             (arn, name, path, policy_id, description, created, updated, last_version) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&policy.arn)
        .bind(&policy.name)
        .bind(&policy.path)
        .bind(&policy.policy_id)
        .bind(&policy.description)
        .bind(policy.created)
        .bind(policy.updated)
        .bind(version_number(&first.version_id).unwrap_or(1))
        .execute(&mut *tx)
        .await
        .db()?;
        insert_version(&mut tx, &policy.arn, first, true).await?;
        tx.commit().await.db()
    }

    async fn managed_policy(&self, arn: &str) -> StoreResult<Option<ManagedPolicy>> {
        let row = sqlx::query(&format!(
            "SELECT {POLICY_COLUMNS} FROM managed_policies p WHERE p.arn = ?"
        ))
        .bind(arn)
        .fetch_optional(&self.reader)
        .await
        .db()?;
        row.as_ref().map(rows::managed_policy).transpose()
    }

    async fn list_managed_policies(&self) -> StoreResult<Vec<ManagedPolicy>> {
        let rows = sqlx::query(&format!(
            "SELECT {POLICY_COLUMNS} FROM managed_policies p ORDER BY p.name"
        ))
        .fetch_all(&self.reader)
        .await
        .db()?;
        rows.iter().map(rows::managed_policy).collect()
    }

    async fn policy_versions(&self, arn: &str) -> StoreResult<Vec<PolicyVersion>> {
        let mut tx = self.read().await?;
        must_exist(&mut tx, "SELECT 1 FROM managed_policies WHERE arn = ?", arn).await?;
        let rows = sqlx::query(
            "SELECT version_id, document, is_default, created FROM policy_versions \
             WHERE policy_arn = ? ORDER BY seq",
        )
        .bind(arn)
        .fetch_all(&mut *tx)
        .await
        .db()?;
        tx.commit().await.db()?;
        rows.iter().map(rows::policy_version).collect()
    }

    async fn add_policy_version(
        &self,
        arn: &str,
        document: &str,
        set_as_default: bool,
        created: i64,
        max_versions: usize,
    ) -> StoreResult<PolicyVersion> {
        let mut tx = self.write().await?;
        let last: i64 =
            sqlx::query_scalar("SELECT last_version FROM managed_policies WHERE arn = ?")
                .bind(arn)
                .fetch_optional(&mut *tx)
                .await
                .db()?
                .ok_or(StoreError::NotFound)?;
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM policy_versions WHERE policy_arn = ?")
                .bind(arn)
                .fetch_one(&mut *tx)
                .await
                .db()?;
        if usize::try_from(count).unwrap_or(usize::MAX) >= max_versions {
            return Err(StoreError::LimitExceeded);
        }
        let next = last.saturating_add(1);
        let version = PolicyVersion {
            version_id: format!("v{next}"),
            document: document.to_owned(),
            is_default: set_as_default,
            created,
        };
        if set_as_default {
            sqlx::query(
                "UPDATE policy_versions SET is_default = 0 \
                 WHERE policy_arn = ? AND is_default = 1",
            )
            .bind(arn)
            .execute(&mut *tx)
            .await
            .db()?;
        }
        insert_version(&mut tx, arn, &version, set_as_default).await?;
        sqlx::query(
            "UPDATE managed_policies SET last_version = ?, updated = MAX(updated, ?) WHERE arn = ?",
        )
        .bind(next)
        .bind(created)
        .bind(arn)
        .execute(&mut *tx)
        .await
        .db()?;
        tx.commit().await.db()?;
        Ok(version)
    }

    async fn set_default_policy_version(&self, arn: &str, version_id: &str) -> StoreResult<()> {
        let mut tx = self.write().await?;
        must_exist(&mut tx, "SELECT 1 FROM managed_policies WHERE arn = ?", arn).await?;
        let exists =
            sqlx::query("SELECT 1 FROM policy_versions WHERE policy_arn = ? AND version_id = ?")
                .bind(arn)
                .bind(version_id)
                .fetch_optional(&mut *tx)
                .await
                .db()?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
        sqlx::query(
            "UPDATE policy_versions SET is_default = 0 WHERE policy_arn = ? AND is_default = 1",
        )
        .bind(arn)
        .execute(&mut *tx)
        .await
        .db()?;
        sqlx::query(
            "UPDATE policy_versions SET is_default = 1 WHERE policy_arn = ? AND version_id = ?",
        )
        .bind(arn)
        .bind(version_id)
        .execute(&mut *tx)
        .await
        .db()?;
        tx.commit().await.db()
    }

    async fn delete_policy_version(&self, arn: &str, version_id: &str) -> StoreResult<()> {
        let mut tx = self.write().await?;
        must_exist(&mut tx, "SELECT 1 FROM managed_policies WHERE arn = ?", arn).await?;
        let is_default: bool = sqlx::query_scalar(
            "SELECT is_default FROM policy_versions WHERE policy_arn = ? AND version_id = ?",
        )
        .bind(arn)
        .bind(version_id)
        .fetch_optional(&mut *tx)
        .await
        .db()?
        .ok_or(StoreError::NotFound)?;
        if is_default {
            return Err(StoreError::Conflict(conflict::DEFAULT_VERSION.to_owned()));
        }
        sqlx::query("DELETE FROM policy_versions WHERE policy_arn = ? AND version_id = ?")
            .bind(arn)
            .bind(version_id)
            .execute(&mut *tx)
            .await
            .db()?;
        tx.commit().await.db()
    }

    async fn delete_managed_policy(&self, arn: &str) -> StoreResult<()> {
        let mut tx = self.write().await?;
        must_exist(&mut tx, "SELECT 1 FROM managed_policies WHERE arn = ?", arn).await?;
        for (sql, what) in [
            (
                "SELECT 1 FROM user_policy_attachments WHERE policy_arn = ?",
                conflict::POLICY_ATTACHMENTS,
            ),
            (
                "SELECT 1 FROM group_policy_attachments WHERE policy_arn = ?",
                conflict::POLICY_ATTACHMENTS,
            ),
            (
                "SELECT 1 FROM users WHERE permissions_boundary = ?",
                conflict::PERMISSIONS_BOUNDARY,
            ),
            (
                "SELECT 1 FROM policy_versions WHERE policy_arn = ? AND is_default = 0",
                conflict::POLICY_VERSIONS,
            ),
        ] {
            refuse_if_any(&mut tx, sql, arn, what).await?;
        }
        sqlx::query("DELETE FROM managed_policies WHERE arn = ?")
            .bind(arn)
            .execute(&mut *tx)
            .await
            .db()?;
        tx.commit().await.db()
    }

    /// Attaching an attached policy again changes nothing.
    async fn attach_policy(&self, owner: &PolicyOwner, arn: &str) -> StoreResult<()> {
        let (t, name) = owner_tables(owner);
        let mut tx = self.write().await?;
        let name = canonical(&mut tx, t.parent, name).await?;
        must_exist(&mut tx, "SELECT 1 FROM managed_policies WHERE arn = ?", arn).await?;
        sqlx::query(&format!(
            "INSERT INTO {} ({}, policy_arn) VALUES (?, ?) ON CONFLICT DO NOTHING",
            t.attachments, t.column
        ))
        .bind(name)
        .bind(arn)
        .execute(&mut *tx)
        .await
        .db()?;
        tx.commit().await.db()
    }

    async fn detach_policy(&self, owner: &PolicyOwner, arn: &str) -> StoreResult<()> {
        let (t, name) = owner_tables(owner);
        let result = sqlx::query(&format!(
            "DELETE FROM {} WHERE {} = ? AND policy_arn = ?",
            t.attachments, t.column
        ))
        .bind(name)
        .bind(arn)
        .execute(&self.writer)
        .await
        .db()?;
        touched(result)
    }

    async fn attached_policies(&self, owner: &PolicyOwner) -> StoreResult<Vec<String>> {
        let (t, name) = owner_tables(owner);
        let mut tx = self.read().await?;
        let name = canonical(&mut tx, t.parent, name).await?;
        let arns = sqlx::query_scalar(&format!(
            "SELECT policy_arn FROM {} WHERE {} = ? ORDER BY policy_arn",
            t.attachments, t.column
        ))
        .bind(name)
        .fetch_all(&mut *tx)
        .await
        .db()?;
        tx.commit().await.db()?;
        Ok(arns)
    }

    // Nodes and activations

    async fn insert_activation(&self, activation: &Activation) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query(&format!(
            "INSERT INTO activations ({ACTIVATION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&activation.id)
        .bind(&activation.code_hash)
        .bind(&activation.description)
        .bind(&activation.default_instance_name)
        .bind(&activation.iam_role)
        .bind(activation.registration_limit)
        .bind(activation.registrations_count)
        .bind(activation.expiration)
        .bind(activation.created)
        .execute(&mut *tx)
        .await
        .db()?;
        insert_tags(&mut tx, ACTIVATION_TAGS, &activation.id, &activation.tags).await?;
        tx.commit().await.db()
    }

    async fn activation(&self, id: &str) -> StoreResult<Option<Activation>> {
        let mut tx = self.read().await?;
        let row = sqlx::query(&format!(
            "SELECT {ACTIVATION_COLUMNS} FROM activations WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .db()?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut activation = rows::activation(&row)?;
        activation.tags = read_tags(&mut tx, ACTIVATION_TAGS, id).await?;
        tx.commit().await.db()?;
        Ok(Some(activation))
    }

    async fn list_activations(&self) -> StoreResult<Vec<Activation>> {
        let mut tx = self.read().await?;
        let rows = sqlx::query(&format!(
            "SELECT {ACTIVATION_COLUMNS} FROM activations ORDER BY created, id"
        ))
        .fetch_all(&mut *tx)
        .await
        .db()?;
        let tag_rows = sqlx::query(
            "SELECT activation_id, key, value FROM activation_tags \
             ORDER BY activation_id, position",
        )
        .fetch_all(&mut *tx)
        .await
        .db()?;
        tx.commit().await.db()?;
        let mut tags: HashMap<String, Vec<Tag>> = HashMap::new();
        for row in &tag_rows {
            let id: String = sqlx::Row::try_get(row, "activation_id").db()?;
            tags.entry(id).or_default().push(rows::tag(row)?);
        }
        rows.iter()
            .map(|row| {
                let mut activation = rows::activation(row)?;
                activation.tags = tags.remove(&activation.id).unwrap_or_default();
                Ok(activation)
            })
            .collect()
    }

    async fn delete_activation(&self, id: &str) -> StoreResult<()> {
        let result = sqlx::query("DELETE FROM activations WHERE id = ?")
            .bind(id)
            .execute(&self.writer)
            .await
            .db()?;
        touched(result)
    }

    /// The node is stored with `activation_id` as its activation, whatever
    /// `node.activation_id` says. Whether the activation has expired is the caller's check.
    async fn register_node(
        &self,
        activation_id: &str,
        node: &Node,
        tags: &[Tag],
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let counted = sqlx::query(
            "UPDATE activations SET registrations_count = registrations_count + 1 \
             WHERE id = ? AND registrations_count < registration_limit",
        )
        .bind(activation_id)
        .execute(&mut *tx)
        .await
        .db()?;
        if counted.rows_affected() == 0 {
            must_exist(
                &mut tx,
                "SELECT 1 FROM activations WHERE id = ?",
                activation_id,
            )
            .await?;
            return Err(StoreError::LimitExceeded);
        }
        sqlx::query(&format!(
            "INSERT INTO nodes ({NODE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&node.id)
        .bind(rows::node_kind_str(node.kind))
        .bind(&node.name)
        .bind(&node.platform)
        .bind(&node.agent_version)
        .bind(&node.ip_address)
        .bind(activation_id)
        .bind(node.registered)
        .bind(node.last_ping)
        .bind(&node.credential_hash)
        .execute(&mut *tx)
        .await
        .db()?;
        insert_tags(&mut tx, NODE_TAGS, &node.id, tags).await?;
        tx.commit().await.db()
    }

    async fn node(&self, id: &str) -> StoreResult<Option<Node>> {
        let row = sqlx::query(&format!("SELECT {NODE_COLUMNS} FROM nodes WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.reader)
            .await
            .db()?;
        row.as_ref().map(rows::node).transpose()
    }

    async fn list_nodes(&self) -> StoreResult<Vec<Node>> {
        let rows = sqlx::query(&format!(
            "SELECT {NODE_COLUMNS} FROM nodes ORDER BY registered, id"
        ))
        .fetch_all(&self.reader)
        .await
        .db()?;
        rows.iter().map(rows::node).collect()
    }

    /// Takes the node's tags; its sessions stay. The activation's count is not given back.
    async fn delete_node(&self, id: &str) -> StoreResult<()> {
        let result = sqlx::query("DELETE FROM nodes WHERE id = ?")
            .bind(id)
            .execute(&self.writer)
            .await
            .db()?;
        touched(result)
    }

    async fn node_tags(&self, id: &str) -> StoreResult<Vec<Tag>> {
        let mut tx = self.read().await?;
        must_exist(&mut tx, "SELECT 1 FROM nodes WHERE id = ?", id).await?;
        let tags = read_tags(&mut tx, NODE_TAGS, id).await?;
        tx.commit().await.db()?;
        Ok(tags)
    }

    async fn set_node_tags(&self, id: &str, tags: &[Tag]) -> StoreResult<()> {
        let mut tx = self.write().await?;
        must_exist(&mut tx, "SELECT 1 FROM nodes WHERE id = ?", id).await?;
        replace_tags(&mut tx, NODE_TAGS, id, tags).await?;
        tx.commit().await.db()
    }

    async fn touch_node(&self, id: &str, time: i64) -> StoreResult<()> {
        let result = sqlx::query("UPDATE nodes SET last_ping = ? WHERE id = ?")
            .bind(time)
            .bind(id)
            .execute(&self.writer)
            .await
            .db()?;
        touched(result)
    }

    // Sessions

    async fn insert_session(&self, session: &Session) -> StoreResult<()> {
        self.writers.sessions.write(session.clone()).await
    }

    async fn session(&self, id: &str) -> StoreResult<Option<Session>> {
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await
        .db()?;
        row.as_ref().map(rows::session).transpose()
    }

    /// Newest first. `started_after` is inclusive, `started_before` exclusive.
    async fn list_sessions(&self, filter: &SessionFilter) -> StoreResult<Vec<Session>> {
        let mut query =
            QueryBuilder::<Sqlite>::new(format!("SELECT {SESSION_COLUMNS} FROM sessions"));
        query.push(" WHERE status IN (");
        let mut statuses = query.separated(", ");
        for status in ALL_STATUSES {
            if status.is_active() == filter.active {
                statuses.push_bind(status.as_str());
            }
        }
        query.push(")");
        if let Some(status) = filter.status {
            query.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(target) = &filter.target {
            query.push(" AND target = ").push_bind(target);
        }
        if let Some(owner) = &filter.owner {
            query.push(" AND owner = ").push_bind(owner);
        }
        if let Some(id) = &filter.session_id {
            query.push(" AND id = ").push_bind(id);
        }
        if let Some(after) = filter.started_after {
            query.push(" AND started >= ").push_bind(after);
        }
        if let Some(before) = filter.started_before {
            query.push(" AND started < ").push_bind(before);
        }
        query.push(" ORDER BY started DESC, id DESC");
        let rows = query.build().fetch_all(&self.reader).await.db()?;
        rows.iter().map(rows::session).collect()
    }

    /// Sets `ended` to exactly `ended` (`None` clears it, as when a session resumes).
    async fn set_session_status(
        &self,
        id: &str,
        status: SessionStatus,
        ended: Option<i64>,
    ) -> StoreResult<()> {
        let result = sqlx::query(
            "UPDATE sessions SET status = ?, ended = ? WHERE id = ? \
             AND status IN ('Connected', 'Connecting', 'Disconnected', 'Terminating')",
        )
        .bind(status.as_str())
        .bind(ended)
        .bind(id)
        .execute(&self.writer)
        .await
        .db()?;
        if result.rows_affected() > 0 {
            return Ok(());
        }
        // Nothing changed: an ended session (a no-op), or no session at all.
        match self.session(id).await? {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound),
        }
    }

    // Audit

    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()> {
        self.writers.audit.write(event.clone()).await
    }

    async fn audit_tail(&self, limit: u32) -> StoreResult<Vec<AuditEvent>> {
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM \
             (SELECT seq, {AUDIT_COLUMNS} FROM audit_events ORDER BY seq DESC LIMIT ?) \
             ORDER BY seq"
        ))
        .bind(limit)
        .fetch_all(&self.reader)
        .await
        .db()?;
        rows.iter().map(rows::audit_event).collect()
    }
}
