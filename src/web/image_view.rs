//! The image view (`/image/{id}`): a whole frame or a part of it, rendered on
//! demand by the product service (and so cached with a size bound), with
//! binning (1, 2, 4, 8 or fit to screen), contrast presets, every stretch and
//! interval, inversion, display size 0.5×/1×/2×, panning, a SourceList
//! overlay, and a pixel read-out (`/api/pixel`, used by a few lines of
//! JavaScript; everything else works without it).
//!
//! [`ViewParams`] reads the request and [`View`] is the pure view model:
//! which part of the frame is shown, at what binning, where the image
//! lands on the page and where a source falls on it. The handler only
//! loads the frame and its source lists and renders the template. The
//! rendered picture itself comes from `/render/{id}`, a cutout request of
//! the view's box.

use std::time::Instant;

use askama::Template;
use axum::extract::{Path, RawQuery};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};

use super::ApiError;
use super::AppError;
use super::cutout_api::{self, CUTOUT_PARAMS};
use super::query_params::QueryParams;
use crate::catalog::browse::{self, Cell, Query, Table};
use crate::ids::{ObjectId, Slid};
use crate::imaging::cutout::{self, Geometry};
use crate::imaging::render::{Interval, Stretch};
use crate::params::ParamError;
use crate::products::frames::FrameKey;

/// Largest side of the rendered view in screen pixels.
pub const VIEW_PX: usize = 1024;

/// Binning factors offered besides "fit".
pub const BINS: &[usize] = &[1, 2, 4, 8];

/// Display sizes offered.
pub const ZOOMS: &[f64] = &[0.5, 1.0, 2.0];

/// The contrast presets: a name and the interval it stands for. "high"
/// keeps only the central 90 % of the pixel values (the sky noise fills the
/// grey scale, faint structure shows), "normal" is zscale (the default
/// view), "low" keeps 99.9 % (bright cores are not saturated). A preset
/// replaces only the interval: stretch, inversion, binning, zoom, centre and
/// overlay are kept.
pub const CONTRAST_PRESETS: &[(&str, &str)] = &[
    ("high", "percentile:90"),
    ("normal", "zscale"),
    ("low", "percentile:99.9"),
];

/// The parameters of `/image/{id}`.
pub const PARAMS: &[&str] = &[
    "bin", "stretch", "interval", "contrast", "min", "max", "invert", "zoom", "cx", "cy", "slid",
];

/// A source drawn on the view.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    /// SID.
    pub sid: i64,
    /// Centre in view (SVG) coordinates.
    pub cx: f64,
    /// Centre, SVG y (down).
    pub cy: f64,
    /// Radius in view pixels.
    pub r: f64,
}

/// The binning asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binning {
    /// The smallest factor that fits the frame into [`VIEW_PX`].
    Fit,
    /// One of [`BINS`].
    Factor(usize),
}

impl Binning {
    fn parse(text: &str) -> Result<Self, ParamError> {
        let t = text.trim().to_ascii_lowercase();
        if t == "fit" {
            return Ok(Self::Fit);
        }
        t.parse::<usize>()
            .ok()
            .filter(|b| BINS.contains(b))
            .map(Self::Factor)
            .ok_or_else(|| ParamError::invalid("bin", text, "expected one of 1, 2, 4, 8, fit"))
    }

    /// The URL value.
    pub fn name(self) -> String {
        match self {
            Self::Fit => "fit".into(),
            Self::Factor(b) => b.to_string(),
        }
    }
}

