//! Jobs over HTTP: every dependency-cutout request, RGB picture and batch
//! is a job with a page and files.
//!
//! * `GET /jobs`, `GET /jobs/{id}` — the jobs page and one job (status,
//!   progress, log, its result); `GET /api/jobs/{id}` as JSON, whose links
//!   are absolute URLs (`--public-url`, else the request's `Host`).
//! * `GET /jobs/{id}/files/{*path}` — one result file;
//!   `GET /jobs/{id}/zip` — all of them with `manifest.json`.
//! * `POST /jobs/{id}/share` (form field `share=private|link|project`) —
//!   its owner changes who else may see it.
//!
//! `{id}` is the job's public id (32 hex digits, unguessable); the
//! sequential id never appears in a URL. Every lookup goes through the
//! request's scoped catalogue ([`crate::catalog::Catalog::job_by_public_id`]),
//! so a job one may not see is "not found" exactly as a missing one.

use askama::Template;
use axum::body::Body;
use axum::extract::{Path as UrlPath, RawQuery};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use super::ApiError;
use super::dependency_cutout_pages::ResultTable;
use super::query_params::QueryParams;
use super::{AppError, AppState};
use crate::catalog::job_records::{JobKind, JobOwner, JobRecord, JobStatus, Share};
use crate::ids::JobId;
use crate::jobs::Jobs;
use crate::products::dependency_cutouts::DepResult;

