//! The simulated camera: a 2×2 mosaic of CCDs behind one telescope, its focal
//! plane geometry, and the TAN WCS of each chip for a given pointing.
//!
//! Chips are mounted with small individual rotations; the WCS of a chip is the
//! exact TAN mapping the simulator uses to place stars, so a frame's header is
//! the truth, not an approximation of it.

use crate::imaging::wcs::WcsKeywords;

/// Geometry of the mosaic and its detectors.
#[derive(Debug, Clone)]
pub struct Camera {
    /// Light-sensitive columns per chip.
    pub nx: usize,
    /// Rows per chip.
    pub ny: usize,
    /// Overscan columns read out after each row.
    pub overscan: usize,
    /// Gap between chips in pixels.
    pub gap: usize,
    /// Pixel scale in arcsec.
    pub pixel_scale: f64,
    /// Mounting rotation of each chip in degrees.
    pub rotations: [f64; 4],
    /// Gain in e-/ADU of each chip.
    pub gains: [f64; 4],
    /// Read noise in ADU of each chip.
    pub read_noise: [f64; 4],
    /// Bias level in ADU of each chip.
    pub bias_levels: [f64; 4],
    /// Relative quantum efficiency of each chip.
    pub qe: [f64; 4],
}

/// Chip names, in focal-plane order (bottom-left, bottom-right, top-left, top-right).
pub const CHIP_NAMES: [&str; 4] = ["ccd1", "ccd2", "ccd3", "ccd4"];

impl Camera {
    /// The camera for a given chip size.
    pub fn new(nx: usize, ny: usize) -> Self {
        Self {
            nx,
            ny,
            overscan: 32,
            gap: 40,
            pixel_scale: 0.4,
            rotations: [0.06, -0.09, 0.12, -0.04],
            gains: [2.1, 1.9, 2.0, 2.2],
            read_noise: [2.4, 2.9, 2.6, 2.5],
            bias_levels: [1012.0, 987.0, 1043.0, 998.0],
            qe: [1.0, 0.96, 1.03, 0.98],
        }
    }

    /// Columns of a raw frame (data + overscan).
    pub fn raw_width(&self) -> usize {
        self.nx + self.overscan
    }

    /// Focal-plane position of a chip's pixel (0, 0) corner, in pixels.
    pub fn chip_origin(&self, chip: usize) -> (f64, f64) {
        let (i, j) = (chip % 2, chip / 2);
        (
            (i * (self.nx + self.gap)) as f64,
            (j * (self.ny + self.gap)) as f64,
        )
    }

    /// Focal-plane centre (the optical axis), in pixels.
    pub fn fp_center(&self) -> (f64, f64) {
        (
            (2 * self.nx + self.gap) as f64 / 2.0,
            (2 * self.ny + self.gap) as f64 / 2.0,
        )
    }

    /// Distance from the axis to the mosaic's corner, in pixels.
    pub fn fp_radius(&self) -> f64 {
        let (cx, cy) = self.fp_center();
        (cx * cx + cy * cy).sqrt()
    }

    /// The TAN WCS of `chip` when the optical axis points at (ra0, dec0).
    ///
    /// With CD = CD0 · R(θ) (CD0 = diag(−s, s), east to the left), a chip
    /// rotated by θ about its centre c and displaced by d from the axis maps
    /// pixel p to CD0·(R·(p − c) + d), which is CD·(p − CRPIX) for
    /// CRPIX = c − R⁻¹·d.
    pub fn chip_wcs(&self, chip: usize, ra0: f64, dec0: f64) -> WcsKeywords {
        let s = self.pixel_scale / 3600.0;
        let th = self.rotations[chip].to_radians();
        let (c, sn) = (th.cos(), th.sin());
        let (ox, oy) = self.chip_origin(chip);
        // FITS pixel coordinates of the chip centre.
        let (cx, cy) = ((self.nx as f64 + 1.0) / 2.0, (self.ny as f64 + 1.0) / 2.0);
        let (fx, fy) = self.fp_center();
        // Offset of the chip centre from the axis, in pixels.
        let (dx, dy) = (
            ox + self.nx as f64 / 2.0 - fx,
            oy + self.ny as f64 / 2.0 - fy,
        );
        // R⁻¹·d with R = [[c, −s], [s, c]].
        let (rx, ry) = (c * dx + sn * dy, -sn * dx + c * dy);
        icrs_tan(
            (ra0, dec0),
            (cx - rx, cy - ry),
            [[-s * c, s * sn], [s * sn, s * c]],
        )
    }
}

/// A TAN projection on ICRS (J2000) with reference point `crval`, reference
/// pixel `crpix` and matrix `cd`: the WCS of every simulated image, so that
/// chips, regridded frames and coadds are written alike.
pub fn icrs_tan(crval: (f64, f64), crpix: (f64, f64), cd: [[f64; 2]; 2]) -> WcsKeywords {
    WcsKeywords {
        ctype1: "RA---TAN".into(),
        ctype2: "DEC--TAN".into(),
        crval1: crval.0,
        crval2: crval.1,
        crpix1: crpix.0,
        crpix2: crpix.1,
        cd,
        radesys: Some("ICRS".into()),
        equinox: Some(2000.0),
        lonpole: None,
        sip: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::wcs::Wcs;

    #[test]
    fn chips_tile_the_sky_in_focal_plane_order() {
        let cam = Camera::new(512, 512);
        let w: Vec<Wcs> = (0..4)
            .map(|c| Wcs::new(&cam.chip_wcs(c, 150.0, 2.0), 512, 512).unwrap())
            .collect();
        let centre = |i: usize| w[i].pix_to_sky(256.5, 256.5).unwrap();
        // ccd2 is right of ccd1 on the focal plane: smaller RA (east left).
        assert!(centre(1).0 < centre(0).0);
        // ccd3 is above ccd1: larger Dec.
        assert!(centre(2).1 > centre(0).1);
        // Chip centres are (512 + 40) / 2 pixels from the axis in each axis.
        let off = (552.0 / 2.0) * 0.4 / 3600.0;
        assert!((centre(0).1 - (2.0 - off)).abs() < 2e-5, "{:?}", centre(0));
    }

    #[test]
    fn the_axis_falls_in_the_gap_between_all_four_chips() {
        let cam = Camera::new(512, 512);
        for c in 0..4 {
            let w = Wcs::new(&cam.chip_wcs(c, 150.0, 2.0), 512, 512).unwrap();
            let (x, y) = w.sky_to_pix(150.0, 2.0).unwrap();
            let inside = (0.5..512.5).contains(&x) && (0.5..512.5).contains(&y);
            assert!(!inside, "axis inside chip {c} at {x},{y}");
        }
    }
}
