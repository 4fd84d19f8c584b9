//! Bulk inserts of catalog rows: a million sources in seconds, inside the
//! caller's transaction.
//!
//! sea-orm's `insert_many` builds a query tree per chunk and binds every value
//! through it; for catalogs that is most of the ingest time. Here each backend
//! gets the statement shape it is fastest with, built as plain SQL text:
//!
//! * **PostgreSQL**: one `INSERT … SELECT FROM unnest($1::int8[], …)` per
//!   chunk of [`PG_CHUNK`] rows, each column bound as *one* parameter: the
//!   array's text literal (`{1,2,3}`), cast by the server. Sixteen parameters
//!   instead of sixteen per row, one plan, one round trip per chunk. Text
//!   rather than binary arrays because sea-orm binds arrays only with its
//!   `postgres-array` feature, and the text form of a float is exact: Rust
//!   prints the shortest string that reads back as the same `f64`, and
//!   PostgreSQL reads it back correctly rounded. (`COPY` would be faster
//!   still but needs the sqlx connection, which sea-orm's transaction does
//!   not expose.)
//! * **SQLite**: multi-row `INSERT … VALUES (…),(…)` with as many rows as the
//!   32,766-parameter limit allows; the SQL text of a full chunk is the same
//!   every time, so sqlx prepares it once and reuses it from its statement
//!   cache. The SLID is written into the SQL (it is an integer), saving a
//!   parameter per row.
//!
//! Values must be finite (NaN would be stored as NULL by SQLite and break the
//! NOT NULL columns); the readers in `tables` guarantee it, and a row that
//! is not is refused with its SID rather than failing inside the database.

use super::CatalogError;
use crate::catalog::entity;
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
use std::fmt::Write;

/// Rows per `unnest` statement on PostgreSQL: about 1.5 MB of text per
/// column, few enough statements that the round trips do not matter.
const PG_CHUNK: usize = 50_000;

/// SQLite's limit on bound parameters per statement (since 3.32).
const SQLITE_MAX_PARAMS: usize = 32_766;

/// The `source` columns in insert order; SLID first (written into the SQL).
const SOURCE_COLUMNS: [&str; 16] = [
    "slid",
    "sid",
    "ra",
    "dec",
    "x",
    "y",
    "a",
    "b",
    "theta",
    "mag_auto",
    "magerr_auto",
    "flux_auto",
    "fwhm",
    "class_star",
    "flags",
    "hpx",
];

/// PostgreSQL types of the bound columns (all but SLID), for the casts.
const SOURCE_PG_TYPES: [&str; 15] = [
    "int8", "float8", "float8", "float8", "float8", "float8", "float8", "float8", "float8",
    "float8", "float8", "float8", "float8", "int4", "int8",
];

/// Inserts `rows` into `source` with SLID `slid` (the rows' own `slid` is
/// ignored), in the caller's transaction.
pub(crate) async fn insert_sources(
    txn: &impl ConnectionTrait,
    slid: i64,
    rows: &[entity::source::Model],
) -> Result<(), CatalogError> {
    check_finite(rows)?;
    match txn.get_database_backend() {
        DbBackend::Postgres => insert_sources_pg(txn, slid, rows).await,
        backend => insert_sources_values(txn, backend, slid, rows).await,
    }
}

fn check_finite(rows: &[entity::source::Model]) -> Result<(), CatalogError> {
    let finite = |r: &entity::source::Model| {
        [
            r.ra,
            r.dec,
            r.x,
            r.y,
            r.a,
            r.b,
            r.theta,
            r.flux_auto,
            r.fwhm,
            r.class_star,
        ]
        .iter()
        .chain(r.mag_auto.as_ref())
        .chain(r.magerr_auto.as_ref())
        .all(|v| v.is_finite())
    };
    match rows.iter().find(|r| !finite(r)) {
        None => Ok(()),
        Some(r) => Err(CatalogError::Invalid(format!(
            "source SID {} has a value that is not a finite number: {r:?}",
            r.sid
        ))),
    }
}

/// The `(…)` group of one row: the SLID literal and `n` placeholders.
fn values_group(slid: i64, n: usize) -> String {
    let mut s = format!("({slid}");
    for _ in 0..n {
        s.push_str(",?");
    }
    s.push(')');
    s
}

fn quoted_columns() -> String {
    SOURCE_COLUMNS
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(",")
}

async fn insert_sources_values(
    txn: &impl ConnectionTrait,
    backend: DbBackend,
    slid: i64,
    rows: &[entity::source::Model],
) -> Result<(), CatalogError> {
    let per_row = SOURCE_COLUMNS.len() - 1;
    let chunk = SQLITE_MAX_PARAMS / per_row;
    let head = format!("INSERT INTO source ({}) VALUES ", quoted_columns());
    let group = values_group(slid, per_row);
    let sql_for = |n: usize| {
        let mut sql = String::with_capacity(head.len() + n * (group.len() + 1));
        sql.push_str(&head);
        for i in 0..n {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&group);
        }
        sql
    };
    // Built once: every full chunk reuses the same text, hence the same
    // prepared statement.
    let full_sql = sql_for(chunk);
    for part in rows.chunks(chunk) {
        let mut values: Vec<Value> = Vec::with_capacity(part.len() * per_row);
        for r in part {
            values.extend([
                Value::BigInt(Some(r.sid)),
                Value::Double(Some(r.ra)),
                Value::Double(Some(r.dec)),
                Value::Double(Some(r.x)),
                Value::Double(Some(r.y)),
                Value::Double(Some(r.a)),
                Value::Double(Some(r.b)),
                Value::Double(Some(r.theta)),
                Value::Double(r.mag_auto),
                Value::Double(r.magerr_auto),
                Value::Double(Some(r.flux_auto)),
                Value::Double(Some(r.fwhm)),
                Value::Double(Some(r.class_star)),
                Value::Int(Some(r.flags)),
                Value::BigInt(Some(r.hpx)),
            ]);
        }
        let sql = if part.len() == chunk {
            full_sql.clone()
        } else {
            sql_for(part.len())
        };
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
    }
    Ok(())
}

