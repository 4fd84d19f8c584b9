//! Reduction: calibrated, masked science frames, the sources on them, and
//! the reference stars among those sources.
//!
//! Reduction happens in memory first, because the frames' headers carry the
//! zeropoint and seeing that only the photometric calibration (fitted to the
//! reference stars found here) can give; [`write_reduced_frames`] writes them
//! once those are known.

use super::Run;
use super::calibration_frames::Calibrations;
use super::fits_output::{
    ImageCalibration, card, header_zeropoint, seeing_card, source_list_cards,
};
use super::image_math::robust_stats;
use super::lineage_records::{Lineage, processing};
use super::observing_run::Observing;
use super::photometric_calibration::{FramePhotometry, illumination_key};
use super::raw_exposures::{RawScience, SATURATION, raw_science_cards};
use super::regridding::GRID_ZP;
use crate::catalog::ingest::DepRef;
use crate::imaging::fits::{Card, Compression, PixelData};
use crate::imaging::raster::Raster;
use crate::imaging::wcs::Wcs;
use crate::model::FrameClass;
use crate::sample::SampleError;
use crate::sample::camera::Camera;
use crate::sample::extract::{self, Detection, ExtractParams};
use crate::sample::sky_simulator::{SourceKind, TruthSource};
use rayon::prelude::*;

/// One reduced science frame with what was measured on it.
pub(super) struct Reduced {
    pub(super) img: Raster<f32>,
    pub(super) dets: Vec<Detection>,
    /// The reference stars among `dets`.
    pub(super) matched: Vec<Matched>,
    pub(super) wcs: Wcs,
    /// The fringe frame subtracted and its fitted scale (i band only).
    pub(super) fringe_scale: Option<(String, f32)>,
}

/// A detection matched to the reference catalogue.
#[derive(Clone)]
pub(super) struct Matched {
    pub(super) det: Detection,
    pub(super) mag: f64,
}

/// The science frames as the later stages see them: raw, reduced and
/// photometrically calibrated, all in the same order.
pub(super) struct ScienceFrames<'a> {
    pub(super) raw: &'a [RawScience],
    pub(super) reduced: &'a [Reduced],
    pub(super) photometry: &'a [FramePhotometry],
}

impl<'a> ScienceFrames<'a> {
    /// Every frame with its reduction and photometry.
    pub(super) fn iter(
        &self,
    ) -> impl Iterator<Item = (&'a RawScience, &'a Reduced, &'a FramePhotometry)> {
        self.raw
            .iter()
            .zip(self.reduced)
            .zip(self.photometry)
            .map(|((s, r), p)| (s, r, p))
    }
}

/// Calibrates every science frame, masks its bad pixels and cosmic rays,
/// extracts its sources and matches them to the reference stars.
pub(super) fn reduce_science(
    run: &Run,
    obs: &Observing,
    sci: &[RawScience],
    flattened: &[Raster<f32>],
    cal: &Calibrations,
) -> Vec<Reduced> {
    sci.par_iter()
        .zip(flattened)
        .map(|(s, f)| {
            let (img, fringe_scale) = cal.finish(s, f);
            reduce_frame(&run.cam, &obs.truth, s, img, fringe_scale)
        })
        .collect()
}

fn reduce_frame(
    cam: &Camera,
    truth: &[TruthSource],
    s: &RawScience,
    mut img: Raster<f32>,
    fringe_scale: Option<(String, f32)>,
) -> Reduced {
    let (n, ch) = (cam.nx, s.chip);
    let (_, sig) = robust_stats(&img);
    for p in cosmic_mask(&img, sig) {
        img.data[p] = f32::NAN;
    }
    let fwhm = s.exp.seeing / cam.pixel_scale;
    let sat = (SATURATION - cam.bias_levels[ch] - 200.0) as f32 * 0.8;
    let dets = extract::extract(&img, &extract_params(fwhm, cam.gains[ch], sat));
    let wcs = Wcs::new(&s.wcs, n, n).expect("valid camera WCS");
    let matched = match_stars(
        &dets,
        truth,
        s.exp.band,
        s.exp.mjd_mid(),
        &wcs,
        1.0 / cam.pixel_scale,
    );
    Reduced {
        img,
        dets,
        matched,
        wcs,
        fringe_scale,
    }
}

