//! How wisecut's objects appear to the VO: publisher identifiers, and the
//! ObsCore 1.1 description of a frame (the columns of an SIA v2 answer).
//!
//! Decisions, where ObsCore leaves room:
//! - `obs_collection` is the frame class (`RawScienceFrame`, …,
//!   `CoaddedRegriddedFrame`): that is what SIA's `COLLECTION` selects, and
//!   it is how survey astronomers think of the archive.
//! - `calib_level`: raw exposures 1; calibration masters and maps, reduced
//!   and regridded frames 2 (calibrated, in standard units); coadds 3
//!   (enhanced products).
//! - `em_min`/`em_max` come from the filter name through a table of common
//!   broad bands (SDSS/Johnson-Cousins half-power widths); an unknown filter
//!   leaves them null, so such frames never match a `BAND` constraint rather
//!   than matching a guess.
//! - `t_min`/`t_max` span the exposures: `MJD-OBS` to `MJD-END` (or
//!   `DATE-END`) when the header records the end, as a coadd's does (its
//!   last input may be nights after its first), else `MJD-OBS` plus
//!   `EXPTIME`. `t_exptime` is `EXPTIME`: for a coadd the depth of one
//!   pixel, not the sum over its chips. `t_resolution` is the exposure
//!   time too (one exposure is one time sample).
//! - `s_resolution` is the seeing FWHM in arcsec; `facility_name` is
//!   `TELESCOP`.
//! - `access_url` is the stored file itself (`/data/ID`, `image/fits`); the
//!   DataLink service descriptor of the response leads to cutouts, previews
//!   and the lineage.

use crate::ids::ObjectId;
use crate::imaging::sphere::separation;
use crate::model::{Frame, FrameClass};

/// The authority part of wisecut's identifiers.
pub const AUTHORITY: &str = "ivo://wisecut";

/// The publisher DID of an object: `ivo://wisecut/obj?ID`.
pub fn ivoid(id: ObjectId) -> String {
    format!("{AUTHORITY}/obj?{}", id.0)
}

/// The object an identifier names: the canonical `ivo://wisecut/obj?ID`,
/// or a bare object id (what people type). `None` when it is neither.
pub fn parse_ivoid(text: &str) -> Option<ObjectId> {
    let t = text.trim();
    let num = t
        .strip_prefix(AUTHORITY)
        .and_then(|r| r.strip_prefix("/obj?"))
        .unwrap_or(t);
    num.parse::<i64>().ok().filter(|v| *v > 0).map(ObjectId)
}

/// The DID of a cutout: `ivo://wisecut/cutout?` followed by the query of
/// the cutout API that makes it (`frame=N&ra=…&dec=…&size=…&unit=…`).
pub fn cutout_did(query: &str) -> String {
    format!("{AUTHORITY}/cutout?{query}")
}

/// A cutout DID's frame and cutout-API query, `None` for other text. The
/// query must name its frame; the cutout API checks the rest when the
/// cutout is made.
pub fn parse_cutout_did(text: &str) -> Option<(ObjectId, String)> {
    let query = text
        .trim()
        .strip_prefix(AUTHORITY)?
        .strip_prefix("/cutout?")?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).ok()?;
    let frame = pairs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("frame"))
        .and_then(|(_, v)| v.trim().parse::<i64>().ok())
        .filter(|v| *v > 0)?;
    // The format is chosen per link (#this FITS, #preview PNG).
    let rest: Vec<(String, String)> = pairs
        .into_iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("format"))
        .collect();
    Some((ObjectId(frame), serde_urlencoded::to_string(rest).ok()?))
}

/// ObsCore calibration level of a class.
pub fn calib_level(class: FrameClass) -> i64 {
    use FrameClass::*;
    match class {
        RawBiasFrame | RawDomeFlatFrame | RawScienceFrame => 1,
        CoaddedRegriddedFrame => 3,
        _ => 2,
    }
}

