//! The shared harness of flowstate's integration tests.
//!
//! Every test runs against real databases: a temporary SQLite file, and the
//! PostgreSQL and MariaDB/MySQL servers named by `FLOWSTATE_TEST_POSTGRES_URL`
//! and `FLOWSTATE_TEST_MYSQL_URL`. Each test gets a freshly created database
//! with a random name, dropped when the test ends, so tests run in parallel.
//!
//! A backend whose URL is unset is skipped with one loud `SKIP` line, unless
//! `FLOWSTATE_TEST_REQUIRE` names it (`postgres,mysql`): then the test fails.
//!
//! Write a test once as `async fn name(db: TestDb)` and list it in
//! [`backend_tests!`]; it becomes `name::sqlite`, `name::postgres` and
//! `name::mysql`.

pub mod http;

use flowstate_store::{SeaStore, StorageConfig};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use std::fmt;
use std::future::Future;
use std::time::Duration;

/// A database backend under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A temporary SQLite file.
    Sqlite,
    /// A database on the PostgreSQL server.
    Postgres,
    /// A database on the MariaDB/MySQL server.
    Mysql,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::Mysql => "mysql",
        })
    }
}

impl Backend {
    fn env_var(&self) -> Option<&'static str> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres => Some("FLOWSTATE_TEST_POSTGRES_URL"),
            Backend::Mysql => Some("FLOWSTATE_TEST_MYSQL_URL"),
        }
    }

    fn required(&self) -> bool {
        std::env::var("FLOWSTATE_TEST_REQUIRE")
            .unwrap_or_default()
            .split(',')
            .any(|b| b.trim().eq_ignore_ascii_case(&self.to_string()))
    }
}

/// A fresh, empty database for one test, removed when dropped.
pub struct TestDb {
    /// Which backend it lives on.
    pub backend: Backend,
    /// Its URL (`sqlite://PATH` for SQLite).
    pub url: String,
    /// A storage configuration pointing at it, with `autoMigrate: true`.
    pub config: StorageConfig,
    dir: Option<tempfile::TempDir>,
    server: Option<(String, String)>,
}

impl TestDb {
    /// Creates the database, or returns `None` (after printing why) when the
    /// backend is not configured and not required.
    pub async fn create(backend: Backend) -> Option<TestDb> {
        let Some(var) = backend.env_var() else {
            let dir = tempfile::tempdir().expect("create a temporary folder");
            let path = dir.path().join("flowstate.db");
            let url = format!("sqlite://{}", path.display());
            let config = StorageConfig::default().with_url(&url).expect("sqlite url");
            return Some(TestDb {
                backend,
                url,
                config,
                dir: Some(dir),
                server: None,
            });
        };
        let admin = match std::env::var(var) {
            Ok(url) if !url.trim().is_empty() => url,
            _ => match server_from_container(backend).await {
                Ok(url) => url,
                Err(why) => {
                    let why = format!(
                        "{var} is not set ({why}); set it to a server URL to run these tests"
                    );
                    if backend.required() {
                        panic!("FLOWSTATE_TEST_REQUIRE names {backend} but {why}");
                    }
                    eprintln!("SKIP {backend}: {why}");
                    return None;
                }
            },
        };
        let name = format!("fs_test_{}", uuid::Uuid::new_v4().simple());
        let conn = admin_connection(&admin).await;
        conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("create database {name} on {backend}: {e}"));
        let _ = conn.close().await;
        let url = flowstate_store::connect::with_database(&admin, &name);
        let mut config = StorageConfig::default().with_url(&url).expect("server url");
        config.max_connections = 10;
        Some(TestDb {
            backend,
            url,
            config,
            dir: None,
            server: Some((admin, name)),
        })
    }

    /// Opens the store on this database (migrating it).
    pub async fn store(&self) -> SeaStore {
        SeaStore::open(&self.config)
            .await
            .unwrap_or_else(|e| panic!("open store on {}: {e}", self.backend))
    }

    /// A plain connection pool, without any schema check.
    pub async fn raw(&self) -> DatabaseConnection {
        flowstate_store::connect::connect(&self.config)
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.backend))
    }

    /// A `storage:` section pointing at this database, for config files.
    pub fn storage_yaml(&self) -> String {
        match self.backend {
            Backend::Sqlite => format!(
                "storage:\n  sqlite:\n    path: {}\n",
                self.config.sqlite.path.display()
            ),
            Backend::Postgres => {
                format!(
                    "storage:\n  type: postgres\n  postgres:\n    url: {}\n",
                    self.url
                )
            }
            Backend::Mysql => format!("storage:\n  type: mysql\n  mysql:\n    url: {}\n", self.url),
        }
    }

    /// The SQLite file's folder (SQLite only).
    pub fn folder(&self) -> Option<&std::path::Path> {
        self.dir.as_ref().map(|d| d.path())
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.server.take() else {
            return;
        };
        let backend = self.backend;
        // Drop runs outside any runtime we may block; use a thread of our own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let conn = admin_connection(&admin).await;
                let sql = match backend {
                    Backend::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                    _ => format!("DROP DATABASE IF EXISTS {name}"),
                };
                if let Err(e) = conn.execute_unprepared(&sql).await {
                    eprintln!("warning: could not drop test database {name}: {e}");
                }
                let _ = conn.close().await;
            });
        })
        .join();
    }
}

