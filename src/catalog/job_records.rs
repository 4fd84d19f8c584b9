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

/// A job as stored.
#[derive(Debug, Clone, Serialize)]
pub struct JobRecord {
    /// Its id.
    pub id: JobId,
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
                       request_key";

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
        self.create_keyed_job(kind, title, params, owner, None)
            .await
    }

    /// [`Catalog::create_job`] with the hash of the job's canonical
    /// parameters, by which [`Catalog::job_by_request_key`] finds it again.
    pub async fn create_keyed_job(
        &self,
        kind: JobKind,
        title: &str,
        params: &serde_json::Value,
        owner: Option<&str>,
        request_key: Option<&str>,
    ) -> Result<JobRecord, CatalogError> {
        let now = Utc::now();
        let status = if owner.is_some() {
            JobStatus::Running
        } else {
            JobStatus::Queued
        };
        let started = owner.map(|_| now);
        let sql = format!(
            "INSERT INTO job (kind, status, progress, params, log, created_at, started_at, \
               title, owner, heartbeat_at, attempts, expired, bytes, request_key) \
             VALUES ($1, $2, 0, $3, '', $4, $5, $6, $7, $5, $8, $9, 0, $10) RETURNING {COLUMNS}"
        );
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
    ) -> Result<JobRecord, CatalogError> {
        let job = self.create_job(kind, title, params, None).await?;
        self.job_exec(
            "UPDATE job SET status = 'pending' WHERE id = $1 AND status = 'queued'",
            vec![job.id.0.into()],
        )
        .await?;
        self.job(job.id).await
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

    /// Jobs newest first, optionally of one kind, with the total count.
    pub async fn jobs(
        &self,
        kind: Option<JobKind>,
        status: Option<JobStatus>,
        offset: u64,
        limit: u64,
    ) -> Result<(u64, Vec<JobRecord>), CatalogError> {
        use entity::job::Column as C;
        use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter};
        let mut q = entity::job::Entity::find();
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
    })
}
