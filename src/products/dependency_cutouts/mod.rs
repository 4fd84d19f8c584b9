//! Dependency cutouts: for sources of a SourceList (or the members of
//! associations of an AssociateList), the same patch of sky cut out of every
//! frame of their processing lineage, with animated GIFs through the pipeline
//! and across epochs.
//!
//! [`DepParams`] is the request as users write it (ids as ranges such as
//! `1:5,20,31:34`); [`DepParams::validate`] turns it into a [`DepRequest`] or
//! a 400-style [`ParamError`]. [`resolve`] looks the sources up and places
//! them on their lineage ([`plan`]); [`make`] cuts, renders and writes the
//! files into a job directory and returns the [`DepResult`] that the result
//! page and the JSON answer show.

pub mod make;
pub mod placement;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::catalog::sources::Source;
use crate::catalog::{Catalog, CatalogError};
use crate::ids::{Aid, Alid, Sid, Slid};
use crate::imaging::cutout::SizeUnit;
use crate::imaging::render::{Interval, Stretch};
use crate::model::FrameClass;
use crate::params::ParamError;
use placement::{Graph, Placement, Restricted};

/// The ten frame classes of a pipeline, in pipeline order: the default
/// selection and the column order of the result table.
pub const PIPELINE_CLASSES: [FrameClass; 10] = [
    FrameClass::RawScienceFrame,
    FrameClass::BiasFrame,
    FrameClass::MasterFlatFrame,
    FrameClass::FringeFrame,
    FrameClass::HotPixelMap,
    FrameClass::ColdPixelMap,
    FrameClass::IlluminationCorrection,
    FrameClass::ReducedScienceFrame,
    FrameClass::RegriddedFrame,
    FrameClass::CoaddedRegriddedFrame,
];

/// The frames of the pipeline GIF, in order (pixel masks and illumination
/// maps are in the table but would be blank frames in an animation).
pub const GIF_CLASSES: [FrameClass; 7] = [
    FrameClass::RawScienceFrame,
    FrameClass::BiasFrame,
    FrameClass::MasterFlatFrame,
    FrameClass::FringeFrame,
    FrameClass::ReducedScienceFrame,
    FrameClass::RegriddedFrame,
    FrameClass::CoaddedRegriddedFrame,
];

/// Default cutout side, in pixels of the source's own frame.
pub const DEFAULT_SIZE_PX: f64 = 64.0;

/// Largest cutout side of a dependency cutout, in pixels of any frame: the
/// result page shows dozens of them.
pub const MAX_SIDE_PX: usize = 1024;

/// The request as it arrives (query string, form or job record).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DepParams {
    /// SourceList id (exclusive with `alid`).
    pub slid: Option<i64>,
    /// AssociateList id.
    pub alid: Option<i64>,
    /// SIDs or AIDs as ranges: `1:5,20,31:34`.
    pub ids: String,
    /// Frame classes (names or short names), comma separated; empty = all
    /// ten.
    #[serde(default)]
    pub classes: String,
    /// Cutout side.
    #[serde(default)]
    pub size: Option<f64>,
    /// Its unit: px (of the source's frame), arcsec, arcmin.
    #[serde(default)]
    pub unit: Option<String>,
    /// Tone curve of the PNGs and GIFs.
    #[serde(default)]
    pub stretch: Option<String>,
    /// Interval rule of the PNGs and GIFs.
    #[serde(default)]
    pub interval: Option<String>,
    /// One stretch for every frame of the epoch GIF (default true).
    #[serde(default)]
    pub same_stretch: Option<bool>,
}

/// Which list the ids refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ListRef {
    /// SIDs of a SourceList.
    Sources(Slid),
    /// AIDs of an AssociateList.
    Associations(Alid),
}

/// A validated request.
#[derive(Debug, Clone, PartialEq)]
pub struct DepRequest {
    /// The list.
    pub list: ListRef,
    /// The ids, sorted and unique.
    pub ids: Vec<i64>,
    /// The classes to show, in pipeline order.
    pub classes: Vec<FrameClass>,
    /// Cutout side.
    pub size: f64,
    /// Its unit.
    pub unit: SizeUnit,
    /// Tone curve.
    pub stretch: Stretch,
    /// Interval rule.
    pub interval: Interval,
    /// One stretch across the epoch GIF.
    pub same_stretch: bool,
}

