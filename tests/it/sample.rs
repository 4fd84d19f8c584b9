//! The simulated survey: deterministic, and its reduced frames really are
//! (raw − bias) / flat − FRNGSCL × fringe.

use super::common::{self, SEED};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use wisecut::catalog::ingest::Manifest;
use wisecut::imaging::fits;
use wisecut::sample::{self, SampleSpec};

fn checksums(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, hex::encode(Sha256::digest(std::fs::read(&p).unwrap())));
            }
        }
    }
    out
}

fn manifest(dir: &Path) -> Manifest {
    Manifest::load(&dir.join("manifest.json")).unwrap()
}

#[test]
fn the_same_seed_gives_the_same_files_and_another_seed_does_not() {
    let a = common::tiny_sample();
    let b = tempfile::tempdir().unwrap();
    sample::generate(b.path(), &SampleSpec::tiny(SEED), &|_, _, _| {}).unwrap();
    let (ca, cb) = (checksums(a), checksums(b.path()));
    assert!(ca.len() > 100, "only {} files", ca.len());
    assert_eq!(ca, cb);

    // A different seed changes the pixels (checked on one raw frame only, to
    // keep the test short: the generator is the same code).
    let c = tempfile::tempdir().unwrap();
    sample::generate(c.path(), &SampleSpec::tiny(SEED + 1), &|_, _, _| {}).unwrap();
    let cc = checksums(c.path());
    let raw = ca.keys().find(|k| k.starts_with("raw/raw_sci")).unwrap();
    assert_ne!(ca[raw], cc[raw]);
}

#[test]
fn every_class_is_present_with_the_expected_counts() {
    let m = manifest(common::tiny_sample());
    let count = |c: &str| m.frames.iter().filter(|f| f.class == c).count();
    let spec = SampleSpec::tiny(SEED);
    let exposures = spec.nights * 3 * spec.dithers;
    assert_eq!(count("RawScienceFrame"), exposures * 4);
    assert_eq!(count("ReducedScienceFrame"), exposures * 4);
    assert_eq!(count("RegriddedFrame"), exposures * 4);
    assert_eq!(count("CoaddedRegriddedFrame"), 3);
    assert_eq!(count("BiasFrame"), spec.nights * 4);
    assert_eq!(count("HotPixelMap"), spec.nights * 4);
    assert_eq!(count("ColdPixelMap"), spec.nights * 4);
    assert_eq!(count("MasterFlatFrame"), spec.nights * 4 * 3);
    assert_eq!(count("FringeFrame"), 4);
    assert_eq!(count("IlluminationCorrection"), 12);
    assert_eq!(count("RawBiasFrame"), spec.nights * 4 * spec.n_bias);
    assert_eq!(count("RawDomeFlatFrame"), spec.nights * 4 * 3 * spec.n_flat);
    // Reduced frames and coadds have source lists, raw frames photometric
    // catalogs; epochs per filter and the colours are associated.
    assert_eq!(m.source_lists.len(), exposures * 4 * 2 + 3);
    assert_eq!(m.associate_lists.len(), 4);
}

/// Reads a frame's image by manifest key.
fn image(dir: &Path, m: &Manifest, key: &str) -> wisecut::imaging::raster::Raster<f32> {
    let f = m.frames.iter().find(|f| f.key == key).unwrap();
    let path = dir.join(&f.path);
    let hdu = fits::first_image_hdu(&path).unwrap();
    fits::read_image_f32(&path, hdu).unwrap()
}

