//! The hostile-input suite: the built `flowstate` binary against bad
//! configuration, bad workflow files, bad arguments, URLs that carry
//! passwords and injection strings.
//!
//! Every case asserts the exit code, that the message names the bad value, no
//! panic, nothing created or changed (files in the folder, rows in every
//! table), and no password on stdout or stderr. Cases that touch a database
//! run on SQLite, PostgreSQL and MariaDB/MySQL through the shared harness;
//! file and configuration cases are refused before any database is opened,
//! so they run once, against a folder with no database in it.

use flowstate_tests::{query_strings, Backend, TestDb};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The password every server configuration of the suite carries (PostgreSQL
/// trusts local connections whatever the password; MariaDB gets a user of
/// its own with it). It must never be printed.
const SECRET: &str = "pw-Hostile-S3cret";

/// One hostile input and what must come of it.
struct Case {
    what: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    code: i32,
    says: String,
    /// Secrets of this case (beyond [`SECRET`]) that must not be printed.
    secrets: Vec<String>,
    /// A configuration file of the case's own instead of the fixture's.
    config: Option<String>,
}

fn case(what: impl Into<String>, args: &[&str], code: i32, says: &str) -> Case {
    Case {
        what: what.into(),
        args: args.iter().map(|s| s.to_string()).collect(),
        env: Vec::new(),
        code,
        says: says.into(),
        secrets: Vec::new(),
        config: None,
    }
}

/// A folder with a configuration file, and the database it points at.
struct Fixture {
    dir: tempfile::TempDir,
    config: PathBuf,
    db: Option<TestDb>,
    raw: Option<DatabaseConnection>,
    url: Option<String>,
}

impl Fixture {
    /// A folder whose configuration points at a SQLite file that does not exist.
    fn empty() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("flowstate.yaml");
        let yaml = format!(
            "storage:\n  sqlite:\n    path: {}\n",
            dir.path().join("data/fs.db").display()
        );
        std::fs::write(&config, yaml).unwrap();
        Fixture {
            dir,
            config,
            db: None,
            raw: None,
            url: None,
        }
    }

    /// A database of `backend` with a registered workflow `hello` and one
    /// PENDING execution of it; server URLs carry [`SECRET`].
    async fn seeded(backend: Backend) -> Option<(Fixture, String)> {
        let db = TestDb::create(backend).await?;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("flowstate.yaml");
        let url = match backend {
            Backend::Sqlite => None,
            _ => Some(with_password(&db).await),
        };
        let storage = match (&url, backend) {
            (Some(u), Backend::Postgres) => {
                format!("storage:\n  type: postgres\n  postgres:\n    url: {u}\n")
            }
            (Some(u), _) => format!("storage:\n  type: mysql\n  mysql:\n    url: {u}\n"),
            (None, _) => db.storage_yaml(),
        };
        std::fs::write(&config, storage).unwrap();
        let mut f = Fixture {
            dir,
            config,
            raw: None,
            db: Some(db),
            url,
        };
        let wf = f.file(
            "hello.yaml",
            "name: hello\ntasks:\n  - id: a\n    run: echo hi\n",
        );
        f.ok(&["workflow", "register", &wf]);
        let id = f.ok(&["submit", "hello"]).trim().to_owned();
        f.raw = Some(f.db.as_ref().unwrap().raw().await);
        Some((f, id))
    }

    fn file(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    fn cmd(&self, args: &[String], env: &[(String, String)], config: Option<&str>) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_flowstate"));
        match config {
            Some(path) => c.arg("--config").arg(path),
            None => c.arg("--config").arg(&self.config),
        };
        c.args(args)
            .current_dir(self.dir.path())
            .env_remove("FLOWSTATE_DATABASE_URL")
            .env_remove("FLOWSTATE_CONFIG")
            .env_remove("DATABASE_URL")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let out = self.cmd(&args, &[], None).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Everything a case could change: the files of the folder and the rows
    /// of every table.
    async fn fingerprint(&self) -> Vec<String> {
        let mut print: Vec<String> = files(self.dir.path()).into_iter().collect();
        if let Some(raw) = &self.raw {
            for sql in [
                "SELECT COUNT(*) FROM workflows",
                "SELECT COUNT(*) FROM workflows WHERE deleted_at IS NULL",
                "SELECT COUNT(*) FROM executions",
                "SELECT COUNT(*) FROM executions WHERE state = 'PENDING'",
                "SELECT COUNT(*) FROM task_runs",
                "SELECT COUNT(*) FROM attempts",
                "SELECT COUNT(*) FROM outputs",
                "SELECT COUNT(*) FROM logs",
                "SELECT COUNT(*) FROM seaql_migrations",
            ] {
                let got = query_strings(raw, sql).await;
                print.push(format!("{sql} = {got:?}"));
            }
        }
        print
    }

    /// Runs every case; returns the failures, one line each.
    async fn check(&self, cases: &[Case], label: &str) -> Vec<String> {
        let mut failures = Vec::new();
        for c in cases {
            let before = self.fingerprint().await;
            let out = self
                .cmd(&c.args, &c.env, c.config.as_deref())
                .output()
                .unwrap();
            let after = self.fingerprint().await;
            if let Some(why) = judge(c, &out, &before, &after, self.url.as_deref()) {
                failures.push(format!("[{label}] {}: {why}", c.what));
            }
        }
        eprintln!("hostile [{label}]: {} cases", cases.len());
        failures
    }
}

/// What is wrong with how the binary answered `c`, if anything.
fn judge(
    c: &Case,
    out: &Output,
    before: &[String],
    after: &[String],
    url: Option<&str>,
) -> Option<String> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    if stderr.contains("panicked") || code == Some(101) {
        return Some(format!("PANIC: {stderr}"));
    }
    if code != Some(c.code) {
        return Some(format!("exit {code:?}, wanted {}: {stderr}", c.code));
    }
    if !stderr.contains(&c.says) {
        return Some(format!("stderr lacks {:?}: {stderr}", c.says));
    }
    if stderr.contains('\u{1b}') || stdout.contains('\u{1b}') {
        return Some(format!("raw escape sequence printed: {stderr:?}"));
    }
    if stderr.len() > 4000 {
        return Some(format!("message of {} bytes", stderr.len()));
    }
    let mut secrets: Vec<&str> = vec![SECRET];
    secrets.extend(c.secrets.iter().map(String::as_str));
    for s in secrets {
        if stdout.contains(s) || stderr.contains(s) {
            return Some(format!("LEAK of {s:?}: {stdout} {stderr}"));
        }
    }
    if before != after {
        let changed: Vec<_> = after.iter().filter(|l| !before.contains(l)).collect();
        return Some(format!("SIDE EFFECT: {changed:?} (url {url:?})"));
    }
    None
}

