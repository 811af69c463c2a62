//! The driver's functional core: what to do next with one execution.
//!
//! [`plan`] takes a [`Snapshot`] of the execution (its pinned workflow, a
//! view of each task run, what is in flight, the outputs so far), an
//! [`Event`] and the time, and returns [`Decision`]s in the order to apply
//! them. Nothing here reads the clock, the database or a process: the async
//! driver loads the snapshot, asks the planner, applies the decisions through
//! the store, runs the processes, and keeps its snapshot in step with
//! [`Snapshot::apply`], the same function the planner uses on its own copy.
//!
//! The rules are those of the imperative driver they replace:
//! - a task is ready when PENDING with every need SUCCEEDED, or WAITING and
//!   due; ready tasks start in workflow (topological) order;
//! - a PENDING task whose need failed, was skipped or cancelled, or has no
//!   task run, is SKIPPED with UPSTREAM_FAILED, which propagates down in one pass;
//! - a failed attempt is retried after [`Task::backoff`] while
//!   `attempt <= retries`, else its task run FAILS with the attempt's reason;
//! - when nothing is in flight the execution ends: SUCCEEDED, FAILED
//!   TASK_FAILED, parked WAITING until the earliest retry, or FAILED STUCK.

use crate::duration::format_duration;
use crate::process::{Outcome, Stop};
use crate::workflow::{Task, Workflow};
use chrono::{DateTime, Utc};
use flowstate_store::types::{
    AttemptResult, AttemptState, ExecutionState, Reason, TaskRun, TaskState,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One task run as the planner sees it (its version is the driver's business).
#[derive(Debug, Clone, PartialEq)]
pub struct RunView {
    /// Where the task run is.
    pub state: TaskState,
    /// Why it got there, if recorded.
    pub reason: Option<Reason>,
    /// Attempts started so far.
    pub attempts: i32,
    /// When a WAITING run may start its next attempt.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl From<&TaskRun> for RunView {
    fn from(run: &TaskRun) -> Self {
        RunView {
            state: run.state,
            reason: run.reason,
            attempts: run.attempt_count,
            next_attempt_at: run.next_attempt_at,
        }
    }
}

/// Everything the planner knows about one execution.
#[derive(Debug, Clone)]
pub struct Snapshot<'w> {
    /// The definition the execution was submitted with, tasks in run order.
    pub workflow: &'w Workflow,
    /// The task runs by task key; runs of tasks the workflow no longer
    /// defines are included.
    pub runs: BTreeMap<String, RunView>,
    /// Task keys with an attempt started and not yet ended.
    pub in_flight: BTreeSet<String>,
    /// The outputs of succeeded tasks by task key, values as text.
    pub outputs: HashMap<String, Vec<(String, String)>>,
    /// The execution's inputs as environment entries, values as text.
    pub inputs: Vec<(String, String)>,
    /// [`Stop::No`] while the execution goes on; set by [`Decision::Cancel`]
    /// and [`Decision::Release`], after which nothing more starts.
    pub stop: Stop,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The execution was just claimed and its state loaded.
    Resume,
    /// An attempt of task `key` ended.
    TaskEnded {
        /// The task.
        key: String,
        /// The attempt's number, as the store gave it (1 for the first).
        attempt: i32,
        /// How its process ended.
        outcome: Outcome,
        /// The `key=value` pairs it published; kept only if it succeeded.
        outputs: Vec<(String, String)>,
    },
    /// A retry may be due.
    Timer,
    /// The execution is being cancelled.
    CancelRequested,
    /// The engine is shutting down.
    ShutdownRequested,
}

/// What to do, in the order given.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Move a task run that cannot go on: one left RUNNING with no attempt in
    /// flight (FAILED, ABANDONED), or one of a task the workflow no longer
    /// defines (SKIPPED if PENDING, else FAILED; TASK_REMOVED).
    Abandon {
        /// The task.
        key: String,
        /// FAILED or SKIPPED.
        to: TaskState,
        /// ABANDONED or TASK_REMOVED.
        reason: Reason,
    },
    /// Move a task run left RUNNING by a crash (its attempt already failed
    /// by recovery) to WAITING, due now: the task has `retryOnCrash` and
    /// retries left.
    RetryAfterCrash {
        /// The task.
        key: String,
    },
    /// Record an ended attempt, its outputs and its task run's move together.
    EndAttempt {
        /// The task.
        key: String,
        /// The attempt's number.
        attempt: i32,
        /// The attempt row's end.
        result: AttemptResult,
        /// SUCCEEDED, WAITING (a retry), FAILED or CANCELLED.
        task_state: TaskState,
        /// The task run's reason: none on success, else the attempt's.
        reason: Option<Reason>,
        /// When the retry is due (WAITING only).
        retry_at: Option<DateTime<Utc>>,
        /// The outputs to store (a succeeded attempt's only).
        outputs: Vec<(String, String)>,
    },
    /// Move a PENDING task run to SKIPPED: a task it needs did not succeed.
    Skip {
        /// The task.
        key: String,
        /// Always UPSTREAM_FAILED.
        reason: Reason,
    },
    /// Start the next attempt of a task with this environment (added to the
    /// engine's own, later entries winning).
    Start {
        /// The task.
        key: String,
        /// Inputs, then the needs' outputs, then the task's own `env`.
        env: Vec<(String, String)>,
    },
    /// Nothing runs or can run now: park the execution WAITING until `wake_at`.
    Park {
        /// The earliest retry.
        wake_at: DateTime<Utc>,
    },
    /// End the execution.
    Finish {
        /// SUCCEEDED or FAILED.
        state: ExecutionState,
        /// TASK_FAILED or STUCK when FAILED.
        reason: Option<Reason>,
        /// The error text when FAILED.
        error: Option<String>,
    },
    /// Stop every attempt in flight and move these PENDING or WAITING task
    /// runs to CANCELLED (reason CANCELLED); start nothing more.
    Cancel {
        /// The task runs to cancel now; those in flight end with their attempt.
        runs: Vec<String>,
    },
    /// Start nothing more and leave the execution to recovery (or another
    /// engine): the engine is shutting down.
    Release,
}

impl Snapshot<'_> {
    /// Updates the snapshot as `decision` moves the execution.
    pub fn apply(&mut self, decision: &Decision) {
        match decision {
            Decision::Abandon { key, to, reason } => self.set(key, *to, Some(*reason), None),
            // Due at once: with no wake time a WAITING run is ready.
            Decision::RetryAfterCrash { key } => {
                self.set(key, TaskState::Waiting, Some(Reason::CrashRecovery), None)
            }
            Decision::Skip { key, reason } => {
                self.set(key, TaskState::Skipped, Some(*reason), None)
            }
            Decision::EndAttempt {
                key,
                attempt,
                task_state,
                reason,
                retry_at,
                outputs,
                ..
            } => {
                self.in_flight.remove(key);
                self.set(key, *task_state, *reason, *retry_at);
                if let Some(run) = self.runs.get_mut(key) {
                    run.attempts = *attempt;
                }
                if *task_state == TaskState::Succeeded {
                    self.outputs.insert(key.clone(), outputs.clone());
                }
            }
            Decision::Start { key, .. } => {
                self.in_flight.insert(key.clone());
                self.set(key, TaskState::Running, None, None);
                if let Some(run) = self.runs.get_mut(key) {
                    run.attempts += 1;
                }
            }
            Decision::Cancel { runs } => {
                self.stop = Stop::Cancel;
                for key in runs {
                    self.set(key, TaskState::Cancelled, Some(Reason::Cancelled), None);
                }
            }
            Decision::Release => self.stop = Stop::Drain,
            Decision::Park { .. } | Decision::Finish { .. } => {}
        }
    }

    fn set(
        &mut self,
        key: &str,
        state: TaskState,
        reason: Option<Reason>,
        at: Option<DateTime<Utc>>,
    ) {
        if let Some(run) = self.runs.get_mut(key) {
            run.state = state;
            run.reason = reason;
            run.next_attempt_at = at;
        }
    }

    fn state_of(&self, key: &str) -> Option<TaskState> {
        self.runs.get(key).map(|r| r.state)
    }
}

