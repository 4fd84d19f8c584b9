//! Peer check against astropy: `color::lupton` reproduces
//! `astropy.visualization.make_lupton_rgb`, and `color::linear` reproduces
//! `make_rgb` with percentile intervals, within 1 DN per channel.
//!
//! The Python side lives in `tests/peer/check_rgb.py` and runs in the
//! virtual environment `.ci/run` installs; `WISECUT_PYTHON` names its
//! interpreter. The inputs are three synthetic 97x61 bands (sky noise with
//! negative values, a galaxy, a blue star, a star saturated far above the
//! mappings' full scale, a negative hole), written as raw float32 with the
//! PNGs wisecut makes from them.

use super::common;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use wisecut::imaging::color::{self, LinearParams, LuptonParams};
use wisecut::imaging::raster::Raster;

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
