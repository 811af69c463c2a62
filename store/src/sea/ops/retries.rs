//! Retries: a new execution that re-runs an ended one, reusing the tasks
//! that succeeded there (which tasks is the engine's decision).

use super::not_found;
use super::tasks::new_task_run;
use crate::error::{Result, StoreError};
use crate::now;
use crate::sea::db::Db;
use crate::types::*;
use flowstate_entity::{execution, output, task_run};
use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter};
use std::collections::HashMap;
use uuid::Uuid;

pub(super) async fn create<D: Db>(db: &D, retry: NewRetry) -> Result<(Execution, Vec<TaskRun>)> {
    let chunk = db.backend().insert_chunk();
    db.write(move |tx| {
        let retry = retry.clone();
        Box::pin(async move { create_in(tx, retry, chunk).await })
    })
    .await
}

/// The work of [`create`] inside its transaction: five statements (read
/// the original, its task runs and the outputs to carry, insert the
/// execution, the task runs and the outputs) whatever the task count.
async fn create_in(
    tx: &DatabaseTransaction,
    retry: NewRetry,
    chunk: usize,
) -> Result<(Execution, Vec<TaskRun>)> {
    let original = execution::Entity::find_by_id(retry.original)
        .one(tx)
        .await?
        .ok_or_else(|| not_found("execution", retry.original))?;
    if !original.state.is_terminal() {
        return Err(StoreError::InvalidTransition {
            entity: "execution",
            id: original.id.to_string(),
            from: original.state.to_string(),
            to: "a retry".into(),
        });
    }
    let ts = now();
    let exec = execution::Model {
        id: Uuid::now_v7(),
        state: ExecutionState::Pending,
        reason: None,
        error: None,
        version: 1,
        owner: None,
        lease_expires_at: None,
        wake_at: None,
        created_at: ts,
        updated_at: ts,
        started_at: None,
        finished_at: None,
        retry_of: Some(original.id),
        ..original
    };
    execution::Entity::insert(execution::ActiveModel::from(exec.clone()))
        .exec_without_returning(tx)
        .await?;
    let (runs, carried) = task_runs(tx, &retry, exec.id, ts).await?;
    super::executions::insert_task_runs(tx, &runs, chunk).await?;
    copy_outputs(tx, retry.original, exec.id, &carried, chunk).await?;
    Ok((exec.into(), runs.into_iter().map(Into::into).collect()))
}

/// The retry's task runs in the original's order, and for each reused one
/// the original task run it stands for (`old id -> new id`).
async fn task_runs(
    tx: &DatabaseTransaction,
    retry: &NewRetry,
    id: Uuid,
    ts: chrono::DateTime<chrono::Utc>,
) -> Result<(Vec<task_run::Model>, HashMap<Uuid, Uuid>)> {
    let old = crate::query::task_runs_of(retry.original).all(tx).await?;
    let mut carried = HashMap::new();
    let runs = old
        .into_iter()
        .map(|o| {
            let mut run = new_task_run(id, o.task_key.clone(), o.position, ts);
            let reused = o.state == TaskState::Succeeded && retry.reuse.contains(&o.task_key);
            if reused {
                run.state = TaskState::Succeeded;
                run.reason = Some(Reason::Reused);
                run.started_at = o.started_at;
                run.finished_at = o.finished_at;
                carried.insert(o.id, run.id);
            }
            run
        })
        .collect();
    Ok((runs, carried))
}

/// Copies the outputs of the carried task runs to their stand-ins.
async fn copy_outputs(
    tx: &DatabaseTransaction,
    from: Uuid,
    to: Uuid,
    carried: &HashMap<Uuid, Uuid>,
    chunk: usize,
) -> Result<()> {
    if carried.is_empty() {
        return Ok(());
    }
    let rows: Vec<output::Model> = output::Entity::find()
        .filter(output::Column::ExecutionId.eq(from))
        .filter(output::Column::TaskRunId.is_in(carried.keys().copied()))
        .all(tx)
        .await?
        .into_iter()
        .map(|o| output::Model {
            id: Uuid::now_v7(),
            execution_id: to,
            task_run_id: carried[&o.task_run_id],
            ..o
        })
        .collect();
    for rows in rows.chunks(chunk.max(1)) {
        output::Entity::insert_many(rows.iter().cloned().map(output::ActiveModel::from))
            .exec_without_returning(tx)
            .await?;
    }
    Ok(())
}
