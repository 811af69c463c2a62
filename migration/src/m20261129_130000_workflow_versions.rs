//! `workflow_versions`: every definition a workflow has had.
//!
//! An execution records the `workflow_version` it was submitted with, but
//! only the current definition was kept, so re-registering a workflow
//! changed executions already running or waiting on a retry. This table keeps
//! each version's definition; the driver runs the one its execution names.
//!
//! `up` creates the table and copies in the current version of every
//! workflow (older definitions were never kept and cannot be recovered).
//! `down` drops it: the current definitions stay in `workflows`, so only the
//! history of earlier versions is lost.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// Creates `workflow_versions` and fills it with the current versions.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261129_130000_workflow_versions"
    }
}

#[derive(DeriveIden)]
enum WorkflowVersions {
    Table,
    WorkflowId,
    Version,
    Definition,
    Description,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Workflows {
    Table,
    Id,
    Version,
    Definition,
    Description,
    UpdatedAt,
}

/// A UTC timestamp with microseconds, as the initial schema made them.
fn timestamp(backend: DbBackend, col: WorkflowVersions) -> ColumnDef {
    let mut def = ColumnDef::new(col);
    match backend {
        DbBackend::MySql => def.custom(Alias::new("DATETIME(6)")),
        _ => def.timestamp_with_time_zone(),
    };
    def.not_null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table(WorkflowVersions::Table)
                    .col(
                        ColumnDef::new(WorkflowVersions::WorkflowId)
                            .uuid()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WorkflowVersions::Version)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WorkflowVersions::Definition)
                            .json_binary()
                            .not_null(),
                    )
                    .col(ColumnDef::new(WorkflowVersions::Description).text().null())
                    .col(timestamp(backend, WorkflowVersions::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(WorkflowVersions::WorkflowId)
                            .col(WorkflowVersions::Version),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_workflow_versions_workflow")
                            .from(WorkflowVersions::Table, WorkflowVersions::WorkflowId)
                            .to(Workflows::Table, Workflows::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        let copy = Query::insert()
            .into_table(WorkflowVersions::Table)
            .columns([
                WorkflowVersions::WorkflowId,
                WorkflowVersions::Version,
                WorkflowVersions::Definition,
                WorkflowVersions::Description,
                WorkflowVersions::CreatedAt,
            ])
            .select_from(
                Query::select()
                    .columns([
                        Workflows::Id,
                        Workflows::Version,
                        Workflows::Definition,
                        Workflows::Description,
                        Workflows::UpdatedAt,
                    ])
                    .from(Workflows::Table)
                    .to_owned(),
            )
            .map_err(|e| DbErr::Migration(e.to_string()))?
            .to_owned();
        manager.exec_stmt(copy).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WorkflowVersions::Table).to_owned())
            .await
    }
}
