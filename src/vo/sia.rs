//! SIA 2.0 `{query}`: parameters, matching frames against them, and the
//! ObsCore VOTable of the answer.
//!
//! Every parameter may repeat; values of one parameter are OR-ed and
//! different parameters AND-ed (SIA 2.0 §2.1). Numeric intervals are
//! `lo hi` with `-Inf`/`+Inf` for open ends, or one number for both ends.
//! Regions follow DALI: `CIRCLE ra dec r`, `RANGE ra1 ra2 dec1 dec2`,
//! `POLYGON ra1 dec1 ra2 dec2 ra3 dec3 …`, all in ICRS degrees.
//!
//! Frames are matched against a region through their four sky corners (the
//! footprint the catalogue stores), with the geometry done on a gnomonic
//! projection centred on the region, where footprint edges (great circles)
//! are straight lines. Calibration frames have no sky footprint and never
//! match a `POS` constraint; without one they are found by `COLLECTION`.

use super::DalParams;
pub use super::obscore::time_range;
use super::obscore::{self, ObsRecord};
use super::votable::{DataType, Document, Field, QueryStatus};
use crate::catalog::browse::Cell;
use crate::imaging::sphere::{Gnomonic, separation};
use crate::model::{Frame, FrameClass};

/// The parameters this service understands (upper case).
pub const PARAMS: &[&str] = &[
    "POS",
    "BAND",
    "TIME",
    "POL",
    "FOV",
    "SPATRES",
    "EXPTIME",
    "ID",
    "COLLECTION",
    "FACILITY",
    "INSTRUMENT",
    "DPTYPE",
    "CALIB",
    "TARGET",
    "TIMERES",
    "SPECRP",
    "FORMAT",
    "MAXREC",
    "RESPONSEFORMAT",
    "RUNID",
];

/// Rows returned when the client does not say.
pub const DEFAULT_MAXREC: u64 = 1000;
/// Most rows one answer holds; a larger MAXREC still stops here, with
/// `QUERY_STATUS=OVERFLOW` when more frames matched.
pub const MAX_MAXREC: u64 = 10_000;

/// A region of the sky, ICRS degrees.
#[derive(Debug, Clone, PartialEq)]
pub enum Region {
    /// Centre and radius.
    Circle(f64, f64, f64),
    /// RA and Dec intervals; `ra1 > ra2` wraps through 0.
    Range(f64, f64, f64, f64),
    /// Vertices.
    Polygon(Vec<(f64, f64)>),
}

impl Region {
    /// The sky-index cells the region touches, or `None` when it is too
    /// large for the index to pay (every frame is then a candidate).
    pub fn cells(&self) -> Option<Vec<i64>> {
        use crate::catalog::sky_index;
        match self {
            Self::Circle(ra, dec, r) => sky_index::cone_cells(*ra, *dec, *r),
            Self::Range(ra1, ra2, d1, d2) => sky_index::range_cells(*ra1, *ra2, *d1, *d2),
            Self::Polygon(v) => sky_index::polygon_cells(v),
        }
    }

