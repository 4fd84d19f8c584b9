//! Table browsing for the dbviewer and for exports: one query model over
//! every table (frames of a class, SourceLists, the sources of one list,
//! AssociateLists, the associations of one list), with the Astro-WISE query
//! operators, sorting on any column and server-side paging.
//!
//! A condition is written `column operator value`, e.g. `filter = r`,
//! `exptime > 100`, `filename like red_%`, `mjd_obs between 61000,61010`,
//! `date_obs not between 2026-03-01,2026-03-02 12:00:00`. Operators: `<`,
//! `<=`, `>`, `>=`, `=`, `!=`, `like`, `not like` (`%` and `_` wildcards,
//! case-insensitive), `between a,b`, `not between a,b` (inclusive). Dates are
//! `yyyy-mm-dd[ hh:mm:ss]` (UTC). Conditions combine with AND.
//!
//! Column names come from a fixed list per table and are the only text that
//! enters SQL; every value is a bound parameter, so a value such as
//! `' OR 1=1 --` is just a string that matches nothing.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use sea_orm::{ConnectionTrait, QueryResult, Value};

use super::{Catalog, CatalogError};
use crate::ids::{Alid, ObjectId, Slid};
use crate::model::FrameClass;

/// The type of a column, which decides how values are parsed and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    /// 64-bit integer.
    Int,
    /// Double.
    Float,
    /// Text.
    Text,
    /// UTC timestamp.
    Time,
    /// Boolean (stored as an integer 0/1).
    Bool,
}

/// One browsable column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Name in URLs, forms and exports.
    pub name: &'static str,
    /// SQL expression (a qualified column of the table's FROM clause).
    pub sql: &'static str,
    /// Type.
    pub ty: ColType,
    /// Unit, for headers and VOTable later (empty when none).
    pub unit: &'static str,
    /// Shown when the user has not chosen columns.
    pub default: bool,
    /// Has an index and is never NULL (sorting and filtering on it stay fast
    /// on big tables).
    pub indexed: bool,
}

const fn col(
    name: &'static str,
    sql: &'static str,
    ty: ColType,
    unit: &'static str,
    default: bool,
    indexed: bool,
) -> Column {
    Column {
        name,
        sql,
        ty,
        unit,
        default,
        indexed,
    }
}

use ColType::{Bool, Float, Int, Text, Time};

const FRAME_COLUMNS: &[Column] = &[
    col("object_id", "f.object_id", Int, "", true, true),
    col("filename", "f.filename", Text, "", true, true),
    col("filter", "f.filter", Text, "", true, false),
    col("chip", "f.chip", Text, "", true, false),
    col("object", "f.object", Text, "", false, false),
    col("date_obs", "f.date_obs", Time, "", true, false),
    col("mjd_obs", "f.mjd_obs", Float, "d", false, false),
    col("exptime", "f.exptime", Float, "s", true, false),
    col("ra", "f.ra_center", Float, "deg", true, false),
    col("dec", "f.dec_center", Float, "deg", true, false),
    col("naxis1", "f.naxis1", Int, "pixel", false, false),
    col("naxis2", "f.naxis2", Int, "pixel", false, false),
    col("bitpix", "f.bitpix", Int, "", false, false),
    col("zeropoint", "f.zeropoint", Float, "mag", false, false),
    col("seeing", "f.seeing", Float, "arcsec", false, false),
    col("instrument", "f.instrument", Text, "", false, false),
    col("compressed", "f.compressed", Bool, "", false, false),
    col("file_size", "f.file_size", Int, "byte", false, false),
    col(
        "timestamp_start",
        "f.timestamp_start",
        Time,
        "",
        false,
        false,
    ),
    col("timestamp_end", "f.timestamp_end", Time, "", false, false),
    col("creation_date", "t.creation_date", Time, "", true, false),
    col("is_valid", "t.is_valid", Int, "", true, false),
    col("quality_flags", "t.quality_flags", Int, "", false, false),
    col("process_status", "t.process_status", Int, "", false, false),
    col("creator", "t.creator", Text, "", false, false),
    col("project", "t.project", Text, "", false, false),
];