impl DepParams {
    /// Checks every parameter; errors name the parameter and what is allowed.
    pub fn validate(&self) -> Result<DepRequest, ParamError> {
        let list = match (self.slid, self.alid) {
            (Some(s), None) => ListRef::Sources(Slid(s)),
            (None, Some(a)) => ListRef::Associations(Alid(a)),
            (Some(_), Some(_)) => {
                return Err(ParamError::new(
                    "slid",
                    "give either slid (with SIDs) or alid (with AIDs), not both",
                ));
            }
            (None, None) => {
                return Err(ParamError::new(
                    "slid",
                    "missing: give slid (a SourceList id) or alid (an AssociateList id)",
                ));
            }
        };
        let ids = crate::params::id_ranges::parse_ids(&self.ids)
            .map_err(|e| ParamError::new("ids", e.to_string()))?;
        let classes = parse_classes(&self.classes)?;
        let unit = match self
            .unit
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            None => SizeUnit::Pixel,
            Some(u) => SizeUnit::parse(u)
                .filter(|u| *u != SizeUnit::Degree)
                .ok_or_else(|| {
                    ParamError::new("unit", format!("`{u}` is not one of px, arcsec, arcmin"))
                })?,
        };
        let size = self.size.unwrap_or(DEFAULT_SIZE_PX);
        if !(size.is_finite() && size > 0.0) {
            return Err(ParamError::new("size", "must be a number greater than 0"));
        }
        if unit == SizeUnit::Pixel && size > MAX_SIDE_PX as f64 {
            return Err(ParamError::new(
                "size",
                format!(
                    "{size} px is more than the {MAX_SIDE_PX} px allowed for dependency cutouts"
                ),
            ));
        }
        let stretch = match self.stretch.as_deref().filter(|s| !s.trim().is_empty()) {
            None => Stretch::Linear,
            Some(s) => Stretch::parse(s).map_err(|e| ParamError::new("stretch", e.to_string()))?,
        };
        let interval = match self.interval.as_deref().filter(|s| !s.trim().is_empty()) {
            None => Interval::ZScale,
            Some(s) if s.trim().eq_ignore_ascii_case("manual") => {
                return Err(ParamError::new(
                    "interval",
                    "manual limits cannot serve frames of different units; use zscale, minmax or \
                     percentile[:P]",
                ));
            }
            Some(s) => Interval::parse(s, None, None)
                .map_err(|e| ParamError::new("interval", e.to_string()))?,
        };
        Ok(DepRequest {
            list,
            ids,
            classes,
            size,
            unit,
            stretch,
            interval,
            same_stretch: self.same_stretch.unwrap_or(true),
        })
    }
}

/// Parses a comma-separated list of class names or short names (`raw`,
/// `bias`, …); empty means the ten pipeline classes.
pub fn parse_classes(text: &str) -> Result<Vec<FrameClass>, ParamError> {
    let mut out = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let class = item
            .parse::<FrameClass>()
            .map_err(|e| ParamError::new("classes", e.to_string()))?;
        if !out.contains(&class) {
            out.push(class);
        }
    }
    if out.is_empty() {
        return Ok(PIPELINE_CLASSES.to_vec());
    }
    out.sort_by_key(|c| class_order(*c));
    Ok(out)
}

/// Column position of a class: pipeline order, the raw calibration
/// exposures first.
fn class_order(c: FrameClass) -> usize {
    match c {
        FrameClass::RawBiasFrame => 0,
        FrameClass::RawDomeFlatFrame => 1,
        other => {
            2 + PIPELINE_CLASSES
                .iter()
                .position(|p| *p == other)
                .unwrap_or(99)
        }
    }
}

/// One requested source, placed (or why it could not be).
#[derive(Debug, Clone)]
pub struct PlannedSource {
    /// Its list.
    pub slid: Slid,
    /// Its id.
    pub sid: Sid,
    /// The association it was asked through.
    pub aid: Option<Aid>,
    /// The catalogue row, when it exists.
    pub source: Option<Source>,
    /// Why it has no cutouts.
    pub error: Option<String>,
    /// Its placements on the requested classes: in pipeline order, then
    /// direct before indirect, nearest first, then by date.
    pub placements: Vec<Placement>,
    /// Its epoch sequence.
    pub epochs: Vec<Placement>,
    /// Pixel scale of the source's own frame (arcsec), which a size in px
    /// refers to even when that frame's class is not shown.
    pub root_scale: Option<f64>,
    /// Frames of its lineage (of the requested classes) the viewer may not
    /// see: shown as restricted cells, never cut.
    pub restricted: Vec<Restricted>,
}

