//! The web console: server-rendered pages that read like the CLI's tables
//! and work without JavaScript; the embedded script only adds live updates
//! (the list's auto-refresh, the log pane's stream, local times).
//!
//! - `/executions`: filters kept in the URL, cursor paging, auto-refresh.
//! - `/executions/{id}`: timeline, dependency graph, tasks, inputs,
//!   outputs, error and reason, the log (filterable by task), cancel.
//! - `/workflows`, `/workflows/{name}`: definitions and versions.

mod charts;
mod html;
mod pages;

use crate::api::{self, pairs, Pairs};
use crate::error::ServerError;
use crate::{auth, App};
use axum::body::Bytes;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use std::collections::HashMap;
use std::sync::Arc;

const CSS: &str = include_str!("../../assets/console.css");
const JS: &str = include_str!("../../assets/console.js");

/// The console's routes.
pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/executions") }))
        .route("/executions", get(executions))
        .route("/executions/{id}", get(execution))
        .route("/executions/{id}/cancel", post(cancel))
        .route("/workflows", get(workflows))
        .route("/workflows/{name}", get(workflow))
        .route(
            "/assets/console.css",
            get(|| asset("text/css; charset=utf-8", CSS)),
        )
        .route(
            "/assets/console.js",
            get(|| asset("text/javascript; charset=utf-8", JS)),
        )
        .fallback(not_found)
}

async fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// A page, or the error as a page with its status.
fn respond(app: &App, title: &str, nav: &str, body: Result<String, ServerError>) -> Response {
    match body {
        Ok(body) => Html(html::layout(title, app.role, nav, &body)).into_response(),
        Err(e) => {
            let (status, _) = e.status();
            let body = format!(
                "<h1>{}</h1><p class=\"error\">{}</p><p><a href=\"/executions\">Executions</a></p>",
                status.canonical_reason().unwrap_or("Error"),
                html::esc(&e.message())
            );
            (status, Html(html::layout(title, app.role, nav, &body))).into_response()
        }
    }
}

/// The executions page; requests with the same query string that arrive
/// together share one read (see `coalesce`).
async fn executions(
    State(app): State<Arc<App>>,
    RawQuery(raw): RawQuery,
    q: Result<Query<Pairs>, QueryRejection>,
) -> Response {
    let parsed = pairs(q).and_then(|p| api::ListFilter::parse(&p).map(|f| (p, f)));
    let (pairs, filter) = match parsed {
        Ok(ok) => ok,
        Err(e) => return respond(&app, "Executions", "Executions", Err(e)),
    };
    let page = app
        .pages
        .get(raw.unwrap_or_default(), || async {
            let workflow = filter.workflow.as_deref();
            let (page, names) =
                api::list_page(app.store.as_ref(), workflow, filter.query.clone()).await?;
            let body = pages::executions(&pairs, &page, &names);
            let html = html::layout("Executions", app.role, "Executions", &body);
            Ok::<_, ServerError>(Bytes::from(html))
        })
        .await;
    match page {
        Ok(html) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
        Err(e) => respond(&app, "Executions", "Executions", Err(e)),
    }
}

async fn execution(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    q: Result<Query<Pairs>, QueryRejection>,
) -> Response {
    let body = async {
        let id = api::execution_id(&id)?;
        let task = pairs(q)?
            .into_iter()
            .find(|(k, v)| k == "task" && !v.is_empty())
            .map(|(_, v)| v);
        pages::execution(&app, id, task.as_deref()).await
    }
    .await;
    respond(&app, "Execution", "Executions", body)
}

/// The cancel button's form: cancels, then shows the execution again
/// (303, so a reload does not post twice).
async fn cancel(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let done = async {
        let token = form.ok().and_then(|Form(mut f)| f.remove("token"));
        auth::allow_mutation(&app.config, &headers, token.as_deref())?;
        let id = api::execution_id(&id)?;
        api::cancel_execution(app.store.as_ref(), id).await?;
        Ok(id)
    }
    .await;
    match done {
        Ok(id) => Redirect::to(&format!("/executions/{id}")).into_response(),
        Err(e) => respond(&app, "Cancel", "Executions", Err(e)),
    }
}

async fn workflows(
    State(app): State<Arc<App>>,
    q: Result<Query<Pairs>, QueryRejection>,
) -> Response {
    let body = async {
        let pairs = pairs(q)?;
        let query = api::workflow_query(&pairs)?;
        let page = app.store.list_workflows(query).await?;
        Ok(pages::workflows(&pairs, &page))
    }
    .await;
    respond(&app, "Workflows", "Workflows", body)
}

async fn workflow(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    q: Result<Query<Pairs>, QueryRejection>,
) -> Response {
    let body = async {
        let version = api::version_param(&pairs(q)?)?;
        let w = api::workflow_at(app.store.as_ref(), &name, version).await?;
        let versions = app.store.list_workflow_versions(w.id).await?;
        pages::workflow(&w, &versions)
    }
    .await;
    respond(&app, &name, "Workflows", body)
}

async fn not_found(State(app): State<Arc<App>>) -> Response {
    let mut r = respond(
        &app,
        "Not found",
        "",
        Err(ServerError::NotFound("no such page".into())),
    );
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}
