//! Rectangular cutouts: where they fall, which pixels they hold, and the FITS
//! header that describes them. One implementation serves the cutout API, the
//! dbviewer, dependency cutouts, SODA and batch jobs. How requests describe
//! a cutout in text is [`crate::params::cutout`]'s business.
//!
//! # Conventions (the same as astropy's `Cutout2D`)
//!
//! * Positions in pixels are FITS 1-based: the centre of the first pixel is
//!   (1, 1), as in ds9 and SExtractor's `X_IMAGE`. A sky position is placed
//!   with the full WCS (SIP included), like `skycoord_to_pixel(mode="all")`.
//! * A cutout of `n` pixels along an axis centred at the 1-based position `x`
//!   starts at the zero-based parent column `ceil((x − 1) − n/2)`. For odd `n`
//!   the centre pixel is the one containing `x`; for even `n` the centre lies
//!   on the pixel boundary nearest to `x`, rounding upward at exact half
//!   pixels — exactly `Cutout2D(..., mode="partial")` with its default
//!   `limit_rounding_method=np.ceil`.
//! * Angular sizes become pixels with the pixel scale along each axis (the
//!   norm of the CD matrix's column), rounded half to even, like `Cutout2D`.
//! * A cutout that runs over the image edge keeps its requested size; the
//!   missing pixels are NaN (float data) or `BLANK` (integer data), and
//!   `NPADPIX` counts them. A cutout that misses the image is an error.
//!
//! # Header
//!
//! The parent header is kept; structural keywords are rewritten; the WCS is
//! changed only by shifting `CRPIXi` (also of alternate WCSs), never by
//! re-anchoring `CRVAL`, so CD / PC / CDELT / SIP stay as they were. Legacy
//! `PC00i00j` keywords become `PCi_j`, `RADECSYS` becomes `RADESYS`, and
//! `RADESYS` is added when absent (ICRS, or FK4/FK5 by `EQUINOX`, as the FITS
//! standard defaults). Image-section keywords (`DATASEC`, `TRIMSEC`, …) that
//! describe the parent array are dropped; IRAF's `LTV1/2` are shifted (added
//! when absent) and an alternate WCS `P` (`PHYSICAL`, as astrocut writes it)
//! maps cutout pixels back to parent pixels. Provenance keywords name the
//! source object, file, HDU, offset, wisecut version and object-view URL.
//!
//! Pan-STARRS-style stacks store `asinh`-compressed values (`BSOFTEN`,
//! `BOFFSET`); unless raw values are asked for, they are converted to linear
//! flux, `flux = BOFFSET + BSOFTEN · 2 sinh(v · 0.4 ln 10)`, as PS1 documents
//! and astrocut does, and written as 32-bit floats.

use std::fmt;

use crate::imaging::fits::{self, Card, FitsError, HeaderValue, RawPixels};
use crate::imaging::pixels::{PixelSource, Region, Scaling};
use crate::imaging::raster::Raster;
use crate::imaging::wcs::{Header, KeywordSource};

/// Where the cutout is centred.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Center {
    /// Sky position in degrees, in the frame's own celestial system.
    Sky {
        /// Right ascension.
        ra: f64,
        /// Declination.
        dec: f64,
    },
    /// FITS 1-based pixel position.
    Pixel {
        /// Column.
        x: f64,
        /// Row.
        y: f64,
    },
}

/// The unit of a cutout size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeUnit {
    /// Pixels of the parent image.
    Pixel,
    /// Seconds of arc.
    Arcsec,
    /// Minutes of arc.
    Arcmin,
    /// Degrees.
    Degree,
}

impl SizeUnit {
    /// Every unit, in the order the API documents them.
    pub const ALL: [SizeUnit; 4] = [Self::Pixel, Self::Arcsec, Self::Arcmin, Self::Degree];

    /// The name used in URLs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pixel => "px",
            Self::Arcsec => "arcsec",
            Self::Arcmin => "arcmin",
            Self::Degree => "deg",
        }
    }

    /// Parses a unit name (case-insensitive; `pix`/`pixel` and `arcsecond`
    /// spellings accepted).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "px" | "pix" | "pixel" | "pixels" => Self::Pixel,
            "arcsec" | "arcsecond" | "arcseconds" => Self::Arcsec,
            "arcmin" | "arcminute" | "arcminutes" => Self::Arcmin,
            "deg" | "degree" | "degrees" => Self::Degree,
            _ => return None,
        })
    }

    /// Degrees per unit, for angular units.
    fn degrees(self) -> Option<f64> {
        match self {
            Self::Pixel => None,
            Self::Arcsec => Some(1.0 / 3600.0),
            Self::Arcmin => Some(1.0 / 60.0),
            Self::Degree => Some(1.0),
        }
    }
}

/// Requested cutout size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Size {
    /// Extent along the first axis (x, columns).
    pub width: f64,
    /// Extent along the second axis (y, rows).
    pub height: f64,
    /// Unit of both.
    pub unit: SizeUnit,
}

/// Everything a cutout needs besides the source.
#[derive(Debug, Clone, PartialEq)]
pub struct CutoutSpec {
    /// Centre.
    pub center: Center,
    /// Size.
    pub size: Size,
    /// Keep asinh-compressed (`BSOFTEN`) values instead of linear flux.
    pub raw_values: bool,
    /// Largest allowed side in pixels; larger requests are refused, never
    /// clamped.
    pub max_side: usize,
}

