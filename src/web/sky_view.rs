//! `/sky`: a frame in Aladin Lite with a SourceList overlaid, dependency-
//! cutout positions marked and the survey's coverage MOC, plus SAMP buttons
//! that send the sources and the frame to TOPCAT or Aladin Desktop.
//!
//! The page itself is static HTML with a JSON configuration element; the
//! drawing is `templates/aladin-view.js`. Everything the view loads comes
//! from this server (the frame as FITS from the cutout API, the sources as
//! a plain TABLEDATA VOTable, the MOC as JSON), so it works without
//! network access when Aladin Lite is served locally (`--aladin-dir`, or
//! `node_modules/aladin-lite/dist`). Aladin Lite 3.8 shows 0 rows of a
//! BINARY2 table and refuses one with a DataLink service descriptor, hence
//! `datalink=no` and the default TABLEDATA.
//!
//! **When Aladin Lite cannot be loaded** (no local copy and no network, as
//! after `cargo run --release` on a fresh machine) the page falls back to
//! the server's own image view: the whole frame rendered by `/render/{id}`
//! (the image view's [`View`] and its render query), with the SourceList's
//! sources circled and the marked positions crossed, placed through the
//! frame's WCS. The page carries that fallback hidden and the script shows
//! it on failure, saying how to install the local copy.
//!
//! Also the static scripts: `/static/samp.js` (SAMP Web Profile client),
//! `/static/aladin-view.js|css`, and `/static/aladin/aladin.js` (the local
//! Aladin Lite, 404 when there is none, so the page falls back to CDS).

use askama::Template;
use axum::extract::RawQuery;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::image_view::{Binning, Marker, View, ViewParams};
use super::{AppError, AppState};
use crate::catalog::browse::{Cell, Query, Table};
use crate::ids::{ObjectId, Sid, Slid};
use crate::imaging::render::Stretch;
use crate::imaging::wcs::Wcs;
use crate::model::Frame;
use crate::params::id_ranges;
use crate::vo::obscore;

/// Most SIDs a page marks.
const MAX_MARKS: usize = 1000;

/// Largest side of the fallback picture on the page, in CSS pixels: small
/// frames are shown at 2× so that the marks can be told apart.
const FALLBACK_PX: usize = 900;

/// The server-rendered view shown when Aladin Lite cannot be loaded.
#[derive(Debug, Clone, Default)]
pub struct Fallback {
    /// `/render/{id}?…` of the whole frame.
    pub src: String,
    /// The image view of the same frame and list, for more controls.
    pub image_view: String,
    /// Rendered size (the SVG's view box).
    pub out_w: usize,
    /// Rendered size.
    pub out_h: usize,
    /// Displayed size.
    pub disp_w: usize,
    /// Displayed size.
    pub disp_h: usize,
    /// Sources of the list on the frame.
    pub sources: Vec<Marker>,
    /// Marked positions: marker and label.
    pub marks: Vec<(Marker, String)>,
}

/// The fallback view of `frame`: the whole frame binned to fit, with
/// `sources` (SID, RA, Dec, FWHM in pixels) and the marked `positions`
/// (RA, Dec, label) placed through the frame's WCS. Anything off the frame
/// or not projectable is left out.
fn fallback(
    frame: &Frame,
    slid: Option<Slid>,
    sources: &[(i64, f64, f64, f64)],
    positions: &[(f64, f64, String)],
) -> Fallback {
    let id = frame.target.object_id.0;
    let (n1, n2) = (frame.naxis1.max(1) as usize, frame.naxis2.max(1) as usize);
    let mut p = ViewParams {
        bin: Binning::Fit,
        stretch: Stretch::Asinh,
        interval: "zscale".into(),
        contrast: None,
        min: None,
        max: None,
        invert: false,
        zoom: 1.0,
        cx: None,
        cy: None,
        slid: slid.map(|s| s.0),
    };
    let fit = View::new(n1, n2, &p);
    if fit.out_w.max(fit.out_h) * 2 <= FALLBACK_PX {
        p.zoom = 2.0;
    }
    let view = View::new(n1, n2, &p);
    let wcs = frame.wcs.as_ref().and_then(|w| Wcs::new(w, n1, n2).ok());
    let on_frame = |ra: f64, dec: f64| -> Option<(f64, f64)> {
        let (x, y) = wcs.as_ref()?.sky_to_pix(ra, dec)?;
        let inside = x >= 0.5 && y >= 0.5 && x <= n1 as f64 + 0.5 && y <= n2 as f64 + 0.5;
        inside.then_some((x, y))
    };
    Fallback {
        src: format!("/render/{id}?{}", view.render_query(&p, false)),
        image_view: format!(
            "/image/{id}{}",
            slid.map(|s| format!("?slid={}", s.0)).unwrap_or_default()
        ),
        out_w: view.out_w,
        out_h: view.out_h,
        disp_w: view.disp_w,
        disp_h: view.disp_h,
        sources: sources
            .iter()
            .filter_map(|&(sid, ra, dec, fwhm)| {
                on_frame(ra, dec).map(|(x, y)| view.marker(sid, x, y, fwhm))
            })
            .collect(),
        marks: positions
            .iter()
            .filter_map(|(ra, dec, label)| {
                on_frame(*ra, *dec).map(|(x, y)| (view.marker(0, x, y, 6.0), label.clone()))
            })
            .collect(),
    }
}

