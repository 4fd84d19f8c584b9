//! dbviewer speed, measured through the router (server time, no network):
//!
//! ```text
//! cargo bench --bench dbviewer
//! ```
//!
//! 1. A page of a 1,000,000-row source table, filtered and sorted on its
//!    indexed key (`sid between …`, `sort=-sid`), count included.
//! 2. The object view of a coadd with its full upward (and downward) tree.
//! 3. A 4096×4096 frame rendered binned to 1024×1024 (PNG, zscale): cold
//!    (a new rendering each time) and from the cache.
//!
//! Builds everything it needs in a temporary directory (the tiny survey, one
//! million extra sources, a 4k frame) on SQLite, and prints medians.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use sea_orm::{ConnectionTrait, Database, Statement};
use tower::ServiceExt;
use wisecut::catalog::Catalog;
use wisecut::config::Config;
use wisecut::imaging::fits::{self, Card, Compression, PixelData};
use wisecut::imaging::raster::Raster;
use wisecut::model::FrameClass;
use wisecut::sample::{self, SampleSpec};
use wisecut::web::{AppState, app};

async fn timed(st: &AppState, uri: &str) -> f64 {
    let t = Instant::now();
    let res = app(st.clone())
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(
        status,
        StatusCode::OK,
        "{uri}: {}",
        String::from_utf8_lossy(&body)
    );
    ms
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    eprintln!("dbviewer bench: tiny survey…");
    sample::generate(&data, &SampleSpec::tiny(7), &|_, _, _| {}).unwrap();

    // A 4096² float frame with a TAN WCS, added to the survey's manifest.
    let n = 4096;
    let pixels: Vec<f32> = (0..n * n)
        .map(|i| {
            let (x, y) = ((i % n) as f32, (i / n) as f32);
            100.0 + 10.0 * ((x * 0.37).sin() * (y * 0.11).cos()) + (i % 97) as f32 * 0.1
        })
        .collect();
    let img = Raster::from_vec(n, n, pixels);
    let cards = vec![
        Card::new("CTYPE1", "RA---TAN", ""),
        Card::new("CTYPE2", "DEC--TAN", ""),
        Card::new("CRVAL1", 150.1, ""),
        Card::new("CRVAL2", 2.2, ""),
        Card::new("CRPIX1", 2048.5, ""),
        Card::new("CRPIX2", 2048.5, ""),
        Card::new("CD1_1", -0.0001, ""),
        Card::new("CD2_2", 0.0001, ""),
        Card::new("FILTER", "r", ""),
        Card::new("DATE-OBS", "2026-03-10T01:00:00", ""),
    ];
    fits::write_image(
        &data.join("big4k.fits"),
        PixelData::F32(&img),
        &cards,
        &Compression::None,
    )
    .unwrap();
    let manifest_path = data.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    manifest["frames"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "key": "big4k", "class": "CoaddedRegriddedFrame", "path": "big4k.fits", "deps": []
        }));
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();

    let url = Config::sqlite_url(&dir.path().join("bench.db"));
    let catalog = Catalog::connect(&url).await.unwrap();
    catalog.ingest(&manifest_path, &data).await.unwrap();

    // One million sources in one list (the biggest one of the survey).
    eprintln!("dbviewer bench: 1,000,000 sources…");
    let db = Database::connect(&url).await.unwrap();
    let slid: i64 = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT slid FROM source_list ORDER BY n_sources DESC LIMIT 1",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "slid")
        .unwrap();
    let t = Instant::now();
    db.execute_unprepared("BEGIN").await.unwrap();
    let total = 1_000_000i64;
    let batch = 1000;
    for start in (0..total).step_by(batch) {
        let mut sql = String::from(
            "INSERT INTO source (slid, sid, ra, dec, x, y, a, b, theta, mag_auto, magerr_auto, flux_auto, fwhm, class_star, flags, hpx) VALUES ",
        );
        for i in start..start + batch as i64 {
            let sid = 10_000_000 + i;
            let f = i as f64;
            if i > start {
                sql.push(',');
            }
            sql.push_str(&format!(
                "({slid},{sid},{},{},{},{},2.0,1.5,30.0,{},0.05,1000.0,3.0,0.9,0,{})",
                150.0 + (f * 1e-6) % 0.5,
                2.0 + (f * 7e-7) % 0.5,
                (f * 0.37) % 4096.0,
                (f * 0.11) % 4096.0,
                18.0 + (f % 1000.0) / 250.0,
                i
            ));
        }
        db.execute_unprepared(&sql).await.unwrap();
    }
    db.execute_unprepared("COMMIT").await.unwrap();
    db.execute_unprepared("ANALYZE").await.unwrap();
    eprintln!("  inserted in {:.1} s", t.elapsed().as_secs_f64());

    let config = Config::new(
        url.clone(),
        data.clone(),
        dir.path().join("cache"),
        "127.0.0.1:0".parse().unwrap(),
    );
    let st = AppState::new(catalog.clone(), Arc::new(config)).unwrap();

    // 1. Table page of the million-row list.
    let mut table_ms = Vec::new();
    for k in 0..30 {
        let lo = 10_100_000 + k * 20_000;
        let q = serde_urlencoded::to_string([("q", format!("sid between {lo},{}", lo + 100_000))])
            .unwrap();
        table_ms.push(
            timed(
                &st,
                &format!("/table/SourceList/{slid}?{q}&sort=-sid&size=50"),
            )
            .await,
        );
    }
    // The same without any condition: count over all rows.
    let mut table_all_ms = Vec::new();
    for _ in 0..10 {
        table_all_ms.push(
            timed(
                &st,
                &format!("/table/SourceList/{slid}?sort=sid&size=50&page=500"),
            )
            .await,
        );
    }

    // 2. Object view of a coadd (full trees).
    let coadd = catalog
        .frames_of_class(FrameClass::CoaddedRegriddedFrame)
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.filename != "big4k.fits")
        .unwrap();
    let up = catalog
        .lineage(
            coadd.target.object_id,
            wisecut::catalog::lineage::Direction::Up,
            256,
        )
        .await
        .unwrap();
    let mut object_ms = Vec::new();
    for _ in 0..30 {
        object_ms.push(timed(&st, &format!("/object/{}", coadd.target.object_id)).await);
    }

    // 3. The 4k frame binned to 1024².
    let big = catalog
        .frames_of_class(FrameClass::CoaddedRegriddedFrame)
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.filename == "big4k.fits")
        .unwrap();
    let base = format!(
        "/render/{}?x=2048.5&y=2048.5&width=4096&height=4096&output_size=1024x1024&format=png",
        big.target.object_id
    );
    let mut cold = Vec::new();
    for stretch in ["linear", "sqrt", "log", "asinh", "histeq"] {
        cold.push(timed(&st, &format!("{base}&interval=zscale&stretch={stretch}")).await);
    }
    let mut hit = Vec::new();
    for _ in 0..30 {
        hit.push(timed(&st, &format!("{base}&interval=zscale&stretch=asinh")).await);
    }

    let out = serde_json::json!({
        "table_1m_filtered_sorted_page_ms": median(table_ms),
        "table_1m_unfiltered_page_500_ms": median(table_all_ms),
        "object_view_coadd_ms": median(object_ms),
        "coadd_upward_tree_objects": up.nodes.len(),
        "render_4k_binned_cold_ms": median(cold),
        "render_4k_binned_cache_hit_ms": median(hit),
    });
    println!("{out}");
}
