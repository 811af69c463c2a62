//! Bulk loading: N executions across 20 workflows over 90 days, 5 task runs
//! each with 1-3 attempts, 20 log lines and 2 outputs per execution, states
//! about 90% terminal, 5% RUNNING and 5% PENDING/WAITING. Multi-row inserts in
//! large transactions. No row is CANCELLED, so lists are also measured for a
//! state that no row has.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use sea_orm::sea_query::{Alias, Expr, InsertStatement, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use std::io::Write;
use uuid::Uuid;

/// Workflows the seeded executions belong to.
pub const WORKFLOWS: usize = 20;
/// Bound parameters per statement: under every backend's limit.
const PARAMS: usize = 30_000;
/// Executions per transaction.
const PER_TX: usize = 2_000;

/// A deterministic pseudo-random number for `i`.
pub fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The ids of the seeded workflows, creating them when missing.
pub async fn workflows(db: &DatabaseConnection) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for w in 0..WORKFLOWS {
        let name = format!("bench-wf-{w:02}");
        let found = db
            .query_one_raw(sea_orm::Statement::from_sql_and_values(
                db.get_database_backend(),
                match db.get_database_backend() {
                    sea_orm::DbBackend::Postgres => "SELECT id FROM workflows WHERE name = $1",
                    _ => "SELECT id FROM workflows WHERE name = ?",
                },
                [name.clone().into()],
            ))
            .await
            .unwrap();
        if let Some(row) = found {
            ids.push(row.try_get_by_index::<Uuid>(0).unwrap());
            continue;
        }
        let id = Uuid::now_v7();
        let now = flowstate_store::now();
        let def = serde_json::json!({"name": name, "description": null, "tasks": (0..5).map(|t| serde_json::json!({
            "id": format!("t{t}"), "run": "true", "retries": 2, "retryDelayMs": 1000, "timeoutMs": null,
            "needs": if t == 0 { vec![] } else { vec![format!("t{}", t - 1)] }, "env": {}
        })).collect::<Vec<_>>()});
        let mut q = Query::insert();
        q.into_table(Alias::new("workflows"))
            .columns(cols(&[
                "id",
                "name",
                "version",
                "definition",
                "description",
                "created_at",
                "updated_at",
            ]))
            .values_panic([
                Expr::val(id),
                Expr::val(name),
                Expr::val(1),
                Expr::val(def),
                Expr::val(None::<String>),
                Expr::val(now),
                Expr::val(now),
            ]);
        db.execute(&q).await.unwrap();
        ids.push(id);
    }
    ids
}

fn cols(names: &[&str]) -> Vec<Alias> {
    names.iter().map(|n| Alias::new(*n)).collect()
}

/// Rows for one table, flushed as multi-row INSERTs.
struct Table {
    name: &'static str,
    columns: &'static [&'static str],
    rows: Vec<Vec<Expr>>,
}

