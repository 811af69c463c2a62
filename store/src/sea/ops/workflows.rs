//! Workflows and their stored versions: lookups, pages and version counts,
//! then saving (a new version when the definition changes) and deleting.

use super::{backend_of, check_name, list_of, not_found, page_and_count};
use crate::error::{Result, StoreError};
use crate::now;
use crate::query::{self, Page, WorkflowQuery};
use crate::sea::db::Db;
use crate::types::*;
use chrono::{DateTime, Utc};
use flowstate_entity::{workflow, workflow_version};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};
use std::collections::HashMap;
use uuid::Uuid;

// --- queries ---

pub(super) async fn get<D: Db>(db: &D, id: Uuid) -> Result<Workflow> {
    workflow::Entity::find_by_id(id)
        .one(&db.exec())
        .await?
        .map(Into::into)
        .ok_or_else(|| not_found("workflow", id))
}

pub(super) async fn get_by_name<D: Db>(db: &D, name: &str) -> Result<Workflow> {
    workflow::Entity::find()
        .filter(workflow::Column::Name.eq(name))
        .one(&db.exec())
        .await?
        .map(Into::into)
        .ok_or_else(|| not_found("workflow", name))
}

/// The workflows matching a name pattern: the names starting with its
/// literal prefix (`LIKE 'prefix%'`, which every backend compares by
/// bytes or, on SQLite, without case), then the pattern itself here.
pub(super) async fn matching<D: Db>(db: &D, pattern: &str, limit: u64) -> Result<Vec<Workflow>> {
    use sea_orm::sea_query::LikeExpr;
    let p = query::name_pattern(pattern).ok_or_else(|| {
        StoreError::InvalidInput(format!("'{}' has no * or ?", crate::text::shown(pattern)))
    })?;
    let escaped: String = p
        .prefix()
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    let select = workflow::Entity::find()
        .filter(workflow::Column::Name.like(LikeExpr::new(format!("{escaped}%")).escape('\\')))
        .order_by_asc(workflow::Column::Name);
    let rows: Vec<workflow::Model> = list_of(db, select.build(backend_of(db))).await?;
    Ok(rows
        .into_iter()
        .filter(|w| p.matches(&w.name))
        .take(limit as usize)
        .map(Into::into)
        .collect())
}

pub(super) async fn list<D: Db>(db: &D, q: WorkflowQuery) -> Result<Page<Workflow>> {
    let limit = query::limit_of(q.limit, query::DEFAULT_LIMIT, query::MAX_LIMIT)?;
    let offset = query::offset_of(q.offset)?;
    let backend = backend_of(db);
    let filtered = query::workflow_filters(&q);
    let count = filtered
        .clone()
        .select_only()
        .column_as(Expr::cust("COUNT(*)"), "n")
        .build(backend);
    let page = query::workflow_order(filtered, q.sort)
        .offset(offset)
        .limit(limit)
        .build(backend);
    let (items, total) = page_and_count::<_, workflow::Model>(db, page, count).await?;
    Ok(Page {
        items: items.into_iter().map(Into::into).collect(),
        total,
        total_exact: true,
        limit,
        offset,
        next_cursor: None,
    })
}

