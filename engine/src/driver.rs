//! Driving one claimed execution: the imperative shell around the planner.
//!
//! [`drive`] loads the execution's pinned workflow, its task runs and its
//! outputs into a [`Snapshot`], then loops: ask [`planner::plan`] what the
//! event calls for, apply the decisions through the store (starting
//! processes for `Start`), and wait for the next event (an attempt ended, a
//! retry is due, the execution was cancelled or taken away, the engine is
//! shutting down). Which task is ready, how an attempt moves its task run and
//! how the execution ends are the planner's decisions; this module loads,
//! asks and applies.
//!
//! Everything a restart needs is in the database: the driver keeps only each
//! task run's id and version beside the planner's snapshot.

use crate::definitions::Definitions;
use crate::error::{EngineError, Result};
use crate::logs::{self, LogTarget};
use crate::outputs;
use crate::pace;
use crate::planner::{self, Decision, Event, RunView, Snapshot};
use crate::process::{self, Outcome, Spec, Stop};
use crate::recorder::Recorder;
use crate::workflow::{Task, Workflow};
use chrono::{DateTime, Utc};
use flowstate_store::types::*;
use flowstate_store::{now, StateStore, StoreError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use uuid::Uuid;

/// What a driver needs from its engine.
pub(crate) struct Ctx {
    pub store: Arc<dyn StateStore>,
    pub node: String,
    pub workers: Arc<Semaphore>,
    /// The serving engine's claim loop, which records attempts' ends with
    /// its next claim (none for `Engine::run_execution`).
    pub recorder: Option<Recorder>,
    pub poll: Duration,
    /// [`Stop::Drain`] when the engine starts shutting down (nothing new
    /// starts), [`Stop::Shutdown`] when its grace is over (running attempts
    /// are stopped).
    pub kill: watch::Receiver<Stop>,
    /// The engine's parsed workflow versions.
    pub definitions: Arc<Definitions>,
    /// The lease: how long a write is tried again while the database is
    /// unavailable.
    pub lease: Duration,
    /// Set when a write found the database full.
    pub full: Arc<crate::full::Full>,
    /// Where tasks write their outputs.
    pub outputs: Arc<outputs::Outputs>,
    /// How long attempts run, and how many claimed ones wait for a slot.
    pub pace: Arc<pace::Pace>,
}

/// How driving ended.
#[derive(Debug, Clone, PartialEq)]
pub enum End {
    /// The execution reached this terminal state.
    Finished(ExecutionState),
    /// Parked WAITING until this time (a retry back-off).
    Waiting(DateTime<Utc>),
    /// Someone else moved it (cancelled, or recovered after a lost lease).
    Lost(String),
    /// The engine shut down; the execution stays RUNNING for recovery.
    Shutdown,
}

/// The worker slot of an attempt the claim started.
#[derive(Debug)]
pub(crate) enum Slot {
    /// Held for it by the claim.
    Held(OwnedSemaphorePermit),
    /// Claimed ahead of the free slots (see [`crate::pace`]): its runner
    /// takes the next slot that frees.
    Ahead(pace::Waiting),
}

/// An attempt the claim started, with its worker slot.
pub(crate) type Started = (Attempt, Slot);

/// Drives `exec`, which this node has just claimed (state RUNNING), with its
/// task runs when the claim read them (else they are read here) and the
/// attempts the claim started (see [`start_pick`]).
pub(crate) async fn drive(
    ctx: Arc<Ctx>,
    exec: Execution,
    runs: Option<Vec<TaskRun>>,
    started: Vec<Started>,
) -> Result<End> {
    let workflow = match ctx.definitions.pinned(ctx.store.as_ref(), &exec).await? {
        Ok(w) => w,
        Err(e) => return refuse(&ctx, &exec, runs, e).await,
    };
    let mut driver = Driver::load(ctx, &exec, runs, &workflow).await?;
    driver.adopt(started);
    let mut event = Event::Resume;
    loop {
        let decisions = planner::plan(&driver.snap, &event, now());
        if let Some(end) = driver.apply_all(decisions).await? {
            return Ok(end);
        }
        event = match driver.next_event().await {
            Ok(Some(event)) => event,
            // Stopping, and every attempt has come back.
            Ok(None) => return Ok(driver.stopped()),
            Err(e) => return driver.abort(e).await,
        };
    }
}

/// The claim's [`StartPick`]: for each claimed execution whose workflow
/// version is parsed already, the task runs [`planner::starts_on_claim`]
/// names, at most `budget` in all (the worker slots the engine holds for
/// them). An execution of a version not parsed yet starts its tasks in its
/// driver, as one claimed without a pick does.
pub(crate) fn start_pick(definitions: Arc<Definitions>, budget: usize) -> Arc<StartPick> {
    Arc::new(move |claimed: &[Claimed]| {
        let mut left = budget;
        let at = now();
        claimed
            .iter()
            .map(|c| {
                let (execution, runs) = (&c.execution, &c.runs);
                let Some(workflow) = definitions.cached(execution).filter(|_| left > 0) else {
                    return Vec::new();
                };
                let snap = Snapshot {
                    workflow: &workflow,
                    runs: runs
                        .iter()
                        .map(|r| (r.task_key.clone(), RunView::from(r)))
                        .collect(),
                    in_flight: Default::default(),
                    outputs: HashMap::new(),
                    inputs: Vec::new(),
                    stop: Stop::No,
                };
                let ids: Vec<Uuid> = planner::starts_on_claim(&snap, at)
                    .iter()
                    .filter_map(|key| runs.iter().find(|r| &r.task_key == key))
                    .map(|r| r.id)
                    .take(left)
                    .collect();
                left -= ids.len();
                ids
            })
            .collect()
    })
}

/// A task run's identity and optimistic-lock version, which the planner
/// leaves to the driver.
struct Row {
    id: Uuid,
    version: i64,
}

/// An attempt's end, as its runner hands it back.
struct Ended {
    key: String,
    /// `None` when the runner stopped before starting an attempt.
    attempt: Option<Attempt>,
    /// The task run's version after it moved to RUNNING.
    version: i64,
    outcome: Outcome,
    outputs: Vec<(String, String)>,
}

/// The imperative half of driving one execution.
struct Driver<'w> {
    ctx: Arc<Ctx>,
    id: Uuid,
    exec_version: i64,
    snap: Snapshot<'w>,
    rows: HashMap<String, Row>,
    /// The run views replaced by `Start`, to restore if no attempt starts.
    before_start: HashMap<String, RunView>,
    /// The attempt whose end the planner is deciding on, by task key.
    ending: HashMap<String, Attempt>,
    running: JoinSet<Result<Ended>>,
    stop_tx: watch::Sender<Stop>,
    /// Why the execution was taken away, once it was.
    lost: Option<String>,
    /// Whether it was taken away by a cancel (not by recovery or another node).
    cancelled: bool,
    /// The engine's stop, seen once per change.
    kill: watch::Receiver<Stop>,
    check: tokio::time::Interval,
}

