//! The sky simulator behind the wisecut sample survey: what the sky holds,
//! how its light lands on a chip, and what the detector does to it.
//!
//! The sample survey needs images whose every source and defect is known,
//! so that the pipeline built on them, and the tests of every service, can
//! compare against the truth. The simulator has three parts:
//!
//! * [`truth_catalogue`]: the objects of the field (stars, galaxies, one
//!   variable, one mover) with their magnitudes and time behaviour;
//! * [`source_rendering`]: their light through the PSF onto a pixel grid;
//! * [`detector_effects`]: noise, cosmic rays, bad pixels and the
//!   multiplicative and additive patterns (vignetting, pixel response,
//!   dome-flat illumination, fringes) a CCD camera adds.
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

pub mod detector_effects;
pub mod source_rendering;
pub mod truth_catalogue;

pub use detector_effects::{
    add_cosmic_rays, add_noise, bad_pixels, fringe_pattern, illumination_pattern, pixel_response,
    vignetting,
};
pub use source_rendering::{Psf, render_sources};
pub use truth_catalogue::{SourceKind, TruthSource, truth_catalogue};

use rand::Rng;
use rand_distr::{Distribution, Poisson, StandardNormal};

/// Filter names, indexed by the band numbers used throughout this module.
pub const BANDS: [&str; 3] = ["g", "r", "i"];

// The two random draws both the sky and the detector make: one definition
// each, so a catalogue and a noise frame draw from the same distributions.

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

/// The field, epoch and PSF the tests of every part simulate.
#[cfg(test)]
mod test_field {
    use super::{Psf, SourceKind, TruthSource};
    use crate::imaging::sphere::Gnomonic;

    pub const RA0: f64 = 150.0;
    pub const DEC0: f64 = 2.2;
    pub const MJD: f64 = 60400.0;

    pub fn round_psf() -> Psf {
        Psf {
            fwhm_px: 3.5,
            beta: 3.0,
            ellipticity: 0.0,
            pa_deg: 0.0,
        }
    }

    /// Standard coordinates (ξ east, η north) in degrees of (`ra`, `dec`)
    /// about (`ra0`, `dec0`), by the crate's one gnomonic projection: the
    /// tests check the simulator against it rather than against itself.
    pub fn sky_to_tangent(ra0: f64, dec0: f64, ra: f64, dec: f64) -> (f64, f64) {
        let (xi, eta) = Gnomonic::new(ra0, dec0)
            .project(ra, dec)
            .expect("test positions lie near the tangent point");
        (xi.to_degrees(), eta.to_degrees())
    }

    /// The inverse of [`sky_to_tangent`].
    pub fn tangent_to_sky(ra0: f64, dec0: f64, xi: f64, eta: f64) -> (f64, f64) {
        Gnomonic::new(ra0, dec0).deproject(xi.to_radians(), eta.to_radians())
    }

    /// The one source of `cat` that `is` picks; panics unless there is
    /// exactly one.
    fn the_one(cat: &[TruthSource], is: fn(&SourceKind) -> bool) -> &TruthSource {
        let found: Vec<&TruthSource> = cat.iter().filter(|s| is(&s.kind)).collect();
        assert_eq!(found.len(), 1, "one such source in the catalogue");
        found[0]
    }

    /// The catalogue's variable star, its amplitude (mag) and period (days).
    pub fn the_variable(cat: &[TruthSource]) -> (&TruthSource, f64, f64) {
        let v = the_one(cat, |k| matches!(k, SourceKind::Variable { .. }));
        let SourceKind::Variable {
            amplitude_mag,
            period_days,
            ..
        } = v.kind
        else {
            unreachable!("the_one picked a variable")
        };
        (v, amplitude_mag, period_days)
    }

    /// The catalogue's moving object.
    pub fn the_mover(cat: &[TruthSource]) -> &TruthSource {
        the_one(cat, |k| matches!(k, SourceKind::Mover { .. }))
    }
}