/// Detects cosmic-ray hits: pixels far above all their neighbours and much
/// sharper than any star the optics can make.
fn cosmic_mask(img: &Raster<f32>, sigma: f32) -> Vec<usize> {
    let (w, h) = (img.width, img.height);
    let mut hits = Vec::new();
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let v = img.get(x, y);
            if !v.is_finite() {
                continue;
            }
            let mut nb = [0f32; 8];
            let mut k = 0;
            for dy in [-1i32, 0, 1] {
                for dx in [-1i32, 0, 1] {
                    if dx != 0 || dy != 0 {
                        nb[k] = img.get((x as i32 + dx) as usize, (y as i32 + dy) as usize);
                        k += 1;
                    }
                }
            }
            if nb.iter().any(|n| !n.is_finite()) {
                continue;
            }
            let mut sorted = nb;
            sorted.sort_by(f32::total_cmp);
            let med = (sorted[3] + sorted[4]) / 2.0;
            let four =
                (img.get(x - 1, y) + img.get(x + 1, y) + img.get(x, y - 1) + img.get(x, y + 1))
                    / 4.0;
            if v - sorted[7] > 5.0 * sigma && v - med > 3.0 * (four - med).max(sigma) {
                hits.push(y * w + x);
            }
        }
    }
    hits
}

/// The extraction settings for an image with PSF FWHM `fwhm_px`.
pub(super) fn extract_params(fwhm_px: f64, gain: f64, saturation: f32) -> ExtractParams {
    ExtractParams {
        threshold_sigma: 5.0,
        min_pixels: 5,
        aperture_radius: (1.5 * fwhm_px).max(3.0),
        psf_fwhm: fwhm_px,
        gain,
        saturation,
        mesh_size: 64,
    }
}

/// Matches detections to unsaturated, isolated reference stars.
fn match_stars(
    dets: &[Detection],
    truth: &[TruthSource],
    band: usize,
    mjd: f64,
    w: &Wcs,
    radius_px: f64,
) -> Vec<Matched> {
    let mut out = Vec::new();
    let stars: Vec<(f64, f64, f64)> = truth
        .iter()
        .filter(|t| matches!(t.kind, SourceKind::Star))
        .filter_map(|t| {
            let (ra, dec) = t.position_at(mjd);
            let (x, y) = w.sky_to_pix(ra, dec)?;
            Some((x, y, t.mag_at(band, mjd)))
        })
        .collect();
    for d in dets {
        if d.flags & (4 | 8 | 16) != 0 {
            continue;
        }
        let mut near = stars
            .iter()
            .filter(|s| (s.0 - d.x).hypot(s.1 - d.y) < 3.0 * radius_px);
        if let (Some(s), None) = (near.next(), near.next())
            && (s.0 - d.x).hypot(s.1 - d.y) < radius_px
            && (16.5..21.5).contains(&s.2)
        {
            out.push(Matched {
                det: d.clone(),
                mag: s.2,
            });
        }
    }
    out
}

/// Writes every reduced frame to `red/` and its source list to `cat/`, and
/// records the source lists (the frames are recorded with their regridded
/// frames, by [`record_reduced_and_regridded`]).
pub(super) fn write_reduced_frames(
    run: &Run,
    science: &ScienceFrames<'_>,
    lineage: &mut Lineage,
) -> Result<(), SampleError> {
    let frames: Vec<_> = science.iter().collect();
    frames.par_iter().try_for_each(|&(s, r, p)| {
        let name = s.name();
        let cards = reduced_cards(s, &run.cam, r, p);
        let px = PixelData::F32(&r.img);
        let rel = format!("red/red_{name}.fits");
        run.write_image(&rel, px, &cards, Compression::None, "reduced frames")?;
        let cal = ImageCalibration {
            wcs: &r.wcs,
            zeropoint: p.zeropoint,
            exptime: s.exp.exptime,
        };
        let cards = source_list_cards(s.exp.band, p.zeropoint);
        run.write_source_list(
            &format!("sl_red_{name}"),
            &r.dets,
            &cal,
            &cards,
            "source lists",
        )
    })?;
    for s in science.raw {
        let name = s.name();
        let created = processing(3000 + s.exp.index * 4 + s.chip);
        lineage.source_list(
            &format!("sl_red_{name}"),
            format!("SourceList red_{name}"),
            &format!("red_{name}"),
            created,
        );
    }
    Ok(())
}

