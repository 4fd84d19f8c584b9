//! From a catalogue frame to its opened pixels: the one way every product
//! (API cutouts, thumbnails, the image view, SODA, dependency cutouts, RGB
//! pictures, batches) reads a frame.
//!
//! [`FrameLookup`] resolves what a request names (`frame=1234` or
//! `frame=red_n1_g_d1_ccd1.fits`) to a [`FrameRef`], memoised for a short
//! time so a burst of cutouts of one frame does not query the database for
//! each. [`FrameImages`] opens the file through the shared, bounded cache of
//! opened HDUs and maps file-system faults to what a user can act on: a
//! missing file is a 404 naming the frame, never the server's path.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::ProductError;
use crate::catalog::Catalog;
use crate::file_identity::{Changed, FreshFiles, Recorded};
use crate::ids::ObjectId;
use crate::imaging::cutout::{self, Cutout, CutoutSpec, Provenance};
use crate::imaging::fits::FitsError;
use crate::imaging::pixels::{PixelSource, PixelSources};
use crate::model::Frame;
use crate::params::ParamError;
use crate::products::budget::{MemoryGrant, image_cost};

/// How a request names a frame.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FrameKey {
    /// By object id.
    Id(ObjectId),
    /// By catalogue file name.
    File(String),
}

impl FrameKey {
    /// Parses the `frame` parameter: an object id or a file name.
    pub fn parse(text: &str) -> Result<Self, ParamError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(ParamError::new(
                "frame",
                "missing; give a frame's object id or file name",
            ));
        }
        Ok(match t.parse::<i64>() {
            Ok(id) => Self::Id(ObjectId(id)),
            Err(_) => Self::File(t.to_owned()),
        })
    }
}

/// The catalogue frame a request names.
pub async fn frame_by_key(catalog: &Catalog, key: &FrameKey) -> Result<Frame, ProductError> {
    Ok(match key {
        FrameKey::Id(id) => catalog.frame(*id).await,
        FrameKey::File(name) => catalog.frame_by_filename(name).await,
    }?)
}

/// What a cutout needs to know about a frame.
#[derive(Debug, Clone)]
pub struct FrameRef {
    /// Object id.
    pub object_id: ObjectId,
    /// Catalogue file name.
    pub filename: String,
    /// File on disk.
    pub path: PathBuf,
    /// Image HDU.
    pub hdu: usize,
    /// The file's SHA-256 at ingest: the frame's content identity.
    pub checksum: String,
    /// The file's size at ingest.
    pub file_size: u64,
    /// The file's modification time at ingest, when recorded.
    pub file_mtime_ns: Option<i64>,
    /// For a frame in a remote store: the store's URL and the file's path
    /// under it.
    pub remote: Option<(String, String)>,
    /// The ETag `wisecut root verify` recorded for the remote object.
    pub store_etag: Option<String>,
}

impl FrameRef {
    /// The reference of a catalogue frame whose files live under
    /// `data_root`.
    pub fn of(frame: &Frame, data_root: &Path) -> Self {
        FrameRef {
            object_id: frame.target.object_id,
            filename: frame.filename.clone(),
            path: frame.file_path(data_root),
            // Ingest stores non-negative HDU numbers; a negative one would
            // be a corrupt record, read as the primary HDU.
            hdu: usize::try_from(frame.hdu).unwrap_or(0),
            checksum: frame.checksum.clone(),
            file_size: u64::try_from(frame.file_size).unwrap_or(0),
            file_mtime_ns: frame.file_mtime_ns,
            store_etag: frame.store_etag.clone(),
            remote: match (&frame.root_dir, frame.store.as_str()) {
                (Some(root), s) if s != "local" => {
                    match crate::stores::Location::parse(&root.to_string_lossy()) {
                        Ok(crate::stores::Location::Url(url)) => Some((url, frame.path.clone())),
                        _ => None,
                    }
                }
                _ => None,
            },
        }
    }

    /// What a remote object is checked against: the recorded size and the
    /// verified ETag, if any.
    pub fn remote_record(&self) -> (u64, Option<&str>) {
        (self.file_size, self.store_etag.as_deref())
    }

    /// What ingest recorded about the file.
    pub fn recorded(&self) -> Recorded<'_> {
        Recorded {
            size: self.file_size,
            mtime_ns: self.file_mtime_ns,
            checksum: &self.checksum,
        }
    }
}

/// A small, time-limited memo of frame lookups.
#[derive(Debug)]
pub struct FrameLookup {
    capacity: usize,
    /// Keyed by the viewer's scope too ([`crate::catalog::access::Viewer::scope_key`]):
    /// a frame resolved for its owner is never handed to someone else.
    entries: Mutex<MemoEntries>,
}

/// The memo's map: (viewer scope, key) → when resolved, what.
type MemoEntries = HashMap<(String, FrameKey), (Instant, Arc<FrameRef>)>;

/// How long a resolved frame is trusted before the database is asked again.
const FRAME_TTL: Duration = Duration::from_secs(30);

