//! The records the store hands out and the inputs it takes.
//!
//! Records are plain structs of this crate, not SeaORM models: callers read
//! them and never query through them, and the entity crate can change how a
//! row is mapped without changing what callers see. The store converts every
//! row it reads (and every row it builds and writes) with the `From` impls
//! below, the one place the two are tied together. Each impl destructures
//! the model without `..`, so a column added to an entity fails to compile
//! here instead of being silently left out of its record.

use chrono::{DateTime, Utc};
use flowstate_entity::{attempt, execution, log, output, task_run, workflow, workflow_version};
pub use flowstate_entity::{
    AttemptState, ExecutionState, LogStream, ParseEnumError, Reason, TaskState,
};
use serde_json::Value;
use uuid::Uuid;

/// A stored workflow definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    /// The workflow's id.
    pub id: Uuid,
    /// Unique name.
    pub name: String,
    /// The current version, counted up each time the definition changes.
    pub version: i32,
    /// The current definition (tasks, needs, ...).
    pub definition: Value,
    /// Free text.
    pub description: Option<String>,
    /// When the workflow was first registered.
    pub created_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
    /// Set by a soft delete; soft-deleted workflows are hidden from lists by default.
    pub deleted_at: Option<DateTime<Utc>>,
}

impl From<workflow::Model> for Workflow {
    fn from(m: workflow::Model) -> Self {
        let workflow::Model {
            id,
            name,
            version,
            definition,
            description,
            created_at,
            updated_at,
            deleted_at,
        } = m;
        Workflow {
            id,
            name,
            version,
            definition,
            description,
            created_at,
            updated_at,
            deleted_at,
        }
    }
}

/// One version of a workflow's definition.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowVersion {
    /// The workflow it belongs to.
    pub workflow_id: Uuid,
    /// The version number.
    pub version: i32,
    /// The definition as registered then.
    pub definition: Value,
    /// The description as registered then.
    pub description: Option<String>,
    /// When this version was registered.
    pub created_at: DateTime<Utc>,
}

impl From<workflow_version::Model> for WorkflowVersion {
    fn from(m: workflow_version::Model) -> Self {
        let workflow_version::Model {
            workflow_id,
            version,
            definition,
            description,
            created_at,
        } = m;
        WorkflowVersion {
            workflow_id,
            version,
            definition,
            description,
            created_at,
        }
    }
}

/// A stored execution. `version` is the optimistic-lock counter every
/// transition checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    /// The execution's id.
    pub id: Uuid,
    /// The workflow it runs.
    pub workflow_id: Uuid,
    /// The workflow's `version` when this execution was created.
    pub workflow_version: i32,
    /// Where it is in its state machine.
    pub state: ExecutionState,
    /// Machine-readable cause of the last transition (CRASH_RECOVERY, TASK_FAILED, ...).
    pub reason: Option<Reason>,
    /// Human-readable error.
    pub error: Option<String>,
    /// Input values (a JSON object).
    pub input: Value,
    /// The optimistic-lock counter.
    pub version: i64,
    /// The engine node holding the lease, if any.
    pub owner: Option<String>,
    /// When the owner's lease runs out.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// When a WAITING execution is due again.
    pub wake_at: Option<DateTime<Utc>>,
    /// When it was submitted.
    pub created_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
    /// When it first became RUNNING.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a terminal state.
    pub finished_at: Option<DateTime<Utc>>,
    /// The execution this one re-runs (`execution retry`), while it is kept.
    pub retry_of: Option<Uuid>,
}

impl From<execution::Model> for Execution {
    fn from(m: execution::Model) -> Self {
        let execution::Model {
            id,
            workflow_id,
            workflow_version,
            state,
            reason,
            error,
            input,
            version,
            owner,
            lease_expires_at,
            wake_at,
            created_at,
            updated_at,
            started_at,
            finished_at,
            retry_of,
        } = m;
        Execution {
            id,
            workflow_id,
            workflow_version,
            state,
            reason,
            error,
            input,
            version,
            owner,
            lease_expires_at,
            wake_at,
            created_at,
            updated_at,
            started_at,
            finished_at,
            retry_of,
        }
    }
}

