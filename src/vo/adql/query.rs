//! The query: parsing, then SELECT [DISTINCT] [TOP n] … FROM … [WHERE …]
//! [GROUP BY …] [HAVING …] [ORDER BY …] [OFFSET n] into SQL, with the
//! output columns' names, FIELD metadata and kinds.

use sea_orm::DbBackend;
use sqlparser::ast::{
    Distinct, Expr, GroupByExpr, Ident, JoinConstraint, JoinOperator, LimitClause, OrderByKind,
    OrderBySort, Query, SelectItem, SelectItemQualifiedWildcardKind, SetExpr, Statement,
    TableFactor, TableWithJoins, TopQuantity, Value as Lit,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

use super::expr::{Tr, Ty, Typed, err};
use super::scope::{Scope, Sql};
use super::{AdqlError, ColumnKind, Translated};
use crate::vo::tap_schema::TapTable;
use crate::vo::votable::{DataType, Field};

/// Longest query text accepted.
pub const MAX_QUERY_CHARS: usize = 100_000;
/// Nesting depth the parser allows (deeper queries are refused, not
/// allowed to exhaust the stack).
const RECURSION_LIMIT: usize = 40;

/// Parses one ADQL query.
pub(crate) fn parse(adql: &str) -> Result<Query, AdqlError> {
    if adql.len() > MAX_QUERY_CHARS {
        return err(format!(
            "the query is {} characters long; at most {MAX_QUERY_CHARS} are accepted",
            adql.len()
        ));
    }
    let text = adql.trim().trim_end_matches(';');
    if text.is_empty() {
        return err("the query is empty: write SELECT … FROM …");
    }
    let dialect = GenericDialect {};
    let statements = Parser::new(&dialect)
        .with_recursion_limit(RECURSION_LIMIT)
        .try_with_sql(text)
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| AdqlError::new(format!("ADQL syntax error: {}", parse_message(&e))))?;
    match <[Statement; 1]>::try_from(statements) {
        Ok([Statement::Query(q)]) => Ok(*q),
        Ok(_) => err("only SELECT queries are allowed"),
        Err(v) => err(format!(
            "one query at a time: the text holds {} statements",
            v.len()
        )),
    }
}

fn parse_message(e: &sqlparser::parser::ParserError) -> String {
    use sqlparser::parser::ParserError as P;
    match e {
        P::TokenizerError(m) | P::ParserError(m) => crate::params::cut_long_words(m).into_owned(),
        P::RecursionLimitExceeded => "the query is nested too deeply".into(),
    }
}

/// FROM items: the first table of each, and its joins (table, kind, ON).
type FromItems = Vec<(usize, Vec<(usize, &'static str, Option<Expr>)>)>;

/// A FROM-clause item's SQL, with the ON conditions translated after every
/// table is known.
fn from_clause<'a>(from: &[TableWithJoins], scope: &mut Scope<'a>) -> Result<FromItems, AdqlError> {
    let table = |f: &TableFactor, scope: &mut Scope<'a>| -> Result<usize, AdqlError> {
        match f {
            TableFactor::Table {
                name,
                alias,
                args: None,
                with_hints,
                version: None,
                partitions,
                json_path: None,
                sample: None,
                index_directives,
                ..
            } if with_hints.is_empty() && partitions.is_empty() && index_directives.is_empty() => {
                if let Some(a) = alias
                    && !a.columns.is_empty()
                {
                    return err("column aliases on a table are not supported");
                }
                scope.add(name, alias.as_ref().map(|a| &a.name))
            }
            TableFactor::Derived { .. } => {
                err("subqueries in FROM are not supported; use the tables directly")
            }
            _ => err(format!(
                "\"{}\" is not a table; FROM takes tables, e.g. FROM ivoa.ObsCore AS o JOIN wisecut.dependency AS d ON …",
                crate::params::shown(&f.to_string())
            )),
        }
    };
    let mut out = Vec::new();
    for twj in from {
        let first = table(&twj.relation, scope)?;
        let mut joins = Vec::new();
        for j in &twj.joins {
            if j.global {
                return err("GLOBAL joins are not ADQL");
            }
            let n = table(&j.relation, scope)?;
            let (kind, constraint) = match &j.join_operator {
                JoinOperator::Join(c) | JoinOperator::Inner(c) => ("JOIN", c),
                JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => ("LEFT JOIN", c),
                JoinOperator::CrossJoin(c) => ("CROSS JOIN", c),
                _ => return err("only INNER JOIN, LEFT [OUTER] JOIN and CROSS JOIN are supported"),
            };
            let on = match constraint {
                JoinConstraint::On(e) if kind != "CROSS JOIN" => Some(e.clone()),
                JoinConstraint::None if kind == "CROSS JOIN" => None,
                JoinConstraint::None => {
                    return err(
                        "a JOIN needs ON (e.g. JOIN wisecut.dependency d ON d.parent_id = o.frame_id)",
                    );
                }
                _ => {
                    return err(
                        "write joins with ON conditions; USING and NATURAL are not supported",
                    );
                }
            };
            joins.push((n, kind, on));
        }
        out.push((first, joins));
    }
    Ok(out)
}