/// Every path below `dir`, relative, with the size of files.
fn files(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            if p.is_dir() {
                out.insert(format!("{rel}/"));
                stack.push(p);
            } else if !rel.ends_with("-shm") && !rel.ends_with("-wal") {
                // The WAL and its index change when a reader opens the
                // database; the database file itself must not, by a byte.
                let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                let sum = if len <= 1 << 20 {
                    use std::hash::{Hash, Hasher};
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    std::fs::read(&p).unwrap_or_default().hash(&mut h);
                    h.finish()
                } else {
                    0
                };
                out.insert(format!("{rel} {len} {sum:x}"));
            } else {
                out.insert(rel);
            }
        }
    }
    out
}

/// The test database's URL with a user that has [`SECRET`] as password.
async fn with_password(db: &TestDb) -> String {
    let (scheme, rest) = db.url.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    match db.backend {
        Backend::Postgres => format!("{scheme}://postgres:{SECRET}@{host}"),
        _ => {
            let raw = db.raw().await;
            for sql in [
                format!("CREATE USER IF NOT EXISTS 'fs_hostile'@'%' IDENTIFIED BY '{SECRET}'"),
                "GRANT ALL PRIVILEGES ON *.* TO 'fs_hostile'@'%'".to_owned(),
                format!(
                    "CREATE USER IF NOT EXISTS 'fs_hostile'@'localhost' IDENTIFIED BY '{SECRET}'"
                ),
                "GRANT ALL PRIVILEGES ON *.* TO 'fs_hostile'@'localhost'".to_owned(),
            ] {
                raw.execute_unprepared(&sql).await.unwrap();
            }
            format!("{scheme}://fs_hostile:{SECRET}@{host}")
        }
    }
}

