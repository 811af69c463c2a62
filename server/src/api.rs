//! `/api/v1`: the JSON API. Every answer has the shape the CLI prints with
//! `--json` ([`crate::json`]); parameters are parsed like the CLI's flags
//! ([`crate::params`]) and checked before the database is asked.

use crate::error::{Result, ServerError};
use crate::{auth, json, params, App};
use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use flowstate_engine::{Engine, Workflow};
use flowstate_store::query::{
    ExecutionQuery, LogQuery, Page, SortOrder, WorkflowQuery, WorkflowSort, MAX_WORKFLOWS,
};
use flowstate_store::text::shown;
use flowstate_store::types::{Execution, TaskRun};
use flowstate_store::StateStore;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// A request's query parameters, in order, as sent.
pub(crate) type Pairs = Vec<(String, String)>;

/// The query parameters, or a JSON 400 when they cannot be decoded.
pub(crate) fn pairs(q: std::result::Result<Query<Pairs>, QueryRejection>) -> Result<Pairs> {
    q.map(|Query(p)| p)
        .map_err(|e| ServerError::BadRequest(format!("bad query string: {}", e.body_text())))
}

/// The parameters of an execution list, the CLI's `execution list` flags.
const LIST_KEYS: &[&str] = &[
    "workflow",
    "state",
    "reason",
    "since",
    "until",
    "limit",
    "offset",
    "after",
    "exactTotal",
    "sort",
];

/// The filters and paging of an execution list.
#[derive(Debug, Clone, Default)]
pub(crate) struct ListFilter {
    /// The workflow's name, resolved to its id by [`list_page`].
    pub workflow: Option<String>,
    pub query: ExecutionQuery,
}

impl ListFilter {
    /// Parses and checks the parameters; empty values count as absent (a
    /// filter form sends every field). `state` repeats or takes a comma list.
    pub fn parse(pairs: &[(String, String)]) -> Result<ListFilter> {
        let mut f = ListFilter::default();
        f.query.limit = Some(50);
        f.query.sort = SortOrder::Descending;
        for (key, v) in given(pairs, LIST_KEYS)? {
            let bad = ServerError::BadRequest;
            match key {
                "workflow" => f.workflow = Some(v.to_owned()),
                "state" => {
                    for s in v.split(',').filter(|s| !s.trim().is_empty()) {
                        f.query.states.push(params::state(s.trim()).map_err(bad)?);
                    }
                }
                "reason" => {
                    for r in v.split(',').filter(|r| !r.trim().is_empty()) {
                        f.query.reasons.push(params::reason(r.trim()).map_err(bad)?);
                    }
                }
                "since" => f.query.since = Some(params::time(v).map_err(bad)?),
                "until" => f.query.until = Some(params::time(v).map_err(bad)?),
                "limit" => f.query.limit = Some(number(key, v)?),
                "offset" => f.query.offset = Some(number(key, v)?),
                "after" => f.query.after = Some(v.to_owned()),
                "exactTotal" => f.query.exact_total = boolean(key, v)?,
                _ => {
                    f.query.sort = match params::sort(v).map_err(bad)? {
                        params::Sort::Created => SortOrder::Ascending,
                        params::Sort::NewestFirst => SortOrder::Descending,
                    }
                }
            }
        }
        if f.query.offset.is_some() && f.query.after.is_some() {
            return Err(ServerError::BadRequest(
                "offset and after cannot be combined; page with one of them".into(),
            ));
        }
        f.query.validate()?;
        Ok(f)
    }
}

/// One page of executions and their workflows' names, for `workflow` (a
/// name or a pattern, see [`workflows_named`]) and `query`: the page and
/// the names, plus the workflow's lookup. `flowstate execution list`, the
/// API and the console all list this way.
pub async fn list_page(
    store: &dyn StateStore,
    workflow: Option<&str>,
    mut query: ExecutionQuery,
) -> Result<(Page<Execution>, HashMap<Uuid, String>)> {
    if let Some(name) = workflow {
        (query.workflow_id, query.workflow_ids) = workflows_named(store, name).await?;
    }
    let page = store.list_executions(query).await?;
    let names = store
        .workflow_names(page.items.iter().map(|e| e.workflow_id).collect())
        .await?;
    Ok((page, names))
}

