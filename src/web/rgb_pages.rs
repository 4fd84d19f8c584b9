//! The RGB maker over HTTP: `GET /rgb` (the form, filled in from the query
//! string; a request that already has a job redirects to it), `POST /rgb`
//! (makes the picture and redirects, 303, to its job page), `POST /api/rgb`
//! (the picture itself, or 202 and the job for a large one; `GET` is a 405
//! naming POST, since a GET never starts work) and `GET /rgb/gallery`
//! (every RGB picture made so far that retention has kept). The same
//! request submitted again gets the same job (`Jobs::submit`).
//!
//! The form offers what exists: the grid targets, the classes and the
//! filter triples of the catalogue's frames on the sky. A target whose
//! class has several products per filter (RegriddedFrames: one per chip
//! and exposure) is answered with a choice step: the form again, at 400,
//! with one list of candidate frames per band, so that nobody gets a
//! picture of a frame they did not choose.

use askama::Template;
use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::ApiError;
use super::query_params::{submission, submit_with_post};
use super::{AppError, AppState};
use std::collections::BTreeMap;

use crate::catalog::job_records::{JobKind, JobRecord, JobStatus};
use crate::model::FrameClass;
use crate::products::rgb_composite::RgbParams;

/// Pictures up to this many pixels (per band) are made inline.
const INLINE_PIXELS: i64 = 16 << 20;

/// The parameters of `/rgb` and `/api/rgb`: the numbers first, then the
/// texts.
pub const PARAMS: &[&str] = &[
    "size",
    "minimum",
    "stretch",
    "q",
    "max_quantile",
    "gamma",
    "saturation",
    "percentile",
    "red",
    "green",
    "blue",
    "target",
    "filters",
    "class",
    "ra",
    "dec",
    "unit",
    "method",
    "format",
];
const NUMBERS: &[&str] = PARAMS.split_at(8).0;
const TEXTS: &[&str] = PARAMS.split_at(8).1;

fn parse(raw: Option<&str>) -> Result<(RgbParams, bool), ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| ApiError::bad(format!("the query string is malformed: {e}")))?;
    let mut map = serde_json::Map::new();
    for (k, v) in pairs {
        let key = k.to_ascii_lowercase();
        let v = v.trim().to_owned();
        let value = if NUMBERS.contains(&key.as_str()) {
            if v.is_empty() {
                continue;
            }
            let n: f64 = v
                .parse()
                .ok()
                .filter(|f: &f64| f.is_finite())
                .ok_or_else(|| ApiError::bad(format!("{k}: {v:?} is not a finite number")))?;
            serde_json::json!(n)
        } else if TEXTS.contains(&key.as_str()) {
            if v.is_empty() {
                continue;
            }
            serde_json::json!(v)
        } else {
            let mut all: Vec<&str> = TEXTS.to_vec();
            all.extend(NUMBERS);
            return Err(ApiError::bad(format!(
                "{k}: unknown parameter; allowed: {}",
                all.join(", ")
            )));
        };
        if map.insert(key, value).is_some() {
            return Err(ApiError::bad(format!("{k}: given more than once")));
        }
    }
    let asked = map.contains_key("red") || map.contains_key("target");
    let p: RgbParams = serde_json::from_value(serde_json::Value::Object(map))
        .map_err(|e| ApiError::bad(e.to_string()))?;
    Ok((p, asked))
}

/// The canonical form of a request: its parsed parameters (numbers as
/// numbers, so `size=60` and `size=60.0` are one request).
fn canonical(p: &RgbParams) -> String {
    serde_json::to_string(p).unwrap_or_default()
}

