//! The large synthetic survey (`wisecut sample --size large`): a million
//! frames with full lineage and a hundred million sources, for measuring
//! the catalogue and the server at survey scale, on a few gigabytes of
//! pixels.
//!
//! The tiny sample is generated and ingested once: it is block 0, the
//! template. Every further block is a copy of its rows (raw biases, flats
//! and science frames, calibration products, reduced, regridded and coadded
//! frames, SourceLists, the dependency edges between them) with object ids,
//! SLIDs and names shifted, observed one day later per epoch, on one of a
//! grid of sky fields. Pixels are shared: calibration frames (no WCS) point
//! at the template's files; frames with a WCS point at their field's copy of
//! the template files whose headers differ only in `CRVAL1`/`CRVAL2`, so a
//! copied frame's header WCS *is* its catalogue WCS and cutouts by position
//! land where the catalogue says (blocks of one field are repeated visits of
//! one pointing and share those files). Sources are the template list's
//! sources (moved up to two pixels) and then further ones spread over the
//! frame, all placed on the sky through the copy's WCS.
//!
//! On PostgreSQL every table is loaded with binary `COPY … FROM STDIN`, the
//! source table's secondary indexes and foreign key dropped and rebuilt
//! around it; on SQLite with multi-row `INSERT`s in one transaction. The
//! sky index (`frame_cell`) is filled for every frame. Associations are
//! only those of the template.

use super::{SampleError, SampleSpec, SharedProgress};
use crate::catalog::{Catalog, CatalogError};
use crate::imaging::wcs::{Wcs, WcsKeywords};
use chrono::{DateTime, Duration, Utc};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait, Value};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// What to make.
#[derive(Debug, Clone)]
pub struct LargeSpec {
    /// At least this many frames (whole template blocks).
    pub frames: u64,
    /// About this many sources in all.
    pub sources: u64,
    /// Seed of the template and of the source jitter.
    pub seed: u64,
    /// Sky fields (distinct pointings, each with its own header copies).
    pub fields: usize,
}

impl LargeSpec {
    /// The defaults: 1,000,000 frames and 100,000,000 sources on
    /// PostgreSQL; 20,000 frames and 1,000,000 sources on SQLite.
    pub fn default_for(db_url: &str, seed: u64) -> Self {
        let pg = db_url.starts_with("postgres");
        Self {
            frames: if pg { 1_000_000 } else { 20_000 },
            sources: if pg { 100_000_000 } else { 1_000_000 },
            seed,
            fields: 200,
        }
    }
}

/// What [`build_large`] wrote.
#[derive(Debug, Clone)]
pub struct LargeSummary {
    /// Frames in the catalogue.
    pub frames: u64,
    /// Sources in the catalogue.
    pub sources: u64,
    /// SourceLists.
    pub source_lists: u64,
    /// Dependency edges.
    pub edges: u64,
    /// `frame_cell` rows.
    pub cells: u64,
    /// Template blocks (the template included).
    pub blocks: u64,
    /// Seconds spent loading sources.
    pub source_seconds: f64,
}

/// Column types, for the binary COPY encoding and SQLite values.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    I32,
    I64,
    F64,
    Text,
    Bool,
    Time,
}

/// One value of a row.
#[derive(Debug, Clone)]
enum Cell {
    Null,
    I(i64),
    F(f64),
    T(String),
    B(bool),
    Time(DateTime<Utc>),
}

struct Table {
    name: &'static str,
    cols: &'static [(&'static str, Kind)],
}

use Kind::*;

const PROCESS_TARGET: Table = Table {
    name: "process_target",
    cols: &[
        ("object_id", I64),
        ("class_name", Text),
        ("creation_date", Time),
        ("is_valid", I32),
        ("quality_flags", I64),
        ("process_status", I32),
        ("creator", Text),
        ("project", Text),
        ("privileges", I32),
        ("superseded_by", I64),
    ],
};

const FRAME: Table = Table {
    name: "frame",
    cols: &[
        ("object_id", I64),
        ("frame_class", Text),
        ("filename", Text),
        ("store", Text),
        ("path", Text),
        ("hdu", I32),
        ("checksum", Text),
        ("file_size", I64),
        ("compressed", Bool),
        ("instrument", Text),
        ("filter", Text),
        ("chip", Text),
        ("object", Text),
        ("date_obs", Time),
        ("mjd_obs", F64),
        ("exptime", F64),
        ("naxis1", I32),
        ("naxis2", I32),
        ("bitpix", I32),
        ("wcs", Text),
        ("ra_center", F64),
        ("dec_center", F64),
        ("ra_min", F64),
        ("ra_max", F64),
        ("dec_min", F64),
        ("dec_max", F64),
        ("footprint", Text),
        ("zeropoint", F64),
        ("seeing", F64),
        ("timestamp_start", Time),
        ("timestamp_end", Time),
        ("extra", Text),
        ("file_mtime_ns", I64),
    ],
};

const SOURCE_LIST: Table = Table {
    name: "source_list",
    cols: &[
        ("object_id", I64),
        ("slid", I64),
        ("name", Text),
        ("frame_id", I64),
        ("filter", Text),
        ("chip", Text),
        ("n_sources", I64),
        ("store", Text),
        ("path", Text),
        ("hdu", I32),
        ("checksum", Text),
    ],
};

