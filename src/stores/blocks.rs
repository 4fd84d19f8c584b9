//! Remote frames read with byte ranges into a bounded local block cache.
//!
//! A frame in a remote store (an HTTP data server or S3-compatible object
//! storage) is read through a *mirror*: a sparse local file of the object's
//! size in which only the 64 KiB blocks fetched so far are written, with a
//! bitmap of which are present. Before the existing readers (`pread` for
//! plain images, cfitsio for tile-compressed ones) touch the mirror, the
//! blocks they will read are fetched with range requests:
//!
//! * opening a frame fetches the header blocks of every HDU up to the image
//!   (walking the 2880-byte FITS records to `END` to find where each data
//!   unit starts and how long it is), and for a tile-compressed image its
//!   tile table (one row per tile: where each tile's bytes are in the heap);
//! * a cutout of a plain image fetches only the rows it reads;
//! * a cutout of a tile-compressed image fetches only the heap bytes of the
//!   tiles it touches.
//!
//! So a cutout reads a small fraction of the file, and a second cutout of the
//! same rows reads nothing. The mirrors together hold at most
//! `--block-cache-bytes`; the least recently used mirror is dropped whole
//! when a fetch would exceed it.
//!
//! An object is checked against the frame's record when its mirror is made
//! (and again every [`REVALIDATE`]): a size that differs is refused as
//! damaged. Every range request carries `If-Match` with the ETag seen then,
//! so a mirror never mixes two versions of an object; an object replaced
//! meanwhile is refused too. Store faults travel through the imaging core as
//! `std::io::Error`s wrapping a [`StoreFault`], which the product service
//! turns into 502 (down), 504 (timed out), 404 (missing) or the damaged-file
//! refusal.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};

use super::{Remote, StoreSettings};
use crate::imaging::pixels::Prefetch;

/// The unit of fetching and of the presence bitmap.
pub const BLOCK: u64 = 64 * 1024;

/// FITS record length.
const RECORD: u64 = 2880;

/// How long an object's size and ETag are trusted before they are asked
/// again.
pub const REVALIDATE: Duration = Duration::from_secs(30);

/// What went wrong with a remote store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// The store could not be reached or answered with an error.
    Down,
    /// The store did not answer within the bounded time.
    Timeout,
    /// The object is not in the store.
    Missing,
    /// The object is not what the catalogue recorded (size), or was replaced
    /// while being read.
    Changed,
}

/// A fault of a remote store, with a message naming the store.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct StoreFault {
    /// Which kind.
    pub kind: FaultKind,
    /// For the client: names the store, never credentials.
    pub message: String,
}

impl StoreFault {
    fn io(self) -> std::io::Error {
        std::io::Error::other(self)
    }

    /// The store fault an I/O error carries, if it does.
    pub fn of_io(e: &std::io::Error) -> Option<&StoreFault> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<StoreFault>())
    }
}

/// The bounded cache of mirrors of remote objects.
#[derive(Debug)]
pub struct BlockCache {
    dir: PathBuf,
    max_bytes: u64,
    settings: StoreSettings,
    /// Fetches run here; callers (blocking threads) wait on a channel, which
    /// works from any thread, inside a runtime or not.
    rt: Option<tokio::runtime::Runtime>,
    remotes: Mutex<HashMap<String, Arc<Remote>>>,
    mirrors: Mutex<Table>,
    fetched: AtomicU64,
    requests: AtomicU64,
    serial: AtomicU64,
}

#[derive(Debug, Default)]
struct Table {
    tick: u64,
    by_object: HashMap<String, (Arc<Mirror>, u64)>,
}

