//! `Catalog::associate` and `wisecut associate` on SourceLists built with
//! known offsets: the association rows, the AssociateList row, its
//! dependency edges, all-or-nothing failures and the VOTable export.

use super::common;
use axum::http::StatusCode;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use wisecut::catalog::Catalog;
use wisecut::catalog::associate::AssociateRequest;
use wisecut::catalog::ingest::{FrameEntry, Manifest, SourceListEntry};
use wisecut::config::Config;
use wisecut::ids::{Alid, Slid};
use wisecut::imaging::fits::{self, Card, Column, ColumnData, Compression, PixelData};
use wisecut::imaging::raster::Raster;
use wisecut::model::AssocType;

const ARCSEC: f64 = 1.0 / 3600.0;
const DEC0: f64 = 2.0;
const RA0: f64 = 150.0;

/// Writes a source table of (SID, RA, Dec) rows.
fn write_list(path: &Path, rows: &[(i64, f64, f64)]) {
    let n = rows.len();
    let sid: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let ra: Vec<f64> = rows.iter().map(|r| r.1).collect();
    let dec: Vec<f64> = rows.iter().map(|r| r.2).collect();
    let ones = vec![1.0; n];
    let mag = vec![20.0; n];
    let flags = vec![0i32; n];
    let cols = [
        Column::new("SID", "", ColumnData::I64(&sid)),
        Column::new("RA", "deg", ColumnData::F64(&ra)),
        Column::new("DEC", "deg", ColumnData::F64(&dec)),
        Column::new("X", "pix", ColumnData::F64(&ones)),
        Column::new("Y", "pix", ColumnData::F64(&ones)),
        Column::new("A", "pix", ColumnData::F64(&ones)),
        Column::new("B", "pix", ColumnData::F64(&ones)),
        Column::new("THETA", "deg", ColumnData::F64(&ones)),
        Column::new("MAG_AUTO", "mag", ColumnData::F64(&mag)),
        Column::new("MAGERR_AUTO", "mag", ColumnData::F64(&ones)),
        Column::new("FLUX_AUTO", "ADU", ColumnData::F64(&ones)),
        Column::new("FWHM", "pix", ColumnData::F64(&ones)),
        Column::new("CLASS_STAR", "", ColumnData::F64(&ones)),
        Column::new("FLAGS", "", ColumnData::I32(&flags)),
    ];
    fits::write_table(path, "SOURCES", &cols, &[]).unwrap();
}

/// A small frame with a TAN WCS around (RA0, DEC0) and one source list per
/// entry of `lists`, as a manifest in `dir`.
fn write_survey(dir: &Path, lists: &[Vec<(i64, f64, f64)>]) -> Manifest {
    let img = Raster::from_vec(16, 16, vec![1.0f32; 256]);
    let cards = vec![
        Card::new("CTYPE1", "RA---TAN", ""),
        Card::new("CTYPE2", "DEC--TAN", ""),
        Card::new("CRVAL1", RA0, ""),
        Card::new("CRVAL2", DEC0, ""),
        Card::new("CRPIX1", 8.5, ""),
        Card::new("CRPIX2", 8.5, ""),
        Card::new("CD1_1", -0.001, ""),
        Card::new("CD2_2", 0.001, ""),
        Card::new("FILTER", "r", ""),
    ];
    fits::write_image(
        &dir.join("frame.fits"),
        PixelData::F32(&img),
        &cards,
        &Compression::None,
    )
    .unwrap();
    let mut m = Manifest {
        creator: "test".into(),
        project: "test".into(),
        privileges: 5,
        frames: vec![FrameEntry::new(
            "frame",
            "CoaddedRegriddedFrame",
            "frame.fits",
            vec![],
        )],
        ..Default::default()
    };
    for (k, rows) in lists.iter().enumerate() {
        let path = format!("list{k}.fits");
        write_list(&dir.join(&path), rows);
        m.source_lists.push(SourceListEntry {
            key: format!("sl{k}"),
            name: format!("list {k}"),
            frame: "frame".into(),
            path,
            ..Default::default()
        });
    }
    m
}

