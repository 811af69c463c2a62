//! Migrations on every backend: round trips, status, refusals, constraints.

use flowstate_store::migrate;
use flowstate_store::types::NewWorkflow;
use flowstate_store::{SeaStore, StateOps, StoreError};
use flowstate_tests::{
    backend_tests, index_names, query_count, schema_snapshot, table_names, Backend, TestDb,
};
use sea_orm::ConnectionTrait;

const TABLES: &[&str] = &[
    "attempts",
    "executions",
    "logs",
    "outputs",
    "seaql_migrations",
    "task_runs",
    "workflow_versions",
    "workflows",
];

const ALL_VERSIONS: &[&str] = &[
    "m20261125_000001_initial_schema",
    "m20261129_000001_list_and_claim_indexes",
    "m20261129_120000_exact_names",
    "m20261129_130000_workflow_versions",
    "m20261129_140000_recovery_indexes",
    "m20261129_220000_reason_index",
    "m20261129_230000_execution_retries",
];

const INDEXES: &[&str] = &[
    "ix_executions_created",
    "ix_executions_finished",
    "ix_executions_live",
    "ix_executions_reason",
    "ix_executions_retry_of",
    "ix_executions_state",
    "ix_executions_state_wake",
    "ix_executions_workflow",
    "ix_executions_workflow_state",
    "ix_logs_execution",
    "ix_logs_task_run",
    "ix_outputs_execution",
    "ix_task_runs_execution_position",
    "ux_attempts_task_run_number",
    "ux_outputs_task_run_key",
    "ux_task_runs_execution_key",
    "ux_workflows_name",
];

/// Column types and foreign keys that must come out the same way on every
/// run: native UUIDs on PostgreSQL, microsecond UTC timestamps everywhere,
/// TEXT (not VARCHAR(255)) for long text, JSON columns, cascading keys.
fn expected_schema_facts(backend: Backend) -> Vec<&'static str> {
    match backend {
        Backend::Sqlite => vec![
            "\"id\" uuid_text NOT NULL PRIMARY KEY",
            "\"created_at\" timestamp_with_timezone_text NOT NULL",
            "\"line\" text NOT NULL",
            "\"error\" text NULL",
            "\"definition\" jsonb_text NOT NULL",
            "FOREIGN KEY (\"execution_id\") REFERENCES \"executions\" (\"id\") ON DELETE CASCADE",
            "FOREIGN KEY (\"task_run_id\") REFERENCES \"task_runs\" (\"id\") ON DELETE CASCADE",
        ],
        Backend::Postgres => vec![
            "column executions.id uuid NO",
            "column executions.created_at timestamp with time zone NO",
            "column logs.line text NO",
            "column logs.id bigint NO",
            "column executions.error text YES",
            "column workflows.definition jsonb NO",
            "FOREIGN KEY (execution_id) REFERENCES executions(id) ON UPDATE CASCADE ON DELETE CASCADE",
            "FOREIGN KEY (task_run_id) REFERENCES task_runs(id) ON UPDATE CASCADE ON DELETE CASCADE",
        ],
        Backend::Mysql => vec![
            "column executions.id binary(16) NO",
            "column executions.created_at datetime(6) NO",
            "column logs.line text NO",
            "column executions.error text YES",
            "column workflows.definition longtext NO",
            "fk fk_task_runs_execution task_runs->executions CASCADE",
            "fk fk_attempts_task_run attempts->task_runs CASCADE",
            "fk fk_logs_task_run logs->task_runs CASCADE",
        ],
    }
}

fn user_tables(mut names: Vec<String>) -> Vec<String> {
    names.retain(|n| n != "sqlite_sequence");
    names
}

