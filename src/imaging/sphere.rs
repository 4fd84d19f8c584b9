//! Geometry on the celestial sphere: the one angular separation and the one
//! gnomonic (TAN) projection of the code base.
//!
//! Footprint overlap tests (SIA, SODA), cone searches, coverage maps and the
//! sample survey's camera all need these two; having one of each means one
//! convention for longitude wrap-around and one place to check against
//! astropy. The projection is CDS's `mapproj` (the crate behind `wcs`), so
//! it agrees with the WCS evaluation of frames to rounding.

use mapproj::zenithal::tan::Tan;
use mapproj::{CenteredProjection, LonLat, ProjXY, Projection};

/// Angular distance between two (RA, Dec) positions, in degrees.
///
/// The haversine form: exact at small separations (where the cosine formula
/// loses digits), which is where cone searches and cross-matching live.
pub fn separation_deg(ra1: f64, dec1: f64, ra2: f64, dec2: f64) -> f64 {
    let (d1, d2) = (dec1.to_radians(), dec2.to_radians());
    let h = ((d2 - d1) / 2.0).sin().powi(2)
        + d1.cos() * d2.cos() * ((ra2 - ra1).to_radians() / 2.0).sin().powi(2);
    2.0 * h.sqrt().min(1.0).asin().to_degrees()
}

/// [`separation_deg`] of two (RA, Dec) pairs, the form footprints and
/// regions are stored in.
pub fn separation(a: (f64, f64), b: (f64, f64)) -> f64 {
    separation_deg(a.0, a.1, b.0, b.1)
}

/// The gnomonic projection about a tangent point: great circles become
/// straight lines, so spherical polygons become plane polygons.
pub struct Gnomonic {
    centre: (f64, f64),
    projection: CenteredProjection<Tan>,
}

impl std::fmt::Debug for Gnomonic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gnomonic")
            .field("centre", &self.centre)
            .finish()
    }
}

impl Gnomonic {
    /// The projection tangent at (`ra`, `dec`) in degrees.
    pub fn new(ra: f64, dec: f64) -> Self {
        let mut projection = CenteredProjection::new(Tan::new());
        projection.set_proj_center_from_lonlat(&LonLat::new(ra.to_radians(), dec.to_radians()));
        Self {
            centre: (ra, dec),
            projection,
        }
    }

    /// The tangent point (degrees).
    pub fn centre(&self) -> (f64, f64) {
        self.centre
    }

    /// Standard coordinates (ξ towards east, η towards north, in radians on
    /// the tangent plane) of (`ra`, `dec`); `None` for points 90° or more
    /// from the tangent point, which have no image.
    pub fn project(&self, ra: f64, dec: f64) -> Option<(f64, f64)> {
        self.projection
            .proj_lonlat(&LonLat::new(ra.to_radians(), dec.to_radians()))
            .map(|p| (p.x(), p.y()))
    }

    /// The (RA, Dec) in degrees, RA in [0, 360), of standard coordinates.
    pub fn deproject(&self, xi: f64, eta: f64) -> (f64, f64) {
        match self.projection.unproj_lonlat(&ProjXY::new(xi, eta)) {
            Some(ll) => (
                ll.lon().to_degrees().rem_euclid(360.0),
                ll.lat().to_degrees(),
            ),
            // The TAN plane has no invalid points; keep the centre as the
            // only sensible answer rather than inventing NaNs.
            None => self.centre,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separation_matches_known_pairs() {
        assert!((separation_deg(0.0, 0.0, 90.0, 0.0) - 90.0).abs() < 1e-12);
        assert!((separation_deg(359.5, 0.0, 0.5, 0.0) - 1.0).abs() < 1e-12);
        assert!((separation_deg(10.0, 89.0, 190.0, 89.0) - 2.0).abs() < 1e-9);
        // One arcsecond stays one arcsecond at the scale of a source match.
        let one = separation_deg(150.0, 2.0, 150.0, 2.0 + 1.0 / 3600.0) * 3600.0;
        assert!((one - 1.0).abs() < 1e-9, "{one}");
        // Two representations of the pole are the same point.
        assert!(separation((10.0, 90.0), (200.0, 90.0)).abs() < 1e-12);
        assert!((separation((0.0, 0.0), (0.0, 1.0)) - 1.0).abs() < 1e-12);
    }

    /// The standard coordinates of the textbook formulas (Calabretta &
    /// Greisen 2002, eq. 54 with the native pole at the tangent point).
    fn textbook(ra: f64, dec: f64, ra0: f64, dec0: f64) -> (f64, f64) {
        let (a, d, a0, d0) = (
            ra.to_radians(),
            dec.to_radians(),
            ra0.to_radians(),
            dec0.to_radians(),
        );
        let cosc = d0.sin() * d.sin() + d0.cos() * d.cos() * (a - a0).cos();
        (
            d.cos() * (a - a0).sin() / cosc,
            (d0.cos() * d.sin() - d0.sin() * d.cos() * (a - a0).cos()) / cosc,
        )
    }

    #[test]
    fn projection_agrees_with_the_formula_and_inverts() {
        for &(ra0, dec0) in &[(150.0, 2.2), (0.2, -30.0), (359.9, 85.0), (45.0, -89.0)] {
            let g = Gnomonic::new(ra0, dec0);
            for &(dra, ddec) in &[(0.0, 0.0), (0.3, 0.1), (-0.4, 0.25), (1.5, -2.0)] {
                let (ra, dec) = ((ra0 + dra).rem_euclid(360.0), dec0 + ddec);
                if dec.abs() > 90.0 {
                    continue;
                }
                let (x, y) = g.project(ra, dec).unwrap();
                let (tx, ty) = textbook(ra, dec, ra0, dec0);
                assert!((x - tx).abs() < 1e-12 && (y - ty).abs() < 1e-12);
                let (r2, d2) = g.deproject(x, y);
                assert!(
                    separation_deg(ra, dec, r2, d2) < 1e-9,
                    "{ra} {dec} -> {r2} {d2}"
                );
            }
        }
    }

    #[test]
    fn far_side_has_no_image() {
        let g = Gnomonic::new(10.0, 0.0);
        assert!(g.project(190.0, 0.0).is_none());
        assert!(g.project(100.0, 0.0).is_none());
        assert!(g.project(99.0, 0.0).is_some());
        // East is +ξ, north is +η.
        let (x, y) = g.project(10.5, 0.5).unwrap();
        assert!(x > 0.0 && y > 0.0);
    }
}