const DEPENDENCY: Table = Table {
    name: "dependency",
    cols: &[
        ("child_id", I64),
        ("parent_id", I64),
        ("role", Text),
        ("ordinal", I32),
    ],
};

const FRAME_CELL: Table = Table {
    name: "frame_cell",
    cols: &[("cell", I64), ("frame_id", I64)],
};

const SOURCE: Table = Table {
    name: "source",
    cols: &[
        ("slid", I64),
        ("sid", I64),
        ("ra", F64),
        ("dec", F64),
        ("x", F64),
        ("y", F64),
        ("a", F64),
        ("b", F64),
        ("theta", F64),
        ("mag_auto", F64),
        ("magerr_auto", F64),
        ("flux_auto", F64),
        ("fwhm", F64),
        ("class_star", F64),
        ("flags", I32),
        ("hpx", I64),
    ],
};

fn col(t: &Table, name: &str) -> usize {
    t.cols
        .iter()
        .position(|(c, _)| *c == name)
        .unwrap_or_else(|| panic!("{}.{name} is a column of the table", t.name))
}

/// Reads every row of a template table.
async fn read_table(catalog: &Catalog, t: &Table) -> Result<Vec<Vec<Cell>>, CatalogError> {
    let names: Vec<&str> = t.cols.iter().map(|c| c.0).collect();
    let sql = format!("SELECT {} FROM {}", names.join(", "), t.name);
    let rows = catalog
        .db()
        .query_all_raw(Statement::from_string(catalog.backend(), sql))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let mut cells = Vec::with_capacity(t.cols.len());
        for (name, kind) in t.cols {
            let c = match kind {
                I32 => r
                    .try_get::<Option<i32>>("", name)?
                    .map_or(Cell::Null, |v| Cell::I(v.into())),
                I64 => r
                    .try_get::<Option<i64>>("", name)?
                    .map_or(Cell::Null, Cell::I),
                F64 => r
                    .try_get::<Option<f64>>("", name)?
                    .map_or(Cell::Null, Cell::F),
                Text => r
                    .try_get::<Option<String>>("", name)?
                    .map_or(Cell::Null, Cell::T),
                Bool => r
                    .try_get::<Option<bool>>("", name)?
                    .map_or(Cell::Null, Cell::B),
                Time => r
                    .try_get::<Option<DateTime<Utc>>>("", name)?
                    .map_or(Cell::Null, Cell::Time),
            };
            cells.push(c);
        }
        out.push(cells);
    }
    Ok(out)
}

/// Rows encoded for one backend.
trait Rows {
    fn push(&mut self, kinds: &[(&str, Kind)], row: &[Cell]);
}

/// PostgreSQL's binary COPY tuples (no file header or trailer).
#[derive(Default)]
struct PgBinary(Vec<u8>);

impl Rows for PgBinary {
    fn push(&mut self, kinds: &[(&str, Kind)], row: &[Cell]) {
        let b = &mut self.0;
        b.extend_from_slice(&(row.len() as i16).to_be_bytes());
        for ((_, kind), cell) in kinds.iter().zip(row) {
            match (cell, kind) {
                (Cell::Null, _) => b.extend_from_slice(&(-1i32).to_be_bytes()),
                (Cell::I(v), I32) => {
                    b.extend_from_slice(&4i32.to_be_bytes());
                    b.extend_from_slice(&(*v as i32).to_be_bytes());
                }
                (Cell::I(v), _) => {
                    b.extend_from_slice(&8i32.to_be_bytes());
                    b.extend_from_slice(&v.to_be_bytes());
                }
                (Cell::F(v), _) => {
                    b.extend_from_slice(&8i32.to_be_bytes());
                    b.extend_from_slice(&v.to_bits().to_be_bytes());
                }
                (Cell::T(s), _) => {
                    b.extend_from_slice(&(s.len() as i32).to_be_bytes());
                    b.extend_from_slice(s.as_bytes());
                }
                (Cell::B(v), _) => {
                    b.extend_from_slice(&1i32.to_be_bytes());
                    b.push(u8::from(*v));
                }
                (Cell::Time(t), _) => {
                    // Microseconds since 2000-01-01 00:00 UTC.
                    let us = t.timestamp_micros() - 946_684_800_000_000;
                    b.extend_from_slice(&8i32.to_be_bytes());
                    b.extend_from_slice(&us.to_be_bytes());
                }
            }
        }
    }
}

/// SQLite values for multi-row `INSERT`s.
#[derive(Default)]
struct SqliteRows(Vec<Vec<Value>>);

impl Rows for SqliteRows {
    fn push(&mut self, kinds: &[(&str, Kind)], row: &[Cell]) {
        let values = kinds
            .iter()
            .zip(row)
            .map(|((_, kind), cell)| match (cell, kind) {
                (Cell::Null, I32) => Value::Int(None),
                (Cell::Null, I64) => Value::BigInt(None),
                (Cell::Null, F64) => Value::Double(None),
                (Cell::Null, Text) => Value::String(None),
                (Cell::Null, Bool) => Value::Bool(None),
                (Cell::Null, Time) => Value::ChronoDateTimeUtc(None),
                (Cell::I(v), I32) => Value::Int(Some(*v as i32)),
                (Cell::I(v), _) => Value::BigInt(Some(*v)),
                (Cell::F(v), _) => Value::Double(Some(*v)),
                (Cell::T(s), _) => Value::String(Some(s.clone())),
                (Cell::B(v), _) => Value::Bool(Some(*v)),
                (Cell::Time(t), _) => Value::ChronoDateTimeUtc(Some(*t)),
            })
            .collect();
        self.0.push(values);
    }
}

