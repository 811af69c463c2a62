//! The interface the engine, the CLI and the tests use.
//!
//! [`StateOps`] holds every read and write; [`StateStore`] adds what only the
//! whole store can do (transactions, recovery, retention, claiming), and
//! [`StoreTransaction`] is a [`StateOps`] whose writes land together on commit.
//! All three are object safe: hold the store as `Arc<dyn StateStore>`.

use crate::error::Result;
use crate::migrate::MigrationStatus;
use crate::query::{ExecutionQuery, LogQuery, Page, WorkflowQuery};
use crate::types::*;
use crate::StorageType;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

/// Reads and writes, on the store or inside a transaction.
#[async_trait]
pub trait StateOps: Send + Sync {
    // --- workflows ---

    /// Inserts the workflow, or updates it by name; the version goes up only
    /// when the definition or description changed. Saving a soft-deleted
    /// workflow restores it.
    async fn save_workflow(&self, workflow: NewWorkflow) -> Result<SavedWorkflow>;
    /// The workflow with this id (soft-deleted ones included).
    async fn get_workflow(&self, id: Uuid) -> Result<Workflow>;
    /// The workflow with this name (soft-deleted ones included).
    async fn get_workflow_by_name(&self, name: &str) -> Result<Workflow>;
    /// The workflows whose names match `pattern` (`*`, `?`; see
    /// [`crate::query::name_pattern`]), by name, at most `limit`
    /// (soft-deleted ones included, as by name).
    async fn workflows_matching(&self, pattern: &str, limit: u64) -> Result<Vec<Workflow>>;
    /// A page of workflows.
    async fn list_workflows(&self, query: WorkflowQuery) -> Result<Page<Workflow>>;
    /// The names of these workflows (soft-deleted ones included; unknown ids
    /// are left out), in one query that reads no definition: for lists that
    /// print a name beside each execution.
    async fn workflow_names(&self, ids: Vec<Uuid>) -> Result<HashMap<Uuid, String>>;
    /// Soft delete (hidden from lists, executions kept), or hard delete (the
    /// workflow, its versions, its executions and everything under them).
    async fn delete_workflow(&self, id: Uuid, hard: bool) -> Result<()>;
    /// One version of a workflow's definition: what an execution of that
    /// version runs. Every version saved since `workflow_versions` exists is
    /// kept; older ones were never stored (NotFound).
    async fn get_workflow_version(
        &self,
        workflow_id: Uuid,
        version: i32,
    ) -> Result<WorkflowVersion>;
    /// Every stored version of a workflow, oldest first, with how many
    /// executions use each (one grouped count).
    async fn list_workflow_versions(&self, workflow_id: Uuid) -> Result<Vec<VersionSummary>>;

    // --- executions ---

    /// Creates an execution in PENDING with one PENDING task run per key, in
    /// one transaction.
    async fn create_execution(&self, new: NewExecution) -> Result<(Execution, Vec<TaskRun>)>;
    /// The execution with this id.
    async fn get_execution(&self, id: Uuid) -> Result<Execution>;
    /// The execution with its workflow name, task runs, attempts and outputs,
    /// in a fixed number of queries.
    async fn get_execution_detail(&self, id: Uuid) -> Result<ExecutionDetail>;
    /// The ids of the executions whose id starts with `prefix` (8 to 32 hex
    /// digits, dashes ignored; see [`crate::query::id_prefix_range`]), in
    /// id order, at most `limit`: one index range read.
    async fn execution_ids_with_prefix(&self, prefix: &str, limit: u64) -> Result<Vec<Uuid>>;
    /// Creates a retry of an ended execution in one transaction: same
    /// workflow version and inputs, `retry_of` set, the `reuse` tasks
    /// recorded SUCCEEDED (reason REUSED) with their outputs copied, the
    /// rest PENDING. An original still running is a conflict.
    async fn create_retry(&self, retry: NewRetry) -> Result<(Execution, Vec<TaskRun>)>;
    /// Moves an execution, checking the state machine and the version; returns
    /// the new version. One UPDATE when it succeeds.
    async fn transition_execution(&self, id: Uuid, t: ExecutionTransition) -> Result<i64>;
    /// Moves an execution and several of its task runs together: all or nothing.
    async fn transition_execution_and_tasks(
        &self,
        id: Uuid,
        execution: ExecutionTransition,
        tasks: Vec<TaskTransition>,
    ) -> Result<()>;
    /// A page of executions with the total count of matching rows.
    async fn list_executions(&self, query: ExecutionQuery) -> Result<Page<Execution>>;

    // --- task runs ---

