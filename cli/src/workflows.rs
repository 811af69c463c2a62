//! `flowstate workflow ...` and `flowstate submit`.

use crate::output;
use crate::run::input_object;
use crate::{args, CmdResult, Failure, Globals};
use flowstate_cli::confirm;
use flowstate_engine::duration::format_duration;
use flowstate_engine::Workflow;
use flowstate_store::query::{ExecutionQuery, WorkflowQuery, WorkflowSort};
use flowstate_store::text::{escape_controls, shown};
use flowstate_store::StateStore;
use serde_json::json;
use std::path::{Path, PathBuf};

/// Workflow commands.
#[derive(clap::Subcommand)]
pub enum WorkflowCommand {
    /// List registered workflows.
    List {
        /// Include deleted workflows.
        #[arg(long)]
        all: bool,
        /// Only workflows whose name contains this text.
        #[arg(long, value_name = "TEXT")]
        filter: Option<String>,
        /// Rows per page (1 to 1000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1000))]
        limit: u64,
        /// Rows to skip (0 to 10000).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=10_000))]
        offset: u64,
    },
    /// Show a workflow and its tasks.
    #[command(disable_version_flag = true)]
    Show {
        /// The workflow name.
        name: String,
        /// Show this earlier version instead of the current one.
        #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
        version: Option<i32>,
    },
    /// List a workflow's versions: when each was registered and how many
    /// executions run it.
    History {
        /// The workflow name.
        name: String,
    },
    /// Register a workflow file (or update it; the version goes up when it changed).
    Register {
        /// The workflow file.
        file: PathBuf,
    },
    /// Delete a workflow: hidden but kept with its executions, or with --hard
    /// removed with all its executions.
    Delete {
        /// The workflow name.
        name: String,
        /// Also delete its executions and everything under them (asks first).
        #[arg(long)]
        hard: bool,
        /// Do not ask; needed with --hard when there is no terminal to ask on.
        #[arg(long)]
        yes: bool,
    },
}

/// Arguments of `flowstate submit`.
#[derive(clap::Args)]
pub struct SubmitArgs {
    /// A registered workflow's name, or a workflow file (registered first).
    workflow: String,
    /// An input value, handed to every task as an environment variable.
    #[arg(long = "input", value_name = "KEY=VALUE", value_parser = args::input)]
    inputs: Vec<(String, String)>,
    /// Wait until the execution ends, and exit as `execution wait` does.
    #[arg(long)]
    wait: bool,
    /// With --wait: give up after this long (exit 124).
    #[arg(long, value_name = "DURATION", value_parser = args::duration, requires = "wait", allow_hyphen_values = true)]
    timeout: Option<std::time::Duration>,
}

fn task_ids(w: &flowstate_store::types::Workflow) -> Vec<String> {
    Workflow::from_definition(&w.definition)
        .map(|d| d.task_keys())
        .unwrap_or_default()
}

/// Reads and validates a workflow file. A file that is not there is "not
/// found" (exit 1); one that is there but invalid is bad input (exit 2).
pub fn read_workflow(path: &Path) -> CmdResult<Workflow> {
    if !path.exists() {
        return Err(Failure::runtime(format!(
            "workflow file '{}' not found",
            shown(&path.display().to_string())
        )));
    }
    Ok(Workflow::from_file(path)?)
}

pub async fn command(g: &Globals, c: WorkflowCommand) -> CmdResult {
    // A bad file or flag is refused before the database is touched.
    let parsed = match &c {
        WorkflowCommand::Register { file } => Some(read_workflow(file)?),
        WorkflowCommand::Delete {
            hard: true, yes, ..
        } => {
            confirm::preflight("workflow delete --hard", *yes)?;
            None
        }
        _ => None,
    };
    let store = match &c {
        WorkflowCommand::Register { .. } => g.store().await?,
        WorkflowCommand::Delete { .. } => g.existing_store().await?,
        _ => g.reader().await?,
    };
    let store = store.as_ref();
    match (c, parsed) {
        (
            WorkflowCommand::List {
                all,
                filter,
                limit,
                offset,
            },
            _,
        ) => {
            let query = WorkflowQuery {
                include_deleted: all,
                name_contains: filter,
                limit: Some(limit),
                offset: Some(offset),
                sort: WorkflowSort::Name,
                ..Default::default()
            };
            list(g, store, query).await
        }
        (WorkflowCommand::Show { name, version }, _) => show(g, store, &name, version).await,
        (WorkflowCommand::History { name }, _) => history(g, store, &name).await,
        (WorkflowCommand::Register { .. }, Some(wf)) => register(g, store, &wf).await,
        (WorkflowCommand::Register { .. }, None) => unreachable!("parsed above"),
        (WorkflowCommand::Delete { name, hard, yes }, _) => {
            delete(g, store, &name, hard, yes).await
        }
    }
}