/// A stored task run: one task of one execution.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRun {
    /// The task run's id.
    pub id: Uuid,
    /// The execution it belongs to.
    pub execution_id: Uuid,
    /// The task's key in the workflow.
    pub task_key: String,
    /// Its place in workflow order, from 0.
    pub position: i32,
    /// Where it is in its state machine.
    pub state: TaskState,
    /// Machine-readable cause of the last transition.
    pub reason: Option<Reason>,
    /// The optimistic-lock counter every transition checks.
    pub version: i64,
    /// How many attempts have been started; the next attempt is numbered one more.
    pub attempt_count: i32,
    /// When a WAITING task run may start its next attempt.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
    /// When it first became RUNNING.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a terminal state.
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<task_run::Model> for TaskRun {
    fn from(m: task_run::Model) -> Self {
        let task_run::Model {
            id,
            execution_id,
            task_key,
            position,
            state,
            reason,
            version,
            attempt_count,
            next_attempt_at,
            created_at,
            updated_at,
            started_at,
            finished_at,
        } = m;
        TaskRun {
            id,
            execution_id,
            task_key,
            position,
            state,
            reason,
            version,
            attempt_count,
            next_attempt_at,
            created_at,
            updated_at,
            started_at,
            finished_at,
        }
    }
}

/// An execution taken by [`StateStore::claim_and_start`](crate::StateStore::claim_and_start).
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    /// The execution, now RUNNING under the claimer's lease.
    pub execution: Execution,
    /// Its task runs in workflow order, as they are after the claim (those
    /// started by it RUNNING, their attempt counted).
    pub runs: Vec<TaskRun>,
    /// The attempts the claim started, RUNNING since the claim.
    pub started: Vec<Attempt>,
}

impl Claimed {
    /// A claimed execution whose task runs were not read.
    pub fn bare(execution: Execution) -> Self {
        Claimed {
            execution,
            runs: Vec::new(),
            started: Vec::new(),
        }
    }
}

/// Which task runs a claim starts: given every claimed execution with its
/// task runs (none started yet), for each (in the same order) the ids of
/// the task runs whose next attempt starts in the claim's transaction. It may be called again
/// when the transaction is retried, so it must not keep state between calls.
/// Only PENDING and WAITING task runs of that execution are started; other
/// ids are ignored.
pub type StartPick = dyn Fn(&[Claimed]) -> Vec<Vec<Uuid>> + Send + Sync;

/// A claim made together with other writes, by
/// [`StateStore::record_and_claim`](crate::StateStore::record_and_claim):
/// the arguments of [`claim_and_start`](crate::StateStore::claim_and_start).
#[derive(Clone)]
pub struct ClaimRequest {
    /// The claiming node.
    pub node_id: String,
    /// The most executions to claim (1 to 1000).
    pub limit: u64,
    /// How long the claim holds without renewal.
    pub lease: std::time::Duration,
    /// Which task runs start in the claim.
    pub pick: std::sync::Arc<StartPick>,
}

/// What [`StateStore::record_and_claim`](crate::StateStore::record_and_claim)
/// landed.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// For each batch, the new version of each move (`None` for the other
    /// writes), as [`apply_writes`](crate::StateOps::apply_writes) returns them.
    pub versions: Vec<Vec<Option<i64>>>,
    /// The executions claimed, as [`claim_and_start`](crate::StateStore::claim_and_start)
    /// returns them.
    pub claimed: Vec<Claimed>,
}

/// A stored attempt: one process run of a task run.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// The attempt's id.
    pub id: Uuid,
    /// The task run it belongs to.
    pub task_run_id: Uuid,
    /// Its number within the task run, from 1.
    pub number: i32,
    /// RUNNING, or how it ended.
    pub state: AttemptState,
    /// Machine-readable cause (TIMEOUT, ...).
    pub reason: Option<Reason>,
    /// The process's exit code, if it exited.
    pub exit_code: Option<i32>,
    /// Human-readable error.
    pub error: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<attempt::Model> for Attempt {
    fn from(m: attempt::Model) -> Self {
        let attempt::Model {
            id,
            task_run_id,
            number,
            state,
            reason,
            exit_code,
            error,
            started_at,
            finished_at,
        } = m;
        Attempt {
            id,
            task_run_id,
            number,
            state,
            reason,
            exit_code,
            error,
            started_at,
            finished_at,
        }
    }
}

/// A stored output: one value a task run handed downstream.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The output's id.
    pub id: Uuid,
    /// The execution it belongs to.
    pub execution_id: Uuid,
    /// The task run that wrote it.
    pub task_run_id: Uuid,
    /// Its key, unique per task run.
    pub key: String,
    /// The value.
    pub value: Value,
    /// When it was (last) written.
    pub created_at: DateTime<Utc>,
}

