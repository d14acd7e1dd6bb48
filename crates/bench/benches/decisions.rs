#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! One authorization decision per iteration: portcullis-iam vs cedar-policy vs
//! iam-rs, on the same scenarios.
//!
//! Run: `cargo bench -p portcullis-bench --bench decisions`
//! (criterion filters work as usual: `... --bench decisions -- seed-3`).
//!
//! Scenarios (all defined in `crates/bench/src/lib.rs`; the principal is always
//! the IAM user `arn:aws:iam::123456789012:user/TestUserA`, username
//! TestUserA, userid AIDAEXAMPLEUSERID0001, tag Project=test; every request is
//! `ssm:StartSession`):
//!
//! * `seed-1-instance-arn`: the ReadOnly-like policy (ssm:Describe*/Get*/List*,
//!   ec2:Describe* on `*`) + StartSession on instance
//!   `i-0885b2e35926f1fb3` + Terminate/ResumeSession on
//!   `arn:aws:ssm:*:*:session/${aws:username}-*`. Allowed: that instance;
//!   denied: `i-0123456789abcdef0`.
//! * `seed-2-fixed-tag`: same, but StartSession on `instance/*` with
//!   `StringEquals ssm:resourceTag/Project = test`. Allowed: instance tagged
//!   Project=test; denied: another instance tagged Project=prod.
//! * `seed-3-abac`: same, with `StringEquals aws:ResourceTag/Project =
//!   ${aws:PrincipalTag/Project}`. Allowed: Project=test; denied:
//!   Project=prod.
//! * `bulk-1000-statements`: 1,000 Allow statements in 25 attached policies of
//!   40 statements each (every document within IAM's 6,144-character managed
//!   policy quota); each statement has concrete actions and one
//!   resource: 200 × `ssm:SendCommand` on distinct instance ARNs, 200 ×
//!   `ec2:Reboot/Stop/StartInstances` on distinct instance ARNs (100 of them
//!   with `StringEquals aws:ResourceTag/Team`), 200 × `s3:GetObject/PutObject`
//!   on `bucket-N/*`, 200 × synthetic `svcN:ActionM` on `svcN` ARNs, 199 ×
//!   `ssm:GetParameter(s)` on `parameter/appN/*`, and the last one
//!   `ssm:StartSession` on instance `i-0885b2e35926f1fb3`. Allowed: that
//!   instance; denied: `i-0123456789abcdef0` (no statement grants it: an
//!   engine has to establish that none of the 1,000 applies).
//! * `bulk-1000-same-action` (a stress case beyond the four asked for): 1,000
//!   Allow statements in 25 policies that *all* grant `ssm:StartSession`, so
//!   an engine that indexes statements by action (ours does) cannot skip
//!   any: 899 on distinct instance ARNs, 100 on `instance/*` with
//!   `StringEquals ssm:resourceTag/Project = proj-N` (never matching), and
//!   the last on `i-0885b2e35926f1fb3`. Same allowed/denied requests.
//!
//! What is timed: only the decision call, on policies parsed/compiled and a
//! request built before the timed loop —
//! `PolicySet::evaluate(&Request)` (ours),
//! `Authorizer::is_authorized(&Request, &PolicySet, &Entities)` (Cedar; the
//! entity store is built once per scenario), and
//! `PolicyEvaluator::evaluate(&IAMRequest)` (iam-rs; its result type carries
//! a clone of the request, which is part of its API's cost).
//!
//! Before timing, each engine's decision on each case is checked once. A
//! wrong decision from our engine aborts the run; a wrong decision from a
//! peer is printed (`peer iam-rs: seed-3-abac allowed case decided ...`) and
//! shown in the summary table, and benchmarking goes on.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use criterion::Criterion;
use portcullis_bench::{cedar, iamrs, ours, Outcome, Scenario};

const OURS: &str = "portcullis-iam";
const CEDAR: &str = "cedar-policy";
const IAMRS: &str = "iam-rs";

/// Wrong peer decisions: (group id, engine) -> what it decided instead.
type PeerMistakes = BTreeMap<(String, &'static str), String>;

fn group_id(scenario: &Scenario, label: &str) -> String {
    format!("{}/{label}", scenario.id)
}

fn check_peer(
    mistakes: &mut PeerMistakes,
    engine: &'static str,
    scenario: &Scenario,
    case: &portcullis_bench::Case,
    got: &Outcome,
) {
    if !got.matches(case.expected) {
        println!(
            "peer {engine}: {} {} case decided {got} (expected {})",
            scenario.id, case.label, case.expected
        );
        mistakes.insert((group_id(scenario, case.label), engine), got.to_string());
    }
}

fn bench_scenario(c: &mut Criterion, scenario: &Scenario, mistakes: &mut PeerMistakes) {
    let our_engine = ours::Engine::new(scenario).unwrap();
    let cedar_engine = cedar::Engine::new(scenario).unwrap();
    let iamrs_engine = iamrs::Engine::new(scenario).unwrap();

    for case in &scenario.cases {
        // Build every engine's request once, outside the timed loop.
        let our_input = our_engine.input(&case.target);
        let our_request = our_input.request(&our_engine);
        let cedar_request = cedar_engine.request(&case.target).unwrap();
        let iamrs_request = iamrs_engine.request(&case.target).unwrap();

        // Check each decision once.
        let got = ours::outcome(our_engine.decide(&our_request));
        assert!(
            got.matches(case.expected),
            "{OURS}: {} {} case decided {got} (expected {})",
            scenario.id,
            case.label,
            case.expected
        );
        let got = cedar::outcome(&cedar_engine.decide(&cedar_request));
        check_peer(mistakes, CEDAR, scenario, case, &got);
        let got = iamrs::outcome(&iamrs_engine.decide(&iamrs_request));
        check_peer(mistakes, IAMRS, scenario, case, &got);

        let mut group = c.benchmark_group(group_id(scenario, case.label));
        group.bench_function(OURS, |b| {
            b.iter(|| our_engine.decide(black_box(&our_request)));
        });
        group.bench_function(CEDAR, |b| {
            b.iter(|| cedar_engine.decide(black_box(&cedar_request)));
        });
        group.bench_function(IAMRS, |b| {
            b.iter(|| iamrs_engine.decide(black_box(&iamrs_request)));
        });
        group.finish();
    }
}

/// Where criterion writes its results (same rules as criterion itself).
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    let from_metadata = std::env::var_os("CARGO").and_then(|cargo| {
        let out = std::process::Command::new(cargo)
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        Some(PathBuf::from(v.get("target_directory")?.as_str()?))
    });
    from_metadata.map_or_else(
        || PathBuf::from("target/criterion"),
        |t| t.join("criterion"),
    )
}

