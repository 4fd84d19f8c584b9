//! Domain types of the data model, independent of how they are stored.
//!
//! The catalogue layer converts database rows into these; everything above it
//! (services, web, CLI) speaks only these types.

use crate::ids::{Alid, ObjectId, Slid};
use crate::imaging::wcs::WcsKeywords;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The frame classes of the pipeline, with Astro-WISE's names.
///
/// Besides the ten product classes, the raw calibration exposures have classes
/// of their own (as in Astro-WISE), so that a bias frame's lineage leads to
/// real bias exposures rather than to "science" frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FrameClass {
    /// A raw bias exposure.
    RawBiasFrame,
    /// A raw dome-flat exposure.
    RawDomeFlatFrame,
    /// A raw science exposure of one CCD, overscan included.
    RawScienceFrame,
    /// A master bias made from raw bias exposures.
    BiasFrame,
    /// A map of hot pixels derived from a master bias.
    HotPixelMap,
    /// A master flat made from raw flats.
    MasterFlatFrame,
    /// A map of cold pixels derived from a master flat.
    ColdPixelMap,
    /// A fringe frame made from reddest-band science exposures.
    FringeFrame,
    /// An illumination correction derived from photometric catalogs.
    IlluminationCorrection,
    /// A de-biased, flat-fielded, de-fringed, trimmed and masked frame.
    ReducedScienceFrame,
    /// A reduced frame resampled onto a common sky grid.
    RegriddedFrame,
    /// A coadd of regridded frames.
    CoaddedRegriddedFrame,
}

impl FrameClass {
    /// Every class, in pipeline order (raw first, coadd last).
    pub const ALL: [FrameClass; 12] = [
        FrameClass::RawBiasFrame,
        FrameClass::RawDomeFlatFrame,
        FrameClass::RawScienceFrame,
        FrameClass::BiasFrame,
        FrameClass::HotPixelMap,
        FrameClass::MasterFlatFrame,
        FrameClass::ColdPixelMap,
        FrameClass::FringeFrame,
        FrameClass::IlluminationCorrection,
        FrameClass::ReducedScienceFrame,
        FrameClass::RegriddedFrame,
        FrameClass::CoaddedRegriddedFrame,
    ];

    /// The class name as stored and shown (`BiasFrame`, …).
    pub fn name(self) -> &'static str {
        match self {
            FrameClass::RawBiasFrame => "RawBiasFrame",
            FrameClass::RawDomeFlatFrame => "RawDomeFlatFrame",
            FrameClass::RawScienceFrame => "RawScienceFrame",
            FrameClass::BiasFrame => "BiasFrame",
            FrameClass::HotPixelMap => "HotPixelMap",
            FrameClass::MasterFlatFrame => "MasterFlatFrame",
            FrameClass::ColdPixelMap => "ColdPixelMap",
            FrameClass::FringeFrame => "FringeFrame",
            FrameClass::IlluminationCorrection => "IlluminationCorrection",
            FrameClass::ReducedScienceFrame => "ReducedScienceFrame",
            FrameClass::RegriddedFrame => "RegriddedFrame",
            FrameClass::CoaddedRegriddedFrame => "CoaddedRegriddedFrame",
        }
    }

    /// The short label used for dependency roles and GIF captions.
    pub fn short(self) -> &'static str {
        match self {
            FrameClass::RawBiasFrame => "rawbias",
            FrameClass::RawDomeFlatFrame => "rawflat",
            FrameClass::RawScienceFrame => "raw",
            FrameClass::BiasFrame => "bias",
            FrameClass::HotPixelMap => "hot",
            FrameClass::MasterFlatFrame => "flat",
            FrameClass::ColdPixelMap => "cold",
            FrameClass::FringeFrame => "fringe",
            FrameClass::IlluminationCorrection => "illumination",
            FrameClass::ReducedScienceFrame => "reduced",
            FrameClass::RegriddedFrame => "regridded",
            FrameClass::CoaddedRegriddedFrame => "coadd",
        }
    }

    /// Calibration frames live in detector coordinates and have no sky WCS; a
    /// source falls on them at its detector pixel position on the same chip.
    pub fn is_calibration(self) -> bool {
        matches!(
            self,
            FrameClass::RawBiasFrame
                | FrameClass::RawDomeFlatFrame
                | FrameClass::BiasFrame
                | FrameClass::HotPixelMap
                | FrameClass::MasterFlatFrame
                | FrameClass::ColdPixelMap
                | FrameClass::FringeFrame
                | FrameClass::IlluminationCorrection
        )
    }
}

/// A name that is not a frame class; its message lists the allowed names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{:?} is not a frame class; allowed: {} (or the short names {})",
    crate::params::shown(.0),
    FrameClass::ALL.map(FrameClass::name).join(", "),
    FrameClass::ALL.map(FrameClass::short).join(", ")
)]
pub struct UnknownFrameClass(pub String);

/// A class name (`BiasFrame`) or short name (`bias`), case-insensitively:
/// the one parser of class names for URLs, forms, CSV and VO parameters.
impl std::str::FromStr for FrameClass {
    type Err = UnknownFrameClass;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        FrameClass::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(t) || c.short().eq_ignore_ascii_case(t))
            .ok_or_else(|| UnknownFrameClass(t.to_owned()))
    }
}

impl fmt::Display for FrameClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The class names of process targets that are not frames.
pub const SOURCE_LIST_CLASS: &str = "SourceList";
/// The class name of associate lists.
pub const ASSOCIATE_LIST_CLASS: &str = "AssociateList";

/// Who may see an object, with Astro-WISE's privilege levels.
pub mod privileges {
    /// Only the creator.
    pub const PRIVATE: i32 = 1;
    /// The creator's project.
    pub const PROJECT: i32 = 2;
    /// Everybody.
    pub const PUBLIC: i32 = 5;
}

