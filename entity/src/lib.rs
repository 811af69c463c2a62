//! SeaORM entities of the flowstate state store.
//!
//! One module per table: [`workflow`], [`workflow_version`], [`execution`],
//! [`task_run`], [`attempt`], [`output`] and [`log`]. The state enums they share live in [`states`]; every one
//! has `Display` and `FromStr` with its upper-case database value, so the same
//! spelling is used in SQL, in logs, on the command line and in JSON.
//!
//! Entities describe the schema as it is *now*. The migrations in
//! `flowstate-migration` are frozen history and never import these types.

pub mod attempt;
pub mod execution;
pub mod log;
pub mod output;
pub mod states;
pub mod task_run;
pub mod workflow;
pub mod workflow_version;

pub use states::{AttemptState, ExecutionState, LogStream, ParseEnumError, Reason, TaskState};