impl From<output::Model> for Output {
    fn from(m: output::Model) -> Self {
        let output::Model {
            id,
            execution_id,
            task_run_id,
            key,
            value,
            created_at,
        } = m;
        Output {
            id,
            execution_id,
            task_run_id,
            key,
            value,
            created_at,
        }
    }
}

/// A stored log line.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// The line's id, increasing in the order lines were appended.
    pub id: i64,
    /// The execution it belongs to.
    pub execution_id: Uuid,
    /// None for lines about the execution as a whole.
    pub task_run_id: Option<Uuid>,
    /// The attempt number the line belongs to, if any.
    pub attempt: Option<i32>,
    /// When the line was captured.
    pub ts: DateTime<Utc>,
    /// Which stream it came from.
    pub stream: LogStream,
    /// The text, without its line break.
    pub line: String,
}

impl From<log::Model> for LogLine {
    fn from(m: log::Model) -> Self {
        let log::Model {
            id,
            execution_id,
            task_run_id,
            attempt,
            ts,
            stream,
            line,
        } = m;
        LogLine {
            id,
            execution_id,
            task_run_id,
            attempt,
            ts,
            stream,
            line,
        }
    }
}

/// A workflow to save under its name.
#[derive(Debug, Clone, PartialEq)]
pub struct NewWorkflow {
    /// Unique name.
    pub name: String,
    /// The parsed definition (tasks, needs, ...).
    pub definition: Value,
    /// Free text.
    pub description: Option<String>,
}

/// What saving a workflow did.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedWorkflow {
    /// The workflow as stored now.
    pub workflow: Workflow,
    /// True when the row was inserted or its definition changed.
    pub changed: bool,
}

/// A line of a workflow's history: one version, when it was registered and
/// how many executions were submitted with it.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionSummary {
    /// The version number.
    pub version: i32,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// Executions of this version still in the database.
    pub executions: u64,
}

/// An execution to create in PENDING with its task runs.
#[derive(Debug, Clone, PartialEq)]
pub struct NewExecution {
    /// The workflow to run.
    pub workflow_id: Uuid,
    /// Input values (a JSON object).
    pub input: Value,
    /// Task keys in workflow order; one task run is created per key.
    pub task_keys: Vec<String>,
}

/// A retry of an ended execution: a new execution of the same workflow
/// version with the same inputs, linked to the original.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRetry {
    /// The execution to re-run.
    pub original: Uuid,
    /// Tasks that succeeded in the original and are carried over: recorded
    /// SUCCEEDED with reason REUSED and their outputs copied, not run again.
    pub reuse: Vec<String>,
}

/// A requested state change of an execution.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionTransition {
    /// The target state.
    pub to: ExecutionState,
    /// The version the caller read; a different current version is a conflict.
    pub expected_version: i64,
    /// Machine-readable cause (TASK_FAILED, TIMEOUT, CANCELLED, ...).
    pub reason: Option<Reason>,
    /// Human-readable error.
    pub error: Option<String>,
    /// When a WAITING execution is due again (used only when `to` is WAITING).
    pub wake_at: Option<DateTime<Utc>>,
}

impl ExecutionTransition {
    /// A move to `to` from the row at `expected_version`, with nothing else set.
    pub fn new(to: ExecutionState, expected_version: i64) -> Self {
        ExecutionTransition {
            to,
            expected_version,
            reason: None,
            error: None,
            wake_at: None,
        }
    }
}

