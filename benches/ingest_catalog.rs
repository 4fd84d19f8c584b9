//! Catalog ingest speed: a 1,000,000-row SExtractor FITS_LDAC catalog
//! through `Catalog::ingest_manifest`, as `wisecut ingest` runs it.
//!
//! ```text
//! cargo bench --bench ingest_catalog
//! WISECUT_BENCH_PG=postgres://postgres@127.0.0.1:55433 cargo bench --bench ingest_catalog
//! ```
//!
//! Writes, in a temporary directory, a 1024² frame with a TAN WCS and a
//! catalog laid out as `source-extractor -CATALOG_TYPE FITS_LDAC` writes it
//! (`LDAC_IMHEAD` with the frame's header, `LDAC_OBJECTS` with the usual
//! SExtractor columns and types), then ingests frame and catalog into a fresh
//! SQLite database and, when `WISECUT_BENCH_PG` names a PostgreSQL server,
//! into a freshly created database there (dropped afterwards). Prints the
//! time to read the catalog alone and the whole ingest (read + one
//! transaction of inserts + commit), with rows per second. Targets
//! (issue 15): ≤ 20 s on SQLite, ≤ 10 s on PostgreSQL.
//! `WISECUT_BENCH_ROWS` changes the size, `WISECUT_BENCH_RUNS` the number of
//! runs per backend (default 1; each run gets a fresh database).

use std::path::Path;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sea_orm::{ConnectionTrait, Database};
use wisecut::catalog::Catalog;
use wisecut::catalog::ingest::tables::{self, ColumnMap};
use wisecut::catalog::ingest::{FrameEntry, Manifest, SourceListEntry};
use wisecut::config::Config;
use wisecut::imaging::fits::{self, Card, Column, ColumnData, Compression, PixelData};
use wisecut::imaging::raster::Raster;

const SIZE: usize = 1024;

fn frame_cards() -> Vec<Card> {
    vec![
        Card::new("OBJECT", "BENCH", ""),
        Card::new("FILTER", "r", ""),
        Card::new("EXPTIME", 60.0, "s"),
        Card::new("DATE-OBS", "2026-03-14T02:13:07", ""),
        Card::new("CTYPE1", "RA---TAN", ""),
        Card::new("CTYPE2", "DEC--TAN", ""),
        Card::new("CRVAL1", 150.0, ""),
        Card::new("CRVAL2", 2.0, ""),
        Card::new("CRPIX1", 512.5, ""),
        Card::new("CRPIX2", 512.5, ""),
        Card::new("CD1_1", -1.0e-4, ""),
        Card::new("CD1_2", 0.0, ""),
        Card::new("CD2_1", 0.0, ""),
        Card::new("CD2_2", 1.0e-4, ""),
    ]
}