#[cfg(not(feature = "testcontainers"))]
async fn server_from_container(_: Backend) -> Result<String, String> {
    Err("and the `testcontainers` feature is off".into())
}

/// Starts the backend's server in a container once per test process, with a
/// current image tag, and returns its URL; fails when Docker is not reachable.
#[cfg(feature = "testcontainers")]
async fn server_from_container(backend: Backend) -> Result<String, String> {
    use testcontainers_modules::testcontainers::runners::AsyncRunner;
    use testcontainers_modules::testcontainers::{ContainerAsync, ImageExt};
    use testcontainers_modules::{mariadb::Mariadb, postgres::Postgres};
    use tokio::sync::OnceCell;

    // Kept for the life of the process: the servers outlive every test in it.
    static PG: OnceCell<Result<(ContainerAsync<Postgres>, String), String>> = OnceCell::const_new();
    static MY: OnceCell<Result<(ContainerAsync<Mariadb>, String), String>> = OnceCell::const_new();
    let failed = |e: &dyn fmt::Display| format!("and no container could be started: {e}");
    match backend {
        Backend::Postgres => PG
            .get_or_init(|| async {
                let c = Postgres::default()
                    .with_tag("15-alpine")
                    .start()
                    .await
                    .map_err(|e| failed(&e))?;
                let port = c.get_host_port_ipv4(5432).await.map_err(|e| failed(&e))?;
                Ok((
                    c,
                    format!("postgres://postgres:postgres@127.0.0.1:{port}/postgres"),
                ))
            })
            .await
            .as_ref()
            .map(|(_, url)| url.clone())
            .map_err(Clone::clone),
        Backend::Mysql => MY
            .get_or_init(|| async {
                let c = Mariadb::default()
                    .with_tag("10.11")
                    .start()
                    .await
                    .map_err(|e| failed(&e))?;
                let port = c.get_host_port_ipv4(3306).await.map_err(|e| failed(&e))?;
                Ok((c, format!("mysql://root@127.0.0.1:{port}/test")))
            })
            .await
            .as_ref()
            .map(|(_, url)| url.clone())
            .map_err(Clone::clone),
        Backend::Sqlite => Err("SQLite needs no server".into()),
    }
}

async fn admin_connection(url: &str) -> DatabaseConnection {
    let mut opts = sea_orm::ConnectOptions::new(url.to_owned());
    opts.max_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    sea_orm::Database::connect(opts)
        .await
        .unwrap_or_else(|e| panic!("connect to the test server {url}: {e}"))
}

/// Runs `test` on a fresh database of `backend`, unless that backend is skipped.
pub async fn run<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    if let Some(db) = TestDb::create(backend).await {
        test(db).await;
    }
}

/// Generates `name::sqlite`, `name::postgres` and `name::mysql` for each
/// `async fn name(db: TestDb)`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    $crate::run($crate::Backend::Sqlite, super::$name).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    $crate::run($crate::Backend::Postgres, super::$name).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn mysql() {
                    $crate::run($crate::Backend::Mysql, super::$name).await;
                }
            }
        )+
    };
}

/// Every log line of an execution, read page by page (`page` lines a read,
/// each page after the last id of the one before), in id order.
pub async fn all_logs(
    store: &dyn flowstate_store::StateOps,
    execution_id: uuid::Uuid,
    page: u64,
) -> Vec<flowstate_store::types::LogLine> {
    let mut got = Vec::new();
    let mut after = None;
    loop {
        let lines = store
            .read_logs(flowstate_store::query::LogQuery {
                execution_id,
                after_id: after,
                limit: Some(page),
                ..Default::default()
            })
            .await
            .unwrap();
        let Some(last) = lines.last() else { break };
        after = Some(last.id);
        got.extend(lines);
    }
    got
}

/// Runs `sql` and returns the first column of every row as text.
pub async fn query_strings(db: &DatabaseConnection, sql: &str) -> Vec<String> {
    let backend = db.get_database_backend();
    db.query_all_raw(Statement::from_string(backend, sql.to_owned()))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| {
            r.try_get_by_index::<String>(0)
                .or_else(|_| r.try_get_by_index::<i64>(0).map(|n| n.to_string()))
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
        })
        .collect()
}

/// Saves a workflow named `name` with an empty definition (for tests that
/// only need executions to hang under one), returning it.
pub async fn empty_workflow(
    store: &dyn flowstate_store::StateOps,
    name: &str,
) -> flowstate_store::types::Workflow {
    store
        .save_workflow(flowstate_store::types::NewWorkflow {
            name: name.into(),
            definition: serde_json::json!({}),
            description: None,
        })
        .await
        .unwrap_or_else(|e| panic!("save workflow {name}: {e}"))
        .workflow
}

