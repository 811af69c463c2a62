//! List queries: filters, sorting and pagination, built safely.
//!
//! Sort keys are enums, limits are capped and every value is bound; nothing a
//! caller passes is formatted into SQL. Executions page either by offset or by
//! a keyset cursor on `(created_at, id)`, which stays fast however deep it goes.

use crate::error::{Result, StoreError};
use crate::types::ExecutionState;
use chrono::{DateTime, Utc};
use flowstate_entity::{attempt, execution, log, output, task_run, workflow, workflow_version};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ColumnTrait, DbBackend, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
    RelationTrait, Select, Statement,
};
use uuid::Uuid;

/// The largest page a list returns.
pub const MAX_LIMIT: u64 = 1000;
/// The page size when none is given.
pub const DEFAULT_LIMIT: u64 = 50;
/// Execution lists count matching rows exactly up to this many; past it the
/// total is reported as "at least this many" (see [`ExecutionQuery::exact_total`]).
/// An exact count walks every matching index entry, which at millions of rows
/// costs tens of milliseconds on every page; a capped one stays under one.
pub const TOTAL_CAP: u64 = 10_000;
/// The deepest offset accepted: deeper pages walk and discard every row
/// before them, so they are reached with the keyset cursor instead.
pub const MAX_OFFSET: u64 = 10_000;

/// Newest or oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    /// Newest first (the default).
    #[default]
    Descending,
    /// Oldest first.
    Ascending,
}

/// Filters and paging of an execution list.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExecutionQuery {
    /// Only this workflow's executions.
    pub workflow_id: Option<Uuid>,
    /// Only the executions of these workflows (with `workflow_id` unset):
    /// each one's page is read from `ix_executions_workflow` and the pages
    /// merged in one statement. At most [`MAX_WORKFLOWS`].
    pub workflow_ids: Vec<Uuid>,
    /// Only executions in one of these states (all when empty).
    pub states: Vec<ExecutionState>,
    /// Created at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Created strictly before this instant.
    pub until: Option<DateTime<Utc>>,
    /// Only executions leased by this engine node.
    pub owner: Option<String>,
    /// Only executions that ended for one of these reasons (all when empty).
    pub reasons: Vec<crate::types::Reason>,
    /// Page size, 1..=1000 (default 50).
    pub limit: Option<u64>,
    /// Rows to skip (offset paging). Not allowed together with `after`.
    pub offset: Option<u64>,
    /// Continue after this cursor (keyset paging), as returned in `next_cursor`.
    pub after: Option<String>,
    /// Order by `created_at`, with `id` as the tie-break.
    pub sort: SortOrder,
    /// Count every matching row, however many; by default counting stops
    /// past [`TOTAL_CAP`].
    pub exact_total: bool,
}

impl ExecutionQuery {
    /// Checks every value without touching a database: the page size, the
    /// offset, the cursor and their combination. Listing makes the same
    /// checks; callers that must not open a database on bad input (the CLI)
    /// call this first.
    pub fn validate(&self) -> Result<()> {
        execution_page(self).map(|_| ())
    }
}

impl WorkflowQuery {
    /// Checks the page size and offset without touching a database.
    pub fn validate(&self) -> Result<()> {
        limit_of(self.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
        offset_of(self.offset).map(|_| ())
    }
}

/// Sort keys of the workflow list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WorkflowSort {
    /// By name, A to Z (the default).
    #[default]
    Name,
    /// Newest first.
    CreatedDesc,
    /// Most recently updated first.
    UpdatedDesc,
}

/// Filters and paging of a workflow list.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WorkflowQuery {
    /// Only names containing this text.
    pub name_contains: Option<String>,
    /// Only these workflows (all when empty).
    pub ids: Vec<Uuid>,
    /// Include soft-deleted workflows.
    pub include_deleted: bool,
    /// Page size, 1..=1000 (default 50).
    pub limit: Option<u64>,
    /// Rows to skip.
    pub offset: Option<u64>,
    /// Order.
    pub sort: WorkflowSort,
}

