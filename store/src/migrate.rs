//! Schema versions: the checks made when a store opens, and the operations
//! behind `flowstate-migrate` (and later `flowstate migrate`).

use crate::backend;
use crate::error::{Result, StoreError};
use crate::sea::conn::begin_write;
pub use flowstate_migration::{known_versions, AppliedMigration, MigrationStatus};
use flowstate_migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection};

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
/// writing anything. Pending migrations are applied when `auto_migrate` is set;
/// otherwise opening fails naming them and the command that applies them.
pub async fn ensure_current(db: &DatabaseConnection, auto_migrate: bool) -> Result<()> {
    let status = status(db).await?;
    refuse_unknown(&status)?;
    if status.pending.is_empty() {
        return Ok(());
    }
    if !auto_migrate {
        return Err(StoreError::SchemaMismatch(format!(
            "the database lacks migrations {}; run `flowstate-migrate up` with the same configuration, or set storage.autoMigrate: true",
            status.pending.join(", ")
        )));
    }
    apply_pending(db).await
}

/// Applies every pending migration under the backend's migration lock. The
/// status is read again once the lock is held: another process may have
/// applied them meanwhile.
async fn apply_pending(db: &DatabaseConnection) -> Result<()> {
    let backend = backend::for_backend(db.get_database_backend());
    let tx = begin_write(db, backend).await?;
    if let Some(sql) = backend.migration_lock() {
        tx.execute_unprepared(sql).await?;
    }
    let result = async {
        let status = status(&tx).await?;
        refuse_unknown(&status)?;
        if !status.pending.is_empty() {
            tracing::info!(pending = ?status.pending, "applying pending migrations");
            Migrator::up(&tx, None).await?;
        }
        Ok::<_, StoreError>(())
    }
    .await;
    if let Some(sql) = backend.migration_unlock() {
        let _ = tx.execute_unprepared(sql).await;
    }
    match result {
        Ok(()) => Ok(tx.commit().await?),
        Err(e) => {
            let _ = tx.rollback().await;
            Err(e)
        }
    }
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
    /// Roll back every migration and apply them all again. Deletes all data.
    Fresh,
    /// Roll back every applied migration. Deletes all data.
    Reset,
}

impl MigrateCommand {
    /// Connects as configured (without the schema check an open store makes)
    /// and runs the command, printing what it did.
    pub async fn run(self, config: &crate::StorageConfig) -> Result<()> {
        let db = crate::connect::connect(config).await?;
        let target = config.display_target();
        let status = match self {
            MigrateCommand::Status { json } => {
                let status = status(&db).await?;
                if json {
                    println!("{}", status_json(&status));
                } else {
                    println!("database: {target}");
                    print_table(&status);
                }
                return Ok(());
            }
            MigrateCommand::Up { n } => {
                let before = status(&db).await?.applied.len();
                let after = up(&db, n).await?;
                println!(
                    "applied {} migration(s) to {target}",
                    after.applied.len().saturating_sub(before)
                );
                after
            }
            MigrateCommand::Down { n } => {
                let before = status(&db).await?.applied.len();
                let after = down(&db, n).await?;
                println!(
                    "rolled back {} migration(s) on {target}",
                    before.saturating_sub(after.applied.len())
                );
                after
            }
            MigrateCommand::Fresh => {
                let after = fresh(&db).await?;
                println!("rolled back and re-applied every migration on {target}");
                after
            }
            MigrateCommand::Reset => {
                let after = reset(&db).await?;
                println!("rolled back every migration on {target}");
                after
            }
        };
        print_table(&status);
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
