//! What operations run on, behind one trait [`Db`]: the pool ([`Pool`]),
//! where each write gets a transaction of its own from the runner
//! ([`write::transaction`]), and one open transaction ([`Tx`]), which writes
//! join. Each type holds only what it can be, so no operation has to handle
//! the other case.

use super::group::Group;
use super::write::{self, Gate, TxFuture};
use crate::backend::{self, Backend};
use crate::error::Result;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseExecutor, DatabaseTransaction, QueryResult,
    Statement, TransactionTrait,
};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OwnedMutexGuard;

/// A database that operations read from and write to: the pool or an open
/// transaction. Generic methods, so not object safe; the object-safe traits
/// (`StateOps` and the rest) are implemented over it.
pub(crate) trait Db: Send + Sync {
    /// Where reads go.
    fn exec(&self) -> DatabaseExecutor<'_>;

    /// The behaviour of this database's backend.
    fn backend(&self) -> &'static dyn Backend;

    /// The rows of a list's statements, in order, each planned for its own
    /// values: on a backend with a [`Backend::list_setting`], in a
    /// transaction that makes it (on the pool, one of their own).
    fn lists(
        &self,
        stmts: Vec<Statement>,
    ) -> impl Future<Output = Result<Vec<Vec<QueryResult>>>> + Send;

    /// Runs a write that is one statement on its happy path (a guarded
    /// UPDATE, one INSERT). On the pool it runs without a transaction of its
    /// own (one round trip instead of three), or on SQLite in the next group
    /// ([`Group`]) when other writers wait, and is retried on transient
    /// failures like [`write`](Self::write); in a transaction it runs there.
    fn single<T, F>(&self, f: F) -> impl Future<Output = Result<T>> + Send
    where
        T: Send + 'static,
        F: for<'c> Fn(DatabaseExecutor<'c>) -> TxFuture<'c, T> + Send + Sync + 'static;

    /// Runs `f` in a write transaction. On the pool that is a fresh one from
    /// the runner ([`write::transaction`]): committed when `f` succeeds,
    /// rolled back otherwise, and run again whole on transient failures, so
    /// `f` takes its inputs by clone. In a transaction `f` runs inside it,
    /// once: the caller holding it commits, rolls back and retries.
    fn write<T, F>(&self, f: F) -> impl Future<Output = Result<T>> + Send
    where
        T: Send + 'static,
        F: for<'c> Fn(&'c DatabaseTransaction) -> TxFuture<'c, T> + Send + Sync + 'static;
}

/// Anything whose operations run on a [`Db`]: the store on its [`Pool`], a
/// store transaction on its [`Tx`].
pub(crate) trait HasDb: Send + Sync {
    /// The pool or the transaction.
    type Db: Db;

    /// Where this handle's operations run.
    fn db(&self) -> &Self::Db;
}

/// The connection pool, with its backend's behaviour.
pub(crate) struct Pool {
    db: DatabaseConnection,
    /// Where write transactions run: SQLite's writers' own connection
    /// (see `connect::connect_sqlite_writer`), else the pool itself.
    writer: DatabaseConnection,
    backend: &'static dyn Backend,
    gate: Gate,
    /// Group commit, on a backend with one write lock (SQLite).
    group: Option<Group>,
}

impl Pool {
    /// Wraps an open pool whose writers wait at most `busy` for their turn,
    /// and write on `writer` when given.
    pub(crate) fn new(
        db: DatabaseConnection,
        writer: Option<DatabaseConnection>,
        busy: Duration,
    ) -> Self {
        let backend = backend::for_backend(db.get_database_backend());
        let gate = Gate::for_backend(backend, busy);
        let writer = writer.unwrap_or_else(|| db.clone());
        let group = gate
            .turn()
            .map(|(turn, wait)| Group::new(writer.clone(), backend, turn, wait));
        Pool {
            db,
            writer,
            backend,
            gate,
            group,
        }
    }

    /// Closes the pool and the writers' connection.
    pub(crate) async fn close(&self) -> Result<()> {
        self.writer.clone().close().await?;
        Ok(self.db.clone().close().await?)
    }

