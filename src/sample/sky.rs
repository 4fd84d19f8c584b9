//! The simulated sky and detector behind the wisecut sample survey.
//!
//! Everything here is deterministic: the same seed gives the same truth
//! catalogue, the same fringe frame, the same bad pixels, bit for bit, so the
//! sample database can be rebuilt and its tests can compare against the truth.
//!
//! # Conventions
//!
//! * Bands are indexed `0 = g`, `1 = r`, `2 = i` ([`BANDS`]).
//! * Sky positions are ICRS-like (RA, Dec) in degrees.
//! * Pixel coordinates handed to and returned by the caller's `sky_to_pix`
//!   are FITS 1-based: the centre of the zero-based pixel `(ix, iy)` is at
//!   `(ix + 1, iy + 1)`, and that pixel covers `ix + 0.5 ..= ix + 1.5`.
//! * Orientation on the image: angles are given as seen in DS9 with x to the
//!   right and y up. `north_angle_deg` is the position angle of celestial
//!   north measured from the +y axis towards −x (counter-clockwise); the sky
//!   is assumed to have its normal parity, east being 90° counter-clockwise
//!   from north (east left when north is up, `det(CD) < 0`). A TAN WCS with
//!   pixel scale `s` (degrees) and north angle `θ` has
//!   `CD = s · [[−cos θ, −sin θ], [−sin θ, cos θ]]`.
//! * The PSF position angle ([`Psf::pa_deg`]) is a detector-frame quantity:
//!   counter-clockwise from +x, like SExtractor's `THETA_IMAGE`.
//! * Focal-plane coordinates (fringes, vignetting, illumination) are in
//!   pixels; the zero-based pixel `(ix, iy)` of a chip whose origin is
//!   `(chip_x0, chip_y0)` sits at `(chip_x0 + ix, chip_y0 + iy)`, so chips
//!   that share a focal-plane frame show continuous patterns.

use crate::imaging::raster::Raster;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Poisson, StandardNormal};
use std::f64::consts::PI;

/// Filter names, indexed by the band numbers used throughout this module.
pub const BANDS: [&str; 3] = ["g", "r", "i"];

/// What a truth source is, with the parameters of its light profile or motion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SourceKind {
    /// A point source with constant brightness.
    Star,
    /// Sérsic-like galaxy: effective radius (arcsec), axis ratio b/a, position angle (deg E of N), index n (1 = exponential disc, 4 = de Vaucouleurs)
    ///
    /// `r_eff_arcsec` is the half-light radius along the major axis (the minor
    /// axis has `axis_ratio · r_eff_arcsec`), as GALFIT quotes it.
    Galaxy {
        /// Half-light radius along the major axis, arcsec.
        r_eff_arcsec: f64,
        /// Minor over major axis, 0 < b/a ≤ 1.
        axis_ratio: f64,
        /// Position angle of the major axis, degrees east of north.
        pa_deg: f64,
        /// Sérsic index; only 1 and 4 are rendered exactly, others fall back to the nearer one.
        sersic_n: f64,
    },
    /// A periodic variable star: sinusoidal-ish (RR Lyrae-like saw-tooth welcome) light curve
    ///
    /// `amplitude_mag` is the peak-to-peak amplitude in r; g varies 1.25× and
    /// i 0.8× as much, as pulsating stars do. `phase` (cycles, 0..1) is the
    /// phase at MJD 0, phase 0 being minimum light; the rise to maximum takes
    /// 15 % of the period, the decline the rest. The source's `mag` is the
    /// mid-amplitude magnitude.
    Variable {
        /// Peak-to-peak amplitude in r, magnitudes.
        amplitude_mag: f64,
        /// Period, days.
        period_days: f64,
        /// Phase at MJD 0, in cycles (0..1).
        phase: f64,
    },
    /// A solar-system object moving linearly on the sky
    ///
    /// The source's `ra`, `dec` are its position at `mjd_ref`.
    /// `ra_rate_deg_per_day` is the on-sky eastward rate, d(RA)/dt · cos(Dec),
    /// as the Minor Planet Center quotes it.
    Mover {
        /// Eastward on-sky rate, d(RA)/dt · cos(Dec), degrees per day.
        ra_rate_deg_per_day: f64,
        /// Northward rate, degrees per day.
        dec_rate_deg_per_day: f64,
        /// Epoch (MJD) at which the object is at the source's `ra`, `dec`.
        mjd_ref: f64,
    },
}

/// One object of the simulated sky, the ground truth the pipeline should recover.
#[derive(Debug, Clone, PartialEq)]
pub struct TruthSource {
    /// Sequential identifier, starting at 1.
    pub id: u32,
    /// Right ascension, degrees (of the reference epoch for a mover).
    pub ra: f64,
    /// Declination, degrees (of the reference epoch for a mover).
    pub dec: f64,
    /// AB magnitudes in g, r, i (mid-amplitude for a variable).
    pub mag: [f64; 3],
    /// Morphology or time behaviour.
    pub kind: SourceKind,
}

