//! An index for listing executions by why they ended.
//!
//! `execution list --reason CRASH_RECOVERY` (issue 15) filters on `reason`,
//! which no index led with: the list walked `ix_executions_created` newest
//! first and tested each row, so a rare reason read most of the table.
//! `ix_executions_reason (reason, created_at, id)` seeks the reason and
//! reads the page in list order, like the other list indexes.

use sea_orm_migration::prelude::*;

/// Adds `ix_executions_reason`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261129_220000_reason_index"
    }
}

const NAME: &str = "ix_executions_reason";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut index = Index::create();
        index.name(NAME).table(Alias::new("executions"));
        for col in ["reason", "created_at", "id"] {
            index.col(Alias::new(col));
        }
        manager.create_index(index.to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(NAME)
                    .table(Alias::new("executions"))
                    .to_owned(),
            )
            .await
    }
}
