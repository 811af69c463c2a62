//! `flowstate-migrate`: apply, roll back and inspect schema migrations.
//!
//! Exit codes: 0 on success, 2 on bad usage or configuration, 1 when the
//! database operation fails. `flowstate migrate` runs the same code.

use clap::Parser;
use flowstate_store::migrate::MigrateCommand;
use flowstate_store::{StorageConfig, StoreError};
use std::path::PathBuf;
use std::process::ExitCode;

/// Apply, roll back and inspect the schema migrations of a flowstate database.
#[derive(Parser)]
#[command(name = "flowstate-migrate", version)]
struct Cli {
    /// Configuration file whose `storage:` section names the database.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Database URL (sqlite://PATH, postgres://..., mysql://...); wins over --config.
    #[arg(long, global = true, env = "DATABASE_URL", value_name = "URL")]
    database_url: Option<String>,

    #[command(subcommand)]
    command: MigrateCommand,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = async {
        let mut config = StorageConfig::load(cli.config.as_deref())?;
        if let Some(url) = cli.database_url.as_deref().filter(|u| !u.trim().is_empty()) {
            config = config.with_url(url)?;
        }
        cli.command.run(&config).await
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                StoreError::Config(_) | StoreError::InvalidInput(_) => ExitCode::from(2),
                _ => ExitCode::from(1),
            }
        }
    }
}