/// The workflow a list's `--workflow` / `workflow=` names, or with `*` or
/// `?` the workflows it matches (at most [`MAX_WORKFLOWS`]): the fields
/// `workflow_id` and `workflow_ids` of an [`ExecutionQuery`].
pub async fn workflows_named(
    store: &dyn StateStore,
    name: &str,
) -> Result<(Option<Uuid>, Vec<Uuid>)> {
    if flowstate_store::query::name_pattern(name).is_none() {
        let w = store.get_workflow_by_name(name).await?;
        return Ok((Some(w.id), Vec::new()));
    }
    let found = store
        .workflows_matching(name, MAX_WORKFLOWS as u64 + 1)
        .await?;
    match found.len() {
        0 => Err(ServerError::NotFound(format!(
            "no workflow name matches '{}'",
            shown(name)
        ))),
        n if n > MAX_WORKFLOWS => Err(ServerError::BadRequest(format!(
            "'{}' matches more than {MAX_WORKFLOWS} workflows; narrow the pattern",
            shown(name)
        ))),
        _ => Ok((None, found.into_iter().map(|w| w.id).collect())),
    }
}

/// `GET /api/v1/executions`; requests with the same query string that
/// arrive together share one read (see `coalesce`).
pub(crate) async fn list(
    State(app): State<Arc<App>>,
    RawQuery(raw): RawQuery,
    q: std::result::Result<Query<Pairs>, QueryRejection>,
) -> Result<Response> {
    let filter = ListFilter::parse(&pairs(q)?)?;
    let body = app
        .lists
        .get(raw.unwrap_or_default(), || async {
            let workflow = filter.workflow.as_deref();
            let (page, names) =
                list_page(app.store.as_ref(), workflow, filter.query.clone()).await?;
            let doc = json::execution_page(&page, &names);
            Ok::<_, ServerError>(Bytes::from(doc.to_string()))
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `GET /api/v1/executions/{id}`: the execution with its task runs, their
/// attempts, its inputs and outputs.
pub(crate) async fn inspect(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let id = execution_id(&id)?;
    let detail = app.store.get_execution_detail(id).await?;
    Ok(Json(json::detail(&detail)))
}

const LOG_KEYS: &[&str] = &["after", "task", "limit"];

/// Which lines of an execution's log: after a line id, of one task.
pub(crate) struct LogFilter {
    pub after: Option<i64>,
    pub task: Option<String>,
    pub limit: u64,
}

impl LogFilter {
    pub fn parse(pairs: &[(String, String)]) -> Result<LogFilter> {
        let mut f = LogFilter {
            after: None,
            task: None,
            limit: 1000,
        };
        for (key, v) in given(pairs, LOG_KEYS)? {
            match key {
                "after" => f.after = Some(number::<i64>(key, v)?),
                "task" => f.task = Some(v.to_owned()),
                _ => f.limit = number(key, v)?,
            }
        }
        if !(1..=10_000).contains(&f.limit) {
            return Err(ServerError::BadRequest(format!(
                "limit is {}; give 1 to 10000 lines",
                f.limit
            )));
        }
        Ok(f)
    }
}

/// The task run of `key` (when one is asked for) among `runs`: an unknown
/// key is not found, naming the keys there are (API and CLI alike).
pub fn task_run_id_of(runs: &[TaskRun], id: Uuid, key: Option<&str>) -> Result<Option<Uuid>> {
    key.map(|k| task_run_of(runs, id, k)).transpose()
}

/// The task run of `key` among `runs`, or 404 naming the keys there are.
fn task_run_of(runs: &[TaskRun], id: Uuid, key: &str) -> Result<Uuid> {
    match runs.iter().find(|r| r.task_key == key) {
        Some(r) => Ok(r.id),
        None => {
            let known: Vec<_> = runs.iter().map(|r| r.task_key.as_str()).collect();
            Err(ServerError::NotFound(format!(
                "task '{}' not found in execution {id}; its tasks are {}",
                shown(key),
                shown(&known.join(", "))
            )))
        }
    }
}

/// `GET /api/v1/executions/{id}/logs`: one page of lines, each as the
/// CLI's `logs --json` prints it, and the id to continue after.
pub(crate) async fn logs(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    q: std::result::Result<Query<Pairs>, QueryRejection>,
) -> Result<Json<Value>> {
    let id = execution_id(&id)?;
    let f = LogFilter::parse(&pairs(q)?)?;
    app.store.get_execution(id).await?;
    let runs = app.store.list_task_runs(id).await?;
    let task_run_id = task_run_id_of(&runs, id, f.task.as_deref())?;
    let lines = app
        .store
        .read_logs(LogQuery {
            execution_id: id,
            task_run_id,
            after_id: f.after,
            limit: Some(f.limit),
        })
        .await?;
    let keys: HashMap<Uuid, &str> = runs.iter().map(|r| (r.id, r.task_key.as_str())).collect();
    let items: Vec<Value> = lines
        .iter()
        .map(|l| json::log_line(l, l.task_run_id.and_then(|t| keys.get(&t).copied())))
        .collect();
    let next = lines.last().map(|l| l.id).or(f.after);
    Ok(Json(json!({"items": items, "nextAfter": next})))
}

/// `POST /api/v1/executions`, body `{"workflow": NAME, "inputs": {K: V}}`:
/// queues an execution of the workflow's current version (201).
pub(crate) async fn submit(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: std::result::Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>)> {
    auth::allow_mutation(&app.config, &headers, None)?;
    let Json(body) = body.map_err(|e| ServerError::BadRequest(e.body_text()))?;
    let (name, inputs) = submission(&body)?;
    let exec = submit_named(app.store.as_ref(), &name, inputs).await?;
    Ok((StatusCode::CREATED, Json(json::execution(&exec, &name))))
}

/// The workflow name and the inputs of a submission body.
fn submission(body: &Value) -> Result<(String, Value)> {
    let bad = |m: &str| ServerError::BadRequest(m.to_owned());
    let obj = body
        .as_object()
        .ok_or_else(|| bad("the body must be a JSON object such as {\"workflow\": \"nightly\", \"inputs\": {\"day\": \"mon\"}}"))?;
    if let Some(k) = obj.keys().find(|k| *k != "workflow" && *k != "inputs") {
        return Err(unknown(k, &["workflow", "inputs"]));
    }
    let name = obj
        .get("workflow")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| bad("workflow is missing; give a registered workflow's name"))?;
    let mut inputs = serde_json::Map::new();
    match obj.get("inputs") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                let Some(text) = v.as_str() else {
                    return Err(ServerError::BadRequest(format!(
                        "input '{}' is not a string; inputs are strings (they become environment variables)",
                        shown(k)
                    )));
                };
                let (k, v) =
                    params::input(&format!("{k}={text}")).map_err(ServerError::BadRequest)?;
                inputs.insert(k, Value::String(v));
            }
        }
        Some(_) => {
            return Err(bad(
                "inputs must be an object of strings such as {\"day\": \"mon\"}",
            ))
        }
    }
    Ok((name.to_owned(), Value::Object(inputs)))
}

