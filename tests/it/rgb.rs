//! The RGB maker: the form offers the targets, classes and filters that
//! exist, a target with several frames per filter asks which (issue 14,
//! item 10), captions say class, filters, method and parameters; and the
//! peer check against astropy: `color::lupton` reproduces
//! `astropy.visualization.make_lupton_rgb`, and `color::linear` reproduces
//! `make_rgb` with percentile intervals, within 1 DN per channel.
//!
//! The Python side lives in `tests/peer/check_rgb.py` and runs in the
//! virtual environment `.ci/run` installs; `WISECUT_PYTHON` names its
//! interpreter. The inputs are three synthetic 97x61 bands (sky noise with
//! negative values, a galaxy, a blue star, a star saturated far above the
//! mappings' full scale, a negative hole), written as raw float32 with the
//! PNGs wisecut makes from them.

use super::common::{self, sel};
use axum::http::StatusCode;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use wisecut::imaging::color::{self, LinearParams, LuptonParams};
use wisecut::imaging::raster::Raster;
use wisecut::model::{Frame, FrameClass};

fn html(body: &[u8]) -> scraper::Html {
    scraper::Html::parse_document(&String::from_utf8_lossy(body))
}

fn values(doc: &scraper::Html, selector: &str) -> Vec<String> {
    doc.select(&sel(selector))
        .map(|e| e.value().attr("value").unwrap_or("").to_owned())
        .collect()
}

/// Every valid frame on the sky with a grid target (what the RGB maker can
/// combine), read from the catalogue directly.
async fn sky_frames(db: &common::TestDb) -> Vec<Frame> {
    let mut out = Vec::new();
    for class in FrameClass::ALL {
        out.extend(
            db.catalog
                .frames_of_class(class)
                .await
                .unwrap()
                .into_iter()
                .filter(|f| f.wcs.is_some() && f.object.is_some() && f.target.is_valid > 0),
        );
    }
    out
}

#[tokio::test]
async fn the_rgb_form_offers_the_targets_classes_and_filters_that_exist() {
    for db in common::all_backends().await {
        let db = common::ingested(db).await;
        let st = common::state_with(&db, |_| {});
        let frames = sky_frames(&db).await;
        let (s, _, body) = common::fetch(&st, "/rgb").await;
        assert_eq!(s, StatusCode::OK);
        let doc = html(&body);
        let mut targets = values(&doc, "select#target option:not([value=''])");
        targets.sort();
        let mut expected: Vec<String> = frames.iter().filter_map(|f| f.object.clone()).collect();
        expected.sort();
        expected.dedup();
        assert!(!expected.is_empty());
        assert_eq!(targets, expected);
        let classes: Vec<String> = doc
            .select(&sel("select#class option"))
            .map(|o| o.text().collect())
            .collect();
        let mut expected: Vec<String> = frames.iter().map(|f| f.class.name().to_owned()).collect();
        expected.dedup();
        expected.sort();
        let mut sorted = classes.clone();
        sorted.sort();
        assert_eq!(sorted, expected);
        // Coadds (one per filter) are the default.
        let selected: Vec<String> = doc
            .select(&sel("select#class option[selected]"))
            .map(|o| o.text().collect())
            .collect();
        assert_eq!(selected, ["CoaddedRegriddedFrame"]);
        // The coadds' filters make a red-to-blue triple.
        let coadd_filters: Vec<&str> = frames
            .iter()
            .filter(|f| f.class == FrameClass::CoaddedRegriddedFrame)
            .filter_map(|f| f.filter.as_deref())
            .collect();
        for f in ["i", "r", "g"] {
            assert!(coadd_filters.contains(&f), "{coadd_filters:?}");
        }
        assert!(values(&doc, "datalist#filter-triples option").contains(&"i,r,g".to_owned()));
        // The overview says how many frames each class has per filter.
        let rows = doc.select(&sel("table#offer tbody tr")).count();
        assert!(rows >= 2, "{rows} rows");
    }
}

