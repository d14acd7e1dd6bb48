#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

//! IAM operations through the service, on the real SQLite store (in memory): groups,
//! managed policy versions, login profiles and the policy simulator, with the errors IAM
//! gives and the state a refused call leaves (none).

use std::sync::Arc;

use portcullis_core::model::{
    Activation, KeyOwner, Node, NodeKind, SimulationContextEntry, SimulationDecision,
    SimulationRequest, SimulationResult, Tag,
};
use portcullis_core::{Caller, Error, Identity, Service};
use portcullis_store::SqliteStore;

const ACCOUNT: &str = "123456789012";
const REGION: &str = "ap-northeast-1";
const TEST_NODE: &str = "i-0885b2e35926f1fb3";
const PROD_NODE: &str = "i-0123456789abcdef0";

struct World {
    svc: Service,
    root: Arc<Identity>,
}

impl World {
    async fn new() -> World {
        let store = Arc::new(SqliteStore::open_in_memory().await.unwrap());
        let boot = Service::start(store, Some(ACCOUNT), REGION).await.unwrap();
        let key = boot.new_root_key.unwrap();
        let root = boot.service.authenticate(&key.id).await.unwrap().unwrap();
        World {
            svc: boot.service,
            root,
        }
    }

    fn root(&self) -> Caller {
        Caller::new(self.root.clone(), "AKIAROOT", "127.0.0.1", false)
    }

    /// A user with an access key; returns the key id, to authenticate as them.
    async fn user(&self, name: &str, tags: &[Tag]) -> String {
        self.svc
            .create_user(&self.root(), name, None, tags, None)
            .await
            .unwrap();
        self.svc
            .create_access_key(&self.root(), Some(name))
            .await
            .unwrap()
            .id
    }

    /// A caller for the key, with the identity as it is now (after any IAM change).
    async fn caller(&self, key_id: &str) -> Caller {
        let identity = self.svc.authenticate(key_id).await.unwrap().unwrap();
        Caller::new(identity, key_id, "127.0.0.1", false)
    }

    /// Whether the key may start a session on the node, asked of the authorizer.
    async fn may_start_session(&self, key_id: &str, node: &str) -> bool {
        let caller = self.caller(key_id).await;
        self.svc
            .authorize(
                &caller,
                "ssm:StartSession",
                &self.svc.node_arn(node),
                &self.svc.store().node_tags(node).await.unwrap_or_default(),
                &[],
            )
            .is_ok()
    }

    async fn node(&self, id: &str, project: &str) {
        let store = self.svc.store();
        let activation = Activation {
            id: format!("act-{id}"),
            code_hash: String::new(),
            description: String::new(),
            default_instance_name: String::new(),
            iam_role: "SSMServiceRole".to_owned(),
            registration_limit: 1,
            registrations_count: 0,
            expiration: i64::MAX,
            created: 1,
            tags: Vec::new(),
        };
        store.insert_activation(&activation).await.unwrap();
        let node = Node {
            id: id.to_owned(),
            kind: NodeKind::Ec2Instance,
            name: id.to_owned(),
            platform: "Linux".to_owned(),
            agent_version: "0.1.0".to_owned(),
            ip_address: "10.0.0.1".to_owned(),
            activation_id: None,
            registered: 1,
            last_ping: None,
            credential_hash: String::new(),
        };
        store
            .register_node(&activation.id, &node, &[Tag::new("Project", project)])
            .await
            .unwrap();
    }
}

fn assert_error(result: Result<impl std::fmt::Debug, Error>, code: &str, message: &str) {
    let e = result.expect_err("the call should have been refused");
    assert_eq!((e.code.as_str(), e.message.as_str()), (code, message));
}

const START_ANYWHERE: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:StartSession","Resource":"*"}]}"#;

const ABAC: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "SameProject",
      "Effect": "Allow",
      "Action": "ssm:StartSession",
      "Resource": "arn:aws:ec2:*:*:instance/*",
      "Condition": {"StringEquals": {"aws:ResourceTag/Project": "${aws:PrincipalTag/Project}"}}
    }
  ]
}"#;

// Groups