/// Queues an execution of the registered workflow `name`.
pub(crate) async fn submit_named(
    store: &dyn StateStore,
    name: &str,
    inputs: Value,
) -> Result<Execution> {
    let stored = store.get_workflow_by_name(name).await?;
    if stored.deleted_at.is_some() {
        return Err(ServerError::Conflict(format!(
            "workflow '{}' is deleted; register it again to run it",
            shown(name)
        )));
    }
    let workflow = Workflow::from_definition(&stored.definition)?;
    Ok(flowstate_engine::submit(store, &workflow, inputs).await?)
}

/// `POST /api/v1/executions/{id}/cancel`.
pub(crate) async fn cancel(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>> {
    auth::allow_mutation(&app.config, &headers, None)?;
    let id = execution_id(&id)?;
    let exec = cancel_execution(app.store.as_ref(), id).await?;
    let name = app.store.get_workflow(exec.workflow_id).await?.name;
    Ok(Json(json::execution(&exec, &name)))
}

/// Cancels `id`; an execution that has ended is a conflict that says so.
pub(crate) async fn cancel_execution(store: &dyn StateStore, id: Uuid) -> Result<Execution> {
    Engine::cancel(store, id).await.map_err(|e| match e {
        flowstate_engine::EngineError::Store(flowstate_store::StoreError::InvalidTransition {
            from,
            ..
        }) => ServerError::Conflict(format!(
            "execution {id} is {from}; only an unfinished execution can be cancelled"
        )),
        other => other.into(),
    })
}

const WORKFLOW_KEYS: &[&str] = &["all", "filter", "limit", "offset"];

/// `GET /api/v1/workflows`: `workflow list --json`, with `filter` (names
/// containing it) and `all` (deleted ones too).
pub(crate) async fn workflows(
    State(app): State<Arc<App>>,
    q: std::result::Result<Query<Pairs>, QueryRejection>,
) -> Result<Json<Value>> {
    let query = workflow_query(&pairs(q)?)?;
    let page = app.store.list_workflows(query).await?;
    Ok(Json(json::workflow_page(&page)))
}

/// The workflow list's query from its parameters.
pub(crate) fn workflow_query(pairs: &[(String, String)]) -> Result<WorkflowQuery> {
    let mut q = WorkflowQuery {
        limit: Some(50),
        sort: WorkflowSort::Name,
        ..Default::default()
    };
    for (key, v) in given(pairs, WORKFLOW_KEYS)? {
        match key {
            "all" => q.include_deleted = boolean(key, v)?,
            "filter" => q.name_contains = Some(v.to_owned()),
            "limit" => q.limit = Some(number(key, v)?),
            _ => q.offset = Some(number(key, v)?),
        }
    }
    q.validate()?;
    Ok(q)
}

/// `GET /api/v1/workflows/{name}[?version=N]`: `workflow show --json`.
pub(crate) async fn workflow(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    q: std::result::Result<Query<Pairs>, QueryRejection>,
) -> Result<Json<Value>> {
    let version = version_param(&pairs(q)?)?;
    let w = workflow_at(app.store.as_ref(), &name, version).await?;
    Ok(Json(json::workflow(&w)))
}

/// The `version` parameter, the only one of a workflow's page.
pub(crate) fn version_param(pairs: &[(String, String)]) -> Result<Option<i32>> {
    let mut version = None;
    for (key, v) in given(pairs, &["version"])? {
        version = Some(number::<i32>(key, v)?);
    }
    Ok(version)
}

/// The workflow `name` as version `version` (the current one when `None`):
/// an earlier version's definition, description and date, as its
/// executions run it. `workflow show` and the API both read it this way.
pub async fn workflow_at(
    store: &dyn StateStore,
    name: &str,
    version: Option<i32>,
) -> Result<flowstate_store::types::Workflow> {
    let mut w = store.get_workflow_by_name(name).await?;
    if let Some(n) = version.filter(|n| *n != w.version) {
        let v = store.get_workflow_version(w.id, n).await?;
        w.version = v.version;
        w.definition = v.definition;
        w.description = v.description;
        w.updated_at = v.created_at;
    }
    Ok(w)
}

/// `GET /api/v1/workflows/{name}/versions`: `workflow history --json`.
pub(crate) async fn versions(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> Result<Json<Value>> {
    let w = app.store.get_workflow_by_name(&name).await?;
    let versions = app.store.list_workflow_versions(w.id).await?;
    Ok(Json(json::history(&w, &versions)))
}

/// Any other path under `/api`.
pub(crate) async fn not_found() -> ServerError {
    ServerError::NotFound(
        "no such API path; see docs/api.md for /api/v1/executions and /api/v1/workflows".into(),
    )
}

/// An execution id from a path, or 400.
pub(crate) fn execution_id(text: &str) -> Result<Uuid> {
    params::id(text).map_err(ServerError::BadRequest)
}

/// The parameters with a value, trimmed, once every key is one of `known`:
/// an unknown key is refused, an empty value (a filter form sends every
/// field) counts as absent.
fn given<'a>(pairs: &'a [(String, String)], known: &[&str]) -> Result<Vec<(&'a str, &'a str)>> {
    let mut out = Vec::with_capacity(pairs.len());
    for (key, value) in pairs {
        if !known.contains(&key.as_str()) {
            return Err(unknown(key, known));
        }
        let v = value.trim();
        if !v.is_empty() {
            out.push((key.as_str(), v));
        }
    }
    Ok(out)
}

fn unknown(key: &str, known: &[&str]) -> ServerError {
    ServerError::BadRequest(format!(
        "unknown parameter '{}'; known here: {}",
        shown(key),
        known.join(", ")
    ))
}

fn number<T: std::str::FromStr>(key: &str, v: &str) -> Result<T> {
    v.parse().map_err(|_| {
        ServerError::BadRequest(format!("{key} is '{}'; expected a whole number", shown(v)))
    })
}

fn boolean(key: &str, v: &str) -> Result<bool> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ServerError::BadRequest(format!(
            "{key} is '{}'; expected true or false",
            shown(v)
        ))),
    }
}
