//! Executions: lookups, the detail view and pages, then creating one with its
//! task runs and moving it (alone, or together with task runs) through the
//! state machine.

use super::tasks::{self, check_task_keys, new_task_run};
use super::{not_found, page_and_count, refusal};
use crate::error::{Result, StoreError};
use crate::query::{self, ExecutionQuery, Page};
use crate::sea::db::Db;
use crate::state_machine::execution_sources;
use crate::types::*;
use crate::{now, truncate_micros};
use chrono::{DateTime, Utc};
use flowstate_entity::{execution, task_run, workflow};
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

// --- queries ---

pub(super) async fn get<D: Db>(db: &D, id: Uuid) -> Result<Execution> {
    execution::Entity::find_by_id(id)
        .one(&db.exec())
        .await?
        .map(Into::into)
        .ok_or_else(|| not_found("execution", id))
}

/// The ids starting with `prefix`: a range of the primary key, because
/// ids sort as their hex digits on every backend (PostgreSQL's `uuid`,
/// the 16 bytes on MySQL, the text on SQLite).
pub(super) async fn ids_with_prefix<D: Db>(db: &D, prefix: &str, limit: u64) -> Result<Vec<Uuid>> {
    let (low, high) = query::id_prefix_range(prefix)?;
    Ok(execution::Entity::find()
        .select_only()
        .column(execution::Column::Id)
        .filter(execution::Column::Id.between(low, high))
        .order_by_asc(execution::Column::Id)
        .limit(limit)
        .into_tuple::<Uuid>()
        .all(&db.exec())
        .await?)
}

/// The execution with its workflow name, task runs, attempts, outputs and
/// retries: five queries whatever the number of task runs.
pub(super) async fn detail<D: Db>(db: &D, id: Uuid) -> Result<ExecutionDetail> {
    let db = db.exec();
    let (execution, wf) = execution::Entity::find_by_id(id)
        .find_also_related(workflow::Entity)
        .one(&db)
        .await?
        .ok_or_else(|| not_found("execution", id))?;
    let task_runs = query::task_runs_of(id).all(&db).await?;
    let mut attempts: Vec<Attempt> = query::attempts_of_execution(id)
        .all(&db)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    attempts.sort_by_key(|a| a.number);
    let mut outputs: Vec<Output> = query::outputs_of(id)
        .all(&db)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    outputs.sort_by(|a, b| a.key.cmp(&b.key));
    let retries: Vec<Uuid> = execution::Entity::find()
        .select_only()
        .column(execution::Column::Id)
        .filter(execution::Column::RetryOf.eq(id))
        .order_by_asc(execution::Column::Id)
        .into_tuple()
        .all(&db)
        .await?;
    let task_runs = task_runs
        .into_iter()
        .map(|task_run| {
            let task_run = TaskRun::from(task_run);
            let (mine, rest): (Vec<_>, Vec<_>) = attempts
                .drain(..)
                .partition(|a| a.task_run_id == task_run.id);
            attempts = rest;
            TaskRunDetail {
                task_run,
                attempts: mine,
            }
        })
        .collect();
    Ok(ExecutionDetail {
        execution: execution.into(),
        workflow_name: wf.map(|w| w.name).unwrap_or_default(),
        task_runs,
        outputs,
        retries,
    })
}

pub(super) async fn list<D: Db>(db: &D, q: ExecutionQuery) -> Result<Page<Execution>> {
    let backend = db.exec().get_database_backend();
    let (page, limit) = query::execution_page_statement(backend, &q)?;
    let count = query::execution_count_statement(backend, &q);
    let (rows, counted) = page_and_count::<_, execution::Model>(db, page, count).await?;
    let mut items: Vec<Execution> = rows.into_iter().map(Into::into).collect();
    let (total, total_exact) = if q.exact_total || counted <= query::TOTAL_CAP {
        (counted, true)
    } else {
        (query::TOTAL_CAP, false)
    };
    let next_cursor = if items.len() as u64 > limit {
        items.truncate(limit as usize);
        items.last().map(|e| {
            query::Cursor {
                created_at: e.created_at,
                id: e.id,
            }
            .encode()
        })
    } else {
        None
    };
    Ok(Page {
        items,
        total,
        total_exact,
        limit,
        offset: if q.after.is_some() {
            0
        } else {
            q.offset.unwrap_or(0)
        },
        next_cursor,
    })
}

// --- mutations ---

pub(super) async fn create<D: Db>(db: &D, new: NewExecution) -> Result<(Execution, Vec<TaskRun>)> {
    check_task_keys(&new.task_keys)?;
    let chunk = db.backend().insert_chunk();
    db.write(move |tx| {
        let new = new.clone();
        Box::pin(async move { create_in(tx, new, chunk).await })
    })
    .await
}

pub(super) async fn transition<D: Db>(db: &D, id: Uuid, t: ExecutionTransition) -> Result<i64> {
    check_transition(&t)?;
    db.single(move |c| {
        let t = t.clone();
        Box::pin(async move { transition_in(&c, id, &t).await })
    })
    .await
}

/// Moves the execution and its task runs `tasks` in one transaction; a task
/// run of another execution is not found.
pub(super) async fn transition_with_tasks<D: Db>(
    db: &D,
    id: Uuid,
    e: ExecutionTransition,
    tasks: Vec<TaskTransition>,
) -> Result<()> {
    check_transition(&e)?;
    for t in &tasks {
        tasks::check_transition(t)?;
    }
    db.write(move |tx| {
        let (e, tasks) = (e.clone(), tasks.clone());
        Box::pin(async move {
            transition_in(tx, id, &e).await?;
            for t in &tasks {
                tasks::transition_in(tx, t, Some(id)).await?;
            }
            Ok(())
        })
    })
    .await
}