#[tokio::test]
async fn group_lifecycle_and_delete_conflicts() {
    let w = World::new().await;
    let root = w.root();
    let svc = &w.svc;
    let group = svc
        .create_group(&root, "Ops", Some("/teams/"))
        .await
        .unwrap();
    assert_eq!(group.arn, format!("arn:aws:iam::{ACCOUNT}:group/teams/Ops"));
    assert!(group.group_id.starts_with("AGPA"));
    assert_error(
        svc.create_group(&root, "ops", None).await,
        "EntityAlreadyExists",
        "Group with name ops already exists.",
    );
    w.user("alice", &[]).await;
    svc.add_user_to_group(&root, "ops", "ALICE").await.unwrap();
    svc.add_user_to_group(&root, "Ops", "alice").await.unwrap(); // again: no change
    let (got, members) = svc.get_group(&root, "OPS").await.unwrap();
    assert_eq!(got, group);
    assert_eq!(
        members.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
        ["alice"]
    );
    assert_error(
        svc.add_user_to_group(&root, "Ops", "nobody").await,
        "NoSuchEntity",
        "The user with name nobody cannot be found.",
    );
    assert_error(
        svc.add_user_to_group(&root, "Nope", "alice").await,
        "NoSuchEntity",
        "The group with name Nope cannot be found.",
    );

    // Members, inline policies and attached policies each keep the group, in that order.
    assert_error(
        svc.delete_group(&root, "Ops").await,
        "DeleteConflict",
        "Cannot delete entity, must remove users from group first.",
    );
    assert_error(
        svc.delete_user(&root, "alice").await,
        "DeleteConflict",
        "Cannot delete entity, must delete access keys first.",
    );
    assert_eq!(svc.get_group(&root, "Ops").await.unwrap().1.len(), 1);
    svc.remove_user_from_group(&root, "Ops", "alice")
        .await
        .unwrap();
    assert_error(
        svc.remove_user_from_group(&root, "Ops", "alice").await,
        "NoSuchEntity",
        "The user with name alice cannot be found.",
    );
    svc.put_group_policy(&root, "Ops", "Start", START_ANYWHERE)
        .await
        .unwrap();
    assert_error(
        svc.delete_group(&root, "Ops").await,
        "DeleteConflict",
        "Cannot delete entity, must delete policies first.",
    );
    svc.delete_group_policy(&root, "Ops", "start")
        .await
        .unwrap();
    let read_only = "arn:aws:iam::aws:policy/ReadOnlyAccess";
    svc.attach_group_policy(&root, "Ops", read_only)
        .await
        .unwrap();
    assert_error(
        svc.delete_group(&root, "Ops").await,
        "DeleteConflict",
        "Cannot delete entity, must detach all policies first.",
    );
    assert_eq!(
        svc.list_attached_group_policies(&root, "Ops", None)
            .await
            .unwrap(),
        [("ReadOnlyAccess".to_owned(), read_only.to_owned())]
    );
    assert!(svc
        .list_attached_group_policies(&root, "Ops", Some("/service-role/"))
        .await
        .unwrap()
        .is_empty());
    svc.detach_group_policy(&root, "Ops", read_only)
        .await
        .unwrap();
    assert_error(
        svc.detach_group_policy(&root, "Ops", read_only).await,
        "NoSuchEntity",
        &format!("Policy {read_only} was not found."),
    );
    svc.delete_group(&root, "ops").await.unwrap();
    assert_error(
        svc.get_group(&root, "Ops").await,
        "NoSuchEntity",
        "The group with name Ops cannot be found.",
    );
    assert!(svc.list_groups(&root, None).await.unwrap().is_empty());
}

#[tokio::test]
async fn listing_groups_by_path_and_by_user() {
    let w = World::new().await;
    let root = w.root();
    let svc = &w.svc;
    for (name, path) in [("Ops", "/teams/"), ("Admins", "/"), ("Devs", "/teams/dev/")] {
        svc.create_group(&root, name, Some(path)).await.unwrap();
    }
    let names = |groups: Vec<portcullis_core::model::Group>| {
        groups.into_iter().map(|g| g.name).collect::<Vec<_>>()
    };
    assert_eq!(
        names(svc.list_groups(&root, None).await.unwrap()),
        ["Admins", "Devs", "Ops"]
    );
    assert_eq!(
        names(svc.list_groups(&root, Some("/teams/")).await.unwrap()),
        ["Devs", "Ops"]
    );
    w.user("alice", &[]).await;
    svc.add_user_to_group(&root, "Ops", "alice").await.unwrap();
    svc.add_user_to_group(&root, "Admins", "alice")
        .await
        .unwrap();
    assert_eq!(
        names(svc.list_groups_for_user(&root, "alice").await.unwrap()),
        ["Admins", "Ops"]
    );
    assert_error(
        svc.list_groups_for_user(&root, "nobody").await,
        "NoSuchEntity",
        "The user with name nobody cannot be found.",
    );
}

