//! Systems Manager over AWS JSON 1.1: Session Manager, nodes, activations, tags.

use portcullis_core::model::{Activation, Session, SessionStatus, Tag};
use portcullis_core::ops_ssm::{NewActivation, StreamGrant};
use portcullis_core::store::SessionFilter;
use portcullis_core::{Caller, Error, Result, Service};
use serde_json::{json, Value};

/// How the server is reached, to build `StreamUrl`s clients can open.
pub struct Endpoint<'a> {
    /// `Host` as the client sent it.
    pub host: &'a str,
    /// The server: whether it serves TLS (`wss:`), its channels (to tell agents about
    /// sessions started and terminated), its limits on sessions.
    pub state: &'a std::sync::Arc<crate::AppState>,
}

/// A JSON 1.1 field of the wrong type (`SerializationException`, as AWS's JSON services).
pub(crate) fn type_error(field: &str, want: &str) -> Error {
    Error::invalid(
        "SerializationException",
        format!("`{field}` must be {want}"),
    )
}

fn missing(field: &str) -> Error {
    let lower = lower_first(field);
    Error::invalid(
        "ValidationException",
        format!("1 validation error detected: Value null at '{lower}' failed to satisfy constraint: Member must not be null"),
    )
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_lowercase().chain(c).collect())
        .unwrap_or_default()
}

/// An optional string field of a JSON 1.1 body.
pub(crate) fn opt_str<'a>(body: &'a Value, field: &str) -> Result<Option<&'a str>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(type_error(field, "a string")),
    }
}

fn req_str<'a>(body: &'a Value, field: &str) -> Result<&'a str> {
    opt_str(body, field)?.ok_or_else(|| missing(field))
}

fn opt_u32(body: &Value, field: &str) -> Result<Option<u32>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| type_error(field, "a non-negative integer")),
    }
}

/// JSON 1.1 timestamps are seconds since the epoch, as a number.
fn opt_time(body: &Value, field: &str) -> Result<Option<i64>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|t| t.is_finite() && t.abs() < 1e12)
            .map(|t| Some(t as i64))
            .ok_or_else(|| type_error(field, "a timestamp (seconds since the epoch)")),
    }
}

fn tags(body: &Value, field: &str) -> Result<Vec<Tag>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| {
                Ok(Tag::new(
                    req_str(t, "Key")?,
                    opt_str(t, "Value")?.unwrap_or_default(),
                ))
            })
            .collect(),
        Some(_) => Err(type_error(field, "a list of {Key, Value} objects")),
    }
}

fn strings(body: &Value, field: &str) -> Result<Vec<String>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| type_error(field, "a list of strings"))
            })
            .collect(),
        Some(_) => Err(type_error(field, "a list of strings")),
    }
}

/// Tags as AWS lists them: `[{"Key": ..., "Value": ...}]`.
pub(crate) fn tag_list(tags: &[Tag]) -> Value {
    Value::Array(
        tags.iter()
            .map(|t| json!({"Key": t.key, "Value": t.value}))
            .collect(),
    )
}

pub(crate) fn stream(grant: &StreamGrant, at: &Endpoint<'_>) -> Value {
    let scheme = if at.state.tls { "wss" } else { "ws" };
    json!({
        "SessionId": grant.session_id,
        "TokenValue": grant.token,
        "StreamUrl": format!("{scheme}://{}/v1/data-channel/{}?role=publish_subscribe", at.host, grant.session_id),
    })
}

fn session_json(s: &Session) -> Value {
    let mut v = json!({
        "SessionId": s.id,
        "Target": s.target,
        "Status": s.status.as_str(),
        "StartDate": s.started,
        "DocumentName": s.document,
        "Owner": s.owner,
    });
    if let Some(obj) = v.as_object_mut() {
        if let Some(end) = s.ended {
            obj.insert("EndDate".into(), json!(end));
        }
        if !s.reason.is_empty() {
            obj.insert("Reason".into(), json!(s.reason));
        }
    }
    v
}