/// The request of an image view, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewParams {
    /// Binning.
    pub bin: Binning,
    /// Stretch name.
    pub stretch: Stretch,
    /// Interval rule as written (`zscale`, `percentile:99`, `manual`, …),
    /// or the one a contrast preset stands for.
    pub interval: String,
    /// The contrast preset asked for, if any (one of [`CONTRAST_PRESETS`]).
    pub contrast: Option<&'static str>,
    /// Manual lower limit.
    pub min: Option<f64>,
    /// Manual upper limit.
    pub max: Option<f64>,
    /// Inverted grey scale.
    pub invert: bool,
    /// Display size factor.
    pub zoom: f64,
    /// Asked centre column (FITS pixels).
    pub cx: Option<f64>,
    /// Asked centre row.
    pub cy: Option<f64>,
    /// SourceList to overlay.
    pub slid: Option<i64>,
}

impl ViewParams {
    /// Reads and checks the query.
    pub fn parse(p: &QueryParams) -> Result<Self, ApiError> {
        let bin = Binning::parse(p.get("bin").unwrap_or("fit"))?;
        let stretch =
            Stretch::parse(p.get("stretch").unwrap_or("linear")).map_err(ParamError::from)?;
        let contrast = match p.get("contrast") {
            None => None,
            Some(c) => {
                let names: Vec<(&str, &'static str)> =
                    CONTRAST_PRESETS.iter().map(|(n, _)| (*n, *n)).collect();
                Some(crate::params::choice("contrast", c, &names)?)
            }
        };
        let interval = match (contrast, p.get("interval")) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad(
                    "contrast: give either contrast (a preset) or interval, not both",
                ));
            }
            (Some(c), None) => preset_interval(c).to_owned(),
            (None, Some(i)) => i.trim().to_owned(),
            (None, None) => preset_interval("normal").to_owned(),
        };
        let (min, max) = (p.number("min")?, p.number("max")?);
        let manual = interval.eq_ignore_ascii_case("manual");
        // Validated here so a bad value is a 400 on the page, not a broken
        // image.
        Interval::parse(
            &interval,
            if manual { min } else { None },
            if manual { max } else { None },
        )
        .map_err(ParamError::from)?;
        let zoom = match p.get("zoom") {
            None => 1.0,
            Some(z) => crate::params::choice("zoom", z, &[("0.5", 0.5), ("1", 1.0), ("2", 2.0)])?,
        };
        Ok(Self {
            bin,
            stretch,
            interval,
            contrast,
            min,
            max,
            invert: p.flag("invert")?,
            zoom,
            cx: p.number("cx")?,
            cy: p.number("cy")?,
            slid: p.whole_number("slid")?,
        })
    }
}

/// The interval of a preset named in [`CONTRAST_PRESETS`].
fn preset_interval(name: &str) -> &'static str {
    CONTRAST_PRESETS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("zscale", |(_, i)| i)
}

/// What part of a frame a view shows, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    /// Binning factor used.
    pub bin: usize,
    /// View centre (FITS pixels), kept on the frame.
    pub cx: f64,
    /// View centre row.
    pub cy: f64,
    /// Where the shown box lies on the frame: the same placement as the
    /// cutout the picture is rendered from.
    pub geometry: Geometry,
    /// Rendered size.
    pub out_w: usize,
    /// Rendered size.
    pub out_h: usize,
    /// Displayed size.
    pub disp_w: usize,
    /// Displayed size.
    pub disp_h: usize,
}