    /// Parses a DALI shape: `CIRCLE …`, `RANGE …`, `POLYGON …`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (kind, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        let n = super::numbers(rest)?;
        let check_dec = |d: f64| {
            if (-90.0..=90.0).contains(&d) {
                Ok(())
            } else {
                Err(format!("dec {d} is outside -90..90"))
            }
        };
        match kind.to_ascii_uppercase().as_str() {
            "CIRCLE" => {
                let [ra, dec, r] = n[..] else {
                    return Err(format!(
                        "CIRCLE takes 3 numbers (ra dec radius, degrees), got {}",
                        n.len()
                    ));
                };
                check_dec(dec)?;
                if !ra.is_finite() {
                    return Err(format!("CIRCLE ra {ra} is not a finite angle"));
                }
                if !(r > 0.0 && r <= 180.0) {
                    return Err(format!("CIRCLE radius {r} must be in (0, 180] degrees"));
                }
                Ok(Self::Circle(ra.rem_euclid(360.0), dec, r))
            }
            "RANGE" => {
                let [ra1, ra2, dec1, dec2] = n[..] else {
                    return Err(format!(
                        "RANGE takes 4 numbers (ra1 ra2 dec1 dec2, degrees), got {}",
                        n.len()
                    ));
                };
                if dec1 > dec2 || ra1.is_nan() || ra2.is_nan() || dec1.is_nan() || dec2.is_nan() {
                    return Err(format!("RANGE dec interval {dec1} {dec2} is empty"));
                }
                Ok(Self::Range(ra1, ra2, dec1.max(-90.0), dec2.min(90.0)))
            }
            "POLYGON" => {
                if n.len() < 6 || n.len() % 2 != 0 {
                    return Err(format!(
                        "POLYGON takes at least 3 vertices as ra dec pairs, got {} numbers",
                        n.len()
                    ));
                }
                let v: Vec<(f64, f64)> = n.chunks(2).map(|c| (c[0].rem_euclid(360.0), c[1])).collect();
                for (r, d) in &v {
                    check_dec(*d)?;
                    if !r.is_finite() {
                        return Err("POLYGON vertices must be finite".into());
                    }
                }
                check_simple(&v)?;
                Ok(Self::Polygon(v))
            }
            "" => Err("empty; allowed shapes: CIRCLE ra dec r, RANGE ra1 ra2 dec1 dec2, POLYGON ra1 dec1 ra2 dec2 ra3 dec3 …".into()),
            other => Err(format!(
                "{other:?} is not a shape; allowed: CIRCLE ra dec r, RANGE ra1 ra2 dec1 dec2, POLYGON ra1 dec1 …"
            )),
        }
    }

    /// Whether the region overlaps the convex quadrilateral `corners`.
    pub fn overlaps(&self, corners: &[(f64, f64)]) -> bool {
        if corners.len() < 3
            || corners
                .iter()
                .any(|(r, d)| !r.is_finite() || !d.is_finite())
        {
            return false;
        }
        match self {
            Self::Circle(ra, dec, r) => {
                if corners.iter().any(|c| separation(*c, (*ra, *dec)) <= *r) {
                    return true;
                }
                let plane = Gnomonic::new(*ra, *dec);
                let Some(poly) = project_all(corners, &plane) else {
                    // A frame more than 90° away cannot touch a circle of
                    // radius < 90°; bigger circles contain some corner.
                    return false;
                };
                if inside(&poly, (0.0, 0.0)) {
                    return true;
                }
                // The nearest point of each edge, back on the sphere.
                (0..poly.len()).any(|i| {
                    let (a, b) = (poly[i], poly[(i + 1) % poly.len()]);
                    let p = nearest_on_segment(a, b);
                    separation(plane.deproject(p.0, p.1), (*ra, *dec)) <= *r
                })
            }
            Self::Range(r1, r2, d1, d2) => {
                // Dec: the frame's extent from its corners (frames are far
                // smaller than the distance to a pole in any survey).
                let dmin = corners.iter().map(|c| c.1).fold(f64::INFINITY, f64::min);
                let dmax = corners
                    .iter()
                    .map(|c| c.1)
                    .fold(f64::NEG_INFINITY, f64::max);
                if dmax < *d1 || dmin > *d2 {
                    return false;
                }
                if r1.is_infinite() || r2.is_infinite() || (r2 - r1) >= 360.0 {
                    return true;
                }
                let ras: Vec<f64> = corners.iter().map(|c| c.0).collect();
                let (fa, fb) = crate::catalog::ingest::ra_range(&ras);
                arcs_overlap((r1.rem_euclid(360.0), r2.rem_euclid(360.0)), (fa, fb))
            }
            Self::Polygon(v) => {
                let (ra, dec) = unit_mean(v);
                let plane = Gnomonic::new(ra, dec);
                let (Some(a), Some(b)) = (project_all(v, &plane), project_all(corners, &plane))
                else {
                    return false;
                };
                polygons_overlap(&a, &b)
            }
        }
    }
}

