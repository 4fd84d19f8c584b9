//! The image view: rendering through the cache, binning, the SourceList
//! overlay, the pixel read-out endpoint, and bad parameters.

use super::common::{self, sel};
use super::web::state;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use scraper::Html;
use tower::ServiceExt;
use wisecut::imaging::fits;
use wisecut::imaging::wcs::Wcs;
use wisecut::model::FrameClass;
use wisecut::web::{AppState, app};

async fn get(st: &AppState, uri: &str) -> (StatusCode, Vec<u8>) {
    let (status, _, body) = common::fetch(st, uri).await;
    (status, body)
}

#[tokio::test]
async fn the_image_view_renders_binned_frames_with_sources() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let (slid, frame_id, _) = common::biggest_source_list(&db.catalog).await;
    let sl = db
        .catalog
        .source_list(wisecut::ids::Slid(slid))
        .await
        .unwrap();
    let id = wisecut::ids::ObjectId(frame_id);
    let f = db.catalog.frame(id).await.unwrap();

    let (status, body) = get(&st, &format!("/image/{id}?bin=2&stretch=asinh&slid={slid}")).await;
    let html = String::from_utf8(body).unwrap();
    assert_eq!(status, StatusCode::OK, "{html}");
    let doc = Html::parse_document(&html);
    let img = doc.select(&sel("img#frame-image")).next().unwrap();
    let src = img.value().attr("src").unwrap();
    assert!(src.starts_with(&format!("/render/{id}?")), "{src}");
    let (status, png) = get(&st, src).await;
    assert_eq!(status, StatusCode::OK);
    let decoded = image::load_from_memory(&png).unwrap();
    let (n1, n2) = (f.naxis1 as u32, f.naxis2 as u32);
    assert_eq!(
        (decoded.width(), decoded.height()),
        (n1.div_ceil(2), n2.div_ceil(2))
    );
    // Every source of the list lies on its frame, so all are drawn.
    let circles = doc.select(&sel("svg#overlay circle")).count();
    assert_eq!(circles as i64, sl.n_sources);
    // Zoom and pan links keep the other settings.
    let pan = doc.select(&sel("a.pan-left")).next().unwrap();
    assert!(pan.value().attr("href").unwrap().contains("stretch=asinh"));
    // The FITS of the view is the frame itself here (whole frame shown).
    let fits_url = doc
        .select(&sel("a#fits"))
        .next()
        .unwrap()
        .value()
        .attr("href")
        .unwrap();
    let (status, bytes) = get(&st, fits_url).await;
    assert_eq!(status, StatusCode::OK);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("v.fits");
    std::fs::write(&p, bytes).unwrap();
    let info = fits::image_info(&p, 0).unwrap();
    assert_eq!((info.width, info.height), (n1 as usize, n2 as usize));

    // A second view of the same render comes from the cache.
    let res = app(st.clone())
        .oneshot(Request::get(src).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.headers()["x-wisecut-cache"], "cache-hit");
}

/// The `href` of the first element matching `selector`.
fn href(doc: &Html, selector: &str) -> String {
    doc.select(&sel(selector))
        .next()
        .unwrap_or_else(|| panic!("no {selector}"))
        .value()
        .attr("href")
        .or_else(|| {
            doc.select(&sel(selector))
                .next()
                .and_then(|e| e.value().attr("src"))
        })
        .unwrap()
        .to_owned()
}

/// The rendered picture of an image page as 16-bit grey levels, with the
/// page itself.
async fn rendered(st: &AppState, uri: &str) -> (Html, Vec<u16>) {
    let (status, body) = get(st, uri).await;
    let html = String::from_utf8(body).unwrap();
    assert_eq!(status, StatusCode::OK, "{uri}: {html}");
    let doc = Html::parse_document(&html);
    let src = href(&doc, "img#frame-image");
    let (status, png) = get(st, &src).await;
    assert_eq!(status, StatusCode::OK, "{src}");
    let grey = image::load_from_memory(&png)
        .unwrap()
        .to_luma16()
        .into_raw();
    (doc, grey)
}

/// Pixels at either end of the grey scale (clipped by the interval).
fn clipped(grey: &[u16]) -> usize {
    grey.iter().filter(|&&g| g == 0 || g == u16::MAX).count()
}

