//! Session logs through CloudWatch Logs' API (JSON 1.1, `X-Amz-Target: Logs_20140328.*`,
//! SigV4 service `logs`), as Session Manager streams them to CloudWatch: one log group,
//! [`LOG_GROUP`], with a log stream per session named by its session id. So the stock
//! `aws logs describe-log-streams`, `aws logs get-log-events` and `aws logs
//! filter-log-events` (every session's output, with a filter pattern) read them, and IAM
//! policies decide who may, down to the stream:
//! `arn:aws:logs:REGION:ACCOUNT:log-group:/portcullis/sessions:log-stream:${aws:username}-*`
//! lets users read only their own sessions.
//!
//! Authorization follows the Service Authorization Reference: `GetLogEvents` on the
//! log-stream ARN; `DescribeLogStreams` on the log group, which AWS evaluates as
//! `...:log-group:NAME:log-stream:` (so `log-group:NAME:*` matches it, the exact
//! `log-group:NAME` does not, as on AWS), and `FilterLogEvents` likewise;
//! `DescribeLogGroups` on `...:log-group::log-stream:`.
//! Each is authorized before anything is looked up.

use portcullis_core::{Caller, Error, Result, Service};
use serde_json::{json, Value};

use crate::session_log::{Event, SessionLogs};
use crate::ssm_api::{opt_str, type_error};

/// The log group of session logs.
pub const LOG_GROUP: &str = "/portcullis/sessions";
/// GetLogEvents' page: at most this many events and about this many bytes (AWS: 10,000
/// events, 1 MB).
const MAX_EVENTS: usize = 10_000;
const MAX_PAGE_BYTES: u64 = 1024 * 1024;
/// How many bytes of log one FilterLogEvents call reads at most; the rest is for the
/// next call (AWS also returns partial, even empty, pages with a token).
const SCAN_BYTES: u64 = 32 * 1024 * 1024;
/// DescribeLogStreams' and DescribeLogGroups' largest page (AWS: 50).
const MAX_STREAMS: usize = 50;

/// Runs `operation`; the JSON answer. It reads the log's index and at most a page of it
/// (about a megabyte) from disk, on the calling thread.
pub fn handle(
    svc: &Service,
    caller: &Caller,
    operation: &str,
    body: &Value,
    logs: Option<&SessionLogs>,
) -> Result<Value> {
    let account = svc.account();
    let arn_prefix = format!("arn:aws:logs:{}:{}:log-group:", account.region, account.id);
    match operation {
        "DescribeLogGroups" => describe_log_groups(svc, caller, body, logs, &arn_prefix),
        "DescribeLogStreams" => describe_log_streams(svc, caller, body, logs, &arn_prefix),
        "FilterLogEvents" => filter_log_events(svc, caller, body, logs, &arn_prefix),
        "GetLogEvents" => get_log_events(svc, caller, body, logs, &arn_prefix),
        _ => Err(Error::invalid(
            "UnknownOperationException",
            format!(
                "`Logs_20140328.{operation}` is not served here (DescribeLogGroups, DescribeLogStreams, GetLogEvents, FilterLogEvents)"
            ),
        )),
    }
}

fn describe_log_groups(
    svc: &Service,
    caller: &Caller,
    body: &Value,
    logs: Option<&SessionLogs>,
    arn_prefix: &str,
) -> Result<Value> {
    let prefix = opt_str(body, "logGroupNamePrefix")?.unwrap_or("");
    let pattern = opt_str(body, "logGroupNamePattern")?;
    if !prefix.is_empty() && pattern.is_some() {
        return Err(invalid(
            "logGroupNamePrefix and logGroupNamePattern are mutually exclusive.",
        ));
    }
    let limit = limit(body, MAX_STREAMS)?;
    svc.authorize(
        caller,
        "logs:DescribeLogGroups",
        &format!("{arn_prefix}:log-stream:"),
        &[],
        &[],
    )?;
    let shown = logs.is_some()
        && limit > 0
        && LOG_GROUP.starts_with(prefix)
        && pattern.is_none_or(|p| LOG_GROUP.contains(p));
    let groups: Vec<Value> = shown
        .then(|| {
            json!({
                "logGroupName": LOG_GROUP,
                "creationTime": svc.account().created * 1000,
                "metricFilterCount": 0,
                "arn": format!("{arn_prefix}{LOG_GROUP}:*"),
                "logGroupArn": format!("{arn_prefix}{LOG_GROUP}"),
                "storedBytes": 0,
                "logGroupClass": "STANDARD",
            })
        })
        .into_iter()
        .collect();
    Ok(json!({ "logGroups": groups }))
}

