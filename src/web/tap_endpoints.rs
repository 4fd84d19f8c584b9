//! TAP 1.1 over HTTP: `/vo/tap/sync`, the UWS 1.1 job list and jobs under
//! `/vo/tap/async`, and the VOSI resources of the service
//! (`/vo/tap/capabilities`, `/vo/tap/availability`, `/vo/tap/tables`).
//!
//! Requests may be GET, form POST or multipart POST (the form of uploads:
//! `UPLOAD=name,param:part` with the VOTable in part `part`). Errors are
//! DALI error VOTables (`QUERY_STATUS=ERROR`), 400 for the client's
//! mistakes. Asynchronous queries are wisecut jobs of kind `tap`, stored
//! in the job table like every other job (so they survive restarts and any
//! server on the same database sees them); a job created without
//! `PHASE=RUN` waits, PENDING, until it is started.

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, RawQuery, Request};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::vo_endpoints::{AsVoTable, VoError, base_url, votable_response};
use crate::catalog::job_records::{JobKind, JobRecord, JobStatus};
use crate::jobs::TapParams;
use crate::vo::DalParams;
use crate::vo::tap::{self, TapError};
use crate::vo::tap_schema::{self, TapTable};
use crate::vo::uws::{self, JobView, Phase};
use crate::vo::votable::{self, escape};

type Answer = Result<Response, VoError<AsVoTable>>;

/// Most bytes of a TAP request body (uploads included).
pub const MAX_BODY_BYTES: usize = 16 << 20;

/// Longest a run may last, seconds (UWS executionDuration): PostgreSQL's
/// statement timeout for TAP.
pub const EXECUTION_DURATION_S: u64 = crate::catalog::tap_query::STATEMENT_TIMEOUT_S as u64;

/// Longest a `WAIT` on a job's phase blocks, seconds (well inside the
/// server's request timeout).
const MAX_WAIT_S: u64 = 30;

/// The parameters and the uploaded parts of a request.
struct Input {
    params: DalParams,
    parts: Vec<(String, String)>,
}

/// Reads query string, form body or multipart body.
async fn input(query: Option<&str>, req: Request) -> Result<Input, VoError<AsVoTable>> {
    let mut params = DalParams::parse(query.unwrap_or("")).map_err(VoError::usage)?;
    let mut parts = Vec::new();
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if multipart {
        let mut form = axum::extract::Multipart::from_request(req, &())
            .await
            .map_err(|e| VoError::usage(format!("the multipart body is malformed: {e}")))?;
        let mut total = 0usize;
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|e| VoError::usage(format!("the multipart body is malformed: {e}")))?
        {
            let name = field.name().unwrap_or("").to_owned();
            let is_file = field.file_name().is_some();
            let bytes = field
                .bytes()
                .await
                .map_err(|e| VoError::usage(format!("part {name}: {e}")))?;
            total += bytes.len();
            if total > MAX_BODY_BYTES {
                return Err(VoError::usage(format!(
                    "the request body is larger than {} MiB; upload smaller tables",
                    MAX_BODY_BYTES >> 20
                )));
            }
            let text = String::from_utf8(bytes.to_vec())
                .map_err(|_| VoError::usage(format!("part {name}: not UTF-8 text")))?;
            // A part that a parameter names is an upload; parameters are
            // the other non-file parts.
            if is_file
                || !crate::vo::tap::PARAMS
                    .iter()
                    .any(|p| p.eq_ignore_ascii_case(&name))
            {
                parts.push((name, text));
            } else {
                params.push(&name, text);
            }
        }
    } else {
        let body = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
            .await
            .map_err(|_| {
                VoError::usage(format!(
                    "the request body is larger than {} MiB",
                    MAX_BODY_BYTES >> 20
                ))
            })?;
        if !body.is_empty() {
            let text = std::str::from_utf8(&body)
                .map_err(|_| VoError::usage("the request body is not UTF-8 form data"))?;
            params.extend(DalParams::parse(text).map_err(VoError::usage)?);
        }
    }
    resolve_url_uploads(Input { params, parts }).await
}

