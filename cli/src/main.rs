//! `flowstate`: run workflows and look into their state.
//!
//! Exit codes, the same rule for every command:
//! - 0: success.
//! - 1: something named does not exist (an execution, a workflow, a task, a
//!   file, the database itself), or the work failed at run time (database
//!   unreachable, an execution that FAILED or was CANCELLED, a prompt that
//!   was not confirmed).
//! - 2: the command line, a configuration value or a file's content is
//!   invalid. Nothing was opened or written.
//!
//! Errors are one line naming the bad value (cut to 200 characters, control
//! characters escaped, passwords redacted). Writing to a closed pipe ends a
//! command quietly, as it does for other Unix tools.
//!
//! Layout: `args` parses what people type, `output` prints (JSON shapes and
//! tables), `logging` sets up the log writer (which redacts), and one module
//! per command group does the work through the engine and the store. Every
//! argument and the configuration are checked before the store is opened;
//! only `run`, `serve`, `submit`, `workflow register` and `migrate up|fresh`
//! may create a database. `serve` and `console` open their HTTP listener
//! (`flowstate-server`) before the database.

/// `println!` that never panics: a failed write to stdout ends the command
/// (see [`logging::write_out`]).
macro_rules! outln {
    () => { $crate::logging::write_out(format_args!(""), true) };
    ($($arg:tt)*) => { $crate::logging::write_out(format_args!($($arg)*), true) };
}

/// `eprintln!` that never panics: a failed write to stderr is ignored, as
/// there is nowhere left to report it.
macro_rules! errln {
    () => { $crate::logging::write_err(format_args!(""), true) };
    ($($arg:tt)*) => { $crate::logging::write_err(format_args!($($arg)*), true) };
}

/// `eprint!` that never panics, for progress lines.
macro_rules! err {
    ($($arg:tt)*) => { $crate::logging::write_err(format_args!($($arg)*), false) };
}

mod args {
    //! What people type: parsed in `flowstate-server`, shared with the API.
    pub use flowstate_server::params::*;
}
mod executions;
mod help;
mod logging;
mod output;
mod run;
mod serve;
mod wait;
mod workflows;

use clap::{FromArgMatches, Parser, Subcommand};
use flowstate_cli::migrate::MigrateCommand;
use flowstate_engine::{Config, EngineError};
use flowstate_store::{StateStore, StoreError};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// The environment variable naming the configuration file.
const CONFIG_ENV: &str = "FLOWSTATE_CONFIG";

/// Run workflows (DAGs of shell tasks) and inspect their executions.
#[derive(Parser)]
#[command(name = "flowstate", version, propagate_version = true)]
struct Cli {
    /// Configuration file (default: $FLOWSTATE_CONFIG when set and not empty,
    /// else ./flowstate.yaml if present, else SQLite at ./data/flowstate.db).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Print JSON instead of tables (the same as `-o json`).
    #[arg(long, global = true)]
    json: bool,