fn describe_log_streams(
    svc: &Service,
    caller: &Caller,
    body: &Value,
    logs: Option<&SessionLogs>,
    arn_prefix: &str,
) -> Result<Value> {
    let group = log_group(body, arn_prefix)?;
    let prefix = opt_str(body, "logStreamNamePrefix")?;
    let by_time = match opt_str(body, "orderBy")? {
        None | Some("LogStreamName") => false,
        Some("LastEventTime") => true,
        Some(other) => {
            return Err(invalid(format!(
                "orderBy must be LogStreamName or LastEventTime, not {other}."
            )))
        }
    };
    if by_time && prefix.is_some() {
        return Err(invalid(
            "Cannot order by LastEventTime with a logStreamNamePrefix.",
        ));
    }
    let descending = opt_bool(body, "descending")?.unwrap_or(false);
    let limit = limit(body, MAX_STREAMS)?;
    let from = position_token(body, "s/")?;
    // A log-group action: AWS evaluates it on the group's ARN with an empty stream.
    svc.authorize(
        caller,
        "logs:DescribeLogStreams",
        &group_arn(arn_prefix, group),
        &[],
        &[],
    )?;
    let logs = existing_group(logs, group)?;
    let mut streams = Vec::new();
    for name in logs.sessions().map_err(io_error)? {
        if prefix.is_some_and(|p| !name.starts_with(p)) {
            continue;
        }
        let events = logs.events(&name).map_err(io_error)?.unwrap_or_default();
        streams.push((name, events));
    }
    if by_time {
        streams
            .sort_by_key(|(name, events)| (events.last().map_or(0, |e| e.timestamp), name.clone()));
    }
    if descending {
        streams.reverse();
    }
    let page: Vec<Value> = streams
        .iter()
        .skip(from)
        .take(limit)
        .map(|(name, events)| stream_json(arn_prefix, group, name, events))
        .collect();
    let next = from + page.len();
    let mut out = serde_json::Map::new();
    out.insert("logStreams".into(), Value::Array(page));
    if next < streams.len() {
        out.insert("nextToken".into(), json!(format!("s/{next}")));
    }
    Ok(Value::Object(out))
}

