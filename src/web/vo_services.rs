//! The VO services' registry side and the cone search: Simple Cone Search
//! 1.03 (`/vo/scs`, every SourceList; `/vo/scs/{slid}`, one), its VOSI
//! resources, the VOSI capabilities of every wisecut service
//! ([`capabilities_xml`]), the registry record (`/vo/resource`,
//! [`resource_xml`]) and the CORS layer of the VO routes ([`cors`]).
//!
//! The capabilities and the registry record describe the same services
//! from one list ([`SERVICES`]), so a new service is added in one place.
//! Both validate against the IVOA schemas (VOSICapabilities 1.0,
//! VOResource 1.1, VODataService 1.1, TAPRegExt 1.0): `tests/it/scs.rs`
//! runs `stilts xsdvalidate` on them. Capabilities are plain
//! `vr:Capability`s with a `vs:ParamHTTP` interface, except TAP's, which
//! is a `tr:TableAccess` (taplint reads its languages and formats);
//! the SIA and SCS registry extensions (`sia:`, `cs:` types) are not
//! used, so that every document validates against schemas STILTS ships.
//!
//! SCS errors are answered with HTTP 200: an SCS 1.03 client reads the
//! VOTable's `INFO name="Error"`, and some treat any other status as a
//! broken service rather than a refused query.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};
use tower_http::cors::{Any, CorsLayer};

use super::AppState;
use super::vo_endpoints::base_url;
use crate::catalog::CatalogError;
use crate::ids::{ObjectId, Slid};
use crate::vo::votable::{self, Document, Serialization};
use crate::vo::{DalParams, datalink, scs};

/// The path of the cone search over every list.
pub const SCS_PATH: &str = "/vo/scs";
/// TAP's base URL (the TAP service itself is in its own module).
pub const TAP_PATH: &str = "/vo/tap";
/// VOSI capabilities of the whole archive.
pub const CAPABILITIES_PATH: &str = "/vo/capabilities";
/// VOSI availability of the whole archive.
pub const AVAILABILITY_PATH: &str = "/vo/availability";
/// VOSI tables (TAP's schema).
pub const TABLES_PATH: &str = "/vo/tap/tables";
/// SIA 2.0 `{query}`.
pub const SIA_PATH: &str = "/vo/sia/query";

/// The TAP `standardID`.
pub const TAP_STANDARD_ID: &str = "ivo://ivoa.net/std/TAP";
/// The SIA 2.0 `standardID`.
pub const SIA_STANDARD_ID: &str = "ivo://ivoa.net/std/SIA#query-2.0";
/// The archive's IVOA identifier.
pub const IVOID: &str = "ivo://wisecut";

/// The VODataService namespace (1.1 and 1.2 share it).
const VS_NS: &str = "http://www.ivoa.net/xml/VODataService/v1.1";
/// The VOResource namespace (1.0 and 1.1 share it).
const VR_NS: &str = "http://www.ivoa.net/xml/VOResource/v1.0";
/// The TAPRegExt namespace.
const TR_NS: &str = "http://www.ivoa.net/xml/TAPRegExt/v1.0";
/// The XML Schema instance namespace.
const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// One service in the capabilities and the registry record.
#[derive(Debug, Clone, Copy)]
pub struct Service {
    /// `standardID`.
    pub standard_id: &'static str,
    /// Path under the base URL.
    pub path: &'static str,
    /// A sentence for `<description>`.
    pub description: &'static str,
    /// `ParamHTTP` input parameters: name, data type, use, description.
    pub params: &'static [(&'static str, &'static str, &'static str, &'static str)],
}