fn unsupported_parts(q: &Query) -> Result<(), AdqlError> {
    if q.with.is_some() {
        return err("WITH is not supported");
    }
    if q.fetch.is_some()
        || !q.locks.is_empty()
        || q.for_clause.is_some()
        || q.settings.is_some()
        || q.format_clause.is_some()
        || !q.pipe_operators.is_empty()
    {
        return err(
            "only SELECT … FROM … WHERE … GROUP BY … HAVING … ORDER BY … OFFSET is supported",
        );
    }
    Ok(())
}

/// A non-negative integer literal (TOP, OFFSET, ORDER BY ordinal).
fn whole(e: &Expr) -> Option<u64> {
    match e {
        Expr::Value(v) => match &v.value {
            Lit::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

/// One output column.
struct Out<'a> {
    typed: Typed<'a>,
    name: String,
    alias: Option<Ident>,
}

pub(crate) fn translate_query(
    q: &Query,
    tables: &[TapTable],
    backend: DbBackend,
    maxrec: u64,
) -> Result<Translated, AdqlError> {
    unsupported_parts(q)?;
    let SetExpr::Select(s) = q.body.as_ref() else {
        return err("only a single SELECT is supported (no UNION, INTERSECT, EXCEPT or VALUES)");
    };
    if s.into.is_some()
        || !s.lateral_views.is_empty()
        || s.prewhere.is_some()
        || !s.connect_by.is_empty()
        || !s.cluster_by.is_empty()
        || !s.distribute_by.is_empty()
        || !s.sort_by.is_empty()
        || !s.named_window.is_empty()
        || s.qualify.is_some()
        || s.exclude.is_some()
        || s.value_table_mode.is_some()
        || !s.optimizer_hints.is_empty()
        || s.select_modifiers.is_some()
        || s.flavor != sqlparser::ast::SelectFlavor::Standard
    {
        return err(
            "only SELECT … FROM … WHERE … GROUP BY … HAVING … ORDER BY … OFFSET is supported",
        );
    }
    if s.from.is_empty() {
        return err("a query needs FROM (e.g. SELECT TOP 10 * FROM ivoa.ObsCore)");
    }
    let distinct = match &s.distinct {
        None | Some(Distinct::All) => false,
        Some(Distinct::Distinct) => true,
        Some(Distinct::On(_)) => return err("DISTINCT ON is not ADQL"),
    };
    let top = match &s.top {
        None => None,
        Some(t) => {
            if t.percent || t.with_ties {
                return err("TOP takes a row count (no PERCENT or WITH TIES)");
            }
            match &t.quantity {
                Some(TopQuantity::Constant(n)) => Some(*n),
                Some(TopQuantity::Expr(e)) => Some(whole(e).ok_or_else(|| {
                    AdqlError::new(format!("TOP {e}: TOP takes a whole number of rows"))
                })?),
                None => return err("TOP takes a whole number of rows"),
            }
        }
    };
    let offset = match &q.limit_clause {
        None => None,
        Some(LimitClause::LimitOffset {
            limit: None,
            offset: Some(o),
            limit_by,
        }) if limit_by.is_empty() => Some(whole(&o.value).ok_or_else(|| {
            AdqlError::new(format!(
                "OFFSET {}: OFFSET takes a whole number of rows",
                o.value
            ))
        })?),
        Some(_) => return err("LIMIT is not ADQL: write SELECT TOP n …"),
    };

    let mut scope = Scope::new(tables);
    let from = from_clause(&s.from, &mut scope)?;
    let mut sql = Sql {
        backend,
        values: Vec::new(),
    };
    // Clauses are translated in SQL order so placeholders number upwards.
    // SELECT list first.
    let mut outs: Vec<Out<'_>> = Vec::new();
    {
        let mut tr = Tr {
            scope: &scope,
            sql: &mut sql,
            aggregates: true,
        };
        for item in &s.projection {
            match item {
                SelectItem::UnnamedExpr(e) => {
                    let t = tr.value(e)?;
                    let name = default_name(e, &t);
                    outs.push(Out {
                        typed: t,
                        name,
                        alias: None,
                    });
                }
                SelectItem::ExprWithAlias { expr, alias } => {
                    let t = tr.value(expr)?;
                    outs.push(Out {
                        typed: t,
                        name: alias.value.clone(),
                        alias: Some(alias.clone()),
                    });
                }
                SelectItem::Wildcard(o) => {
                    wildcard_options(o)?;
                    for c in scope.wildcard(None)? {
                        outs.push(column_out(c));
                    }
                }
                SelectItem::QualifiedWildcard(
                    SelectItemQualifiedWildcardKind::ObjectName(n),
                    o,
                ) => {
                    wildcard_options(o)?;
                    for c in scope.wildcard(Some(n))? {
                        outs.push(column_out(c));
                    }
                }
                _ => {
                    return err(
                        "the SELECT list takes columns, expressions with optional AS names, * and t.*",
                    );
                }
            }
        }
    }
    if outs.is_empty() {
        return err("SELECT needs at least one column");
    }
    let mut from_sql = Vec::new();
    let mut where_sql = None;
    let mut group_sql = Vec::new();
    let mut having_sql = None;
    {
        // FROM (relations may bind TAP_SCHEMA rows) and ON conditions.
        for (first, joins) in &from {
            let mut text = scope.relation_sql(*first, &mut sql);
            for (n, kind, on) in joins {
                text.push_str(&format!(" {kind} {}", scope.relation_sql(*n, &mut sql)));
                if let Some(on) = on {
                    let mut tr = Tr {
                        scope: &scope,
                        sql: &mut sql,
                        aggregates: false,
                    };
                    text.push_str(&format!(" ON {}", tr.condition(on)?.sql));
                }
            }
            from_sql.push(text);
        }
        let mut tr = Tr {
            scope: &scope,
            sql: &mut sql,
            aggregates: false,
        };
        if let Some(w) = &s.selection {
            where_sql = Some(tr.condition(w)?.sql);
        }
        match &s.group_by {
            GroupByExpr::Expressions(exprs, mods) if mods.is_empty() => {
                for e in exprs {
                    group_sql.push(group_item(&mut tr, e, &outs)?);
                }
            }
            _ => return err("GROUP BY takes columns or expressions"),
        }
        tr.aggregates = true;
        if let Some(h) = &s.having {
            having_sql = Some(tr.condition(h)?.sql);
        }
    }
    let mut order_sql = Vec::new();
    if let Some(ob) = &q.order_by {
        if ob.interpolate.is_some() {
            return err("ORDER BY takes columns, names from SELECT or ordinals, with ASC or DESC");
        }
        let OrderByKind::Expressions(items) = &ob.kind else {
            return err("ORDER BY ALL is not ADQL");
        };
        let mut tr = Tr {
            scope: &scope,
            sql: &mut sql,
            aggregates: true,
        };
        for item in items {
            if item.with_fill.is_some() || item.options.nulls_first.is_some() {
                return err(
                    "ORDER BY takes columns, names from SELECT or ordinals, with ASC or DESC",
                );
            }
            let key = order_item(&mut tr, &item.expr, &outs)?;
            let dir = match item.options.sort {
                None | Some(OrderBySort::Asc) => "ASC",
                Some(OrderBySort::Desc) => "DESC",
                Some(_) => return err("ORDER BY … USING is not ADQL"),
            };
            order_sql.push(format!("{key} {dir}"));
        }
    }
    // Row limits: the caller may return `limit`; one more row than MAXREC
    // tells it the result overflowed.
    let limit = top.map_or(maxrec, |t| t.min(maxrec));
    let fetch = match top {
        Some(t) if t <= maxrec => t,
        _ => maxrec.saturating_add(1),
    };

    let mut text = String::from("SELECT ");
    if distinct {
        text.push_str("DISTINCT ");
    }
    let mut fields = Vec::new();
    let mut kinds = Vec::new();
    let mut relative_urls = Vec::new();
    let mut used: Vec<String> = Vec::new();
    let mut items = Vec::new();
    for (i, o) in outs.iter().enumerate() {
        let kind = match o.typed.ty {
            Ty::Int => ColumnKind::Int,
            Ty::Float => ColumnKind::Float,
            Ty::Text | Ty::Null => ColumnKind::Text,
            Ty::Bool => return err("a condition cannot be a column of the result"),
        };
        let kind = match &o.typed.col {
            Some(c) if c.column.kind == ColumnKind::Bool => ColumnKind::Bool,
            _ => kind,
        };
        let cast = output_cast(backend, kind, &o.typed.sql);
        items.push(format!("{cast} AS c{i}"));
        let name = unique_name(&o.name, &mut used);
        let field = match &o.typed.col {
            Some(c) => c.column.field(&name),
            None => Field::new(
                name,
                match kind {
                    ColumnKind::Int => DataType::Long,
                    ColumnKind::Float => DataType::Double,
                    ColumnKind::Text => DataType::Char,
                    ColumnKind::Bool => DataType::Boolean,
                },
            ),
        };
        relative_urls.push(o.typed.col.as_ref().is_some_and(|c| c.column.relative_url));
        fields.push(field);
        kinds.push(kind);
    }
    text.push_str(&items.join(", "));
    text.push_str(" FROM ");
    text.push_str(&from_sql.join(", "));
    if let Some(w) = where_sql {
        text.push_str(&format!(" WHERE {w}"));
    }
    if !group_sql.is_empty() {
        text.push_str(&format!(" GROUP BY {}", group_sql.join(", ")));
    }
    if let Some(h) = having_sql {
        text.push_str(&format!(" HAVING {h}"));
    }
    if !order_sql.is_empty() {
        text.push_str(&format!(" ORDER BY {}", order_sql.join(", ")));
    }
    let f = sql.bind(fetch.min(i64::MAX as u64) as i64);
    text.push_str(&format!(" LIMIT {f}"));
    if let Some(o) = offset {
        let o = sql.bind(o.min(i64::MAX as u64) as i64);
        text.push_str(&format!(" OFFSET {o}"));
    }
    Ok(Translated {
        sql: text,
        values: sql.values,
        fields,
        kinds,
        relative_urls,
        limit,
    })
}

fn wildcard_options(o: &sqlparser::ast::WildcardAdditionalOptions) -> Result<(), AdqlError> {
    if o.opt_ilike.is_some()
        || o.opt_exclude.is_some()
        || o.opt_except.is_some()
        || o.opt_replace.is_some()
        || o.opt_rename.is_some()
        || o.opt_alias.is_some()
    {
        return err("* takes no options in ADQL");
    }
    Ok(())
}

fn column_out(c: super::scope::ColRef<'_>) -> Out<'_> {
    let ty = match c.column.kind {
        ColumnKind::Int | ColumnKind::Bool => Ty::Int,
        ColumnKind::Float => Ty::Float,
        ColumnKind::Text => Ty::Text,
    };
    let mut t = Typed::new(c.sql.clone(), ty);
    let name = c.column.name.clone();
    t.col = Some(c);
    Out {
        typed: t,
        name,
        alias: None,
    }
}

/// The name of an unnamed output column: the column's, or the function's
/// in lower case, or `expr`.
fn default_name(e: &Expr, t: &Typed<'_>) -> String {
    if let Some(c) = &t.col {
        return c.column.name.clone();
    }
    match e {
        Expr::Function(f) => f.name.to_string().to_ascii_lowercase(),
        Expr::Nested(x) => default_name(x, t),
        _ => "expr".into(),
    }
}

fn unique_name(name: &str, used: &mut Vec<String>) -> String {
    let mut candidate = name.to_owned();
    let mut n = 2;
    while used.iter().any(|u| u.eq_ignore_ascii_case(&candidate)) {
        candidate = format!("{name}_{n}");
        n += 1;
    }
    used.push(candidate.clone());
    candidate
}

/// Output values are cast to what the reader expects: PostgreSQL returns
/// NUMERIC for SUM and AVG of integers, and SQLite columns hold any type.
fn output_cast(backend: DbBackend, kind: ColumnKind, sql: &str) -> String {
    match (backend, kind) {
        (DbBackend::Postgres, ColumnKind::Int | ColumnKind::Bool) => {
            format!("CAST({sql} AS BIGINT)")
        }
        (DbBackend::Postgres, ColumnKind::Float) => format!("CAST({sql} AS DOUBLE PRECISION)"),
        (DbBackend::Postgres, ColumnKind::Text) => format!("CAST({sql} AS TEXT)"),
        (_, ColumnKind::Int | ColumnKind::Bool) => format!("CAST({sql} AS INTEGER)"),
        (_, ColumnKind::Float) => format!("CAST({sql} AS REAL)"),
        (_, ColumnKind::Text) => sql.to_owned(),
    }
}

/// An unqualified identifier naming a SELECT alias.
fn alias_index(e: &Expr, outs: &[Out<'_>]) -> Option<usize> {
    let Expr::Identifier(id) = e else { return None };
    outs.iter().position(|o| {
        o.alias.as_ref().is_some_and(|a| {
            if id.quote_style.is_some() {
                a.value == id.value
            } else {
                a.value.eq_ignore_ascii_case(&id.value)
            }
        })
    })
}

fn group_item(tr: &mut Tr<'_, '_>, e: &Expr, outs: &[Out<'_>]) -> Result<String, AdqlError> {
    if let Some(n) = whole(e) {
        return match outs.get((n as usize).wrapping_sub(1)) {
            Some(o) if n >= 1 => Ok(o.typed.sql.clone()),
            _ => err(format!(
                "GROUP BY {n}: there are {} output columns",
                outs.len()
            )),
        };
    }
    match tr.value(e) {
        Ok(t) => Ok(t.sql),
        Err(first) => match alias_index(e, outs) {
            Some(i) => Ok(outs[i].typed.sql.clone()),
            None => Err(first),
        },
    }
}

fn order_item(tr: &mut Tr<'_, '_>, e: &Expr, outs: &[Out<'_>]) -> Result<String, AdqlError> {
    if let Some(n) = whole(e) {
        if n >= 1 && (n as usize) <= outs.len() {
            return Ok(format!("{n}"));
        }
        return err(format!(
            "ORDER BY {n}: there are {} output columns",
            outs.len()
        ));
    }
    if let Some(i) = alias_index(e, outs) {
        return Ok(format!("c{i}"));
    }
    Ok(tr.value(e)?.sql)
}
