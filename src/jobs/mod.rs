//! Jobs: every dependency-cutout request, RGB image and batch of positions
//! is a job with a persistent record and a result directory.
//!
//! A small request runs *inline*: the request handler creates the record as
//! already running (owned by this process) and waits for it, so the answer
//! comes at once and still has permanent file URLs and a place on the jobs
//! page. A large one is *queued*: a worker of this (or any other) server
//! process claims it from the database and runs it while the client watches
//! the progress.
//!
//! Robustness rules:
//! * files are written into `<id>.part/` and renamed to `<id>/` only when the
//!   job is done, so a crash never leaves a half-written result that looks
//!   finished; a failed or interrupted attempt's `.part` directory is
//!   removed;
//! * the owner renews a heartbeat while it runs; a job whose heartbeat is
//!   older than [`LEASE`] is requeued (and rebuilt from scratch) by
//!   whichever server notices first, or failed after [`MAX_ATTEMPTS`];
//! * results are kept under a retention policy (age and total bytes, oldest
//!   first); the record stays, marked expired.
//!
//! A job is made with its *submitter's* view of the catalogue (see
//! [`Jobs::owner_view`]), never the system's: it reaches exactly the frames
//! and lists its owner may see. Only the bookkeeping (claims, leases, logs,
//! results) uses the system view.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::sync::Notify;

use crate::catalog::access::Viewer;
use crate::catalog::job_records::{JobKind, JobOwner, JobRecord, JobStatus};
use crate::catalog::{Catalog, CatalogError};
use crate::ids::JobId;
use crate::products::ProductError;
use crate::products::Products;
use crate::products::batch;
use crate::products::budget::MemoryGrant;
use crate::products::dependency_cutouts::{self, DepParams};
use crate::products::frames::FrameImages;
use crate::products::rgb_composite::{self, RgbParams};

/// A running job whose heartbeat is older than this belongs to a dead
/// process.
pub const LEASE: Duration = Duration::from_secs(30);

/// How often a running job's heartbeat is renewed (and its progress
/// stored).
const HEARTBEAT: Duration = Duration::from_millis(500);

/// Starts of one job before it is given up.
pub const MAX_ATTEMPTS: i32 = 3;

/// What a job directory may hold, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Total bytes of all result directories.
    pub max_bytes: u64,
    /// Bytes of one job's result files (the ZIP made later not counted).
    pub max_job_bytes: u64,
    /// Age after which a result is removed.
    pub max_age: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_bytes: 2 << 30,
            max_job_bytes: crate::config::defaults::JOB_BYTES,
            max_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Why a job (or a request to make one) failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Bad parameters: a 400.
    #[error("{param}: {message}")]
    Param {
        /// The parameter.
        param: &'static str,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// The catalogue said no (unknown list: 404) or failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Writing the result failed.
    #[error("writing the result: {0}")]
    Io(#[from] std::io::Error),
    /// Anything else that stops the job.
    #[error("{0}")]
    Failed(String),
    /// The job's result files are no longer on this server (removed by
    /// hand, or a server with another `--jobs-dir`): a 410.
    #[error("{0}")]
    Gone(String),
    /// The job was made by another server and this one cannot reach its
    /// files (no `--shared-store`): a 503 naming the setting.
    #[error("{0}")]
    Elsewhere(String),
    /// The shared store failed: a 502.
    #[error("{0}")]
    Shared(String),
}

impl From<ProductError> for JobError {
    fn from(e: ProductError) -> Self {
        match e {
            ProductError::Param(p) => p.into(),
            other => JobError::Failed(other.to_string()),
        }
    }
}

impl From<crate::params::ParamError> for JobError {
    fn from(e: crate::params::ParamError) -> Self {
        JobError::Param {
            param: e.param,
            message: e.message,
        }
    }
}

/// The job service of one server process.
pub struct Jobs {
    catalog: Catalog,
    dir: PathBuf,
    owner: String,
    /// This result directory's node id: the suffix `@<node>` of the owner
    /// names of the jobs made into it (see [`Jobs::made_here`]).
    node: String,
    /// Where finished results are also stored for the other servers.
    shared: Option<crate::stores::shared::SharedStore>,
    retention: Retention,
    products: Arc<Products>,
    wake: Notify,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs")
            .field("dir", &self.dir)
            .field("owner", &self.owner)
            .finish()
    }
}

