//! `portcullis access who-can|what-can`: the access matrix over the live store.

use std::path::PathBuf;

use anyhow::Context as _;
use portcullis_analysis::diff::{diff, Change, PairChange, Principal};
use portcullis_analysis::matrix::{
    answer_json, default_context, tags_json, what_can, who_can, Answer,
};
use portcullis_analysis::Fleet;
use portcullis_core::model::Tag;
use portcullis_core::policies::{self, UserPolicy};
use portcullis_core::service::now;
use portcullis_iam::{Context, Decision, Policy, PolicyKind};
use portcullis_store::SqliteStore;
use serde_json::json;

use crate::exit;

#[derive(Debug, clap::Subcommand)]
pub enum AccessCommand {
    /// Who may do an action (default: open a shell, ssm:StartSession) on a node, and which
    /// statement decided for each of them.
    ///
    /// Every IAM user is evaluated with their identity policies, groups' policies and
    /// permissions boundary, exactly as the server authorizes (the same engine). The account
    /// root is not subject to IAM policies and may always. Reads the store directly, so it
    /// works while the server runs. Exits 0 when someone may, 1 when nobody may.
    WhoCan(WhoCanArgs),
    /// What a user may do (default: open a shell, ssm:StartSession) on each node, and which
    /// statement decided.
    ///
    /// Exits 0 when the user may reach some node, 1 when none.
    WhatCan(WhatCanArgs),
    /// What a proposed change would do: exactly which (user, node, action) pairs gain or
    /// lose access, with the statements that decide before and after. Nothing is changed.
    ///
    /// Changes: tags on a node (--node ID) or a user (--user NAME) with --add-tag K=V and
    /// --remove-tag K; a policy attached to or detached from a user or a group (--user NAME |
    /// --group NAME with --attach ARN, --attach-file FILE or --detach ARN|INLINE-NAME); a
    /// managed policy's document replaced everywhere it applies (--replace ARN --with FILE).
    /// Exits 0.
    Diff(Box<DiffArgs>),
}

#[derive(Debug, clap::Args)]
pub struct Common {
    /// The server's data directory.
    #[arg(long, env = "PORTCULLIS_DATA_DIR", default_value = ".portcullis")]
    data_dir: PathBuf,
    /// Also list who is refused (implicit and explicit denies), with AWS's reason.
    #[arg(long)]
    all: bool,
    /// A request key every evaluated request carries, as KEY=VALUE (repeatable), such as
    /// aws:SourceIp=203.0.113.7 or aws:SecureTransport=true. aws:CurrentTime, aws:EpochTime
    /// and aws:RequestedRegion are set as the server sets them.
    #[arg(long, value_name = "KEY=VALUE")]
    context: Vec<String>,
    /// One JSON object, for scripts.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct WhoCanArgs {
    /// The node: its id (i-..., mi-...) or ARN.
    #[arg(long)]
    target: String,
    /// The action.
    #[arg(long, default_value = "ssm:StartSession")]
    action: String,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
pub struct WhatCanArgs {
    /// The user: ARN or name.
    #[arg(long)]
    principal: String,
    /// The actions to check on each node (repeatable).
    #[arg(long, default_values_t = ["ssm:StartSession".to_owned()])]
    action: Vec<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The node whose tags change.
    #[arg(long, conflicts_with_all = ["user", "group", "replace"])]
    node: Option<String>,
    /// The user whose tags or policies change (name or ARN).
    #[arg(long, conflicts_with_all = ["group", "replace"])]
    user: Option<String>,
    /// The group whose policies change.
    #[arg(long, conflicts_with = "replace")]
    group: Option<String>,
    /// Add (or change) a tag, KEY=VALUE (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    add_tag: Vec<String>,
    /// Remove a tag by key (repeatable).
    #[arg(long, value_name = "KEY")]
    remove_tag: Vec<String>,
    /// Attach a managed policy from the store, by ARN.
    #[arg(long, value_name = "ARN")]
    attach: Option<String>,
    /// Attach a proposed policy document (validated as a managed policy).
    #[arg(long, value_name = "FILE")]
    attach_file: Option<PathBuf>,
    /// Detach a managed policy (ARN) or delete an inline policy (its name).
    #[arg(long, value_name = "ARN|NAME")]
    detach: Option<String>,
    /// Replace a managed policy's document (as a new default version would), everywhere it
    /// applies, permissions boundaries included; needs --with.
    #[arg(long, value_name = "ARN", requires = "with")]
    replace: Option<String>,
    /// The new document for --replace.
    #[arg(long, value_name = "FILE", requires = "replace")]
    with: Option<PathBuf>,
    /// The actions to compare (repeatable).
    #[arg(long, default_values_t = ["ssm:StartSession".to_owned()])]
    action: Vec<String>,
    #[command(flatten)]
    common: Common,
}

pub fn run(cmd: AccessCommand) -> anyhow::Result<u8> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    if let AccessCommand::Diff(args) = &cmd {
        return runtime.block_on(run_diff(args));
    }
    let common = match &cmd {
        AccessCommand::WhoCan(a) => &a.common,
        AccessCommand::WhatCan(a) => &a.common,
        AccessCommand::Diff(a) => &a.common,
    };
    let fleet = runtime.block_on(load(&common.data_dir))?;
    let context = context(&fleet, common)?;
    match &cmd {
        AccessCommand::WhoCan(a) => run_who_can(&fleet, a, &context),
        AccessCommand::WhatCan(a) => run_what_can(&fleet, a, &context),
        AccessCommand::Diff(_) => Ok(exit::ERROR),
    }
}