/// The sources of a list as (SID, RA, Dec, FWHM in pixels), at most 5000.
async fn list_sources(st: &AppState, slid: Slid) -> Result<Vec<(i64, f64, f64, f64)>, AppError> {
    let t = Table::Sources(slid);
    let mut q = Query::new(&t);
    q.page_size = 5000;
    let page = st.catalog.browse(&t, &q).await?;
    let idx = |name: &str| t.columns().iter().position(|c| c.name == name);
    let (Some(isid), Some(ira), Some(idec)) = (idx("sid"), idx("ra"), idx("dec")) else {
        return Ok(Vec::new());
    };
    let ifwhm = idx("fwhm");
    Ok(page
        .rows
        .iter()
        .filter_map(|r| match (&r[isid], &r[ira], &r[idec]) {
            (Cell::Int(sid), Cell::Float(ra), Cell::Float(dec)) => {
                let fwhm = match ifwhm.map(|i| &r[i]) {
                    Some(Cell::Float(f)) => *f,
                    _ => 3.0,
                };
                Some((*sid, *ra, *dec, fwhm))
            }
            _ => None,
        })
        .collect())
}

/// The sky page.
#[derive(Template)]
#[template(path = "sky.html")]
pub struct SkyPage {
    /// The frame.
    pub frame_id: i64,
    /// Its file name.
    pub frame_name: String,
    /// Its class.
    pub class_name: &'static str,
    /// Its filter.
    pub filter: Option<String>,
    /// The overlaid list's name.
    pub list_name: Option<String>,
    /// Its rows page.
    pub list_url: String,
    /// Sources in it.
    pub n_sources: i64,
    /// Positions marked.
    pub n_marked: usize,
    /// Form values.
    pub slid_text: String,
    /// Form values.
    pub ids_text: String,
    /// Configuration for `aladin-view.js`, safe inside `<script>`.
    pub config_json: String,
    /// Absolute VOTable URL for SAMP.
    pub table_samp_url: Option<String>,
    /// Absolute FITS URL for SAMP.
    pub fits_url: String,
    /// Whether Aladin Lite is served locally.
    pub local_aladin: bool,
    /// Where it comes from otherwise.
    pub aladin_url: String,
    /// The server's own view, shown when Aladin Lite cannot be loaded.
    pub fallback: Fallback,
}

