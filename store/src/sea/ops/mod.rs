//! [`StateOps`](crate::StateOps) implemented once with SeaORM, for the pool
//! and for an open transaction alike (anything that [`HasDb`]), delegating
//! to one module per aggregate, each with its queries (reads) first and its
//! mutations (writes) after, the way SeaORM's example service crates split
//! them: [`workflows`], [`executions`], [`tasks`] (task runs and attempts)
//! and [`logs`] (log lines and outputs), [`retries`] (an execution re-run
//! from another); [`batch`] lands several of their writes in one
//! transaction, and [`merged`] several callers' ends set-based.

mod batch;
mod executions;
mod logs;
mod merged;
mod retries;
mod tasks;
mod workflows;

pub(crate) use batch::{apply_many_in, check_all};
pub(crate) use tasks::start_runs_in;

use super::db::HasDb;
use crate::error::{Result, StoreError};
use crate::query::{ExecutionQuery, LogQuery, Page, WorkflowQuery};
use crate::text::shown;
use crate::types::*;
use async_trait::async_trait;
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

#[async_trait]
impl<T: HasDb> crate::StateOps for T {
    async fn save_workflow(&self, w: NewWorkflow) -> Result<SavedWorkflow> {
        workflows::save(self.db(), w).await
    }

    async fn get_workflow(&self, id: Uuid) -> Result<Workflow> {
        workflows::get(self.db(), id).await
    }

    async fn get_workflow_by_name(&self, name: &str) -> Result<Workflow> {
        workflows::get_by_name(self.db(), name).await
    }

    async fn workflows_matching(&self, pattern: &str, limit: u64) -> Result<Vec<Workflow>> {
        workflows::matching(self.db(), pattern, limit).await
    }

    async fn list_workflows(&self, q: WorkflowQuery) -> Result<Page<Workflow>> {
        workflows::list(self.db(), q).await
    }

    async fn workflow_names(&self, ids: Vec<Uuid>) -> Result<HashMap<Uuid, String>> {
        workflows::names(self.db(), ids).await
    }

    async fn delete_workflow(&self, id: Uuid, hard: bool) -> Result<()> {
        workflows::delete(self.db(), id, hard).await
    }

    async fn get_workflow_version(
        &self,
        workflow_id: Uuid,
        version: i32,
    ) -> Result<WorkflowVersion> {
        workflows::get_version(self.db(), workflow_id, version).await
    }

    async fn list_workflow_versions(&self, workflow_id: Uuid) -> Result<Vec<VersionSummary>> {
        workflows::list_versions(self.db(), workflow_id).await
    }

    async fn create_execution(&self, new: NewExecution) -> Result<(Execution, Vec<TaskRun>)> {
        executions::create(self.db(), new).await
    }

    async fn get_execution(&self, id: Uuid) -> Result<Execution> {
        executions::get(self.db(), id).await
    }

    async fn get_execution_detail(&self, id: Uuid) -> Result<ExecutionDetail> {
        executions::detail(self.db(), id).await
    }

    async fn execution_ids_with_prefix(&self, prefix: &str, limit: u64) -> Result<Vec<Uuid>> {
        executions::ids_with_prefix(self.db(), prefix, limit).await
    }

    async fn create_retry(&self, retry: NewRetry) -> Result<(Execution, Vec<TaskRun>)> {
        retries::create(self.db(), retry).await
    }

    async fn transition_execution(&self, id: Uuid, t: ExecutionTransition) -> Result<i64> {
        executions::transition(self.db(), id, t).await
    }

    async fn transition_execution_and_tasks(
        &self,
        id: Uuid,
        e: ExecutionTransition,
        tasks: Vec<TaskTransition>,
    ) -> Result<()> {
        executions::transition_with_tasks(self.db(), id, e, tasks).await
    }

    async fn list_executions(&self, q: ExecutionQuery) -> Result<Page<Execution>> {
        executions::list(self.db(), q).await
    }

    async fn create_task_run(&self, execution_id: Uuid, task_key: &str) -> Result<TaskRun> {
        tasks::create_run(self.db(), execution_id, task_key).await
    }

    async fn get_task_run(&self, id: Uuid) -> Result<TaskRun> {
        tasks::get_run(self.db(), id).await
    }

    async fn list_task_runs(&self, execution_id: Uuid) -> Result<Vec<TaskRun>> {
        tasks::list_runs(self.db(), execution_id).await
    }

    async fn transition_task(&self, t: TaskTransition) -> Result<i64> {
        tasks::transition(self.db(), t).await
    }

    async fn start_attempt(&self, task_run_id: Uuid) -> Result<Attempt> {
        tasks::start_attempt(self.db(), task_run_id).await
    }

