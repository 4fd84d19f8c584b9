//! The VO endpoints: SIA 2.0 (`/vo/sia`, also `/vo/sia/query`), SODA 1.0
//! (`/vo/soda/sync`), DataLink 1.1 (`/vo/links`), VOSI availability, PROV,
//! MOC, and the stored files themselves (`/data/{id}`). The capabilities
//! documents, Simple Cone Search and the registry record are in
//! `vo_services`; TAP is in `tap_endpoints`.
//!
//! GET and POST (form-encoded) are accepted everywhere, as DALI requires;
//! parameter names are case-insensitive. Errors follow each standard:
//! SIA and DataLink answer a VOTable with `QUERY_STATUS=ERROR`, SODA a
//! `text/plain` line beginning `UsageError:`, `NotFoundFault:` or `Error:`.
//! Absolute URLs in answers use `--public-url` when given, otherwise the
//! request's `Host` (never `X-Forwarded-*`: see [`base_url`]), so a server
//! reached under any name links back to itself.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use std::marker::PhantomData;

use super::AppState;
use crate::catalog::CatalogError;
use crate::catalog::browse::Table;
use crate::catalog::lineage::Direction;
use crate::ids::ObjectId;
use crate::imaging::cutout::CutoutSpec;
use crate::imaging::wcs::Wcs;
use crate::model::FrameClass;
use crate::params::choice;
use crate::params::cutout::CutoutFormat;
use crate::params::rendering::Rendering;
use crate::products::ProductError;
use crate::products::cutout::CutoutRequest;
use crate::products::frames::FrameKey;
use crate::vo::votable::{self, Document, QueryStatus, Serialization};

/// Parameters of DataLink's `/vo/links`.
pub const LINKS_PARAMS: &[&str] = &["ID", "RESPONSEFORMAT", "RUNID"];
/// Parameters of `/prov`.
pub const PROV_PARAMS: &[&str] = &["ID", "DEPTH", "DIRECTION", "RESPONSEFORMAT", "RUNID"];
/// Parameters of `/vo/moc`.
pub const MOC_PARAMS: &[&str] = &["class", "filter", "depth", "format", "RUNID"];
use crate::vo::{DalParams, datalink, obscore, sia, soda};

/// The base URL for absolute links in an answer: `--public-url` when
/// given, else `http://` and the request's `Host`.
///
/// `X-Forwarded-Host` and `X-Forwarded-Proto` are never read: without a
/// proxy we configured they are whatever the client wrote, and would let
/// anyone point the links of an answer (a VOTable handed on to TOPCAT, a
/// capabilities document) at a host of their choosing. Behind a proxy,
/// `--public-url` says where users reach us.
pub fn base_url(st: &AppState, headers: &HeaderMap) -> String {
    if st.config.public_url_fixed {
        return st.config.public_url.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            // A Host header is client input: accept only what a host:port is
            // made of, so it cannot inject markup or paths into answers.
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
        });
    match host {
        Some(h) => format!("http://{h}"),
        None => st.config.public_url.clone(),
    }
}

/// Query string and form body together.
fn params<F: FaultForm>(query: Option<&str>, body: &[u8]) -> Result<DalParams, VoError<F>> {
    let mut p = DalParams::parse(query.unwrap_or("")).map_err(VoError::usage)?;
    if !body.is_empty() {
        let text = std::str::from_utf8(body)
            .map_err(|_| VoError::usage("the request body is not UTF-8 form data"))?;
        p.extend(DalParams::parse(text).map_err(VoError::usage)?);
    }
    Ok(p)
}

/// A VOTable response.
pub fn votable_response(doc: &Document, ser: Serialization, content_type: &str) -> Response {
    (
        [(header::CONTENT_TYPE, content_type.to_owned())],
        doc.to_xml(ser),
    )
        .into_response()
}

/// The kinds of DALI faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The request is wrong (400).
    Usage,
    /// What it names does not exist (404).
    NotFound,
    /// The service failed (500).
    Error,
    /// The service is too busy now (503); the number is `Retry-After`.
    Busy(u64),
}

