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
/// failed job later.
async fn title(st: &AppState, req: &DepRequest) -> Result<String, ApiError> {
    Ok(match req.list {
        ListRef::Sources(slid) => {
            let l = st.catalog.source_list(slid).await?;
            format!(
                "Dependency cutouts of SLID {slid} ({}) SIDs {}",
                l.name,
                id_ranges::format_ids(&req.ids)
            )
        }
        ListRef::Associations(alid) => {
            let l = st.catalog.associate_list(alid).await?;
            format!(
                "Dependency cutouts of ALID {alid} ({}) AIDs {}",
                l.name,
                id_ranges::format_ids(&req.ids)
            )
        }
    })
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
}

/// `GET /deps`: the form, filled in from the query string; a request that
/// already has a job redirects to it.
pub async fn deps_page(State(st): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let (params, asked) = match dep_params(q.as_deref()) {
        Ok(x) => x,
        Err(e) => return failed(&st, DepParams::default(), e).await,
    };
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
            render_form(&st, params, None, Some(notice), StatusCode::OK).await
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
    let mut r = form(st, p, Some(e.message().to_owned()), e.status()).await;
    if let Some(s) = e.retry_after() {
        super::error::set_retry_after(&mut r, Some(s));
    }
    r
}

async fn form(st: &AppState, p: DepParams, error: Option<String>, status: StatusCode) -> Response {
    render_form(st, p, error, None, status).await
}

async fn render_form(
    st: &AppState,
    p: DepParams,
    error: Option<String>,
    notice: Option<String>,
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
