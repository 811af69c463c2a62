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

use super::{executions, tasks};
use crate::error::{Result, StoreError};
use crate::now;
use crate::state_machine::{execution_sources, task_sources};
use crate::types::*;
use chrono::{DateTime, Utc};
use flowstate_entity::{attempt, execution, task_run};
use sea_orm::sea_query::{Condition, ExprTrait};
use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter};
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
        let moved = tasks::finished(result, ts)
            .filter(attempt::Column::Id.is_in(ids.iter().copied()))
            .filter(attempt::Column::State.eq(AttemptState::Running))
            .exec(tx)
            .await?
            .rows_affected;
        if moved != ids.len() as u64 {
            return Err(unfinished(tx, ids, result, ts).await);
        }
    }
    for group in &groups.tasks {
        use task_run::Column as C;
        let t = group[0];
        let held = group.iter().fold(Condition::any(), |any, t| {
            any.add(
                C::Id
                    .eq(t.task_run_id)
                    .and(C::Version.eq(t.expected_version)),
            )
        });
        let moved = tasks::moved_to(t.to, t.reason, t.next_attempt_at, ts)
            .filter(held)
            .filter(C::State.is_in(task_sources(t.to).iter().copied()))
            .exec(tx)
            .await?
            .rows_affected;
        if moved != group.len() as u64 {
            return Err(refused_task(tx, group, ts).await);
        }
    }
    for group in &groups.executions {
        use execution::Column as C;
        let t = group[0].1;
        let held = group.iter().fold(Condition::any(), |any, (id, t)| {
            any.add(C::Id.eq(*id).and(C::Version.eq(t.expected_version)))
        });
        let moved = executions::moved(t, ts)
            .filter(held)
            .filter(C::State.is_in(execution_sources(t.to).iter().copied()))
            .exec(tx)
            .await?
            .rows_affected;
        if moved != group.len() as u64 {
            return Err(refused_execution(tx, group, ts).await);
        }
    }
    Ok(versions(batches))
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

/// Why an attempt end of the group was refused: the first attempt the
/// UPDATE did not end (at `ts`, which no other transaction wrote).
async fn unfinished(
    tx: &DatabaseTransaction,
    ids: &[Uuid],
    r: &AttemptResult,
    ts: DateTime<Utc>,
) -> StoreError {
    let rows = match attempt::Entity::find()
        .filter(attempt::Column::Id.is_in(ids.iter().copied()))
        .all(tx)
        .await
    {
        Ok(rows) => rows,
        Err(e) => return e.into(),
    };
    let ended = |id: &Uuid| {
        rows.iter()
            .any(|a| &a.id == id && a.finished_at == Some(ts))
    };
    let first = ids.iter().find(|id| !ended(id)).unwrap_or(&ids[0]);
    tasks::unfinished(tx, *first, r).await
}

/// Why a task run's move of the group was refused: the first run the
/// UPDATE did not move (at `ts`).
async fn refused_task(
    tx: &DatabaseTransaction,
    group: &[&TaskTransition],
    ts: DateTime<Utc>,
) -> StoreError {
    let ids = group.iter().map(|t| t.task_run_id);
    let rows = match task_run::Entity::find()
        .filter(task_run::Column::Id.is_in(ids))
        .all(tx)
        .await
    {
        Ok(rows) => rows,
        Err(e) => return e.into(),
    };
    let moved = |t: &TaskTransition| {
        rows.iter().any(|r| {
            r.id == t.task_run_id && r.version == t.expected_version + 1 && r.updated_at == ts
        })
    };
    let first = group.iter().find(|t| !moved(t)).unwrap_or(&group[0]);
    tasks::refused(tx, first, None).await
}

/// Why an execution's move of the group was refused: the first execution
/// the UPDATE did not move (at `ts`).
async fn refused_execution(
    tx: &DatabaseTransaction,
    group: &[(Uuid, &ExecutionTransition)],
    ts: DateTime<Utc>,
) -> StoreError {
    let ids = group.iter().map(|(id, _)| *id);
    let rows = match execution::Entity::find()
        .filter(execution::Column::Id.is_in(ids))
        .all(tx)
        .await
    {
        Ok(rows) => rows,
        Err(e) => return e.into(),
    };
    let moved = |(id, t): &(Uuid, &ExecutionTransition)| {
        rows.iter()
            .any(|r| r.id == *id && r.version == t.expected_version + 1 && r.updated_at == ts)
    };
    let (id, t) = group.iter().find(|e| !moved(e)).unwrap_or(&group[0]);
    executions::refused(tx, *id, t).await
}
