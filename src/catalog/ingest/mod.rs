//! Ingest: FITS files plus a lineage manifest into the catalogue, all or
//! nothing. `wisecut ingest PATH…` without a manifest goes through `batch`
//! (scan the files, infer classes and edges, then the same write path).
//!
//! Everything that can fail on the input (unreadable or corrupt FITS, a
//! missing column, a dependency on an unknown key, a cycle) is checked while
//! *reading*, before the database is touched; the writes then happen in one
//! transaction, so a failed ingest leaves the catalogue exactly as it was.
//!
//! The manifest (`manifest.json`) names each object with a `key` that is local
//! to the manifest and lists its dependencies by role:
//!
//! ```json
//! { "creator": "pipeline", "project": "SURVEY",
//!   "frames": [ { "key": "bias-ccd1", "class": "BiasFrame", "path": "cal/bias1.fits",
//!                 "deps": [ { "role": "raw", "key": "rawbias-1" } ] } ],
//!   "source_lists": [ { "key": "sl-1", "name": "…", "frame": "red-1", "path": "cat/sl1.fits" } ],
//!   "associate_lists": [ { "key": "al-1", "name": "…", "assoc_type": "chain",
//!                          "search_distance": 1.0, "members": ["sl-1", "sl-2"], "path": "cat/al1.fits" } ] }
//! ```
//!
//! A dependency may also point at an object already in the catalogue with
//! `{ "role": "bias", "object_id": 42 }`. Frame attributes (filter, chip, date,
//! WCS, …) come from the FITS header; the manifest may add what headers lack
//! (zeropoint, seeing, validity, calibration time ranges). Source tables use
//! wisecut's column names (`RA`, `DEC`, `X`, `Y`, …) or SExtractor's
//! (`ALPHA_J2000`, `X_IMAGE`, …).

pub mod batch;
pub(crate) mod bulk;
pub mod infer;
pub mod scan;
pub mod tables;

use super::{Catalog, CatalogError, HPX_DEPTH, entity};
use crate::ids::{Alid, ObjectId, Slid};
use crate::imaging::fits::{self, HeaderValue};
use crate::imaging::wcs::{Header, KeywordSource, Section, Wcs, WcsKeywords};
use crate::model::{
    ASSOCIATE_LIST_CLASS, AssocType, FrameClass, SOURCE_LIST_CLASS, privileges, process_status,
};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use rayon::prelude::*;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, TransactionTrait,
    Value, sea_query::Expr,
};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// The manifest file format.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Manifest {
    /// Who made the products.
    #[serde(default = "default_creator")]
    pub creator: String,
    /// The project they belong to.
    #[serde(default = "default_project")]
    pub project: String,
    /// Privilege level for everything ingested.
    #[serde(default = "default_privileges")]
    pub privileges: i32,
    /// Frames.
    #[serde(default)]
    pub frames: Vec<FrameEntry>,
    /// Source lists.
    #[serde(default)]
    pub source_lists: Vec<SourceListEntry>,
    /// Associate lists.
    #[serde(default)]
    pub associate_lists: Vec<AssociateListEntry>,
}

impl Manifest {
    /// Reads and parses a manifest file, JSON or (by its `.toml` ending)
    /// TOML; errors name the file.
    pub fn load(path: &Path) -> Result<Self, CatalogError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CatalogError::Invalid(format!("{}: {e}", path.display())))?;
        let bad = |e: &dyn std::fmt::Display| {
            CatalogError::Invalid(format!("{}: not a valid manifest: {e}", path.display()))
        };
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
        {
            toml::from_str(&text).map_err(|e| bad(&e))
        } else {
            serde_json::from_str(&text).map_err(|e| bad(&e))
        }
    }
}

fn default_creator() -> String {
    "ingest".into()
}
fn default_project() -> String {
    "default".into()
}
fn default_privileges() -> i32 {
    privileges::PUBLIC
}

/// A dependency: by manifest key or by existing object id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DepRef {
    /// Role name of the parent (`raw`, `bias`, …).
    pub role: String,
    /// Manifest key of the parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Object id of a parent already in the catalogue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_id: Option<i64>,
}

impl DepRef {
    /// A dependency on another manifest entry.
    pub fn key(role: &str, key: &str) -> Self {
        Self {
            role: role.into(),
            key: Some(key.into()),
            object_id: None,
        }
    }
}

