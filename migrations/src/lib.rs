//! Database migrations of wisecut, one file per schema change.
//!
//! The schema must run unchanged on SQLite (the embedded default) and
//! PostgreSQL (multi-server deployments), so every statement here is built with
//! sea-query's portable column types; nothing SQLite-only is allowed.

pub use sea_orm_migration::prelude::*;

mod m20261121_000001_foundation;
mod m20261121_000002_job_lease;
mod m20261203_000001_fresh_files_and_job_keys;
mod m20261203_000010_obscore;
mod m20261203_000020_data_roots_and_versions;
mod m20261204_000030_users_and_access;
mod m20261205_000040_sky_index;
mod m20261205_000041_catalog_state;
mod m20261206_000042_store_etag;

/// The ordered list of wisecut's migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_foundation::Migration),
            Box::new(m20261121_000002_job_lease::Migration),
            Box::new(m20261203_000001_fresh_files_and_job_keys::Migration),
            Box::new(m20261203_000010_obscore::Migration),
            Box::new(m20261203_000020_data_roots_and_versions::Migration),
            Box::new(m20261204_000030_users_and_access::Migration),
            Box::new(m20261205_000040_sky_index::Migration),
            Box::new(m20261205_000041_catalog_state::Migration),
            Box::new(m20261206_000042_store_etag::Migration),
        ]
    }
}