const SOURCE_LIST_COLUMNS: &[Column] = &[
    col("slid", "s.slid", Int, "", true, true),
    col("object_id", "s.object_id", Int, "", false, true),
    col("name", "s.name", Text, "", true, false),
    col("frame_id", "s.frame_id", Int, "", true, false),
    col("filter", "s.filter", Text, "", true, false),
    col("chip", "s.chip", Text, "", true, false),
    col("n_sources", "s.n_sources", Int, "", true, false),
    col("creation_date", "t.creation_date", Time, "", true, false),
    col("is_valid", "t.is_valid", Int, "", false, false),
    col("creator", "t.creator", Text, "", false, false),
];

const SOURCE_COLUMNS: &[Column] = &[
    col("slid", "s.slid", Int, "", false, true),
    col("sid", "s.sid", Int, "", true, true),
    col("ra", "s.ra", Float, "deg", true, false),
    col("dec", "s.dec", Float, "deg", true, false),
    col("x", "s.x", Float, "pixel", true, false),
    col("y", "s.y", Float, "pixel", true, false),
    col("mag_auto", "s.mag_auto", Float, "mag", true, false),
    col("magerr_auto", "s.magerr_auto", Float, "mag", true, false),
    col("flux_auto", "s.flux_auto", Float, "adu", false, false),
    col("fwhm", "s.fwhm", Float, "pixel", true, false),
    col("a", "s.a", Float, "pixel", false, false),
    col("b", "s.b", Float, "pixel", false, false),
    col("theta", "s.theta", Float, "deg", false, false),
    col("class_star", "s.class_star", Float, "", true, false),
    col("flags", "s.flags", Int, "", true, false),
];

const ASSOCIATE_LIST_COLUMNS: &[Column] = &[
    col("alid", "a.alid", Int, "", true, true),
    col("object_id", "a.object_id", Int, "", false, true),
    col("name", "a.name", Text, "", true, false),
    col("assoc_type", "a.assoc_type", Text, "", true, false),
    col(
        "search_distance",
        "a.search_distance",
        Float,
        "arcsec",
        true,
        false,
    ),
    col("n_associations", "a.n_associations", Int, "", true, false),
    col("n_members", "a.n_members", Int, "", true, false),
    col("creation_date", "t.creation_date", Time, "", true, false),
    col("is_valid", "t.is_valid", Int, "", false, false),
];

const ASSOCIATION_COLUMNS: &[Column] = &[
    col("alid", "a.alid", Int, "", false, true),
    col("aid", "a.aid", Int, "", true, true),
    col("slid", "a.slid", Int, "", true, true),
    col("sid", "a.sid", Int, "", true, true),
    col("flag", "a.flag", Int, "", true, false),
    // The member's position, so an exported AssociateList can be plotted
    // and crossmatched (TOPCAT, Aladin) without a second table.
    col("ra", "s.ra", Float, "deg", true, false),
    col("dec", "s.dec", Float, "deg", true, false),
    col("mag_auto", "s.mag_auto", Float, "mag", true, false),
];

/// A browsable table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Frames of one class.
    Frames(FrameClass),
    /// All SourceLists.
    SourceLists,
    /// The sources of one SourceList.
    Sources(Slid),
    /// All AssociateLists.
    AssociateLists,
    /// The associations of one AssociateList.
    Associations(Alid),
}