impl Drop for BlockCache {
    fn drop(&mut self) {
        // Dropping a runtime may block; a cache dropped on an async thread
        // must not.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// One mirrored object.
#[derive(Debug)]
pub struct Mirror {
    /// The store's URL, for messages.
    store: String,
    remote: Arc<Remote>,
    key: ObjectPath,
    /// The sparse local file.
    pub path: PathBuf,
    size: u64,
    etag: Option<String>,
    file: File,
    present: Mutex<Vec<u64>>,
    /// Blocks present, for the cache bound.
    blocks: AtomicU64,
    /// One fetch at a time per object, so two readers never fetch the same
    /// block twice.
    fetching: Mutex<()>,
    checked: Mutex<Instant>,
    hdus: Mutex<HashMap<usize, Arc<HduPlan>>>,
}

/// Where an HDU's parts are in the file.
#[derive(Debug, Clone)]
struct HduPlan {
    /// Tile layout, for a tile-compressed image.
    tiles: Option<Tiles>,
}

#[derive(Debug, Clone)]
struct Tiles {
    /// Where the tile table starts.
    table: u64,
    /// Bytes per table row.
    row_len: u64,
    /// Where the heap starts.
    heap: u64,
    /// (offset in row, descriptor is 64-bit, element bytes) of each
    /// variable-length column (the compressed bytes of a tile).
    columns: Vec<(u64, bool, u64)>,
    /// Image size and tile size.
    width: usize,
    tile: (usize, usize),
}

impl BlockCache {
    /// A cache of mirrors under `dir` holding at most `max_bytes`, reaching
    /// stores with `settings`. Mirrors left by an earlier process are
    /// removed (their bitmaps died with it).
    pub fn new(dir: PathBuf, max_bytes: u64, settings: StoreSettings) -> std::io::Result<Self> {
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("wisecut-store")
            .enable_all()
            .build()?;
        Ok(Self {
            dir,
            max_bytes: max_bytes.max(BLOCK * 16),
            settings,
            rt: Some(rt),
            remotes: Mutex::new(HashMap::new()),
            mirrors: Mutex::new(Table::default()),
            fetched: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            serial: AtomicU64::new(0),
        })
    }

    /// Bytes fetched from remote stores since start.
    pub fn bytes_fetched(&self) -> u64 {
        self.fetched.load(Ordering::Relaxed)
    }

    /// Range requests made since start.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Bytes the mirrors hold now.
    pub fn bytes_held(&self) -> u64 {
        let t = lock(&self.mirrors);
        t.by_object
            .values()
            .map(|(m, _)| m.blocks.load(Ordering::Relaxed) * BLOCK)
            .sum()
    }

    /// Forgets every mirror (tests: a cold cache).
    pub fn clear(&self) {
        let mut t = lock(&self.mirrors);
        for (m, _) in t.by_object.values() {
            let _ = std::fs::remove_file(&m.path);
        }
        t.by_object.clear();
    }

    /// Runs `fut` on the store runtime and waits for it, within the bounded
    /// time of one request and its retries.
    fn run<T: Send + 'static>(
        &self,
        store: &str,
        fut: impl std::future::Future<Output = Result<T, StoreFault>> + Send + 'static,
    ) -> Result<T, StoreFault> {
        let limit = (self.settings.timeout + self.settings.connect_timeout)
            * (self.settings.retries as u32 + 1);
        let (tx, rx) = std::sync::mpsc::channel();
        let Some(rt) = &self.rt else {
            return Err(down(store, "the store client is shut down"));
        };
        rt.spawn(async move {
            let r = match tokio::time::timeout(limit, fut).await {
                Ok(r) => r,
                Err(_) => Err(StoreFault {
                    kind: FaultKind::Timeout,
                    message: String::new(),
                }),
            };
            let _ = tx.send(r);
        });
        match rx.recv() {
            Ok(Err(StoreFault {
                kind: FaultKind::Timeout,
                message,
            })) if message.is_empty() => Err(StoreFault {
                kind: FaultKind::Timeout,
                message: format!(
                    "data store {store} did not answer within {} s",
                    limit.as_secs()
                ),
            }),
            Ok(r) => r,
            Err(_) => Err(down(store, "the request was dropped")),
        }
    }

    fn remote(&self, root: &str) -> Result<Arc<Remote>, StoreFault> {
        let mut remotes = lock(&self.remotes);
        if let Some(r) = remotes.get(root) {
            return Ok(Arc::clone(r));
        }
        let r = Arc::new(Remote::open(root, &self.settings).map_err(|e| StoreFault {
            kind: FaultKind::Down,
            message: e.to_string(),
        })?);
        remotes.insert(root.to_owned(), Arc::clone(&r));
        Ok(r)
    }

    /// Makes HDU `hdu` of the object at `rel` under the store `root` ready
    /// to open: checks the object against its record (`size`, and the
    /// `verified` ETag when `wisecut root verify` recorded one), fetches its
    /// headers (and tile table). Returns the mirror's path and the prefetch
    /// hook its reads go through.
    pub fn prepare(
        self: &Arc<Self>,
        root: &str,
        rel: &str,
        (size, verified): (u64, Option<&str>),
        hdu: usize,
    ) -> Result<(PathBuf, Arc<dyn Prefetch>), StoreFault> {
        let mirror = self.mirror(root, rel, size, verified)?;
        let plan = {
            let known = lock(&mirror.hdus).get(&hdu).cloned();
            match known {
                Some(p) => p,
                None => {
                    let p = Arc::new(self.plan(&mirror, hdu)?);
                    lock(&mirror.hdus).insert(hdu, Arc::clone(&p));
                    p
                }
            }
        };
        let path = mirror.path.clone();
        let hook: Arc<dyn Prefetch> = Arc::new(MirrorReads {
            cache: Arc::clone(self),
            mirror,
            plan,
        });
        Ok((path, hook))
    }

    /// The whole object at `rel` under `root`, fetched into its mirror (for
    /// `/data/{id}`, which serves the file as stored).
    pub fn whole(
        &self,
        root: &str,
        rel: &str,
        (size, verified): (u64, Option<&str>),
    ) -> Result<PathBuf, StoreFault> {
        let mirror = self.mirror(root, rel, size, verified)?;
        self.ensure(&mirror, 0, size)?;
        Ok(mirror.path.clone())
    }

    /// The mirror of an object, made (after a HEAD) when first asked or when
    /// the object's ETag changed. An object whose ETag is not the
    /// `verified` one (when there is one) is refused: it is not the object
    /// whose bytes were found to have the ingest SHA-256.
    fn mirror(
        &self,
        root: &str,
        rel: &str,
        size: u64,
        verified: Option<&str>,
    ) -> Result<Arc<Mirror>, StoreFault> {
        let id = format!("{}/{}", root.trim_end_matches('/'), rel);
        let existing = {
            let mut t = lock(&self.mirrors);
            t.tick += 1;
            let tick = t.tick;
            t.by_object.get_mut(&id).map(|(m, used)| {
                *used = tick;
                Arc::clone(m)
            })
        };
        if let Some(m) = &existing {
            let fresh = lock(&m.checked).elapsed() < REVALIDATE;
            if fresh {
                return Ok(Arc::clone(m));
            }
        }
        let remote = self.remote(root)?;
        let key = remote.key(rel);
        let store = remote.url.clone();
        let (r2, k2, s2) = (Arc::clone(&remote), key.clone(), store.clone());
        self.requests.fetch_add(1, Ordering::Relaxed);
        let meta = self.run(&store, async move {
            r2.store.head(&k2).await.map_err(|e| fault(&s2, &k2, e))
        })?;
        if meta.size != size {
            return Err(StoreFault {
                kind: FaultKind::Changed,
                message: format!(
                    "its file in data store {store} is {} bytes, not the {size} recorded at ingest",
                    meta.size
                ),
            });
        }
        if let Some(v) = verified
            && meta.e_tag.as_deref() != Some(v)
        {
            return Err(StoreFault {
                kind: FaultKind::Changed,
                message: if v == super::verify::DIFFERS {
                    format!(
                        "its file in data store {store} was found by `wisecut root verify` to \
                         differ from its ingest record"
                    )
                } else {
                    format!(
                        "its file in data store {store} is not the object `wisecut root verify` \
                         found the ingest SHA-256 in (ETag {} where {v} was recorded)",
                        meta.e_tag.as_deref().unwrap_or("none")
                    )
                },
            });
        }
        if let Some(m) = existing {
            if m.etag == meta.e_tag {
                *lock(&m.checked) = Instant::now();
                return Ok(m);
            }
            tracing::warn!(store = %store, key = %key, "object replaced since it was mirrored; mirroring it again");
        }
        let n = self.serial.fetch_add(1, Ordering::Relaxed);
        let name: String = rel
            .rsplit('/')
            .next()
            .unwrap_or("object")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = self.dir.join(format!("{n}-{name}"));
        let local = |e: std::io::Error| down(&store, &format!("local mirror: {e}"));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(local)?;
        file.set_len(size).map_err(local)?;
        let words = size.div_ceil(BLOCK).div_ceil(64) as usize;
        let mirror = Arc::new(Mirror {
            store,
            remote,
            key,
            path,
            size,
            etag: meta.e_tag,
            file,
            present: Mutex::new(vec![0; words]),
            blocks: AtomicU64::new(0),
            fetching: Mutex::new(()),
            checked: Mutex::new(Instant::now()),
            hdus: Mutex::new(HashMap::new()),
        });
        let mut t = lock(&self.mirrors);
        t.tick += 1;
        let tick = t.tick;
        if let Some((old, _)) = t.by_object.insert(id, (Arc::clone(&mirror), tick)) {
            let _ = std::fs::remove_file(&old.path);
        }
        Ok(mirror)
    }

    /// Makes bytes `[start, start + len)` of `mirror` present.
    fn ensure(&self, mirror: &Mirror, start: u64, len: u64) -> Result<(), StoreFault> {
        self.ensure_all(mirror, &[(start, len)])
    }

    /// Makes every range present, fetching the missing blocks (whole FITS
    /// records of them, as cfitsio reads records) in as few requests as
    /// runs of missing blocks, concurrently.
    fn ensure_all(&self, mirror: &Mirror, ranges: &[(u64, u64)]) -> Result<(), StoreFault> {
        let wanted = |present: &[u64]| -> Vec<(u64, u64)> {
            let mut blocks: Vec<u64> = Vec::new();
            for &(start, len) in ranges {
                if len == 0 || start >= mirror.size {
                    continue;
                }
                let a = start / RECORD * RECORD;
                let b = (start + len).div_ceil(RECORD) * RECORD;
                let b = b.min(mirror.size);
                for blk in a / BLOCK..b.div_ceil(BLOCK) {
                    if present[(blk / 64) as usize] & (1 << (blk % 64)) == 0 {
                        blocks.push(blk);
                    }
                }
            }
            blocks.sort_unstable();
            blocks.dedup();
            // Runs of consecutive blocks, one request each.
            let mut runs: Vec<(u64, u64)> = Vec::new();
            for blk in blocks {
                match runs.last_mut() {
                    Some((_, end)) if *end == blk => *end += 1,
                    _ => runs.push((blk, blk + 1)),
                }
            }
            runs
        };
        if wanted(&lock(&mirror.present)).is_empty() {
            return Ok(());
        }
        let _one = lock(&mirror.fetching);
        let runs = wanted(&lock(&mirror.present));
        if runs.is_empty() {
            return Ok(());
        }
        let byte_runs: Vec<std::ops::Range<u64>> = runs
            .iter()
            .map(|&(a, b)| a * BLOCK..(b * BLOCK).min(mirror.size))
            .collect();
        let n_blocks: u64 = runs.iter().map(|(a, b)| b - a).sum();
        self.make_room(n_blocks * BLOCK, mirror);
        let (remote, key, etag, store) = (
            Arc::clone(&mirror.remote),
            mirror.key.clone(),
            mirror.etag.clone(),
            mirror.store.clone(),
        );
        let ranges2 = byte_runs.clone();
        self.requests
            .fetch_add(byte_runs.len() as u64, Ordering::Relaxed);
        let s2 = store.clone();
        let parts = self.run(&store, async move {
            let mut set = tokio::task::JoinSet::new();
            for (i, r) in ranges2.into_iter().enumerate() {
                let (remote, key, etag, s2) =
                    (Arc::clone(&remote), key.clone(), etag.clone(), s2.clone());
                set.spawn(async move {
                    let opts = GetOptions {
                        range: Some(GetRange::Bounded(r.clone())),
                        if_match: etag,
                        ..Default::default()
                    };
                    let got = remote
                        .store
                        .get_opts(&key, opts)
                        .await
                        .map_err(|e| fault(&s2, &key, e))?;
                    let bytes = got.bytes().await.map_err(|e| fault(&s2, &key, e))?;
                    if bytes.len() as u64 != r.end - r.start {
                        return Err(StoreFault {
                            kind: FaultKind::Changed,
                            message: format!(
                                "data store {s2} answered {} bytes for a range of {} of {key}",
                                bytes.len(),
                                r.end - r.start
                            ),
                        });
                    }
                    Ok::<_, StoreFault>((i, bytes))
                });
            }
            let mut parts = Vec::new();
            while let Some(done) = set.join_next().await {
                match done {
                    Ok(Ok(p)) => parts.push(p),
                    Ok(Err(f)) => return Err(f),
                    Err(e) => return Err(down(&s2, &format!("a fetch failed: {e}"))),
                }
            }
            parts.sort_by_key(|(i, _)| *i);
            Ok(parts.into_iter().map(|(_, b)| b).collect::<Vec<_>>())
        })?;
        let mut present = lock(&mirror.present);
        for (r, bytes) in byte_runs.iter().zip(parts) {
            mirror
                .file
                .write_all_at(&bytes, r.start)
                .map_err(|e| down(&store, &format!("local mirror: {e}")))?;
            self.fetched
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        }
        for (a, b) in runs {
            for blk in a..b {
                present[(blk / 64) as usize] |= 1 << (blk % 64);
            }
        }
        mirror.blocks.fetch_add(n_blocks, Ordering::Relaxed);
        Ok(())
    }

    /// Drops least recently used mirrors (not `keep`) until `more` bytes fit.
    fn make_room(&self, more: u64, keep: &Mirror) {
        let mut t = lock(&self.mirrors);
        loop {
            let held: u64 = t
                .by_object
                .values()
                .map(|(m, _)| m.blocks.load(Ordering::Relaxed) * BLOCK)
                .sum();
            if held + more <= self.max_bytes {
                return;
            }
            let oldest = t
                .by_object
                .iter()
                .filter(|(_, (m, _))| !std::ptr::eq(Arc::as_ptr(m), keep))
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone());
            let Some(k) = oldest else { return };
            if let Some((m, _)) = t.by_object.remove(&k) {
                // Readers holding it keep reading their open descriptor.
                let _ = std::fs::remove_file(&m.path);
            }
        }
    }