#[tokio::test]
async fn a_group_policy_grants_until_the_user_leaves() {
    let w = World::new().await;
    let root = w.root();
    let svc = &w.svc;
    w.node(TEST_NODE, "test").await;
    let alice = w.user("alice", &[Tag::new("Project", "test")]).await;
    svc.create_group(&root, "Ops", None).await.unwrap();
    svc.put_group_policy(&root, "Ops", "abac", ABAC)
        .await
        .unwrap();
    assert!(!w.may_start_session(&alice, TEST_NODE).await);
    svc.add_user_to_group(&root, "Ops", "alice").await.unwrap();
    assert!(w.may_start_session(&alice, TEST_NODE).await);
    svc.remove_user_from_group(&root, "Ops", "alice")
        .await
        .unwrap();
    assert!(!w.may_start_session(&alice, TEST_NODE).await);

    // An attached managed policy works the same way.
    let policy = svc
        .create_policy(&root, "Start", None, START_ANYWHERE, None)
        .await
        .unwrap();
    svc.attach_group_policy(&root, "Ops", &policy.arn)
        .await
        .unwrap();
    svc.add_user_to_group(&root, "Ops", "alice").await.unwrap();
    assert!(w.may_start_session(&alice, PROD_NODE).await);
    svc.detach_group_policy(&root, "Ops", &policy.arn)
        .await
        .unwrap();
    assert!(!w.may_start_session(&alice, PROD_NODE).await);
}

#[tokio::test]
async fn group_inline_policies_share_a_quota() {
    let w = World::new().await;
    let root = w.root();
    let svc = &w.svc;
    svc.create_group(&root, "Ops", None).await.unwrap();
    // Each ~2,000 characters without whitespace: two fit in 5,120, three do not.
    let big = |n: usize| {
        let actions: Vec<String> = (0..n).map(|i| format!("\"ssm:Describe{i:04}\"")).collect();
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":[{}],"Resource":"*"}}]}}"#,
            actions.join(",")
        )
    };
    let doc = big(100);
    let size = portcullis_iam::policy_size(&doc);
    assert!((1800..2560).contains(&size), "{size}");
    svc.put_group_policy(&root, "Ops", "one", &doc)
        .await
        .unwrap();
    svc.put_group_policy(&root, "Ops", "two", &doc)
        .await
        .unwrap();
    // Replacing a policy counts its new size, not both.
    svc.put_group_policy(&root, "Ops", "TWO", &doc)
        .await
        .unwrap();
    assert_error(
        svc.put_group_policy(&root, "Ops", "three", &doc).await,
        "LimitExceeded",
        "Maximum policy size of 5120 bytes exceeded for group Ops",
    );
    // The name as last written.
    assert_eq!(
        svc.list_group_policies(&root, "Ops").await.unwrap(),
        ["one", "TWO"]
    );
    let (group, policy) = svc.get_group_policy(&root, "ops", "ONE").await.unwrap();
    assert_eq!((group.name.as_str(), policy.name.as_str()), ("Ops", "one"));
    assert_error(
        svc.get_group_policy(&root, "Ops", "three").await,
        "NoSuchEntity",
        "The group policy with name three cannot be found.",
    );
    assert_error(
        svc.delete_group_policy(&root, "Ops", "three").await,
        "NoSuchEntity",
        "The group policy with name three cannot be found.",
    );
}

#[tokio::test]
async fn refusal_comes_before_existence() {
    let w = World::new().await;
    let bob = w.user("bob", &[]).await;
    let bob = w.caller(&bob).await;
    let e = w.svc.get_group(&bob, "Nope").await.unwrap_err();
    assert_eq!(e.code, "AccessDenied");
    assert_eq!(
        e.message,
        format!(
            "User: arn:aws:iam::{ACCOUNT}:user/bob is not authorized to perform: iam:GetGroup \
             on resource: arn:aws:iam::{ACCOUNT}:group/Nope because no identity-based policy \
             allows the iam:GetGroup action"
        )
    );
    // AddUserToGroup is authorized against the group, not the user.
    let e = w
        .svc
        .add_user_to_group(&bob, "Ops", "bob")
        .await
        .unwrap_err();
    assert!(
        e.message.contains(&format!(
            "iam:AddUserToGroup on resource: arn:aws:iam::{ACCOUNT}:group/Ops"
        )),
        "{}",
        e.message
    );
}