/// Looks up the requested sources and places each on its lineage. An unknown
/// list is an error (404); unknown ids become rows with an error. Everything
/// is looked up as `catalog`'s viewer sees it: a list it may not see is
/// unknown, and frames of a lineage it may not see become
/// [`PlannedSource::restricted`] entries.
pub async fn resolve(
    catalog: &Catalog,
    req: &DepRequest,
) -> Result<Vec<PlannedSource>, CatalogError> {
    // (aid, slid, sid) in request order; aid None for SourceList requests.
    let mut wanted: Vec<(Option<Aid>, Slid, Sid)> = Vec::new();
    let mut missing_aids: Vec<Aid> = Vec::new();
    match req.list {
        ListRef::Sources(slid) => {
            catalog.source_list(slid).await?;
            wanted.extend(req.ids.iter().map(|&i| (None, slid, Sid(i))));
        }
        ListRef::Associations(alid) => {
            catalog.associate_list(alid).await?;
            let aids: Vec<Aid> = req.ids.iter().map(|&i| Aid(i)).collect();
            let members = catalog.association_members(alid, &aids).await?;
            for aid in aids {
                let mut any = false;
                for (a, slid, sid) in members.iter().filter(|m| m.0 == aid) {
                    wanted.push((Some(*a), *slid, *sid));
                    any = true;
                }
                if !any {
                    missing_aids.push(aid);
                }
            }
        }
    }
    let mut by_list: HashMap<Slid, Vec<Sid>> = HashMap::new();
    for (_, slid, sid) in &wanted {
        by_list.entry(*slid).or_default().push(*sid);
    }
    let mut found: HashMap<(Slid, Sid), Source> = HashMap::new();
    let mut graphs: HashMap<Slid, Result<Graph, String>> = HashMap::new();
    for (slid, sids) in &by_list {
        for s in catalog.sources_in(*slid, sids).await? {
            found.insert((s.slid, s.sid), s);
        }
        let info = catalog.source_list(*slid).await?;
        let graph = match info.frame_id {
            Some(f) => Graph::load(catalog, f).await.map_err(|e| e.to_string()),
            None => Err(format!(
                "SourceList {slid} has no frame to start the lineage from"
            )),
        };
        graphs.insert(*slid, graph);
    }
    let mut out = Vec::with_capacity(wanted.len() + missing_aids.len());
    for (aid, slid, sid) in wanted {
        let mut row = PlannedSource {
            slid,
            sid,
            aid,
            source: found.get(&(slid, sid)).cloned(),
            error: None,
            placements: Vec::new(),
            epochs: Vec::new(),
            root_scale: None,
            restricted: Vec::new(),
        };
        match (&row.source, graphs.get(&slid)) {
            (None, _) => {
                row.error = Some(format!("no such source: SID {sid} in SourceList {slid}"))
            }
            (Some(_), Some(Err(e))) => row.error = Some(e.clone()),
            (Some(source), Some(Ok(graph))) => {
                row.root_scale = graph.frames.get(&graph.root).and_then(|n| n.scale_arcsec());
                let all = graph.place(source);
                row.epochs = graph.epochs(&all, source);
                row.restricted = graph
                    .restricted_near(&all)
                    .into_iter()
                    .filter(|r| req.classes.contains(&r.class))
                    .collect();
                let mut keep: Vec<Placement> = all
                    .into_iter()
                    .filter(|p| req.classes.contains(&p.frame.frame.class))
                    .collect();
                // Within a class, the frames the product was directly made
                // with come first, nearest first: the first of each class is
                // the one the table shows and the pipeline GIF animates.
                keep.sort_by(|a, b| {
                    let key = |p: &Placement| {
                        (
                            class_order(p.frame.frame.class),
                            p.indirect(),
                            p.level,
                            p.frame.frame.mjd_obs.unwrap_or(f64::INFINITY),
                            p.frame.frame.target.object_id,
                        )
                    };
                    key(a)
                        .partial_cmp(&key(b))
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
                row.placements = keep;
            }
            (Some(_), None) => row.error = Some(format!("SourceList {slid} not loaded")),
        }
        out.push(row);
    }
    for aid in missing_aids {
        out.push(PlannedSource {
            slid: Slid(-1),
            sid: Sid(-1),
            aid: Some(aid),
            source: None,
            error: Some(format!("no such association: AID {aid}")),
            placements: Vec::new(),
            epochs: Vec::new(),
            root_scale: None,
            restricted: Vec::new(),
        });
    }
    Ok(out)
}

/// What a finished request made, as the result page and JSON show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DepResult {
    /// `SourceList 73` or `AssociateList 2`.
    pub list: String,
    /// The ids as asked, compressed (`1:5,20`).
    pub ids: String,
    /// The column classes, in order.
    pub classes: Vec<String>,
    /// One row per source.
    pub rows: Vec<DepRow>,
    /// Number of files written.
    pub files: usize,
    /// Their total size.
    pub bytes: u64,
    /// Wall time of the cutting and writing, in ms.
    pub make_ms: f64,
}

/// One source's row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DepRow {
    /// SourceList id.
    pub slid: i64,
    /// Source id.
    pub sid: i64,
    /// Association id, for AssociateList requests.
    pub aid: Option<i64>,
    /// RA (deg).
    pub ra: Option<f64>,
    /// Dec (deg).
    pub dec: Option<f64>,
    /// X on its own frame.
    pub x: Option<f64>,
    /// Y on its own frame.
    pub y: Option<f64>,
    /// Why the row is empty ("no such source").
    pub error: Option<String>,
    /// One cell per class of [`DepResult::classes`]; in each, the frames
    /// the product was directly made with first.
    pub cells: Vec<Vec<CellCutout>>,
    /// The pipeline GIF, relative to the result directory.
    pub pipeline_gif: Option<String>,
    /// Frames in it.
    pub pipeline_frames: usize,
    /// Their object ids, in order (absent from results made before it was
    /// recorded).
    #[serde(default)]
    pub pipeline_ids: Vec<i64>,
    /// The epoch GIF.
    pub epochs_gif: Option<String>,
    /// Frames in it.
    pub epoch_frames: usize,
}

