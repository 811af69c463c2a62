//! Workflow files: parsing, validation and the definition stored with them.
//!
//! A workflow is a YAML file naming tasks (shell commands) and the tasks each
//! one needs. Validation catches what would otherwise fail half-way through
//! a run: duplicate ids, unknown `needs`, cycles, bad durations. The validated
//! form is stored as the workflow's JSON definition, tasks in a topological
//! order, and read back by whichever engine runs an execution.

use crate::duration::{format_duration, parse_duration};
use crate::error::{EngineError, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The retry delay when a task sets `retries` without `retryDelay`.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);
const MAX_RETRIES: u32 = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkflow {
    name: String,
    description: Option<String>,
    tasks: Vec<RawTask>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawTask {
    id: String,
    run: String,
    retries: Option<u32>,
    retry_delay: Option<String>,
    timeout: Option<String>,
    #[serde(default)]
    needs: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, serde_yaml_ng::Value>,
}

/// A validated workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workflow {
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Tasks in a topological order: every task after the tasks it needs.
    pub tasks: Vec<Task>,
}

/// One validated task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// Unique id within the workflow.
    pub id: String,
    /// The shell command, run as `sh -c`.
    pub run: String,
    /// How many times a failed attempt is retried.
    pub retries: u32,
    /// The delay before the first retry, doubled for each further one.
    pub retry_delay_ms: u64,
    /// Attempts running longer are killed and failed with reason TIMEOUT.
    pub timeout_ms: Option<u64>,
    /// Tasks that must succeed first.
    pub needs: Vec<String>,
    /// Extra environment variables.
    pub env: BTreeMap<String, String>,
}

impl Task {
    /// The pause before attempt `next` (2, 3, ...): the delay doubled per retry.
    pub fn backoff(&self, next: i32) -> Duration {
        let doublings = (next - 2).clamp(0, 20) as u32;
        Duration::from_millis(self.retry_delay_ms.saturating_mul(1 << doublings))
    }

    /// The timeout, if any.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout_ms.map(Duration::from_millis)
    }
}

impl Workflow {
    /// Reads and validates a workflow file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| EngineError::Workflow {
            file: path.to_owned(),
            task: None,
            message: format!("cannot read the file: {e}"),
        })?;
        Self::from_yaml(&text, path)
    }

    /// Parses and validates YAML; `file` names it in errors.
    pub fn from_yaml(text: &str, file: &Path) -> Result<Self> {
        let raw: RawWorkflow =
            serde_yaml_ng::from_str(text).map_err(|e| EngineError::Workflow {
                file: file.to_owned(),
                task: None,
                message: format!("not a valid workflow: {e}"),
            })?;
        validate(raw, file)
    }

    /// Reads a stored definition back.
    pub fn from_definition(definition: &serde_json::Value) -> Result<Self> {
        serde_json::from_value(definition.clone()).map_err(|e| EngineError::Workflow {
            file: PathBuf::from("<stored definition>"),
            task: None,
            message: format!(
                "the stored definition does not parse ({e}); register the workflow again"
            ),
        })
    }

    /// The definition to store.
    pub fn to_definition(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a workflow always serialises")
    }

    /// The task with this id.
    pub fn task(&self, id: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.id == id)
    }

    /// Task ids in run order.
    pub fn task_keys(&self) -> Vec<String> {
        self.tasks.iter().map(|t| t.id.clone()).collect()
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn validate(raw: RawWorkflow, file: &Path) -> Result<Workflow> {
    let err = |task: Option<&str>, message: String| EngineError::Workflow {
        file: file.to_owned(),
        task: task.map(str::to_owned),
        message,
    };
    if !valid_name(&raw.name) {
        return Err(err(
            None,
            format!(
                "workflow name '{}' is invalid; use 1 to 255 letters, digits, '-', '_' or '.'",
                raw.name
            ),
        ));
    }
    if raw.tasks.is_empty() {
        return Err(err(
            None,
            "the workflow has no tasks; add at least one under 'tasks:'".into(),
        ));
    }
    let mut seen: HashSet<String> = HashSet::new();
    let mut tasks = Vec::with_capacity(raw.tasks.len());
    for t in &raw.tasks {
        if !valid_name(&t.id) {
            return Err(err(
                Some(&t.id),
                "task id is invalid; use 1 to 255 letters, digits, '-', '_' or '.'".into(),
            ));
        }
        if !seen.insert(t.id.clone()) {
            return Err(err(
                Some(&t.id),
                "duplicate task id; task ids must be unique".into(),
            ));
        }
    }
    for t in raw.tasks {
        let id = t.id.clone();
        if t.run.trim().is_empty() {
            return Err(err(
                Some(&id),
                "'run' is empty; give the shell command to run".into(),
            ));
        }
        let retries = t.retries.unwrap_or(0);
        if retries > MAX_RETRIES {
            return Err(err(
                Some(&id),
                format!("retries is {retries}; use at most {MAX_RETRIES}"),
            ));
        }
        let duration = |field: &str, text: &Option<String>| -> Result<Option<Duration>> {
            text.as_deref()
                .map(|s| parse_duration(s).map_err(|m| err(Some(&id), format!("{field}: {m}"))))
                .transpose()
        };
        let retry_delay = duration("retryDelay", &t.retry_delay)?.unwrap_or(DEFAULT_RETRY_DELAY);
        let timeout = duration("timeout", &t.timeout)?;
        if timeout == Some(Duration::ZERO) {
            return Err(err(Some(&id), "timeout: 0s would kill every attempt at once; remove it or give a positive duration".into()));
        }
        for need in &t.needs {
            if need == &id {
                return Err(err(Some(&id), "a task cannot need itself".into()));
            }
            if !seen.contains(need.as_str()) {
                return Err(err(
                    Some(&id),
                    format!("needs unknown task '{need}'; known tasks are {}", {
                        let mut known: Vec<_> = seen.iter().map(String::as_str).collect();
                        known.sort();
                        known.join(", ")
                    }),
                ));
            }
        }
        let mut env = BTreeMap::new();
        for (k, v) in t.env {
            let value = match v {
                serde_yaml_ng::Value::String(s) => s,
                serde_yaml_ng::Value::Number(n) => n.to_string(),
                serde_yaml_ng::Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(err(
                        Some(&id),
                        format!("env '{k}' must be a string, number or boolean"),
                    ))
                }
            };
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                return Err(err(Some(&id), format!("env name '{k}' is invalid")));
            }
            env.insert(k, value);
        }
        tasks.push(Task {
            id,
            run: t.run,
            retries,
            retry_delay_ms: retry_delay.as_millis() as u64,
            timeout_ms: timeout.map(|d| d.as_millis() as u64),
            needs: t.needs,
            env,
        });
    }
    let tasks = topological(tasks).map_err(|cycle| {
        err(
            Some(&cycle[0]),
            format!(
                "the tasks {} need each other in a cycle; break it",
                cycle.join(" -> ")
            ),
        )
    })?;
    Ok(Workflow {
        name: raw.name,
        description: raw.description,
        tasks,
    })
}

