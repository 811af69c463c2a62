//! `flowstate serve`, `flowstate console` and `flowstate cleanup`.

use crate::{args, CmdResult, Failure, Globals};
use chrono::Utc;
use flowstate_cli::confirm;
use flowstate_engine::Engine;
use flowstate_server::Server;
use flowstate_store::types::PurgeCounts;
use serde_json::json;
use std::io::IsTerminal;
use std::time::Duration;

/// Arguments of `flowstate serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// How the log on stderr is written: text (plain unless stderr is a
    /// terminal) or json (one object per line).
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: crate::logging::LogFormat,
}

pub async fn serve(g: &Globals) -> CmdResult {
    let config = g.config.clone();
    // Listening starts before anything else: a SIGTERM that arrives during
    // recovery or before the first poll would otherwise kill the process
    // by its default action, as a crash.
    let signals = shutdown_signals()
        .map_err(|e| Failure::runtime(format!("cannot listen for SIGTERM and SIGINT: {e}")))?;
    // The port before the database: a taken port fails before any work.
    let server = match config.server.enabled {
        true => Some(Server::bind(&config.server).await.map_err(listen_failed)?),
        false => None,
    };
    let metrics = match (&server, config.engine.metrics_addr) {
        (None, None) => None,
        (_, addr) => Some(flowstate_engine::metrics::install(addr)?),
    };
    if let Some(addr) = config.engine.metrics_addr {
        tracing::info!(%addr, "serving metrics at /metrics");
    }
    let engine = Engine::start(config).await?;
    let (stop_http, http) = match server {
        Some(server) => {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let store = engine.store();
            announce(&server);
            let task = tokio::spawn(server.run(store, metrics, "engine", async {
                let _ = rx.await;
            }));
            (Some(tx), Some(task))
        }
        None => (None, None),
    };
    let served = engine.serve_signals(signals).await;
    // The console answers through the engine's shutdown; it stops after.
    if let (Some(tx), Some(task)) = (stop_http, http) {
        let _ = tx.send(());
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// `flowstate console`: the HTTP API and the console on an existing
/// database, without running work, until SIGINT or SIGTERM.
pub async fn console(g: &Globals) -> CmdResult {
    let mut signals = shutdown_signals()
        .map_err(|e| Failure::runtime(format!("cannot listen for SIGTERM and SIGINT: {e}")))?;
    let server = Server::bind(&g.config.server)
        .await
        .map_err(listen_failed)?;
    let store = g.existing_store().await?;
    announce(&server);
    server
        .run(store, None, "console", async move {
            let _ = signals.recv().await;
        })
        .await
        .map_err(|e| Failure::runtime(e.message()))?;
    tracing::info!("stopped");
    Ok(())
}

/// Logs where the console is, with the port the system chose for port 0.
fn announce(server: &Server) {
    let addr = server.local_addr();
    tracing::info!(%addr, "console and API at http://{addr}/");
}

/// A listener that cannot open is a runtime failure naming the way out.
fn listen_failed(e: flowstate_server::ServerError) -> Failure {
    Failure::runtime(e.message())
}

/// Starts listening for SIGINT and SIGTERM at once; each one that arrives
/// is one message (the first drains, the second ends the grace).
fn shutdown_signals() -> std::io::Result<tokio::sync::mpsc::Receiver<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = int.recv() => tracing::info!("SIGINT received"),
                _ = term.recv() => tracing::info!("SIGTERM received"),
            }
            if tx.send(()).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

/// Deletes batch after batch until a batch comes back short, drawing a
/// progress bar of `total` on stderr when `bar` is set.
async fn purge_all(
    store: &dyn flowstate_store::StateStore,
    cutoff: chrono::DateTime<Utc>,
    batch_size: u64,
    total: u64,
    bar: bool,
) -> CmdResult<PurgeCounts> {
    let mut done = PurgeCounts::default();
    loop {
        let batch = store.purge_batch(cutoff, batch_size).await?;
        done += batch.counts;
        if bar {
            let filled = ((done.executions.min(total) * 30) / total.max(1)) as usize;
            err!(
                "\r[{}{}] {}/{} executions",
                "#".repeat(filled),
                " ".repeat(30 - filled),
                done.executions,
                total
            );
        }
        if batch.counts.executions < batch_size {
            break;
        }
    }
    if bar {
        errln!();
    }
    Ok(done)
}

/// Arguments of `flowstate cleanup`.
#[derive(clap::Args)]
pub struct CleanupArgs {
    /// Delete executions finished longer ago than this (default: storage.retentionDays).
    #[arg(long, value_name = "DURATION", value_parser = args::duration, allow_hyphen_values = true)]
    older_than: Option<Duration>,
    /// Count what would be deleted without deleting.
    #[arg(long)]
    dry_run: bool,
    /// Do not ask; needed when there is no terminal to ask on.
    #[arg(long)]
    yes: bool,
    /// Executions deleted per transaction (1 to 20000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=20_000))]
    batch_size: u64,
}

pub async fn cleanup(g: &Globals, a: CleanupArgs) -> CmdResult {
    let age = match a.older_than {
        // parse_duration caps durations at ten years, so this cannot overflow.
        Some(d) => chrono::Duration::from_std(d)
            .map_err(|_| Failure::input("--older-than is too long; use at most 3650d"))?,
        None => chrono::Duration::days(i64::from(g.config.storage.retention_days)),
    };
    if !a.dry_run {
        confirm::preflight("cleanup", a.yes)?;
    }
    let cutoff = Utc::now() - age;
    let store = g.existing_store().await?;
    let planned = store.purge(cutoff, a.batch_size, true).await?;
    if !a.dry_run && planned.counts.executions > 0 {
        let c = &planned.counts;
        confirm::ask(
            &format!(
                "cleanup deletes {} executions finished before {} ({} task runs, {} attempts, {} outputs, {} log lines) from {}",
                c.executions,
                crate::output::local(Some(cutoff)),
                c.task_runs,
                c.attempts,
                c.outputs,
                c.logs,
                g.config.storage.display_target()
            ),
            a.yes,
        )?;
    }
    let counts = if a.dry_run || planned.counts.executions == 0 {
        planned.counts
    } else {
        let bar = !g.structured() && std::io::stderr().is_terminal();
        purge_all(
            store.as_ref(),
            cutoff,
            a.batch_size,
            planned.counts.executions,
            bar,
        )
        .await?
    };
    if g.structured() {
        let doc = json!({
            "executions": counts.executions,
            "taskRuns": counts.task_runs,
            "attempts": counts.attempts,
            "outputs": counts.outputs,
            "logs": counts.logs,
            "dryRun": a.dry_run,
        });
        crate::output::doc(g, &doc, "executions");
    } else {
        let verb = if a.dry_run { "would delete" } else { "deleted" };
        outln!(
            "{verb} {} executions finished before {} ({} task runs, {} attempts, {} outputs, {} log lines)",
            counts.executions,
            crate::output::local(Some(cutoff)),
            counts.task_runs,
            counts.attempts,
            counts.outputs,
            counts.logs
        );
    }
    Ok(())
}
