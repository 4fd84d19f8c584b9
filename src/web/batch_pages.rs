//! Batch positions jobs over HTTP, as the DES cutout service offers them:
//! `GET /batch` (the upload form), `POST /batch` (multipart: the `positions`
//! file or `csv` text plus option fields; redirects to the job page) and
//! `POST /api/batch?xsize=…` (the CSV as the request body; 202 with the
//! job). The file and options are checked before anything is queued, so a
//! broken header is a 400 at once; malformed rows are reported by the job.

use askama::Template;
use axum::extract::{Multipart, RawQuery};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::ApiError;
use super::{AppError, AppState};
use crate::catalog::job_records::JobKind;
use crate::products::batch::{BatchParams, MAX_ROWS, MAX_SIZE_ARCMIN, check};

/// The upload form.
#[derive(Template)]
#[template(path = "batch.html")]
pub struct BatchPage {
    /// An error to show.
    pub error: Option<String>,
    /// Row limit.
    pub max_rows: usize,
    /// Size limit.
    pub max_size: f64,
}

/// `GET /batch`.
pub async fn batch_page() -> Result<Html<String>, AppError> {
    Ok(Html(
        BatchPage {
            error: None,
            max_rows: MAX_ROWS,
            max_size: MAX_SIZE_ARCMIN,
        }
        .render()?,
    ))
}

async fn submit(
    st: &AppState,
    p: BatchParams,
) -> Result<crate::catalog::job_records::JobRecord, ApiError> {
    let title = check(&p).map_err(ApiError::from)?;
    let params = serde_json::to_value(&p).map_err(ApiError::internal)?;
    // The same file with the same options is the same request.
    let canonical = params.to_string();
    st.services
        .jobs
        .submit(
            JobKind::Batch,
            &title,
            params,
            &canonical,
            false,
            &super::job_pages::submitter(&st.identity),
        )
        .await
        .map_err(ApiError::from)
}

/// `POST /batch` (multipart form).
pub async fn batch_post(
    super::auth::Scoped(st): super::auth::Scoped,
    mut form: Multipart,
) -> Response {
    let mut csv: Option<String> = None;
    let mut filename = None;
    let mut options = Vec::new();
    let fail = |status: StatusCode, message: String| -> Response {
        let page = BatchPage {
            error: Some(message),
            max_rows: MAX_ROWS,
            max_size: MAX_SIZE_ARCMIN,
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(e) => AppError::from(e).into_response(),
        }
    };
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                return fail(
                    StatusCode::BAD_REQUEST,
                    format!("the upload is malformed: {e}"),
                );
            }
        };
        let name = field.name().unwrap_or("").to_owned();
        let file = field.file_name().map(str::to_owned);
        let text = match field.text().await {
            Ok(t) => t,
            Err(e) => return fail(StatusCode::BAD_REQUEST, format!("{name}: unreadable: {e}")),
        };
        match name.as_str() {
            "positions" => {
                if !text.trim().is_empty() {
                    csv = Some(text);
                    filename = file.filter(|f| !f.is_empty());
                }
            }
            "csv" => {
                if csv.is_none() && !text.trim().is_empty() {
                    csv = Some(text);
                }
            }
            // Checked by the CSRF guard (`auth::identify`) already.
            super::auth::CSRF_FIELD => {}
            _ if text.trim().is_empty() => {}
            _ => options.push((name, text)),
        }
    }
    let Some(csv) = csv else {
        return fail(
            StatusCode::BAD_REQUEST,
            "positions: missing: upload a CSV file (or paste it) with RA,DEC or SLID,SID columns"
                .into(),
        );
    };
    match submit(
        &st,
        BatchParams {
            csv,
            options,
            filename,
        },
    )
    .await
    {
        Ok(job) => Redirect::to(&format!("/jobs/{}", job.public_id)).into_response(),
        Err(e) => fail(e.status(), e.message().to_owned()),
    }
}

/// `POST /api/batch?OPTION=…` with the CSV as the body.
pub async fn batch_api(
    super::auth::Scoped(st): super::auth::Scoped,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: String,
) -> Result<Response, ApiError> {
    let options: Vec<(String, String)> = serde_urlencoded::from_str(q.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::bad(format!("the query string is malformed: {e}")))?;
    if body.trim().is_empty() {
        return Err(ApiError::bad(
            "positions: missing: send the CSV (RA,DEC or SLID,SID columns) as the request body",
        ));
    }
    let job = submit(
        &st,
        BatchParams {
            csv: body,
            options,
            filename: None,
        },
    )
    .await?;
    let base = super::vo_endpoints::base_url(&st, &headers);
    Ok(super::job_pages::accepted(&st, &base, &job).await)
}
