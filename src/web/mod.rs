//! The HTTP application: routes, shared state and the error type.
//!
//! [`app`] builds the whole router from a state value, so tests drive it with
//! `tower::ServiceExt::oneshot` without opening a socket. Handlers are thin:
//! they parse, call the catalogue or a service, and render.

pub mod account_pages;
pub mod admission;
pub mod api_docs;
pub mod auth;
pub mod batch_pages;
pub mod cell_format;
pub mod cutout_api;
pub mod deadlines;
pub mod dependency_cutout_pages;
mod error;
pub mod held_body;
pub mod image_view;
pub mod job_pages;
pub mod object_view;
pub mod pages;
pub mod query_params;
pub mod rgb_pages;
#[cfg(test)]
mod scoping_guard;
pub mod security_headers;
pub mod server;
pub mod sky_view;
pub mod table_pages;
pub mod tap_endpoints;
pub mod vo_endpoints;
pub mod vo_services;

pub use error::{ApiError, AppError};

use crate::catalog::Catalog;
use crate::config::Config;
use crate::imaging::pixels::{PixelSources, Sidecars};
use crate::imaging::row_bands::RowBands;
use crate::products::Products;
use crate::products::budget::MemoryBudget;
use crate::products::cache::DiskCache;
use crate::products::frames::FrameImages;
use axum::Router;
use axum::http::header;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::Arc;
use tower_http::trace::TraceLayer;

/// State shared by all handlers. The router holds the system's view;
/// handlers get it through [`auth::Scoped`], scoped to the request's
/// identity (catalogue, products and identity replaced).
#[derive(Clone, Debug)]
pub struct AppState {
    /// The catalogue (as the request's identity sees it, in handlers).
    pub catalog: Catalog,
    /// Who is asking (anonymous in the router's own state).
    pub identity: Arc<auth::Identity>,
    /// The configuration the server runs with.
    pub config: Arc<Config>,
    /// The product service and the job service.
    pub services: Arc<Services>,
}

/// Long-lived services shared by handlers.
#[derive(Debug)]
pub struct Services {
    /// The product service: cutouts, thumbnails, renders.
    pub products: Arc<Products>,
    /// Jobs: dependency cutouts, RGB images, batches.
    pub jobs: Arc<crate::jobs::Jobs>,
    /// What each client may ask at a time.
    pub admission: Arc<admission::Admission>,
    /// Coverage MOCs computed, kept until the catalogue changes.
    pub mocs: Arc<crate::vo::coverage::MocCache>,
}

impl AppState {
    /// State for `catalog` and `config`, creating the cache directories.
    pub fn new(catalog: Catalog, config: Arc<Config>) -> std::io::Result<Self> {
        let sidecars = Sidecars::new(config.cache_dir.join("sidecars"), config.sidecar_bytes)?;
        // Hot rows take at most a quarter of the memory budget.
        let rows = config.row_cache_bytes.min(config.memory_bytes / 4);
        let images = FrameImages {
            sources: Arc::new({
                let sources = PixelSources::new(256, Some(sidecars));
                if rows > 0 {
                    sources.with_row_bands(Arc::new(RowBands::new(rows)))
                } else {
                    sources
                }
            }),
            data_root: config.data_dir.clone(),
            public_url: config.public_url.clone(),
            max_side: config.max_cutout_px,
            fresh: Arc::new(crate::file_identity::FreshFiles::new(65_536)),
            blocks: Some(Arc::new(crate::stores::blocks::BlockCache::new(
                config.cache_dir.join("blocks"),
                config.block_cache_bytes,
                config.stores.clone(),
            )?)),
        };
        let cache = DiskCache::open(config.cache_dir.join("products"), config.cache_bytes)
            .map_err(std::io::Error::other)?;
        // The memory budget for work: what is left of --memory-mib after
        // the row cache and what the process needs anyway (code, database
        // pool, runtime, indexes), ~96 MiB.
        let work = config
            .memory_bytes
            .saturating_sub(rows + (96 << 20))
            .max(64 << 20);
        let budget = Arc::new(MemoryBudget::new(work, 64, config.limits.memory_wait));
        let products = Products::new(catalog.clone(), images, cache, budget);
        let jobs = crate::jobs::Jobs::new(
            catalog.clone(),
            config.jobs_dir.clone(),
            crate::jobs::Retention {
                max_bytes: config.jobs_bytes,
                max_job_bytes: config.job_bytes,
                max_age: std::time::Duration::from_secs(config.jobs_days * 86_400),
            },
            Arc::clone(&products),
        )?
        .with_shared(match &config.shared_store {
            Some(loc) => Some(
                crate::stores::shared::SharedStore::open(loc, &Default::default())
                    .map_err(std::io::Error::other)?,
            ),
            None => None,
        });
        let services = Services {
            products: Arc::clone(&products),
            jobs: Arc::new(jobs),
            admission: Arc::new(admission::Admission::new(
                config.limits.clone(),
                config.public_url_fixed,
            )),
            mocs: Default::default(),
        };
        Ok(Self {
            catalog,
            identity: Arc::new(auth::Identity::anonymous()),
            config,
            services: Arc::new(services),
        })
    }

