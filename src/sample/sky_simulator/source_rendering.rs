//! Source rendering: the light of truth sources through the PSF onto a
//! chip's pixel grid.
//!
//! The survey's photometry and astrometry are only checkable if every
//! rendered source carries exactly its catalogued flux at exactly its
//! catalogued position. Stars are therefore pixel-integrated Moffat profiles
//! normalised over their stamps, and galaxies are Sérsic profiles written as
//! Gaussian mixtures, convolved analytically with a Gaussian-mixture fit to
//! the PSF (no FFTs, no resampling), which also keeps hundreds of galaxies
//! per frame cheap.

use super::BANDS;
use super::truth_catalogue::{SourceKind, TruthSource};
use crate::imaging::raster::Raster;
use std::f64::consts::PI;

/// The point-spread function: an elliptical Moffat profile.
///
/// `fwhm_px` is the geometric mean of the major- and minor-axis FWHM, so the
/// PSF area does not change with ellipticity; `ellipticity` is 1 − b/a;
/// `pa_deg` is the major-axis angle counter-clockwise from the +x pixel axis
/// (a detector-frame angle, unlike a galaxy's PA on the sky).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Psf {
    /// Geometric-mean full width at half maximum, pixels.
    pub fwhm_px: f64,
    /// Moffat β (wing steepness); 2.5–4.5 is typical of ground-based seeing.
    pub beta: f64,
    /// 1 − b/a of the PSF, 0 for a round PSF.
    pub ellipticity: f64,
    /// Major-axis angle, degrees counter-clockwise from +x.
    pub pa_deg: f64,
}

/// Surface brightness (per pixel²) below which a stamp is not extended, ADU.
/// Far below any sky noise, so the cut never shows.
const STAMP_EPS: f64 = 0.02;

/// Gaussian components fainter than this at their peak are dropped, ADU.
const GAUSS_EPS: f64 = 5e-3;

/// Exponential (n = 1) profile as a mixture of Gaussians: amplitudes (summing
/// to 1) and variances in units of r_eff². Fitted for this module to the
/// SDSS-style exponential softened to zero between 3 and 4 r_eff, minimising
/// the area-weighted squared residual (Hogg & Lang 2013 style; good to 0.5 %
/// from 0.02 to 2 r_eff).
const EXP_MOG: [(f64, f64); 6] = [
    (1.995352e-4, 1.201068e-3),
    (2.616438e-3, 8.846239e-3),
    (1.897379e-2, 3.914877e-2),
    (1.001884e-1, 1.399814e-1),
    (3.685338e-1, 4.609691e-1),
    (5.094881e-1, 1.501605),
];

/// De Vaucouleurs (n = 4) profile as a mixture of Gaussians, like
/// [`EXP_MOG`] but fitted with flux weighting (residual²/profile) so the
/// cusp does not swallow the fit; the profile is truncated between 7 and 8
/// r_eff. Good to ~2 % from 0.02 to 4 r_eff.
const DEV_MOG: [(f64, f64); 8] = [
    (1.934970e-3, 3.015462e-5),
    (1.090186e-2, 4.056654e-4),
    (3.546884e-2, 2.978815e-3),
    (8.197369e-2, 1.637083e-2),
    (1.451838e-1, 7.583500e-2),
    (2.065664e-1, 3.187205e-1),
    (2.525081e-1, 1.356694),
    (2.654623e-1, 7.944101),
];

/// Three-Gaussian fits to a round Moffat of unit FWHM for a ladder of β,
/// fitted out to 4 FWHM with area weighting: (β, amplitudes, variances in
/// FWHM²). The core is right to 0.5 %; the Gaussians cannot follow the
/// power-law wing beyond ~3 FWHM, which matters little for extended galaxies.
const MOFFAT_MOG: [(f64, [f64; 3], [f64; 3]); 10] = [
    (
        1.8,
        [0.1917386, 0.4802335, 0.3280280],
        [0.1079622, 0.3880662, 2.095892],
    ),
    (
        2.0,
        [0.2037661, 0.5016973, 0.2945365],
        [0.1085783, 0.3648991, 1.801783],
    ),
    (
        2.5,
        [0.2188645, 0.5368507, 0.2442848],
        [0.1092491, 0.3194958, 1.299865],
    ),
    (
        3.0,
        [0.2228012, 0.5582981, 0.2189007],
        [0.1097648, 0.2892043, 1.012890],
    ),
    (
        3.5,
        [0.2230442, 0.5732537, 0.2037021],
        [0.1105472, 0.2691411, 0.8408350],
    ),
    (
        4.0,
        [0.2220631, 0.5844554, 0.1934815],
        [0.1115194, 0.2552192, 0.7291201],
    ),
    (
        5.0,
        [0.2190389, 0.6002416, 0.1807195],
        [0.1136561, 0.2373110, 0.5941855],
    ),
    (
        6.0,
        [0.2158455, 0.6108833, 0.1732712],
        [0.1157672, 0.2263099, 0.5159506],
    ),
    (
        8.0,
        [0.2102822, 0.6243728, 0.1653450],
        [0.1195583, 0.2135014, 0.4288766],
    ),
    (
        12.0,
        [0.2025045, 0.6381278, 0.1593677],
        [0.1254593, 0.2016343, 0.3510745],
    ),
];