impl<'w> Driver<'w> {
    /// Reads the task runs (unless the claim did), the outputs so far and
    /// the inputs.
    async fn load(
        ctx: Arc<Ctx>,
        exec: &Execution,
        runs: Option<Vec<TaskRun>>,
        workflow: &'w Workflow,
    ) -> Result<Self> {
        let store = ctx.store.clone();
        let runs = match runs {
            Some(runs) => runs,
            None => store.list_task_runs(exec.id).await?,
        };
        let key_of: HashMap<Uuid, String> =
            runs.iter().map(|r| (r.id, r.task_key.clone())).collect();
        let mut outputs: HashMap<String, Vec<(String, String)>> = HashMap::new();
        if runs.iter().any(|r| r.state == TaskState::Succeeded) {
            for o in store.list_outputs(exec.id).await? {
                if let Some(key) = key_of.get(&o.task_run_id) {
                    let entry = outputs.entry(key.clone()).or_default();
                    entry.push((o.key, json_text(&o.value)));
                }
            }
        }
        let inputs = match &exec.input {
            serde_json::Value::Object(map) => {
                map.iter().map(|(k, v)| (k.clone(), json_text(v))).collect()
            }
            _ => Vec::new(),
        };
        let mut check = tokio::time::interval(ctx.poll.max(Duration::from_millis(200)));
        check.tick().await;
        Ok(Driver {
            id: exec.id,
            exec_version: exec.version,
            snap: Snapshot {
                workflow,
                runs: runs
                    .iter()
                    .map(|r| (r.task_key.clone(), RunView::from(r)))
                    .collect(),
                in_flight: Default::default(),
                outputs,
                inputs,
                stop: Stop::No,
            },
            rows: runs
                .into_iter()
                .map(|r| {
                    (
                        r.task_key,
                        Row {
                            id: r.id,
                            version: r.version,
                        },
                    )
                })
                .collect(),
            before_start: HashMap::new(),
            ending: HashMap::new(),
            running: JoinSet::new(),
            stop_tx: watch::channel(Stop::No).0,
            lost: None,
            cancelled: false,
            kill: ctx.kill.clone(),
            check,
            ctx,
        })
    }

