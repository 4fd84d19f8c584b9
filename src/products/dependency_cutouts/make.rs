//! Making the files of a dependency-cutout request: one FITS and one PNG per
//! (source, frame, position), a pipeline GIF and an epoch GIF per source,
//! and `manifest.json`; all under one result directory.
//!
//! Cutouts are made in parallel (rayon) on the calling (blocking) thread.
//! Each distinct (frame, position, size) is cut once even when several
//! sources share it, and its pixels are kept in memory for the GIFs, so no
//! file is read back.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;

use super::placement::Placement;
use super::{CellCutout, DepRequest, DepResult, DepRow, GIF_CLASSES, ListRef, PlannedSource};
use crate::imaging::anim::{self, GifOptions};
use crate::imaging::cutout::{CutoutSpec, SizeUnit};
use crate::imaging::raster::Raster;
use crate::imaging::render::{self, Interval, OutputFormat, RenderParams};
use crate::products::ProductError;
use crate::products::budget::MemoryGrant;
use crate::products::frames::FrameImages;
use crate::products::result_files::{ManifestFile, write_file};

/// A distinct cutout to make.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CutKey {
    frame: i64,
    x: i64,
    y: i64,
    w: usize,
    h: usize,
}

/// A made cutout.
struct Made {
    fits: Vec<u8>,
    image: Raster<f32>,
    x0: i64,
    y0: i64,
}

/// The side in pixels of `placement`'s frame for the request's size: the
/// same patch of sky on every frame (a pixel size is taken in pixels of the
/// source's own frame, `root_scale`).
fn side_px(req: &DepRequest, root_scale: Option<f64>, p: &Placement) -> Result<usize, String> {
    let arcsec = match req.unit {
        SizeUnit::Pixel => root_scale.map(|s| req.size * s),
        SizeUnit::Arcsec => Some(req.size),
        SizeUnit::Arcmin => Some(req.size * 60.0),
        SizeUnit::Degree => Some(req.size * 3600.0),
    };
    let px = match (arcsec, p.scale) {
        (Some(a), Some(s)) => (a / s).round(),
        (None, _) => req.size.round(),
        (Some(_), None) => {
            return Err(format!(
                "{} has no pixel scale to convert an angular size",
                p.frame.frame.filename
            ));
        }
    };
    let px = px.max(1.0) as usize;
    if px > super::MAX_SIDE_PX {
        return Err(format!(
            "{px} px on {} is more than the {} px allowed",
            p.frame.frame.filename,
            super::MAX_SIDE_PX
        ));
    }
    Ok(px)
}

fn cut_key(p: &Placement, side: usize) -> CutKey {
    CutKey {
        frame: p.frame.frame.target.object_id.0,
        x: (p.x * 1000.0).round() as i64,
        y: (p.y * 1000.0).round() as i64,
        w: side,
        h: side,
    }
}

fn make_one(ctx: &FrameImages, p: &Placement, side: usize) -> Result<Made, String> {
    let f = &p.frame.frame;
    let c = ctx
        .cut(f, &CutoutSpec::pixel_box(p.x, p.y, side, side))
        .map_err(|e| e.to_string())?;
    let fits = c.to_fits().map_err(|e| format!("{}: {e}", f.filename))?;
    let (x0, y0) = (c.geometry.x0, c.geometry.y0);
    Ok(Made {
        fits,
        image: c.into_image_f32(),
        x0,
        y0,
    })
}

/// Renders with `interval` (or with fixed limits), 8-bit.
fn render_with(
    img: &Raster<f32>,
    req: &DepRequest,
    interval: Interval,
) -> Result<render::Rendered, String> {
    let params = RenderParams {
        stretch: req.stretch,
        interval: readable(interval, &img.data),
        ..RenderParams::default()
    };
    render::render(img, &params).map_err(|e| e.to_string())
}