async fn up_down_up_gives_the_same_schema(db: TestDb) {
    let conn = db.raw().await;
    let before = migrate::status(&conn).await.unwrap();
    assert!(before.applied.is_empty());
    assert_eq!(before.pending, ALL_VERSIONS);

    let after_up = migrate::up(&conn, None).await.unwrap();
    assert!(after_up.pending.is_empty());
    assert_eq!(after_up.applied.len(), ALL_VERSIONS.len());
    assert_eq!(
        after_up.applied[0].version,
        "m20261125_000001_initial_schema"
    );
    let age = chrono::Utc::now() - after_up.applied[0].applied_at;
    assert!(
        age.num_seconds().abs() < 120,
        "applied_at is now, got {age}"
    );

    assert_eq!(user_tables(table_names(&conn).await), TABLES);
    let mut indexes = index_names(&conn).await;
    if db.backend == Backend::Mysql {
        // InnoDB names foreign-key constraints' indexes after the constraint
        // when no other index serves them; ours all are served.
        indexes.retain(|n| !n.starts_with("fk_"));
    }
    assert_eq!(indexes, INDEXES);
    let first = schema_snapshot(&conn).await;
    assert!(
        first.len() >= 18,
        "snapshot has the whole schema: {first:?}"
    );
    for expected in expected_schema_facts(db.backend) {
        assert!(
            first.iter().any(|line| line.contains(expected)),
            "{} schema lacks `{expected}`:\n{}",
            db.backend,
            first.join("\n")
        );
    }

    let empty = migrate::reset(&conn).await.unwrap();
    assert!(empty.applied.is_empty());
    assert_eq!(empty.pending, ALL_VERSIONS);
    // Only SeaORM's own bookkeeping may remain (reset removes it on some backends).
    assert!(user_tables(table_names(&conn).await)
        .iter()
        .all(|t| t == "seaql_migrations"));
    assert!(schema_snapshot(&conn).await.is_empty());

    migrate::up(&conn, None).await.unwrap();
    assert_eq!(schema_snapshot(&conn).await, first);

    // down -n 1 undoes exactly the last migration: the schema is then what
    // the migrations before it make.
    let down = migrate::down(&conn, 1).await.unwrap();
    assert_eq!(down.applied.len(), ALL_VERSIONS.len() - 1);
    let without_last = schema_snapshot(&conn).await;
    if db.backend == Backend::Mysql {
        // The last migration gives names a binary NO PAD collation; its
        // down gives back the table default.
        let names: Vec<&String> = first
            .iter()
            .filter(|l| l.contains("workflows.name "))
            .collect();
        assert!(
            names
                .iter()
                .all(|l| l.ends_with("nopad_bin") || l.ends_with("0900_bin")),
            "{names:?}"
        );
        assert_ne!(without_last, first);
    }
    migrate::reset(&conn).await.unwrap();
    migrate::up(&conn, Some(ALL_VERSIONS.len() as u32 - 1))
        .await
        .unwrap();
    assert_eq!(schema_snapshot(&conn).await, without_last);
    migrate::up(&conn, None).await.unwrap();
    assert_eq!(schema_snapshot(&conn).await, first);
}

async fn a_newer_database_is_refused_without_writing(db: TestDb) {
    let conn = db.raw().await;
    migrate::up(&conn, None).await.unwrap();
    conn.execute_unprepared(
        "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m29990101_000001_from_the_future', 1)",
    )
    .await
    .unwrap();
    let schema = schema_snapshot(&conn).await;

    let err = SeaStore::from_connection(conn.clone(), true)
        .await
        .err()
        .expect("a newer database must be refused");
    let text = err.to_string();
    assert!(matches!(err, StoreError::SchemaMismatch(_)), "{err:?}");
    assert!(text.contains("m29990101_000001_from_the_future"), "{text}");
    assert!(text.contains("newer flowstate"), "{text}");
    assert!(migrate::up(&conn, None).await.is_err());
    assert_eq!(schema_snapshot(&conn).await, schema);
    assert_eq!(
        query_count(&conn, "SELECT COUNT(*) FROM seaql_migrations").await,
        ALL_VERSIONS.len() as i64 + 1
    );
}