impl View {
    /// The view of an `n1` × `n2` frame that `p` asks for: at most
    /// [`VIEW_PX`] screen pixels of `bin` frame pixels each, centred where
    /// asked but never beyond the frame's edges.
    pub fn new(n1: usize, n2: usize, p: &ViewParams) -> Self {
        let (n1, n2) = (n1.max(1), n2.max(1));
        let bin = match p.bin {
            Binning::Fit => n1.max(n2).div_ceil(VIEW_PX).max(1),
            Binning::Factor(b) => b,
        };
        let width = (VIEW_PX * bin).min(n1);
        let height = (VIEW_PX * bin).min(n2);
        let keep_on_frame = |v: f64, n: usize, view: usize| {
            let lo = view as f64 / 2.0 + 0.5;
            let hi = n as f64 - view as f64 / 2.0 + 0.5;
            if lo >= hi {
                (n as f64 + 1.0) / 2.0
            } else {
                v.clamp(lo, hi)
            }
        };
        let cx = keep_on_frame(p.cx.unwrap_or((n1 as f64 + 1.0) / 2.0), n1, width);
        let cy = keep_on_frame(p.cy.unwrap_or((n2 as f64 + 1.0) / 2.0), n2, height);
        let geometry = cutout::place(cx, cy, width, height, n1, n2)
            .expect("a box centred on the frame overlaps it");
        let (out_w, out_h) = (width.div_ceil(bin), height.div_ceil(bin));
        Self {
            bin,
            cx,
            cy,
            geometry,
            out_w,
            out_h,
            disp_w: (out_w as f64 * p.zoom).round() as usize,
            disp_h: (out_h as f64 * p.zoom).round() as usize,
        }
    }

    /// Where a source at FITS pixel (`x`, `y`) with FWHM `fwhm` is drawn:
    /// SVG coordinates of the rendered image, x right and y down.
    pub fn marker(&self, sid: i64, x: f64, y: f64, fwhm: f64) -> Marker {
        let b = self.bin as f64;
        Marker {
            sid,
            cx: (x - 0.5 - self.geometry.x0 as f64) / b,
            cy: self.out_h as f64 - (y - 0.5 - self.geometry.y0 as f64) / b,
            r: (1.5 * fwhm / b).max(3.0),
        }
    }

    /// The query of the rendered picture (`/render/{id}?…`), and of its
    /// FITS when `fits`.
    pub fn render_query(&self, p: &ViewParams, fits: bool) -> String {
        let g = &self.geometry;
        let mut q: Vec<(&str, String)> = vec![
            ("x", self.cx.to_string()),
            ("y", self.cy.to_string()),
            ("width", g.width.to_string()),
            ("height", g.height.to_string()),
        ];
        if fits {
            q.push(("format", "fits".into()));
            return encode(&q);
        }
        q.push(("stretch", p.stretch.name().to_owned()));
        q.push(("interval", p.interval.clone()));
        q.push(("output_size", format!("{}x{}", self.out_w, self.out_h)));
        if p.interval.eq_ignore_ascii_case("manual") {
            q.push(("min", p.min.map(|v| v.to_string()).unwrap_or_default()));
            q.push(("max", p.max.map(|v| v.to_string()).unwrap_or_default()));
        }
        if p.invert {
            q.push(("invert", "1".into()));
        }
        q.push(("format", "png".into()));
        encode(&q)
    }

    /// The query of this view moved to (`cx`, `cy`) at display size `zoom`.
    pub fn view_query(p: &ViewParams, cx: f64, cy: f64, zoom: f64) -> String {
        let contrast = match p.contrast {
            Some(c) => ("contrast", c.to_owned()),
            None => ("interval", p.interval.clone()),
        };
        let mut q: Vec<(&str, String)> = vec![
            ("bin", p.bin.name()),
            ("stretch", p.stretch.name().to_owned()),
            contrast,
            ("zoom", zoom.to_string()),
            ("cx", format!("{cx:.1}")),
            ("cy", format!("{cy:.1}")),
        ];
        if p.contrast.is_none() && p.interval.eq_ignore_ascii_case("manual") {
            q.push(("min", p.min.map(|v| v.to_string()).unwrap_or_default()));
            q.push(("max", p.max.map(|v| v.to_string()).unwrap_or_default()));
        }
        if p.invert {
            q.push(("invert", "1".into()));
        }
        if let Some(s) = p.slid {
            q.push(("slid", s.to_string()));
        }
        encode(&q)
    }

