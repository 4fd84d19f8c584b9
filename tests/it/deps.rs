//! Dependency cutouts through the router: the star is where its lineage says
//! on every sky frame, calibration frames are cut at the raw frame's
//! detector pixels, the GIFs have one frame per class and per epoch, the ZIP
//! holds exactly what its manifest lists, and bad requests are refused with
//! the rule they broke.
//!
//! Expected values come from outside the dependency code: the star is picked
//! from the catalogue with SQL, positions from each frame's own WCS, pixel
//! offsets from the frames' `DATASEC`, epoch counts from the coadd's inputs,
//! and the pixels themselves from the FITS files served.

use std::collections::{BTreeSet, HashMap};

use super::common::{self, TestDb};
use axum::http::StatusCode;
use serde_json::Value as Json;
use wisecut::catalog::lineage::Direction;
use wisecut::ids::ObjectId;
use wisecut::imaging::fits;
use wisecut::imaging::raster::Raster;
use wisecut::imaging::wcs::{Header, KeywordSource, Wcs, WcsKeywords};
use wisecut::model::FrameClass;
use wisecut::web::AppState;

/// Cutout side of these tests (odd: the source lies in the centre pixel).
const SIDE: usize = 31;

/// A bright, isolated, star-like source of a ReducedScienceFrame SourceList.
#[derive(Debug, Clone)]
pub(crate) struct Star {
    pub slid: i64,
    pub sid: i64,
    pub ra: f64,
    pub dec: f64,
}

/// Picks the brightest source with CLASS_STAR > 0.8 and no flags that lies
/// at least 30 pixels inside its reduced frame and has no neighbour above 1%
/// of its flux within 12 pixels.
pub(crate) async fn bright_star(db: &TestDb) -> Star {
    let conn = common::raw_db(db).await;
    let rows = common::sql(
        &conn,
        "SELECT s.slid, s.sid, s.x, s.y, s.ra, s.dec, s.flux_auto, s.class_star, s.flags, \
                f.naxis1, f.naxis2 \
         FROM source s JOIN source_list l ON l.slid = s.slid \
              JOIN frame f ON f.object_id = l.frame_id \
         WHERE f.frame_class = $1",
        vec!["ReducedScienceFrame".into()],
    )
    .await;
    struct Row {
        slid: i64,
        sid: i64,
        x: f64,
        y: f64,
        ra: f64,
        dec: f64,
        flux: f64,
        class_star: f64,
        flags: i32,
        nx: f64,
        ny: f64,
    }
    let rows: Vec<Row> = rows
        .iter()
        .map(|r| Row {
            slid: r.try_get("", "slid").unwrap(),
            sid: r.try_get("", "sid").unwrap(),
            x: r.try_get("", "x").unwrap(),
            y: r.try_get("", "y").unwrap(),
            ra: r.try_get("", "ra").unwrap(),
            dec: r.try_get("", "dec").unwrap(),
            flux: r.try_get("", "flux_auto").unwrap(),
            class_star: r.try_get("", "class_star").unwrap(),
            flags: r.try_get("", "flags").unwrap(),
            nx: f64::from(r.try_get::<i32>("", "naxis1").unwrap()),
            ny: f64::from(r.try_get::<i32>("", "naxis2").unwrap()),
        })
        .collect();
    assert!(!rows.is_empty(), "{}: no reduced-frame sources", db.backend);
    let margin = 30.0;
    let best = rows
        .iter()
        .filter(|s| s.class_star > 0.8 && s.flags == 0 && s.flux > 0.0)
        .filter(|s| s.x > margin && s.y > margin && s.x < s.nx - margin && s.y < s.ny - margin)
        .filter(|s| {
            !rows.iter().any(|o| {
                o.slid == s.slid
                    && o.sid != s.sid
                    && (o.x - s.x).hypot(o.y - s.y) < 12.0
                    && o.flux > 0.01 * s.flux
            })
        })
        .max_by(|a, b| a.flux.total_cmp(&b.flux))
        .unwrap_or_else(|| panic!("{}: no bright isolated star", db.backend));
    Star {
        slid: best.slid,
        sid: best.sid,
        ra: best.ra,
        dec: best.dec,
    }
}

/// A dependency request that must be answered inline: the job JSON.
pub(crate) async fn deps_json(st: &AppState, query: &str) -> Json {
    let v = common::submit_json(st, &format!("/api/deps?{query}")).await;
    assert_eq!(v["status"], "done", "{query}: {v:#}");
    assert!(v["result"].is_object(), "{query}: no result in {v:#}");
    v
}

/// Downloads a result file through the router.
async fn download(st: &AppState, url: &str) -> Vec<u8> {
    let (status, _, body) = common::fetch(st, url).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{url}: {}",
        String::from_utf8_lossy(&body)
    );
    body
}