impl CutoutSpec {
    /// A `width` × `height` pixel box centred at the FITS position (`x`,
    /// `y`), with physical values.
    pub fn pixel_box(x: f64, y: f64, width: usize, height: usize) -> Self {
        CutoutSpec {
            center: Center::Pixel { x, y },
            size: Size {
                width: width as f64,
                height: height as f64,
                unit: SizeUnit::Pixel,
            },
            raw_values: false,
            max_side: width.max(height),
        }
    }

    /// The whole of a `width` × `height` image: centred at its middle, so
    /// the placement convention puts the first pixel at (1, 1).
    pub fn whole(width: usize, height: usize) -> Self {
        Self::pixel_box(
            (width as f64 + 1.0) / 2.0,
            (height as f64 + 1.0) / 2.0,
            width,
            height,
        )
    }
}

/// Where a cutout came from, written into its header.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Provenance {
    /// The catalogue object id of the frame, if it is in the catalogue.
    pub object_id: Option<i64>,
    /// The file name as the catalogue knows it.
    pub file: String,
    /// URL of the frame's object view.
    pub object_url: Option<String>,
}

/// Why a cutout cannot be made; the messages are meant for the person who
/// asked.
#[derive(Debug, thiserror::Error)]
pub enum CutoutError {
    /// Reading the file failed.
    #[error(transparent)]
    Fits(#[from] FitsError),
    /// A sky position was given for a frame without a usable celestial WCS.
    #[error(
        "this frame has no celestial WCS{}, so RA/Dec cannot be placed on it; give the position in pixel coordinates (x, y) instead",
        .0.as_deref().map(|p| format!(" ({p})")).unwrap_or_default()
    )]
    NoSkyWcs(Option<String>),
    /// The sky position does not project onto the image plane.
    #[error("RA {ra}, Dec {dec} does not project onto this frame's image plane")]
    NoProjection {
        /// Requested RA.
        ra: f64,
        /// Requested Dec.
        dec: f64,
    },
    /// An angular size was given for a frame without a celestial WCS.
    #[error(
        "this frame has no celestial WCS, so an angular size cannot be converted to pixels; give the size in px"
    )]
    NoScale,
    /// The requested size is not usable.
    #[error("{0}")]
    BadSize(String),
    /// The cutout lies entirely outside the image.
    #[error(
        "the {width}x{height} px cutout centred at pixel ({x:.2}, {y:.2}) does not overlap the {image_width}x{image_height} px image"
    )]
    NoOverlap {
        /// Centre column (1-based).
        x: f64,
        /// Centre row (1-based).
        y: f64,
        /// Cutout width.
        width: usize,
        /// Cutout height.
        height: usize,
        /// Image width.
        image_width: usize,
        /// Image height.
        image_height: usize,
    },
}

/// Where a cutout lies in its parent image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    /// Zero-based parent column of the cutout's first column (may be
    /// negative or beyond the image when padded): parent x = cutout x + x0.
    pub x0: i64,
    /// Zero-based parent row of the cutout's first row.
    pub y0: i64,
    /// Cutout width in pixels.
    pub width: usize,
    /// Cutout height in pixels.
    pub height: usize,
    /// The requested centre in parent FITS pixels (1-based).
    pub x: f64,
    /// The requested centre row in parent FITS pixels (1-based).
    pub y: f64,
    /// Number of cutout pixels outside the parent image.
    pub padded: usize,
}

impl Geometry {
    /// The part of the cutout inside the parent, as zero-based parent
    /// `(x_start, y_start, width, height)`.
    pub fn overlap(&self, image_width: usize, image_height: usize) -> (usize, usize, usize, usize) {
        let clip = |start: i64, len: usize, size: usize| {
            let a = start.clamp(0, size as i64);
            let b = (start + len as i64).clamp(0, size as i64);
            (a as usize, (b - a) as usize)
        };
        let (xa, w) = clip(self.x0, self.width, image_width);
        let (ya, h) = clip(self.y0, self.height, image_height);
        (xa, ya, w, h)
    }
}

/// Places a `width` × `height` cutout centred at the 1-based position
/// (`x`, `y`) on an `image_width` × `image_height` image.
pub fn place(
    x: f64,
    y: f64,
    width: usize,
    height: usize,
    image_width: usize,
    image_height: usize,
) -> Result<Geometry, CutoutError> {
    let start = |pos: f64, n: usize| ((pos - 1.0) - n as f64 / 2.0).ceil();
    let (sx, sy) = (start(x, width), start(y, height));
    let no_overlap = || CutoutError::NoOverlap {
        x,
        y,
        width,
        height,
        image_width,
        image_height,
    };
    // Far outside (or NaN): no overlap, and no i64 overflow below.
    let limit = 1e15;
    if !(sx.abs() < limit && sy.abs() < limit) {
        return Err(no_overlap());
    }
    let (x0, y0) = (sx as i64, sy as i64);
    let misses = |start: i64, n: usize, size: usize| start + n as i64 <= 0 || start >= size as i64;
    if misses(x0, width, image_width) || misses(y0, height, image_height) {
        return Err(no_overlap());
    }
    let mut g = Geometry {
        x0,
        y0,
        width,
        height,
        x,
        y,
        padded: 0,
    };
    let (_, _, w, h) = g.overlap(image_width, image_height);
    g.padded = width * height - w * h;
    Ok(g)
}