/// Which log lines to read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogQuery {
    /// The execution.
    pub execution_id: Uuid,
    /// Only this task run's lines.
    pub task_run_id: Option<Uuid>,
    /// Only lines with a greater id (to page and to follow).
    pub after_id: Option<i64>,
    /// At most this many lines, 1..=10000 (default 1000).
    pub limit: Option<u64>,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// How many rows match the filters, over all pages (at most
    /// [`TOTAL_CAP`] unless the count was exact).
    pub total: u64,
    /// False when more rows match than `total` says (the count was capped).
    pub total_exact: bool,
    /// The page size used.
    pub limit: u64,
    /// The offset used (0 with a cursor).
    pub offset: u64,
    /// Pass as `after` to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Checks a page size against the cap.
pub(crate) fn limit_of(limit: Option<u64>, default: u64, max: u64) -> Result<u64> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(StoreError::InvalidInput(format!(
            "limit {n} is out of range; use 1 to {max}"
        ))),
    }
}

/// Checks an offset against [`MAX_OFFSET`] (0 when none is given).
pub(crate) fn offset_of(offset: Option<u64>) -> Result<u64> {
    match offset {
        None => Ok(0),
        Some(n) if n <= MAX_OFFSET => Ok(n),
        Some(n) => Err(StoreError::InvalidInput(format!(
            "offset {n} is over {MAX_OFFSET}; page deeper with the cursor (pass the previous page's nextCursor as `after`)"
        ))),
    }
}

/// A keyset position: the last row's `(created_at, id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    pub(crate) fn encode(&self) -> String {
        format!(
            "{}_{}",
            self.created_at.timestamp_micros(),
            self.id.simple()
        )
    }

    pub(crate) fn decode(text: &str) -> Result<Self> {
        let bad = || {
            StoreError::InvalidInput(format!(
                "malformed cursor '{}'; pass the nextCursor value of a previous page unchanged",
                crate::text::shown(text)
            ))
        };
        let (micros, id) = text.split_once('_').ok_or_else(bad)?;
        let micros: i64 = micros.parse().map_err(|_| bad())?;
        Ok(Cursor {
            created_at: DateTime::from_timestamp_micros(micros).ok_or_else(bad)?,
            id: Uuid::try_parse(id).map_err(|_| bad())?,
        })
    }
}

/// The filters of `q`, without order or paging: shared by the page and its count.
pub(crate) fn execution_filters(q: &ExecutionQuery) -> Select<execution::Entity> {
    let mut select = execution::Entity::find();
    if let Some(w) = q.workflow_id {
        select = select.filter(execution::Column::WorkflowId.eq(w));
    }
    if !q.workflow_ids.is_empty() {
        select = select.filter(execution::Column::WorkflowId.is_in(q.workflow_ids.iter().copied()));
    }
    match q.states.as_slice() {
        [] => {}
        [one] => select = select.filter(execution::Column::State.eq(*one)),
        many => select = select.filter(execution::Column::State.is_in(many.iter().copied())),
    }
    if let Some(since) = q.since {
        select = select.filter(execution::Column::CreatedAt.gte(since));
    }
    if let Some(until) = q.until {
        select = select.filter(execution::Column::CreatedAt.lt(until));
    }
    if let Some(owner) = &q.owner {
        select = select.filter(execution::Column::Owner.eq(owner.as_str()));
    }
    match q.reasons.as_slice() {
        [] => {}
        [one] => select = select.filter(execution::Column::Reason.eq(*one)),
        many => select = select.filter(execution::Column::Reason.is_in(many.iter().copied())),
    }
    select
}

