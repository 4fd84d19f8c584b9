//! ADQL geometry in SQL: POINT, CIRCLE, convex POLYGON, the `s_region`
//! footprints of `ivoa.ObsCore`, and the predicates and functions over them.
//!
//! All tests are written with unit vectors so they need no projection in
//! SQL:
//! - point in circle: the haversine term `h = sin²(Δδ/2) + cos δ₁ cos δ₂
//!   sin²(Δα/2)` against `sin²(r/2)` (the same formula as
//!   [`crate::imaging::sphere::separation_deg`], exact at small radii);
//! - point in convex polygon: on the inner side of every edge's great
//!   circle (`n · p ≥ 0` with inward normals), and within 90° of the
//!   polygon's mean direction;
//! - circle or polygon against a frame footprint: the spherical form of
//!   [`crate::vo::sia::Region::overlaps`] (see the module doc of
//!   [`super`]): for a circle, a corner within r, or (all corners in the
//!   circle's hemisphere and) the centre inside, or an edge arc within r
//!   (`|n̂·c| ≤ sin r` with the foot of the perpendicular between the
//!   edge's ends); for a polygon, a vertex of one inside the other, or two
//!   edges crossing (signs of triple products), all corners being in the
//!   polygon's hemisphere.

use sqlparser::ast::{BinaryOperator, Expr, Function, ObjectNamePart, Value as Lit};

use super::AdqlError;
use super::expr::{Tr, Ty, Typed, err};
use crate::catalog::sky_index;
use crate::catalog::sources::cone_ranges;
use crate::imaging::sphere::separation;

/// Most sky-index cells a TAP prefilter lists as bound values; a larger
/// shape keeps the declination prefilter alone.
const MAX_LISTED_CELLS: usize = 500;

/// Corners of a frame footprint in the `obscore` helper columns.
pub const CORNERS: usize = 4;

/// A point: SQL for RA and Dec (degrees), constant when both are.
#[derive(Clone)]
struct Pt<'a> {
    ra: Typed<'a>,
    dec: Typed<'a>,
}

impl Pt<'_> {
    fn konst(&self) -> Option<(f64, f64)> {
        self.ra.konst.zip(self.dec.konst)
    }
}

/// A convex polygon with constant vertices.
struct Poly {
    units: Vec<[f64; 3]>,
    /// Inward unit normals of the edges (vertex i to i+1).
    normals: Vec<[f64; 3]>,
    /// Mean direction of the vertices, as (ra, dec), and the largest
    /// distance from it to a vertex (degrees): the bounding cone.
    centre: (f64, f64),
    radius: f64,
}

enum Geom<'a> {
    Point(Pt<'a>),
    Circle(Pt<'a>, Typed<'a>),
    Polygon(Poly),
    /// The footprint of the frame of FROM item `instance` (ObsCore).
    Region(String),
}

type V3 = [String; 3];

