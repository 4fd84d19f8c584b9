//! Ingest is all or nothing, and records what it read.

use super::common;
use std::path::Path;
use wisecut::catalog::Catalog;
use wisecut::model::FrameClass;

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let t = to.join(e.file_name());
        if p.is_dir() {
            std::fs::create_dir_all(&t).unwrap();
            copy_dir(&p, &t);
        } else {
            std::fs::copy(&p, &t).unwrap();
        }
    }
}

async fn totals(c: &Catalog) -> Vec<i64> {
    c.category_counts()
        .await
        .unwrap()
        .iter()
        .map(|c| c.count)
        .collect()
}

#[tokio::test]
async fn a_corrupt_file_names_the_file_and_leaves_the_database_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(common::tiny_sample(), tmp.path());
    // Truncate one reduced frame in the middle of its data.
    let m = wisecut::catalog::ingest::Manifest::load(&tmp.path().join("manifest.json")).unwrap();
    let victim = m
        .frames
        .iter()
        .find(|f| f.class == "ReducedScienceFrame")
        .unwrap();
    let path = tmp.path().join(&victim.path);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    for db in common::all_backends().await {
        // A first, good ingest, so that "unchanged" means more than "empty".
        let db = common::ingested(db).await;
        let before = totals(&db.catalog).await;
        let err = db
            .catalog
            .ingest(&tmp.path().join("manifest.json"), tmp.path())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(&victim.path), "{}: {err}", db.backend);
        assert_eq!(totals(&db.catalog).await, before, "{}", db.backend);
    }
}

#[tokio::test]
async fn a_failure_after_writes_began_rolls_everything_back() {
    // Ingest the survey once, then again: the second ingest fails on the
    // unique file names only after it has inserted rows, inside the
    // transaction; nothing of it may remain.
    for db in common::all_backends().await {
        let db = common::ingested(db).await;
        let before = totals(&db.catalog).await;
        let dir = common::tiny_sample();
        let err = db.catalog.ingest(&dir.join("manifest.json"), dir).await;
        assert!(err.is_err(), "{}: second ingest succeeded", db.backend);
        assert_eq!(totals(&db.catalog).await, before, "{}", db.backend);
    }
}

#[tokio::test]
async fn frames_carry_header_attributes_and_sky_footprints() {
    let db = common::ingested(common::sqlite().await).await;
    let reduced = db
        .catalog
        .frames_of_class(FrameClass::ReducedScienceFrame)
        .await
        .unwrap();
    let f = &reduced[0];
    assert_eq!(f.instrument.as_deref(), Some("WISECAM"));
    assert!(f.filter.is_some() && f.chip.is_some() && f.date_obs.is_some());
    assert!(f.zeropoint.unwrap() > 20.0 && f.seeing.unwrap() > 0.5);
    let (ra, dec) = f.center.unwrap();
    assert!(
        (ra - 150.1).abs() < 0.2 && (dec - 2.2).abs() < 0.2,
        "{ra} {dec}"
    );
    assert_eq!(f.footprint.as_ref().unwrap().len(), 4);
    assert_eq!(f.checksum.len(), 64);
    // Calibration frames have no sky WCS but a validity range.
    let bias = &db
        .catalog
        .frames_of_class(FrameClass::BiasFrame)
        .await
        .unwrap()[0];
    assert!(bias.wcs.is_none() && bias.center.is_none());
    assert!(bias.timestamp_start.unwrap() < bias.timestamp_end.unwrap());
    // Source lists got SLIDs and sources.
    let sl = db.catalog.source_list(wisecut::ids::Slid(1)).await.unwrap();
    assert!(sl.frame_id.is_some());
}
