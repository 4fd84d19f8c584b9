//! The HTTP application: routes, shared state and the error type.
//!
//! [`app`] builds the whole router from a state value, so tests drive it with
//! `tower::ServiceExt::oneshot` without opening a socket. Handlers are thin:
//! they parse, call the catalogue or a service, and render.

pub mod api;
pub mod batch;
pub mod browse;
mod error;
pub mod image;
pub mod jobs;
pub mod object;
pub mod pages;
pub mod rgb;
pub mod sky;
pub mod vo;

pub use error::AppError;

use crate::cache::DiskCache;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::imaging::pixels::{Sidecars, SourceCache};
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
    /// Opened images, frame lookups and the product cache.
    pub services: Arc<Services>,
}

/// Long-lived helpers shared by handlers.
#[derive(Debug)]
pub struct Services {
    /// Opened image HDUs (and their sidecars).
    pub sources: Arc<SourceCache>,
    /// Recently resolved frames, so a burst of cutouts of one frame does not
    /// query the database for each.
    pub frames: api::FrameLookup,
    /// The on-demand product cache (rendered images, cutouts of compressed
    /// frames).
    pub products: DiskCache,
    /// Jobs: dependency cutouts, RGB images, batches.
    pub jobs: Arc<crate::jobs::Jobs>,
}

impl AppState {
    /// State for `catalog` and `config`, creating the cache directories.
    pub fn new(catalog: Catalog, config: Arc<Config>) -> std::io::Result<Self> {
        let sidecars = Sidecars::new(config.cache_dir.join("sidecars"), config.sidecar_bytes)?;
        let sources = Arc::new(SourceCache::new(256, Some(sidecars)));
        let jobs = crate::jobs::Jobs::new(
            catalog.clone(),
            config.jobs_dir.clone(),
            crate::jobs::Retention {
                max_bytes: config.jobs_bytes,
                max_age: std::time::Duration::from_secs(config.jobs_days * 86_400),
            },
            sources.clone(),
            config.data_dir.clone(),
            config.public_url.clone(),
        )?;
        let services = Services {
            sources,
            jobs: Arc::new(jobs),
            frames: api::FrameLookup::new(4096),
            products: DiskCache::open(config.cache_dir.join("products"), config.cache_bytes)
                .map_err(std::io::Error::other)?,
        };
        Ok(Self {
            catalog,
            config,
            services: Arc::new(services),
        })
    }
}

/// An object id from a URL path segment; the error names what was given.
pub fn object_id(text: &str) -> Result<i64, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{text:?} is not an object id"))
}

/// A CSV field, quoted when it contains a separator, quote or line break.
pub(crate) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The complete router.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/health", get(health))
        .route("/tables", get(browse::tables))
        .route("/table/{name}", get(browse::table))
        .route("/table/{name}/{id}", get(browse::list_rows))
        .route("/help", get(pages::help))
        .route("/object/{id}", get(object::object))
        .route("/thumb/{id}", get(object::thumbnail))
        .route("/image/{id}", get(image::image))
        .route("/render/{id}", get(image::render))
        .route("/api/pixel", get(image::pixel))
        .route("/api/cutout", get(api::cutout))
        .route("/api/images", get(api::images))
        .route("/deps", get(jobs::deps_page))
        .route("/api/deps", get(jobs::deps_api))
        .route("/jobs", get(jobs::jobs_page))
        .route("/jobs/{id}", get(jobs::job_page))
        .route("/jobs/{id}/zip", get(jobs::job_zip))
        .route("/jobs/{id}/files/{*path}", get(jobs::job_file))
        .route("/api/jobs/{id}", get(jobs::job_api))
        .route("/batch", get(batch::batch_page).post(batch::batch_post))
        .route("/api/batch", axum::routing::post(batch::batch_api))
        .route("/rgb", get(rgb::rgb_page))
        .route("/rgb/gallery", get(rgb::gallery))
        .route("/api/rgb", get(rgb::rgb_api))
        .route("/data/{id}", get(vo::data))
        .route("/vo/sia/query", get(vo::sia_query).post(vo::sia_query))
        .route("/vo/soda/sync", get(vo::soda_sync).post(vo::soda_sync))
        .route("/vo/links", get(vo::links).post(vo::links))
        .route("/prov", get(vo::provenance).post(vo::provenance))
        .route("/vo/moc", get(vo::moc))
        .route("/vo/availability", get(vo::availability))
        .route("/vo/capabilities", get(vo::capabilities))
        .route("/vo/sia/availability", get(vo::availability))
        .route("/vo/sia/capabilities", get(vo::capabilities))
        .route("/sky", get(sky::sky))
        .route("/vo", get(pages::vo))
        .route("/static/samp.js", get(sky::samp_js))
        .route("/static/aladin-view.js", get(sky::aladin_view_js))
        .route("/static/aladin-view.css", get(sky::aladin_view_css))
        .route("/static/aladin/aladin.js", get(sky::aladin_js))
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