fn unit(ra: f64, dec: f64) -> [f64; 3] {
    let (a, d) = (ra.to_radians(), dec.to_radians());
    [d.cos() * a.cos(), d.cos() * a.sin(), d.sin()]
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn dotf(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn dot(a: &V3, b: &V3) -> String {
    format!(
        "({} * {} + {} * {} + {} * {})",
        a[0], b[0], a[1], b[1], a[2], b[2]
    )
}

fn any(v: Vec<String>) -> String {
    format!("({})", v.join(" OR "))
}

fn all(v: Vec<String>) -> String {
    format!("({})", v.join(" AND "))
}

impl Poly {
    fn new(vertices: Vec<(f64, f64)>) -> Result<Self, AdqlError> {
        if vertices.len() < 3 {
            return err("POLYGON needs at least 3 vertices");
        }
        for (r, d) in &vertices {
            if !r.is_finite() || !(-90.0..=90.0).contains(d) {
                return err(format!(
                    "POLYGON vertex ({r}, {d}) is not a position: RA finite, Dec in -90..90"
                ));
            }
        }
        let units: Vec<[f64; 3]> = vertices.iter().map(|(r, d)| unit(*r, *d)).collect();
        let mut m = [0.0; 3];
        for u in &units {
            for k in 0..3 {
                m[k] += u[k];
            }
        }
        let norm = dotf(m, m).sqrt();
        if norm < 1e-9 {
            return err("POLYGON vertices surround the sphere: it must fit in a hemisphere");
        }
        let m = [m[0] / norm, m[1] / norm, m[2] / norm];
        if units.iter().any(|u| dotf(*u, m) <= 1e-9) {
            return err(
                "POLYGON must fit within a hemisphere (every vertex less than 90° from the others' mean)",
            );
        }
        let n = units.len();
        let mut normals = Vec::with_capacity(n);
        for i in 0..n {
            let c = cross(units[i], units[(i + 1) % n]);
            let len = dotf(c, c).sqrt();
            if len < 1e-15 {
                return err(format!(
                    "POLYGON repeats vertex {} (or has two opposite ones): give distinct corners",
                    i + 1
                ));
            }
            normals.push([c[0] / len, c[1] / len, c[2] / len]);
        }
        // Inward normals: the mean direction must be inside every edge.
        let signs: Vec<f64> = normals.iter().map(|nv| dotf(*nv, m)).collect();
        let flip = if signs.iter().all(|s| *s > 0.0) {
            false
        } else if signs.iter().all(|s| *s < 0.0) {
            true
        } else {
            return err(
                "POLYGON edges cross (a bow-tie) or it is not convex: give the corners of a convex polygon in order",
            );
        };
        if flip {
            for nv in &mut normals {
                *nv = [-nv[0], -nv[1], -nv[2]];
            }
        }
        // Convex: every vertex on the inner side of every edge.
        let tol = 1e-12;
        for nv in &normals {
            if units.iter().any(|u| dotf(*nv, *u) < -tol) {
                return err(
                    "POLYGON is not convex (or its edges cross): only convex polygons are supported; split it into convex parts joined with OR",
                );
            }
        }
        let centre = (
            m[1].atan2(m[0]).to_degrees().rem_euclid(360.0),
            m[2].clamp(-1.0, 1.0).asin().to_degrees(),
        );
        let radius = vertices
            .iter()
            .map(|v| separation(*v, centre))
            .fold(0.0, f64::max);
        Ok(Self {
            units,
            normals,
            centre,
            radius,
        })
    }
}

fn function_name(f: &Function) -> Option<String> {
    match &f.name.0[..] {
        [ObjectNamePart::Identifier(i)] => Some(i.value.to_ascii_uppercase()),
        _ => None,
    }
}

/// Whether `e` is the literal 0 or 1.
fn zero_or_one(e: &Expr) -> Option<bool> {
    match e {
        Expr::Value(v) => match &v.value {
            Lit::Number(n, _) if n == "1" => Some(true),
            Lit::Number(n, _) if n == "0" => Some(false),
            _ => None,
        },
        Expr::Nested(x) => zero_or_one(x),
        _ => None,
    }
}

impl<'s, 'a> Tr<'s, 'a> {
    /// The coordinate-system argument, if `args` starts with one.
    fn coord_sys<'f>(&self, args: &'f [&'f Expr], what: &str) -> Result<&'f [&'f Expr], AdqlError> {
        if let Some(Expr::Value(v)) = args.first().copied()
            && let Lit::SingleQuotedString(s) = &v.value
        {
            let s = s.trim().to_ascii_uppercase();
            if s.is_empty() || s == "ICRS" || s.starts_with("ICRS ") {
                return Ok(&args[1..]);
            }
            return err(format!(
                "{what}: coordinate system '{}' is not supported: positions are ICRS; write 'ICRS' or ''",
                crate::params::shown(&s)
            ));
        }
        Ok(args)
    }

    fn point_args(&mut self, args: &[&Expr], what: &str) -> Result<Pt<'a>, AdqlError> {
        let [ra, dec] = args else {
            return err(format!(
                "{what} takes ra and dec (degrees), optionally after a coordinate system"
            ));
        };
        let (ra, dec) = (self.float_num(ra)?, self.float_num(dec)?);
        Ok(Pt { ra, dec })
    }

    fn float_num(&mut self, e: &Expr) -> Result<Typed<'a>, AdqlError> {
        let t = self.value(e)?;
        if !matches!(t.ty, Ty::Int | Ty::Float) {
            return err(format!(
                "\"{e}\" is {}, but a number of degrees is needed",
                match t.ty {
                    Ty::Text => "text",
                    _ => "NULL",
                }
            ));
        }
        Ok(t)
    }

    fn geom(&mut self, e: &Expr) -> Result<Geom<'a>, AdqlError> {
        match e {
            Expr::Nested(x) => self.geom(x),
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => {
                let ids = match e {
                    Expr::Identifier(i) => vec![i.clone()],
                    Expr::CompoundIdentifier(v) => v.clone(),
                    _ => unreachable!(),
                };
                let c = self.scope.column(&ids)?;
                let inst = &self.scope.instances[c.instance];
                if inst.table.qualified_name() == "ivoa.ObsCore" && c.column.name == "s_region" {
                    Ok(Geom::Region(inst.sql_alias.clone()))
                } else {
                    err(format!(
                        "column \"{e}\" is not a geometry; the only geometry column is ivoa.ObsCore.s_region (use POINT(ra, dec) for positions)"
                    ))
                }
            }
            Expr::Function(f) => {
                let name = function_name(f).unwrap_or_default();
                let (args, _, _) = self.args(f)?;
                match name.as_str() {
                    "POINT" => {
                        let rest = self.coord_sys(&args, "POINT")?;
                        Ok(Geom::Point(self.point_args(rest, "POINT")?))
                    }
                    "CIRCLE" => {
                        let rest = self.coord_sys(&args, "CIRCLE")?;
                        let (centre, r) = match rest {
                            [p, r] => match self.geom(p)? {
                                Geom::Point(p) => (p, *r),
                                _ => {
                                    return err(
                                        "CIRCLE(POINT(ra, dec), radius): the centre must be a POINT",
                                    );
                                }
                            },
                            [ra, dec, r] => (self.point_args(&[ra, dec], "CIRCLE")?, *r),
                            _ => {
                                return err(
                                    "CIRCLE takes ra, dec and radius in degrees (or a POINT and a radius)",
                                );
                            }
                        };
                        let r = self.float_num(r)?;
                        if let Some(v) = r.konst
                            && (v.is_nan() || v < 0.0)
                        {
                            return err(format!("CIRCLE radius {v} must be zero or more degrees"));
                        }
                        Ok(Geom::Circle(centre, r))
                    }
                    "POLYGON" => {
                        let rest = self.coord_sys(&args, "POLYGON")?;
                        let mut coords = Vec::new();
                        for a in rest {
                            match a {
                                Expr::Function(_) => match self.geom(a)? {
                                    Geom::Point(p) => coords.push(p),
                                    _ => return err("POLYGON takes POINTs or ra, dec numbers"),
                                },
                                _ => {
                                    coords.push(Pt {
                                        ra: self.float_num(a)?,
                                        dec: Typed::new(String::new(), Ty::Null),
                                    });
                                }
                            }
                        }
                        // Numbers come in ra, dec pairs.
                        let mut vertices = Vec::new();
                        let mut numbers = Vec::new();
                        for p in coords {
                            if p.dec.ty == Ty::Null {
                                numbers.push(p.ra.konst);
                            } else {
                                vertices.push(p.konst());
                            }
                        }
                        if !numbers.is_empty() && !vertices.is_empty() {
                            return err("POLYGON takes either POINTs or numbers, not both");
                        }
                        if !numbers.is_empty() {
                            if numbers.len() % 2 != 0 {
                                return err(format!(
                                    "POLYGON takes ra, dec pairs, got {} numbers",
                                    numbers.len()
                                ));
                            }
                            vertices = numbers.chunks(2).map(|c| c[0].zip(c[1])).collect();
                        }
                        let v: Option<Vec<(f64, f64)>> = vertices.into_iter().collect();
                        let Some(v) = v else {
                            return err("POLYGON vertices must be constant numbers (degrees)");
                        };
                        Ok(Geom::Polygon(Poly::new(v)?))
                    }
                    "BOX" | "REGION" => err(format!(
                        "{name} is not supported; geometries: POINT, CIRCLE, POLYGON (convex)"
                    )),
                    _ => err(format!(
                        "\"{}\" is not a geometry; geometries: POINT, CIRCLE, POLYGON, ivoa.ObsCore.s_region",
                        crate::params::shown(&e.to_string())
                    )),
                }
            }
            _ => err(format!(
                "\"{}\" is not a geometry; geometries: POINT, CIRCLE, POLYGON, ivoa.ObsCore.s_region",
                crate::params::shown(&e.to_string())
            )),
        }
    }

    /// The unit vector of a point as SQL (bound when constant).
    fn unit_sql(&mut self, p: &Pt<'a>) -> V3 {
        if let Some((ra, dec)) = p.konst() {
            let u = unit(ra, dec);
            return u.map(|c| self.sql.num(c));
        }
        let (ra, dec) = (&p.ra.sql, &p.dec.sql);
        [
            format!("(COS(RADIANS({dec})) * COS(RADIANS({ra})))"),
            format!("(COS(RADIANS({dec})) * SIN(RADIANS({ra})))"),
            format!("SIN(RADIANS({dec}))"),
        ]
    }

    fn const_unit(&mut self, u: [f64; 3]) -> V3 {
        u.map(|c| self.sql.num(c))
    }

    /// The haversine term of two points.
    fn haversine(&self, a: &Pt<'a>, b: &Pt<'a>) -> String {
        format!(
            "(POWER(SIN(RADIANS({d2} - {d1}) / 2), 2) + COS(RADIANS({d1})) * COS(RADIANS({d2})) * POWER(SIN(RADIANS({r2} - {r1}) / 2), 2))",
            d1 = a.dec.sql,
            d2 = b.dec.sql,
            r1 = a.ra.sql,
            r2 = b.ra.sql
        )
    }

    /// DISTANCE in degrees.
    fn distance(&self, a: &Pt<'a>, b: &Pt<'a>) -> String {
        let least = if self.sql.pg() { "LEAST" } else { "MIN" };
        format!(
            "DEGREES(2 * ASIN({least}(1.0, SQRT({}))))",
            self.haversine(a, b)
        )
    }

    /// `sin²(r/2)` of a radius, the bound of the haversine term.
    fn half_chord(&mut self, r: &Typed<'a>) -> String {
        match r.konst {
            Some(v) => {
                let h = if v >= 180.0 {
                    1.0
                } else {
                    (v.to_radians() / 2.0).sin().powi(2)
                };
                self.sql.num(h)
            }
            None => format!("POWER(SIN(RADIANS({}) / 2), 2)", r.sql),
        }
    }

    /// The `source.hpx` ranges of a cone as an SQL condition on the
    /// `wisecut.sources` instance whose ra, dec the point is, if it is one.
    fn hpx_prefilter(&mut self, p: &Pt<'a>, ra: f64, dec: f64, r: f64) -> Option<String> {
        let (a, b) = (p.ra.col.as_ref()?, p.dec.col.as_ref()?);
        if a.instance != b.instance || a.column.name != "ra" || b.column.name != "dec" {
            return None;
        }
        let inst = &self.scope.instances[a.instance];
        if inst.table.qualified_name() != "wisecut.sources" || r >= 30.0 {
            return None;
        }
        let ranges = cone_ranges(ra, dec, r);
        if ranges.is_empty() {
            return Some("(1 = 0)".into());
        }
        let alias = inst.sql_alias.clone();
        let parts: Vec<String> = ranges
            .iter()
            .map(|(lo, hi)| {
                format!(
                    "({alias}.hpx >= {} AND {alias}.hpx < {})",
                    self.sql.bind(*lo),
                    self.sql.bind(*hi)
                )
            })
            .collect();
        Some(any(parts))
    }

    fn point_in_circle(&mut self, p: &Pt<'a>, c: &Pt<'a>, r: &Typed<'a>) -> String {
        let k = self.half_chord(r);
        let exact = format!("({} <= {k})", self.haversine(p, c));
        match (c.konst(), r.konst) {
            (Some((ra, dec)), Some(rv)) => match self.hpx_prefilter(p, ra, dec, rv) {
                Some(pre) => format!("({pre} AND {exact})"),
                None => exact,
            },
            _ => exact,
        }
    }

    fn point_in_polygon(&mut self, p: &Pt<'a>, poly: &Poly) -> String {
        let u = self.unit_sql(p);
        let mean = self.const_unit(unit(poly.centre.0, poly.centre.1));
        let mut terms = vec![format!("({} > 0)", dot(&u, &mean))];
        for nv in &poly.normals {
            let n = self.const_unit(*nv);
            terms.push(format!("({} >= 0)", dot(&n, &u)));
        }
        let exact = all(terms);
        match self.hpx_prefilter(p, poly.centre.0, poly.centre.1, poly.radius + 1e-9) {
            Some(pre) => format!("({pre} AND {exact})"),
            None => exact,
        }
    }

    /// The corner, normal and edge-cosine columns of a footprint.
    fn frame_cols(alias: &str) -> (Vec<V3>, Vec<V3>, Vec<String>) {
        let v = |p: &str, k: usize| {
            [
                format!("{alias}.{p}{k}x"),
                format!("{alias}.{p}{k}y"),
                format!("{alias}.{p}{k}z"),
            ]
        };
        (
            (1..=CORNERS).map(|k| v("c", k)).collect(),
            (1..=CORNERS).map(|k| v("n", k)).collect(),
            (1..=CORNERS).map(|k| format!("{alias}.e{k}")).collect(),
        )
    }

    /// The frame's dec bounds meet [lo, hi] (index-backed prefilter), and,
    /// when `cells` (the query shape's sky-index cells) are few enough to
    /// list, the frame shares one of them: the sky index (`frame_cell`)
    /// then names the few candidate rows and the exact test runs on those.
    fn dec_prefilter(&mut self, alias: &str, lo: f64, hi: f64, cells: Option<Vec<i64>>) -> String {
        let dec = format!(
            "({alias}.dec_max >= {} AND {alias}.dec_min <= {})",
            self.sql.num(lo),
            self.sql.num(hi)
        );
        match cells.filter(|c| !c.is_empty() && c.len() <= MAX_LISTED_CELLS) {
            Some(cells) => {
                let list: Vec<String> = cells.into_iter().map(|c| self.sql.bind(c)).collect();
                format!(
                    "({dec} AND {alias}.frame_id IN (SELECT frame_id FROM frame_cell WHERE cell IN ({})))",
                    list.join(", ")
                )
            }
            None => dec,
        }
    }

    fn point_in_region(&mut self, p: &Pt<'a>, alias: &str) -> String {
        let (c, n, _) = Self::frame_cols(alias);
        let u = self.unit_sql(p);
        let mut terms: Vec<String> = c
            .iter()
            .map(|ck| format!("({} > 0)", dot(ck, &u)))
            .collect();
        terms.extend(n.iter().map(|nk| format!("({} >= 0)", dot(nk, &u))));
        let exact = all(terms);
        match p.konst() {
            Some((ra, dec)) => format!(
                "({} AND {exact})",
                self.dec_prefilter(alias, dec, dec, Some(vec![sky_index::point_cell(ra, dec)]))
            ),
            None => exact,
        }
    }

    fn circle_meets_region(&mut self, centre: &Pt<'a>, r: &Typed<'a>, alias: &str) -> String {
        let (c, n, e) = Self::frame_cols(alias);
        let p = self.unit_sql(centre);
        // A corner within r: chord² ≤ 4 sin²(r/2).
        let k = self.half_chord(r);
        let corner: Vec<String> = c
            .iter()
            .map(|ck| {
                format!(
                    "((({a0} - {p0}) * ({a0} - {p0}) + ({a1} - {p1}) * ({a1} - {p1}) + ({a2} - {p2}) * ({a2} - {p2})) <= 4 * {k})",
                    a0 = ck[0],
                    a1 = ck[1],
                    a2 = ck[2],
                    p0 = p[0],
                    p1 = p[1],
                    p2 = p[2]
                )
            })
            .collect();
        let guard: Vec<String> = c
            .iter()
            .map(|ck| format!("({} > 0)", dot(ck, &p)))
            .collect();
        let inside: Vec<String> = n
            .iter()
            .map(|nk| format!("({} >= 0)", dot(nk, &p)))
            .collect();
        let sin_r = match r.konst {
            Some(v) => self.sql.num(v.min(90.0).to_radians().sin()),
            None => format!("SIN(RADIANS({}))", r.sql),
        };
        let mut edges = Vec::new();
        for i in 0..CORNERS {
            let j = (i + 1) % CORNERS;
            let (pa, pb) = (dot(&p, &c[i]), dot(&p, &c[j]));
            edges.push(format!(
                "(ABS({}) <= {sin_r} AND {pb} - {e} * {pa} >= 0 AND {pa} - {e} * {pb} >= 0)",
                dot(&n[i], &p),
                e = e[i]
            ));
        }
        let exact = format!(
            "({} OR ({} AND ({} OR {})))",
            any(corner),
            all(guard),
            all(inside),
            any(edges)
        );
        match (centre.konst(), r.konst) {
            (Some((ra, dec)), Some(rv)) => {
                let cells = sky_index::cone_cells(ra, dec, rv);
                format!(
                    "({} AND {exact})",
                    self.dec_prefilter(alias, dec - rv, dec + rv, cells)
                )
            }
            _ => exact,
        }
    }

    fn polygon_meets_region(&mut self, poly: &Poly, alias: &str) -> String {
        let (c, n, _) = Self::frame_cols(alias);
        let w: Vec<V3> = poly
            .units
            .clone()
            .into_iter()
            .map(|u| self.const_unit(u))
            .collect();
        let m: Vec<V3> = poly
            .normals
            .clone()
            .into_iter()
            .map(|u| self.const_unit(u))
            .collect();
        let mean = self.const_unit(unit(poly.centre.0, poly.centre.1));
        let guard: Vec<String> = c
            .iter()
            .map(|ck| format!("({} > 0)", dot(ck, &mean)))
            .collect();
        // A frame corner inside the polygon.
        let corner_in: Vec<String> = c
            .iter()
            .map(|ck| {
                all(m
                    .iter()
                    .map(|mj| format!("({} >= 0)", dot(mj, ck)))
                    .collect())
            })
            .collect();
        // A polygon vertex inside the frame.
        let vertex_in: Vec<String> = w
            .iter()
            .map(|wj| {
                all(n
                    .iter()
                    .map(|nk| format!("({} >= 0)", dot(nk, wj)))
                    .collect())
            })
            .collect();
        // Two edges crossing.
        let mut crossing = Vec::new();
        let nv = w.len();
        for k in 0..CORNERS {
            let k1 = (k + 1) % CORNERS;
            for j in 0..nv {
                let j1 = (j + 1) % nv;
                crossing.push(format!(
                    "({} * {} <= 0 AND {} * {} <= 0)",
                    dot(&n[k], &w[j]),
                    dot(&n[k], &w[j1]),
                    dot(&m[j], &c[k]),
                    dot(&m[j], &c[k1])
                ));
            }
        }
        let exact = format!(
            "({} AND ({} OR {} OR {}))",
            all(guard),
            any(corner_in),
            any(vertex_in),
            any(crossing)
        );
        let (ra, dec, r) = (poly.centre.0, poly.centre.1, poly.radius);
        // The polygon's bounding cone: its cells are a superset of the
        // polygon's.
        let cells = sky_index::cone_cells(ra, dec, r + 1e-9);
        format!(
            "({} AND {exact})",
            self.dec_prefilter(alias, dec - r, dec + r, cells)
        )
    }

    /// CONTAINS(a, b) or INTERSECTS(a, b) as a condition.
    fn spatial(&mut self, name: &str, a: &Expr, b: &Expr) -> Result<String, AdqlError> {
        let (ga, gb) = (self.geom(a)?, self.geom(b)?);
        use Geom::*;
        let contains = name == "CONTAINS";
        Ok(match (ga, gb) {
            (Point(p), Circle(c, r)) => self.point_in_circle(&p, &c, &r),
            (Circle(c, r), Point(p)) if !contains => self.point_in_circle(&p, &c, &r),
            (Point(p), Polygon(poly)) => self.point_in_polygon(&p, &poly),
            (Polygon(poly), Point(p)) if !contains => self.point_in_polygon(&p, &poly),
            (Point(p), Region(alias)) => self.point_in_region(&p, &alias),
            (Region(alias), Point(p)) if !contains => self.point_in_region(&p, &alias),
            (Circle(c, r), Region(alias)) | (Region(alias), Circle(c, r)) if !contains => {
                self.circle_meets_region(&c, &r, &alias)
            }
            (Polygon(poly), Region(alias)) | (Region(alias), Polygon(poly)) if !contains => {
                self.polygon_meets_region(&poly, &alias)
            }
            (Circle(c1, r1), Circle(c2, r2)) => {
                let d = self.distance(&c1, &c2);
                if contains {
                    format!("({d} + {} <= {})", r1.sql, r2.sql)
                } else {
                    format!("({d} <= {} + {})", r1.sql, r2.sql)
                }
            }
            _ => {
                return err(format!(
                    "{name} of these shapes is not supported; supported: CONTAINS(POINT, CIRCLE|POLYGON|s_region), CONTAINS(CIRCLE, CIRCLE), INTERSECTS(CIRCLE|POLYGON|POINT, s_region), INTERSECTS(CIRCLE, CIRCLE)"
                ));
            }
        })
    }

    /// DISTANCE, COORD1, COORD2.
    pub(crate) fn geometry_value(
        &mut self,
        name: &str,
        args: &[&Expr],
    ) -> Result<Typed<'a>, AdqlError> {
        let point = |tr: &mut Self, e: &Expr| -> Result<Pt<'a>, AdqlError> {
            match tr.geom(e)? {
                Geom::Point(p) => Ok(p),
                _ => err(format!("{name} takes POINTs")),
            }
        };
        let agg = |t: &Typed<'a>| t.aggregate;
        match (name, args) {
            ("DISTANCE", [a, b]) => {
                let (p, q) = (point(self, a)?, point(self, b)?);
                let g = agg(&p.ra) || agg(&p.dec) || agg(&q.ra) || agg(&q.dec);
                let mut t = Typed::new(self.distance(&p, &q), Ty::Float);
                t.aggregate = g;
                Ok(t)
            }
            ("DISTANCE", [r1, d1, r2, d2]) => {
                let p = self.point_args(&[r1, d1], "DISTANCE")?;
                let q = self.point_args(&[r2, d2], "DISTANCE")?;
                Ok(Typed::new(self.distance(&p, &q), Ty::Float))
            }
            ("COORD1" | "COORD2", [a]) => {
                let p = point(self, a)?;
                let c = if name == "COORD1" { p.ra } else { p.dec };
                let mut t = Typed::new(format!("({})", c.sql), Ty::Float);
                t.aggregate = c.aggregate;
                Ok(t)
            }
            _ => err(format!(
                "{name} takes {}",
                if name == "DISTANCE" {
                    "two POINTs (or ra1, dec1, ra2, dec2)"
                } else {
                    "one POINT"
                }
            )),
        }
    }
}

