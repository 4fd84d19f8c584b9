//! The cutout API for scripts: `GET /api/cutout` (one FITS, PNG or JPEG
//! cutout of a frame) and `GET /api/images` (the frames that cover a
//! position, best first, with their cutout URLs).
//!
//! Parameter names are case-insensitive, as in fitscut; an unknown or repeated
//! parameter is a 400 naming it, never ignored. Errors are `text/plain`, one
//! line that names the parameter and the allowed values.
//!
//! Caching: every response carries a strong `ETag` derived from what
//! determines its bytes (wisecut version, the frame's checksum, HDU, the
//! cutout's placement and the rendering parameters), so `If-None-Match`
//! revalidation is answered without reading pixels. FITS cutouts of plain and
//! sidecar-backed frames are made on every request — reading a few hundred
//! rows is cheaper than a disk cache round trip; cutouts of tile-compressed
//! frames and rendered images go through the on-demand product cache.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{AppState, Services};
use crate::catalog::CatalogError;
use crate::ids::ObjectId;
use crate::imaging::cutout::{self, Center, CutoutError, CutoutSpec, ParamError, Provenance};
use crate::imaging::fits::FitsError;
use crate::imaging::pixels::PixelSource;
use crate::imaging::render::{
    self, Interval, NanColor, OutputFormat, RenderError, RenderParams, Stretch,
};
use crate::imaging::wcs::Wcs;
use crate::model::{Frame, FrameClass};
use crate::products::cache::{CacheKey, Outcome};

/// An API error: a status and a one-line message for the caller.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// 400 with a message naming the parameter.
    pub fn bad(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// The message for the caller.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    /// 409: the thing exists but is not ready.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            message: message.into(),
        }
    }

    /// 410: the thing existed and was removed.
    pub fn gone(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::GONE,
            message: message.into(),
        }
    }

    /// 500, logging the detail.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error in the API");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "the server failed to answer this request; the details are in its log".into(),
        }
    }
}

impl From<ParamError> for ApiError {
    fn from(e: ParamError) -> Self {
        Self::bad(e.to_string())
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::NotFound { .. } => Self::not_found(e.to_string()),
            CatalogError::Query(m) => Self::bad(m),
            other => Self::internal(other),
        }
    }
}

impl From<crate::jobs::JobError> for ApiError {
    fn from(e: crate::jobs::JobError) -> Self {
        use crate::jobs::JobError;
        match e {
            JobError::Param { param, message } => Self::bad(format!("{param}: {message}")),
            JobError::Catalog(c) => c.into(),
            other => Self::internal(other),
        }
    }
}

impl From<CutoutError> for ApiError {
    fn from(e: CutoutError) -> Self {
        match e {
            CutoutError::Fits(f) => Self::internal(f),
            other => Self::bad(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{}\n", self.message),
        )
            .into_response()
    }
}

/// Query parameters with case-insensitive names, each given at most once and
/// each one of an allowed set.
#[derive(Debug)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Parses a raw query string, checking names against `allowed`.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|e| ApiError::bad(format!("the query string is malformed: {e}")))?;
        let mut map = HashMap::new();
        for (k, v) in pairs {
            let key = k.to_ascii_lowercase();
            if !allowed.contains(&key.as_str()) {
                return Err(ApiError::bad(format!(
                    "{k}: unknown parameter; allowed: {}",
                    allowed.join(", ")
                )));
            }
            if map.insert(key, v).is_some() {
                return Err(ApiError::bad(format!("{k}: given more than once")));
            }
        }
        Ok(Self(map))
    }

    /// The value of `name` (lower case), if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A finite number, if given (and not blank).
    pub fn number(&self, name: &'static str) -> Result<Option<f64>, ApiError> {
        self.get(name)
            .filter(|v| !v.trim().is_empty())
            .map(|v| {
                v.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .ok_or_else(|| ApiError::bad(format!("{name}: {v:?} is not a finite number")))
            })
            .transpose()
    }

    /// A boolean flag: absent → false; `1/true/yes/on` or `0/false/no/off`.
    pub fn flag(&self, name: &'static str) -> Result<bool, ApiError> {
        match self.get(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(false),
            Some(v) => match v.as_str() {
                "" | "1" | "true" | "yes" | "on" | "t" => Ok(true),
                "0" | "false" | "no" | "off" | "f" => Ok(false),
                _ => Err(ApiError::bad(format!(
                    "{name}: {v:?} is not a boolean; allowed: true, false, 1, 0"
                ))),
            },
        }
    }
}