    /// This state as `identity` sees it: the catalogue and the product
    /// service limited to what it may see; caches, budget and jobs shared.
    pub fn scoped(&self, identity: Arc<auth::Identity>) -> Self {
        let catalog = self.catalog.for_viewer(identity.viewer.clone());
        let services = Services {
            products: self.services.products.scoped(catalog.clone()),
            jobs: Arc::clone(&self.services.jobs),
            admission: Arc::clone(&self.services.admission),
            mocs: Arc::clone(&self.services.mocs),
        };
        Self {
            catalog,
            identity,
            config: Arc::clone(&self.config),
            services: Arc::new(services),
        }
    }
}

/// An object id from a URL path segment; the error names what was given.
pub fn object_id(text: &str) -> Result<i64, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{text:?} is not an object id"))
}

/// A CSV document (RFC 4180, with a header row) written by the `csv`
/// crate: every CSV the server sends goes through here.
pub(crate) fn csv_document<R, I>(header: &[&str], rows: R) -> Vec<u8>
where
    R: IntoIterator<Item = I>,
    I: IntoIterator,
    I::Item: AsRef<[u8]>,
{
    let mut w = csv::Writer::from_writer(Vec::new());
    // Writing into a Vec cannot fail.
    let _ = w.write_record(header);
    for row in rows {
        let _ = w.write_record(row);
    }
    w.into_inner().unwrap_or_default()
}

/// The complete router. Around the routes, from the inside out: admission
/// (per-client limits), the body deadline and request timeout, tracing, and
/// the security headers (outermost, so that refusals carry them too).
pub fn app(state: AppState) -> Router {
    let security = Arc::new(security_headers::SecurityHeaders::new(&state.config));
    Router::new()
        .route("/", get(pages::home))
        .route("/health", get(health))
        .route("/tables", get(table_pages::tables))
        .route("/table/{name}", get(table_pages::table))
        .route("/table/{name}/{id}", get(table_pages::list_rows))
        .route("/help", get(pages::help))
        .route("/status", get(pages::status))
        .route("/favicon.svg", get(pages::favicon))
        .route("/favicon.ico", get(pages::favicon))
        .route("/object/{id}", get(object_view::object))
        .route(
            "/object/{id}/privileges",
            axum::routing::post(object_view::set_privileges),
        )
        .route("/thumb/{id}", get(object_view::thumbnail))
        .route("/image/{id}", get(image_view::image))
        .route("/render/{id}", get(image_view::render))
        .route("/api/pixel", get(image_view::pixel))
        .route("/api/cutout", get(cutout_api::cutout))
        .route("/api/images", get(cutout_api::images))
        .route(
            "/deps",
            get(dependency_cutout_pages::deps_page).post(dependency_cutout_pages::deps_post),
        )
        .route(
            "/api/deps",
            get(dependency_cutout_pages::deps_api_get).post(dependency_cutout_pages::deps_api),
        )
        .route("/jobs", get(job_pages::jobs_page))
        .route("/jobs/{id}", get(job_pages::job_page))
        .route("/jobs/{id}/zip", get(job_pages::job_zip))
        .route(
            "/jobs/{id}/share",
            axum::routing::post(job_pages::job_share),
        )
        .route("/jobs/{id}/files/{*path}", get(job_pages::job_file))
        .route("/api/jobs/{id}", get(job_pages::job_api))
        .route(
            "/batch",
            get(batch_pages::batch_page).post(batch_pages::batch_post),
        )
        .route("/api/batch", axum::routing::post(batch_pages::batch_api))
        .route("/rgb", get(rgb_pages::rgb_page).post(rgb_pages::rgb_post))
        .route("/rgb/gallery", get(rgb_pages::gallery))
        .route(
            "/api/rgb",
            get(rgb_pages::rgb_api_get).post(rgb_pages::rgb_api),
        )
        .route(
            "/login",
            get(account_pages::login_page).post(account_pages::login_post),
        )
        .route("/logout", axum::routing::post(account_pages::logout))
        .route("/context", axum::routing::post(account_pages::context_post))
        .route("/account", get(account_pages::account_page))
        .route(
            "/account/tokens",
            axum::routing::post(account_pages::token_create),
        )
        .route(
            "/account/tokens/{id}/revoke",
            axum::routing::post(account_pages::token_revoke),
        )
        .route("/sky", get(sky_view::sky))
        .route("/vo", get(pages::vo))
        .route("/static/samp.js", get(sky_view::samp_js))
        .route("/static/aladin-view.js", get(sky_view::aladin_view_js))
        .route("/static/aladin-view.css", get(sky_view::aladin_view_css))
        .route("/static/aladin/aladin.js", get(sky_view::aladin_js))
        .route("/static/style.css", get(stylesheet))
        .merge(vo_routes())
        .fallback(not_found)
        .layer(from_fn_with_state(state.clone(), auth::identify))
        .layer(from_fn_with_state(state.clone(), admission::admit))
        .layer(from_fn_with_state(state.clone(), deadlines::time_limits))
        .layer(TraceLayer::new_for_http())
        .layer(from_fn_with_state(security, security_headers::add))
        .with_state(state)
}