// Issue 14, item 10: `class=RegriddedFrame` with a target picked the newest
// of 16 (24 on the small survey) frames per filter without saying so.
#[tokio::test]
async fn a_target_with_several_frames_per_filter_asks_which_and_captions_say_what() {
    let db = common::ingested(common::sqlite().await).await;
    let st = common::state_with(&db, |_| {});
    let frames = sky_frames(&db).await;
    let target = frames[0].object.clone().unwrap();
    let regridded = |filter: &str| -> Vec<String> {
        frames
            .iter()
            .filter(|f| f.class == FrameClass::RegriddedFrame)
            .filter(|f| f.object.as_deref() == Some(&target) && f.filter.as_deref() == Some(filter))
            .map(|f| f.target.object_id.to_string())
            .collect()
    };
    assert!(
        regridded("i").len() > 1,
        "the sample has several per filter"
    );
    let query = format!("target={target}&filters=i,r,g&class=RegriddedFrame&method=stiff&gamma=2");

    // The script endpoint: a 400 naming the class and every candidate.
    let (s, _, body) = common::submit(&st, &format!("/api/rgb?{query}")).await;
    let msg = String::from_utf8_lossy(&body);
    assert_eq!(s, StatusCode::BAD_REQUEST, "{msg}");
    assert!(msg.starts_with("class"), "{msg}");
    for id in regridded("i") {
        assert!(msg.contains(&id), "{id} missing: {msg}");
    }

    // The form: a choice step with one list per band, the other settings
    // carried over, and no job started.
    let (s, _, body) = common::submit(&st, &format!("/rgb?{query}")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let doc = html(&body);
    for (band, filter) in [("red", "i"), ("green", "r"), ("blue", "g")] {
        let offered = values(&doc, &format!("form#rgb-choice select[name={band}] option"));
        assert_eq!(offered, regridded(filter), "{band}");
    }
    let hidden: Vec<(String, String)> = doc
        .select(&sel("form#rgb-choice input[type=hidden]"))
        .map(|e| {
            let v = e.value();
            (
                v.attr("name").unwrap().to_owned(),
                v.attr("value").unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        hidden.contains(&("method".into(), "stiff".into())),
        "{hidden:?}"
    );
    assert!(hidden.contains(&("gamma".into(), "2".into())), "{hidden:?}");
    assert!(!hidden.iter().any(|(k, _)| k == "target" || k == "class"));
    let (n, _) = db.catalog.jobs(None, None, 0, 10).await.unwrap();
    assert_eq!(n, 0, "nothing may start before the choice");

    // Submitting the choice makes the picture of exactly those frames.
    // The second of each list: the same chip in every filter (in object-id
    // order), so the three overlap.
    let (red, green, blue) = (&regridded("i")[1], &regridded("r")[1], &regridded("g")[1]);
    // As one browser: the gallery and the jobs list show its own jobs.
    let cookie = wisecut::catalog::access::new_secret();
    let as_browser = |method: axum::http::Method, uri: String| {
        let (st, cookie) = (st.clone(), cookie.clone());
        async move { super::access_jobs::browser_request(&st, &cookie, method, &uri, None).await }
    };
    let (s, h, body) = as_browser(
        axum::http::Method::POST,
        format!("/rgb?red={red}&green={green}&blue={blue}&method=stiff&gamma=2"),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::SEE_OTHER,
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert!(h["location"].to_str().unwrap().starts_with("/jobs/"));
    // And a coadd picture by target.
    let (s, _, body) = as_browser(
        axum::http::Method::POST,
        format!("/rgb?target={target}&filters=irg"),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::SEE_OTHER,
        "{}",
        String::from_utf8_lossy(&body)
    );

    // Captions in the gallery and the jobs list: class, filters, method
    // and its parameters.
    let lupton = color::LuptonParams::default();
    let expected = [
        vec![
            "RegriddedFrame i,r,g".to_owned(),
            "stiff".into(),
            "gamma 2".into(),
            format!("{red}/{green}/{blue}"),
        ],
        vec![
            "CoaddedRegriddedFrame i,r,g".to_owned(),
            format!("lupton Q {}, stretch {}", lupton.q, lupton.stretch),
            target.clone(),
        ],
    ];
    let (_, _, body) = as_browser(axum::http::Method::GET, "/rgb/gallery".into()).await;
    let gallery: Vec<String> = html(&body)
        .select(&sel("#gallery figcaption"))
        .map(|e| e.text().collect())
        .collect();
    let (_, _, body) = as_browser(axum::http::Method::GET, "/jobs?kind=rgb".into()).await;
    let jobs: Vec<String> = html(&body)
        .select(&sel("table#jobs tbody tr td:nth-child(3)"))
        .map(|e| e.text().collect())
        .collect();
    for (place, captions) in [("gallery", &gallery), ("jobs", &jobs)] {
        assert_eq!(captions.len(), 2, "{place}: {captions:?}");
        for parts in &expected {
            assert!(
                captions
                    .iter()
                    .any(|c| parts.iter().all(|p| c.contains(p.as_str()))),
                "{place}: no caption with {parts:?} in {captions:?}"
            );
        }
    }
}

const W: usize = 97;
const H: usize = 61;

/// A Gaussian deviate (Box-Muller), so the test needs no extra crate.
fn gauss(rng: &mut ChaCha8Rng) -> f64 {
    let u: f64 = 1.0 - rng.random::<f64>(); // (0, 1], safe for ln
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// Sky `level` with noise `sigma`, plus Gaussian blobs `(x, y, amplitude,
/// sigma)`, clipped at `saturation` like a detector.
fn band(
    rng: &mut ChaCha8Rng,
    level: f64,
    sigma: f64,
    blobs: &[(f64, f64, f64, f64)],
    saturation: f64,
) -> Raster<f32> {
    let mut img = Raster::filled(W, H, 0.0f32);
    for iy in 0..H {
        for ix in 0..W {
            let mut v = level + sigma * gauss(rng);
            for &(x, y, amp, s) in blobs {
                let r2 = (ix as f64 - x).powi(2) + (iy as f64 - y).powi(2);
                v += amp * (-r2 / (2.0 * s * s)).exp();
            }
            img.set(ix, iy, v.min(saturation) as f32);
        }
    }
    img
}

fn raw_f32(img: &Raster<f32>) -> Vec<u8> {
    img.data.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn colour_composites_agree_with_astropy() {
    let Some(py) = common::peer_python("astropy colour peer check") else {
        return;
    };
    let mut rng = ChaCha8Rng::seed_from_u64(20_240_611);
    let sat = 30_000.0;
    // Shared positions: galaxy, blue star, saturated star, faint red blob,
    // negative hole (over-subtracted sky).
    let r = band(
        &mut rng,
        0.2,
        1.0,
        &[
            (30.0, 20.0, 40.0, 6.0),
            (70.0, 45.0, 8.0, 1.5),
            (50.0, 30.0, 1e5, 2.0),
            (80.0, 10.0, 3.0, 4.0),
            (15.0, 50.0, -20.0, 2.0),
        ],
        sat,
    );
    let g = band(
        &mut rng,
        0.1,
        0.8,
        &[
            (30.0, 20.0, 25.0, 6.0),
            (70.0, 45.0, 20.0, 1.5),
            (50.0, 30.0, 1e5, 2.0),
            (80.0, 10.0, 1.0, 4.0),
            (15.0, 50.0, -15.0, 2.0),
        ],
        sat,
    );
    let b = band(
        &mut rng,
        0.0,
        1.2,
        &[
            (30.0, 20.0, 15.0, 6.0),
            (70.0, 45.0, 60.0, 1.5),
            (50.0, 30.0, 1e5, 2.0),
            (80.0, 10.0, 0.5, 4.0),
            (15.0, 50.0, -10.0, 2.0),
        ],
        sat,
    );
    assert!(
        r.data.iter().any(|&v| v < 0.0),
        "sky noise must go negative"
    );
    assert!(g.data.contains(&(sat as f32)), "a star must saturate");

    let dir = tempfile::tempdir().unwrap();
    for (name, img) in [("r", &r), ("g", &g), ("b", &b)] {
        std::fs::write(dir.path().join(format!("{name}.f32")), raw_f32(img)).unwrap();
    }

    // astropy's defaults; offsets per band; Q = 0 (astropy uses 0.1); a very
    // large stretch (nearly linear, dark); a tiny stretch with a high Q
    // (mostly saturated); a Q above astropy's 1e10 cap.
    let lupton_cases = [
        ("defaults", [0.0, 0.0, 0.0], 5.0, 8.0),
        ("offsets", [-1.0, 0.0, 2.0], 20.0, 3.0),
        ("q0", [0.0, 0.0, 0.0], 5.0, 0.0),
        ("large_stretch", [0.0, 0.0, 0.0], 5000.0, 8.0),
        ("small_stretch", [0.5, 0.5, 0.5], 0.5, 20.0),
        ("huge_q", [0.0, 0.0, 0.0], 10.0, 1e12),
    ];
    let mut cases = Vec::new();
    for (name, minimum, stretch, q) in lupton_cases {
        let p = LuptonParams {
            minimum,
            stretch,
            q,
        };
        let png = format!("lupton_{name}.png");
        let pic = color::lupton(&r, &g, &b, &p).unwrap();
        std::fs::write(dir.path().join(&png), pic.to_png()).unwrap();
        // f32 -> f64 is exact, so Python sees the very same parameters.
        cases.push(json!({
            "name": name,
            "minimum": minimum.map(f64::from),
            "stretch": f64::from(stretch),
            "Q": f64::from(q),
            "png": png,
        }));
    }

    let linear_cases = [
        ("percentile_99.5", [None; 3], [None; 3], 99.5),
        (
            "mixed_bounds",
            [Some(-1.0), None, Some(0.5)],
            [None, Some(50.0), None],
            90.0,
        ),
    ];
    let mut linear = Vec::new();
    for (name, min, max, percentile) in linear_cases {
        let p = LinearParams {
            min,
            max,
            percentile,
        };
        let png = format!("linear_{name}.png");
        let pic = color::linear(&r, &g, &b, &p).unwrap();
        std::fs::write(dir.path().join(&png), pic.to_png()).unwrap();
        let opt = |v: [Option<f32>; 3]| v.map(|v| v.map(f64::from));
        linear.push(json!({
            "name": name,
            "min": opt(min),
            "max": opt(max),
            "percentile": f64::from(percentile),
            "png": png,
        }));
    }

    let spec = json!({"width": W, "height": H, "cases": cases, "linear": linear});
    std::fs::write(
        dir.path().join("shape.json"),
        serde_json::to_string_pretty(&spec).unwrap(),
    )
    .unwrap();

    let stdout = common::run_peer(&py, "check_rgb.py", &[dir.path().as_os_str()]);
    assert!(stdout.contains("worst difference"), "{stdout}");
    assert!(
        stdout.contains(&format!("checked {} Lupton images", lupton_cases.len())),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("checked {} linear images", linear_cases.len())),
        "{stdout}"
    );
}
