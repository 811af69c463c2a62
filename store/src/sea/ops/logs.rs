//! What tasks leave behind: outputs (read back by key, overwritten by key)
//! and log lines (appended with multi-row INSERTs, read in id order).

use super::{backend_of, list_of};
use crate::error::{Result, StoreError};
use crate::query::{self, LogQuery};
use crate::sea::db::Db;
use crate::truncate_micros;
use crate::types::*;
use chrono::{DateTime, Utc};
use flowstate_entity::{log, output};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryTrait, Statement,
};
use serde_json::Value;
use uuid::Uuid;

// --- queries ---

pub(super) async fn list_outputs<D: Db>(db: &D, execution_id: Uuid) -> Result<Vec<Output>> {
    let mut outputs: Vec<Output> = query::outputs_of(execution_id)
        .all(&db.exec())
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    outputs.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(outputs)
}

pub(super) async fn read<D: Db>(db: &D, q: LogQuery) -> Result<Vec<LogLine>> {
    let page = query::logs_page(&q)?.build(backend_of(db));
    let Some(aggregate) = db.backend().logs_as_json() else {
        let rows: Vec<log::Model> = list_of(db, page).await?;
        return Ok(rows.into_iter().map(Into::into).collect());
    };
    let stmt = Statement {
        sql: format!("SELECT {aggregate} FROM ({}) AS p", page.sql),
        ..page
    };
    let rows = db.lists(vec![stmt]).await?.into_iter().flatten().next();
    let json: Option<String> = match rows {
        Some(row) => row.try_get_by_index(0)?,
        None => None,
    };
    // No row at all aggregates to NULL on PostgreSQL, to [] on SQLite.
    json.map_or(Ok(Vec::new()), |j| json_page(q.execution_id, &j))
}

/// The lines of a page packed by [`Backend::logs_as_json`]
/// (`[[id, task_run_id, attempt, ts, stream, line], ...]`), in id order.
///
/// [`Backend::logs_as_json`]: crate::backend::Backend::logs_as_json
fn json_page(execution_id: Uuid, json: &str) -> Result<Vec<LogLine>> {
    type Row = (i64, Option<String>, Option<i32>, String, String, String);
    let bad = |what: String| StoreError::Database(DbErr::Type(format!("log page: {what}")));
    let rows: Vec<Row> = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
    let mut lines = rows
        .into_iter()
        .map(|(id, task_run, attempt, ts, stream, line)| {
            let task_run_id = match task_run.filter(|t| !t.is_empty()) {
                Some(t) => Some(Uuid::parse_str(&t).map_err(|e| bad(format!("{t}: {e}")))?),
                None => None,
            };
            let ts = DateTime::parse_from_rfc3339(&ts)
                .map_err(|e| bad(format!("{ts}: {e}")))?
                .with_timezone(&Utc);
            Ok(LogLine {
                id,
                execution_id,
                task_run_id,
                attempt,
                ts,
                stream: stream
                    .parse()
                    .map_err(|_| bad(format!("stream {stream}")))?,
                line,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    // An aggregate need not keep its input's order.
    if !lines.is_sorted_by_key(|l| l.id) {
        lines.sort_unstable_by_key(|l| l.id);
    }
    Ok(lines)
}

// --- mutations ---

pub(super) async fn put_outputs<D: Db>(
    db: &D,
    execution_id: Uuid,
    task_run_id: Uuid,
    values: Vec<(String, Value)>,
) -> Result<()> {
    if values.is_empty() {
        return Ok(());
    }
    check_output_keys(&values)?;
    let chunk = db.backend().insert_chunk();
    db.write(move |tx| {
        let values = values.clone();
        Box::pin(async move { put_outputs_in(tx, execution_id, task_run_id, &values, chunk).await })
    })
    .await
}

pub(super) fn check_output_keys(values: &[(String, Value)]) -> Result<()> {
    for (key, _) in values {
        if key.is_empty() || key.len() > 255 {
            return Err(StoreError::InvalidInput(format!(
                "output key '{key}' must be 1 to 255 characters"
            )));
        }
    }
    Ok(())
}

/// Appends `lines`: one INSERT without a transaction when they fit in one,
/// else a transaction of INSERTs of the backend's chunk size.
pub(super) async fn append<D: Db>(db: &D, lines: Vec<NewLogLine>) -> Result<u64> {
    if lines.is_empty() {
        return Ok(0);
    }
    let chunk = db.backend().insert_chunk();
    if lines.len() <= chunk {
        return db
            .single(move |c| {
                let lines = lines.clone();
                Box::pin(async move { insert_logs(&c, &lines).await })
            })
            .await;
    }
    db.write(move |tx| {
        let lines = lines.clone();
        Box::pin(async move {
            let mut written = 0;
            for rows in lines.chunks(chunk) {
                written += insert_logs(tx, rows).await?;
            }
            Ok(written)
        })
    })
    .await
}

/// The work of [`put_outputs`] inside its transaction: upserts of `chunk`
/// rows each.
pub(super) async fn put_outputs_in(
    tx: &DatabaseTransaction,
    execution_id: Uuid,
    task_run_id: Uuid,
    values: &[(String, Value)],
    chunk: usize,
) -> Result<()> {
    let ts = crate::now();
    for rows in values.chunks(chunk) {
        let rows = rows.iter().map(|(k, v)| output::ActiveModel {
            id: Set(Uuid::now_v7()),
            execution_id: Set(execution_id),
            task_run_id: Set(task_run_id),
            key: Set(k.clone()),
            value: Set(v.clone()),
            created_at: Set(ts),
        });
        output::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([output::Column::TaskRunId, output::Column::Key])
                    .update_columns([output::Column::Value, output::Column::CreatedAt])
                    .to_owned(),
            )
            .exec_without_returning(tx)
            .await?;
    }
    Ok(())
}

/// One multi-row INSERT of log lines.
pub(super) async fn insert_logs<C: ConnectionTrait>(c: &C, lines: &[NewLogLine]) -> Result<u64> {
    let rows = lines.iter().map(|l| log::ActiveModel {
        id: NotSet,
        execution_id: Set(l.execution_id),
        task_run_id: Set(l.task_run_id),
        attempt: Set(l.attempt),
        ts: Set(truncate_micros(l.ts)),
        stream: Set(l.stream),
        line: Set(l.line.clone()),
    });
    log::Entity::insert_many(rows)
        .exec_without_returning(c)
        .await?;
    Ok(lines.len() as u64)
}
