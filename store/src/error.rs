//! The one error type of the store.

use sea_orm::{DbErr, SqlErr};

/// Everything that can go wrong in the store. Each message names the bad value
/// and, where there is one, the way out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The configuration is invalid; the message names the key and the value.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// The database could not be reached in the time allowed.
    #[error("cannot connect to {target}: {message}")]
    Connect {
        /// Where we tried to connect, password redacted.
        target: String,
        /// What the driver said.
        message: String,
    },

    /// There is no flowstate database where the configuration points (a
    /// missing SQLite file, or a database without the flowstate schema).
    #[error("no flowstate database at {target}; {hint}")]
    NoDatabase {
        /// Where the configuration points, password redacted.
        target: String,
        /// What to do about it.
        hint: String,
    },

    /// The schema lacks a table or column that its applied migrations
    /// created: someone changed it by hand, or restored part of a backup.
    #[error("database schema is damaged: {0}; restore the database from a backup (to start over instead, losing all data, delete the SQLite file or recreate the server database and let flowstate create it again)")]
    SchemaDamaged(String),

    /// No row has that id (or name).
    #[error("{entity} '{id}' not found")]
    NotFound {
        /// What was looked for: "execution", "workflow", ...
        entity: &'static str,
        /// The id or name that matched nothing.
        id: String,
    },

    /// Someone else changed the row since the caller read it.
    #[error(
        "{entity} '{id}' was changed concurrently (expected version {expected}, found {actual}); read it again and retry"
    )]
    Conflict {
        /// "execution" or "task run".
        entity: &'static str,
        /// The row's id.
        id: String,
        /// The version the caller read.
        expected: i64,
        /// The version the row has now.
        actual: i64,
    },

    /// The state machine does not allow this move; nothing was changed.
    #[error("{entity} '{id}' cannot move from {from} to {to}")]
    InvalidTransition {
        /// "execution" or "task run".
        entity: &'static str,
        /// The row's id.
        id: String,
        /// Its current state.
        from: String,
        /// The refused target state.
        to: String,
    },

    /// An argument is out of range or malformed.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// The database schema does not match this build (pending or unknown migrations).
    #[error("{0}")]
    SchemaMismatch(String),

    /// A unique constraint refused the write (a duplicate name, key or number).
    #[error("duplicate: {0}")]
    Duplicate(String),

    /// A foreign key refused the write (a reference to a row that does not exist).
    #[error("missing reference: {0}")]
    MissingReference(String),

    /// A destructive command was not confirmed at its prompt.
    #[error("not confirmed; nothing was changed")]
    NotConfirmed,

    /// The database or the disk it is on is full (SQLite's SQLITE_FULL,
    /// also past `storage.sqlite.maxSizeMb`; PostgreSQL's disk_full; MySQL's
    /// "table is full"). Nothing of the failed write was kept.
    #[error("database or disk is full; free space (for example with flowstate cleanup) or give the database more room")]
    StorageFull(DbErr),

    /// Any other database error.
    #[error("database error: {0}")]
    Database(DbErr),
}

impl StoreError {
    /// Whether the database could not be reached or dropped the connection
    /// (server down or restarting, connection killed, pool exhausted): the
    /// same write may succeed once it is back, unlike a refusal.
    pub fn is_unavailable(&self) -> bool {
        let StoreError::Database(e) = self else {
            return matches!(self, StoreError::Connect { .. });
        };
        let runtime = match e {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
            DbErr::Exec(r) | DbErr::Query(r) => r,
            _ => return false,
        };
        let sea_orm::RuntimeErr::SqlxError(sqlx) = runtime else {
            return false;
        };
        use sea_orm::sqlx::Error as X;
        match sqlx.as_ref() {
            X::Io(_) | X::PoolTimedOut | X::Tls(_) | X::Protocol(_) | X::WorkerCrashed => true,
            // SQLSTATE class 08 (connection exception), 57P01-57P03
            // (administrator or crash shutdown, cannot connect now).
            X::Database(db) => db
                .code()
                .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
            _ => false,
        }
    }
}

impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(m)) => StoreError::Duplicate(m),
            Some(SqlErr::ForeignKeyConstraintViolation(m)) => StoreError::MissingReference(m),
            _ if is_full(&err) => StoreError::StorageFull(err),
            _ => StoreError::Database(err),
        }
    }
}

/// SQLITE_FULL (13), PostgreSQL's disk_full (53100), or MySQL's "The table
/// ... is full" (1114, reported under the generic SQLSTATE HY000).
fn is_full(err: &DbErr) -> bool {
    let (DbErr::Exec(sea_orm::RuntimeErr::SqlxError(e))
    | DbErr::Query(sea_orm::RuntimeErr::SqlxError(e))) = err
    else {
        return false;
    };
    let sea_orm::sqlx::Error::Database(db) = e.as_ref() else {
        return false;
    };
    match db.code().as_deref() {
        Some("13" | "53100") => true,
        Some("HY000") => db.message().contains("is full"),
        _ => false,
    }
}

/// Shorthand for results of the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