    /// Runs the attempts the claim started: their task runs are RUNNING
    /// already (the claim's read says so), in flight from here on, each with
    /// the environment the planner gives it.
    ///
    /// The pick names only tasks of this workflow; an attempt of any other
    /// is left alone, and its task run, RUNNING with nothing in flight, is
    /// failed ABANDONED by the planner's repairs on resume.
    fn adopt(&mut self, started: Vec<Started>) {
        for (attempt, permit) in started {
            let Some((key, _)) = self.rows.iter().find(|(_, r)| r.id == attempt.task_run_id) else {
                continue;
            };
            let key = key.clone();
            let Some(task) = self.snap.workflow.task(&key) else {
                continue;
            };
            let env = planner::environment(&self.snap, task);
            self.snap.in_flight.insert(key.clone());
            self.spawn(&key, env, Some((attempt, permit)));
        }
    }

    /// Applies the decisions in order; `Some` when the execution has ended
    /// or been parked. The writes of consecutive decisions land in one
    /// transaction (an attempt's end, the skips it causes and the
    /// execution's end: one commit), flushed before anything that acts
    /// outside the store. A conflict means someone else moved it: lost.
    async fn apply_all(&mut self, decisions: Vec<Decision>) -> Result<Option<End>> {
        let mut batch = Batch::default();
        for d in decisions {
            if self.batch(&d, &mut batch) {
                batch.decisions.push(d);
                continue;
            }
            if let Some(end) = self.flush(&mut batch).await? {
                return Ok(Some(end));
            }
            self.act(&d).await;
            self.snap.apply(&d);
        }
        self.flush(&mut batch).await
    }

    /// Adds the writes of `d` to `batch`; false for a decision that acts
    /// outside the store (or whose writes may fail alone).
    fn batch(&mut self, d: &Decision, batch: &mut Batch) -> bool {
        let writes = match d {
            Decision::Abandon { key, to, reason } => vec![self.move_task(key, *to, *reason)],
            Decision::RetryAfterCrash { key } => {
                let mut t = self.task_move(key, TaskState::Waiting, Reason::CrashRecovery);
                t.next_attempt_at = Some(now());
                vec![Write::MoveTask(t)]
            }
            Decision::Skip { key, reason } => {
                vec![self.move_task(key, TaskState::Skipped, *reason)]
            }
            Decision::EndAttempt { task_state, .. } if *task_state == TaskState::Cancelled => {
                return false
            }
            Decision::EndAttempt {
                key,
                result,
                task_state,
                reason,
                retry_at,
                outputs,
                ..
            } => self.end_attempt(key, result, (*task_state, *reason, *retry_at), outputs),
            Decision::Park { wake_at } => {
                let mut t = ExecutionTransition::new(ExecutionState::Waiting, self.exec_version);
                t.wake_at = Some(*wake_at);
                vec![self.move_execution(t)]
            }
            Decision::Finish {
                state,
                reason,
                error,
            } => {
                let mut t = ExecutionTransition::new(*state, self.exec_version);
                t.reason = *reason;
                t.error = error.clone();
                vec![self.move_execution(t)]
            }
            Decision::Start { .. } | Decision::Cancel { .. } | Decision::Release => return false,
        };
        batch.writes.extend(writes);
        true
    }

    /// Lands the batched writes in one transaction, then applies their
    /// decisions to the snapshot; `Some` when one of them ended driving.
    async fn flush(&mut self, batch: &mut Batch) -> Result<Option<End>> {
        if batch.decisions.is_empty() {
            return Ok(None);
        }
        let writes = std::mem::take(&mut batch.writes);
        let store = self.ctx.store.clone();
        let recorded = match &self.ctx.recorder {
            Some(recorder) => recorder.record(writes.clone()).await,
            None => None,
        };
        let applied = match recorded {
            Some(versions) => Ok(versions),
            None => {
                through_outage(&self.ctx, "record", || store.apply_writes(writes.clone())).await
            }
        };
        if let Err(e) = applied {
            return self.abort(e.into()).await.map(Some);
        }
        let mut end = None;
        for d in std::mem::take(&mut batch.decisions) {
            match &d {
                Decision::EndAttempt { result, .. } => {
                    metrics::counter!("flowstate_attempts_finished_total", "state" => result.state.as_str())
                        .increment(1);
                }
                Decision::Park { wake_at } => end = Some(End::Waiting(*wake_at)),
                Decision::Finish { state, .. } => {
                    finished(self.id, *state);
                    end = Some(End::Finished(*state));
                }
                _ => {}
            }
            self.snap.apply(&d);
        }
        Ok(end)
    }

