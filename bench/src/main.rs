//! `flowstate-bench`: the store's common operations at growing scale, against
//! a hand-written sqlx baseline of the same SQL.
//!
//! Layout: `seed` bulk-loads the data, `baseline` is the raw sqlx side,
//! `stats` turns latencies into p50/p95/p99, and this file runs the scenarios
//! (numbered as in docs/performance.md) and prints a table or JSON.

mod baseline;
mod cli;
mod console;
mod plot;
mod seed;
mod stats;

use chrono::{Duration as ChronoDuration, Utc};
use clap::Parser;
use flowstate_store::query::{self, ExecutionQuery, SortOrder};
use flowstate_store::types::*;
use flowstate_store::{SeaStore, StateOps, StateStore, StorageConfig};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
};
use serde_json::{json, Value};
use stats::{ms, Samples};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Benchmarks of the flowstate store.
#[derive(Parser)]
#[command(name = "flowstate-bench")]
struct Args {
    /// sqlite, postgres or mysql.
    #[arg(long, default_value = "sqlite")]
    backend: String,
    /// The server to use (a fresh database is created on it and dropped
    /// after); for SQLite, the folder of the database file.
    #[arg(long)]
    database_url: Option<String>,
    /// Executions to seed, ascending; each scale adds to the previous one.
    #[arg(long, value_delimiter = ',', default_value = "1000,100000,1000000")]
    scale: Vec<u64>,
    /// Backlogs for the engine drain (scenario 10), comma-separated; an
    /// empty value (`--drain ''`) skips it, as does `--no-drain`.
    #[arg(long, default_value = "1000,10000,100000", value_parser = backlogs)]
    drain: Backlogs,
    /// Skip the engine drain.
    #[arg(long)]
    no_drain: bool,
    /// The `flowstate` binary for the drain (default: beside this one).
    #[arg(long)]
    flowstate_bin: Option<PathBuf>,
    /// 1k executions, small samples, no drain: a few seconds.
    #[arg(long)]
    quick: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Use the database at --database-url as it is (seeded by an earlier
    /// run) instead of creating a fresh one; seeds only up to each scale.
    #[arg(long)]
    existing: bool,
    /// Only print the query plans of the list and inspect queries for the
    /// existing database at --database-url (no seeding, no timing).
    #[arg(long)]
    explain_only: bool,
    /// Also write SVG charts of the report into this folder (created if
    /// missing): list latency against scale, ORM/sqlx ratios, transitions
    /// against writers, drain rate against backlog.
    #[arg(long, value_name = "DIR")]
    plot: Option<PathBuf>,
    /// Draw the charts (into --plot DIR) of a report an earlier run printed
    /// with --json, and run nothing.
    #[arg(long, value_name = "REPORT", requires = "plot")]
    replot: Option<PathBuf>,
}

/// The drain's backlogs; empty skips the drain.
#[derive(Clone, Debug)]
struct Backlogs(Vec<u64>);

/// Parses `--drain`: comma-separated positive counts, or nothing at all.
fn backlogs(s: &str) -> Result<Backlogs, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!(
                "'{p}' is not a positive count; give backlogs like 1000,10000 or '' to skip the drain"
            )),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Backlogs)
}

/// Where the benchmark's databases live.
struct Target {
    backend: String,
    admin_url: Option<String>,
    folder: PathBuf,
    created: Vec<String>,
}

impl Target {
    /// A fresh, migrated database; returns its URL.
    async fn fresh(&mut self, tag: &str) -> String {
        match self.backend.as_str() {
            "sqlite" => {
                std::fs::create_dir_all(&self.folder).unwrap();
                let path = self.folder.join(format!("bench-{tag}.db"));
                for ext in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
                }
                format!("sqlite://{}", path.display())
            }
            _ => {
                let admin = self
                    .admin_url
                    .clone()
                    .expect("--database-url is required for servers");
                let name = format!("fsbench_{tag}_{}", std::process::id());
                let conn = Database::connect(&admin).await.unwrap();
                conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}"))
                    .await
                    .unwrap();
                conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .unwrap();
                self.created.push(name.clone());
                flowstate_store::connect::with_database(&admin, &name)
            }
        }
    }

    async fn drop_all(&mut self) {
        let Some(admin) = &self.admin_url else { return };
        let conn = Database::connect(admin.as_str()).await.unwrap();
        for name in self.created.drain(..) {
            let force = if self.backend == "postgres" {
                " WITH (FORCE)"
            } else {
                ""
            };
            let _ = conn
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}{force}"))
                .await;
        }
    }
}

async fn open(url: &str) -> SeaStore {
    let mut config = StorageConfig::default().with_url(url).unwrap();
    config.max_connections = 16;
    SeaStore::open(&config).await.unwrap()
}

fn stmt(db: &DatabaseConnection, sql: &str) -> Statement {
    let sql = if db.get_database_backend() == DbBackend::Postgres {
        baseline::numbered(sql)
    } else {
        sql.to_owned()
    };
    Statement::from_string(db.get_database_backend(), sql)
}

async fn scalar(db: &DatabaseConnection, sql: &str) -> i64 {
    db.query_one_raw(stmt(db, sql))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap()
}

async fn ids(db: &DatabaseConnection, sql: &str) -> Vec<Uuid> {
    db.query_all_raw(stmt(db, sql))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get_by_index::<Uuid>(0).unwrap())
        .collect()
}

/// Sets ids' rows with `set` (an SQL assignment list), 1000 ids a statement.
async fn update_ids(db: &DatabaseConnection, set: &str, ids: &[Uuid]) {
    for chunk in ids.chunks(1000) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let mut s = stmt(
            db,
            &format!("UPDATE executions SET {set} WHERE id IN ({marks})"),
        );
        s.values = Some(sea_orm::Values(chunk.iter().map(|u| (*u).into()).collect()));
        db.execute_raw(s).await.unwrap();
    }
}

