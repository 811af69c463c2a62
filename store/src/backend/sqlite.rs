//! SQLite: one writer at a time, so write transactions begin IMMEDIATE and
//! there is no row locking to ask for.

use super::Backend;
use sea_orm::sea_query::SelectStatement;
use sea_orm::{SqliteTransactionMode, TransactionOptions};

pub(crate) struct Sqlite;

impl Backend for Sqlite {
    fn write_transaction(&self) -> TransactionOptions {
        TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        }
    }

    fn one_writer(&self) -> bool {
        true
    }

    fn is_transient(&self, code: &str) -> bool {
        // SQLITE_BUSY (5) and its extended codes, SQLITE_LOCKED (6).
        matches!(code, "5" | "6" | "261" | "517" | "262")
    }

    fn pause_between_batches(&self, last: std::time::Duration) -> std::time::Duration {
        // A third of the batch's time: writers get in, the purge keeps 75% of the lock.
        (last / 3).clamp(
            std::time::Duration::from_millis(5),
            std::time::Duration::from_millis(250),
        )
    }

    fn lock_claimed(&self, _: &mut SelectStatement) {
        // The IMMEDIATE transaction already holds the only write lock.
    }

    fn use_index(&self, sql: &mut String, table: &str, index: &str) {
        let from = format!("FROM \"{table}\"");
        if let Some(at) = sql.find(&from) {
            sql.insert_str(at + from.len(), &format!(" INDEXED BY \"{index}\""));
        }
    }

    fn logs_as_json(&self) -> Option<&'static str> {
        // Ids are blobs here: hex, and '' for NULL.
        Some("json_group_array(json_array(id, lower(hex(task_run_id)), attempt, ts, stream, line))")
    }

    fn row_lock_suffix(&self) -> &'static str {
        ""
    }

    fn columns_query(&self) -> &'static str {
        "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table'"
    }
}
