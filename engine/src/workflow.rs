//! Workflow files: parsing, validation and the definition stored with them.
//!
//! A workflow is a YAML file naming tasks (shell commands) and the tasks each
//! one needs. Validation catches what would otherwise fail half-way through
//! a run: duplicate ids, unknown `needs`, cycles, bad durations. The validated
//! form is stored as the workflow's JSON definition, tasks in a topological
//! order, and read back by whichever engine runs an execution.

use crate::duration::{format_duration, parse_duration};
use crate::error::{EngineError, Result};
use flowstate_store::text::shown;
use flowstate_store::yaml;
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The retry delay when a task sets `retries` without `retryDelay`.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);
const MAX_RETRIES: u32 = 100;
/// The longest `run`: well under the 128 KiB the kernel takes for one argument.
pub const MAX_RUN_BYTES: usize = 100_000;
/// The longest `description`, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 10_000;
/// The most bytes of one environment entry, `NAME=value` and its NUL.
const MAX_ENV_ENTRY_BYTES: usize = 128 * 1024;
/// The most bytes of `run` and a task's own environment together: half of
/// the kernel's 2 MiB for arguments and environment, leaving the rest to the
/// engine's inputs, outputs and inherited environment.
pub const MAX_TASK_BYTES: usize = 1024 * 1024;
/// The most names an error lists.
const MAX_LISTED: usize = 20;

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
    #[serde(default)]
    retry_on_crash: bool,
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
    /// Whether an attempt cut off by a crash of its engine (or an expired
    /// lease) counts as a failed attempt, retried while retries remain,
    /// instead of failing the execution with CRASH_RECOVERY. Stored only
    /// when set, so definitions without it keep their versions.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retry_on_crash: bool,
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
    /// Whether any task retries an attempt cut off by a crash.
    pub fn retries_on_crash(&self) -> bool {
        self.tasks.iter().any(|t| t.retry_on_crash)
    }

    /// Reads and validates a workflow file. A file over [`yaml::MAX_FILE_BYTES`] is
    /// refused from its size, before it is read.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = yaml::read_bounded(path).map_err(|message| EngineError::Workflow {
            file: path.to_owned(),
            task: None,
            message,
        })?;
        Self::from_yaml(&text, path)
    }

    /// Parses and validates YAML; `file` names it in errors. Text over
    /// [`yaml::MAX_FILE_BYTES`] or nested deeper than [`yaml::MAX_NESTING`] levels is
    /// refused before it is parsed.
    pub fn from_yaml(text: &str, file: &Path) -> Result<Self> {
        let refuse = |message: String| EngineError::Workflow {
            file: file.to_owned(),
            task: None,
            message,
        };
        yaml::check(text, "the workflow").map_err(refuse)?;
        let raw: RawWorkflow = serde_yaml_ng::from_str(text)
            .map_err(|e| refuse(format!("not a valid workflow: {}", yaml::error(&e))))?;
        validate(raw, file)
    }

    /// Reads a stored definition back.
    pub fn from_definition(definition: &serde_json::Value) -> Result<Self> {
        serde_json::from_value(definition.clone()).map_err(|e| EngineError::Workflow {
            file: PathBuf::from("<stored definition>"),
            task: None,
            message: format!(
                "the stored definition does not parse ({}); register the workflow again",
                shown(&e.to_string())
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

/// A portable environment variable name: `[A-Za-z_][A-Za-z0-9_]*`, at most 255.
/// Whether `s` is a portable environment variable name: a letter or `_`,
/// then letters, digits and `_`, at most 255 bytes.
pub fn valid_env_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'A'..=b'Z' | b'a'..=b'z' | b'_'))
        && s.len() <= 255
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `names` sorted, at most [`MAX_LISTED`] of them, each through [`shown`].
fn listed<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let mut names: Vec<&str> = names.collect();
    let total = names.len();
    if total > MAX_LISTED {
        names.select_nth_unstable(MAX_LISTED);
        names.truncate(MAX_LISTED);
    }
    names.sort_unstable();
    let mut out = names
        .iter()
        .map(|n| shown(n))
        .collect::<Vec<_>>()
        .join(", ");
    if total > MAX_LISTED {
        out.push_str(&format!(" and {} more", total - MAX_LISTED));
    }
    out
}

/// A validation problem's message; the caller names the file and the task.
type Checked<T> = std::result::Result<T, String>;

fn validate(raw: RawWorkflow, file: &Path) -> Result<Workflow> {
    let err = |task: Option<&str>, message: String| EngineError::Workflow {
        file: file.to_owned(),
        task: task.map(shown),
        message,
    };
    check_workflow_fields(&raw).map_err(|m| err(None, m))?;
    let known = unique_ids(&raw.tasks).map_err(|(id, m)| err(Some(id), m))?;
    let tasks = raw
        .tasks
        .iter()
        .map(|t| validate_task(t, &known).map_err(|m| err(Some(&t.id), m)))
        .collect::<Result<Vec<Task>>>()?;
    let tasks = in_run_order(tasks).map_err(|(id, m)| err(Some(&id), m))?;
    Ok(Workflow {
        name: raw.name,
        description: raw.description,
        tasks,
    })
}

/// The workflow-level fields: the name, the description and that there are tasks.
fn check_workflow_fields(raw: &RawWorkflow) -> Checked<()> {
    if !valid_name(&raw.name) {
        return Err(format!(
            "workflow name '{}' is invalid; use 1 to 255 letters, digits, '-', '_' or '.'",
            shown(&raw.name)
        ));
    }
    if let Some(description) = &raw.description {
        check_description(description)?;
    }
    if raw.tasks.is_empty() {
        return Err("the workflow has no tasks; add at least one under 'tasks:'".into());
    }
    Ok(())
}

/// At most [`MAX_DESCRIPTION_CHARS`], and no control characters but line
/// breaks and tabs.
fn check_description(description: &str) -> Checked<()> {
    let chars = description.chars().count();
    if chars > MAX_DESCRIPTION_CHARS {
        return Err(format!(
            "description is {chars} characters; the most is {MAX_DESCRIPTION_CHARS}"
        ));
    }
    if let Some(c) = description
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\t'))
    {
        return Err(format!(
            "description contains the control character '{}'; only line breaks and tabs are allowed",
            c.escape_default()
        ));
    }
    Ok(())
}

/// The task ids, each valid and used once; on a problem, the task's id and
/// the message.
fn unique_ids(tasks: &[RawTask]) -> std::result::Result<HashSet<&str>, (&str, String)> {
    let mut seen: HashSet<&str> = HashSet::with_capacity(tasks.len());
    for t in tasks {
        if !valid_name(&t.id) {
            return Err((
                &t.id,
                "task id is invalid; use 1 to 255 letters, digits, '-', '_' or '.'".into(),
            ));
        }
        if !seen.insert(t.id.as_str()) {
            return Err((&t.id, "duplicate task id; task ids must be unique".into()));
        }
    }
    Ok(seen)
}

/// One task, checked field by field; `known` holds every task id.
fn validate_task(t: &RawTask, known: &HashSet<&str>) -> Checked<Task> {
    check_run(&t.run)?;
    let retries = check_retries(t.retries)?;
    let retry_delay = duration("retryDelay", &t.retry_delay)?.unwrap_or(DEFAULT_RETRY_DELAY);
    let timeout = duration("timeout", &t.timeout)?;
    if timeout == Some(Duration::ZERO) {
        return Err(
            "timeout: 0s would kill every attempt at once; remove it or give a positive duration"
                .into(),
        );
    }
    check_needs(&t.id, &t.needs, known)?;
    let env = check_env(&t.env)?;
    check_total(&t.run, &env)?;
    Ok(Task {
        id: t.id.clone(),
        run: t.run.clone(),
        retries,
        retry_delay_ms: retry_delay.as_millis() as u64,
        timeout_ms: timeout.map(|d| d.as_millis() as u64),
        needs: t.needs.clone(),
        env,
        retry_on_crash: t.retry_on_crash,
    })
}

/// A command `sh -c` can take: not blank, at most [`MAX_RUN_BYTES`], no NUL.
fn check_run(run: &str) -> Checked<()> {
    if run.trim().is_empty() {
        return Err("'run' is empty; give the shell command to run".into());
    }
    if run.len() > MAX_RUN_BYTES {
        return Err(format!(
            "'run' is {} bytes; the most is {MAX_RUN_BYTES} (a longer command cannot be passed to sh -c); put it in a script file",
            run.len()
        ));
    }
    if run.contains('\0') {
        return Err("'run' contains a NUL byte, which a command cannot hold".into());
    }
    Ok(())
}

/// The retries, 0 if not given, at most [`MAX_RETRIES`].
fn check_retries(retries: Option<u32>) -> Checked<u32> {
    let retries = retries.unwrap_or(0);
    if retries > MAX_RETRIES {
        return Err(format!("retries is {retries}; use at most {MAX_RETRIES}"));
    }
    Ok(retries)
}

/// The duration in `text`, if given; `field` names it in the message.
fn duration(field: &str, text: &Option<String>) -> Checked<Option<Duration>> {
    text.as_deref()
        .map(|s| parse_duration(s).map_err(|m| format!("{field}: {m}")))
        .transpose()
}

/// The needs of task `id`: known tasks, other than itself, each once.
fn check_needs(id: &str, needs: &[String], known: &HashSet<&str>) -> Checked<()> {
    let mut needed: HashSet<&str> = HashSet::with_capacity(needs.len());
    for need in needs {
        if need == id {
            return Err("a task cannot need itself".into());
        }
        if !known.contains(need.as_str()) {
            return Err(format!(
                "needs unknown task '{}'; known tasks are {}",
                shown(need),
                listed(known.iter().copied())
            ));
        }
        if !needed.insert(need.as_str()) {
            return Err(format!(
                "needs '{}' twice; list each task once",
                shown(need)
            ));
        }
    }
    Ok(())
}

/// The environment as strings, each name portable and each entry within
/// what the kernel takes.
fn check_env(env: &BTreeMap<String, serde_yaml_ng::Value>) -> Checked<BTreeMap<String, String>> {
    let mut checked = BTreeMap::new();
    for (k, v) in env {
        if !valid_env_name(k) {
            return Err(format!(
                "env name '{}' is invalid; use letters, digits and '_', not starting with a digit, at most 255 characters",
                shown(k)
            ));
        }
        let value = env_value(k, v)?;
        checked.insert(k.clone(), value);
    }
    Ok(checked)
}

/// The command and the task's own environment together: the kernel refuses
/// to start a process whose arguments and environment pass about 2 MiB, and
/// the engine's inputs and outputs come on top at run time.
fn check_total(run: &str, env: &BTreeMap<String, String>) -> Checked<()> {
    let total = run.len()
        + env
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2)
            .sum::<usize>();
    if total > MAX_TASK_BYTES {
        return Err(format!(
            "'run' and env are {total} bytes together; the most is {MAX_TASK_BYTES} (the system refuses to start a bigger process); put the values in a file"
        ));
    }
    Ok(())
}