/// Progress shared between the blocking work and the heartbeat task.
#[derive(Debug, Default)]
pub struct Progress(AtomicU64);

impl Progress {
    /// Records `done` of `total`.
    pub fn set(&self, done: usize, total: usize) {
        let f = if total == 0 {
            1.0
        } else {
            done as f64 / total as f64
        };
        self.0.store(f.to_bits(), Ordering::Relaxed);
    }

    fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// How a maker on a blocking thread reserves memory.
type Reserve = Arc<dyn Fn(u64) -> Result<MemoryGrant, ProductError> + Send + Sync>;

/// What running a job hands back: the summary stored in the record.
pub type Outcome = Result<serde_json::Value, JobError>;

/// The parameters of a TAP job: the request's pairs, the inline uploads
/// (part name, VOTable text) and the base URL its answer links to.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TapParams {
    /// (NAME, value) as the client sent them.
    pub pairs: Vec<(String, String)>,
    /// (part name, VOTable text) of `param:` uploads.
    pub uploads: Vec<(String, String)>,
    /// Scheme and host of the server the client used.
    pub base: String,
}

impl Jobs {
    /// The service; `dir` is created if needed.
    pub fn new(
        catalog: Catalog,
        dir: PathBuf,
        retention: Retention,
        products: Arc<Products>,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let node = node_id(&dir)?;
        let owner = format!(
            "{}-{}-{:08x}@{node}",
            hostname(),
            std::process::id(),
            rand::random::<u32>()
        );
        Ok(Jobs {
            catalog,
            dir,
            owner,
            node,
            shared: None,
            retention,
            products,
            wake: Notify::new(),
        })
    }

    /// The service with results also kept in `shared`, from where every
    /// server of the deployment fetches the jobs it did not make.
    pub fn with_shared(mut self, shared: Option<crate::stores::shared::SharedStore>) -> Self {
        self.shared = shared;
        self
    }

    /// The shared store, when configured.
    pub fn shared(&self) -> Option<&crate::stores::shared::SharedStore> {
        self.shared.as_ref()
    }

    /// Whether `job` was made into this server's result directory (by this
    /// process or an earlier one on the same directory). Records from before
    /// node ids count as made here.
    pub fn made_here(&self, job: &JobRecord) -> bool {
        match job.owner.as_deref().and_then(|o| o.rsplit_once('@')) {
            Some((_, node)) => node == self.node,
            None => true,
        }
    }

    /// This process's owner name in job records.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The catalogue.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The finished result directory of a job.
    pub fn result_dir(&self, id: JobId) -> PathBuf {
        self.dir.join(id.0.to_string())
    }

    fn part_dir(&self, id: JobId) -> PathBuf {
        self.dir.join(format!("{}.part", id.0))
    }

