//! The image view (`/image/{id}`): a whole frame or a part of it, rendered on
//! demand by the shared cutout/render path (and so cached with a size bound),
//! with binning (1, 2, 4, 8 or fit to screen), contrast presets, every
//! stretch and interval, inversion, display size 0.5×/1×/2×, panning, a
//! SourceList overlay, and a pixel read-out (`/api/pixel`, used by a few lines
//! of JavaScript; everything else works without it).

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::response::{Html, IntoResponse, Response};

use super::cutout_api::{ApiError, Params};
use super::{AppError, AppState};
use crate::catalog::browse::{self, Cell, Query, Table};
use crate::ids::{ObjectId, Slid};
use crate::imaging::render::{Interval, Stretch};

/// Largest side of the rendered view in screen pixels.
pub const VIEW_PX: usize = 1024;

/// Binning factors offered besides "fit".
pub const BINS: &[usize] = &[1, 2, 4, 8];

const PARAMS: &[&str] = &[
    "bin", "stretch", "interval", "contrast", "min", "max", "invert", "zoom", "cx", "cy", "slid",
];

/// A source drawn on the view.
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
    pub intervals: Vec<&'static str>,
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
    /// Pan links (north = +y, south, east = -x... in pixel terms: up, down, left, right).
    pub pan: Vec<(&'static str, String)>,
    /// Zoom links.
    pub zooms: Vec<(&'static str, String)>,
    /// SourceLists of this frame: (slid, name, drawn).
    pub lists: Vec<(i64, String, bool)>,
    /// The SourceList drawn.
    pub slid: Option<i64>,
    /// Its sources in view.
    pub markers: Vec<Marker>,
}

/// `GET /image/{id}`.
pub async fn image(
    State(st): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    let id = super::object_id(&id).map_err(AppError::BadRequest)?;
    let p = Params::parse(raw.as_deref(), PARAMS).map_err(api_to_app)?;
    let frame = st.catalog.frame(ObjectId(id)).await?;
    let (n1, n2) = (frame.naxis1.max(1) as usize, frame.naxis2.max(1) as usize);

    let bin_param = p.get("bin").unwrap_or("fit").trim().to_ascii_lowercase();
    let fit_bin = n1.max(n2).div_ceil(VIEW_PX).max(1);
    let bin = match bin_param.as_str() {
        "fit" => fit_bin,
        b => b
            .parse::<usize>()
            .ok()
            .filter(|b| BINS.contains(b))
            .ok_or_else(|| {
                AppError::BadRequest(format!(
                    "bin: {b:?} is not a binning; allowed: 1, 2, 4, 8, fit"
                ))
            })?,
    };
    let stretch = p.get("stretch").unwrap_or("linear");
    Stretch::parse(stretch).map_err(|e| AppError::BadRequest(e.to_string()))?;
    let interval = match (p.get("contrast"), p.get("interval")) {
        (Some(_), Some(_)) => {
            return Err(AppError::BadRequest(
                "contrast: give either contrast (a preset) or interval, not both".into(),
            ));
        }
        (Some(c), None) => match c.trim().to_ascii_lowercase().as_str() {
            // High contrast clips hard (faint structure visible); low keeps
            // almost the whole range (bright structure visible).
            "high" => "zscale".to_owned(),
            "low" => "percentile:99.9".to_owned(),
            other => {
                return Err(AppError::BadRequest(format!(
                    "contrast: {other:?} is not a preset; allowed: high, low"
                )));
            }
        },
        (None, Some(i)) => i.trim().to_owned(),
        (None, None) => "zscale".to_owned(),
    };
    let number = |name: &'static str| p.number(name).map_err(api_to_app);
    let (min, max) = (number("min")?, number("max")?);
    // Validated here so a bad value is a 400 on the page, not a broken image.
    Interval::parse(
        &interval,
        if interval == "manual" { min } else { None },
        if interval == "manual" { max } else { None },
    )
    .map_err(|e| AppError::BadRequest(e.to_string()))?;
    let invert = p.flag("invert").map_err(api_to_app)?;
    let zoom = match p.get("zoom").map(str::trim) {
        None | Some("1") => 1.0,
        Some("0.5") => 0.5,
        Some("2") => 2.0,
        Some(z) => {
            return Err(AppError::BadRequest(format!(
                "zoom: {z:?} is not a display size; allowed: 0.5, 1, 2"
            )));
        }
    };

    // The view: at most VIEW_PX screen pixels of `bin` frame pixels each.
    let width = (VIEW_PX * bin).min(n1);
    let height = (VIEW_PX * bin).min(n2);
    let half = |n: usize| n as f64 / 2.0;
    let clamp_centre = |v: f64, n: usize, view: usize| {
        // Keep the view on the frame: centre between half a view from
        // either edge.
        let lo = half(view) + 0.5;
        let hi = n as f64 - half(view) + 0.5;
        if lo >= hi {
            (n as f64 + 1.0) / 2.0
        } else {
            v.clamp(lo, hi)
        }
    };
    let cx = clamp_centre(number("cx")?.unwrap_or((n1 as f64 + 1.0) / 2.0), n1, width);
    let cy = clamp_centre(number("cy")?.unwrap_or((n2 as f64 + 1.0) / 2.0), n2, height);
    let x0 = ((cx - 1.0) - half(width)).ceil() as i64;
    let y0 = ((cy - 1.0) - half(height)).ceil() as i64;
    let (out_w, out_h) = (width.div_ceil(bin), height.div_ceil(bin));
    let (disp_w, disp_h) = (
        (out_w as f64 * zoom).round() as usize,
        (out_h as f64 * zoom).round() as usize,
    );

    let mut render_q: Vec<(&str, String)> = vec![
        ("frame", id.to_string()),
        ("x", cx.to_string()),
        ("y", cy.to_string()),
        ("width", width.to_string()),
        ("height", height.to_string()),
        ("stretch", stretch.to_owned()),
        ("interval", interval.clone()),
        ("output_size", format!("{out_w}x{out_h}")),
    ];
    if interval == "manual" {
        render_q.push(("min", min.map(|v| v.to_string()).unwrap_or_default()));
        render_q.push(("max", max.map(|v| v.to_string()).unwrap_or_default()));
    }
    if invert {
        render_q.push(("invert", "1".into()));
    }
    let enc = |q: &[(&str, String)]| serde_urlencoded::to_string(q).unwrap_or_default();
    let src = format!("/render/{id}?{}&format=png", enc(&render_q[1..]));
    let fits_url = format!(
        "/render/{id}?{}",
        enc(&[
            ("x", cx.to_string()),
            ("y", cy.to_string()),
            ("width", width.to_string()),
            ("height", height.to_string()),
            ("format", "fits".into()),
        ])
    );

    // Links that change one thing of this view.
    let slid = number("slid")?.map(|v| v as i64);
    let view_url = |cx: f64, cy: f64, bin: &str, zoom: f64| {
        let mut q: Vec<(&str, String)> = vec![
            ("bin", bin.to_owned()),
            ("stretch", stretch.to_owned()),
            ("interval", interval.clone()),
            ("zoom", zoom.to_string()),
            ("cx", format!("{cx:.1}")),
            ("cy", format!("{cy:.1}")),
        ];
        if interval == "manual" {
            q.push(("min", min.map(|v| v.to_string()).unwrap_or_default()));
            q.push(("max", max.map(|v| v.to_string()).unwrap_or_default()));
        }
        if invert {
            q.push(("invert", "1".into()));
        }
        if let Some(s) = slid {
            q.push(("slid", s.to_string()));
        }
        format!("/image/{id}?{}", enc(&q))
    };
    let step_x = width as f64 / 2.0;
    let step_y = height as f64 / 2.0;
    let pan = vec![
        ("up", view_url(cx, cy + step_y, &bin_param, zoom)),
        ("down", view_url(cx, cy - step_y, &bin_param, zoom)),
        ("left", view_url(cx - step_x, cy, &bin_param, zoom)),
        ("right", view_url(cx + step_x, cy, &bin_param, zoom)),
    ];
    let zooms = vec![
        ("0.5×", view_url(cx, cy, &bin_param, 0.5)),
        ("1×", view_url(cx, cy, &bin_param, 1.0)),
        ("2×", view_url(cx, cy, &bin_param, 2.0)),
    ];

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
    if let Some(s) = slid
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
    if let Some(s) = slid {
        let t = Table::Sources(Slid(s));
        let mut q = Query::new(&t);
        q.page_size = 5000;
        for c in [
            format!("x between {},{}", x0 + 1, x0 + width as i64),
            format!("y between {},{}", y0 + 1, y0 + height as i64),
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
                // SVG coordinates of the rendered image: x right, y down.
                markers.push(Marker {
                    sid: *sid,
                    cx: (x - 0.5 - x0 as f64) / bin as f64,
                    cy: out_h as f64 - (y - 0.5 - y0 as f64) / bin as f64,
                    r: (1.5 * fwhm / bin as f64).max(3.0),
                });
            }
        }
    }

    let page = ImagePage {
        id,
        filename: frame.filename.clone(),
        naxis1: n1,
        naxis2: n2,
        bin,
        bin_param: bin_param.clone(),
        bins: ["fit", "1", "2", "4", "8"].map(String::from).to_vec(),
        stretch: stretch.to_ascii_lowercase(),
        stretches: Stretch::ALL.map(Stretch::name).to_vec(),
        interval,
        intervals: vec![
            "zscale",
            "percentile",
            "percentile:99",
            "percentile:95",
            "minmax",
            "manual",
        ],
        min: min.map(|v| v.to_string()).unwrap_or_default(),
        max: max.map(|v| v.to_string()).unwrap_or_default(),
        invert,
        zoom,
        cx,
        cy,
        x0,
        y0,
        width,
        height,
        out_w,
        out_h,
        disp_w,
        disp_h,
        src,
        fits_url,
        pan,
        zooms,
        lists: lists
            .into_iter()
            .map(|(l, n)| (l, n, Some(l) == slid))
            .collect(),
        slid,
        markers,
    };
    Ok(Html(page.render()?).into_response())
}

