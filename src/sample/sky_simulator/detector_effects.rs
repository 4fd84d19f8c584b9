//! Detector effects: what a CCD camera adds to the light of the sky.
//!
//! The simulated pipeline has to calibrate every one of these away, so each
//! is made the way it arises in a real camera: photon and read noise,
//! cosmic-ray hits, hot and cold pixels and columns, and the multiplicative
//! and additive patterns of the optics and the chip (vignetting, pixel
//! response with dust donuts, the dome flat's illumination error, fringes).
//! The patterns are functions of focal-plane position, so they run on
//! smoothly from chip to chip as in a real mosaic.

use super::{BANDS, gauss, poisson_count};
use crate::imaging::raster::Raster;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::f64::consts::PI;

/// Below this many electrons the normal approximation to Poisson noise is
/// visibly skewed, so the exact distribution is drawn.
const POISSON_EXACT_BELOW: f64 = 30.0;

/// Adds photon noise to the counts present and Gaussian read noise.
///
/// Each pixel value (ADU, sky plus sources, before any bias) is converted to
/// electrons with `gain` (e⁻/ADU), replaced by a Poisson draw (its normal
/// approximation above 30 e⁻; non-positive values get no photon noise),
/// converted back, and `read_noise_adu` Gaussian noise is added. The variance
/// of the result is `value / gain + read_noise_adu²` (ADU²).
pub fn add_noise(img: &mut Raster<f32>, gain: f64, read_noise_adu: f64, rng: &mut impl rand::Rng) {
    let gain = gain.max(1e-12);
    for px in &mut img.data {
        let e = f64::from(*px) * gain;
        let noisy_e = if e <= 0.0 {
            e
        } else if e < POISSON_EXACT_BELOW {
            poisson_count(rng, e) as f64
        } else {
            e + e.sqrt() * gauss(rng)
        };
        *px = (noisy_e / gain + read_noise_adu * gauss(rng)) as f32;
    }
}

/// Adds `count` cosmic-ray hits and returns the zero-based pixels they changed.
///
/// Hits are short "worms": 1–8 pixels along a gently curving path (short ones
/// most common), each core pixel holding 500–20000 ADU, with a faint halo of
/// charge diffusion (2–8 % of the neighbouring core pixel) on the four
/// neighbours. The returned list (core and halo, no duplicates, sorted by row
/// then column) is the truth mask for cosmic-ray rejection.
pub fn add_cosmic_rays(
    img: &mut Raster<f32>,
    count: usize,
    rng: &mut impl rand::Rng,
) -> Vec<(usize, usize)> {
    let (w, h) = (img.width as i64, img.height as i64);
    let mut affected = Vec::new();
    if w == 0 || h == 0 {
        return affected;
    }
    for _ in 0..count {
        let len = match rng.random_range(0..100) {
            0..25 => 1,
            25..45 => 2,
            45..60 => 3,
            _ => rng.random_range(4..=8),
        };
        let mut x = rng.random_range(0.0..w as f64);
        let mut y = rng.random_range(0.0..h as f64);
        let mut dir: f64 = rng.random_range(0.0..2.0 * PI);
        let energy = (rng.random_range(500f64.ln()..20000f64.ln())).exp();
        let mut core: Vec<(i64, i64)> = Vec::with_capacity(len);
        let mut steps = 0;
        while core.len() < len && steps < 8 * len {
            let p = (x.floor() as i64, y.floor() as i64);
            if p.0 < 0 || p.0 >= w || p.1 < 0 || p.1 >= h {
                break;
            }
            if !core.contains(&p) {
                core.push(p);
            }
            // Half-pixel steps so a diagonal path does not skip pixels.
            x += 0.5 * dir.cos();
            y += 0.5 * dir.sin();
            dir += 0.15 * gauss(rng);
            steps += 1;
        }
        for &(cx, cy) in &core {
            let v = (energy * rng.random_range(0.5..1.3)).clamp(500.0, 20000.0);
            img.data[(cy * w + cx) as usize] += v as f32;
            affected.push((cx as usize, cy as usize));
            for (nx, ny) in [(cx - 1, cy), (cx + 1, cy), (cx, cy - 1), (cx, cy + 1)] {
                if nx < 0 || nx >= w || ny < 0 || ny >= h || core.contains(&(nx, ny)) {
                    continue;
                }
                img.data[(ny * w + nx) as usize] += (v * rng.random_range(0.02..0.08)) as f32;
                affected.push((nx as usize, ny as usize));
            }
        }
    }
    affected.sort_by_key(|&(x, y)| (y, x));
    affected.dedup();
    affected
}