/// Every service wisecut offers, in the order capabilities list them.
pub const SERVICES: &[Service] = &[
    Service {
        standard_id: "ivo://ivoa.net/std/VOSI#capabilities",
        path: CAPABILITIES_PATH,
        description: "The services of this archive (VOSI 1.1).",
        params: &[],
    },
    Service {
        standard_id: "ivo://ivoa.net/std/VOSI#availability",
        path: AVAILABILITY_PATH,
        description: "Whether the archive is accepting queries (VOSI 1.1).",
        params: &[],
    },
    Service {
        standard_id: "ivo://ivoa.net/std/VOSI#tables",
        path: TABLES_PATH,
        description: "The tables TAP queries (VOSI 1.1).",
        params: &[],
    },
    Service {
        standard_id: SIA_STANDARD_ID,
        path: SIA_PATH,
        description: "Simple Image Access 2.0 over every frame of the archive, \
            raw to coadd, with ObsCore columns.",
        params: &[],
    },
    Service {
        standard_id: datalink::SODA_STANDARD_ID,
        path: "/vo/soda/sync",
        description: "SODA 1.0 synchronous cutouts of any frame on the sky.",
        params: &[],
    },
    Service {
        standard_id: datalink::STANDARD_ID,
        path: "/vo/links",
        description: "DataLink 1.1: the files, cutouts, previews and the processing \
            lineage (#progenitor) of every object.",
        params: &[],
    },
    Service {
        standard_id: scs::STANDARD_ID,
        path: SCS_PATH,
        description: "Simple Cone Search 1.03 over the sources of every SourceList \
            (nearest first; MaxSR 1 degree, MaxRecords 50000, VERB 1 to 3 supported). \
            One list's sources are searched at /vo/scs/{SLID}.",
        params: &[
            (
                "RA",
                "real",
                "required",
                "Right ascension of the cone's centre, decimal degrees (ICRS)",
            ),
            (
                "DEC",
                "real",
                "required",
                "Declination of the cone's centre, decimal degrees (ICRS)",
            ),
            (
                "SR",
                "real",
                "required",
                "The cone's radius, decimal degrees (0: the columns only)",
            ),
            (
                "VERB",
                "integer",
                "optional",
                "Columns: 1 fewest, 2 (default), 3 all",
            ),
            ("MAXREC", "integer", "optional", "Most rows to return"),
        ],
    },
    Service {
        standard_id: TAP_STANDARD_ID,
        path: TAP_PATH,
        description: "TAP 1.1 with ADQL 2.1 over ivoa.ObsCore, the sources, the \
            associations and the lineage edges.",
        params: &[],
    },
];

/// The `tr:TableAccess` details of TAP's capability, after its interface:
/// what the issue asks the TAP service to offer (ADQL 2.1 and 2.0 with the
/// geometric functions, VOTable output, inline uploads, ObsCore 1.1).
const TAP_DETAILS: &str = concat!(
    "<dataModel ivo-id=\"ivo://ivoa.net/std/ObsCore#core-1.1\">ObsCore-1.1</dataModel>\n",
    "<language>\n<name>ADQL</name>\n",
    "<version ivo-id=\"ivo://ivoa.net/std/ADQL#v2.1\">2.1</version>\n",
    "<version ivo-id=\"ivo://ivoa.net/std/ADQL#v2.0\">2.0</version>\n",
    "<description>ADQL translated to SQL on SQLite or PostgreSQL</description>\n",
    "<languageFeatures type=\"ivo://ivoa.net/std/TAPRegExt#features-adqlgeo\">\n",
    "<feature><form>POINT</form></feature>\n",
    "<feature><form>CIRCLE</form></feature>\n",
    "<feature><form>POLYGON</form></feature>\n",
    "<feature><form>CONTAINS</form></feature>\n",
    "<feature><form>INTERSECTS</form></feature>\n",
    "<feature><form>DISTANCE</form></feature>\n",
    "</languageFeatures>\n</language>\n",
    "<outputFormat ivo-id=\"ivo://ivoa.net/std/TAPRegExt#output-votable-td\">",
    "<mime>application/x-votable+xml</mime><alias>votable</alias></outputFormat>\n",
    "<outputFormat ivo-id=\"ivo://ivoa.net/std/TAPRegExt#output-votable-binary2\">",
    "<mime>application/x-votable+xml;serialization=BINARY2</mime><alias>votable/b2</alias></outputFormat>\n",
    "<uploadMethod ivo-id=\"ivo://ivoa.net/std/TAPRegExt#upload-inline\"/>\n",
);

/// One `<capability>` element for `s` at `base`.
fn capability_xml(out: &mut String, base: &str, s: &Service) {
    let tap = s.standard_id == TAP_STANDARD_ID;
    let _ = write!(
        out,
        "<capability standardID=\"{}\"{}>\n<description>{}</description>\n",
        votable::escape(s.standard_id),
        if tap {
            " xsi:type=\"tr:TableAccess\""
        } else {
            ""
        },
        votable::escape(s.description)
    );
    // TAP's interface carries its version (TAP 1.1 §2: clients choose by
    // it); `use="base"` because parameters are appended (or the path
    // continues with /sync, /async).
    let (version, use_) = if tap {
        (" version=\"1.1\"", "base")
    } else {
        ("", if s.params.is_empty() { "full" } else { "base" })
    };
    let _ = write!(
        out,
        "<interface xsi:type=\"vs:ParamHTTP\" role=\"std\"{version}>\n<accessURL use=\"{use_}\">{}{}</accessURL>\n",
        votable::escape(base),
        votable::escape(s.path)
    );
    if !s.params.is_empty() {
        out.push_str("<queryType>GET</queryType>\n<queryType>POST</queryType>\n");
        out.push_str("<resultType>text/xml;content=x-votable</resultType>\n");
        for (name, ty, use_, desc) in s.params {
            let _ = writeln!(
                out,
                "<param use=\"{use_}\" std=\"true\"><name>{name}</name><description>{}</description><dataType>{ty}</dataType></param>",
                votable::escape(desc)
            );
        }
    }
    out.push_str("</interface>\n");
    if tap {
        out.push_str(TAP_DETAILS);
    }
    out.push_str("</capability>\n");
}