/// The cutout size in pixels: pixel sizes rounded half to even, angular sizes
/// divided by the pixel scale along each axis, as `Cutout2D` does.
pub fn pixel_size(
    size: &Size,
    source: &PixelSource,
    max_side: usize,
) -> Result<(usize, usize), CutoutError> {
    let (scale_x, scale_y) = match size.unit.degrees() {
        None => (1.0, 1.0),
        Some(unit) => {
            let wcs = source.wcs.as_ref().ok_or(CutoutError::NoScale)?;
            let cd = wcs.keywords().cd;
            (
                cd[0][0].hypot(cd[1][0]) / unit,
                cd[0][1].hypot(cd[1][1]) / unit,
            )
        }
    };
    let side = |value: f64, scale: f64, axis: &str| -> Result<usize, CutoutError> {
        if !(value.is_finite() && value > 0.0) {
            return Err(CutoutError::BadSize(format!(
                "{axis} must be a positive number, got {value}"
            )));
        }
        let px = (value / scale).round_ties_even();
        if px < 1.0 {
            return Err(CutoutError::BadSize(format!(
                "{axis} {value} {} is less than one pixel",
                size.unit.name()
            )));
        }
        if px > max_side as f64 {
            return Err(CutoutError::BadSize(format!(
                "{axis} {value} {} is {px} px, over the limit of {max_side} px per side",
                size.unit.name()
            )));
        }
        Ok(px as usize)
    };
    Ok((
        side(size.width, scale_x, "width")?,
        side(size.height, scale_y, "height")?,
    ))
}

/// A finished cutout: its place, its pixels as they will be written, and its
/// header cards (without the structural ones).
#[derive(Debug, Clone, PartialEq)]
pub struct Cutout {
    /// Where it lies in the parent.
    pub geometry: Geometry,
    /// Pixels in the output type, row after row.
    pub pixels: RawPixels,
    /// BSCALE / BZERO to write (integer output keeps the parent's).
    pub scaling: Option<(f64, f64)>,
    /// `BLANK` of integer output, when the cutout has undefined pixels or the
    /// parent declared one.
    pub blank: Option<i64>,
    /// Header cards after the mandatory ones.
    pub cards: Vec<Card>,
    /// Whether asinh-compressed values were converted to linear flux.
    pub linearized: bool,
}

impl Cutout {
    /// The cutout as a complete FITS file.
    pub fn to_fits(&self) -> Result<Vec<u8>, FitsError> {
        fits::encode_image(
            &self.pixels,
            self.geometry.width,
            self.geometry.height,
            self.scaling,
            &self.cards,
        )
    }

    /// Like [`Cutout::to_image_f32`], consuming the cutout so that float
    /// pixels without scaling are moved rather than copied (a whole 4k frame
    /// is 64 MB).
    pub fn into_image_f32(self) -> Raster<f32> {
        match self.pixels {
            RawPixels::F32(v) if self.scaling.is_none() => {
                Raster::from_vec(self.geometry.width, self.geometry.height, v)
            }
            _ => self.to_image_f32(),
        }
    }

    /// Physical values (BSCALE/BZERO applied) as f32, NaN where undefined or
    /// padded: the input of every rendering.
    pub fn to_image_f32(&self) -> Raster<f32> {
        let data = match &self.pixels {
            RawPixels::F32(v) if self.scaling.is_none() => v.clone(),
            raw => {
                let (bscale, bzero) = self.scaling.unwrap_or((1.0, 0.0));
                let scaling = Scaling {
                    bscale,
                    bzero,
                    blank: self.blank,
                };
                physical_raw(raw, &scaling, |v| v as f32)
            }
        };
        Raster::from_vec(self.geometry.width, self.geometry.height, data)
    }
}

/// Makes the cutout `spec` of `source`.
pub fn cut(
    source: &PixelSource,
    spec: &CutoutSpec,
    provenance: &Provenance,
) -> Result<Cutout, CutoutError> {
    let geometry = locate(source, spec)?;
    extract(source, spec, geometry, provenance)
}

/// Where the cutout `spec` falls on `source`, without reading pixels: cheap,
/// so a server can name, cache and validate a cutout before making it.
pub fn locate(source: &PixelSource, spec: &CutoutSpec) -> Result<Geometry, CutoutError> {
    let (x, y) = match spec.center {
        Center::Pixel { x, y } => (x, y),
        Center::Sky { ra, dec } => {
            let wcs = source
                .wcs
                .as_ref()
                .ok_or_else(|| CutoutError::NoSkyWcs(source.wcs_problem.clone()))?;
            wcs.sky_to_pix(ra, dec)
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .ok_or(CutoutError::NoProjection { ra, dec })?
        }
    };
    let (width, height) = pixel_size(&spec.size, source, spec.max_side)?;
    place(x, y, width, height, source.width, source.height)
}

