//! Which operation a request asks for: AWS JSON 1.1 (SSM) or the Query protocol (IAM, STS,
//! EC2).
//!
//! A request carrying `X-Amz-Target: AmazonSSM.StartSession` is JSON 1.1 and its body is a JSON
//! object. Anything else is the Query protocol: `Action=...&Version=...&...` form text in a
//! POST body (`application/x-www-form-urlencoded`) and/or the query string.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::encoding::{form_decode, split_pairs};
use crate::error::{AwsError, Protocol};
use crate::RequestParts;

/// The operation a request asks for, decoded but not yet validated against any API model.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// AWS JSON 1.1: `X-Amz-Target: {service_target}.{operation}` and a JSON object body.
    Json {
        /// The target prefix, e.g. `AmazonSSM`.
        service_target: String,
        /// The operation, e.g. `StartSession`.
        operation: String,
        /// The body; always a JSON object (`{}` when the body was empty).
        body: Value,
    },
    /// The Query protocol.
    Query {
        /// `Action`, e.g. `CreateUser`.
        action: String,
        /// `Version`, e.g. `2010-05-08`; every AWS SDK sends it, but it is the caller's to
        /// require.
        version: Option<String>,
        /// Every other parameter (presigned-URL `X-Amz-*` auth parameters left out).
        params: QueryParams,
    },
}

/// Decodes the operation of a request (after its signature has been verified).
///
/// Errors are the protocol's own: `UnknownOperationException` or `SerializationException`
/// for JSON, `MalformedQueryString` or `MissingAction` for Query.
pub fn detect(req: &RequestParts<'_>) -> Result<Operation, AwsError> {
    let media_type = req.media_type();
    if let Some(target) = req.header("x-amz-target") {
        return detect_json(target, req.body);
    }
    if media_type
        .as_deref()
        .is_some_and(|m| m.starts_with("application/x-amz-json-"))
    {
        return Err(AwsError::unknown_operation(
            "a JSON protocol request needs an X-Amz-Target header naming the operation",
        ));
    }
    detect_query(req, media_type.as_deref())
}

fn detect_json(target: &str, body: &[u8]) -> Result<Operation, AwsError> {
    let (service_target, operation) = target
        .trim()
        .rsplit_once('.')
        .filter(|(s, o)| !s.is_empty() && !o.is_empty())
        .ok_or_else(|| {
            AwsError::unknown_operation(format!(
                "X-Amz-Target `{target}` is not of the form `Service.Operation`"
            ))
        })?;
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(serde_json::Map::new())
    } else {
        serde_json::from_slice::<Value>(body).map_err(|e| {
            AwsError::serialization(format!("the request body is not valid JSON: {e}"))
        })?
    };
    if !body.is_object() {
        return Err(AwsError::serialization(
            "the request body must be a JSON object",
        ));
    }
    Ok(Operation::Json {
        service_target: service_target.to_owned(),
        operation: operation.to_owned(),
        body,
    })
}

/// Query-string parameters that carry a presigned URL's signature, not the operation's input.
const PRESIGN_PARAMS: [&str; 7] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
];