/// What a cutout needs to know about a frame.
#[derive(Debug, Clone)]
pub struct FrameRef {
    /// Object id.
    pub object_id: ObjectId,
    /// Catalogue file name.
    pub filename: String,
    /// File on disk.
    pub path: PathBuf,
    /// Image HDU.
    pub hdu: usize,
    /// The file's SHA-256 at ingest: the frame's content identity.
    pub checksum: String,
}

/// A small, time-limited memo of frame lookups by the `frame` parameter.
#[derive(Debug)]
pub struct FrameLookup {
    capacity: usize,
    entries: Mutex<HashMap<String, (Instant, Arc<FrameRef>)>>,
}

/// How long a resolved frame is trusted before the database is asked again.
const FRAME_TTL: Duration = Duration::from_secs(30);

impl FrameLookup {
    /// A memo of at most `capacity` frames.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The frame named by `key` (an object id or a file name).
    pub async fn resolve(&self, st: &AppState, key: &str) -> Result<Arc<FrameRef>, ApiError> {
        let key = key.trim();
        if key.is_empty() {
            return Err(ApiError::bad(
                "frame: missing; give a frame's object id or file name",
            ));
        }
        if let Some((at, frame)) = self.lock().get(key)
            && at.elapsed() < FRAME_TTL
        {
            return Ok(Arc::clone(frame));
        }
        let frame = match key.parse::<i64>() {
            Ok(id) => st.catalog.frame(ObjectId(id)).await,
            Err(_) => st.catalog.frame_by_filename(key).await,
        }?;
        let r = Arc::new(frame_ref(&frame, &st.config.data_dir)?);
        let mut entries = self.lock();
        if entries.len() >= self.capacity {
            // Dropping everything is crude but bounded, and a refill costs
            // one query per frame.
            entries.clear();
        }
        entries.insert(key.to_owned(), (Instant::now(), Arc::clone(&r)));
        Ok(r)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Arc<FrameRef>)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn frame_ref(frame: &Frame, data_root: &std::path::Path) -> Result<FrameRef, ApiError> {
    Ok(FrameRef {
        object_id: frame.target.object_id,
        filename: frame.filename.clone(),
        path: frame.file_path(data_root),
        hdu: usize::try_from(frame.hdu).map_err(|_| {
            ApiError::internal(format!("frame {} has HDU {}", frame.filename, frame.hdu))
        })?,
        checksum: frame.checksum.clone(),
    })
}

/// Parameters of `/api/cutout`.
const CUTOUT_PARAMS: &[&str] = &[
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

/// Output formats of `/api/cutout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// FITS with the parent's BITPIX and the shifted WCS.
    Fits,
    /// A rendered image.
    Image(OutputFormat),
}

impl Format {
    const NAMES: &'static [&'static str] = &["fits", "png", "png16", "jpg"];

    fn parse(v: Option<&str>, quality: Option<&str>) -> Result<Self, ApiError> {
        let q = match quality {
            None => None,
            Some(q) => Some(
                q.trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|q| (1..=100).contains(q))
                    .ok_or_else(|| {
                        ApiError::bad(format!("quality: {q:?} is not an integer from 1 to 100"))
                    })?,
            ),
        };
        let f = match v.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            None | Some("fits") | Some("fit") => Self::Fits,
            Some("png") => Self::Image(OutputFormat::Png8),
            Some("png16") => Self::Image(OutputFormat::Png16),
            Some("jpg") | Some("jpeg") => Self::Image(OutputFormat::Jpeg {
                quality: q.unwrap_or(DEFAULT_JPEG_QUALITY),
            }),
            Some(other) => {
                return Err(ApiError::bad(format!(
                    "format: {other:?} is not a format; allowed: {}",
                    Self::NAMES.join(", ")
                )));
            }
        };
        if q.is_some() && !matches!(f, Self::Image(OutputFormat::Jpeg { .. })) {
            return Err(ApiError::bad("quality: only applies to format=jpg"));
        }
        Ok(f)
    }

    fn extension(self) -> &'static str {
        match self {
            Self::Fits => "fits",
            Self::Image(OutputFormat::Jpeg { .. }) => "jpg",
            Self::Image(_) => "png",
        }
    }

    fn mime(self) -> &'static str {
        match self {
            Self::Fits => "application/fits",
            Self::Image(f) => f.mime_type(),
        }
    }
}