/// One frame of the manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FrameEntry {
    /// Manifest-local key.
    pub key: String,
    /// Frame class name.
    pub class: String,
    /// File path, relative to the manifest's directory.
    pub path: String,
    /// HDU of the image; by default the first image HDU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hdu: Option<i32>,
    /// Creation date; by default the time of ingest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_date: Option<DateTime<Utc>>,
    /// Validity start (calibration frames).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_start: Option<DateTime<Utc>>,
    /// Validity end (calibration frames).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_end: Option<DateTime<Utc>>,
    /// Photometric zeropoint, overriding the header's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zeropoint: Option<f64>,
    /// Seeing in arcsec, overriding the header's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seeing: Option<f64>,
    /// Validity flag (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_valid: Option<i32>,
    /// Quality flags (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality_flags: Option<i64>,
    /// What it was made from.
    #[serde(default)]
    pub deps: Vec<DepRef>,
    /// The catalogue file name, when not the file's own name (two files of
    /// one name in different directories).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Where the file is recorded (store, path), when decided by the
    /// caller (a named data root, a copy in the store).
    #[serde(skip)]
    pub placement: Option<(String, String)>,
    /// The current product this one replaces, and the name the old one
    /// takes (`name;N`) so the new one can have its name.
    #[serde(skip)]
    pub supersedes: Option<(i64, String)>,
}

impl FrameEntry {
    /// An entry with the given key, class, path and dependencies and nothing
    /// else set: header values and defaults apply.
    pub fn new(key: &str, class: &str, path: &str, deps: Vec<DepRef>) -> Self {
        Self {
            key: key.into(),
            class: class.into(),
            path: path.into(),
            hdu: None,
            creation_date: None,
            timestamp_start: None,
            timestamp_end: None,
            zeropoint: None,
            seeing: None,
            is_valid: None,
            quality_flags: None,
            deps,
            filename: None,
            placement: None,
            supersedes: None,
        }
    }
}

/// One source list of the manifest.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SourceListEntry {
    /// Manifest-local key.
    pub key: String,
    /// Name.
    pub name: String,
    /// Key of the frame it was extracted from (or empty with
    /// `frame_object_id`).
    #[serde(default)]
    pub frame: String,
    /// A frame already in the catalogue it was extracted from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_object_id: Option<i64>,
    /// SExtractor-style column mapping (`RA=ra_deg,DEC=dec_deg`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<String>,
    /// Where the file is recorded (store, path), when decided by the caller.
    #[serde(skip)]
    pub placement: Option<(String, String)>,
    /// The file's SHA-256, when the caller computed it.
    #[serde(skip)]
    pub checksum: Option<String>,
    /// FITS table file, relative to the manifest's directory.
    pub path: String,
    /// HDU of the table; by default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hdu: Option<i32>,
    /// Creation date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_date: Option<DateTime<Utc>>,
}

/// One associate list of the manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssociateListEntry {
    /// Manifest-local key.
    pub key: String,
    /// Name.
    pub name: String,
    /// `chain`, `master` or `matched`.
    pub assoc_type: String,
    /// Search distance in arcsec.
    pub search_distance: f64,
    /// Keys of the member source lists; the table's `MEMBER` column indexes
    /// this list (0-based).
    pub members: Vec<String>,
    /// FITS table with columns `AID`, `MEMBER`, `SID`, `FLAG`.
    pub path: String,
    /// HDU of the table; by default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hdu: Option<i32>,
    /// Creation date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_date: Option<DateTime<Utc>>,
}

/// What an ingest added.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestReport {
    /// Manifest key → new object id.
    pub object_ids: HashMap<String, ObjectId>,
    /// Source-list key → new SLID.
    pub slids: HashMap<String, Slid>,
    /// Associate-list key → new ALID.
    pub alids: HashMap<String, Alid>,
    /// Frames added.
    pub frames: usize,
    /// Sources added.
    pub sources: usize,
    /// Associations rows added.
    pub associations: usize,
    /// Older versions the new products replaced.
    pub superseded: Vec<ObjectId>,
}

/// Chip keywords, in the order pipelines use them: a frame's chip, and what
/// two exposures must share to be the same one.
pub const CHIP_KEYWORDS: &[&str] = &["CHIPID", "CCDNAME", "CCD_NAME", "DETECTOR"];

/// Header keywords kept as free-form frame attributes.
const EXTRA_KEYS: &[&str] = &[
    "TELESCOP", "OBSERVER", "GAIN", "RDNOISE", "SATURATE", "AIRMASS", "BIASSEC", "DATASEC",
    "TRIMSEC", "NCOMBINE", "BUNIT", "SKYLEVEL", "SKYRMS", "OVERSCAN", "PIPELINE", "MJD-END",
    "DATE-END",
];

