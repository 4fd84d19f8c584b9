//! The `job` table: persistent records of long-running work.

use sea_orm::entity::prelude::*;

/// A job row.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "job")]
pub struct Model {
    /// Job id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// What kind of job.
    pub kind: String,
    /// `queued`, `running`, `done` or `failed`.
    pub status: String,
    /// Progress from 0 to 1.
    pub progress: f64,
    /// Parameters as JSON.
    #[sea_orm(column_type = "Text")]
    pub params: String,
    /// Log text.
    #[sea_orm(column_type = "Text")]
    pub log: String,
    /// Result manifest as JSON.
    #[sea_orm(column_type = "Text", nullable)]
    pub result: Option<String>,
    /// Failure reason.
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Start time.
    pub started_at: Option<DateTimeUtc>,
    /// End time.
    pub finished_at: Option<DateTimeUtc>,
    /// One line saying what the job makes.
    pub title: String,
    /// The server process running it.
    pub owner: Option<String>,
    /// When that process last reported.
    pub heartbeat_at: Option<DateTimeUtc>,
    /// How many times it was started.
    pub attempts: i32,
    /// Whether retention removed its files.
    pub expired: bool,
    /// Size of its result files.
    pub bytes: i64,
    /// Hash of its canonical parameters, for finding it again.
    pub request_key: Option<String>,
    /// The job's name in every URL: 128 random bits, hex (the numeric id
    /// stays internal: leases, directories).
    pub public_id: Option<String>,
    /// The signed-in user who submitted it.
    pub owner_user: Option<String>,
    /// The anonymous browser that submitted it (SHA-256 of its cookie).
    pub owner_browser: Option<String>,
    /// The project its submitter worked in.
    pub owner_project: Option<String>,
    /// Who else may see it: `private`, `link` or `project`.
    pub share: String,
}

/// No navigable relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
