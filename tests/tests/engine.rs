//! The engine running real shell tasks against real databases.

use chrono::Utc;
use flowstate_engine::{Config, Engine, EngineConfig, Workflow};
use flowstate_store::query::LogQuery;
use flowstate_store::types::*;
use flowstate_store::StateStore;
use flowstate_tests::{backend_tests, TestDb};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn config(db: &TestDb) -> Config {
    Config {
        storage: db.config.clone(),
        engine: EngineConfig {
            workers: 4,
            node_id: Some(format!("test-{}", uuid::Uuid::new_v4().simple())),
            lease: Duration::from_secs(10),
            poll_interval: Duration::from_millis(50),
            shutdown_grace: Duration::from_secs(5),
            metrics_addr: None,
        },
        server: Default::default(),
    }
}

fn workflow(yaml: &str) -> Workflow {
    Workflow::from_yaml(yaml, Path::new("test.yaml")).unwrap()
}

async fn run(db: &TestDb, yaml: &str, input: serde_json::Value) -> (Engine, ExecutionDetail) {
    let engine = Engine::start(config(db)).await.unwrap();
    let exec = engine.submit(&workflow(yaml), input).await.unwrap();
    let done = tokio::time::timeout(Duration::from_secs(60), engine.run_execution(exec.id))
        .await
        .expect("the execution ends within a minute")
        .unwrap();
    assert!(done.state.is_terminal());
    let detail = engine.store().get_execution_detail(exec.id).await.unwrap();
    (engine, detail)
}

fn task<'a>(d: &'a ExecutionDetail, key: &str) -> &'a TaskRunDetail {
    d.task_runs
        .iter()
        .find(|t| t.task_run.task_key == key)
        .unwrap()
}

async fn all_logs(store: &dyn StateStore, id: uuid::Uuid) -> Vec<LogLine> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .read_logs(LogQuery {
                execution_id: id,
                after_id: after,
                limit: Some(10_000),
                ..Default::default()
            })
            .await
            .unwrap();
        if page.is_empty() {
            return out;
        }
        after = page.last().map(|l| l.id);
        out.extend(page);
    }
}

async fn a_successful_run_records_everything(db: TestDb) {
    let (engine, d) = run(
        &db,
        "name: hello\ntasks:\n  - id: greet\n    run: echo \"hello $who\"; echo oops >&2\n  - id: after\n    run: 'true'\n    needs: [greet]\n",
        json!({"who": "world"}),
    )
    .await;
    let e = &d.execution;
    assert_eq!(e.state, ExecutionState::Succeeded);
    assert!(e.started_at.is_some() && e.finished_at.is_some());
    assert_eq!(e.reason, None);
    assert!(e.lease_expires_at.is_none());
    for t in &d.task_runs {
        assert_eq!(t.task_run.state, TaskState::Succeeded);
        assert_eq!(t.attempts.len(), 1);
        assert_eq!(t.attempts[0].exit_code, Some(0));
        assert_eq!(t.attempts[0].state, AttemptState::Succeeded);
    }
    let logs = all_logs(engine.store().as_ref(), e.id).await;
    let out: Vec<_> = logs
        .iter()
        .filter(|l| l.stream == LogStream::Stdout)
        .map(|l| l.line.as_str())
        .collect();
    assert_eq!(out, ["hello world"]);
    let err: Vec<_> = logs
        .iter()
        .filter(|l| l.stream == LogStream::Stderr)
        .map(|l| l.line.as_str())
        .collect();
    assert_eq!(err, ["oops"]);
    // The attempt row records the start: a clean success costs no engine
    // line (one INSERT less per attempt).
    assert!(logs.iter().all(|l| l.stream != LogStream::System));
}

