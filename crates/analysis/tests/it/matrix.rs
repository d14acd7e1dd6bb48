//! The access matrix, who-can and what-can against brute-force evaluation of every pair, and
//! against the server's own authorizer.

use portcullis_analysis::matrix::{default_context, explain, what_can, who_can};
use portcullis_analysis::{Fleet, Matrix};
use portcullis_iam::{Decision, Request};

use crate::world::{World, SEED_NODE};

const ACTIONS: &[&str] = &[
    "ssm:StartSession",
    "ssm:SendCommand",
    "ec2:CreateTags",
    "ssm:TerminateSession",
    "iam:CreateUser",
];

async fn loaded() -> (World, Fleet) {
    let world = World::generated().await;
    let fleet = Fleet::load(world.svc.store().as_ref()).await.unwrap();
    (world, fleet)
}

fn brute_force(fleet: &Fleet, action: &str, user: usize, node: usize) -> Decision {
    let u = &fleet.users[user];
    let n = &fleet.nodes[node];
    let context = default_context(fleet, 1_700_000_000);
    let req = Request::new(&u.principal, action, &n.arn)
        .with_resource_tags(&n.resource_tags)
        .with_context(&context);
    fleet.groups[u.group].set.evaluate(&req)
}

#[tokio::test]
async fn every_cell_matches_brute_force() {
    let (_world, fleet) = loaded().await;
    assert_eq!((fleet.users.len(), fleet.nodes.len()), (50, 200));
    let context = default_context(&fleet, 1_700_000_000);
    for action in ACTIONS {
        let m = Matrix::compute(&fleet, action, &context);
        let mut allowed = 0;
        let mut denied_explicitly = 0;
        for r in 0..fleet.users.len() {
            for c in 0..fleet.nodes.len() {
                let want = brute_force(&fleet, action, r, c);
                assert_eq!(
                    m.decision(r, c),
                    want,
                    "{action}: {} on {}",
                    fleet.users[r].name,
                    fleet.nodes[c].id
                );
                allowed += usize::from(want == Decision::Allow);
                denied_explicitly += usize::from(want == Decision::ExplicitDeny);
            }
        }
        assert_eq!(m.allowed_count(), allowed, "{action}");
        let s = m.stats();
        println!("{action}: {allowed} allowed, {denied_explicitly} explicitly denied, {s:?}");
        // Nothing grants iam:* (NotAction excludes it); everything else is granted somewhere.
        assert_eq!(allowed > 0, !action.starts_with("iam:"), "{action}");
        if *action == "ssm:StartSession" {
            assert!(denied_explicitly > 0, "the ops group's Deny should apply");
            assert!(s.user_classes < 50 && s.node_classes < 200, "{s:?}");
        }
        if *action == "ssm:SendCommand" {
            // `own-node` has a variable in its Resource that can match any managed instance
            // (every fourth node): each of those is its own class.
            assert!(s.node_classes >= 50 && s.node_classes < 200, "{s:?}");
        }
    }
}

#[tokio::test]
async fn answers_name_the_deciding_statements() {
    let (_world, fleet) = loaded().await;
    let context = default_context(&fleet, 1_700_000_000);
    let m = Matrix::compute(&fleet, "ssm:StartSession", &context);
    for r in 0..fleet.users.len() {
        for c in 0..fleet.nodes.len() {
            let a = m.answer(r, c).unwrap();
            assert_eq!(a.decision, m.decision(r, c));
            match a.decision {
                Decision::Allow => {
                    assert!(!a.deciding.is_empty());
                    assert!(a.reason.is_none());
                }
                Decision::ExplicitDeny => {
                    assert_eq!(
                        a.deciding[0].label,
                        "policy \"group ops inline policy no-prod\" /Statement/0 (Sid NoProd)"
                    );
                    assert!(a
                        .reason
                        .as_deref()
                        .unwrap()
                        .contains("with an explicit deny"));
                }
                Decision::ImplicitDeny => {
                    assert!(a.deciding.is_empty());
                    assert!(a.reason.is_some());
                }
            }
        }
    }
}