fn context(fleet: &Fleet, common: &Common) -> anyhow::Result<Context> {
    let mut context = default_context(fleet, now());
    for kv in &common.context {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--context {kv}: expected KEY=VALUE"))?;
        context.insert(k, v);
    }
    Ok(context)
}

async fn read_fleet(store: &SqliteStore) -> anyhow::Result<Fleet> {
    Fleet::load(store)
        .await
        .map_err(|e| anyhow::anyhow!("reading users, policies and nodes: {}", e.message))
}

async fn load(data_dir: &std::path::Path) -> anyhow::Result<Fleet> {
    let store = crate::server::open_existing_store(data_dir).await?;
    let fleet = read_fleet(&store).await?;
    store.close().await;
    Ok(fleet)
}

fn parse_tags(items: &[String]) -> anyhow::Result<Vec<Tag>> {
    items
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| Tag::new(k, v))
                .with_context(|| format!("--add-tag {kv}: expected KEY=VALUE"))
        })
        .collect()
}

fn read_policy(path: &std::path::Path) -> anyhow::Result<(String, Policy)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let policy = Policy::parse_as(&text, PolicyKind::Managed)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok((text, policy))
}

/// The change the arguments propose (a managed policy to attach is read from the store).
async fn proposed_change(store: &SqliteStore, args: &DiffArgs) -> anyhow::Result<Change> {
    let add = parse_tags(&args.add_tag)?;
    let remove = args.remove_tag.clone();
    let tag_change = !add.is_empty() || !remove.is_empty();
    if let (Some(arn), Some(file)) = (&args.replace, &args.with) {
        let (document, policy) = read_policy(file)?;
        return Ok(Change::NewVersion {
            arn: arn.clone(),
            document,
            policy,
        });
    }
    if let Some(node) = &args.node {
        anyhow::ensure!(tag_change, "--node needs --add-tag or --remove-tag");
        return Ok(Change::NodeTags {
            node: node.clone(),
            add,
            remove,
        });
    }
    let who = match (&args.user, &args.group) {
        (Some(u), _) => Principal::User(u.clone()),
        (None, Some(g)) => Principal::Group(g.clone()),
        (None, None) => anyhow::bail!("say what changes: --node, --user, --group or --replace"),
    };
    if tag_change {
        let Principal::User(user) = who else {
            anyhow::bail!("groups have no tags: use --user or --node with --add-tag/--remove-tag");
        };
        return Ok(Change::UserTags { user, add, remove });
    }
    if let Some(arn) = &args.attach {
        let document = policies::default_document(store, arn)
            .await
            .map_err(|e| anyhow::anyhow!("no managed policy {arn}: {}", e.message))?;
        let policy = Policy::parse_as(&document, PolicyKind::Managed)
            .map_err(|e| anyhow::anyhow!("{arn}: {e}"))?;
        let label = arn.clone();
        return Ok(Change::Attach {
            to: who,
            policy: UserPolicy {
                label,
                document,
                policy,
                boundary: false,
            },
        });
    }
    if let Some(file) = &args.attach_file {
        let (document, policy) = read_policy(file)?;
        return Ok(Change::Attach {
            to: who,
            policy: UserPolicy {
                label: format!("proposed {}", file.display()),
                document,
                policy,
                boundary: false,
            },
        });
    }
    if let Some(name) = &args.detach {
        return Ok(Change::Detach {
            from: who,
            policy: name.clone(),
        });
    }
    anyhow::bail!("say what changes: --add-tag/--remove-tag, --attach, --attach-file or --detach")
}

async fn run_diff(args: &DiffArgs) -> anyhow::Result<u8> {
    let store = crate::server::open_existing_store(&args.common.data_dir).await?;
    let before = read_fleet(&store).await?;
    let mut after = before.clone();
    let change = proposed_change(&store, args).await;
    store.close().await;
    let change = change?.apply(&mut after)?;
    let context = context(&before, &args.common)?;
    let actions: Vec<&str> = args.action.iter().map(String::as_str).collect();
    let found = diff(&before, &after, &actions, &context);
    let gained = found.iter().filter(|c| c.gained).count();
    let lost = found.len() - gained;
    if args.common.json {
        let pair = |c: &PairChange| {
            json!({
                "before": answer_json(&before, &c.before),
                "after": answer_json(&after, &c.after),
            })
        };
        let out = json!({
            "change": change,
            "actions": actions,
            "gained": found.iter().filter(|c| c.gained).map(pair).collect::<Vec<_>>(),
            "lost": found.iter().filter(|c| !c.gained).map(pair).collect::<Vec<_>>(),
        });
        println!("{out}");
        return Ok(exit::OK);
    }
    println!("{change}: {gained} (user, node, action) pairs gain access, {lost} lose it");
    for c in &found {
        let who = before.users.get(c.user).map_or("?", |u| u.arn.as_str());
        let node = before.nodes.get(c.node).map_or("?", |n| n.id.as_str());
        if c.gained {
            println!("  + {who}  {}  {node}  {}", c.action, why(&c.after));
        } else {
            println!(
                "  - {who}  {}  {node}  was {}; now {}",
                c.action,
                why(&c.before),
                c.after.decision
            );
            print_near_misses(&c.after);
        }
    }
    Ok(exit::OK)
}