pub(super) async fn names<D: Db>(db: &D, mut ids: Vec<Uuid>) -> Result<HashMap<Uuid, String>> {
    ids.sort();
    ids.dedup();
    let mut names = HashMap::with_capacity(ids.len());
    // Chunks keep the IN list under every backend's parameter limit.
    for chunk in ids.chunks(1000) {
        let rows: Vec<(Uuid, String)> = workflow::Entity::find()
            .select_only()
            .column(workflow::Column::Id)
            .column(workflow::Column::Name)
            .filter(workflow::Column::Id.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(&db.exec())
            .await?;
        names.extend(rows);
    }
    Ok(names)
}

pub(super) async fn get_version<D: Db>(
    db: &D,
    workflow_id: Uuid,
    version: i32,
) -> Result<WorkflowVersion> {
    workflow_version::Entity::find_by_id((workflow_id, version))
        .one(&db.exec())
        .await?
        .map(Into::into)
        .ok_or_else(|| not_found("workflow version", format!("{workflow_id} v{version}")))
}

pub(super) async fn list_versions<D: Db>(db: &D, workflow_id: Uuid) -> Result<Vec<VersionSummary>> {
    let db = db.exec();
    let versions = query::workflow_versions_of(workflow_id).all(&db).await?;
    let counts: Vec<(i32, i64)> = query::executions_per_version(workflow_id)
        .into_tuple()
        .all(&db)
        .await?;
    Ok(versions
        .into_iter()
        .map(|v| VersionSummary {
            version: v.version,
            created_at: v.created_at,
            executions: counts
                .iter()
                .find(|(n, _)| *n == v.version)
                .map_or(0, |(_, c)| *c as u64),
        })
        .collect())
}

// --- mutations ---

pub(super) async fn save<D: Db>(db: &D, w: NewWorkflow) -> Result<SavedWorkflow> {
    check_name("workflow name", &w.name)?;
    db.write(move |tx| {
        let w = w.clone();
        Box::pin(async move { save_in(tx, w).await })
    })
    .await
}

pub(super) async fn delete<D: Db>(db: &D, id: Uuid, hard: bool) -> Result<()> {
    db.write(move |tx| {
        Box::pin(async move {
            // Read first: MySQL reports rows *changed*, not matched.
            workflow::Entity::find_by_id(id)
                .one(tx)
                .await?
                .ok_or_else(|| not_found("workflow", id))?;
            if hard {
                // Executions and everything under them go by cascade.
                workflow::Entity::delete_by_id(id).exec(tx).await?;
            } else {
                workflow::Entity::update_many()
                    .col_expr(workflow::Column::DeletedAt, Expr::val(now()))
                    .col_expr(workflow::Column::UpdatedAt, Expr::val(now()))
                    .filter(workflow::Column::Id.eq(id))
                    .exec(tx)
                    .await?;
            }
            Ok(())
        })
    })
    .await
}

/// The work of [`save`] inside its transaction.
async fn save_in(tx: &DatabaseTransaction, w: NewWorkflow) -> Result<SavedWorkflow> {
    let ts = now();
    let existing = workflow::Entity::find()
        .filter(workflow::Column::Name.eq(w.name.as_str()))
        .one(tx)
        .await?;
    let Some(mut current) = existing else {
        let row = workflow::Model {
            id: Uuid::now_v7(),
            name: w.name,
            version: 1,
            definition: w.definition,
            description: w.description,
            created_at: ts,
            updated_at: ts,
            deleted_at: None,
        };
        workflow::Entity::insert(workflow::ActiveModel::from(row.clone()))
            .exec_without_returning(tx)
            .await?;
        insert_version(tx, &row).await?;
        return Ok(SavedWorkflow {
            workflow: row.into(),
            changed: true,
        });
    };
    let changed = current.definition != w.definition || current.description != w.description;
    if !changed && current.deleted_at.is_none() {
        return Ok(SavedWorkflow {
            workflow: current.into(),
            changed: false,
        });
    }
    if changed {
        current.version += 1;
    }
    current.definition = w.definition;
    current.description = w.description;
    current.deleted_at = None;
    current.updated_at = ts;
    update(tx, &current).await?;
    if changed {
        insert_version(tx, &current).await?;
    }
    Ok(SavedWorkflow {
        workflow: current.into(),
        changed,
    })
}

/// Writes `w`'s version, definition, description and update time over its
/// row, restoring it when it was soft-deleted.
async fn update(tx: &DatabaseTransaction, w: &workflow::Model) -> Result<()> {
    workflow::Entity::update_many()
        .col_expr(workflow::Column::Version, Expr::val(w.version))
        .col_expr(
            workflow::Column::Definition,
            Expr::val(w.definition.clone()),
        )
        .col_expr(
            workflow::Column::Description,
            Expr::val(w.description.clone()),
        )
        .col_expr(
            workflow::Column::DeletedAt,
            Expr::val(None::<DateTime<Utc>>),
        )
        .col_expr(workflow::Column::UpdatedAt, Expr::val(w.updated_at))
        .filter(workflow::Column::Id.eq(w.id))
        .exec(tx)
        .await?;
    Ok(())
}

/// Keeps the definition of the workflow's current version, so executions of
/// it run what they were submitted with after later changes.
async fn insert_version(tx: &DatabaseTransaction, w: &workflow::Model) -> Result<()> {
    let row = workflow_version::Model {
        workflow_id: w.id,
        version: w.version,
        definition: w.definition.clone(),
        description: w.description.clone(),
        created_at: w.updated_at,
    };
    workflow_version::Entity::insert(workflow_version::ActiveModel::from(row))
        .exec_without_returning(tx)
        .await?;
    Ok(())
}