/// The value of env `k` as a string: a string, number or boolean without a
/// NUL, short enough for `NAME=value` to fit [`MAX_ENV_ENTRY_BYTES`].
fn env_value(k: &str, v: &serde_yaml_ng::Value) -> Checked<String> {
    let value = match v {
        serde_yaml_ng::Value::String(s) => s.clone(),
        serde_yaml_ng::Value::Number(n) => n.to_string(),
        serde_yaml_ng::Value::Bool(b) => b.to_string(),
        _ => return Err(format!("env '{k}' must be a string, number or boolean")),
    };
    if value.contains('\0') {
        return Err(format!("env '{k}' contains a NUL byte"));
    }
    // The kernel takes `NAME=value` and its NUL in at most 128 KiB.
    let most = MAX_ENV_ENTRY_BYTES - k.len() - 2;
    if value.len() > most {
        return Err(format!(
            "env '{k}' is {} bytes; the most is {most} (the system limits NAME=value to 128 KiB)",
            value.len()
        ));
    }
    Ok(value)
}

/// `tasks` in their run order; on a cycle, the id of the task it names
/// first and the message.
fn in_run_order(tasks: Vec<Task>) -> std::result::Result<Vec<Task>, (String, String)> {
    let order = run_order(&tasks).map_err(|cycle| {
        let first = tasks[cycle[0]].id.clone();
        (first, cycle_message(&tasks, &cycle))
    })?;
    let mut slots: Vec<Option<Task>> = tasks.into_iter().map(Some).collect();
    Ok(order
        .into_iter()
        .map(|i| slots[i].take().expect("each task once"))
        .collect())
}

