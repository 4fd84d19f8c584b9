//! Writing the pipeline's FITS files: the header cards every product shares
//! and the source-list table.
//!
//! Products of one kind must look alike to the ingest and to the services
//! (the same keywords, with the same comments and roundings), so each
//! family of cards is made in one place here rather than spelled out per
//! stage.

use super::Run;
use super::observing_run::mjd;
use crate::imaging::fits::{self, Card, Column, ColumnData, Compression, PixelData};
use crate::imaging::wcs::{Wcs, WcsKeywords};
use crate::model::FrameClass;
use crate::sample::SampleError;
use crate::sample::camera::{CHIP_NAMES, Camera};
use crate::sample::extract::Detection;
use crate::sample::sky_simulator::BANDS;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::path::Path;

impl Run<'_> {
    /// Writes an image to `rel` under the output directory and counts it as
    /// done for the progress bar's `stage`.
    pub(super) fn write_image(
        &self,
        rel: &str,
        px: PixelData<'_>,
        cards: &[Card],
        compression: Compression,
        stage: &str,
    ) -> Result<(), SampleError> {
        let path = self.dir.join(rel);
        create_parent(&path)?;
        fits::write_image(&path, px, cards, &compression)?;
        self.tick(stage);
        Ok(())
    }

    /// Writes an uncompressed calibration product to `cal/{key}.fits`.
    pub(super) fn write_calibration(
        &self,
        key: &str,
        px: PixelData<'_>,
        cards: &[Card],
        stage: &str,
    ) -> Result<(), SampleError> {
        let rel = format!("cal/{key}.fits");
        self.write_image(&rel, px, cards, Compression::None, stage)
    }

    /// Writes the source list `cat/{key}.fits` of detections on an image
    /// calibrated by `cal`, and counts it as done for `stage`.
    pub(super) fn write_source_list(
        &self,
        key: &str,
        dets: &[Detection],
        cal: &ImageCalibration<'_>,
        cards: &[Card],
        stage: &str,
    ) -> Result<(), SampleError> {
        let path = self.dir.join(format!("cat/{key}.fits"));
        create_parent(&path)?;
        let columns = SourceColumns::new(dets, cal.wcs, cal.zeropoint, cal.exptime);
        fits::write_table(&path, "OBJECTS", &columns.columns(), cards)?;
        self.tick(stage);
        Ok(())
    }
}

/// What turns a detection's pixel position and flux into a sky position and
/// a magnitude `zeropoint − 2.5 log10(flux / exptime)`.
pub(super) struct ImageCalibration<'a> {
    pub(super) wcs: &'a Wcs,
    /// Magnitude of 1 ADU/s.
    pub(super) zeropoint: f64,
    /// Seconds the fluxes were collected in (1 for images in ADU/s).
    pub(super) exptime: f64,
}

pub(super) fn create_parent(path: &Path) -> Result<(), SampleError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| SampleError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

/// The measured columns of a SourceList table, with their units.
const SOURCE_COLUMNS: [(&str, &str); 12] = [
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

/// The values of a SourceList table, column by column.
struct SourceColumns {
    sid: Vec<i64>,
    values: HashMap<&'static str, Vec<f64>>,
    flags: Vec<i32>,
}

impl SourceColumns {
    fn new(dets: &[Detection], w: &Wcs, zp: f64, exptime: f64) -> Self {
        let n = dets.len();
        // Every column exists even for an empty list: a catalog with no
        // sources is still a valid catalog.
        let mut values: HashMap<&str, Vec<f64>> = SOURCE_COLUMNS
            .iter()
            .map(|(k, _)| (*k, Vec::with_capacity(n)))
            .collect();
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
                values.entry(k).or_default().push(v);
            }
            flags.push(d.flags);
        }
        SourceColumns {
            sid: (1..=n as i64).collect(),
            values,
            flags,
        }
    }

    fn columns(&self) -> Vec<Column<'_>> {
        let mut columns = vec![Column::new("SID", "", ColumnData::I64(&self.sid))];
        for (name, unit) in SOURCE_COLUMNS {
            columns.push(Column {
                name,
                unit,
                data: ColumnData::F64(&self.values[name]),
            });
        }
        columns.push(Column::new("FLAGS", "", ColumnData::I32(&self.flags)));
        columns
    }
}

pub(super) fn card(key: &str, value: impl Into<fits::HeaderValue>, comment: &str) -> Card {
    Card::new(key, value, comment)
}

pub(super) fn wcs_cards(w: &WcsKeywords) -> Vec<Card> {
    w.to_cards()
        .into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => card(&k, s, ""),
            serde_json::Value::Number(n) if n.is_i64() => card(&k, n.as_i64().unwrap_or(0), ""),
            other => card(&k, other.as_f64().unwrap_or(0.0), ""),
        })
        .collect()
}

/// The cards that open every image header: instrument, image type, frame
/// class, software and, for a single-chip product, the chip.
pub(super) fn common_cards(kind: &str, class: FrameClass, chip: Option<usize>) -> Vec<Card> {
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

/// The field every science product shows.
pub(super) fn target_card() -> Card {
    card("OBJECT", "WISE-F1", "target field")
}

pub(super) fn filter_card(band: usize) -> Card {
    card("FILTER", BANDS[band], "filter name")
}

/// Exposure time and start of one exposure.
pub(super) fn exposure_cards(exptime: f64, start: DateTime<Utc>) -> [Card; 3] {
    [
        card("EXPTIME", exptime, "[s] exposure time"),
        card("DATE-OBS", fits_date(start), "UTC start of exposure"),
        card("MJD-OBS", mjd(start), "MJD start of exposure"),
    ]
}

/// Gain and read noise of a chip's amplifier.
pub(super) fn amplifier_cards(cam: &Camera, chip: usize) -> [Card; 2] {
    [
        card("GAIN", cam.gains[chip], "[e-/ADU] detector gain"),
        card("RDNOISE", cam.read_noise[chip], "[ADU] read noise"),
    ]
}

/// Where the light-sensitive pixels and the overscan of a raw frame are.
pub(super) fn section_cards(cam: &Camera) -> [Card; 2] {
    [
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
    ]
}

/// A zeropoint rounded to 0.1 mmag, as headers carry it.
pub(super) fn header_zeropoint(zp: f64) -> f64 {
    (zp * 1e4).round() / 1e4
}

/// The seeing in arcsec, rounded to a milli-arcsecond.
pub(super) fn seeing_card(seeing: f64, comment: &str) -> Card {
    card("SEEING", (seeing * 1e3).round() / 1e3, comment)
}

/// The header of a source list: its filter and zeropoint.
pub(super) fn source_list_cards(band: usize, zp: f64) -> Vec<Card> {
    vec![
        card("FILTER", BANDS[band], ""),
        card("MAGZPT", header_zeropoint(zp), ""),
    ]
}

pub(super) fn fits_date(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()
}