async fn failures_are_retried_with_back_off_then_fail(db: TestDb) {
    let (_, d) = run(
        &db,
        "name: flaky\ntasks:\n  - id: bad\n    run: echo try $FLOWSTATE_ATTEMPT; exit 3\n    retries: 2\n    retryDelay: 300ms\n  - id: never\n    run: 'true'\n    needs: [bad]\n",
        json!({}),
    )
    .await;
    assert_eq!(d.execution.state, ExecutionState::Failed);
    assert_eq!(d.execution.reason, Some(Reason::TaskFailed));
    assert!(d.execution.error.as_deref().unwrap().contains("bad"));
    let bad = task(&d, "bad");
    assert_eq!(bad.task_run.state, TaskState::Failed);
    assert_eq!(bad.task_run.attempt_count, 3);
    let numbers: Vec<i32> = bad.attempts.iter().map(|a| a.number).collect();
    assert_eq!(numbers, [1, 2, 3]);
    for a in &bad.attempts {
        assert_eq!((a.state, a.exit_code), (AttemptState::Failed, Some(3)));
        assert_eq!(a.reason, Some(Reason::ExitCode));
    }
    // 300ms, then doubled: 600ms.
    let gap = |i: usize| bad.attempts[i + 1].started_at - bad.attempts[i].finished_at.unwrap();
    assert!(gap(0) >= chrono::Duration::milliseconds(300), "{}", gap(0));
    assert!(gap(1) >= chrono::Duration::milliseconds(600), "{}", gap(1));
    let never = task(&d, "never");
    assert_eq!(never.task_run.state, TaskState::Skipped);
    assert!(never.attempts.is_empty());
}

async fn a_retry_can_succeed(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("tried");
    let yaml = format!(
        "name: second-time\ntasks:\n  - id: t\n    run: test -f {m} || {{ touch {m}; exit 1; }}\n    retries: 1\n    retryDelay: 100ms\n",
        m = marker.display()
    );
    let (_, d) = run(&db, &yaml, json!({})).await;
    assert_eq!(d.execution.state, ExecutionState::Succeeded);
    let t = task(&d, "t");
    assert_eq!(t.attempts.len(), 2);
    assert_eq!(t.attempts[0].state, AttemptState::Failed);
    assert_eq!(t.attempts[1].state, AttemptState::Succeeded);
}

async fn a_timeout_kills_the_process_group(db: TestDb) {
    let started = Instant::now();
    let (_, d) = run(
        &db,
        "name: slow\ntasks:\n  - id: sleepy\n    run: sleep 30 & sleep 30; wait\n    timeout: 300ms\n",
        json!({}),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(d.execution.state, ExecutionState::Failed);
    let t = task(&d, "sleepy");
    assert_eq!(t.task_run.reason, Some(Reason::Timeout));
    assert_eq!(t.attempts[0].reason, Some(Reason::Timeout));
    assert!(t.attempts[0]
        .error
        .as_deref()
        .unwrap()
        .contains("timed out after 300ms"));
}

async fn cancelling_stops_the_running_processes(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let engine = Arc::new(Engine::start(config(&db)).await.unwrap());
    let wf = workflow(&format!(
        "name: long\ntasks:\n  - id: wait\n    run: echo $$ > {}; sleep 60\n  - id: later\n    run: 'true'\n    needs: [wait]\n",
        pidfile.display()
    ));
    let exec = engine.submit(&wf, json!({})).await.unwrap();
    let runner = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.run_execution(exec.id).await })
    };
    let store = engine.store();
    for _ in 0..100 {
        if pidfile.exists() && std::fs::read_to_string(&pidfile).unwrap().trim().len() > 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let cancelled = Engine::cancel(store.as_ref(), exec.id).await.unwrap();
    assert_eq!(cancelled.state, ExecutionState::Cancelled);
    let done = tokio::time::timeout(Duration::from_secs(20), runner)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(done.state, ExecutionState::Cancelled);
    // The shell is gone.
    // Signal 0 only checks for existence; a reaped process is gone.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    assert!(!alive, "process {pid} still runs after cancel");
    let d = store.get_execution_detail(exec.id).await.unwrap();
    for t in &d.task_runs {
        assert_eq!(
            t.task_run.state,
            TaskState::Cancelled,
            "{}",
            t.task_run.task_key
        );
    }
    let wait = task(&d, "wait");
    assert_eq!(wait.attempts.len(), 1);
    assert_eq!(wait.attempts[0].state, AttemptState::Cancelled);
    assert!(
        Engine::cancel(store.as_ref(), exec.id).await.is_err(),
        "a finished execution cannot be cancelled"
    );
}

