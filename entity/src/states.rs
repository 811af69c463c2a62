//! State enums stored as upper-case strings.

use sea_orm::entity::prelude::*;
use std::fmt;
use std::str::FromStr;

/// A string that names no variant of one of the enums in this module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseEnumError {
    /// What the enum is called in messages ("execution state").
    pub kind: &'static str,
    /// The value that did not parse.
    pub value: String,
    /// Every accepted spelling.
    pub expected: &'static [&'static str],
}

impl fmt::Display for ParseEnumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} '{}'; expected one of {}",
            self.kind,
            self.value,
            self.expected.join(", ")
        )
    }
}

impl std::error::Error for ParseEnumError {}

/// Implements `Display`, `FromStr` (case-insensitive) and `ALL` for a string enum.
macro_rules! text_enum {
    ($ty:ident, $kind:literal, [$($variant:ident => $text:literal),+ $(,)?]) => {
        impl $ty {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];
            const NAMES: &'static [&'static str] = &[$($text),+];

            /// The stored spelling.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $($ty::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = ParseEnumError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $(if s.eq_ignore_ascii_case($text) {
                    return Ok($ty::$variant);
                })+
                Err(ParseEnumError {
                    kind: $kind,
                    value: s.to_owned(),
                    expected: $ty::NAMES,
                })
            }
        }
    };
}

/// Where an execution is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum ExecutionState {
    /// Persisted, waiting for a scheduler to claim it.
    #[sea_orm(string_value = "PENDING")]
    Pending,
    /// Claimed by an engine node that holds its lease.
    #[sea_orm(string_value = "RUNNING")]
    Running,
    /// Nothing can run until `wake_at` (a task is backing off before a retry).
    #[sea_orm(string_value = "WAITING")]
    Waiting,
    /// Every task succeeded. Terminal.
    #[sea_orm(string_value = "SUCCEEDED")]
    Succeeded,
    /// A task failed for good, or the engine running it died. Terminal.
    #[sea_orm(string_value = "FAILED")]
    Failed,
    /// Cancelled by a person or a program. Terminal.
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
}

text_enum!(ExecutionState, "execution state", [
    Pending => "PENDING",
    Running => "RUNNING",
    Waiting => "WAITING",
    Succeeded => "SUCCEEDED",
    Failed => "FAILED",
    Cancelled => "CANCELLED",
]);

impl ExecutionState {
    /// Terminal states are final: nothing moves an execution out of them.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// Where one task of an execution is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum TaskState {
    /// Waiting for its upstream tasks.
    #[sea_orm(string_value = "PENDING")]
    Pending,
    /// An attempt is running.
    #[sea_orm(string_value = "RUNNING")]
    Running,
    /// Backing off until `next_attempt_at` before the next attempt.
    #[sea_orm(string_value = "WAITING")]
    Waiting,
    /// The last attempt succeeded. Terminal.
    #[sea_orm(string_value = "SUCCEEDED")]
    Succeeded,
    /// Out of attempts, or the engine running it died. Terminal.
    #[sea_orm(string_value = "FAILED")]
    Failed,
    /// Cancelled with its execution. Terminal.
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
    /// Never ran because an upstream task failed. Terminal.
    #[sea_orm(string_value = "SKIPPED")]
    Skipped,
}

text_enum!(TaskState, "task state", [
    Pending => "PENDING",
    Running => "RUNNING",
    Waiting => "WAITING",
    Succeeded => "SUCCEEDED",
    Failed => "FAILED",
    Cancelled => "CANCELLED",
    Skipped => "SKIPPED",
]);

impl TaskState {
    /// Terminal states are final: nothing moves a task run out of them.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Cancelled | Self::Skipped
        )
    }
}

/// The outcome of one try of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum AttemptState {
    /// The process is running.
    #[sea_orm(string_value = "RUNNING")]
    Running,
    /// The process exited 0.
    #[sea_orm(string_value = "SUCCEEDED")]
    Succeeded,
    /// The process failed, timed out, or its engine died.
    #[sea_orm(string_value = "FAILED")]
    Failed,
    /// The process was stopped because its execution was cancelled.
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
}

text_enum!(AttemptState, "attempt state", [
    Running => "RUNNING",
    Succeeded => "SUCCEEDED",
    Failed => "FAILED",
    Cancelled => "CANCELLED",
]);

