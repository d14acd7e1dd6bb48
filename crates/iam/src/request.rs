//! The request context: who is asking (the principal and its tags), for what action, on
//! which resource (its ARN and tags), and any other request keys (`aws:SourceIp`, ...).

use std::collections::HashMap;

use crate::key::{Key, Source};

/// What kind of principal makes the request; decides `aws:PrincipalType` and which keys exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    User,
    AssumedRole,
    Root,
}

impl PrincipalKind {
    /// The value of `aws:PrincipalType`.
    pub fn principal_type(self) -> &'static str {
        match self {
            PrincipalKind::User => "User",
            PrincipalKind::AssumedRole => "AssumedRole",
            PrincipalKind::Root => "Account",
        }
    }
}

/// Tags on a principal or a resource. Lookup ignores the case of the tag key, because
/// condition key names (`aws:ResourceTag/Project`) are matched without regard to case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags {
    /// (lower-case key, key as written, value), in insertion order.
    entries: Vec<(Box<str>, String, String)>,
}

impl Tags {
    pub fn new() -> Tags {
        Tags::default()
    }

    /// Sets a tag, replacing one whose key differs only in case.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        let lower: Box<str> = key.to_lowercase().into();
        let value = value.into();
        match self.entries.iter_mut().find(|(l, _, _)| *l == lower) {
            Some(entry) => *entry = (lower, key, value),
            None => self.entries.push((lower, key, value)),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        let lower = key.to_lowercase();
        self.get_lower(&lower)
    }

    fn get_lower(&self, lower: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(l, _, _)| &**l == lower)
            .map(|(_, _, v)| v.as_str())
    }

    /// Tags as written: (key, value).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|(_, k, v)| (k.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Tags {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Tags {
        let mut tags = Tags::new();
        for (k, v) in iter {
            tags.insert(k, v);
        }
        tags
    }
}

/// Who makes a request. The keys AWS derives from the principal are computed once here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    kind: PrincipalKind,
    arn: String,
    principal_arn: String,
    account: String,
    username: Option<String>,
    userid: String,
    tags: Tags,
}

impl Principal {
    /// An IAM user.
    pub fn user(arn: &str, account: &str, username: &str, userid: &str) -> Principal {
        Principal {
            kind: PrincipalKind::User,
            arn: arn.to_owned(),
            principal_arn: arn.to_owned(),
            account: account.to_owned(),
            username: Some(username.to_owned()),
            userid: userid.to_owned(),
            tags: Tags::new(),
        }
    }

    /// An assumed-role session, `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`, whose user
    /// id is `ROLEID:SESSION`. `aws:PrincipalArn` is the role's ARN, as AWS documents, and
    /// there is no `aws:username`.
    pub fn assumed_role(session_arn: &str, account: &str, userid: &str) -> Principal {
        Principal {
            kind: PrincipalKind::AssumedRole,
            arn: session_arn.to_owned(),
            principal_arn: role_arn_of_session(session_arn)
                .unwrap_or_else(|| session_arn.to_owned()),
            account: account.to_owned(),
            username: None,
            userid: userid.to_owned(),
            tags: Tags::new(),
        }
    }

    /// The account root user; its user id is the account id.
    pub fn root(account: &str) -> Principal {
        let arn = format!("arn:aws:iam::{account}:root");
        Principal {
            kind: PrincipalKind::Root,
            principal_arn: arn.clone(),
            arn,
            account: account.to_owned(),
            username: None,
            userid: account.to_owned(),
            tags: Tags::new(),
        }
    }

    pub fn with_tag(mut self, key: &str, value: &str) -> Principal {
        self.tags.insert(key, value);
        self
    }

    pub fn with_tags(mut self, tags: Tags) -> Principal {
        self.tags = tags;
        self
    }

    pub fn kind(&self) -> PrincipalKind {
        self.kind
    }

    /// The caller's own ARN (for a role session, the `sts` session ARN).
    pub fn arn(&self) -> &str {
        &self.arn
    }

    /// The value of `aws:PrincipalArn`.
    pub fn principal_arn(&self) -> &str {
        &self.principal_arn
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    pub fn userid(&self) -> &str {
        &self.userid
    }

    pub fn tags(&self) -> &Tags {
        &self.tags
    }
}

/// `arn:aws:sts::1:assumed-role/Path/Name/session` → `arn:aws:iam::1:role/Name`.
fn role_arn_of_session(session_arn: &str) -> Option<String> {
    let mut fields = session_arn.splitn(6, ':');
    let (arn, partition, service, _region, account, resource) = (
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
    );
    if arn != "arn" || service != "sts" {
        return None;
    }
    let rest = resource.strip_prefix("assumed-role/")?;
    let (role, _session) = rest.rsplit_once('/')?;
    let role_name = role.rsplit('/').next()?;
    Some(format!("arn:{partition}:iam::{account}:role/{role_name}"))
}

/// Other request keys (`aws:SourceIp`, `aws:CurrentTime`, `aws:TagKeys`, ...), single or
/// multivalued. Key names are matched without regard to case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    keys: HashMap<Box<str>, Vec<String>>,
}

impl Context {
    pub fn new() -> Context {
        Context::default()
    }

