//! The simulated observing run and pipeline behind [`super::generate`].
//!
//! Stages, each parallel over frames with rayon and each frame seeded from
//! (seed, stage, index) so that thread scheduling never changes a byte:
//! 1. raw bias, dome-flat and science exposures per chip (overscan, bias
//!    structure, vignetting, pixel response, dome illumination, fringes in i,
//!    hot and cold pixels, cosmic rays, photon and read noise);
//! 2. master biases → hot-pixel maps; master flats → cold-pixel maps;
//! 3. a fringe frame per chip from the i-band exposures;
//! 4. reduced frames = (raw − bias) / flat − fringe, trimmed, with hot, cold
//!    and cosmic-ray pixels masked (NaN);
//! 5. photometric catalogs (standard stars matched to the reference
//!    catalogue) → illumination corrections (quadratic fits) and zeropoints;
//! 6. regridded frames on one sky grid, flux-scaled to zeropoint 30 per second
//!    with the illumination correction applied; a clipped-mean coadd per
//!    filter;
//! 7. source lists of reduced frames and coadds; associations across epochs
//!    and across filters.

use super::camera::{CHIP_NAMES, Camera};
use super::extract::{self, Detection, ExtractParams};
use super::sky_simulator::{self as sky, BANDS, Psf, SourceKind, TruthSource};
use super::{ProgressFn, SampleError, SampleSpec};
use crate::catalog::ingest::{AssociateListEntry, DepRef, FrameEntry, Manifest, SourceListEntry};
use crate::imaging::fits::{self, Card, Column, ColumnData, Compression, PixelData};
use crate::imaging::raster::Raster;
use crate::imaging::wcs::{Wcs, WcsKeywords};
use crate::model::FrameClass;
use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Field centre (a quiet high-latitude field).
const RA0: f64 = 150.1;
const DEC0: f64 = 2.2;
/// Zeropoint of regridded frames and coadds (mag of 1 ADU/s).
const GRID_ZP: f64 = 30.0;
/// Dither offsets in arcsec (RA·cos δ, Dec).
const DITHERS: [(f64, f64); 4] = [(0.0, 0.0), (24.0, 17.0), (-21.0, 29.0), (14.0, -26.0)];
const EXPTIME: [f64; 3] = [120.0, 100.0, 150.0];
/// Zeropoints above the atmosphere (mag for 1 ADU/s) and extinction per airmass.
const ZP0: [f64; 3] = [25.15, 25.30, 24.85];
const EXTINCTION: [f64; 3] = [0.18, 0.10, 0.06];
/// Dark-sky brightness, mag/arcsec².
const SKY_MAG: [f64; 3] = [22.0, 21.1, 20.2];
const FLAT_LEVEL: f64 = 18000.0;
const SATURATION: f64 = 65535.0;

fn seed_for(seed: u64, stage: u64, index: u64) -> u64 {
    // SplitMix64 of the combined key: independent streams per frame.
    let mut z = seed
        ^ stage.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn rng(seed: u64, stage: u64, index: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed_for(seed, stage, index))
}

fn mjd(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 86_400_000.0 + 40587.0
}

fn fits_date(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()
}

/// One science pointing of the mosaic.
#[derive(Debug, Clone)]
struct Exposure {
    index: usize,
    night: usize,
    band: usize,
    dither: usize,
    start: DateTime<Utc>,
    exptime: f64,
    ra0: f64,
    dec0: f64,
    airmass: f64,
    seeing: f64,
    zeropoint: f64,
    sky_adu: f64,
}

impl Exposure {
    fn mjd_mid(&self) -> f64 {
        mjd(self.start) + self.exptime / 2.0 / 86400.0
    }
    fn name(&self, chip: usize) -> String {
        format!(
            "n{}_{}_d{}_{}",
            self.night + 1,
            BANDS[self.band],
            self.dither + 1,
            CHIP_NAMES[chip]
        )
    }
}

fn night_start(night: usize) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 0, 30, 0).unwrap() + Duration::days(night as i64)
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
struct Detector {
    vignetting: Raster<f32>,
    response: Raster<f32>,
    dome: [Raster<f32>; 3],
    fringe: Raster<f32>,
    hot: Vec<(usize, usize, f32)>,
    bias_pattern: Raster<f32>,
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
    // Bias structure: a slow gradient along rows and a faint column pattern,
    // as a real CCD amplifier shows.
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
    Detector {
        vignetting: sky::vignetting(n, n, ox, oy, fx, fy, fr),
        response,
        dome: [0, 1, 2].map(|b| sky::illumination_pattern(n, n, ox, oy, fx, fy, fr, b)),
        fringe: sky::fringe_pattern(n, n, ox, oy, seed_for(s, 5, 0)),
        hot,
        bias_pattern,
    }
}

/// Counts the frames written, for the progress bar.
struct Tracker<'a> {
    done: AtomicUsize,
    total: usize,
    progress: ProgressFn<'a>,
}

impl Tracker<'_> {
    fn tick(&self, stage: &str) {
        let d = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        (self.progress)(d.min(self.total), self.total, stage);
    }
}

fn card(key: &str, value: impl Into<fits::HeaderValue>, comment: &str) -> Card {
    Card::new(key, value, comment)
}

fn wcs_cards(w: &WcsKeywords) -> Vec<Card> {
    w.to_cards()
        .into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => card(&k, s, ""),
            serde_json::Value::Number(n) if n.is_i64() => card(&k, n.as_i64().unwrap_or(0), ""),
            other => card(&k, other.as_f64().unwrap_or(0.0), ""),
        })
        .collect()
}

fn common_cards(kind: &str, class: FrameClass, chip: Option<usize>) -> Vec<Card> {
    let mut c = vec![
        card("TELESCOP", "WISE-1.2m", "simulated telescope"),
        card("INSTRUME", "WISECAM", "2x2 CCD mosaic camera"),
        card("IMAGETYP", kind, "type of image"),
        card("WCCLASS", class.name(), "wisecut frame class"),
        card(
            "PIPELINE",
            format!("wisecut-sample {}", crate::VERSION),
            "made by",
        ),
    ];
    if let Some(ch) = chip {
        c.push(card("CHIPID", CHIP_NAMES[ch], "CCD name"));
    }
    c
}

fn write(
    path: &Path,
    px: PixelData<'_>,
    cards: &[Card],
    compression: Compression,
) -> Result<(), SampleError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| SampleError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    fits::write_image(path, px, cards, &compression)?;
    Ok(())
}

fn median(v: &mut [f32]) -> f32 {
    if v.is_empty() {
        return f32::NAN;
    }
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, f32::total_cmp);
    *m
}

/// Median and MAD-based sigma of the finite values (subsampled for speed).
fn robust_stats(img: &Raster<f32>) -> (f32, f32) {
    let step = (img.data.len() / 20000).max(1);
    let mut v: Vec<f32> = img
        .data
        .iter()
        .step_by(step)
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    let m = median(&mut v);
    let mut dev: Vec<f32> = v.iter().map(|x| (x - m).abs()).collect();
    (m, 1.4826 * median(&mut dev))
}

/// Raw frame as float ADU, data section only.
fn trim(raw: &Raster<u16>, nx: usize) -> Raster<f32> {
    let mut out = Raster::filled(nx, raw.height, 0.0f32);
    for y in 0..raw.height {
        for x in 0..nx {
            out.set(x, y, f32::from(raw.get(x, y)));
        }
    }
    out
}

fn to_u16(img: &Raster<f32>) -> Raster<u16> {
    img.map(|v| v.round().clamp(0.0, SATURATION as f32) as u16)
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
    to_u16(&raw)
}

struct RawScience {
    exp: Exposure,
    chip: usize,
    wcs: WcsKeywords,
    raw: Raster<u16>,
    key: String,
}

