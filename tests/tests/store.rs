//! The StateStore on every backend: CRUD, lists and paging, the state machine,
//! transactions, concurrency, recovery and retention.

use chrono::{Duration as ChronoDuration, Utc};
use flowstate_store::query::{ExecutionQuery, LogQuery, SortOrder, WorkflowQuery, WorkflowSort};
use flowstate_store::types::*;
use flowstate_store::{SeaStore, StateOps, StateStore, StoreError, CRASH_RECOVERY};
use flowstate_tests::{backend_tests, query_count, Backend, TestDb};
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

async fn workflow(store: &dyn StateStore, name: &str) -> Workflow {
    store
        .save_workflow(NewWorkflow {
            name: name.into(),
            definition: json!({"tasks": [{"id": "a"}, {"id": "b"}]}),
            description: Some(format!("{name} workflow")),
        })
        .await
        .unwrap()
        .workflow
}

async fn execution(
    store: &dyn StateOps,
    wf: &Workflow,
    tasks: &[&str],
) -> (Execution, Vec<TaskRun>) {
    store
        .create_execution(NewExecution {
            workflow_id: wf.id,
            input: json!({"k": "v"}),
            task_keys: tasks.iter().map(|s| s.to_string()).collect(),
        })
        .await
        .unwrap()
}

/// Moves an execution through the given states, returning it re-read.
async fn drive(store: &dyn StateOps, id: Uuid, states: &[ExecutionState]) -> Execution {
    let mut version = store.get_execution(id).await.unwrap().version;
    for s in states {
        let mut t = ExecutionTransition::new(*s, version);
        if *s == ExecutionState::Waiting {
            t.wake_at = Some(Utc::now() + ChronoDuration::seconds(60));
        }
        version = store.transition_execution(id, t).await.unwrap();
    }
    store.get_execution(id).await.unwrap()
}

