//! `workflow_versions`: every definition a workflow has had.

use sea_orm::entity::prelude::*;

/// One version of a workflow's definition. An execution runs the version it
/// was submitted with (`executions.workflow_version`), whatever is current.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "workflow_versions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub workflow_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub version: i32,
    pub definition: Json,
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    /// When this version was registered.
    pub created_at: DateTimeUtc,
}

/// Relations of `workflow_versions`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The workflow this is a version of.
    #[sea_orm(
        belongs_to = "super::workflow::Entity",
        from = "Column::WorkflowId",
        to = "super::workflow::Column::Id"
    )]
    Workflow,
}

impl Related<super::workflow::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Workflow.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
