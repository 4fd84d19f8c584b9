//! The dependency-cutout request over HTTP.
//!
//! * `GET /deps` — the request form, filled in from the query string (a
//!   bookmarkable request); when the same request already has a job, a
//!   redirect to it. A GET never starts work: crawlers and link
//!   prefetchers follow GETs.
//! * `POST /deps` — runs the request: a small one (≤ `inline_sources` ids)
//!   is made at once and redirects (303) to its result page, a larger one
//!   is queued and redirects to its job page, which refreshes while it
//!   runs. Bad parameters re-show the form with a 400. The same request
//!   submitted again gets the same job (`Jobs::submit`).
//! * `POST /api/deps` — the same as JSON: 200 with the result, or 202 with
//!   the job and a `Location` to poll; `GET /api/deps` is a 405 saying so.
//!
//! The result pages themselves are jobs' pages (`super::job_pages`).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::ApiError;
use super::job_pages::job_json;
use super::query_params::{QueryParams, submission, submit_with_post};
use super::table_pages::{ListKind, list_of_object, no_such_list};
use super::{AppError, AppState};
use crate::catalog::job_records::{JobKind, JobRecord, JobStatus};
use crate::imaging::render::Stretch;
use crate::model::FrameClass;
use crate::params::id_ranges;
use crate::products::dependency_cutouts::{self, DepParams, DepRequest, ListRef, PIPELINE_CLASSES};

/// Parameters of `/deps` and `/api/deps`.
pub const DEP_PARAMS: [&str; 9] = [
    "slid",
    "alid",
    "ids",
    "classes",
    "size",
    "unit",
    "stretch",
    "interval",
    "same_stretch",
];

/// Reads the request parameters; `classes` may also come as repeated
/// checkbox fields, which are joined.
fn dep_params(raw: Option<&str>) -> Result<(DepParams, bool), ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| ApiError::bad(format!("the query string is malformed: {e}")))?;
    let (classes, rest): (Vec<_>, Vec<_>) = pairs
        .into_iter()
        .partition(|(k, _)| k.eq_ignore_ascii_case("classes"));
    let rest = serde_urlencoded::to_string(&rest).unwrap_or_default();
    let p = QueryParams::parse(Some(&rest), &DEP_PARAMS)?;
    let asked = p.get("ids").is_some();
    let params = DepParams {
        slid: p.whole_number("slid")?,
        alid: p.whole_number("alid")?,
        ids: p.get("ids").unwrap_or("").to_owned(),
        classes: classes
            .into_iter()
            .map(|(_, v)| v)
            .collect::<Vec<_>>()
            .join(","),
        size: p.number("size")?,
        unit: p.get("unit").map(str::to_owned),
        stretch: p.get("stretch").map(str::to_owned),
        interval: p.get("interval").map(str::to_owned),
        same_stretch: match p.get("same_stretch") {
            None => None,
            Some(_) => Some(p.flag("same_stretch")?),
        },
    };
    Ok((params, asked))
}

/// What happened to a request.
enum Submitted {
    /// Finished (made at once, or found made): done or failed.
    Done(JobRecord),
    /// Queued.
    Queued(JobRecord),
}

/// The title of a request's job; unknown lists are a 404 now, not a
/// failed job later, saying which list was meant when the number is the
/// list's object id instead of its SLID or ALID.
async fn title(st: &AppState, req: &DepRequest) -> Result<String, ApiError> {
    let missing = |kind, id, e| missing_list(st, kind, id, e);
    Ok(match req.list {
        ListRef::Sources(slid) => {
            let l = match st.catalog.source_list(slid).await {
                Ok(l) => l,
                Err(e) => return Err(missing(ListKind::Source, slid.0, e).await),
            };
            format!(
                "Dependency cutouts of SLID {slid} ({}) SIDs {}",
                l.name,
                id_ranges::format_ids(&req.ids)
            )
        }
        ListRef::Associations(alid) => {
            let l = match st.catalog.associate_list(alid).await {
                Ok(l) => l,
                Err(e) => return Err(missing(ListKind::Associate, alid.0, e).await),
            };
            format!(
                "Dependency cutouts of ALID {alid} ({}) AIDs {}",
                l.name,
                id_ranges::format_ids(&req.ids)
            )
        }
    })
}