/// The page query of `q`: filters, keyset position, order and limit. The limit
/// is one more than the page so the caller learns whether a next page exists.
pub(crate) fn execution_page(q: &ExecutionQuery) -> Result<(Select<execution::Entity>, u64)> {
    let limit = limit_of(q.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let mut select = execution_filters(q);
    let (order, after) = match q.sort {
        SortOrder::Descending => (Order::Desc, false),
        SortOrder::Ascending => (Order::Asc, true),
    };
    if let Some(text) = &q.after {
        if q.offset.is_some_and(|o| o > 0) {
            return Err(StoreError::InvalidInput(
                "use either an offset or a cursor, not both".into(),
            ));
        }
        let c = Cursor::decode(text)?;
        // created_at <=/>= c AND (created_at </> c OR id </> c.id): the first
        // term is a plain range the index can seek on.
        let (ca, id) = (execution::Column::CreatedAt, execution::Column::Id);
        let cond = if after {
            Condition::all()
                .add(ca.gte(c.created_at))
                .add(Condition::any().add(ca.gt(c.created_at)).add(id.gt(c.id)))
        } else {
            Condition::all()
                .add(ca.lte(c.created_at))
                .add(Condition::any().add(ca.lt(c.created_at)).add(id.lt(c.id)))
        };
        select = select.filter(cond);
    } else if q.offset.is_some() {
        select = select.offset(offset_of(q.offset)?);
    }
    let select = select
        .order_by(execution::Column::CreatedAt, order.clone())
        .order_by(execution::Column::Id, order)
        .limit(limit + 1);
    Ok((select, limit))
}

/// The index a page of `q` must walk, where the planner was seen to choose a
/// worse one: a workflow with one state and a created-at range went through
/// `ix_executions_state` on SQLite and checked the workflow row by row (about
/// 1,000 table reads for 50 rows, 4.3 ms instead of 0.2 ms at 258k, issue
/// 13); `ix_executions_workflow_state` seeks all three and reads the page in
/// order. Every other shape gets its best index unaided (tests/tests/plans.rs).
fn execution_index(q: &ExecutionQuery) -> Option<&'static str> {
    (q.workflow_id.is_some() && q.states.len() == 1).then_some("ix_executions_workflow_state")
}

/// The page query of `q` as SQL for `backend` (with the index it must use,
/// where the backend takes such a hint), and the page size.
pub(crate) fn execution_page_statement(
    backend: DbBackend,
    q: &ExecutionQuery,
) -> Result<(Statement, u64)> {
    if q.workflow_ids.len() > 1 && q.workflow_id.is_none() {
        return merged_page(backend, q);
    }
    let mut one = q.clone();
    if let [only] = q.workflow_ids.as_slice() {
        one.workflow_id = Some(*only);
        one.workflow_ids.clear();
    }
    let (select, limit) = execution_page(&one)?;
    let mut stmt = select.build(backend);
    if let Some(index) = execution_index(q) {
        crate::backend::for_backend(backend).use_index(&mut stmt.sql, "executions", index);
    }
    Ok((bind_times(backend, stmt), limit))
}

/// The most workflows one execution list may name (a pattern matching
/// more is refused): the merged page reads up to a page from each.
pub const MAX_WORKFLOWS: usize = 100;