/// How much of the r-band amplitude a pulsating star shows in g, r, i.
const VARIABLE_BAND_SCALE: [f64; 3] = [1.25, 1.0, 0.8];

/// Fraction of the period a pulsating star spends brightening.
const RISE_FRACTION: f64 = 0.15;

/// RR Lyrae-like light-curve shape in magnitudes, from −0.5 (maximum light)
/// to +0.5 (minimum light); `phase` in cycles, 0 = minimum light.
fn pulsation_shape(phase: f64) -> f64 {
    if phase < RISE_FRACTION {
        0.5 * (PI * phase / RISE_FRACTION).cos()
    } else {
        // The fading branch of an RRab star drops quickly after maximum and
        // then levels off towards minimum: a power below one does that.
        let t = (phase - RISE_FRACTION) / (1.0 - RISE_FRACTION);
        -0.5 + t.powf(0.8)
    }
}

impl TruthSource {
    /// The magnitude in `band` at time `mjd`; constant except for a variable.
    ///
    /// Panics if `band > 2`.
    pub fn mag_at(&self, band: usize, mjd: f64) -> f64 {
        let base = self.mag[band];
        match self.kind {
            SourceKind::Variable {
                amplitude_mag,
                period_days,
                phase,
            } => {
                let cycles = mjd / period_days + phase;
                let ph = cycles - cycles.floor();
                base + amplitude_mag * VARIABLE_BAND_SCALE[band] * pulsation_shape(ph)
            }
            _ => base,
        }
    }

    /// The (RA, Dec) in degrees at time `mjd`; only a mover changes.
    ///
    /// A mover's RA and Dec are both linear in time (RA advances by
    /// `ra_rate / cos(dec_ref)` per day); RA is wrapped into 0..360.
    pub fn position_at(&self, mjd: f64) -> (f64, f64) {
        match self.kind {
            SourceKind::Mover {
                ra_rate_deg_per_day,
                dec_rate_deg_per_day,
                mjd_ref,
            } => {
                let dt = mjd - mjd_ref;
                // Keep RA linear in time by using the reference declination:
                // over the few days a survey sees a mover the difference from
                // a great circle is far below a pixel.
                let cos_dec = self.dec.to_radians().cos().max(1e-6);
                let ra = (self.ra + ra_rate_deg_per_day * dt / cos_dec).rem_euclid(360.0);
                (ra, self.dec + dec_rate_deg_per_day * dt)
            }
            _ => (self.ra, self.dec),
        }
    }
}

/// Gnomonic (TAN) de-projection: standard coordinates (ξ, η) in degrees
/// around (ra0, dec0) to (RA, Dec) in degrees.
fn tangent_to_sky(ra0: f64, dec0: f64, xi: f64, eta: f64) -> (f64, f64) {
    let (xi, eta) = (xi.to_radians(), eta.to_radians());
    let d0 = dec0.to_radians();
    let den = d0.cos() - eta * d0.sin();
    let ra = ra0.to_radians() + xi.atan2(den);
    let dec = (d0.sin() + eta * d0.cos()).atan2((xi * xi + den * den).sqrt());
    (ra.to_degrees().rem_euclid(360.0), dec.to_degrees())
}

/// Gnomonic projection of (RA, Dec) around (ra0, dec0): standard
/// coordinates (ξ east, η north) in degrees.
#[cfg_attr(not(test), allow(dead_code))]
fn sky_to_tangent(ra0: f64, dec0: f64, ra: f64, dec: f64) -> (f64, f64) {
    let (a0, d0, a, d) = (
        ra0.to_radians(),
        dec0.to_radians(),
        ra.to_radians(),
        dec.to_radians(),
    );
    let da = a - a0;
    let cosc = d0.sin() * d.sin() + d0.cos() * d.cos() * da.cos();
    let xi = d.cos() * da.sin() / cosc;
    let eta = (d0.cos() * d.sin() - d0.sin() * d.cos() * da.cos()) / cosc;
    (xi.to_degrees(), eta.to_degrees())
}

/// A standard normal deviate.
fn gauss(rng: &mut impl Rng) -> f64 {
    rng.sample(StandardNormal)
}

/// A Poisson-distributed count with mean `lambda` (0 for a non-positive mean).
fn poisson_count(rng: &mut impl Rng, lambda: f64) -> usize {
    if lambda <= 0.0 {
        return 0;
    }
    match Poisson::new(lambda) {
        Ok(p) => p.sample(rng) as usize,
        Err(_) => lambda.round() as usize,
    }
}

