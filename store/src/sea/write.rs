//! The one write path. Every write transaction of the store begins in
//! [`begin`], the backend's way, and every unit of work the store runs by
//! itself goes through [`transaction`], which commits it, rolls it back on
//! any error and runs it again whole when the database reports a transient
//! failure.

use crate::backend::{self, Backend};
use crate::error::{Result, StoreError};
use sea_orm::{DatabaseConnection, DatabaseTransaction, TransactionTrait};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// A boxed future borrowing a transaction or an executor.
pub(crate) type TxFuture<'c, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'c>>;

/// How many times a write is tried when the database reports a lock
/// timeout, deadlock or serialisation failure.
const WRITE_TRIES: u32 = 10;

/// The pause before the second try; it doubles before each further one...
const FIRST_PAUSE: Duration = Duration::from_millis(2);

/// ...up to this: the nine pauses of ten tries add up to about 0.65 s.
const MAX_PAUSE: Duration = Duration::from_millis(200);

/// Begins a write transaction the way the backend needs it (IMMEDIATE on
/// SQLite, see [`Backend::write_transaction`]). One try: the callers decide
/// what is retried.
pub(crate) async fn begin(
    db: &DatabaseConnection,
    backend: &dyn Backend,
) -> Result<DatabaseTransaction> {
    Ok(db.begin_with_options(backend.write_transaction()).await?)
}

/// Runs `f` as one unit in a fresh write transaction: begins it, runs `f`,
/// commits. Any error rolls the transaction back, so no pooled connection is
/// left inside it; a transient one runs the whole unit again, from the
/// BEGIN, with growing pauses. `f` may therefore run more than once: it takes
/// its inputs by clone, and effects outside the database (logs, metrics)
/// belong after this returns.
pub(crate) async fn transaction<T, F>(
    db: &DatabaseConnection,
    backend: &dyn Backend,
    gate: &Gate,
    f: F,
) -> Result<T>
where
    T: Send,
    F: for<'c> Fn(&'c DatabaseTransaction) -> TxFuture<'c, T> + Send + Sync,
{
    retry_transient(backend, || async {
        let _turn = gate.enter().await;
        let tx = begin(db, backend).await?;
        let result = f(&tx).await;
        end(tx, result).await
    })
    .await
}

/// The queue of this process's writers on a backend with one write lock
/// (SQLite). Without it, a writer that finds the lock taken sleeps in
/// SQLite's busy handler (1, 2, 5, 10 ms and up) although the holder is
/// done a fraction of a millisecond later; waiting in line here instead
/// hands the lock straight on. Writers of other processes still meet
/// SQLite's busy timeout.
#[derive(Clone, Default)]
pub(crate) struct Gate(Option<(Arc<Mutex<()>>, Duration)>);

impl Gate {
    /// A queue for `backend` if it has one write lock; waiting in it is
    /// bounded by `wait` (the busy timeout), after which the writer goes on
    /// to SQLite's own locking, so a writer holding a transaction open can
    /// never make another wait for ever.
    pub(crate) fn for_backend(backend: &dyn Backend, wait: Duration) -> Self {
        Gate(backend.one_writer().then(|| (Arc::default(), wait)))
    }

    /// The write turn and how long a writer waits for it, on a backend
    /// with one write lock: what group commit shares with [`enter`](Self::enter).
    pub(crate) fn turn(&self) -> Option<(Arc<Mutex<()>>, Duration)> {
        self.0.clone()
    }

    /// Waits for this writer's turn; the turn lasts as long as the guard.
    pub(crate) async fn enter(&self) -> Option<OwnedMutexGuard<()>> {
        let (queue, wait) = self.0.as_ref()?;
        tokio::time::timeout(*wait, queue.clone().lock_owned())
            .await
            .ok()
    }
}

