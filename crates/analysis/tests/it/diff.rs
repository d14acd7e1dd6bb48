//! `access diff`: exactly the pairs that gain or lose access under a change.

use std::collections::BTreeSet;

use portcullis_analysis::diff::{
    diff, edit_tags, Change, ChangeError, PairChange, Principal, Target,
};
use portcullis_analysis::matrix::default_context;
use portcullis_analysis::Fleet;
use portcullis_core::model::Tag;
use portcullis_core::policies::UserPolicy;
use portcullis_iam::{Policy, PolicyKind, Request};

use crate::world::{seed, World, ACCOUNT, NO_PROD};

const START: &str = "ssm:StartSession";
const N_DEV: &str = "i-00000000000000d01"; // Env=dev, no Project
const N_PROD: &str = "i-00000000000000b01"; // Env=prod, no Project
const N_TEST: &str = "i-00000000000000e01"; // Project=test

/// alice (test, ABAC), bob (prod, ABAC), carol (test, nothing), dave (test, ABAC, in ops
/// whose inline policy denies prod), erin (test, in devs which has ABAC attached).
async fn small() -> (World, Fleet) {
    let mut w = World::empty().await;
    let root = w.root();
    w.svc
        .create_policy(&root, "seed-abac", None, &seed("pattern-3-abac.json"), None)
        .await
        .unwrap();
    let abac = World::policy_arn("seed-abac");
    w.svc.create_group(&root, "ops", None).await.unwrap();
    w.svc
        .put_group_policy(&root, "ops", "no-prod", NO_PROD)
        .await
        .unwrap();
    w.svc.create_group(&root, "devs", None).await.unwrap();
    w.svc
        .attach_group_policy(&root, "devs", &abac)
        .await
        .unwrap();
    for (name, project) in [
        ("alice", "test"),
        ("bob", "prod"),
        ("carol", "test"),
        ("dave", "test"),
        ("erin", "test"),
    ] {
        w.add_user(name, &[Tag::new("Project", project)]).await;
    }
    for name in ["alice", "bob", "dave"] {
        w.svc.attach_user_policy(&root, name, &abac).await.unwrap();
    }
    w.svc.add_user_to_group(&root, "ops", "dave").await.unwrap();
    w.svc
        .add_user_to_group(&root, "devs", "erin")
        .await
        .unwrap();
    w.add_node(N_DEV, &[Tag::new("Env", "dev")]).await;
    w.add_node(N_PROD, &[Tag::new("Env", "prod")]).await;
    w.add_node(N_TEST, &[Tag::new("Project", "test")]).await;
    let fleet = Fleet::load(w.svc.store().as_ref()).await.unwrap();
    (w, fleet)
}

fn changes(fleet: &Fleet, found: &[PairChange]) -> BTreeSet<(bool, String, String)> {
    found
        .iter()
        .map(|c| {
            (
                c.gained,
                fleet.users[c.user].name.clone(),
                fleet.nodes[c.node].id.clone(),
            )
        })
        .collect()
}

fn set(items: &[(bool, &str, &str)]) -> BTreeSet<(bool, String, String)> {
    items
        .iter()
        .map(|(g, u, n)| (*g, (*u).to_owned(), (*n).to_owned()))
        .collect()
}

fn tag_node(fleet: &Fleet, id: &str, add: &[Tag], remove: &[String]) -> Fleet {
    let mut after = fleet.clone();
    let n = after.node_index(id).unwrap();
    let tags = edit_tags(&after.nodes[n].tags, add, remove);
    after.set_node_tags(n, &tags);
    after
}