/// A magnitude in `m0..m1` drawn from dN/dm ∝ 10^(slope·m), by inverting the
/// cumulative distribution.
fn power_law_mag(rng: &mut impl Rng, slope: f64, m0: f64, m1: f64) -> f64 {
    let a = 10f64.powf(slope * m0);
    let b = 10f64.powf(slope * m1);
    (a + rng.random::<f64>() * (b - a)).log10() / slope
}

/// Stars per square degree with 15.5 < r < 24 at high galactic latitude.
const STAR_DENSITY: f64 = 4000.0;
const STAR_R_RANGE: (f64, f64) = (15.5, 24.0);
const STAR_SLOPE: f64 = 0.15;
/// Galaxies per square degree with r < 24 (counted from `GAL_R_RANGE.0`).
const GAL_DENSITY_24: f64 = 25000.0;
const GAL_R_RANGE: (f64, f64) = (17.0, 24.5);
const GAL_SLOPE: f64 = 0.4;

/// g−r and r−i of a field star: a mix of halo turn-off stars, disc G/K
/// dwarfs and M dwarfs, with r−i following the SDSS stellar locus (which
/// turns steeply upward once g−r saturates near 1.4 for M dwarfs).
fn stellar_colours(rng: &mut impl Rng) -> (f64, f64) {
    let u: f64 = rng.random();
    let gr: f64 = if u < 0.45 {
        0.35 + 0.08 * gauss(rng)
    } else if u < 0.75 {
        0.65 + 0.15 * gauss(rng)
    } else {
        rng.random_range(1.0..1.4)
    };
    let gr = gr.clamp(0.2, 1.4);
    (gr, stellar_locus_ri(gr) + 0.03 * gauss(rng))
}

/// r−i on the stellar locus for a given g−r.
fn stellar_locus_ri(gr: f64) -> f64 {
    if gr <= 1.0 {
        0.33 * gr - 0.01
    } else {
        let d = gr - 1.0;
        0.32 + 0.4 * d + 10.0 * d * d * d
    }
}

/// A source at standard coordinates (ξ, η) drawn uniformly in ±`half_width`.
fn uniform_in_field(rng: &mut impl Rng, half_width: f64) -> (f64, f64) {
    (
        rng.random_range(-half_width..=half_width),
        rng.random_range(-half_width..=half_width),
    )
}

/// Standard coordinates at a radius between `r0` and `r1` (fractions of
/// `half_width`) from the field centre, in a random direction.
fn in_annulus(rng: &mut impl Rng, half_width: f64, r0: f64, r1: f64) -> (f64, f64) {
    let r = half_width * rng.random_range(r0..r1);
    let t = rng.random_range(0.0..2.0 * PI);
    (r * t.cos(), r * t.sin())
}

