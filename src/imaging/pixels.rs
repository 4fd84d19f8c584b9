//! Fast region reads for cutouts: an opened image HDU ([`PixelSource`]) that
//! keeps what every request would otherwise re-derive, and a small cache of
//! them ([`PixelSources`]).
//!
//! Three ways to reach the pixels, chosen when a source is opened:
//!
//! * **Plain images** are read with positional reads (`pread`) straight from
//!   the data unit whose offset cfitsio reported once: one read per cutout row,
//!   no cfitsio call per request, safe from any number of threads at once.
//! * **Tile-compressed images with compact tiles** (e.g. 256×256) go through
//!   cfitsio, which decompresses only the tiles a region touches.
//! * **Tile-compressed images with wide tiles** (row tiles, as Pan-STARRS
//!   stores its stacks) would make every cutout decompress whole image rows —
//!   a 240-pixel cutout of a 6000-pixel-wide image touches 1.4 M pixels. Such
//!   an image is decompressed once into a *sidecar*: a raw, uncompressed copy
//!   of its (scaled) values under a size-bounded directory ([`Sidecars`]),
//!   after which it is served like a plain image. This is the "re-tiling"
//!   option, with the trivial tiling of an uncompressed array.
//!
//! Values come back as [`Region`]: the stored values unchanged for plain
//! images, or BSCALE/BZERO-applied values with NaN for undefined pixels for
//! the other two paths (cfitsio hands compressed pixels back that way); the
//! cutout code turns either into its output without loss.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::imaging::fits::{self, Card, FitsError, RawPixels};
use crate::imaging::row_bands::{self, BAND_ROWS, BandKey, Lookup, RowBands};
use crate::imaging::wcs::{Header, KeywordSource, Wcs, WcsKeywords};

/// BSCALE, BZERO and BLANK of an image HDU.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scaling {
    /// `BSCALE` (1 when absent).
    pub bscale: f64,
    /// `BZERO` (0 when absent).
    pub bzero: f64,
    /// `BLANK`, for integer images that declare one.
    pub blank: Option<i64>,
}

impl Scaling {
    /// Whether BSCALE/BZERO change the stored values.
    pub fn is_identity(&self) -> bool {
        self.bscale == 1.0 && self.bzero == 0.0
    }
}

/// Pixels of a region, in one of two exact representations.
#[derive(Debug, Clone, PartialEq)]
pub enum Region {
    /// The stored values, unscaled, with `BLANK` (if any) marking undefined
    /// pixels.
    Raw(RawPixels),
    /// Physical values (BSCALE/BZERO applied), NaN for undefined pixels.
    Scaled(Vec<f64>),
}

/// How a source reaches its pixels.
#[derive(Debug)]
enum Access {
    Plain { file: File, offset: u64 },
    Compressed,
    Sidecar { file: File, double: bool },
}

/// What identifies the version of a file on disk: a replaced or rewritten
/// file gets a new source (and a new sidecar).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
}