struct Bench {
    store: Arc<SeaStore>,
    db: DatabaseConnection,
    quick: bool,
    wf: Uuid,
}

/// The `i`-th move of an execution that alternates RUNNING -> WAITING ->
/// RUNNING, from version `v`: the transition the write scenarios repeat.
fn flip(i: usize, v: i64) -> ExecutionTransition {
    let to = if i.is_multiple_of(2) {
        ExecutionState::Waiting
    } else {
        ExecutionState::Running
    };
    let mut t = ExecutionTransition::new(to, v);
    t.wake_at = Some(Utc::now());
    t
}

fn row(label: &str, store: &Samples, raw: Option<&Samples>) -> Value {
    let mut v = json!({"scenario": label, "store": store.json()});
    if let Some(raw) = raw {
        v["sqlx"] = raw.json();
        v["ratioP50"] = json!(
            ((store.p50().as_secs_f64() / raw.p50().as_secs_f64().max(1e-9)) * 100.0).round()
                / 100.0
        );
    }
    v
}

impl Bench {
    fn n(&self, full: usize) -> usize {
        if self.quick {
            (full / 10).max(20)
        } else {
            full
        }
    }

    async fn sample_ids(&self, state: &str, n: usize) -> Vec<Uuid> {
        ids(&self.db, &format!("SELECT id FROM executions WHERE state = '{state}' ORDER BY created_at DESC LIMIT {n}")).await
    }

    /// Scenario 11: the read commands as processes against sqlite3.
    async fn cli(
        &self,
        flowstate: &std::path::Path,
        file: &std::path::Path,
        wfs: &[Uuid],
    ) -> Vec<Value> {
        if !flowstate.is_file() {
            return vec![
                json!({"scenario": "CLI against sqlite3", "skipped": format!("no flowstate binary at {}; build it (cargo build --release -p flowstate)", flowstate.display())}),
            ];
        }
        // A seeded execution: 5 task runs, 20 log lines.
        let execution = ids(
            &self.db,
            &format!(
                "SELECT id FROM executions WHERE workflow_id = {} AND state = 'SUCCEEDED' LIMIT 1",
                uuid_literal(&self.db, wfs[3])
            ),
        )
        .await[0];
        let runs = if self.quick { 3 } else { 21 };
        cli::compare(
            flowstate,
            file,
            execution,
            (wfs[3], "bench-wf-03"),
            wfs,
            runs,
        )
    }

    /// A RUNNING execution of its own for transition loops.
    async fn running_execution(&self) -> Execution {
        let (e, _) = self
            .store
            .create_execution(NewExecution {
                workflow_id: self.wf,
                input: json!({}),
                task_keys: vec!["t".into()],
            })
            .await
            .unwrap();
        let v = self
            .store
            .transition_execution(e.id, ExecutionTransition::new(ExecutionState::Running, 1))
            .await
            .unwrap();
        Execution {
            version: v,
            state: ExecutionState::Running,
            ..e
        }
    }

    /// Scenario 1: ORM tax: get by id, versioned transition, single insert.
    async fn orm_tax(&self) -> Vec<Value> {
        let n = self.n(2000);
        let sample = self.sample_ids("SUCCEEDED", n.min(1000)).await;
        let store = &self.store;
        let get_store = Samples::time(n, |i| store.get_execution(sample[i % sample.len()])).await;
        let e1 = self.running_execution().await;
        let mut v = e1.version;
        let mut ts = Vec::with_capacity(n);
        let start = Instant::now();
        for i in 0..n {
            let t = flip(i, v);
            let s = Instant::now();
            v = store.transition_execution(e1.id, t).await.unwrap();
            ts.push(s.elapsed());
        }
        let tr_store = Samples::from(ts, start.elapsed());
        let line = |id: Uuid| NewLogLine {
            execution_id: id,
            task_run_id: None,
            attempt: None,
            ts: Utc::now(),
            stream: LogStream::Stdout,
            line: "one line".into(),
        };
        let ins_store = Samples::time(n, |_| store.append_logs(vec![line(e1.id)])).await;

        let e2 = self.running_execution().await;
        // The same three operations by hand, for one backend module of `baseline`.
        macro_rules! raw {
            ($m:ident, $pool:expr) => {{
                let pool = $pool;
                let g =
                    Samples::time(n, |i| baseline::$m::get(pool, sample[i % sample.len()])).await;
                let mut ts = Vec::new();
                let start = Instant::now();
                for (v, i) in (e2.version..).zip(0..n) {
                    let to = if i % 2 == 0 { "WAITING" } else { "RUNNING" };
                    let s = Instant::now();
                    assert_eq!(baseline::$m::transition(pool, e2.id, v, to).await, 1);
                    ts.push(s.elapsed());
                }
                let t = Samples::from(ts, start.elapsed());
                let ins =
                    Samples::time(n, |_| baseline::$m::insert_log(pool, e2.id, "one line")).await;
                (g, t, ins)
            }};
        }
        let (get_raw, tr_raw, ins_raw) = match self.db.get_database_backend() {
            DbBackend::Sqlite => raw!(sqlite, self.db.get_sqlite_connection_pool()),
            DbBackend::Postgres => raw!(postgres, self.db.get_postgres_connection_pool()),
            _ => {
                return vec![
                    row("get by id", &get_store, None),
                    row("versioned transition", &tr_store, None),
                    row("single insert (log line)", &ins_store, None),
                ]
            }
        };
        vec![
            row("get by id", &get_store, Some(&get_raw)),
            row("versioned transition", &tr_store, Some(&tr_raw)),
            row("single insert (log line)", &ins_store, Some(&ins_raw)),
        ]
    }

