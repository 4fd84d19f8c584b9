//! Photometric calibration: the reference stars measured on every frame,
//! the illumination correction each chip and filter needs, and each frame's
//! zeropoint and seeing.
//!
//! A dome flat is lit differently from the night sky, which leaves a smooth
//! error of a few per cent across each chip. Standard stars show it: their
//! measured over expected flux, gathered from all exposures of a chip and
//! filter, is fitted with a low-order surface whose inverse is the
//! illumination correction. Zeropoints are measured only after that
//! correction, as a real pipeline does.

use super::Run;
use super::fits_output::{ImageCalibration, card, common_cards, filter_card};
use super::image_math::{median, robust_stats};
use super::lineage_records::{Lineage, processing};
use super::raw_exposures::RawScience;
use super::reduction::Reduced;
use super::surface_fit::{clipped_fit, surface_value};
use crate::catalog::ingest::DepRef;
use crate::imaging::fits::PixelData;
use crate::imaging::raster::Raster;
use crate::model::FrameClass;
use crate::sample::SampleError;
use crate::sample::camera::CHIP_NAMES;
use crate::sample::extract::Detection;
use crate::sample::sky_simulator::BANDS;
use rayon::prelude::*;

/// The key of the photometric catalogue of a science frame.
fn photcat_key(s: &RawScience) -> String {
    format!("photcat_{}", s.name())
}

/// The key of the illumination correction of `chip` in `band`.
pub(super) fn illumination_key(band: usize, chip: usize) -> String {
    format!("illum_{}_{}", BANDS[band], CHIP_NAMES[chip])
}

/// Writes the reference stars measured on every reduced frame to `cat/`.
pub(super) fn photometric_catalogs(
    run: &Run,
    sci: &[RawScience],
    reduced: &[Reduced],
    lineage: &mut Lineage,
) -> Result<(), SampleError> {
    for (s, r) in sci.iter().zip(reduced) {
        let key = photcat_key(s);
        let dets: Vec<Detection> = r.matched.iter().map(|m| m.det.clone()).collect();
        let cards = vec![
            card("FILTER", BANDS[s.exp.band], ""),
            card("REFCAT", "wisecut-sample truth", "reference catalogue"),
        ];
        let cal = ImageCalibration {
            wcs: &r.wcs,
            zeropoint: s.exp.zeropoint,
            exptime: s.exp.exptime,
        };
        run.write_source_list(&key, &dets, &cal, &cards, "photometric catalogs")?;
        let created = processing(400 + s.exp.index * 4 + s.chip);
        lineage.source_list(&key, format!("PhotSrcCatalog {}", s.key), &s.key, created);
    }
    Ok(())
}

/// The illumination correction of every chip and filter, from the
/// photometric catalogues of all its exposures.
pub(super) fn illumination_corrections(
    run: &Run,
    sci: &[RawScience],
    reduced: &[Reduced],
    lineage: &mut Lineage,
) -> Result<Vec<Raster<f32>>, SampleError> {
    let illum: Vec<Raster<f32>> = (0..12)
        .into_par_iter()
        .map(|k| illumination_correction(run, sci, reduced, k / 3, k % 3))
        .collect::<Result<_, _>>()?;
    for k in 0..12 {
        let (chip, band) = (k / 3, k % 3);
        let deps = sci
            .iter()
            .filter(|s| s.chip == chip && s.exp.band == band)
            .map(|s| DepRef::key("photcat", &photcat_key(s)))
            .collect();
        let (key, valid) = (illumination_key(band, chip), lineage.run_range());
        let class = FrameClass::IlluminationCorrection;
        lineage.calibration(&key, class, processing(600 + k), deps, valid);
    }
    Ok(illum)
}

fn illumination_correction(
    run: &Run,
    sci: &[RawScience],
    reduced: &[Reduced],
    chip: usize,
    band: usize,
) -> Result<Raster<f32>, SampleError> {
    let n = run.cam.nx;
    let mut pts = Vec::new();
    for (s, r) in sci
        .iter()
        .zip(reduced)
        .filter(|(s, _)| s.chip == chip && s.exp.band == band)
    {
        pts.extend(relative_response(s, r, n));
    }
    let (order, coeffs) = fit_illumination(&pts);
    let mut img = Raster::filled(n, n, 1.0f32);
    for y in 0..n {
        for x in 0..n {
            let u = 2.0 * (x as f64 + 0.5) / n as f64 - 1.0;
            let v = 2.0 * (y as f64 + 0.5) / n as f64 - 1.0;
            let q = surface_value(u, v, order, &coeffs);
            img.set(x, y, (1.0 / q.max(0.5)) as f32);
        }
    }
    let (m, _) = robust_stats(&img);
    let img = img.map(|v| v / m);
    let mut cards = common_cards(
        "illumination",
        FrameClass::IlluminationCorrection,
        Some(chip),
    );
    cards.extend([
        card(
            "OBJECT",
            "ILLUMINATION CORRECTION",
            "multiply flat-fielded data by this",
        ),
        filter_card(band),
        card("NSTARS", pts.len() as i64, "reference stars in the fit"),
        card("FITORDER", order as i64, "order of the polynomial surface"),
    ]);
    let key = illumination_key(band, chip);
    run.write_calibration(
        &key,
        PixelData::F32(&img),
        &cards,
        "illumination corrections",
    )?;
    Ok(img)
}