impl FaultKind {
    fn name(self) -> &'static str {
        match self {
            Self::Usage => "UsageError",
            Self::NotFound => "NotFoundFault",
            Self::Error | Self::Busy(_) => "Error",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Self::Usage => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Error => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// How a VO service writes its errors: SIA and DataLink as a VOTable with
/// `QUERY_STATUS=ERROR`, SODA and PROV as one `text/plain` line beginning
/// with the fault's name.
pub trait FaultForm {
    /// The error document for `kind` and `message`.
    fn render(kind: FaultKind, message: &str) -> Response;
}

/// Errors as a DALI error VOTable (SIA, DataLink).
#[derive(Debug)]
pub struct AsVoTable;

/// Errors as `text/plain` `Kind: message` (SODA, PROV).
#[derive(Debug)]
pub struct AsText;

impl FaultForm for AsVoTable {
    fn render(kind: FaultKind, message: &str) -> Response {
        let doc = Document {
            description: "wisecut error".into(),
            infos: vec![QueryStatus::Error(format!("{}: {message}", kind.name())).info()],
            table_name: "error".into(),
            ..Default::default()
        };
        let mut r = votable_response(&doc, Serialization::TableData, votable::MIME);
        *r.status_mut() = kind.status();
        r
    }
}

impl FaultForm for AsText {
    fn render(kind: FaultKind, message: &str) -> Response {
        (
            kind.status(),
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{}: {message}\n", kind.name()),
        )
            .into_response()
    }
}

/// The error of a VO endpoint, written in the form `F` its standard
/// prescribes. Faults of the server are logged and reported without their
/// detail.
#[derive(Debug)]
pub struct VoError<F> {
    kind: FaultKind,
    message: String,
    form: PhantomData<F>,
}

impl<F> VoError<F> {
    fn new(kind: FaultKind, message: impl Into<String>) -> Self {
        let message: String = message.into();
        Self {
            kind,
            // The same net as the other errors of the edge.
            message: crate::params::cut_long_words(&message).into_owned(),
            form: PhantomData,
        }
    }

    /// A `UsageError`: the request is wrong; the message names the
    /// parameter.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(FaultKind::Usage, message)
    }

    /// A `NotFoundFault`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(FaultKind::NotFound, message)
    }

    /// An `Error`: a fault of the server, logged with `detail`.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error in a VO service");
        Self::new(
            FaultKind::Error,
            "the service failed to answer this request; the details are in its log",
        )
    }
}

impl<F> From<CatalogError> for VoError<F> {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::NotFound { .. } => Self::not_found(e.to_string()),
            CatalogError::Query(m) => Self::usage(m),
            other => Self::internal(other),
        }
    }
}

impl<F> From<ProductError> for VoError<F> {
    fn from(e: ProductError) -> Self {
        match e {
            ProductError::Param(p) => Self::usage(p.to_string()),
            ProductError::Invalid(m) => Self::usage(m),
            ProductError::NotFound(m) => Self::not_found(m),
            ProductError::Internal(m) => Self::internal(m),
            ProductError::Damaged(m)
            | ProductError::StoreDown(m)
            | ProductError::StoreTimeout(m) => Self::new(FaultKind::Error, m),
            ProductError::Busy {
                message,
                retry_after,
            } => Self::new(FaultKind::Busy(retry_after), message),
        }
    }
}

impl<F: FaultForm> IntoResponse for VoError<F> {
    fn into_response(self) -> Response {
        let mut r = F::render(self.kind, &self.message);
        if let FaultKind::Busy(s) = self.kind {
            super::error::set_retry_after(&mut r, Some(s));
        }
        r
    }
}

/// What a SIA or DataLink handler returns.
type VoTableAnswer = Result<Response, VoError<AsVoTable>>;

/// What a SODA or PROV handler returns.
type TextAnswer = Result<Response, VoError<AsText>>;

/// `GET|POST /vo/sia` and `/vo/sia/query`.
pub async fn sia_query(
    super::auth::Scoped(st): super::auth::Scoped,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> VoTableAnswer {
    let base = base_url(&st, &headers);
    let q = sia::Query::parse(&params(query.as_deref(), &body)?).map_err(VoError::usage)?;
    let classes: Vec<FrameClass> = if q.collection.is_empty() {
        FrameClass::ALL.to_vec()
    } else {
        q.collection.clone()
    };
    // Frames are read in object-id order until one more than MAXREC match
    // (the answer then says it overflowed): a position query reads only
    // the frames the sky index names, any other the frame table in pages.
    let limit = q.maxrec.min(sia::MAX_MAXREC) as usize;
    let mut frames = match q.cells() {
        Some(cells) => {
            st.catalog
                .frames_in_cells_until(&cells, &classes, |f| q.matches(f), limit)
                .await?
        }
        None => {
            st.catalog
                .frames_until(&classes, |f| q.matches(f), limit)
                .await?
        }
    };
    frames.sort_by_key(|f| f.target.object_id.0);
    Ok(votable_response(
        &sia::answer(&frames, &q, &base),
        q.response.serialization,
        &q.response.media_type,
    ))
}

/// `GET /vo/availability` (VOSI).
pub async fn availability() -> Response {
    (
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        concat!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
            "<vosi:availability xmlns:vosi=\"http://www.ivoa.net/xml/VOSIAvailability/v1.0\">\n",
            "<vosi:available>true</vosi:available>\n",
            "<vosi:note>wisecut is accepting queries</vosi:note>\n",
            "</vosi:availability>\n"
        ),
    )
        .into_response()
}