/// The Moffat mixture for any β, interpolated linearly in β between the
/// fitted ladder (clamped at its ends); amplitudes renormalised to 1.
fn moffat_mixture(beta: f64) -> [(f64, f64); 3] {
    let b = beta.clamp(MOFFAT_MOG[0].0, MOFFAT_MOG[MOFFAT_MOG.len() - 1].0);
    let mut k = 0;
    while k + 2 < MOFFAT_MOG.len() && b > MOFFAT_MOG[k + 1].0 {
        k += 1;
    }
    let (b0, a0, v0) = MOFFAT_MOG[k];
    let (b1, a1, v1) = MOFFAT_MOG[k + 1];
    let t = (b - b0) / (b1 - b0);
    let mut out = [(0.0, 0.0); 3];
    let mut sum = 0.0;
    for j in 0..3 {
        let a = a0[j] + t * (a1[j] - a0[j]);
        out[j] = (a, v0[j] + t * (v1[j] - v0[j]));
        sum += a;
    }
    for c in &mut out {
        c.0 /= sum;
    }
    out
}

/// A 2-D covariance (pixels²).
#[derive(Debug, Clone, Copy)]
struct Cov {
    xx: f64,
    xy: f64,
    yy: f64,
}

impl Cov {
    /// Covariance of an ellipse with the given variances along its major
    /// and minor axes, the major axis at `angle` radians CCW from +x.
    fn rotated(var_major: f64, var_minor: f64, angle: f64) -> Self {
        let (s, c) = angle.sin_cos();
        Cov {
            xx: var_major * c * c + var_minor * s * s,
            xy: (var_major - var_minor) * c * s,
            yy: var_major * s * s + var_minor * c * c,
        }
    }

    fn add(self, o: Cov) -> Cov {
        Cov {
            xx: self.xx + o.xx,
            xy: self.xy + o.xy,
            yy: self.yy + o.yy,
        }
    }
}

/// Everything about the Moffat PSF that does not depend on the source.
struct MoffatModel {
    beta: f64,
    /// Inverse-shape quadratic form: Q = qa·dx² + 2·qb·dx·dy + qc·dy², in
    /// units of α², so the profile is (1 + Q)^−β.
    qa: f64,
    qb: f64,
    qc: f64,
    /// Value of the unit-flux profile at its centre, per pixel².
    peak: f64,
    alpha_major: f64,
    /// Sub-samples per axis in the core, where the profile curves most.
    n_core: usize,
    r_min: f64,
    r_max: f64,
    /// The PSF as Gaussians, for convolving galaxies.
    gaussians: [(f64, Cov); 3],
    /// (1 + t²)^−β tabulated in the Mahalanobis radius t = √Q at steps of
    /// 1/[`LUT_STEPS_PER_UNIT`]: `powf` dominated the cost of rendering stars.
    lut: Vec<f64>,
}

/// Table steps per unit of Mahalanobis radius; linear interpolation on this
/// grid is good to 1e-4 of the local value.
const LUT_STEPS_PER_UNIT: f64 = 128.0;
/// Table extent in Mahalanobis radius; beyond it `powf` is called directly.
const LUT_MAX_T: f64 = 12.0;

impl MoffatModel {
    fn new(psf: &Psf) -> Self {
        let beta = psf.beta.max(1.05);
        let fwhm = psf.fwhm_px.max(0.3);
        let q = (1.0 - psf.ellipticity).clamp(0.05, 1.0);
        let alpha = fwhm / (2.0 * (2f64.powf(1.0 / beta) - 1.0).sqrt());
        let alpha_major = alpha / q.sqrt();
        let alpha_minor = alpha * q.sqrt();
        let phi = psf.pa_deg.to_radians();
        let inv = Cov::rotated(
            1.0 / (alpha_major * alpha_major),
            1.0 / (alpha_minor * alpha_minor),
            phi,
        );
        let n_core = if alpha_minor >= 1.5 {
            5
        } else if alpha_minor >= 0.8 {
            7
        } else {
            9
        };
        let fwhm_major = fwhm / q.sqrt();
        let mix = moffat_mixture(beta);
        let gaussians = mix.map(|(a, v)| {
            let var = v * fwhm * fwhm;
            (a, Cov::rotated(var / q, var * q, phi))
        });
        MoffatModel {
            beta,
            qa: inv.xx,
            qb: inv.xy,
            qc: inv.yy,
            peak: (beta - 1.0) / (PI * alpha_major * alpha_minor),
            alpha_major,
            n_core,
            r_min: 3.0 * fwhm_major + 2.0,
            // Written with min/max rather than clamp: for absurd FWHMs the
            // bounds cross, and then the wider one should win, not a panic.
            r_max: (60.0 * fwhm_major)
                .min(400.0)
                .max(6.0 * fwhm_major)
                .max(3.0 * fwhm_major + 2.0),
            gaussians,
            lut: (0..=(LUT_MAX_T * LUT_STEPS_PER_UNIT) as usize + 1)
                .map(|i| {
                    let t = i as f64 / LUT_STEPS_PER_UNIT;
                    (1.0 + t * t).powf(-beta)
                })
                .collect(),
        }
    }

