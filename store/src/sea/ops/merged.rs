//! Several callers' batches of writes in one transaction, set-based where
//! they allow it: the ends that several drivers record at once (each an
//! attempt's end, its task run's move and often its execution's end) cost
//! one guarded UPDATE per table and shape of move, not three per driver.
//!
//! Each row is still guarded by its own id and version (and the state
//! machine's sources), so the merged UPDATE moves exactly the rows the
//! single ones would. When it moves fewer, the rows are read to say which
//! was refused and why (the rows it moved carry its time), and the caller's
//! transaction is rolled back.

use super::{executions, held, tasks};
use crate::error::Result;
use crate::now;
use crate::state_machine::{execution_sources, task_sources};
use crate::types::*;
use chrono::{DateTime, Utc};
use flowstate_entity::{attempt, execution, task_run};
use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect};
use std::collections::HashSet;
use uuid::Uuid;

/// Whether `batches` can land set-based: only attempt ends and guarded
/// moves, each row written once over all the batches (the order of the
/// writes then does not matter).
pub(super) fn mergeable(batches: &[Vec<Write>]) -> bool {
    let mut seen = HashSet::new();
    batches.iter().flatten().all(|w| match w {
        Write::FinishAttempt { attempt_id, .. } => seen.insert(("attempt", *attempt_id)),
        Write::MoveTask(t) => seen.insert(("task run", t.task_run_id)),
        Write::MoveExecution { id, .. } => seen.insert(("execution", *id)),
        Write::PutOutputs { .. } | Write::AppendLogs(_) => false,
    })
}

