//! Names compare byte for byte on MySQL and MariaDB too.
//!
//! The initial schema gave name columns the database's default collation.
//! On MariaDB that is usually `utf8mb4_general_ci`, where `HELLO` equals
//! `hello` (so registering `HELLO` overwrote `hello`), and even `utf8mb4_bin`
//! is PAD SPACE: `'hello '` equals `'hello'`, so `workflow delete 'hello '
//! --hard` deleted `hello` with its executions. This migration gives those
//! columns a binary NO PAD collation: `utf8mb4_nopad_bin` on MariaDB,
//! `utf8mb4_0900_bin` on MySQL 8. SQLite and PostgreSQL already compare bytes;
//! there it does nothing.
//!
//! `down` gives the columns back the table's default collation, as the
//! initial schema created them. It fails (and changes nothing more) if two
//! rows now differ only in case or trailing spaces: such names could not
//! coexist under the old collation.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

/// Binary NO PAD collation for `workflows.name`, `task_runs.task_key` and `outputs.key`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261129_120000_exact_names"
    }
}

/// (table, column) of every name people type or match on.
const NAME_COLUMNS: &[(&str, &str)] = &[
    ("workflows", "name"),
    ("task_runs", "task_key"),
    ("outputs", "key"),
];

/// The NO PAD binary collation of the server: MariaDB and MySQL 8 name it differently.
async fn no_pad_collation(manager: &SchemaManager<'_>) -> Result<&'static str, DbErr> {
    let db = manager.get_connection();
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::MySql,
            "SELECT VERSION()".to_owned(),
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("SELECT VERSION() returned no row".into()))?;
    let version: String = row.try_get_by_index(0)?;
    Ok(if version.to_ascii_lowercase().contains("mariadb") {
        "utf8mb4_nopad_bin"
    } else {
        "utf8mb4_0900_bin"
    })
}

async fn modify_all(manager: &SchemaManager<'_>, collation: Option<&str>) -> Result<(), DbErr> {
    let charset = collation
        .map(|c| format!(" CHARACTER SET utf8mb4 COLLATE {c}"))
        .unwrap_or_default();
    for (table, column) in NAME_COLUMNS {
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "ALTER TABLE `{table}` MODIFY `{column}` VARCHAR(255){charset} NOT NULL"
            ))
            .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::MySql {
            return Ok(());
        }
        let collation = no_pad_collation(manager).await?;
        modify_all(manager, Some(collation)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::MySql {
            return Ok(());
        }
        modify_all(manager, None).await
    }
}
