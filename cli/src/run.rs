//! `flowstate run`, and the log follower it shares with `execution logs`.

use crate::output;
use crate::{args, CmdResult, Failure, Globals};
use flowstate_engine::{node, Engine};
use flowstate_store::query::LogQuery;
use flowstate_store::types::{ExecutionState, LogStream};
use flowstate_store::StateStore;
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Arguments of `flowstate run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// The workflow file.
    file: PathBuf,
    /// An input value, handed to every task as an environment variable.
    #[arg(long = "input", value_name = "KEY=VALUE", value_parser = args::input)]
    inputs: Vec<(String, String)>,
}

/// The execution input object built from `--input` flags.
pub fn input_object(inputs: &[(String, String)]) -> serde_json::Value {
    serde_json::Value::Object(
        inputs
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
    )
}

pub async fn run(g: &Globals, a: RunArgs) -> CmdResult {
    let workflow = crate::workflows::read_workflow(&a.file)?;
    let engine = local_engine(g).await?;
    let exec = engine.submit(&workflow, input_object(&a.inputs)).await?;
    if !g.json() {
        errln!("execution {} of {} started", exec.id, workflow.name);
    }
    drive_here(g, &engine, exec.id, &workflow.name).await
}

/// An engine in this process, with a node id of its own: it must never
/// recover (fail) the executions a `serve` on the same machine and
/// database is running.
pub async fn local_engine(g: &Globals) -> CmdResult<Engine> {
    let mut config = g.config.clone();
    let base = config
        .engine
        .node_id
        .clone()
        .unwrap_or_else(|| node::default_node_id(&config.storage));
    config.engine.node_id = Some(format!("{base}-run-{}", std::process::id()));
    Ok(Engine::start(config).await?)
}

/// Runs the queued execution `id` here to its end, streaming its log (`run`
/// and `execution retry`): exit 0 when it SUCCEEDED, 1 otherwise; Ctrl-C
/// cancels it.
pub async fn drive_here(g: &Globals, engine: &Engine, id: Uuid, name: &str) -> CmdResult {
    let store = engine.store();
    let started = Instant::now();
    let follower = {
        let store = store.clone();
        let json = g.json();
        tokio::spawn(async move { follow(store.as_ref(), id, None, json, true, true).await })
    };
    let done = tokio::select! {
        done = engine.run_execution(id) => done?,
        _ = tokio::signal::ctrl_c() => {
            errln!("\ninterrupted: cancelling execution {id}");
            Engine::cancel(store.as_ref(), id).await?;
            tokio::time::timeout(Duration::from_secs(10), engine.run_execution(id))
                .await
                .map_err(|_| Failure::runtime("the execution did not stop within 10s"))??
        }
    };
    follower
        .await
        .map_err(|e| Failure::runtime(format!("log follower failed: {e}")))??;
    if g.json() {
        // The reader may be gone; the execution is over either way.
        let _ = writeln!(std::io::stdout(), "{}", output::execution(&done, name));
    } else {
        let mut line = format!(
            "execution {} {} in {:.1}s",
            done.id,
            done.state,
            started.elapsed().as_secs_f64()
        );
        if let Some(e) = &done.error {
            line.push_str(&format!(": {}", crate::logging::printable(e)));
        }
        errln!("{line}");
        if done.state != ExecutionState::Succeeded {
            print_failures(store.as_ref(), done.id).await;
        }
    }
    match done.state {
        ExecutionState::Succeeded => Ok(()),
        _ => Err(Failure::quiet()),
    }
}

/// One line per failed task: what its last attempt ended with (exit code,
/// timeout, spawn error), so `run` says why without a second command.
async fn print_failures(store: &dyn StateStore, id: Uuid) {
    let Ok(detail) = store.get_execution_detail(id).await else {
        return;
    };
    for t in &detail.task_runs {
        let r = &t.task_run;
        if r.state != flowstate_store::types::TaskState::Failed {
            continue;
        }
        let why = match t.attempts.iter().max_by_key(|a| a.number) {
            Some(a) => match (&a.error, a.exit_code) {
                (Some(err), _) => format!("attempt {}: {err}", a.number),
                (None, Some(code)) => format!("attempt {} exited with code {code}", a.number),
                (None, None) => format!("attempt {} {}", a.number, a.state),
            },
            None => "no attempt ran".to_owned(),
        };
        let reason = r.reason.map_or("FAILED", |r| r.as_str());
        errln!(
            "  task {} {reason}: {}",
            r.task_key,
            crate::logging::printable(&why)
        );
    }
}

/// Whether the execution has ended. For `run` (`purged_ends`), one purged
/// by retention or `cleanup` as soon as it ended has too: nothing more
/// will be written.
async fn ended(store: &dyn StateStore, id: Uuid, purged_ends: bool) -> CmdResult<bool> {
    match store.get_execution(id).await {
        Ok(exec) => Ok(exec.state.is_terminal()),
        Err(flowstate_store::StoreError::NotFound { .. }) if purged_ends => Ok(true),
        Err(e) => Err(e.into()),
    }
}

/// Writes log lines to stdout: JSON objects, or `[task] line` (`prefix`,
/// for `run`) or `time task line`.
/// Log lines read per query: larger pages are fewer round trips, and memory
/// stays flat (a page of 5,000 typical lines is about 1 MiB). Reading the
/// next page while printing one was tried: slower (3.4 s against 3.0 s for
/// 1M lines), as both halves compete for the same two cores.
const LOG_PAGE: u64 = 5_000;

fn print_lines(
    lines: &[flowstate_store::types::LogLine],
    keys: &HashMap<Uuid, String>,
    json: bool,
    prefix: bool,
) -> std::io::Result<()> {
    // Rust's stdout writes at every newline, even into a pipe or a file:
    // one system call per line made `execution logs` of 100k lines take
    // 1.19 s against sqlite3's 0.12 s (issue 13). A page goes out in
    // large writes instead, flushed before the next page is read, so
    // `--follow` shows each page as soon as it is read.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut stamp = (i64::MIN, String::new());
    for l in lines {
        let key = l.task_run_id.and_then(|t| keys.get(&t)).map(String::as_str);
        if json {
            writeln!(out, "{}", output::log_line(l, key))?;
            continue;
        }
        if prefix {
            write!(out, "[{}] ", key.unwrap_or("-"))?;
        } else {
            // Shown to the second: lines of one second share the text.
            if l.ts.timestamp() != stamp.0 {
                stamp = (l.ts.timestamp(), output::local(Some(l.ts)));
            }
            write!(out, "{} {} ", stamp.1, key.unwrap_or("-"))?;
        }
        if l.stream != LogStream::Stdout {
            write!(out, "({}) ", l.stream)?;
        }
        writeln!(out, "{}", l.line)?;
    }
    out.flush()
}

/// Reads the task keys again when `lines` name a task run not yet known.
async fn refresh_keys(
    store: &dyn StateStore,
    execution_id: Uuid,
    lines: &[flowstate_store::types::LogLine],
    keys: &mut HashMap<Uuid, String>,
) -> CmdResult {
    if lines
        .iter()
        .any(|l| l.task_run_id.is_some_and(|t| !keys.contains_key(&t)))
    {
        *keys = store
            .list_task_runs(execution_id)
            .await?
            .into_iter()
            .map(|r| (r.id, r.task_key))
            .collect();
    }
    Ok(())
}

/// Prints an execution's log lines from the start; with `until_done`, keeps
/// polling for new ones until the execution has ended and every line is out.
pub async fn follow(
    store: &dyn StateStore,
    execution_id: Uuid,
    task_run_id: Option<Uuid>,
    json: bool,
    prefix: bool,
    until_done: bool,
) -> CmdResult {
    let progress = until_done && prefix && !json && std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut keys: HashMap<Uuid, String> = HashMap::new();
    let mut after = None;
    let page = |after_id| {
        store.read_logs(LogQuery {
            execution_id,
            task_run_id,
            after_id,
            limit: Some(LOG_PAGE),
        })
    };
    loop {
        let lines = page(after).await?;
        refresh_keys(store, execution_id, &lines, &mut keys).await?;
        if progress && !lines.is_empty() {
            err!("\r\x1b[K");
        }
        let full = lines.len() as u64 == LOG_PAGE;
        after = lines.last().map(|l| l.id).or(after);
        let printed = print_lines(&lines, &keys, json, prefix);
        match printed {
            Ok(()) => {}
            // The reader went away (a closed pipe): stop quietly.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(Failure::runtime(format!("cannot write the logs: {e}"))),
        }
        if full {
            continue;
        }
        if !until_done {
            return Ok(());
        }
        if ended(store, execution_id, prefix).await? {
            // One more read: lines written just before the end.
            let rest = store
                .read_logs(LogQuery {
                    execution_id,
                    task_run_id,
                    after_id: after,
                    limit: Some(1),
                })
                .await?;
            if rest.is_empty() {
                if progress {
                    err!("\r\x1b[K");
                }
                return Ok(());
            }
            continue;
        }
        if progress {
            let runs = store.list_task_runs(execution_id).await?;
            let done = runs.iter().filter(|r| r.state.is_terminal()).count();
            err!(
                "\r\x1b[K{done}/{} tasks done, {:.1}s",
                runs.len(),
                started.elapsed().as_secs_f64()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
