//! The calibration frames: master biases and hot-pixel maps, master flats
//! and cold-pixel maps per night and chip, and a fringe frame per chip.
//!
//! These are the products every reduced frame depends on in the lineage, so
//! each is written as a file of its own class and recorded with the raw
//! frames it was made from and the nights it is valid for.

use super::Run;
use super::fits_output::{card, common_cards, filter_card};
use super::fringe_correction;
use super::image_math::{combine_median, robust_stats, trim};
use super::lineage_records::{Lineage, night_range, processing};
use super::raw_exposures::{CalRaw, RawScience};
use crate::catalog::ingest::DepRef;
use crate::imaging::fits::PixelData;
use crate::imaging::raster::Raster;
use crate::model::FrameClass;
use crate::sample::SampleError;
use crate::sample::camera::CHIP_NAMES;
use crate::sample::sky_simulator::BANDS;
use rayon::prelude::*;

/// A calibration product: its manifest key and its pixels.
pub(super) struct Product<T> {
    pub(super) key: String,
    pub(super) img: Raster<T>,
}

/// A master bias and the hot-pixel map found in it.
pub(super) struct MasterBias {
    pub(super) bias: Product<f32>,
    /// 1 = good, 0 = hot.
    pub(super) hot: Product<u8>,
}

/// The calibrations made per night and chip, in the order the pipeline
/// makes them: night, then chip, then band.
pub(super) struct NightlyCalibrations {
    pub(super) biases: Vec<MasterBias>,
    pub(super) flats: Vec<Product<f32>>,
    /// 1 = good, 0 = cold.
    pub(super) colds: Vec<Product<u8>>,
}

impl NightlyCalibrations {
    pub(super) fn bias(&self, night: usize, chip: usize) -> &MasterBias {
        &self.biases[night * 4 + chip]
    }

    pub(super) fn flat(&self, night: usize, chip: usize, band: usize) -> &Product<f32> {
        &self.flats[(night * 4 + chip) * 3 + band]
    }

    pub(super) fn cold(&self, night: usize, chip: usize) -> &Product<u8> {
        &self.colds[night * 4 + chip]
    }

    /// Sets the hot and cold pixels of `chip` on `night` to NaN.
    fn mask_bad_pixels(&self, img: &mut Raster<f32>, night: usize, chip: usize) {
        let (hot, cold) = (&self.bias(night, chip).hot.img, &self.cold(night, chip).img);
        for p in 0..img.data.len() {
            if hot.data[p] == 0 || cold.data[p] == 0 {
                img.data[p] = f32::NAN;
            }
        }
    }
}

/// Every calibration a science frame needs.
pub(super) struct Calibrations {
    pub(super) nightly: NightlyCalibrations,
    /// One i-band fringe frame per chip, for the whole run.
    pub(super) fringes: Vec<Product<f32>>,
}

impl Calibrations {
    /// The masked, flat-fielded and (in i) de-fringed data of one science
    /// frame, from its flat-fielded pixels, with the fringe frame's key and
    /// fitted scale (`None` outside i).
    pub(super) fn finish(
        &self,
        s: &RawScience,
        flattened: &Raster<f32>,
    ) -> (Raster<f32>, Option<(String, f32)>) {
        let mut img = flattened.clone();
        self.nightly.mask_bad_pixels(&mut img, s.exp.night, s.chip);
        let mut scale = None;
        if s.exp.band == 2 {
            let fringe = &self.fringes[s.chip];
            let k = fringe_correction::fitted_scale(&img, &fringe.img);
            for (v, fr) in img.data.iter_mut().zip(&fringe.img.data) {
                *v -= k * fr;
            }
            scale = Some((fringe.key.clone(), k));
        }
        (img, scale)
    }
}

/// (night, chip) of every night and chip, night-major: the order of
/// [`NightlyCalibrations::biases`].
fn night_chips(nights: usize) -> Vec<(usize, usize)> {
    (0..nights)
        .flat_map(|nt| (0..4).map(move |c| (nt, c)))
        .collect()
}

/// The raw biases (`band` None) or dome flats of one night, chip and band.
fn raws_of(
    cal_raws: &[CalRaw],
    night: usize,
    chip: usize,
    band: Option<usize>,
) -> impl Iterator<Item = &CalRaw> {
    cal_raws
        .iter()
        .filter(move |c| c.night == night && c.chip == chip && c.band == band)
}

fn raw_deps(cal_raws: &[CalRaw], night: usize, chip: usize, band: Option<usize>) -> Vec<DepRef> {
    raws_of(cal_raws, night, chip, band)
        .map(|c| DepRef::key("raw", &c.key))
        .collect()
}

