//! The operator commands of issue 15 through the real binary on all three
//! backends: a failed run retried from where it failed, waiting, id
//! prefixes, `-o ids`, `--reason` and workflow patterns.

use flowstate_tests::{backend_tests, TestDb};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

struct Cli {
    config: String,
    dir: tempfile::TempDir,
}

impl Cli {
    fn new(db: &TestDb) -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("ops.yaml");
        let text = format!("{}engine:\n  pollInterval: 50ms\n", db.storage_yaml());
        std::fs::write(&config, text).unwrap();
        Cli {
            config: config.display().to_string(),
            dir,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_flowstate"))
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("FLOWSTATE_DATABASE_URL")
            .env_remove("FLOWSTATE_CONFIG")
            .current_dir(self.dir.path())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {err}");
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let text = self.ok(&[&["--json"], args].concat());
        serde_json::from_str(text.trim()).unwrap()
    }
}

async fn retry_wait_and_find_on_every_backend(db: TestDb) {
    let cli = Cli::new(&db);
    let marker = cli.dir.path().join("second");
    let file = cli.dir.path().join("ops-twice.yaml");
    let yaml = format!(
        "name: ops-twice\ntasks:\n  - id: a\n    run: echo x=1 >> \"$FLOWSTATE_OUTPUT\"\n  - id: b\n    needs: [a]\n    run: test -f {m} || {{ touch {m}; exit 3; }}\n",
        m = marker.display()
    );
    std::fs::write(&file, yaml).unwrap();
    let out = cli.run(&["--json", "run", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let original: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = original["id"].as_str().unwrap().to_owned();
    // Waiting on an ended execution answers at once, with its exit code.
    let out = cli.run(&["execution", "wait", &id[..28]]);
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).trim()
        ),
        (Some(1), "FAILED")
    );
    let retried = cli.json(&["execution", "retry", &id[..28]]);
    assert_eq!(retried["state"], "SUCCEEDED");
    assert_eq!(retried["retryOf"], id.as_str());
    let detail = cli.json(&["execution", "inspect", retried["id"].as_str().unwrap()]);
    assert_eq!(detail["taskRuns"][0]["reason"], "REUSED");
    assert_eq!(detail["outputs"]["a"]["x"], "1");
    assert_eq!(
        cli.json(&["execution", "inspect", &id])["retries"][0],
        retried["id"]
    );
    // Found again by reason and by pattern.
    let failed = cli.ok(&["execution", "list", "--reason", "TASK_FAILED", "-o", "ids"]);
    assert_eq!(failed.trim(), id);
    let both = cli.ok(&["execution", "list", "--workflow", "ops-*", "-o", "ids"]);
    assert_eq!(
        both.lines().collect::<Vec<_>>(),
        [retried["id"].as_str().unwrap(), id.as_str()]
    );
    let yaml = cli.ok(&["workflow", "list", "--filter", "twice", "-o", "yaml"]);
    assert!(yaml.contains("name: ops-twice"), "{yaml}");
    assert!(Path::new(&cli.config).exists());
}

backend_tests!(retry_wait_and_find_on_every_backend);
