//! The VO endpoints: SIA 2.0 (`/vo/sia/query`), SODA 1.0
//! (`/vo/soda/sync`), DataLink 1.1 (`/vo/links`), VOSI
//! (`/vo/availability`, `/vo/capabilities`, also under `/vo/sia/`), and the
//! stored files themselves (`/data/{id}`).
//!
//! GET and POST (form-encoded) are accepted everywhere, as DALI requires;
//! parameter names are case-insensitive. Errors follow each standard:
//! SIA and DataLink answer a VOTable with `QUERY_STATUS=ERROR`, SODA a
//! `text/plain` line beginning `UsageError:`, `NotFoundFault:` or `Error:`.
//! Absolute URLs in answers use `--public-url` when given, otherwise the
//! request's `Host`, so a server reached under any name links back to
//! itself.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::catalog::browse::Table;
use crate::catalog::lineage::Direction;
use crate::ids::ObjectId;
use crate::imaging::wcs::Wcs;
use crate::model::FrameClass;
use crate::vo::votable::{self, Document, QueryStatus, Serialization};
use crate::vo::{DalParams, datalink, obscore, sia, soda};

/// The base URL for absolute links in an answer.
pub fn base_url(st: &AppState, headers: &HeaderMap) -> String {
    if st.config.public_url_fixed {
        return st.config.public_url.clone();
    }
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(header::HOST))
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            // A Host header is client input: accept only what a host:port is
            // made of, so it cannot inject markup or paths into answers.
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
        });
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or("http");
    match host {
        Some(h) => format!("{proto}://{h}"),
        None => st.config.public_url.clone(),
    }
}