/// A list that could not be read: a 404 that, when the number is a list's
/// object id, says which list that is ("object 540 is SourceList SLID 145").
async fn missing_list(
    st: &AppState,
    kind: ListKind,
    id: i64,
    e: crate::catalog::CatalogError,
) -> ApiError {
    match e {
        crate::catalog::CatalogError::NotFound { .. } => {
            let real = list_of_object(st, kind, id).await;
            ApiError::not_found(no_such_list(kind, id, real))
        }
        other => other.into(),
    }
}

/// The list a form names exists (checked as soon as the form is filled in
/// from a link, not only when it is submitted).
async fn known_list(st: &AppState, p: &DepParams) -> Result<(), ApiError> {
    if let Some(slid) = p.slid
        && let Err(e) = st.catalog.source_list(crate::ids::Slid(slid)).await
    {
        return Err(missing_list(st, ListKind::Source, slid, e).await);
    }
    if let Some(alid) = p.alid
        && let Err(e) = st.catalog.associate_list(crate::ids::Alid(alid)).await
    {
        return Err(missing_list(st, ListKind::Associate, alid, e).await);
    }
    Ok(())
}

/// The canonical form of a request: equal for requests that ask for the
/// same thing however they were written (`1:3` or `3,2,1`).
fn canonical(req: &DepRequest) -> String {
    format!("{req:?}")
}

async fn submit_deps(st: &AppState, params: &DepParams) -> Result<Submitted, ApiError> {
    let req = params.validate()?;
    let title = title(st, &req).await?;
    let inline = req.ids.len() <= st.config.inline_sources;
    let stored = serde_json::to_value(params).map_err(ApiError::internal)?;
    let job = st
        .services
        .jobs
        .submit(
            JobKind::DependencyCutouts,
            &title,
            stored,
            &canonical(&req),
            inline,
        )
        .await
        .map_err(ApiError::from)?;
    // Done or failed, the answer is final; queued or running, it is not.
    Ok(
        if matches!(job.status, JobStatus::Done | JobStatus::Failed) {
            Submitted::Done(job)
        } else {
            Submitted::Queued(job)
        },
    )
}

/// The request form.
#[derive(Template)]
#[template(path = "deps.html")]
pub struct DepsPage {
    /// The request so far.
    pub p: DepParams,
    /// Class choices: (name, short, checked).
    pub classes: Vec<(&'static str, &'static str, bool)>,
    /// Stretch names.
    pub stretches: Vec<&'static str>,
    /// Error to show, naming the parameter.
    pub error: Option<String>,
    /// Sizes of the inline limit, for the hint.
    pub inline_sources: usize,
    /// Recent dependency jobs.
    pub recent: Vec<JobRecord>,
    /// A note above the form (a request filled in but not started).
    pub notice: Option<String>,
    /// With an error naming a list by its object id: the request for the
    /// list meant (its SLID or ALID), to follow.
    pub meant: Option<String>,
}

/// `GET /deps`: the form, filled in from the query string; a request that
/// already has a job redirects to it.
pub async fn deps_page(State(st): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let (params, asked) = match dep_params(q.as_deref()) {
        Ok(x) => x,
        Err(e) => return failed(&st, DepParams::default(), e).await,
    };
    if let Err(e) = known_list(&st, &params).await {
        return failed(&st, params, e).await;
    }
    if !asked {
        return form(&st, params, None, StatusCode::OK).await;
    }
    let req = match params.validate() {
        Ok(r) => r,
        Err(e) => return failed(&st, params, e.into()).await,
    };
    match st
        .services
        .jobs
        .existing(JobKind::DependencyCutouts, &canonical(&req))
        .await
    {
        Ok(Some(job)) => Redirect::to(&format!("/jobs/{}", job.id)).into_response(),
        Ok(None) => {
            let notice = format!(
                "Not started yet: check the request and press \u{201c}Make cutouts\u{201d} ({} source{}).",
                req.ids.len(),
                if req.ids.len() == 1 { "" } else { "s" }
            );
            render_form(&st, params, None, Some(notice), None, StatusCode::OK).await
        }
        Err(e) => failed(&st, params, ApiError::from(e)).await,
    }
}