impl FileStamp {
    fn of(path: &Path) -> Result<Self, FitsError> {
        let meta = std::fs::metadata(path).map_err(|source| FitsError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }
}

/// An opened image HDU, ready for any number of concurrent region reads.
#[derive(Debug)]
pub struct PixelSource {
    path: PathBuf,
    hdu: usize,
    /// `NAXIS1`.
    pub width: usize,
    /// `NAXIS2`.
    pub height: usize,
    /// `BITPIX` of the stored (uncompressed) image.
    pub bitpix: i32,
    /// The header as cfitsio presents it (for a compressed image: the header
    /// of the uncompressed image).
    pub header: Vec<Card>,
    /// The header indexed by keyword (first occurrence wins).
    pub keys: Header,
    /// The header cards that can be written again (valid keywords, printable
    /// text), first occurrence of each keyword only: the starting point of
    /// every cutout header, prepared once rather than per request.
    pub writable: Vec<Card>,
    /// BSCALE / BZERO / BLANK from the header.
    pub scaling: Scaling,
    /// The celestial WCS, if the header has a usable one.
    pub wcs: Option<Wcs>,
    /// Why the header's WCS could not be used, when it has one that is not.
    pub wcs_problem: Option<String>,
    access: Access,
    stamp: FileStamp,
    /// This opening's serial number: the key of its row bands.
    serial: u64,
    /// Hot rows in memory, when the server keeps them.
    bands: Option<Arc<RowBands>>,
    /// For a sparse local mirror of a remote file: what makes the bytes a
    /// read needs present first.
    prefetch: Option<Arc<dyn Prefetch>>,
}

/// Makes the bytes a read needs present in the file before it is read. The
/// file of a frame in a remote store is a sparse local mirror
/// (`crate::stores::blocks`) holding only the blocks fetched so far; the
/// imaging core only says what it is about to read, and stays free of
/// network code.
pub trait Prefetch: Send + Sync + std::fmt::Debug {
    /// Bytes `[start, start + len)` of the file.
    fn bytes(&self, start: u64, len: u64) -> std::io::Result<()>;
    /// Everything cfitsio reads for the region `[x0, x0+w) × [y0, y0+h)` of
    /// the tile-compressed HDU this source reads.
    fn tiles(&self, x0: usize, y0: usize, w: usize, h: usize) -> std::io::Result<()>;
}

/// Opens a file for the many small positional reads of cutouts, without
/// access-time updates where the kernel allows it (`O_NOATIME` needs the
/// file's owner): each cutout is a few hundred `pread`s, and updating the
/// access time on each cost a few per cent of a busy server.
fn open_for_reads(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOATIME)
        .open(path)
    {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => File::open(path),
        other => other,
    }
}