    /// Scenario 2: Create an execution with N task runs in one transaction.
    async fn create(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for (tasks, reps) in [(1usize, 300usize), (10, 200), (100, 50), (1000, 10)] {
            let keys: Vec<String> = (0..tasks).map(|i| format!("t{i}")).collect();
            let store = &self.store;
            let s = Samples::time(self.n(reps), |_| {
                store.create_execution(NewExecution {
                    workflow_id: self.wf,
                    input: json!({}),
                    task_keys: keys.clone(),
                })
            })
            .await;
            out.push(row(&format!("create with {tasks} task runs"), &s, None));
        }
        // These executions are PENDING; finish them so they do not skew what follows.
        self.db
            .execute_raw(stmt(&self.db, &format!(
                "UPDATE executions SET state = 'SUCCEEDED', finished_at = updated_at WHERE workflow_id = {} AND state = 'PENDING'",
                uuid_literal(&self.db, self.wf)
            )))
            .await
            .unwrap();
        out
    }

    /// Scenario 3: Versioned transitions per second with 1 and 8 writers.
    async fn transitions(&self, store: Arc<SeaStore>, label: &str) -> Vec<Value> {
        let mut out = Vec::new();
        for writers in [1usize, 8] {
            let per = self.n(4000) / writers;
            let mut handles = Vec::new();
            let start = Instant::now();
            for _ in 0..writers {
                let store = store.clone();
                let e = self.running_execution().await;
                handles.push(tokio::spawn(async move {
                    let mut v = e.version;
                    let mut times = Vec::with_capacity(per);
                    let mut locked = 0u64;
                    for i in 0..per {
                        let t = flip(i, v);
                        let s = Instant::now();
                        match store.transition_execution(e.id, t).await {
                            Ok(nv) => v = nv,
                            Err(err) => {
                                if err.to_string().contains("locked")
                                    || err.to_string().contains("busy")
                                {
                                    locked += 1;
                                }
                                v = store.get_execution(e.id).await.unwrap().version;
                            }
                        }
                        times.push(s.elapsed());
                    }
                    (times, locked)
                }));
            }
            let mut all = Vec::new();
            let mut locked = 0;
            for h in handles {
                let (t, l) = h.await.unwrap();
                all.extend(t);
                locked += l;
            }
            let s = Samples::from(all, start.elapsed());
            let mut v = row(
                &format!("transitions, {writers} writer(s){label}"),
                &s,
                None,
            );
            v["lockedErrors"] = json!(locked);
            out.push(v);
        }
        out
    }

    /// Scenario 4: Append 10k log lines in batches of 100 and 1000.
    async fn logs(&self) -> Vec<Value> {
        let e = self.running_execution().await;
        let mut out = Vec::new();
        let total = self.n(10_000);
        for batch in [100usize, 1000] {
            let lines = |k: usize| -> Vec<NewLogLine> {
                (0..k)
                    .map(|i| NewLogLine {
                        execution_id: e.id,
                        task_run_id: None,
                        attempt: None,
                        ts: Utc::now(),
                        stream: LogStream::Stdout,
                        line: format!("line {i}"),
                    })
                    .collect()
            };
            let store = &self.store;
            let s = Samples::time(total / batch, |_| store.append_logs(lines(batch))).await;
            let raw = match self.db.get_database_backend() {
                DbBackend::Sqlite => Some(
                    Samples::time(total / batch, |_| {
                        baseline::sqlite::append_logs(
                            self.db.get_sqlite_connection_pool(),
                            e.id,
                            batch,
                        )
                    })
                    .await,
                ),
                DbBackend::Postgres => Some(
                    Samples::time(total / batch, |_| {
                        baseline::postgres::append_logs(
                            self.db.get_postgres_connection_pool(),
                            e.id,
                            batch,
                        )
                    })
                    .await,
                ),
                _ => None,
            };
            let mut v = row(
                &format!("append logs, batches of {batch}"),
                &s,
                raw.as_ref(),
            );
            v["linesPerSec"] = json!((s.per_sec() * batch as f64).round());
            out.push(v);
        }
        out
    }

