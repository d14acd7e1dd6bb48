//! Condition keys, resolved once from their names. Key names are matched without regard to
//! case, as AWS does, so every name is kept in lower case.

/// Where a condition key's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Source {
    Username,
    Userid,
    PrincipalArn,
    PrincipalAccount,
    PrincipalType,
    /// `aws:PrincipalTag/KEY` (tag key in lower case).
    PrincipalTag(Box<str>),
    /// `aws:ResourceTag/KEY`.
    ResourceTag(Box<str>),
    /// `SERVICE:ResourceTag/KEY`, present only when the action belongs to SERVICE.
    ServiceResourceTag {
        service: Box<str>,
        tag: Box<str>,
    },
    /// Any other key, read from the request context.
    Request,
}

/// A condition key: its lower-case name and where its value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    name: Box<str>,
    pub(crate) source: Source,
}

impl Key {
    pub fn parse(name: &str) -> Key {
        let lower = name.to_lowercase();
        let source = match lower.as_str() {
            "aws:username" => Source::Username,
            "aws:userid" => Source::Userid,
            "aws:principalarn" => Source::PrincipalArn,
            "aws:principalaccount" => Source::PrincipalAccount,
            "aws:principaltype" => Source::PrincipalType,
            other => {
                if let Some(tag) = other.strip_prefix("aws:principaltag/") {
                    Source::PrincipalTag(tag.into())
                } else if let Some(tag) = other.strip_prefix("aws:resourcetag/") {
                    Source::ResourceTag(tag.into())
                } else if let Some((service, tag)) = other
                    .split_once(':')
                    .and_then(|(svc, rest)| Some((svc, rest.strip_prefix("resourcetag/")?)))
                {
                    Source::ServiceResourceTag {
                        service: service.into(),
                        tag: tag.into(),
                    }
                } else {
                    Source::Request
                }
            }
        };
        Key {
            name: lower.into_boxed_str(),
            source,
        }
    }

    /// The key's name in lower case.
    pub fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        assert_eq!(Key::parse("AWS:UserName").source, Source::Username);
        assert_eq!(
            Key::parse("aws:PrincipalTag/Project").source,
            Source::PrincipalTag("project".into())
        );
        assert_eq!(
            Key::parse("ssm:resourceTag/aws:ssmmessages:session-id").source,
            Source::ServiceResourceTag {
                service: "ssm".into(),
                tag: "aws:ssmmessages:session-id".into()
            }
        );
        assert_eq!(Key::parse("aws:SourceIp").source, Source::Request);
        assert_eq!(Key::parse("aws:SourceIp").name(), "aws:sourceip");
    }
}
