#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

//! The SQLite store, on real files in a temp directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use portcullis_core::model::{
    AccessKey, Account, Activation, AuditEvent, Group, InlinePolicy, KeyOwner, KeyStatus,
    LoginProfile, ManagedPolicy, Node, NodeKind, PolicyVersion, Session, SessionStatus, Tag, User,
};
use portcullis_core::store::{conflict, PolicyOwner, SessionFilter, Store, StoreError};
use portcullis_store::SqliteStore;
use tempfile::TempDir;

const ACCOUNT: &str = "123456789012";

struct Db {
    dir: TempDir,
    store: SqliteStore,
}

impl Db {
    fn path(&self) -> PathBuf {
        db_path(self.dir.path())
    }

    /// Closes the store and opens the file again, as a restart would.
    async fn reopen(self) -> Db {
        self.store.close().await;
        let store = SqliteStore::open(&db_path(self.dir.path())).await.unwrap();
        Db {
            dir: self.dir,
            store,
        }
    }

    /// A raw connection, to look at what the trait does not show.
    async fn count(&self, sql: &str) -> i64 {
        use sqlx::Connection;
        let mut conn =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}", self.path().display()))
                .await
                .unwrap();
        let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap();
        conn.close().await.unwrap();
        n
    }
}

fn db_path(dir: &Path) -> PathBuf {
    dir.join("portcullis.db")
}

async fn db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&db_path(dir.path())).await.unwrap();
    Db { dir, store }
}

fn tags(pairs: &[(&str, &str)]) -> Vec<Tag> {
    pairs.iter().map(|(k, v)| Tag::new(*k, *v)).collect()
}

fn user(name: &str) -> User {
    User {
        name: name.to_owned(),
        user_id: format!("AIDA{:0>17}", name.to_uppercase()),
        arn: format!("arn:aws:iam::{ACCOUNT}:user/{name}"),
        path: "/".to_owned(),
        created: 1_700_000_000,
        permissions_boundary: None,
    }
}

fn group(name: &str) -> Group {
    Group {
        name: name.to_owned(),
        group_id: format!("AGPA{:0>17}", name.to_uppercase()),
        arn: format!("arn:aws:iam::{ACCOUNT}:group/{name}"),
        path: "/".to_owned(),
        created: 1_700_000_000,
    }
}

fn policy_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:policy/{name}")
}

fn policy(name: &str) -> ManagedPolicy {
    ManagedPolicy {
        arn: policy_arn(name),
        name: name.to_owned(),
        path: "/".to_owned(),
        policy_id: format!("ANPA{:0>17}", name.to_uppercase()),
        description: format!("{name} policy"),
        default_version: "v1".to_owned(),
        created: 1_700_000_000,
        updated: 1_700_000_000,
        attachment_count: 0,
    }
}

fn document(id: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"ssm:{id}","Resource":"*"}}]}}"#
    )
}

fn version(id: &str, is_default: bool, created: i64) -> PolicyVersion {
    PolicyVersion {
        version_id: id.to_owned(),
        document: document(id),
        is_default,
        created,
    }
}

fn conflict(what: &str) -> Result<(), StoreError> {
    Err(StoreError::Conflict(what.to_owned()))
}

fn profile(user: &str, hash: &str, created: i64) -> LoginProfile {
    LoginProfile {
        user_name: user.to_owned(),
        password_hash: hash.to_owned(),
        created,
        password_reset_required: false,
    }
}

/// Plenty: tests that are not about the limit.
const NO_LIMIT: usize = 100;

fn key(id: &str, owner: KeyOwner, created: i64) -> AccessKey {
    AccessKey {
        id: id.to_owned(),
        secret: format!("secret-of-{id}"),
        owner,
        status: KeyStatus::Active,
        created,
    }
}

fn activation(id: &str, limit: u32) -> Activation {
    Activation {
        id: id.to_owned(),
        code_hash: format!("hash-{id}"),
        description: "test nodes".to_owned(),
        default_instance_name: "web".to_owned(),
        iam_role: "SSMServiceRole".to_owned(),
        registration_limit: limit,
        registrations_count: 0,
        expiration: 1_900_000_000,
        created: 1_700_000_000,
        tags: tags(&[("Project", "test"), ("env", "dev")]),
    }
}

fn node(id: &str, registered: i64) -> Node {
    Node {
        id: id.to_owned(),
        kind: if id.starts_with("mi-") {
            NodeKind::ManagedInstance
        } else {
            NodeKind::Ec2Instance
        },
        name: format!("host-{id}"),
        platform: "Linux".to_owned(),
        agent_version: "0.1.0".to_owned(),
        ip_address: "127.0.0.1".to_owned(),
        activation_id: None,
        registered,
        last_ping: None,
        credential_hash: format!("cred-{id}"),
    }
}

fn session(id: &str, target: &str, status: SessionStatus, started: i64) -> Session {
    Session {
        id: id.to_owned(),
        owner: format!(
            "arn:aws:iam::{ACCOUNT}:user/{}",
            id.split('-').next().unwrap()
        ),
        target: target.to_owned(),
        document: "SSM-SessionManagerRunShell".to_owned(),
        reason: String::new(),
        status,
        started,
        ended: if status.is_active() {
            None
        } else {
            Some(started + 60)
        },
    }
}

