//! The console's page bodies, from what the store returned. Every value
//! from the database is escaped by [`esc`].

use super::charts;
use super::html::{badge, esc, time, took, url};
use crate::error::Result;
use crate::App;
use flowstate_engine::Workflow as Definition;
use flowstate_store::query::{LogQuery, Page};
use flowstate_store::types::*;
use std::collections::HashMap;
use std::fmt::Write;
use uuid::Uuid;

/// Log lines drawn into the page; the live pane streams the rest.
const PAGE_LINES: u64 = 500;

const STATES: [&str; 6] = [
    "PENDING",
    "RUNNING",
    "WAITING",
    "SUCCEEDED",
    "FAILED",
    "CANCELLED",
];

/// The value of `key` among the query's pairs ("" when absent).
fn param<'a>(pairs: &'a [(String, String)], key: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}

/// The query string of `pairs` with `key` set to `value` and the paging reset.
fn with(pairs: &[(String, String)], key: &str, value: &str) -> String {
    let mut q: Vec<String> = pairs
        .iter()
        .filter(|(k, v)| k != key && k != "after" && k != "offset" && !v.is_empty())
        .map(|(k, v)| format!("{}={}", url(k), url(v)))
        .collect();
    if !value.is_empty() {
        q.push(format!("{}={}", url(key), url(value)));
    }
    if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    }
}

/// The executions list: filter form, table, paging.
pub fn executions(
    pairs: &[(String, String)],
    page: &Page<Execution>,
    names: &HashMap<Uuid, String>,
) -> String {
    let mut b = String::with_capacity(16 * 1024);
    b.push_str("<h1>Executions</h1>");
    filter_form(&mut b, pairs);
    let first = param(pairs, "after").is_empty() && param(pairs, "offset").is_empty();
    let _ = write!(
        b,
        "<table class=\"list\" id=\"executions\"{}><thead><tr><th>ID</th><th>Workflow</th><th>State</th><th>Created</th><th>Duration</th><th>Reason</th></tr></thead><tbody>",
        if first { " data-refresh=\"5\"" } else { "" }
    );
    for e in &page.items {
        let name = names.get(&e.workflow_id).map_or("", String::as_str);
        let id = e.id.to_string();
        let _ = write!(
            b,
            "<tr data-state=\"{}\"><td><a class=\"mono id\" href=\"/executions/{id}\">{}</a></td><td><a href=\"/workflows/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e.state.as_str(),
            id,
            url(name),
            esc(name),
            badge(e.state.as_str()),
            time(Some(e.created_at)),
            took(e.started_at, e.finished_at),
            e.reason.map_or("", |r| r.as_str())
        );
    }
    if page.items.is_empty() {
        b.push_str("<tr><td colspan=\"6\" class=\"muted\">No execution matches.</td></tr>");
    }
    let plus = if page.total_exact { "" } else { "+" };
    let _ = write!(
        b,
        "</tbody></table><p class=\"paging\"><span id=\"count\">{} of {}{plus}</span>",
        page.items.len(),
        page.total
    );
    if !first {
        let _ = write!(
            b,
            " <a href=\"/executions{}\">Newest</a>",
            with(pairs, "after", "")
        );
    }
    if let Some(c) = &page.next_cursor {
        let _ = write!(
            b,
            " <a rel=\"next\" href=\"/executions{}\">Older →</a>",
            with(pairs, "after", c)
        );
    }
    b.push_str("</p>");
    b
}

fn filter_form(b: &mut String, pairs: &[(String, String)]) {
    let states: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "state")
        .flat_map(|(_, v)| v.split(','))
        .collect();
    let _ = write!(
        b,
        "<form class=\"filters\" method=\"get\" action=\"/executions\"><label>Workflow <input name=\"workflow\" value=\"{}\" placeholder=\"any\"></label><label>State <select name=\"state\"><option value=\"\">any</option>",
        esc(param(pairs, "workflow"))
    );
    for s in STATES {
        let on = if states.iter().any(|x| x.trim().eq_ignore_ascii_case(s)) {
            " selected"
        } else {
            ""
        };
        let _ = write!(b, "<option value=\"{s}\"{on}>{s}</option>");
    }
    let _ = write!(
        b,
        "</select></label><label>Since <input name=\"since\" value=\"{}\" placeholder=\"7d or 2026-11-29\"></label><label>Until <input name=\"until\" value=\"{}\" placeholder=\"now\"></label><button type=\"submit\">Filter</button> <a href=\"/executions\">Clear</a></form>",
        esc(param(pairs, "since")),
        esc(param(pairs, "until"))
    );
}