/// The pixels of a frame that image the sky: its `DATASEC` when that is
/// a section inside the image, else the whole image.
fn data_section(header: &Header, naxis1: usize, naxis2: usize) -> Section {
    header
        .text("DATASEC")
        .and_then(|t| Section::parse(&t))
        .filter(|s| s.within(naxis1, naxis2))
        .unwrap_or(Section {
            x1: 1,
            x2: naxis1,
            y1: 1,
            y2: naxis2,
        })
}

/// A frame read and checked, ready to insert.
struct PreparedFrame {
    entry: FrameEntry,
    class: FrameClass,
    model: entity::frame::Model,
}

struct PreparedSourceList {
    entry: SourceListEntry,
    rows: Vec<entity::source::Model>,
    rel_path: (String, String),
}

struct PreparedAssociateList {
    entry: AssociateListEntry,
    assoc_type: AssocType,
    /// (AID, member index, SID, FLAG)
    rows: Vec<(i64, usize, i64, i32)>,
}

/// Where a file lives: the `local` store (paths relative to the data root)
/// when it is under the data root, else the `file` store (absolute path).
fn store_path(data_root: &Path, file: &Path) -> (String, String) {
    let file = file.canonicalize().unwrap_or_else(|_| file.to_path_buf());
    let root = data_root
        .canonicalize()
        .unwrap_or_else(|_| data_root.to_path_buf());
    match file.strip_prefix(&root) {
        Ok(rel) => ("local".into(), rel.to_string_lossy().into_owned()),
        Err(_) => ("file".into(), file.to_string_lossy().into_owned()),
    }
}

fn sha256_file(path: &Path) -> Result<(String, i64, Option<i64>), CatalogError> {
    let bad = |e: std::io::Error| CatalogError::Invalid(format!("{}: {e}", path.display()));
    let mtime = std::fs::metadata(path).map_err(bad)?.modified().ok();
    let (sum, size) = crate::file_identity::sha256(path).map_err(bad)?;
    Ok((sum, size as i64, crate::file_identity::mtime_ns(mtime)))
}

