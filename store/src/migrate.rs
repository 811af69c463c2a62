//! Schema versions: the checks made when a store opens, and the operations
//! behind `flowstate-migrate` (and later `flowstate migrate`).

use crate::error::{Result, StoreError};
pub use flowstate_migration::{AppliedMigration, MigrationStatus};
use flowstate_migration::{Migrator, MigratorTrait};
use sea_orm::DatabaseConnection;

/// Applied, pending and unknown migrations of a database. Writes nothing.
pub async fn status(db: &DatabaseConnection) -> Result<MigrationStatus> {
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
    tracing::info!(pending = ?status.pending, "applying pending migrations");
    Migrator::up(db, None).await?;
    Ok(())
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
    Migrator::up(db, steps).await?;
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

/// Drops every table, then applies every migration: all data is lost.
pub async fn fresh(db: &DatabaseConnection) -> Result<MigrationStatus> {
    Migrator::fresh(db).await?;
    status(db).await
}
