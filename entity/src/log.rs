//! `logs`: one captured log line.

use crate::states::LogStream;
use sea_orm::entity::prelude::*;

/// One log line. `id` grows with every insert and is the read order.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "logs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub execution_id: Uuid,
    /// None for lines about the execution as a whole.
    pub task_run_id: Option<Uuid>,
    /// The attempt number the line belongs to, if any.
    pub attempt: Option<i32>,
    pub ts: DateTimeUtc,
    pub stream: LogStream,
    #[sea_orm(column_type = "Text")]
    pub line: String,
}

/// Relations of `logs`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The execution this line belongs to.
    #[sea_orm(
        belongs_to = "super::execution::Entity",
        from = "Column::ExecutionId",
        to = "super::execution::Column::Id"
    )]
    Execution,
}

impl Related<super::execution::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Execution.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
