//! RGB jobs (placeholder until the module lands).
use super::{Jobs, Outcome};
use crate::catalog::jobs::JobRecord;
use std::path::Path;
/// Runs an RGB job.
pub async fn run(_jobs: &Jobs, _job: &JobRecord, _dir: &Path) -> Outcome {
    Err(super::JobError::Failed("not yet".into()))
}