/// A requested state change of a task run.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskTransition {
    /// The task run.
    pub task_run_id: Uuid,
    /// The target state.
    pub to: TaskState,
    /// The version the caller read.
    pub expected_version: i64,
    /// Machine-readable cause.
    pub reason: Option<Reason>,
    /// When a WAITING task run may retry (used only when `to` is WAITING).
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl TaskTransition {
    /// A move of `task_run_id` to `to` from the row at `expected_version`.
    pub fn new(task_run_id: Uuid, to: TaskState, expected_version: i64) -> Self {
        TaskTransition {
            task_run_id,
            to,
            expected_version,
            reason: None,
            next_attempt_at: None,
        }
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptResult {
    /// SUCCEEDED, FAILED or CANCELLED.
    pub state: AttemptState,
    /// Machine-readable cause (TIMEOUT, ...).
    pub reason: Option<Reason>,
    /// The process's exit code, if it exited.
    pub exit_code: Option<i32>,
    /// Human-readable error.
    pub error: Option<String>,
}

/// One log line to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLogLine {
    /// The execution it belongs to.
    pub execution_id: Uuid,
    /// The task run, if the line came from a task.
    pub task_run_id: Option<Uuid>,
    /// The attempt number, if the line came from a task.
    pub attempt: Option<i32>,
    /// When the line was captured.
    pub ts: DateTime<Utc>,
    /// Which stream it came from.
    pub stream: LogStream,
    /// The text, without its line break.
    pub line: String,
}

/// One write of a batch that [`StateOps::apply_writes`](crate::StateOps::apply_writes)
/// lands in one transaction: what a driver records when an attempt ends (the
/// attempt, its outputs, its task run's move, downstream skips, the
/// execution's end) in one commit.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Write {
    /// Ends a RUNNING attempt.
    FinishAttempt {
        /// The attempt.
        attempt_id: Uuid,
        /// How it ended.
        result: AttemptResult,
    },
    /// Stores outputs of a task run; a key that exists is overwritten.
    PutOutputs {
        /// The execution.
        execution_id: Uuid,
        /// The task run that produced them.
        task_run_id: Uuid,
        /// Keys and values.
        values: Vec<(String, Value)>,
    },
    /// Moves a task run (guarded like
    /// [`transition_task`](crate::StateOps::transition_task)); its new version
    /// is returned.
    MoveTask(TaskTransition),
    /// Moves an execution (guarded like
    /// [`transition_execution`](crate::StateOps::transition_execution)); its
    /// new version is returned.
    MoveExecution {
        /// The execution.
        id: Uuid,
        /// The move.
        transition: ExecutionTransition,
    },
    /// Appends log lines.
    AppendLogs(Vec<NewLogLine>),
}

/// A task run with its attempts, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRunDetail {
    /// The task run.
    pub task_run: TaskRun,
    /// Its attempts by number.
    pub attempts: Vec<Attempt>,
}

/// Everything about one execution, read with a fixed number of queries.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionDetail {
    /// The execution.
    pub execution: Execution,
    /// The name of its workflow.
    pub workflow_name: String,
    /// Its task runs in workflow order, each with its attempts.
    pub task_runs: Vec<TaskRunDetail>,
    /// Its outputs.
    pub outputs: Vec<Output>,
    /// The executions that re-run this one, oldest first.
    pub retries: Vec<Uuid>,
}

/// What crash recovery did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecoveryReport {
    /// RUNNING executions that became FAILED with reason CRASH_RECOVERY.
    pub failed: Vec<Uuid>,
    /// RUNNING executions put back in the queue (WAITING, due now) because
    /// their workflow retries attempts cut off by a crash (`retryOnCrash`);
    /// their RUNNING attempts were failed with CRASH_RECOVERY.
    pub retried: Vec<Uuid>,
    /// RUNNING executions whose every task run had SUCCEEDED: finished
    /// SUCCEEDED (their engine died before recording the end).
    pub succeeded: Vec<Uuid>,
    /// PENDING and WAITING executions that still named a dead engine, released
    /// for any scheduler to claim.
    pub requeued: Vec<Uuid>,
    /// PENDING and WAITING executions waiting to be claimed after recovery.
    pub queued: u64,
    /// Task runs that became FAILED.
    pub task_runs_failed: u64,
    /// PENDING and WAITING task runs of failed executions that became
    /// SKIPPED with reason CRASH_RECOVERY.
    pub task_runs_skipped: u64,
    /// Attempts that became FAILED.
    pub attempts_failed: u64,
}

/// Rows removed (or, on a dry run, that would be removed) per table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PurgeCounts {
    /// Executions.
    pub executions: u64,
    /// Task runs.
    pub task_runs: u64,
    /// Attempts.
    pub attempts: u64,
    /// Outputs.
    pub outputs: u64,
    /// Log lines.
    pub logs: u64,
}

impl std::ops::AddAssign for PurgeCounts {
    fn add_assign(&mut self, o: Self) {
        self.executions += o.executions;
        self.task_runs += o.task_runs;
        self.attempts += o.attempts;
        self.outputs += o.outputs;
        self.logs += o.logs;
    }
}

/// What retention did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PurgeReport {
    /// Rows per table.
    pub counts: PurgeCounts,
    /// Number of delete transactions run (0 on a dry run).
    pub batches: u64,
    /// True when nothing was deleted.
    pub dry_run: bool,
    /// The longest single delete transaction.
    pub longest_batch: std::time::Duration,
}
