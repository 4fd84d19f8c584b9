//! Users, projects, sessions and API tokens, and jobs that belong to their
//! submitter: the tables behind Astro-WISE-style contexts (who is asking,
//! in which project) and the privileges every catalogue query enforces.
//!
//! Secrets are never stored: a password is an argon2 PHC string, a session
//! cookie and an API token are stored as their SHA-256, so a copy of the
//! database gives no way into the server. `job.public_id` is the job's
//! unguessable name in every URL; the numeric id stays internal (leases,
//! directories).

use sea_orm_migration::prelude::*;

/// Creates the user, project, membership, session and token tables and
/// adds ownership to jobs.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WcUser {
    Table,
    Name,
    PasswordHash,
    Superuser,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Project {
    Table,
    Name,
    Description,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ProjectMember {
    Table,
    Project,
    UserName,
    Role,
}

#[derive(DeriveIden)]
enum WebSession {
    Table,
    IdHash,
    UserName,
    Project,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum ApiToken {
    Table,
    Id,
    UserName,
    Label,
    TokenHash,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Job {
    Table,
    PublicId,
    OwnerUser,
    OwnerBrowser,
    OwnerProject,
    Share,
}

#[derive(DeriveIden)]
enum ProcessTarget {
    Table,
}

fn created_at<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(WcUser::Table)
                .col(
                    ColumnDef::new(WcUser::Name)
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(WcUser::PasswordHash).text().not_null())
                .col(
                    ColumnDef::new(WcUser::Superuser)
                        .integer()
                        .not_null()
                        .default(0),
                )
                .col(created_at(WcUser::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Project::Table)
                .col(
                    ColumnDef::new(Project::Name)
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(Project::Description)
                        .text()
                        .not_null()
                        .default(""),
                )
                .col(created_at(Project::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ProjectMember::Table)
                .col(
                    ColumnDef::new(ProjectMember::Project)
                        .string_len(64)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ProjectMember::UserName)
                        .string_len(64)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ProjectMember::Role)
                        .string_len(16)
                        .not_null(),
                )
                .primary_key(
                    Index::create()
                        .col(ProjectMember::Project)
                        .col(ProjectMember::UserName),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(ProjectMember::Table, ProjectMember::Project)
                        .to(Project::Table, Project::Name)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(ProjectMember::Table, ProjectMember::UserName)
                        .to(WcUser::Table, WcUser::Name)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(WebSession::Table)
                .col(
                    ColumnDef::new(WebSession::IdHash)
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(WebSession::UserName)
                        .string_len(64)
                        .not_null(),
                )
                .col(ColumnDef::new(WebSession::Project).string_len(64).null())
                .col(created_at(WebSession::CreatedAt))
                .col(created_at(WebSession::ExpiresAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(WebSession::Table, WebSession::UserName)
                        .to(WcUser::Table, WcUser::Name)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ApiToken::Table)
                .col(
                    ColumnDef::new(ApiToken::Id)
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(ColumnDef::new(ApiToken::UserName).string_len(64).not_null())
                .col(ColumnDef::new(ApiToken::Label).string_len(128).not_null())
                .col(
                    ColumnDef::new(ApiToken::TokenHash)
                        .string_len(64)
                        .not_null()
                        .unique_key(),
                )
                .col(created_at(ApiToken::CreatedAt))
                .col(
                    ColumnDef::new(ApiToken::RevokedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(ApiToken::Table, ApiToken::UserName)
                        .to(WcUser::Table, WcUser::Name)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // SQLite adds one column per ALTER TABLE.
        for col in [
            ColumnDef::new(Job::PublicId)
                .string_len(32)
                .null()
                .to_owned(),
            ColumnDef::new(Job::OwnerUser)
                .string_len(64)
                .null()
                .to_owned(),
            ColumnDef::new(Job::OwnerBrowser)
                .string_len(64)
                .null()
                .to_owned(),
            ColumnDef::new(Job::OwnerProject)
                .string_len(64)
                .null()
                .to_owned(),
            ColumnDef::new(Job::Share)
                .string_len(16)
                .not_null()
                .default("private")
                .to_owned(),
        ] {
            m.alter_table(Table::alter().table(Job::Table).add_column(col).to_owned())
                .await?;
        }
        m.create_index(
            Index::create()
                .name("ix_job_public_id")
                .table(Job::Table)
                .col(Job::PublicId)
                .unique()
                .to_owned(),
        )
        .await?;
        // The visibility condition reads these three columns of every
        // candidate row; an index over them keeps counts of a project's
        // objects from scanning the targets' other columns.
        m.create_index(
            Index::create()
                .name("ix_target_access")
                .table(ProcessTarget::Table)
                .col(Alias::new("project"))
                .col(Alias::new("privileges"))
                .col(Alias::new("creator"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("ix_target_access")
                .table(ProcessTarget::Table)
                .to_owned(),
        )
        .await?;
        m.drop_index(
            Index::drop()
                .name("ix_job_public_id")
                .table(Job::Table)
                .to_owned(),
        )
        .await?;
        for col in [
            Job::Share,
            Job::OwnerProject,
            Job::OwnerBrowser,
            Job::OwnerUser,
            Job::PublicId,
        ] {
            m.alter_table(Table::alter().table(Job::Table).drop_column(col).to_owned())
                .await?;
        }
        for t in [
            ApiToken::Table.into_iden(),
            WebSession::Table.into_iden(),
            ProjectMember::Table.into_iden(),
            Project::Table.into_iden(),
            WcUser::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
