//! Sky coverage of survey frames as IVOA MOCs (Multi-Order Coverage maps).
//!
//! A MOC (IVOA MOC 2.0, spatial "S-MOC") describes a region of the sky as a
//! set of HEALPix cells of mixed sizes in the NESTED scheme, ICRS frame. It is
//! the format Aladin, Aladin Lite, TOPCAT, mocpy and the CDS services exchange
//! to say "this survey covers that much of the sky", and it makes
//! "which parts of my region does wisecut have data for?" a set operation.
//!
//! # Design
//!
//! * **One polygon per frame.** wisecut stores for each frame the RA/Dec of
//!   its four pixel corners, computed from the frame's WCS at the outer pixel
//!   edges ((0.5, 0.5), (n1+0.5, 0.5), (n1+0.5, n2+0.5), (0.5, n2+0.5)).
//!   The footprint is the spherical quadrilateral whose edges are the great
//!   circles through consecutive corners. For a TAN (gnomonic) WCS this is
//!   exact, because the gnomonic projection maps straight lines of the
//!   tangent plane onto great circles; distortion terms (SIP, TPV) bend the
//!   real edges by a few pixels at most, far below the cell size at
//!   [`DEFAULT_DEPTH`].
//! * **The CDS `moc` crate does the geometry.** `RangeMOC::from_polygon`
//!   (backed by `cdshealpix`) computes the exact set of cells a polygon
//!   overlaps, works on the unit sphere (so RA wrapping at 0/360 is a
//!   non-issue) and decides which side of the polygon is "inside" from the
//!   vertices alone: a polygon that circles a pole contains the pole on the
//!   side its vertices lean towards, otherwise the inside is the small side.
//!   Frames are at most a few degrees across, so this default is always
//!   right for them. It is the same code mocpy runs, which is what lets the
//!   peer check in `tests/peer/check_moc.py` expect identical MOCs.
//! * **Cells that touch the frame are kept** (`CellSelection::All`), so the
//!   MOC is a superset of the frame: a position inside the frame is always
//!   inside the MOC, never the other way round. A footprint is used to find
//!   candidate frames for a position; a false positive costs one WCS check,
//!   a false negative loses data.
//! * **Frames whose corners are unusable are skipped, not fatal.** A NaN
//!   corner (WCS failed to invert, or was never computed), a declination
//!   beyond the poles, coincident or out-of-order corners, or a "frame"
//!   larger than [`MAX_FRAME_EXTENT_DEG`] (a broken WCS, e.g. CDELT in the
//!   wrong unit) would either trip the geometry's assertions (the crate
//!   asserts on NaN and |Dec| > 90°) or paint a wrong area. One bad frame must not hide the coverage of the others, so
//!   it is counted in [`Coverage::skipped`] for the caller to report.
//! * **Unions are balanced.** Many frame MOCs are merged four at a time
//!   (the crate's `kway_or`), lazily, so the cost is
//!   O(total cells × log(frames)) and only O(log frames) MOCs are alive at
//!   once, instead of the quadratic cost of folding one growing MOC.
//! * **Serialisation is the crate's own.** FITS is written in the NUNIQ
//!   ordering with both the MOC 2.0 keywords (`MOCVERS`, `MOCDIM`,
//!   `ORDERING`, `COORDSYS`, `MOCORD_S`) and the MOC 1.x `MOCORDER`, so that
//!   readers that know only MOC 1.x (NUNIQ plus `MOCORDER`) read it too.
//!   JSON is the Aladin/mocpy form `{"order": [ipix, ...], ...}`. Both were
//!   checked to load unchanged in mocpy 0.21 and Aladin Desktop 12.
//! * **Cost.** Computing a frame's cells dominates: about 1 ms for a
//!   half-degree frame at [`DEFAULT_DEPTH`] (10 000 such frames took
//!   10–17 s on the shared 2-core machine, unoptimised build); the unions
//!   and serialisation are small next to it. Build coverages at ingest or
//!   cache them rather than per request.
//!
//! # Depth
//!
//! A HEALPix cell at depth `d` is about 58.6° / 2^d across:
//!
//! | depth | cell size | MOC area / frame area, 0.1° frame | 1° frame | cells, 1° frame |
//! |------:|----------:|----------------------------------:|---------:|----------------:|
//! |    12 |     51.5″ |                              1.35 |    1.039 |             340 |
//! |    13 |     25.8″ |                              1.18 |    1.018 |             735 |
//! |    14 |     12.9″ |                              1.10 |    1.008 |           1 550 |
//! |    16 |      3.2″ |                              1.02 |    1.002 |           6 250 |
//! |    20 |      0.2″ |                             1.002 |   1.0001 |         103 000 |
//!
//! (Measured with this module on square frames at Dec 2°; "cells" is the
//! number of NUNIQ cells, 8 bytes each in FITS.)
//!
//! Survey frames are ~0.1–1° across with 0.2–1″ pixels. Because boundary
//! cells are kept whole, the MOC overstates a frame by roughly one cell
//! along its perimeter, and the number of cells (and so the file size and
//! the cost of every union) grows as 2^depth with the perimeter. Depth 14
//! ([`DEFAULT_DEPTH`]) keeps the overstatement around 10 % for the smallest
//! frames and under 1 % for degree-sized ones, with ~1 500 cells (12 kB)
//! per degree-sized frame; each depth more doubles the cells for an edge
//! that is already finer than the uncertainty of most WCS solutions at the
//! frame corners. [`MAX_DEPTH`] (20, 0.2″) is one pixel of the finest pixel scale
//! wisecut handles: deeper cells would describe sub-pixel detail the
//! four-corner polygon does not have, while costing ~70× the cells of the
//! default. Callers reject requested depths above it; functions here clamp.

