//! Lineage inference: from what pipelines record in their products to
//! classes and dependency edges, each decided by a small, named rule.
//!
//! The rules read only what `scan` found — headers (IRAF/ccdproc keywords,
//! `IMAGETYP`/`OBSTYPE`, `IMCMBnnn`, SWarp's signature, wisecut's own
//! `WCCLASS`), SWarp XML run records, SExtractor's `LDAC_IMHEAD` and file
//! names as a last resort — plus what the catalogue already holds (for
//! references to products ingested before). A reference resolves to one
//! product or is reported: unresolved references are listed, two
//! candidates are an error, nothing is guessed. Everything here is pure
//! and synchronous, so `--explain` and the real ingest see the same plan.

use super::scan::{Content, FileError, ScannedFile, SwarpRun, stem};
use super::tables::TableFormat;
use crate::imaging::fits::{Card, HeaderValue};
use crate::imaging::wcs::{Header, KeywordSource};
use crate::model::FrameClass;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// A product the catalogue already holds, as inference sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownProduct {
    /// Its object id.
    pub object_id: i64,
    /// Its catalogue file name.
    pub filename: String,
    /// Its class name (`BiasFrame`, `SourceList`, …).
    pub class: String,
}

/// What the catalogue already holds that references may name.
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// Current (not superseded) frames by file name and by stem.
    pub frames_by_name: HashMap<String, Vec<KnownProduct>>,
    /// Every ingested file's checksum → the product made from it.
    pub by_checksum: HashMap<String, KnownProduct>,
}

impl Known {
    /// Adds a current frame under its name and its stem.
    pub fn add_frame(&mut self, p: KnownProduct) {
        let s = stem(&p.filename).to_owned();
        if s != p.filename {
            self.frames_by_name.entry(s).or_default().push(p.clone());
        }
        self.frames_by_name
            .entry(p.filename.clone())
            .or_default()
            .push(p);
    }
}

/// What the plan's product is.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemKind {
    /// A frame of a class, in an HDU.
    Frame {
        /// The class.
        class: FrameClass,
        /// The image HDU.
        hdu: usize,
    },
    /// A source catalog.
    SourceList {
        /// Its format.
        format: TableFormat,
        /// The table HDU.
        hdu: usize,
    },
}

/// Where an edge's parent is.
#[derive(Debug, Clone, PartialEq)]
pub enum Parent {
    /// Another item of this batch (its index in `Plan::items`).
    Batch(usize),
    /// A product already in the catalogue.
    Catalogue(KnownProduct),
}

/// One inferred dependency, with the rule that found it.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    /// The role (`raw`, `bias`, `flat`, `frame`, …).
    pub role: String,
    /// The parent.
    pub parent: Parent,
    /// The rule's name.
    pub rule: &'static str,
    /// What the rule read.
    pub evidence: String,
}

/// One file to ingest.
#[derive(Debug, Clone)]
pub struct Item {
    /// The file.
    pub path: PathBuf,
    /// Its name.
    pub name: String,
    /// Named by the user (not met in a directory).
    pub explicit: bool,
    /// Its SHA-256.
    pub checksum: String,
    /// What it becomes.
    pub kind: ItemKind,
    /// The rule that decided the class, and what it read.
    pub class_rule: (&'static str, String),
    /// Its dependencies.
    pub edges: Vec<Edge>,
    /// Things an operator should know (a SCAMP solution found, a DARKCOR
    /// that wisecut's model has no class for).
    pub notes: Vec<String>,
    /// The header (frames and LDAC catalogs), for the metadata shown.
    pub header: Option<Header>,
}

/// The outcome of inference over a batch.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Files to ingest, in path order.
    pub items: Vec<Item>,
    /// Files left alone, with the reason.
    pub ignored: Vec<(PathBuf, String)>,
    /// Files already in the catalogue (same checksum).
    pub unchanged: Vec<(PathBuf, KnownProduct)>,
    /// References that name nothing in the batch or the catalogue.
    pub unresolved: Vec<FileError>,
    /// Files that cannot be ingested.
    pub errors: Vec<FileError>,
}

/// A manifest's word on one file: class and dependencies to use instead of
/// (or besides) what the headers say.
#[derive(Debug, Clone, Default)]
pub struct Override {
    /// The class, overriding inference.
    pub class: Option<FrameClass>,
    /// Dependencies by role → parent file name or catalogue object id.
    pub deps: Vec<(String, OverrideParent)>,
}

/// A manifest dependency's parent.
#[derive(Debug, Clone, PartialEq)]
pub enum OverrideParent {
    /// A file of the batch, by name or path.
    File(String),
    /// A catalogue object.
    Object(i64),
}

/// A scanned file with its checksum.
pub struct Input {
    /// What scan found.
    pub file: ScannedFile,
    /// Its SHA-256.
    pub checksum: String,
}

/// Calibration keywords IRAF's `ccdproc` (and users following it) write,
/// with the role and the class of the product they name.
const CALIBRATION_KEYWORDS: &[(&str, &str, FrameClass)] = &[
    ("ZEROCOR", "bias", FrameClass::BiasFrame),
    ("FLATCOR", "flat", FrameClass::MasterFlatFrame),
    ("FRINGCOR", "fringe", FrameClass::FringeFrame),
    (
        "ILLUMCOR",
        "illumination",
        FrameClass::IlluminationCorrection,
    ),
];

/// Keywords that say an image was processed: IRAF's and astropy-ccdproc's
/// (its short log names, e.g. `subtract_bias` → `SUBBIAS`).
const PROCESSING_KEYWORDS: &[&str] = &[
    "ZEROCOR", "DARKCOR", "FLATCOR", "FRINGCOR", "ILLUMCOR", "CCDPROC", "OVERSCAN", "TRIM",
    "SUBBIAS", "SUBDARK", "SUBOSCAN", "TRIMIM", "GAINCOR",
];

