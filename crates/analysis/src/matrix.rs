//! The access matrix: for one action, the decision for every (user, node) pair, made by
//! the real evaluator ([`portcullis_iam::PolicySet::evaluate`]), with the deciding
//! statements of any answer from [`portcullis_iam::PolicySet::explain`].
//!
//! # Why it is fast, and why that is exact
//!
//! A decision is a function of what evaluation reads: the statements that can apply to the
//! action, and, for those, the resource ARN (through `Resource`/`NotResource` patterns) and
//! the request keys they read (condition keys and policy variables; see
//! [`portcullis_iam::Statement::keys_read`]). Keys come from the principal, the resource's
//! tags or the request context, which is the same for every pair here.
//!
//! So the matrix sorts users into classes by (policy group, values of the principal keys
//! their relevant statements read), and nodes into classes by (values of the resource-tag
//! keys any relevant statement reads, which variable-free Resource items match the node's
//! ARN, and the ARN itself if any relevant Resource item has a variable). Two pairs in the
//! same classes present evaluation with identical inputs for every statement that can
//! match, so the engine is asked once per pair of classes. With tag-based policies a fleet
//! of thousands of users and nodes has tens of classes on each side. When a policy makes
//! every user or node distinct (a Resource with `${aws:username}` for the action, say),
//! classes fall back to single users or nodes and the matrix costs what the brute-force loop
//! costs. Tests compare every cell with the brute-force loop.

use std::collections::HashMap;
use std::hash::Hash;

use portcullis_iam::{
    iso8601, Context, Decision, Effect, Key, KeyScope, Principal, Request, Resources,
    StatementOutcome, Values,
};

use crate::fleet::Fleet;

/// Below this many evaluations the matrix stays on one thread.
const PARALLEL_FROM: usize = 100_000;

/// The request keys every analysed request carries, as the server would set them at `now`
/// (seconds since the epoch). `aws:SourceIp` and `aws:SecureTransport` depend on the caller's
/// connection and are absent unless added.
pub fn default_context(fleet: &Fleet, now: i64) -> Context {
    let mut c = Context::new();
    c.insert("aws:CurrentTime", iso8601(now));
    c.insert("aws:EpochTime", now.to_string());
    c.insert("aws:RequestedRegion", fleet.region.clone());
    c.insert("aws:ViaAWSService", "false");
    c.insert("aws:PrincipalIsAWSService", "false");
    c
}

/// A statement that decided an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deciding {
    /// The policy's name: `user NAME inline policy P`, `group G inline policy P`, or an ARN.
    pub policy: String,
    /// JSON pointer of the statement in its document.
    pub pointer: String,
    pub sid: Option<String>,
    pub effect: Effect,
    /// `policy "NAME" /Statement/0 (Sid S)`, as the audit log writes it.
    pub label: String,
}

/// The decision for one (user, node, action), with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Index into [`Fleet::users`].
    pub user: usize,
    /// Index into [`Fleet::nodes`].
    pub node: usize,
    pub action: String,
    pub decision: Decision,
    /// The statements that decided: the matching Allows for an allow, the matching Denies
    /// for an explicit deny, none for an implicit deny.
    pub deciding: Vec<Deciding>,
    /// AWS's access-denied text for a deny.
    pub reason: Option<String>,
    /// For an implicit deny: the Allow statements that name the action, and why each did not
    /// match (`label`, `resource did not match` or the failed condition), so "why not?" has
    /// an answer.
    pub near_misses: Vec<(String, String)>,
}

/// How much work the classes saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub users: usize,
    pub nodes: usize,
    pub user_classes: usize,
    pub node_classes: usize,
    /// Calls to the evaluator (user classes × node classes).
    pub evaluations: usize,
}

/// The decision for every (user, node) pair of a fleet, for one action.
#[derive(Debug, Clone)]
pub struct Matrix<'f> {
    fleet: &'f Fleet,
    action: String,
    context: Context,
    rows: Vec<usize>,
    cols: Vec<usize>,
    row_class: Vec<u32>,
    col_class: Vec<u32>,
    col_classes: usize,
    /// Row class × column class, row-major.
    decisions: Vec<Decision>,
    row_classes: usize,
}

/// Interns signatures into dense class numbers, remembering each class's first member.
struct Interner<S> {
    ids: HashMap<S, u32>,
    reps: Vec<usize>,
}

impl<S: Hash + Eq> Interner<S> {
    fn new() -> Self {
        Interner {
            ids: HashMap::new(),
            reps: Vec::new(),
        }
    }

    fn class(&mut self, sig: S, member: usize) -> u32 {
        let next = u32::try_from(self.reps.len()).unwrap_or(u32::MAX);
        *self.ids.entry(sig).or_insert_with(|| {
            self.reps.push(member);
            next
        })
    }
}

