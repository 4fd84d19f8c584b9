//! Names: which published table a FROM item is, which column an identifier
//! is, and the SQL builder that numbers bound parameters per backend.
//!
//! ADQL identifiers are case-insensitive unless double-quoted; quoted ones
//! must match the published spelling exactly. Only the published names are
//! ever compared, and only the translator's own aliases reach SQL.

use sea_orm::{DbBackend, Value};
use sqlparser::ast::{Ident, ObjectName, ObjectNamePart};

use super::AdqlError;
use crate::vo::tap_schema::{Relation, TapColumn, TapTable};

/// SQL text under construction with its bound values.
pub(crate) struct Sql {
    pub backend: DbBackend,
    pub values: Vec<Value>,
}

impl Sql {
    /// Binds a value and returns its placeholder.
    pub fn bind(&mut self, v: impl Into<Value>) -> String {
        self.values.push(v.into());
        match self.backend {
            DbBackend::Postgres => format!("${}", self.values.len()),
            _ => format!("?{}", self.values.len()),
        }
    }

    /// Binds a number.
    pub fn num(&mut self, v: f64) -> String {
        self.bind(Value::Double(Some(v)))
    }

    pub fn pg(&self) -> bool {
        self.backend == DbBackend::Postgres
    }
}

/// One table of the FROM clause.
pub(crate) struct Instance<'a> {
    pub table: &'a TapTable,
    /// The ADQL alias (or the table name when none was given).
    pub alias: Ident,
    /// Whether the client wrote an alias.
    pub aliased: bool,
    /// The SQL alias (`t0`, `t1`, …).
    pub sql_alias: String,
}

/// A resolved column.
#[derive(Clone)]
pub(crate) struct ColRef<'a> {
    pub instance: usize,
    pub column: &'a TapColumn,
    pub sql: String,
}

/// Every table a FROM clause names.
pub(crate) struct Scope<'a> {
    pub tables: &'a [TapTable],
    pub instances: Vec<Instance<'a>>,
}

fn ident_eq(id: &Ident, published: &str) -> bool {
    if id.quote_style.is_some() {
        id.value == published
    } else {
        id.value.eq_ignore_ascii_case(published)
    }
}

fn parts(name: &ObjectName) -> Result<Vec<&Ident>, AdqlError> {
    name.0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => Ok(i),
            ObjectNamePart::Function(_) => {
                Err(AdqlError::new(format!("{name} is not a table name")))
            }
        })
        .collect()
}

impl<'a> Scope<'a> {
    pub fn new(tables: &'a [TapTable]) -> Self {
        Self {
            tables,
            instances: Vec::new(),
        }
    }

