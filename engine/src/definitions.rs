//! The workflow each execution was submitted with, parsed once per workflow
//! version. A version's definition never changes once stored, so an engine
//! draining a backlog of one workflow reads and parses it once instead of
//! once per execution (one statement of the dozen an execution used to cost).

use crate::error::Result;
use crate::workflow::Workflow;
use flowstate_store::types::Execution;
use flowstate_store::{StateStore, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// How many versions are kept; past that the cache starts again empty, which
/// costs one read per version in use.
const CAPACITY: usize = 256;

/// A parsed definition, or why the stored one is not a valid workflow.
pub(crate) type Parsed = std::result::Result<Arc<Workflow>, String>;

/// Parsed definitions by (workflow id, version).
#[derive(Default)]
pub(crate) struct Definitions {
    parsed: Mutex<HashMap<(Uuid, i32), Parsed>>,
}

impl Definitions {
    /// The workflow `exec` runs: its pinned version, read and parsed on the
    /// first use of that version.
    pub(crate) async fn pinned(&self, store: &dyn StateStore, exec: &Execution) -> Result<Parsed> {
        let key = (exec.workflow_id, exec.workflow_version);
        if let Some(hit) = self.lock().get(&key) {
            return Ok(hit.clone());
        }
        let (definition, exact) = pinned_definition(store, exec).await?;
        let parsed = Workflow::from_definition(&definition)
            .map(Arc::new)
            .map_err(|e| e.to_string());
        if exact {
            let mut map = self.lock();
            if map.len() >= CAPACITY {
                map.clear();
            }
            map.insert(key, parsed.clone());
        }
        Ok(parsed)
    }

    /// The workflow `exec` runs when its version is parsed already and
    /// valid; `None` otherwise (nothing is read).
    pub(crate) fn cached(&self, exec: &Execution) -> Option<Arc<Workflow>> {
        let key = (exec.workflow_id, exec.workflow_version);
        self.lock().get(&key).and_then(|p| p.as_ref().ok().cloned())
    }

    /// Parses `workflow` as the definition of `exec`'s version, as a read
    /// would (for tests).
    #[cfg(test)]
    pub(crate) fn put(&self, exec: &Execution, parsed: Parsed) {
        let key = (exec.workflow_id, exec.workflow_version);
        self.lock().insert(key, parsed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(Uuid, i32), Parsed>> {
        // A panic while holding the lock leaves a map that is still valid.
        self.parsed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The definition `exec` was submitted with, and whether it is exactly that
/// version. Executions submitted before versions were kept (no
/// `workflow_versions` row) run the current one.
async fn pinned_definition(
    store: &dyn StateStore,
    exec: &Execution,
) -> Result<(serde_json::Value, bool)> {
    match store
        .get_workflow_version(exec.workflow_id, exec.workflow_version)
        .await
    {
        Ok(v) => Ok((v.definition, true)),
        Err(StoreError::NotFound { .. }) => {
            let current = store.get_workflow(exec.workflow_id).await?;
            let exact = current.version == exec.workflow_version;
            if !exact {
                tracing::warn!(
                    execution = %exec.id,
                    submitted = exec.workflow_version,
                    current = current.version,
                    "the version this execution was submitted with is not stored; running the current one"
                );
            }
            Ok((current.definition, exact))
        }
        Err(e) => Err(e.into()),
    }
}