#[tokio::test]
async fn tagging_a_node_shows_who_gains_a_shell() {
    let (_w, before) = small().await;
    let ctx = default_context(&before, 1_700_000_000);
    let after = tag_node(&before, N_DEV, &[Tag::new("Project", "test")], &[]);
    let found = diff(&before, &after, &[START], &ctx);
    assert_eq!(
        changes(&before, &found),
        set(&[
            (true, "alice", N_DEV),
            (true, "dave", N_DEV),
            (true, "erin", N_DEV)
        ])
    );
    for c in &found {
        assert_eq!(c.after.deciding.len(), 1);
        assert_eq!(
            c.after.deciding[0].label,
            format!("policy \"arn:aws:iam::{ACCOUNT}:policy/seed-abac\" /Statement/0")
        );
        assert!(c.before.deciding.is_empty());
    }
    // On the prod node, dave's group denies.
    let after = tag_node(&before, N_PROD, &[Tag::new("Project", "test")], &[]);
    let found = diff(&before, &after, &[START], &ctx);
    assert_eq!(
        changes(&before, &found),
        set(&[(true, "alice", N_PROD), (true, "erin", N_PROD)])
    );
    // Removing the tag takes it away again.
    let after = tag_node(&before, N_TEST, &[], &["project".to_owned()]);
    let found = diff(&before, &after, &[START], &ctx);
    assert_eq!(
        changes(&before, &found),
        set(&[
            (false, "alice", N_TEST),
            (false, "dave", N_TEST),
            (false, "erin", N_TEST)
        ])
    );
    let lost = &found[0];
    assert!(!lost.before.deciding.is_empty() && lost.after.deciding.is_empty());
}

#[tokio::test]
async fn detaching_a_policy_shows_who_loses_it() {
    let (_w, before) = small().await;
    let ctx = default_context(&before, 1_700_000_000);
    let abac = World::policy_arn("seed-abac");
    let mut after = before.clone();
    assert_eq!(after.detach(&Target::Group("devs".to_owned()), &abac), 1);
    let found = diff(&before, &after, &[START], &ctx);
    assert_eq!(changes(&before, &found), set(&[(false, "erin", N_TEST)]));
    // From one user.
    let mut after = before.clone();
    let alice = after.user_index("alice").unwrap();
    assert_eq!(after.detach(&Target::User(alice), &abac), 1);
    assert_eq!(
        changes(&before, &diff(&before, &after, &[START], &ctx)),
        set(&[(false, "alice", N_TEST)])
    );
    // Detaching what is not attached changes nothing.
    let mut after = before.clone();
    let carol = after.user_index("carol").unwrap();
    assert_eq!(after.detach(&Target::User(carol), &abac), 0);
    assert!(diff(&before, &after, &[START], &ctx).is_empty());
}

#[tokio::test]
async fn attaching_replacing_and_retagging_users() {
    let (_w, before) = small().await;
    let ctx = default_context(&before, 1_700_000_000);
    // A proposed document for carol: every dev-tagged node.
    let text = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:StartSession",
        "Resource":"arn:aws:ec2:*:*:instance/*","Condition":{"StringEquals":{"aws:ResourceTag/Env":"dev"}}}]}"#;
    let proposed = UserPolicy {
        label: "proposed.json".to_owned(),
        document: text.to_owned(),
        policy: Policy::parse_as(text, PolicyKind::Managed).unwrap(),
        boundary: false,
    };
    let mut after = before.clone();
    let carol = after.user_index("carol").unwrap();
    assert_eq!(after.attach(&Target::User(carol), &proposed), 1);
    let found = diff(&before, &after, &[START], &ctx);
    assert_eq!(changes(&before, &found), set(&[(true, "carol", N_DEV)]));
    assert_eq!(found[0].after.deciding[0].policy, "proposed.json");
    // To the ops group (dave): the group's Deny does not cover dev.
    let mut after = before.clone();
    assert_eq!(after.attach(&Target::Group("ops".to_owned()), &proposed), 1);
    assert_eq!(
        changes(&before, &diff(&before, &after, &[START], &ctx)),
        set(&[(true, "dave", N_DEV)])
    );
    // The ABAC policy replaced by the fixed-tag pattern: bob (Project=prod) keeps nothing
    // of prod but gains the test node.
    let fixed = seed("pattern-2-fixed-tag.json");
    let mut after = before.clone();
    let n = after.replace_document(
        &World::policy_arn("seed-abac"),
        &fixed,
        &Policy::parse_as(&fixed, PolicyKind::Managed).unwrap(),
    );
    assert_eq!(n, 4);
    assert_eq!(
        changes(&before, &diff(&before, &after, &[START], &ctx)),
        set(&[(true, "bob", N_TEST)])
    );
    // bob moves to Project=test.
    let mut after = before.clone();
    let bob = after.user_index("bob").unwrap();
    let tags = edit_tags(&after.users[bob].tags, &[Tag::new("project", "test")], &[]);
    after.set_user_tags(bob, &tags);
    assert_eq!(after.users[bob].tags, vec![Tag::new("project", "test")]);
    assert_eq!(
        changes(&before, &diff(&before, &after, &[START], &ctx)),
        set(&[(true, "bob", N_TEST)])
    );
}

