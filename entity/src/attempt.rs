//! `attempts`: one try of a task run.

use crate::states::{AttemptState, Reason};
use sea_orm::entity::prelude::*;

/// One attempt; `number` is 1, 2, ... and unique per task run.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "attempts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub task_run_id: Uuid,
    pub number: i32,
    pub state: AttemptState,
    pub reason: Option<Reason>,
    pub exit_code: Option<i32>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    pub started_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
}

/// Relations of `attempts`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The task run this attempt belongs to.
    #[sea_orm(
        belongs_to = "super::task_run::Entity",
        from = "Column::TaskRunId",
        to = "super::task_run::Column::Id"
    )]
    TaskRun,
}

impl Related<super::task_run::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::TaskRun.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