/// `CONTAINS(…) = 1` and friends; `None` when neither side is CONTAINS or
/// INTERSECTS.
pub(crate) fn predicate<'a>(
    tr: &mut Tr<'_, 'a>,
    left: &Expr,
    op: &BinaryOperator,
    right: &Expr,
) -> Result<Option<Typed<'a>>, AdqlError> {
    let spatial = |e: &Expr| match e {
        Expr::Function(f) => function_name(f).filter(|n| n == "CONTAINS" || n == "INTERSECTS"),
        _ => None,
    };
    let (call, other) = match (spatial(left), spatial(right)) {
        (Some(_), _) => (left, right),
        (_, Some(_)) => (right, left),
        _ => return Ok(None),
    };
    let Expr::Function(f) = call else {
        return Ok(None);
    };
    let name = function_name(f).unwrap_or_default();
    let truth = zero_or_one(other);
    let (Some(truth), BinaryOperator::Eq | BinaryOperator::NotEq) = (truth, op) else {
        return err(format!(
            "{name} must be compared with 1 or 0, e.g. {name}(POINT(ra, dec), CIRCLE(10, 20, 0.1)) = 1"
        ));
    };
    let (args, _, _) = tr.args(f)?;
    let [a, b] = args[..] else {
        return err(format!("{name} takes two geometries"));
    };
    let cond = tr.spatial(&name, a, b)?;
    let positive = truth == (*op == BinaryOperator::Eq);
    let sql = if positive {
        cond
    } else {
        format!("(NOT {cond})")
    };
    Ok(Some(Typed::new(sql, Ty::Bool)))
}

/// DISTANCE, COORD1, COORD2 as values.
pub(crate) fn value_function<'a>(
    tr: &mut Tr<'_, 'a>,
    name: &str,
    args: &[&Expr],
    _e: &Expr,
) -> Result<Typed<'a>, AdqlError> {
    tr.geometry_value(name, args)
}
