//! Batch jobs (placeholder until the module lands).
use super::{Jobs, Outcome, Progress};
use crate::catalog::jobs::JobRecord;
use std::path::Path;
use std::sync::Arc;
/// Runs a batch job.
pub async fn run(_jobs: &Jobs, _job: &JobRecord, _dir: &Path, _p: Arc<Progress>) -> Outcome {
    Err(super::JobError::Failed("not yet".into()))
}
