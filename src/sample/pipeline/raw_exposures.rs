//! The raw exposures: what the camera reads out before any calibration.
//!
//! Each night every chip takes bias frames and dome flats in every filter,
//! then dithered science exposures of the field. The simulation applies the
//! detector in the order the light meets it (sky and sources, fringes,
//! vignetting and pixel response, photon noise, cosmic rays, then the
//! amplifier: bias level and structure, hot pixels, read noise, 16-bit
//! quantisation), so the calibration stages have to undo exactly what a real
//! camera does.

use super::fits_output::{
    amplifier_cards, card, common_cards, exposure_cards, filter_card, section_cards, target_card,
    wcs_cards,
};
use super::lineage_records::Lineage;
use super::observing_run::{Detector, Exposure, Observing, night_start};
use super::{Run, rng};
use crate::imaging::fits::{Card, Compression, PixelData};
use crate::imaging::raster::Raster;
use crate::imaging::wcs::{Wcs, WcsKeywords};
use crate::model::FrameClass;
use crate::sample::SampleError;
use crate::sample::camera::{CHIP_NAMES, Camera};
use crate::sample::sky_simulator::{self as sky, BANDS, Psf, TruthSource};
use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Dome-flat level before quantum efficiency, ADU.
const FLAT_LEVEL: f64 = 18000.0;
/// Where the 16-bit ADC saturates, ADU.
pub(super) const SATURATION: f64 = 65535.0;

/// One raw bias (`band` None) or dome-flat exposure of one chip.
pub(super) struct CalRaw {
    pub(super) key: String,
    pub(super) night: usize,
    pub(super) chip: usize,
    pub(super) band: Option<usize>,
    pub(super) raw: Raster<u16>,
    start: DateTime<Utc>,
}

/// Which calibration exposure to take: the `i`-th bias (`band` None) or
/// dome flat of `chip` on `night`.
#[derive(Clone, Copy)]
struct CalJob {
    night: usize,
    chip: usize,
    band: Option<usize>,
    i: usize,
}

/// Raw biases and dome flats of every night and chip, written to `raw/`.
pub(super) fn raw_calibration_exposures(
    run: &Run,
    obs: &Observing,
    lineage: &mut Lineage,
) -> Result<Vec<CalRaw>, SampleError> {
    let spec = run.spec;
    let mut jobs = Vec::new();
    for night in 0..spec.nights {
        for chip in 0..4 {
            for i in 0..spec.n_bias {
                jobs.push(CalJob {
                    night,
                    chip,
                    band: None,
                    i,
                });
            }
            for band in 0..3 {
                for i in 0..spec.n_flat {
                    jobs.push(CalJob {
                        night,
                        chip,
                        band: Some(band),
                        i,
                    });
                }
            }
        }
    }
    let cal_raws: Vec<CalRaw> = jobs
        .par_iter()
        .enumerate()
        .map(|(k, &job)| raw_calibration_exposure(run, &obs.detectors[job.chip], k, job))
        .collect::<Result<_, _>>()?;
    for c in &cal_raws {
        let class = if c.band.is_some() {
            FrameClass::RawDomeFlatFrame
        } else {
            FrameClass::RawBiasFrame
        };
        lineage.frame(
            &c.key,
            class,
            format!("raw/{}.fits", c.key),
            c.start,
            vec![],
        );
    }
    Ok(cal_raws)
}

fn raw_calibration_exposure(
    run: &Run,
    det: &Detector,
    k: usize,
    job: CalJob,
) -> Result<CalRaw, SampleError> {
    let (cam, n) = (&run.cam, run.cam.nx);
    let CalJob {
        night,
        chip,
        band,
        i,
    } = job;
    let mut r = rng(run.spec.seed, 20, k as u64);
    let start = night_start(night) - Duration::minutes(50)
        + Duration::minutes((i + band.map_or(0, |b| 10 + 10 * b)) as i64);
    let (signal, key, exptime) = match band {
        None => (
            Raster::filled(n, n, 0.0f32),
            format!("raw_bias_n{}_{:02}_{}", night + 1, i + 1, CHIP_NAMES[chip]),
            0.0,
        ),
        Some(b) => (
            dome_flat_signal(cam, det, chip, b, i, &mut r),
            format!(
                "raw_flat_n{}_{}_{:02}_{}",
                night + 1,
                BANDS[b],
                i + 1,
                CHIP_NAMES[chip]
            ),
            5.0,
        ),
    };
    let raw = read_out(signal, cam, det, chip, (exptime / 100.0) as f32, &mut r);
    // Flats are stored tile-compressed, biases plain: both kinds exist in
    // real archives and the cutout engine must read both.
    let compression = if band.is_some() {
        Compression::Rice {
            tile: (cam.raw_width(), 1),
        }
    } else {
        Compression::None
    };
    run.write_image(
        &format!("raw/{key}.fits"),
        PixelData::U16(&raw),
        &calibration_cards(cam, chip, band, exptime, start),
        compression,
        "raw calibration exposures",
    )?;
    Ok(CalRaw {
        key,
        night,
        chip,
        band,
        raw,
        start,
    })
}

