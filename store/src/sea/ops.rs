//! [`StateOps`] implemented once with SeaORM, for the pool and for an open
//! transaction alike.

use super::conn::Conn;
use crate::error::{Result, StoreError};
use crate::query::{self, ExecutionQuery, LogQuery, Page, WorkflowQuery};
use crate::state_machine::{execution_sources, task_sources};
use crate::text::shown;
use crate::types::*;
use crate::{now, truncate_micros};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use flowstate_entity::{attempt, execution, log, output, task_run, workflow, workflow_version};
use sea_orm::sea_query::{Expr, ExprTrait, Func, OnConflict};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde_json::Value;
use uuid::Uuid;

/// Rows per multi-row INSERT on `c`'s backend.
fn insert_chunk<C: ConnectionTrait>(c: &C) -> usize {
    crate::backend::for_backend(c.get_database_backend()).insert_chunk()
}

/// Anything that runs operations on a [`Conn`].
pub(crate) trait HasConn: Send + Sync {
    fn conn(&self) -> &Conn;
}

fn not_found(entity: &'static str, id: impl ToString) -> StoreError {
    StoreError::NotFound {
        entity,
        id: shown(&id.to_string()),
    }
}

#[async_trait]
impl<T: HasConn> crate::StateOps for T {
    async fn save_workflow(&self, w: NewWorkflow) -> Result<SavedWorkflow> {
        check_name("workflow name", &w.name)?;
        self.conn()
            .write(move |tx| {
                let w = w.clone();
                Box::pin(async move { save_workflow(tx, w).await })
            })
            .await
    }

    async fn get_workflow(&self, id: Uuid) -> Result<Workflow> {
        workflow::Entity::find_by_id(id)
            .one(&self.conn().exec())
            .await?
            .ok_or_else(|| not_found("workflow", id))
    }

    async fn get_workflow_by_name(&self, name: &str) -> Result<Workflow> {
        workflow::Entity::find()
            .filter(workflow::Column::Name.eq(name))
            .one(&self.conn().exec())
            .await?
            .ok_or_else(|| not_found("workflow", name))
    }

    async fn list_workflows(&self, q: WorkflowQuery) -> Result<Page<Workflow>> {
        let limit = query::limit_of(q.limit, query::DEFAULT_LIMIT, query::MAX_LIMIT)?;
        let offset = query::offset_of(q.offset)?;
        let db = self.conn().exec();
        let filtered = query::workflow_filters(&q);
        let total = filtered.clone().count(&db).await?;
        let items = query::workflow_order(filtered, q.sort)
            .offset(offset)
            .limit(limit)
            .all(&db)
            .await?;
        Ok(Page {
            items,
            total,
            total_exact: true,
            limit,
            offset,
            next_cursor: None,
        })
    }

