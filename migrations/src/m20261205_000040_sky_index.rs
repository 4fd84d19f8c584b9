//! The sky index of frames: each frame's footprint as the HEALPix cells (at
//! one fixed depth, `catalog::sky_index::DEPTH`) it touches, so a position
//! or cone query reads only candidate frames through an index on both
//! backends instead of filtering every frame.
//!
//! The rows are derived data: a frame's cells are written when it is
//! ingested, and a server fills them for frames that have none (an older
//! database) when it starts.

use sea_orm_migration::prelude::*;

/// Creates `frame_cell`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum FrameCell {
    Table,
    Cell,
    FrameId,
}

#[derive(DeriveIden)]
enum Frame {
    Table,
    ObjectId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(FrameCell::Table)
                .if_not_exists()
                .col(ColumnDef::new(FrameCell::Cell).big_integer().not_null())
                .col(ColumnDef::new(FrameCell::FrameId).big_integer().not_null())
                // (cell, frame) first: a query names cells and wants frames,
                // so the primary key alone answers it index-only.
                .primary_key(Index::create().col(FrameCell::Cell).col(FrameCell::FrameId))
                .foreign_key(
                    ForeignKey::create()
                        .from(FrameCell::Table, FrameCell::FrameId)
                        .to(Frame::Table, Frame::ObjectId)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // Deleting or re-indexing one frame finds its rows by frame.
        m.create_index(
            Index::create()
                .name("ix_frame_cell_frame")
                .table(FrameCell::Table)
                .col(FrameCell::FrameId)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(FrameCell::Table).to_owned())
            .await
    }
}
