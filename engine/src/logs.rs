//! Writing captured lines in batches: one multi-row insert per batch, never
//! one per line, with a bounded queue in front.

use crate::process::Captured;
use flowstate_store::types::{LogStream, NewLogLine};
use flowstate_store::StateStore;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

/// Lines per insert.
pub const BATCH: usize = 1000;
/// Lines queued before the task's output waits for the database.
pub const QUEUE: usize = 4 * BATCH;
/// A partial batch is written after this long, so followers see lines soon.
const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// Where a batch writer's lines belong.
#[derive(Debug, Clone, Copy)]
pub struct LogTarget {
    /// The execution.
    pub execution_id: Uuid,
    /// The task run.
    pub task_run_id: Option<Uuid>,
    /// The attempt number.
    pub attempt: Option<i32>,
}

/// What a writer stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Lines stored.
    pub stored: u64,
    /// Lines dropped because the database or its disk was full.
    pub lost_to_full: u64,
}

/// Starts a writer; send lines to the returned sender, drop it, then await
/// the handle to know every line is stored. While the database is full the
/// lines are dropped and counted (the task's output never waits for room
/// that may not come).
pub fn writer(
    store: Arc<dyn StateStore>,
    target: LogTarget,
) -> (mpsc::Sender<Captured>, tokio::task::JoinHandle<Written>) {
    let (tx, mut rx) = mpsc::channel::<Captured>(QUEUE);
    let handle = tokio::spawn(async move {
        let mut written = Written::default();
        let mut batch: Vec<NewLogLine> = Vec::with_capacity(BATCH);
        let mut open = true;
        while open {
            let timer = tokio::time::sleep(FLUSH_EVERY);
            tokio::pin!(timer);
            while batch.len() < BATCH {
                tokio::select! {
                    line = rx.recv() => match line {
                        Some(c) => batch.push(NewLogLine {
                            execution_id: target.execution_id,
                            task_run_id: target.task_run_id,
                            attempt: target.attempt,
                            ts: c.ts,
                            stream: c.stream,
                            line: c.line,
                        }),
                        None => { open = false; break; }
                    },
                    _ = &mut timer => break,
                }
            }
            if !batch.is_empty() {
                let lines = std::mem::take(&mut batch);
                let n = lines.len() as u64;
                match store.append_logs(lines).await {
                    Ok(_) => written.stored += n,
                    Err(flowstate_store::StoreError::StorageFull(_)) => {
                        if written.lost_to_full == 0 {
                            tracing::error!(execution = %target.execution_id, "database or disk is full: the task's log lines are dropped");
                        }
                        written.lost_to_full += n;
                    }
                    Err(e) => tracing::error!(error = %e, lines = n, "could not store log lines"),
                }
            }
        }
        written
    });
    (tx, handle)
}

/// Stores one line the engine itself writes (attempt started, retrying, ...).
pub async fn system(store: &dyn StateStore, target: LogTarget, line: String) {
    let result = store.append_logs(vec![system_line(target, line)]).await;
    if let Err(e) = result {
        tracing::error!(error = %e, "could not store a system log line");
    }
}

/// A line the engine itself writes to `target`'s log, stamped now.
pub fn system_line(target: LogTarget, line: String) -> NewLogLine {
    NewLogLine {
        execution_id: target.execution_id,
        task_run_id: target.task_run_id,
        attempt: target.attempt,
        ts: flowstate_store::now(),
        stream: LogStream::System,
        line,
    }
}