/// The role a parent of `class` plays for a child made from it.
pub fn role_for(parent: FrameClass) -> &'static str {
    match parent {
        FrameClass::RawBiasFrame | FrameClass::RawDomeFlatFrame | FrameClass::RawScienceFrame => {
            "raw"
        }
        FrameClass::BiasFrame => "bias",
        FrameClass::MasterFlatFrame => "flat",
        FrameClass::HotPixelMap => "hotpixelmap",
        FrameClass::ColdPixelMap => "coldpixelmap",
        FrameClass::FringeFrame => "fringe",
        FrameClass::IlluminationCorrection => "illumination",
        FrameClass::ReducedScienceFrame => "reduced",
        FrameClass::RegriddedFrame => "regridded",
        FrameClass::CoaddedRegriddedFrame => "coadd",
    }
}

fn header_of(cards: &[Card]) -> Header {
    Header::new(cards)
}

fn is_combined(h: &Header) -> bool {
    h.number("NCOMBINE").is_some_and(|n| n > 1.0) || h.get("IMCMB001").is_some()
}

fn is_processed(h: &Header) -> bool {
    PROCESSING_KEYWORDS.iter().any(|k| h.get(k).is_some())
}

/// Rule `wisecut_class_keyword`: wisecut's own pipeline writes `WCCLASS`.
fn class_from_wcclass(h: &Header) -> Option<(FrameClass, String)> {
    let v = h.text("WCCLASS")?;
    v.parse().ok().map(|c| (c, format!("WCCLASS = '{v}'")))
}

/// Rule `swarp_output`: the file is an output a SWarp run record names.
fn class_from_swarp_runs(name: &str, runs: &[SwarpRun]) -> Option<(FrameClass, String)> {
    for r in runs {
        if r.coadd.as_deref().is_some_and(|c| base(c) == name) {
            return Some((
                FrameClass::CoaddedRegriddedFrame,
                format!(
                    "the coadd (ImageOut_Name) of a SWarp run of {} images",
                    r.inputs.len()
                ),
            ));
        }
        if r.inputs
            .iter()
            .any(|i| format!("{}{}", stem(base(i)), r.resample_suffix) == name)
        {
            return Some((
                FrameClass::RegriddedFrame,
                format!("a resampled image ({}) of a SWarp run", r.resample_suffix),
            ));
        }
    }
    None
}

/// Rule `swarp_header`: SWarp signs what it writes (`SOFTNAME = 'SWarp'`);
/// resampled images carry its `.resamp` name, coadds do not.
fn class_from_swarp_header(name: &str, h: &Header) -> Option<(FrameClass, String)> {
    let soft = h.text("SOFTNAME")?;
    if !soft.eq_ignore_ascii_case("swarp") {
        return None;
    }
    let class = if name.to_ascii_lowercase().contains(".resamp") {
        FrameClass::RegriddedFrame
    } else {
        FrameClass::CoaddedRegriddedFrame
    };
    Some((class, format!("SOFTNAME = '{soft}'")))
}

/// Rule `iraf_imagetyp`: `IMAGETYP` or `OBSTYPE`, with whether the frame
/// was combined (`NCOMBINE` > 1, `IMCMB001`) or processed (IRAF/ccdproc
/// keywords). `Err` for a type wisecut's data model has no class for.
fn class_from_imagetyp(h: &Header) -> Option<Result<(FrameClass, String), String>> {
    let (key, raw) = ["IMAGETYP", "OBSTYPE"]
        .iter()
        .find_map(|k| h.text(k).map(|v| (*k, v)))?;
    let t = raw.to_ascii_lowercase().replace(['_', '-'], " ");
    let t = t.trim();
    let made = is_combined(h) || is_processed(h);
    let state = match (is_combined(h), is_processed(h)) {
        (true, _) => ", combined",
        (false, true) => ", processed",
        _ => "",
    };
    let class = match t {
        "zero" | "bias" | "master bias" | "masterbias" => {
            if made {
                FrameClass::BiasFrame
            } else {
                FrameClass::RawBiasFrame
            }
        }
        "flat" | "dome flat" | "domeflat" | "flatfield" | "flat field" | "dflat" | "lamp flat"
        | "master flat" | "masterflat" | "sky flat" | "skyflat" | "twilight flat" => {
            if made {
                FrameClass::MasterFlatFrame
            } else {
                FrameClass::RawDomeFlatFrame
            }
        }
        "fringe" => FrameClass::FringeFrame,
        "illum" | "illumination" => FrameClass::IlluminationCorrection,
        "hotpix" | "hot pixel map" | "hotpixelmap" => FrameClass::HotPixelMap,
        "coldpix" | "cold pixel map" | "coldpixelmap" => FrameClass::ColdPixelMap,
        "object" | "science" | "light" | "sky" | "image" | "reduced" | "focus" | "standard"
        | "std" => {
            if made {
                FrameClass::ReducedScienceFrame
            } else {
                FrameClass::RawScienceFrame
            }
        }
        "dark" | "master dark" => {
            return Some(Err(format!(
                "{key} = '{raw}': dark frames have no class in wisecut's data model"
            )));
        }
        _ => return None,
    };
    Some(Ok((class, format!("{key} = '{raw}'{state}"))))
}