use crate::imaging::sphere::separation;
use std::collections::BTreeMap;
use std::fmt;

use moc::deser::fits::keywords::MocType as FitsMocType;
use moc::deser::fits::{MocIdxType, MocQtyType, from_fits_ivoa};
use moc::deser::json::from_json_aladin;
use moc::moc::range::op::multi_op::kway_or;
use moc::moc::range::{CellSelection, RangeMOC};
use moc::moc::{
    CellHpxMOCIterator, CellMOCIntoIterator, CellMOCIterator, RangeMOCIntoIterator,
    RangeMOCIterator,
};
use moc::qty::Hpx;

/// A spatial MOC as the `moc` crate represents it: sorted, non-overlapping
/// ranges of HEALPix NESTED indices at depth 29, with the MOC's own depth.
pub type SMoc = RangeMOC<u64, Hpx<u64>>;

/// Key of one per-(class, filter) MOC: the frame class (e.g. `"ReducedScienceFrame"`)
/// and its filter, `None` for frames that have no filter (bias, dark, ...).
pub type GroupKey = (String, Option<String>);

/// Depth used when the caller does not ask for one: 12.9″ cells (see the
/// module docs for the trade-off).
pub const DEFAULT_DEPTH: u8 = 14;

/// Deepest depth wisecut builds MOCs at: 0.2″ cells, one pixel of the finest
/// pixel scale it handles. Requests beyond it are rejected by the caller;
/// the functions of this module clamp to it.
pub const MAX_DEPTH: u8 = 20;

/// Largest angular distance, in degrees, allowed between any two corners of
/// one frame. The widest single-exposure imagers (Schmidt plates, ZTF) span
/// ~7°, so anything larger is a broken WCS; it also keeps every polygon far
/// smaller than a hemisphere, where "which side is inside" stops being
/// obvious.
pub const MAX_FRAME_EXTENT_DEG: f64 = 30.0;

/// Square degrees on the whole sphere: 4π sr in deg².
const FULL_SKY_SQ_DEG: f64 = 41_252.961_249_419_27;

/// Below this |(a × b) · c| the corners a, b, c are taken as collinear or
/// coincident. It corresponds to frame sides of ~1e-7 rad (0.02″), far
/// below any real frame, and far above the ~1e-16 rounding of the products.
const MIN_TURN: f64 = 1e-14;

/// The sky footprint of one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Footprint {
    /// Frame class (the table it lives in), e.g. `"RawScienceFrame"`.
    pub class: String,
    /// Filter name, `None` for classes without one.
    pub filter: Option<String>,
    /// RA/Dec in degrees (ICRS) of the four pixel corners, in order around
    /// the edge: FITS pixels (0.5, 0.5), (n1+0.5, 0.5), (n1+0.5, n2+0.5),
    /// (0.5, n2+0.5). Either orientation on the sky is accepted.
    pub corners: [(f64, f64); 4],
}

/// Why a footprint was not used.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InvalidFootprint {
    /// A corner coordinate is NaN or infinite.
    NonFinite,
    /// A corner declination is outside [-90°, 90°]; carries it in degrees.
    DecOutOfRange(f64),
    /// Two corners are farther apart than [`MAX_FRAME_EXTENT_DEG`]; carries
    /// the largest corner-to-corner distance in degrees.
    TooLarge(f64),
    /// The corners coincide, are collinear, or are not in order around the
    /// edge (a "bow-tie"): the quadrilateral is not convex.
    NotConvex,
}

impl fmt::Display for InvalidFootprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NonFinite => write!(f, "a corner coordinate is not finite"),
            Self::DecOutOfRange(dec) => write!(f, "corner declination {dec}° is beyond a pole"),
            Self::TooLarge(deg) => write!(
                f,
                "corners are {deg:.3}° apart, more than the {MAX_FRAME_EXTENT_DEG}° a frame can span"
            ),
            Self::NotConvex => write!(
                f,
                "corners coincide, are collinear or are not in order around the edge"
            ),
        }
    }
}

impl std::error::Error for InvalidFootprint {}

/// A MOC could not be read back.
#[derive(Debug, Clone, PartialEq)]
pub enum CoverageError {
    /// The JSON is not an Aladin/mocpy JSON MOC; carries the reader's message.
    Json(String),
    /// The bytes are not an IVOA FITS MOC; carries the reader's message.
    Fits(String),
    /// The FITS MOC is valid but not a spatial (S-)MOC (time, frequency, ST-MOC).
    NotSpatial,
}

impl fmt::Display for CoverageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Json(msg) => write!(f, "invalid JSON MOC: {msg}"),
            Self::Fits(msg) => write!(f, "invalid FITS MOC: {msg}"),
            Self::NotSpatial => write!(f, "the FITS MOC is not a spatial MOC"),
        }
    }
}

impl std::error::Error for CoverageError {}

/// A unit vector on the sphere.
type Vec3 = [f64; 3];

