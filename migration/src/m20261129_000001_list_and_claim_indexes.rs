//! Two indexes the benchmarks asked for (see docs/performance.md).
//!
//! - `ix_executions_workflow_state (workflow_id, state, created_at, id)`:
//!   with only the workflow and the state indexes, a list by both walked one
//!   index and read the table to check the other column, and counting its
//!   matches did so for every match (100 ms at 100k executions). This index
//!   answers the page in order and the count from the index alone.
//! - `ix_executions_state_wake (state, wake_at)`: claiming looks for WAITING
//!   executions whose `wake_at` has passed; through the state index it read
//!   every WAITING row to check `wake_at`, so claims slowed as retries piled up.

use sea_orm_migration::prelude::*;

/// Adds `ix_executions_workflow_state` and `ix_executions_state_wake`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261129_000001_list_and_claim_indexes"
    }
}

const INDEXES: &[(&str, &[&str])] = &[
    (
        "ix_executions_workflow_state",
        &["workflow_id", "state", "created_at", "id"],
    ),
    ("ix_executions_state_wake", &["state", "wake_at"]),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, cols) in INDEXES {
            let mut index = Index::create();
            index.name(*name).table(Alias::new("executions"));
            for col in *cols {
                index.col(Alias::new(*col));
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, _) in INDEXES.iter().rev() {
            manager
                .drop_index(
                    Index::drop()
                        .name(*name)
                        .table(Alias::new("executions"))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
