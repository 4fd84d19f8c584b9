//! SODA 1.0 `{sync}`: which pixels of a frame a request's region covers.
//!
//! `CIRCLE ra dec r`, `POLYGON ra dec …` and `POS` (DALI `CIRCLE`, `RANGE`
//! or `POLYGON`) describe a region of the sky; the answer is the smallest
//! pixel box of the frame containing the region, trimmed to the frame
//! ("the cutout is trimmed to the data", so no padding, unlike the cutout
//! API's fixed-size boxes). The region's boundary is sampled densely
//! enough (every 0.5 px along the sky) that its extreme pixels are found
//! under any projection, SIP distortion included.
//!
//! Several regions in one request are not combined: SODA allows a service
//! to reject what it cannot do, and a cutout of a union is not a box.

use super::DalParams;
use super::sia::Region;
use crate::imaging::wcs::Wcs;

/// The parameters `{sync}` understands (upper case).
pub const PARAMS: &[&str] = &["ID", "CIRCLE", "POLYGON", "POS", "RESPONSEFORMAT", "RUNID"];

/// A parsed request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The dataset.
    pub id: String,
    /// The region.
    pub region: Region,
}

impl Request {
    /// Parses and checks the parameters. Errors are the `UsageError` text
    /// without the prefix.
    pub fn parse(p: &DalParams) -> Result<Self, String> {
        // Parameters SODA does not know (RUNID included) are ignored, as
        // DALI asks; the answer is FITS, with no place to say so.
        let id = p
            .one("ID")?
            .ok_or("ID: missing; give the publisher DID of a frame (ivo://wisecut/obj?N)")?
            .to_owned();
        if let Some(f) = p.one("RESPONSEFORMAT")? {
            let f = f.trim().to_ascii_lowercase();
            if !(f == "fits" || f == "application/fits" || f == "image/fits") {
                return Err(format!(
                    "RESPONSEFORMAT: {f:?} is not supported; allowed: application/fits"
                ));
            }
        }
        let mut regions = Vec::new();
        for c in p.all("CIRCLE") {
            regions
                .push(Region::parse(&format!("CIRCLE {c}")).map_err(|e| format!("CIRCLE: {e}"))?);
        }
        for c in p.all("POLYGON") {
            regions
                .push(Region::parse(&format!("POLYGON {c}")).map_err(|e| format!("POLYGON: {e}"))?);
        }
        for c in p.all("POS") {
            regions.push(Region::parse(c).map_err(|e| format!("POS: {e}"))?);
        }
        match regions.len() {
            1 => Ok(Self {
                id,
                region: regions.remove(0),
            }),
            0 => Err(
                "no region; give one of CIRCLE=\"ra dec r\", POLYGON=\"ra1 dec1 ra2 dec2 ra3 dec3 …\", POS=\"CIRCLE …|RANGE …|POLYGON …\" (ICRS degrees)".into(),
            ),
            n => Err(format!(
                "{n} regions given; this service cuts one region per request (CIRCLE, POLYGON or POS)"
            )),
        }
    }
}

/// An inclusive pixel box, FITS 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelBox {
    /// First column.
    pub x0: usize,
    /// First row.
    pub y0: usize,
    /// Last column.
    pub x1: usize,
    /// Last row.
    pub y1: usize,
}

impl PixelBox {
    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.x1 - self.x0 + 1
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.y1 - self.y0 + 1
    }

    /// The centre the cutout API places a box of this size at so that its
    /// first pixel is `x0`, `y0` (its convention: first column
    /// `ceil(x − 1 − n/2)` in 0-based pixels).
    pub fn centre(&self) -> (f64, f64) {
        (
            self.x0 as f64 + self.width() as f64 / 2.0,
            self.y0 as f64 + self.height() as f64 / 2.0,
        )
    }
}

/// Sky points along the region's boundary, plus interior reference points,
/// spaced at most `step` degrees apart.
fn boundary(region: &Region, step: f64) -> Vec<(f64, f64)> {
    let along = |a: (f64, f64), b: (f64, f64), out: &mut Vec<(f64, f64)>| {
        // Linear in (ra, dec) after unwrapping RA: for the small regions of
        // cutouts this follows the edge to far better than a pixel.
        let mut db = b.0 - a.0;
        if db > 180.0 {
            db -= 360.0;
        } else if db < -180.0 {
            db += 360.0;
        }
        let len = (db * a.1.to_radians().cos()).hypot(b.1 - a.1);
        let n = ((len / step).ceil() as usize).clamp(1, 100_000);
        for i in 0..n {
            let t = i as f64 / n as f64;
            out.push(((a.0 + t * db).rem_euclid(360.0), a.1 + t * (b.1 - a.1)));
        }
    };
    let mut pts = Vec::new();
    match region {
        Region::Circle(ra, dec, r) => {
            let n = ((2.0 * std::f64::consts::PI * r / step).ceil() as usize).clamp(16, 200_000);
            let (ra0, dec0, rr) = (ra.to_radians(), dec.to_radians(), r.to_radians());
            for i in 0..n {
                let pa = 2.0 * std::f64::consts::PI * i as f64 / n as f64;
                // The point at distance r and position angle pa from the centre.
                let dec = (dec0.sin() * rr.cos() + dec0.cos() * rr.sin() * pa.cos()).asin();
                let ra = ra0
                    + (pa.sin() * rr.sin() * dec0.cos()).atan2(rr.cos() - dec0.sin() * dec.sin());
                pts.push((ra.to_degrees().rem_euclid(360.0), dec.to_degrees()));
            }
            pts.push((*ra, *dec));
        }
        Region::Polygon(v) => {
            for i in 0..v.len() {
                along(v[i], v[(i + 1) % v.len()], &mut pts);
            }
        }
        Region::Range(r1, r2, d1, d2) => {
            let (d1, d2) = (d1.max(-89.999), d2.min(89.999));
            let (r1, r2) = if r1.is_infinite() || r2.is_infinite() {
                (0.0, 359.999_999)
            } else {
                (*r1, *r2)
            };
            let c = [(r1, d1), (r2, d1), (r2, d2), (r1, d2)];
            for i in 0..4 {
                along(c[i], c[(i + 1) % 4], &mut pts);
            }
        }
    }
    pts
}

