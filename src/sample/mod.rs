//! The sample survey: a deterministic simulated CCD pipeline that writes real
//! FITS files and a lineage manifest, and ingests them.
//!
//! It is wisecut's embedded default data set (`sample_db/`) and the test bed
//! of every service. A 2×2 mosaic camera observes one field over several
//! nights in g, r and i; the simulated pipeline then makes everything a real
//! one would: master biases, hot and cold pixel maps, master flats, a fringe
//! frame, illumination corrections fitted to standard-star photometry,
//! reduced, regridded and coadded frames, source lists and associations.
//! Everything is seeded: the same seed gives byte-identical files.

pub mod camera;
pub mod extract;
pub mod large;
mod pipeline;
pub mod sky_simulator;

use crate::catalog::ingest::IngestReport;
use crate::catalog::{Catalog, CatalogError};
use crate::config::Config;
use std::path::{Path, PathBuf};

pub use pipeline::generate;

/// How big a survey to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleSpec {
    /// Random seed; the same seed gives the same files.
    pub seed: u64,
    /// Chip size in pixels (square).
    pub chip_size: usize,
    /// Observing nights.
    pub nights: usize,
    /// Dithered exposures per filter and night.
    pub dithers: usize,
    /// Raw bias exposures per night.
    pub n_bias: usize,
    /// Raw dome flats per filter and night.
    pub n_flat: usize,
}

impl SampleSpec {
    /// The embedded default: 4 × 512² chips, 2 nights × 3 filters × 3 dithers.
    pub fn small(seed: u64) -> Self {
        Self {
            seed,
            chip_size: 512,
            nights: 2,
            dithers: 3,
            n_bias: 5,
            n_flat: 3,
        }
    }

    /// A larger survey for benchmarks: 4 × 2048² chips.
    pub fn bench(seed: u64) -> Self {
        Self {
            seed,
            chip_size: 2048,
            nights: 2,
            dithers: 3,
            n_bias: 5,
            n_flat: 3,
        }
    }

    /// The smallest survey that still exercises every class, for tests.
    pub fn tiny(seed: u64) -> Self {
        Self {
            seed,
            chip_size: 192,
            nights: 2,
            dithers: 2,
            n_bias: 3,
            n_flat: 2,
        }
    }

    /// Parses a size name.
    pub fn named(name: &str, seed: u64) -> Option<Self> {
        match name {
            "small" => Some(Self::small(seed)),
            "bench" => Some(Self::bench(seed)),
            "tiny" => Some(Self::tiny(seed)),
            _ => None,
        }
    }
}

/// The default seed of the embedded sample survey.
pub const DEFAULT_SEED: u64 = 20081121;

/// Errors of sample generation.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// Writing a file failed.
    #[error("{0}")]
    Fits(#[from] crate::imaging::fits::FitsError),
    /// File-system trouble.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Ingesting the result failed.
    #[error("ingest: {0}")]
    Catalog(#[from] CatalogError),
}

/// Progress callback: (done, total, stage).
pub type ProgressFn<'a> = &'a (dyn Fn(usize, usize, &str) + Sync);

/// An owned progress callback, for work handed to a blocking thread.
pub type SharedProgress = std::sync::Arc<dyn Fn(usize, usize, &str) + Send + Sync>;

/// What [`build_sample_db`] made.
#[derive(Debug)]
pub struct SampleSummary {
    /// The ingest report.
    pub report: IngestReport,
    /// Total bytes of FITS files.
    pub bytes: u64,
    /// Number of files written.
    pub files: usize,
}

/// Generates the survey into `dir/data`, ingests it into `dir/wisecut.db`,
/// and only then moves both into place: an interrupted build leaves no
/// half-made sample behind (the staging directory is removed on failure).
pub async fn build_sample_db(
    dir: &Path,
    spec: &SampleSpec,
    progress: SharedProgress,
) -> Result<SampleSummary, SampleError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SampleError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let staging = dir.join(format!(".building-{}", std::process::id()));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    }
    let result = build_in(&staging, spec, progress).await;
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    for name in ["data", "wisecut.db"] {
        let target = dir.join(name);
        if target.is_dir() {
            std::fs::remove_dir_all(&target).map_err(io(&target))?;
        } else if target.exists() {
            std::fs::remove_file(&target).map_err(io(&target))?;
        }
    }
    // The data directory first: a database without its files would be worse
    // than no database, which simply triggers a rebuild.
    std::fs::rename(staging.join("data"), dir.join("data")).map_err(io(dir))?;
    std::fs::rename(staging.join("wisecut.db"), Config::sample_db_file(dir)).map_err(io(dir))?;
    let _ = std::fs::remove_dir_all(&staging);
    Ok(summary)
}