/// A polygon must be simple (DALI 1.1 §3.3.6): a bow tie, whose edges
/// cross, encloses no well-defined area, so it is refused rather than
/// given a meaning of our choosing. So is one whose vertices are not all
/// within 90° of their mean, or that has repeated vertices.
fn check_simple(v: &[(f64, f64)]) -> Result<(), String> {
    let (ra, dec) = unit_mean(v);
    let plane = Gnomonic::new(ra, dec);
    let Some(p) = project_all(v, &plane) else {
        return Err("POLYGON spans more than a hemisphere; split it into smaller polygons".into());
    };
    let n = p.len();
    for i in 0..n {
        if p[i] == p[(i + 1) % n] {
            return Err(format!(
                "POLYGON vertices {} and {} are the same point",
                i + 1,
                (i + 1) % n + 1
            ));
        }
    }
    for i in 0..n {
        for j in i + 1..n {
            // Adjacent edges share a vertex; they do not cross.
            if j == i + 1 || (i == 0 && j == n - 1) {
                continue;
            }
            if segments_cross(p[i], p[(i + 1) % n], p[j], p[(j + 1) % n]) {
                return Err(format!(
                    "POLYGON edges {}–{} and {}–{} cross (a self-intersecting \"bow tie\"); give the vertices in order around the region",
                    i + 1,
                    (i + 1) % n + 1,
                    j + 1,
                    (j + 1) % n + 1
                ));
            }
        }
    }
    Ok(())
}

/// The mean direction of points, as (ra, dec).
fn unit_mean(v: &[(f64, f64)]) -> (f64, f64) {
    let (mut x, mut y, mut z) = (0.0, 0.0, 0.0);
    for (r, d) in v {
        let (r, d) = (r.to_radians(), d.to_radians());
        x += d.cos() * r.cos();
        y += d.cos() * r.sin();
        z += d.sin();
    }
    (
        y.atan2(x).to_degrees().rem_euclid(360.0),
        z.atan2((x * x + y * y).sqrt()).to_degrees(),
    )
}

/// The points `v` on the gnomonic plane about `g`'s tangent point; `None`
/// when one is 90° or more away.
fn project_all(v: &[(f64, f64)], g: &Gnomonic) -> Option<Vec<(f64, f64)>> {
    v.iter().map(|p| g.project(p.0, p.1)).collect()
}

/// The point of segment a–b nearest the origin.
fn nearest_on_segment(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 == 0.0 {
        0.0
    } else {
        (-(a.0 * dx + a.1 * dy) / len2).clamp(0.0, 1.0)
    };
    (a.0 + t * dx, a.1 + t * dy)
}

/// Point in polygon (even-odd), any winding.
fn inside(poly: &[(f64, f64)], p: (f64, f64)) -> bool {
    let mut c = false;
    let n = poly.len();
    for i in 0..n {
        let (a, b) = (poly[i], poly[(i + n - 1) % n]);
        if (a.1 > p.1) != (b.1 > p.1) && p.0 < (b.0 - a.0) * (p.1 - a.1) / (b.1 - a.1) + a.0 {
            c = !c;
        }
    }
    c
}

fn segments_cross(a: (f64, f64), b: (f64, f64), c: (f64, f64), d: (f64, f64)) -> bool {
    let orient = |p: (f64, f64), q: (f64, f64), r: (f64, f64)| {
        (q.0 - p.0) * (r.1 - p.1) - (q.1 - p.1) * (r.0 - p.0)
    };
    let (o1, o2, o3, o4) = (
        orient(a, b, c),
        orient(a, b, d),
        orient(c, d, a),
        orient(c, d, b),
    );
    (o1 * o2 <= 0.0) && (o3 * o4 <= 0.0)
}

/// Two simple polygons overlap: a vertex of one inside the other, or two
/// edges cross.
fn polygons_overlap(a: &[(f64, f64)], b: &[(f64, f64)]) -> bool {
    if a.iter().any(|p| inside(b, *p)) || b.iter().any(|p| inside(a, *p)) {
        return true;
    }
    let (na, nb) = (a.len(), b.len());
    (0..na).any(|i| (0..nb).any(|j| segments_cross(a[i], a[(i + 1) % na], b[j], b[(j + 1) % nb])))
}

/// Whether two RA arcs (start, end; end < start wraps) overlap.
fn arcs_overlap(a: (f64, f64), b: (f64, f64)) -> bool {
    let within = |x: f64, (s, e): (f64, f64)| {
        if s <= e {
            x >= s && x <= e
        } else {
            x >= s || x <= e
        }
    };
    within(a.0, b) || within(a.1, b) || within(b.0, a) || within(b.1, a)
}