/// Cases against a seeded database; `id` is its PENDING execution.
fn database_cases(id: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let bad_ids = [
        "abc",
        "",
        "1234",
        "../../etc/passwd",
        "' OR 1=1 --",
        "00000000-0000-0000-0000-00000000000g",
        "\u{1b}[31mred",
    ];
    for cmd in ["inspect", "logs", "cancel"] {
        for bad in bad_ids {
            let mut c = case(
                format!("execution {cmd} {bad:?}"),
                &["execution", cmd, bad],
                2,
                "is not an execution id",
            );
            if bad.is_empty() {
                c.says = "is not an execution id".into();
            }
            cases.push(c);
        }
        let long = "7".repeat(300);
        cases.push(case(
            format!("execution {cmd} <300 chars>"),
            &["execution", cmd, &long],
            2,
            "(300 characters)",
        ));
        for unknown in [
            "0193c2a0-0000-7000-8000-000000000000",
            "00000000-0000-0000-0000-000000000000",
            "ffffffff-ffff-ffff-ffff-ffffffffffff",
        ] {
            cases.push(case(
                format!("execution {cmd} unknown {unknown}"),
                &["execution", cmd, unknown],
                1,
                "not found",
            ));
        }
    }
    let list = |flag: &str, value: &str, says: &str| {
        case(
            format!("execution list {flag} {value:?}"),
            &["execution", "list", flag, value],
            2,
            says,
        )
    };
    for v in ["10001", "9223372036854775808", "-1", "abc", "1e3"] {
        cases.push(list("--offset", v, v));
    }
    for v in ["0", "1001", "-5", "abc", "99999999999999999999"] {
        cases.push(list("--limit", v, v));
    }
    for v in [
        "abc",
        "1_2",
        "_",
        "9999999999999999999_0",
        "1_zz",
        "' OR 1=1 --",
    ] {
        cases.push(list("--after", v, "malformed cursor"));
    }
    for v in ["nope", "running;drop", "SUCCEEDED'"] {
        cases.push(list("--state", v, v));
    }
    for flag in ["--since", "--until"] {
        for v in ["garbage", "2026-13-01", "-1d", "99999d", "0.5ms"] {
            cases.push(list(flag, v, v));
        }
    }
    for v in ["created;", "name", "+created"] {
        cases.push(list("--sort", v, v));
    }
    cases.push(case(
        "execution list --offset with --after",
        &["execution", "list", "--offset", "5", "--after", "1_2"],
        2,
        "--offset",
    ));
    for (flag, v) in [
        ("--offset", "10001"),
        ("--offset", "18446744073709551616"),
        ("--limit", "0"),
        ("--limit", "1001"),
        ("--offset", "-3"),
    ] {
        cases.push(case(
            format!("workflow list {flag} {v}"),
            &["workflow", "list", flag, v],
            2,
            v,
        ));
    }
    for v in ["abc", "0.5ms", "-1s", "99999d", "", "1x"] {
        cases.push(case(
            format!("cleanup --older-than {v:?}"),
            &["cleanup", "--older-than", v, "--yes"],
            2,
            "--older-than",
        ));
    }
    for v in ["0", "20001", "-1"] {
        cases.push(case(
            format!("cleanup --batch-size {v}"),
            &["cleanup", "--batch-size", v, "--dry-run"],
            2,
            v,
        ));
    }
    for v in ["0", "-1", "abc", "1001"] {
        cases.push(case(
            format!("migrate down -n {v}"),
            &["migrate", "down", "-n", v, "--yes"],
            2,
            v,
        ));
    }
    cases.push(case(
        "migrate up -n 0",
        &["migrate", "up", "-n", "0"],
        2,
        "0",
    ));
    for v in ["noeq", "=v", "1x=v", "a-b=v", "a b=v", "ß=v", "PATH;rm=v"] {
        cases.push(case(
            format!("submit --input {v:?}"),
            &["submit", "hello", "--input", v],
            2,
            "input",
        ));
    }
    cases.push(case("unknown command", &["frobnicate"], 2, "frobnicate"));
    cases.push(case(
        "unknown flag",
        &["execution", "list", "--bogus"],
        2,
        "--bogus",
    ));
    cases.push(case("no command", &[], 2, "Usage"));
    // Destructive commands need --yes without a terminal, and change nothing.
    for args in [
        &["migrate", "down"][..],
        &["migrate", "reset"],
        &["migrate", "fresh"],
        &["cleanup", "--older-than", "0s"],
        &["workflow", "delete", "hello", "--hard"],
    ] {
        cases.push(case(
            format!("{} without --yes", args.join(" ")),
            args,
            2,
            "--yes",
        ));
    }
    // Names that are not `hello`, however close, never reach it.
    let names = [
        "hello ",
        " hello",
        "HELLO",
        "héllo",
        "hello\t",
        "x'; DROP TABLE workflows; --",
        "%",
        "hel_o",
        "hello%",
        "\\",
        "\u{1b}]0;pwned\u{7}",
    ];
    for name in names {
        for args in [
            vec!["workflow", "show", name],
            vec!["workflow", "delete", name, "--hard", "--yes"],
            vec!["workflow", "delete", name],
            vec!["execution", "list", "--workflow", name],
        ] {
            cases.push(case(format!("{args:?}"), &args, 1, "not found"));
        }
        cases.push(case(
            format!("submit {name:?}"),
            &["submit", name],
            1,
            "no workflow named",
        ));
    }
    cases.push(case(
        "logs --task nosuch",
        &["execution", "logs", id, "--task", "nosuch"],
        1,
        "task 'nosuch' not found",
    ));
    cases.push(case(
        "logs --task injection",
        &["execution", "logs", id, "--task", "a'; DROP TABLE logs; --"],
        1,
        "not found",
    ));
    cases.push(case(
        "submit missing file",
        &["submit", "nope.yaml"],
        1,
        "not found",
    ));
    cases.push(case(
        "run missing file",
        &["run", "nope.yaml"],
        1,
        "not found",
    ));
    cases.push(case(
        "register missing file",
        &["workflow", "register", "missing.yml"],
        1,
        "not found",
    ));
    // Logging at every level prints no password.
    let mut trace = case(
        "RUST_LOG=trace workflow list",
        &[
            "execution",
            "inspect",
            "0193c2a0-0000-7000-8000-000000000000",
        ],
        1,
        "not found",
    );
    trace.env.push(("RUST_LOG".into(), "trace".into()));
    cases.push(trace);
    cases
}

