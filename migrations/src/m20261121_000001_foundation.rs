//! The foundation schema: process targets, frames, dependency edges, source
//! lists and sources, associate lists and associations, and jobs.
//!
//! Every persistent thing is a *process target* with a global `object_id`; the
//! class-specific tables share that key. Dependency edges link any two process
//! targets with a role name, so lineage can be walked with `WITH RECURSIVE` in
//! both directions on SQLite and PostgreSQL alike.

use sea_orm_migration::prelude::*;

/// Creates (and on `down` drops) the foundation tables.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ProcessTarget {
    Table,
    ObjectId,
    ClassName,
    CreationDate,
    IsValid,
    QualityFlags,
    ProcessStatus,
    Creator,
    Project,
    Privileges,
}

// The iden names are the column names, so `Frame::FrameClass` must keep the
// table's prefix that clippy would have us drop.
#[derive(DeriveIden)]
#[expect(clippy::enum_variant_names)]
enum Frame {
    Table,
    ObjectId,
    FrameClass,
    Filename,
    Store,
    Path,
    Hdu,
    Checksum,
    FileSize,
    Compressed,
    Instrument,
    Filter,
    Chip,
    Object,
    DateObs,
    MjdObs,
    Exptime,
    Naxis1,
    Naxis2,
    Bitpix,
    Wcs,
    RaCenter,
    DecCenter,
    RaMin,
    RaMax,
    DecMin,
    DecMax,
    Footprint,
    Zeropoint,
    Seeing,
    TimestampStart,
    TimestampEnd,
    Extra,
}

#[derive(DeriveIden)]
enum Dependency {
    Table,
    ChildId,
    ParentId,
    Role,
    Ordinal,
}

#[derive(DeriveIden)]
enum SourceList {
    Table,
    ObjectId,
    Slid,
    Name,
    FrameId,
    Filter,
    Chip,
    NSources,
    Store,
    Path,
    Hdu,
}

#[derive(DeriveIden)]
enum Source {
    Table,
    Slid,
    Sid,
    Ra,
    Dec,
    X,
    Y,
    A,
    B,
    Theta,
    MagAuto,
    MagerrAuto,
    FluxAuto,
    Fwhm,
    ClassStar,
    Flags,
    Hpx,
}

#[derive(DeriveIden)]
enum AssociateList {
    Table,
    ObjectId,
    Alid,
    Name,
    AssocType,
    SearchDistance,
    NAssociations,
    NMembers,
}

#[derive(DeriveIden)]
enum Association {
    Table,
    Alid,
    Aid,
    Slid,
    Sid,
    Flag,
}

#[derive(DeriveIden)]
enum Job {
    Table,
    Id,
    Kind,
    Status,
    Progress,
    Params,
    Log,
    Result,
    Error,
    CreatedAt,
    StartedAt,
    FinishedAt,
}