/// A closed numeric interval; `lo > hi` never matches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval(pub f64, pub f64);

impl Interval {
    /// `lo hi` or one number; `-Inf`, `+Inf`, `Inf`, `NaN` are understood
    /// as DALI writes them (NaN means an open end).
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let num = |t: &str, open: f64| -> Result<f64, String> {
            match t.to_ascii_lowercase().as_str() {
                "-inf" => Ok(f64::NEG_INFINITY),
                "inf" | "+inf" => Ok(f64::INFINITY),
                "nan" => Ok(open),
                _ => t
                    .parse::<f64>()
                    .map_err(|_| format!("{t:?} is not a number")),
            }
        };
        match parts[..] {
            [one] => {
                let v = num(one, f64::NAN)?;
                Ok(Self(v, v))
            }
            [lo, hi] => {
                let (lo, hi) = (num(lo, f64::NEG_INFINITY)?, num(hi, f64::INFINITY)?);
                if lo > hi {
                    return Err(format!("the interval {lo} {hi} is empty (lo > hi)"));
                }
                Ok(Self(lo, hi))
            }
            _ => Err(format!(
                "{text:?} is not an interval; write `lo hi` or one value (-Inf/+Inf for open ends)"
            )),
        }
    }

    /// Whether `[lo, hi]` meets this interval.
    pub fn meets(&self, lo: f64, hi: f64) -> bool {
        !(hi < self.0 || lo > self.1)
    }
}

/// A parsed SIA v2 query.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// POS regions (OR).
    pub pos: Vec<Region>,
    /// BAND intervals, metres (OR).
    pub band: Vec<Interval>,
    /// TIME intervals, MJD (OR).
    pub time: Vec<Interval>,
    /// EXPTIME intervals, seconds.
    pub exptime: Vec<Interval>,
    /// FOV intervals, degrees.
    pub fov: Vec<Interval>,
    /// SPATRES intervals, arcsec (as `s_resolution`).
    pub spatres: Vec<Interval>,
    /// TIMERES intervals, seconds (as `t_resolution`).
    pub timeres: Vec<Interval>,
    /// SPECRP intervals (as `em_res_power`).
    pub specrp: Vec<Interval>,
    /// Whether POL was given: no wisecut frame has polarisation states,
    /// so nothing matches.
    pub impossible: bool,
    /// How the answer is written.
    pub response: super::VoTableFormat,
    /// INFOs about the request (RUNID, parameters ignored as DALI asks).
    pub infos: Vec<super::votable::Info>,
    /// Publisher DIDs.
    pub id: Vec<String>,
    /// Classes (COLLECTION).
    pub collection: Vec<FrameClass>,
    /// Facility names.
    pub facility: Vec<String>,
    /// Instrument names.
    pub instrument: Vec<String>,
    /// Data product types.
    pub dptype: Vec<String>,
    /// Calibration levels.
    pub calib: Vec<i64>,
    /// Target names.
    pub target: Vec<String>,
    /// Formats (MIME types).
    pub format: Vec<String>,
    /// Rows to return.
    pub maxrec: u64,
}

