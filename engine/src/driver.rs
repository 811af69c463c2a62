//! Driving one claimed execution: start the tasks whose needs succeeded,
//! record every attempt and transition, retry with back-off, and end the
//! execution (or park it WAITING until its next retry is due).
//!
//! Everything a restart needs is in the database: the driver reads the task
//! runs when it starts and keeps only their last versions in memory.

use crate::error::{EngineError, Result};
use crate::logs::{self, LogTarget};
use crate::process::{self, Outcome, Spec, Stop};
use crate::workflow::{Task, Workflow};
use chrono::{DateTime, Utc};
use flowstate_store::types::*;
use flowstate_store::{now, StateStore, StoreError};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// What a driver needs from its engine.
pub(crate) struct Ctx {
    pub store: Arc<dyn StateStore>,
    pub node: String,
    pub workers: Arc<Semaphore>,
    pub poll: Duration,
    /// Becomes [`Stop::Shutdown`] when running attempts must be abandoned.
    pub kill: watch::Receiver<Stop>,
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

/// Drives `exec`, which this node has just claimed (state RUNNING).
pub(crate) async fn drive(ctx: Arc<Ctx>, exec: Execution) -> Result<End> {
    let store = ctx.store.clone();
    let mut exec_version = exec.version;
    let definition = pinned_definition(store.as_ref(), &exec).await?;
    let workflow = match Workflow::from_definition(&definition) {
        Ok(w) => w,
        Err(e) => {
            return finish(
                &ctx,
                &exec,
                exec_version,
                ExecutionState::Failed,
                Some(Reason::InvalidDefinition),
                e.to_string(),
            )
            .await;
        }
    };
    let mut runs: HashMap<String, TaskRun> = store
        .list_task_runs(exec.id)
        .await?
        .into_iter()
        .map(|r| (r.task_key.clone(), r))
        .collect();
    let key_of: HashMap<uuid::Uuid, String> =
        runs.values().map(|r| (r.id, r.task_key.clone())).collect();
    let mut outputs: HashMap<String, Vec<(String, String)>> = HashMap::new();
    let any_done = runs.values().any(|r| r.state == TaskState::Succeeded);
    for o in if any_done {
        store.list_outputs(exec.id).await?
    } else {
        Vec::new()
    } {
        if let Some(key) = key_of.get(&o.task_run_id) {
            outputs
                .entry(key.clone())
                .or_default()
                .push((o.key, json_text(&o.value)));
        }
    }
    let input_env: Vec<(String, String)> = match &exec.input {
        serde_json::Value::Object(map) => {
            map.iter().map(|(k, v)| (k.clone(), json_text(v))).collect()
        }
        _ => Vec::new(),
    };

    // Task runs the workflow no longer defines, or left RUNNING by an attempt
    // nobody is watching any more, cannot go on.
    for run in runs.values_mut() {
        let defined = workflow.task(&run.task_key).is_some();
        if run.state == TaskState::Running || (!defined && !run.state.is_terminal()) {
            let reason = if defined {
                Reason::Abandoned
            } else {
                Reason::TaskRemoved
            };
            let mut t = TaskTransition::new(run.id, TaskState::Failed, run.version);
            t.reason = Some(reason);
            if run.state == TaskState::Pending {
                t.to = TaskState::Skipped;
            }
            run.version = store.transition_task(t.clone()).await?;
            run.state = t.to;
        }
    }

    let (stop_tx, stop_rx) = watch::channel(Stop::No);
    let mut kill = ctx.kill.clone();
    let mut running: JoinSet<(String, Result<Finished>)> = JoinSet::new();
    let mut in_flight: HashSet<String> = HashSet::new();
    let mut check = tokio::time::interval(ctx.poll.max(Duration::from_millis(200)));
    check.tick().await;

    loop {
        let ts = now();
        let mut ready: Vec<&Task> = Vec::new();
        for task in &workflow.tasks {
            let Some(run) = runs.get(&task.id) else {
                continue;
            };
            if in_flight.contains(&task.id) {
                continue;
            }
            match run.state {
                TaskState::Pending => {
                    let needs: Vec<Option<TaskState>> = task
                        .needs
                        .iter()
                        .map(|n| runs.get(n).map(|r| r.state))
                        .collect();
                    let blocked = needs.iter().any(|s| {
                        matches!(
                            s,
                            None | Some(
                                TaskState::Failed | TaskState::Skipped | TaskState::Cancelled
                            )
                        )
                    });
                    if blocked {
                        let mut t = TaskTransition::new(run.id, TaskState::Skipped, run.version);
                        t.reason = Some(Reason::UpstreamFailed);
                        let v = store.transition_task(t).await?;
                        let run = runs.get_mut(&task.id).expect("present");
                        run.version = v;
                        run.state = TaskState::Skipped;
                    } else if needs.iter().all(|s| *s == Some(TaskState::Succeeded)) {
                        ready.push(task);
                    }
                }
                TaskState::Waiting if run.next_attempt_at.is_none_or(|at| at <= ts) => {
                    ready.push(task)
                }
                _ => {}
            }
        }
        for task in ready {
            let run = runs[&task.id].clone();
            let mut env = input_env.clone();
            for need in &task.needs {
                for (k, v) in outputs.get(need).into_iter().flatten() {
                    env.push((k.clone(), v.clone()));
                    env.push((format!("{}_{}", env_name(need), env_name(k)), v.clone()));
                }
            }
            env.extend(task.env.iter().map(|(k, v)| (k.clone(), v.clone())));
            in_flight.insert(task.id.clone());
            let job = Job {
                ctx: ctx.clone(),
                execution_id: exec.id,
                task: task.clone(),
                run,
                env,
                stop: stop_rx.clone(),
            };
            running.spawn(async move { (job.task.id.clone(), job.run().await) });
        }

        if running.is_empty() {
            if runs.values().all(|r| r.state.is_terminal()) {
                let failed: Vec<&TaskRun> = runs
                    .values()
                    .filter(|r| r.state != TaskState::Succeeded)
                    .collect();
                return if failed.is_empty() {
                    finish(
                        &ctx,
                        &exec,
                        exec_version,
                        ExecutionState::Succeeded,
                        None,
                        String::new(),
                    )
                    .await
                } else {
                    let mut names: Vec<String> = failed
                        .iter()
                        .filter(|r| r.state == TaskState::Failed)
                        .map(|r| {
                            format!(
                                "{} ({})",
                                r.task_key,
                                r.reason.map_or("FAILED", |r| r.as_str())
                            )
                        })
                        .collect();
                    names.sort();
                    let error = format!("failed tasks: {}", names.join(", "));
                    finish(
                        &ctx,
                        &exec,
                        exec_version,
                        ExecutionState::Failed,
                        Some(Reason::TaskFailed),
                        error,
                    )
                    .await
                };
            }
            let wake = runs
                .values()
                .filter(|r| r.state == TaskState::Waiting)
                .filter_map(|r| r.next_attempt_at)
                .min();
            let Some(wake) = wake else {
                return finish(
                    &ctx,
                    &exec,
                    exec_version,
                    ExecutionState::Failed,
                    Some(Reason::Stuck),
                    "no task can run".into(),
                )
                .await;
            };
            // Release the slot until the retry is due; any engine may take it then.
            let mut t = ExecutionTransition::new(ExecutionState::Waiting, exec_version);
            t.wake_at = Some(wake);
            return match store.transition_execution(exec.id, t).await {
                Ok(_) => Ok(End::Waiting(wake)),
                Err(e) => lost(e),
            };
        }

        let next_retry = runs
            .iter()
            .filter(|(k, r)| r.state == TaskState::Waiting && !in_flight.contains(*k))
            .filter_map(|(_, r)| r.next_attempt_at)
            .min();
        let retry_sleep = async {
            match next_retry {
                Some(at) => {
                    let wait = (at - now()).to_std().unwrap_or_default();
                    tokio::time::sleep(wait).await
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            joined = running.join_next() => {
                if let Some(joined) = joined {
                    let (key, result) = joined.map_err(|e| EngineError::Io {
                        context: "a task runner panicked".into(),
                        source: std::io::Error::other(e.to_string()),
                    })?;
                    in_flight.remove(&key);
                    match result {
                        Ok(Finished { run, outputs: mine }) => {
                            if run.state == TaskState::Succeeded {
                                outputs.insert(key.clone(), mine);
                            }
                            runs.insert(key, run);
                        }
                        Err(EngineError::Store(e @ (StoreError::Conflict { .. } | StoreError::InvalidTransition { .. }))) => {
                            let _ = stop_tx.send(Stop::Cancel);
                            drain(&mut running).await;
                            return Ok(End::Lost(e.to_string()));
                        }
                        Err(e) => {
                            let _ = stop_tx.send(Stop::Cancel);
                            drain(&mut running).await;
                            return Err(e);
                        }
                    }
                }
            }
            _ = retry_sleep => {}
            _ = check.tick() => {
                let current = store.get_execution(exec.id).await?;
                if current.state != ExecutionState::Running || current.owner.as_deref() != Some(ctx.node.as_str()) {
                    let _ = stop_tx.send(Stop::Cancel);
                    drain(&mut running).await;
                    return Ok(End::Lost(format!("execution is now {} (owner {:?})", current.state, current.owner)));
                }
                exec_version = current.version;
            }
            _ = kill.changed() => {
                if *kill.borrow() == Stop::Shutdown {
                    let _ = stop_tx.send(Stop::Shutdown);
                    drain(&mut running).await;
                    return Ok(End::Shutdown);
                }
            }
        }
    }
}

/// The definition `exec` was submitted with. Executions submitted before
/// versions were kept (no `workflow_versions` row) run the current one.
async fn pinned_definition(store: &dyn StateStore, exec: &Execution) -> Result<serde_json::Value> {
    match store
        .get_workflow_version(exec.workflow_id, exec.workflow_version)
        .await
    {
        Ok(v) => Ok(v.definition),
        Err(StoreError::NotFound { .. }) => {
            let current = store.get_workflow(exec.workflow_id).await?;
            if current.version != exec.workflow_version {
                tracing::warn!(
                    execution = %exec.id,
                    submitted = exec.workflow_version,
                    current = current.version,
                    "the version this execution was submitted with is not stored; running the current one"
                );
            }
            Ok(current.definition)
        }
        Err(e) => Err(e.into()),
    }
}

async fn drain(running: &mut JoinSet<(String, Result<Finished>)>) {
    while running.join_next().await.is_some() {}
}

fn lost(e: StoreError) -> Result<End> {
    match e {
        StoreError::Conflict { .. } | StoreError::InvalidTransition { .. } => {
            Ok(End::Lost(e.to_string()))
        }
        other => Err(other.into()),
    }
}

async fn finish(
    ctx: &Ctx,
    exec: &Execution,
    version: i64,
    state: ExecutionState,
    reason: Option<Reason>,
    error: String,
) -> Result<End> {
    let mut t = ExecutionTransition::new(state, version);
    if reason.is_some() {
        t.reason = reason;
        t.error = Some(error);
    }
    match ctx.store.transition_execution(exec.id, t).await {
        Ok(_) => {
            metrics::counter!("flowstate_executions_finished_total", "state" => state.as_str())
                .increment(1);
            tracing::info!(execution = %exec.id, %state, "execution finished");
            Ok(End::Finished(state))
        }
        Err(e) => lost(e),
    }
}

/// A JSON value as an environment variable's text: strings bare, the rest as JSON.
fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An environment variable name made of `s`: upper case, `_` for the rest.
fn env_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// A task run as its attempt left it, with the outputs it published.
struct Finished {
    run: TaskRun,
    outputs: Vec<(String, String)>,
}

/// One attempt of one task, start to recorded end.
struct Job {
    ctx: Arc<Ctx>,
    execution_id: uuid::Uuid,
    task: Task,
    run: TaskRun,
    env: Vec<(String, String)>,
    stop: watch::Receiver<Stop>,
}

impl Job {
    async fn run(self) -> Result<Finished> {
        let store = self.ctx.store.clone();
        let _permit = self
            .ctx
            .workers
            .clone()
            .acquire_owned()
            .await
            .expect("the worker pool is never closed");
        if *self.stop.borrow() != Stop::No {
            return Ok(Finished {
                run: self.run,
                outputs: Vec::new(),
            });
        }
        let running_version = store
            .transition_task(TaskTransition::new(
                self.run.id,
                TaskState::Running,
                self.run.version,
            ))
            .await?;
        let attempt = store.start_attempt(self.run.id).await?;
        metrics::counter!("flowstate_attempts_started_total").increment(1);
        let target = LogTarget {
            execution_id: self.execution_id,
            task_run_id: Some(self.run.id),
            attempt: Some(attempt.number),
        };
        logs::system(
            store.as_ref(),
            target,
            format!(
                "attempt {} of {} started",
                attempt.number,
                self.task.retries + 1
            ),
        )
        .await;

        let output_file = tempfile::NamedTempFile::new()
            .map_err(EngineError::io("create the task's output file"))?;
        let mut env = self.env.clone();
        env.push((
            "FLOWSTATE_EXECUTION_ID".into(),
            self.execution_id.to_string(),
        ));
        env.push(("FLOWSTATE_TASK".into(), self.task.id.clone()));
        env.push(("FLOWSTATE_ATTEMPT".into(), attempt.number.to_string()));
        env.push((
            "FLOWSTATE_OUTPUT".into(),
            output_file.path().display().to_string(),
        ));
        let spec = Spec {
            command: self.task.run.clone(),
            env,
            timeout: self.task.timeout(),
            workdir: None,
        };
        let (lines, writer) = logs::writer(store.clone(), target);
        let outcome = process::run(spec, lines, self.stop.clone()).await;
        let _ = writer.await;

        let (state, reason, exit_code, error) = match &outcome {
            Outcome::Stopped(Stop::Shutdown) => {
                // Left RUNNING on purpose: the next start's recovery records it.
                return Ok(Finished {
                    run: self.run,
                    outputs: Vec::new(),
                });
            }
            Outcome::Exited(0) => (AttemptState::Succeeded, None, Some(0), None),
            Outcome::Exited(code) => (
                AttemptState::Failed,
                Some(Reason::ExitCode),
                Some(*code),
                Some(format!("exit status {code}")),
            ),
            Outcome::Signaled(sig) => (
                AttemptState::Failed,
                Some(Reason::Signal),
                None,
                Some(format!("killed by signal {sig}")),
            ),
            Outcome::TimedOut => (
                AttemptState::Failed,
                Some(Reason::Timeout),
                None,
                Some(format!(
                    "timed out after {}",
                    crate::duration::format_duration(self.task.timeout().unwrap_or_default())
                )),
            ),
            Outcome::Stopped(_) => (
                AttemptState::Cancelled,
                Some(Reason::Cancelled),
                None,
                Some("the execution was cancelled".into()),
            ),
            Outcome::SpawnFailed(m) => (
                AttemptState::Failed,
                Some(Reason::SpawnFailed),
                None,
                Some(m.clone()),
            ),
        };
        metrics::counter!("flowstate_attempts_finished_total", "state" => state.as_str())
            .increment(1);
        let result = AttemptResult {
            state,
            reason,
            exit_code,
            error: error.clone(),
        };

        if state == AttemptState::Cancelled {
            // The canceller has moved the task run already; record the attempt.
            let _ = store.finish_attempt(attempt.id, result).await;
            let mut t = TaskTransition::new(self.run.id, TaskState::Cancelled, running_version);
            t.reason = Some(Reason::Cancelled);
            let _ = store.transition_task(t).await;
            let run = store.get_task_run(self.run.id).await?;
            return Ok(Finished {
                run,
                outputs: Vec::new(),
            });
        }

        let values = if state == AttemptState::Succeeded {
            read_outputs(output_file.path(), store.as_ref(), target).await
        } else {
            Vec::new()
        };
        let retry = state == AttemptState::Failed && attempt.number <= self.task.retries as i32;
        let mut move_task = match (state, retry) {
            (AttemptState::Succeeded, _) => {
                TaskTransition::new(self.run.id, TaskState::Succeeded, running_version)
            }
            (_, true) => {
                let delay = self.task.backoff(attempt.number + 1);
                let mut t = TaskTransition::new(self.run.id, TaskState::Waiting, running_version);
                t.next_attempt_at =
                    Some(now() + chrono::Duration::from_std(delay).unwrap_or_default());
                logs::system(
                    store.as_ref(),
                    target,
                    format!(
                        "attempt {} failed ({}); retrying in {}",
                        attempt.number,
                        error.clone().unwrap_or_default(),
                        crate::duration::format_duration(delay)
                    ),
                )
                .await;
                t
            }
            (_, false) => TaskTransition::new(self.run.id, TaskState::Failed, running_version),
        };
        if move_task.to != TaskState::Succeeded {
            move_task.reason = reason;
        }
        // The attempt's end, its outputs and the task's move land together.
        let published: Vec<(String, String)> = values
            .iter()
            .map(|(k, v)| (k.clone(), json_text(v)))
            .collect();
        let tx = store.begin().await?;
        tx.put_outputs(self.execution_id, self.run.id, values)
            .await?;
        tx.finish_attempt(attempt.id, result).await?;
        let version = tx.transition_task(move_task.clone()).await?;
        tx.commit().await?;
        // The row as that transition left it; reading it back would cost a query.
        let ended = now();
        let run = TaskRun {
            state: move_task.to,
            reason: move_task.reason,
            version,
            attempt_count: attempt.number,
            next_attempt_at: move_task.next_attempt_at,
            updated_at: ended,
            started_at: self.run.started_at.or(Some(attempt.started_at)),
            finished_at: move_task.to.is_terminal().then_some(ended),
            ..self.run
        };
        Ok(Finished {
            run,
            outputs: published,
        })
    }
}

/// `key=value` lines from the task's output file; other lines are reported
/// in the task's log and skipped.
async fn read_outputs(
    path: &std::path::Path,
    store: &dyn StateStore,
    target: LogTarget,
) -> Vec<(String, serde_json::Value)> {
    let text = tokio::fs::read_to_string(path).await.unwrap_or_default();
    let mut values: Vec<(String, serde_json::Value)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() && k.trim().len() <= 255 => {
                let k = k.trim().to_owned();
                values.retain(|(old, _)| old != &k);
                values.push((k, serde_json::Value::String(v.to_owned())));
            }
            _ => {
                logs::system(
                    store,
                    target,
                    format!("ignored output line (want key=value): {line}"),
                )
                .await;
            }
        }
    }
    values
}
