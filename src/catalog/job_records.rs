//! Persistent job records: the queue, leases, progress, logs and results.
//!
//! A job is `queued` → `running` → `done` | `failed`. A server claims a
//! queued job with one conditional `UPDATE … RETURNING`, so two servers on
//! one PostgreSQL database never run the same job. While it runs, its owner
//! renews a heartbeat; a running job whose heartbeat is older than the lease
//! belongs to a process that died, and is put back in the queue (or failed
//! after too many attempts) by [`Catalog::recover_jobs`]. Every write after
//! the claim names the owner, so a process that lost its lease cannot
//! overwrite the record of the one that took over.
//!
//! Jobs belong to their submitter (issue 17): a signed-in user (with the
//! project worked in), or an anonymous browser (the SHA-256 of its
//! cookie). A job is private by default; its owner may share it with
//! whoever has its link ([`Share::Link`]) or with the members working in
//! its project ([`Share::Project`]). Every URL names a job by its
//! unguessable `public_id` (128 random bits), never by its sequential id.
//! A catalogue scoped to a viewer ([`Catalog::for_viewer`]) finds only the
//! jobs that viewer may see ([`Catalog::job_by_public_id`]) and lists only
//! its own and its project's shared ones ([`Catalog::jobs`]); an unseen job
//! is "not found", exactly as a missing one. A job submitted with no
//! identity at all (a script or VO client without cookie or token) has no
//! owner: it is stored shared by link, so only its unguessable URL reaches
//! it and no listing shows it.

use super::access::{Viewer, quote};
use super::{Catalog, CatalogError, entity};
use crate::ids::JobId;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder, QuerySelect, Value};
use serde::Serialize;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Created, not yet asked to run (a UWS job before `PHASE=RUN`).
    Pending,
    /// Waiting for a worker.
    Queued,
    /// Being worked on.
    Running,
    /// Finished; its result is available (unless expired).
    Done,
    /// Stopped with an error.
    Failed,
    /// Stopped by its client before it finished.
    Aborted,
}

impl JobStatus {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Aborted => "aborted",
        }
    }

    fn parse(s: &str) -> Result<Self, CatalogError> {
        Ok(match s {
            "pending" => Self::Pending,
            "queued" => Self::Queued,
            "running" => Self::Running,
            "done" => Self::Done,
            "failed" => Self::Failed,
            "aborted" => Self::Aborted,
            other => return Err(CatalogError::Invalid(format!("unknown job status {other}"))),
        })
    }
}

/// What a job makes. Stored as its [`JobKind::name`], which is also what
/// `/jobs?kind=` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum JobKind {
    /// Dependency cutouts of sources or associations.
    #[serde(rename = "deps")]
    DependencyCutouts,
    /// An RGB picture.
    #[serde(rename = "rgb")]
    Rgb,
    /// A batch of positions.
    #[serde(rename = "batch")]
    Batch,
    /// An asynchronous TAP query (a UWS job).
    #[serde(rename = "tap")]
    Tap,
}

impl JobKind {
    /// Every kind, in the order pages list them.
    pub const ALL: [JobKind; 4] = [Self::DependencyCutouts, Self::Rgb, Self::Batch, Self::Tap];

    /// The stored name (`deps`, `rgb`, `batch`).
    pub fn name(self) -> &'static str {
        match self {
            Self::DependencyCutouts => "deps",
            Self::Rgb => "rgb",
            Self::Batch => "batch",
            Self::Tap => "tap",
        }
    }

    /// The kind stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name.trim())
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Who besides its owner may see a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Share {
    /// Its owner only (the default).
    Private,
    /// Anyone who has its URL (its unguessable public id).
    Link,
    /// The members working in the project its owner worked in.
    Project,
}

impl Share {
    /// Every choice, in the order forms offer them.
    pub const ALL: [Share; 3] = [Self::Private, Self::Link, Self::Project];

    /// The stored (and form) name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::Link => "link",
            Self::Project => "project",
        }
    }

    /// The share named `s`; the error names `share` and the choices.
    pub fn parse(s: &str) -> Result<Self, CatalogError> {
        Self::ALL
            .into_iter()
            .find(|c| c.name() == s.trim())
            .ok_or_else(|| {
                CatalogError::Query(format!(
                    "share: {:?} is not allowed; use private, link or project",
                    crate::params::shown(s)
                ))
            })
    }
}

