//! EC2 over its Query dialect: instances (nodes registered under an `i-` id) and their tags.

use portcullis_aws_api::xml::{ec2_response, XmlWriter};
use portcullis_aws_api::QueryParams;
use portcullis_core::model::{Node, Tag};
use portcullis_core::ops_ec2::TagRemoval;
use portcullis_core::{Caller, Error, Result, Service};

fn ids(p: &QueryParams, prefix: &str) -> Vec<String> {
    p.list(prefix).into_iter().map(str::to_owned).collect()
}

fn tags(p: &QueryParams) -> Result<Vec<Tag>> {
    p.structs("Tag")
        .iter()
        .map(|t| {
            let key = t.get("Key").ok_or_else(|| {
                Error::invalid(
                    "MissingParameter",
                    "The request must contain the parameter Tag.N.Key",
                )
            })?;
            Ok(Tag::new(key, t.get("Value").unwrap_or_default()))
        })
        .collect()
}

/// `Filter.N.Name` / `Filter.N.Value.M`, applied to (instance id, tags).
struct Filters(Vec<(String, Vec<String>)>);

impl Filters {
    fn parse(p: &QueryParams) -> Result<Filters> {
        let mut out = Vec::new();
        for f in p.structs("Filter") {
            let name = f.get("Name").ok_or_else(|| {
                Error::invalid(
                    "MissingParameter",
                    "The request must contain the parameter Filter.N.Name",
                )
            })?;
            let known = name.starts_with("tag:")
                || matches!(
                    name,
                    "tag-key"
                        | "tag-value"
                        | "instance-id"
                        | "resource-id"
                        | "key"
                        | "value"
                        | "resource-type"
                );
            if !known {
                return Err(Error::invalid(
                    "InvalidParameterValue",
                    format!("The filter '{name}' is invalid"),
                ));
            }
            out.push((
                name.to_owned(),
                f.list("Value").into_iter().map(str::to_owned).collect(),
            ));
        }
        Ok(Filters(out))
    }

    /// Whether every filter accepts this resource (values of one filter are ORed).
    fn accept(&self, id: &str, tags: &[Tag]) -> bool {
        self.0.iter().all(|(name, values)| {
            let any = |f: &dyn Fn(&str) -> bool| values.iter().any(|v| f(v));
            match name.as_str() {
                "instance-id" | "resource-id" => any(&|v| v == id),
                "resource-type" => any(&|v| v == "instance"),
                "tag-key" | "key" => any(&|v| tags.iter().any(|t| t.key == v)),
                "tag-value" | "value" => any(&|v| tags.iter().any(|t| t.value == v)),
                tag => {
                    let key = tag.trim_start_matches("tag:");
                    any(&|v| tags.iter().any(|t| t.key == key && t.value == v))
                }
            }
        })
    }
}

fn write_tag_set(w: &mut XmlWriter, tags: &[Tag]) {
    w.start("tagSet");
    for t in tags {
        w.start("item")
            .element("key", &t.key)
            .element("value", &t.value)
            .end();
    }
    w.end();
}

fn write_instance(w: &mut XmlWriter, node: &Node, tags: &[Tag], online: bool) {
    w.start("item")
        .element("instanceId", &node.id)
        .start("instanceState")
        .element("code", if online { "16" } else { "80" })
        .element("name", if online { "running" } else { "stopped" })
        .end()
        .element("privateIpAddress", &node.ip_address)
        .element("platformDetails", &node.platform);
    write_tag_set(w, tags);
    w.end();
}

/// Answers an EC2 action; the XML body on success.
pub async fn handle(
    svc: &Service,
    caller: &Caller,
    action: &str,
    p: &QueryParams,
) -> Result<String> {
    let rid = caller.request_id.as_str();
    Ok(match action {
        "DescribeInstances" => {
            let filters = Filters::parse(p)?;
            let found = svc
                .describe_instances(caller, &ids(p, "InstanceId"))
                .await?;
            let account = svc.account().id.clone();
            ec2_response(action, rid, |w| {
                w.start("reservationSet");
                for (node, tags) in found.iter().filter(|(n, t)| filters.accept(&n.id, t)) {
                    let online = svc.is_online(node);
                    w.start("item")
                        .element(
                            "reservationId",
                            &format!("r-{}", node.id.trim_start_matches("i-")),
                        )
                        .element("ownerId", &account)
                        .start("instancesSet");
                    write_instance(w, node, tags, online);
                    w.end().end();
                }
                w.end();
            })
        }
        "CreateTags" => {
            svc.create_tags(caller, &ids(p, "ResourceId"), &tags(p)?)
                .await?;
            ec2_response(action, rid, |w| {
                w.element("return", "true");
            })
        }
        "DeleteTags" => {
            let removals: Vec<TagRemoval> = p
                .structs("Tag")
                .iter()
                .filter_map(|t| {
                    Some(TagRemoval {
                        key: t.get("Key")?.to_owned(),
                        value: t.get("Value").map(str::to_owned),
                    })
                })
                .collect();
            svc.delete_tags(caller, &ids(p, "ResourceId"), &removals)
                .await?;
            ec2_response(action, rid, |w| {
                w.element("return", "true");
            })
        }
        "DescribeTags" => {
            let filters = Filters::parse(p)?;
            let all = svc.describe_tags(caller).await?;
            ec2_response(action, rid, |w| {
                w.start("tagSet");
                for (id, tag) in &all {
                    if !filters.accept(id, std::slice::from_ref(tag)) {
                        continue;
                    }
                    w.start("item")
                        .element("resourceId", id)
                        .element("resourceType", "instance")
                        .element("key", &tag.key)
                        .element("value", &tag.value)
                        .end();
                }
                w.end();
            })
        }
        other => {
            return Err(Error::invalid(
                "InvalidAction",
                format!("The action {other} is not valid for this web service."),
            ))
        }
    })
}
