//! The HTTP application: routes, shared state and the error type.
//!
//! [`app`] builds the whole router from a state value, so tests drive it with
//! `tower::ServiceExt::oneshot` without opening a socket. Handlers are thin:
//! they parse, call the catalogue or a service, and render.

mod error;
pub mod pages;

pub use error::AppError;

use crate::catalog::Catalog;
use crate::config::Config;
use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::Arc;
use tower_http::trace::TraceLayer;

/// State shared by all handlers.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The catalogue.
    pub catalog: Catalog,
    /// The configuration the server runs with.
    pub config: Arc<Config>,
}

/// The complete router.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/health", get(health))
        .route("/static/style.css", get(stylesheet))
        .fallback(not_found)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// `GET /health`: 200 and `ok` when the database answers.
async fn health(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<&'static str, AppError> {
    state.catalog.category_counts().await?;
    Ok("ok")
}

async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../templates/style.css"),
    )
}

async fn not_found(uri: axum::http::Uri) -> AppError {
    AppError::NotFound(format!("there is no page at {}", uri.path()))
}