fn io_error(path: &Path, source: std::io::Error) -> FitsError {
    FitsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl PixelSource {
    /// Opens image HDU `hdu` (zero-based) of `path`. With `sidecars`, a
    /// compressed image whose tiles make cutouts expensive is decompressed
    /// once into a sidecar (see the module documentation).
    pub fn open(path: &Path, hdu: usize, sidecars: Option<&Sidecars>) -> Result<Self, FitsError> {
        let stamp = FileStamp::of(path)?;
        let layout = fits::hdu_layout(path, hdu)?;
        let header = fits::read_header(path, hdu)?;
        let keys = Header::new(&header);
        let integer = layout.info.bitpix > 0;
        let scaling = Scaling {
            bscale: keys.number("BSCALE").unwrap_or(1.0),
            bzero: keys.number("BZERO").unwrap_or(0.0),
            blank: if integer {
                keys.number("BLANK").map(|v| v as i64)
            } else {
                None
            },
        };
        let (width, height) = (layout.info.width, layout.info.height);
        let (wcs, wcs_problem) = match WcsKeywords::from_header(&keys) {
            Ok(Some(kw)) => match Wcs::new(&kw, width, height) {
                Ok(w) => (Some(w), None),
                Err(e) => (None, Some(e.to_string())),
            },
            Ok(None) => (None, None),
            Err(e) => (None, Some(e.to_string())),
        };
        let access = match (layout.data_offset, layout.tile) {
            (Some(offset), _) => Access::Plain {
                file: open_for_reads(path).map_err(|e| io_error(path, e))?,
                offset,
            },
            (None, Some(tile)) => match sidecars {
                Some(store) if wide_tiles(width, height, tile) => {
                    store.sidecar_for(path, hdu, stamp, &layout.info)?
                }
                _ => Access::Compressed,
            },
            (None, None) => Access::Compressed,
        };
        let mut seen = std::collections::HashSet::new();
        let writable = header
            .iter()
            .filter(|c| {
                let commentary = matches!(c.key.as_str(), "COMMENT" | "HISTORY" | "");
                (commentary || seen.insert(c.key.clone())) && fits::card_is_writable(c)
            })
            .cloned()
            .collect();
        Ok(Self {
            path: path.to_path_buf(),
            hdu,
            width,
            height,
            bitpix: layout.info.bitpix,
            header,
            keys,
            writable,
            scaling,
            wcs,
            wcs_problem,
            access,
            stamp,
            serial: row_bands::next_serial(),
            bands: None,
            prefetch: None,
        })
    }

    /// The file this source reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The zero-based HDU this source reads.
    pub fn hdu(&self) -> usize {
        self.hdu
    }

    /// How the pixels are reached: `plain`, `compressed` or `sidecar`.
    pub fn access(&self) -> &'static str {
        match self.access {
            Access::Plain { .. } => "plain",
            Access::Compressed => "compressed",
            Access::Sidecar { .. } => "sidecar",
        }
    }

    /// Reads `[x0, x0+w) × [y0, y0+h)` (zero-based, inside the image).
    pub fn read(&self, x0: usize, y0: usize, w: usize, h: usize) -> Result<Region, FitsError> {
        let inside = |start: usize, len: usize, size: usize| {
            start.checked_add(len).is_some_and(|end| end <= size)
        };
        if !inside(x0, w, self.width) || !inside(y0, h, self.height) {
            return Err(FitsError::Invalid {
                path: self.path.clone(),
                message: format!(
                    "region x {x0}+{w}, y {y0}+{h} lies outside the {}x{} image",
                    self.width, self.height
                ),
            });
        }
        match &self.access {
            Access::Plain { file, offset } => {
                let bpp = (self.bitpix.unsigned_abs() / 8) as usize;
                self.prefetch_rows(*offset, bpp, y0, h)?;
                let bytes = self.read_rows(file, *offset, bpp, x0, y0, w, h)?;
                RawPixels::from_be_bytes(self.bitpix, &bytes)
                    .map(Region::Raw)
                    .ok_or_else(|| FitsError::Invalid {
                        path: self.path.clone(),
                        message: format!("BITPIX {} cannot be decoded", self.bitpix),
                    })
            }
            Access::Compressed => {
                if let Some(p) = &self.prefetch
                    && w > 0
                    && h > 0
                {
                    p.tiles(x0, y0, w, h).map_err(|e| io_error(&self.path, e))?;
                }
                fits::read_region::<f64>(&self.path, self.hdu, x0, y0, w, h)
                    .map(|region| Region::Scaled(region.data))
            }
            Access::Sidecar { file, double } => {
                let bpp = if *double { 8 } else { 4 };
                let bytes = self.read_rows(file, 0, bpp, x0, y0, w, h)?;
                let values = if *double {
                    bytes
                        .chunks_exact(8)
                        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                        .collect()
                } else {
                    bytes
                        .chunks_exact(4)
                        .map(|c| f64::from(f32::from_le_bytes(c.try_into().expect("4 bytes"))))
                        .collect()
                };
                Ok(Region::Scaled(values))
            }
        }
    }

    /// For an image read with `pread` from its own file (plain, not
    /// compressed): copies the stored, big-endian bytes of the `w` × `h`
    /// region at (`x0`, `y0`) into `dst`, row `r` at `dst[r * stride..]`,
    /// without decoding them, and returns `true`. Returns `false` (and
    /// touches nothing) for other images. A FITS cutout of a plain file is
    /// then its header plus these bytes.
    pub fn read_stored_rows(
        &self,
        x0: usize,
        y0: usize,
        w: usize,
        h: usize,
        dst: &mut [u8],
        stride: usize,
    ) -> Result<bool, FitsError> {
        let Access::Plain { file, offset } = &self.access else {
            return Ok(false);
        };
        let bpp = (self.bitpix.unsigned_abs() / 8) as usize;
        let row_bytes = w * bpp;
        let fits = |start: usize, len: usize, size: usize| {
            start.checked_add(len).is_some_and(|e| e <= size)
        };
        if !fits(x0, w, self.width)
            || !fits(y0, h, self.height)
            || (h > 0 && (h - 1) * stride + row_bytes > dst.len())
        {
            return Err(FitsError::Invalid {
                path: self.path.clone(),
                message: format!("stored rows x {x0}+{w}, y {y0}+{h} do not fit"),
            });
        }
        self.prefetch_rows(*offset, bpp, y0, h)?;
        self.copy_rows(file, *offset, bpp, x0, y0, w, h, dst, stride)?;
        Ok(true)
    }

    /// Makes rows `y0..y0 + h` of a plain image at byte `offset` present
    /// (whole row bands when bands are kept, as [`Self::copy_rows`] then
    /// reads whole bands).
    fn prefetch_rows(&self, offset: u64, bpp: usize, y0: usize, h: usize) -> Result<(), FitsError> {
        let Some(p) = &self.prefetch else {
            return Ok(());
        };
        if h == 0 {
            return Ok(());
        }
        let (first, end) = match self.bands {
            Some(_) => (
                y0 / BAND_ROWS * BAND_ROWS,
                (y0 + h).div_ceil(BAND_ROWS) * BAND_ROWS,
            ),
            None => (y0, y0 + h),
        };
        let end = end.min(self.height);
        let row_len = (self.width * bpp) as u64;
        p.bytes(
            offset + first as u64 * row_len,
            (end - first) as u64 * row_len,
        )
        .map_err(|e| io_error(&self.path, e))
    }

    /// Copies rows `y0..y0 + h`, columns `x0..x0 + w` of an array of
    /// `self.width` pixels of `bpp` bytes starting at byte `offset` of
    /// `file` into `dst`, row `r` at `dst[r * stride..]`: from the row
    /// bands in memory where they are, by one `pread` per row otherwise.
    fn copy_rows(
        &self,
        file: &File,
        offset: u64,
        bpp: usize,
        x0: usize,
        y0: usize,
        w: usize,
        h: usize,
        dst: &mut [u8],
        stride: usize,
    ) -> Result<(), FitsError> {
        let (row_len, seg) = (self.width * bpp, w * bpp);
        let read_at = |buf: &mut [u8], at: u64| {
            file.read_exact_at(buf, offset + at)
                .map_err(|e| io_error(&self.path, e))
        };
        let mut r = 0;
        while r < h {
            let y = y0 + r;
            let (band, first) = (y / BAND_ROWS, y / BAND_ROWS * BAND_ROWS);
            let band_rows = BAND_ROWS.min(self.height - first);
            let rows = (first + band_rows - y).min(h - r);
            let cached = match &self.bands {
                None => None,
                Some(cache) => {
                    let key = BandKey {
                        image: self.serial,
                        band,
                    };
                    match cache.lookup(key, band_rows * row_len) {
                        Lookup::Hit(bytes) => Some(bytes),
                        Lookup::Load => {
                            let mut buf = vec![0u8; band_rows * row_len];
                            read_at(&mut buf, (first * row_len) as u64)?;
                            let bytes: Arc<[u8]> = buf.into();
                            cache.insert(key, Arc::clone(&bytes));
                            Some(bytes)
                        }
                        Lookup::Skip => None,
                    }
                }
            };
            if cached.is_none() && seg == row_len && stride == seg {
                // Whole rows are contiguous in the file: one read for all.
                let at = (y * row_len) as u64;
                read_at(&mut dst[r * stride..(r + rows) * stride], at)?;
                r += rows;
                continue;
            }
            for i in 0..rows {
                let out = &mut dst[(r + i) * stride..(r + i) * stride + seg];
                match &cached {
                    Some(band) => {
                        let at = (y + i - first) * row_len + x0 * bpp;
                        out.copy_from_slice(&band[at..at + seg]);
                    }
                    None => read_at(out, (((y + i) * self.width + x0) * bpp) as u64)?,
                }
            }
            r += rows;
        }
        Ok(())
    }

    /// Reads `h` rows of `w` pixels of `bpp` bytes from an array of
    /// `self.width` columns starting at byte `offset`, packed row after row.
    fn read_rows(
        &self,
        file: &File,
        offset: u64,
        bpp: usize,
        x0: usize,
        y0: usize,
        w: usize,
        h: usize,
    ) -> Result<Vec<u8>, FitsError> {
        let row_bytes = w * bpp;
        let mut buf = vec![0u8; row_bytes * h];
        if row_bytes > 0 {
            self.copy_rows(file, offset, bpp, x0, y0, w, h, &mut buf, row_bytes)?;
        }
        Ok(buf)
    }
}

