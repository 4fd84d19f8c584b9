//! The cutout API through the router: FITS bytes equal the parent's pixels,
//! rendered formats decode, caching headers work, the product cache is
//! single-flight, `/api/images` ranks covering frames, and bad input gets a
//! 4xx naming the parameter.

use super::common;
use super::web::state;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use wisecut::imaging::fits::{self, Compression, PixelData};
use wisecut::imaging::pixels::{PixelSource, Region, Sidecars};
use wisecut::imaging::raster::Raster;
use wisecut::imaging::wcs::{Header, KeywordSource, Wcs};
use wisecut::model::{Frame, FrameClass};
use wisecut::web::{AppState, app};

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn fetch(st: &AppState, uri: &str, if_none_match: Option<&str>) -> Reply {
    let mut req = Request::get(uri);
    if let Some(tag) = if_none_match {
        req = req.header("if-none-match", tag);
    }
    let res = app(st.clone())
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

async fn first_frame(st: &AppState, class: FrameClass) -> Frame {
    common::first_frame(&st.catalog, class).await
}

fn frame_wcs(f: &Frame) -> Wcs {
    Wcs::new(
        f.wcs.as_ref().unwrap(),
        f.naxis1 as usize,
        f.naxis2 as usize,
    )
    .unwrap()
}

#[tokio::test]
async fn a_fits_cutout_holds_the_parent_pixels_and_a_shifted_wcs() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let f = first_frame(&st, FrameClass::ReducedScienceFrame).await;
    let (ra, dec) = frame_wcs(&f).pix_to_sky(100.3, 140.7).unwrap();
    let r = fetch(
        &st,
        &format!(
            "/api/cutout?frame={}&RA={ra}&Dec={dec}&size=31&FORMAT=fits",
            f.target.object_id
        ),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/fits");
    let disposition = r.header("content-disposition");
    let stem = f.filename.trim_end_matches(".fits");
    assert!(
        disposition.starts_with(&format!("attachment; filename=\"{stem}_x")),
        "{disposition}"
    );
    assert!(disposition.ends_with("_31x31.fits\""), "{disposition}");
    let (img, h) = common::read_fits(&r.body);
    assert_eq!((img.width, img.height), (31, 31));
    let (x0, y0) = (
        h.number("ORIGX0").unwrap() as usize,
        h.number("ORIGY0").unwrap() as usize,
    );
    // Cutout2D convention: x0 = ceil((x - 1) - n/2) for the 1-based centre.
    assert_eq!(x0, ((100.3 - 1.0) - 15.5f64).ceil() as usize);
    assert_eq!(y0, ((140.7 - 1.0) - 15.5f64).ceil() as usize);
    let parent = fits::read_region::<f32>(
        &f.file_path(&st.config.data_dir),
        f.hdu as usize,
        x0,
        y0,
        31,
        31,
    )
    .unwrap();
    for (a, b) in img.data.iter().zip(&parent.data) {
        assert!(a == b || (a.is_nan() && b.is_nan()), "{a} != {b}");
    }
    let ph =
        Header::new(&fits::read_header(&f.file_path(&st.config.data_dir), f.hdu as usize).unwrap());
    assert_eq!(
        h.number("CRPIX1").unwrap(),
        ph.number("CRPIX1").unwrap() - x0 as f64
    );
    assert_eq!(
        h.number("CRPIX2").unwrap(),
        ph.number("CRPIX2").unwrap() - y0 as f64
    );
    assert_eq!(h.number("CRVAL1").unwrap(), ph.number("CRVAL1").unwrap());
    assert_eq!(h.number("CD1_2").unwrap(), ph.number("CD1_2").unwrap());
    assert_eq!(h.number("ORIGOBJ").unwrap(), f.target.object_id.0 as f64);
    assert_eq!(h.number("NPADPIX").unwrap(), 0.0);
    assert!(
        h.text("ORIGURL")
            .unwrap()
            .ends_with(&format!("/object/{}", f.target.object_id))
    );
    assert_eq!(r.header("x-wisecut-padded"), "0");
    // CPU time, work and total, each a number of milliseconds.
    let timing: Vec<(&str, f64)> = r
        .header("server-timing")
        .split(", ")
        .map(|m| {
            let (name, dur) = m.split_once(";dur=").expect("name;dur=ms");
            (name, dur.parse().expect("a number"))
        })
        .collect();
    assert_eq!(
        timing.iter().map(|t| t.0).collect::<Vec<_>>(),
        ["cpu", "work", "total"]
    );
    assert!(timing.iter().all(|t| t.1 >= 0.0) && timing[1].1 <= timing[2].1);

    // Revalidation: same request with the ETag → 304 without a body.
    let etag = r.header("etag").to_owned();
    assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
    let again = fetch(
        &st,
        &format!(
            "/api/cutout?frame={}&ra={ra}&dec={dec}&size=31",
            f.target.object_id
        ),
        Some(&etag),
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    // A different size has a different ETag.
    let other = fetch(
        &st,
        &format!(
            "/api/cutout?frame={}&ra={ra}&dec={dec}&size=32",
            f.target.object_id
        ),
        Some(&etag),
    )
    .await;
    assert_eq!(other.status, StatusCode::OK);
    assert_ne!(other.header("etag"), etag);
}

#[tokio::test]
async fn partial_overlap_is_padded_and_flagged() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let f = first_frame(&st, FrameClass::ReducedScienceFrame).await;
    let r = fetch(
        &st,
        &format!(
            "/api/cutout?frame={}&x=3&y=4&width=20&height=10",
            f.filename
        ),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let (img, h) = common::read_fits(&r.body);
    assert_eq!((img.width, img.height), (20, 10));
    // x0 = ceil(2 - 10) = -8, y0 = ceil(3 - 5) = -2: 8 columns and 2 rows
    // are outside.
    let padded = 20 * 10 - 12 * 8;
    assert_eq!(h.number("NPADPIX").unwrap(), padded as f64);
    assert_eq!(r.header("x-wisecut-padded"), padded.to_string());
    assert!(img.get(0, 0).is_nan() && img.get(7, 5).is_nan() && img.get(10, 1).is_nan());
    let far = fetch(
        &st,
        &format!("/api/cutout?frame={}&x=-500&y=4&size=20", f.filename),
        None,
    )
    .await;
    assert_eq!(far.status, StatusCode::BAD_REQUEST);
    assert!(far.text().contains("does not overlap"), "{}", far.text());
}

#[tokio::test]
async fn rendered_cutouts_decode_and_come_from_the_cache_the_second_time() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let f = first_frame(&st, FrameClass::ReducedScienceFrame).await;
    let base = format!(
        "/api/cutout?frame={}&x=200&y=180&size=60",
        f.target.object_id
    );

    let png = fetch(
        &st,
        &format!("{base}&format=png&stretch=asinh&interval=zscale"),
        None,
    )
    .await;
    assert_eq!(png.status, StatusCode::OK, "{}", png.text());
    assert_eq!(png.header("content-type"), "image/png");
    assert!(
        png.header("content-disposition")
            .starts_with("inline; filename=")
    );
    assert_eq!(png.header("x-wisecut-cache"), "made");
    let decoded = image::load_from_memory(&png.body).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (60, 60));
    let limits: Vec<f64> = png
        .header("x-wisecut-limits")
        .split(' ')
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(limits.len() == 2 && limits[0] < limits[1], "{limits:?}");
    let hit = fetch(
        &st,
        &format!("{base}&format=png&stretch=asinh&interval=zscale"),
        None,
    )
    .await;
    assert_eq!(hit.header("x-wisecut-cache"), "cache-hit");
    assert_eq!(hit.body, png.body);
    assert_eq!(
        hit.header("x-wisecut-limits"),
        png.header("x-wisecut-limits")
    );

    let jpg = fetch(
        &st,
        &format!("{base}&format=jpg&quality=70&output_size=30"),
        None,
    )
    .await;
    assert_eq!(jpg.status, StatusCode::OK, "{}", jpg.text());
    assert_eq!(jpg.header("content-type"), "image/jpeg");
    let decoded = image::load_from_memory(&jpg.body).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (30, 30));

    let png16 = fetch(&st, &format!("{base}&format=png16&min=0&max=100"), None).await;
    assert_eq!(png16.status, StatusCode::OK, "{}", png16.text());
    let decoded = image::load_from_memory(&png16.body).unwrap();
    assert_eq!(decoded.color(), image::ColorType::L16);
    assert_eq!(png16.header("x-wisecut-limits"), "0.0 100.0");
}

