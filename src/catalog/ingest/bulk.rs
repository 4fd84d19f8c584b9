//! Bulk inserts of catalog rows: a million sources in seconds, inside the
//! caller's transaction.
//!
//! sea-orm's `insert_many` builds a query tree per chunk and binds every value
//! through it; for catalogs that is most of the ingest time. Here each backend
//! gets the statement shape it is fastest with, built as plain SQL text:
//!
//! * **PostgreSQL**: one `INSERT … SELECT FROM unnest($1::int8[], …)` per
//!   chunk of [`PG_CHUNK`] rows, each column bound as *one* array parameter
//!   (sea-orm's `postgres-array` feature), which sqlx sends in PostgreSQL's
//!   binary format: fifteen parameters instead of fifteen per row, one plan,
//!   one round trip per chunk, and no number ever formatted or parsed as
//!   text (text array literals were tried first: parsing them cost the
//!   server about 0.5 s per million floats, per column). `COPY` would need
//!   the sqlx connection, which sea-orm's transaction does not expose.
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
use sea_orm::sea_query::ArrayType;
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, Statement, Value};

/// Rows per `unnest` statement on PostgreSQL: 400 kB per column on the
/// wire, few enough statements that the round trips do not matter.
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
    "float8", "float8", "float8", "float8", "int8", "int8",
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

/// Rows per multi-row INSERT of associations: 5 values a row, well under
/// SQLite's 32,766 bound values a statement.
const ASSOCIATION_CHUNK: usize = 6000;

/// Inserts association rows, in the caller's transaction: the one writer
/// of `association` for ingest and `wisecut associate`.
pub(crate) async fn insert_associations(
    txn: &impl ConnectionTrait,
    rows: &[entity::association::Model],
) -> Result<(), CatalogError> {
    for chunk in rows.chunks(ASSOCIATION_CHUNK) {
        entity::association::Entity::insert_many(
            chunk
                .iter()
                .cloned()
                .map(entity::association::ActiveModel::from),
        )
        .exec(txn)
        .await?;
    }
    Ok(())
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

/// SQLite page cache for a large insert, in KiB: room for the new rows'
/// index pages, whose inserts land at random places (HEALPix cell,
/// magnitude). With the default 2 MB cache a million-row insert spills dirty
/// pages to the WAL and reads them back, and takes four times as long.
const SQLITE_BULK_CACHE_KIB: i64 = 256 * 1024;

/// Rows from which the larger cache is worth setting.
const SQLITE_BULK_CACHE_ROWS: usize = 50_000;

async fn insert_sources_values(
    txn: &impl ConnectionTrait,
    backend: DbBackend,
    slid: i64,
    rows: &[entity::source::Model],
) -> Result<(), CatalogError> {
    if backend != DbBackend::Sqlite || rows.len() < SQLITE_BULK_CACHE_ROWS {
        return insert_values(txn, backend, slid, rows).await;
    }
    // The pragma is per connection and not transactional: set it for this
    // insert and put the pooled connection's own value back afterwards,
    // whatever the insert's outcome.
    let old = txn
        .query_one_raw(Statement::from_string(backend, "PRAGMA cache_size"))
        .await?
        .map(|r| r.try_get_by_index::<i64>(0))
        .transpose()?;
    txn.execute_unprepared(&format!("PRAGMA cache_size = -{SQLITE_BULK_CACHE_KIB}"))
        .await?;
    let result = insert_values(txn, backend, slid, rows).await;
    if let Some(old) = old {
        txn.execute_unprepared(&format!("PRAGMA cache_size = {old}"))
            .await?;
    }
    result
}

async fn insert_values(
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

/// A PostgreSQL array parameter of doubles.
fn f64_array(values: impl Iterator<Item = f64>) -> Value {
    Value::Array(
        ArrayType::Double,
        Some(Box::new(values.map(|v| Value::Double(Some(v))).collect())),
    )
}

/// A PostgreSQL array parameter of bigints.
fn i64_array(values: impl Iterator<Item = i64>) -> Value {
    Value::Array(
        ArrayType::BigInt,
        Some(Box::new(values.map(|v| Value::BigInt(Some(v))).collect())),
    )
}

/// The fifteen bound columns of `rows` as array parameters. A NULL
/// magnitude travels as NaN (sea-orm's arrays have no NULL elements) and is
/// turned back into NULL by the statement; the readers never produce a NaN
/// magnitude.
fn pg_source_arrays(rows: &[entity::source::Model]) -> Vec<Value> {
    let f = |get: fn(&entity::source::Model) -> f64| f64_array(rows.iter().map(get));
    vec![
        i64_array(rows.iter().map(|r| r.sid)),
        f(|r| r.ra),
        f(|r| r.dec),
        f(|r| r.x),
        f(|r| r.y),
        f(|r| r.a),
        f(|r| r.b),
        f(|r| r.theta),
        f(|r| r.mag_auto.unwrap_or(f64::NAN)),
        f(|r| r.magerr_auto.unwrap_or(f64::NAN)),
        f(|r| r.flux_auto),
        f(|r| r.fwhm),
        f(|r| r.class_star),
        i64_array(rows.iter().map(|r| i64::from(r.flags))),
        i64_array(rows.iter().map(|r| r.hpx)),
    ]
}

async fn insert_sources_pg(
    txn: &impl ConnectionTrait,
    slid: i64,
    rows: &[entity::source::Model],
) -> Result<(), CatalogError> {
    let args: Vec<String> = SOURCE_PG_TYPES
        .iter()
        .enumerate()
        .map(|(i, t)| format!("${}::{t}[]", i + 1))
        .collect();
    let sql = format!(
        "INSERT INTO source ({}) \
         SELECT {slid}, sid, ra, dec, x, y, a, b, theta, \
                NULLIF(mag, 'NaN'), NULLIF(magerr, 'NaN'), flux, fwhm, class_star, \
                flags::int4, hpx \
         FROM unnest({}) AS u(sid, ra, dec, x, y, a, b, theta, mag, magerr, flux, fwhm, \
                              class_star, flags, hpx)",
        quoted_columns(),
        args.join(",")
    );
    for part in rows.chunks(PG_CHUNK) {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql.clone(),
            pg_source_arrays(part),
        ))
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
