//! What the CLI prints: the stable JSON shapes (camelCase, RFC 3339 UTC) and
//! aligned human tables (local time, colour only on a terminal).

use chrono::{DateTime, Local, SecondsFormat, Utc};
use flowstate_store::text::escape_controls;
use flowstate_store::types::*;
use serde_json::{json, Map, Value};
use std::io::IsTerminal;

/// A time as JSON: RFC 3339 in UTC, or null.
pub fn ts(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| {
        Value::String(t.to_rfc3339_opts(SecondsFormat::Micros, true))
    })
}

/// The Execution object.
pub fn execution(e: &Execution, workflow_name: &str) -> Value {
    json!({
        "id": e.id,
        "workflowId": e.workflow_id,
        "workflowName": workflow_name,
        "state": e.state.as_str(),
        "reason": e.reason.map(|r| r.as_str()),
        "error": e.error,
        "createdAt": ts(Some(e.created_at)),
        "updatedAt": ts(Some(e.updated_at)),
        "startedAt": ts(e.started_at),
        "finishedAt": ts(e.finished_at),
    })
}

/// `execution inspect`: the Execution with its task runs, attempts and outputs.
pub fn detail(d: &ExecutionDetail) -> Value {
    let mut doc = execution(&d.execution, &d.workflow_name);
    let task_runs: Vec<Value> = d
        .task_runs
        .iter()
        .map(|t| {
            let r = &t.task_run;
            json!({
                "id": r.id,
                "taskKey": r.task_key,
                "state": r.state.as_str(),
                "reason": r.reason.map(|r| r.as_str()),
                "startedAt": ts(r.started_at),
                "finishedAt": ts(r.finished_at),
                "attempts": t.attempts.iter().map(|a| json!({
                    "number": a.number,
                    "state": a.state.as_str(),
                    "exitCode": a.exit_code,
                    "error": a.error,
                    "startedAt": ts(Some(a.started_at)),
                    "finishedAt": ts(a.finished_at),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut outputs: Map<String, Value> = Map::new();
    for o in &d.outputs {
        let key = d
            .task_runs
            .iter()
            .find(|t| t.task_run.id == o.task_run_id)
            .map(|t| t.task_run.task_key.clone())
            .unwrap_or_default();
        outputs
            .entry(key)
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .expect("an object")
            .insert(o.key.clone(), o.value.clone());
    }
    doc["inputs"] = d.execution.input.clone();
    doc["taskRuns"] = Value::Array(task_runs);
    doc["outputs"] = Value::Object(outputs);
    doc
}

/// One log line as JSON.
pub fn log_line(l: &LogLine, task_key: Option<&str>) -> Value {
    json!({
        "id": l.id,
        "ts": ts(Some(l.ts)),
        "taskKey": task_key,
        "attempt": l.attempt,
        "stream": l.stream.as_str(),
        "line": l.line,
    })
}

/// A time for people: local, to the second, with its UTC offset so that a
/// table read later or elsewhere says which zone it shows.
pub fn local(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "-".into(),
        |t| {
            t.with_timezone(&Local)
                .format("%Y-%m-%d %H:%M:%S %:z")
                .to_string()
        },
    )
}

/// How long from `a` to `b` (or to now), for people.
pub fn took(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> String {
    let Some(a) = a else { return "-".into() };
    let ms = (b.unwrap_or_else(Utc::now) - a).num_milliseconds().max(0);
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 120_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}

/// Whether to colour stdout.
pub fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// A state name, padded to `width`, coloured when `colour` is set.
pub fn state(name: &str, width: usize, colour: bool) -> String {
    let padded = format!("{name:width$}");
    if !colour {
        return padded;
    }
    let code = match name {
        "SUCCEEDED" => "32",
        "FAILED" => "31",
        "RUNNING" => "36",
        "WAITING" | "PENDING" => "33",
        _ => "2",
    };
    format!("\x1b[{code}m{padded}\x1b[0m")
}

/// Prints rows under headers with every column aligned. A column named
/// `STATE` is coloured on a terminal. Control characters in cells (task
/// output, error text) are escaped: a table never moves the cursor.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let colour = colour();
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| escape_controls(c)).collect())
        .collect();
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([headers[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let last = i + 1 == cells.len();
            let w = if last { 0 } else { widths[i] };
            if headers[i] == "STATE" && cell != "STATE" {
                out.push_str(&state(cell, w, colour));
            } else {
                out.push_str(&format!("{cell:w$}"));
            }
            if !last {
                out.push_str("  ");
            }
        }
        outln!("{}", out.trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r);
    }
}
