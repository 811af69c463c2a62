//! The fault suite: real `flowstate serve` processes killed with SIGKILL
//! again and again while they run a DAG with retries and outputs, and an
//! engine killed for good whose work another engine takes over. What must
//! hold afterwards is checked on the database and on the side effects the
//! tasks leave in a file.
//!
//! `scripts/chaos` runs the kill loop bigger (`CHAOS_KILLS`,
//! `CHAOS_EXECUTIONS`, `CHAOS_ENGINES`); CI runs it at the defaults below.

use flowstate_store::query::ExecutionQuery;
use flowstate_store::types::{ExecutionState, TaskState};
use flowstate_store::{StateOps, StateStore};
use flowstate_tests::{backend_tests, procs, query_count, query_strings, Backend, TestDb};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A marker in the environment of every engine of one test (and so of
/// every task it starts), to find their processes.
fn serve(config: &Path, mark: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_flowstate"))
        .arg("--config")
        .arg(config)
        .arg("serve")
        .env_remove("FLOWSTATE_DATABASE_URL")
        .env("FAULT_SUITE_MARK", mark)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start flowstate serve")
}

/// Live (not zombie) processes carrying `mark`, engines excluded.
fn marked_tasks(mark: &str) -> Vec<i32> {
    let var = format!("FAULT_SUITE_MARK={mark}");
    procs::all()
        .into_iter()
        .filter(|p| p.state != 'Z' && !p.comm.starts_with("flowstate"))
        .filter(|p| procs::has_env(p.pid, &var))
        .map(|p| p.pid)
        .collect()
}

fn config(db: &TestDb, dir: &Path, node: &str, lease: u64) -> std::path::PathBuf {
    let path = dir.join(format!("{node}.yaml"));
    std::fs::write(
        &path,
        format!(
            "{}engine:\n  nodeId: {node}\n  workers: 4\n  pollInterval: 50ms\n  leaseSeconds: {lease}\n  shutdownGrace: 5s\nserver:\n  listen: 127.0.0.1:0\n",
            db.storage_yaml()
        ),
    )
    .unwrap();
    path
}

/// a -> b -> c: a publishes a value, b needs it and fails its first
/// attempt one time in three, c records what it got. Each task appends
/// `execution task attempt` to `effects` as its last act.
fn dag(effects: &Path) -> flowstate_engine::Workflow {
    let log = format!(
        "echo $FLOWSTATE_EXECUTION_ID $FLOWSTATE_TASK $FLOWSTATE_ATTEMPT >> {}",
        effects.display()
    );
    let yaml = format!(
        "name: chaos\ntasks:\n\
         \x20 - id: a\n    run: sleep 0.05; echo v=7 >> $FLOWSTATE_OUTPUT; {log}\n\
         \x20 - id: b\n    needs: [a]\n    retries: 2\n    retryDelay: 50ms\n    run: sleep 0.1; [ \"$v\" = 7 ] || exit 9; if [ $FLOWSTATE_ATTEMPT = 1 ] && [ $(( $(date +%N) % 3 )) = 0 ]; then exit 1; fi; {log}\n\
         \x20 - id: c\n    needs: [b]\n    run: sleep 0.05; {log}\n"
    );
    flowstate_engine::Workflow::from_yaml(&yaml, Path::new("chaos.yaml")).unwrap()
}

async fn unfinished(store: &dyn StateStore) -> u64 {
    store
        .list_executions(ExecutionQuery {
            states: vec![
                ExecutionState::Pending,
                ExecutionState::Running,
                ExecutionState::Waiting,
            ],
            limit: Some(1),
            exact_total: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .total
}

async fn sigkill_loop_leaves_consistent_records_and_no_orphans(db: TestDb) {
    let (kills, executions) = (knob("CHAOS_KILLS", 10), knob("CHAOS_EXECUTIONS", 100));
    let engines = knob("CHAOS_ENGINES", 1);
    let store = db.store().await;
    let dir = tempfile::tempdir().unwrap();
    let effects = dir.path().join("effects");
    let wf = dag(&effects);
    for _ in 0..executions {
        flowstate_engine::submit(&store, &wf, serde_json::json!({}))
            .await
            .unwrap();
    }
    let mark = uuid::Uuid::new_v4().to_string();
    let configs: Vec<_> = (0..engines)
        .map(|i| config(&db, dir.path(), &format!("chaos-{i}"), 10))
        .collect();
    let mut running: Vec<Child> = configs.iter().map(|c| serve(c, &mark)).collect();
    let mut orphans_seen = 0;
    for kill in 0..kills {
        tokio::time::sleep(Duration::from_millis(300 + (kill as u64 * 137) % 500)).await;
        let victim = kill % engines;
        let mut child = running.remove(victim);
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let _ = child.wait();
        // Tasks die with their engine, within a second.
        let killed = Instant::now();
        loop {
            let left: Vec<i32> = marked_tasks(&mark)
                .into_iter()
                .filter(|&p| {
                    !running
                        .iter()
                        .any(|c| procs::descends_from(p, c.id() as i32))
                })
                .collect();
            if left.is_empty() {
                break;
            }
            if killed.elapsed() > Duration::from_secs(1) {
                orphans_seen += left.len();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        running.insert(victim, serve(&configs[victim], &mark));
    }
    // Let the last engines finish everything.
    let deadline = Instant::now() + Duration::from_secs(300);
    while unfinished(&store).await > 0 {
        assert!(Instant::now() < deadline, "the executions never all ended");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for mut child in running {
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let _ = child.wait();
    }
    assert_eq!(orphans_seen, 0, "task processes outlived their engine");
    check_records(&db, &effects).await;
}

/// Every execution terminal, nothing unfinished under one, attempts
/// numbered without gaps, no side effect twice for one attempt, and (on
/// SQLite) a database that passes its own checks.
async fn check_records(db: &TestDb, effects: &Path) {
    let raw = db.raw().await;
    let under_terminal = query_count(
        &raw,
        "SELECT COUNT(*) FROM task_runs t JOIN executions e ON e.id = t.execution_id \
         WHERE e.state IN ('SUCCEEDED', 'FAILED', 'CANCELLED') \
         AND t.state IN ('PENDING', 'WAITING', 'RUNNING')",
    )
    .await;
    assert_eq!(
        under_terminal, 0,
        "task runs left unfinished under finished executions"
    );
    let gaps = query_count(
        &raw,
        "SELECT COUNT(*) FROM task_runs t WHERE t.attempt_count <> \
         (SELECT COUNT(*) FROM attempts a WHERE a.task_run_id = t.id) \
         OR t.attempt_count <> COALESCE((SELECT MAX(a.number) FROM attempts a WHERE a.task_run_id = t.id), 0)",
    )
    .await;
    assert_eq!(gaps, 0, "attempts are numbered 1..n without gaps");
    let running_attempts = query_count(
        &raw,
        "SELECT COUNT(*) FROM attempts WHERE state = 'RUNNING'",
    )
    .await;
    assert_eq!(running_attempts, 0, "attempts left RUNNING");
    let text = std::fs::read_to_string(effects).unwrap_or_default();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for line in text.lines() {
        *seen.entry(line).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "side effects done twice for one attempt: {twice:?}"
    );
    if db.backend == Backend::Sqlite {
        assert_eq!(query_strings(&raw, "PRAGMA integrity_check").await, ["ok"]);
        assert!(query_strings(&raw, "PRAGMA foreign_key_check")
            .await
            .is_empty());
    }
    let states = query_strings(&raw, "SELECT state FROM executions").await;
    let counts = states.iter().fold(HashMap::new(), |mut m, s| {
        *m.entry(s.as_str()).or_insert(0) += 1;
        m
    });
    eprintln!(
        "fault suite: executions by state {counts:?}, {} side effects",
        seen.len()
    );
}

async fn an_engine_killed_for_good_is_taken_over_after_its_lease(db: TestDb) {
    let store = db.store().await;
    let dir = tempfile::tempdir().unwrap();
    let started = dir.path().join("started");
    let slow = flowstate_engine::Workflow::from_yaml(
        &format!(
            "name: slow\ntasks:\n  - id: long\n    run: echo up > {}; sleep 60\n  - id: after\n    needs: [long]\n    run: 'true'\n",
            started.display()
        ),
        Path::new("slow.yaml"),
    )
    .unwrap();
    let quick = flowstate_engine::Workflow::from_yaml(
        "name: quick\ntasks:\n  - id: t\n    run: 'true'\n",
        Path::new("quick.yaml"),
    )
    .unwrap();
    let mark = uuid::Uuid::new_v4().to_string();
    let slow_exec = flowstate_engine::submit(&store, &slow, serde_json::json!({}))
        .await
        .unwrap();
    let mut a = serve(&config(&db, dir.path(), "node-a", 3), &mark);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !started.exists() {
        assert!(Instant::now() < deadline, "the long task never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    unsafe { libc::kill(a.id() as i32, libc::SIGKILL) };
    let _ = a.wait();
    let killed = Instant::now();
    // Work that arrives meanwhile (node-a, dead, cannot have claimed it).
    let mut quick_ids = HashSet::new();
    for _ in 0..5 {
        let e = flowstate_engine::submit(&store, &quick, serde_json::json!({}))
            .await
            .unwrap();
        quick_ids.insert(e.id);
    }
    let mut b = serve(&config(&db, dir.path(), "node-b", 3), &mark);
    // node-b runs the queue at once and, once node-a's lease ran out,
    // fails what node-a was running, with nothing left unfinished under it.
    loop {
        let e = store.get_execution(slow_exec.id).await.unwrap();
        if e.state.is_terminal() {
            assert_eq!(e.state, ExecutionState::Failed);
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "node-a's execution is still {}",
            e.state
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for id in &quick_ids {
        let deadline = Instant::now() + Duration::from_secs(30);
        while store.get_execution(*id).await.unwrap().state != ExecutionState::Succeeded {
            assert!(Instant::now() < deadline, "a queued execution never ran");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let runs = store.list_task_runs(slow_exec.id).await.unwrap();
    let states: Vec<_> = runs.iter().map(|r| r.state).collect();
    assert_eq!(states, [TaskState::Failed, TaskState::Skipped]);
    unsafe { libc::kill(b.id() as i32, libc::SIGTERM) };
    let _ = b.wait();
    assert!(marked_tasks(&mark).is_empty(), "node-a's task outlived it");
}

/// The claims an engine's metrics endpoint at `addr` has counted.
async fn claims(addr: std::net::SocketAddr) -> Option<u64> {
    // Not listening yet while the engine starts.
    tokio::net::TcpStream::connect(addr).await.ok()?;
    let body = flowstate_tests::http::get(addr, "/metrics").await.body;
    body.lines()
        .find_map(|l| l.strip_prefix("flowstate_claim_seconds_count "))
        .and_then(|v| v.trim().parse().ok())
}

/// Found once: an idle engine claimed in a loop (10,000 empty claims in
/// 4 s, a core's worth of CPU) because each empty claim woke the loop for
/// the next. Idle, it claims at its poll, and when a slot frees.
async fn an_idle_engine_claims_at_its_poll_not_in_a_loop(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let path = config(&db, dir.path(), "idle", 30);
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replace(
        "engine:\n",
        &format!("engine:\n  metricsAddr: 127.0.0.1:{port}\n"),
    );
    std::fs::write(&path, text).unwrap();
    let mut engine = serve(&path, "idle");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let first = loop {
        match claims(addr).await {
            Some(n) => break n,
            None if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            None => panic!("the engine's metrics never showed a claim"),
        }
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = claims(addr).await.unwrap();
    let _ = engine.kill();
    let _ = engine.wait();
    // A poll every 50 ms: about 20 claims in the second.
    assert!(
        after - first <= 40,
        "{} claims in one idle second",
        after - first
    );
}

backend_tests!(
    sigkill_loop_leaves_consistent_records_and_no_orphans,
    an_engine_killed_for_good_is_taken_over_after_its_lease,
    an_idle_engine_claims_at_its_poll_not_in_a_loop,
);