/// Who submitted a job: a signed-in user (with the project worked in), an
/// anonymous browser, or nobody (no cookie, no token).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobOwner {
    /// The signed-in user.
    pub user: Option<String>,
    /// The anonymous browser (SHA-256 of its cookie); only without a user.
    pub browser: Option<String>,
    /// The project the user worked in (only with a user).
    pub project: Option<String>,
}

impl JobOwner {
    /// No owner: the job is reachable by its link only.
    pub fn nobody() -> Self {
        Self::default()
    }

    /// A signed-in user working in `project` (`None`: every project of the
    /// user, as API tokens see them).
    pub fn user(user: &str, project: Option<&str>) -> Self {
        Self {
            user: Some(user.to_owned()),
            browser: None,
            project: project.map(str::to_owned),
        }
    }

    /// An anonymous browser, by the SHA-256 of its cookie.
    pub fn browser(hash: &str) -> Self {
        Self {
            user: None,
            browser: Some(hash.to_owned()),
            project: None,
        }
    }

    /// Whether there is no owner.
    pub fn is_nobody(&self) -> bool {
        self.user.is_none() && self.browser.is_none()
    }

    /// A text naming the owner and the view its jobs are made with, mixed
    /// into request keys so that two owners never share a job (nor a
    /// result made with other privileges).
    pub fn key(&self) -> String {
        match (&self.user, &self.browser) {
            (Some(u), _) => format!("user\u{0}{u}\u{0}{}", self.project.as_deref().unwrap_or("")),
            (None, Some(b)) => format!("browser\u{0}{b}"),
            (None, None) => String::new(),
        }
    }
}

/// A job as stored.
#[derive(Debug, Clone, Serialize)]
pub struct JobRecord {
    /// Its internal id (leases, directories); never in a URL.
    pub id: JobId,
    /// Its name in URLs: 32 hex digits, unguessable.
    pub public_id: String,
    /// The signed-in user who submitted it.
    pub owner_user: Option<String>,
    /// The anonymous browser that submitted it (SHA-256 of its cookie).
    #[serde(skip)]
    pub owner_browser: Option<String>,
    /// The project its submitter worked in.
    pub owner_project: Option<String>,
    /// Who else may see it.
    pub share: Share,
    /// What kind of work.
    pub kind: JobKind,
    /// One line saying what it makes.
    pub title: String,
    /// Its state.
    pub status: JobStatus,
    /// From 0 to 1.
    pub progress: f64,
    /// The request, as JSON.
    pub params: serde_json::Value,
    /// Log lines, newest last.
    pub log: String,
    /// The result summary, as JSON, once done.
    pub result: Option<serde_json::Value>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it was asked for.
    pub created_at: DateTime<Utc>,
    /// When its last attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// The process running it.
    pub owner: Option<String>,
    /// That process's last sign of life.
    pub heartbeat_at: Option<DateTime<Utc>>,
    /// Times started.
    pub attempts: i32,
    /// Whether retention removed its files.
    pub expired: bool,
    /// Size of its files in bytes.
    pub bytes: i64,
}

impl JobRecord {
    fn from_model(m: entity::job::Model) -> Result<Self, CatalogError> {
        let json = |what: &str, s: &str| {
            serde_json::from_str(s)
                .map_err(|e| CatalogError::Invalid(format!("job {}: stored {what}: {e}", m.id)))
        };
        Ok(JobRecord {
            id: JobId(m.id),
            status: JobStatus::parse(&m.status)?,
            params: json("params", &m.params)?,
            result: m.result.as_deref().map(|r| json("result", r)).transpose()?,
            kind: JobKind::parse(&m.kind).ok_or_else(|| {
                CatalogError::Invalid(format!("job {}: unknown kind {:?}", m.id, m.kind))
            })?,
            public_id: m.public_id.unwrap_or_default(),
            owner_user: m.owner_user,
            owner_browser: m.owner_browser,
            owner_project: m.owner_project,
            share: Share::ALL
                .into_iter()
                .find(|s| s.name() == m.share)
                .unwrap_or(Share::Private),
            title: m.title,
            progress: m.progress,
            log: m.log,
            error: m.error,
            created_at: m.created_at,
            started_at: m.started_at,
            finished_at: m.finished_at,
            owner: m.owner,
            heartbeat_at: m.heartbeat_at,
            attempts: m.attempts,
            expired: m.expired,
            bytes: m.bytes,
        })
    }