/// The light of the `i`-th dome flat in `band`: the lamp (a little brighter
/// each exposure) through vignetting, pixel response and the dome's own
/// illumination pattern, with photon noise.
fn dome_flat_signal(
    cam: &Camera,
    det: &Detector,
    chip: usize,
    band: usize,
    i: usize,
    r: &mut ChaCha8Rng,
) -> Raster<f32> {
    let n = cam.nx;
    let level = FLAT_LEVEL * (1.0 + 0.05 * i as f64) * cam.qe[chip];
    let mut s = Raster::filled(n, n, 0.0f32);
    for p in 0..n * n {
        s.data[p] =
            level as f32 * det.vignetting.data[p] * det.response.data[p] * det.dome[band].data[p];
    }
    sky::add_noise(&mut s, cam.gains[chip], 0.0, r);
    s
}

fn calibration_cards(
    cam: &Camera,
    chip: usize,
    band: Option<usize>,
    exptime: f64,
    start: DateTime<Utc>,
) -> Vec<Card> {
    let (kind, class, object) = match band {
        None => ("bias", FrameClass::RawBiasFrame, "BIAS"),
        Some(_) => ("flat", FrameClass::RawDomeFlatFrame, "DOME FLAT"),
    };
    let mut cards = common_cards(kind, class, Some(chip));
    cards.push(card("OBJECT", object, ""));
    cards.extend(exposure_cards(exptime, start));
    cards.extend(amplifier_cards(cam, chip));
    cards.extend(section_cards(cam));
    if let Some(b) = band {
        cards.push(filter_card(b));
    }
    cards
}

/// One raw science frame: an exposure seen by one chip.
pub(super) struct RawScience {
    pub(super) exp: Exposure,
    pub(super) chip: usize,
    pub(super) wcs: WcsKeywords,
    pub(super) raw: Raster<u16>,
    pub(super) key: String,
}

impl RawScience {
    /// The stem of the names of every product made from this frame.
    pub(super) fn name(&self) -> String {
        self.exp.name(self.chip)
    }
}

/// Raw science frames of every exposure and chip, written to `raw/`.
pub(super) fn raw_science_exposures(
    run: &Run,
    obs: &Observing,
    lineage: &mut Lineage,
) -> Result<Vec<RawScience>, SampleError> {
    let jobs: Vec<(usize, usize)> = (0..obs.exposures.len())
        .flat_map(|e| (0..4).map(move |c| (e, c)))
        .collect();
    let sci: Vec<RawScience> = jobs
        .par_iter()
        .map(|&(e, chip)| -> Result<RawScience, SampleError> {
            let det = &obs.detectors[chip];
            let s = simulate_science(run, det, &obs.truth, &obs.exposures[e], chip);
            run.write_image(
                &format!("raw/{}.fits", s.key),
                PixelData::U16(&s.raw),
                &raw_science_cards(&s, &run.cam),
                Compression::Rice {
                    tile: (run.cam.raw_width(), 1),
                },
                "raw science exposures",
            )?;
            Ok(s)
        })
        .collect::<Result<_, _>>()?;
    for s in &sci {
        let end = s.exp.start + Duration::seconds(s.exp.exptime as i64);
        let path = format!("raw/{}.fits", s.key);
        lineage.frame(&s.key, FrameClass::RawScienceFrame, path, end, vec![]);
    }
    Ok(sci)
}