    /// The unnormalised profile (1 + Q)^−β.
    #[inline]
    fn profile(&self, q: f64) -> f64 {
        let u = q.sqrt() * LUT_STEPS_PER_UNIT;
        let i = u as usize;
        if i + 1 < self.lut.len() {
            let f = u - i as f64;
            self.lut[i] + f * (self.lut[i + 1] - self.lut[i])
        } else {
            (1.0 + q).powf(-self.beta)
        }
    }

    #[inline]
    fn quad(&self, dx: f64, dy: f64) -> f64 {
        self.qa * dx * dx + 2.0 * self.qb * dx * dy + self.qc * dy * dy
    }

    /// Unnormalised profile integrated over the pixel whose centre is
    /// (dx, dy) from the source, by midpoint sub-sampling where it matters.
    #[inline]
    fn pixel(&self, dx: f64, dy: f64) -> f64 {
        let q0 = self.quad(dx, dy);
        let n = if q0 < 1.0 {
            self.n_core
        } else if q0 < 6.25 {
            3
        } else {
            1
        };
        if n == 1 {
            return self.profile(q0);
        }
        let step = 1.0 / n as f64;
        let off0 = -0.5 + 0.5 * step;
        let mut s = 0.0;
        for j in 0..n {
            let oy = dy + off0 + j as f64 * step;
            for i in 0..n {
                let ox = dx + off0 + i as f64 * step;
                s += self.profile(self.quad(ox, oy));
            }
        }
        s * step * step
    }

    /// Stamp radius in pixels: out to where the profile drops below
    /// [`STAMP_EPS`], so bright stars show their wings.
    fn radius(&self, flux: f64) -> f64 {
        let peak = flux * self.peak;
        let r = if peak > STAMP_EPS {
            self.alpha_major
                * ((peak / STAMP_EPS).powf(1.0 / self.beta) - 1.0)
                    .max(0.0)
                    .sqrt()
        } else {
            0.0
        };
        r.clamp(self.r_min, self.r_max)
    }
}

/// Whether a stamp of radius `r` centred at zero-based (xc, yc) lies wholly
/// off the image: the cheap test that lets sources off the chip cost
/// nothing.
fn misses(img: &Raster<f32>, xc: f64, yc: f64, r: f64) -> bool {
    let (w, h) = (img.width as f64, img.height as f64);
    xc + r < -0.5 || xc - r > w - 0.5 || yc + r < -0.5 || yc - r > h - 0.5
}

/// Adds a Moffat star of `flux` ADU centred at zero-based (xc, yc).
///
/// The stamp is a circle, so truncation does not pull the centroid, and it is
/// normalised over its whole extent (also off the image), so an unclipped
/// star puts exactly `flux` into the image.
fn add_moffat(
    img: &mut Raster<f32>,
    m: &MoffatModel,
    xc: f64,
    yc: f64,
    flux: f64,
    buf: &mut Vec<f64>,
) {
    let r = m.radius(flux);
    if misses(img, xc, yc, r) {
        return;
    }
    let iy0 = (yc - r).ceil() as i64;
    let iy1 = (yc + r).floor() as i64;
    // The stamp's run of pixels in row `iy`: its offset from the centre in
    // y and its first and last column.
    let span = |iy: i64| {
        let dy = iy as f64 - yc;
        let half = (r * r - dy * dy).max(0.0).sqrt();
        (dy, fast_ceil(xc - half), fast_floor(xc + half))
    };
    buf.clear();
    let mut total = 0.0;
    for iy in iy0..=iy1 {
        let (dy, ix0, ix1) = span(iy);
        for ix in ix0..=ix1 {
            let v = m.pixel(ix as f64 - xc, dy);
            buf.push(v);
            total += v;
        }
    }
    if total <= 0.0 {
        return;
    }
    let scale = flux / total;
    let mut k = 0;
    for iy in iy0..=iy1 {
        let (_, ix0, ix1) = span(iy);
        let n = (ix1 - ix0 + 1).max(0) as usize;
        if iy >= 0 && iy < img.height as i64 {
            let row = &mut img.data[iy as usize * img.width..(iy as usize + 1) * img.width];
            for (j, &v) in buf[k..k + n].iter().enumerate() {
                let ix = ix0 + j as i64;
                if ix >= 0 && (ix as usize) < row.len() {
                    row[ix as usize] += (v * scale) as f32;
                }
            }
        }
        k += n;
    }
}

