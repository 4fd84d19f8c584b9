//! Shared fixtures: fresh databases on every backend under test, and the tiny
//! sample survey generated once per test run.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use wisecut::catalog::Catalog;
use wisecut::config::Config;
use wisecut::sample::{self, SampleSpec};

/// Seed of the shared tiny survey.
pub const SEED: u64 = 7;

/// The directory of the tiny sample survey's files and manifest, generated on
/// first use (files only; each test ingests into its own database).
pub fn tiny_sample() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("wisecut-tiny-")
            .tempdir()
            .expect("temp dir")
            .keep();
        sample::generate(&dir, &SampleSpec::tiny(SEED), &|_, _, _| {}).expect("tiny sample");
        dir
    })
}

/// A catalogue on a fresh database, with the guard that keeps it alive.
pub struct TestDb {
    /// Backend name, for assertion messages.
    pub backend: &'static str,
    /// The catalogue.
    pub catalog: Catalog,
    /// Its URL.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

/// A fresh SQLite database in a temporary directory.
pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = Config::sqlite_url(&dir.path().join("test.db"));
    let catalog = Catalog::connect(&url).await.expect("sqlite connects");
    TestDb {
        backend: "sqlite",
        catalog,
        url,
        _dir: Some(dir),
    }
}

/// A fresh PostgreSQL database when `WISECUT_TEST_PG` names a server
/// (`postgres://user@host:port`). In CI its absence is an error, so the
/// PostgreSQL half of the suite can never be skipped silently.
pub async fn postgres() -> Option<TestDb> {
    let Ok(base) = std::env::var("WISECUT_TEST_PG") else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must set WISECUT_TEST_PG so database tests run on PostgreSQL too"
        );
        eprintln!("note: WISECUT_TEST_PG not set; PostgreSQL half of this test not run");
        return None;
    };
    use sea_orm::{ConnectionTrait, Database};
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let name = format!(
        "wisecut_test_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    let admin = Database::connect(format!("{base}/postgres"))
        .await
        .expect("PostgreSQL server reachable");
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    let url = format!("{base}/{name}");
    let catalog = Catalog::connect(&url).await.expect("postgres connects");
    Some(TestDb {
        backend: "postgres",
        catalog,
        url,
        _dir: None,
    })
}

/// Every backend under test, each with a fresh database.
pub async fn all_backends() -> Vec<TestDb> {
    let mut v = vec![sqlite().await];
    if let Some(pg) = postgres().await {
        v.push(pg);
    }
    v
}

/// A fresh database with the tiny sample ingested.
pub async fn ingested(db: TestDb) -> TestDb {
    let dir = tiny_sample();
    db.catalog
        .ingest(&dir.join("manifest.json"), dir)
        .await
        .unwrap_or_else(|e| panic!("{}: ingest failed: {e}", db.backend));
    db
}