#[test]
fn a_reduced_frame_is_raw_minus_bias_over_flat_minus_scaled_fringe() {
    let dir = common::tiny_sample();
    let m = manifest(dir);
    // An i-band frame, so that the fringe term is part of the formula.
    let red = m
        .frames
        .iter()
        .find(|f| f.class == "ReducedScienceFrame" && f.key.contains("_i_"))
        .unwrap();
    let dep = |role: &str| {
        red.deps
            .iter()
            .find(|d| d.role == role)
            .and_then(|d| d.key.clone())
            .unwrap_or_else(|| panic!("reduced frame has no {role}"))
    };
    let reduced = image(dir, &m, &red.key);
    let raw = image(dir, &m, &dep("raw"));
    let bias = image(dir, &m, &dep("bias"));
    let flat = image(dir, &m, &dep("flat"));
    let fringe = image(dir, &m, &dep("fringe"));
    // The fringe amplitude is fitted per exposure and recorded; the frame
    // names the fringe frame it subtracted, as IRAF's FRINGCOR does.
    let red_path = dir.join(&red.path);
    let scale = fits::read_keyword(&red_path, 0, "FRNGSCL")
        .unwrap()
        .value
        .as_f64()
        .unwrap() as f32;
    assert!((0.5..1.5).contains(&scale), "FRNGSCL {scale}");
    let named = fits::read_keyword(&red_path, 0, "FRINGCOR").unwrap();
    assert_eq!(
        named.value.as_str(),
        Some(format!("{}.fits", dep("fringe")).as_str())
    );
    let (w, h) = (reduced.width, reduced.height);
    assert_eq!((bias.width, flat.width, fringe.width), (w, w, w));
    assert!(raw.width > w, "raw frames keep their overscan");
    let (mut checked, mut masked) = (0usize, 0usize);
    for y in 0..h {
        for x in 0..w {
            let got = reduced.get(x, y);
            if got.is_nan() {
                masked += 1;
                continue;
            }
            let want = (raw.get(x, y) - bias.get(x, y)) / flat.get(x, y) - scale * fringe.get(x, y);
            let tol = 1e-5 * want.abs().max(1.0);
            assert!(
                (got - want).abs() <= tol,
                "pixel ({x},{y}): {got} vs {want}"
            );
            checked += 1;
        }
    }
    // Masking is for hot, cold and cosmic-ray pixels: present, but rare.
    assert!(
        masked > 0 && masked < w * h / 50,
        "{masked} masked of {}",
        w * h
    );
    assert!(checked > w * h * 9 / 10);
}

#[test]
fn raw_science_frames_are_tile_compressed_and_reduced_frames_plain() {
    let dir = common::tiny_sample();
    let m = manifest(dir);
    let raw = m
        .frames
        .iter()
        .find(|f| f.class == "RawScienceFrame")
        .unwrap();
    let red = m
        .frames
        .iter()
        .find(|f| f.class == "ReducedScienceFrame")
        .unwrap();
    let raw_info = fits::image_info(&dir.join(&raw.path), 1).unwrap();
    assert!(raw_info.compressed);
    assert_eq!(raw_info.bitpix, 16);
    let red_info = fits::image_info(&dir.join(&red.path), 0).unwrap();
    assert!(!red_info.compressed);
    assert_eq!(red_info.bitpix, -32);
}

#[test]
fn calibration_products_are_physically_sensible() {
    let dir = common::tiny_sample();
    let m = manifest(dir);
    let of = |class: &'static str| m.frames.iter().filter(move |f| f.class == class);
    // Regression: hot pixels once had no level in bias frames, so every
    // HotPixelMap was empty. They must find some pixels, but few.
    for f in of("HotPixelMap").chain(of("ColdPixelMap")) {
        let img = image(dir, &m, &f.key);
        let bad = img.data.iter().filter(|v| **v == 0.0).count();
        assert!(
            bad > 0 && bad < img.data.len() / 50,
            "{}: {bad} bad pixels",
            f.key
        );
    }
    // Illumination corrections are corrections of a few per cent.
    for f in of("IlluminationCorrection") {
        let img = image(dir, &m, &f.key);
        assert!(img.data.iter().all(|v| (0.9..1.1).contains(v)), "{}", f.key);
    }
    // Master flats are normalised to 1.
    for f in of("MasterFlatFrame") {
        let mut v = image(dir, &m, &f.key).data;
        v.sort_by(f32::total_cmp);
        let med = v[v.len() / 2];
        assert!((med - 1.0).abs() < 0.01, "{}: median {med}", f.key);
    }
    // Regridded frames and coadds are background-subtracted.
    for f in of("RegriddedFrame").chain(of("CoaddedRegriddedFrame")) {
        let mut v: Vec<f32> = image(dir, &m, &f.key)
            .data
            .into_iter()
            .filter(|x| x.is_finite())
            .collect();
        v.sort_by(f32::total_cmp);
        let (med, p84) = (v[v.len() / 2], v[v.len() * 84 / 100]);
        assert!(
            med.abs() < 0.2 * (p84 - med),
            "{}: median {med}, noise {}",
            f.key,
            p84 - med
        );
    }
}
