//! The parser on arbitrary text: `validate` for every kind of policy and `Policy::parse_as`
//! must return (never panic) and agree with each other, and whatever parses must read back
//! equal from `to_json`, be accepted for the same kinds, and not grow in size as IAM counts
//! it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_iam::{policy_size, validate, Policy, PolicyKind};

const KINDS: [PolicyKind; 4] = [
    PolicyKind::Inline,
    PolicyKind::Managed,
    PolicyKind::ServiceControl,
    PolicyKind::Session,
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut accepted = [false; KINDS.len()];
    for (kind, accepted) in KINDS.into_iter().zip(&mut accepted) {
        let validated = validate(text, kind);
        let parsed = Policy::parse_as(text, kind);
        match (&validated, &parsed) {
            (Ok(v), Ok(p)) => assert!(v.policy == *p, "validate and parse_as differ for {kind:?}"),
            (Err(errors), Err(_)) => {
                assert!(
                    !errors.is_empty(),
                    "validate failed with no error for {kind:?}"
                )
            }
            _ => panic!(
                "validate ({}) and parse_as ({}) disagree for {kind:?}",
                validated.is_ok(),
                parsed.is_ok()
            ),
        }
        *accepted = parsed.is_ok();
    }
    let Ok(policy) = Policy::parse(text) else {
        return;
    };
    let written = policy.to_json();
    let again = match Policy::parse(&written) {
        Ok(p) => p,
        Err(e) => panic!("to_json output refused: {e}\noriginal: {text}\nwritten: {written}"),
    };
    assert!(
        again == policy,
        "round trip changed the policy\noriginal: {text}\nwritten: {written}"
    );
    assert_eq!(again.to_json(), written, "to_json is not stable");
    assert!(
        policy_size(&written) <= policy_size(text),
        "to_json grew the policy from {} to {} characters\noriginal: {text}\nwritten: {written}",
        policy_size(text),
        policy_size(&written)
    );
    for (kind, accepted) in KINDS.into_iter().zip(accepted) {
        if accepted {
            if let Err(e) = Policy::parse_as(&written, kind) {
                panic!(
                    "to_json output refused as {kind:?}: {e}\noriginal: {text}\nwritten: {written}"
                );
            }
        }
    }
});
