//! The flowstate state store.
//!
//! Everything flowstate knows lives in one SQL database behind the
//! [`StateStore`] trait. This crate holds the one implementation, [`SeaStore`],
//! built on SeaORM; it serves SQLite (the embedded default), PostgreSQL and
//! MySQL/MariaDB alike.
//!
//! Layout, in the order data flows:
//! - [`config`]: the `storage:` section of the configuration file, validated;
//!   [`redact`] keeps passwords out of every message, [`text`] keeps
//!   values people typed short and printable.
//! - [`connect`]: a connection pool for that configuration (SQLite pragmas,
//!   server retries).
//! - [`migrate`]: schema versions; opening a store migrates or refuses, then
//!   `schema` checks that every table and column is there.
//! - [`state_store`]: the [`StateOps`], [`StateStore`] and [`StoreTransaction`] traits.
//! - [`types`] and [`query`]: what goes in and comes out; filters and paging.
//! - [`state_machine`]: which state moves are legal, enforced by every write.
//! - `sea`: the SeaORM implementation (the pool and transaction types, the
//!   write runner, the operations by aggregate); `backend`: the few things
//!   that differ per database (transaction mode, row locks, retryable errors).
//! - `recovery`, `retention` and `claim`: the set-based whole-table jobs.
//!
//! Every write transaction the store runs by itself (operations on the
//! pool, recovery, retention, claiming, applying migrations) goes through one
//! runner: it begins the transaction the backend's way (IMMEDIATE on
//! SQLite), runs the unit, commits, rolls back on any error, and runs the
//! whole unit again on lock timeouts, deadlocks and serialisation failures.
//! Writes that are one statement (transitions, small log batches) skip the
//! transaction and are retried alike; the lease renewal is not retried here,
//! the engine renews often. A transaction from [`StateStore::begin`] is the
//! caller's to commit and to retry. Transitions are one guarded UPDATE each,
//! checked against the state machine and the caller's version;
//! [`StateOps::apply_writes`] lands several (an attempt's end with what it
//! causes) in one transaction. On SQLite the writers of one process queue
//! in the store instead of sleeping in SQLite's busy handler, and what
//! queued lands together (`sea::group`): one transaction for many callers,
//! each caller with its own result or error (a unit refused part-way makes
//! the group run again with each unit in its own savepoint).
//!
//! Reading commands open with [`open_reader`]: one connection and one query
//! for the schema version. SQLite connections keep the plan a statement was
//! prepared with (so a bound `LIMIT` does not recompile it on every run) and
//! are not pinged before each use.

mod backend;
mod claim;
pub mod config;
pub mod connect;
pub mod error;
pub mod migrate;
pub mod query;
mod recovery;
pub mod redact;
mod retention;
mod schema;
mod sea;
pub mod state_machine;
pub mod state_store;
pub mod text;
pub mod types;
pub mod yaml;

#[cfg(feature = "diagnostics")]
pub use claim::claim_statement;
pub use claim::MAX_CLAIM;
pub use config::{StorageConfig, StorageType};
pub use error::{Result, StoreError};
#[cfg(feature = "diagnostics")]
pub use recovery::recovery_statements;
pub use recovery::CRASH_RECOVERY;
pub use retention::MAX_BATCH;
pub use sea::{SeaStore, SeaTransaction};
pub use state_store::{StateOps, StateStore, StoreTransaction};

use chrono::{DateTime, SubsecRound, Utc};
use std::sync::Arc;

/// The current time at the precision every backend stores (microseconds).
pub fn now() -> DateTime<Utc> {
    truncate_micros(Utc::now())
}

/// `t` cut to microseconds, so what is written reads back equal everywhere.
pub fn truncate_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// Opens the store a configuration describes, as a shareable trait object,
/// creating the SQLite file and the schema when missing (as configured).
pub async fn open(config: &StorageConfig) -> Result<Arc<dyn StateStore>> {
    Ok(Arc::new(SeaStore::open(config).await?))
}

/// Opens a store that must already exist for a command that only reads: one
/// connection, one query to check the schema (see [`SeaStore::open_reader`]).
pub async fn open_reader(config: &StorageConfig) -> Result<Arc<dyn StateStore>> {
    Ok(Arc::new(SeaStore::open_reader(config).await?))
}

/// Opens a store that must already exist; creates nothing (see
/// [`SeaStore::open_existing`]). For commands that only read or remove.
pub async fn open_existing(config: &StorageConfig) -> Result<Arc<dyn StateStore>> {
    Ok(Arc::new(SeaStore::open_existing(config).await?))
}
