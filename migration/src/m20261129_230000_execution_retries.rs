//! `executions.retry_of`: the execution a retry re-runs (issue 15).
//!
//! `flowstate execution retry` creates a new execution of the same pinned
//! version and inputs that reuses the tasks that succeeded; `retry_of`
//! links it to the original, and `ix_executions_retry_of` lists an
//! original's retries without a scan. There is no foreign key: retention
//! may purge an original before its retry, and then clears the link
//! (set-based, through the index) instead of deleting the retry.
//!
//! `down` drops the index and the column: the links are lost, the retries
//! stay as executions of their own.

use sea_orm_migration::prelude::*;

/// Adds `executions.retry_of` and `ix_executions_retry_of`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261129_230000_execution_retries"
    }
}

#[derive(DeriveIden)]
enum Executions {
    Table,
    RetryOf,
}

const INDEX: &str = "ix_executions_retry_of";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Executions::Table)
                    .add_column(ColumnDef::new(Executions::RetryOf).uuid().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(Executions::Table)
                    .col(Executions::RetryOf)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(INDEX)
                    .table(Executions::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Executions::Table)
                    .drop_column(Executions::RetryOf)
                    .to_owned(),
            )
            .await
    }
}
