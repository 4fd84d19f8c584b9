//! The sky index of frames (`frame_cell`) and the coverage-MOC cache, on
//! SQLite and PostgreSQL: a position query through the index finds exactly
//! what a scan of every frame finds, the index is what position queries
//! read, it is rebuilt for frames that lack it, and the cached MOC follows
//! ingests and privilege changes.

use axum::http::StatusCode;
use sea_orm::ConnectionTrait;
use wisecut::ids::ObjectId;
use wisecut::model::FrameClass;
use wisecut::vo::DalParams;
use wisecut::vo::sia::Query;

use super::common;

/// SIA's POS filter over every frame of every class: the answer without an
/// index.
async fn by_scan(catalog: &wisecut::catalog::Catalog, q: &Query) -> Vec<i64> {
    let mut ids = Vec::new();
    for c in FrameClass::ALL {
        for f in catalog.frames_of_class(c).await.unwrap() {
            if q.matches(&f) {
                ids.push(f.target.object_id.0);
            }
        }
    }
    ids.sort_unstable();
    ids
}

/// The same through the index.
async fn by_index(catalog: &wisecut::catalog::Catalog, q: &Query) -> Vec<i64> {
    let cells = q.cells().expect("a small region has cells");
    let mut ids: Vec<i64> = catalog
        .frames_in_cells_until(&cells, &FrameClass::ALL, |_| true, usize::MAX)
        .await
        .unwrap()
        .into_iter()
        .filter(|f| q.matches(f))
        .map(|f| f.target.object_id.0)
        .collect();
    ids.sort_unstable();
    ids
}

fn query(pos: &str) -> Query {
    let mut p = DalParams::parse("").unwrap();
    p.push("POS", pos.to_owned());
    Query::parse(&p).unwrap()
}

async fn count(db: &sea_orm::DatabaseConnection, sql: &str) -> i64 {
    let b = db.get_database_backend();
    db.query_one_raw(sea_orm::Statement::from_string(b, sql.to_owned()))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap()
}

#[tokio::test]
async fn position_queries_through_the_index_find_what_a_scan_finds() {
    for db in common::all_backends().await {
        let db = common::ingested(db).await;
        let b = db.backend;
        let raw = common::raw_db(&db).await;
        let unindexed = count(
            &raw,
            "SELECT COUNT(*) FROM frame f WHERE f.footprint IS NOT NULL AND NOT EXISTS \
             (SELECT 1 FROM frame_cell c WHERE c.frame_id = f.object_id)",
        )
        .await;
        assert_eq!(unindexed, 0, "{b}: every frame with a footprint is indexed");
        // Positions at every frame's centre and just inside and outside its
        // corners, as circles, boxes and polygons.
        let mut frames = Vec::new();
        for c in FrameClass::ALL {
            frames.extend(db.catalog.frames_of_class(c).await.unwrap());
        }
        let mut shapes = Vec::new();
        for f in frames.iter().filter(|f| f.footprint.is_some()) {
            let (ra, dec) = f.center.unwrap();
            shapes.push(format!("CIRCLE {ra} {dec} 0.001"));
            for &(cra, cdec) in f.footprint.as_ref().unwrap() {
                for k in [0.98, 1.02] {
                    let (pra, pdec) = (ra + (cra - ra) * k, dec + (cdec - dec) * k);
                    shapes.push(format!("CIRCLE {pra} {pdec} 0.0005"));
                }
            }
            shapes.push(format!(
                "RANGE {} {} {} {}",
                ra - 0.01,
                ra + 0.01,
                dec - 0.01,
                dec + 0.01
            ));
            shapes.push(format!(
                "POLYGON {ra} {dec} {} {dec} {ra} {}",
                ra + 0.02,
                dec + 0.02
            ));
        }
        assert!(shapes.len() > 50, "{b}: {} shapes", shapes.len());
        let mut hits = 0;
        for s in &shapes {
            let q = query(s);
            let scan = by_scan(&db.catalog, &q).await;
            assert_eq!(by_index(&db.catalog, &q).await, scan, "{b}: {s}");
            hits += usize::from(!scan.is_empty());
        }
        assert!(
            hits > shapes.len() / 2,
            "{b}: {hits} of {} hit",
            shapes.len()
        );

        // SIA by position answers from the index: without its rows the
        // frame is not found; the backfill of a reopened catalogue restores
        // them.
        let st = common::state_with(&db, |_| {});
        let f = frames.iter().find(|f| f.center.is_some()).unwrap();
        let (ra, dec) = f.center.unwrap();
        let uri = format!("/vo/sia?POS=CIRCLE%20{ra}%20{dec}%200.001&MAXREC=1000");
        let name = &f.filename;
        let (status, _, body) = common::fetch(&st, &uri).await;
        assert_eq!(status, StatusCode::OK, "{b}");
        assert!(
            String::from_utf8_lossy(&body).contains(name.as_str()),
            "{b}: {name} found"
        );
        raw.execute_unprepared("DELETE FROM frame_cell")
            .await
            .unwrap();
        let (_, _, body) = common::fetch(&st, &uri).await;
        assert!(
            !String::from_utf8_lossy(&body).contains(name.as_str()),
            "{b}: index read"
        );
        let reopened = wisecut::catalog::Catalog::connect(&db.url).await.unwrap();
        assert_eq!(
            reopened.backfill_sky_index().await.unwrap(),
            0,
            "{b}: connect already backfilled"
        );
        assert_eq!(
            unindexed,
            count(
                &raw,
                "SELECT COUNT(*) FROM frame f WHERE f.footprint IS NOT NULL AND NOT EXISTS \
                 (SELECT 1 FROM frame_cell c WHERE c.frame_id = f.object_id)",
            )
            .await,
            "{b}: backfilled"
        );
        let (_, _, body) = common::fetch(&st, &uri).await;
        assert!(
            String::from_utf8_lossy(&body).contains(name.as_str()),
            "{b}: found again"
        );
        // `/api/images` (frames covering a position) reads the index too.
        let (status, _, body) = common::fetch(&st, &format!("/api/images?ra={ra}&dec={dec}")).await;
        assert_eq!(status, StatusCode::OK, "{b}");
        assert!(
            String::from_utf8_lossy(&body).contains(name.as_str()),
            "{b}: api/images"
        );
    }
}

