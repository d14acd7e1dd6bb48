//! The rules. Each reads validated statements (the engine's model, with the engine's own
//! answers to "does this statement apply to that action?") and the document's JSON tree
//! for positions.

use std::collections::HashSet;

use portcullis_iam::{Base, Condition, Effect, SetQualifier, Statement, Version};

use super::{escape, Finding, Located, Rule};
use super::{
    ALLOW_NOT_ACTION, FOREIGN_SERVICE_TAG_KEY, FOR_ALL_VALUES_SINGLE, NO_DOCUMENT_ACCESS_CHECK,
    REDUNDANT, SELF_TAGGING, SHADOWED, TAG_CONDITION_WITH_DOCUMENTS, UNGUARDED_VARIABLE,
    UNKNOWN_ACTION, UNKNOWN_KEY, USERNAME_IN_SESSION, VARIABLE_IN_KEY, WILDCARD_SESSION_RESOURCE,
};
use crate::{catalog, glob};

const START: &str = "ssm:StartSession";
const SESSION_ACTIONS: [&str; 3] = [START, "ssm:TerminateSession", "ssm:ResumeSession"];
/// The tagging actions that can put a tag on a node, with (service, resource part) of the
/// node ARNs each tags, to ask whether a statement's Resource covers nodes.
const TAG_ACTIONS: [(&str, (&str, &str)); 2] = [
    ("ec2:CreateTags", ("ec2", "instance/i-0123456789abcdef0")),
    (
        "ssm:AddTagsToResource",
        ("ssm", "managed-instance/mi-0123456789abcdef0"),
    ),
];
/// A session document no policy would name on purpose.
const DOCUMENT_PROBE: (&str, &str) = ("ssm", "document/PortcullisLintProbe");
const DOC_CHECK_KEY: &str = "ssm:SessionDocumentAccessCheck";

/// One statement and where it is.
struct Stmt<'a> {
    doc: &'a Located<'a>,
    s: &'a Statement,
}

impl Stmt<'_> {
    fn at(&self) -> (u32, u32) {
        (self.s.line, self.s.column)
    }

    fn allows(&self) -> bool {
        self.s.effect == Effect::Allow
    }

    fn variables_on(&self) -> bool {
        self.doc.doc.policy.effective_version() == Version::V2012_10_17
    }

    fn action_member(&self) -> String {
        let name = if self.s.action.negated {
            "NotAction"
        } else {
            "Action"
        };
        format!("{}/{name}", self.s.pointer)
    }

    fn resource_member(&self) -> String {
        let name = if self.s.resource.negated {
            "NotResource"
        } else {
            "Resource"
        };
        format!("{}/{name}", self.s.pointer)
    }

    fn resource_item(&self, i: usize) -> String {
        self.doc.item(&self.resource_member(), i)
    }

    fn action_item(&self, i: usize) -> String {
        self.doc.item(&self.action_member(), i)
    }

    fn condition(&self, c: &Condition) -> String {
        format!(
            "{}/Condition/{}/{}",
            self.s.pointer,
            escape(&c.operator_name),
            escape(&c.key_name)
        )
    }

    fn label(&self) -> String {
        let sid = self
            .s
            .sid
            .as_ref()
            .map(|s| format!(" (Sid {s})"))
            .unwrap_or_default();
        format!("\"{}\" {}{sid}", self.doc.doc.name, self.s.pointer)
    }

    fn finding(&self, rule: Rule, pointer: String, message: String, fix: String) -> Finding {
        self.doc.finding(rule, pointer, self.at(), message, fix)
    }

    /// Whether any Resource item could match an ARN of `service` with resource part `res`.
    fn resource_could_match(&self, (service, res): (&str, &str)) -> bool {
        self.s.resource.negated
            || self
                .s
                .resource
                .items
                .iter()
                .any(|item| item_could_match(item, service, res))
    }
}

/// Whether a Resource item could match some ARN of `service` whose resource part is `res`
/// (any partition, region and account).
fn item_could_match(item: &str, service: &str, res: &str) -> bool {
    let fields: Vec<&str> = item.splitn(6, ':').collect();
    match fields.as_slice() {
        [_, _, svc, _, _, resource] => {
            glob::matches(svc, service, false) && glob::matches(resource, res, false)
        }
        _ => glob::matches(item, &format!("arn:aws:{service}:r:1:{res}"), false),
    }
}

/// A policy variable in a text.
struct Var {
    /// The key as written.
    name: String,
    /// The key in lower case, for comparisons.
    lower: String,
    has_default: bool,
}