/// `process_status` values.
pub mod process_status {
    /// The object was made and its files are complete.
    pub const COMPLETED: i32 = 1;
    /// Making the object failed.
    pub const FAILED: i32 = 2;
}

/// The attributes every process target has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessTarget {
    /// Global identifier.
    pub object_id: ObjectId,
    /// Class name (`BiasFrame`, `SourceList`, …).
    pub class_name: String,
    /// When the object was made.
    pub creation_date: DateTime<Utc>,
    /// Manual validity super-flag: 0 means "do not use".
    pub is_valid: i32,
    /// Automatic quality bitmask: 0 means no problem found.
    pub quality_flags: i64,
    /// See [`process_status`].
    pub process_status: i32,
    /// Who made it.
    pub creator: String,
    /// The project it belongs to.
    pub project: String,
    /// See [`privileges`].
    pub privileges: i32,
    /// The newer version of the same product that replaced this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<ObjectId>,
}

/// A frame with its file location, metadata and sky geometry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    /// The process-target part.
    pub target: ProcessTarget,
    /// The class.
    pub class: FrameClass,
    /// Unique file name.
    pub filename: String,
    /// Name of the data store holding the file: `local` (the server's data
    /// directory), `file` (an absolute path) or a named data root.
    pub store: String,
    /// The directory of the named data root `store`, resolved by the
    /// catalogue when the frame is read.
    #[serde(skip)]
    pub root_dir: Option<std::path::PathBuf>,
    /// Path relative to the store's root.
    pub path: String,
    /// HDU index of the image (0 = primary; 1 for tile-compressed files).
    pub hdu: i32,
    /// SHA-256 of the file.
    pub checksum: String,
    /// File size in bytes.
    pub file_size: i64,
    /// The file's modification time at ingest (ns since 1970), when known.
    pub file_mtime_ns: Option<i64>,
    /// The ETag of the file's object in its remote store once `wisecut
    /// root verify` found the ingest SHA-256 in it; a server refuses the
    /// object when the store names another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_etag: Option<String>,
    /// Whether the image is tile-compressed.
    pub compressed: bool,
    /// `INSTRUME`.
    pub instrument: Option<String>,
    /// `FILTER`.
    pub filter: Option<String>,
    /// CCD name (`CHIPID`/`CCDNAME`).
    pub chip: Option<String>,
    /// `OBJECT`.
    pub object: Option<String>,
    /// `DATE-OBS`.
    pub date_obs: Option<DateTime<Utc>>,
    /// `MJD-OBS`.
    pub mjd_obs: Option<f64>,
    /// `EXPTIME` in seconds.
    pub exptime: Option<f64>,
    /// `NAXIS1`.
    pub naxis1: i32,
    /// `NAXIS2`.
    pub naxis2: i32,
    /// `BITPIX` of the (uncompressed) image.
    pub bitpix: i32,
    /// The celestial WCS, for frames on the sky.
    pub wcs: Option<WcsKeywords>,
    /// Sky position of the image centre.
    pub center: Option<(f64, f64)>,
    /// Sky positions of the four corners.
    pub footprint: Option<Vec<(f64, f64)>>,
    /// Photometric zeropoint (mag for 1 ADU/s), where known.
    pub zeropoint: Option<f64>,
    /// Seeing FWHM in arcsec, where measured.
    pub seeing: Option<f64>,
    /// Start of a calibration frame's validity.
    pub timestamp_start: Option<DateTime<Utc>>,
    /// End of a calibration frame's validity.
    pub timestamp_end: Option<DateTime<Utc>>,
    /// Further header attributes (GAIN, RDNOISE, …).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Frame {
    /// Where the frame's file is: relative to the data directory for the
    /// `local` store, relative to its named data root for a root's store,
    /// an absolute path for the `file` store.
    pub fn file_path(&self, data_root: &std::path::Path) -> std::path::PathBuf {
        match (&self.root_dir, self.store.as_str()) {
            (_, "local") => data_root.join(&self.path),
            (Some(root), _) => root.join(&self.path),
            _ => std::path::PathBuf::from(&self.path),
        }
    }
}

/// A SourceList: a catalog extracted from one frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceListInfo {
    /// The process-target part.
    pub target: ProcessTarget,
    /// Its SLID.
    pub slid: Slid,
    /// Name.
    pub name: String,
    /// The frame it was extracted from.
    pub frame_id: Option<ObjectId>,
    /// Filter of that frame.
    pub filter: Option<String>,
    /// Chip of that frame.
    pub chip: Option<String>,
    /// Number of sources.
    pub n_sources: i64,
}

/// How the source lists of an AssociateList were matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AssocType {
    /// Each list matched to the next; associations may miss some lists.
    Chain,
    /// Every list matched against the first (master) list.
    Master,
    /// Only associations with a member in every list.
    Matched,
}

impl AssocType {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            AssocType::Chain => "chain",
            AssocType::Master => "master",
            AssocType::Matched => "matched",
        }
    }
    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "chain" => Some(AssocType::Chain),
            "master" => Some(AssocType::Master),
            "matched" => Some(AssocType::Matched),
            _ => None,
        }
    }
}

/// An AssociateList.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssociateListInfo {
    /// The process-target part.
    pub target: ProcessTarget,
    /// Its ALID.
    pub alid: Alid,
    /// Name.
    pub name: String,
    /// Association type.
    pub assoc_type: AssocType,
    /// Search distance in arcsec.
    pub search_distance: f64,
    /// Number of associations.
    pub n_associations: i64,
    /// Number of member source lists.
    pub n_members: i32,
}