/// Configuration files, each refused with exit 2 naming the key, before any
/// database is created.
fn config_cases(f: &Fixture) -> Vec<Case> {
    let db = f.dir.path().join("data/fs.db").display().to_string();
    let sqlite = |extra: &str| format!("storage:\n  sqlite:\n    path: {db}\n{extra}");
    let mut texts: Vec<(String, String, &str)> = vec![
        (
            "type number".into(),
            "storage:\n  type: 5\n".into(),
            "storage.type",
        ),
        (
            "type unknown".into(),
            "storage:\n  type: sqlit\n".into(),
            "sqlit",
        ),
        (
            "type list".into(),
            "storage:\n  type: [a]\n".into(),
            "storage.type",
        ),
        (
            "type empty".into(),
            "storage:\n  type: ''\n".into(),
            "storage.type",
        ),
        ("storage scalar".into(), "storage: 5\n".into(), "storage"),
        ("storage list".into(), "storage: [1, 2]\n".into(), "storage"),
        ("top list".into(), "[1, 2]\n".into(), "mapping"),
        ("top scalar".into(), "hello\n".into(), "mapping"),
        (
            "unknown top key".into(),
            "storge:\n  type: sqlite\n".into(),
            "storge",
        ),
        (
            "unknown storage key".into(),
            "storage:\n  sqllite: {}\n".into(),
            "storage.sqllite",
        ),
        (
            "unknown engine key".into(),
            "engine:\n  wrokers: 4\n".into(),
            "engine.wrokers",
        ),
        ("not yaml".into(), "storage: [\n".into(), "YAML"),
        ("tabs".into(), "storage:\n\ttype: sqlite\n".into(), "YAML"),
        (
            "postgres without url".into(),
            "storage:\n  type: postgres\n".into(),
            "storage.postgres.url",
        ),
        (
            "postgres url number".into(),
            "storage:\n  type: postgres\n  postgres:\n    url: 5\n".into(),
            "storage.postgres.url",
        ),
        (
            "postgres url is mysql".into(),
            "storage:\n  type: postgres\n  postgres:\n    url: mysql://u@h/db\n".into(),
            "mysql",
        ),
        (
            "mysql url list".into(),
            "storage:\n  type: mysql\n  mysql:\n    url: [a]\n".into(),
            "storage.mysql.url",
        ),
        (
            "sqlite path empty".into(),
            "storage:\n  sqlite:\n    path: ''\n".into(),
            "storage.sqlite.path",
        ),
        (
            "sqlite path list".into(),
            "storage:\n  sqlite:\n    path: [a]\n".into(),
            "storage.sqlite.path",
        ),
        (
            "sqlite section scalar".into(),
            "storage:\n  sqlite: 5\n".into(),
            "storage.sqlite",
        ),
    ];
    for (key, values) in [(
        "busyTimeoutMs",
        &["ten", "-1", "2147483648", "1.5", "true", "[1]", "600001"][..],
    )] {
        for v in values {
            texts.push((
                format!("sqlite.{key}: {v}"),
                format!("storage:\n  sqlite:\n    path: {db}\n    {key}: {v}\n"),
                "storage.sqlite.busyTimeoutMs",
            ));
        }
    }
    for (key, values) in [
        (
            "maxConnections",
            &["ten", "0", "1001", "-1", "1e9", "{}"][..],
        ),
        ("autoMigrate", &["'yes please'", "1", "[true]"]),
        ("retentionDays", &["0", "x", "36501", "-3"]),
    ] {
        for v in values {
            texts.push((
                format!("storage.{key}: {v}"),
                sqlite(&format!("  {key}: {v}\n")),
                key,
            ));
        }
    }
    for (key, values) in [
        ("workers", &["ten", "0", "2000", "-1", "[4]"][..]),
        ("leaseSeconds", &["1", "x", "86401"]),
        ("pollInterval", &["1ms", "abc", "0.5ms", "-1s"]),
        ("shutdownGrace", &["abc", "-5s"]),
        ("metricsAddr", &["nope", "127.0.0.1", "[1]"]),
        ("nodeId", &["''", "[a]"]),
    ] {
        for v in values {
            texts.push((
                format!("engine.{key}: {v}"),
                sqlite(&format!("engine:\n  {key}: {v}\n")),
                key,
            ));
        }
    }
    texts.push((
        "nested 50k".into(),
        format!("storage: {}\n", "[".repeat(50_000)),
        "nest",
    ));
    let mut cases: Vec<Case> = texts
        .into_iter()
        .enumerate()
        .map(|(i, (what, text, says))| {
            let path = f.file(&format!("bad-config-{i}.yaml"), &text);
            with_config(
                case(format!("config {what}"), &["workflow", "list"], 2, says),
                &path,
            )
        })
        .collect();
    let big = f.file("big-config.yaml", &"# padding\n".repeat(1_100_000));
    cases.push(with_config(
        case("config over 10 MB", &["workflow", "list"], 2, "MB"),
        &big,
    ));
    cases.push(with_config(
        case("config file missing", &["workflow", "list"], 1, "not found"),
        "/nonexistent/fs.yaml",
    ));
    let mut empty_env = case(
        "FLOWSTATE_CONFIG empty",
        &["execution", "list"],
        1,
        "no flowstate database",
    );
    empty_env
        .env
        .push(("FLOWSTATE_CONFIG".into(), String::new()));
    cases.push(empty_env);
    cases
}