/// Every cutout of a row, with its column class name.
fn cutouts(result: &Json, row: usize) -> Vec<(String, Json)> {
    let classes: Vec<String> = result["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let cells = result["rows"][row]["cells"].as_array().unwrap();
    assert_eq!(cells.len(), classes.len(), "one cell per class");
    let mut out = Vec::new();
    for (class, cell) in classes.iter().zip(cells) {
        for c in cell.as_array().unwrap() {
            assert_eq!(c["class"].as_str(), Some(class.as_str()), "{c}");
            out.push((class.clone(), c.clone()));
        }
    }
    out
}

/// Zero-based origin of a FITS section such as `[1:512,1:512]` (0,0 when the
/// frame has none).
fn section_origin(text: Option<&str>) -> (i64, i64) {
    let Some(s) = text else { return (0, 0) };
    let inner = s.trim().trim_start_matches('[').trim_end_matches(']');
    let (xs, ys) = inner.split_once(',').unwrap();
    let first = |r: &str| r.split(':').next().unwrap().trim().parse::<i64>().unwrap() - 1;
    (first(xs), first(ys))
}

/// The DATASEC of a frame's original file.
fn datasec(st: &AppState, f: &wisecut::model::Frame) -> (i64, i64) {
    let cards = fits::read_header(&f.file_path(&st.config.data_dir), f.hdu as usize).unwrap();
    let h = Header::new(&cards);
    section_origin(h.text("DATASEC").as_deref())
}

/// Robust background and noise of the finite pixels: median and 1.4826·MAD.
fn background(img: &Raster<f32>) -> (f64, f64) {
    let mut v: Vec<f64> = img
        .data
        .iter()
        .filter(|p| p.is_finite())
        .map(|&p| f64::from(p))
        .collect();
    assert!(v.len() > img.data.len() / 2, "mostly blank cutout");
    v.sort_by(f64::total_cmp);
    let med = v[v.len() / 2];
    let mut dev: Vec<f64> = v.iter().map(|p| (p - med).abs()).collect();
    dev.sort_by(f64::total_cmp);
    (med, 1.4826 * dev[dev.len() / 2])
}

/// Where the star is on a cutout, measured from its pixels alone: the peak
/// of the 3×3 box sums above the median background (so single hot pixels
/// and cosmic rays lose to the star), then the background-subtracted,
/// flux-weighted centroid in a 7×7 box around it. Returns the 1-based
/// position and the peak's significance in units of the pixel noise.
fn centroid(img: &Raster<f32>) -> ((f64, f64), f64) {
    let (bg, noise) = background(img);
    let (w, h) = (img.width as i64, img.height as i64);
    let at = |x: i64, y: i64| -> f64 {
        if x < 0 || y < 0 || x >= w || y >= h {
            return 0.0;
        }
        let v = f64::from(img.data[(y * w + x) as usize]);
        if v.is_finite() { v - bg } else { 0.0 }
    };
    let mut peak = (0, 0);
    let mut best = f64::NEG_INFINITY;
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let s: f64 = (-1..=1)
                .flat_map(|dy| (-1..=1).map(move |dx| (dx, dy)))
                .map(|(dx, dy)| at(x + dx, y + dy))
                .sum();
            if s > best {
                best = s;
                peak = (x, y);
            }
        }
    }
    let (mut sw, mut sx, mut sy) = (0.0, 0.0, 0.0);
    for y in peak.1 - 3..=peak.1 + 3 {
        for x in peak.0 - 3..=peak.0 + 3 {
            let v = at(x, y).max(0.0);
            sw += v;
            sx += v * (x + 1) as f64;
            sy += v * (y + 1) as f64;
        }
    }
    assert!(sw > 0.0, "no flux above the background");
    let significance = best / 3.0 / noise.max(f64::MIN_POSITIVE);
    ((sx / sw, sy / sw), significance)
}

