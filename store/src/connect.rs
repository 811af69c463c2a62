//! Opening a connection pool for a [`StorageConfig`].
//!
//! SQLite gets its pragmas on every pooled connection (WAL, foreign keys,
//! busy timeout, synchronous NORMAL) and a deliberately sized pool. Servers
//! that are down or refuse get retried with back-off for a bounded time, then a
//! clear error naming where we tried to go.

use crate::config::{StorageConfig, StorageType};
use crate::error::{Result, StoreError};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
/// The connection pool [`connect`] opens, for callers (the migration
/// commands) that hold one without a store.
pub use sea_orm::DatabaseConnection;
use sea_orm::{ConnectOptions, Database};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long to keep retrying a server that does not answer.
pub const DEFAULT_CONNECT_DEADLINE: Duration = Duration::from_secs(10);

/// Whether opening may bring a database into being.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Create the SQLite file (and its folder) when missing, and apply the
    /// schema when `autoMigrate` allows: `run`, `serve`, `submit`,
    /// `workflow register`, `migrate up|fresh`.
    Create,
    /// The database must already exist (with a flowstate schema, once the
    /// store opens): every other command. Nothing is created, so a command
    /// run in the wrong folder says so instead of leaving an empty database.
    Existing,
    /// As [`Existing`](Access::Existing), for a command that only reads
    /// (`execution list|inspect|logs`, `workflow list|show`): one connection,
    /// opened without the writers' settings, because opening is most of
    /// such a command's time (about 7 ms of it, measured in issue 13).
    Read,
}

/// Connects with [`DEFAULT_CONNECT_DEADLINE`], creating a SQLite file when missing.
pub async fn connect(config: &StorageConfig) -> Result<DatabaseConnection> {
    connect_within(config, Access::Create, DEFAULT_CONNECT_DEADLINE).await
}

/// Connects, retrying a server for at most `deadline` before giving up. With
/// [`Access::Existing`] a missing SQLite file is [`StoreError::NoDatabase`].
pub async fn connect_within(
    config: &StorageConfig,
    access: Access,
    deadline: Duration,
) -> Result<DatabaseConnection> {
    // A reader runs its queries one after another: a second connection
    // would only cost a second handshake (and, on SQLite, a second parse
    // of the schema).
    let pool_size = match access {
        Access::Read => 1,
        _ => config.max_connections,
    };
    let mut db = match config.kind {
        StorageType::Sqlite => connect_sqlite(config, Some(access), pool_size, 1).await?,
        StorageType::Postgres | StorageType::Mysql => {
            connect_server(config, deadline, pool_size).await?
        }
    };
    db.set_metric_callback(count_statement);
    Ok(db)
}

/// Counts every statement SeaORM runs (not BEGIN and COMMIT) as
/// `flowstate_store_statements_total`: through sqlx a statement costs about
/// 100-150 us whatever the database does, so round trips per execution are
/// the number that decides throughput. Without a metrics recorder (every
/// command but `serve` with `metricsAddr`) the count is a no-op.
fn count_statement(_: &sea_orm::metric::Info<'_>) {
    metrics::counter!("flowstate_store_statements_total").increment(1);
}

/// The error for a SQLite file that is not there, naming the way to create it.
pub(crate) fn no_database(config: &StorageConfig, why: &str) -> StoreError {
    StoreError::NoDatabase {
        target: config.display_target(),
        hint: why.to_owned(),
    }
}

/// The SQLite writers' own connection, for a database [`connect`] has
/// opened: a pool of one, connected at the first write (a command that only
/// reads never opens it).
///
/// SQLite drops a connection's page cache whenever another connection has
/// written since its last transaction, and sqlx hands out its pooled
/// connections in turn: with writes spread over the pool, every write
/// transaction began with a cold cache and read its pages again (`pread`
/// was 7% of the engine's CPU during a drain; perf, 2026-11-30). The
/// writers of one process take turns anyway (`sea::write::Gate`), so one
/// connection loses nothing and keeps its cache warm.
///
/// The file is not checked again: reading it through a handle of our own
/// and closing that handle would drop every POSIX lock this process holds
/// on it, SQLite's included (seen as `disk I/O error` 522, a short read, in
/// another store opening the same file).
pub(crate) async fn connect_sqlite_writer(config: &StorageConfig) -> Result<DatabaseConnection> {
    let mut db = connect_sqlite(config, None, 1, 0).await?;
    db.set_metric_callback(count_statement);
    Ok(db)
}

