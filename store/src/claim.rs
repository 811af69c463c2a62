//! Claiming due work under a lease, so several engine processes can share one
//! database without ever running the same execution twice.
//!
//! The candidates are selected with the backend's claim lock (`FOR UPDATE SKIP
//! LOCKED` on servers; SQLite's IMMEDIATE transaction already excludes every
//! other writer), retries that are due before new work, and moved to RUNNING
//! under the lease. Where the backend has `UPDATE ... RETURNING` (SQLite,
//! PostgreSQL) that is one statement per claim; MySQL and MariaDB select,
//! update and read back. A claim may also read the claimed executions' task
//! runs and start the first attempts its caller picks (the engine's planner
//! decides which), so that an execution's first tasks cost no transaction of
//! their own.

use crate::backend::Backend;
use crate::error::{Result, StoreError};
use crate::now;
use crate::sea::db::{Db, Pool};
use crate::sea::ops::{apply_many_in, check_all, start_runs_in};
use crate::types::{
    ClaimRequest, Claimed, Execution, ExecutionState, Recorded, StartPick, TaskRun, TaskState,
    Write,
};
use chrono::{DateTime, Utc};
use flowstate_entity::{execution, task_run};
use sea_orm::sea_query::{
    Condition, Expr, ExprTrait, Func, Order, Query, SelectStatement, UnionType,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The most executions one claim takes.
pub const MAX_CLAIM: u64 = 1000;

fn lease_until(ts: DateTime<Utc>, lease: Duration) -> Result<DateTime<Utc>> {
    chrono::Duration::from_std(lease)
        .ok()
        .and_then(|d| ts.checked_add_signed(d))
        .ok_or_else(|| StoreError::InvalidInput(format!("lease {lease:?} is too long")))
}

/// The UPDATE that moves claimed executions to RUNNING under `node_id`
/// until `until`; callers add which rows.
fn move_to_running(
    node_id: &str,
    until: DateTime<Utc>,
    ts: DateTime<Utc>,
) -> sea_orm::UpdateMany<execution::Entity> {
    use execution::Column as C;
    execution::Entity::update_many()
        .col_expr(C::State, Expr::val(ExecutionState::Running))
        .col_expr(C::Owner, Expr::val(node_id))
        .col_expr(C::LeaseExpiresAt, Expr::val(until))
        .col_expr(C::Version, Expr::col(C::Version).add(1))
        .col_expr(C::UpdatedAt, Expr::val(ts))
        .col_expr(C::WakeAt, Expr::val(None::<DateTime<Utc>>))
        .col_expr(
            C::StartedAt,
            Func::coalesce([Expr::col(C::StartedAt), Expr::val(ts)]).into(),
        )
}

/// [`StateStore::claim_due`](crate::StateStore::claim_due): one write
/// transaction through the runner, retried whole on transient failures.
pub(crate) async fn claim_due(
    pool: &Pool,
    node_id: &str,
    limit: u64,
    lease: Duration,
) -> Result<Vec<Execution>> {
    let claimed = claim(pool, node_id, limit, lease, Reads::Executions).await?;
    Ok(claimed.into_iter().map(|c| c.execution).collect())
}

/// [`StateStore::claim_due_with_runs`](crate::StateStore::claim_due_with_runs):
/// the claim and one read of every claimed execution's task runs, in one
/// transaction.
pub(crate) async fn claim_due_with_runs(
    pool: &Pool,
    node_id: &str,
    limit: u64,
    lease: Duration,
) -> Result<Vec<(Execution, Vec<TaskRun>)>> {
    let claimed = claim(pool, node_id, limit, lease, Reads::Runs).await?;
    Ok(claimed.into_iter().map(|c| (c.execution, c.runs)).collect())
}

/// [`StateStore::claim_and_start`](crate::StateStore::claim_and_start): the
/// claim, the task runs' read, and the start of the attempts `pick` names,
/// in one transaction.
pub(crate) async fn claim_and_start(
    pool: &Pool,
    node_id: &str,
    limit: u64,
    lease: Duration,
    pick: Arc<StartPick>,
) -> Result<Vec<Claimed>> {
    claim(pool, node_id, limit, lease, Reads::Start(pick)).await
}

/// [`StateStore::record_and_claim`](crate::StateStore::record_and_claim):
/// the batches, then the claim, in one write transaction through the
/// runner, retried whole on transient failures.
pub(crate) async fn record_and_claim(
    pool: &Pool,
    batches: Vec<Vec<Write>>,
    claim: Option<ClaimRequest>,
) -> Result<Recorded> {
    if let Some(c) = &claim {
        check_claim(&c.node_id, c.limit)?;
    }
    check_all(&batches)?;
    let started = Instant::now();
    let backend = pool.backend();
    let chunk = backend.insert_chunk();
    let recorded = pool
        .write(move |tx| {
            let (batches, claim) = (batches.clone(), claim.clone());
            Box::pin(async move {
                let versions = apply_many_in(tx, &batches, chunk).await?;
                let claimed = match claim {
                    None => Vec::new(),
                    Some(c) => {
                        let reads = Reads::Start(c.pick);
                        claimed_in(tx, backend, &c.node_id, c.limit, c.lease, reads).await?
                    }
                };
                Ok(Recorded { versions, claimed })
            })
        })
        .await?;
    counted(started, recorded.claimed.len());
    Ok(recorded)
}

/// Refuses a claim's arguments before anything opens.
fn check_claim(node_id: &str, limit: u64) -> Result<()> {
    if !(1..=MAX_CLAIM).contains(&limit) {
        return Err(StoreError::InvalidInput(format!(
            "claim limit {limit} is out of range; use 1 to {MAX_CLAIM}"
        )));
    }
    if node_id.is_empty() {
        return Err(StoreError::InvalidInput("node id is empty".into()));
    }
    Ok(())
}

/// What a claim reads (and starts) besides moving the executions.
#[derive(Clone)]
enum Reads {
    Executions,
    Runs,
    Start(Arc<StartPick>),
}

async fn claim(
    pool: &Pool,
    node_id: &str,
    limit: u64,
    lease: Duration,
    reads: Reads,
) -> Result<Vec<Claimed>> {
    check_claim(node_id, limit)?;
    let started = Instant::now();
    let node = node_id.to_owned();
    let backend = pool.backend();
    let claimed = pool
        .write(move |tx| {
            let node = node.clone();
            let reads = reads.clone();
            Box::pin(async move { claimed_in(tx, backend, &node, limit, lease, reads).await })
        })
        .await?;
    counted(started, claimed.len());
    Ok(claimed)
}

/// The claim inside its transaction `tx`, with what it reads (and starts).
async fn claimed_in(
    tx: &DatabaseTransaction,
    backend: &'static dyn Backend,
    node: &str,
    limit: u64,
    lease: Duration,
    reads: Reads,
) -> Result<Vec<Claimed>> {
    let claimed = claim_in(tx, backend, node, limit, lease).await?;
    match reads {
        Reads::Executions => Ok(claimed.into_iter().map(Claimed::bare).collect()),
        Reads::Runs => with_task_runs(tx, claimed).await,
        Reads::Start(pick) => {
            let claimed = with_task_runs(tx, claimed).await?;
            start_picked(tx, claimed, pick.as_ref()).await
        }
    }
}

/// The claim's metrics: how long it took since `started`, how many it took.
fn counted(started: Instant, claimed: usize) {
    metrics::histogram!("flowstate_claim_seconds").record(started.elapsed().as_secs_f64());
    metrics::counter!("flowstate_claimed_executions_total").increment(claimed as u64);
}

/// Each execution with its task runs in workflow order, read with one query.
async fn with_task_runs(tx: &DatabaseTransaction, claimed: Vec<Execution>) -> Result<Vec<Claimed>> {
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    let mut runs: Vec<TaskRun> = task_run::Entity::find()
        .filter(task_run::Column::ExecutionId.is_in(claimed.iter().map(|e| e.id)))
        .all(tx)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    runs.sort_by_key(|r| (r.execution_id, r.position));
    let mut out = Vec::with_capacity(claimed.len());
    for execution in claimed {
        let (mine, rest): (Vec<_>, Vec<_>) = runs
            .into_iter()
            .partition(|r| r.execution_id == execution.id);
        runs = rest;
        out.push(Claimed {
            execution,
            runs: mine,
            started: Vec::new(),
        });
    }
    Ok(out)
}

/// Starts the attempts `pick` names among the PENDING and WAITING task runs
/// of each claimed execution (two statements for the batch), and puts the
/// moved runs and their attempts in place.
async fn start_picked(
    tx: &DatabaseTransaction,
    mut claimed: Vec<Claimed>,
    pick: &StartPick,
) -> Result<Vec<Claimed>> {
    let picked = pick(&claimed);
    let runs: Vec<(Uuid, i64)> = claimed
        .iter()
        .zip(&picked)
        .flat_map(|(c, ids)| {
            c.runs.iter().filter(|r| {
                ids.contains(&r.id) && matches!(r.state, TaskState::Pending | TaskState::Waiting)
            })
        })
        .map(|r| (r.id, r.version))
        .collect();
    for (run, attempt) in start_runs_in(tx, &runs).await? {
        let Some(c) = claimed
            .iter_mut()
            .find(|c| c.execution.id == run.execution_id)
        else {
            continue;
        };
        if let Some(slot) = c.runs.iter_mut().find(|r| r.id == run.id) {
            *slot = run;
        }
        c.started.push(attempt);
    }
    Ok(claimed)
}

async fn claim_in(
    tx: &DatabaseTransaction,
    backend: &dyn Backend,
    node_id: &str,
    limit: u64,
    lease: Duration,
) -> Result<Vec<Execution>> {
    use execution::Column as C;
    let ts = now();
    let until = lease_until(ts, lease)?;
    let mut rows = if tx.support_returning() {
        // One statement: the due rows are picked by a subquery, moved, and
        // come back through RETURNING.
        move_to_running(node_id, until, ts)
            .filter(C::Id.in_subquery(due_ids(backend, ts, limit)))
            .exec_with_returning(tx)
            .await?
    } else {
        claim_without_returning(tx, backend, node_id, limit, until, ts).await?
    };
    rows.retain(|e| e.owner.as_deref() == Some(node_id) && e.state == ExecutionState::Running);
    rows.sort_by_key(|e| (e.created_at, e.id));
    Ok(rows.into_iter().map(Into::into).collect())
}

/// The two index-ordered probes for due executions, each locked the
/// backend's way: WAITING whose retry is due, earliest first, on (state,
/// wake_at), which never reads a WAITING row that is not due yet; then
/// PENDING, oldest first, on (state, created_at, id). Retries come first so
/// that a backlog of new work cannot starve them.
fn probes(backend: &dyn Backend, ts: DateTime<Utc>, limit: u64) -> [SelectStatement; 2] {
    use execution::Column as C;
    let mut waiting = Query::select();
    waiting
        .column(C::Id)
        .from(execution::Entity)
        .and_where(C::State.eq(ExecutionState::Waiting))
        .and_where(C::WakeAt.lte(ts))
        .order_by(C::WakeAt, Order::Asc)
        .limit(limit);
    let mut pending = Query::select();
    pending
        .column(C::Id)
        .from(execution::Entity)
        .and_where(C::State.eq(ExecutionState::Pending))
        .order_by(C::CreatedAt, Order::Asc)
        .order_by(C::Id, Order::Asc)
        .limit(limit);
    backend.lock_claimed(&mut waiting);
    backend.lock_claimed(&mut pending);
    [waiting, pending]
}

/// The ids of at most `limit` due executions in one SELECT: the two
/// [`probes`] joined by UNION ALL, the retries' first.
fn due_ids(backend: &dyn Backend, ts: DateTime<Utc>, limit: u64) -> SelectStatement {
    let [waiting, pending] = probes(backend, ts, limit);
    let mut rest = Query::select();
    rest.column(execution::Column::Id)
        .from_subquery(pending, "p");
    let mut ids = Query::select();
    ids.column(execution::Column::Id)
        .from_subquery(waiting, "w")
        .union(UnionType::All, rest)
        .limit(limit);
    ids
}

#[cfg(feature = "diagnostics")]
/// The claim of at most `limit` executions as SQLite and PostgreSQL run it
/// (without its RETURNING list), for `EXPLAIN` and docs.
pub fn claim_statement(backend: sea_orm::DbBackend, limit: u64) -> sea_orm::Statement {
    use sea_orm::QueryTrait;
    let ts = now();
    move_to_running("node", ts, ts)
        .filter(execution::Column::Id.in_subquery(due_ids(
            crate::backend::for_backend(backend),
            ts,
            limit,
        )))
        .build(backend)
}

/// For a backend without `UPDATE ... RETURNING` (MySQL, MariaDB, which also
/// refuse `LIMIT` in an `IN` subquery): the probes one after the other, the
/// move, and the rows read back.
async fn claim_without_returning(
    tx: &DatabaseTransaction,
    backend: &dyn Backend,
    node_id: &str,
    limit: u64,
    until: DateTime<Utc>,
    ts: DateTime<Utc>,
) -> Result<Vec<execution::Model>> {
    use execution::Column as C;
    let mut ids: Vec<Uuid> = Vec::new();
    for mut probe in probes(backend, ts, limit) {
        let want = limit - ids.len() as u64;
        if want == 0 {
            break;
        }
        probe.limit(want);
        let stmt = tx.get_database_backend().build(&probe);
        for row in tx.query_all_raw(stmt).await? {
            ids.push(row.try_get_by_index::<Uuid>(0)?);
        }
    }
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // By primary key only: the rows are locked (FOR UPDATE), so their state
    // cannot have changed, and a state filter here made SQLite walk every
    // PENDING and WAITING row instead.
    move_to_running(node_id, until, ts)
        .filter(C::Id.is_in(ids.iter().copied()))
        .exec(tx)
        .await?;
    // By primary key only: with the owner and state in the filter too, a
    // planner may walk every RUNNING row through the state index instead.
    Ok(execution::Entity::find()
        .filter(C::Id.is_in(ids))
        .all(tx)
        .await?)
}

/// [`StateStore::claim_execution`](crate::StateStore::claim_execution): one
/// write transaction through the runner, retried whole on transient failures.
pub(crate) async fn claim_one(
    pool: &Pool,
    node_id: &str,
    id: Uuid,
    lease: Duration,
) -> Result<Option<Execution>> {
    if node_id.is_empty() {
        return Err(StoreError::InvalidInput("node id is empty".into()));
    }
    let node = node_id.to_owned();
    pool.write(move |tx| {
        let node = node.clone();
        Box::pin(async move { claim_one_in(tx, &node, id, lease).await })
    })
    .await
}

async fn claim_one_in(
    tx: &DatabaseTransaction,
    node_id: &str,
    id: Uuid,
    lease: Duration,
) -> Result<Option<Execution>> {
    use execution::Column as C;
    let ts = now();
    let until = lease_until(ts, lease)?;
    let due = Condition::any()
        .add(C::State.eq(ExecutionState::Pending))
        .add(
            Condition::all()
                .add(C::State.eq(ExecutionState::Waiting))
                .add(C::WakeAt.lte(ts)),
        );
    let changed = move_to_running(node_id, until, ts)
        .filter(C::Id.eq(id))
        .filter(due)
        .exec(tx)
        .await?
        .rows_affected;
    let row = if changed == 1 {
        execution::Entity::find_by_id(id)
            .one(tx)
            .await?
            .map(Into::into)
    } else {
        None
    };
    Ok(row)
}

/// [`StateStore::renew_leases`](crate::StateStore::renew_leases): one UPDATE
/// per 500 ids on the pool, like [`renew_lease`].
pub(crate) async fn renew_leases(
    db: &DatabaseConnection,
    node_id: &str,
    ids: &[Uuid],
    lease: Duration,
) -> Result<u64> {
    use execution::Column as C;
    let until = lease_until(now(), lease)?;
    let mut renewed = 0;
    for chunk in ids.chunks(500) {
        renewed += execution::Entity::update_many()
            .col_expr(C::LeaseExpiresAt, Expr::val(until))
            .filter(C::Id.is_in(chunk.iter().copied()))
            .filter(C::Owner.eq(node_id))
            .filter(C::State.eq(ExecutionState::Running))
            .exec(db)
            .await?
            .rows_affected;
    }
    Ok(renewed)
}

/// [`StateStore::renew_lease`](crate::StateStore::renew_lease): one UPDATE
/// on the pool, in no transaction and not retried here: the engine renews
/// every third of the lease, so a failed renewal is made again before the
/// lease runs out.
pub(crate) async fn renew_lease(
    db: &DatabaseConnection,
    node_id: &str,
    lease: Duration,
) -> Result<u64> {
    use execution::Column as C;
    let until = lease_until(now(), lease)?;
    Ok(execution::Entity::update_many()
        .col_expr(C::LeaseExpiresAt, Expr::val(until))
        .filter(C::Owner.eq(node_id))
        .filter(C::State.eq(ExecutionState::Running))
        .exec(db)
        .await?
        .rows_affected)
}