fn unit_vector(ra_deg: f64, dec_deg: f64) -> Vec3 {
    let (sin_ra, cos_ra) = ra_deg.to_radians().sin_cos();
    let (sin_dec, cos_dec) = dec_deg.to_radians().sin_cos();
    [cos_dec * cos_ra, cos_dec * sin_ra, sin_dec]
}

fn cross(a: Vec3, b: Vec3) -> Vec3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn dot(a: Vec3, b: Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// RA in [0, 360): rem_euclid of a tiny negative number rounds up to 360.0
/// exactly, which is the same direction as 0 but outside the HEALPix domain.
fn normalise_ra(ra_deg: f64) -> f64 {
    let ra = ra_deg.rem_euclid(360.0);
    if ra >= 360.0 { 0.0 } else { ra }
}

impl Footprint {
    /// Checks that the corners describe a usable frame (see
    /// [`InvalidFootprint`]); `Ok` means [`footprint_moc`] will use it.
    pub fn validate(&self) -> Result<(), InvalidFootprint> {
        self.vertices().map(|_| ())
    }

    /// Direction of the frame centre (the normalised mean of the corners'
    /// unit vectors) as (RA, Dec) in degrees, or `None` for an invalid
    /// footprint. Correct across RA = 0 and at the poles, where averaging
    /// RA/Dec directly would not be.
    pub fn centre(&self) -> Option<(f64, f64)> {
        self.validate().ok()?;
        let mut sum = [0.0; 3];
        for &(ra, dec) in &self.corners {
            let v = unit_vector(ra, dec);
            for (s, c) in sum.iter_mut().zip(v) {
                *s += c;
            }
        }
        let ra = normalise_ra(sum[1].atan2(sum[0]).to_degrees());
        let dec = sum[2].atan2(sum[0].hypot(sum[1])).to_degrees();
        Some((ra, dec))
    }

    /// The corners as (lon, lat) in radians with lon in [0, 2π), as the
    /// polygon code wants them, after the validity checks.
    fn vertices(&self) -> Result<[(f64, f64); 4], InvalidFootprint> {
        if self
            .corners
            .iter()
            .any(|&(ra, dec)| !ra.is_finite() || !dec.is_finite())
        {
            return Err(InvalidFootprint::NonFinite);
        }
        if let Some(&(_, dec)) = self.corners.iter().find(|&&(_, dec)| dec.abs() > 90.0) {
            return Err(InvalidFootprint::DecOutOfRange(dec));
        }
        let v = self.corners.map(|(ra, dec)| unit_vector(ra, dec));
        let mut extent: f64 = 0.0;
        for i in 0..4 {
            for j in i + 1..4 {
                extent = extent.max(separation(self.corners[i], self.corners[j]));
            }
        }
        if extent > MAX_FRAME_EXTENT_DEG {
            return Err(InvalidFootprint::TooLarge(extent));
        }
        // A convex quadrilateral turns the same way at every corner: the sign
        // of (v_i × v_{i+1}) · v_{i+2} is the same for all four i. A repeated
        // or collinear corner gives ~0, a bow-tie (corners out of order)
        // alternates signs. Either orientation on the sky is fine.
        let turns: Vec<f64> = (0..4)
            .map(|i| dot(cross(v[i], v[(i + 1) % 4]), v[(i + 2) % 4]))
            .collect();
        let all_left = turns.iter().all(|&t| t > MIN_TURN);
        let all_right = turns.iter().all(|&t| t < -MIN_TURN);
        if !(all_left || all_right) {
            return Err(InvalidFootprint::NotConvex);
        }
        Ok(self
            .corners
            .map(|(ra, dec)| (normalise_ra(ra).to_radians(), dec.to_radians())))
    }
}

/// The coverage of a set of frames.
#[derive(Debug, Clone)]
pub struct Coverage {
    /// Union of the footprints of the frames used.
    pub moc: SMoc,
    /// Number of frames whose footprint is in `moc`.
    pub frames: usize,
    /// Number of frames left out because their corners were invalid (see
    /// [`InvalidFootprint`]); the caller should say so.
    pub skipped: usize,
}

/// The coverage of a whole survey: one MOC per (class, filter), and their union.
#[derive(Debug, Clone)]
pub struct SurveyCoverage {
    /// Union over all frames of every class and filter.
    pub all: Coverage,
    /// One coverage per (class, filter) present among the frames.
    pub groups: BTreeMap<GroupKey, Coverage>,
}

/// MOC of one frame, or why it has none. `depth` is clamped to [`MAX_DEPTH`].
pub fn frame_moc(footprint: &Footprint, depth: u8) -> Result<SMoc, InvalidFootprint> {
    let vertices = footprint.vertices()?;
    // complement = false: the crate's default inside (see the module docs).
    Ok(RangeMOC::from_polygon(
        &vertices,
        false,
        depth.min(MAX_DEPTH),
        CellSelection::All,
    ))
}

/// Union of many MOCs, all of depth `depth`. The empty union keeps `depth`:
/// the crate's `kway_or` would return a depth-0 MOC, whose FITS and JSON say
/// order 0 instead of the order the caller asked for.
fn union_all<'a>(mocs: Box<dyn Iterator<Item = SMoc> + 'a>, depth: u8) -> SMoc {
    let mut mocs = mocs.peekable();
    if mocs.peek().is_none() {
        return RangeMOC::new_empty(depth);
    }
    let moc = kway_or(Box::new(mocs));
    debug_assert_eq!(moc.depth_max(), depth);
    moc
}