impl Query {
    /// Parses the parameters; errors name the parameter and what is
    /// allowed.
    pub fn parse(p: &DalParams) -> Result<Self, String> {
        let mut q = Query {
            maxrec: DEFAULT_MAXREC,
            ..Default::default()
        };
        for v in p.all("POS") {
            q.pos
                .push(Region::parse(v).map_err(|e| format!("POS: {e}"))?);
        }
        let intervals = |name: &str| -> Result<Vec<Interval>, String> {
            p.all(name)
                .into_iter()
                .map(|v| Interval::parse(v).map_err(|e| format!("{name}: {e}")))
                .collect()
        };
        q.band = intervals("BAND")?;
        q.time = intervals("TIME")?;
        q.exptime = intervals("EXPTIME")?;
        q.fov = intervals("FOV")?;
        q.spatres = intervals("SPATRES")?;
        q.timeres = intervals("TIMERES")?;
        q.specrp = intervals("SPECRP")?;
        if !p.all("POL").is_empty() {
            q.impossible = true;
        }
        q.id = p.all("ID").into_iter().map(str::to_owned).collect();
        for c in p.all("COLLECTION") {
            q.collection.push(
                c.parse::<FrameClass>()
                    .map_err(|e| format!("COLLECTION: {e}"))?,
            );
        }
        let lower = |name: &str| -> Vec<String> {
            p.all(name)
                .into_iter()
                .map(|v| v.trim().to_ascii_lowercase())
                .collect()
        };
        q.facility = lower("FACILITY");
        q.instrument = lower("INSTRUMENT");
        q.dptype = lower("DPTYPE");
        q.target = lower("TARGET");
        q.format = lower("FORMAT");
        for c in p.all("CALIB") {
            let level: i64 = c
                .trim()
                .parse()
                .ok()
                .filter(|l| (0..=4).contains(l))
                .ok_or_else(|| {
                    format!("CALIB: {c:?} is not a calibration level; allowed: 0, 1, 2, 3, 4")
                })?;
            q.calib.push(level);
        }
        if let Some(m) = p.one("MAXREC")? {
            q.maxrec = m.trim().parse().map_err(|_| {
                format!("MAXREC: {m:?} is not a row count; allowed: 0 to any integer (at most {MAX_MAXREC} rows are returned)")
            })?;
        }
        q.response = super::VoTableFormat::parse(p.one("RESPONSEFORMAT")?, super::votable::MIME)?;
        q.infos = super::request_infos(p, PARAMS);
        Ok(q)
    }

    /// The sky-index cells of the POS constraints (their union), or `None`
    /// when there is no POS or one region is too large for the index.
    pub fn cells(&self) -> Option<Vec<i64>> {
        if self.pos.is_empty() {
            return None;
        }
        let mut cells = Vec::new();
        for region in &self.pos {
            cells.extend(region.cells()?);
        }
        cells.sort_unstable();
        cells.dedup();
        Some(cells)
    }

    /// Whether a frame satisfies every constraint.
    pub fn matches(&self, f: &Frame) -> bool {
        self.matches_record(f, &ObsRecord::of(f))
    }

    /// Whether a frame, described by `r` (its ObsCore record), satisfies
    /// every constraint: each parameter is tested on the column it
    /// constrains (SIA 2.0 §2.2), so what SIA finds is what the answer
    /// and TAP's ObsCore say of the frame.
    pub fn matches_record(&self, f: &Frame, r: &ObsRecord) -> bool {
        if self.impossible {
            return false;
        }
        let any = |list: &[String], value: Option<&str>| {
            list.is_empty()
                || value.is_some_and(|v| list.iter().any(|x| *x == v.trim().to_ascii_lowercase()))
        };
        // An interval constraint on a column that is null never matches.
        let within = |list: &[Interval], value: Option<f64>| {
            list.is_empty() || value.is_some_and(|v| list.iter().any(|t| t.meets(v, v)))
        };
        if !self.collection.is_empty() && !self.collection.contains(&f.class) {
            return false;
        }
        if !self.id.is_empty()
            && !self
                .id
                .iter()
                .any(|i| obscore::parse_ivoid(i) == Some(r.object_id))
        {
            return false;
        }
        if !any(&self.instrument, r.instrument_name.as_deref())
            || !any(&self.target, r.target_name.as_deref())
            || !any(&self.dptype, Some("image"))
            || !any(&self.facility, r.facility_name.as_deref())
        {
            return false;
        }
        if !self.format.is_empty()
            && !self
                .format
                .iter()
                .any(|m| m == "image/fits" || m == "application/fits" || m == "all")
        {
            return false;
        }
        if !self.calib.is_empty() && !self.calib.contains(&r.calib_level) {
            return false;
        }
        if !self.pos.is_empty() {
            let Some(c) = &r.s_region else { return false };
            if !self.pos.iter().any(|reg| reg.overlaps(c)) {
                return false;
            }
        }
        if !self.band.is_empty() {
            let Some((lo, hi)) = r.em_range else {
                return false;
            };
            if !self.band.iter().any(|b| b.meets(lo, hi)) {
                return false;
            }
        }
        if !self.time.is_empty() {
            let Some((lo, hi)) = r.t_range else {
                return false;
            };
            if !self.time.iter().any(|t| t.meets(lo, hi)) {
                return false;
            }
        }
        within(&self.exptime, r.t_exptime)
            && within(&self.fov, r.s_fov)
            && within(&self.spatres, r.s_resolution)
            && within(&self.timeres, r.t_resolution)
            && within(&self.specrp, r.em_res_power)
    }
}

