//! Schema versions: the checks made when a store opens, and the operations
//! behind `flowstate migrate` and `flowstate-migrate` (whose command line and
//! printing live in the CLI crate).

use crate::backend::{self, Backend};
use crate::connect::Access;
use crate::error::{Result, StoreError};
use crate::sea::write;
pub use flowstate_migration::{known_versions, AppliedMigration, MigrationStatus};
use flowstate_migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, Statement};

/// Applied, pending and unknown migrations of a database, read through a
/// connection or a transaction. Writes nothing.
pub async fn status<'c, C>(db: C) -> Result<MigrationStatus>
where
    C: Into<sea_orm::DatabaseExecutor<'c>> + Copy,
{
    Ok(flowstate_migration::status(db).await?)
}

/// Whether the database records exactly this build's migrations, asked with
/// one query: the reader's check ([`Access::Read`]), where opening is most of
/// a command's time. `false` for anything else, a missing migration table
/// included; [`ensure_current`] then says what differs.
pub(crate) async fn is_current(db: &DatabaseConnection) -> bool {
    let sql = format!("SELECT version FROM {}", Migrator::migration_table_name());
    let Ok(rows) = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
    else {
        return false;
    };
    let mut recorded: Vec<String> = rows
        .iter()
        .filter_map(|r| r.try_get_by_index(0).ok())
        .collect();
    recorded.sort();
    let mut known = known_versions();
    known.sort();
    recorded == known
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
    if status.applied.is_empty() && access != Access::Create {
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
    write::transaction(db, backend, &write::Gate::default(), move |tx| {
        Box::pin(migrate_locked(tx, backend))
    })
    .await
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
