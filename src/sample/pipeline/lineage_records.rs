//! The lineage manifest: every product with the products it was made from,
//! when it was made, and for calibrations the time they are valid for.
//!
//! The manifest is what the ingest turns into wisecut's lineage tables, so
//! its order and timestamps are part of the survey: the processing times are
//! fixed (not the wall clock) and each stage records its products in the
//! order it made them, which keeps `manifest.json` byte-identical between
//! runs.

use crate::catalog::ingest::{AssociateListEntry, DepRef, FrameEntry, Manifest, SourceListEntry};
use crate::model::FrameClass;
use crate::sample::SampleError;
use chrono::{DateTime, Duration, TimeZone, Utc};
use std::path::Path;

use super::observing_run::night_start;

/// When the pipeline made its `k`-th product: a fixed morning after the
/// run, one second per product in the order of the stages.
pub(super) fn processing(k: usize) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 14, 9, 0, 0).unwrap() + Duration::seconds(k as i64)
}

/// The day around `night` for which its calibrations are valid.
pub(super) fn night_range(night: usize) -> (DateTime<Utc>, DateTime<Utc>) {
    let s = night_start(night) - Duration::hours(12);
    (s, s + Duration::hours(24))
}

/// The manifest being built.
pub(super) struct Lineage {
    manifest: Manifest,
    nights: usize,
}

impl Lineage {
    pub(super) fn new(nights: usize) -> Self {
        Lineage {
            manifest: Manifest {
                creator: "wisecut-sample".into(),
                project: "SAMPLE".into(),
                privileges: crate::model::privileges::PUBLIC,
                ..Default::default()
            },
            nights,
        }
    }

    /// The whole observing run, for calibrations made from all nights.
    pub(super) fn run_range(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        (night_range(0).0, night_range(self.nights - 1).1)
    }

    /// Records a frame at `path` (relative to the data directory) and
    /// returns its entry for any further fields.
    pub(super) fn frame(
        &mut self,
        key: &str,
        class: FrameClass,
        path: String,
        created: DateTime<Utc>,
        deps: Vec<DepRef>,
    ) -> &mut FrameEntry {
        self.manifest.frames.push(FrameEntry {
            creation_date: Some(created),
            ..FrameEntry::new(key, class.name(), &path, deps)
        });
        self.manifest.frames.last_mut().expect("just pushed")
    }

    /// Records the calibration frame `cal/{key}.fits`, valid for `valid`.
    pub(super) fn calibration(
        &mut self,
        key: &str,
        class: FrameClass,
        created: DateTime<Utc>,
        deps: Vec<DepRef>,
        valid: (DateTime<Utc>, DateTime<Utc>),
    ) {
        let e = self.frame(key, class, format!("cal/{key}.fits"), created, deps);
        e.timestamp_start = Some(valid.0);
        e.timestamp_end = Some(valid.1);
    }

    /// Records the source list `cat/{key}.fits` extracted from `frame`.
    pub(super) fn source_list(
        &mut self,
        key: &str,
        name: String,
        frame: &str,
        created: DateTime<Utc>,
    ) {
        self.manifest.source_lists.push(SourceListEntry {
            key: key.into(),
            name,
            frame: frame.into(),
            path: format!("cat/{key}.fits"),
            hdu: None,
            creation_date: Some(created),
            ..Default::default()
        });
    }

    /// Records the associate list `cat/{key}.fits` of `members` (source
    /// list keys), matched within 1″.
    pub(super) fn associate_list(
        &mut self,
        key: &str,
        name: String,
        assoc_type: &str,
        members: Vec<String>,
        created: DateTime<Utc>,
    ) {
        self.manifest.associate_lists.push(AssociateListEntry {
            key: key.into(),
            name,
            assoc_type: assoc_type.into(),
            search_distance: 1.0,
            members,
            path: format!("cat/{key}.fits"),
            hdu: None,
            creation_date: Some(created),
        });
    }

    /// Writes `manifest.json` into `dir`.
    pub(super) fn write(&self, dir: &Path) -> Result<(), SampleError> {
        let path = dir.join("manifest.json");
        let text = serde_json::to_string_pretty(&self.manifest).map_err(|e| SampleError::Io {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        std::fs::write(&path, text).map_err(|source| SampleError::Io { path, source })
    }

    pub(super) fn into_manifest(self) -> Manifest {
        self.manifest
    }
}
