//! Benchmark: the upward lineage walk of a coadd with more than 1,000
//! ancestors, on SQLite (and PostgreSQL when `WISECUT_TEST_PG` is set).
//!
//! Builds a synthetic survey through the real ingest (tiny FITS files, real
//! manifest): one coadd ← 256 regridded ← 256 reduced frames, each made from
//! a raw frame and shared nightly calibrations, themselves made from raw
//! calibration exposures. Prints the median and best of repeated walks.
//!
//! Run with `cargo bench --bench lineage`.

use std::time::Instant;
use wisecut::catalog::Catalog;
use wisecut::catalog::ingest::{DepRef, FrameEntry, Manifest};
use wisecut::catalog::lineage::{Direction, MAX_DEPTH};
use wisecut::config::Config;
use wisecut::imaging::fits::{self, Compression, PixelData};
use wisecut::imaging::raster::Raster;

fn entry(key: String, class: &str, deps: Vec<DepRef>) -> FrameEntry {
    FrameEntry::new(&key, class, &format!("{key}.fits"), deps)
}

fn survey() -> Manifest {
    let mut m = Manifest::default();
    let nights = 20;
    let per_night = 16;
    for n in 0..nights {
        let raws: Vec<String> = (0..5).map(|i| format!("rawbias_{n}_{i}")).collect();
        for r in &raws {
            m.frames.push(entry(r.clone(), "RawBiasFrame", vec![]));
        }
        m.frames.push(entry(
            format!("bias_{n}"),
            "BiasFrame",
            raws.iter().map(|r| DepRef::key("raw", r)).collect(),
        ));
        m.frames.push(entry(
            format!("hot_{n}"),
            "HotPixelMap",
            vec![DepRef::key("bias", &format!("bias_{n}"))],
        ));
        let flats: Vec<String> = (0..5).map(|i| format!("rawflat_{n}_{i}")).collect();
        for r in &flats {
            m.frames.push(entry(r.clone(), "RawDomeFlatFrame", vec![]));
        }
        let mut deps: Vec<DepRef> = flats.iter().map(|r| DepRef::key("raw", r)).collect();
        deps.push(DepRef::key("bias", &format!("bias_{n}")));
        m.frames
            .push(entry(format!("flat_{n}"), "MasterFlatFrame", deps));
        m.frames.push(entry(
            format!("cold_{n}"),
            "ColdPixelMap",
            vec![DepRef::key("flat", &format!("flat_{n}"))],
        ));
        for e in 0..per_night {
            let raw = format!("raw_{n}_{e}");
            m.frames.push(entry(raw.clone(), "RawScienceFrame", vec![]));
            m.frames.push(entry(
                format!("red_{n}_{e}"),
                "ReducedScienceFrame",
                vec![
                    DepRef::key("raw", &raw),
                    DepRef::key("bias", &format!("bias_{n}")),
                    DepRef::key("flat", &format!("flat_{n}")),
                    DepRef::key("hotpixelmap", &format!("hot_{n}")),
                    DepRef::key("coldpixelmap", &format!("cold_{n}")),
                ],
            ));
            m.frames.push(entry(
                format!("reg_{n}_{e}"),
                "RegriddedFrame",
                vec![DepRef::key("reduced", &format!("red_{n}_{e}"))],
            ));
        }
    }
    let regs: Vec<DepRef> = m
        .frames
        .iter()
        .filter(|f| f.class == "RegriddedFrame")
        .map(|f| DepRef::key("regridded", &f.key))
        .collect();
    m.frames
        .push(entry("coadd".into(), "CoaddedRegriddedFrame", regs));
    m
}

async fn run(label: &str, url: &str, dir: &std::path::Path) {
    let catalog = Catalog::connect(url).await.expect("database");
    let report = catalog
        .ingest(&dir.join("manifest.json"), dir)
        .await
        .expect("ingest");
    let coadd = report.object_ids["coadd"];
    let mut times = Vec::new();
    let mut n_nodes = 0;
    for _ in 0..60 {
        let t = Instant::now();
        let walk = catalog
            .lineage(coadd, Direction::Up, MAX_DEPTH)
            .await
            .unwrap();
        times.push(t.elapsed().as_secs_f64() * 1e3);
        n_nodes = walk.nodes.len() - 1;
    }
    times.sort_by(f64::total_cmp);
    println!(
        "lineage/{label}: coadd with {n_nodes} ancestors: median {:.2} ms, best {:.2} ms, worst {:.2} ms ({} walks)",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1],
        times.len()
    );
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    // WISECUT_BENCH_KEEP=DIR keeps the synthetic survey for inspection.
    let dir_path = match std::env::var("WISECUT_BENCH_KEEP") {
        Ok(d) => std::path::PathBuf::from(d),
        Err(_) => dir.path().to_path_buf(),
    };
    std::fs::create_dir_all(&dir_path).unwrap();
    let m = survey();
    let tiny = Raster::filled(8, 8, 0.0f32);
    for f in &m.frames {
        fits::write_image(
            &dir_path.join(&f.path),
            PixelData::F32(&tiny),
            &[],
            &Compression::None,
        )
        .unwrap();
    }
    std::fs::write(
        dir_path.join("manifest.json"),
        serde_json::to_string(&m).unwrap(),
    )
    .unwrap();
    let sqlite = Config::sqlite_url(&dir_path.join("bench.db"));
    run("sqlite", &sqlite, &dir_path).await;
    if let Ok(base) = std::env::var("WISECUT_TEST_PG") {
        use sea_orm::{ConnectionTrait, Database};
        let admin = Database::connect(format!("{base}/postgres")).await.unwrap();
        let name = format!("wisecut_bench_{}", std::process::id());
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        run("postgres", &format!("{base}/{name}"), &dir_path).await;
        let _ = admin
            .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .await;
    }
}
