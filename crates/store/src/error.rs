//! From sqlx's errors to the store's.

use portcullis_core::store::{StoreError, StoreResult};
use sqlx::error::ErrorKind;

/// Maps a database error: a unique or primary key violation is `AlreadyExists`, a foreign
/// key violation (a referenced record is missing) and a missing row are `NotFound`, and
/// everything else is `Backend`.
pub(crate) fn store_error(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(db) => match db.kind() {
            ErrorKind::UniqueViolation => StoreError::AlreadyExists,
            ErrorKind::ForeignKeyViolation => StoreError::NotFound,
            _ => StoreError::Backend(e.to_string()),
        },
        _ => StoreError::Backend(e.to_string()),
    }
}

/// `.db()?` on a sqlx result.
pub(crate) trait Db<T> {
    fn db(self) -> StoreResult<T>;
}

impl<T> Db<T> for Result<T, sqlx::Error> {
    fn db(self) -> StoreResult<T> {
        self.map_err(store_error)
    }
}
