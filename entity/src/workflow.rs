//! `workflows`: a named, versioned workflow definition.

use sea_orm::entity::prelude::*;

/// One workflow. `name` is unique; saving a changed definition bumps `version`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "workflows")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub name: String,
    pub version: i32,
    pub definition: Json,
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Set by a soft delete; soft-deleted workflows are hidden from lists by default.
    pub deleted_at: Option<DateTimeUtc>,
}

/// Relations of `workflows`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The executions of this workflow.
    #[sea_orm(has_many = "super::execution::Entity")]
    Execution,
}

impl Related<super::execution::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Execution.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