    pub fn insert(&mut self, key: &str, value: impl Into<String>) {
        self.keys
            .insert(key.to_lowercase().into(), vec![value.into()]);
    }

    /// A multivalued key; an empty list is a key that is present with no values.
    pub fn insert_values(&mut self, key: &str, values: Vec<String>) {
        self.keys.insert(key.to_lowercase().into(), values);
    }

    pub fn with(mut self, key: &str, value: impl Into<String>) -> Context {
        self.insert(key, value);
        self
    }

    fn get_lower(&self, lower: &str) -> Option<&[String]> {
        self.keys.get(lower).map(Vec::as_slice)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.keys.iter().map(|(k, v)| (&**k, v.as_slice()))
    }
}

/// The values a key has in a request: one value, or a (possibly empty) list.
#[derive(Debug, Clone, Copy)]
pub enum Values<'a> {
    One(&'a str),
    Many(&'a [String]),
}

impl<'a> Values<'a> {
    pub fn iter(self) -> impl Iterator<Item = &'a str> {
        let (one, many) = match self {
            Values::One(v) => (Some(v), &[][..]),
            Values::Many(vs) => (None, vs),
        };
        one.into_iter().chain(many.iter().map(String::as_str))
    }

    pub fn len(self) -> usize {
        match self {
            Values::One(_) => 1,
            Values::Many(vs) => vs.len(),
        }
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// The value of a single-valued key (what a policy variable can stand for).
    pub fn single(self) -> Option<&'a str> {
        match self {
            Values::One(v) => Some(v),
            Values::Many([v]) => Some(v),
            Values::Many(_) => None,
        }
    }

    pub fn to_vec(self) -> Vec<String> {
        self.iter().map(str::to_owned).collect()
    }
}

static NO_TAGS: Tags = Tags {
    entries: Vec::new(),
};

/// One authorization question: may `principal` do `action` on `resource`?
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub principal: &'a Principal,
    pub action: &'a str,
    pub resource: &'a str,
    pub resource_tags: &'a Tags,
    pub context: Option<&'a Context>,
}

impl<'a> Request<'a> {
    pub fn new(principal: &'a Principal, action: &'a str, resource: &'a str) -> Request<'a> {
        Request {
            principal,
            action,
            resource,
            resource_tags: &NO_TAGS,
            context: None,
        }
    }

    pub fn with_resource_tags(mut self, tags: &'a Tags) -> Request<'a> {
        self.resource_tags = tags;
        self
    }

    pub fn with_context(mut self, context: &'a Context) -> Request<'a> {
        self.context = Some(context);
        self
    }

    /// The service prefix of the action (`ssm` for `ssm:StartSession`).
    pub fn service(&self) -> &'a str {
        self.action.split_once(':').map_or("", |(s, _)| s)
    }

    /// The values `key` has in this request, or `None` when the key is not present.
    pub fn lookup(&self, key: &Key) -> Option<Values<'a>> {
        let p = self.principal;
        let one = |s: &'a str| Some(Values::One(s));
        match &key.source {
            Source::Username => p.username.as_deref().map(Values::One),
            Source::Userid => one(&p.userid),
            Source::PrincipalArn => one(&p.principal_arn),
            Source::PrincipalAccount => one(&p.account),
            Source::PrincipalType => one(p.kind.principal_type()),
            Source::PrincipalTag(tag) => p.tags.get_lower(tag).map(Values::One),
            Source::ResourceTag(tag) => self.resource_tags.get_lower(tag).map(Values::One),
            Source::ServiceResourceTag { service, tag } => {
                if self.service().eq_ignore_ascii_case(service) {
                    self.resource_tags.get_lower(tag).map(Values::One)
                } else {
                    None
                }
            }
            Source::Request => self
                .context
                .and_then(|c| c.get_lower(key.name()))
                .map(Values::Many),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_session_keys() {
        let p = Principal::assumed_role(
            "arn:aws:sts::123456789012:assumed-role/OpsRole/alice",
            "123456789012",
            "AROAEXAMPLE:alice",
        );
        assert_eq!(p.principal_arn(), "arn:aws:iam::123456789012:role/OpsRole");
        let req = Request::new(&p, "ssm:StartSession", "*");
        assert!(req.lookup(&Key::parse("aws:username")).is_none());
        assert_eq!(
            req.lookup(&Key::parse("aws:PrincipalType"))
                .and_then(Values::single),
            Some("AssumedRole")
        );
    }

    #[test]
    fn service_resource_tags_follow_the_action() {
        let p = Principal::root("123456789012");
        let tags: Tags = [("Project", "test")].into_iter().collect();
        let req = Request::new(&p, "ssm:StartSession", "*").with_resource_tags(&tags);
        let ssm = Key::parse("ssm:resourceTag/PROJECT");
        let ec2 = Key::parse("ec2:ResourceTag/Project");
        assert_eq!(req.lookup(&ssm).and_then(Values::single), Some("test"));
        assert!(req.lookup(&ec2).is_none());
        assert_eq!(
            req.lookup(&Key::parse("aws:userid"))
                .and_then(Values::single),
            Some("123456789012")
        );
    }
}
