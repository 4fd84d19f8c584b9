//! Batch positions jobs, as the DES cutout service runs them: a CSV of
//! targets (RA, DEC or SLID, SID) with per-row options ([`positions_csv`])
//! → for each row, FITS and PNG cutouts of every covering frame of the chosen
//! classes and filters, and optionally Lupton / STIFF colour images → the
//! job directory holds `summary.json`, `positions_<job>.csv`, `log.txt`,
//! `manifest.json` and the cutouts; the ZIP comes from the jobs endpoint.
//!
//! A malformed row is reported with its line number in the log and in
//! `summary.json`, and the other rows are processed. Targets that no frame
//! covers are listed as unmatched.

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::json;

pub mod positions_csv;

use positions_csv::{Limits, Options, PositionRecord, Resolved, Target};

use super::ProductError;
use super::rgb_composite::{RgbParams, picture};
use crate::catalog::Catalog;
use crate::catalog::job_records::JobRecord;
use crate::ids::{Sid, Slid};
use crate::imaging::cutout::{Center, CutoutSpec, Size, SizeUnit};
use crate::imaging::render::{self, Interval, OutputFormat, RenderParams, Stretch};
use crate::imaging::wcs::Wcs;
use crate::model::{Frame, FrameClass};
use crate::params::ParamError;
use crate::products::budget::MemoryGrant;
use crate::products::frames::FrameImages;
use crate::products::result_files::{ManifestFile, write_file, write_manifest};

/// Frame classes cut when neither the job nor the row names any: the
/// deepest product, as DES cuts its coadd tiles.
pub const DEFAULT_CLASSES: [FrameClass; 1] = [FrameClass::CoaddedRegriddedFrame];

/// Largest side of a batch cutout, arcmin.
pub const MAX_SIZE_ARCMIN: f64 = 30.0;

/// Most rows in one file.
pub const MAX_ROWS: usize = 10_000;

/// What a batch job stores as its parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchParams {
    /// The uploaded file.
    pub csv: String,
    /// Job-level options as (name, value) pairs.
    pub options: Vec<(String, String)>,
    /// The uploaded file's name, for the title.
    pub filename: Option<String>,
}

impl BatchParams {
    /// The job-level options and the parsed file: a 400 naming `options` or
    /// `positions` when either is unreadable.
    pub fn parse(&self) -> Result<(Options, positions_csv::Parsed), ProductError> {
        let l = limits();
        let options = Options::from_pairs(&self.options, &l)
            .map_err(|e| ParamError::new("options", e.to_string()))?;
        let parsed = positions_csv::parse_positions(&self.csv, &l)
            .map_err(|e| ParamError::new("positions", e.to_string()))?;
        Ok((options, parsed))
    }
}

/// The parser's limits.
pub fn limits() -> Limits {
    Limits {
        max_size_arcmin: MAX_SIZE_ARCMIN,
        known_classes: FrameClass::ALL
            .iter()
            .map(|c| c.name().to_owned())
            .collect(),
        max_rows: MAX_ROWS,
    }
}

/// Checks a request before it is queued: the file and the options must be
/// readable (a 400 otherwise); returns the title.
pub fn check(p: &BatchParams) -> Result<String, ProductError> {
    let (_, parsed) = p.parse()?;
    Ok(format!(
        "Batch of {} positions{}{}",
        parsed.rows.len()
            + parsed
                .errors
                .iter()
                .map(|e| e.line)
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
        p.filename
            .as_deref()
            .map(|f| format!(" from {f}"))
            .unwrap_or_default(),
        if parsed.errors.is_empty() {
            String::new()
        } else {
            format!(" ({} malformed)", parsed.errors.len())
        }
    ))
}

/// One row's outcome in `summary.json`.
#[derive(Debug, Clone, Serialize)]
struct RowOutcome {
    index: usize,
    line: usize,
    name: Option<String>,
    ra: Option<f64>,
    dec: Option<f64>,
    slid: Option<i64>,
    sid: Option<i64>,
    xsize: f64,
    ysize: f64,
    status: String,
    error: Option<String>,
    files: Vec<String>,
    ms: f64,
}