/// The decisions `event` calls for at `now`, in the order to apply them.
///
/// `state` is the execution as it was before the event (for
/// [`Event::TaskEnded`], with that attempt still in flight); applying each
/// decision with [`Snapshot::apply`] gives the state after it.
/// - On [`Event::Resume`], [`repairs`] then a step; on [`Event::Timer`], a step.
///   A step skips the PENDING tasks that can no longer run, starts the
///   [`ready`] ones and, with nothing in flight, ends or parks the
///   execution ([`how_it_ends`]).
/// - On [`Event::TaskEnded`], the attempt's [`end_of_attempt`], then a step.
///   A cancelled attempt cancels the rest instead; one stopped by a shutdown
///   records nothing and releases. An attempt of a task the workflow does not
///   define is ignored.
/// - On [`Event::CancelRequested`], [`Decision::Cancel`]; on
///   [`Event::ShutdownRequested`], [`Decision::Release`].
///
/// Once cancelling or shutting down ([`Snapshot::stop`]), attempts that end
/// are still recorded, but nothing starts, skips, parks or finishes; a
/// second request does nothing, except a shutdown during a cancel.
pub fn plan(state: &Snapshot, event: &Event, now: DateTime<Utc>) -> Vec<Decision> {
    let mut next = state.clone();
    let mut out = Vec::new();
    let going = state.stop == Stop::No;
    match event {
        Event::Resume if going => {
            for d in repairs(&next) {
                emit(&mut next, &mut out, d);
            }
            step(&mut next, &mut out, now);
        }
        Event::Timer if going => step(&mut next, &mut out, now),
        Event::TaskEnded {
            key,
            attempt,
            outcome,
            outputs,
        } => {
            let Some(task) = state.workflow.task(key) else {
                return out;
            };
            let end = end_of_attempt(task, *attempt, outcome, outputs, now);
            emit(&mut next, &mut out, end);
            match outcome {
                Outcome::Stopped(Stop::Cancel) if going => {
                    let cancel = cancel(&next);
                    emit(&mut next, &mut out, cancel)
                }
                _ if going => step(&mut next, &mut out, now),
                _ if next.stop == Stop::Drain => wind_down(&mut next, &mut out, now),
                _ => {}
            }
        }
        Event::CancelRequested if going => out.push(cancel(&next)),
        Event::ShutdownRequested if going => {
            emit(&mut next, &mut out, Decision::Release);
            wind_down(&mut next, &mut out, now);
        }
        Event::ShutdownRequested if state.stop == Stop::Drain => {
            wind_down(&mut next, &mut out, now)
        }
        _ => {}
    }
    out
}

/// The tasks whose first attempts may start inside the claim that takes
/// the execution, before the driver has loaded anything else: those
/// [`plan`] starts on [`Event::Resume`]. None when a task run is RUNNING
/// (recovery's repairs come first, in the driver) or the execution is
/// stopping.
pub fn starts_on_claim(state: &Snapshot, now: DateTime<Utc>) -> Vec<String> {
    if state.runs.values().any(|r| r.state == TaskState::Running) {
        return Vec::new();
    }
    plan(state, &Event::Resume, now)
        .into_iter()
        .filter_map(|d| match d {
            Decision::Start { key, .. } => Some(key),
            _ => None,
        })
        .collect()
}

/// Applies `d` to `state` and adds it to `out`.
fn emit(state: &mut Snapshot, out: &mut Vec<Decision>, d: Decision) {
    state.apply(&d);
    out.push(d);
}

/// Skips what can no longer run, starts what is ready, and, when nothing is
/// in flight, ends or parks the execution.
fn step(state: &mut Snapshot, out: &mut Vec<Decision>, now: DateTime<Utc>) {
    skip_blocked(state, out);
    for task in ready(state, now) {
        let start = Decision::Start {
            key: task.id.clone(),
            env: environment(state, task),
        };
        emit(state, out, start);
    }
    out.extend(how_it_ends(state));
}

/// Skips the PENDING tasks that can no longer run.
fn skip_blocked(state: &mut Snapshot, out: &mut Vec<Decision>) {
    let workflow = state.workflow;
    for task in &workflow.tasks {
        if blocked(state, task) {
            let skip = Decision::Skip {
                key: task.id.clone(),
                reason: Reason::UpstreamFailed,
            };
            emit(state, out, skip);
        }
    }
}

/// While the engine drains: once nothing is in flight, the execution ends
/// if every task run is terminal, and is otherwise handed back, parked
/// until it can go on (now when a task is ready), for the next engine to
/// continue. Nothing starts.
fn wind_down(state: &mut Snapshot, out: &mut Vec<Decision>, now: DateTime<Utc>) {
    if !state.in_flight.is_empty() {
        return;
    }
    skip_blocked(state, out);
    if state.runs.values().all(|r| r.state.is_terminal()) {
        out.extend(how_it_ends(state));
        return;
    }
    let wake_at = match next_wake(state) {
        Some(at) if ready(state, now).is_empty() => at.max(now),
        _ => now,
    };
    out.push(Decision::Park { wake_at });
}

/// Moves for the task runs that cannot go on, by task key: RUNNING with no
/// attempt in flight (FAILED, ABANDONED), or not defined by the workflow and
/// not terminal (PENDING: SKIPPED, else FAILED; TASK_REMOVED).
pub fn repairs(state: &Snapshot) -> Vec<Decision> {
    state
        .runs
        .iter()
        .filter(|(key, _)| !state.in_flight.contains(*key))
        .filter_map(|(key, run)| {
            let defined = state.workflow.task(key).is_some();
            if run.state != TaskState::Running && (defined || run.state.is_terminal()) {
                return None;
            }
            if let Some(task) = state.workflow.task(key) {
                // The attempt was failed by recovery; the task retries it.
                if task.retry_on_crash && run.attempts <= task.retries as i32 {
                    return Some(Decision::RetryAfterCrash { key: key.clone() });
                }
            }
            let to = if run.state == TaskState::Pending {
                TaskState::Skipped
            } else {
                TaskState::Failed
            };
            let reason = if defined {
                Reason::Abandoned
            } else {
                Reason::TaskRemoved
            };
            Some(Decision::Abandon {
                key: key.clone(),
                to,
                reason,
            })
        })
        .collect()
}

/// Whether `task` must be skipped: PENDING, not in flight, and a task it
/// needs FAILED, was SKIPPED or CANCELLED, or has no task run.
fn blocked(state: &Snapshot, task: &Task) -> bool {
    state.state_of(&task.id) == Some(TaskState::Pending)
        && !state.in_flight.contains(&task.id)
        && task.needs.iter().any(|n| {
            matches!(
                state.state_of(n),
                None | Some(TaskState::Failed | TaskState::Skipped | TaskState::Cancelled)
            )
        })
}

/// The tasks that may start at `now`, in workflow order: not in flight, and
/// PENDING with every need SUCCEEDED, or WAITING with no wake time or one
/// at or before `now`. A task without a task run never starts.
pub fn ready<'w>(state: &Snapshot<'w>, now: DateTime<Utc>) -> Vec<&'w Task> {
    let workflow = state.workflow;
    workflow
        .tasks
        .iter()
        .filter(|task| !state.in_flight.contains(&task.id))
        .filter(|task| match state.runs.get(&task.id) {
            Some(run) if run.state == TaskState::Pending => task
                .needs
                .iter()
                .all(|n| state.state_of(n) == Some(TaskState::Succeeded)),
            Some(run) if run.state == TaskState::Waiting => {
                run.next_attempt_at.is_none_or(|at| at <= now)
            }
            _ => false,
        })
        .collect()
}