/// `Change`, as the CLI and the console state a change: what it did, in words, and what
/// cannot be done.
#[tokio::test]
async fn changes_say_what_they_did_and_refuse_what_cannot_be() {
    let (_w, before) = small().await;
    let ctx = default_context(&before, 1_700_000_000);
    let abac = World::policy_arn("seed-abac");
    let apply = |change: Change| {
        let mut after = before.clone();
        let said = change.apply(&mut after);
        (said, after)
    };
    let user = |name: &str| Principal::User(name.to_owned());

    let (said, after) = apply(Change::NodeTags {
        node: N_DEV.to_owned(),
        add: vec![Tag::new("Project", "test")],
        remove: vec!["env".to_owned()],
    });
    assert_eq!(
        said.unwrap(),
        format!("tag node {N_DEV} (+Project=test -env)")
    );
    assert_eq!(
        after.nodes[after.node_index(N_DEV).unwrap()].tags,
        vec![Tag::new("Project", "test")]
    );
    assert_eq!(
        changes(&before, &diff(&before, &after, &[START], &ctx)).len(),
        3
    );

    let (said, after) = apply(Change::UserTags {
        user: "bob".to_owned(),
        add: vec![Tag::new("Project", "test")],
        remove: vec![],
    });
    assert_eq!(said.unwrap(), "tag user bob (+Project=test)");
    assert_eq!(
        changes(&before, &diff(&before, &after, &[START], &ctx)),
        set(&[(true, "bob", N_TEST)])
    );

    let (said, after) = apply(Change::Detach {
        from: Principal::Group("devs".to_owned()),
        policy: abac.clone(),
    });
    assert_eq!(
        said.unwrap(),
        format!("detach {abac} from group devs (1 users)")
    );
    assert_eq!(
        changes(&before, &diff(&before, &after, &[START], &ctx)),
        set(&[(false, "erin", N_TEST)])
    );

    // An inline policy by its name; detaching it again is refused.
    let (said, after) = apply(Change::Detach {
        from: Principal::Group("ops".to_owned()),
        policy: "no-prod".to_owned(),
    });
    assert_eq!(said.unwrap(), "detach no-prod from group ops (1 users)");
    let mut again = after.clone();
    let refused = Change::Detach {
        from: Principal::Group("ops".to_owned()),
        policy: "no-prod".to_owned(),
    }
    .apply(&mut again)
    .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "The group ops has no policy no-prod attached."
    );

    let fixed = seed("pattern-2-fixed-tag.json");
    let (said, after) = apply(Change::NewVersion {
        arn: abac.clone(),
        document: fixed.clone(),
        policy: Policy::parse_as(&fixed, PolicyKind::Managed).unwrap(),
    });
    assert_eq!(
        said.unwrap(),
        format!("new default version of {abac} (4 users have it)")
    );
    assert_eq!(
        changes(&before, &diff(&before, &after, &[START], &ctx)),
        set(&[(true, "bob", N_TEST)])
    );

    // An inline policy put twice under one name: the second replaces the first.
    let allow_dev = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:StartSession",
        "Resource":"arn:aws:ec2:*:*:instance/*","Condition":{"StringEquals":{"aws:ResourceTag/Env":"dev"}}}]}"#;
    let allow_prod = allow_dev.replace("\"dev\"", "\"prod\"");
    let put = |doc: &str| Change::PutInline {
        user: "carol".to_owned(),
        name: "extra".to_owned(),
        document: doc.to_owned(),
        policy: Policy::parse_as(doc, PolicyKind::Inline).unwrap(),
    };
    let (said, after) = apply(put(allow_dev));
    assert_eq!(said.unwrap(), "put inline policy extra on user carol");
    assert_eq!(
        changes(&before, &diff(&before, &after, &[START], &ctx)),
        set(&[(true, "carol", N_DEV)])
    );
    let mut twice = after.clone();
    put(&allow_prod).apply(&mut twice).unwrap();
    assert_eq!(
        changes(&before, &diff(&before, &twice, &[START], &ctx)),
        set(&[(true, "carol", N_PROD)])
    );

    let proposed = UserPolicy {
        label: "proposed.json".to_owned(),
        document: allow_dev.to_owned(),
        policy: Policy::parse_as(allow_dev, PolicyKind::Managed).unwrap(),
        boundary: false,
    };
    let (said, _) = apply(Change::Attach {
        to: user("carol"),
        policy: proposed.clone(),
    });
    assert_eq!(
        said.unwrap(),
        "attach proposed.json to user carol (1 users)"
    );

    // What cannot be: named, nothing else.
    assert_eq!(
        apply(Change::Attach {
            to: user("zed"),
            policy: proposed
        })
        .0
        .unwrap_err(),
        ChangeError::NoUser("zed".to_owned())
    );
    let no_node = apply(Change::NodeTags {
        node: "i-0000000000000dead".to_owned(),
        add: vec![],
        remove: vec![],
    })
    .0;
    assert_eq!(
        no_node.unwrap_err().to_string(),
        "There is no node i-0000000000000dead."
    );
    assert_eq!(
        apply(Change::Detach {
            from: user("carol"),
            policy: abac
        })
        .0
        .unwrap_err()
        .to_string(),
        "The user carol has no policy arn:aws:iam::123456789012:policy/seed-abac attached."
    );
}

