//! Claiming due work under a lease, so several engine processes can share one
//! database without ever running the same execution twice.
//!
//! The candidates are selected with the backend's claim lock (`FOR UPDATE SKIP
//! LOCKED` on servers; SQLite's IMMEDIATE transaction already excludes every
//! other writer), then moved to RUNNING with one UPDATE that re-checks their
//! state, so even a backend without row locks cannot hand one out twice.

use crate::backend::Backend;
use crate::error::{Result, StoreError};
use crate::now;
use crate::sea::db::{Db, Pool};
use crate::types::{Execution, ExecutionState};
use chrono::{DateTime, Utc};
use flowstate_entity::execution;
use sea_orm::sea_query::{Condition, Expr, ExprTrait, Func};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};
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
    if !(1..=MAX_CLAIM).contains(&limit) {
        return Err(StoreError::InvalidInput(format!(
            "claim limit {limit} is out of range; use 1 to {MAX_CLAIM}"
        )));
    }
    if node_id.is_empty() {
        return Err(StoreError::InvalidInput("node id is empty".into()));
    }
    let started = Instant::now();
    let node = node_id.to_owned();
    let backend = pool.backend();
    let claimed = pool
        .write(move |tx| {
            let node = node.clone();
            Box::pin(async move { claim_in(tx, backend, &node, limit, lease).await })
        })
        .await?;
    metrics::histogram!("flowstate_claim_seconds").record(started.elapsed().as_secs_f64());
    metrics::counter!("flowstate_claimed_executions_total").increment(claimed.len() as u64);
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
    // Two index-ordered probes instead of one OR: PENDING oldest first on
    // (state, created_at, id), then WAITING earliest due first on (state,
    // wake_at), which never reads a WAITING row that is not due yet.
    let mut ids: Vec<Uuid> = Vec::new();
    let probes = [
        (
            Condition::all().add(C::State.eq(ExecutionState::Pending)),
            vec![C::CreatedAt, C::Id],
        ),
        (
            Condition::all()
                .add(C::State.eq(ExecutionState::Waiting))
                .add(C::WakeAt.lte(ts)),
            vec![C::WakeAt],
        ),
    ];
    for (cond, order) in probes {
        let want = limit - ids.len() as u64;
        if want == 0 {
            break;
        }
        let mut select = execution::Entity::find()
            .select_only()
            .column(C::Id)
            .filter(cond);
        for col in order {
            select = select.order_by_asc(col);
        }
        let mut stmt = select.limit(want).build(tx.get_database_backend());
        stmt.sql.push_str(backend.claim_lock_suffix());
        for row in tx.query_all_raw(stmt).await? {
            ids.push(row.try_get_by_index::<Uuid>(0)?);
        }
    }
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // By primary key only: the rows are locked (SQLite's write lock, or FOR
    // UPDATE on servers), so their state cannot have changed, and a state
    // filter here made SQLite walk every PENDING and WAITING row instead.
    move_to_running(node_id, until, ts)
        .filter(C::Id.is_in(ids.iter().copied()))
        .exec(tx)
        .await?;
    // By primary key only: with the owner and state in the filter too, a
    // planner may walk every RUNNING row through the state index instead.
    let mut rows = execution::Entity::find()
        .filter(C::Id.is_in(ids))
        .all(tx)
        .await?;
    rows.retain(|e| e.owner.as_deref() == Some(node_id) && e.state == ExecutionState::Running);
    rows.sort_by_key(|e| (e.created_at, e.id));
    Ok(rows.into_iter().map(Into::into).collect())
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