/// Three lists: A is a 6 × 5 grid 10" apart (SIDs 1–30); B is A's first 25
/// shifted 0.5" north (SID 100 + A's), written in reverse order, plus five
/// sources far from everything (SIDs 201–205); C is A's first 20 shifted
/// 0.3" east (SID 300 + A's).
fn three_lists() -> Vec<Vec<(i64, f64, f64)>> {
    let cos = DEC0.to_radians().cos();
    let a: Vec<(i64, f64, f64)> = (0..30)
        .map(|k| {
            (
                k + 1,
                RA0 + (k % 6) as f64 * 10.0 * ARCSEC / cos,
                DEC0 + (k / 6) as f64 * 10.0 * ARCSEC,
            )
        })
        .collect();
    let mut b: Vec<_> = a[..25]
        .iter()
        .map(|&(s, ra, dec)| (100 + s, ra, dec + 0.5 * ARCSEC))
        .collect();
    b.reverse();
    b.extend((1..=5).map(|i| (200 + i, RA0 - 0.01 * i as f64, DEC0 - 0.01)));
    let c = a[..20]
        .iter()
        .map(|&(s, ra, dec)| (300 + s, ra + 0.3 * ARCSEC / cos, dec))
        .collect();
    vec![a, b, c]
}

/// Ingests the three lists; returns their SLIDs and object ids in order.
async fn ingest_three(catalog: &Catalog, dir: &Path) -> Vec<(Slid, i64)> {
    let m = write_survey(dir, &three_lists());
    let report = catalog.ingest_manifest(&m, dir, dir).await.unwrap();
    (0..3)
        .map(|k| {
            let key = format!("sl{k}");
            (report.slids[&key], report.object_ids[&key].0)
        })
        .collect()
}

async fn totals(c: &Catalog) -> Vec<i64> {
    c.category_counts()
        .await
        .unwrap()
        .iter()
        .map(|c| c.count)
        .collect()
}

/// The (AID, SLID, SID, FLAG) rows of an AssociateList.
async fn rows_of(db: &common::TestDb, alid: Alid) -> BTreeSet<(i64, i64, i64, i32)> {
    let conn = common::raw_db(db).await;
    common::sql(
        &conn,
        "SELECT aid, slid, sid, flag FROM association WHERE alid = $1",
        vec![alid.0.into()],
    )
    .await
    .iter()
    .map(|r| {
        (
            r.try_get("", "aid").unwrap(),
            r.try_get("", "slid").unwrap(),
            r.try_get("", "sid").unwrap(),
            r.try_get("", "flag").unwrap(),
        )
    })
    .collect()
}