/// The message for a cycle of indices into `tasks`: at most [`MAX_LISTED`]
/// ids, then back to the first.
fn cycle_message(tasks: &[Task], cycle: &[usize]) -> String {
    let first = &tasks[cycle[0]].id;
    let mut names: Vec<String> = cycle
        .iter()
        .take(MAX_LISTED)
        .map(|&i| shown(&tasks[i].id))
        .collect();
    if cycle.len() > MAX_LISTED {
        names.push(format!("... ({} tasks)", cycle.len()));
    }
    names.push(shown(first));
    format!(
        "the tasks {} need each other in a cycle; break it",
        names.join(" -> ")
    )
}

/// The run order as indices into `tasks` (whose needs are known, distinct
/// ids): Kahn's algorithm in passes over the file, as if sweeping it from the
/// top again and again and taking every task whose needs are all done; so
/// among tasks ready together, file order. `O(n log n)` in the tasks and
/// needs. On a cycle, returns one: indices of tasks each needing the next and
/// the last needing the first, starting at the one earliest in the file.
fn run_order(tasks: &[Task]) -> std::result::Result<Vec<usize>, Vec<usize>> {
    let n = tasks.len();
    let index: HashMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.as_str(), i))
        .collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut waiting: Vec<usize> = vec![0; n];
    for (i, t) in tasks.iter().enumerate() {
        for need in &t.needs {
            dependents[index[need.as_str()]].push(i);
            waiting[i] += 1;
        }
    }
    // Ready tasks ahead of the sweep are taken in this pass; those that
    // become ready behind it, in the next one.
    let mut this_pass: BinaryHeap<Reverse<usize>> =
        (0..n).filter(|&i| waiting[i] == 0).map(Reverse).collect();
    let mut next_pass: BinaryHeap<Reverse<usize>> = BinaryHeap::new();
    let mut order = Vec::with_capacity(n);
    loop {
        let Some(Reverse(i)) = this_pass.pop() else {
            if next_pass.is_empty() {
                break;
            }
            std::mem::swap(&mut this_pass, &mut next_pass);
            continue;
        };
        order.push(i);
        for &d in &dependents[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                if d > i {
                    this_pass.push(Reverse(d));
                } else {
                    next_pass.push(Reverse(d));
                }
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    // Every task left waits on at least one other task left, so following
    // such needs from any of them must come back round: that is a cycle.
    let left = |i: usize| waiting[i] > 0;
    let mut on_path = vec![usize::MAX; n];
    let mut path = Vec::new();
    let mut at = (0..n).find(|&i| left(i)).expect("a task is left");
    while on_path[at] == usize::MAX {
        on_path[at] = path.len();
        path.push(at);
        at = tasks[at]
            .needs
            .iter()
            .map(|need| index[need.as_str()])
            .find(|&j| left(j))
            .expect("a task left waits on another task left");
    }
    let mut cycle = path.split_off(on_path[at]);
    let earliest = (0..cycle.len())
        .min_by_key(|&k| cycle[k])
        .expect("a cycle has tasks");
    cycle.rotate_left(earliest);
    Err(cycle)
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

    /// A workflow of one task `a` with `extra` lines added to it.
    fn task(extra: &str) -> String {
        format!("name: x\ntasks:\n  - id: a\n    run: 'true'\n{extra}")
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
        let long = "n".repeat(100_000);
        let cases: Vec<(String, &str)> = vec![
            ("name: x\ntasks:\n  - id: a\n    run: 'true'\n  - id: a\n    run: 'true'\n".into(), "task 'a': duplicate task id"),
            ("name: x\ntasks:\n  - id: a\n    run: 'true'\n    needs: [b]\n".into(), "task 'a': needs unknown task 'b'; known tasks are a"),
            ("name: x\ntasks:\n  - id: a\n    run: 'true'\n    needs: [b]\n  - id: b\n    run: 'true'\n    needs: [a]\n".into(), "task 'a': the tasks a -> b -> a need each other in a cycle; break it"),
            // A task behind a cycle is not named in it.
            ("name: x\ntasks:\n  - id: c\n    run: 'true'\n    needs: [b]\n  - id: a\n    run: 'true'\n    needs: [b]\n  - id: b\n    run: 'true'\n    needs: [a]\n".into(), "task 'a': the tasks a -> b -> a need each other in a cycle"),
            ("name: x\ntasks:\n  - id: a\n    run: 'true'\n    needs: [c]\n  - id: b\n    run: 'true'\n    needs: [a]\n  - id: c\n    run: 'true'\n    needs: [b]\n".into(), "task 'a': the tasks a -> c -> b -> a need each other"),
            ("name: x\ntasks:\n  - id: a\n    run: 'true'\n  - id: b\n    run: 'true'\n    needs: [a, a]\n".into(), "task 'b': needs 'a' twice; list each task once"),
            ("name: x\ntasks:\n  - id: a\n    run: 'true'\n    needs: [a]\n".into(), "task 'a': a task cannot need itself"),
            (task("    timeout: soon\n"), "task 'a': timeout: bad duration 'soon'"),
            (task("    timeout: 0.5ms\n"), "task 'a': timeout: duration '0.5ms' is under 1ms; the smallest duration is 1ms"),
            (task("    retryDelay: 0.0001s\n"), "task 'a': retryDelay: duration '0.0001s' is under 1ms"),
            (task("    timeout: 0s\n"), "task 'a': timeout: 0s would kill every attempt at once"),
            (task("    timeout: 3651d\n"), "the longest is 3650d"),
            (task("    retry: 3\n"), "unknown field `retry`"),
            ("name: x\ntasks: []\n".into(), "no tasks"),
            ("name: 'a b'\ntasks:\n  - id: a\n    run: 'true'\n".into(), "workflow name 'a b' is invalid"),
            ("name: 'hello '\ntasks:\n  - id: a\n    run: 'true'\n".into(), "workflow name 'hello ' is invalid"),
            ("name: \"x\\e[31m\"\ntasks:\n  - id: a\n    run: 'true'\n".into(), "workflow name 'x\\u{1b}[31m' is invalid"),
            (format!("name: {long}\ntasks:\n  - id: a\n    run: 'true'\n"), "... (100000 characters)' is invalid"),
            (format!("name: x\ntasks:\n  - id: {long}\n    run: 'true'\n"), "... (100000 characters)': task id is invalid"),
            ("name: x\ntasks:\n  - id: \" a\"\n    run: 'true'\n".into(), "task ' a': task id is invalid"),
            ("name: x\ntasks:\n  - id: \"a\\e]0;x\\a\"\n    run: 'true'\n".into(), "task 'a\\u{1b}]0;x\\u{7}': task id is invalid"),
            ("tasks: [".into(), "not a valid workflow"),
            (format!("name: x\ndescription: {}\ntasks:\n  - id: a\n    run: 'true'\n", "d".repeat(10_001)), "description is 10001 characters; the most is 10000"),
            ("name: x\ndescription: \"a\\rb\"\ntasks:\n  - id: a\n    run: 'true'\n".into(), "description contains the control character '\\r'; only line breaks and tabs are allowed"),
            (format!("name: x\ntasks:\n  - id: a\n    run: echo {}\n", "x".repeat(200_000)), "task 'a': 'run' is 200005 bytes; the most is 100000 (a longer command cannot be passed to sh -c); put it in a script file"),
            ("name: x\ntasks:\n  - id: a\n    run: \"echo \\0\"\n".into(), "task 'a': 'run' contains a NUL byte"),
            ("name: x\ntasks:\n  - id: a\n    run: ''\n".into(), "'run' is empty"),
            (task("    env: { A: \"x\\0y\" }\n"), "task 'a': env 'A' contains a NUL byte"),
            (task("    env: { 1A: x }\n"), "env name '1A' is invalid; use letters, digits and '_', not starting with a digit, at most 255 characters"),
            (task("    env: { A-B: x }\n"), "env name 'A-B' is invalid"),
            (task("    env: { 'A B': x }\n"), "env name 'A B' is invalid"),
            (task("    env: { '': x }\n"), "env name '' is invalid"),
            (task("    env: { \"A\\e\": x }\n"), "env name 'A\\u{1b}' is invalid"),
            (task(&format!("    env: {{ {}: x }}\n", "A".repeat(256))), "(256 characters)' is invalid"),
            (task("    env: { A: [1] }\n"), "env 'A' must be a string, number or boolean"),
            (task(&format!("    env: {{ AB: {} }}\n", "v".repeat(128 * 1024))), "env 'AB' is 131072 bytes; the most is 131068 (the system limits NAME=value to 128 KiB)"),
            (format!("name: x\ntasks: {}\n", "[".repeat(50_000)), "wf.yaml: the workflow nests YAML more than 64 levels deep"),
            (format!("name: x\ntasks:\n  - id: a\n    run: x\n{}", "# pad\n".repeat(2_000_000)), "bytes; the most is 10 MB (10485760 bytes)"),
            // A key the parser quotes back is cut and escaped.
            (format!("name: x\n? \"{long}\\e\"\n: 1\ntasks: []\n"), "not a valid workflow: unknown field `nnnnnnnn"),
        ];
        for (yaml, want) in cases {
            let e = parse(&yaml).unwrap_err().to_string();
            assert!(e.starts_with("wf.yaml"), "{e}");
            assert!(e.contains(want), "{}: {e}", shown(&yaml));
            assert!(e.len() < 2000, "{}", e.len());
            assert!(!e.chars().any(char::is_control), "{e}");
        }
    }

    #[test]
    fn an_env_value_just_under_the_limit_is_taken() {
        let value = "v".repeat(128 * 1024 - 4);
        let wf = parse(&task(&format!("    env: {{ AB: {value} }}\n"))).unwrap();
        assert_eq!(wf.tasks[0].env["AB"].len(), 131_068);
        let wf = parse(&task("    env: { _a1: x, Z: 2, b: true }\n")).unwrap();
        assert_eq!(wf.tasks[0].env.len(), 3);
    }

    #[test]
    fn unknown_needs_list_at_most_twenty_known_tasks() {
        let mut yaml = String::from("name: x\ntasks:\n");
        for i in 0..100 {
            yaml.push_str(&format!("  - id: t{i:03}\n    run: 'true'\n"));
        }
        yaml.push_str("  - id: z\n    run: 'true'\n    needs: [nope]\n");
        let e = parse(&yaml).unwrap_err().to_string();
        assert!(
            e.ends_with("needs unknown task 'nope'; known tasks are t000, t001, t002, t003, t004, t005, t006, t007, t008, t009, t010, t011, t012, t013, t014, t015, t016, t017, t018, t019 and 81 more"),
            "{e}"
        );
    }

    #[test]
    fn a_long_cycle_is_named_in_short() {
        let mut yaml = String::from("name: x\ntasks:\n");
        for i in 0..1000 {
            yaml.push_str(&format!(
                "  - id: t{i}\n    run: 'true'\n    needs: [t{}]\n",
                (i + 1) % 1000
            ));
        }
        let e = parse(&yaml).unwrap_err().to_string();
        assert!(
            e.starts_with("wf.yaml, task 't0': the tasks t0 -> t1 -> "),
            "{e}"
        );
        assert!(
            e.ends_with(" -> t19 -> ... (1000 tasks) -> t0 need each other in a cycle; break it"),
            "{e}"
        );
    }

    /// The order of the pass-based algorithm this replaced: sweep the file
    /// again and again, taking each task whose needs are all done.
    fn sweep_order(tasks: &[Task]) -> Option<Vec<usize>> {
        let mut done = vec![false; tasks.len()];
        let mut order = Vec::new();
        while order.len() < tasks.len() {
            let before = order.len();
            for (i, t) in tasks.iter().enumerate() {
                let ready = t.needs.iter().all(|n| {
                    tasks
                        .iter()
                        .position(|o| &o.id == n)
                        .is_some_and(|j| done[j])
                });
                if !done[i] && ready {
                    done[i] = true;
                    order.push(i);
                }
            }
            if order.len() == before {
                return None;
            }
        }
        Some(order)
    }

    fn bare(id: String, needs: Vec<String>) -> Task {
        Task {
            id,
            run: "true".into(),
            retries: 0,
            retry_delay_ms: 1000,
            timeout_ms: None,
            needs,
            env: BTreeMap::new(),
            retry_on_crash: false,
        }
    }

    #[test]
    fn the_order_is_the_file_sweep_order() {
        // A small deterministic generator, so no dependency is needed.
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        for round in 0..500 {
            let n = 1 + next(12) as usize;
            // Random ranks make a random DAG; some rounds add a back edge.
            let rank: Vec<u64> = (0..n).map(|_| next(1000)).collect();
            let mut tasks = Vec::new();
            for i in 0..n {
                let mut needs = Vec::new();
                for j in 0..n {
                    let forward = rank[j] < rank[i] || (rank[j] == rank[i] && j < i);
                    if j != i && forward && next(3) == 0 {
                        needs.push(format!("t{j}"));
                    }
                }
                tasks.push(bare(format!("t{i}"), needs));
            }
            if round % 5 == 0 && n > 1 {
                let (a, b) = (next(n as u64) as usize, next(n as u64) as usize);
                let need = format!("t{b}");
                if a != b && !tasks[a].needs.contains(&need) {
                    tasks[a].needs.push(need);
                }
            }
            match (run_order(&tasks), sweep_order(&tasks)) {
                (Ok(fast), Some(slow)) => assert_eq!(fast, slow, "round {round}"),
                (Err(cycle), None) => {
                    // A real cycle: each needs the next, the last the first.
                    for (k, &i) in cycle.iter().enumerate() {
                        let next_id = &tasks[cycle[(k + 1) % cycle.len()]].id;
                        assert!(tasks[i].needs.contains(next_id), "round {round}");
                    }
                    assert_eq!(cycle[0], *cycle.iter().min().unwrap());
                }
                (fast, slow) => panic!("round {round}: {fast:?} vs {slow:?}"),
            }
        }
        // Ready together: file order; a task freed behind the sweep waits
        // for the next pass.
        let tasks = vec![
            bare("b".into(), vec!["c".into()]),
            bare("c".into(), vec![]),
            bare("d".into(), vec![]),
        ];
        assert_eq!(run_order(&tasks).unwrap(), [1, 2, 0]);
    }

    #[test]
    fn a_ten_thousand_task_chain_in_reverse_file_order_validates() {
        let n = 10_000;
        let mut yaml = String::from("name: chain\ntasks:\n");
        for i in (0..n).rev() {
            yaml.push_str(&format!("  - id: t{i}\n    run: 'true'\n"));
            if i > 0 {
                yaml.push_str(&format!("    needs: [t{}]\n", i - 1));
            }
        }
        let wf = parse(&yaml).unwrap();
        let keys = wf.task_keys();
        assert_eq!(keys.len(), n);
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(key, &format!("t{i}"));
        }
        // And as a cycle: the first task needs the last.
        yaml.push_str("    needs: [t9999]\n");
        let e = parse(&yaml).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("(10000 tasks)"), "{e}");
    }
}
