//! The fleet as authorization sees it: every IAM user with their principal and policies,
//! and every node with its ARN and tags, read from the store once.
//!
//! Users whose policies are the same documents under the same names share one
//! [`PolicyGroup`] and so one compiled [`PolicySet`]: a typical fleet has hundreds of users
//! but a handful of distinct policy combinations.

use std::collections::HashMap;

use portcullis_core::model::{NodeKind, Tag, User};
use portcullis_core::policies::{self, UserPolicy};
use portcullis_core::store::Store;
use portcullis_iam::{PolicySet, Principal, Tags};

/// Users that have exactly the same policies.
#[derive(Debug, Clone)]
pub struct PolicyGroup {
    pub policies: Vec<UserPolicy>,
    pub set: PolicySet,
}

#[derive(Debug, Clone)]
pub struct FleetUser {
    pub name: String,
    pub arn: String,
    pub tags: Vec<Tag>,
    pub principal: Principal,
    /// Index into [`Fleet::groups`].
    pub group: usize,
    /// The IAM groups the user is in (for what-ifs on a group's policies).
    pub iam_groups: Vec<String>,
    /// Kept so tags can change in a what-if.
    user: User,
}

#[derive(Debug, Clone)]
pub struct FleetNode {
    pub id: String,
    pub arn: String,
    pub tags: Vec<Tag>,
    /// `tags` as the engine reads them.
    pub resource_tags: Tags,
}

/// Users, nodes and policies of one account.
#[derive(Debug, Clone)]
pub struct Fleet {
    pub account: String,
    pub region: String,
    pub users: Vec<FleetUser>,
    pub groups: Vec<PolicyGroup>,
    pub nodes: Vec<FleetNode>,
    group_index: HashMap<Vec<(String, bool, String)>, usize>,
}

fn to_tags(tags: &[Tag]) -> Tags {
    tags.iter()
        .map(|t| (t.key.as_str(), t.value.as_str()))
        .collect()
}

impl Fleet {
    pub fn new(account: &str, region: &str) -> Fleet {
        Fleet {
            account: account.to_owned(),
            region: region.to_owned(),
            users: Vec::new(),
            groups: Vec::new(),
            nodes: Vec::new(),
            group_index: HashMap::new(),
        }
    }

    /// Reads every user (with tags, groups' and own policies, boundary) and every node (with
    /// tags) from the store, as authorization would. Only reads.
    pub async fn load(store: &dyn Store) -> portcullis_core::Result<Fleet> {
        let account = store
            .account()
            .await?
            .ok_or_else(portcullis_core::Error::internal)?;
        let mut fleet = Fleet::new(&account.id, &account.region);
        for user in store.list_users().await? {
            let tags = store.user_tags(&user.name).await?;
            let policies = policies::user_policies(store, &user, true).await?;
            let u = fleet.add_user(&user, &tags, policies);
            let groups = store.groups_for_user(&user.name).await?;
            if let Some(fu) = fleet.users.get_mut(u) {
                fu.iam_groups = groups.into_iter().map(|g| g.name).collect();
            }
        }
        for node in store.list_nodes().await? {
            let tags = store.node_tags(&node.id).await?;
            let arn = node.arn(&account.region, &account.id);
            fleet.push_node(&node.id, arn, &tags);
        }
        Ok(fleet)
    }

    fn group_for(&mut self, policies: Vec<UserPolicy>) -> usize {
        let key: Vec<(String, bool, String)> = policies
            .iter()
            .map(|p| (p.label.clone(), p.boundary, p.document.clone()))
            .collect();
        if let Some(&g) = self.group_index.get(&key) {
            return g;
        }
        let g = self.groups.len();
        self.groups.push(PolicyGroup {
            set: policies::policy_set(&policies),
            policies,
        });
        self.group_index.insert(key, g);
        g
    }

    /// Adds a user with their tags and the policies that apply to them (as
    /// [`policies::user_policies`] reads them); returns the user's index.
    pub fn add_user(&mut self, user: &User, tags: &[Tag], policies: Vec<UserPolicy>) -> usize {
        let group = self.group_for(policies);
        self.users.push(FleetUser {
            name: user.name.clone(),
            arn: user.arn.clone(),
            tags: tags.to_vec(),
            principal: policies::user_principal(user, &self.account, tags),
            group,
            iam_groups: Vec::new(),
            user: user.clone(),
        });
        self.users.len() - 1
    }

    /// Adds a node by id (`i-...` an EC2 instance, `mi-...` a managed instance), with the ARN
    /// the service authorizes against; returns its index.
    pub fn add_node(&mut self, id: &str, tags: &[Tag]) -> usize {
        let kind = if id.starts_with("mi-") {
            NodeKind::ManagedInstance
        } else {
            NodeKind::Ec2Instance
        };
        let arn = match kind {
            NodeKind::Ec2Instance => {
                format!("arn:aws:ec2:{}:{}:instance/{id}", self.region, self.account)
            }
            NodeKind::ManagedInstance => format!(
                "arn:aws:ssm:{}:{}:managed-instance/{id}",
                self.region, self.account
            ),
        };
        self.push_node(id, arn, tags)
    }

    fn push_node(&mut self, id: &str, arn: String, tags: &[Tag]) -> usize {
        self.nodes.push(FleetNode {
            id: id.to_owned(),
            arn,
            tags: tags.to_vec(),
            resource_tags: to_tags(tags),
        });
        self.nodes.len() - 1
    }

    /// A user by name or ARN.
    pub fn user_index(&self, name_or_arn: &str) -> Option<usize> {
        self.users
            .iter()
            .position(|u| u.arn == name_or_arn)
            .or_else(|| {
                self.users
                    .iter()
                    .position(|u| u.name.eq_ignore_ascii_case(name_or_arn))
            })
    }

    /// A node by id or ARN.
    pub fn node_index(&self, id_or_arn: &str) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.id == id_or_arn || n.arn == id_or_arn)
    }

    /// Replaces a user's tags (a what-if; the store is not touched).
    pub fn set_user_tags(&mut self, user: usize, tags: &[Tag]) {
        let account = self.account.clone();
        if let Some(u) = self.users.get_mut(user) {
            u.tags = tags.to_vec();
            u.principal = policies::user_principal(&u.user, &account, tags);
        }
    }

    /// Replaces a node's tags (a what-if).
    pub fn set_node_tags(&mut self, node: usize, tags: &[Tag]) {
        if let Some(n) = self.nodes.get_mut(node) {
            n.tags = tags.to_vec();
            n.resource_tags = to_tags(tags);
        }
    }

    /// Replaces the policies that apply to a user (a what-if).
    pub fn set_user_policies(&mut self, user: usize, policies: Vec<UserPolicy>) {
        let group = self.group_for(policies);
        if let Some(u) = self.users.get_mut(user) {
            u.group = group;
        }
    }

    /// The policies of a user.
    pub fn user_policies(&self, user: usize) -> &[UserPolicy] {
        self.users
            .get(user)
            .and_then(|u| self.groups.get(u.group))
            .map_or(&[], |g| g.policies.as_slice())
    }
}