    async fn start_run_attempt(&self, t: TaskTransition) -> Result<(Attempt, i64)> {
        tasks::start_run_attempt(self.db(), t).await
    }

    async fn finish_attempt(&self, attempt_id: Uuid, r: AttemptResult) -> Result<()> {
        tasks::finish_attempt(self.db(), attempt_id, r).await
    }

    async fn list_attempts(&self, task_run_id: Uuid) -> Result<Vec<Attempt>> {
        tasks::list_attempts(self.db(), task_run_id).await
    }

    async fn put_outputs(
        &self,
        execution_id: Uuid,
        task_run_id: Uuid,
        values: Vec<(String, Value)>,
    ) -> Result<()> {
        logs::put_outputs(self.db(), execution_id, task_run_id, values).await
    }

    async fn list_outputs(&self, execution_id: Uuid) -> Result<Vec<Output>> {
        logs::list_outputs(self.db(), execution_id).await
    }

    async fn append_logs(&self, lines: Vec<NewLogLine>) -> Result<u64> {
        logs::append(self.db(), lines).await
    }

    async fn read_logs(&self, q: LogQuery) -> Result<Vec<LogLine>> {
        logs::read(self.db(), q).await
    }

    async fn apply_writes(&self, writes: Vec<Write>) -> Result<Vec<Option<i64>>> {
        batch::apply(self.db(), writes).await
    }
}

/// Rows held by their id and version: the guard of a set-based move, each
/// row matched only at the version its caller read.
fn held<C: sea_orm::ColumnTrait>(
    id: C,
    version: C,
    rows: impl IntoIterator<Item = (Uuid, i64)>,
) -> sea_orm::sea_query::Condition {
    use sea_orm::sea_query::ExprTrait;
    rows.into_iter()
        .fold(sea_orm::sea_query::Condition::any(), |any, (i, v)| {
            any.add(id.eq(i).and(version.eq(v)))
        })
}

/// The models a list's statement reads, planned for its own values
/// ([`Db::lists`](super::db::Db::lists)).
async fn list_of<D: super::db::Db, M: sea_orm::FromQueryResult>(
    db: &D,
    stmt: sea_orm::Statement,
) -> Result<Vec<M>> {
    let rows = db.lists(vec![stmt]).await?.into_iter().flatten();
    rows.map(|row| Ok(M::from_query_result(&row, "")?))
        .collect()
}

/// A page's models and its count (the first column of the count
/// statement's one row), both planned for their own values, together.
async fn page_and_count<D: super::db::Db, M: sea_orm::FromQueryResult>(
    db: &D,
    page: sea_orm::Statement,
    count: sea_orm::Statement,
) -> Result<(Vec<M>, u64)> {
    let mut lists = db.lists(vec![page, count]).await?.into_iter();
    let (rows, counted) = (lists.next().unwrap_or_default(), lists.next());
    let models = rows
        .iter()
        .map(|row| Ok(M::from_query_result(row, "")?))
        .collect::<Result<Vec<M>>>()?;
    let n = match counted.as_ref().and_then(|rows| rows.first()) {
        Some(row) => row.try_get_by_index::<i64>(0)?,
        None => 0,
    };
    Ok((models, n as u64))
}

/// The SQL dialect of a database.
fn backend_of<D: super::db::Db>(db: &D) -> sea_orm::DbBackend {
    use sea_orm::ConnectionTrait;
    db.exec().get_database_backend()
}

fn not_found(entity: &'static str, id: impl ToString) -> StoreError {
    StoreError::NotFound {
        entity,
        id: shown(&id.to_string()),
    }
}

/// Names (workflow names, task keys) are compared byte for byte on every
/// backend, so a name that differs from another only by surrounding white
/// space or invisible characters would look like a duplicate to people: such
/// names are refused instead.
fn check_name(what: &str, name: &str) -> Result<()> {
    let problem = if name.is_empty() || name.len() > 255 {
        Some("must be 1 to 255 bytes")
    } else if name.trim() != name {
        Some("must not start or end with white space")
    } else if name.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
    };
    match problem {
        Some(p) => Err(StoreError::InvalidInput(format!(
            "{what} '{}' {p}",
            shown(name)
        ))),
        None => Ok(()),
    }
}

/// Why a guarded transition matched no row: someone else moved the row
/// first (its version differs), or the state machine forbids the move.
fn refusal(
    entity: &'static str,
    id: Uuid,
    expected: i64,
    actual: i64,
    from: String,
    to: String,
) -> StoreError {
    if expected != actual {
        StoreError::Conflict {
            entity,
            id: id.to_string(),
            expected,
            actual,
        }
    } else {
        StoreError::InvalidTransition {
            entity,
            id: id.to_string(),
            from,
            to,
        }
    }
}
