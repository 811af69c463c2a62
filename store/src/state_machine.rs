//! The one state machine of executions and task runs.
//!
//! The store refuses every move not listed here; the engine asks the same
//! functions before it tries one.

use crate::types::{ExecutionState, TaskState};

/// Whether an execution may move from `from` to `to`.
pub fn execution_can_move(from: ExecutionState, to: ExecutionState) -> bool {
    execution_sources(to).contains(&from)
}

/// The states an execution may move to `to` from.
pub fn execution_sources(to: ExecutionState) -> &'static [ExecutionState] {
    use ExecutionState::*;
    match to {
        Pending => &[],
        Running => &[Pending, Waiting],
        Waiting => &[Running],
        Succeeded => &[Running],
        Failed => &[Running, Waiting],
        Cancelled => &[Pending, Running, Waiting],
    }
}

/// Whether a task run may move from `from` to `to`.
pub fn task_can_move(from: TaskState, to: TaskState) -> bool {
    task_sources(to).contains(&from)
}

/// The states a task run may move to `to` from.
pub fn task_sources(to: TaskState) -> &'static [TaskState] {
    use TaskState::*;
    match to {
        Pending => &[],
        Running => &[Pending, Waiting],
        Waiting => &[Running],
        Succeeded => &[Running],
        Failed => &[Running, Waiting],
        Cancelled => &[Pending, Running, Waiting],
        // A WAITING retry is skipped when its execution ends first (crash
        // recovery, lease expiry).
        Skipped => &[Pending, Waiting],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_states_are_final() {
        for from in ExecutionState::ALL.iter().filter(|s| s.is_terminal()) {
            for to in ExecutionState::ALL {
                assert!(!execution_can_move(*from, *to), "{from} -> {to}");
            }
        }
        for from in TaskState::ALL.iter().filter(|s| s.is_terminal()) {
            for to in TaskState::ALL {
                assert!(!task_can_move(*from, *to), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn the_documented_moves_are_allowed() {
        use ExecutionState as E;
        assert!(execution_can_move(E::Pending, E::Running));
        assert!(execution_can_move(E::Pending, E::Cancelled));
        assert!(!execution_can_move(E::Pending, E::Succeeded));
        assert!(execution_can_move(E::Waiting, E::Running));
        assert!(!execution_can_move(E::Waiting, E::Succeeded));
        use TaskState as T;
        assert!(task_can_move(T::Pending, T::Skipped));
        assert!(!task_can_move(T::Running, T::Skipped));
        assert!(task_can_move(T::Running, T::Waiting));
    }
}
