//! The `dependency` table: "child was made from parent, in this role".

use sea_orm::entity::prelude::*;

/// A dependency edge.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "dependency")]
pub struct Model {
    /// The product.
    #[sea_orm(primary_key, auto_increment = false)]
    pub child_id: i64,
    /// What it was made from.
    pub parent_id: i64,
    /// Role name of the parent (`raw`, `bias`, `flat`, …).
    #[sea_orm(primary_key, auto_increment = false)]
    pub role: String,
    /// Position among parents of the same role.
    #[sea_orm(primary_key, auto_increment = false)]
    pub ordinal: i32,
}

/// No navigable relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