/// What the statements that can apply to the action read.
struct Relevant<'f> {
    /// Per policy group: the principal keys its relevant statements read.
    principal_keys: Vec<Vec<&'f Key>>,
    /// Over all groups: the resource-tag keys relevant statements read.
    resource_keys: Vec<&'f Key>,
    /// Variable-free Resource items without wildcards, by text.
    literals: HashMap<&'f str, u32>,
    /// Other variable-free Resource items.
    wildcards: Vec<(&'f Resources, usize)>,
    /// Resource items with a policy variable: a node that one of them may match (for some
    /// principal) is told apart by its ARN.
    variable_items: Vec<(&'f Resources, usize)>,
}

fn push_key<'f>(list: &mut Vec<&'f Key>, key: &'f Key) {
    if !list.iter().any(|k| k.name() == key.name()) {
        list.push(key);
    }
}

impl<'f> Relevant<'f> {
    fn new(fleet: &'f Fleet, action: &str, groups: &[bool]) -> Relevant<'f> {
        let mut rel = Relevant {
            principal_keys: vec![Vec::new(); fleet.groups.len()],
            resource_keys: Vec::new(),
            literals: HashMap::new(),
            wildcards: Vec::new(),
            variable_items: Vec::new(),
        };
        let mut seen_wildcards: HashMap<(&str, bool), ()> = HashMap::new();
        for (g, group) in fleet.groups.iter().enumerate() {
            if !groups.get(g).copied().unwrap_or(false) {
                continue;
            }
            let mut principal_keys = Vec::new();
            for p in &group.policies {
                let variables_on =
                    p.policy.effective_version() == portcullis_iam::Version::V2012_10_17;
                for s in p
                    .policy
                    .statements
                    .iter()
                    .filter(|s| s.applies_to_action(action))
                {
                    for key in s.keys_read() {
                        match key.scope() {
                            KeyScope::Principal => push_key(&mut principal_keys, key),
                            KeyScope::Resource => push_key(&mut rel.resource_keys, key),
                            KeyScope::Request => {}
                        }
                    }
                    for (i, item) in s.resource.items.iter().enumerate() {
                        if s.resource.item_has_variables(i) {
                            rel.variable_items.push((&s.resource, i));
                        } else if !item.contains(['*', '?', '$']) {
                            let next = u32::try_from(rel.literals.len()).unwrap_or(u32::MAX);
                            rel.literals.entry(item.as_str()).or_insert(next);
                        } else if seen_wildcards
                            .insert((item.as_str(), variables_on), ())
                            .is_none()
                        {
                            rel.wildcards.push((&s.resource, i));
                        }
                    }
                }
            }
            if let Some(slot) = rel.principal_keys.get_mut(g) {
                *slot = principal_keys;
            }
        }
        rel
    }
}

/// The values of some keys in a request (`None`: the key is absent).
type KeyValues = Vec<Option<Vec<String>>>;

/// What tells nodes apart: resource-key values, the Resource items that match the ARN, and
/// the ARN itself when a Resource item with a variable may match it.
type NodeSig<'a> = (KeyValues, Vec<usize>, Option<&'a str>);

fn values(v: Option<Values>) -> Option<Vec<String>> {
    v.map(Values::to_vec)
}

