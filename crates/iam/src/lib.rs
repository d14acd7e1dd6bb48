//! The AWS IAM policy language, as Portcullis authorizes every request with it.
//!
//! Pipeline: a document is read and validated into a [`Policy`] (IAM's rules and error
//! messages, with JSON pointers and line/column), policies are gathered into a
//! [`PolicySet`] by layer (identity policies, permissions boundary, SCPs, session policy),
//! and each [`Request`] gets a [`Decision`] from [`PolicySet::evaluate`] or a full
//! [`Explanation`] from [`PolicySet::explain`].
//!
//! Architecture invariants: this crate does no I/O and no async; evaluation cannot fail, and
//! nothing that goes wrong can turn into an allow.
//!
//! ```
//! use portcullis_iam::{Decision, Policy, PolicySet, Principal, Request, Tags};
//!
//! let policy = Policy::parse(r#"{
//!   "Version": "2012-10-17",
//!   "Statement": [{
//!     "Effect": "Allow",
//!     "Action": "ssm:StartSession",
//!     "Resource": "arn:aws:ec2:*:*:instance/*",
//!     "Condition": {"StringEquals": {"aws:ResourceTag/Project": "${aws:PrincipalTag/Project}"}}
//!   }]
//! }"#).unwrap();
//! let mut set = PolicySet::new();
//! set.add_identity("abac", &policy);
//!
//! let user = Principal::user("arn:aws:iam::123456789012:user/TestUserA", "123456789012",
//!                            "TestUserA", "AIDAEXAMPLE").with_tag("Project", "test");
//! let mut tags = Tags::new();
//! tags.insert("Project", "test");
//! let instance = "arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0885b2e35926f1fb3";
//! let req = Request::new(&user, "ssm:StartSession", instance).with_resource_tags(&tags);
//! assert_eq!(set.evaluate(&req), Decision::Allow);
//! ```

mod error;
mod eval;
mod inspect;
pub mod json;
mod key;
mod operator;
mod pattern;
mod policy;
mod request;
pub mod suite;
mod value;

pub use error::{ErrorCode, PolicyError, PolicyWarning};
pub use eval::{
    Decision, Explanation, LayerKind, LayerReport, PolicySet, StatementOutcome, StatementReport,
};
pub use inspect::KeyScope;
pub use key::Key;
pub use operator::{Base, Operator, SetQualifier};
pub use policy::{
    policy_size, validate, Actions, Condition, Effect, Policy, PolicyKind, Resources, Statement,
    Validated, Version,
};
pub use request::{Context, Principal, PrincipalKind, Request, Tags, Values};
pub use value::iso8601;
/// Reads an ISO 8601 time or epoch seconds as IAM's Date operators do: milliseconds since the epoch.
pub use value::parse_date as parse_date_millis;
