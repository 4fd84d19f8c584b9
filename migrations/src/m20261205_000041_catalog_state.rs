//! `catalog_state`: small named counters every server reads, so that caches
//! of derived data (the coverage MOC) on several servers notice a change
//! another server made: `frames`, bumped in the same transaction as every
//! ingest that adds frames, and `visibility`, bumped with every change of
//! who may see what (a cache may extend itself by new frames after the
//! first, and must start again after the second).

use sea_orm_migration::prelude::*;

/// Creates `catalog_state` with its two rows.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CatalogState {
    Table,
    Name,
    Value,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(CatalogState::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(CatalogState::Name)
                        .string()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(CatalogState::Value).big_integer().not_null())
                .to_owned(),
        )
        .await?;
        m.exec_stmt(
            Query::insert()
                .into_table(CatalogState::Table)
                .columns([CatalogState::Name, CatalogState::Value])
                .values_panic(["frames".into(), 0i64.into()])
                .values_panic(["visibility".into(), 0i64.into()])
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(CatalogState::Table).to_owned())
            .await
    }
}