/// Makes a batch job's files in `dir`; returns the summary stored with the
/// job and its log. `progress(done, total)` is told after every row.
pub async fn make(
    catalog: &Catalog,
    images: &FrameImages,
    job: &JobRecord,
    dir: &Path,
    progress: &(dyn Fn(usize, usize) + Sync),
    reserve: std::sync::Arc<dyn Fn(u64) -> Result<MemoryGrant, ProductError> + Send + Sync>,
) -> Result<(serde_json::Value, String), ProductError> {
    let t0 = Instant::now();
    let p: BatchParams = serde_json::from_value(job.params.clone())
        .map_err(|e| ProductError::Internal(format!("stored parameters unreadable: {e}")))?;
    let (job_opts, parsed) = p.parse()?;
    let mut log: Vec<String> = Vec::new();
    let say = |line: String, log: &mut Vec<String>| {
        log.push(format!("{}: {line}", super::log_time()));
    };
    say(
        format!(
            "{} rows to process, {} malformed lines",
            parsed.rows.len(),
            parsed.errors.len()
        ),
        &mut log,
    );
    for e in &parsed.errors {
        say(
            format!("line {}: {} (row skipped)", e.line, e.message),
            &mut log,
        );
    }
    let ctx = images;
    let mut outcomes: Vec<RowOutcome> = Vec::with_capacity(parsed.rows.len());
    let mut files: Vec<ManifestFile> = Vec::new();
    let total = parsed.rows.len();
    for (n, row) in parsed.rows.iter().enumerate() {
        let rt = Instant::now();
        let mut out = RowOutcome {
            index: row.index,
            line: row.line,
            name: row.name.clone(),
            ra: None,
            dec: None,
            slid: None,
            sid: None,
            xsize: 0.0,
            ysize: 0.0,
            status: "ok".into(),
            error: None,
            files: Vec::new(),
            ms: 0.0,
        };
        let resolved = match row.resolved(&job_opts) {
            Ok(r) => r,
            Err(e) => {
                out.status = "error".into();
                out.error = Some(e.to_string());
                say(format!("line {}: {e}", row.line), &mut log);
                outcomes.push(out);
                progress(n + 1, total);
                continue;
            }
        };
        out.xsize = resolved.xsize;
        out.ysize = resolved.ysize;
        let position = match row.target {
            Target::Sky { ra, dec } => Some((ra, dec)),
            Target::Source { slid, sid } => {
                out.slid = Some(slid);
                out.sid = Some(sid);
                match catalog.source(Slid(slid), Sid(sid)).await {
                    Ok(s) => Some((s.ra, s.dec)),
                    Err(_) => {
                        out.status = "error".into();
                        out.error = Some(format!("no such source: SID {sid} in SourceList {slid}"));
                        None
                    }
                }
            }
        };
        if let Some((ra, dec)) = position {
            out.ra = Some(ra);
            out.dec = Some(dec);
            let frames = covering(catalog, ra, dec, &resolved).await?;
            if frames.is_empty() {
                out.status = "unmatched".into();
                out.error = Some("no frame of the chosen classes and filters covers it".into());
            } else {
                let folder = format!(
                    "row{:05}{}",
                    row.index + 1,
                    row.name
                        .as_deref()
                        .map(|s| format!("_{}", safe(s)))
                        .unwrap_or_default()
                );
                let made = {
                    let ctx = ctx.clone();
                    let dir = dir.to_path_buf();
                    let resolved = resolved.clone();
                    let reserve = std::sync::Arc::clone(&reserve);
                    tokio::task::spawn_blocking(move || {
                        cut_row(&ctx, &dir, &folder, ra, dec, &resolved, &frames, &*reserve)
                    })
                    .await
                    .map_err(|e| ProductError::Internal(format!("cutout task: {e}")))?
                };
                for (f, problem) in made {
                    match (f, problem) {
                        (Some(f), _) => {
                            out.files.push(f.path.clone());
                            files.push(f);
                        }
                        (None, Some(p)) => {
                            say(format!("line {}: {p}", row.line), &mut log);
                            out.error.get_or_insert(p);
                        }
                        (None, None) => {}
                    }
                }
            }
        }
        if out.status != "ok" {
            say(
                format!(
                    "line {}: {}: {}",
                    row.line,
                    out.status,
                    out.error.as_deref().unwrap_or("")
                ),
                &mut log,
            );
        }
        out.ms = rt.elapsed().as_secs_f64() * 1000.0;
        outcomes.push(out);
        progress(n + 1, total);
    }
    // Outputs.
    let records: Vec<PositionRecord> = outcomes
        .iter()
        .map(|o| PositionRecord {
            index: o.index,
            line: o.line,
            name: o.name.clone(),
            ra: o.ra,
            dec: o.dec,
            slid: o.slid,
            sid: o.sid,
            xsize: o.xsize,
            ysize: o.ysize,
            status: o.status.clone(),
            files: o.files.len(),
        })
        .collect();
    let positions = positions_csv::write_positions_csv(&records);
    let positions_name = format!("positions_{}.csv", job.public_id);
    write_file(
        dir,
        &positions_name,
        positions.as_bytes(),
        "csv",
        "one line per processed row: target, sizes, status, file count".into(),
        &mut files,
    )?;
    let unmatched: Vec<&RowOutcome> = outcomes
        .iter()
        .filter(|o| o.status == "unmatched")
        .collect();
    let total_bytes: u64 = files.iter().map(|f| f.bytes).sum();
    let summary_file = json!({
        "job": job.public_id,
        "options": {
            "system_defaults": Options::system_defaults(),
            "job_layer": job_opts,
            "job": p.options,
            "default_classes": DEFAULT_CLASSES.iter().map(|c| c.name()).collect::<Vec<_>>(),
        },
        "columns": parsed.columns,
        "rows": outcomes,
        "malformed": parsed.errors.iter().map(|e| json!({"line": e.line, "message": e.message})).collect::<Vec<_>>(),
        "unmatched": unmatched.iter().map(|o| json!({"index": o.index, "line": o.line, "name": o.name, "ra": o.ra, "dec": o.dec})).collect::<Vec<_>>(),
        "timings": {
            "total_s": t0.elapsed().as_secs_f64(),
            "mean_row_ms": if outcomes.is_empty() { 0.0 } else { outcomes.iter().map(|o| o.ms).sum::<f64>() / outcomes.len() as f64 },
        },
        "sizes": {"files": files.len(), "bytes": total_bytes},
    });
    let summary_bytes = serde_json::to_vec_pretty(&summary_file)
        .map_err(|e| ProductError::Internal(e.to_string()))?;
    write_file(
        dir,
        "summary.json",
        &summary_bytes,
        "json",
        "options, per-row files, malformed and unmatched rows, timings, sizes".into(),
        &mut files,
    )?;
    say(
        format!(
            "{} rows: {} ok, {} unmatched, {} errors; {} files, {} bytes",
            outcomes.len(),
            outcomes.iter().filter(|o| o.status == "ok").count(),
            unmatched.len(),
            outcomes.iter().filter(|o| o.status == "error").count() + parsed.errors.len(),
            files.len() - 1,
            total_bytes
        ),
        &mut log,
    );
    let log_text = log.join("\n") + "\n";
    write_file(
        dir,
        "log.txt",
        log_text.as_bytes(),
        "log",
        "the job's log".into(),
        &mut files,
    )?;
    write_manifest(
        dir,
        json!({"job": job.public_id, "kind": job.kind, "title": job.title}),
        &files,
    )?;
    let summary = json!({
        "rows": outcomes.len(),
        "malformed": parsed.errors.len(),
        "unmatched": unmatched.len(),
        "files": files.len(),
        "bytes": total_bytes,
        "summary": "summary.json",
        "positions": positions_name,
    });
    Ok((summary, log_text))
}