/// Parses FITS dates: `yyyy-mm-dd`, `yyyy-mm-ddThh:mm:ss[.fff]`.
pub fn parse_fits_date(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// The RA range of a footprint as (min, max), taking the shorter way round the
/// circle: across RA = 0 the result has `min > max`.
pub fn ra_range(ras: &[f64]) -> (f64, f64) {
    let mut v: Vec<f64> = ras.iter().map(|r| r.rem_euclid(360.0)).collect();
    v.sort_by(f64::total_cmp);
    // The footprint's RA span is the circle minus its largest empty gap.
    let mut best = (v[0] + 360.0 - v[v.len() - 1], 0usize);
    for i in 1..v.len() {
        let gap = v[i] - v[i - 1];
        if gap > best.0 {
            best = (gap, i);
        }
    }
    let start = v[best.1];
    let end = v[(best.1 + v.len() - 1) % v.len()];
    (start, end)
}

fn prepare_frame(
    dir: &Path,
    data_root: &Path,
    entry: &FrameEntry,
) -> Result<PreparedFrame, CatalogError> {
    let class = entry
        .class
        .parse::<FrameClass>()
        .map_err(|e| CatalogError::Invalid(format!("frame {}: {e}", entry.key)))?;
    let path = dir.join(&entry.path);
    let fail = |e: &dyn std::fmt::Display| {
        CatalogError::Invalid(format!("{}: cannot ingest: {e}", path.display()))
    };
    let hdu = match entry.hdu {
        Some(h) => usize::try_from(h).map_err(|e| fail(&e))?,
        None => fits::first_image_hdu(&path).map_err(|e| fail(&e))?,
    };
    let info = fits::image_info(&path, hdu).map_err(|e| fail(&e))?;
    // A truncated file keeps an intact header; reading the last row (the
    // last tile of a compressed image) finds it without reading everything.
    if info.height > 0 {
        fits::read_region::<f32>(&path, hdu, 0, info.height - 1, info.width, 1)
            .map_err(|e| fail(&e))?;
    }
    let header = Header::new(&fits::read_header(&path, hdu).map_err(|e| fail(&e))?);
    let (checksum, file_size, file_mtime_ns) = sha256_file(&path)?;
    let wcs = WcsKeywords::from_header(&header).map_err(|e| fail(&e))?;
    let mut geometry = (None, None, None, None, None, None, None, None);
    if let Some(k) = &wcs {
        let w = Wcs::new(k, info.width, info.height).map_err(|e| fail(&e))?;
        // The sky a frame images is its data section: a raw exposure's
        // overscan strip (`BIASSEC`) holds no sky, so a search on it must
        // not find the frame.
        let section = data_section(&header, info.width, info.height);
        let corners = w
            .section_footprint(&section)
            .ok_or_else(|| fail(&"the WCS does not map the image corners to the sky"))?;
        let center = w
            .pix_to_sky(
                (section.x1 + section.x2) as f64 / 2.0,
                (section.y1 + section.y2) as f64 / 2.0,
            )
            .ok_or_else(|| fail(&"the WCS does not map the image centre to the sky"))?;
        let (ra_min, ra_max) = ra_range(&corners.map(|c| c.0));
        let decs = corners.map(|c| c.1);
        geometry = (
            Some(center.0),
            Some(center.1),
            Some(ra_min),
            Some(ra_max),
            Some(decs.iter().copied().fold(f64::INFINITY, f64::min)),
            Some(decs.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
            Some(serde_json::to_string(&corners.to_vec()).map_err(|e| fail(&e))?),
            Some(serde_json::to_string(k).map_err(|e| fail(&e))?),
        );
    }
    let mut extra = serde_json::Map::new();
    for key in EXTRA_KEYS {
        if let Some(v) = header.get(key) {
            let v = match v {
                HeaderValue::Str(s) => serde_json::Value::from(s.trim()),
                HeaderValue::Int(i) => (*i).into(),
                HeaderValue::Float(f) => (*f).into(),
                HeaderValue::Bool(b) => (*b).into(),
            };
            extra.insert((*key).into(), v);
        }
    }
    let filename = match &entry.filename {
        Some(n) => n.clone(),
        None => path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| fail(&"no file name"))?,
    };
    let (store, rel) = entry
        .placement
        .clone()
        .unwrap_or_else(|| store_path(data_root, &path));
    let chip = CHIP_KEYWORDS.iter().find_map(|k| header.text(k));
    let model = entity::frame::Model {
        object_id: 0,
        frame_class: class.name().into(),
        filename,
        store,
        path: rel,
        hdu: hdu as i32,
        checksum,
        file_size,
        file_mtime_ns,
        store_etag: None,
        compressed: info.compressed,
        instrument: header.text("INSTRUME"),
        filter: header.text("FILTER"),
        chip,
        object: header.text("OBJECT"),
        date_obs: header.text("DATE-OBS").as_deref().and_then(parse_fits_date),
        mjd_obs: header.number("MJD-OBS"),
        exptime: header.number("EXPTIME"),
        naxis1: info.width as i32,
        naxis2: info.height as i32,
        bitpix: info.bitpix,
        wcs: geometry.7,
        ra_center: geometry.0,
        dec_center: geometry.1,
        ra_min: geometry.2,
        ra_max: geometry.3,
        dec_min: geometry.4,
        dec_max: geometry.5,
        footprint: geometry.6,
        zeropoint: entry
            .zeropoint
            .or_else(|| header.number("MAGZPT"))
            .or_else(|| header.number("ZEROPNT")),
        seeing: entry.seeing.or_else(|| header.number("SEEING")),
        timestamp_start: entry.timestamp_start,
        timestamp_end: entry.timestamp_end,
        extra: serde_json::Value::Object(extra).to_string(),
    };
    Ok(PreparedFrame {
        entry: entry.clone(),
        class,
        model,
    })
}

fn prepare_source_list(
    dir: &Path,
    data_root: &Path,
    entry: &SourceListEntry,
) -> Result<PreparedSourceList, CatalogError> {
    let path = dir.join(&entry.path);
    let hdu = entry
        .hdu
        .map(|h| {
            usize::try_from(h).map_err(|_| {
                CatalogError::Invalid(format!("{}: HDU {h} is not an HDU index", path.display()))
            })
        })
        .transpose()?;
    let map = match &entry.columns {
        Some(spec) => tables::ColumnMap::parse(spec)
            .map_err(|e| CatalogError::Invalid(format!("{}: {e}", path.display())))?,
        None => tables::ColumnMap::default(),
    };
    let table = tables::read_source_table(&path, hdu, &map)?;
    // The HDU the reader picked (an LDAC file's objects are in HDU 2).
    let mut entry = entry.clone();
    entry.hdu = table.hdu.and_then(|h| i32::try_from(h).ok());
    Ok(PreparedSourceList {
        entry,
        rows: table.rows,
        rel_path: store_path(data_root, &path),
    })
}

/// The HEALPix nested cell of a position at [`HPX_DEPTH`].
pub fn hpx_index(ra_deg: f64, dec_deg: f64) -> i64 {
    cdshealpix::nested::hash(HPX_DEPTH, ra_deg.to_radians(), dec_deg.to_radians()) as i64
}

fn prepare_associate_list(
    dir: &Path,
    entry: &AssociateListEntry,
) -> Result<PreparedAssociateList, CatalogError> {
    let path = dir.join(&entry.path);
    let assoc_type = AssocType::parse(&entry.assoc_type).ok_or_else(|| {
        CatalogError::Invalid(format!(
            "associate list {}: type {:?} is not one of chain, master, matched",
            entry.key, entry.assoc_type
        ))
    })?;
    let hdu = entry.hdu.unwrap_or(1) as usize;
    let read = |name: &str| {
        fits::read_column_i64(&path, hdu, name)
            .map_err(|e| CatalogError::Invalid(format!("{}: column {name}: {e}", path.display())))
    };
    let (aid, member, sid, flag) = (read("AID")?, read("MEMBER")?, read("SID")?, read("FLAG")?);
    let mut rows = Vec::with_capacity(aid.len());
    for i in 0..aid.len() {
        let m = usize::try_from(member[i])
            .ok()
            .filter(|m| *m < entry.members.len())
            .ok_or_else(|| {
                CatalogError::Invalid(format!(
                    "{}: row {} has MEMBER {} but the list has {} members",
                    path.display(),
                    i + 1,
                    member[i],
                    entry.members.len()
                ))
            })?;
        rows.push((aid[i], m, sid[i], flag[i] as i32));
    }
    Ok(PreparedAssociateList {
        entry: entry.clone(),
        assoc_type,
        rows,
    })
}

/// Checks keys are unique, references resolve and the graph has no cycle.
fn check_graph(m: &Manifest) -> Result<(), CatalogError> {
    let mut keys = HashSet::new();
    let all_keys = m
        .frames
        .iter()
        .map(|f| &f.key)
        .chain(m.source_lists.iter().map(|s| &s.key))
        .chain(m.associate_lists.iter().map(|a| &a.key));
    for k in all_keys {
        if !keys.insert(k.as_str()) {
            return Err(CatalogError::Invalid(format!(
                "manifest key {k:?} is used twice"
            )));
        }
    }
    let frame_keys: HashSet<&str> = m.frames.iter().map(|f| f.key.as_str()).collect();
    let sl_keys: HashSet<&str> = m.source_lists.iter().map(|s| s.key.as_str()).collect();
    let mut parents: HashMap<&str, Vec<&str>> = HashMap::new();
    for f in &m.frames {
        for d in &f.deps {
            match (&d.key, d.object_id) {
                (Some(k), None) if keys.contains(k.as_str()) => {
                    parents.entry(&f.key).or_default().push(k)
                }
                (None, Some(_)) => {}
                _ => {
                    return Err(CatalogError::Invalid(format!(
                        "frame {}: dependency {:?} must name exactly one known key or object_id",
                        f.key, d
                    )));
                }
            }
        }
    }
    for s in &m.source_lists {
        if s.frame.is_empty() && s.frame_object_id.is_some() {
            continue;
        }
        parents.entry(&s.key).or_default().push(&s.frame);
        if !frame_keys.contains(s.frame.as_str()) {
            return Err(CatalogError::Invalid(format!(
                "source list {}: frame {:?} is not in the manifest",
                s.key, s.frame
            )));
        }
    }
    for a in &m.associate_lists {
        parents
            .entry(&a.key)
            .or_default()
            .extend(a.members.iter().map(String::as_str));
        if let Some(bad) = a.members.iter().find(|k| !sl_keys.contains(k.as_str())) {
            return Err(CatalogError::Invalid(format!(
                "associate list {}: member {bad:?} is not a source list of the manifest",
                a.key
            )));
        }
    }
    // Depth-first search for a cycle among frame dependencies.
    let mut state: HashMap<&str, u8> = HashMap::new();
    fn visit<'a>(
        k: &'a str,
        parents: &HashMap<&'a str, Vec<&'a str>>,
        state: &mut HashMap<&'a str, u8>,
    ) -> Result<(), CatalogError> {
        match state.get(k) {
            Some(1) => {
                return Err(CatalogError::Invalid(format!(
                    "dependency cycle through {k:?}"
                )));
            }
            Some(2) => return Ok(()),
            _ => {}
        }
        state.insert(k, 1);
        for p in parents.get(k).map(Vec::as_slice).unwrap_or(&[]) {
            visit(p, parents, state)?;
        }
        state.insert(k, 2);
        Ok(())
    }
    let keys: Vec<&str> = parents.keys().copied().collect();
    for k in keys {
        visit(k, &parents, &mut state)?;
    }
    Ok(())
}