impl<'f> Matrix<'f> {
    /// The full matrix: every user against every node.
    pub fn compute(fleet: &'f Fleet, action: &str, context: &Context) -> Matrix<'f> {
        let rows: Vec<usize> = (0..fleet.users.len()).collect();
        let cols: Vec<usize> = (0..fleet.nodes.len()).collect();
        Matrix::compute_for(fleet, action, context, &rows, &cols)
    }

    /// The matrix for some users (`rows`, indices into [`Fleet::users`]) and some nodes
    /// (`cols`, indices into [`Fleet::nodes`]).
    pub fn compute_for(
        fleet: &'f Fleet,
        action: &str,
        context: &Context,
        rows: &[usize],
        cols: &[usize],
    ) -> Matrix<'f> {
        let mut used = vec![false; fleet.groups.len()];
        for u in rows.iter().filter_map(|&r| fleet.users.get(r)) {
            if let Some(slot) = used.get_mut(u.group) {
                *slot = true;
            }
        }
        let rel = Relevant::new(fleet, action, &used);

        // Node classes.
        let nobody = Principal::root(&fleet.account);
        let literal_count = rel.literals.len();
        let mut node_classes: Interner<NodeSig> = Interner::new();
        let mut col_class = Vec::with_capacity(cols.len());
        for &n in cols {
            let Some(node) = fleet.nodes.get(n) else {
                col_class.push(u32::MAX);
                continue;
            };
            let req =
                Request::new(&nobody, action, &node.arn).with_resource_tags(&node.resource_tags);
            let keys = rel
                .resource_keys
                .iter()
                .map(|k| values(req.lookup(k)))
                .collect();
            let mut patterns = Vec::new();
            if let Some(&id) = rel.literals.get(node.arn.as_str()) {
                patterns.push(id as usize);
            }
            for (j, (res, i)) in rel.wildcards.iter().enumerate() {
                if res.item_matches(*i, &node.arn) == Some(true) {
                    patterns.push(literal_count + j);
                }
            }
            let arn = rel
                .variable_items
                .iter()
                .any(|(res, i)| res.item_may_match(*i, &node.arn))
                .then_some(node.arn.as_str());
            col_class.push(node_classes.class((keys, patterns, arn), n));
        }

        // User classes.
        let mut user_classes: Interner<(usize, KeyValues)> = Interner::new();
        let mut row_class = Vec::with_capacity(rows.len());
        for &r in rows {
            let Some(user) = fleet.users.get(r) else {
                row_class.push(u32::MAX);
                continue;
            };
            let req = Request::new(&user.principal, action, "");
            let keys = rel
                .principal_keys
                .get(user.group)
                .map_or_else(Vec::new, |ks| {
                    ks.iter().map(|k| values(req.lookup(k))).collect()
                });
            row_class.push(user_classes.class((user.group, keys), r));
        }

        // One evaluation per pair of classes, rows of classes split across the cores when
        // there are enough of them to be worth a thread.
        let col_classes = node_classes.reps.len();
        let row_classes = user_classes.reps.len();
        let evaluate_rows = |reps: &[usize]| -> Vec<Decision> {
            let mut out = Vec::with_capacity(reps.len() * col_classes);
            for &u in reps {
                let (Some(user), Some(group)) = (
                    fleet.users.get(u),
                    fleet.users.get(u).and_then(|x| fleet.groups.get(x.group)),
                ) else {
                    out.extend(std::iter::repeat_n(Decision::ImplicitDeny, col_classes));
                    continue;
                };
                for &n in &node_classes.reps {
                    let decision = fleet.nodes.get(n).map_or(Decision::ImplicitDeny, |node| {
                        let req = Request::new(&user.principal, action, &node.arn)
                            .with_resource_tags(&node.resource_tags)
                            .with_context(context);
                        group.set.evaluate(&req)
                    });
                    out.push(decision);
                }
            }
            out
        };
        let threads = std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .min(row_classes.max(1));
        let decisions = if threads > 1 && row_classes * col_classes >= PARALLEL_FROM {
            let chunk = row_classes.div_ceil(threads);
            std::thread::scope(|scope| {
                let handles: Vec<_> = user_classes
                    .reps
                    .chunks(chunk)
                    .map(|reps| (reps.len(), scope.spawn(move || evaluate_rows(reps))))
                    .collect();
                let mut all = Vec::with_capacity(row_classes * col_classes);
                for (rows, h) in handles {
                    // Evaluation cannot panic; if it did, its cells would be refused, in place.
                    let part = h
                        .join()
                        .unwrap_or_else(|_| vec![Decision::ImplicitDeny; rows * col_classes]);
                    all.extend(part);
                }
                all
            })
        } else {
            evaluate_rows(&user_classes.reps)
        };
        Matrix {
            fleet,
            action: action.to_owned(),
            context: context.clone(),
            rows: rows.to_vec(),
            cols: cols.to_vec(),
            row_class,
            col_class,
            col_classes,
            decisions,
            row_classes,
        }
    }

    pub fn action(&self) -> &str {
        &self.action
    }

    /// The users (indices into [`Fleet::users`]) in row order.
    pub fn rows(&self) -> &[usize] {
        &self.rows
    }

    /// The nodes (indices into [`Fleet::nodes`]) in column order.
    pub fn cols(&self) -> &[usize] {
        &self.cols
    }

    /// The decision for row `r` and column `c` (positions in [`Self::rows`] and
    /// [`Self::cols`]); implicit deny outside the matrix.
    pub fn decision(&self, r: usize, c: usize) -> Decision {
        let (Some(&rc), Some(&cc)) = (self.row_class.get(r), self.col_class.get(c)) else {
            return Decision::ImplicitDeny;
        };
        self.decisions
            .get(rc as usize * self.col_classes + cc as usize)
            .copied()
            .unwrap_or(Decision::ImplicitDeny)
    }