/// A frame's ObsCore description: the one mapping behind SIA answers and
/// the ObsCore rows of TAP, so both say the same of every frame. Columns
/// that are the same for every wisecut frame (`dataproduct_type` image,
/// one time, spectral and polarisation bin, `o_ucd` phot.count) are
/// constants of the writers.
#[derive(Debug, Clone, PartialEq)]
pub struct ObsRecord {
    /// The frame's object id.
    pub object_id: ObjectId,
    /// `calib_level`.
    pub calib_level: i64,
    /// `obs_collection`: the frame class.
    pub obs_collection: &'static str,
    /// `obs_id`: the file name.
    pub obs_id: String,
    /// `obs_publisher_did`.
    pub obs_publisher_did: String,
    /// `access_estsize` in kbyte.
    pub access_estsize: i64,
    /// `target_name` (`OBJECT`).
    pub target_name: Option<String>,
    /// `s_ra`, `s_dec`: the centre of the data section.
    pub s_centre: Option<(f64, f64)>,
    /// `s_fov` in degrees.
    pub s_fov: Option<f64>,
    /// `s_region`: the sky corners.
    pub s_region: Option<Vec<(f64, f64)>>,
    /// `s_resolution` in arcsec.
    pub s_resolution: Option<f64>,
    /// `s_xel1`, `s_xel2`.
    pub s_xel: (i64, i64),
    /// `t_min`, `t_max` (MJD).
    pub t_range: Option<(f64, f64)>,
    /// `t_exptime` in seconds.
    pub t_exptime: Option<f64>,
    /// `t_resolution` in seconds.
    pub t_resolution: Option<f64>,
    /// `em_min`, `em_max` in metres.
    pub em_range: Option<(f64, f64)>,
    /// `em_res_power`: λ/Δλ of the band.
    pub em_res_power: Option<f64>,
    /// `facility_name` (`TELESCOP`).
    pub facility_name: Option<String>,
    /// `instrument_name` (`INSTRUME`).
    pub instrument_name: Option<String>,
    /// The filter name.
    pub filter: Option<String>,
    /// The chip name.
    pub chip: Option<String>,
}

