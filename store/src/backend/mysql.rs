//! MySQL and MariaDB: InnoDB row locks with SKIP LOCKED (MySQL 8, MariaDB
//! 10.6); deadlocks and lock wait timeouts are retried. Log pages are read
//! row by row: MariaDB's JSON_ARRAYAGG is cut at `group_concat_max_len`
//! (1 MiB by default), which a page of long lines passes.

use super::Backend;
use sea_orm::{IsolationLevel, TransactionOptions};

pub(crate) struct MySql;

impl Backend for MySql {
    fn write_transaction(&self) -> TransactionOptions {
        // READ COMMITTED, as on PostgreSQL: under InnoDB's default REPEATABLE
        // READ, the claim's locking range scans take gap locks, and four
        // claimers deadlocked on them often enough to exhaust the retries
        // (the claim of due retries before new work scans a range that is
        // usually empty: all gap).
        TransactionOptions {
            isolation_level: Some(IsolationLevel::ReadCommitted),
            ..Default::default()
        }
    }

    fn migration_lock(&self) -> Option<&'static str> {
        // A session lock: DDL commits implicitly, so no transaction can hold it.
        Some("SELECT GET_LOCK('flowstate_migrate', 300)")
    }

    fn migration_unlock(&self) -> Option<&'static str> {
        Some("SELECT RELEASE_LOCK('flowstate_migrate')")
    }

    /// sqlx sends a `DateTime<Utc>` as a MySQL `TIMESTAMP`, which ends in
    /// 2038: MariaDB turns a later instant into zero, so `created_at <
    /// '2099-01-01'` matched nothing. The columns are `DATETIME(6)` in UTC;
    /// a naive UTC instant is sent as `DATETIME` and compares as one.
    fn bind_times(&self, values: &mut sea_orm::sea_query::Values) {
        use sea_orm::sea_query::Value;
        for v in values.0.iter_mut() {
            if let Value::ChronoDateTimeUtc(Some(t)) = v {
                *v = Value::ChronoDateTime(Some(t.naive_utc()));
            }
        }
    }

    fn is_transient(&self, code: &str) -> bool {
        // sqlx reports the SQLSTATE: 40001 is ER_LOCK_DEADLOCK (1213),
        // HY000 covers ER_LOCK_WAIT_TIMEOUT (1205) and is too broad, so only
        // the deadlock is retried here.
        matches!(code, "40001")
    }

    fn columns_query(&self) -> &'static str {
        // CAST: MySQL 8 returns catalogue names as binary strings.
        "SELECT CAST(table_name AS CHAR), CAST(column_name AS CHAR) \
         FROM information_schema.columns WHERE table_schema = DATABASE()"
    }
}