    /// Carries out a decision that acts outside the store.
    async fn act(&mut self, d: &Decision) {
        match d {
            Decision::Start { key, env } => self.start(key, env.clone()),
            Decision::EndAttempt { key, result, .. } => self.end_cancelled(key, result).await,
            Decision::Cancel { runs } => self.cancel(runs).await,
            // Queued attempts do not start; running ones go on.
            Decision::Release => {
                let _ = self.stop_tx.send(Stop::Drain);
            }
            _ => {}
        }
    }

    /// The move of a task run to `to`, from the version the driver holds,
    /// which it counts up: a batch that fails ends driving.
    fn move_task(&mut self, key: &str, to: TaskState, reason: Reason) -> Write {
        Write::MoveTask(self.task_move(key, to, reason))
    }

    /// The transition of [`move_task`](Self::move_task).
    fn task_move(&mut self, key: &str, to: TaskState, reason: Reason) -> TaskTransition {
        let row = self
            .rows
            .get_mut(key)
            .expect("a task run of this execution");
        let mut t = TaskTransition::new(row.id, to, row.version);
        t.reason = Some(reason);
        row.version += 1;
        t
    }

    fn move_execution(&mut self, transition: ExecutionTransition) -> Write {
        self.exec_version += 1;
        Write::MoveExecution {
            id: self.id,
            transition,
        }
    }

    /// Spawns the runner of the task's next attempt.
    fn start(&mut self, key: &str, env: Vec<(String, String)>) {
        if let Some(view) = self.snap.runs.get(key) {
            self.before_start.insert(key.to_owned(), view.clone());
        }
        self.spawn(key, env, None);
    }

    /// Spawns the runner of an attempt of `key`: the one `started`, or the
    /// next one, which the runner starts.
    fn spawn(&mut self, key: &str, env: Vec<(String, String)>, started: Option<Started>) {
        let row = &self.rows[key];
        let job = Job {
            ctx: self.ctx.clone(),
            execution_id: self.id,
            task: self.snap.workflow.task(key).expect("planned").clone(),
            run_id: row.id,
            version: row.version,
            env,
            stop: self.stop_tx.subscribe(),
            started,
        };
        self.running.spawn(job.run());
    }

    /// The writes that record an ended attempt: the retry notice in its
    /// log, its outputs, its end and its task run's move (`to`).
    fn end_attempt(
        &mut self,
        key: &str,
        result: &AttemptResult,
        to: (TaskState, Option<Reason>, Option<DateTime<Utc>>),
        outputs: &[(String, String)],
    ) -> Vec<Write> {
        let attempt = self.ending.remove(key).expect("the attempt that ended");
        let row = self
            .rows
            .get_mut(key)
            .expect("a task run of this execution");
        let (to, reason, retry_at) = to;
        let mut t = TaskTransition::new(row.id, to, row.version);
        t.reason = reason;
        t.next_attempt_at = retry_at;
        row.version += 1;
        let mut writes = Vec::with_capacity(4);
        if retry_at.is_some() {
            let task = self.snap.workflow.task(key).expect("planned");
            let line = format!(
                "attempt {} failed ({}); retrying in {}",
                attempt.number,
                result.error.clone().unwrap_or_default(),
                crate::duration::format_duration(task.backoff(attempt.number + 1))
            );
            let target = LogTarget {
                execution_id: self.id,
                task_run_id: Some(row.id),
                attempt: Some(attempt.number),
            };
            writes.push(Write::AppendLogs(vec![logs::system_line(target, line)]));
        }
        if !outputs.is_empty() {
            writes.push(Write::PutOutputs {
                execution_id: self.id,
                task_run_id: row.id,
                values: outputs
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect(),
            });
        }
        writes.push(Write::FinishAttempt {
            attempt_id: attempt.id,
            result: result.clone(),
        });
        writes.push(Write::MoveTask(t));
        writes
    }