    /// The SeaORM pool, for reads outside [`Db`] and raw SQL.
    pub(crate) fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Begins a transaction that the caller holds, commits and rolls back
    /// (`StateStore::begin`). It begins like every other write transaction
    /// ([`write::begin`]), and only the BEGIN is retried on transient
    /// failures: the statements that follow are the caller's, and only the
    /// caller could run them again.
    pub(crate) async fn begin(&self) -> Result<Tx> {
        let turn = self.gate.enter().await;
        let tx = write::retry_transient(self.backend, || write::begin(&self.writer, self.backend))
            .await?;
        Ok(Tx {
            tx,
            _turn: turn,
            backend: self.backend,
        })
    }
}

impl Db for Pool {
    fn exec(&self) -> DatabaseExecutor<'_> {
        (&self.db).into()
    }

    fn backend(&self) -> &'static dyn Backend {
        self.backend
    }

    async fn lists(&self, stmts: Vec<Statement>) -> Result<Vec<Vec<QueryResult>>> {
        let Some(setting) = self.backend.list_setting() else {
            return run_lists(&self.db, None, stmts).await;
        };
        let tx = self.db.begin().await?;
        let result = run_lists(&tx, Some(setting), stmts).await;
        write::end(tx, result).await
    }

    async fn single<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> Fn(DatabaseExecutor<'c>) -> TxFuture<'c, T> + Send + Sync + 'static,
    {
        let Some(group) = &self.group else {
            return write::retry_transient(self.backend, || f(self.exec())).await;
        };
        let f = Arc::new(f);
        write::retry_transient(self.backend, || {
            let f = f.clone();
            group.single(move |c| f(c))
        })
        .await
    }

    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> Fn(&'c DatabaseTransaction) -> TxFuture<'c, T> + Send + Sync + 'static,
    {
        let Some(group) = &self.group else {
            return write::transaction(&self.writer, self.backend, &self.gate, f).await;
        };
        let f = Arc::new(f);
        write::retry_transient(self.backend, || {
            let f = f.clone();
            group.unit(move |tx| f(tx))
        })
        .await
    }
}

/// One open write transaction, begun by [`Pool::begin`].
pub(crate) struct Tx {
    /// This process's write turn, held until the transaction ends (the
    /// field order drops the transaction, and its rollback, first).
    tx: DatabaseTransaction,
    _turn: Option<OwnedMutexGuard<()>>,
    backend: &'static dyn Backend,
}

impl Tx {
    /// Makes the transaction's writes durable.
    pub(crate) async fn commit(self) -> Result<()> {
        Ok(self.tx.commit().await?)
    }

    /// Discards the transaction's writes.
    pub(crate) async fn rollback(self) -> Result<()> {
        Ok(self.tx.rollback().await?)
    }
}

impl Db for Tx {
    fn exec(&self) -> DatabaseExecutor<'_> {
        (&self.tx).into()
    }

    fn backend(&self) -> &'static dyn Backend {
        self.backend
    }

    async fn lists(&self, stmts: Vec<Statement>) -> Result<Vec<Vec<QueryResult>>> {
        // The setting lasts until this transaction ends.
        run_lists(&self.tx, self.backend.list_setting(), stmts).await
    }

    async fn single<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> Fn(DatabaseExecutor<'c>) -> TxFuture<'c, T> + Send + Sync + 'static,
    {
        f(self.exec()).await
    }

    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> Fn(&'c DatabaseTransaction) -> TxFuture<'c, T> + Send + Sync + 'static,
    {
        f(&self.tx).await
    }
}

/// Runs `setting` when there is one, then each statement, on `conn`.
async fn run_lists<C: ConnectionTrait>(
    conn: &C,
    setting: Option<&str>,
    stmts: Vec<Statement>,
) -> Result<Vec<Vec<QueryResult>>> {
    if let Some(setting) = setting {
        conn.execute_unprepared(setting).await?;
    }
    let mut lists = Vec::with_capacity(stmts.len());
    for stmt in stmts {
        lists.push(conn.query_all_raw(stmt).await?);
    }
    Ok(lists)
}
