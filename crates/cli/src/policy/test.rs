//! `portcullis policy test PATH...`: conformance suites and a project's expectation files.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use portcullis_analysis::expect::{is_expectations, Expectations};
use portcullis_iam::suite::Suite;

use crate::exit;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Suite files, or directories whose `*.json` files are suites.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Also print a line for every passing case.
    #[arg(long, short)]
    verbose: bool,
}

fn suite_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn load(file: &Path, text: &str) -> anyhow::Result<Suite> {
    Suite::parse(text).with_context(|| format!("{}", file.display()))
}

/// A project's expectation file (`portcullis_analysis::expect`): policy files it names are
/// read relative to it.
fn load_expectations(file: &Path, text: &str) -> anyhow::Result<Expectations> {
    let dir = file.parent().unwrap_or(Path::new("."));
    Expectations::parse(text, |path| {
        std::fs::read_to_string(dir.join(path)).map_err(|e| format!("reading {path}: {e}"))
    })
    .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let (mut passed, mut failed) = (0_usize, 0_usize);
    for file in suite_files(&args.paths)? {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        if is_expectations(&text) {
            let expectations = load_expectations(&file, &text)?;
            for outcome in expectations.run() {
                if outcome.passed() {
                    passed += 1;
                    if args.verbose {
                        println!("ok   {} / {}", expectations.name, outcome.case);
                    }
                    continue;
                }
                failed += 1;
                println!(
                    "FAIL {} / {}: {}",
                    expectations.name,
                    outcome.case,
                    outcome.failure.unwrap_or_default()
                );
                for line in outcome.explanation.to_string().lines() {
                    println!("     {line}");
                }
            }
            continue;
        }
        let suite = load(&file, &text)?;
        for outcome in suite.run() {
            if outcome.passed() {
                passed += 1;
                if args.verbose {
                    println!("ok   {} / {}", outcome.suite, outcome.case);
                }
            } else {
                failed += 1;
                println!(
                    "FAIL {} / {}: expected {}, got {}",
                    outcome.suite, outcome.case, outcome.expected, outcome.explanation.decision
                );
                for line in outcome.explanation.to_string().lines() {
                    println!("     {line}");
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 { exit::OK } else { exit::NO })
}