async fn the_dag_runs_in_order_and_in_parallel(db: TestDb) {
    let (_, d) = run(
        &db,
        "name: dag\ntasks:\n  - id: d\n    run: 'true'\n    needs: [b, c]\n  - id: a\n    run: 'true'\n  - id: b\n    run: sleep 1\n    needs: [a]\n  - id: c\n    run: sleep 1\n    needs: [a]\n",
        json!({}),
    )
    .await;
    assert_eq!(d.execution.state, ExecutionState::Succeeded);
    let order: Vec<&str> = d
        .task_runs
        .iter()
        .map(|t| t.task_run.task_key.as_str())
        .collect();
    assert_eq!(
        order,
        ["a", "b", "c", "d"],
        "task runs are listed in topological order"
    );
    let at = |k: &str| &task(&d, k).attempts[0];
    let (a, b, c, dd) = (at("a"), at("b"), at("c"), at("d"));
    assert!(b.started_at >= a.finished_at.unwrap() && c.started_at >= a.finished_at.unwrap());
    assert!(dd.started_at >= b.finished_at.unwrap() && dd.started_at >= c.finished_at.unwrap());
    // The two sleeps overlap.
    assert!(b.started_at < c.finished_at.unwrap() && c.started_at < b.finished_at.unwrap());
}

async fn outputs_are_stored_and_handed_downstream(db: TestDb) {
    let (engine, d) = run(
        &db,
        "name: pass\ntasks:\n  - id: produce\n    run: echo rows=10 >> $FLOWSTATE_OUTPUT; echo 'file=out put.csv' >> $FLOWSTATE_OUTPUT\n  - id: consume\n    needs: [produce]\n    run: test \"$rows\" = 10 && test \"$PRODUCE_FILE\" = 'out put.csv' && echo \"got $rows from $MODE\"\n    env: { MODE: full }\n",
        json!({}),
    )
    .await;
    assert_eq!(
        d.execution.state,
        ExecutionState::Succeeded,
        "{:?}",
        d.execution.error
    );
    let kv: Vec<_> = d
        .outputs
        .iter()
        .map(|o| (o.key.as_str(), o.value.clone()))
        .collect();
    assert_eq!(kv, [("file", json!("out put.csv")), ("rows", json!("10"))]);
    let logs = all_logs(engine.store().as_ref(), d.execution.id).await;
    assert!(logs.iter().any(|l| l.line == "got 10 from full"));
}

async fn a_hundred_thousand_lines_are_logged_completely_in_order(db: TestDb) {
    let (engine, d) = run(
        &db,
        "name: chatty\ntasks:\n  - id: talk\n    run: seq 1 100000\n",
        json!({}),
    )
    .await;
    assert_eq!(d.execution.state, ExecutionState::Succeeded);
    let logs = all_logs(engine.store().as_ref(), d.execution.id).await;
    let out: Vec<&LogLine> = logs
        .iter()
        .filter(|l| l.stream == LogStream::Stdout)
        .collect();
    assert_eq!(out.len(), 100_000);
    for (i, l) in out.iter().enumerate() {
        assert_eq!(l.line, (i + 1).to_string());
    }
    assert!(out
        .windows(2)
        .all(|w| w[0].id < w[1].id && w[0].ts <= w[1].ts));
}

