//! World coordinate systems: the keywords wisecut keeps for every frame on the
//! sky, and pixel ↔ sky transforms evaluated by CDS's `wcs` crate.
//!
//! [`WcsKeywords`] is the normalised, serialisable form (CD matrix, optional
//! SIP) that the catalogue stores so that "where does this source fall on that
//! frame" needs no file access; it is parsed from any of the header
//! conventions in use (CD, PC + CDELT, legacy `PC001001`, CROTA2 + CDELT).
//! [`Wcs`] evaluates it. Pixel coordinates are FITS 1-based everywhere: the
//! centre of the first pixel is (1, 1).
//!
//! Coordinates are returned in the frame's own celestial system (its RADESYS),
//! exactly like astropy's `WCS.all_pix2world`; wisecut does not silently apply
//! an FK5 → ICRS rotation, because a cutout must agree with astropy on the
//! same header.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::imaging::fits::{Card, HeaderValue};
use serde_json::{Map, Value};

/// Errors met while reading or building a WCS.
#[derive(Debug, thiserror::Error)]
pub enum WcsError {
    /// A keyword the WCS cannot do without is absent.
    #[error("WCS keyword {0} is missing")]
    Missing(&'static str),
    /// The projection or a keyword value is not supported.
    #[error("unsupported WCS: {0}")]
    Unsupported(String),
}

/// SIP distortion coefficients (Shupe et al. 2005), as `(p, q, value)` triples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sip {
    /// `A_ORDER`.
    pub a_order: u32,
    /// `B_ORDER`.
    pub b_order: u32,
    /// `A_p_q` coefficients.
    pub a: Vec<(u32, u32, f64)>,
    /// `B_p_q` coefficients.
    pub b: Vec<(u32, u32, f64)>,
    /// `AP_ORDER` of the inverse polynomial, when present.
    pub ap_order: Option<u32>,
    /// `BP_ORDER` of the inverse polynomial, when present.
    pub bp_order: Option<u32>,
    /// `AP_p_q` coefficients.
    pub ap: Vec<(u32, u32, f64)>,
    /// `BP_p_q` coefficients.
    pub bp: Vec<(u32, u32, f64)>,
}

/// A celestial WCS normalised to the CD-matrix form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WcsKeywords {
    /// `CTYPE1`, e.g. `RA---TAN` or `RA---TAN-SIP`.
    pub ctype1: String,
    /// `CTYPE2`.
    pub ctype2: String,
    /// `CRVAL1` in degrees.
    pub crval1: f64,
    /// `CRVAL2` in degrees.
    pub crval2: f64,
    /// `CRPIX1`, 1-based.
    pub crpix1: f64,
    /// `CRPIX2`, 1-based.
    pub crpix2: f64,
    /// The CD matrix `[[CD1_1, CD1_2], [CD2_1, CD2_2]]` in degrees per pixel.
    pub cd: [[f64; 2]; 2],
    /// `RADESYS`, when the header gives one.
    pub radesys: Option<String>,
    /// `EQUINOX`, when the header gives one.
    pub equinox: Option<f64>,
    /// `LONPOLE`, when the header gives one.
    pub lonpole: Option<f64>,
    /// SIP distortion, for `-SIP` projections.
    pub sip: Option<Sip>,
}

/// A read-only view of header keywords, so the parser works on cfitsio cards,
/// stored JSON or test fixtures alike.
pub trait KeywordSource {
    /// The numeric value of `key`, if present and numeric.
    fn number(&self, key: &str) -> Option<f64>;
    /// The string value of `key`, if present.
    fn text(&self, key: &str) -> Option<String>;
}