#[tokio::test]
async fn who_can_and_what_can_agree_with_brute_force() {
    let (_world, fleet) = loaded().await;
    let context = default_context(&fleet, 1_700_000_000);
    for node in [0, 1, 4, 57, 199] {
        let answers = who_can(&fleet, node, "ssm:StartSession", &context);
        assert_eq!(answers.len(), fleet.users.len());
        for (u, a) in answers.iter().enumerate() {
            assert_eq!((a.user, a.node), (u, node));
            assert_eq!(a.decision, brute_force(&fleet, "ssm:StartSession", u, node));
        }
    }
    let actions = ["ssm:StartSession", "ssm:SendCommand"];
    for user in [0, 7, 31, 49] {
        let answers = what_can(&fleet, user, &actions, &context);
        assert_eq!(answers.len(), fleet.nodes.len() * 2);
        for (i, a) in answers.iter().enumerate() {
            let (node, action) = (i / 2, actions[i % 2]);
            assert_eq!((a.user, a.node, a.action.as_str()), (user, node, action));
            assert_eq!(a.decision, brute_force(&fleet, action, user, node));
            let direct = explain(&fleet, user, node, action, &context).unwrap();
            assert_eq!(a, &direct);
        }
    }
}

/// The fleet read from the store decides as the server does.
#[tokio::test]
async fn matches_the_servers_authorizer() {
    let (world, fleet) = loaded().await;
    let context = default_context(&fleet, 1_700_000_000);
    let m = Matrix::compute(&fleet, "ssm:StartSession", &context);
    for (u, (name, _)) in world.users.iter().enumerate() {
        let r = fleet.user_index(name).unwrap();
        for c in (0..fleet.nodes.len()).step_by(7) {
            let node = &fleet.nodes[c].id;
            let server = world.authorized(u, "ssm:StartSession", node).await;
            assert_eq!(m.decision(r, c).is_allowed(), server, "{name} on {node}");
        }
    }
    let seed = fleet.node_index(SEED_NODE).unwrap();
    assert!(
        who_can(&fleet, seed, "ssm:StartSession", &context)
            .iter()
            .any(|a| a.decision.is_allowed()
                && a.deciding
                    .iter()
                    .any(|d| d.policy.ends_with(":policy/seed-arn"))),
        "someone has the seed's pattern 1 for its node"
    );
}

#[tokio::test]
async fn subsets_and_unknown_indices() {
    let (_world, fleet) = loaded().await;
    let context = default_context(&fleet, 1_700_000_000);
    let m = Matrix::compute_for(&fleet, "ssm:StartSession", &context, &[3, 9], &[10, 0, 5]);
    for (r, &u) in m.rows().iter().enumerate() {
        for (c, &n) in m.cols().iter().enumerate() {
            assert_eq!(
                m.decision(r, c),
                brute_force(&fleet, "ssm:StartSession", u, n)
            );
        }
    }
    assert_eq!(m.decision(2, 0), Decision::ImplicitDeny);
    assert!(m.answer(0, 3).is_none());
}

/// Large enough to take the multi-threaded path (every user and node distinct: a Resource
/// with a principal-tag variable), and still equal to the brute-force loop.
#[test]
fn parallel_evaluation_matches_brute_force() {
    use portcullis_core::model::{Tag, User};
    use portcullis_core::policies::UserPolicy;
    use portcullis_iam::{Policy, PolicyKind};

    let text = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"ssm:StartSession","Resource":"arn:aws:ec2:*:*:instance/${aws:PrincipalTag/Node}"},
        {"Effect":"Deny","Action":"ssm:StartSession","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/Env":"prod"}}}]}"#;
    let own = UserPolicy {
        label: "own".to_owned(),
        document: text.to_owned(),
        policy: Policy::parse_as(text, PolicyKind::Managed).unwrap(),
        boundary: false,
    };
    let mut fleet = Fleet::new("123456789012", "ap-northeast-1");
    for n in 0..400 {
        let env = if n % 3 == 0 { "prod" } else { "dev" };
        fleet.add_node(&format!("i-{n:017x}"), &[Tag::new("Env", env)]);
    }
    for u in 0..400 {
        let name = format!("u{u}");
        let user = User {
            arn: format!("arn:aws:iam::123456789012:user/{name}"),
            user_id: format!("AIDA{u:017}"),
            name,
            path: "/".to_owned(),
            created: 0,
            permissions_boundary: None,
        };
        let node = format!("i-{:017x}", (u * 7) % 400);
        fleet.add_user(&user, &[Tag::new("Node", node)], vec![own.clone()]);
    }
    let context = default_context(&fleet, 1_700_000_000);
    let m = Matrix::compute(&fleet, "ssm:StartSession", &context);
    assert!(m.stats().evaluations >= 100_000, "{:?}", m.stats());
    let mut allowed = 0;
    for r in 0..400 {
        for c in 0..400 {
            let want = brute_force(&fleet, "ssm:StartSession", r, c);
            assert_eq!(m.decision(r, c), want, "u{r} on node {c}");
            allowed += usize::from(want.is_allowed());
        }
    }
    assert_eq!(m.allowed_count(), allowed);
    assert!(allowed > 0);
}
