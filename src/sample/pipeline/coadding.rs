//! Coadds: per filter, the clipped mean of all regridded frames on the sky
//! grid, and the sources found on it.
//!
//! The coadd is the deepest image of the survey and the one the colour
//! associations are made on. A clipped mean rather than a median keeps the
//! noise of a mean while rejecting what a single frame alone shows: cosmic
//! rays that escaped masking, the moving object, satellite trails.

use super::Run;
use super::fits_output::{
    ImageCalibration, card, common_cards, filter_card, fits_date, seeing_card, source_list_cards,
    target_card, wcs_cards,
};
use super::image_math::median;
use super::lineage_records::{Lineage, processing};
use super::observing_run::mjd;
use super::raw_exposures::RawScience;
use super::reduction::{ScienceFrames, extract_params};
use super::regridding::{GRID_ZP, Regridded, SkyGrid};
use crate::catalog::ingest::DepRef;
use crate::imaging::fits::{Card, Compression, PixelData};
use crate::imaging::raster::Raster;
use crate::model::FrameClass;
use crate::sample::SampleError;
use crate::sample::extract::{self, Detection};
use crate::sample::sky_simulator::BANDS;
use rayon::prelude::*;

/// The coadd of one filter with the sources found on it.
pub(super) struct Coadd {
    pub(super) dets: Vec<Detection>,
}

/// Coadds every filter, writing `coadd/coadd_{band}.fits` and its source
/// list.
pub(super) fn coadds(
    run: &Run,
    science: &ScienceFrames<'_>,
    regridded: &[Regridded],
    grid: &SkyGrid,
    lineage: &mut Lineage,
) -> Result<Vec<Coadd>, SampleError> {
    let coadds: Vec<Coadd> = (0..3)
        .into_par_iter()
        .map(|band| coadd(run, science, regridded, grid, band))
        .collect::<Result<_, _>>()?;
    for band in 0..3 {
        let key = format!("coadd_{}", BANDS[band]);
        let deps = science
            .raw
            .iter()
            .filter(|s| s.exp.band == band)
            .map(|s| DepRef::key("regridded", &format!("reg_{}", s.name())))
            .collect();
        let (path, class) = (
            format!("coadd/{key}.fits"),
            FrameClass::CoaddedRegriddedFrame,
        );
        let ce = lineage.frame(&key, class, path, processing(5000 + band), deps);
        ce.zeropoint = Some(GRID_ZP);
        let name = format!("SourceList {key}");
        lineage.source_list(&format!("sl_{key}"), name, &key, processing(5100 + band));
    }
    Ok(coadds)
}

fn coadd(
    run: &Run,
    science: &ScienceFrames<'_>,
    regridded: &[Regridded],
    grid: &SkyGrid,
    band: usize,
) -> Result<Coadd, SampleError> {
    let members: Vec<(&RawScience, &Regridded)> = science
        .raw
        .iter()
        .zip(regridded)
        .filter(|(s, _)| s.exp.band == band)
        .collect();
    let img = clipped_mean_image(&members, grid.n);
    let mut seeing: Vec<f32> = members
        .iter()
        .map(|(s, _)| science.photometry[s.exp.index * 4 + s.chip].seeing as f32)
        .collect();
    let seeing = f64::from(median(&mut seeing));
    let key = format!("coadd_{}", BANDS[band]);
    let cards = coadd_cards(&members, band, seeing, grid);
    let rel = format!("coadd/{key}.fits");
    run.write_image(
        &rel,
        PixelData::F32(&img),
        &cards,
        Compression::None,
        "coadds",
    )?;
    let params = extract_params(seeing / run.cam.pixel_scale, 1e6, f32::INFINITY);
    let dets = extract::extract(&img, &params);
    let cal = ImageCalibration {
        wcs: &grid.wcs,
        zeropoint: GRID_ZP,
        exptime: 1.0,
    };
    let cards = source_list_cards(band, GRID_ZP);
    run.write_source_list(&format!("sl_{key}"), &dets, &cal, &cards, "source lists")?;
    Ok(Coadd { dets })
}

