//! The cutout API for scripts: `GET /api/cutout` (one FITS, PNG or JPEG
//! cutout of a frame) and `GET /api/images` (the frames that cover a
//! position, best first, with their cutout URLs).
//!
//! The handlers only parse, call the product service and map the answer to
//! HTTP: parameter names are case-insensitive, as in fitscut; an unknown or
//! repeated parameter is a 400 naming it; errors are `text/plain`, one line
//! that names the parameter and the allowed values. Every cutout response
//! carries the product's strong `ETag`, so `If-None-Match` revalidation is
//! answered with 304 without reading pixels.

use std::time::Instant;

use axum::extract::RawQuery;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ApiError;
use super::query_params::QueryParams;
use crate::model::{Frame, FrameClass};
use crate::params::cutout::{CutoutFormat, SpecParams};
use crate::params::rendering::RenderingParams;
use crate::params::{angle, choice};
use crate::products::cutout::{CutoutProduct, CutoutRequest};
use crate::products::frames::FrameKey;

/// Parameters of `/api/cutout`.
pub const CUTOUT_PARAMS: &[&str] = &[
    "frame",
    "hdu",
    "ra",
    "dec",
    "x",
    "y",
    "size",
    "width",
    "height",
    "unit",
    "format",
    "raw",
    "stretch",
    "interval",
    "min",
    "max",
    "invert",
    "nan",
    "output_size",
    "quality",
];

/// Reads a cutout request of `frame` from query parameters; sides over
/// `max_side` pixels are refused. Rendering parameters are validated for
/// every format, so a typo never passes silently; only images use them.
pub fn cutout_request(
    p: &QueryParams,
    frame: FrameKey,
    max_side: usize,
) -> Result<CutoutRequest, ApiError> {
    let spec = SpecParams {
        ra: p.get("ra"),
        dec: p.get("dec"),
        x: p.get("x"),
        y: p.get("y"),
        size: p.get("size"),
        width: p.get("width"),
        height: p.get("height"),
        unit: p.get("unit"),
        raw: p.flag("raw")?,
    }
    .parse(max_side)?;
    let format = CutoutFormat::parse(p.get("format"), p.get("quality"))?;
    let rendering = RenderingParams {
        stretch: p.get("stretch"),
        interval: p.get("interval"),
        min: p.given("min"),
        max: p.given("max"),
        invert: p.get("invert"),
        nan: p.get("nan"),
        output_size: p.get("output_size"),
    }
    .parse()?;
    let hdu = match p.get("hdu") {
        None => None,
        Some(h) => Some(h.trim().parse::<usize>().map_err(|_| {
            ApiError::bad(format!(
                "hdu: {:?} is not a zero-based HDU number",
                crate::params::shown(h)
            ))
        })?),
    };
    Ok(CutoutRequest {
        frame,
        hdu,
        spec,
        format,
        rendering,
    })
}

/// `GET /api/cutout`.
pub async fn cutout(
    super::auth::Scoped(st): super::auth::Scoped,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let p = QueryParams::parse(query.as_deref(), CUTOUT_PARAMS)?;
    let frame = FrameKey::parse(p.get("frame").unwrap_or(""))?;
    let request = cutout_request(&p, frame, st.config.max_cutout_px)?;
    let product = st
        .services
        .products
        .cutout(request, if_none_match(&headers))
        .await?;
    Ok(product_response(product, started))
}