// Managed policy versions

#[tokio::test]
async fn policy_versions_limit_default_and_delete() {
    let w = World::new().await;
    let root = w.root();
    let svc = &w.svc;
    let arn = svc
        .create_policy(&root, "Start", None, START_ANYWHERE, None)
        .await
        .unwrap()
        .arn;
    for n in 2..=5 {
        let v = svc
            .create_policy_version(&root, &arn, START_ANYWHERE, n == 3)
            .await
            .unwrap();
        assert_eq!(v.version_id, format!("v{n}"));
        assert_eq!(v.is_default, n == 3);
    }
    assert_error(
        svc.create_policy_version(&root, &arn, START_ANYWHERE, true)
            .await,
        "LimitExceeded",
        "A managed policy can have up to 5 versions. Before you create a new version, you must \
         delete an existing version.",
    );
    let listed = svc.list_policy_versions(&root, &arn).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|v| (v.version_id.as_str(), v.is_default))
            .collect::<Vec<_>>(),
        [
            ("v5", false),
            ("v4", false),
            ("v3", true),
            ("v2", false),
            ("v1", false)
        ],
        "newest first; the refused version left nothing"
    );
    assert_error(
        svc.delete_policy_version(&root, &arn, "v3").await,
        "DeleteConflict",
        "Cannot delete the default version of a policy.",
    );
    assert_error(
        svc.set_default_policy_version(&root, &arn, "v9").await,
        "NoSuchEntity",
        &format!("Policy {arn} version v9 does not exist or is not attachable."),
    );
    assert_eq!(
        svc.set_default_policy_version(&root, &arn, "version2")
            .await
            .unwrap_err()
            .code,
        "ValidationError"
    );
    svc.set_default_policy_version(&root, &arn, "v1")
        .await
        .unwrap();
    assert_eq!(
        svc.get_policy(&root, &arn).await.unwrap().default_version,
        "v1"
    );

    // DeletePolicy: refused while attached, then while other versions remain.
    w.user("alice", &[]).await;
    svc.attach_user_policy(&root, "alice", &arn).await.unwrap();
    assert_error(
        svc.delete_policy(&root, &arn).await,
        "DeleteConflict",
        "Cannot delete a policy attached to entities.",
    );
    svc.detach_user_policy(&root, "alice", &arn).await.unwrap();
    assert_error(
        svc.delete_policy(&root, &arn).await,
        "DeleteConflict",
        "This policy has more than one version. Before you delete a policy, you must delete the \
         policy's versions. The default version is deleted with the policy.",
    );
    assert_eq!(
        svc.list_policy_versions(&root, &arn).await.unwrap().len(),
        5
    );
    for v in ["v2", "v3", "v4", "v5"] {
        svc.delete_policy_version(&root, &arn, v).await.unwrap();
    }
    assert_error(
        svc.delete_policy_version(&root, &arn, "v5").await,
        "NoSuchEntity",
        &format!("Policy {arn} version v5 does not exist or is not attachable."),
    );
    // A deleted version's id is not given out again.
    let v6 = svc
        .create_policy_version(&root, &arn, START_ANYWHERE, false)
        .await
        .unwrap();
    assert_eq!(v6.version_id, "v6");
    svc.delete_policy_version(&root, &arn, "v6").await.unwrap();
    svc.delete_policy(&root, &arn).await.unwrap();
    assert_error(
        svc.delete_policy(&root, &arn).await,
        "NoSuchEntity",
        &format!("Policy {arn} was not found."),
    );
}

#[tokio::test]
async fn a_policy_used_as_a_boundary_is_not_deleted() {
    let w = World::new().await;
    let root = w.root();
    let svc = &w.svc;
    let arn = svc
        .create_policy(&root, "Boundary", None, START_ANYWHERE, None)
        .await
        .unwrap()
        .arn;
    w.user("alice", &[]).await;
    svc.put_user_permissions_boundary(&root, "alice", &arn)
        .await
        .unwrap();
    assert_error(
        svc.delete_policy(&root, &arn).await,
        "DeleteConflict",
        "Cannot delete a policy attached to entities.",
    );
    assert!(svc.get_policy(&root, &arn).await.is_ok());
}

