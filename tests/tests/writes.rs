//! The engine's write path on every backend: an attempt started with its
//! task run's move, an attempt's end and everything it causes landed as one
//! batch, and claims that bring their task runs and take due retries before
//! new work.

use chrono::{Duration as ChronoDuration, Utc};
use flowstate_store::types::*;
use flowstate_store::{StateOps, StateStore, StoreError};
use flowstate_tests::{backend_tests, query_count, TestDb};
use serde_json::json;
use std::time::Duration;

async fn one_execution(store: &dyn StateStore, tasks: &[&str]) -> (Execution, Vec<TaskRun>) {
    let wf = store
        .save_workflow(NewWorkflow {
            name: "writes".into(),
            definition: json!({"tasks": []}),
            description: None,
        })
        .await
        .unwrap()
        .workflow;
    store
        .create_execution(NewExecution {
            workflow_id: wf.id,
            input: json!({}),
            task_keys: tasks.iter().map(|s| s.to_string()).collect(),
        })
        .await
        .unwrap()
}

fn failed(code: i32) -> AttemptResult {
    AttemptResult {
        state: AttemptState::Failed,
        reason: Some(Reason::ExitCode),
        exit_code: Some(code),
        error: Some(format!("exited with {code}")),
    }
}

async fn an_attempt_starts_with_its_task_run_and_numbers_stay_dense(db: TestDb) {
    let store = db.store().await;
    let (_, runs) = one_execution(&store, &["a"]).await;
    let run = &runs[0];

    let (first, version) = store
        .start_run_attempt(TaskTransition::new(run.id, TaskState::Running, 1))
        .await
        .unwrap();
    assert_eq!(
        (first.number, first.state, version),
        (1, AttemptState::Running, 2)
    );
    let now = store.get_task_run(run.id).await.unwrap();
    assert_eq!(
        (now.state, now.attempt_count, now.version),
        (TaskState::Running, 1, 2)
    );
    assert!(now.started_at.is_some());

    // A stale version changes nothing: no attempt row, no count.
    let err = store
        .start_run_attempt(TaskTransition::new(run.id, TaskState::Running, 1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    // Only a move to RUNNING starts an attempt.
    let err = store
        .start_run_attempt(TaskTransition::new(run.id, TaskState::Succeeded, 2))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");

    let mut retry = TaskTransition::new(run.id, TaskState::Waiting, 2);
    retry.next_attempt_at = Some(Utc::now());
    store
        .apply_writes(vec![
            Write::FinishAttempt {
                attempt_id: first.id,
                result: failed(3),
            },
            Write::MoveTask(retry),
        ])
        .await
        .unwrap();
    let (second, version) = store
        .start_run_attempt(TaskTransition::new(run.id, TaskState::Running, 3))
        .await
        .unwrap();
    assert_eq!((second.number, version), (2, 4));
    let numbers: Vec<i32> = store
        .list_attempts(run.id)
        .await
        .unwrap()
        .iter()
        .map(|a| a.number)
        .collect();
    assert_eq!(numbers, [1, 2]);
}

async fn a_batch_of_writes_lands_together_or_not_at_all(db: TestDb) {
    let store = db.store().await;
    let (exec, runs) = one_execution(&store, &["a", "b"]).await;
    let exec = store
        .claim_execution("n", exec.id, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    let (attempt, version) = store
        .start_run_attempt(TaskTransition::new(runs[0].id, TaskState::Running, 1))
        .await
        .unwrap();
    let line = |text: &str| NewLogLine {
        execution_id: exec.id,
        task_run_id: Some(runs[0].id),
        attempt: Some(1),
        ts: Utc::now(),
        stream: LogStream::System,
        line: text.into(),
    };

    // The last write is stale: nothing of the batch is kept.
    let err = store
        .apply_writes(vec![
            Write::AppendLogs(vec![line("kept only with the rest")]),
            Write::PutOutputs {
                execution_id: exec.id,
                task_run_id: runs[0].id,
                values: vec![("k".into(), json!("v"))],
            },
            Write::FinishAttempt {
                attempt_id: attempt.id,
                result: failed(1),
            },
            Write::MoveTask(TaskTransition::new(runs[0].id, TaskState::Failed, version)),
            Write::MoveTask(TaskTransition::new(runs[1].id, TaskState::Skipped, 7)),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    let conn = db.raw().await;
    assert_eq!(query_count(&conn, "SELECT COUNT(*) FROM logs").await, 0);
    assert_eq!(query_count(&conn, "SELECT COUNT(*) FROM outputs").await, 0);
    let a = &store.list_attempts(runs[0].id).await.unwrap()[0];
    assert_eq!(a.state, AttemptState::Running);
    assert_eq!(
        store.get_task_run(runs[0].id).await.unwrap().state,
        TaskState::Running
    );

    // The same batch with the right versions lands whole.
    let mut end = ExecutionTransition::new(ExecutionState::Failed, exec.version);
    end.reason = Some(Reason::TaskFailed);
    let versions = store
        .apply_writes(vec![
            Write::AppendLogs(vec![line("attempt 1 failed")]),
            Write::FinishAttempt {
                attempt_id: attempt.id,
                result: failed(1),
            },
            Write::MoveTask(TaskTransition::new(runs[0].id, TaskState::Failed, version)),
            Write::MoveTask(TaskTransition::new(runs[1].id, TaskState::Skipped, 1)),
            Write::MoveExecution {
                id: exec.id,
                transition: end,
            },
        ])
        .await
        .unwrap();
    assert_eq!(
        versions,
        [
            None,
            None,
            Some(version + 1),
            Some(2),
            Some(exec.version + 1)
        ]
    );
    let detail = store.get_execution_detail(exec.id).await.unwrap();
    assert_eq!(detail.execution.state, ExecutionState::Failed);
    assert_eq!(detail.execution.reason, Some(Reason::TaskFailed));
    let states: Vec<_> = detail.task_runs.iter().map(|t| t.task_run.state).collect();
    assert_eq!(states, [TaskState::Failed, TaskState::Skipped]);
    assert_eq!(detail.task_runs[0].attempts[0].state, AttemptState::Failed);
    assert_eq!(query_count(&conn, "SELECT COUNT(*) FROM logs").await, 1);
}

async fn claims_take_due_retries_first_and_bring_task_runs(db: TestDb) {
    let store = db.store().await;
    let lease = Duration::from_secs(60);
    let (retried, _) = one_execution(&store, &["r"]).await;
    let mut backlog = Vec::new();
    for _ in 0..3 {
        backlog.push(one_execution(&store, &["x", "y", "z"]).await.0.id);
    }
    // The oldest execution failed once and is due to retry: with three
    // PENDING executions queued behind it, a claim of one takes the retry.
    let claimed = store
        .claim_execution("n", retried.id, lease)
        .await
        .unwrap()
        .unwrap();
    let mut wait = ExecutionTransition::new(ExecutionState::Waiting, claimed.version);
    wait.wake_at = Some(Utc::now() - ChronoDuration::milliseconds(1));
    store.transition_execution(retried.id, wait).await.unwrap();
    // Newer work is created after the retry was parked.
    backlog.push(one_execution(&store, &["x", "y", "z"]).await.0.id);

    let first = store.claim_due_with_runs("n", 1, lease).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].0.id, retried.id);
    let keys: Vec<_> = first[0].1.iter().map(|r| r.task_key.as_str()).collect();
    assert_eq!(keys, ["r"]);

    let rest = store.claim_due_with_runs("n", 10, lease).await.unwrap();
    let ids: Vec<_> = rest.iter().map(|(e, _)| e.id).collect();
    assert_eq!(ids, backlog, "PENDING oldest first");
    for (e, runs) in &rest {
        assert_eq!(e.state, ExecutionState::Running);
        let keys: Vec<_> = runs.iter().map(|r| r.task_key.as_str()).collect();
        assert_eq!(keys, ["x", "y", "z"]);
        assert!(runs.iter().all(|r| r.execution_id == e.id));
    }
    assert!(store
        .claim_due_with_runs("n", 10, lease)
        .await
        .unwrap()
        .is_empty());
}

async fn a_claim_starts_the_attempts_its_caller_picks(db: TestDb) {
    let store = db.store().await;
    let lease = Duration::from_secs(60);
    let (fresh, _) = one_execution(&store, &["a", "b"]).await;
    // A task run that failed once and waits for its retry, due now.
    let (retry, runs) = one_execution(&store, &["w"]).await;
    let start = TaskTransition::new(runs[0].id, TaskState::Running, runs[0].version);
    let (first, version) = store.start_run_attempt(start).await.unwrap();
    store.finish_attempt(first.id, failed(1)).await.unwrap();
    let mut wait = TaskTransition::new(runs[0].id, TaskState::Waiting, version);
    wait.next_attempt_at = Some(Utc::now());
    store.transition_task(wait).await.unwrap();
    // A cancelled task run: never started, whatever the pick says.
    let (gone, runs) = one_execution(&store, &["c"]).await;
    let cancel = TaskTransition::new(runs[0].id, TaskState::Cancelled, runs[0].version);
    store.transition_task(cancel).await.unwrap();

    // The pick names each execution's first task run and an id of no run.
    let pick: std::sync::Arc<StartPick> = std::sync::Arc::new(|claimed| {
        claimed
            .iter()
            .map(|c| vec![c.runs[0].id, uuid::Uuid::now_v7()])
            .collect()
    });
    let claimed = store.claim_and_start("n", 10, lease, pick).await.unwrap();
    let ids: Vec<_> = claimed.iter().map(|c| c.execution.id).collect();
    assert_eq!(ids, [fresh.id, retry.id, gone.id]);

    let states = |c: &Claimed| -> Vec<(TaskState, i32)> {
        c.runs.iter().map(|r| (r.state, r.attempt_count)).collect()
    };
    assert_eq!(
        states(&claimed[0]),
        [(TaskState::Running, 1), (TaskState::Pending, 0)]
    );
    assert_eq!(states(&claimed[1]), [(TaskState::Running, 2)]);
    assert_eq!(states(&claimed[2]), [(TaskState::Cancelled, 0)]);
    let numbers: Vec<Vec<i32>> = claimed
        .iter()
        .map(|c| c.started.iter().map(|a| a.number).collect())
        .collect();
    assert_eq!(numbers, [vec![1], vec![2], vec![]]);

    // What the claim returned is what is stored, versions included.
    for c in &claimed {
        assert_eq!(store.list_task_runs(c.execution.id).await.unwrap(), c.runs);
        let detail = store.get_execution_detail(c.execution.id).await.unwrap();
        let running: Vec<_> = detail
            .task_runs
            .iter()
            .flat_map(|t| &t.attempts)
            .filter(|a| a.state == AttemptState::Running)
            .cloned()
            .collect();
        assert_eq!(running, c.started);
    }
    // A started run goes on through the usual guarded moves.
    let a = &claimed[0].runs[0];
    store
        .apply_writes(vec![
            Write::FinishAttempt {
                attempt_id: claimed[0].started[0].id,
                result: AttemptResult {
                    state: AttemptState::Succeeded,
                    reason: None,
                    exit_code: Some(0),
                    error: None,
                },
            },
            Write::MoveTask(TaskTransition::new(a.id, TaskState::Succeeded, a.version)),
        ])
        .await
        .unwrap();
}

fn succeeded() -> AttemptResult {
    AttemptResult {
        state: AttemptState::Succeeded,
        reason: None,
        exit_code: Some(0),
        error: None,
    }
}

/// Claims and starts every due execution's first task run.
async fn claim_started(store: &dyn StateStore, limit: u64) -> Vec<Claimed> {
    let pick: std::sync::Arc<StartPick> =
        std::sync::Arc::new(|claimed| claimed.iter().map(|c| vec![c.runs[0].id]).collect());
    store
        .claim_and_start("n", limit, Duration::from_secs(60), pick)
        .await
        .unwrap()
}

/// What a driver writes when the one attempt of `c` ends with `result`:
/// the attempt, its task run and the execution, each from the version held.
fn ended(c: &Claimed, result: AttemptResult) -> Vec<Write> {
    let (task, exec) = match result.state {
        AttemptState::Succeeded => (TaskState::Succeeded, ExecutionState::Succeeded),
        _ => (TaskState::Failed, ExecutionState::Failed),
    };
    let run = &c.runs[0];
    let mut t = TaskTransition::new(run.id, task, run.version);
    t.reason = result.reason;
    let mut e = ExecutionTransition::new(exec, c.execution.version);
    e.reason = (exec == ExecutionState::Failed).then_some(Reason::TaskFailed);
    vec![
        Write::FinishAttempt {
            attempt_id: c.started[0].id,
            result,
        },
        Write::MoveTask(t),
        Write::MoveExecution {
            id: c.execution.id,
            transition: e,
        },
    ]
}

async fn ends_of_several_executions_land_with_the_next_claim_or_not_at_all(db: TestDb) {
    let store = db.store().await;
    for _ in 0..3 {
        one_execution(&store, &["a"]).await;
    }
    let running = claim_started(&store, 3).await;
    let (next, _) = one_execution(&store, &["a"]).await;
    let claim = |limit| ClaimRequest {
        node_id: "n".into(),
        limit,
        lease: Duration::from_secs(60),
        pick: std::sync::Arc::new(|claimed: &[Claimed]| {
            claimed.iter().map(|c| vec![c.runs[0].id]).collect()
        }),
    };

    // One batch holds a stale version: nothing lands, not even the claim.
    let mut stale = ended(&running[1], succeeded());
    if let Write::MoveExecution { transition, .. } = &mut stale[2] {
        transition.expected_version -= 1;
    }
    let batches = vec![ended(&running[0], succeeded()), stale];
    let refused = store.record_and_claim(batches, Some(claim(5))).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict { ref id, .. }) if *id == running[1].execution.id.to_string()),
        "{refused:?}"
    );
    for c in &running {
        let now = store.get_execution_detail(c.execution.id).await.unwrap();
        assert_eq!(now.execution, c.execution);
        assert_eq!(now.task_runs[0].task_run, c.runs[0]);
        assert_eq!(now.task_runs[0].attempts, c.started);
    }
    let waiting = store.get_execution(next.id).await.unwrap();
    assert_eq!(waiting.state, ExecutionState::Pending);

    // Two successes and a failure (two shapes of move per table) land with
    // the claim of the next execution, its first attempt started.
    let batches = vec![
        ended(&running[0], succeeded()),
        ended(&running[1], failed(3)),
        ended(&running[2], succeeded()),
    ];
    let Recorded { versions, claimed } = store
        .record_and_claim(batches, Some(claim(5)))
        .await
        .unwrap();
    let want = |c: &Claimed| {
        vec![
            None,
            Some(c.runs[0].version + 1),
            Some(c.execution.version + 1),
        ]
    };
    assert_eq!(versions, running.iter().map(want).collect::<Vec<_>>());
    let states = [
        ExecutionState::Succeeded,
        ExecutionState::Failed,
        ExecutionState::Succeeded,
    ];
    for (c, state) in running.iter().zip(states) {
        let now = store.get_execution_detail(c.execution.id).await.unwrap();
        assert_eq!(
            (now.execution.state, now.execution.version),
            (state, c.execution.version + 1)
        );
        assert!(now.execution.finished_at.is_some() && now.execution.lease_expires_at.is_none());
        let run = &now.task_runs[0];
        assert_eq!(run.task_run.version, c.runs[0].version + 1);
        assert_eq!(
            run.attempts[0].state.to_string(),
            run.task_run.state.to_string()
        );
    }
    let failed_run = &store
        .get_execution_detail(running[1].execution.id)
        .await
        .unwrap()
        .task_runs[0];
    assert_eq!(failed_run.task_run.reason, Some(Reason::ExitCode));
    assert_eq!(failed_run.attempts[0].exit_code, Some(3));
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].execution.id, next.id);
    assert_eq!(claimed[0].started.len(), 1);

    // An attempt recorded twice: refused as the single write would be.
    let c = &claimed[0];
    let again = vec![ended(c, succeeded()), ended(&running[0], succeeded())];
    let refused = store.record_and_claim(again, None).await;
    assert!(
        matches!(refused, Err(StoreError::InvalidTransition { entity: "attempt", ref id, .. }) if *id == running[0].started[0].id.to_string()),
        "{refused:?}"
    );
    assert_eq!(
        store.get_execution(c.execution.id).await.unwrap(),
        c.execution
    );

    // Batches with inserts land write by write, in order; without a claim.
    let mut writes = vec![Write::PutOutputs {
        execution_id: c.execution.id,
        task_run_id: c.runs[0].id,
        values: vec![("k".into(), json!("v"))],
    }];
    writes.extend(ended(c, succeeded()));
    let Recorded {
        versions,
        claimed: none,
    } = store.record_and_claim(vec![writes], None).await.unwrap();
    assert!(none.is_empty());
    assert_eq!(
        versions,
        [vec![
            None,
            None,
            Some(c.runs[0].version + 1),
            Some(c.execution.version + 1)
        ]]
    );
    assert_eq!(store.list_outputs(c.execution.id).await.unwrap().len(), 1);

    // Checked before anything opens.
    let bad = store.record_and_claim(Vec::new(), Some(claim(0))).await;
    assert!(matches!(bad, Err(StoreError::InvalidInput(_))), "{bad:?}");
}

backend_tests!(
    an_attempt_starts_with_its_task_run_and_numbers_stay_dense,
    a_batch_of_writes_lands_together_or_not_at_all,
    claims_take_due_retries_first_and_bring_task_runs,
    a_claim_starts_the_attempts_its_caller_picks,
    ends_of_several_executions_land_with_the_next_claim_or_not_at_all,
);