fn audit(n: i64) -> AuditEvent {
    AuditEvent {
        time: 1_700_000_000 + n,
        request_id: format!("req-{n}"),
        principal: format!("arn:aws:iam::{ACCOUNT}:user/TestUserA"),
        action: "ssm:StartSession".to_owned(),
        resource: "arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0885b2e35926f1fb3".to_owned(),
        decision: if n % 2 == 0 { "allow" } else { "implicit_deny" }.to_owned(),
        statement: (n % 2 == 0).then(|| r#"policy "Start" /Statement/0"#.to_owned()),
        source_ip: "127.0.0.1".to_owned(),
        error: (n % 2 == 1).then(|| "AccessDeniedException".to_owned()),
    }
}

// Opening

#[cfg(unix)]
#[tokio::test]
async fn a_new_file_is_private_and_in_wal_mode() {
    use std::os::unix::fs::PermissionsExt;
    let db = db().await;
    let mode = std::fs::metadata(db.path()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    db.store.append_audit(&audit(1)).await.unwrap();
    let wal = db.dir.path().join("portcullis.db-wal");
    let mode = std::fs::metadata(&wal).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the WAL file is as private: {mode:o}");
    assert_eq!(
        db.count("SELECT COUNT(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'")
            .await,
        1
    );
}

#[tokio::test]
async fn opening_twice_runs_migrations_once() {
    let db = db().await.reopen().await.reopen().await;
    let files = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite"))
        .unwrap()
        .count();
    assert_eq!(
        db.count("SELECT COUNT(*) FROM _sqlx_migrations").await,
        i64::try_from(files).unwrap()
    );
    assert!(db.store.account().await.unwrap().is_none());
}

/// A database made by the first release (only `0001`) is brought up to date on open:
/// login profiles get their new columns, and version numbering goes on after the
/// highest id each policy already has.
#[tokio::test]
async fn upgrading_from_the_first_schema_keeps_version_numbering() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first");
    std::fs::create_dir(&first).unwrap();
    let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    std::fs::copy(
        migrations.join("0001_initial.sql"),
        first.join("0001_initial.sql"),
    )
    .unwrap();
    let path = db_path(dir.path());
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::migrate::Migrator::new(first.as_path())
        .await
        .unwrap()
        .run(&mut conn)
        .await
        .unwrap();
    for sql in [
        "INSERT INTO users (name, user_id, arn, path, created) \
         VALUES ('alice', 'AIDA1', 'arn:aws:iam::123456789012:user/alice', '/', 1)",
        "INSERT INTO login_profiles (user_name, password_hash) VALUES ('alice', 'h')",
        "INSERT INTO managed_policies (arn, name, path, policy_id, description, created, updated) \
         VALUES ('arn:aws:iam::123456789012:policy/P', 'P', '/', 'ANPA1', '', 1, 1)",
        "INSERT INTO policy_versions (policy_arn, version_id, document, is_default, created) \
         VALUES ('arn:aws:iam::123456789012:policy/P', 'v1', '{}', 0, 1), \
                ('arn:aws:iam::123456789012:policy/P', 'v2', '{}', 0, 2), \
                ('arn:aws:iam::123456789012:policy/P', 'v3', '{}', 1, 3)",
    ] {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();

    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        store.login_profile("ALICE").await.unwrap(),
        Some(profile("alice", "h", 0))
    );
    store
        .delete_policy_version("arn:aws:iam::123456789012:policy/P", "v2")
        .await
        .unwrap();
    let next = store
        .add_policy_version("arn:aws:iam::123456789012:policy/P", "{}", false, 4, 5)
        .await
        .unwrap();
    assert_eq!(next.version_id, "v4");
    store.close().await;
}

#[tokio::test]
async fn in_memory_store_works() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    store
        .insert_user(&user("alice"), &tags(&[("a", "1")]))
        .await
        .unwrap();
    assert_eq!(store.user("alice").await.unwrap().unwrap(), user("alice"));
    assert_eq!(store.user_tags("alice").await.unwrap(), tags(&[("a", "1")]));
    assert_eq!(
        store.insert_user(&user("alice"), &[]).await,
        Err(StoreError::AlreadyExists)
    );
}

// Account and keys