/// Most time a URL upload may take to connect and to arrive.
const URL_UPLOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Fetches the tables of `UPLOAD=name,http://…` (TAP's `upload-http`) and
/// rewrites those uploads as inline parts, so the rest of the service (and
/// an async job's stored parameters) only ever sees `param:` uploads.
/// Plain `http://` only (this server has no TLS client), one attempt, at
/// most [`MAX_BODY_BYTES`], within [`URL_UPLOAD_TIMEOUT`].
async fn resolve_url_uploads(mut inp: Input) -> Result<Input, VoError<AsVoTable>> {
    let mut rewritten = Vec::new();
    let mut n = 0;
    for (k, v) in inp.params.pairs().to_vec() {
        if k != "UPLOAD" {
            rewritten.push((k, v));
            continue;
        }
        let mut specs = Vec::new();
        for one in v.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            match one.split_once(',') {
                Some((name, url)) if url.trim().to_ascii_lowercase().starts_with("http") => {
                    n += 1;
                    let part = format!("wisecut_url_upload_{n}");
                    let body = fetch_upload(url.trim())
                        .await
                        .map_err(|e| VoError::usage(format!("UPLOAD {}: {e}", name.trim())))?;
                    inp.parts.push((part.clone(), body));
                    specs.push(format!("{},param:{part}", name.trim()));
                }
                _ => specs.push(one.to_owned()),
            }
        }
        rewritten.push((k, specs.join(";")));
    }
    if n > 0 {
        let mut params = DalParams::default();
        for (k, v) in rewritten {
            params.push(&k, v);
        }
        inp.params = params;
    }
    Ok(inp)
}

/// One HTTP GET of an upload's URL.
async fn fetch_upload(url: &str) -> Result<String, String> {
    let uri: axum::http::Uri = url
        .parse()
        .map_err(|_| format!("{:?} is not a URL", crate::params::shown(url)))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!(
            "{:?}: only http:// URLs are fetched (or send the table inline, `param:`)",
            crate::params::shown(url)
        ));
    }
    let host = uri.host().ok_or("the URL has no host")?.to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let work = async {
        let stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| format!("HTTP: {e}"))?;
        tokio::spawn(conn);
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or(host.clone());
        let req = axum::http::Request::get(uri.path_and_query().map_or("/", |p| p.as_str()))
            .header(header::HOST, authority)
            .header(header::USER_AGENT, "wisecut TAP upload")
            .body(axum::body::Body::empty())
            .map_err(|e| e.to_string())?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("the server answered {}", resp.status()));
        }
        let bytes = axum::body::to_bytes(axum::body::Body::new(resp.into_body()), MAX_BODY_BYTES)
            .await
            .map_err(|_| format!("larger than {} MiB, or cut short", MAX_BODY_BYTES >> 20))?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "not UTF-8 text".to_owned())
    };
    tokio::time::timeout(URL_UPLOAD_TIMEOUT, work)
        .await
        .map_err(|_| format!("no answer within {} s", URL_UPLOAD_TIMEOUT.as_secs()))?
}

impl From<TapError> for VoError<AsVoTable> {
    fn from(e: TapError) -> Self {
        match e {
            TapError::Usage(m) => VoError::usage(m),
            TapError::Catalog(c) => c.into(),
        }
    }
}

/// `GET|POST /vo/tap/sync`.
pub async fn sync(
    super::auth::Scoped(st): super::auth::Scoped,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    req: Request,
) -> Answer {
    let base = base_url(&st, &headers);
    let inp = input(query.as_deref(), req).await?;
    let r = tap::Request::parse(&inp.params).map_err(VoError::usage)?;
    let up = tap::read_uploads(&r, &inp.parts).map_err(VoError::usage)?;
    let doc = tap::run(&st.catalog, &r, up, &base).await?;
    Ok(votable_response(
        &doc,
        r.format.serialization,
        &r.format.media_type,
    ))
}

