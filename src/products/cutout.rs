//! One cutout of one frame, as FITS or as a rendered image: the product
//! behind `/api/cutout`, thumbnails, the image view, SODA and the sky view.
//!
//! [`Products::cutout`] opens the frame, places the cutout (no pixel I/O),
//! derives the product's content key — everything its bytes depend on:
//! wisecut version, the frame's checksum, HDU, placement and rendering — and
//! from it a strong ETag, so a revalidation (`If-None-Match`) is answered
//! without reading pixels. Then it decides how to make the bytes: FITS
//! cutouts of frames read with `pread` (plain or sidecar-backed) are made
//! directly, because reading a few hundred rows is cheaper than a cache
//! round trip; cutouts of tile-compressed frames and rendered images go
//! through the disk cache, which also makes concurrent identical requests
//! share one production.
//!
//! All of that happens in one hand-off to a blocking thread that holds one
//! of the per-core permits: locating, then reading the cached product or
//! making and storing it. Only a request that finds another one making the
//! same product goes back to wait for it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cpu_time::ThreadTime;

use super::budget::{MemoryGrant, fits_cost, fits_pass_through_cost, image_cost};
use super::cache::{CacheKey, Claim, Outcome};
use super::frames::{FrameKey, FrameRef};
use super::{ProductError, Products};
use crate::imaging::cutout::{self, Center, CutoutSpec, Geometry, Provenance};
use crate::imaging::pixels::PixelSource;
use crate::imaging::render;
use crate::model::Frame;
use crate::params::cutout::CutoutFormat;
use crate::params::rendering::{OutputSize, Rendering};

/// Everything one cutout request asks for, validated.
#[derive(Debug, Clone)]
pub struct CutoutRequest {
    /// The frame.
    pub frame: FrameKey,
    /// Image HDU (zero-based); `None` for the frame's own.
    pub hdu: Option<usize>,
    /// Centre and size (its `max_side` is the limit that applies).
    pub spec: CutoutSpec,
    /// FITS or a rendered image.
    pub format: CutoutFormat,
    /// How images are rendered (ignored for FITS).
    pub rendering: Rendering,
}

impl CutoutRequest {
    /// The whole of a catalogue frame, centred on its middle: thumbnails
    /// and the image view show whole frames through the same engine and
    /// cache as any cutout.
    pub fn whole_frame(frame: &Frame, format: CutoutFormat, rendering: Rendering) -> Self {
        let (w, h) = (frame.naxis1.max(1) as usize, frame.naxis2.max(1) as usize);
        Self {
            frame: FrameKey::Id(frame.target.object_id),
            hdu: None,
            spec: CutoutSpec::whole(w, h),
            format,
            rendering,
        }
    }

    /// A thumbnail: the whole frame, zscale, linear, JPEG, the longer side
    /// `side` pixels.
    pub fn thumbnail(frame: &Frame, side: usize) -> Self {
        let mut rendering = Rendering {
            output_size: Some(OutputSize::Longest(side)),
            ..Rendering::default()
        };
        rendering.params.interval = render::Interval::ZScale;
        Self::whole_frame(
            frame,
            CutoutFormat::Image(render::OutputFormat::Jpeg {
                quality: crate::params::cutout::DEFAULT_JPEG_QUALITY,
            }),
            rendering,
        )
    }
}

/// How the bytes of a product were obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The client's copy is current; no bytes.
    Revalidated,
    /// Made for this request.
    Made,
    /// Read from the disk cache.
    CacheHit,
    /// Made by a concurrent identical request and shared.
    Joined,
}

impl Delivery {
    /// The name the `X-Wisecut-Cache` header reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Revalidated => "revalidated",
            Self::Made => "made",
            Self::CacheHit => "cache-hit",
            Self::Joined => "joined",
        }
    }
}

/// A cutout product, or the confirmation that the client's copy is current.
#[derive(Debug)]
pub struct CutoutProduct {
    /// Where the cutout lies on the frame.
    pub geometry: Geometry,
    /// Strong ETag, quoted.
    pub etag: String,
    /// The bytes; `None` when the request's `If-None-Match` matched.
    pub body: Option<Bytes>,
    /// For images, the data values shown black and white.
    pub limits: Option<(f64, f64)>,
    /// How the bytes were obtained.
    pub delivery: Delivery,
    /// The format asked for.
    pub format: CutoutFormat,
    /// A download name: `<frame>_x<X0>_y<Y0>_<W>x<H>.<ext>`.
    pub download_name: String,
    /// Server work (file access, cutting, rendering, cache) in wall time,
    /// without the wait for a free core.
    pub work: Duration,
    /// CPU time of that work on the threads that did it (locating, reading,
    /// cutting, rendering, encoding; not the cache's own file I/O): what the
    /// request cost, however busy the machine was.
    pub cpu: Duration,
    /// The memory of `body`, reserved until the response is sent.
    pub grant: MemoryGrant,
}