/// Union of the footprints of `footprints` at `depth` (clamped to
/// [`MAX_DEPTH`]). Invalid footprints are skipped and counted in
/// [`Coverage::skipped`]. Accepts `&[Footprint]`, `&Vec<Footprint>` and the
/// `Vec<&Footprint>` groups that [`group`] returns.
///
/// Frames are processed one at a time and merged as they come, so memory
/// stays at a few frame MOCs whatever the number of frames.
pub fn footprint_moc<'a, I>(footprints: I, depth: u8) -> Coverage
where
    I: IntoIterator<Item = &'a Footprint>,
{
    let depth = depth.min(MAX_DEPTH);
    let mut frames = 0;
    let mut skipped = 0;
    let mocs = footprints
        .into_iter()
        .filter_map(|fp| match frame_moc(fp, depth) {
            Ok(moc) => {
                frames += 1;
                Some(moc)
            }
            Err(_) => {
                skipped += 1;
                None
            }
        });
    let moc = union_all(Box::new(mocs), depth);
    Coverage {
        moc,
        frames,
        skipped,
    }
}

/// Footprints grouped by (class, filter), each group in input order.
pub fn group(footprints: &[Footprint]) -> BTreeMap<GroupKey, Vec<&Footprint>> {
    let mut groups: BTreeMap<GroupKey, Vec<&Footprint>> = BTreeMap::new();
    for fp in footprints {
        groups
            .entry((fp.class.clone(), fp.filter.clone()))
            .or_default()
            .push(fp);
    }
    groups
}

/// One MOC per (class, filter) and the union of all of them, at `depth`
/// (clamped to [`MAX_DEPTH`]). Each polygon is computed once: the overall
/// union is made from the group MOCs, not from the frames again.
pub fn survey_coverage(footprints: &[Footprint], depth: u8) -> SurveyCoverage {
    let depth = depth.min(MAX_DEPTH);
    let groups: BTreeMap<GroupKey, Coverage> = group(footprints)
        .into_iter()
        .map(|(key, members)| (key, footprint_moc(members, depth)))
        .collect();
    let all = Coverage {
        moc: union_all(Box::new(groups.values().map(|c| c.moc.clone())), depth),
        frames: groups.values().map(|c| c.frames).sum(),
        skipped: groups.values().map(|c| c.skipped).sum(),
    };
    SurveyCoverage { all, groups }
}

/// Coverage MOCs already computed, by request (viewer's visibility, classes,
/// filter, depth), with the catalogue generations they were computed at
/// (`Catalog::generations`) and the last frame they include. A MOC of a
/// large survey takes seconds to minutes to rasterise; with this a server
/// pays that once, then extends the MOC by the frames of each later ingest
/// and starts again only when visibility changed. At most [`MocCache::MAX`]
/// entries: a full cache drops its oldest.
#[derive(Debug, Default)]
pub struct MocCache {
    entries: std::sync::Mutex<Vec<(String, MocEntry)>>,
}

/// One cached coverage.
#[derive(Debug, Clone)]
pub struct MocEntry {
    /// `catalog_state.frames` when last extended.
    pub frames_generation: i64,
    /// `catalog_state.visibility` when computed.
    pub visibility_generation: i64,
    /// The largest object id it includes.
    pub last_id: i64,
    /// The coverage.
    pub coverage: std::sync::Arc<Coverage>,
}

impl MocCache {
    /// Most entries kept.
    pub const MAX: usize = 32;

    /// The entry for `key`, if any.
    pub fn get(&self, key: &str) -> Option<MocEntry> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, e)| e.clone())
    }

    /// Stores `entry` under `key`, replacing an older one.
    pub fn put(&self, key: String, entry: MocEntry) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|(k, _)| *k != key);
        if entries.len() >= Self::MAX {
            entries.remove(0);
        }
        entries.push((key, entry));
    }

    /// The coverage of the frames of `classes` (and `filter`) that
    /// `catalog`'s viewer sees, at `depth`: from the cache, extended by the
    /// frames added since (any server's ingest bumps `catalog_state.frames`),
    /// computed again after a change of visibility.
    pub async fn coverage(
        &self,
        catalog: &crate::catalog::Catalog,
        classes: &[crate::model::FrameClass],
        filter: Option<&str>,
        depth: u8,
    ) -> Result<std::sync::Arc<Coverage>, crate::catalog::CatalogError> {
        let key = format!(
            "{}|{classes:?}|{filter:?}|{depth}",
            catalog.visibility_key()
        );
        let (frames_generation, visibility_generation) = catalog.generations().await?;
        let start = self
            .get(&key)
            .filter(|e| e.visibility_generation == visibility_generation);
        if let Some(e) = &start
            && e.frames_generation == frames_generation
        {
            return Ok(std::sync::Arc::clone(&e.coverage));
        }
        let (mut cov, mut last_id) = match start {
            Some(e) => ((*e.coverage).clone(), e.last_id),
            None => (footprint_moc(&[], depth), 0),
        };
        // Pages in object-id order. A frame committed later with a smaller
        // id than one already read (two ingests racing on PostgreSQL) would
        // be missed until visibility next changes; ingests are rare and the
        // MOC is a guide to where data are, not the authority (SIA is).
        loop {
            let page = catalog
                .footprints_page(classes, filter, last_id, MOC_PAGE)
                .await?;
            let n = page.len() as u64;
            let Some(last) = page.last() else { break };
            last_id = last.object_id;
            let footprints: Vec<Footprint> = page
                .into_iter()
                .filter(|f| f.corners.len() == 4)
                .map(|f| Footprint {
                    class: f.class,
                    filter: f.filter,
                    corners: [f.corners[0], f.corners[1], f.corners[2], f.corners[3]],
                })
                .collect();
            // Polygon rasterisation is about a millisecond per frame: off
            // the async threads.
            let part = tokio::task::spawn_blocking(move || footprint_moc(&footprints, depth))
                .await
                .map_err(|e| {
                    crate::catalog::CatalogError::Invalid(format!("MOC rasterisation: {e}"))
                })?;
            cov = extend(&cov, &part);
            if n < MOC_PAGE {
                break;
            }
        }
        let cov = std::sync::Arc::new(cov);
        self.put(
            key,
            MocEntry {
                frames_generation,
                visibility_generation,
                last_id,
                coverage: std::sync::Arc::clone(&cov),
            },
        );
        Ok(cov)
    }
}