async fn build_in(
    staging: &Path,
    spec: &SampleSpec,
    progress: SharedProgress,
) -> Result<SampleSummary, SampleError> {
    let data = staging.join("data");
    std::fs::create_dir_all(&data).map_err(|source| SampleError::Io {
        path: data.clone(),
        source,
    })?;
    // Generation is seconds of CPU and file writing: run it on a blocking
    // thread, not on the async executor.
    let (data2, spec2, progress2) = (data.clone(), spec.clone(), progress.clone());
    let (manifest, (files, bytes)) = tokio::task::spawn_blocking(move || {
        generate(&data2, &spec2, &*progress2).map(|m| (m, dir_size(&data2)))
    })
    .await
    .map_err(|e| SampleError::Io {
        path: data.clone(),
        source: std::io::Error::other(format!("generation worker failed: {e}")),
    })??;
    // The database records paths relative to the data root, so it stays
    // valid after the staging directory is renamed into place.
    let db_file = staging.join("wisecut.db");
    let catalog = Catalog::connect(&Config::sqlite_url(&db_file)).await?;
    progress(0, 1, "ingest");
    let report = catalog.ingest(&data.join("manifest.json"), &data).await?;
    progress(1, 1, "ingest");
    add_demo_project(&catalog).await?;
    catalog.close().await?;
    debug_assert_eq!(manifest.frames.len(), report.frames);
    Ok(SampleSummary {
        report,
        bytes,
        files,
    })
}

/// The sample's demo user (member of [`DEMO_PROJECT`]).
pub const DEMO_USER: &str = "demo";
/// Its password (documented in the README; the sample is a demo).
pub const DEMO_PASSWORD: &str = "wisecut-demo";
/// The sample's private project.
pub const DEMO_PROJECT: &str = "DEEP";

/// The part of the sample survey only [`DEMO_USER`] sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoPart {
    /// A reduced frame, private to the demo user working in DEEP.
    pub reduced: crate::ids::ObjectId,
    /// Its SourceLists (private too).
    pub source_lists: Vec<crate::ids::ObjectId>,
    /// Its regridded frame, visible to DEEP's members working in it.
    pub regridded: Vec<crate::ids::ObjectId>,
}

/// Makes the sample survey show both sides of the access rules: project
/// DEEP with user `demo` (password [`DEMO_PASSWORD`]); the first reduced
/// frame that has a SourceList and a regridded frame becomes private to
/// `demo` in DEEP (with its SourceLists), the regridded frame project-level
/// in DEEP. Everything else stays public, so the coadd made from the
/// regridded frame is public with a restricted parent.
pub async fn add_demo_project(catalog: &Catalog) -> Result<DemoPart, CatalogError> {
    use crate::catalog::access::Role;
    use crate::catalog::lineage::Direction;
    use crate::model::FrameClass;
    catalog
        .add_project(
            DEMO_PROJECT,
            "the demo's private project: one night's deep look",
        )
        .await?;
    catalog.add_user(DEMO_USER, DEMO_PASSWORD, false).await?;
    catalog
        .set_member(DEMO_PROJECT, DEMO_USER, Role::Member)
        .await?;
    for f in catalog
        .frames_of_class(FrameClass::ReducedScienceFrame)
        .await?
    {
        let id = f.target.object_id;
        let walk = catalog.lineage(id, Direction::Down, 1).await?;
        let of = |class: &str| -> Vec<crate::ids::ObjectId> {
            walk.nodes
                .iter()
                .filter(|n| n.level == 1 && n.class_name == class)
                .map(|n| n.object_id)
                .collect()
        };
        let (lists, regridded) = (of("SourceList"), of("RegriddedFrame"));
        if lists.is_empty() || regridded.is_empty() {
            continue;
        }
        let mut private = vec![id];
        private.extend(&lists);
        catalog
            .assign_objects(&private, DEMO_USER, DEMO_PROJECT, 1)
            .await?;
        catalog
            .assign_objects(&regridded, DEMO_USER, DEMO_PROJECT, 2)
            .await?;
        return Ok(DemoPart {
            reduced: id,
            source_lists: lists,
            regridded,
        });
    }
    Err(CatalogError::Invalid(
        "the sample has no reduced frame with a SourceList and a regridded frame".into(),
    ))
}

fn dir_size(dir: &Path) -> (usize, u64) {
    let mut files = 0;
    let mut bytes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "fits") {
                files += 1;
                bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    (files, bytes)
}