/// Reads and assembles the cutout at `geometry` (from [`locate`]).
pub fn extract(
    source: &PixelSource,
    spec: &CutoutSpec,
    geometry: Geometry,
    provenance: &Provenance,
) -> Result<Cutout, CutoutError> {
    let (width, height) = (geometry.width, geometry.height);
    let (ox, oy, ow, oh) = geometry.overlap(source.width, source.height);
    let region = source.read(ox, oy, ow, oh)?;

    let keys = &source.keys;
    let asinh = match (keys.number("BSOFTEN"), keys.number("BOFFSET")) {
        (Some(soften), Some(offset)) if !spec.raw_values => Some((soften, offset)),
        _ => None,
    };
    let n = width * height;
    // Zero-based offsets of the overlap inside the cutout.
    let (dx, dy) = (
        (ox as i64 - geometry.x0) as usize,
        (oy as i64 - geometry.y0) as usize,
    );
    let place = Placement { width, dx, dy, ow };

    let (pixels, scaling, blank) = if let Some((soften, offset)) = asinh {
        let physical = physical_values(&region, &source.scaling);
        let mut out = vec![f32::NAN; n];
        let k = 0.4 * std::f64::consts::LN_10;
        place.rows(&mut out, &physical, |v| {
            (offset + soften * 2.0 * (v * k).sinh()) as f32
        });
        (RawPixels::F32(out), None, None)
    } else if geometry.padded == 0
        && matches!(region, Region::Raw(RawPixels::F32(_) | RawPixels::F64(_)))
    {
        // Float pixels wholly inside: the region read is the cutout, in
        // order, with nothing to convert or pad.
        let Region::Raw(raw) = region else {
            unreachable!("matched just above")
        };
        let s = source.scaling;
        let scaling = (!s.is_identity()).then_some((s.bscale, s.bzero));
        (raw, scaling, None)
    } else if source.bitpix < 0 {
        let mut out =
            RawPixels::zeros(source.bitpix, n).expect("float BITPIX is -32 or -64 by construction");
        let s = source.scaling;
        match (&mut out, region) {
            (RawPixels::F32(o), Region::Raw(RawPixels::F32(v))) => {
                o.fill(f32::NAN);
                place.rows(o, &v, |p| p);
            }
            (RawPixels::F64(o), Region::Raw(RawPixels::F64(v))) => {
                o.fill(f64::NAN);
                place.rows(o, &v, |p| p);
            }
            (RawPixels::F32(o), Region::Scaled(v)) => {
                o.fill(f32::NAN);
                place.rows(o, &v, |p| ((p - s.bzero) / s.bscale) as f32);
            }
            (RawPixels::F64(o), Region::Scaled(v)) => {
                o.fill(f64::NAN);
                place.rows(o, &v, |p| (p - s.bzero) / s.bscale);
            }
            _ => unreachable!("plain float images are read in their own type"),
        }
        let scaling = (!s.is_identity()).then_some((s.bscale, s.bzero));
        (out, scaling, None)
    } else {
        let (out, blank) = integer_output(source, &region, n, geometry.padded > 0, &place)?;
        let s = source.scaling;
        let scaling = (!s.is_identity()).then_some((s.bscale, s.bzero));
        (out, scaling, blank)
    };

    let cards = header_cards(
        source,
        keys,
        &geometry,
        spec,
        provenance,
        blank,
        asinh.is_some(),
    );
    Ok(Cutout {
        geometry,
        pixels,
        scaling,
        blank,
        cards,
        linearized: asinh.is_some(),
    })
}

/// Whether [`extract_fits`] makes this cutout without decoding its pixels
/// (its peak memory is then the output file alone).
pub fn fits_passes_through(source: &PixelSource, spec: &CutoutSpec, geometry: &Geometry) -> bool {
    pass_through_padding(source, spec, geometry).is_some()
}

/// The stored bytes of one padding pixel when [`extract_fits`] can copy
/// the stored rows as they are; `None` when it must take the general path.
fn pass_through_padding(
    source: &PixelSource,
    spec: &CutoutSpec,
    geometry: &Geometry,
) -> Option<Vec<u8>> {
    let keys = &source.keys;
    let linearize =
        !spec.raw_values && keys.number("BSOFTEN").is_some() && keys.number("BOFFSET").is_some();
    let integer = source.bitpix > 0;
    let blank = if integer { source.scaling.blank } else { None };
    let pad_value = match (integer, blank) {
        (false, _) => Some(if source.bitpix == -32 {
            f32::NAN.to_be_bytes().to_vec()
        } else {
            f64::NAN.to_be_bytes().to_vec()
        }),
        (true, Some(b)) => Some(match source.bitpix {
            8 => vec![b as u8],
            16 => (b as i16).to_be_bytes().to_vec(),
            32 => (b as i32).to_be_bytes().to_vec(),
            _ => b.to_be_bytes().to_vec(),
        }),
        (true, None) if geometry.padded == 0 => Some(Vec::new()),
        (true, None) => None,
    };
    pad_value.filter(|_| !linearize && source.access() == "plain")
}

