//! The `association` table: (ALID, AID) → member sources (SLID, SID).

use sea_orm::entity::prelude::*;

/// An association member row.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "association")]
pub struct Model {
    /// ALID.
    #[sea_orm(primary_key, auto_increment = false)]
    pub alid: i64,
    /// AID.
    #[sea_orm(primary_key, auto_increment = false)]
    pub aid: i64,
    /// SLID of the member.
    #[sea_orm(primary_key, auto_increment = false)]
    pub slid: i64,
    /// SID of the member.
    #[sea_orm(primary_key, auto_increment = false)]
    pub sid: i64,
    /// Flag.
    pub flag: i32,
}

/// No navigable relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
