//! What the speed work of issue 13 must not change, on every backend: log
//! pages read back exactly what was written (a page crosses the driver as
//! one packed value on SQLite and PostgreSQL), concurrent writers get their
//! own results when SQLite groups their writes into one commit, and a
//! reading store opens with one connection and checks the schema version.

use chrono::Duration as ChronoDuration;
use flowstate_store::query::LogQuery;
use flowstate_store::types::*;
use flowstate_store::{StateOps, StateStore, StoreError};
use flowstate_tests::{backend_tests, query_count, TestDb};
use serde_json::json;
use std::sync::Arc;

async fn executions(store: &dyn StateStore, n: usize) -> Vec<(Execution, Vec<TaskRun>)> {
    let wf = store
        .save_workflow(NewWorkflow {
            name: "speed".into(),
            definition: json!({"tasks": []}),
            description: None,
        })
        .await
        .unwrap()
        .workflow;
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(
            store
                .create_execution(NewExecution {
                    workflow_id: wf.id,
                    input: json!({}),
                    task_keys: vec!["a".into(), "b".into()],
                })
                .await
                .unwrap(),
        );
    }
    out
}

/// Text that a packed page must carry unchanged: quotes, backslashes, JSON
/// and separator look-alikes, control characters, wide characters, spaces
/// at the ends, an empty line.
fn awkward(i: usize) -> String {
    [
        String::new(),
        " padded ".into(),
        r#"quote " backslash \ slash / json {"a":[1,"]"]}"#.into(),
        "tab\tbell\u{7}escape\u{1b}[31m unit\u{1f} record\u{1e} nul-free".into(),
        "wide: ünïcödé ✓ 日本語 🚀".into(),
        "comma,colon:semicolon;pipe|".into(),
        format!("{i}:{}", "x".repeat(20_000)),
    ][i % 7]
        .clone()
}

async fn log_pages_carry_every_character_and_field(db: TestDb) {
    let store = db.store().await;
    let (exec, runs) = executions(&store, 1).await.remove(0);
    let base = flowstate_store::now() - ChronoDuration::days(400);
    let lines: Vec<NewLogLine> = (0..70)
        .map(|i| NewLogLine {
            execution_id: exec.id,
            // Lines about the execution as a whole have no task run.
            task_run_id: (i % 3 != 0).then(|| runs[i % 2].id),
            attempt: (i % 3 != 0).then_some(i as i32),
            ts: base + ChronoDuration::microseconds(i as i64 * 1_000_001),
            stream: if i % 2 == 0 {
                LogStream::Stdout
            } else {
                LogStream::Stderr
            },
            line: awkward(i),
        })
        .collect();
    store.append_logs(lines.clone()).await.unwrap();
    let got = flowstate_tests::all_logs(&store, exec.id, 16).await;
    assert_eq!(got.len(), lines.len());
    assert!(got.windows(2).all(|w| w[0].id < w[1].id));
    for (want, have) in lines.iter().zip(&got) {
        assert_eq!(have.execution_id, exec.id);
        assert_eq!(have.task_run_id, want.task_run_id);
        assert_eq!(have.attempt, want.attempt);
        assert_eq!(have.ts, want.ts);
        assert_eq!(have.stream, want.stream);
        assert_eq!(have.line, want.line);
    }
    // A task's lines only, and an execution without lines.
    let only_a = store
        .read_logs(LogQuery {
            execution_id: exec.id,
            task_run_id: Some(runs[0].id),
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        only_a.len(),
        lines
            .iter()
            .filter(|l| l.task_run_id == Some(runs[0].id))
            .count()
    );
    let (other, _) = executions(&store, 1).await.remove(0);
    let none = store
        .read_logs(LogQuery {
            execution_id: other.id,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty());
}

/// Runs `write` for every execution of `work` at once, each on a task of its
/// own, and returns each writer's number with its result, in order.
async fn all_at_once<R, F, Fut>(
    store: &Arc<dyn StateStore>,
    work: &[(Execution, Vec<TaskRun>)],
    write: F,
) -> Vec<(usize, R)>
where
    F: Fn(Arc<dyn StateStore>, usize, Execution, Vec<TaskRun>) -> Fut,
    Fut: std::future::Future<Output = R> + Send + 'static,
    R: Send + 'static,
{
    let tasks: Vec<_> = work
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, (exec, runs))| tokio::spawn(write(store.clone(), i, exec, runs)))
        .collect();
    let mut results = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        results.push((i, task.await.unwrap()));
    }
    results
}