async fn workflows_are_saved_versioned_listed_and_deleted(db: TestDb) {
    let store = db.store().await;
    let def = json!({"tasks": [{"id": "a"}]});
    let new = |def: serde_json::Value| NewWorkflow {
        name: "nightly".into(),
        definition: def,
        description: None,
    };
    let first = store.save_workflow(new(def.clone())).await.unwrap();
    assert!(first.changed);
    assert_eq!(first.workflow.version, 1);
    let same = store.save_workflow(new(def.clone())).await.unwrap();
    assert!(!same.changed);
    assert_eq!(same.workflow.version, 1);
    assert_eq!(same.workflow.id, first.workflow.id);
    let changed = store
        .save_workflow(new(json!({"tasks": [{"id": "a"}, {"id": "b"}]})))
        .await
        .unwrap();
    assert!(changed.changed);
    assert_eq!(changed.workflow.version, 2);

    let by_id = store.get_workflow(first.workflow.id).await.unwrap();
    assert_eq!(by_id, changed.workflow);
    assert_eq!(store.get_workflow_by_name("nightly").await.unwrap(), by_id);
    assert!(matches!(
        store.get_workflow_by_name("nope").await,
        Err(StoreError::NotFound {
            entity: "workflow",
            ..
        })
    ));

    for name in ["alpha", "beta", "gamma-report", "delta-report"] {
        workflow(&store, name).await;
    }
    let page = store
        .list_workflows(WorkflowQuery {
            limit: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.total, 5);
    let names: Vec<_> = page.items.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["alpha", "beta"]);
    let page = store
        .list_workflows(WorkflowQuery {
            limit: Some(2),
            offset: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    let names: Vec<_> = page.items.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["delta-report", "gamma-report"]);
    let reports = store
        .list_workflows(WorkflowQuery {
            name_contains: Some("report".into()),
            sort: WorkflowSort::CreatedDesc,
            ..Default::default()
        })
        .await
        .unwrap();
    let names: Vec<_> = reports.items.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["delta-report", "gamma-report"]);

    // Soft delete hides it; executions survive; saving restores it.
    let (exec, _) = execution(&store, &by_id, &["a"]).await;
    store.delete_workflow(by_id.id, false).await.unwrap();
    let visible = store
        .list_workflows(WorkflowQuery::default())
        .await
        .unwrap();
    assert_eq!(visible.total, 4);
    let all = store
        .list_workflows(WorkflowQuery {
            include_deleted: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.total, 5);
    assert!(store
        .get_workflow(by_id.id)
        .await
        .unwrap()
        .deleted_at
        .is_some());
    store.get_execution(exec.id).await.unwrap();
    let restored = store
        .save_workflow(new(json!({"tasks": [{"id": "a"}, {"id": "b"}]})))
        .await
        .unwrap();
    assert!(restored.workflow.deleted_at.is_none());
    assert_eq!(restored.workflow.version, 2);

    // Hard delete removes the workflow and its executions.
    store.delete_workflow(by_id.id, true).await.unwrap();
    assert!(matches!(
        store.get_workflow(by_id.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.get_execution(exec.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.delete_workflow(by_id.id, true).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn executions_are_created_with_their_task_runs(db: TestDb) {
    let store = db.store().await;
    let wf = workflow(&store, "build").await;
    let (exec, runs) = execution(&store, &wf, &["fetch", "build", "publish"]).await;
    assert_eq!(exec.state, ExecutionState::Pending);
    assert_eq!(exec.version, 1);
    assert_eq!(exec.workflow_version, 1);
    let stored = store.get_execution(exec.id).await.unwrap();
    assert_eq!(stored, exec, "what create returns is what is stored");
    let listed = store.list_task_runs(exec.id).await.unwrap();
    assert_eq!(listed, runs);
    let keys: Vec<_> = listed.iter().map(|r| r.task_key.as_str()).collect();
    assert_eq!(keys, ["fetch", "build", "publish"]);
    assert!(listed.iter().all(|r| r.state == TaskState::Pending));

    let extra = store.create_task_run(exec.id, "notify").await.unwrap();
    assert_eq!(extra.position, 3);
    assert_eq!(store.get_task_run(extra.id).await.unwrap(), extra);
    assert!(matches!(
        store.create_task_run(exec.id, "notify").await,
        Err(StoreError::Duplicate(_))
    ));

    let err = store
        .create_execution(NewExecution {
            workflow_id: wf.id,
            input: json!({}),
            task_keys: vec!["a".into(), "a".into()],
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
    let err = store
        .create_execution(NewExecution {
            workflow_id: Uuid::now_v7(),
            input: json!({}),
            task_keys: vec![],
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NotFound {
                entity: "workflow",
                ..
            }
        ),
        "{err:?}"
    );

    // Many task runs go in several multi-row inserts.
    let keys: Vec<String> = (0..1200).map(|i| format!("t{i:04}")).collect();
    let (big, runs) = store
        .create_execution(NewExecution {
            workflow_id: wf.id,
            input: json!({}),
            task_keys: keys.clone(),
        })
        .await
        .unwrap();
    assert_eq!(runs.len(), 1200);
    let listed = store.list_task_runs(big.id).await.unwrap();
    let got: Vec<_> = listed.iter().map(|r| r.task_key.clone()).collect();
    assert_eq!(got, keys);
}

async fn list_filters_select_exactly_the_matching_rows(db: TestDb) {
    let store = db.store().await;
    let a = workflow(&store, "a").await;
    let b = workflow(&store, "b").await;
    let mut made = Vec::new();
    for i in 0..24 {
        let wf = if i % 2 == 0 { &a } else { &b };
        let (e, _) = execution(&store, wf, &["t"]).await;
        let e = match i % 4 {
            0 => e,
            1 => drive(&store, e.id, &[ExecutionState::Running]).await,
            2 => {
                drive(
                    &store,
                    e.id,
                    &[ExecutionState::Running, ExecutionState::Succeeded],
                )
                .await
            }
            _ => {
                drive(
                    &store,
                    e.id,
                    &[ExecutionState::Running, ExecutionState::Failed],
                )
                .await
            }
        };
        made.push(e);
    }
    made.sort_by_key(|e| (e.created_at, e.id));
    let ids = |page: &flowstate_store::query::Page<Execution>| -> Vec<Uuid> {
        page.items.iter().map(|e| e.id).collect()
    };
    let expect = |pred: &dyn Fn(&Execution) -> bool| -> Vec<Uuid> {
        made.iter()
            .rev()
            .filter(|e| pred(e))
            .map(|e| e.id)
            .collect()
    };
    let list = |q: ExecutionQuery| {
        let store = &store;
        async move { store.list_executions(q).await.unwrap() }
    };

    let all = list(ExecutionQuery {
        limit: Some(100),
        ..Default::default()
    })
    .await;
    assert_eq!(all.total, 24);
    assert_eq!(ids(&all), expect(&|_| true), "newest first by default");
    assert_eq!(all.next_cursor, None);

    let by_wf = list(ExecutionQuery {
        workflow_id: Some(a.id),
        limit: Some(100),
        ..Default::default()
    })
    .await;
    assert_eq!(by_wf.total, 12);
    assert_eq!(ids(&by_wf), expect(&|e| e.workflow_id == a.id));

    let terminal = list(ExecutionQuery {
        states: vec![ExecutionState::Succeeded, ExecutionState::Failed],
        limit: Some(100),
        ..Default::default()
    })
    .await;
    assert_eq!(terminal.total, 12);
    assert_eq!(ids(&terminal), expect(&|e| e.state.is_terminal()));

    let none = list(ExecutionQuery {
        states: vec![ExecutionState::Cancelled],
        ..Default::default()
    })
    .await;
    assert_eq!((none.total, none.items.len()), (0, 0));

    // [since, until) with both ends on stored values: the lower is in, the upper out.
    let (lo, hi) = (made[5].created_at, made[17].created_at);
    let ranged = list(ExecutionQuery {
        since: Some(lo),
        until: Some(hi),
        limit: Some(100),
        ..Default::default()
    })
    .await;
    let want = expect(&|e| e.created_at >= lo && e.created_at < hi);
    assert_eq!(ids(&ranged), want);
    assert!(want.contains(&made[5].id) && !want.contains(&made[17].id));
    assert_eq!(ranged.total, want.len() as u64);

    let combined = list(ExecutionQuery {
        workflow_id: Some(b.id),
        states: vec![ExecutionState::Running],
        since: Some(lo),
        limit: Some(100),
        sort: SortOrder::Ascending,
        ..Default::default()
    })
    .await;
    let mut want = expect(&|e| {
        e.workflow_id == b.id && e.state == ExecutionState::Running && e.created_at >= lo
    });
    want.reverse();
    assert_eq!(ids(&combined), want);
    assert!(!want.is_empty());

    let claimed = store
        .claim_due("node-x", 2, Duration::from_secs(60))
        .await
        .unwrap();
    let owned = list(ExecutionQuery {
        owner: Some("node-x".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(owned.total, 2);
    let mut got = ids(&owned);
    got.sort();
    let mut want: Vec<_> = claimed.iter().map(|e| e.id).collect();
    want.sort();
    assert_eq!(got, want);

    for bad in [0, 1001] {
        let err = store
            .list_executions(ExecutionQuery {
                limit: Some(bad),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
    }
    let err = store
        .list_executions(ExecutionQuery {
            offset: Some(10_001),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("page deeper with the cursor"),
        "{err}"
    );
    assert!(all.total_exact);
    let err = store
        .list_executions(ExecutionQuery {
            after: Some("not-a-cursor".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("malformed cursor 'not-a-cursor'"),
        "{err}"
    );
}

async fn paging_by_offset_and_by_cursor_returns_every_row_once(db: TestDb) {
    let store = db.store().await;
    let wf = workflow(&store, "pages").await;
    let other = workflow(&store, "other").await;
    let mut mine = Vec::new();
    for i in 0..57 {
        let (e, _) = execution(&store, if i % 3 == 0 { &other } else { &wf }, &[]).await;
        if e.workflow_id == wf.id {
            mine.push(e);
        }
    }
    mine.sort_by_key(|e| (e.created_at, e.id));
    for sort in [SortOrder::Descending, SortOrder::Ascending] {
        let mut want: Vec<Uuid> = mine.iter().map(|e| e.id).collect();
        if sort == SortOrder::Descending {
            want.reverse();
        }
        let base = ExecutionQuery {
            workflow_id: Some(wf.id),
            limit: Some(7),
            sort,
            ..Default::default()
        };
        // By offset.
        let mut got = Vec::new();
        let mut offset = 0;
        loop {
            let page = store
                .list_executions(ExecutionQuery {
                    offset: Some(offset),
                    ..base.clone()
                })
                .await
                .unwrap();
            assert_eq!(page.total, want.len() as u64);
            if page.items.is_empty() {
                break;
            }
            offset += page.items.len() as u64;
            got.extend(page.items.iter().map(|e| e.id));
        }
        assert_eq!(got, want, "offset paging {sort:?}");
        // By cursor.
        let mut got = Vec::new();
        let mut after = None;
        let mut pages = 0;
        loop {
            let page = store
                .list_executions(ExecutionQuery {
                    after: after.clone(),
                    ..base.clone()
                })
                .await
                .unwrap();
            assert_eq!(page.total, want.len() as u64);
            got.extend(page.items.iter().map(|e| e.id));
            pages += 1;
            match page.next_cursor {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        assert_eq!(got, want, "cursor paging {sort:?}");
        assert_eq!(pages, want.len().div_ceil(7));
    }
}

async fn task_runs_and_attempts_are_tracked(db: TestDb) {
    let store = db.store().await;
    let wf = workflow(&store, "tracked").await;
    let (exec, runs) = execution(&store, &wf, &["only"]).await;
    drive(&store, exec.id, &[ExecutionState::Running]).await;
    let run = &runs[0];
    let v = store
        .transition_task(TaskTransition::new(run.id, TaskState::Running, run.version))
        .await
        .unwrap();
    let first = store.start_attempt(run.id).await.unwrap();
    assert_eq!(first.number, 1);
    assert_eq!(first.state, AttemptState::Running);
    store
        .finish_attempt(
            first.id,
            AttemptResult {
                state: AttemptState::Failed,
                reason: Some(Reason::ExitCode),
                exit_code: Some(3),
                error: Some("exit status 3".into()),
            },
        )
        .await
        .unwrap();
    let err = store
        .finish_attempt(
            first.id,
            AttemptResult {
                state: AttemptState::Succeeded,
                reason: None,
                exit_code: Some(0),
                error: None,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::InvalidTransition { .. }),
        "{err:?}"
    );

    let mut wait = TaskTransition::new(run.id, TaskState::Waiting, v);
    wait.next_attempt_at = Some(Utc::now() + ChronoDuration::seconds(2));
    let v = store.transition_task(wait).await.unwrap();
    let waiting = store.get_task_run(run.id).await.unwrap();
    assert_eq!(waiting.state, TaskState::Waiting);
    assert!(waiting.next_attempt_at.is_some());
    let v = store
        .transition_task(TaskTransition::new(run.id, TaskState::Running, v))
        .await
        .unwrap();
    let second = store.start_attempt(run.id).await.unwrap();
    assert_eq!(second.number, 2);
    store
        .finish_attempt(
            second.id,
            AttemptResult {
                state: AttemptState::Succeeded,
                reason: None,
                exit_code: Some(0),
                error: None,
            },
        )
        .await
        .unwrap();
    store
        .transition_task(TaskTransition::new(run.id, TaskState::Succeeded, v))
        .await
        .unwrap();

    let attempts = store.list_attempts(run.id).await.unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].exit_code, Some(3));
    assert_eq!(attempts[0].error.as_deref(), Some("exit status 3"));
    assert_eq!(attempts[1].state, AttemptState::Succeeded);
    assert!(attempts.iter().all(|a| a.finished_at.is_some()));
    let done = store.get_task_run(run.id).await.unwrap();
    assert_eq!(done.state, TaskState::Succeeded);
    assert_eq!(done.attempt_count, 2);
    assert!(done.started_at.is_some() && done.finished_at.is_some());
    assert!(done.next_attempt_at.is_none());

    store
        .put_outputs(
            exec.id,
            run.id,
            vec![
                ("rows".into(), json!(10)),
                ("file".into(), json!("out.csv")),
            ],
        )
        .await
        .unwrap();
    store
        .put_outputs(exec.id, run.id, vec![("rows".into(), json!(11))])
        .await
        .unwrap();
    let outputs = store.list_outputs(exec.id).await.unwrap();
    let kv: Vec<_> = outputs
        .iter()
        .map(|o| (o.key.as_str(), o.value.clone()))
        .collect();
    assert_eq!(kv, [("file", json!("out.csv")), ("rows", json!(11))]);

    let detail = store.get_execution_detail(exec.id).await.unwrap();
    assert_eq!(detail.workflow_name, "tracked");
    assert_eq!(detail.task_runs.len(), 1);
    assert_eq!(detail.task_runs[0].attempts, attempts);
    assert_eq!(detail.outputs, outputs);
}

async fn logs_are_appended_in_batches_and_read_in_pages(db: TestDb) {
    let store = db.store().await;
    let wf = workflow(&store, "logs").await;
    let (exec, runs) = execution(&store, &wf, &["a", "b"]).await;
    let line = |i: usize| NewLogLine {
        execution_id: exec.id,
        task_run_id: Some(runs[i % 2].id),
        attempt: Some(1),
        ts: Utc::now(),
        stream: if i.is_multiple_of(10) {
            LogStream::Stderr
        } else {
            LogStream::Stdout
        },
        line: format!("line {i:05} {}", "x".repeat(if i == 7 { 5000 } else { 10 })),
    };
    let written = store
        .append_logs((0..2500).map(line).collect())
        .await
        .unwrap();
    assert_eq!(written, 2500);
    assert_eq!(store.append_logs(vec![]).await.unwrap(), 0);

    let got = flowstate_tests::all_logs(&store, exec.id, 700).await;
    assert_eq!(got.len(), 2500);
    assert!(got.windows(2).all(|w| w[0].id < w[1].id));
    for (i, l) in got.iter().enumerate() {
        assert!(l.line.starts_with(&format!("line {i:05}")), "{}", l.line);
    }
    assert_eq!(got[7].line.len(), 11 + 5000, "long lines are not truncated");
    assert_eq!(got[10].stream, LogStream::Stderr);

    let only_b = store
        .read_logs(LogQuery {
            execution_id: exec.id,
            task_run_id: Some(runs[1].id),
            limit: Some(10_000),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(only_b.len(), 1250);
    assert!(only_b.iter().all(|l| l.task_run_id == Some(runs[1].id)));
}

async fn illegal_moves_and_stale_versions_change_nothing(db: TestDb) {
    let store = db.store().await;
    let wf = workflow(&store, "rules").await;
    let (exec, runs) = execution(&store, &wf, &["t"]).await;

    let err = store
        .transition_execution(
            exec.id,
            ExecutionTransition::new(ExecutionState::Succeeded, 1),
        )
        .await
        .unwrap_err();
    match &err {
        StoreError::InvalidTransition { from, to, .. } => {
            assert_eq!((from.as_str(), to.as_str()), ("PENDING", "SUCCEEDED"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.get_execution(exec.id).await.unwrap(), exec);

    let v = store
        .transition_execution(
            exec.id,
            ExecutionTransition::new(ExecutionState::Running, 1),
        )
        .await
        .unwrap();
    assert_eq!(v, 2);
    let err = store
        .transition_execution(
            exec.id,
            ExecutionTransition::new(ExecutionState::Succeeded, 1),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                expected: 1,
                actual: 2,
                ..
            }
        ),
        "{err:?}"
    );
    let running = store.get_execution(exec.id).await.unwrap();
    assert_eq!(running.state, ExecutionState::Running);
    assert!(running.started_at.is_some());
    assert!(running.updated_at >= exec.updated_at);

    let mut fail = ExecutionTransition::new(ExecutionState::Failed, 2);
    fail.reason = Some(Reason::TaskFailed);
    fail.error = Some("task t failed".into());
    store.transition_execution(exec.id, fail).await.unwrap();
    let failed = store.get_execution(exec.id).await.unwrap();
    assert_eq!(failed.reason, Some(Reason::TaskFailed));
    assert!(failed.finished_at.is_some());
    for to in ExecutionState::ALL {
        let mut t = ExecutionTransition::new(*to, 3);
        t.wake_at = Some(Utc::now());
        let err = store.transition_execution(exec.id, t).await.unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidTransition { .. }),
            "{to}: {err:?}"
        );
    }
    assert_eq!(store.get_execution(exec.id).await.unwrap(), failed);

    let err = store
        .transition_task(TaskTransition::new(runs[0].id, TaskState::Succeeded, 1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::InvalidTransition { .. }),
        "{err:?}"
    );
    let err = store
        .transition_task(TaskTransition::new(runs[0].id, TaskState::Skipped, 9))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    let err = store
        .transition_task(TaskTransition::new(Uuid::now_v7(), TaskState::Running, 1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    let err = store
        .transition_execution(
            exec.id,
            ExecutionTransition::new(ExecutionState::Waiting, 3),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("wake_at"), "{err}");
}

async fn transactions_commit_together_or_leave_nothing(db: TestDb) {
    let store = db.store().await;
    let wf = workflow(&store, "tx").await;

    // An error midway, then drop: nothing of the transaction remains.
    let tx = store.begin().await.unwrap();
    let (inside, _) = execution(tx.as_ref(), &wf, &["a", "b"]).await;
    assert_eq!(tx.get_execution(inside.id).await.unwrap().id, inside.id);
    let err = tx
        .transition_execution(
            inside.id,
            ExecutionTransition::new(ExecutionState::Succeeded, 1),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidTransition { .. }));
    drop(tx);
    assert!(matches!(
        store.get_execution(inside.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(store.list_task_runs(inside.id).await.unwrap().is_empty());

    // Explicit rollback.
    let tx = store.begin().await.unwrap();
    let (rolled, _) = execution(tx.as_ref(), &wf, &["a"]).await;
    tx.rollback().await.unwrap();
    assert!(store.get_execution(rolled.id).await.is_err());

    // Commit: everything is there.
    let tx = store.begin().await.unwrap();
    let (kept, runs) = execution(tx.as_ref(), &wf, &["a", "b"]).await;
    tx.transition_execution(
        kept.id,
        ExecutionTransition::new(ExecutionState::Running, 1),
    )
    .await
    .unwrap();
    tx.start_attempt(runs[0].id).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        store.get_execution(kept.id).await.unwrap().state,
        ExecutionState::Running
    );
    assert_eq!(store.list_attempts(runs[0].id).await.unwrap().len(), 1);

    // The atomic call: all moves land...
    let tasks = vec![
        TaskTransition::new(runs[0].id, TaskState::Running, 1),
        TaskTransition::new(runs[1].id, TaskState::Skipped, 1),
    ];
    let mut wait = ExecutionTransition::new(ExecutionState::Waiting, 2);
    wait.wake_at = Some(Utc::now());
    store
        .transition_execution_and_tasks(kept.id, wait, tasks)
        .await
        .unwrap();
    let runs_now = store.list_task_runs(kept.id).await.unwrap();
    assert_eq!(runs_now[0].state, TaskState::Running);
    assert_eq!(runs_now[1].state, TaskState::Skipped);
    let waiting = store.get_execution(kept.id).await.unwrap();
    assert_eq!(waiting.state, ExecutionState::Waiting);
    assert_eq!(waiting.owner, None);

    // ...or none: one stale task version undoes the moves before it.
    let tasks = vec![
        TaskTransition::new(runs[0].id, TaskState::Succeeded, 2),
        TaskTransition::new(runs[1].id, TaskState::Cancelled, 1),
    ];
    let err = store
        .transition_execution_and_tasks(
            kept.id,
            ExecutionTransition::new(ExecutionState::Cancelled, 3),
            tasks,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                expected: 1,
                actual: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(store.get_execution(kept.id).await.unwrap(), waiting);
    assert_eq!(store.list_task_runs(kept.id).await.unwrap(), runs_now);
}

async fn concurrent_writers_never_see_a_locked_database(db: TestDb) {
    let first: Arc<dyn StateStore> = Arc::new(db.store().await);
    let second: Arc<dyn StateStore> = Arc::new(db.store().await);
    let wf = workflow(first.as_ref(), "busy").await;
    let mut handles = Vec::new();
    for writer in 0..8 {
        let store = if writer % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        let (exec, _) = execution(store.as_ref(), &wf, &["t"]).await;
        handles.push(tokio::spawn(async move {
            let mut version = exec.version;
            for i in 0..200 {
                let mut t = ExecutionTransition::new(
                    if i % 2 == 0 {
                        ExecutionState::Running
                    } else {
                        ExecutionState::Waiting
                    },
                    version,
                );
                t.wake_at = Some(Utc::now());
                version = store
                    .transition_execution(exec.id, t)
                    .await
                    .unwrap_or_else(|e| panic!("writer {writer}, step {i}: {e}"));
            }
            (exec.id, version)
        }));
    }
    for h in handles {
        let (id, version) = h.await.unwrap();
        let e = first.get_execution(id).await.unwrap();
        assert_eq!(e.version, 201);
        assert_eq!(version, 201);
        assert_eq!(e.state, ExecutionState::Waiting);
    }
}

async fn stale_concurrent_transitions_conflict_without_lost_updates(db: TestDb) {
    let store: Arc<dyn StateStore> = Arc::new(db.store().await);
    let wf = workflow(store.as_ref(), "race").await;
    let (exec, _) = execution(store.as_ref(), &wf, &[]).await;
    let racers: Vec<_> = (0..12)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut t = ExecutionTransition::new(ExecutionState::Running, 1);
                t.error = Some(format!("racer-{i}"));
                store.transition_execution(exec.id, t).await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for (i, r) in racers.into_iter().enumerate() {
        match r.await.unwrap() {
            Ok(v) => winners.push((i, v)),
            Err(StoreError::Conflict { .. }) | Err(StoreError::InvalidTransition { .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one stale-version writer wins");
    let e = store.get_execution(exec.id).await.unwrap();
    assert_eq!(e.version, 2);
    assert_eq!(e.error, Some(format!("racer-{}", winners[0].0)));
}

async fn concurrent_attempt_starters_get_dense_numbers(db: TestDb) {
    let store: Arc<dyn StateStore> = Arc::new(db.store().await);
    let wf = workflow(store.as_ref(), "attempts").await;
    let (_, runs) = execution(store.as_ref(), &wf, &["t"]).await;
    let run = runs[0].id;
    let starters: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.start_attempt(run).await.unwrap().number })
        })
        .collect();
    let mut numbers = Vec::new();
    for s in starters {
        numbers.push(s.await.unwrap());
    }
    numbers.sort();
    assert_eq!(numbers, (1..=16).collect::<Vec<_>>());
    let stored: Vec<i32> = store
        .list_attempts(run)
        .await
        .unwrap()
        .iter()
        .map(|a| a.number)
        .collect();
    assert_eq!(stored, (1..=16).collect::<Vec<_>>());
    assert_eq!(store.get_task_run(run).await.unwrap().attempt_count, 16);
}

async fn recovery_fails_dead_work_and_requeues_the_rest(db: TestDb) {
    let store = db.store().await;
    let wf = workflow(&store, "recover").await;
    let lease = Duration::from_secs(600);

    // Node "dead" claims two, node "alive" one (with a live lease), "gone" one
    // with a lease that expires at once.
    let (mine, mine_runs) = execution(&store, &wf, &["a", "b"]).await;
    let (mine2, _) = execution(&store, &wf, &["a"]).await;
    let claimed = store.claim_due("dead", 2, lease).await.unwrap();
    assert_eq!(
        claimed.iter().map(|e| e.id).collect::<HashSet<_>>(),
        HashSet::from([mine.id, mine2.id])
    );
    let (live, _) = execution(&store, &wf, &["a"]).await;
    assert_eq!(
        store.claim_due("alive", 1, lease).await.unwrap()[0].id,
        live.id
    );
    let (expired, _) = execution(&store, &wf, &["a"]).await;
    assert_eq!(
        store.claim_due("gone", 1, Duration::ZERO).await.unwrap()[0].id,
        expired.id
    );
    // Work in flight on the dead node: a running task with a running attempt,
    // and a task that already finished.
    let run_a = &mine_runs[0];
    store
        .transition_task(TaskTransition::new(run_a.id, TaskState::Running, 1))
        .await
        .unwrap();
    let attempt = store.start_attempt(run_a.id).await.unwrap();
    let pending_run = &mine_runs[1];

    // Queued work: PENDING, WAITING (with its wake_at), and a PENDING row a dead
    // node had left its name on.
    let (waiting, _) = execution(&store, &wf, &["a"]).await;
    let waiting = {
        assert_eq!(
            store.claim_due("x", 1, lease).await.unwrap()[0].id,
            waiting.id
        );
        let wake = Utc::now() + ChronoDuration::seconds(3600);
        let mut t = ExecutionTransition::new(ExecutionState::Waiting, 2);
        t.wake_at = Some(wake);
        store.transition_execution(waiting.id, t).await.unwrap();
        store.get_execution(waiting.id).await.unwrap()
    };
    let (pending, _) = execution(&store, &wf, &["a"]).await;
    let raw = store.connection();
    sea_orm::ConnectionTrait::execute_unprepared(
        raw,
        "UPDATE executions SET owner = 'dead' WHERE state IN ('PENDING', 'WAITING')",
    )
    .await
    .unwrap();

    let report = store
        .recover("dead", Utc::now() + ChronoDuration::seconds(1))
        .await
        .unwrap();
    let failed: HashSet<_> = report.failed.iter().copied().collect();
    assert_eq!(failed, HashSet::from([mine.id, mine2.id, expired.id]));
    let requeued: HashSet<_> = report.requeued.iter().copied().collect();
    assert_eq!(requeued, HashSet::from([pending.id, waiting.id]));
    assert_eq!(report.task_runs_failed, 1);
    assert_eq!(report.attempts_failed, 1);
    assert_eq!(report.queued, 2);

    for id in [mine.id, mine2.id, expired.id] {
        let e = store.get_execution(id).await.unwrap();
        assert_eq!(e.state, ExecutionState::Failed);
        assert_eq!(e.reason, Some(CRASH_RECOVERY));
        assert!(e.finished_at.is_some());
        assert!(e.lease_expires_at.is_none());
    }
    let a = store.get_task_run(run_a.id).await.unwrap();
    assert_eq!(
        (a.state, a.reason),
        (TaskState::Failed, Some(CRASH_RECOVERY))
    );
    // Nothing is left to run under a failed execution.
    let p = store.get_task_run(pending_run.id).await.unwrap();
    assert_eq!(
        (p.state, p.reason),
        (TaskState::Skipped, Some(CRASH_RECOVERY))
    );
    let att = &store.list_attempts(run_a.id).await.unwrap()[0];
    assert_eq!(att.id, attempt.id);
    assert_eq!(
        (att.state, att.reason),
        (AttemptState::Failed, Some(CRASH_RECOVERY))
    );

    let l = store.get_execution(live.id).await.unwrap();
    assert_eq!(
        (l.state, l.owner.as_deref()),
        (ExecutionState::Running, Some("alive"))
    );
    let p = store.get_execution(pending.id).await.unwrap();
    assert_eq!((p.state, p.owner), (ExecutionState::Pending, None));
    let w = store.get_execution(waiting.id).await.unwrap();
    assert_eq!(w.state, ExecutionState::Waiting);
    assert_eq!(w.wake_at, waiting.wake_at, "WAITING keeps its wake_at");
    assert_eq!(w.owner, None);

    // Running it again finds nothing more to do.
    let again = store.recover("dead", Utc::now()).await.unwrap();
    assert!(again.failed.is_empty() && again.requeued.is_empty());

    // The periodic sweep fails only what lost its lease, whoever owned it.
    let (short, _) = execution(&store, &wf, &["a"]).await;
    let (long, _) = execution(&store, &wf, &["a"]).await;
    assert_eq!(
        store
            .claim_execution("n1", short.id, Duration::ZERO)
            .await
            .unwrap()
            .unwrap()
            .id,
        short.id
    );
    assert_eq!(
        store
            .claim_execution("n1", long.id, lease)
            .await
            .unwrap()
            .unwrap()
            .id,
        long.id
    );
    assert!(store
        .claim_execution("n2", long.id, lease)
        .await
        .unwrap()
        .is_none());
    let swept = store
        .recover_expired(Utc::now() + ChronoDuration::seconds(1))
        .await
        .unwrap();
    assert_eq!(swept.failed, vec![short.id]);
    assert_eq!(
        store.get_execution(long.id).await.unwrap().state,
        ExecutionState::Running
    );
    assert_eq!(
        store.get_execution(live.id).await.unwrap().state,
        ExecutionState::Running
    );
}

async fn retention_purges_old_terminal_executions_and_all_their_rows(db: TestDb) {
    let store = db.store().await;
    let wf = workflow(&store, "old").await;
    let mut terminal = Vec::new();
    let mut alive = Vec::new();
    for i in 0..9 {
        let (e, runs) = execution(&store, &wf, &["a", "b"]).await;
        let attempt = store.start_attempt(runs[0].id).await.unwrap();
        store
            .put_outputs(e.id, runs[0].id, vec![("n".into(), json!(i))])
            .await
            .unwrap();
        store
            .append_logs(
                (0..3)
                    .map(|j| NewLogLine {
                        execution_id: e.id,
                        task_run_id: Some(runs[0].id),
                        attempt: Some(attempt.number),
                        ts: Utc::now(),
                        stream: LogStream::Stdout,
                        line: format!("{i}/{j}"),
                    })
                    .collect(),
            )
            .await
            .unwrap();
        match i % 3 {
            0 => alive.push(drive(&store, e.id, &[ExecutionState::Running]).await.id),
            1 => terminal.push(
                drive(
                    &store,
                    e.id,
                    &[ExecutionState::Running, ExecutionState::Succeeded],
                )
                .await
                .id,
            ),
            _ => terminal.push(drive(&store, e.id, &[ExecutionState::Cancelled]).await.id),
        }
    }
    let (fresh, _) = execution(&store, &wf, &["a"]).await;
    alive.push(fresh.id);

    let cutoff = Utc::now() + ChronoDuration::seconds(1);
    let dry = store.purge(cutoff, 2, true).await.unwrap();
    assert!(dry.dry_run);
    assert_eq!(dry.batches, 0);
    let want = PurgeCounts {
        executions: 6,
        task_runs: 12,
        attempts: 6,
        outputs: 6,
        logs: 18,
    };
    assert_eq!(dry.counts, want);
    let raw = store.connection();
    assert_eq!(
        query_count(raw, "SELECT COUNT(*) FROM executions").await,
        10
    );

    // Nothing finished before an old cutoff.
    let none = store
        .purge(Utc::now() - ChronoDuration::days(1), 100, false)
        .await
        .unwrap();
    assert_eq!(none.counts, PurgeCounts::default());

    let report = store.purge(cutoff, 4, false).await.unwrap();
    assert_eq!(report.counts, want);
    assert_eq!(report.batches, 2);
    for id in &terminal {
        assert!(store.get_execution(*id).await.is_err());
    }
    for id in &alive {
        store.get_execution(*id).await.unwrap();
    }
    assert_eq!(query_count(raw, "SELECT COUNT(*) FROM executions").await, 4);
    assert_eq!(query_count(raw, "SELECT COUNT(*) FROM task_runs").await, 7);
    assert_eq!(query_count(raw, "SELECT COUNT(*) FROM attempts").await, 3);
    assert_eq!(query_count(raw, "SELECT COUNT(*) FROM outputs").await, 3);
    assert_eq!(query_count(raw, "SELECT COUNT(*) FROM logs").await, 9);
    // No orphans anywhere.
    for sql in [
        "SELECT COUNT(*) FROM task_runs t LEFT JOIN executions e ON e.id = t.execution_id WHERE e.id IS NULL",
        "SELECT COUNT(*) FROM attempts a LEFT JOIN task_runs t ON t.id = a.task_run_id WHERE t.id IS NULL",
        "SELECT COUNT(*) FROM outputs o LEFT JOIN executions e ON e.id = o.execution_id WHERE e.id IS NULL",
        "SELECT COUNT(*) FROM logs l LEFT JOIN executions e ON e.id = l.execution_id WHERE e.id IS NULL",
    ] {
        assert_eq!(query_count(raw, sql).await, 0, "{sql}");
    }
    if db.backend == Backend::Sqlite {
        let problems = flowstate_tests::query_strings(raw, "PRAGMA foreign_key_check").await;
        assert!(problems.is_empty(), "{problems:?}");
    }
    let err = store.purge(cutoff, 0, false).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)));
}

async fn claiming_moves_due_work_to_running_once(db: TestDb) {
    let store = db.store().await;
    let wf = workflow(&store, "claim").await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(execution(&store, &wf, &["t"]).await.0.id);
    }
    // A WAITING execution not yet due is left alone; a due one is claimed.
    store
        .claim_due("n1", 2, Duration::from_secs(30))
        .await
        .unwrap();
    let mut later = ExecutionTransition::new(ExecutionState::Waiting, 2);
    later.wake_at = Some(Utc::now() + ChronoDuration::seconds(3600));
    store.transition_execution(ids[0], later).await.unwrap();
    let mut due = ExecutionTransition::new(ExecutionState::Waiting, 2);
    due.wake_at = Some(Utc::now() - ChronoDuration::seconds(1));
    store.transition_execution(ids[1], due).await.unwrap();

    let got = store
        .claim_due("n2", 10, Duration::from_secs(30))
        .await
        .unwrap();
    let got_ids: Vec<_> = got.iter().map(|e| e.id).collect();
    assert_eq!(got_ids.len(), 4);
    assert!(got_ids.contains(&ids[1]) && !got_ids.contains(&ids[0]));
    for e in &got {
        assert_eq!(e.state, ExecutionState::Running);
        assert_eq!(e.owner.as_deref(), Some("n2"));
        assert!(e.lease_expires_at.unwrap() > Utc::now());
        assert!(e.started_at.is_some());
    }
    assert!(store
        .claim_due("n3", 10, Duration::from_secs(30))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .renew_lease("n2", Duration::from_secs(90))
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        store
            .renew_lease("nobody", Duration::from_secs(90))
            .await
            .unwrap(),
        0
    );
    let renewed = store.get_execution(ids[2]).await.unwrap();
    assert!(renewed.lease_expires_at.unwrap() > Utc::now() + ChronoDuration::seconds(60));
}

async fn migration_status_is_visible_through_the_store(db: TestDb) {
    let store: Arc<dyn StateStore> = Arc::new(db.store().await);
    let status = store.migration_status().await.unwrap();
    assert!(status.is_current());
    assert_eq!(
        status.applied.len(),
        flowstate_store::migrate::known_versions().len()
    );
    let expected = match db.backend {
        Backend::Sqlite => flowstate_store::StorageType::Sqlite,
        Backend::Postgres => flowstate_store::StorageType::Postgres,
        Backend::Mysql => flowstate_store::StorageType::Mysql,
    };
    assert_eq!(store.storage_type(), expected);
}

async fn timestamps_round_trip_exactly(db: TestDb) {
    let store = db.store().await;
    let wf = workflow(&store, "time").await;
    let (e, _) = execution(&store, &wf, &[]).await;
    store
        .claim_due("n", 1, Duration::from_secs(1))
        .await
        .unwrap();
    // Whole seconds, milliseconds and microseconds all read back equal and order right.
    let base = chrono::DateTime::parse_from_rfc3339("2031-05-06T07:08:09Z")
        .unwrap()
        .with_timezone(&Utc);
    let mut version = 2;
    for wake in [
        base,
        base + ChronoDuration::milliseconds(120),
        base + ChronoDuration::microseconds(120_001),
    ] {
        let mut t = ExecutionTransition::new(ExecutionState::Waiting, version);
        t.wake_at = Some(wake);
        version = store.transition_execution(e.id, t).await.unwrap();
        assert_eq!(store.get_execution(e.id).await.unwrap().wake_at, Some(wake));
        version = store
            .transition_execution(
                e.id,
                ExecutionTransition::new(ExecutionState::Running, version),
            )
            .await
            .unwrap();
    }
    let got = store.get_execution(e.id).await.unwrap();
    assert_eq!(got.created_at, e.created_at);
    assert_eq!(got.created_at.timestamp_subsec_nanos() % 1000, 0);
}

/// An id prefix is a range of the primary key: a unique one finds its
/// execution, a shared one every execution it starts, in id order; and the
/// reason filter lists what ended for that reason.
async fn id_prefixes_and_reasons_find_executions(db: TestDb) {
    let store = db.store().await;
    let wf = workflow(&store, "prefixes").await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let (e, _) = execution(&store, &wf, &["a"]).await;
        let mut t = ExecutionTransition::new(ExecutionState::Running, e.version);
        let v = store.transition_execution(e.id, t.clone()).await.unwrap();
        t = ExecutionTransition::new(ExecutionState::Failed, v);
        t.reason = Some(if i % 2 == 0 {
            Reason::CrashRecovery
        } else {
            Reason::TaskFailed
        });
        store.transition_execution(e.id, t).await.unwrap();
        ids.push(e.id);
    }
    let (other, _) = execution(&store, &wf, &["a"]).await;
    ids.sort();
    let text = ids[1].to_string();
    // 28 characters hold the creation time and the whole counter of the id.
    for len in [28, 36] {
        let found = store
            .execution_ids_with_prefix(&text[..len], 11)
            .await
            .unwrap();
        assert_eq!(found, [ids[1]], "prefix {}", &text[..len]);
    }
    let upper = text[..13].to_uppercase();
    let shared = store.execution_ids_with_prefix(&upper, 11).await.unwrap();
    assert!(
        shared.contains(&ids[1]) && shared.windows(2).all(|w| w[0] < w[1]),
        "{shared:?}"
    );
    let all = store
        .execution_ids_with_prefix(&text[..8], 3)
        .await
        .unwrap();
    assert!(!all.is_empty() && all.len() <= 3, "{all:?}");
    assert!(store
        .execution_ids_with_prefix("ffffffff", 11)
        .await
        .unwrap()
        .is_empty());
    assert!(
        store.execution_ids_with_prefix("0123", 11).await.is_err(),
        "too short"
    );
    let crashed = store
        .list_executions(ExecutionQuery {
            reasons: vec![Reason::CrashRecovery],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(crashed.total, 2);
    assert!(crashed
        .items
        .iter()
        .all(|e| e.reason == Some(Reason::CrashRecovery)));
    let either = ExecutionQuery {
        reasons: vec![Reason::CrashRecovery, Reason::TaskFailed],
        ..Default::default()
    };
    let page = store.list_executions(either).await.unwrap();
    assert_eq!(page.total, 4);
    assert!(page.items.iter().all(|e| e.id != other.id));
}

/// A name pattern lists the executions of every matching workflow as one
/// list: both pagings walk the same rows as the exact filter would, in
/// order, and a pattern matching nothing or a plain name behave as before.
async fn several_workflows_page_as_one_list(db: TestDb) {
    let store = db.store().await;
    let mut expected = Vec::new();
    for name in ["glob-a", "glob-b", "glob-c", "other"] {
        let wf = workflow(&store, name).await;
        for _ in 0..5 {
            let (e, _) = execution(&store, &wf, &["a"]).await;
            if name != "other" {
                expected.push(e.id);
            }
        }
    }
    expected.reverse();
    let found = store.workflows_matching("glob-*", 10).await.unwrap();
    let names: Vec<&str> = found.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["glob-a", "glob-b", "glob-c"]);
    assert_eq!(
        store.workflows_matching("glob-?", 10).await.unwrap().len(),
        3
    );
    assert!(
        store
            .workflows_matching("GLOB-*", 10)
            .await
            .unwrap()
            .is_empty(),
        "names keep their case"
    );
    assert!(
        store
            .workflows_matching("g%ob-*", 10)
            .await
            .unwrap()
            .is_empty(),
        "% is itself"
    );
    let ids: Vec<Uuid> = found.iter().map(|w| w.id).collect();
    let q = |limit: u64| ExecutionQuery {
        workflow_ids: ids.clone(),
        limit: Some(limit),
        ..Default::default()
    };
    let whole = store.list_executions(q(100)).await.unwrap();
    assert_eq!(
        (
            whole.total,
            whole.items.iter().map(|e| e.id).collect::<Vec<_>>()
        ),
        (15, expected.clone())
    );
    let mut walked = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_executions(ExecutionQuery {
                after: after.clone(),
                ..q(4)
            })
            .await
            .unwrap();
        walked.extend(page.items.iter().map(|e| e.id));
        match page.next_cursor {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    assert_eq!(walked, expected);
    let third = store
        .list_executions(ExecutionQuery {
            offset: Some(8),
            ..q(4)
        })
        .await
        .unwrap();
    assert_eq!(
        third.items.iter().map(|e| e.id).collect::<Vec<_>>(),
        expected[8..12]
    );
    let oldest = store
        .list_executions(ExecutionQuery {
            sort: SortOrder::Ascending,
            ..q(2)
        })
        .await
        .unwrap();
    assert_eq!(oldest.items[0].id, expected[14]);
}

/// A server connection sends each message at once: sqlx 0.9.0 left Nagle's
/// algorithm on, and a TLS handshake (two writes before a read) then waited
/// for the server's delayed ACK twice, 40 ms each: a PostgreSQL store took
/// 105 ms to open against 18 ms with TCP_NODELAY (see vendor/README.md).
async fn server_connections_send_without_delay(db: TestDb) {
    let store = db.store().await;
    workflow(&store, "nodelay").await;
    assert_eq!(
        store
            .list_workflows(WorkflowQuery::default())
            .await
            .unwrap()
            .total,
        1
    );
    let Some(port) = server_port(&db) else {
        // SQLite: a file, no socket to tune.
        return;
    };
    let sockets = tcp_nodelay_to(port);
    assert!(
        !sockets.is_empty(),
        "no TCP connection to port {port} found"
    );
    assert!(
        sockets.iter().all(|&on| on),
        "TCP_NODELAY on each connection: {sockets:?}"
    );
}

/// The port of the test's server, as sqlx reads it from the URL; `None`
/// for SQLite.
fn server_port(db: &TestDb) -> Option<u16> {
    use sea_orm::sqlx::{mysql::MySqlConnectOptions, postgres::PgConnectOptions};
    use std::str::FromStr;
    Some(match db.backend {
        Backend::Sqlite => return None,
        Backend::Postgres => PgConnectOptions::from_str(&db.url).unwrap().get_port(),
        Backend::Mysql => MySqlConnectOptions::from_str(&db.url).unwrap().get_port(),
    })
}

/// For every TCP connection of this process to `port` (IPv4 or IPv6):
/// whether TCP_NODELAY is set on it.
fn tcp_nodelay_to(port: u16) -> Vec<bool> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // SAFETY: plain getsockopt/getpeername calls on a descriptor of this
        // process, with buffers of the sizes passed; a descriptor that is not
        // a socket (or closed meanwhile) makes them fail, and is skipped.
        unsafe {
            let mut peer: libc::sockaddr_storage = std::mem::zeroed();
            let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            if libc::getpeername(fd, &mut peer as *mut _ as *mut libc::sockaddr, &mut len) != 0 {
                continue;
            }
            let peer_port = match i32::from(peer.ss_family) {
                libc::AF_INET => (*(&peer as *const _ as *const libc::sockaddr_in)).sin_port,
                libc::AF_INET6 => (*(&peer as *const _ as *const libc::sockaddr_in6)).sin6_port,
                _ => continue,
            };
            if u16::from_be(peer_port) != port {
                continue;
            }
            let mut on: libc::c_int = 0;
            let mut size = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            let got = libc::getsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                &mut on as *mut _ as *mut libc::c_void,
                &mut size,
            );
            if got == 0 {
                found.push(on != 0);
            }
        }
    }
    found
}

backend_tests!(
    several_workflows_page_as_one_list,
    id_prefixes_and_reasons_find_executions,
    workflows_are_saved_versioned_listed_and_deleted,
    executions_are_created_with_their_task_runs,
    list_filters_select_exactly_the_matching_rows,
    paging_by_offset_and_by_cursor_returns_every_row_once,
    task_runs_and_attempts_are_tracked,
    logs_are_appended_in_batches_and_read_in_pages,
    illegal_moves_and_stale_versions_change_nothing,
    transactions_commit_together_or_leave_nothing,
    concurrent_writers_never_see_a_locked_database,
    stale_concurrent_transitions_conflict_without_lost_updates,
    concurrent_attempt_starters_get_dense_numbers,
    recovery_fails_dead_work_and_requeues_the_rest,
    retention_purges_old_terminal_executions_and_all_their_rows,
    claiming_moves_due_work_to_running_once,
    migration_status_is_visible_through_the_store,
    timestamps_round_trip_exactly,
    server_connections_send_without_delay,
);

#[allow(dead_code)]
fn _assert_object_safe(_: &dyn StateStore, _: SeaStore) {}