    /// Scenario 5: Lists: every shape's first page, deep pages, and the count.
    async fn lists(&self, wfs: &[Uuid], total_rows: u64) -> Vec<Value> {
        let reps = self.n(300);
        let wf = Some(wfs[3]);
        let (since_at, until_at) = (
            Utc::now() - ChronoDuration::days(60),
            Utc::now() - ChronoDuration::days(30),
        );
        let (since, until) = (Some(since_at), Some(until_at));
        let shapes = list_shapes(wf, since, until);
        let mut out = Vec::new();
        for (label, q) in shapes {
            let store = &self.store;
            let s = Samples::time(reps, |_| store.list_executions(q.clone())).await;
            out.push(row(label, &s, None));
        }
        // The filtered page against the raw SQL, by offset 0 and by cursor.
        let (since, until) = (since_at, until_at);
        let q = ExecutionQuery {
            workflow_id: wf,
            states: vec![ExecutionState::Succeeded],
            since: Some(since),
            until: Some(until),
            ..Default::default()
        };
        let store = &self.store;
        let s = Samples::time(reps, |_| store.list_executions(q.clone())).await;
        let raw = match self.db.get_database_backend() {
            DbBackend::Sqlite => Some(
                Samples::time(reps, |_| {
                    baseline::sqlite::list(
                        self.db.get_sqlite_connection_pool(),
                        wfs[3],
                        "SUCCEEDED",
                        since,
                        until,
                        0,
                    )
                })
                .await,
            ),
            DbBackend::Postgres => Some(
                Samples::time(reps, |_| {
                    baseline::postgres::list(
                        self.db.get_postgres_connection_pool(),
                        wfs[3],
                        "SUCCEEDED",
                        since,
                        until,
                        0,
                    )
                })
                .await,
            ),
            _ => None,
        };
        out.push(row(
            "filtered first page (page + capped count) vs raw page",
            &s,
            raw.as_ref(),
        ));

        // Deep: page 10,000 (offset 500,000) of the unfiltered list, or as deep as the table allows.
        let depth = (total_rows / 2).min(500_000);
        let at = self
            .db
            .query_one_raw(stmt(&self.db, &format!("SELECT created_at, id FROM executions ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET {depth}")))
            .await
            .unwrap()
            .unwrap();
        let cursor = query::cursor_at(
            at.try_get_by_index(0).unwrap(),
            at.try_get_by_index(1).unwrap(),
        );
        let deep_cursor = Samples::time(reps, |_| {
            store.list_executions(ExecutionQuery {
                after: Some(cursor.clone()),
                ..Default::default()
            })
        })
        .await;
        let first = Samples::time(reps, |_| store.list_executions(ExecutionQuery::default())).await;
        let mut v = row(
            &format!("keyset page {} deep (offset {depth})", depth / 50),
            &deep_cursor,
            Some(&first),
        );
        v["note"] = json!("sqlx column here is the store's first page: the ratio is deep/first");
        out.push(v);
        let deep_offset = Samples::time(self.n(20), |_| {
            self.db.query_all_raw(stmt(&self.db, &format!(
                "SELECT id FROM executions ORDER BY created_at DESC, id DESC LIMIT 51 OFFSET {depth}"
            )))
        })
        .await;
        let mut v = row(
            &format!("raw OFFSET {depth} (refused by the store past 10000)"),
            &deep_offset,
            None,
        );
        v["note"] = json!("what deep offsets would cost: why they are capped");
        out.push(v);

        // The count: exact vs capped at 10000, unfiltered and by workflow.
        for (label, q) in [
            (
                "count: exact, all rows",
                ExecutionQuery {
                    exact_total: true,
                    ..Default::default()
                },
            ),
            (
                "count: capped at 10000, all rows",
                ExecutionQuery::default(),
            ),
            (
                "count: exact, one workflow",
                ExecutionQuery {
                    workflow_id: wf,
                    exact_total: true,
                    ..Default::default()
                },
            ),
            (
                "count: capped, one workflow",
                ExecutionQuery {
                    workflow_id: wf,
                    ..Default::default()
                },
            ),
        ] {
            let st = query::execution_count_statement(self.db.get_database_backend(), &q);
            let s = Samples::time(self.n(50), |_| self.db.query_one_raw(st.clone())).await;
            out.push(row(label, &s, None));
        }
        out
    }

    /// Scenario 6: Inspect: execution + task runs + attempts + outputs (4 queries).
    async fn inspect(&self) -> Vec<Value> {
        let sample = self.sample_ids("SUCCEEDED", 500).await;
        let store = &self.store;
        let s = Samples::time(self.n(1000), |i| {
            store.get_execution_detail(sample[i % sample.len()])
        })
        .await;
        vec![row("inspect (4 queries)", &s, None)]
    }

    /// Scenario 7: Recovery of K RUNNING executions of a dead node inside the table.
    async fn recovery(&self, total_rows: u64) -> Vec<Value> {
        let mut out = Vec::new();
        for k in [1_000u64, 10_000, 100_000] {
            if k * 5 > total_rows {
                continue;
            }
            let victims = self.sample_ids("SUCCEEDED", k as usize).await;
            update_ids(&self.db, "state = 'RUNNING', owner = 'bench-dead', lease_expires_at = NULL, finished_at = NULL", &victims).await;
            let start = Instant::now();
            let report = self.store.recover("bench-dead", Utc::now()).await.unwrap();
            let took = start.elapsed();
            // At least the victims (also any RUNNING row this run left
            // without an owner). Those whose task runs had all SUCCEEDED
            // are finished SUCCEEDED, the others FAILED.
            let ended = (report.failed.len() + report.succeeded.len()) as u64;
            assert!(ended >= k, "recovered {ended} of {k}");
            out.push(json!({"scenario": format!("recover {k} RUNNING"), "failed": report.failed.len(), "succeeded": report.succeeded.len(), "ms": ms(took), "perSec": (ended as f64 / took.as_secs_f64()).round()}));
        }
        out
    }

    /// Scenario 8: Retention: purge the oldest 5% twice, in batches of 1k then of 10k,
    /// while a writer keeps transitioning; reports the writer's worst latency.
    async fn retention(&self, total_rows: u64) -> Vec<Value> {
        let mut out = Vec::new();
        let mut share = 0.0;
        for batch in [1_000u64, 10_000] {
            share += 0.05;
            let rank = ((total_rows as f64) * share) as u64;
            let cutoff: chrono::DateTime<Utc> = self
                .db
                .query_one_raw(stmt(&self.db, &format!("SELECT finished_at FROM executions WHERE finished_at IS NOT NULL ORDER BY finished_at LIMIT 1 OFFSET {rank}")))
                .await
                .unwrap()
                .map(|r| r.try_get_by_index(0).unwrap())
                .unwrap_or_else(Utc::now);
            let writer_store = self.store.clone();
            let e = self.running_execution().await;
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let writer = {
                let stop = stop.clone();
                tokio::spawn(async move {
                    let mut v = e.version;
                    let mut worst = Duration::ZERO;
                    let mut i = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let t = flip(i, v);
                        let s = Instant::now();
                        v = writer_store.transition_execution(e.id, t).await.unwrap();
                        worst = worst.max(s.elapsed());
                        i += 1;
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    (worst, i)
                })
            };
            let start = Instant::now();
            let report = self.store.purge(cutoff, batch, false).await.unwrap();
            let took = start.elapsed();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let (worst, writes) = writer.await.unwrap();
            let c = report.counts;
            let rows = c.executions + c.task_runs + c.attempts + c.outputs + c.logs;
            out.push(json!({
                "scenario": format!("purge {} executions, batches of {batch}", c.executions),
                "rows": rows,
                "ms": ms(took),
                "rowsPerSec": (rows as f64 / took.as_secs_f64()).round(),
                "longestBatchMs": ms(report.longest_batch),
                "writerWorstMs": ms(worst),
                "writerWrites": writes,
            }));
        }
        out
    }