/// The per-pixel clipped mean of the frames on the `grid_n`² grid.
fn clipped_mean_image(members: &[(&RawScience, &Regridded)], grid_n: usize) -> Raster<f32> {
    let rows: Vec<Vec<f32>> = (0..grid_n)
        .into_par_iter()
        .map(|y| {
            let mut row = vec![f32::NAN; grid_n];
            let mut vals: Vec<(f32, f32)> = Vec::with_capacity(members.len());
            for (x, out) in row.iter_mut().enumerate() {
                vals.clear();
                for (_, rg) in members {
                    let (gx, gy) = (x + 1, y + 1);
                    if gx >= rg.x0
                        && gy >= rg.y0
                        && gx - rg.x0 < rg.img.width
                        && gy - rg.y0 < rg.img.height
                    {
                        let v = rg.img.get(gx - rg.x0, gy - rg.y0);
                        if v.is_finite() {
                            vals.push((v, rg.rms));
                        }
                    }
                }
                if !vals.is_empty() {
                    *out = clipped_mean(&vals);
                }
            }
            row
        })
        .collect();
    Raster::from_vec(grid_n, grid_n, rows.concat())
}

/// The mean of (value, frame rms) pairs without those far from their
/// median; with fewer than three values nothing can be called an outlier.
fn clipped_mean(vals: &[(f32, f32)]) -> f32 {
    let mut vs: Vec<f32> = vals.iter().map(|v| v.0).collect();
    let med = median(&mut vs);
    let (mut s, mut k) = (0.0f32, 0u32);
    for &(v, rms) in vals {
        if vals.len() < 3 || (v - med).abs() < 5.0 * rms.max(1e-6) {
            s += v;
            k += 1;
        }
    }
    if k > 0 { s / k as f32 } else { med }
}

fn coadd_cards(
    members: &[(&RawScience, &Regridded)],
    band: usize,
    seeing: f64,
    grid: &SkyGrid,
) -> Vec<Card> {
    let first = members[0].0.exp.start;
    // The depth of a pixel: each exposure counts once however many of its
    // chips were combined (one chip covers a given pixel), and the time
    // coverage runs to the end of the last exposure, as ObsCore's t_max
    // and t_exptime mean.
    let mut exposures: Vec<&super::observing_run::Exposure> =
        members.iter().map(|(s, _)| &s.exp).collect();
    exposures.sort_by_key(|e| e.index);
    exposures.dedup_by_key(|e| e.index);
    let depth: f64 = exposures.iter().map(|e| e.exptime).sum();
    let end = exposures
        .iter()
        .map(|e| e.start + chrono::Duration::milliseconds((e.exptime * 1000.0) as i64))
        .max()
        .unwrap_or(first);
    let mut cards = common_cards("coadd", FrameClass::CoaddedRegriddedFrame, None);
    cards.extend([
        target_card(),
        filter_card(band),
        card(
            "EXPTIME",
            depth,
            "[s] exposure time of one pixel (summed exposures)",
        ),
        card(
            "DATE-OBS",
            fits_date(first),
            "UTC start of the first exposure",
        ),
        card("MJD-OBS", mjd(first), "MJD start of the first exposure"),
        card("DATE-END", fits_date(end), "UTC end of the last exposure"),
        card("MJD-END", mjd(end), "MJD end of the last exposure"),
        card(
            "NCOMBINE",
            members.len() as i64,
            "regridded frames combined",
        ),
        card("COMBINE", "clipped mean", ""),
        card("BUNIT", "adu/s", "flux-scaled to MAGZPT"),
        card("MAGZPT", GRID_ZP, "[mag] zeropoint for 1 unit"),
        seeing_card(seeing, "[arcsec] median stellar FWHM of the inputs"),
    ]);
    cards.extend(wcs_cards(&grid.kw));
    cards
}