/// A master bias per night and chip, the mean of its raw biases, and the
/// hot-pixel map found in it.
pub(super) fn master_biases_and_hot_pixel_maps(
    run: &Run,
    cal_raws: &[CalRaw],
    lineage: &mut Lineage,
) -> Result<Vec<MasterBias>, SampleError> {
    let nc = night_chips(run.spec.nights);
    let biases: Vec<MasterBias> = nc
        .par_iter()
        .map(|&(night, chip)| -> Result<_, SampleError> {
            let bias = master_bias(run, cal_raws, night, chip)?;
            let hot = hot_pixel_map(run, &bias.img, night, chip)?;
            Ok(MasterBias { bias, hot })
        })
        .collect::<Result<_, _>>()?;
    for (k, (&(night, chip), b)) in nc.iter().zip(&biases).enumerate() {
        let valid = night_range(night);
        let deps = raw_deps(cal_raws, night, chip, None);
        lineage.calibration(
            &b.bias.key,
            FrameClass::BiasFrame,
            processing(k),
            deps,
            valid,
        );
        let deps = vec![DepRef::key("bias", &b.bias.key)];
        lineage.calibration(
            &b.hot.key,
            FrameClass::HotPixelMap,
            processing(k),
            deps,
            valid,
        );
    }
    Ok(biases)
}

fn master_bias(
    run: &Run,
    cal_raws: &[CalRaw],
    night: usize,
    chip: usize,
) -> Result<Product<f32>, SampleError> {
    let n = run.cam.nx;
    let raws: Vec<&CalRaw> = raws_of(cal_raws, night, chip, None).collect();
    let mut sum = Raster::filled(n, n, 0.0f32);
    for r in &raws {
        let t = trim(&r.raw, n);
        for (s, v) in sum.data.iter_mut().zip(&t.data) {
            *s += v;
        }
    }
    let bias = sum.map(|v| v / raws.len() as f32);
    let key = format!("bias_n{}_{}", night + 1, CHIP_NAMES[chip]);
    let mut cards = common_cards("bias", FrameClass::BiasFrame, Some(chip));
    cards.extend([
        card("OBJECT", "MASTER BIAS", ""),
        card("NCOMBINE", raws.len() as i64, "raw bias exposures averaged"),
        card("BUNIT", "adu", ""),
    ]);
    run.write_calibration(&key, PixelData::F32(&bias), &cards, "master biases")?;
    Ok(Product { key, img: bias })
}

/// Hot pixels stand far above the bias level even in a zero-second exposure.
fn hot_pixel_map(
    run: &Run,
    bias: &Raster<f32>,
    night: usize,
    chip: usize,
) -> Result<Product<u8>, SampleError> {
    let (m, sig) = robust_stats(bias);
    let thresh = m + (8.0 * sig).max(100.0);
    let hot = bias.map(|v| u8::from(v <= thresh));
    let key = format!("hot_n{}_{}", night + 1, CHIP_NAMES[chip]);
    let mut cards = common_cards("hotpixels", FrameClass::HotPixelMap, Some(chip));
    cards.push(card("OBJECT", "HOT PIXEL MAP", "1 = good, 0 = hot"));
    cards.push(card(
        "THRESH",
        f64::from(thresh),
        "[adu] bias level above which a pixel is hot",
    ));
    run.write_calibration(&key, PixelData::U8(&hot), &cards, "hot pixel maps")?;
    Ok(Product { key, img: hot })
}

/// A master dome flat per night, chip and band: the median of the
/// bias-subtracted, normalised raw flats, normalised to a median of 1.
pub(super) fn master_flats(
    run: &Run,
    cal_raws: &[CalRaw],
    biases: &[MasterBias],
    lineage: &mut Lineage,
) -> Result<Vec<Product<f32>>, SampleError> {
    let nbc: Vec<(usize, usize, usize)> = night_chips(run.spec.nights)
        .into_iter()
        .flat_map(|(nt, c)| (0..3).map(move |b| (nt, c, b)))
        .collect();
    let flats: Vec<Product<f32>> = nbc
        .par_iter()
        .map(|&(night, chip, band)| {
            let bias = &biases[night * 4 + chip].bias.img;
            master_flat(run, cal_raws, bias, (night, chip, band))
        })
        .collect::<Result<_, _>>()?;
    for (k, (&(night, chip, band), f)) in nbc.iter().zip(&flats).enumerate() {
        let b = &biases[night * 4 + chip];
        let mut deps = raw_deps(cal_raws, night, chip, Some(band));
        deps.push(DepRef::key("bias", &b.bias.key));
        deps.push(DepRef::key("hotpixelmap", &b.hot.key));
        let valid = night_range(night);
        lineage.calibration(
            &f.key,
            FrameClass::MasterFlatFrame,
            processing(100 + k),
            deps,
            valid,
        );
    }
    Ok(flats)
}

fn master_flat(
    run: &Run,
    cal_raws: &[CalRaw],
    bias: &Raster<f32>,
    (night, chip, band): (usize, usize, usize),
) -> Result<Product<f32>, SampleError> {
    let n = run.cam.nx;
    let frames: Vec<Raster<f32>> = raws_of(cal_raws, night, chip, Some(band))
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
        filter_card(band),
        card("NCOMBINE", frames.len() as i64, "raw flats median-combined"),
    ]);
    run.write_calibration(&key, PixelData::F32(&flat), &cards, "master flats")?;
    Ok(Product { key, img: flat })
}

