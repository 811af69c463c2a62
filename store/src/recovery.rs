//! Crash recovery: a few set-based statements in one write transaction.
//!
//! The executions to fail and to release are read once, with a row lock on
//! the servers; then each table is updated with one statement per chunk of
//! 500 of those ids, so the work is a few statements, never one per row, and
//! every statement is an index lookup.

use crate::backend::Backend;
use crate::error::Result;
use crate::sea::db::{Db, Pool};
use crate::truncate_micros;
use crate::types::{AttemptState, ExecutionState, Reason, RecoveryReport, TaskState};
use chrono::{DateTime, Utc};
use flowstate_entity::{attempt, execution, task_run};
use sea_orm::sea_query::{Condition, Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter,
    QuerySelect, QueryTrait,
};
use uuid::Uuid;

/// Ids per UPDATE: far under every backend's bound-parameter limit.
const ID_CHUNK: usize = 500;

/// The reason recovery writes.
pub const CRASH_RECOVERY: Reason = Reason::CrashRecovery;

/// Held by `node_id` (when given), or by nobody alive: no owner, no lease,
/// or a lease that ran out before `now`.
fn dead_or_mine(node_id: Option<&str>, now: DateTime<Utc>) -> Condition {
    use execution::Column as C;
    let mut any = Condition::any()
        .add(C::Owner.is_null())
        .add(C::LeaseExpiresAt.is_null())
        .add(C::LeaseExpiresAt.lt(now));
    if let Some(node) = node_id {
        any = any.add(C::Owner.eq(node));
    }
    any
}

/// RUNNING executions whose engine is gone.
fn orphaned(node_id: Option<&str>, now: DateTime<Utc>) -> Condition {
    use execution::Column as C;
    Condition::all()
        .add(C::State.eq(ExecutionState::Running))
        .add(dead_or_mine(node_id, now))
}

/// PENDING and WAITING executions that still carry a dead engine's name or
/// lease; those without either are claimable already.
fn requeueable(node_id: Option<&str>, now: DateTime<Utc>) -> Condition {
    use execution::Column as C;
    Condition::all()
        .add(C::State.is_in([ExecutionState::Pending, ExecutionState::Waiting]))
        .add(
            Condition::any()
                .add(C::Owner.is_not_null())
                .add(C::LeaseExpiresAt.is_not_null()),
        )
        .add(dead_or_mine(node_id, now))
}

/// Recovery for `node_id` (at start-up: its own executions too), or with
/// `None` only executions whose lease expired (the periodic sweep). One write
/// transaction through the runner, retried whole on transient failures; the
/// log lines and metrics follow its commit.
pub(crate) async fn recover(
    pool: &Pool,
    node_id: Option<&str>,
    now: DateTime<Utc>,
    retry: Vec<Uuid>,
) -> Result<RecoveryReport> {
    let now = truncate_micros(now);
    let backend = pool.backend();
    let node = node_id.map(str::to_owned);
    let report = pool
        .write(move |tx| {
            let (node, retry) = (node.clone(), retry.clone());
            Box::pin(async move { recover_in(tx, backend, node.as_deref(), now, &retry).await })
        })
        .await?;
    for id in &report.failed {
        tracing::warn!(execution = %id, node = node_id.unwrap_or("-"), "execution failed by crash recovery");
    }
    metrics::counter!("flowstate_recovered_executions_total").increment(report.failed.len() as u64);
    metrics::counter!("flowstate_requeued_executions_total")
        .increment(report.requeued.len() as u64);
    Ok(report)
}

/// The two selects recovery starts with, named, for `EXPLAIN`: the RUNNING
/// executions whose engine is gone, and the queued ones still carrying a
/// dead engine's owner or lease.
#[cfg(feature = "diagnostics")]
pub fn recovery_statements(
    backend: sea_orm::DbBackend,
    node_id: Option<&str>,
    now: DateTime<Utc>,
) -> Vec<(&'static str, sea_orm::Statement)> {
    let select = |cond: Condition| {
        execution::Entity::find()
            .select_only()
            .column(execution::Column::Id)
            .filter(cond)
            .build(backend)
    };
    vec![
        ("orphaned", select(orphaned(node_id, now))),
        ("requeueable", select(requeueable(node_id, now))),
    ]
}