/// The FITS file of the cutout at `geometry` (from [`locate`]): the same
/// bytes as `extract(..)?.to_fits()`, made without decoding the pixels when
/// the parent is a plain file whose stored values go out unchanged — the
/// header is written, then each row's stored big-endian bytes are read
/// straight into place and the padding is filled with NaN (float) or the
/// parent's `BLANK` (integer). That skips three passes over the pixels
/// (decode, place, encode), most of the work of a small cutout. Other cases
/// (compressed or sidecar sources, BSOFTEN linearisation, integer padding
/// without a parent `BLANK`) take the general path.
pub fn extract_fits(
    source: &PixelSource,
    spec: &CutoutSpec,
    geometry: Geometry,
    provenance: &Provenance,
) -> Result<Vec<u8>, CutoutError> {
    let keys = &source.keys;
    let s = source.scaling;
    let blank = if source.bitpix > 0 { s.blank } else { None };
    let Some(pad_value) = pass_through_padding(source, spec, &geometry) else {
        return Ok(extract(source, spec, geometry, provenance)?.to_fits()?);
    };
    let (width, height) = (geometry.width, geometry.height);
    let bpp = (source.bitpix.unsigned_abs() / 8) as usize;
    let cards = header_cards(source, keys, &geometry, spec, provenance, blank, false);
    let scaling = (!s.is_identity()).then_some((s.bscale, s.bzero));
    let data_len = (width * height * bpp).div_ceil(2880) * 2880;
    let mut out = fits::encode_header(source.bitpix, width, height, scaling, &cards, data_len)?;
    let start = out.len();
    out.resize(start + width * height * bpp, 0);
    let data = &mut out[start..];
    let (ox, oy, ow, oh) = geometry.overlap(source.width, source.height);
    if geometry.padded > 0 {
        for px in data.chunks_exact_mut(bpp) {
            px.copy_from_slice(&pad_value);
        }
    }
    // Zero-based offsets of the overlap inside the cutout.
    let (dx, dy) = (
        (ox as i64 - geometry.x0) as usize,
        (oy as i64 - geometry.y0) as usize,
    );
    let stride = width * bpp;
    let first = dy * stride + dx * bpp;
    if ow > 0 && oh > 0 {
        source.read_stored_rows(ox, oy, ow, oh, &mut data[first..], stride)?;
    }
    out.resize(start + data_len, 0);
    Ok(out)
}

/// Where the rows of a read region go in the cutout: `ow` pixels per row,
/// starting at column `dx`, row `dy` of a cutout `width` pixels wide.
struct Placement {
    width: usize,
    dx: usize,
    dy: usize,
    ow: usize,
}

impl Placement {
    /// Copies `src` (rows of `ow` pixels) into `out`, converting each pixel
    /// with `f`; a row at a time, so the inner loop is a plain slice walk.
    fn rows<S: Copy, T>(&self, out: &mut [T], src: &[S], f: impl Fn(S) -> T) {
        if self.ow == 0 {
            return;
        }
        for (r, row) in src.chunks_exact(self.ow).enumerate() {
            let start = (self.dy + r) * self.width + self.dx;
            for (o, &p) in out[start..start + self.ow].iter_mut().zip(row) {
                *o = f(p);
            }
        }
    }
}

/// Physical values of a region (BSCALE/BZERO applied, NaN where undefined).
pub fn physical_values(region: &Region, scaling: &Scaling) -> Vec<f64> {
    match region {
        Region::Scaled(v) => v.clone(),
        Region::Raw(raw) => physical_raw(raw, scaling, |v| v),
    }
}

/// Physical values of stored pixels (BSCALE/BZERO applied, BLANK → NaN),
/// converted by `to` (to f64 or f32).
fn physical_raw<T>(raw: &RawPixels, scaling: &Scaling, to: impl Fn(f64) -> T) -> Vec<T> {
    let Scaling {
        bscale,
        bzero,
        blank,
    } = *scaling;
    let int = |v: i64| {
        to(if Some(v) == blank {
            f64::NAN
        } else {
            v as f64 * bscale + bzero
        })
    };
    match raw {
        RawPixels::U8(v) => v.iter().map(|&p| int(i64::from(p))).collect(),
        RawPixels::I16(v) => v.iter().map(|&p| int(i64::from(p))).collect(),
        RawPixels::I32(v) => v.iter().map(|&p| int(i64::from(p))).collect(),
        RawPixels::I64(v) => v.iter().map(|&p| int(p)).collect(),
        RawPixels::F32(v) => v
            .iter()
            .map(|&p| to(f64::from(p) * bscale + bzero))
            .collect(),
        RawPixels::F64(v) => v.iter().map(|&p| to(p * bscale + bzero)).collect(),
    }
}

/// The stored integer values of an integer image's cutout, with `BLANK` for
/// padded and undefined pixels. The parent's `BLANK` is used when it has one;
/// otherwise the first value, counting from the type's minimum, that no pixel
/// of the cutout holds (so `BLANK` never hides a real value).
fn integer_output(
    source: &PixelSource,
    region: &Region,
    n: usize,
    padded: bool,
    place: &Placement,
) -> Result<(RawPixels, Option<i64>), CutoutError> {
    let s = source.scaling;
    // Stored values as i64 (None = undefined).
    let stored: Vec<Option<i64>> = match region {
        Region::Raw(raw) => {
            let v: Vec<i64> = match raw {
                RawPixels::U8(v) => v.iter().map(|&p| i64::from(p)).collect(),
                RawPixels::I16(v) => v.iter().map(|&p| i64::from(p)).collect(),
                RawPixels::I32(v) => v.iter().map(|&p| i64::from(p)).collect(),
                RawPixels::I64(v) => v.clone(),
                _ => unreachable!("integer images are read as integers"),
            };
            v.into_iter().map(Some).collect()
        }
        Region::Scaled(v) => v
            .iter()
            .map(|&p| (!p.is_nan()).then(|| ((p - s.bzero) / s.bscale).round() as i64))
            .collect(),
    };
    let undefined = padded || stored.iter().any(Option::is_none);
    let blank = match s.blank {
        Some(b) => Some(b),
        None if undefined => {
            let (min, max) = match source.bitpix {
                8 => (0, 255),
                16 => (i64::from(i16::MIN), i64::from(i16::MAX)),
                32 => (i64::from(i32::MIN), i64::from(i32::MAX)),
                _ => (i64::MIN, i64::MAX),
            };
            let used: std::collections::HashSet<i64> = stored.iter().flatten().copied().collect();
            let free = (min..=max).find(|v| !used.contains(v));
            Some(free.ok_or_else(|| {
                CutoutError::BadSize(
                    "the cutout uses every integer value, so no BLANK is left for its padding"
                        .into(),
                )
            })?)
        }
        None => None,
    };
    let fill = blank.unwrap_or(0);
    let mut out = vec![fill; n];
    place.rows(&mut out, &stored, |v| v.unwrap_or(fill));
    let pixels = match source.bitpix {
        8 => RawPixels::U8(out.into_iter().map(|v| v as u8).collect()),
        16 => RawPixels::I16(out.into_iter().map(|v| v as i16).collect()),
        32 => RawPixels::I32(out.into_iter().map(|v| v as i32).collect()),
        _ => RawPixels::I64(out),
    };
    Ok((pixels, blank))
}

