//! Read-only questions about validated statements, for access analysis and the linter
//! (`crates/analysis`): which statements can apply to an action, which request keys a
//! statement reads, and whether a Resource item matches an ARN regardless of the request.
//!
//! Why these exist: the access matrix groups principals and nodes that no statement can
//! tell apart and asks [`crate::PolicySet::evaluate`] once per group. That grouping is only
//! exact if it knows everything evaluation reads, so these answers use the evaluator's own
//! matchers and the same fields `eval::check` reads; analysis never needs a second matcher.
//! Nothing here changes how a request is decided.

use crate::key::{Key, Source};
use crate::pattern::Variable;
use crate::policy::{Compiled, Condition, Resources, Statement};

/// What a condition key's value depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyScope {
    /// The principal: `aws:username`, `aws:userid`, `aws:PrincipalArn`,
    /// `aws:PrincipalAccount`, `aws:PrincipalType`, `aws:PrincipalTag/K`.
    Principal,
    /// The resource's tags: `aws:ResourceTag/K`, `SERVICE:ResourceTag/K`.
    Resource,
    /// Anything else, read from the request context (`aws:SourceIp`, `aws:TagKeys`, ...).
    Request,
}

impl Key {
    /// Where this key's value comes from.
    pub fn scope(&self) -> KeyScope {
        match self.source {
            Source::Username
            | Source::Userid
            | Source::PrincipalArn
            | Source::PrincipalAccount
            | Source::PrincipalType
            | Source::PrincipalTag(_) => KeyScope::Principal,
            Source::ResourceTag(_) | Source::ServiceResourceTag { .. } => KeyScope::Resource,
            Source::Request => KeyScope::Request,
        }
    }

    /// For `aws:ResourceTag/K` and `SERVICE:ResourceTag/K`: the tag key K (lower case) and,
    /// for the service-specific form, the service prefix (lower case).
    pub fn resource_tag(&self) -> Option<(Option<&str>, &str)> {
        match &self.source {
            Source::ResourceTag(tag) => Some((None, tag)),
            Source::ServiceResourceTag { service, tag } => Some((Some(service), tag)),
            _ => None,
        }
    }

    /// For `aws:PrincipalTag/K`: the tag key K (lower case).
    pub fn principal_tag(&self) -> Option<&str> {
        match &self.source {
            Source::PrincipalTag(tag) => Some(tag),
            _ => None,
        }
    }
}

impl Condition {
    /// The condition key, resolved as evaluation reads it.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// Keys of the policy variables in this condition's values (string and ARN operators).
    pub fn variable_keys(&self) -> Vec<&Key> {
        let vars: Vec<&Variable> = match &self.compiled {
            Compiled::Strings(patterns) => patterns.iter().flat_map(|p| p.variables()).collect(),
            Compiled::Arns(patterns) => patterns.iter().flat_map(|p| p.whole.variables()).collect(),
            _ => Vec::new(),
        };
        vars.into_iter().map(|v| &v.key).collect()
    }
}

impl Resources {
    /// Whether item `i` has policy variables (its match then depends on the request).
    pub fn item_has_variables(&self, i: usize) -> bool {
        self.patterns.get(i).is_some_and(|p| p.has_variables())
    }

    /// Whether item `i` matches `resource`, with the evaluator's matcher; `None` for an item
    /// with policy variables (or no such item), whose match depends on the request.
    pub fn item_matches(&self, i: usize, resource: &str) -> Option<bool> {
        let p = self.patterns.get(i)?;
        if p.has_variables() {
            return None;
        }
        Some(p.matches(resource, &|_: &Variable| None))
    }

    /// Whether item `i` matches `resource` under some values of its variables (exactly
    /// [`Resources::item_matches`] for an item without variables). `false` means no principal
    /// and no request can make the item match this resource.
    pub fn item_may_match(&self, i: usize, resource: &str) -> bool {
        self.patterns
            .get(i)
            .is_some_and(|p| p.widened().matches(resource, &|_: &Variable| None))
    }

    /// Keys of the policy variables in the items.
    pub fn variable_keys(&self) -> Vec<&Key> {
        self.patterns
            .iter()
            .flat_map(|p| p.variables())
            .map(|v| &v.key)
            .collect()
    }
}

impl Statement {
    /// Whether the statement's `Action` (or `NotAction`) covers `action`, exactly as
    /// evaluation decides it; a statement for which this is false never matches a request
    /// for `action`.
    pub fn applies_to_action(&self, action: &str) -> bool {
        let action = action.to_lowercase();
        let hit = self
            .action
            .patterns
            .iter()
            .any(|p| p.matches(&action, &|_: &Variable| None));
        hit != self.action.negated
    }

    /// Every request key evaluation of this statement can read: the condition keys and the
    /// keys of policy variables in `Resource`/`NotResource` and in condition values.
    pub fn keys_read(&self) -> Vec<&Key> {
        let mut keys = self.resource.variable_keys();
        for c in &self.conditions {
            keys.push(c.key());
            keys.extend(c.variable_keys());
        }
        keys
    }
}

#[cfg(test)]
mod tests {
    use crate::{KeyScope, Policy};

    #[test]
    fn statement_questions() {
        let p = Policy::parse(
            r#"{"Version":"2012-10-17","Statement":[
              {"Effect":"Allow","Action":["ssm:Start*"],
               "Resource":["arn:aws:ec2:*:*:instance/*","arn:aws:ssm:*:*:session/${aws:username}-*"],
               "Condition":{"StringEquals":{"aws:ResourceTag/Project":"${aws:PrincipalTag/Project}"},
                            "IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}},
              {"Effect":"Deny","NotAction":"ssm:StartSession","Resource":"*"}]}"#,
        )
        .unwrap();
        let [a, b] = p.statements.as_slice() else {
            panic!("two statements")
        };
        assert!(a.applies_to_action("SSM:startsession"));
        assert!(!a.applies_to_action("ssm:TerminateSession"));
        assert!(!b.applies_to_action("ssm:StartSession"));
        assert!(b.applies_to_action("ec2:CreateTags"));
        let keys: Vec<(&str, KeyScope)> = a
            .keys_read()
            .iter()
            .map(|k| (k.name(), k.scope()))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("aws:username", KeyScope::Principal),
                ("aws:resourcetag/project", KeyScope::Resource),
                ("aws:principaltag/project", KeyScope::Principal),
                ("aws:sourceip", KeyScope::Request),
            ]
        );
        let arn = "arn:aws:ec2:ap-northeast-1:1:instance/i-1";
        assert_eq!(a.resource.item_matches(0, arn), Some(true));
        assert_eq!(a.resource.item_matches(1, arn), None);
        assert!(!a.resource.item_may_match(1, arn));
        assert!(a
            .resource
            .item_may_match(1, "arn:aws:ssm:r:1:session/bob-0123"));
        assert!(a.resource.item_has_variables(1));
        assert_eq!(b.resource.item_matches(0, "anything"), Some(true));
        let tag = a.conditions[0].key().resource_tag();
        assert_eq!(tag, Some((None, "project")));
        assert_eq!(
            crate::Key::parse("ssm:resourceTag/Env").resource_tag(),
            Some((Some("ssm"), "env"))
        );
        assert_eq!(
            crate::Key::parse("aws:PrincipalTag/Team").principal_tag(),
            Some("team")
        );
    }
}