    /// Whether `v` submitted this job (or is a superuser): who may change
    /// its sharing.
    pub fn owned_by(&self, v: &Viewer) -> bool {
        if v.superuser {
            return true;
        }
        match (&v.user, &self.owner_user) {
            (Some(u), Some(o)) => u == o,
            (Some(_), None) | (None, Some(_)) => false,
            (None, None) => v.browser.is_some() && v.browser == self.owner_browser,
        }
    }

    /// Whether nobody owns it (submitted without cookie or token).
    pub fn is_ownerless(&self) -> bool {
        self.owner_user.is_none() && self.owner_browser.is_none()
    }

    /// The first 8 digits of its public id, to show in lists.
    pub fn short_id(&self) -> &str {
        self.public_id.get(..8).unwrap_or(&self.public_id)
    }

    /// Seconds from start to end (or to now while running).
    pub fn duration_s(&self) -> Option<f64> {
        let start = self.started_at?;
        let end = self.finished_at.unwrap_or_else(Utc::now);
        Some((end - start).num_milliseconds() as f64 / 1000.0)
    }
}

/// What [`Catalog::recover_jobs`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Jobs put back in the queue.
    pub requeued: Vec<JobId>,
    /// Jobs failed because they were interrupted too often.
    pub failed: Vec<JobId>,
}

/// Every column, in the order `row_to_model` reads them.
const COLUMNS: &str = "id, kind, status, progress, params, log, result, error, created_at, \
                       started_at, finished_at, title, owner, heartbeat_at, attempts, expired, bytes, \
                       request_key, public_id, owner_user, owner_browser, owner_project, share";

impl Catalog {
    /// Stores a new job. `owner` given means the caller runs it at once
    /// (status `running`, attempt 1); otherwise it is queued.
    pub async fn create_job(
        &self,
        kind: JobKind,
        title: &str,
        params: &serde_json::Value,
        owner: Option<&str>,
    ) -> Result<JobRecord, CatalogError> {
        self.create_keyed_job(kind, title, params, owner, None, &JobOwner::nobody())
            .await
    }

    /// [`Catalog::create_job`] with the hash of the job's canonical
    /// parameters, by which [`Catalog::job_by_request_key`] finds it again,
    /// and its submitter (`submitter`; with nobody, the job is shared by
    /// link: its unguessable URL is the only way to it). `owner` is the
    /// server process running it, if it runs at once.
    pub async fn create_keyed_job(
        &self,
        kind: JobKind,
        title: &str,
        params: &serde_json::Value,
        owner: Option<&str>,
        request_key: Option<&str>,
        submitter: &JobOwner,
    ) -> Result<JobRecord, CatalogError> {
        let status = if owner.is_some() {
            JobStatus::Running
        } else {
            JobStatus::Queued
        };
        self.insert_job(kind, title, params, status, owner, request_key, submitter)
            .await
    }

    /// Inserts a job in its first status. A job must be born in that
    /// status: inserting it queued and changing it after would let a
    /// worker claim it in between.
    #[allow(clippy::too_many_arguments)]
    async fn insert_job(
        &self,
        kind: JobKind,
        title: &str,
        params: &serde_json::Value,
        status: JobStatus,
        owner: Option<&str>,
        request_key: Option<&str>,
        submitter: &JobOwner,
    ) -> Result<JobRecord, CatalogError> {
        let now = Utc::now();
        let started = owner.map(|_| now);
        let sql = format!(
            "INSERT INTO job (kind, status, progress, params, log, created_at, started_at, \
               title, owner, heartbeat_at, attempts, expired, bytes, request_key, \
               public_id, owner_user, owner_browser, owner_project, share) \
             VALUES ($1, $2, 0, $3, '', $4, $5, $6, $7, $5, $8, $9, 0, $10, $11, $12, $13, $14, \
               $15) RETURNING {COLUMNS}"
        );
        let share = if submitter.is_nobody() {
            Share::Link
        } else {
            Share::Private
        };
        // The browser owns a job only when nobody is signed in.
        let browser = submitter
            .browser
            .clone()
            .filter(|_| submitter.user.is_none());
        let project = submitter
            .project
            .clone()
            .filter(|_| submitter.user.is_some());
        let values = vec![
            kind.name().into(),
            status.name().into(),
            params.to_string().into(),
            now.into(),
            started.into(),
            title.chars().take(200).collect::<String>().into(),
            owner.map(str::to_owned).into(),
            i32::from(owner.is_some()).into(),
            false.into(),
            request_key.map(str::to_owned).into(),
            super::access::new_public_id().into(),
            submitter.user.clone().into(),
            browser.into(),
            project.into(),
            share.name().into(),
        ];
        self.job_query(&sql, values)
            .await?
            .ok_or_else(|| CatalogError::Invalid("job insert returned nothing".into()))
    }