/// Whether a typical cutout (256×256) of an image with this tiling would
/// decompress far more than it returns: more than 16 times its own area and
/// more than a million pixels. Row tiles of any large image qualify; 256×256
/// tiles (4 tiles at worst) do not, nor does any small image.
pub fn wide_tiles(width: usize, height: usize, tile: (usize, usize)) -> bool {
    const PROBE: usize = 256;
    let span = |size: usize, t: usize| {
        let t = t.clamp(1, size.max(1));
        ((PROBE.min(size)).div_ceil(t) + 1).min(size.div_ceil(t)) * t
    };
    let touched = span(width, tile.0) * span(height, tile.1);
    let area = PROBE.min(width) * PROBE.min(height);
    touched > 16 * area && touched > 1_000_000
}

/// A size-bounded directory of decompressed copies of wide-tiled images.
///
/// A sidecar is named after the file's path, length, modification time and
/// HDU, so a changed file never meets a stale copy. It holds the image's
/// physical values (BSCALE/BZERO applied, NaN for undefined pixels) as
/// little-endian f32 — exact for 8- and 16-bit integers and f32 — or f64 for
/// the other types. When the directory would exceed its bound, the least
/// recently created sidecars are removed; an image larger than the whole
/// bound is served compressed instead.
#[derive(Debug)]
pub struct Sidecars {
    dir: PathBuf,
    max_bytes: u64,
    /// Serialises creation, so two requests for the same new image
    /// decompress it once.
    creating: Mutex<()>,
}