/// Criterion's point estimate (slope, else mean) in ns for one benchmark, if
/// it was measured during this run.
fn estimate_ns(
    dir: &std::path::Path,
    group: &str,
    function: &str,
    since: SystemTime,
) -> Option<f64> {
    let path = dir
        .join(group.replace('/', "_"))
        .join(function)
        .join("new")
        .join("estimates.json");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if modified < since {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    let point = |k: &str| v.get(k)?.get("point_estimate")?.as_f64();
    point("slope").or_else(|| point("mean"))
}

fn fmt_time(ns: Option<f64>) -> String {
    match ns {
        None => "—".to_owned(),
        Some(ns) if ns >= 1_000_000.0 => format!("{:.2} ms", ns / 1_000_000.0),
        Some(ns) if ns >= 1_000.0 => format!("{:.2} µs", ns / 1_000.0),
        Some(ns) => format!("{ns:.0} ns"),
    }
}

/// `0.031 (1/32)`: the ratio, with three decimals (five below 0.001), and its
/// inverse.
fn fmt_ratio(r: f64) -> String {
    let inverse = if r > 0.0 {
        format!(" (1/{:.0})", 1.0 / r)
    } else {
        String::new()
    };
    if r < 0.001 {
        format!("{r:.5}{inverse}")
    } else {
        format!("{r:.3}{inverse}")
    }
}

/// Cores available to this process and, where /proc says, the CPU model and the
/// load average (other work on the machine skews the numbers).
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .map_or_else(String::new, |l| {
            format!(", 1-min load average at the end {l}")
        });
    format!("{cores} cores, {model}{load}")
}

/// Print a Markdown table of this run's results (for BENCHMARKS.md).
fn print_summary(scenarios: &[Scenario], mistakes: &PeerMistakes, since: SystemTime) {
    let dir = criterion_dir();
    println!();
    println!("## Summary (criterion point estimate per decision; † = decided wrongly)");
    println!();
    println!("machine: {}", machine());
    println!();
    println!("| case | {OURS} | {CEDAR} | {IAMRS} | ours ÷ faster peer | goal | met |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for scenario in scenarios {
        let bulk = scenario.id.starts_with("bulk");
        for case in &scenario.cases {
            let group = group_id(scenario, case.label);
            let ours = estimate_ns(&dir, &group, OURS, since);
            let cedar = estimate_ns(&dir, &group, CEDAR, since);
            let iamrs = estimate_ns(&dir, &group, IAMRS, since);
            let peer_cell = |engine: &'static str, t: Option<f64>| {
                let mark = if mistakes.contains_key(&(group.clone(), engine)) {
                    " †"
                } else {
                    ""
                };
                format!("{}{mark}", fmt_time(t))
            };
            let faster_peer = match (cedar, iamrs) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let ratio = ours.zip(faster_peer).map(|(o, p)| o / p);
            let (goal, met) = if bulk {
                ("< 1 µs", ours.map(|o| o < 1_000.0))
            } else {
                ("ratio ≤ 0.10", ratio.map(|r| r <= 0.10))
            };
            println!(
                "| {group} | {} | {} | {} | {} | {goal} | {} |",
                fmt_time(ours),
                peer_cell(CEDAR, cedar),
                peer_cell(IAMRS, iamrs),
                ratio.map_or_else(|| "—".to_owned(), fmt_ratio),
                met.map_or("—", |m| if m { "yes" } else { "no" }),
            );
        }
    }
    if !mistakes.is_empty() {
        println!();
        for ((group, engine), got) in mistakes {
            let expected = scenarios
                .iter()
                .flat_map(|s| {
                    s.cases
                        .iter()
                        .map(move |c| (group_id(s, c.label), c.expected))
                })
                .find(|(g, _)| g == group)
                .map_or_else(String::new, |(_, e)| e.to_string());
            println!("† {engine} on {group}: decided {got}, expected {expected}.");
        }
    }
}

fn main() {
    let since = SystemTime::now();
    let scenarios = portcullis_bench::scenarios();
    let mut c = Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(50)
        .configure_from_args();
    let mut mistakes = PeerMistakes::new();
    for scenario in &scenarios {
        bench_scenario(&mut c, scenario, &mut mistakes);
    }
    c.final_summary();
    print_summary(&scenarios, &mistakes, since);
}
