//! Workflow versions on every backend: each registered definition is kept,
//! and an execution runs the version it was submitted with, even when the
//! workflow changes while it waits for a retry.

use flowstate_engine::{Config, Engine, EngineConfig, Workflow};
use flowstate_store::query::LogQuery;
use flowstate_store::types::*;
use flowstate_store::{StateOps, StateStore, StoreError};
use flowstate_tests::{backend_tests, TestDb};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

fn new_workflow(definition: serde_json::Value) -> NewWorkflow {
    NewWorkflow {
        name: "report".into(),
        definition,
        description: None,
    }
}

async fn every_version_is_kept_and_counted(db: TestDb) {
    let store = db.store().await;
    let v1 = store
        .save_workflow(new_workflow(json!({"n": 1})))
        .await
        .unwrap();
    let same = store
        .save_workflow(new_workflow(json!({"n": 1})))
        .await
        .unwrap();
    assert!(!same.changed);
    let v2 = store
        .save_workflow(new_workflow(json!({"n": 2})))
        .await
        .unwrap();
    assert_eq!((v1.workflow.version, v2.workflow.version), (1, 2));
    let id = v1.workflow.id;
    let first = store.get_workflow_version(id, 1).await.unwrap();
    assert_eq!(first.definition, json!({"n": 1}));
    assert_eq!(
        store.get_workflow_version(id, 2).await.unwrap().definition,
        json!({"n": 2})
    );
    assert!(matches!(
        store.get_workflow_version(id, 3).await,
        Err(StoreError::NotFound { .. })
    ));
    for _ in 0..2 {
        store
            .create_execution(NewExecution {
                workflow_id: id,
                input: json!({}),
                task_keys: vec!["a".into()],
            })
            .await
            .unwrap();
    }
    let history = store.list_workflow_versions(id).await.unwrap();
    let summary: Vec<(i32, u64)> = history.iter().map(|v| (v.version, v.executions)).collect();
    assert_eq!(summary, [(1, 0), (2, 2)]);
    // A hard delete takes the versions with the workflow.
    store.delete_workflow(id, true).await.unwrap();
    assert!(store.list_workflow_versions(id).await.unwrap().is_empty());
}

fn config(db: &TestDb) -> Config {
    Config {
        storage: db.config.clone(),
        engine: EngineConfig {
            node_id: Some(format!("test-{}", uuid::Uuid::new_v4().simple())),
            poll_interval: Duration::from_millis(50),
            ..EngineConfig::default()
        },
        server: Default::default(),
    }
}

/// The first attempt fails into WAITING; a changed definition is registered;
/// the retry still runs the command the execution was submitted with.
async fn a_retry_runs_the_definition_it_was_submitted_with(db: TestDb) {
    let original = "name: pinned\ntasks:\n  - id: t\n    run: echo original $FLOWSTATE_ATTEMPT; [ $FLOWSTATE_ATTEMPT -ge 2 ]\n    retries: 1\n    retryDelay: 1500ms\n";
    let changed = "name: pinned\ntasks:\n  - id: t\n    run: echo changed; exit 7\n";
    let parse = |y: &str| Workflow::from_yaml(y, Path::new("pinned.yaml")).unwrap();
    let engine = Engine::start(config(&db)).await.unwrap();
    let store = engine.store();
    let exec = engine.submit(&parse(original), json!({})).await.unwrap();
    let running = {
        let id = exec.id;
        let engine = Engine::start(config(&db)).await.unwrap();
        tokio::spawn(async move { engine.run_execution(id).await })
    };
    // Wait for the first attempt to fail into WAITING.
    let mut waiting = false;
    for _ in 0..200 {
        let runs = store.list_task_runs(exec.id).await.unwrap();
        if runs[0].state == TaskState::Waiting {
            waiting = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(waiting, "the first attempt fails into WAITING");
    let saved = store
        .save_workflow(NewWorkflow {
            name: "pinned".into(),
            definition: parse(changed).to_definition(),
            description: None,
        })
        .await
        .unwrap();
    assert_eq!(saved.workflow.version, 2);
    let done = tokio::time::timeout(Duration::from_secs(60), running)
        .await
        .expect("ends within a minute")
        .unwrap()
        .unwrap();
    assert_eq!(done.state, ExecutionState::Succeeded, "{:?}", done.error);
    assert_eq!(done.workflow_version, 1);
    let lines: Vec<String> = store
        .read_logs(LogQuery {
            execution_id: exec.id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|l| l.stream == LogStream::Stdout)
        .map(|l| l.line)
        .collect();
    assert_eq!(lines, ["original 1", "original 2"]);
    let _: &dyn StateStore = store.as_ref();
}

backend_tests!(
    every_version_is_kept_and_counted,
    a_retry_runs_the_definition_it_was_submitted_with,
);