/// Keywords never copied from the parent: structural ones (rewritten for the
/// cutout), compression and checksum bookkeeping, and what wisecut writes
/// itself.
fn dropped(key: &str) -> bool {
    const EXACT: &[&str] = &[
        "SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT", "GROUPS", "BSCALE",
        "BZERO", "BLANK", "END", "CHECKSUM", "DATASUM", "TFIELDS", "THEAP", "DATASEC", "TRIMSEC",
        "BIASSEC", "CCDSEC", "DETSEC", "AMPSEC", "LTV1", "LTV2", "LTM1_1", "LTM2_2", "LTM1_2",
        "LTM2_1", "WCSNAMEP", "WCSAXESP", "CTYPE1P", "CTYPE2P", "CUNIT1P", "CUNIT2P", "CRPIX1P",
        "CRPIX2P", "CRVAL1P", "CRVAL2P", "CDELT1P", "CDELT2P", "ORIGOBJ", "ORIGFILE", "ORIGHDU",
        "ORIGX0", "ORIGY0", "ORIGURL", "NPADPIX", "CUTX", "CUTY", "CUTRA", "CUTDEC", "WISECUT",
        "FLUXLIN", "RADECSYS",
    ];
    if EXACT.contains(&key) {
        return true;
    }
    let indexed = |prefix: &str| {
        key.strip_prefix(prefix)
            .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
    };
    indexed("NAXIS") || (key.starts_with('Z') && key.len() > 1 && is_compression_key(key))
}

fn is_compression_key(key: &str) -> bool {
    const Z: &[&str] = &[
        "ZIMAGE", "ZSIMPLE", "ZTENSION", "ZBITPIX", "ZEXTEND", "ZBLOCKED", "ZPCOUNT", "ZGCOUNT",
        "ZCMPTYPE", "ZQUANTIZ", "ZDITHER0", "ZHECKSUM", "ZDATASUM", "ZMASKCMP", "ZBLANK", "ZSCALE",
        "ZZERO",
    ];
    Z.contains(&key)
        || ["ZNAXIS", "ZTILE", "ZNAME", "ZVAL"].iter().any(|p| {
            key.strip_prefix(p)
                .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
        })
}

/// `PC00i00j` → `PCi_j` (and the same for `CD00i00j`), else `None`.
fn modern_matrix_key(key: &str) -> Option<String> {
    for prefix in ["PC", "CD"] {
        if let Some(rest) = key.strip_prefix(prefix)
            && rest.len() == 6
            && rest.bytes().all(|b| b.is_ascii_digit())
        {
            let i: u32 = rest[..3].parse().ok()?;
            let j: u32 = rest[3..].parse().ok()?;
            return Some(format!("{prefix}{i}_{j}"));
        }
    }
    None
}

/// For `CRPIX1`, `CRPIX2`, `CRPIX1A` … `CRPIX2Z`: the axis (1 or 2).
fn crpix_axis(key: &str) -> Option<usize> {
    let rest = key.strip_prefix("CRPIX")?;
    let mut chars = rest.chars();
    let axis = match chars.next()? {
        '1' => 1,
        '2' => 2,
        _ => return None,
    };
    match chars.next() {
        None => Some(axis),
        Some(c) if c.is_ascii_uppercase() && chars.next().is_none() => Some(axis),
        _ => None,
    }
}