#[allow(clippy::too_many_arguments)]
fn simulate_science(
    spec: &SampleSpec,
    cam: &Camera,
    det: &Detector,
    truth: &[TruthSource],
    exp: &Exposure,
    chip: usize,
) -> RawScience {
    let n = cam.nx;
    let mut r = rng(spec.seed, 10, (exp.index * 4 + chip) as u64);
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

fn raw_science_cards(s: &RawScience, cam: &Camera) -> Vec<Card> {
    let e = &s.exp;
    let mut c = common_cards("object", FrameClass::RawScienceFrame, Some(s.chip));
    c.extend([
        card("OBJECT", "WISE-F1", "target field"),
        card("FILTER", BANDS[e.band], "filter name"),
        card("EXPTIME", e.exptime, "[s] exposure time"),
        card("DATE-OBS", fits_date(e.start), "UTC start of exposure"),
        card("MJD-OBS", mjd(e.start), "MJD start of exposure"),
        card(
            "AIRMASS",
            (e.airmass * 1000.0).round() / 1000.0,
            "airmass at start",
        ),
        card("GAIN", cam.gains[s.chip], "[e-/ADU] detector gain"),
        card("RDNOISE", cam.read_noise[s.chip], "[ADU] read noise"),
        card("SATURATE", SATURATION, "[ADU] saturation level"),
        card(
            "DATASEC",
            format!("[1:{},1:{}]", cam.nx, cam.ny),
            "light-sensitive pixels",
        ),
        card(
            "BIASSEC",
            format!("[{}:{},1:{}]", cam.nx + 1, cam.raw_width(), cam.ny),
            "overscan",
        ),
        card("OBSERVER", "wisecut simulator", ""),
    ]);
    c.extend(wcs_cards(&s.wcs));
    c
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

/// Box mean of a NaN-masked image with an odd window, by integral images.
fn box_smooth(img: &Raster<f32>, half: usize) -> Raster<f32> {
    let (w, h) = (img.width, img.height);
    let mut sum = vec![0f64; (w + 1) * (h + 1)];
    let mut cnt = vec![0u32; (w + 1) * (h + 1)];
    for y in 0..h {
        for x in 0..w {
            let v = img.get(x, y);
            let (s, c) = if v.is_finite() {
                (f64::from(v), 1)
            } else {
                (0.0, 0)
            };
            let i = (y + 1) * (w + 1) + x + 1;
            sum[i] = s + sum[i - 1] + sum[i - (w + 1)] - sum[i - (w + 1) - 1];
            cnt[i] = c + cnt[i - 1] + cnt[i - (w + 1)] - cnt[i - (w + 1) - 1];
        }
    }
    let mut out = Raster::filled(w, h, 0.0f32);
    for y in 0..h {
        for x in 0..w {
            let (x0, x1) = (x.saturating_sub(half), (x + half + 1).min(w));
            let (y0, y1) = (y.saturating_sub(half), (y + half + 1).min(h));
            let at = |xx: usize, yy: usize| yy * (w + 1) + xx;
            let s = sum[at(x1, y1)] - sum[at(x0, y1)] - sum[at(x1, y0)] + sum[at(x0, y0)];
            let c = cnt[at(x1, y1)] + cnt[at(x0, y0)] - cnt[at(x0, y1)] - cnt[at(x1, y0)];
            out.set(
                x,
                y,
                if c > 0 {
                    (s / f64::from(c)) as f32
                } else {
                    f32::NAN
                },
            );
        }
    }
    out
}

fn combine_median(frames: &[Raster<f32>]) -> Raster<f32> {
    let (w, h) = (frames[0].width, frames[0].height);
    let data: Vec<f32> = (0..w * h)
        .into_par_iter()
        .map(|i| {
            let mut v: Vec<f32> = frames
                .iter()
                .map(|f| f.data[i])
                .filter(|x| x.is_finite())
                .collect();
            if v.is_empty() {
                return f32::NAN;
            }
            let n = v.len();
            v.sort_by(f32::total_cmp);
            if n % 2 == 1 {
                v[n / 2]
            } else {
                (v[n / 2 - 1] + v[n / 2]) / 2.0
            }
        })
        .collect();
    Raster::from_vec(w, h, data)
}

/// The terms of a polynomial surface in (u, v) up to `order` (0, 1 or 2).
fn surface_terms(u: f64, v: f64, order: usize) -> Vec<f64> {
    match order {
        0 => vec![1.0],
        1 => vec![1.0, u, v],
        _ => vec![1.0, u, v, u * u, u * v, v * v],
    }
}

/// Least-squares fit by the normal equations, solved with partial pivoting.
fn least_squares(points: &[(f64, f64, f64)], order: usize) -> Option<Vec<f64>> {
    let k = surface_terms(0.0, 0.0, order).len();
    let mut a = vec![vec![0f64; k + 1]; k];
    for &(u, v, z) in points {
        let t = surface_terms(u, v, order);
        for i in 0..k {
            for j in 0..k {
                a[i][j] += t[i] * t[j];
            }
            a[i][k] += t[i] * z;
        }
    }
    for col in 0..k {
        let piv = (col..k).max_by(|&p, &q| a[p][col].abs().total_cmp(&a[q][col].abs()))?;
        if a[piv][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, piv);
        for row in 0..k {
            if row != col {
                let f = a[row][col] / a[col][col];
                for c in col..=k {
                    a[row][c] -= f * a[col][c];
                }
            }
        }
    }
    Some((0..k).map(|i| a[i][k] / a[i][i]).collect())
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
        let mut pts = points.to_vec();
        let mut coeffs = None;
        for _ in 0..5 {
            let Some(c) = least_squares(&pts, order) else {
                break;
            };
            let eval = |u: f64, v: f64| -> f64 {
                surface_terms(u, v, order)
                    .iter()
                    .zip(&c)
                    .map(|(t, c)| t * c)
                    .sum()
            };
            let res: Vec<f64> = pts.iter().map(|p| p.2 - eval(p.0, p.1)).collect();
            let sigma = (res.iter().map(|r| r * r).sum::<f64>() / res.len() as f64).sqrt();
            let kept: Vec<_> = pts
                .iter()
                .zip(&res)
                .filter(|(_, r)| r.abs() <= 3.0 * sigma)
                .map(|(p, _)| *p)
                .collect();
            coeffs = Some(c);
            if kept.len() == pts.len() || kept.len() < 12 {
                break;
            }
            pts = kept;
        }
        if let Some(c) = coeffs {
            let worst = [-1.0, 0.0, 1.0]
                .iter()
                .flat_map(|&u| [-1.0, 0.0, 1.0].map(|v| (u, v)))
                .map(|(u, v)| {
                    let q: f64 = surface_terms(u, v, order)
                        .iter()
                        .zip(&c)
                        .map(|(t, c)| t * c)
                        .sum();
                    (q - 1.0).abs()
                })
                .fold(0.0, f64::max);
            if worst < 0.10 {
                return (order, c);
            }
        }
    }
    (0, vec![1.0])
}

/// A detection matched to the reference catalogue.
#[derive(Clone)]
struct Matched {
    det: Detection,
    mag: f64,
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

/// The columns of a SourceList table.
fn write_catalog(
    path: &Path,
    dets: &[Detection],
    w: &Wcs,
    zp: f64,
    exptime: f64,
    cards: &[Card],
) -> Result<(), SampleError> {
    let n = dets.len();
    const NAMES: [&str; 12] = [
        "RA",
        "DEC",
        "X",
        "Y",
        "A",
        "B",
        "THETA",
        "MAG_AUTO",
        "MAGERR_AUTO",
        "FLUX_AUTO",
        "FWHM",
        "CLASS_STAR",
    ];
    // Every column exists even for an empty list: a catalog with no sources
    // is still a valid catalog.
    let mut cols: HashMap<&str, Vec<f64>> =
        NAMES.iter().map(|k| (*k, Vec::with_capacity(n))).collect();
    let mut flags = Vec::with_capacity(n);
    for d in dets {
        let (ra, dec) = w.pix_to_sky(d.x, d.y).unwrap_or((f64::NAN, f64::NAN));
        let (mag, err) = if d.flux_auto > 0.0 {
            (
                zp - 2.5 * (d.flux_auto / exptime).log10(),
                1.0857 * d.flux_auto_err / d.flux_auto,
            )
        } else {
            (f64::NAN, f64::NAN)
        };
        for (k, v) in [
            ("RA", ra),
            ("DEC", dec),
            ("X", d.x),
            ("Y", d.y),
            ("A", d.a),
            ("B", d.b),
            ("THETA", d.theta),
            ("MAG_AUTO", mag),
            ("MAGERR_AUTO", err),
            ("FLUX_AUTO", d.flux_auto),
            ("FWHM", d.fwhm),
            ("CLASS_STAR", d.class_star),
        ] {
            cols.entry(k).or_default().push(v);
        }
        flags.push(d.flags);
    }
    let sid: Vec<i64> = (1..=n as i64).collect();
    let units = [
        ("RA", "deg"),
        ("DEC", "deg"),
        ("X", "pix"),
        ("Y", "pix"),
        ("A", "pix"),
        ("B", "pix"),
        ("THETA", "deg"),
        ("MAG_AUTO", "mag"),
        ("MAGERR_AUTO", "mag"),
        ("FLUX_AUTO", "adu"),
        ("FWHM", "pix"),
        ("CLASS_STAR", ""),
    ];
    let mut columns = vec![Column::new("SID", "", ColumnData::I64(&sid))];
    for (name, unit) in units {
        columns.push(Column {
            name,
            unit,
            data: ColumnData::F64(&cols[name]),
        });
    }
    columns.push(Column::new("FLAGS", "", ColumnData::I32(&flags)));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| SampleError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    fits::write_table(path, "OBJECTS", &columns, cards)?;
    Ok(())
}

fn extract_params(fwhm_px: f64, gain: f64, saturation: f32) -> ExtractParams {
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

/// Grid target: one TAN projection for every regridded frame and coadd.
fn grid_wcs(cam: &Camera) -> (WcsKeywords, usize) {
    let span = 2 * cam.nx + cam.gap;
    let dither_px = (35.0 / cam.pixel_scale) as usize;
    let n = span + 2 * dither_px + 40;
    let s = cam.pixel_scale / 3600.0;
    (
        WcsKeywords {
            ctype1: "RA---TAN".into(),
            ctype2: "DEC--TAN".into(),
            crval1: RA0,
            crval2: DEC0,
            crpix1: (n as f64 + 1.0) / 2.0,
            crpix2: (n as f64 + 1.0) / 2.0,
            cd: [[-s, 0.0], [0.0, s]],
            radesys: Some("ICRS".into()),
            equinox: Some(2000.0),
            lonpole: None,
            sip: None,
        },
        n,
    )
}

/// Bilinear sample at FITS pixel (x, y); NaN if any neighbour is masked or
/// the position is off the image.
fn bilinear(img: &Raster<f32>, x: f64, y: f64) -> f32 {
    let (fx, fy) = (x - 1.0, y - 1.0);
    if fx < 0.0 || fy < 0.0 || fx > (img.width - 1) as f64 || fy > (img.height - 1) as f64 {
        return f32::NAN;
    }
    let (x0, y0) = (fx.floor() as usize, fy.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(img.width - 1), (y0 + 1).min(img.height - 1));
    let (tx, ty) = ((fx - x0 as f64) as f32, (fy - y0 as f64) as f32);
    img.get(x0, y0) * (1.0 - tx) * (1.0 - ty)
        + img.get(x1, y0) * tx * (1.0 - ty)
        + img.get(x0, y1) * (1.0 - tx) * ty
        + img.get(x1, y1) * tx * ty
}

struct Regridded {
    x0: usize,
    y0: usize,
    img: Raster<f32>,
    wcs: WcsKeywords,
    rms: f32,
}

/// Resamples `src` (with WCS `src_wcs`) onto the grid, inside the bounding
/// box of its footprint. The sky → source-pixel map is evaluated exactly on a
/// coarse lattice and interpolated in between, which for TAN over 16 pixels
/// is accurate to far below a micro-pixel.
fn regrid(
    src: &Raster<f32>,
    src_wcs: &Wcs,
    grid: &Wcs,
    grid_kw: &WcsKeywords,
    grid_n: usize,
    scale: f32,
) -> Option<Regridded> {
    let corners = src_wcs.footprint(src.width, src.height)?;
    let (mut xmin, mut xmax, mut ymin, mut ymax) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (ra, dec) in corners {
        let (x, y) = grid.sky_to_pix(ra, dec)?;
        xmin = xmin.min(x);
        xmax = xmax.max(x);
        ymin = ymin.min(y);
        ymax = ymax.max(y);
    }
    let x0 = (xmin.floor() as i64 - 1).max(1) as usize;
    let y0 = (ymin.floor() as i64 - 1).max(1) as usize;
    let x1 = ((xmax.ceil() as i64 + 1) as usize).min(grid_n);
    let y1 = ((ymax.ceil() as i64 + 1) as usize).min(grid_n);
    let (w, h) = (x1 - x0 + 1, y1 - y0 + 1);
    const STEP: usize = 16;
    let (lw, lh) = (w / STEP + 2, h / STEP + 2);
    let mut lattice = vec![(f64::NAN, f64::NAN); lw * lh];
    for j in 0..lh {
        for i in 0..lw {
            let (gx, gy) = ((x0 + i * STEP) as f64, (y0 + j * STEP) as f64);
            if let Some((ra, dec)) = grid.pix_to_sky(gx, gy)
                && let Some(p) = src_wcs.sky_to_pix(ra, dec)
            {
                lattice[j * lw + i] = p;
            }
        }
    }
    let rows: Vec<Vec<f32>> = (0..h)
        .into_par_iter()
        .map(|yy| {
            let mut row = vec![f32::NAN; w];
            let (j, ty) = (yy / STEP, (yy % STEP) as f64 / STEP as f64);
            for (xx, out) in row.iter_mut().enumerate() {
                let (i, tx) = (xx / STEP, (xx % STEP) as f64 / STEP as f64);
                let l = |a: usize, b: usize| lattice[b * lw + a];
                let (p00, p10, p01, p11) = (l(i, j), l(i + 1, j), l(i, j + 1), l(i + 1, j + 1));
                let sx = p00.0 * (1.0 - tx) * (1.0 - ty)
                    + p10.0 * tx * (1.0 - ty)
                    + p01.0 * (1.0 - tx) * ty
                    + p11.0 * tx * ty;
                let sy = p00.1 * (1.0 - tx) * (1.0 - ty)
                    + p10.1 * tx * (1.0 - ty)
                    + p01.1 * (1.0 - tx) * ty
                    + p11.1 * tx * ty;
                *out = bilinear(src, sx, sy) * scale;
            }
            row
        })
        .collect();
    let img = Raster::from_vec(w, h, rows.concat());
    let mut wcs = grid_kw.clone();
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

/// Generates the sample survey's FITS files and `manifest.json` into `dir`.
pub fn generate(
    dir: &Path,
    spec: &SampleSpec,
    progress: ProgressFn<'_>,
) -> Result<Manifest, SampleError> {
    let cam = Camera::new(spec.chip_size, spec.chip_size);
    let n = cam.nx;
    let exposures = plan_exposures(spec, &cam);
    let half_width = ((2 * n + cam.gap) as f64 * cam.pixel_scale / 3600.0) / 2.0 + 60.0 / 3600.0;
    let truth = sky::truth_catalogue(spec.seed, RA0, DEC0, half_width, mjd(night_start(0)));
    let detectors: Vec<Detector> = (0..4)
        .into_par_iter()
        .map(|c| make_detector(spec, &cam, c))
        .collect();
    let n_sci = exposures.len() * 4;
    let n_cal_raw = spec.nights * 4 * (spec.n_bias + 3 * spec.n_flat);
    let n_products = spec.nights * 4 * (2 + 3 + 1) + 4 + 12 + n_sci * 4 + 3 * 2 + 4;
    let tracker = Tracker {
        done: AtomicUsize::new(0),
        total: n_sci + n_cal_raw + n_products,
        progress,
    };
    let mut manifest = Manifest {
        creator: "wisecut-sample".into(),
        project: "SAMPLE".into(),
        privileges: crate::model::privileges::PUBLIC,
        ..Default::default()
    };
    let processing = |k: usize| {
        Utc.with_ymd_and_hms(2026, 3, 14, 9, 0, 0).unwrap() + Duration::seconds(k as i64)
    };
    let night_range = |night: usize| {
        let s = night_start(night) - Duration::hours(12);
        (s, s + Duration::hours(24))
    };
    let run_range = (night_range(0).0, night_range(spec.nights - 1).1);
    let frame_entry =
        |key: &str, class: FrameClass, path: String, created: DateTime<Utc>, deps: Vec<DepRef>| {
            FrameEntry {
                creation_date: Some(created),
                ..FrameEntry::new(key, class.name(), &path, deps)
            }
        };

    // 1a. Raw bias and dome-flat exposures.
    struct CalRaw {
        key: String,
        night: usize,
        chip: usize,
        band: Option<usize>,
        raw: Raster<u16>,
        start: DateTime<Utc>,
    }
    let mut cal_jobs = Vec::new();
    for night in 0..spec.nights {
        for chip in 0..4 {
            for i in 0..spec.n_bias {
                cal_jobs.push((night, chip, None, i));
            }
            for band in 0..3 {
                for i in 0..spec.n_flat {
                    cal_jobs.push((night, chip, Some(band), i));
                }
            }
        }
    }
    let cal_raws: Vec<CalRaw> = cal_jobs
        .par_iter()
        .enumerate()
        .map(
            |(k, &(night, chip, band, i))| -> Result<CalRaw, SampleError> {
                let det = &detectors[chip];
                let mut r = rng(spec.seed, 20, k as u64);
                let start = night_start(night) - Duration::minutes(50)
                    + Duration::minutes((i + band.map_or(0, |b| 10 + 10 * b)) as i64);
                let (signal, kind, class, key, exptime) = match band {
                    None => (
                        Raster::filled(n, n, 0.0f32),
                        "bias",
                        FrameClass::RawBiasFrame,
                        format!("raw_bias_n{}_{:02}_{}", night + 1, i + 1, CHIP_NAMES[chip]),
                        0.0,
                    ),
                    Some(b) => {
                        let level = FLAT_LEVEL * (1.0 + 0.05 * i as f64) * cam.qe[chip];
                        let mut s = Raster::filled(n, n, 0.0f32);
                        for p in 0..n * n {
                            s.data[p] = level as f32
                                * det.vignetting.data[p]
                                * det.response.data[p]
                                * det.dome[b].data[p];
                        }
                        sky::add_noise(&mut s, cam.gains[chip], 0.0, &mut r);
                        (
                            s,
                            "flat",
                            FrameClass::RawDomeFlatFrame,
                            format!(
                                "raw_flat_n{}_{}_{:02}_{}",
                                night + 1,
                                BANDS[b],
                                i + 1,
                                CHIP_NAMES[chip]
                            ),
                            5.0,
                        )
                    }
                };
                let raw = read_out(signal, &cam, det, chip, (exptime / 100.0) as f32, &mut r);
                let mut cards = common_cards(kind, class, Some(chip));
                cards.extend([
                    card(
                        "OBJECT",
                        if band.is_some() { "DOME FLAT" } else { "BIAS" },
                        "",
                    ),
                    card("EXPTIME", exptime, "[s] exposure time"),
                    card("DATE-OBS", fits_date(start), "UTC start of exposure"),
                    card("MJD-OBS", mjd(start), "MJD start of exposure"),
                    card("GAIN", cam.gains[chip], "[e-/ADU] detector gain"),
                    card("RDNOISE", cam.read_noise[chip], "[ADU] read noise"),
                    card(
                        "DATASEC",
                        format!("[1:{},1:{}]", n, n),
                        "light-sensitive pixels",
                    ),
                    card(
                        "BIASSEC",
                        format!("[{}:{},1:{}]", n + 1, cam.raw_width(), n),
                        "overscan",
                    ),
                ]);
                if let Some(b) = band {
                    cards.push(card("FILTER", BANDS[b], "filter name"));
                }
                // Flats are stored tile-compressed, biases plain: both kinds
                // exist in real archives and the cutout engine must read both.
                let compression = if band.is_some() {
                    Compression::Rice {
                        tile: (cam.raw_width(), 1),
                    }
                } else {
                    Compression::None
                };
                write(
                    &dir.join(format!("raw/{key}.fits")),
                    PixelData::U16(&raw),
                    &cards,
                    compression,
                )?;
                tracker.tick("raw calibration exposures");
                Ok(CalRaw {
                    key,
                    night,
                    chip,
                    band,
                    raw,
                    start,
                })
            },
        )
        .collect::<Result<_, _>>()?;
    for c in &cal_raws {
        let class = if c.band.is_some() {
            FrameClass::RawDomeFlatFrame
        } else {
            FrameClass::RawBiasFrame
        };
        manifest.frames.push(frame_entry(
            &c.key,
            class,
            format!("raw/{}.fits", c.key),
            c.start,
            vec![],
        ));
    }

    // 1b. Raw science exposures.
    let sci_jobs: Vec<(usize, usize)> = (0..exposures.len())
        .flat_map(|e| (0..4).map(move |c| (e, c)))
        .collect();
    let sci: Vec<RawScience> = sci_jobs
        .par_iter()
        .map(|&(e, chip)| -> Result<RawScience, SampleError> {
            let s = simulate_science(spec, &cam, &detectors[chip], &truth, &exposures[e], chip);
            write(
                &dir.join(format!("raw/{}.fits", s.key)),
                PixelData::U16(&s.raw),
                &raw_science_cards(&s, &cam),
                Compression::Rice {
                    tile: (cam.raw_width(), 1),
                },
            )?;
            tracker.tick("raw science exposures");
            Ok(s)
        })
        .collect::<Result<_, _>>()?;
    for s in &sci {
        manifest.frames.push(frame_entry(
            &s.key,
            FrameClass::RawScienceFrame,
            format!("raw/{}.fits", s.key),
            s.exp.start + Duration::seconds(s.exp.exptime as i64),
            vec![],
        ));
    }

    // 2. Master biases and hot-pixel maps per night and chip.
    struct Cal {
        key: String,
        img: Raster<f32>,
    }
    let nc: Vec<(usize, usize)> = (0..spec.nights)
        .flat_map(|nt| (0..4).map(move |c| (nt, c)))
        .collect();
    // (master bias, hot-pixel map key, hot-pixel map) per night and chip.
    let biases: Vec<(Cal, String, Raster<u8>)> = nc
        .par_iter()
        .map(|&(night, chip)| -> Result<_, SampleError> {
            let raws: Vec<&CalRaw> = cal_raws
                .iter()
                .filter(|c| c.night == night && c.chip == chip && c.band.is_none())
                .collect();
            let mut sum = Raster::filled(n, n, 0.0f32);
            for r in &raws {
                let t = trim(&r.raw, n);
                for (s, v) in sum.data.iter_mut().zip(&t.data) {
                    *s += v;
                }
            }
            let bias = sum.map(|v| v / raws.len() as f32);
            let (m, sig) = robust_stats(&bias);
            let thresh = m + (8.0 * sig).max(100.0);
            let hot = bias.map(|v| u8::from(v <= thresh));
            let tag = format!("n{}_{}", night + 1, CHIP_NAMES[chip]);
            let (bkey, hkey) = (format!("bias_{tag}"), format!("hot_{tag}"));
            let mut cards = common_cards("bias", FrameClass::BiasFrame, Some(chip));
            cards.extend([
                card("OBJECT", "MASTER BIAS", ""),
                card("NCOMBINE", raws.len() as i64, "raw bias exposures averaged"),
                card("BUNIT", "adu", ""),
            ]);
            write(
                &dir.join(format!("cal/{bkey}.fits")),
                PixelData::F32(&bias),
                &cards,
                Compression::None,
            )?;
            tracker.tick("master biases");
            let mut hcards = common_cards("hotpixels", FrameClass::HotPixelMap, Some(chip));
            hcards.push(card("OBJECT", "HOT PIXEL MAP", "1 = good, 0 = hot"));
            hcards.push(card(
                "THRESH",
                f64::from(thresh),
                "[adu] bias level above which a pixel is hot",
            ));
            write(
                &dir.join(format!("cal/{hkey}.fits")),
                PixelData::U8(&hot),
                &hcards,
                Compression::None,
            )?;
            tracker.tick("hot pixel maps");
            Ok((
                Cal {
                    key: bkey,
                    img: bias,
                },
                hkey,
                hot,
            ))
        })
        .collect::<Result<_, _>>()?;
    let bias_of = |night: usize, chip: usize| &biases[night * 4 + chip];
    for (k, &(night, chip)) in nc.iter().enumerate() {
        let (b, h, _) = &biases[k];
        let raw_deps: Vec<DepRef> = cal_raws
            .iter()
            .filter(|c| c.night == night && c.chip == chip && c.band.is_none())
            .map(|c| DepRef::key("raw", &c.key))
            .collect();
        let (s, e) = night_range(night);
        let mut be = frame_entry(
            &b.key,
            FrameClass::BiasFrame,
            format!("cal/{}.fits", b.key),
            processing(k),
            raw_deps,
        );
        be.timestamp_start = Some(s);
        be.timestamp_end = Some(e);
        manifest.frames.push(be);
        let mut he = frame_entry(
            h,
            FrameClass::HotPixelMap,
            format!("cal/{h}.fits"),
            processing(k),
            vec![DepRef::key("bias", &b.key)],
        );
        he.timestamp_start = Some(s);
        he.timestamp_end = Some(e);
        manifest.frames.push(he);
    }

    // Master flats per night, chip and band; cold-pixel maps from the r flat.
    let nbc: Vec<(usize, usize, usize)> = nc
        .iter()
        .flat_map(|&(nt, c)| (0..3).map(move |b| (nt, c, b)))
        .collect();
    let flats: Vec<Cal> = nbc
        .par_iter()
        .map(|&(night, chip, band)| -> Result<Cal, SampleError> {
            let bias = &bias_of(night, chip).0.img;
            let frames: Vec<Raster<f32>> = cal_raws
                .iter()
                .filter(|c| c.night == night && c.chip == chip && c.band == Some(band))
                .map(|c| {
                    let mut t = trim(&c.raw, n);
                    for (v, b) in t.data.iter_mut().zip(&bias.data) {
                        *v -= b;
                    }
                    let (m, _) = robust_stats(&t);
                    t.map(|v| v / m)
                })
                .collect();
            let comb = combine_median(&frames);
            let (m, _) = robust_stats(&comb);
            let flat = comb.map(|v| v / m);
            let key = format!("flat_n{}_{}_{}", night + 1, BANDS[band], CHIP_NAMES[chip]);
            let mut cards = common_cards("flat", FrameClass::MasterFlatFrame, Some(chip));
            cards.extend([
                card("OBJECT", "MASTER DOME FLAT", ""),
                card("FILTER", BANDS[band], "filter name"),
                card("NCOMBINE", frames.len() as i64, "raw flats median-combined"),
            ]);
            write(
                &dir.join(format!("cal/{key}.fits")),
                PixelData::F32(&flat),
                &cards,
                Compression::None,
            )?;
            tracker.tick("master flats");
            Ok(Cal { key, img: flat })
        })
        .collect::<Result<_, _>>()?;
    let flat_of = |night: usize, chip: usize, band: usize| &flats[(night * 4 + chip) * 3 + band];
    let colds: Vec<(String, Raster<u8>)> = nc
        .par_iter()
        .map(|&(night, chip)| -> Result<_, SampleError> {
            let flat = &flat_of(night, chip, 1).img;
            let cold = flat.map(|v| u8::from(v >= 0.6));
            let key = format!("cold_n{}_{}", night + 1, CHIP_NAMES[chip]);
            let mut cards = common_cards("coldpixels", FrameClass::ColdPixelMap, Some(chip));
            cards.push(card("OBJECT", "COLD PIXEL MAP", "1 = good, 0 = cold"));
            cards.push(card(
                "THRESH",
                0.6,
                "flat-field response below which a pixel is cold",
            ));
            write(
                &dir.join(format!("cal/{key}.fits")),
                PixelData::U8(&cold),
                &cards,
                Compression::None,
            )?;
            tracker.tick("cold pixel maps");
            Ok((key, cold))
        })
        .collect::<Result<_, _>>()?;
    for (k, &(night, chip, band)) in nbc.iter().enumerate() {
        let f = &flats[k];
        let mut deps: Vec<DepRef> = cal_raws
            .iter()
            .filter(|c| c.night == night && c.chip == chip && c.band == Some(band))
            .map(|c| DepRef::key("raw", &c.key))
            .collect();
        deps.push(DepRef::key("bias", &bias_of(night, chip).0.key));
        deps.push(DepRef::key("hotpixelmap", &bias_of(night, chip).1));
        let (s, e) = night_range(night);
        let mut fe = frame_entry(
            &f.key,
            FrameClass::MasterFlatFrame,
            format!("cal/{}.fits", f.key),
            processing(100 + k),
            deps,
        );
        fe.timestamp_start = Some(s);
        fe.timestamp_end = Some(e);
        manifest.frames.push(fe);
    }
    for (k, &(night, chip)) in nc.iter().enumerate() {
        let (s, e) = night_range(night);
        let mut ce = frame_entry(
            &colds[k].0,
            FrameClass::ColdPixelMap,
            format!("cal/{}.fits", colds[k].0),
            processing(200 + k),
            vec![DepRef::key("flat", &flat_of(night, chip, 1).key)],
        );
        ce.timestamp_start = Some(s);
        ce.timestamp_end = Some(e);
        manifest.frames.push(ce);
    }

    // Bias-subtracted, flat-fielded, masked science data (before de-fringing).
    let masked_bad = |night: usize, chip: usize, p: usize| {
        bias_of(night, chip).2.data[p] == 0 || colds[night * 4 + chip].1.data[p] == 0
    };
    let flattened: Vec<Raster<f32>> = sci
        .par_iter()
        .map(|s| {
            let (nt, ch, b) = (s.exp.night, s.chip, s.exp.band);
            let bias = &bias_of(nt, ch).0.img;
            let flat = &flat_of(nt, ch, b).img;
            let t = trim(&s.raw, n);
            let mut out = Raster::filled(n, n, 0.0f32);
            for p in 0..n * n {
                out.data[p] = (t.data[p] - bias.data[p]) / flat.data[p];
            }
            out
        })
        .collect();

    // 3. Fringe frames (i band) per chip, for the whole run.
    let fringes: Vec<(String, Raster<f32>)> = (0..4)
        .into_par_iter()
        .map(|chip| -> Result<_, SampleError> {
            let frames: Vec<Raster<f32>> = sci
                .iter()
                .zip(&flattened)
                .filter(|(s, _)| s.chip == chip && s.exp.band == 2)
                .map(|(s, f)| {
                    let mut f = f.clone();
                    for p in 0..n * n {
                        if masked_bad(s.exp.night, chip, p) {
                            f.data[p] = f32::NAN;
                        }
                    }
                    // Remove the sky and anything larger than a fringe.
                    let smooth = box_smooth(&f, 24);
                    for (v, m) in f.data.iter_mut().zip(&smooth.data) {
                        *v -= m;
                    }
                    f
                })
                .collect();
            let comb = combine_median(&frames).map(|v| if v.is_finite() { v } else { 0.0 });
            let key = format!("fringe_i_{}", CHIP_NAMES[chip]);
            let mut cards = common_cards("fringe", FrameClass::FringeFrame, Some(chip));
            cards.extend([
                card("OBJECT", "FRINGE FRAME", ""),
                card("FILTER", "i", "filter name"),
                card(
                    "NCOMBINE",
                    frames.len() as i64,
                    "science exposures median-combined",
                ),
                card("BUNIT", "adu", "subtracted from flat-fielded i frames"),
            ]);
            write(
                &dir.join(format!("cal/{key}.fits")),
                PixelData::F32(&comb),
                &cards,
                Compression::None,
            )?;
            tracker.tick("fringe frames");
            Ok((key, comb))
        })
        .collect::<Result<_, _>>()?;
    for (chip, (key, _)) in fringes.iter().enumerate() {
        let mut deps = Vec::new();
        for s in sci.iter().filter(|s| s.chip == chip && s.exp.band == 2) {
            deps.push(DepRef::key("raw", &s.key));
        }
        for night in 0..spec.nights {
            deps.push(DepRef::key("bias", &bias_of(night, chip).0.key));
            deps.push(DepRef::key("flat", &flat_of(night, chip, 2).key));
        }
        let mut fe = frame_entry(
            key,
            FrameClass::FringeFrame,
            format!("cal/{key}.fits"),
            processing(300 + chip),
            deps,
        );
        fe.timestamp_start = Some(run_range.0);
        fe.timestamp_end = Some(run_range.1);
        manifest.frames.push(fe);
    }

    // 4. Reduced frames: (raw − bias) / flat − fringe, masked; their sources.
    struct Reduced {
        img: Raster<f32>,
        dets: Vec<Detection>,
        matched: Vec<Matched>,
        wcs: Wcs,
    }
    let reduced: Vec<Reduced> = sci
        .par_iter()
        .zip(&flattened)
        .map(|(s, f)| {
            let (nt, ch) = (s.exp.night, s.chip);
            let mut img = f.clone();
            if s.exp.band == 2 {
                for (v, fr) in img.data.iter_mut().zip(&fringes[ch].1.data) {
                    *v -= fr;
                }
            }
            for p in 0..n * n {
                if masked_bad(nt, ch, p) {
                    img.data[p] = f32::NAN;
                }
            }
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
                &truth,
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
            }
        })
        .collect();

    // 5. Photometric catalogs (reference stars measured on each exposure),
    // illumination corrections fitted to them, and zeropoints.
    for (s, r) in sci.iter().zip(&reduced) {
        let key = format!("photcat_{}", s.exp.name(s.chip));
        let dets: Vec<Detection> = r.matched.iter().map(|m| m.det.clone()).collect();
        let cards = vec![
            card("FILTER", BANDS[s.exp.band], ""),
            card("REFCAT", "wisecut-sample truth", "reference catalogue"),
        ];
        write_catalog(
            &dir.join(format!("cat/{key}.fits")),
            &dets,
            &r.wcs,
            s.exp.zeropoint,
            s.exp.exptime,
            &cards,
        )?;
        manifest.source_lists.push(SourceListEntry {
            key: key.clone(),
            name: format!("PhotSrcCatalog {}", s.key),
            frame: s.key.clone(),
            path: format!("cat/{key}.fits"),
            hdu: None,
            creation_date: Some(processing(400 + s.exp.index * 4 + s.chip)),
        });
    }
    let illum: Vec<Raster<f32>> = (0..12)
        .into_par_iter()
        .map(|k| -> Result<Raster<f32>, SampleError> {
            let (chip, band) = (k / 3, k % 3);
            let mut pts = Vec::new();
            for (s, r) in sci
                .iter()
                .zip(&reduced)
                .filter(|(s, _)| s.chip == chip && s.exp.band == band)
            {
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
                pts.extend(ratios.into_iter().map(|(u, v, q)| (u, v, q / norm)));
            }
            let (order, coeffs) = fit_illumination(&pts);
            let mut img = Raster::filled(n, n, 1.0f32);
            for y in 0..n {
                for x in 0..n {
                    let u = 2.0 * (x as f64 + 0.5) / n as f64 - 1.0;
                    let v = 2.0 * (y as f64 + 0.5) / n as f64 - 1.0;
                    let q: f64 = surface_terms(u, v, order)
                        .iter()
                        .zip(&coeffs)
                        .map(|(t, c)| t * c)
                        .sum();
                    img.set(x, y, (1.0 / q.max(0.5)) as f32);
                }
            }
            let (m, _) = robust_stats(&img);
            let img = img.map(|v| v / m);
            let key = format!("illum_{}_{}", BANDS[band], CHIP_NAMES[chip]);
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
                card("FILTER", BANDS[band], "filter name"),
                card("NSTARS", pts.len() as i64, "reference stars in the fit"),
                card("FITORDER", order as i64, "order of the polynomial surface"),
            ]);
            write(
                &dir.join(format!("cal/{key}.fits")),
                PixelData::F32(&img),
                &cards,
                Compression::None,
            )?;
            tracker.tick("illumination corrections");
            Ok(img)
        })
        .collect::<Result<_, _>>()?;
    for k in 0..12 {
        let (chip, band) = (k / 3, k % 3);
        let key = format!("illum_{}_{}", BANDS[band], CHIP_NAMES[chip]);
        let deps = sci
            .iter()
            .filter(|s| s.chip == chip && s.exp.band == band)
            .map(|s| DepRef::key("photcat", &format!("photcat_{}", s.exp.name(chip))))
            .collect();
        let mut fe = frame_entry(
            &key,
            FrameClass::IlluminationCorrection,
            format!("cal/{key}.fits"),
            processing(600 + k),
            deps,
        );
        fe.timestamp_start = Some(run_range.0);
        fe.timestamp_end = Some(run_range.1);
        manifest.frames.push(fe);
    }

    // Zeropoint and seeing of each reduced frame, with the illumination
    // correction applied to the standard-star photometry.
    let zp_seeing: Vec<(f64, f64)> = sci
        .iter()
        .zip(&reduced)
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
            let zp = if zps.is_empty() {
                s.exp.zeropoint
            } else {
                f64::from(median(&mut zps))
            };
            let mut fw: Vec<f32> = r.matched.iter().map(|m| m.det.fwhm as f32).collect();
            let seeing = if fw.is_empty() {
                s.exp.seeing
            } else {
                f64::from(median(&mut fw)) * cam.pixel_scale
            };
            (zp, seeing)
        })
        .collect();

    let (grid_kw, grid_n) = grid_wcs(&cam);
    let grid = Wcs::new(&grid_kw, grid_n, grid_n).expect("valid grid WCS");
    let regridded: Vec<Regridded> = sci
        .par_iter()
        .zip(&reduced)
        .zip(&zp_seeing)
        .map(
            |((s, r), &(zp, seeing))| -> Result<Regridded, SampleError> {
                let name = s.exp.name(s.chip);
                let (ch, b) = (s.chip, s.exp.band);
                // The reduced frame.
                let mut cards = raw_science_cards(s, &cam);
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
                        (zp * 1e4).round() / 1e4,
                        "[mag] zeropoint for 1 adu/s",
                    ),
                    card(
                        "SEEING",
                        (seeing * 1e3).round() / 1e3,
                        "[arcsec] median stellar FWHM",
                    ),
                    card(
                        "NMASKED",
                        r.img.data.iter().filter(|v| v.is_nan()).count() as i64,
                        "hot, cold and cosmic-ray pixels set to NaN",
                    ),
                ]);
                write(
                    &dir.join(format!("red/red_{name}.fits")),
                    PixelData::F32(&r.img),
                    &cards,
                    Compression::None,
                )?;
                tracker.tick("reduced frames");
                let dcards = vec![
                    card("FILTER", BANDS[b], ""),
                    card("MAGZPT", (zp * 1e4).round() / 1e4, ""),
                ];
                write_catalog(
                    &dir.join(format!("cat/sl_red_{name}.fits")),
                    &r.dets,
                    &r.wcs,
                    zp,
                    s.exp.exptime,
                    &dcards,
                )?;
                tracker.tick("source lists");
                // The regridded frame: illumination-corrected, per second, ZP 30.
                let ill = &illum[ch * 3 + b];
                let mut corrected = r.img.clone();
                for (v, i) in corrected.data.iter_mut().zip(&ill.data) {
                    *v *= i;
                }
                // Regridded frames are sky-subtracted (as SWarp makes them),
                // so that frames of different nights combine seamlessly.
                let bg = extract::estimate_background(&corrected, 64);
                let (sky_level, _) = robust_stats(&bg.level);
                for (v, b) in corrected.data.iter_mut().zip(&bg.level.data) {
                    *v -= b;
                }
                let scale = (10f64.powf(0.4 * (GRID_ZP - zp)) / s.exp.exptime) as f32;
                let rg = regrid(&corrected, &r.wcs, &grid, &grid_kw, grid_n, scale).ok_or_else(
                    || SampleError::Io {
                        path: dir.join(format!("reg/reg_{name}.fits")),
                        source: std::io::Error::other("frame does not project onto the grid"),
                    },
                )?;
                let mut rcards = common_cards("regridded", FrameClass::RegriddedFrame, Some(ch));
                rcards.extend([
                    card("OBJECT", "WISE-F1", "target field"),
                    card("FILTER", BANDS[b], "filter name"),
                    card("EXPTIME", s.exp.exptime, "[s] exposure time"),
                    card("DATE-OBS", fits_date(s.exp.start), "UTC start of exposure"),
                    card("MJD-OBS", mjd(s.exp.start), "MJD start of exposure"),
                    card("BUNIT", "adu/s", "flux-scaled to MAGZPT"),
                    card("MAGZPT", GRID_ZP, "[mag] zeropoint for 1 unit"),
                    card(
                        "SEEING",
                        (seeing * 1e3).round() / 1e3,
                        "[arcsec] median stellar FWHM",
                    ),
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
                rcards.extend(wcs_cards(&rg.wcs));
                write(
                    &dir.join(format!("reg/reg_{name}.fits")),
                    PixelData::F32(&rg.img),
                    &rcards,
                    Compression::None,
                )?;
                tracker.tick("regridded frames");
                Ok(rg)
            },
        )
        .collect::<Result<_, _>>()?;
    for ((s, &(zp, seeing)), _) in sci.iter().zip(&zp_seeing).zip(&regridded) {
        let name = s.exp.name(s.chip);
        let (nt, ch, b) = (s.exp.night, s.chip, s.exp.band);
        let mut deps = vec![
            DepRef::key("raw", &s.key),
            DepRef::key("bias", &bias_of(nt, ch).0.key),
            DepRef::key("flat", &flat_of(nt, ch, b).key),
            DepRef::key("hotpixelmap", &bias_of(nt, ch).1),
            DepRef::key("coldpixelmap", &colds[nt * 4 + ch].0),
        ];
        if b == 2 {
            deps.push(DepRef::key("fringe", &fringes[ch].0));
        }
        deps.push(DepRef::key(
            "illumination",
            &format!("illum_{}_{}", BANDS[b], CHIP_NAMES[ch]),
        ));
        let rkey = format!("red_{name}");
        let mut re = frame_entry(
            &rkey,
            FrameClass::ReducedScienceFrame,
            format!("red/{rkey}.fits"),
            processing(1000 + s.exp.index * 4 + ch),
            deps,
        );
        re.zeropoint = Some(zp);
        re.seeing = Some(seeing);
        manifest.frames.push(re);
        let gkey = format!("reg_{name}");
        let mut ge = frame_entry(
            &gkey,
            FrameClass::RegriddedFrame,
            format!("reg/{gkey}.fits"),
            processing(2000 + s.exp.index * 4 + ch),
            vec![DepRef::key("reduced", &rkey)],
        );
        ge.zeropoint = Some(GRID_ZP);
        ge.seeing = Some(seeing);
        manifest.frames.push(ge);
        manifest.source_lists.push(SourceListEntry {
            key: format!("sl_red_{name}"),
            name: format!("SourceList {rkey}"),
            frame: rkey.clone(),
            path: format!("cat/sl_red_{name}.fits"),
            hdu: None,
            creation_date: Some(processing(3000 + s.exp.index * 4 + ch)),
        });
    }

    // 6. Coadds: per-pixel clipped mean of the regridded frames of a band.
    let coadds: Vec<(Raster<f32>, Vec<Detection>)> = (0..3)
        .into_par_iter()
        .map(|band| -> Result<_, SampleError> {
            let members: Vec<(&RawScience, &Regridded)> = sci
                .iter()
                .zip(&regridded)
                .filter(|(s, _)| s.exp.band == band)
                .collect();
            let rows: Vec<Vec<f32>> = (0..grid_n)
                .into_par_iter()
                .map(|y| {
                    let mut row = vec![f32::NAN; grid_n];
                    let mut vals: Vec<(f32, f32)> = Vec::with_capacity(members.len());
                    for (x, out) in row.iter_mut().enumerate() {
                        vals.clear();
                        for (_, rg) in &members {
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
                        if vals.is_empty() {
                            continue;
                        }
                        let mut vs: Vec<f32> = vals.iter().map(|v| v.0).collect();
                        let med = median(&mut vs);
                        // Reject what deviates from the median by far more
                        // than the frame's noise: cosmic rays that escaped
                        // masking, the moving object, satellite trails.
                        let (mut s, mut k) = (0.0f32, 0u32);
                        for &(v, rms) in &vals {
                            if vals.len() < 3 || (v - med).abs() < 5.0 * rms.max(1e-6) {
                                s += v;
                                k += 1;
                            }
                        }
                        *out = if k > 0 { s / k as f32 } else { med };
                    }
                    row
                })
                .collect();
            let img = Raster::from_vec(grid_n, grid_n, rows.concat());
            let mut seeing: Vec<f32> = members
                .iter()
                .map(|(s, _)| zp_seeing[s.exp.index * 4 + s.chip].1 as f32)
                .collect();
            let seeing = f64::from(median(&mut seeing));
            let key = format!("coadd_{}", BANDS[band]);
            let mut cards = common_cards("coadd", FrameClass::CoaddedRegriddedFrame, None);
            let total: f64 = members.iter().map(|(s, _)| s.exp.exptime).sum();
            cards.extend([
                card("OBJECT", "WISE-F1", "target field"),
                card("FILTER", BANDS[band], "filter name"),
                card("EXPTIME", total, "[s] summed exposure time"),
                card(
                    "DATE-OBS",
                    fits_date(members[0].0.exp.start),
                    "UTC start of the first exposure",
                ),
                card(
                    "MJD-OBS",
                    mjd(members[0].0.exp.start),
                    "MJD start of the first exposure",
                ),
                card(
                    "NCOMBINE",
                    members.len() as i64,
                    "regridded frames combined",
                ),
                card("COMBINE", "clipped mean", ""),
                card("BUNIT", "adu/s", "flux-scaled to MAGZPT"),
                card("MAGZPT", GRID_ZP, "[mag] zeropoint for 1 unit"),
                card(
                    "SEEING",
                    (seeing * 1e3).round() / 1e3,
                    "[arcsec] median stellar FWHM of the inputs",
                ),
            ]);
            cards.extend(wcs_cards(&grid_kw));
            write(
                &dir.join(format!("coadd/{key}.fits")),
                PixelData::F32(&img),
                &cards,
                Compression::None,
            )?;
            tracker.tick("coadds");
            let dets = extract::extract(
                &img,
                &extract_params(seeing / cam.pixel_scale, 1e6, f32::INFINITY),
            );
            let dcards = vec![card("FILTER", BANDS[band], ""), card("MAGZPT", GRID_ZP, "")];
            write_catalog(
                &dir.join(format!("cat/sl_{key}.fits")),
                &dets,
                &grid,
                GRID_ZP,
                1.0,
                &dcards,
            )?;
            tracker.tick("source lists");
            Ok((img, dets))
        })
        .collect::<Result<_, _>>()?;
    for band in 0..3 {
        let key = format!("coadd_{}", BANDS[band]);
        let deps = sci
            .iter()
            .filter(|s| s.exp.band == band)
            .map(|s| DepRef::key("regridded", &format!("reg_{}", s.exp.name(s.chip))))
            .collect();
        let mut ce = frame_entry(
            &key,
            FrameClass::CoaddedRegriddedFrame,
            format!("coadd/{key}.fits"),
            processing(5000 + band),
            deps,
        );
        ce.zeropoint = Some(GRID_ZP);
        manifest.frames.push(ce);
        manifest.source_lists.push(SourceListEntry {
            key: format!("sl_{key}"),
            name: format!("SourceList {key}"),
            frame: key.clone(),
            path: format!("cat/sl_{key}.fits"),
            hdu: None,
            creation_date: Some(processing(5100 + band)),
        });
    }

    // 7. Associations: across epochs per band (reduced frames), across
    // filters (coadds).
    for band in 0..3 {
        let lists: Vec<(String, Vec<(f64, f64)>)> = sci
            .iter()
            .zip(&reduced)
            .filter(|(s, _)| s.exp.band == band)
            .map(|(s, r)| {
                let pos = r
                    .dets
                    .iter()
                    .map(|d| r.wcs.pix_to_sky(d.x, d.y).unwrap_or((f64::NAN, f64::NAN)))
                    .collect();
                (format!("sl_red_{}", s.exp.name(s.chip)), pos)
            })
            .collect();
        let rows = associate_chain(&lists, 1.0);
        let key = format!("al_epochs_{}", BANDS[band]);
        write_associations(&dir.join(format!("cat/{key}.fits")), &rows)?;
        tracker.tick("associate lists");
        manifest.associate_lists.push(AssociateListEntry {
            key: key.clone(),
            name: format!("Epoch associations, {} band", BANDS[band]),
            assoc_type: "chain".into(),
            search_distance: 1.0,
            members: lists.into_iter().map(|l| l.0).collect(),
            path: format!("cat/{key}.fits"),
            hdu: None,
            creation_date: Some(processing(6000 + band)),
        });
    }
    let coadd_pos: Vec<Vec<(f64, f64)>> = coadds
        .iter()
        .map(|(_, dets)| {
            dets.iter()
                .map(|d| grid.pix_to_sky(d.x, d.y).unwrap_or((f64::NAN, f64::NAN)))
                .collect()
        })
        .collect();
    let rows = associate_matched(&coadd_pos, 1.0);
    write_associations(&dir.join("cat/al_filters.fits"), &rows)?;
    tracker.tick("associate lists");
    manifest.associate_lists.push(AssociateListEntry {
        key: "al_filters".into(),
        name: "Colour associations g, r, i (coadds)".into(),
        assoc_type: "matched".into(),
        search_distance: 1.0,
        members: (0..3).map(|b| format!("sl_coadd_{}", BANDS[b])).collect(),
        path: "cat/al_filters.fits".into(),
        hdu: None,
        creation_date: Some(processing(6100)),
    });

    let text = serde_json::to_string_pretty(&manifest).map_err(|e| SampleError::Io {
        path: dir.join("manifest.json"),
        source: std::io::Error::other(e),
    })?;
    std::fs::write(dir.join("manifest.json"), text).map_err(|source| SampleError::Io {
        path: dir.join("manifest.json"),
        source,
    })?;
    (tracker.progress)(tracker.total, tracker.total, "done");
    Ok(manifest)
}