fn simulate_science(
    run: &Run,
    det: &Detector,
    truth: &[TruthSource],
    exp: &Exposure,
    chip: usize,
) -> RawScience {
    let cam = &run.cam;
    let n = cam.nx;
    let mut r = rng(run.spec.seed, 10, (exp.index * 4 + chip) as u64);
    let wcs = cam.chip_wcs(chip, exp.ra0, exp.dec0);
    let w = Wcs::new(&wcs, n, n).expect("a TAN WCS built by the camera is valid");
    let mut img = Raster::filled(n, n, exp.sky_adu as f32);
    let psf = Psf {
        fwhm_px: exp.seeing / cam.pixel_scale,
        beta: 3.0,
        ellipticity: 0.03,
        pa_deg: 30.0,
    };
    let mjd = exp.mjd_mid();
    let to_pix = |ra: f64, dec: f64| w.sky_to_pix(ra, dec).unwrap_or((-1e9, -1e9));
    sky::render_sources(
        &mut img,
        truth,
        exp.band,
        mjd,
        exp.exptime,
        exp.zeropoint,
        &psf,
        cam.pixel_scale,
        // The renderer's north angle is counter-clockwise from +y; the chip
        // CD matrix rotates the other way (see Camera::chip_wcs).
        -cam.rotations[chip],
        &to_pix,
    );
    if exp.band == 2 {
        // Fringes: thin-film interference of night-sky lines, a few per cent
        // of the sky, fixed on the detector.
        let amp = 0.035 * exp.sky_adu as f32;
        for (v, f) in img.data.iter_mut().zip(&det.fringe.data) {
            *v += amp * f;
        }
    }
    let qe = cam.qe[chip] as f32;
    for i in 0..img.data.len() {
        img.data[i] *= det.vignetting.data[i] * det.response.data[i] * qe;
    }
    sky::add_noise(&mut img, cam.gains[chip], 0.0, &mut r);
    let n_cr = (exp.exptime * 0.0004 * (n * n) as f64 / 1000.0).round() as usize + 3;
    sky::add_cosmic_rays(&mut img, n_cr, &mut r);
    let raw = read_out(img, cam, det, chip, (exp.exptime / 100.0) as f32, &mut r);
    RawScience {
        key: format!("raw_sci_{}", exp.name(chip)),
        exp: exp.clone(),
        chip,
        wcs,
        raw,
    }
}

pub(super) fn raw_science_cards(s: &RawScience, cam: &Camera) -> Vec<Card> {
    let e = &s.exp;
    let mut c = common_cards("object", FrameClass::RawScienceFrame, Some(s.chip));
    c.extend([target_card(), filter_card(e.band)]);
    c.extend(exposure_cards(e.exptime, e.start));
    c.push(card(
        "AIRMASS",
        (e.airmass * 1000.0).round() / 1000.0,
        "airmass at start",
    ));
    c.extend(amplifier_cards(cam, s.chip));
    c.push(card("SATURATE", SATURATION, "[ADU] saturation level"));
    c.extend(section_cards(cam));
    c.push(card("OBSERVER", "wisecut simulator", ""));
    c.extend(wcs_cards(&s.wcs));
    c
}

/// Adds bias level, structure and hot-pixel dark signal, then quantises.
fn read_out(
    signal: Raster<f32>,
    cam: &Camera,
    det: &Detector,
    chip: usize,
    dark_scale: f32,
    r: &mut ChaCha8Rng,
) -> Raster<u16> {
    let mut raw = Raster::filled(cam.raw_width(), cam.ny, 0.0f32);
    let level = cam.bias_levels[chip] as f32;
    for y in 0..cam.ny {
        for x in 0..cam.raw_width() {
            let s = if x < cam.nx { signal.get(x, y) } else { 0.0 };
            raw.set(x, y, s + level + det.bias_pattern.get(x, y));
        }
    }
    // Read noise on the overscan too: it is real readout of empty pixels.
    let rn = cam.read_noise[chip];
    for v in raw.data.iter_mut() {
        let g: f64 = r.sample(rand_distr::StandardNormal);
        *v += (g * rn) as f32;
    }
    for &(x, y, amp) in &det.hot {
        // A hot pixel has a raised level even in a zero-second bias (which is
        // how the HotPixelMap finds it) and dark current on top.
        let v = raw.get(x, y) + amp * (0.4 + dark_scale);
        raw.set(x, y, v);
    }
    raw.map(|v| v.round().clamp(0.0, SATURATION as f32) as u16)
}
