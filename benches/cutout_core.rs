//! In-process timing of the cutout engine (no HTTP): the server's own work
//! per cutout, one at a time, on the files `benches/cutout_bench.py` writes.
//!
//! ```text
//! cargo bench --bench cutout_core -- --data target/cutout-bench/data [--n 2000]
//! ```
//!
//! For each file (plain, row-tiled RICE served from a sidecar, 256×256-tiled
//! RICE) it makes random 240×240 cutouts by sky position and reports the
//! median and 99th percentile of: FITS (place, header, stored rows — the
//! server's path, without its row cache) and, on the
//! plain file, JPEG with an asinh stretch (place, read, render, encode).
//! Prints one JSON object.

use std::path::PathBuf;

/// The server's allocator, so the engine is timed as it runs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::time::Instant;

use wisecut::imaging::cutout::{self, Center, CutoutSpec, Provenance, Size, SizeUnit};
use wisecut::imaging::pixels::{PixelSource, Sidecars};
use wisecut::imaging::render::{self, Interval, OutputFormat, RenderParams, Stretch};

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let mut data = None;
    let mut n = 2000usize;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--data" => data = it.next().map(PathBuf::from),
            "--n" => n = it.next().and_then(|v| v.parse().ok()).unwrap_or(n),
            _ => {}
        }
    }
    let Some(data) = data else {
        eprintln!("cutout_core: --data DIR (from benches/cutout_bench.py) is required");
        std::process::exit(2);
    };
    let sidecar_dir = tempfile::tempdir().expect("temp dir");
    let sidecars = Sidecars::new(sidecar_dir.path(), 1 << 32).expect("sidecar store");
    let mut out = serde_json::Map::new();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        // xorshift: deterministic positions without another dependency.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for (name, hdu) in [("plain", 0), ("rice_rows", 1), ("rice_tiles", 1)] {
        let path = data.join(format!("{name}.fits"));
        let t = Instant::now();
        let source = PixelSource::open(&path, hdu, Some(&sidecars)).expect("open");
        let open_ms = t.elapsed().as_secs_f64() * 1000.0;
        let wcs = source.wcs.as_ref().expect("bench frames have a WCS");
        let (w, h) = (source.width as f64, source.height as f64);
        let provenance = Provenance {
            object_id: Some(1),
            file: format!("{name}.fits"),
            object_url: None,
        };
        let mut positions = Vec::with_capacity(n);
        for _ in 0..n {
            let x = 122.0 + next() * (w - 244.0);
            let y = 122.0 + next() * (h - 244.0);
            positions.push(wcs.pix_to_sky(x, y).expect("on the sky"));
        }
        let spec = |ra, dec| CutoutSpec {
            center: Center::Sky { ra, dec },
            size: Size {
                width: 240.0,
                height: 240.0,
                unit: SizeUnit::Pixel,
            },
            raw_values: false,
            max_side: 6000,
        };
        let mut fits_ms = Vec::with_capacity(n);
        for &(ra, dec) in &positions {
            // The server's FITS path: place, then header and stored rows.
            let t = Instant::now();
            let s = spec(ra, dec);
            let g = cutout::locate(&source, &s).expect("placed");
            let bytes = cutout::extract_fits(&source, &s, g, &provenance).expect("cutout");
            std::hint::black_box(bytes);
            fits_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let mut entry = serde_json::json!({
            "access": source.access(),
            "open_ms": open_ms,
            "fits_p50_ms": percentile(&mut fits_ms, 0.5),
            "fits_p99_ms": percentile(&mut fits_ms, 0.99),
        });
        if name == "plain" {
            let params = RenderParams {
                stretch: Stretch::Asinh,
                interval: Interval::Percentile(99.5),
                ..Default::default()
            };
            let mut jpg_ms = Vec::with_capacity(n);
            for &(ra, dec) in &positions {
                let t = Instant::now();
                let cut = cutout::cut(&source, &spec(ra, dec), &provenance).expect("cutout");
                let rendered = render::render(&cut.to_image_f32(), &params).expect("render");
                let bytes =
                    render::encode(&rendered, OutputFormat::Jpeg { quality: 90 }).expect("jpeg");
                std::hint::black_box(bytes);
                jpg_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            // Where the JPEG time goes, on one cutout.
            let (ra, dec) = positions[0];
            let cut = cutout::cut(&source, &spec(ra, dec), &provenance).expect("cutout");
            let image = cut.to_image_f32();
            let reps = 200;
            let t = Instant::now();
            for _ in 0..reps {
                std::hint::black_box(render::limits(&params.interval, &image.data).unwrap());
            }
            entry["interval_ms"] = (t.elapsed().as_secs_f64() * 1000.0 / reps as f64).into();
            let t = Instant::now();
            let mut rendered = None;
            for _ in 0..reps {
                rendered = Some(render::render(&image, &params).expect("render"));
            }
            entry["render_ms"] = (t.elapsed().as_secs_f64() * 1000.0 / reps as f64).into();
            let rendered = rendered.expect("rendered");
            let t = Instant::now();
            for _ in 0..reps {
                std::hint::black_box(
                    render::encode(&rendered, OutputFormat::Jpeg { quality: 90 }).expect("jpeg"),
                );
            }
            entry["jpeg_encode_ms"] = (t.elapsed().as_secs_f64() * 1000.0 / reps as f64).into();
            entry["jpeg_asinh_p50_ms"] = percentile(&mut jpg_ms, 0.5).into();
            entry["jpeg_asinh_p99_ms"] = percentile(&mut jpg_ms, 0.99).into();
        }
        out.insert(name.to_owned(), entry);
    }
    println!("{}", serde_json::Value::Object(out));
}