#[tokio::test]
async fn the_default_version_is_the_one_in_force() {
    let w = World::new().await;
    let root = w.root();
    let svc = &w.svc;
    let alice = w.user("alice", &[]).await;
    let test_only = START_ANYWHERE.replace(
        "\"Resource\":\"*\"",
        &format!("\"Resource\":\"{}\"", svc.node_arn(TEST_NODE)),
    );
    let arn = svc
        .create_policy(&root, "Start", None, &test_only, None)
        .await
        .unwrap()
        .arn;
    svc.attach_user_policy(&root, "alice", &arn).await.unwrap();
    assert!(w.may_start_session(&alice, TEST_NODE).await);
    assert!(!w.may_start_session(&alice, PROD_NODE).await);
    // A new version that is not the default changes nothing...
    svc.create_policy_version(&root, &arn, START_ANYWHERE, false)
        .await
        .unwrap();
    assert!(!w.may_start_session(&alice, PROD_NODE).await);
    // ...until it is made the default, and back.
    svc.set_default_policy_version(&root, &arn, "v2")
        .await
        .unwrap();
    assert!(w.may_start_session(&alice, PROD_NODE).await);
    svc.set_default_policy_version(&root, &arn, "v1")
        .await
        .unwrap();
    assert!(!w.may_start_session(&alice, PROD_NODE).await);
    // Creating a version as default takes effect at once.
    svc.create_policy_version(&root, &arn, START_ANYWHERE, true)
        .await
        .unwrap();
    assert!(w.may_start_session(&alice, PROD_NODE).await);
}

#[tokio::test]
async fn aws_managed_policies_cannot_be_changed() {
    let w = World::new().await;
    let root = w.root();
    let svc = &w.svc;
    let arn = "arn:aws:iam::aws:policy/ReadOnlyAccess";
    let denied = |action: &str| {
        format!(
            "User: arn:aws:iam::{ACCOUNT}:root is not authorized to perform: {action} on \
             resource: {arn} because no resource-based policy allows the {action} action"
        )
    };
    assert_error(
        svc.create_policy_version(&root, arn, START_ANYWHERE, true)
            .await,
        "AccessDenied",
        &denied("iam:CreatePolicyVersion"),
    );
    assert_error(
        svc.set_default_policy_version(&root, arn, "v1").await,
        "AccessDenied",
        &denied("iam:SetDefaultPolicyVersion"),
    );
    assert_error(
        svc.delete_policy_version(&root, arn, "v1").await,
        "AccessDenied",
        &denied("iam:DeletePolicyVersion"),
    );
    assert_error(
        svc.delete_policy(&root, arn).await,
        "AccessDenied",
        &denied("iam:DeletePolicy"),
    );
    let versions = svc.list_policy_versions(&root, arn).await.unwrap();
    assert_eq!(versions.len(), 1);
    assert!(versions[0].is_default);
}

// Login profiles

