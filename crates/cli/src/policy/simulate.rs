//! `portcullis policy simulate ...`

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use portcullis_iam::{
    iso8601, Context, Decision, Explanation, Policy, PolicyKind, PolicySet, Principal, Request,
    StatementOutcome, Tags,
};
use serde_json::{json, Value};

use crate::exit;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Example (the seed's ABAC pattern):
  portcullis policy simulate --policy abac.json \\
    --principal-arn arn:aws:iam::123456789012:user/TestUserA --principal-tag Project=test \\
    --action ssm:StartSession \\
    --resource arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0885b2e35926f1fb3 \\
    --resource-tag Project=prod")]
pub struct Args {
    /// An identity policy attached to the principal (repeat for several).
    #[arg(long = "policy", required = true, value_name = "FILE")]
    policies: Vec<PathBuf>,
    /// The principal's permissions boundary.
    #[arg(long, value_name = "FILE")]
    boundary: Option<PathBuf>,
    /// A service control policy over the account (repeat; every one must allow).
    #[arg(long = "scp", value_name = "FILE")]
    scps: Vec<PathBuf>,
    /// A session policy (for an assumed-role session).
    #[arg(long, value_name = "FILE")]
    session_policy: Option<PathBuf>,
    /// Who asks: arn:aws:iam::ACCOUNT:user/NAME, arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION,
    /// or arn:aws:iam::ACCOUNT:root.
    #[arg(long, value_name = "ARN")]
    principal_arn: String,
    /// The principal's aws:userid (default: AIDA-style id from the user name, ROLEID:SESSION for roles).
    #[arg(long, value_name = "ID")]
    userid: Option<String>,
    /// A tag on the principal, KEY=VALUE (repeatable): aws:PrincipalTag/KEY.
    #[arg(long = "principal-tag", value_name = "KEY=VALUE", value_parser = key_value)]
    principal_tags: Vec<(String, String)>,
    /// The action, e.g. ssm:StartSession.
    #[arg(long)]
    action: String,
    /// The resource ARN, e.g. arn:aws:ec2:REGION:ACCOUNT:instance/i-....
    #[arg(long, value_name = "ARN", default_value = "*")]
    resource: String,
    /// A tag on the resource, KEY=VALUE (repeatable): aws:ResourceTag/KEY and SERVICE:resourceTag/KEY.
    #[arg(long = "resource-tag", value_name = "KEY=VALUE", value_parser = key_value)]
    resource_tags: Vec<(String, String)>,
    /// Another request key, KEY=VALUE (repeatable; repeat a key for a multivalued key),
    /// e.g. aws:SourceIp=203.0.113.7. aws:CurrentTime and aws:EpochTime default to now.
    #[arg(long = "context", value_name = "KEY=VALUE", value_parser = key_value)]
    context: Vec<(String, String)>,
    /// Print the decision and explanation as JSON.
    #[arg(long)]
    json: bool,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))
}

fn read_policy(path: &Path, kind: PolicyKind) -> anyhow::Result<Policy> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Policy::parse_as(&text, kind).with_context(|| format!("{}", path.display()))
}