    /// Walks the headers up to HDU `hdu`, fetching them, and for a
    /// tile-compressed image its tile table.
    fn plan(&self, mirror: &Mirror, hdu: usize) -> Result<HduPlan, StoreFault> {
        let mut pos = 0u64;
        for i in 0..=hdu {
            let (cards, data) = self.header_at(mirror, pos)?;
            let int = |k: &str| cards.get(k).and_then(|v| v.parse::<i64>().ok());
            let bitpix = int("BITPIX").unwrap_or(8).unsigned_abs();
            let naxis = int("NAXIS").unwrap_or(0);
            let mut n: u64 = if naxis > 0 { 1 } else { 0 };
            for a in 1..=naxis {
                n *= int(&format!("NAXIS{a}")).unwrap_or(0).max(0) as u64;
            }
            let pcount = int("PCOUNT").unwrap_or(0).max(0) as u64;
            let gcount = int("GCOUNT").unwrap_or(1).max(1) as u64;
            let len = if naxis > 0 {
                bitpix / 8 * gcount * (pcount + n)
            } else {
                0
            };
            if i < hdu {
                pos = data + len.div_ceil(RECORD) * RECORD;
                continue;
            }
            let compressed = cards.get("ZIMAGE").is_some_and(|v| v == "T");
            if !compressed {
                return Ok(HduPlan { tiles: None });
            }
            let row_len = int("NAXIS1").unwrap_or(0).max(0) as u64;
            let rows = int("NAXIS2").unwrap_or(0).max(0) as u64;
            let width = int("ZNAXIS1").unwrap_or(0).max(0) as usize;
            let height = int("ZNAXIS2").unwrap_or(1).max(0) as usize;
            let tile = (
                int("ZTILE1").map_or(width, |v| v.max(1) as usize),
                int("ZTILE2").map_or(1, |v| v.max(1) as usize),
            );
            let heap = data + int("THEAP").map_or(row_len * rows, |v| v.max(0) as u64);
            let mut columns = Vec::new();
            let mut offset = 0u64;
            for c in 1..=int("TFIELDS").unwrap_or(0) {
                let form = cards.get(&format!("TFORM{c}")).cloned().unwrap_or_default();
                let (bytes, var) = column_width(&form).ok_or_else(|| StoreFault {
                    kind: FaultKind::Changed,
                    message: format!(
                        "{} in data store {}: TFORM{c} = {form:?} cannot be read",
                        mirror.key, mirror.store
                    ),
                })?;
                if let Some((wide, elem)) = var {
                    columns.push((offset, wide, elem));
                }
                offset += bytes;
            }
            // The tile table: small (16 bytes or so a tile).
            self.ensure(mirror, data, row_len * rows)?;
            let tiles = Tiles {
                table: data,
                row_len,
                heap,
                columns,
                width,
                tile,
            };
            if crate::imaging::pixels::wide_tiles(width, height, tile) {
                // Such an image is decompressed whole into a sidecar on
                // opening (see `imaging::pixels`): it needs every byte.
                self.ensure(mirror, 0, mirror.size)?;
            }
            return Ok(HduPlan { tiles: Some(tiles) });
        }
        unreachable!("the loop returns at hdu")
    }

