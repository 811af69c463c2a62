//! `flowstate`: run workflows and look into their state.
//!
//! Exit codes: 0 on success; 1 on a runtime failure (not found, database
//! unreachable, an execution that FAILED or was CANCELLED); 2 on bad usage,
//! configuration or input. Errors are one line naming the bad value.
//!
//! Layout: `args` parses what people type, `output` prints (JSON shapes and
//! tables), and one module per command group does the work through the
//! engine and the store.

mod args;
mod executions;
mod output;
mod run;
mod serve;
mod workflows;

use clap::{Parser, Subcommand};
use flowstate_engine::{Config, EngineError};
use flowstate_store::migrate::MigrateCommand;
use flowstate_store::{StateStore, StoreError};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Run workflows (DAGs of shell tasks) and inspect their executions.
#[derive(Parser)]
#[command(name = "flowstate", version, propagate_version = true)]
struct Cli {
    /// Configuration file (default: $FLOWSTATE_CONFIG, else ./flowstate.yaml
    /// if present, else SQLite at ./data/flowstate.db).
    #[arg(long, global = true, env = "FLOWSTATE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Register a workflow file and run one execution of it here, to the end.
    Run(run::RunArgs),
    /// Run the engine: recover, then claim and run due executions until stopped.
    Serve,
    /// Persist a PENDING execution for `flowstate serve` to run; prints its id.
    Submit(workflows::SubmitArgs),
    /// List, show, register and delete workflows.
    #[command(subcommand)]
    Workflow(workflows::WorkflowCommand),
    /// List, inspect, read the logs of and cancel executions.
    #[command(subcommand)]
    Execution(executions::ExecutionCommand),
    /// Delete finished executions older than the retention period, now.
    Cleanup(serve::CleanupArgs),
    /// Apply, roll back and inspect schema migrations.
    #[command(subcommand)]
    Migrate(MigrateCommand),
}

/// A failure with its exit code.
pub struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// Bad usage, configuration or input: exit 2.
    pub fn input(message: impl Into<String>) -> Self {
        Failure {
            code: 2,
            message: message.into(),
        }
    }

    /// A runtime failure: exit 1.
    pub fn runtime(message: impl Into<String>) -> Self {
        Failure {
            code: 1,
            message: message.into(),
        }
    }

    /// Exit 1 without a message (the command already said why).
    pub fn quiet() -> Self {
        Failure {
            code: 1,
            message: String::new(),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Config(_) | StoreError::InvalidInput(_) => Failure::input(e.to_string()),
            _ => Failure::runtime(e.to_string()),
        }
    }
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        if e.is_input_error() {
            Failure::input(e.to_string())
        } else {
            Failure::runtime(e.to_string())
        }
    }
}

/// Shorthand for command results.
pub type CmdResult<T = ()> = Result<T, Failure>;

/// Global settings every command gets.
pub struct Globals {
    /// The configuration file in effect, if any.
    pub config_path: Option<PathBuf>,
    /// `--json`.
    pub json: bool,
}

impl Globals {
    /// The configuration in effect.
    pub fn config(&self) -> CmdResult<Config> {
        Ok(Config::load(self.config_path.as_deref())?)
    }

    /// Opens the store as configured.
    pub async fn store(&self) -> CmdResult<Arc<dyn StateStore>> {
        let config = self.config()?;
        Ok(flowstate_store::open(&config.storage).await?)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let serving = matches!(cli.command, Command::Serve);
    let filter = std::env::var("RUST_LOG")
        .unwrap_or_else(|_| if serving { "info" } else { "warn" }.to_owned());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let config_path = cli.config.clone().or_else(|| {
        let local = Path::new("flowstate.yaml");
        local.is_file().then(|| local.to_owned())
    });
    let globals = Globals {
        config_path,
        json: cli.json,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(dispatch(cli.command, &globals));
    // Child processes and pools are gone with the runtime.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("error: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

async fn dispatch(command: Command, g: &Globals) -> CmdResult {
    match command {
        Command::Run(a) => run::run(g, a).await,
        Command::Serve => serve::serve(g).await,
        Command::Submit(a) => workflows::submit(g, a).await,
        Command::Workflow(c) => workflows::command(g, c).await,
        Command::Execution(c) => executions::command(g, c).await,
        Command::Cleanup(a) => serve::cleanup(g, a).await,
        Command::Migrate(c) => {
            let config = g.config()?;
            let c = match c {
                MigrateCommand::Status { json } => MigrateCommand::Status {
                    json: json || g.json,
                },
                other => other,
            };
            Ok(c.run(&config.storage).await?)
        }
    }
}