/// PostgreSQL array literal of `values`, with `NULL` for `None`.
fn pg_array<T>(values: impl Iterator<Item = T>, write: impl Fn(&mut String, T)) -> String {
    let mut s = String::from("{");
    for (i, v) in values.enumerate() {
        if i > 0 {
            s.push(',');
        }
        write(&mut s, v);
    }
    s.push('}');
    s
}

fn write_f64(s: &mut String, v: f64) {
    // `{:e}` is the shortest round-tripping form, like `{}`, but stays short
    // for tiny and huge values (`{}` writes 1e-300 with 300 zeros).
    let _ = write!(s, "{v:e}");
}

fn write_opt_f64(s: &mut String, v: Option<f64>) {
    match v {
        Some(v) => write_f64(s, v),
        None => s.push_str("NULL"),
    }
}

fn write_int(s: &mut String, v: i64) {
    let _ = write!(s, "{v}");
}

/// The fifteen bound columns of `rows` as PostgreSQL array literals.
fn pg_source_arrays(rows: &[entity::source::Model]) -> Vec<String> {
    type Column = fn(&[entity::source::Model]) -> String;
    fn f(get: fn(&entity::source::Model) -> f64, rows: &[entity::source::Model]) -> String {
        pg_array(rows.iter().map(get), write_f64)
    }
    let columns: [Column; 15] = [
        |r| pg_array(r.iter().map(|r| r.sid), write_int),
        |r| f(|r| r.ra, r),
        |r| f(|r| r.dec, r),
        |r| f(|r| r.x, r),
        |r| f(|r| r.y, r),
        |r| f(|r| r.a, r),
        |r| f(|r| r.b, r),
        |r| f(|r| r.theta, r),
        |r| pg_array(r.iter().map(|r| r.mag_auto), write_opt_f64),
        |r| pg_array(r.iter().map(|r| r.magerr_auto), write_opt_f64),
        |r| f(|r| r.flux_auto, r),
        |r| f(|r| r.fwhm, r),
        |r| f(|r| r.class_star, r),
        |r| pg_array(r.iter().map(|r| i64::from(r.flags)), write_int),
        |r| pg_array(r.iter().map(|r| r.hpx), write_int),
    ];
    // Formatting is CPU work of the same order as the server's; spread it
    // over the cores.
    use rayon::prelude::*;
    columns.par_iter().map(|c| c(rows)).collect()
}

async fn insert_sources_pg(
    txn: &impl ConnectionTrait,
    slid: i64,
    rows: &[entity::source::Model],
) -> Result<(), CatalogError> {
    let args: Vec<String> = SOURCE_PG_TYPES
        .iter()
        .enumerate()
        .map(|(i, t)| format!("${}::text::{t}[]", i + 1))
        .collect();
    let sql = format!(
        "INSERT INTO source ({}) SELECT {slid}, u.* FROM unnest({}) AS u",
        quoted_columns(),
        args.join(",")
    );
    for part in rows.chunks(PG_CHUNK) {
        let values: Vec<Value> = pg_source_arrays(part)
            .into_iter()
            .map(|s| Value::String(Some(s)))
            .collect();
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql.clone(),
            values,
        ))
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_literals_are_exact_and_short() {
        let a = pg_array([0.1f64, -2.5e-300, 1e300, 3.0].into_iter(), write_f64);
        assert_eq!(a, "{1e-1,-2.5e-300,1e300,3e0}");
        let parsed: Vec<f64> = a[1..a.len() - 1]
            .split(',')
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(parsed, [0.1, -2.5e-300, 1e300, 3.0]);
        assert_eq!(
            pg_array([Some(1.5), None].into_iter(), write_opt_f64),
            "{1.5e0,NULL}"
        );
        assert_eq!(pg_array([1i64, -2].into_iter(), write_int), "{1,-2}");
    }

    #[test]
    fn non_finite_values_are_refused_with_the_sid() {
        let row = entity::source::Model {
            slid: 0,
            sid: 42,
            ra: 1.0,
            dec: 2.0,
            x: f64::NAN,
            y: 0.0,
            a: 0.0,
            b: 0.0,
            theta: 0.0,
            mag_auto: None,
            magerr_auto: None,
            flux_auto: 0.0,
            fwhm: 0.0,
            class_star: 0.0,
            flags: 0,
            hpx: 0,
        };
        let err = check_finite(&[row]).unwrap_err().to_string();
        assert!(err.contains("SID 42"), "{err}");
    }
}