/// A file-name-safe version of a user label.
fn safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect()
}

/// Frames of the row's classes and filters whose WCS puts the position on
/// the image, newest valid first within a class.
async fn covering(
    catalog: &crate::catalog::Catalog,
    ra: f64,
    dec: f64,
    r: &Resolved,
) -> Result<Vec<Frame>, ProductError> {
    let classes: Vec<FrameClass> = match &r.classes {
        None => DEFAULT_CLASSES.to_vec(),
        Some(list) => list
            .iter()
            .filter_map(|c| c.parse::<FrameClass>().ok())
            .collect(),
    };
    let mut out = Vec::new();
    for f in catalog.frames_covering(ra, dec, None, None).await? {
        if !classes.contains(&f.class) || f.target.is_valid <= 0 {
            continue;
        }
        if !f.filter.as_deref().is_some_and(|x| r.wants_filter(x)) && !r.filters.is_empty() {
            continue;
        }
        let on = f
            .wcs
            .as_ref()
            .and_then(|k| Wcs::new(k, f.naxis1.max(0) as usize, f.naxis2.max(0) as usize).ok())
            .and_then(|w| w.sky_to_pix(ra, dec))
            .is_some_and(|(x, y)| {
                (0.5..f64::from(f.naxis1) + 0.5).contains(&x)
                    && (0.5..f64::from(f.naxis2) + 0.5).contains(&y)
            });
        if on {
            out.push(f);
        }
    }
    out.sort_by_key(|f| {
        (
            FrameClass::ALL.iter().position(|c| *c == f.class),
            f.filter.clone(),
            std::cmp::Reverse(f.target.creation_date),
        )
    });
    Ok(out)
}

