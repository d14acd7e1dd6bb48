//! What AWS documents for the services Portcullis serves: their actions and condition keys
//! (from the Service Authorization Reference, `catalog_data.rs`) and the global `aws:` keys
//! (from "AWS global condition context keys" in the IAM User Guide), with which keys are
//! multivalued. The linter uses it to flag names IAM would accept but AWS never sends.

use crate::catalog_data::SERVICES;
use crate::glob;

/// One service's documented actions and condition keys.
pub(crate) struct Service {
    pub prefix: &'static str,
    pub actions: &'static [&'static str],
    /// (name, multivalued); a name ending in `/` takes any suffix.
    pub keys: &'static [(&'static str, bool)],
}

/// The global condition keys, as (name, multivalued). A name ending in `/` takes any suffix.
const GLOBAL_KEYS: &[(&str, bool)] = &[
    ("aws:AssumedRoot", false),
    ("aws:CalledVia", true),
    ("aws:CalledViaFirst", false),
    ("aws:CalledViaLast", false),
    ("aws:ChatbotSourceArn", false),
    ("aws:CurrentTime", false),
    ("aws:Ec2InstanceSourcePrivateIPv4", false),
    ("aws:Ec2InstanceSourceVpc", false),
    ("aws:EpochTime", false),
    ("aws:FederatedProvider", false),
    ("aws:MultiFactorAuthAge", false),
    ("aws:MultiFactorAuthPresent", false),
    ("aws:PrincipalAccount", false),
    ("aws:PrincipalArn", false),
    ("aws:PrincipalIsAWSService", false),
    ("aws:PrincipalOrgID", false),
    ("aws:PrincipalOrgPaths", true),
    ("aws:PrincipalServiceName", false),
    ("aws:PrincipalServiceNamesList", true),
    ("aws:PrincipalTag/", false),
    ("aws:PrincipalType", false),
    ("aws:referer", false),
    ("aws:RequestedRegion", false),
    ("aws:RequestTag/", false),
    ("aws:ResourceAccount", false),
    ("aws:ResourceOrgID", false),
    ("aws:ResourceOrgPaths", true),
    ("aws:ResourceTag/", false),
    ("aws:SecureTransport", false),
    ("aws:SourceAccount", false),
    ("aws:SourceArn", false),
    ("aws:SourceIdentity", false),
    ("aws:SourceIp", false),
    ("aws:SourceOrgID", false),
    ("aws:SourceOrgPaths", true),
    ("aws:SourceVpc", false),
    ("aws:SourceVpcArn", false),
    ("aws:SourceVpce", false),
    ("aws:TagKeys", true),
    ("aws:TokenIssueTime", false),
    ("aws:UserAgent", false),
    ("aws:userid", false),
    ("aws:username", false),
    ("aws:ViaAWSService", false),
    ("aws:VpceAccount", false),
    ("aws:VpceOrgID", false),
    ("aws:VpceOrgPaths", true),
    ("aws:VpcSourceIp", false),
];

/// The services whose actions and keys the catalog knows (and Portcullis serves).
pub fn services() -> impl Iterator<Item = &'static str> {
    SERVICES.iter().map(|s| s.prefix)
}

fn service(prefix: &str) -> Option<&'static Service> {
    SERVICES
        .iter()
        .find(|s| s.prefix.eq_ignore_ascii_case(prefix))
}

/// Whether an action (or an action pattern with `*`/`?`) names at least one documented
/// action. `None` when the catalog does not cover the action's service.
pub fn action_known(action: &str) -> Option<bool> {
    if action == "*" {
        return Some(true);
    }
    let (prefix, name) = action.split_once(':')?;
    if prefix.contains(['*', '?']) {
        return None;
    }
    let service = service(prefix)?;
    Some(service.actions.iter().any(|a| glob::matches(name, a, true)))
}

/// The documented actions of a service that `pattern` (the part after `service:`) matches.
pub fn matching_actions(prefix: &str, pattern: &str) -> Vec<&'static str> {
    service(prefix).map_or_else(Vec::new, |s| {
        s.actions
            .iter()
            .copied()
            .filter(|a| glob::matches(pattern, a, true))
            .collect()
    })
}

/// What the catalog says about a condition key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyInfo {
    pub known: bool,
    pub multivalued: bool,
}

fn lookup(list: &[(&str, bool)], name: &str) -> Option<bool> {
    list.iter().find_map(|&(k, multi)| {
        let hit = match k.strip_suffix('/') {
            Some(prefix) => {
                name.get(..=prefix.len())
                    .is_some_and(|h| h.eq_ignore_ascii_case(k))
                    && name.len() > k.len()
            }
            None => name.eq_ignore_ascii_case(k),
        };
        hit.then_some(multi)
    })
}

/// A condition key's standing: `None` when the catalog does not cover its vendor (an `s3:`
/// key, say), else whether AWS documents it and whether it is multivalued.
pub fn key_info(name: &str) -> Option<KeyInfo> {
    let (vendor, _) = name.split_once(':')?;
    let found = if vendor.eq_ignore_ascii_case("aws") {
        lookup(GLOBAL_KEYS, name)
    } else {
        lookup(service(vendor)?.keys, name)
    };
    Some(KeyInfo {
        known: found.is_some(),
        multivalued: found.unwrap_or(false),
    })
}

/// The documented keys of a vendor (`aws` or a service), each completed with the tag part
/// of `name` when it is a `.../${TagKey}` key: candidates for "did you mean".
pub fn key_candidates(vendor: &str, name: &str) -> Vec<String> {
    let list: &[(&str, bool)] = if vendor.eq_ignore_ascii_case("aws") {
        GLOBAL_KEYS
    } else {
        match service(vendor) {
            Some(s) => s.keys,
            None => return Vec::new(),
        }
    };
    let suffix = name.split_once('/').map_or("", |(_, s)| s);
    list.iter()
        .map(|(k, _)| {
            if k.ends_with('/') {
                format!("{k}{suffix}")
            } else {
                (*k).to_owned()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_and_keys() {
        assert_eq!(action_known("ssm:StartSession"), Some(true));
        assert_eq!(action_known("SSM:startsession"), Some(true));
        assert_eq!(action_known("ssm:StartSesion"), Some(false));
        assert_eq!(action_known("ssm:Start*"), Some(true));
        assert_eq!(action_known("ec2:CreateTags"), Some(true));
        assert_eq!(action_known("ssmmessages:OpenDataChannel"), Some(true));
        assert_eq!(action_known("s3:GetObject"), None);
        assert!(matching_actions("ssm", "*Session").contains(&"StartSession"));
        let k = |n| key_info(n).unwrap();
        assert!(k("aws:ResourceTag/Project").known);
        assert!(!k("aws:ResourceTag/").known);
        assert!(k("ssm:resourceTag/aws:ssmmessages:session-id").known);
        assert!(k("SSM:ResourceTag/Project").known);
        assert!(k("ssm:SessionDocumentAccessCheck").known);
        assert!(!k("ssm:SessionDocumentCheck").known);
        assert!(!k("aws:PrincipleTag/x").known);
        assert!(k("aws:TagKeys").multivalued);
        assert!(!k("aws:username").multivalued);
        assert!(k("ec2:ResourceTag/Env").known);
        assert_eq!(key_info("s3:prefix"), None);
    }
}
