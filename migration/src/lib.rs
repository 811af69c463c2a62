//! Schema migrations of the flowstate state store.
//!
//! [`Migrator`] lists every migration in the order it runs. Each lives in its own
//! file named `mYYYYMMDD_HHMMSS_what.rs` and has a `down` that undoes its `up`
//! exactly. Migrations are frozen history: they never import the entity crate
//! (entities describe the schema as it is today; a migration describes one step).
//!
//! Version tracking is SeaORM's `seaql_migrations` table. [`status`] reads it
//! without writing anything and also reports versions that this build does not
//! know, so a caller can refuse a database written by a newer release.

use chrono::{DateTime, Utc};
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DatabaseExecutor, EntityTrait};
use sea_orm_migration::seaql_migrations;
pub use sea_orm_migration::{DbErr, MigratorTrait};

mod m20261125_000001_initial_schema;
mod m20261129_000001_list_and_claim_indexes;
mod m20261129_120000_exact_names;
mod m20261129_130000_workflow_versions;
mod m20261129_140000_recovery_indexes;
mod m20261129_220000_reason_index;
mod m20261129_230000_execution_retries;

/// Every migration of the schema, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_initial_schema::Migration),
            Box::new(m20261129_000001_list_and_claim_indexes::Migration),
            Box::new(m20261129_120000_exact_names::Migration),
            Box::new(m20261129_130000_workflow_versions::Migration),
            Box::new(m20261129_140000_recovery_indexes::Migration),
            Box::new(m20261129_220000_reason_index::Migration),
            Box::new(m20261129_230000_execution_retries::Migration),
        ]
    }
}

/// A migration recorded as applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    /// The migration's name, e.g. `m20261125_000001_initial_schema`.
    pub version: String,
    /// When it was applied (second precision, as SeaORM records it).
    pub applied_at: DateTime<Utc>,
}

/// What a database holds compared with the migrations this build knows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MigrationStatus {
    /// Applied migrations this build knows, oldest first.
    pub applied: Vec<AppliedMigration>,
    /// Migrations this build knows that the database lacks, oldest first.
    pub pending: Vec<String>,
    /// Migrations the database records that this build does not know: a newer
    /// release wrote it. Such a database must not be written by this build.
    pub unknown: Vec<String>,
}

impl MigrationStatus {
    /// True when every known migration is applied and none is unknown.
    pub fn is_current(&self) -> bool {
        self.pending.is_empty() && self.unknown.is_empty()
    }
}

/// The names of every migration this build knows, oldest first.
pub fn known_versions() -> Vec<String> {
    Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect()
}

/// Reads the migration table without creating or changing anything.
///
/// A database without the table has every known migration pending. `db` is a
/// connection or a transaction (`&DatabaseConnection`, `&DatabaseTransaction`).
pub async fn status<'c, C>(db: C) -> Result<MigrationStatus, DbErr>
where
    C: Into<DatabaseExecutor<'c>> + Copy,
{
    let table = Migrator::migration_table_name().to_string();
    let recorded = if SchemaManager::new(db.into()).has_table(&table).await? {
        seaql_migrations::Entity::find().all(&db.into()).await?
    } else {
        Vec::new()
    };
    let known = known_versions();
    let mut out = MigrationStatus::default();
    for version in &known {
        match recorded.iter().find(|r| &r.version == version) {
            Some(r) => out.applied.push(AppliedMigration {
                version: version.clone(),
                applied_at: DateTime::from_timestamp(r.applied_at, 0).unwrap_or_default(),
            }),
            None => out.pending.push(version.clone()),
        }
    }
    let mut unknown: Vec<String> = recorded
        .into_iter()
        .map(|r| r.version)
        .filter(|v| !known.contains(v))
        .collect();
    unknown.sort();
    out.unknown = unknown;
    Ok(out)
}