/// The tiny sample's manifest without its last coadd (and the lists made
/// from it), written next to it, and that coadd's entry.
fn manifest_without_a_coadd(tag: &str) -> (std::path::PathBuf, serde_json::Value) {
    let dir = common::tiny_sample();
    let text = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    let mut first: serde_json::Value = serde_json::from_str(&text).unwrap();
    let frames = first["frames"].as_array_mut().unwrap();
    let last = frames
        .iter()
        .rposition(|f| f["class"] == "CoaddedRegriddedFrame")
        .expect("a coadd");
    let coadd = frames.remove(last);
    let mut dropped = vec![coadd["key"].as_str().unwrap().to_owned()];
    for table in ["source_lists", "associate_lists"] {
        let keep: Vec<serde_json::Value> = first[table]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                let text = e.to_string();
                let with_coadd = dropped.iter().any(|k| text.contains(&format!("\"{k}\"")));
                if with_coadd {
                    dropped.extend(e["key"].as_str().map(str::to_owned));
                }
                !with_coadd
            })
            .cloned()
            .collect();
        first[table] = serde_json::json!(keep);
    }
    let path = dir.join(format!("manifest-sky-index-{tag}.json"));
    std::fs::write(&path, first.to_string()).unwrap();
    (path, coadd)
}

/// A manifest of `coadd` alone, its dependencies named by the object ids
/// the first ingest gave their keys.
fn manifest_of(
    tag: &str,
    mut coadd: serde_json::Value,
    ids: &std::collections::HashMap<String, ObjectId>,
) -> std::path::PathBuf {
    for dep in coadd["deps"].as_array_mut().unwrap() {
        let key = dep["key"].as_str().unwrap().to_owned();
        *dep = serde_json::json!({"role": dep["role"], "object_id": ids[&key].0});
    }
    let path = common::tiny_sample().join(format!("manifest-sky-index-{tag}-coadd.json"));
    std::fs::write(&path, serde_json::json!({"frames": [coadd]}).to_string()).unwrap();
    path
}

#[tokio::test]
async fn the_moc_is_cached_and_follows_ingests_and_privilege_changes() {
    for db in common::all_backends().await {
        let b = db.backend;
        let (first, coadd) = manifest_without_a_coadd(b);
        let dir = common::tiny_sample();
        let report = db.catalog.ingest(&first, dir).await.unwrap();
        let second = manifest_of(b, coadd, &report.object_ids);
        let st = common::state_with(&db, |_| {});
        let moc = |st: wisecut::web::AppState| async move {
            let (status, headers, body) =
                common::fetch_full(&st, "/vo/moc?class=CoaddedRegriddedFrame&depth=9").await;
            assert_eq!(status, StatusCode::OK);
            let n: usize = headers["x-wisecut-frames"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            (n, String::from_utf8(body).unwrap())
        };
        let (n0, moc0) = moc(st.clone()).await;
        assert!(n0 >= 1, "{b}: {n0} coadds before");

        // A change the catalogue does not announce (raw SQL) is not seen:
        // the answer comes from the cache.
        let raw = common::raw_db(&db).await;
        let moved = "[[100.0,10.0],[100.1,10.0],[100.1,10.1],[100.0,10.1]]";
        raw.execute_unprepared(&format!(
            "UPDATE frame SET footprint = '{moved}' WHERE frame_class = 'CoaddedRegriddedFrame'"
        ))
        .await
        .unwrap();
        assert_eq!(moc(st.clone()).await, (n0, moc0.clone()), "{b}: cached");

        // An ingest extends the cached MOC by the new frame only (the moved
        // footprints stay as cached: proof that it was extended, not
        // recomputed).
        db.catalog.ingest(&second, dir).await.unwrap();
        let (n1, moc1) = moc(st.clone()).await;
        assert_eq!(n1, n0 + 1, "{b}: the new coadd counted");
        let fresh = moc(common::state_with(&db, |_| {})).await;
        assert_eq!(fresh.0, n1, "{b}");
        assert_ne!(fresh.1, moc1, "{b}: extended, not recomputed");

        // A privilege change starts again: now the moved footprints count.
        let coadd = db
            .catalog
            .frames_of_class(FrameClass::CoaddedRegriddedFrame)
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.target.object_id)
            .max()
            .unwrap();
        db.catalog
            .set_privileges(None, &[ObjectId(coadd.0)], 1)
            .await
            .unwrap();
        let (n2, moc2) = moc(st.clone()).await;
        assert_eq!(n2, n0, "{b}: the private coadd is left out for anonymous");
        assert_ne!(moc2, moc1, "{b}: recomputed from the moved footprints");
        std::fs::remove_file(first).ok();
        std::fs::remove_file(second).ok();
    }
}
