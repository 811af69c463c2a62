//! Schema versions: the checks made when a store opens, and the operations
//! behind `flowstate-migrate` (and later `flowstate migrate`).

use crate::backend::{self, Backend};
use crate::connect::Access;
use crate::error::{Result, StoreError};
use crate::sea::write;
pub use flowstate_migration::{known_versions, AppliedMigration, MigrationStatus};
use flowstate_migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction};

/// Applied, pending and unknown migrations of a database, read through a
/// connection or a transaction. Writes nothing.
pub async fn status<'c, C>(db: C) -> Result<MigrationStatus>
where
    C: Into<sea_orm::DatabaseExecutor<'c>> + Copy,
{
    Ok(flowstate_migration::status(db).await?)
}

/// Makes sure the schema matches this build before anything else touches it.
///
/// A database carrying migrations this build does not know is refused without
/// writing anything. With [`Access::Existing`] a database without any
/// flowstate migration is [`StoreError::NoDatabase`] naming `target`. Pending migrations are
/// applied when `auto_migrate` is set; otherwise opening fails naming them and
/// the command that applies them. Last, the tables and columns are checked.
pub async fn ensure_current(
    db: &DatabaseConnection,
    auto_migrate: bool,
    access: Access,
    target: &str,
) -> Result<()> {
    ensure_migrated(db, auto_migrate, access, target).await?;
    crate::schema::verify(db).await
}

async fn ensure_migrated(
    db: &DatabaseConnection,
    auto_migrate: bool,
    access: Access,
    target: &str,
) -> Result<()> {
    let status = status(db).await?;
    refuse_unknown(&status)?;
    if status.pending.is_empty() {
        return Ok(());
    }
    if status.applied.is_empty() && access == Access::Existing {
        return Err(StoreError::NoDatabase {
            target: target.to_owned(),
            hint: "it has no flowstate schema; create it with `flowstate migrate up`, or check --config"
                .into(),
        });
    }
    if !auto_migrate {
        return Err(StoreError::SchemaMismatch(format!(
            "the database lacks migrations {}; run `flowstate-migrate up` with the same configuration, or set storage.autoMigrate: true",
            status.pending.join(", ")
        )));
    }
    apply_pending(db).await
}

/// Applies every pending migration under the backend's migration lock, in
/// one write transaction through the store's runner: committed when every
/// migration applied, rolled back on any error.
///
/// The runner also retries the whole unit on transient failures (say a
/// deadlock on PostgreSQL's advisory lock), and that is safe here: each try
/// takes the lock and reads the status again under it, so it applies only
/// what is still pending. On SQLite and PostgreSQL the DDL is transactional,
/// so a failed try leaves nothing behind. MySQL commits each DDL statement
/// implicitly: a try that failed halfway through a migration leaves it half
/// applied, and the retry then stops with that migration's (not transient)
/// error, as a run without retries would have.
async fn apply_pending(db: &DatabaseConnection) -> Result<()> {
    let backend = backend::for_backend(db.get_database_backend());
    write::transaction(db, backend, move |tx| Box::pin(migrate_locked(tx, backend))).await
}

/// The unit of [`apply_pending`]: lock, re-read, migrate, unlock. The unlock
/// runs whatever happened, before the runner commits or rolls back: MySQL's
/// lock belongs to the session, which goes back to the pool.
async fn migrate_locked(tx: &DatabaseTransaction, backend: &dyn Backend) -> Result<()> {
    if let Some(sql) = backend.migration_lock() {
        tx.execute_unprepared(sql).await?;
    }
    let result = async {
        let status = status(tx).await?;
        refuse_unknown(&status)?;
        if !status.pending.is_empty() {
            tracing::info!(pending = ?status.pending, "applying pending migrations");
            Migrator::up(tx, None).await?;
        }
        Ok::<_, StoreError>(())
    }
    .await;
    if let Some(sql) = backend.migration_unlock() {
        let _ = tx.execute_unprepared(sql).await;
    }
    result
}

fn refuse_unknown(status: &MigrationStatus) -> Result<()> {
    if status.unknown.is_empty() {
        return Ok(());
    }
    Err(StoreError::SchemaMismatch(format!(
        "the database carries migrations this build does not know ({}): a newer flowstate wrote it; upgrade flowstate instead of using this version",
        status.unknown.join(", ")
    )))
}

/// Applies `steps` pending migrations (all when `None`).
pub async fn up(db: &DatabaseConnection, steps: Option<u32>) -> Result<MigrationStatus> {
    refuse_unknown(&status(db).await?)?;
    match steps {
        None => apply_pending(db).await?,
        Some(n) => Migrator::up(db, Some(n)).await?,
    }
    status(db).await
}

/// Rolls back the last `steps` applied migrations.
pub async fn down(db: &DatabaseConnection, steps: u32) -> Result<MigrationStatus> {
    refuse_unknown(&status(db).await?)?;
    Migrator::down(db, Some(steps)).await?;
    status(db).await
}

/// Rolls back every applied migration.
pub async fn reset(db: &DatabaseConnection) -> Result<MigrationStatus> {
    refuse_unknown(&status(db).await?)?;
    Migrator::reset(db).await?;
    status(db).await
}

/// Rolls every migration back, then applies every one again: all data is
/// lost. Each `down` drops its own tables children first, which keeps SQLite's
/// foreign keys satisfied where dropping tables in any order would not.
pub async fn fresh(db: &DatabaseConnection) -> Result<MigrationStatus> {
    refuse_unknown(&status(db).await?)?;
    Migrator::reset(db).await?;
    apply_pending(db).await?;
    status(db).await
}

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
    pub async fn run(self, config: &crate::StorageConfig) -> Result<()> {
        if let Some((what, yes)) = self.destructive() {
            crate::confirm::preflight(what, yes)?;
        }
        let db = crate::connect::connect_within(
            config,
            self.access(),
            crate::connect::DEFAULT_CONNECT_DEADLINE,
        )
        .await?;
        let result = self.run_on(&db, config).await;
        let _ = db.close().await;
        result
    }

    async fn run_on(self, db: &DatabaseConnection, config: &crate::StorageConfig) -> Result<()> {
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