#[tokio::test]
async fn concurrent_identical_requests_make_the_product_once() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let f = first_frame(&st, FrameClass::RegriddedFrame).await;
    let uri = format!(
        "/api/cutout?frame={}&x=150&y=150&size=200&format=png&stretch=histeq",
        f.target.object_id
    );
    let replies = futures_join(8, &st, &uri).await;
    let made = replies
        .iter()
        .filter(|r| r.header("x-wisecut-cache") == "made")
        .count();
    assert_eq!(made, 1, "exactly one request renders");
    assert!(replies.iter().all(|r| r.status == StatusCode::OK));
    assert!(replies.iter().all(|r| r.body == replies[0].body));
    assert_eq!(st.services.products.cache.stats().misses, 1);
}

async fn futures_join(n: usize, st: &AppState, uri: &str) -> Vec<Reply> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let st = st.clone();
        let uri = uri.to_owned();
        tasks.push(tokio::spawn(async move { fetch(&st, &uri, None).await }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test]
async fn compressed_frames_give_the_same_pixels_as_a_full_read() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let f = first_frame(&st, FrameClass::RawScienceFrame).await;
    assert!(f.compressed, "raw science frames are RICE-compressed");
    let r = fetch(
        &st,
        &format!(
            "/api/cutout?frame={}&x=40.2&y=77.9&width=33&height=18",
            f.target.object_id
        ),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.fits");
    std::fs::write(&path, &r.body).unwrap();
    let info = fits::image_info(&path, 0).unwrap();
    assert_eq!(info.bitpix, f.bitpix, "BITPIX kept");
    let cut = fits::read_image_f32(&path, 0).unwrap();
    let full = fits::read_image_f32(&f.file_path(&st.config.data_dir), f.hdu as usize).unwrap();
    let (x0, y0) = (
        ((40.2 - 1.0) - 16.5f64).ceil() as usize,
        ((77.9 - 1.0) - 9.0f64).ceil() as usize,
    );
    for iy in 0..18 {
        for ix in 0..33 {
            assert_eq!(cut.get(ix, iy), full.get(x0 + ix, y0 + iy), "({ix}, {iy})");
        }
    }
    assert_eq!(r.header("x-wisecut-cache"), "made");
    let hit = fetch(
        &st,
        &format!(
            "/api/cutout?frame={}&x=40.2&y=77.9&width=33&height=18",
            f.target.object_id
        ),
        None,
    )
    .await;
    assert_eq!(hit.header("x-wisecut-cache"), "cache-hit");
    assert_eq!(hit.body, r.body);
}

#[tokio::test]
async fn row_tiled_images_are_served_from_a_sidecar_with_identical_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.fits");
    let (w, h) = (5000, 600);
    let img = Raster::from_vec(
        w,
        h,
        (0..w * h)
            .map(|i| (((i * 7919) % 60000) as i32 - 30000 + (i % 3) as i32) as i16)
            .collect(),
    );
    let hdu = fits::write_image(
        &path,
        PixelData::I16(&img),
        &[],
        &Compression::Rice { tile: (w, 1) },
    )
    .unwrap();
    let sidecars = Sidecars::new(dir.path().join("sidecars"), 1 << 30).unwrap();
    let fast = PixelSource::open(&path, hdu, Some(&sidecars)).unwrap();
    let slow = PixelSource::open(&path, hdu, None).unwrap();
    assert_eq!(fast.access(), "sidecar");
    assert_eq!(slow.access(), "compressed");
    assert_eq!(sidecars.bytes(), (w * h * 4) as u64);
    for &(x0, y0, cw, ch) in &[(0, 0, 10, 10), (4990, 590, 10, 10), (1234, 321, 240, 240)] {
        let (Region::Scaled(a), Region::Scaled(b)) = (
            fast.read(x0, y0, cw, ch).unwrap(),
            slow.read(x0, y0, cw, ch).unwrap(),
        ) else {
            panic!("compressed reads are scaled")
        };
        assert_eq!(a, b);
        assert_eq!(a[0], f64::from(img.get(x0, y0)));
    }
    // A store too small for the image falls back to reading compressed.
    let tiny = Sidecars::new(dir.path().join("tiny"), 1000).unwrap();
    let fallback = PixelSource::open(&path, hdu, Some(&tiny)).unwrap();
    assert_eq!(fallback.access(), "compressed");
    assert_eq!(tiny.bytes(), 0);
}