fn with_config(mut c: Case, path: &str) -> Case {
    c.config = Some(path.to_owned());
    c
}

/// Database URLs that carry a password and are wrong in some way: refused
/// (exit 2) or failing (exit 1), never printing the password.
fn url_cases() -> Vec<Case> {
    let p = "Tr0ub4dor-Hunter2";
    let urls: Vec<(String, i32, &str)> = vec![
        (format!("postgres://u:{p}@127.0.0.1:99999/db"), 2, "port"),
        (format!("postgres://u:{p}@[::1/db"), 2, "postgres://u:***@"),
        (format!("postgres://u:{p}#x@127.0.0.1/db"), 2, "%23"),
        (
            format!("postgres://u:{p}/x@127.0.0.1:1/db"),
            2,
            "postgres://u:***@",
        ),
        (
            format!("postgres://u:{p}?x@127.0.0.1:99999/db"),
            2,
            "postgres://u:***@",
        ),
        (
            format!("postgres://u:{p}@@127.0.0.1:99999/db"),
            2,
            "postgres://u:***@",
        ),
        (
            format!("postgres://u:{p}%40x@127.0.0.1:99999/db"),
            2,
            "port",
        ),
        (
            format!("postgres://127.0.0.1:99999/db?password={p}"),
            2,
            "password=***",
        ),
        (
            format!("postgres://127.0.0.1:99999/db?sslmode=require&sslpassword={p}"),
            2,
            "sslpassword=***",
        ),
        (format!("postgres:u:{p}@127.0.0.1/db"), 2, "postgres://"),
        (format!("postgresql:u:{p}@127.0.0.1/db"), 2, "postgres"),
        (format!("mysql://u:{p}@:3306/db"), 2, "host"),
        (format!("mysql://u:{p}@127.0.0.1:3306"), 2, "database"),
        (format!("mysql://u:{p}@127.0.0.1:3306/"), 2, "database"),
        (format!("mysql:u:{p}@127.0.0.1/db"), 2, "mysql://"),
        (format!("mariadb://u:{p}@127.0.0.1:70000/db"), 2, "port"),
        (format!("ftp://u:{p}@127.0.0.1/db"), 2, "unsupported"),
        (format!("u:{p}@127.0.0.1/db"), 2, "unsupported"),
        (
            format!("mysql://root:{p}@127.0.0.1:3306/test"),
            1,
            "cannot connect",
        ),
        ("sqlite://".into(), 2, "names no file"),
        ("sqlite::memory:".into(), 2, "names no file"),
    ];
    urls.into_iter()
        .map(|(url, code, says)| {
            let mut c = case(
                format!("FLOWSTATE_DATABASE_URL={}", url.replace(p, "PASSWORD")),
                &["execution", "list"],
                code,
                says,
            );
            c.env.push(("FLOWSTATE_DATABASE_URL".into(), url));
            c.secrets.push(p.into());
            c.secrets.push("Hunter2".into());
            c
        })
        .collect()
}