/// Runs `sql` and returns the single integer it selects.
pub async fn query_count(db: &DatabaseConnection, sql: &str) -> i64 {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_string(backend, sql.to_owned()))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .unwrap_or_else(|| panic!("{sql}: no row"));
    row.try_get_by_index::<i64>(0)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// A sorted description of the schema (tables, columns with types and, on
/// MySQL, collations, indexes with their columns, foreign keys), comparable
/// across runs.
/// The migration table and SQLite's own tables are left out.
pub async fn schema_snapshot(db: &DatabaseConnection) -> Vec<String> {
    let sql = match db.get_database_backend() {
        DbBackend::Sqlite => {
            "SELECT type || ' ' || name || ': ' || sql FROM sqlite_master \
             WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' AND name <> 'seaql_migrations'"
        }
        DbBackend::Postgres => {
            "SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable \
               FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'seaql_migrations' \
             UNION ALL SELECT 'index ' || indexname || ': ' || indexdef FROM pg_indexes \
               WHERE schemaname = 'public' AND tablename <> 'seaql_migrations' \
             UNION ALL SELECT 'constraint ' || conname || ': ' || pg_get_constraintdef(oid) FROM pg_constraint \
               WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text <> 'seaql_migrations'"
        }
        _ => {
            "SELECT CONCAT('column ', table_name, '.', column_name, ' ', column_type, ' ', is_nullable, \
               ' ', COALESCE(collation_name, '')) \
               FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name <> 'seaql_migrations' \
             UNION ALL SELECT CONCAT('index ', table_name, '.', index_name, ' ', non_unique, ' ', \
               GROUP_CONCAT(column_name ORDER BY seq_in_index)) FROM information_schema.statistics \
               WHERE table_schema = DATABASE() AND table_name <> 'seaql_migrations' GROUP BY table_name, index_name, non_unique \
             UNION ALL SELECT CONCAT('fk ', r.constraint_name, ' ', r.table_name, '->', r.referenced_table_name, ' ', r.delete_rule) \
               FROM information_schema.referential_constraints r WHERE r.constraint_schema = DATABASE()"
        }
    };
    let mut rows = query_strings(db, sql).await;
    rows.sort();
    rows
}

/// The user tables of the database, sorted.
pub async fn table_names(db: &DatabaseConnection) -> Vec<String> {
    let sql = match db.get_database_backend() {
        DbBackend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
        DbBackend::Postgres => {
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'"
        }
        _ => "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()",
    };
    let mut names = query_strings(db, sql).await;
    names.sort();
    names
}

/// The index names of the database, sorted (primary keys left out).
pub async fn index_names(db: &DatabaseConnection) -> Vec<String> {
    let sql = match db.get_database_backend() {
        DbBackend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        }
        DbBackend::Postgres => {
            "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public' AND indexname NOT LIKE '%_pkey'"
        }
        _ => {
            "SELECT DISTINCT index_name FROM information_schema.statistics \
             WHERE table_schema = DATABASE() AND index_name <> 'PRIMARY'"
        }
    };
    let mut names = query_strings(db, sql).await;
    names.sort();
    names
}

/// Processes of this machine as `/proc` shows them, for tests of what an
/// engine leaves running (Linux only).
pub mod procs {
    /// One line of `/proc/PID/stat`, the fields the tests need.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Stat {
        /// The process id.
        pub pid: i32,
        /// Its command name (15 characters at most).
        pub comm: String,
        /// Its state letter (`Z` for a zombie).
        pub state: char,
        /// Its parent's id.
        pub ppid: i32,
    }

    /// The stat line of `pid`, if the process exists.
    pub fn stat(pid: i32) -> Option<Stat> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name is in parentheses and may hold spaces.
        let (head, rest) = text.rsplit_once(") ")?;
        let (_, comm) = head.split_once(" (")?;
        let mut fields = rest.split(' ');
        let state = fields.next()?.chars().next()?;
        let ppid = fields.next()?.parse().ok()?;
        Some(Stat {
            pid,
            comm: comm.to_owned(),
            state,
            ppid,
        })
    }

    /// Every process, zombies included.
    pub fn all() -> Vec<Stat> {
        std::fs::read_dir("/proc")
            .map(|dir| {
                dir.flatten()
                    .filter_map(|e| e.file_name().to_str()?.parse().ok())
                    .filter_map(stat)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether `pid` exists and is not a zombie.
    pub fn alive(pid: i32) -> bool {
        stat(pid).is_some_and(|s| s.state != 'Z')
    }

    /// Whether `pid`'s environment holds `var` (`NAME=value`), as it was
    /// when the process started.
    pub fn has_env(pid: i32, var: &str) -> bool {
        std::fs::read(format!("/proc/{pid}/environ"))
            .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == var.as_bytes()))
    }

    /// Whether `pid` descends from `ancestor`.
    pub fn descends_from(pid: i32, ancestor: i32) -> bool {
        let mut p = pid;
        while let Some(s) = stat(p) {
            if s.ppid == ancestor {
                return true;
            }
            if s.ppid <= 1 {
                return false;
            }
            p = s.ppid;
        }
        false
    }
}