#[tokio::test]
async fn master_association_of_three_lists_is_stored_with_its_lineage_and_exports() {
    for db in common::all_backends().await {
        let dir = tempfile::tempdir().unwrap();
        let lists = ingest_three(&db.catalog, dir.path()).await;
        let slids: Vec<Slid> = lists.iter().map(|l| l.0).collect();
        let mut req = AssociateRequest::new(slids.clone(), AssocType::Master, 1.0);
        req.name = Some("three lists".into());
        let report = db.catalog.associate(&req).await.unwrap();

        // From the construction: A's sources 1–20 are in all three lists,
        // 21–25 in A and B, 26–30 alone (not associations); B's far
        // sources have no partner. AIDs follow A's SIDs. Every source has
        // one candidate (neighbours are 10" apart), so every flag is 0.
        let (sa, sb, sc) = (slids[0].0, slids[1].0, slids[2].0);
        let mut want = BTreeSet::new();
        for s in 1..=25i64 {
            want.insert((s, sa, s, 0));
            want.insert((s, sb, 100 + s, 0));
            if s <= 20 {
                want.insert((s, sc, 300 + s, 0));
            }
        }
        assert_eq!(rows_of(&db, report.alid).await, want, "{}", db.backend);
        assert_eq!(
            (report.associations, report.rows, report.ambiguous),
            (25, 70, 0),
            "{}",
            db.backend
        );

        let info = db.catalog.associate_list(report.alid).await.unwrap();
        assert_eq!(info.name, "three lists");
        assert_eq!(info.assoc_type, AssocType::Master);
        assert_eq!(info.search_distance, 1.0);
        assert_eq!((info.n_associations, info.n_members), (25, 3));
        assert_eq!(info.target.object_id, report.object_id);
        assert_eq!(info.target.class_name, "AssociateList");

        // One edge per member list, role `sourcelist`, ordinal = position.
        let conn = common::raw_db(&db).await;
        let edges: Vec<(i64, String, i32)> = common::sql(
            &conn,
            "SELECT parent_id, role, ordinal FROM dependency WHERE child_id = $1 ORDER BY ordinal",
            vec![report.object_id.0.into()],
        )
        .await
        .iter()
        .map(|r| {
            (
                r.try_get("", "parent_id").unwrap(),
                r.try_get("", "role").unwrap(),
                r.try_get("", "ordinal").unwrap(),
            )
        })
        .collect();
        let want_edges: Vec<(i64, String, i32)> = lists
            .iter()
            .enumerate()
            .map(|(i, l)| (l.1, "sourcelist".to_owned(), i as i32))
            .collect();
        assert_eq!(edges, want_edges, "{}", db.backend);

        // The web export: one VOTable row per member, with its position.
        let cache = tempfile::tempdir().unwrap();
        let mut config = Config::new(
            db.url.clone(),
            dir.path().to_path_buf(),
            cache.path().to_path_buf(),
            "127.0.0.1:0".parse().unwrap(),
        );
        common::without_client_limits(&mut config);
        let st = wisecut::web::AppState::new(db.catalog.clone(), Arc::new(config)).unwrap();
        let (status, ct, body) = common::fetch(
            &st,
            &format!(
                "/table/AssociateList/{}?format=votable&size=1000",
                report.alid
            ),
        )
        .await;
        let xml = String::from_utf8_lossy(&body);
        assert_eq!(status, StatusCode::OK, "{}: {xml}", db.backend);
        assert!(ct.starts_with("application/x-votable+xml"), "{ct}");
        assert_eq!(xml.matches("<TR>").count(), 70, "{}", db.backend);
        assert!(xml.contains(r#"ucd="pos.eq.ra;meta.main""#));
    }
}

#[tokio::test]
async fn a_failed_association_writes_nothing() {
    for db in common::all_backends().await {
        let dir = tempfile::tempdir().unwrap();
        let lists = ingest_three(&db.catalog, dir.path()).await;
        let before = totals(&db.catalog).await;
        let unknown = AssociateRequest::new(vec![lists[0].0, Slid(999)], AssocType::Chain, 1.0);
        let err = db
            .catalog
            .associate(&unknown)
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(err, "SourceList SLID 999 does not exist", "{}", db.backend);
        for (radius, kind) in [(0.0, AssocType::Chain), (f64::NAN, AssocType::Master)] {
            let bad = AssociateRequest::new(vec![lists[0].0, lists[1].0], kind, radius);
            let err = db.catalog.associate(&bad).await.unwrap_err().to_string();
            assert!(err.starts_with("radius:") && err.contains("3600"), "{err}");
        }
        let one = AssociateRequest::new(vec![lists[0].0], AssocType::Chain, 1.0);
        let err = db.catalog.associate(&one).await.unwrap_err().to_string();
        assert!(err.contains("at least 2 SourceLists"), "{err}");
        assert_eq!(totals(&db.catalog).await, before, "{}", db.backend);
        let conn = common::raw_db(&db).await;
        let n = common::sql(&conn, "SELECT COUNT(*) AS n FROM process_target", vec![]).await[0]
            .try_get::<i64>("", "n")
            .unwrap();
        // A frame and three source lists: no stray AssociateList target.
        assert_eq!(n, 4, "{}", db.backend);
    }
}

#[tokio::test]
async fn wisecut_associate_prints_the_new_list_and_refuses_bad_input() {
    let db = common::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let lists = ingest_three(&db.catalog, dir.path()).await;
    let ids = format!("{}:{}", lists[0].0, lists[2].0);
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_wisecut"))
            .arg("associate")
            .args(args)
            .args(["--db", &db.url, "--data"])
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let out = run(&["--type", "matched", "--radius", "1", &ids]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Matched: only A's sources 1–20 are in all three lists.
    assert!(
        stdout.starts_with("AssociateList ALID 1 (object ")
            && stdout.contains("): 20 associations (60 rows, 0 flagged ambiguous) in "),
        "{stdout}"
    );
    let info = db.catalog.associate_list(Alid(1)).await.unwrap();
    assert_eq!(info.assoc_type, AssocType::Matched);
    assert_eq!(
        info.name,
        format!("matched association of SLIDs {ids} within 1 arcsec")
    );

    let out = run(&["--type", "matched", "--radius", "5000", &ids]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("radius:"), "{err}");
    let out = run(&["--type", "nearest", "--radius", "1", &ids]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("chain"), "{err}");
    let out = run(&["--type", "chain", "--radius", "1", "3:1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("runs backwards"),
        "{err}"
    );
    // Nothing more was written by the failures.
    assert_eq!(db.catalog.associate_lists().await.unwrap().len(), 1);
}