/// The RUNNING executions recovery for `node_id` would end at `now` (with
/// `None`, those whose lease expired), oldest first: for a caller that
/// decides which of them to retry (see [`recover`]'s `retry`).
pub(crate) async fn orphaned_executions(
    pool: &Pool,
    node_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<crate::types::Execution>> {
    use sea_orm::QueryOrder;
    Ok(execution::Entity::find()
        .filter(orphaned(node_id, truncate_micros(now)))
        .order_by_asc(execution::Column::CreatedAt)
        .all(pool.connection())
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
}

/// The work of [`recover`] inside its transaction.
async fn recover_in(
    tx: &DatabaseTransaction,
    backend: &dyn Backend,
    node_id: Option<&str>,
    now: DateTime<Utc>,
    retry: &[Uuid],
) -> Result<RecoveryReport> {
    use execution::Column as C;
    let lock = backend.row_lock_suffix();
    let select_ids = |cond: Condition| {
        let mut stmt = execution::Entity::find()
            .select_only()
            .column(C::Id)
            .filter(cond)
            .build(tx.get_database_backend());
        stmt.sql.push_str(lock);
        stmt
    };
    let orphans: Vec<Uuid> = ids(tx, select_ids(orphaned(node_id, now))).await?;
    // Those whose workflow retries a crashed attempt go back to the queue.
    let (retried, failed): (Vec<Uuid>, Vec<Uuid>) =
        orphans.into_iter().partition(|id| retry.contains(id));
    let requeued: Vec<Uuid> = ids(tx, select_ids(requeueable(node_id, now))).await?;

    let message = match node_id {
        Some(node) => format!(
            "the engine running this execution stopped (recovered by node '{node}' at start-up)"
        ),
        None => "the engine running this execution stopped renewing its lease".to_owned(),
    };
    let mut report = RecoveryReport {
        failed: failed.clone(),
        ..Default::default()
    };
    // Keyed on the ids read above, a chunk at a time: every statement is an
    // index lookup, whatever else the tables hold.
    for chunk in failed.chunks(ID_CHUNK) {
        fail_chunk(tx, chunk, &message, now, &mut report).await?;
    }
    for chunk in retried.chunks(ID_CHUNK) {
        retry_chunk(tx, chunk, &message, now, &mut report).await?;
    }
    report.retried = retried;
    for chunk in requeued.chunks(ID_CHUNK) {
        execution::Entity::update_many()
            .col_expr(C::Owner, Expr::val(None::<String>))
            .col_expr(C::LeaseExpiresAt, Expr::val(None::<DateTime<Utc>>))
            .filter(C::Id.is_in(chunk.iter().copied()))
            .exec(tx)
            .await?;
    }
    report.queued = execution::Entity::find()
        .filter(C::State.is_in([ExecutionState::Pending, ExecutionState::Waiting]))
        .count(tx)
        .await?;
    report.requeued = requeued;
    Ok(report)
}

/// Ends the RUNNING executions `ids` whose engine is gone, counting into
/// `report`: those whose every task run SUCCEEDED (the engine died between
/// the last task's end and the execution's) are finished SUCCEEDED; the
/// others FAIL with their RUNNING attempts and task runs, and their PENDING
/// and WAITING task runs are SKIPPED, so no task run is left unfinished
/// under a finished execution.
async fn fail_chunk(
    tx: &DatabaseTransaction,
    ids: &[Uuid],
    message: &str,
    now: DateTime<Utc>,
    report: &mut RecoveryReport,
) -> Result<()> {
    let done = all_succeeded(tx, ids).await?;
    let (done, ids): (Vec<Uuid>, Vec<Uuid>) = ids.iter().partition(|id| done.contains(id));
    if !done.is_empty() {
        finish_succeeded(tx, &done, now).await?;
        report.failed.retain(|id| !done.contains(id));
        report.succeeded.extend(done);
    }
    if ids.is_empty() {
        return Ok(());
    }
    fail_executions(tx, &ids, message, now, report).await
}

/// Puts the RUNNING executions `ids` back in the queue (WAITING, due now,
/// no owner) after failing their RUNNING attempts with CRASH_RECOVERY; their
/// task runs stay RUNNING for the next driver, whose planner retries each
/// task that has `retryOnCrash` and retries left and fails the others.
async fn retry_chunk(
    tx: &DatabaseTransaction,
    ids: &[Uuid],
    message: &str,
    now: DateTime<Utc>,
    report: &mut RecoveryReport,
) -> Result<()> {
    use execution::Column as C;
    report.attempts_failed += fail_attempts(tx, ids, message, now).await?;
    from_running(ids, ExecutionState::Waiting, now)
        .col_expr(C::Owner, Expr::val(None::<String>))
        .col_expr(C::WakeAt, Expr::val(now))
        .exec(tx)
        .await?;
    Ok(())
}

/// Fails the RUNNING attempts of the executions `ids` with CRASH_RECOVERY.
async fn fail_attempts(
    tx: &DatabaseTransaction,
    ids: &[Uuid],
    message: &str,
    now: DateTime<Utc>,
) -> Result<u64> {
    let their_task_runs = Query::select()
        .column(task_run::Column::Id)
        .from(task_run::Entity)
        .and_where(task_run::Column::ExecutionId.is_in(ids.iter().copied()))
        .to_owned();
    Ok(attempt::Entity::update_many()
        .col_expr(attempt::Column::State, Expr::val(AttemptState::Failed))
        .col_expr(attempt::Column::Reason, Expr::val(Some(CRASH_RECOVERY)))
        .col_expr(attempt::Column::Error, Expr::val(Some(message.to_owned())))
        .col_expr(attempt::Column::FinishedAt, Expr::val(now))
        .filter(attempt::Column::TaskRunId.in_subquery(their_task_runs))
        .filter(attempt::Column::State.eq(AttemptState::Running))
        .exec(tx)
        .await?
        .rows_affected)
}

/// Which of `ids` have no task run in a state other than SUCCEEDED.
async fn all_succeeded(tx: &DatabaseTransaction, ids: &[Uuid]) -> Result<Vec<Uuid>> {
    use execution::Column as C;
    let unfinished = Query::select()
        .column(task_run::Column::ExecutionId)
        .from(task_run::Entity)
        .and_where(task_run::Column::ExecutionId.is_in(ids.iter().copied()))
        .and_where(task_run::Column::State.ne(TaskState::Succeeded))
        .to_owned();
    let stmt = execution::Entity::find()
        .select_only()
        .column(C::Id)
        .filter(C::Id.is_in(ids.iter().copied()))
        .filter(C::Id.not_in_subquery(unfinished))
        .build(tx.get_database_backend());
    self::ids(tx, stmt).await
}

async fn finish_succeeded(
    tx: &DatabaseTransaction,
    ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<()> {
    end_executions(tx, ids, ExecutionState::Succeeded, None, now).await?;
    for id in ids {
        tracing::info!(execution = %id, "execution finished SUCCEEDED by recovery: every task had succeeded");
    }
    Ok(())
}

async fn fail_executions(
    tx: &DatabaseTransaction,
    ids: &[Uuid],
    message: &str,
    now: DateTime<Utc>,
    report: &mut RecoveryReport,
) -> Result<()> {
    end_executions(tx, ids, ExecutionState::Failed, Some(message), now).await?;
    report.attempts_failed += fail_attempts(tx, ids, message, now).await?;
    let running = [TaskState::Running];
    report.task_runs_failed += end_task_runs(tx, ids, &running, TaskState::Failed, now).await?;
    let queued = [TaskState::Pending, TaskState::Waiting];
    report.task_runs_skipped += end_task_runs(tx, ids, &queued, TaskState::Skipped, now).await?;
    Ok(())
}

/// Ends the RUNNING executions `ids` in `state`: FAILED with CRASH_RECOVERY
/// and `error`, or SUCCEEDED with neither.
async fn end_executions(
    tx: &DatabaseTransaction,
    ids: &[Uuid],
    state: ExecutionState,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    use execution::Column as C;
    from_running(ids, state, now)
        .col_expr(C::Reason, Expr::val(error.map(|_| CRASH_RECOVERY)))
        .col_expr(C::Error, Expr::val(error.map(str::to_owned)))
        .col_expr(C::FinishedAt, Expr::val(now))
        .exec(tx)
        .await?;
    Ok(())
}

/// The UPDATE that moves those of the executions `ids` still RUNNING to
/// `to` at `now`, lease cleared; callers add what else the move sets.
fn from_running(
    ids: &[Uuid],
    to: ExecutionState,
    now: DateTime<Utc>,
) -> sea_orm::UpdateMany<execution::Entity> {
    use execution::Column as C;
    execution::Entity::update_many()
        .col_expr(C::State, Expr::val(to))
        .col_expr(C::Version, Expr::col(C::Version).add(1))
        .col_expr(C::LeaseExpiresAt, Expr::val(None::<DateTime<Utc>>))
        .col_expr(C::UpdatedAt, Expr::val(now))
        .filter(C::Id.is_in(ids.iter().copied()))
        .filter(C::State.eq(ExecutionState::Running))
}

/// Moves the task runs of the executions `ids` that are in one of `from`
/// to the terminal `to`, with reason CRASH_RECOVERY; returns how many.
async fn end_task_runs(
    tx: &DatabaseTransaction,
    ids: &[Uuid],
    from: &[TaskState],
    to: TaskState,
    now: DateTime<Utc>,
) -> Result<u64> {
    use task_run::Column as C;
    Ok(task_run::Entity::update_many()
        .col_expr(C::State, Expr::val(to))
        .col_expr(C::Reason, Expr::val(Some(CRASH_RECOVERY)))
        .col_expr(C::Version, Expr::col(C::Version).add(1))
        .col_expr(C::NextAttemptAt, Expr::val(None::<DateTime<Utc>>))
        .col_expr(C::UpdatedAt, Expr::val(now))
        .col_expr(C::FinishedAt, Expr::val(now))
        .filter(C::ExecutionId.is_in(ids.iter().copied()))
        .filter(C::State.is_in(from.iter().copied()))
        .exec(tx)
        .await?
        .rows_affected)
}

async fn ids(tx: &DatabaseTransaction, stmt: sea_orm::Statement) -> Result<Vec<Uuid>> {
    let rows = tx.query_all_raw(stmt).await?;
    rows.iter()
        .map(|r| r.try_get_by_index::<Uuid>(0).map_err(Into::into))
        .collect()
}