impl WcsKeywords {
    /// Parses a celestial WCS from header keywords. Returns `Ok(None)` when the
    /// header has no celestial WCS at all (calibration frames), and an error
    /// when it has one that is incomplete or unsupported.
    pub fn from_header(h: &impl KeywordSource) -> Result<Option<Self>, WcsError> {
        let Some(ctype1) = h.text("CTYPE1") else {
            return Ok(None);
        };
        let ctype2 = h.text("CTYPE2").ok_or(WcsError::Missing("CTYPE2"))?;
        if !(ctype1.starts_with("RA--") && ctype2.starts_with("DEC-")) {
            return Err(WcsError::Unsupported(format!(
                "CTYPE1/CTYPE2 = {ctype1}/{ctype2}; only equatorial RA/DEC axes are supported"
            )));
        }
        let crval1 = h.number("CRVAL1").ok_or(WcsError::Missing("CRVAL1"))?;
        let crval2 = h.number("CRVAL2").ok_or(WcsError::Missing("CRVAL2"))?;
        let crpix1 = h.number("CRPIX1").ok_or(WcsError::Missing("CRPIX1"))?;
        let crpix2 = h.number("CRPIX2").ok_or(WcsError::Missing("CRPIX2"))?;
        let cd = linear_matrix(h)?;
        let sip = if ctype1.ends_with("-SIP") {
            Some(parse_sip(h)?)
        } else {
            None
        };
        Ok(Some(Self {
            ctype1,
            ctype2,
            crval1,
            crval2,
            crpix1,
            crpix2,
            cd,
            radesys: h.text("RADESYS").or_else(|| h.text("RADECSYS")),
            equinox: h.number("EQUINOX").or_else(|| h.number("EPOCH")),
            lonpole: h.number("LONPOLE"),
            sip,
        }))
    }

    /// The header cards that express this WCS (CD convention), in the order a
    /// person expects to read them.
    pub fn to_cards(&self) -> Vec<(String, Value)> {
        let mut cards: Vec<(String, Value)> = vec![
            ("CTYPE1".into(), self.ctype1.clone().into()),
            ("CTYPE2".into(), self.ctype2.clone().into()),
            ("CRVAL1".into(), self.crval1.into()),
            ("CRVAL2".into(), self.crval2.into()),
            ("CRPIX1".into(), self.crpix1.into()),
            ("CRPIX2".into(), self.crpix2.into()),
            ("CD1_1".into(), self.cd[0][0].into()),
            ("CD1_2".into(), self.cd[0][1].into()),
            ("CD2_1".into(), self.cd[1][0].into()),
            ("CD2_2".into(), self.cd[1][1].into()),
        ];
        if let Some(r) = &self.radesys {
            cards.push(("RADESYS".into(), r.clone().into()));
        }
        if let Some(e) = self.equinox {
            cards.push(("EQUINOX".into(), e.into()));
        }
        if let Some(l) = self.lonpole {
            cards.push(("LONPOLE".into(), l.into()));
        }
        if let Some(sip) = &self.sip {
            cards.push(("A_ORDER".into(), i64::from(sip.a_order).into()));
            for (p, q, v) in &sip.a {
                cards.push((format!("A_{p}_{q}"), (*v).into()));
            }
            cards.push(("B_ORDER".into(), i64::from(sip.b_order).into()));
            for (p, q, v) in &sip.b {
                cards.push((format!("B_{p}_{q}"), (*v).into()));
            }
            if let Some(o) = sip.ap_order {
                cards.push(("AP_ORDER".into(), i64::from(o).into()));
                for (p, q, v) in &sip.ap {
                    cards.push((format!("AP_{p}_{q}"), (*v).into()));
                }
            }
            if let Some(o) = sip.bp_order {
                cards.push(("BP_ORDER".into(), i64::from(o).into()));
                for (p, q, v) in &sip.bp {
                    cards.push((format!("BP_{p}_{q}"), (*v).into()));
                }
            }
        }
        cards
    }

    /// Mean pixel scale in arcseconds (square root of the CD determinant).
    pub fn pixel_scale_arcsec(&self) -> f64 {
        let det = self.cd[0][0] * self.cd[1][1] - self.cd[0][1] * self.cd[1][0];
        det.abs().sqrt() * 3600.0
    }
}