    /// Stores a job that waits for its client's `PHASE=RUN` (UWS's PENDING)
    /// before any worker may claim it.
    pub async fn create_pending_job(
        &self,
        kind: JobKind,
        title: &str,
        params: &serde_json::Value,
        submitter: &JobOwner,
    ) -> Result<JobRecord, CatalogError> {
        self.insert_job(
            kind,
            title,
            params,
            JobStatus::Pending,
            None,
            None,
            submitter,
        )
        .await
    }

    /// Queues a pending job; false when it was not pending (already
    /// started, finished or aborted).
    pub async fn queue_pending_job(&self, id: JobId) -> Result<bool, CatalogError> {
        self.job_exec(
            "UPDATE job SET status = 'queued' WHERE id = $1 AND status = 'pending'",
            vec![id.0.into()],
        )
        .await
    }

    /// Aborts a job that has not finished; false when it had. A worker
    /// still running it loses it: its result is not recorded (finishing
    /// requires the job to be running).
    pub async fn abort_job(&self, id: JobId) -> Result<bool, CatalogError> {
        self.job_exec(
            "UPDATE job SET status = 'aborted', finished_at = $1, error = 'aborted by its client'              WHERE id = $2 AND status IN ('pending', 'queued', 'running')",
            vec![Utc::now().into(), id.0.into()],
        )
        .await
    }

    /// Replaces the parameters of a pending job (UWS allows changing them
    /// before the run); false when it is no longer pending.
    pub async fn set_pending_job_params(
        &self,
        id: JobId,
        params: &serde_json::Value,
    ) -> Result<bool, CatalogError> {
        self.job_exec(
            "UPDATE job SET params = $1 WHERE id = $2 AND status = 'pending'",
            vec![params.to_string().into(), id.0.into()],
        )
        .await
    }

    /// Deletes a job's record (its files are the caller's to remove).
    pub async fn delete_job(&self, id: JobId) -> Result<bool, CatalogError> {
        self.job_exec("DELETE FROM job WHERE id = $1", vec![id.0.into()])
            .await
    }

    /// Claims the oldest queued job for `owner`, if any.
    pub async fn claim_job(&self, owner: &str) -> Result<Option<JobRecord>, CatalogError> {
        let now = Utc::now();
        // The outer `status = 'queued'` re-check is what makes the claim
        // exclusive: a concurrent claimer re-evaluates it after the first
        // commit and updates nothing.
        let sql = format!(
            "UPDATE job SET status = 'running', owner = $1, started_at = $2, heartbeat_at = $2, \
               attempts = attempts + 1, finished_at = NULL \
             WHERE id = (SELECT id FROM job WHERE status = 'queued' ORDER BY id LIMIT 1) \
               AND status = 'queued' RETURNING {COLUMNS}"
        );
        self.job_query(&sql, vec![owner.into(), now.into()]).await
    }

    /// Renews the lease and records progress (0–1). Returns false when the
    /// job is no longer this owner's (its lease was taken over).
    pub async fn job_progress(
        &self,
        id: JobId,
        owner: &str,
        progress: f64,
    ) -> Result<bool, CatalogError> {
        self.job_exec(
            "UPDATE job SET progress = $1, heartbeat_at = $2 \
             WHERE id = $3 AND owner = $4 AND status = 'running'",
            vec![
                progress.clamp(0.0, 1.0).into(),
                Utc::now().into(),
                id.0.into(),
                owner.into(),
            ],
        )
        .await
    }

    /// Appends lines to a job's log (any status; the log is history).
    pub async fn job_log(&self, id: JobId, lines: &str) -> Result<(), CatalogError> {
        let mut text = lines.trim_end().to_owned();
        text.push('\n');
        self.job_exec(
            "UPDATE job SET log = log || $1 WHERE id = $2",
            vec![text.into(), id.0.into()],
        )
        .await
        .map(|_| ())
    }

