#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! The access matrix benchmark: every (user, node) decision for `ssm:StartSession`, the
//! class-based matrix against the brute-force loop over the evaluator, at several sizes.
//!
//! `cargo bench -p portcullis-analysis --bench matrix` (add `-- quick` for one size). Prints
//! a Markdown table; `BENCHMARKS.md` ("Access matrix") records a run.

use std::hint::black_box;
use std::time::{Duration, Instant};

use portcullis_analysis::matrix::default_context;
use portcullis_analysis::{Fleet, Matrix};
use portcullis_core::model::{Tag, User};
use portcullis_core::policies::UserPolicy;
use portcullis_iam::{Context, Decision, Policy, PolicyKind, Request};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "ap-northeast-1";
const ACTION: &str = "ssm:StartSession";

fn seed(name: &str) -> String {
    let path = format!("{}/../../examples/seed/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn managed(name: &str, document: &str) -> UserPolicy {
    UserPolicy {
        label: format!("arn:aws:iam::{ACCOUNT}:policy/{name}"),
        document: document.to_owned(),
        policy: Policy::parse_as(document, PolicyKind::Managed)
            .unwrap_or_else(|e| panic!("{name}: {e}")),
        boundary: false,
    }
}

struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

fn user(i: usize) -> User {
    let name = format!("user{i:05}");
    User {
        arn: format!("arn:aws:iam::{ACCOUNT}:user/{name}"),
        user_id: format!("AIDA{i:017}"),
        name,
        path: "/".to_owned(),
        created: 0,
        permissions_boundary: None,
    }
}

/// How policies read the principal and the node.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// The seed's three patterns, a Deny on prod, ForAllValues and a boundary on Team tags:
    /// each user has one of a dozen policy combinations, and 20 projects × 3 envs × 10 teams.
    TagBased,
    /// Worst case: every user may start a session on "their" node, named by a principal tag
    /// inside the Resource (`instance/${aws:PrincipalTag/Node}`), so no two users and no two
    /// nodes can share a class and the matrix asks the engine about every pair.
    PerUserResource,
}