/// Cold-pixel maps per night and chip, from the r-band master flat: a cold
/// pixel answers to light far less than its neighbours.
pub(super) fn cold_pixel_maps(
    run: &Run,
    flats: &[Product<f32>],
    lineage: &mut Lineage,
) -> Result<Vec<Product<u8>>, SampleError> {
    let r_flat = |night: usize, chip: usize| &flats[(night * 4 + chip) * 3 + 1];
    let nc = night_chips(run.spec.nights);
    let colds: Vec<Product<u8>> = nc
        .par_iter()
        .map(|&(night, chip)| -> Result<_, SampleError> {
            let cold = r_flat(night, chip).img.map(|v| u8::from(v >= 0.6));
            let key = format!("cold_n{}_{}", night + 1, CHIP_NAMES[chip]);
            let mut cards = common_cards("coldpixels", FrameClass::ColdPixelMap, Some(chip));
            cards.push(card("OBJECT", "COLD PIXEL MAP", "1 = good, 0 = cold"));
            cards.push(card(
                "THRESH",
                0.6,
                "flat-field response below which a pixel is cold",
            ));
            run.write_calibration(&key, PixelData::U8(&cold), &cards, "cold pixel maps")?;
            Ok(Product { key, img: cold })
        })
        .collect::<Result<_, _>>()?;
    for (k, (&(night, chip), c)) in nc.iter().zip(&colds).enumerate() {
        let deps = vec![DepRef::key("flat", &r_flat(night, chip).key)];
        let valid = night_range(night);
        lineage.calibration(
            &c.key,
            FrameClass::ColdPixelMap,
            processing(200 + k),
            deps,
            valid,
        );
    }
    Ok(colds)
}

/// The bias-subtracted, flat-fielded science data, before de-fringing and
/// masking.
pub(super) fn flatten_science(
    run: &Run,
    sci: &[RawScience],
    nightly: &NightlyCalibrations,
) -> Vec<Raster<f32>> {
    let n = run.cam.nx;
    sci.par_iter()
        .map(|s| {
            let (nt, ch, b) = (s.exp.night, s.chip, s.exp.band);
            let bias = &nightly.bias(nt, ch).bias.img;
            let flat = &nightly.flat(nt, ch, b).img;
            let t = trim(&s.raw, n);
            let mut out = Raster::filled(n, n, 0.0f32);
            for p in 0..n * n {
                out.data[p] = (t.data[p] - bias.data[p]) / flat.data[p];
            }
            out
        })
        .collect()
}

/// A fringe frame per chip for the whole run, from the sky-normalised,
/// source-masked i-band exposures (see [`super::fringe_correction`]).
pub(super) fn fringe_frames(
    run: &Run,
    sci: &[RawScience],
    flattened: &[Raster<f32>],
    nightly: &NightlyCalibrations,
    lineage: &mut Lineage,
) -> Result<Vec<Product<f32>>, SampleError> {
    let fringes: Vec<Product<f32>> = (0..4)
        .into_par_iter()
        .map(|chip| fringe_frame(run, sci, flattened, nightly, chip))
        .collect::<Result<_, _>>()?;
    for (chip, f) in fringes.iter().enumerate() {
        let mut deps = Vec::new();
        for s in sci.iter().filter(|s| s.chip == chip && s.exp.band == 2) {
            deps.push(DepRef::key("raw", &s.key));
        }
        for night in 0..run.spec.nights {
            deps.push(DepRef::key("bias", &nightly.bias(night, chip).bias.key));
            deps.push(DepRef::key("flat", &nightly.flat(night, chip, 2).key));
        }
        let valid = lineage.run_range();
        lineage.calibration(
            &f.key,
            FrameClass::FringeFrame,
            processing(300 + chip),
            deps,
            valid,
        );
    }
    Ok(fringes)
}

fn fringe_frame(
    run: &Run,
    sci: &[RawScience],
    flattened: &[Raster<f32>],
    nightly: &NightlyCalibrations,
    chip: usize,
) -> Result<Product<f32>, SampleError> {
    let exposures: Vec<Raster<f32>> = sci
        .iter()
        .zip(flattened)
        .filter(|(s, _)| s.chip == chip && s.exp.band == 2)
        .map(|(s, f)| {
            let mut f = f.clone();
            nightly.mask_bad_pixels(&mut f, s.exp.night, chip);
            f
        })
        .collect();
    let comb = fringe_correction::fringe_frame(&exposures);
    let key = format!("fringe_i_{}", CHIP_NAMES[chip]);
    let mut cards = common_cards("fringe", FrameClass::FringeFrame, Some(chip));
    cards.extend([
        card("OBJECT", "FRINGE FRAME", ""),
        filter_card(2),
        card(
            "NCOMBINE",
            exposures.len() as i64,
            "source-masked exposures median-combined",
        ),
        card(
            "BUNIT",
            "adu",
            "at the median sky; scaled by FRNGSCL per frame",
        ),
    ]);
    run.write_calibration(&key, PixelData::F32(&comb), &cards, "fringe frames")?;
    Ok(Product { key, img: comb })
}
