//! The truth catalogue: every object of the simulated field, with its
//! magnitudes and its behaviour in time.
//!
//! The sample survey exists so that the pipeline's results can be checked
//! against what was really there; this catalogue is that "really there".
//! Besides realistic counts, colours and sizes of field stars and galaxies it
//! guarantees the few objects every service test relies on: two bright stars
//! (one saturating), one RR Lyrae-like variable and one moving asteroid.

use super::{gauss, poisson_count};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::f64::consts::PI;

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
    let mut field = Field {
        ra0,
        dec0,
        h: half_width_deg.abs(),
        sources: Vec::new(),
    };
    // The order of the draws is the catalogue: the guaranteed objects first,
    // so that their ids do not depend on the counts of the others.
    add_bright_stars(&mut field, &mut rng);
    let var_pos = add_variable(&mut field, &mut rng);
    add_mover(&mut field, &mut rng, var_pos, mjd_ref);
    add_field_stars(&mut field, &mut rng);
    add_galaxies(&mut field, &mut rng);
    field.sources
}

/// The catalogue being drawn: its tangent plane, its half width `h`
/// (degrees) and the sources so far.
struct Field {
    ra0: f64,
    dec0: f64,
    h: f64,
    sources: Vec<TruthSource>,
}

impl Field {
    /// Adds a source at standard coordinates (ξ, η), numbering it next.
    fn push(&mut self, (xi, eta): (f64, f64), mag: [f64; 3], kind: SourceKind) {
        let (ra, dec) = tangent_to_sky(self.ra0, self.dec0, xi, eta);
        let id = self.sources.len() as u32 + 1;
        self.sources.push(TruthSource {
            id,
            ra,
            dec,
            mag,
            kind,
        });
    }

    fn area(&self) -> f64 {
        (2.0 * self.h) * (2.0 * self.h)
    }
}

/// g, r, i magnitudes from r and the colours g−r and r−i.
fn gri(r: f64, gr: f64, ri: f64) -> [f64; 3] {
    [r + gr, r, r - ri]
}

/// Like [`in_annulus`], but redrawn (at most 100 times) until at least
/// `min_sep` from `other`.
fn in_annulus_apart(
    rng: &mut impl Rng,
    half_width: f64,
    (r0, r1): (f64, f64),
    other: (f64, f64),
    min_sep: f64,
) -> (f64, f64) {
    let mut p = in_annulus(rng, half_width, r0, r1);
    for _ in 0..100 {
        if (p.0 - other.0).hypot(p.1 - other.1) >= min_sep {
            break;
        }
        p = in_annulus(rng, half_width, r0, r1);
    }
    p
}

/// Bright stars: far enough from the centre not to bury the variable and
/// the mover under their wings, far enough apart not to overlap.
fn add_bright_stars(field: &mut Field, rng: &mut ChaCha8Rng) {
    let h = field.h;
    let b1 = in_annulus(rng, h, 0.35, 0.65);
    let b2 = in_annulus_apart(rng, h, (0.35, 0.65), b1, 0.3 * h);
    // A G dwarf and a K dwarf: plausible colours for bright field stars.
    field.push(b1, gri(14.5, 0.45, 0.14), SourceKind::Star);
    field.push(b2, gri(15.5, 0.80, 0.26), SourceKind::Star);
}

/// The RR Lyrae star near the centre; returns its position.
fn add_variable(field: &mut Field, rng: &mut ChaCha8Rng) -> (f64, f64) {
    let var_pos = in_annulus(rng, field.h, 0.05, 0.25);
    let period = rng.random_range(0.55..0.65);
    let phase = rng.random_range(0.0..1.0);
    let var_r = 18.0 + rng.random_range(-0.1..0.1);
    // RR Lyrae sit at the blue edge of the locus: g−r ≈ 0.2, r−i ≈ 0.05.
    let kind = SourceKind::Variable {
        amplitude_mag: 1.1,
        period_days: period,
        phase,
    };
    field.push(var_pos, gri(var_r, 0.2, 0.05), kind);
    var_pos
}

/// The asteroid near the centre (at `mjd_ref`), apart from the variable.
fn add_mover(field: &mut Field, rng: &mut ChaCha8Rng, var_pos: (f64, f64), mjd_ref: f64) {
    let h = field.h;
    let mov_pos = in_annulus_apart(rng, h, (0.05, 0.25), var_pos, 0.08 * h);
    let rate = rng.random_range(0.018..0.022);
    let dir = rng.random_range(0.0..2.0 * PI);
    let kind = SourceKind::Mover {
        ra_rate_deg_per_day: rate * dir.sin(),
        dec_rate_deg_per_day: rate * dir.cos(),
        mjd_ref,
    };
    // Asteroids reflect sunlight: roughly solar colours.
    field.push(mov_pos, gri(19.5, 0.6, 0.2), kind);
}

