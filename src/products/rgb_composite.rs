//! The RGB maker: three frames → a pseudo-colour picture of a region or of a
//! whole frame, by Lupton et al.'s asinh mapping (astropy's
//! `make_lupton_rgb`), a STIFF-like mapping, or plain per-band linear.
//!
//! The frames are given by object id or file name, or as a grid target (the
//! frames' `OBJECT`) plus three filters (red, green, blue) of one class.
//!
//! **Frames not on one pixel grid are reprojected** onto the first (red)
//! frame's grid by bilinear interpolation through their WCSs: what a user
//! wants from three exposures of one field is a picture, and refusing would
//! only push the same resampling onto them. Flux is not conserved (display
//! only), and the result says which bands were reprojected. Frames without a
//! sky WCS can only be combined when their grids are identical (same size);
//! otherwise the request is refused naming the difference.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ProductError;
use crate::catalog::Catalog;
use crate::catalog::job_records::JobKind;
use crate::imaging::color::{self, LinearParams, LuptonParams, StiffParams};
use crate::imaging::cutout::{self, Center, CutoutSpec, Size, SizeUnit};
use crate::imaging::raster::Raster;
use crate::imaging::wcs::Wcs;
use crate::model::{Frame, FrameClass};
use crate::params::{ParamError, angle};
use crate::products::budget::MemoryGrant;
use crate::products::frames::{FrameImages, FrameKey};
use crate::products::result_files::{write_file, write_manifest};

/// The request as users write it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RgbParams {
    /// Red frame: object id or file name.
    pub red: Option<String>,
    /// Green frame.
    pub green: Option<String>,
    /// Blue frame.
    pub blue: Option<String>,
    /// Grid target (`OBJECT`), instead of three frames.
    pub target: Option<String>,
    /// Filters for red, green, blue with `target`: `i,r,g`.
    pub filters: Option<String>,
    /// Frame class with `target` (default CoaddedRegriddedFrame).
    pub class: Option<String>,
    /// Region centre RA (degrees or sexagesimal); absent = whole frame.
    pub ra: Option<String>,
    /// Region centre Dec.
    pub dec: Option<String>,
    /// Region side.
    pub size: Option<f64>,
    /// Its unit: px, arcsec (default), arcmin, deg.
    pub unit: Option<String>,
    /// `lupton` (default), `stiff` or `linear`.
    pub method: Option<String>,
    /// Lupton: minimum (all bands).
    pub minimum: Option<f64>,
    /// Lupton: stretch.
    pub stretch: Option<f64>,
    /// Lupton: Q.
    pub q: Option<f64>,
    /// STIFF: quantile of the maximum.
    pub max_quantile: Option<f64>,
    /// STIFF: display gamma.
    pub gamma: Option<f64>,
    /// STIFF: colour saturation.
    pub saturation: Option<f64>,
    /// Linear: percentile kept per band.
    pub percentile: Option<f64>,
    /// `png` (default) or `jpeg`.
    pub format: Option<String>,
}

/// The colour mapping.
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    /// astropy `make_lupton_rgb`.
    Lupton(LuptonParams),
    /// STIFF-like.
    Stiff(StiffParams),
    /// Per-band linear.
    Linear(LinearParams),
}

impl Method {
    fn name(&self) -> &'static str {
        match self {
            Method::Lupton(_) => "lupton",
            Method::Stiff(_) => "stiff",
            Method::Linear(_) => "linear",
        }
    }

    /// The method with the parameters it uses (defaults included), for
    /// captions: `lupton Q 8, stretch 5, minimum 0`.
    pub fn describe(&self) -> String {
        match self {
            Method::Lupton(p) => format!(
                "lupton Q {}, stretch {}, minimum {}",
                p.q, p.stretch, p.minimum[0]
            ),
            Method::Stiff(p) => format!(
                "stiff max quantile {}, gamma {}, saturation {}",
                p.max_quantile, p.gamma, p.saturation
            ),
            Method::Linear(p) => format!("linear percentile {}", p.percentile),
        }
    }
}

fn bad(param: &'static str, message: impl Into<String>) -> ProductError {
    ParamError::new(param, message).into()
}