/// The policy variables in a text.
fn variables(text: &str) -> Vec<Var> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = rest.get(start + 2..).unwrap_or_default();
        let Some(end) = after.find('}') else { break };
        let inner = after.get(..end).unwrap_or_default();
        rest = after.get(end + 1..).unwrap_or_default();
        if matches!(inner, "*" | "?" | "$") {
            continue;
        }
        let (name, has_default) = match inner.split_once(',') {
            Some((n, _)) => (n, true),
            None => (inner, false),
        };
        let name = name.trim().to_owned();
        out.push(Var {
            lower: name.to_lowercase(),
            name,
            has_default,
        });
    }
    out
}

/// Edit distance, to suggest the name that was probably meant.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev.get(j).copied().unwrap_or(0) + usize::from(ca != cb);
            let del = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let ins = cur.get(j).copied().unwrap_or(0) + 1;
            cur.push(sub.min(del).min(ins));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (distance(name, c), c))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

pub(crate) fn run(docs: &[Located<'_>]) -> Vec<Finding> {
    let stmts: Vec<Stmt> = docs
        .iter()
        .flat_map(|doc| {
            doc.doc
                .policy
                .statements
                .iter()
                .map(move |s| Stmt { doc, s })
        })
        .collect();
    let mut out = Vec::new();
    for st in &stmts {
        username_in_session(st, &mut out);
        tag_condition_with_documents(st, &mut out);
        foreign_service_tag_key(st, &mut out);
        no_document_access_check(st, &mut out);
        for_all_values_single(st, &mut out);
        unknown_action(st, &mut out);
        unknown_key(st, &mut out);
        variable_in_key(st, &mut out);
        wildcard_session_resource(st, &mut out);
        unguarded_variable(st, &mut out);
        allow_not_action(st, &mut out);
    }
    self_tagging(&stmts, &mut out);
    redundant_and_shadowed(&stmts, &mut out);
    out
}

/// PC001.
fn username_in_session(st: &Stmt, out: &mut Vec<Finding>) {
    if !st.variables_on() {
        return;
    }
    let session_statement = SESSION_ACTIONS.iter().any(|a| st.s.applies_to_action(a));
    let fix = "own sessions by the tag Session Manager puts on them: Resource \
               \"arn:aws:ssm:*:*:session/*\" with \"Condition\": {\"StringEquals\": \
               {\"ssm:resourceTag/aws:ssmmessages:session-id\": \"${aws:userid}\"}}"
        .to_owned();
    let has_username = |text: &str| variables(text).iter().any(|v| v.lower == "aws:username");
    for (i, item) in st.s.resource.items.iter().enumerate() {
        if has_username(item) && (item.contains(":session/") || session_statement) {
            out.push(st.finding(
                USERNAME_IN_SESSION,
                st.resource_item(i),
                format!(
                    "`{item}` names sessions by ${{aws:username}}, which only IAM users have: \
                     for an assumed role or a federated user the variable has no value and the \
                     statement never matches, so they cannot end or resume their own sessions"
                ),
                fix.clone(),
            ));
        }
    }
    if !session_statement {
        return;
    }
    for c in &st.s.conditions {
        if !c.values.iter().any(|v| has_username(v)) {
            continue;
        }
        let message = if c
            .key_name
            .eq_ignore_ascii_case("ssm:resourceTag/aws:ssmmessages:session-id")
        {
            format!(
                "`{}` holds the user id of the session's starter (aws:userid), never a user \
                 name, so comparing it with ${{aws:username}} never matches",
                c.key_name
            )
        } else {
            format!(
                "`{}` is compared with ${{aws:username}}, which roles and federated users do \
                 not have: for them the condition never matches",
                c.key_name
            )
        };
        out.push(st.finding(USERNAME_IN_SESSION, st.condition(c), message, fix.clone()));
    }
}

/// Resource-tag conditions that can grant StartSession: (tag key as written, lower case).
fn start_session_tag_keys(st: &Stmt) -> Vec<(String, String)> {
    if !st.allows() || !st.s.applies_to_action(START) {
        return Vec::new();
    }
    st.s.conditions
        .iter()
        .filter_map(|c| {
            let (service, tag) = c.key().resource_tag()?;
            if service.is_some_and(|s| s != "ssm") {
                return None;
            }
            let written = c
                .key_name
                .split_once('/')
                .map_or(tag, |(_, t)| t)
                .to_owned();
            Some((written, tag.to_owned()))
        })
        .collect()
}

/// Whether a statement limits which tag keys it lets the caller set.
fn limits_tag_keys(s: &Statement) -> bool {
    s.conditions.iter().any(|c| {
        let name = c.key().name();
        name == "aws:tagkeys" || name.starts_with("aws:requesttag/")
    })
}

/// PC002, over all statements together (one principal's policies).
fn self_tagging(stmts: &[Stmt], out: &mut Vec<Finding>) {
    let granting: Vec<(&Stmt, Vec<(String, String)>)> = stmts
        .iter()
        .map(|st| (st, start_session_tag_keys(st)))
        .filter(|(_, keys)| !keys.is_empty())
        .collect();
    let Some((first, _)) = granting.first() else {
        return;
    };
    let mut tag_keys: Vec<String> = Vec::new();
    for (_, keys) in &granting {
        for (written, _) in keys {
            if !tag_keys.iter().any(|k| k.eq_ignore_ascii_case(written)) {
                tag_keys.push(written.clone());
            }
        }
    }
    // A Deny on tagging that looks at the tag keys is taken as the guard it usually is.
    let guarded = |action: &str| {
        stmts.iter().any(|d| {
            d.s.effect == Effect::Deny && d.s.applies_to_action(action) && limits_tag_keys(d.s)
        })
    };
    for st in stmts {
        if !st.allows() || limits_tag_keys(st.s) {
            continue;
        }
        let actions: Vec<&str> = TAG_ACTIONS
            .iter()
            .filter(|(a, probe)| {
                st.s.applies_to_action(a) && !guarded(a) && st.resource_could_match(*probe)
            })
            .map(|(a, _)| *a)
            .collect();
        if actions.is_empty() {
            continue;
        }
        let keys = tag_keys
            .iter()
            .map(|k| format!("\"{k}\""))
            .collect::<Vec<_>>()
            .join(", ");
        out.push(st.finding(
            SELF_TAGGING,
            st.action_member(),
            format!(
                "this statement lets the principal tag nodes ({}), and {} allows \
                 ssm:StartSession by the resource tag {keys}: the principal can put that tag on \
                 any node and then open a shell on it",
                actions.join(", "),
                first.label()
            ),
            format!(
                "deny changing the tag keys that grant access: {{\"Effect\": \"Deny\", \"Action\": \
                 [\"ec2:CreateTags\", \"ec2:DeleteTags\", \"ssm:AddTagsToResource\", \
                 \"ssm:RemoveTagsFromResource\"], \"Resource\": \"*\", \"Condition\": \
                 {{\"ForAnyValue:StringEqualsIgnoreCase\": {{\"aws:TagKeys\": [{keys}]}}}}}}, or \
                 limit this statement with aws:TagKeys"
            ),
        ));
    }
}

/// PC003.
fn tag_condition_with_documents(st: &Stmt, out: &mut Vec<Finding>) {
    if !st.allows() || st.s.resource.negated || !st.s.applies_to_action(START) {
        return;
    }
    let documents: Vec<&String> =
        st.s.resource
            .items
            .iter()
            .filter(|i| i.contains(":document/"))
            .collect();
    if documents.is_empty() {
        return;
    }
    for c in &st.s.conditions {
        let positive = !c.operator.if_exists && !c.operator.base.is_negated();
        if c.key().resource_tag().is_none() || !positive || c.operator.base == Base::Null {
            continue;
        }
        let list = documents
            .iter()
            .map(|d| format!("`{d}`"))
            .collect::<Vec<_>>()
            .join(", ");
        out.push(st.finding(
            TAG_CONDITION_WITH_DOCUMENTS,
            st.condition(c),
            format!(
                "`{}` is never present when StartSession is checked against a session document \
                 (the document request carries no node tags), so this statement never allows {list}: \
                 a session with that document is refused",
                c.key_name
            ),
            "move the document ARNs into a statement of their own, without the tag condition"
                .to_owned(),
        ));
    }
}

/// PC004.
fn foreign_service_tag_key(st: &Stmt, out: &mut Vec<Finding>) {
    if st.s.action.negated {
        return;
    }
    for c in &st.s.conditions {
        let Some((Some(service), tag)) = c.key().resource_tag() else {
            continue;
        };
        let same_service = st.s.action.items.iter().any(|a| {
            a == "*"
                || a.split_once(':')
                    .is_some_and(|(prefix, _)| glob::matches(prefix, service, true))
        });
        if same_service {
            continue;
        }
        let services: Vec<&str> =
            st.s.action
                .items
                .iter()
                .filter_map(|a| a.split_once(':').map(|(p, _)| p))
                .collect::<Vec<_>>();
        let mut services = services;
        services.sort_unstable();
        services.dedup();
        let effect = if c.operator.if_exists || c.operator.base.is_negated() {
            "always holds"
        } else {
            "never holds"
        };
        let written_tag = c.key_name.split_once('/').map_or(tag, |(_, t)| t);
        out.push(st.finding(
            FOREIGN_SERVICE_TAG_KEY,
            st.condition(c),
            format!(
                "`{}` is only present for {service} actions, but this statement names {} \
                 actions, so the condition {effect}",
                c.key_name,
                services.join(", ")
            ),
            format!(
                "use `aws:ResourceTag/{written_tag}` (any service) or the tag key of the \
                 action's service (`{}:resourceTag/{written_tag}`)",
                services.first().copied().unwrap_or("ssm")
            ),
        ));
    }
}

/// PC005.
fn no_document_access_check(st: &Stmt, out: &mut Vec<Finding>) {
    if !st.allows() || !st.s.applies_to_action(START) || !st.resource_could_match(DOCUMENT_PROBE) {
        return;
    }
    if st
        .s
        .conditions
        .iter()
        .any(|c| c.key_name.eq_ignore_ascii_case(DOC_CHECK_KEY))
    {
        return;
    }
    let (service, res) = DOCUMENT_PROBE;
    let pointer =
        st.s.resource
            .items
            .iter()
            .position(|i| item_could_match(i, service, res))
            .map_or_else(|| st.resource_member(), |i| st.resource_item(i));
    out.push(
        st.finding(
            NO_DOCUMENT_ACCESS_CHECK,
            pointer,
            "StartSession is allowed on any session document, so a user can name one with looser \
         settings (another run-as user, no session logging, port forwarding) instead of the \
         default shell"
                .to_owned(),
            format!(
                "list the documents users may choose as explicit ARNs \
             (arn:aws:ssm:REGION:ACCOUNT:document/NAME) and add \"BoolIfExists\": \
             {{\"{DOC_CHECK_KEY}\": \"true\"}} so the default document is checked too"
            ),
        ),
    );
}

/// PC006.
fn for_all_values_single(st: &Stmt, out: &mut Vec<Finding>) {
    if !st.allows() {
        return;
    }
    for c in &st.s.conditions {
        if c.operator.set != SetQualifier::ForAllValues {
            continue;
        }
        let Some(info) = catalog::key_info(&c.key_name) else {
            continue;
        };
        if !info.known || info.multivalued {
            continue;
        }
        let base = c.operator.to_string();
        let base = base.trim_start_matches("ForAllValues:");
        out.push(st.finding(
            FOR_ALL_VALUES_SINGLE,
            st.condition(c),
            format!(
                "`{}` is single-valued; `{}` is true when the key is absent, so this Allow also \
                 applies to requests without it",
                c.key_name, c.operator_name
            ),
            format!(
                "use `{base}` without the ForAllValues: prefix (and, if the key may be \
                 missing, add \"Null\": {{\"{}\": \"false\"}})",
                c.key_name
            ),
        ));
    }
}

/// PC007.
fn unknown_action(st: &Stmt, out: &mut Vec<Finding>) {
    for (i, item) in st.s.action.items.iter().enumerate() {
        if catalog::action_known(item) != Some(false) {
            continue;
        }
        let Some((prefix, name)) = item.split_once(':') else {
            continue;
        };
        let all = catalog::matching_actions(prefix, "*");
        let fix = match closest(name, all.iter().copied()) {
            Some(c) => format!("did you mean `{}:{c}`?", prefix.to_lowercase()),
            None => format!(
                "check the action name in the Service Authorization Reference for {}",
                prefix.to_lowercase()
            ),
        };
        let verb = if st.s.action.negated {
            "excludes nothing"
        } else {
            "never matches"
        };
        out.push(st.finding(
            UNKNOWN_ACTION,
            st.action_item(i),
            format!(
                "`{item}` is not an action of {} (no documented action matches it), so it {verb}",
                prefix.to_lowercase()
            ),
            fix,
        ));
    }
}

/// PC008.
fn unknown_key(st: &Stmt, out: &mut Vec<Finding>) {
    let check = |name: &str, pointer: String, what: &str, out: &mut Vec<Finding>| {
        let Some(info) = catalog::key_info(name) else {
            return;
        };
        if info.known || name.contains("${") {
            return;
        }
        let vendor = name.split_once(':').map_or("", |(v, _)| v);
        let candidates = catalog::key_candidates(vendor, name);
        let fix = match closest(name, candidates.iter().map(String::as_str)) {
            Some(c) => format!("did you mean `{c}`?"),
            None => "check the key in the Service Authorization Reference or the global \
                     condition keys"
                .to_owned(),
        };
        out.push(st.finding(
            UNKNOWN_KEY,
            pointer,
            format!(
                "`{name}` is not a condition key AWS documents for {}, so the request never has it \
                 ({what})",
                vendor.to_lowercase()
            ),
            fix,
        ));
    };
    for c in &st.s.conditions {
        let what = if c.operator.base == Base::Null {
            "Null sees it as absent"
        } else if c.operator.if_exists || c.operator.base.is_negated() {
            "the condition always holds"
        } else {
            "the condition never holds"
        };
        check(&c.key_name, st.condition(c), what, out);
    }
    if !st.variables_on() {
        return;
    }
    for (i, item) in st.s.resource.items.iter().enumerate() {
        for var in variables(item) {
            let what = if var.has_default {
                "its default is always used"
            } else {
                "the variable has no value and the item matches nothing"
            };
            check(&var.name, st.resource_item(i), what, out);
        }
    }
    for c in &st.s.conditions {
        for v in &c.values {
            for var in variables(v) {
                let what = if var.has_default {
                    "its default is always used"
                } else {
                    "the variable has no value and matches nothing"
                };
                check(&var.name, st.condition(c), what, out);
            }
        }
    }
}

/// PC009.
fn variable_in_key(st: &Stmt, out: &mut Vec<Finding>) {
    for c in &st.s.conditions {
        if !c.key_name.contains("${") {
            continue;
        }
        let message = if c.operator.base == Base::Null {
            format!(
                "`Null` checks a key literally named `{}`: IAM does not substitute policy \
                 variables in condition keys, so that key is always absent",
                c.key_name
            )
        } else {
            format!(
                "`{}` is read literally: IAM does not substitute policy variables in condition \
                 keys, so the request never has this key",
                c.key_name
            )
        };
        out.push(st.finding(
            VARIABLE_IN_KEY,
            st.condition(c),
            message,
            "name the key literally and put the variable in the condition's value".to_owned(),
        ));
    }
}

/// PC010.
fn wildcard_session_resource(st: &Stmt, out: &mut Vec<Finding>) {
    if !st.allows() {
        return;
    }
    let actions: Vec<&str> = SESSION_ACTIONS
        .iter()
        .copied()
        .filter(|a| st.s.applies_to_action(a))
        .collect();
    if actions.is_empty() {
        return;
    }
    let at = if st.s.resource.negated {
        Some(st.resource_member())
    } else {
        st.s.resource
            .items
            .iter()
            .position(|i| i == "*")
            .map(|i| st.resource_item(i))
    };
    let Some(pointer) = at else { return };
    let what = if actions.contains(&START) {
        "every node and every session document"
    } else {
        "every user's sessions"
    };
    let scope = if st.s.conditions.is_empty() {
        ", with no condition"
    } else {
        " (only the conditions limit it)"
    };
    out.push(st.finding(
        WILDCARD_SESSION_RESOURCE,
        pointer,
        format!(
            "{} on {} covers {what}{scope}",
            actions.join(", "),
            if st.s.resource.negated {
                "NotResource"
            } else {
                "Resource \"*\""
            }
        ),
        "name the resources: arn:aws:ec2:REGION:ACCOUNT:instance/* (or managed-instance/*) for \
         nodes, explicit document ARNs, and arn:aws:ssm:REGION:ACCOUNT:session/* with an \
         ownership condition for sessions"
            .to_owned(),
    ));
}

/// PC011.
fn unguarded_variable(st: &Stmt, out: &mut Vec<Finding>) {
    if !st.allows() || !st.variables_on() {
        return;
    }
    let guarded = |key: &str| {
        st.s.conditions.iter().any(|c| {
            c.operator.base == Base::Null
                && c.key().name() == key
                && c.values.iter().all(|v| v.eq_ignore_ascii_case("false"))
        })
    };
    let mut report = |name: &str, pointer: String, place: &str| {
        out.push(st.finding(
            UNGUARDED_VARIABLE,
            pointer,
            format!(
                "${{{name}}} in {place}: when the request has no `{name}` the variable has no \
                 value, the negated comparison matches, and this Allow applies"
            ),
            format!(
                "add \"Null\": {{\"{name}\": \"false\"}} to the statement, or give the variable \
                 a default (${{{name}, 'none'}})"
            ),
        ));
    };
    for c in &st.s.conditions {
        if !c.operator.base.is_negated() {
            continue;
        }
        for v in &c.values {
            for var in variables(v) {
                if !var.has_default && !guarded(&var.lower) {
                    report(
                        &var.name,
                        st.condition(c),
                        &format!("`{}`", c.operator_name),
                    );
                }
            }
        }
    }
    if st.s.resource.negated {
        for (i, item) in st.s.resource.items.iter().enumerate() {
            for var in variables(item) {
                if !var.has_default && !guarded(&var.lower) {
                    report(&var.name, st.resource_item(i), "NotResource");
                }
            }
        }
    }
}

/// PC012.
fn allow_not_action(st: &Stmt, out: &mut Vec<Finding>) {
    if !st.allows() || !st.s.action.negated {
        return;
    }
    out.push(st.finding(
        ALLOW_NOT_ACTION,
        st.action_member(),
        format!(
            "Allow with NotAction grants every action except {}, in every service, including \
             actions AWS adds later{}",
            st.s.action.items.join(", "),
            if st.s.applies_to_action(START) {
                " (ssm:StartSession among them)"
            } else {
                ""
            }
        ),
        "list the actions to allow in Action; keep NotAction for Deny statements".to_owned(),
    ));
}

fn same_condition(a: &Condition, b: &Condition) -> bool {
    if a.operator != b.operator || !a.key_name.eq_ignore_ascii_case(&b.key_name) {
        return false;
    }
    let mut x: Vec<&String> = a.values.iter().collect();
    let mut y: Vec<&String> = b.values.iter().collect();
    x.sort();
    y.sort();
    x == y
}

/// Whether every request `inner` matches, `outer` matches too (sound, not complete).
fn covers(outer: &Stmt, inner: &Stmt) -> bool {
    let (o, i) = (outer.s, inner.s);
    if o.action.negated || i.action.negated || o.resource.negated || i.resource.negated {
        return false;
    }
    // `${...}` means different things in the two policy versions.
    let texts_with_vars = o
        .resource
        .items
        .iter()
        .chain(&i.resource.items)
        .any(|t| t.contains("${"))
        || o.conditions
            .iter()
            .chain(&i.conditions)
            .any(|c| c.values.iter().any(|v| v.contains("${")));
    if texts_with_vars && outer.variables_on() != inner.variables_on() {
        return false;
    }
    i.action
        .items
        .iter()
        .all(|a| o.action.items.iter().any(|b| glob::covers(b, a, true)))
        && i.resource
            .items
            .iter()
            .all(|r| o.resource.items.iter().any(|b| glob::covers(b, r, false)))
        && o.conditions
            .iter()
            .all(|oc| i.conditions.iter().any(|ic| same_condition(oc, ic)))
}

/// PC013 and PC014.
fn redundant_and_shadowed(stmts: &[Stmt], out: &mut Vec<Finding>) {
    let mut reported: HashSet<usize> = HashSet::new();
    for (a, sa) in stmts.iter().enumerate() {
        for (b, sb) in stmts.iter().enumerate() {
            if a == b || reported.contains(&a) {
                continue;
            }
            // Report `sa` when `sb` covers it; of two equal statements, the later one.
            if sa.s.effect == sb.s.effect && covers(sb, sa) && (b < a || !covers(sa, sb)) {
                reported.insert(a);
                out.push(sa.finding(
                    REDUNDANT,
                    sa.s.pointer.clone(),
                    format!(
                        "every request this {} statement matches, {} already matches",
                        sa.s.effect.as_str(),
                        sb.label()
                    ),
                    "remove it, or narrow the broader statement if this one was meant to be the \
                     only grant"
                        .to_owned(),
                ));
            } else if sa.allows() && sb.s.effect == Effect::Deny && covers(sb, sa) {
                reported.insert(a);
                out.push(
                    sa.finding(
                        SHADOWED,
                        sa.s.pointer.clone(),
                        format!(
                        "{} denies every request this Allow matches, so it never allows anything",
                        sb.label()
                    ),
                        "remove the Allow, or narrow the Deny (a condition, fewer actions or \
                     resources)"
                            .to_owned(),
                    ),
                );
            }
        }
    }
}
