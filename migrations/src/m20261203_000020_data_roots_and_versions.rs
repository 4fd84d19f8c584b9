//! Named data roots and superseded versions, for ingesting a pipeline's own
//! directories in place.
//!
//! `data_root` maps a root's name to its directory: a frame ingested in
//! place records the root's name as its `store` and a path relative to the
//! root, so a survey's files can move (one row changes) without rewriting
//! every frame. `process_target.superseded_by` links an older version of a
//! product to the newer one that replaced it; both rows stay, and the
//! newest valid version is the one references resolve to (as in
//! Astro-WISE). `source_list.checksum` is a catalog file's SHA-256, so
//! ingesting the same catalog twice changes nothing.

use sea_orm_migration::prelude::*;

/// Creates `data_root` and adds `process_target.superseded_by`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DataRoot {
    Table,
    Name,
    Path,
    CreatedAt,
}

#[derive(DeriveIden)]
enum SourceList {
    Table,
    Checksum,
}

#[derive(DeriveIden)]
enum ProcessTarget {
    Table,
    SupersededBy,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(DataRoot::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(DataRoot::Name)
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(DataRoot::Path).string_len(1024).not_null())
                .col(
                    ColumnDef::new(DataRoot::CreatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(ProcessTarget::Table)
                .add_column(
                    ColumnDef::new(ProcessTarget::SupersededBy)
                        .big_integer()
                        .null(),
                )
                .to_owned(),
        )
        .await?;
        // A catalog file's content identity, so ingesting it twice is a
        // no-op as it is for frames.
        m.alter_table(
            Table::alter()
                .table(SourceList::Table)
                .add_column(ColumnDef::new(SourceList::Checksum).string_len(64).null())
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(SourceList::Table)
                .drop_column(SourceList::Checksum)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(ProcessTarget::Table)
                .drop_column(ProcessTarget::SupersededBy)
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table(DataRoot::Table).to_owned())
            .await
    }
}