#[tokio::test]
async fn login_profiles_keep_only_a_hash() {
    let w = World::new().await;
    let root = w.root();
    let svc = &w.svc;
    let alice = w.user("alice", &[]).await;
    assert_error(
        svc.create_login_profile(&root, Some("alice"), "short", false)
            .await,
        "PasswordPolicyViolation",
        "Password should have a minimum length of 8",
    );
    assert!(svc.store().login_profile("alice").await.unwrap().is_none());
    assert_error(
        svc.get_login_profile(&root, Some("alice")).await,
        "NoSuchEntity",
        "Login Profile for User alice cannot be found.",
    );
    let created = svc
        .create_login_profile(&root, Some("ALICE"), "correct horse battery", true)
        .await
        .unwrap();
    assert_eq!(created.user_name, "alice");
    assert!(created.password_reset_required);
    let stored = svc.store().login_profile("alice").await.unwrap().unwrap();
    assert!(stored.password_hash.starts_with("$argon2id$"));
    assert!(!stored.password_hash.contains("correct horse"));
    assert_eq!(
        svc.get_login_profile(&root, Some("alice")).await.unwrap(),
        stored
    );
    assert_error(
        svc.create_login_profile(&root, Some("alice"), "another password", false)
            .await,
        "EntityAlreadyExists",
        "Login Profile for user alice already exists.",
    );
    assert_eq!(
        svc.store().login_profile("alice").await.unwrap().unwrap(),
        stored,
        "the refused call changed nothing"
    );

    // Update: the flag alone, then the password; a bad password changes nothing.
    svc.update_login_profile(&root, "alice", None, Some(false))
        .await
        .unwrap();
    let flag_only = svc.store().login_profile("alice").await.unwrap().unwrap();
    assert_eq!(flag_only.password_hash, stored.password_hash);
    assert!(!flag_only.password_reset_required);
    assert_error(
        svc.update_login_profile(&root, "alice", Some("tiny"), Some(true))
            .await,
        "PasswordPolicyViolation",
        "Password should have a minimum length of 8",
    );
    assert_eq!(
        svc.store().login_profile("alice").await.unwrap().unwrap(),
        flag_only
    );
    svc.update_login_profile(&root, "alice", Some("a new password"), None)
        .await
        .unwrap();
    let renewed = svc.store().login_profile("alice").await.unwrap().unwrap();
    assert_ne!(renewed.password_hash, stored.password_hash);
    assert_eq!(renewed.created, stored.created);

    // The user themselves, without naming a user: their own profile.
    let alice = w.caller(&alice).await;
    let e = svc.get_login_profile(&alice, None).await.unwrap_err();
    assert_eq!(e.code, "AccessDenied", "alice has no policy");
    assert!(e.message.contains(":user/alice"), "{}", e.message);

    // DeleteUser waits for the profile.
    svc.delete_access_key(&root, Some("alice"), &alice.access_key_id)
        .await
        .unwrap();
    assert_error(
        svc.delete_user(&root, "alice").await,
        "DeleteConflict",
        "Cannot delete entity, must delete login profile first.",
    );
    svc.delete_login_profile(&root, Some("alice"))
        .await
        .unwrap();
    assert_error(
        svc.delete_login_profile(&root, Some("alice")).await,
        "NoSuchEntity",
        "Login Profile for User alice cannot be found.",
    );
    assert_error(
        svc.update_login_profile(&root, "alice", Some("whatever123"), None)
            .await,
        "NoSuchEntity",
        "Login Profile for User alice cannot be found.",
    );
    svc.delete_user(&root, "alice").await.unwrap();
    assert_error(
        svc.create_login_profile(&root, Some("alice"), "whatever123", false)
            .await,
        "NoSuchEntity",
        "The user with name alice cannot be found.",
    );
    assert_error(
        svc.create_login_profile(&root, None, "whatever123", false)
            .await,
        "ValidationError",
        "Must specify userName when calling with non-User credentials",
    );
}

// Access keys

#[tokio::test]
async fn the_access_key_quota_is_kept() {
    let w = World::new().await;
    let root = w.root();
    w.user("alice", &[]).await;
    w.svc.create_access_key(&root, Some("alice")).await.unwrap();
    assert_error(
        w.svc.create_access_key(&root, Some("alice")).await,
        "LimitExceeded",
        "Cannot exceed quota for AccessKeysPerUser: 2",
    );
    assert_eq!(
        w.svc
            .store()
            .list_access_keys(&KeyOwner::User("alice".to_owned()))
            .await
            .unwrap()
            .len(),
        2
    );
}

// The simulator

fn request(actions: &[&str], resources: &[String]) -> SimulationRequest {
    SimulationRequest {
        actions: actions.iter().map(|a| (*a).to_owned()).collect(),
        resources: resources.to_vec(),
        ..SimulationRequest::default()
    }
}

fn only(results: Vec<SimulationResult>) -> SimulationResult {
    assert_eq!(results.len(), 1, "{results:?}");
    results.into_iter().next().unwrap()
}

