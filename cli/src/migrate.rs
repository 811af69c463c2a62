//! `migrate up|down|status|fresh|reset`: the command line and the printing of
//! the schema operations in `flowstate_store::migrate`, shared by `flowstate
//! migrate` and `flowstate-migrate`.

use flowstate_store::connect::Access;
use flowstate_store::connect::DatabaseConnection;
use flowstate_store::migrate::{down, fresh, reset, status, up, MigrationStatus};
use flowstate_store::{Result, StorageConfig, StoreError};

/// The migration commands, shared by `flowstate-migrate` and `flowstate migrate`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum MigrateCommand {
    /// Apply pending migrations (all, or the next N).
    Up {
        /// How many to apply (1 to 1000).
        #[arg(short = 'n', long = "num", value_parser = clap::value_parser!(u32).range(1..=1000))]
        n: Option<u32>,
    },
    /// Roll back applied migrations (the last one, or the last N). Deletes
    /// what they created; asks first.
    Down {
        /// How many to roll back (1 to 1000).
        #[arg(short = 'n', long = "num", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
        n: u32,
        /// Do not ask; needed when there is no terminal to ask on.
        #[arg(long)]
        yes: bool,
    },
    /// Show applied and pending migrations.
    Status {
        /// Print JSON: {"applied": [{"version", "appliedAt"}], "pending": [...], "unknown": [...]}.
        #[arg(long)]
        json: bool,
    },
    /// Roll back every migration and apply them all again. Deletes all data; asks first.
    Fresh {
        /// Do not ask; needed when there is no terminal to ask on.
        #[arg(long)]
        yes: bool,
    },
    /// Roll back every applied migration. Deletes all data; asks first.
    Reset {
        /// Do not ask; needed when there is no terminal to ask on.
        #[arg(long)]
        yes: bool,
    },
}

impl MigrateCommand {
    /// Whether the command may create the database (only `up` and `fresh` do).
    fn access(&self) -> Access {
        match self {
            MigrateCommand::Up { .. } | MigrateCommand::Fresh { .. } => Access::Create,
            _ => Access::Existing,
        }
    }

    /// The `--yes` of a destructive command; `None` for the others.
    fn destructive(&self) -> Option<(&'static str, bool)> {
        match self {
            MigrateCommand::Down { yes, .. } => Some(("migrate down", *yes)),
            MigrateCommand::Fresh { yes } => Some(("migrate fresh", *yes)),
            MigrateCommand::Reset { yes } => Some(("migrate reset", *yes)),
            _ => None,
        }
    }

    /// Connects as configured (without the schema check an open store makes)
    /// and runs the command, printing what it did. Destructive commands show
    /// what they will roll back and ask first (see [`crate::confirm`]).
    pub async fn run(self, config: &StorageConfig) -> Result<()> {
        if let Some((what, yes)) = self.destructive() {
            crate::confirm::preflight(what, yes)?;
        }
        let db = flowstate_store::connect::connect_within(
            config,
            self.access(),
            flowstate_store::connect::DEFAULT_CONNECT_DEADLINE,
        )
        .await?;
        let result = self.run_on(&db, config).await;
        let _ = db.close().await;
        result
    }

    async fn run_on(self, db: &DatabaseConnection, config: &StorageConfig) -> Result<()> {
        let target = config.display_target();
        let before = status(db).await?;
        let rolls_back = self.destructive().is_some() && self.access() == Access::Existing;
        if rolls_back && before.applied.is_empty() {
            // Rolling back nothing would still create the migration table.
            return Err(StoreError::NoDatabase {
                target,
                hint: "it has no flowstate migrations to roll back".into(),
            });
        }
        if let Some((what, yes)) = self.destructive() {
            let steps = match self {
                MigrateCommand::Down { n, .. } => n as usize,
                _ => before.applied.len(),
            };
            let doomed: Vec<&str> = before
                .applied
                .iter()
                .rev()
                .take(steps)
                .map(|a| a.version.as_str())
                .collect();
            let plan = format!(
                "{what} on {target} rolls back {} migration(s), dropping their tables and the data in them:\n  {}",
                doomed.len(),
                doomed.join("\n  ")
            );
            crate::confirm::ask(&plan, yes)?;
        }
        let after = match self {
            MigrateCommand::Status { json } => {
                if json {
                    println!("{}", status_json(&before));
                } else {
                    println!("database: {target}");
                    print_table(&before);
                }
                return Ok(());
            }
            MigrateCommand::Up { n } => {
                let after = up(db, n).await?;
                let applied = after.applied.len().saturating_sub(before.applied.len());
                println!("applied {applied} migration(s) to {target}");
                after
            }
            MigrateCommand::Down { n, .. } => {
                let after = down(db, n).await?;
                let undone = before.applied.len().saturating_sub(after.applied.len());
                println!("rolled back {undone} migration(s) on {target}");
                after
            }
            MigrateCommand::Fresh { .. } => {
                let after = fresh(db).await?;
                println!("rolled back and re-applied every migration on {target}");
                after
            }
            MigrateCommand::Reset { .. } => {
                let after = reset(db).await?;
                println!("rolled back every migration on {target}");
                after
            }
        };
        print_table(&after);
        Ok(())
    }
}

/// The `status --json` document.
pub fn status_json(status: &MigrationStatus) -> serde_json::Value {
    let applied: Vec<_> = status
        .applied
        .iter()
        .map(|a| {
            serde_json::json!({
                "version": a.version,
                "appliedAt": a.applied_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            })
        })
        .collect();
    serde_json::json!({
        "applied": applied,
        "pending": status.pending,
        "unknown": status.unknown,
    })
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
