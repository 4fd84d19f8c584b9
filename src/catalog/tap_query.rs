//! Running translated TAP queries: plain SQL, bound values and the kind of
//! each output column in; rows of [`Cell`]s out.
//!
//! The SQL comes from `vo::adql` (which alone decides what SQL may say); this
//! file only executes it. Uploaded tables (TAP_UPLOAD) live in temporary
//! tables created, filled and queried in ONE transaction on one connection,
//! which is rolled back at the end: nothing an upload brings outlives its
//! query, and two queries never see each other's uploads. Their SQL names are
//! `tap_upload_<name>` with a checked lower-case name, and their columns are
//! `c0, c1, …`, so no client text becomes SQL here either.
//!
//! Work is bounded by the caller's row limit (in the SQL) and, on
//! PostgreSQL, by a statement timeout set for the transaction.

use sea_orm::{ConnectionTrait, DbBackend, QueryResult, TransactionTrait, Value};

use super::browse::Cell;
use super::{Catalog, CatalogError};

/// Longest a TAP statement may run on PostgreSQL, in seconds. SQLite has no
/// per-statement timeout; there the row limit bounds the work.
pub const STATEMENT_TIMEOUT_S: u32 = 120;

/// Rows of an upload inserted per statement (bound values stay far below
/// SQLite's limit of 32766 for any sensible column count).
const INSERT_BATCH_VALUES: usize = 4000;

/// The type of an output (or uploaded) column: how it is read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// 64-bit integer.
    Int,
    /// Double.
    Float,
    /// Text.
    Text,
    /// Boolean (stored as an integer 0/1).
    Bool,
}

impl ColumnKind {
    /// The SQL type of a column of this kind in a temporary table.
    fn sql_type(self) -> &'static str {
        match self {
            Self::Int | Self::Bool => "BIGINT",
            Self::Float => "DOUBLE PRECISION",
            Self::Text => "TEXT",
        }
    }

    /// A cell of this kind as a bound value (NULL typed by the kind).
    fn value(self, cell: &Cell) -> Value {
        match (self, cell) {
            (Self::Int, Cell::Int(i)) => Value::BigInt(Some(*i)),
            (Self::Int, Cell::Float(f)) if f.fract() == 0.0 => Value::BigInt(Some(*f as i64)),
            (Self::Int, Cell::Bool(b)) | (Self::Bool, Cell::Bool(b)) => {
                Value::BigInt(Some(i64::from(*b)))
            }
            (Self::Bool, Cell::Int(i)) => Value::BigInt(Some(i64::from(*i != 0))),
            (Self::Int | Self::Bool, _) => Value::BigInt(None),
            (Self::Float, Cell::Float(f)) if f.is_finite() => Value::Double(Some(*f)),
            (Self::Float, Cell::Int(i)) => Value::Double(Some(*i as f64)),
            (Self::Float, _) => Value::Double(None),
            (Self::Text, Cell::Null) => Value::String(None),
            (Self::Text, c) => Value::String(Some(c.display())),
        }
    }

    /// Column `idx` of a result row as a cell of this kind.
    fn read(self, row: &QueryResult, idx: usize) -> Result<Cell, CatalogError> {
        let cell = match self {
            Self::Int => row
                .try_get_by_index::<Option<i64>>(idx)?
                .map_or(Cell::Null, Cell::Int),
            Self::Bool => row
                .try_get_by_index::<Option<i64>>(idx)?
                .map_or(Cell::Null, |i| Cell::Bool(i != 0)),
            Self::Float => row
                .try_get_by_index::<Option<f64>>(idx)?
                .map_or(Cell::Null, Cell::Float),
            Self::Text => row
                .try_get_by_index::<Option<String>>(idx)?
                .map_or(Cell::Null, Cell::Text),
        };
        Ok(cell)
    }
}

/// One uploaded table, ready to be made a temporary table.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadTable {
    /// The SQL name, `tap_upload_` followed by lower-case letters, digits
    /// and underscores (checked again before use).
    pub sql_name: String,
    /// The kind of each column; the SQL columns are `c0, c1, …`.
    pub columns: Vec<ColumnKind>,
    /// The rows, one cell per column.
    pub rows: Vec<Vec<Cell>>,
}

/// Whether `name` is a safe temporary-table name for an upload.
pub fn valid_upload_sql_name(name: &str) -> bool {
    name.strip_prefix("tap_upload_").is_some_and(|rest| {
        !rest.is_empty()
            && rest.len() <= 48
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    })
}