fn filter_log_events(
    svc: &Service,
    caller: &Caller,
    body: &Value,
    logs: Option<&SessionLogs>,
    arn_prefix: &str,
) -> Result<Value> {
    let group = log_group(body, arn_prefix)?;
    let names = opt_str_list(body, "logStreamNames")?;
    let prefix = opt_str(body, "logStreamNamePrefix")?;
    if names.is_some() && prefix.is_some() {
        return Err(invalid(
            "logStreamNames and logStreamNamePrefix are mutually exclusive.",
        ));
    }
    let start_time = opt_i64(body, "startTime")?;
    let end_time = opt_i64(body, "endTime")?;
    let limit = limit(body, MAX_EVENTS)?;
    let pattern = FilterPattern::parse(opt_str(body, "filterPattern")?.unwrap_or(""))?;
    let from = position_token(body, "o/")?;
    // A log-group action: AWS evaluates it on the group's ARN with an empty stream.
    svc.authorize(
        caller,
        "logs:FilterLogEvents",
        &group_arn(arn_prefix, group),
        &[],
        &[],
    )?;
    let logs = existing_group(logs, group)?;
    // Every event of the chosen streams in the time range, oldest first (only the
    // index: a few dozen bytes each); a token is a position in that order (events
    // only ever join at its end). Then their bytes are read one by one from the
    // token on, until the page is full or a call has read SCAN_BYTES: a pattern
    // that matches little costs a few calls, never the server's memory.
    let mut candidates = Vec::new();
    for name in logs.sessions().map_err(io_error)? {
        let chosen = match (&names, prefix) {
            (Some(names), _) => names.contains(&name.as_str()),
            (None, Some(p)) => name.starts_with(p),
            (None, None) => true,
        };
        if !chosen {
            continue;
        }
        let events = logs.events(&name).map_err(io_error)?.unwrap_or_default();
        let name = std::sync::Arc::new(name);
        for (index, event) in events.into_iter().enumerate() {
            if start_time.is_none_or(|t| event.timestamp >= t)
                && end_time.is_none_or(|t| event.timestamp < t)
            {
                candidates.push((event, std::sync::Arc::clone(&name), index));
            }
        }
    }
    candidates.sort_by(|a, b| (a.0.timestamp, &a.1, a.2).cmp(&(b.0.timestamp, &b.1, b.2)));
    let mut page = Vec::new();
    let (mut page_bytes, mut scanned) = (0, 0);
    let mut at = from.min(candidates.len());
    while let Some((event, stream, index)) = candidates.get(at) {
        if page.len() >= limit || page_bytes >= MAX_PAGE_BYTES || scanned >= SCAN_BYTES {
            break;
        }
        let bytes = logs
            .read(stream, std::slice::from_ref(event))
            .map_err(io_error)?
            .concat();
        scanned += bytes.len() as u64;
        let message = String::from_utf8_lossy(&bytes);
        if pattern.matches(&message) {
            page_bytes += bytes.len() as u64;
            page.push(json!({
                "logStreamName": stream.as_str(),
                "timestamp": event.timestamp,
                "message": message,
                "ingestionTime": event.ingestion_time,
                "eventId": format!("{stream}/{index}"),
            }));
        }
        at += 1;
    }
    let mut out = serde_json::Map::new();
    out.insert("events".into(), Value::Array(page));
    out.insert("searchedLogStreams".into(), json!([]));
    if at < candidates.len() {
        out.insert("nextToken".into(), json!(format!("o/{at}")));
    }
    Ok(Value::Object(out))
}

fn get_log_events(
    svc: &Service,
    caller: &Caller,
    body: &Value,
    logs: Option<&SessionLogs>,
    arn_prefix: &str,
) -> Result<Value> {
    let group = log_group(body, arn_prefix)?;
    let stream = req_str(body, "logStreamName")?;
    let start_time = opt_i64(body, "startTime")?;
    let end_time = opt_i64(body, "endTime")?;
    let limit = limit(body, MAX_EVENTS)?;
    let from_head = opt_bool(body, "startFromHead")?.unwrap_or(false);
    let token = opt_str(body, "nextToken")?
        .map(|t| Token::parse(t).ok_or_else(|| invalid("The specified nextToken is invalid.")))
        .transpose()?;
    svc.authorize(
        caller,
        "logs:GetLogEvents",
        &format!("{arn_prefix}{group}:log-stream:{stream}"),
        &[],
        &[],
    )?;
    let logs = existing_group(logs, group)?;
    let events = logs
        .events(stream)
        .map_err(io_error)?
        .ok_or_else(|| not_found("The specified log stream does not exist."))?;
    let events: Vec<Event> = events
        .into_iter()
        .filter(|e| start_time.is_none_or(|t| e.timestamp >= t))
        .filter(|e| end_time.is_none_or(|t| e.timestamp < t))
        .collect();
    // A page is a range [first, last) of the (filtered) events.
    let total = events.len();
    let forward = match token {
        Some(Token::Forward(at)) => Some(at.min(total)),
        Some(Token::Backward(_)) => None,
        None if from_head => Some(0),
        None => None,
    };
    let (first, last) = match (forward, token) {
        (Some(at), _) => {
            let last = page_end(&events, at, limit);
            (at, last)
        }
        (None, Some(Token::Backward(at))) => {
            let at = at.min(total);
            (page_start(&events, at, limit), at)
        }
        (None, _) => (page_start(&events, total, limit), total),
    };
    let page = events.get(first..last).unwrap_or_default();
    let bytes = logs.read(stream, page).map_err(io_error)?;
    let json_events: Vec<Value> = page
        .iter()
        .zip(bytes)
        .map(|(e, bytes)| {
            json!({
                "timestamp": e.timestamp,
                "message": String::from_utf8_lossy(&bytes),
                "ingestionTime": e.ingestion_time,
            })
        })
        .collect();
    Ok(json!({
        "events": json_events,
        "nextForwardToken": format!("f/{last:020}"),
        "nextBackwardToken": format!("b/{first:020}"),
    }))
}