/// A template frame as a copy needs it.
struct TemplateFrame {
    row: Vec<Cell>,
    wcs: Option<(WcsKeywords, usize, usize)>,
    corners: Vec<(f64, f64)>,
    center: Option<(f64, f64)>,
    path: String,
}

/// A frame with a WCS, placed on one field.
#[derive(Clone)]
struct Placed {
    wcs_json: String,
    keywords: WcsKeywords,
    corners: Vec<(f64, f64)>,
    center: (f64, f64),
    cells: Vec<i64>,
}

/// Everything the blocks are made from.
struct Template {
    targets: Vec<Vec<Cell>>,
    frames: Vec<TemplateFrame>,
    lists: Vec<Vec<Cell>>,
    deps: Vec<Vec<Cell>>,
    /// Template sources by SLID.
    sources: HashMap<i64, Vec<Vec<Cell>>>,
    /// Object ids not copied (AssociateLists).
    skip: HashSet<i64>,
    /// Template frame index by object id.
    frame_index: HashMap<i64, usize>,
    id_stride: i64,
    slid_stride: i64,
    /// `placed[field][frame]`, for frames with a WCS.
    placed: Vec<Vec<Option<Placed>>>,
    /// `(field, template path)` → (checksum, mtime ns) of the field's copy.
    files: FieldFiles,
    sources_per_list: u64,
    fields: usize,
    seed: u64,
}

fn cell_i(c: &Cell) -> Option<i64> {
    match c {
        Cell::I(v) => Some(*v),
        _ => None,
    }
}

fn cell_t(c: &Cell) -> Option<&str> {
    match c {
        Cell::T(s) => Some(s),
        _ => None,
    }
}

/// The sky offset of field `f`: a square grid, 0.25° apart (wider than a
/// tiny-sample coadd, about one HEALPix depth-8 cell), field 0 in place.
fn field_offset(f: usize, fields: usize, dec0: f64) -> (f64, f64) {
    let cols = (fields as f64).sqrt().ceil().max(1.0) as usize;
    let (i, j) = (f % cols, f / cols);
    let ddec = j as f64 * 0.25;
    let dra = i as f64 * 0.25 / (dec0 + ddec).to_radians().cos().max(0.1);
    (dra, ddec)
}

/// Rewrites the `CRVAL1`/`CRVAL2` cards of every header of a FITS file
/// (cards sit on 80-byte boundaries), shifting them by `(dra, ddec)`.
fn patch_crval(bytes: &mut [u8], dra: f64, ddec: f64) -> usize {
    let mut patched = 0;
    let parse = |card: &[u8]| -> Option<f64> {
        let text = std::str::from_utf8(&card[10..]).ok()?;
        let value = text.split('/').next()?.trim();
        value.replace(['D', 'd'], "E").parse().ok()
    };
    for card in bytes.chunks_exact_mut(80) {
        let shift = if card.starts_with(b"CRVAL1  = ") {
            dra
        } else if card.starts_with(b"CRVAL2  = ") {
            ddec
        } else {
            continue;
        };
        let Some(old) = parse(card) else { continue };
        let mut new = old + shift;
        if card[5] == b'1' {
            new = new.rem_euclid(360.0);
        }
        let key = String::from_utf8_lossy(&card[..8]).into_owned();
        let text = format!("{key}= {new:>20.12} / shifted to a sky field by the large sample");
        let mut out = [b' '; 80];
        out[..text.len().min(80)].copy_from_slice(&text.as_bytes()[..text.len().min(80)]);
        card.copy_from_slice(&out);
        patched += 1;
    }
    patched
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SampleError + '_ {
    move |source| SampleError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A field's copy of a template file: `(field, template path)` → (SHA-256,
/// modification time in ns).
type FieldFile = ((usize, String), (String, i64));
type FieldFiles = HashMap<(usize, String), (String, i64)>;

/// Writes each field's copies of the template files that have a WCS.
fn write_field_files(
    data: &Path,
    paths: &[String],
    fields: usize,
    dec0: f64,
    progress: &SharedProgress,
) -> Result<FieldFiles, SampleError> {
    let originals: Vec<(String, Vec<u8>)> = paths
        .iter()
        .map(|p| {
            let full = data.join(p);
            std::fs::read(&full)
                .map(|b| (p.clone(), b))
                .map_err(io_err(&full))
        })
        .collect::<Result<_, _>>()?;
    let done = std::sync::atomic::AtomicUsize::new(0);
    let out: Vec<Vec<FieldFile>> = (1..fields)
        .into_par_iter()
        .map(|f| -> Result<Vec<_>, SampleError> {
            let (dra, ddec) = field_offset(f, fields, dec0);
            let mut rows = Vec::with_capacity(originals.len());
            for (p, bytes) in &originals {
                let mut copy = bytes.clone();
                patch_crval(&mut copy, dra, ddec);
                let rel = field_path(f, p);
                let full = data.join(&rel);
                if let Some(dir) = full.parent() {
                    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
                }
                std::fs::write(&full, &copy).map_err(io_err(&full))?;
                let mtime = std::fs::metadata(&full)
                    .and_then(|m| m.modified())
                    .map_err(io_err(&full))?
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as i64)
                    .unwrap_or(0);
                rows.push(((f, p.clone()), (hex::encode(Sha256::digest(&copy)), mtime)));
            }
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            progress(n, fields - 1, "field copies of the template files");
            Ok(rows)
        })
        .collect::<Result<_, SampleError>>()?;
    Ok(out.into_iter().flatten().collect())
}