    /// The cards of the header starting at `pos` and where its data starts.
    fn header_at(
        &self,
        mirror: &Mirror,
        mut pos: u64,
    ) -> Result<(HashMap<String, String>, u64), StoreFault> {
        let mut cards = HashMap::new();
        let bad = |what: &str| StoreFault {
            kind: FaultKind::Changed,
            message: format!(
                "{} in data store {}: {what}; not a FITS file as recorded",
                mirror.key, mirror.store
            ),
        };
        loop {
            if pos + RECORD > mirror.size {
                return Err(bad("a header runs past the end of the file"));
            }
            self.ensure(mirror, pos, RECORD)?;
            let mut rec = vec![0u8; RECORD as usize];
            mirror
                .file
                .read_exact_at(&mut rec, pos)
                .map_err(|e| down(&mirror.store, &format!("local mirror: {e}")))?;
            pos += RECORD;
            for card in rec.chunks(80) {
                let key = String::from_utf8_lossy(&card[..8]).trim().to_owned();
                if key == "END" {
                    return Ok((cards, pos));
                }
                if &card[8..10] == b"= " {
                    cards
                        .entry(key)
                        .or_insert_with(|| card_value(&String::from_utf8_lossy(&card[10..])));
                }
            }
        }
    }
}

/// The value of a card's value field: a quoted string without its quotes,
/// or the text before the comment.
fn card_value(field: &str) -> String {
    let t = field.trim_start();
    if let Some(rest) = t.strip_prefix('\'') {
        let mut out = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\'' {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                    out.push('\'');
                    continue;
                }
                break;
            }
            out.push(c);
        }
        return out.trim_end().to_owned();
    }
    t.split('/').next().unwrap_or("").trim().to_owned()
}

