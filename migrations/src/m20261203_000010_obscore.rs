//! The `obscore` table: one row per frame with its ObsCore 1.1 values (the
//! same values an SIA 2.0 answer gives), so TAP can query ObsCore with
//! plain SQL on SQLite and PostgreSQL.
//!
//! Besides the ObsCore columns it holds helper columns that make the
//! footprint (`s_region`) testable in SQL: the four corners as unit vectors
//! (`c1x` … `c4z`), the inward unit normals of the edges (`n1x` … `n4z`),
//! the cosines of the edges (`e1` … `e4`) and dec bounds of the footprint
//! (`dec_min`, `dec_max`, indexed, for a cheap prefilter).
//! `mapping_version` says which version of the mapping wrote a row, so
//! rows are rewritten when the mapping changes. The rows are written by
//! `wisecut::vo::obscore::sync_table`.

use sea_orm_migration::prelude::*;

/// Creates `obscore` and its indexes.
#[derive(DeriveMigrationName)]
pub struct Migration;

/// Text columns, in table order.
const TEXT: &[&str] = &[
    "dataproduct_type",
    "obs_collection",
    "obs_id",
    "obs_publisher_did",
    "access_url",
    "access_format",
    "target_name",
    "s_region",
    "o_ucd",
    "pol_states",
    "facility_name",
    "instrument_name",
    "filter",
    "chip",
    "preview",
    "datalink",
];

/// Integer columns.
const INT: &[&str] = &[
    "calib_level",
    "access_estsize",
    "s_xel1",
    "s_xel2",
    "t_xel",
    "em_xel",
    "pol_xel",
    "mapping_version",
];

/// Double columns.
const DOUBLE: &[&str] = &[
    "s_ra",
    "s_dec",
    "s_fov",
    "s_resolution",
    "t_min",
    "t_max",
    "t_exptime",
    "t_resolution",
    "em_min",
    "em_max",
    "em_res_power",
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

#[derive(DeriveIden)]
enum Obscore {
    Table,
    FrameId,
}

fn index(name: &str, cols: &[&'static str]) -> IndexCreateStatement {
    let mut stmt = Index::create();
    stmt.name(name).table(Obscore::Table);
    for col in cols {
        stmt.col(Alias::new(*col));
    }
    stmt.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let mut t = Table::create();
        t.table(Obscore::Table).if_not_exists().col(
            ColumnDef::new(Obscore::FrameId)
                .big_integer()
                .not_null()
                .primary_key(),
        );
        for c in TEXT {
            t.col(ColumnDef::new(Alias::new(*c)).text().null());
        }
        for c in INT {
            t.col(ColumnDef::new(Alias::new(*c)).big_integer().null());
        }
        for c in DOUBLE {
            t.col(ColumnDef::new(Alias::new(*c)).double().null());
        }
        m.create_table(t.to_owned()).await?;
        m.create_index(index("ix_obscore_collection", &["obs_collection"]))
            .await?;
        m.create_index(index("ix_obscore_did", &["obs_publisher_did"]))
            .await?;
        m.create_index(index("ix_obscore_dec", &["dec_min", "dec_max"]))
            .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Obscore::Table).to_owned())
            .await
    }
}