/// Which stream a captured log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(8))")]
pub enum LogStream {
    /// The task's standard output.
    #[sea_orm(string_value = "stdout")]
    Stdout,
    /// The task's standard error.
    #[sea_orm(string_value = "stderr")]
    Stderr,
    /// A line written by the engine itself (start, retry, timeout, ...).
    #[sea_orm(string_value = "system")]
    System,
}

text_enum!(LogStream, "log stream", [
    Stdout => "stdout",
    Stderr => "stderr",
    System => "system",
]);

/// Why a row reached its state: the machine-readable cause stored beside
/// executions, task runs and attempts. Stored as the upper-case text below,
/// the same text earlier releases wrote, so old rows read back unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(64))")]
pub enum Reason {
    /// An execution ended FAILED because at least one task failed.
    #[sea_orm(string_value = "TASK_FAILED")]
    TaskFailed,
    /// The task's process exited with a non-zero code.
    #[sea_orm(string_value = "EXIT_CODE")]
    ExitCode,
    /// The task's process was killed by a signal.
    #[sea_orm(string_value = "SIGNAL")]
    Signal,
    /// The attempt ran past the task's timeout and was killed.
    #[sea_orm(string_value = "TIMEOUT")]
    Timeout,
    /// The task's process could not be started.
    #[sea_orm(string_value = "SPAWN_FAILED")]
    SpawnFailed,
    /// Someone cancelled the execution.
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
    /// A task this one needs failed, was skipped or was cancelled.
    #[sea_orm(string_value = "UPSTREAM_FAILED")]
    UpstreamFailed,
    /// The engine that ran it died; recovery at its restart ended it.
    #[sea_orm(string_value = "CRASH_RECOVERY")]
    CrashRecovery,
    /// The engine that ran it stopped renewing its lease.
    #[sea_orm(string_value = "LEASE_EXPIRED")]
    LeaseExpired,
    /// A task run was left RUNNING by an attempt nobody watches any more.
    #[sea_orm(string_value = "ABANDONED")]
    Abandoned,
    /// The workflow no longer defines the task.
    #[sea_orm(string_value = "TASK_REMOVED")]
    TaskRemoved,
    /// The stored workflow definition does not parse.
    #[sea_orm(string_value = "INVALID_DEFINITION")]
    InvalidDefinition,
    /// No task can run and none is waiting for a retry.
    #[sea_orm(string_value = "STUCK")]
    Stuck,
    /// The engine shut down and its grace period ended the attempt.
    #[sea_orm(string_value = "SHUTDOWN")]
    Shutdown,
    /// The database or its disk was full when the attempt's record was due.
    #[sea_orm(string_value = "STORAGE_FULL")]
    StorageFull,
    /// A retry carried the task over from the execution it re-runs: it
    /// succeeded there, and its outputs were copied.
    #[sea_orm(string_value = "REUSED")]
    Reused,
}

text_enum!(Reason, "reason", [
    TaskFailed => "TASK_FAILED",
    ExitCode => "EXIT_CODE",
    Signal => "SIGNAL",
    Timeout => "TIMEOUT",
    SpawnFailed => "SPAWN_FAILED",
    Cancelled => "CANCELLED",
    UpstreamFailed => "UPSTREAM_FAILED",
    CrashRecovery => "CRASH_RECOVERY",
    LeaseExpired => "LEASE_EXPIRED",
    Abandoned => "ABANDONED",
    TaskRemoved => "TASK_REMOVED",
    InvalidDefinition => "INVALID_DEFINITION",
    Stuck => "STUCK",
    Shutdown => "SHUTDOWN",
    StorageFull => "STORAGE_FULL",
    Reused => "REUSED",
]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_back_from_their_stored_text() {
        for r in Reason::ALL {
            assert_eq!(r.as_str().parse::<Reason>(), Ok(*r));
            assert_eq!(r.to_string(), r.as_str());
            assert_eq!(r.to_value(), r.as_str());
        }
        assert_eq!(
            "crash_recovery".parse::<Reason>(),
            Ok(Reason::CrashRecovery)
        );
        assert!("because".parse::<Reason>().is_err());
    }
}