impl Products {
    /// Makes (or finds) the cutout `request` asks for. `if_none_match` is
    /// the client's `If-None-Match`; when it names this product's ETag, no
    /// pixels are read.
    pub async fn cutout(
        self: &Arc<Self>,
        request: CutoutRequest,
        if_none_match: Option<String>,
    ) -> Result<CutoutProduct, ProductError> {
        let frame = self
            .frames
            .resolve(&self.catalog, &self.images.data_root, &request.frame)
            .await?;
        let stem = file_stem(&frame.filename);
        let format = request.format;
        // Locate (and, for direct FITS, make) on a blocking thread: file
        // access.
        let (mut work, mut cpu) = (Duration::ZERO, Duration::ZERO);
        let mut grant = None;
        let plan = loop {
            let service = Arc::clone(self);
            let permit = self.cpu_permit().await?;
            let (frame, request, inm) =
                (Arc::clone(&frame), request.clone(), if_none_match.clone());
            let granted = grant.take();
            let (plan, w, c) = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let (t, c) = (Instant::now(), ThreadTime::now());
                service
                    .plan(frame, request, inm, granted)
                    .map(|p| (p, t.elapsed(), c.elapsed()))
            })
            .await??;
            (work, cpu) = (work + w, cpu + c);
            match plan {
                // Not enough memory free right now: wait for it (not
                // holding a core meanwhile), then plan again.
                Plan::NeedMemory { cost, what } => {
                    grant = Some(self.budget.reserve(cost, &what).await?);
                }
                other => break other,
            }
        };
        let mut grant = MemoryGrant::none();
        let (geometry, etag, body, limits, delivery) = match plan {
            Plan::NotModified { geometry, etag } => {
                (geometry, etag, None, None, Delivery::Revalidated)
            }
            Plan::NeedMemory { .. } => unreachable!("the planning loop waits for memory"),
            Plan::Ready {
                geometry,
                etag,
                product,
                delivery,
                grant: g,
            } => {
                grant = g;
                (geometry, etag, Some(product.body), product.limits, delivery)
            }
            Plan::Busy {
                geometry,
                etag,
                key,
                job,
            } => {
                let t = Instant::now();
                // Time spent queueing for a core is not work; the maker's
                // CPU time is.
                let queued = std::sync::Mutex::new(Duration::ZERO);
                let made_cpu = Arc::new(std::sync::Mutex::new(Duration::ZERO));
                let in_maker = Arc::clone(&made_cpu);
                let (bytes, outcome) = self
                    .cache
                    .get_or_make_blocking(
                        key,
                        || async {
                            let permit = self.cpu_permit().await?;
                            *queued.lock().unwrap_or_else(|p| p.into_inner()) = t.elapsed();
                            Ok(permit)
                        },
                        move || {
                            let c = ThreadTime::now();
                            let made = job.run().map(Product::pack);
                            *in_maker.lock().unwrap_or_else(|p| p.into_inner()) = c.elapsed();
                            made
                        },
                    )
                    .await?;
                let queued = *queued.lock().unwrap_or_else(|p| p.into_inner());
                let made_cpu = *made_cpu.lock().unwrap_or_else(|p| p.into_inner());
                work += t.elapsed().saturating_sub(queued);
                cpu += made_cpu;
                let product = Product::unpack(bytes).map_err(ProductError::Internal)?;
                let delivery = match outcome {
                    Outcome::Hit => Delivery::CacheHit,
                    Outcome::Made => Delivery::Made,
                    Outcome::Joined => Delivery::Joined,
                };
                (geometry, etag, Some(product.body), product.limits, delivery)
            }
        };
        Ok(CutoutProduct {
            download_name: format!(
                "{stem}_x{}_y{}_{}x{}.{}",
                geometry.x0 + 1,
                geometry.y0 + 1,
                geometry.width,
                geometry.height,
                format.extension()
            ),
            geometry,
            etag,
            body,
            limits,
            delivery,
            format,
            work,
            cpu,
            grant,
        })
    }

    /// A permit to use one core for cutting and rendering: at most as many
    /// cutouts are made at once as there are cores, so a burst queues
    /// instead of thrashing, and the `Server-Timing` work of each request is
    /// its own CPU time, not its share of a crowd.
    async fn cpu_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ProductError> {
        Arc::clone(&self.cores)
            .acquire_owned()
            .await
            .map_err(|_| ProductError::Internal("the core limiter is closed".into()))
    }

    /// Opens the source, places the cutout and decides how to answer.
    fn plan(
        &self,
        frame: Arc<FrameRef>,
        request: CutoutRequest,
        if_none_match: Option<String>,
        grant: Option<MemoryGrant>,
    ) -> Result<Plan, ProductError> {
        let hdu = request.hdu.unwrap_or(frame.hdu);
        let source = self.images.open_hdu(&frame, hdu)?;
        let geometry = cutout::locate(&source, &request.spec)
            .map_err(|e| ProductError::from_cutout(e, &frame.filename))?;
        let provenance = self.images.provenance(frame.object_id, &frame.filename);
        let key = product_key(&frame, hdu, &request, &provenance, &geometry);
        let etag = format!("\"{}\"", &key.hex()[..32]);
        if if_none_match
            .as_deref()
            .is_some_and(|v| etag_matches(v, &etag))
        {
            return Ok(Plan::NotModified { geometry, etag });
        }
        // One size limit for every way of asking for pixels (API, image
        // view, thumbnails, SODA): whole frames included.
        let (w, h) = (geometry.width, geometry.height);
        self.images.check_side(w, h)?;
        // What making it will take at most, reserved before any pixel is
        // read (a cache hit needs less; the grant shrinks to the product).
        let bpp = (source.bitpix.unsigned_abs() / 8) as usize;
        let (cost, what) = match request.format {
            // Copied row by row from a plain file: the output alone.
            CutoutFormat::Fits
                if cutout::fits_passes_through(&source, &request.spec, &geometry) =>
            {
                (
                    fits_pass_through_cost(w, h, bpp),
                    format!("a {w}×{h} px FITS cutout"),
                )
            }
            CutoutFormat::Fits => (fits_cost(w, h, bpp), format!("a {w}×{h} px FITS cutout")),
            CutoutFormat::Image(_) => {
                let out = request
                    .rendering
                    .for_size(w, h)
                    .output_size
                    .unwrap_or((w, h));
                (image_cost(w, h, bpp, out), format!("a {w}×{h} px picture"))
            }
        };
        let mut grant = match grant {
            Some(g) => g,
            None => match self.budget.try_reserve(cost, &what)? {
                Some(g) => g,
                None => return Ok(Plan::NeedMemory { cost, what }),
            },
        };
        let job = CutoutJob {
            source,
            geometry,
            request,
            provenance,
            filename: frame.filename.clone(),
        };
        if job.request.format == CutoutFormat::Fits && job.source.access() != "compressed" {
            let product = job.run()?;
            grant.shrink_to(product.body.len() as u64);
            return Ok(Plan::Ready {
                geometry,
                etag,
                product,
                delivery: Delivery::Made,
                grant,
            });
        }
        // This thread holds a core already: read or make the product here
        // rather than hand it to another thread, unless another request is
        // making it right now.
        let (product, delivery) = match self.cache.claim_now(key) {
            Claim::Ready(bytes) => (
                Product::unpack(bytes).map_err(ProductError::Internal)?,
                Delivery::CacheHit,
            ),
            Claim::Make(production) => match job.run() {
                Ok(made) => {
                    let packed = Bytes::from(made.pack());
                    let product =
                        Product::unpack(packed.clone()).map_err(ProductError::Internal)?;
                    production.finish(packed);
                    (product, Delivery::Made)
                }
                Err(e) => {
                    production.fail(&e);
                    return Err(e);
                }
            },
            Claim::Busy => {
                return Ok(Plan::Busy {
                    geometry,
                    etag,
                    key,
                    job: Box::new(job),
                });
            }
        };
        grant.shrink_to(product.body.len() as u64);
        Ok(Plan::Ready {
            geometry,
            etag,
            product,
            delivery,
            grant,
        })
    }
}

