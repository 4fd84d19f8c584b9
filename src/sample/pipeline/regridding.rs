//! Regridding: every reduced frame resampled onto one sky grid, flux-scaled
//! to a common zeropoint, ready to be coadded.
//!
//! Frames from different chips, dithers and nights only combine pixel by
//! pixel once they share a projection and a flux scale. Each regridded frame
//! covers just the bounding box of its footprint on the grid (the grid
//! offset is in its header), which keeps the files small.

use super::Run;
use super::fits_output::{
    card, common_cards, exposure_cards, filter_card, seeing_card, target_card, wcs_cards,
};
use super::image_math::robust_stats;
use super::reduction::ScienceFrames;
use crate::imaging::fits::{Card, Compression, PixelData};
use crate::imaging::raster::Raster;
use crate::imaging::resample;
use crate::imaging::wcs::{Wcs, WcsKeywords};
use crate::model::FrameClass;
use crate::sample::SampleError;
use crate::sample::camera::{Camera, icrs_tan};
use crate::sample::extract;
use rayon::prelude::*;

use super::observing_run::{DEC0, RA0};
use super::photometric_calibration::FramePhotometry;
use super::raw_exposures::RawScience;
use super::reduction::Reduced;

/// Zeropoint of regridded frames and coadds (mag of 1 ADU/s).
pub(super) const GRID_ZP: f64 = 30.0;

/// The grid every regridded frame and coadd shares: one TAN projection at
/// the camera's pixel scale, large enough for the mosaic at every dither.
pub(super) struct SkyGrid {
    pub(super) kw: WcsKeywords,
    /// Width and height in pixels.
    pub(super) n: usize,
    pub(super) wcs: Wcs,
}

impl SkyGrid {
    pub(super) fn new(cam: &Camera) -> Self {
        let span = 2 * cam.nx + cam.gap;
        let dither_px = (35.0 / cam.pixel_scale) as usize;
        let n = span + 2 * dither_px + 40;
        let s = cam.pixel_scale / 3600.0;
        let centre = (n as f64 + 1.0) / 2.0;
        let kw = icrs_tan((RA0, DEC0), (centre, centre), [[-s, 0.0], [0.0, s]]);
        let wcs = Wcs::new(&kw, n, n).expect("valid grid WCS");
        SkyGrid { kw, n, wcs }
    }
}

/// One frame on the grid: its pixels cover grid columns `x0..` and rows
/// `y0..` (FITS, 1-based).
pub(super) struct Regridded {
    pub(super) x0: usize,
    pub(super) y0: usize,
    pub(super) img: Raster<f32>,
    wcs: WcsKeywords,
    /// Robust noise of the pixels, for the coadd's clipping.
    pub(super) rms: f32,
}

/// Regrids every reduced frame, writing each to `reg/`.
pub(super) fn regrid_frames(
    run: &Run,
    science: &ScienceFrames<'_>,
    illum: &[Raster<f32>],
    grid: &SkyGrid,
) -> Result<Vec<Regridded>, SampleError> {
    let frames: Vec<_> = science.iter().collect();
    frames
        .par_iter()
        .map(|&(s, r, p)| {
            let ill = &illum[s.chip * 3 + s.exp.band];
            regrid_frame(run, s, r, p, ill, grid)
        })
        .collect()
}

fn regrid_frame(
    run: &Run,
    s: &RawScience,
    r: &Reduced,
    p: &FramePhotometry,
    illum: &Raster<f32>,
    grid: &SkyGrid,
) -> Result<Regridded, SampleError> {
    let rel = format!("reg/reg_{}.fits", s.name());
    let (corrected, sky_level) = sky_subtracted(&r.img, illum);
    let scale = (10f64.powf(0.4 * (GRID_ZP - p.zeropoint)) / s.exp.exptime) as f32;
    let rg = regrid(&corrected, &r.wcs, grid, scale).ok_or_else(|| SampleError::Io {
        path: run.dir.join(&rel),
        source: std::io::Error::other("frame does not project onto the grid"),
    })?;
    let cards = regridded_cards(s, p, &rg, sky_level);
    run.write_image(
        &rel,
        PixelData::F32(&rg.img),
        &cards,
        Compression::None,
        "regridded frames",
    )?;
    Ok(rg)
}

/// The illumination-corrected frame with its background removed, and the
/// median background level. Regridded frames are sky-subtracted (as SWarp
/// makes them), so that frames of different nights combine seamlessly.
fn sky_subtracted(img: &Raster<f32>, illum: &Raster<f32>) -> (Raster<f32>, f32) {
    let mut corrected = img.clone();
    for (v, i) in corrected.data.iter_mut().zip(&illum.data) {
        *v *= i;
    }
    let bg = extract::estimate_background(&corrected, 64);
    let (sky_level, _) = robust_stats(&bg.level);
    for (v, b) in corrected.data.iter_mut().zip(&bg.level.data) {
        *v -= b;
    }
    (corrected, sky_level)
}

fn regridded_cards(
    s: &RawScience,
    p: &FramePhotometry,
    rg: &Regridded,
    sky_level: f32,
) -> Vec<Card> {
    let mut cards = common_cards("regridded", FrameClass::RegriddedFrame, Some(s.chip));
    cards.extend([target_card(), filter_card(s.exp.band)]);
    cards.extend(exposure_cards(s.exp.exptime, s.exp.start));
    cards.extend([
        card("BUNIT", "adu/s", "flux-scaled to MAGZPT"),
        card("MAGZPT", GRID_ZP, "[mag] zeropoint for 1 unit"),
        seeing_card(p.seeing, "[arcsec] median stellar FWHM"),
        card("GRIDX0", rg.x0 as i64, "grid column of pixel 1"),
        card("GRIDY0", rg.y0 as i64, "grid row of pixel 1"),
        card("RESAMPLE", "bilinear", "resampling kernel"),
        card("SKYSUB", true, "background subtracted before resampling"),
        card(
            "SKYLEVEL",
            f64::from(sky_level).round(),
            "[adu] median background removed",
        ),
    ]);
    cards.extend(wcs_cards(&rg.wcs));
    cards
}