#[tokio::test]
async fn account_is_created_once_with_its_root_key() {
    let db = db().await;
    assert_eq!(db.store.account().await.unwrap(), None);
    let account = Account {
        id: ACCOUNT.to_owned(),
        region: "ap-northeast-1".to_owned(),
        created: 1_700_000_000,
    };
    let root = key("AKIAROOT", KeyOwner::Root, 1_700_000_000);
    db.store.create_account(&account, &root).await.unwrap();
    assert_eq!(db.store.account().await.unwrap(), Some(account.clone()));
    assert_eq!(
        db.store.access_key("AKIAROOT").await.unwrap(),
        Some(root.clone())
    );

    // A second account is refused, and its key is not left behind.
    let other = Account {
        id: "210987654321".to_owned(),
        ..account.clone()
    };
    let second = key("AKIASECOND", KeyOwner::Root, 1_700_000_001);
    assert_eq!(
        db.store.create_account(&other, &second).await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(db.store.access_key("AKIASECOND").await.unwrap(), None);
    assert_eq!(db.store.account().await.unwrap(), Some(account));
    assert_eq!(
        db.store.list_access_keys(&KeyOwner::Root).await.unwrap(),
        vec![root]
    );
}

#[tokio::test]
async fn access_keys_round_trip() {
    let db = db().await;
    db.store.insert_user(&user("alice"), &[]).await.unwrap();
    let alice = KeyOwner::User("alice".to_owned());
    let k2 = key("AKIA2", alice.clone(), 20);
    let k1 = key("AKIA1", alice.clone(), 10);
    db.store.insert_access_key(&k2, 2).await.unwrap();
    db.store.insert_access_key(&k1, 2).await.unwrap();
    db.store
        .insert_access_key(&key("AKIAROOT", KeyOwner::Root, 5), 2)
        .await
        .unwrap();

    // Creation order; the owner as it was written, whatever case it is asked with.
    assert_eq!(
        db.store.list_access_keys(&alice).await.unwrap(),
        vec![k1.clone(), k2.clone()]
    );
    assert_eq!(
        db.store
            .list_access_keys(&KeyOwner::User("ALICE".to_owned()))
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        db.store
            .list_access_keys(&KeyOwner::Root)
            .await
            .unwrap()
            .len(),
        1
    );

    assert_eq!(
        db.store.insert_access_key(&k1, NO_LIMIT).await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(
        db.store
            .insert_access_key(
                &key("AKIA3", KeyOwner::User("nobody".to_owned()), 1),
                NO_LIMIT
            )
            .await,
        Err(StoreError::NotFound)
    );
    // At the limit (counted per owner, whatever case the owner is named in): refused whole.
    assert_eq!(
        db.store
            .insert_access_key(&key("AKIA3", KeyOwner::User("ALICE".to_owned()), 30), 2)
            .await,
        Err(StoreError::LimitExceeded)
    );
    assert_eq!(db.store.access_key("AKIA3").await.unwrap(), None);
    assert_eq!(
        db.store
            .insert_access_key(&key("AKIAROOT2", KeyOwner::Root, 6), 1)
            .await,
        Err(StoreError::LimitExceeded),
        "the root's keys are counted apart"
    );
    assert_eq!(
        db.store
            .list_access_keys(&KeyOwner::User("nobody".to_owned()))
            .await,
        Err(StoreError::NotFound)
    );

    db.store
        .set_access_key_status("AKIA1", KeyStatus::Inactive)
        .await
        .unwrap();
    assert_eq!(
        db.store.access_key("AKIA1").await.unwrap().unwrap().status,
        KeyStatus::Inactive
    );
    assert_eq!(
        db.store
            .set_access_key_status("AKIA9", KeyStatus::Active)
            .await,
        Err(StoreError::NotFound)
    );

    db.store.delete_access_key("AKIA1").await.unwrap();
    assert_eq!(db.store.access_key("AKIA1").await.unwrap(), None);
    assert_eq!(
        db.store.delete_access_key("AKIA1").await,
        Err(StoreError::NotFound)
    );

    // A user with keys is not deleted, and keeps them.
    assert_eq!(
        db.store.delete_user("alice").await,
        conflict(conflict::ACCESS_KEYS)
    );
    assert!(db.store.access_key("AKIA2").await.unwrap().is_some());
    db.store.delete_access_key("AKIA2").await.unwrap();
    db.store.delete_user("alice").await.unwrap();
    assert!(db.store.access_key("AKIAROOT").await.unwrap().is_some());
}

// Users

#[tokio::test]
async fn users_round_trip_and_names_ignore_case() {
    let db = db().await;
    let t = tags(&[("Project", "test"), ("CostCenter", "42")]);
    db.store.insert_user(&user("TestUserA"), &t).await.unwrap();
    db.store.insert_user(&user("bob"), &[]).await.unwrap();
    db.store.insert_user(&user("alice"), &[]).await.unwrap();

    assert_eq!(
        db.store.user("TestUserA").await.unwrap(),
        Some(user("TestUserA"))
    );
    // IAM names are unique without regard to case, and found the same way.
    assert_eq!(
        db.store.user("testusera").await.unwrap().unwrap().name,
        "TestUserA"
    );
    let mut dup = user("TESTUSERA");
    dup.user_id = "AIDAOTHER".to_owned();
    dup.arn = "arn:aws:iam::123456789012:user/TESTUSERA".to_owned();
    assert_eq!(
        db.store.insert_user(&dup, &tags(&[("x", "y")])).await,
        Err(StoreError::AlreadyExists)
    );
    // The refused insert left no tags behind.
    assert_eq!(db.store.user_tags("TestUserA").await.unwrap(), t);

    // Same user id or ARN under another name: refused too.
    let mut same_id = user("carol");
    same_id.user_id = user("bob").user_id;
    assert_eq!(
        db.store.insert_user(&same_id, &[]).await,
        Err(StoreError::AlreadyExists)
    );

    let names: Vec<String> = db
        .store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(
        names,
        ["alice", "bob", "TestUserA"],
        "by name, ignoring case"
    );

    assert_eq!(db.store.user("nobody").await.unwrap(), None);
    assert_eq!(
        db.store.delete_user("nobody").await,
        Err(StoreError::NotFound)
    );
    db.store.delete_user("BOB").await.unwrap();
    assert_eq!(db.store.user("bob").await.unwrap(), None);
}

#[tokio::test]
async fn user_tags_replace_keep_case_and_go_with_the_user() {
    let db = db().await;
    db.store
        .insert_user(&user("alice"), &tags(&[("Project", "test"), ("Team", "a")]))
        .await
        .unwrap();
    assert_eq!(
        db.store.user_tags("alice").await.unwrap(),
        tags(&[("Project", "test"), ("Team", "a")])
    );

    // Replace all; order and case as written.
    db.store
        .set_user_tags(
            "alice",
            &tags(&[("zeta", "1"), ("Alpha", "2"), ("mid", "3")]),
        )
        .await
        .unwrap();
    assert_eq!(
        db.store.user_tags("alice").await.unwrap(),
        tags(&[("zeta", "1"), ("Alpha", "2"), ("mid", "3")])
    );

    // A key is unique per user (IAM compares user tag keys without case): the later wins.
    db.store
        .set_user_tags("alice", &tags(&[("Project", "a"), ("project", "b")]))
        .await
        .unwrap();
    assert_eq!(
        db.store.user_tags("alice").await.unwrap(),
        tags(&[("project", "b")])
    );

    db.store.set_user_tags("alice", &[]).await.unwrap();
    assert_eq!(db.store.user_tags("alice").await.unwrap(), vec![]);

    assert_eq!(
        db.store.user_tags("nobody").await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        db.store.set_user_tags("nobody", &tags(&[("a", "b")])).await,
        Err(StoreError::NotFound)
    );

    // Deleting the user deletes its tags: a new user of the same name starts bare.
    db.store
        .set_user_tags("alice", &tags(&[("Project", "test")]))
        .await
        .unwrap();
    db.store.delete_user("alice").await.unwrap();
    assert_eq!(db.count("SELECT COUNT(*) FROM user_tags").await, 0);
    db.store.insert_user(&user("alice"), &[]).await.unwrap();
    assert_eq!(db.store.user_tags("alice").await.unwrap(), vec![]);
}

#[tokio::test]
async fn login_profiles_and_boundaries() {
    let db = db().await;
    db.store.insert_user(&user("alice"), &[]).await.unwrap();
    assert_eq!(db.store.login_profile("alice").await.unwrap(), None);
    assert_eq!(
        db.store
            .update_login_profile("alice", Some("h"), None)
            .await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        db.store.delete_login_profile("alice").await,
        Err(StoreError::NotFound)
    );
    // Stored under the user's name as written, whatever case it was given in.
    db.store
        .insert_login_profile(&profile("ALICE", "hash1", 10))
        .await
        .unwrap();
    assert_eq!(
        db.store.login_profile("Alice").await.unwrap(),
        Some(profile("alice", "hash1", 10))
    );
    // A second profile is refused and changes nothing.
    assert_eq!(
        db.store
            .insert_login_profile(&profile("alice", "hash2", 20))
            .await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(
        db.store.login_profile("alice").await.unwrap(),
        Some(profile("alice", "hash1", 10))
    );
    assert_eq!(
        db.store
            .insert_login_profile(&profile("nobody", "h", 1))
            .await,
        Err(StoreError::NotFound)
    );
    // Updates change only what they are given.
    db.store
        .update_login_profile("ALICE", None, Some(true))
        .await
        .unwrap();
    let got = db.store.login_profile("alice").await.unwrap().unwrap();
    assert_eq!(
        (got.password_hash.as_str(), got.password_reset_required),
        ("hash1", true)
    );
    db.store
        .update_login_profile("alice", Some("hash3"), None)
        .await
        .unwrap();
    let got = db.store.login_profile("alice").await.unwrap().unwrap();
    assert_eq!(
        (
            got.password_hash.as_str(),
            got.password_reset_required,
            got.created
        ),
        ("hash3", true, 10)
    );

    let arn = policy_arn("Boundary");
    assert_eq!(
        db.store.set_user_boundary("alice", Some(&arn)).await,
        Err(StoreError::NotFound),
        "no such policy"
    );
    db.store
        .insert_managed_policy(&policy("Boundary"), &version("v1", true, 1))
        .await
        .unwrap();
    db.store
        .set_user_boundary("alice", Some(&arn))
        .await
        .unwrap();
    assert_eq!(
        db.store
            .user("alice")
            .await
            .unwrap()
            .unwrap()
            .permissions_boundary,
        Some(arn.clone())
    );
    assert_eq!(
        db.store.set_user_boundary("nobody", Some(&arn)).await,
        Err(StoreError::NotFound)
    );

    // A policy in use as a boundary cannot be deleted (it would widen what alice may do).
    assert_eq!(
        db.store.delete_managed_policy(&arn).await,
        conflict(conflict::PERMISSIONS_BOUNDARY)
    );
    assert!(db.store.managed_policy(&arn).await.unwrap().is_some());

    db.store.set_user_boundary("alice", None).await.unwrap();
    assert_eq!(
        db.store
            .user("alice")
            .await
            .unwrap()
            .unwrap()
            .permissions_boundary,
        None
    );
    db.store.delete_managed_policy(&arn).await.unwrap();

    // A user created with a boundary that does not exist is refused whole.
    let mut bounded = user("bob");
    bounded.permissions_boundary = Some(arn);
    assert_eq!(
        db.store.insert_user(&bounded, &tags(&[("a", "b")])).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(db.store.user("bob").await.unwrap(), None);
    assert_eq!(db.count("SELECT COUNT(*) FROM user_tags").await, 0);

    // A user with a login profile is not deleted; without it, they are.
    assert_eq!(
        db.store.delete_user("alice").await,
        conflict(conflict::LOGIN_PROFILE)
    );
    assert!(db.store.login_profile("alice").await.unwrap().is_some());
    db.store.delete_login_profile("ALICE").await.unwrap();
    assert_eq!(db.store.login_profile("alice").await.unwrap(), None);
    db.store.delete_user("alice").await.unwrap();
    assert_eq!(db.count("SELECT COUNT(*) FROM login_profiles").await, 0);
}

// Groups

#[tokio::test]
async fn groups_and_members() {
    let db = db().await;
    for name in ["Ops", "admins", "Devs"] {
        db.store.insert_group(&group(name)).await.unwrap();
    }
    for name in ["bob", "Alice"] {
        db.store.insert_user(&user(name), &[]).await.unwrap();
    }
    assert_eq!(
        db.store.insert_group(&group("OPS")).await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(db.store.group("ops").await.unwrap().unwrap().name, "Ops");
    let names: Vec<String> = db
        .store
        .list_groups()
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.name)
        .collect();
    assert_eq!(names, ["admins", "Devs", "Ops"]);

    db.store.add_user_to_group("ops", "BOB").await.unwrap();
    db.store.add_user_to_group("Ops", "bob").await.unwrap(); // twice: no error
    db.store.add_user_to_group("Ops", "alice").await.unwrap();
    db.store.add_user_to_group("admins", "bob").await.unwrap();
    assert_eq!(
        db.store.add_user_to_group("Ops", "nobody").await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        db.store.add_user_to_group("nogroup", "bob").await,
        Err(StoreError::NotFound)
    );

    // Names as they were written, sorted.
    assert_eq!(
        db.store.group_members("Ops").await.unwrap(),
        ["Alice", "bob"]
    );
    let groups: Vec<String> = db
        .store
        .groups_for_user("bob")
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.name)
        .collect();
    assert_eq!(groups, ["admins", "Ops"]);
    assert_eq!(
        db.store.group_members("nogroup").await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        db.store.groups_for_user("nobody").await,
        Err(StoreError::NotFound)
    );

    db.store.remove_user_from_group("Ops", "bob").await.unwrap();
    assert_eq!(
        db.store.remove_user_from_group("Ops", "bob").await,
        Err(StoreError::NotFound)
    );
    assert_eq!(db.store.group_members("Ops").await.unwrap(), ["Alice"]);

    // A group with members, or a user in a group, is not deleted; memberships stay.
    assert_eq!(
        db.store.delete_group("ADMINS").await,
        conflict(conflict::GROUP_MEMBERSHIPS)
    );
    assert_eq!(
        db.store.delete_user("alice").await,
        conflict(conflict::GROUP_MEMBERSHIPS)
    );
    assert_eq!(db.store.group_members("admins").await.unwrap(), ["bob"]);
    assert_eq!(db.store.group_members("Ops").await.unwrap(), ["Alice"]);

    // Once the members are gone, both go.
    db.store
        .remove_user_from_group("admins", "bob")
        .await
        .unwrap();
    db.store.delete_group("admins").await.unwrap();
    assert_eq!(db.store.groups_for_user("bob").await.unwrap(), vec![]);
    db.store
        .remove_user_from_group("ops", "ALICE")
        .await
        .unwrap();
    db.store.delete_user("alice").await.unwrap();
    assert_eq!(db.count("SELECT COUNT(*) FROM group_members").await, 0);
    assert_eq!(
        db.store.delete_group("admins").await,
        Err(StoreError::NotFound)
    );
}

// Inline policies

#[tokio::test]
async fn inline_policies_put_replace_list_delete() {
    let db = db().await;
    db.store.insert_user(&user("alice"), &[]).await.unwrap();
    db.store.insert_group(&group("Ops")).await.unwrap();
    let alice = PolicyOwner::User("alice".to_owned());
    let ops = PolicyOwner::Group("ops".to_owned());
    let inline = |name: &str, doc: &str| InlinePolicy {
        name: name.to_owned(),
        document: doc.to_owned(),
    };

    db.store
        .put_inline_policy(&alice, &inline("Start", "d1"))
        .await
        .unwrap();
    db.store
        .put_inline_policy(&alice, &inline("End", "d2"))
        .await
        .unwrap();
    db.store
        .put_inline_policy(&alice, &inline("Start", "d3"))
        .await
        .unwrap();
    db.store
        .put_inline_policy(&ops, &inline("Start", "g1"))
        .await
        .unwrap();
    assert_eq!(
        db.store.list_inline_policies(&alice).await.unwrap(),
        vec![inline("End", "d2"), inline("Start", "d3")]
    );
    assert_eq!(
        db.store.list_inline_policies(&ops).await.unwrap(),
        vec![inline("Start", "g1")]
    );

    let nobody = PolicyOwner::User("nobody".to_owned());
    assert_eq!(
        db.store.put_inline_policy(&nobody, &inline("x", "y")).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        db.store.list_inline_policies(&nobody).await,
        Err(StoreError::NotFound)
    );

    db.store.delete_inline_policy(&alice, "end").await.unwrap();
    assert_eq!(
        db.store.delete_inline_policy(&alice, "End").await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        db.store.list_inline_policies(&alice).await.unwrap(),
        vec![inline("Start", "d3")]
    );

    // Owners of inline policies are not deleted until the policies are.
    assert_eq!(
        db.store.delete_user("alice").await,
        conflict(conflict::INLINE_POLICIES)
    );
    assert_eq!(
        db.store.delete_group("Ops").await,
        conflict(conflict::INLINE_POLICIES)
    );
    db.store
        .delete_inline_policy(&alice, "start")
        .await
        .unwrap();
    db.store.delete_inline_policy(&ops, "Start").await.unwrap();
    db.store.delete_user("alice").await.unwrap();
    db.store.delete_group("Ops").await.unwrap();
    assert_eq!(
        db.count("SELECT COUNT(*) FROM user_inline_policies").await,
        0
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM group_inline_policies").await,
        0
    );
}

// Managed policies

#[tokio::test]
async fn managed_policy_round_trip() {
    let db = db().await;
    let p = policy("SessionStart");
    db.store
        .insert_managed_policy(&p, &version("v1", true, 1_700_000_000))
        .await
        .unwrap();
    assert_eq!(
        db.store.managed_policy(&p.arn).await.unwrap(),
        Some(p.clone())
    );
    assert_eq!(
        db.store.policy_versions(&p.arn).await.unwrap(),
        vec![version("v1", true, 1_700_000_000)]
    );

    // Same name in another case, same ARN, or same id: refused, and nothing is left.
    let mut other_case = policy("sessionstart");
    other_case.policy_id = "ANPAOTHER".to_owned();
    assert_eq!(
        db.store
            .insert_managed_policy(&other_case, &version("v1", true, 1))
            .await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(
        db.store.managed_policy(&other_case.arn).await.unwrap(),
        None
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM policy_versions").await, 1);

    db.store
        .insert_managed_policy(&policy("Alpha"), &version("v1", true, 1))
        .await
        .unwrap();
    let names: Vec<String> = db
        .store
        .list_managed_policies()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["Alpha", "SessionStart"]);

    assert_eq!(
        db.store.policy_versions(&policy_arn("Nope")).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        db.store.delete_managed_policy(&policy_arn("Nope")).await,
        Err(StoreError::NotFound)
    );
}

#[tokio::test]
async fn add_policy_version_numbers_and_flips_the_default() {
    const T: i64 = 1_700_000_000;
    let db = db().await;
    let p = policy("P");
    db.store
        .insert_managed_policy(&p, &version("v1", true, T))
        .await
        .unwrap();
    let defaults = |db: &Db| {
        let store = db.store.clone();
        let arn = p.arn.clone();
        async move {
            store
                .policy_versions(&arn)
                .await
                .unwrap()
                .into_iter()
                .map(|v| (v.version_id, v.is_default))
                .collect::<Vec<_>>()
        }
    };

    // Not the default: v1 stays; `updated` still moves. The store names the version.
    let v2 = db
        .store
        .add_policy_version(&p.arn, &document("b"), false, T + 200, NO_LIMIT)
        .await
        .unwrap();
    assert_eq!(
        v2,
        PolicyVersion {
            version_id: "v2".to_owned(),
            document: document("b"),
            is_default: false,
            created: T + 200,
        }
    );
    let got = db.store.managed_policy(&p.arn).await.unwrap().unwrap();
    assert_eq!(got.default_version, "v1");
    assert_eq!(got.updated, T + 200);

    // The default: v3 becomes it and v1 stops being it.
    let v3 = db
        .store
        .add_policy_version(&p.arn, &document("c"), true, T + 300, NO_LIMIT)
        .await
        .unwrap();
    assert_eq!((v3.version_id.as_str(), v3.is_default), ("v3", true));
    let got = db.store.managed_policy(&p.arn).await.unwrap().unwrap();
    assert_eq!(got.default_version, "v3");
    assert_eq!(got.updated, T + 300);
    assert_eq!(got.created, T);
    assert_eq!(
        defaults(&db).await,
        [
            ("v1".to_owned(), false),
            ("v2".to_owned(), false),
            ("v3".to_owned(), true)
        ]
    );

    // At the limit: refused whole, the default unchanged.
    assert_eq!(
        db.store
            .add_policy_version(&p.arn, &document("d"), true, T + 400, 3)
            .await,
        Err(StoreError::LimitExceeded)
    );
    let got = db.store.managed_policy(&p.arn).await.unwrap().unwrap();
    assert_eq!((got.default_version.as_str(), got.updated), ("v3", T + 300));
    assert_eq!(db.store.policy_versions(&p.arn).await.unwrap().len(), 3);
    assert_eq!(
        db.store
            .add_policy_version(&policy_arn("Nope"), &document("x"), true, 1, NO_LIMIT)
            .await,
        Err(StoreError::NotFound)
    );

    // Setting the default: only existing versions; one default at a time.
    db.store
        .set_default_policy_version(&p.arn, "v1")
        .await
        .unwrap();
    assert_eq!(
        defaults(&db).await,
        [
            ("v1".to_owned(), true),
            ("v2".to_owned(), false),
            ("v3".to_owned(), false)
        ]
    );
    assert_eq!(
        db.store.set_default_policy_version(&p.arn, "v9").await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        db.store
            .set_default_policy_version(&policy_arn("Nope"), "v1")
            .await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        db.store
            .managed_policy(&p.arn)
            .await
            .unwrap()
            .unwrap()
            .default_version,
        "v1"
    );

    // Deleting: never the default; a deleted id is not handed out again.
    assert_eq!(
        db.store.delete_policy_version(&p.arn, "v1").await,
        conflict(conflict::DEFAULT_VERSION)
    );
    assert_eq!(
        db.store.delete_policy_version(&p.arn, "v9").await,
        Err(StoreError::NotFound)
    );
    db.store.delete_policy_version(&p.arn, "v3").await.unwrap();
    assert_eq!(
        db.store.delete_policy_version(&p.arn, "v3").await,
        Err(StoreError::NotFound)
    );
    let v4 = db
        .store
        .add_policy_version(&p.arn, &document("e"), false, T + 500, NO_LIMIT)
        .await
        .unwrap();
    assert_eq!(v4.version_id, "v4");

    // Creation order, not text order (`v10` after `v9`).
    for n in 5..=11 {
        db.store
            .add_policy_version(&p.arn, &document(&n.to_string()), true, T + 1000, NO_LIMIT)
            .await
            .unwrap();
    }
    let ids: Vec<String> = defaults(&db).await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(
        ids,
        ["v1", "v2", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11"]
    );
    assert_eq!(
        db.store
            .managed_policy(&p.arn)
            .await
            .unwrap()
            .unwrap()
            .default_version,
        "v11"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM policy_versions WHERE is_default = 1")
            .await,
        1
    );

    // The policy goes only with its default version left.
    assert_eq!(
        db.store.delete_managed_policy(&p.arn).await,
        conflict(conflict::POLICY_VERSIONS)
    );
    assert_eq!(db.store.policy_versions(&p.arn).await.unwrap().len(), 10);
    for n in ["v1", "v2", "v4", "v5", "v6", "v7", "v8", "v9", "v10"] {
        db.store.delete_policy_version(&p.arn, n).await.unwrap();
    }
    db.store.delete_managed_policy(&p.arn).await.unwrap();
    assert_eq!(db.store.managed_policy(&p.arn).await.unwrap(), None);
    assert_eq!(db.count("SELECT COUNT(*) FROM policy_versions").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_limits_hold() {
    let db = db().await;
    db.store.insert_user(&user("alice"), &[]).await.unwrap();
    let p = policy("P");
    db.store
        .insert_managed_policy(&p, &version("v1", true, 1))
        .await
        .unwrap();
    let store = Arc::new(db.store.clone());
    let tasks: Vec<_> = (0..10)
        .map(|n| {
            let store = Arc::clone(&store);
            let arn = p.arn.clone();
            tokio::spawn(async move {
                let k = key(
                    &format!("AKIACONCURRENT{n:02}"),
                    KeyOwner::User("alice".to_owned()),
                    n,
                );
                let key_result = store.insert_access_key(&k, 2).await;
                let version_result = store
                    .add_policy_version(&arn, &document("x"), n % 2 == 0, n, 5)
                    .await
                    .map(|_| ());
                (key_result, version_result)
            })
        })
        .collect();
    let (mut keys, mut versions) = (0, 0);
    for task in tasks {
        let (k, v) = task.await.unwrap();
        match k {
            Ok(()) => keys += 1,
            Err(StoreError::LimitExceeded) => {}
            Err(e) => panic!("unexpected {e}"),
        }
        match v {
            Ok(()) => versions += 1,
            Err(StoreError::LimitExceeded) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!((keys, versions), (2, 4));
    assert_eq!(
        db.store
            .list_access_keys(&KeyOwner::User("alice".to_owned()))
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(db.store.policy_versions(&p.arn).await.unwrap().len(), 5);
}

#[tokio::test]
async fn attach_and_detach_count() {
    let db = db().await;
    let arn = policy_arn("ReadOnly");
    db.store
        .insert_managed_policy(&policy("ReadOnly"), &version("v1", true, 1))
        .await
        .unwrap();
    db.store
        .insert_managed_policy(&policy("Other"), &version("v1", true, 1))
        .await
        .unwrap();
    db.store.insert_user(&user("alice"), &[]).await.unwrap();
    db.store.insert_user(&user("bob"), &[]).await.unwrap();
    db.store.insert_group(&group("Ops")).await.unwrap();
    let alice = PolicyOwner::User("alice".to_owned());
    let bob = PolicyOwner::User("bob".to_owned());
    let ops = PolicyOwner::Group("Ops".to_owned());
    let count = |db: &Db| {
        let store = db.store.clone();
        let arn = arn.clone();
        async move {
            store
                .managed_policy(&arn)
                .await
                .unwrap()
                .unwrap()
                .attachment_count
        }
    };

    assert_eq!(count(&db).await, 0);
    db.store.attach_policy(&alice, &arn).await.unwrap();
    assert_eq!(count(&db).await, 1);
    db.store.attach_policy(&alice, &arn).await.unwrap(); // twice: no double count
    assert_eq!(count(&db).await, 1);
    db.store.attach_policy(&bob, &arn).await.unwrap();
    db.store.attach_policy(&ops, &arn).await.unwrap();
    db.store
        .attach_policy(&alice, &policy_arn("Other"))
        .await
        .unwrap();
    assert_eq!(count(&db).await, 3);
    assert_eq!(
        db.store.attached_policies(&alice).await.unwrap(),
        [policy_arn("Other"), arn.clone()]
    );
    assert_eq!(
        db.store.attached_policies(&ops).await.unwrap(),
        vec![arn.clone()]
    );

    assert_eq!(
        db.store.attach_policy(&alice, &policy_arn("Nope")).await,
        Err(StoreError::NotFound)
    );
    let nobody = PolicyOwner::Group("nobody".to_owned());
    assert_eq!(
        db.store.attach_policy(&nobody, &arn).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        db.store.attached_policies(&nobody).await,
        Err(StoreError::NotFound)
    );

    db.store.detach_policy(&bob, &arn).await.unwrap();
    assert_eq!(count(&db).await, 2);
    assert_eq!(
        db.store.detach_policy(&bob, &arn).await,
        Err(StoreError::NotFound),
        "not attached"
    );
    assert_eq!(count(&db).await, 2);

    // Owners with attached policies are not deleted, nor are attached policies.
    assert_eq!(
        db.store.delete_group("ops").await,
        conflict(conflict::ATTACHED_POLICIES)
    );
    assert_eq!(
        db.store.delete_user("alice").await,
        conflict(conflict::ATTACHED_POLICIES)
    );
    assert_eq!(
        db.store.delete_managed_policy(&arn).await,
        conflict(conflict::POLICY_ATTACHMENTS)
    );
    assert_eq!(count(&db).await, 2);

    // Attached only to a group: still refused.
    db.store.detach_policy(&alice, &arn).await.unwrap();
    assert_eq!(
        db.store.delete_managed_policy(&arn).await,
        conflict(conflict::POLICY_ATTACHMENTS)
    );
    db.store.detach_policy(&ops, &arn).await.unwrap();
    db.store.delete_group("Ops").await.unwrap();
    db.store
        .detach_policy(&alice, &policy_arn("Other"))
        .await
        .unwrap();
    db.store.delete_user("alice").await.unwrap();
    assert_eq!(count(&db).await, 0);
    db.store.delete_managed_policy(&arn).await.unwrap();
    assert_eq!(db.store.managed_policy(&arn).await.unwrap(), None);
}

// Activations and nodes

#[tokio::test]
async fn activations_round_trip() {
    let db = db().await;
    let mut second = activation("act-2", 5);
    second.created = 1_600_000_000;
    second.tags = vec![];
    db.store
        .insert_activation(&activation("act-1", 2))
        .await
        .unwrap();
    db.store.insert_activation(&second).await.unwrap();
    assert_eq!(
        db.store.activation("act-1").await.unwrap(),
        Some(activation("act-1", 2))
    );
    assert_eq!(db.store.activation("nope").await.unwrap(), None);
    assert_eq!(
        db.store.insert_activation(&activation("act-1", 9)).await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(
        db.store.list_activations().await.unwrap(),
        vec![second, activation("act-1", 2)],
        "by creation time"
    );
    db.store.delete_activation("act-1").await.unwrap();
    assert_eq!(
        db.store.delete_activation("act-1").await,
        Err(StoreError::NotFound)
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM activation_tags").await, 0);
}

#[tokio::test]
async fn register_node_counts_and_stops_at_the_limit() {
    let db = db().await;
    db.store
        .insert_activation(&activation("act", 2))
        .await
        .unwrap();
    let t = tags(&[("Project", "test"), ("project", "other")]);
    db.store
        .register_node("act", &node("mi-00000000000000001", 10), &t)
        .await
        .unwrap();
    assert_eq!(
        db.store
            .activation("act")
            .await
            .unwrap()
            .unwrap()
            .registrations_count,
        1
    );

    // A node id already registered: refused, and the registration is not counted.
    assert_eq!(
        db.store
            .register_node("act", &node("mi-00000000000000001", 11), &[])
            .await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(
        db.store
            .activation("act")
            .await
            .unwrap()
            .unwrap()
            .registrations_count,
        1
    );

    db.store
        .register_node("act", &node("mi-00000000000000002", 12), &[])
        .await
        .unwrap();
    // At the limit: refused, no node, no count change.
    assert_eq!(
        db.store
            .register_node("act", &node("mi-00000000000000003", 13), &t)
            .await,
        Err(StoreError::LimitExceeded)
    );
    assert_eq!(db.store.node("mi-00000000000000003").await.unwrap(), None);
    assert_eq!(db.count("SELECT COUNT(*) FROM nodes").await, 2);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM node_tags WHERE node_id = 'mi-00000000000000003'")
            .await,
        0
    );
    assert_eq!(
        db.store
            .activation("act")
            .await
            .unwrap()
            .unwrap()
            .registrations_count,
        2
    );
    assert_eq!(
        db.store
            .register_node("nope", &node("mi-00000000000000004", 14), &[])
            .await,
        Err(StoreError::NotFound)
    );

    // The node as registered, naming its activation; SSM tag keys keep case apart.
    let mut expected = node("mi-00000000000000001", 10);
    expected.activation_id = Some("act".to_owned());
    assert_eq!(
        db.store.node("mi-00000000000000001").await.unwrap(),
        Some(expected)
    );
    assert_eq!(db.store.node_tags("mi-00000000000000001").await.unwrap(), t);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registrations_never_pass_the_limit() {
    let db = db().await;
    db.store
        .insert_activation(&activation("act", 3))
        .await
        .unwrap();
    let store = Arc::new(db.store.clone());
    let tasks: Vec<_> = (0..12)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .register_node("act", &node(&format!("mi-{n:017}"), n), &[])
                    .await
            })
        })
        .collect();
    let mut ok = 0;
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::LimitExceeded) => refused += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!((ok, refused), (3, 9));
    assert_eq!(db.store.list_nodes().await.unwrap().len(), 3);
    assert_eq!(
        db.store
            .activation("act")
            .await
            .unwrap()
            .unwrap()
            .registrations_count,
        3
    );
}

#[tokio::test]
async fn nodes_tags_heartbeats_and_deletion() {
    let db = db().await;
    db.store
        .insert_activation(&activation("act", 10))
        .await
        .unwrap();
    db.store
        .register_node("act", &node("mi-00000000000000002", 20), &[])
        .await
        .unwrap();
    db.store
        .register_node(
            "act",
            &node("i-0885b2e35926f1fb3", 10),
            &tags(&[("Project", "test")]),
        )
        .await
        .unwrap();
    let ids: Vec<String> = db
        .store
        .list_nodes()
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(
        ids,
        ["i-0885b2e35926f1fb3", "mi-00000000000000002"],
        "by registration"
    );
    assert_eq!(
        db.store
            .node("i-0885b2e35926f1fb3")
            .await
            .unwrap()
            .unwrap()
            .kind,
        NodeKind::Ec2Instance
    );

    db.store
        .set_node_tags("i-0885b2e35926f1fb3", &tags(&[("b", "2"), ("a", "1")]))
        .await
        .unwrap();
    assert_eq!(
        db.store.node_tags("i-0885b2e35926f1fb3").await.unwrap(),
        tags(&[("b", "2"), ("a", "1")])
    );
    assert_eq!(
        db.store.node_tags("i-nope").await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        db.store.set_node_tags("i-nope", &[]).await,
        Err(StoreError::NotFound)
    );

    db.store
        .touch_node("mi-00000000000000002", 99)
        .await
        .unwrap();
    assert_eq!(
        db.store
            .node("mi-00000000000000002")
            .await
            .unwrap()
            .unwrap()
            .last_ping,
        Some(99)
    );
    assert_eq!(
        db.store.touch_node("mi-nope", 1).await,
        Err(StoreError::NotFound)
    );

    // A session on the node, then the node goes: its tags go, its history stays.
    let s = session(
        "alice-0123456789abcdef0",
        "i-0885b2e35926f1fb3",
        SessionStatus::Terminated,
        5,
    );
    db.store.insert_session(&s).await.unwrap();
    db.store.delete_node("i-0885b2e35926f1fb3").await.unwrap();
    assert_eq!(db.store.node("i-0885b2e35926f1fb3").await.unwrap(), None);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM node_tags WHERE node_id = 'i-0885b2e35926f1fb3'")
            .await,
        0
    );
    assert_eq!(db.store.session(&s.id).await.unwrap(), Some(s));
    assert_eq!(
        db.store.delete_node("i-0885b2e35926f1fb3").await,
        Err(StoreError::NotFound)
    );

    // Deleting the activation leaves its nodes registered.
    db.store.delete_activation("act").await.unwrap();
    assert_eq!(
        db.store
            .node("mi-00000000000000002")
            .await
            .unwrap()
            .unwrap()
            .activation_id
            .as_deref(),
        Some("act")
    );
}

// Sessions

#[tokio::test]
async fn session_filters_run_in_sql() {
    let db = db().await;
    let web = "i-0000000000000000a";
    let db_node = "i-0000000000000000b";
    let all = [
        session("alice-01", web, SessionStatus::Connected, 100),
        session("alice-02", web, SessionStatus::Terminated, 200),
        session("bob-03", db_node, SessionStatus::Disconnected, 300),
        session("bob-04", db_node, SessionStatus::Failed, 400),
        session("alice-05", db_node, SessionStatus::Terminating, 500),
        session("bob-06", web, SessionStatus::Connecting, 600),
    ];
    for s in &all {
        db.store.insert_session(s).await.unwrap();
    }
    assert_eq!(
        db.store.insert_session(&all[0]).await,
        Err(StoreError::AlreadyExists)
    );
    let ids = |filter: SessionFilter| {
        let store = db.store.clone();
        async move {
            store
                .list_sessions(&filter)
                .await
                .unwrap()
                .into_iter()
                .map(|s| s.id)
                .collect::<Vec<_>>()
        }
    };
    let active = SessionFilter {
        active: true,
        ..SessionFilter::default()
    };
    let history = SessionFilter::default();

    assert_eq!(
        ids(active.clone()).await,
        ["bob-06", "alice-05", "bob-03", "alice-01"]
    );
    assert_eq!(ids(history.clone()).await, ["bob-04", "alice-02"]);
    assert_eq!(
        ids(SessionFilter {
            target: Some(web.to_owned()),
            ..active.clone()
        })
        .await,
        ["bob-06", "alice-01"]
    );
    assert_eq!(
        ids(SessionFilter {
            owner: Some(format!("arn:aws:iam::{ACCOUNT}:user/alice")),
            ..active.clone()
        })
        .await,
        ["alice-05", "alice-01"]
    );
    assert_eq!(
        ids(SessionFilter {
            status: Some(SessionStatus::Disconnected),
            ..active.clone()
        })
        .await,
        ["bob-03"]
    );
    assert_eq!(
        ids(SessionFilter {
            status: Some(SessionStatus::Connected),
            ..history.clone()
        })
        .await,
        Vec::<String>::new(),
        "an active status asked of the history"
    );
    assert_eq!(
        ids(SessionFilter {
            session_id: Some("alice-02".to_owned()),
            ..history.clone()
        })
        .await,
        ["alice-02"]
    );
    assert_eq!(
        ids(SessionFilter {
            started_after: Some(300),
            started_before: Some(600),
            ..active.clone()
        })
        .await,
        ["alice-05", "bob-03"],
        "after is inclusive, before exclusive"
    );

    // Ending a session moves it to the history.
    db.store
        .set_session_status("alice-01", SessionStatus::Terminated, Some(700))
        .await
        .unwrap();
    assert_eq!(
        ids(history.clone()).await,
        ["bob-04", "alice-02", "alice-01"]
    );
    let ended = db.store.session("alice-01").await.unwrap().unwrap();
    assert_eq!(
        (ended.status, ended.ended),
        (SessionStatus::Terminated, Some(700))
    );
    assert_eq!(
        db.store
            .set_session_status("nope", SessionStatus::Failed, None)
            .await,
        Err(StoreError::NotFound)
    );
    assert_eq!(db.store.session("nope").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_writers_all_land() {
    let db = db().await;
    let store = Arc::new(db.store.clone());
    let tasks: Vec<_> = (0..50)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let s = session(
                    &format!("alice-{n:017x}"),
                    "i-0885b2e35926f1fb3",
                    SessionStatus::Connected,
                    n,
                );
                store.insert_session(&s).await?;
                store.append_audit(&audit(n)).await?;
                // Reads beside the writes.
                store
                    .session(&s.id)
                    .await
                    .map(|found| assert_eq!(found, Some(s)))
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let active = SessionFilter {
        active: true,
        ..SessionFilter::default()
    };
    let sessions = db.store.list_sessions(&active).await.unwrap();
    assert_eq!(sessions.len(), 50);
    assert!(sessions.windows(2).all(|w| w[0].started > w[1].started));
    assert_eq!(db.store.audit_tail(1000).await.unwrap().len(), 50);
}

// Audit

#[tokio::test]
async fn audit_tail_is_the_last_events_oldest_first() {
    let db = db().await;
    assert_eq!(db.store.audit_tail(10).await.unwrap(), vec![]);
    // Same time on several events: the order of appending still decides.
    for n in 0..10 {
        let mut event = audit(n);
        event.time = 1_700_000_000;
        db.store.append_audit(&event).await.unwrap();
    }
    let tail: Vec<String> = db
        .store
        .audit_tail(3)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.request_id)
        .collect();
    assert_eq!(tail, ["req-7", "req-8", "req-9"]);
    let all = db.store.audit_tail(100).await.unwrap();
    assert_eq!(all.len(), 10);
    assert_eq!(all[0].request_id, "req-0");
    let mut first = audit(0);
    first.time = 1_700_000_000;
    assert_eq!(all[0], first);
    let mut second = audit(1);
    second.time = 1_700_000_000;
    assert_eq!(all[1], second, "the optional fields round-trip");
    assert_eq!(db.store.audit_tail(0).await.unwrap(), vec![]);
}

// Restart

/// Everything written before a restart is there after it, read through every getter.
#[tokio::test]
async fn data_survives_closing_and_reopening() {
    let db = db().await;
    let account = Account {
        id: ACCOUNT.to_owned(),
        region: "ap-northeast-1".to_owned(),
        created: 1_700_000_000,
    };
    let root = key("AKIAROOT", KeyOwner::Root, 1);
    db.store.create_account(&account, &root).await.unwrap();
    let user_tags = tags(&[("Project", "test")]);
    db.store
        .insert_user(&user("TestUserA"), &user_tags)
        .await
        .unwrap();
    let alice_key = key("AKIAUSER", KeyOwner::User("TestUserA".to_owned()), 2);
    db.store.insert_access_key(&alice_key, 2).await.unwrap();
    db.store
        .insert_login_profile(&profile("TestUserA", "pw", 7))
        .await
        .unwrap();
    db.store.insert_group(&group("Ops")).await.unwrap();
    db.store
        .add_user_to_group("Ops", "TestUserA")
        .await
        .unwrap();
    let owner = PolicyOwner::User("TestUserA".to_owned());
    let inline = InlinePolicy {
        name: "Start".to_owned(),
        document: "{}".to_owned(),
    };
    db.store.put_inline_policy(&owner, &inline).await.unwrap();
    let p = policy("ReadOnlyAccess");
    db.store
        .insert_managed_policy(&p, &version("v1", true, 1))
        .await
        .unwrap();
    db.store
        .add_policy_version(&p.arn, &document("v2"), true, 1_800_000_000, NO_LIMIT)
        .await
        .unwrap();
    db.store.attach_policy(&owner, &p.arn).await.unwrap();
    db.store
        .insert_activation(&activation("act", 1))
        .await
        .unwrap();
    let node_tags = tags(&[("Project", "test")]);
    db.store
        .register_node("act", &node("i-0885b2e35926f1fb3", 1), &node_tags)
        .await
        .unwrap();
    db.store
        .touch_node("i-0885b2e35926f1fb3", 42)
        .await
        .unwrap();
    let s = session(
        "TestUserA-0123456789abcdef0",
        "i-0885b2e35926f1fb3",
        SessionStatus::Connected,
        1,
    );
    db.store.insert_session(&s).await.unwrap();
    for n in 0..3 {
        db.store.append_audit(&audit(n)).await.unwrap();
    }

    let check = |db: &Db| {
        let store = db.store.clone();
        let (account, root, alice_key, user_tags, inline, node_tags, s, owner, p) = (
            account.clone(),
            root.clone(),
            alice_key.clone(),
            user_tags.clone(),
            inline.clone(),
            node_tags.clone(),
            s.clone(),
            owner.clone(),
            p.clone(),
        );
        async move {
            assert_eq!(store.account().await.unwrap(), Some(account));
            assert_eq!(store.access_key("AKIAROOT").await.unwrap(), Some(root));
            assert_eq!(store.access_key("AKIAUSER").await.unwrap(), Some(alice_key));
            assert_eq!(
                store.user("TestUserA").await.unwrap(),
                Some(user("TestUserA"))
            );
            assert_eq!(store.user_tags("TestUserA").await.unwrap(), user_tags);
            assert_eq!(
                store.login_profile("TestUserA").await.unwrap(),
                Some(profile("TestUserA", "pw", 7))
            );
            assert_eq!(store.group_members("Ops").await.unwrap(), ["TestUserA"]);
            assert_eq!(
                store.list_inline_policies(&owner).await.unwrap(),
                vec![inline]
            );
            assert_eq!(
                store.attached_policies(&owner).await.unwrap(),
                vec![p.arn.clone()]
            );
            let got = store.managed_policy(&p.arn).await.unwrap().unwrap();
            assert_eq!(
                (
                    got.default_version.as_str(),
                    got.attachment_count,
                    got.updated
                ),
                ("v2", 1, 1_800_000_000)
            );
            assert_eq!(store.policy_versions(&p.arn).await.unwrap().len(), 2);
            let act = store.activation("act").await.unwrap().unwrap();
            assert_eq!(act.registrations_count, 1);
            assert_eq!(act.tags, activation("act", 1).tags);
            let n = store.node("i-0885b2e35926f1fb3").await.unwrap().unwrap();
            assert_eq!(n.last_ping, Some(42));
            assert_eq!(n.credential_hash, "cred-i-0885b2e35926f1fb3");
            assert_eq!(
                store.node_tags("i-0885b2e35926f1fb3").await.unwrap(),
                node_tags
            );
            assert_eq!(store.session(&s.id).await.unwrap(), Some(s));
            assert_eq!(store.audit_tail(10).await.unwrap().len(), 3);
        }
    };
    check(&db).await;
    let db = db.reopen().await;
    check(&db).await;

    // The limit holds across restarts too.
    assert_eq!(
        db.store
            .register_node("act", &node("mi-00000000000000009", 2), &[])
            .await,
        Err(StoreError::LimitExceeded)
    );

    // And without a clean close (the process dies): committed writes are there.
    db.store.append_audit(&audit(3)).await.unwrap();
    let Db { dir, store } = db;
    drop(store);
    let store = SqliteStore::open(&db_path(dir.path())).await.unwrap();
    assert_eq!(store.audit_tail(10).await.unwrap().len(), 4);
    store.close().await;
}
