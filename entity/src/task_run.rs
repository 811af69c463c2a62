//! `task_runs`: one task of one execution.

use crate::states::{Reason, TaskState};
use sea_orm::entity::prelude::*;

/// One task run. `position` is the task's index in the workflow, the listing order.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "task_runs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub execution_id: Uuid,
    pub task_key: String,
    pub position: i32,
    pub state: TaskState,
    pub reason: Option<Reason>,
    pub version: i64,
    /// How many attempts have been started; the next attempt is numbered one more.
    pub attempt_count: i32,
    /// When a WAITING task run may start its next attempt.
    pub next_attempt_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
}

/// Relations of `task_runs`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The execution this task run belongs to.
    #[sea_orm(
        belongs_to = "super::execution::Entity",
        from = "Column::ExecutionId",
        to = "super::execution::Column::Id"
    )]
    Execution,
    /// The attempts of this task run.
    #[sea_orm(has_many = "super::attempt::Entity")]
    Attempt,
}

impl Related<super::execution::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Execution.def()
    }
}

impl Related<super::attempt::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Attempt.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