/// A chip-sized map of `value(x, y)` at each pixel's focal-plane position:
/// pixel `(ix, iy)` is at `(chip_x0 + ix, chip_y0 + iy)`, so patterns made
/// this way join without a seam between the chips of a mosaic.
fn focal_plane_map(
    width: usize,
    height: usize,
    chip_x0: f64,
    chip_y0: f64,
    value: impl Fn(f64, f64) -> f64,
) -> Raster<f32> {
    let mut img = Raster::filled(width, height, 0.0f32);
    for iy in 0..height {
        let y = chip_y0 + iy as f64;
        for ix in 0..width {
            img.data[iy * width + ix] = value(chip_x0 + ix as f64, y) as f32;
        }
    }
    img
}

/// One interference-fringe system: the cosine of an optical phase that
/// follows the thickness of the thinned CCD, a wedge plus random
/// long-wavelength undulations. Its contours are the fringes: wavy bands
/// whose direction and spacing drift across the focal plane, as in real
/// red-band fringe frames.
struct FringeSystem {
    tilt: (f64, f64),
    phase0: f64,
    bumps: Vec<(f64, f64, f64, f64)>, // (qx, qy, amplitude rad, phase)
    weight: f64,
}

impl FringeSystem {
    fn random(rng: &mut impl Rng, weight: f64) -> Self {
        // The undulations change the local phase gradient by ±~50 % around
        // k0, so with a 32–40 px base most fringes end up 20–60 px apart.
        let k0 = 2.0 * PI / rng.random_range(32.0..40.0);
        let dir = rng.random_range(0.0..PI);
        const N_BUMPS: usize = 6;
        let bumps = (0..N_BUMPS)
            .map(|_| {
                let q = 2.0 * PI / rng.random_range(250.0..800.0);
                let dq = rng.random_range(0.0..2.0 * PI);
                // Gradient amplitude amp·q ≈ 0.3 k0 per undulation: enough
                // to bend the fringes, rarely enough to close them into loops.
                let amp = 0.3 * k0 / q * rng.random_range(0.7..1.3);
                (
                    q * dq.cos(),
                    q * dq.sin(),
                    amp,
                    rng.random_range(0.0..2.0 * PI),
                )
            })
            .collect();
        FringeSystem {
            tilt: (k0 * dir.cos(), k0 * dir.sin()),
            phase0: rng.random_range(0.0..2.0 * PI),
            bumps,
            weight,
        }
    }

    #[inline]
    fn value(&self, x: f64, y: f64) -> f64 {
        let mut ph = self.phase0 + self.tilt.0 * x + self.tilt.1 * y;
        for &(qx, qy, amp, p) in &self.bumps {
            ph += amp * (qx * x + qy * y + p).sin();
        }
        self.weight * ph.cos()
    }
}

/// A fringe frame: zero mean, unit rms, smooth curved fringes 20–60 px apart.
///
/// The pattern is a function of focal-plane position only — pixel `(ix, iy)`
/// is at `(chip_x0 + ix, chip_y0 + iy)` — and of `seed` (use one seed per
/// camera and filter), so adjacent chips join without a seam. A second,
/// weaker system of different spacing beats against the main one, as sky
/// emission lines of different wavelengths do. The normalisation is
/// analytic, not per chip, for the same reason: on a 512² chip the rms is
/// within ~5 % of 1 and the mean is typically below 0.01 in size (rarely up
/// to ~0.1, where an unusually wide fringe falls on the chip).
pub fn fringe_pattern(
    width: usize,
    height: usize,
    chip_x0: f64,
    chip_y0: f64,
    seed: u64,
) -> Raster<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let systems = [
        FringeSystem::random(&mut rng, 1.0),
        FringeSystem::random(&mut rng, 0.4),
    ];
    // cos of a well-mixed phase has mean square 1/2.
    let norm = 1.0 / (0.5 * systems.iter().map(|s| s.weight * s.weight).sum::<f64>()).sqrt();
    focal_plane_map(width, height, chip_x0, chip_y0, |x, y| {
        let v: f64 = systems.iter().map(|s| s.value(x, y)).sum();
        v * norm
    })
}