/// The VO services and the data they link to: `/vo/…` (but the `/vo`
/// overview page), `/data/{id}` and `/prov`. They carry CORS headers
/// ([`vo_services::cors`]) so browser clients on other origins can read
/// them; the HTML pages and forms do not.
fn vo_routes() -> Router<AppState> {
    Router::new()
        .route("/data/{id}", get(vo_endpoints::data))
        // SIA at its base URL too: STILTS (`cone servicetype=sia2`) and
        // TOPCAT send queries to the URL they are given.
        .route(
            "/vo/sia",
            get(vo_endpoints::sia_query).post(vo_endpoints::sia_query),
        )
        .route(
            "/vo/sia/query",
            get(vo_endpoints::sia_query).post(vo_endpoints::sia_query),
        )
        .route(
            "/vo/soda/sync",
            get(vo_endpoints::soda_sync).post(vo_endpoints::soda_sync),
        )
        .route(
            "/vo/links",
            get(vo_endpoints::links).post(vo_endpoints::links),
        )
        .route(
            "/prov",
            get(vo_endpoints::provenance).post(vo_endpoints::provenance),
        )
        .route("/vo/moc", get(vo_endpoints::moc))
        .route("/vo/tap", get(tap_endpoints::root))
        .route(
            "/vo/tap/sync",
            get(tap_endpoints::sync).post(tap_endpoints::sync),
        )
        .route(
            "/vo/tap/async",
            get(tap_endpoints::async_jobs).post(tap_endpoints::async_jobs),
        )
        .route(
            "/vo/tap/async/{id}",
            get(tap_endpoints::async_job)
                .post(tap_endpoints::async_job)
                .delete(tap_endpoints::async_job),
        )
        .route(
            "/vo/tap/async/{id}/results/result",
            get(tap_endpoints::async_result),
        )
        .route(
            "/vo/tap/async/{id}/{resource}",
            get(tap_endpoints::async_job_resource).post(tap_endpoints::async_job_resource),
        )
        .route("/vo/tap/capabilities", get(tap_endpoints::capabilities))
        .route("/vo/tap/availability", get(vo_endpoints::availability))
        .route("/vo/tap/tables", get(tap_endpoints::tables))
        .route("/vo/availability", get(vo_endpoints::availability))
        .route("/vo/capabilities", get(vo_services::capabilities))
        .route("/vo/sia/availability", get(vo_endpoints::availability))
        .route("/vo/sia/capabilities", get(vo_services::capabilities))
        .route(
            "/vo/scs",
            get(vo_services::scs_all).post(vo_services::scs_all),
        )
        .route("/vo/scs/capabilities", get(vo_services::capabilities))
        .route("/vo/scs/availability", get(vo_endpoints::availability))
        .route(
            "/vo/scs/{slid}",
            get(vo_services::scs_list).post(vo_services::scs_list),
        )
        .route("/vo/resource", get(vo_services::resource))
        .layer(vo_services::cors())
}

/// `GET /health`: 200 and `ok` when the database answers.
async fn health(auth::Scoped(state): auth::Scoped) -> Result<&'static str, AppError> {
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