/// `interval`, unless its limits collapse to one value on `data` — zscale
/// of a hot- or cold-pixel map (ones with a few zeros) or of a constant
/// illumination correction, which would draw a black square that reads as
/// "no data": then the full range, and a constant as mid-grey.
fn readable(interval: Interval, data: &[f32]) -> Interval {
    match render::limits(&interval, data) {
        Ok((lo, hi)) if lo < hi => interval,
        _ => match render::limits(&Interval::MinMax, data) {
            Ok((lo, hi)) if lo < hi => Interval::Manual { min: lo, max: hi },
            Ok((v, _)) => Interval::Manual {
                min: v - 1.0,
                max: v + 1.0,
            },
            Err(_) => interval,
        },
    }
}

fn stem(filename: &str) -> &str {
    filename
        .strip_suffix(".fits.fz")
        .or_else(|| filename.strip_suffix(".fits"))
        .or_else(|| filename.strip_suffix(".fz"))
        .unwrap_or(filename)
}

/// Cuts, renders and writes everything for `planned` into `dir` (which must
/// exist and be empty), calling `progress(done, total)` after each source.
/// Returns the result and the manifest entries (not yet written: the caller
/// adds its own files and then calls [`write_manifest`]).
///
/// Sources are made one after the other and their pixels dropped once
/// written, so the memory a request takes depends on its largest source,
/// not on how many sources it asks for; `reserve(bytes)` is called before
/// each source with that source's estimated peak and holds the returned
/// grant while it is made.
pub fn make(
    ctx: &FrameImages,
    req: &DepRequest,
    planned: &[PlannedSource],
    dir: &Path,
    progress: &(dyn Fn(usize, usize) + Sync),
    reserve: &(dyn Fn(u64) -> Result<MemoryGrant, ProductError> + Sync),
) -> Result<(DepResult, Vec<ManifestFile>), ProductError> {
    let t0 = Instant::now();
    let mut files = Vec::new();
    let mut rows = Vec::with_capacity(planned.len());
    let total = planned.len();
    for (i, ps) in planned.iter().enumerate() {
        // This source's distinct cutouts, with its epoch sequence.
        let root_scale = ps.root_scale;
        let mut todo: HashMap<CutKey, (Placement, usize)> = HashMap::new();
        let mut one = |list: &[Placement]| -> Vec<Result<usize, String>> {
            list.iter()
                .map(|p| {
                    let side = side_px(req, root_scale, p)?;
                    todo.entry(cut_key(p, side))
                        .or_insert_with(|| (p.clone(), side));
                    Ok(side)
                })
                .collect()
        };
        let sides = one(&ps.placements);
        let epoch_sides = one(&ps.epochs);
        // FITS bytes and f32 pixels of every cutout, plus a picture each.
        let cost: u64 = todo
            .values()
            .map(|(_, s)| (*s as u64).pow(2) * 16)
            .sum::<u64>()
            .max(1);
        let _grant = reserve(cost)?;
        let jobs: Vec<(CutKey, Placement, usize)> =
            todo.into_iter().map(|(k, (p, s))| (k, p, s)).collect();
        let made: HashMap<CutKey, Arc<Result<Made, String>>> = jobs
            .par_iter()
            .map(|(k, p, side)| (k.clone(), Arc::new(make_one(ctx, p, *side))))
            .collect();
        rows.push(write_source(
            req,
            ps,
            &sides,
            &epoch_sides,
            &made,
            dir,
            &mut files,
        )?);
        progress(i + 1, total);
    }
    let bytes = files.iter().map(|f| f.bytes).sum();
    let result = DepResult {
        list: match req.list {
            ListRef::Sources(s) => format!("SourceList {s}"),
            ListRef::Associations(a) => format!("AssociateList {a}"),
        },
        ids: crate::params::id_ranges::format_ids(&req.ids),
        classes: req.classes.iter().map(|c| c.name().to_owned()).collect(),
        rows,
        files: files.len(),
        bytes,
        make_ms: t0.elapsed().as_secs_f64() * 1000.0,
    };
    Ok((result, files))
}