/// Workflow files that must be refused with exit 2 before anything is opened.
fn workflow_cases(f: &Fixture) -> Vec<Case> {
    let task = |extra: &str| format!("name: w\ntasks:\n  - id: a\n    run: echo hi\n{extra}");
    let long = "n".repeat(100_000);
    let mut texts: Vec<(&str, String, &str)> = vec![
        ("not yaml", "name: [\n".into(), "not a valid workflow"),
        ("empty", "".into(), "not a valid workflow"),
        ("scalar", "hello\n".into(), "not a valid workflow"),
        ("no name", "tasks:\n  - id: a\n    run: x\n".into(), "name"),
        ("name with space", "name: 'a b'\ntasks:\n  - id: a\n    run: x\n".into(), "'a b'"),
        ("name trailing space", "name: 'hello '\ntasks:\n  - id: a\n    run: x\n".into(), "'hello '"),
        ("name escape", "name: \"x\\e[31m\"\ntasks:\n  - id: a\n    run: x\n".into(), "\\u{1b}"),
        ("name 100k", format!("name: {long}\ntasks:\n  - id: a\n    run: x\n"), "(100000 characters)"),
        ("name unicode", "name: héllo\ntasks:\n  - id: a\n    run: x\n".into(), "héllo"),
        ("tasks empty", "name: w\ntasks: []\n".into(), "no tasks"),
        ("tasks scalar", "name: w\ntasks: 5\n".into(), "tasks"),
        ("duplicate ids", task("  - id: a\n    run: x\n"), "duplicate"),
        ("unknown need", task("  - id: b\n    run: x\n    needs: [zz]\n"), "'zz'"),
        ("repeated need", task("  - id: b\n    run: x\n    needs: [a, a]\n"), "twice"),
        ("self need", "name: w\ntasks:\n  - id: a\n    run: x\n    needs: [a]\n".into(), "itself"),
        (
            "cycle",
            "name: w\ntasks:\n  - id: a\n    run: x\n    needs: [b]\n  - id: b\n    run: x\n    needs: [a]\n  - id: c\n    run: x\n    needs: [b]\n".into(),
            "a -> b -> a",
        ),
        ("timeout sub-ms", task("    timeout: 0.5ms\n"), "0.5ms"),
        ("timeout zero", task("    timeout: 0s\n"), "timeout"),
        ("timeout words", task("    timeout: soon\n"), "soon"),
        ("retryDelay negative", task("    retryDelay: -1s\n"), "-1s"),
        ("retries 101", task("    retries: 101\n"), "101"),
        ("retries negative", task("    retries: -1\n"), "retries"),
        ("retries text", task("    retries: many\n"), "retries"),
        ("env NUL", task("    env: { A: \"x\\0y\" }\n"), "NUL"),
        (
            "env 3 MB in all",
            task(&format!(
                "    env: {{ {} }}\n",
                (0..25)
                    .map(|i| format!("V{i}: {}", "x".repeat(120_000)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            "bytes together",
        ),
        ("env digit name", task("    env: { 1A: x }\n"), "1A"),
        ("env dash name", task("    env: { A-B: x }\n"), "A-B"),
        ("env space name", task("    env: { 'A B': x }\n"), "A B"),
        ("env empty name", task("    env: { '': x }\n"), "env"),
        ("env list value", task("    env: { A: [1] }\n"), "'A'"),
        ("run empty", "name: w\ntasks:\n  - id: a\n    run: ''\n".into(), "empty"),
        ("run 200k", format!("name: w\ntasks:\n  - id: a\n    run: echo {}\n", "x".repeat(200_000)), "100000"),
        ("run NUL", "name: w\ntasks:\n  - id: a\n    run: \"echo \\0\"\n".into(), "NUL"),
        ("unknown field", task("    retry: 3\n"), "retry"),
        ("id 100k", format!("name: w\ntasks:\n  - id: {long}\n    run: x\n"), "(100000 characters)"),
        ("id escape", "name: w\ntasks:\n  - id: \"a\\e]0;x\\a\"\n    run: x\n".into(), "\\u{1b}"),
        ("nested 50k", format!("name: w\ntasks: {}\n", "[".repeat(50_000)), "nest"),
    ];
    let big = format!(
        "name: w\ntasks:\n  - id: a\n    run: x\n{}",
        "# pad\n".repeat(2_000_000)
    );
    texts.push(("over 10 MB", big, "MB"));
    let mut cases = Vec::new();
    for (i, (what, text, says)) in texts.into_iter().enumerate() {
        let path = f.file(&format!("bad-{i}.yaml"), &text);
        let cmds: &[&[&str]] = if i % 3 == 0 {
            &[&["workflow", "register"], &["run"], &["submit"]]
        } else {
            &[&["workflow", "register"]]
        };
        for cmd in cmds {
            let mut args: Vec<&str> = cmd.to_vec();
            args.push(&path);
            cases.push(case(format!("{} {what}", cmd.join(" ")), &args, 2, says));
        }
    }
    cases
}

/// Read-only commands in a folder without a database: exit 1, nothing created.
fn absent_database_cases() -> Vec<Case> {
    let uuid = "0193c2a0-0000-7000-8000-000000000000";
    [
        &["execution", "list"][..],
        &["execution", "inspect", uuid],
        &["execution", "logs", uuid],
        &["execution", "cancel", uuid],
        &["workflow", "list"],
        &["workflow", "show", "hello"],
        &["workflow", "delete", "hello"],
        &["migrate", "status"],
        &["migrate", "down", "--yes"],
        &["migrate", "reset", "--yes"],
        &["cleanup", "--dry-run"],
        &["cleanup", "--yes"],
        &["submit", "hello"],
    ]
    .iter()
    .map(|args| case(args.join(" "), args, 1, "no flowstate database at"))
    .map(|mut c| {
        if c.args[0] == "submit" {
            c.says = "no flowstate database at".into();
        }
        c
    })
    .chain([
        case(
            "execution list --after abc",
            &["execution", "list", "--after", "abc"],
            2,
            "malformed cursor",
        ),
        case(
            "execution list --offset 10001",
            &["execution", "list", "--offset", "10001"],
            2,
            "10001",
        ),
    ])
    .collect()
}

/// "N cases: P panics, S side effects, L leaks, F other failures".
fn tally(cases: usize, failures: &[String]) -> String {
    let count = |what: &str| failures.iter().filter(|f| f.contains(what)).count();
    let (panics, effects, leaks) = (count("PANIC"), count("SIDE EFFECT"), count("LEAK"));
    format!(
        "{cases} cases: {panics} panics, {effects} side effects, {leaks} leaks, {} other failures",
        failures.len() - panics - effects - leaks
    )
}

/// Reading commands pointed at a file that is not a flowstate database (an
/// empty file, another program's SQLite database) leave it byte for byte as
/// it was: no WAL switch, no header written, no migration table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_that_are_not_flowstate_databases_are_left_alone() {
    let f = Fixture::empty();
    let data = f.dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let db = data.join("fs.db");
    let other = sea_orm::Database::connect(format!("sqlite://{}?mode=rwc", db.display()))
        .await
        .unwrap();
    other
        .execute_unprepared("PRAGMA journal_mode = DELETE; CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES ('mine')")
        .await
        .unwrap();
    other.close().await.unwrap();
    let mut failures = Vec::new();
    for contents in [
        None,
        Some(Vec::new()),
        Some(b"not a database at all".to_vec()),
    ] {
        if let Some(bytes) = &contents {
            std::fs::write(&db, bytes).unwrap();
        }
        let mut cases: Vec<Case> = [
            &["execution", "list"][..],
            &["workflow", "list"],
            &["migrate", "down", "--yes"],
            &["migrate", "reset", "--yes"],
            &["cleanup", "--yes"],
        ]
        .iter()
        .map(|args| case(args.join(" "), args, 1, "no flowstate database at"))
        .collect();
        // status reads a SQLite database as it is: every migration pending.
        cases.push(match &contents {
            None => case("migrate status", &["migrate", "status"], 0, ""),
            Some(_) => case(
                "migrate status",
                &["migrate", "status"],
                1,
                "no flowstate database at",
            ),
        });
        let label = match &contents {
            None => "another program's database",
            Some(b) if b.is_empty() => "empty file",
            Some(_) => "not SQLite",
        };
        failures.extend(f.check(&cases, label).await);
    }
    report(failures);
}

fn report(failures: Vec<String>) {
    if !failures.is_empty() {
        panic!(
            "{} hostile cases failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}

/// Configuration, URL, workflow-file and absent-database cases: refused
/// before any database is opened, so a folder without one proves that
/// nothing was created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_before_anything_is_opened() {
    let f = Fixture::empty();
    let mut failures = Vec::new();
    let mut total = 0;
    for (label, cases) in [
        ("config", config_cases(&f)),
        ("url", url_cases()),
        ("workflow file", workflow_cases(&f)),
        ("absent database", absent_database_cases()),
    ] {
        total += cases.len();
        failures.extend(f.check(&cases, label).await);
    }
    eprintln!("hostile [before opening]: {}", tally(total, &failures));
    assert!(total >= 150, "only {total} cases");
    report(failures);
}

async fn against_a_database(backend: Backend) {
    let Some((f, id)) = Fixture::seeded(backend).await else {
        return;
    };
    let cases = database_cases(&id);
    let n = cases.len();
    let failures = f.check(&cases, &backend.to_string()).await;
    eprintln!("hostile [{backend}]: {}", tally(n, &failures));
    assert!(n >= 100, "only {n} cases");
    tasks_do_not_inherit_connection_settings(&f);
    // The workflow the near-miss names aimed at is intact.
    let shown = f.ok(&["--json", "workflow", "show", "hello"]);
    assert!(shown.contains("\"name\":\"hello\""), "{shown}");
    report(failures);
}

/// Every task inherited `FLOWSTATE_DATABASE_URL`: a task that printed its
/// environment wrote the password into the logs table.
fn tasks_do_not_inherit_connection_settings(f: &Fixture) {
    let db = f.db.as_ref().unwrap();
    let url = f
        .url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", db.config.sqlite.path.display()));
    let wf = f.file(
        "env.yaml",
        "name: envdump\ntasks:\n  - id: dump\n    run: env; echo \"db=${FLOWSTATE_DATABASE_URL:-unset} url=${DATABASE_URL:-unset} cfg=${FLOWSTATE_CONFIG:-unset}\"\n",
    );
    let env: Vec<(String, String)> = vec![
        ("FLOWSTATE_DATABASE_URL".into(), url.clone()),
        ("DATABASE_URL".into(), url),
        ("FLOWSTATE_CONFIG".into(), f.config.display().to_string()),
    ];
    let run = f
        .cmd(&["--json".into(), "run".into(), wf], &env, None)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "{stdout}"
    );
    assert!(stdout.contains("db=unset url=unset cfg=unset"), "{stdout}");
    let id = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v.get("state").and(v["id"].as_str().map(str::to_owned)))
        .expect("the execution object");
    let logs = f.ok(&["--json", "execution", "logs", &id]);
    assert!(logs.contains("db=unset url=unset cfg=unset"), "{logs}");
    assert!(!logs.contains(SECRET) && !logs.contains("FLOWSTATE_DATABASE_URL="));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_sqlite() {
    against_a_database(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_postgres() {
    against_a_database(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_mysql() {
    against_a_database(Backend::Mysql).await;
}
