//! The connection a set of operations runs on: the pool, or one open
//! transaction. Writes on the pool each get their own write transaction,
//! retried when the backend reports a transient failure.

use crate::backend::{self, Backend};
use crate::error::{Result, StoreError};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseExecutor, DatabaseTransaction, TransactionTrait,
};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed future borrowing a transaction.
pub(crate) type TxFuture<'c, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'c>>;

/// How many times a write transaction is tried when the database reports a
/// lock timeout, deadlock or serialisation failure.
const WRITE_TRIES: u32 = 10;

/// The pool, or one open write transaction.
pub(crate) enum Conn {
    Pool(DatabaseConnection),
    Tx(DatabaseTransaction),
}

impl Conn {
    /// Where reads go.
    pub(crate) fn exec(&self) -> DatabaseExecutor<'_> {
        match self {
            Conn::Pool(db) => db.into(),
            Conn::Tx(tx) => tx.into(),
        }
    }

    pub(crate) fn backend(&self) -> &'static dyn Backend {
        backend::for_backend(self.exec().get_database_backend())
    }

    /// Runs a write that is one statement on its happy path (a guarded UPDATE,
    /// one INSERT) without wrapping it in a transaction of its own: one round
    /// trip instead of three. Inside an open transaction it runs there.
    /// Retried on transient failures like [`write`](Self::write).
    pub(crate) async fn single<T, F>(&self, f: F) -> Result<T>
    where
        T: Send,
        F: for<'c> Fn(DatabaseExecutor<'c>) -> TxFuture<'c, T> + Send + Sync,
    {
        match self {
            Conn::Tx(_) => f(self.exec()).await,
            Conn::Pool(_) => retry_transient(self.backend(), || f(self.exec())).await,
        }
    }

    /// Runs `f` in a write transaction: inside the open one, or in a fresh one
    /// on the pool that is committed when `f` succeeds and retried on
    /// transient failures. `f` may run more than once, so it takes its inputs
    /// by clone.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send,
        F: for<'c> Fn(&'c DatabaseTransaction) -> TxFuture<'c, T> + Send + Sync,
    {
        match self {
            Conn::Tx(tx) => f(tx).await,
            Conn::Pool(db) => write_on_pool(db, self.backend(), f).await,
        }
    }
}

/// Begins a write transaction on the pool the way the backend needs it.
pub(crate) async fn begin_write(
    db: &DatabaseConnection,
    backend: &dyn Backend,
) -> Result<DatabaseTransaction> {
    retry_transient(backend, || async {
        Ok(db.begin_with_options(backend.write_transaction()).await?)
    })
    .await
}

/// Runs `f` in a fresh write transaction on the pool, committed when it
/// succeeds and retried on transient failures.
pub(crate) async fn write_on_pool<T, F>(
    db: &DatabaseConnection,
    backend: &dyn Backend,
    f: F,
) -> Result<T>
where
    T: Send,
    F: for<'c> Fn(&'c DatabaseTransaction) -> TxFuture<'c, T> + Send + Sync,
{
    retry_transient(backend, || async {
        let tx = db.begin_with_options(backend.write_transaction()).await?;
        match f(&tx).await {
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
    })
    .await
}

/// Runs `op` again, with growing pauses, while it fails transiently.
pub(crate) async fn retry_transient<T, Fut, Op>(backend: &dyn Backend, op: Op) -> Result<T>
where
    Op: Fn() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut pause = Duration::from_millis(2);
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
                pause = (pause * 2).min(Duration::from_millis(200));
                tries += 1;
            }
            other => return other,
        }
    }
}