/// The environment of `task`'s next attempt: the execution's inputs; then
/// for each need, in the order the task lists them, each output as `name`
/// and as `NEED_NAME` (see [`env_name`]); then the task's own `env`.
pub fn environment(state: &Snapshot, task: &Task) -> Vec<(String, String)> {
    let mut env = state.inputs.clone();
    for need in &task.needs {
        for (k, v) in state.outputs.get(need).into_iter().flatten() {
            env.push((k.clone(), v.clone()));
            env.push((format!("{}_{}", env_name(need), env_name(k)), v.clone()));
        }
    }
    env.extend(task.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

/// An environment variable name made of `s`: ASCII letters and digits upper
/// case, `_` for everything else.
pub fn env_name(s: &str) -> String {
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

/// How the execution ends once nothing is in flight and the ready tasks have
/// been started (`None` while something is in flight): SUCCEEDED when every
/// task run did; FAILED TASK_FAILED when all are terminal and some did not;
/// otherwise parked until the earliest retry, or FAILED STUCK if none waits.
pub fn how_it_ends(state: &Snapshot) -> Option<Decision> {
    if !state.in_flight.is_empty() {
        return None;
    }
    if state.runs.values().all(|r| r.state.is_terminal()) {
        if state.runs.values().all(|r| r.state == TaskState::Succeeded) {
            return Some(Decision::Finish {
                state: ExecutionState::Succeeded,
                reason: None,
                error: None,
            });
        }
        return Some(failed(Reason::TaskFailed, failed_tasks(state)));
    }
    Some(match next_wake(state) {
        Some(wake_at) => Decision::Park { wake_at },
        None => failed(Reason::Stuck, "no task can run".into()),
    })
}

fn failed(reason: Reason, error: String) -> Decision {
    Decision::Finish {
        state: ExecutionState::Failed,
        reason: Some(reason),
        error: Some(error),
    }
}

/// `failed tasks: a (EXIT_CODE), b (TIMEOUT)`: the FAILED task runs (not the
/// skipped or cancelled ones) with their reasons, sorted.
fn failed_tasks(state: &Snapshot) -> String {
    let mut names: Vec<String> = state
        .runs
        .iter()
        .filter(|(_, r)| r.state == TaskState::Failed)
        .map(|(key, r)| format!("{key} ({})", r.reason.map_or("FAILED", |r| r.as_str())))
        .collect();
    names.sort();
    format!("failed tasks: {}", names.join(", "))
}

/// The earliest wake time of the WAITING task runs not in flight: when the
/// driver should look again (a [`Event::Timer`]).
pub fn next_wake(state: &Snapshot) -> Option<DateTime<Utc>> {
    state
        .runs
        .iter()
        .filter(|(k, r)| r.state == TaskState::Waiting && !state.in_flight.contains(*k))
        .filter_map(|(_, r)| r.next_attempt_at)
        .min()
}

/// [`Decision::Cancel`] for the PENDING and WAITING task runs not in flight.
fn cancel(state: &Snapshot) -> Decision {
    let runs = state
        .runs
        .iter()
        .filter(|(k, r)| {
            matches!(r.state, TaskState::Pending | TaskState::Waiting)
                && !state.in_flight.contains(*k)
        })
        .map(|(k, _)| k.clone())
        .collect();
    Decision::Cancel { runs }
}

/// How attempt `attempt` of `task`, ended by `outcome` at `now`, moves its
/// task run. A failed attempt is retried while `attempt <= retries`, after
/// [`Task::backoff`]`(attempt + 1)`; one cut off by a shutdown at once
/// (when the next engine resumes the execution).
pub fn end_of_attempt(
    task: &Task,
    attempt: i32,
    outcome: &Outcome,
    outputs: &[(String, String)],
    now: DateTime<Utc>,
) -> Decision {
    let result = how_it_ended(task, outcome);
    let (task_state, retry_at) = match result.state {
        AttemptState::Succeeded => (TaskState::Succeeded, None),
        AttemptState::Cancelled => (TaskState::Cancelled, None),
        AttemptState::Failed if attempt <= task.retries as i32 => {
            if result.reason == Some(Reason::Shutdown) {
                return ended(
                    task,
                    attempt,
                    result,
                    (TaskState::Waiting, Some(now)),
                    outputs,
                );
            }
            let delay = task.backoff(attempt + 1);
            let at = now + chrono::Duration::from_std(delay).unwrap_or_default();
            (TaskState::Waiting, Some(at))
        }
        AttemptState::Failed | AttemptState::Running => (TaskState::Failed, None),
    };
    ended(task, attempt, result, (task_state, retry_at), outputs)
}

fn ended(
    task: &Task,
    attempt: i32,
    result: AttemptResult,
    (task_state, retry_at): (TaskState, Option<DateTime<Utc>>),
    outputs: &[(String, String)],
) -> Decision {
    let succeeded = task_state == TaskState::Succeeded;
    Decision::EndAttempt {
        key: task.id.clone(),
        attempt,
        reason: if succeeded { None } else { result.reason },
        outputs: if succeeded {
            outputs.to_vec()
        } else {
            Vec::new()
        },
        result,
        task_state,
        retry_at,
    }
}

/// The attempt row's end for `outcome`: its state, reason, exit code and
/// error text.
pub fn how_it_ended(task: &Task, outcome: &Outcome) -> AttemptResult {
    let failed = |reason, exit_code, error: String| AttemptResult {
        state: AttemptState::Failed,
        reason: Some(reason),
        exit_code,
        error: Some(error),
    };
    match outcome {
        Outcome::Stopped(Stop::Shutdown) => failed(
            Reason::Shutdown,
            None,
            "the engine shut down and its grace period was over".into(),
        ),
        Outcome::Exited(0) => AttemptResult {
            state: AttemptState::Succeeded,
            reason: None,
            exit_code: Some(0),
            error: None,
        },
        Outcome::Exited(code) => {
            failed(Reason::ExitCode, Some(*code), format!("exit status {code}"))
        }
        Outcome::Signaled(sig) => failed(Reason::Signal, None, format!("killed by signal {sig}")),
        Outcome::TimedOut => {
            let limit = format_duration(task.timeout().unwrap_or_default());
            failed(Reason::Timeout, None, format!("timed out after {limit}"))
        }
        Outcome::SpawnFailed(m) => failed(Reason::SpawnFailed, None, m.clone()),
        Outcome::StorageFull(lost) => failed(
            Reason::StorageFull,
            None,
            format!("the database or disk was full: {lost} log line(s) were lost"),
        ),
        Outcome::Stopped(_) => AttemptResult {
            state: AttemptState::Cancelled,
            reason: Some(Reason::Cancelled),
            exit_code: None,
            error: Some("the execution was cancelled".into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Outcome::{Exited, Signaled, SpawnFailed, Stopped, TimedOut};
    use TaskState::{Cancelled, Failed, Pending, Running, Skipped, Succeeded, Waiting};

    // ---- time: NOW is at(0); at(s) is s seconds later.

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    const NOW: i64 = 0;

    // ---- workflows: tasks listed in run order, as stored.

    fn t(id: &str, needs: &[&str]) -> Task {
        Task {
            id: id.into(),
            run: "true".into(),
            retries: 0,
            retry_delay_ms: 1000,
            timeout_ms: None,
            needs: needs.iter().map(|n| n.to_string()).collect(),
            env: BTreeMap::new(),
            retry_on_crash: false,
        }
    }

    /// `t` with `retries` retries, the first after `delay_ms`.
    fn retrying(task: Task, retries: u32, delay_ms: u64) -> Task {
        Task {
            retries,
            retry_delay_ms: delay_ms,
            ..task
        }
    }

    fn one() -> Vec<Task> {
        vec![t("a", &[])]
    }

    /// a -> b -> c
    fn chain() -> Vec<Task> {
        vec![t("a", &[]), t("b", &["a"]), t("c", &["b"])]
    }

    /// a -> (b, c) -> d
    fn diamond() -> Vec<Task> {
        vec![
            t("a", &[]),
            t("b", &["a"]),
            t("c", &["a"]),
            t("d", &["b", "c"]),
        ]
    }

    /// a -> (b1, b2, b3) -> z
    /// `task` with these `env` entries.
    fn with_env(task: Task, kv: &[(&str, &str)]) -> Task {
        Task {
            env: kv
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..task
        }
    }

    /// One task `a` with a 5s timeout and `retries` retries.
    fn timed(retries: u32) -> Vec<Task> {
        vec![Task {
            timeout_ms: Some(5000),
            ..retrying(t("a", &[]), retries, 1000)
        }]
    }

    const SPAWN_MSG: &str = "cannot start sh: No such file or directory (os error 2)";

    fn fan() -> Vec<Task> {
        vec![
            t("a", &[]),
            t("b1", &["a"]),
            t("b2", &["a"]),
            t("b3", &["a"]),
            t("z", &["b1", "b2", "b3"]),
        ]
    }

    // ---- the state before the event: every task PENDING unless set.

    struct Given {
        workflow: Workflow,
        runs: BTreeMap<String, RunView>,
        in_flight: BTreeSet<String>,
        outputs: HashMap<String, Vec<(String, String)>>,
        inputs: Vec<(String, String)>,
        stop: Stop,
    }

    fn given(tasks: Vec<Task>) -> Given {
        let runs = tasks
            .iter()
            .map(|t| (t.id.clone(), view(Pending, None, 0, None)))
            .collect();
        Given {
            workflow: Workflow {
                name: "wf".into(),
                description: None,
                tasks,
            },
            runs,
            in_flight: BTreeSet::new(),
            outputs: HashMap::new(),
            inputs: Vec::new(),
            stop: Stop::No,
        }
    }

    /// A chain being cancelled: a's attempt still in flight.
    fn cancelling() -> Given {
        given(chain())
            .flying("a", 1)
            .cancelled("b")
            .cancelled("c")
            .stop(Stop::Cancel)
    }

    /// A chain whose engine is draining: a's attempt still in flight.
    fn shutting() -> Given {
        given(chain()).flying("a", 1).stop(Stop::Drain)
    }

    fn view(state: TaskState, reason: Option<Reason>, attempts: i32, at: Option<i64>) -> RunView {
        RunView {
            state,
            reason,
            attempts,
            next_attempt_at: at.map(self::at),
        }
    }

    fn pairs(kv: &[(&str, &str)]) -> Vec<(String, String)> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    impl Given {
        fn run(mut self, key: &str, run: RunView) -> Self {
            self.runs.insert(key.into(), run);
            self
        }
        fn ok(self, key: &str) -> Self {
            self.run(key, view(Succeeded, None, 1, None))
        }
        fn failed(self, key: &str, reason: Option<Reason>) -> Self {
            self.run(key, view(Failed, reason, 1, None))
        }
        fn skipped(self, key: &str) -> Self {
            self.run(key, view(Skipped, Some(Reason::UpstreamFailed), 0, None))
        }
        fn cancelled(self, key: &str) -> Self {
            self.run(key, view(Cancelled, Some(Reason::Cancelled), 0, None))
        }
        /// WAITING after `attempts` attempts, due at `at(due)` (or undated).
        fn waiting(self, key: &str, attempts: i32, due: Option<i64>) -> Self {
            self.run(key, view(Waiting, Some(Reason::ExitCode), attempts, due))
        }
        /// RUNNING with its attempt `attempts` in flight.
        fn flying(mut self, key: &str, attempts: i32) -> Self {
            self.in_flight.insert(key.into());
            self.run(key, view(Running, None, attempts, None))
        }
        /// RUNNING with nothing in flight: the attempt was lost.
        fn stale(self, key: &str) -> Self {
            self.run(key, view(Running, None, 1, None))
        }
        /// No task run for `key` (the task came after the execution).
        fn no_run(mut self, key: &str) -> Self {
            self.runs.remove(key);
            self
        }
        fn output(mut self, key: &str, name: &str, value: &str) -> Self {
            let list = self.outputs.entry(key.into()).or_default();
            list.push((name.into(), value.into()));
            self
        }
        fn input(mut self, name: &str, value: &str) -> Self {
            self.inputs.push((name.into(), value.into()));
            self
        }
        fn stop(mut self, stop: Stop) -> Self {
            self.stop = stop;
            self
        }
        fn snapshot(&self) -> Snapshot<'_> {
            Snapshot {
                workflow: &self.workflow,
                runs: self.runs.clone(),
                in_flight: self.in_flight.clone(),
                outputs: self.outputs.clone(),
                inputs: self.inputs.clone(),
                stop: self.stop,
            }
        }
    }

    // ---- events

    fn ended(key: &str, attempt: i32, outcome: Outcome) -> Event {
        ended_with(key, attempt, outcome, &[])
    }

    fn ended_with(key: &str, attempt: i32, outcome: Outcome, outputs: &[(&str, &str)]) -> Event {
        Event::TaskEnded {
            key: key.into(),
            attempt,
            outcome,
            outputs: pairs(outputs),
        }
    }

    // ---- decisions

    fn start(key: &str, env: &[(&str, &str)]) -> Decision {
        Decision::Start {
            key: key.into(),
            env: pairs(env),
        }
    }

    fn skip(key: &str) -> Decision {
        Decision::Skip {
            key: key.into(),
            reason: Reason::UpstreamFailed,
        }
    }

    fn abandon(key: &str, to: TaskState, reason: Reason) -> Decision {
        Decision::Abandon {
            key: key.into(),
            to,
            reason,
        }
    }

    fn exit(code: i32) -> AttemptResult {
        fail(Reason::ExitCode, Some(code), &format!("exit status {code}"))
    }

    fn fail(reason: Reason, exit_code: Option<i32>, error: &str) -> AttemptResult {
        AttemptResult {
            state: AttemptState::Failed,
            reason: Some(reason),
            exit_code,
            error: Some(error.into()),
        }
    }

    fn end(key: &str, attempt: i32, result: AttemptResult, to: TaskState) -> Decision {
        with(end_ok(key, attempt, &[]), |d| {
            if let Decision::EndAttempt {
                reason,
                result: r,
                task_state,
                outputs,
                ..
            } = d
            {
                *reason = result.reason;
                *r = result;
                *task_state = to;
                outputs.clear();
            }
        })
    }

    /// `d` as `change` leaves it.
    fn with(mut d: Decision, change: impl FnOnce(&mut Decision)) -> Decision {
        change(&mut d);
        d
    }

    fn end_ok(key: &str, attempt: i32, outputs: &[(&str, &str)]) -> Decision {
        Decision::EndAttempt {
            key: key.into(),
            attempt,
            result: AttemptResult {
                state: AttemptState::Succeeded,
                reason: None,
                exit_code: Some(0),
                error: None,
            },
            task_state: Succeeded,
            reason: None,
            retry_at: None,
            outputs: pairs(outputs),
        }
    }

    fn end_retry(key: &str, attempt: i32, result: AttemptResult, due: i64) -> Decision {
        with(end(key, attempt, result, Waiting), |d| {
            if let Decision::EndAttempt { retry_at, .. } = d {
                *retry_at = Some(at(due));
            }
        })
    }

    fn end_cancelled(key: &str, attempt: i32) -> Decision {
        let result = AttemptResult {
            state: AttemptState::Cancelled,
            reason: Some(Reason::Cancelled),
            exit_code: None,
            error: Some("the execution was cancelled".into()),
        };
        end(key, attempt, result, Cancelled)
    }

    fn succeeded() -> Decision {
        Decision::Finish {
            state: ExecutionState::Succeeded,
            reason: None,
            error: None,
        }
    }

    fn task_failed(error: &str) -> Decision {
        failed(Reason::TaskFailed, error.into())
    }

    fn park(due: i64) -> Decision {
        Decision::Park { wake_at: at(due) }
    }

    fn cancel(keys: &[&str]) -> Decision {
        Decision::Cancel {
            runs: keys.iter().map(|k| k.to_string()).collect(),
        }
    }

    // ---- the table

    struct Case {
        name: &'static str,
        given: Given,
        event: Event,
        want: Vec<Decision>,
    }

    fn case(name: &'static str, given: Given, event: Event, want: Vec<Decision>) -> Case {
        Case {
            name,
            given,
            event,
            want,
        }
    }

    /// Plans every case at NOW; checks the decisions, and that applying them
    /// never starts a task twice.
    fn check(cases: Vec<Case>) {
        for c in cases {
            let snapshot = c.given.snapshot();
            let got = plan(&snapshot, &c.event, at(NOW));
            assert_eq!(got, c.want, "case: {}", c.name);
            let mut after = snapshot.clone();
            for d in &got {
                if let Decision::Start { key, .. } = d {
                    assert!(
                        !after.in_flight.contains(key),
                        "case {}: {key} twice",
                        c.name
                    );
                }
                after.apply(d);
            }
        }
    }

    #[test]
    fn chains_and_diamonds_start_what_is_ready() {
        check(vec![
            case(
                "chain: resume starts the first task only",
                given(chain()),
                Event::Resume,
                vec![start("a", &[])],
            ),
            case(
                "chain: a success starts b",
                given(chain()).flying("a", 1),
                ended("a", 1, Exited(0)),
                vec![end_ok("a", 1, &[]), start("b", &[])],
            ),
            case(
                "chain: the last success finishes the execution",
                given(chain()).ok("a").ok("b").flying("c", 1),
                ended("c", 1, Exited(0)),
                vec![end_ok("c", 1, &[]), succeeded()],
            ),
            case(
                "chain: resume after a crash between tasks starts the next",
                given(chain()).ok("a"),
                Event::Resume,
                vec![start("b", &[])],
            ),
            case(
                "diamond: resume starts the root only",
                given(diamond()),
                Event::Resume,
                vec![start("a", &[])],
            ),
            case(
                "diamond: the root's success starts both branches",
                given(diamond()).flying("a", 1),
                ended("a", 1, Exited(0)),
                vec![end_ok("a", 1, &[]), start("b", &[]), start("c", &[])],
            ),
            case(
                "diamond: the join waits for the other branch",
                given(diamond()).ok("a").flying("b", 1).flying("c", 1),
                ended("b", 1, Exited(0)),
                vec![end_ok("b", 1, &[])],
            ),
            case(
                "diamond: the second branch starts the join",
                given(diamond()).ok("a").ok("b").flying("c", 1),
                ended("c", 1, Exited(0)),
                vec![end_ok("c", 1, &[]), start("d", &[])],
            ),
        ]);
    }

    #[test]
    fn fans_and_independent_tasks_start_together() {
        let independent = vec![t("zeta", &[]), t("alpha", &[])];
        check(vec![
            case(
                "fan-out: one success starts three",
                given(fan()).flying("a", 1),
                ended("a", 1, Exited(0)),
                vec![
                    end_ok("a", 1, &[]),
                    start("b1", &[]),
                    start("b2", &[]),
                    start("b3", &[]),
                ],
            ),
            case(
                "fan-in: not before the last of three",
                given(fan())
                    .ok("a")
                    .ok("b1")
                    .flying("b2", 1)
                    .flying("b3", 1),
                ended("b2", 1, Exited(0)),
                vec![end_ok("b2", 1, &[])],
            ),
            case(
                "fan-in: the last of three starts the join",
                given(fan()).ok("a").ok("b1").ok("b2").flying("b3", 1),
                ended("b3", 1, Exited(0)),
                vec![end_ok("b3", 1, &[]), start("z", &[])],
            ),
            case(
                "independent tasks start together, in workflow order not key order",
                given(independent.clone()),
                Event::Resume,
                vec![start("zeta", &[]), start("alpha", &[])],
            ),
            case(
                "nothing in flight is started again",
                given(independent).flying("zeta", 1),
                Event::Timer,
                vec![start("alpha", &[])],
            ),
            case(
                "a timer with nothing ready and something in flight does nothing",
                given(chain()).flying("a", 1),
                Event::Timer,
                vec![],
            ),
        ]);
    }

    #[test]
    fn waiting_tasks_start_when_due() {
        let two = || {
            vec![
                retrying(t("x", &[]), 3, 1000),
                retrying(t("y", &[]), 3, 1000),
            ]
        };
        check(vec![
            case(
                "due before now",
                given(one()).waiting("a", 1, Some(-1)),
                Event::Timer,
                vec![start("a", &[])],
            ),
            case(
                "due exactly now",
                given(one()).waiting("a", 1, Some(NOW)),
                Event::Timer,
                vec![start("a", &[])],
            ),
            case(
                "no wake time means due",
                given(one()).waiting("a", 1, None),
                Event::Timer,
                vec![start("a", &[])],
            ),
            case(
                "not yet due while another runs: nothing",
                given(two()).waiting("x", 1, Some(5)).flying("y", 1),
                Event::Timer,
                vec![],
            ),
            case(
                "a due retry starts rather than parking for a later one",
                given(two())
                    .waiting("x", 1, Some(-1))
                    .waiting("y", 1, Some(10)),
                Event::Resume,
                vec![start("x", &[])],
            ),
            case(
                "parks until the earliest of several retries",
                given(vec![t("x", &[]), t("y", &[]), t("z", &[])])
                    .waiting("x", 1, Some(30))
                    .waiting("y", 2, Some(10))
                    .ok("z"),
                Event::Timer,
                vec![park(10)],
            ),
            case(
                "a retry succeeding finishes the execution",
                given(vec![retrying(t("a", &[]), 2, 1000)]).flying("a", 2),
                ended("a", 2, Exited(0)),
                vec![end_ok("a", 2, &[]), succeeded()],
            ),
        ]);
    }

    #[test]
    fn outputs_are_handed_downstream() {
        let build = vec![t("build-app", &[]), t("deploy", &["build-app"])];
        check(vec![
            case(
                "inputs first, then the task's own env",
                given(vec![with_env(t("a", &[]), &[("E", "e")])]).input("x", "1"),
                Event::Resume,
                vec![start("a", &[("x", "1"), ("E", "e")])],
            ),
            case(
                "a success hands its outputs on under both spellings",
                given(chain()).flying("a", 1),
                ended_with("a", 1, Exited(0), &[("k", "v"), ("my-key", "w")]),
                vec![
                    end_ok("a", 1, &[("k", "v"), ("my-key", "w")]),
                    start(
                        "b",
                        &[("k", "v"), ("A_K", "v"), ("my-key", "w"), ("A_MY_KEY", "w")],
                    ),
                ],
            ),
            case(
                "task keys are upper-cased with _ for the rest",
                given(build).flying("build-app", 1),
                ended_with("build-app", 1, Exited(0), &[("url", "http://x")]),
                vec![
                    end_ok("build-app", 1, &[("url", "http://x")]),
                    start(
                        "deploy",
                        &[("url", "http://x"), ("BUILD_APP_URL", "http://x")],
                    ),
                ],
            ),
            case(
                "only direct needs: outputs two levels up do not leak",
                given(chain())
                    .ok("a")
                    .output("a", "from_a", "1")
                    .ok("b")
                    .output("b", "from_b", "2"),
                Event::Resume,
                vec![start("c", &[("from_b", "2"), ("B_FROM_B", "2")])],
            ),
        ]);
    }

    #[test]
    fn environments_keep_their_order() {
        // d lists its needs in the other order than the workflow runs them.
        let reversed = vec![t("b", &[]), t("c", &[]), t("d", &["c", "b"])];
        check(vec![
            case(
                "needs in the order the task lists them, later ones last",
                given(reversed)
                    .ok("b")
                    .output("b", "k", "from b")
                    .ok("c")
                    .output("c", "k", "from c"),
                Event::Resume,
                vec![start(
                    "d",
                    &[
                        ("k", "from c"),
                        ("C_K", "from c"),
                        ("k", "from b"),
                        ("B_K", "from b"),
                    ],
                )],
            ),
            case(
                "inputs, outputs, own env: in that order, own env last",
                given(vec![
                    t("a", &[]),
                    with_env(t("b", &["a"]), &[("k", "mine")]),
                ])
                .input("k", "input")
                .ok("a")
                .output("a", "k", "out"),
                Event::Resume,
                vec![start(
                    "b",
                    &[("k", "input"), ("k", "out"), ("A_K", "out"), ("k", "mine")],
                )],
            ),
            case(
                "a retry gets the same environment",
                given(vec![t("a", &[]), retrying(t("b", &["a"]), 1, 1000)])
                    .input("x", "1")
                    .ok("a")
                    .output("a", "k", "v")
                    .waiting("b", 1, Some(-1)),
                Event::Timer,
                vec![start("b", &[("x", "1"), ("k", "v"), ("A_K", "v")])],
            ),
            case(
                "a failed attempt's outputs are dropped",
                given(one()).flying("a", 1),
                ended_with("a", 1, Exited(1), &[("k", "v")]),
                vec![
                    end("a", 1, exit(1), Failed),
                    task_failed("failed tasks: a (EXIT_CODE)"),
                ],
            ),
        ]);
    }

    #[test]
    fn env_names_match_the_drivers() {
        assert_eq!(env_name("build-app"), "BUILD_APP");
        assert_eq!(env_name("a.b_c9"), "A_B_C9");
        assert_eq!(env_name("é"), "_");
    }

    #[test]
    fn failed_attempts_retry_with_doubling_back_off() {
        let r = |retries| vec![retrying(t("a", &[]), retries, 1000)];
        let two = vec![retrying(t("x", &[]), 1, 1000), t("y", &[])];
        check(vec![
            case(
                "a non-zero exit without retries fails the task and the execution",
                given(r(0)).flying("a", 1),
                ended("a", 1, Exited(3)),
                vec![
                    end("a", 1, exit(3), Failed),
                    task_failed("failed tasks: a (EXIT_CODE)"),
                ],
            ),
            case(
                "the first failure waits the retry delay and parks",
                given(r(2)).flying("a", 1),
                ended("a", 1, Exited(3)),
                vec![end_retry("a", 1, exit(3), 1), park(1)],
            ),
            case(
                "the second failure waits twice as long",
                given(r(3)).flying("a", 2),
                ended("a", 2, Exited(3)),
                vec![end_retry("a", 2, exit(3), 2), park(2)],
            ),
            case(
                "the third failure waits four times as long",
                given(r(3)).flying("a", 3),
                ended("a", 3, Exited(3)),
                vec![end_retry("a", 3, exit(3), 4), park(4)],
            ),
            case(
                "the last retry failing fails the task",
                given(r(2)).flying("a", 3),
                ended("a", 3, Exited(3)),
                vec![
                    end("a", 3, exit(3), Failed),
                    task_failed("failed tasks: a (EXIT_CODE)"),
                ],
            ),
            case(
                "a retry while another task runs does not park",
                given(two).flying("x", 1).flying("y", 1),
                ended("x", 1, Exited(1)),
                vec![end_retry("x", 1, exit(1), 1)],
            ),
        ]);
    }

    #[test]
    fn each_kind_of_failure_has_its_reason() {
        let r = |retries| vec![retrying(t("a", &[]), retries, 1000)];
        check(vec![
            case(
                "a timeout fails with TIMEOUT and the limit in the error",
                given(timed(0)).flying("a", 1),
                ended("a", 1, TimedOut),
                vec![
                    end(
                        "a",
                        1,
                        fail(Reason::Timeout, None, "timed out after 5s"),
                        Failed,
                    ),
                    task_failed("failed tasks: a (TIMEOUT)"),
                ],
            ),
            case(
                "a timeout is retried like any failure",
                given(timed(1)).flying("a", 1),
                ended("a", 1, TimedOut),
                vec![
                    end_retry("a", 1, fail(Reason::Timeout, None, "timed out after 5s"), 1),
                    park(1),
                ],
            ),
            case(
                "a spawn failure fails with its message",
                given(r(0)).flying("a", 1),
                ended("a", 1, SpawnFailed(SPAWN_MSG.into())),
                vec![
                    end("a", 1, fail(Reason::SpawnFailed, None, SPAWN_MSG), Failed),
                    task_failed("failed tasks: a (SPAWN_FAILED)"),
                ],
            ),
            case(
                "a spawn failure is retried too",
                given(r(1)).flying("a", 1),
                ended("a", 1, SpawnFailed(SPAWN_MSG.into())),
                vec![
                    end_retry("a", 1, fail(Reason::SpawnFailed, None, SPAWN_MSG), 1),
                    park(1),
                ],
            ),
            case(
                "a signal fails with SIGNAL",
                given(r(0)).flying("a", 1),
                ended("a", 1, Signaled(9)),
                vec![
                    end(
                        "a",
                        1,
                        fail(Reason::Signal, None, "killed by signal 9"),
                        Failed,
                    ),
                    task_failed("failed tasks: a (SIGNAL)"),
                ],
            ),
            case(
                "an exit without a code or signal is exit status -1",
                given(r(0)).flying("a", 1),
                ended("a", 1, Exited(-1)),
                vec![
                    end("a", 1, exit(-1), Failed),
                    task_failed("failed tasks: a (EXIT_CODE)"),
                ],
            ),
        ]);
    }

    #[test]
    fn back_off_keeps_the_milliseconds() {
        let task = Task {
            timeout_ms: Some(1500),
            ..retrying(t("a", &[]), 1, 250)
        };
        let d = end_of_attempt(&task, 1, &TimedOut, &[], at(NOW));
        let Decision::EndAttempt {
            result, retry_at, ..
        } = d
        else {
            panic!("{d:?}")
        };
        assert_eq!(result.error.as_deref(), Some("timed out after 1500ms"));
        assert_eq!(
            retry_at,
            Some(at(NOW) + chrono::Duration::milliseconds(250))
        );
    }

    #[test]
    fn failures_skip_everything_downstream() {
        let deep = vec![
            t("a", &[]),
            t("b", &["a"]),
            t("c", &["b"]),
            t("d", &["c"]),
            t("e", &[]),
        ];
        check(vec![
            case(
                "chain: a failure skips the rest and fails the execution",
                given(chain()).flying("a", 1),
                ended("a", 1, Exited(1)),
                vec![
                    end("a", 1, exit(1), Failed),
                    skip("b"),
                    skip("c"),
                    task_failed("failed tasks: a (EXIT_CODE)"),
                ],
            ),
            case(
                "diamond: a root failure skips both branches and the join",
                given(diamond()).flying("a", 1),
                ended("a", 1, Exited(1)),
                vec![
                    end("a", 1, exit(1), Failed),
                    skip("b"),
                    skip("c"),
                    skip("d"),
                    task_failed("failed tasks: a (EXIT_CODE)"),
                ],
            ),
            case(
                "diamond: a branch failure skips the join while the other branch runs",
                given(diamond()).ok("a").flying("b", 1).flying("c", 1),
                ended("b", 1, Exited(1)),
                vec![end("b", 1, exit(1), Failed), skip("d")],
            ),
            case(
                "diamond: the other branch ending then fails the execution",
                given(diamond())
                    .ok("a")
                    .failed("b", Some(Reason::ExitCode))
                    .flying("c", 1)
                    .skipped("d"),
                ended("c", 1, Exited(0)),
                vec![
                    end_ok("c", 1, &[]),
                    task_failed("failed tasks: b (EXIT_CODE)"),
                ],
            ),
            case(
                "fan-in: one failed branch skips the join at once",
                given(fan())
                    .ok("a")
                    .flying("b1", 1)
                    .flying("b2", 1)
                    .flying("b3", 1),
                ended("b2", 1, Signaled(15)),
                vec![
                    end(
                        "b2",
                        1,
                        fail(Reason::Signal, None, "killed by signal 15"),
                        Failed,
                    ),
                    skip("z"),
                ],
            ),
            case(
                "skips propagate three levels in one pass, an independent task runs on",
                given(deep).flying("a", 1).flying("e", 1),
                ended("a", 1, Exited(1)),
                vec![
                    end("a", 1, exit(1), Failed),
                    skip("b"),
                    skip("c"),
                    skip("d"),
                ],
            ),
        ]);
    }

    #[test]
    fn blocked_needs_and_the_failure_text() {
        let side = vec![t("a", &[]), t("b", &["a"]), t("x", &[])];
        check(vec![
            case(
                "a cancelled need blocks like a failed one",
                given(side).cancelled("a").flying("x", 1),
                Event::Timer,
                vec![skip("b")],
            ),
            case(
                "the error lists failed tasks sorted, each with its reason",
                given(vec![t("b", &[]), t("a", &[])])
                    .failed("b", Some(Reason::Timeout))
                    .flying("a", 1),
                ended("a", 1, Exited(2)),
                vec![
                    end("a", 1, exit(2), Failed),
                    task_failed("failed tasks: a (EXIT_CODE), b (TIMEOUT)"),
                ],
            ),
            case(
                "a failed run without a reason is listed as FAILED",
                given(vec![t("x", &[]), t("y", &[])])
                    .failed("x", None)
                    .flying("y", 1),
                ended("y", 1, Exited(0)),
                vec![end_ok("y", 1, &[]), task_failed("failed tasks: x (FAILED)")],
            ),
            case(
                "a need without a task run skips, and the error lists no task (as driver.rs)",
                given(chain()).no_run("a"),
                Event::Resume,
                vec![skip("b"), skip("c"), task_failed("failed tasks: ")],
            ),
        ]);
    }

    #[test]
    fn the_execution_ends_parks_or_is_stuck() {
        check(vec![
            case(
                "everything succeeded before a crash: resume finishes",
                given(chain()).ok("a").ok("b").ok("c"),
                Event::Resume,
                vec![succeeded()],
            ),
            case(
                "downstream of a waiting retry: park until it is due",
                given(chain()).waiting("a", 1, Some(7)),
                Event::Timer,
                vec![park(7)],
            ),
            case(
                "nothing in flight, ready or waiting: STUCK",
                given(chain()).stale("a"),
                Event::Timer,
                vec![failed(Reason::Stuck, "no task can run".into())],
            ),
            case(
                "an attempt of a task the workflow does not define is ignored",
                given(one()).flying("a", 1),
                ended("old", 1, Exited(0)),
                vec![],
            ),
            case(
                "all terminal with only skips and cancels still fails TASK_FAILED",
                given(chain())
                    .failed("a", Some(Reason::ExitCode))
                    .skipped("b")
                    .cancelled("c"),
                Event::Resume,
                vec![task_failed("failed tasks: a (EXIT_CODE)")],
            ),
        ]);
    }

    #[test]
    fn resume_repairs_runs_that_cannot_go_on() {
        check(vec![
            case(
                "a RUNNING run with nothing in flight is FAILED ABANDONED",
                given(chain()).stale("a"),
                Event::Resume,
                vec![
                    abandon("a", Failed, Reason::Abandoned),
                    skip("b"),
                    skip("c"),
                    task_failed("failed tasks: a (ABANDONED)"),
                ],
            ),
            case(
                "an abandoned run is not retried, retries left or not",
                given(vec![retrying(t("a", &[]), 3, 1000)]).stale("a"),
                Event::Resume,
                vec![
                    abandon("a", Failed, Reason::Abandoned),
                    task_failed("failed tasks: a (ABANDONED)"),
                ],
            ),
            case(
                "a run in flight is not abandoned",
                given(chain()).flying("a", 1),
                Event::Resume,
                vec![],
            ),
            case(
                "a removed PENDING task is SKIPPED TASK_REMOVED, the rest runs",
                given(one()).run("old", view(Pending, None, 0, None)),
                Event::Resume,
                vec![
                    abandon("old", Skipped, Reason::TaskRemoved),
                    start("a", &[]),
                ],
            ),
            case(
                "a removed WAITING task is FAILED TASK_REMOVED and named in the error",
                given(one())
                    .ok("a")
                    .run("old", view(Waiting, Some(Reason::ExitCode), 1, Some(5))),
                Event::Resume,
                vec![
                    abandon("old", Failed, Reason::TaskRemoved),
                    task_failed("failed tasks: old (TASK_REMOVED)"),
                ],
            ),
            case(
                "a removed RUNNING task is TASK_REMOVED, not ABANDONED",
                given(one()).run("old", view(Running, None, 1, None)),
                Event::Resume,
                vec![abandon("old", Failed, Reason::TaskRemoved), start("a", &[])],
            ),
            case(
                "a removed task that ended is left alone",
                given(one()).run("old", view(Succeeded, None, 1, None)),
                Event::Resume,
                vec![start("a", &[])],
            ),
        ]);
    }

    #[test]
    fn cancel_stops_everything() {
        check(vec![
            case(
                "cancel while running",
                given(chain()).flying("a", 1),
                Event::CancelRequested,
                vec![cancel(&["b", "c"])],
            ),
            case(
                "cancel while waiting",
                given(one()).waiting("a", 1, Some(30)),
                Event::CancelRequested,
                vec![cancel(&["a"])],
            ),
            case(
                "cancel leaves ended and in-flight runs to themselves",
                given(diamond())
                    .ok("a")
                    .flying("b", 1)
                    .waiting("c", 1, Some(30)),
                Event::CancelRequested,
                vec![cancel(&["c", "d"])],
            ),
            case(
                "the stopped attempt ends CANCELLED and nothing follows",
                cancelling(),
                ended("a", 1, Stopped(Stop::Cancel)),
                vec![end_cancelled("a", 1)],
            ),
            case(
                "an attempt finishing during a cancel is recorded, nothing starts",
                cancelling(),
                ended("a", 1, Exited(0)),
                vec![end_ok("a", 1, &[])],
            ),
            case(
                "a second cancel does nothing",
                cancelling(),
                Event::CancelRequested,
                vec![],
            ),
            case(
                "a timer during a cancel does nothing",
                cancelling(),
                Event::Timer,
                vec![],
            ),
            case(
                "a cancelled attempt nobody announced cancels the rest",
                given(chain()).flying("a", 1),
                ended("a", 1, Stopped(Stop::Cancel)),
                vec![end_cancelled("a", 1), cancel(&["b", "c"])],
            ),
        ]);
    }

    fn cut_off() -> AttemptResult {
        fail(
            Reason::Shutdown,
            None,
            "the engine shut down and its grace period was over",
        )
    }

    #[test]
    fn a_crash_retries_only_tasks_that_ask_for_it() {
        let resilient = |retries| Task {
            retry_on_crash: true,
            ..retrying(t("a", &[]), retries, 1000)
        };
        check(vec![
            case(
                "retryOnCrash with a retry left: waiting, due now",
                given(vec![resilient(1)]).run("a", view(Running, None, 1, None)),
                Event::Resume,
                vec![
                    Decision::RetryAfterCrash { key: "a".into() },
                    start("a", &[]),
                ],
            ),
            case(
                "retryOnCrash without retries left: abandoned, the execution fails",
                given(vec![resilient(0)]).run("a", view(Running, None, 1, None)),
                Event::Resume,
                vec![
                    abandon("a", Failed, Reason::Abandoned),
                    task_failed("failed tasks: a (ABANDONED)"),
                ],
            ),
            case(
                "without retryOnCrash: abandoned although retries are left",
                given(vec![retrying(t("a", &[]), 3, 1000)]).run("a", view(Running, None, 1, None)),
                Event::Resume,
                vec![
                    abandon("a", Failed, Reason::Abandoned),
                    task_failed("failed tasks: a (ABANDONED)"),
                ],
            ),
        ]);
    }

    #[test]
    fn shutdown_drains_then_hands_the_execution_back() {
        check(vec![
            case(
                "shutdown while running drains: nothing more starts",
                given(chain()).flying("a", 1),
                Event::ShutdownRequested,
                vec![Decision::Release],
            ),
            case(
                "shutdown while waiting hands back at the retry time",
                given(one()).waiting("a", 1, Some(30)),
                Event::ShutdownRequested,
                vec![Decision::Release, park(30)],
            ),
            case(
                "shutdown with a task ready and none in flight hands back now",
                given(chain()).ok("a"),
                Event::ShutdownRequested,
                vec![Decision::Release, park(NOW)],
            ),
            case(
                "an attempt finishing during the drain is recorded, the rest handed back",
                shutting(),
                ended("a", 1, Exited(0)),
                vec![end_ok("a", 1, &[]), park(NOW)],
            ),
            case(
                "the last task finishing during the drain finishes the execution",
                given(one()).flying("a", 1).stop(Stop::Drain),
                ended("a", 1, Exited(0)),
                vec![end_ok("a", 1, &[]), succeeded()],
            ),
            case(
                "a failure during the drain waits for its back-off, handed back until then",
                given(vec![retrying(t("a", &[]), 1, 1000)])
                    .flying("a", 1)
                    .stop(Stop::Drain),
                ended("a", 1, Exited(1)),
                vec![end_retry("a", 1, exit(1), 1), park(1)],
            ),
            case(
                "an attempt cut off by the end of the grace fails SHUTDOWN and retries at once",
                given(vec![retrying(t("a", &[]), 1, 1000)])
                    .flying("a", 1)
                    .stop(Stop::Drain),
                ended("a", 1, Stopped(Stop::Shutdown)),
                vec![end_retry("a", 1, cut_off(), NOW), park(NOW)],
            ),
            case(
                "cut off without retries left, the task fails and the execution with it",
                shutting(),
                ended("a", 1, Stopped(Stop::Shutdown)),
                vec![
                    end("a", 1, cut_off(), Failed),
                    skip("b"),
                    skip("c"),
                    task_failed("failed tasks: a (SHUTDOWN)"),
                ],
            ),
            case(
                "a timer during the drain does nothing",
                shutting(),
                Event::Timer,
                vec![],
            ),
            case(
                "a second shutdown request with an attempt in flight does nothing",
                shutting(),
                Event::ShutdownRequested,
                vec![],
            ),
            case(
                "a shutdown during a cancel leaves it to the cancel",
                cancelling(),
                Event::ShutdownRequested,
                vec![],
            ),
            case(
                "cancel during the drain does nothing",
                shutting(),
                Event::CancelRequested,
                vec![],
            ),
        ]);
    }

    /// Runs `given` to its end from a resume, as the driver would: each
    /// started attempt ends with the next outcome `script` holds for its task
    /// (exit 0 when none is left); a park moves the clock to its wake time
    /// and resumes. Returns every decision in order.
    fn simulate(given: &Given, script: &[(&str, Outcome)]) -> Vec<Decision> {
        let mut script: Vec<(&str, Outcome)> = script.to_vec();
        let mut state = given.snapshot();
        let mut now = at(NOW);
        let mut events = std::collections::VecDeque::from([Event::Resume]);
        let mut log = Vec::new();
        while let Some(event) = events.pop_front() {
            assert!(log.len() < 1000, "no end");
            for d in plan(&state, &event, now) {
                state.apply(&d);
                match &d {
                    Decision::Start { key, .. } => {
                        let outcome = match script.iter().position(|(k, _)| k == key) {
                            Some(i) => script.remove(i).1,
                            None => Exited(0),
                        };
                        let attempt = state.runs[key].attempts;
                        events.push_back(ended_with(key, attempt, outcome, &[("from", key)]));
                    }
                    Decision::Park { wake_at } => {
                        now = *wake_at;
                        events.push_back(Event::Resume);
                    }
                    _ => {}
                }
                log.push(d);
            }
        }
        log
    }

    fn started(log: &[Decision]) -> Vec<&str> {
        log.iter()
            .filter_map(|d| match d {
                Decision::Start { key, .. } => Some(key.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_diamond_runs_to_success_with_outputs_at_the_join() {
        let log = simulate(&given(diamond()), &[]);
        assert_eq!(started(&log), ["a", "b", "c", "d"]);
        assert_eq!(log.last(), Some(&succeeded()));
        let join = log
            .iter()
            .find(|d| matches!(d, Decision::Start { key, .. } if key == "d"));
        let want = [
            ("from", "b"),
            ("B_FROM", "b"),
            ("from", "c"),
            ("C_FROM", "c"),
        ];
        assert_eq!(join, Some(&start("d", &want)));
    }

    #[test]
    fn a_task_fails_twice_then_succeeds_across_parks() {
        let given = given(vec![retrying(t("a", &[]), 2, 1000)]);
        let log = simulate(&given, &[("a", Exited(1)), ("a", Exited(1))]);
        assert_eq!(
            log,
            vec![
                start("a", &[]),
                end_retry("a", 1, exit(1), 1),
                park(1),
                start("a", &[]),
                end_retry("a", 2, exit(1), 3),
                park(3),
                start("a", &[]),
                end_ok("a", 3, &[("from", "a")]),
                succeeded(),
            ]
        );
    }

    #[test]
    fn a_failed_branch_never_starts_the_join() {
        let log = simulate(&given(fan()), &[("b2", Exited(4))]);
        assert_eq!(started(&log), ["a", "b1", "b2", "b3"]);
        assert!(log.contains(&skip("z")));
        assert_eq!(
            log.last(),
            Some(&task_failed("failed tasks: b2 (EXIT_CODE)"))
        );
    }

    #[test]
    fn a_claim_starts_what_resume_would_start_and_nothing_else() {
        let cases: Vec<(&str, Given, Vec<&str>)> = vec![
            ("one task", given(one()), vec!["a"]),
            ("a chain starts its root", given(chain()), vec!["a"]),
            (
                "a fan-out after its root",
                given(fan()).ok("a"),
                vec!["b1", "b2", "b3"],
            ),
            (
                "a diamond's join waits",
                given(diamond()).ok("a").ok("b"),
                vec!["c"],
            ),
            (
                "a due retry",
                given(one()).waiting("a", 1, Some(NOW)),
                vec!["a"],
            ),
            (
                "a retry not due",
                given(one()).waiting("a", 1, Some(NOW + 5)),
                vec![],
            ),
            (
                "a blocked task is skipped, not started",
                given(chain()).failed("a", None),
                vec![],
            ),
            // Recovery left a run RUNNING: the driver repairs it first.
            ("a stale run", given(diamond()).ok("a").stale("b"), vec![]),
            ("stopping", given(one()).stop(Stop::Drain), vec![]),
            ("all done", given(one()).ok("a"), vec![]),
        ];
        for (name, given, want) in cases {
            assert_eq!(starts_on_claim(&given.snapshot(), at(NOW)), want, "{name}");
        }
    }

    #[test]
    fn a_stored_task_run_becomes_a_view() {
        let run = TaskRun {
            id: uuid::Uuid::nil(),
            execution_id: uuid::Uuid::nil(),
            task_key: "a".into(),
            position: 0,
            state: Waiting,
            reason: Some(Reason::Timeout),
            version: 7,
            attempt_count: 2,
            next_attempt_at: Some(at(9)),
            created_at: at(0),
            updated_at: at(1),
            started_at: Some(at(0)),
            finished_at: None,
        };
        assert_eq!(
            RunView::from(&run),
            view(Waiting, Some(Reason::Timeout), 2, Some(9))
        );
    }
}