impl FrameLookup {
    /// A memo of at most `capacity` frames.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The frame named by `key`.
    pub async fn resolve(
        &self,
        catalog: &Catalog,
        data_root: &Path,
        key: &FrameKey,
    ) -> Result<Arc<FrameRef>, ProductError> {
        let scoped = (
            catalog.viewer().map(|v| v.scope_key()).unwrap_or_default(),
            key.clone(),
        );
        if let Some((at, frame)) = self.lock().get(&scoped)
            && at.elapsed() < FRAME_TTL
        {
            return Ok(Arc::clone(frame));
        }
        let frame = frame_by_key(catalog, key).await?;
        let r = Arc::new(FrameRef::of(&frame, data_root));
        let mut entries = self.lock();
        if entries.len() >= self.capacity {
            // Dropping everything is crude but bounded, and a refill costs
            // one query per frame.
            entries.clear();
        }
        entries.insert(scoped, (Instant::now(), Arc::clone(&r)));
        Ok(r)
    }

    /// Forgets every memoised frame: after a privileges change, so nobody
    /// keeps being handed a frame they may no longer see. (A change made by
    /// another process is seen within [`FRAME_TTL`].)
    pub fn forget_all(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoEntries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Opens frames' pixels; cheap to clone into blocking tasks.
#[derive(Debug, Clone)]
pub struct FrameImages {
    /// Opened HDUs (and decompressed sidecars), bounded.
    pub sources: Arc<PixelSources>,
    /// Root of the `local` data store.
    pub data_root: PathBuf,
    /// Base URL written into provenance keywords.
    pub public_url: String,
    /// The largest side of any cut, in pixels (`--max-cutout`).
    pub max_side: usize,
    /// Whether files are still what ingest recorded.
    pub fresh: Arc<FreshFiles>,
    /// Mirrors of frames in remote stores (`None`: remote frames cannot be
    /// read).
    pub blocks: Option<Arc<crate::stores::blocks::BlockCache>>,
}

impl FrameImages {
    /// The block cache a frame in the remote store `root` is read through.
    fn block_cache(
        &self,
        frame: &FrameRef,
        root: &str,
    ) -> Result<&Arc<crate::stores::blocks::BlockCache>, ProductError> {
        self.blocks.as_ref().ok_or_else(|| {
            ProductError::Internal(format!(
                "frame {} is in the remote store {root}, and this process has no block cache",
                frame.object_id
            ))
        })
    }

    /// The opened image HDU `hdu` of `frame`. A missing file is a 404 naming
    /// the frame; an HDU that is not an image is the request's fault.
    pub fn open_hdu(&self, frame: &FrameRef, hdu: usize) -> Result<Arc<PixelSource>, ProductError> {
        let opened = match &frame.remote {
            Some((root, rel)) => {
                let blocks = self.block_cache(frame, root)?;
                let (mirror, prefetch) = blocks
                    .prepare(root, rel, frame.remote_record(), hdu)
                    .map_err(|f| ProductError::from_store(f, frame.object_id, &frame.filename))?;
                self.sources.get_with(&mirror, hdu, Some(prefetch))
            }
            None => {
                self.check_fresh(frame)?;
                self.sources.get(&frame.path, hdu)
            }
        };
        opened.map_err(|e| match &e {
            FitsError::NoSuchHdu { .. } | FitsError::NotAnImage { .. } => {
                ParamError::new("hdu", e.to_string()).into()
            }
            FitsError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ProductError::NotFound(format!(
                    "frame {}: its file {} is missing from the data store",
                    frame.object_id, frame.filename
                ))
            }
            _ => ProductError::from_fits(e, &frame.filename),
        })
    }

    /// Whether the frame's file is still the one ingested: a missing file
    /// is a 404, a changed one [`ProductError::Damaged`], both naming the
    /// frame and not the path.
    pub fn check_fresh(&self, frame: &FrameRef) -> Result<(), ProductError> {
        self.fresh
            .check(&frame.path, frame.recorded())
            .map_err(|e| match e {
                Changed::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
                    ProductError::NotFound(format!(
                        "frame {}: its file {} is missing from the data store",
                        frame.object_id, frame.filename
                    ))
                }
                Changed::Io(io) => ProductError::Internal(format!(
                    "frame {} ({}): {io}",
                    frame.object_id,
                    frame.path.display()
                )),
                changed => {
                    tracing::error!(
                        frame = %frame.object_id,
                        path = %frame.path.display(),
                        "file changed or damaged since ingest: {changed}"
                    );
                    ProductError::Damaged(format!(
                        "frame {}: its file {} has changed or is damaged since ingest ({changed}); \
                         nothing is served from it until an operator re-ingests it",
                        frame.object_id, frame.filename
                    ))
                }
            })
    }