/// `GET /sky?frame=ID&slid=N&ids=1:5`.
pub async fn sky(
    super::auth::Scoped(st): super::auth::Scoped,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Html<String>, AppError> {
    let p = super::query_params::QueryParams::parse(raw.as_deref(), &["frame", "slid", "ids"])?;
    let base = super::vo_endpoints::base_url(&st, &headers);
    let asked_slid = p.whole_number("slid")?.map(Slid);
    let list_frame = match asked_slid {
        Some(s) => st.catalog.source_list(s).await?.frame_id,
        None => None,
    };
    let frame = match (p.get("frame").filter(|f| !f.trim().is_empty()), list_frame) {
        (Some(f), _) => {
            let id =
                super::object_id(f).map_err(|m| AppError::BadRequest(format!("frame: {m}")))?;
            st.catalog.frame(ObjectId(id)).await?
        }
        // The list's own frame.
        (None, Some(fid)) => st.catalog.frame(fid).await?,
        // Without a choice: the first coadd, else the first frame on the sky.
        (None, None) => {
            let found = st
                .catalog
                .most_processed_frame(|f| f.footprint.is_some())
                .await?;
            found.ok_or_else(|| AppError::NotFound("no frame on the sky in this archive".into()))?
        }
    };
    let id = frame.target.object_id.0;
    let (Some(centre), Some(corners)) = (frame.center, frame.footprint.clone()) else {
        return Err(AppError::BadRequest(format!(
            "frame: {} {id} ({}) has no sky WCS to show on the sky; choose a science frame",
            frame.class.name(),
            frame.filename
        )));
    };
    // The SourceList: the one asked for, else one extracted from this frame.
    let slid = match asked_slid {
        Some(s) => Some(s),
        // A SourceList extracted from this frame, if any.
        None => st
            .catalog
            .first_int(&Table::SourceLists, &format!("frame_id = {id}"), "slid")
            .await?
            .map(Slid),
    };
    let list = match slid {
        Some(s) => Some(st.catalog.source_list(s).await?),
        None => None,
    };
    let mut positions = Vec::new();
    let mut marked = Vec::new();
    if let Some(ids) = p.get("ids").filter(|s| !s.trim().is_empty()) {
        let Some(s) = slid else {
            return Err(AppError::BadRequest(
                "ids: marking sources needs a SourceList; give slid too".into(),
            ));
        };
        let sids =
            id_ranges::parse_ids(ids).map_err(|e| AppError::BadRequest(format!("ids: {e}")))?;
        if sids.len() > MAX_MARKS {
            return Err(AppError::BadRequest(format!(
                "ids: {} sources; a page marks at most {MAX_MARKS}",
                sids.len()
            )));
        }
        let sids: Vec<Sid> = sids.into_iter().map(Sid).collect();
        for src in st.catalog.sources_in(s, &sids).await? {
            marked.push((src.ra, src.dec, format!("SID {}", src.sid.0)));
            positions.push(serde_json::json!([
                src.ra,
                src.dec,
                format!("SID {}", src.sid.0)
            ]));
        }
    }
    let fits_url = format!(
        "{base}/api/cutout?{}&format=fits",
        super::cutout_api::whole_frame_query(&frame)
    );
    let table_url = slid.map(|s| {
        format!("{base}/table/SourceList/{}?format=votable&datalink=no&cols=sid,ra,dec,mag_auto,fwhm,class_star", s.0)
    });
    let filter = frame.filter.clone();
    let moc_url = format!(
        "{base}/vo/moc?class={}{}",
        frame.class.name(),
        filter
            .as_deref()
            .map(|f| format!("&filter={}", urlencode(f)))
            .unwrap_or_default()
    );
    let config = serde_json::json!({
        "ra": centre.0,
        "dec": centre.1,
        "fov": obscore::fov(&corners) * 1.1,
        "fits_url": fits_url,
        "fits_name": frame.filename,
        "catalog_url": table_url,
        "catalog_name": list.as_ref().map(|l| l.name.clone()),
        "positions": positions,
        "moc_urls": [{"name": format!("{} coverage", frame.class.name()), "url": moc_url}],
        "survey": null,
        "aladin_url": st.config.aladin_url,
    });
    let sources = match slid {
        Some(s) => list_sources(&st, s).await?,
        None => Vec::new(),
    };
    let fallback = fallback(&frame, slid, &sources, &marked);
    // `<` escaped so that no value can close the <script> element.
    let config_json = config.to_string().replace('<', "\\u003c");
    let page = SkyPage {
        frame_id: id,
        frame_name: frame.filename.clone(),
        class_name: frame.class.name(),
        filter,
        list_url: slid
            .map(|s| format!("/table/SourceList/{}", s.0))
            .unwrap_or_default(),
        n_sources: list.as_ref().map_or(0, |l| l.n_sources),
        list_name: list.map(|l| l.name),
        n_marked: positions.len(),
        slid_text: slid.map(|s| s.0.to_string()).unwrap_or_default(),
        ids_text: p.get("ids").unwrap_or("").to_owned(),
        config_json,
        table_samp_url: table_url,
        fits_url,
        local_aladin: st.config.aladin_dir.is_some(),
        aladin_url: st.config.aladin_url.clone(),
        fallback,
    };
    Ok(Html(page.render()?))
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("v", s)]).unwrap_or_default()[2..].to_owned()
}

/// `GET /static/samp.js`.
pub async fn samp_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../templates/samp.js"),
    )
}

/// `GET /static/aladin-view.js`.
pub async fn aladin_view_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../templates/aladin-view.js"),
    )
}

/// `GET /static/aladin-view.css`.
pub async fn aladin_view_css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../templates/aladin-view.css"),
    )
}

/// `GET /static/aladin/aladin.js`: the local Aladin Lite, or 404.
pub async fn aladin_js(super::auth::Scoped(st): super::auth::Scoped) -> Response {
    let Some(dir) = &st.config.aladin_dir else {
        return (
            StatusCode::NOT_FOUND,
            "no local Aladin Lite; pages use the CDS copy\n",
        )
            .into_response();
    };
    match tokio::fs::read(dir.join("aladin.js")).await {
        Ok(bytes) => (
            [
                // Module scripts are refused under any other type.
                (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => (
            StatusCode::NOT_FOUND,
            format!("local Aladin Lite unreadable: {e}\n"),
        )
            .into_response(),
    }
}