impl Sidecars {
    /// A store in `dir` (created if absent) holding at most `max_bytes`.
    pub fn new(dir: impl Into<PathBuf>, max_bytes: u64) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        // Leftovers of an interrupted creation are useless.
        for entry in std::fs::read_dir(&dir)?.flatten() {
            if entry.path().extension().is_some_and(|e| e == "part") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(Self {
            dir,
            max_bytes,
            creating: Mutex::new(()),
        })
    }

    /// Total bytes of the sidecars on disk now.
    pub fn bytes(&self) -> u64 {
        self.entries().iter().map(|(_, len, _)| len).sum()
    }

    fn entries(&self) -> Vec<(PathBuf, u64, SystemTime)> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        dir.flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "raw"))
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                Some((e.path(), meta.len(), meta.modified().ok()?))
            })
            .collect()
    }

    fn sidecar_for(
        &self,
        path: &Path,
        hdu: usize,
        stamp: FileStamp,
        info: &fits::ImageInfo,
    ) -> Result<Access, FitsError> {
        let double = !matches!(info.bitpix, 8 | 16 | -32);
        let bpp: u64 = if double { 8 } else { 4 };
        let size = info.width as u64 * info.height as u64 * bpp;
        if size > self.max_bytes {
            return Ok(Access::Compressed);
        }
        let mut hasher = Sha256::new();
        hasher.update(path.to_string_lossy().as_bytes());
        hasher.update(stamp.len.to_le_bytes());
        let nanos = stamp
            .modified
            .and_then(|m| m.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        hasher.update(nanos.to_le_bytes());
        hasher.update((hdu as u64).to_le_bytes());
        let name = hex::encode(&hasher.finalize()[..16]);
        let target = self.dir.join(format!("{name}.raw"));

        let _guard = self.creating.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(file) = open_for_reads(&target)
            && file.metadata().is_ok_and(|m| m.len() == size)
        {
            // Mark it as recently used for eviction.
            let _ = file.set_modified(SystemTime::now());
            return Ok(Access::Sidecar { file, double });
        }
        self.make_room(size);
        let part = self.dir.join(format!("{name}.part"));
        let written = write_sidecar(path, hdu, info, double, &part);
        if let Err(e) = written {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
        std::fs::rename(&part, &target).map_err(|e| io_error(&target, e))?;
        let file = open_for_reads(&target).map_err(|e| io_error(&target, e))?;
        Ok(Access::Sidecar { file, double })
    }

    /// Removes the oldest sidecars until `incoming` more bytes fit.
    fn make_room(&self, incoming: u64) {
        let mut entries = self.entries();
        let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
        entries.sort_by_key(|(_, _, modified)| *modified);
        for (path, len, _) in entries {
            if total + incoming <= self.max_bytes {
                break;
            }
            // A reader that still has the file open keeps reading it: on Unix
            // removal only drops the name.
            if std::fs::remove_file(&path).is_ok() {
                total -= len;
            }
        }
    }
}

/// Decompresses the image band by band (about 8 M pixels at a time, so memory
/// stays bounded) into `part`.
fn write_sidecar(
    path: &Path,
    hdu: usize,
    info: &fits::ImageInfo,
    double: bool,
    part: &Path,
) -> Result<(), FitsError> {
    use std::io::Write;
    let file = File::create(part).map_err(|e| io_error(part, e))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let band = (8_000_000 / info.width.max(1)).max(1);
    let mut y = 0;
    while y < info.height {
        let h = band.min(info.height - y);
        let values = fits::read_region::<f64>(path, hdu, 0, y, info.width, h)?.data;
        let mut bytes = Vec::with_capacity(values.len() * if double { 8 } else { 4 });
        for v in values {
            if double {
                bytes.extend_from_slice(&v.to_le_bytes());
            } else {
                bytes.extend_from_slice(&(v as f32).to_le_bytes());
            }
        }
        out.write_all(&bytes).map_err(|e| io_error(part, e))?;
        y += h;
    }
    out.into_inner()
        .map_err(|e| io_error(part, e.into_error()))?
        .sync_all()
        .map_err(|e| io_error(part, e))
}

/// A bounded cache of opened sources, keyed by (path, HDU). Each lookup checks
/// the file's length and modification time, so a replaced file is reopened.
#[derive(Debug)]
pub struct PixelSources {
    capacity: usize,
    sidecars: Option<Sidecars>,
    bands: Option<Arc<RowBands>>,
    state: Mutex<CacheState>,
}

#[derive(Debug, Default)]
struct CacheState {
    tick: u64,
    entries: HashMap<(PathBuf, usize), (Arc<PixelSource>, u64)>,
}

impl PixelSources {
    /// A cache of at most `capacity` open sources (each holds one file
    /// descriptor), optionally with a sidecar store for wide-tiled images.
    pub fn new(capacity: usize, sidecars: Option<Sidecars>) -> Self {
        Self {
            capacity: capacity.max(1),
            sidecars,
            bands: None,
            state: Mutex::new(CacheState::default()),
        }
    }

    /// Keeps hot rows of the opened images in `bands` (see
    /// [`crate::imaging::row_bands`]).
    pub fn with_row_bands(mut self, bands: Arc<RowBands>) -> Self {
        self.bands = Some(bands);
        self
    }

    /// The row-band cache, when there is one.
    pub fn row_bands(&self) -> Option<&RowBands> {
        self.bands.as_deref()
    }

    /// The source for image HDU `hdu` of `path`, opened on first use.
    pub fn get(&self, path: &Path, hdu: usize) -> Result<Arc<PixelSource>, FitsError> {
        self.get_with(path, hdu, None)
    }

    /// [`PixelSources::get`] for a file whose reads go through `prefetch`
    /// first (a sparse mirror of a remote file).
    pub fn get_with(
        &self,
        path: &Path,
        hdu: usize,
        prefetch: Option<Arc<dyn Prefetch>>,
    ) -> Result<Arc<PixelSource>, FitsError> {
        let stamp = FileStamp::of(path)?;
        let key = (path.to_path_buf(), hdu);
        {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.tick += 1;
            let tick = state.tick;
            if let Some((source, used)) = state.entries.get_mut(&key)
                && source.stamp == stamp
            {
                *used = tick;
                return Ok(Arc::clone(source));
            }
        }
        // Opening reads the header (and may build a sidecar): done without
        // the lock so other sources stay available meanwhile.
        let mut opened = PixelSource::open(path, hdu, self.sidecars.as_ref())?;
        opened.bands = self.bands.clone();
        opened.prefetch = prefetch;
        let source = Arc::new(opened);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.tick += 1;
        let tick = state.tick;
        state.entries.insert(key, (Arc::clone(&source), tick));
        while state.entries.len() > self.capacity {
            let oldest = state
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => state.entries.remove(&k),
                None => break,
            };
        }
        Ok(source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_tile_rule() {
        // Pan-STARRS-like row tiles of a big image: sidecar.
        assert!(wide_tiles(6000, 6000, (6000, 1)));
        // Square tiles: cfitsio reads only the tiles it needs.
        assert!(!wide_tiles(6000, 6000, (256, 256)));
        // A small image is cheap to decompress whatever its tiles.
        assert!(!wide_tiles(512, 512, (512, 1)));
    }

    /// Reads through the row bands give the bytes of direct reads, bands are
    /// loaded on the second touch and then hit, and a rewritten file is
    /// read anew, never from bands of its old bytes.
    #[test]
    fn row_bands_serve_the_same_bytes_and_follow_the_file() {
        use crate::imaging::fits::{Compression, PixelData};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain.fits");
        let (w, h) = (300, 70);
        let write = |offset: f32| {
            let _ = std::fs::remove_file(&path);
            let img = crate::imaging::raster::Raster::from_vec(
                w,
                h,
                (0..w * h).map(|i| i as f32 + offset).collect(),
            );
            fits::write_image(&path, PixelData::F32(&img), &[], &Compression::None).unwrap()
        };
        let hdu = write(0.0);
        let bands = Arc::new(RowBands::new(64 << 20));
        let cached = PixelSources::new(4, None).with_row_bands(Arc::clone(&bands));
        let direct = PixelSource::open(&path, hdu, None).unwrap();
        let regions = [
            (0, 0, 10, 10),
            (5, 13, 40, 20),
            (299, 69, 1, 1),
            (0, 0, 300, 70),
            (250, 30, 50, 40),
        ];
        for round in 0..3 {
            let src = cached.get(&path, hdu).unwrap();
            for &(x0, y0, cw, ch) in &regions {
                let (Region::Raw(a), Region::Raw(b)) = (
                    src.read(x0, y0, cw, ch).unwrap(),
                    direct.read(x0, y0, cw, ch).unwrap(),
                ) else {
                    panic!("plain reads are raw")
                };
                assert_eq!(a, b, "round {round} region {x0},{y0} {cw}x{ch}");
                let mut out = vec![0u8; cw * ch * 4 + 8];
                assert!(
                    src.read_stored_rows(x0, y0, cw, ch, &mut out[4..], cw * 4)
                        .unwrap()
                );
                let mut want = vec![0u8; cw * ch * 4 + 8];
                direct
                    .read_stored_rows(x0, y0, cw, ch, &mut want[4..], cw * 4)
                    .unwrap();
                assert_eq!(out, want);
            }
        }
        let s = bands.stats();
        assert!(s.loads > 0 && s.hits > 0, "{s:?}");
        assert!(s.bands <= h.div_ceil(BAND_ROWS), "{s:?}");
        // Rewrite the file (new values, new length-preserving bytes and a
        // new modification time): the next read sees the new values.
        std::thread::sleep(std::time::Duration::from_millis(20));
        write(1000.0);
        let src = cached.get(&path, hdu).unwrap();
        let Region::Raw(RawPixels::F32(v)) = src.read(0, 0, 2, 1).unwrap() else {
            panic!("float")
        };
        assert_eq!(v, vec![1000.0, 1001.0]);
    }
}
