//! Query plans on SQLite with 10,000 executions x 5 task runs: every list and
//! lookup the store runs is answered from an index, in index order, without
//! walking the whole table and without a temporary sort. On PostgreSQL: lists
//! are planned for their values at every run, and the engine's statements,
//! whose plans the server caches, keep their indexes in those cached plans.

use chrono::{Duration as ChronoDuration, Utc};
use flowstate_store::query::{self, ExecutionQuery, LogQuery, SortOrder, WorkflowQuery};
use flowstate_store::types::{ExecutionState, NewExecution, NewLogLine};
use flowstate_store::{StateOps, StateStore};
use flowstate_tests::{empty_workflow, query_count, Backend, TestDb};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde_json::json;

/// Ten thousand executions over four workflows and about ninety days, with
/// the state mix of a real deployment and no CANCELLED row at all.
const SEED: &str = "
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 9999)
INSERT INTO executions (id, workflow_id, workflow_version, state, reason, input, version,
                        owner, created_at, updated_at, finished_at)
SELECT randomblob(16),
       w.id,
       1,
       CASE WHEN i % 20 = 0 THEN 'RUNNING' WHEN i % 20 = 1 THEN 'PENDING'
            WHEN i % 20 = 2 THEN 'WAITING' WHEN i % 3 = 0 THEN 'FAILED' ELSE 'SUCCEEDED' END,
       CASE WHEN i % 20 > 2 AND i % 3 = 0 THEN
            CASE WHEN i % 97 = 0 THEN 'CRASH_RECOVERY' ELSE 'TASK_FAILED' END END,
       '{}', 1,
       CASE WHEN i % 20 = 0 THEN 'node-' || (i % 3) END,
       strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', '-' || (i * 13) || ' minutes'),
       strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', '-' || (i * 13) || ' minutes'),
       CASE WHEN i % 20 > 2 THEN strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', '-' || (i * 13 - 5) || ' minutes') END
FROM n JOIN (SELECT id, ROW_NUMBER() OVER (ORDER BY name) - 1 AS k FROM workflows) w ON w.k = n.i % 4;
INSERT INTO task_runs (id, execution_id, task_key, position, state, version, attempt_count,
                       created_at, updated_at)
SELECT randomblob(16), e.id, 'task-' || p.i, p.i, 'SUCCEEDED', 1, 1, e.created_at, e.created_at
FROM executions e
CROSS JOIN (SELECT 0 AS i UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4) p;
";

async fn plan(db: &DatabaseConnection, stmt: &Statement) -> Vec<String> {
    let explain = Statement {
        sql: format!("EXPLAIN QUERY PLAN {}", stmt.sql),
        ..stmt.clone()
    };
    db.query_all_raw(explain)
        .await
        .unwrap_or_else(|e| panic!("explain {}: {e}", stmt.sql))
        .iter()
        .map(|r| r.try_get::<String>("", "detail").unwrap())
        .collect()
}