fn write_source(
    req: &DepRequest,
    ps: &PlannedSource,
    sides: &[Result<usize, String>],
    epoch_sides: &[Result<usize, String>],
    made: &HashMap<CutKey, Arc<Result<Made, String>>>,
    dir: &Path,
    files: &mut Vec<ManifestFile>,
) -> std::io::Result<DepRow> {
    let folder = match ps.aid {
        Some(a) if ps.sid.0 < 0 => format!("aid{a}"),
        Some(a) => format!("aid{a}_slid{}_sid{}", ps.slid, ps.sid),
        None => format!("slid{}_sid{}", ps.slid, ps.sid),
    };
    let mut cells: Vec<Vec<CellCutout>> = vec![Vec::new(); req.classes.len()];
    // Two placements on one frame less than a pixel apart would get one
    // name; later ones get a suffix so no file is overwritten.
    let mut used: std::collections::HashSet<String> = std::collections::HashSet::new();
    // Pipeline GIF frames: the first cutout of each GIF class the product
    // was directly made with (placements come direct first); a frame that
    // only entered through another calibration product never stands for
    // its class.
    let mut gif_frames: Vec<(usize, i64, anim::Frame)> = Vec::new();
    for (p, side) in ps.placements.iter().zip(sides) {
        let f = &p.frame.frame;
        let Some(col) = req.classes.iter().position(|c| *c == f.class) else {
            continue;
        };
        let mut cell = CellCutout {
            frame_id: f.target.object_id.0,
            filename: f.filename.clone(),
            class: f.class.name().to_owned(),
            via: p.via.as_ref().map(|v| v.frame.target.object_id.0),
            via_class: p.via.as_ref().map(|v| v.frame.class.name().to_owned()),
            via_filename: p.via.as_ref().map(|v| v.frame.filename.clone()),
            role: p.role.clone(),
            indirect: p.indirect(),
            x: p.x,
            y: p.y,
            date: f.date_obs.map(|d| d.format("%Y-%m-%d %H:%M").to_string()),
            fits: None,
            png: None,
            error: None,
            restricted: false,
        };
        let outcome = side.as_ref().map_err(Clone::clone).and_then(|s| {
            match made.get(&cut_key(p, *s)).map(|m| m.as_ref()) {
                Some(Ok(m)) => Ok(m),
                Some(Err(e)) => Err(e.clone()),
                None => Err("not made".to_owned()),
            }
        });
        match outcome {
            Err(e) => cell.error = Some(e),
            Ok(m) => {
                let base = format!(
                    "{folder}/{}_{}_x{}_y{}",
                    f.class.short(),
                    stem(&f.filename),
                    m.x0 + 1,
                    m.y0 + 1
                );
                let mut name = base.clone();
                let mut n = 1;
                while !used.insert(name.clone()) {
                    n += 1;
                    name = format!("{base}_{n}");
                }
                let what = format!(
                    "SLID {} SID {} on {} {} at ({:.2}, {:.2})",
                    ps.slid,
                    ps.sid,
                    f.class.name(),
                    f.filename,
                    p.x,
                    p.y
                );
                write_file(
                    dir,
                    &format!("{name}.fits"),
                    &m.fits,
                    "fits",
                    what.clone(),
                    files,
                )?;
                cell.fits = Some(format!("{name}.fits"));
                match render_with(&m.image, req, req.interval).and_then(|r| {
                    render::encode(&r, OutputFormat::Png8)
                        .map(|b| (r, b))
                        .map_err(|e| e.to_string())
                }) {
                    Ok((rendered, png)) => {
                        write_file(dir, &format!("{name}.png"), &png, "png", what, files)?;
                        cell.png = Some(format!("{name}.png"));
                        if GIF_CLASSES.contains(&f.class)
                            && !cell.indirect
                            && !gif_frames.iter().any(|(c, _, _)| *c == col)
                        {
                            gif_frames.push((
                                col,
                                cell.frame_id,
                                anim::Frame {
                                    width: rendered.width(),
                                    height: rendered.height(),
                                    gray: render::to_gray8(&rendered),
                                    label: format!("{} {}", f.class.short(), stem(&f.filename)),
                                },
                            ));
                        }
                    }
                    Err(e) => cell.error = Some(format!("PNG: {e}")),
                }
            }
        }
        cells[col].push(cell);
    }
    // Frames the requester may not see: their class in their cell, after
    // what it may see, and nothing else (no pixels, file or position).
    for r in &ps.restricted {
        let Some(col) = req.classes.iter().position(|c| *c == r.class) else {
            continue;
        };
        cells[col].push(CellCutout {
            frame_id: r.placeholder.0,
            filename: String::new(),
            class: r.class.name().to_owned(),
            via: Some(r.via.frame.target.object_id.0),
            via_class: Some(r.via.frame.class.name().to_owned()),
            via_filename: Some(r.via.frame.filename.clone()),
            role: r.role.clone(),
            indirect: false,
            x: 0.0,
            y: 0.0,
            date: None,
            fits: None,
            png: None,
            error: None,
            restricted: true,
        });
    }
    let opts = GifOptions::default();
    let mut row = DepRow {
        slid: ps.slid.0,
        sid: ps.sid.0,
        aid: ps.aid.map(|a| a.0),
        ra: ps.source.as_ref().map(|s| s.ra),
        dec: ps.source.as_ref().map(|s| s.dec),
        x: ps.source.as_ref().map(|s| s.x),
        y: ps.source.as_ref().map(|s| s.y),
        error: ps.error.clone(),
        cells,
        pipeline_gif: None,
        pipeline_frames: 0,
        pipeline_ids: Vec::new(),
        epochs_gif: None,
        epoch_frames: 0,
    };
    if !gif_frames.is_empty() {
        gif_frames.sort_by_key(|(c, _, _)| *c);
        row.pipeline_ids = gif_frames.iter().map(|(_, id, _)| *id).collect();
        let frames: Vec<anim::Frame> = gif_frames.into_iter().map(|(_, _, f)| f).collect();
        let gif = anim::animated_gif(&frames, &opts).map_err(std::io::Error::other)?;
        let rel = format!("{folder}/pipeline.gif");
        let what = format!(
            "SLID {} SID {} through the pipeline ({} frames)",
            ps.slid,
            ps.sid,
            frames.len()
        );
        write_file(dir, &rel, &gif, "gif", what, files)?;
        row.pipeline_gif = Some(rel);
        row.pipeline_frames = frames.len();
    }
    // Epoch GIF: the cutouts in date order, with one set of limits when asked.
    let epoch_images: Vec<(&Placement, &Made)> = ps
        .epochs
        .iter()
        .zip(epoch_sides)
        .filter_map(|(p, s)| {
            let s = s.as_ref().ok()?;
            match made.get(&cut_key(p, *s))?.as_ref() {
                Ok(m) => Some((p, m)),
                Err(_) => None,
            }
        })
        .collect();
    if !epoch_images.is_empty() {
        let interval = if req.same_stretch {
            let all: Vec<f32> = epoch_images
                .iter()
                .flat_map(|(_, m)| m.image.data.iter().copied())
                .collect();
            match render::limits(&req.interval, &all) {
                Ok((min, max)) => Interval::Manual { min, max },
                Err(_) => req.interval,
            }
        } else {
            req.interval
        };
        let mut frames = Vec::new();
        for (p, m) in &epoch_images {
            let f = &p.frame.frame;
            if let Ok(r) = render_with(&m.image, req, interval) {
                let date = f
                    .date_obs
                    .map(|d| d.format("%Y-%m-%d").to_string())
                    .unwrap_or_else(|| "no date".into());
                frames.push(anim::Frame {
                    width: r.width(),
                    height: r.height(),
                    gray: render::to_gray8(&r),
                    label: format!(
                        "{date} {} {}",
                        f.filter.as_deref().unwrap_or(""),
                        f.chip.as_deref().unwrap_or("")
                    ),
                });
            }
        }
        if !frames.is_empty() {
            let gif = anim::animated_gif(&frames, &opts).map_err(std::io::Error::other)?;
            let rel = format!("{folder}/epochs.gif");
            let what = format!(
                "SLID {} SID {} across {} epochs{}",
                ps.slid,
                ps.sid,
                frames.len(),
                if req.same_stretch {
                    ", one stretch"
                } else {
                    ""
                }
            );
            write_file(dir, &rel, &gif, "gif", what, files)?;
            row.epochs_gif = Some(rel);
            row.epoch_frames = frames.len();
        }
    }
    Ok(row)
}