/// Spatial hash of positions in cells of `radius` arcsec.
fn cell(ra: f64, dec: f64, radius: f64) -> (i64, i64) {
    let s = radius / 3600.0;
    (
        (ra * DEC0.to_radians().cos() / s).floor() as i64,
        (dec / s).floor() as i64,
    )
}

fn sep_arcsec(a: (f64, f64), b: (f64, f64)) -> f64 {
    let dra = (a.0 - b.0) * a.1.to_radians().cos();
    (dra.hypot(a.1 - b.1)) * 3600.0
}

/// Friends-of-friends across all lists: detections within `radius` of each
/// other, in any two lists, are one association (the "chain" rule). Rows are
/// (AID, member index, SID, FLAG); single detections are not associations.
fn associate_chain(lists: &[(String, Vec<(f64, f64)>)], radius: f64) -> Vec<(i64, i64, i64, i32)> {
    let mut items = Vec::new();
    for (m, (_, pos)) in lists.iter().enumerate() {
        for (i, p) in pos.iter().enumerate() {
            if p.0.is_finite() {
                items.push((m, i, *p));
            }
        }
    }
    let mut parent: Vec<usize> = (0..items.len()).collect();
    fn find(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    let mut grid: HashMap<(i64, i64), Vec<usize>> = HashMap::new();
    for (k, it) in items.iter().enumerate() {
        grid.entry(cell(it.2.0, it.2.1, radius))
            .or_default()
            .push(k);
    }
    for (k, it) in items.iter().enumerate() {
        let (cx, cy) = cell(it.2.0, it.2.1, radius);
        for dx in -1..=1 {
            for dy in -1..=1 {
                for &j in grid
                    .get(&(cx + dx, cy + dy))
                    .map(Vec::as_slice)
                    .unwrap_or(&[])
                {
                    if j > k && items[j].0 != it.0 && sep_arcsec(it.2, items[j].2) < radius {
                        let (a, b) = (find(&mut parent, k), find(&mut parent, j));
                        if a != b {
                            parent[a.max(b)] = a.min(b);
                        }
                    }
                }
            }
        }
    }
    let mut groups: std::collections::BTreeMap<usize, Vec<usize>> =
        std::collections::BTreeMap::new();
    for k in 0..items.len() {
        let r = find(&mut parent, k);
        groups.entry(r).or_default().push(k);
    }
    let mut rows = Vec::new();
    let mut aid = 0;
    for (_, members) in groups {
        if members.len() < 2 {
            continue;
        }
        aid += 1;
        // More than one detection from the same list means a blend merged
        // two chains: keep it, but flag it.
        let mut lists_seen = std::collections::HashSet::new();
        let flag = i32::from(!members.iter().all(|&k| lists_seen.insert(items[k].0)));
        for k in members {
            rows.push((aid, items[k].0 as i64, items[k].1 as i64 + 1, flag));
        }
    }
    rows
}

/// Associations with a member in every list: the nearest neighbour of each
/// source of the first list in every other list (the "matched" rule).
fn associate_matched(lists: &[Vec<(f64, f64)>], radius: f64) -> Vec<(i64, i64, i64, i32)> {
    let mut grids: Vec<HashMap<(i64, i64), Vec<usize>>> = Vec::new();
    for pos in lists {
        let mut g: HashMap<(i64, i64), Vec<usize>> = HashMap::new();
        for (i, p) in pos.iter().enumerate() {
            if p.0.is_finite() {
                g.entry(cell(p.0, p.1, radius)).or_default().push(i);
            }
        }
        grids.push(g);
    }
    let mut rows = Vec::new();
    let mut aid = 0;
    for (i, &p) in lists[1].iter().enumerate() {
        if !p.0.is_finite() {
            continue;
        }
        let mut members = vec![(1usize, i)];
        for (m, pos) in lists.iter().enumerate() {
            if m == 1 {
                continue;
            }
            let (cx, cy) = cell(p.0, p.1, radius);
            let mut best: Option<(f64, usize)> = None;
            for dx in -1..=1 {
                for dy in -1..=1 {
                    for &j in grids[m]
                        .get(&(cx + dx, cy + dy))
                        .map(Vec::as_slice)
                        .unwrap_or(&[])
                    {
                        let d = sep_arcsec(p, pos[j]);
                        if d < radius && best.is_none_or(|b| d < b.0) {
                            best = Some((d, j));
                        }
                    }
                }
            }
            match best {
                Some((_, j)) => members.push((m, j)),
                None => break,
            }
        }
        if members.len() == lists.len() {
            aid += 1;
            members.sort();
            for (m, j) in members {
                rows.push((aid, m as i64, j as i64 + 1, 0));
            }
        }
    }
    rows
}

fn write_associations(path: &Path, rows: &[(i64, i64, i64, i32)]) -> Result<(), SampleError> {
    let aid: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let member: Vec<i64> = rows.iter().map(|r| r.1).collect();
    let sid: Vec<i64> = rows.iter().map(|r| r.2).collect();
    let flag: Vec<i32> = rows.iter().map(|r| r.3).collect();
    let cols = [
        Column::new("AID", "", ColumnData::I64(&aid)),
        Column::new("MEMBER", "", ColumnData::I64(&member)),
        Column::new("SID", "", ColumnData::I64(&sid)),
        Column::new("FLAG", "", ColumnData::I32(&flag)),
    ];
    fits::write_table(path, "ASSOCIATIONS", &cols, &[])?;
    Ok(())
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

    #[test]
    fn chain_association_links_detections_across_lists_only() {
        let a = ("a".to_string(), vec![(150.0, 2.0), (150.01, 2.0)]);
        let b = ("b".to_string(), vec![(150.0 + 0.3 / 3600.0, 2.0)]);
        let rows = associate_chain(&[a, b], 1.0);
        // One association of two members; the lone source is not associated.
        assert_eq!(rows, vec![(1, 0, 1, 0), (1, 1, 1, 0)]);
    }
}