/// The linear part in CD form from whichever convention the header uses. The
/// precedence (CD, then PC, then legacy PC00i00j, then CROTA2) is the one
/// WCSLIB and astropy apply.
fn linear_matrix(h: &impl KeywordSource) -> Result<[[f64; 2]; 2], WcsError> {
    let cd_keys = ["CD1_1", "CD1_2", "CD2_1", "CD2_2"];
    if cd_keys.iter().any(|k| h.number(k).is_some()) {
        let v = |k: &str| h.number(k).unwrap_or(0.0);
        return Ok([[v("CD1_1"), v("CD1_2")], [v("CD2_1"), v("CD2_2")]]);
    }
    let cdelt1 = h.number("CDELT1").ok_or(WcsError::Missing("CDELT1"))?;
    let cdelt2 = h.number("CDELT2").ok_or(WcsError::Missing("CDELT2"))?;
    let modern = ["PC1_1", "PC1_2", "PC2_1", "PC2_2"];
    let legacy = ["PC001001", "PC001002", "PC002001", "PC002002"];
    let pc = if modern.iter().any(|k| h.number(k).is_some()) {
        Some(modern)
    } else if legacy.iter().any(|k| h.number(k).is_some()) {
        Some(legacy)
    } else {
        None
    };
    if let Some(keys) = pc {
        let d = |i: usize| if i == 0 || i == 3 { 1.0 } else { 0.0 };
        let p: Vec<f64> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| h.number(k).unwrap_or(d(i)))
            .collect();
        return Ok([
            [cdelt1 * p[0], cdelt1 * p[1]],
            [cdelt2 * p[2], cdelt2 * p[3]],
        ]);
    }
    // CROTA2 convention (Calabretta & Greisen 2002, eq. 187).
    let rho = h.number("CROTA2").unwrap_or(0.0).to_radians();
    Ok([
        [cdelt1 * rho.cos(), -cdelt2 * rho.sin()],
        [cdelt1 * rho.sin(), cdelt2 * rho.cos()],
    ])
}

fn parse_sip(h: &impl KeywordSource) -> Result<Sip, WcsError> {
    let order = |k: &'static str| h.number(k).map(|v| v as u32);
    let a_order = order("A_ORDER").ok_or(WcsError::Missing("A_ORDER"))?;
    let b_order = order("B_ORDER").ok_or(WcsError::Missing("B_ORDER"))?;
    let coeffs = |prefix: &str, ord: u32| -> Vec<(u32, u32, f64)> {
        let mut out = Vec::new();
        for p in 0..=ord {
            for q in 0..=(ord - p) {
                if let Some(v) = h.number(&format!("{prefix}_{p}_{q}")) {
                    out.push((p, q, v));
                }
            }
        }
        out
    };
    let ap_order = order("AP_ORDER");
    let bp_order = order("BP_ORDER");
    Ok(Sip {
        a_order,
        b_order,
        a: coeffs("A", a_order),
        b: coeffs("B", b_order),
        ap_order,
        bp_order,
        ap: ap_order.map(|o| coeffs("AP", o)).unwrap_or_default(),
        bp: bp_order.map(|o| coeffs("BP", o)).unwrap_or_default(),
    })
}

impl Sip {
    /// Evaluates a SIP polynomial Σ c·u^p·v^q.
    fn poly(coeffs: &[(u32, u32, f64)], u: f64, v: f64) -> f64 {
        coeffs
            .iter()
            .map(|&(p, q, c)| c * u.powi(p as i32) * v.powi(q as i32))
            .sum()
    }

    /// Forward distortion: pixel offsets from CRPIX (u, v) to the offsets
    /// the linear transform sees (u + f, v + g).
    pub fn forward(&self, u: f64, v: f64) -> (f64, f64) {
        (u + Self::poly(&self.a, u, v), v + Self::poly(&self.b, u, v))
    }