/// Rule `file_name_convention`, the last resort: Astro-WISE's and common
/// pipelines' names.
fn class_from_name(name: &str) -> Option<(FrameClass, String)> {
    let n = name.to_ascii_lowercase();
    let starts = |p: &[&str]| p.iter().any(|p| n.starts_with(p));
    let class = if n.contains(".resamp.") || starts(&["reg-", "regrid"]) {
        FrameClass::RegriddedFrame
    } else if starts(&["coadd"]) {
        FrameClass::CoaddedRegriddedFrame
    } else if starts(&["masterbias", "master_bias", "mbias", "bias-"]) {
        FrameClass::BiasFrame
    } else if starts(&["masterflat", "master_flat", "mflat", "flat-"]) {
        FrameClass::MasterFlatFrame
    } else if starts(&["fringe"]) {
        FrameClass::FringeFrame
    } else if starts(&["illum"]) {
        FrameClass::IlluminationCorrection
    } else if starts(&["bias", "zero"]) {
        FrameClass::RawBiasFrame
    } else if starts(&["flat", "domeflat"]) {
        FrameClass::RawDomeFlatFrame
    } else if starts(&["sci-", "red_", "red-"]) || n.contains("_red.") {
        FrameClass::ReducedScienceFrame
    } else if starts(&["raw-", "raw_"]) {
        FrameClass::RawScienceFrame
    } else {
        return None;
    };
    Some((class, format!("file name {name:?}")))
}

/// The file name of a path as written in a record (`dir/a.fits` → `a.fits`).
fn base(s: &str) -> &str {
    s.rsplit(['/', '\\']).next().unwrap_or(s)
}

/// Words of a keyword value that may name a file: IRAF writes sentences
/// (`Zero level correction image is Zero`), users write file names.
fn tokens(v: &str) -> Vec<&str> {
    v.split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '\'' | '"' | '=' | '(' | ')'))
        .map(|t| t.trim_end_matches(['.', ':']))
        .filter(|t| !t.is_empty())
        .map(base)
        .collect()
}

/// Finds what a keyword value names: batch files (by name or stem) first,
/// then current catalogue frames. `Ok(None)` when nothing matches.
fn resolve(
    value: &str,
    names: &HashMap<String, Vec<usize>>,
    known: &Known,
) -> Result<Option<Parent>, String> {
    let mut batch: Vec<usize> = Vec::new();
    let mut catalogue: Vec<KnownProduct> = Vec::new();
    for t in tokens(value) {
        for key in [t, stem(t)] {
            if let Some(ix) = names.get(key) {
                batch.extend(ix);
            }
        }
        if batch.is_empty() {
            for key in [t, stem(t)] {
                if let Some(ps) = known.frames_by_name.get(key) {
                    catalogue.extend(ps.iter().cloned());
                }
            }
        }
    }
    batch.sort_unstable();
    batch.dedup();
    catalogue.sort_by_key(|p| p.object_id);
    catalogue.dedup();
    match (batch.len(), catalogue.len()) {
        (1, _) => Ok(Some(Parent::Batch(batch[0]))),
        (0, 1) => Ok(Some(Parent::Catalogue(catalogue.remove(0)))),
        (0, 0) => Ok(None),
        (0, _) => Err(format!(
            "{value:?} names {} catalogue frames: {}",
            catalogue.len(),
            catalogue
                .iter()
                .map(|p| format!("{} (#{})", p.filename, p.object_id))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        _ => Err(format!(
            "{value:?} names {} files of this batch",
            batch.len()
        )),
    }
}

/// Cards that identify an image in a catalog's copy of its header.
const IDENTITY_CARDS: &[&str] = &[
    "NAXIS1", "NAXIS2", "DATE-OBS", "MJD-OBS", "EXPTIME", "FILTER", "OBJECT", "CRVAL1", "CRVAL2",
    "CRPIX1", "CRPIX2", "CD1_1", "CD2_2", "CHECKSUM", "DATASUM", "ZEROCOR", "FLATCOR",
];

fn same_value(a: &HeaderValue, b: &HeaderValue) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
        _ => a.as_str().map(str::trim) == b.as_str().map(str::trim),
    }
}

/// How many identity cards two headers share, or `None` when one differs.
fn header_agreement(a: &Header, b: &Header) -> Option<usize> {
    let mut shared = 0;
    for k in IDENTITY_CARDS {
        if let (Some(x), Some(y)) = (a.get(k), b.get(k)) {
            if !same_value(x, y) {
                return None;
            }
            shared += 1;
        }
    }
    Some(shared)
}

/// Whether two headers describe the same exposure: same start (DATE-OBS,
/// else MJD-OBS to 0.1 s), chip and filter, each compared where both say.
fn same_exposure(a: &Header, b: &Header) -> bool {
    let start = match (a.text("DATE-OBS"), b.text("DATE-OBS")) {
        (Some(x), Some(y)) => {
            super::parse_fits_date(&x).is_some()
                && super::parse_fits_date(&x) == super::parse_fits_date(&y)
        }
        _ => match (a.number("MJD-OBS"), b.number("MJD-OBS")) {
            (Some(x), Some(y)) => (x - y).abs() < 0.1 / 86400.0,
            _ => false,
        },
    };
    let agree = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| a.text(k).zip(b.text(k)))
            .is_none_or(|(x, y)| x.eq_ignore_ascii_case(&y))
    };
    start && agree(super::CHIP_KEYWORDS) && agree(&["FILTER"])
}

/// The batch items that lie on a cycle of batch edges.
fn cycle_members(plan: &Plan) -> Vec<usize> {
    // Tarjan-free: an item is on a cycle when it can reach itself.
    let n = plan.items.len();
    let parents: Vec<Vec<usize>> = plan
        .items
        .iter()
        .map(|it| {
            it.edges
                .iter()
                .filter_map(|e| match e.parent {
                    Parent::Batch(j) => Some(j),
                    Parent::Catalogue(_) => None,
                })
                .collect()
        })
        .collect();
    (0..n)
        .filter(|&start| {
            let mut seen = vec![false; n];
            let mut stack = parents[start].clone();
            while let Some(j) = stack.pop() {
                if j == start {
                    return true;
                }
                if !std::mem::replace(&mut seen[j], true) {
                    stack.extend(&parents[j]);
                }
            }
            false
        })
        .collect()
}

