//! The `data_root` table: named directories that frames ingested in place
//! are recorded under.

use sea_orm::entity::prelude::*;

/// A data root row.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "data_root")]
pub struct Model {
    /// The root's name (a frame's `store`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    /// Absolute directory.
    pub path: String,
    /// When it was registered.
    pub created_at: DateTimeUtc,
}

/// No navigable relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