fn f32_param(v: Option<f64>, name: &'static str) -> Result<Option<f32>, ProductError> {
    match v {
        None => Ok(None),
        Some(x) if x.is_finite() => Ok(Some(x as f32)),
        Some(_) => Err(bad(name, "must be a finite number")),
    }
}

impl RgbParams {
    /// Checks the mapping parameters.
    pub fn method(&self) -> Result<Method, ProductError> {
        let m = self
            .method
            .as_deref()
            .unwrap_or("lupton")
            .trim()
            .to_ascii_lowercase();
        let mapped = |e: color::RgbError, param: &'static str| bad(param, e.to_string());
        match m.as_str() {
            "lupton" | "" => {
                let d = LuptonParams::default();
                let min = f32_param(self.minimum, "minimum")?.unwrap_or(d.minimum[0]);
                let p = LuptonParams {
                    minimum: [min; 3],
                    stretch: f32_param(self.stretch, "stretch")?.unwrap_or(d.stretch),
                    q: f32_param(self.q, "q")?.unwrap_or(d.q),
                };
                p.validate().map_err(|e| mapped(e, "stretch"))?;
                Ok(Method::Lupton(p))
            }
            "stiff" => {
                let d = StiffParams::default();
                let p = StiffParams {
                    max_quantile: f32_param(self.max_quantile, "max_quantile")?
                        .unwrap_or(d.max_quantile),
                    gamma: f32_param(self.gamma, "gamma")?.unwrap_or(d.gamma),
                    saturation: f32_param(self.saturation, "saturation")?.unwrap_or(d.saturation),
                    ..d
                };
                p.validate().map_err(|e| mapped(e, "method"))?;
                Ok(Method::Stiff(p))
            }
            "linear" => {
                let d = LinearParams::default();
                let p = LinearParams {
                    percentile: f32_param(self.percentile, "percentile")?.unwrap_or(d.percentile),
                    ..d
                };
                p.validate().map_err(|e| mapped(e, "percentile"))?;
                Ok(Method::Linear(p))
            }
            other => Err(bad(
                "method",
                format!("`{other}` is not a colour mapping; allowed: lupton, stiff, linear"),
            )),
        }
    }