/// The work of [`create`] inside its transaction; task runs are inserted
/// `chunk` rows per statement.
async fn create_in(
    tx: &DatabaseTransaction,
    new: NewExecution,
    chunk: usize,
) -> Result<(Execution, Vec<TaskRun>)> {
    let wf = workflow::Entity::find_by_id(new.workflow_id)
        .one(tx)
        .await?
        .ok_or_else(|| not_found("workflow", new.workflow_id))?;
    if wf.deleted_at.is_some() {
        return Err(StoreError::InvalidInput(format!(
            "workflow '{}' is deleted; register it again before running it",
            wf.name
        )));
    }
    let ts = now();
    let exec = execution::Model {
        id: Uuid::now_v7(),
        workflow_id: wf.id,
        workflow_version: wf.version,
        state: ExecutionState::Pending,
        reason: None,
        error: None,
        input: new.input,
        version: 1,
        owner: None,
        lease_expires_at: None,
        wake_at: None,
        created_at: ts,
        updated_at: ts,
        started_at: None,
        finished_at: None,
        retry_of: None,
    };
    execution::Entity::insert(execution::ActiveModel::from(exec.clone()))
        .exec_without_returning(tx)
        .await?;
    let runs: Vec<task_run::Model> = new
        .task_keys
        .into_iter()
        .enumerate()
        .map(|(i, key)| new_task_run(exec.id, key, i as i32, ts))
        .collect();
    insert_task_runs(tx, &runs, chunk).await?;
    Ok((exec.into(), runs.into_iter().map(Into::into).collect()))
}

/// Inserts new task runs, `chunk` rows per statement.
pub(super) async fn insert_task_runs(
    tx: &DatabaseTransaction,
    runs: &[task_run::Model],
    chunk: usize,
) -> Result<()> {
    for rows in runs.chunks(chunk) {
        task_run::Entity::insert_many(rows.iter().cloned().map(task_run::ActiveModel::from))
            .exec_without_returning(tx)
            .await?;
    }
    Ok(())
}

pub(super) fn check_transition(t: &ExecutionTransition) -> Result<()> {
    if t.to == ExecutionState::Waiting && t.wake_at.is_none() {
        return Err(StoreError::InvalidInput(
            "a move to WAITING needs wake_at: when the execution is due again".into(),
        ));
    }
    Ok(())
}

/// One UPDATE guarded by id, version and the allowed source states; only when
/// it matches nothing is the row read, to say why.
pub(super) async fn transition_in<C: ConnectionTrait>(
    tx: &C,
    id: Uuid,
    t: &ExecutionTransition,
) -> Result<i64> {
    use execution::Column as C;
    let changed = moved(t, now())
        .filter(C::Id.eq(id))
        .filter(C::Version.eq(t.expected_version))
        .filter(C::State.is_in(execution_sources(t.to).iter().copied()))
        .exec(tx)
        .await?
        .rows_affected;
    if changed == 1 {
        return Ok(t.expected_version + 1);
    }
    Err(refused(tx, id, t).await)
}

/// The UPDATE of executions that makes the move `t` at `ts` (the version
/// counted up, start, end and lease set as the target state needs), without
/// its filter.
pub(super) fn moved(
    t: &ExecutionTransition,
    ts: DateTime<Utc>,
) -> sea_orm::UpdateMany<execution::Entity> {
    use execution::Column as C;
    let update = execution::Entity::update_many()
        .col_expr(C::State, Expr::val(t.to))
        .col_expr(C::Version, Expr::col(C::Version).add(1))
        .col_expr(C::Reason, Expr::val(t.reason))
        .col_expr(C::Error, Expr::val(t.error.clone()))
        .col_expr(C::UpdatedAt, Expr::val(ts))
        .col_expr(C::WakeAt, Expr::val(t.wake_at.map(truncate_micros)));
    match t.to {
        ExecutionState::Running => update.col_expr(
            C::StartedAt,
            Func::coalesce([Expr::col(C::StartedAt), Expr::val(ts)]).into(),
        ),
        // Release the slot: whoever is free when it is due may claim it.
        ExecutionState::Waiting => update
            .col_expr(C::Owner, Expr::val(None::<String>))
            .col_expr(C::LeaseExpiresAt, Expr::val(None::<DateTime<Utc>>)),
        s if s.is_terminal() => update
            .col_expr(C::FinishedAt, Expr::val(ts))
            .col_expr(C::LeaseExpiresAt, Expr::val(None::<DateTime<Utc>>)),
        _ => update,
    }
}

/// Why the guarded move `t` of execution `id` matched no row: not found, a
/// conflict or a move the state machine forbids.
pub(super) async fn refused<C: ConnectionTrait>(
    tx: &C,
    id: Uuid,
    t: &ExecutionTransition,
) -> StoreError {
    let current = match execution::Entity::find_by_id(id).one(tx).await {
        Ok(Some(current)) => current,
        Ok(None) => return not_found("execution", id),
        Err(e) => return e.into(),
    };
    refusal(
        "execution",
        id,
        t.expected_version,
        current.version,
        current.state.to_string(),
        t.to.to_string(),
    )
}
