//! `flowstate-migrate`: apply, roll back and inspect schema migrations.
//!
//! Exit codes, as for `flowstate`: 0 on success; 1 when the database is
//! missing or unreachable, the operation fails, or a prompt is declined; 2 on
//! bad usage or configuration (nothing was opened). `flowstate migrate` runs
//! the same code. Messages never show a password.

use clap::Parser;
use flowstate_cli::migrate::MigrateCommand;
use flowstate_store::{StorageConfig, StoreError};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// The environment variable with the database URL, below `--database-url`.
const URL_ENV: &str = "DATABASE_URL";

/// Apply, roll back and inspect the schema migrations of a flowstate database.
#[derive(Parser)]
#[command(name = "flowstate-migrate", version)]
struct Cli {
    /// Configuration file whose `storage:` section names the database.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Database URL (sqlite://PATH, postgres://..., mysql://...); wins over
    /// --config. Default: $DATABASE_URL when set and not empty.
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,

    #[command(subcommand)]
    command: MigrateCommand,
}

fn config(cli: &Cli) -> Result<StorageConfig, StoreError> {
    if let Some(path) = cli.config.as_deref().filter(|p| !p.exists()) {
        return Err(StoreError::NotFound {
            entity: "configuration file",
            id: flowstate_store::text::shown(&path.display().to_string()),
        });
    }
    let mut config = StorageConfig::load(cli.config.as_deref())?;
    let url = cli
        .database_url
        .clone()
        .or_else(|| std::env::var(URL_ENV).ok())
        .filter(|u| !u.trim().is_empty());
    if let Some(url) = url {
        config = config.with_url(&url)?;
    }
    Ok(config)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // A closed stdout (`flowstate-migrate status | head -1`) ends the
    // process quietly, as it ends other Unix tools, instead of a panic.
    // SAFETY: restoring a signal's default disposition has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    let result = match config(&cli) {
        Ok(config) => cli.command.run(&config).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed stderr must not turn the failure into a panic.
            let _ = writeln!(
                std::io::stderr(),
                "error: {}",
                flowstate_store::text::escape_controls(&flowstate_store::redact::redact(
                    &e.to_string()
                ))
            );
            match e {
                StoreError::Config(_) | StoreError::InvalidInput(_) => ExitCode::from(2),
                _ => ExitCode::from(1),
            }
        }
    }
}