impl Table {
    /// The columns, in display order.
    pub fn columns(&self) -> &'static [Column] {
        match self {
            Self::Frames(_) => FRAME_COLUMNS,
            Self::SourceLists => SOURCE_LIST_COLUMNS,
            Self::Sources(_) => SOURCE_COLUMNS,
            Self::AssociateLists => ASSOCIATE_LIST_COLUMNS,
            Self::Associations(_) => ASSOCIATION_COLUMNS,
        }
    }

    /// The column called `name`, or an error listing the valid names.
    pub fn column(&self, name: &str) -> Result<&'static Column, BrowseError> {
        let name = name.trim().to_ascii_lowercase();
        self.columns()
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| BrowseError {
                param: "column",
                message: format!(
                    "{name:?} is not a column of this table; valid columns: {}",
                    self.columns()
                        .iter()
                        .map(|c| c.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
    }

    /// The RA and Dec columns of tables with positions (a frame's centre, a
    /// source's position), for the cone search.
    pub fn position(&self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::Frames(_) => Some(("ra", "dec")),
            Self::Sources(_) => Some(("ra", "dec")),
            Self::Associations(_) => Some(("ra", "dec")),
            _ => None,
        }
    }

    /// A title for pages and file names.
    pub fn title(&self) -> String {
        match self {
            Self::Frames(c) => c.name().to_owned(),
            Self::SourceLists => "SourceList".into(),
            Self::Sources(s) => format!("Sources of SourceList SLID {s}"),
            Self::AssociateLists => "AssociateList".into(),
            Self::Associations(a) => format!("Associations of AssociateList ALID {a}"),
        }
    }

    /// The default sort: the table's key, ascending.
    pub fn key(&self) -> &'static Column {
        &self.columns()[match self {
            Self::Sources(_) => 1,
            Self::Associations(_) => 1,
            _ => 0,
        }]
    }

    /// FROM clause and the fixed conditions (with their values).
    fn from(&self) -> (&'static str, Option<(&'static str, Value)>) {
        match self {
            Self::Frames(c) => (
                "frame f JOIN process_target t ON t.object_id = f.object_id",
                Some(("f.frame_class", c.name().into())),
            ),
            Self::SourceLists => (
                "source_list s JOIN process_target t ON t.object_id = s.object_id",
                None,
            ),
            Self::Sources(slid) => ("source s", Some(("s.slid", slid.0.into()))),
            Self::AssociateLists => (
                "associate_list a JOIN process_target t ON t.object_id = a.object_id",
                None,
            ),
            Self::Associations(alid) => (
                "association a LEFT JOIN source s ON s.slid = a.slid AND s.sid = a.sid",
                Some(("a.alid", alid.0.into())),
            ),
        }
    }
}

/// A query operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `like` (case-insensitive, `%` and `_`)
    Like,
    /// `not like`
    NotLike,
    /// `between a,b` (inclusive)
    Between,
    /// `not between a,b`
    NotBetween,
}

impl Op {
    /// Operators as written, longest first (so `not like` wins over `like`
    /// and `<=` over `<`).
    pub const SPELLINGS: &'static [(&'static str, Op)] = &[
        ("not between", Op::NotBetween),
        ("not like", Op::NotLike),
        ("between", Op::Between),
        ("like", Op::Like),
        ("!=", Op::Ne),
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("<", Op::Lt),
        (">", Op::Gt),
        ("=", Op::Eq),
    ];

    /// How the operator is written.
    pub fn as_str(self) -> &'static str {
        Self::SPELLINGS
            .iter()
            .find(|(_, o)| *o == self)
            .map(|(s, _)| *s)
            .unwrap_or("=")
    }

    fn allowed() -> String {
        Self::SPELLINGS
            .iter()
            .map(|(s, _)| *s)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A rejected query part: which parameter and why, with the allowed values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{param}: {message}")]
pub struct BrowseError {
    /// The request parameter at fault.
    pub param: &'static str,
    /// What is wrong and what is allowed.
    pub message: String,
}

fn bad(param: &'static str, message: impl Into<String>) -> BrowseError {
    BrowseError {
        param,
        message: message.into(),
    }
}

/// One parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The column.
    pub column: &'static Column,
    /// The operator.
    pub op: Op,
    /// One value, or two for the `between` forms.
    pub values: Vec<Value>,
    /// The condition as the user wrote it (normalised), for forms and links.
    pub text: String,
}

