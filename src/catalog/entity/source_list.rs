//! The `source_list` table.

use sea_orm::entity::prelude::*;

/// A SourceList row.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "source_list")]
pub struct Model {
    /// Process-target id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub object_id: i64,
    /// SLID.
    pub slid: i64,
    /// Name.
    pub name: String,
    /// Frame the list was extracted from.
    pub frame_id: Option<i64>,
    /// Filter.
    pub filter: Option<String>,
    /// Chip.
    pub chip: Option<String>,
    /// Number of sources.
    pub n_sources: i64,
    /// Store of the catalog file it was ingested from.
    pub store: Option<String>,
    /// Path of that file.
    pub path: Option<String>,
    /// HDU of the table in that file.
    pub hdu: Option<i32>,
    /// SHA-256 of that file, when ingested from one.
    pub checksum: Option<String>,
}

/// No navigable relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