    /// Scenario 9: Claiming with 1, 2, 4, 8 claimers, batches of 1 and 10.
    async fn claims(&self, url: &str) -> Vec<Value> {
        let backlog = self.n(2000);
        let tx = self.store.begin().await.unwrap();
        for _ in 0..backlog {
            tx.create_execution(NewExecution {
                workflow_id: self.wf,
                input: json!({}),
                task_keys: vec!["t".into()],
            })
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        let mut out = Vec::new();
        for batch in [1u64, 10] {
            for claimers in [1usize, 2, 4, 8] {
                let mut stores = Vec::new();
                for _ in 0..claimers {
                    stores.push(Arc::new(open(url).await));
                }
                let claimed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                let start = Instant::now();
                let mut handles = Vec::new();
                for (c, store) in stores.into_iter().enumerate() {
                    let claimed = claimed.clone();
                    handles.push(tokio::spawn(async move {
                        let mut mine = Vec::new();
                        let mut times = Vec::new();
                        while claimed.load(std::sync::atomic::Ordering::Relaxed) < backlog {
                            let s = Instant::now();
                            let got = store
                                .claim_due(
                                    &format!("bench-claim-{c}"),
                                    batch,
                                    Duration::from_secs(600),
                                )
                                .await
                                .unwrap();
                            times.push(s.elapsed());
                            if got.is_empty() {
                                break;
                            }
                            claimed.fetch_add(got.len(), std::sync::atomic::Ordering::Relaxed);
                            mine.extend(got.into_iter().map(|e| e.id));
                        }
                        (mine, times)
                    }));
                }
                let mut seen = HashSet::new();
                let mut dup = 0;
                let mut times = Vec::new();
                for h in handles {
                    let (mine, t) = h.await.unwrap();
                    times.extend(t);
                    for id in mine {
                        if !seen.insert(id) {
                            dup += 1;
                        }
                    }
                }
                let took = start.elapsed();
                let s = Samples::from(times, took);
                out.push(json!({
                    "scenario": format!("claim_due, {claimers} claimer(s), batch {batch}"),
                    "claimed": seen.len(),
                    "claimsPerSec": (seen.len() as f64 / took.as_secs_f64()).round(),
                    "callP50Ms": ms(s.p50()),
                    "duplicates": dup,
                }));
                self.db
                    .execute_raw(stmt(&self.db, "UPDATE executions SET state = 'PENDING', owner = NULL, lease_expires_at = NULL WHERE owner LIKE 'bench-claim-%'"))
                    .await
                    .unwrap();
            }
        }
        out
    }
}

/// Every list shape measured: each filter alone, combinations, a state no
/// row has, and a created-at range.
fn list_shapes(
    wf: Option<Uuid>,
    since: Option<chrono::DateTime<Utc>>,
    until: Option<chrono::DateTime<Utc>>,
) -> Vec<(&'static str, ExecutionQuery)> {
    let one = |s| vec![s];
    let q = ExecutionQuery::default;
    vec![
        ("list: newest first", q()),
        (
            "list: by workflow",
            ExecutionQuery {
                workflow_id: wf,
                ..q()
            },
        ),
        (
            "list: by state RUNNING",
            ExecutionQuery {
                states: one(ExecutionState::Running),
                ..q()
            },
        ),
        (
            "list: by a state no row has",
            ExecutionQuery {
                states: one(ExecutionState::Cancelled),
                ..q()
            },
        ),
        (
            "list: by time range",
            ExecutionQuery {
                since,
                until,
                ..q()
            },
        ),
        (
            "list: workflow + state",
            ExecutionQuery {
                workflow_id: wf,
                states: one(ExecutionState::Succeeded),
                ..q()
            },
        ),
        (
            "list: workflow + state + range",
            ExecutionQuery {
                workflow_id: wf,
                states: one(ExecutionState::Succeeded),
                since,
                until,
                ..q()
            },
        ),
    ]
}

/// The plans of every list shape and of the inspect lookups, as the database
/// reports them (EXPLAIN QUERY PLAN on SQLite, EXPLAIN on the servers).
async fn plans(db: &DatabaseConnection) -> Vec<Value> {
    let backend = db.get_database_backend();
    let wf = ids(db, "SELECT id FROM workflows WHERE name = 'bench-wf-03'")
        .await
        .first()
        .copied();
    let exec = ids(
        db,
        "SELECT id FROM executions WHERE state = 'SUCCEEDED' ORDER BY created_at DESC LIMIT 1",
    )
    .await[0];
    let since = Some(Utc::now() - ChronoDuration::days(60));
    let until = Some(Utc::now() - ChronoDuration::days(30));
    let mut statements: Vec<(String, Statement)> = Vec::new();
    for (label, q) in list_shapes(wf, since, until) {
        statements.push((
            format!("{label} (page)"),
            query::execution_list_statement(backend, &q).unwrap(),
        ));
        statements.push((
            format!("{label} (capped count)"),
            query::execution_count_statement(backend, &q),
        ));
    }
    for (name, st) in query::lookup_statements(backend, exec) {
        statements.push((format!("inspect: {name}"), st));
    }
    let mut out = Vec::new();
    for (label, st) in statements {
        let prefix = if backend == DbBackend::Sqlite {
            "EXPLAIN QUERY PLAN "
        } else {
            "EXPLAIN "
        };
        let explain = Statement {
            sql: format!("{prefix}{}", st.sql),
            ..st
        };
        let rows = db.query_all_raw(explain).await.unwrap();
        let lines: Vec<String> = rows
            .iter()
            .map(|r| match backend {
                DbBackend::Sqlite => r.try_get::<String>("", "detail").unwrap_or_default(),
                DbBackend::Postgres => r.try_get_by_index::<String>(0).unwrap_or_default(),
                _ => format!(
                    "{} {} key={} rows={} {}",
                    r.try_get::<String>("", "table").unwrap_or_default(),
                    r.try_get::<String>("", "type").unwrap_or_default(),
                    r.try_get::<Option<String>>("", "key")
                        .ok()
                        .flatten()
                        .unwrap_or_default(),
                    r.try_get::<Option<i64>>("", "rows")
                        .ok()
                        .flatten()
                        .unwrap_or_default(),
                    r.try_get::<Option<String>>("", "Extra")
                        .ok()
                        .flatten()
                        .unwrap_or_default()
                ),
            })
            .collect();
        out.push(json!({"query": label, "plan": lines}));
    }
    out
}

fn print_plans(plans: &[Value]) {
    for p in plans {
        println!("  {}", p["query"].as_str().unwrap_or(""));
        for line in p["plan"].as_array().into_iter().flatten() {
            println!("      {}", line.as_str().unwrap_or(""));
        }
    }
}

fn uuid_literal(db: &DatabaseConnection, id: Uuid) -> String {
    match db.get_database_backend() {
        DbBackend::Postgres => format!("'{id}'"),
        DbBackend::Sqlite => format!("X'{}'", id.simple()),
        _ => format!("UNHEX('{}')", id.simple()),
    }
}

/// Scenario 10: The engine draining a backlog of one-task executions.
async fn drain(target: &mut Target, backlog: u64, flowstate: &PathBuf) -> Value {
    let url = target.fresh(&format!("drain{backlog}")).await;
    let store = open(&url).await;
    let wf = store
        .save_workflow(NewWorkflow {
            name: "drain".into(),
            definition: json!({"name": "drain", "description": null, "tasks": [{"id": "t", "run": "true", "retries": 0, "retryDelayMs": 1000, "timeoutMs": null, "needs": [], "env": {}}]}),
            description: None,
        })
        .await
        .unwrap()
        .workflow;
    let mut left = backlog;
    while left > 0 {
        let tx = store.begin().await.unwrap();
        for _ in 0..left.min(5000) {
            tx.create_execution(NewExecution {
                workflow_id: wf.id,
                input: json!({}),
                task_keys: vec!["t".into()],
            })
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        left -= left.min(5000);
    }
    let dir = tempfile_dir();
    let config = dir.join(format!("drain-{backlog}.yaml"));
    let storage = storage_yaml(&url);
    // The engine's Prometheus endpoint says how many statements it ran.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    // The console is off: the drain measures the engine alone.
    let engine = format!("engine:\n  metricsAddr: 127.0.0.1:{port}\nserver:\n  enabled: false\n");
    std::fs::write(&config, format!("{storage}{engine}")).unwrap();
    let start = Instant::now();
    let started = Utc::now();
    // The engine's own messages, shown if it stops before the backlog is done.
    let errors = dir.join(format!("drain-{backlog}.stderr"));
    let mut child = std::process::Command::new(flowstate)
        .args(["--config", config.to_str().unwrap(), "serve"])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&errors).unwrap())
        .spawn()
        .expect("start flowstate serve (build it with cargo build --release -p flowstate)");
    let done_q = ExecutionQuery {
        states: vec![ExecutionState::Succeeded],
        exact_total: true,
        limit: Some(1),
        sort: SortOrder::Descending,
        ..Default::default()
    };
    loop {
        let done = store.list_executions(done_q.clone()).await.unwrap().total;
        if done >= backlog {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let said = std::fs::read_to_string(&errors).unwrap_or_default();
            let tail: Vec<&str> = said.lines().rev().take(20).collect();
            eprintln!(
                "error: the drain's engine exited ({status}) with {done} of {backlog} executions done; its last messages:"
            );
            for line in tail.iter().rev() {
                eprintln!("  {line}");
            }
            std::process::exit(1);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let polled = start.elapsed();
    let statements = scrape_counter(port, "flowstate_store_statements_total");
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let _ = child.wait();
    let (half, took) = match finish_times(store.connection(), backlog).await {
        Some((half, last)) => (since(started, half), since(started, last)),
        None => (polled, polled),
    };
    json!({
        "scenario": format!("engine drain, backlog {backlog}"),
        "statementsPerExecution": statements.map(|n| (n / backlog as f64 * 10.0).round() / 10.0),
        "seconds": (took.as_secs_f64() * 100.0).round() / 100.0,
        "perSec": (backlog as f64 / took.as_secs_f64()).round(),
        "firstHalfPerSec": ((backlog / 2) as f64 / half.as_secs_f64()).round(),
        "secondHalfPerSec": ((backlog - backlog / 2) as f64 / (took - half).as_secs_f64().max(1e-3)).round(),
    })
}

/// When the drain's middle execution and its last one finished, by their
/// `finished_at`: the loop above sees the end only at its next poll, 100 ms
/// apart, which made a 1k drain of about 0.9 s read 970/s or 1,220/s for the
/// same run time (measured: the rates of a 1k drain fell on those values).
async fn finish_times(
    db: &DatabaseConnection,
    backlog: u64,
) -> Option<(chrono::DateTime<Utc>, chrono::DateTime<Utc>)> {
    let nth = |offset: u64, order: &str| {
        Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT finished_at FROM executions WHERE state = 'SUCCEEDED' \
                 ORDER BY finished_at {order} LIMIT 1 OFFSET {offset}"
            ),
        )
    };
    let mut times = Vec::new();
    for stmt in [nth((backlog / 2).saturating_sub(1), "ASC"), nth(0, "DESC")] {
        let row = db.query_one_raw(stmt).await.ok()??;
        times.push(row.try_get_by_index::<chrono::DateTime<Utc>>(0).ok()?);
    }
    Some((times[0], times[1]))
}

