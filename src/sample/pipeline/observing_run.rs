//! Setting up the observing run: the exposures of every night, the truth
//! catalogue of the field and the fixed properties of each chip.
//!
//! Everything the later stages simulate or calibrate is decided here, up
//! front and from the seed alone, so that which stage runs on which thread
//! can never change what the sky or the detector is.

use super::{Run, rng, seed_for};
use crate::imaging::raster::Raster;
use crate::sample::SampleSpec;
use crate::sample::camera::{CHIP_NAMES, Camera};
use crate::sample::sky_simulator::{self as sky, BANDS, TruthSource};
use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Field centre (a quiet high-latitude field).
pub(super) const RA0: f64 = 150.1;
pub(super) const DEC0: f64 = 2.2;
/// Dither offsets in arcsec (RA·cos δ, Dec).
const DITHERS: [(f64, f64); 4] = [(0.0, 0.0), (24.0, 17.0), (-21.0, 29.0), (14.0, -26.0)];
const EXPTIME: [f64; 3] = [120.0, 100.0, 150.0];
/// Zeropoints above the atmosphere (mag for 1 ADU/s) and extinction per airmass.
const ZP0: [f64; 3] = [25.15, 25.30, 24.85];
const EXTINCTION: [f64; 3] = [0.18, 0.10, 0.06];
/// Dark-sky brightness, mag/arcsec².
const SKY_MAG: [f64; 3] = [22.0, 21.1, 20.2];

/// What the later stages observe: the planned exposures, the sky and the
/// detectors.
pub(super) struct Observing {
    pub(super) exposures: Vec<Exposure>,
    pub(super) truth: Vec<TruthSource>,
    /// One per chip.
    pub(super) detectors: Vec<Detector>,
}

/// Plans the run, draws the truth catalogue of the field (with a margin
/// for dithers) and builds the four detectors.
pub(super) fn set_up(run: &Run) -> Observing {
    let (spec, cam) = (run.spec, &run.cam);
    let exposures = plan_exposures(spec, cam);
    let half_width =
        ((2 * cam.nx + cam.gap) as f64 * cam.pixel_scale / 3600.0) / 2.0 + 60.0 / 3600.0;
    let truth = sky::truth_catalogue(spec.seed, RA0, DEC0, half_width, mjd(night_start(0)));
    let detectors = (0..4)
        .into_par_iter()
        .map(|c| make_detector(spec, cam, c))
        .collect();
    Observing {
        exposures,
        truth,
        detectors,
    }
}

pub(super) fn mjd(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 86_400_000.0 + 40587.0
}

pub(super) fn night_start(night: usize) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 0, 30, 0).unwrap() + Duration::days(night as i64)
}

/// One science pointing of the mosaic.
#[derive(Debug, Clone)]
pub(super) struct Exposure {
    pub(super) index: usize,
    pub(super) night: usize,
    pub(super) band: usize,
    pub(super) dither: usize,
    pub(super) start: DateTime<Utc>,
    pub(super) exptime: f64,
    pub(super) ra0: f64,
    pub(super) dec0: f64,
    pub(super) airmass: f64,
    pub(super) seeing: f64,
    pub(super) zeropoint: f64,
    pub(super) sky_adu: f64,
}

impl Exposure {
    pub(super) fn mjd_mid(&self) -> f64 {
        mjd(self.start) + self.exptime / 2.0 / 86400.0
    }

    /// The name of this exposure's frame of `chip`, the stem of every file
    /// made from it.
    pub(super) fn name(&self, chip: usize) -> String {
        format!(
            "n{}_{}_d{}_{}",
            self.night + 1,
            BANDS[self.band],
            self.dither + 1,
            CHIP_NAMES[chip]
        )
    }
}