/// The writes of `batches`, grouped by table and by the values they set.
#[derive(Default)]
struct Groups<'a> {
    ends: Vec<(&'a AttemptResult, Vec<Uuid>)>,
    tasks: Vec<Vec<&'a TaskTransition>>,
    executions: Vec<Vec<(Uuid, &'a ExecutionTransition)>>,
}

impl<'a> Groups<'a> {
    fn of(batches: &'a [Vec<Write>]) -> Self {
        let mut g = Groups::default();
        for w in batches.iter().flatten() {
            match w {
                Write::FinishAttempt { attempt_id, result } => {
                    match g.ends.iter_mut().find(|(r, _)| *r == result) {
                        Some((_, ids)) => ids.push(*attempt_id),
                        None => g.ends.push((result, vec![*attempt_id])),
                    }
                }
                Write::MoveTask(t) => {
                    let same = |u: &&TaskTransition| {
                        (u.to, u.reason, u.next_attempt_at) == (t.to, t.reason, t.next_attempt_at)
                    };
                    match g.tasks.iter_mut().find(|group| same(&group[0])) {
                        Some(group) => group.push(t),
                        None => g.tasks.push(vec![t]),
                    }
                }
                Write::MoveExecution { id, transition: t } => {
                    let same = |u: &ExecutionTransition| {
                        (u.to, u.reason, &u.error, u.wake_at)
                            == (t.to, t.reason, &t.error, t.wake_at)
                    };
                    match g.executions.iter_mut().find(|group| same(group[0].1)) {
                        Some(group) => group.push((*id, t)),
                        None => g.executions.push(vec![(*id, t)]),
                    }
                }
                Write::PutOutputs { .. } | Write::AppendLogs(_) => {
                    unreachable!("mergeable() admits no inserts")
                }
            }
        }
        g
    }
}

/// Lands `batches` (see [`mergeable`]) with one UPDATE per group; returns
/// each batch's versions, as writing them one by one would.
pub(super) async fn apply(
    tx: &DatabaseTransaction,
    batches: &[Vec<Write>],
) -> Result<Vec<Vec<Option<i64>>>> {
    let ts = now();
    let groups = Groups::of(batches);
    for (result, ids) in &groups.ends {
        end_attempts(tx, result, ids, ts).await?;
    }
    for group in &groups.tasks {
        move_tasks(tx, group, ts).await?;
    }
    for group in &groups.executions {
        move_executions(tx, group, ts).await?;
    }
    Ok(versions(batches))
}

/// Ends the RUNNING attempts `ids` with `result`, all or none.
async fn end_attempts(
    tx: &DatabaseTransaction,
    result: &AttemptResult,
    ids: &[Uuid],
    ts: DateTime<Utc>,
) -> Result<()> {
    use attempt::Column as C;
    let moved = tasks::finished(result, ts)
        .filter(C::Id.is_in(ids.iter().copied()))
        .filter(C::State.eq(AttemptState::Running))
        .exec(tx)
        .await?
        .rows_affected;
    if moved == ids.len() as u64 {
        return Ok(());
    }
    let i = unstamped::<attempt::Entity>(tx, C::Id, C::FinishedAt, ids, ts).await?;
    Err(tasks::unfinished(tx, ids[i], result).await)
}

/// Makes the task runs' moves of `group` (one shape), all or none.
async fn move_tasks(
    tx: &DatabaseTransaction,
    group: &[&TaskTransition],
    ts: DateTime<Utc>,
) -> Result<()> {
    use task_run::Column as C;
    let t = group[0];
    let rows = group.iter().map(|t| (t.task_run_id, t.expected_version));
    let moved = tasks::moved_to(t.to, t.reason, t.next_attempt_at, ts)
        .filter(held(C::Id, C::Version, rows))
        .filter(C::State.is_in(task_sources(t.to).iter().copied()))
        .exec(tx)
        .await?
        .rows_affected;
    if moved == group.len() as u64 {
        return Ok(());
    }
    let ids: Vec<Uuid> = group.iter().map(|t| t.task_run_id).collect();
    let i = unstamped::<task_run::Entity>(tx, C::Id, C::UpdatedAt, &ids, ts).await?;
    Err(tasks::refused(tx, group[i], None).await)
}

/// Makes the executions' moves of `group` (one shape), all or none.
async fn move_executions(
    tx: &DatabaseTransaction,
    group: &[(Uuid, &ExecutionTransition)],
    ts: DateTime<Utc>,
) -> Result<()> {
    use execution::Column as C;
    let t = group[0].1;
    let rows = group.iter().map(|(id, t)| (*id, t.expected_version));
    let moved = executions::moved(t, ts)
        .filter(held(C::Id, C::Version, rows))
        .filter(C::State.is_in(execution_sources(t.to).iter().copied()))
        .exec(tx)
        .await?
        .rows_affected;
    if moved == group.len() as u64 {
        return Ok(());
    }
    let ids: Vec<Uuid> = group.iter().map(|(id, _)| *id).collect();
    let i = unstamped::<execution::Entity>(tx, C::Id, C::UpdatedAt, &ids, ts).await?;
    let (id, t) = group[i];
    Err(executions::refused(tx, id, t).await)
}

/// Each batch's versions once every write landed: a move's is one up.
fn versions(batches: &[Vec<Write>]) -> Vec<Vec<Option<i64>>> {
    batches
        .iter()
        .map(|b| {
            b.iter()
                .map(|w| match w {
                    Write::MoveTask(t) => Some(t.expected_version + 1),
                    Write::MoveExecution { transition, .. } => {
                        Some(transition.expected_version + 1)
                    }
                    _ => None,
                })
                .collect()
        })
        .collect()
}

/// Where in `ids` the first row is that the UPDATE did not stamp with `ts`
/// (its `stamp` column; no other transaction writes that time): the row
/// refused. The first when every row looks stamped.
async fn unstamped<E: EntityTrait>(
    tx: &DatabaseTransaction,
    id: E::Column,
    stamp: E::Column,
    ids: &[Uuid],
    ts: DateTime<Utc>,
) -> Result<usize> {
    let rows: Vec<(Uuid, Option<DateTime<Utc>>)> = E::find()
        .select_only()
        .column(id)
        .column(stamp)
        .filter(id.is_in(ids.iter().copied()))
        .into_tuple()
        .all(tx)
        .await?;
    let stamped = |i: &Uuid| rows.iter().any(|(r, s)| r == i && *s == Some(ts));
    Ok(ids.iter().position(|i| !stamped(i)).unwrap_or(0))
}