/// The frame and its 1M-row LDAC catalog; returns the manifest.
fn write_inputs(dir: &Path, rows: usize) -> Manifest {
    let pixels = Raster::from_vec(SIZE, SIZE, vec![100i32; SIZE * SIZE]);
    fits::write_image(
        &dir.join("frame.fits"),
        PixelData::I32(&pixels),
        &frame_cards(),
        &Compression::None,
    )
    .unwrap();
    // LDAC_IMHEAD: the frame's header records, as SExtractor copies them.
    let header = fits::encode_header(32, SIZE, SIZE, None, &frame_cards(), 0).unwrap();
    let cell = vec![String::from_utf8(header).unwrap()];
    let cat = dir.join("frame.ldac");
    fits::write_table(
        &cat,
        tables::LDAC_IMHEAD,
        &[Column::new("Field Header Card", "", ColumnData::Str(&cell))],
        &[],
    )
    .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(15);
    let number: Vec<i32> = (1..=rows as i32).collect();
    let mut ra = Vec::with_capacity(rows);
    let mut dec = Vec::with_capacity(rows);
    let mut x = Vec::with_capacity(rows);
    let mut y = Vec::with_capacity(rows);
    for _ in 0..rows {
        let (px, py): (f32, f32) = (
            rng.random_range(1.0..SIZE as f32),
            rng.random_range(1.0..SIZE as f32),
        );
        x.push(px);
        y.push(py);
        // Near enough to the TAN projection for a benchmark.
        ra.push(150.0 - (f64::from(px) - 512.5) * 1e-4 / 2f64.to_radians().cos());
        dec.push(2.0 + (f64::from(py) - 512.5) * 1e-4);
    }
    let f32s = |rng: &mut ChaCha8Rng, lo: f32, hi: f32| -> Vec<f32> {
        (0..rows).map(|_| rng.random_range(lo..hi)).collect()
    };
    let (a, b, theta) = (
        f32s(&mut rng, 1.0, 5.0),
        f32s(&mut rng, 0.5, 1.0),
        f32s(&mut rng, -90.0, 90.0),
    );
    let mut mag = f32s(&mut rng, 14.0, 26.0);
    // SExtractor's 99 for sources without a measurable flux.
    for m in mag.iter_mut().step_by(50) {
        *m = 99.0;
    }
    let magerr = f32s(&mut rng, 0.001, 0.5);
    let flux = f32s(&mut rng, 10.0, 1e6);
    let fwhm = f32s(&mut rng, 2.0, 6.0);
    let class_star = f32s(&mut rng, 0.0, 1.0);
    let flags: Vec<i32> = (0..rows).map(|_| rng.random_range(0..4)).collect();
    fits::write_table(
        &cat,
        tables::LDAC_OBJECTS,
        &[
            Column::new("NUMBER", "", ColumnData::I32(&number)),
            Column::new("ALPHA_J2000", "deg", ColumnData::F64(&ra)),
            Column::new("DELTA_J2000", "deg", ColumnData::F64(&dec)),
            Column::new("X_IMAGE", "pixel", ColumnData::F32(&x)),
            Column::new("Y_IMAGE", "pixel", ColumnData::F32(&y)),
            Column::new("A_IMAGE", "pixel", ColumnData::F32(&a)),
            Column::new("B_IMAGE", "pixel", ColumnData::F32(&b)),
            Column::new("THETA_IMAGE", "deg", ColumnData::F32(&theta)),
            Column::new("MAG_AUTO", "mag", ColumnData::F32(&mag)),
            Column::new("MAGERR_AUTO", "mag", ColumnData::F32(&magerr)),
            Column::new("FLUX_AUTO", "count", ColumnData::F32(&flux)),
            Column::new("FWHM_IMAGE", "pixel", ColumnData::F32(&fwhm)),
            Column::new("CLASS_STAR", "", ColumnData::F32(&class_star)),
            Column::new("FLAGS", "", ColumnData::I32(&flags)),
        ],
        &[],
    )
    .unwrap();
    Manifest {
        frames: vec![FrameEntry::new(
            "frame",
            "ReducedScienceFrame",
            "frame.fits",
            vec![],
        )],
        source_lists: vec![SourceListEntry {
            key: "cat".into(),
            name: "bench catalog".into(),
            frame: "frame".into(),
            path: "frame.ldac".into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

async fn run(backend: &str, url: &str, m: &Manifest, dir: &Path, rows: usize) {
    let catalog = Catalog::connect(url).await.unwrap();
    let t = Instant::now();
    let report = catalog.ingest_manifest(m, dir, dir).await.unwrap();
    let s = t.elapsed().as_secs_f64();
    assert_eq!(report.sources, rows);
    println!(
        "{backend:>8}: ingest of {rows} sources (frame + LDAC, one transaction): {s:.2} s, {:.0} rows/s",
        rows as f64 / s
    );
    catalog.close().await.unwrap();
}

#[tokio::main]
async fn main() {
    let rows: usize = std::env::var("WISECUT_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let runs: usize = std::env::var("WISECUT_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let t = Instant::now();
    let m = write_inputs(dir, rows);
    println!(
        "wrote a {rows}-row FITS_LDAC catalog ({} MB) in {:.2} s",
        std::fs::metadata(dir.join("frame.ldac")).unwrap().len() / 1_000_000,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let table =
        tables::read_source_table(&dir.join("frame.ldac"), None, &ColumnMap::default()).unwrap();
    println!(
        "    read: {} rows in {:.2} s (columns whole, rows assembled, HEALPix indexed)",
        table.rows.len(),
        t.elapsed().as_secs_f64()
    );
    drop(table);

    for i in 0..runs {
        let db = dir.join(format!("bench{i}.db"));
        run("sqlite", &Config::sqlite_url(&db), &m, dir, rows).await;
    }
    if let Ok(base) = std::env::var("WISECUT_BENCH_PG") {
        let admin = Database::connect(format!("{base}/postgres")).await.unwrap();
        for i in 0..runs {
            let name = format!("wisecut_bench_ingest_{}_{i}", std::process::id());
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            run("postgres", &format!("{base}/{name}"), &m, dir, rows).await;
            admin
                .execute_unprepared(&format!("DROP DATABASE {name}"))
                .await
                .unwrap();
        }
    } else {
        println!("postgres: not run (set WISECUT_BENCH_PG=postgres://user@host:port)");
    }
}