/// One execution: summary, cancel, timeline, graph, tasks, values, log.
pub async fn execution(app: &App, id: Uuid, task: Option<&str>) -> Result<String> {
    let d = app.store.get_execution_detail(id).await?;
    let e = &d.execution;
    let runs: Vec<TaskRun> = d.task_runs.iter().map(|t| t.task_run.clone()).collect();
    let task_run_id = crate::api::task_run_id_of(&runs, id, task)?;
    let lines = app
        .store
        .read_logs(LogQuery {
            execution_id: id,
            task_run_id,
            after_id: None,
            limit: Some(PAGE_LINES),
        })
        .await?;
    let tasks = definition_tasks(app, e).await;
    let mut b = String::with_capacity(32 * 1024);
    summary(&mut b, &d, app.config.token.is_some());
    b.push_str("<section><h2>Timeline</h2>");
    b.push_str(&charts::timeline(&d.task_runs, chrono::Utc::now()));
    b.push_str("</section>");
    if !tasks.is_empty() {
        let states = runs
            .iter()
            .map(|r| (r.task_key.clone(), r.state.as_str().to_owned()))
            .collect();
        b.push_str("<section><h2>Graph</h2>");
        b.push_str(&charts::graph(&tasks, &states));
        b.push_str("</section>");
    }
    task_table(&mut b, &d);
    let key_of = task_keys(&d);
    values(&mut b, &d, &key_of);
    log_pane(&mut b, &d, (&lines, &key_of), task);
    Ok(b)
}