/// JPEG quality when the request gives none.
const DEFAULT_JPEG_QUALITY: u8 = 90;

/// Rendering parameters from a request (`stretch`, `interval`, `min`, `max`,
/// `invert`, `nan`, `output_size`); one parser for every endpoint that
/// renders. `min`/`max` without `interval` mean `interval=manual`.
pub fn render_params(p: &Params) -> Result<Rendering, ApiError> {
    let bad = |e: RenderError| ApiError::bad(e.to_string());
    let mut params = RenderParams::default();
    if let Some(s) = p.get("stretch") {
        params.stretch = Stretch::parse(s).map_err(bad)?;
    }
    let (min, max) = (p.number("min")?, p.number("max")?);
    params.interval = match p.get("interval") {
        Some(i) => Interval::parse(i, min, max).map_err(bad)?,
        None if min.is_some() || max.is_some() => {
            Interval::parse("manual", min, max).map_err(bad)?
        }
        None => params.interval,
    };
    params.invert = p.flag("invert")?;
    if let Some(n) = p.get("nan") {
        params.nan = NanColor::parse(n).map_err(bad)?;
    }
    let output_size = match p.get("output_size") {
        None => None,
        Some(o) => {
            let parse = |t: &str| {
                t.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| (1..=MAX_OUTPUT_PX).contains(&n))
            };
            let size = match o.split_once(['x', 'X']) {
                Some((w, h)) => parse(w).zip(parse(h)).map(|(w, h)| OutputSize::Exact(w, h)),
                None => parse(o).map(OutputSize::Longest),
            };
            Some(size.ok_or_else(|| {
                ApiError::bad(format!(
                    "output_size: {o:?} is not N (longest side) or WxH, with sides from 1 to {MAX_OUTPUT_PX} px"
                ))
            })?)
        }
    };
    Ok(Rendering {
        params,
        output_size,
    })
}

/// Largest side of a rendered image.
const MAX_OUTPUT_PX: usize = 8192;

/// Requested size of a rendered image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputSize {
    /// The longer side becomes N pixels, keeping the aspect ratio.
    Longest(usize),
    /// Exactly W × H pixels.
    Exact(usize, usize),
}

impl OutputSize {
    /// The output size for an image of `w` × `h` pixels.
    pub fn resolve(self, w: usize, h: usize) -> (usize, usize) {
        match self {
            Self::Exact(a, b) => (a, b),
            Self::Longest(n) => {
                let (w, h) = (w.max(1) as f64, h.max(1) as f64);
                let scale = n as f64 / w.max(h);
                (
                    ((w * scale).round() as usize).max(1),
                    ((h * scale).round() as usize).max(1),
                )
            }
        }
    }
}

/// Rendering parameters and an output size still to be fitted to the image.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendering {
    /// Stretch, interval, inversion, NaN colour.
    pub params: RenderParams,
    /// Requested output size.
    pub output_size: Option<OutputSize>,
}

impl Rendering {
    /// The parameters for an image of `w` × `h` pixels.
    pub fn for_size(&self, w: usize, h: usize) -> RenderParams {
        RenderParams {
            output_size: self.output_size.map(|o| o.resolve(w, h)),
            ..self.params
        }
    }
}

