//! The schema migrates up and down cleanly on every backend.

use super::common;
use migration::{Migrator, MigratorTrait};
use sea_orm::Database;

#[tokio::test]
async fn migrations_run_up_down_and_up_again() {
    for db in common::all_backends().await {
        let conn = Database::connect(&db.url).await.unwrap();
        let applied = Migrator::get_applied_migrations(&conn).await.unwrap();
        assert_eq!(
            applied.len(),
            Migrator::migrations().len(),
            "{}",
            db.backend
        );
        // Every table is there after `up` (Catalog::connect ran it).
        let counts = db.catalog.category_counts().await.unwrap();
        assert!(
            counts.iter().all(|c| c.count == 0),
            "{}: {counts:?}",
            db.backend
        );
        Migrator::down(&conn, None).await.unwrap();
        assert!(
            Migrator::get_applied_migrations(&conn)
                .await
                .unwrap()
                .is_empty(),
            "{}",
            db.backend
        );
        // The tables are really gone: counting fails.
        assert!(
            db.catalog.category_counts().await.is_err(),
            "{}",
            db.backend
        );
        Migrator::up(&conn, None).await.unwrap();
        assert!(db.catalog.category_counts().await.is_ok(), "{}", db.backend);
    }
}
