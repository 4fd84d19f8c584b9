//! Fringe correction as survey pipelines do it: a fringe frame built from
//! the sky-normalised, source-masked i-band exposures, and a per-exposure
//! fringe amplitude fitted by least squares before it is subtracted.
//!
//! Fringes are interference of the night-sky emission lines in the thinned
//! CCD: their pattern is fixed on the detector, their amplitude follows the
//! line emission, which changes from exposure to exposure (moonlight, time of
//! night). Subtracting one fixed frame therefore leaves fringes wherever the
//! sky differs from the frames it was made from, and removing the sky with a
//! small box filter (what this pipeline once did) distorts the pattern and
//! prints a box around every bright star. Here the sky is the clipped mesh
//! background the source extractor uses (cells much larger than a fringe),
//! sources are masked before the median, and the amplitude is fitted per
//! exposure (IRAF `rmfringe`, THELI and Astro-WISE do the same; the scale is
//! recorded as `FRNGSCL`).

use super::image_math::{
    box_smooth, combine_median, combine_median_of_at_least, median, robust_stats,
};
use super::surface_fit::{clipped_fit, surface_value};
use crate::imaging::raster::Raster;

/// Blocks whose medians the sky surface is fitted to, pixels.
const SKY_BLOCK: usize = 32;

/// Detection threshold of the source mask, in noise sigmas of a 3×3 mean.
const MASK_SIGMA: f32 = 4.0;

/// How far the source mask grows around what it detects, pixels: the faint
/// wings of stars lie below the threshold.
const MASK_GROW: usize = 8;

/// A flat-fielded exposure with its sky removed.
pub(super) struct SkyResidual {
    /// The data minus the mesh background: fringes, sources and noise.
    pub(super) residual: Raster<f32>,
    /// Median sky level, ADU: what the fringe amplitude scales with.
    pub(super) sky: f32,
    /// Pixel noise, ADU.
    pub(super) rms: f32,
}

impl SkyResidual {
    /// Removes the sky of a flat-fielded (and bad-pixel-masked) exposure.
    pub(super) fn of(img: &Raster<f32>) -> Self {
        Self::under(img, None)
    }

    /// Removes the sky of an exposure, measured once `scale` × `fringe` is
    /// taken out (the pixel noise too: the fringes are brighter than it).
    ///
    /// The sky is a quadratic surface over the chip, not the source
    /// extractor's 64-px mesh: a mesh follows the broadest fringes, which
    /// then go into the sky and never into the fringe frame, and come back
    /// as blotches in every coadd.
    fn under(img: &Raster<f32>, fringe: Option<(&Raster<f32>, f32)>) -> Self {
        let defringed = match fringe {
            Some((f, k)) => without_fringes(img, f, k),
            None => img.clone(),
        };
        let level = sky_surface(&defringed);
        let mut sky: Vec<f32> = level.data.clone();
        let sky = median(&mut sky);
        let minus = |a: &Raster<f32>| {
            let data = a.data.iter().zip(&level.data).map(|(v, b)| v - b).collect();
            Raster::from_vec(a.width, a.height, data)
        };
        let (_, rms) = robust_stats(&minus(&defringed));
        Self {
            residual: minus(img),
            sky,
            rms,
        }
    }

    /// The fringe amplitude of this exposure in units of `fringe`: the
    /// least-squares scale over the sky pixels, sources masked once the
    /// fringes are removed (they are brighter than the noise, so a mask made
    /// before would follow their crests).
    ///
    /// One bright star outweighs the whole sky in Σ r·f (10⁷ ADU against
    /// 10⁸ of Σ f² on a small chip), so the first estimate already leaves
    /// out what stands 5σ above the residual's own spread (fringes and
    /// noise): bright sources, never fringe crests. Clipping around a model
    /// instead would pull a poor first scale towards itself.
    pub(super) fn fringe_scale(&self, fringe: &Raster<f32>) -> f32 {
        let (centre, spread) = robust_stats(&self.residual);
        let bright = grown_mask(&self.residual, centre + 5.0 * spread / 3.0);
        let first = least_squares_scale(&self.residual, fringe, |p, _| !bright[p]);
        let mask = self.source_mask(fringe, first);
        least_squares_scale(&self.residual, fringe, |p, _| !mask[p])
    }