/// `GET|POST /vo/soda/sync`: the pixels of a frame inside a region, as a
/// FITS cutout from the product service (same bytes and ETag as
/// `/api/cutout` for the same box); 204 when the region misses the frame.
pub async fn soda_sync(
    super::auth::Scoped(st): super::auth::Scoped,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> TextAnswer {
    let started = std::time::Instant::now();
    let req = soda::Request::parse(&params(query.as_deref(), &body)?).map_err(VoError::usage)?;
    let id = obscore::parse_ivoid(&req.id).ok_or_else(|| {
        VoError::not_found(format!(
            "{}: not a wisecut identifier (ivo://wisecut/obj?N)",
            req.id
        ))
    })?;
    let frame = match st.catalog.frame(id).await {
        Err(CatalogError::NotFound { .. }) => {
            return Err(VoError::not_found(format!(
                "{}: there is no frame {}",
                req.id, id.0
            )));
        }
        other => other?,
    };
    let (n1, n2) = (frame.naxis1 as usize, frame.naxis2 as usize);
    let (Some(kw), Some(corners)) = (&frame.wcs, &frame.footprint) else {
        return Err(VoError::usage(format!(
            "{}: {} {} has no sky WCS, so a sky region cannot be cut from it",
            req.id,
            frame.class.name(),
            frame.filename
        )));
    };
    let wcs = Wcs::new(kw, n1, n2).map_err(VoError::internal)?;
    let Some(b) = soda::pixel_box(&wcs, n1, n2, &req.region, corners) else {
        // SODA: a region that misses the data is not an error, just empty.
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let (x, y) = b.centre();
    let request = CutoutRequest {
        frame: FrameKey::Id(id),
        hdu: None,
        spec: CutoutSpec::pixel_box(x, y, b.width(), b.height()),
        format: CutoutFormat::Fits,
        rendering: Rendering::default(),
    };
    let product = st
        .services
        .products
        .cutout(request, super::cutout_api::if_none_match(&headers))
        .await?;
    Ok(super::cutout_api::product_response(product, started))
}

/// `GET|POST /vo/links`.
pub async fn links(
    super::auth::Scoped(st): super::auth::Scoped,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> VoTableAnswer {
    let base = base_url(&st, &headers);
    let p = params(query.as_deref(), &body)?;
    let format = crate::vo::VoTableFormat::parse(
        p.one("RESPONSEFORMAT").map_err(VoError::usage)?,
        datalink::LINKS_MIME,
    )
    .map_err(VoError::usage)?;
    let ids = p.all("ID");
    if ids.is_empty() {
        return Err(VoError::usage(
            "ID: missing; give one or more publisher DIDs (ivo://wisecut/obj?N)",
        ));
    }
    if ids.len() > datalink::MAX_IDS {
        return Err(VoError::usage(format!(
            "ID: {} identifiers given; at most {} per request",
            ids.len(),
            datalink::MAX_IDS
        )));
    }
    let mut rows = Vec::new();
    let mut services = Vec::new();
    for asked in ids {
        if let Some((frame, q)) = obscore::parse_cutout_did(asked) {
            match st.catalog.frame(frame).await {
                Ok(_) => rows.extend(datalink::cutout_links(&base, asked, frame, &q)),
                Err(CatalogError::NotFound { .. }) => rows.push(datalink::fault(
                    asked,
                    "NotFoundFault",
                    &format!("{asked}: there is no frame {}", frame.0),
                )),
                Err(e) => rows.push(datalink::fault(asked, "Error", &e.to_string())),
            }
            continue;
        }
        match subject(&st, &base, asked).await {
            Ok(Some(s)) => {
                let soda = s.on_sky.then(|| format!("soda-{}", s.id.0));
                if let Some(sd) = &soda
                    && !services
                        .iter()
                        .any(|x: &votable::ServiceDescriptor| &x.id == sd)
                {
                    services.push(datalink::soda_descriptor(
                        &base,
                        sd,
                        datalink::SodaDataset::Did(&obscore::ivoid(s.id)),
                    ));
                }
                rows.extend(datalink::links(&base, &s, soda.as_deref()));
            }
            Ok(None) => rows.push(datalink::fault(
                asked,
                "NotFoundFault",
                &format!("{asked}: no such object in this archive"),
            )),
            Err(e) => rows.push(datalink::fault(asked, "Error", &e)),
        }
    }
    let mut doc = datalink::document(&rows, services);
    doc.infos.extend(crate::vo::request_infos(&p, LINKS_PARAMS));
    Ok(votable_response(
        &doc,
        format.serialization,
        &format.media_type,
    ))
}

/// What DataLink needs about one identifier; `None` when it names nothing.
async fn subject(
    st: &AppState,
    base: &str,
    asked: &str,
) -> Result<Option<datalink::Subject>, String> {
    let Some(id) = obscore::parse_ivoid(asked) else {
        return Ok(None);
    };
    let target = match st.catalog.process_target(id).await {
        Ok(t) => t,
        Err(CatalogError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let class = target.class_name.clone();
    let mut s = datalink::Subject {
        asked: asked.to_owned(),
        id,
        class_name: class.clone(),
        file_size: None,
        on_sky: false,
        table_url: None,
        parents: vec![],
        children: vec![],
    };
    if class.parse::<FrameClass>().is_ok() {
        let f = st.catalog.frame(id).await.map_err(|e| e.to_string())?;
        s.file_size = Some(f.file_size);
        s.on_sky = f.wcs.is_some() && f.footprint.is_some();
    } else {
        let (table, key) = match class.as_str() {
            "SourceList" => (Table::SourceLists, "slid"),
            "AssociateList" => (Table::AssociateLists, "alid"),
            _ => return Ok(None),
        };
        let list = st
            .catalog
            .first_int(&table, &format!("object_id = {}", id.0), key)
            .await
            .map_err(|e| e.to_string())?;
        s.table_url = list.map(|v| format!("{base}/table/{class}/{v}?format=votable"));
    }
    for (dir, out) in [
        (Direction::Up, &mut s.parents),
        (Direction::Down, &mut s.children),
    ] {
        let l = st
            .catalog
            .lineage(id, dir, 1)
            .await
            .map_err(|e| e.to_string())?
            .without_restricted();
        for (edge, next) in l.next(id) {
            if let Some(n) = l.node(next) {
                out.push((next, n.class_name.clone(), edge.role.clone()));
            }
        }
    }
    Ok(Some(s))
}

/// `GET /data/{id}`: a frame's stored FITS file, as it is on disk
/// (tile-compressed files stay compressed: cfitsio and astropy read them).
pub async fn data(
    super::auth::Scoped(st): super::auth::Scoped,
    Path(id): Path<String>,
) -> Result<Response, super::ApiError> {
    use super::ApiError;
    let id = super::object_id(&id).map_err(ApiError::bad)?;
    let frame = st.catalog.frame(ObjectId(id)).await?;
    // A file that is no longer what was ingested (truncated, rewritten) is
    // reported, not served under the frame's name: a check of size and
    // time, and a hash when the time moved.
    let fref = crate::products::frames::FrameRef::of(&frame, &st.config.data_dir);
    let images = st.services.products.images.clone();
    let path = tokio::task::spawn_blocking(move || images.local_file(&fref))
        .await
        .map_err(ApiError::internal)??;
    let file = tokio::fs::File::open(&path).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ApiError::not_found(format!(
                "frame {id}: its file {} is missing from the data store",
                frame.filename
            ))
        } else {
            ApiError::internal(format!("{}: {e}", path.display()))
        }
    })?;
    let len = file
        .metadata()
        .await
        .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?
        .len();
    let stream = tokio_util::io::ReaderStream::new(file);
    Ok((
        [
            (header::CONTENT_TYPE, "application/fits".to_owned()),
            (header::CONTENT_LENGTH, len.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"{}\"",
                    frame.filename.replace('"', "")
                ),
            ),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

/// `GET|POST /prov`: the lineage of `ID` as W3C PROV, ProvSAP-style:
/// `DEPTH` (a number of steps or `ALL`, default 1), `DIRECTION` (`BACK`,
/// towards what it was made from, the default; or `FORWARD`),
/// `RESPONSEFORMAT` (`PROV-JSON`, the default, or `PROV-N`). Rendering a
/// deep lineage is CPU work and runs on a blocking thread.
pub async fn provenance(
    super::auth::Scoped(st): super::auth::Scoped,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> TextAnswer {
    use crate::vo::prov::ProvFormat;
    // Parameters PROV does not know are ignored, as DALI asks (RUNID
    // included); the answer is PROV, which has no place to say so.
    let p = params(query.as_deref(), &body)?;
    let one = |name: &str| p.one(name).map_err(VoError::usage);
    let id = one("ID")?
        .ok_or_else(|| VoError::usage("ID: missing; give an object id or ivo://wisecut/obj?N"))?;
    let id = obscore::parse_ivoid(id).ok_or_else(|| {
        VoError::usage(format!(
            "ID: {:?} is not an object id or ivo://wisecut/obj?N",
            crate::params::shown(id)
        ))
    })?;
    let depth = match one("DEPTH")? {
        None => 1,
        Some(d) if d.trim().eq_ignore_ascii_case("ALL") => crate::catalog::lineage::MAX_DEPTH,
        Some(d) => d
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|v| *v >= 1)
            .ok_or_else(|| {
                VoError::usage(format!(
                    "DEPTH: {:?} is not allowed; give a number of steps (1, 2, …) or ALL",
                    crate::params::shown(d)
                ))
            })?,
    };
    let direction = match one("DIRECTION")? {
        None => Direction::Up,
        Some(d) => choice(
            "DIRECTION",
            d,
            &[("BACK", Direction::Up), ("FORWARD", Direction::Down)],
        )
        .map_err(|e| VoError::usage(e.to_string()))?,
    };
    let format = match one("RESPONSEFORMAT")? {
        None => ProvFormat::Json,
        Some(f) => {
            ProvFormat::parse(f).map_err(|e| VoError::usage(format!("RESPONSEFORMAT: {e}")))?
        }
    };
    match st.catalog.process_target(id).await {
        Err(CatalogError::NotFound { .. }) => {
            return Err(VoError::not_found(format!(
                "ID: there is no object {}",
                id.0
            )));
        }
        other => other?,
    };
    let lineage = st
        .catalog
        .lineage(id, direction, depth)
        .await?
        .without_restricted();
    let base = base_url(&st, &headers);
    let body = tokio::task::spawn_blocking(move || format.render(&lineage, &base))
        .await
        .map_err(VoError::internal)?;
    Ok(([(header::CONTENT_TYPE, format.content_type())], body).into_response())
}

/// `GET /vo/moc`: the survey's footprint as a MOC. `class` (a frame class;
/// default: every class on the sky), `filter` (default: all), `depth`
/// (HEALPix order, default 14), `format` (`json`, the default, or `fits`).
pub async fn moc(
    super::auth::Scoped(st): super::auth::Scoped,
    RawQuery(query): RawQuery,
) -> Result<Response, super::ApiError> {
    use super::ApiError;
    use super::query_params::QueryParams;
    use crate::vo::coverage;
    let (p, ignored) = QueryParams::parse_lenient(query.as_deref(), MOC_PARAMS)?;
    let classes: Vec<FrameClass> = match p.get("class").filter(|c| !c.is_empty()) {
        None => FrameClass::ALL
            .into_iter()
            .filter(|c| obscore::is_science(*c))
            .collect(),
        Some(c) => vec![
            c.parse::<FrameClass>()
                .map_err(|e| ApiError::bad(format!("class: {e}")))?,
        ],
    };
    let depth = match p.get("depth") {
        None => coverage::DEFAULT_DEPTH,
        Some(d) => d
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|d| (1..=coverage::MAX_DEPTH).contains(d))
            .ok_or_else(|| {
                ApiError::bad(format!(
                    "depth: {d:?} is not a HEALPix order; allowed: 1 to {}",
                    coverage::MAX_DEPTH
                ))
            })?,
    };
    let fits = match p.get("format") {
        None => false,
        Some(f) => choice("format", f, &[("json", false), ("fits", true)])?,
    };
    let filter = p.get("filter").filter(|f| !f.is_empty());
    let cov = st
        .services
        .mocs
        .coverage(&st.catalog, &classes, filter, depth)
        .await?;
    let name = format!(
        "wisecut_moc_{}{}",
        p.get("class").unwrap_or("all"),
        filter.map(|f| format!("_{f}")).unwrap_or_default()
    )
    .replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "_");
    let frames = cov.frames.to_string();
    let mut response = if fits {
        (
            [
                (header::CONTENT_TYPE, "application/fits".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}.fits\""),
                ),
                (header::HeaderName::from_static("x-wisecut-frames"), frames),
            ],
            coverage::to_fits(&cov.moc),
        )
            .into_response()
    } else {
        (
            [
                (header::CONTENT_TYPE, "application/json".to_owned()),
                (header::HeaderName::from_static("x-wisecut-frames"), frames),
            ],
            coverage::to_json(&cov.moc),
        )
            .into_response()
    };
    if !ignored.is_empty()
        && let Ok(v) = header::HeaderValue::from_str(&ignored.join(", "))
    {
        response
            .headers_mut()
            .insert("x-wisecut-ignored-parameters", v);
    }
    Ok(response)
}