    /// Marks a job done with its result summary and the size of its files.
    pub async fn finish_job(
        &self,
        id: JobId,
        owner: &str,
        result: &serde_json::Value,
        bytes: u64,
    ) -> Result<bool, CatalogError> {
        self.job_exec(
            "UPDATE job SET status = 'done', progress = 1, result = $1, bytes = $2, \
               finished_at = $3, heartbeat_at = $3, error = NULL \
             WHERE id = $4 AND owner = $5 AND status = 'running'",
            vec![
                result.to_string().into(),
                i64::try_from(bytes).unwrap_or(i64::MAX).into(),
                Utc::now().into(),
                id.0.into(),
                owner.into(),
            ],
        )
        .await
    }

    /// Marks a job failed with the reason.
    pub async fn fail_job(
        &self,
        id: JobId,
        owner: &str,
        error: &str,
    ) -> Result<bool, CatalogError> {
        self.job_exec(
            "UPDATE job SET status = 'failed', error = $1, finished_at = $2, heartbeat_at = $2 \
             WHERE id = $3 AND owner = $4 AND status = 'running'",
            vec![error.into(), Utc::now().into(), id.0.into(), owner.into()],
        )
        .await
    }

    /// Puts back in the queue every running job whose heartbeat is older than
    /// `lease` (its process died), or fails it when it has already been
    /// started `max_attempts` times. Each gets a log line saying so.
    pub async fn recover_jobs(
        &self,
        lease: chrono::Duration,
        max_attempts: i32,
    ) -> Result<Recovery, CatalogError> {
        let cutoff = Utc::now() - lease;
        let failed_reason = format!(
            "interrupted {max_attempts} times (server stopped while it ran); not retried again"
        );
        let failed = self
            .job_ids(
                "UPDATE job SET status = 'failed', error = $1, finished_at = $2, \
                   log = log || $3 \
                 WHERE status = 'running' AND (heartbeat_at IS NULL OR heartbeat_at < $4) \
                   AND attempts >= $5 RETURNING id",
                vec![
                    failed_reason.clone().into(),
                    Utc::now().into(),
                    format!("{}: failed: {failed_reason}\n", Utc::now().to_rfc3339()).into(),
                    cutoff.into(),
                    max_attempts.into(),
                ],
            )
            .await?;
        let requeued = self
            .job_ids(
                "UPDATE job SET status = 'queued', owner = NULL, progress = 0, log = log || $1 \
                 WHERE status = 'running' AND (heartbeat_at IS NULL OR heartbeat_at < $2) \
                   AND attempts < $3 RETURNING id",
                vec![
                    format!(
                        "{}: interrupted (its server stopped); queued again, outputs are \
                         rebuilt from the start\n",
                        Utc::now().to_rfc3339()
                    )
                    .into(),
                    cutoff.into(),
                    max_attempts.into(),
                ],
            )
            .await?;
        Ok(Recovery { requeued, failed })
    }

    /// One job.
    pub async fn job(&self, id: JobId) -> Result<JobRecord, CatalogError> {
        entity::job::Entity::find_by_id(id.0)
            .one(self.db())
            .await?
            .map(JobRecord::from_model)
            .transpose()?
            .ok_or_else(|| CatalogError::NotFound {
                what: "job",
                id: id.to_string(),
            })
    }