/// Commits `tx` when `result` is a success; otherwise rolls it back and
/// returns the error.
pub(crate) async fn end<T>(tx: DatabaseTransaction, result: Result<T>) -> Result<T> {
    match result {
        // A failed COMMIT drops the transaction still open, and SeaORM's drop
        // queues its ROLLBACK on the connection before it goes back to the pool.
        Ok(value) => {
            tx.commit().await?;
            Ok(value)
        }
        Err(e) => {
            // Rollback errors are secondary: the caller needs the first error.
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

/// Runs `op` again, with growing pauses, while it fails transiently (the
/// backend's [`is_transient`](Backend::is_transient) codes), at most
/// [`WRITE_TRIES`] times in all.
pub(crate) async fn retry_transient<T, Fut, Op>(backend: &dyn Backend, op: Op) -> Result<T>
where
    Op: Fn() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut pause = FIRST_PAUSE;
    let mut tries = 1;
    loop {
        match op().await {
            Err(StoreError::Database(e))
                if tries < WRITE_TRIES
                    && backend::error_code(&e).is_some_and(|c| backend.is_transient(&c)) =>
            {
                tracing::debug!(error = %e, tries, "transient database error; retrying");
                metrics::counter!("flowstate_store_transaction_retries_total").increment(1);
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
                tries += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
    use sea_orm::{ConnectionTrait, SqlxSqliteConnector};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    /// A one-connection pool on `path` that fails at once on a lock instead
    /// of waiting for it.
    async fn pool(path: &std::path::Path) -> DatabaseConnection {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .busy_timeout(Duration::ZERO);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        SqlxSqliteConnector::from_sqlx_sqlite_pool(pool)
    }

    async fn rows(db: &DatabaseConnection) -> i64 {
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT COUNT(*) FROM t",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index(0).unwrap()
    }

    #[tokio::test]
    async fn an_error_rolls_the_unit_back_and_frees_the_connection() {
        let dir = tempfile::tempdir().unwrap();
        let db = pool(&dir.path().join("t.db")).await;
        let backend = backend::for_backend(db.get_database_backend());
        db.execute_unprepared("CREATE TABLE t (x INTEGER)")
            .await
            .unwrap();
        let failed: Result<()> = transaction(&db, backend, &Gate::default(), |tx| {
            Box::pin(async move {
                tx.execute_unprepared("INSERT INTO t VALUES (1)").await?;
                Err(StoreError::InvalidInput("refused".into()))
            })
        })
        .await;
        assert!(matches!(failed, Err(StoreError::InvalidInput(_))));
        assert_eq!(rows(&db).await, 0);
        // The pool's only connection is out of the transaction: a new one
        // begins on it and commits.
        transaction(&db, backend, &Gate::default(), |tx| {
            Box::pin(async move {
                tx.execute_unprepared("INSERT INTO t VALUES (2)").await?;
                Ok(())
            })
        })
        .await
        .unwrap();
        assert_eq!(rows(&db).await, 1);
    }

    #[tokio::test]
    async fn a_transient_failure_inside_the_unit_runs_the_whole_unit_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let db = pool(&path).await;
        let other = pool(&path).await;
        let backend = backend::for_backend(db.get_database_backend());
        db.execute_unprepared("CREATE TABLE t (x INTEGER)")
            .await
            .unwrap();
        let tries = Arc::new(AtomicU32::new(0));
        let counted = tries.clone();
        transaction(&db, backend, &Gate::default(), move |tx| {
            let (tries, other) = (counted.clone(), other.clone());
            Box::pin(async move {
                tx.execute_unprepared("INSERT INTO t VALUES (1)").await?;
                if tries.fetch_add(1, Ordering::SeqCst) == 0 {
                    // Our IMMEDIATE transaction holds the write lock, so this
                    // write on another connection fails with SQLITE_BUSY, a
                    // transient error, after the unit has written a row.
                    other.execute_unprepared("INSERT INTO t VALUES (9)").await?;
                }
                Ok(())
            })
        })
        .await
        .unwrap();
        assert_eq!(tries.load(Ordering::SeqCst), 2);
        // The first try's row was rolled back; only the second try's is left.
        assert_eq!(rows(&db).await, 1);
    }
}
