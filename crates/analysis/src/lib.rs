//! Access analysis for Portcullis: the questions an administrator has about their policies
//! and their fleet, answered with the real policy engine.
//!
//! - [`lint`]: documents that are valid IAM but probably not what was meant (Session Manager
//!   pitfalls first), with stable codes, positions and fixes.
//! - [`fleet`] and [`matrix`]: who can do what on which node, over the live store, with the
//!   deciding statement for each answer. The matrix asks [`portcullis_iam::PolicySet`]
//!   for every decision; it only avoids asking twice about requests no statement can tell
//!   apart (see the module docs for why that is exact).
//! - [`diff`]: what a proposed change (a tag, a policy attached, detached or replaced)
//!   would do: exactly which (user, node, action) pairs gain or lose access.
//! - [`expect`]: a project's own expectations (principal, action, target, decision, the
//!   deciding statement) for `portcullis policy test`.
//! - [`catalog`]: the actions and condition keys AWS documents for the services we serve.

pub mod catalog;
mod catalog_data;
pub mod diff;
pub mod expect;
pub mod fleet;
mod glob;
pub mod lint;
pub mod matrix;

pub use fleet::{Fleet, FleetNode, FleetUser, PolicyGroup};
pub use lint::{lint, lint_together, Document, Finding, Rule, Severity, RULES};
pub use matrix::{Answer, Deciding, Matrix};