    /// Output: table, json, yaml, or ids (one id per line; workflow names).
    #[arg(
        short = 'o',
        long = "output",
        global = true,
        value_enum,
        value_name = "FORMAT"
    )]
    output: Option<output::Format>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Register a workflow file and run one execution of it here, to the end.
    Run(run::RunArgs),
    /// Run the engine: recover, then claim and run due executions until stopped.
    Serve(serve::ServeArgs),
    /// Serve the HTTP API and the web console on an existing database,
    /// without running work (`serve` also serves them unless
    /// `server.enabled: false`).
    Console(serve::ServeArgs),
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
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page, or with --out write one per command into a folder.
    Man {
        /// The folder for flowstate.1, flowstate-execution-list.1, ...
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

impl Cli {
    /// The output format: `-o`, or `--json`; a stream of lines (`run`,
    /// `execution logs`, `migrate`) is text or JSON only.
    fn format(&self) -> CmdResult<output::Format> {
        use output::Format;
        let format = match (self.json, self.output) {
            (true, Some(f)) if f != Format::Json => {
                return Err(Failure::input(
                    "--json and -o ask for different outputs; give one of them",
                ))
            }
            (true, _) => Format::Json,
            (false, f) => f.unwrap_or_default(),
        };
        let streams = matches!(
            self.command,
            Command::Run(_)
                | Command::Migrate(_)
                | Command::Execution(executions::ExecutionCommand::Logs { .. })
                | Command::Execution(executions::ExecutionCommand::Retry { queue: false, .. })
        );
        if streams && matches!(format, Format::Yaml | Format::Ids) {
            return Err(Failure::input(
                "-o yaml and -o ids do not apply to this command; use -o table or -o json",
            ));
        }
        Ok(format)
    }
}

impl Command {
    /// Commands that only read the store: they run their few queries one
    /// after another, on one thread.
    fn only_reads(&self) -> bool {
        use executions::ExecutionCommand as E;
        use workflows::WorkflowCommand as W;
        matches!(
            self,
            Command::Execution(E::List(_) | E::Inspect { .. } | E::Logs { .. } | E::Wait { .. })
                | Command::Workflow(W::List { .. } | W::Show { .. } | W::History { .. })
        )
    }

    /// Commands that must finish what they started even if stdout goes away:
    /// a closed pipe must not kill them half-way through an execution.
    fn outlives_its_reader(&self) -> bool {
        matches!(self, Command::Run(_) | Command::Serve(_))
    }
}

/// The message of a full database, completed with where it is by
/// [`Failure::located`].
const STORAGE_FULL: &str = "database or disk is full";

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

    /// Not found, or a runtime failure: exit 1.
    pub fn runtime(message: impl Into<String>) -> Self {
        Failure {
            code: 1,
            message: message.into(),
        }
    }

    /// Says which database is full, for a failure that is a full database.
    fn located(mut self, storage: &flowstate_store::StorageConfig) -> Self {
        if self.message == STORAGE_FULL {
            self.message = format!(
                "{STORAGE_FULL} at {}; free space (for example with flowstate cleanup) or give the database more room{}",
                storage.display_target(),
                if storage.kind == flowstate_store::StorageType::Sqlite {
                    " (storage.sqlite.maxSizeMb)"
                } else {
                    ""
                }
            );
        }
        self
    }

    /// A wait whose timeout passed first: exit 124, as `timeout(1)` does.
    pub fn timed_out(message: impl Into<String>) -> Self {
        Failure {
            code: 124,
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
            // Where it is full is added by `main`, which has the configuration.
            StoreError::StorageFull(_) => Failure::runtime(STORAGE_FULL),
            _ => Failure::runtime(e.to_string()),
        }
    }
}

impl From<flowstate_server::ServerError> for Failure {
    fn from(e: flowstate_server::ServerError) -> Self {
        match e.status().0.as_u16() {
            400 => Failure::input(e.message()),
            _ => Failure::runtime(e.message()),
        }
    }
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Store(s) => s.into(),
            e if e.is_input_error() => Failure::input(e.to_string()),
            e => Failure::runtime(e.to_string()),
        }
    }
}

/// Shorthand for command results.
pub type CmdResult<T = ()> = Result<T, Failure>;

/// Global settings every command gets, checked before anything is opened.
pub struct Globals {
    /// The validated configuration.
    pub config: Config,
    /// `-o` (`--json` is `-o json`).
    pub format: output::Format,
}

impl Globals {
    /// Whether a command prints JSON (`--json`, `-o json`).
    pub fn json(&self) -> bool {
        self.format == output::Format::Json
    }

    /// Whether a command prints a document (JSON, YAML or ids), not tables.
    pub fn structured(&self) -> bool {
        self.format != output::Format::Table
    }

    /// Opens the store, creating the database when missing: for the commands
    /// that bring work in (`run`, `serve`, `submit`, `workflow register`).
    pub async fn store(&self) -> CmdResult<Arc<dyn StateStore>> {
        Ok(flowstate_store::open(&self.config.storage).await?)
    }

    /// Opens a store that must exist for a command that only reads: one
    /// connection, one query to check the schema.
    pub async fn reader(&self) -> CmdResult<Arc<dyn StateStore>> {
        Ok(flowstate_store::open_reader(&self.config.storage).await?)
    }