#[tokio::test]
async fn bad_cutout_requests_name_the_parameter() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let f = first_frame(&st, FrameClass::ReducedScienceFrame).await;
    let id = f.target.object_id;
    let bias = first_frame(&st, FrameClass::BiasFrame).await;
    let cases: Vec<(String, StatusCode, Vec<&str>)> = vec![
        (
            format!("/api/cutout?frame={id}&x=10&y=10&size=6001"),
            StatusCode::BAD_REQUEST,
            vec!["size", "6000"],
        ),
        (
            format!("/api/cutout?frame={id}&ra=150.1"),
            StatusCode::BAD_REQUEST,
            vec!["dec", "missing"],
        ),
        (
            format!("/api/cutout?frame={id}&ra=150.1&dec=95"),
            StatusCode::BAD_REQUEST,
            vec!["dec", "[-90, 90]"],
        ),
        (
            format!("/api/cutout?frame={id}&x=10&y=10&format=gif"),
            StatusCode::BAD_REQUEST,
            vec!["format", "fits, png, png16, jpg"],
        ),
        (
            format!("/api/cutout?frame={id}&x=10&y=10&format=png&stretch=cubic"),
            StatusCode::BAD_REQUEST,
            vec!["stretch", "linear", "asinh", "histeq"],
        ),
        (
            format!("/api/cutout?frame={id}&x=10&y=10&unit=furlong"),
            StatusCode::BAD_REQUEST,
            vec!["unit", "px, arcsec, arcmin, deg"],
        ),
        (
            format!("/api/cutout?frame={id}&x=10&y=10&bogus=1"),
            StatusCode::BAD_REQUEST,
            vec!["bogus", "allowed"],
        ),
        (
            format!("/api/cutout?frame={id}&x=10&y=10&size=3&size=4"),
            StatusCode::BAD_REQUEST,
            vec!["size", "more than once"],
        ),
        (
            "/api/cutout?frame=999999&x=10&y=10".to_owned(),
            StatusCode::NOT_FOUND,
            vec!["999999"],
        ),
        (
            "/api/cutout?frame=no_such_file.fits&x=10&y=10".to_owned(),
            StatusCode::NOT_FOUND,
            vec!["no_such_file.fits"],
        ),
        (
            format!(
                "/api/cutout?frame={}&ra=150.1&dec=2.2",
                bias.target.object_id
            ),
            StatusCode::BAD_REQUEST,
            vec!["pixel coordinates"],
        ),
        (
            format!("/api/cutout?frame={id}&x=10&y=10&format=jpg&quality=0"),
            StatusCode::BAD_REQUEST,
            vec!["quality"],
        ),
        (
            format!("/api/cutout?frame={id}&ra=abc&dec=2"),
            StatusCode::BAD_REQUEST,
            vec!["ra", "sexagesimal"],
        ),
    ];
    for (uri, status, needles) in cases {
        let r = fetch(&st, &uri, None).await;
        assert_eq!(r.status, status, "{uri}: {}", r.text());
        assert!(r.header("content-type").starts_with("text/plain"), "{uri}");
        for n in needles {
            assert!(r.text().contains(n), "{uri}: {:?} lacks {n:?}", r.text());
        }
    }
    // The bias frame is fine by pixel position.
    let ok = fetch(
        &st,
        &format!(
            "/api/cutout?frame={}&x=50&y=50&size=10",
            bias.target.object_id
        ),
        None,
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
}

