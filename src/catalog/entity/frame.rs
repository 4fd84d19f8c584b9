//! The `frame` table: one row per FITS image of any frame class.

use sea_orm::entity::prelude::*;

/// A frame row.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "frame")]
pub struct Model {
    /// The frame's process-target id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub object_id: i64,
    /// Frame class name.
    pub frame_class: String,
    /// Unique file name.
    pub filename: String,
    /// Data store name.
    pub store: String,
    /// Path relative to the store root.
    pub path: String,
    /// HDU index of the image.
    pub hdu: i32,
    /// SHA-256 of the file.
    pub checksum: String,
    /// File size in bytes.
    pub file_size: i64,
    /// The file's modification time at ingest, in ns since 1970.
    pub file_mtime_ns: Option<i64>,
    /// The ETag of the file's object in its remote store, recorded by
    /// `wisecut root verify` after it found the ingest SHA-256.
    #[sea_orm(column_type = "Text", nullable)]
    pub store_etag: Option<String>,
    /// Tile-compressed image.
    pub compressed: bool,
    /// INSTRUME.
    pub instrument: Option<String>,
    /// FILTER.
    pub filter: Option<String>,
    /// Chip name.
    pub chip: Option<String>,
    /// OBJECT.
    pub object: Option<String>,
    /// DATE-OBS.
    pub date_obs: Option<DateTimeUtc>,
    /// MJD-OBS.
    pub mjd_obs: Option<f64>,
    /// EXPTIME.
    pub exptime: Option<f64>,
    /// NAXIS1.
    pub naxis1: i32,
    /// NAXIS2.
    pub naxis2: i32,
    /// BITPIX.
    pub bitpix: i32,
    /// WCS keywords as JSON.
    #[sea_orm(column_type = "Text", nullable)]
    pub wcs: Option<String>,
    /// Centre RA.
    pub ra_center: Option<f64>,
    /// Centre Dec.
    pub dec_center: Option<f64>,
    /// Smallest RA of the footprint (may exceed `ra_max` across RA = 0).
    pub ra_min: Option<f64>,
    /// Largest RA of the footprint.
    pub ra_max: Option<f64>,
    /// Smallest Dec of the footprint.
    pub dec_min: Option<f64>,
    /// Largest Dec of the footprint.
    pub dec_max: Option<f64>,
    /// Corner positions as JSON.
    #[sea_orm(column_type = "Text", nullable)]
    pub footprint: Option<String>,
    /// Zeropoint.
    pub zeropoint: Option<f64>,
    /// Seeing in arcsec.
    pub seeing: Option<f64>,
    /// Validity start of calibration frames.
    pub timestamp_start: Option<DateTimeUtc>,
    /// Validity end of calibration frames.
    pub timestamp_end: Option<DateTimeUtc>,
    /// Further attributes as a JSON object.
    #[sea_orm(column_type = "Text")]
    pub extra: String,
}

/// No navigable relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