    /// The decisions of row `r`, column by column.
    pub fn row(&self, r: usize) -> impl Iterator<Item = Decision> + '_ {
        let base = self
            .row_class
            .get(r)
            .map_or(usize::MAX, |&rc| rc as usize * self.col_classes);
        self.col_class.iter().map(move |&cc| {
            base.checked_add(cc as usize)
                .and_then(|i| self.decisions.get(i))
                .copied()
                .unwrap_or(Decision::ImplicitDeny)
        })
    }

    /// How many pairs are allowed.
    pub fn allowed_count(&self) -> usize {
        (0..self.rows.len())
            .map(|r| self.row(r).filter(|d| d.is_allowed()).count())
            .sum()
    }

    pub fn stats(&self) -> Stats {
        Stats {
            users: self.rows.len(),
            nodes: self.cols.len(),
            user_classes: self.row_classes,
            node_classes: self.col_classes,
            evaluations: self.decisions.len(),
        }
    }

    /// The answer for row `r` and column `c`, with the deciding statements, from the
    /// engine's explanation of that very request.
    pub fn answer(&self, r: usize, c: usize) -> Option<Answer> {
        let (&u, &n) = (self.rows.get(r)?, self.cols.get(c)?);
        explain(self.fleet, u, n, &self.action, &self.context)
    }
}

/// Explains one request: the decision and its deciding statements.
pub fn explain(
    fleet: &Fleet,
    user: usize,
    node: usize,
    action: &str,
    context: &Context,
) -> Option<Answer> {
    let u = fleet.users.get(user)?;
    let n = fleet.nodes.get(node)?;
    let set = &fleet.groups.get(u.group)?.set;
    let req = Request::new(&u.principal, action, &n.arn)
        .with_resource_tags(&n.resource_tags)
        .with_context(context);
    let explanation = set.explain(&req);
    let deciding = explanation
        .deciding()
        .into_iter()
        .map(|s| Deciding {
            policy: s.policy.clone(),
            pointer: s.pointer.clone(),
            sid: s.sid.clone(),
            effect: s.effect,
            label: s.label(),
        })
        .collect();
    let near_misses = if explanation.decision == Decision::ImplicitDeny {
        explanation
            .layers
            .iter()
            .flat_map(|l| &l.statements)
            .filter(|s| {
                s.effect == Effect::Allow
                    && !matches!(
                        s.outcome,
                        StatementOutcome::ActionNotMatched | StatementOutcome::Matched
                    )
            })
            .map(|s| (s.label(), s.outcome.to_string()))
            .collect()
    } else {
        Vec::new()
    };
    Some(Answer {
        user,
        node,
        action: action.to_owned(),
        decision: explanation.decision,
        deciding,
        reason: explanation.aws_message(),
        near_misses,
    })
}

/// Who may do `action` on a node: one answer per user, in the fleet's user order.
pub fn who_can(fleet: &Fleet, node: usize, action: &str, context: &Context) -> Vec<Answer> {
    let rows: Vec<usize> = (0..fleet.users.len()).collect();
    let m = Matrix::compute_for(fleet, action, context, &rows, &[node]);
    (0..rows.len()).filter_map(|r| m.answer(r, 0)).collect()
}

/// What a user may do on each node: one answer per node and action, nodes in the fleet's
/// order, actions in the order given.
pub fn what_can(fleet: &Fleet, user: usize, actions: &[&str], context: &Context) -> Vec<Answer> {
    let cols: Vec<usize> = (0..fleet.nodes.len()).collect();
    let matrices: Vec<Matrix> = actions
        .iter()
        .map(|a| Matrix::compute_for(fleet, a, context, &[user], &cols))
        .collect();
    let mut out = Vec::new();
    for c in 0..cols.len() {
        for m in &matrices {
            out.extend(m.answer(0, c));
        }
    }
    out
}

/// Tags as a JSON object, `{"Key": "Value"}`.
pub fn tags_json(tags: &[portcullis_core::model::Tag]) -> serde_json::Value {
    tags.iter()
        .map(|t| (t.key.clone(), serde_json::Value::String(t.value.clone())))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// An answer as JSON, the one shape `portcullis access --json`, the API and the console
/// share: principal, node, action, decision, the deciding statements, AWS's reason for a
/// refusal and the near misses of an implicit deny.
pub fn answer_json(fleet: &Fleet, a: &Answer) -> serde_json::Value {
    let user = fleet.users.get(a.user);
    let node = fleet.nodes.get(a.node);
    serde_json::json!({
        "principal": user.map(|u| u.arn.as_str()),
        "user": user.map(|u| u.name.as_str()),
        "node": node.map(|n| n.id.as_str()),
        "resource": node.map(|n| n.arn.as_str()),
        "action": a.action,
        "decision": a.decision.as_str(),
        "deciding": a.deciding.iter().map(|d| serde_json::json!({
            "policy": d.policy,
            "pointer": d.pointer,
            "sid": d.sid,
            "effect": d.effect.as_str(),
            "label": d.label,
        })).collect::<Vec<_>>(),
        "reason": a.reason,
        "near_misses": a.near_misses.iter().map(|(label, outcome)| serde_json::json!({
            "statement": label,
            "outcome": outcome,
        })).collect::<Vec<_>>(),
    })
}