fn plan_exposures(spec: &SampleSpec, cam: &Camera) -> Vec<Exposure> {
    let mut out = Vec::new();
    let mut r = rng(spec.seed, 1, 0);
    for night in 0..spec.nights {
        let mut t = night_start(night) + Duration::minutes(40);
        for band in 0..3 {
            for dither in 0..spec.dithers {
                let (dx, dy) = DITHERS[dither % DITHERS.len()];
                let airmass =
                    1.08 + 0.05 * (band * spec.dithers + dither) as f64 + r.random::<f64>() * 0.05;
                let zeropoint = ZP0[band] - EXTINCTION[band] * (airmass - 1.0);
                // The second night has some moonlight.
                let sky_mag = SKY_MAG[band] - 0.25 * night as f64;
                let sky_adu = 10f64.powf(-0.4 * (sky_mag - zeropoint))
                    * cam.pixel_scale.powi(2)
                    * EXPTIME[band];
                out.push(Exposure {
                    index: out.len(),
                    night,
                    band,
                    dither,
                    start: t,
                    exptime: EXPTIME[band],
                    ra0: RA0 + dx / 3600.0 / DEC0.to_radians().cos(),
                    dec0: DEC0 + dy / 3600.0,
                    airmass,
                    seeing: 0.8 + 0.45 * r.random::<f64>(),
                    zeropoint,
                    sky_adu,
                });
                t += Duration::seconds(EXPTIME[band] as i64 + 45);
            }
        }
    }
    out
}

/// Static detector properties of one chip.
pub(super) struct Detector {
    pub(super) vignetting: Raster<f32>,
    pub(super) response: Raster<f32>,
    /// The dome-flat illumination error per band.
    pub(super) dome: [Raster<f32>; 3],
    pub(super) fringe: Raster<f32>,
    /// Hot pixels with their extra signal, ADU.
    pub(super) hot: Vec<(usize, usize, f32)>,
    pub(super) bias_pattern: Raster<f32>,
}

fn make_detector(spec: &SampleSpec, cam: &Camera, chip: usize) -> Detector {
    let n = cam.nx;
    let (ox, oy) = cam.chip_origin(chip);
    let (fx, fy) = cam.fp_center();
    let fr = cam.fp_radius();
    let s = spec.seed;
    let mut response = sky::pixel_response(n, n, seed_for(s, 2, chip as u64), 0.01);
    let n_bad = (n * n / 8000).max(6);
    let (hot, cold) = sky::bad_pixels(n, n, seed_for(s, 3, chip as u64), n_bad, n_bad);
    let mut r = rng(s, 4, chip as u64);
    for &(x, y) in &cold {
        let v = response.get(x, y) * (0.05 + 0.35 * r.random::<f32>());
        response.set(x, y, v);
    }
    let hot = hot
        .into_iter()
        .map(|(x, y)| (x, y, 300.0 + 2700.0 * r.random::<f32>()))
        .collect();
    Detector {
        vignetting: sky::vignetting(n, n, ox, oy, fx, fy, fr),
        response,
        dome: [0, 1, 2].map(|b| sky::illumination_pattern(n, n, ox, oy, fx, fy, fr, b)),
        fringe: sky::fringe_pattern(n, n, ox, oy, seed_for(s, 5, 0)),
        hot,
        bias_pattern: bias_structure(cam, &mut r),
    }
}

/// Bias structure: a slow gradient along rows and a faint column pattern,
/// as a real CCD amplifier shows.
fn bias_structure(cam: &Camera, r: &mut ChaCha8Rng) -> Raster<f32> {
    let n = cam.ny;
    let mut bias_pattern = Raster::filled(cam.raw_width(), n, 0.0f32);
    let cols: Vec<f32> = (0..cam.raw_width())
        .map(|_| (r.random::<f32>() - 0.5) * 3.0)
        .collect();
    for y in 0..n {
        for x in 0..cam.raw_width() {
            let v = 4.0 * (y as f32 / n as f32) + cols[x] + 2.0 * (-(x as f32) / 30.0).exp();
            bias_pattern.set(x, y, v);
        }
    }
    bias_pattern
}