impl Catalog {
    /// Runs a translated TAP query (`$n` placeholders) with its uploads in
    /// one read-only transaction and returns its rows, each column read as
    /// `kinds` says.
    pub async fn tap_rows(
        &self,
        sql: &str,
        values: Vec<Value>,
        kinds: &[ColumnKind],
        uploads: &[UploadTable],
    ) -> Result<Vec<Vec<Cell>>, CatalogError> {
        let b = self.backend();
        let tx = self.db().begin().await?;
        if b == DbBackend::Postgres {
            tx.execute_unprepared(&format!(
                "SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT_S}s'"
            ))
            .await?;
        }
        for u in uploads {
            create_upload(&tx, b, u).await?;
        }
        let result = tx.query_all_raw(Self::stmt(b, sql, values)).await;
        // Nothing is kept: the temporary tables go with the transaction.
        tx.rollback().await?;
        let rows = result?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut row = Vec::with_capacity(kinds.len());
            for (i, k) in kinds.iter().enumerate() {
                row.push(k.read(r, i)?);
            }
            out.push(row);
        }
        Ok(out)
    }
}

/// Creates and fills the temporary table of one upload.
async fn create_upload(
    tx: &sea_orm::DatabaseTransaction,
    b: DbBackend,
    u: &UploadTable,
) -> Result<(), CatalogError> {
    if !valid_upload_sql_name(&u.sql_name) {
        return Err(CatalogError::Query(format!(
            "upload table name {:?} is not allowed: use letters, digits and underscores",
            crate::params::shown(&u.sql_name)
        )));
    }
    if u.columns.is_empty() {
        return Err(CatalogError::Query(format!(
            "upload table {} has no columns",
            u.sql_name
        )));
    }
    let cols: Vec<String> = u
        .columns
        .iter()
        .enumerate()
        .map(|(i, k)| format!("c{i} {}", k.sql_type()))
        .collect();
    let temp = match b {
        DbBackend::Postgres => "CREATE TEMPORARY TABLE {} ({}) ON COMMIT DROP",
        _ => "CREATE TEMPORARY TABLE {} ({})",
    };
    tx.execute_unprepared(
        &temp
            .replacen("{}", &u.sql_name, 1)
            .replacen("{}", &cols.join(", "), 1),
    )
    .await?;
    let n = u.columns.len();
    let per_batch = (INSERT_BATCH_VALUES / n).max(1);
    let names: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
    for chunk in u.rows.chunks(per_batch) {
        let mut values = Vec::with_capacity(chunk.len() * n);
        let mut tuples = Vec::with_capacity(chunk.len());
        for row in chunk {
            if row.len() != n {
                return Err(CatalogError::Query(format!(
                    "upload table {}: a row has {} values for {n} columns",
                    u.sql_name,
                    row.len()
                )));
            }
            let mut marks = Vec::with_capacity(n);
            for (k, c) in u.columns.iter().zip(row) {
                values.push(k.value(c));
                marks.push(format!("${}", values.len()));
            }
            tuples.push(format!("({})", marks.join(", ")));
        }
        let sql = format!(
            "INSERT INTO {} ({}) VALUES {}",
            u.sql_name,
            names.join(", "),
            tuples.join(", ")
        );
        tx.execute_raw(Catalog::stmt(b, &sql, values)).await?;
    }
    Ok(())
}

/// The columns of the `obscore` table that rows are written to (besides
/// `frame_id`), as its migration creates them: ObsCore values, then the
/// footprint helpers.
pub const OBSCORE_COLUMNS: &[&str] = &[
    "dataproduct_type",
    "calib_level",
    "obs_collection",
    "obs_id",
    "obs_publisher_did",
    "access_url",
    "access_format",
    "access_estsize",
    "target_name",
    "s_ra",
    "s_dec",
    "s_fov",
    "s_region",
    "s_resolution",
    "s_xel1",
    "s_xel2",
    "t_min",
    "t_max",
    "t_exptime",
    "t_resolution",
    "t_xel",
    "em_min",
    "em_max",
    "em_res_power",
    "em_xel",
    "o_ucd",
    "pol_states",
    "pol_xel",
    "facility_name",
    "instrument_name",
    "filter",
    "chip",
    "preview",
    "datalink",
    "mapping_version",
    "dec_min",
    "dec_max",
    "c1x",
    "c1y",
    "c1z",
    "c2x",
    "c2y",
    "c2z",
    "c3x",
    "c3y",
    "c3z",
    "c4x",
    "c4y",
    "c4z",
    "n1x",
    "n1y",
    "n1z",
    "n2x",
    "n2y",
    "n2z",
    "n3x",
    "n3y",
    "n3z",
    "n4x",
    "n4y",
    "n4z",
    "e1",
    "e2",
    "e3",
    "e4",
];