    /// Inverse of [`Sip::forward`]: starts from the AP/BP polynomials when
    /// the header has them and refines by Newton iteration on the forward
    /// polynomials, as astropy's `all_world2pix` does, so the result is exact
    /// even when AP/BP are missing or approximate.
    pub fn inverse(&self, uu: f64, vv: f64) -> (f64, f64) {
        let (mut u, mut v) = if self.ap_order.is_some() || self.bp_order.is_some() {
            (
                uu + Self::poly(&self.ap, uu, vv),
                vv + Self::poly(&self.bp, uu, vv),
            )
        } else {
            (uu, vv)
        };
        for _ in 0..50 {
            let (fu, fv) = self.forward(u, v);
            let (ru, rv) = (fu - uu, fv - vv);
            if ru.abs() < 1e-12 && rv.abs() < 1e-12 {
                break;
            }
            // Jacobian by central differences: the polynomials are smooth
            // and low-order, so h = 1e-3 px is far inside their scale.
            let h = 1e-3;
            let (a1, b1) = self.forward(u + h, v);
            let (a0, b0) = self.forward(u - h, v);
            let (a3, b3) = self.forward(u, v + h);
            let (a2, b2) = self.forward(u, v - h);
            let (j11, j21) = ((a1 - a0) / (2.0 * h), (b1 - b0) / (2.0 * h));
            let (j12, j22) = ((a3 - a2) / (2.0 * h), (b3 - b2) / (2.0 * h));
            let det = j11 * j22 - j12 * j21;
            if det.abs() < 1e-15 {
                break;
            }
            u -= (j22 * ru - j12 * rv) / det;
            v -= (-j21 * ru + j11 * rv) / det;
        }
        (u, v)
    }
}

/// An evaluable WCS for an image of a given size.
///
/// The projection is evaluated by CDS's `wcs` crate; SIP distortion is
/// applied here, because the crate's SIP polynomial evaluation (mapproj 0.4)
/// disagrees with the SIP convention and with astropy.
pub struct Wcs {
    keywords: WcsKeywords,
    proj: wcs::WCS,
}

impl std::fmt::Debug for Wcs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wcs")
            .field("keywords", &self.keywords)
            .finish()
    }
}

impl Wcs {
    /// Builds the transform for an image of `naxis1` × `naxis2` pixels.
    pub fn new(keywords: &WcsKeywords, naxis1: usize, naxis2: usize) -> Result<Self, WcsError> {
        // The `wcs` crate takes its parameters as a deserialisable struct of
        // optional header values; building it through serde keeps us
        // independent of its (large, version-dependent) field list.
        let mut m = Map::new();
        m.insert("NAXIS".into(), 2.into());
        m.insert("NAXIS1".into(), (naxis1 as i64).into());
        m.insert("NAXIS2".into(), (naxis2 as i64).into());
        let linear = WcsKeywords {
            ctype1: keywords.ctype1.trim_end_matches("-SIP").to_owned(),
            ctype2: keywords.ctype2.trim_end_matches("-SIP").to_owned(),
            sip: None,
            ..keywords.clone()
        };
        for (k, v) in linear.to_cards() {
            // RADESYS/EQUINOX are left out on purpose: given them, the crate
            // rotates FK5 results into ICRS, and we want the frame's own
            // system, as astropy returns it.
            if matches!(k.as_str(), "RADESYS" | "EQUINOX") {
                continue;
            }
            m.insert(k, v);
        }
        let params: wcs::WCSParams = serde_json::from_value(Value::Object(m))
            .map_err(|e| WcsError::Unsupported(format!("WCS keywords rejected: {e}")))?;
        let proj = wcs::WCS::new(&params).map_err(|e| WcsError::Unsupported(format!("{e:?}")))?;
        Ok(Self {
            keywords: keywords.clone(),
            proj,
        })
    }

    /// The keywords this transform was built from.
    pub fn keywords(&self) -> &WcsKeywords {
        &self.keywords
    }

