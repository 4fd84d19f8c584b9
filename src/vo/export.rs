//! Table views and queries as VOTables: the same rows the dbviewer shows
//! (`/table/…?format=votable`), described for VO tools.
//!
//! Every column gets a VOTable datatype from its browse type, its unit
//! (VOUnit spelling) and a UCD from the table below; RA/Dec refer to the
//! ICRS COOSYS. Each row also gets link columns that make the table useful
//! on its own in TOPCAT or Aladin:
//! - frames: `obs_publisher_did`, `access_url` (the FITS file) and
//!   `datalink`, plus a DataLink service descriptor bound to
//!   `obs_publisher_did`, so TOPCAT's "Invoke Service" and pyvo reach
//!   cutouts and the lineage;
//! - sources: `cutout_url`, a FITS cutout (`meta.ref.url`) of the list's
//!   frame centred on the source;
//! - SourceLists and AssociateLists: `rows_url`, their rows as a VOTable.
//!
//! `plain` leaves the service descriptor out: Aladin Lite 3.8 refuses a
//! table that carries one.

use super::datalink::links_descriptor;
use super::obscore::ivoid;
use super::votable::{DataType, Document, Field, Info, QueryStatus};
use crate::catalog::browse::{Cell, ColType, Column, Table};
use crate::ids::ObjectId;

/// The UCD of a browse column.
pub fn ucd(table: &Table, column: &str) -> &'static str {
    match (table, column) {
        (Table::Frames(_), "object_id") => "meta.id;meta.main",
        (Table::SourceLists, "slid") => "meta.id;meta.main",
        (Table::Sources(_), "sid") => "meta.id;meta.main",
        (Table::AssociateLists, "alid") => "meta.id;meta.main",
        // An association repeats its AID on every member's row: an id,
        // but not the row's main one.
        (Table::Associations(_), "aid") => "meta.id",
        (Table::Sources(_), "slid") | (Table::Associations(_), "alid") => "meta.id.parent",
        (Table::Associations(_), "slid" | "sid") => "meta.id.cross",
        (_, "object_id") => "meta.id",
        (_, "frame_id") => "meta.id;obs.image",
        (_, "filename") => "meta.id;meta.file",
        (_, "name" | "creator" | "project") => "meta.id",
        (_, "filter") => "meta.id;instr.filter",
        (_, "chip") => "meta.id;instr.det",
        (_, "object") => "meta.id;src",
        (_, "date_obs" | "mjd_obs") => "time.epoch;obs",
        (_, "exptime") => "time.duration;obs.exposure",
        (_, "ra") => "pos.eq.ra;meta.main",
        (_, "dec") => "pos.eq.dec;meta.main",
        (_, "naxis1" | "naxis2" | "n_sources" | "n_associations" | "n_members") => "meta.number",
        (_, "bitpix" | "compressed" | "flag") => "meta.code",
        (_, "zeropoint") => "phot.mag;arith.zp",
        (_, "seeing") => "instr.obsty.seeing",
        (_, "instrument") => "meta.id;instr",
        (_, "file_size") => "phys.size;meta.file",
        (_, "timestamp_start") => "time.start",
        (_, "timestamp_end") => "time.end",
        (_, "creation_date") => "time.creation",
        (_, "is_valid" | "quality_flags" | "flags") => "meta.code.qual",
        (_, "process_status") => "meta.code.status",
        (_, "x") => "pos.cartesian.x;instr.det",
        (_, "y") => "pos.cartesian.y;instr.det",
        (_, "mag_auto") => "phot.mag",
        (_, "magerr_auto") => "stat.error;phot.mag",
        (_, "flux_auto") => "phot.flux",
        (_, "fwhm") => "phys.angSize;src",
        (_, "a") => "phys.angSize.smajAxis",
        (_, "b") => "phys.angSize.sminAxis",
        (_, "theta") => "pos.posAng",
        (_, "class_star") => "src.class.starGalaxy",
        (_, "assoc_type") => "meta.code.class",
        (_, "search_distance") => "pos.angDistance",
        _ => "",
    }
}

/// The VOTable field of a browse column.
pub fn field(table: &Table, c: &Column) -> Field {
    let (dt, xtype) = match c.ty {
        ColType::Int => (DataType::Long, None),
        ColType::Float => (DataType::Double, None),
        ColType::Text => (DataType::Char, None),
        ColType::Time => (DataType::Char, Some("timestamp")),
        ColType::Bool => (DataType::Boolean, None),
    };
    let mut f = Field::new(c.name, dt).unit(c.unit).ucd(ucd(table, c.name));
    if let Some(x) = xtype {
        f = f.xtype(x);
    }
    if matches!(c.name, "ra" | "dec") {
        f = f.reference("icrs");
    }
    f
}

/// What the link columns of a table need to know.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The server's public URL.
    pub base: String,
    /// For a SourceList's sources: the frame the list was extracted from.
    pub source_frame: Option<ObjectId>,
    /// Side of the per-source cutout, arcsec.
    pub cutout_arcsec: f64,
    /// Leave the DataLink service descriptor out (Aladin Lite).
    pub plain: bool,
}