pub(crate) fn activation_json(a: &Activation) -> Value {
    json!({
        "ActivationId": a.id,
        "Description": a.description,
        "DefaultInstanceName": a.default_instance_name,
        "IamRole": a.iam_role,
        "RegistrationLimit": a.registration_limit,
        "RegistrationsCount": a.registrations_count,
        "ExpirationDate": a.expiration,
        "Expired": a.expiration < portcullis_core::service::now(),
        "CreatedDate": a.created,
        "Tags": tag_list(&a.tags),
    })
}

/// `DescribeSessions` filters: `{key, value}` with keys InvokedAfter, InvokedBefore, Target,
/// Owner, Status, SessionId.
fn session_filter(body: &Value) -> Result<SessionFilter> {
    let state = req_str(body, "State")?;
    let mut filter = SessionFilter {
        active: match state {
            "Active" => true,
            "History" => false,
            other => {
                return Err(Error::invalid(
                    "ValidationException",
                    format!("1 validation error detected: Value '{other}' at 'state' failed to satisfy constraint: Member must satisfy enum value set: [Active, History]"),
                ))
            }
        },
        ..SessionFilter::default()
    };
    let filters = match body.get("Filters") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(_) => return Err(type_error("Filters", "a list of {key, value} objects")),
    };
    for f in &filters {
        let key = req_str(f, "key")?;
        let value = req_str(f, "value")?;
        let date = || {
            iso_to_epoch(value).ok_or_else(|| {
                Error::invalid(
                    "InvalidFilterValue",
                    format!(
                        "The filter value {value} is not a valid date (use 2018-08-29T00:00:00Z)."
                    ),
                )
            })
        };
        match key {
            "InvokedAfter" => filter.started_after = Some(date()?),
            "InvokedBefore" => filter.started_before = Some(date()?),
            "Target" => filter.target = Some(value.to_owned()),
            "Owner" => filter.owner = Some(value.to_owned()),
            "SessionId" => filter.session_id = Some(value.to_owned()),
            "Status" => {
                filter.status = Some(SessionStatus::parse(value).ok_or_else(|| {
                    Error::invalid(
                        "InvalidFilterValue",
                        format!("The filter value {value} is not a valid session status."),
                    )
                })?)
            }
            other => {
                return Err(Error::invalid(
                    "InvalidFilterKey",
                    format!("The filter key {other} is not valid."),
                ))
            }
        }
    }
    Ok(filter)
}

/// Seconds since the epoch for an ISO 8601 time or epoch seconds.
fn iso_to_epoch(s: &str) -> Option<i64> {
    portcullis_iam::parse_date_millis(s).map(|ms| ms.div_euclid(1000))
}

/// Pages a list with an opaque `NextToken` (the offset) and `MaxResults`.
fn page(items: Vec<Value>, body: &Value, max_default: u32) -> Result<(Vec<Value>, Option<String>)> {
    let max = opt_u32(body, "MaxResults")?
        .unwrap_or(max_default)
        .clamp(1, 200) as usize;
    let start = match opt_str(body, "NextToken")? {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|&n| n <= items.len())
            .ok_or_else(|| {
                Error::invalid("InvalidNextToken", "The specified token is not valid.")
            })?,
    };
    let end = (start + max).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    Ok((
        items.into_iter().skip(start).take(end - start).collect(),
        next,
    ))
}

fn with_next(mut v: Value, next: Option<String>) -> Value {
    if let (Some(obj), Some(next)) = (v.as_object_mut(), next) {
        obj.insert("NextToken".into(), json!(next));
    }
    v
}