#[tokio::test]
async fn the_star_sits_at_the_centre_of_every_sky_frame_cutout() {
    for db in common::all_backends().await {
        let db = common::ingested(db).await;
        let be = db.backend;
        let st = super::web::state(&db);
        let star = bright_star(&db).await;
        let v = deps_json(
            &st,
            &format!(
                "slid={}&ids={}&classes=raw,reduced,regridded,coadd&size={SIDE}",
                star.slid, star.sid
            ),
        )
        .await;
        let result = &v["result"];
        assert_eq!(result["rows"].as_array().unwrap().len(), 1, "{be}");
        let row = &result["rows"][0];
        assert_eq!(
            (row["slid"].as_i64(), row["sid"].as_i64()),
            (Some(star.slid), Some(star.sid))
        );
        assert!(row["error"].is_null(), "{be}: {}", row["error"]);
        let all = cutouts(result, 0);
        let classes: BTreeSet<&str> = all.iter().map(|(c, _)| c.as_str()).collect();
        for c in [
            FrameClass::RawScienceFrame,
            FrameClass::ReducedScienceFrame,
            FrameClass::RegriddedFrame,
            FrameClass::CoaddedRegriddedFrame,
        ] {
            assert!(
                classes.contains(c.name()),
                "{be}: no {c:?} cutout in {classes:?}"
            );
        }
        let mut raw_seen = false;
        for (class, cell) in &all {
            let what = format!("{be}: {class} {}", cell["filename"]);
            let url = cell["fits"]
                .as_str()
                .unwrap_or_else(|| panic!("{what}: {cell}"));
            assert!(
                url.starts_with(&format!(
                    "{}/jobs/{}/files/",
                    st.config.public_url,
                    v["id"].as_str().unwrap()
                )),
                "{url}"
            );
            let (img, h) = common::read_fits(&download(&st, url).await);
            assert_eq!((img.width, img.height), (SIDE, SIDE), "{what}");
            assert_eq!(
                h.number("NPADPIX"),
                Some(0.0),
                "{what}: star away from edges"
            );
            let frame = db
                .catalog
                .frame(ObjectId(cell["frame_id"].as_i64().unwrap()))
                .await
                .unwrap();
            assert_eq!(h.number("ORIGOBJ"), Some(frame.target.object_id.0 as f64));
            if frame.class == FrameClass::RawScienceFrame {
                raw_seen = true;
                assert!(frame.compressed, "{what}: raw frames are tile-compressed");
            }
            // Where the star is on the whole frame, by the frame's own WCS.
            let fwcs = Wcs::new(
                frame.wcs.as_ref().unwrap(),
                frame.naxis1 as usize,
                frame.naxis2 as usize,
            )
            .unwrap();
            let (fx, fy) = fwcs.sky_to_pix(star.ra, star.dec).unwrap();
            let (x0, y0) = (h.number("ORIGX0").unwrap(), h.number("ORIGY0").unwrap());
            let (ex, ey) = (fx - x0, fy - y0);
            // Centred: for an odd side the star is in the middle pixel.
            let mid = (SIDE as f64 + 1.0) / 2.0;
            assert!(
                (ex - mid).abs() <= 0.5 + 1e-9 && (ey - mid).abs() <= 0.5 + 1e-9,
                "{what}: star expected at ({ex:.2}, {ey:.2}) of the cutout"
            );
            // The cutout's own WCS (shifted CRPIX) agrees.
            let kw = WcsKeywords::from_header(&h).unwrap().unwrap();
            let (cx, cy) = Wcs::new(&kw, SIDE, SIDE)
                .unwrap()
                .sky_to_pix(star.ra, star.dec)
                .unwrap();
            assert!(
                (cx - ex).abs() < 1e-6 && (cy - ey).abs() < 1e-6,
                "{what}: cutout WCS puts the star at ({cx}, {cy}), not ({ex}, {ey})"
            );
            // And the pixels show it there.
            let ((mx, my), snr) = centroid(&img);
            assert!(
                snr > 20.0,
                "{what}: the star is not in the cutout (peak {snr:.1} σ)"
            );
            assert!(
                (mx - ex).abs() < 1.0 && (my - ey).abs() < 1.0,
                "{what}: star measured at ({mx:.2}, {my:.2}), expected ({ex:.2}, {ey:.2})"
            );
        }
        assert!(raw_seen, "{be}: the raw frame was cut");
    }
}

/// The dependency cutouts of `classes` around the brightest star of the
/// tiny survey, on SQLite: the database, its state and the job JSON.
async fn bright_star_cutouts(classes: &str) -> (TestDb, AppState, Json) {
    let db = common::ingested(common::sqlite().await).await;
    let st = super::web::state(&db);
    let star = bright_star(&db).await;
    let query = format!(
        "slid={}&ids={}&size={SIDE}&classes={classes}",
        star.slid, star.sid
    );
    let v = deps_json(&st, &query).await;
    (db, st, v)
}

#[tokio::test]
async fn calibration_cutouts_cover_the_raw_frames_detector_pixels() {
    let (db, st, v) =
        bright_star_cutouts("raw,bias,flat,fringe,hot,cold,illumination,rawbias,rawflat").await;
    let all = cutouts(&v["result"], 0);
    let raws: Vec<&Json> = all
        .iter()
        .filter(|(c, _)| c == FrameClass::RawScienceFrame.name())
        .map(|(_, c)| c)
        .collect();
    assert_eq!(raws.len(), 1, "one raw exposure behind a reduced frame");
    let raw_frame = db
        .catalog
        .frame(ObjectId(raws[0]["frame_id"].as_i64().unwrap()))
        .await
        .unwrap();
    let (_, raw_h) = common::read_fits(&download(&st, raws[0]["fits"].as_str().unwrap()).await);
    let raw_off = datasec(&st, &raw_frame);
    assert_eq!(raw_off, (0, 0), "the sample's raw DATASEC starts at [1,1]");
    let raw_x0 = raw_h.number("ORIGX0").unwrap() as i64;
    let raw_y0 = raw_h.number("ORIGY0").unwrap() as i64;
    let raw_cx = raw_h.number("CUTX").unwrap();
    let raw_cy = raw_h.number("CUTY").unwrap();
    let mut seen = BTreeSet::new();
    for (class, cell) in &all {
        if class == FrameClass::RawScienceFrame.name() {
            continue;
        }
        let what = format!("{class} {}", cell["filename"]);
        let frame = db
            .catalog
            .frame(ObjectId(cell["frame_id"].as_i64().unwrap()))
            .await
            .unwrap();
        assert!(frame.class.is_calibration(), "{what}");
        assert_eq!(frame.chip, raw_frame.chip, "{what}: same detector");
        let url = cell["fits"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: {cell}"));
        let (img, h) = common::read_fits(&download(&st, url).await);
        assert_eq!((img.width, img.height), (SIDE, SIDE), "{what}");
        // Same silicon: shift by the difference of the data sections.
        let off = datasec(&st, &frame);
        let want_x0 = raw_x0 - raw_off.0 + off.0;
        let want_y0 = raw_y0 - raw_off.1 + off.1;
        assert_eq!(
            (
                h.number("ORIGX0").unwrap() as i64,
                h.number("ORIGY0").unwrap() as i64
            ),
            (want_x0, want_y0),
            "{what}"
        );
        let dx = (raw_off.0 - off.0) as f64;
        let dy = (raw_off.1 - off.1) as f64;
        assert!(
            (h.number("CUTX").unwrap() - (raw_cx - dx)).abs() < 1e-9,
            "{what}"
        );
        assert!(
            (h.number("CUTY").unwrap() - (raw_cy - dy)).abs() < 1e-9,
            "{what}"
        );
        seen.insert(frame.class);
    }
    for c in [
        FrameClass::BiasFrame,
        FrameClass::MasterFlatFrame,
        FrameClass::HotPixelMap,
        FrameClass::ColdPixelMap,
        FrameClass::IlluminationCorrection,
        FrameClass::RawBiasFrame,
        FrameClass::RawDomeFlatFrame,
    ] {
        assert!(seen.contains(&c), "no {c:?} cutout; got {seen:?}");
    }
}

/// Frames of a GIF as palette colours (grey levels), with the canvas size.
fn gif_frames(bytes: &[u8]) -> (usize, usize, Vec<Vec<u8>>) {
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::Indexed);
    let mut d = opts.read_info(std::io::Cursor::new(bytes)).unwrap();
    let (w, h) = (usize::from(d.width()), usize::from(d.height()));
    let palette = d.global_palette().expect("a global palette").to_vec();
    let mut frames = Vec::new();
    while let Some(f) = d.read_next_frame().unwrap() {
        // Every frame covers the whole canvas.
        assert_eq!(
            (f.left, f.top, usize::from(f.width), usize::from(f.height)),
            (0, 0, w, h)
        );
        let grey: Vec<u8> = f
            .buffer
            .iter()
            .map(|&i| {
                let c = &palette[3 * usize::from(i)..3 * usize::from(i) + 3];
                assert!(c[0] == c[1] && c[1] == c[2], "grey palette");
                c[0]
            })
            .collect();
        frames.push(grey);
    }
    (w, h, frames)
}