    /// Output format: `(extension, jpeg?)`.
    fn format(&self) -> Result<&'static str, ProductError> {
        match self
            .format
            .as_deref()
            .map(|s| s.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("") | Some("png") => Ok("png"),
            Some("jpeg") | Some("jpg") => Ok("jpg"),
            Some(o) => Err(bad("format", format!("`{o}` is not one of png, jpeg"))),
        }
    }

    /// The region: `None` for the whole frame, else (ra, dec, size).
    fn region(&self) -> Result<Option<(f64, f64, Size)>, ProductError> {
        match (given(&self.ra), given(&self.dec)) {
            (None, None) => Ok(None),
            (Some(ra), Some(dec)) => {
                let ra = angle::ra("ra", ra)?;
                let dec = angle::dec("dec", dec)?;
                let unit = match given(&self.unit) {
                    None => SizeUnit::Arcsec,
                    Some(u) => SizeUnit::parse(u).ok_or_else(|| {
                        bad(
                            "unit",
                            format!("`{u}` is not one of px, arcsec, arcmin, deg"),
                        )
                    })?,
                };
                let side = self
                    .size
                    .unwrap_or(if unit == SizeUnit::Pixel { 256.0 } else { 60.0 });
                if !(side.is_finite() && side > 0.0) {
                    return Err(bad("size", "must be a number greater than 0"));
                }
                Ok(Some((
                    ra,
                    dec,
                    Size {
                        width: side,
                        height: side,
                        unit,
                    },
                )))
            }
            (Some(_), None) => Err(bad("dec", "missing: a region needs both ra and dec")),
            (None, Some(_)) => Err(bad("ra", "missing: a region needs both ra and dec")),
        }
    }

    /// Checks everything that needs no database; returns a title.
    pub fn validate(&self) -> Result<String, ProductError> {
        let method = self.method()?;
        self.format()?;
        let region = self.region()?;
        let frames = match (&self.red, &self.green, &self.blue, &self.target) {
            (Some(r), Some(g), Some(b), None) => format!("{r} / {g} / {b}"),
            (None, None, None, Some(t)) => {
                let f = self.filter_list()?;
                format!("{t} {}", f.join(""))
            }
            _ => {
                return Err(bad(
                    "red",
                    "give three frames (red, green, blue: object ids or file names), or a \
                     target with three filters",
                ));
            }
        };
        let what = match region {
            None => "whole frame".to_owned(),
            Some((ra, dec, s)) => format!("{ra:.5} {dec:+.5}, {} {}", s.width, s.unit.name()),
        };
        Ok(format!("RGB ({}) {frames}, {what}", method.name()))
    }

    fn filter_list(&self) -> Result<Vec<String>, ProductError> {
        let text = self.filters.as_deref().unwrap_or("").trim();
        let parts: Vec<String> = if text.contains([',', ' ']) {
            text.split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        } else {
            text.chars().map(String::from).collect()
        };
        if parts.len() != 3 {
            return Err(bad(
                "filters",
                format!("`{text}` must name three filters for red, green, blue, such as i,r,g"),
            ));
        }
        Ok(parts)
    }

    /// The three frames, red first; unknown ones are a 404. A target whose
    /// class has more than one product in a filter (24 RegriddedFrames,
    /// one per chip and exposure) is a 400 listing them: picking one
    /// silently would show a picture of a frame nobody chose.
    pub async fn frames(&self, catalog: &Catalog) -> Result<[Frame; 3], ProductError> {
        async fn one(catalog: &Catalog, key: &str) -> Result<Frame, ProductError> {
            super::frames::frame_by_key(catalog, &FrameKey::parse(key)?).await
        }
        if let (Some(r), Some(g), Some(b)) = (&self.red, &self.green, &self.blue) {
            return Ok([
                one(catalog, r).await?,
                one(catalog, g).await?,
                one(catalog, b).await?,
            ]);
        }
        let (class, bands) = self.target_candidates(catalog).await?;
        let target = self.target.as_deref().unwrap_or("").trim();
        let mut out = Vec::with_capacity(3);
        for (filter, candidates) in bands {
            match candidates.as_slice() {
                [] => {
                    return Err(crate::catalog::CatalogError::NotFound {
                        what: "frame",
                        id: format!("{} of target {target} in filter {filter}", class.name()),
                    }
                    .into());
                }
                [one] => out.push(one.clone()),
                many => {
                    let ids: Vec<String> = many
                        .iter()
                        .map(|f| f.target.object_id.to_string())
                        .collect();
                    return Err(bad(
                        "class",
                        format!(
                            "target {target} has {} {}s in filter {filter} (ids {}): choose one \
                             per band and give them as red, green and blue, or use a class with \
                             one product per filter (CoaddedRegriddedFrame)",
                            many.len(),
                            class.name(),
                            ids.join(", ")
                        ),
                    ));
                }
            }
        }
        let [r, g, b]: [Frame; 3] = out
            .try_into()
            .map_err(|_| ProductError::Internal("three filters expected".into()))?;
        Ok([r, g, b])
    }

    /// The class asked for with `target` (CoaddedRegriddedFrame when none).
    pub fn target_class(&self) -> Result<FrameClass, ProductError> {
        match given(&self.class) {
            None => Ok(FrameClass::CoaddedRegriddedFrame),
            Some(c) => c
                .parse::<FrameClass>()
                .map_err(|e| bad("class", e.to_string())),
        }
    }

    /// For a target request, the class and, per band (red, green, blue),
    /// the filter and the distinct valid products of that class, target and
    /// filter, in object-id order. Versions of one product (same chip and
    /// exposure time stamp) are one candidate: the newest valid one, since a
    /// newer product supersedes an older one.
    pub async fn target_candidates(
        &self,
        catalog: &Catalog,
    ) -> Result<(FrameClass, Vec<(String, Vec<Frame>)>), ProductError> {
        let target = self.target.as_deref().unwrap_or("").trim().to_owned();
        let class = self.target_class()?;
        let all = catalog.frames_of_class(class).await?;
        let mut bands = Vec::with_capacity(3);
        for f in self.filter_list()? {
            let mut newest: std::collections::BTreeMap<(Option<String>, Option<u64>), &Frame> =
                std::collections::BTreeMap::new();
            for fr in all
                .iter()
                .filter(|fr| fr.object.as_deref() == Some(target.as_str()))
                .filter(|fr| fr.filter.as_deref() == Some(f.as_str()))
                .filter(|fr| fr.target.is_valid > 0)
            {
                let key = (fr.chip.clone(), fr.mjd_obs.map(f64::to_bits));
                let slot = newest.entry(key).or_insert(fr);
                if fr.target.creation_date > slot.target.creation_date {
                    *slot = fr;
                }
            }
            let mut candidates: Vec<Frame> = newest.into_values().cloned().collect();
            candidates.sort_by_key(|fr| fr.target.object_id);
            bands.push((f, candidates));
        }
        Ok((class, bands))
    }

    /// The caption of a picture made of `frames`: method and its
    /// parameters, the frames' class and filters (red, green, blue), the
    /// target or the frame ids, and the region. Shown in the jobs list and
    /// the gallery, where "RGB 281 / 282 / 283" said nothing.
    pub fn caption(&self, frames: &[Frame; 3]) -> Result<String, ProductError> {
        let method = self.method()?;
        let mut classes: Vec<&str> = frames.iter().map(|f| f.class.name()).collect();
        classes.dedup();
        let filters: Vec<&str> = frames
            .iter()
            .map(|f| f.filter.as_deref().unwrap_or("?"))
            .collect();
        let source = match given(&self.target) {
            Some(t) => t.to_owned(),
            None => frames
                .iter()
                .map(|f| f.target.object_id.to_string())
                .collect::<Vec<_>>()
                .join("/"),
        };
        let region = match self.region()? {
            None => "whole frame".to_owned(),
            Some((ra, dec, s)) => format!("{ra:.5} {dec:+.5}, {} {}", s.width, s.unit.name()),
        };
        Ok(format!(
            "RGB {} · {} {} · {source} · {region}",
            method.describe(),
            classes.join("/"),
            filters.join(","),
        ))
    }
}

