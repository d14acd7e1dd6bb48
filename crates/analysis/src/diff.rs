//! What-if: the (user, node, action) pairs that gain or lose access under a proposed change
//! (a tag added to or removed from a node or a user, a policy attached, detached or
//! replaced), found by comparing the access matrix before and after on a copy of the fleet.
//! The store is never touched.

use portcullis_core::model::Tag;
use portcullis_core::policies::UserPolicy;
use portcullis_iam::{Context, Decision, Policy};

use crate::fleet::Fleet;
use crate::matrix::{explain, Answer, Matrix};

/// A pair whose access changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairChange {
    /// Index into [`Fleet::users`] (the same in both fleets).
    pub user: usize,
    /// Index into [`Fleet::nodes`].
    pub node: usize,
    pub action: String,
    /// Allowed after the change (a gain), or allowed before and not after (a loss).
    pub gained: bool,
    /// The answer before the change, with its deciding statements.
    pub before: Answer,
    pub after: Answer,
}

/// Who the change is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A user, by index into [`Fleet::users`].
    User(usize),
    /// An IAM group, by name: every member.
    Group(String),
}

/// Who a policy change is for, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    User(String),
    /// An IAM group: every member.
    Group(String),
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Principal::User(name) => write!(f, "user {name}"),
            Principal::Group(name) => write!(f, "group {name}"),
        }
    }
}

/// A proposed change, as the what-if tools state it (`portcullis access diff`, the
/// console's "what changes?"): [`Change::apply`] makes it on a copy of the fleet, and
/// [`diff`] says what it does to access.
#[derive(Debug, Clone)]
pub enum Change {
    /// Tags removed from a node (keys, any case), then added or replaced.
    NodeTags {
        node: String,
        add: Vec<Tag>,
        remove: Vec<String>,
    },
    /// The same on a user (groups have no tags).
    UserTags {
        user: String,
        add: Vec<Tag>,
        remove: Vec<String>,
    },
    /// A policy attached: a managed policy (labelled by its ARN) or a proposed document.
    Attach { to: Principal, policy: UserPolicy },
    /// A policy detached: a managed policy by its ARN, or an inline policy by its name.
    Detach { from: Principal, policy: String },
    /// A managed policy's new default version, for everyone who has it.
    NewVersion {
        arn: String,
        document: String,
        policy: Policy,
    },
    /// An inline policy put on a user: it replaces the one of that name, or is added.
    PutInline {
        user: String,
        name: String,
        document: String,
        policy: Policy,
    },
}

/// Why a change cannot be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeError {
    NoNode(String),
    NoUser(String),
    NotAttached { who: String, policy: String },
}

impl std::fmt::Display for ChangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChangeError::NoNode(id) => write!(f, "There is no node {id}."),
            ChangeError::NoUser(name) => write!(f, "There is no user {name}."),
            ChangeError::NotAttached { who, policy } => {
                write!(f, "The {who} has no policy {policy} attached.")
            }
        }
    }
}

impl std::error::Error for ChangeError {}

impl Change {
    /// Makes the change on `fleet` (a copy: the store is never touched) and says what it
    /// was, in words for people.
    pub fn apply(&self, fleet: &mut Fleet) -> Result<String, ChangeError> {
        match self {
            Change::NodeTags { node, add, remove } => {
                let n = fleet
                    .node_index(node)
                    .ok_or_else(|| ChangeError::NoNode(node.clone()))?;
                let old = fleet
                    .nodes
                    .get(n)
                    .map(|x| x.tags.clone())
                    .unwrap_or_default();
                fleet.set_node_tags(n, &edit_tags(&old, add, remove));
                Ok(format!("tag node {node} ({})", tag_words(add, remove)))
            }
            Change::UserTags { user, add, remove } => {
                let u = user_index(fleet, user)?;
                let old = fleet
                    .users
                    .get(u)
                    .map(|x| x.tags.clone())
                    .unwrap_or_default();
                fleet.set_user_tags(u, &edit_tags(&old, add, remove));
                Ok(format!("tag user {user} ({})", tag_words(add, remove)))
            }
            Change::Attach { to, policy } => {
                let n = fleet.attach(&target(fleet, to)?, policy);
                Ok(format!("attach {} to {to} ({n} users)", policy.label))
            }
            Change::Detach { from, policy } => {
                let target = target(fleet, from)?;
                let mut n = fleet.detach(&target, policy);
                if n == 0 {
                    n = fleet.detach(&target, &format!("{from} inline policy {policy}"));
                }
                if n == 0 {
                    return Err(ChangeError::NotAttached {
                        who: from.to_string(),
                        policy: policy.clone(),
                    });
                }
                Ok(format!("detach {policy} from {from} ({n} users)"))
            }
            Change::NewVersion {
                arn,
                document,
                policy,
            } => {
                let n = fleet.replace_document(arn, document, policy);
                Ok(format!("new default version of {arn} ({n} users have it)"))
            }
            Change::PutInline {
                user,
                name,
                document,
                policy,
            } => {
                let u = user_index(fleet, user)?;
                let label = format!("user {user} inline policy {name}");
                if fleet.replace_document(&label, document, policy) == 0 {
                    let inline = UserPolicy {
                        label,
                        document: document.clone(),
                        policy: policy.clone(),
                        boundary: false,
                    };
                    fleet.attach(&Target::User(u), &inline);
                }
                Ok(format!("put inline policy {name} on user {user}"))
            }
        }
    }
}