fn field_path(f: usize, path: &str) -> String {
    if f == 0 {
        path.to_owned()
    } else {
        format!("fields/f{f:04}/{path}")
    }
}

/// Moves a sky position from the template's WCS onto the copy's.
fn moved(from: &Wcs, to: &Wcs, (ra, dec): (f64, f64)) -> Option<(f64, f64)> {
    let (x, y) = from.sky_to_pix(ra, dec)?;
    to.pix_to_sky(x, y)
}

impl Template {
    fn place(&mut self, fields: usize, dec0: f64) -> Result<(), SampleError> {
        let bad = |e: String| SampleError::Catalog(CatalogError::Invalid(e));
        for f in 0..fields {
            let (dra, ddec) = field_offset(f, fields, dec0);
            let mut row = Vec::with_capacity(self.frames.len());
            for tf in &self.frames {
                let Some((kw, n1, n2)) = &tf.wcs else {
                    row.push(None);
                    continue;
                };
                let mut k = kw.clone();
                k.crval1 = (k.crval1 + dra).rem_euclid(360.0);
                k.crval2 += ddec;
                let from = Wcs::new(kw, *n1, *n2).map_err(|e| bad(e.to_string()))?;
                let to = Wcs::new(&k, *n1, *n2).map_err(|e| bad(e.to_string()))?;
                let corners: Vec<(f64, f64)> = tf
                    .corners
                    .iter()
                    .map(|&c| moved(&from, &to, c))
                    .collect::<Option<_>>()
                    .ok_or_else(|| bad(format!("{}: corners off the projection", tf.path)))?;
                let center = tf
                    .center
                    .and_then(|c| moved(&from, &to, c))
                    .ok_or_else(|| bad(format!("{}: centre off the projection", tf.path)))?;
                let cells = crate::catalog::sky_index::footprint_cells(&corners);
                row.push(Some(Placed {
                    wcs_json: serde_json::to_string(&k).map_err(|e| bad(e.to_string()))?,
                    keywords: k,
                    corners,
                    center,
                    cells,
                }));
            }
            self.placed.push(row);
        }
        Ok(())
    }

    fn field_of(&self, b: u64) -> usize {
        (b % self.fields as u64) as usize
    }

    fn epoch_of(&self, b: u64) -> i64 {
        (b / self.fields as u64) as i64
    }

    fn targets(&self, b: u64, out: &mut dyn Rows) {
        let off = b as i64 * self.id_stride;
        let (id, sup) = (
            col(&PROCESS_TARGET, "object_id"),
            col(&PROCESS_TARGET, "superseded_by"),
        );
        for r in &self.targets {
            if cell_i(&r[id]).is_some_and(|i| self.skip.contains(&i)) {
                continue;
            }
            let mut r = r.clone();
            for c in [id, sup] {
                if let Cell::I(v) = r[c] {
                    r[c] = Cell::I(v + off);
                }
            }
            out.push(PROCESS_TARGET.cols, &r);
        }
    }

    fn frames(&self, b: u64, out: &mut dyn Rows) {
        let off = b as i64 * self.id_stride;
        let (field, epoch) = (self.field_of(b), self.epoch_of(b));
        let c = |n| col(&FRAME, n);
        let days = Duration::days(epoch);
        for (i, tf) in self.frames.iter().enumerate() {
            let mut r = tf.row.clone();
            if let Cell::I(v) = r[c("object_id")] {
                r[c("object_id")] = Cell::I(v + off);
            }
            if let Some(name) = cell_t(&r[c("filename")]) {
                r[c("filename")] = Cell::T(format!("b{b:07}_{name}"));
            }
            for t in ["date_obs", "timestamp_start", "timestamp_end"] {
                if let Cell::Time(v) = r[c(t)] {
                    r[c(t)] = Cell::Time(v + days);
                }
            }
            if let Cell::F(v) = r[c("mjd_obs")] {
                r[c("mjd_obs")] = Cell::F(v + epoch as f64);
            }
            if let Some(p) = &self.placed[field][i] {
                if field > 0 {
                    let (sum, mtime) = &self.files[&(field, tf.path.clone())];
                    r[c("path")] = Cell::T(field_path(field, &tf.path));
                    r[c("checksum")] = Cell::T(sum.clone());
                    r[c("file_mtime_ns")] = Cell::I(*mtime);
                }
                let ras: Vec<f64> = p.corners.iter().map(|c| c.0).collect();
                let (ra_min, ra_max) = crate::catalog::ingest::ra_range(&ras);
                let decs = p.corners.iter().map(|c| c.1);
                r[c("wcs")] = Cell::T(p.wcs_json.clone());
                r[c("ra_center")] = Cell::F(p.center.0);
                r[c("dec_center")] = Cell::F(p.center.1);
                r[c("ra_min")] = Cell::F(ra_min);
                r[c("ra_max")] = Cell::F(ra_max);
                r[c("dec_min")] = Cell::F(decs.clone().fold(f64::INFINITY, f64::min));
                r[c("dec_max")] = Cell::F(decs.fold(f64::NEG_INFINITY, f64::max));
                r[c("footprint")] =
                    Cell::T(serde_json::to_string(&p.corners).unwrap_or_else(|_| "[]".into()));
            }
            out.push(FRAME.cols, &r);
        }
    }

