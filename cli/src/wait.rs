//! `flowstate execution wait` and `submit --wait`: block until an execution
//! ends, and exit as `run` does (0 SUCCEEDED, 1 FAILED or CANCELLED), or 124
//! when the timeout passes first (as `timeout(1)` does).

use crate::output;
use crate::{CmdResult, Failure, Globals};
use flowstate_engine::duration::format_duration;
use flowstate_store::types::{Execution, ExecutionState};
use flowstate_store::StateStore;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The longest pause between two reads of the execution.
const MOST: Duration = Duration::from_millis(500);

/// Waits for `id` to end, then prints its final state (or its JSON).
pub async fn wait(
    g: &Globals,
    store: &dyn StateStore,
    id: Uuid,
    timeout: Option<Duration>,
) -> CmdResult {
    let started = Instant::now();
    // Short executions end within milliseconds: start with short pauses.
    let mut pause = Duration::from_millis(20);
    loop {
        let e = store.get_execution(id).await?;
        if e.state.is_terminal() {
            return report(g, store, &e).await;
        }
        let left = timeout.map(|t| t.saturating_sub(started.elapsed()));
        if left == Some(Duration::ZERO) {
            print(g, store, &e).await?;
            return Err(Failure::timed_out(format!(
                "timed out after {}; execution {id} is still {}",
                format_duration(timeout.unwrap_or_default()),
                e.state
            )));
        }
        tokio::time::sleep(left.map_or(pause, |l| l.min(pause))).await;
        pause = (pause * 2).min(MOST);
    }
}

/// Prints the final state and exits as it says.
async fn report(g: &Globals, store: &dyn StateStore, e: &Execution) -> CmdResult {
    print(g, store, e).await?;
    match e.state {
        ExecutionState::Succeeded => Ok(()),
        _ => {
            if !g.structured() {
                let why = e.reason.map_or(String::new(), |r| format!(" ({r})"));
                let error = e
                    .error
                    .as_deref()
                    .map_or(String::new(), |m| format!(": {m}"));
                errln!(
                    "execution {} {}{why}{}",
                    e.id,
                    e.state,
                    crate::logging::printable(&error)
                );
            }
            Err(Failure::quiet())
        }
    }
}

/// The state alone (for `state=$(flowstate execution wait ID)`), or the
/// execution as a document with `--json` / `-o yaml`.
async fn print(g: &Globals, store: &dyn StateStore, e: &Execution) -> CmdResult {
    if g.structured() {
        let name = store.get_workflow(e.workflow_id).await?.name;
        output::doc(g, &output::execution(e, &name), "id");
    } else {
        outln!("{}", e.state);
    }
    Ok(())
}