/// Asserts that the label strip (the top 14 rows) of every frame has white
/// text on black.
fn assert_labelled(what: &str, w: usize, frames: &[Vec<u8>]) {
    for (i, f) in frames.iter().enumerate() {
        let strip = &f[..14 * w];
        let white = strip.iter().filter(|&&v| v == 255).count();
        let black = strip.iter().filter(|&&v| v == 0).count();
        assert!(white >= 10, "{what} frame {i}: no white label text");
        assert!(
            black > white,
            "{what} frame {i}: label strip not mostly black"
        );
    }
}

#[tokio::test]
async fn pipeline_and_epoch_gifs_have_one_labelled_frame_per_class_and_epoch() {
    let db = common::ingested(common::sqlite().await).await;
    let st = super::web::state(&db);
    let star = bright_star(&db).await;
    let v = deps_json(
        &st,
        &format!("slid={}&ids={},1&size={SIDE}", star.slid, star.sid),
    )
    .await;
    let result = &v["result"];
    let gif_classes = [
        FrameClass::RawScienceFrame,
        FrameClass::BiasFrame,
        FrameClass::MasterFlatFrame,
        FrameClass::FringeFrame,
        FrameClass::ReducedScienceFrame,
        FrameClass::RegriddedFrame,
        FrameClass::CoaddedRegriddedFrame,
    ];
    let rows = result["rows"].as_array().unwrap();
    assert_eq!(rows.len(), if star.sid == 1 { 1 } else { 2 });
    for (i, row) in rows.iter().enumerate() {
        let what = format!("SID {}", row["sid"]);
        let all = cutouts(result, i);
        // The GIF shows the frames the product was directly made with.
        let with_cutout: BTreeSet<&str> = all
            .iter()
            .filter(|(_, c)| c["fits"].is_string() && c["indirect"] == false)
            .map(|(class, _)| class.as_str())
            .collect();
        let expected = gif_classes
            .iter()
            .filter(|c| with_cutout.contains(c.name()))
            .count();
        assert!(expected >= 5, "{what}: {with_cutout:?}");
        assert_eq!(
            row["pipeline_frames"].as_u64(),
            Some(expected as u64),
            "{what}"
        );
        let (w, _, frames) =
            gif_frames(&download(&st, row["pipeline_gif"].as_str().unwrap()).await);
        assert_eq!(frames.len(), expected, "{what}: pipeline GIF frames");
        assert_labelled(&format!("{what} pipeline"), w, &frames);

        // Epochs: the regridded frames stacked into the source's coadd that
        // cover it.
        let coadd = all
            .iter()
            .find(|(c, _)| c == FrameClass::CoaddedRegriddedFrame.name())
            .map(|(_, c)| ObjectId(c["frame_id"].as_i64().unwrap()))
            .expect("a coadd cutout");
        let up = db.catalog.lineage(coadd, Direction::Up, 1).await.unwrap();
        let (ra, dec) = (row["ra"].as_f64().unwrap(), row["dec"].as_f64().unwrap());
        let mut covering = 0;
        for n in up.of_class(FrameClass::RegriddedFrame) {
            let f = db.catalog.frame(n.object_id).await.unwrap();
            let wcs = Wcs::new(
                f.wcs.as_ref().unwrap(),
                f.naxis1 as usize,
                f.naxis2 as usize,
            )
            .unwrap();
            if let Some((x, y)) = wcs.sky_to_pix(ra, dec)
                && x >= 0.5
                && y >= 0.5
                && x < f64::from(f.naxis1) + 0.5
                && y < f64::from(f.naxis2) + 0.5
            {
                covering += 1;
            }
        }
        assert!(covering >= 2, "{what}: the coadd stacks several epochs");
        assert_eq!(row["epoch_frames"].as_u64(), Some(covering), "{what}");
        let (w, _, frames) = gif_frames(&download(&st, row["epochs_gif"].as_str().unwrap()).await);
        assert_eq!(frames.len(), covering as usize, "{what}: epoch GIF frames");
        assert_labelled(&format!("{what} epochs"), w, &frames);
    }
}