    fn lists(&self, b: u64, out: &mut dyn Rows) {
        let off = b as i64 * self.id_stride;
        let c = |n| col(&SOURCE_LIST, n);
        for r in &self.lists {
            let mut r = r.clone();
            for (name, shift) in [
                ("object_id", off),
                ("frame_id", off),
                ("slid", b as i64 * self.slid_stride),
            ] {
                if let Cell::I(v) = r[c(name)] {
                    r[c(name)] = Cell::I(v + shift);
                }
            }
            if let Some(name) = cell_t(&r[c("name")]) {
                r[c("name")] = Cell::T(format!("b{b:07}_{name}"));
            }
            r[c("n_sources")] = Cell::I(self.sources_per_list as i64);
            out.push(SOURCE_LIST.cols, &r);
        }
    }

    fn deps(&self, b: u64, out: &mut dyn Rows) {
        let off = b as i64 * self.id_stride;
        for r in &self.deps {
            let (Some(child), Some(parent)) = (cell_i(&r[0]), cell_i(&r[1])) else {
                continue;
            };
            if self.skip.contains(&child) || self.skip.contains(&parent) {
                continue;
            }
            let mut r = r.clone();
            r[0] = Cell::I(child + off);
            r[1] = Cell::I(parent + off);
            out.push(DEPENDENCY.cols, &r);
        }
    }

    fn cells(&self, b: u64, out: &mut dyn Rows) {
        let off = b as i64 * self.id_stride;
        let field = self.field_of(b);
        let id = col(&FRAME, "object_id");
        for (i, tf) in self.frames.iter().enumerate() {
            let (Some(p), Some(fid)) = (&self.placed[field][i], cell_i(&tf.row[id])) else {
                continue;
            };
            for &cell in &p.cells {
                out.push(FRAME_CELL.cols, &[Cell::I(cell), Cell::I(fid + off)]);
            }
        }
    }

    /// The sources of block `b`'s lists: the template list's sources
    /// (their measurements cycled), placed through the copy's WCS.
    fn sources(&self, b: u64, out: &mut dyn Rows) {
        let field = self.field_of(b);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(self.seed ^ b.wrapping_mul(0x9E37));
        let c = |n| col(&SOURCE, n);
        let (lslid, lframe) = (col(&SOURCE_LIST, "slid"), col(&SOURCE_LIST, "frame_id"));
        let mut row: Vec<Cell> = vec![Cell::Null; SOURCE.cols.len()];
        for l in &self.lists {
            let Some(slid) = cell_i(&l[lslid]) else {
                continue;
            };
            let frame = cell_i(&l[lframe]).and_then(|id| self.frame_index.get(&id).copied());
            let placed = frame.and_then(|i| self.placed[field][i].as_ref());
            let (n1, n2) = frame
                .and_then(|i| self.frames[i].wcs.as_ref())
                .map_or((1, 1), |w| (w.1, w.2));
            let wcs = placed.and_then(|p| Wcs::new(&p.keywords, n1, n2).ok());
            let template = self.sources.get(&slid).filter(|t| !t.is_empty());
            let new_slid = slid + b as i64 * self.slid_stride;
            for sid in 1..=self.sources_per_list as i64 {
                match template {
                    Some(t) => row.clone_from_slice(&t[(sid as usize - 1) % t.len()]),
                    None => {
                        for (k, v) in [
                            ("a", 1.5),
                            ("b", 1.2),
                            ("theta", 0.0),
                            ("mag_auto", 21.0),
                            ("magerr_auto", 0.05),
                            ("flux_auto", 1000.0),
                            ("fwhm", 3.0),
                            ("class_star", 0.5),
                        ] {
                            row[c(k)] = Cell::F(v);
                        }
                        row[c("flags")] = Cell::I(0);
                        row[c("x")] = Cell::F(n1 as f64 / 2.0);
                        row[c("y")] = Cell::F(n2 as f64 / 2.0);
                        row[c("ra")] = Cell::F(0.0);
                        row[c("dec")] = Cell::F(0.0);
                    }
                }
                row[c("slid")] = Cell::I(new_slid);
                row[c("sid")] = Cell::I(sid);
                if let Some(w) = &wcs {
                    let x = match row[c("x")] {
                        Cell::F(v) => v,
                        _ => n1 as f64 / 2.0,
                    };
                    let y = match row[c("y")] {
                        Cell::F(v) => v,
                        _ => n2 as f64 / 2.0,
                    };
                    // The template's own sources first (moved a little),
                    // then sources spread over the whole frame.
                    let first = template.is_none_or(|t| sid as usize <= t.len());
                    let (x, y) = if first {
                        (
                            x + rng.random_range(-2.0..2.0),
                            y + rng.random_range(-2.0..2.0),
                        )
                    } else {
                        (
                            rng.random_range(1.0..n1 as f64),
                            rng.random_range(1.0..n2 as f64),
                        )
                    };
                    let (x, y) = (x.clamp(1.0, n1 as f64), y.clamp(1.0, n2 as f64));
                    // CDS's projection code checks unit vectors to 1e-15 with
                    // debug assertions (on in dev builds), which rounding
                    // fails about once in 10^8 positions: such a source is
                    // left at its template values rather than abort a load.
                    let sky = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        w.pix_to_sky(x, y)
                    }))
                    .ok()
                    .flatten();
                    if let Some((ra, dec)) = sky {
                        row[c("x")] = Cell::F(x);
                        row[c("y")] = Cell::F(y);
                        row[c("ra")] = Cell::F(ra);
                        row[c("dec")] = Cell::F(dec);
                    }
                }
                let position = match (&row[c("ra")], &row[c("dec")]) {
                    (Cell::F(ra), Cell::F(dec)) => Some((*ra, *dec)),
                    _ => None,
                };
                if let Some((ra, dec)) = position {
                    row[c("hpx")] = Cell::I(crate::catalog::ingest::hpx_index(ra, dec));
                }
                out.push(SOURCE.cols, &row);
            }
        }
    }
}