    async fn delete_workflow(&self, id: Uuid, hard: bool) -> Result<()> {
        self.conn()
            .write(move |tx| {
                Box::pin(async move {
                    // Read first: MySQL reports rows *changed*, not matched.
                    workflow::Entity::find_by_id(id)
                        .one(tx)
                        .await?
                        .ok_or_else(|| not_found("workflow", id))?;
                    if hard {
                        // Executions and everything under them go by cascade.
                        workflow::Entity::delete_by_id(id).exec(tx).await?;
                    } else {
                        workflow::Entity::update_many()
                            .col_expr(workflow::Column::DeletedAt, Expr::val(now()))
                            .col_expr(workflow::Column::UpdatedAt, Expr::val(now()))
                            .filter(workflow::Column::Id.eq(id))
                            .exec(tx)
                            .await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn get_workflow_version(
        &self,
        workflow_id: Uuid,
        version: i32,
    ) -> Result<WorkflowVersion> {
        workflow_version::Entity::find_by_id((workflow_id, version))
            .one(&self.conn().exec())
            .await?
            .ok_or_else(|| not_found("workflow version", format!("{workflow_id} v{version}")))
    }

    async fn list_workflow_versions(&self, workflow_id: Uuid) -> Result<Vec<VersionSummary>> {
        let db = self.conn().exec();
        let versions = query::workflow_versions_of(workflow_id).all(&db).await?;
        let counts: Vec<(i32, i64)> = query::executions_per_version(workflow_id)
            .into_tuple()
            .all(&db)
            .await?;
        Ok(versions
            .into_iter()
            .map(|v| VersionSummary {
                version: v.version,
                created_at: v.created_at,
                executions: counts
                    .iter()
                    .find(|(n, _)| *n == v.version)
                    .map_or(0, |(_, c)| *c as u64),
            })
            .collect())
    }

    async fn create_execution(&self, new: NewExecution) -> Result<(Execution, Vec<TaskRun>)> {
        check_task_keys(&new.task_keys)?;
        self.conn()
            .write(move |tx| {
                let new = new.clone();
                Box::pin(async move { create_execution(tx, new).await })
            })
            .await
    }

    async fn get_execution(&self, id: Uuid) -> Result<Execution> {
        execution::Entity::find_by_id(id)
            .one(&self.conn().exec())
            .await?
            .ok_or_else(|| not_found("execution", id))
    }

    async fn get_execution_detail(&self, id: Uuid) -> Result<ExecutionDetail> {
        let db = self.conn().exec();
        let (execution, wf) = execution::Entity::find_by_id(id)
            .find_also_related(workflow::Entity)
            .one(&db)
            .await?
            .ok_or_else(|| not_found("execution", id))?;
        let task_runs = query::task_runs_of(id).all(&db).await?;
        let mut attempts = query::attempts_of_execution(id).all(&db).await?;
        attempts.sort_by_key(|a| a.number);
        let mut outputs = query::outputs_of(id).all(&db).await?;
        outputs.sort_by(|a, b| a.key.cmp(&b.key));
        let task_runs = task_runs
            .into_iter()
            .map(|task_run| {
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
            execution,
            workflow_name: wf.map(|w| w.name).unwrap_or_default(),
            task_runs,
            outputs,
        })
    }

    async fn transition_execution(&self, id: Uuid, t: ExecutionTransition) -> Result<i64> {
        check_execution_transition(&t)?;
        self.conn()
            .single(move |c| {
                let t = t.clone();
                Box::pin(async move { transition_execution(&c, id, &t).await })
            })
            .await
    }

    async fn transition_execution_and_tasks(
        &self,
        id: Uuid,
        e: ExecutionTransition,
        tasks: Vec<TaskTransition>,
    ) -> Result<()> {
        check_execution_transition(&e)?;
        for t in &tasks {
            check_task_transition(t)?;
        }
        self.conn()
            .write(move |tx| {
                let (e, tasks) = (e.clone(), tasks.clone());
                Box::pin(async move {
                    transition_execution(tx, id, &e).await?;
                    for t in &tasks {
                        transition_task(tx, t, Some(id)).await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn list_executions(&self, q: ExecutionQuery) -> Result<Page<Execution>> {
        let (select, limit) = query::execution_page(&q)?;
        let db = self.conn().exec();
        let mut items = select.all(&db).await?;
        let counted = db
            .query_one_raw(query::execution_count_statement(
                db.get_database_backend(),
                &q,
            ))
            .await?
            .map(|row| row.try_get_by_index::<i64>(0))
            .transpose()?
            .unwrap_or(0) as u64;
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

    async fn create_task_run(&self, execution_id: Uuid, task_key: &str) -> Result<TaskRun> {
        check_task_keys(&[task_key.to_owned()])?;
        let key = task_key.to_owned();
        self.conn()
            .write(move |tx| {
                let key = key.clone();
                Box::pin(async move {
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
                    Ok(run)
                })
            })
            .await
    }

    async fn get_task_run(&self, id: Uuid) -> Result<TaskRun> {
        task_run::Entity::find_by_id(id)
            .one(&self.conn().exec())
            .await?
            .ok_or_else(|| not_found("task run", id))
    }

    async fn list_task_runs(&self, execution_id: Uuid) -> Result<Vec<TaskRun>> {
        Ok(query::task_runs_of(execution_id)
            .all(&self.conn().exec())
            .await?)
    }

    async fn transition_task(&self, t: TaskTransition) -> Result<i64> {
        check_task_transition(&t)?;
        self.conn()
            .single(move |c| {
                let t = t.clone();
                Box::pin(async move { transition_task(&c, &t, None).await })
            })
            .await
    }

    async fn start_attempt(&self, task_run_id: Uuid) -> Result<Attempt> {
        self.conn()
            .write(move |tx| Box::pin(async move { start_attempt(tx, task_run_id).await }))
            .await
    }

    async fn finish_attempt(&self, attempt_id: Uuid, r: AttemptResult) -> Result<()> {
        if r.state == AttemptState::Running {
            return Err(StoreError::InvalidInput(
                "an attempt cannot finish as RUNNING; use SUCCEEDED, FAILED or CANCELLED".into(),
            ));
        }
        self.conn()
            .single(move |c| {
                let r = r.clone();
                Box::pin(async move {
                    let tx = &c;
                    let changed = attempt::Entity::update_many()
                        .col_expr(attempt::Column::State, Expr::val(r.state))
                        .col_expr(attempt::Column::Reason, Expr::val(r.reason))
                        .col_expr(attempt::Column::ExitCode, Expr::val(r.exit_code))
                        .col_expr(attempt::Column::Error, Expr::val(r.error))
                        .col_expr(attempt::Column::FinishedAt, Expr::val(now()))
                        .filter(attempt::Column::Id.eq(attempt_id))
                        .filter(attempt::Column::State.eq(AttemptState::Running))
                        .exec(tx)
                        .await?
                        .rows_affected;
                    if changed == 1 {
                        return Ok(());
                    }
                    let current = attempt::Entity::find_by_id(attempt_id)
                        .one(tx)
                        .await?
                        .ok_or_else(|| not_found("attempt", attempt_id))?;
                    Err(StoreError::InvalidTransition {
                        entity: "attempt",
                        id: attempt_id.to_string(),
                        from: current.state.to_string(),
                        to: r.state.to_string(),
                    })
                })
            })
            .await
    }

    async fn list_attempts(&self, task_run_id: Uuid) -> Result<Vec<Attempt>> {
        Ok(attempt::Entity::find()
            .filter(attempt::Column::TaskRunId.eq(task_run_id))
            .order_by_asc(attempt::Column::Number)
            .all(&self.conn().exec())
            .await?)
    }

    async fn put_outputs(
        &self,
        execution_id: Uuid,
        task_run_id: Uuid,
        values: Vec<(String, Value)>,
    ) -> Result<()> {
        if values.is_empty() {
            return Ok(());
        }
        for (key, _) in &values {
            if key.is_empty() || key.len() > 255 {
                return Err(StoreError::InvalidInput(format!(
                    "output key '{key}' must be 1 to 255 characters"
                )));
            }
        }
        self.conn()
            .write(move |tx| {
                let values = values.clone();
                Box::pin(async move {
                    let ts = now();
                    for chunk in values.chunks(insert_chunk(tx)) {
                        let rows = chunk.iter().map(|(k, v)| output::ActiveModel {
                            id: Set(Uuid::now_v7()),
                            execution_id: Set(execution_id),
                            task_run_id: Set(task_run_id),
                            key: Set(k.clone()),
                            value: Set(v.clone()),
                            created_at: Set(ts),
                        });
                        output::Entity::insert_many(rows)
                            .on_conflict(
                                OnConflict::columns([
                                    output::Column::TaskRunId,
                                    output::Column::Key,
                                ])
                                .update_columns([output::Column::Value, output::Column::CreatedAt])
                                .to_owned(),
                            )
                            .exec_without_returning(tx)
                            .await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn list_outputs(&self, execution_id: Uuid) -> Result<Vec<Output>> {
        let mut outputs = query::outputs_of(execution_id)
            .all(&self.conn().exec())
            .await?;
        outputs.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(outputs)
    }

    async fn append_logs(&self, lines: Vec<NewLogLine>) -> Result<u64> {
        if lines.is_empty() {
            return Ok(0);
        }
        if lines.len() <= self.conn().backend().insert_chunk() {
            return self
                .conn()
                .single(move |c| {
                    let lines = lines.clone();
                    Box::pin(async move { insert_logs(&c, &lines).await })
                })
                .await;
        }
        self.conn()
            .write(move |tx| {
                let lines = lines.clone();
                Box::pin(async move {
                    let mut written = 0;
                    for chunk in lines.chunks(insert_chunk(tx)) {
                        written += insert_logs(tx, chunk).await?;
                    }
                    Ok(written)
                })
            })
            .await
    }

    async fn read_logs(&self, q: LogQuery) -> Result<Vec<LogLine>> {
        Ok(query::logs_page(&q)?.all(&self.conn().exec()).await?)
    }
}

/// One multi-row INSERT of log lines.
async fn insert_logs<C: ConnectionTrait>(c: &C, lines: &[NewLogLine]) -> Result<u64> {
    let rows = lines.iter().map(|l| log::ActiveModel {
        id: NotSet,
        execution_id: Set(l.execution_id),
        task_run_id: Set(l.task_run_id),
        attempt: Set(l.attempt),
        ts: Set(truncate_micros(l.ts)),
        stream: Set(l.stream),
        line: Set(l.line.clone()),
    });
    log::Entity::insert_many(rows)
        .exec_without_returning(c)
        .await?;
    Ok(lines.len() as u64)
}

async fn save_workflow(tx: &DatabaseTransaction, w: NewWorkflow) -> Result<SavedWorkflow> {
    let ts = now();
    let existing = workflow::Entity::find()
        .filter(workflow::Column::Name.eq(w.name.as_str()))
        .one(tx)
        .await?;
    let Some(mut current) = existing else {
        let row = workflow::Model {
            id: Uuid::now_v7(),
            name: w.name,
            version: 1,
            definition: w.definition,
            description: w.description,
            created_at: ts,
            updated_at: ts,
            deleted_at: None,
        };
        workflow::Entity::insert(workflow::ActiveModel::from(row.clone()))
            .exec_without_returning(tx)
            .await?;
        insert_version(tx, &row).await?;
        return Ok(SavedWorkflow {
            workflow: row,
            changed: true,
        });
    };
    let changed = current.definition != w.definition || current.description != w.description;
    if !changed && current.deleted_at.is_none() {
        return Ok(SavedWorkflow {
            workflow: current,
            changed: false,
        });
    }
    if changed {
        current.version += 1;
    }
    current.definition = w.definition;
    current.description = w.description;
    current.deleted_at = None;
    current.updated_at = ts;
    workflow::Entity::update_many()
        .col_expr(workflow::Column::Version, Expr::val(current.version))
        .col_expr(
            workflow::Column::Definition,
            Expr::val(current.definition.clone()),
        )
        .col_expr(
            workflow::Column::Description,
            Expr::val(current.description.clone()),
        )
        .col_expr(
            workflow::Column::DeletedAt,
            Expr::val(None::<DateTime<Utc>>),
        )
        .col_expr(workflow::Column::UpdatedAt, Expr::val(ts))
        .filter(workflow::Column::Id.eq(current.id))
        .exec(tx)
        .await?;
    if changed {
        insert_version(tx, &current).await?;
    }
    Ok(SavedWorkflow {
        workflow: current,
        changed,
    })
}

/// Keeps the definition of the workflow's current version, so executions of
/// it run what they were submitted with after later changes.
async fn insert_version(tx: &DatabaseTransaction, w: &Workflow) -> Result<()> {
    let row = workflow_version::Model {
        workflow_id: w.id,
        version: w.version,
        definition: w.definition.clone(),
        description: w.description.clone(),
        created_at: w.updated_at,
    };
    workflow_version::Entity::insert(workflow_version::ActiveModel::from(row))
        .exec_without_returning(tx)
        .await?;
    Ok(())
}

/// Names (workflow names, task keys) are compared byte for byte on every
/// backend, so a name that differs from another only by surrounding white
/// space or invisible characters would look like a duplicate to people: such
/// names are refused instead.
pub(crate) fn check_name(what: &str, name: &str) -> Result<()> {
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

fn check_task_keys(keys: &[String]) -> Result<()> {
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

fn new_task_run(execution_id: Uuid, key: String, position: i32, ts: DateTime<Utc>) -> TaskRun {
    TaskRun {
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

async fn create_execution(
    tx: &DatabaseTransaction,
    new: NewExecution,
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
    let exec = Execution {
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
    };
    execution::Entity::insert(execution::ActiveModel::from(exec.clone()))
        .exec_without_returning(tx)
        .await?;
    let runs: Vec<TaskRun> = new
        .task_keys
        .into_iter()
        .enumerate()
        .map(|(i, key)| new_task_run(exec.id, key, i as i32, ts))
        .collect();
    for chunk in runs.chunks(insert_chunk(tx)) {
        task_run::Entity::insert_many(chunk.iter().cloned().map(task_run::ActiveModel::from))
            .exec_without_returning(tx)
            .await?;
    }
    Ok((exec, runs))
}

fn check_execution_transition(t: &ExecutionTransition) -> Result<()> {
    if t.to == ExecutionState::Waiting && t.wake_at.is_none() {
        return Err(StoreError::InvalidInput(
            "a move to WAITING needs wake_at: when the execution is due again".into(),
        ));
    }
    Ok(())
}

fn check_task_transition(t: &TaskTransition) -> Result<()> {
    if t.to == TaskState::Waiting && t.next_attempt_at.is_none() {
        return Err(StoreError::InvalidInput(
            "a move to WAITING needs next_attempt_at: when the task may retry".into(),
        ));
    }
    Ok(())
}

/// One UPDATE guarded by id, version and the allowed source states; only when
/// it matches nothing is the row read, to say why.
async fn transition_execution<C: ConnectionTrait>(
    tx: &C,
    id: Uuid,
    t: &ExecutionTransition,
) -> Result<i64> {
    use execution::Column as C;
    let ts = now();
    let mut update = execution::Entity::update_many()
        .col_expr(C::State, Expr::val(t.to))
        .col_expr(C::Version, Expr::col(C::Version).add(1))
        .col_expr(C::Reason, Expr::val(t.reason))
        .col_expr(C::Error, Expr::val(t.error.clone()))
        .col_expr(C::UpdatedAt, Expr::val(ts))
        .col_expr(C::WakeAt, Expr::val(t.wake_at.map(truncate_micros)));
    match t.to {
        ExecutionState::Running => {
            update = update.col_expr(
                C::StartedAt,
                Func::coalesce([Expr::col(C::StartedAt), Expr::val(ts)]).into(),
            );
        }
        ExecutionState::Waiting => {
            // Release the slot: whoever is free when it is due may claim it.
            update = update
                .col_expr(C::Owner, Expr::val(None::<String>))
                .col_expr(C::LeaseExpiresAt, Expr::val(None::<DateTime<Utc>>));
        }
        s if s.is_terminal() => {
            update = update
                .col_expr(C::FinishedAt, Expr::val(ts))
                .col_expr(C::LeaseExpiresAt, Expr::val(None::<DateTime<Utc>>));
        }
        _ => {}
    }
    let changed = update
        .filter(C::Id.eq(id))
        .filter(C::Version.eq(t.expected_version))
        .filter(C::State.is_in(execution_sources(t.to).iter().copied()))
        .exec(tx)
        .await?
        .rows_affected;
    if changed == 1 {
        return Ok(t.expected_version + 1);
    }
    let current = execution::Entity::find_by_id(id)
        .one(tx)
        .await?
        .ok_or_else(|| not_found("execution", id))?;
    Err(refusal(
        "execution",
        id,
        t.expected_version,
        current.version,
        current.state.to_string(),
        t.to.to_string(),
    ))
}

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

async fn transition_task<C: ConnectionTrait>(
    tx: &C,
    t: &TaskTransition,
    execution_id: Option<Uuid>,
) -> Result<i64> {
    use task_run::Column as C;
    let ts = now();
    let mut update = task_run::Entity::update_many()
        .col_expr(C::State, Expr::val(t.to))
        .col_expr(C::Version, Expr::col(C::Version).add(1))
        .col_expr(C::Reason, Expr::val(t.reason))
        .col_expr(C::UpdatedAt, Expr::val(ts))
        .col_expr(
            C::NextAttemptAt,
            Expr::val(t.next_attempt_at.map(truncate_micros)),
        );
    if t.to == TaskState::Running {
        update = update.col_expr(
            C::StartedAt,
            Func::coalesce([Expr::col(C::StartedAt), Expr::val(ts)]).into(),
        );
    } else if t.to.is_terminal() {
        update = update.col_expr(C::FinishedAt, Expr::val(ts));
    }
    let mut update = update
        .filter(C::Id.eq(t.task_run_id))
        .filter(C::Version.eq(t.expected_version))
        .filter(C::State.is_in(task_sources(t.to).iter().copied()));
    if let Some(e) = execution_id {
        update = update.filter(C::ExecutionId.eq(e));
    }
    let changed = update.exec(tx).await?.rows_affected;
    if changed == 1 {
        return Ok(t.expected_version + 1);
    }
    let current = task_run::Entity::find_by_id(t.task_run_id)
        .one(tx)
        .await?
        .filter(|r| execution_id.is_none_or(|e| r.execution_id == e))
        .ok_or_else(|| not_found("task run", t.task_run_id))?;
    Err(refusal(
        "task run",
        t.task_run_id,
        t.expected_version,
        current.version,
        current.state.to_string(),
        t.to.to_string(),
    ))
}

/// Counting up on the task run row first serialises concurrent starters on
/// that row's lock, so numbers are dense and unique.
async fn start_attempt(tx: &DatabaseTransaction, task_run_id: Uuid) -> Result<Attempt> {
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
    let row = Attempt {
        id: Uuid::now_v7(),
        task_run_id,
        number,
        state: AttemptState::Running,
        reason: None,
        exit_code: None,
        error: None,
        started_at: ts,
        finished_at: None,
    };
    attempt::Entity::insert(attempt::ActiveModel::from(row.clone()))
        .exec_without_returning(tx)
        .await?;
    Ok(row)
}
