//! Portcullis's [`Store`](portcullis_core::store::Store) on SQLite, with sqlx and
//! append-only migrations (`migrations/sqlite/`). PostgreSQL, for several servers sharing
//! one database, is to follow beside it behind the same trait.
//!
//! [`SqliteStore::open`] is what the server uses; [`SqliteStore::open_in_memory`] is for
//! tests.
//!
//! What the trait leaves open, decided here:
//!
//! - **Case.** IAM names (users, groups, managed and inline policies) and the tag keys of
//!   users are unique without regard to ASCII case, as in IAM, and are looked up the same
//!   way (`user("testusera")` finds `TestUserA`); records keep the case they were written
//!   with. Node and activation tag keys are case-sensitive, as in SSM. Writing a tag whose
//!   key is already there replaces it, its key's case included.
//! - **Order of lists.** Users, groups, managed and inline policies, group members and a
//!   user's groups: by name. Attached policies: by ARN. Access keys and activations: by
//!   creation time, then id. Nodes: by registration time, then id. Policy versions:
//!   creation order. Tags: the order they were written in. Sessions: newest first (start
//!   time, then id, descending). Audit: oldest first.
//! - **Missing owners.** A list or tag read of a user, group, node or policy that does not
//!   exist is `NotFound`, not an empty list. `list_access_keys(Root)` never is.
//! - **Derived fields.** A managed policy's `default_version` and `attachment_count` are
//!   read from its versions and attachments, not stored beside them, so they cannot drift:
//!   the first version is always the default; deleting a user or group detaches its
//!   policies. What `insert_managed_policy` is given for these two fields is not used.
//! - **Deletes.** Deleting a user, group or managed policy is refused with
//!   `StoreError::Conflict` (naming what remains, from `store::conflict`) while something
//!   still depends on it, checked in the delete's own transaction so nothing can slip in
//!   between: a user's login profile, access keys, attached and inline policies and group
//!   memberships; a group's members and policies; a policy's attachments, its use as a
//!   permissions boundary (a boundary vanishing would widen what the user may do) and its
//!   versions other than the default. A user's tags go with the user, a policy's default
//!   version with the policy. Deleting a node takes its tags; sessions and audit events stay.
//! - **Limits.** `insert_access_key` and `add_policy_version` count and insert in one
//!   transaction, so concurrent calls cannot pass the limit they are given.
//! - **Version ids.** `add_policy_version` hands out `v(N+1)` after the highest id the
//!   policy ever had (kept in `managed_policies.last_version`): ids are not reused.
//! - **Sessions.** `started_after` is inclusive and `started_before` exclusive, as
//!   DescribeSessions' `InvokedAfter` / `InvokedBefore`. `set_session_status` sets `ended`
//!   to exactly what it is given.

mod error;
mod rows;
mod sqlite;

pub use sqlite::SqliteStore;