/// The VOSI capabilities document of every wisecut service at `base`.
pub fn capabilities_xml(base: &str) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<vosi:capabilities xmlns:vosi=\"http://www.ivoa.net/xml/VOSICapabilities/v1.0\" xmlns:xsi=\"{XSI_NS}\" xmlns:vr=\"{VR_NS}\" xmlns:vs=\"{VS_NS}\" xmlns:tr=\"{TR_NS}\">\n"
    );
    for s in SERVICES {
        capability_xml(&mut out, base, s);
    }
    out.push_str("</vosi:capabilities>\n");
    out
}

/// The registry record of the archive at `base`: a `vs:CatalogService`
/// with every capability. `span` is when its content began and last
/// changed (VOResource's `created` and `updated`); an empty archive uses
/// the time of the request for both.
pub fn resource_xml(
    base: &str,
    span: Option<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)>,
) -> String {
    let stamp = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let (created, updated) = span.unwrap_or_else(|| (chrono::Utc::now(), chrono::Utc::now()));
    let base_e = votable::escape(base);
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ri:Resource xmlns:ri=\"http://www.ivoa.net/xml/RegistryInterface/v1.0\" xmlns:xsi=\"{XSI_NS}\" xmlns:vr=\"{VR_NS}\" xmlns:vs=\"{VS_NS}\" xmlns:tr=\"{TR_NS}\" xsi:type=\"vs:CatalogService\" created=\"{}\" updated=\"{}\" status=\"active\">\n",
        stamp(created),
        stamp(updated)
    );
    let _ = write!(
        out,
        concat!(
            "<title>wisecut: a lineage-aware archive of survey images and their source catalogues</title>\n",
            "<shortName>wisecut</shortName>\n",
            "<identifier>{ivoid}</identifier>\n",
            "<curation>\n<publisher>wisecut</publisher>\n",
            "<contact><name>The wisecut operators</name></contact>\n</curation>\n",
            "<content>\n<subject>surveys</subject>\n<subject>astronomical images</subject>\n",
            "<subject>catalogs</subject>\n",
            "<description>An archive of the frames of a wide-field imaging survey (raw \
             exposures, calibration frames, reduced, regridded and coadded frames) with \
             their full processing lineage, and the source catalogues (SourceLists) and \
             cross-matches (AssociateLists) extracted from them. Images are searched with \
             SIA 2.0 and cut with SODA; DataLink and PROV give the lineage of every \
             object; the sources are searched with Simple Cone Search and, with the \
             frames as ObsCore, with TAP.</description>\n",
            "<referenceURL>{base}/help</referenceURL>\n",
            "<type>Archive</type>\n<type>Catalog</type>\n",
            "<contentLevel>Research</contentLevel>\n</content>\n"
        ),
        ivoid = IVOID,
        base = base_e
    );
    for s in SERVICES {
        capability_xml(&mut out, base, s);
    }
    out.push_str("<coverage><waveband>Optical</waveband></coverage>\n");
    out.push_str("</ri:Resource>\n");
    out
}

/// An XML answer.
fn xml(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
}

/// `GET /vo/capabilities` and `GET /vo/scs/capabilities` (VOSI): every
/// service.
pub async fn capabilities(
    super::auth::Scoped(st): super::auth::Scoped,
    headers: HeaderMap,
) -> Response {
    xml(capabilities_xml(&base_url(&st, &headers)))
}

/// `GET /vo/resource`: the registry record.
pub async fn resource(
    super::auth::Scoped(st): super::auth::Scoped,
    headers: HeaderMap,
) -> Result<Response, super::ApiError> {
    let span = st.catalog.creation_span().await?;
    Ok(xml(resource_xml(&base_url(&st, &headers), span)))
}

/// The CORS layer of the VO routes and the data: any origin may read the
/// answers (they are public, and browser VO clients such as Aladin Lite
/// or a notebook's JavaScript fetch them from other origins); preflight
/// `OPTIONS` is answered by the layer. No credentials are involved, so
/// `*` is allowed and exact.
pub fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::HEAD, Method::POST])
        .allow_headers(Any)
        .expose_headers(Any)
        .max_age(std::time::Duration::from_secs(86_400))
}

