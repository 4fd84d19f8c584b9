//! Lineage walks over the ingested tiny survey.

use super::common;
use std::collections::BTreeSet;
use wisecut::catalog::lineage::{Direction, MAX_DEPTH};
use wisecut::model::FrameClass;

#[tokio::test]
async fn a_coadd_reaches_every_class_of_its_pipeline() {
    for db in common::all_backends().await {
        let db = common::ingested(db).await;
        let coadd = db
            .catalog
            .frames_of_class(FrameClass::CoaddedRegriddedFrame)
            .await
            .unwrap()
            .into_iter()
            .find(|f| f.filter.as_deref() == Some("i"))
            .unwrap();
        let walk = db
            .catalog
            .lineage(coadd.target.object_id, Direction::Up, MAX_DEPTH)
            .await
            .unwrap();
        let classes: BTreeSet<&str> = walk.nodes.iter().map(|n| n.class_name.as_str()).collect();
        for c in FrameClass::ALL {
            assert!(
                classes.contains(c.name()),
                "{}: {} missing from {classes:?}",
                db.backend,
                c
            );
        }
        // The illumination correction was fitted to photometric catalogs.
        assert!(classes.contains("SourceList"), "{}", db.backend);
        // Levels are shortest distances: regridded frames at 1, reduced at 2,
        // raw at 3; a raw bias exposure is deeper.
        let level = |c: FrameClass| walk.of_class(c).iter().map(|n| n.level).min().unwrap();
        assert_eq!(level(FrameClass::RegriddedFrame), 1);
        assert_eq!(level(FrameClass::ReducedScienceFrame), 2);
        assert_eq!(level(FrameClass::RawScienceFrame), 3);
        assert!(level(FrameClass::RawBiasFrame) >= 4);
        // Every edge joins two reached nodes and has a role.
        for e in &walk.edges {
            assert!(walk.node(e.child).is_some() && walk.node(e.parent).is_some());
            assert!(!e.role.is_empty());
        }
        // Each regridded frame of the coadd is an i-band one.
        let regs = walk.of_class(FrameClass::RegriddedFrame);
        assert!(regs.iter().all(|n| n.filter.as_deref() == Some("i")));
    }
}

#[tokio::test]
async fn depth_limits_and_downward_walks() {
    let db = common::ingested(common::sqlite().await).await;
    let bias = db
        .catalog
        .frames_of_class(FrameClass::BiasFrame)
        .await
        .unwrap()[0]
        .clone();
    let one = db
        .catalog
        .lineage(bias.target.object_id, Direction::Down, 1)
        .await
        .unwrap();
    assert!(one.nodes.iter().all(|n| n.level <= 1));
    let roles: BTreeSet<&str> = one.edges.iter().map(|e| e.role.as_str()).collect();
    assert!(roles.contains("bias"), "{roles:?}");
    // Downward, everything eventually reaches coadds and associate lists.
    let all = db
        .catalog
        .lineage(bias.target.object_id, Direction::Down, MAX_DEPTH)
        .await
        .unwrap();
    assert!(!all.of_class(FrameClass::CoaddedRegriddedFrame).is_empty());
    assert!(all.nodes.iter().any(|n| n.class_name == "AssociateList"));
    assert!(all.nodes.len() > one.nodes.len());
    // The text tree names roles and levels.
    let tree = one.render_tree();
    assert!(tree.contains("+bias [level: 1]"), "{tree}");
}

#[tokio::test]
async fn an_unknown_object_is_not_found() {
    let db = common::sqlite().await;
    let err = db
        .catalog
        .lineage(wisecut::ids::ObjectId(999_999), Direction::Up, 3)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("999999 does not exist"), "{err}");
}

#[tokio::test]
async fn cone_search_finds_exactly_the_sources_brute_force_finds() {
    for db in common::all_backends().await {
        let db = common::ingested(db).await;
        let coadd = db
            .catalog
            .frames_of_class(FrameClass::CoaddedRegriddedFrame)
            .await
            .unwrap()[0]
            .clone();
        let (ra, dec) = coadd.center.unwrap();
        let r = 40.0 / 3600.0;
        let got = db
            .catalog
            .cone_search(ra, dec, r, None, 100_000)
            .await
            .unwrap();
        // Brute force over every catalog file of the survey.
        let dir = common::tiny_sample();
        let m = wisecut::catalog::ingest::Manifest::load(&dir.join("manifest.json")).unwrap();
        let mut want = 0;
        let mut total = 0;
        for sl in &m.source_lists {
            let path = dir.join(&sl.path);
            let ras = wisecut::imaging::fits::read_column_f64(&path, 1, "RA").unwrap();
            let decs = wisecut::imaging::fits::read_column_f64(&path, 1, "DEC").unwrap();
            total += ras.len();
            want += ras
                .iter()
                .zip(&decs)
                .filter(|(a, d)| wisecut::imaging::sphere::separation_deg(ra, dec, **a, **d) <= r)
                .count();
        }
        assert!(!got.is_empty(), "{}", db.backend);
        assert_eq!(got.len(), want, "{}", db.backend);
        assert!(got.windows(2).all(|w| w[0].0 <= w[1].0), "nearest first");
        assert!(total > got.len());
    }
}
