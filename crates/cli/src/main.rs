//! `portcullis`: a self-hosted Session Manager authorized by the AWS IAM policy language.
//!
//! `main` only parses arguments and dispatches; each subcommand lives in its own file.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod policy;

/// Portcullis: shell access without SSH keys or open ports, authorized by IAM policies.
///
/// Today this binary carries the policy tools: validate documents as IAM does, simulate a
/// request against the policies you would attach, and run policy test suites in CI.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with IAM policy documents: validate, simulate, test.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
}

/// Exit codes shared by every subcommand.
pub mod exit {
    /// Success; for `simulate`, the request is allowed.
    pub const OK: u8 = 0;
    /// The answer is no: an invalid document, a denied request, a failed test.
    pub const NO: u8 = 1;
    /// The command could not run: bad arguments, unreadable files.
    pub const ERROR: u8 = 2;
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Policy(cmd) => policy::run(cmd),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::ERROR)
        }
    }
}