/// Query string and form body together (DALI: GET and POST alike).
fn dal_params(query: Option<&str>, body: &[u8]) -> Result<DalParams, String> {
    let mut p = DalParams::parse(query.unwrap_or(""))?;
    if !body.is_empty() {
        let text = std::str::from_utf8(body)
            .map_err(|_| "the request body is not UTF-8 form data".to_owned())?;
        p.extend(DalParams::parse(text)?);
    }
    Ok(p)
}

/// An SCS error: the SCS 1.03 error VOTable, HTTP 200.
fn scs_error(message: &str) -> Response {
    let message = crate::params::cut_long_words(message);
    super::vo_endpoints::votable_response(
        &scs::error_document(&message),
        Serialization::TableData,
        scs::DEFAULT_MIME,
    )
}

/// `GET|POST /vo/scs`: a cone over the sources of every SourceList.
pub async fn scs_all(
    super::auth::Scoped(st): super::auth::Scoped,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    cone(&st, &headers, query.as_deref(), &body, scs::Scope::All)
        .await
        .unwrap_or_else(|m| scs_error(&m))
}

/// `GET|POST /vo/scs/{slid}`: a cone over one SourceList's sources.
pub async fn scs_list(
    super::auth::Scoped(st): super::auth::Scoped,
    Path(slid): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let slid = match slid.trim().parse::<i64>() {
        Ok(v) => Slid(v),
        Err(_) => {
            return scs_error(&format!(
                "SLID: {:?} in the path is not a SourceList id; the lists are at /table/SourceList",
                crate::params::shown(&slid)
            ));
        }
    };
    cone(
        &st,
        &headers,
        query.as_deref(),
        &body,
        scs::Scope::List(slid),
    )
    .await
    .unwrap_or_else(|m| scs_error(&m))
}

/// The cone search; the error is the message of the error document.
async fn cone(
    st: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
    scope: scs::Scope,
) -> Result<Response, String> {
    let q = scs::Query::parse(&dal_params(query, body)?).map_err(|e| e.to_string())?;
    let db = |e: CatalogError| match e {
        CatalogError::NotFound { .. } | CatalogError::Query(_) => e.to_string(),
        other => {
            tracing::error!(error = %other, "cone search failed");
            "the service failed to answer this query; the details are in its log".to_owned()
        }
    };
    let mut frames: HashMap<Slid, Option<ObjectId>> = HashMap::new();
    let only = match scope {
        scs::Scope::All => None,
        scs::Scope::List(slid) => {
            let list = st.catalog.source_list(slid).await.map_err(|e| match e {
                CatalogError::NotFound { .. } => format!(
                    "SLID: there is no SourceList {slid}; the lists are at /table/SourceList"
                ),
                other => db(other),
            })?;
            frames.insert(slid, list.frame_id);
            Some(slid)
        }
    };
    let (hits, overflow) = if q.metadata_only() {
        (Vec::new(), false)
    } else {
        // One more than asked tells whether the cone held more.
        let mut hits = st
            .catalog
            .cone_search(q.ra, q.dec, q.sr, only, q.maxrec + 1)
            .await
            .map_err(db)?;
        let overflow = hits.len() > q.maxrec;
        hits.truncate(q.maxrec);
        (hits, overflow)
    };
    // The rows' lists' frames in one query, not one per list: a cone on a
    // deep field meets hundreds of lists.
    let mut slids: Vec<Slid> = hits
        .iter()
        .map(|(_, s)| s.slid)
        .filter(|l| !frames.contains_key(l))
        .collect();
    slids.sort_unstable();
    slids.dedup();
    frames.extend(st.catalog.source_list_frames(&slids).await.map_err(db)?);
    let base = base_url(st, headers);
    // Up to MAX_RECORDS rows of XML: CPU work, off the async threads.
    let (ser, mime) = (q.serialization, q.mime.clone());
    let body = tokio::task::spawn_blocking(move || {
        let doc: Document = scs::document(&q, scope, &hits, &frames, overflow, &base);
        doc.to_xml(ser)
    })
    .await
    .map_err(|e| db(CatalogError::Invalid(format!("cone search rendering: {e}"))))?;
    Ok(([(header::CONTENT_TYPE, mime)], body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_is_listed_once_with_its_access_url() {
        let caps = capabilities_xml("http://h:1");
        for s in SERVICES {
            assert_eq!(
                caps.matches(&format!("standardID=\"{}\"", s.standard_id))
                    .count(),
                1,
                "{}",
                s.standard_id
            );
            assert!(caps.contains(&format!(">http://h:1{}</accessURL>", s.path)));
        }
        assert!(caps.contains("xsi:type=\"tr:TableAccess\""));
        let rec = resource_xml("http://h:1", None);
        assert!(rec.contains("<identifier>ivo://wisecut</identifier>"));
        assert_eq!(
            rec.matches("<capability ").count(),
            caps.matches("<capability ").count()
        );
    }
}
