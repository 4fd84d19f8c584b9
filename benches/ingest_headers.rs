//! Benchmark: 1,000 frame headers ingested with no manifest — `wisecut
//! ingest DIR` from directory walk to commit, on SQLite (and PostgreSQL when
//! `WISECUT_BENCH_PG` names a server).
//!
//! The directory holds a night as a ccdproc user leaves it: 200 raw biases
//! (`IMAGETYP = 'zero'`), 4 master biases combining 50 each (`IMCMBnnn`),
//! 398 raw science exposures and 398 reduced frames (`ZEROCOR`, same
//! `DATE-OBS` as their raw exposure), each a small 64 × 64 image with a
//! TAN WCS, so the rules, not the pixels, are what is timed.
//!
//! Run with `cargo bench --bench ingest_headers`.

use std::path::Path;
use std::time::Instant;
use wisecut::catalog::Catalog;
use wisecut::catalog::ingest::batch::PathIngest;
use wisecut::imaging::fits::{self, Card, Compression, PixelData};
use wisecut::imaging::raster::Raster;

fn write(dir: &Path, name: &str, cards: Vec<Card>, seed: usize) {
    let mut img = Raster::<f32>::filled(64, 64, 0.0);
    for (i, v) in img.data.iter_mut().enumerate() {
        *v = ((i * 31 + seed * 17) % 97) as f32;
    }
    fits::write_image(
        &dir.join(name),
        PixelData::F32(&img),
        &cards,
        &Compression::None,
    )
    .expect("write bench frame");
}

fn wcs(ra: f64) -> Vec<Card> {
    vec![
        Card::new("CTYPE1", "RA---TAN", ""),
        Card::new("CTYPE2", "DEC--TAN", ""),
        Card::new("CRVAL1", ra, ""),
        Card::new("CRVAL2", 2.0, ""),
        Card::new("CRPIX1", 32.5, ""),
        Card::new("CRPIX2", 32.5, ""),
        Card::new("CD1_1", -0.0001, ""),
        Card::new("CD2_2", 0.0001, ""),
    ]
}

fn night(dir: &Path) -> usize {
    let mut n = 0;
    for b in 0..4 {
        let mut master = vec![
            Card::new("IMAGETYP", "zero", ""),
            Card::new("CHIPID", "ccd1", ""),
            Card::new("NCOMBINE", 50i64, ""),
        ];
        for i in 0..50 {
            let name = format!("bias_{b}_{i:02}.fits");
            write(
                dir,
                &name,
                vec![
                    Card::new("IMAGETYP", "zero", ""),
                    Card::new("CHIPID", "ccd1", ""),
                ],
                n,
            );
            master.push(Card::new(format!("IMCMB{:03}", i + 1), name.as_str(), ""));
            n += 1;
        }
        write(dir, &format!("masterbias_{b}.fits"), master, n);
        n += 1;
    }
    for s in 0..398 {
        let date = format!(
            "2026-03-10T{:02}:{:02}:{:02}",
            s / 3600,
            (s / 60) % 60,
            s % 60
        );
        let mut raw = vec![
            Card::new("IMAGETYP", "object", ""),
            Card::new("CHIPID", "ccd1", ""),
            Card::new("FILTER", "r", ""),
            Card::new("DATE-OBS", date.as_str(), ""),
            Card::new("EXPTIME", 60.0, ""),
        ];
        raw.extend(wcs(150.0 + s as f64 * 0.001));
        let mut red = raw.clone();
        red.push(Card::new(
            "ZEROCOR",
            format!("masterbias_{}.fits", s % 4).as_str(),
            "",
        ));
        write(dir, &format!("raw_{s:03}.fits"), raw, n);
        write(dir, &format!("red_{s:03}.fits"), red, n + 1);
        n += 2;
    }
    n
}

async fn run(url: &str, dir: &Path, data: &Path) -> f64 {
    let catalog = Catalog::connect(url).await.expect("connect");
    let req = PathIngest {
        paths: vec![dir.to_path_buf()],
        roots: vec![("bench".into(), dir.to_path_buf())],
        ..Default::default()
    };
    let t = Instant::now();
    let out = catalog.ingest_paths(&req, data).await.expect("ingest");
    let secs = t.elapsed().as_secs_f64();
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    assert_eq!(out.report.frames, 1000);
    secs
}

#[tokio::main]
async fn main() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("night");
    std::fs::create_dir_all(&dir).unwrap();
    let n = night(&dir);
    assert_eq!(n, 1000);
    let url = format!(
        "sqlite://{}?mode=rwc",
        tmp.path().join("bench.db").display()
    );
    let secs = run(&url, &dir, tmp.path()).await;
    println!(
        "ingest_headers sqlite: 1000 frames (rules, checksums, one transaction) in {secs:.2} s = {:.0} frames/s",
        1000.0 / secs
    );
    if let Ok(base) = std::env::var("WISECUT_BENCH_PG") {
        use sea_orm::{ConnectionTrait, Database};
        let name = format!("wisecut_bench_headers_{}", std::process::id());
        let admin = Database::connect(format!("{base}/postgres"))
            .await
            .expect("pg");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create db");
        let secs = run(&format!("{base}/{name}"), &dir, tmp.path()).await;
        println!(
            "ingest_headers postgres: 1000 frames in {secs:.2} s = {:.0} frames/s",
            1000.0 / secs
        );
        admin
            .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .await
            .expect("drop db");
    }
}