#[tokio::test]
async fn simulate_principal_policy_sees_groups_tags_and_nodes() {
    let w = World::new().await;
    let root = w.root();
    let svc = &w.svc;
    w.node(TEST_NODE, "test").await;
    w.node(PROD_NODE, "prod").await;
    w.user("alice", &[Tag::new("Project", "test")]).await;
    svc.create_group(&root, "Ops", None).await.unwrap();
    svc.put_group_policy(&root, "Ops", "abac", ABAC)
        .await
        .unwrap();
    svc.add_user_to_group(&root, "Ops", "alice").await.unwrap();
    let alice_arn = format!("arn:aws:iam::{ACCOUNT}:user/alice");
    let nodes = [svc.node_arn(TEST_NODE), svc.node_arn(PROD_NODE)];

    let r = only(
        svc.simulate_principal_policy(&root, &alice_arn, &request(&["ssm:StartSession"], &nodes))
            .await
            .unwrap(),
    );
    assert_eq!(r.action, "ssm:StartSession");
    assert_eq!(r.resource_name, "*");
    assert_eq!(
        r.decision,
        SimulationDecision::ImplicitDeny,
        "prod is denied"
    );
    assert!(r.matched_statements.is_empty());
    assert_eq!(r.resources.len(), 2);
    let test = &r.resources[0];
    assert_eq!(test.resource, nodes[0]);
    assert_eq!(test.decision, SimulationDecision::Allowed);
    assert_eq!(test.matched_statements.len(), 1);
    let s = &test.matched_statements[0];
    assert_eq!(s.source_policy_id, "group Ops inline policy abac");
    assert_eq!(s.source_policy_type.as_deref(), Some("IAM Policy"));
    assert_eq!((s.start, s.end), ((4, 6), (10, 6)));
    assert!(test.missing_context_values.is_empty());
    assert_eq!(r.resources[1].decision, SimulationDecision::ImplicitDeny);
    assert!(r.resources[1].matched_statements.is_empty());

    // A context entry stands in for a tag: the prod node, as if alice were in prod.
    let mut as_prod = request(&["ssm:StartSession"], &nodes[1..]);
    as_prod.context.push(SimulationContextEntry {
        key: "aws:PrincipalTag/Project".to_owned(),
        values: vec!["prod".to_owned()],
        key_type: Some("string".to_owned()),
    });
    let r = only(
        svc.simulate_principal_policy(&root, &alice_arn, &as_prod)
            .await
            .unwrap(),
    );
    assert_eq!(r.decision, SimulationDecision::Allowed);
    assert_eq!(r.matched_statements.len(), 1);

    // A resource that is not a registered node has no tags: the key is missing.
    let unknown = svc.node_arn("i-0fffffffffffffff0");
    let r = only(
        svc.simulate_principal_policy(
            &root,
            &alice_arn,
            &request(&["ssm:StartSession"], std::slice::from_ref(&unknown)),
        )
        .await
        .unwrap(),
    );
    assert_eq!(r.decision, SimulationDecision::ImplicitDeny);
    assert_eq!(r.missing_context_values, ["aws:ResourceTag/Project"]);
    assert_eq!(
        r.resources[0].missing_context_values,
        ["aws:ResourceTag/Project"]
    );

    // Not a user of this account, or no such user.
    assert_error(
        svc.simulate_principal_policy(
            &root,
            &format!("arn:aws:iam::{ACCOUNT}:user/nobody"),
            &request(&["ssm:StartSession"], &[]),
        )
        .await,
        "NoSuchEntity",
        "The user with name nobody cannot be found.",
    );
    assert_eq!(
        svc.simulate_principal_policy(
            &root,
            &format!("arn:aws:iam::{ACCOUNT}:role/Ops"),
            &request(&["ssm:StartSession"], &[]),
        )
        .await
        .unwrap_err()
        .code,
        "InvalidInput"
    );
}

/// Whatever the simulator says, the authorizer does: same policies, same decision.
#[tokio::test]
async fn the_simulator_agrees_with_authorization() {
    let w = World::new().await;
    let root = w.root();
    let svc = &w.svc;
    w.node(TEST_NODE, "test").await;
    w.node(PROD_NODE, "prod").await;
    let alice = w.user("alice", &[Tag::new("Project", "test")]).await;
    svc.create_group(&root, "Ops", None).await.unwrap();
    svc.put_group_policy(&root, "Ops", "abac", ABAC)
        .await
        .unwrap();
    svc.add_user_to_group(&root, "Ops", "alice").await.unwrap();
    let deny_prod = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Action":"ssm:*","Resource":"{}"}},{{"Effect":"Allow","Action":"ssm:Describe*","Resource":"*"}}]}}"#,
        svc.node_arn(PROD_NODE)
    );
    svc.put_user_policy(&root, "alice", "deny-prod", &deny_prod)
        .await
        .unwrap();
    let alice_arn = format!("arn:aws:iam::{ACCOUNT}:user/alice");
    let caller = w.caller(&alice).await;
    let actions = [
        "ssm:StartSession",
        "ssm:DescribeSessions",
        "ssm:TerminateSession",
        "ec2:DescribeInstances",
    ];
    let resources = [
        svc.node_arn(TEST_NODE),
        svc.node_arn(PROD_NODE),
        "*".to_owned(),
    ];
    let results = svc
        .simulate_principal_policy(&root, &alice_arn, &request(&actions, &resources))
        .await
        .unwrap();
    assert_eq!(results.len(), actions.len());
    let mut seen = 0;
    for (action, result) in actions.iter().zip(&results) {
        for r in &result.resources {
            let tags = match r.resource.rsplit('/').next() {
                Some(id) if id.starts_with("i-") => svc.store().node_tags(id).await.unwrap(),
                _ => Vec::new(),
            };
            let authorized = svc
                .authorize(&caller, action, &r.resource, &tags, &[])
                .map_err(|e| e.code);
            let simulated = match r.decision {
                SimulationDecision::Allowed => Ok(()),
                _ => Err(if action.starts_with("ssm:") {
                    "AccessDeniedException".to_owned()
                } else {
                    "UnauthorizedOperation".to_owned()
                }),
            };
            assert_eq!(simulated, authorized, "{action} on {}", r.resource);
            seen += 1;
        }
    }
    assert_eq!(seen, 12);
    let start = &results[0];
    assert_eq!(start.decision, SimulationDecision::ExplicitDeny);
    assert_eq!(start.matched_statements.len(), 1, "only the deny decided");
    assert_eq!(
        start.matched_statements[0].source_policy_id,
        "user alice inline policy deny-prod"
    );
    assert_eq!(
        start.resources[0].matched_statements[0].source_policy_id,
        "group Ops inline policy abac"
    );
}