fn user_index(fleet: &Fleet, name: &str) -> Result<usize, ChangeError> {
    fleet
        .user_index(name)
        .ok_or_else(|| ChangeError::NoUser(name.to_owned()))
}

fn target(fleet: &Fleet, who: &Principal) -> Result<Target, ChangeError> {
    Ok(match who {
        Principal::User(name) => Target::User(user_index(fleet, name)?),
        Principal::Group(name) => Target::Group(name.clone()),
    })
}

/// `+Key=Value -Key`, for a change's description.
fn tag_words(add: &[Tag], remove: &[String]) -> String {
    let mut parts: Vec<String> = add
        .iter()
        .map(|t| format!("+{}={}", t.key, t.value))
        .collect();
    parts.extend(remove.iter().map(|k| format!("-{k}")));
    parts.join(" ")
}

/// Applies tag changes to a tag list: `remove` (keys, any case) first, then `add` (replacing
/// a tag whose key differs only in case, as the store does).
pub fn edit_tags(tags: &[Tag], add: &[Tag], remove: &[String]) -> Vec<Tag> {
    let mut out: Vec<Tag> = tags
        .iter()
        .filter(|t| !remove.iter().any(|k| k.eq_ignore_ascii_case(&t.key)))
        .cloned()
        .collect();
    for t in add {
        match out.iter_mut().find(|o| o.key.eq_ignore_ascii_case(&t.key)) {
            Some(o) => *o = t.clone(),
            None => out.push(t.clone()),
        }
    }
    out
}

impl Fleet {
    fn members(&self, target: &Target) -> Vec<usize> {
        match target {
            Target::User(u) => vec![*u],
            Target::Group(g) => self
                .users
                .iter()
                .enumerate()
                .filter(|(_, u)| u.iam_groups.iter().any(|x| x == g))
                .map(|(i, _)| i)
                .collect(),
        }
    }

    /// Attaches a policy (a managed policy, labelled by its ARN, or a proposed document)
    /// to a user or to every member of a group; returns how many users changed.
    pub fn attach(&mut self, target: &Target, policy: &UserPolicy) -> usize {
        let members = self.members(target);
        for &u in &members {
            let mut list = self.user_policies(u).to_vec();
            // Identity policies before the boundary, as authorization reads them.
            let at = list.iter().position(|p| p.boundary).unwrap_or(list.len());
            list.insert(at, policy.clone());
            self.set_user_policies(u, list);
        }
        members.len()
    }

    /// Detaches the policy labelled `label` (a managed policy's ARN, or `user U inline policy
    /// P` / `group G inline policy P`) from a user or from every member of a group; returns
    /// how many users changed. When a user has it twice (directly and through a group), a
    /// group detach removes the later (group) one.
    pub fn detach(&mut self, target: &Target, label: &str) -> usize {
        let mut changed = 0;
        for u in self.members(target) {
            let mut list = self.user_policies(u).to_vec();
            let found = match target {
                Target::User(_) => list.iter().position(|p| p.label == label && !p.boundary),
                Target::Group(_) => list.iter().rposition(|p| p.label == label && !p.boundary),
            };
            if let Some(at) = found {
                list.remove(at);
                self.set_user_policies(u, list);
                changed += 1;
            }
        }
        changed
    }

    /// Gives the policy labelled `label` a new document wherever it applies (a managed
    /// policy's new default version, say, including where it is a permissions boundary);
    /// returns how many users changed.
    pub fn replace_document(&mut self, label: &str, document: &str, policy: &Policy) -> usize {
        let mut changed = 0;
        for u in 0..self.users.len() {
            let mut list = self.user_policies(u).to_vec();
            let mut hit = false;
            for p in list.iter_mut().filter(|p| p.label == label) {
                p.document = document.to_owned();
                p.policy = policy.clone();
                hit = true;
            }
            if hit {
                self.set_user_policies(u, list);
                changed += 1;
            }
        }
        changed
    }
}

/// The pairs whose access differs between `before` and `after` (the same fleet with one
/// change applied: same users and nodes, in the same order), for each action, in (action,
/// user, node) order. Only changes of allowed-ness count: an implicit deny becoming an
/// explicit one is not a change of access.
pub fn diff(before: &Fleet, after: &Fleet, actions: &[&str], context: &Context) -> Vec<PairChange> {
    let mut out = Vec::new();
    if before.users.len() != after.users.len() || before.nodes.len() != after.nodes.len() {
        return out;
    }
    for action in actions {
        let a = Matrix::compute(before, action, context);
        let b = Matrix::compute(after, action, context);
        for r in 0..before.users.len() {
            for (c, (x, y)) in a.row(r).zip(b.row(r)).enumerate() {
                if x.is_allowed() == y.is_allowed() {
                    continue;
                }
                let (Some(was), Some(now)) = (
                    explain(before, r, c, action, context),
                    explain(after, r, c, action, context),
                ) else {
                    continue;
                };
                out.push(PairChange {
                    user: r,
                    node: c,
                    action: (*action).to_owned(),
                    gained: y == Decision::Allow,
                    before: was,
                    after: now,
                });
            }
        }
    }
    out
}
