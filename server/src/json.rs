//! The JSON contract shared by the CLI's `--json` and the HTTP API: field
//! names in camelCase, times in RFC 3339 UTC with microseconds, ids as
//! strings. One function per shape, so both front-ends print the same.

use chrono::{DateTime, SecondsFormat, Utc};
use flowstate_store::query::Page;
use flowstate_store::types::*;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use uuid::Uuid;

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
        "retryOf": e.retry_of,
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
    doc["retries"] = json!(d.retries);
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

/// A page of executions, with each one's workflow name from `names`.
pub fn execution_page(page: &Page<Execution>, names: &HashMap<Uuid, String>) -> Value {
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|e| execution(e, names.get(&e.workflow_id).map_or("", String::as_str)))
        .collect();
    json!({
        "items": items,
        "total": page.total,
        "totalExact": page.total_exact,
        "limit": page.limit,
        "offset": page.offset,
        "nextCursor": page.next_cursor,
    })
}

/// The Workflow object, with its definition.
pub fn workflow(w: &Workflow) -> Value {
    json!({
        "id": w.id,
        "name": w.name,
        "version": w.version,
        "description": w.description,
        "definition": w.definition,
        "createdAt": ts(Some(w.created_at)),
        "updatedAt": ts(Some(w.updated_at)),
        "deletedAt": ts(w.deleted_at),
    })
}

/// A page of workflows.
pub fn workflow_page(page: &Page<Workflow>) -> Value {
    let items: Vec<Value> = page.items.iter().map(workflow).collect();
    json!({"items": items, "total": page.total, "limit": page.limit, "offset": page.offset})
}

/// `workflow history`: a workflow's versions, with how many executions use each.
pub fn history(w: &Workflow, versions: &[VersionSummary]) -> Value {
    let items: Vec<Value> = versions
        .iter()
        .map(|v| {
            json!({
                "version": v.version,
                "createdAt": ts(Some(v.created_at)),
                "executions": v.executions,
                "current": v.version == w.version,
            })
        })
        .collect();
    json!({"name": w.name, "versions": items})
}