/// `GET /api/cutout`.
pub async fn cutout(
    State(st): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let max = st.config.max_cutout_px;
    cutout_response(st, &headers, query.as_deref(), max).await
}

/// The cutout-API query of a whole frame (`frame=…&x=…&y=…&width=…&height=…`,
/// centred on its middle), without a format: thumbnails and the sky view
/// show whole frames through the same engine and cache as any cutout.
pub fn whole_frame_query(frame: &Frame) -> String {
    let (w, h) = (frame.naxis1, frame.naxis2);
    format!(
        "frame={}&x={}&y={}&width={w}&height={h}",
        frame.target.object_id,
        (f64::from(w) + 1.0) / 2.0,
        (f64::from(h) + 1.0) / 2.0,
    )
}

/// A cutout response for a query string without the configured size limit:
/// for pages of this server that show whole frames (thumbnails).
pub async fn cutout_unbounded(st: AppState, query: &str) -> Result<Response, ApiError> {
    cutout_response(st, &HeaderMap::new(), Some(query), usize::MAX).await
}

async fn cutout_response(
    st: AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    max_side: usize,
) -> Result<Response, ApiError> {
    let p = Params::parse(query, CUTOUT_PARAMS)?;
    let spec = cutout::SpecParams {
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
    let format = Format::parse(p.get("format"), p.get("quality"))?;
    // Validated for every format, so a typo never passes silently; only
    // images use them.
    let rendering = render_params(&p)?;
    let frame = st
        .services
        .frames
        .resolve(&st, p.get("frame").unwrap_or(""))
        .await?;
    let hdu = match p.get("hdu") {
        None => frame.hdu,
        Some(h) => h
            .trim()
            .parse::<usize>()
            .map_err(|_| ApiError::bad(format!("hdu: {h:?} is not a zero-based HDU number")))?,
    };
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let request = CutoutRequest {
        provenance: Provenance {
            object_id: Some(frame.object_id.0),
            file: frame.filename.clone(),
            object_url: Some(format!(
                "{}/object/{}",
                st.config.public_url, frame.object_id
            )),
        },
        frame,
        hdu,
        spec,
        format,
        rendering,
    };
    let stem = file_stem(&request.frame.filename);
    let started = Instant::now();

    // Locate (and, for plain FITS, make) on a blocking thread: file access.
    let services = Arc::clone(&st.services);
    let plan = tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        plan_cutout(&services, request, if_none_match).map(|p| (p, t.elapsed()))
    })
    .await
    .map_err(ApiError::internal)??;
    // Server work: the blocking part (and the cache), without the wait for a
    // free blocking thread.
    let (plan, mut work) = plan;
    let (geometry, etag, body, limits, outcome) = match plan {
        Plan::NotModified { geometry, etag } => (geometry, etag, None, None, "revalidated"),
        Plan::Made {
            geometry,
            etag,
            product,
        } => (geometry, etag, Some(product.body), product.limits, "made"),
        Plan::Cached {
            geometry,
            etag,
            key,
            job,
        } => {
            let t = Instant::now();
            let (bytes, outcome) = st
                .services
                .products
                .get_or_make(key, || async move {
                    tokio::task::spawn_blocking(move || job.run().map(|p| p.pack()))
                        .await
                        .map_err(ApiError::internal)?
                })
                .await?;
            work += t.elapsed();
            let product = Product::unpack(&bytes).map_err(ApiError::internal)?;
            let outcome = match outcome {
                Outcome::Hit => "cache-hit",
                Outcome::Made => "made",
                Outcome::Joined => "joined",
            };
            (geometry, etag, Some(product.body), product.limits, outcome)
        }
    };

    let filename = format!(
        "{stem}_x{}_y{}_{}x{}.{}",
        geometry.x0 + 1,
        geometry.y0 + 1,
        geometry.width,
        geometry.height,
        format.extension()
    );
    let mut response = match body {
        None => StatusCode::NOT_MODIFIED.into_response(),
        Some(body) => {
            let mut r = body.into_response();
            set(&mut r, header::CONTENT_TYPE, format.mime());
            let disposition = if format == Format::Fits {
                "attachment"
            } else {
                "inline"
            };
            set(
                &mut r,
                header::CONTENT_DISPOSITION,
                &format!("{disposition}; filename=\"{filename}\""),
            );
            r
        }
    };
    set(&mut response, header::ETAG, &etag);
    set(&mut response, header::CACHE_CONTROL, "public, max-age=3600");
    set_named(
        &mut response,
        "x-wisecut-geometry",
        &format!(
            "x0={} y0={} width={} height={}",
            geometry.x0, geometry.y0, geometry.width, geometry.height
        ),
    );
    set_named(
        &mut response,
        "x-wisecut-padded",
        &geometry.padded.to_string(),
    );
    set_named(&mut response, "x-wisecut-cache", outcome);
    if let Some((vmin, vmax)) = limits {
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
            "work;dur={:.3}, total;dur={:.3}",
            work.as_secs_f64() * 1000.0,
            started.elapsed().as_secs_f64() * 1000.0
        ),
    );
    Ok(response)
}