/// `GET /vo/tap`: what the service is, for a person who opens the URL.
pub async fn root(super::auth::Scoped(st): super::auth::Scoped, headers: HeaderMap) -> Response {
    let base = base_url(&st, &headers);
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!(
            "wisecut TAP 1.1 service (ADQL 2.0/2.1).\n\
             sync:         {base}/vo/tap/sync?LANG=ADQL&QUERY=SELECT+TOP+5+*+FROM+ivoa.obscore\n\
             async (UWS):  {base}/vo/tap/async\n\
             tables:       {base}/vo/tap/tables\n\
             capabilities: {base}/vo/tap/capabilities\n"
        ),
    )
        .into_response()
}

fn see_other(location: String) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

fn plain(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

fn xml(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
}

fn iso(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The UWS phase of a job.
pub fn phase(job: &JobRecord) -> Phase {
    match job.status {
        JobStatus::Pending => Phase::Pending,
        JobStatus::Queued => Phase::Queued,
        JobStatus::Running => Phase::Executing,
        JobStatus::Done if job.expired => Phase::Archived,
        JobStatus::Done => Phase::Completed,
        JobStatus::Failed => Phase::Error,
        JobStatus::Aborted => Phase::Aborted,
    }
}

/// A TAP job's URL: by its public id (unguessable), never its number.
fn job_url(base: &str, id: &str) -> String {
    format!("{base}/vo/tap/async/{id}")
}

fn stored(job: &JobRecord) -> TapParams {
    serde_json::from_value(job.params.clone()).unwrap_or(TapParams {
        pairs: vec![],
        uploads: vec![],
        base: String::new(),
    })
}

fn view(st: &AppState, base: &str, job: &JobRecord) -> JobView {
    let p = stored(job);
    let ph = phase(job);
    let keep = chrono::Duration::from_std(st.services.jobs.retention().max_age)
        .unwrap_or(chrono::Duration::days(7));
    JobView {
        id: job.public_id.clone(),
        run_id: p
            .pairs
            .iter()
            .find(|(k, _)| k == "RUNID")
            .map(|(_, v)| v.clone()),
        phase: ph,
        creation: iso(&job.created_at),
        start: job.started_at.as_ref().map(iso),
        end: job.finished_at.as_ref().map(iso),
        execution_duration: EXECUTION_DURATION_S,
        destruction: Some(iso(&(job.finished_at.unwrap_or(job.created_at) + keep))),
        parameters: p.pairs,
        results: if ph == Phase::Completed {
            vec![(
                "result".into(),
                format!("{}/results/result", job_url(base, &job.public_id)),
            )]
        } else {
            vec![]
        },
        error: (ph == Phase::Error || ph == Phase::Aborted)
            .then(|| job.error.clone().unwrap_or_else(|| "failed".into())),
    }
}

/// The parameters a job keeps: everything but `PHASE`, which acts on the
/// job instead of describing its query.
fn job_parameters(p: &DalParams) -> Vec<(String, String)> {
    p.pairs()
        .iter()
        .filter(|(k, _)| k != "PHASE")
        .cloned()
        .collect()
}

/// A TAP job by its URL id (its public id) as the request's viewer may
/// see it; any other job, one not the viewer's to see, or none is not
/// found, all alike.
async fn tap_job(st: &AppState, id: &str) -> Result<JobRecord, VoError<AsVoTable>> {
    let not_found = || {
        VoError::not_found(format!(
            "job {:?}: no such TAP job",
            crate::params::shown(id)
        ))
    };
    let public = super::job_pages::job_id(id).map_err(|_| not_found())?;
    match st.services.jobs.find(&st.catalog, &public).await {
        Ok(j) if j.kind == JobKind::Tap => Ok(j),
        Ok(_)
        | Err(crate::jobs::JobError::Catalog(crate::catalog::CatalogError::NotFound { .. })) => {
            Err(not_found())
        }
        Err(e) => Err(VoError::internal(e)),
    }
}

/// `GET /vo/tap/async`: the job list (UWS 1.1 `PHASE` and `LAST` filters).
/// `POST /vo/tap/async`: a new job, PENDING unless `PHASE=RUN`.
pub async fn async_jobs(
    super::auth::Scoped(st): super::auth::Scoped,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    req: Request,
) -> Answer {
    let base = base_url(&st, &headers);
    let inp = input(query.as_deref(), req).await?;
    if method == Method::GET {
        let phases: Vec<String> = inp
            .params
            .all("PHASE")
            .iter()
            .map(|p| p.trim().to_ascii_uppercase())
            .collect();
        let last = match inp.params.one("LAST").map_err(VoError::usage)? {
            None => 1000,
            Some(l) => l
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|l| *l > 0)
                .ok_or_else(|| {
                    VoError::usage(format!(
                        "LAST: {:?} is not a positive count",
                        crate::params::shown(l)
                    ))
                })?,
        };
        let (_, jobs) = st
            .catalog
            .jobs(Some(JobKind::Tap), None, 0, last.min(10_000))
            .await?;
        let refs: Vec<uws::JobRef> = jobs
            .iter()
            .map(|j| {
                let v = view(&st, &base, j);
                uws::JobRef {
                    id: v.id,
                    href: job_url(&base, &j.public_id),
                    phase: v.phase,
                    run_id: v.run_id,
                    creation: v.creation,
                }
            })
            // UWS 1.1: without a PHASE filter, ARCHIVED jobs are left out.
            .filter(|r| {
                if phases.is_empty() {
                    r.phase != Phase::Archived
                } else {
                    phases.iter().any(|p| p == r.phase.name())
                }
            })
            .collect();
        return Ok(xml(uws::jobs_xml(&refs)));
    }
    let run = match inp.params.one("PHASE").map_err(VoError::usage)? {
        None => false,
        Some(p) if p.trim().eq_ignore_ascii_case("RUN") => true,
        Some(p) => {
            return Err(VoError::usage(format!(
                "PHASE: {:?} is not allowed when creating a job; allowed: RUN (or leave it out to create the job PENDING)",
                crate::params::shown(p)
            )));
        }
    };
    let pairs = job_parameters(&inp.params);
    let title = inp
        .params
        .all("QUERY")
        .first()
        .map(|q| q.chars().take(120).collect::<String>())
        .unwrap_or_else(|| "TAP query".into());
    let params = TapParams {
        pairs,
        uploads: inp.parts,
        base: base.clone(),
    };
    let job = st
        .catalog
        .create_pending_job(
            JobKind::Tap,
            &format!("TAP: {title}"),
            &serde_json::to_value(&params).map_err(VoError::internal)?,
            &super::job_pages::submitter(&st.identity),
        )
        .await?;
    if run {
        st.services
            .jobs
            .run_pending(job.id)
            .await
            .map_err(VoError::internal)?;
    }
    Ok(see_other(job_url(&base, &job.public_id)))
}

/// `GET /vo/tap/async/{id}` (UWS 1.1 `WAIT` blocks while the job is
/// active, at most [`MAX_WAIT_S`] seconds), `POST` with `ACTION=DELETE`,
/// `PHASE=RUN|ABORT` or new parameters of a pending job, `DELETE`.
pub async fn async_job(
    super::auth::Scoped(st): super::auth::Scoped,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    req: Request,
) -> Answer {
    let base = base_url(&st, &headers);
    let job = tap_job(&st, &id).await?;
    let inp = input(query.as_deref(), req).await?;
    if method == Method::DELETE {
        st.services
            .jobs
            .delete(job.id)
            .await
            .map_err(VoError::internal)?;
        return Ok(see_other(format!("{base}/vo/tap/async")));
    }
    if method == Method::POST {
        if let Some(a) = inp.params.one("ACTION").map_err(VoError::usage)? {
            if !a.trim().eq_ignore_ascii_case("DELETE") {
                return Err(VoError::usage(format!(
                    "ACTION: {:?} is not allowed; allowed: DELETE",
                    crate::params::shown(a)
                )));
            }
            st.services
                .jobs
                .delete(job.id)
                .await
                .map_err(VoError::internal)?;
            return Ok(see_other(format!("{base}/vo/tap/async")));
        }
        let others = job_parameters(&inp.params);
        if !others.is_empty() || !inp.parts.is_empty() {
            set_parameters(&st, &job, others, inp.parts).await?;
        }
        if let Some(p) = inp.params.one("PHASE").map_err(VoError::usage)? {
            change_phase(&st, &job, p).await?;
        }
        return Ok(see_other(job_url(&base, &job.public_id)));
    }
    let job = wait(&st, job, &inp.params).await?;
    Ok(xml(uws::job_xml(&view(&st, &base, &job))))
}

async fn wait(
    st: &AppState,
    mut job: JobRecord,
    p: &DalParams,
) -> Result<JobRecord, VoError<AsVoTable>> {
    let Some(w) = p.one("WAIT").map_err(VoError::usage)? else {
        return Ok(job);
    };
    let secs: i64 = w.trim().parse().map_err(|_| {
        VoError::usage(format!(
            "WAIT: {:?} is not a number of seconds (-1: as long as the service allows)",
            crate::params::shown(w)
        ))
    })?;
    let limit = if secs < 0 {
        MAX_WAIT_S
    } else {
        (secs as u64).min(MAX_WAIT_S)
    };
    let start_phase = phase(&job);
    // UWS 1.1: only an active job (PENDING, QUEUED, EXECUTING) blocks.
    if start_phase.is_final() {
        return Ok(job);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(limit);
    while std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        job = st
            .services
            .jobs
            .current(job.id)
            .await
            .map_err(VoError::internal)?;
        if phase(&job) != start_phase {
            break;
        }
    }
    Ok(job)
}

async fn change_phase(
    st: &AppState,
    job: &JobRecord,
    value: &str,
) -> Result<(), VoError<AsVoTable>> {
    match value.trim().to_ascii_uppercase().as_str() {
        "RUN" => {
            // Running a job that already runs or ran changes nothing.
            st.services
                .jobs
                .run_pending(job.id)
                .await
                .map_err(VoError::internal)?;
        }
        "ABORT" => {
            st.catalog.abort_job(job.id).await?;
        }
        other => {
            return Err(VoError::usage(format!(
                "PHASE: {:?} is not allowed; allowed: RUN, ABORT",
                crate::params::shown(other)
            )));
        }
    }
    Ok(())
}

async fn set_parameters(
    st: &AppState,
    job: &JobRecord,
    pairs: Vec<(String, String)>,
    parts: Vec<(String, String)>,
) -> Result<(), VoError<AsVoTable>> {
    let mut p = stored(job);
    for (k, v) in pairs {
        // A parameter set again replaces its earlier value.
        p.pairs.retain(|(name, _)| *name != k);
        p.pairs.push((k, v));
    }
    for (k, v) in parts {
        p.uploads.retain(|(name, _)| *name != k);
        p.uploads.push((k, v));
    }
    let value = serde_json::to_value(&p).map_err(VoError::internal)?;
    if !st.catalog.set_pending_job_params(job.id, &value).await? {
        return Err(VoError::usage(format!(
            "job {}: parameters can only change while the job is PENDING; it is {}",
            job.public_id,
            phase(job).name()
        )));
    }
    Ok(())
}

/// `GET|POST /vo/tap/async/{id}/{resource}`: phase, parameters, results,
/// error, executionduration, destruction, quote, owner.
pub async fn async_job_resource(
    super::auth::Scoped(st): super::auth::Scoped,
    method: Method,
    headers: HeaderMap,
    Path((id, resource)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    req: Request,
) -> Answer {
    let base = base_url(&st, &headers);
    let job = tap_job(&st, &id).await?;
    let inp = input(query.as_deref(), req).await?;
    let post = method == Method::POST;
    let v = view(&st, &base, &job);
    match resource.as_str() {
        "phase" if post => {
            let p = inp
                .params
                .one("PHASE")
                .map_err(VoError::usage)?
                .ok_or_else(|| VoError::usage("PHASE: missing; allowed: RUN, ABORT"))?;
            change_phase(&st, &job, p).await?;
            Ok(see_other(job_url(&base, &job.public_id)))
        }
        "phase" => Ok(plain(v.phase.name().to_owned())),
        "parameters" if post => {
            set_parameters(&st, &job, job_parameters(&inp.params), inp.parts).await?;
            Ok(see_other(job_url(&base, &job.public_id)))
        }
        "parameters" => Ok(xml(uws::parameters_xml(&v.parameters))),
        "results" => Ok(xml(uws::results_xml(&v.results))),
        "error" => match v.error {
            Some(message) => {
                let doc = votable::Document {
                    description: "wisecut TAP job error".into(),
                    infos: vec![votable::QueryStatus::Error(message).info()],
                    table_name: "error".into(),
                    ..Default::default()
                };
                Ok(votable_response(
                    &doc,
                    votable::Serialization::TableData,
                    votable::MIME,
                ))
            }
            None => Err(VoError::not_found(format!(
                "job {}: it is {}, and has no error",
                job.public_id,
                v.phase.name()
            ))),
        },
        // The service keeps its own limits; a client's new value is
        // accepted and the job keeps the service's (UWS allows that).
        "executionduration" | "destruction" if post => {
            Ok(see_other(job_url(&base, &job.public_id)))
        }
        "executionduration" => Ok(plain(v.execution_duration.to_string())),
        "destruction" => Ok(plain(v.destruction.unwrap_or_default())),
        "quote" => Ok(plain(String::new())),
        "owner" => Ok(plain(job.owner_user.clone().unwrap_or_default())),
        other => Err(VoError::not_found(format!(
            "job {}: no resource {:?}; resources: phase, parameters, results, error, executionduration, destruction, quote, owner",
            job.public_id,
            crate::params::shown(other)
        ))),
    }
}

/// `GET /vo/tap/async/{id}/results/result`: the query's VOTable.
pub async fn async_result(
    super::auth::Scoped(st): super::auth::Scoped,
    Path(id): Path<String>,
) -> Answer {
    let job = tap_job(&st, &id).await?;
    if phase(&job) != Phase::Completed {
        return Err(VoError::not_found(format!(
            "job {}: it is {}; results exist once it is COMPLETED",
            job.public_id,
            phase(&job).name()
        )));
    }
    let path =
        st.services.jobs.file(job.id, "result.vot").ok_or_else(|| {
            VoError::not_found(format!("job {}: its result is gone", job.public_id))
        })?;
    let media_type = std::fs::read(path.with_file_name("manifest.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|m| m["media_type"].as_str().map(str::to_owned))
        .unwrap_or_else(|| votable::MIME.to_owned());
    let body = tokio::fs::read(&path).await.map_err(VoError::internal)?;
    Ok(([(header::CONTENT_TYPE, media_type)], Bytes::from(body)).into_response())
}

/// `GET /vo/tap/tables` (VOSI tables, VODataService 1.1): every published
/// table and column, from the same description as TAP_SCHEMA.
pub async fn tables() -> Response {
    xml(tableset_xml(&tap_schema::published()))
}

/// The VOSI tableset document of `tables`.
pub fn tableset_xml(tables: &[TapTable]) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<vosi:tableset xmlns:vosi=\"http://www.ivoa.net/xml/VOSITables/v1.0\" xmlns:vs=\"http://www.ivoa.net/xml/VODataService/v1.1\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n",
    );
    let mut schemas: Vec<&str> = Vec::new();
    for t in tables {
        if !schemas.contains(&t.schema.as_str()) {
            schemas.push(&t.schema);
        }
    }
    for s in schemas {
        out.push_str(&format!("<schema>\n<name>{}</name>\n", escape(s)));
        for t in tables.iter().filter(|t| t.schema == s) {
            out.push_str(&format!(
                "<table type=\"output\">\n<name>{}</name>\n<description>{}</description>\n",
                escape(&t.qualified_name()),
                escape(&t.description)
            ));
            if !t.utype.is_empty() {
                out.push_str(&format!("<utype>{}</utype>\n", escape(&t.utype)));
            }
            for c in &t.columns {
                out.push_str(&format!(
                    "<column>\n<name>{}</name>\n<description>{}</description>\n",
                    escape(&tap_schema::adql_name(&c.name)),
                    escape(&c.description)
                ));
                if !c.unit.is_empty() {
                    out.push_str(&format!("<unit>{}</unit>\n", escape(&c.unit)));
                }
                if !c.ucd.is_empty() {
                    out.push_str(&format!("<ucd>{}</ucd>\n", escape(&c.ucd)));
                }
                if !c.utype.is_empty() {
                    out.push_str(&format!("<utype>{}</utype>\n", escape(&c.utype)));
                }
                out.push_str("<dataType xsi:type=\"vs:VOTableType\"");
                if let Some(a) = &c.arraysize {
                    out.push_str(&format!(" arraysize=\"{}\"", escape(a)));
                }
                if let Some(x) = &c.xtype {
                    out.push_str(&format!(" extendedType=\"{}\"", escape(x)));
                }
                out.push_str(&format!(
                    ">{}</dataType>\n",
                    tap_schema::datatype_name(c.datatype)
                ));
                for (flag, on) in [
                    ("indexed", c.indexed),
                    ("principal", c.principal),
                    ("std", c.std),
                ] {
                    if on {
                        out.push_str(&format!("<flag>{flag}</flag>\n"));
                    }
                }
                out.push_str("</column>\n");
            }
            for fk in &t.foreign_keys {
                out.push_str(&format!(
                    "<foreignKey>\n<targetTable>{}</targetTable>\n",
                    escape(&fk.target_table)
                ));
                for (from, to) in &fk.columns {
                    out.push_str(&format!(
                        "<fkColumn>\n<fromColumn>{}</fromColumn>\n<targetColumn>{}</targetColumn>\n</fkColumn>\n",
                        escape(from),
                        escape(to)
                    ));
                }
                if !fk.description.is_empty() {
                    out.push_str(&format!(
                        "<description>{}</description>\n",
                        escape(&fk.description)
                    ));
                }
                out.push_str("</foreignKey>\n");
            }
            out.push_str("</table>\n");
        }
        out.push_str("</schema>\n");
    }
    out.push_str("</vosi:tableset>\n");
    out
}

/// `GET /vo/tap/capabilities`: VOSI capabilities with the TAPRegExt
/// description of this service (language and its features, output
/// formats, upload method, limits).
pub async fn capabilities(
    super::auth::Scoped(st): super::auth::Scoped,
    headers: HeaderMap,
) -> Response {
    let base = escape(&base_url(&st, &headers));
    let keep = st.services.jobs.retention().max_age.as_secs();
    let vosi = |standard: &str, path: &str| {
        format!(
            "<capability standardID=\"{standard}\">\n<interface xsi:type=\"vs:ParamHTTP\">\n<accessURL use=\"full\">{base}{path}</accessURL>\n</interface>\n</capability>\n"
        )
    };
    let feature = |form: &str| format!("<feature><form>{form}</form></feature>\n");
    let mut geo = String::new();
    for f in crate::vo::adql::GEOMETRY_FUNCTIONS {
        geo.push_str(&feature(f));
    }
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<vosi:capabilities xmlns:vosi=\"http://www.ivoa.net/xml/VOSICapabilities/v1.0\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:vs=\"http://www.ivoa.net/xml/VODataService/v1.1\" xmlns:tr=\"http://www.ivoa.net/xml/TAPRegExt/v1.0\">\n\
<capability standardID=\"ivo://ivoa.net/std/TAP\" xsi:type=\"tr:TableAccess\">\n\
<interface xsi:type=\"vs:ParamHTTP\" role=\"std\" version=\"1.1\">\n<accessURL use=\"base\">{base}/vo/tap</accessURL>\n</interface>\n\
<dataModel ivo-id=\"ivo://ivoa.net/std/ObsCore#core-1.1\">ObsCore-1.1</dataModel>\n\
<language>\n<name>ADQL</name>\n\
<version ivo-id=\"ivo://ivoa.net/std/ADQL#v2.0\">2.0</version>\n\
<version ivo-id=\"ivo://ivoa.net/std/ADQL#v2.1\">2.1</version>\n\
<description>ADQL 2.1 (SELECT, TOP, OFFSET, JOIN, GROUP BY, ORDER BY) with the geometric functions, translated to SQL</description>\n\
<languageFeatures type=\"ivo://ivoa.net/std/TAPRegExt#features-adqlgeo\">\n{geo}</languageFeatures>\n\
<languageFeatures type=\"ivo://ivoa.net/std/TAPRegExt#features-adql-string\">\n{lower}{ilike}</languageFeatures>\n\
<languageFeatures type=\"ivo://ivoa.net/std/TAPRegExt#features-adql-offset\">\n{offset}</languageFeatures>\n\
</language>\n\
<outputFormat ivo-id=\"ivo://ivoa.net/std/TAPRegExt#output-votable-td\">\n<mime>application/x-votable+xml</mime>\n<alias>votable</alias>\n</outputFormat>\n\
<outputFormat ivo-id=\"ivo://ivoa.net/std/TAPRegExt#output-votable-binary2\">\n<mime>application/x-votable+xml;serialization=BINARY2</mime>\n</outputFormat>\n\
<outputFormat>\n<mime>text/xml</mime>\n</outputFormat>\n\
<uploadMethod ivo-id=\"ivo://ivoa.net/std/TAPRegExt#upload-inline\"/>\n\
<uploadMethod ivo-id=\"ivo://ivoa.net/std/TAPRegExt#upload-http\"/>\n\
<retentionPeriod>\n<default>{keep}</default>\n<hard>{keep}</hard>\n</retentionPeriod>\n\
<executionDuration>\n<default>{dur}</default>\n<hard>{dur}</hard>\n</executionDuration>\n\
<outputLimit>\n<default unit=\"row\">{def}</default>\n<hard unit=\"row\">{max}</hard>\n</outputLimit>\n\
<uploadLimit>\n<hard unit=\"byte\">{upload}</hard>\n</uploadLimit>\n\
</capability>\n{caps}{avail}{tables}</vosi:capabilities>\n",
        lower = feature("LOWER"),
        ilike = feature("ILIKE"),
        offset = feature("OFFSET"),
        dur = EXECUTION_DURATION_S,
        def = tap::DEFAULT_MAXREC,
        max = tap::MAX_MAXREC,
        upload = MAX_BODY_BYTES,
        caps = vosi(
            "ivo://ivoa.net/std/VOSI#capabilities",
            "/vo/tap/capabilities"
        ),
        avail = vosi(
            "ivo://ivoa.net/std/VOSI#availability",
            "/vo/tap/availability"
        ),
        tables = vosi("ivo://ivoa.net/std/VOSI#tables-1.1", "/vo/tap/tables"),
    );
    xml(body)
}