async fn pending_migrations_fail_the_open_without_auto_migrate(db: TestDb) {
    let mut config = db.config.clone();
    config.auto_migrate = false;
    if db.backend == Backend::Sqlite {
        // No file at all: nothing is created, not even an empty one.
        let err = SeaStore::open(&config).await.err().expect("must refuse");
        assert!(
            err.to_string().contains("no flowstate database at"),
            "{err}"
        );
        assert!(!config.sqlite.path.exists());
        db.raw().await;
    }
    let err = SeaStore::open(&config).await.err().expect("must refuse");
    let text = err.to_string();
    assert!(text.contains("m20261125_000001_initial_schema"), "{text}");
    assert!(text.contains("flowstate-migrate up"), "{text}");
    let conn = db.raw().await;
    assert!(user_tables(table_names(&conn).await)
        .iter()
        .all(|t| t == "seaql_migrations"));

    // With autoMigrate the same open applies them.
    config.auto_migrate = true;
    let store = SeaStore::open(&config).await.unwrap();
    assert!(migrate::status(store.connection())
        .await
        .unwrap()
        .is_current());
}

async fn foreign_keys_are_enforced(db: TestDb) {
    let store = db.store().await;
    let err = store
        .put_outputs(
            uuid::Uuid::now_v7(),
            uuid::Uuid::now_v7(),
            vec![("k".into(), serde_json::json!(1))],
        )
        .await
        .expect_err("an output of no execution must be rejected");
    assert!(matches!(err, StoreError::MissingReference(_)), "{err:?}");

    let saved = store
        .save_workflow(NewWorkflow {
            name: "fk".into(),
            definition: serde_json::json!({"tasks": []}),
            description: None,
        })
        .await
        .unwrap();
    assert!(saved.changed);
}

/// Engines starting together on an empty database migrate it once, in turn.
async fn concurrent_opens_migrate_once(db: TestDb) {
    let opens = (0..4).map(|_| {
        let config = db.config.clone();
        tokio::spawn(async move { SeaStore::open(&config).await.map(|_| ()) })
    });
    for open in opens {
        open.await.unwrap().unwrap();
    }
    let conn = db.raw().await;
    assert_eq!(
        query_count(&conn, "SELECT COUNT(*) FROM seaql_migrations").await,
        ALL_VERSIONS.len() as i64
    );
    assert_eq!(user_tables(table_names(&conn).await), TABLES);
}

backend_tests!(
    concurrent_opens_migrate_once,
    up_down_up_gives_the_same_schema,
    a_newer_database_is_refused_without_writing,
    pending_migrations_fail_the_open_without_auto_migrate,
    foreign_keys_are_enforced,
);

/// WAL and foreign keys are per connection in SQLite: every pooled one must have them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_pragmas_hold_on_every_pooled_connection() {
    let db = TestDb::create(Backend::Sqlite).await.unwrap();
    let store = db.store().await;
    let conn = store.connection().clone();
    let checks = (0..16).map(|_| {
        let conn = conn.clone();
        tokio::spawn(async move {
            // Hold several connections at once by opening transactions.
            use sea_orm::TransactionTrait;
            let tx = conn.begin().await.unwrap();
            let backend = tx.get_database_backend();
            let row = |sql: &str| sea_orm::Statement::from_string(backend, sql.to_owned());
            let mode: String = tx
                .query_one_raw(row("PRAGMA journal_mode"))
                .await
                .unwrap()
                .unwrap()
                .try_get_by_index(0)
                .unwrap();
            let fk: i64 = tx
                .query_one_raw(row("PRAGMA foreign_keys"))
                .await
                .unwrap()
                .unwrap()
                .try_get_by_index(0)
                .unwrap();
            let sync: i64 = tx
                .query_one_raw(row("PRAGMA synchronous"))
                .await
                .unwrap()
                .unwrap()
                .try_get_by_index(0)
                .unwrap();
            let busy: i64 = tx
                .query_one_raw(row("PRAGMA busy_timeout"))
                .await
                .unwrap()
                .unwrap()
                .try_get_by_index(0)
                .unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            tx.rollback().await.unwrap();
            (mode, fk, sync, busy)
        })
    });
    for check in checks {
        let (mode, fk, sync, busy) = check.await.unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(fk, 1);
        assert_eq!(sync, 1, "synchronous NORMAL");
        assert_eq!(busy, 5000);
    }
}
