//! What the store leaves behind when an engine dies: every backend, through
//! the store's own recovery. (Faults of real `flowstate serve` processes are
//! in `cli/tests/processes.rs`.)

use chrono::Utc;
use flowstate_store::types::*;
use flowstate_store::{StateOps, StateStore};
use flowstate_tests::{backend_tests, query_count, TestDb};
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

const LEASE: Duration = Duration::from_secs(60);

async fn claimed(store: &dyn StateStore, keys: &[&str]) -> (Execution, Vec<TaskRun>) {
    let wf = store
        .save_workflow(NewWorkflow {
            name: "faults".into(),
            definition: json!({"tasks": []}),
            description: None,
        })
        .await
        .unwrap()
        .workflow;
    let (exec, runs) = store
        .create_execution(NewExecution {
            workflow_id: wf.id,
            input: json!({}),
            task_keys: keys.iter().map(|k| k.to_string()).collect(),
        })
        .await
        .unwrap();
    let exec = store
        .claim_execution("dead", exec.id, LEASE)
        .await
        .unwrap()
        .unwrap();
    (exec, runs)
}

/// Starts an attempt of `run` and ends it `state` (the task run moves to
/// `to`); returns nothing, the rows say it.
async fn attempt(store: &dyn StateStore, run: &TaskRun, state: AttemptState, to: TaskState) {
    let (a, version) = store
        .start_run_attempt(TaskTransition::new(run.id, TaskState::Running, run.version))
        .await
        .unwrap();
    let mut t = TaskTransition::new(run.id, to, version);
    if to == TaskState::Waiting {
        t.next_attempt_at = Some(Utc::now() + chrono::Duration::hours(1));
    }
    let result = AttemptResult {
        state,
        reason: (state == AttemptState::Failed).then_some(Reason::ExitCode),
        exit_code: Some(i32::from(state == AttemptState::Failed)),
        error: None,
    };
    store
        .apply_writes(vec![
            Write::FinishAttempt {
                attempt_id: a.id,
                result,
            },
            Write::MoveTask(t),
        ])
        .await
        .unwrap();
}

/// Task runs that are not finished although their execution is.
async fn unfinished_under_finished(db: &TestDb) -> i64 {
    query_count(
        &db.raw().await,
        "SELECT COUNT(*) FROM task_runs t JOIN executions e ON e.id = t.execution_id \
         WHERE e.state IN ('SUCCEEDED', 'FAILED', 'CANCELLED') \
         AND t.state IN ('PENDING', 'WAITING', 'RUNNING')",
    )
    .await
}

async fn recovery_leaves_no_task_run_unfinished_and_keeps_successes(db: TestDb) {
    let store = db.store().await;
    // An engine died in the middle of a: ok; b: running; c: pending; d:
    // waiting for its retry.
    let (mixed, runs) = claimed(&store, &["a", "b", "c", "d"]).await;
    attempt(
        &store,
        &runs[0],
        AttemptState::Succeeded,
        TaskState::Succeeded,
    )
    .await;
    store
        .start_run_attempt(TaskTransition::new(runs[1].id, TaskState::Running, 1))
        .await
        .unwrap();
    attempt(&store, &runs[3], AttemptState::Failed, TaskState::Waiting).await;
    // Another died after its only task succeeded, before the execution's end.
    let (done, runs2) = claimed(&store, &["only"]).await;
    attempt(
        &store,
        &runs2[0],
        AttemptState::Succeeded,
        TaskState::Succeeded,
    )
    .await;

    let report = store.recover("dead", Utc::now()).await.unwrap();
    assert_eq!(report.failed, [mixed.id]);
    assert_eq!(report.succeeded, [done.id]);
    assert_eq!((report.task_runs_failed, report.task_runs_skipped), (1, 2));
    assert_eq!(report.attempts_failed, 1);

    let d = store.get_execution_detail(mixed.id).await.unwrap();
    assert_eq!(d.execution.state, ExecutionState::Failed);
    assert_eq!(d.execution.reason, Some(Reason::CrashRecovery));
    let states: Vec<_> = d
        .task_runs
        .iter()
        .map(|t| (t.task_run.state, t.task_run.reason))
        .collect();
    let crash = Some(Reason::CrashRecovery);
    assert_eq!(
        states,
        [
            (TaskState::Succeeded, None),
            (TaskState::Failed, crash),
            (TaskState::Skipped, crash),
            (TaskState::Skipped, crash),
        ]
    );
    assert_eq!(d.task_runs[1].attempts[0].state, AttemptState::Failed);
    assert_eq!(d.task_runs[3].task_run.next_attempt_at, None);

    let e = store.get_execution(done.id).await.unwrap();
    assert_eq!((e.state, e.reason), (ExecutionState::Succeeded, None));
    assert!(e.finished_at.is_some() && e.lease_expires_at.is_none());
    assert_eq!(unfinished_under_finished(&db).await, 0);
}

async fn the_lease_sweep_leaves_nothing_unfinished_either(db: TestDb) {
    let store = db.store().await;
    let (exec, runs) = claimed(&store, &["a", "b"]).await;
    store
        .start_run_attempt(TaskTransition::new(runs[0].id, TaskState::Running, 1))
        .await
        .unwrap();
    // The lease runs out: the sweep (any node) fails it.
    let later = Utc::now() + chrono::Duration::from_std(LEASE * 2).unwrap();
    let report = store.recover_expired(later).await.unwrap();
    assert_eq!(report.failed, [exec.id]);
    assert_eq!(report.task_runs_skipped, 1);
    assert_eq!(unfinished_under_finished(&db).await, 0);
    let runs: Vec<Uuid> = store
        .list_task_runs(exec.id)
        .await
        .unwrap()
        .iter()
        .filter(|r| r.state == TaskState::Skipped)
        .map(|r| r.id)
        .collect();
    assert_eq!(runs, [store.list_task_runs(exec.id).await.unwrap()[1].id]);
}

backend_tests!(
    recovery_leaves_no_task_run_unfinished_and_keeps_successes,
    the_lease_sweep_leaves_nothing_unfinished_either,
);