impl ObsRecord {
    /// The ObsCore description of `f`.
    pub fn of(f: &Frame) -> Self {
        let em_range = f.filter.as_deref().and_then(band);
        let text = |key: &str| {
            f.extra
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        Self {
            object_id: f.target.object_id,
            calib_level: calib_level(f.class),
            obs_collection: f.class.name(),
            obs_id: f.filename.clone(),
            obs_publisher_did: ivoid(f.target.object_id),
            access_estsize: (f.file_size + 999) / 1000,
            target_name: f.object.clone(),
            s_centre: f.center.filter(|_| f.footprint.is_some()),
            s_fov: f.footprint.as_deref().map(fov),
            s_region: f.footprint.clone(),
            s_resolution: f.seeing,
            s_xel: (i64::from(f.naxis1), i64::from(f.naxis2)),
            t_range: time_range(f),
            t_exptime: f.exptime,
            t_resolution: f.exptime,
            em_range,
            em_res_power: em_range.map(|(lo, hi)| (lo + hi) / 2.0 / (hi - lo)),
            facility_name: text("TELESCOP"),
            instrument_name: f.instrument.clone(),
            filter: f.filter.clone(),
            chip: f.chip.clone(),
        }
    }
}

/// A frame's exposure as an MJD interval: `MJD-OBS` to the recorded end
/// (`MJD-END`, else `DATE-END`), else to `MJD-OBS` + `EXPTIME`.
pub fn time_range(f: &Frame) -> Option<(f64, f64)> {
    let start = f.mjd_obs?;
    let recorded_end = f
        .extra
        .get("MJD-END")
        .and_then(|v| v.as_f64())
        .or_else(|| {
            let text = f.extra.get("DATE-END")?.as_str()?;
            let t = crate::catalog::browse::parse_time(text)?;
            Some(t.timestamp_millis() as f64 / 86_400_000.0 + 40_587.0)
        })
        .filter(|end| end.is_finite() && *end >= start);
    Some((
        start,
        recorded_end.unwrap_or(start + f.exptime.unwrap_or(0.0) / 86_400.0),
    ))
}

/// Whether frames of this class are images of the sky (science data) rather
/// than detector calibrations.
pub fn is_science(class: FrameClass) -> bool {
    use FrameClass::*;
    matches!(
        class,
        RawScienceFrame | ReducedScienceFrame | RegriddedFrame | CoaddedRegriddedFrame
    )
}

/// Wavelength interval of a named broad-band filter, in metres.
pub fn band(filter: &str) -> Option<(f64, f64)> {
    // Half-power points in nanometres. Lower-case names are SDSS-like
    // bands, upper-case ones Johnson-Cousins.
    let nm = match filter.trim() {
        "u" | "u'" | "sdss_u" => (325.0, 385.0),
        "g" | "g'" | "sdss_g" => (405.0, 550.0),
        "r" | "r'" | "sdss_r" => (555.0, 695.0),
        "i" | "i'" | "sdss_i" => (695.0, 845.0),
        "z" | "z'" | "sdss_z" => (825.0, 1000.0),
        "y" | "Y" => (950.0, 1080.0),
        "U" => (330.0, 400.0),
        "B" => (390.0, 490.0),
        "V" => (500.0, 590.0),
        "R" => (570.0, 720.0),
        "I" => (720.0, 880.0),
        _ => return None,
    };
    Some((nm.0 * 1e-9, nm.1 * 1e-9))
}

/// A frame's footprint as a DALI/ObsCore polygon string (`ra dec ra dec …`
/// in degrees), in the stored corner order; readers (astropy regions,
/// Aladin, TOPCAT) accept either winding for regions this small.
pub fn polygon_text(corners: &[(f64, f64)]) -> String {
    corners
        .iter()
        .map(|(r, d)| format!("{r} {d}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Field of view: the largest distance between two corners, in degrees.
pub fn fov(corners: &[(f64, f64)]) -> f64 {
    let mut best: f64 = 0.0;
    for (i, a) in corners.iter().enumerate() {
        for b in &corners[i + 1..] {
            best = best.max(separation(*a, *b));
        }
    }
    best
}

/// The version of the frame → ObsCore mapping that writes the `obscore`
/// table; bump it when [`super::sia::obscore_row`] changes, and
/// [`sync_table`] rewrites every row.
pub const MAPPING_VERSION: i64 = 1;

/// The footprint helpers of the `obscore` table for four corners: dec
/// bounds, corner unit vectors, inward unit edge normals and edge cosines
/// (in [`crate::catalog::tap_query::OBSCORE_COLUMNS`] order, from
/// `dec_min`). `None` for anything but four finite corners of a footprint
/// smaller than a hemisphere.
pub fn footprint_helpers(corners: &[(f64, f64)]) -> Option<Vec<f64>> {
    if corners.len() != 4
        || corners
            .iter()
            .any(|(r, d)| !r.is_finite() || !d.is_finite())
    {
        return None;
    }
    let unit = |(ra, dec): (f64, f64)| {
        let (a, d) = (ra.to_radians(), dec.to_radians());
        [d.cos() * a.cos(), d.cos() * a.sin(), d.sin()]
    };
    let dot = |a: [f64; 3], b: [f64; 3]| a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
    let c: Vec<[f64; 3]> = corners.iter().map(|p| unit(*p)).collect();
    let mut m = [0.0; 3];
    for v in &c {
        for k in 0..3 {
            m[k] += v[k];
        }
    }
    let len = dot(m, m).sqrt();
    if len < 1e-12 {
        return None;
    }
    let m = m.map(|x| x / len);
    let mut normals = Vec::with_capacity(4);
    for i in 0..4 {
        let (a, b) = (c[i], c[(i + 1) % 4]);
        let n = [
            a[1] * b[2] - a[2] * b[1],
            a[2] * b[0] - a[0] * b[2],
            a[0] * b[1] - a[1] * b[0],
        ];
        let l = dot(n, n).sqrt();
        if l == 0.0 {
            return None;
        }
        normals.push(n.map(|x| x / l));
    }
    // Inward: the footprint's mean direction is inside.
    let inward: f64 = normals.iter().map(|n| dot(*n, m)).sum();
    if inward < 0.0 {
        for n in &mut normals {
            *n = n.map(|x| -x);
        }
    }
    // Dec bounds from the bounding cone about the mean direction, a
    // superset of the footprint including its edges' bulge.
    let centre_dec = m[2].clamp(-1.0, 1.0).asin().to_degrees();
    let radius = c
        .iter()
        .map(|v| dot(*v, m).clamp(-1.0, 1.0).acos().to_degrees())
        .fold(0.0, f64::max);
    let mut out = vec![
        (centre_dec - radius).max(-90.0) - 1e-9,
        (centre_dec + radius).min(90.0) + 1e-9,
    ];
    for v in &c {
        out.extend(v);
    }
    for n in &normals {
        out.extend(n);
    }
    for i in 0..4 {
        out.push(dot(c[i], c[(i + 1) % 4]));
    }
    Some(out)
}

/// One frame's `obscore` row: the values of
/// [`crate::catalog::tap_query::OBSCORE_COLUMNS`], taken by name from the
/// SIA row ([`super::sia::obscore_row`], so both services give the same
/// values; URLs are written as paths, `/data/ID`, that the TAP service
/// prefixes with its base URL).
pub fn table_row(f: &crate::model::Frame) -> Vec<sea_orm::Value> {
    use crate::catalog::browse::Cell;
    use sea_orm::Value;
    let fields = super::sia::obscore_fields();
    let cells = super::sia::obscore_row(f, "");
    let helpers = ObsRecord::of(f)
        .s_region
        .as_deref()
        .and_then(footprint_helpers);
    let first_helper = crate::catalog::tap_query::OBSCORE_COLUMNS
        .iter()
        .position(|c| *c == "dec_min")
        .unwrap_or(usize::MAX);
    crate::catalog::tap_query::OBSCORE_COLUMNS
        .iter()
        .enumerate()
        .map(|(i, col)| {
            if *col == "mapping_version" {
                return Value::BigInt(Some(MAPPING_VERSION));
            }
            if i >= first_helper {
                return Value::Double(helpers.as_ref().map(|h| h[i - first_helper]));
            }
            let Some(k) = fields.iter().position(|fd| fd.name == *col) else {
                return Value::String(None);
            };
            let text =
                fields[k].xtype.is_some() || fields[k].datatype == super::votable::DataType::Char;
            match (&cells[k], fields[k].datatype, text) {
                (Cell::Null, _, true) => Value::String(None),
                (Cell::Null, super::votable::DataType::Double, _) => Value::Double(None),
                (Cell::Null, _, _) => Value::BigInt(None),
                (Cell::Int(v), _, false) => Value::BigInt(Some(*v)),
                (Cell::Float(v), _, false) => Value::Double(v.is_finite().then_some(*v)),
                (c, _, _) => Value::String(Some(c.display())),
            }
        })
        .collect()
}

/// Brings the `obscore` table in step with the frames: rows for frames
/// that have none (or that an older mapping wrote), no rows for frames
/// that are gone. Cheap when nothing changed (two anti-joins); call it
/// after ingest and at server start.
pub async fn sync_table(
    catalog: &crate::catalog::Catalog,
) -> Result<usize, crate::catalog::CatalogError> {
    let (missing, stale) = catalog.obscore_out_of_date(MAPPING_VERSION).await?;
    catalog.delete_obscore_rows(&stale).await?;
    let mut written = 0;
    for chunk in missing.chunks(1000) {
        let frames = catalog.frames_by_ids(chunk).await?;
        let rows: Vec<(i64, Vec<sea_orm::Value>)> = frames
            .iter()
            .map(|f| (f.target.object_id.0, table_row(f)))
            .collect();
        written += rows.len();
        catalog.insert_obscore_rows(rows).await?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_round_trip_and_reject_junk() {
        assert_eq!(parse_ivoid(&ivoid(ObjectId(42))), Some(ObjectId(42)));
        assert_eq!(parse_ivoid(" 7 "), Some(ObjectId(7)));
        assert_eq!(parse_ivoid("ivo://wisecut/obj?x"), None);
        assert_eq!(parse_ivoid("ivo://other/obj?3"), None);
        assert_eq!(parse_ivoid("-3"), None);
    }

    #[test]
    fn cutout_ids_name_their_frame_and_drop_the_format() {
        let did = cutout_did("frame=12&ra=150.1&dec=2.2&size=20&unit=arcsec&format=png");
        let (frame, q) = parse_cutout_did(&did).unwrap();
        assert_eq!(frame, ObjectId(12));
        assert_eq!(q, "frame=12&ra=150.1&dec=2.2&size=20&unit=arcsec");
        assert!(parse_cutout_did("ivo://wisecut/cutout?ra=1&dec=2").is_none());
        assert!(parse_cutout_did("ivo://wisecut/obj?12").is_none());
    }

    #[test]
    fn bands_are_in_metres_and_ordered() {
        let (lo, hi) = band("r").unwrap();
        assert!(lo < hi && lo > 5e-7 && hi < 7e-7);
        assert!(band("Halpha-narrow").is_none());
    }
}