    /// Sky position (RA, Dec in degrees) of the FITS 1-based pixel (x, y).
    pub fn pix_to_sky(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        // mapproj's image coordinates are the FITS ones (it subtracts CRPIX
        // directly), which the astropy peer test confirms to < 1 mas.
        let (x, y) = match &self.keywords.sip {
            Some(sip) => {
                let k = &self.keywords;
                let (u, v) = sip.forward(x - k.crpix1, y - k.crpix2);
                (u + k.crpix1, v + k.crpix2)
            }
            None => (x, y),
        };
        let ll = self.proj.unproj_lonlat(&wcs::ImgXY::new(x, y))?;
        let ra = ll.lon().to_degrees().rem_euclid(360.0);
        Some((ra, ll.lat().to_degrees()))
    }

    /// FITS 1-based pixel position of the sky position (RA, Dec in degrees);
    /// `None` when the position does not project (behind the tangent plane).
    pub fn sky_to_pix(&self, ra: f64, dec: f64) -> Option<(f64, f64)> {
        let xy = self
            .proj
            .proj_lonlat(&wcs::LonLat::new(ra.to_radians(), dec.to_radians()))?;
        match &self.keywords.sip {
            Some(sip) => {
                let k = &self.keywords;
                let (u, v) = sip.inverse(xy.x() - k.crpix1, xy.y() - k.crpix2);
                Some((u + k.crpix1, v + k.crpix2))
            }
            None => Some((xy.x(), xy.y())),
        }
    }

    /// The sky positions of the four outer pixel corners, in pixel order
    /// (1,1) → (n1,1) → (n1,n2) → (1,n2).
    pub fn footprint(&self, naxis1: usize, naxis2: usize) -> Option<[(f64, f64); 4]> {
        self.section_footprint(&Section {
            x1: 1,
            x2: naxis1,
            y1: 1,
            y2: naxis2,
        })
    }

    /// The sky corners of an image section (outer pixel edges), in the
    /// same order as [`Wcs::footprint`].
    pub fn section_footprint(&self, s: &Section) -> Option<[(f64, f64); 4]> {
        let (x1, x2) = (s.x1 as f64 - 0.5, s.x2 as f64 + 0.5);
        let (y1, y2) = (s.y1 as f64 - 0.5, s.y2 as f64 + 0.5);
        Some([
            self.pix_to_sky(x1, y1)?,
            self.pix_to_sky(x2, y1)?,
            self.pix_to_sky(x2, y2)?,
            self.pix_to_sky(x1, y2)?,
        ])
    }
}

/// An IRAF image section `[x1:x2,y1:y2]` (`DATASEC`, `BIASSEC`, `TRIMSEC`):
/// 1-based inclusive pixel bounds, `x1 <= x2`, `y1 <= y2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    /// First column.
    pub x1: usize,
    /// Last column.
    pub x2: usize,
    /// First row.
    pub y1: usize,
    /// Last row.
    pub y2: usize,
}

impl Section {
    /// Parses `[x1:x2,y1:y2]`; `None` for anything else (a reversed range
    /// such as `[100:1,1:50]` is put in order: IRAF allows flipped
    /// sections, and the pixels covered are the same).
    pub fn parse(text: &str) -> Option<Self> {
        let inner = text.trim().strip_prefix('[')?.strip_suffix(']')?;
        let (xs, ys) = inner.split_once(',')?;
        let range = |r: &str| -> Option<(usize, usize)> {
            let (a, b) = r.split_once(':')?;
            let (a, b) = (
                a.trim().parse::<usize>().ok()?,
                b.trim().parse::<usize>().ok()?,
            );
            (a >= 1 && b >= 1).then_some((a.min(b), a.max(b)))
        };
        let ((x1, x2), (y1, y2)) = (range(xs)?, range(ys)?);
        Some(Self { x1, x2, y1, y2 })
    }