/// The ObsCore fields of an answer, in order.
pub fn obscore_fields() -> Vec<Field> {
    use DataType::{Char, Double, Long};
    let f = |name: &str, dt: DataType, unit: &str, ucd: &str, utype: &str| {
        Field::new(name, dt)
            .unit(unit)
            .ucd(ucd)
            .utype(&format!("obscore:{utype}"))
    };
    vec![
        f(
            "dataproduct_type",
            Char,
            "",
            "meta.code.class",
            "ObsDataset.dataProductType",
        ),
        f(
            "calib_level",
            Long,
            "",
            "meta.code;obs.calib",
            "ObsDataset.calibLevel",
        ),
        f("obs_collection", Char, "", "meta.id", "DataID.Collection"),
        f("obs_id", Char, "", "meta.id", "DataID.observationID"),
        f(
            "obs_publisher_did",
            Char,
            "",
            // ObsCore 1.1 erratum 1: an IVOA identifier.
            "meta.ref.ivoid",
            "Curation.PublisherDID",
        )
        .id("obs_publisher_did"),
        f("access_url", Char, "", "meta.ref.url", "Access.Reference"),
        f("access_format", Char, "", "meta.code.mime", "Access.Format"),
        f(
            "access_estsize",
            Long,
            "kbyte",
            "phys.size;meta.file",
            "Access.Size",
        ),
        f("target_name", Char, "", "meta.id;src", "Target.Name"),
        f(
            "s_ra",
            Double,
            "deg",
            "pos.eq.ra",
            "Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C1",
        )
        .reference("icrs"),
        f(
            "s_dec",
            Double,
            "deg",
            "pos.eq.dec",
            "Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C2",
        )
        .reference("icrs"),
        f(
            "s_fov",
            Double,
            "deg",
            "phys.angSize;instr.fov",
            "Char.SpatialAxis.Coverage.Bounds.Extent.diameter",
        ),
        f(
            "s_region",
            Double,
            "deg",
            "pos.outline;obs.field",
            "Char.SpatialAxis.Coverage.Support.Area",
        )
        .arraysize("*")
        .xtype("polygon")
        .reference("icrs"),
        f(
            "s_resolution",
            Double,
            "arcsec",
            "pos.angResolution",
            "Char.SpatialAxis.Resolution.Refval.value",
        ),
        f(
            "s_xel1",
            Long,
            "",
            "meta.number",
            "Char.SpatialAxis.numBins1",
        ),
        f(
            "s_xel2",
            Long,
            "",
            "meta.number",
            "Char.SpatialAxis.numBins2",
        ),
        f(
            "t_min",
            Double,
            "d",
            "time.start;obs.exposure",
            "Char.TimeAxis.Coverage.Bounds.Limits.StartTime",
        ),
        f(
            "t_max",
            Double,
            "d",
            "time.end;obs.exposure",
            "Char.TimeAxis.Coverage.Bounds.Limits.StopTime",
        ),
        f(
            "t_exptime",
            Double,
            "s",
            "time.duration;obs.exposure",
            "Char.TimeAxis.Coverage.Support.Extent",
        ),
        f(
            "t_resolution",
            Double,
            "s",
            "time.resolution",
            "Char.TimeAxis.Resolution.Refval.value",
        ),
        f("t_xel", Long, "", "meta.number", "Char.TimeAxis.numBins"),
        f(
            "em_min",
            Double,
            "m",
            "em.wl;stat.min",
            "Char.SpectralAxis.Coverage.Bounds.Limits.LoLimit",
        ),
        f(
            "em_max",
            Double,
            "m",
            "em.wl;stat.max",
            "Char.SpectralAxis.Coverage.Bounds.Limits.HiLimit",
        ),
        f(
            "em_res_power",
            Double,
            "",
            "spect.resolution",
            "Char.SpectralAxis.Resolution.ResolPower.refVal",
        ),
        f(
            "em_xel",
            Long,
            "",
            "meta.number",
            "Char.SpectralAxis.numBins",
        ),
        f("o_ucd", Char, "", "meta.ucd", "Char.ObservableAxis.ucd"),
        f(
            "pol_states",
            Char,
            "",
            "meta.code;phys.polarization",
            "Char.PolarizationAxis.stateList",
        ),
        f(
            "pol_xel",
            Long,
            "",
            "meta.number",
            "Char.PolarizationAxis.numBins",
        ),
        f(
            "facility_name",
            Char,
            "",
            "meta.id;instr.tel",
            "Provenance.ObsConfig.Facility.name",
        ),
        f(
            "instrument_name",
            Char,
            "",
            "meta.id;instr",
            "Provenance.ObsConfig.Instrument.name",
        ),
        Field::new("object_id", Long)
            .ucd("meta.id")
            .describe("wisecut object id"),
        Field::new("filter", Char).ucd("meta.id;instr.filter"),
        Field::new("chip", Char).ucd("meta.id;instr.det"),
        Field::new("preview", Char)
            .ucd("meta.ref.url;meta.preview")
            .describe("JPEG preview of the whole frame"),
        Field::new("datalink", Char)
            .ucd("meta.ref.url")
            .describe("DataLink links of this frame (cutouts, previews, lineage)"),
    ]
}

