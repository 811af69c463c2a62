//! PostgreSQL: row locks with SKIP LOCKED; serialisation failures and
//! deadlocks are retried.

use super::Backend;

pub(crate) struct Postgres;

impl Backend for Postgres {
    fn is_transient(&self, code: &str) -> bool {
        // serialization_failure, deadlock_detected, lock_not_available
        matches!(code, "40001" | "40P01" | "55P03")
    }
}