#[tokio::test]
async fn the_zip_holds_exactly_the_files_of_its_manifest() {
    use std::io::Read;
    let db = common::ingested(common::sqlite().await).await;
    let st = super::web::state(&db);
    let star = bright_star(&db).await;
    let v = deps_json(&st, &format!("slid={}&ids=1:3&size=24", star.slid)).await;
    let id = v["id"].as_str().unwrap().to_owned();
    let base = &st.config.public_url;
    assert_eq!(
        v["zip"].as_str(),
        Some(format!("{base}/jobs/{id}/zip").as_str())
    );
    let (status, headers, body) = common::fetch_full(&st, &format!("/jobs/{id}/zip")).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["content-type"], "application/zip");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(body)).unwrap();
    let prefix = format!("wisecut_job{id}/");
    let mut entries: HashMap<String, u64> = HashMap::new();
    let mut manifest: Option<Json> = None;
    for i in 0..zip.len() {
        let mut e = zip.by_index(i).unwrap();
        let name = e.name().unwrap().to_string();
        let rel = name
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{name} is not under {prefix}"))
            .to_owned();
        if rel == "manifest.json" {
            let mut text = String::new();
            e.read_to_string(&mut text).unwrap();
            manifest = Some(serde_json::from_str(&text).unwrap());
        }
        assert!(entries.insert(rel, e.size()).is_none(), "{name} twice");
    }
    let manifest = manifest.expect("manifest.json in the ZIP");
    let files = manifest["files"].as_array().unwrap();
    let listed: HashMap<String, u64> = files
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed.len(), files.len(), "no path listed twice");
    assert!(!listed.contains_key("manifest.json"));
    for (rel, size) in &entries {
        if rel != "manifest.json" {
            assert_eq!(
                listed.get(rel),
                Some(size),
                "{rel}: in the ZIP, not (so) listed"
            );
        }
    }
    for (rel, size) in &listed {
        assert_eq!(
            entries.get(rel),
            Some(size),
            "{rel}: listed, not (so) in the ZIP"
        );
    }
    // The cutouts of every row are in it, and a file's bytes are the served
    // file's.
    let result = &v["result"];
    let mut n_fits = 0;
    for i in 0..result["rows"].as_array().unwrap().len() {
        for (_, c) in cutouts(result, i) {
            let url = c["fits"].as_str().unwrap();
            let rel = url
                .strip_prefix(&format!("{base}/jobs/{id}/files/"))
                .unwrap();
            assert!(listed.contains_key(rel), "{rel}");
            n_fits += 1;
        }
    }
    assert!(n_fits >= 3 * 5, "{n_fits} cutouts for three sources");
    assert_eq!(
        listed.len() as u64,
        result["files"].as_u64().unwrap(),
        "result.files counts the listed files"
    );
    let (rel, _) = listed.iter().find(|(p, _)| p.ends_with(".fits")).unwrap();
    let mut inside = Vec::new();
    zip.by_name(&format!("{prefix}{rel}"))
        .unwrap()
        .read_to_end(&mut inside)
        .unwrap();
    assert_eq!(
        inside,
        download(&st, &format!("/jobs/{id}/files/{rel}")).await
    );
}