/// Parses `column operator value` for `table`.
pub fn parse_condition(table: &Table, text: &str) -> Result<Condition, BrowseError> {
    let t = text.trim();
    let name_end = t
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(t.len());
    if name_end == 0 {
        return Err(bad(
            "q",
            format!("{t:?}: a condition starts with a column name, e.g. \"filter = r\""),
        ));
    }
    // The request parameter at fault is `q`, whatever part of it is.
    let column = table
        .column(&t[..name_end])
        .map_err(|e| bad("q", e.message))?;
    let rest = t[name_end..].trim_start();
    let lower = rest.to_ascii_lowercase();
    let (spelling, op) = Op::SPELLINGS
        .iter()
        .find(|(s, _)| {
            lower.starts_with(s)
                && (!s.chars().all(|c| c.is_ascii_alphabetic() || c == ' ')
                    || lower[s.len()..].starts_with(' '))
        })
        .copied()
        .ok_or_else(|| {
            bad(
                "q",
                format!(
                    "{t:?}: unknown operator after {}; allowed: {}",
                    column.name,
                    Op::allowed()
                ),
            )
        })?;
    let value = rest[spelling.len()..].trim();
    let values = match op {
        Op::Between | Op::NotBetween => {
            let parts: Vec<&str> = value.split(',').map(str::trim).collect();
            if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
                // SQL's `between 90 and 110` is the usual slip: offer the
                // condition as it must be written (ASCII lowercasing keeps
                // byte offsets, so `at` indexes `value` too).
                let example = match value.to_ascii_lowercase().find(" and ") {
                    Some(at) if parts.len() == 1 => format!(
                        "write \"{} {} {},{}\"",
                        column.name,
                        op.as_str(),
                        value[..at].trim(),
                        value[at + 5..].trim()
                    ),
                    _ => format!("e.g. \"{} {} a,b\"", column.name, op.as_str()),
                };
                return Err(bad(
                    "q",
                    format!(
                        "{t:?}: {} needs two values separated by a comma; {example}",
                        op.as_str(),
                    ),
                ));
            }
            vec![typed(column, parts[0], t)?, typed(column, parts[1], t)?]
        }
        Op::Like | Op::NotLike => {
            if value.is_empty() {
                return Err(bad("q", format!("{t:?}: {} needs a pattern", op.as_str())));
            }
            // Patterns match the text form of any column.
            vec![Value::from(value.to_lowercase())]
        }
        _ => {
            if value.is_empty() {
                return Err(bad("q", format!("{t:?}: missing value")));
            }
            vec![typed(column, value, t)?]
        }
    };
    Ok(Condition {
        column,
        op,
        values,
        text: format!("{} {} {}", column.name, op.as_str(), value),
    })
}

/// Parses a value for a column's type.
fn typed(column: &Column, v: &str, whole: &str) -> Result<Value, BrowseError> {
    let err = |what: &str| {
        bad(
            "q",
            format!("{whole:?}: {v:?} is not {what} (column {})", column.name),
        )
    };
    Ok(match column.ty {
        Int => v
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| err("an integer"))?,
        Float => v
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Value::from)
            .ok_or_else(|| err("a number"))?,
        Bool => Value::from(
            crate::params::flag::parse_flag(v).map_err(|_| err("a boolean (true/false)"))?,
        ),
        Time => Value::from(parse_time(v).ok_or_else(|| err("a date yyyy-mm-dd[ hh:mm:ss]"))?),
        Text => Value::from(v.to_owned()),
    })
}