fn detect_query(req: &RequestParts<'_>, media_type: Option<&str>) -> Result<Operation, AwsError> {
    let mut pairs = decode_form(req.query, "the query string")?;
    if !req.body.is_empty() {
        match media_type {
            None | Some("application/x-www-form-urlencoded") => {}
            Some(other) => {
                return Err(AwsError::malformed_query_string(format!(
                    "a Query protocol body must be application/x-www-form-urlencoded, not `{other}`"
                )))
            }
        }
        let body = std::str::from_utf8(req.body).map_err(|e| {
            AwsError::malformed_query_string(format!(
                "the request body is not UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ))
        })?;
        pairs.extend(decode_form(body, "the request body")?);
    }
    pairs.retain(|(name, _)| !PRESIGN_PARAMS.contains(&name.as_str()));
    let mut params = QueryParams::from_pairs(pairs)?;
    let action = params
        .map
        .remove("Action")
        .filter(|a| !a.is_empty())
        .ok_or_else(AwsError::missing_action)?;
    let version = params.map.remove("Version");
    Ok(Operation::Query {
        action,
        version,
        params,
    })
}

/// Decodes `a=1&b=2` form text strictly: a malformed escape or text that is not UTF-8 once
/// decoded is refused with a message naming where.
fn decode_form(text: &str, source: &str) -> Result<Vec<(String, String)>, AwsError> {
    let mut out = Vec::new();
    for (raw_name, raw_value) in split_pairs(text) {
        let name = decode_component(raw_name, source)?;
        let value = decode_component(raw_value, source)?;
        out.push((name, value));
    }
    Ok(out)
}

fn decode_component(raw: &str, source: &str) -> Result<String, AwsError> {
    let bytes = form_decode(raw, true).map_err(|bad| {
        AwsError::malformed_query_string(format!(
            "{source} has a bad percent-encoding `{}` in `{raw}`: `%` must be followed by two \
             hex digits",
            bad.found
        ))
    })?;
    String::from_utf8(bytes).map_err(|_| {
        AwsError::malformed_query_string(format!(
            "{source} has `{raw}`, which is not UTF-8 once percent-decoded"
        ))
    })
}

/// Query protocol parameters by name, with readers for the two list encodings.
///
/// IAM and STS write lists as `Tags.member.1.Key` / `PolicyArns.member.1`; EC2 as
/// `ResourceId.1` / `Tag.1.Key` / `Filter.1.Value.1`. Both are `prefix.N[.field]` with N
/// counting from 1, so [`QueryParams::list`] and [`QueryParams::structs`] read either, given
/// the prefix (`Tags.member` or `Tag`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryParams {
    map: BTreeMap<String, String>,
}

impl QueryParams {
    /// Gathers decoded pairs; a name given twice is refused, since which one a service would
    /// use is anyone's guess.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Result<Self, AwsError> {
        let mut map = BTreeMap::new();
        for (name, value) in pairs {
            if map.contains_key(&name) {
                return Err(AwsError::malformed_query_string(format!(
                    "the parameter `{name}` is given more than once"
                )));
            }
            map.insert(name, value);
        }
        Ok(QueryParams { map })
    }

    /// A parameter's value, if present (possibly empty).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// A parameter that must be present, else `MissingParameter` naming it. An empty value
    /// counts as present: whether it is valid is the operation's to judge.
    pub fn required(&self, name: &str) -> Result<&str, AwsError> {
        // IAM, STS and EC2 all answer `MissingParameter`.
        self.get(name)
            .ok_or_else(|| AwsError::missing_parameter(Protocol::IAM, name))
    }

    /// The values of `prefix.1`, `prefix.2`, ... in index order, e.g. `list("PolicyArns.member")`
    /// or `list("ResourceId")`. Gaps are skipped; an empty list (IAM sends `Tags=`) is `[]`.
    pub fn list(&self, prefix: &str) -> Vec<&str> {
        let mut items: Vec<(u32, &str)> = self
            .indexed(prefix)
            .into_iter()
            .filter(|(_, rest, _)| rest.is_none())
            .map(|(n, _, v)| (n, v))
            .collect();
        items.sort_by_key(|&(n, _)| n);
        items.into_iter().map(|(_, v)| v).collect()
    }

    /// The members of `prefix.N.field` grouped by N in index order, each with the `prefix.N.`
    /// taken off: `structs("Tags.member")` gives `[{Key, Value}, ...]`; `structs("Filter")`
    /// gives `[{Name, Value.1, Value.2}, ...]`, whose values are then `list("Value")`.
    pub fn structs(&self, prefix: &str) -> Vec<QueryParams> {
        let mut groups: BTreeMap<u32, QueryParams> = BTreeMap::new();
        for (n, rest, value) in self.indexed(prefix) {
            if let Some(field) = rest {
                groups
                    .entry(n)
                    .or_default()
                    .map
                    .insert(field.to_owned(), value.to_owned());
            }
        }
        groups.into_values().collect()
    }

    /// Every parameter, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many parameters there are.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// `(N, Some(field) | None, value)` for every `prefix.N[.field]` parameter with N >= 1.
    fn indexed(&self, prefix: &str) -> Vec<(u32, Option<&str>, &str)> {
        self.map
            .iter()
            .filter_map(|(name, value)| {
                let after = name.strip_prefix(prefix)?.strip_prefix('.')?;
                let (index, rest) = match after.split_once('.') {
                    Some((index, rest)) => (index, Some(rest)),
                    None => (after, None),
                };
                if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let n: u32 = index.parse().ok().filter(|&n| n >= 1)?;
                if rest.is_some_and(str::is_empty) {
                    return None;
                }
                Some((n, rest, value.as_str()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(text: &str) -> QueryParams {
        QueryParams::from_pairs(decode_form(text, "test").unwrap()).unwrap()
    }

    #[test]
    fn reads_iam_lists() {
        let p = params(
            "Tags.member.2.Key=b&Tags.member.1.Key=a&Tags.member.1.Value=1&Tags.member.2.Value=2\
             &PolicyArns.member.10=z&PolicyArns.member.2=y&PolicyArns.member.1=x",
        );
        assert_eq!(p.list("PolicyArns.member"), ["x", "y", "z"]);
        let tags = p.structs("Tags.member");
        assert_eq!(tags.len(), 2);
        assert_eq!(
            (tags[0].get("Key"), tags[0].get("Value")),
            (Some("a"), Some("1"))
        );
        assert_eq!(
            (tags[1].get("Key"), tags[1].get("Value")),
            (Some("b"), Some("2"))
        );
    }

    #[test]
    fn reads_ec2_lists() {
        let p = params(
            "ResourceId.1=i-1&ResourceId.2=i-2&Tag.1.Key=Project&Tag.1.Value=test\
             &Filter.1.Name=tag%3AProject&Filter.1.Value.1=test&Filter.1.Value.2=prod",
        );
        assert_eq!(p.list("ResourceId"), ["i-1", "i-2"]);
        assert_eq!(p.structs("Tag")[0].get("Key"), Some("Project"));
        let filters = p.structs("Filter");
        assert_eq!(filters[0].get("Name"), Some("tag:Project"));
        assert_eq!(filters[0].list("Value"), ["test", "prod"]);
    }

    #[test]
    fn ignores_lookalike_keys() {
        let p = params("Tag.0=a&Tag.x=b&Tag.=c&Tags.1=d&Tag.1.=e&Tag.1=f");
        assert_eq!(p.list("Tag"), ["f"]);
        assert!(p.structs("Tag").is_empty());
        assert!(p.list("Nothing").is_empty());
    }

    #[test]
    fn empty_list_is_empty() {
        assert!(params("Tags=").structs("Tags.member").is_empty());
    }

    #[test]
    fn required_names_the_field() {
        let err = params("A=1").required("UserName").unwrap_err();
        assert_eq!(err.code, "MissingParameter");
        assert!(err.message.contains("UserName"));
        assert_eq!(params("UserName=").required("UserName").unwrap(), "");
    }

    #[test]
    fn duplicates_refused() {
        let pairs = decode_form("a=1&a=2", "test").unwrap();
        let err = QueryParams::from_pairs(pairs).unwrap_err();
        assert!(err.message.contains("`a`"), "{}", err.message);
    }
}