/// Frames read per page while a MOC is built: bounds the memory of a MOC
/// request whatever the survey's size.
const MOC_PAGE: u64 = 20_000;

/// `base` extended by the frames of `more` (at the same depth).
pub fn extend(base: &Coverage, more: &Coverage) -> Coverage {
    Coverage {
        moc: base.moc.or(&more.moc),
        frames: base.frames + more.frames,
        skipped: base.skipped + more.skipped,
    }
}

/// The MOC as an IVOA MOC 2.0 FITS file (primary HDU plus one BINTABLE of
/// 64-bit NUNIQ cells, `MOCTYPE = 'IMAGE'`), as bytes ready to serve or save.
pub fn to_fits(moc: &SMoc) -> Vec<u8> {
    let mut bytes = Vec::new();
    moc.into_range_moc_iter()
        .cells()
        .hpx_cells_to_fits_ivoa(None, Some(FitsMocType::Image), &mut bytes)
        // The writer fails only on I/O errors, which a Vec cannot produce, or
        // on a cell deeper than the MOC's depth, which a RangeMOC cannot hold.
        .expect("writing a MOC into memory cannot fail");
    bytes
}

/// The MOC in the Aladin/mocpy JSON form: `{"order": [ipix, ...], ...}`, one
/// key per order that has cells, plus the MOC's depth (possibly with an
/// empty list) so that readers recover the depth.
pub fn to_json(moc: &SMoc) -> String {
    let mut bytes = Vec::new();
    moc.into_range_moc_iter()
        .cells()
        .to_json_aladin(None, &mut bytes)
        // As for FITS: a Vec never fails to take bytes.
        .expect("writing a MOC into memory cannot fail");
    // The writer emits only ASCII digits, quotes, brackets and separators.
    String::from_utf8(bytes).expect("JSON MOC is ASCII")
}

/// Reads an Aladin/mocpy JSON MOC (the form [`to_json`] writes). The depth is
/// the deepest order key present.
pub fn from_json(json: &str) -> Result<SMoc, CoverageError> {
    let cells =
        from_json_aladin::<u64, Hpx<u64>>(json).map_err(|e| CoverageError::Json(e.to_string()))?;
    Ok(cells.into_cell_moc_iter().ranges().into_range_moc())
}

/// Reads an IVOA FITS spatial MOC (NUNIQ or RANGE ordering, 16-, 32- or
/// 64-bit indices, MOC 1.x or 2.0), such as [`to_fits`] writes or a client
/// uploads.
pub fn from_fits(bytes: &[u8]) -> Result<SMoc, CoverageError> {
    let parsed = from_fits_ivoa(bytes).map_err(|e| CoverageError::Fits(e.to_string()))?;
    match parsed {
        MocIdxType::U64(MocQtyType::Hpx(moc)) => Ok(moc.collect()),
        MocIdxType::U32(MocQtyType::Hpx(moc)) => Ok(moc.collect_to_u64::<Hpx<u64>>()),
        MocIdxType::U16(MocQtyType::Hpx(moc)) => Ok(moc.collect_to_u64::<Hpx<u64>>()),
        _ => Err(CoverageError::NotSpatial),
    }
}

/// Fraction of the sky the MOC covers, in [0, 1].
pub fn sky_fraction(moc: &SMoc) -> f64 {
    // Despite its name the crate returns a fraction, not a percentage.
    moc.coverage_percentage()
}

/// Area the MOC covers, in square degrees.
pub fn area_sq_deg(moc: &SMoc) -> f64 {
    sky_fraction(moc) * FULL_SKY_SQ_DEG
}

/// Whether the position (RA, Dec in degrees, ICRS) falls in a cell of the
/// MOC. Any RA is accepted (it is wrapped into [0, 360)); a non-finite
/// coordinate or a Dec beyond ±90° is never contained.
pub fn contains(moc: &SMoc, ra: f64, dec: f64) -> bool {
    if !ra.is_finite() || !dec.is_finite() || dec.abs() > 90.0 {
        return false;
    }
    moc.is_in(normalise_ra(ra).to_radians(), dec.to_radians())
}