    /// Records a cancelled attempt as far as it can be: the canceller has
    /// moved the task run already, so a conflict is expected and ignored.
    async fn end_cancelled(&mut self, key: &str, result: &AttemptResult) {
        metrics::counter!("flowstate_attempts_finished_total", "state" => result.state.as_str())
            .increment(1);
        let attempt = self.ending.remove(key).expect("the attempt that ended");
        let store = self.ctx.store.clone();
        let _ = store.finish_attempt(attempt.id, result.clone()).await;
        let row = &self.rows[key];
        let mut t = TaskTransition::new(row.id, TaskState::Cancelled, row.version);
        t.reason = Some(Reason::Cancelled);
        let _ = store.transition_task(t).await;
    }

    /// Stops the attempts in flight. After a cancel, also cancels the task
    /// runs not in flight (`Engine::cancel` has usually moved them already,
    /// so a conflict is expected and ignored). An execution taken by
    /// recovery or another node keeps its task runs as they are.
    async fn cancel(&mut self, runs: &[String]) {
        let _ = self.stop_tx.send(Stop::Cancel);
        if !self.cancelled {
            return;
        }
        for key in runs {
            let t = self.task_move(key, TaskState::Cancelled, Reason::Cancelled);
            if let Ok(version) = self.ctx.store.transition_task(t).await {
                self.rows.get_mut(key).expect("a task run").version = version;
            }
        }
    }