/// `yyyy-mm-dd`, `yyyy-mm-dd hh:mm[:ss]` or with a `T`, as UTC.
pub fn parse_time(v: &str) -> Option<DateTime<Utc>> {
    let v = v.trim().replace('T', " ");
    for f in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(&v, f) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(&v, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

/// Page sizes offered.
pub const PAGE_SIZES: &[u64] = &[10, 25, 50, 100, 250, 1000];

/// A whole query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Conditions, combined with AND.
    pub conditions: Vec<Condition>,
    /// Sort column and direction.
    pub sort: (&'static Column, Dir),
    /// 1-based page number.
    pub page: u64,
    /// Rows per page.
    pub page_size: u64,
    /// Only rows whose position lies within this cone.
    pub cone: Option<Cone>,
}

/// A cone on the sky: centre and radius in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cone {
    /// Centre RA.
    pub ra: f64,
    /// Centre Dec.
    pub dec: f64,
    /// Radius.
    pub radius: f64,
}

/// Most rows a cone query may have to examine (the candidates inside the
/// cone's RA/Dec box that meet the other conditions); beyond it the query is
/// refused with a message rather than silently cut.
pub const CONE_CANDIDATES: u64 = 200_000;

impl Cone {
    /// SQL conditions for the cone's RA/Dec box (a superset of the cone),
    /// with values appended to `values`.
    fn box_sql(&self, ra: &str, dec: &str, values: &mut Vec<Value>) -> Vec<String> {
        let mut p = |v: f64| {
            values.push(v.into());
            format!("${}", values.len())
        };
        let mut out = vec![format!(
            "{dec} BETWEEN {} AND {}",
            p(self.dec - self.radius),
            p(self.dec + self.radius)
        )];
        let far = (self.dec.abs() + self.radius).min(90.0);
        if far < 89.0 {
            let dra = self.radius / far.to_radians().cos();
            if dra < 180.0 {
                let (lo, hi) = (self.ra - dra, self.ra + dra);
                if lo < 0.0 {
                    out.push(format!("({ra} >= {} OR {ra} <= {})", p(lo + 360.0), p(hi)));
                } else if hi >= 360.0 {
                    out.push(format!("({ra} >= {} OR {ra} <= {})", p(lo), p(hi - 360.0)));
                } else {
                    out.push(format!("{ra} BETWEEN {} AND {}", p(lo), p(hi)));
                }
            }
        }
        out
    }
}

impl Query {
    /// The default query of a table: no conditions, sorted by key, page 1.
    pub fn new(table: &Table) -> Self {
        Self {
            conditions: Vec::new(),
            sort: (table.key(), Dir::Asc),
            page: 1,
            page_size: 50,
            cone: None,
        }
    }
}

/// One cell of a result.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// No value.
    Null,
    /// An integer.
    Int(i64),
    /// A number.
    Float(f64),
    /// Text.
    Text(String),
    /// A timestamp.
    Time(DateTime<Utc>),
    /// A flag.
    Bool(bool),
}