/// Adds a 2-D Gaussian of `flux` ADU and covariance `cov` centred at
/// zero-based (xc, yc), sampled at pixel centres (the caller folds the pixel
/// response in as a variance of 1/12), cut at 5σ or where it falls below
/// [`GAUSS_EPS`].
fn add_gaussian(img: &mut Raster<f32>, xc: f64, yc: f64, flux: f64, cov: Cov) {
    let det = cov.xx * cov.yy - cov.xy * cov.xy;
    if det <= 0.0 || flux <= 0.0 {
        return;
    }
    let norm = flux / (2.0 * PI * det.sqrt());
    if norm < GAUSS_EPS {
        return;
    }
    let (a, b, c) = (cov.yy / det, -cov.xy / det, cov.xx / det);
    let m2 = (2.0 * (norm / GAUSS_EPS).ln()).min(25.0);
    let hy = (m2 * cov.yy).sqrt();
    let iy0 = ((yc - hy).ceil() as i64).max(0);
    let iy1 = ((yc + hy).floor() as i64).min(img.height as i64 - 1);
    if iy0 > iy1 {
        return;
    }
    let wmax = img.width as i64 - 1;
    // Divisions and libm rounding calls in the per-row set-up showed up
    // in profiles, because most components are only a few rows tall.
    let (inv_a, inv_syy) = (1.0 / a, 1.0 / cov.yy);
    // The exponent is quadratic in x and in y, so neighbouring values differ
    // by factors that themselves change by constants: walking from an anchor
    // column near the centre costs two multiplications per pixel and no exp
    // at all, which is what makes hundreds of galaxies per frame cheap.
    let xa = xc.round();
    let ia = xa as i64;
    let dxa = xa - xc;
    let k = (-a).exp();
    let exponent = |dx: f64, dy: f64| -0.5 * (a * dx * dx + 2.0 * b * dx * dy + c * dy * dy);
    let row_start = |dy: f64| {
        (
            norm * exponent(dxa, dy).exp(),
            (-0.5 * (a * (2.0 * dxa + 1.0) + 2.0 * b * dy)).exp(),
        )
    };
    // Along the anchor column a very elongated, tilted ellipse reaches
    // exponents that underflow to zero; then each row starts afresh.
    let recur = c * cov.yy < 10.0;
    let dy0 = iy0 as f64 - yc;
    let (mut ga, mut ra) = row_start(dy0);
    let mut sy = (-0.5 * (2.0 * b * dxa + c * (2.0 * dy0 + 1.0))).exp();
    let (kb, kc) = ((-b).exp(), (-c).exp());
    for iy in iy0..=iy1 {
        let dy = iy as f64 - yc;
        if !recur {
            (ga, ra) = row_start(dy);
        }
        let disc = a * (m2 - dy * dy * inv_syy);
        if disc >= 0.0 {
            let sq = disc.sqrt();
            let ix0 = fast_ceil(xc + (-b * dy - sq) * inv_a).max(0);
            let ix1 = fast_floor(xc + (-b * dy + sq) * inv_a).min(wmax);
            if ix0 <= ix1 {
                let row = &mut img.data[iy as usize * img.width..(iy as usize + 1) * img.width];
                // Rightwards from the anchor (skipping to ix0 if the anchor
                // lies left of the visible run), then leftwards from it.
                let (mut g, mut r) = (ga, ra);
                let mut ix = ia;
                while ix < ix0 {
                    g *= r;
                    r *= k;
                    ix += 1;
                }
                if ix <= ix1 {
                    geometric_run(&mut row[ix as usize..=ix1 as usize], g, r, k);
                }
                let (mut g, mut l) = (ga, k / ra);
                let mut ix = ia;
                while ix > ix1 + 1 {
                    g *= l;
                    l *= k;
                    ix -= 1;
                }
                if ix > ix0 {
                    // Walking left, the run starts one pixel left of `ix`.
                    let run = &mut row[ix0 as usize..ix as usize];
                    geometric_run_rev(run, g * l, l * k, k);
                }
            }
        }
        ga *= sy;
        sy *= kc;
        ra *= kb;
    }
}

/// ⌈v⌉ for values well inside the i64 range, without a libm call (the
/// baseline x86-64 target has no rounding instruction).
#[inline]
fn fast_ceil(v: f64) -> i64 {
    let t = v as i64;
    if (t as f64) < v { t + 1 } else { t }
}

/// ⌊v⌋, like [`fast_ceil`].
#[inline]
fn fast_floor(v: f64) -> i64 {
    let t = v as i64;
    if (t as f64) > v { t - 1 } else { t }
}

/// The values g₀, g₀r₀, g₀r₀·r₀k, … of a Gaussian along a row, whose
/// successive ratios shrink by the constant `k`, as two interleaved chains
/// (even and odd steps): that halves the multiply latency that bounds the
/// walk.
struct GeometricPairs {
    ge: f64,
    go: f64,
    re: f64,
    ro: f64,
    k4: f64,
}

impl GeometricPairs {
    #[inline]
    fn new(g0: f64, r0: f64, k: f64) -> Self {
        GeometricPairs {
            ge: g0,
            go: g0 * r0,
            // Ratio over two steps: r(x)·r(x+1) = r(x)²·k, shrinking by k⁴.
            re: r0 * r0 * k,
            ro: r0 * k * r0 * k * k,
            k4: k * k * k * k,
        }
    }

    /// The next two values.
    #[inline]
    fn next_pair(&mut self) -> (f32, f32) {
        let pair = (self.ge as f32, self.go as f32);
        self.ge *= self.re;
        self.go *= self.ro;
        self.re *= self.k4;
        self.ro *= self.k4;
        pair
    }
}

/// Adds the values of [`GeometricPairs`] to `run`, first to last.
#[inline]
fn geometric_run(run: &mut [f32], g0: f64, r0: f64, k: f64) {
    let mut values = GeometricPairs::new(g0, r0, k);
    let mut pairs = run.chunks_exact_mut(2);
    for p in &mut pairs {
        let (even, odd) = values.next_pair();
        p[0] += even;
        p[1] += odd;
    }
    if let [last] = pairs.into_remainder() {
        *last += values.ge as f32;
    }
}

/// Like [`geometric_run`] but starting at the last element of `run` and
/// walking towards its first.
#[inline]
fn geometric_run_rev(run: &mut [f32], g0: f64, l0: f64, k: f64) {
    let mut values = GeometricPairs::new(g0, l0, k);
    let mut pairs = run.rchunks_exact_mut(2);
    for p in &mut pairs {
        let (even, odd) = values.next_pair();
        p[1] += even;
        p[0] += odd;
    }
    if let [first] = pairs.into_remainder() {
        *first += values.ge as f32;
    }
}