/// Spacing of the lattice on which the sky → source-pixel map is evaluated
/// exactly; for TAN over 16 pixels interpolating in between is accurate to
/// far below a micro-pixel.
const LATTICE_STEP: usize = 16;

/// Resamples `src` (with WCS `src_wcs`) times `scale` onto the grid, inside
/// the bounding box of its footprint, with the crate's one bilinear
/// resampler: edge pixels reach half a pixel beyond their centres, and
/// next to a masked (NaN) pixel the nearest source pixel is taken, so masks
/// do not grow on the grid.
fn regrid(src: &Raster<f32>, src_wcs: &Wcs, grid: &SkyGrid, scale: f32) -> Option<Regridded> {
    let (x0, y0, w, h) = footprint_box(src, src_wcs, grid)?;
    let lattice = SourceLattice::new(src_wcs, grid, (x0, y0), (w, h));
    let rows: Vec<Vec<f32>> = (0..h)
        .into_par_iter()
        .map(|yy| {
            (0..w)
                .map(|xx| {
                    // The lattice gives FITS positions; the resampler takes
                    // zero-based ones (pixel centres at integers).
                    let (sx, sy) = lattice.at(xx, yy);
                    resample::bilinear(src, sx - 1.0, sy - 1.0) * scale
                })
                .collect()
        })
        .collect();
    let img = Raster::from_vec(w, h, rows.concat());
    let mut wcs = grid.kw.clone();
    wcs.crpix1 -= (x0 - 1) as f64;
    wcs.crpix2 -= (y0 - 1) as f64;
    let (_, rms) = robust_stats(&img);
    Some(Regridded {
        x0,
        y0,
        img,
        wcs,
        rms,
    })
}

/// The box of grid pixels (first column and row, 1-based, then width and
/// height) that covers the footprint of `src`, with a pixel to spare and
/// clipped to the grid.
fn footprint_box(
    src: &Raster<f32>,
    src_wcs: &Wcs,
    grid: &SkyGrid,
) -> Option<(usize, usize, usize, usize)> {
    let corners = src_wcs.footprint(src.width, src.height)?;
    let (mut xmin, mut xmax, mut ymin, mut ymax) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (ra, dec) in corners {
        let (x, y) = grid.wcs.sky_to_pix(ra, dec)?;
        xmin = xmin.min(x);
        xmax = xmax.max(x);
        ymin = ymin.min(y);
        ymax = ymax.max(y);
    }
    let x0 = (xmin.floor() as i64 - 1).max(1) as usize;
    let y0 = (ymin.floor() as i64 - 1).max(1) as usize;
    let x1 = ((xmax.ceil() as i64 + 1) as usize).min(grid.n);
    let y1 = ((ymax.ceil() as i64 + 1) as usize).min(grid.n);
    Some((x0, y0, x1 - x0 + 1, y1 - y0 + 1))
}

/// The source-pixel position of every [`LATTICE_STEP`]-th grid pixel of a
/// box, interpolated bilinearly in between.
struct SourceLattice {
    points: Vec<(f64, f64)>,
    /// Lattice points per row.
    lw: usize,
}

impl SourceLattice {
    fn new(
        src_wcs: &Wcs,
        grid: &SkyGrid,
        (x0, y0): (usize, usize),
        (w, h): (usize, usize),
    ) -> Self {
        let (lw, lh) = (w / LATTICE_STEP + 2, h / LATTICE_STEP + 2);
        let mut points = vec![(f64::NAN, f64::NAN); lw * lh];
        for j in 0..lh {
            for i in 0..lw {
                let (gx, gy) = (
                    (x0 + i * LATTICE_STEP) as f64,
                    (y0 + j * LATTICE_STEP) as f64,
                );
                if let Some((ra, dec)) = grid.wcs.pix_to_sky(gx, gy)
                    && let Some(p) = src_wcs.sky_to_pix(ra, dec)
                {
                    points[j * lw + i] = p;
                }
            }
        }
        SourceLattice { points, lw }
    }

    /// The FITS source position of box pixel (`xx`, `yy`), zero-based.
    fn at(&self, xx: usize, yy: usize) -> (f64, f64) {
        let (j, ty) = (
            yy / LATTICE_STEP,
            (yy % LATTICE_STEP) as f64 / LATTICE_STEP as f64,
        );
        let (i, tx) = (
            xx / LATTICE_STEP,
            (xx % LATTICE_STEP) as f64 / LATTICE_STEP as f64,
        );
        let l = |a: usize, b: usize| self.points[b * self.lw + a];
        let (p00, p10, p01, p11) = (l(i, j), l(i + 1, j), l(i, j + 1), l(i + 1, j + 1));
        let mix = |c: fn((f64, f64)) -> f64| {
            c(p00) * (1.0 - tx) * (1.0 - ty)
                + c(p10) * tx * (1.0 - ty)
                + c(p01) * (1.0 - tx) * ty
                + c(p11) * tx * ty
        };
        (mix(|p| p.0), mix(|p| p.1))
    }
}