/// A plan that reads a table row by row from start to end, or sorts.
fn bad_steps(steps: &[String], table: &str) -> Vec<String> {
    steps
        .iter()
        .filter(|d| {
            let walks_table = d.starts_with(&format!("SCAN {table}")) && !d.contains("INDEX");
            walks_table || d.contains("TEMP B-TREE")
        })
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_lookup_queries_use_the_indexes() {
    let db = TestDb::create(Backend::Sqlite).await.unwrap();
    let store = db.store().await;
    let mut workflows = Vec::new();
    for name in ["w0", "w1", "w2", "w3"] {
        workflows.push(empty_workflow(&store, name).await);
    }
    let raw = store.connection();
    raw.execute_unprepared(SEED).await.unwrap();
    // One real execution, for the lookups.
    let (exec, _) = store
        .create_execution(NewExecution {
            workflow_id: workflows[1].id,
            input: json!({}),
            task_keys: vec!["a".into(), "b".into()],
        })
        .await
        .unwrap();
    assert_eq!(
        query_count(raw, "SELECT COUNT(*) FROM executions").await,
        10_001
    );
    assert_eq!(
        query_count(raw, "SELECT COUNT(*) FROM task_runs").await,
        50_002
    );
    assert_eq!(
        query_count(
            raw,
            "SELECT COUNT(*) FROM executions WHERE state = 'CANCELLED'"
        )
        .await,
        0
    );

    let wf = Some(workflows[2].id);
    // Fresh (no statistics, as a new deployment has) and after ANALYZE.
    let failures = bad_plans(&store, wf, exec.id).await;
    assert!(
        failures.is_empty(),
        "plans without index use:\n{}",
        failures.join("\n")
    );
    raw.execute_unprepared("ANALYZE").await.unwrap();
    let failures = bad_plans(&store, wf, exec.id).await;
    assert!(
        failures.is_empty(),
        "after ANALYZE, plans without index use:\n{}",
        failures.join("\n")
    );

    // Several workflows (a name pattern): each read from its index, in order,
    // up to the page; only the merged page of at most 3 x 51 rows is sorted.
    let several = ExecutionQuery {
        workflow_ids: workflows[..3].iter().map(|w| w.id).collect(),
        ..Default::default()
    };
    let stmt = query::execution_list_statement(DbBackend::Sqlite, &several).unwrap();
    let steps = plan(raw, &stmt).await;
    let reads: Vec<&String> = steps.iter().filter(|d| d.contains("executions")).collect();
    assert_eq!(reads.len(), 3, "{steps:#?}");
    assert!(
        reads
            .iter()
            .all(|d| d.contains("USING INDEX ix_executions_workflow (workflow_id=?)")),
        "{steps:#?}"
    );
    let merged = store.list_executions(several.clone()).await.unwrap();
    assert_eq!(merged.items.len(), 50);
    assert!(merged
        .items
        .windows(2)
        .all(|w| (w[0].created_at, w[0].id) >= (w[1].created_at, w[1].id)));

    // Past 10,000 matching rows the count stops, unless asked to be exact.
    let capped = store
        .list_executions(ExecutionQuery::default())
        .await
        .unwrap();
    assert_eq!((capped.total, capped.total_exact), (10_000, false));
    let exact = store
        .list_executions(ExecutionQuery {
            exact_total: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((exact.total, exact.total_exact), (10_001, true));

    // And the lists still answer correctly on this data.
    let page = store
        .list_executions(ExecutionQuery {
            workflow_id: wf,
            states: vec![ExecutionState::Running],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        page.total as i64,
        query_count(
            raw,
            "SELECT COUNT(*) FROM executions e JOIN workflows w ON w.id = e.workflow_id \
             WHERE w.name = 'w2' AND e.state = 'RUNNING'"
        )
        .await
    );
    let _: &dyn StateStore = &store;
}

/// The index that answers a list shape best: every equality, then the range
/// and the order, so the page reads its rows in order and stops at the limit.
fn best_index(shape: &str) -> Option<&'static str> {
    Some(match shape {
        "newest first" | "oldest first" | "by time range" => "ix_executions_created",
        "by workflow" | "workflow + range" | "deep offset" => "ix_executions_workflow",
        "by state" | "by a state no row has" | "state + range" => "ix_executions_state",
        "by reason" => "ix_executions_reason",
        "workflow + state" | "workflow + state + range" | "workflow + rare state + range" => {
            "ix_executions_workflow_state"
        }
        _ => return None,
    })
}

async fn bad_plans(
    store: &flowstate_store::SeaStore,
    wf: Option<uuid::Uuid>,
    exec: uuid::Uuid,
) -> Vec<String> {
    let raw = store.connection();
    let since = Some(Utc::now() - ChronoDuration::days(30));
    let until = Some(Utc::now() - ChronoDuration::days(10));
    let one = |s: ExecutionState| vec![s];
    let shapes: Vec<(&str, ExecutionQuery)> = vec![
        ("newest first", ExecutionQuery::default()),
        (
            "oldest first",
            ExecutionQuery {
                sort: SortOrder::Ascending,
                ..Default::default()
            },
        ),
        (
            "by workflow",
            ExecutionQuery {
                workflow_id: wf,
                ..Default::default()
            },
        ),
        (
            "by state",
            ExecutionQuery {
                states: one(ExecutionState::Running),
                ..Default::default()
            },
        ),
        (
            "by a state no row has",
            ExecutionQuery {
                states: one(ExecutionState::Cancelled),
                ..Default::default()
            },
        ),
        (
            "by time range",
            ExecutionQuery {
                since,
                until,
                ..Default::default()
            },
        ),
        (
            "by reason",
            ExecutionQuery {
                reasons: vec![flowstate_store::types::Reason::CrashRecovery],
                ..Default::default()
            },
        ),
        (
            "by owner",
            ExecutionQuery {
                owner: Some("node-1".into()),
                ..Default::default()
            },
        ),
        (
            "workflow + state",
            ExecutionQuery {
                workflow_id: wf,
                states: one(ExecutionState::Failed),
                ..Default::default()
            },
        ),
        (
            "workflow + range",
            ExecutionQuery {
                workflow_id: wf,
                since,
                until,
                ..Default::default()
            },
        ),
        (
            "state + range",
            ExecutionQuery {
                states: one(ExecutionState::Succeeded),
                since,
                until,
                ..Default::default()
            },
        ),
        (
            "workflow + state + range",
            ExecutionQuery {
                workflow_id: wf,
                states: one(ExecutionState::Succeeded),
                since,
                until,
                ..Default::default()
            },
        ),
        (
            "workflow + rare state + range",
            ExecutionQuery {
                workflow_id: wf,
                states: one(ExecutionState::Cancelled),
                since,
                until,
                ..Default::default()
            },
        ),
        (
            "deep offset",
            ExecutionQuery {
                workflow_id: wf,
                offset: Some(2000),
                ..Default::default()
            },
        ),
    ];
    let mut failures = Vec::new();
    for (name, q) in shapes {
        // The first page, then the page after it by cursor: both must stay on the index.
        let first = store.list_executions(q.clone()).await.unwrap();
        let mut variants = vec![(name.to_string(), q.clone())];
        if let Some(cursor) = first.next_cursor {
            variants.push((
                format!("{name}, next page by cursor"),
                ExecutionQuery {
                    after: Some(cursor),
                    offset: None,
                    ..q.clone()
                },
            ));
        }
        for (label, q) in variants {
            let stmt = query::execution_list_statement(DbBackend::Sqlite, &q).unwrap();
            let steps = plan(raw, &stmt).await;
            let bad = bad_steps(&steps, "executions");
            let on_best = best_index(name).is_none_or(|ix| {
                steps.iter().any(|d| {
                    d.contains(&format!("INDEX {ix} (")) || d.ends_with(&format!("INDEX {ix}"))
                })
            });
            if !bad.is_empty() || !steps.iter().any(|d| d.contains("INDEX")) || !on_best {
                failures.push(format!("{label} (best: {:?}): {steps:?}", best_index(name)));
            }
            if q.workflow_id.is_some() || !q.states.is_empty() || q.since.is_some() {
                let count = query::execution_count_statement(DbBackend::Sqlite, &q);
                let steps = plan(raw, &count).await;
                if steps
                    .iter()
                    .any(|d| d.starts_with("SCAN executions") && !d.contains("INDEX"))
                {
                    failures.push(format!("{label} (count): {steps:?}"));
                }
            }
        }
    }
    for (name, stmt) in query::lookup_statements(DbBackend::Sqlite, exec) {
        let steps = plan(raw, &stmt).await;
        let mut bad = bad_steps(&steps, "executions");
        bad.extend(bad_steps(&steps, "task_runs"));
        bad.extend(bad_steps(&steps, "attempts"));
        bad.extend(bad_steps(&steps, "logs"));
        if !bad.is_empty() {
            failures.push(format!("lookup {name}: {steps:?}"));
        }
    }
    // The claim: each probe walks its own index in order (WAITING due by
    // wake_at, PENDING by created_at, id) and stops at the limit.
    let claim = flowstate_store::claim_statement(DbBackend::Sqlite, 10);
    let steps = plan(raw, &claim).await;
    let probes = steps
        .iter()
        .filter(|d| d.contains("ix_executions_"))
        .count();
    if !bad_steps(&steps, "executions").is_empty() || probes < 2 {
        failures.push(format!("claim: {steps:?}"));
    }
    // Recovery, at start-up (this node's and dead engines' executions) and
    // in the periodic sweep: from the live-executions index alone, which
    // holds every column tested and the id returned, never the table.
    let now = Utc::now();
    for node in [Some("node-1"), None] {
        for (name, stmt) in flowstate_store::recovery_statements(DbBackend::Sqlite, node, now) {
            let steps = plan(raw, &stmt).await;
            let covered = steps.iter().all(|d| {
                !d.contains("executions") || d.contains("COVERING INDEX ix_executions_live")
            });
            if !covered {
                failures.push(format!("recovery {name} ({node:?}): {steps:?}"));
            }
        }
    }
    // A workflow's history: its versions by primary key, and the count per
    // version from the (workflow_id, ...) index. The GROUP BY sorts the few
    // versions of one workflow, which is allowed; walking a table is not.
    for (name, stmt) in query::history_statements(DbBackend::Sqlite, wf.expect("a workflow")) {
        let steps = plan(raw, &stmt).await;
        let walks = steps
            .iter()
            .any(|d| d.starts_with("SCAN ") && !d.contains("INDEX"));
        if walks
            || !steps
                .iter()
                .any(|d| d.contains("INDEX") || d.contains("PRIMARY KEY"))
        {
            failures.push(format!("history {name}: {steps:?}"));
        }
    }
    failures
}

/// How often each list below runs on one connection: past the five runs
/// after which PostgreSQL may switch a prepared statement to a generic plan.
const RUNS: usize = 8;

/// A list is planned for the values it is given, every time, on the pool and
/// inside a transaction: PostgreSQL caches a prepared statement's plan after
/// five runs and may then run a generic one, made without the values, which
/// for a list by a rare state walked the whole created_at index (6.2 ms at
/// 100k rows). The engine's statements keep the plans the server caches:
/// planning every one of them was a quarter of PostgreSQL's CPU in a drain.
/// On every backend the lists answer correctly when run again and again.
async fn lists_are_planned_for_their_values(mut db: TestDb) {
    // One connection: one PostgreSQL session, whose prepared statements
    // (`pg_prepared_statements`) show how each statement was planned.
    db.config.max_connections = 1;
    let store = db.store().await;
    let wf = empty_workflow(&store, "listed").await;
    let mut ids = Vec::new();
    for _ in 0..12 {
        let (e, _) = store
            .create_execution(NewExecution {
                workflow_id: wf.id,
                input: json!({}),
                task_keys: vec!["t".into()],
            })
            .await
            .unwrap();
        ids.push(e.id);
    }
    store
        .append_logs(vec![NewLogLine {
            execution_id: ids[0],
            task_run_id: None,
            attempt: None,
            ts: Utc::now(),
            stream: flowstate_store::types::LogStream::Stdout,
            line: "hello".into(),
        }])
        .await
        .unwrap();
    let by = |state| ExecutionQuery {
        states: vec![state],
        ..Default::default()
    };
    for _ in 0..RUNS {
        let none = store
            .list_executions(by(ExecutionState::Cancelled))
            .await
            .unwrap();
        assert_eq!((none.items.len(), none.total), (0, 0));
        let all = store
            .list_executions(by(ExecutionState::Pending))
            .await
            .unwrap();
        assert_eq!((all.items.len(), all.total), (12, 12));
        let tx = store.begin().await.unwrap();
        let none = tx
            .list_executions(by(ExecutionState::Cancelled))
            .await
            .unwrap();
        assert_eq!(none.total, 0);
        let all = tx
            .list_executions(by(ExecutionState::Pending))
            .await
            .unwrap();
        assert_eq!(all.total, 12);
        // The transaction still writes after its lists.
        empty_workflow(&*tx, "listed").await;
        tx.commit().await.unwrap();
        let workflows = store
            .list_workflows(WorkflowQuery::default())
            .await
            .unwrap();
        assert_eq!((workflows.items.len(), workflows.total), (1, 1));
        assert_eq!(
            store.workflows_matching("list*", 10).await.unwrap().len(),
            1
        );
        let lines = store
            .read_logs(LogQuery {
                execution_id: ids[0],
                task_run_id: None,
                after_id: None,
                limit: None,
            })
            .await
            .unwrap();
        assert_eq!(lines.len(), 1);
        // A statement of the engine's kind: by primary key.
        assert_eq!(store.get_execution(ids[1]).await.unwrap().id, ids[1]);
    }
    if db.backend != Backend::Postgres {
        return;
    }
    let prepared = flowstate_tests::query_strings(
        store.connection(),
        "SELECT generic_plans::text || ' ' || statement FROM pg_prepared_statements",
    )
    .await;
    // The pages and counts of executions, workflows and log lines.
    let lists: Vec<&String> = prepared
        .iter()
        .filter(|s| {
            ["\"executions\"", "\"workflows\"", "\"logs\""]
                .iter()
                .any(|t| s.contains(t))
        })
        .filter(|s| s.contains("ORDER BY") || s.contains("COUNT(*)"))
        // Without a parameter there is nothing to plan for: one plan serves.
        .filter(|s| s.contains("$1"))
        .collect();
    assert!(lists.len() >= 5, "lists not found: {prepared:#?}");
    assert!(
        lists.iter().all(|s| s.starts_with("0 ")),
        "a list ran on a generic plan: {lists:#?}"
    );
    let by_id = prepared
        .iter()
        .find(|s| s.contains("FROM \"executions\" WHERE \"executions\".\"id\" = $1"))
        .unwrap_or_else(|| panic!("get by id not prepared: {prepared:#?}"));
    assert!(
        !by_id.starts_with("0 "),
        "get by id was planned at every run: {by_id}"
    );
}

flowstate_tests::backend_tests!(lists_are_planned_for_their_values);

/// Twenty thousand executions on PostgreSQL with few live ones (0.5% each
/// RUNNING, PENDING and WAITING), as a deployment that has run for a while.
const PG_SEED: &str = "
INSERT INTO executions (id, workflow_id, workflow_version, state, input, version, owner,
                        lease_expires_at, wake_at, created_at, updated_at, finished_at)
SELECT gen_random_uuid(), w.id, 1,
       CASE WHEN i % 200 = 0 THEN 'RUNNING' WHEN i % 200 = 1 THEN 'PENDING'
            WHEN i % 200 = 2 THEN 'WAITING' WHEN i % 3 = 0 THEN 'FAILED' ELSE 'SUCCEEDED' END,
       '{}', 1,
       CASE WHEN i % 200 = 0 THEN 'node-' || (i % 3) END,
       CASE WHEN i % 200 = 0 THEN now() + interval '1 minute' END,
       CASE WHEN i % 200 = 2 THEN now() + (i % 7 - 3) * interval '1 hour' END,
       now() - i * interval '13 minutes', now() - i * interval '13 minutes',
       CASE WHEN i % 200 > 2 THEN now() - i * interval '13 minutes' + interval '5 minutes' END
FROM generate_series(0, 19999) AS i CROSS JOIN (SELECT id FROM workflows LIMIT 1) AS w;
ANALYZE executions;
";

/// The engine's statements that pick rows by state and time (the claim and
/// recovery's selects) keep their indexes in PostgreSQL's generic plans, the
/// plans the server caches after five runs and then runs without looking at
/// the values: no walk of the table, no walk of the created_at index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_statements_keep_their_indexes_in_generic_plans() {
    let Some(db) = TestDb::create(Backend::Postgres).await else {
        return;
    };
    let store = db.store().await;
    empty_workflow(&store, "w").await;
    let raw = store.connection();
    raw.execute_unprepared(PG_SEED).await.unwrap();
    let now = Utc::now();
    let mut statements = vec![(
        "claim".to_string(),
        flowstate_store::claim_statement(DbBackend::Postgres, 10),
    )];
    for node in [Some("node-1"), None] {
        for (name, stmt) in flowstate_store::recovery_statements(DbBackend::Postgres, node, now) {
            statements.push((format!("recovery {name} ({node:?})"), stmt));
        }
    }
    let mut failures = Vec::new();
    for (name, stmt) in statements {
        let steps = generic_plan(raw, &stmt).await;
        let walks = steps
            .iter()
            .any(|s| s.contains("Seq Scan on executions") || s.contains("ix_executions_created"));
        let indexed = steps
            .iter()
            .any(|s| s.contains("Index") && s.contains("executions"));
        if walks || !indexed {
            failures.push(format!("{name}: {steps:#?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "generic plans:\n{}",
        failures.join("\n")
    );
}

/// The plan PostgreSQL caches for `stmt` once it stops planning each run
/// (`plan_cache_mode = force_generic_plan`, in a transaction of its own).
async fn generic_plan(db: &DatabaseConnection, stmt: &Statement) -> Vec<String> {
    use sea_orm::sea_query::{PostgresQueryBuilder, QueryBuilder};
    use sea_orm::TransactionTrait;
    let args: Vec<String> = stmt
        .values
        .iter()
        .flat_map(|v| v.0.iter())
        .map(|v| PostgresQueryBuilder.value_to_string(v))
        .collect();
    let tx = db.begin().await.unwrap();
    tx.execute_unprepared("SET LOCAL plan_cache_mode = force_generic_plan")
        .await
        .unwrap();
    tx.execute_unprepared(&format!("PREPARE fs_generic AS {}", stmt.sql))
        .await
        .unwrap_or_else(|e| panic!("prepare {}: {e}", stmt.sql));
    let explain = format!("EXPLAIN EXECUTE fs_generic({})", args.join(", "));
    let steps = tx
        .query_all_raw(Statement::from_string(DbBackend::Postgres, explain.clone()))
        .await
        .unwrap_or_else(|e| panic!("{explain}: {e}"))
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .collect();
    // A prepared statement outlives the transaction.
    tx.execute_unprepared("DEALLOCATE fs_generic")
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    steps
}