impl Table {
    fn new(name: &'static str, columns: &'static [&'static str]) -> Table {
        Table {
            name,
            columns,
            rows: Vec::new(),
        }
    }

    async fn flush<C: ConnectionTrait>(&mut self, c: &C) {
        let per = PARAMS / self.columns.len();
        let mut rows = std::mem::take(&mut self.rows).into_iter().peekable();
        while rows.peek().is_some() {
            let mut q: InsertStatement = Query::insert();
            q.into_table(Alias::new(self.name))
                .columns(cols(self.columns));
            for r in rows.by_ref().take(per) {
                q.values_panic(r);
            }
            c.execute(&q)
                .await
                .unwrap_or_else(|e| panic!("insert into {}: {e}", self.name));
        }
    }
}

/// SQLite's page cache for the seeding connection. Each call spreads its
/// rows over the same 90 days as the calls before it, so the indexes take
/// inserts between existing entries: with SQLite's default 2 MiB cache each
/// batch read and wrote pages from the OS again, and seeding slowed from 660
/// to 170 executions/s as the table grew (issue 13). 2 GiB holds the indexes
/// of 1M executions.
const SEED_CACHE_KIB: i64 = 2 * 1024 * 1024;

/// The connection seeding writes through: one connection of its own. On
/// SQLite it has a large page cache (see [`SEED_CACHE_KIB`]); on the servers
/// it skips the foreign-key checks, which the generated rows satisfy by
/// construction: PostgreSQL spent most of its time in them (one
/// referential-integrity trigger per foreign key and row, about 60 per
/// execution) and seeded 30k executions in 29 s. Without the privilege to
/// skip them, seeding goes on with them and says so.
pub async fn connection(db: &DatabaseConnection, url: &str) -> DatabaseConnection {
    let mut opts = sea_orm::ConnectOptions::new(url.to_owned());
    opts.max_connections(1)
        .min_connections(1)
        .sqlx_logging(false);
    let conn = sea_orm::Database::connect(opts).await.unwrap();
    let setup = match db.get_database_backend() {
        sea_orm::DbBackend::Sqlite => format!(
            "PRAGMA cache_size = -{SEED_CACHE_KIB}; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON"
        ),
        sea_orm::DbBackend::Postgres => "SET session_replication_role = replica".to_owned(),
        _ => "SET foreign_key_checks = 0".to_owned(),
    };
    if let Err(e) = conn.execute_unprepared(&setup).await {
        eprintln!("note: seeding with foreign-key checks on ({setup}: {e})");
    }
    conn
}

/// Adds `count` executions (numbered from `first`, which varies their mix) with
/// everything under them.
pub async fn executions(db: &DatabaseConnection, wfs: &[Uuid], first: u64, count: u64) {
    let now = flowstate_store::now();
    let span = ChronoDuration::days(90);
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut done = 0u64;
    while done < count {
        let n = (count - done).min(PER_TX as u64);
        let mut ex = Table::new(
            "executions",
            &[
                "id",
                "workflow_id",
                "workflow_version",
                "state",
                "reason",
                "error",
                "input",
                "version",
                "owner",
                "lease_expires_at",
                "wake_at",
                "created_at",
                "updated_at",
                "started_at",
                "finished_at",
            ],
        );
        let mut tr = Table::new(
            "task_runs",
            &[
                "id",
                "execution_id",
                "task_key",
                "position",
                "state",
                "reason",
                "version",
                "attempt_count",
                "next_attempt_at",
                "created_at",
                "updated_at",
                "started_at",
                "finished_at",
            ],
        );
        let mut at = Table::new(
            "attempts",
            &[
                "id",
                "task_run_id",
                "number",
                "state",
                "reason",
                "exit_code",
                "error",
                "started_at",
                "finished_at",
            ],
        );
        let mut out = Table::new(
            "outputs",
            &[
                "id",
                "execution_id",
                "task_run_id",
                "key",
                "value",
                "created_at",
            ],
        );
        let mut logs = Table::new(
            "logs",
            &[
                "execution_id",
                "task_run_id",
                "attempt",
                "ts",
                "stream",
                "line",
            ],
        );
        for k in 0..n {
            let i = first + done + k;
            let r = mix(i);
            // Spread evenly over 90 days, in time order within one call:
            // ids and creation times then grow as rows are added, so every
            // index keyed by them takes its inserts in one forward sweep
            // instead of all over its B-tree. Measured here: random times
            // seeded 200k executions in 103 s, in order 45 s, and the next
            // 200k (interleaved with the first) in 65 s. The jitter keeps
            // times from being equally spaced.
            let jitter = (mix(i ^ 0xABCD) % 1_000_000) as f64 / 1_000_000.0;
            let frac = ((done + k) as f64 + jitter) / count as f64;
            let created: DateTime<Utc> = flowstate_store::truncate_micros(
                now - span
                    + ChronoDuration::milliseconds((span.num_milliseconds() as f64 * frac) as i64),
            );
            let id = Uuid::new_v7(uuid::Timestamp::from_unix(
                uuid::NoContext,
                created.timestamp() as u64,
                created.timestamp_subsec_nanos(),
            ));
            let wf = wfs[(r % WORKFLOWS as u64) as usize];
            let bucket = (r >> 8) % 100;
            let (state, task_state) = match bucket {
                0..=79 => ("SUCCEEDED", "SUCCEEDED"),
                // No CANCELLED row at all: the lists are also measured for
                // a state that no row has.
                80..=89 => ("FAILED", "FAILED"),
                90..=94 => ("RUNNING", "RUNNING"),
                95..=97 => ("PENDING", "PENDING"),
                _ => ("WAITING", "WAITING"),
            };
            let terminal = bucket < 90;
            let started =
                (!(95..98).contains(&bucket)).then_some(created + ChronoDuration::seconds(1));
            let finished = terminal.then_some(created + ChronoDuration::seconds(30));
            let owner = (state == "RUNNING").then(|| format!("seed-node-{}", r % 4));
            let lease = (state == "RUNNING").then_some(now + ChronoDuration::days(3650));
            let wake = (state == "WAITING").then_some(now + ChronoDuration::days(3650));
            let reason = (state == "FAILED").then(|| "TASK_FAILED".to_owned());
            ex.rows.push(vec![
                Expr::val(id),
                Expr::val(wf),
                Expr::val(1),
                Expr::val(state),
                Expr::val(reason.clone()),
                Expr::val(reason.as_ref().map(|_| "seeded failure".to_owned())),
                Expr::val(serde_json::json!({"n": i})),
                Expr::val(if terminal { 3i64 } else { 2i64 }),
                Expr::val(owner),
                Expr::val(lease),
                Expr::val(wake),
                Expr::val(created),
                Expr::val(finished.unwrap_or(created)),
                Expr::val(started),
                Expr::val(finished),
            ]);
            for t in 0..5i32 {
                let run_id = Uuid::now_v7();
                let tries = 1 + (mix(i * 7 + t as u64) % 3) as i32;
                tr.rows.push(vec![
                    Expr::val(run_id),
                    Expr::val(id),
                    Expr::val(format!("t{t}")),
                    Expr::val(t),
                    Expr::val(task_state),
                    Expr::val(None::<String>),
                    Expr::val(2i64),
                    Expr::val(tries),
                    Expr::val(None::<DateTime<Utc>>),
                    Expr::val(created),
                    Expr::val(created),
                    Expr::val(started),
                    Expr::val(finished),
                ]);
                for a in 1..=tries {
                    let last = a == tries;
                    let a_state = if last && !terminal {
                        "RUNNING"
                    } else if last && state == "SUCCEEDED" {
                        "SUCCEEDED"
                    } else {
                        "FAILED"
                    };
                    at.rows.push(vec![
                        Expr::val(Uuid::now_v7()),
                        Expr::val(run_id),
                        Expr::val(a),
                        Expr::val(a_state),
                        Expr::val(None::<String>),
                        Expr::val((a_state != "RUNNING").then_some(if a_state == "SUCCEEDED" {
                            0
                        } else {
                            1
                        })),
                        Expr::val(None::<String>),
                        Expr::val(created),
                        Expr::val((a_state != "RUNNING").then_some(created)),
                    ]);
                }
                for l in 0..4 {
                    logs.rows.push(vec![
                        Expr::val(id),
                        Expr::val(run_id),
                        Expr::val(tries),
                        Expr::val(created),
                        Expr::val(if l == 3 { "stderr" } else { "stdout" }),
                        Expr::val(format!(
                            "execution {i} task t{t} line {l}: some typical output text"
                        )),
                    ]);
                }
                if t < 2 {
                    out.rows.push(vec![
                        Expr::val(Uuid::now_v7()),
                        Expr::val(id),
                        Expr::val(run_id),
                        Expr::val(format!("k{t}")),
                        Expr::val(serde_json::json!(format!("value {i}"))),
                        Expr::val(created),
                    ]);
                }
            }
        }
        let tx = db.begin().await.unwrap();
        for t in [&mut ex, &mut tr, &mut at, &mut out, &mut logs] {
            t.flush(&tx).await;
        }
        tx.commit().await.unwrap();
        done += n;
        if progress {
            let filled = (done * 30 / count) as usize;
            eprint!(
                "\r  seeding [{}{}] {done}/{count}",
                "#".repeat(filled),
                " ".repeat(30 - filled)
            );
            let _ = std::io::stderr().flush();
        }
    }
    if progress {
        eprintln!();
    }
}
