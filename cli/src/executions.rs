//! `flowstate execution list | inspect | logs | cancel`.

use crate::args::{self, Sort};
use crate::output;
use crate::{CmdResult, Failure, Globals};
use flowstate_engine::Engine;
use flowstate_store::query::{ExecutionQuery, SortOrder};
use flowstate_store::text::{escape_controls, shown};
use flowstate_store::types::ExecutionState;
use flowstate_store::StateStore;
use uuid::Uuid;

/// Execution commands.
#[derive(clap::Subcommand)]
pub enum ExecutionCommand {
    /// List executions, newest first, with filters and paging.
    List(ListArgs),
    /// Show an execution with its task runs, their attempts, and its outputs.
    Inspect {
        /// The execution id, or a unique prefix of it (8+ hex digits).
        #[arg(value_parser = args::id_or_prefix)]
        id: String,
    },
    /// Print an execution's log lines.
    Logs {
        /// The execution id, or a unique prefix of it (8+ hex digits).
        #[arg(value_parser = args::id_or_prefix)]
        id: String,
        /// Only this task's lines.
        #[arg(long, value_name = "KEY")]
        task: Option<String>,
        /// Keep printing new lines until the execution ends.
        #[arg(long)]
        follow: bool,
    },
    /// Wait until an execution ends: exit 0 if it SUCCEEDED, 1 if it FAILED
    /// or was CANCELLED, 124 if --timeout passes first. Prints the final state.
    Wait {
        /// The execution id, or a unique prefix of it (8+ hex digits).
        #[arg(value_parser = args::id_or_prefix)]
        id: String,
        /// Give up after this long (30s, 10m, 2h).
        #[arg(long, value_name = "DURATION", value_parser = args::duration, allow_hyphen_values = true)]
        timeout: Option<std::time::Duration>,
    },
    /// Re-run an ended execution: a new execution of the same workflow
    /// version and inputs, linked to it, that reuses the tasks that
    /// succeeded (outputs included) and runs the rest, here to the end
    /// like `run` (or queued for `serve` with --queue).
    Retry {
        /// The execution id, or a unique prefix of it (8+ hex digits).
        #[arg(value_parser = args::id_or_prefix)]
        id: String,
        /// Also run this task again, and everything downstream of it.
        #[arg(long, value_name = "TASK", conflicts_with = "all")]
        from: Option<String>,
        /// Run every task again; reuse nothing.
        #[arg(long)]
        all: bool,
        /// Leave it PENDING for `serve` and print its id.
        #[arg(long)]
        queue: bool,
    },
    /// Cancel an execution: it and its unfinished tasks become CANCELLED, and
    /// the engine running it stops its processes.
    Cancel {
        /// The execution id, or a unique prefix of it (8+ hex digits).
        #[arg(value_parser = args::id_or_prefix)]
        id: String,
    },
}

/// Filters and paging of `execution list`.
#[derive(clap::Args)]
pub struct ListArgs {
    /// Only this workflow's executions; with * or ? (quoted: 'nightly-*'),
    /// those of every workflow whose name matches.
    #[arg(long, value_name = "NAME")]
    workflow: Option<String>,
    /// Only executions in this state (repeat for several).
    #[arg(long, value_name = "STATE", value_parser = args::state)]
    state: Vec<ExecutionState>,
    /// Only executions that ended for this reason, such as CRASH_RECOVERY
    /// (repeat for several).
    #[arg(long, value_name = "REASON", value_parser = args::reason)]
    reason: Vec<flowstate_store::types::Reason>,
    /// Created at or after: RFC 3339, or a duration ago (90m, 7d).
    #[arg(long, value_name = "TIME", value_parser = args::time, allow_hyphen_values = true)]
    since: Option<chrono::DateTime<chrono::Utc>>,
    /// Created before: RFC 3339, or a duration ago.
    #[arg(long, value_name = "TIME", value_parser = args::time, allow_hyphen_values = true)]
    until: Option<chrono::DateTime<chrono::Utc>>,
    /// Rows per page (1 to 1000).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=1000))]
    limit: u64,
    /// Rows to skip (0 to 10000; page deeper with --after).
    #[arg(long, conflicts_with = "after", value_parser = clap::value_parser!(u64).range(0..=10_000))]
    offset: Option<u64>,
    /// Continue after this cursor (the nextCursor of the previous page).
    #[arg(long, value_name = "CURSOR")]
    after: Option<String>,
    /// Count every matching row; by default counting stops past 10000
    /// ("10000+"), which keeps every page fast at millions of rows.
    #[arg(long)]
    exact_total: bool,
    /// created (oldest first) or -created (newest first).
    #[arg(long, default_value = "-created", value_parser = args::sort, allow_hyphen_values = true)]
    sort: Sort,
}