/// CloudWatch Logs' filter pattern for unstructured text, the part of it that fits
/// terminal output: terms and "quoted phrases" that must all appear, `-term` that must not,
/// and `?term` of which one must (case-sensitive, as AWS matches). JSON (`{ $.x = ... }`)
/// and space-delimited (`[a, b]`) patterns are refused: session output is neither.
#[derive(Debug, Default, PartialEq, Eq)]
struct FilterPattern {
    all: Vec<String>,
    none: Vec<String>,
    any: Vec<String>,
}

impl FilterPattern {
    fn parse(pattern: &str) -> Result<FilterPattern> {
        let pattern = pattern.trim();
        if pattern.starts_with('{') || pattern.starts_with('[') {
            return Err(invalid(
                "Only term filter patterns (words, \"phrases\", -exclusions, ?alternatives) are supported for session logs.",
            ));
        }
        let mut out = FilterPattern::default();
        let mut rest = pattern;
        loop {
            rest = rest.trim_start();
            let Some(first) = rest.chars().next() else {
                break;
            };
            let (kind, body) = match first {
                '-' | '?' => (Some(first), rest.get(1..).unwrap_or_default()),
                _ => (None, rest),
            };
            let (term, after) = if let Some(quoted) = body.strip_prefix('"') {
                let end = quoted
                    .find('"')
                    .ok_or_else(|| invalid("The filter pattern has an unclosed quote."))?;
                (
                    quoted.get(..end).unwrap_or_default(),
                    quoted.get(end + 1..).unwrap_or_default(),
                )
            } else {
                let end = body.find(char::is_whitespace).unwrap_or(body.len());
                (
                    body.get(..end).unwrap_or_default(),
                    body.get(end..).unwrap_or_default(),
                )
            };
            if !term.is_empty() {
                let list = match kind {
                    Some('-') => &mut out.none,
                    Some(_) => &mut out.any,
                    None => &mut out.all,
                };
                list.push(term.to_owned());
            }
            rest = after;
        }
        Ok(out)
    }

    fn matches(&self, message: &str) -> bool {
        self.all.iter().all(|t| message.contains(t.as_str()))
            && !self.none.iter().any(|t| message.contains(t.as_str()))
            && (self.any.is_empty() || self.any.iter().any(|t| message.contains(t.as_str())))
    }
}

/// Where a GetLogEvents page starts or ends, as AWS's `f/...` and `b/...` tokens say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Forward(usize),
    Backward(usize),
}

impl Token {
    fn parse(token: &str) -> Option<Token> {
        let (kind, at) = token.split_once('/')?;
        let at = at.parse().ok()?;
        match kind {
            "f" => Some(Token::Forward(at)),
            "b" => Some(Token::Backward(at)),
            _ => None,
        }
    }
}

/// The end of a page that starts at `first`: up to `limit` events and about a megabyte.
fn page_end(events: &[Event], first: usize, limit: usize) -> usize {
    let mut bytes = 0;
    let mut last = first;
    for e in events.iter().skip(first).take(limit) {
        bytes += e.end - e.start;
        if bytes > MAX_PAGE_BYTES && last > first {
            break;
        }
        last += 1;
    }
    last
}

