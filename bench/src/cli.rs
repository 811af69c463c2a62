//! Scenario 11 (SQLite): the `flowstate` read commands against the `sqlite3`
//! shell running the same queries on the same file, timed as whole
//! processes, medians of paired runs. What a person waits for, start-up and
//! opening included.

use flowstate_store::query::{self, ExecutionQuery};
use flowstate_store::types::ExecutionState;
use sea_orm::sea_query::Value as SqlValue;
use sea_orm::{DbBackend, Statement};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// One command and what sqlite3 runs for it.
struct Case {
    label: &'static str,
    args: Vec<String>,
    sql: String,
}

/// The SQL of `stmt` with its values written in, as sqlite3 takes it (ids
/// are 16-byte blobs, times RFC 3339 text, as sqlx stores them).
fn inline(stmt: &Statement) -> String {
    let values = stmt
        .values
        .as_ref()
        .map(|v| v.0.clone())
        .unwrap_or_default();
    let mut parts = stmt.sql.split('?');
    let mut out = parts.next().unwrap_or_default().to_owned();
    for (part, value) in parts.zip(values) {
        out.push_str(&literal(&value));
        out.push_str(part);
    }
    out
}

fn literal(v: &SqlValue) -> String {
    match v {
        SqlValue::Uuid(Some(u)) => format!("X'{}'", u.simple()),
        SqlValue::ChronoDateTimeUtc(Some(t)) => {
            format!(
                "'{}'",
                t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
            )
        }
        SqlValue::String(Some(s)) => format!("'{}'", s.replace('\'', "''")),
        SqlValue::BigInt(Some(n)) => n.to_string(),
        SqlValue::BigUnsigned(Some(n)) => n.to_string(),
        SqlValue::Int(Some(n)) => n.to_string(),
        SqlValue::Unsigned(Some(n)) => n.to_string(),
        other => panic!("no sqlite3 literal for {other:?}"),
    }
}

/// What `execution list` runs: the page, the capped count and the names.
fn list_sql(q: &ExecutionQuery, workflows: &[Uuid]) -> String {
    let page = query::execution_list_statement(DbBackend::Sqlite, q).unwrap();
    let count = query::execution_count_statement(DbBackend::Sqlite, q);
    let ids: Vec<String> = workflows
        .iter()
        .map(|w| format!("X'{}'", w.simple()))
        .collect();
    format!(
        "{}; {}; SELECT id, name FROM workflows WHERE id IN ({});",
        inline(&page),
        inline(&count),
        ids.join(", ")
    )
}

fn cases(execution: Uuid, workflow: (Uuid, &str), all: &[Uuid]) -> Vec<Case> {
    let (since, until) = (
        chrono::Utc::now() - chrono::Duration::days(60),
        chrono::Utc::now() - chrono::Duration::days(30),
    );
    let filtered = ExecutionQuery {
        workflow_id: Some(workflow.0),
        states: vec![ExecutionState::Succeeded],
        since: Some(since),
        until: Some(until),
        ..Default::default()
    };
    let x = format!("X'{}'", execution.simple());
    let time = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339();
    vec![
        Case {
            label: "execution list",
            args: vec!["execution".into(), "list".into()],
            sql: list_sql(&ExecutionQuery::default(), all),
        },
        Case {
            label: "execution list (workflow + state + range)",
            args: [
                "execution", "list", "--workflow", workflow.1, "--state", "SUCCEEDED",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain(["--since".into(), time(since), "--until".into(), time(until)])
            .collect(),
            sql: format!(
                "SELECT id FROM workflows WHERE name = '{}'; {}",
                workflow.1,
                list_sql(&filtered, &[workflow.0])
            ),
        },
        Case {
            label: "execution inspect",
            args: vec!["execution".into(), "inspect".into(), execution.to_string()],
            sql: format!(
                "SELECT * FROM executions e LEFT JOIN workflows w ON w.id = e.workflow_id WHERE e.id = {x}; \
                 SELECT * FROM task_runs WHERE execution_id = {x} ORDER BY position; \
                 SELECT a.* FROM attempts a JOIN task_runs t ON t.id = a.task_run_id WHERE t.execution_id = {x}; \
                 SELECT * FROM outputs WHERE execution_id = {x};"
            ),
        },
        Case {
            label: "execution logs",
            args: vec!["execution".into(), "logs".into(), execution.to_string()],
            sql: format!(
                "SELECT * FROM executions WHERE id = {x}; \
                 SELECT ts, task_run_id, stream, line FROM logs WHERE execution_id = {x} ORDER BY id; \
                 SELECT id, task_key FROM task_runs WHERE execution_id = {x};"
            ),
        },
        Case {
            label: "workflow list",
            args: vec!["workflow".into(), "list".into()],
            sql: "SELECT COUNT(*) FROM workflows WHERE deleted_at IS NULL; \
                  SELECT * FROM workflows WHERE deleted_at IS NULL ORDER BY name LIMIT 50;"
                .into(),
        },
    ]
}

/// Seconds of one run of `cmd`, which must succeed.
fn time_once(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("start the command");
    assert!(status.success(), "{cmd:?} failed: {status}");
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Times each read command against sqlite3, `runs` paired runs each. Skipped
/// (one row saying so) when the sqlite3 shell is not installed.
pub fn compare(
    flowstate: &Path,
    db_file: &Path,
    execution: Uuid,
    workflow: (Uuid, &str),
    all: &[Uuid],
    runs: usize,
) -> Vec<Value> {
    if Command::new("sqlite3").arg("--version").output().is_err() {
        return vec![
            json!({"scenario": "CLI against sqlite3", "skipped": "sqlite3 is not installed"}),
        ];
    }
    let config = db_file.with_extension("cli.yaml");
    std::fs::write(
        &config,
        format!("storage:\n  sqlite:\n    path: {}\n", db_file.display()),
    )
    .unwrap();
    let mut out = Vec::new();
    for case in cases(execution, workflow, all) {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            ours.push(time_once(
                Command::new(flowstate)
                    .arg("--config")
                    .arg(&config)
                    .args(&case.args),
            ));
            theirs.push(time_once(
                Command::new("sqlite3").arg(db_file).arg(&case.sql),
            ));
        }
        let (a, b) = (median(ours), median(theirs));
        out.push(json!({
            "scenario": case.label,
            "flowstateMs": crate::stats::ms(a),
            "sqlite3Ms": crate::stats::ms(b),
            "ratio": (a.as_secs_f64() / b.as_secs_f64() * 100.0).round() / 100.0,
        }));
    }
    let _ = std::fs::remove_file(&config);
    out
}