/// The truth catalogue of a high-latitude field.
///
/// The field is the square |ξ|, |η| ≤ `half_width_deg` in the gnomonic (TAN)
/// tangent plane at (`ra0`, `dec0`) — the square a camera sees, whose RA
/// extent is `half_width_deg / cos(dec)`. Contents, in id order:
///
/// 1. a bright star at r = 14.5 (meant to saturate) and 2. one at r = 15.5,
///    both 35–65 % of the half width from the centre;
/// 3. exactly one RR Lyrae-like [`SourceKind::Variable`], r ≈ 18, amplitude
///    1.1 mag in r, period 0.55–0.65 d, within 25 % of the half width of the centre;
/// 4. exactly one [`SourceKind::Mover`], r = 19.5, about 0.02 °/day, within
///    25 % of the half width of the centre at `mjd_ref`;
/// 5. field stars: dN/dm ∝ 10^(0.15 r), 4000 deg⁻² with 15.5 < r < 24,
///    colours on the stellar locus (0.2 ≤ g−r ≤ 1.4);
/// 6. galaxies: dN/dm ∝ 10^(0.4 r), 25000 deg⁻² with 17 < r < 24 and more
///    to r = 24.5; half-light radius ≈ 3″ at r = 18 falling to ≈ 0.4″ at
///    r = 24 (0.15 dex scatter); discs (n = 1) and spheroids (n = 4, more
///    common when bright, rounder and redder).
///
/// Counts are Poisson draws. Ids run from 1 without gaps. The same seed gives
/// the same catalogue (ChaCha8 seeded from `seed`).
pub fn truth_catalogue(
    seed: u64,
    ra0: f64,
    dec0: f64,
    half_width_deg: f64,
    mjd_ref: f64,
) -> Vec<TruthSource> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let h = half_width_deg.abs();
    let area = (2.0 * h) * (2.0 * h);
    let mut out: Vec<TruthSource> = Vec::new();
    let push = |out: &mut Vec<TruthSource>, xi: f64, eta: f64, mag: [f64; 3], kind| {
        let (ra, dec) = tangent_to_sky(ra0, dec0, xi, eta);
        let id = out.len() as u32 + 1;
        out.push(TruthSource {
            id,
            ra,
            dec,
            mag,
            kind,
        });
    };

    // Bright stars: far enough from the centre not to bury the variable and
    // the mover under their wings, far enough apart not to overlap.
    let b1 = in_annulus(&mut rng, h, 0.35, 0.65);
    let mut b2 = in_annulus(&mut rng, h, 0.35, 0.65);
    for _ in 0..100 {
        if (b2.0 - b1.0).hypot(b2.1 - b1.1) >= 0.3 * h {
            break;
        }
        b2 = in_annulus(&mut rng, h, 0.35, 0.65);
    }
    // A G dwarf and a K dwarf: plausible colours for bright field stars.
    push(
        &mut out,
        b1.0,
        b1.1,
        [14.5 + 0.45, 14.5, 14.5 - 0.14],
        SourceKind::Star,
    );
    push(
        &mut out,
        b2.0,
        b2.1,
        [15.5 + 0.80, 15.5, 15.5 - 0.26],
        SourceKind::Star,
    );

    let var_pos = in_annulus(&mut rng, h, 0.05, 0.25);
    let period = rng.random_range(0.55..0.65);
    let phase = rng.random_range(0.0..1.0);
    let var_r = 18.0 + rng.random_range(-0.1..0.1);
    // RR Lyrae sit at the blue edge of the locus: g−r ≈ 0.2, r−i ≈ 0.05.
    push(
        &mut out,
        var_pos.0,
        var_pos.1,
        [var_r + 0.2, var_r, var_r - 0.05],
        SourceKind::Variable {
            amplitude_mag: 1.1,
            period_days: period,
            phase,
        },
    );

    let mut mov_pos = in_annulus(&mut rng, h, 0.05, 0.25);
    for _ in 0..100 {
        if (mov_pos.0 - var_pos.0).hypot(mov_pos.1 - var_pos.1) >= 0.08 * h {
            break;
        }
        mov_pos = in_annulus(&mut rng, h, 0.05, 0.25);
    }
    let rate = rng.random_range(0.018..0.022);
    let dir = rng.random_range(0.0..2.0 * PI);
    // Asteroids reflect sunlight: roughly solar colours.
    push(
        &mut out,
        mov_pos.0,
        mov_pos.1,
        [19.5 + 0.6, 19.5, 19.5 - 0.2],
        SourceKind::Mover {
            ra_rate_deg_per_day: rate * dir.sin(),
            dec_rate_deg_per_day: rate * dir.cos(),
            mjd_ref,
        },
    );

    let n_stars = poisson_count(&mut rng, STAR_DENSITY * area);
    for _ in 0..n_stars {
        let (xi, eta) = uniform_in_field(&mut rng, h);
        let r = power_law_mag(&mut rng, STAR_SLOPE, STAR_R_RANGE.0, STAR_R_RANGE.1);
        let (gr, ri) = stellar_colours(&mut rng);
        push(&mut out, xi, eta, [r + gr, r, r - ri], SourceKind::Star);
    }

    // The normalisation is quoted to r = 24; the counts keep rising to 24.5.
    let gal_scale = (10f64.powf(GAL_SLOPE * GAL_R_RANGE.1) - 10f64.powf(GAL_SLOPE * GAL_R_RANGE.0))
        / (10f64.powf(GAL_SLOPE * 24.0) - 10f64.powf(GAL_SLOPE * GAL_R_RANGE.0));
    let n_gal = poisson_count(&mut rng, GAL_DENSITY_24 * gal_scale * area);
    for _ in 0..n_gal {
        let (xi, eta) = uniform_in_field(&mut rng, h);
        let r = power_law_mag(&mut rng, GAL_SLOPE, GAL_R_RANGE.0, GAL_R_RANGE.1);
        let frac_spheroid = 0.45 - 0.25 * (r - GAL_R_RANGE.0) / (GAL_R_RANGE.1 - GAL_R_RANGE.0);
        let spheroid = rng.random::<f64>() < frac_spheroid;
        // Angular size falls with magnitude as galaxies get more distant:
        // log-linear through 3" at r = 18 and 0.4" at r = 24.
        let log_re = 3f64.log10() + (r - 18.0) * (0.4f64.log10() - 3f64.log10()) / 6.0;
        let mut r_eff = 10f64.powf(log_re + 0.15 * gauss(&mut rng));
        let (sersic_n, axis_ratio, gr, ri);
        if spheroid {
            r_eff *= 0.8;
            sersic_n = 4.0;
            axis_ratio = rng.random_range(0.5..1.0);
            // Red sequence, redder at fainter magnitudes as redshift grows.
            gr = (1.05 + 0.08 * (r - 18.0) + 0.1 * gauss(&mut rng)).clamp(0.8, 1.9);
            ri = (0.38 + 0.05 * (r - 18.0) + 0.07 * gauss(&mut rng)).clamp(0.2, 1.0);
        } else {
            sersic_n = 1.0;
            axis_ratio = rng.random_range(0.3..1.0);
            gr = (0.55 + 0.18 * gauss(&mut rng)).clamp(0.15, 1.1);
            ri = (0.25 + 0.3 * (gr - 0.55) + 0.08 * gauss(&mut rng)).clamp(0.0, 0.7);
        }
        let pa_deg = rng.random_range(0.0..180.0);
        push(
            &mut out,
            xi,
            eta,
            [r + gr, r, r - ri],
            SourceKind::Galaxy {
                r_eff_arcsec: r_eff.max(0.1),
                axis_ratio,
                pa_deg,
                sersic_n,
            },
        );
    }
    out
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

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
    let (w, h) = (img.width as f64, img.height as f64);
    if xc + r < -0.5 || xc - r > w - 0.5 || yc + r < -0.5 || yc - r > h - 0.5 {
        return;
    }
    let iy0 = (yc - r).ceil() as i64;
    let iy1 = (yc + r).floor() as i64;
    buf.clear();
    let mut total = 0.0;
    for iy in iy0..=iy1 {
        let dy = iy as f64 - yc;
        let half = (r * r - dy * dy).max(0.0).sqrt();
        let ix0 = fast_ceil(xc - half);
        let ix1 = fast_floor(xc + half);
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
        let dy = iy as f64 - yc;
        let half = (r * r - dy * dy).max(0.0).sqrt();
        let ix0 = fast_ceil(xc - half);
        let ix1 = fast_floor(xc + half);
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

/// Adds g₀, g₀r₀, g₀r₀·r₀k, … to `run`: the values of a Gaussian along a
/// row, whose successive ratios shrink by the constant `k`. Two interleaved
/// chains (even and odd pixels) halve the multiply latency that bounds it.
#[inline]
fn geometric_run(run: &mut [f32], g0: f64, r0: f64, k: f64) {
    let (mut ge, mut go) = (g0, g0 * r0);
    // Ratio over two steps: r(x)·r(x+1) = r(x)²·k, shrinking by k⁴.
    let (mut re, mut ro) = (r0 * r0 * k, r0 * k * r0 * k * k);
    let k4 = k * k * k * k;
    let mut pairs = run.chunks_exact_mut(2);
    for p in &mut pairs {
        p[0] += ge as f32;
        p[1] += go as f32;
        ge *= re;
        go *= ro;
        re *= k4;
        ro *= k4;
    }
    if let [last] = pairs.into_remainder() {
        *last += ge as f32;
    }
}

/// Like [`geometric_run`] but starting at the last element of `run` and
/// walking towards its first.
#[inline]
fn geometric_run_rev(run: &mut [f32], g0: f64, l0: f64, k: f64) {
    let (mut ge, mut go) = (g0, g0 * l0);
    let (mut le, mut lo) = (l0 * l0 * k, l0 * k * l0 * k * k);
    let k4 = k * k * k * k;
    let mut pairs = run.rchunks_exact_mut(2);
    for p in &mut pairs {
        p[1] += ge as f32;
        p[0] += go as f32;
        ge *= le;
        go *= lo;
        le *= k4;
        lo *= k4;
    }
    if let [first] = pairs.into_remainder() {
        *first += ge as f32;
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
    let r = 5.0 * widest.sqrt();
    let (w, h) = (img.width as f64, img.height as f64);
    if xc + r < -0.5 || xc - r > w - 0.5 || yc + r < -0.5 || yc - r > h - 0.5 {
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

// ---------------------------------------------------------------------------
// Detector and atmosphere
// ---------------------------------------------------------------------------

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
    let mut img = Raster::filled(width, height, 0.0f32);
    for iy in 0..height {
        let y = chip_y0 + iy as f64;
        for ix in 0..width {
            let x = chip_x0 + ix as f64;
            let v: f64 = systems.iter().map(|s| s.value(x, y)).sum();
            img.data[iy * width + ix] = (v * norm) as f32;
        }
    }
    img
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
    let mut img = Raster::filled(width, height, 1.0f32);
    for iy in 0..height {
        let dy = chip_y0 + iy as f64 - fp_cy;
        for ix in 0..width {
            let dx = chip_x0 + ix as f64 - fp_cx;
            let t2 = (dx * dx + dy * dy) / (focal * focal);
            img.data[iy * width + ix] = (1.0 / ((1.0 + t2) * (1.0 + t2))) as f32;
        }
    }
    img
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
    let mut img = Raster::filled(width, height, 1.0f32);
    for iy in 0..height {
        let v = (chip_y0 + iy as f64 - fp_cy) / r;
        for ix in 0..width {
            let u = (chip_x0 + ix as f64 - fp_cx) / r;
            // The radial term is centred on its mean over the unit disc so
            // the surface averages 1 over the focal plane.
            let s = 1.0
                + c[0] * u
                + c[1] * v
                + c[2] * (u * u + v * v - 0.5)
                + c[3] * (u * u - v * v)
                + c[4] * u * v;
            img.data[iy * width + ix] = s as f32;
        }
    }
    img
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

    const RA0: f64 = 150.0;
    const DEC0: f64 = 2.2;
    const MJD: f64 = 60400.0;

    fn round_psf() -> Psf {
        Psf {
            fwhm_px: 3.5,
            beta: 3.0,
            ellipticity: 0.0,
            pa_deg: 0.0,
        }
    }

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

    fn sep_deg(ra1: f64, d1: f64, ra2: f64, d2: f64) -> f64 {
        let (xi, eta) = sky_to_tangent(ra1, d1, ra2, d2);
        xi.hypot(eta)
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

    #[test]
    fn tangent_projection_round_trips() {
        for &(ra0, dec0) in &[(150.0, 2.2), (359.9, -30.0), (10.0, 85.0)] {
            let (ra, dec) = tangent_to_sky(ra0, dec0, 0.3, -0.2);
            let (xi, eta) = sky_to_tangent(ra0, dec0, ra, dec);
            assert!(
                (xi - 0.3).abs() < 1e-9 && (eta + 0.2).abs() < 1e-9,
                "{xi} {eta}"
            );
        }
    }

    #[test]
    fn catalogue_is_deterministic() {
        let a = truth_catalogue(7, RA0, DEC0, 0.05, MJD);
        let b = truth_catalogue(7, RA0, DEC0, 0.05, MJD);
        let c = truth_catalogue(8, RA0, DEC0, 0.05, MJD);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.len() > 50);
    }

    #[test]
    fn catalogue_has_the_guaranteed_objects() {
        for seed in 0..20 {
            let h = 0.1;
            let cat = truth_catalogue(seed, RA0, DEC0, h, MJD);
            for (i, s) in cat.iter().enumerate() {
                assert_eq!(s.id as usize, i + 1);
            }
            let stars: Vec<_> = cat.iter().filter(|s| s.kind == SourceKind::Star).collect();
            assert!(stars.iter().any(|s| (s.mag[1] - 14.5).abs() < 0.01));
            assert!(stars.iter().any(|s| (s.mag[1] - 15.5).abs() < 0.01));
            assert!(stars.iter().all(|s| s.mag[1] >= 14.5 - 1e-9));

            let vars: Vec<_> = cat
                .iter()
                .filter(|s| matches!(s.kind, SourceKind::Variable { .. }))
                .collect();
            assert_eq!(vars.len(), 1);
            let v = vars[0];
            let SourceKind::Variable {
                amplitude_mag,
                period_days,
                ..
            } = v.kind
            else {
                unreachable!()
            };
            assert!(amplitude_mag >= 1.0);
            assert!((0.5..0.7).contains(&period_days));
            assert!((v.mag[1] - 18.0).abs() < 0.3);
            assert!(sep_deg(RA0, DEC0, v.ra, v.dec) <= 0.3 * h);

            let movers: Vec<_> = cat
                .iter()
                .filter(|s| matches!(s.kind, SourceKind::Mover { .. }))
                .collect();
            assert_eq!(movers.len(), 1);
            let m = movers[0];
            let SourceKind::Mover {
                ra_rate_deg_per_day,
                dec_rate_deg_per_day,
                mjd_ref,
            } = m.kind
            else {
                unreachable!()
            };
            assert_eq!(mjd_ref, MJD);
            let rate = ra_rate_deg_per_day.hypot(dec_rate_deg_per_day);
            assert!((0.015..0.025).contains(&rate), "{rate}");
            assert!((m.mag[1] - 19.5).abs() < 0.3);
            let (ra, dec) = m.position_at(MJD);
            assert!(sep_deg(RA0, DEC0, ra, dec) <= 0.3 * h);
        }
    }

    #[test]
    fn number_counts_sizes_and_colours_are_realistic() {
        let h = 0.2;
        let area = 0.16;
        let cat = truth_catalogue(42, RA0, DEC0, h, MJD);
        let mut stars = Vec::new();
        let mut gals = Vec::new();
        for s in &cat {
            let (xi, eta) = sky_to_tangent(RA0, DEC0, s.ra, s.dec);
            assert!(xi.abs() <= h + 1e-9 && eta.abs() <= h + 1e-9);
            match s.kind {
                SourceKind::Star => stars.push(s),
                SourceKind::Galaxy { .. } => gals.push(s),
                _ => {}
            }
        }
        let n_star = stars
            .iter()
            .filter(|s| s.mag[1] >= 15.5 && s.mag[1] <= 24.0)
            .count() as f64
            / area;
        assert!((3500.0..4500.0).contains(&n_star), "stars {n_star}/deg2");
        let n_gal24 = gals.iter().filter(|s| s.mag[1] <= 24.0).count() as f64 / area;
        assert!(
            (22500.0..27500.0).contains(&n_gal24),
            "galaxies {n_gal24}/deg2"
        );
        assert!(gals.iter().all(|s| (17.0..=24.5).contains(&s.mag[1])));
        assert!(gals.iter().any(|s| s.mag[1] > 24.0));

        // Slopes: per-magnitude ratios 10^0.15 ≈ 1.41 and 10^0.4 ≈ 2.51.
        let count = |v: &[&TruthSource], a: f64, b: f64| {
            v.iter().filter(|s| s.mag[1] >= a && s.mag[1] < b).count() as f64
        };
        let star_ratio = count(&stars, 21.0, 24.0) / count(&stars, 18.0, 21.0);
        assert!((2.0..3.8).contains(&star_ratio), "star ratio {star_ratio}"); // 10^0.45 = 2.8
        let gal_ratio = count(&gals, 23.0, 24.0) / count(&gals, 22.0, 23.0);
        assert!((2.2..2.9).contains(&gal_ratio), "galaxy ratio {gal_ratio}");

        // Sizes shrink with magnitude.
        let median_re = |lo: f64, hi: f64| {
            let mut v: Vec<f64> = gals
                .iter()
                .filter(|s| s.mag[1] >= lo && s.mag[1] < hi)
                .map(|s| match s.kind {
                    SourceKind::Galaxy {
                        r_eff_arcsec,
                        sersic_n,
                        ..
                    } if sersic_n < 2.0 => r_eff_arcsec,
                    _ => f64::NAN,
                })
                .filter(|r| r.is_finite())
                .collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let re18 = median_re(17.5, 18.5);
        let re24 = median_re(23.8, 24.2);
        assert!((2.0..4.5).contains(&re18), "re(18) {re18}");
        assert!((0.3..0.55).contains(&re24), "re(24) {re24}");

        // Stellar locus and red spheroids.
        for s in &stars {
            let gr = s.mag[0] - s.mag[1];
            assert!((0.2 - 1e-9..=1.4 + 1e-9).contains(&gr));
        }
        let mean_gr = |n: f64| {
            let v: Vec<f64> = gals
                .iter()
                .filter(|s| matches!(s.kind, SourceKind::Galaxy { sersic_n, .. } if sersic_n == n))
                .map(|s| s.mag[0] - s.mag[1])
                .collect();
            assert!(v.len() > 100);
            v.iter().sum::<f64>() / v.len() as f64
        };
        assert!(mean_gr(4.0) > mean_gr(1.0) + 0.4);
    }

    #[test]
    fn variable_light_curve_has_the_amplitude_and_period() {
        let cat = truth_catalogue(3, RA0, DEC0, 0.05, MJD);
        let v = cat
            .iter()
            .find(|s| matches!(s.kind, SourceKind::Variable { .. }))
            .unwrap();
        let SourceKind::Variable {
            amplitude_mag,
            period_days,
            ..
        } = v.kind
        else {
            unreachable!()
        };
        for (band, scale) in VARIABLE_BAND_SCALE.iter().enumerate() {
            let mags: Vec<f64> = (0..2000)
                .map(|k| v.mag_at(band, MJD + period_days * k as f64 / 2000.0))
                .collect();
            let lo = mags.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = mags.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let want = amplitude_mag * scale;
            assert!((hi - lo - want).abs() < 0.01, "band {band}: {}", hi - lo);
            assert!((0.5 * (hi + lo) - v.mag[band]).abs() < 0.01);
        }
        assert!(amplitude_mag >= 1.0);
        let t = MJD + 0.123;
        assert!((v.mag_at(1, t) - v.mag_at(1, t + 3.0 * period_days)).abs() < 1e-6);
        // Saw-tooth: the rise to maximum is much shorter than the decline.
        let n = 1000;
        let mags: Vec<f64> = (0..n)
            .map(|k| v.mag_at(1, period_days * k as f64 / n as f64))
            .collect();
        let rising = (0..n).filter(|&k| mags[(k + 1) % n] < mags[k]).count();
        assert!(rising < n / 4, "rising fraction {rising}/{n}");
        // Constant sources stay constant.
        let star = cat.iter().find(|s| s.kind == SourceKind::Star).unwrap();
        assert_eq!(star.mag_at(1, MJD), star.mag_at(1, MJD + 0.3));
    }

    #[test]
    fn mover_moves_linearly() {
        let cat = truth_catalogue(11, RA0, DEC0, 0.1, MJD);
        let m = cat
            .iter()
            .find(|s| matches!(s.kind, SourceKind::Mover { .. }))
            .unwrap();
        let p = |t: f64| m.position_at(MJD + t);
        let (a, b, c) = (p(-1.0), p(0.5), p(2.0));
        assert_eq!(p(0.0), (m.ra, m.dec));
        // Equal steps in time give equal steps in RA and Dec.
        let d1 = ((b.0 - a.0) / 1.5, (b.1 - a.1) / 1.5);
        let d2 = ((c.0 - b.0) / 1.5, (c.1 - b.1) / 1.5);
        assert!((d1.0 - d2.0).abs() < 1e-9 && (d1.1 - d2.1).abs() < 1e-9);
        // About 0.02 deg per day on the sky: visible between nights.
        let per_day = sep_deg(a.0, a.1, c.0, c.1) / 3.0;
        assert!((0.017..0.023).contains(&per_day), "{per_day}");
        // ... and a little (arcsec) within a night.
        let ten_min = sep_deg(m.ra, m.dec, p(10.0 / 1440.0).0, p(10.0 / 1440.0).1) * 3600.0;
        assert!((0.3..1.0).contains(&ten_min), "{ten_min} arcsec in 10 min");
        let star = cat.iter().find(|s| s.kind == SourceKind::Star).unwrap();
        assert_eq!(star.position_at(MJD + 5.0), (star.ra, star.dec));
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
                    render_sources(
                        &mut img,
                        &[star(mag)],
                        1,
                        MJD,
                        30.0,
                        28.0,
                        psf,
                        0.26,
                        0.0,
                        &to_pix,
                    );
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
        // the analytic peak, and half maximum is reached at FWHM/2.
        let psf = Psf {
            fwhm_px: 6.0,
            beta: 3.0,
            ellipticity: 0.3,
            pa_deg: 30.0,
        };
        let mut img = Raster::filled(101, 101, 0.0f32);
        render_sources(
            &mut img,
            &[star(18.0)],
            1,
            MJD,
            1.0,
            18.0,
            &psf,
            0.26,
            0.0,
            &fixed_at(51.0, 51.0),
        );
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
        let mut img = Raster::filled(101, 101, 0.0f32);
        render_sources(
            &mut img,
            &[star(18.0)],
            1,
            MJD,
            1.0,
            18.0,
            &psf,
            0.26,
            0.0,
            &fixed_at(51.0, 51.0),
        );
        let peak = f64::from(img.get(50, 50));
        let at3 = f64::from(img.get(53, 50));
        assert!((at3 / peak - 0.5).abs() < 0.03, "{}", at3 / peak);
        // Bright stars reach far: wings at 6 FWHM are still rendered.
        let mut img = Raster::filled(201, 201, 0.0f32);
        render_sources(
            &mut img,
            &[star(14.5)],
            1,
            MJD,
            30.0,
            28.0,
            &round_psf(),
            0.26,
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
                render_sources(
                    &mut img,
                    &[g],
                    1,
                    MJD,
                    30.0,
                    28.0,
                    &round_psf(),
                    0.26,
                    0.0,
                    &fixed_at(80.4, 81.3),
                );
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
                render_sources(
                    &mut img,
                    &[g],
                    1,
                    MJD,
                    30.0,
                    28.0,
                    &round_psf(),
                    0.26,
                    north,
                    &fixed_at(81.0, 81.0),
                );
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
        render_sources(
            &mut img,
            &[galaxy(2.0, 0.4, 90.0, 1.0)],
            1,
            MJD,
            30.0,
            28.0,
            &round_psf(),
            0.26,
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
        render_sources(
            &mut img,
            &[g],
            1,
            MJD,
            30.0,
            28.0,
            &round_psf(),
            0.26,
            north,
            &wcs,
        );
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
        render_sources(
            &mut img,
            &src,
            1,
            MJD,
            30.0,
            28.0,
            &round_psf(),
            0.26,
            0.0,
            &fixed_at(-500.0, 30.0),
        );
        render_sources(
            &mut img,
            &src,
            1,
            MJD,
            30.0,
            28.0,
            &round_psf(),
            0.26,
            0.0,
            &fixed_at(f64::NAN, 30.0),
        );
        assert!(img.data.iter().all(|&v| v == 0.0));
        // Partly on the image: some light arrives, less than all of it.
        render_sources(
            &mut img,
            &src[..1],
            1,
            MJD,
            30.0,
            28.0,
            &round_psf(),
            0.26,
            0.0,
            &fixed_at(0.0, 30.0),
        );
        let s: f64 = img.data.iter().map(|&v| f64::from(v)).sum();
        let want = 30.0 * 10f64.powf(-0.4 * (15.0 - 28.0));
        assert!(s > 0.3 * want && s < 0.8 * want, "{s} of {want}");
    }

    #[test]
    fn mover_trails_in_long_exposures() {
        let cat = truth_catalogue(5, RA0, DEC0, 0.1, MJD);
        let m = cat
            .iter()
            .find(|s| matches!(s.kind, SourceKind::Mover { .. }))
            .unwrap()
            .clone();
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
