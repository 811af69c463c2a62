//! The `storage:` section: defaults, overrides and every validation error.

use flowstate_store::config::{StorageConfig, StorageType};
use flowstate_store::StoreError;
use std::path::PathBuf;

fn err(yaml: &str) -> String {
    match StorageConfig::from_yaml(yaml) {
        Ok(c) => panic!("expected an error for {yaml:?}, got {c:?}"),
        Err(StoreError::Config(m)) => m,
        Err(other) => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn an_empty_file_means_the_embedded_default() {
    let c = StorageConfig::from_yaml("").unwrap();
    assert_eq!(c, StorageConfig::default());
    assert_eq!(c.kind, StorageType::Sqlite);
    assert_eq!(c.sqlite.path, PathBuf::from("./data/flowstate.db"));
    assert_eq!(c.sqlite.busy_timeout_ms, 5000);
    assert_eq!(c.max_connections, 10);
    assert!(c.auto_migrate);
    assert_eq!(c.retention_days, 30);
}

#[test]
fn the_example_config_parses() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config.example.yaml"
    ))
    .unwrap();
    let c = StorageConfig::from_yaml(&text).unwrap();
    assert_eq!(c.kind, StorageType::Sqlite);
    assert_eq!(c.sqlite.path, PathBuf::from("./data/flowstate.db"));
    assert_eq!(c.retention_days, 30);
}

#[test]
fn every_key_is_read() {
    let c = StorageConfig::from_yaml(
        "storage:\n  type: postgres\n  postgres:\n    url: postgres://u:secret@db:5432/fs\n  sqlite:\n    path: /x/y.db\n    busyTimeoutMs: 250\n  maxConnections: 3\n  autoMigrate: false\n  retentionDays: 7\n",
    )
    .unwrap();
    assert_eq!(c.kind, StorageType::Postgres);
    assert_eq!(c.url.as_deref(), Some("postgres://u:secret@db:5432/fs"));
    assert_eq!(c.sqlite.busy_timeout_ms, 250);
    assert_eq!(c.max_connections, 3);
    assert!(!c.auto_migrate);
    assert_eq!(c.retention_days, 7);
    assert_eq!(c.display_target(), "postgres://u:***@db:5432/fs");
}

#[test]
fn unknown_keys_are_named_with_the_closest_valid_key() {
    let m = err("storage:\n  type: sqlite\n  retentionDay: 3\n");
    assert!(m.contains("'storage.retentionDay'"), "{m}");
    assert!(m.contains("did you mean 'retentionDays'"), "{m}");

    let m = err("storage:\n  sqlite:\n    busyTimeout: 3\n");
    assert!(m.contains("'storage.sqlite.busyTimeout'"), "{m}");
    assert!(m.contains("did you mean 'busyTimeoutMs'"), "{m}");

    let m = err("storag:\n  type: sqlite\n");
    assert!(
        m.contains("'storag'") && m.contains("did you mean 'storage'"),
        "{m}"
    );

    let m = err("storage:\n  postgres:\n    uri: postgres://x/y\n");
    assert!(
        m.contains("'storage.postgres.uri'") && m.contains("'url'"),
        "{m}"
    );
}

#[test]
fn an_unknown_type_lists_the_valid_ones() {
    let m = err("storage:\n  type: postgress\n");
    assert!(
        m.contains("unknown storage.type 'postgress'; expected one of sqlite, postgres, mysql"),
        "{m}"
    );
    assert!(m.contains("did you mean 'postgres'"), "{m}");
}

#[test]
fn a_server_type_needs_a_url() {
    let m = err("storage:\n  type: mysql\n");
    assert!(m.contains("storage.mysql.url is missing"), "{m}");
    let m = err("storage:\n  type: postgres\n  postgres:\n    url: mysql://x/y\n");
    assert!(m.contains("is a mysql URL"), "{m}");
}

#[test]
fn out_of_range_numbers_are_refused() {
    let m = err("storage:\n  retentionDays: 0\n");
    assert!(
        m.contains("storage.retentionDays is 0; it must be at least 1"),
        "{m}"
    );
    let m = err("storage:\n  maxConnections: 0\n");
    assert!(m.contains("storage.maxConnections is 0"), "{m}");
    let m = err("storage:\n  sqlite:\n    busyTimeoutMs: -1\n");
    assert!(m.contains("busyTimeoutMs is -1"), "{m}");
}

#[test]
fn wrong_types_and_bad_yaml_are_errors_not_panics() {
    let m = err("storage:\n  autoMigrate: sometimes\n");
    assert!(m.contains("autoMigrate") || m.contains("bool"), "{m}");
    let m = err("storage: [\n");
    assert!(m.contains("YAML"), "{m}");
    let m = err("- a\n- b\n");
    assert!(m.contains("mapping"), "{m}");
}

#[test]
fn a_url_chooses_the_backend_by_its_scheme() {
    let base = StorageConfig::default();
    let c = base.clone().with_url("postgresql://a@h/db").unwrap();
    assert_eq!(c.kind, StorageType::Postgres);
    let c = base.clone().with_url("mariadb://a@h/db").unwrap();
    assert_eq!(c.kind, StorageType::Mysql);
    let c = base
        .clone()
        .with_url("sqlite:///tmp/x/fs.db?mode=rwc")
        .unwrap();
    assert_eq!(c.kind, StorageType::Sqlite);
    assert_eq!(c.sqlite.path, PathBuf::from("/tmp/x/fs.db"));
    let StoreError::Config(m) = base.clone().with_url("oracle://a:pw@h/db").unwrap_err() else {
        panic!()
    };
    assert!(
        m.contains("oracle://a:***@h/db") && !m.contains("pw"),
        "{m}"
    );
    assert!(base.with_url("sqlite::memory:").is_err());
}

#[test]
fn passwords_are_redacted() {
    use flowstate_store::config::redact_url;
    assert_eq!(
        redact_url("mysql://root:pw@h:3306/db"),
        "mysql://root:***@h:3306/db"
    );
    assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
    assert_eq!(
        redact_url("postgres://u:p@ss@h/db?x=1"),
        "postgres://u:***@h/db?x=1"
    );
}

#[tokio::test]
async fn an_unwritable_sqlite_folder_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file where the folder should be: unwritable even for root.
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, b"x").unwrap();
    let mut config = StorageConfig::default();
    config.sqlite.path = blocker.join("flowstate.db");
    let err = flowstate_store::connect::connect(&config)
        .await
        .unwrap_err();
    let m = err.to_string();
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
    assert!(m.contains("cannot create folder"), "{m}");
    assert!(m.contains("not-a-folder"), "{m}");
}

#[tokio::test]
async fn the_default_creates_the_folder_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StorageConfig::default();
    config.sqlite.path = dir.path().join("a/b/flowstate.db");
    let store = flowstate_store::SeaStore::open(&config).await.unwrap();
    assert!(config.sqlite.path.exists());
    drop(store);
}
