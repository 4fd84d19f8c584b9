//! The `source` table: sources keyed by (SLID, SID).

use sea_orm::entity::prelude::*;

/// A source row.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "source")]
pub struct Model {
    /// SLID.
    #[sea_orm(primary_key, auto_increment = false)]
    pub slid: i64,
    /// SID.
    #[sea_orm(primary_key, auto_increment = false)]
    pub sid: i64,
    /// RA (deg).
    pub ra: f64,
    /// Dec (deg).
    pub dec: f64,
    /// X (FITS pixel).
    pub x: f64,
    /// Y (FITS pixel).
    pub y: f64,
    /// Semi-major axis (pixel).
    pub a: f64,
    /// Semi-minor axis (pixel).
    pub b: f64,
    /// Position angle (deg).
    pub theta: f64,
    /// MAG_AUTO.
    pub mag_auto: Option<f64>,
    /// MAGERR_AUTO.
    pub magerr_auto: Option<f64>,
    /// FLUX_AUTO (ADU).
    pub flux_auto: f64,
    /// FWHM (pixel).
    pub fwhm: f64,
    /// CLASS_STAR.
    pub class_star: f64,
    /// FLAGS.
    pub flags: i32,
    /// HEALPix nested index at [`crate::catalog::HPX_DEPTH`].
    pub hpx: i64,
}

/// No navigable relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
