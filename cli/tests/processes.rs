//! Engine processes (`flowstate serve`) on one database: two share 200
//! executions without running any twice, one killed with SIGKILL is
//! recovered by its successor, and one stopped by SIGTERM loses nothing.

use flowstate_store::query::ExecutionQuery;
use flowstate_store::types::{AttemptState, ExecutionState, Reason, TaskState};
use flowstate_store::{StateOps, StateStore};
use flowstate_tests::procs::alive;
use flowstate_tests::{backend_tests, procs, Backend, TestDb};
use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn config_file(db: &TestDb, dir: &Path, node: &str, workers: usize) -> String {
    config_with_grace(db, dir, node, workers, "5s")
}

fn config_with_grace(db: &TestDb, dir: &Path, node: &str, workers: usize, grace: &str) -> String {
    let text = format!(
        "{}engine:\n  nodeId: {node}\n  workers: {workers}\n  pollInterval: 50ms\n  leaseSeconds: 10\n  shutdownGrace: {grace}\nserver:\n  listen: 127.0.0.1:0\n",
        db.storage_yaml()
    );
    let path = dir.join(format!("{node}.yaml"));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn serve(config: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_flowstate"))
        .args(["--config", config, "serve"])
        .env_remove("FLOWSTATE_DATABASE_URL")
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start flowstate serve")
}

fn signal(child: &Child, sig: i32) {
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

fn wait(mut child: Child, within: Duration) -> std::process::Output {
    let deadline = Instant::now() + within;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "flowstate serve did not stop in {within:?}; it said:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

async fn count(store: &dyn StateStore, state: ExecutionState) -> u64 {
    store
        .list_executions(ExecutionQuery {
            states: vec![state],
            limit: Some(1),
            ..Default::default()
        })
        .await
        .unwrap()
        .total
}

async fn two_engines_share_the_work_and_run_nothing_twice(db: TestDb) {
    let store = db.store().await;
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("ran.txt");
    let wf = flowstate_engine::Workflow::from_yaml(
        &format!(
            "name: once\ntasks:\n  - id: t\n    run: echo $FLOWSTATE_EXECUTION_ID >> {}\n",
            ran.display()
        ),
        Path::new("once.yaml"),
    )
    .unwrap();
    let mut ids = HashSet::new();
    for _ in 0..200 {
        ids.insert(
            flowstate_engine::submit(&store, &wf, serde_json::json!({}))
                .await
                .unwrap()
                .id,
        );
    }
    let a = serve(&config_file(&db, dir.path(), "engine-a", 4));
    let b = serve(&config_file(&db, dir.path(), "engine-b", 4));
    let deadline = Instant::now() + Duration::from_secs(180);
    while count(&store, ExecutionState::Succeeded).await < 200 {
        assert!(Instant::now() < deadline, "not all 200 executions finished");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    signal(&a, libc::SIGTERM);
    signal(&b, libc::SIGTERM);
    for child in [a, b] {
        let out = wait(child, Duration::from_secs(30));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let lines = std::fs::read_to_string(&ran).unwrap();
    let mut seen = HashSet::new();
    for line in lines.lines() {
        let id: uuid::Uuid = line.parse().unwrap();
        assert!(seen.insert(id), "{id} ran twice");
    }
    assert_eq!(seen, ids, "every execution ran exactly once");
    let mut owners = HashSet::new();
    for id in &ids {
        let d = store.get_execution_detail(*id).await.unwrap();
        assert_eq!(d.task_runs[0].attempts.len(), 1);
        owners.insert(d.execution.owner.clone().unwrap());
    }
    eprintln!("owners: {owners:?}");
}

async fn a_killed_engine_is_recovered_by_the_next_start(db: TestDb) {
    let store = db.store().await;
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let childfile = dir.path().join("child");
    // The shell starts a child of its own, as real tasks do.
    let sleeper = flowstate_engine::Workflow::from_yaml(
        &format!(
            "name: sleeper\ntasks:\n  - id: nap\n    run: sleep 60 & echo $! > {}; echo $$ > {}; wait\n",
            childfile.display(),
            pidfile.display()
        ),
        Path::new("sleeper.yaml"),
    )
    .unwrap();
    let quick = flowstate_engine::Workflow::from_yaml(
        "name: quick\ntasks:\n  - id: t\n    run: echo quick\n",
        Path::new("quick.yaml"),
    )
    .unwrap();
    // One worker: while the sleeper runs, the quick execution stays PENDING.
    let config = config_file(&db, dir.path(), "crash-node", 1);
    let asleep = flowstate_engine::submit(&store, &sleeper, serde_json::json!({}))
        .await
        .unwrap();
    let first = serve(&config);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pidfile.exists() || std::fs::read_to_string(&pidfile).unwrap().trim().is_empty() {
        assert!(Instant::now() < deadline, "the task never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pending = flowstate_engine::submit(&store, &quick, serde_json::json!({}))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        store.get_execution(pending.id).await.unwrap().state,
        ExecutionState::Pending
    );

    let pids: Vec<i32> = [&pidfile, &childfile]
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap().trim().parse().unwrap())
        .collect();
    assert!(pids.iter().all(|&p| alive(p)));
    signal(&first, libc::SIGKILL);
    let killed = Instant::now();
    let _ = wait(first, Duration::from_secs(10));
    // The task's shell and its child die with the engine, within a second.
    while pids.iter().any(|&p| alive(p)) {
        assert!(
            killed.elapsed() < Duration::from_secs(1),
            "task processes {pids:?} outlived their engine"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let e = store.get_execution(asleep.id).await.unwrap();
    assert_eq!(
        e.state,
        ExecutionState::Running,
        "nothing recorded the crash yet"
    );

    let second = serve(&config);
    let deadline = Instant::now() + Duration::from_secs(60);
    while store.get_execution(pending.id).await.unwrap().state != ExecutionState::Succeeded {
        assert!(Instant::now() < deadline, "the PENDING execution never ran");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    signal(&second, libc::SIGTERM);
    let out = wait(second, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(
        stderr.contains("recovery: 1 RUNNING execution(s) failed"),
        "{stderr}"
    );

    let d = store.get_execution_detail(asleep.id).await.unwrap();
    assert_eq!(d.execution.state, ExecutionState::Failed);
    assert_eq!(d.execution.reason, Some(Reason::CrashRecovery));
    let nap = &d.task_runs[0];
    assert_eq!(nap.task_run.state, TaskState::Failed);
    assert_eq!(nap.task_run.reason, Some(Reason::CrashRecovery));
    assert_eq!(nap.attempts[0].state, AttemptState::Failed);
    assert_eq!(nap.attempts[0].reason, Some(Reason::CrashRecovery));
}

/// Waits until `file` exists and is not empty.
async fn wait_for_file(file: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(file).map_or(true, |t| t.trim().is_empty()) {
        assert!(Instant::now() < deadline, "{what} never happened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the execution reaches `state`.
async fn wait_for_state(store: &dyn StateStore, id: uuid::Uuid, state: ExecutionState) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = store.get_execution(id).await.unwrap().state;
        if now == state {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "execution still {now}, not {state}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Stops `child` with SIGTERM and checks it exits 0 within `within`.
fn terminate(child: Child, within: Duration) -> String {
    signal(&child, libc::SIGTERM);
    let out = wait(child, within);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    stderr
}

async fn sigterm_lets_the_running_task_finish_and_hands_the_rest_back(db: TestDb) {
    let store = db.store().await;
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("ran");
    let yaml = format!(
        "name: chain\ntasks:\n  - id: a\n    run: echo a >> {r}; sleep 1\n  - id: b\n    run: echo b >> {r}\n    needs: [a]\n  - id: c\n    run: echo c >> {r}\n    needs: [b]\n",
        r = ran.display()
    );
    let wf = flowstate_engine::Workflow::from_yaml(&yaml, Path::new("chain.yaml")).unwrap();
    let exec = flowstate_engine::submit(&store, &wf, serde_json::json!({}))
        .await
        .unwrap();
    let config = config_file(&db, dir.path(), "graceful", 2);
    let first = serve(&config);
    wait_for_file(&ran, "task a's start").await;
    let stopped_at = Instant::now();
    terminate(first, Duration::from_secs(10));
    assert!(
        stopped_at.elapsed() < Duration::from_secs(4),
        "the engine waited {:?}, not just for task a",
        stopped_at.elapsed()
    );
    // a finished within the grace; b never started; the execution is
    // handed back, free for any engine, with nothing failed.
    let d = store.get_execution_detail(exec.id).await.unwrap();
    assert_eq!(d.execution.state, ExecutionState::Waiting);
    assert_eq!(d.execution.owner, None);
    assert_eq!(d.execution.lease_expires_at, None);
    let states: Vec<_> = d.task_runs.iter().map(|t| t.task_run.state).collect();
    assert_eq!(
        states,
        [TaskState::Succeeded, TaskState::Pending, TaskState::Pending]
    );
    assert_eq!(std::fs::read_to_string(&ran).unwrap(), "a\n");

    let second = serve(&config);
    wait_for_state(&store, exec.id, ExecutionState::Succeeded).await;
    let stderr = terminate(second, Duration::from_secs(10));
    assert!(stderr.contains("recovery: 0 RUNNING"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&ran).unwrap(), "a\nb\nc\n");
    let d = store.get_execution_detail(exec.id).await.unwrap();
    for t in &d.task_runs {
        assert_eq!(t.attempts.len(), 1, "{} ran once", t.task_run.task_key);
        assert_eq!(t.attempts[0].state, AttemptState::Succeeded);
    }
}

async fn the_end_of_the_grace_stops_a_task_politely_and_it_is_retried(db: TestDb) {
    let store = db.store().await;
    let dir = tempfile::tempdir().unwrap();
    let (started, term, done) = (
        dir.path().join("started"),
        dir.path().join("term"),
        dir.path().join("done"),
    );
    let script = format!(
        "if [ \"$FLOWSTATE_ATTEMPT\" = 1 ]; then trap 'echo term >> {t}; exit 143' TERM; echo up > {s}; sleep 30 & wait; fi; echo done >> {d}",
        s = started.display(),
        t = term.display(),
        d = done.display()
    );
    let yaml = format!(
        "name: long\ntasks:\n  - id: t\n    retries: 1\n    retryDelay: 10m\n    run: '{}'\n",
        script.replace('\'', "''")
    );
    let wf = flowstate_engine::Workflow::from_yaml(&yaml, Path::new("long.yaml")).unwrap();
    let exec = flowstate_engine::submit(&store, &wf, serde_json::json!({}))
        .await
        .unwrap();
    let config = config_with_grace(&db, dir.path(), "impatient", 1, "500ms");
    let first = serve(&config);
    wait_for_file(&started, "the first attempt's start").await;
    terminate(first, Duration::from_secs(10));
    // SIGTERM reached the task (its trap ran) once the grace was over.
    assert_eq!(std::fs::read_to_string(&term).unwrap(), "term\n");
    let d = store.get_execution_detail(exec.id).await.unwrap();
    assert_eq!(d.execution.state, ExecutionState::Waiting);
    assert_eq!(d.execution.owner, None);
    let t = &d.task_runs[0];
    assert_eq!(t.task_run.state, TaskState::Waiting);
    assert_eq!(t.attempts[0].state, AttemptState::Failed);
    assert_eq!(t.attempts[0].reason, Some(Reason::Shutdown));

    // Retried at once by the next engine, not after the 10 minute back-off.
    let second = serve(&config);
    wait_for_state(&store, exec.id, ExecutionState::Succeeded).await;
    terminate(second, Duration::from_secs(10));
    assert_eq!(std::fs::read_to_string(&done).unwrap(), "done\n");
    let d = store.get_execution_detail(exec.id).await.unwrap();
    assert_eq!(d.task_runs[0].attempts.len(), 2);
}

async fn a_second_signal_ends_the_grace_at_once(db: TestDb) {
    let store = db.store().await;
    let dir = tempfile::tempdir().unwrap();
    let started = dir.path().join("started");
    let yaml = format!(
        "name: stuck\ntasks:\n  - id: t\n    run: echo up > {}; sleep 60\n",
        started.display()
    );
    let wf = flowstate_engine::Workflow::from_yaml(&yaml, Path::new("stuck.yaml")).unwrap();
    let exec = flowstate_engine::submit(&store, &wf, serde_json::json!({}))
        .await
        .unwrap();
    let config = config_with_grace(&db, dir.path(), "twice", 1, "60s");
    let child = serve(&config);
    wait_for_file(&started, "the task's start").await;
    signal(&child, libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asked = Instant::now();
    signal(&child, libc::SIGINT);
    let out = wait(child, Duration::from_secs(10));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    let d = store.get_execution_detail(exec.id).await.unwrap();
    assert_eq!(d.execution.state, ExecutionState::Failed);
    assert_eq!(d.task_runs[0].attempts[0].reason, Some(Reason::Shutdown));
}

/// The children of `parent` whose command name is `comm`.
fn children(parent: u32, comm: &str) -> Vec<i32> {
    procs::all()
        .into_iter()
        .filter(|p| p.comm == comm && p.ppid == parent as i32)
        .map(|p| p.pid)
        .collect()
}

async fn the_next_start_kills_tasks_whose_guard_died_with_the_engine(db: TestDb) {
    let store = db.store().await;
    let dir = tempfile::tempdir().unwrap();
    let (pidfile, childfile) = (dir.path().join("pid"), dir.path().join("child"));
    let yaml = format!(
        "name: stubborn\ntasks:\n  - id: nap\n    run: sleep 60 & echo $! > {}; echo $$ > {}; wait\n",
        childfile.display(),
        pidfile.display()
    );
    let wf = flowstate_engine::Workflow::from_yaml(&yaml, Path::new("stubborn.yaml")).unwrap();
    flowstate_engine::submit(&store, &wf, serde_json::json!({}))
        .await
        .unwrap();
    let config = config_file(&db, dir.path(), "doomed", 1);
    let first = serve(&config);
    wait_for_file(&pidfile, "the task's start").await;
    wait_for_file(&childfile, "the task's child").await;
    let pids: Vec<i32> = [&pidfile, &childfile]
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap().trim().parse().unwrap())
        .collect();
    // The guard goes first (as if everything was killed at once), then the
    // engine: nothing is left to take the tasks down.
    let guards = children(first.id(), "flowstate-guard");
    assert_eq!(guards.len(), 1, "one guard per engine: {guards:?}");
    unsafe { libc::kill(guards[0], libc::SIGKILL) };
    signal(&first, libc::SIGKILL);
    let _ = wait(first, Duration::from_secs(10));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(pids.iter().all(|&p| alive(p)), "the orphans are running");

    let second = serve(&config);
    let started = Instant::now();
    while pids.iter().any(|&p| alive(p)) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the next start left {pids:?} running"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stderr = terminate(second, Duration::from_secs(10));
    assert!(
        stderr.contains("killed 1 task process group(s)"),
        "{stderr}"
    );
}

/// Kills every connection to the test database but the caller's own.
async fn kill_connections(db: &TestDb, admin: &sea_orm::DatabaseConnection) {
    use sea_orm::{ConnectionTrait, Statement};
    let backend = admin.get_database_backend();
    let sql = match db.backend {
        Backend::Postgres => "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()"
            .to_owned(),
        Backend::Mysql => {
            let ids = admin
                .query_all_raw(Statement::from_string(
                    backend,
                    "SELECT id FROM information_schema.processlist \
                     WHERE db = DATABASE() AND id <> CONNECTION_ID()",
                ))
                .await
                .map(|rows| {
                    rows.iter()
                        .filter_map(|r| r.try_get_by_index::<u64>(0).ok())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            for id in ids {
                let _ = admin
                    .execute_unprepared(&format!("KILL CONNECTION {id}"))
                    .await;
            }
            return;
        }
        Backend::Sqlite => unreachable!("SQLite has no server connections"),
    };
    let _ = admin
        .query_all_raw(Statement::from_string(backend, sql))
        .await;
}

async fn an_outage_of_the_database_leaves_nothing_running(db: TestDb) {
    if db.backend == Backend::Sqlite {
        // Nothing to cut: SQLite's faults are the full disk and SIGKILL.
        eprintln!("NOT RUN on SQLite: it has no server connections to kill");
        return;
    }
    let store = db.store().await;
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("ran");
    let yaml = format!(
        "name: steady\ntasks:\n  - id: t\n    run: sleep 0.3; echo $FLOWSTATE_EXECUTION_ID >> {}\n",
        ran.display()
    );
    let wf = flowstate_engine::Workflow::from_yaml(&yaml, Path::new("steady.yaml")).unwrap();
    let mut ids = Vec::new();
    for _ in 0..40 {
        let e = flowstate_engine::submit(&store, &wf, serde_json::json!({}))
            .await
            .unwrap();
        ids.push(e.id);
    }
    let config = dir.path().join("outage.yaml");
    std::fs::write(
        &config,
        format!(
            "{}engine:\n  nodeId: outage\n  workers: 4\n  pollInterval: 50ms\n  leaseSeconds: 30\n  shutdownGrace: 5s\nserver:\n  listen: 127.0.0.1:0\n",
            db.storage_yaml()
        ),
    )
    .unwrap();
    let child = serve(config.to_str().unwrap());
    wait_for_file(&ran, "the first task").await;
    // Six seconds in which every connection of the engine is killed as
    // soon as it is made: tasks keep finishing meanwhile.
    let admin = db.raw().await;
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_secs(6) {
        kill_connections(&db, &admin).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let back = Instant::now();
    let store = db.store().await;
    let deadline = Duration::from_secs(60);
    loop {
        let running = store
            .list_executions(ExecutionQuery {
                states: vec![
                    ExecutionState::Pending,
                    ExecutionState::Running,
                    ExecutionState::Waiting,
                ],
                limit: Some(1),
                ..Default::default()
            })
            .await
            .unwrap()
            .total;
        if running == 0 {
            break;
        }
        assert!(
            back.elapsed() < deadline,
            "{running} executions not finished"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stderr = terminate(child, Duration::from_secs(15));
    assert_eq!(
        count(&store, ExecutionState::Succeeded).await,
        40,
        "{stderr}"
    );
    let lines = std::fs::read_to_string(&ran).unwrap();
    assert_eq!(lines.lines().count(), 40, "every task ran once");
    for id in ids {
        let d = store.get_execution_detail(id).await.unwrap();
        assert_eq!(d.task_runs[0].attempts.len(), 1);
    }
}

async fn retry_on_crash_retries_the_attempt_a_crash_cut_off(db: TestDb) {
    let store = db.store().await;
    let dir = tempfile::tempdir().unwrap();
    let (started, done) = (dir.path().join("started"), dir.path().join("done"));
    let yaml = format!(
        "name: resilient\ntasks:\n  - id: nap\n    retries: 1\n    retryOnCrash: true\n    run: if [ $FLOWSTATE_ATTEMPT = 1 ]; then echo up > {}; sleep 60; fi; echo done >> {}\n  - id: after\n    needs: [nap]\n    run: 'true'\n",
        started.display(),
        done.display()
    );
    let wf = flowstate_engine::Workflow::from_yaml(&yaml, Path::new("resilient.yaml")).unwrap();
    let exec = flowstate_engine::submit(&store, &wf, serde_json::json!({}))
        .await
        .unwrap();
    let config = config_file(&db, dir.path(), "crashy", 1);
    let first = serve(&config);
    wait_for_file(&started, "the first attempt").await;
    signal(&first, libc::SIGKILL);
    let _ = wait(first, Duration::from_secs(10));

    let second = serve(&config);
    wait_for_state(&store, exec.id, ExecutionState::Succeeded).await;
    let stderr = terminate(second, Duration::from_secs(10));
    assert!(stderr.contains("1 put back to retry"), "{stderr}");
    let d = store.get_execution_detail(exec.id).await.unwrap();
    let nap = &d.task_runs[0];
    let attempts: Vec<_> = nap
        .attempts
        .iter()
        .map(|a| (a.number, a.state, a.reason))
        .collect();
    assert_eq!(
        attempts,
        [
            (1, AttemptState::Failed, Some(Reason::CrashRecovery)),
            (2, AttemptState::Succeeded, None)
        ]
    );
    assert_eq!(std::fs::read_to_string(&done).unwrap(), "done\n");
}

backend_tests!(
    retry_on_crash_retries_the_attempt_a_crash_cut_off,
    an_outage_of_the_database_leaves_nothing_running,
    the_next_start_kills_tasks_whose_guard_died_with_the_engine,
    two_engines_share_the_work_and_run_nothing_twice,
    a_killed_engine_is_recovered_by_the_next_start,
    sigterm_lets_the_running_task_finish_and_hands_the_rest_back,
    the_end_of_the_grace_stops_a_task_politely_and_it_is_retried,
    a_second_signal_ends_the_grace_at_once,
);

/// Runs `flowstate --config CONFIG ARGS...` to its end.
fn flowstate(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_flowstate"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("FLOWSTATE_DATABASE_URL")
        .output()
        .unwrap()
}

/// A full disk, portably: SQLite capped by `storage.sqlite.maxSizeMb`
/// (`PRAGMA max_page_count`). The attempt that could not store its output
/// fails STORAGE_FULL, the lock is not kept, commands say where the full
/// database is, and the engine goes on by itself once cleanup made room.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_sqlite_database_is_an_outcome_not_a_wedge() {
    flowstate_tests::run(Backend::Sqlite, |db| async move {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("full.yaml");
        std::fs::write(
            &config,
            format!(
                "{}    maxSizeMb: 1\nengine:\n  nodeId: full\n  workers: 2\n  pollInterval: 50ms\n  leaseSeconds: 10\n  shutdownGrace: 5s\nserver:\n  listen: 127.0.0.1:0\n",
                db.storage_yaml()
            ),
        )
        .unwrap();
        let store = db.store().await;
        // About 3 MB of output against a 1 MiB database.
        let noisy = flowstate_engine::Workflow::from_yaml(
            "name: noisy\ntasks:\n  - id: talk\n    run: yes 0123456789012345678901234567890123456789012345678901234567890123456789 | head -n 40000\n",
            Path::new("noisy.yaml"),
        )
        .unwrap();
        let loud = flowstate_engine::submit(&store, &noisy, serde_json::json!({}))
            .await
            .unwrap();
        let child = serve(config.to_str().unwrap());
        wait_for_state(&store, loud.id, ExecutionState::Failed).await;
        let d = store.get_execution_detail(loud.id).await.unwrap();
        let a = &d.task_runs[0].attempts[0];
        assert_eq!((a.state, a.reason), (AttemptState::Failed, Some(Reason::StorageFull)));

        // Fill what is left, then a command that writes says where it is full;
        // reading still works.
        let capped = {
            let mut c = db.config.clone();
            c.sqlite.max_size_mb = Some(1);
            flowstate_store::open(&c).await.unwrap()
        };
        let filler = |n: usize| {
            (0..n)
                .map(|i| flowstate_store::types::NewLogLine {
                    execution_id: loud.id,
                    task_run_id: None,
                    attempt: None,
                    ts: chrono::Utc::now(),
                    stream: flowstate_store::types::LogStream::System,
                    line: format!("{i:0>200}"),
                })
                .collect::<Vec<_>>()
        };
        while capped.append_logs(filler(50)).await.is_ok() {}
        // A definition of 60 kB needs pages of its own.
        let big = dir.path().join("big.yaml");
        let comment = "x".repeat(60_000);
        std::fs::write(
            &big,
            format!("name: big\ntasks:\n  - id: t\n    run: 'true # {comment}'\n"),
        )
        .unwrap();
        let out = flowstate(&config, &["workflow", "register", big.to_str().unwrap()]);
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{said}");
        let path = db.config.sqlite.path.display().to_string();
        assert!(
            said.contains(&format!("database or disk is full at sqlite://{path}")),
            "{said}"
        );
        let out = flowstate(&config, &["execution", "list"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

        // Room is made: the engine runs new work again by itself.
        let wf = dir.path().join("small.yaml");
        std::fs::write(&wf, "name: small\ntasks:\n  - id: t\n    run: 'true'\n").unwrap();
        let out = flowstate(&config, &["cleanup", "--older-than", "0s", "--yes"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let out = flowstate(&config, &["submit", wf.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let quiet = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let quiet: uuid::Uuid = quiet
            .split_whitespace()
            .find_map(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("no id in {quiet:?}"));
        wait_for_state(&store, quiet, ExecutionState::Succeeded).await;
        let stopped = Instant::now();
        let stderr = terminate(child, Duration::from_secs(15));
        assert!(stopped.elapsed() < Duration::from_secs(10));
        assert!(
            stderr.contains(&format!("database or disk is full at sqlite://{path}")),
            "{stderr}"
        );
    })
    .await;
}