/// A product's bytes and, for images, the data values shown black and white.
#[derive(Debug, Clone)]
struct Product {
    body: Bytes,
    limits: Option<(f64, f64)>,
}

impl Product {
    /// Cache blob: a line of JSON metadata, then the body.
    fn pack(self) -> Vec<u8> {
        let meta = serde_json::json!({ "limits": self.limits });
        let mut out = serde_json::to_vec(&meta).unwrap_or_default();
        out.push(b'\n');
        out.extend_from_slice(&self.body);
        out
    }

    fn unpack(blob: Bytes) -> Result<Self, String> {
        let nl = blob
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("cached product without metadata")?;
        let meta: serde_json::Value =
            serde_json::from_slice(&blob[..nl]).map_err(|e| format!("cached metadata: {e}"))?;
        let limits = meta["limits"]
            .as_array()
            .and_then(|a| Some((a.first()?.as_f64()?, a.get(1)?.as_f64()?)));
        Ok(Self {
            // A view into the cached bytes, not a copy.
            body: blob.slice(nl + 1..),
            limits,
        })
    }
}

/// A located cutout still to be made.
struct CutoutJob {
    source: Arc<PixelSource>,
    geometry: Geometry,
    request: CutoutRequest,
    provenance: Provenance,
    filename: String,
}