    /// The contrast preset links: (name, query, whether it is the one
    /// shown). Each keeps every other setting of the view; only the
    /// interval (and manual limits, which a preset replaces) changes.
    pub fn presets(&self, p: &ViewParams) -> Vec<(&'static str, String, bool)> {
        CONTRAST_PRESETS
            .iter()
            .map(|(name, interval)| {
                let preset = ViewParams {
                    contrast: Some(name),
                    interval: (*interval).to_owned(),
                    min: None,
                    max: None,
                    ..p.clone()
                };
                let shown = p.interval.eq_ignore_ascii_case(interval);
                (
                    *name,
                    Self::view_query(&preset, self.cx, self.cy, p.zoom),
                    shown,
                )
            })
            .collect()
    }

    /// Pan links: half a view up, down, left and right.
    pub fn pan(&self, p: &ViewParams) -> Vec<(&'static str, String)> {
        let (dx, dy) = (
            self.geometry.width as f64 / 2.0,
            self.geometry.height as f64 / 2.0,
        );
        [
            ("up", self.cx, self.cy + dy),
            ("down", self.cx, self.cy - dy),
            ("left", self.cx - dx, self.cy),
            ("right", self.cx + dx, self.cy),
        ]
        .into_iter()
        .map(|(name, x, y)| (name, Self::view_query(p, x, y, p.zoom)))
        .collect()
    }
}

fn encode(q: &[(&str, String)]) -> String {
    serde_urlencoded::to_string(q).unwrap_or_default()
}