    /// Starts the worker: recovers interrupted jobs now and every few
    /// seconds, and runs queued jobs one at a time (each job uses every core
    /// itself).
    pub fn start(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = me.recover().await {
                    tracing::warn!("job recovery: {e}");
                }
                loop {
                    match me.catalog.claim_job(&me.owner).await {
                        Ok(Some(job)) => {
                            me.run(job).await;
                        }
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!("claiming a job: {e}");
                            break;
                        }
                    }
                }
                // Woken by a new job, or every few seconds to notice jobs
                // queued by other servers and leases that ran out.
                let _ = tokio::time::timeout(Duration::from_secs(5), me.wake.notified()).await;
            }
        })
    }

    /// Requeues (or fails) jobs of dead processes and applies retention.
    pub async fn recover(&self) -> Result<(), JobError> {
        // Jobs recorded before jobs had public ids get one (once).
        self.catalog.assign_public_ids().await?;
        let lease = chrono::Duration::from_std(LEASE).unwrap_or(chrono::Duration::seconds(30));
        let r = self.catalog.recover_jobs(lease, MAX_ATTEMPTS).await?;
        let parts: Vec<PathBuf> = r
            .requeued
            .iter()
            .chain(&r.failed)
            .map(|id| self.part_dir(*id))
            .collect();
        on_disk(move || parts.iter().for_each(|p| remove_dir(p))).await?;
        if !r.requeued.is_empty() || !r.failed.is_empty() {
            tracing::info!(
                "jobs interrupted by a stopped server: requeued {:?}, failed {:?}",
                r.requeued,
                r.failed
            );
        }
        self.apply_retention().await
    }

    /// Stores a job and either runs it now (inline) or queues it — unless
    /// the same request (`canonical`: the validated request in a form that
    /// is equal for equal requests) already has a job that is queued,
    /// running or done and still kept: then that job is the answer, and no
    /// work is started. A resubmitted form, a script's retry or a reload do
    /// not queue the work twice. The same request of another submitter is
    /// another job: its result may differ (other privileges), and it is
    /// theirs to see.
    pub async fn submit(
        &self,
        kind: JobKind,
        title: &str,
        params: serde_json::Value,
        canonical: &str,
        inline: bool,
        submitter: &JobOwner,
    ) -> Result<JobRecord, JobError> {
        if let Some(existing) = self.existing(kind, canonical, submitter).await? {
            return Ok(existing);
        }
        let key = request_key(kind, submitter, canonical);
        let owner = inline.then_some(self.owner.as_str());
        let job = self
            .catalog
            .create_keyed_job(kind, title, &params, owner, Some(&key), submitter)
            .await?;
        if inline {
            self.run(job.clone()).await;
            Ok(self.catalog.job(job.id).await?)
        } else {
            self.catalog
                .job_log(job.id, &format!("{}: queued", now()))
                .await?;
            self.wake.notify_one();
            Ok(job)
        }
    }

    /// Runs a claimed job to the end, recording the outcome.
    async fn run(&self, job: JobRecord) {
        let id = job.id;
        let part = self.part_dir(id);
        // Every file the makers write into the part directory is charged
        // to the job's disk allowance as it is written.
        let _allowance = crate::products::result_files::allow(&part, self.retention.max_job_bytes);
        let fresh = {
            let part = part.clone();
            on_disk(move || {
                remove_dir(&part);
                std::fs::create_dir_all(&part)
            })
            .await
            .and_then(|r| r)
        };
        let _ = self
            .catalog
            .job_log(
                id,
                &format!(
                    "{}: started (attempt {}) by {}",
                    now(),
                    job.attempts,
                    self.owner
                ),
            )
            .await;
        let progress = Arc::new(Progress::default());
        // Aborted on drop: when this future is dropped (an inline request
        // whose client went away), the lease must run out so that the job
        // is recovered instead of looking alive forever.
        let beat = AbortOnDrop({
            let catalog = self.catalog.clone();
            let owner = self.owner.clone();
            let progress = progress.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(HEARTBEAT).await;
                    match catalog.job_progress(id, &owner, progress.get()).await {
                        Ok(true) => {}
                        Ok(false) => break, // no longer ours
                        Err(e) => tracing::warn!("job {id} heartbeat: {e}"),
                    }
                }
            })
        });
        let outcome = match fresh {
            Ok(()) => self.execute(&job, &part, progress.clone()).await,
            Err(e) => Err(e.into()),
        };
        drop(beat);
        let final_dir = self.result_dir(id);
        let published = match outcome {
            Ok(summary) => {
                let (part, final_dir) = (part.clone(), final_dir.clone());
                on_disk(move || -> std::io::Result<u64> {
                    remove_dir(&final_dir);
                    std::fs::rename(&part, &final_dir)?;
                    Ok(dir_bytes(&final_dir))
                })
                .await
                .and_then(|r| r)
                .map(|bytes| (summary, bytes))
                .map_err(JobError::from)
            }
            Err(e) => Err(e),
        };
        // Stored for every server before the job is marked done: a done job
        // is one any server can answer.
        let published = match (published, &self.shared) {
            (Ok(done), Some(shared)) => match shared.upload(&job.public_id, &final_dir).await {
                Ok(_) => Ok(done),
                Err(e) => {
                    let (d, msg) = (final_dir.clone(), e.to_string());
                    let _ = on_disk(move || remove_dir(&d)).await;
                    Err(JobError::Shared(format!(
                        "storing the result for the other servers failed: {msg}"
                    )))
                }
            },
            (other, _) => other,
        };
        match published {
            Ok((summary, bytes)) => {
                let _ = self
                    .catalog
                    .job_log(id, &format!("{}: done, {} bytes", now(), bytes))
                    .await;
                if let Ok(false) | Err(_) = self
                    .catalog
                    .finish_job(id, &self.owner, &summary, bytes)
                    .await
                {
                    // Someone else took the job over meanwhile; theirs wins.
                    tracing::warn!("job {id} finished after losing its lease");
                }
            }
            Err(e) => {
                let _ = on_disk(move || remove_dir(&part)).await;
                let msg = e.to_string();
                let _ = self
                    .catalog
                    .job_log(id, &format!("{}: failed: {msg}", now()))
                    .await;
                let _ = self.catalog.fail_job(id, &self.owner, &msg).await;
            }
        }
        if let Err(e) = self.apply_retention().await {
            tracing::warn!("job retention: {e}");
        }
    }

    async fn execute(&self, job: &JobRecord, dir: &Path, progress: Arc<Progress>) -> Outcome {
        let view = self.owner_view(job).await?;
        match job.kind {
            JobKind::DependencyCutouts => self.run_deps(&view, job, dir, progress).await,
            JobKind::Rgb => self.run_rgb(&view, job, dir).await,
            JobKind::Batch => self.run_batch(&view, job, dir, progress).await,
            JobKind::Tap => self.run_tap(&view, job, dir).await,
        }
    }

    /// The product service as the job's submitter sees the catalogue: the
    /// user working in the project the job was submitted in, or an
    /// anonymous visitor (public data only) for a browser's or nobody's
    /// job. A user removed since fails the job ("user not found").
    pub async fn owner_view(&self, job: &JobRecord) -> Result<Arc<Products>, JobError> {
        let viewer = match &job.owner_user {
            Some(user) => {
                self.catalog
                    .viewer_of(user, job.owner_project.as_deref())
                    .await?
            }
            None => Viewer::anonymous(),
        };
        Ok(self.products.scoped(self.catalog.for_viewer(viewer)))
    }

    /// How the makers open frames (cheap to clone into blocking tasks).
    pub fn images(&self) -> FrameImages {
        self.products.images.clone()
    }

    /// A reservation function for makers running on blocking threads: it
    /// waits for `bytes` of the memory budget (jobs queue for memory rather
    /// than fail) and returns the grant.
    fn blocking_reserve(&self, what: &'static str) -> Reserve {
        let (budget, runtime) = (
            Arc::clone(&self.products.budget),
            tokio::runtime::Handle::current(),
        );
        Arc::new(move |bytes| runtime.block_on(budget.reserve_patiently(bytes, what)))
    }

    /// Appends a timestamped line to a job's log.
    pub async fn log(&self, id: JobId, line: &str) {
        let _ = self
            .catalog
            .job_log(id, &format!("{}: {line}", now()))
            .await;
    }

    /// An RGB job: reads the region of each band, brings bands 2 and 3 onto
    /// the first one's grid when needed, maps to colour and writes the
    /// picture.
    async fn run_rgb(&self, view: &Products, job: &JobRecord, dir: &Path) -> Outcome {
        let params: RgbParams = serde_json::from_value(job.params.clone())
            .map_err(|e| JobError::Failed(format!("stored parameters unreadable: {e}")))?;
        params.validate()?;
        let frames = params.frames(&view.catalog).await?;
        let images = view.images.clone();
        let dir = dir.to_path_buf();
        let job_id = job.public_id.clone();
        let reserve = self.blocking_reserve("an RGB picture");
        let (summary, log) = tokio::task::spawn_blocking(move || {
            rgb_composite::make(&images, &params, &frames, &dir, &job_id, &*reserve)
        })
        .await
        .map_err(|e| JobError::Failed(format!("RGB task: {e}")))??;
        for line in log {
            self.log(job.id, &line).await;
        }
        Ok(summary)
    }

    /// A batch job: every row's cutouts and colour pictures, the summary,
    /// the positions CSV and the log.
    async fn run_batch(
        &self,
        view: &Products,
        job: &JobRecord,
        dir: &Path,
        progress: Arc<Progress>,
    ) -> Outcome {
        let (summary, log) = batch::make(
            &view.catalog,
            &view.images,
            job,
            dir,
            &|d, t| progress.set(d, t),
            self.blocking_reserve("a batch row's colour picture"),
        )
        .await?;
        self.catalog.job_log(job.id, &log).await?;
        Ok(summary)
    }

    /// An asynchronous TAP query: its stored parameters (and uploaded
    /// tables) are read as the sync endpoint reads a request, and the
    /// answer written as `result.vot`. A query the client must change fails
    /// the job with the message (UWS phase ERROR).
    async fn run_tap(&self, view: &Products, job: &JobRecord, dir: &Path) -> Outcome {
        let stored: TapParams = serde_json::from_value(job.params.clone())
            .map_err(|e| JobError::Failed(format!("stored parameters unreadable: {e}")))?;
        let mut p = crate::vo::DalParams::default();
        for (k, v) in &stored.pairs {
            p.push(k, v.clone());
        }
        let req = crate::vo::tap::Request::parse(&p).map_err(JobError::Failed)?;
        let uploads =
            crate::vo::tap::read_uploads(&req, &stored.uploads).map_err(JobError::Failed)?;
        let doc = crate::vo::tap::run(&view.catalog, &req, uploads, &stored.base)
            .await
            .map_err(|e| match e {
                crate::vo::tap::TapError::Usage(m) => JobError::Failed(m),
                crate::vo::tap::TapError::Catalog(c) => JobError::Catalog(c),
            })?;
        let rows = doc.rows.len();
        let overflow = doc.trailing_infos.iter().any(|i| i.value == "OVERFLOW");
        let xml = doc.to_xml(req.format.serialization);
        let dir = dir.to_path_buf();
        let media_type = req.format.media_type.clone();
        on_disk(move || -> std::io::Result<()> {
            let mut files = Vec::new();
            crate::products::result_files::write_file(
                &dir,
                "result.vot",
                xml.as_bytes(),
                "votable",
                format!("TAP query result ({rows} rows)"),
                &mut files,
            )?;
            crate::products::result_files::write_manifest(
                &dir,
                serde_json::json!({ "media_type": media_type }),
                &files,
            )?;
            Ok(())
        })
        .await
        .and_then(|r| r)?;
        Ok(serde_json::json!({ "rows": rows, "overflow": overflow }))
    }

    async fn run_deps(
        &self,
        view: &Products,
        job: &JobRecord,
        dir: &Path,
        progress: Arc<Progress>,
    ) -> Outcome {
        let params: DepParams = serde_json::from_value(job.params.clone())
            .map_err(|e| JobError::Failed(format!("stored parameters unreadable: {e}")))?;
        let req = params.validate()?;
        // Planning (sources, their lineage, the frames and positions to
        // cut) is all catalogue work; its time is reported on its own, as
        // what a bigger survey makes slower.
        let planning = std::time::Instant::now();
        let planned = dependency_cutouts::resolve(&view.catalog, &req).await?;
        let plan_ms = planning.elapsed().as_secs_f64() * 1e3;
        let n_missing = planned.iter().filter(|p| p.error.is_some()).count();
        self.log(
            job.id,
            &format!(
                "{} sources placed on {} frame positions{} in {plan_ms:.1} ms",
                planned.len(),
                planned.iter().map(|p| p.placements.len()).sum::<usize>(),
                if n_missing > 0 {
                    format!(", {n_missing} not found")
                } else {
                    String::new()
                }
            ),
        )
        .await;
        let ctx = view.images.clone();
        let out = dir.to_path_buf();
        let header = json!({
            "job": job.public_id,
            "kind": JobKind::DependencyCutouts,
            "title": job.title,
            "request": job.params,
            "created": job.created_at,
        });
        // CPU-bound (rayon inside) and file writing: off the async threads;
        // each source waits for its memory in the budget.
        let reserve = self.blocking_reserve("one source's cutouts");
        let result = tokio::task::spawn_blocking(move || -> Result<_, JobError> {
            let (result, files) = dependency_cutouts::make::make(
                &ctx,
                &req,
                &planned,
                &out,
                &|d, t| progress.set(d, t),
                &*reserve,
            )?;
            crate::products::result_files::write_manifest(&out, header, &files)?;
            std::fs::write(
                out.join("result.json"),
                serde_json::to_vec(&result).map_err(|e| JobError::Failed(e.to_string()))?,
            )?;
            Ok(result)
        })
        .await
        .map_err(|e| JobError::Failed(format!("cutout task: {e}")))??;
        self.log(
            job.id,
            &format!(
                "made {} files ({} bytes) in {:.0} ms",
                result.files, result.bytes, result.make_ms
            ),
        )
        .await;
        Ok(json!({
            "files": result.files,
            "bytes": result.bytes,
            "rows": result.rows.len(),
            "plan_ms": plan_ms,
            "make_ms": result.make_ms,
        }))
    }

    /// Removes results past the retention policy, oldest first.
    pub async fn apply_retention(&self) -> Result<(), JobError> {
        let jobs = self.catalog.jobs_with_files().await?;
        let now = chrono::Utc::now();
        let max_age =
            chrono::Duration::from_std(self.retention.max_age).unwrap_or(chrono::Duration::days(7));
        let mut total: u64 = jobs.iter().map(|j| j.bytes.max(0) as u64).sum();
        // The result finished last stays even when it alone exceeds the size
        // bound: removing it would answer the request that made it with
        // nothing to download.
        let newest = jobs
            .iter()
            .filter(|j| j.status == JobStatus::Done)
            .max_by_key(|j| (j.finished_at, j.id))
            .map(|j| j.id);
        for j in &jobs {
            let old = j.finished_at.is_some_and(|t| now - t > max_age);
            let over = total > self.retention.max_bytes && Some(j.id) != newest;
            if old || over {
                let (dir, zip) = (self.result_dir(j.id), self.zip_path(j.id));
                on_disk(move || {
                    remove_dir(&dir);
                    let _ = std::fs::remove_file(&zip);
                })
                .await?;
                self.catalog.expire_job(j.id).await?;
                if let Some(shared) = &self.shared
                    && let Err(e) = shared.remove(&j.public_id).await
                {
                    tracing::warn!("job retention: {e}");
                }
                total = total.saturating_sub(j.bytes.max(0) as u64);
                let _ = self
                    .catalog
                    .job_log(
                        j.id,
                        &format!(
                            "{}: result removed by the retention policy ({})",
                            crate::jobs::now(),
                            if old { "age" } else { "total size" }
                        ),
                    )
                    .await;
            }
        }
        // Records (with their parameters, uploaded CSVs and logs) outlive
        // their files by one more retention period, so that a link to a
        // job says "removed" for a while, and are then deleted.
        let forgotten = self
            .catalog
            .delete_jobs_finished_before(now - max_age - max_age)
            .await?;
        if forgotten > 0 {
            tracing::info!("job retention: deleted {forgotten} old job records");
        }
        Ok(())
    }

    /// Where a job's ZIP is kept (beside its result directory, and removed
    /// with it).
    /// The retention policy (UWS destruction times follow from it).
    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// Queues a pending job (UWS `PHASE=RUN`) and wakes a worker; false
    /// when it was not pending.
    pub async fn run_pending(&self, id: JobId) -> Result<bool, JobError> {
        let queued = self.catalog.queue_pending_job(id).await?;
        if queued {
            self.log(id, "queued").await;
            self.wake.notify_one();
        }
        Ok(queued)
    }

    /// Deletes a job: aborts it if it is still to finish, then removes its
    /// files and its record (UWS `DELETE`).
    pub async fn delete(&self, id: JobId) -> Result<(), JobError> {
        self.catalog.abort_job(id).await?;
        if let Some(shared) = &self.shared {
            let public = self.catalog.job(id).await?.public_id;
            if let Err(e) = shared.remove(&public).await {
                tracing::warn!("deleting job {public}: {e}");
            }
        }
        let dirs = [self.result_dir(id), self.part_dir(id)];
        let zip = self.zip_path(id);
        on_disk(move || {
            for d in &dirs {
                remove_dir(d);
            }
            let _ = std::fs::remove_file(&zip);
        })
        .await?;
        self.catalog.delete_job(id).await?;
        Ok(())
    }

    fn zip_path(&self, id: JobId) -> PathBuf {
        self.dir.join(format!("{id}.zip"))
    }

    /// The job the same request (see [`Jobs::submit`]) already has, queued,
    /// running, or done with its files on this server; `None` when it has
    /// to be made (again: products are a pure function of their inputs).
    pub async fn existing(
        &self,
        kind: JobKind,
        canonical: &str,
        submitter: &JobOwner,
    ) -> Result<Option<JobRecord>, JobError> {
        let key = request_key(kind, submitter, canonical);
        match self.catalog.job_by_request_key(kind, &key).await? {
            Some(job) => Ok(Some(self.as_it_stands(job).await?).filter(|j| !j.expired)),
            None => Ok(None),
        }
    }

    /// The job named `public_id` as `catalog` (scoped to the request's
    /// viewer) may see it, as it stands on this server (see
    /// [`Jobs::current`]): "not found" when it is missing or not the
    /// viewer's to see.
    pub async fn find(&self, catalog: &Catalog, public_id: &str) -> Result<JobRecord, JobError> {
        let job = catalog.job_by_public_id(public_id).await?;
        self.as_it_stands(job).await
    }

    /// The record of job `id` as it stands on this server: a done job
    /// whose result directory is missing (removed by hand, another
    /// `--jobs-dir`) is marked expired first, as if retention had removed
    /// it, so that every page answers it as removed (410 for its files).
    pub async fn current(&self, id: JobId) -> Result<JobRecord, JobError> {
        let job = self.catalog.job(id).await?;
        self.as_it_stands(job).await
    }

    /// [`Jobs::current`] for a record already read.
    pub async fn as_it_stands(&self, job: JobRecord) -> Result<JobRecord, JobError> {
        if job.status != JobStatus::Done || job.expired {
            return Ok(job);
        }
        let dir = self.result_dir(job.id);
        if tokio::fs::metadata(&dir).await.is_ok_and(|m| m.is_dir()) {
            return Ok(job);
        }
        match &self.shared {
            // Made by another server (or removed here): fetched from the
            // shared store into this server's cache, if it is there.
            Some(shared) => match shared.fetch(&job.public_id, &dir, &self.dir).await {
                Ok(true) => return Ok(job),
                Ok(false) => {}
                Err(e) => {
                    return Err(JobError::Shared(format!(
                        "job {}'s result could not be fetched: {e}",
                        job.public_id
                    )));
                }
            },
            None if !self.made_here(&job) => {
                return Err(JobError::Elsewhere(format!(
                    "job {} was made by another server ({}) and this server cannot reach its \
                     files: start every server with the same --shared-store (a shared \
                     directory or s3://bucket/prefix), or ask the server that made it",
                    job.public_id,
                    job.owner.as_deref().unwrap_or("unknown"),
                )));
            }
            None => {}
        }
        self.catalog.expire_job(job.id).await?;
        self.log(
            job.id,
            "result directory missing on this server; marked removed",
        )
        .await;
        Ok(self.catalog.job(job.id).await?)
    }

    /// What a client asking for the files of an expired job is told.
    pub fn gone(id: &str) -> JobError {
        JobError::Gone(format!(
            "job {id}'s files are no longer on this server (removed by the retention policy \
             or by hand); submit the request again"
        ))
    }

    /// A file of a finished job's result, checked to lie inside it.
    pub fn file(&self, id: JobId, rel: &str) -> Option<PathBuf> {
        if rel
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
            || rel.contains('\\')
        {
            return None;
        }
        let p = self.result_dir(id).join(rel);
        p.is_file().then_some(p)
    }

    /// The job's ZIP (every file listed in its manifest, and the manifest),
    /// made on first request and kept beside the result; with the bytes it
    /// added when this call made it (to be counted with the job's).
    pub fn zip(&self, job: &JobRecord) -> Result<(PathBuf, Option<u64>), JobError> {
        if job.status != JobStatus::Done || job.expired {
            return Err(JobError::Failed("the job has no result to download".into()));
        }
        let dir = self.result_dir(job.id);
        let name = format!("wisecut_job{}.zip", job.public_id);
        let zip_path = self.zip_path(job.id);
        if zip_path.is_file() {
            return Ok((zip_path, None));
        }
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("manifest.json"))?)
                .map_err(|e| JobError::Failed(format!("manifest unreadable: {e}")))?;
        let mut paths: Vec<String> = vec!["manifest.json".into()];
        for f in manifest["files"].as_array().into_iter().flatten() {
            if let Some(p) = f["path"].as_str() {
                paths.push(p.to_owned());
            }
        }
        // One temporary file per build: concurrent first downloads of the
        // same ZIP each build their own and rename it into place.
        static BUILD: AtomicU64 = AtomicU64::new(0);
        let tmp = self.dir.join(format!(
            ".{}.zip.{}.{}",
            job.id,
            std::process::id(),
            BUILD.fetch_add(1, Ordering::Relaxed)
        ));
        let build = || -> Result<(), JobError> {
            let file = std::fs::File::create(&tmp)?;
            let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
            let prefix = name.trim_end_matches(".zip");
            for p in &paths {
                // PNG and GIF are compressed already; FITS deflates well.
                let method = if p.ends_with(".png") || p.ends_with(".gif") {
                    zip::CompressionMethod::Stored
                } else {
                    zip::CompressionMethod::Deflated
                };
                // Fixed time and permissions, files in manifest order: the
                // same bytes from every server (and every rebuild).
                let opts = zip::write::SimpleFileOptions::default()
                    .compression_method(method)
                    .last_modified_time(zip::DateTime::default())
                    .unix_permissions(0o644);
                zip.start_file(format!("{prefix}/{p}"), opts)
                    .map_err(|e| JobError::Failed(e.to_string()))?;
                let mut f = std::fs::File::open(dir.join(p))?;
                std::io::copy(&mut f, &mut zip)?;
            }
            zip.finish().map_err(|e| JobError::Failed(e.to_string()))?;
            Ok(())
        };
        match build() {
            Ok(()) => {
                let bytes = std::fs::metadata(&tmp)?.len();
                std::fs::rename(&tmp, &zip_path)?;
                Ok((zip_path, Some(bytes)))
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }
}