/// Rows of `table` (all columns, in `Table::columns` order) as a VOTable of
/// the `chosen` columns plus link columns. `total` is how many rows matched;
/// more than `rows.len()` without an explicit page means the export was cut
/// at its limit (`QUERY_STATUS=OVERFLOW`).
pub fn document(
    table: &Table,
    chosen: &[&'static Column],
    rows: &[Vec<Cell>],
    overflow: bool,
    total: u64,
    ctx: &Context,
) -> Document {
    let all = table.columns();
    let index: Vec<usize> = chosen
        .iter()
        .map(|c| all.iter().position(|a| a == *c).unwrap_or(0))
        .collect();
    let pos = |name: &str| all.iter().position(|c| c.name == name);
    let mut fields: Vec<Field> = chosen.iter().map(|c| field(table, c)).collect();
    let base = &ctx.base;
    let (extra_fields, services) = match table {
        Table::Frames(_) => (
            vec![
                Field::new("obs_publisher_did", DataType::Char)
                    .id("obs_publisher_did")
                    .ucd("meta.ref.ivoid"),
                Field::new("access_url", DataType::Char)
                    .ucd("meta.ref.url")
                    .describe("The stored FITS file"),
                Field::new("datalink", DataType::Char)
                    .ucd("meta.ref.url")
                    .describe("DataLink: cutouts, previews and the processing lineage"),
            ],
            if ctx.plain {
                vec![]
            } else {
                vec![links_descriptor(base, "obs_publisher_did")]
            },
        ),
        Table::Sources(_) if ctx.source_frame.is_some() => (
            vec![
                Field::new("cutout_url", DataType::Char)
                    .ucd("meta.ref.url")
                    .describe(&format!(
                        "FITS cutout of {} arcsec around the source on the list's frame",
                        ctx.cutout_arcsec
                    )),
                Field::new("cutout_did", DataType::Char)
                    .id("cutout_did")
                    .ucd("meta.ref.ivoid")
                    .describe("The cutout's identifier, for DataLink"),
            ],
            if ctx.plain {
                vec![]
            } else {
                vec![links_descriptor(base, "cutout_did")]
            },
        ),
        Table::SourceLists | Table::AssociateLists => (
            vec![
                Field::new("rows_url", DataType::Char)
                    .ucd("meta.ref.url")
                    .describe("The list's rows as a VOTable"),
            ],
            vec![],
        ),
        _ => (vec![], vec![]),
    };
    fields.extend(extra_fields);
    let int_at = |row: &[Cell], name: &str| match pos(name).map(|i| &row[i]) {
        Some(Cell::Int(v)) => Some(*v),
        _ => None,
    };
    let float_at = |row: &[Cell], name: &str| match pos(name).map(|i| &row[i]) {
        Some(Cell::Float(v)) => Some(*v),
        _ => None,
    };
    let out_rows = rows
        .iter()
        .map(|row| {
            let mut cells: Vec<Cell> = index.iter().map(|&i| row[i].clone()).collect();
            match table {
                Table::Frames(_) => {
                    let id = int_at(row, "object_id").unwrap_or(0);
                    let did = ivoid(ObjectId(id));
                    cells.push(Cell::Text(did.clone()));
                    cells.push(Cell::Text(format!("{base}/data/{id}")));
                    cells.push(Cell::Text(super::datalink::links_url(base, &did)));
                }
                Table::Sources(_) => {
                    if let Some(frame) = ctx.source_frame {
                        match (float_at(row, "ra"), float_at(row, "dec")) {
                            (Some(ra), Some(dec)) => {
                                let q = format!(
                                    "frame={}&ra={ra}&dec={dec}&size={}&unit=arcsec",
                                    frame.0, ctx.cutout_arcsec
                                );
                                cells
                                    .push(Cell::Text(format!("{base}/api/cutout?{q}&format=fits")));
                                cells.push(Cell::Text(super::obscore::cutout_did(&q)));
                            }
                            _ => cells.extend([Cell::Null, Cell::Null]),
                        }
                    }
                }
                Table::SourceLists => cells.push(match int_at(row, "slid") {
                    Some(v) => Cell::Text(format!("{base}/table/SourceList/{v}?format=votable")),
                    None => Cell::Null,
                }),
                Table::AssociateLists => cells.push(match int_at(row, "alid") {
                    Some(v) => Cell::Text(format!("{base}/table/AssociateList/{v}?format=votable")),
                    None => Cell::Null,
                }),
                Table::Associations(_) => {}
            }
            cells
        })
        .collect();
    let status = if overflow {
        QueryStatus::Overflow
    } else {
        QueryStatus::Ok
    };
    Document {
        description: format!("wisecut: {}", table.title()),
        icrs: table.position().is_some() || matches!(table, Table::Frames(_)),
        infos: vec![
            status.info(),
            Info::new("total", total.to_string())
                .with_content("rows matching the query, over all pages"),
        ],
        params: vec![],
        table_name: table
            .title()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
        fields,
        rows: out_rows,
        services,
        trailing_infos: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FrameClass;

    #[test]
    fn every_column_of_every_table_has_a_ucd() {
        for table in [
            Table::Frames(FrameClass::ReducedScienceFrame),
            Table::SourceLists,
            Table::Sources(crate::ids::Slid(1)),
            Table::AssociateLists,
            Table::Associations(crate::ids::Alid(1)),
        ] {
            for c in table.columns() {
                assert!(!ucd(&table, c.name).is_empty(), "{} has no UCD", c.name);
            }
            let mains = table
                .columns()
                .iter()
                .filter(|c| ucd(&table, c.name) == "meta.id;meta.main")
                .count();
            // An association's rows repeat its AID: no column is a row's
            // main id there.
            let want = usize::from(!matches!(table, Table::Associations(_)));
            assert_eq!(mains, want, "{}", table.title());
        }
    }
}