/// A pool of `pool_size` SQLite connections, `min_connections` of them
/// opened now. With `access`, the file is checked (or its folder prepared)
/// first, as that access allows; without, it is the file an open pool of
/// this process uses already, and only opened (lazily when
/// `min_connections` is 0).
async fn connect_sqlite(
    config: &StorageConfig,
    access: Option<Access>,
    pool_size: u32,
    min_connections: u32,
) -> Result<DatabaseConnection> {
    let path = config.sqlite.path.clone();
    match access {
        Some(Access::Existing | Access::Read) => check_sqlite_file(config)?,
        Some(Access::Create) if !path.is_file() => prepare_sqlite_folder(&path)?,
        Some(Access::Create) | None => {}
    }
    let busy = Duration::from_millis(config.sqlite.busy_timeout_ms);
    // SQLite's pages are 4 KiB here (its default, never changed).
    let max_pages = config.sqlite.max_size_mb.map(|mb| mb * 256);
    let mut opts = ConnectOptions::new(format!("sqlite://{}", path.display()));
    opts.max_connections(pool_size)
        .min_connections(min_connections)
        .connect_lazy(min_connections == 0)
        // sqlx pings a pooled connection before every use by default: on
        // SQLite that is one more round trip to the connection's thread
        // for each statement, to check a file handle that cannot hang up
        // the way a server can (issue 13).
        .test_before_acquire(false)
        .acquire_timeout(busy.max(Duration::from_secs(5)))
        .sqlx_logging(false)
        .map_sqlx_sqlite_pool_opts(|o| {
            o.after_connect(|conn, _| Box::pin(async move { stable_plans(conn).await }))
        })
        .map_sqlx_sqlite_opts(move |o| {
            let o = o
                .filename(&path)
                .create_if_missing(access == Some(Access::Create))
                .foreign_keys(true)
                .busy_timeout(busy)
                .synchronous(SqliteSynchronous::Normal)
                // sqlx's SQLite worker thread hands rows to the async side
                // through a channel of 50 by default, so a page of log
                // lines went back and forth between the two threads every
                // 50 rows; a larger channel lets the worker run ahead.
                .row_buffer_size(1024);
            let o = match max_pages {
                Some(n) => o.pragma("max_page_count", n.to_string()),
                None => o,
            };
            // WAL is a property of the file, kept once set: a database
            // flowstate created is WAL already. Asking for it on a file that
            // must merely exist would rewrite someone else's database.
            match access {
                Some(Access::Create) => o.journal_mode(SqliteJournalMode::Wal),
                Some(Access::Existing | Access::Read) | None => o,
            }
        });
    Database::connect(opts)
        .await
        .map_err(|e| StoreError::Connect {
            target: config.display_target(),
            message: crate::redact::redact(&format!(
                "{e}; check that storage.sqlite.path is a writable file"
            )),
        })
}

/// Turns on SQLite's query planner stability guarantee for a new connection.
///
/// Without it, SQLite plans a statement with the values bound to it: a
/// `LIMIT ?` (which SeaORM gives every `.one()` and every page) is read while
/// planning, so binding it again marks the prepared statement expired and
/// SQLite compiles it anew on the next step. sqlx binds every value on every
/// run, so each such statement was compiled on every execution (211
/// compilations for 202 log pages, counted with a probe on
/// `sqlite3LockAndPrepare`): most of what made a get by id cost 2.7x the raw
/// sqlx statement (issue 13). With the guarantee, a statement keeps the plan
/// it was prepared with, which is also what the plan tests assume.
async fn stable_plans(conn: &mut sea_orm::sqlx::SqliteConnection) -> sea_orm::sqlx::Result<()> {
    use libsqlite3_sys::{sqlite3_db_config, SQLITE_DBCONFIG_ENABLE_QPSG, SQLITE_OK};
    let mut handle = conn.lock_handle().await?;
    // SAFETY: the handle is this connection's open database, locked for us
    // while we hold `handle`; the option takes an int and a nullable int
    // pointer for the previous setting, which we do not ask for.
    let rc = unsafe {
        sqlite3_db_config(
            handle.as_raw_handle().as_ptr(),
            SQLITE_DBCONFIG_ENABLE_QPSG,
            1 as std::ffi::c_int,
            std::ptr::null_mut::<std::ffi::c_int>(),
        )
    };
    if rc != SQLITE_OK {
        return Err(sea_orm::sqlx::Error::Configuration(
            format!("cannot enable SQLite's query planner stability guarantee (code {rc})").into(),
        ));
    }
    Ok(())
}

