//! Retention: deleting old finished executions in short batches.
//!
//! Each batch is its own transaction: pick up to `batch_size` candidates by the
//! `finished_at` index, count their children for the report, delete the
//! executions and let the foreign keys cascade. Writers wait at most one batch,
//! and [`purge`] sizes batches by how long they take, so none holds the write
//! lock for long however many rows hang under an execution.

use crate::error::{Result, StoreError};
use crate::sea::db::{Db, Pool};
use crate::truncate_micros;
use crate::types::{ExecutionState, PurgeCounts, PurgeReport};
use chrono::{DateTime, Utc};
use flowstate_entity::{attempt, execution, log, output, task_run};
use sea_orm::sea_query::{Query, SelectStatement};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The largest batch: keeps each statement's id list under every backend's
/// bound-parameter limit and each transaction short.
pub const MAX_BATCH: u64 = 20_000;

/// The first batch of a purge, whatever the requested size.
const START_BATCH: u64 = 500;
/// Batches faster than this grow (up to the requested size)...
const FAST_BATCH: Duration = Duration::from_millis(150);
/// ...and slower ones shrink, keeping every transaction well under a second.
const SLOW_BATCH: Duration = Duration::from_millis(400);

const TERMINAL: [ExecutionState; 3] = [
    ExecutionState::Succeeded,
    ExecutionState::Failed,
    ExecutionState::Cancelled,
];

pub(crate) async fn purge(
    pool: &Pool,
    cutoff: DateTime<Utc>,
    batch_size: u64,
    dry_run: bool,
) -> Result<PurgeReport> {
    if !(1..=MAX_BATCH).contains(&batch_size) {
        return Err(StoreError::InvalidInput(format!(
            "batch size {batch_size} is out of range; use 1 to {MAX_BATCH}"
        )));
    }
    let cutoff = truncate_micros(cutoff);
    let mut report = PurgeReport {
        dry_run,
        ..Default::default()
    };
    if dry_run {
        let candidates = Query::select()
            .column(execution::Column::Id)
            .from(execution::Entity)
            .and_where(execution::Column::FinishedAt.lt(cutoff))
            .to_owned();
        let db = pool.connection();
        report.counts = count_children(db, candidates).await?;
        report.counts.executions = execution::Entity::find()
            .filter(execution::Column::FinishedAt.lt(cutoff))
            .filter(execution::Column::State.is_in(TERMINAL))
            .count(db)
            .await?;
        return Ok(report);
    }
    // Start small and grow while transactions stay short; shrink when one
    // runs long. How long a batch holds the write lock depends on how many
    // rows hang under each execution, which no batch size can know ahead.
    let mut size = batch_size.min(START_BATCH);
    loop {
        let batch = purge_batch(pool, cutoff, size).await?;
        let done = batch.counts.executions < size;
        report.longest_batch = report.longest_batch.max(batch.longest_batch);
        report.batches += batch.batches;
        report.counts += batch.counts;
        if done {
            break;
        }
        // Let writers waiting for the lock in before the next batch takes it.
        tokio::time::sleep(pool.backend().pause_between_batches(batch.longest_batch)).await;
        if batch.longest_batch > SLOW_BATCH {
            size = (size / 2).max(1);
        } else if batch.longest_batch < FAST_BATCH {
            size = (size * 2).min(batch_size);
        }
    }
    if report.longest_batch > Duration::from_secs(1) {
        tracing::warn!(
            longest_ms = report.longest_batch.as_millis() as u64,
            "a retention batch held the write lock for over a second; use a smaller batch size"
        );
    }
    Ok(report)
}

