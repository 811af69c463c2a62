//! `executions`: one run of a workflow.

use crate::states::{ExecutionState, Reason};
use sea_orm::entity::prelude::*;

/// One execution. `version` is the optimistic-lock counter every transition checks.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "executions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub workflow_id: Uuid,
    /// The workflow's `version` when this execution was created.
    pub workflow_version: i32,
    pub state: ExecutionState,
    /// Machine-readable cause of the last transition (CRASH_RECOVERY, TASK_FAILED, ...).
    pub reason: Option<Reason>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    pub input: Json,
    pub version: i64,
    /// The engine node holding the lease, if any.
    pub owner: Option<String>,
    pub lease_expires_at: Option<DateTimeUtc>,
    /// When a WAITING execution is due again.
    pub wake_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    /// The execution this one re-runs (`flowstate execution retry`), while
    /// that one is kept.
    pub retry_of: Option<Uuid>,
}

/// Relations of `executions`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The workflow this execution runs.
    #[sea_orm(
        belongs_to = "super::workflow::Entity",
        from = "Column::WorkflowId",
        to = "super::workflow::Column::Id"
    )]
    Workflow,
    /// The task runs of this execution.
    #[sea_orm(has_many = "super::task_run::Entity")]
    TaskRun,
}

impl Related<super::workflow::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Workflow.def()
    }
}

impl Related<super::task_run::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::TaskRun.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
