//! `flowstate-migrate`: apply, roll back and inspect schema migrations.
//!
//! Exit codes: 0 on success, 2 on bad usage or configuration, 1 when the
//! database operation fails.

use chrono::SecondsFormat;
use clap::{Parser, Subcommand};
use flowstate_store::connect;
use flowstate_store::migrate::{self, MigrationStatus};
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
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations (all, or the next N).
    Up {
        /// How many to apply.
        #[arg(short = 'n', long = "num")]
        n: Option<u32>,
    },
    /// Roll back applied migrations (the last one, or the last N).
    Down {
        /// How many to roll back.
        #[arg(short = 'n', long = "num", default_value_t = 1)]
        n: u32,
    },
    /// Show applied and pending migrations.
    Status {
        /// Print JSON: {"applied": [{"version", "appliedAt"}], "pending": [...], "unknown": [...]}.
        #[arg(long)]
        json: bool,
    },
    /// Drop every table and apply every migration again. Deletes all data.
    Fresh,
    /// Roll back every applied migration. Deletes all data.
    Reset,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
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

async fn run(cli: Cli) -> Result<(), StoreError> {
    let mut config = StorageConfig::load(cli.config.as_deref())?;
    if let Some(url) = cli.database_url.as_deref().filter(|u| !u.trim().is_empty()) {
        config = config.with_url(url)?;
    }
    let db = connect::connect(&config).await?;
    let target = config.display_target();
    let status = match cli.command {
        Command::Status { json } => {
            let status = migrate::status(&db).await?;
            if json {
                print_json(&status);
            } else {
                println!("database: {target}");
                print_table(&status);
            }
            return Ok(());
        }
        Command::Up { n } => {
            let before = migrate::status(&db).await?.applied.len();
            let status = migrate::up(&db, n).await?;
            println!(
                "applied {} migration(s) to {target}",
                status.applied.len().saturating_sub(before)
            );
            status
        }
        Command::Down { n } => {
            let before = migrate::status(&db).await?.applied.len();
            let status = migrate::down(&db, n).await?;
            println!(
                "rolled back {} migration(s) on {target}",
                before.saturating_sub(status.applied.len())
            );
            status
        }
        Command::Fresh => {
            let status = migrate::fresh(&db).await?;
            println!("dropped every table of {target} and applied every migration");
            status
        }
        Command::Reset => {
            let status = migrate::reset(&db).await?;
            println!("rolled back every migration on {target}");
            status
        }
    };
    print_table(&status);
    Ok(())
}

fn print_table(status: &MigrationStatus) {
    let width = status
        .applied
        .iter()
        .map(|a| a.version.len())
        .chain(status.pending.iter().map(String::len))
        .chain(status.unknown.iter().map(String::len))
        .max()
        .unwrap_or(7)
        .max(7);
    println!("{:width$}  {:8}  APPLIED AT", "VERSION", "STATE");
    for a in &status.applied {
        println!(
            "{:width$}  {:8}  {}",
            a.version,
            "applied",
            a.applied_at.format("%Y-%m-%d %H:%M:%S UTC")
        );
    }
    for p in &status.pending {
        println!("{p:width$}  {:8}  -", "pending");
    }
    for u in &status.unknown {
        println!(
            "{u:width$}  {:8}  (written by a newer flowstate)",
            "unknown"
        );
    }
}

fn print_json(status: &MigrationStatus) {
    let applied: Vec<_> = status
        .applied
        .iter()
        .map(|a| {
            serde_json::json!({
                "version": a.version,
                "appliedAt": a.applied_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            })
        })
        .collect();
    let doc = serde_json::json!({
        "applied": applied,
        "pending": status.pending,
        "unknown": status.unknown,
    });
    println!("{doc}");
}
