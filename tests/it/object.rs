//! The object view: attributes, the upward and downward lineage trees with
//! roles, levels and thumbnails, links; thumbnails themselves; bad ids.

use super::common::{self, sel};
use super::web::state;
use axum::http::StatusCode;
use scraper::Html;
use std::collections::HashSet;
use wisecut::catalog::lineage::{Direction, MAX_DEPTH};
use wisecut::model::FrameClass;
use wisecut::web::AppState;

async fn get(st: &AppState, uri: &str) -> (StatusCode, String, Vec<u8>) {
    common::fetch(st, uri).await
}

#[tokio::test]
async fn a_coadd_shows_its_attributes_and_its_whole_lineage() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let coadd = db
        .catalog
        .frames_of_class(FrameClass::CoaddedRegriddedFrame)
        .await
        .unwrap()
        .remove(0);
    let id = coadd.target.object_id;
    let (status, _, body) = get(&st, &format!("/object/{id}")).await;
    let html = String::from_utf8(body).unwrap();
    assert_eq!(status, StatusCode::OK, "{html}");
    let doc = Html::parse_document(&html);
    let h1: String = doc.select(&sel("h1")).next().unwrap().text().collect();
    assert!(h1.contains("CoaddedRegriddedFrame") && h1.contains(&id.to_string()));
    let filename: String = doc
        .select(&sel("tr[data-attribute=filename] td"))
        .next()
        .unwrap()
        .text()
        .collect();
    assert_eq!(filename.trim(), coadd.filename);

    // Every object of the upward lineage appears in the tree, with the
    // classes a coadd is made from.
    let up = db
        .catalog
        .lineage(id, Direction::Up, MAX_DEPTH)
        .await
        .unwrap();
    let shown: HashSet<i64> = doc
        .select(&sel("#tree-up li[data-object]"))
        .map(|li| li.value().attr("data-object").unwrap().parse().unwrap())
        .collect();
    let expected: HashSet<i64> = up.nodes.iter().map(|n| n.object_id.0).collect();
    assert_eq!(shown, expected);
    for class in [
        "RegriddedFrame",
        "ReducedScienceFrame",
        "RawScienceFrame",
        "BiasFrame",
        "MasterFlatFrame",
    ] {
        assert!(
            doc.select(&sel(&format!("#tree-up li[data-class={class}]")))
                .next()
                .is_some(),
            "{class} missing from the upward tree"
        );
    }
    // Levels and roles as in Astro-WISE: the root's children are level 1.
    let first_child = doc
        .select(&sel("#tree-up > li > details > ul > li"))
        .next()
        .unwrap();
    assert_eq!(first_child.value().attr("data-level"), Some("1"));
    let role: String = first_child
        .select(&sel(".role"))
        .next()
        .unwrap()
        .text()
        .collect();
    assert!(role.starts_with('+'), "{role}");
    // A shared calibration frame is expanded once and marked afterwards.
    assert!(doc.select(&sel("#tree-up .repeat")).next().is_some());
    // Frames have thumbnails; nodes link to their object views.
    assert!(doc.select(&sel("#tree-up img.thumb")).count() >= 3);
    assert!(
        doc.select(&sel(&format!(
            "#tree-up a[href='/object/{}']",
            up.nodes[1].object_id
        )))
        .next()
        .is_some()
    );
    // The "similar objects" link queries the coadd's table.
    let similar = doc.select(&sel("a#similar")).next().unwrap();
    let href = similar.value().attr("href").unwrap();
    assert!(
        href.starts_with("/table/CoaddedRegriddedFrame?q=filter"),
        "{href}"
    );
    let (status, _, _) = get(&st, href).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_bias_lists_what_was_made_from_it_and_thumbnails_render() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let bias = db
        .catalog
        .frames_of_class(FrameClass::BiasFrame)
        .await
        .unwrap()
        .remove(0);
    let id = bias.target.object_id;
    let (status, _, body) = get(&st, &format!("/object/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let doc = Html::parse_document(&String::from_utf8(body).unwrap());
    assert!(
        doc.select(&sel("#tree-down li[data-class=ReducedScienceFrame]"))
            .next()
            .is_some()
    );
    assert!(
        doc.select(&sel("#tree-up li[data-class=RawBiasFrame]"))
            .next()
            .is_some()
    );

    let (status, ct, jpg) = get(&st, &format!("/thumb/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct, "image/jpeg");
    let img = image::load_from_memory(&jpg).unwrap();
    assert_eq!(img.width().max(img.height()), 128);
    let aspect = f64::from(img.width()) / f64::from(img.height());
    let frame_aspect = f64::from(bias.naxis1) / f64::from(bias.naxis2);
    assert!(
        (aspect - frame_aspect).abs() < 0.05,
        "{aspect} vs {frame_aspect}"
    );
}

#[tokio::test]
async fn lists_and_bad_ids() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let sl = db.catalog.source_list(wisecut::ids::Slid(1)).await.unwrap();
    let (status, _, body) = get(&st, &format!("/object/{}", sl.target.object_id)).await;
    assert_eq!(status, StatusCode::OK);
    let doc = Html::parse_document(&String::from_utf8(body).unwrap());
    let rows = doc.select(&sel("a#rows")).next().unwrap();
    assert_eq!(rows.value().attr("href"), Some("/table/SourceList/1"));
    // Its frame is upstream.
    assert!(
        doc.select(&sel("#tree-up li[data-level='1']"))
            .next()
            .is_some()
    );

    let (status, _, body) = get(&st, "/object/987654321").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let doc = Html::parse_document(&String::from_utf8(body).unwrap());
    assert!(doc.select(&sel("p.error-message")).next().is_some());
    let (status, _, _) = get(&st, "/object/abc").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