fn header_cards(
    source: &PixelSource,
    keys: &Header,
    g: &Geometry,
    spec: &CutoutSpec,
    provenance: &Provenance,
    blank: Option<i64>,
    linearized: bool,
) -> Vec<Card> {
    let mut cards = Vec::with_capacity(source.writable.len() + 32);
    for card in &source.writable {
        let key = card.key.as_str();
        if dropped(key) || (linearized && matches!(key, "BSOFTEN" | "BOFFSET")) {
            continue;
        }
        let mut card = card.clone();
        if let Some(modern) = modern_matrix_key(key) {
            // WCSLIB prefers PCi_j over PC00i00j when both are present; keep
            // only the one it uses.
            if keys.get(&modern).is_some() {
                continue;
            }
            card.key = modern;
        }
        if let Some(axis) = crpix_axis(&card.key)
            && let Some(v) = card.value.as_f64()
        {
            let shift = if axis == 1 { g.x0 } else { g.y0 };
            card.value = HeaderValue::Float(v - shift as f64);
        }
        // `writable` already holds only the first of duplicated keywords
        // (the one astropy and cfitsio report) and only cards that can be
        // written.
        cards.push(card);
    }

    let mut add = |key: &str, value: HeaderValue, comment: &str| {
        cards.push(Card {
            key: key.to_owned(),
            value,
            comment: (!comment.is_empty()).then(|| comment.to_owned()),
        });
    };
    if let Some(b) = blank {
        add(
            "BLANK",
            HeaderValue::Int(b),
            "value of undefined and padded pixels",
        );
    }
    let celestial = keys.text("CTYPE1").is_some_and(|c| c.starts_with("RA--"));
    if celestial && keys.text("RADESYS").is_none() {
        let (system, why) = match (
            keys.text("RADECSYS"),
            keys.number("EQUINOX").or(keys.number("EPOCH")),
        ) {
            (Some(old), _) => (old, "from RADECSYS"),
            (None, None) => ("ICRS".to_owned(), "FITS default without EQUINOX"),
            (None, Some(e)) if e < 1984.0 => ("FK4".to_owned(), "FITS default for EQUINOX < 1984"),
            (None, Some(_)) => ("FK5".to_owned(), "FITS default for EQUINOX >= 1984"),
        };
        add("RADESYS", HeaderValue::Str(system), why);
    }
    // IRAF logical → physical mapping, shifted from the parent's if it had
    // one, so ds9's "physical" coordinates stay those of the parent.
    let ltv = |key: &str, shift: i64| keys.number(key).unwrap_or(0.0) - shift as f64;
    add(
        "LTV1",
        HeaderValue::Float(ltv("LTV1", g.x0)),
        "cutout offset (IRAF physical)",
    );
    add(
        "LTV2",
        HeaderValue::Float(ltv("LTV2", g.y0)),
        "cutout offset (IRAF physical)",
    );
    add(
        "LTM1_1",
        HeaderValue::Float(keys.number("LTM1_1").unwrap_or(1.0)),
        "",
    );
    add(
        "LTM2_2",
        HeaderValue::Float(keys.number("LTM2_2").unwrap_or(1.0)),
        "",
    );
    add(
        "WCSNAMEP",
        "PHYSICAL".into(),
        "alternate WCS P: parent image pixels",
    );
    add(
        "WCSAXESP",
        HeaderValue::Int(2),
        "number of WCS physical axes",
    );
    add("CTYPE1P", "RAWX".into(), "parent image column");
    add("CUNIT1P", "pixel".into(), "");
    add("CRPIX1P", HeaderValue::Float(1.0), "");
    add(
        "CRVAL1P",
        HeaderValue::Float((g.x0 + 1) as f64),
        "parent column of cutout column 1",
    );
    add("CDELT1P", HeaderValue::Float(1.0), "");
    add("CTYPE2P", "RAWY".into(), "parent image row");
    add("CUNIT2P", "pixel".into(), "");
    add("CRPIX2P", HeaderValue::Float(1.0), "");
    add(
        "CRVAL2P",
        HeaderValue::Float((g.y0 + 1) as f64),
        "parent row of cutout row 1",
    );
    add("CDELT2P", HeaderValue::Float(1.0), "");
    if let Some(id) = provenance.object_id {
        add(
            "ORIGOBJ",
            HeaderValue::Int(id),
            "wisecut object_id of the parent frame",
        );
    }
    add(
        "ORIGFILE",
        HeaderValue::Str(provenance.file.clone()),
        "parent file",
    );
    add(
        "ORIGHDU",
        HeaderValue::Int(source.hdu() as i64),
        "parent HDU (0 = primary)",
    );
    add(
        "ORIGX0",
        HeaderValue::Int(g.x0),
        "parent x = cutout x + ORIGX0",
    );
    add(
        "ORIGY0",
        HeaderValue::Int(g.y0),
        "parent y = cutout y + ORIGY0",
    );
    add(
        "CUTX",
        HeaderValue::Float(g.x),
        "requested centre, parent pixel x",
    );
    add(
        "CUTY",
        HeaderValue::Float(g.y),
        "requested centre, parent pixel y",
    );
    if let Center::Sky { ra, dec } = spec.center {
        add("CUTRA", HeaderValue::Float(ra), "[deg] requested centre RA");
        add(
            "CUTDEC",
            HeaderValue::Float(dec),
            "[deg] requested centre Dec",
        );
    }
    add(
        "NPADPIX",
        HeaderValue::Int(g.padded as i64),
        "pixels outside the parent image",
    );
    if linearized {
        add(
            "FLUXLIN",
            HeaderValue::Bool(true),
            "asinh BSOFTEN/BOFFSET values made linear",
        );
    }
    add(
        "WISECUT",
        HeaderValue::Str(crate::VERSION.to_owned()),
        "wisecut version",
    );
    if let Some(url) = &provenance.object_url {
        add(
            "ORIGURL",
            HeaderValue::Str(url.clone()),
            "object view of the parent",
        );
    }
    cards
}