/// A file that must already be a database: there, not empty, and starting
/// with SQLite's header. Read before any connection, so nothing is written to
/// a file that turns out to be something else.
fn check_sqlite_file(config: &StorageConfig) -> Result<()> {
    use std::io::Read;
    const CREATE: &str = "create one with `flowstate migrate up` (or `flowstate run FILE`), or point --config at the right one";
    let path = &config.sqlite.path;
    let mut header = [0u8; 16];
    let read = std::fs::File::open(path).and_then(|mut f| f.read(&mut header));
    match read {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(no_database(config, CREATE)),
        Err(e) => Err(no_database(config, &format!("it cannot be read ({e})"))),
        Ok(0) => Err(no_database(config, &format!("the file is empty; {CREATE}"))),
        Ok(_) if &header != b"SQLite format 3\0" => Err(no_database(
            config,
            "the file is not a SQLite database; point --config or storage.sqlite.path at the right one",
        )),
        Ok(_) => Ok(()),
    }
}

/// Creates the database's folder and proves it writable, so the failure names
/// the folder instead of surfacing later as an opaque driver error.
fn prepare_sqlite_folder(path: &Path) -> Result<()> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let fail = |what: &str, e: std::io::Error| {
        StoreError::Config(format!(
            "storage.sqlite.path '{}': cannot {what} folder '{}': {e}; choose a writable location",
            crate::text::shown(&path.display().to_string()),
            crate::text::shown(&folder.display().to_string())
        ))
    };
    std::fs::create_dir_all(folder).map_err(|e| fail("create", e))?;
    let probe = folder.join(format!(".flowstate-write-probe-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| fail("write to", e))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

async fn connect_server(
    config: &StorageConfig,
    deadline: Duration,
    pool_size: u32,
) -> Result<DatabaseConnection> {
    let url = config.url.clone().ok_or_else(|| {
        StoreError::Config(format!("storage.type is {} but no url is set", config.kind))
    })?;
    // sqlx retries refused and unreachable servers with back-off until the
    // acquire timeout; that timeout is our deadline, and stays the bound on
    // waiting for a pooled connection later.
    let mut opts = ConnectOptions::new(url.as_str());
    opts.max_connections(pool_size)
        .min_connections(0)
        .connect_timeout(deadline.min(Duration::from_secs(5)))
        .acquire_timeout(deadline)
        // sqlx pings a pooled connection before every use by default: a
        // round trip per transaction and per statement outside one (TCP
        // segments per execution of a 10k PostgreSQL drain, one pair: 7.1
        // with the pings, 6.3 without). A connection used within the last
        // second answered then; one idle longer (after a restart, a killed
        // backend) is still checked, and one killed while busy fails its
        // statement, which the engine retries as an outage.
        .test_before_acquire_if_idle_for(Duration::from_secs(1))
        .sqlx_logging(false);
    let started = Instant::now();
    Database::connect(opts).await.map_err(|e| StoreError::Connect {
        target: config.display_target(),
        message: crate::redact::redact_text(
            &format!(
                "{e} (gave up after {:.1}s); check that the server is running and that the URL, user and database are right",
                started.elapsed().as_secs_f64()
            ),
            &crate::redact::secrets_of(&url),
        ),
    })
}

/// The server URL `url` naming database `name` instead of its own, with the
/// same scheme, user, host and connection parameters (`?sslmode=...`): how
/// the tests and the bench reach the databases they create on a server.
pub fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    match rest.split_once('?') {
        Some((_, query)) => format!("{scheme}://{authority}/{name}?{query}"),
        None => format!("{scheme}://{authority}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn another_database_keeps_the_connection_parameters() {
        let cases = [
            ("postgres://u@h:5432/test", "postgres://u@h:5432/x"),
            (
                "postgres://u@h:5432/test?sslmode=disable",
                "postgres://u@h:5432/x?sslmode=disable",
            ),
            (
                "postgres://u@h:5432?sslmode=require",
                "postgres://u@h:5432/x?sslmode=require",
            ),
            ("mysql://root@h:3306/test", "mysql://root@h:3306/x"),
        ];
        for (url, other) in cases {
            assert_eq!(with_database(url, "x"), other, "{url}");
        }
    }
}
