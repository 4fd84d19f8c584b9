//! Job leases and retention: which server process runs a job and when it last
//! said so, how many times it was started, a short title, and whether its
//! result files were removed by the retention policy.
//!
//! A job whose heartbeat is older than the lease is taken to belong to a dead
//! process; any server may then put it back in the queue (or fail it after
//! too many attempts). That is what makes a restart neither lose nor
//! duplicate a job, also with several servers on one PostgreSQL database.

use sea_orm_migration::prelude::*;

/// Adds the lease and retention columns to `job`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Job {
    Table,
    Title,
    Owner,
    HeartbeatAt,
    Attempts,
    Expired,
    Bytes,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite takes one ADD COLUMN per ALTER TABLE.
        let columns = [
            ColumnDef::new(Job::Title)
                .string_len(200)
                .not_null()
                .default("")
                .to_owned(),
            ColumnDef::new(Job::Owner).string_len(64).null().to_owned(),
            ColumnDef::new(Job::HeartbeatAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
            ColumnDef::new(Job::Attempts)
                .integer()
                .not_null()
                .default(0)
                .to_owned(),
            ColumnDef::new(Job::Expired)
                .boolean()
                .not_null()
                .default(false)
                .to_owned(),
            ColumnDef::new(Job::Bytes)
                .big_integer()
                .not_null()
                .default(0)
                .to_owned(),
        ];
        for mut col in columns {
            m.alter_table(
                Table::alter()
                    .table(Job::Table)
                    .add_column(&mut col)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for col in [
            Job::Bytes,
            Job::Expired,
            Job::Attempts,
            Job::HeartbeatAt,
            Job::Owner,
            Job::Title,
        ] {
            m.alter_table(Table::alter().table(Job::Table).drop_column(col).to_owned())
                .await?;
        }
        Ok(())
    }
}
