//! The hand-written sqlx baseline: the same SQL the store runs, bound and
//! decoded by hand on the store's own pool. It is the near-physical limit of
//! this stack; the store's ratio to it is SeaORM's tax.
//!
//! SQL is written once with `?` placeholders; PostgreSQL gets `$n`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// `?` placeholders as `$1, $2, ...`.
pub fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

pub const GET: &str = "SELECT id, workflow_id, workflow_version, state, reason, error, input, version, owner, \
    lease_expires_at, wake_at, created_at, updated_at, started_at, finished_at FROM executions WHERE id = ?";

pub const TRANSITION: &str =
    "UPDATE executions SET state = ?, version = version + 1, reason = ?, error = ?, \
    updated_at = ?, wake_at = ? WHERE id = ? AND version = ? AND state IN (?, ?)";

pub const INSERT_LOG: &str =
    "INSERT INTO logs (execution_id, task_run_id, attempt, ts, stream, line) VALUES (?, ?, ?, ?, ?, ?)";

/// The filtered list page: workflow + state + created-at range, newest first.
pub const LIST: &str =
    "SELECT id, workflow_id, workflow_version, state, reason, error, input, version, owner, \
    lease_expires_at, wake_at, created_at, updated_at, started_at, finished_at FROM executions \
    WHERE workflow_id = ? AND state = ? AND created_at >= ? AND created_at < ? \
    ORDER BY created_at DESC, id DESC LIMIT 51 OFFSET ?";

/// A decoded execution row, as the store decodes one.
#[allow(dead_code)]
pub struct Row {
    pub id: Uuid,
    pub workflow_id: Uuid,
    pub workflow_version: i32,
    pub state: String,
    pub reason: Option<String>,
    pub error: Option<String>,
    pub input: serde_json::Value,
    pub version: i64,
    pub owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub wake_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// The baseline operations for one sqlx backend.
macro_rules! raw_backend {
    ($name:ident, $db:ty, $pool:ty, $sql:expr) => {
        pub mod $name {
            use super::*;
            use sea_orm::sqlx::{self, Row as _};

            fn decode(r: &<$db as sqlx::Database>::Row) -> Row {
                Row {
                    id: r.get("id"),
                    workflow_id: r.get("workflow_id"),
                    workflow_version: r.get("workflow_version"),
                    state: r.get("state"),
                    reason: r.get("reason"),
                    error: r.get("error"),
                    input: r.get::<sqlx::types::Json<serde_json::Value>, _>("input").0,
                    version: r.get("version"),
                    owner: r.get("owner"),
                    lease_expires_at: r.get("lease_expires_at"),
                    wake_at: r.get("wake_at"),
                    created_at: r.get("created_at"),
                    updated_at: r.get("updated_at"),
                    started_at: r.get("started_at"),
                    finished_at: r.get("finished_at"),
                }
            }

            pub async fn get(pool: &$pool, id: Uuid) -> Row {
                let sql = $sql(GET);
                let r = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_one(pool)
                    .await
                    .unwrap();
                decode(&r)
            }

            /// One versioned move between RUNNING and WAITING.
            pub async fn transition(pool: &$pool, id: Uuid, version: i64, to: &str) -> u64 {
                let sql = $sql(TRANSITION);
                let wake = (to == "WAITING").then(|| flowstate_store::now());
                let from: [&str; 2] = if to == "WAITING" {
                    ["RUNNING", "RUNNING"]
                } else {
                    ["PENDING", "WAITING"]
                };
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(to)
                    .bind(None::<String>)
                    .bind(None::<String>)
                    .bind(flowstate_store::now())
                    .bind(wake)
                    .bind(id)
                    .bind(version)
                    .bind(from[0])
                    .bind(from[1])
                    .execute(pool)
                    .await
                    .unwrap()
                    .rows_affected()
            }

            pub async fn insert_log(pool: &$pool, execution: Uuid, line: &str) {
                let sql = $sql(INSERT_LOG);
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(execution)
                    .bind(None::<Uuid>)
                    .bind(None::<i32>)
                    .bind(flowstate_store::now())
                    .bind("stdout")
                    .bind(line)
                    .execute(pool)
                    .await
                    .unwrap();
            }

            /// Multi-row INSERTs of `n` lines, chunks of 500, in one transaction.
            pub async fn append_logs(pool: &$pool, execution: Uuid, n: usize) {
                let mut tx = pool.begin().await.unwrap();
                let mut left = n;
                while left > 0 {
                    let k = left.min(500);
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO logs (execution_id, task_run_id, attempt, ts, stream, line) ",
                    );
                    let ts = flowstate_store::now();
                    qb.push_values(0..k, |mut b, i| {
                        b.push_bind(execution)
                            .push_bind(None::<Uuid>)
                            .push_bind(None::<i32>)
                            .push_bind(ts)
                            .push_bind("stdout")
                            .push_bind(format!("line {i}"));
                    });
                    qb.build().execute(&mut *tx).await.unwrap();
                    left -= k;
                }
                tx.commit().await.unwrap();
            }

            /// The list page by offset.
            pub async fn list(
                pool: &$pool,
                wf: Uuid,
                state: &str,
                since: DateTime<Utc>,
                until: DateTime<Utc>,
                offset: i64,
            ) -> usize {
                let sql = $sql(LIST);
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(wf)
                    .bind(state)
                    .bind(since)
                    .bind(until)
                    .bind(offset)
                    .fetch_all(pool)
                    .await
                    .unwrap();
                rows.iter().map(decode).count()
            }
        }
    };
}

fn same(sql: &str) -> String {
    sql.to_owned()
}

raw_backend!(
    sqlite,
    sea_orm::sqlx::Sqlite,
    sea_orm::sqlx::SqlitePool,
    same
);
raw_backend!(
    postgres,
    sea_orm::sqlx::Postgres,
    sea_orm::sqlx::PgPool,
    numbered
);