/// Everything one cutout request asks for, validated.
#[derive(Debug, Clone)]
struct CutoutRequest {
    frame: Arc<FrameRef>,
    hdu: usize,
    spec: CutoutSpec,
    format: Format,
    rendering: Rendering,
    provenance: Provenance,
}

/// A product's bytes and, for images, the data values shown black and white.
#[derive(Debug, Clone)]
struct Product {
    body: Vec<u8>,
    limits: Option<(f64, f64)>,
}

impl Product {
    /// Cache blob: a line of JSON metadata, then the body.
    fn pack(self) -> Vec<u8> {
        let meta = serde_json::json!({ "limits": self.limits });
        let mut out = serde_json::to_vec(&meta).unwrap_or_default();
        out.push(b'\n');
        out.extend_from_slice(&self.body);
        out
    }

    fn unpack(blob: &[u8]) -> Result<Self, String> {
        let nl = blob
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("cached product without metadata")?;
        let meta: serde_json::Value =
            serde_json::from_slice(&blob[..nl]).map_err(|e| format!("cached metadata: {e}"))?;
        let limits = meta["limits"]
            .as_array()
            .and_then(|a| Some((a.first()?.as_f64()?, a.get(1)?.as_f64()?)));
        Ok(Self {
            body: blob[nl + 1..].to_vec(),
            limits,
        })
    }
}

/// A cutout to make later (through the product cache).
struct CutoutJob {
    source: Arc<PixelSource>,
    geometry: cutout::Geometry,
    request: CutoutRequest,
}

impl CutoutJob {
    fn run(&self) -> Result<Product, ApiError> {
        let r = &self.request;
        let cut = cutout::extract(&self.source, &r.spec, self.geometry, &r.provenance)?;
        match r.format {
            Format::Fits => Ok(Product {
                body: cut.to_fits().map_err(ApiError::internal)?,
                limits: None,
            }),
            Format::Image(out) => {
                let image = cut.into_image_f32();
                let params = r.rendering.for_size(image.width, image.height);
                let rendered =
                    render::render(&image, &params).map_err(|e| ApiError::bad(e.to_string()))?;
                let body =
                    render::encode(&rendered, out).map_err(|e| ApiError::bad(e.to_string()))?;
                Ok(Product {
                    body,
                    limits: Some((rendered.vmin, rendered.vmax)),
                })
            }
        }
    }
}

/// What to do for a request once it is located.
enum Plan {
    NotModified {
        geometry: cutout::Geometry,
        etag: String,
    },
    Made {
        geometry: cutout::Geometry,
        etag: String,
        product: Product,
    },
    Cached {
        geometry: cutout::Geometry,
        etag: String,
        key: CacheKey,
        job: Box<CutoutJob>,
    },
}