/// Many writers at once, some of them refused: every caller gets its own
/// answer, and only the refused writes are missing. On SQLite these land in
/// shared transactions (group commit).
async fn concurrent_writers_get_their_own_results(db: TestDb) {
    let store: Arc<dyn StateStore> = Arc::new(db.store().await);
    let work = executions(store.as_ref(), 24).await;
    let results = all_at_once(&store, &work, |store, i, exec, runs| async move {
        // Every third writer holds a stale version: refused.
        let expected = if i % 3 == 0 { 7 } else { exec.version };
        let moved = store
            .transition_execution(
                exec.id,
                ExecutionTransition::new(ExecutionState::Running, expected),
            )
            .await;
        // A unit of several statements: the attempt's start with its
        // task run's move. Every fourth asks for a task run that moved
        // on already, so its whole unit must leave nothing behind.
        let run = &runs[0];
        let version = if i % 4 == 0 {
            run.version + 5
        } else {
            run.version
        };
        let started = store
            .start_run_attempt(TaskTransition::new(run.id, TaskState::Running, version))
            .await;
        (moved, started)
    })
    .await;
    for (i, (moved, started)) in results {
        match moved {
            Ok(v) => assert!(i % 3 != 0, "writer {i} moved with a stale version to {v}"),
            Err(StoreError::Conflict { .. }) => assert_eq!(i % 3, 0, "writer {i} refused"),
            Err(e) => panic!("writer {i}: {e}"),
        }
        match started {
            Ok((attempt, _)) => {
                assert!(i % 4 != 0, "writer {i} started on a stale task run");
                assert_eq!(attempt.number, 1);
            }
            Err(StoreError::Conflict { .. }) => assert_eq!(i % 4, 0, "writer {i} refused"),
            Err(e) => panic!("writer {i}: {e}"),
        }
    }
    for (i, (exec, runs)) in work.iter().enumerate() {
        let e = store.get_execution(exec.id).await.unwrap();
        let want = if i % 3 == 0 {
            ExecutionState::Pending
        } else {
            ExecutionState::Running
        };
        assert_eq!(e.state, want, "execution {i}");
        let attempts = store.list_attempts(runs[0].id).await.unwrap();
        assert_eq!(attempts.len(), usize::from(i % 4 != 0), "attempts of {i}");
        let run = store.get_task_run(runs[0].id).await.unwrap();
        let want = if i % 4 == 0 {
            TaskState::Pending
        } else {
            TaskState::Running
        };
        assert_eq!(run.state, want, "task run of {i}");
    }
    let raw = db.raw().await;
    assert_eq!(query_count(&raw, "SELECT COUNT(*) FROM attempts").await, 18);
}

/// A reading store sees what the writers wrote, and a database without the
/// schema is refused by it as by every other command.
async fn a_reader_opens_the_current_schema_and_refuses_others(db: TestDb) {
    // Nothing there yet: refused, and nothing created.
    match flowstate_store::open_reader(&db.config).await {
        Err(StoreError::NoDatabase { .. }) => {}
        Err(e) => panic!("expected no database, got {e}"),
        Ok(_) => panic!("a reader opened a database without the schema"),
    }
    if let Some(folder) = db.folder() {
        assert_eq!(std::fs::read_dir(folder).unwrap().count(), 0);
    }
    let store = db.store().await;
    executions(&store, 3).await;
    let reader = flowstate_store::open_reader(&db.config).await.unwrap();
    let page = reader.list_executions(Default::default()).await.unwrap();
    assert_eq!(page.total, 3);
    let names = reader
        .workflow_names(page.items.iter().map(|e| e.workflow_id).collect())
        .await
        .unwrap();
    assert_eq!(names.values().collect::<Vec<_>>(), vec!["speed"]);
    reader.close().await.unwrap();
}

/// Units refused after their first statement wrote, among many at once:
/// nothing of a refused unit stays, everything of the others does. On
/// SQLite the units of a group first run without savepoints; a refusal
/// part-way rolls the group back and runs it again unit by unit.
async fn units_refused_part_way_leave_nothing(db: TestDb) {
    let store: Arc<dyn StateStore> = Arc::new(db.store().await);
    let work = executions(store.as_ref(), 24).await;
    let results = all_at_once(&store, &work, |store, i, exec, runs| async move {
        let line = NewLogLine {
            execution_id: exec.id,
            task_run_id: None,
            attempt: None,
            ts: chrono::Utc::now(),
            stream: LogStream::System,
            line: format!("writer {i}"),
        };
        // Every third moves its task run with a stale version, after
        // its log line was written in the same unit.
        let version = if i % 3 == 0 { 9 } else { runs[0].version };
        store
            .apply_writes(vec![
                Write::AppendLogs(vec![line]),
                Write::MoveTask(TaskTransition::new(runs[0].id, TaskState::Running, version)),
            ])
            .await
    })
    .await;
    for (i, done) in results {
        match done {
            Ok(_) => assert!(i % 3 != 0, "writer {i} moved with a stale version"),
            Err(StoreError::Conflict { .. }) => assert_eq!(i % 3, 0, "writer {i} refused"),
            Err(e) => panic!("writer {i}: {e}"),
        }
    }
    for (i, (exec, runs)) in work.iter().enumerate() {
        let logs = flowstate_tests::all_logs(store.as_ref(), exec.id, 100).await;
        assert_eq!(
            logs.len(),
            usize::from(i % 3 != 0),
            "log lines of writer {i}"
        );
        let want = if i % 3 == 0 {
            TaskState::Pending
        } else {
            TaskState::Running
        };
        assert_eq!(
            store.get_task_run(runs[0].id).await.unwrap().state,
            want,
            "writer {i}"
        );
    }
}

backend_tests!(
    log_pages_carry_every_character_and_field,
    concurrent_writers_get_their_own_results,
    units_refused_part_way_leave_nothing,
    a_reader_opens_the_current_schema_and_refuses_others,
);