/// Infers classes and edges for a batch. `overrides` are keyed by file
/// name and by absolute path.
pub fn infer(inputs: Vec<Input>, known: &Known, overrides: &HashMap<String, Override>) -> Plan {
    let mut plan = Plan::default();
    let runs: Vec<SwarpRun> = inputs
        .iter()
        .filter_map(|i| match &i.file.content {
            Content::SwarpXml(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    let heads: HashMap<String, Vec<Card>> = inputs
        .iter()
        .filter_map(|i| match &i.file.content {
            Content::ScampHead(c) => Some((stem(&i.file.name).to_owned(), c.clone())),
            _ => None,
        })
        .collect();

    // Pass 1: what each file is.
    let mut catalog_headers: Vec<Option<Header>> = Vec::new();
    for input in inputs {
        let f = input.file;
        if let Some(p) = known.by_checksum.get(&input.checksum) {
            plan.unchanged.push((f.path.clone(), p.clone()));
            continue;
        }
        let ov = overrides
            .get(f.path.to_string_lossy().as_ref())
            .or_else(|| overrides.get(&f.name));
        let fail = |m: String| FileError {
            path: f.path.clone(),
            message: m,
        };
        let (kind, class_rule, header, cat_header) = match &f.content {
            Content::Ignored(why) => {
                plan.ignored.push((f.path.clone(), why.clone()));
                continue;
            }
            Content::SwarpXml(_) | Content::ScampHead(_) => continue,
            Content::Catalog {
                format,
                hdu,
                image_header,
            } => {
                let h = image_header.as_deref().map(header_of);
                (
                    ItemKind::SourceList {
                        format: *format,
                        hdu: *hdu,
                    },
                    (
                        "catalog_format",
                        match image_header {
                            Some(c) => format!(
                                "a {} catalog carrying its image's header ({} cards)",
                                format.name(),
                                c.len()
                            ),
                            None => format!("a {} catalog", format.name()),
                        },
                    ),
                    h.clone(),
                    h,
                )
            }
            Content::Image { hdu, cards } => {
                let h = header_of(cards);
                let lower = f.name.to_ascii_lowercase();
                if lower.contains(".weight.") || lower.ends_with(".wht.fits") {
                    plan.ignored.push((
                        f.path.clone(),
                        "a weight map (SWarp's .weight.fits): not a product of the data model"
                            .into(),
                    ));
                    continue;
                }
                let decided = if let Some(c) = ov.and_then(|o| o.class) {
                    Ok(("manifest", (c, "the manifest says so".to_owned())))
                } else if let Some(c) = class_from_swarp_runs(&f.name, &runs) {
                    Ok(("swarp_output", c))
                } else if let Some(c) = class_from_wcclass(&h) {
                    Ok(("wisecut_class_keyword", c))
                } else if let Some(c) = class_from_swarp_header(&f.name, &h) {
                    Ok(("swarp_header", c))
                } else {
                    match class_from_imagetyp(&h) {
                        Some(Ok(c)) => Ok(("iraf_imagetyp", c)),
                        Some(Err(e)) => Err(e),
                        None => class_from_name(&f.name)
                            .map(|c| ("file_name_convention", c))
                            .ok_or_else(|| {
                                "cannot tell its class: no IMAGETYP/OBSTYPE, no WCCLASS, no SWarp \
                                 record or signature, and a name that follows no known \
                                 convention; name its class in a manifest"
                                    .to_owned()
                            }),
                    }
                };
                match decided {
                    Ok((rule, (class, why))) => (
                        ItemKind::Frame { class, hdu: *hdu },
                        (rule, why),
                        Some(h),
                        None,
                    ),
                    Err(e) => {
                        plan.errors.push(fail(e));
                        continue;
                    }
                }
            }
        };
        let mut notes = Vec::new();
        if let Some(head) = heads.get(stem(&f.name)) {
            let h = header_of(head);
            let rms = ["ASTRRMS1", "ASTRRMS2"]
                .iter()
                .filter_map(|k| h.number(k).map(|v| format!("{:.3}\"", v * 3600.0)))
                .collect::<Vec<_>>()
                .join(" × ");
            notes.push(format!(
                "a SCAMP solution ({}.head{}) goes with it",
                stem(&f.name),
                if rms.is_empty() {
                    String::new()
                } else {
                    format!(", rms {rms}")
                }
            ));
        }
        plan.items.push(Item {
            path: f.path,
            name: f.name,
            explicit: f.explicit,
            checksum: input.checksum,
            kind,
            class_rule: (class_rule.0, class_rule.1),
            edges: Vec::new(),
            notes,
            header,
        });
        catalog_headers.push(cat_header);
    }

    // Names and stems of the batch's frames, for references.
    let mut names: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, it) in plan.items.iter().enumerate() {
        if matches!(it.kind, ItemKind::Frame { .. }) {
            names.entry(it.name.clone()).or_default().push(i);
            let s = stem(&it.name);
            if s != it.name {
                names.entry(s.to_owned()).or_default().push(i);
            }
        }
    }
    let class_of = |plan: &Plan, p: &Parent| -> Option<FrameClass> {
        match p {
            Parent::Batch(i) => match plan.items[*i].kind {
                ItemKind::Frame { class, .. } => Some(class),
                ItemKind::SourceList { .. } => None,
            },
            Parent::Catalogue(k) => k.class.parse().ok(),
        }
    };

    // Pass 2: edges.
    let mut failed: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut ignored_late: Vec<(usize, String)> = Vec::new();
    let mut unresolved: Vec<FileError> = Vec::new();
    for i in 0..plan.items.len() {
        let item = plan.items[i].clone();
        let mut edges: Vec<Edge> = Vec::new();
        let mut problems: Vec<String> = Vec::new();
        match item.kind {
            ItemKind::Frame { class, .. } => {
                let h = item.header.clone().unwrap_or_default();
                // Rule `iraf_calibration_keyword`.
                for (key, role, want) in CALIBRATION_KEYWORDS {
                    let Some(v) = h.text(key) else { continue };
                    match resolve(&v, &names, known) {
                        Ok(Some(p)) => {
                            if p == Parent::Batch(i) {
                                continue;
                            }
                            let got = class_of(&plan, &p);
                            if got != Some(*want) {
                                problems.push(format!(
                                    "{key} = '{v}' names a {}, not a {}",
                                    got.map(FrameClass::name).unwrap_or("SourceList"),
                                    want.name()
                                ));
                                continue;
                            }
                            edges.push(Edge {
                                role: (*role).into(),
                                parent: p,
                                rule: "iraf_calibration_keyword",
                                evidence: format!("{key} = '{v}'"),
                            });
                        }
                        Ok(None) => {
                            // A boolean or a bare "yes" says the step was done
                            // without naming the product: not a reference.
                            if !matches!(h.get(key), Some(HeaderValue::Bool(_)))
                                && tokens(&v).len() <= 12
                            {
                                unresolved.push(FileError {
                                    path: item.path.clone(),
                                    message: format!(
                                        "{key} = '{v}' names no file of this batch and no frame of the catalogue"
                                    ),
                                });
                            }
                        }
                        Err(e) => problems.push(format!("{key}: {e}")),
                    }
                }
                if h.get("DARKCOR").is_some() {
                    plan.items[i].notes.push(format!(
                        "DARKCOR = '{}': dark frames have no class in wisecut's data model, so no edge",
                        h.text("DARKCOR").unwrap_or_default()
                    ));
                }
                // Rule `iraf_imcmb`: the inputs of a combined frame.
                for n in 1..=999 {
                    let key = format!("IMCMB{n:03}");
                    let Some(v) = h.text(&key) else { break };
                    match resolve(&v, &names, known) {
                        Ok(Some(p)) => {
                            let role = class_of(&plan, &p).map(role_for).unwrap_or("sourcelist");
                            edges.push(Edge {
                                role: role.into(),
                                parent: p,
                                rule: "iraf_imcmb",
                                evidence: format!("{key} = '{v}'"),
                            });
                        }
                        Ok(None) => unresolved.push(FileError {
                            path: item.path.clone(),
                            message: format!(
                                "{key} = '{v}' names no file of this batch and no frame of the catalogue"
                            ),
                        }),
                        Err(e) => problems.push(format!("{key}: {e}")),
                    }
                }
                // Rule `swarp_xml`: a SWarp run's inputs.
                for r in &runs {
                    let is_coadd = r.coadd.as_deref().is_some_and(|c| base(c) == item.name);
                    for input in &r.inputs {
                        let resampled = format!("{}{}", stem(base(input)), r.resample_suffix);
                        if !(is_coadd || resampled == item.name) {
                            continue;
                        }
                        // A coadd made from resampled images depends on them;
                        // SWarp lists the originals, so look for those first.
                        let via_resampled = names.get(&resampled).map(|v| v[0]);
                        let parent = match (is_coadd, via_resampled) {
                            (true, Some(j)) if j != i => Ok(Some(Parent::Batch(j))),
                            _ => resolve(base(input), &names, known),
                        };
                        match parent {
                            Ok(Some(p)) => {
                                let role = class_of(&plan, &p).map(role_for).unwrap_or("frame");
                                edges.push(Edge {
                                    role: role.into(),
                                    parent: p,
                                    rule: "swarp_xml",
                                    evidence: format!(
                                        "{} of a SWarp run lists {input}",
                                        if is_coadd { "the coadd" } else { "a resampled image" }
                                    ),
                                });
                            }
                            Ok(None) => unresolved.push(FileError {
                                path: item.path.clone(),
                                message: format!(
                                    "the SWarp run that made it read {input}, which is neither in this batch nor in the catalogue"
                                ),
                            }),
                            Err(e) => problems.push(format!("SWarp input: {e}")),
                        }
                    }
                }
                // Rule `same_exposure`: a reduced frame comes from the raw
                // exposure of the same chip, filter and start time — what
                // identifies an exposure in Astro-WISE; ccdproc and IRAF
                // record no raw file name.
                if class == FrameClass::ReducedScienceFrame
                    && !edges.iter().any(|e| e.role == "raw")
                {
                    let raws: Vec<usize> = (0..plan.items.len())
                        .filter(|&j| {
                            matches!(
                                plan.items[j].kind,
                                ItemKind::Frame {
                                    class: FrameClass::RawScienceFrame,
                                    ..
                                }
                            ) && plan.items[j]
                                .header
                                .as_ref()
                                .is_some_and(|o| same_exposure(&h, o))
                        })
                        .collect();
                    match raws.as_slice() {
                        [j] => edges.push(Edge {
                            role: "raw".into(),
                            parent: Parent::Batch(*j),
                            rule: "same_exposure",
                            evidence: format!(
                                "same DATE-OBS {}, chip and filter",
                                h.text("DATE-OBS")
                                    .or_else(|| h.text("MJD-OBS"))
                                    .unwrap_or_default()
                            ),
                        }),
                        [] => plan.items[i].notes.push(
                            "no raw exposure of the same chip, filter and time in this batch"
                                .into(),
                        ),
                        many => problems.push(format!(
                            "{} raw exposures share its chip, filter and time: {}",
                            many.len(),
                            many.iter()
                                .map(|&j| plan.items[j].name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                    }
                }
                // Rule `resample_file_name`: `X.resamp.fits` ← `X.fits`, when no
                // SWarp record said it.
                if class == FrameClass::RegriddedFrame && edges.is_empty() {
                    let lower = item.name.to_ascii_lowercase();
                    if let Some(pos) = lower.find(".resamp") {
                        let original = &item.name[..pos];
                        match resolve(original, &names, known) {
                            Ok(Some(p)) if p != Parent::Batch(i) => {
                                let role = class_of(&plan, &p).map(role_for).unwrap_or("frame");
                                edges.push(Edge {
                                    role: role.into(),
                                    parent: p,
                                    rule: "resample_file_name",
                                    evidence: format!("{} is {original} resampled", item.name),
                                });
                            }
                            Ok(_) => unresolved.push(FileError {
                                path: item.path.clone(),
                                message: format!(
                                    "a resampled image of {original}, which is neither in this batch nor in the catalogue"
                                ),
                            }),
                            Err(e) => problems.push(e),
                        }
                    }
                }
            }
            ItemKind::SourceList { .. } => {
                // Rule `ldac_image_header`: the image whose header the catalog
                // carries.
                let mut parent = None;
                if let Some(ch) = &catalog_headers[i] {
                    let mut best: Vec<(usize, usize)> = Vec::new();
                    for (j, other) in plan.items.iter().enumerate() {
                        let (ItemKind::Frame { .. }, Some(oh)) = (&other.kind, &other.header)
                        else {
                            continue;
                        };
                        if let Some(n) = header_agreement(ch, oh).filter(|n| *n >= 3) {
                            best.push((n, j));
                        }
                    }
                    best.sort_by(|a, b| b.cmp(a));
                    let top: Vec<usize> = best
                        .iter()
                        .filter(|b| b.0 == best[0].0)
                        .map(|b| b.1)
                        .collect();
                    let by_stem: Vec<usize> = top
                        .iter()
                        .copied()
                        .filter(|&j| stem(&plan.items[j].name) == stem(&item.name))
                        .collect();
                    match (top.len(), by_stem.len()) {
                        (0, _) => {}
                        (1, _) => parent = Some((top[0], "ldac_image_header")),
                        (_, 1) => parent = Some((by_stem[0], "ldac_image_header")),
                        _ => problems.push(format!(
                            "its LDAC_IMHEAD matches {} images equally: {}",
                            top.len(),
                            top.iter()
                                .map(|&j| plan.items[j].name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                    }
                }
                // Rule `ldac_fitsfile`: SExtractor writes the image's file
                // name (`FITSFILE`) into the header it keeps.
                if parent.is_none()
                    && problems.is_empty()
                    && let Some(v) = catalog_headers[i].as_ref().and_then(|h| h.text("FITSFILE"))
                {
                    match resolve(&v, &names, known) {
                        Ok(Some(Parent::Batch(j))) => parent = Some((j, "ldac_fitsfile")),
                        Ok(Some(Parent::Catalogue(k))) => {
                            edges.push(Edge {
                                role: "frame".into(),
                                parent: Parent::Catalogue(k),
                                rule: "ldac_fitsfile",
                                evidence: format!("FITSFILE = '{v}' in its LDAC_IMHEAD"),
                            });
                        }
                        Ok(None) => {}
                        Err(e) => problems.push(format!("FITSFILE: {e}")),
                    }
                }
                if !edges.is_empty() {
                } else if let Some((j, rule)) = parent {
                    edges.push(Edge {
                        role: "frame".into(),
                        parent: Parent::Batch(j),
                        rule,
                        evidence: if rule == "ldac_fitsfile" {
                            format!("FITSFILE = '{}' in its LDAC_IMHEAD", plan.items[j].name)
                        } else {
                            format!(
                                "its LDAC_IMHEAD agrees with {}'s header",
                                plan.items[j].name
                            )
                        },
                    });
                } else if problems.is_empty() {
                    // Rule `catalog_file_name`: `X.cat`, `X.ldac`, `X.csv`,
                    // `X_cat.fits` ← `X.fits`.
                    let s = stem(&item.name);
                    let s = s
                        .strip_suffix("_cat")
                        .or_else(|| s.strip_suffix(".cat"))
                        .unwrap_or(s);
                    match resolve(s, &names, known) {
                        Ok(Some(p)) if p != Parent::Batch(i) => edges.push(Edge {
                            role: "frame".into(),
                            parent: p,
                            rule: "catalog_file_name",
                            evidence: format!("{} is named after {s}", item.name),
                        }),
                        Ok(_) if !item.explicit => {
                            ignored_late.push((
                                i,
                                "a catalog of no image of the batch or the catalogue (a reference \
                                 catalogue?): name it, with its frame in a manifest, to ingest it"
                                    .to_owned(),
                            ));
                        }
                        Ok(_) => problems.push(format!(
                            "cannot tell which image it was extracted from: {}no image named {s} \
                             in this batch or the catalogue; name its frame in a manifest",
                            if catalog_headers[i].is_some() {
                                "its LDAC_IMHEAD matches no image of this batch, and "
                            } else {
                                ""
                            }
                        )),
                        Err(e) => problems.push(e),
                    }
                }
            }
        }
        // A manifest completes or overrides: its roles replace inferred
        // edges of the same role.
        let ov = overrides
            .get(item.path.to_string_lossy().as_ref())
            .or_else(|| overrides.get(&item.name));
        if let Some(ov) = ov {
            for (role, parent) in &ov.deps {
                edges.retain(|e| &e.role != role || e.rule == "manifest");
                let p = match parent {
                    OverrideParent::File(f) => match names.get(base(f)) {
                        Some(v) if v.len() == 1 => Parent::Batch(v[0]),
                        _ => {
                            problems.push(format!(
                                "the manifest's {role} dependency {f:?} is not one file of this batch"
                            ));
                            continue;
                        }
                    },
                    OverrideParent::Object(id) => Parent::Catalogue(KnownProduct {
                        object_id: *id,
                        filename: format!("#{id}"),
                        class: String::new(),
                    }),
                };
                edges.push(Edge {
                    role: role.clone(),
                    parent: p,
                    rule: "manifest",
                    evidence: "the manifest says so".into(),
                });
            }
        }
        // One edge per (role, parent): rules may agree.
        let mut seen = Vec::new();
        edges.retain(|e| {
            let k = (e.role.clone(), e.parent.clone());
            if seen.contains(&k) {
                false
            } else {
                seen.push(k);
                true
            }
        });
        plan.items[i].edges = edges;
        if !problems.is_empty() {
            failed.insert(i, problems);
        }
    }
    // A cycle among the inferred edges (two combined frames naming each
    // other) fails every file on it.
    for i in cycle_members(&plan) {
        failed
            .entry(i)
            .or_default()
            .push("its inferred dependencies form a cycle".into());
    }
    for (i, problems) in failed {
        plan.errors.push(FileError {
            path: plan.items[i].path.clone(),
            message: problems.join("; "),
        });
    }
    plan.unresolved = unresolved;
    if !ignored_late.is_empty() {
        for (i, why) in &ignored_late {
            plan.ignored
                .push((plan.items[*i].path.clone(), why.clone()));
        }
        let gone: Vec<usize> = ignored_late.iter().map(|(i, _)| *i).collect();
        plan.remove_items(&gone);
    }
    plan
}

/// The names the batch's records may use for products already in the
/// catalogue (each reference word with the usual FITS endings), so the
/// catalogue is asked about those only.
pub fn reference_names(inputs: &[Input]) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut push = |t: &str| {
        for v in [
            t.to_owned(),
            format!("{t}.fits"),
            format!("{t}.fit"),
            format!("{t}.fits.fz"),
            stem(t).to_owned(),
        ] {
            out.insert(v);
        }
    };
    for i in inputs {
        match &i.file.content {
            Content::Image { cards, .. } => {
                let h = header_of(cards);
                for (k, _, _) in CALIBRATION_KEYWORDS {
                    if let Some(v) = h.text(k) {
                        tokens(&v).into_iter().for_each(&mut push);
                    }
                }
                for n in 1..=999 {
                    let Some(v) = h.text(&format!("IMCMB{n:03}")) else {
                        break;
                    };
                    tokens(&v).into_iter().for_each(&mut push);
                }
                if let Some(pos) = i.file.name.to_ascii_lowercase().find(".resamp") {
                    push(&i.file.name[..pos]);
                }
            }
            Content::SwarpXml(r) => r.inputs.iter().for_each(|x| push(base(x))),
            Content::Catalog { .. } => {
                let s = stem(&i.file.name);
                push(
                    s.strip_suffix("_cat")
                        .or_else(|| s.strip_suffix(".cat"))
                        .unwrap_or(s),
                );
            }
            _ => {}
        }
    }
    out.into_iter().collect()
}

impl Plan {
    /// Files with an error or an unresolved reference.
    pub fn failed_paths(&self) -> std::collections::HashSet<PathBuf> {
        self.errors
            .iter()
            .chain(&self.unresolved)
            .map(|e| e.path.clone())
            .collect()
    }

    /// Drops the failed items and everything that depends on them (so
    /// `--keep-going` ingests a consistent rest); returns what was dropped
    /// because of a failed parent.
    pub fn drop_failed(&mut self) -> Vec<FileError> {
        let mut bad: Vec<bool> = self
            .items
            .iter()
            .map(|it| self.failed_paths().contains(&it.path))
            .collect();
        let mut knock_on = Vec::new();
        loop {
            let mut changed = false;
            for i in 0..self.items.len() {
                if bad[i] {
                    continue;
                }
                if let Some(e) = self.items[i]
                    .edges
                    .iter()
                    .find(|e| matches!(e.parent, Parent::Batch(j) if bad[j]))
                {
                    let Parent::Batch(j) = e.parent else {
                        unreachable!()
                    };
                    knock_on.push(FileError {
                        path: self.items[i].path.clone(),
                        message: format!(
                            "not ingested: its {} {} was not",
                            e.role, self.items[j].name
                        ),
                    });
                    bad[i] = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let gone: Vec<usize> = (0..self.items.len()).filter(|&i| bad[i]).collect();
        self.remove_items(&gone);
        knock_on
    }

    /// Removes items (by index) and renumbers the batch edges of the rest;
    /// the removed items must have no children left.
    fn remove_items(&mut self, gone: &[usize]) {
        let mut new_index = vec![usize::MAX; self.items.len()];
        let mut kept = Vec::new();
        for (i, it) in std::mem::take(&mut self.items).into_iter().enumerate() {
            if !gone.contains(&i) {
                new_index[i] = kept.len();
                kept.push(it);
            }
        }
        for it in &mut kept {
            for e in &mut it.edges {
                if let Parent::Batch(j) = &mut e.parent {
                    *j = new_index[*j];
                }
            }
        }
        self.items = kept;
    }

    /// The plan as text, per file: class and rule, metadata, each edge with
    /// its rule; then ignored and unchanged files, unresolved references
    /// and errors.
    pub fn explain(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        for it in &self.items {
            let what = match &it.kind {
                ItemKind::Frame { class, hdu } => format!("{} (HDU {hdu})", class.name()),
                ItemKind::SourceList { format, hdu } => {
                    format!("SourceList ({}, HDU {hdu})", format.name())
                }
            };
            let _ = writeln!(
                s,
                "{}\n  class   {what}  [{}: {}]",
                it.path.display(),
                it.class_rule.0,
                it.class_rule.1
            );
            if let Some(h) = &it.header {
                let meta: Vec<String> = [
                    "INSTRUME", "FILTER", "DATE-OBS", "EXPTIME", "OBJECT", "CCDNAME", "CHIPID",
                ]
                .iter()
                .filter_map(|k| h.text(k).map(|v| format!("{k}={v}")))
                .collect();
                if !meta.is_empty() {
                    let _ = writeln!(s, "  meta    {}", meta.join(" "));
                }
            }
            for e in &it.edges {
                let parent = match &e.parent {
                    Parent::Batch(j) => self.items[*j].name.clone(),
                    Parent::Catalogue(k) => {
                        format!("{} (#{} in the catalogue)", k.filename, k.object_id)
                    }
                };
                let _ = writeln!(
                    s,
                    "  {:<7} ← {parent}  [{}: {}]",
                    e.role, e.rule, e.evidence
                );
            }
            for n in &it.notes {
                let _ = writeln!(s, "  note    {n}");
            }
        }
        for (p, k) in &self.unchanged {
            let _ = writeln!(
                s,
                "unchanged {}: already in the catalogue as {} #{} (same checksum)",
                p.display(),
                k.class,
                k.object_id
            );
        }
        for (p, why) in &self.ignored {
            let _ = writeln!(s, "ignored {}: {why}", p.display());
        }
        for e in &self.unresolved {
            let _ = writeln!(s, "unresolved {e}");
        }
        for e in &self.errors {
            let _ = writeln!(s, "error {e}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::fits::Card;

    fn h(cards: &[(&str, HeaderValue)]) -> Header {
        Header::new(
            &cards
                .iter()
                .map(|(k, v)| Card::new(*k, v.clone(), ""))
                .collect::<Vec<_>>(),
        )
    }
    fn s(v: &str) -> HeaderValue {
        HeaderValue::Str(v.into())
    }

    #[test]
    fn imagetyp_with_processing_state_decides_the_class() {
        let raw = h(&[("IMAGETYP", s("zero"))]);
        assert_eq!(
            class_from_imagetyp(&raw).unwrap().unwrap().0,
            FrameClass::RawBiasFrame
        );
        let master = h(&[("IMAGETYP", s("zero")), ("NCOMBINE", HeaderValue::Int(5))]);
        assert_eq!(
            class_from_imagetyp(&master).unwrap().unwrap().0,
            FrameClass::BiasFrame
        );
        let flat = h(&[("OBSTYPE", s("DOME FLAT")), ("IMCMB001", s("f1.fits"))]);
        assert_eq!(
            class_from_imagetyp(&flat).unwrap().unwrap().0,
            FrameClass::MasterFlatFrame
        );
        let red = h(&[("IMAGETYP", s("object")), ("SUBBIAS", s("ccd=<CCDData>"))]);
        assert_eq!(
            class_from_imagetyp(&red).unwrap().unwrap().0,
            FrameClass::ReducedScienceFrame
        );
        let raw_sci = h(&[("IMAGETYP", s("LIGHT"))]);
        assert_eq!(
            class_from_imagetyp(&raw_sci).unwrap().unwrap().0,
            FrameClass::RawScienceFrame
        );
        assert!(
            class_from_imagetyp(&h(&[("IMAGETYP", s("dark"))]))
                .unwrap()
                .is_err()
        );
        assert!(class_from_imagetyp(&h(&[("IMAGETYP", s("weird"))])).is_none());
    }

    #[test]
    fn iraf_sentences_and_file_names_resolve_to_one_file() {
        let names: HashMap<String, Vec<usize>> = [
            ("Zero".to_owned(), vec![3]),
            ("flat_r.fits".to_owned(), vec![4]),
            ("flat_r".to_owned(), vec![4]),
        ]
        .into_iter()
        .collect();
        let k = Known::default();
        assert_eq!(
            resolve(
                "Dec 14 10:23 Zero level correction image is Zero",
                &names,
                &k
            )
            .unwrap(),
            Some(Parent::Batch(3))
        );
        assert_eq!(
            resolve("cal/flat_r.fits", &names, &k).unwrap(),
            Some(Parent::Batch(4))
        );
        assert_eq!(
            resolve("flat_r", &names, &k).unwrap(),
            Some(Parent::Batch(4))
        );
        assert_eq!(resolve("other.fits", &names, &k).unwrap(), None);
        assert!(resolve("Zero and flat_r.fits", &names, &k).is_err());
        let mut k = Known::default();
        for id in [7, 9] {
            k.add_frame(KnownProduct {
                object_id: id,
                filename: if id == 7 {
                    "b.fits".into()
                } else {
                    "b.fit".into()
                },
                class: "BiasFrame".into(),
            });
        }
        let e = resolve("b", &HashMap::new(), &k).unwrap_err();
        assert!(e.contains("2 catalogue frames"), "{e}");
    }

    #[test]
    fn names_are_the_last_resort() {
        assert_eq!(
            class_from_name("red_001.resamp.fits").unwrap().0,
            FrameClass::RegriddedFrame
        );
        assert_eq!(
            class_from_name("coadd.fits").unwrap().0,
            FrameClass::CoaddedRegriddedFrame
        );
        assert_eq!(
            class_from_name("masterbias.fits").unwrap().0,
            FrameClass::BiasFrame
        );
        assert_eq!(
            class_from_name("bias_003.fits").unwrap().0,
            FrameClass::RawBiasFrame
        );
        assert!(class_from_name("ngc253.fits").is_none());
    }

    #[test]
    fn a_catalog_header_must_agree_on_every_shared_identity_card() {
        let img = h(&[
            ("NAXIS1", HeaderValue::Int(100)),
            ("NAXIS2", HeaderValue::Int(80)),
            ("DATE-OBS", s("2026-01-01T00:00:00")),
            ("CRVAL1", HeaderValue::Float(10.0)),
        ]);
        let same = img.clone();
        assert_eq!(header_agreement(&same, &img), Some(4));
        let other = h(&[
            ("NAXIS1", HeaderValue::Int(100)),
            ("NAXIS2", HeaderValue::Int(81)),
            ("DATE-OBS", s("2026-01-01T00:00:00")),
        ]);
        assert_eq!(header_agreement(&other, &img), None);
    }
}