/// The start of a page that ends at `last`.
fn page_start(events: &[Event], last: usize, limit: usize) -> usize {
    let mut bytes = 0;
    let mut first = last;
    for e in events.iter().take(last).rev().take(limit) {
        bytes += e.end - e.start;
        if bytes > MAX_PAGE_BYTES && first < last {
            break;
        }
        first -= 1;
    }
    first
}

/// The resource a log-group action is authorized on (see the module docs).
fn group_arn(arn_prefix: &str, group: &str) -> String {
    format!("{arn_prefix}{group}:log-stream:")
}

/// A `nextToken` that is a position in a listing, written `{prefix}{position}`; 0 without.
fn position_token(body: &Value, prefix: &str) -> Result<usize> {
    match opt_str(body, "nextToken")? {
        None => Ok(0),
        Some(token) => token
            .strip_prefix(prefix)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| invalid("The specified nextToken is invalid.")),
    }
}

fn stream_json(arn_prefix: &str, group: &str, name: &str, events: &[Event]) -> Value {
    let mut stream = serde_json::Map::new();
    stream.insert("logStreamName".into(), json!(name));
    stream.insert(
        "creationTime".into(),
        json!(events.first().map_or(0, |e| e.timestamp)),
    );
    stream.insert(
        "arn".into(),
        json!(format!("{arn_prefix}{group}:log-stream:{name}")),
    );
    stream.insert("storedBytes".into(), json!(0));
    if let (Some(first), Some(last)) = (events.first(), events.last()) {
        stream.insert("firstEventTimestamp".into(), json!(first.timestamp));
        stream.insert("lastEventTimestamp".into(), json!(last.timestamp));
        stream.insert("lastIngestionTime".into(), json!(last.ingestion_time));
    }
    Value::Object(stream)
}

/// The log group a request names, by `logGroupName` or `logGroupIdentifier` (a name or an
/// ARN), exactly one of them.
fn log_group<'a>(body: &'a Value, arn_prefix: &str) -> Result<&'a str> {
    match (
        opt_str(body, "logGroupName")?,
        opt_str(body, "logGroupIdentifier")?,
    ) {
        (Some(name), None) => Ok(name),
        (None, Some(id)) => {
            let name = id.strip_prefix(arn_prefix).unwrap_or(id);
            Ok(name.strip_suffix(":*").unwrap_or(name))
        }
        (Some(_), Some(_)) => Err(invalid(
            "LogGroupName and LogGroupIdentifier are mutually exclusive parameters.",
        )),
        (None, None) => Err(invalid(
            "Either LogGroupName or LogGroupIdentifier must be specified.",
        )),
    }
}

fn existing_group<'a>(logs: Option<&'a SessionLogs>, group: &str) -> Result<&'a SessionLogs> {
    logs.filter(|_| group == LOG_GROUP)
        .ok_or_else(|| not_found("The specified log group does not exist."))
}

fn limit(body: &Value, max: usize) -> Result<usize> {
    match body.get("limit") {
        None | Some(Value::Null) => Ok(max),
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                invalid(format!(
                    "1 validation error detected: Value '{v}' at 'limit' failed to satisfy constraint: Member must have value between 1 and {max}"
                ))
            }),
    }
}

fn opt_str_list<'a>(body: &'a Value, field: &str) -> Result<Option<Vec<&'a str>>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| type_error(field, "a list of strings"))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some),
        Some(_) => Err(type_error(field, "a list of strings")),
    }
}

fn req_str<'a>(body: &'a Value, field: &str) -> Result<&'a str> {
    opt_str(body, field)?.ok_or_else(|| {
        invalid(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

fn opt_bool(body: &Value, field: &str) -> Result<Option<bool>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(type_error(field, "true or false")),
    }
}

fn opt_i64(body: &Value, field: &str) -> Result<Option<i64>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or_else(|| type_error(field, "milliseconds since the epoch")),
    }
}