impl fmt::Display for Geometry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}x{} px at parent offset ({}, {}), {} padded",
            self.width, self.height, self.x0, self.y0, self.padded
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_matches_cutout2d_convention() {
        // Odd size centred on a pixel centre: the centre pixel is in the middle.
        let g = place(10.0, 20.0, 5, 5, 100, 100).unwrap();
        assert_eq!((g.x0, g.y0), (7, 17)); // parent pixels 8..12 (1-based)
        // Even size: ceil((x-1) - n/2).
        let g = place(10.0, 10.0, 4, 4, 100, 100).unwrap();
        assert_eq!(g.x0, 7);
        let g = place(10.6, 10.4, 4, 4, 100, 100).unwrap();
        assert_eq!((g.x0, g.y0), (8, 8));
        // Exact half pixel rounds upward.
        let g = place(10.5, 10.5, 3, 3, 100, 100).unwrap();
        assert_eq!(g.x0, 8);
    }

    #[test]
    fn padding_and_no_overlap() {
        let g = place(1.0, 1.0, 5, 5, 100, 100).unwrap();
        assert_eq!((g.x0, g.y0), (-2, -2));
        assert_eq!(g.padded, 25 - 9);
        assert_eq!(g.overlap(100, 100), (0, 0, 3, 3));
        let g = place(100.0, 50.0, 4, 2, 100, 100).unwrap();
        assert_eq!(g.overlap(100, 100), (97, 48, 3, 2));
        assert_eq!(g.padded, 2);
        assert!(matches!(
            place(-10.0, 50.0, 5, 5, 100, 100),
            Err(CutoutError::NoOverlap { .. })
        ));
        // Touching the edge from outside is no overlap (astropy agrees).
        assert!(place(-2.0, 50.0, 4, 4, 100, 100).is_err());
        assert!(place(f64::NAN, 50.0, 4, 4, 100, 100).is_err());
    }

    #[test]
    fn legacy_keys() {
        assert_eq!(modern_matrix_key("PC001002").as_deref(), Some("PC1_2"));
        assert_eq!(modern_matrix_key("PC1_2"), None);
        assert_eq!(crpix_axis("CRPIX1"), Some(1));
        assert_eq!(crpix_axis("CRPIX2A"), Some(2));
        assert_eq!(crpix_axis("CRPIX3"), None);
        assert!(dropped("NAXIS1") && dropped("ZTILE1") && !dropped("ZPOINT"));
    }

    /// The pass-through FITS path gives exactly the bytes of the general
    /// path: float and integer images, inside and over the edges, with and
    /// without BLANK and BSCALE, and the cases it hands back.
    #[test]
    fn pass_through_fits_equals_the_general_path() {
        use crate::imaging::fits::{self, Compression, PixelData};
        let dir = tempfile::tempdir().unwrap();
        let (w, h) = (37, 23);
        let floats = Raster::from_vec(w, h, (0..w * h).map(|i| i as f32 * 0.25 - 7.0).collect());
        let ints = Raster::from_vec(w, h, (0..w * h).map(|i| (i as i16) * 3 - 500).collect());
        let unsigned = Raster::from_vec(w, h, (0..w * h).map(|i| (i * 91) as u16).collect());
        let wcs = [
            Card::new("CTYPE1", "RA---TAN", ""),
            Card::new("CTYPE2", "DEC--TAN", ""),
            Card::new("CRPIX1", 18.0, ""),
            Card::new("CRPIX2", 12.0, ""),
            Card::new("CRVAL1", 150.0, ""),
            Card::new("CRVAL2", 2.0, ""),
            Card::new("CD1_1", -0.0001, ""),
            Card::new("CD2_2", 0.0001, ""),
        ];
        let blank = [Card::new("BLANK", -32768i64, "")];
        let cases: Vec<(&str, PixelData, &[Card], Compression, bool)> = vec![
            (
                "f32",
                PixelData::F32(&floats),
                &wcs,
                Compression::None,
                true,
            ),
            ("i16", PixelData::I16(&ints), &wcs, Compression::None, true),
            (
                "i16blank",
                PixelData::I16(&ints),
                &blank,
                Compression::None,
                true,
            ),
            (
                "u16",
                PixelData::U16(&unsigned),
                &[],
                Compression::None,
                true,
            ),
            (
                "rice",
                PixelData::I16(&ints),
                &[],
                Compression::Rice { tile: (w, 1) },
                false,
            ),
        ];
        let provenance = Provenance {
            object_id: Some(7),
            file: "f.fits".into(),
            object_url: None,
        };
        for (name, pixels, cards, compression, plain) in cases {
            let path = dir.path().join(format!("{name}.fits"));
            let hdu = fits::write_image(&path, pixels, cards, &compression).unwrap();
            let source = PixelSource::open(&path, hdu, None).unwrap();
            assert_eq!(source.access() == "plain", plain, "{name}");
            for &(x, y, cw, ch) in &[
                (19.0, 12.0, 9, 7),
                (1.0, 1.0, 8, 6),
                (36.5, 23.0, 10, 4),
                (19.0, 12.0, 37, 23),
            ] {
                let spec = CutoutSpec::pixel_box(x, y, cw, ch);
                let g = locate(&source, &spec).unwrap();
                let general = extract(&source, &spec, g, &provenance).map(|c| c.to_fits());
                let fast = extract_fits(&source, &spec, g, &provenance);
                match (general, fast) {
                    (Ok(Ok(a)), Ok(b)) => assert!(a == b, "{name} at {x},{y} {cw}x{ch} differs"),
                    (a, b) => panic!(
                        "{name}: {:?} vs {:?}",
                        a.map(|r| r.is_ok()),
                        b.map(|v| v.len())
                    ),
                }
            }
        }
    }
}