/// 202 Accepted for a queued job: its JSON (absolute URLs under `base`)
/// and a `Location` to poll — what every job-submitting API answers.
pub(super) async fn accepted(st: &AppState, base: &str, job: &JobRecord) -> Response {
    let mut r = (
        StatusCode::ACCEPTED,
        axum::Json(job_json(st, base, job).await),
    )
        .into_response();
    if let Ok(v) = format!("{base}/api/jobs/{}", job.public_id).parse() {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// A job as JSON, with its links and its result's file paths turned into
/// absolute URLs under `base` (from [`super::vo_endpoints::base_url`]):
/// scripts hand them on (to `curl`, to a notebook on another machine) and
/// a path alone would leave them guessing the host.
pub(super) async fn job_json(st: &AppState, base: &str, job: &JobRecord) -> serde_json::Value {
    let mut v = json!({
        "id": job.public_id,
        "kind": job.kind,
        "share": job.share,
        "title": job.title,
        "status": job.status,
        "progress": job.progress,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "attempts": job.attempts,
        "error": job.error,
        "expired": job.expired,
        "bytes": job.bytes,
        "params": job.params,
        "summary": job.result,
        "log": job.log,
        "page": format!("{base}/jobs/{}", job.public_id),
        "poll": format!("{base}/api/jobs/{}", job.public_id),
    });
    if job.status == JobStatus::Done && !job.expired {
        v["zip"] = json!(format!("{base}/jobs/{}/zip", job.public_id));
        v["manifest"] = json!(format!("{base}/jobs/{}/files/manifest.json", job.public_id));
        if let Some(r) = load_result(st, job).await {
            v["result"] =
                serde_json::to_value(with_urls(r, &job.public_id, base)).unwrap_or_default();
        }
    }
    v
}

/// A JSON file of a finished job's result, if it is there and readable.
async fn read_json<T: serde::de::DeserializeOwned>(
    st: &AppState,
    id: JobId,
    name: &str,
) -> Option<T> {
    let path = st.services.jobs.file(id, name)?;
    serde_json::from_slice(&tokio::fs::read(path).await.ok()?).ok()
}

async fn load_result(st: &AppState, job: &JobRecord) -> Option<DepResult> {
    if job.kind != JobKind::DependencyCutouts {
        return None;
    }
    read_json(st, job.id, "result.json").await
}

/// Rewrites the result's relative file paths as URLs under `base` (empty
/// for the site's own pages).
fn with_urls(mut r: DepResult, id: &str, base: &str) -> DepResult {
    let url = |p: &mut Option<String>| {
        if let Some(s) = p {
            *s = format!("{base}/jobs/{id}/files/{s}");
        }
    };
    for row in &mut r.rows {
        url(&mut row.pipeline_gif);
        url(&mut row.epochs_gif);
        for cell in &mut row.cells {
            for c in cell {
                url(&mut c.fits);
                url(&mut c.png);
            }
        }
    }
    r
}

/// `GET /api/jobs/{id}`.
pub async fn job_api(
    super::auth::Scoped(st): super::auth::Scoped,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = job_id(&id).map_err(ApiError::bad)?;
    let job = st.services.jobs.find(&st.catalog, &id).await?;
    let base = super::vo_endpoints::base_url(&st, &headers);
    Ok(axum::Json(job_json(&st, &base, &job).await).into_response())
}

/// A job's public id from a URL: 32 hex digits (case ignored).
pub(super) fn job_id(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(t.to_ascii_lowercase())
    } else {
        Err(format!(
            "job: {:?} is not a job id (32 hex digits, as in the job's URL)",
            crate::params::shown(s)
        ))
    }
}

/// Who submits a job on behalf of this request: the signed-in user, else
/// the anonymous browser, else nobody (a script without cookie or token:
/// its job is reachable by its link only).
///
/// A user's job records the project worked in: the session's chosen one,
/// or (a token, Basic credentials or a session without a chosen project,
/// which see every project of the user) the one project of the view when
/// there is exactly one. The runner makes the job with that same view, and
/// sharing with "the project" needs one; a view spanning several projects
/// records none and cannot be shared with a project (its results may hold
/// data of each).
pub(super) fn submitter(identity: &super::auth::Identity) -> JobOwner {
    match (identity.user(), &identity.viewer.browser) {
        (Some(user), _) => {
            let chosen = identity.session.as_ref().and_then(|s| s.project.clone());
            let only = match identity.viewer.context.as_slice() {
                [one] => Some(one.clone()),
                _ => None,
            };
            JobOwner::user(user, chosen.or(only).as_deref())
        }
        // A cookie made for this very answer: the client sent none (a
        // script), so it is nobody, as its submissions are.
        (None, Some(_)) if identity.new_cookie => JobOwner::nobody(),
        (None, Some(browser)) => JobOwner::browser(browser),
        (None, None) => JobOwner::nobody(),
    }
}

/// The jobs page.
#[derive(Template)]
#[template(path = "jobs.html")]
pub struct JobsPage {
    /// Jobs, newest first.
    pub jobs: Vec<JobRecord>,
    /// How many there are.
    pub total: u64,
    /// Kind filter.
    pub kind: String,
    /// Results bound in MiB.
    pub keep_mib: u64,
    /// Results age bound in days.
    pub keep_days: u64,
    /// Whether a job is still active (the page then refreshes).
    pub active: bool,
}

/// Parameters of `/jobs`.
pub const JOBS_PARAMS: &[&str] = &["kind"];

/// `GET /jobs[?kind=deps]`.
pub async fn jobs_page(
    super::auth::Scoped(st): super::auth::Scoped,
    RawQuery(q): RawQuery,
) -> Result<Html<String>, AppError> {
    let p = QueryParams::parse(q.as_deref(), JOBS_PARAMS)?;
    let kind = match p.given("kind") {
        None => None,
        Some(k) => Some(crate::params::choice(
            "kind",
            k,
            &JobKind::ALL.map(|k| (k.name(), k)),
        )?),
    };
    let (total, jobs) = st.catalog.jobs(kind, None, 0, 200).await?;
    let active = jobs
        .iter()
        .any(|j| matches!(j.status, JobStatus::Queued | JobStatus::Running));
    Ok(Html(
        JobsPage {
            jobs,
            total,
            kind: kind.map(|k| k.name().to_owned()).unwrap_or_default(),
            keep_mib: st.config.jobs_bytes >> 20,
            keep_days: st.config.jobs_days,
            active,
        }
        .render()?,
    ))
}

/// One job's page.
#[derive(Template)]
#[template(path = "job.html")]
pub struct JobPage {
    /// The job.
    pub job: JobRecord,
    /// Its dependency-cutout result, when it has one.
    pub deps: Option<ResultTable>,
    /// Its other files (RGB images, batch outputs): (url, name, kind).
    pub files: Vec<(String, String, String)>,
    /// Progress in percent.
    pub percent: u32,
    /// Whether the viewer may change who sees it (its owner).
    pub can_share: bool,
    /// The CSRF token the share form carries.
    pub csrf: String,
}

/// `GET /jobs/{id}`.
pub async fn job_page(
    super::auth::Scoped(st): super::auth::Scoped,
    UrlPath(id): UrlPath<String>,
) -> Result<Html<String>, AppError> {
    let id = job_id(&id).map_err(AppError::BadRequest)?;
    let job = st
        .services
        .jobs
        .find(&st.catalog, &id)
        .await
        .map_err(ApiError::from)?;
    let deps = if job.status == JobStatus::Done && !job.expired {
        load_result(&st, &job)
            .await
            .map(|r| ResultTable::new(&with_urls(r, &job.public_id, "")))
    } else {
        None
    };
    let mut files = Vec::new();
    if job.status == JobStatus::Done && !job.expired && deps.is_none() {
        let manifest: serde_json::Value = read_json(&st, job.id, "manifest.json")
            .await
            .unwrap_or_default();
        for f in manifest["files"].as_array().into_iter().flatten() {
            if let (Some(p), Some(k)) = (f["path"].as_str(), f["kind"].as_str()) {
                files.push((
                    format!("/jobs/{}/files/{p}", job.public_id),
                    p.to_owned(),
                    k.to_owned(),
                ));
            }
        }
    }
    let percent = (job.progress * 100.0).round().clamp(0.0, 100.0) as u32;
    let can_share = job.owned_by(&st.identity.viewer) && !job.is_ownerless();
    Ok(Html(
        JobPage {
            job,
            deps,
            files,
            percent,
            can_share,
            csrf: st.identity.csrf_token().unwrap_or_default(),
        }
        .render()?,
    ))
}

/// `POST /jobs/{id}/share` with the form field `share` (`private`, `link`
/// or `project`): the job's owner changes who else may see it, and is
/// sent back to the job's page. Anyone else is told the job is not found.
pub async fn job_share(
    super::auth::Scoped(st): super::auth::Scoped,
    UrlPath(id): UrlPath<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let id = job_id(&id).map_err(ApiError::bad)?;
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
        .map_err(|e| ApiError::bad(format!("the form is malformed: {e}")))?;
    let share = fields
        .iter()
        .find(|(k, _)| k == "share")
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| ApiError::bad("share: missing; use private, link or project"))?;
    let share = Share::parse(share)?;
    let job = st.catalog.set_job_share(&id, share).await?;
    Ok(axum::response::Redirect::to(&format!("/jobs/{}", job.public_id)).into_response())
}