/// Query string and form body together.
fn params(query: Option<&str>, body: &[u8]) -> Result<DalParams, String> {
    let mut p = DalParams::parse(query.unwrap_or(""))?;
    if !body.is_empty() {
        let text =
            std::str::from_utf8(body).map_err(|_| "the request body is not UTF-8 form data")?;
        p.extend(DalParams::parse(text)?);
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

/// A DALI error document: a VOTable with `QUERY_STATUS=ERROR`.
fn votable_error(status: StatusCode, message: String) -> Response {
    let doc = Document {
        description: "wisecut error".into(),
        infos: vec![QueryStatus::Error(message).info()],
        table_name: "error".into(),
        ..Default::default()
    };
    let mut r = votable_response(&doc, Serialization::TableData, votable::MIME);
    *r.status_mut() = status;
    r
}

/// A `text/plain` fault, the kind first (`UsageError: …`), as SODA
/// requires; `/prov` answers its errors the same way.
fn text_fault(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{kind}: {message}\n"),
    )
        .into_response()
}

/// `GET|POST /vo/sia/query`.
pub async fn sia_query(
    State(st): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let base = base_url(&st, &headers);
    let q = match params(query.as_deref(), &body).and_then(|p| sia::Query::parse(&p)) {
        Ok(q) => q,
        Err(e) => return votable_error(StatusCode::BAD_REQUEST, format!("UsageError: {e}")),
    };
    let classes: Vec<FrameClass> = if q.collection.is_empty() {
        FrameClass::ALL.to_vec()
    } else {
        q.collection.clone()
    };
    let mut frames = Vec::new();
    for c in classes {
        match st.catalog.frames_of_class(c).await {
            Ok(fs) => frames.extend(fs.into_iter().filter(|f| q.matches(f))),
            Err(e) => {
                return votable_error(StatusCode::INTERNAL_SERVER_ERROR, format!("Error: {e}"));
            }
        }
    }
    frames.sort_by_key(|f| f.target.object_id.0);
    votable_response(
        &sia::answer(&frames, &q, &base),
        Serialization::TableData,
        votable::MIME,
    )
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

/// `GET /vo/capabilities` (VOSI): SIA 2.0, SODA sync, DataLink and the
/// VOSI endpoints themselves.
pub async fn capabilities(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let base = votable::escape(&base_url(&st, &headers));
    let cap = |standard: &str, path: &str, extra: &str| {
        format!(
            "<capability standardID=\"{standard}\"{extra}>\n<interface xsi:type=\"vs:ParamHTTP\" role=\"std\">\n<accessURL use=\"full\">{base}{path}</accessURL>\n</interface>\n</capability>\n"
        )
    };
    let mut body = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<vosi:capabilities xmlns:vosi=\"http://www.ivoa.net/xml/VOSICapabilities/v1.0\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:vs=\"http://www.ivoa.net/xml/VODataService/v1.1\">\n",
    );
    body.push_str(&cap(
        "ivo://ivoa.net/std/VOSI#capabilities",
        "/vo/capabilities",
        "",
    ));
    body.push_str(&cap(
        "ivo://ivoa.net/std/VOSI#availability",
        "/vo/availability",
        "",
    ));
    body.push_str(&cap(
        "ivo://ivoa.net/std/SIA#query-2.0",
        "/vo/sia/query",
        "",
    ));
    body.push_str(&cap(datalink::SODA_STANDARD_ID, "/vo/soda/sync", ""));
    body.push_str(&cap(datalink::STANDARD_ID, "/vo/links", ""));
    body.push_str("</vosi:capabilities>\n");
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
}

/// `GET|POST /vo/soda/sync`.
pub async fn soda_sync(
    State(st): State<AppState>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let req = match params(query.as_deref(), &body).and_then(|p| soda::Request::parse(&p)) {
        Ok(r) => r,
        Err(e) => return text_fault(StatusCode::BAD_REQUEST, "UsageError", &e),
    };
    let Some(id) = obscore::parse_ivoid(&req.id) else {
        return text_fault(
            StatusCode::NOT_FOUND,
            "NotFoundFault",
            &format!("{}: not a wisecut identifier (ivo://wisecut/obj?N)", req.id),
        );
    };
    let frame = match st.catalog.frame(id).await {
        Ok(f) => f,
        Err(crate::catalog::CatalogError::NotFound { .. }) => {
            return text_fault(
                StatusCode::NOT_FOUND,
                "NotFoundFault",
                &format!("{}: there is no frame {}", req.id, id.0),
            );
        }
        Err(e) => return text_fault(StatusCode::INTERNAL_SERVER_ERROR, "Error", &e.to_string()),
    };
    let (n1, n2) = (frame.naxis1 as usize, frame.naxis2 as usize);
    let (Some(kw), Some(corners)) = (&frame.wcs, &frame.footprint) else {
        return text_fault(
            StatusCode::BAD_REQUEST,
            "UsageError",
            &format!(
                "{}: {} {} has no sky WCS, so a sky region cannot be cut from it",
                req.id,
                frame.class.name(),
                frame.filename
            ),
        );
    };
    let wcs = match Wcs::new(kw, n1, n2) {
        Ok(w) => w,
        Err(e) => return text_fault(StatusCode::INTERNAL_SERVER_ERROR, "Error", &e.to_string()),
    };
    let Some(b) = soda::pixel_box(&wcs, n1, n2, &req.region, corners) else {
        // SODA: a region that misses the data is not an error, just empty.
        return StatusCode::NO_CONTENT.into_response();
    };
    let (x, y) = b.centre();
    let q = format!(
        "frame={}&x={x}&y={y}&width={}&height={}&format=fits",
        id.0,
        b.width(),
        b.height()
    );
    match super::cutout_api::cutout_unbounded(st, &q).await {
        Ok(r) => r,
        Err(e) => text_fault(e.status(), "Error", e.message()),
    }
}

/// `GET|POST /vo/links`.
pub async fn links(
    State(st): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let base = base_url(&st, &headers);
    let p = match params(query.as_deref(), &body) {
        Ok(p) => p,
        Err(e) => return votable_error(StatusCode::BAD_REQUEST, format!("UsageError: {e}")),
    };
    if let Some(u) = p.unknown(&["ID", "RESPONSEFORMAT"]).first() {
        return votable_error(
            StatusCode::BAD_REQUEST,
            format!(
                "UsageError: {u}: unknown parameter; DataLink takes ID (repeatable) and RESPONSEFORMAT"
            ),
        );
    }
    let ids = p.all("ID");
    if ids.is_empty() {
        return votable_error(
            StatusCode::BAD_REQUEST,
            "UsageError: ID: missing; give one or more publisher DIDs (ivo://wisecut/obj?N)".into(),
        );
    }
    if ids.len() > datalink::MAX_IDS {
        return votable_error(
            StatusCode::BAD_REQUEST,
            format!(
                "UsageError: ID: {} identifiers given; at most {} per request",
                ids.len(),
                datalink::MAX_IDS
            ),
        );
    }
    let mut rows = Vec::new();
    let mut services = Vec::new();
    for asked in ids {
        if let Some((frame, q)) = obscore::parse_cutout_did(asked) {
            match st.catalog.frame(frame).await {
                Ok(_) => rows.extend(datalink::cutout_links(&base, asked, frame, &q)),
                Err(crate::catalog::CatalogError::NotFound { .. }) => rows.push(datalink::fault(
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
                    services.push(datalink::soda_descriptor(&base, sd, &obscore::ivoid(s.id)));
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
    votable_response(
        &datalink::document(&rows, services),
        Serialization::TableData,
        datalink::LINKS_MIME,
    )
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
        Err(crate::catalog::CatalogError::NotFound { .. }) => return Ok(None),
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
    if FrameClass::parse(&class).is_some() {
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
            .map_err(|e| e.to_string())?;
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
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, super::cutout_api::ApiError> {
    use super::cutout_api::ApiError;
    let id = super::object_id(&id).map_err(ApiError::bad)?;
    let frame = st.catalog.frame(ObjectId(id)).await?;
    let path = frame.file_path(&st.config.data_dir);
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?;
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
/// `RESPONSEFORMAT` (`PROV-JSON`, the default, or `PROV-N`).
pub async fn provenance(
    State(st): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    use crate::vo::prov::ProvFormat;
    let usage = |m: String| text_fault(StatusCode::BAD_REQUEST, "UsageError", &m);
    let p = match params(query.as_deref(), &body) {
        Ok(p) => p,
        Err(e) => return usage(e),
    };
    if let Some(u) = p
        .unknown(&["ID", "DEPTH", "DIRECTION", "RESPONSEFORMAT"])
        .first()
    {
        return usage(format!(
            "{u}: unknown parameter; allowed: ID, DEPTH, DIRECTION, RESPONSEFORMAT"
        ));
    }
    let parsed = (|| -> Result<(ObjectId, u32, Direction, ProvFormat), String> {
        let id = p
            .one("ID")?
            .ok_or("ID: missing; give an object id or ivo://wisecut/obj?N")?;
        let oid = obscore::parse_ivoid(id)
            .ok_or_else(|| format!("ID: {id:?} is not an object id or ivo://wisecut/obj?N"))?;
        let depth = match p.one("DEPTH")?.map(|d| d.trim().to_ascii_uppercase()) {
            None => 1,
            Some(d) if d == "ALL" => crate::catalog::lineage::MAX_DEPTH,
            Some(d) => d.parse::<u32>().ok().filter(|v| *v >= 1).ok_or_else(|| {
                format!("DEPTH: {d:?} is not allowed; give a number of steps (1, 2, …) or ALL")
            })?,
        };
        let direction = match p.one("DIRECTION")?.map(|d| d.trim().to_ascii_uppercase()) {
            None => Direction::Up,
            Some(d) if d == "BACK" => Direction::Up,
            Some(d) if d == "FORWARD" => Direction::Down,
            Some(d) => {
                return Err(format!(
                    "DIRECTION: {d:?} is not allowed; allowed: BACK, FORWARD"
                ));
            }
        };
        let format = match p.one("RESPONSEFORMAT")? {
            None => ProvFormat::Json,
            Some(f) => ProvFormat::parse(f).map_err(|e| format!("RESPONSEFORMAT: {e}"))?,
        };
        Ok((oid, depth, direction, format))
    })();
    let (id, depth, direction, format) = match parsed {
        Ok(v) => v,
        Err(e) => return usage(e),
    };
    match st.catalog.process_target(id).await {
        Ok(_) => {}
        Err(crate::catalog::CatalogError::NotFound { .. }) => {
            return text_fault(
                StatusCode::NOT_FOUND,
                "NotFoundFault",
                &format!("ID: there is no object {}", id.0),
            );
        }
        Err(e) => return text_fault(StatusCode::INTERNAL_SERVER_ERROR, "Error", &e.to_string()),
    }
    let lineage = match st.catalog.lineage(id, direction, depth).await {
        Ok(l) => l,
        Err(e) => return text_fault(StatusCode::INTERNAL_SERVER_ERROR, "Error", &e.to_string()),
    };
    let base = base_url(&st, &headers);
    (
        [(header::CONTENT_TYPE, format.content_type())],
        format.render(&lineage, &base),
    )
        .into_response()
}

/// `GET /vo/moc`: the survey's footprint as a MOC. `class` (a frame class;
/// default: every class on the sky), `filter` (default: all), `depth`
/// (HEALPix order, default 14), `format` (`json`, the default, or `fits`).
pub async fn moc(
    State(st): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, super::cutout_api::ApiError> {
    use super::cutout_api::{ApiError, Params};
    use crate::vo::coverage;
    let p = Params::parse(query.as_deref(), &["class", "filter", "depth", "format"])?;
    let classes: Vec<FrameClass> = match p.get("class").filter(|c| !c.is_empty()) {
        None => FrameClass::ALL
            .into_iter()
            .filter(|c| obscore::is_science(*c))
            .collect(),
        Some(c) => vec![FrameClass::parse(c).ok_or_else(|| {
            ApiError::bad(format!(
                "class: {c:?} is not a frame class; allowed: {}",
                FrameClass::ALL.map(|c| c.name()).join(", ")
            ))
        })?],
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
    let fits = match p
        .get("format")
        .map(|f| f.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("json") => false,
        Some("fits") => true,
        Some(other) => {
            return Err(ApiError::bad(format!(
                "format: {other:?} is not a MOC format; allowed: json, fits"
            )));
        }
    };
    let filter = p.get("filter").filter(|f| !f.is_empty());
    let mut footprints = Vec::new();
    for c in classes {
        for f in st.catalog.frames_of_class(c).await? {
            if filter.is_some_and(|want| f.filter.as_deref() != Some(want)) {
                continue;
            }
            if let Some(fp) = f.footprint.as_deref().filter(|v| v.len() == 4) {
                footprints.push(coverage::Footprint {
                    class: c.name().to_owned(),
                    filter: f.filter.clone(),
                    corners: [fp[0], fp[1], fp[2], fp[3]],
                });
            }
        }
    }
    // Polygon rasterisation is about a millisecond per frame: off the
    // async threads.
    let cov = tokio::task::spawn_blocking(move || coverage::footprint_moc(&footprints, depth))
        .await
        .map_err(ApiError::internal)?;
    let name = format!(
        "wisecut_moc_{}{}",
        p.get("class").unwrap_or("all"),
        filter.map(|f| format!("_{f}")).unwrap_or_default()
    )
    .replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "_");
    let frames = cov.frames.to_string();
    Ok(if fits {
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
    })
}