/// Answers an SSM operation; the JSON body on success.
pub async fn handle(
    svc: &Service,
    caller: &Caller,
    operation: &str,
    body: &Value,
    at: &Endpoint<'_>,
) -> Result<Value> {
    Ok(match operation {
        "StartSession" => {
            let target = req_str(body, "Target")?;
            let document = opt_str(body, "DocumentName")?;
            let grant = svc
                .start_session(caller, target, document, opt_str(body, "Reason")?)
                .await?;
            let document = document.unwrap_or(portcullis_core::ops_ssm::DEFAULT_SESSION_DOCUMENT);
            crate::channels::session_started(at.state, target, &grant.session_id, document);
            stream(&grant, at)
        }
        "ResumeSession" => stream(
            &svc.resume_session(caller, req_str(body, "SessionId")?)
                .await?,
            at,
        ),
        "TerminateSession" => {
            let session = svc
                .terminate_session(caller, req_str(body, "SessionId")?)
                .await?;
            at.state.hub.terminate_session(&session.target, &session.id);
            json!({"SessionId": session.id})
        }
        "DescribeSessions" => {
            let filter = session_filter(body)?;
            let sessions: Vec<Value> = svc
                .describe_sessions(caller, &filter)
                .await?
                .iter()
                .map(session_json)
                .collect();
            let (sessions, next) = page(sessions, body, 50)?;
            with_next(json!({"Sessions": sessions}), next)
        }
        "GetConnectionStatus" => {
            let target = req_str(body, "Target")?;
            let connected = svc.get_connection_status(caller, target).await?;
            json!({"Target": target, "Status": if connected { "connected" } else { "notconnected" }})
        }
        "DescribeInstanceInformation" => {
            let nodes: Vec<Value> = svc
                .describe_instance_information(caller)
                .await?
                .iter()
                .map(|info| {
                    let n = &info.node;
                    json!({
                        "InstanceId": n.id,
                        "PingStatus": if info.online { "Online" } else { "ConnectionLost" },
                        "LastPingDateTime": n.last_ping,
                        "AgentVersion": n.agent_version,
                        "IsLatestVersion": true,
                        "PlatformType": "Linux",
                        "PlatformName": n.platform,
                        "ActivationId": n.activation_id,
                        "RegistrationDate": n.registered,
                        "ResourceType": match n.kind {
                            portcullis_core::model::NodeKind::Ec2Instance => "EC2Instance",
                            portcullis_core::model::NodeKind::ManagedInstance => "ManagedInstance",
                        },
                        "Name": n.name,
                        "ComputerName": n.name,
                        "IPAddress": n.ip_address,
                    })
                })
                .collect();
            let (nodes, next) = page(nodes, body, 50)?;
            with_next(json!({"InstanceInformationList": nodes}), next)
        }
        "CreateActivation" => {
            let new = NewActivation {
                iam_role: req_str(body, "IamRole")?.to_owned(),
                description: opt_str(body, "Description")?.unwrap_or_default().to_owned(),
                default_instance_name: opt_str(body, "DefaultInstanceName")?
                    .unwrap_or_default()
                    .to_owned(),
                registration_limit: opt_u32(body, "RegistrationLimit")?,
                expiration: opt_time(body, "ExpirationDate")?,
                tags: tags(body, "Tags")?,
            };
            let (activation, code) = svc.create_activation(caller, &new).await?;
            json!({"ActivationId": activation.id, "ActivationCode": code})
        }
        "DescribeActivations" => {
            let list: Vec<Value> = svc
                .describe_activations(caller)
                .await?
                .iter()
                .map(activation_json)
                .collect();
            let (list, next) = page(list, body, 50)?;
            with_next(json!({"ActivationList": list}), next)
        }
        "DeleteActivation" => {
            svc.delete_activation(caller, req_str(body, "ActivationId")?)
                .await?;
            json!({})
        }
        "DeregisterManagedInstance" => {
            svc.deregister_node(caller, req_str(body, "InstanceId")?)
                .await?;
            json!({})
        }
        "AddTagsToResource" => {
            svc.add_tags_to_resource(
                caller,
                req_str(body, "ResourceType")?,
                req_str(body, "ResourceId")?,
                &tags(body, "Tags")?,
            )
            .await?;
            json!({})
        }
        "RemoveTagsFromResource" => {
            svc.remove_tags_from_resource(
                caller,
                req_str(body, "ResourceType")?,
                req_str(body, "ResourceId")?,
                &strings(body, "TagKeys")?,
            )
            .await?;
            json!({})
        }
        "ListTagsForResource" => {
            let tags = svc
                .list_tags_for_resource(
                    caller,
                    req_str(body, "ResourceType")?,
                    req_str(body, "ResourceId")?,
                )
                .await?;
            json!({"TagList": tag_list(&tags)})
        }
        other => {
            return Err(Error::invalid(
                "UnknownOperationException",
                format!("The operation {other} is not supported by this server."),
            ))
        }
    })
}