/// Rows per multi-row INSERT: SQLite allows 32,766 bound values per
/// statement, and a source row has 16.
const INSERT_CHUNK: usize = 1000;

impl Catalog {
    /// Ingests the manifest at `manifest_path` (files relative to its
    /// directory); `data_root` is the local store's root. Nothing is written
    /// unless everything is readable.
    pub async fn ingest(
        &self,
        manifest_path: &Path,
        data_root: &Path,
    ) -> Result<IngestReport, CatalogError> {
        let manifest = Manifest::load(manifest_path)?;
        let dir = manifest_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        self.ingest_manifest(&manifest, &dir, data_root).await
    }

    /// Ingests an in-memory manifest whose paths are relative to `dir`.
    pub async fn ingest_manifest(
        &self,
        m: &Manifest,
        dir: &Path,
        data_root: &Path,
    ) -> Result<IngestReport, CatalogError> {
        check_graph(m)?;
        // Reading and checksumming is the slow, fallible part: do it all, in
        // parallel and off the async runtime, before any write.
        let (dir2, root2, m2) = (dir.to_path_buf(), data_root.to_path_buf(), m.clone());
        let (frames, lists, assocs) = tokio::task::spawn_blocking(move || {
            let frames = m2
                .frames
                .par_iter()
                .map(|f| prepare_frame(&dir2, &root2, f))
                .collect::<Result<Vec<_>, _>>()?;
            let lists = m2
                .source_lists
                .par_iter()
                .map(|s| prepare_source_list(&dir2, &root2, s))
                .collect::<Result<Vec<_>, _>>()?;
            let assocs = m2
                .associate_lists
                .par_iter()
                .map(|a| prepare_associate_list(&dir2, a))
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, CatalogError>((frames, lists, assocs))
        })
        .await
        .map_err(|e| CatalogError::Invalid(format!("ingest worker failed: {e}")))??;
        self.write_ingest(m, frames, lists, assocs).await
    }