/// Kahn's algorithm, keeping file order among tasks that are ready together.
/// On a cycle, returns the ids left over (those in or behind the cycle).
fn topological(tasks: Vec<Task>) -> std::result::Result<Vec<Task>, Vec<String>> {
    let mut waiting: HashMap<&str, usize> = tasks
        .iter()
        .map(|t| (t.id.as_str(), t.needs.len()))
        .collect();
    let mut order: Vec<usize> = Vec::with_capacity(tasks.len());
    let mut done: HashSet<&str> = HashSet::new();
    while order.len() < tasks.len() {
        let before = order.len();
        for (i, t) in tasks.iter().enumerate() {
            if !done.contains(t.id.as_str()) && waiting[t.id.as_str()] == 0 {
                done.insert(t.id.as_str());
                order.push(i);
                for other in &tasks {
                    if other.needs.iter().any(|n| n == &t.id) {
                        *waiting.get_mut(other.id.as_str()).expect("known id") -= 1;
                    }
                }
            }
        }
        if order.len() == before {
            let stuck = tasks
                .iter()
                .filter(|t| !done.contains(t.id.as_str()))
                .map(|t| t.id.clone())
                .collect();
            return Err(stuck);
        }
    }
    let mut slots: Vec<Option<Task>> = tasks.into_iter().map(Some).collect();
    Ok(order
        .into_iter()
        .map(|i| slots[i].take().expect("each once"))
        .collect())
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.id)?;
        if self.retries > 0 {
            write!(
                f,
                " (retries {}, delay {})",
                self.retries,
                format_duration(Duration::from_millis(self.retry_delay_ms))
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Workflow> {
        Workflow::from_yaml(yaml, Path::new("wf.yaml"))
    }

    #[test]
    fn a_valid_workflow_is_ordered_and_round_trips() {
        let wf = parse(
            "name: report\ntasks:\n  - id: build\n    run: ./build.sh\n    needs: [fetch]\n    env: { MODE: full, N: 3 }\n  - id: fetch\n    run: curl x\n    retries: 3\n    retryDelay: 2s\n    timeout: 60s\n",
        )
        .unwrap();
        assert_eq!(wf.task_keys(), ["fetch", "build"]);
        let fetch = wf.task("fetch").unwrap();
        assert_eq!(fetch.retry_delay_ms, 2000);
        assert_eq!(fetch.timeout_ms, Some(60_000));
        assert_eq!(fetch.backoff(2), Duration::from_secs(2));
        assert_eq!(fetch.backoff(4), Duration::from_secs(8));
        assert_eq!(wf.task("build").unwrap().env["N"], "3");
        assert_eq!(Workflow::from_definition(&wf.to_definition()).unwrap(), wf);
    }

    #[test]
    fn invalid_workflows_name_the_file_the_task_and_the_problem() {
        let cases = [
            ("name: x\ntasks:\n  - id: a\n    run: 'true'\n  - id: a\n    run: 'true'\n", "task 'a': duplicate task id"),
            ("name: x\ntasks:\n  - id: a\n    run: 'true'\n    needs: [b]\n", "task 'a': needs unknown task 'b'"),
            ("name: x\ntasks:\n  - id: a\n    run: 'true'\n    needs: [b]\n  - id: b\n    run: 'true'\n    needs: [a]\n", "need each other in a cycle"),
            ("name: x\ntasks:\n  - id: a\n    run: 'true'\n    timeout: soon\n", "task 'a': timeout: bad duration 'soon'"),
            ("name: x\ntasks:\n  - id: a\n    run: 'true'\n    retry: 3\n", "unknown field `retry`"),
            ("name: x\ntasks: []\n", "no tasks"),
            ("name: 'a b'\ntasks:\n  - id: a\n    run: 'true'\n", "workflow name 'a b' is invalid"),
            ("tasks: [", "not a valid workflow"),
        ];
        for (yaml, want) in cases {
            let e = parse(yaml).unwrap_err().to_string();
            assert!(e.starts_with("wf.yaml"), "{e}");
            assert!(e.contains(want), "{yaml:?}: {e}");
        }
    }
}