    /// Adds a PENDING task run to an execution at the end of its order.
    async fn create_task_run(&self, execution_id: Uuid, task_key: &str) -> Result<TaskRun>;
    /// The task run with this id.
    async fn get_task_run(&self, id: Uuid) -> Result<TaskRun>;
    /// The task runs of an execution in workflow order.
    async fn list_task_runs(&self, execution_id: Uuid) -> Result<Vec<TaskRun>>;
    /// Moves a task run, checking the state machine and the version; returns
    /// the new version.
    async fn transition_task(&self, t: TaskTransition) -> Result<i64>;

    // --- attempts ---

    /// Starts the next attempt of a task run, numbered previous + 1 atomically.
    async fn start_attempt(&self, task_run_id: Uuid) -> Result<Attempt>;
    /// Moves a task run to RUNNING (`t.to` must be RUNNING; guarded like
    /// [`transition_task`](Self::transition_task)) and starts its next
    /// attempt, numbered previous + 1, in one transaction of two statements
    /// where the backend has `UPDATE ... RETURNING`. Returns the attempt and
    /// the task run's new version.
    async fn start_run_attempt(&self, t: TaskTransition) -> Result<(Attempt, i64)>;
    /// Ends a RUNNING attempt.
    async fn finish_attempt(&self, attempt_id: Uuid, result: AttemptResult) -> Result<()>;
    /// The attempts of a task run by number.
    async fn list_attempts(&self, task_run_id: Uuid) -> Result<Vec<Attempt>>;

    // --- outputs ---

    /// Stores outputs of a task run; a key that exists is overwritten.
    async fn put_outputs(
        &self,
        execution_id: Uuid,
        task_run_id: Uuid,
        values: Vec<(String, serde_json::Value)>,
    ) -> Result<()>;
    /// The outputs of an execution.
    async fn list_outputs(&self, execution_id: Uuid) -> Result<Vec<Output>>;

    // --- logs ---

    /// Appends lines with multi-row inserts; returns how many were written.
    async fn append_logs(&self, lines: Vec<NewLogLine>) -> Result<u64>;
    /// Lines of an execution in id order, after a given id.
    async fn read_logs(&self, query: LogQuery) -> Result<Vec<LogLine>>;

    // --- several at once ---

    /// Applies `writes` in order in one transaction, all or nothing, and
    /// returns the new version of each move (`None` for the other writes).
    /// On the store the whole batch is retried on transient failures; in a
    /// [`StoreTransaction`] it joins that transaction.
    async fn apply_writes(&self, writes: Vec<Write>) -> Result<Vec<Option<i64>>>;
}

/// The whole store.
#[async_trait]
pub trait StateStore: StateOps {
    /// Which backend this store talks to.
    fn storage_type(&self) -> StorageType;

    /// Whether the database has one write lock for everyone (SQLite): a
    /// process's write transactions then take turns whatever it does, and
    /// one at a time is best; on a server several make progress at once.
    fn one_writer(&self) -> bool;

    /// Begins a write transaction that the caller holds and ends. It begins
    /// like every write transaction of the store (IMMEDIATE on SQLite), and
    /// the BEGIN is retried on transient failures; the caller's unit of work
    /// is not: a lock timeout, deadlock or serialisation failure inside it
    /// comes back as an error, and only the caller can run its statements
    /// again. Writes the store runs by itself are retried whole. Dropping
    /// the transaction without `commit` rolls it back.
    async fn begin(&self) -> Result<Box<dyn StoreTransaction>>;

    /// Applied and pending migrations of the database.
    async fn migration_status(&self) -> Result<MigrationStatus>;

    /// Crash recovery for `node_id` at `now`, run when its engine starts: its
    /// RUNNING executions (and any whose lease expired) become FAILED with
    /// reason CRASH_RECOVERY, with their RUNNING task runs and attempts;
    /// PENDING and WAITING executions that name it or an expired lease are
    /// released. One transaction, set-based.
    async fn recover(&self, node_id: &str, now: DateTime<Utc>) -> Result<RecoveryReport>;

    /// The periodic sweep: like [`recover`](Self::recover), but only for
    /// executions whose lease expired, whoever held it.
    async fn recover_expired(&self, now: DateTime<Utc>) -> Result<RecoveryReport>;

    /// The RUNNING executions that [`recover`](Self::recover) (with a node)
    /// or [`recover_expired`](Self::recover_expired) (without) would end at
    /// `now`, oldest first: for a caller that decides which to retry.
    async fn orphaned(&self, node_id: Option<&str>, now: DateTime<Utc>) -> Result<Vec<Execution>>;

