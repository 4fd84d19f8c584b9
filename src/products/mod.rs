//! The product service: what the server makes on demand from stored frames,
//! between the HTTP edge and the imaging core.
//!
//! A request goes down the floors once: a front end (HTTP handler, VO
//! endpoint, job) parses its parameters into a typed request
//! ([`cutout::CutoutRequest`], [`dependency_cutouts::DepRequest`], …) and
//! calls [`Products`]; the product service resolves frames, plans the
//! product, derives its content key and ETag, chooses between making it
//! directly and the disk cache, and calls the imaging core to cut and
//! render. Nothing here knows about HTTP: errors are [`ProductError`]s,
//! which say whose fault they are, and the edge maps them to statuses.
//!
//! - [`frames`]: from a catalogue frame to its opened pixels.
//! - [`cutout`]: one cutout, as FITS or a rendered image, with its key.
//! - [`cache`]: the bounded, content-addressed, single-flight disk cache.
//! - [`dependency_cutouts`]: the same sky cut out of every frame of a
//!   source's lineage, with GIFs.
//! - [`rgb_composite`]: three frames as one colour picture.
//! - [`batch`]: DES-style batches of positions from a CSV.
//!
//! The makers of files (dependency cutouts, RGB pictures, batches) write
//! into a directory they are given; running them as jobs, with records,
//! leases and retention, is [`crate::jobs`]' business.

pub mod batch;
pub mod budget;
pub mod cache;
pub mod cutout;
pub mod dependency_cutouts;
pub mod frames;
pub mod result_files;
pub mod rgb_composite;

use std::sync::Arc;

use crate::catalog::{Catalog, CatalogError};
use crate::imaging::cutout::CutoutError;
use crate::imaging::fits::FitsError;
use crate::params::ParamError;
use cache::DiskCache;
use frames::{FrameImages, FrameLookup};

/// Why a product cannot be made, grouped by whose fault it is.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProductError {
    /// A parameter is wrong; the message names it and what is allowed.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// The request is well formed but cannot be served as asked (a sky
    /// position on a frame without a sky WCS, a cutout off the image).
    #[error("{0}")]
    Invalid(String),
    /// What the request names does not exist (a frame, a file).
    #[error("{0}")]
    NotFound(String),
    /// A fault of the server; the detail is for the log.
    #[error("{0}")]
    Internal(String),
    /// A frame's file is no longer what was ingested (truncated, rewritten
    /// or damaged): a fault of the data store, told to the client (naming
    /// the frame, never a path) so that it is reported rather than retried.
    #[error("{0}")]
    Damaged(String),
    /// A remote pixel store (data server, object storage) failed to answer:
    /// a 502 whose message names the store.
    #[error("{0}")]
    StoreDown(String),
    /// A remote pixel store did not answer within the bounded time: a 504
    /// whose message names the store.
    #[error("{0}")]
    StoreTimeout(String),
    /// The server is too busy for this now; retry after `retry_after`
    /// seconds.
    #[error("{message}")]
    Busy {
        /// What is busy.
        message: String,
        /// Seconds to wait.
        retry_after: u64,
    },
}

impl From<tokio::task::JoinError> for ProductError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::Internal(format!("a product task failed: {e}"))
    }
}

impl From<std::io::Error> for ProductError {
    fn from(e: std::io::Error) -> Self {
        Self::Internal(format!("writing the result: {e}"))
    }
}

impl From<CatalogError> for ProductError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::NotFound { .. } => Self::NotFound(e.to_string()),
            CatalogError::Query(m) => Self::Invalid(m),
            other if other.unavailable() => Self::Busy {
                message: crate::catalog::unavailable_message(&other),
                retry_after: 5,
            },
            other => Self::Internal(other.to_string()),
        }
    }
}

impl ProductError {
    /// A cutout error of the frame stored as `filename`.
    pub fn from_cutout(e: CutoutError, filename: &str) -> Self {
        match e {
            CutoutError::Fits(f) => Self::from_fits(f, filename),
            other => Self::Invalid(other.to_string()),
        }
    }

    /// A FITS fault while reading the frame stored as `filename`: the file
    /// is damaged or unreadable, which is not the requester's fault.
    pub fn from_fits(e: FitsError, filename: &str) -> Self {
        if let FitsError::Io { source, .. } = &e
            && let Some(f) = crate::stores::blocks::StoreFault::of_io(source)
        {
            return Self::from_store_fault(f.clone(), filename);
        }
        Self::Internal(format!("{filename}: {e}"))
    }

    /// A remote store's fault while reading frame `id` (file `filename`).
    pub fn from_store(
        f: crate::stores::blocks::StoreFault,
        id: crate::ids::ObjectId,
        filename: &str,
    ) -> Self {
        Self::from_store_fault(f, &format!("frame {id} ({filename})"))
    }

    fn from_store_fault(f: crate::stores::blocks::StoreFault, what: &str) -> Self {
        use crate::stores::blocks::FaultKind;
        let message = format!("{what}: {}", f.message);
        match f.kind {
            FaultKind::Down => Self::StoreDown(message),
            FaultKind::Timeout => Self::StoreTimeout(message),
            FaultKind::Missing => Self::NotFound(message),
            FaultKind::Changed => {
                tracing::error!("remote file refused: {message}");
                Self::Damaged(format!(
                    "{message}; it has changed or is damaged since ingest, and nothing is served \
                     from it until an operator re-ingests it"
                ))
            }
        }
    }
}

/// The time stamp of log lines in job logs and batch logs.
pub fn log_time() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%d %H:%M:%S%.3f")
        .to_string()
}

/// The product service of one server process.
#[derive(Debug)]
pub struct Products {
    /// The catalogue.
    pub catalog: Catalog,
    /// Opening frames' pixels.
    pub images: FrameImages,
    /// Recently resolved frames (shared by every viewer's scoped service;
    /// entries are kept per viewer scope).
    pub frames: Arc<FrameLookup>,
    /// The on-demand product cache (rendered images, cutouts of compressed
    /// frames).
    pub cache: DiskCache,
    /// One permit per core for cutting and rendering.
    cores: Arc<tokio::sync::Semaphore>,
    /// The memory products may take while they are made and sent.
    pub budget: Arc<budget::MemoryBudget>,
}

impl Products {
    /// The service over `catalog`, reading frames through `images` and
    /// keeping products in `cache`.
    pub fn new(
        catalog: Catalog,
        images: FrameImages,
        cache: DiskCache,
        budget: Arc<budget::MemoryBudget>,
    ) -> Arc<Self> {
        Arc::new(Self {
            budget,
            catalog,
            images,
            frames: Arc::new(FrameLookup::new(4096)),
            cache,
            cores: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
        })
    }
}

impl Products {
    /// The same service over `catalog` (the catalogue as one request's
    /// viewer sees it): caches, memory budget and core permits are shared;
    /// only what the service may look up changes.
    pub fn scoped(&self, catalog: Catalog) -> Arc<Self> {
        Arc::new(Self {
            catalog,
            images: self.images.clone(),
            frames: Arc::clone(&self.frames),
            cache: self.cache.clone(),
            cores: Arc::clone(&self.cores),
            budget: Arc::clone(&self.budget),
        })
    }
}