type Gen = fn(&Template, u64, &mut dyn Rows);

/// Builds the large survey: template files and catalogue rows in
/// `out/data`, everything else into the (empty) catalogue at `db_url`.
pub async fn build_large(
    db_url: &str,
    out: &Path,
    spec: &LargeSpec,
    progress: SharedProgress,
) -> Result<LargeSummary, SampleError> {
    let catalog = Catalog::connect(db_url).await?;
    let objects = count(&catalog, "process_target").await?;
    if objects > 0 {
        return Err(CatalogError::Invalid(format!(
            "the catalogue is not empty ({objects} objects): `wisecut sample --size large` \
             loads only into an empty database; create a new one (or drop this one) and \
             run it again"
        ))
        .into());
    }
    let data = out.join("data");
    if data.exists()
        && std::fs::read_dir(&data)
            .map_err(io_err(&data))?
            .next()
            .is_some()
    {
        return Err(SampleError::Io {
            path: data.clone(),
            source: std::io::Error::other("is not empty: give --out a new directory"),
        });
    }
    std::fs::create_dir_all(&data).map_err(io_err(&data))?;

    // Block 0: the tiny sample, generated and ingested as usual.
    let tiny = SampleSpec::tiny(spec.seed);
    let (d2, p2) = (data.clone(), progress.clone());
    tokio::task::spawn_blocking(move || super::generate(&d2, &tiny, &*p2))
        .await
        .map_err(|e| SampleError::Io {
            path: data.clone(),
            source: std::io::Error::other(format!("generation worker failed: {e}")),
        })??;
    progress(0, 1, "ingesting the template");
    catalog.ingest(&data.join("manifest.json"), &data).await?;

    let mut template = read_template(&catalog, spec).await?;
    let per_block = template.frames.len() as u64;
    let blocks = spec.frames.div_ceil(per_block).max(1);
    let template_sources: u64 = template.sources.values().map(|v| v.len() as u64).sum();
    let copies = (blocks - 1) * template.lists.len() as u64;
    template.sources_per_list = spec
        .sources
        .saturating_sub(template_sources)
        .checked_div(copies)
        .map_or(0, |n| n.max(1));
    template.fields = spec.fields.clamp(1, blocks as usize);
    let dec0 = template
        .frames
        .iter()
        .find_map(|f| f.center.map(|c| c.1))
        .unwrap_or(0.0);
    template.place(template.fields, dec0)?;
    let paths: Vec<String> = {
        let mut p: Vec<String> = template
            .frames
            .iter()
            .filter(|f| f.wcs.is_some())
            .map(|f| f.path.clone())
            .collect();
        p.sort();
        p.dedup();
        p
    };
    let (d2, p2, fields) = (data.clone(), progress.clone(), template.fields);
    template.files =
        tokio::task::spawn_blocking(move || write_field_files(&d2, &paths, fields, dec0, &p2))
            .await
            .map_err(|e| SampleError::Io {
                path: data.clone(),
                source: std::io::Error::other(format!("file worker failed: {e}")),
            })??;

    let template = std::sync::Arc::new(template);
    let tables: [(&Table, Gen); 6] = [
        (&PROCESS_TARGET, Template::targets),
        (&FRAME, Template::frames),
        (&SOURCE_LIST, Template::lists),
        (&DEPENDENCY, Template::deps),
        (&FRAME_CELL, Template::cells),
        (&SOURCE, Template::sources),
    ];
    let mut source_seconds = 0.0;
    let pg = catalog.backend() == DbBackend::Postgres;
    let dropped = if pg {
        drop_source_indexes(&catalog).await?
    } else {
        Vec::new()
    };
    for (table, generate) in tables {
        let started = std::time::Instant::now();
        if pg {
            copy_table(&catalog, table, generate, &template, blocks, &progress).await?;
        } else {
            insert_table(&catalog, table, generate, &template, blocks, &progress).await?;
        }
        if table.name == "source" {
            source_seconds = started.elapsed().as_secs_f64();
        }
    }
    if pg {
        progress(0, 1, "rebuilding the source indexes");
        for sql in &dropped {
            catalog
                .db()
                .execute_unprepared(sql)
                .await
                .map_err(CatalogError::from)?;
        }
        catalog
            .db()
            .execute_unprepared(
                "SELECT setval(pg_get_serial_sequence('process_target', 'object_id'), \
                 (SELECT MAX(object_id) FROM process_target)); \
                 ANALYZE process_target; ANALYZE frame; ANALYZE source_list; \
                 ANALYZE dependency; ANALYZE frame_cell; ANALYZE source;",
            )
            .await
            .map_err(CatalogError::from)?;
    }
    // Cached derived data (the coverage MOC) compares against this
    // generation; a catalogue whose schema has no `catalog_state` yet has
    // no such caches, so a failure here is not one of the load.
    let _ = catalog
        .db()
        .execute_unprepared("UPDATE catalog_state SET value = value + 1 WHERE name = 'frames'")
        .await;
    let summary = LargeSummary {
        frames: count(&catalog, "frame").await?,
        sources: count(&catalog, "source").await?,
        source_lists: count(&catalog, "source_list").await?,
        edges: count(&catalog, "dependency").await?,
        cells: count(&catalog, "frame_cell").await?,
        blocks,
        source_seconds,
    };
    catalog.close().await?;
    Ok(summary)
}