/// The image-plane direction (radians CCW from +x) of a sky position angle
/// `pa_deg` (east of north), given the north angle convention of this module.
fn sky_pa_to_image_angle(pa_deg: f64, north_angle_deg: f64) -> f64 {
    (90.0 + north_angle_deg + pa_deg).to_radians()
}

/// Adds a PSF-convolved Sérsic galaxy: each Sérsic Gaussian convolved with
/// each PSF Gaussian and with the pixel (variances add), rendered analytically.
#[allow(clippy::too_many_arguments)]
fn add_galaxy(
    img: &mut Raster<f32>,
    m: &MoffatModel,
    xc: f64,
    yc: f64,
    flux: f64,
    re_px: f64,
    axis_ratio: f64,
    angle: f64,
    sersic_n: f64,
) {
    let mix: &[(f64, f64)] = if sersic_n >= 2.5 { &DEV_MOG } else { &EXP_MOG };
    let q = axis_ratio.clamp(0.05, 1.0);
    let pixel = Cov {
        xx: 1.0 / 12.0,
        xy: 0.0,
        yy: 1.0 / 12.0,
    };
    // Cheap rejection before building all components: the widest component
    // bounds the footprint.
    let widest = mix.iter().map(|c| c.1).fold(0.0, f64::max) * re_px * re_px
        + m.gaussians
            .iter()
            .map(|g| g.1.xx.max(g.1.yy))
            .fold(0.0, f64::max)
        + 1.0 / 12.0;
    if misses(img, xc, yc, 5.0 * widest.sqrt()) {
        return;
    }
    // Sérsic components much narrower than the PSF core are
    // indistinguishable after convolution: merge them into one Gaussian with
    // the same flux and second moments, which halves the work for the many
    // small faint galaxies.
    let psf_min_var = m
        .gaussians
        .iter()
        .map(|g| {
            let tr = g.1.xx + g.1.yy;
            let det = g.1.xx * g.1.yy - g.1.xy * g.1.xy;
            0.5 * tr - (0.25 * tr * tr - det).max(0.0).sqrt()
        })
        .fold(f64::INFINITY, f64::min);
    let mut merged_amp = 0.0;
    let mut merged_var = 0.0;
    let mut comps: Vec<(f64, f64)> = Vec::with_capacity(mix.len());
    for &(amp, var) in mix {
        let v = var * re_px * re_px;
        if v < MERGE_FRACTION * psf_min_var {
            merged_amp += amp;
            merged_var += amp * v;
        } else {
            comps.push((amp, v));
        }
    }
    if merged_amp > 0.0 {
        comps.push((merged_amp, merged_var / merged_amp));
    }
    for &(amp, v) in &comps {
        let gal = Cov::rotated(v, v * q * q, angle).add(pixel);
        for &(pamp, pcov) in &m.gaussians {
            add_gaussian(img, xc, yc, flux * amp * pamp, gal.add(pcov));
        }
    }
}

/// Sérsic components with variance below this fraction of the narrowest PSF
/// Gaussian's are merged (the profile changes by well under 1 %).
const MERGE_FRACTION: f64 = 0.15;