/// The time from `start` to `end`, zero if `end` is earlier.
fn since(start: chrono::DateTime<Utc>, end: chrono::DateTime<Utc>) -> Duration {
    (end - start).to_std().unwrap_or_default()
}

/// The value of a counter on the Prometheus endpoint at `port` (summed over
/// its labels), by a plain HTTP/1.0 GET; `None` if it cannot be read.
fn scrape_counter(port: u16, name: &str) -> Option<f64> {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    conn.read_to_string(&mut body).ok()?;
    let values: Vec<f64> = body
        .lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// The `flowstate` binary the drain and the CLI scenario run: `--flowstate-bin`,
/// else the one beside this binary.
/// The `storage:` section of a configuration for the database at `url`.
fn storage_yaml(url: &str) -> String {
    if url.starts_with("sqlite") {
        return format!(
            "storage:\n  sqlite:\n    path: {}\n",
            url.trim_start_matches("sqlite://")
        );
    }
    let kind = if url.starts_with("postgres") {
        "postgres"
    } else {
        "mysql"
    };
    format!("storage:\n  type: {kind}\n  {kind}:\n    url: {url}\n")
}

fn flowstate_bin(args: &Args) -> PathBuf {
    args.flowstate_bin.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .unwrap()
            .parent()
            .unwrap()
            .join("flowstate")
    })
}

