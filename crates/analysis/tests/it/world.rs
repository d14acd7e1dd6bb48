//! A generated fleet in the real store, built through the service as an administrator
//! would: 50 users with tags, groups, managed, inline and boundary policies (the seed's three
//! plus deliberately risky ones), and 200 nodes with tags.

use std::sync::Arc;

use portcullis_core::model::{Activation, Node, NodeKind, Tag};
use portcullis_core::{Caller, Identity, Service};
use portcullis_store::SqliteStore;

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "ap-northeast-1";
pub const SEED_NODE: &str = "i-0885b2e35926f1fb3";

pub fn seed(name: &str) -> String {
    let path = format!("{}/../../examples/seed/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Risky policies, each a pitfall the linter names, as managed policies.
pub const RISKY: &[(&str, &str)] = &[
    // Unguarded variable in a negated operator: users without an Env tag reach every node.
    (
        "not-my-env",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:StartSession","Resource":"*",
            "Condition":{"StringNotEquals":{"aws:ResourceTag/Env":"${aws:PrincipalTag/Env}"}}}]}"#,
    ),
    // Allow + NotAction.
    (
        "everything-but-iam",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}]}"#,
    ),
    // ForAllValues on a single-valued key: allows untagged nodes.
    (
        "forall-project",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:StartSession","Resource":"arn:aws:ec2:*:*:instance/*",
            "Condition":{"ForAllValues:StringEquals":{"aws:ResourceTag/Project":["test","dev"]}}}]}"#,
    ),
    // A Resource with a variable (every node is its own class for SendCommand).
    (
        "own-node",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ssm:SendCommand","ssm:StartSession"],
            "Resource":"arn:aws:ssm:*:*:managed-instance/${aws:PrincipalTag/Node}"}]}"#,
    ),
    // Self-tagging next to tag-based access.
    (
        "tagger",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ec2:CreateTags","ssm:AddTagsToResource"],"Resource":"*"}]}"#,
    ),
    // A wide boundary that still needs the Team tag to match.
    (
        "team-boundary",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ssm:*","ec2:*"],"Resource":"*",
            "Condition":{"StringEqualsIfExists":{"aws:ResourceTag/Team":"${aws:PrincipalTag/Team, 'none'}"}}}]}"#,
    ),
];

pub const NO_PROD: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"NoProd","Effect":"Deny","Action":"ssm:StartSession",
    "Resource":"arn:aws:ec2:*:*:instance/*","Condition":{"StringEquals":{"ssm:resourceTag/Env":"prod"}}}]}"#;

/// A small deterministic generator (the same fleet every run).
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Lcg {
        Lcg(seed)
    }
    pub fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.next(items.len())]
    }
}

pub struct World {
    pub svc: Service,
    pub root: Arc<Identity>,
    /// (user name, access key id)
    pub users: Vec<(String, String)>,
    pub nodes: Vec<String>,
}

impl World {
    pub fn root(&self) -> Caller {
        Caller::new(self.root.clone(), "AKIAROOT", "127.0.0.1", false)
    }

    pub fn policy_arn(name: &str) -> String {
        format!("arn:aws:iam::{ACCOUNT}:policy/{name}")
    }

    pub async fn empty() -> World {
        let store = Arc::new(SqliteStore::open_in_memory().await.unwrap());
        let boot = Service::start(store, Some(ACCOUNT), REGION).await.unwrap();
        let key = boot.new_root_key.unwrap();
        let root = boot.service.authenticate(&key.id).await.unwrap().unwrap();
        World {
            svc: boot.service,
            root,
            users: Vec::new(),
            nodes: Vec::new(),
        }
    }

    pub async fn add_node(&mut self, id: &str, tags: &[Tag]) {
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
            kind: if id.starts_with("mi-") {
                NodeKind::ManagedInstance
            } else {
                NodeKind::Ec2Instance
            },
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
            .register_node(&activation.id, &node, tags)
            .await
            .unwrap();
        self.nodes.push(id.to_owned());
    }

    pub async fn add_user(&mut self, name: &str, tags: &[Tag]) {
        let root = self.root();
        self.svc
            .create_user(&root, name, None, tags, None)
            .await
            .unwrap();
        let key = self
            .svc
            .create_access_key(&root, Some(name))
            .await
            .unwrap()
            .id;
        self.users.push((name.to_owned(), key));
    }

    /// Whether the user may do `action` on the node, asked of the server's authorizer.
    pub async fn authorized(&self, user: usize, action: &str, node: &str) -> bool {
        let key = &self.users[user].1;
        let identity = self.svc.authenticate(key).await.unwrap().unwrap();
        let caller = Caller::new(identity, key, "127.0.0.1", false);
        let tags = self.svc.store().node_tags(node).await.unwrap_or_default();
        self.svc
            .authorize(&caller, action, &self.svc.node_arn(node), &tags, &[])
            .is_ok()
    }

    /// The generated fleet: 50 users, 200 nodes.
    pub async fn generated() -> World {
        let mut w = World::empty().await;
        let root = w.root();
        let mut managed = vec![
            ("seed-arn", seed("pattern-1-arn.json")),
            ("seed-fixed-tag", seed("pattern-2-fixed-tag.json")),
            ("seed-abac", seed("pattern-3-abac.json")),
        ];
        managed.extend(RISKY.iter().map(|(n, d)| (*n, (*d).to_owned())));
        for (name, document) in &managed {
            w.svc
                .create_policy(&root, name, None, document, None)
                .await
                .unwrap();
        }
        w.svc.create_group(&root, "ops", None).await.unwrap();
        w.svc
            .put_group_policy(&root, "ops", "no-prod", NO_PROD)
            .await
            .unwrap();
        w.svc
            .attach_group_policy(&root, "ops", &World::policy_arn("seed-fixed-tag"))
            .await
            .unwrap();
        w.svc.create_group(&root, "devs", None).await.unwrap();
        w.svc
            .attach_group_policy(&root, "devs", &World::policy_arn("seed-abac"))
            .await
            .unwrap();

        let mut rng = Lcg::new(6);
        let mut node_ids = vec![SEED_NODE.to_owned()];
        for i in 1..200 {
            node_ids.push(if i % 4 == 0 {
                format!("mi-{i:017x}")
            } else {
                format!("i-{:017x}", 0x0abc_0000 + i)
            });
        }
        for id in &node_ids {
            let mut tags = Vec::new();
            let project = rng.pick(&["test", "prod", "dev", "-", "Test"]);
            if project != "-" {
                tags.push(Tag::new("Project", project));
            }
            let env = rng.pick(&["prod", "dev", "-"]);
            if env != "-" {
                tags.push(Tag::new(if rng.next(2) == 0 { "Env" } else { "env" }, env));
            }
            let team = rng.pick(&["a", "b", "-"]);
            if team != "-" {
                tags.push(Tag::new("Team", team));
            }
            w.add_node(id, &tags).await;
        }

        let attachable = [
            "seed-arn",
            "seed-abac",
            "not-my-env",
            "everything-but-iam",
            "forall-project",
            "own-node",
            "tagger",
        ];
        for i in 0..50 {
            let name = format!("user{i:02}");
            let mut tags = Vec::new();
            let project = rng.pick(&["test", "prod", "dev", "-"]);
            if project != "-" {
                tags.push(Tag::new("Project", project));
            }
            let env = rng.pick(&["prod", "dev", "-"]);
            if env != "-" {
                tags.push(Tag::new("Env", env));
            }
            let team = rng.pick(&["a", "b", "-"]);
            if team != "-" {
                tags.push(Tag::new("Team", team));
            }
            if rng.next(4) == 0 {
                let node = node_ids[4 * (1 + rng.next(49))].clone();
                tags.push(Tag::new("Node", node));
            }
            w.add_user(&name, &tags).await;
            // Most users get one or two attached policies; some none.
            for _ in 0..rng.next(3) {
                let policy = rng.pick(&attachable);
                let _ = w
                    .svc
                    .attach_user_policy(&root, &name, &World::policy_arn(policy))
                    .await;
            }
            match rng.next(5) {
                0 => w.svc.add_user_to_group(&root, "ops", &name).await.unwrap(),
                1 => w.svc.add_user_to_group(&root, "devs", &name).await.unwrap(),
                2 => {
                    w.svc.add_user_to_group(&root, "ops", &name).await.unwrap();
                    w.svc.add_user_to_group(&root, "devs", &name).await.unwrap();
                }
                _ => {}
            }
            if rng.next(6) == 0 {
                w.svc
                    .put_user_permissions_boundary(
                        &root,
                        &name,
                        &World::policy_arn("team-boundary"),
                    )
                    .await
                    .unwrap();
            }
            if i % 17 == 3 {
                let inline = format!(
                    r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"ssm:StartSession","Resource":"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{}"}}]}}"#,
                    node_ids[1 + i]
                );
                w.svc
                    .put_user_policy(&root, &name, "own-box", &inline)
                    .await
                    .unwrap();
            }
        }
        w
    }
}
