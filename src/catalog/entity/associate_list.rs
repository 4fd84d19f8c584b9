//! The `associate_list` table.

use sea_orm::entity::prelude::*;

/// An AssociateList row.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "associate_list")]
pub struct Model {
    /// Process-target id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub object_id: i64,
    /// ALID.
    pub alid: i64,
    /// Name.
    pub name: String,
    /// `chain`, `master` or `matched`.
    pub assoc_type: String,
    /// Search distance in arcsec.
    pub search_distance: f64,
    /// Number of associations.
    pub n_associations: i64,
    /// Number of member source lists.
    pub n_members: i32,
}

/// No navigable relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
