//! The one application error type of the HTTP edge: it decides the status
//! code and renders what the user can act on; details of server faults go to
//! the log, not to the page.

use crate::catalog::CatalogError;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// An error as the HTTP layer sees it.
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
}

impl From<CatalogError> for AppError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::NotFound { .. } => AppError::NotFound(e.to_string()),
            CatalogError::Invalid(m) => AppError::Internal(m),
            CatalogError::Query(m) => AppError::BadRequest(m),
            CatalogError::Db(d) => AppError::Internal(d.to_string()),
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
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
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
        let page = super::pages::ErrorPage {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or(""),
            message,
        };
        match askama::Template::render(&page) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, page.message).into_response(),
        }
    }
}