    /// Waits for the next event: an attempt ended, a retry is due, the
    /// execution changed hands, or the engine is shutting down. `None` once
    /// the execution is stopping and every attempt has come back.
    async fn next_event(&mut self) -> Result<Option<Event>> {
        loop {
            if self.snap.stop != Stop::No && self.running.is_empty() {
                // Draining with nothing left: the planner ends or hands back.
                let idle = self.snap.stop == Stop::Drain && self.snap.in_flight.is_empty();
                return Ok(idle.then_some(Event::ShutdownRequested));
            }
            let retry = planner::next_wake(&self.snap).filter(|_| self.snap.stop == Stop::No);
            let retry_sleep = async {
                match retry {
                    Some(at) => tokio::time::sleep((at - now()).to_std().unwrap_or_default()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some(joined) = self.running.join_next() => {
                    let ended = joined.map_err(|e| EngineError::Io {
                        context: "a task runner panicked".into(),
                        source: std::io::Error::other(e.to_string()),
                    })??;
                    if let Some(event) = self.ended(ended) {
                        return Ok(Some(event));
                    }
                }
                _ = retry_sleep => return Ok(Some(Event::Timer)),
                _ = self.check.tick() => {
                    if let Some(event) = self.still_ours().await? {
                        return Ok(Some(event));
                    }
                }
                Ok(()) = self.kill.changed() => {
                    let engine = *self.kill.borrow_and_update();
                    // The grace is over: running processes are stopped.
                    if engine == Stop::Shutdown {
                        let _ = self.stop_tx.send(Stop::Shutdown);
                    }
                    if engine != Stop::No && self.snap.stop == Stop::No {
                        return Ok(Some(Event::ShutdownRequested));
                    }
                }
            }
        }
    }

    /// The event for a runner that came back; `None` when it started no
    /// attempt (the execution was stopping), which only undoes its `Start`.
    fn ended(&mut self, ended: Ended) -> Option<Event> {
        let key = ended.key;
        if let Some(row) = self.rows.get_mut(&key) {
            row.version = ended.version;
        }
        let Some(attempt) = ended.attempt else {
            self.snap.in_flight.remove(&key);
            if let Some(view) = self.before_start.remove(&key) {
                self.snap.runs.insert(key, view);
            }
            return None;
        };
        let number = attempt.number;
        self.ending.insert(key.clone(), attempt);
        Some(Event::TaskEnded {
            key,
            attempt: number,
            outcome: ended.outcome,
            outputs: ended.outputs,
        })
    }

    /// `None` while the execution is still RUNNING under this node; else
    /// the cancel that stops its attempts, remembering why.
    async fn still_ours(&mut self) -> Result<Option<Event>> {
        let current = match self.ctx.store.get_execution(self.id).await {
            Ok(current) => current,
            // Asked again at the next tick; the writes wait for the database.
            Err(e) if e.is_unavailable() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if current.state == ExecutionState::Running
            && current.owner.as_deref() == Some(self.ctx.node.as_str())
        {
            self.exec_version = current.version;
            return Ok(None);
        }
        self.cancelled = current.state == ExecutionState::Cancelled;
        self.lost = Some(format!(
            "execution is now {} (owner {:?})",
            current.state, current.owner
        ));
        Ok(Some(Event::CancelRequested))
    }

    /// How driving ends once stopping is done and nothing runs.
    fn stopped(&mut self) -> End {
        match (self.snap.stop, self.lost.take()) {
            (Stop::Drain | Stop::Shutdown, _) => End::Shutdown,
            (_, Some(why)) => End::Lost(why),
            _ => End::Lost("the execution was cancelled".into()),
        }
    }

    /// Stops every attempt and waits for them after a failed write: a
    /// conflict means someone else moved the execution (lost), anything
    /// else is an error.
    async fn abort(&mut self, e: EngineError) -> Result<End> {
        let _ = self.stop_tx.send(Stop::Cancel);
        while self.running.join_next().await.is_some() {}
        match e {
            EngineError::Store(
                e @ (StoreError::Conflict { .. } | StoreError::InvalidTransition { .. }),
            ) => Ok(End::Lost(e.to_string())),
            other => Err(other),
        }
    }
}

/// Fails an execution whose definition does not parse, skipping its task
/// runs in the same transaction: none is left PENDING under a FAILED
/// execution.
async fn refuse(
    ctx: &Ctx,
    exec: &Execution,
    runs: Option<Vec<TaskRun>>,
    error: String,
) -> Result<End> {
    let runs = match runs {
        Some(runs) => runs,
        None => ctx.store.list_task_runs(exec.id).await?,
    };
    let mut writes: Vec<Write> = runs
        .iter()
        .filter(|r| matches!(r.state, TaskState::Pending | TaskState::Waiting))
        .map(|r| {
            let mut t = TaskTransition::new(r.id, TaskState::Skipped, r.version);
            t.reason = Some(Reason::InvalidDefinition);
            Write::MoveTask(t)
        })
        .collect();
    let mut t = ExecutionTransition::new(ExecutionState::Failed, exec.version);
    t.reason = Some(Reason::InvalidDefinition);
    t.error = Some(error);
    writes.push(Write::MoveExecution {
        id: exec.id,
        transition: t,
    });
    match ctx.store.apply_writes(writes).await {
        Ok(_) => {
            finished(exec.id, ExecutionState::Failed);
            Ok(End::Finished(ExecutionState::Failed))
        }
        Err(e @ (StoreError::Conflict { .. } | StoreError::InvalidTransition { .. })) => {
            Ok(End::Lost(e.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Runs `op` again while the database is unavailable (down, restarting,
/// connections killed), with pauses growing from 100 ms to 2 s, for at most
/// the lease: the driver keeps what it holds in memory (an attempt's
/// outcome) and records it once the database is back. Past the lease the
/// error goes up; the execution, no longer renewed, is then the sweep's.
async fn through_outage<T, F, Fut>(
    ctx: &Ctx,
    what: &str,
    mut op: F,
) -> std::result::Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, StoreError>>,
{
    let deadline = tokio::time::Instant::now() + ctx.lease;
    let mut pause = Duration::from_millis(100);
    let mut warned = false;
    loop {
        match op().await {
            Err(e) if waits_for_room(ctx, &e) && tokio::time::Instant::now() + pause < deadline => {
                if !warned {
                    tracing::warn!(error = %e, "the database is unavailable; will {what} when it is back");
                    warned = true;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            other => return other,
        }
    }
}

/// Whether `e` may go away by waiting: the database is unavailable, or
/// full (noticed, so the engine stops claiming meanwhile).
fn waits_for_room(ctx: &Ctx, e: &StoreError) -> bool {
    if matches!(e, StoreError::StorageFull(_)) {
        ctx.full.notice();
        return true;
    }
    e.is_unavailable()
}

/// Counts and logs an execution's end.
fn finished(id: Uuid, state: ExecutionState) {
    metrics::counter!("flowstate_executions_finished_total", "state" => state.as_str())
        .increment(1);
    tracing::info!(execution = %id, %state, "execution finished");
}

/// The writes of consecutive decisions, landed together by
/// [`Driver::flush`].
#[derive(Default)]
struct Batch {
    writes: Vec<Write>,
    decisions: Vec<Decision>,
}

/// A JSON value as an environment variable's text: strings bare, the rest as JSON.
fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One attempt of one task, from taking a worker to the process's end.
struct Job {
    ctx: Arc<Ctx>,
    execution_id: Uuid,
    task: Task,
    run_id: Uuid,
    version: i64,
    env: Vec<(String, String)>,
    stop: watch::Receiver<Stop>,
    /// The attempt when the claim started it, with its worker slot.
    started: Option<Started>,
}

impl Job {
    /// Moves the task run to RUNNING and starts the attempt (unless the
    /// claim did), runs the process and reads its outputs. Recording the end
    /// is the driver's (it asks the planner how the attempt moves the task
    /// run).
    async fn run(mut self) -> Result<Ended> {
        let (attempt, version, permit) = match self.started.take() {
            Some((attempt, Slot::Held(permit))) => (attempt, self.version, permit),
            Some((attempt, Slot::Ahead(waiting))) => {
                let permit = self.slot().await;
                drop(waiting);
                (attempt, self.version, permit)
            }
            None => match self.start().await? {
                Ok(started) => started,
                Err(stop) => return Ok(self.not_started(stop)),
            },
        };
        // The slot is free once the process has ended: the driver's end,
        // which the claim loop records, claims for it.
        let _slot = permit;
        metrics::counter!("flowstate_attempts_started_total").increment(1);
        let target = LogTarget {
            execution_id: self.execution_id,
            task_run_id: Some(self.run_id),
            attempt: Some(attempt.number),
        };
        let (outcome, outputs) = self.process(&attempt, target).await?;
        Ok(Ended {
            key: self.task.id.clone(),
            attempt: Some(attempt),
            version,
            outcome,
            outputs,
        })
    }

    /// Takes a worker slot, then moves the task run to RUNNING and starts
    /// its next attempt; the stop instead when the execution is stopping.
    async fn start(
        &self,
    ) -> Result<std::result::Result<(Attempt, i64, OwnedSemaphorePermit), Stop>> {
        let permit = self.slot().await;
        let stop = *self.stop.borrow();
        if stop != Stop::No {
            return Ok(Err(stop));
        }
        // The attempt row records its start: no log line for it.
        let store = self.ctx.store.clone();
        let start = TaskTransition::new(self.run_id, TaskState::Running, self.version);
        let (attempt, version) = through_outage(&self.ctx, "start an attempt", || {
            store.start_run_attempt(start.clone())
        })
        .await?;
        Ok(Ok((attempt, version, permit)))
    }

    /// A worker slot, waited for.
    async fn slot(&self) -> OwnedSemaphorePermit {
        self.ctx
            .workers
            .clone()
            .acquire_owned()
            .await
            .expect("the worker pool is never closed")
    }

    fn not_started(&self, stop: Stop) -> Ended {
        Ended {
            key: self.task.id.clone(),
            attempt: None,
            version: self.version,
            outcome: Outcome::Stopped(stop),
            outputs: Vec::new(),
        }
    }

    /// Runs the shell with the attempt's environment and, when it exits 0,
    /// reads the outputs it wrote to `$FLOWSTATE_OUTPUT`.
    async fn process(
        &self,
        attempt: &Attempt,
        target: LogTarget,
    ) -> Result<(Outcome, Vec<(String, String)>)> {
        let store = self.ctx.store.clone();
        let output_file = self.ctx.outputs.path(attempt.id)?;
        let mut env = self.env.clone();
        env.push((
            "FLOWSTATE_EXECUTION_ID".into(),
            self.execution_id.to_string(),
        ));
        env.push(("FLOWSTATE_TASK".into(), self.task.id.clone()));
        env.push(("FLOWSTATE_ATTEMPT".into(), attempt.number.to_string()));
        env.push(("FLOWSTATE_OUTPUT".into(), output_file.display().to_string()));
        let spec = Spec {
            command: self.task.run.clone(),
            env,
            timeout: self.task.timeout(),
            workdir: None,
        };
        let (lines, writer) = logs::writer(store.clone(), target);
        let began = std::time::Instant::now();
        let mut outcome = process::run(spec, lines, self.stop.clone()).await;
        if matches!(
            outcome,
            Outcome::Exited(_) | Outcome::Signaled(_) | Outcome::TimedOut
        ) {
            self.ctx.pace.ran(began.elapsed());
        }
        let written = writer.await.unwrap_or_default();
        if written.lost_to_full > 0 {
            self.ctx.full.notice();
            if matches!(outcome, Outcome::Exited(_) | Outcome::Signaled(_)) {
                outcome = Outcome::StorageFull(written.lost_to_full);
            }
        }
        let outputs = if outcome == Outcome::Exited(0) {
            read_outputs(&output_file, store.as_ref(), target).await
        } else {
            outputs::discard(&output_file);
            Vec::new()
        };
        Ok((outcome, outputs))
    }
}

/// `key=value` lines from the task's output file, which is removed; other
/// lines are reported in the task's log and skipped.
async fn read_outputs(
    path: &std::path::Path,
    store: &dyn StateStore,
    target: LogTarget,
) -> Vec<(String, String)> {
    let Some(text) = outputs::take(path) else {
        return Vec::new();
    };
    let (values, ignored) = outputs::parse(&text);
    for line in ignored {
        let line = format!("ignored output line (want key=value): {line}");
        logs::system(store, target, line).await;
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    fn execution() -> Execution {
        let ts = now();
        Execution {
            id: Uuid::now_v7(),
            workflow_id: Uuid::now_v7(),
            workflow_version: 1,
            state: ExecutionState::Running,
            reason: None,
            error: None,
            input: serde_json::json!({}),
            version: 2,
            owner: Some("n".into()),
            lease_expires_at: Some(ts),
            wake_at: None,
            created_at: ts,
            updated_at: ts,
            started_at: Some(ts),
            finished_at: None,
            retry_of: None,
        }
    }

    fn runs(exec: &Execution, keys: &[(&str, TaskState)]) -> Vec<TaskRun> {
        let ts = now();
        keys.iter()
            .enumerate()
            .map(|(i, (key, state))| TaskRun {
                id: Uuid::now_v7(),
                execution_id: exec.id,
                task_key: key.to_string(),
                position: i as i32,
                state: *state,
                reason: None,
                version: 1,
                attempt_count: 0,
                next_attempt_at: None,
                created_at: ts,
                updated_at: ts,
                started_at: None,
                finished_at: None,
            })
            .collect()
    }

    /// a and b are roots, c needs a.
    fn workflow() -> Workflow {
        let text = "name: w\ntasks:\n  - id: a\n    run: 'true'\n  - id: b\n    run: 'true'\n  - id: c\n    run: 'true'\n    needs: [a]\n";
        Workflow::from_yaml(text, std::path::Path::new("w.yaml")).unwrap()
    }

    #[test]
    fn a_pick_starts_ready_tasks_of_parsed_versions_within_the_budget() {
        use TaskState::{Pending, Running, Succeeded};
        let definitions = Arc::new(Definitions::default());
        let (fresh, half, stale, unknown) = (execution(), execution(), execution(), execution());
        for e in [&fresh, &half, &stale] {
            definitions.put(e, Ok(Arc::new(workflow())));
        }
        let claimed = vec![
            (
                fresh.clone(),
                runs(&fresh, &[("a", Pending), ("b", Pending), ("c", Pending)]),
            ),
            (
                half.clone(),
                runs(&half, &[("a", Succeeded), ("b", Succeeded), ("c", Pending)]),
            ),
            // Left RUNNING by a crash: the driver repairs it first.
            (
                stale.clone(),
                runs(&stale, &[("a", Running), ("b", Pending), ("c", Pending)]),
            ),
            // Its version was never parsed here: nothing is read in a claim.
            (unknown.clone(), runs(&unknown, &[("a", Pending)])),
        ];
        let claimed: Vec<Claimed> = claimed
            .into_iter()
            .map(|(execution, runs)| Claimed {
                execution,
                runs,
                started: Vec::new(),
            })
            .collect();
        let ids = |i: usize, keys: &[&str]| -> Vec<Uuid> {
            let runs = &claimed[i].runs;
            keys.iter()
                .map(|k| runs.iter().find(|r| r.task_key == *k).unwrap().id)
                .collect()
        };
        let cases: Vec<(usize, Vec<Vec<Uuid>>)> = vec![
            (0, vec![vec![], vec![], vec![], vec![]]),
            (1, vec![ids(0, &["a"]), vec![], vec![], vec![]]),
            (3, vec![ids(0, &["a", "b"]), ids(1, &["c"]), vec![], vec![]]),
            (9, vec![ids(0, &["a", "b"]), ids(1, &["c"]), vec![], vec![]]),
        ];
        for (budget, want) in cases {
            let pick = start_pick(definitions.clone(), budget);
            assert_eq!(pick(&claimed), want, "budget {budget}");
            // Called again (a retried transaction), it picks the same.
            assert_eq!(pick(&claimed), want, "budget {budget}, again");
        }
    }
}
