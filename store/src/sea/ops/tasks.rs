//! Task runs and their attempts: lookups and lists, then adding a task run,
//! moving one through the state machine, and starting and finishing attempts.

use super::{check_name, not_found, refusal};
use crate::error::{Result, StoreError};
use crate::sea::db::Db;
use crate::state_machine::task_sources;
use crate::text::shown;
use crate::types::*;
use crate::{now, truncate_micros};
use chrono::{DateTime, Utc};
use flowstate_entity::{attempt, execution, task_run};
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

// --- queries ---

pub(super) async fn get_run<D: Db>(db: &D, id: Uuid) -> Result<TaskRun> {
    task_run::Entity::find_by_id(id)
        .one(&db.exec())
        .await?
        .map(Into::into)
        .ok_or_else(|| not_found("task run", id))
}

pub(super) async fn list_runs<D: Db>(db: &D, execution_id: Uuid) -> Result<Vec<TaskRun>> {
    Ok(crate::query::task_runs_of(execution_id)
        .all(&db.exec())
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
}

pub(super) async fn list_attempts<D: Db>(db: &D, task_run_id: Uuid) -> Result<Vec<Attempt>> {
    Ok(attempt::Entity::find()
        .filter(attempt::Column::TaskRunId.eq(task_run_id))
        .order_by_asc(attempt::Column::Number)
        .all(&db.exec())
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
}

// --- mutations ---

pub(super) async fn create_run<D: Db>(
    db: &D,
    execution_id: Uuid,
    task_key: &str,
) -> Result<TaskRun> {
    check_task_keys(&[task_key.to_owned()])?;
    let key = task_key.to_owned();
    db.write(move |tx| {
        let key = key.clone();
        Box::pin(async move { create_run_in(tx, execution_id, key).await })
    })
    .await
}

pub(super) async fn transition<D: Db>(db: &D, t: TaskTransition) -> Result<i64> {
    check_transition(&t)?;
    db.single(move |c| {
        let t = t.clone();
        Box::pin(async move { transition_in(&c, &t, None).await })
    })
    .await
}

pub(super) async fn start_attempt<D: Db>(db: &D, task_run_id: Uuid) -> Result<Attempt> {
    db.write(move |tx| Box::pin(async move { start_attempt_in(tx, task_run_id).await }))
        .await
}

/// Moves a task run to RUNNING and starts its next attempt, in one
/// transaction; returns the attempt and the task run's new version.
pub(super) async fn start_run_attempt<D: Db>(db: &D, t: TaskTransition) -> Result<(Attempt, i64)> {
    if t.to != TaskState::Running {
        return Err(StoreError::InvalidInput(format!(
            "an attempt starts with a move to RUNNING, not to {}",
            t.to
        )));
    }
    db.write(move |tx| {
        let t = t.clone();
        Box::pin(async move { start_run_attempt_in(tx, &t).await })
    })
    .await
}

pub(super) async fn finish_attempt<D: Db>(
    db: &D,
    attempt_id: Uuid,
    r: AttemptResult,
) -> Result<()> {
    check_result(&r)?;
    db.single(move |c| {
        let r = r.clone();
        Box::pin(async move { finish_attempt_in(&c, attempt_id, &r).await })
    })
    .await
}

/// The work of [`create_run`] inside its transaction: the new task run goes
/// after the execution's last one.
async fn create_run_in(
    tx: &DatabaseTransaction,
    execution_id: Uuid,
    key: String,
) -> Result<TaskRun> {
    let exec = execution::Entity::find_by_id(execution_id)
        .one(tx)
        .await?
        .ok_or_else(|| not_found("execution", execution_id))?;
    if exec.state.is_terminal() {
        return Err(StoreError::InvalidInput(format!(
            "execution '{execution_id}' is {}; a finished execution takes no new task runs",
            exec.state
        )));
    }
    let last: Option<Option<i32>> = task_run::Entity::find()
        .select_only()
        .column_as(task_run::Column::Position.max(), "p")
        .filter(task_run::Column::ExecutionId.eq(execution_id))
        .into_tuple()
        .one(tx)
        .await?;
    let position = last.flatten().map_or(0, |p| p + 1);
    let run = new_task_run(execution_id, key, position, now());
    task_run::Entity::insert(task_run::ActiveModel::from(run.clone()))
        .exec_without_returning(tx)
        .await?;
    Ok(run.into())
}

/// Task keys must be valid names and unique within an execution.
pub(super) fn check_task_keys(keys: &[String]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for key in keys {
        check_name("task key", key)?;
        if !seen.insert(key) {
            return Err(StoreError::InvalidInput(format!(
                "task key '{}' appears twice; task keys are unique within an execution",
                shown(key)
            )));
        }
    }
    Ok(())
}

/// A PENDING task run of `execution_id` at `position`, not yet written: the
/// row to insert, which the caller converts to a [`TaskRun`] to hand out.
pub(super) fn new_task_run(
    execution_id: Uuid,
    key: String,
    position: i32,
    ts: DateTime<Utc>,
) -> task_run::Model {
    task_run::Model {
        id: Uuid::now_v7(),
        execution_id,
        task_key: key,
        position,
        state: TaskState::Pending,
        reason: None,
        version: 1,
        attempt_count: 0,
        next_attempt_at: None,
        created_at: ts,
        updated_at: ts,
        started_at: None,
        finished_at: None,
    }
}

pub(super) fn check_result(r: &AttemptResult) -> Result<()> {
    if r.state == AttemptState::Running {
        return Err(StoreError::InvalidInput(
            "an attempt cannot finish as RUNNING; use SUCCEEDED, FAILED or CANCELLED".into(),
        ));
    }
    Ok(())
}

pub(super) fn check_transition(t: &TaskTransition) -> Result<()> {
    if t.to == TaskState::Waiting && t.next_attempt_at.is_none() {
        return Err(StoreError::InvalidInput(
            "a move to WAITING needs next_attempt_at: when the task may retry".into(),
        ));
    }
    Ok(())
}

/// One UPDATE guarded by id, version and the allowed source states (and, when
/// given, the execution the task run must belong to); only when it matches
/// nothing is the row read, to say why.
pub(super) async fn transition_in<C: ConnectionTrait>(
    tx: &C,
    t: &TaskTransition,
    execution_id: Option<Uuid>,
) -> Result<i64> {
    let changed = guarded_move(t, execution_id, now())
        .exec(tx)
        .await?
        .rows_affected;
    if changed == 1 {
        return Ok(t.expected_version + 1);
    }
    Err(refused(tx, t, execution_id).await)
}

/// The UPDATE that makes the move `t` at `ts`, guarded by id, version and
/// the state machine's sources for `t.to` (and the execution, when given).
fn guarded_move(
    t: &TaskTransition,
    execution_id: Option<Uuid>,
    ts: DateTime<Utc>,
) -> sea_orm::UpdateMany<task_run::Entity> {
    use task_run::Column as C;
    let mut update = moved_to(t.to, t.reason, t.next_attempt_at, ts)
        .filter(C::Id.eq(t.task_run_id))
        .filter(C::Version.eq(t.expected_version))
        .filter(C::State.is_in(task_sources(t.to).iter().copied()));
    if let Some(e) = execution_id {
        update = update.filter(C::ExecutionId.eq(e));
    }
    update
}

/// The UPDATE of task runs to `to` at `ts` (the version counted up, the
/// start or end time set), without its filter.
pub(super) fn moved_to(
    to: TaskState,
    reason: Option<Reason>,
    next_attempt_at: Option<DateTime<Utc>>,
    ts: DateTime<Utc>,
) -> sea_orm::UpdateMany<task_run::Entity> {
    use task_run::Column as C;
    let update = task_run::Entity::update_many()
        .col_expr(C::State, Expr::val(to))
        .col_expr(C::Version, Expr::col(C::Version).add(1))
        .col_expr(C::Reason, Expr::val(reason))
        .col_expr(C::UpdatedAt, Expr::val(ts))
        .col_expr(
            C::NextAttemptAt,
            Expr::val(next_attempt_at.map(truncate_micros)),
        );
    if to == TaskState::Running {
        update.col_expr(
            C::StartedAt,
            Func::coalesce([Expr::col(C::StartedAt), Expr::val(ts)]).into(),
        )
    } else if to.is_terminal() {
        update.col_expr(C::FinishedAt, Expr::val(ts))
    } else {
        update
    }
}

/// Starts the next attempt of each task run in `runs` (id and the version
/// the caller read in this transaction), set-based: one UPDATE, guarded by id, version and the
/// state machine's sources, moves them to RUNNING and counts their attempts
/// up; one INSERT adds the attempt rows. A run the guard does not match is
/// left as it is. Returns the runs started, as they are now, with their
/// attempts.
pub(crate) async fn start_runs_in(
    tx: &DatabaseTransaction,
    runs: &[(Uuid, i64)],
) -> Result<Vec<(TaskRun, Attempt)>> {
    use task_run::Column as C;
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    let ts = now();
    let held = super::held(C::Id, C::Version, runs.iter().copied());
    let update = moved_to(TaskState::Running, None, None, ts)
        .col_expr(C::AttemptCount, Expr::col(C::AttemptCount).add(1))
        .filter(held)
        .filter(C::State.is_in(task_sources(TaskState::Running).iter().copied()));
    let started: Vec<TaskRun> = if tx.support_returning() {
        let rows = update.exec_with_returning(tx).await?;
        rows.into_iter().map(TaskRun::from).collect()
    } else {
        update.exec(tx).await?;
        // Read back: the moved ones are RUNNING, one version up. Only a
        // caller that read the versions in this transaction may rely on
        // this (a run already RUNNING one version up cannot be told apart);
        // `start_run_attempt_in` counts the rows its one UPDATE changed.
        let ids = runs.iter().map(|(id, _)| *id);
        let rows = task_run::Entity::find()
            .filter(C::Id.is_in(ids))
            .all(tx)
            .await?;
        rows.into_iter()
            .map(TaskRun::from)
            .filter(|r| r.state == TaskState::Running && runs.contains(&(r.id, r.version - 1)))
            .collect()
    };
    let attempts: Vec<attempt::Model> = started
        .iter()
        .map(|r| attempt_row(r.id, r.attempt_count, ts))
        .collect();
    if !attempts.is_empty() {
        attempt::Entity::insert_many(attempts.iter().cloned().map(attempt::ActiveModel::from))
            .exec_without_returning(tx)
            .await?;
    }
    Ok(started
        .into_iter()
        .zip(attempts.into_iter().map(Attempt::from))
        .collect())
}

/// Why the guarded move `t` matched no row: not found, a conflict or a
/// move the state machine forbids.
pub(super) async fn refused<C: ConnectionTrait>(
    tx: &C,
    t: &TaskTransition,
    execution_id: Option<Uuid>,
) -> StoreError {
    let current = match task_run::Entity::find_by_id(t.task_run_id).one(tx).await {
        Ok(row) => row.filter(|r| execution_id.is_none_or(|e| r.execution_id == e)),
        Err(e) => return e.into(),
    };
    let Some(current) = current else {
        return not_found("task run", t.task_run_id);
    };
    refusal(
        "task run",
        t.task_run_id,
        t.expected_version,
        current.version,
        current.state.to_string(),
        t.to.to_string(),
    )
}

/// The work of [`start_run_attempt`] inside its transaction. The guarded
/// move counts the attempt up, so concurrent starters serialise on the task
/// run's row and numbers stay dense and unique; where the backend has
/// `UPDATE ... RETURNING` the number comes back with the move (two
/// statements in all), else it is read back.
async fn start_run_attempt_in(
    tx: &DatabaseTransaction,
    t: &TaskTransition,
) -> Result<(Attempt, i64)> {
    use task_run::Column as C;
    let ts = now();
    let update =
        guarded_move(t, None, ts).col_expr(C::AttemptCount, Expr::col(C::AttemptCount).add(1));
    let number = if tx.support_returning() {
        update
            .exec_with_returning(tx)
            .await?
            .first()
            .map(|r| r.attempt_count)
    } else if update.exec(tx).await?.rows_affected == 1 {
        task_run::Entity::find_by_id(t.task_run_id)
            .select_only()
            .column(C::AttemptCount)
            .into_tuple::<i32>()
            .one(tx)
            .await?
    } else {
        None
    };
    let Some(number) = number else {
        return Err(refused(tx, t, None).await);
    };
    let attempt = insert_attempt(tx, t.task_run_id, number, ts).await?;
    Ok((attempt, t.expected_version + 1))
}

/// Inserts attempt `number` of a task run, RUNNING since `ts`.
async fn insert_attempt(
    tx: &DatabaseTransaction,
    task_run_id: Uuid,
    number: i32,
    ts: DateTime<Utc>,
) -> Result<Attempt> {
    let row = attempt_row(task_run_id, number, ts);
    attempt::Entity::insert(attempt::ActiveModel::from(row.clone()))
        .exec_without_returning(tx)
        .await?;
    Ok(row.into())
}

/// Attempt `number` of a task run, RUNNING since `ts`: the row to insert.
fn attempt_row(task_run_id: Uuid, number: i32, ts: DateTime<Utc>) -> attempt::Model {
    attempt::Model {
        id: Uuid::now_v7(),
        task_run_id,
        number,
        state: AttemptState::Running,
        reason: None,
        exit_code: None,
        error: None,
        started_at: ts,
        finished_at: None,
    }
}

/// Counting up on the task run row first serialises concurrent starters on
/// that row's lock, so numbers are dense and unique.
async fn start_attempt_in(tx: &DatabaseTransaction, task_run_id: Uuid) -> Result<Attempt> {
    use task_run::Column as C;
    let ts = now();
    let changed = task_run::Entity::update_many()
        .col_expr(C::AttemptCount, Expr::col(C::AttemptCount).add(1))
        .col_expr(C::UpdatedAt, Expr::val(ts))
        .filter(C::Id.eq(task_run_id))
        .exec(tx)
        .await?
        .rows_affected;
    if changed == 0 {
        return Err(not_found("task run", task_run_id));
    }
    let number: Option<i32> = task_run::Entity::find_by_id(task_run_id)
        .select_only()
        .column(C::AttemptCount)
        .into_tuple()
        .one(tx)
        .await?;
    let number = number.ok_or_else(|| not_found("task run", task_run_id))?;
    insert_attempt(tx, task_run_id, number, ts).await
}

/// One UPDATE guarded by the RUNNING state; only when it matches nothing is
/// the row read, to say why.
pub(super) async fn finish_attempt_in<C: ConnectionTrait>(
    c: &C,
    attempt_id: Uuid,
    r: &AttemptResult,
) -> Result<()> {
    let changed = finished(r, now())
        .filter(attempt::Column::Id.eq(attempt_id))
        .filter(attempt::Column::State.eq(AttemptState::Running))
        .exec(c)
        .await?
        .rows_affected;
    if changed == 1 {
        return Ok(());
    }
    Err(unfinished(c, attempt_id, r).await)
}

/// The UPDATE of attempts that records the end `r` at `ts`, without its filter.
pub(super) fn finished(
    r: &AttemptResult,
    ts: DateTime<Utc>,
) -> sea_orm::UpdateMany<attempt::Entity> {
    attempt::Entity::update_many()
        .col_expr(attempt::Column::State, Expr::val(r.state))
        .col_expr(attempt::Column::Reason, Expr::val(r.reason))
        .col_expr(attempt::Column::ExitCode, Expr::val(r.exit_code))
        .col_expr(attempt::Column::Error, Expr::val(r.error.clone()))
        .col_expr(attempt::Column::FinishedAt, Expr::val(ts))
}

/// Why the end `r` of attempt `attempt_id` matched no RUNNING attempt.
pub(super) async fn unfinished<C: ConnectionTrait>(
    c: &C,
    attempt_id: Uuid,
    r: &AttemptResult,
) -> StoreError {
    let current = match attempt::Entity::find_by_id(attempt_id).one(c).await {
        Ok(Some(current)) => current,
        Ok(None) => return not_found("attempt", attempt_id),
        Err(e) => return e.into(),
    };
    StoreError::InvalidTransition {
        entity: "attempt",
        id: attempt_id.to_string(),
        from: current.state.to_string(),
        to: r.state.to_string(),
    }
}