/// The tan θ at which cos⁴θ = 0.8.
fn vignetting_edge_tan() -> f64 {
    (0.8f64.powf(-0.5) - 1.0).sqrt()
}

/// Multiplicative vignetting: cos⁴ of the field angle, with the focal length
/// chosen so the response is 1 on the optical axis at focal-plane
/// (`fp_cx`, `fp_cy`) and 0.80 at `fp_radius` pixels from it (and keeps
/// falling beyond). Pixel `(ix, iy)` is at `(chip_x0 + ix, chip_y0 + iy)`.
/// A non-positive `fp_radius` gives no vignetting.
pub fn vignetting(
    width: usize,
    height: usize,
    chip_x0: f64,
    chip_y0: f64,
    fp_cx: f64,
    fp_cy: f64,
    fp_radius: f64,
) -> Raster<f32> {
    if fp_radius <= 0.0 {
        return Raster::filled(width, height, 1.0);
    }
    let focal = fp_radius / vignetting_edge_tan();
    focal_plane_map(width, height, chip_x0, chip_y0, |x, y| {
        let (dx, dy) = (x - fp_cx, y - fp_cy);
        let t2 = (dx * dx + dy * dy) / (focal * focal);
        1.0 / ((1.0 + t2) * (1.0 + t2))
    })
}

/// Pixel-to-pixel quantum-efficiency map around 1.
///
/// White Gaussian variations of the given `rms`, times 3–5 dust "donuts":
/// out-of-focus shadows of dust on the filter or window, annuli (the pupil
/// with its central obstruction) of outer radius 10–25 px and depth 2–5 %
/// with soft edges. Deterministic for `seed`.
pub fn pixel_response(width: usize, height: usize, seed: u64, rms: f64) -> Raster<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut img = Raster::filled(width, height, 1.0f32);
    for px in &mut img.data {
        *px = (1.0 + rms * gauss(&mut rng)) as f32;
    }
    if width == 0 || height == 0 {
        return img;
    }
    let n_donuts = rng.random_range(3..=5);
    for _ in 0..n_donuts {
        let cx = rng.random_range(0.0..width as f64);
        let cy = rng.random_range(0.0..height as f64);
        let r_out: f64 = rng.random_range(10.0..25.0);
        let r_in = 0.45 * r_out;
        let depth = rng.random_range(0.02..0.05);
        let soft = 1.5;
        let reach = r_out + 4.0 * soft;
        let y0 = (cy - reach).floor().max(0.0) as usize;
        let y1 = ((cy + reach).ceil() as usize).min(height - 1);
        let x0 = (cx - reach).floor().max(0.0) as usize;
        let x1 = ((cx + reach).ceil() as usize).min(width - 1);
        for iy in y0..=y1 {
            for ix in x0..=x1 {
                let r = (ix as f64 - cx).hypot(iy as f64 - cy);
                // Product of two logistic edges: a soft-walled annulus.
                let outer = 1.0 / (1.0 + ((r - r_out) / soft).exp());
                let inner = 1.0 / (1.0 + ((r_in - r) / soft).exp());
                img.data[iy * width + ix] *= (1.0 - depth * outer * inner) as f32;
            }
        }
    }
    img
}

/// Low-order coefficients of the dome-flat illumination error per band:
/// (x, y, radial, astigmatic x²−y², xy) in units of the focal-plane radius.
const ILLUMINATION: [[f64; 5]; 3] = [
    [0.012, -0.008, 0.020, 0.006, -0.005],
    [-0.006, 0.010, 0.015, -0.008, 0.004],
    [0.009, 0.007, -0.012, 0.005, 0.008],
];

/// The multiplicative illumination difference between a dome flat and the
/// night sky: a smooth second-order surface around 1 with ±2–3 % amplitude
/// over the focal plane, different in each band (scattered light in the
/// dome depends on the lamp spectrum). Coordinates as in [`vignetting`],
/// normalised by `fp_radius` (≤ 0 means 1). Panics if `band > 2`.
#[allow(clippy::too_many_arguments)]
pub fn illumination_pattern(
    width: usize,
    height: usize,
    chip_x0: f64,
    chip_y0: f64,
    fp_cx: f64,
    fp_cy: f64,
    fp_radius: f64,
    band: usize,
) -> Raster<f32> {
    assert!(band < BANDS.len(), "band {band} out of range");
    let c = ILLUMINATION[band];
    let r = if fp_radius > 0.0 {
        fp_radius
    } else {
        f64::INFINITY
    };
    focal_plane_map(width, height, chip_x0, chip_y0, |x, y| {
        let (u, v) = ((x - fp_cx) / r, (y - fp_cy) / r);
        // The radial term is centred on its mean over the unit disc so the
        // surface averages 1 over the focal plane.
        1.0 + c[0] * u
            + c[1] * v
            + c[2] * (u * u + v * v - 0.5)
            + c[3] * (u * u - v * v)
            + c[4] * u * v
    })
}

