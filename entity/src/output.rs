//! `outputs`: a key/value a task published.

use sea_orm::entity::prelude::*;

/// One output; `key` is unique per task run.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "outputs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub execution_id: Uuid,
    pub task_run_id: Uuid,
    pub key: String,
    pub value: Json,
    pub created_at: DateTimeUtc,
}

/// Relations of `outputs`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The execution this output belongs to.
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
