//! Re-running an ended execution from where it failed.
//!
//! [`reusable`] decides, as a pure function of the pinned definition and
//! the original's task states, which tasks a retry carries over; [`retry`]
//! loads what it needs, asks, and has the store create the retry (one
//! transaction: the new execution linked to the original, the carried
//! tasks SUCCEEDED with reason REUSED and their outputs, the rest PENDING).

use crate::definitions::Definitions;
use crate::error::{EngineError, Result};
use crate::workflow::Workflow;
use flowstate_store::text::shown;
use flowstate_store::types::{Execution, NewRetry, TaskState};
use flowstate_store::{StateStore, StoreError};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// The tasks a retry carries over: every task that SUCCEEDED in the
/// original, except with `all` (nothing is carried), and except `from` and
/// every task downstream of it. An unknown `from` is `Err` with the keys.
pub fn reusable(
    workflow: &Workflow,
    states: &HashMap<String, TaskState>,
    from: Option<&str>,
    all: bool,
) -> std::result::Result<Vec<String>, String> {
    let rerun = match from {
        None => HashSet::new(),
        Some(key) => downstream(workflow, key)?,
    };
    if all {
        return Ok(Vec::new());
    }
    Ok(workflow
        .tasks
        .iter()
        .map(|t| t.id.clone())
        .filter(|k| states.get(k) == Some(&TaskState::Succeeded) && !rerun.contains(k))
        .collect())
}

/// `from` and every task that needs it, directly or not.
fn downstream(workflow: &Workflow, from: &str) -> std::result::Result<HashSet<String>, String> {
    if workflow.task(from).is_none() {
        return Err(format!(
            "task '{}' is not in workflow '{}'; its tasks are {}",
            shown(from),
            workflow.name,
            workflow.task_keys().join(", ")
        ));
    }
    let mut found: HashSet<String> = HashSet::from([from.to_owned()]);
    // Tasks are few; a pass per level until nothing is added.
    loop {
        let before = found.len();
        for t in &workflow.tasks {
            if t.needs.iter().any(|n| found.contains(n)) {
                found.insert(t.id.clone());
            }
        }
        if found.len() == before {
            return Ok(found);
        }
    }
}

/// Creates a retry of the ended execution `id` (see the module doc).
pub async fn retry(
    store: &dyn StateStore,
    id: Uuid,
    from: Option<&str>,
    all: bool,
) -> Result<Execution> {
    let original = store.get_execution(id).await?;
    let workflow = match Definitions::default().pinned(store, &original).await? {
        Ok(w) => w,
        Err(e) => return Err(EngineError::Config(format!(
            "execution {id} runs a definition that no longer parses ({e}); submit the workflow again instead"
        ))),
    };
    let states: HashMap<String, TaskState> = store
        .list_task_runs(id)
        .await?
        .into_iter()
        .map(|r| (r.task_key, r.state))
        .collect();
    let reuse = reusable(&workflow, &states, from, all).map_err(|message| {
        EngineError::Store(StoreError::NotFound {
            entity: "task",
            id: message,
        })
    })?;
    let (exec, _) = store
        .create_retry(NewRetry {
            original: id,
            reuse,
        })
        .await?;
    Ok(exec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn wf() -> Workflow {
        // a -> b -> c, and d alone.
        let yaml = "name: r\ntasks:\n  - id: a\n    run: 'true'\n  - id: b\n    needs: [a]\n    run: 'true'\n  - id: c\n    needs: [b]\n    run: 'true'\n  - id: d\n    run: 'true'\n";
        Workflow::from_yaml(yaml, Path::new("r.yaml")).unwrap()
    }

    /// The original's task states by key.
    type States = HashMap<String, TaskState>;

    fn states(spec: &[(&str, TaskState)]) -> States {
        spec.iter().map(|(k, s)| (k.to_string(), *s)).collect()
    }

    #[test]
    fn succeeded_tasks_are_carried_unless_rerun() {
        use TaskState::*;
        let failed_b = states(&[
            ("a", Succeeded),
            ("b", Failed),
            ("c", Skipped),
            ("d", Succeeded),
        ]);
        let all_ok = states(&[
            ("a", Succeeded),
            ("b", Succeeded),
            ("c", Succeeded),
            ("d", Succeeded),
        ]);
        let none = states(&[]);
        let cancelled = states(&[
            ("a", Succeeded),
            ("b", Cancelled),
            ("c", Cancelled),
            ("d", Cancelled),
        ]);
        let cases: Vec<(&States, Option<&str>, bool, Vec<&str>)> = vec![
            (&failed_b, None, false, vec!["a", "d"]),
            (&failed_b, None, true, vec![]),
            (&failed_b, Some("a"), false, vec!["d"]),
            (&failed_b, Some("d"), false, vec!["a"]),
            (&all_ok, None, false, vec!["a", "b", "c", "d"]),
            (&all_ok, Some("b"), false, vec!["a", "d"]),
            (&all_ok, Some("c"), false, vec!["a", "b", "d"]),
            (&cancelled, None, false, vec!["a"]),
            (&none, None, false, vec![]),
        ];
        for (s, from, all, want) in cases {
            assert_eq!(
                reusable(&wf(), s, from, all).unwrap(),
                want,
                "{from:?} {all}"
            );
        }
        let e = reusable(&wf(), &failed_b, Some("zz"), false).unwrap_err();
        assert_eq!(
            e,
            "task 'zz' is not in workflow 'r'; its tasks are a, b, c, d"
        );
    }
}
