//! Portcullis's domain: the records it keeps ([`model`]), the [`store::Store`] trait that
//! keeps them, identifiers in AWS's formats ([`ids`]), and the [`service::Service`] that
//! authenticates, authorizes and audits every operation.

pub mod aws_policies;
pub mod console;
pub mod error;
pub mod ids;
pub mod model;
mod nodes;
pub mod ops_ec2;
mod ops_iam;
pub mod ops_ssm;
pub mod policies;
pub mod service;
pub mod store;
pub mod validate;

pub use error::{Error, Result};
pub use ops_iam::policy_error;
pub use service::{Caller, Identity, Service};