/// The pixel box of `region` on a frame of `n1`×`n2` pixels, trimmed to it,
/// or `None` when the region and the frame do not overlap.
pub fn pixel_box(
    wcs: &Wcs,
    n1: usize,
    n2: usize,
    region: &Region,
    corners: &[(f64, f64)],
) -> Option<PixelBox> {
    if !region.overlaps(corners) {
        return None;
    }
    let scale = super::obscore::fov(corners) / ((n1 * n1 + n2 * n2) as f64).sqrt();
    let step = (scale * 0.5).max(1e-7);
    let (mut xmin, mut xmax, mut ymin, mut ymax) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    let mut grow = |x: f64, y: f64| {
        xmin = xmin.min(x);
        xmax = xmax.max(x);
        ymin = ymin.min(y);
        ymax = ymax.max(y);
    };
    let mut any = false;
    for (ra, dec) in boundary(region, step) {
        if let Some((x, y)) = wcs.sky_to_pix(ra, dec)
            && x.is_finite()
            && y.is_finite()
        {
            grow(x, y);
            any = true;
        }
    }
    // A region holding the whole frame (or a corner of it) has frame
    // corners inside it: include them so the box reaches the edges.
    for (i, c) in corners.iter().enumerate() {
        let (x, y) = [
            (0.5, 0.5),
            (n1 as f64 + 0.5, 0.5),
            (n1 as f64 + 0.5, n2 as f64 + 0.5),
            (0.5, n2 as f64 + 0.5),
        ][i.min(3)];
        if contains(region, *c) {
            grow(x, y);
            any = true;
        }
    }
    if !any {
        return None;
    }
    // Pixel i covers [i − 0.5, i + 0.5).
    let x0 = (xmin + 0.5).floor().max(1.0);
    let y0 = (ymin + 0.5).floor().max(1.0);
    let x1 = (xmax + 0.5).floor().min(n1 as f64);
    let y1 = (ymax + 0.5).floor().min(n2 as f64);
    if x0 > x1 || y0 > y1 {
        return None;
    }
    Some(PixelBox {
        x0: x0 as usize,
        y0: y0 as usize,
        x1: x1 as usize,
        y1: y1 as usize,
    })
}

/// Whether a sky point lies inside the region.
pub fn contains(region: &Region, p: (f64, f64)) -> bool {
    match region {
        Region::Circle(ra, dec, r) => crate::imaging::sphere::separation(p, (*ra, *dec)) <= *r,
        Region::Range(..) | Region::Polygon(_) => {
            // A degenerate "frame" of one point overlaps exactly when the
            // point is inside.
            region.overlaps(&[p, p, p])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_region_is_required_and_errors_name_the_parameter() {
        let p = |q: &str| Request::parse(&DalParams::parse(q).unwrap());
        assert!(p("ID=1").unwrap_err().contains("no region"));
        assert!(p("CIRCLE=1+2+0.1").unwrap_err().starts_with("ID"));
        assert!(p("ID=1&CIRCLE=1+2").unwrap_err().starts_with("CIRCLE"));
        assert!(p("ID=1&POS=BOX+1+2").unwrap_err().starts_with("POS"));
        assert!(
            p("ID=1&CIRCLE=1+2+0.1&POLYGON=1+1+2+2+3+1")
                .unwrap_err()
                .contains("2 regions")
        );
        // A parameter SODA does not know (here RUNID and BAND) is ignored,
        // as DALI asks.
        assert!(p("ID=1&CIRCLE=1+2+0.1&BAND=1&RUNID=r").is_ok());
        let ok = p("id=ivo://wisecut/obj?5&circle=10+20+0.01").unwrap();
        assert_eq!(ok.region, Region::Circle(10.0, 20.0, 0.01));
    }

    #[test]
    fn circle_boundary_points_are_at_the_radius() {
        for p in boundary(&Region::Circle(359.99, 45.0, 0.2), 0.01) {
            let d = crate::imaging::sphere::separation(p, (359.99, 45.0));
            assert!(d < 1e-9 || (d - 0.2).abs() < 1e-9, "{d}");
        }
    }
}