/// Opens the source, places the cutout and decides how to answer. FITS
/// cutouts of frames read with `pread` (plain or sidecar) are made right
/// here: that is cheaper than any cache. Everything else goes through the
/// product cache.
fn plan_cutout(
    services: &Services,
    request: CutoutRequest,
    if_none_match: Option<String>,
) -> Result<Plan, ApiError> {
    let source = services
        .sources
        .get(&request.frame.path, request.hdu)
        .map_err(|e| match &e {
            FitsError::NoSuchHdu { .. } | FitsError::NotAnImage { .. } => {
                ApiError::bad(format!("hdu: {e}"))
            }
            FitsError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ApiError::not_found(format!(
                    "frame {}: its file {} is missing from the data store",
                    request.frame.object_id, request.frame.filename
                ))
            }
            _ => ApiError::internal(e),
        })?;
    let geometry = cutout::locate(&source, &request.spec)?;
    let key = product_key(&request, &geometry);
    let etag = format!("\"{}\"", &key.hex()[..32]);
    if if_none_match
        .as_deref()
        .is_some_and(|v| etag_matches(v, &etag))
    {
        return Ok(Plan::NotModified { geometry, etag });
    }
    let job = CutoutJob {
        source,
        geometry,
        request,
    };
    if job.request.format == Format::Fits && job.source.access() != "compressed" {
        let product = job.run()?;
        return Ok(Plan::Made {
            geometry,
            etag,
            product,
        });
    }
    Ok(Plan::Cached {
        geometry,
        etag,
        key,
        job: Box::new(job),
    })
}

/// The content address of a cutout product: everything its bytes depend on.
fn product_key(r: &CutoutRequest, g: &cutout::Geometry) -> CacheKey {
    let center = match r.spec.center {
        Center::Sky { ra, dec } => format!("sky:{ra:?}:{dec:?}"),
        Center::Pixel { x, y } => format!("pix:{x:?}:{y:?}"),
    };
    let rendering = match r.format {
        Format::Fits => String::new(),
        Format::Image(_) => format!("{:?}", r.rendering.for_size(g.width, g.height)),
    };
    CacheKey::of(&[
        b"cutout",
        crate::VERSION.as_bytes(),
        &r.frame.object_id.0.to_le_bytes(),
        r.frame.checksum.as_bytes(),
        r.provenance.object_url.as_deref().unwrap_or("").as_bytes(),
        &(r.hdu as u64).to_le_bytes(),
        center.as_bytes(),
        format!("{},{},{},{}", g.x0, g.y0, g.width, g.height).as_bytes(),
        &[u8::from(r.spec.raw_values)],
        format!("{:?}", r.format).as_bytes(),
        rendering.as_bytes(),
    ])
}

/// A download name from a catalogue file name: the part before `.fits` /
/// `.fz` / `.gz`, restricted to characters safe in a header value.
fn file_stem(name: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or(name);
    let mut stem = base;
    for ext in [".gz", ".fz", ".fits", ".fit", ".fts"] {
        if let Some(s) = stem.strip_suffix(ext) {
            stem = s;
        }
    }
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        "cutout".into()
    } else {
        clean
    }
}