    /// The residual divided by the sky level, with the sources found after
    /// removing `scale` × `fringe` set to NaN (none without a fringe
    /// estimate: the fringe crests would be masked with the sources): one
    /// input of the median that makes a fringe frame.
    pub(super) fn normalised_without_sources(
        &self,
        fringe: Option<(&Raster<f32>, f32)>,
    ) -> Raster<f32> {
        let mask = match fringe {
            Some((f, scale)) => self.source_mask(f, scale),
            None => vec![false; self.residual.data.len()],
        };
        let data = self
            .residual
            .data
            .iter()
            .zip(&mask)
            .map(|(v, m)| if *m { f32::NAN } else { v / self.sky })
            .collect();
        Raster::from_vec(self.residual.width, self.residual.height, data)
    }

    /// Pixels of sources (and their grown surroundings) once the fringes are
    /// removed: a 3×3 mean above [`MASK_SIGMA`], grown by [`MASK_GROW`].
    fn source_mask(&self, fringe: &Raster<f32>, scale: f32) -> Vec<bool> {
        let clean = without_fringes(&self.residual, fringe, scale);
        // A 3×3 mean has a third of the pixel noise.
        grown_mask(&clean, MASK_SIGMA * self.rms / 3.0)
    }
}

/// Pixels whose 3×3 mean exceeds `limit`, grown by [`MASK_GROW`].
fn grown_mask(img: &Raster<f32>, limit: f32) -> Vec<bool> {
    let smooth = box_smooth(img, 1);
    let seeds = Raster::from_vec(
        img.width,
        img.height,
        smooth
            .data
            .iter()
            .map(|v| if *v > limit { 1.0f32 } else { 0.0 })
            .collect(),
    );
    box_smooth(&seeds, MASK_GROW)
        .data
        .iter()
        .map(|v| *v > 0.0)
        .collect()
}

/// The sky of a flat-fielded exposure: a quadratic surface fitted, with
/// clipping, to the medians of [`SKY_BLOCK`]-pixel blocks (a block's median
/// shrugs off its stars; clipping drops the blocks a bright star or a
/// masked column still pulls). A flat sky when too few blocks are usable.
fn sky_surface(img: &Raster<f32>) -> Raster<f32> {
    let (w, h) = (img.width, img.height);
    let (nx, ny) = ((w / SKY_BLOCK).max(1), (h / SKY_BLOCK).max(1));
    let norm = |p: f64, n: usize| 2.0 * (p + 0.5) / n as f64 - 1.0;
    let mut points = Vec::new();
    let mut buf = Vec::new();
    for j in 0..ny {
        for i in 0..nx {
            let (x0, x1) = (i * w / nx, (i + 1) * w / nx);
            let (y0, y1) = (j * h / ny, (j + 1) * h / ny);
            buf.clear();
            for y in y0..y1 {
                buf.extend(img.row(y)[x0..x1].iter().copied().filter(|v| v.is_finite()));
            }
            if buf.len() * 2 >= (x1 - x0) * (y1 - y0) {
                let centre = |a: usize, b: usize| (a + b - 1) as f64 / 2.0;
                let m = f64::from(median(&mut buf));
                points.push((norm(centre(x0, x1), w), norm(centre(y0, y1), h), m));
            }
        }
    }
    let fit = match points.len() {
        n if n >= 12 => clipped_fit(&points, 2).map(|c| (2, c)),
        n if n >= 3 => clipped_fit(&points, 1).map(|c| (1, c)),
        _ => None,
    };
    let (order, coeffs) = fit.unwrap_or_else(|| {
        let mut all: Vec<f32> = img.data.iter().copied().filter(|v| v.is_finite()).collect();
        (0, vec![f64::from(median(&mut all))])
    });
    let mut level = Raster::filled(w, h, 0.0f32);
    for y in 0..h {
        let v = norm(y as f64, h);
        for x in 0..w {
            level.set(
                x,
                y,
                surface_value(norm(x as f64, w), v, order, &coeffs) as f32,
            );
        }
    }
    level
}

