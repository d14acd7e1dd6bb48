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
//! - **Deletes.** Deleting a user or group takes with it what it owns (tags, keys, login
//!   profile, memberships, inline policies, attachments); refusing such a delete while
//!   things remain (IAM's `DeleteConflict`) is the caller's check. Deleting a node takes
//!   its tags; sessions and audit events stay. Deleting a managed policy takes its
//!   versions and attachments, but is refused while a user has it as permissions boundary
//!   (a boundary vanishing would widen what the user may do).
//! - **Sessions.** `started_after` is inclusive and `started_before` exclusive, as
//!   DescribeSessions' `InvokedAfter` / `InvokedBefore`. `set_session_status` sets `ended`
//!   to exactly what it is given.

mod error;
mod rows;
mod sqlite;

pub use sqlite::SqliteStore;
