//! SQLite: one writer at a time, so write transactions begin IMMEDIATE and
//! there is no row locking to ask for.

use super::Backend;
use sea_orm::{SqliteTransactionMode, TransactionOptions};

pub(crate) struct Sqlite;

impl Backend for Sqlite {
    fn write_transaction(&self) -> TransactionOptions {
        TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        }
    }

    fn is_transient(&self, code: &str) -> bool {
        // SQLITE_BUSY (5) and its extended codes, SQLITE_LOCKED (6).
        matches!(code, "5" | "6" | "261" | "517" | "262")
    }

    fn claim_lock_suffix(&self) -> &'static str {
        // The IMMEDIATE transaction already holds the only write lock.
        ""
    }

    fn row_lock_suffix(&self) -> &'static str {
        ""
    }
}
