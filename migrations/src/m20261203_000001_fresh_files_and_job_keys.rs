//! Two columns that make the server safe to leave running:
//!
//! * `frame.file_mtime_ns`: the modification time of a frame's file when it
//!   was ingested. A cutout checks the file it reads against the catalogue:
//!   a different size is refused at once, a different modification time
//!   means the bytes are checksummed again before anything is served, so a
//!   product (or a 304) is never made from bytes other than those ingested.
//!   Rows ingested before this column existed have none and are verified
//!   once by checksum.
//! * `job.request_key`: the hash of a job's canonical parameters, so the
//!   same request (a link from a table, followed again, or by a crawler)
//!   finds its existing job instead of making a new one.

use sea_orm_migration::prelude::*;

/// Adds `frame.file_mtime_ns`, `job.request_key` and its index.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Frame {
    Table,
    FileMtimeNs,
}

#[derive(DeriveIden)]
enum Job {
    Table,
    RequestKey,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Frame::Table)
                .add_column(ColumnDef::new(Frame::FileMtimeNs).big_integer().null())
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Job::Table)
                .add_column(ColumnDef::new(Job::RequestKey).string_len(64).null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("job_request_key")
                .table(Job::Table)
                .col(Job::RequestKey)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("job_request_key")
                .table(Job::Table)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Job::Table)
                .drop_column(Job::RequestKey)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Frame::Table)
                .drop_column(Frame::FileMtimeNs)
                .to_owned(),
        )
        .await
    }
}