    fn table_list(&self) -> String {
        self.tables
            .iter()
            .map(TapTable::qualified_name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Resolves a table name (`schema.table` or a unique `table`) and adds
    /// it to the scope under `alias`.
    pub fn add(&mut self, name: &ObjectName, alias: Option<&Ident>) -> Result<usize, AdqlError> {
        let p = parts(name)?;
        let found: Vec<&'a TapTable> = match p[..] {
            [schema, table] => self
                .tables
                .iter()
                .filter(|t| ident_eq(schema, &t.schema) && ident_eq(table, &t.name))
                .collect(),
            [table] => self
                .tables
                .iter()
                .filter(|t| ident_eq(table, &t.name))
                .collect(),
            _ => vec![],
        };
        let table = match found[..] {
            [t] => t,
            [] => {
                return Err(AdqlError::new(format!(
                    "unknown table \"{name}\"; tables: {}",
                    self.table_list()
                )));
            }
            _ => {
                return Err(AdqlError::new(format!(
                    "table \"{name}\" is ambiguous: write it with its schema ({})",
                    found
                        .iter()
                        .map(|t| t.qualified_name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        };
        let (alias, aliased) = match alias {
            Some(a) => (a.clone(), true),
            None => (
                Ident {
                    value: table.name.clone(),
                    quote_style: Some('"'),
                    span: sqlparser::tokenizer::Span::empty(),
                },
                false,
            ),
        };
        let clash = self.instances.iter().any(|i| {
            i.alias.value.eq_ignore_ascii_case(&alias.value)
                && (i.aliased || aliased || i.table.schema == table.schema)
        });
        if clash {
            return Err(AdqlError::new(format!(
                "the name \"{}\" is used twice in FROM: give each table its own alias",
                alias.value
            )));
        }
        let n = self.instances.len();
        self.instances.push(Instance {
            table,
            alias,
            aliased,
            sql_alias: format!("t{n}"),
        });
        Ok(n)
    }

    /// The SQL of FROM item `n`: `relation AS tN`.
    pub fn relation_sql(&self, n: usize, sql: &mut Sql) -> String {
        let inst = &self.instances[n];
        let rel = match &inst.table.relation {
            Relation::Table(t) => t.clone(),
            Relation::Subquery(q) => format!("({q})"),
            Relation::Scoped(q) => format!("({q})"),
            Relation::Rows(rows) => {
                let cols = &inst.table.columns;
                if rows.is_empty() {
                    let nulls: Vec<String> =
                        cols.iter().map(|c| format!("NULL AS {}", c.sql)).collect();
                    format!("(SELECT {} WHERE 1 = 0)", nulls.join(", "))
                } else {
                    let selects: Vec<String> = rows
                        .iter()
                        .map(|r| {
                            let items: Vec<String> = r
                                .iter()
                                .zip(cols)
                                .map(|(v, c)| format!("{} AS {}", sql.bind(v.clone()), c.sql))
                                .collect();
                            format!("SELECT {}", items.join(", "))
                        })
                        .collect();
                    format!("({})", selects.join(" UNION ALL "))
                }
            }
        };
        format!("{rel} AS {}", inst.sql_alias)
    }

    fn instance_matches(&self, i: &Instance<'_>, qualifier: &[&Ident]) -> bool {
        match qualifier {
            [t] => {
                if i.aliased {
                    ident_eq(t, &i.alias.value)
                        || (t.quote_style.is_none()
                            && i.alias.quote_style.is_none()
                            && t.value.eq_ignore_ascii_case(&i.alias.value))
                } else {
                    ident_eq(t, &i.table.name)
                }
            }
            [s, t] => !i.aliased && ident_eq(s, &i.table.schema) && ident_eq(t, &i.table.name),
            _ => false,
        }
    }

    /// Resolves `col`, `t.col` or `schema.table.col`.
    pub fn column(&self, idents: &[Ident]) -> Result<ColRef<'a>, AdqlError> {
        let Some((col, qualifier)) = idents.split_last() else {
            return Err(AdqlError::new("empty column name"));
        };
        let qualifier: Vec<&Ident> = qualifier.iter().collect();
        let written = idents
            .iter()
            .map(|i| i.value.as_str())
            .collect::<Vec<_>>()
            .join(".");
        let candidates: Vec<usize> = (0..self.instances.len())
            .filter(|n| {
                qualifier.is_empty() || self.instance_matches(&self.instances[*n], &qualifier)
            })
            .collect();
        if candidates.is_empty() {
            let names: Vec<String> = self
                .instances
                .iter()
                .map(|i| {
                    if i.aliased {
                        format!("{} ({})", i.alias.value, i.table.qualified_name())
                    } else {
                        i.table.qualified_name()
                    }
                })
                .collect();
            return Err(AdqlError::new(format!(
                "\"{written}\": no table called {} in FROM; tables in FROM: {}",
                qualifier
                    .iter()
                    .map(|i| i.value.as_str())
                    .collect::<Vec<_>>()
                    .join("."),
                names.join(", ")
            )));
        }
        let mut hits = Vec::new();
        for n in &candidates {
            let t = self.instances[*n].table;
            if let Some(c) = t.columns.iter().find(|c| ident_eq(col, &c.name)) {
                hits.push((*n, c));
            }
        }
        match hits[..] {
            [(n, c)] => Ok(ColRef {
                instance: n,
                column: c,
                sql: format!("{}.{}", self.instances[n].sql_alias, c.sql),
            }),
            [] => {
                let lists: Vec<String> = candidates
                    .iter()
                    .map(|n| {
                        let t = self.instances[*n].table;
                        format!(
                            "columns of {}: {}",
                            t.qualified_name(),
                            t.columns
                                .iter()
                                .map(|c| c.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    })
                    .collect();
                Err(AdqlError::new(format!(
                    "unknown column \"{written}\"; {}",
                    lists.join("; ")
                )))
            }
            _ => Err(AdqlError::new(format!(
                "column \"{written}\" is ambiguous: it is in {}; qualify it with the table name or alias",
                hits.iter()
                    .map(|(n, _)| self.instances[*n].table.qualified_name())
                    .collect::<Vec<_>>()
                    .join(" and ")
            ))),
        }
    }

    /// `(instance, column)` pairs of `*` or of `t.*`.
    pub fn wildcard(&self, qualifier: Option<&ObjectName>) -> Result<Vec<ColRef<'a>>, AdqlError> {
        let which: Vec<usize> = match qualifier {
            None => (0..self.instances.len()).collect(),
            Some(name) => {
                let p = parts(name)?;
                let v: Vec<usize> = (0..self.instances.len())
                    .filter(|n| self.instance_matches(&self.instances[*n], &p))
                    .collect();
                if v.is_empty() {
                    return Err(AdqlError::new(format!(
                        "\"{name}.*\": no table called {name} in FROM"
                    )));
                }
                v
            }
        };
        Ok(which
            .into_iter()
            .flat_map(|n| {
                let inst = &self.instances[n];
                inst.table.columns.iter().map(move |c| ColRef {
                    instance: n,
                    column: c,
                    sql: format!("{}.{}", inst.sql_alias, c.sql),
                })
            })
            .collect())
    }
}
