//! The flowstate engine: runs workflows and records every step through the
//! store, so that a crash, a restart or a second engine process never loses
//! or duplicates work.
//!
//! Layout, in the order data flows:
//! - [`config`]: the configuration file (`storage:` for the store, `engine:` here,
//!   `server:` in [`server_config`] for `flowstate-server`).
//! - [`workflow`]: workflow files, validated into a stored definition.
//! - [`engine`]: start-up recovery, the scheduler that claims due executions
//!   under a lease, lease renewal, the expired-lease sweep, retention and shutdown.
//! - `definitions`: the workflow version each execution runs, parsed once per version.
//! - `driver`: one claimed execution, task by task, through the store's state machine.
//! - `planner`: the driver's decisions as pure functions of its state and an event.
//! - `recorder`: drivers' ends handed to the claim loop, landed with its next claim.
//! - `pace`: how long attempts run, and so how many executions the claim loop
//!   claims ahead of the free worker slots (one to four per slot while attempts are short).
//! - [`process`]: one attempt: `sh -c` in its own process group, with a timeout.
//! - `outputs`: the file each attempt may publish `key=value` outputs to.
//! - [`retry`]: an ended execution re-run, reusing the tasks that succeeded.
//! - `guard`: a forked watcher that kills every task group when the engine dies.
//! - [`logs`]: captured lines written in batches.
//! - [`node`], [`duration`], [`metrics`]: the node id, durations, Prometheus.
//!
//! The engine keeps nothing a restart would need that the database lacks:
//! drivers read task runs when they start, and every move is a versioned
//! transition.

pub mod config;
mod definitions;
mod driver;
pub mod duration;
pub mod engine;
pub mod error;
pub(crate) mod full;
pub(crate) mod guard;
pub mod logs;
pub mod metrics;
pub mod node;
mod outputs;
mod pace;
pub(crate) mod planner;
pub mod process;
mod recorder;
pub mod retry;
pub mod server_config;
pub mod workflow;

pub use config::{Config, EngineConfig, ServerConfig};
pub use driver::End;
pub use engine::{register, submit, Engine};
pub use error::{EngineError, Result};
pub use workflow::Workflow;