async fn recovery_at_start_up_fails_what_this_node_left_running(db: TestDb) {
    let cfg = config(&db);
    let engine = Engine::start(cfg.clone()).await.unwrap();
    let exec = engine
        .submit(
            &workflow("name: r\ntasks:\n  - id: t\n    run: 'true'\n"),
            json!({}),
        )
        .await
        .unwrap();
    let node = engine.node_id().to_owned();
    let store = engine.store();
    store
        .claim_execution(&node, exec.id, Duration::from_secs(600))
        .await
        .unwrap()
        .unwrap();
    let pending = engine
        .submit(
            &workflow("name: r\ntasks:\n  - id: t\n    run: 'true'\n"),
            json!({}),
        )
        .await
        .unwrap();
    drop(engine);
    // The same node starts again: its RUNNING execution is failed at once.
    let engine = Engine::start(cfg).await.unwrap();
    let e = engine.store().get_execution(exec.id).await.unwrap();
    assert_eq!(e.state, ExecutionState::Failed);
    assert_eq!(e.reason, Some(Reason::CrashRecovery));
    let done = engine.run_execution(pending.id).await.unwrap();
    assert_eq!(done.state, ExecutionState::Succeeded);
    let _ = Utc::now();
}

/// An engine serving in a task of its own until [`stop`](Self::stop).
struct Serving {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<flowstate_engine::Result<()>>,
}

impl Serving {
    fn start(engine: Engine) -> Serving {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(engine.serve(async move {
            let _ = stopped.await;
        }));
        Serving { stop, task }
    }