#[tokio::test]
async fn simulate_custom_policy_reports_missing_context_and_boundaries() {
    let w = World::new().await;
    let root = w.root();
    let svc = &w.svc;
    let from_office = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"ssm:StartSession","Resource":"*",
   "Condition":{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}]}"#;
    let mut req = request(&["ssm:StartSession", "ssm:TerminateSession"], &[]);
    req.policies = vec![from_office.to_owned()];
    let results = svc.simulate_custom_policy(&root, &req).await.unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].decision, SimulationDecision::ImplicitDeny);
    assert_eq!(results[0].missing_context_values, ["aws:SourceIp"]);
    assert!(results[0].resources.is_empty(), "no resource named");
    assert_eq!(results[1].decision, SimulationDecision::ImplicitDeny);
    assert!(
        results[1].missing_context_values.is_empty(),
        "the statement is not about TerminateSession"
    );

    req.context.push(SimulationContextEntry {
        key: "aws:SourceIp".to_owned(),
        values: vec!["203.0.113.9".to_owned()],
        key_type: Some("ip".to_owned()),
    });
    let r = svc.simulate_custom_policy(&root, &req).await.unwrap();
    assert_eq!(r[0].decision, SimulationDecision::Allowed);
    assert!(r[0].missing_context_values.is_empty());
    let s = &r[0].matched_statements[0];
    assert_eq!(s.source_policy_id, "PolicyInputList.1");
    assert_eq!(s.source_policy_type, None);
    assert_eq!((s.start, s.end), ((2, 4), (3, 64)));
    assert_eq!(r[0].allowed_by_boundary, None);

    // A boundary that does not allow: implicit deny, and the boundary says so.
    req.boundary_policies = vec![
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:Describe*","Resource":"*"}]}"#
            .to_owned(),
    ];
    let r = svc.simulate_custom_policy(&root, &req).await.unwrap();
    assert_eq!(r[0].decision, SimulationDecision::ImplicitDeny);
    assert_eq!(r[0].allowed_by_boundary, Some(false));

    // Invalid input policies are refused with the validator's message.
    req.policies = vec![r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"StartSession","Resource":"*"}}"#.to_owned()];
    let e = svc.simulate_custom_policy(&root, &req).await.unwrap_err();
    assert_eq!(e.code, "MalformedPolicyDocument");
    assert!(e.message.contains("vendor"), "{}", e.message);
}

#[tokio::test]
async fn simulation_is_authorized() {
    let w = World::new().await;
    let bob = w.user("bob", &[]).await;
    let bob = w.caller(&bob).await;
    let mut req = request(&["ssm:StartSession"], &[]);
    req.policies = vec![START_ANYWHERE.to_owned()];
    let e = w.svc.simulate_custom_policy(&bob, &req).await.unwrap_err();
    assert_eq!(e.code, "AccessDenied");
    assert!(e
        .message
        .contains("iam:SimulateCustomPolicy on resource: *"));
    let target = format!("arn:aws:iam::{ACCOUNT}:user/nobody");
    let e = w
        .svc
        .simulate_principal_policy(&bob, &target, &req)
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDenied", "refused before looking the user up");
    assert!(e.message.contains(&format!(
        "iam:SimulatePrincipalPolicy on resource: {target}"
    )));
}
