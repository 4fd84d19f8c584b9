//! Peer check against astropy: every frame's WCS gives the same sky
//! positions as astropy's, and astropy opens every file without warnings.
//!
//! The Python side lives in `tests/peer/check_sample.py` and runs in the
//! virtual environment `.ci/run` installs; `WISECUT_PYTHON` names its
//! interpreter. `WISECUT_PEER_SAMPLE` may name a generated sample's data
//! directory (CI points it at the full default survey); otherwise the tiny
//! test survey is checked.

use super::common;
use std::path::PathBuf;
use wisecut::catalog::ingest::Manifest;
use wisecut::imaging::fits;
use wisecut::imaging::wcs::Header;
use wisecut::imaging::wcs::{Wcs, WcsKeywords};

#[test]
fn wcs_and_files_agree_with_astropy() {
    let Some(py) = common::peer_python("astropy peer check") else {
        return;
    };
    let dir = std::env::var("WISECUT_PEER_SAMPLE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| common::tiny_sample().to_path_buf());
    let m: Manifest = Manifest::load(&dir.join("manifest.json")).unwrap();
    let mut probes = Vec::new();
    let mut with_wcs = 0;
    for f in &m.frames {
        let path = dir.join(&f.path);
        let hdu = fits::first_image_hdu(&path).unwrap();
        let info = fits::image_info(&path, hdu).unwrap();
        let header = Header::new(&fits::read_header(&path, hdu).unwrap());
        let mut points = Vec::new();
        if let Some(k) = WcsKeywords::from_header(&header).unwrap() {
            with_wcs += 1;
            let w = Wcs::new(&k, info.width, info.height).unwrap();
            let (nx, ny) = (info.width as f64, info.height as f64);
            for &(x, y) in &[
                (1.0, 1.0),
                (nx, 1.0),
                (1.0, ny),
                (nx, ny),
                (nx / 2.0 + 0.3, ny / 3.0 - 0.7),
                (0.5, 0.5),
            ] {
                let (ra, dec) = w.pix_to_sky(x, y).unwrap();
                points.push(serde_json::json!([x, y, ra, dec]));
            }
        }
        probes.push(serde_json::json!({"path": path, "hdu": hdu, "points": points}));
    }
    for s in &m.source_lists {
        probes.push(serde_json::json!({"path": dir.join(&s.path), "hdu": 1, "points": []}));
    }
    assert!(with_wcs > 0);
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), serde_json::to_string(&probes).unwrap()).unwrap();
    let stdout = common::run_peer(&py, "check_sample.py", &[tmp.path().as_os_str()]);
    assert!(
        stdout.contains(&format!("checked {} files", probes.len())),
        "{stdout}"
    );
}

/// The cutout engine against astropy's `Cutout2D` on inputs astropy writes:
/// TAN (CD), TAN-SIP, legacy `PC001001`, CROTA2, unsigned 16-bit integers,
/// and RICE-compressed floats (square tiles) and integers (row tiles); odd
/// and even sizes, sky and pixel centres, all four edges, angular sizes, and
/// the BSOFTEN/BOFFSET conversion. See `tests/peer/check_cutouts.py`.
#[test]
fn cutouts_agree_with_astropy_cutout2d() {
    let Some(py) = common::peer_python("astropy peer check") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let stdout = common::run_peer(
        &py,
        "check_cutouts.py",
        &[
            std::ffi::OsStr::new(env!("CARGO_BIN_EXE_wisecut")),
            work.path().as_os_str(),
        ],
    );
    assert!(stdout.contains("cutout peer: checked"), "{stdout}");
}
