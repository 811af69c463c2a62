//! The first schema: workflows, executions, task runs, attempts, outputs, logs.
//!
//! Every list index ends in the sort's tie-break column (`id`) so the index
//! alone yields the order, and every foreign-key column leads some index so a
//! cascading delete never scans a whole child table.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// Creates the six tables with their foreign keys and indexes.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000001_initial_schema"
    }
}

#[derive(DeriveIden)]
enum Workflows {
    Table,
    Id,
    Name,
    Version,
    Definition,
    Description,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum Executions {
    Table,
    Id,
    WorkflowId,
    WorkflowVersion,
    State,
    Reason,
    Error,
    Input,
    Version,
    Owner,
    LeaseExpiresAt,
    WakeAt,
    CreatedAt,
    UpdatedAt,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum TaskRuns {
    Table,
    Id,
    ExecutionId,
    TaskKey,
    Position,
    State,
    Reason,
    Version,
    AttemptCount,
    NextAttemptAt,
    CreatedAt,
    UpdatedAt,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum Attempts {
    Table,
    Id,
    TaskRunId,
    Number,
    State,
    Reason,
    ExitCode,
    Error,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum Outputs {
    Table,
    Id,
    ExecutionId,
    TaskRunId,
    Key,
    Value,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Logs {
    Table,
    Id,
    ExecutionId,
    TaskRunId,
    Attempt,
    Ts,
    Stream,
    Line,
}

/// Column types that differ per backend, kept in one place.
struct Types(DbBackend);

impl Types {
    /// UTC timestamp with microseconds: `timestamptz` on PostgreSQL, text on
    /// SQLite, and `DATETIME(6)` on MySQL (its `TIMESTAMP` stops in 2038 and
    /// converts by session time zone; without `(6)` it drops the fraction).
    fn ts<T: IntoIden>(&self, col: T) -> ColumnDef {
        let mut def = ColumnDef::new(col);
        match self.0 {
            DbBackend::MySql => def.custom(Alias::new("DATETIME(6)")),
            _ => def.timestamp_with_time_zone(),
        };
        def
    }

    fn id<T: IntoIden>(&self, col: T) -> ColumnDef {
        let mut def = ColumnDef::new(col);
        def.uuid().not_null();
        def
    }

    fn name<T: IntoIden>(&self, col: T) -> ColumnDef {
        let mut def = ColumnDef::new(col);
        def.string_len(255).not_null();
        def
    }

    fn state<T: IntoIden>(&self, col: T) -> ColumnDef {
        let mut def = ColumnDef::new(col);
        def.string_len(16).not_null();
        def
    }

    fn reason<T: IntoIden>(&self, col: T) -> ColumnDef {
        let mut def = ColumnDef::new(col);
        def.string_len(64).null();
        def
    }
}

fn cascade(
    name: &str,
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(ForeignKeyAction::Cascade)
        .on_update(ForeignKeyAction::Cascade)
        .to_owned()
}

fn index(
    name: &str,
    table: impl IntoIden,
    cols: &[&'static str],
    unique: bool,
) -> IndexCreateStatement {
    let mut idx = Index::create();
    idx.name(name).table(table);
    for col in cols {
        idx.col(Alias::new(*col));
    }
    if unique {
        idx.unique();
    }
    idx.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let t = Types(manager.get_database_backend());

        manager
            .create_table(
                Table::create()
                    .table(Workflows::Table)
                    .col(t.id(Workflows::Id).primary_key())
                    .col(t.name(Workflows::Name))
                    .col(ColumnDef::new(Workflows::Version).integer().not_null())
                    .col(
                        ColumnDef::new(Workflows::Definition)
                            .json_binary()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Workflows::Description).text().null())
                    .col(t.ts(Workflows::CreatedAt).not_null())
                    .col(t.ts(Workflows::UpdatedAt).not_null())
                    .col(t.ts(Workflows::DeletedAt).null())
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Executions::Table)
                    .col(t.id(Executions::Id).primary_key())
                    .col(t.id(Executions::WorkflowId))
                    .col(
                        ColumnDef::new(Executions::WorkflowVersion)
                            .integer()
                            .not_null(),
                    )
                    .col(t.state(Executions::State))
                    .col(t.reason(Executions::Reason))
                    .col(ColumnDef::new(Executions::Error).text().null())
                    .col(ColumnDef::new(Executions::Input).json_binary().not_null())
                    .col(ColumnDef::new(Executions::Version).big_integer().not_null())
                    .col(ColumnDef::new(Executions::Owner).string_len(255).null())
                    .col(t.ts(Executions::LeaseExpiresAt).null())
                    .col(t.ts(Executions::WakeAt).null())
                    .col(t.ts(Executions::CreatedAt).not_null())
                    .col(t.ts(Executions::UpdatedAt).not_null())
                    .col(t.ts(Executions::StartedAt).null())
                    .col(t.ts(Executions::FinishedAt).null())
                    .foreign_key(&mut cascade(
                        "fk_executions_workflow",
                        (Executions::Table, Executions::WorkflowId),
                        (Workflows::Table, Workflows::Id),
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(TaskRuns::Table)
                    .col(t.id(TaskRuns::Id).primary_key())
                    .col(t.id(TaskRuns::ExecutionId))
                    .col(t.name(TaskRuns::TaskKey))
                    .col(ColumnDef::new(TaskRuns::Position).integer().not_null())
                    .col(t.state(TaskRuns::State))
                    .col(t.reason(TaskRuns::Reason))
                    .col(ColumnDef::new(TaskRuns::Version).big_integer().not_null())
                    .col(ColumnDef::new(TaskRuns::AttemptCount).integer().not_null())
                    .col(t.ts(TaskRuns::NextAttemptAt).null())
                    .col(t.ts(TaskRuns::CreatedAt).not_null())
                    .col(t.ts(TaskRuns::UpdatedAt).not_null())
                    .col(t.ts(TaskRuns::StartedAt).null())
                    .col(t.ts(TaskRuns::FinishedAt).null())
                    .foreign_key(&mut cascade(
                        "fk_task_runs_execution",
                        (TaskRuns::Table, TaskRuns::ExecutionId),
                        (Executions::Table, Executions::Id),
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Attempts::Table)
                    .col(t.id(Attempts::Id).primary_key())
                    .col(t.id(Attempts::TaskRunId))
                    .col(ColumnDef::new(Attempts::Number).integer().not_null())
                    .col(t.state(Attempts::State))
                    .col(t.reason(Attempts::Reason))
                    .col(ColumnDef::new(Attempts::ExitCode).integer().null())
                    .col(ColumnDef::new(Attempts::Error).text().null())
                    .col(t.ts(Attempts::StartedAt).not_null())
                    .col(t.ts(Attempts::FinishedAt).null())
                    .foreign_key(&mut cascade(
                        "fk_attempts_task_run",
                        (Attempts::Table, Attempts::TaskRunId),
                        (TaskRuns::Table, TaskRuns::Id),
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Outputs::Table)
                    .col(t.id(Outputs::Id).primary_key())
                    .col(t.id(Outputs::ExecutionId))
                    .col(t.id(Outputs::TaskRunId))
                    .col(t.name(Outputs::Key))
                    .col(ColumnDef::new(Outputs::Value).json_binary().not_null())
                    .col(t.ts(Outputs::CreatedAt).not_null())
                    .foreign_key(&mut cascade(
                        "fk_outputs_execution",
                        (Outputs::Table, Outputs::ExecutionId),
                        (Executions::Table, Executions::Id),
                    ))
                    .foreign_key(&mut cascade(
                        "fk_outputs_task_run",
                        (Outputs::Table, Outputs::TaskRunId),
                        (TaskRuns::Table, TaskRuns::Id),
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Logs::Table)
                    .col(
                        ColumnDef::new(Logs::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(t.id(Logs::ExecutionId))
                    .col(ColumnDef::new(Logs::TaskRunId).uuid().null())
                    .col(ColumnDef::new(Logs::Attempt).integer().null())
                    .col(t.ts(Logs::Ts).not_null())
                    .col(ColumnDef::new(Logs::Stream).string_len(8).not_null())
                    .col(ColumnDef::new(Logs::Line).text().not_null())
                    .foreign_key(&mut cascade(
                        "fk_logs_execution",
                        (Logs::Table, Logs::ExecutionId),
                        (Executions::Table, Executions::Id),
                    ))
                    .foreign_key(&mut cascade(
                        "fk_logs_task_run",
                        (Logs::Table, Logs::TaskRunId),
                        (TaskRuns::Table, TaskRuns::Id),
                    ))
                    .to_owned(),
            )
            .await?;

        let indexes = [
            index("ux_workflows_name", Workflows::Table, &["name"], true),
            index(
                "ix_executions_created",
                Executions::Table,
                &["created_at", "id"],
                false,
            ),
            index(
                "ix_executions_workflow",
                Executions::Table,
                &["workflow_id", "created_at", "id"],
                false,
            ),
            index(
                "ix_executions_state",
                Executions::Table,
                &["state", "created_at", "id"],
                false,
            ),
            // Retention looks for old finished executions; only terminal ones
            // have finished_at, so this index holds exactly the candidates.
            index(
                "ix_executions_finished",
                Executions::Table,
                &["finished_at"],
                false,
            ),
            index(
                "ux_task_runs_execution_key",
                TaskRuns::Table,
                &["execution_id", "task_key"],
                true,
            ),
            index(
                "ix_task_runs_execution_position",
                TaskRuns::Table,
                &["execution_id", "position"],
                false,
            ),
            index(
                "ux_attempts_task_run_number",
                Attempts::Table,
                &["task_run_id", "number"],
                true,
            ),
            index(
                "ux_outputs_task_run_key",
                Outputs::Table,
                &["task_run_id", "key"],
                true,
            ),
            index(
                "ix_outputs_execution",
                Outputs::Table,
                &["execution_id"],
                false,
            ),
            index(
                "ix_logs_execution",
                Logs::Table,
                &["execution_id", "id"],
                false,
            ),
            index("ix_logs_task_run", Logs::Table, &["task_run_id"], false),
        ];
        for idx in indexes {
            manager.create_index(idx).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Children first; dropping a table drops its indexes and foreign keys.
        for table in [
            Logs::Table.into_iden(),
            Outputs::Table.into_iden(),
            Attempts::Table.into_iden(),
            TaskRuns::Table.into_iden(),
            Executions::Table.into_iden(),
            Workflows::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