impl CutoutJob {
    fn run(&self) -> Result<Product, ProductError> {
        let r = &self.request;
        let failed = |e| ProductError::from_cutout(e, &self.filename);
        match r.format {
            CutoutFormat::Fits => Ok(Product {
                body: cutout::extract_fits(&self.source, &r.spec, self.geometry, &self.provenance)
                    .map_err(failed)?
                    .into(),
                limits: None,
            }),
            CutoutFormat::Image(out) => {
                let cut = cutout::extract(&self.source, &r.spec, self.geometry, &self.provenance)
                    .map_err(failed)?;
                let image = cut.into_image_f32();
                let params = r.rendering.for_size(image.width, image.height);
                let rendered =
                    render::render(&image, &params).map_err(crate::params::ParamError::from)?;
                let body =
                    render::encode(&rendered, out).map_err(crate::params::ParamError::from)?;
                Ok(Product {
                    body: body.into(),
                    limits: Some((rendered.vmin, rendered.vmax)),
                })
            }
        }
    }
}

/// What to do for a request once it is located.
enum Plan {
    NotModified {
        geometry: Geometry,
        etag: String,
    },
    Ready {
        geometry: Geometry,
        etag: String,
        product: Product,
        delivery: Delivery,
        grant: MemoryGrant,
    },
    /// The memory to make it is not free: reserve it, then plan again.
    NeedMemory {
        cost: u64,
        what: String,
    },
    /// Another request is making this product: wait for it (or make it,
    /// should that production be abandoned).
    Busy {
        geometry: Geometry,
        etag: String,
        key: CacheKey,
        job: Box<CutoutJob>,
    },
}

/// The content address of a cutout product: everything its bytes depend on.
fn product_key(
    frame: &FrameRef,
    hdu: usize,
    r: &CutoutRequest,
    provenance: &Provenance,
    g: &Geometry,
) -> CacheKey {
    let center = match r.spec.center {
        Center::Sky { ra, dec } => format!("sky:{ra:?}:{dec:?}"),
        Center::Pixel { x, y } => format!("pix:{x:?}:{y:?}"),
    };
    let rendering = match r.format {
        CutoutFormat::Fits => String::new(),
        CutoutFormat::Image(_) => format!("{:?}", r.rendering.for_size(g.width, g.height)),
    };
    CacheKey::of(&[
        b"cutout",
        crate::VERSION.as_bytes(),
        &frame.object_id.0.to_le_bytes(),
        frame.checksum.as_bytes(),
        provenance.object_url.as_deref().unwrap_or("").as_bytes(),
        &(hdu as u64).to_le_bytes(),
        center.as_bytes(),
        format!("{},{},{},{}", g.x0, g.y0, g.width, g.height).as_bytes(),
        &[u8::from(r.spec.raw_values)],
        format!("{:?}", r.format).as_bytes(),
        rendering.as_bytes(),
    ])
}

/// A download name from a catalogue file name: the part before `.fits` /
/// `.fz` / `.gz`, restricted to characters safe in a header value.
fn file_stem(name: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or(name);
    let mut stem = base;
    for ext in [".gz", ".fz", ".fits", ".fit", ".fts"] {
        if let Some(s) = stem.strip_suffix(ext) {
            stem = s;
        }
    }
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        "cutout".into()
    } else {
        clean
    }
}

/// Whether an `If-None-Match` value matches `etag` (a list, or `*`).
fn etag_matches(header_value: &str, etag: &str) -> bool {
    header_value
        .split(',')
        .map(|v| v.trim().trim_start_matches("W/"))
        .any(|v| v == "*" || v == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_match_lists_weak_and_star() {
        assert!(etag_matches("\"a\", \"b\"", "\"b\""));
        assert!(etag_matches("W/\"b\"", "\"b\""));
        assert!(etag_matches("*", "\"b\""));
        assert!(!etag_matches("\"a\"", "\"b\""));
    }

    #[test]
    fn download_stems_are_header_safe() {
        assert_eq!(file_stem("night1/red_n1_g.fits.fz"), "red_n1_g");
        assert_eq!(file_stem("we\"ird name.fits"), "we_ird_name");
        assert_eq!(file_stem(".fits"), "cutout");
    }

    #[test]
    fn packed_products_round_trip_without_copying() {
        let p = Product {
            body: Bytes::from_static(b"\x00\nbody\n"),
            limits: Some((1.5, 2.5)),
        };
        let back = Product::unpack(Bytes::from(p.pack())).unwrap();
        assert_eq!(&back.body[..], b"\x00\nbody\n");
        assert_eq!(back.limits, Some((1.5, 2.5)));
    }
}
