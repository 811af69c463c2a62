//! `GET /api/v1/executions/{id}/logs/stream`: an execution's log as
//! Server-Sent Events, followed until the execution ends.
//!
//! Events: `state` (`{"state", "reason"}`, first and at every change), `line`
//! (a log line in the CLI's JSON shape; its SSE id is the line id, so a
//! browser that reconnects sends `Last-Event-ID` and resumes where it
//! was), and `end` (`{"state"}`, after the last line of an ended
//! execution). The stream polls the store every 250 ms, the same pace as
//! `flowstate execution logs --follow`, and ends at shutdown.

use crate::api::{execution_id, pairs, task_run_id_of, LogFilter, Pairs};
use crate::error::Result;
use crate::{json, App};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use flowstate_store::query::LogQuery;
use flowstate_store::types::ExecutionState;
use futures_util::Stream;
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// How often a follower asks the store for new lines.
const POLL: Duration = Duration::from_millis(250);
/// Lines per read while catching up.
const PAGE: u64 = 500;

/// The stream (404 before it starts when the execution or task is unknown).
pub(crate) async fn follow(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: std::result::Result<Query<Pairs>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = std::result::Result<Event, Infallible>>>> {
    let id = execution_id(&id)?;
    let f = LogFilter::parse(&pairs(q)?)?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    app.store.get_execution(id).await?;
    let runs = app.store.list_task_runs(id).await?;
    let task_run_id = task_run_id_of(&runs, id, f.task.as_deref())?;
    let follower = Follower {
        keys: runs.into_iter().map(|r| (r.id, r.task_key)).collect(),
        app,
        id,
        task_run_id,
        after: resume.or(f.after),
        state: None,
        queued: VecDeque::new(),
        done: false,
    };
    let stream = futures_util::stream::unfold(follower, |mut f| async move {
        let event = f.next().await?;
        Some((Ok(event), f))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// One client's place in one execution's log.
struct Follower {
    app: Arc<App>,
    id: Uuid,
    task_run_id: Option<Uuid>,
    keys: HashMap<Uuid, String>,
    /// The last line sent.
    after: Option<i64>,
    /// The last state sent.
    state: Option<ExecutionState>,
    queued: VecDeque<Event>,
    done: bool,
}

impl Follower {
    /// The next event; `None` once the end was sent, or at shutdown.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.queued.pop_front() {
                return Some(e);
            }
            if self.done || *self.app.stopping.borrow() {
                return None;
            }
            match self.poll().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    self.done = true;
                    let body = json!({"error": e.status().1, "message": e.message()});
                    return Some(Event::default().event("error").data(body.to_string()));
                }
            }
            let mut stopping = self.app.stopping.clone();
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = stopping.changed() => return None,
            }
        }
    }

    /// Queues what is new; true when it queued anything. The state is read
    /// before the lines: an ended execution's lines were all written before
    /// it ended, so a read that finds none after the end is the last.
    async fn poll(&mut self) -> Result<bool> {
        let exec = self.app.store.get_execution(self.id).await?;
        if self.state != Some(exec.state) {
            self.state = Some(exec.state);
            let body =
                json!({"state": exec.state.as_str(), "reason": exec.reason.map(|r| r.as_str())});
            self.queued
                .push_back(Event::default().event("state").data(body.to_string()));
        }
        let lines = self
            .app
            .store
            .read_logs(LogQuery {
                execution_id: self.id,
                task_run_id: self.task_run_id,
                after_id: self.after,
                limit: Some(PAGE),
            })
            .await?;
        for l in &lines {
            let key = l
                .task_run_id
                .and_then(|t| self.keys.get(&t))
                .map(String::as_str);
            let body = json::log_line(l, key);
            self.queued.push_back(
                Event::default()
                    .event("line")
                    .id(l.id.to_string())
                    .data(body.to_string()),
            );
            self.after = Some(l.id);
        }
        if lines.is_empty() && exec.state.is_terminal() {
            self.done = true;
            let body = json!({"state": exec.state.as_str()});
            self.queued
                .push_back(Event::default().event("end").data(body.to_string()));
        }
        Ok(!self.queued.is_empty())
    }
}