/// Whether two MOCs cover exactly the same cells at the same depth.
pub fn same_coverage(a: &SMoc, b: &SMoc) -> bool {
    a.depth_max() == b.depth_max() && a.eq_without_depth(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Corners of a `width` × `height` degree frame centred on (ra0, dec0),
    /// axes along east and north, in the order FITS pixels (0.5, 0.5),
    /// (n1+0.5, 0.5), ... give for the usual orientation (RA increasing to
    /// the left): south-east, south-west, north-west, north-east. Built as a
    /// gnomonic (TAN) deprojection so it is exact at the poles too.
    fn tan_corners(ra0: f64, dec0: f64, width: f64, height: f64) -> [(f64, f64); 4] {
        let hx = (width / 2.0).to_radians().tan();
        let hy = (height / 2.0).to_radians().tan();
        [(hx, -hy), (-hx, -hy), (-hx, hy), (hx, hy)].map(|(x, y)| tan_point(ra0, dec0, x, y))
    }

    /// The point at tangent-plane offsets (x east, y north) from (ra0, dec0).
    fn tan_point(ra0: f64, dec0: f64, x: f64, y: f64) -> (f64, f64) {
        let (ra, dec) = crate::imaging::sphere::Gnomonic::new(ra0, dec0).deproject(x, y);
        (normalise_ra(ra), dec)
    }

    fn frame(class: &str, filter: Option<&str>, ra: f64, dec: f64, size: f64) -> Footprint {
        Footprint {
            class: class.to_string(),
            filter: filter.map(str::to_string),
            corners: tan_corners(ra, dec, size, size),
        }
    }

    fn sci(ra: f64, dec: f64, size: f64) -> Footprint {
        frame("ReducedScienceFrame", Some("r"), ra, dec, size)
    }

    #[test]
    fn centre_inside_and_point_one_degree_away_outside() {
        let fp = sci(150.1, 2.2, 0.5);
        let (ra, dec) = fp.centre().unwrap();
        assert!((ra - 150.1).abs() < 1e-9 && (dec - 2.2).abs() < 1e-9);
        let cov = footprint_moc([&fp], DEFAULT_DEPTH);
        assert_eq!((cov.frames, cov.skipped), (1, 0));
        assert_eq!(cov.moc.depth_max(), DEFAULT_DEPTH);
        assert!(contains(&cov.moc, ra, dec));
        assert!(!contains(&cov.moc, ra, dec + 1.0));
        assert!(!contains(&cov.moc, ra + 1.0 / dec.to_radians().cos(), dec));
        // Area: the 0.25 deg² frame plus at most a band of boundary cells.
        let area = area_sq_deg(&cov.moc);
        assert!(area > 0.25 && area < 0.25 * 1.1, "area {area}");
    }

    #[test]
    fn the_moc_covers_the_frame_up_to_its_corners() {
        // CellSelection::All makes the MOC a superset of the polygon: points
        // just inside each corner and edge must be in it.
        let (ra0, dec0, size) = (33.3, -27.5, 0.3);
        let fp = sci(ra0, dec0, size);
        let moc = footprint_moc([&fp], DEFAULT_DEPTH).moc;
        let h = (size / 2.0).to_radians().tan() * 0.999;
        for (x, y) in [
            (h, h),
            (-h, h),
            (h, -h),
            (-h, -h),
            (0.0, h),
            (h, 0.0),
            (0.0, -h),
        ] {
            let (ra, dec) = tan_point(ra0, dec0, x, y);
            assert!(contains(&moc, ra, dec), "({ra}, {dec}) not covered");
        }
        // ... and a point a few cells (~13″ each) outside a corner must not be.
        let out = (size / 2.0 + 0.02).to_radians().tan();
        let (ra, dec) = tan_point(ra0, dec0, out, out);
        assert!(!contains(&moc, ra, dec));
    }

    #[test]
    fn union_of_overlapping_frames_is_between_max_and_sum() {
        let a = sci(10.0, 5.0, 0.5);
        let b = sci(10.25, 5.1, 0.5);
        let area_a = area_sq_deg(&footprint_moc([&a], DEFAULT_DEPTH).moc);
        let area_b = area_sq_deg(&footprint_moc([&b], DEFAULT_DEPTH).moc);
        let both = footprint_moc([&a, &b], DEFAULT_DEPTH);
        assert_eq!(both.frames, 2);
        let area = area_sq_deg(&both.moc);
        assert!(area > area_a.max(area_b), "{area} vs {area_a}, {area_b}");
        assert!(area < area_a + area_b, "{area} vs {area_a} + {area_b}");
        // The union is exactly the crate's pairwise OR.
        let pairwise = frame_moc(&a, DEFAULT_DEPTH)
            .unwrap()
            .or(&frame_moc(&b, DEFAULT_DEPTH).unwrap());
        assert!(same_coverage(&both.moc, &pairwise));
    }

    #[test]
    fn many_frame_union_matches_pairwise_fold() {
        // More than four frames exercises every branch of the 4-way merge.
        let frames: Vec<Footprint> = (0..11)
            .map(|i| sci(200.0 + 0.3 * f64::from(i), -10.0 + 0.05 * f64::from(i), 0.4))
            .collect();
        let cov = footprint_moc(&frames, 12);
        let folded = frames
            .iter()
            .map(|f| frame_moc(f, 12).unwrap())
            .reduce(|acc, m| acc.or(&m))
            .unwrap();
        assert_eq!(cov.frames, 11);
        assert!(same_coverage(&cov.moc, &folded));
    }

    #[test]
    fn frame_straddling_ra_zero() {
        let fp = sci(0.0, 10.0, 0.2);
        // The corners really are on both sides of RA = 0.
        assert!(fp.corners.iter().any(|c| c.0 > 359.0));
        assert!(fp.corners.iter().any(|c| c.0 < 1.0));
        let moc = footprint_moc([&fp], DEFAULT_DEPTH).moc;
        assert!(contains(&moc, 359.99, 10.0));
        assert!(contains(&moc, 0.01, 10.0));
        assert!(contains(&moc, -0.01, 10.0), "negative RA wraps");
        assert!(!contains(&moc, 180.0, 10.0));
        assert!(!contains(&moc, 0.0, -10.0));
        // Small, not the rest of the sky between 0.1° and 359.9°.
        let area = area_sq_deg(&moc);
        assert!(area > 0.04 && area < 0.06, "area {area}");
        // Corners given with negative RA describe the same frame.
        let shifted = Footprint {
            corners: fp
                .corners
                .map(|(ra, dec)| (if ra > 180.0 { ra - 360.0 } else { ra }, dec)),
            ..fp.clone()
        };
        let moc2 = footprint_moc([&shifted], DEFAULT_DEPTH).moc;
        assert!(same_coverage(&moc, &moc2));
    }

    #[test]
    fn frames_on_and_near_the_poles() {
        let north = sci(0.0, 90.0, 0.5);
        let moc = footprint_moc([&north], DEFAULT_DEPTH).moc;
        assert!(contains(&moc, 0.0, 90.0));
        for ra in [0.0, 77.0, 181.0, 299.0] {
            assert!(contains(&moc, ra, 89.9), "ra {ra}");
            assert!(!contains(&moc, ra, 89.0), "ra {ra}");
        }
        assert!(area_sq_deg(&moc) < 0.3);

        let south = sci(123.0, -90.0, 0.5);
        let moc = footprint_moc([&south], DEFAULT_DEPTH).moc;
        assert!(contains(&moc, 0.0, -90.0));
        assert!(contains(&moc, 250.0, -89.9));
        assert!(!contains(&moc, 250.0, -89.0));
        assert!(!contains(&moc, 0.0, 90.0));
        assert!(area_sq_deg(&moc) < 0.3);

        // A corner exactly on a pole: the edge of the crate's latitude
        // domain, where some of its internal conversions assert.
        for pole in [90.0, -90.0] {
            let s: f64 = pole / 90.0;
            let fp = Footprint {
                corners: [
                    (0.0, pole),
                    (0.0, s * 89.8),
                    (45.0, s * 89.75),
                    (90.0, s * 89.8),
                ],
                ..north.clone()
            };
            let moc = footprint_moc([&fp], DEFAULT_DEPTH).moc;
            assert!(contains(&moc, 0.0, pole));
            assert!(contains(&moc, 45.0, s * 89.85));
            assert!(!contains(&moc, 225.0, s * 89.85));
            // Two right triangles of legs 0.2° and 0.25°·cos 45°: 0.0354 deg².
            let area = area_sq_deg(&moc);
            assert!(area > 0.0354 && area < 0.045, "area {area}");
        }

        // Near the pole but not over it: the pole stays outside even though
        // the corners span a wide range of RA.
        let near = sci(30.0, 89.5, 0.4);
        let moc = footprint_moc([&near], DEFAULT_DEPTH).moc;
        assert!(contains(&moc, 30.0, 89.5));
        assert!(!contains(&moc, 0.0, 90.0));
        assert!(!contains(&moc, 210.0, 89.5));
    }

    #[test]
    fn orientation_does_not_matter() {
        let fp = sci(80.0, 36.0, 0.3);
        let mut flipped = fp.clone();
        flipped.corners.reverse();
        let a = footprint_moc([&fp], DEFAULT_DEPTH).moc;
        let b = footprint_moc([&flipped], DEFAULT_DEPTH).moc;
        assert!(same_coverage(&a, &b));
    }

    #[test]
    fn invalid_footprints_are_skipped_and_counted() {
        let good = sci(45.0, 45.0, 0.3);
        let mut nan = good.clone();
        nan.corners[2].1 = f64::NAN;
        let mut beyond_pole = good.clone();
        beyond_pole.corners[0].1 = 95.0;
        let mut repeated = good.clone();
        repeated.corners[1] = repeated.corners[0];
        let mut bow_tie = good.clone();
        bow_tie.corners.swap(1, 2);
        let huge = sci(45.0, 0.0, 40.0);
        assert_eq!(nan.validate(), Err(InvalidFootprint::NonFinite));
        assert_eq!(
            beyond_pole.validate(),
            Err(InvalidFootprint::DecOutOfRange(95.0))
        );
        assert_eq!(repeated.validate(), Err(InvalidFootprint::NotConvex));
        assert_eq!(bow_tie.validate(), Err(InvalidFootprint::NotConvex));
        assert!(matches!(huge.validate(), Err(InvalidFootprint::TooLarge(d)) if d > 50.0));
        assert_eq!(nan.centre(), None);

        let all = [
            nan.clone(),
            good.clone(),
            beyond_pole,
            repeated,
            bow_tie,
            huge,
        ];
        let cov = footprint_moc(&all, DEFAULT_DEPTH);
        assert_eq!((cov.frames, cov.skipped), (1, 5));
        let alone = footprint_moc([&good], DEFAULT_DEPTH).moc;
        assert!(same_coverage(&cov.moc, &alone));

        // Nothing usable: an empty MOC that still has the requested depth.
        let none = footprint_moc([&nan], 11);
        assert_eq!((none.frames, none.skipped), (0, 1));
        assert!(none.moc.is_empty());
        assert_eq!(none.moc.depth_max(), 11);
        assert_eq!(sky_fraction(&none.moc), 0.0);
    }

    #[test]
    fn depth_is_clamped_to_max_depth() {
        let fp = sci(10.0, 10.0, 0.01);
        let cov = footprint_moc([&fp], 29);
        assert_eq!(cov.moc.depth_max(), MAX_DEPTH);
        assert!(contains(&cov.moc, 10.0, 10.0));
    }

    #[test]
    fn fits_output_follows_the_moc_standard_and_round_trips() {
        let cov = footprint_moc([&sci(0.0, 10.0, 0.2), &sci(150.0, 2.0, 0.5)], DEFAULT_DEPTH);
        let fits = to_fits(&cov.moc);
        assert!(fits.starts_with(b"SIMPLE  ="));
        assert_eq!(
            fits.len() % 2880,
            0,
            "FITS files are whole 2880-byte blocks"
        );
        // The header cards of the BINTABLE (second block onwards).
        let header = String::from_utf8_lossy(&fits[2880..2 * 2880]);
        let card = |key: &str| {
            header
                .as_bytes()
                .chunks(80)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .find(|c| c.starts_with(&format!("{key:<8}=")))
                .unwrap_or_else(|| panic!("no {key} card in {header}"))
        };
        assert!(header.starts_with("XTENSION= 'BINTABLE'"));
        assert!(card("MOCVERS").contains("'2.0'"));
        assert!(card("MOCDIM").contains("'SPACE'"));
        assert!(card("ORDERING").contains("'NUNIQ'"));
        assert!(card("COORDSYS").contains("'C'"));
        assert!(card("MOCORDER").contains(&DEFAULT_DEPTH.to_string()));
        assert!(card("MOCORD_S").contains(&DEFAULT_DEPTH.to_string()));
        assert!(card("TTYPE1").contains("UNIQ"));
        let back = from_fits(&fits).unwrap();
        assert!(same_coverage(&back, &cov.moc));
        assert!(matches!(
            from_fits(b"SIMPLE  = not a moc"),
            Err(CoverageError::Fits(_))
        ));
    }

    #[test]
    fn json_round_trips_through_the_crate_reader() {
        let cov = footprint_moc([&sci(0.0, 10.0, 0.2), &sci(0.0, 90.0, 0.3)], 13);
        let json = to_json(&cov.moc);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let orders = value.as_object().unwrap();
        assert!(orders.contains_key("13"));
        assert!(orders.keys().all(|k| k.parse::<u8>().unwrap() <= 13));
        let back = from_json(&json).unwrap();
        assert!(same_coverage(&back, &cov.moc));
        assert!(matches!(from_json("[1, 2]"), Err(CoverageError::Json(_))));

        // The empty MOC keeps its depth through JSON as well.
        let empty = footprint_moc(std::iter::empty(), 9).moc;
        let back = from_json(&to_json(&empty)).unwrap();
        assert!(back.is_empty());
        assert_eq!(back.depth_max(), 9);
    }

    #[test]
    fn grouping_by_class_and_filter() {
        let frames = vec![
            sci(10.0, 0.0, 0.3),
            frame("ReducedScienceFrame", Some("g"), 20.0, 0.0, 0.3),
            sci(10.2, 0.0, 0.3),
            frame("RawBiasFrame", None, 30.0, 0.0, 0.3),
            Footprint {
                corners: [(f64::NAN, 0.0); 4],
                ..sci(0.0, 0.0, 0.1)
            },
        ];
        let groups = group(&frames);
        let keys: Vec<_> = groups.keys().cloned().collect();
        assert_eq!(
            keys,
            vec![
                ("RawBiasFrame".to_string(), None),
                ("ReducedScienceFrame".to_string(), Some("g".to_string())),
                ("ReducedScienceFrame".to_string(), Some("r".to_string())),
            ]
        );
        assert_eq!(groups[&keys[2]].len(), 3);

        let survey = survey_coverage(&frames, 12);
        assert_eq!((survey.all.frames, survey.all.skipped), (4, 1));
        let r = &survey.groups[&keys[2]];
        assert_eq!((r.frames, r.skipped), (2, 1));
        assert!(contains(&r.moc, 10.1, 0.0));
        assert!(!contains(&r.moc, 20.0, 0.0));
        assert!(contains(&survey.all.moc, 20.0, 0.0));
        assert!(contains(&survey.all.moc, 30.0, 0.0));
        let direct = footprint_moc(&frames, 12);
        assert!(same_coverage(&survey.all.moc, &direct.moc));
    }

    #[test]
    fn contains_rejects_impossible_positions() {
        let moc = footprint_moc([&sci(0.0, 90.0, 1.0)], 10).moc;
        assert!(!contains(&moc, f64::NAN, 90.0));
        assert!(!contains(&moc, 0.0, 90.5));
        assert!(contains(&moc, 720.0, 90.0));
    }
}