impl Catalog {
    /// What keeps the `obscore` table in step with the frames: the frames
    /// without a row (or with a row another `mapping_version` wrote), and
    /// the rows whose frame is gone or whose version differs.
    pub async fn obscore_out_of_date(
        &self,
        mapping_version: i64,
    ) -> Result<(Vec<crate::ids::ObjectId>, Vec<i64>), CatalogError> {
        let b = self.backend();
        let missing = self
            .db()
            .query_all_raw(Self::stmt(
                b,
                "SELECT f.object_id FROM frame f LEFT JOIN obscore o ON o.frame_id = f.object_id \
                 WHERE o.frame_id IS NULL OR o.mapping_version IS NULL OR o.mapping_version <> $1 \
                 ORDER BY f.object_id",
                vec![mapping_version.into()],
            ))
            .await?
            .iter()
            .map(|r| r.try_get::<i64>("", "object_id").map(crate::ids::ObjectId))
            .collect::<Result<Vec<_>, _>>()?;
        let stale = self
            .db()
            .query_all_raw(Self::stmt(
                b,
                "SELECT o.frame_id FROM obscore o LEFT JOIN frame f ON f.object_id = o.frame_id \
                 WHERE f.object_id IS NULL OR o.mapping_version IS NULL OR o.mapping_version <> $1",
                vec![mapping_version.into()],
            ))
            .await?
            .iter()
            .map(|r| r.try_get::<i64>("", "frame_id"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((missing, stale))
    }

    /// Deletes the `obscore` rows of these frames.
    pub async fn delete_obscore_rows(&self, frame_ids: &[i64]) -> Result<(), CatalogError> {
        for chunk in frame_ids.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let values = chunk.iter().map(|i| Value::BigInt(Some(*i))).collect();
            self.db()
                .execute_raw(Self::stmt(
                    self.backend(),
                    &format!(
                        "DELETE FROM obscore WHERE frame_id IN ({})",
                        marks.join(", ")
                    ),
                    values,
                ))
                .await?;
        }
        Ok(())
    }

    /// Inserts `obscore` rows: `frame_id` then one value per
    /// [`OBSCORE_COLUMNS`] entry; a row that already exists (another server
    /// wrote it) is left alone.
    pub async fn insert_obscore_rows(
        &self,
        rows: Vec<(i64, Vec<Value>)>,
    ) -> Result<(), CatalogError> {
        let n = OBSCORE_COLUMNS.len() + 1;
        let per = (INSERT_BATCH_VALUES / n).max(1);
        let b = self.backend();
        let tx = self.db().begin().await?;
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let mut values = Vec::with_capacity(per * n);
            let mut tuples = Vec::with_capacity(per);
            for (id, row) in rows.by_ref().take(per) {
                if row.len() != OBSCORE_COLUMNS.len() {
                    return Err(CatalogError::Invalid(format!(
                        "obscore row of frame {id} has {} values for {} columns",
                        row.len(),
                        OBSCORE_COLUMNS.len()
                    )));
                }
                let first = values.len() + 1;
                values.push(Value::BigInt(Some(id)));
                values.extend(row);
                let marks: Vec<String> = (first..first + n).map(|i| format!("${i}")).collect();
                tuples.push(format!("({})", marks.join(", ")));
            }
            let sql = format!(
                "INSERT INTO obscore (frame_id, {}) VALUES {} ON CONFLICT (frame_id) DO NOTHING",
                OBSCORE_COLUMNS.join(", "),
                tuples.join(", ")
            );
            tx.execute_raw(Self::stmt(b, &sql, values)).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_names_are_checked() {
        assert!(valid_upload_sql_name("tap_upload_mine_2"));
        assert!(!valid_upload_sql_name("tap_upload_"));
        assert!(!valid_upload_sql_name("tap_upload_x; DROP TABLE frame"));
        assert!(!valid_upload_sql_name("frame"));
        assert!(!valid_upload_sql_name("tap_upload_Mine"));
    }

    #[test]
    fn cells_bind_as_their_column_kind() {
        assert_eq!(
            ColumnKind::Float.value(&Cell::Int(3)),
            Value::Double(Some(3.0))
        );
        assert_eq!(
            ColumnKind::Float.value(&Cell::Float(f64::NAN)),
            Value::Double(None)
        );
        assert_eq!(
            ColumnKind::Bool.value(&Cell::Bool(true)),
            Value::BigInt(Some(1))
        );
        assert_eq!(ColumnKind::Text.value(&Cell::Null), Value::String(None));
    }
}
