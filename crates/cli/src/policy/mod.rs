//! `portcullis policy ...`

use clap::Subcommand;

mod lint;
mod simulate;
mod test;
mod validate;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Check policy documents as IAM would, with the location of every problem.
    ///
    /// Prints each error as IAM's code and message, a JSON pointer and the line and column,
    /// plus warnings for legal but suspicious documents. Exits 1 if any file is invalid.
    Validate(validate::Args),
    /// Find valid-but-wrong policies: the Session Manager pitfalls (`${aws:username}` in
    /// session ARNs, tag-based access next to tagging rights, documents under a tag
    /// condition, ...), unknown actions and keys, shadowed and redundant statements.
    ///
    /// Each finding has a stable code (`--rules` lists them), a severity, the JSON pointer,
    /// line and column, and a fix. Exits 1 when a finding reaches `--fail-on` (default:
    /// warning) or a document is invalid.
    Lint(lint::Args),
    /// Decide one request against a set of policies and explain the decision.
    ///
    /// Exits 0 when the request is allowed and 1 when it is denied, so scripts can branch on it.
    Simulate(Box<simulate::Args>),
    /// Run conformance test files (JSON suites of policies, principals and expected
    /// decisions) and a project's own expectation files (policy files by path, principals,
    /// nodes, and who may do what where; see examples/expectations/), and report every
    /// failure with its explanation, naming the statements that decided.
    ///
    /// Ends with a `N passed, N failed` line; exits 1 if any case failed.
    Test(test::Args),
}

pub fn run(cmd: PolicyCommand) -> anyhow::Result<u8> {
    match cmd {
        PolicyCommand::Validate(args) => validate::run(args),
        PolicyCommand::Lint(args) => lint::run(args),
        PolicyCommand::Simulate(args) => simulate::run(*args),
        PolicyCommand::Test(args) => test::run(args),
    }
}