fn fleet(users: usize, nodes: usize, shape: Shape) -> Fleet {
    let mut rng = Lcg(42);
    let mut f = Fleet::new(ACCOUNT, REGION);
    let node_id = |i: usize| {
        if i == 0 {
            "i-0885b2e35926f1fb3".to_owned()
        } else {
            format!("i-{:017x}", 0x1000_0000 + i)
        }
    };
    let projects: Vec<String> = (0..20).map(|i| format!("p{i:02}")).collect();
    for i in 0..nodes {
        let mut tags = Vec::new();
        if rng.next(10) > 0 {
            tags.push(Tag::new("Project", projects[rng.next(20)].clone()));
        }
        tags.push(Tag::new("Env", ["prod", "dev", "test"][rng.next(3)]));
        if rng.next(4) > 0 {
            tags.push(Tag::new("Team", format!("t{}", rng.next(10))));
        }
        f.add_node(&node_id(i), &tags);
    }
    let abac = managed("seed-abac", &seed("pattern-3-abac.json"));
    let fixed = managed("seed-fixed-tag", &seed("pattern-2-fixed-tag.json"));
    let arn = managed("seed-arn", &seed("pattern-1-arn.json"));
    let no_prod = managed(
        "no-prod",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"ssm:StartSession",
            "Resource":"arn:aws:ec2:*:*:instance/*","Condition":{"StringEquals":{"aws:ResourceTag/Env":"prod"}}}]}"#,
    );
    let forall = managed(
        "forall",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:StartSession","Resource":"arn:aws:ec2:*:*:instance/*",
            "Condition":{"ForAllValues:StringEquals":{"aws:ResourceTag/Project":["p01","p02"]}}}]}"#,
    );
    let mut boundary = managed(
        "team-boundary",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:*","Resource":"*",
            "Condition":{"StringEqualsIfExists":{"aws:ResourceTag/Team":"${aws:PrincipalTag/Team}"}}}]}"#,
    );
    boundary.boundary = true;
    let own = managed(
        "own-node",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:StartSession",
            "Resource":"arn:aws:ec2:*:*:instance/${aws:PrincipalTag/Node}"}]}"#,
    );
    let combos: Vec<Vec<UserPolicy>> = vec![
        vec![abac.clone()],
        vec![fixed.clone()],
        vec![arn.clone()],
        vec![abac.clone(), no_prod.clone()],
        vec![fixed.clone(), no_prod.clone()],
        vec![abac.clone(), arn.clone()],
        vec![forall.clone()],
        vec![forall.clone(), no_prod.clone()],
        vec![abac.clone(), boundary.clone()],
        vec![abac.clone(), fixed.clone(), boundary.clone()],
        vec![abac.clone(), no_prod.clone(), boundary.clone()],
        vec![],
    ];
    for i in 0..users {
        let mut tags = vec![
            Tag::new("Project", projects[rng.next(20)].clone()),
            Tag::new("Team", format!("t{}", rng.next(10))),
        ];
        let policies = match shape {
            Shape::TagBased => combos[rng.next(combos.len())].clone(),
            Shape::PerUserResource => {
                tags.push(Tag::new("Node", node_id(rng.next(nodes))));
                vec![own.clone()]
            }
        };
        f.add_user(&user(i), &tags, policies);
    }
    f
}

/// The baseline: one `evaluate` per pair, each user's PolicySet and each node's tags built
/// once, the request rebuilt per pair (it only borrows).
fn brute_force(f: &Fleet, context: &Context) -> usize {
    let mut allowed = 0;
    for u in &f.users {
        let set = &f.groups[u.group].set;
        for n in &f.nodes {
            let req = Request::new(&u.principal, ACTION, &n.arn)
                .with_resource_tags(&n.resource_tags)
                .with_context(context);
            allowed += usize::from(set.evaluate(&req) == Decision::Allow);
        }
    }
    allowed
}

/// The matrix, then every cell read once (so the whole matrix is materialised).
fn matrix(f: &Fleet, context: &Context) -> (usize, portcullis_analysis::matrix::Stats) {
    let m = Matrix::compute(f, ACTION, context);
    (m.allowed_count(), m.stats())
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        let out = black_box(f());
        times.push(start.elapsed());
        last = Some(out);
    }
    times.sort();
    let median = times[times.len() / 2];
    (median, last.unwrap_or_else(|| panic!("no runs")))
}

fn fmt(d: Duration) -> String {
    if d.as_secs_f64() >= 1.0 {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let sizes: &[(usize, usize, Shape, bool)] = if quick {
        &[(1000, 10_000, Shape::TagBased, true)]
    } else {
        &[
            (100, 1000, Shape::TagBased, true),
            (1000, 10_000, Shape::TagBased, true),
            (2000, 20_000, Shape::TagBased, true),
            (4000, 40_000, Shape::TagBased, false),
            (300, 3000, Shape::PerUserResource, true),
            (1000, 10_000, Shape::PerUserResource, true),
        ]
    };
    println!("| policies | users × nodes | pairs | user classes | node classes | evaluations | classes + evaluations | full matrix (every cell read) | brute force | speed-up | allowed |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for &(users, nodes, shape, with_brute) in sizes {
        let f = fleet(users, nodes, shape);
        let context = default_context(&f, 1_700_000_000);
        let (t_compute, _) = time(5, || Matrix::compute(&f, ACTION, &context).stats());
        let (t_matrix, (allowed, stats)) = time(5, || matrix(&f, &context));
        let (brute, speedup) = if with_brute {
            let (t_brute, brute_allowed) = time(3, || brute_force(&f, &context));
            assert_eq!(brute_allowed, allowed, "the matrix and the loop disagree");
            (
                fmt(t_brute),
                format!("{:.0}×", t_brute.as_secs_f64() / t_matrix.as_secs_f64()),
            )
        } else {
            ("-".to_owned(), "-".to_owned())
        };
        let name = match shape {
            Shape::TagBased => "tag-based (seed + risky)",
            Shape::PerUserResource => "per-user Resource variable (worst case)",
        };
        println!(
            "| {name} | {users} × {nodes} | {} | {} | {} | {} | {} | {} | {brute} | {speedup} | {allowed} |",
            users * nodes,
            stats.user_classes,
            stats.node_classes,
            stats.evaluations,
            fmt(t_compute),
            fmt(t_matrix),
        );
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "\n{cores} cores; load average {}; median of 5 matrix runs (the evaluations on up to {cores} threads) and 3 brute-force runs (one thread).",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
}