#[tokio::test]
async fn images_lists_covering_frames_best_first() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let f = first_frame(&st, FrameClass::ReducedScienceFrame).await;
    let (cx, cy) = (f.naxis1 as f64 / 2.0, f.naxis2 as f64 / 2.0);
    let (ra, dec) = frame_wcs(&f).pix_to_sky(cx, cy).unwrap();
    let r = fetch(&st, &format!("/api/images?ra={ra}&dec={dec}&size=30"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let images = v["images"].as_array().unwrap();
    assert!(images.len() >= 2, "{v}");
    assert_eq!(v["count"].as_u64().unwrap() as usize, images.len());
    let edges: Vec<f64> = images
        .iter()
        .map(|i| i["edge_distance_px"].as_f64().unwrap())
        .collect();
    assert!(edges.windows(2).all(|w| w[0] >= w[1]), "{edges:?}");
    assert!(edges.iter().all(|&e| e >= 0.0));
    let mine = images
        .iter()
        .find(|i| i["object_id"].as_i64() == Some(f.target.object_id.0))
        .expect("the frame itself covers its centre");
    assert!((mine["x"].as_f64().unwrap() - cx).abs() < 1e-6);
    // Every listed frame really covers the position, and its cutout URL works.
    for i in images.iter().take(3) {
        let url = i["cutout_url"].as_str().unwrap();
        let path = &url[url.find("/api/").unwrap()..];
        let c = fetch(&st, path, None).await;
        assert_eq!(c.status, StatusCode::OK, "{path}: {}", c.text());
        let (_, h) = common::read_fits(&c.body);
        assert_eq!(h.number("NPADPIX"), Some(0.0), "{path}");
    }
    // Class filter and CSV.
    let r = fetch(
        &st,
        &format!("/api/images?ra={ra}&dec={dec}&class=RegriddedFrame&format=csv"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-type").starts_with("text/csv"));
    let text = r.text();
    let mut lines = text.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("object_id,filename,class")
    );
    let rows: Vec<&str> = lines.collect();
    assert!(!rows.is_empty());
    assert!(
        rows.iter()
            .all(|l| l.split(',').nth(2) == Some("RegriddedFrame"))
    );
    // Nowhere near the survey: an empty list, not an error.
    let r = fetch(&st, "/api/images?ra=10&dec=-60", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["count"], 0);
    let bad = fetch(
        &st,
        &format!("/api/images?ra={ra}&dec={dec}&class=Frame"),
        None,
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text().contains("ReducedScienceFrame"), "{}", bad.text());
    let bad = fetch(&st, "/api/images?dec=2", None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text().starts_with("ra"));
}

#[tokio::test]
async fn a_frame_whose_file_is_gone_is_a_404_naming_the_file() {
    let db = common::ingested(common::sqlite().await).await;
    // Same catalogue, but a data root without the files.
    let empty = tempfile::tempdir().unwrap();
    let config = wisecut::config::Config::new(
        db.url.clone(),
        empty.path().to_path_buf(),
        empty.path().join("cache"),
        "127.0.0.1:0".parse().unwrap(),
    );
    let st = AppState::new(db.catalog.clone(), std::sync::Arc::new(config)).unwrap();
    let f = first_frame(&st, FrameClass::ReducedScienceFrame).await;
    let r = fetch(
        &st,
        &format!("/api/cutout?frame={}&x=10&y=10", f.target.object_id),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    assert!(
        r.text().contains("missing") && r.text().contains(&f.filename),
        "{}",
        r.text()
    );
}