/// On the generated fleet, every change equals the brute-force comparison of all pairs.
#[tokio::test]
async fn diff_matches_brute_force_on_the_generated_fleet() {
    let w = World::generated().await;
    let before = Fleet::load(w.svc.store().as_ref()).await.unwrap();
    let ctx = default_context(&before, 1_700_000_000);
    let brute = |a: &Fleet, b: &Fleet, action: &str| {
        let mut out = BTreeSet::new();
        for u in 0..a.users.len() {
            for n in 0..a.nodes.len() {
                let allowed = |f: &Fleet| {
                    let (user, node) = (&f.users[u], &f.nodes[n]);
                    let req = Request::new(&user.principal, action, &node.arn)
                        .with_resource_tags(&node.resource_tags)
                        .with_context(&ctx);
                    f.groups[user.group].set.evaluate(&req).is_allowed()
                };
                let (x, y) = (allowed(a), allowed(b));
                if x != y {
                    out.insert((y, a.users[u].name.clone(), a.nodes[n].id.clone()));
                }
            }
        }
        out
    };
    let mut cases: Vec<(&str, Fleet)> = Vec::new();
    let untagged = before
        .nodes
        .iter()
        .find(|n| {
            n.tags
                .iter()
                .all(|t| !t.key.eq_ignore_ascii_case("project"))
        })
        .unwrap()
        .id
        .clone();
    cases.push((
        "tag Project=test",
        tag_node(&before, &untagged, &[Tag::new("Project", "test")], &[]),
    ));
    cases.push(("untag Env", {
        let id = before.nodes[5].id.clone();
        tag_node(&before, &id, &[], &["env".to_owned()])
    }));
    cases.push(("detach abac from devs", {
        let mut f = before.clone();
        f.detach(
            &Target::Group("devs".to_owned()),
            &World::policy_arn("seed-abac"),
        );
        f
    }));
    cases.push(("retag user00", {
        let mut f = before.clone();
        f.set_user_tags(0, &[Tag::new("Project", "dev"), Tag::new("Team", "a")]);
        f
    }));
    for (name, after) in &cases {
        for action in [START, "ssm:SendCommand"] {
            let found = diff(&before, after, &[action], &ctx);
            let want = brute(&before, after, action);
            assert_eq!(changes(&before, &found), want, "{name} {action}");
            if *name == "tag Project=test" && action == START {
                assert!(!want.is_empty(), "{name} should change something");
            }
        }
    }
}
