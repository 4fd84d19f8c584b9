//! `frame.store_etag`: the ETag of a frame's object in its remote store
//! (HTTP data server or S3) once `wisecut root verify` has read the whole
//! object and found the SHA-256 recorded at ingest. A server then refuses
//! the object whenever the store names another ETag: a replacement, even
//! one of the same size, is noticed without reading the file again.
//! Cleared when the root is moved (`wisecut root set`).

use sea_orm_migration::prelude::*;

/// Adds the nullable column.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Frame {
    Table,
    StoreEtag,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Frame::Table)
                .add_column(ColumnDef::new(Frame::StoreEtag).text().null())
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Frame::Table)
                .drop_column(Frame::StoreEtag)
                .to_owned(),
        )
        .await
    }
}