/// Where the databases go: a server's admin URL, or for SQLite a folder
/// (`--database-url`, or with `--existing` the folder of its file).
fn target_of(args: &Args) -> Target {
    let sqlite = args.backend == "sqlite";
    if !sqlite && args.database_url.is_none() {
        fail(&format!("--database-url is required for {}", args.backend));
    }
    let folder = match (&args.database_url, sqlite) {
        (Some(u), true) if args.existing => sqlite_file(u)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".")),
        (Some(u), true) => PathBuf::from(u.strip_prefix("sqlite://").unwrap_or(u)),
        _ => tempfile_dir(),
    };
    Target {
        backend: args.backend.clone(),
        admin_url: args.database_url.clone().filter(|_| !sqlite),
        folder,
        created: Vec::new(),
    }
}

/// The file of a SQLite URL or plain path, without its query string.
fn sqlite_file(url: &str) -> PathBuf {
    let path = url.strip_prefix("sqlite://").unwrap_or(url);
    PathBuf::from(path.split('?').next().unwrap_or(path))
}

/// The database `--existing` names; for SQLite it must be a file that is
/// there (a folder or a missing file would be created empty and measured).
fn existing_url(args: &Args) -> String {
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| fail("--existing needs --database-url"));
    if args.backend != "sqlite" {
        return url;
    }
    let file = sqlite_file(&url);
    if !file.is_file() {
        fail(&format!(
            "--existing: '{}' is not a database file; give the file a previous run seeded",
            file.display()
        ));
    }
    format!("sqlite://{}", file.display())
}

/// Exits with a usage error.
fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(2)
}

fn tempfile_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("flowstate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn print(rows: &[Value]) {
    if rows.iter().any(|r| r.get("plan").is_some()) {
        return print_plans(rows);
    }
    for r in rows {
        let name = r["scenario"].as_str().unwrap_or("");
        let mut parts = Vec::new();
        if let Some(s) = r.get("store") {
            parts.push(format!(
                "store p50 {} p95 {} p99 {} ms, {}/s",
                s["p50Ms"], s["p95Ms"], s["p99Ms"], s["perSec"]
            ));
        }
        if let Some(s) = r.get("sqlx") {
            parts.push(format!(
                "sqlx p50 {} p95 {} ms, {}/s",
                s["p50Ms"], s["p95Ms"], s["perSec"]
            ));
        }
        for (k, v) in r.as_object().unwrap() {
            if !["scenario", "store", "sqlx", "note"].contains(&k.as_str()) {
                parts.push(format!("{k} {v}"));
            }
        }
        println!("  {name:58} {}", parts.join("; "));
    }
}

#[tokio::main]
async fn main() {
    let mut args = Args::parse();
    if args.quick || args.no_drain {
        args.drain.0.clear();
    }
    if args.quick {
        args.scale = vec![1000];
    }
    if !["sqlite", "postgres", "mysql"].contains(&args.backend.as_str()) {
        eprintln!(
            "error: unknown --backend '{}'; expected one of sqlite, postgres, mysql",
            args.backend
        );
        std::process::exit(2);
    }
    if args.explain_only {
        let url = args.database_url.clone().unwrap_or_else(|| {
            eprintln!("error: --explain-only needs --database-url pointing at a seeded database");
            std::process::exit(2);
        });
        let store = open(&url).await;
        let p = plans(store.connection()).await;
        if args.json {
            println!("{}", json!(p));
        } else {
            print_plans(&p);
        }
        return;
    }
    if let Some(file) = &args.replot {
        return replot(file, args.plot.as_deref().expect("clap requires --plot"));
    }
    if let Some(dir) = &args.plot {
        // Checked before hours of measuring, not after.
        if let Err(e) = std::fs::create_dir_all(dir) {
            fail(&format!("--plot: cannot create {}: {e}", dir.display()));
        }
    }
    run(args).await;
}

