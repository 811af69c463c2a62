//! Several writes in one transaction: what a driver records when an attempt
//! ends (the attempt, its outputs, its task run's move, the skips that
//! follow and the execution's end) lands in one commit instead of one per
//! write.

use super::{executions, logs, merged, tasks};
use crate::error::Result;
use crate::sea::db::Db;
use crate::types::{NewLogLine, Write};
use sea_orm::DatabaseTransaction;

/// Applies `writes` in order, all or nothing; returns the new version of
/// each move (`None` for the other writes). Every write is checked before
/// the transaction begins.
pub(super) async fn apply<D: Db>(db: &D, writes: Vec<Write>) -> Result<Vec<Option<i64>>> {
    for w in &writes {
        check(w)?;
    }
    if writes.is_empty() {
        return Ok(Vec::new());
    }
    let chunk = db.backend().insert_chunk();
    db.write(move |tx| {
        let writes = writes.clone();
        Box::pin(async move { in_order(tx, &writes, chunk).await })
    })
    .await
}

/// Applies `writes` one by one, in order, in `tx`.
async fn in_order(
    tx: &DatabaseTransaction,
    writes: &[Write],
    chunk: usize,
) -> Result<Vec<Option<i64>>> {
    let mut versions = Vec::with_capacity(writes.len());
    for w in writes {
        versions.push(apply_one(tx, w, chunk).await?);
    }
    Ok(versions)
}

/// Applies several callers' batches in `tx`, in order, all or nothing;
/// returns each batch's versions as [`apply`] would. Batches of attempt ends
/// and moves alone land set-based ([`merged`]), the others write by write.
/// The caller has checked every write ([`check_all`]).
pub(crate) async fn apply_many_in(
    tx: &DatabaseTransaction,
    batches: &[Vec<Write>],
    chunk: usize,
) -> Result<Vec<Vec<Option<i64>>>> {
    if merged::mergeable(batches) {
        return merged::apply(tx, batches).await;
    }
    let mut all = Vec::with_capacity(batches.len());
    for writes in batches {
        all.push(in_order(tx, writes, chunk).await?);
    }
    Ok(all)
}

/// Checks every write of `batches` before a transaction begins.
pub(crate) fn check_all(batches: &[Vec<Write>]) -> Result<()> {
    batches.iter().flatten().try_for_each(check)
}

fn check(w: &Write) -> Result<()> {
    match w {
        Write::FinishAttempt { result, .. } => tasks::check_result(result),
        Write::PutOutputs { values, .. } => logs::check_output_keys(values),
        Write::MoveTask(t) => tasks::check_transition(t),
        Write::MoveExecution { transition, .. } => executions::check_transition(transition),
        Write::AppendLogs(_) => Ok(()),
    }
}

async fn apply_one(tx: &DatabaseTransaction, w: &Write, chunk: usize) -> Result<Option<i64>> {
    match w {
        Write::FinishAttempt { attempt_id, result } => {
            tasks::finish_attempt_in(tx, *attempt_id, result).await?
        }
        Write::PutOutputs {
            execution_id,
            task_run_id,
            values,
        } => logs::put_outputs_in(tx, *execution_id, *task_run_id, values, chunk).await?,
        Write::MoveTask(t) => return Ok(Some(tasks::transition_in(tx, t, None).await?)),
        Write::MoveExecution { id, transition } => {
            return Ok(Some(executions::transition_in(tx, *id, transition).await?))
        }
        Write::AppendLogs(lines) => append_in(tx, lines, chunk).await?,
    }
    Ok(None)
}

async fn append_in(tx: &DatabaseTransaction, lines: &[NewLogLine], chunk: usize) -> Result<()> {
    for rows in lines.chunks(chunk) {
        logs::insert_logs(tx, rows).await?;
    }
    Ok(())
}
