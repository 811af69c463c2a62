//! Safe by default, on every backend: names match byte for byte, a damaged
//! schema is noticed before anything is written, opening a database that is
//! not there creates nothing, and bad paging values are refused (not a panic).

use flowstate_store::query::{ExecutionQuery, WorkflowQuery};
use flowstate_store::types::*;
use flowstate_store::{SeaStore, StateOps, StateStore, StoreError};
use flowstate_tests::{backend_tests, query_count, table_names, Backend, TestDb};
use sea_orm::ConnectionTrait;
use serde_json::json;

fn new_workflow(name: &str) -> NewWorkflow {
    NewWorkflow {
        name: name.into(),
        definition: json!({"tasks": [{"id": "a"}]}),
        description: None,
    }
}

/// MariaDB's default collations made `HELLO` and `hello ` match `hello`
/// (`workflow delete 'hello ' --hard` deleted `hello` with its executions).
async fn names_match_exactly(db: TestDb) {
    let store = db.store().await;
    let hello = store.save_workflow(new_workflow("hello")).await.unwrap();
    let (exec, _) = store
        .create_execution(NewExecution {
            workflow_id: hello.workflow.id,
            input: json!({}),
            task_keys: vec!["a".into()],
        })
        .await
        .unwrap();
    for other in [
        "hello ", "HELLO", "héllo", "Hello", "hello\t", " hello", "hellö",
    ] {
        match store.get_workflow_by_name(other).await {
            Err(StoreError::NotFound { .. }) => {}
            got => panic!("{}: {other:?} must not find hello, got {got:?}", db.backend),
        }
    }
    // A differently cased name is a workflow of its own, not an update.
    let upper = store.save_workflow(new_workflow("HELLO")).await.unwrap();
    assert!(upper.changed);
    assert_ne!(upper.workflow.id, hello.workflow.id);
    assert_eq!(upper.workflow.version, 1);
    let accented = store.save_workflow(new_workflow("héllo")).await.unwrap();
    assert_ne!(accented.workflow.id, hello.workflow.id);
    let again = store.get_workflow_by_name("hello").await.unwrap();
    assert_eq!(again.id, hello.workflow.id);
    assert_eq!(again.version, 1);
    // Names people cannot tell apart from another are refused.
    for bad in ["hello ", " hello", "hel\nlo", "a\u{1b}[31m", ""] {
        match store.save_workflow(new_workflow(bad)).await {
            Err(StoreError::InvalidInput(m)) => assert!(m.contains("workflow name"), "{m}"),
            got => panic!("{}: {bad:?} must be refused, got {got:?}", db.backend),
        }
    }
    // Task keys too: `a ` and `A` are keys of their own.
    let (_, runs) = store
        .create_execution(NewExecution {
            workflow_id: hello.workflow.id,
            input: json!({}),
            task_keys: vec!["a".into(), "A".into()],
        })
        .await
        .unwrap();
    assert_eq!(runs.len(), 2);
    assert!(store.get_execution(exec.id).await.is_ok());
}

/// With the `logs` table dropped, `run` used to insert an execution, its task
/// runs and attempts, then fail with "no such table: logs".
async fn a_damaged_schema_is_refused_at_open(db: TestDb) {
    let store = db.store().await;
    store.save_workflow(new_workflow("kept")).await.unwrap();
    store.close().await.unwrap();
    let raw = db.raw().await;
    raw.execute_unprepared("DROP TABLE logs").await.unwrap();
    let err = SeaStore::open(&db.config).await.err().expect("must refuse");
    let text = err.to_string();
    assert!(matches!(err, StoreError::SchemaDamaged(_)), "{text}");
    assert!(text.contains("table logs is missing"), "{text}");
    assert_eq!(
        query_count(&raw, "SELECT COUNT(*) FROM executions").await,
        0
    );
    // A missing column is named too.
    raw.execute_unprepared("ALTER TABLE attempts DROP COLUMN error")
        .await
        .unwrap();
    let err = SeaStore::open_existing(&db.config).await.err().unwrap();
    assert!(err.to_string().contains("is missing"), "{err}");
}

/// A read-only open of a database without the flowstate schema creates
/// nothing: no file on SQLite, no table on a server.
async fn opening_an_absent_database_creates_nothing(db: TestDb) {
    let err = SeaStore::open_existing(&db.config)
        .await
        .err()
        .expect("absent");
    assert!(matches!(err, StoreError::NoDatabase { .. }), "{err}");
    assert!(
        err.to_string().contains("no flowstate database at"),
        "{err}"
    );
    match db.backend {
        Backend::Sqlite => assert!(!db.config.sqlite.path.exists()),
        _ => assert_eq!(table_names(&db.raw().await).await, Vec::<String>::new()),
    }
    // autoMigrate: false never leaves an empty file behind either.
    let mut config = db.config.clone();
    config.auto_migrate = false;
    let err = SeaStore::open(&config).await.err().expect("not migrated");
    if db.backend == Backend::Sqlite {
        assert!(matches!(err, StoreError::NoDatabase { .. }), "{err}");
        assert!(!db.config.sqlite.path.exists());
        assert!(!db.folder().unwrap().join("flowstate.db-wal").exists());
    }
    // Once created, the same open works.
    db.store().await;
    SeaStore::open_existing(&db.config).await.unwrap();
}

/// `--offset 9223372036854775808` panicked inside sea-query's binding.
async fn huge_offsets_and_limits_are_refused(db: TestDb) {
    let store = db.store().await;
    for offset in [10_001, i64::MAX as u64, u64::MAX] {
        let q = WorkflowQuery {
            offset: Some(offset),
            ..Default::default()
        };
        assert!(matches!(q.validate(), Err(StoreError::InvalidInput(_))));
        let err = store.list_workflows(q).await.err().unwrap();
        assert!(err.to_string().contains(&offset.to_string()), "{err}");
        let q = ExecutionQuery {
            offset: Some(offset),
            ..Default::default()
        };
        assert!(matches!(
            store.list_executions(q).await,
            Err(StoreError::InvalidInput(_))
        ));
    }
    for limit in [0, 1001, u64::MAX] {
        let q = ExecutionQuery {
            limit: Some(limit),
            ..Default::default()
        };
        assert!(q.validate().is_err());
        assert!(store.list_executions(q).await.is_err());
    }
    let q = ExecutionQuery {
        after: Some("abc".into()),
        ..Default::default()
    };
    assert!(q.validate().unwrap_err().to_string().contains("'abc'"));
}

backend_tests!(
    names_match_exactly,
    a_damaged_schema_is_refused_at_open,
    opening_an_absent_database_creates_nothing,
    huge_offsets_and_limits_are_refused,
);