/// `img` − `scale` × `fringe`.
fn without_fringes(img: &Raster<f32>, fringe: &Raster<f32>, scale: f32) -> Raster<f32> {
    let data = img
        .data
        .iter()
        .zip(&fringe.data)
        .map(|(v, f)| v - scale * f)
        .collect();
    Raster::from_vec(img.width, img.height, data)
}

/// The fringe amplitude of a flat-fielded exposure in units of `fringe`,
/// fitted twice: the second time against the sky measured without the
/// first fit's fringes.
pub(super) fn fitted_scale(img: &Raster<f32>, fringe: &Raster<f32>) -> f32 {
    let first = SkyResidual::of(img).fringe_scale(fringe);
    SkyResidual::under(img, Some((fringe, first))).fringe_scale(fringe)
}

/// Σ r·f / Σ f² over the finite pixels `keep` accepts, leaving out where
/// the fringe frame itself stands out (more than 5σ from its median: a
/// source a median of few exposures kept, whose f² would decide the fit
/// alone); 0 when nothing is left (no fringe to remove rather than a guess).
fn least_squares_scale(
    residual: &Raster<f32>,
    fringe: &Raster<f32>,
    keep: impl Fn(usize, f32) -> bool,
) -> f32 {
    let (centre, spread) = robust_stats(fringe);
    let (mut rf, mut ff) = (0f64, 0f64);
    for (p, (r, f)) in residual.data.iter().zip(&fringe.data).enumerate() {
        if r.is_finite() && f.is_finite() && (f - centre).abs() <= 5.0 * spread && keep(p, *r) {
            rf += f64::from(*r) * f64::from(*f);
            ff += f64::from(*f) * f64::from(*f);
        }
    }
    if ff > 0.0 { (rf / ff) as f32 } else { 0.0 }
}

/// The fringe frame of one chip from its flat-fielded, bad-pixel-masked
/// i-band exposures, in ADU at their median sky level (so a typical
/// exposure's fitted scale is near 1).
///
/// The first pattern is the median of the sky-normalised residuals, without
/// a source mask (the fringes are brighter than the noise, so a mask would
/// take their crests; the median over dithered exposures removes most
/// sources). Twice more, that pattern is fitted to each exposure, the sky
/// re-measured and the sources masked without it, and the median taken
/// again. Pixels no exposure saw unmasked are 0 (nothing is subtracted).
pub(super) fn fringe_frame(exposures: &[Raster<f32>]) -> Raster<f32> {
    let skies: Vec<f32> = exposures.iter().map(|e| SkyResidual::of(e).sky).collect();
    let plain: Vec<Raster<f32>> = exposures
        .iter()
        .map(|e| SkyResidual::of(e).normalised_without_sources(None))
        .collect();
    let mut fringe = finite_or_zero(combine_median(&plain));
    drop(plain);
    for _ in 0..2 {
        let masked: Vec<Raster<f32>> = exposures
            .iter()
            .map(|e| {
                let k = fitted_scale(e, &fringe);
                SkyResidual::under(e, Some((&fringe, k)))
                    .normalised_without_sources(Some((&fringe, k)))
            })
            .collect();
        // Where more than half the exposures are masked the previous
        // pattern stands: a median of the rest would be their noise, and a
        // hole would leave the fringes there untouched.
        let next = combine_median_of_at_least(&masked, exposures.len().div_ceil(2));
        fringe = Raster::from_vec(
            next.width,
            next.height,
            next.data
                .iter()
                .zip(&fringe.data)
                .map(|(n, f)| if n.is_finite() { *n } else { *f })
                .collect(),
        );
    }
    let mut skies = skies;
    let sky = median(&mut skies);
    fringe.map(|v| v * sky)
}