/// The tasks and their needs, from the version the execution runs; empty
/// when that definition cannot be read (the page shows the rest).
async fn definition_tasks(app: &App, e: &Execution) -> Vec<(String, Vec<String>)> {
    let Ok(v) = app
        .store
        .get_workflow_version(e.workflow_id, e.workflow_version)
        .await
    else {
        return Vec::new();
    };
    Definition::from_definition(&v.definition)
        .map(|w| {
            w.tasks
                .iter()
                .map(|t| (t.id.clone(), t.needs.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn summary(b: &mut String, d: &ExecutionDetail, token: bool) {
    let e = &d.execution;
    let _ = write!(
        b,
        "<h1><a href=\"/workflows/{}?version={}\">{}</a> <span id=\"state\">{}</span></h1><dl class=\"meta\"><dt>ID</dt><dd class=\"mono\">{}</dd><dt>Version</dt><dd>{}</dd><dt>Created</dt><dd>{}</dd><dt>Started</dt><dd>{}</dd><dt>Finished</dt><dd>{}</dd><dt>Duration</dt><dd>{}</dd>",
        url(&d.workflow_name),
        e.workflow_version,
        esc(&d.workflow_name),
        badge(e.state.as_str()),
        e.id,
        e.workflow_version,
        time(Some(e.created_at)),
        time(e.started_at),
        time(e.finished_at),
        took(e.started_at, e.finished_at)
    );
    if let Some(r) = e.reason {
        let _ = write!(b, "<dt>Reason</dt><dd>{r}</dd>");
    }
    if let Some(err) = &e.error {
        let _ = write!(b, "<dt>Error</dt><dd class=\"error\">{}</dd>", esc(err));
    }
    if let Some(owner) = &e.owner {
        let _ = write!(b, "<dt>Owner</dt><dd>{}</dd>", esc(owner));
    }
    if let Some(original) = e.retry_of {
        let _ = write!(b, "<dt>Retry of</dt><dd><a class=\"mono\" href=\"/executions/{original}\">{original}</a></dd>");
    }
    if !d.retries.is_empty() {
        b.push_str("<dt>Retries</dt><dd>");
        for r in &d.retries {
            let _ = write!(b, "<a class=\"mono\" href=\"/executions/{r}\">{r}</a> ");
        }
        b.push_str("</dd>");
    }
    b.push_str("</dl>");
    if !e.state.is_terminal() {
        let _ = write!(
            b,
            "<form class=\"cancel\" method=\"post\" action=\"/executions/{}/cancel\">",
            e.id
        );
        if token {
            b.push_str("<input type=\"password\" name=\"token\" placeholder=\"API token\" autocomplete=\"current-password\" required> ");
        }
        b.push_str("<button type=\"submit\" id=\"cancel\">Cancel execution</button></form>");
    }
}

fn task_table(b: &mut String, d: &ExecutionDetail) {
    b.push_str("<section><h2>Tasks</h2><table class=\"list\"><thead><tr><th>Task</th><th>State</th><th>Attempt</th><th>Exit</th><th>Started</th><th>Duration</th><th>Detail</th></tr></thead><tbody>");
    for t in &d.task_runs {
        let r = &t.task_run;
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.task_key),
            badge(r.state.as_str()),
            t.attempts.len(),
            time(r.started_at),
            took(r.started_at, r.finished_at),
            r.reason.map_or("", |r| r.as_str())
        );
        for a in &t.attempts {
            let _ = write!(
                b,
                "<tr class=\"attempt\"><td>attempt {}</td><td>{}</td><td></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                a.number,
                badge(a.state.as_str()),
                a.exit_code.map_or("-".into(), |c| c.to_string()),
                time(Some(a.started_at)),
                took(Some(a.started_at), a.finished_at),
                esc(a.error.as_deref().unwrap_or(""))
            );
        }
    }
    b.push_str("</tbody></table></section>");
}

/// The inputs and the outputs, as key/value tables.
/// Each task run's key by its id.
fn task_keys(d: &ExecutionDetail) -> HashMap<Uuid, &str> {
    d.task_runs
        .iter()
        .map(|t| (t.task_run.id, t.task_run.task_key.as_str()))
        .collect()
}

fn values(b: &mut String, d: &ExecutionDetail, key_of: &HashMap<Uuid, &str>) {
    let text = |v: &serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    b.push_str("<section class=\"values\"><div><h2>Inputs</h2><table class=\"kv\">");
    match d.execution.input.as_object().filter(|o| !o.is_empty()) {
        None => b.push_str("<tr><td class=\"muted\">none</td></tr>"),
        Some(o) => {
            for (k, v) in o {
                let _ = write!(b, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&text(v)));
            }
        }
    }
    b.push_str("</table></div><div><h2>Outputs</h2><table class=\"kv\">");
    if d.outputs.is_empty() {
        b.push_str("<tr><td class=\"muted\">none</td></tr>");
    }
    for o in &d.outputs {
        let task = key_of.get(&o.task_run_id).copied().unwrap_or("");
        let _ = write!(
            b,
            "<tr><th>{}.{}</th><td>{}</td></tr>",
            esc(task),
            esc(&o.key),
            esc(&text(&o.value))
        );
    }
    b.push_str("</table></div></section>");
}

/// The log: lines drawn here, then followed live by the script from the
/// last one (`data-stream`), filterable by task with or without script.
fn log_pane(
    b: &mut String,
    d: &ExecutionDetail,
    (lines, key_of): (&[LogLine], &HashMap<Uuid, &str>),
    task: Option<&str>,
) {
    let id = d.execution.id;
    let mut query: Vec<String> = Vec::new();
    if let Some(l) = lines.last() {
        query.push(format!("after={}", l.id));
    }
    if let Some(t) = task {
        query.push(format!("task={}", url(t)));
    }
    let _ = write!(
        b,
        "<section id=\"logs\" data-stream=\"/api/v1/executions/{id}/logs/stream?{}\" data-ended=\"{}\"><h2>Log</h2><p class=\"tasks\">Task: <a href=\"/executions/{id}#logs\"{}>all</a>",
        esc(&query.join("&")),
        d.execution.state.is_terminal(),
        if task.is_none() { " class=\"on\"" } else { "" }
    );
    for t in &d.task_runs {
        let k = &t.task_run.task_key;
        let on = if task == Some(k.as_str()) {
            " class=\"on\""
        } else {
            ""
        };
        let _ = write!(
            b,
            " <a href=\"/executions/{id}?task={}#logs\" data-task=\"{}\"{on}>{}</a>",
            url(k),
            esc(k),
            esc(k)
        );
    }
    b.push_str("</p><ol id=\"log\">");
    for l in lines {
        let key = l
            .task_run_id
            .and_then(|t| key_of.get(&t).copied())
            .unwrap_or("");
        let _ = write!(
            b,
            "<li data-task=\"{}\" class=\"{}\"><time datetime=\"{}\">{}</time> <b>{}</b> <span>{}</span></li>",
            esc(key),
            l.stream.as_str(),
            l.ts.to_rfc3339(),
            l.ts.format("%H:%M:%S%.3f"),
            esc(key),
            esc(&l.line)
        );
    }
    b.push_str("</ol></section>");
}

/// The workflows list.
pub fn workflows(pairs: &[(String, String)], page: &Page<Workflow>) -> String {
    let mut b = String::with_capacity(8 * 1024);
    let _ = write!(
        b,
        "<h1>Workflows</h1><form class=\"filters\" method=\"get\"><label>Name contains <input name=\"filter\" value=\"{}\"></label><button type=\"submit\">Filter</button></form><table class=\"list\"><thead><tr><th>Name</th><th>Version</th><th>Tasks</th><th>Updated</th><th>Description</th></tr></thead><tbody>",
        esc(param(pairs, "filter"))
    );
    for w in &page.items {
        let tasks = Definition::from_definition(&w.definition).map_or(0, |d| d.tasks.len());
        let about = if w.deleted_at.is_some() {
            "deleted"
        } else {
            w.description.as_deref().unwrap_or("")
        };
        let _ = write!(
            b,
            "<tr><td><a href=\"/workflows/{}\">{}</a></td><td>{}</td><td>{tasks}</td><td>{}</td><td>{}</td></tr>",
            url(&w.name),
            esc(&w.name),
            w.version,
            time(Some(w.updated_at)),
            esc(about)
        );
    }
    let _ = write!(
        b,
        "</tbody></table><p class=\"paging\">{} of {}</p>",
        page.items.len(),
        page.total
    );
    b
}

/// One workflow at one version: its tasks, its graph, its versions.
pub fn workflow(w: &Workflow, versions: &[VersionSummary]) -> Result<String> {
    let def = Definition::from_definition(&w.definition)?;
    let mut b = String::with_capacity(8 * 1024);
    let _ = write!(
        b,
        "<h1>{} <small>version {}</small></h1><p>{} <a href=\"/executions?workflow={}\">Executions of this workflow</a></p><table class=\"list\"><thead><tr><th>Task</th><th>Needs</th><th>Retries</th><th>Retry delay</th><th>Timeout</th><th>Env</th><th>Run</th></tr></thead><tbody>",
        esc(&w.name),
        w.version,
        esc(w.description.as_deref().unwrap_or("")),
        url(&w.name)
    );
    let ms =
        |ms: u64| flowstate_engine::duration::format_duration(std::time::Duration::from_millis(ms));
    for t in &def.tasks {
        let env: Vec<String> = t.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><pre>{}</pre></td><td><pre>{}</pre></td></tr>",
            esc(&t.id),
            esc(&t.needs.join(", ")),
            t.retries,
            ms(t.retry_delay_ms),
            t.timeout_ms.map_or("-".into(), ms),
            esc(&env.join("\n")),
            esc(&t.run)
        );
    }
    b.push_str("</tbody></table><section><h2>Graph</h2>");
    let tasks: Vec<(String, Vec<String>)> = def
        .tasks
        .iter()
        .map(|t| (t.id.clone(), t.needs.clone()))
        .collect();
    b.push_str(&charts::graph(&tasks, &HashMap::new()));
    b.push_str("</section><section><h2>Versions</h2><table class=\"list\"><thead><tr><th>Version</th><th>Registered</th><th>Executions</th></tr></thead><tbody>");
    for v in versions {
        let on = if v.version == w.version {
            " class=\"on\""
        } else {
            ""
        };
        let _ = write!(
            b,
            "<tr{on}><td><a href=\"/workflows/{}?version={}\">{}</a></td><td>{}</td><td>{}</td></tr>",
            url(&w.name),
            v.version,
            v.version,
            time(Some(v.created_at)),
            v.executions
        );
    }
    b.push_str("</tbody></table></section>");
    Ok(b)
}