/// A parameter's text when given and not blank.
fn given(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Whether two frames share a pixel grid (size and WCS).
fn same_grid(a: &Frame, b: &Frame) -> bool {
    if (a.naxis1, a.naxis2) != (b.naxis1, b.naxis2) {
        return false;
    }
    match (&a.wcs, &b.wcs) {
        (Some(x), Some(y)) => {
            let close = |p: f64, q: f64, tol: f64| (p - q).abs() <= tol;
            x.ctype1 == y.ctype1
                && x.ctype2 == y.ctype2
                && close(x.crpix1, y.crpix1, 1e-6)
                && close(x.crpix2, y.crpix2, 1e-6)
                && close(x.crval1, y.crval1, 1e-9)
                && close(x.crval2, y.crval2, 1e-9)
                && (0..2).all(|i| (0..2).all(|j| close(x.cd[i][j], y.cd[i][j], 1e-12)))
                && x.sip == y.sip
        }
        (None, None) => true,
        _ => false,
    }
}

/// A made RGB job result: its summary and log lines.
pub type Made = (serde_json::Value, Vec<String>);

/// A made picture: encoded bytes, file extension, summary, log lines.
pub struct Picture {
    /// PNG or JPEG bytes.
    pub bytes: Vec<u8>,
    /// `png` or `jpg`.
    pub ext: &'static str,
    /// What was made, for summaries.
    pub summary: serde_json::Value,
    /// Log lines (reprojections).
    pub log: Vec<String>,
}

/// Makes the picture of `params` from `frames` and writes it, with its
/// manifest, into `dir`; returns the summary and log lines of job `job`.
pub fn make(
    ctx: &FrameImages,
    params: &RgbParams,
    frames: &[Frame; 3],
    dir: &Path,
    job: &str,
    reserve: &dyn Fn(u64) -> Result<MemoryGrant, ProductError>,
) -> Result<Made, ProductError> {
    let Picture {
        bytes,
        ext,
        summary,
        mut log,
    } = picture(ctx, params, frames, reserve)?;
    let name = format!("rgb.{ext}");
    let mut summary = summary;
    summary["image"] = json!(name);
    let mut files = Vec::with_capacity(1);
    write_file(
        dir,
        &name,
        &bytes,
        if ext == "png" { "png" } else { "jpeg" },
        format!(
            "{} RGB of {}",
            summary["method"].as_str().unwrap_or(""),
            frames
                .iter()
                .map(|f| f.filename.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        &mut files,
    )?;
    write_manifest(
        dir,
        json!({"job": job, "kind": JobKind::Rgb, "request": params, "result": summary}),
        &files,
    )?;
    log.push(format!(
        "made {name}: {}×{} px ({} bytes)",
        summary["width"],
        summary["height"],
        bytes.len()
    ));
    Ok((summary, log))
}

/// Makes the picture of `params` from `frames` (red, green, blue).
/// `reserve(bytes)` is called once the region's size is known, with the
/// picture's estimated peak memory, and the grant is held while it is made.
pub fn picture(
    ctx: &FrameImages,
    params: &RgbParams,
    frames: &[Frame; 3],
    reserve: &dyn Fn(u64) -> Result<MemoryGrant, ProductError>,
) -> Result<Picture, ProductError> {
    let t0 = std::time::Instant::now();
    let method = params.method()?;
    let ext = params.format()?;
    let region = params.region()?;
    let mut log = Vec::new();
    // The red band defines the grid.
    let red_src = ctx.open_frame(&frames[0])?;
    let spec = match region {
        Some((ra, dec, size)) => CutoutSpec {
            center: Center::Sky { ra, dec },
            size,
            raw_values: false,
            max_side: ctx.max_side,
        },
        None => CutoutSpec::whole(red_src.width, red_src.height),
    };
    let geo = cutout::locate(&red_src, &spec).map_err(|e| match e {
        cutout::CutoutError::Fits(f) => ProductError::Internal(f.to_string()),
        other => bad("ra", other.to_string()),
    })?;
    ctx.check_side(geo.width, geo.height)?;
    // Three bands as f32, the read regions, the colour picture and its
    // encoding: about 40 bytes a pixel.
    let _grant = reserve(geo.width as u64 * geo.height as u64 * 40)?;
    let red = ctx.cut(&frames[0], &spec)?.into_image_f32();
    let red_wcs = frames[0].wcs.as_ref().and_then(|k| {
        Wcs::new(
            k,
            frames[0].naxis1.max(0) as usize,
            frames[0].naxis2.max(0) as usize,
        )
        .ok()
    });
    let mut bands = vec![red];
    let mut reprojected = Vec::new();
    for (i, f) in frames.iter().enumerate().skip(1) {
        let band = ["red", "green", "blue"][i];
        if same_grid(&frames[0], f) {
            let pixel = CutoutSpec::pixel_box(geo.x, geo.y, geo.width, geo.height);
            let c = ctx.cut(f, &pixel)?;
            bands.push(c.into_image_f32());
            continue;
        }
        let (Some(rw), Some(fw)) = (
            red_wcs.as_ref(),
            f.wcs
                .as_ref()
                .and_then(|k| Wcs::new(k, f.naxis1.max(0) as usize, f.naxis2.max(0) as usize).ok()),
        ) else {
            return Err(bad(
                band,
                format!(
                    "{} ({}×{}) is not on the pixel grid of {} ({}×{}) and one of them has no sky \
                     WCS to reproject with",
                    f.filename,
                    f.naxis1,
                    f.naxis2,
                    frames[0].filename,
                    frames[0].naxis1,
                    frames[0].naxis2
                ),
            ));
        };
        // Only the part of the other frame the region covers is read (its
        // outline mapped through both WCSs, with a margin for the
        // interpolation), so memory follows the region, not the frames.
        let (x0, y0) = (geo.x0 as f64, geo.y0 as f64);
        let to_other = |x: f64, y: f64| {
            let (ra, dec) = rw.pix_to_sky(x + x0, y + y0)?;
            fw.sky_to_pix(ra, dec)
        };
        let Some(span) = outline_box(geo.width, geo.height, &to_other) else {
            return Err(bad(
                band,
                format!(
                    "{} does not overlap the region of {}",
                    f.filename, frames[0].filename
                ),
            ));
        };
        let (bx, by, bw, bh) = span;
        let part = ctx.cut(
            f,
            &CutoutSpec::pixel_box(
                bx + bw as f64 / 2.0 + 0.5,
                by + bh as f64 / 2.0 + 0.5,
                bw,
                bh,
            ),
        )?;
        let (px0, py0) = (part.geometry.x0 as f64, part.geometry.y0 as f64);
        let part = part.into_image_f32();
        let img = crate::imaging::resample::reproject(&part, geo.width, geo.height, |x, y| {
            let (fx, fy) = to_other(x, y)?;
            Some((fx - px0, fy - py0))
        });
        reprojected.push(band);
        log.push(format!(
            "{band}: {} reprojected onto the grid of {} (bilinear)",
            f.filename, frames[0].filename
        ));
        bands.push(img);
    }
    let (r, g, b): (&Raster<f32>, &Raster<f32>, &Raster<f32>) = (&bands[0], &bands[1], &bands[2]);
    let picture = match &method {
        Method::Lupton(p) => color::lupton(r, g, b, p),
        Method::Stiff(p) => color::stiff(r, g, b, p),
        Method::Linear(p) => color::linear(r, g, b, p),
    }
    .map_err(|e| bad("method", e.to_string()))?;
    let bytes = if ext == "png" {
        picture.to_png()
    } else {
        picture
            .to_jpeg(90)
            .map_err(|e| ProductError::Internal(e.to_string()))?
    };
    let summary = json!({
        "width": picture.width,
        "height": picture.height,
        "method": method.name(),
        "frames": frames.iter().map(|f| json!({"id": f.target.object_id, "filename": f.filename, "filter": f.filter})).collect::<Vec<_>>(),
        "region": {"x0": geo.x0, "y0": geo.y0, "width": geo.width, "height": geo.height, "padded": geo.padded},
        "reprojected": reprojected,
        "ms": t0.elapsed().as_secs_f64() * 1000.0,
    });
    Ok(Picture {
        bytes,
        ext,
        summary,
        log,
    })
}

/// The pixel box (0-based start column and row, width, height) of another
/// frame that holds the image of a `width` × `height` region, found by
/// mapping points along the region's outline with `to_other` (FITS pixels
/// in, FITS pixels out), with two pixels of margin; `None` when no point of
/// the outline lands anywhere.
fn outline_box(
    width: usize,
    height: usize,
    to_other: &dyn Fn(f64, f64) -> Option<(f64, f64)>,
) -> Option<(f64, f64, usize, usize)> {
    const STEPS: usize = 32;
    let (w, h) = (width as f64, height as f64);
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for k in 0..=STEPS {
        let t = k as f64 / STEPS as f64;
        for (x, y) in [
            (0.5 + t * w, 0.5),
            (0.5 + t * w, h + 0.5),
            (0.5, 0.5 + t * h),
            (w + 0.5, 0.5 + t * h),
        ] {
            if let Some((fx, fy)) = to_other(x, y).filter(|p| p.0.is_finite() && p.1.is_finite()) {
                xs.push(fx);
                ys.push(fy);
            }
        }
    }
    if xs.is_empty() {
        return None;
    }
    let lo = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min).floor() - 2.0;
    let hi = |v: &[f64]| v.iter().copied().fold(f64::NEG_INFINITY, f64::max).ceil() + 2.0;
    let (x_lo, y_lo) = (lo(&xs), lo(&ys));
    // Zero-based start and size of the box.
    let bw = (hi(&xs) - x_lo).max(1.0) as usize;
    let bh = (hi(&ys) - y_lo).max(1.0) as usize;
    Some((x_lo - 1.0, y_lo - 1.0, bw, bh))
}
