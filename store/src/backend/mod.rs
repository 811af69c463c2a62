//! What differs between database backends, behind one trait with one small
//! implementation per backend. Nothing else in the crate asks which backend it
//! talks to.

mod mysql;
mod postgres;
mod sqlite;

use sea_orm::sea_query::{LockBehavior, LockType, SelectStatement};
use sea_orm::{DbBackend, DbErr, RuntimeErr, TransactionOptions};

/// Backend-specific behaviour of the store.
pub(crate) trait Backend: Send + Sync + 'static {
    /// How write transactions begin. SQLite must take the write lock up front
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads first fails at once
    /// when it later tries to write under contention, whatever the busy timeout.
    fn write_transaction(&self) -> TransactionOptions {
        TransactionOptions::default()
    }

    /// Whether the database has one write lock for everyone, so that the
    /// writers of this process are best queued in it (SQLite).
    fn one_writer(&self) -> bool {
        false
    }

    /// Whether an error is worth retrying the whole transaction for (a lock
    /// timeout, a deadlock, a serialisation failure).
    fn is_transient(&self, code: &str) -> bool;

    /// Locks the rows a `SELECT` picks to claim, so that concurrent claimers
    /// skip each other's rows instead of waiting or double-claiming.
    fn lock_claimed(&self, select: &mut SelectStatement) {
        select.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }

    /// Run first in the transaction that applies migrations, so that engines
    /// starting together on one database migrate one after the other.
    fn migration_lock(&self) -> Option<&'static str> {
        None
    }

    /// Run after that transaction, for locks that outlive it.
    fn migration_unlock(&self) -> Option<&'static str> {
        None
    }

    /// Rows per multi-row INSERT.
    fn insert_chunk(&self) -> usize {
        500
    }

    /// How long a long job (retention) pauses between two write transactions
    /// that took `last`. SQLite has one write lock: back-to-back batches would
    /// starve every other writer, whose busy handler polls for it.
    fn pause_between_batches(&self, _last: std::time::Duration) -> std::time::Duration {
        std::time::Duration::ZERO
    }

    /// A query listing `(table, column)` of every table in the current
    /// database, for the schema check made when a store opens.
    fn columns_query(&self) -> &'static str;

    /// Makes `sql`, a `SELECT` from `table`, walk `index`, on a backend that
    /// takes such a hint; the others leave the choice to their planner.
    fn use_index(&self, _sql: &mut String, _table: &str, _index: &str) {}

    /// Rebinds the instants of a built statement the way the backend
    /// compares them with its timestamp columns (MySQL: as `DATETIME`).
    fn bind_times(&self, _values: &mut sea_orm::sea_query::Values) {}

    /// An aggregate over a page of log rows that packs their `id`,
    /// `task_run_id`, `attempt`, `ts`, `stream` and `line` into one JSON
    /// array of arrays, as text. A page then crosses the driver as one value:
    /// row by row, sqlx hands each line from its SQLite thread to the caller
    /// on its own (8 us a line against sqlite3's 1 us, issue 13). `None`
    /// reads row by row.
    fn logs_as_json(&self) -> Option<&'static str> {
        None
    }

    /// Run first in the transaction of a list's statements (a page and its
    /// count, a log page), which a user's filters shape, so that each is
    /// planned for its own values every time; `None` runs them as they come.
    /// The engine's statements keep whatever plans the backend caches.
    fn list_setting(&self) -> Option<&'static str> {
        None
    }

    /// Appended to a `SELECT` whose rows the same transaction then updates.
    fn row_lock_suffix(&self) -> &'static str {
        " FOR UPDATE"
    }
}

/// The behaviour for a connection's backend.
pub(crate) fn for_backend(backend: DbBackend) -> &'static dyn Backend {
    match backend {
        DbBackend::Sqlite => &sqlite::Sqlite,
        DbBackend::Postgres => &postgres::Postgres,
        _ => &mysql::MySql,
    }
}

/// The driver's error code of a database error, if it has one.
pub(crate) fn error_code(err: &DbErr) -> Option<String> {
    let runtime = match err {
        DbErr::Exec(e) | DbErr::Query(e) | DbErr::Conn(e) => e,
        _ => return None,
    };
    match runtime {
        RuntimeErr::SqlxError(e) => match e.as_ref() {
            sea_orm::sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
            _ => None,
        },
        _ => None,
    }
}
