//! The errors of the HTTP edge. Each decides the status code from whose
//! fault the error is and renders what the user can act on, in the form the
//! route's clients read: [`AppError`] as an HTML page for the browser pages,
//! [`ApiError`] as one `text/plain` line for scripts. (The VO routes answer
//! in the forms their standards prescribe: see `vo_endpoints::VoError`.)
//! Details of server faults go to the log, never to the client.

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::catalog::CatalogError;
use crate::params::ParamError;
use crate::products::ProductError;

/// What clients are told about a fault of the server.
const SERVER_FAULT: &str = "the server failed to answer this request; the details are in its log";

/// An error of an HTML page.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is malformed; the message names the parameter.
    #[error("{0}")]
    BadRequest(String),
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A fault of the server.
    #[error("{0}")]
    Internal(String),
    /// Too busy now; retry after the given seconds.
    #[error("{0}")]
    Busy(String, u64),
    /// A fault of the data store the user should report: a 500 whose
    /// message (naming the frame, not a path) is shown.
    #[error("{0}")]
    Damaged(String),
    /// A remote store failed (502) or timed out (504); the message names it.
    #[error("{1}")]
    Upstream(StatusCode, String),
}

impl From<CatalogError> for AppError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::NotFound { .. } => AppError::NotFound(e.to_string()),
            CatalogError::Invalid(m) => AppError::Internal(m),
            CatalogError::Query(m) => AppError::BadRequest(m),
            ref other if other.unavailable() => {
                AppError::Busy(crate::catalog::unavailable_message(other), 5)
            }
            CatalogError::Db(d) => AppError::Internal(d.to_string()),
        }
    }
}

impl From<ParamError> for AppError {
    fn from(e: ParamError) -> Self {
        AppError::BadRequest(e.to_string())
    }
}

impl From<ProductError> for AppError {
    fn from(e: ProductError) -> Self {
        match e {
            ProductError::Param(p) => p.into(),
            ProductError::Invalid(m) => AppError::BadRequest(m),
            ProductError::NotFound(m) => AppError::NotFound(m),
            ProductError::Internal(m) => AppError::Internal(m),
            ProductError::Damaged(m) => AppError::Damaged(m),
            ProductError::StoreDown(m) => AppError::Upstream(StatusCode::BAD_GATEWAY, m),
            ProductError::StoreTimeout(m) => AppError::Upstream(StatusCode::GATEWAY_TIMEOUT, m),
            ProductError::Busy {
                message,
                retry_after,
            } => AppError::Busy(message, retry_after),
        }
    }
}

impl From<ApiError> for AppError {
    fn from(e: ApiError) -> Self {
        match e.status {
            StatusCode::NOT_FOUND => AppError::NotFound(e.message),
            StatusCode::SERVICE_UNAVAILABLE => {
                AppError::Busy(e.message, e.retry_after.unwrap_or(1))
            }
            s if s.is_client_error() => AppError::BadRequest(e.message),
            _ => AppError::Internal(e.message),
        }
    }
}

impl From<askama::Error> for AppError {
    fn from(e: askama::Error) -> Self {
        AppError::Internal(format!("template: {e}"))
    }
}

impl AppError {
    fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Internal(_) | AppError::Damaged(_) => StatusCode::INTERNAL_SERVER_ERROR,
            AppError::Busy(..) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Upstream(s, _) => *s,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            AppError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                "The server failed to answer this request; the details are in its log.".to_owned()
            }
            other => other.to_string(),
        };
        let retry = match &self {
            AppError::Busy(_, s) => Some(*s),
            _ => None,
        };
        let mut r = error_page(status, message);
        set_retry_after(&mut r, retry);
        r
    }
}

/// The HTML error page with `status` and `message`.
pub(crate) fn error_page(status: StatusCode, message: String) -> Response {
    let page = super::pages::ErrorPage {
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or(""),
        message: crate::params::cut_long_words(&message).into_owned(),
    };
    match askama::Template::render(&page) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => (status, page.message).into_response(),
    }
}

/// A refusal of the HTTP edge itself (a limit, a timeout), in the form the
/// route's clients read: the HTML error page for browser pages, one
/// `text/plain` line for everything else.
pub(crate) fn edge_refusal(status: StatusCode, message: String, page: bool) -> Response {
    if page {
        error_page(status, message)
    } else {
        ApiError::new(status, message).into_response()
    }
}

/// An error of a script-facing endpoint: a status and a one-line message.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `status`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        let message: String = message.into();
        Self {
            status,
            message: crate::params::cut_long_words(&message).into_owned(),
            retry_after: None,
        }
    }

    /// 503 with `Retry-After`.
    pub fn busy(message: impl Into<String>, retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
        }
    }

    /// 400 with a message naming the parameter.
    pub fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 409: the thing exists but is not ready.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// 410: the thing existed and was removed.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, message)
    }

    /// 500, logging the detail.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error in the API");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, SERVER_FAULT)
    }

    /// The message for the caller.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Seconds to wait before retrying, for a 503.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<ParamError> for ApiError {
    fn from(e: ParamError) -> Self {
        Self::bad(e.to_string())
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::NotFound { .. } => Self::not_found(e.to_string()),
            CatalogError::Query(m) => Self::bad(m),
            other if other.unavailable() => {
                Self::busy(crate::catalog::unavailable_message(&other), 5)
            }
            other => Self::internal(other),
        }
    }
}

impl From<ProductError> for ApiError {
    fn from(e: ProductError) -> Self {
        match e {
            ProductError::Param(p) => p.into(),
            ProductError::Invalid(m) => Self::bad(m),
            ProductError::NotFound(m) => Self::not_found(m),
            ProductError::Internal(m) => Self::internal(m),
            ProductError::Damaged(m) => Self::new(StatusCode::INTERNAL_SERVER_ERROR, m),
            ProductError::StoreDown(m) => Self::new(StatusCode::BAD_GATEWAY, m),
            ProductError::StoreTimeout(m) => Self::new(StatusCode::GATEWAY_TIMEOUT, m),
            ProductError::Busy {
                message,
                retry_after,
            } => Self::busy(message, retry_after),
        }
    }
}

impl From<crate::jobs::JobError> for ApiError {
    fn from(e: crate::jobs::JobError) -> Self {
        use crate::jobs::JobError;
        match e {
            JobError::Param { param, message } => Self::bad(format!("{param}: {message}")),
            JobError::Catalog(c) => c.into(),
            JobError::Gone(m) => Self::gone(m),
            JobError::Elsewhere(m) => Self::busy(m, 60),
            JobError::Shared(m) => Self::new(StatusCode::BAD_GATEWAY, m),
            other => Self::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{}\n", self.message),
        )
            .into_response();
        set_retry_after(&mut r, self.retry_after);
        r
    }
}

/// `Retry-After: seconds`, when there is a wait to announce.
pub(crate) fn set_retry_after(r: &mut Response, seconds: Option<u64>) {
    if let Some(s) = seconds {
        r.headers_mut().insert(header::RETRY_AFTER, s.into());
    }
}