/// The image page.
#[derive(Template)]
#[template(path = "image.html")]
pub struct ImagePage {
    /// Frame object id.
    pub id: i64,
    /// File name.
    pub filename: String,
    /// Frame size.
    pub naxis1: usize,
    /// Frame size.
    pub naxis2: usize,
    /// Binning factor used.
    pub bin: usize,
    /// "fit" or the factor, as asked.
    pub bin_param: String,
    /// Offered binnings.
    pub bins: Vec<String>,
    /// Stretch name.
    pub stretch: String,
    /// Stretches.
    pub stretches: Vec<&'static str>,
    /// Interval as asked.
    pub interval: String,
    /// Intervals.
    pub intervals: Vec<String>,
    /// Manual limits.
    pub min: String,
    /// Manual limits.
    pub max: String,
    /// Inverted.
    pub invert: bool,
    /// Display zoom.
    pub zoom: f64,
    /// View centre (FITS pixels).
    pub cx: f64,
    /// View centre.
    pub cy: f64,
    /// First parent column of the view (0-based).
    pub x0: i64,
    /// First parent row of the view (0-based).
    pub y0: i64,
    /// View size in frame pixels.
    pub width: usize,
    /// View size in frame pixels.
    pub height: usize,
    /// Rendered size.
    pub out_w: usize,
    /// Rendered size.
    pub out_h: usize,
    /// Displayed size.
    pub disp_w: usize,
    /// Displayed size.
    pub disp_h: usize,
    /// The rendered image's URL.
    pub src: String,
    /// FITS of the same view.
    pub fits_url: String,
    /// Pan links: up, down, left, right.
    pub pan: Vec<(&'static str, String)>,
    /// Zoom links.
    pub zooms: Vec<(&'static str, String)>,
    /// Contrast preset links: (name, URL, whether it is the one shown).
    pub presets: Vec<(&'static str, String, bool)>,
    /// SourceLists of this frame: (slid, name, drawn).
    pub lists: Vec<(i64, String, bool)>,
    /// The SourceList drawn.
    pub slid: Option<i64>,
    /// Its sources in view.
    pub markers: Vec<Marker>,
}

/// `GET /image/{id}`.
pub async fn image(
    super::auth::Scoped(st): super::auth::Scoped,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    let id = super::object_id(&id).map_err(AppError::BadRequest)?;
    let p = ViewParams::parse(&QueryParams::parse(raw.as_deref(), PARAMS)?)?;
    let frame = st.catalog.frame(ObjectId(id)).await?;
    let (n1, n2) = (frame.naxis1.max(1) as usize, frame.naxis2.max(1) as usize);
    let view = View::new(n1, n2, &p);

    // SourceLists extracted from this frame, and the sources of the chosen
    // one inside the view.
    let lists_table = Table::SourceLists;
    let mut q = Query::new(&lists_table);
    q.conditions.push(
        browse::parse_condition(&lists_table, &format!("frame_id = {id}"))
            .map_err(|e| AppError::Internal(e.to_string()))?,
    );
    let lists_page = st.catalog.browse(&lists_table, &q).await?;
    let lists: Vec<(i64, String)> = lists_page
        .rows
        .iter()
        .filter_map(|r| match (&r[0], &r[2]) {
            (Cell::Int(s), Cell::Text(n)) => Some((*s, n.clone())),
            _ => None,
        })
        .collect();
    if let Some(s) = p.slid
        && !lists.iter().any(|(l, _)| *l == s)
    {
        return Err(AppError::BadRequest(format!(
            "slid: SourceList {s} was not extracted from frame {id}; its lists: {}",
            lists
                .iter()
                .map(|(l, _)| l.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let mut markers = Vec::new();
    if let Some(s) = p.slid {
        let g = &view.geometry;
        let t = Table::Sources(Slid(s));
        let mut q = Query::new(&t);
        q.page_size = 5000;
        for c in [
            format!("x between {},{}", g.x0 + 1, g.x0 + g.width as i64),
            format!("y between {},{}", g.y0 + 1, g.y0 + g.height as i64),
        ] {
            q.conditions.push(
                browse::parse_condition(&t, &c).map_err(|e| AppError::Internal(e.to_string()))?,
            );
        }
        let page = st.catalog.browse(&t, &q).await?;
        let idx = |name: &str| t.columns().iter().position(|c| c.name == name).unwrap_or(0);
        let (isid, ix, iy, ifwhm) = (idx("sid"), idx("x"), idx("y"), idx("fwhm"));
        for r in &page.rows {
            if let (Cell::Int(sid), Cell::Float(x), Cell::Float(y)) = (&r[isid], &r[ix], &r[iy]) {
                let fwhm = match &r[ifwhm] {
                    Cell::Float(f) => *f,
                    _ => 3.0,
                };
                markers.push(view.marker(*sid, *x, *y, fwhm));
            }
        }
    }

    let zooms = ZOOMS
        .iter()
        .zip(["0.5×", "1×", "2×"])
        .map(|(&z, label)| {
            (
                label,
                format!("/image/{id}?{}", View::view_query(&p, view.cx, view.cy, z)),
            )
        })
        .collect();
    let page = ImagePage {
        id,
        filename: frame.filename.clone(),
        naxis1: n1,
        naxis2: n2,
        bin: view.bin,
        bin_param: p.bin.name(),
        bins: ["fit", "1", "2", "4", "8"].map(String::from).to_vec(),
        stretch: p.stretch.name().to_owned(),
        stretches: Stretch::ALL.map(Stretch::name).to_vec(),
        interval: p.interval.clone(),
        intervals: intervals(&p.interval),
        min: p.min.map(|v| v.to_string()).unwrap_or_default(),
        max: p.max.map(|v| v.to_string()).unwrap_or_default(),
        invert: p.invert,
        zoom: p.zoom,
        cx: view.cx,
        cy: view.cy,
        x0: view.geometry.x0,
        y0: view.geometry.y0,
        width: view.geometry.width,
        height: view.geometry.height,
        out_w: view.out_w,
        out_h: view.out_h,
        disp_w: view.disp_w,
        disp_h: view.disp_h,
        src: format!("/render/{id}?{}", view.render_query(&p, false)),
        fits_url: format!("/render/{id}?{}", view.render_query(&p, true)),
        pan: view
            .pan(&p)
            .into_iter()
            .map(|(name, q)| (name, format!("/image/{id}?{q}")))
            .collect(),
        zooms,
        presets: view
            .presets(&p)
            .into_iter()
            .map(|(name, q, shown)| (name, format!("/image/{id}?{q}"), shown))
            .collect(),
        lists: lists
            .into_iter()
            .map(|(l, n)| (l, n, Some(l) == p.slid))
            .collect(),
        slid: p.slid,
        markers,
    };
    Ok(Html(page.render()?).into_response())
}

/// The intervals offered by the form: the usual ones, those of the
/// contrast presets, and the one shown if it is none of these (so that
/// submitting the form keeps it rather than falling back to the first).
fn intervals(shown: &str) -> Vec<String> {
    let mut list: Vec<String> = [
        "zscale",
        "percentile",
        "percentile:99.9",
        "percentile:99",
        "percentile:95",
        "percentile:90",
        "minmax",
        "manual",
    ]
    .map(String::from)
    .to_vec();
    for (_, i) in CONTRAST_PRESETS {
        if !list.iter().any(|l| l == i) {
            list.push((*i).to_owned());
        }
    }
    if !list.iter().any(|l| l.eq_ignore_ascii_case(shown)) {
        list.push(shown.to_owned());
    }
    list
}

/// `GET /render/{id}?…`: a cutout of frame `id` without the cutout size
/// limit, for the image view (whole frames).
pub async fn render(
    super::auth::Scoped(st): super::auth::Scoped,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let id = super::object_id(&id).map_err(ApiError::bad)?;
    let p = QueryParams::parse(raw.as_deref(), &CUTOUT_PARAMS[1..])?;
    let request = cutout_api::cutout_request(&p, FrameKey::Id(ObjectId(id)), usize::MAX)?;
    let product = st
        .services
        .products
        .cutout(request, cutout_api::if_none_match(&headers))
        .await?;
    Ok(cutout_api::product_response(product, started))
}

/// `GET /api/pixel?frame=ID&x=&y=`: the value, RA and Dec of one pixel
/// (FITS 1-based position) as JSON.
pub async fn pixel(
    super::auth::Scoped(st): super::auth::Scoped,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let p = QueryParams::parse(raw.as_deref(), &["frame", "x", "y"])?;
    let products = std::sync::Arc::clone(&st.services.products);
    let key = FrameKey::parse(p.get("frame").unwrap_or(""))?;
    let frame = products
        .frames
        .resolve(&products.catalog, &products.images.data_root, &key)
        .await?;
    let coord = |name: &'static str| -> Result<f64, ApiError> {
        p.number(name)?
            .ok_or_else(|| ApiError::bad(format!("{name}: missing (FITS pixel, 1-based)")))
    };
    let (x, y) = (coord("x")?, coord("y")?);
    let out = tokio::task::spawn_blocking(move || -> Result<serde_json::Value, ApiError> {
        let source = products.images.open(&frame)?;
        let (ix, iy) = ((x - 0.5).floor(), (y - 0.5).floor());
        let inside =
            ix >= 0.0 && iy >= 0.0 && (ix as usize) < source.width && (iy as usize) < source.height;
        let value = if inside {
            let region = source.read(ix as usize, iy as usize, 1, 1).map_err(|e| {
                ApiError::from(crate::products::ProductError::from_fits(e, &frame.filename))
            })?;
            let v = cutout::physical_values(&region, &source.scaling)[0];
            if v.is_finite() { Some(v) } else { None }
        } else {
            None
        };
        let sky = source.wcs.as_ref().and_then(|w| w.pix_to_sky(x, y));
        Ok(serde_json::json!({
            "x": x,
            "y": y,
            "inside": inside,
            "value": value,
            "ra": sky.map(|s| s.0),
            "dec": sky.map(|s| s.1),
        }))
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(axum::Json(out).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> ViewParams {
        ViewParams {
            bin: Binning::Fit,
            stretch: Stretch::Linear,
            interval: "zscale".into(),
            contrast: None,
            min: None,
            max: None,
            invert: false,
            zoom: 1.0,
            cx: None,
            cy: None,
            slid: None,
        }
    }

    #[test]
    fn fit_shows_the_whole_frame_centred() {
        let v = View::new(2048, 1000, &params());
        assert_eq!(v.bin, 2);
        assert_eq!((v.geometry.x0, v.geometry.y0), (0, 0));
        assert_eq!((v.geometry.width, v.geometry.height), (2048, 1000));
        assert_eq!((v.out_w, v.out_h), (1024, 500));
        assert_eq!((v.cx, v.cy), (1024.5, 500.5));
        assert_eq!(v.geometry.padded, 0);
    }

    #[test]
    fn a_centre_near_the_edge_is_kept_on_the_frame() {
        let p = ViewParams {
            bin: Binning::Factor(1),
            cx: Some(10.0),
            cy: Some(5000.0),
            ..params()
        };
        let v = View::new(2048, 2048, &p);
        assert_eq!((v.geometry.width, v.geometry.height), (1024, 1024));
        assert_eq!((v.geometry.x0, v.geometry.y0), (0, 1024));
        assert_eq!(v.geometry.padded, 0);
        // The box is the cutout engine's own placement of that centre.
        let g = cutout::place(v.cx, v.cy, 1024, 1024, 2048, 2048).unwrap();
        assert_eq!(g, v.geometry);
    }

    #[test]
    fn markers_land_on_their_pixels() {
        let p = ViewParams {
            bin: Binning::Factor(2),
            zoom: 2.0,
            ..params()
        };
        let v = View::new(512, 256, &p);
        assert_eq!((v.out_w, v.out_h, v.disp_w, v.disp_h), (256, 128, 512, 256));
        // FITS (1, 1) is the bottom-left pixel: SVG x 0.25, y near the
        // bottom edge.
        let m = v.marker(7, 1.0, 1.0, 4.0);
        assert_eq!((m.cx, m.cy, m.r), (0.25, 127.75, 3.0));
        let m = v.marker(8, 512.5, 256.5, 10.0);
        assert_eq!((m.cx, m.cy, m.r), (256.0, 0.0, 7.5));
    }

    #[test]
    fn queries_keep_the_settings() {
        let p = ViewParams {
            interval: "manual".into(),
            min: Some(1.0),
            max: Some(9.0),
            invert: true,
            slid: Some(3),
            ..params()
        };
        let v = View::new(100, 100, &p);
        let r = v.render_query(&p, false);
        assert!(r.contains("interval=manual") && r.contains("min=1") && r.contains("invert=1"));
        assert!(r.contains("output_size=100x100") && r.ends_with("format=png"));
        let q = View::view_query(&p, 1.0, 2.0, 2.0);
        assert!(q.contains("slid=3") && q.contains("zoom=2") && q.contains("max=9"));
        assert_eq!(v.pan(&p).len(), 4);
    }

    #[test]
    fn presets_replace_only_the_interval() {
        let p = ViewParams {
            bin: Binning::Factor(2),
            stretch: Stretch::Asinh,
            interval: "manual".into(),
            min: Some(1.0),
            max: Some(9.0),
            invert: true,
            zoom: 2.0,
            slid: Some(3),
            ..params()
        };
        let v = View::new(100, 100, &p);
        let presets = v.presets(&p);
        assert_eq!(presets.len(), CONTRAST_PRESETS.len());
        for (name, q, shown) in presets {
            assert!(!shown, "{name}: manual limits are no preset");
            for kept in [
                "bin=2",
                "stretch=asinh",
                "invert=1",
                "zoom=2",
                "slid=3",
                "cx=",
                "cy=",
            ] {
                assert!(q.contains(kept), "{name} lost {kept}: {q}");
            }
            assert!(q.contains(&format!("contrast={name}")), "{q}");
            assert!(!q.contains("min=") && !q.contains("interval="), "{q}");
        }
    }
}