pub async fn command(g: &Globals, c: ExecutionCommand) -> CmdResult {
    // Every value is checked before the database is opened.
    if let ExecutionCommand::List(a) = &c {
        a.query().validate()?;
    }
    let store = match &c {
        ExecutionCommand::Cancel { .. } | ExecutionCommand::Retry { .. } => {
            g.existing_store().await?
        }
        _ => g.reader().await?,
    };
    match c {
        ExecutionCommand::List(a) => list(g, store.as_ref(), a).await,
        ExecutionCommand::Inspect { id } => {
            let id = resolve(store.as_ref(), &id).await?;
            inspect(g, store.as_ref(), id).await
        }
        ExecutionCommand::Wait { id, timeout } => {
            let id = resolve(store.as_ref(), &id).await?;
            crate::wait::wait(g, store.as_ref(), id, timeout).await
        }
        ExecutionCommand::Logs { id, task, follow } => {
            let id = resolve(store.as_ref(), &id).await?;
            store.get_execution(id).await?;
            let task_run_id = match task {
                None => None,
                Some(key) => {
                    let runs = store.list_task_runs(id).await?;
                    flowstate_server::task_run_id_of(&runs, id, Some(&key))?
                }
            };
            crate::run::follow(store.as_ref(), id, task_run_id, g.json(), false, follow).await
        }
        ExecutionCommand::Retry {
            id,
            from,
            all,
            queue,
        } => {
            let id = resolve(store.as_ref(), &id).await?;
            retry(g, store.as_ref(), id, from.as_deref(), (all, queue)).await
        }
        ExecutionCommand::Cancel { id } => {
            let id = resolve(store.as_ref(), &id).await?;
            let e = Engine::cancel(store.as_ref(), id).await?;
            if g.structured() {
                let name = store.get_workflow(e.workflow_id).await?.name;
                output::doc(g, &output::execution(&e, &name), "id");
            } else {
                outln!("execution {id} CANCELLED");
            }
            Ok(())
        }
    }
}

/// The execution that `text`, a full id or a unique prefix, names. An
/// unknown or ambiguous prefix is "not found" (exit 1); an ambiguous one
/// lists the candidates.
pub async fn resolve(store: &dyn StateStore, text: &str) -> CmdResult<Uuid> {
    if let Ok(id) = Uuid::try_parse(text) {
        return Ok(id);
    }
    let found = store.execution_ids_with_prefix(text, 11).await?;
    match found.as_slice() {
        [] => Err(Failure::runtime(format!(
            "no execution id starts with '{}'",
            shown(text)
        ))),
        [one] => Ok(*one),
        many => {
            let listed: Vec<String> = many.iter().take(10).map(Uuid::to_string).collect();
            let more = if many.len() > 10 { " and more" } else { "" };
            Err(Failure::runtime(format!(
                "'{}' starts several execution ids: {}{more}; give more digits",
                shown(text),
                listed.join(", ")
            )))
        }
    }
}

/// `execution retry`: creates the retry, then runs it here or leaves it
/// queued (`queue`).
async fn retry(
    g: &Globals,
    store: &dyn StateStore,
    id: Uuid,
    from: Option<&str>,
    (all, queue): (bool, bool),
) -> CmdResult {
    let exec = flowstate_engine::retry::retry(store, id, from, all).await?;
    let name = store.get_workflow(exec.workflow_id).await?.name;
    if queue {
        if g.structured() {
            output::doc(g, &output::execution(&exec, &name), "id");
        } else {
            outln!("{}", exec.id);
        }
        return Ok(());
    }
    if !g.json() {
        errln!("execution {} retries {id}", exec.id);
    }
    let engine = crate::run::local_engine(g).await?;
    crate::run::drive_here(g, &engine, exec.id, &name).await
}

impl ListArgs {
    /// The store query these arguments ask for.
    fn query(&self) -> ExecutionQuery {
        ExecutionQuery {
            workflow_id: None,
            workflow_ids: Vec::new(),
            states: self.state.clone(),
            since: self.since,
            until: self.until,
            owner: None,
            reasons: self.reason.clone(),
            limit: Some(self.limit),
            offset: self.offset,
            after: self.after.clone(),
            sort: match self.sort {
                Sort::Created => SortOrder::Ascending,
                Sort::NewestFirst => SortOrder::Descending,
            },
            exact_total: self.exact_total,
        }
    }
}