/// The client's `If-None-Match`.
pub fn if_none_match(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A cutout product as an HTTP response: 200 with the bytes, or 304; the
/// ETag, caching, geometry, padding, cache outcome, display limits and
/// server timing as headers. `Server-Timing` has `cpu` (the CPU time the
/// request's work took), `work` (its wall time, without queueing for a
/// core) and `total` (the whole request, queueing included).
pub fn product_response(product: CutoutProduct, started: Instant) -> Response {
    let g = product.geometry;
    let mut response = match product.body {
        None => StatusCode::NOT_MODIFIED.into_response(),
        Some(body) => {
            // The grant is held until the bytes are handed to the
            // connection: a slow reader's bytes count like any other.
            let mut r =
                super::held_body::HeldBody::wrap(axum::body::Body::from(body), product.grant)
                    .into_response();
            set(&mut r, header::CONTENT_TYPE, product.format.mime());
            let disposition = if product.format == CutoutFormat::Fits {
                "attachment"
            } else {
                "inline"
            };
            set(
                &mut r,
                header::CONTENT_DISPOSITION,
                &format!("{disposition}; filename=\"{}\"", product.download_name),
            );
            r
        }
    };
    set(&mut response, header::ETAG, &product.etag);
    set(&mut response, header::CACHE_CONTROL, "public, max-age=3600");
    set_named(
        &mut response,
        "x-wisecut-geometry",
        &format!(
            "x0={} y0={} width={} height={}",
            g.x0, g.y0, g.width, g.height
        ),
    );
    set_named(&mut response, "x-wisecut-padded", &g.padded.to_string());
    set_named(&mut response, "x-wisecut-cache", product.delivery.name());
    if let Some((vmin, vmax)) = product.limits {
        set_named(
            &mut response,
            "x-wisecut-limits",
            &format!("{vmin:?} {vmax:?}"),
        );
    }
    set_named(
        &mut response,
        "server-timing",
        &format!(
            "cpu;dur={:.3}, work;dur={:.3}, total;dur={:.3}",
            product.cpu.as_secs_f64() * 1000.0,
            product.work.as_secs_f64() * 1000.0,
            started.elapsed().as_secs_f64() * 1000.0
        ),
    );
    response
}

/// The cutout-API query of a whole frame (`frame=…&x=…&y=…&width=…&height=…`,
/// centred on its middle), without a format: links to whole frames (the sky
/// view's FITS) name the same product as [`CutoutRequest::whole_frame`].
pub fn whole_frame_query(frame: &Frame) -> String {
    let (w, h) = (frame.naxis1, frame.naxis2);
    format!(
        "frame={}&x={}&y={}&width={w}&height={h}",
        frame.target.object_id,
        (f64::from(w) + 1.0) / 2.0,
        (f64::from(h) + 1.0) / 2.0,
    )
}

fn set(r: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

fn set_named(r: &mut Response, name: &'static str, value: &str) {
    set(r, header::HeaderName::from_static(name), value);
}

/// Parameters of `/api/images`.
pub const IMAGES_PARAMS: &[&str] = &["ra", "dec", "class", "filter", "size", "unit", "format"];

/// One frame covering a position, with its URLs.
#[derive(Debug, serde::Serialize)]
struct Covering {
    object_id: i64,
    filename: String,
    class: &'static str,
    filter: Option<String>,
    chip: Option<String>,
    mjd_obs: Option<f64>,
    naxis1: i32,
    naxis2: i32,
    x: f64,
    y: f64,
    edge_distance_px: f64,
    cutout_url: String,
    png_url: String,
    object_url: String,
}

/// `GET /api/images`: frames covering `ra`, `dec`, farthest from an edge
/// first, as JSON (default) or CSV.
pub async fn images(
    super::auth::Scoped(st): super::auth::Scoped,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let p = QueryParams::parse(query.as_deref(), IMAGES_PARAMS)?;
    let ra = angle::ra(
        "ra",
        p.get("ra")
            .ok_or_else(|| ApiError::bad("ra: missing (degrees or sexagesimal hours)"))?,
    )?;
    let dec = angle::dec(
        "dec",
        p.get("dec")
            .ok_or_else(|| ApiError::bad("dec: missing (degrees or sexagesimal)"))?,
    )?;
    let class = match p.given("class") {
        None => None,
        Some(c) => Some(
            c.parse::<FrameClass>()
                .map_err(|e| ApiError::bad(format!("class: {e}")))?,
        ),
    };
    let csv = match p.get("format") {
        None => false,
        Some(f) => choice("format", f, &[("json", false), ("csv", true)])?,
    };
    // Validate the size exactly as the cutout endpoint will.
    let size = p.get("size").unwrap_or("128");
    let unit = p.get("unit").unwrap_or("px");
    SpecParams {
        ra: Some("0"),
        dec: Some("0"),
        size: Some(size),
        unit: Some(unit),
        ..Default::default()
    }
    .parse(st.config.max_cutout_px)?;

    let frames =
        crate::products::frames::covering(&st.catalog, ra, dec, class, p.given("filter")).await?;
    let base = &st.config.public_url;
    let enc = |s: &str| serde_urlencoded::to_string([("v", s)]).unwrap_or_default()[2..].to_owned();
    let rows: Vec<Covering> = frames
        .into_iter()
        .map(|c| {
            let f = c.frame;
            let q = format!(
                "frame={}&ra={ra}&dec={dec}&size={}&unit={}",
                f.target.object_id,
                enc(size),
                enc(unit)
            );
            Covering {
                object_id: f.target.object_id.0,
                class: f.class.name(),
                naxis1: f.naxis1,
                naxis2: f.naxis2,
                mjd_obs: f.mjd_obs,
                x: c.x,
                y: c.y,
                edge_distance_px: c.edge_distance_px,
                cutout_url: format!("{base}/api/cutout?{q}&format=fits"),
                png_url: format!("{base}/api/cutout?{q}&format=png"),
                object_url: format!("{base}/object/{}", f.target.object_id),
                filename: f.filename,
                filter: f.filter,
                chip: f.chip,
            }
        })
        .collect();
    let stem = format!("images_{ra:.5}_{dec:+.5}");
    if csv {
        let body = super::csv_document(
            &[
                "object_id",
                "filename",
                "class",
                "filter",
                "chip",
                "mjd_obs",
                "naxis1",
                "naxis2",
                "x",
                "y",
                "edge_distance_px",
                "cutout_url",
                "png_url",
                "object_url",
            ],
            rows.iter().map(|r| {
                vec![
                    r.object_id.to_string(),
                    r.filename.clone(),
                    r.class.to_owned(),
                    r.filter.clone().unwrap_or_default(),
                    r.chip.clone().unwrap_or_default(),
                    r.mjd_obs.map(|m| m.to_string()).unwrap_or_default(),
                    r.naxis1.to_string(),
                    r.naxis2.to_string(),
                    format!("{:.3}", r.x),
                    format!("{:.3}", r.y),
                    format!("{:.3}", r.edge_distance_px),
                    r.cutout_url.clone(),
                    r.png_url.clone(),
                    r.object_url.clone(),
                ]
            }),
        );
        let mut r = body.into_response();
        set(&mut r, header::CONTENT_TYPE, "text/csv; charset=utf-8");
        set(
            &mut r,
            header::CONTENT_DISPOSITION,
            &format!("inline; filename=\"{stem}.csv\""),
        );
        return Ok(r);
    }
    let body = serde_json::json!({
        "ra": ra,
        "dec": dec,
        "count": rows.len(),
        "images": rows,
    });
    let mut r = axum::Json(body).into_response();
    set(
        &mut r,
        header::CONTENT_DISPOSITION,
        &format!("inline; filename=\"{stem}.json\""),
    );
    Ok(r)
}
