//! The dependency-cutout request over HTTP.
//!
//! * `GET /deps` — the request form; with `ids` it runs the request: a small
//!   one (≤ `inline_sources` ids) is made at once and redirects to its result
//!   page, a larger one is queued and redirects to its job page, which
//!   refreshes while it runs. Bad parameters re-show the form with a 400.
//! * `GET /api/deps` — the same as JSON: 200 with the result, or 202 with
//!   the job and a `Location` to poll.
//!
//! The result pages themselves are jobs' pages (`super::job_pages`).

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::ApiError;
use super::job_pages::job_json;
use super::query_params::QueryParams;
use super::{AppError, AppState};
use crate::catalog::job_records::{JobKind, JobRecord};
use crate::imaging::render::Stretch;
use crate::model::FrameClass;
use crate::params::id_ranges;
use crate::products::dependency_cutouts::{self, DepParams, ListRef, PIPELINE_CLASSES};

/// Parameters of `/deps` and `/api/deps`.
const DEP_PARAMS: [&str; 9] = [
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
    /// Made at once.
    Done(JobRecord),
    /// Queued.
    Queued(JobRecord),
}

async fn submit_deps(st: &AppState, params: &DepParams) -> Result<Submitted, ApiError> {
    let req = params.validate()?;
    // Unknown lists are a 404 now, not a failed job later.
    let title = match req.list {
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
    };
    let inline = req.ids.len() <= st.config.inline_sources;
    let stored = serde_json::to_value(params).map_err(ApiError::internal)?;
    let jobs = &st.services.jobs;
    let job = jobs
        .submit(JobKind::DependencyCutouts, &title, stored, inline)
        .await
        .map_err(ApiError::from)?;
    Ok(if inline {
        Submitted::Done(job)
    } else {
        Submitted::Queued(job)
    })
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
}

/// `GET /deps`.
pub async fn deps_page(State(st): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let (params, asked) = match dep_params(q.as_deref()) {
        Ok(x) => x,
        Err(e) => {
            return form(
                &st,
                DepParams::default(),
                Some(e.message().to_owned()),
                e.status(),
            )
            .await;
        }
    };
    if !asked {
        return form(&st, params, None, StatusCode::OK).await;
    }
    match submit_deps(&st, &params).await {
        Ok(Submitted::Done(job)) | Ok(Submitted::Queued(job)) => {
            Redirect::to(&format!("/jobs/{}", job.id)).into_response()
        }
        Err(e) => {
            let status = e.status();
            form(&st, params, Some(e.message().to_owned()), status).await
        }
    }
}

async fn form(st: &AppState, p: DepParams, error: Option<String>, status: StatusCode) -> Response {
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
    };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => AppError::from(e).into_response(),
    }
}

/// `GET /api/deps`: JSON.
pub async fn deps_api(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let (params, asked) = dep_params(q.as_deref())?;
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