async fn submit(st: &AppState, p: &RgbParams) -> Result<JobRecord, ApiError> {
    p.validate().map_err(ApiError::from)?;
    let frames = p.frames(&st.catalog).await.map_err(ApiError::from)?;
    // The caption of the jobs list and the gallery: class, filters, method
    // and its parameters, known once the frames are.
    let title = p.caption(&frames).map_err(ApiError::from)?;
    let whole = p.ra.is_none();
    let pixels = i64::from(frames[0].naxis1) * i64::from(frames[0].naxis2);
    let inline = !whole || pixels <= INLINE_PIXELS;
    let params = serde_json::to_value(p).map_err(ApiError::internal)?;
    let job = st
        .services
        .jobs
        .submit(
            JobKind::Rgb,
            &title,
            params,
            &canonical(p),
            inline,
            &super::job_pages::submitter(&st.identity),
        )
        .await
        .map_err(ApiError::from)?;
    if job.status == JobStatus::Failed {
        // A failure of the request itself (no overlap, bad grid) is the
        // caller's to fix: say it as a 400.
        return Err(ApiError::bad(job.error.unwrap_or_else(|| "failed".into())));
    }
    Ok(job)
}

/// What the catalogue offers the RGB form.
#[derive(Debug, Default)]
pub struct Offer {
    /// Grid targets (`OBJECT`) of frames on the sky.
    pub targets: Vec<String>,
    /// Classes of frames on the sky: (name, selected).
    pub classes: Vec<(&'static str, bool)>,
    /// Filter triples, reddest first (`i,r,g`).
    pub filters: Vec<String>,
    /// One line per target and class: (target, class, "g, i, r", frames
    /// per filter as text).
    pub lines: Vec<(String, &'static str, String, String)>,
}

/// Filters from red to blue (the order of red, green, blue), so suggested
/// triples read `i,r,g`; unknown names come last, alphabetically.
fn redness(filter: &str) -> (bool, std::cmp::Reverse<Option<usize>>, String) {
    const BLUE_TO_RED: &[&str] = &["u", "g", "r", "i", "z", "y", "J", "H", "K", "Ks"];
    let position = BLUE_TO_RED.iter().position(|f| *f == filter);
    (
        position.is_none(),
        std::cmp::Reverse(position),
        filter.to_owned(),
    )
}

async fn offer(st: &AppState, p: &RgbParams) -> Offer {
    // A catalogue failure leaves the form as free text; the request itself
    // then reports the error.
    let Ok(rows) = st.catalog.sky_targets().await else {
        return Offer::default();
    };
    let chosen = p
        .target_class()
        .unwrap_or(FrameClass::CoaddedRegriddedFrame);
    let mut out = Offer::default();
    let mut groups: BTreeMap<(String, &'static str), Vec<(String, i64)>> = BTreeMap::new();
    for r in &rows {
        if !out.targets.contains(&r.object) {
            out.targets.push(r.object.clone());
        }
        if let Some(f) = &r.filter {
            groups
                .entry((r.object.clone(), r.class.name()))
                .or_default()
                .push((f.clone(), r.count));
        }
    }
    out.classes = FrameClass::ALL
        .into_iter()
        .filter(|c| rows.iter().any(|r| r.class == *c))
        .map(|c| (c.name(), c == chosen))
        .collect();
    for ((target, class), mut filters) in groups {
        filters.sort_by_key(|(f, _)| redness(f));
        if filters.len() >= 3 {
            let triple: Vec<&str> = filters.iter().take(3).map(|(f, _)| f.as_str()).collect();
            let triple = triple.join(",");
            if !out.filters.contains(&triple) {
                out.filters.push(triple);
            }
        }
        let counts: Vec<i64> = filters.iter().map(|(_, n)| *n).collect();
        let per_filter = if counts.iter().all(|n| *n == counts[0]) {
            format!("{} each", counts[0])
        } else {
            counts
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let names: Vec<&str> = filters.iter().map(|(f, _)| f.as_str()).collect();
        out.lines
            .push((target, class, names.join(", "), per_filter));
    }
    out
}

/// One band of the choice step: its name, filter and candidate frames
/// (object id, label).
pub type BandChoice = (&'static str, String, Vec<(i64, String)>);

/// The choice step of a target with several products per filter, or
/// `None` when every band has at most one (or the request is not a target
/// request).
async fn choices(st: &AppState, p: &RgbParams) -> Option<Vec<BandChoice>> {
    p.target.as_ref()?;
    let (_, bands) = p.target_candidates(&st.catalog).await.ok()?;
    if bands.iter().all(|(_, c)| c.len() <= 1) {
        return None;
    }
    let out = ["red", "green", "blue"]
        .into_iter()
        .zip(bands)
        .map(|(band, (filter, frames))| {
            let list = frames
                .iter()
                .map(|f| {
                    let when = f
                        .date_obs
                        .map(|d| d.format(" · %Y-%m-%d %H:%M").to_string())
                        .unwrap_or_default();
                    let chip = f
                        .chip
                        .as_deref()
                        .map(|c| format!(" · {c}"))
                        .unwrap_or_default();
                    (
                        f.target.object_id.0,
                        format!("{} {}{chip}{when}", f.target.object_id, f.filename),
                    )
                })
                .collect();
            (band, filter, list)
        })
        .collect();
    Some(out)
}

/// The parameters a choice step carries over unchanged: everything but the
/// frames, target, filters and class.
fn carried(p: &RgbParams) -> Vec<(String, String)> {
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(p) else {
        return Vec::new();
    };
    map.into_iter()
        .filter(|(k, _)| {
            !["red", "green", "blue", "target", "filters", "class"].contains(&k.as_str())
        })
        .filter_map(|(k, v)| match v {
            serde_json::Value::String(s) => Some((k, s)),
            // As typed: 2, not the 2.0 JSON would write.
            serde_json::Value::Number(n) => n.as_f64().map(|f| (k, f.to_string())),
            _ => None,
        })
        .collect()
}

/// The RGB form.
#[derive(Template)]
#[template(path = "rgb.html")]
pub struct RgbPage {
    /// The request so far.
    pub p: RgbParams,
    /// What the catalogue offers.
    pub offer: Offer,
    /// The choice step, when a target has several frames per filter.
    pub choices: Option<Vec<BandChoice>>,
    /// Parameters the choice step carries over.
    pub carried: Vec<(String, String)>,
    /// An error naming the parameter.
    pub error: Option<String>,
    /// Recent pictures: (job, image URL).
    pub recent: Vec<(JobRecord, String)>,
    /// A note above the form (a request filled in but not started).
    pub notice: Option<String>,
}

/// `GET /rgb`: the form, filled in from the query string; a request that
/// already has a job redirects to it.
pub async fn rgb_page(
    super::auth::Scoped(st): super::auth::Scoped,
    RawQuery(q): RawQuery,
) -> Response {
    let (p, asked) = match parse(q.as_deref()) {
        Ok(x) => x,
        Err(e) => return failed(&st, RgbParams::default(), e).await,
    };
    if !asked {
        return page(&st, p, None, None, StatusCode::OK).await;
    }
    if let Err(e) = p.validate() {
        return failed(&st, p, ApiError::from(e)).await;
    }
    match st
        .services
        .jobs
        .existing(
            JobKind::Rgb,
            &canonical(&p),
            &super::job_pages::submitter(&st.identity),
        )
        .await
    {
        Ok(Some(job)) => Redirect::to(&format!("/jobs/{}", job.public_id)).into_response(),
        Ok(None) => {
            let notice =
                "Not started yet: check the request and press \u{201c}Make picture\u{201d}.";
            page(&st, p, None, Some(notice.into()), StatusCode::OK).await
        }
        Err(e) => failed(&st, p, ApiError::from(e)).await,
    }
}

/// `POST /rgb`: makes the picture and redirects (303) to its job.
pub async fn rgb_post(
    super::auth::Scoped(st): super::auth::Scoped,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = match submission(q.as_deref(), &headers, &body).and_then(|j| parse(Some(&j))) {
        Ok((p, _)) => p,
        Err(e) => return failed(&st, RgbParams::default(), e).await,
    };
    match submit(&st, &p).await {
        Ok(job) => Redirect::to(&format!("/jobs/{}", job.public_id)).into_response(),
        Err(e) => failed(&st, p, e).await,
    }
}

/// The form again with an error, at the error's status.
async fn failed(st: &AppState, p: RgbParams, e: ApiError) -> Response {
    let mut r = page(st, p, Some(e.message().to_owned()), None, e.status()).await;
    super::error::set_retry_after(&mut r, e.retry_after());
    r
}

/// Done RGB jobs with their picture URLs, newest first.
async fn pictures(st: &AppState, limit: u64) -> Vec<(JobRecord, String)> {
    let jobs = st
        .catalog
        .jobs(Some(JobKind::Rgb), Some(JobStatus::Done), 0, limit)
        .await
        .map(|(_, j)| j)
        .unwrap_or_default();
    let mut shown = Vec::new();
    for job in jobs {
        // Pictures whose files are not on this server (another --jobs-dir)
        // would show as broken images.
        let Ok(j) = st.services.jobs.as_it_stands(job).await else {
            continue;
        };
        if j.expired {
            continue;
        }
        let Some(name) = j
            .result
            .as_ref()
            .and_then(|r| r.get("image"))
            .and_then(|v| v.as_str())
        else {
            continue;
        };
        let url = format!("/jobs/{}/files/{name}", j.public_id);
        shown.push((j, url));
    }
    shown
}

async fn page(
    st: &AppState,
    p: RgbParams,
    error: Option<String>,
    notice: Option<String>,
    status: StatusCode,
) -> Response {
    let recent = pictures(st, 8).await;
    let offer = offer(st, &p).await;
    let choices = choices(st, &p).await;
    let carried = carried(&p);
    match (RgbPage {
        p,
        offer,
        choices,
        carried,
        error,
        recent,
        notice,
    })
    .render()
    {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => AppError::from(e).into_response(),
    }
}

/// The gallery.
#[derive(Template)]
#[template(path = "gallery.html")]
pub struct GalleryPage {
    /// Pictures, newest first.
    pub pictures: Vec<(JobRecord, String)>,
}

/// `GET /rgb/gallery`.
pub async fn gallery(
    super::auth::Scoped(st): super::auth::Scoped,
) -> Result<Html<String>, AppError> {
    let pictures = pictures(&st, 500).await;
    Ok(Html(GalleryPage { pictures }.render()?))
}

/// `GET /api/rgb`: 405, naming POST.
pub async fn rgb_api_get() -> Response {
    submit_with_post("/api/rgb")
}

/// `POST /api/rgb`: the picture (PNG or JPEG), with `X-Wisecut-Job`; 202
/// and the job's URL when it was queued.
pub async fn rgb_api(
    super::auth::Scoped(st): super::auth::Scoped,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let joined = submission(q.as_deref(), &headers, &body)?;
    let (p, asked) = parse(Some(&joined))?;
    if !asked {
        return Err(ApiError::bad(
            "red: missing: give red, green, blue (frame ids or file names) or target and filters",
        ));
    }
    let job = submit(&st, &p).await?;
    if job.status != JobStatus::Done {
        let base = super::vo_endpoints::base_url(&st, &headers);
        return Ok(super::job_pages::accepted(&st, &base, &job).await);
    }
    let name = job
        .result
        .as_ref()
        .and_then(|r| r.get("image"))
        .and_then(|v| v.as_str())
        .unwrap_or("rgb.png")
        .to_owned();
    let path = st
        .services
        .jobs
        .file(job.id, &name)
        .ok_or_else(|| ApiError::internal("RGB result missing"))?;
    let bytes = tokio::fs::read(path).await.map_err(ApiError::internal)?;
    let mime = if name.ends_with(".png") {
        "image/png"
    } else {
        "image/jpeg"
    };
    let mut r = ([(header::CONTENT_TYPE, mime)], bytes).into_response();
    if let Ok(v) = job.public_id.parse() {
        r.headers_mut().insert("x-wisecut-job", v);
    }
    Ok(r)
}