fn finite_or_zero(img: Raster<f32>) -> Raster<f32> {
    img.map(|v| if v.is_finite() { v } else { 0.0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::sky_simulator::fringe_pattern;
    use rand::{Rng, SeedableRng};

    /// The pixel noise of [`exposures`]: four uniform deviates times 55.
    const NOISE: f32 = 31.75;

    /// Exposures with the same fringe pattern at different amplitudes, a
    /// sloping sky, noise, and bright stars at dithered positions.
    fn exposures(n: usize) -> (Raster<f32>, Vec<(Raster<f32>, f32)>) {
        let size = 192;
        let pattern = fringe_pattern(size, size, 0.0, 0.0, 7);
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut out = Vec::new();
        for k in 0..n {
            let sky = 1500.0 + 300.0 * k as f32;
            let amp = 0.035 * sky;
            let mut img = Raster::filled(size, size, 0.0f32);
            for y in 0..size {
                for x in 0..size {
                    let noise: f32 = (0..4).map(|_| rng.random::<f32>() - 0.5).sum::<f32>() * 55.0;
                    let v = sky * (1.0 + 0.0002 * x as f32) + amp * pattern.get(x, y) + noise;
                    img.set(x, y, v);
                }
            }
            // A bright star per exposure, moved by the dither; in the last
            // one a star bright enough to outweigh the sky in Σ r·f (once
            // the fit of a real frame gave 0.04 for 0.98).
            let (sx, sy) = (60 + 25 * k, 90 + 11 * k);
            let peak = if k + 1 == n { 2.0e6 } else { 4.0e4 };
            for y in sy - 30..sy + 30 {
                for x in sx - 30..sx + 30 {
                    let r2 = (x.abs_diff(sx).pow(2) + y.abs_diff(sy).pow(2)) as f32;
                    let v = img.get(x, y) + peak / (1.0 + r2 / 9.0).powf(2.5);
                    img.set(x, y, v);
                }
            }
            out.push((img, amp));
        }
        (pattern, out)
    }

    /// The rms of the fringes left in an exposure of fringe amplitude `amp`
    /// once `scale` × `fringe` is subtracted and its sky (a quadratic surface,
    /// which no fringe frame can tell from sky) removed, in 8×8-pixel block
    /// means: the fringe frame's own noise (a median of five noisy
    /// exposures) averages down there, a wrong pattern or scale does not.
    fn fringes_left(pattern: &Raster<f32>, amp: f32, fringe: &Raster<f32>, scale: f32) -> f32 {
        let left = Raster::from_vec(
            pattern.width,
            pattern.height,
            pattern
                .data
                .iter()
                .zip(&fringe.data)
                .map(|(p, f)| amp * p - scale * f)
                .collect(),
        );
        let sky = sky_surface(&left);
        let (nx, ny) = (left.width / 8, left.height / 8);
        let mut sum2 = 0f64;
        for j in 0..ny {
            for i in 0..nx {
                let mut block = 0f64;
                for y in j * 8..j * 8 + 8 {
                    for x in i * 8..i * 8 + 8 {
                        block += f64::from(left.get(x, y) - sky.get(x, y));
                    }
                }
                sum2 += (block / 64.0).powi(2);
            }
        }
        (sum2 / (nx * ny) as f64).sqrt() as f32
    }

    #[test]
    fn the_fitted_fringes_leave_a_residual_below_the_noise() {
        let (pattern, exps) = exposures(5);
        let images: Vec<Raster<f32>> = exps.iter().map(|(img, _)| img.clone()).collect();
        let fringe = fringe_frame(&images);
        for (img, amp) in &exps {
            let s = fitted_scale(img, &fringe);
            let rms = fringes_left(&pattern, *amp, &fringe, s);
            // The fringe amplitude is 52–94 ADU, the pixel noise 32 ADU, the
            // fringe frame's own noise in these block means about 0.07 of it:
            // what is left must be a small fraction of the noise, also in
            // the exposure with the very bright star (which once gave a
            // scale of 0.04 for 0.98 in the sample survey).
            assert!(
                rms < 0.15 * NOISE,
                "amplitude {amp}: fringe residual rms {rms}, scale {s}"
            );
        }
    }

    #[test]
    fn a_fixed_frame_without_fitting_would_leave_fringes() {
        // The faintest sky corrected with scale 1 (the old pipeline) keeps
        // fringes well above the bound of the test above.
        let (pattern, exps) = exposures(5);
        let images: Vec<Raster<f32>> = exps.iter().map(|(img, _)| img.clone()).collect();
        let fringe = fringe_frame(&images);
        let rms = fringes_left(&pattern, exps[0].1, &fringe, 1.0);
        assert!(rms > 0.15 * NOISE, "unscaled residual only {rms}");
    }
}
