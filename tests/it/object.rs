//! The object view: attributes, the upward and downward lineage trees with
//! roles, levels and thumbnails, links; thumbnails themselves; bad ids;
//! lists titled by their SLID/ALID, and an object id given where a SLID is
//! asked for answered with the list it is.

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

/// A SourceList whose object id is no SLID: (object id, SLID).
async fn list_with_object_id_not_a_slid(db: &common::TestDb) -> (i64, i64) {
    use wisecut::catalog::browse::{Cell, Query, Table};
    let t = Table::SourceLists;
    let mut q = Query::new(&t);
    q.page_size = 1000;
    let page = db.catalog.browse(&t, &q).await.unwrap();
    let at = |name: &str| t.columns().iter().position(|c| c.name == name).unwrap();
    let pairs: Vec<(i64, i64)> = page
        .rows
        .iter()
        .map(|r| match (&r[at("object_id")], &r[at("slid")]) {
            (Cell::Int(o), Cell::Int(s)) => (*o, *s),
            other => panic!("{other:?}"),
        })
        .collect();
    let slids: HashSet<i64> = pairs.iter().map(|p| p.1).collect();
    *pairs
        .iter()
        .find(|(o, _)| !slids.contains(o))
        .expect("a SourceList whose object id is not also a SLID")
}

/// Issue 14 item 9: the page titled "SourceList 540" was SLID 145, and
/// `/deps?slid=540` said only "SourceList 540 does not exist". The page is
/// titled by its SLID with the object id beside it, and wherever a SLID is
/// asked for, an object id of a SourceList is answered with the list it is.
#[tokio::test]
async fn a_source_list_is_titled_by_its_slid_and_its_object_id_is_recognised() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let (object, slid) = list_with_object_id_not_a_slid(&db).await;
    let (status, _, body) = get(&st, &format!("/object/{object}")).await;
    assert_eq!(status, StatusCode::OK);
    let doc = Html::parse_document(&String::from_utf8(body).unwrap());
    let h1: String = doc.select(&sel("h1")).next().unwrap().text().collect();
    let h1 = h1.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(h1, format!("SourceList SLID {slid} (object {object})"));
    let title: String = doc.select(&sel("title")).next().unwrap().text().collect();
    assert!(title.contains(&format!("SLID {slid}")), "{title}");
    let deps = doc.select(&sel("a#deps")).next().unwrap();
    assert_eq!(
        deps.value().attr("href"),
        Some(&*format!("/deps?slid={slid}"))
    );

    // The deps form, filled in from a link with the object id.
    let hint = format!("object {object} is SourceList SLID {slid}");
    let (status, _, body) = get(&st, &format!("/deps?slid={object}&ids=1:3")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let doc = Html::parse_document(&String::from_utf8(body).unwrap());
    let error: String = doc.select(&sel("#error")).next().unwrap().text().collect();
    assert!(error.contains(&hint), "{error}");
    let meant = doc
        .select(&sel("#error a#meant"))
        .next()
        .expect("a link to the list meant");
    let href = meant.value().attr("href").unwrap();
    assert_eq!(href, format!("/deps?slid={slid}&ids=1%3A3"));
    let (status, _, _) = get(&st, href).await;
    assert_eq!(status, StatusCode::OK);
    // Submitted, and through the API.
    let (status, _, body) = common::submit(&st, &format!("/api/deps?slid={object}&ids=1")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(String::from_utf8_lossy(&body).contains(&hint));
    let (status, _, body) = common::submit(&st, &format!("/deps?slid={object}&ids=1")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(String::from_utf8_lossy(&body).contains(&hint));
    // The rows of a list.
    let (status, _, body) = get(&st, &format!("/table/SourceList/{object}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let msg = common::error_message(&String::from_utf8(body).unwrap());
    assert!(
        msg.contains(&hint) && msg.contains(&format!("/table/SourceList/{slid}")),
        "{msg}"
    );
    // A number that is neither says just that.
    let (status, _, body) = get(&st, "/deps?slid=987654&ids=1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains("SourceList SLID 987654 does not exist") && !text.contains("id=\"meant\"")
    );
    assert_eq!(
        db.catalog.jobs(None, None, 0, 10).await.unwrap().0,
        0,
        "no job made"
    );
}

/// Issue 14 item 6 on the object page: positions to 1e-6 deg (sexagesimal
/// with `coords=sex`), the full value in the cell's title.
#[tokio::test]
async fn object_attributes_are_rounded_by_kind() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let f = common::first_frame(&db.catalog, FrameClass::ReducedScienceFrame).await;
    let id = f.target.object_id;
    let (ra, _) = f.center.unwrap();
    let cell = |html: &str, name: &str| {
        let doc = Html::parse_document(html);
        let td = doc
            .select(&sel(&format!("tr[data-attribute={name}] td")))
            .next()
            .unwrap();
        (
            td.text()
                .collect::<String>()
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_owned(),
            td.value().attr("title").map(str::to_owned),
        )
    };
    let (status, _, body) = get(&st, &format!("/object/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let html = String::from_utf8(body).unwrap();
    let (text, full) = cell(&html, "ra");
    assert_eq!(text, format!("{ra:.6}"));
    if let Some(full) = full {
        assert_eq!(full.parse::<f64>().unwrap(), ra);
    }
    let (mjd, _) = cell(&html, "mjd_obs");
    assert!(
        mjd.split_once('.').map_or(0, |(_, d)| d.len()) <= 5,
        "{mjd}"
    );
    let (status, _, body) = get(&st, &format!("/object/{id}?coords=sex")).await;
    assert_eq!(status, StatusCode::OK);
    let (text, _) = cell(&String::from_utf8(body).unwrap(), "ra");
    let back = wisecut::params::angle::parse_ra(&text).unwrap();
    assert!(
        text.contains(':') && (back - ra).abs() * 3600.0 < 0.008,
        "{text}"
    );
    let (status, _, _) = get(&st, &format!("/object/{id}?coords=furlongs")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
