//! `portcullis policy validate FILE...`

use std::path::PathBuf;

use anyhow::Context as _;
use clap::ValueEnum;
use portcullis_iam::{validate, PolicyKind};
use serde_json::json;

use crate::exit;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Policy documents to check.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Where the policy will be used; decides IAM's version rule and size quota.
    #[arg(long, value_enum, default_value_t = Kind::Managed)]
    kind: Kind,
    /// Print one JSON object per file instead of text.
    #[arg(long)]
    json: bool,
    /// Do not run the linter (`policy lint`) on valid documents.
    #[arg(long)]
    no_lint: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    /// Customer managed policy or permissions boundary (must say 2012-10-17; 6,144 characters).
    Managed,
    /// Inline policy on a user, group or role.
    Inline,
    /// Service control policy (5,120 characters).
    Scp,
    /// Session policy (2,048 characters).
    Session,
}

impl From<Kind> for PolicyKind {
    fn from(k: Kind) -> PolicyKind {
        match k {
            Kind::Managed => PolicyKind::Managed,
            Kind::Inline => PolicyKind::Inline,
            Kind::Scp => PolicyKind::ServiceControl,
            Kind::Session => PolicyKind::Session,
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let mut code = exit::OK;
    for file in &args.files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let name = file.display();
        match validate(&text, args.kind.into()) {
            Ok(v) => {
                let name_text = name.to_string();
                let findings = if args.no_lint {
                    Vec::new()
                } else {
                    super::lint::lint_one(&name_text, &text, &v.policy)
                };
                if args.json {
                    let warnings: Vec<_> = v
                        .warnings
                        .iter()
                        .map(|w| json!({"message": w.message, "pointer": w.pointer, "line": w.line, "column": w.column}))
                        .collect();
                    let findings: Vec<_> = findings.iter().map(super::lint::finding_json).collect();
                    println!(
                        "{}",
                        json!({"file": name.to_string(), "valid": true, "errors": [], "warnings": warnings, "findings": findings})
                    );
                } else {
                    println!("{name}: valid");
                    for w in &v.warnings {
                        println!("{name}: {w}");
                    }
                    for f in &findings {
                        println!("{name}: {f}");
                    }
                }
            }
            Err(errors) => {
                code = exit::NO;
                if args.json {
                    let errors: Vec<_> = errors
                        .iter()
                        .map(|e| json!({"code": e.code.as_str(), "message": e.message, "pointer": e.pointer, "line": e.line, "column": e.column}))
                        .collect();
                    println!(
                        "{}",
                        json!({"file": name.to_string(), "valid": false, "errors": errors, "warnings": [], "findings": []})
                    );
                } else {
                    for e in &errors {
                        println!("{name}:{}:{}: {e}", e.line, e.column);
                    }
                }
            }
        }
    }
    Ok(code)
}
