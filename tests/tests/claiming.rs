//! Several claimers on one database never claim the same execution twice.

use flowstate_store::types::{ExecutionState, NewExecution};
use flowstate_store::{StateOps, StateStore};
use flowstate_tests::{backend_tests, query_count, TestDb};
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

const DUE: usize = 2000;

/// Seeds `DUE` PENDING executions in one transaction and returns their ids.
async fn seed(store: &dyn StateStore) -> HashSet<Uuid> {
    let wf = flowstate_tests::empty_workflow(store, "claimed").await;
    let tx = store.begin().await.unwrap();
    let mut ids = HashSet::new();
    for _ in 0..DUE {
        let (e, _) = tx
            .create_execution(NewExecution {
                workflow_id: wf.id,
                input: json!({}),
                task_keys: vec!["t".into()],
            })
            .await
            .unwrap();
        ids.insert(e.id);
    }
    tx.commit().await.unwrap();
    ids
}

async fn four_pools_claim_every_execution_exactly_once(db: TestDb) {
    let stores: Vec<Arc<dyn StateStore>> = vec![
        Arc::new(db.store().await),
        Arc::new(db.store().await),
        Arc::new(db.store().await),
        Arc::new(db.store().await),
    ];
    let due = seed(stores[0].as_ref()).await;
    let claimers: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(i, store)| {
            let store = store.clone();
            tokio::spawn(async move {
                let node = format!("node-{i}");
                let mut mine = Vec::new();
                loop {
                    let got = store
                        .claim_due(&node, 10, Duration::from_secs(300))
                        .await
                        .unwrap_or_else(|e| panic!("{node}: {e}"));
                    if got.is_empty() {
                        break;
                    }
                    for e in got {
                        assert_eq!(e.owner.as_deref(), Some(node.as_str()));
                        mine.push(e.id);
                    }
                }
                mine
            })
        })
        .collect();
    let mut seen = HashSet::new();
    let mut per_claimer = Vec::new();
    for c in claimers {
        let mine = c.await.unwrap();
        per_claimer.push(mine.len());
        for id in mine {
            assert!(seen.insert(id), "{id} was claimed twice");
        }
    }
    assert_eq!(seen, due, "every due execution claimed, none left");
    let conn = db.raw().await;
    assert_eq!(
        query_count(
            &conn,
            "SELECT COUNT(*) FROM executions WHERE state = 'PENDING'"
        )
        .await,
        0
    );
    assert_eq!(
        query_count(
            &conn,
            "SELECT COUNT(*) FROM executions WHERE state = 'RUNNING'"
        )
        .await,
        DUE as i64
    );
    assert_eq!(
        query_count(&conn, "SELECT COUNT(*) FROM executions WHERE version <> 2").await,
        0,
        "each execution moved exactly once"
    );
    eprintln!("claims per claimer: {per_claimer:?}");
}

async fn two_processes_claim_every_execution_exactly_once(db: TestDb) {
    let store = db.store().await;
    let due = seed(&store).await;
    let children: Vec<_> = (0..2)
        .map(|i| {
            std::process::Command::new(env!("CARGO_BIN_EXE_fs-claimer"))
                .args([db.url.as_str(), &format!("proc-{i}"), "10"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start fs-claimer")
        })
        .collect();
    let mut seen = HashSet::new();
    let mut counts = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "claimer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let ids: Vec<Uuid> = text.lines().map(|l| l.parse().unwrap()).collect();
        counts.push(ids.len());
        for id in ids {
            assert!(seen.insert(id), "{id} was claimed by both processes");
        }
    }
    assert_eq!(seen, due);
    let running = store
        .list_executions(flowstate_store::query::ExecutionQuery {
            states: vec![ExecutionState::Pending],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(running.total, 0);
    eprintln!("claims per process: {counts:?}");
}

backend_tests!(
    four_pools_claim_every_execution_exactly_once,
    two_processes_claim_every_execution_exactly_once,
);
