//! The `process_target` table: one row per persistent object.

use sea_orm::entity::prelude::*;

/// A process target row.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "process_target")]
pub struct Model {
    /// Global object id.
    #[sea_orm(primary_key)]
    pub object_id: i64,
    /// Class name.
    pub class_name: String,
    /// Creation date.
    pub creation_date: DateTimeUtc,
    /// Validity super-flag.
    pub is_valid: i32,
    /// Quality bitmask.
    pub quality_flags: i64,
    /// Process status.
    pub process_status: i32,
    /// Creator.
    pub creator: String,
    /// Project.
    pub project: String,
    /// Privilege level.
    pub privileges: i32,
    /// The newer version that replaced this one, if any.
    pub superseded_by: Option<i64>,
}

/// No navigable relations; joins are written where they are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