async fn count(catalog: &Catalog, table: &str) -> Result<u64, CatalogError> {
    let row = catalog
        .db()
        .query_one_raw(Statement::from_string(
            catalog.backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await?;
    Ok(row
        .map(|r| r.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0) as u64)
}

async fn read_template(catalog: &Catalog, spec: &LargeSpec) -> Result<Template, SampleError> {
    let targets = read_table(catalog, &PROCESS_TARGET).await?;
    let frame_rows = read_table(catalog, &FRAME).await?;
    let lists = read_table(catalog, &SOURCE_LIST).await?;
    let deps = read_table(catalog, &DEPENDENCY).await?;
    let mut sources: HashMap<i64, Vec<Vec<Cell>>> = HashMap::new();
    for r in read_table(catalog, &SOURCE).await? {
        if let Some(slid) = cell_i(&r[0]) {
            sources.entry(slid).or_default().push(r);
        }
    }
    let (cls, id) = (
        col(&PROCESS_TARGET, "class_name"),
        col(&PROCESS_TARGET, "object_id"),
    );
    let skip = targets
        .iter()
        .filter(|r| cell_t(&r[cls]) == Some("AssociateList"))
        .filter_map(|r| cell_i(&r[id]))
        .collect();
    let id_stride = targets
        .iter()
        .filter_map(|r| cell_i(&r[id]))
        .max()
        .unwrap_or(0);
    let slid_stride = lists
        .iter()
        .filter_map(|r| cell_i(&r[col(&SOURCE_LIST, "slid")]))
        .max()
        .unwrap_or(0);
    let c = |n| col(&FRAME, n);
    let mut frames = Vec::with_capacity(frame_rows.len());
    let mut frame_index = HashMap::new();
    for row in frame_rows {
        let wcs = match cell_t(&row[c("wcs")]) {
            Some(j) => {
                let k: WcsKeywords = serde_json::from_str(j).map_err(|e| {
                    CatalogError::Invalid(format!("template WCS does not parse: {e}"))
                })?;
                let n = |name| cell_i(&row[c(name)]).unwrap_or(0).max(0) as usize;
                Some((k, n("naxis1"), n("naxis2")))
            }
            None => None,
        };
        let corners: Vec<(f64, f64)> = cell_t(&row[c("footprint")])
            .and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or_default();
        let center = match (&row[c("ra_center")], &row[c("dec_center")]) {
            (Cell::F(ra), Cell::F(dec)) => Some((*ra, *dec)),
            _ => None,
        };
        let path = cell_t(&row[c("path")]).unwrap_or_default().to_owned();
        if let Some(i) = cell_i(&row[c("object_id")]) {
            frame_index.insert(i, frames.len());
        }
        frames.push(TemplateFrame {
            row,
            wcs,
            corners,
            center,
            path,
        });
    }
    Ok(Template {
        targets,
        frames,
        lists,
        deps,
        sources,
        skip,
        frame_index,
        id_stride,
        slid_stride,
        placed: Vec::new(),
        files: HashMap::new(),
        sources_per_list: 0,
        fields: 1,
        seed: spec.seed,
    })
}

/// Drops the source table's secondary indexes and foreign keys, returning
/// the statements that rebuild them: one sorted build after the load is
/// far cheaper than a hundred million index insertions and key checks.
async fn drop_source_indexes(catalog: &Catalog) -> Result<Vec<String>, CatalogError> {
    let db = catalog.db();
    let b = catalog.backend();
    let mut rebuild = Vec::new();
    for r in db
        .query_all_raw(Statement::from_string(
            b,
            "SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint \
             WHERE conrelid = 'source'::regclass AND contype = 'f'",
        ))
        .await?
    {
        let (name, def): (String, String) = (r.try_get("", "conname")?, r.try_get("", "def")?);
        db.execute_unprepared(&format!("ALTER TABLE source DROP CONSTRAINT \"{name}\""))
            .await?;
        rebuild.push(format!(
            "ALTER TABLE source ADD CONSTRAINT \"{name}\" {def}"
        ));
    }
    let mut indexes = Vec::new();
    for r in db
        .query_all_raw(Statement::from_string(
            b,
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = 'source' \
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
        ))
        .await?
    {
        let (name, def): (String, String) =
            (r.try_get("", "indexname")?, r.try_get("", "indexdef")?);
        db.execute_unprepared(&format!("DROP INDEX \"{name}\""))
            .await?;
        indexes.push(def);
    }
    // Indexes first (the key check of the foreign key then has them).
    indexes.extend(rebuild);
    Ok(indexes)
}

/// Blocks generated per round: in parallel, then sent in order.
const ROUND: u64 = 16;

async fn copy_table(
    catalog: &Catalog,
    table: &Table,
    generate: Gen,
    template: &std::sync::Arc<Template>,
    blocks: u64,
    progress: &SharedProgress,
) -> Result<(), SampleError> {
    let pool = catalog.db().get_postgres_connection_pool();
    let mut conn = pool.acquire().await.map_err(sqlx_err)?;
    let cols: Vec<&str> = table.cols.iter().map(|c| c.0).collect();
    let sql = format!(
        "COPY {} ({}) FROM STDIN (FORMAT binary)",
        table.name,
        cols.join(", ")
    );
    let mut copy = conn.copy_in_raw(&sql).await.map_err(sqlx_err)?;
    let mut header = b"PGCOPY\n\xff\r\n\0".to_vec();
    header.extend_from_slice(&0i32.to_be_bytes());
    header.extend_from_slice(&0i32.to_be_bytes());
    copy.send(header).await.map_err(sqlx_err)?;
    // A generator thread stays a round ahead of the sender.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Vec<u8>>>(2);
    let t = template.clone();
    let producer = tokio::task::spawn_blocking(move || {
        let mut start = 1;
        while start < blocks {
            let end = (start + ROUND).min(blocks);
            let bufs: Vec<Vec<u8>> = (start..end)
                .into_par_iter()
                .map(|b| {
                    let mut out = PgBinary::default();
                    generate(&t, b, &mut out);
                    out.0
                })
                .collect();
            if tx.blocking_send(bufs).is_err() {
                return;
            }
            start = end;
        }
    });
    let mut done = 1;
    while let Some(bufs) = rx.recv().await {
        for buf in bufs {
            copy.send(buf).await.map_err(sqlx_err)?;
            done += 1;
        }
        progress(done as usize, blocks as usize, table.name);
    }
    producer.await.map_err(|e| SampleError::Io {
        path: PathBuf::from(table.name),
        source: std::io::Error::other(format!("generator failed: {e}")),
    })?;
    copy.send((-1i16).to_be_bytes().to_vec())
        .await
        .map_err(sqlx_err)?;
    copy.finish().await.map_err(sqlx_err)?;
    Ok(())
}

fn sqlx_err(e: sea_orm::sqlx::Error) -> SampleError {
    SampleError::Catalog(CatalogError::Invalid(format!("bulk load: {e}")))
}

/// SQLite: multi-row `INSERT`s, as many rows per statement as its
/// parameter limit allows, all in one transaction.
async fn insert_table(
    catalog: &Catalog,
    table: &Table,
    generate: Gen,
    template: &Template,
    blocks: u64,
    progress: &SharedProgress,
) -> Result<(), SampleError> {
    let txn = catalog.db().begin().await.map_err(CatalogError::from)?;
    let cols: Vec<&str> = table.cols.iter().map(|c| c.0).collect();
    let per = (32_000 / cols.len()).max(1);
    let tuple = format!("({})", vec!["?"; cols.len()].join(", "));
    for b in 1..blocks {
        let mut rows = SqliteRows::default();
        generate(template, b, &mut rows);
        for chunk in rows.0.chunks(per) {
            let sql = format!(
                "INSERT INTO {} ({}) VALUES {}",
                table.name,
                cols.join(", "),
                vec![tuple.as_str(); chunk.len()].join(", ")
            );
            let values: Vec<Value> = chunk.iter().flatten().cloned().collect();
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                sql,
                values,
            ))
            .await
            .map_err(CatalogError::from)?;
        }
        if b % 16 == 0 || b + 1 == blocks {
            progress(b as usize + 1, blocks as usize, table.name);
        }
    }
    txn.commit().await.map_err(CatalogError::from)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crval_cards_are_shifted_and_nothing_else() {
        let mut block = vec![b' '; 2880];
        let card = |k: &str, v: f64| format!("{k:<8}= {v:>20} / c").into_bytes();
        let a = card("CRVAL1", 359.9);
        let b = card("CRVAL2", 2.2);
        let c = card("CRPIX1", 10.0);
        block[..a.len()].copy_from_slice(&a);
        block[80..80 + b.len()].copy_from_slice(&b);
        block[160..160 + c.len()].copy_from_slice(&c);
        assert_eq!(patch_crval(&mut block, 0.2, 0.5), 2);
        let text = String::from_utf8(block).unwrap();
        let value = |i: usize| -> f64 { text[i * 80 + 10..i * 80 + 30].trim().parse().unwrap() };
        assert!((value(0) - 0.1).abs() < 1e-9, "{}", &text[..80]);
        assert!((value(1) - 2.7).abs() < 1e-9);
        assert_eq!(value(2), 10.0);
    }

    #[test]
    fn fields_are_apart_and_field_zero_stays() {
        assert_eq!(field_offset(0, 100, 2.0), (0.0, 0.0));
        let (a, b) = (field_offset(1, 100, 2.0), field_offset(10, 100, 2.0));
        assert!(a.0 > 0.2 && a.1 == 0.0);
        assert!(b.0 == 0.0 && b.1 > 0.2);
    }
}