fn api_to_app(e: ApiError) -> AppError {
    AppError::BadRequest(e.message().to_owned())
}

/// `GET /render/{id}?…`: the cutout API's rendering without the cutout size
/// limit, for the image view (whole frames).
pub async fn render(
    State(st): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let id = super::object_id(&id).map_err(ApiError::bad)?;
    let query = format!("frame={id}&{}", raw.unwrap_or_default());
    super::cutout_api::cutout_unbounded(st, &query).await
}

/// `GET /api/pixel?frame=ID&x=&y=`: the value, RA and Dec of one pixel
/// (FITS 1-based position) as JSON.
pub async fn pixel(
    State(st): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::parse(raw.as_deref(), &["frame", "x", "y"])?;
    let frame = st
        .services
        .frames
        .resolve(&st, p.get("frame").unwrap_or(""))
        .await?;
    let coord = |name: &'static str| -> Result<f64, ApiError> {
        p.number(name)?
            .ok_or_else(|| ApiError::bad(format!("{name}: missing (FITS pixel, 1-based)")))
    };
    let (x, y) = (coord("x")?, coord("y")?);
    let services = std::sync::Arc::clone(&st.services);
    let out = tokio::task::spawn_blocking(move || -> Result<serde_json::Value, ApiError> {
        let source = services
            .sources
            .get(&frame.path, frame.hdu)
            .map_err(|e| ApiError::bad(e.to_string()))?;
        let (ix, iy) = ((x - 0.5).floor(), (y - 0.5).floor());
        let inside =
            ix >= 0.0 && iy >= 0.0 && (ix as usize) < source.width && (iy as usize) < source.height;
        let value = if inside {
            let region = source
                .read(ix as usize, iy as usize, 1, 1)
                .map_err(|e| ApiError::bad(e.to_string()))?;
            let v = crate::imaging::cutout::physical_values(&region, &source.scaling)[0];
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
    .map_err(|e| ApiError::bad(e.to_string()))??;
    Ok(axum::Json(out).into_response())
}