/// The raw frame's header without what reduction changed (raw sections,
/// frame type, saturation), and the calibration it gained.
fn reduced_cards(s: &RawScience, cam: &Camera, r: &Reduced, p: &FramePhotometry) -> Vec<Card> {
    let img = &r.img;
    let mut cards = raw_science_cards(s, cam);
    cards.retain(|c| {
        !matches!(
            c.key.as_str(),
            "DATASEC" | "BIASSEC" | "IMAGETYP" | "WCCLASS" | "SATURATE"
        )
    });
    cards.extend([
        card("IMAGETYP", "reduced", ""),
        card(
            "WCCLASS",
            FrameClass::ReducedScienceFrame.name(),
            "wisecut frame class",
        ),
        card("BUNIT", "adu", ""),
        card(
            "MAGZPT",
            header_zeropoint(p.zeropoint),
            "[mag] zeropoint for 1 adu/s",
        ),
        seeing_card(p.seeing, "[arcsec] median stellar FWHM"),
        card(
            "NMASKED",
            img.data.iter().filter(|v| v.is_nan()).count() as i64,
            "hot, cold and cosmic-ray pixels set to NaN",
        ),
    ]);
    if let Some((key, k)) = &r.fringe_scale {
        // IRAF's FRINGCOR names the fringe frame subtracted; FRNGSCL says
        // how much of it (fitted per exposure).
        cards.push(card(
            "FRINGCOR",
            format!("{key}.fits"),
            "fringe frame subtracted",
        ));
        cards.push(card(
            "FRNGSCL",
            f64::from(*k),
            "fitted scale of the fringe frame",
        ));
    }
    cards
}

/// Records each reduced frame, with every calibration it used, followed by
/// its regridded frame: the manifest keeps a frame's products together.
pub(super) fn record_reduced_and_regridded(
    lineage: &mut Lineage,
    science: &ScienceFrames<'_>,
    cal: &Calibrations,
) {
    for (s, _, p) in science.iter() {
        let name = s.name();
        let (nt, ch, b) = (s.exp.night, s.chip, s.exp.band);
        let bias = cal.nightly.bias(nt, ch);
        let mut deps = vec![
            DepRef::key("raw", &s.key),
            DepRef::key("bias", &bias.bias.key),
            DepRef::key("flat", &cal.nightly.flat(nt, ch, b).key),
            DepRef::key("hotpixelmap", &bias.hot.key),
            DepRef::key("coldpixelmap", &cal.nightly.cold(nt, ch).key),
        ];
        if b == 2 {
            deps.push(DepRef::key("fringe", &cal.fringes[ch].key));
        }
        deps.push(DepRef::key("illumination", &illumination_key(b, ch)));
        let rkey = format!("red_{name}");
        let (path, created) = (
            format!("red/{rkey}.fits"),
            processing(1000 + s.exp.index * 4 + ch),
        );
        let re = lineage.frame(&rkey, FrameClass::ReducedScienceFrame, path, created, deps);
        re.zeropoint = Some(p.zeropoint);
        re.seeing = Some(p.seeing);
        let gkey = format!("reg_{name}");
        let (path, created) = (
            format!("reg/{gkey}.fits"),
            processing(2000 + s.exp.index * 4 + ch),
        );
        let deps = vec![DepRef::key("reduced", &rkey)];
        let ge = lineage.frame(&gkey, FrameClass::RegriddedFrame, path, created, deps);
        ge.zeropoint = Some(GRID_ZP);
        ge.seeing = Some(p.seeing);
    }
}