/// Seeds, measures every scale, drains, and reports.
async fn run(args: Args) {
    let mut target = target_of(&args);
    let url = if args.existing {
        existing_url(&args)
    } else {
        target.fresh("main").await
    };
    let store = Arc::new(open(&url).await);
    let db = store.connection().clone();
    let wfs = seed::workflows(&db).await;
    let seeder = seed::connection(&db, &url).await;
    let bench = Bench {
        store: store.clone(),
        db: db.clone(),
        quick: args.quick,
        wf: bench_workflow(&store).await,
    };
    let mut report = json!({"backend": args.backend, "scales": []});
    let mut seeded = scalar(&db, "SELECT COUNT(*) FROM executions").await as u64;
    for &n in &args.scale {
        let mut seeding = Value::Null;
        if n > seeded {
            seeding = seed_to(&seeder, &db, &wfs, (seeded, n), !args.json).await;
            seeded = n;
        }
        let rows = scalar(&db, "SELECT COUNT(*) FROM executions").await as u64;
        let mut sections = Vec::new();
        let mut section = |name: &str, rows: Vec<Value>| {
            if !args.json {
                println!("[{} @ {n}] {name}", args.backend);
                print(&rows);
            }
            sections.push(json!({"section": name, "rows": rows}));
        };
        section("1. ORM tax", bench.orm_tax().await);
        section("2. create execution", bench.create().await);
        let mut tr = bench.transitions(store.clone(), "").await;
        if db.get_database_backend() == DbBackend::Sqlite {
            let full = full_sync_store(&url).await;
            tr.extend(bench.transitions(full, ", synchronous FULL").await);
        }
        section("3. transitions", tr);
        section("4. logs", bench.logs().await);
        section("5. lists", bench.lists(&wfs, rows).await);
        section("6. inspect", bench.inspect().await);
        if db.get_database_backend() == DbBackend::Sqlite {
            let file = sqlite_file(&url);
            section(
                "11. CLI against sqlite3",
                bench.cli(&flowstate_bin(&args), &file, &wfs).await,
            );
        }
        let yaml = storage_yaml(&url);
        let bin = flowstate_bin(&args);
        let api = console::measure(&bin, &yaml, &tempfile_dir(), args.quick).await;
        section("12. console", api);
        section("7. recovery", bench.recovery(rows).await);
        section("9. claiming", bench.claims(&url).await);
        if Some(&n) == args.scale.last() {
            section("query plans", plans(&db).await);
        }
        section("8. retention", bench.retention(rows).await);
        report["scales"]
            .as_array_mut()
            .unwrap()
            .push(json!({"executions": rows, "seeding": seeding, "sections": sections}));
    }
    drains(&args, &mut target, &mut report).await;
    store.close().await.unwrap();
    target.drop_all().await;
    if let Some(dir) = &args.plot {
        draw(dir, &report);
    }
    if args.json {
        println!("{report}");
    }
}

/// Scenario 10: the engine drain at each backlog, with the spawn floor.
async fn drains(args: &Args, target: &mut Target, report: &mut Value) {
    if args.drain.0.is_empty() {
        return;
    }
    let bin = flowstate_bin(args);
    let mut rows = Vec::new();
    for &b in &args.drain.0 {
        rows.push(drain(target, b, &bin).await);
    }
    if !args.json {
        println!("[{}] 10. engine drain", args.backend);
        print(&rows);
    }
    report["drain"] = json!(rows);
    report["spawnFloorPerSec"] = json!(spawn_floor());
}

/// The workflow the operation scenarios create their executions under.
async fn bench_workflow(store: &SeaStore) -> Uuid {
    store
        .save_workflow(NewWorkflow {
            name: "bench-ops".into(),
            definition: json!({}),
            description: None,
        })
        .await
        .unwrap()
        .workflow
        .id
}

/// Seeds executions `from..to` (numbered) and says how fast it went.
async fn seed_to(
    seeder: &DatabaseConnection,
    db: &DatabaseConnection,
    wfs: &[Uuid],
    (from, to): (u64, u64),
    say: bool,
) -> Value {
    let start = Instant::now();
    seed::executions(seeder, wfs, from, to - from).await;
    let took = start.elapsed().as_secs_f64();
    if say {
        eprintln!("seeded {} executions in {took:.1}s", to - from);
    }
    if db.get_database_backend() == DbBackend::Postgres {
        // What autovacuum does soon after a bulk insert in a live
        // deployment: statistics, and the visibility map that lets a count
        // read the index alone. With ANALYZE only, the capped count for one
        // workflow read the heap: 12.8 ms at 1M.
        db.execute_unprepared("VACUUM ANALYZE").await.unwrap();
    }
    json!({
        "added": to - from,
        "seconds": (took * 10.0).round() / 10.0,
        "perSec": ((to - from) as f64 / took).round(),
    })
}

/// A second store on the SQLite file at `url` whose connections sync every
/// commit to disk (`synchronous=FULL`), for the transitions scenario.
async fn full_sync_store(url: &str) -> Arc<SeaStore> {
    let path = url.trim_start_matches("sqlite://").to_owned();
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(16)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(move |o| {
            o.filename(&path)
                .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5))
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Full)
        });
    Arc::new(
        SeaStore::from_connection(Database::connect(opts).await.unwrap(), false)
            .await
            .unwrap(),
    )
}

/// `--replot`: the charts of a saved JSON report.
fn replot(file: &std::path::Path, dir: &std::path::Path) {
    let text = std::fs::read_to_string(file)
        .unwrap_or_else(|e| fail(&format!("--replot: cannot read {}: {e}", file.display())));
    let report: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        fail(&format!(
            "--replot: {} is not a report printed with --json: {e}",
            file.display()
        ))
    });
    draw(dir, &report);
}

/// Writes the charts of `report` into `dir` and names each file written.
fn draw(dir: &std::path::Path, report: &Value) {
    match plot::write(dir, report) {
        Ok(files) => files.iter().for_each(|f| eprintln!("wrote {f}")),
        Err(e) => fail(&format!("--plot: {e}")),
    }
}

/// How many `sh -c true` processes 4 threads start and reap per second: the
/// ceiling the drain (4 workers, `run: true`) cannot pass on this machine.
fn spawn_floor() -> f64 {
    let per = 300;
    let start = Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..per {
                    let ok = std::process::Command::new("sh")
                        .args(["-c", "true"])
                        .status()
                        .is_ok_and(|s| s.success());
                    assert!(ok, "sh -c true failed");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    (4.0 * per as f64 / start.elapsed().as_secs_f64()).round()
}
