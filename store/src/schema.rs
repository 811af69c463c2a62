//! The schema check made when a store opens: every table and column the
//! entities use must exist. Migrations record what was applied, not what is
//! there; a table dropped by hand would otherwise surface half-way through a
//! run ("no such table: logs") after an execution, its task runs and its
//! attempts were already written. One catalogue query per backend.

use crate::backend;
use crate::error::{Result, StoreError};
use flowstate_entity::{attempt, execution, log, output, task_run, workflow, workflow_version};
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityName, IdenStatic, Iterable, Statement};
use std::collections::{HashMap, HashSet};

/// Every table the store uses with its columns, from the entities.
fn expected() -> Vec<(&'static str, Vec<&'static str>)> {
    fn columns<C: Iterable + IdenStatic>() -> Vec<&'static str> {
        C::iter().map(|c| c.as_str()).collect()
    }
    vec![
        (workflow::Entity.table_name(), columns::<workflow::Column>()),
        (
            workflow_version::Entity.table_name(),
            columns::<workflow_version::Column>(),
        ),
        (
            execution::Entity.table_name(),
            columns::<execution::Column>(),
        ),
        (task_run::Entity.table_name(), columns::<task_run::Column>()),
        (attempt::Entity.table_name(), columns::<attempt::Column>()),
        (output::Entity.table_name(), columns::<output::Column>()),
        (log::Entity.table_name(), columns::<log::Column>()),
    ]
}

/// Fails with [`StoreError::SchemaDamaged`] naming the first missing table
/// or column. Reads only.
pub(crate) async fn verify(db: &DatabaseConnection) -> Result<()> {
    let backend = db.get_database_backend();
    let sql = backend::for_backend(backend).columns_query();
    let rows = db
        .query_all_raw(Statement::from_string(backend, sql.to_owned()))
        .await?;
    let mut present: HashMap<String, HashSet<String>> = HashMap::new();
    for row in rows {
        let table: String = row.try_get_by_index(0)?;
        let column: String = row.try_get_by_index(1)?;
        present
            .entry(table.to_ascii_lowercase())
            .or_default()
            .insert(column.to_ascii_lowercase());
    }
    missing(&present, &expected()).map_or(Ok(()), |m| Err(StoreError::SchemaDamaged(m)))
}

/// What is missing, as "table logs is missing" or "column logs.line is missing".
fn missing(
    present: &HashMap<String, HashSet<String>>,
    expected: &[(&str, Vec<&str>)],
) -> Option<String> {
    for (table, columns) in expected {
        let Some(have) = present.get(*table) else {
            return Some(format!("table {table} is missing"));
        };
        if let Some(c) = columns.iter().find(|c| !have.contains(**c)) {
            return Some(format!("column {table}.{c} is missing"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_first_missing_table_or_column() {
        let expected = vec![("workflows", vec!["id", "name"]), ("logs", vec!["id"])];
        let mut present: HashMap<String, HashSet<String>> = HashMap::new();
        present.insert("workflows".into(), ["id", "name"].map(String::from).into());
        assert_eq!(
            missing(&present, &expected).as_deref(),
            Some("table logs is missing")
        );
        present.insert("logs".into(), HashSet::new());
        assert_eq!(
            missing(&present, &expected).as_deref(),
            Some("column logs.id is missing")
        );
        present.get_mut("logs").unwrap().insert("id".into());
        assert_eq!(missing(&present, &expected), None);
        assert!(expected_tables_cover_the_entities());
    }

    fn expected_tables_cover_the_entities() -> bool {
        expected().len() == 7
            && expected()
                .iter()
                .all(|(_, c)| c.contains(&"id") || c.contains(&"workflow_id"))
    }
}