/// One frame as an ObsCore row (same order as [`obscore_fields`]).
pub fn obscore_row(f: &Frame, base: &str) -> Vec<Cell> {
    let r = ObsRecord::of(f);
    let id = r.object_id;
    let text = |s: Option<&str>| s.map_or(Cell::Null, |v| Cell::Text(v.to_owned()));
    let float = |v: Option<f64>| v.map_or(Cell::Null, Cell::Float);
    vec![
        Cell::Text("image".into()),
        Cell::Int(r.calib_level),
        Cell::Text(r.obs_collection.into()),
        Cell::Text(r.obs_id.clone()),
        Cell::Text(r.obs_publisher_did.clone()),
        Cell::Text(format!("{base}/data/{}", id.0)),
        Cell::Text("image/fits".into()),
        Cell::Int(r.access_estsize),
        text(r.target_name.as_deref()),
        float(r.s_centre.map(|c| c.0)),
        float(r.s_centre.map(|c| c.1)),
        float(r.s_fov),
        r.s_region
            .as_deref()
            .map_or(Cell::Null, |c| Cell::Text(obscore::polygon_text(c))),
        float(r.s_resolution),
        Cell::Int(r.s_xel.0),
        Cell::Int(r.s_xel.1),
        float(r.t_range.map(|t| t.0)),
        float(r.t_range.map(|t| t.1)),
        float(r.t_exptime),
        float(r.t_resolution),
        Cell::Int(1),
        float(r.em_range.map(|e| e.0)),
        float(r.em_range.map(|e| e.1)),
        float(r.em_res_power),
        Cell::Int(1),
        Cell::Text("phot.count".into()),
        Cell::Null,
        Cell::Int(1),
        text(r.facility_name.as_deref()),
        text(r.instrument_name.as_deref()),
        Cell::Int(id.0),
        text(r.filter.as_deref()),
        text(r.chip.as_deref()),
        Cell::Text(format!("{base}/thumb/{}", id.0)),
        Cell::Text(super::datalink::links_url(base, &r.obs_publisher_did)),
    ]
}