fn invalid(message: impl Into<String>) -> Error {
    Error::invalid("InvalidParameterException", message)
}

fn not_found(message: &str) -> Error {
    Error::new(400, "ResourceNotFoundException", message)
}

fn io_error(e: std::io::Error) -> Error {
    tracing::error!(error = %e, "reading session logs");
    Error::internal()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(sizes: &[u64]) -> Vec<Event> {
        let mut start = 0;
        sizes
            .iter()
            .enumerate()
            .map(|(i, size)| {
                let e = Event {
                    start,
                    end: start + size,
                    timestamp: i as i64,
                    ingestion_time: i as i64,
                };
                start += size;
                e
            })
            .collect()
    }

    #[test]
    fn filter_patterns_match_terms_phrases_exclusions_and_alternatives() {
        let p = |s: &str| FilterPattern::parse(s).unwrap();
        assert!(p("").matches("anything"));
        assert!(p("sudo rm").matches("$ sudo rm -rf /tmp/x"));
        assert!(!p("sudo rm").matches("$ sudo ls"));
        assert!(p("\"rm -rf\"").matches("rm -rf /"));
        assert!(!p("\"rm -rf\"").matches("rm -r -f /"));
        assert!(!p("sudo -ls").matches("sudo ls"));
        assert!(p("?passwd ?shadow").matches("cat /etc/shadow"));
        assert!(!p("?passwd ?shadow").matches("cat /etc/hosts"));
        assert!(!p("Sudo").matches("sudo"), "case-sensitive, as AWS");
        for bad in ["{ $.user = \"a\" }", "[ip, user]", "\"open"] {
            assert_eq!(
                FilterPattern::parse(bad).unwrap_err().code,
                "InvalidParameterException",
                "{bad}"
            );
        }
    }

    #[test]
    fn tokens_read_as_written() {
        assert_eq!(
            Token::parse("f/00000000000000000007"),
            Some(Token::Forward(7))
        );
        assert_eq!(Token::parse("b/3"), Some(Token::Backward(3)));
        for bad in ["", "f/", "x/1", "f/-1", "f1", "b/1/2"] {
            assert_eq!(Token::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn pages_hold_the_limit_and_about_a_megabyte_but_never_nothing() {
        let small = events(&[10; 10]);
        assert_eq!(page_end(&small, 0, 4), 4);
        assert_eq!(page_end(&small, 8, 4), 10);
        assert_eq!(page_start(&small, 10, 4), 6);
        assert_eq!(page_start(&small, 2, 4), 0);
        let big = events(&[MAX_PAGE_BYTES / 2 + 1; 5]);
        assert_eq!(page_end(&big, 0, 100), 1);
        assert_eq!(page_start(&big, 5, 100), 4);
        let huge = events(&[MAX_PAGE_BYTES * 3]);
        assert_eq!(
            page_end(&huge, 0, 100),
            1,
            "one event over the size still comes"
        );
        assert_eq!(page_start(&huge, 1, 100), 0);
    }

    #[test]
    fn the_group_by_name_or_arn_and_not_both() {
        let prefix = "arn:aws:logs:r:1:log-group:";
        let name = |body: Value| log_group(&body, prefix).map(str::to_owned);
        assert_eq!(name(json!({"logGroupName": LOG_GROUP})).unwrap(), LOG_GROUP);
        assert_eq!(
            name(json!({"logGroupIdentifier": format!("{prefix}{LOG_GROUP}:*")})).unwrap(),
            LOG_GROUP
        );
        assert_eq!(
            name(json!({"logGroupIdentifier": LOG_GROUP})).unwrap(),
            LOG_GROUP
        );
        let both = name(json!({"logGroupName": "a", "logGroupIdentifier": "a"})).unwrap_err();
        assert_eq!(both.code, "InvalidParameterException");
        assert_eq!(
            name(json!({})).unwrap_err().code,
            "InvalidParameterException"
        );
    }
}