#[tokio::test]
async fn bad_requests_name_the_rule_and_unknown_lists_are_404() {
    for db in common::all_backends().await {
        let db = common::ingested(db).await;
        let be = db.backend;
        let st = super::web::state(&db);
        let (slid, _, _) = common::biggest_source_list(&db.catalog).await;
        for (ids, rule) in [
            ("5:1", "runs backwards"),
            ("a:b", "is not an id or a range"),
            ("", "no ids given"),
            ("1:20000", "at most 10000"),
        ] {
            let (status, ctype, body) =
                common::submit(&st, &format!("/api/deps?slid={slid}&ids={ids}")).await;
            let text = String::from_utf8_lossy(&body);
            assert_eq!(status, StatusCode::BAD_REQUEST, "{be} ids={ids}: {text}");
            assert!(ctype.starts_with("text/plain"), "{be} ids={ids}: {ctype}");
            assert!(
                text.starts_with("ids"),
                "{be} ids={ids}: names the parameter: {text}"
            );
            assert!(text.contains(rule), "{be} ids={ids}: {text}");
        }
        for q in ["slid=987654&ids=1", "alid=987654&ids=1"] {
            let (status, _, body) = common::submit(&st, &format!("/api/deps?{q}")).await;
            assert_eq!(
                status,
                StatusCode::NOT_FOUND,
                "{be} {q}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        // The HTML form shows the same message with a 400.
        let (status, ctype, body) = common::fetch(&st, &format!("/deps?slid={slid}&ids=5:1")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{be}");
        assert!(ctype.starts_with("text/html"), "{be}: {ctype}");
        let doc = scraper::Html::parse_document(&String::from_utf8_lossy(&body));
        let text: String = doc.root_element().text().collect();
        assert!(text.contains("range 5:1 runs backwards"), "{be}: {text}");
        // No job was made for any of them.
        let (n, _) = db.catalog.jobs(None, None, 0, 10).await.unwrap();
        assert_eq!(n, 0, "{be}: refused requests leave no job");
    }
}

#[tokio::test]
async fn missing_sids_become_rows_with_an_error_beside_the_others() {
    let db = common::ingested(common::sqlite().await).await;
    let st = super::web::state(&db);
    let (slid, _, n) = common::biggest_source_list(&db.catalog).await;
    assert!(n < 99999);
    let v = deps_json(
        &st,
        &format!("slid={slid}&ids=1,2,99999&classes=raw,reduced,coadd"),
    )
    .await;
    let result = &v["result"];
    let rows = result["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let sids: Vec<i64> = rows.iter().map(|r| r["sid"].as_i64().unwrap()).collect();
    assert_eq!(sids, vec![1, 2, 99999]);
    for (i, r) in rows.iter().enumerate() {
        let made = cutouts(result, i)
            .iter()
            .filter(|(_, c)| c["fits"].is_string())
            .count();
        if r["sid"] == 99999 {
            let e = r["error"].as_str().unwrap_or_default();
            assert!(e.contains("no such source"), "{e}");
            assert_eq!(made, 0);
            assert!(r["pipeline_gif"].is_null() && r["epochs_gif"].is_null());
        } else {
            assert!(r["error"].is_null(), "{}", r["error"]);
            assert!(made >= 2, "SID {}: {made} cutouts", r["sid"]);
        }
    }
}

#[tokio::test]
async fn an_association_request_gives_one_row_per_member() {
    let db = common::ingested(common::sqlite().await).await;
    let st = super::web::state(&db);
    let conn = common::raw_db(&db).await;
    // The list whose associations 1 and 2 have the most members.
    let rows = common::sql(
        &conn,
        "SELECT alid, aid, slid, sid FROM association WHERE aid IN (1, 2) ORDER BY alid, aid, slid, sid",
        vec![],
    )
    .await;
    let mut members: HashMap<i64, BTreeSet<(i64, i64, i64)>> = HashMap::new();
    for r in &rows {
        let alid: i64 = r.try_get("", "alid").unwrap();
        members.entry(alid).or_default().insert((
            r.try_get("", "aid").unwrap(),
            r.try_get("", "slid").unwrap(),
            r.try_get("", "sid").unwrap(),
        ));
    }
    let (alid, want) = members
        .into_iter()
        .max_by_key(|(a, m)| (m.len(), -a))
        .expect("an associate list");
    assert!(want.len() >= 3, "associations of several members: {want:?}");
    let v = deps_json(
        &st,
        &format!("alid={alid}&ids=1:2&classes=reduced,regridded"),
    )
    .await;
    let result = &v["result"];
    assert_eq!(result["list"], format!("AssociateList {alid}"));
    let got: BTreeSet<(i64, i64, i64)> = result["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert!(r["error"].is_null(), "{}", r["error"]);
            (
                r["aid"].as_i64().expect("aid set"),
                r["slid"].as_i64().unwrap(),
                r["sid"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got.len(),
        result["rows"].as_array().unwrap().len(),
        "no row twice"
    );
    assert_eq!(got, want);
}

#[tokio::test]
async fn the_html_request_redirects_to_a_job_page_with_one_row_per_source() {
    let db = common::ingested(common::sqlite().await).await;
    let st = super::web::state(&db);
    let star = bright_star(&db).await;
    let (status, headers, _) = common::submit_full(
        &st,
        &format!(
            "/deps?slid={}&ids=1:3&classes=raw&classes=bias&size=20",
            star.slid
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = headers["location"].to_str().unwrap().to_owned();
    let id = location
        .strip_prefix("/jobs/")
        .filter(|s| super::jobs::is_public_id(s))
        .unwrap_or_else(|| panic!("{location}"));
    let job = db.catalog.job_by_public_id(id).await.unwrap();
    assert_eq!(job.params["classes"], "raw,bias", "checkboxes are joined");
    let (status, _, body) = common::fetch(&st, &location).await;
    assert_eq!(status, StatusCode::OK);
    let doc = scraper::Html::parse_document(&String::from_utf8_lossy(&body));
    let sids: Vec<&str> = doc
        .select(&common::sel("#deps tr[data-sid]"))
        .map(|r| r.value().attr("data-sid").unwrap())
        .collect();
    assert_eq!(sids, vec!["1", "2", "3"]);
}

/// Issue 14: the pipeline GIF of an i-band source showed `flat_n1_r`, a flat
/// that reaches the lineage only through the cold-pixel map, while the
/// reduced frame was flat-fielded with the i flat. Every calibration frame
/// the reduced frame was made with (its own edges, read here with SQL) must
/// be the main cutout of its class (first in its cell, in the GIF); every
/// other frame of the class is marked indirect and names the calibration
/// product it came through, which must have an edge to it.
#[tokio::test]
async fn an_i_band_source_shows_the_flat_its_frame_was_made_with_and_others_as_indirect() {
    let db = common::ingested(common::sqlite().await).await;
    let st = super::web::state(&db);
    let conn = common::raw_db(&db).await;
    let lists = common::sql(
        &conn,
        "SELECT l.slid, f.object_id FROM source_list l JOIN frame f ON f.object_id = l.frame_id \
         WHERE f.frame_class = $1 AND f.filter = $2 ORDER BY l.slid",
        vec!["ReducedScienceFrame".into(), "i".into()],
    )
    .await;
    let slid: i64 = lists[0].try_get("", "slid").unwrap();
    let reduced: i64 = lists[0].try_get("", "object_id").unwrap();
    let edges = common::sql(
        &conn,
        "SELECT child_id, parent_id, role FROM dependency",
        vec![],
    )
    .await;
    let edges: Vec<(i64, i64, String)> = edges
        .iter()
        .map(|r| {
            (
                r.try_get("", "child_id").unwrap(),
                r.try_get("", "parent_id").unwrap(),
                r.try_get("", "role").unwrap(),
            )
        })
        .collect();
    // The reduced frame's own inputs, by role.
    let own: HashMap<i64, String> = edges
        .iter()
        .filter(|(c, _, _)| *c == reduced)
        .map(|(_, p, r)| (*p, r.clone()))
        .collect();
    let own_flat = *own
        .iter()
        .find(|(_, r)| r.as_str() == "flat")
        .expect("the reduced frame has a flat")
        .0;
    let sid: i64 = common::sql(
        &conn,
        "SELECT MIN(sid) AS sid FROM source WHERE slid = $1",
        vec![slid.into()],
    )
    .await[0]
        .try_get("", "sid")
        .unwrap();
    let v = deps_json(&st, &format!("slid={slid}&ids={sid}&size={SIDE}")).await;
    let result = &v["result"];
    let row = &result["rows"][0];
    assert!(row["error"].is_null(), "{}", row["error"]);
    let classes: Vec<&str> = result["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let flat_col = classes
        .iter()
        .position(|c| *c == FrameClass::MasterFlatFrame.name())
        .unwrap();
    let flats = row["cells"][flat_col].as_array().unwrap();
    let id = |c: &Json| c["frame_id"].as_i64().unwrap();
    assert_eq!(id(&flats[0]), own_flat, "main flat: {:#}", flats[0]);
    assert_eq!(flats[0]["indirect"], false, "{:#}", flats[0]);
    assert_eq!(flats[0]["via"].as_i64(), Some(reduced));
    assert_eq!(flats[0]["role"], "flat");
    assert!(
        flats.len() >= 2,
        "the sample's cold-pixel map brings in another flat: {flats:#?}"
    );
    let pipeline: Vec<i64> = row["pipeline_ids"]
        .as_array()
        .unwrap_or_else(|| panic!("no pipeline_ids in {row:#}"))
        .iter()
        .map(|i| i.as_i64().unwrap())
        .collect();
    assert_eq!(
        pipeline.len() as u64,
        row["pipeline_frames"].as_u64().unwrap()
    );
    assert!(pipeline.contains(&own_flat), "{pipeline:?}");

    // Every cell of every class: the reduced frame's own inputs are direct
    // (reached from it), the rest of the calibration frames indirect and
    // reached through a calibration product that was made from them.
    for (class, cell) in cutouts(result, 0) {
        let frame = id(&cell);
        let what = format!("{class} {}", cell["filename"]);
        let via = cell["via"].as_i64();
        if own.contains_key(&frame) {
            assert_eq!(cell["indirect"], false, "{what}: {cell:#}");
            assert_eq!(via, Some(reduced), "{what}");
            assert_eq!(cell["role"].as_str(), Some(own[&frame].as_str()), "{what}");
            continue;
        }
        if !class.parse::<FrameClass>().unwrap().is_calibration() {
            assert_eq!(cell["indirect"], false, "{what}: science frames are direct");
            continue;
        }
        assert_eq!(cell["indirect"], true, "{what}: {cell:#}");
        assert!(!pipeline.contains(&frame), "{what} is in the pipeline GIF");
        let via = via.unwrap_or_else(|| panic!("{what}: no via"));
        let through = db.catalog.frame(ObjectId(via)).await.unwrap();
        assert!(through.class.is_calibration(), "{what} via {through:?}");
        assert!(
            edges
                .iter()
                .any(|(c, p, r)| *c == via && *p == frame && cell["role"] == r.as_str()),
            "{what}: no edge {via} → {frame} with role {}",
            cell["role"]
        );
        assert_eq!(cell["via_class"], through.class.name(), "{what}");
        assert_eq!(cell["via_filename"], through.filename.as_str(), "{what}");
    }
    // In each cell the direct frames come first.
    for (c, cell) in row["cells"].as_array().unwrap().iter().enumerate() {
        let flags: Vec<bool> = cell
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["indirect"] == true)
            .collect();
        assert!(
            flags.windows(2).all(|w| w[0] <= w[1]),
            "{}: indirect before direct: {flags:?}",
            classes[c]
        );
    }
}

/// A request through the router with a `Host` header: status, headers and
/// the body as JSON.
async fn with_host(
    st: &AppState,
    method: axum::http::Method,
    uri: &str,
    host: &str,
) -> (StatusCode, axum::http::HeaderMap, Json) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let res = wisecut::web::app(st.clone())
        .oneshot(
            axum::http::Request::builder()
                .method(method)
                .uri(uri)
                .header("host", host)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{uri}: {e}: {}", String::from_utf8_lossy(&body)));
    (status, headers, json)
}

/// Every string of `v` under a key that names a link, and every string
/// anywhere that looks like a site path (a link left relative).
fn links(v: &Json, key: &str, out: &mut Vec<String>, relative: &mut Vec<String>) {
    const LINKS: [&str; 8] = [
        "page",
        "poll",
        "zip",
        "manifest",
        "fits",
        "png",
        "pipeline_gif",
        "epochs_gif",
    ];
    match v {
        Json::String(s) => {
            if LINKS.contains(&key) {
                out.push(s.clone());
            }
            if s.starts_with("/jobs/") || s.starts_with("/api/") {
                relative.push(format!("{key}: {s}"));
            }
        }
        Json::Array(a) => a.iter().for_each(|x| links(x, key, out, relative)),
        Json::Object(m) => m.iter().for_each(|(k, x)| links(x, k, out, relative)),
        _ => {}
    }
}

/// Issue 14: `/api/deps` answered site paths (`/jobs/3/files/…`), which a
/// script elsewhere cannot fetch without knowing the host. Every link of
/// its answer, of `/api/jobs/{id}` and the `Location` of a queued request
/// is an absolute URL: under `--public-url` when configured, else under the
/// request's `Host` (a `Host` that is not a host name falls back to the
/// configured URL); and each link fetches what it names.
#[tokio::test]
async fn the_deps_api_answers_absolute_urls_from_the_host_or_the_public_url() {
    use axum::http::Method;
    let db = common::ingested(common::sqlite().await).await;
    let star = bright_star(&db).await;
    let query = format!(
        "/api/deps?slid={}&ids={}&classes=raw,reduced,coadd&size={SIDE}",
        star.slid, star.sid
    );
    let st = super::web::state(&db);
    let (status, _, v) = with_host(&st, Method::POST, &query, "cutouts.test:8443").await;
    assert_eq!(status, StatusCode::OK, "{v:#}");
    let id = v["id"].as_str().unwrap().to_owned();
    let (mut urls, mut relative) = (Vec::new(), Vec::new());
    links(&v, "", &mut urls, &mut relative);
    assert!(relative.is_empty(), "relative links: {relative:?}");
    assert!(urls.len() >= 6, "{urls:?}");
    let base = "http://cutouts.test:8443/";
    for url in &urls {
        assert!(url.starts_with(base), "{url} is not under {base}");
        let uri: axum::http::Uri = url.parse().unwrap();
        let path = uri.path_and_query().unwrap().as_str();
        let (status, _, _) = common::fetch(&st, path).await;
        assert_eq!(status, StatusCode::OK, "{url}");
    }
    assert_eq!(v["poll"], format!("{base}api/jobs/{id}"));

    // The job's JSON takes the host of its own request.
    let (status, _, again) =
        with_host(&st, Method::GET, &format!("/api/jobs/{id}"), "mirror.test").await;
    assert_eq!(status, StatusCode::OK);
    let (mut urls, mut relative) = (Vec::new(), Vec::new());
    links(&again, "", &mut urls, &mut relative);
    assert!(relative.is_empty(), "relative links: {relative:?}");
    assert!(
        urls.len() >= 6 && urls.iter().all(|u| u.starts_with("http://mirror.test/")),
        "{urls:?}"
    );

    // A Host that is not a host name is not echoed.
    let (_, _, odd) = with_host(&st, Method::GET, &format!("/api/jobs/{id}"), "x.test/<b>").await;
    assert_eq!(odd["page"], format!("{}/jobs/{id}", st.config.public_url));

    // With --public-url, that URL whatever the Host; a queued request's
    // Location too.
    // A request of its own: this state has another jobs directory (another
    // node without a shared store), which rightly answers 503 for a job the
    // first state made.
    let query = query.replace(&format!("size={SIDE}"), &format!("size={}", SIDE + 2));
    let st = common::state_with(&db, |c| {
        c.public_url = "https://survey.example.org/wisecut".into();
        c.public_url_fixed = true;
        c.inline_sources = 0;
    });
    let (status, headers, v) = with_host(&st, Method::POST, &query, "cutouts.test:8443").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v:#}");
    let id = v["id"].as_str().unwrap().to_owned();
    let want = format!("https://survey.example.org/wisecut/api/jobs/{id}");
    assert_eq!(headers["location"].to_str().unwrap(), want);
    assert_eq!(v["poll"], want);
    assert_eq!(
        v["page"],
        format!("https://survey.example.org/wisecut/jobs/{id}")
    );
}

/// Grey levels of a PNG result file.
fn png_levels(bytes: &[u8]) -> Vec<u8> {
    image::load_from_memory(bytes)
        .unwrap()
        .to_luma8()
        .into_raw()
}

#[tokio::test]
async fn pixel_maps_and_flat_corrections_are_drawn_not_left_black() {
    // zscale of a hot- or cold-pixel map (ones and a few zeros) or of a
    // constant illumination correction collapses to one value, and every
    // such thumbnail of the result table was a black square.
    let (_db, st, v) = bright_star_cutouts("hot,cold,illumination").await;
    let all = cutouts(&v["result"], 0);
    assert!(all.len() >= 3, "{} cutouts", all.len());
    for (class, c) in &all {
        let levels = png_levels(&download(&st, c["png"].as_str().unwrap()).await);
        let black = levels.iter().filter(|l| **l == 0).count();
        assert!(
            black < levels.len() / 2,
            "{class} {}: {black} of {} pixels black",
            c["filename"],
            levels.len()
        );
    }
}