/// Hot and cold pixels of a chip, zero-based `(ix, iy)`, each list sorted by
/// row then column and the two disjoint.
///
/// Hot: one or two hot column segments (a hot defect bleeding along the
/// column towards higher rows for 20–50 % of the height) plus `n_hot` isolated
/// pixels. Cold: one bad column (from a charge trap at a random row up to
/// the last row) plus `n_cold` isolated pixels. Column defects need a chip
/// at least 4 × 8 pixels. Isolated pixels are capped by the free pixels.
// The tuple of two pixel lists is the signature the survey builder expects.
#[allow(clippy::type_complexity)]
pub fn bad_pixels(
    width: usize,
    height: usize,
    seed: u64,
    n_hot: usize,
    n_cold: usize,
) -> (Vec<(usize, usize)>, Vec<(usize, usize)>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut taken = vec![false; width * height];
    let mut hot = Vec::new();
    let mut cold = Vec::new();
    if width == 0 || height == 0 {
        return (hot, cold);
    }
    if width >= 4 && height >= 8 {
        let n_cols = rng.random_range(1..=2);
        let mut used_cols: Vec<usize> = Vec::new();
        let mut pick_col = |rng: &mut ChaCha8Rng| loop {
            let c = rng.random_range(1..width - 1);
            if !used_cols.contains(&c) {
                used_cols.push(c);
                return c;
            }
        };
        for _ in 0..n_cols {
            let col = pick_col(&mut rng);
            let len = ((height as f64) * rng.random_range(0.2..0.5))
                .round()
                .max(2.0) as usize;
            let start = rng.random_range(0..height - len + 1);
            for iy in start..start + len {
                taken[iy * width + col] = true;
                hot.push((col, iy));
            }
        }
        let col = pick_col(&mut rng);
        let start = rng.random_range(0..height / 2);
        for iy in start..height {
            taken[iy * width + col] = true;
            cold.push((col, iy));
        }
    }
    let free = taken.iter().filter(|t| !**t).count();
    let n_hot = n_hot.min(free);
    let n_cold = n_cold.min(free - n_hot);
    for (n, list) in [(n_hot, &mut hot), (n_cold, &mut cold)] {
        let mut placed = 0;
        while placed < n {
            let ix = rng.random_range(0..width);
            let iy = rng.random_range(0..height);
            if !taken[iy * width + ix] {
                taken[iy * width + ix] = true;
                list.push((ix, iy));
                placed += 1;
            }
        }
    }
    hot.sort_by_key(|&(x, y)| (y, x));
    cold.sort_by_key(|&(x, y)| (y, x));
    (hot, cold)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_variance_matches_poisson_plus_read_noise() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for &(level, gain, rn) in &[(1000.0, 2.0, 5.0), (1000.0, 0.8, 3.0), (4.0, 1.5, 2.0)] {
            let mut img = Raster::filled(512, 512, level as f32);
            add_noise(&mut img, gain, rn, &mut rng);
            let n = img.data.len() as f64;
            let mean = img.data.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
            let var = img
                .data
                .iter()
                .map(|&v| (f64::from(v) - mean).powi(2))
                .sum::<f64>()
                / (n - 1.0);
            let want = level / gain + rn * rn;
            assert!((var / want - 1.0).abs() < 0.05, "var {var} vs {want}");
            assert!(
                (mean - level).abs() < 5.0 * (want / n).sqrt(),
                "mean {mean}"
            );
        }
    }

    #[test]
    fn cosmic_rays_are_short_bright_tracks() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut img = Raster::filled(300, 200, 0.0f32);
        let hit = add_cosmic_rays(&mut img, 40, &mut rng);
        let bright: Vec<_> = hit
            .iter()
            .filter(|&&(x, y)| img.get(x, y) >= 500.0)
            .collect();
        assert!(bright.len() >= 40 && bright.len() <= 40 * 8);
        assert!(img.data.iter().all(|&v| v <= 20000.0 * 1.2));
        // Every changed pixel is reported, and nothing else.
        let changed = img.data.iter().filter(|&&v| v != 0.0).count();
        assert_eq!(changed, hit.len());
        let max = img.data.iter().cloned().fold(0.0f32, f32::max);
        assert!(max > 2000.0);
    }

    #[test]
    fn fringes_are_normalised_and_continuous_across_chips() {
        let seed = 99;
        let big = fringe_pattern(1024, 512, 0.0, 4096.0, seed);
        let left = fringe_pattern(512, 512, 0.0, 4096.0, seed);
        let right = fringe_pattern(512, 512, 512.0, 4096.0, seed);
        for chip in [&left, &right] {
            let n = chip.data.len() as f64;
            let mean = chip.data.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
            let rms = (chip.data.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / n).sqrt();
            assert!(mean.abs() < 0.1, "mean {mean}");
            assert!((rms - 1.0).abs() < 0.15, "rms {rms}");
        }
        for iy in 0..512 {
            for ix in 0..512 {
                assert_eq!(left.get(ix, iy), big.get(ix, iy));
                assert_eq!(right.get(ix, iy), big.get(ix + 512, iy));
            }
        }
        // The seam between the chips is as smooth as the inside of a chip.
        let col_step = |a: &Raster<f32>, ca: usize, b: &Raster<f32>, cb: usize| {
            (0..512)
                .map(|iy| f64::from((a.get(ca, iy) - b.get(cb, iy)).abs()))
                .sum::<f64>()
                / 512.0
        };
        let seam = col_step(&left, 511, &right, 0);
        let inside = col_step(&left, 300, &left, 301);
        assert!(
            seam < 0.5 && seam < 3.0 * inside + 0.05,
            "seam {seam} inside {inside}"
        );
        // Fringe spacing in range: zero crossings along rows.
        let crossings: usize = (0..512)
            .step_by(16)
            .map(|iy| {
                (0..1023)
                    .filter(|&ix| (big.get(ix, iy) > 0.0) != (big.get(ix + 1, iy) > 0.0))
                    .count()
            })
            .sum();
        let per_row = crossings as f64 / 32.0;
        assert!(
            (1024.0 / 60.0..1024.0 / 10.0).contains(&per_row),
            "{per_row} crossings per 1024 px"
        );
        assert_ne!(
            fringe_pattern(64, 64, 0.0, 0.0, 1),
            fringe_pattern(64, 64, 0.0, 0.0, 2)
        );
    }

    #[test]
    fn fringe_spacing_is_mostly_20_to_60_px() {
        let mut spacings = Vec::new();
        for seed in 0..20 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let sys = FringeSystem::random(&mut rng, 1.0);
            let grad = |x: f64, y: f64| {
                let mut gx = sys.tilt.0;
                let mut gy = sys.tilt.1;
                for &(qx, qy, amp, p) in &sys.bumps {
                    let c = amp * (qx * x + qy * y + p).cos();
                    gx += c * qx;
                    gy += c * qy;
                }
                gx.hypot(gy)
            };
            for iy in (0..2048).step_by(64) {
                for ix in (0..2048).step_by(64) {
                    spacings.push(2.0 * PI / grad(ix as f64, iy as f64));
                }
            }
        }
        spacings.sort_by(f64::total_cmp);
        let pct = |p: f64| spacings[((spacings.len() - 1) as f64 * p) as usize];
        eprintln!(
            "fringe spacing p10 {:.1} p50 {:.1} p90 {:.1}",
            pct(0.1),
            pct(0.5),
            pct(0.9)
        );
        assert!((28.0..45.0).contains(&pct(0.5)));
        assert!(pct(0.1) > 18.0 && pct(0.9) < 70.0);
    }

    #[test]
    fn vignetting_is_one_on_axis_and_falls_outward() {
        let v = vignetting(400, 300, 1000.0, 2000.0, 1100.0, 2100.0, 3000.0);
        assert!((v.get(100, 100) - 1.0).abs() < 1e-6);
        // f32 cannot resolve single steps right next to the axis: compare
        // every tenth pixel.
        let mut prev = 1.0f32;
        for ix in (110..400).step_by(10) {
            let cur = v.get(ix, 100);
            assert!(cur < prev, "{cur} !< {prev} at {ix}");
            prev = cur;
        }
        // 0.80 at the focal-plane radius, along any direction.
        let far = vignetting(
            1,
            1,
            1100.0 + 3000.0 * 0.6,
            2100.0 - 3000.0 * 0.8,
            1100.0,
            2100.0,
            3000.0,
        );
        assert!((far.get(0, 0) - 0.80).abs() < 1e-4, "{}", far.get(0, 0));
        // Continuous across chips like the fringes.
        let a = vignetting(10, 10, 0.0, 0.0, 500.0, 500.0, 3000.0);
        let b = vignetting(10, 10, 10.0, 0.0, 500.0, 500.0, 3000.0);
        assert!((b.get(0, 5) - a.get(9, 5)).abs() < 1e-4);
    }

    #[test]
    fn pixel_response_has_the_rms_and_some_donuts() {
        let a = pixel_response(512, 512, 4, 0.01);
        assert_eq!(a, pixel_response(512, 512, 4, 0.01));
        let n = a.data.len() as f64;
        let mean = a.data.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let rms = (a
            .data
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n)
            .sqrt();
        assert!((mean - 1.0).abs() < 0.003, "mean {mean}");
        assert!((0.0095..0.013).contains(&rms), "rms {rms}");
        // The donuts show in a smoothed, noise-free version.
        let flat = pixel_response(512, 512, 4, 0.0);
        let min = flat.data.iter().cloned().fold(1.0f32, f32::min);
        assert!((0.94..0.985).contains(&min), "deepest dip {min}");
        let dipped = flat.data.iter().filter(|&&v| v < 0.99).count();
        assert!(dipped > 200, "{dipped}");
    }

    #[test]
    fn illumination_is_smooth_percent_level_and_band_dependent() {
        let maps: Vec<_> = (0..3)
            .map(|b| illumination_pattern(200, 200, -1000.0, -1000.0, 0.0, 0.0, 1500.0, b))
            .collect();
        for m in &maps {
            let lo = m.data.iter().cloned().fold(f32::INFINITY, f32::min);
            let hi = m.data.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            assert!(lo > 0.95 && hi < 1.05 && hi - lo > 0.002, "{lo}..{hi}");
        }
        assert_ne!(maps[0], maps[1]);
        assert_ne!(maps[1], maps[2]);
        // Across the whole focal plane the amplitude is a few per cent.
        let whole = illumination_pattern(301, 301, -150.0, -150.0, 0.0, 0.0, 150.0, 0);
        let inside: Vec<f32> = (0..301 * 301)
            .filter(|k| ((k % 301) as f64 - 150.0).hypot((k / 301) as f64 - 150.0) <= 150.0)
            .map(|k| whole.data[k])
            .collect();
        let lo = inside.iter().cloned().fold(f32::INFINITY, f32::min);
        let hi = inside.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        assert!((0.02..0.07).contains(&(hi - lo)), "{lo}..{hi}");
    }

    #[test]
    fn bad_pixels_have_columns_and_do_not_overlap() {
        for seed in 0..10 {
            let (hot, cold) = bad_pixels(256, 200, seed, 30, 20);
            assert_eq!(
                (hot.clone(), cold.clone()),
                bad_pixels(256, 200, seed, 30, 20)
            );
            let hs: std::collections::HashSet<_> = hot.iter().collect();
            assert_eq!(hs.len(), hot.len());
            assert!(cold.iter().all(|p| !hs.contains(p)));
            assert!(
                hot.len() >= 30 + 40 && hot.len() <= 30 + 2 * 100,
                "{}",
                hot.len()
            );
            assert!(cold.len() >= 20 + 100);
            // The longest vertical run is a column defect.
            let longest_run = |v: &[(usize, usize)]| {
                let set: std::collections::HashSet<_> = v.iter().collect();
                v.iter()
                    .map(|&(x, y)| (y..200).take_while(|&yy| set.contains(&(x, yy))).count())
                    .max()
                    .unwrap_or(0)
            };
            assert!(longest_run(&hot) >= 40);
            assert!(longest_run(&cold) >= 100);
            assert!(hot.iter().chain(&cold).all(|&(x, y)| x < 256 && y < 200));
        }
    }
}