/// `allow` / `explicit deny` / `implicit deny`, padded, then why.
fn why(a: &Answer) -> String {
    let verb = match a.decision {
        Decision::Allow => "by",
        Decision::ExplicitDeny => "denied by",
        Decision::ImplicitDeny => "",
    };
    if a.deciding.is_empty() {
        return a
            .reason
            .as_deref()
            .and_then(|r| r.split_once(" because ").map(|(_, why)| why))
            .unwrap_or_default()
            .to_owned();
    }
    let labels: Vec<&str> = a.deciding.iter().map(|d| d.label.as_str()).collect();
    format!("{verb} {}", labels.join("; "))
}

fn print_near_misses(a: &Answer) {
    for (label, outcome) in &a.near_misses {
        println!("                  {label}: {outcome}");
    }
}

fn run_who_can(fleet: &Fleet, args: &WhoCanArgs, context: &Context) -> anyhow::Result<u8> {
    let node = fleet.node_index(&args.target).with_context(|| {
        format!(
            "no node {} in the store (portcullis knows {} nodes)",
            args.target,
            fleet.nodes.len()
        )
    })?;
    let answers = who_can(fleet, node, &args.action, context);
    let allowed = answers.iter().filter(|a| a.decision.is_allowed()).count();
    let shown: Vec<&Answer> = answers
        .iter()
        .filter(|a| args.common.all || a.decision != Decision::ImplicitDeny)
        .collect();
    let n = fleet.nodes.get(node);
    if args.common.json {
        let out = json!({
            "action": args.action,
            "node": n.map(|n| n.id.as_str()),
            "resource": n.map(|n| n.arn.as_str()),
            "tags": n.map(|n| tags_json(&n.tags)),
            "users": answers.len(),
            "allowed": allowed,
            "answers": shown.iter().map(|a| answer_json(fleet, a)).collect::<Vec<_>>(),
            "root_always_allowed": true,
        });
        println!("{out}");
    } else {
        if let Some(n) = n {
            let tags: Vec<String> = n
                .tags
                .iter()
                .map(|t| format!("{}={}", t.key, t.value))
                .collect();
            println!(
                "{} on {} ({}; tags: {}): {allowed} of {} users",
                args.action,
                n.id,
                n.arn,
                if tags.is_empty() {
                    "none".to_owned()
                } else {
                    tags.join(", ")
                },
                answers.len()
            );
        }
        for a in shown {
            let who = fleet.users.get(a.user).map_or("?", |u| u.arn.as_str());
            println!("  {:<13} {who}  {}", a.decision.to_string(), why(a));
            print_near_misses(a);
        }
        println!("  (the account root is not subject to IAM policies and may always)");
    }
    Ok(if allowed > 0 { exit::OK } else { exit::NO })
}

fn run_what_can(fleet: &Fleet, args: &WhatCanArgs, context: &Context) -> anyhow::Result<u8> {
    let user = fleet.user_index(&args.principal).with_context(|| {
        format!(
            "no IAM user {} in the store (the account root may do anything)",
            args.principal
        )
    })?;
    let actions: Vec<&str> = args.action.iter().map(String::as_str).collect();
    let answers = what_can(fleet, user, &actions, context);
    let allowed = answers.iter().filter(|a| a.decision.is_allowed()).count();
    let shown: Vec<&Answer> = answers
        .iter()
        .filter(|a| args.common.all || a.decision != Decision::ImplicitDeny)
        .collect();
    let u = fleet.users.get(user);
    if args.common.json {
        let out = json!({
            "principal": u.map(|u| u.arn.as_str()),
            "user": u.map(|u| u.name.as_str()),
            "tags": u.map(|u| tags_json(&u.tags)),
            "actions": actions,
            "nodes": fleet.nodes.len(),
            "allowed": allowed,
            "answers": shown.iter().map(|a| answer_json(fleet, a)).collect::<Vec<_>>(),
        });
        println!("{out}");
    } else {
        if let Some(u) = u {
            println!(
                "{}: {allowed} of {} (node, action) pairs allowed over {} nodes",
                u.arn,
                answers.len(),
                fleet.nodes.len()
            );
        }
        for a in shown {
            let node = fleet.nodes.get(a.node).map_or("?", |n| n.id.as_str());
            println!(
                "  {:<13} {:<18} {node}  {}",
                a.decision.to_string(),
                a.action,
                why(a)
            );
            print_near_misses(a);
        }
    }
    Ok(if allowed > 0 { exit::OK } else { exit::NO })
}
