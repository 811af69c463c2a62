//! `flowstate-migrate`, the built binary, against every backend. These tests
//! live in this package because only its own tests can see its binary.

use flowstate_tests::{backend_tests, table_names, TestDb};

use std::process::{Command, Output};

fn migrate(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flowstate-migrate"));
    cmd.args(args)
        .env_remove("DATABASE_URL")
        .env_remove("FLOWSTATE_DATABASE_URL");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run flowstate-migrate")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn config_file(db: &TestDb, dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("flowstate.yaml");
    std::fs::write(&path, db.storage_yaml()).unwrap();
    path
}

async fn up_status_down_by_url_and_by_config(db: TestDb) {
    let status = |args: &[&str]| {
        let out = migrate(args, &[]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{args:?}: {stderr}");
        serde_json::from_str::<serde_json::Value>(stdout.trim()).unwrap()
    };
    let url = db.url.as_str();
    if db.backend == flowstate_tests::Backend::Sqlite {
        // status only reads: a missing file is reported, not created.
        let out = migrate(&["--database-url", url, "status"], &[]);
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out).1.contains("no flowstate database at"));
        assert!(!db.config.sqlite.path.exists());
    } else {
        // An empty server database: every migration pending.
        let before = status(&["--database-url", url, "status", "--json"]);
        assert_eq!(before["applied"], serde_json::json!([]));
        assert_eq!(
            before["pending"],
            serde_json::json!([
                "m20261125_000001_initial_schema",
                "m20261129_000001_list_and_claim_indexes",
                "m20261129_120000_exact_names",
                "m20261129_130000_workflow_versions",
                "m20261129_140000_recovery_indexes",
                "m20261129_220000_reason_index",
                "m20261129_230000_execution_retries"
            ])
        );
    }

    let out = migrate(&["--database-url", url, "up"], &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("applied 7 migration(s)"), "{stdout}");

    // The same database through a config file.
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(&db, dir.path());
    let config = config.to_str().unwrap();
    let after = status(&["--config", config, "status", "--json"]);
    assert_eq!(after["pending"], serde_json::json!([]));
    assert_eq!(
        after["applied"][0]["version"],
        "m20261125_000001_initial_schema"
    );
    let applied_at = after["applied"][0]["appliedAt"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(applied_at).is_ok(),
        "{applied_at}"
    );

    let out = migrate(&["--config", config, "status"], &[]);
    let (stdout, _) = text(&out);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("m20261125_000001_initial_schema ") && l.contains(" applied ")),
        "{stdout}"
    );

    // DATABASE_URL works as --database-url does.
    // Without a terminal, a destructive command needs --yes and changes nothing.
    let out = migrate(&["down"], &[("DATABASE_URL", url)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("--yes"), "{}", text(&out).1);
    let out = migrate(&["down", "--yes"], &[("DATABASE_URL", url)]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("rolled back 1 migration(s)"), "{stdout}");
    let one = status(&["--database-url", url, "status", "--json"]);
    assert_eq!(one["applied"].as_array().unwrap().len(), 6);
    assert_eq!(
        one["pending"],
        serde_json::json!(["m20261129_230000_execution_retries"])
    );

    let out = migrate(&["--database-url", url, "fresh", "--yes"], &[]);
    assert!(out.status.success(), "{}", text(&out).1);
    let out = migrate(&["--database-url", url, "reset", "--yes"], &[]);
    assert!(out.status.success(), "{}", text(&out).1);
    let out = migrate(&["--database-url", url, "up", "-n", "1"], &[]);
    assert!(out.status.success(), "{}", text(&out).1);
    let conn = db.raw().await;
    assert!(table_names(&conn).await.contains(&"executions".to_string()));
}

backend_tests!(up_status_down_by_url_and_by_config);

#[test]
fn bad_usage_and_bad_configuration_exit_2() {
    let out = migrate(&["sideways"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let out = migrate(&["up", "-n", "many"], &[]);
    assert_eq!(out.status.code(), Some(2));

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.yaml");
    std::fs::write(&config, "storage:\n  type: postgress\n").unwrap();
    let out = migrate(&["--config", config.to_str().unwrap(), "status"], &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr
            .contains("unknown storage.type 'postgress'; expected one of sqlite, postgres, mysql"),
        "{stderr}"
    );
    // A file that is not there is "not found", exit 1, as in `flowstate`.
    let out = migrate(&["--config", "/nonexistent/flowstate.yaml", "status"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("/nonexistent/flowstate.yaml"));
}

#[test]
fn help_never_shows_the_database_url() {
    for args in [&["--help"][..], &["status", "--help"], &["up", "--help"]] {
        let out = migrate(
            args,
            &[("DATABASE_URL", "postgres://u:hunter2-env@127.0.0.1/db")],
        );
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stderr}");
        assert!(
            !stdout.contains("hunter2") && !stderr.contains("hunter2"),
            "{stdout}"
        );
    }
}

#[test]
fn an_unreachable_server_fails_with_exit_1_and_no_password() {
    // Nothing listens on port 1; the password must not leak into the message.
    let started = std::time::Instant::now();
    let out = migrate(
        &[
            "--database-url",
            "postgres://flowstate:hunter2@127.0.0.1:1/flowstate",
            "status",
        ],
        &[],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("127.0.0.1:1"), "{stderr}");
    assert!(stderr.contains("flowstate:***@"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

#[test]
fn the_default_is_the_embedded_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_flowstate-migrate"))
        .arg("up")
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("FLOWSTATE_DATABASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(dir.path().join("data/flowstate.db").exists());

    // FLOWSTATE_DATABASE_URL overrides the default, the type taken from its scheme.
    let other = dir.path().join("elsewhere.db");
    let out = Command::new(env!("CARGO_BIN_EXE_flowstate-migrate"))
        .args(["status", "--json"])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env(
            "FLOWSTATE_DATABASE_URL",
            format!("sqlite://{}", other.display()),
        )
        .output()
        .unwrap();
    // status reads only: it names the missing file and creates nothing.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    assert!(text(&out).1.contains("elsewhere.db"), "{}", text(&out).1);
    assert!(!other.exists());
}
