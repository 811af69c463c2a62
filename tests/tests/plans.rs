//! Query plans on SQLite with 10,000 executions x 5 task runs: every list and
//! lookup the store runs is answered from an index, in index order, without
//! walking the whole table and without a temporary sort.

use chrono::{Duration as ChronoDuration, Utc};
use flowstate_store::query::{self, ExecutionQuery, SortOrder};
use flowstate_store::types::{ExecutionState, NewExecution, NewWorkflow};
use flowstate_store::{StateOps, StateStore};
use flowstate_tests::{query_count, Backend, TestDb};
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
        let saved = store
            .save_workflow(NewWorkflow {
                name: name.into(),
                definition: json!({}),
                description: None,
            })
            .await
            .unwrap();
        workflows.push(saved.workflow);
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