/// `POST /deps`: runs the request and redirects (303) to its job.
pub async fn deps_post(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (params, _) = match submission(q.as_deref(), &headers, &body)
        .and_then(|joined| dep_params(Some(&joined)))
    {
        Ok(x) => x,
        Err(e) => return failed(&st, DepParams::default(), e).await,
    };
    match submit_deps(&st, &params).await {
        Ok(Submitted::Done(job)) | Ok(Submitted::Queued(job)) => {
            Redirect::to(&format!("/jobs/{}", job.id)).into_response()
        }
        Err(e) => failed(&st, params, e).await,
    }
}

/// The form again with an error, at the error's status.
async fn failed(st: &AppState, p: DepParams, e: ApiError) -> Response {
    let meant = meant_request(st, &p, &e).await;
    let mut r = render_form(st, p, Some(e.message().to_owned()), None, meant, e.status()).await;
    if let Some(s) = e.retry_after() {
        super::error::set_retry_after(&mut r, Some(s));
    }
    r
}

async fn form(st: &AppState, p: DepParams, error: Option<String>, status: StatusCode) -> Response {
    render_form(st, p, error, None, None, status).await
}

/// For a 404 whose SLID (ALID) is a list's object id: `/deps` filled in
/// with the list's real SLID (ALID) and the same ids.
async fn meant_request(st: &AppState, p: &DepParams, e: &ApiError) -> Option<String> {
    if e.status() != StatusCode::NOT_FOUND {
        return None;
    }
    let (kind, name, id) = match (p.slid, p.alid) {
        (Some(s), None) => (ListKind::Source, "slid", s),
        (None, Some(a)) => (ListKind::Associate, "alid", a),
        _ => return None,
    };
    let real = list_of_object(st, kind, id).await?;
    let q = serde_urlencoded::to_string([(name, real.to_string()), ("ids", p.ids.clone())]).ok()?;
    Some(format!("/deps?{q}"))
}

async fn render_form(
    st: &AppState,
    p: DepParams,
    error: Option<String>,
    notice: Option<String>,
    meant: Option<String>,
    status: StatusCode,
) -> Response {
    let chosen =
        dependency_cutouts::parse_classes(&p.classes).unwrap_or_else(|_| PIPELINE_CLASSES.to_vec());
    let classes = FrameClass::ALL
        .iter()
        .map(|c| (c.name(), c.short(), chosen.contains(c)))
        .collect();
    let recent = st
        .catalog
        .jobs(Some(JobKind::DependencyCutouts), None, 0, 10)
        .await
        .map(|(_, j)| j)
        .unwrap_or_default();
    let page = DepsPage {
        p,
        classes,
        stretches: Stretch::ALL.iter().map(|s| s.name()).collect(),
        error,
        inline_sources: st.config.inline_sources,
        recent,
        notice,
        meant,
    };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => AppError::from(e).into_response(),
    }
}

/// `GET /api/deps`: 405, naming POST.
pub async fn deps_api_get() -> Response {
    submit_with_post("/api/deps")
}

/// `POST /api/deps`: JSON.
pub async fn deps_api(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let joined = submission(q.as_deref(), &headers, &body)?;
    let (params, asked) = dep_params(Some(&joined))?;
    if !asked {
        return Err(ApiError::bad(
            "ids: missing: give SIDs or AIDs such as 1:5,20,31:34",
        ));
    }
    match submit_deps(&st, &params).await? {
        Submitted::Done(job) => Ok(axum::Json(job_json(&st, &job).await).into_response()),
        Submitted::Queued(job) => {
            let mut r =
                (StatusCode::ACCEPTED, axum::Json(job_json(&st, &job).await)).into_response();
            if let Ok(v) = format!("/api/jobs/{}", job.id).parse() {
                r.headers_mut().insert(header::LOCATION, v);
            }
            Ok(r)
        }
    }
}