/// Adds the light of `sources` in `band` at time `mjd` to `img` (ADU).
///
/// * `mjd` is the mid-exposure time: variables are evaluated then, and a
///   mover is drawn as a trail from `mjd − exptime/2` to `mjd + exptime/2`
///   when it moves by more than half a pixel.
/// * A source of magnitude m contributes `exptime · 10^(−0.4 (m − zeropoint))`
///   ADU in total (`zeropoint` is the magnitude giving 1 ADU/s).
/// * `sky_to_pix` maps (RA, Dec) in degrees to FITS 1-based pixel coordinates
///   (pixel `(ix, iy)` has its centre at `(ix + 1, iy + 1)`); sources mapping
///   to non-finite coordinates are skipped.
/// * `north_angle_deg` is the position angle of north on the image, from +y
///   towards −x (counter-clockwise as DS9 shows it); east is 90° further
///   counter-clockwise (normal parity). A galaxy with PA p therefore has its
///   major axis `90° + north_angle + p` counter-clockwise from +x.
/// * `pixel_scale_arcsec` converts galaxy radii from arcsec to pixels.
///
/// Stars, variables and movers are elliptical Moffat profiles integrated over
/// each pixel (5×5 or finer sub-sampling in the core), on a circular stamp
/// reaching down to 0.02 ADU/pixel (at least 3 FWHM + 2 px, at most 400 px)
/// and normalised over the stamp, so the total flux is exact. Galaxies are
/// Sérsic profiles as mixtures of Gaussians convolved analytically with a
/// three-Gaussian fit to the Moffat PSF and with the pixel; their flux is
/// exact to well below 1 %. Stamps that miss the image cost almost nothing.
///
/// Panics if `band > 2`.
#[allow(clippy::too_many_arguments)]
pub fn render_sources(
    img: &mut Raster<f32>,
    sources: &[TruthSource],
    band: usize,
    mjd: f64,
    exptime: f64,
    zeropoint: f64,
    psf: &Psf,
    pixel_scale_arcsec: f64,
    north_angle_deg: f64,
    sky_to_pix: &dyn Fn(f64, f64) -> (f64, f64),
) {
    assert!(band < BANDS.len(), "band {band} out of range");
    let model = MoffatModel::new(psf);
    let mut buf = Vec::new();
    let finite = |p: (f64, f64)| p.0.is_finite() && p.1.is_finite();
    for src in sources {
        let mag = src.mag_at(band, mjd);
        let flux = exptime * 10f64.powf(-0.4 * (mag - zeropoint));
        if !(flux.is_finite() && flux > 0.0) {
            continue;
        }
        match src.kind {
            SourceKind::Galaxy {
                r_eff_arcsec,
                axis_ratio,
                pa_deg,
                sersic_n,
            } => {
                let p = sky_to_pix(src.ra, src.dec);
                if !finite(p) {
                    continue;
                }
                add_galaxy(
                    img,
                    &model,
                    p.0 - 1.0,
                    p.1 - 1.0,
                    flux,
                    r_eff_arcsec / pixel_scale_arcsec,
                    axis_ratio,
                    sky_pa_to_image_angle(pa_deg, north_angle_deg),
                    sersic_n,
                );
            }
            SourceKind::Mover { .. } => {
                let half = 0.5 * exptime / 86400.0;
                let (ra0, de0) = src.position_at(mjd - half);
                let (ra1, de1) = src.position_at(mjd + half);
                let (p0, p1) = (sky_to_pix(ra0, de0), sky_to_pix(ra1, de1));
                if !finite(p0) || !finite(p1) {
                    continue;
                }
                let len = (p1.0 - p0.0).hypot(p1.1 - p0.1);
                let n = ((len / 0.5).ceil() as usize).clamp(1, 256);
                for k in 0..n {
                    let t = mjd - half + (k as f64 + 0.5) / n as f64 * 2.0 * half;
                    let (ra, dec) = src.position_at(t);
                    let p = sky_to_pix(ra, dec);
                    if finite(p) {
                        add_moffat(img, &model, p.0 - 1.0, p.1 - 1.0, flux / n as f64, &mut buf);
                    }
                }
            }
            SourceKind::Star | SourceKind::Variable { .. } => {
                let p = sky_to_pix(src.ra, src.dec);
                if finite(p) {
                    add_moffat(img, &model, p.0 - 1.0, p.1 - 1.0, flux, &mut buf);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_field::{
        DEC0, MJD, RA0, round_psf, sky_to_tangent, tangent_to_sky, the_mover,
    };
    use super::super::truth_catalogue::truth_catalogue;
    use super::*;

    /// A TAN projection with the module's north-angle convention, centred
    /// on FITS pixel (crpix1, crpix2).
    fn tan_wcs(
        scale_arcsec: f64,
        north_deg: f64,
        crpix: (f64, f64),
    ) -> impl Fn(f64, f64) -> (f64, f64) {
        let s = scale_arcsec / 3600.0;
        let (sn, cs) = north_deg.to_radians().sin_cos();
        move |ra, dec| {
            let (xi, eta) = sky_to_tangent(RA0, DEC0, ra, dec);
            // Inverse of CD = s·[[−cos, −sin], [−sin, cos]] is itself / s.
            let dx = (-cs * xi - sn * eta) / s;
            let dy = (-sn * xi + cs * eta) / s;
            (crpix.0 + dx, crpix.1 + dy)
        }
    }

    fn moments(img: &Raster<f32>) -> (f64, f64, f64, f64, f64, f64) {
        let (mut s, mut sx, mut sy) = (0.0, 0.0, 0.0);
        for iy in 0..img.height {
            for ix in 0..img.width {
                let v = f64::from(img.get(ix, iy));
                s += v;
                sx += v * (ix + 1) as f64;
                sy += v * (iy + 1) as f64;
            }
        }
        let (mx, my) = (sx / s, sy / s);
        let (mut xx, mut xy, mut yy) = (0.0, 0.0, 0.0);
        for iy in 0..img.height {
            for ix in 0..img.width {
                let v = f64::from(img.get(ix, iy));
                let dx = (ix + 1) as f64 - mx;
                let dy = (iy + 1) as f64 - my;
                xx += v * dx * dx;
                xy += v * dx * dy;
                yy += v * dy * dy;
            }
        }
        (s, mx, my, xx / s, xy / s, yy / s)
    }

    /// Renders `sources` in r at [`MJD`], 30 s at zeropoint 28 on a 0.26″/px
    /// camera: the exposure most of these tests look at.
    fn render_r30(
        img: &mut Raster<f32>,
        sources: &[TruthSource],
        psf: &Psf,
        north_deg: f64,
        sky_to_pix: &dyn Fn(f64, f64) -> (f64, f64),
    ) {
        render_sources(
            img, sources, 1, MJD, 30.0, 28.0, psf, 0.26, north_deg, sky_to_pix,
        );
    }

    /// A sky_to_pix that places every source at one fixed pixel position.
    fn fixed_at(x: f64, y: f64) -> impl Fn(f64, f64) -> (f64, f64) {
        move |_, _| (x, y)
    }

    fn star(mag: f64) -> TruthSource {
        TruthSource {
            id: 1,
            ra: RA0,
            dec: DEC0,
            mag: [mag; 3],
            kind: SourceKind::Star,
        }
    }

    #[test]
    fn star_flux_and_centroid_are_exact() {
        let psfs = [
            round_psf(),
            Psf {
                fwhm_px: 2.2,
                beta: 2.5,
                ellipticity: 0.15,
                pa_deg: 35.0,
            },
            Psf {
                fwhm_px: 5.0,
                beta: 4.5,
                ellipticity: 0.05,
                pa_deg: 120.0,
            },
        ];
        for psf in &psfs {
            for &(x, y) in &[(60.0, 61.0), (60.3, 61.7), (60.5, 60.5), (61.83, 60.12)] {
                for &mag in &[23.5, 20.0, 16.0] {
                    let mut img = Raster::filled(121, 121, 0.0f32);
                    let to_pix = fixed_at(x, y);
                    render_r30(&mut img, &[star(mag)], psf, 0.0, &to_pix);
                    let want = 30.0 * 10f64.powf(-0.4 * (mag - 28.0));
                    let (s, mx, my, ..) = moments(&img);
                    assert!(
                        (s / want - 1.0).abs() < 0.01,
                        "flux {s} vs {want} ({psf:?}, m={mag})"
                    );
                    assert!(
                        (mx - x).abs() < 0.02 && (my - y).abs() < 0.02,
                        "centroid ({mx}, {my}) vs ({x}, {y}) {psf:?} m={mag}"
                    );
                }
            }
        }
    }

    #[test]
    fn star_shape_follows_the_psf() {
        // A Moffat of given FWHM: the peak pixel of a centred star is close to
        // the analytic peak, and half maximum is reached at FWHM/2. The star
        // has unit flux and sits on pixel (51, 51).
        let centred_star = |psf: &Psf| {
            let mut img = Raster::filled(101, 101, 0.0f32);
            let to_pix = fixed_at(51.0, 51.0);
            render_sources(
                &mut img,
                &[star(18.0)],
                1,
                MJD,
                1.0,
                18.0,
                psf,
                0.26,
                0.0,
                &to_pix,
            );
            img
        };
        let psf = Psf {
            fwhm_px: 6.0,
            beta: 3.0,
            ellipticity: 0.3,
            pa_deg: 30.0,
        };
        let img = centred_star(&psf);
        let (_, _, _, xx, xy, yy) = moments(&img);
        let angle = 0.5 * (2.0 * xy).atan2(xx - yy);
        assert!(
            (angle.to_degrees() - 30.0).abs() < 2.0,
            "{}",
            angle.to_degrees()
        );
        // A round PSF: half maximum at FWHM/2 from the centre.
        let psf = Psf {
            ellipticity: 0.0,
            ..psf
        };
        let img = centred_star(&psf);
        let peak = f64::from(img.get(50, 50));
        let at3 = f64::from(img.get(53, 50));
        assert!((at3 / peak - 0.5).abs() < 0.03, "{}", at3 / peak);
        // Bright stars reach far: wings at 6 FWHM are still rendered.
        let mut img = Raster::filled(201, 201, 0.0f32);
        render_r30(
            &mut img,
            &[star(14.5)],
            &round_psf(),
            0.0,
            &fixed_at(101.0, 101.0),
        );
        assert!(img.get(100 + 22, 100) > 0.0);
    }

    fn galaxy(r_eff: f64, q: f64, pa: f64, n: f64) -> TruthSource {
        TruthSource {
            id: 1,
            ra: RA0,
            dec: DEC0,
            mag: [20.0; 3],
            kind: SourceKind::Galaxy {
                r_eff_arcsec: r_eff,
                axis_ratio: q,
                pa_deg: pa,
                sersic_n: n,
            },
        }
    }

    #[test]
    fn galaxy_flux_is_right() {
        for &n in &[1.0, 4.0] {
            for &re in &[0.3, 0.6, 1.5] {
                let mut img = Raster::filled(161, 161, 0.0f32);
                let g = galaxy(re, 0.6, 30.0, n);
                render_r30(&mut img, &[g], &round_psf(), 0.0, &fixed_at(80.4, 81.3));
                let want = 30.0 * 10f64.powf(-0.4 * (20.0 - 28.0));
                let (s, mx, my, ..) = moments(&img);
                assert!(
                    (s / want - 1.0).abs() < 0.02,
                    "n={n} re={re}: {s} vs {want}"
                );
                assert!((mx - 80.4).abs() < 0.02 && (my - 81.3).abs() < 0.02);
            }
        }
    }

    #[test]
    fn galaxy_orientation_follows_pa_and_north_angle() {
        for &north in &[0.0, 40.0, -115.0] {
            for &pa in &[0.0, 30.0, 75.0, 120.0, 160.0] {
                let mut img = Raster::filled(161, 161, 0.0f32);
                let g = galaxy(2.0, 0.4, pa, 1.0);
                render_r30(&mut img, &[g], &round_psf(), north, &fixed_at(81.0, 81.0));
                let (_, _, _, xx, xy, yy) = moments(&img);
                let measured = (0.5 * (2.0 * xy).atan2(xx - yy)).to_degrees();
                let want = 90.0 + north + pa;
                let diff = (measured - want).rem_euclid(180.0);
                let diff = diff.min(180.0 - diff);
                assert!(
                    diff < 2.0,
                    "north {north} pa {pa}: measured {measured}, want {want}"
                );
            }
        }
        // With north up and east left, PA 90 lies along x, PA 0 along y.
        let mut img = Raster::filled(161, 161, 0.0f32);
        render_r30(
            &mut img,
            &[galaxy(2.0, 0.4, 90.0, 1.0)],
            &round_psf(),
            0.0,
            &fixed_at(81.0, 81.0),
        );
        let (_, _, _, xx, _, yy) = moments(&img);
        assert!(xx > 2.0 * yy);
    }

    #[test]
    fn north_angle_matches_a_real_wcs() {
        // A galaxy elongated along PA 45 in a WCS rotated by 25 degrees: the
        // elongation must point where the WCS puts north-east.
        let north = 25.0;
        let wcs = tan_wcs(0.26, north, (81.0, 81.0));
        let g = galaxy(2.0, 0.3, 45.0, 1.0);
        let mut img = Raster::filled(161, 161, 0.0f32);
        render_r30(&mut img, &[g], &round_psf(), north, &wcs);
        let (_, _, _, xx, xy, yy) = moments(&img);
        let measured = 0.5 * (2.0 * xy).atan2(xx - yy);
        // A point 10" towards PA 45 from the centre, through the WCS.
        let d = 10.0 / 3600.0 / 2f64.sqrt();
        let (ra, dec) = tangent_to_sky(RA0, DEC0, d, d);
        let (px, py) = wcs(ra, dec);
        let expected = (py - 81.0).atan2(px - 81.0);
        let diff = (measured - expected).rem_euclid(PI);
        assert!(diff.min(PI - diff) < 0.03, "{measured} vs {expected}");
    }

    #[test]
    fn off_image_sources_are_skipped() {
        let mut img = Raster::filled(64, 64, 0.0f32);
        let src = [star(15.0), galaxy(1.0, 0.5, 10.0, 4.0)];
        render_r30(&mut img, &src, &round_psf(), 0.0, &fixed_at(-500.0, 30.0));
        render_r30(&mut img, &src, &round_psf(), 0.0, &fixed_at(f64::NAN, 30.0));
        assert!(img.data.iter().all(|&v| v == 0.0));
        // Partly on the image: some light arrives, less than all of it.
        render_r30(&mut img, &src[..1], &round_psf(), 0.0, &fixed_at(0.0, 30.0));
        let s: f64 = img.data.iter().map(|&v| f64::from(v)).sum();
        let want = 30.0 * 10f64.powf(-0.4 * (15.0 - 28.0));
        assert!(s > 0.3 * want && s < 0.8 * want, "{s} of {want}");
    }

    #[test]
    fn mover_trails_in_long_exposures() {
        let cat = truth_catalogue(5, RA0, DEC0, 0.1, MJD);
        let m = the_mover(&cat).clone();
        let wcs = tan_wcs(0.26, 0.0, (0.0, 0.0));
        let (x0, y0) = wcs(m.ra, m.dec);
        let shifted = move |ra, dec| {
            let (x, y) = wcs(ra, dec);
            (x - x0 + 101.0, y - y0 + 101.0)
        };
        let render = |exptime: f64| {
            let mut img = Raster::filled(201, 201, 0.0f32);
            render_sources(
                &mut img,
                std::slice::from_ref(&m),
                1,
                MJD,
                exptime,
                28.0,
                &round_psf(),
                0.26,
                0.0,
                &shifted,
            );
            let (s, mx, my, xx, _, yy) = moments(&img);
            (s / exptime, mx, my, xx + yy)
        };
        let (f_short, x_s, y_s, r2_short) = render(1.0);
        let (f_long, x_l, y_l, r2_long) = render(3600.0);
        assert!((f_short / f_long - 1.0).abs() < 0.01);
        // Centred on the mid-exposure position either way; a 1-hour trail
        // of ~3" (11 px) adds ~L²/12 to the second moment.
        assert!((x_s - 101.0).abs() < 0.05 && (y_s - 101.0).abs() < 0.05);
        assert!((x_l - 101.0).abs() < 0.1 && (y_l - 101.0).abs() < 0.1);
        assert!(r2_long > r2_short + 5.0, "{r2_short} {r2_long}");
    }

    #[test]
    fn a_crowded_frame_renders_every_source_without_nan() {
        // ~700 sources on 512x512: the field is squeezed onto the chip, the
        // sizes in pixels stay those of a 0.26"/px camera.
        let h = 0.0634;
        let cat = truth_catalogue(21, RA0, DEC0, h, MJD);
        let to_pix = move |ra: f64, dec: f64| {
            let (xi, eta) = sky_to_tangent(RA0, DEC0, ra, dec);
            (256.5 - xi / h * 256.0, 256.5 + eta / h * 256.0)
        };
        // Speed is measured by benchmarks, not asserted here.
        let mut img = Raster::filled(512, 512, 0.0f32);
        render_sources(
            &mut img,
            &cat,
            1,
            MJD,
            60.0,
            28.0,
            &round_psf(),
            0.26,
            0.0,
            &to_pix,
        );
        assert!(img.data.iter().all(|v| v.is_finite() && *v >= 0.0));
        assert!((550..900).contains(&cat.len()));
        // The light of every source inside the chip is there.
        let total: f64 = img.data.iter().map(|&v| f64::from(v)).sum();
        assert!(total > 0.0);
    }
}