async fn list(g: &Globals, store: &dyn StateStore, a: ListArgs) -> CmdResult {
    let (page, names) =
        flowstate_server::list_page(store, a.workflow.as_deref(), a.query()).await?;
    let name = |id: &Uuid| names.get(id).cloned().unwrap_or_default();
    if g.structured() {
        let doc = flowstate_server::json::execution_page(&page, &names);
        output::doc(g, &doc, "id");
        return Ok(());
    }
    let ids: Vec<Uuid> = page.items.iter().map(|e| e.id).collect();
    let shorts = args::short_ids(&ids);
    let rows: Vec<Vec<String>> = page
        .items
        .iter()
        .zip(shorts)
        .map(|(e, short)| {
            vec![
                short,
                name(&e.workflow_id),
                e.state.to_string(),
                output::local(Some(e.created_at)),
                output::took(e.started_at, e.finished_at),
                e.reason.map(|r| r.to_string()).unwrap_or_default(),
            ]
        })
        .collect();
    output::table(
        &["ID", "WORKFLOW", "STATE", "CREATED", "DURATION", "REASON"],
        &rows,
    );
    let shown = page.items.len() as u64;
    let plus = if page.total_exact { "" } else { "+" };
    let mut footer = format!("{shown} of {}{plus} shown", page.total);
    if let Some(c) = page.next_cursor {
        footer.push_str(&format!("; next page: --after {c}"));
    }
    errln!("{footer}");
    Ok(())
}

async fn inspect(g: &Globals, store: &dyn StateStore, id: Uuid) -> CmdResult {
    let d = store.get_execution_detail(id).await?;
    if g.structured() {
        output::doc(g, &output::detail(&d), "id");
        return Ok(());
    }
    print_header(&d);
    outln!();
    output::table(
        &["TASK", "STATE", "EXIT", "STARTED", "DURATION", "DETAIL"],
        &task_rows(&d),
    );
    if !d.outputs.is_empty() {
        outln!();
        let doc = output::detail(&d);
        let rows: Vec<Vec<String>> = doc["outputs"]
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(task, kv)| {
                kv.as_object().into_iter().flatten().map(move |(k, v)| {
                    vec![
                        task.clone(),
                        k.clone(),
                        v.as_str().map_or(v.to_string(), str::to_owned),
                    ]
                })
            })
            .collect();
        output::table(&["TASK", "OUTPUT", "VALUE"], &rows);
    }
    Ok(())
}

/// The execution's own lines of `inspect`: state, times, owner, inputs.
fn print_header(d: &flowstate_store::types::ExecutionDetail) {
    let e = &d.execution;
    let colour = output::colour();
    outln!("execution  {}", e.id);
    outln!(
        "workflow   {} (version {})",
        d.workflow_name,
        e.workflow_version
    );
    outln!("state      {}", output::state(e.state.as_str(), 0, colour));
    if let Some(r) = e.reason {
        outln!("reason     {r}");
    }
    if let Some(err) = &e.error {
        outln!("error      {}", escape_controls(err));
    }
    outln!("created    {}", output::local(Some(e.created_at)));
    outln!("started    {}", output::local(e.started_at));
    outln!("finished   {}", output::local(e.finished_at));
    if let Some(owner) = &e.owner {
        outln!("owner      {}", escape_controls(owner));
    }
    if let Some(original) = e.retry_of {
        outln!("retry of   {original}");
    }
    if !d.retries.is_empty() {
        let ids: Vec<String> = d.retries.iter().map(Uuid::to_string).collect();
        outln!("retries    {}", ids.join(", "));
    }
    match e.input.as_object().filter(|o| !o.is_empty()) {
        None => outln!("inputs     -"),
        Some(inputs) => {
            outln!("inputs");
            for (k, v) in inputs {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                outln!("  {}={}", shown(k), shown(&v));
            }
        }
    }
}

/// One row per task run, each followed by a row per attempt.
fn task_rows(d: &flowstate_store::types::ExecutionDetail) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for t in &d.task_runs {
        let r = &t.task_run;
        rows.push(vec![
            r.task_key.clone(),
            r.state.to_string(),
            "-".into(),
            output::local(r.started_at),
            output::took(r.started_at, r.finished_at),
            r.reason.map(|r| r.to_string()).unwrap_or_default(),
        ]);
        for a in &t.attempts {
            let detail = match (&a.exit_code, &a.error) {
                (_, Some(err)) => err.clone(),
                (Some(code), None) => format!("exit {code}"),
                _ => String::new(),
            };
            rows.push(vec![
                format!("  attempt {}", a.number),
                a.state.to_string(),
                a.exit_code.map_or("-".into(), |c| c.to_string()),
                output::local(Some(a.started_at)),
                output::took(Some(a.started_at), a.finished_at),
                detail,
            ]);
        }
    }
    rows
}