/// The answer to a query: `frames` already filtered, cut at MAXREC.
pub fn answer(frames: &[Frame], q: &Query, base: &str) -> Document {
    let limit = q.maxrec.min(MAX_MAXREC) as usize;
    let overflow = frames.len() > limit;
    let rows: Vec<Vec<Cell>> = frames
        .iter()
        .take(limit)
        .map(|f| obscore_row(f, base))
        .collect();
    let fields = obscore_fields();
    Document {
        description: "wisecut SIA 2.0 query result (ObsCore 1.1 columns)".into(),
        icrs: true,
        infos: [
            if overflow {
                QueryStatus::Overflow
            } else {
                QueryStatus::Ok
            }
            .info(),
            super::votable::Info::new("request", "SIA 2.0 query"),
        ]
        .into_iter()
        .chain(q.infos.iter().cloned())
        .collect(),
        params: vec![],
        table_name: "results".into(),
        fields,
        rows,
        services: vec![
            super::datalink::links_descriptor(base, "obs_publisher_did"),
            super::datalink::soda_descriptor(
                base,
                "soda",
                super::datalink::SodaDataset::Column("obs_publisher_did"),
            ),
        ],
        // One QUERY_STATUS, before the table: the whole answer is known
        // before it is written.
        trailing_infos: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(ra: f64, dec: f64, half: f64) -> Vec<(f64, f64)> {
        vec![
            (ra - half, dec - half),
            (ra + half, dec - half),
            (ra + half, dec + half),
            (ra - half, dec + half),
        ]
    }

    #[test]
    fn circles_touch_frames_by_corner_edge_and_inside() {
        let frame = square(150.0, 2.0, 0.1);
        assert!(Region::Circle(150.0, 2.0, 0.01).overlaps(&frame)); // inside
        assert!(Region::Circle(150.0, 2.15, 0.06).overlaps(&frame)); // edge
        assert!(!Region::Circle(150.0, 2.15, 0.04).overlaps(&frame));
        assert!(!Region::Circle(151.0, 2.0, 0.5).overlaps(&frame));
    }

    #[test]
    fn ranges_wrap_through_zero() {
        let frame = square(0.05, 0.0, 0.1);
        assert!(Region::Range(359.0, 0.01, -1.0, 1.0).overlaps(&frame));
        assert!(!Region::Range(1.0, 2.0, -1.0, 1.0).overlaps(&frame));
        assert!(!Region::Range(359.0, 0.01, 0.2, 1.0).overlaps(&frame));
        assert!(Region::Range(f64::NEG_INFINITY, f64::INFINITY, -0.5, 0.5).overlaps(&frame));
    }

    #[test]
    fn polygons_overlap_and_miss() {
        let frame = square(10.0, 10.0, 0.1);
        let hit = Region::parse("POLYGON 10.05 10.05 10.5 10.05 10.5 10.5").unwrap();
        let miss = Region::parse("POLYGON 11 11 12 11 12 12").unwrap();
        assert!(hit.overlaps(&frame));
        assert!(!miss.overlaps(&frame));
    }

    #[test]
    fn bow_tie_polygons_are_refused_and_simple_ones_kept() {
        let e = Region::parse("POLYGON 10 10 11 11 11 10 10 11").unwrap_err();
        assert!(e.contains("cross"), "{e}");
        assert!(Region::parse("POLYGON 10 10 11 10 11 11 10 11").is_ok());
        // Clockwise is as good as anticlockwise.
        assert!(Region::parse("POLYGON 10 11 11 11 11 10 10 10").is_ok());
        // A concave (but simple) polygon is allowed.
        assert!(Region::parse("POLYGON 10 10 12 10 11 10.5 12 11 10 11").is_ok());
        let e = Region::parse("POLYGON 10 10 10 10 11 11").unwrap_err();
        assert!(e.contains("same point"), "{e}");
    }

    #[test]
    fn malformed_shapes_say_what_is_allowed() {
        assert!(
            Region::parse("CIRCLE 1 2")
                .unwrap_err()
                .contains("3 numbers")
        );
        assert!(
            Region::parse("CIRCLE 1 95 1")
                .unwrap_err()
                .contains("-90..90")
        );
        assert!(
            Region::parse("BOX 1 2 3 4")
                .unwrap_err()
                .contains("allowed")
        );
        assert!(
            Region::parse("POLYGON 1 2 3")
                .unwrap_err()
                .contains("vertices")
        );
        assert!(
            Region::parse("CIRCLE a b c")
                .unwrap_err()
                .contains("not a number")
        );
    }

    #[test]
    fn intervals_accept_open_ends() {
        let i = Interval::parse("-Inf 5e-7").unwrap();
        assert!(i.meets(1e-7, 2e-7) && !i.meets(6e-7, 7e-7));
        assert!(Interval::parse("3 1").is_err());
        assert_eq!(Interval::parse("4").unwrap(), Interval(4.0, 4.0));
    }
}