/// Bytes of a binary-table column of `TFORM` `form`, and for a
/// variable-length column (`P`/`Q`) whether its descriptor is 64-bit and its
/// element size.
fn column_width(form: &str) -> Option<(u64, Option<(bool, u64)>)> {
    let form = form.trim();
    let digits = form.chars().take_while(|c| c.is_ascii_digit()).count();
    let repeat: u64 = if digits == 0 {
        1
    } else {
        form[..digits].parse().ok()?
    };
    let mut rest = form[digits..].chars();
    let code = rest.next()?;
    let size = |c: char| -> Option<u64> {
        Some(match c {
            'L' | 'B' | 'A' => 1,
            'I' => 2,
            'J' | 'E' => 4,
            'K' | 'D' | 'C' => 8,
            'M' => 16,
            _ => return None,
        })
    };
    match code {
        'X' => Some((repeat.div_ceil(8), None)),
        'P' | 'Q' => {
            let elem = size(rest.next()?)?;
            let wide = code == 'Q';
            Some((repeat * if wide { 16 } else { 8 }, Some((wide, elem))))
        }
        c => Some((repeat * size(c)?, None)),
    }
}

/// The reads of one opened HDU of a mirror.
#[derive(Debug)]
struct MirrorReads {
    cache: Arc<BlockCache>,
    mirror: Arc<Mirror>,
    plan: Arc<HduPlan>,
}