    /// The job named `public_id` in URLs, if this catalogue's viewer may
    /// see it (see [`Catalog::jobs_reachable`]); an unseen job is "not
    /// found", exactly as a missing one.
    pub async fn job_by_public_id(&self, public_id: &str) -> Result<JobRecord, CatalogError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM job WHERE public_id = $1 AND {}",
            self.jobs_reachable()
        );
        self.job_query(&sql, vec![public_id.into()])
            .await?
            .ok_or_else(|| CatalogError::NotFound {
                what: "job",
                id: crate::params::shown(public_id),
            })
    }

    /// Changes who may see a job besides its owner. Only its owner (or a
    /// superuser) may: anyone else is told it is not found, as is a viewer
    /// who cannot see it. Sharing with the project needs the job to have
    /// been submitted in one.
    pub async fn set_job_share(
        &self,
        public_id: &str,
        share: Share,
    ) -> Result<JobRecord, CatalogError> {
        let job = self.job_by_public_id(public_id).await?;
        if let Some(v) = self.viewer()
            && !job.owned_by(v)
        {
            return Err(CatalogError::NotFound {
                what: "job",
                id: crate::params::shown(public_id),
            });
        }
        if share == Share::Project && job.owner_project.is_none() {
            return Err(CatalogError::Query(
                "share: this job was not submitted in a project (sign in and choose one \
                 first); use private or link"
                    .into(),
            ));
        }
        self.job_exec(
            "UPDATE job SET share = $1 WHERE id = $2",
            vec![share.name().into(), job.id.0.into()],
        )
        .await?;
        self.job(job.id).await
    }

    /// The condition (on table `job`) that this catalogue's viewer lists
    /// a job: it submitted it, or the job is shared with a project the
    /// viewer works in. Names are quoted as [`Viewer::sql`] does.
    pub fn jobs_listed(&self) -> String {
        let Some(v) = self.viewer() else {
            return "1=1".to_owned();
        };
        if v.superuser {
            return "1=1".to_owned();
        }
        let mut any = Vec::new();
        if let Some(u) = &v.user {
            any.push(format!("job.owner_user = {}", quote(u)));
            if !v.context.is_empty() {
                let projects: Vec<String> = v.context.iter().map(|p| quote(p)).collect();
                any.push(format!(
                    "(job.share = 'project' AND job.owner_project IN ({}))",
                    projects.join(", ")
                ));
            }
        } else if let Some(b) = &v.browser {
            any.push(format!(
                "(job.owner_user IS NULL AND job.owner_browser = {})",
                quote(b)
            ));
        }
        if any.is_empty() {
            "1=0".to_owned()
        } else {
            format!("({})", any.join(" OR "))
        }
    }

    /// The condition (on table `job`) that this catalogue's viewer may see
    /// a job whose public id it has: one it lists, or one shared by link.
    pub fn jobs_reachable(&self) -> String {
        match self.viewer() {
            None => "1=1".to_owned(),
            Some(_) => format!("(job.share = 'link' OR {})", self.jobs_listed()),
        }
    }

    /// Gives every job made before jobs had public ids one (their URLs
    /// change; the old numeric ones name nothing any more).
    pub async fn assign_public_ids(&self) -> Result<u64, CatalogError> {
        let ids = self
            .job_ids("SELECT id FROM job WHERE public_id IS NULL", vec![])
            .await?;
        let mut n = 0;
        for id in ids {
            if self
                .job_exec(
                    "UPDATE job SET public_id = $1 WHERE id = $2 AND public_id IS NULL",
                    vec![super::access::new_public_id().into(), id.0.into()],
                )
                .await?
            {
                n += 1;
            }
        }
        Ok(n)
    }

    /// The newest job of `kind` made for the request with this key that can
    /// still serve it: queued, running, or done with its files.
    pub async fn job_by_request_key(
        &self,
        kind: JobKind,
        key: &str,
    ) -> Result<Option<JobRecord>, CatalogError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM job WHERE kind = $1 AND request_key = $2 \
               AND status <> 'failed' AND expired = $3 ORDER BY id DESC LIMIT 1"
        );
        let rows = self
            .job_query(&sql, vec![kind.name().into(), key.into(), false.into()])
            .await?;
        rows.into_iter().next().map(Ok).transpose()
    }

    /// Jobs newest first, optionally of one kind, with the total count:
    /// those this catalogue's viewer owns or that are shared with the
    /// project it works in (every job for a superuser and the system view;
    /// a job shared by link is listed to its owner only).
    pub async fn jobs(
        &self,
        kind: Option<JobKind>,
        status: Option<JobStatus>,
        offset: u64,
        limit: u64,
    ) -> Result<(u64, Vec<JobRecord>), CatalogError> {
        use entity::job::Column as C;
        use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter};
        let mut q =
            entity::job::Entity::find().filter(sea_orm::sea_query::Expr::cust(self.jobs_listed()));
        if let Some(k) = kind {
            q = q.filter(C::Kind.eq(k.name()));
        }
        if let Some(s) = status {
            q = q.filter(C::Status.eq(s.name()));
        }
        let total = q.clone().count(self.db()).await?;
        let rows = q
            .order_by_desc(C::Id)
            .offset(offset)
            .limit(limit)
            .all(self.db())
            .await?;
        let jobs = rows
            .into_iter()
            .map(JobRecord::from_model)
            .collect::<Result<_, _>>()?;
        Ok((total, jobs))
    }

    /// Finished jobs whose files still exist, oldest first: what retention
    /// may remove.
    pub async fn jobs_with_files(&self) -> Result<Vec<JobRecord>, CatalogError> {
        use entity::job::Column as C;
        use sea_orm::{ColumnTrait, QueryFilter};
        entity::job::Entity::find()
            .filter(C::Expired.eq(false))
            .filter(C::Status.is_in(["done", "failed", "aborted"]))
            .order_by_asc(C::Id)
            .all(self.db())
            .await?
            .into_iter()
            .map(JobRecord::from_model)
            .collect()
    }

    /// Adds `bytes` to what a job's files take (its ZIP, made later).
    pub async fn add_job_bytes(&self, id: JobId, bytes: u64) -> Result<(), CatalogError> {
        self.job_exec(
            "UPDATE job SET bytes = bytes + $1 WHERE id = $2",
            vec![i64::try_from(bytes).unwrap_or(i64::MAX).into(), id.0.into()],
        )
        .await
        .map(|_| ())
    }

    /// Deletes the records of jobs whose files were removed and that
    /// finished before `before`; returns how many.
    pub async fn delete_jobs_finished_before(
        &self,
        before: DateTime<Utc>,
    ) -> Result<u64, CatalogError> {
        use entity::job::Column as C;
        use sea_orm::{ColumnTrait, QueryFilter};
        let r = entity::job::Entity::delete_many()
            .filter(C::Expired.eq(true))
            .filter(C::FinishedAt.lt(before))
            .exec(self.db())
            .await?;
        Ok(r.rows_affected)
    }

    /// Records that retention removed a job's files.
    pub async fn expire_job(&self, id: JobId) -> Result<(), CatalogError> {
        self.job_exec(
            "UPDATE job SET expired = $1 WHERE id = $2",
            vec![true.into(), id.0.into()],
        )
        .await
        .map(|_| ())
    }

    async fn job_query(
        &self,
        sql: &str,
        values: Vec<Value>,
    ) -> Result<Option<JobRecord>, CatalogError> {
        let row = self
            .db()
            .query_one_raw(Self::stmt(self.backend(), sql, values))
            .await?;
        row.map(|r| row_to_model(&r).map_err(CatalogError::from))
            .transpose()?
            .map(JobRecord::from_model)
            .transpose()
    }

    async fn job_exec(&self, sql: &str, values: Vec<Value>) -> Result<bool, CatalogError> {
        let res = self
            .db()
            .execute_raw(Self::stmt(self.backend(), sql, values))
            .await?;
        Ok(res.rows_affected() > 0)
    }

    async fn job_ids(&self, sql: &str, values: Vec<Value>) -> Result<Vec<JobId>, CatalogError> {
        let rows = self
            .db()
            .query_all_raw(Self::stmt(self.backend(), sql, values))
            .await?;
        rows.iter()
            .map(|r| Ok(JobId(r.try_get("", "id")?)))
            .collect::<Result<_, sea_orm::DbErr>>()
            .map_err(CatalogError::from)
    }
}

fn row_to_model(r: &sea_orm::QueryResult) -> Result<entity::job::Model, sea_orm::DbErr> {
    Ok(entity::job::Model {
        id: r.try_get("", "id")?,
        kind: r.try_get("", "kind")?,
        status: r.try_get("", "status")?,
        progress: r.try_get("", "progress")?,
        params: r.try_get("", "params")?,
        log: r.try_get("", "log")?,
        result: r.try_get("", "result")?,
        error: r.try_get("", "error")?,
        created_at: r.try_get("", "created_at")?,
        started_at: r.try_get("", "started_at")?,
        finished_at: r.try_get("", "finished_at")?,
        title: r.try_get("", "title")?,
        owner: r.try_get("", "owner")?,
        heartbeat_at: r.try_get("", "heartbeat_at")?,
        attempts: r.try_get("", "attempts")?,
        expired: r.try_get("", "expired")?,
        bytes: r.try_get("", "bytes")?,
        request_key: r.try_get("", "request_key")?,
        public_id: r.try_get("", "public_id")?,
        owner_user: r.try_get("", "owner_user")?,
        owner_browser: r.try_get("", "owner_browser")?,
        owner_project: r.try_get("", "owner_project")?,
        share: r.try_get("", "share")?,
    })
}