/// Whether an `If-None-Match` value matches `etag` (a list, or `*`).
fn etag_matches(header_value: &str, etag: &str) -> bool {
    header_value
        .split(',')
        .map(|v| v.trim().trim_start_matches("W/"))
        .any(|v| v == "*" || v == etag)
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
const IMAGES_PARAMS: &[&str] = &["ra", "dec", "class", "filter", "size", "unit", "format"];

/// One frame covering a position.
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
    State(st): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::parse(query.as_deref(), IMAGES_PARAMS)?;
    let (ra, dec) = match (p.get("ra"), p.get("dec")) {
        (Some(r), Some(d)) => (
            cutout::parse_ra(r).map_err(|m| ApiError::bad(format!("ra: {m}")))?,
            cutout::parse_dec(d).map_err(|m| ApiError::bad(format!("dec: {m}")))?,
        ),
        (None, _) => return Err(ApiError::bad("ra: missing (degrees or sexagesimal hours)")),
        (_, None) => return Err(ApiError::bad("dec: missing (degrees or sexagesimal)")),
    };
    let class = match p.get("class") {
        None | Some("") => None,
        Some(c) => Some(FrameClass::parse(c).ok_or_else(|| {
            ApiError::bad(format!(
                "class: {c:?} is not a frame class; allowed: {}",
                FrameClass::ALL.map(|c| c.name()).join(", ")
            ))
        })?),
    };
    let csv = match p
        .get("format")
        .map(|f| f.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::bad(format!(
                "format: {other:?} is not a format; allowed: json, csv"
            )));
        }
    };
    // Validate the size exactly as the cutout endpoint will.
    let size = p.get("size").unwrap_or("128");
    let unit = p.get("unit").unwrap_or("px");
    cutout::SpecParams {
        ra: Some("0"),
        dec: Some("0"),
        size: Some(size),
        unit: Some(unit),
        ..Default::default()
    }
    .parse(st.config.max_cutout_px)?;

    let frames = st
        .catalog
        .frames_covering(ra, dec, class, p.get("filter").filter(|f| !f.is_empty()))
        .await?;
    let base = &st.config.public_url;
    let enc = |s: &str| serde_urlencoded::to_string([("v", s)]).unwrap_or_default()[2..].to_owned();
    let mut rows = Vec::new();
    for f in frames {
        let Some(kw) = &f.wcs else { continue };
        let (n1, n2) = (f.naxis1 as usize, f.naxis2 as usize);
        let Ok(wcs) = Wcs::new(kw, n1, n2) else {
            continue;
        };
        let Some((x, y)) = wcs.sky_to_pix(ra, dec) else {
            continue;
        };
        let edge = (x - 0.5)
            .min(n1 as f64 + 0.5 - x)
            .min(y - 0.5)
            .min(n2 as f64 + 0.5 - y);
        // NaN (no valid position) is not inside either.
        if edge.is_nan() || edge < 0.0 {
            continue;
        }
        let q = format!(
            "frame={}&ra={ra}&dec={dec}&size={}&unit={}",
            f.target.object_id,
            enc(size),
            enc(unit)
        );
        rows.push(Covering {
            object_id: f.target.object_id.0,
            filename: f.filename.clone(),
            class: f.class.name(),
            filter: f.filter.clone(),
            chip: f.chip.clone(),
            mjd_obs: f.mjd_obs,
            naxis1: f.naxis1,
            naxis2: f.naxis2,
            x,
            y,
            edge_distance_px: edge,
            cutout_url: format!("{base}/api/cutout?{q}&format=fits"),
            png_url: format!("{base}/api/cutout?{q}&format=png"),
            object_url: format!("{base}/object/{}", f.target.object_id),
        });
    }
    rows.sort_by(|a, b| {
        b.edge_distance_px
            .total_cmp(&a.edge_distance_px)
            .then(a.object_id.cmp(&b.object_id))
    });
    if csv {
        let mut out = String::from(
            "object_id,filename,class,filter,chip,mjd_obs,naxis1,naxis2,x,y,edge_distance_px,cutout_url,png_url,object_url\n",
        );
        for r in &rows {
            let fields = [
                r.object_id.to_string(),
                super::csv_field(&r.filename),
                r.class.to_owned(),
                super::csv_field(r.filter.as_deref().unwrap_or("")),
                super::csv_field(r.chip.as_deref().unwrap_or("")),
                r.mjd_obs.map(|m| m.to_string()).unwrap_or_default(),
                r.naxis1.to_string(),
                r.naxis2.to_string(),
                format!("{:.3}", r.x),
                format!("{:.3}", r.y),
                format!("{:.3}", r.edge_distance_px),
                super::csv_field(&r.cutout_url),
                super::csv_field(&r.png_url),
                super::csv_field(&r.object_url),
            ];
            out.push_str(&fields.join(","));
            out.push('\n');
        }
        let mut r = out.into_response();
        set(&mut r, header::CONTENT_TYPE, "text/csv; charset=utf-8");
        set(
            &mut r,
            header::CONTENT_DISPOSITION,
            &format!("inline; filename=\"images_{ra:.5}_{dec:+.5}.csv\""),
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
        &format!("inline; filename=\"images_{ra:.5}_{dec:+.5}.json\""),
    );
    Ok(r)
}