async fn list(g: &Globals, store: &dyn StateStore, query: WorkflowQuery) -> CmdResult {
    let page = store.list_workflows(query).await?;
    if g.structured() {
        output::doc(g, &flowstate_server::json::workflow_page(&page), "name");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = page
        .items
        .iter()
        .map(|w| {
            vec![
                w.name.clone(),
                w.version.to_string(),
                task_ids(w).len().to_string(),
                output::local(Some(w.updated_at)),
                if w.deleted_at.is_some() {
                    "deleted".into()
                } else {
                    w.description.clone().unwrap_or_default()
                },
            ]
        })
        .collect();
    output::table(
        &["NAME", "VERSION", "TASKS", "UPDATED", "DESCRIPTION"],
        &rows,
    );
    Ok(())
}

async fn show(g: &Globals, store: &dyn StateStore, name: &str, version: Option<i32>) -> CmdResult {
    let w = flowstate_server::workflow_at(store, name, version).await?;
    if g.structured() {
        output::doc(g, &flowstate_server::json::workflow(&w), "name");
        return Ok(());
    }
    outln!("workflow   {} (version {})", w.name, w.version);
    if let Some(d) = &w.description {
        outln!("about      {}", escape_controls(d));
    }
    outln!("updated    {}", output::local(Some(w.updated_at)));
    if w.deleted_at.is_some() {
        outln!("deleted    {}", output::local(w.deleted_at));
    }
    outln!();
    let def = Workflow::from_definition(&w.definition)?;
    for t in &def.tasks {
        print_task(t);
    }
    Ok(())
}

/// One task of `workflow show`: its settings, then its command, each line
/// of a multi-line command on its own indented line.
fn print_task(t: &flowstate_engine::workflow::Task) {
    let took = |ms: u64| format_duration(std::time::Duration::from_millis(ms));
    outln!("task {}", escape_controls(&t.id));
    if !t.needs.is_empty() {
        outln!("  needs        {}", escape_controls(&t.needs.join(", ")));
    }
    match t.retries {
        0 => outln!("  retries      0"),
        n => outln!(
            "  retries      {n} (first after {}, doubling)",
            took(t.retry_delay_ms)
        ),
    }
    outln!(
        "  timeout      {}",
        t.timeout_ms.map_or("none".into(), took)
    );
    if t.retry_on_crash {
        outln!("  retryOnCrash true");
    }
    for (i, (k, v)) in t.env.iter().enumerate() {
        let label = if i == 0 { "env" } else { "" };
        outln!("  {label:12} {}={}", escape_controls(k), escape_controls(v));
    }
    let lines: Vec<&str> = t.run.trim_end().lines().collect();
    match lines.as_slice() {
        [one] => outln!("  run          {}", escape_controls(one)),
        many => {
            outln!("  run");
            for line in many {
                outln!("    {}", escape_controls(line));
            }
        }
    }
    outln!();
}

async fn history(g: &Globals, store: &dyn StateStore, name: &str) -> CmdResult {
    let w = store.get_workflow_by_name(name).await?;
    let versions = store.list_workflow_versions(w.id).await?;
    if g.structured() {
        let doc = flowstate_server::json::history(&w, &versions);
        output::doc(g, &doc, "version");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = versions
        .iter()
        .map(|v| {
            vec![
                v.version.to_string(),
                output::local(Some(v.created_at)),
                v.executions.to_string(),
                if v.version == w.version {
                    "current"
                } else {
                    ""
                }
                .into(),
            ]
        })
        .collect();
    output::table(&["VERSION", "REGISTERED", "EXECUTIONS", ""], &rows);
    Ok(())
}

async fn register(g: &Globals, store: &dyn StateStore, wf: &Workflow) -> CmdResult {
    let saved = store
        .save_workflow(flowstate_store::types::NewWorkflow {
            name: wf.name.clone(),
            definition: wf.to_definition(),
            description: wf.description.clone(),
        })
        .await?;
    if g.structured() {
        output::doc(
            g,
            &flowstate_server::json::workflow(&saved.workflow),
            "name",
        );
    } else {
        let what = if saved.changed {
            "registered"
        } else {
            "unchanged"
        };
        outln!(
            "{what}: {} version {}",
            saved.workflow.name,
            saved.workflow.version
        );
    }
    Ok(())
}

async fn delete(
    g: &Globals,
    store: &dyn StateStore,
    name: &str,
    hard: bool,
    yes: bool,
) -> CmdResult {
    let w = store.get_workflow_by_name(name).await?;
    if hard {
        confirm_hard_delete(g, store, &w, yes).await?;
    }
    store.delete_workflow(w.id, hard).await?;
    if g.structured() {
        let doc = json!({"name": name, "deleted": true, "hard": hard});
        output::doc(g, &doc, "name");
    } else if hard {
        outln!("deleted {name} and all its executions");
    } else {
        outln!("deleted {name} (its executions are kept; `workflow register` restores it)");
    }
    Ok(())
}

/// Shows what `workflow delete --hard` removes and asks (unless `--yes`).
async fn confirm_hard_delete(
    g: &Globals,
    store: &dyn StateStore,
    w: &flowstate_store::types::Workflow,
    yes: bool,
) -> CmdResult {
    let page = store
        .list_executions(ExecutionQuery {
            workflow_id: Some(w.id),
            limit: Some(1),
            ..Default::default()
        })
        .await?;
    let plus = if page.total_exact { "" } else { "+" };
    confirm::ask(
        &format!(
            "workflow delete --hard removes workflow '{}' and its {}{plus} executions (with their task runs, attempts, outputs and logs) from {}",
            shown(&w.name),
            page.total,
            g.config.storage.display_target()
        ),
        yes,
    )?;
    Ok(())
}

pub async fn submit(g: &Globals, a: SubmitArgs) -> CmdResult {
    let path = Path::new(&a.workflow);
    let from_file = path.is_file() || a.workflow.ends_with(".yaml") || a.workflow.ends_with(".yml");
    let file_workflow = if from_file {
        Some(read_workflow(path)?)
    } else {
        None
    };
    // A name can only be found in a database that exists; a file brings
    // its workflow in, so it may create one.
    let store = match file_workflow {
        Some(_) => g.store().await?,
        None => g.existing_store().await?,
    };
    let workflow = match file_workflow {
        Some(w) => w,
        None => {
            let stored = store
                .get_workflow_by_name(&a.workflow)
                .await
                .map_err(|e| match e {
                    flowstate_store::StoreError::NotFound { .. } => Failure::runtime(format!(
                        "no workflow named '{}' and no such file; register it or give the file",
                        shown(&a.workflow)
                    )),
                    other => other.into(),
                })?;
            if stored.deleted_at.is_some() {
                return Err(Failure::runtime(format!(
                    "workflow '{}' is deleted; register it again to run it",
                    shown(&a.workflow)
                )));
            }
            Workflow::from_definition(&stored.definition)?
        }
    };
    let exec = flowstate_engine::submit(store.as_ref(), &workflow, input_object(&a.inputs)).await?;
    if a.wait {
        if !g.structured() {
            errln!("execution {} of {} submitted", exec.id, workflow.name);
        }
        return crate::wait::wait(g, store.as_ref(), exec.id, a.timeout).await;
    }
    if g.structured() {
        output::doc(g, &output::execution(&exec, &workflow.name), "id");
    } else {
        outln!("{}", exec.id);
    }
    Ok(())
}