fn principal(args: &Args) -> anyhow::Result<Principal> {
    let arn = &args.principal_arn;
    let fields: Vec<&str> = arn.splitn(6, ':').collect();
    let [_, _, service, _, account, resource] = fields.as_slice() else {
        bail!("`{arn}` is not an ARN");
    };
    let p = match (*service, resource.split_once('/')) {
        ("iam", None) if *resource == "root" => Principal::root(account),
        ("iam", Some(("user", path))) => {
            let name = path.rsplit('/').next().unwrap_or(path);
            let userid = args
                .userid
                .clone()
                .unwrap_or_else(|| format!("AIDA{}", name.to_uppercase()));
            Principal::user(arn, account, name, &userid)
        }
        ("sts", Some(("assumed-role", rest))) => {
            let (role, session) = rest
                .rsplit_once('/')
                .with_context(|| format!("`{arn}` has no session name"))?;
            let userid = args
                .userid
                .clone()
                .unwrap_or_else(|| format!("AROA{}:{session}", role.to_uppercase()));
            Principal::assumed_role(arn, account, &userid)
        }
        _ => bail!("`{arn}` is not a user, assumed-role session or root ARN"),
    };
    Ok(p.with_tags(args.principal_tags.iter().cloned().collect()))
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let mut set = PolicySet::new();
    for path in &args.policies {
        set.add_identity(
            &path.display().to_string(),
            &read_policy(path, PolicyKind::Inline)?,
        );
    }
    if let Some(path) = &args.boundary {
        set.set_boundary(
            &path.display().to_string(),
            &read_policy(path, PolicyKind::Managed)?,
        );
    }
    for path in &args.scps {
        set.add_scp(
            &path.display().to_string(),
            &read_policy(path, PolicyKind::ServiceControl)?,
        );
    }
    if let Some(path) = &args.session_policy {
        set.set_session_policy(
            &path.display().to_string(),
            &read_policy(path, PolicyKind::Session)?,
        );
    }
    let principal = principal(&args)?;
    let tags: Tags = args.resource_tags.iter().cloned().collect();
    let mut context = Context::new();
    let mut keys: Vec<&str> = args.context.iter().map(|(k, _)| k.as_str()).collect();
    keys.dedup();
    for key in keys {
        let values: Vec<String> = args
            .context
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect();
        match values.as_slice() {
            [one] => context.insert(key, one.clone()),
            _ => context.insert_values(key, values),
        }
    }
    // As IAM's simulator does, the request happens now unless the caller says otherwise.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    if !args
        .context
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("aws:CurrentTime"))
    {
        context.insert("aws:CurrentTime", iso8601(now));
    }
    if !args
        .context
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("aws:EpochTime"))
    {
        context.insert("aws:EpochTime", now.to_string());
    }
    let req = Request::new(&principal, &args.action, &args.resource)
        .with_resource_tags(&tags)
        .with_context(&context);
    let explanation = set.explain(&req);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&to_json(&explanation))?);
    } else {
        print!("{explanation}");
    }
    Ok(if explanation.decision == Decision::Allow {
        exit::OK
    } else {
        exit::NO
    })
}

fn to_json(e: &Explanation) -> Value {
    let layers: Vec<Value> = e
        .layers
        .iter()
        .map(|l| {
            let statements: Vec<Value> = l
                .statements
                .iter()
                .map(|s| {
                    let mut v = json!({
                        "policy": s.policy,
                        "index": s.index,
                        "sid": s.sid,
                        "pointer": s.pointer,
                        "effect": s.effect.as_str(),
                        "outcome": match &s.outcome {
                            StatementOutcome::Matched => "matched",
                            StatementOutcome::ActionNotMatched => "action_not_matched",
                            StatementOutcome::ResourceNotMatched => "resource_not_matched",
                            StatementOutcome::ConditionFailed { .. } => "condition_failed",
                        },
                        "reason": s.outcome.to_string(),
                    });
                    if let StatementOutcome::ConditionFailed { operator, key, request, policy } = &s.outcome {
                        if let Some(obj) = v.as_object_mut() {
                            obj.insert(
                                "condition".into(),
                                json!({"operator": operator, "key": key, "request": request, "policy": policy}),
                            );
                        }
                    }
                    v
                })
                .collect();
            json!({"layer": l.kind.aws_name(), "allowed": l.allowed, "denied": l.denied, "statements": statements})
        })
        .collect();
    json!({
        "decision": e.decision.as_str(),
        "message": e.aws_message(),
        "principal": e.principal_arn,
        "action": e.action,
        "resource": e.resource,
        "deciding": e.deciding().iter().map(|s| s.label()).collect::<Vec<_>>(),
        "layers": layers,
    })
}