/// Measured over expected flux of the reference stars of one frame at
/// chip coordinates (u, v) in [−1, 1], normalised to a median of 1 so that
/// frames of different transparency fit one surface.
fn relative_response(s: &RawScience, r: &Reduced, n: usize) -> Vec<(f64, f64, f64)> {
    let ratios: Vec<(f64, f64, f64)> = r
        .matched
        .iter()
        .filter(|m| m.det.flux_auto > 0.0)
        .map(|m| {
            let expect = s.exp.exptime * 10f64.powf(-0.4 * (m.mag - s.exp.zeropoint));
            let u = 2.0 * (m.det.x - 0.5) / n as f64 - 1.0;
            let v = 2.0 * (m.det.y - 0.5) / n as f64 - 1.0;
            (u, v, m.det.flux_auto / expect)
        })
        .collect();
    let mut rs: Vec<f32> = ratios.iter().map(|r| r.2 as f32).collect();
    let norm = f64::from(median(&mut rs));
    ratios
        .into_iter()
        .map(|(u, v, q)| (u, v, q / norm))
        .collect()
}

/// A robust illumination surface: the highest order the data support
/// (quadratic from 40 stars, a plane from 12, else flat), fitted with
/// iterative 3σ clipping, and refused in favour of a lower order when it
/// strays more than 10 % from unity anywhere on the chip — real
/// illumination errors are a few per cent, so a larger one is a bad fit.
fn fit_illumination(points: &[(f64, f64, f64)]) -> (usize, Vec<f64>) {
    let max_order = match points.len() {
        n if n >= 40 => 2,
        n if n >= 12 => 1,
        _ => 0,
    };
    for order in (1..=max_order).rev() {
        if let Some(c) = clipped_fit(points, order) {
            let worst = [-1.0, 0.0, 1.0]
                .iter()
                .flat_map(|&u| [-1.0, 0.0, 1.0].map(|v| (u, v)))
                .map(|(u, v)| (surface_value(u, v, order, &c) - 1.0).abs())
                .fold(0.0, f64::max);
            if worst < 0.10 {
                return (order, c);
            }
        }
    }
    (0, vec![1.0])
}

/// A reduced frame's photometric zeropoint (mag of 1 ADU/s) and seeing
/// (arcsec).
pub(super) struct FramePhotometry {
    pub(super) zeropoint: f64,
    pub(super) seeing: f64,
}

/// Zeropoint and seeing of each reduced frame from its reference stars,
/// with the illumination correction applied to their photometry; the
/// planned values where no star was measured.
pub(super) fn zeropoints_and_seeing(
    run: &Run,
    sci: &[RawScience],
    reduced: &[Reduced],
    illum: &[Raster<f32>],
) -> Vec<FramePhotometry> {
    let n = run.cam.nx;
    sci.iter()
        .zip(reduced)
        .map(|(s, r)| {
            let ill = &illum[s.chip * 3 + s.exp.band];
            let mut zps: Vec<f32> = r
                .matched
                .iter()
                .filter(|m| m.det.flux_auto > 0.0)
                .map(|m| {
                    let (ix, iy) = ((m.det.x - 0.5) as usize, (m.det.y - 0.5) as usize);
                    let f = m.det.flux_auto * f64::from(ill.get(ix.min(n - 1), iy.min(n - 1)));
                    (m.mag + 2.5 * (f / s.exp.exptime).log10()) as f32
                })
                .collect();
            let zeropoint = if zps.is_empty() {
                s.exp.zeropoint
            } else {
                f64::from(median(&mut zps))
            };
            let mut fw: Vec<f32> = r.matched.iter().map(|m| m.det.fwhm as f32).collect();
            let seeing = if fw.is_empty() {
                s.exp.seeing
            } else {
                f64::from(median(&mut fw)) * run.cam.pixel_scale
            };
            FramePhotometry { zeropoint, seeing }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(n: usize, noise: f64) -> Vec<(f64, f64, f64)> {
        // A deterministic scatter of points with alternating-sign noise.
        (0..n)
            .map(|i| {
                let u = ((i * 37) % 101) as f64 / 50.0 - 1.0;
                let v = ((i * 59) % 103) as f64 / 51.0 - 1.0;
                let e = if i % 2 == 0 { noise } else { -noise };
                (u, v, 1.0 + 0.02 * u - 0.03 * v + e)
            })
            .collect()
    }

    #[test]
    fn illumination_fit_recovers_a_plane_and_ignores_outliers() {
        let mut pts = plane(30, 0.002);
        pts[3].2 = 1.5; // a blended star
        let (order, c) = fit_illumination(&pts);
        assert_eq!(order, 1);
        assert!(
            (c[0] - 1.0).abs() < 0.003
                && (c[1] - 0.02).abs() < 0.003
                && (c[2] + 0.03).abs() < 0.003,
            "{c:?}"
        );
    }

    #[test]
    fn illumination_fit_falls_back_to_flat_on_too_few_or_wild_points() {
        assert_eq!(fit_illumination(&plane(5, 0.0)), (0, vec![1.0]));
        let wild: Vec<_> = plane(30, 0.0)
            .into_iter()
            .map(|(u, v, _)| (u, v, 1.0 + 0.5 * u))
            .collect();
        assert_eq!(fit_illumination(&wild).0, 0);
    }
}