impl Prefetch for MirrorReads {
    fn bytes(&self, start: u64, len: u64) -> std::io::Result<()> {
        self.cache
            .ensure(&self.mirror, start, len)
            .map_err(StoreFault::io)
    }

    fn tiles(&self, x0: usize, y0: usize, w: usize, h: usize) -> std::io::Result<()> {
        let Some(t) = &self.plan.tiles else {
            return Ok(());
        };
        let across = t.width.div_ceil(t.tile.0).max(1);
        let mut ranges = Vec::new();
        let mut desc = [0u8; 16];
        for ty in y0 / t.tile.1..=(y0 + h - 1) / t.tile.1 {
            for tx in x0 / t.tile.0..=(x0 + w - 1) / t.tile.0 {
                let row = (ty * across + tx) as u64;
                for &(offset, wide, elem) in &t.columns {
                    let at = t.table + row * t.row_len + offset;
                    let d = if wide {
                        &mut desc[..16]
                    } else {
                        &mut desc[..8]
                    };
                    self.mirror.file.read_exact_at(d, at)?;
                    let (count, off) = if wide {
                        (
                            u64::from_be_bytes(d[..8].try_into().expect("8")),
                            u64::from_be_bytes(d[8..16].try_into().expect("8")),
                        )
                    } else {
                        (
                            u64::from(u32::from_be_bytes(d[..4].try_into().expect("4"))),
                            u64::from(u32::from_be_bytes(d[4..8].try_into().expect("4"))),
                        )
                    };
                    if count > 0 {
                        ranges.push((t.heap + off, count * elem));
                    }
                }
            }
        }
        self.cache
            .ensure_all(&self.mirror, &ranges)
            .map_err(StoreFault::io)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn down(store: &str, what: &str) -> StoreFault {
    StoreFault {
        kind: FaultKind::Down,
        message: format!("data store {store}: {what}"),
    }
}

/// What an `object_store` error means for the client.
pub(crate) fn fault(store: &str, key: &ObjectPath, e: object_store::Error) -> StoreFault {
    use object_store::Error as E;
    let (kind, message) = match &e {
        E::NotFound { .. } => (
            FaultKind::Missing,
            format!("{key} is not in data store {store}"),
        ),
        E::Precondition { .. } => (
            FaultKind::Changed,
            format!("{key} in data store {store} was replaced while being read"),
        ),
        _ => {
            // The displayed chain only: the debug form of a retry error
            // names its `retry_timeout` setting whatever happened.
            let mut chain = e.to_string();
            let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
            while let Some(s) = src {
                chain.push_str(&s.to_string());
                src = s.source();
            }
            let lower = chain.to_lowercase();
            if lower.contains("timed out") {
                (
                    FaultKind::Timeout,
                    format!("data store {store} did not answer in time ({key}): {e}"),
                )
            } else {
                (
                    FaultKind::Down,
                    format!("data store {store} failed to answer for {key}: {e}"),
                )
            }
        }
    };
    StoreFault { kind, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_columns_have_their_widths() {
        assert_eq!(column_width("1PB(1234)"), Some((8, Some((false, 1)))));
        assert_eq!(column_width("1QB"), Some((16, Some((true, 1)))));
        assert_eq!(column_width("1D"), Some((8, None)));
        assert_eq!(column_width("16X"), Some((2, None)));
        assert_eq!(column_width("Z"), None);
    }

    #[test]
    fn card_values_lose_quotes_and_comments() {
        assert_eq!(card_value(" 'BINTABLE'           / x"), "BINTABLE");
        assert_eq!(card_value("                  16 / bits"), "16");
        assert_eq!(card_value(" 'it''s'"), "it's");
        assert_eq!(card_value("                    T"), "T");
    }
}