impl Cell {
    /// Text for display and CSV: numbers as Rust prints them (shortest
    /// round-trip), times as `yyyy-mm-dd hh:mm:ss`.
    pub fn display(&self) -> String {
        match self {
            Cell::Null => String::new(),
            Cell::Int(i) => i.to_string(),
            Cell::Float(f) => f.to_string(),
            Cell::Text(s) => s.clone(),
            Cell::Time(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
            Cell::Bool(b) => b.to_string(),
        }
    }

    /// The value as JSON.
    pub fn json(&self) -> serde_json::Value {
        match self {
            Cell::Null => serde_json::Value::Null,
            Cell::Int(i) => (*i).into(),
            Cell::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Cell::Text(s) => s.clone().into(),
            Cell::Time(t) => t.to_rfc3339().into(),
            Cell::Bool(b) => (*b).into(),
        }
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Rows matching the conditions (all pages).
    pub total: u64,
    /// The rows of this page, one cell per column of the table (all columns,
    /// in `Table::columns` order; views choose which to show).
    pub rows: Vec<Vec<Cell>>,
}

/// The SQL for a condition, with its values appended to `values`.
fn condition_sql(c: &Condition, values: &mut Vec<Value>) -> String {
    let mut p = |v: &Value| {
        values.push(v.clone());
        format!("${}", values.len())
    };
    let col = c.column.sql;
    match c.op {
        Op::Like | Op::NotLike => {
            // LOWER(CAST(... AS TEXT)) makes `like` case-insensitive and
            // usable on numbers and dates, identically on both databases.
            let not = if c.op == Op::NotLike { "NOT " } else { "" };
            format!("LOWER(CAST({col} AS TEXT)) {not}LIKE {}", p(&c.values[0]))
        }
        Op::Between => format!("{col} BETWEEN {} AND {}", p(&c.values[0]), p(&c.values[1])),
        Op::NotBetween => format!(
            "{col} NOT BETWEEN {} AND {}",
            p(&c.values[0]),
            p(&c.values[1])
        ),
        op => {
            let sym = match op {
                Op::Lt => "<",
                Op::Le => "<=",
                Op::Gt => ">",
                Op::Ge => ">=",
                Op::Eq => "=",
                _ => "<>",
            };
            format!("{col} {sym} {}", p(&c.values[0]))
        }
    }
}

impl Catalog {
    /// The integer `column` of the first row of `table` that meets
    /// `condition` (browse syntax, e.g. `frame_id = 12`), or `None` when no
    /// row does: how a SourceList is found from its object id or its frame.
    pub async fn first_int(
        &self,
        table: &Table,
        condition: &str,
        column: &str,
    ) -> Result<Option<i64>, CatalogError> {
        let invalid = |e: BrowseError| CatalogError::Invalid(e.to_string());
        let col = table.column(column).map_err(invalid)?;
        let mut q = Query::new(table);
        q.conditions
            .push(parse_condition(table, condition).map_err(invalid)?);
        q.page_size = 1;
        let page = self.browse(table, &q).await?;
        let i = table.columns().iter().position(|c| c == col);
        Ok(page.rows.first().zip(i).and_then(|(r, i)| match r[i] {
            Cell::Int(v) => Some(v),
            _ => None,
        }))
    }

    /// The SLID of the SourceList whose object id is `id`, or `None` when
    /// `id` is not a SourceList's object id. SLIDs and object ids are both
    /// small integers, and people copy the one from an object page where the
    /// other is asked for: this lets the answer say which list they meant.
    pub async fn slid_of_object(&self, id: ObjectId) -> Result<Option<Slid>, CatalogError> {
        let t = Table::SourceLists;
        Ok(self
            .first_int(&t, &format!("object_id = {}", id.0), "slid")
            .await?
            .map(Slid))
    }

    /// The ALID of the AssociateList whose object id is `id`, as
    /// [`Catalog::slid_of_object`] for SourceLists.
    pub async fn alid_of_object(&self, id: ObjectId) -> Result<Option<Alid>, CatalogError> {
        let t = Table::AssociateLists;
        Ok(self
            .first_int(&t, &format!("object_id = {}", id.0), "alid")
            .await?
            .map(Alid))
    }

    /// The condition that a row of `table` (under the aliases of its FROM
    /// clause) is visible to this catalogue's viewer; `None` for the system
    /// view. Frames and lists are as visible as their process target;
    /// sources as their SourceList; associations as their AssociateList
    /// and, member by member, the member's SourceList (a public
    /// AssociateList does not show a private list's sources).
    fn table_visibility(&self, table: &Table) -> Option<String> {
        self.viewer()?;
        Some(match table {
            Table::Frames(_) | Table::SourceLists | Table::AssociateLists => self.visible("t"),
            Table::Sources(_) => return self.row_visibility("source", "s"),
            Table::Associations(_) => return self.row_visibility("association", "a"),
        })
    }

    /// One page of `table` under `query`, and the total count: only what
    /// this catalogue's viewer may see.
    pub async fn browse(&self, table: &Table, query: &Query) -> Result<Page, CatalogError> {
        let (from, fixed) = table.from();
        let mut values: Vec<Value> = Vec::new();
        let mut clauses: Vec<String> = Vec::new();
        if let Some((col, v)) = fixed {
            values.push(v);
            clauses.push(format!("{col} = $1"));
        }
        // What the viewer may not see is not there: rows, counts and pages
        // alike (a condition in SQL, so paging and totals stay exact).
        clauses.extend(self.table_visibility(table));
        for c in &query.conditions {
            clauses.push(condition_sql(c, &mut values));
        }
        let cone = match (query.cone, table.position()) {
            (Some(cone), Some((ra, dec))) => {
                let ra = table
                    .column(ra)
                    .map_err(|e| CatalogError::Invalid(e.to_string()))?;
                let dec = table
                    .column(dec)
                    .map_err(|e| CatalogError::Invalid(e.to_string()))?;
                clauses.extend(cone.box_sql(ra.sql, dec.sql, &mut values));
                Some(cone)
            }
            (Some(_), None) => {
                return Err(CatalogError::Query(format!(
                    "cone: {} has no positions for a cone search",
                    table.title()
                )));
            }
            (None, _) => None,
        };
        let where_sql = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        let b = self.backend();
        let count = self
            .db()
            .query_one_raw(Self::stmt(
                b,
                &format!("SELECT COUNT(*) AS n FROM {from}{where_sql}"),
                values.clone(),
            ))
            .await?
            .map(|r| r.try_get::<i64>("", "n"))
            .transpose()?
            .unwrap_or(0);
        let cols = table.columns();
        let select: Vec<String> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| match c.ty {
                // PostgreSQL columns are INTEGER or BIGINT, REAL or DOUBLE;
                // one decoded type per column kind keeps the reader simple.
                Int => format!("CAST({} AS BIGINT) AS c{i}", c.sql),
                Float => format!("CAST({} AS DOUBLE PRECISION) AS c{i}", c.sql),
                _ => format!("{} AS c{i}", c.sql),
            })
            .collect();
        let (sort_col, dir) = query.sort;
        let dir = match dir {
            Dir::Asc => "ASC",
            Dir::Desc => "DESC",
        };
        // NULLs last in both directions and on both databases; the key as a
        // tie-breaker makes paging stable.
        let key = table.key().sql;
        // Indexed columns are keys and never NULL: ordering by them alone lets
        // the database walk the index instead of sorting (a million-row list
        // pages in milliseconds); other columns put NULLs last explicitly.
        let order = if sort_col.indexed {
            format!("{} {dir}", sort_col.sql)
        } else {
            format!("({} IS NULL), {} {dir}", sort_col.sql, sort_col.sql)
        };
        let order = if sort_col.sql == key {
            order
        } else {
            format!("{order}, {key} {dir}")
        };
        let offset = (query.page.max(1) - 1).saturating_mul(query.page_size);
        // With a cone, SQL selects the box and the exact circle is applied
        // here (portable SQL has no trigonometry), so paging happens after.
        let (limit, sql_offset) = match cone {
            Some(_) => (CONE_CANDIDATES + 1, 0),
            None => (query.page_size, offset),
        };
        let sql = format!(
            "SELECT {} FROM {from}{where_sql} ORDER BY {order} LIMIT {} OFFSET {}",
            select.join(", "),
            limit,
            sql_offset
        );
        let rows = self.db().query_all_raw(Self::stmt(b, &sql, values)).await?;
        let rows = rows
            .iter()
            .map(|r| {
                cols.iter()
                    .enumerate()
                    .map(|(i, c)| cell(r, &format!("c{i}"), c.ty))
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, sea_orm::DbErr>>()?;
        if let Some(cone) = cone {
            if rows.len() as u64 > CONE_CANDIDATES {
                return Err(CatalogError::Query(format!(
                    "cone: more than {CONE_CANDIDATES} rows lie in the cone's box; use a smaller radius or more conditions"
                )));
            }
            let (ra, dec) = table.position().expect("checked above");
            let pos = |name: &str| cols.iter().position(|c| c.name == name).unwrap_or(0);
            let (ira, idec) = (pos(ra), pos(dec));
            let inside: Vec<Vec<Cell>> = rows
                .into_iter()
                .filter(|r| match (&r[ira], &r[idec]) {
                    (Cell::Float(a), Cell::Float(d)) => {
                        crate::imaging::sphere::separation_deg(cone.ra, cone.dec, *a, *d)
                            <= cone.radius
                    }
                    _ => false,
                })
                .collect();
            let total = inside.len() as u64;
            let rows = inside
                .into_iter()
                .skip(usize::try_from(offset).unwrap_or(usize::MAX))
                .take(usize::try_from(query.page_size).unwrap_or(usize::MAX))
                .collect();
            return Ok(Page { total, rows });
        }
        Ok(Page {
            total: u64::try_from(count).unwrap_or(0),
            rows,
        })
    }
}

fn cell(r: &QueryResult, name: &str, ty: ColType) -> Result<Cell, sea_orm::DbErr> {
    Ok(match ty {
        Int => r
            .try_get::<Option<i64>>("", name)?
            .map_or(Cell::Null, Cell::Int),
        Float => r
            .try_get::<Option<f64>>("", name)?
            .map_or(Cell::Null, Cell::Float),
        Text => r
            .try_get::<Option<String>>("", name)?
            .map_or(Cell::Null, Cell::Text),
        Time => r
            .try_get::<Option<DateTime<Utc>>>("", name)?
            .map_or(Cell::Null, Cell::Time),
        Bool => r
            .try_get::<Option<bool>>("", name)?
            .map_or(Cell::Null, Cell::Bool),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Whatever a `q=` holds, parsing ends in a condition or an error
        /// naming `q` (a 400 at the edge), never a panic.
        #[test]
        fn any_condition_text_parses_or_names_q(text in "\\PC{0,80}") {
            for t in [frames(), Table::SourceLists] {
                if let Err(e) = parse_condition(&t, &text) {
                    prop_assert_eq!(e.param, "q");
                    prop_assert!(!e.message.is_empty());
                }
            }
        }

        /// Conditions built from a table's own columns, an operator and a
        /// value of any text: parsed to that column, or refused naming `q`.
        #[test]
        fn column_operator_value_parses_to_its_column(
            col in 0usize..64,
            op in prop::sample::select(vec!["=", "!=", "<", "<=", ">", ">=", " like ", " between "]),
            value in "[-+0-9.eE:a-z %_]{0,24}",
        ) {
            let t = frames();
            let column = &t.columns()[col % t.columns().len()];
            let text = format!("{}{op}{value}", column.name);
            match parse_condition(&t, &text) {
                Ok(c) => prop_assert_eq!(c.column.name, column.name),
                Err(e) => prop_assert_eq!(e.param, "q"),
            }
        }
    }

    fn frames() -> Table {
        Table::Frames(FrameClass::ReducedScienceFrame)
    }

    #[test]
    fn conditions_parse_with_every_operator() {
        let t = frames();
        let c = parse_condition(&t, "filter = r").unwrap();
        assert_eq!((c.column.name, c.op), ("filter", Op::Eq));
        let c = parse_condition(&t, "EXPTIME>=100").unwrap();
        assert_eq!(
            (c.column.name, c.op, c.values.len()),
            ("exptime", Op::Ge, 1)
        );
        let c = parse_condition(&t, "filename not like red_%").unwrap();
        assert_eq!(c.op, Op::NotLike);
        let c = parse_condition(&t, "mjd_obs between 61000, 61010.5").unwrap();
        assert_eq!((c.op, c.values.len()), (Op::Between, 2));
        let c = parse_condition(&t, "date_obs not between 2026-03-01,2026-03-02 12:00:00").unwrap();
        assert_eq!(c.op, Op::NotBetween);
        assert_eq!(parse_condition(&t, "chip != ccd1").unwrap().op, Op::Ne);
        assert_eq!(parse_condition(&t, "naxis1 < 600").unwrap().op, Op::Lt);
    }

    #[test]
    fn bad_conditions_say_what_is_allowed() {
        let t = frames();
        let e = parse_condition(&t, "colour = red").unwrap_err();
        assert!(e.message.contains("valid columns") && e.message.contains("filename"));
        let e = parse_condition(&t, "filter ~ r").unwrap_err();
        assert!(e.message.contains("not between") && e.message.contains("!="));
        let e = parse_condition(&t, "mjd_obs between 61000").unwrap_err();
        assert!(e.message.contains("two values"), "{}", e.message);
        let e = parse_condition(&t, "exptime between 90 and 110").unwrap_err();
        assert!(
            e.message.contains("write \"exptime between 90,110\""),
            "{}",
            e.message
        );
        let e = parse_condition(&t, "exptime > lots").unwrap_err();
        assert!(e.message.contains("not a number"));
        let e = parse_condition(&t, "date_obs > yesterday").unwrap_err();
        assert!(e.message.contains("yyyy-mm-dd"));
        // A column name that merely starts with an operator word.
        assert!(parse_condition(&t, "filter likes").is_err());
    }

    #[test]
    fn dates_parse_with_and_without_time() {
        assert_eq!(
            parse_time("2026-03-01").unwrap().to_rfc3339(),
            "2026-03-01T00:00:00+00:00"
        );
        assert_eq!(
            parse_time("2026-03-01 12:30:05").unwrap().to_rfc3339(),
            "2026-03-01T12:30:05+00:00"
        );
        assert!(parse_time("01/03/2026").is_none());
    }
}