    /// Like [`recover`](Self::recover) (with a node) or
    /// [`recover_expired`](Self::recover_expired) (without), except that the
    /// executions in `retry` go back to the queue, WAITING and due now, with
    /// their RUNNING attempts failed (CRASH_RECOVERY) and their task runs
    /// left for the next driver to retry or fail.
    async fn recover_retrying(
        &self,
        node_id: Option<&str>,
        now: DateTime<Utc>,
        retry: Vec<Uuid>,
    ) -> Result<RecoveryReport>;

    /// Deletes terminal executions finished before `cutoff`, children by
    /// cascade, in transactions of at most `batch_size` executions: batches
    /// start at 500 and grow while they commit in under 150 ms, and shrink
    /// when one takes over 400 ms.
    async fn purge(
        &self,
        cutoff: DateTime<Utc>,
        batch_size: u64,
        dry_run: bool,
    ) -> Result<PurgeReport>;

    /// Deletes one batch of at most `batch_size` terminal executions finished
    /// before `cutoff`, in one transaction; for callers that report progress.
    /// A batch with fewer executions than `batch_size` was the last.
    async fn purge_batch(&self, cutoff: DateTime<Utc>, batch_size: u64) -> Result<PurgeReport>;

    /// Moves up to `limit` due executions (PENDING, or WAITING whose `wake_at`
    /// has passed) to RUNNING under `node_id` with a lease of `lease`. Concurrent
    /// claimers never get the same execution.
    async fn claim_due(&self, node_id: &str, limit: u64, lease: Duration)
        -> Result<Vec<Execution>>;

    /// Like [`claim_due`](Self::claim_due), with each claimed execution's task
    /// runs (in workflow order) read in the same transaction by one more
    /// query for the whole batch: what an engine needs to start driving them.
    async fn claim_due_with_runs(
        &self,
        node_id: &str,
        limit: u64,
        lease: Duration,
    ) -> Result<Vec<(Execution, Vec<TaskRun>)>>;

    /// Like [`claim_due_with_runs`](Self::claim_due_with_runs), and in the
    /// same transaction starts the next attempt of the task runs `pick`
    /// names: each moves to RUNNING with its attempt counted up, and its
    /// attempt row is inserted, two statements for the whole batch. An
    /// engine that starts an execution's first tasks this way saves each of
    /// them a transaction of its own.
    async fn claim_and_start(
        &self,
        node_id: &str,
        limit: u64,
        lease: Duration,
        pick: std::sync::Arc<StartPick>,
    ) -> Result<Vec<Claimed>>;

    /// Applies each of `batches` (as [`apply_writes`](crate::StateOps::apply_writes)
    /// would, in order) and then, when `claim` is given, claims and starts
    /// like [`claim_and_start`](Self::claim_and_start), all in one
    /// transaction: an engine records the ends of several executions and
    /// claims the next ones with one commit. Batches of attempt ends and
    /// guarded moves land set-based, one UPDATE per table and shape of move
    /// for all of them, each row still guarded by its id and version.
    ///
    /// All or nothing: after an error none of it landed, and a caller that
    /// needs to know which batch was refused applies each by itself.
    async fn record_and_claim(
        &self,
        batches: Vec<Vec<Write>>,
        claim: Option<ClaimRequest>,
    ) -> Result<Recorded>;

    /// Moves one due execution (PENDING, or WAITING whose `wake_at` has passed)
    /// to RUNNING under `node_id`; `None` when it is not due or someone else
    /// has it.
    async fn claim_execution(
        &self,
        node_id: &str,
        id: Uuid,
        lease: Duration,
    ) -> Result<Option<Execution>>;

    /// Extends the lease of every RUNNING execution `node_id` owns; returns how
    /// many were extended.
    async fn renew_lease(&self, node_id: &str, lease: Duration) -> Result<u64>;

    /// Extends the lease of those of `ids` that are RUNNING under `node_id`;
    /// returns how many were extended. An engine renews only the executions
    /// it is still driving, so one whose driver died is not kept alive.
    async fn renew_leases(&self, node_id: &str, ids: Vec<Uuid>, lease: Duration) -> Result<u64>;

    /// Closes the pool; pending work on other handles fails afterwards.
    async fn close(&self) -> Result<()>;
}

/// A write transaction: the same reads and writes, landing together.
#[async_trait]
pub trait StoreTransaction: StateOps {
    /// Makes every write of the transaction durable.
    async fn commit(self: Box<Self>) -> Result<()>;
    /// Discards every write of the transaction.
    async fn rollback(self: Box<Self>) -> Result<()>;
}