    /// Shuts it down; it must have stopped cleanly `within` that long.
    async fn stop(self, within: Duration) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(within, self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

async fn serve_drains_the_queue_and_shuts_down(db: TestDb) {
    let engine = Engine::start(config(&db)).await.unwrap();
    let store = engine.store();
    let wf = workflow("name: q\ntasks:\n  - id: t\n    run: 'true'\n");
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(engine.submit(&wf, json!({})).await.unwrap().id);
    }
    let serving = Serving::start(engine);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let page = store
            .list_executions(flowstate_store::query::ExecutionQuery {
                states: vec![ExecutionState::Succeeded],
                ..Default::default()
            })
            .await
            .unwrap();
        if page.total == 20 {
            break;
        }
        assert!(Instant::now() < deadline, "only {} of 20 done", page.total);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    serving.stop(Duration::from_secs(20)).await;
}

/// Runs one execution of `yaml`, then serves one worker until `n` more
/// have ended, and returns their attempts in the order they started.
async fn serve_one_worker(db: &TestDb, yaml: &str, n: usize) -> Vec<Attempt> {
    let mut config = config(db);
    config.engine.workers = 1;
    // The poll claims without waiting for the last end: seldom here.
    config.engine.poll_interval = Duration::from_secs(5);
    let engine = Engine::start(config).await.unwrap();
    let store = engine.store();
    let wf = workflow(yaml);
    // One run first: the engine has parsed the workflow (a claim starts
    // attempts of parsed versions only) and knows how long attempts take.
    let first = engine.submit(&wf, json!({})).await.unwrap();
    engine.run_execution(first.id).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(engine.submit(&wf, json!({})).await.unwrap().id);
    }
    let serving = Serving::start(engine);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut attempts = Vec::new();
    for id in ids {
        let d = loop {
            let d = store.get_execution_detail(id).await.unwrap();
            if d.execution.state.is_terminal() {
                break d;
            }
            assert!(Instant::now() < deadline, "{id} did not end");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(d.execution.state, ExecutionState::Succeeded);
        attempts.extend(d.task_runs.into_iter().flat_map(|t| t.attempts));
    }
    serving.stop(Duration::from_secs(20)).await;
    attempts.sort_by_key(|a| a.started_at);
    attempts
}

/// Pairs of consecutive attempts where the next was started (claimed and
/// recorded RUNNING) before the one before it had finished.
fn started_before_the_last_finished(attempts: &[Attempt]) -> usize {
    attempts
        .windows(2)
        .filter(|w| w[1].started_at < w[0].finished_at.expect("finished"))
        .count()
}

/// While attempts are short, an engine claims the next execution and
/// starts its attempt before a worker slot is free, so the process starts
/// the moment one frees (the drain's slots stood empty for 3.4 ms of
/// every 4.8 ms cycle while each claim landed).
async fn short_attempts_are_claimed_ahead_of_a_free_slot(db: TestDb) {
    let attempts =
        serve_one_worker(&db, "name: quick\ntasks:\n  - id: t\n    run: 'true'\n", 60).await;
    let ahead = started_before_the_last_finished(&attempts);
    assert!(ahead > 0, "no attempt of 60 was claimed ahead of its slot");
}

/// Long attempts are never claimed ahead: an execution claimed for a slot
/// that frees only in minutes would be kept from engines free to run it.
async fn long_attempts_are_not_claimed_ahead(db: TestDb) {
    let attempts = serve_one_worker(
        &db,
        "name: slow\ntasks:\n  - id: t\n    run: sleep 0.3\n",
        3,
    )
    .await;
    assert_eq!(attempts.len(), 3);
    assert_eq!(
        started_before_the_last_finished(&attempts),
        0,
        "{attempts:#?}"
    );
}

/// `cleanup --older-than 0s` racing `flowstate run`: the execution may be
/// purged the moment it ends, and the engine that ran it still says how it
/// ended (it used to fail with "execution not found").
async fn a_run_reports_its_end_even_when_purged_at_once(db: TestDb) {
    let engine = Engine::start(config(&db)).await.unwrap();
    let store = engine.store();
    let purging = tokio::spawn({
        let store = store.clone();
        async move {
            loop {
                let cutoff = Utc::now() + chrono::Duration::hours(1);
                let _ = store.purge(cutoff, 100, false).await;
                tokio::task::yield_now().await;
            }
        }
    });
    let wf = workflow("name: gone\ntasks:\n  - id: t\n    run: 'true'\n");
    for _ in 0..10 {
        let exec = engine.submit(&wf, json!({})).await.unwrap();
        let done = engine.run_execution(exec.id).await.unwrap();
        assert_eq!((done.id, done.state), (exec.id, ExecutionState::Succeeded));
    }
    purging.abort();
}

/// A retry behind a backlog of new work starts when due, not after the
/// backlog (34.5 s behind 200 PENDING executions, before retries were
/// claimed first).
async fn a_due_retry_is_claimed_before_a_backlog(db: TestDb) {
    let engine = Engine::start(config(&db)).await.unwrap();
    let store = engine.store();
    let flaky = workflow(
        "name: flaky\ntasks:\n  - id: t\n    run: '[ \"$FLOWSTATE_ATTEMPT\" -ge 2 ]'\n    retries: 1\n    retryDelay: 200ms\n",
    );
    let quick = workflow("name: quick\ntasks:\n  - id: t\n    run: 'true'\n");
    let retried = engine.submit(&flaky, json!({})).await.unwrap();
    for _ in 0..1000 {
        engine.submit(&quick, json!({})).await.unwrap();
    }
    let serving = Serving::start(engine);
    let deadline = Instant::now() + Duration::from_secs(120);
    while store.get_execution(retried.id).await.unwrap().state != ExecutionState::Succeeded {
        assert!(Instant::now() < deadline, "the retry never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let d = store.get_execution_detail(retried.id).await.unwrap();
    let attempts = &d.task_runs[0].attempts;
    let gap = attempts[1].started_at - attempts[0].finished_at.unwrap();
    // Back-off 200 ms + poll 50 ms + a claim cycle, with room for a busy
    // machine; the backlog alone takes seconds.
    assert!(
        gap < chrono::Duration::milliseconds(1000),
        "retry started {gap} after the failure"
    );
    let left = store
        .list_executions(flowstate_store::query::ExecutionQuery {
            states: vec![ExecutionState::Pending],
            limit: Some(1),
            ..Default::default()
        })
        .await
        .unwrap()
        .total;
    assert!(
        left > 0,
        "the backlog was already drained: the test proves nothing"
    );
    serving.stop(Duration::from_secs(60)).await;
}

/// a -> b -> c where b fails once: the retry reuses a (its output reaches
/// b), runs b and c, and is linked both ways; `from` re-runs downstream
/// work; purging the original keeps the retry whole.
async fn a_retry_reruns_what_failed_and_reuses_what_succeeded(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let (runs, marker) = (dir.path().join("runs"), dir.path().join("second"));
    let yaml = format!(
        "name: again\ntasks:\n  - id: a\n    run: echo x=from-a >> \"$FLOWSTATE_OUTPUT\"; echo a >> {r}\n  - id: b\n    needs: [a]\n    run: |\n      echo b >> {r}\n      test -f {m} || {{ touch {m}; exit 3; }}\n      echo got=$A_X >> \"$FLOWSTATE_OUTPUT\"\n  - id: c\n    needs: [b]\n    run: echo c >> {r}\n",
        r = runs.display(),
        m = marker.display()
    );
    let engine = Engine::start(config(&db)).await.unwrap();
    let store = engine.store();
    let original = engine
        .submit(&workflow(&yaml), json!({"K": "v"}))
        .await
        .unwrap();
    let failed = engine.run_execution(original.id).await.unwrap();
    assert_eq!(failed.state, ExecutionState::Failed);
    let rerun = flowstate_engine::retry::retry(store.as_ref(), original.id, None, false)
        .await
        .unwrap();
    assert_eq!(rerun.retry_of, Some(original.id));
    assert_eq!(
        (rerun.workflow_version, &rerun.input),
        (original.workflow_version, &original.input)
    );
    let done = engine.run_execution(rerun.id).await.unwrap();
    assert_eq!(done.state, ExecutionState::Succeeded);
    assert_eq!(
        std::fs::read_to_string(&runs).unwrap(),
        "a\nb\nb\nc\n",
        "a ran once"
    );
    let d = store.get_execution_detail(rerun.id).await.unwrap();
    let a = task(&d, "a");
    assert_eq!(
        (a.task_run.state, a.task_run.reason),
        (TaskState::Succeeded, Some(Reason::Reused))
    );
    assert!(a.attempts.is_empty());
    let value = |key: &str| {
        d.outputs
            .iter()
            .find(|o| o.key == key)
            .map(|o| o.value.clone())
    };
    assert_eq!(value("x"), Some(json!("from-a")), "a's output was carried");
    assert_eq!(value("got"), Some(json!("from-a")), "and reached b");
    assert_eq!(
        store
            .get_execution_detail(original.id)
            .await
            .unwrap()
            .retries,
        [rerun.id]
    );
    // From a: everything runs again; a running original cannot be retried.
    let from_a = flowstate_engine::retry::retry(store.as_ref(), original.id, Some("a"), false)
        .await
        .unwrap();
    let d = store.get_execution_detail(from_a.id).await.unwrap();
    assert!(d
        .task_runs
        .iter()
        .all(|t| t.task_run.state == TaskState::Pending));
    let e = flowstate_engine::retry::retry(store.as_ref(), original.id, Some("zz"), false).await;
    assert!(e
        .unwrap_err()
        .to_string()
        .contains("task 'zz' is not in workflow 'again'"));
    let e = flowstate_engine::retry::retry(store.as_ref(), from_a.id, None, false).await;
    assert!(e.unwrap_err().to_string().contains("PENDING"));
    // Purging the original keeps its retry, unlinked.
    let purged = store.purge_batch(rerun.created_at, 10).await.unwrap();
    assert_eq!(purged.counts.executions, 1);
    let kept = store.get_execution_detail(rerun.id).await.unwrap();
    assert_eq!((kept.execution.retry_of, kept.outputs.len()), (None, 2));
}

backend_tests!(
    a_retry_reruns_what_failed_and_reuses_what_succeeded,
    a_due_retry_is_claimed_before_a_backlog,
    a_run_reports_its_end_even_when_purged_at_once,
    a_successful_run_records_everything,
    failures_are_retried_with_back_off_then_fail,
    a_retry_can_succeed,
    a_timeout_kills_the_process_group,
    cancelling_stops_the_running_processes,
    the_dag_runs_in_order_and_in_parallel,
    outputs_are_stored_and_handed_downstream,
    a_hundred_thousand_lines_are_logged_completely_in_order,
    recovery_at_start_up_fails_what_this_node_left_running,
    serve_drains_the_queue_and_shuts_down,
    short_attempts_are_claimed_ahead_of_a_free_slot,
    long_attempts_are_not_claimed_ahead,
);