/// The page of several workflows' executions: per workflow the rows up to
/// the end of the page from `ix_executions_workflow` (each branch stops at
/// its limit), merged and cut to the page in one statement. The sort at the
/// end handles at most `workflows x (offset + page + 1)` rows.
fn merged_page(backend: DbBackend, q: &ExecutionQuery) -> Result<(Statement, u64)> {
    use sea_orm::sea_query::{Alias, Asterisk, Query, UnionType};
    if q.workflow_ids.len() > MAX_WORKFLOWS {
        return Err(StoreError::InvalidInput(format!(
            "the list names {} workflows; the most is {MAX_WORKFLOWS}: narrow the pattern",
            q.workflow_ids.len()
        )));
    }
    let limit = limit_of(q.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let offset = if q.after.is_some() {
        0
    } else {
        offset_of(q.offset)?
    };
    let mut merged: Option<sea_orm::sea_query::SelectStatement> = None;
    for (i, id) in q.workflow_ids.iter().enumerate() {
        let branch = ExecutionQuery {
            workflow_id: Some(*id),
            workflow_ids: Vec::new(),
            limit: Some(limit + offset),
            offset: None,
            ..q.clone()
        };
        let (select, _) = execution_page(&branch)?;
        let wrapped = Query::select()
            .column(Asterisk)
            .from_subquery(select.into_query(), Alias::new(format!("b{i}")))
            .to_owned();
        merged = Some(match merged {
            None => wrapped,
            Some(mut m) => m.union(UnionType::All, wrapped).to_owned(),
        });
    }
    let order = match q.sort {
        SortOrder::Descending => Order::Desc,
        SortOrder::Ascending => Order::Asc,
    };
    let outer = Query::select()
        .column(Asterisk)
        .from_subquery(merged.expect("two or more workflows"), Alias::new("merged"))
        .order_by(execution::Column::CreatedAt, order.clone())
        .order_by(execution::Column::Id, order)
        .limit(limit + 1)
        .offset(offset)
        .to_owned();
    Ok((bind_times(backend, backend.build(&outer)), limit))
}

/// A workflow-name pattern: `*` any run of characters, `?` one character,
/// everything else itself. `None` when `text` has neither (a plain name).
pub fn name_pattern(text: &str) -> Option<NamePattern> {
    text.contains(['*', '?'])
        .then(|| NamePattern(text.to_owned()))
}

/// A workflow-name pattern (see [`name_pattern`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePattern(String);

impl NamePattern {
    /// The text before the first wildcard: every match starts with it.
    pub fn prefix(&self) -> &str {
        let end = self.0.find(['*', '?']).unwrap_or(self.0.len());
        &self.0[..end]
    }

    /// The smallest string above every name that starts with the prefix
    /// (`None` when the prefix is empty or cannot be bumped): with the
    /// prefix, a range of the unique name index.
    pub fn upper(&self) -> Option<String> {
        let mut chars: Vec<char> = self.prefix().chars().collect();
        while let Some(last) = chars.pop() {
            if let Some(next) = char::from_u32(last as u32 + 1) {
                chars.push(next);
                return Some(chars.into_iter().collect());
            }
        }
        None
    }

    /// Whether `name` matches, case-sensitively as names are.
    pub fn matches(&self, name: &str) -> bool {
        fn go(p: &[char], n: &[char]) -> bool {
            match (p.first(), n.first()) {
                (None, None) => true,
                (Some('*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
                (Some('?'), Some(_)) => go(&p[1..], &n[1..]),
                (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
                _ => false,
            }
        }
        let p: Vec<char> = self.0.chars().collect();
        let n: Vec<char> = name.chars().collect();
        go(&p, &n)
    }
}

#[cfg(feature = "diagnostics")]
/// The SQL of the page query of `q` for `backend`, for `EXPLAIN` and docs.
pub fn execution_list_statement(backend: DbBackend, q: &ExecutionQuery) -> Result<Statement> {
    Ok(execution_page_statement(backend, q)?.0)
}

/// The SQL of the count query of `q` for `backend`: exact, or stopping one
/// row past [`TOTAL_CAP`].
pub fn execution_count_statement(backend: DbBackend, q: &ExecutionQuery) -> Statement {
    if q.exact_total {
        let stmt = execution_filters(q)
            .select_only()
            .column_as(Expr::cust("COUNT(*)"), "n")
            .build(backend);
        return bind_times(backend, stmt);
    }
    let inner = execution_filters(q)
        .select_only()
        .column_as(Expr::val(1), "one")
        .limit(TOTAL_CAP + 1)
        .into_query();
    let outer = sea_orm::sea_query::Query::select()
        .expr_as(Expr::cust("COUNT(*)"), sea_orm::sea_query::Alias::new("n"))
        .from_subquery(inner, sea_orm::sea_query::Alias::new("capped"))
        .to_owned();
    bind_times(backend, backend.build(&outer))
}

/// `stmt` with its instants bound as `backend` compares them (see
/// [`crate::backend::Backend::bind_times`]): the list's time filters and
/// cursor come from users and may lie past 2038.
fn bind_times(backend: DbBackend, mut stmt: Statement) -> Statement {
    if let Some(values) = stmt.values.as_mut() {
        crate::backend::for_backend(backend).bind_times(values);
    }
    stmt
}

#[cfg(feature = "diagnostics")]
/// The cursor of a row at `(created_at, id)`: pass it as `after` to list the
/// rows behind it (for tools that jump deep into a list).
pub fn cursor_at(created_at: DateTime<Utc>, id: Uuid) -> String {
    Cursor { created_at, id }.encode()
}

/// The workflow list query without paging.
pub(crate) fn workflow_filters(q: &WorkflowQuery) -> Select<workflow::Entity> {
    let mut select = workflow::Entity::find();
    if !q.include_deleted {
        select = select.filter(workflow::Column::DeletedAt.is_null());
    }
    if let Some(text) = &q.name_contains {
        select = select.filter(workflow::Column::Name.contains(text.as_str()));
    }
    if !q.ids.is_empty() {
        select = select.filter(workflow::Column::Id.is_in(q.ids.iter().copied()));
    }
    select
}

/// The order of a workflow list.
pub(crate) fn workflow_order(
    select: Select<workflow::Entity>,
    sort: WorkflowSort,
) -> Select<workflow::Entity> {
    match sort {
        WorkflowSort::Name => select.order_by_asc(workflow::Column::Name),
        WorkflowSort::CreatedDesc => select
            .order_by_desc(workflow::Column::CreatedAt)
            .order_by_desc(workflow::Column::Id),
        WorkflowSort::UpdatedDesc => select
            .order_by_desc(workflow::Column::UpdatedAt)
            .order_by_desc(workflow::Column::Id),
    }
}

/// How many executions each version of a workflow has: one grouped count
/// answered from `ix_executions_workflow_state`'s leading column.
pub(crate) fn executions_per_version(workflow_id: Uuid) -> Select<execution::Entity> {
    execution::Entity::find()
        .select_only()
        .column(execution::Column::WorkflowVersion)
        .column_as(Expr::cust("COUNT(*)"), "n")
        .filter(execution::Column::WorkflowId.eq(workflow_id))
        .group_by(execution::Column::WorkflowVersion)
}

/// The most log lines one read returns.
pub const MAX_LOG_LIMIT: u64 = 10_000;

/// The task runs of an execution in workflow order.
pub(crate) fn task_runs_of(execution_id: Uuid) -> Select<task_run::Entity> {
    task_run::Entity::find()
        .filter(task_run::Column::ExecutionId.eq(execution_id))
        .order_by_asc(task_run::Column::Position)
}

/// Every attempt of every task run of an execution, in one query. Unordered:
/// the caller sorts the few rows, which is cheaper than a sort in the database.
pub(crate) fn attempts_of_execution(execution_id: Uuid) -> Select<attempt::Entity> {
    attempt::Entity::find()
        .join(
            sea_orm::JoinType::InnerJoin,
            attempt::Relation::TaskRun.def(),
        )
        .filter(task_run::Column::ExecutionId.eq(execution_id))
}

/// The outputs of an execution. Unordered, like [`attempts_of_execution`].
pub(crate) fn outputs_of(execution_id: Uuid) -> Select<output::Entity> {
    output::Entity::find().filter(output::Column::ExecutionId.eq(execution_id))
}

/// One page of log lines.
pub(crate) fn logs_page(q: &LogQuery) -> Result<Select<log::Entity>> {
    let limit = limit_of(q.limit, 1000, MAX_LOG_LIMIT)?;
    let mut select = log::Entity::find().filter(log::Column::ExecutionId.eq(q.execution_id));
    if let Some(t) = q.task_run_id {
        select = select.filter(log::Column::TaskRunId.eq(t));
    }
    if let Some(after) = q.after_id {
        select = select.filter(log::Column::Id.gt(after));
    }
    Ok(select.order_by_asc(log::Column::Id).limit(limit))
}

#[cfg(feature = "diagnostics")]
/// The queries behind `list_workflow_versions` for `backend`, named, for
/// `EXPLAIN` and docs.
pub fn history_statements(backend: DbBackend, workflow_id: Uuid) -> Vec<(&'static str, Statement)> {
    vec![
        ("versions", workflow_versions_of(workflow_id).build(backend)),
        (
            "executions per version",
            executions_per_version(workflow_id).build(backend),
        ),
    ]
}

/// The stored versions of a workflow, oldest first (its primary key order).
pub(crate) fn workflow_versions_of(workflow_id: Uuid) -> Select<workflow_version::Entity> {
    workflow_version::Entity::find()
        .filter(workflow_version::Column::WorkflowId.eq(workflow_id))
        .order_by_asc(workflow_version::Column::Version)
}

#[cfg(feature = "diagnostics")]
/// The lookups behind `get_execution_detail` and `read_logs` for `backend`,
/// named, for `EXPLAIN` and docs.
pub fn lookup_statements(backend: DbBackend, execution_id: Uuid) -> Vec<(&'static str, Statement)> {
    let logs = LogQuery {
        execution_id,
        after_id: Some(0),
        ..Default::default()
    };
    vec![
        (
            "execution",
            execution::Entity::find_by_id(execution_id)
                .find_also_related(workflow::Entity)
                .build(backend),
        ),
        ("task runs", task_runs_of(execution_id).build(backend)),
        (
            "attempts",
            attempts_of_execution(execution_id).build(backend),
        ),
        ("outputs", outputs_of(execution_id).build(backend)),
        (
            "logs",
            logs_page(&logs)
                .expect("default log limit is valid")
                .build(backend),
        ),
    ]
}

/// The smallest and largest ids that start with `prefix`: 8 to 32 hex
/// digits, in either case, dashes ignored. Shorter prefixes are refused:
/// ids begin with their creation time, so a few digits match thousands.
pub fn id_prefix_range(prefix: &str) -> Result<(Uuid, Uuid)> {
    let hex: String = prefix
        .trim()
        .chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let ok = (8..=32).contains(&hex.len()) && hex.chars().all(|c| c.is_ascii_hexdigit());
    if !ok {
        return Err(StoreError::InvalidInput(format!(
            "'{}' is not an execution id or a prefix of one; give at least 8 of its hex digits",
            crate::text::shown(prefix)
        )));
    }
    let pad = |fill: char| {
        let full: String = hex
            .chars()
            .chain(std::iter::repeat(fill))
            .take(32)
            .collect();
        Uuid::parse_str(&full).expect("32 hex digits")
    };
    Ok((pad('0'), pad('f')))
}

#[cfg(test)]
mod prefix_tests {
    use super::*;

    #[test]
    fn a_prefix_is_a_range_of_ids() {
        let (lo, hi) = id_prefix_range("01A2292A-44").unwrap();
        assert_eq!(lo.to_string(), "01a2292a-4400-0000-0000-000000000000");
        assert_eq!(hi.to_string(), "01a2292a-44ff-ffff-ffff-ffffffffffff");
        let id = "01a2292a-44a7-7182-a24a-e102150d8b97";
        assert_eq!(
            id_prefix_range(id).unwrap(),
            (id.parse().unwrap(), id.parse().unwrap())
        );
        for bad in [
            "01a2292",
            "01a2292g",
            "",
            "01a2292a-44a7-7182-a24a-e102150d8b97f",
        ] {
            assert!(id_prefix_range(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod pattern_tests {
    use super::*;

    #[test]
    fn name_patterns_match_like_shell_globs() {
        assert_eq!(name_pattern("nightly"), None);
        let p = name_pattern("nightly-*").unwrap();
        assert_eq!(
            (p.prefix(), p.upper().as_deref()),
            ("nightly-", Some("nightly."))
        );
        for (pattern, name, want) in [
            ("nightly-*", "nightly-report", true),
            ("nightly-*", "nightly-", true),
            ("nightly-*", "Nightly-report", false),
            ("nightly-*", "nightly", false),
            ("*-sync", "flaky-sync", true),
            ("*-sync", "flaky-sync2", false),
            ("job-?", "job-1", true),
            ("job-?", "job-12", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("*", "", true),
        ] {
            assert_eq!(
                name_pattern(pattern).unwrap().matches(name),
                want,
                "{pattern} {name}"
            );
        }
        assert_eq!(name_pattern("*x").unwrap().upper(), None);
    }
}