    /// Whether the section lies inside an image of `naxis1` × `naxis2`.
    pub fn within(&self, naxis1: usize, naxis2: usize) -> bool {
        self.x2 <= naxis1 && self.y2 <= naxis2
    }
}

/// Header cards as a keyword lookup.
#[derive(Debug, Clone, Default)]
pub struct Header(HashMap<String, HeaderValue>);

impl Header {
    /// Indexes cards by keyword (the first occurrence wins, as in cfitsio).
    pub fn new(cards: &[Card]) -> Self {
        let mut map = HashMap::new();
        for c in cards {
            map.entry(c.key.to_ascii_uppercase())
                .or_insert_with(|| c.value.clone());
        }
        Self(map)
    }
    /// The value of `key` (upper case), if present.
    pub fn get(&self, key: &str) -> Option<&HeaderValue> {
        self.0.get(key)
    }
}

impl KeywordSource for Header {
    fn number(&self, key: &str) -> Option<f64> {
        match self.get(key)? {
            HeaderValue::Int(i) => Some(*i as f64),
            HeaderValue::Float(f) => Some(*f),
            HeaderValue::Str(s) => s.trim().parse().ok(),
            HeaderValue::Bool(_) => None,
        }
    }
    fn text(&self, key: &str) -> Option<String> {
        match self.get(key)? {
            HeaderValue::Str(s) => Some(s.trim().to_owned()),
            HeaderValue::Int(i) => Some(i.to_string()),
            HeaderValue::Float(f) => Some(f.to_string()),
            HeaderValue::Bool(b) => Some(if *b { "T" } else { "F" }.into()),
        }
    }
}