/// `GET /jobs/{id}/files/{*path}`.
pub async fn job_file(
    super::auth::Scoped(st): super::auth::Scoped,
    UrlPath((id, rel)): UrlPath<(String, String)>,
) -> Result<Response, ApiError> {
    let id = job_id(&id).map_err(ApiError::bad)?;
    let jobs = &st.services.jobs;
    // The job first: a job one may not see has no files either.
    let job = jobs.find(&st.catalog, &id).await?;
    let Some(path) = jobs.file(job.id, &rel) else {
        if job.expired {
            return Err(Jobs::gone(&id).into());
        }
        return Err(ApiError::not_found(format!(
            "job {id} has no file {}",
            crate::params::shown(&rel)
        )));
    };
    let bytes = tokio::fs::read(&path).await.map_err(ApiError::internal)?;
    let mime = match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "fits" => "application/fits",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "json" => "application/json",
        "csv" => "text/csv; charset=utf-8",
        "txt" | "log" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("file")
        .to_owned();
    let disposition = if mime.starts_with("image/") || mime.starts_with("application/json") {
        format!("inline; filename=\"{name}\"")
    } else {
        format!("attachment; filename=\"{name}\"")
    };
    Ok((
        [
            (header::CONTENT_TYPE, mime.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            // Results never change once written; but they are their
            // owner's, so no shared cache may keep them.
            (
                header::CACHE_CONTROL,
                "private, max-age=86400, immutable".to_owned(),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// `GET /jobs/{id}/zip`.
pub async fn job_zip(
    super::auth::Scoped(st): super::auth::Scoped,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let id = job_id(&id).map_err(ApiError::bad)?;
    let jobs = st.services.jobs.clone();
    let job = jobs.find(&st.catalog, &id).await?;
    let number = job.id;
    if job.status != JobStatus::Done {
        return Err(ApiError::conflict(format!(
            "job {id} is {}; its ZIP exists once it is done",
            job.status.name()
        )));
    }
    if job.expired {
        return Err(Jobs::gone(&id).into());
    }
    let (path, made) = tokio::task::spawn_blocking(move || jobs.zip(&job))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    if let Some(bytes) = made {
        // The ZIP is part of the job's footprint: counted, and removed with
        // its files by retention.
        st.catalog.add_job_bytes(number, bytes).await?;
        if let Err(e) = st.services.jobs.apply_retention().await {
            tracing::warn!("job retention: {e}");
        }
    }
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(ApiError::internal)?;
    let len = file.metadata().await.map_err(ApiError::internal)?.len();
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (header::CONTENT_LENGTH, len.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"wisecut_job{id}.zip\""),
            ),
        ],
        body,
    )
        .into_response())
}