    /// Opens a store that must exist: for every command that cancels or
    /// deletes. A missing database is "no flowstate database at PATH".
    pub async fn existing_store(&self) -> CmdResult<Arc<dyn StateStore>> {
        Ok(flowstate_store::open_existing(&self.config.storage).await?)
    }
}

/// The configuration file in effect: `--config`, else a non-empty
/// `$FLOWSTATE_CONFIG`, else `./flowstate.yaml` when it exists.
fn config_path(flag: Option<PathBuf>) -> Option<PathBuf> {
    flag.or_else(|| {
        std::env::var_os(CONFIG_ENV)
            .filter(|v| !v.to_string_lossy().trim().is_empty())
            .map(PathBuf::from)
    })
    .or_else(|| {
        let local = Path::new("flowstate.yaml");
        local.is_file().then(|| local.to_owned())
    })
}

/// Reads and checks the configuration. A file that does not exist is "not
/// found" (exit 1), like every other missing thing; a bad one exits 2.
fn load_config(path: Option<&Path>) -> CmdResult<Config> {
    if let Some(p) = path {
        if !p.exists() {
            return Err(Failure::runtime(format!(
                "configuration file '{}' not found",
                flowstate_store::text::shown(&p.display().to_string())
            )));
        }
    }
    Ok(Config::load(path)?)
}

fn main() -> ExitCode {
    let parsed = help::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version land here too, with exit code 0.
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    if !cli.command.outlives_its_reader() {
        logging::die_quietly_on_closed_pipe();
    }
    // Generated from the definitions alone: no configuration is read.
    let standalone = match &cli.command {
        Command::Completions { shell } => Some(help::completions(*shell)),
        Command::Man { out } => Some(help::man(out.clone())),
        _ => None,
    };
    if let Some(result) = standalone {
        return exit_with(result);
    }
    // Checked with the arguments, before the configuration is read.
    let output = match cli.format() {
        Ok(f) => f,
        Err(f) => return exit_with(Err(f)),
    };
    let result = load_config(config_path(cli.config).as_deref()).and_then(|config| {
        let format = match &cli.command {
            Command::Serve(a) | Command::Console(a) => Some(a.log_format),
            _ => None,
        };
        logging::init(format)?;
        let globals = Globals {
            config,
            format: output,
        };
        // A reading command on one thread: starting the worker threads (and
        // reading the cgroup files that size them) is a measurable part of a
        // command that takes under 10 ms (issue 13).
        let mut builder = if cli.command.only_reads() {
            tokio::runtime::Builder::new_current_thread()
        } else {
            tokio::runtime::Builder::new_multi_thread()
        };
        let runtime = builder
            .enable_all()
            .build()
            .map_err(|e| Failure::runtime(format!("cannot start the runtime: {e}")))?;
        let result = runtime
            .block_on(dispatch(cli.command, &globals))
            .map_err(|f| f.located(&globals.config.storage));
        // Child processes and pools are gone with the runtime.
        runtime.shutdown_timeout(std::time::Duration::from_secs(1));
        result
    });
    exit_with(result)
}

/// Prints a failure's message and turns the result into the exit code.
fn exit_with(result: CmdResult) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                errln!("error: {}", logging::printable(&f.message));
            }
            ExitCode::from(f.code)
        }
    }
}

async fn dispatch(command: Command, g: &Globals) -> CmdResult {
    match command {
        Command::Run(a) => run::run(g, a).await,
        Command::Serve(_) => serve::serve(g).await,
        Command::Console(_) => serve::console(g).await,
        Command::Submit(a) => workflows::submit(g, a).await,
        Command::Workflow(c) => workflows::command(g, c).await,
        Command::Execution(c) => executions::command(g, c).await,
        Command::Cleanup(a) => serve::cleanup(g, a).await,
        Command::Completions { shell } => help::completions(shell),
        Command::Man { out } => help::man(out),
        Command::Migrate(c) => {
            let c = match c {
                MigrateCommand::Status { json } => MigrateCommand::Status {
                    json: json || g.json(),
                },
                other => other,
            };
            Ok(c.run(&g.config.storage).await?)
        }
    }
}
