//! Evaluation on arbitrary policies and requests: the indexed `evaluate` and the full
//! `explain` must always reach the same decision, and evaluation must be deterministic.
//!
//! Input format (UTF-8; fields separated by NUL bytes, missing fields take defaults):
//!
//! ```text
//! POLICIES \0 ACTION \0 RESOURCE \0 PRINCIPAL \0 RESOURCE_TAGS \0 CONTEXT
//! ```
//!
//! - POLICIES: policy documents separated by `\x01`; a document's first character may name
//!   its layer: `I` identity (the default), `B` permissions boundary, `S` SCP, `P` session
//!   policy. Documents that do not parse are skipped.
//! - PRINCIPAL: `u`, `a` or `r` (user, assumed-role session, root; default user), then a
//!   name, then optionally `|` and tags.
//! - Tags and context: `key=value` pairs separated by `;`; a context value is a
//!   comma-separated list (`aws:TagKeys=Project,Env`), and a key without `=` is an empty
//!   list.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_iam::{Context, Policy, PolicySet, Principal, Request, Tags};

const ACCOUNT: &str = "123456789012";
const DEFAULT_RESOURCE: &str =
    "arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0885b2e35926f1fb3";

fn pairs(s: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    s.split(';')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (kv, None),
        })
}

fn tags(s: &str) -> Tags {
    pairs(s).map(|(k, v)| (k, v.unwrap_or(""))).collect()
}

fn principal(spec: &str) -> Principal {
    let (head, tag_text) = spec.split_once('|').unwrap_or((spec, ""));
    let mut chars = head.chars();
    let kind = chars.next();
    let name = chars.as_str();
    let name = if name.is_empty() { "TestUserA" } else { name };
    let p = match kind {
        Some('r') => Principal::root(ACCOUNT),
        Some('a') => Principal::assumed_role(
            &format!("arn:aws:sts::{ACCOUNT}:assumed-role/{name}/session"),
            ACCOUNT,
            "AROAEXAMPLEROLEID0001:session",
        ),
        _ => Principal::user(
            &format!("arn:aws:iam::{ACCOUNT}:user/{name}"),
            ACCOUNT,
            name,
            "AIDAEXAMPLEUSERID0001",
        ),
    };
    p.with_tags(tags(tag_text))
}

fn context(s: &str) -> Context {
    let mut c = Context::new();
    for (k, v) in pairs(s) {
        match v {
            None => c.insert_values(k, Vec::new()),
            Some(v) if v.contains(',') => {
                c.insert_values(k, v.split(',').map(str::to_owned).collect())
            }
            Some(v) => c.insert(k, v),
        }
    }
    c
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut fields = text.split('\0');
    let policies = fields.next().unwrap_or_default();
    let action = fields.next().unwrap_or("ssm:StartSession");
    let resource = fields.next().unwrap_or(DEFAULT_RESOURCE);
    let principal = principal(fields.next().unwrap_or_default());
    let resource_tags = tags(fields.next().unwrap_or_default());
    let context = fields.next().map(context);

    let mut set = PolicySet::new();
    let mut any = false;
    for (i, section) in policies.split('\u{1}').enumerate() {
        let (layer, doc) = match section.as_bytes().first() {
            Some(&b @ (b'I' | b'B' | b'S' | b'P')) => (b, section.get(1..).unwrap_or_default()),
            _ => (b'I', section),
        };
        let Ok(policy) = Policy::parse(doc) else {
            continue;
        };
        any = true;
        let name = format!("policy{i}");
        match layer {
            b'B' => set.set_boundary(&name, &policy),
            b'S' => set.add_scp(&name, &policy),
            b'P' => set.set_session_policy(&name, &policy),
            _ => set.add_identity(&name, &policy),
        }
    }
    if !any {
        return;
    }

    let mut req = Request::new(&principal, action, resource).with_resource_tags(&resource_tags);
    if let Some(c) = &context {
        req = req.with_context(c);
    }
    let decision = set.evaluate(&req);
    assert_eq!(
        set.evaluate(&req),
        decision,
        "evaluate is not deterministic"
    );
    let explanation = set.explain(&req);
    assert!(
        explanation.decision == decision,
        "explain says {:?}, evaluate says {decision:?}\n{explanation}",
        explanation.decision
    );
    let _ = explanation.to_string();
    let _ = explanation.aws_message();
});
