//! The records the store hands out and the inputs it takes.
//!
//! Records are the entity models themselves (plain structs); callers never
//! query through them, they only read them.

use chrono::{DateTime, Utc};
pub use flowstate_entity::{
    AttemptState, ExecutionState, LogStream, ParseEnumError, Reason, TaskState,
};
use serde_json::Value;
use uuid::Uuid;

/// A stored workflow definition.
pub type Workflow = flowstate_entity::workflow::Model;
/// One version of a workflow's definition.
pub type WorkflowVersion = flowstate_entity::workflow_version::Model;
/// A stored execution.
pub type Execution = flowstate_entity::execution::Model;
/// A stored task run.
pub type TaskRun = flowstate_entity::task_run::Model;
/// A stored attempt.
pub type Attempt = flowstate_entity::attempt::Model;
/// A stored output.
pub type Output = flowstate_entity::output::Model;
/// A stored log line.
pub type LogLine = flowstate_entity::log::Model;

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
}

/// What crash recovery did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecoveryReport {
    /// RUNNING executions that became FAILED with reason CRASH_RECOVERY.
    pub failed: Vec<Uuid>,
    /// PENDING and WAITING executions that still named a dead engine, released
    /// for any scheduler to claim.
    pub requeued: Vec<Uuid>,
    /// PENDING and WAITING executions waiting to be claimed after recovery.
    pub queued: u64,
    /// Task runs that became FAILED.
    pub task_runs_failed: u64,
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