/// Cuts one row: per frame FITS and/or PNG, then the colour images. Returns
/// (file, problem) pairs.
fn cut_row(
    ctx: &FrameImages,
    dir: &Path,
    folder: &str,
    ra: f64,
    dec: f64,
    r: &Resolved,
    frames: &[Frame],
    reserve: &dyn Fn(u64) -> Result<MemoryGrant, ProductError>,
) -> Vec<(Option<ManifestFile>, Option<String>)> {
    let mut out = Vec::new();
    let write = |rel: String, bytes: &[u8], kind: &str, description: String| {
        let mut written = Vec::with_capacity(1);
        match write_file(dir, &rel, bytes, kind, description, &mut written) {
            Ok(()) => (written.pop(), None),
            Err(e) => (None, Some(format!("writing {rel}: {e}"))),
        }
    };
    let size = Size {
        width: r.xsize,
        height: r.ysize,
        unit: SizeUnit::Arcmin,
    };
    if r.make_fits || r.make_png {
        for f in frames {
            let spec = CutoutSpec {
                center: Center::Sky { ra, dec },
                size,
                raw_values: false,
                max_side: ctx.max_side,
            };
            let made = ctx.cut_reserved(f, &spec, reserve);
            let (c, _grant) = match made {
                Ok(c) => c,
                Err(e) => {
                    out.push((None, Some(e.to_string())));
                    continue;
                }
            };
            let stem = f.filename.trim_end_matches(".fz").trim_end_matches(".fits");
            let base = format!("{folder}/{}_{stem}", f.class.short());
            let what = format!("{} {} around {ra:.6} {dec:+.6}", f.class.name(), f.filename);
            if r.make_fits {
                match c.to_fits() {
                    Ok(b) => out.push(write(format!("{base}.fits"), &b, "fits", what.clone())),
                    Err(e) => out.push((None, Some(format!("{}: {e}", f.filename)))),
                }
            }
            if r.make_png {
                let params = RenderParams {
                    stretch: Stretch::Asinh,
                    interval: Interval::ZScale,
                    ..RenderParams::default()
                };
                match render::render(&c.into_image_f32(), &params)
                    .and_then(|x| render::encode(&x, OutputFormat::Png8))
                {
                    Ok(b) => out.push(write(format!("{base}.png"), &b, "png", what)),
                    Err(e) => out.push((None, Some(format!("{}: PNG: {e}", f.filename)))),
                }
            }
        }
    }
    for (wanted, method) in [(r.make_rgb_lupton, "lupton"), (r.make_rgb_stiff, "stiff")] {
        if !wanted {
            continue;
        }
        // One frame per colour: the first covering frame of that filter.
        let pick: Vec<Option<&Frame>> = r
            .rgb_colors
            .iter()
            .map(|band| {
                frames
                    .iter()
                    .find(|f| f.filter.as_deref() == Some(band.as_str()))
            })
            .collect();
        let (Some(red), Some(green), Some(blue)) = (pick[0], pick[1], pick[2]) else {
            out.push((
                None,
                Some(format!(
                    "{method} RGB: no covering frame in each of the filters {}",
                    r.rgb_colors.join(",")
                )),
            ));
            continue;
        };
        let params = RgbParams {
            red: Some(red.target.object_id.to_string()),
            green: Some(green.target.object_id.to_string()),
            blue: Some(blue.target.object_id.to_string()),
            ra: Some(ra.to_string()),
            dec: Some(dec.to_string()),
            size: Some(r.xsize.max(r.ysize)),
            unit: Some("arcmin".into()),
            method: Some(method.into()),
            minimum: Some(r.rgb_minimum),
            stretch: Some(r.rgb_stretch),
            q: Some(r.rgb_q),
            ..RgbParams::default()
        };
        let frames3 = [red.clone(), green.clone(), blue.clone()];
        match picture(ctx, &params, &frames3, reserve) {
            Ok(p) => out.push(write(
                format!("{folder}/rgb_{method}.{}", p.ext),
                &p.bytes,
                if p.ext == "png" { "png" } else { "jpeg" },
                format!(
                    "{method} RGB ({}) around {ra:.6} {dec:+.6}",
                    r.rgb_colors.join(",")
                ),
            )),
            Err(e) => out.push((None, Some(format!("{method} RGB: {e}")))),
        }
    }
    out
}