/// A foreign key from `table.col` to `process_target.object_id` that removes
/// the row with its process target.
fn fk_target(table: impl IntoIden, col: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(ProcessTarget::Table, ProcessTarget::ObjectId)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

fn index(name: &str, table: impl IntoIden, cols: &[&'static str]) -> IndexCreateStatement {
    let mut stmt = Index::create();
    stmt.name(name).table(table);
    for col in cols {
        stmt.col(Alias::new(*col));
    }
    stmt.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ProcessTarget::Table)
                .col(
                    ColumnDef::new(ProcessTarget::ObjectId)
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(ProcessTarget::ClassName)
                        .string_len(64)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ProcessTarget::CreationDate)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ProcessTarget::IsValid)
                        .integer()
                        .not_null()
                        .default(1),
                )
                .col(
                    ColumnDef::new(ProcessTarget::QualityFlags)
                        .big_integer()
                        .not_null()
                        .default(0),
                )
                .col(
                    ColumnDef::new(ProcessTarget::ProcessStatus)
                        .integer()
                        .not_null()
                        .default(0),
                )
                .col(
                    ColumnDef::new(ProcessTarget::Creator)
                        .string_len(64)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ProcessTarget::Project)
                        .string_len(64)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ProcessTarget::Privileges)
                        .integer()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_process_target_class",
            ProcessTarget::Table,
            &["class_name"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(Frame::Table)
                .col(
                    ColumnDef::new(Frame::ObjectId)
                        .big_integer()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(Frame::FrameClass).string_len(64).not_null())
                .col(
                    ColumnDef::new(Frame::Filename)
                        .string_len(255)
                        .not_null()
                        .unique_key(),
                )
                .col(ColumnDef::new(Frame::Store).string_len(64).not_null())
                .col(ColumnDef::new(Frame::Path).string_len(1024).not_null())
                .col(ColumnDef::new(Frame::Hdu).integer().not_null())
                .col(ColumnDef::new(Frame::Checksum).string_len(64).not_null())
                .col(ColumnDef::new(Frame::FileSize).big_integer().not_null())
                .col(ColumnDef::new(Frame::Compressed).boolean().not_null())
                .col(ColumnDef::new(Frame::Instrument).string_len(64).null())
                .col(ColumnDef::new(Frame::Filter).string_len(32).null())
                .col(ColumnDef::new(Frame::Chip).string_len(32).null())
                .col(ColumnDef::new(Frame::Object).string_len(128).null())
                .col(
                    ColumnDef::new(Frame::DateObs)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .col(ColumnDef::new(Frame::MjdObs).double().null())
                .col(ColumnDef::new(Frame::Exptime).double().null())
                .col(ColumnDef::new(Frame::Naxis1).integer().not_null())
                .col(ColumnDef::new(Frame::Naxis2).integer().not_null())
                .col(ColumnDef::new(Frame::Bitpix).integer().not_null())
                .col(ColumnDef::new(Frame::Wcs).text().null())
                .col(ColumnDef::new(Frame::RaCenter).double().null())
                .col(ColumnDef::new(Frame::DecCenter).double().null())
                .col(ColumnDef::new(Frame::RaMin).double().null())
                .col(ColumnDef::new(Frame::RaMax).double().null())
                .col(ColumnDef::new(Frame::DecMin).double().null())
                .col(ColumnDef::new(Frame::DecMax).double().null())
                .col(ColumnDef::new(Frame::Footprint).text().null())
                .col(ColumnDef::new(Frame::Zeropoint).double().null())
                .col(ColumnDef::new(Frame::Seeing).double().null())
                .col(
                    ColumnDef::new(Frame::TimestampStart)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .col(
                    ColumnDef::new(Frame::TimestampEnd)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .col(ColumnDef::new(Frame::Extra).text().not_null())
                .foreign_key(&mut fk_target(Frame::Table, Frame::ObjectId))
                .to_owned(),
        )
        .await?;
        for (name, cols) in [
            ("ix_frame_class", &["frame_class"][..]),
            ("ix_frame_filter", &["filter"]),
            ("ix_frame_chip", &["chip"]),
            ("ix_frame_mjd", &["mjd_obs"]),
            ("ix_frame_dec_range", &["dec_min", "dec_max"]),
        ] {
            m.create_index(index(name, Frame::Table, cols)).await?;
        }

        m.create_table(
            Table::create()
                .table(Dependency::Table)
                .col(ColumnDef::new(Dependency::ChildId).big_integer().not_null())
                .col(
                    ColumnDef::new(Dependency::ParentId)
                        .big_integer()
                        .not_null(),
                )
                .col(ColumnDef::new(Dependency::Role).string_len(32).not_null())
                .col(ColumnDef::new(Dependency::Ordinal).integer().not_null())
                .primary_key(
                    Index::create()
                        .col(Dependency::ChildId)
                        .col(Dependency::Role)
                        .col(Dependency::Ordinal),
                )
                .foreign_key(&mut fk_target(Dependency::Table, Dependency::ChildId))
                .foreign_key(&mut fk_target(Dependency::Table, Dependency::ParentId))
                .to_owned(),
        )
        .await?;
        // Both directions of the walk need an index that starts with the key
        // they join on; the covering columns keep each step an index-only read.
        m.create_index(index(
            "ix_dependency_child",
            Dependency::Table,
            &["child_id", "parent_id", "role"],
        ))
        .await?;
        m.create_index(index(
            "ix_dependency_parent",
            Dependency::Table,
            &["parent_id", "child_id", "role"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(SourceList::Table)
                .col(
                    ColumnDef::new(SourceList::ObjectId)
                        .big_integer()
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(SourceList::Slid)
                        .big_integer()
                        .not_null()
                        .unique_key(),
                )
                .col(ColumnDef::new(SourceList::Name).string_len(255).not_null())
                .col(ColumnDef::new(SourceList::FrameId).big_integer().null())
                .col(ColumnDef::new(SourceList::Filter).string_len(32).null())
                .col(ColumnDef::new(SourceList::Chip).string_len(32).null())
                .col(
                    ColumnDef::new(SourceList::NSources)
                        .big_integer()
                        .not_null(),
                )
                .col(ColumnDef::new(SourceList::Store).string_len(64).null())
                .col(ColumnDef::new(SourceList::Path).string_len(1024).null())
                .col(ColumnDef::new(SourceList::Hdu).integer().null())
                .foreign_key(&mut fk_target(SourceList::Table, SourceList::ObjectId))
                .foreign_key(
                    ForeignKey::create()
                        .from(SourceList::Table, SourceList::FrameId)
                        .to(Frame::Table, Frame::ObjectId)
                        .on_delete(ForeignKeyAction::SetNull),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_source_list_frame",
            SourceList::Table,
            &["frame_id"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(Source::Table)
                .col(ColumnDef::new(Source::Slid).big_integer().not_null())
                .col(ColumnDef::new(Source::Sid).big_integer().not_null())
                .col(ColumnDef::new(Source::Ra).double().not_null())
                .col(ColumnDef::new(Source::Dec).double().not_null())
                .col(ColumnDef::new(Source::X).double().not_null())
                .col(ColumnDef::new(Source::Y).double().not_null())
                .col(ColumnDef::new(Source::A).double().not_null())
                .col(ColumnDef::new(Source::B).double().not_null())
                .col(ColumnDef::new(Source::Theta).double().not_null())
                .col(ColumnDef::new(Source::MagAuto).double().null())
                .col(ColumnDef::new(Source::MagerrAuto).double().null())
                .col(ColumnDef::new(Source::FluxAuto).double().not_null())
                .col(ColumnDef::new(Source::Fwhm).double().not_null())
                .col(ColumnDef::new(Source::ClassStar).double().not_null())
                .col(ColumnDef::new(Source::Flags).integer().not_null())
                .col(ColumnDef::new(Source::Hpx).big_integer().not_null())
                .primary_key(Index::create().col(Source::Slid).col(Source::Sid))
                .foreign_key(
                    ForeignKey::create()
                        .from(Source::Table, Source::Slid)
                        .to(SourceList::Table, SourceList::Slid)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index("ix_source_hpx", Source::Table, &["hpx"]))
            .await?;
        m.create_index(index("ix_source_mag", Source::Table, &["mag_auto"]))
            .await?;

        m.create_table(
            Table::create()
                .table(AssociateList::Table)
                .col(
                    ColumnDef::new(AssociateList::ObjectId)
                        .big_integer()
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(AssociateList::Alid)
                        .big_integer()
                        .not_null()
                        .unique_key(),
                )
                .col(
                    ColumnDef::new(AssociateList::Name)
                        .string_len(255)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(AssociateList::AssocType)
                        .string_len(16)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(AssociateList::SearchDistance)
                        .double()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(AssociateList::NAssociations)
                        .big_integer()
                        .not_null(),
                )
                .col(ColumnDef::new(AssociateList::NMembers).integer().not_null())
                .foreign_key(&mut fk_target(
                    AssociateList::Table,
                    AssociateList::ObjectId,
                ))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Association::Table)
                .col(ColumnDef::new(Association::Alid).big_integer().not_null())
                .col(ColumnDef::new(Association::Aid).big_integer().not_null())
                .col(ColumnDef::new(Association::Slid).big_integer().not_null())
                .col(ColumnDef::new(Association::Sid).big_integer().not_null())
                .col(ColumnDef::new(Association::Flag).integer().not_null())
                .primary_key(
                    Index::create()
                        .col(Association::Alid)
                        .col(Association::Aid)
                        .col(Association::Slid)
                        .col(Association::Sid),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Association::Table, Association::Alid)
                        .to(AssociateList::Table, AssociateList::Alid)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Association::Table, (Association::Slid, Association::Sid))
                        .to(Source::Table, (Source::Slid, Source::Sid))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_association_source",
            Association::Table,
            &["slid", "sid"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(Job::Table)
                .col(
                    ColumnDef::new(Job::Id)
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(ColumnDef::new(Job::Kind).string_len(32).not_null())
                .col(ColumnDef::new(Job::Status).string_len(16).not_null())
                .col(
                    ColumnDef::new(Job::Progress)
                        .double()
                        .not_null()
                        .default(0.0),
                )
                .col(ColumnDef::new(Job::Params).text().not_null())
                .col(ColumnDef::new(Job::Log).text().not_null())
                .col(ColumnDef::new(Job::Result).text().null())
                .col(ColumnDef::new(Job::Error).text().null())
                .col(
                    ColumnDef::new(Job::CreatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Job::StartedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .col(
                    ColumnDef::new(Job::FinishedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index("ix_job_status", Job::Table, &["status"]))
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Children before parents, so foreign keys never dangle mid-way.
        for table in [
            Job::Table.into_iden(),
            Association::Table.into_iden(),
            AssociateList::Table.into_iden(),
            Source::Table.into_iden(),
            SourceList::Table.into_iden(),
            Dependency::Table.into_iden(),
            Frame::Table.into_iden(),
            ProcessTarget::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