    async fn write_ingest(
        &self,
        m: &Manifest,
        frames: Vec<PreparedFrame>,
        lists: Vec<PreparedSourceList>,
        assocs: Vec<PreparedAssociateList>,
    ) -> Result<IngestReport, CatalogError> {
        let now = Utc::now();
        let txn = self.db().begin().await?;
        let b = txn.get_database_backend();
        let mut report = IngestReport::default();
        let new_target = |class: &str,
                          created: Option<DateTime<Utc>>,
                          valid: Option<i32>,
                          flags: Option<i64>| {
            entity::process_target::ActiveModel {
                class_name: Set(class.to_owned()),
                creation_date: Set(created.unwrap_or(now)),
                is_valid: Set(valid.unwrap_or(1)),
                quality_flags: Set(flags.unwrap_or(0)),
                process_status: Set(process_status::COMPLETED),
                creator: Set(m.creator.clone()),
                project: Set(m.project.clone()),
                privileges: Set(m.privileges),
                ..Default::default()
            }
        };
        let mut deps: Vec<entity::dependency::Model> = Vec::new();
        let mut frame_rows = Vec::with_capacity(frames.len());
        for pf in frames {
            let e = &pf.entry;
            if let Some((old, old_name)) = &e.supersedes {
                // The old version gives up its name first: file names are
                // unique, and the newest version answers to the name.
                entity::frame::Entity::update_many()
                    .col_expr(
                        entity::frame::Column::Filename,
                        Expr::value(old_name.clone()),
                    )
                    .filter(entity::frame::Column::ObjectId.eq(*old))
                    .exec(&txn)
                    .await?;
            }
            let res = entity::process_target::Entity::insert(new_target(
                pf.class.name(),
                e.creation_date,
                e.is_valid,
                e.quality_flags,
            ))
            .exec(&txn)
            .await?;
            let id = res.last_insert_id;
            if let Some((old, _)) = &e.supersedes {
                entity::process_target::Entity::update_many()
                    .col_expr(
                        entity::process_target::Column::SupersededBy,
                        Expr::value(id),
                    )
                    .filter(entity::process_target::Column::ObjectId.eq(*old))
                    .exec(&txn)
                    .await?;
                report.superseded.push(ObjectId(*old));
            }
            report.object_ids.insert(e.key.clone(), ObjectId(id));
            let mut model = pf.model;
            model.object_id = id;
            frame_rows.push(model);
        }
        report.frames = frame_rows.len();
        for chunk in frame_rows.chunks(200) {
            entity::frame::Entity::insert_many(
                chunk.iter().cloned().map(entity::frame::ActiveModel::from),
            )
            .exec(&txn)
            .await?;
        }
        // The sky index, in the same transaction: a frame is never visible
        // to queries by id without being findable by position.
        let footprints: Vec<(i64, Vec<(f64, f64)>)> = frame_rows
            .iter()
            .filter_map(|f| {
                let corners = serde_json::from_str(f.footprint.as_deref()?).ok()?;
                Some((f.object_id, corners))
            })
            .collect();
        Catalog::index_frames(&txn, &footprints).await?;
        if !frame_rows.is_empty() {
            Catalog::bump_state(&txn, "frames").await?;
        }

        let mut slid = Catalog::max_id(&txn, "source_list", "slid").await?;
        for pl in lists {
            let e = &pl.entry;
            let frame_id = match e.frame_object_id {
                Some(id) if e.frame.is_empty() => id,
                _ => report.object_ids[&e.frame].0,
            };
            let frame = match frame_rows.iter().find(|f| f.object_id == frame_id) {
                Some(f) => f.clone(),
                None => entity::frame::Entity::find_by_id(frame_id)
                    .one(&txn)
                    .await?
                    .ok_or_else(|| {
                        CatalogError::Invalid(format!(
                            "source list {}: frame #{frame_id} does not exist",
                            e.key
                        ))
                    })?,
            };
            let placement = e.placement.clone().unwrap_or_else(|| pl.rel_path.clone());
            let id = entity::process_target::Entity::insert(new_target(
                SOURCE_LIST_CLASS,
                e.creation_date,
                None,
                None,
            ))
            .exec(&txn)
            .await?
            .last_insert_id;
            slid += 1;
            report.object_ids.insert(e.key.clone(), ObjectId(id));
            report.slids.insert(e.key.clone(), Slid(slid));
            entity::source_list::Entity::insert(entity::source_list::ActiveModel::from(
                entity::source_list::Model {
                    object_id: id,
                    slid,
                    name: e.name.clone(),
                    frame_id: Some(frame_id),
                    filter: frame.filter.clone(),
                    chip: frame.chip.clone(),
                    n_sources: pl.rows.len() as i64,
                    store: Some(placement.0),
                    path: Some(placement.1),
                    hdu: Some(e.hdu.unwrap_or(1)),
                    checksum: e.checksum.clone(),
                },
            ))
            .exec(&txn)
            .await?;
            deps.push(entity::dependency::Model {
                child_id: id,
                parent_id: frame_id,
                role: "frame".into(),
                ordinal: 0,
            });
            report.sources += pl.rows.len();
            let mut rows = pl.rows;
            let size = |n: i32| usize::try_from(n).unwrap_or(0);
            tables::fill_pixel_positions(
                &mut rows,
                frame.wcs.as_deref(),
                size(frame.naxis1),
                size(frame.naxis2),
            );
            bulk::insert_sources(&txn, slid, &rows).await?;
        }

        let mut alid = Catalog::max_id(&txn, "associate_list", "alid").await?;
        for pa in assocs {
            let e = &pa.entry;
            let id = entity::process_target::Entity::insert(new_target(
                ASSOCIATE_LIST_CLASS,
                e.creation_date,
                None,
                None,
            ))
            .exec(&txn)
            .await?
            .last_insert_id;
            alid += 1;
            report.object_ids.insert(e.key.clone(), ObjectId(id));
            report.alids.insert(e.key.clone(), Alid(alid));
            let n_assoc = pa.rows.iter().map(|r| r.0).collect::<HashSet<_>>().len();
            entity::associate_list::Entity::insert(entity::associate_list::ActiveModel::from(
                entity::associate_list::Model {
                    object_id: id,
                    alid,
                    name: e.name.clone(),
                    assoc_type: pa.assoc_type.name().into(),
                    search_distance: e.search_distance,
                    n_associations: n_assoc as i64,
                    n_members: e.members.len() as i32,
                },
            ))
            .exec(&txn)
            .await?;
            for (i, k) in e.members.iter().enumerate() {
                deps.push(entity::dependency::Model {
                    child_id: id,
                    parent_id: report.object_ids[k].0,
                    role: "sourcelist".into(),
                    ordinal: i as i32,
                });
            }
            let member_slids: Vec<i64> = e.members.iter().map(|k| report.slids[k].0).collect();
            report.associations += pa.rows.len();
            let rows: Vec<entity::association::Model> = pa
                .rows
                .iter()
                .map(|&(aid, m, sid, flag)| entity::association::Model {
                    alid,
                    aid,
                    slid: member_slids[m],
                    sid,
                    flag,
                })
                .collect();
            bulk::insert_associations(&txn, &rows).await?;
        }

        // Frame dependencies last: a frame may depend on a source list (an
        // illumination correction on photometric catalogs).
        let mut existing = HashSet::new();
        for f in &m.frames {
            let child = report.object_ids[&f.key].0;
            let mut ordinals: HashMap<&str, i32> = HashMap::new();
            for d in &f.deps {
                let parent = match (&d.key, d.object_id) {
                    (Some(k), _) => report.object_ids[k].0,
                    (None, Some(id)) => {
                        existing.insert(id);
                        id
                    }
                    (None, None) => unreachable!("checked by check_graph"),
                };
                let o = ordinals.entry(&d.role).or_default();
                deps.push(entity::dependency::Model {
                    child_id: child,
                    parent_id: parent,
                    role: d.role.clone(),
                    ordinal: *o,
                });
                *o += 1;
            }
        }
        for id in existing {
            if entity::process_target::Entity::find_by_id(id)
                .one(&txn)
                .await?
                .is_none()
            {
                return Err(CatalogError::Invalid(format!(
                    "a dependency names object_id {id}, which does not exist"
                )));
            }
        }
        for chunk in deps.chunks(INSERT_CHUNK) {
            entity::dependency::Entity::insert_many(
                chunk
                    .iter()
                    .cloned()
                    .map(entity::dependency::ActiveModel::from),
            )
            .exec(&txn)
            .await?;
        }
        // An association naming a source that is not in its list would pass
        // on SQLite without foreign-key enforcement; check it explicitly.
        let dangling = txn
            .query_one_raw(Catalog::stmt(
                b,
                "SELECT COUNT(*) AS n FROM association a LEFT JOIN source s \
                 ON s.slid = a.slid AND s.sid = a.sid WHERE s.sid IS NULL",
                Vec::<Value>::new(),
            ))
            .await?
            .map(|r| r.try_get::<i64>("", "n"))
            .transpose()?
            .unwrap_or(0);
        if dangling > 0 {
            return Err(CatalogError::Invalid(format!(
                "{dangling} association rows name sources that do not exist"
            )));
        }
        txn.commit().await?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ra_range_takes_the_short_way_round() {
        assert_eq!(ra_range(&[10.0, 12.0, 11.0, 10.5]), (10.0, 12.0));
        let (lo, hi) = ra_range(&[359.5, 0.5, 0.2, 359.9]);
        assert_eq!((lo, hi), (359.5, 0.5));
    }

    #[test]
    fn fits_dates_parse_with_and_without_time() {
        let t = parse_fits_date("2026-03-14T02:13:07.5").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-03-14T02:13:07.500+00:00");
        assert!(parse_fits_date("2026-03-14").is_some());
        assert!(parse_fits_date("14/03/26").is_none());
    }

    #[test]
    fn cycles_and_unknown_keys_are_refused() {
        let frame = |key: &str, deps: Vec<DepRef>| {
            FrameEntry::new(key, "BiasFrame", &format!("{key}.fits"), deps)
        };
        let cyclic = Manifest {
            frames: vec![
                frame("a", vec![DepRef::key("raw", "b")]),
                frame("b", vec![DepRef::key("raw", "a")]),
            ],
            ..Default::default()
        };
        let err = check_graph(&cyclic).unwrap_err().to_string();
        assert!(err.contains("cycle"), "{err}");
        let unknown = Manifest {
            frames: vec![frame("a", vec![DepRef::key("raw", "zz")])],
            ..Default::default()
        };
        assert!(
            check_graph(&unknown)
                .unwrap_err()
                .to_string()
                .contains("known key")
        );
        let dup = Manifest {
            frames: vec![frame("a", vec![]), frame("a", vec![])],
            ..Default::default()
        };
        assert!(check_graph(&dup).unwrap_err().to_string().contains("twice"));
    }
}