fn add_field_stars(field: &mut Field, rng: &mut ChaCha8Rng) {
    let n_stars = poisson_count(rng, STAR_DENSITY * field.area());
    for _ in 0..n_stars {
        let pos = uniform_in_field(rng, field.h);
        let r = power_law_mag(rng, STAR_SLOPE, STAR_R_RANGE.0, STAR_R_RANGE.1);
        let (gr, ri) = stellar_colours(rng);
        field.push(pos, gri(r, gr, ri), SourceKind::Star);
    }
}

fn add_galaxies(field: &mut Field, rng: &mut ChaCha8Rng) {
    // The normalisation is quoted to r = 24; the counts keep rising to 24.5.
    let gal_scale = (10f64.powf(GAL_SLOPE * GAL_R_RANGE.1) - 10f64.powf(GAL_SLOPE * GAL_R_RANGE.0))
        / (10f64.powf(GAL_SLOPE * 24.0) - 10f64.powf(GAL_SLOPE * GAL_R_RANGE.0));
    let n_gal = poisson_count(rng, GAL_DENSITY_24 * gal_scale * field.area());
    for _ in 0..n_gal {
        let pos = uniform_in_field(rng, field.h);
        let r = power_law_mag(rng, GAL_SLOPE, GAL_R_RANGE.0, GAL_R_RANGE.1);
        let (mag, kind) = galaxy_of_magnitude(rng, r);
        field.push(pos, mag, kind);
    }
}

/// The morphology, size and colours of a galaxy of magnitude `r`.
fn galaxy_of_magnitude(rng: &mut ChaCha8Rng, r: f64) -> ([f64; 3], SourceKind) {
    let frac_spheroid = 0.45 - 0.25 * (r - GAL_R_RANGE.0) / (GAL_R_RANGE.1 - GAL_R_RANGE.0);
    let spheroid = rng.random::<f64>() < frac_spheroid;
    // Angular size falls with magnitude as galaxies get more distant:
    // log-linear through 3" at r = 18 and 0.4" at r = 24.
    let log_re = 3f64.log10() + (r - 18.0) * (0.4f64.log10() - 3f64.log10()) / 6.0;
    let mut r_eff = 10f64.powf(log_re + 0.15 * gauss(rng));
    let (sersic_n, axis_ratio, gr, ri);
    if spheroid {
        r_eff *= 0.8;
        sersic_n = 4.0;
        axis_ratio = rng.random_range(0.5..1.0);
        // Red sequence, redder at fainter magnitudes as redshift grows.
        gr = (1.05 + 0.08 * (r - 18.0) + 0.1 * gauss(rng)).clamp(0.8, 1.9);
        ri = (0.38 + 0.05 * (r - 18.0) + 0.07 * gauss(rng)).clamp(0.2, 1.0);
    } else {
        sersic_n = 1.0;
        axis_ratio = rng.random_range(0.3..1.0);
        gr = (0.55 + 0.18 * gauss(rng)).clamp(0.15, 1.1);
        ri = (0.25 + 0.3 * (gr - 0.55) + 0.08 * gauss(rng)).clamp(0.0, 0.7);
    }
    let pa_deg = rng.random_range(0.0..180.0);
    let kind = SourceKind::Galaxy {
        r_eff_arcsec: r_eff.max(0.1),
        axis_ratio,
        pa_deg,
        sersic_n,
    };
    (gri(r, gr, ri), kind)
}

#[cfg(test)]
mod tests {
    use super::super::test_field::{DEC0, MJD, RA0, sky_to_tangent, the_mover, the_variable};
    use super::*;
    use crate::imaging::sphere::separation_deg as sep_deg;

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

            let (v, amplitude_mag, period_days) = the_variable(&cat);
            assert!(amplitude_mag >= 1.0);
            assert!((0.5..0.7).contains(&period_days));
            assert!((v.mag[1] - 18.0).abs() < 0.3);
            assert!(sep_deg(RA0, DEC0, v.ra, v.dec) <= 0.3 * h);

            let m = the_mover(&cat);
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
        let (v, amplitude_mag, period_days) = the_variable(&cat);
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
        let m = the_mover(&cat);
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
}