// Issue 14, item 7: "high" rendered exactly as the default, and the preset
// links dropped invert, stretch, zoom and the overlay.
#[tokio::test]
async fn contrast_presets_change_the_picture_and_keep_the_other_settings() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let (slid, frame_id, _) = common::biggest_source_list(&db.catalog).await;
    let base = format!("/image/{frame_id}?bin=2&stretch=asinh&invert=1&zoom=2&slid={slid}");
    let (doc, default) = rendered(&st, &base).await;
    let circles = doc.select(&sel("svg#overlay circle")).count();
    assert!(circles > 0);
    // With no interval asked, the "normal" preset is the one shown.
    let current: Vec<_> = doc
        .select(&sel(".presets a[aria-current]"))
        .map(|a| a.text().collect::<String>())
        .collect();
    assert_eq!(current, ["normal"]);

    let mut clips = Vec::new();
    for preset in ["high", "normal", "low"] {
        let link = href(&doc, &format!("a.contrast-{preset}"));
        for kept in [
            "bin=2",
            "stretch=asinh",
            "invert=1",
            "zoom=2",
            &format!("slid={slid}"),
        ] {
            assert!(link.contains(kept), "{preset} link lost {kept}: {link}");
        }
        let (page, grey) = rendered(&st, &link).await;
        assert_eq!(page.select(&sel("svg#overlay circle")).count(), circles);
        let src = href(&page, "img#frame-image");
        assert!(
            src.contains("invert=1") && src.contains("stretch=asinh"),
            "{src}"
        );
        assert_eq!(grey.len(), default.len());
        if preset == "normal" {
            assert_eq!(grey, default, "normal is the default view");
        } else {
            assert_ne!(grey, default, "{preset} renders like the default");
        }
        clips.push(clipped(&grey));
    }
    // High contrast clips more pixels to black or white than the default,
    // low contrast fewer.
    assert!(clips[0] > clips[1] && clips[1] > clips[2], "{clips:?}");
}

#[tokio::test]
async fn the_pixel_readout_gives_value_and_sky_position() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let f = common::first_frame(&db.catalog, FrameClass::ReducedScienceFrame).await;
    let (status, body) = get(
        &st,
        &format!("/api/pixel?frame={}&x=100.2&y=57.9", f.target.object_id),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let path = f.file_path(&st.config.data_dir);
    let pix = fits::read_region::<f32>(&path, f.hdu as usize, 99, 57, 1, 1).unwrap();
    let expected = f64::from(pix.data[0]);
    if expected.is_finite() {
        assert_eq!(v["value"].as_f64().unwrap(), expected);
    } else {
        assert!(v["value"].is_null());
    }
    let w = Wcs::new(
        f.wcs.as_ref().unwrap(),
        f.naxis1 as usize,
        f.naxis2 as usize,
    )
    .unwrap();
    let (ra, dec) = w.pix_to_sky(100.2, 57.9).unwrap();
    assert!((v["ra"].as_f64().unwrap() - ra).abs() < 1e-9);
    assert!((v["dec"].as_f64().unwrap() - dec).abs() < 1e-9);
    let (_, body) = get(
        &st,
        &format!("/api/pixel?frame={}&x=-5&y=3", f.target.object_id),
    )
    .await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["inside"], false);
    assert!(v["value"].is_null());
}

#[tokio::test]
async fn bad_image_parameters_are_400() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let f = common::first_frame(&db.catalog, FrameClass::ReducedScienceFrame).await;
    let id = f.target.object_id;
    for (q, needle) in [
        ("bin=3", "1, 2, 4, 8, fit"),
        ("zoom=3", "0.5, 1, 2"),
        ("stretch=cubic", "asinh"),
        ("contrast=medium", "high, normal, low"),
        ("contrast=high&interval=minmax", "not both"),
        ("slid=999", "not extracted"),
        ("interval=manual&min=1", "max"),
    ] {
        let (status, body) = get(&st, &format!("/image/{id}?{q}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}");
        let msg = common::error_message(&String::from_utf8(body).unwrap());
        assert!(msg.contains(needle), "{q}: {msg}");
    }
    let (status, _) = get(&st, "/image/99999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