    /// The frame's whole file as a local path, checked against its record:
    /// for a frame in a remote store, its mirror with every block fetched.
    pub fn local_file(&self, frame: &FrameRef) -> Result<PathBuf, ProductError> {
        match &frame.remote {
            Some((root, rel)) => {
                let blocks = self.block_cache(frame, root)?;
                blocks
                    .whole(root, rel, frame.remote_record())
                    .map_err(|f| ProductError::from_store(f, frame.object_id, &frame.filename))
            }
            None => {
                self.check_fresh(frame)?;
                Ok(frame.path.clone())
            }
        }
    }

    /// The frame's own image HDU.
    pub fn open(&self, frame: &FrameRef) -> Result<Arc<PixelSource>, ProductError> {
        self.open_hdu(frame, frame.hdu)
    }

    /// [`FrameImages::open`] for a catalogue frame.
    pub fn open_frame(&self, frame: &Frame) -> Result<Arc<PixelSource>, ProductError> {
        self.open(&FrameRef::of(frame, &self.data_root))
    }

    /// The provenance written into cutouts of a frame, with the URL of its
    /// object view.
    pub fn provenance(&self, object_id: ObjectId, filename: &str) -> Provenance {
        Provenance {
            object_id: Some(object_id.0),
            file: filename.to_owned(),
            object_url: Some(format!(
                "{}/object/{object_id}",
                self.public_url.trim_end_matches('/')
            )),
        }
    }

    /// Cuts `spec` out of a catalogue frame, within the size limit; errors
    /// name the frame.
    pub fn cut(&self, frame: &Frame, spec: &CutoutSpec) -> Result<Cutout, ProductError> {
        self.cut_reserved(frame, spec, &|_| Ok(MemoryGrant::none()))
            .map(|(c, _)| c)
    }

    /// [`FrameImages::cut`], reserving the cutout's memory with `reserve`
    /// once its size is known and before its pixels are read; the grant
    /// comes back with the cutout, to be held while it is used.
    pub fn cut_reserved(
        &self,
        frame: &Frame,
        spec: &CutoutSpec,
        reserve: &dyn Fn(u64) -> Result<MemoryGrant, ProductError>,
    ) -> Result<(Cutout, MemoryGrant), ProductError> {
        let source = self.open_frame(frame)?;
        let failed = |e| ProductError::from_cutout(e, &frame.filename);
        let geometry = cutout::locate(&source, spec).map_err(failed)?;
        self.check_side(geometry.width, geometry.height)?;
        let bpp = (source.bitpix.unsigned_abs() / 8) as usize;
        let grant = reserve(image_cost(
            geometry.width,
            geometry.height,
            bpp,
            (geometry.width, geometry.height),
        ))?;
        let provenance = self.provenance(frame.target.object_id, &frame.filename);
        let cut = cutout::extract(&source, spec, geometry, &provenance).map_err(failed)?;
        Ok((cut, grant))
    }

    /// Whether a `width` × `height` cut is within the size limit.
    pub fn check_side(&self, width: usize, height: usize) -> Result<(), ProductError> {
        if width.max(height) > self.max_side {
            return Err(ParamError::new(
                "size",
                format!(
                    "{width}×{height} px is over the limit of {} px per side; ask for a smaller area",
                    self.max_side
                ),
            )
            .into());
        }
        Ok(())
    }
}

/// A catalogue frame that covers a sky position, and where.
#[derive(Debug, Clone)]
pub struct CoveringFrame {
    /// The frame.
    pub frame: Frame,
    /// The position's FITS pixel column on it.
    pub x: f64,
    /// Its row.
    pub y: f64,
    /// Distance to the nearest edge, in pixels.
    pub edge_distance_px: f64,
}

/// The frames (of `class` and `filter`, when given) whose pixels contain
/// (`ra`, `dec`), farthest from an edge first: the best frame for a cutout
/// comes first.
pub async fn covering(
    catalog: &Catalog,
    ra: f64,
    dec: f64,
    class: Option<crate::model::FrameClass>,
    filter: Option<&str>,
) -> Result<Vec<CoveringFrame>, ProductError> {
    let mut out = Vec::new();
    for f in catalog.frames_covering(ra, dec, class, filter).await? {
        let Some(kw) = &f.wcs else { continue };
        let (n1, n2) = (f.naxis1 as usize, f.naxis2 as usize);
        let Ok(wcs) = crate::imaging::wcs::Wcs::new(kw, n1, n2) else {
            continue;
        };
        let Some((x, y)) = wcs.sky_to_pix(ra, dec) else {
            continue;
        };
        let edge = (x - 0.5)
            .min(n1 as f64 + 0.5 - x)
            .min(y - 0.5)
            .min(n2 as f64 + 0.5 - y);
        // NaN (no valid position) is not inside either.
        if edge.is_nan() || edge < 0.0 {
            continue;
        }
        out.push(CoveringFrame {
            frame: f,
            x,
            y,
            edge_distance_px: edge,
        });
    }
    out.sort_by(|a, b| {
        b.edge_distance_px
            .total_cmp(&a.edge_distance_px)
            .then(a.frame.target.object_id.cmp(&b.frame.target.object_id))
    });
    Ok(out)
}