/// A task aborted when the guard is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs filesystem work on the blocking pool: result directories hold
/// thousands of files, and walking or removing them must not stall the
/// async threads that serve requests.
async fn on_disk<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(std::io::Error::other)
}

/// Now, for log lines.
pub fn now() -> String {
    crate::products::log_time()
}

/// The node id of a result directory: made once (`.node-id`), so that
/// every process using the directory, now or after a restart, recognises
/// the jobs made into it.
fn node_id(dir: &Path) -> std::io::Result<String> {
    let path = dir.join(".node-id");
    if let Ok(s) = std::fs::read_to_string(&path)
        && !s.trim().is_empty()
    {
        return Ok(s.trim().to_owned());
    }
    let id = format!("{:016x}", rand::random::<u64>());
    let tmp = dir.join(format!(".node-id.{}", std::process::id()));
    std::fs::write(&tmp, &id)?;
    // Two processes starting at once: the first link wins, both read it.
    match std::fs::hard_link(&tmp, &path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    }
    let _ = std::fs::remove_file(&tmp);
    Ok(std::fs::read_to_string(&path)?.trim().to_owned())
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn remove_dir(p: &Path) {
    if p.exists()
        && let Err(e) = std::fs::remove_dir_all(p)
    {
        tracing::warn!("removing {}: {e}", p.display());
    }
    // A ZIP made from a result goes with it.
    if let (Some(parent), Some(name)) = (p.parent(), p.file_name().and_then(|n| n.to_str()))
        && !name.ends_with(".part")
    {
        let _ = std::fs::remove_file(parent.join(format!("{name}.zip")));
    }
}

/// Total size of the files under `p`.
pub fn dir_bytes(p: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => total += dir_bytes(&e.path()),
                Ok(_) => total += e.metadata().map(|m| m.len()).unwrap_or(0),
                Err(_) => {}
            }
        }
    }
    total
}

/// The key of a request: the SHA-256 of its kind, its submitter and its
/// canonical form.
fn request_key(kind: JobKind, submitter: &JobOwner, canonical: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(kind.name().as_bytes());
    h.update([0u8]);
    h.update(submitter.key().as_bytes());
    h.update([0u8]);
    h.update(canonical.as_bytes());
    hex::encode(h.finalize())
}