/// Deletes one batch of at most `batch_size` executions in one write
/// transaction through the runner (retried whole on transient failures).
pub(crate) async fn purge_batch(
    pool: &Pool,
    cutoff: DateTime<Utc>,
    batch_size: u64,
) -> Result<PurgeReport> {
    if !(1..=MAX_BATCH).contains(&batch_size) {
        return Err(StoreError::InvalidInput(format!(
            "batch size {batch_size} is out of range; use 1 to {MAX_BATCH}"
        )));
    }
    let cutoff = truncate_micros(cutoff);
    let started = Instant::now();
    let counts = pool
        .write(move |tx| Box::pin(delete_batch(tx, cutoff, batch_size)))
        .await?;
    let Some(counts) = counts else {
        return Ok(PurgeReport::default());
    };
    let took = started.elapsed();
    metrics::counter!("flowstate_purged_executions_total").increment(counts.executions);
    tracing::debug!(
        executions = counts.executions,
        ms = took.as_millis() as u64,
        "retention batch deleted"
    );
    Ok(PurgeReport {
        counts,
        batches: 1,
        dry_run: false,
        longest_batch: took,
    })
}

/// The work of [`purge_batch`] inside its transaction: what it deleted, or
/// `None` when nothing was old enough.
async fn delete_batch(
    tx: &DatabaseTransaction,
    cutoff: DateTime<Utc>,
    batch_size: u64,
) -> Result<Option<PurgeCounts>> {
    // Only `finished_at` selects: the store sets it exactly when an execution
    // becomes terminal, and a state filter here made planners walk the state
    // index (90% of the table) and sort it instead of reading the oldest
    // entries of the finished_at index. The DELETE re-checks the state.
    let ids: Vec<Uuid> = execution::Entity::find()
        .select_only()
        .column(execution::Column::Id)
        .filter(execution::Column::FinishedAt.lt(cutoff))
        .order_by_asc(execution::Column::FinishedAt)
        .limit(batch_size)
        .into_tuple()
        .all(tx)
        .await?;
    if ids.is_empty() {
        return Ok(None);
    }
    let chosen = Query::select()
        .column(execution::Column::Id)
        .from(execution::Entity)
        .and_where(execution::Column::Id.is_in(ids.iter().copied()))
        .to_owned();
    let mut counts = count_children(tx, chosen).await?;
    counts.executions = execution::Entity::delete_many()
        .filter(execution::Column::Id.is_in(ids.iter().copied()))
        .filter(execution::Column::State.is_in(TERMINAL))
        .exec(tx)
        .await?
        .rows_affected;
    forget_originals(tx, &ids).await?;
    Ok(Some(counts))
}

/// Clears the `retry_of` links to the executions of `ids` that are gone: a
/// retry outlives its original (issue 15), through `ix_executions_retry_of`.
async fn forget_originals(tx: &DatabaseTransaction, ids: &[Uuid]) -> Result<()> {
    let kept = Query::select()
        .column(execution::Column::Id)
        .from(execution::Entity)
        .and_where(execution::Column::Id.is_in(ids.iter().copied()))
        .to_owned();
    execution::Entity::update_many()
        .col_expr(
            execution::Column::RetryOf,
            sea_orm::sea_query::Expr::value(Option::<Uuid>::None),
        )
        .filter(execution::Column::RetryOf.is_in(ids.iter().copied()))
        .filter(execution::Column::RetryOf.not_in_subquery(kept))
        .exec(tx)
        .await?;
    Ok(())
}

/// Counts the rows under the executions `ids` selects, table by table (not
/// the executions themselves: the DELETE reports those).
async fn count_children<C: ConnectionTrait>(db: &C, ids: SelectStatement) -> Result<PurgeCounts> {
    let task_runs = Query::select()
        .column(task_run::Column::Id)
        .from(task_run::Entity)
        .and_where(task_run::Column::ExecutionId.in_subquery(ids.clone()))
        .to_owned();
    Ok(PurgeCounts {
        // The caller knows how many executions: the DELETE reports it.
        executions: 0,
        task_runs: task_run::Entity::find()
            .filter(task_run::Column::ExecutionId.in_subquery(ids.clone()))
            .count(db)
            .await?,
        attempts: attempt::Entity::find()
            .filter(attempt::Column::TaskRunId.in_subquery(task_runs))
            .count(db)
            .await?,
        outputs: output::Entity::find()
            .filter(output::Column::ExecutionId.in_subquery(ids.clone()))
            .count(db)
            .await?,
        logs: log::Entity::find()
            .filter(log::Column::ExecutionId.in_subquery(ids))
            .count(db)
            .await?,
    })
}
