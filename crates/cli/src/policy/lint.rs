//! `portcullis policy lint FILE...`

use std::path::PathBuf;

use anyhow::Context as _;
use clap::ValueEnum;
use portcullis_analysis::{lint, lint_together, Document, Finding, Severity, RULES};
use portcullis_iam::{validate, Policy};
use serde_json::json;

use super::validate::Kind;
use crate::exit;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Policy documents to lint.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Where the policies will be used; decides IAM's version rule and size quota.
    #[arg(long, value_enum, default_value_t = Kind::Managed)]
    kind: Kind,
    /// Treat the files as the policies of one principal, so the rules that look across
    /// statements (self-tagging, shadowed, redundant) see all of them.
    #[arg(long)]
    together: bool,
    /// Exit 1 when a finding of at least this severity is found.
    #[arg(long, value_enum, default_value_t = FailOn::Warning)]
    fail_on: FailOn,
    /// Print one JSON object per file instead of text.
    #[arg(long)]
    json: bool,
    /// List the rules and exit.
    #[arg(long, exclusive = true)]
    rules: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FailOn {
    Info,
    Warning,
    Error,
    Never,
}

impl FailOn {
    fn fails(self, s: Severity) -> bool {
        match self {
            FailOn::Info => true,
            FailOn::Warning => s >= Severity::Warning,
            FailOn::Error => s >= Severity::Error,
            FailOn::Never => false,
        }
    }
}

/// A finding as JSON (shared with `policy validate`).
pub fn finding_json(f: &Finding) -> serde_json::Value {
    json!({
        "code": f.code,
        "name": f.name,
        "severity": f.severity.as_str(),
        "pointer": f.pointer,
        "line": f.line,
        "column": f.column,
        "message": f.message,
        "fix": f.fix,
    })
}

/// Lints one valid document on its own (what `policy validate` adds to its warnings).
pub fn lint_one(name: &str, text: &str, policy: &Policy) -> Vec<Finding> {
    lint(&Document { name, text, policy })
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    if args.rules {
        for r in RULES {
            println!("{} {:<7} {:<29} {}", r.code, r.severity, r.name, r.summary);
        }
        return Ok(exit::OK);
    }
    let mut code = exit::OK;
    let mut texts = Vec::new();
    for file in &args.files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        texts.push((file.display().to_string(), text));
    }
    // Validate first: the linter only reads valid documents.
    let mut valid: Vec<(usize, Policy)> = Vec::new();
    let mut errors = Vec::new();
    for (i, (_, text)) in texts.iter().enumerate() {
        match validate(text, args.kind.into()) {
            Ok(v) => valid.push((i, v.policy)),
            Err(e) => {
                code = exit::NO;
                errors.push((i, e));
            }
        }
    }
    let docs: Vec<Document> = valid
        .iter()
        .filter_map(|(i, policy)| {
            texts
                .get(*i)
                .map(|(name, text)| Document { name, text, policy })
        })
        .collect();
    let findings: Vec<Finding> = if args.together {
        lint_together(&docs)
    } else {
        docs.iter().flat_map(lint).collect()
    };
    if findings.iter().any(|f| args.fail_on.fails(f.severity)) {
        code = exit::NO;
    }
    for (i, (name, _)) in texts.iter().enumerate() {
        let errs = errors.iter().find(|(e, _)| *e == i).map(|(_, e)| e);
        let mine: Vec<&Finding> = findings.iter().filter(|f| &f.document == name).collect();
        if args.json {
            let errs: Vec<_> = errs
                .into_iter()
                .flatten()
                .map(|e| json!({"code": e.code.as_str(), "message": e.message, "pointer": e.pointer, "line": e.line, "column": e.column}))
                .collect();
            let found: Vec<_> = mine.iter().map(|f| finding_json(f)).collect();
            println!(
                "{}",
                json!({"file": name, "valid": errs.is_empty(), "errors": errs, "findings": found})
            );
            continue;
        }
        if let Some(errs) = errs {
            for e in errs {
                println!("{name}:{}:{}: {e}", e.line, e.column);
            }
            continue;
        }
        if mine.is_empty() {
            println!("{name}: no findings");
        }
        for f in mine {
            println!(
                "{name}:{}:{}: {} {} {}: {}\n    at {}\n    fix: {}",
                f.line,
                f.column,
                f.severity,
                f.code,
                f.name,
                f.message,
                if f.pointer.is_empty() {
                    "the document"
                } else {
                    &f.pointer
                },
                f.fix
            );
        }
    }
    Ok(code)
}
