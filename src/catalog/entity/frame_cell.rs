//! The `frame_cell` table: the sky index of frames, one row per HEALPix
//! cell (at `catalog::sky_index::DEPTH`) a frame's footprint touches.

use sea_orm::entity::prelude::*;

/// A frame-cell row.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "frame_cell")]
pub struct Model {
    /// The nested HEALPix cell.
    #[sea_orm(primary_key, auto_increment = false)]
    pub cell: i64,
    /// The frame (`frame.object_id`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub frame_id: i64,
}

/// No navigable relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
