//! Pieces for queries built at run time from optional filters: `$N` numbering, binding, paging.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{StoreResult, parse_uuid};

/// A value bound to a dynamically built query.
#[derive(Debug, Clone)]
pub(crate) enum Bind {
    Text(String),
    Time(DateTime<Utc>),
    Int(i64),
}

/// Binds every value of `binds` to the query `q`, in order.
macro_rules! bind_all {
    ($q:expr, $binds:expr) => {{
        let mut q = $q;
        for b in $binds {
            q = match b {
                $crate::query::Bind::Text(s) => q.bind(s.clone()),
                $crate::query::Bind::Time(t) => q.bind(*t),
                $crate::query::Bind::Int(i) => q.bind(*i),
            };
        }
        q
    }};
}
pub(crate) use bind_all;

/// A `WHERE` clause built from optional filters, numbering `$N` as it goes.
pub(crate) struct Where {
    pub(crate) clauses: Vec<String>,
    pub(crate) binds: Vec<Bind>,
}

impl Where {
    pub(crate) fn tenant(tenant: Uuid) -> Where {
        Where { clauses: vec!["tenant_id = $1".into()], binds: vec![Bind::Text(tenant.to_string())] }
    }

    pub(crate) fn push(&mut self, template: &str, bind: Bind) {
        self.binds.push(bind);
        self.clauses.push(template.replace('?', &format!("${}", self.binds.len())));
    }

    pub(crate) fn text(&mut self, template: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.push(template, Bind::Text(v.to_owned()));
        }
    }

    pub(crate) fn time(&mut self, template: &str, value: Option<DateTime<Utc>>) {
        if let Some(v) = value {
            self.push(template, Bind::Time(v));
        }
    }

    /// `column` is true (or false), when asked.
    pub(crate) fn flag(&mut self, column: &str, value: Option<bool>) {
        if let Some(v) = value {
            self.clauses.push(format!("{column} = {}", if v { "TRUE" } else { "FALSE" }));
        }
    }

    pub(crate) fn sql(&self) -> String {
        self.clauses.join(" AND ")
    }

    /// `LIMIT $a OFFSET $b` with both bound.
    pub(crate) fn page(&mut self, limit: i64, offset: i64) -> String {
        self.binds.push(Bind::Int(limit));
        self.binds.push(Bind::Int(offset));
        format!("LIMIT ${} OFFSET ${}", self.binds.len() - 1, self.binds.len())
    }
}

/// Runs `SELECT {columns} FROM {table} WHERE … {tail}` and the matching `COUNT(*)`.
macro_rules! fetch_page {
    ($store:expr, $row:ty, $columns:expr, $table:expr, $filter:expr, $order:expr, $limit:expr, $offset:expr) => {{
        let mut filter = $filter;
        let count_sql = format!("SELECT COUNT(*) FROM {} WHERE {}", $table, filter.sql());
        let count_binds = filter.binds.clone();
        let page = filter.page($limit, $offset);
        let sql = format!("SELECT {} FROM {} WHERE {} ORDER BY {} {}", $columns, $table, filter.sql(), $order, page);
        let rows: Vec<$row> = on_pool!($store.db(), pool => {
            bind_all!(sqlx::query_as::<_, $row>(sqlx::AssertSqlSafe(sql.as_str())), &filter.binds).fetch_all(pool).await
        })?;
        let total: i64 = on_pool!($store.db(), pool => {
            bind_all!(sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(count_sql.as_str())), &count_binds).fetch_one(pool).await
        })?;
        (rows, total)
    }};
}
pub(crate) use fetch_page;

pub(crate) fn opt_uuid(s: Option<String>) -> StoreResult<Option<Uuid>> {
    s.as_deref().map(parse_uuid).transpose()
}

pub(crate) fn order(column: &str, descending: bool) -> String {
    format!("{column} {dir}, id {dir}", dir = if descending { "DESC" } else { "ASC" })
}