/// Header keywords held in a JSON object (as stored in the catalogue or built
/// by hand); numbers may also be given as numeric strings.
impl KeywordSource for Map<String, Value> {
    fn number(&self, key: &str) -> Option<f64> {
        match self.get(key)? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().replace(['D', 'd'], "E").parse().ok(),
            _ => None,
        }
    }
    fn text(&self, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.trim().to_string()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn header(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn tan() -> WcsKeywords {
        WcsKeywords::from_header(&header(json!({
            "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN",
            "CRVAL1": 150.1, "CRVAL2": 2.2, "CRPIX1": 256.5, "CRPIX2": 256.5,
            "CD1_1": -1.1e-4, "CD1_2": 1.0e-6, "CD2_1": 1.0e-6, "CD2_2": 1.1e-4,
            "RADESYS": "ICRS"
        })))
        .unwrap()
        .unwrap()
    }

    #[test]
    fn reference_pixel_maps_to_crval() {
        let w = Wcs::new(&tan(), 512, 512).unwrap();
        let (ra, dec) = w.pix_to_sky(256.5, 256.5).unwrap();
        assert!(
            (ra - 150.1).abs() < 1e-10 && (dec - 2.2).abs() < 1e-10,
            "{ra} {dec}"
        );
    }

    #[test]
    fn round_trip_is_exact_to_micro_pixels() {
        let w = Wcs::new(&tan(), 512, 512).unwrap();
        for &(x, y) in &[(1.0, 1.0), (512.0, 1.0), (100.25, 400.75), (512.0, 512.0)] {
            let (ra, dec) = w.pix_to_sky(x, y).unwrap();
            let (x2, y2) = w.sky_to_pix(ra, dec).unwrap();
            assert!(
                (x - x2).abs() < 1e-6 && (y - y2).abs() < 1e-6,
                "{x},{y} -> {x2},{y2}"
            );
        }
    }

    #[test]
    fn ra_increases_to_the_east_for_negative_cd11() {
        let w = Wcs::new(&tan(), 512, 512).unwrap();
        let (ra1, _) = w.pix_to_sky(200.0, 256.5).unwrap();
        let (ra2, _) = w.pix_to_sky(300.0, 256.5).unwrap();
        assert!(ra1 > ra2);
        // 100 pixels of 0.396" at Dec 2.2 are 39.6"/cos(dec) of RA.
        let expect = 100.0 * 1.1e-4 / 2.2f64.to_radians().cos();
        assert!(
            ((ra1 - ra2) - expect).abs() < 1e-6,
            "{} vs {expect}",
            ra1 - ra2
        );
    }

    #[test]
    fn legacy_pc_and_cdelt_give_the_same_matrix_as_cd() {
        let legacy = WcsKeywords::from_header(&header(json!({
            "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN",
            "CRVAL1": 10.0, "CRVAL2": -30.0, "CRPIX1": 1.0, "CRPIX2": 1.0,
            "CDELT1": -2.0e-4, "CDELT2": 2.0e-4,
            "PC001001": 0.8, "PC001002": -0.6, "PC002001": 0.6, "PC002002": 0.8
        })))
        .unwrap()
        .unwrap();
        assert_eq!(legacy.cd, [[-1.6e-4, 1.2e-4], [1.2e-4, 1.6e-4]]);
        let modern = WcsKeywords::from_header(&header(json!({
            "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN",
            "CRVAL1": 10.0, "CRVAL2": -30.0, "CRPIX1": 1.0, "CRPIX2": 1.0,
            "CDELT1": -2.0e-4, "CDELT2": 2.0e-4,
            "PC1_1": 0.8, "PC1_2": -0.6, "PC2_1": 0.6, "PC2_2": 0.8
        })))
        .unwrap()
        .unwrap();
        assert_eq!(legacy.cd, modern.cd);
    }

    #[test]
    fn header_without_ctype_has_no_wcs_and_partial_wcs_is_an_error() {
        assert!(
            WcsKeywords::from_header(&header(json!({"NAXIS1": 10})))
                .unwrap()
                .is_none()
        );
        let err = WcsKeywords::from_header(&header(json!({
            "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 1.0
        })))
        .unwrap_err();
        assert!(err.to_string().contains("CRVAL2"), "{err}");
    }

    #[test]
    fn sip_keywords_survive_the_card_round_trip() {
        let h = header(json!({
            "CTYPE1": "RA---TAN-SIP", "CTYPE2": "DEC--TAN-SIP",
            "CRVAL1": 10.0, "CRVAL2": 20.0, "CRPIX1": 50.0, "CRPIX2": 60.0,
            "CD1_1": -1e-4, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": 1e-4,
            "A_ORDER": 2, "A_2_0": 1e-3, "A_0_2": -2e-4, "B_ORDER": 2, "B_1_1": 3e-4
        }));
        let k = WcsKeywords::from_header(&h).unwrap().unwrap();
        let back: Map<String, Value> = k.to_cards().into_iter().collect();
        assert_eq!(WcsKeywords::from_header(&back).unwrap().unwrap(), k);
        let w = Wcs::new(&k, 100, 100).unwrap();
        // At (u, v) = (10, 10) from CRPIX (50, 60): f = 1e-3·100 − 2e-4·100
        // = 0.08 and g = 3e-4·100 = 0.03, so the pixel (60, 70) lands where
        // the linear WCS puts (60.08, 70.03).
        let lin = Wcs::new(
            &WcsKeywords {
                ctype1: "RA---TAN".into(),
                ctype2: "DEC--TAN".into(),
                sip: None,
                ..k.clone()
            },
            100,
            100,
        )
        .unwrap();
        let got = w.pix_to_sky(60.0, 70.0).unwrap();
        let want = lin.pix_to_sky(60.08, 70.03).unwrap();
        assert!(
            (got.0 - want.0).abs() < 1e-12 && (got.1 - want.1).abs() < 1e-12,
            "{got:?} vs {want:?}"
        );
        let (x, y) = w.sky_to_pix(got.0, got.1).unwrap();
        assert!(
            (x - 60.0).abs() < 1e-8 && (y - 70.0).abs() < 1e-8,
            "{x} {y}"
        );
    }
}
