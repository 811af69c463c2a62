//! The built `flowstate` binary against temporary SQLite databases: every
//! command, every JSON shape, filters and paging, and each error class.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A temporary folder with a config file pointing at a SQLite file in it.
struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("flowstate.yaml");
        std::fs::write(
            &config,
            format!(
                "storage:\n  sqlite:\n    path: {}\nengine:\n  workers: 4\n  pollInterval: 50ms\n  leaseSeconds: 10\n  shutdownGrace: 5s\nserver:\n  listen: 127.0.0.1:0\n",
                dir.path().join("fs.db").display()
            ),
        )
        .unwrap();
        Env { dir, config }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_flowstate"));
        c.arg("--config")
            .arg(&self.config)
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("FLOWSTATE_DATABASE_URL")
            .env_remove("FLOWSTATE_CONFIG")
            .env("NO_COLOR", "1");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed ({:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let text = self.ok(&all);
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
    }

    fn file(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    fn serve(&self) -> Child {
        self.cmd(&["serve"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

fn stop(mut child: Child) -> Output {
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn is_time(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(s).is_ok())
}

fn check_execution(e: &Value) {
    let keys = [
        "id",
        "workflowId",
        "workflowName",
        "state",
        "reason",
        "error",
        "createdAt",
        "updatedAt",
        "startedAt",
        "finishedAt",
    ];
    for k in keys {
        assert!(e.get(k).is_some(), "Execution lacks {k}: {e}");
    }
    assert!(uuid::Uuid::parse_str(e["id"].as_str().unwrap()).is_ok());
    assert!(uuid::Uuid::parse_str(e["workflowId"].as_str().unwrap()).is_ok());
    assert!(e["workflowName"].as_str().is_some_and(|s| !s.is_empty()));
    let state = e["state"].as_str().unwrap();
    assert_eq!(state, state.to_uppercase());
    assert!(is_time(&e["createdAt"]) && is_time(&e["updatedAt"]));
    for k in ["startedAt", "finishedAt"] {
        assert!(e[k].is_null() || is_time(&e[k]), "{k}: {}", e[k]);
    }
}

#[test]
fn run_inspect_and_read_logs_of_an_example() {
    let env = Env::new();
    let hello = examples().join("hello.yaml");
    let out = env.run(&["run", hello.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("[greet] hello from flowstate"), "{stdout}");
    assert!(stdout.contains("[count] tick 3"), "{stdout}");
    assert!(stderr.contains("SUCCEEDED"), "{stderr}");

    let list = env.json(&["execution", "list"]);
    assert_eq!(list["total"], 1);
    assert_eq!(list["limit"], 50);
    assert_eq!(list["offset"], 0);
    assert!(list["nextCursor"].is_null());
    let e = &list["items"][0];
    check_execution(e);
    assert_eq!(e["workflowName"], "hello");
    assert_eq!(e["state"], "SUCCEEDED");
    let id = e["id"].as_str().unwrap().to_owned();

    let d = env.json(&["execution", "inspect", &id]);
    check_execution(&d);
    let runs = d["taskRuns"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["taskKey"], "greet");
    assert_eq!(runs[1]["taskKey"], "count");
    for r in runs {
        for k in [
            "id",
            "taskKey",
            "state",
            "reason",
            "startedAt",
            "finishedAt",
            "attempts",
        ] {
            assert!(r.get(k).is_some(), "task run lacks {k}");
        }
        assert_eq!(r["state"], "SUCCEEDED");
        let a = &r["attempts"][0];
        assert_eq!(a["number"], 1);
        assert_eq!(a["state"], "SUCCEEDED");
        assert_eq!(a["exitCode"], 0);
        assert!(a["error"].is_null());
        assert!(is_time(&a["startedAt"]) && is_time(&a["finishedAt"]));
    }
    assert_eq!(d["outputs"], serde_json::json!({}));

    let logs = env.ok(&["--json", "execution", "logs", &id]);
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let stdout_lines: Vec<&str> = lines
        .iter()
        .filter(|l| l["stream"] == "stdout")
        .map(|l| l["line"].as_str().unwrap())
        .collect();
    assert_eq!(stdout_lines.len(), 4);
    assert_eq!(&stdout_lines[1..], ["tick 1", "tick 2", "tick 3"]);
    for l in &lines {
        assert!(l["id"].is_i64() && is_time(&l["ts"]));
        assert!(["stdout", "stderr", "system"].contains(&l["stream"].as_str().unwrap()));
        assert_eq!(l["attempt"], 1);
        assert!(l["taskKey"] == "greet" || l["taskKey"] == "count");
    }
    let only = env.ok(&["execution", "logs", &id, "--task", "count"]);
    assert!(
        only.contains("tick 2") && !only.contains("hello from"),
        "{only}"
    );

    let human = env.ok(&["execution", "inspect", &id]);
    assert!(
        human.contains("workflow   hello") && human.contains("attempt 1"),
        "{human}"
    );
    let table = env.ok(&["execution", "list"]);
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains("SUCCEEDED"));
}

#[test]
fn a_failed_run_exits_1_and_records_why() {
    let env = Env::new();
    let wf = env.file(
        "fail.yaml",
        "name: fail\ntasks:\n  - id: boom\n    run: echo bad >&2; exit 4\n  - id: after\n    run: 'true'\n    needs: [boom]\n",
    );
    let out = env.run(&["run", &wf]);
    assert_eq!(out.status.code(), Some(1));
    // run says why: the failed task, its attempt and the exit code.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("task boom"), "{stderr}");
    assert!(stderr.contains("exit status 4"), "{stderr}");
    let list = env.json(&["execution", "list", "--state", "failed"]);
    assert_eq!(list["total"], 1);
    let e = &list["items"][0];
    assert_eq!(e["reason"], "TASK_FAILED");
    let d = env.json(&["execution", "inspect", e["id"].as_str().unwrap()]);
    assert_eq!(d["taskRuns"][0]["attempts"][0]["exitCode"], 4);
    assert_eq!(d["taskRuns"][0]["attempts"][0]["error"], "exit status 4");
    assert_eq!(d["taskRuns"][1]["state"], "SKIPPED");
}

#[test]
fn workflows_are_registered_listed_shown_and_deleted() {
    let env = Env::new();
    let report = examples().join("report.yaml");
    let w = env.json(&["workflow", "register", report.to_str().unwrap()]);
    assert_eq!(w["name"], "report");
    assert_eq!(w["version"], 1);
    assert!(is_time(&w["createdAt"]) && w["deletedAt"].is_null());
    let again = env.ok(&["workflow", "register", report.to_str().unwrap()]);
    assert!(again.contains("unchanged: report version 1"), "{again}");
    env.ok(&[
        "workflow",
        "register",
        examples().join("hello.yaml").to_str().unwrap(),
    ]);

    let list = env.json(&["workflow", "list"]);
    assert_eq!(list["total"], 2);
    assert_eq!(list["items"][0]["name"], "hello");
    let show = env.ok(&["workflow", "show", "report"]);
    assert!(
        show.contains("task publish") && show.contains("needs        summary, charts"),
        "{show}"
    );
    let shown = env.json(&["workflow", "show", "report"]);
    assert_eq!(shown["definition"]["tasks"][0]["id"], "fetch");

    let sub = env.json(&["submit", "report", "--input", "day=friday"]);
    check_execution(&sub);
    assert_eq!(sub["state"], "PENDING");
    // inspect shows the inputs, as text and as JSON.
    let id = sub["id"].as_str().unwrap();
    assert_eq!(
        env.json(&["execution", "inspect", id])["inputs"]["day"],
        "friday"
    );
    let text = env.ok(&["execution", "inspect", id]);
    assert!(text.contains("day=friday"), "{text}");
    // Dates are times too (midnight UTC), and tables say their zone.
    let since = env.json(&["execution", "list", "--since", "2000-01-01"]);
    assert_eq!(since["total"], 1);
    let until = env.json(&["execution", "list", "--until", "2000-01-01 00:00:00"]);
    assert_eq!(until["total"], 0);
    let table = env.ok(&["execution", "list"]);
    let offset = chrono::Local::now().format("%:z").to_string();
    assert!(table.contains(&offset), "{table}");
    let plain = env.ok(&["submit", report.to_str().unwrap()]);
    assert!(uuid::Uuid::parse_str(plain.trim()).is_ok(), "{plain}");

    env.ok(&["workflow", "delete", "report"]);
    assert_eq!(env.json(&["workflow", "list"])["total"], 1);
    assert_eq!(env.json(&["workflow", "list", "--all"])["total"], 2);
    assert_eq!(
        env.json(&["execution", "list"])["total"],
        2,
        "soft delete keeps executions"
    );
    let out = env.run(&["submit", "report"]);
    assert_eq!(out.status.code(), Some(1), "a deleted workflow is not run");
    env.ok(&["workflow", "delete", "report", "--hard", "--yes"]);
    assert_eq!(env.json(&["execution", "list"])["total"], 0);
    let out = env.run(&["workflow", "show", "report"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("workflow 'report' not found"));
}

#[test]
fn list_filters_and_both_paging_styles() {
    let env = Env::new();
    let a = env.file("a.yaml", "name: wa\ntasks:\n  - id: t\n    run: 'true'\n");
    let b = env.file("b.yaml", "name: wb\ntasks:\n  - id: t\n    run: 'true'\n");
    let mut ids_a = Vec::new();
    for i in 0..13 {
        let wf = if i % 3 == 0 { &b } else { &a };
        let id = env.ok(&["submit", wf]).trim().to_owned();
        if i % 3 != 0 {
            ids_a.push(id);
        }
    }
    assert_eq!(ids_a.len(), 8);
    // One of wa's executions fails.
    let failed = env.run(&[
        "run",
        &env.file("c.yaml", "name: wa\ntasks:\n  - id: t\n    run: exit 1\n"),
    ]);
    assert_eq!(failed.status.code(), Some(1));

    let all = env.json(&["execution", "list", "--workflow", "wa"]);
    assert_eq!(all["total"], 9);
    let pending = env.json(&[
        "execution",
        "list",
        "--workflow",
        "wa",
        "--state",
        "PENDING",
    ]);
    assert_eq!(pending["total"], 8);
    let got: Vec<&str> = pending["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    let mut want: Vec<&str> = ids_a.iter().map(String::as_str).collect();
    want.reverse();
    assert_eq!(got, want, "newest first");
    let two_states = env.json(&[
        "execution",
        "list",
        "--state",
        "pending",
        "--state",
        "failed",
    ]);
    assert_eq!(two_states["total"], 14);
    let none = env.json(&["execution", "list", "--state", "running"]);
    assert_eq!(none["total"], 0);
    let future = env.json(&["execution", "list", "--since", "2999-01-01T00:00:00Z"]);
    assert_eq!(future["total"], 0);
    let recent = env.json(&[
        "execution",
        "list",
        "--since",
        "1h",
        "--until",
        "2999-01-01T00:00:00Z",
    ]);
    assert_eq!(recent["total"], 14);

    // Offset pages.
    let mut seen = Vec::new();
    for offset in [0, 3, 6] {
        let page = env.json(&[
            "execution",
            "list",
            "--workflow",
            "wa",
            "--state",
            "pending",
            "--sort",
            "created",
            "--limit",
            "3",
            "--offset",
            &offset.to_string(),
        ]);
        assert_eq!(page["offset"], offset);
        assert_eq!(page["total"], 8);
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_owned()),
        );
    }
    assert_eq!(seen, ids_a, "oldest first, every row once");

    // Cursor pages.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut args = vec![
            "execution",
            "list",
            "--workflow",
            "wa",
            "--state",
            "pending",
            "--limit",
            "3",
        ];
        if let Some(c) = &after {
            args.push("--after");
            args.push(c);
        }
        let page = env.json(&args);
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(c) => after = Some(c.to_owned()),
            None => break,
        }
    }
    let mut want = ids_a.clone();
    want.reverse();
    assert_eq!(seen, want);
}

#[test]
fn serve_runs_submitted_work_and_follow_ends_with_the_execution() {
    let env = Env::new();
    let wf = env.file(
        "slow.yaml",
        "name: slow\ntasks:\n  - id: a\n    run: for i in 1 2 3 4 5; do echo line $i; sleep 0.2; done\n  - id: b\n    run: echo done\n    needs: [a]\n",
    );
    let id = env.ok(&["submit", &wf]).trim().to_owned();
    let follower = env
        .cmd(&["execution", "logs", &id, "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let server = env.serve();
    let started = Instant::now();
    let out = follower.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for i in 1..=5 {
        assert!(text.contains(&format!("line {i}")), "{text}");
    }
    assert!(
        text.contains("done"),
        "follow printed the last task's line: {text}"
    );
    let e = env.json(&["execution", "inspect", &id]);
    assert_eq!(e["state"], "SUCCEEDED");

    // Cancel a long one while serve runs it.
    let long = env.file(
        "long.yaml",
        "name: long\ntasks:\n  - id: wait\n    run: sleep 60\n",
    );
    let id = env.ok(&["submit", &long]).trim().to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    while env.json(&["execution", "inspect", &id])["taskRuns"][0]["state"] != "RUNNING" {
        assert!(Instant::now() < deadline, "the task never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    let c = env.json(&["execution", "cancel", &id]);
    assert_eq!(c["state"], "CANCELLED");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let d = env.json(&["execution", "inspect", &id]);
        if d["taskRuns"][0]["attempts"][0]["state"] == "CANCELLED" {
            assert_eq!(d["taskRuns"][0]["state"], "CANCELLED");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the attempt was not stopped: {d}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let again = env.run(&["execution", "cancel", &id]);
    assert_eq!(again.status.code(), Some(1));
    let out = stop(server);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn cleanup_counts_and_deletes_old_executions() {
    let env = Env::new();
    let hello = examples().join("hello.yaml");
    env.ok(&["run", hello.to_str().unwrap()]);
    env.ok(&["run", hello.to_str().unwrap()]);
    env.ok(&["submit", hello.to_str().unwrap()]);
    let dry = env.json(&["cleanup", "--older-than", "0s", "--dry-run"]);
    assert_eq!(dry["dryRun"], true);
    assert_eq!(dry["executions"], 2);
    assert_eq!(dry["taskRuns"], 4);
    assert_eq!(dry["attempts"], 4);
    assert_eq!(dry["outputs"], 0);
    assert!(dry["logs"].as_u64().unwrap() >= 8);
    assert_eq!(env.json(&["execution", "list"])["total"], 3);
    let none = env.json(&["cleanup", "--yes"]);
    assert_eq!(
        none["executions"], 0,
        "the default age is retentionDays (30)"
    );
    let done = env.json(&[
        "cleanup",
        "--older-than",
        "0s",
        "--batch-size",
        "1",
        "--yes",
    ]);
    assert_eq!(done["dryRun"], false);
    assert_eq!(done["executions"], 2);
    assert_eq!(done["logs"], dry["logs"]);
    let left = env.json(&["execution", "list"]);
    assert_eq!(left["total"], 1);
    assert_eq!(left["items"][0]["state"], "PENDING");
}

#[test]
fn migrate_commands_share_the_ops_code() {
    let env = Env::new();
    // status reads only: on a folder without a database it creates none.
    let out = env.run(&["migrate", "status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no flowstate database at"));
    assert!(!env.dir.path().join("fs.db").exists());
    let up = env.ok(&["migrate", "up", "-n", "1"]);
    assert!(up.contains("applied 1 migration(s)"), "{up}");
    let s = env.json(&["migrate", "status"]);
    assert_eq!(
        s["pending"],
        serde_json::json!([
            "m20261129_000001_list_and_claim_indexes",
            "m20261129_120000_exact_names",
            "m20261129_130000_workflow_versions",
            "m20261129_140000_recovery_indexes",
            "m20261129_220000_reason_index",
            "m20261129_230000_execution_retries"
        ])
    );
    let up = env.ok(&["migrate", "up"]);
    assert!(up.contains("applied 6 migration(s)"), "{up}");
    let s = env.json(&["migrate", "status"]);
    assert_eq!(
        s["applied"][0]["version"],
        "m20261125_000001_initial_schema"
    );
    assert!(is_time(&s["applied"][0]["appliedAt"]));
    env.ok(&["migrate", "down", "--yes"]);
    env.ok(&["migrate", "fresh", "--yes"]);
    env.ok(&["migrate", "reset", "--yes"]);
}

#[test]
fn every_error_class_has_its_exit_code_and_message() {
    let env = Env::new();
    env.ok(&["migrate", "up"]);
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec!["execution", "list", "--bogus"], 2, "--bogus"),
        (
            vec!["execution", "list", "--since", "yesterday"],
            2,
            "bad time 'yesterday'",
        ),
        (
            vec!["cleanup", "--older-than", "ages"],
            2,
            "bad duration 'ages'",
        ),
        (
            vec!["execution", "inspect", "42"],
            2,
            "'42' is not an execution id",
        ),
        (
            vec!["execution", "list", "--state", "done"],
            2,
            "unknown execution state 'done'",
        ),
        (vec!["execution", "list", "--limit", "0"], 2, "--limit"),
        (
            vec!["execution", "list", "--sort", "name"],
            2,
            "bad sort 'name'",
        ),
        (
            vec!["execution", "list", "--offset", "1", "--after", "x"],
            2,
            "cannot be used with",
        ),
        (
            vec!["execution", "list", "--after", "garbage"],
            2,
            "malformed cursor 'garbage'",
        ),
        (
            vec![
                "execution",
                "inspect",
                "01a2258a-0cac-7741-967e-802906e7e591",
            ],
            1,
            "not found",
        ),
        (
            vec!["execution", "list", "--workflow", "ghost"],
            1,
            "workflow 'ghost' not found",
        ),
        (
            vec!["run", "--input", "novalue", "x.yaml"],
            2,
            "bad input 'novalue'",
        ),
    ];
    for (args, code, text) in cases {
        let out = env.run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(text), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }

    // An invalid workflow file: exit 2, the file and the task named, nothing written.
    let bad = env.file(
        "bad.yaml",
        "name: bad\ntasks:\n  - id: a\n    run: 'true'\n    needs: [zzz]\n",
    );
    for args in [
        vec!["run", bad.as_str()],
        vec!["workflow", "register", bad.as_str()],
        vec!["submit", bad.as_str()],
    ] {
        let out = env.run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("bad.yaml, task 'a': needs unknown task 'zzz'"),
            "{stderr}"
        );
    }
    assert_eq!(env.json(&["workflow", "list", "--all"])["total"], 0);
    assert_eq!(env.json(&["execution", "list"])["total"], 0);

    // A bad configuration file: exit 2.
    let cfg = env.file("broken.yaml", "storage:\n  type: postgress\n");
    let out = Command::new(env!("CARGO_BIN_EXE_flowstate"))
        .args(["--config", &cfg, "execution", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown storage.type 'postgress'"));
    let cfg = env.file("broken2.yaml", "engine:\n  workerz: 3\n");
    let out = Command::new(env!("CARGO_BIN_EXE_flowstate"))
        .args(["--config", &cfg, "serve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean 'workers'"));

    // An unreachable database: exit 1, no password shown.
    let out = Command::new(env!("CARGO_BIN_EXE_flowstate"))
        .args(["execution", "list"])
        .env(
            "FLOWSTATE_DATABASE_URL",
            "postgres://u:sekret@127.0.0.1:1/x",
        )
        .env_remove("FLOWSTATE_CONFIG")
        .current_dir(env.dir.path().join(".."))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("127.0.0.1:1") && !stderr.contains("sekret"),
        "{stderr}"
    );
}

/// Destructive commands ask on a terminal: `script` gives the command a
/// pseudo-terminal and types the answer.
#[test]
fn destructive_commands_ask_on_a_terminal() {
    let env = Env::new();
    let hello = examples().join("hello.yaml");
    env.ok(&["run", hello.to_str().unwrap()]);
    let on_terminal = |answer: &str, args: &str| {
        let command = format!(
            "{} --config {} {args}",
            env!("CARGO_BIN_EXE_flowstate"),
            env.config.display()
        );
        let mut child = Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .current_dir(env.dir.path())
            .env_remove("FLOWSTATE_DATABASE_URL")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("script(1) from util-linux");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(answer.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = on_terminal("n\n", "cleanup --older-than 0s");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("cleanup deletes 1 executions"), "{text}");
    assert!(
        text.contains("not confirmed; nothing was changed"),
        "{text}"
    );
    assert_eq!(env.json(&["execution", "list"])["total"], 1);
    let out = on_terminal("n\n", "migrate reset");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("m20261125_000001_initial_schema"), "{text}");
    assert_eq!(
        env.json(&["migrate", "status"])["pending"],
        serde_json::json!([])
    );
    let out = on_terminal("y\n", "workflow delete hello --hard");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("its 1 executions"), "{text}");
    assert_eq!(env.json(&["execution", "list"])["total"], 0);
}

/// `flowstate execution inspect ID | head -1` panicked on the closed pipe.
#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    use std::os::fd::FromRawFd;
    let env = Env::new();
    let id = env.ok(&["submit", examples().join("hello.yaml").to_str().unwrap()]);
    for args in [
        vec!["execution", "inspect", id.trim()],
        vec!["execution", "list"],
        vec!["--json", "workflow", "list"],
        vec!["migrate", "status"],
    ] {
        let mut fds = [0; 2];
        // SAFETY: pipe() fills both descriptors, which we then own.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        unsafe { libc::close(fds[0]) };
        let writer = unsafe { std::fs::File::from_raw_fd(fds[1]) };
        let out = env
            .cmd(&args)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        use std::os::unix::process::ExitStatusExt;
        assert!(
            out.status.success() || out.status.signal() == Some(libc::SIGPIPE),
            "{args:?}: {:?} {stderr}",
            out.status
        );
    }
}

/// A full disk or a closed stderr never turns into a panic: `run` finishes
/// its execution whatever happens to its output, and a reading command whose
/// output cannot be written exits 1.
#[test]
fn failed_writes_are_not_panics() {
    let env = Env::new();
    let hello = examples().join("hello.yaml");
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    let out = env
        .cmd(&["run", hello.to_str().unwrap()])
        .stderr(Stdio::from(full()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    let list = env.json(&["execution", "list"]);
    assert_eq!(list["items"][0]["state"], "SUCCEEDED");
    let id = list["items"][0]["id"].as_str().unwrap().to_owned();
    for args in [
        vec!["execution", "inspect", id.as_str()],
        vec!["execution", "logs", id.as_str()],
        vec!["--json", "execution", "list"],
    ] {
        let out = env.cmd(&args).stdout(Stdio::from(full())).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("No space left on device"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// `autoMigrate: false` creates nothing when a store opens, but `migrate up`
/// is how such a database is made.
#[test]
fn migrate_up_creates_a_database_that_auto_migrate_would_not() {
    let env = Env::new();
    let db = env.dir.path().join("fs.db");
    let cfg = env.file(
        "manual.yaml",
        &format!(
            "storage:\n  autoMigrate: false\n  sqlite:\n    path: {}\n",
            db.display()
        ),
    );
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_flowstate"))
            .args(["--config", &cfg])
            .args(args)
            .env_remove("FLOWSTATE_DATABASE_URL")
            .output()
            .unwrap()
    };
    let out = run(&["run", examples().join("hello.yaml").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("flowstate migrate up"));
    assert!(!db.exists());
    assert!(run(&["migrate", "up"]).status.success());
    assert!(
        run(&["run", examples().join("hello.yaml").to_str().unwrap()])
            .status
            .success()
    );
}

/// The configuration is read once, so a pipe works and its `engine:`
/// section counts (it was silently dropped when read a second time).
#[test]
fn a_configuration_from_a_pipe_is_read_whole() {
    let env = Env::new();
    let mut child = env
        .cmd(&["execution", "list"])
        .arg("--config")
        .arg("/dev/stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"engine:\n  workers: 0\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("engine.workers is 0"), "{stderr}");
}

/// `serve` wrote colour codes into a redirected log; JSON is there for collectors.
#[test]
fn serve_logs_plain_text_or_json_when_not_on_a_terminal() {
    let env = Env::new();
    env.ok(&["migrate", "up"]);
    for (format, check) in [
        (
            "text",
            (|l: &str| !l.contains('\u{1b}')) as fn(&str) -> bool,
        ),
        ("json", |l: &str| serde_json::from_str::<Value>(l).is_ok()),
    ] {
        let child = env
            .cmd(&["serve", "--log-format", format])
            .env_remove("NO_COLOR")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(800));
        let out = stop(child);
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(!log.trim().is_empty(), "{format}: empty log");
        for line in log.lines().filter(|l| !l.is_empty()) {
            assert!(check(line), "{format}: {line:?}");
        }
    }
}

#[test]
fn with_no_config_at_all_run_uses_the_embedded_default() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_flowstate"))
        .args(["run", examples().join("hello.yaml").to_str().unwrap()])
        .current_dir(dir.path())
        .env_remove("FLOWSTATE_DATABASE_URL")
        .env_remove("FLOWSTATE_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("data/flowstate.db").exists());
}

/// The HTTP listener is checked before the database: a bad `server:` value
/// exits 2 and a taken port exits 1, neither creating a database; `console`
/// never creates one; a short token is refused without being shown.
#[test]
fn serve_and_console_check_their_listener_before_the_database() {
    let env = Env::new();
    let db = env.dir.path().join("fs.db");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let config = |server: &str| {
        env.file(
            "server.yaml",
            &format!(
                "storage:\n  sqlite:\n    path: {}\nserver:\n{server}",
                db.display()
            ),
        )
    };
    for (server, command, code, says) in [
        (
            "  listen: nowhere\n",
            "serve",
            2,
            "server.listen 'nowhere' is not an address",
        ),
        (
            "  token: tiny-secret\n",
            "console",
            2,
            "server.token is 11 characters; use at least 16",
        ),
        (
            "  enabled: maybe\n",
            "serve",
            2,
            "server.enabled is the string \"maybe\"; expected true or false",
        ),
        (
            &format!("  listen: 127.0.0.1:{port}\n"),
            "serve",
            1,
            "cannot listen on 127.0.0.1:",
        ),
        (
            "  listen: 127.0.0.1:0\n",
            "console",
            1,
            "no flowstate database",
        ),
    ] {
        let cfg = config(server);
        let out = Command::new(env!("CARGO_BIN_EXE_flowstate"))
            .args(["--config", &cfg, command])
            .env_remove("FLOWSTATE_DATABASE_URL")
            .env_remove("FLOWSTATE_API_TOKEN")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{server}: {stderr}");
        assert!(stderr.contains(says), "{server}: {stderr}");
        assert!(!stderr.contains("tiny-secret"), "{stderr}");
        assert!(!db.exists(), "{command} with {server} created the database");
    }
    // The variable is checked like the key, and never echoed.
    let cfg = config("  listen: 127.0.0.1:0\n");
    let out = Command::new(env!("CARGO_BIN_EXE_flowstate"))
        .args(["--config", &cfg, "console"])
        .env("FLOWSTATE_API_TOKEN", "short one")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("FLOWSTATE_API_TOKEN contains a blank"),
        "{stderr}"
    );
    assert!(!stderr.contains("short one"), "{stderr}");
    drop(taken);
}

/// `execution wait` and `submit --wait` exit as `run` does, or 124 on a
/// timeout; `-o` prints YAML or ids; completions, man pages and help.
#[test]
fn wait_output_formats_completions_and_help() {
    let env = Env::new();
    let hello = examples().join("hello.yaml");
    let flaky = env.file(
        "boom.yaml",
        "name: boom\ntasks:\n  - id: a\n    run: exit 3\n",
    );
    env.ok(&["workflow", "register", hello.to_str().unwrap()]);
    env.ok(&["workflow", "register", &flaky]);
    // Nothing runs it yet: the wait times out, saying where it stands.
    let out = env.run(&["submit", "hello", "--wait", "--timeout", "300ms"]);
    assert_eq!(out.status.code(), Some(124), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "PENDING");
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out after 300ms"));
    let server = env.serve();
    let out = env.run(&["submit", "hello", "--wait", "--timeout", "60s"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "SUCCEEDED");
    let out = env.run(&["--json", "submit", "boom", "--wait"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let failed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(failed["state"], "FAILED");
    let id = failed["id"].as_str().unwrap().to_owned();
    let out = env.run(&["execution", "wait", &id]);
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).trim()
        ),
        (Some(1), "FAILED")
    );
    stop(server);
    // -o: YAML documents, and ids for pipelines.
    let ids = env.ok(&["execution", "list", "-o", "ids"]);
    assert_eq!(ids.lines().count(), 3, "{ids}");
    assert!(ids.lines().any(|l| l == id));
    assert_eq!(env.ok(&["workflow", "list", "-o", "ids"]), "boom\nhello\n");
    // Ids: a unique prefix works, an ambiguous one lists the candidates,
    // tables show forms that are prefixes, and --reason filters.
    assert_eq!(
        env.json(&["execution", "inspect", &id[..28]])["id"],
        id.as_str()
    );
    let out = env.run(&["execution", "inspect", &id[..8]]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("starts several execution ids") && stderr.contains(&id),
        "{stderr}"
    );
    assert_eq!(
        env.run(&["execution", "inspect", "0123"]).status.code(),
        Some(2)
    );
    let table = env.ok(&["execution", "list"]);
    for line in table.lines().skip(1) {
        let short = line.split_whitespace().next().unwrap();
        assert!(
            short.len() >= 18 && ids.lines().any(|i| i.starts_with(short)),
            "{table}"
        );
    }
    assert_eq!(
        env.ok(&["execution", "list", "--reason", "task_failed", "-o", "ids"])
            .trim(),
        id
    );
    let matched = env.ok(&["execution", "list", "--workflow", "b?o*", "-o", "ids"]);
    assert_eq!(matched.trim(), id);
    let every = env.ok(&["execution", "list", "--workflow", "*", "-o", "ids"]);
    assert_eq!(every.lines().count(), 3);
    assert_eq!(
        env.run(&["execution", "list", "--workflow", "zz*"])
            .status
            .code(),
        Some(1)
    );
    let yaml = env.ok(&["execution", "inspect", &id, "-o", "yaml"]);
    assert!(
        yaml.contains("state: FAILED") && yaml.contains("taskRuns:"),
        "{yaml}"
    );
    assert!(env
        .ok(&["execution", "list", "-o", "json"])
        .starts_with("{\"items\""));
    for bad in [
        &["--json", "-o", "yaml", "execution", "list"][..],
        &["-o", "yaml", "execution", "logs", &id][..],
        &["-o", "xml", "workflow", "list"][..],
    ] {
        assert_eq!(env.run(bad).status.code(), Some(2), "{bad:?}");
    }
    // Completions, man pages and every command's help.
    assert!(env.ok(&["completions", "bash"]).contains("_flowstate()"));
    assert!(env
        .ok(&["completions", "zsh"])
        .contains("#compdef flowstate"));
    assert!(env.ok(&["man"]).contains(".TH flowstate"));
    let dir = env.dir.path().join("man");
    env.ok(&["man", "--out", dir.to_str().unwrap()]);
    assert!(dir.join("flowstate-execution-wait.1").is_file());
    let help = env.ok(&["execution", "wait", "--help"]);
    assert!(
        help.contains("Examples:") && help.contains("124  `execution wait`"),
        "{help}"
    );
    assert!(env.ok(&["cleanup", "--help"]).contains("Exit codes:"));
}

/// `workflow show` prints each task's settings, and a multi-line command
/// line by line.
#[test]
fn workflow_show_prints_commands_and_settings() {
    let env = Env::new();
    let file = env.file(
        "multi.yaml",
        "name: multi\ntasks:\n  - id: prep\n    run: echo ready\n  - id: build\n    needs: [prep]\n    retries: 2\n    retryDelay: 3s\n    timeout: 1m\n    env: { MODE: full, LEVEL: '2' }\n    run: |\n      echo one\n      echo two\n",
    );
    env.ok(&["workflow", "register", &file]);
    let text = env.ok(&["workflow", "show", "multi"]);
    for want in [
        "task build\n  needs        prep\n  retries      2 (first after 3s, doubling)\n  timeout      1m\n  env          LEVEL=2\n               MODE=full\n  run\n    echo one\n    echo two\n",
        "task prep\n  retries      0\n  timeout      none\n  run          echo ready\n",
    ] {
        assert!(text.contains(want), "{text}");
    }
}

/// `execution retry` runs what failed here, reusing what succeeded, like
/// `run`; `--queue` leaves it for `serve`; both link to the original.
#[test]
fn retry_runs_what_failed_here_or_queues_it() {
    let env = Env::new();
    let marker = env.dir.path().join("second");
    let file = env.file(
        "twice.yaml",
        &format!(
            "name: twice\ntasks:\n  - id: a\n    run: echo x=1 >> \"$FLOWSTATE_OUTPUT\"\n  - id: b\n    needs: [a]\n    run: test -f {m} || {{ touch {m}; exit 3; }}\n",
            m = marker.display()
        ),
    );
    let out = env.run(&["--json", "run", &file]);
    assert_eq!(out.status.code(), Some(1));
    let original: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = original["id"].as_str().unwrap().to_owned();
    let out = env.run(&["--json", "execution", "retry", &id[..28]]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let retried: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (retried["state"].as_str(), retried["retryOf"].as_str()),
        (Some("SUCCEEDED"), Some(id.as_str()))
    );
    let detail = env.json(&["execution", "inspect", retried["id"].as_str().unwrap()]);
    assert_eq!(detail["taskRuns"][0]["reason"], "REUSED");
    assert_eq!(detail["outputs"]["a"]["x"], "1");
    let queued = env.ok(&["execution", "retry", &id, "--all", "--queue"]);
    let listed = env.json(&["execution", "inspect", &id]);
    assert_eq!(listed["retries"].as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(
        env.json(&["execution", "inspect", queued.trim()])["state"],
        "PENDING"
    );
    let text = env.ok(&["execution", "inspect", queued.trim()]);
    assert!(text.contains(&format!("retry of   {id}")), "{text}");
    let out = env.run(&["execution", "retry", &id, "--from", "zz"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("task 'zz' is not in workflow 'twice'"));
    assert_eq!(
        env.run(&["execution", "retry", &id, "--from", "a", "--all"])
            .status
            .code(),
        Some(2)
    );
}
