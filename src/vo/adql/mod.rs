//! ADQL 2.1 for TAP: a query is parsed by `sqlparser` and its syntax tree
//! translated into SQL for SQLite or PostgreSQL.
//!
//! Nothing the client writes is copied into SQL. The translator walks the
//! tree and emits only
//! - table and column names of the published description
//!   ([`super::tap_schema`]), under aliases it makes up itself (`t0`, `t1`,
//!   output columns `c0`, `c1`, …);
//! - functions and operators from its own lists, spelled per backend;
//! - every literal as a bound parameter (`$n` on PostgreSQL, `?n` on SQLite).
//!
//! Anything else is refused with a message that names what is not allowed
//! and lists what is. Identifiers are case-insensitive unless double-quoted.
//!
//! Geometry (ICRS degrees; a coordinate-system string may be `'ICRS'` or
//! empty): `POINT`, `CIRCLE`, convex `POLYGON`, `CONTAINS(…) = 1|0`,
//! `INTERSECTS(…) = 1|0`, `DISTANCE` (haversine, exact at small
//! separations), `COORD1`, `COORD2`.
//!
//! Exactness and index use:
//! - A point of `wisecut.sources` in a constant circle or polygon also gets
//!   the HEALPix prefilter on `source.hpx` (ranges from
//!   [`crate::catalog::sources::cone_ranges`]), which is a superset of the
//!   shape, so the predicate stays exact and index-backed.
//! - A region predicate on `ivoa.ObsCore.s_region` is computed *in SQL*
//!   from helper columns of the `obscore` table (corner unit vectors,
//!   inward edge normals, edge cosines, dec bounds; see
//!   [`super::obscore::sync_table`]). The formulas are the spherical form of
//!   SIA's gnomonic test in [`crate::vo::sia::Region::overlaps`]: on the
//!   tangent plane straight lines are great circles and orientation signs
//!   are signs of triple products, so the two agree frame by frame (a test
//!   checks every sample frame). Doing it in SQL, rather than filtering in
//!   Rust after the query, keeps TOP, ORDER BY, GROUP BY and COUNT right in
//!   any query. A dec-bounds prefilter keeps it cheap.
//!
//! MAXREC: the SQL asks for at most `maxrec + 1` rows (or TOP when smaller),
//! so a caller seeing more than [`Translated::limit`] rows reports OVERFLOW.

mod expr;
mod geometry;
mod query;
mod scope;

#[cfg(test)]
mod tests;

use sea_orm::{DbBackend, Value};

use super::tap_schema::TapTable;
use super::votable::Field;
pub use crate::catalog::tap_query::ColumnKind;

/// A query the client must change; `Display` is the message for the user.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct AdqlError(pub String);

impl AdqlError {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

/// A translated query, ready for [`crate::catalog::Catalog::tap_rows`].
#[derive(Debug, Clone)]
pub struct Translated {
    /// The SQL.
    pub sql: String,
    /// Its bound values, in placeholder order.
    pub values: Vec<Value>,
    /// The result's FIELDs (names unique, metadata from the schema for
    /// plain columns).
    pub fields: Vec<Field>,
    /// How each output column is read.
    pub kinds: Vec<ColumnKind>,
    /// Output columns whose values are paths (`/data/ID`) to prefix with
    /// the service's base URL.
    pub relative_urls: Vec<bool>,
    /// Rows the caller may return: min(TOP, MAXREC). The SQL may return
    /// one more row when MAXREC is the bound, which means OVERFLOW.
    pub limit: u64,
}

/// Translates one ADQL query against `tables` (the published ones plus any
/// uploads) for `backend`, returning at most `maxrec` rows (+1 to detect
/// overflow).
pub fn translate(
    adql: &str,
    tables: &[TapTable],
    backend: DbBackend,
    maxrec: u64,
) -> Result<Translated, AdqlError> {
    let q = query::parse(adql)?;
    query::translate_query(&q, tables, backend, maxrec)
}

/// The ADQL functions this service understands, for error messages.
pub const FUNCTIONS: &[&str] = &[
    "COUNT",
    "MIN",
    "MAX",
    "AVG",
    "SUM",
    "ABS",
    "CEILING",
    "FLOOR",
    "ROUND",
    "SQRT",
    "POWER",
    "EXP",
    "LOG",
    "LOG10",
    "SIN",
    "COS",
    "TAN",
    "ASIN",
    "ACOS",
    "ATAN",
    "ATAN2",
    "DEGREES",
    "RADIANS",
    "PI",
    "MOD",
    "TRUNCATE",
    "LOWER",
    "UPPER",
    "POINT",
    "CIRCLE",
    "POLYGON",
    "CONTAINS",
    "INTERSECTS",
    "DISTANCE",
    "COORD1",
    "COORD2",
];

/// The geometric functions among [`FUNCTIONS`]: what the TAP capabilities
/// declare as the `adqlgeo` language features.
pub const GEOMETRY_FUNCTIONS: &[&str] = &[
    "POINT",
    "CIRCLE",
    "POLYGON",
    "CONTAINS",
    "INTERSECTS",
    "DISTANCE",
    "COORD1",
    "COORD2",
];