/// One cutout in a cell.
///
/// A restricted one (`restricted`: a frame the requester may not see) has
/// its class and what it was reached through, and nothing else: its
/// `frame_id` is a negative placeholder, `filename` is empty, the position
/// 0 and there are no files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellCutout {
    /// The frame's object id (a negative placeholder when restricted).
    pub frame_id: i64,
    /// Its file name (empty when restricted).
    pub filename: String,
    /// Its class.
    pub class: String,
    /// The frame the placement came through (`None` for the source's own
    /// frame).
    pub via: Option<i64>,
    /// Its class.
    #[serde(default)]
    pub via_class: Option<String>,
    /// Its file name.
    #[serde(default)]
    pub via_filename: Option<String>,
    /// The role this frame plays in `via` (`flat`, `raw`, …); `None` for
    /// the source's own frame and the products made from it (then `via`
    /// is what it was made from).
    #[serde(default)]
    pub role: Option<String>,
    /// Whether the frame entered the lineage only through another
    /// calibration product (`via`), not by an edge from a science frame:
    /// the product was not directly made with it.
    #[serde(default)]
    pub indirect: bool,
    /// Source position on the frame (FITS pixels).
    pub x: f64,
    /// Row.
    pub y: f64,
    /// Observation date.
    pub date: Option<String>,
    /// Cutout FITS, relative to the result directory.
    pub fits: Option<String>,
    /// Cutout PNG.
    pub png: Option<String>,
    /// Why there is no cutout (a missing file).
    pub error: Option<String>,
    /// A frame the requester may not see: shown as "restricted <class>".
    #[serde(default)]
    pub restricted: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(ids: &str) -> DepParams {
        DepParams {
            slid: Some(1),
            ids: ids.into(),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_are_the_ten_classes_64px_zscale() {
        let r = params("1:3").validate().unwrap();
        assert_eq!(r.classes, PIPELINE_CLASSES.to_vec());
        assert_eq!(r.ids, vec![1, 2, 3]);
        assert_eq!((r.size, r.unit), (64.0, SizeUnit::Pixel));
        assert_eq!(r.interval, Interval::ZScale);
        assert!(r.same_stretch);
    }

    #[test]
    fn bad_parameters_name_themselves() {
        let e = params("5:1").validate().unwrap_err();
        assert_eq!(e.param, "ids");
        assert!(e.message.contains("backwards"), "{}", e.message);
        let e = DepParams {
            classes: "raw,nonsense".into(),
            ..params("1")
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.param, "classes");
        assert!(e.message.contains("nonsense") && e.message.contains("bias"));
        let e = DepParams {
            size: Some(5000.0),
            ..params("1")
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.param, "size");
        let e = DepParams {
            unit: Some("deg".into()),
            ..params("1")
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.param, "unit");
        let e = DepParams {
            alid: Some(2),
            ..params("1")
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.param, "slid");
    }

    #[test]
    fn classes_accept_short_and_long_names_in_pipeline_order() {
        let c = parse_classes("coadd, BiasFrame,raw,raw").unwrap();
        assert_eq!(
            c,
            vec![
                FrameClass::RawScienceFrame,
                FrameClass::BiasFrame,
                FrameClass::CoaddedRegriddedFrame
            ]
        );
    }
}
