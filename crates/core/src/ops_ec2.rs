//! EC2 operations on nodes registered under an EC2 instance id, and STS's caller identity.

use crate::error::{Error, Result};
use crate::model::{Node, NodeKind, Tag};
use crate::service::{Caller, Service};
use crate::validate;

const MAX_TAGS: usize = 50;

/// A tag removal: a key, and optionally the value it must have to be removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRemoval {
    pub key: String,
    pub value: Option<String>,
}

/// `GetCallerIdentity`'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    pub account: String,
    pub arn: String,
    pub user_id: String,
}

impl Service {
    /// `sts:GetCallerIdentity` needs no permission, as on AWS: even an explicit deny
    /// cannot stop a principal from learning who it is.
    pub fn get_caller_identity(&self, caller: &Caller) -> CallerIdentity {
        let p = &caller.identity.principal;
        CallerIdentity {
            account: self.account.id.clone(),
            arn: p.arn().to_owned(),
            user_id: p.userid().to_owned(),
        }
    }

    fn instance_not_found(ids: &[&str]) -> Error {
        let quoted: Vec<String> = ids.iter().map(|i| format!("'{i}'")).collect();
        let noun = if ids.len() == 1 { "ID" } else { "IDs" };
        let verb = if ids.len() == 1 { "does" } else { "do" };
        Error::invalid(
            "InvalidInstanceID.NotFound",
            format!("The instance {noun} {} {verb} not exist", quoted.join(", ")),
        )
    }

    /// Every named instance with its tags; authorization happens for all of them before any
    /// write, so a refusal on one changes none.
    async fn instances_for_tagging(
        &self,
        caller: &Caller,
        action: &str,
        ids: &[String],
        request_tags: &[Tag],
    ) -> Result<Vec<(Node, Vec<Tag>)>> {
        if ids.is_empty() {
            return Err(Error::invalid(
                "MissingParameter",
                "The request must contain the parameter resourceIdSet",
            ));
        }
        let request_keys = validate::request_tag_keys(request_tags);
        let extra: Vec<(&str, Vec<String>)> = request_keys
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for id in ids {
            let node = self
                .store
                .node(id)
                .await?
                .filter(|n| n.kind == NodeKind::Ec2Instance);
            let tags = match &node {
                Some(_) => self.store.node_tags(id).await?,
                None => Vec::new(),
            };
            self.authorize(caller, action, &self.node_arn(id), &tags, &extra)?;
            match node {
                Some(n) => found.push((n, tags)),
                None => missing.push(id.as_str()),
            }
        }
        if !missing.is_empty() {
            return Err(Self::instance_not_found(&missing));
        }
        Ok(found)
    }

    pub async fn create_tags(&self, caller: &Caller, ids: &[String], tags: &[Tag]) -> Result<()> {
        validate::tags("InvalidParameterValue", "Tag", tags, MAX_TAGS)?;
        let targets = self
            .instances_for_tagging(caller, "ec2:CreateTags", ids, tags)
            .await?;
        let mut updates = Vec::new();
        for (node, existing) in targets {
            let merged = validate::merge_tags(existing, tags);
            if merged.len() > MAX_TAGS {
                return Err(Error::invalid(
                    "TagLimitExceeded",
                    format!(
                        "The maximum number of Tags for a resource has been reached ({MAX_TAGS})."
                    ),
                ));
            }
            updates.push((node.id, merged));
        }
        for (id, merged) in updates {
            self.write_node_tags(&id, &merged).await?;
        }
        Ok(())
    }

    pub async fn delete_tags(
        &self,
        caller: &Caller,
        ids: &[String],
        removals: &[TagRemoval],
    ) -> Result<()> {
        let as_tags: Vec<Tag> = removals
            .iter()
            .map(|r| Tag::new(r.key.clone(), r.value.clone().unwrap_or_default()))
            .collect();
        let targets = self
            .instances_for_tagging(caller, "ec2:DeleteTags", ids, &as_tags)
            .await?;
        for (node, existing) in targets {
            let kept: Vec<Tag> = existing
                .into_iter()
                .filter(|t| {
                    !removals
                        .iter()
                        .any(|r| r.key == t.key && r.value.as_ref().is_none_or(|v| *v == t.value))
                })
                .collect();
            self.write_node_tags(&node.id, &kept).await?;
        }
        Ok(())
    }

    /// `DescribeInstances`: EC2-style nodes with their tags, optionally only the named ones.
    pub async fn describe_instances(
        &self,
        caller: &Caller,
        ids: &[String],
    ) -> Result<Vec<(Node, Vec<Tag>)>> {
        self.authorize(caller, "ec2:DescribeInstances", "*", &[], &[])?;
        let mut out = Vec::new();
        let mut missing = Vec::new();
        for id in ids {
            if self
                .store
                .node(id)
                .await?
                .is_none_or(|n| n.kind != NodeKind::Ec2Instance)
            {
                missing.push(id.as_str());
            }
        }
        if !missing.is_empty() {
            return Err(Self::instance_not_found(&missing));
        }
        for node in self.store.list_nodes().await? {
            if node.kind != NodeKind::Ec2Instance || (!ids.is_empty() && !ids.contains(&node.id)) {
                continue;
            }
            let tags = self.store.node_tags(&node.id).await?;
            out.push((node, tags));
        }
        Ok(out)
    }

    /// `DescribeTags`: (resource id, tag) for every EC2-style node.
    pub async fn describe_tags(&self, caller: &Caller) -> Result<Vec<(String, Tag)>> {
        self.authorize(caller, "ec2:DescribeTags", "*", &[], &[])?;
        let mut out = Vec::new();
        for node in self.store.list_nodes().await? {
            if node.kind != NodeKind::Ec2Instance {
                continue;
            }
            for tag in self.store.node_tags(&node.id).await? {
                out.push((node.id.clone(), tag));
            }
        }
        Ok(out)
    }
}
