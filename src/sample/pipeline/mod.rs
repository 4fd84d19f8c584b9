//! The simulated observing run and pipeline behind [`super::generate`]: raw
//! exposures in, every product a real CCD pipeline makes out, and the
//! lineage manifest that ties them together.
//!
//! [`generate`] runs the stages in this order (the module of each in
//! brackets):
//! 1. set up the observing run: exposures, truth catalogue, detectors
//!    ([`observing_run`]);
//! 2. raw bias, dome-flat and science exposures per chip: overscan, bias
//!    structure, vignetting, pixel response, dome illumination, fringes in i,
//!    hot and cold pixels, cosmic rays, photon and read noise
//!    ([`raw_exposures`]);
//! 3. master biases → hot-pixel maps; master flats → cold-pixel maps;
//!    flat-fielding; a fringe frame per chip from the i-band exposures
//!    ([`calibration_frames`]);
//! 4. reduction: (raw − bias) / flat − fringe, trimmed, with hot, cold and
//!    cosmic-ray pixels masked (NaN); sources extracted and matched to the
//!    reference stars ([`reduction`]);
//! 5. photometric catalogues → illumination corrections (quadratic fits)
//!    and zeropoints ([`photometric_calibration`]); then the reduced frames
//!    and their source lists are written ([`reduction`]);
//! 6. regridded frames on one sky grid, flux-scaled to zeropoint 30 per
//!    second with the illumination correction applied ([`regridding`]);
//! 7. a clipped-mean coadd per filter and its source list ([`coadding`]);
//! 8. associations across epochs and across filters ([`cross_match`]);
//! 9. the manifest ([`lineage_records`]).
//!
//! Each stage is parallel over frames with rayon, and every random frame is
//! seeded from (seed, stage, index), so thread scheduling never changes a
//! byte. Stages hand their products on in small structs named after what they
//! hold; a stage writes its own files and records them in the manifest as it
//! goes, so the manifest lists products in the order they were made.

mod calibration_frames;
mod coadding;
mod cross_match;
mod fits_output;
mod fringe_correction;
mod image_math;
mod lineage_records;
mod observing_run;
mod photometric_calibration;
mod raw_exposures;
mod reduction;
mod regridding;
mod surface_fit;

use super::camera::Camera;
use super::{ProgressFn, SampleError, SampleSpec};
use crate::catalog::ingest::Manifest;
use lineage_records::Lineage;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Generates the sample survey's FITS files and `manifest.json` into `dir`.
pub fn generate(
    dir: &Path,
    spec: &SampleSpec,
    progress: ProgressFn<'_>,
) -> Result<Manifest, SampleError> {
    let run = Run::new(dir, spec, progress);
    let mut lineage = Lineage::new(spec.nights);
    let obs = observing_run::set_up(&run);
    let cal_raws = raw_exposures::raw_calibration_exposures(&run, &obs, &mut lineage)?;
    let sci = raw_exposures::raw_science_exposures(&run, &obs, &mut lineage)?;
    let biases =
        calibration_frames::master_biases_and_hot_pixel_maps(&run, &cal_raws, &mut lineage)?;
    let flats = calibration_frames::master_flats(&run, &cal_raws, &biases, &mut lineage)?;
    let colds = calibration_frames::cold_pixel_maps(&run, &flats, &mut lineage)?;
    let nightly = calibration_frames::NightlyCalibrations {
        biases,
        flats,
        colds,
    };
    let flattened = calibration_frames::flatten_science(&run, &sci, &nightly);
    let fringes =
        calibration_frames::fringe_frames(&run, &sci, &flattened, &nightly, &mut lineage)?;
    let calibrations = calibration_frames::Calibrations { nightly, fringes };
    let reduced = reduction::reduce_science(&run, &obs, &sci, &flattened, &calibrations);
    photometric_calibration::photometric_catalogs(&run, &sci, &reduced, &mut lineage)?;
    let illum =
        photometric_calibration::illumination_corrections(&run, &sci, &reduced, &mut lineage)?;
    let photometry = photometric_calibration::zeropoints_and_seeing(&run, &sci, &reduced, &illum);
    let science = reduction::ScienceFrames {
        raw: &sci,
        reduced: &reduced,
        photometry: &photometry,
    };
    reduction::write_reduced_frames(&run, &science, &mut lineage)?;
    let grid = regridding::SkyGrid::new(&run.cam);
    let regridded = regridding::regrid_frames(&run, &science, &illum, &grid)?;
    reduction::record_reduced_and_regridded(&mut lineage, &science, &calibrations);
    let coadds = coadding::coadds(&run, &science, &regridded, &grid, &mut lineage)?;
    cross_match::associate_epochs(&run, &science, &mut lineage)?;
    cross_match::associate_filters(&run, &coadds, &grid, &mut lineage)?;
    lineage.write(dir)?;
    run.finish();
    Ok(lineage.into_manifest())
}

/// What every stage needs: the survey asked for, its camera, where the
/// files go, and the progress bar.
struct Run<'a> {
    dir: &'a Path,
    spec: &'a SampleSpec,
    cam: Camera,
    tracker: Tracker<'a>,
}

impl<'a> Run<'a> {
    fn new(dir: &'a Path, spec: &'a SampleSpec, progress: ProgressFn<'a>) -> Self {
        let n_sci = spec.nights * 3 * spec.dithers * 4;
        let n_cal_raw = spec.nights * 4 * (spec.n_bias + 3 * spec.n_flat);
        // Per night and chip a bias, a hot-pixel map, 3 flats and a cold-pixel
        // map; 4 fringe frames; 12 illumination corrections; per science
        // frame a photometric catalogue, a reduced frame, its source list and
        // a regridded frame; 3 coadds with their source lists; 4 associate
        // lists.
        let n_products = spec.nights * 4 * (2 + 3 + 1) + 4 + 12 + n_sci * 4 + 3 * 2 + 4;
        Run {
            dir,
            spec,
            cam: Camera::new(spec.chip_size, spec.chip_size),
            tracker: Tracker {
                done: AtomicUsize::new(0),
                total: n_sci + n_cal_raw + n_products,
                progress,
            },
        }
    }

    /// Counts one finished file of `stage` for the progress bar.
    fn tick(&self, stage: &str) {
        self.tracker.tick(stage);
    }

    fn finish(&self) {
        let t = &self.tracker;
        (t.progress)(t.total, t.total, "done");
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

fn seed_for(seed: u64, stage: u64, index: u64) -> u64 {
    // SplitMix64 of the combined key: independent streams per frame.
    let mut z = seed
        ^ stage.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The random stream of one frame of one stage.
fn rng(seed: u64, stage: u64, index: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed_for(seed, stage, index))
}
