//! Image HDUs: writing a 2-D image (plain, or RICE tile-compressed as fpack
//! does) and reading it back whole or by region, plus what a reader needs to
//! know about an image HDU before touching its pixels.
//!
//! Region reads go through cfitsio's subset reader rather than reading whole
//! rows, because for a tile-compressed image cfitsio then decompresses only
//! the tiles the region touches; that is what makes cutouts of large fpacked
//! images cheap.

use std::ffi::{CString, c_int, c_long, c_void};
use std::path::Path;
use std::ptr;

use fitsio::sys;

use super::cards::{Card, format_user_cards};
use super::handle::{
    BYTE_IMG, CfitsioType, FLOAT_IMG, Handle, IMAGE_HDU, KEY_NO_EXIST, LONG_IMG, RICE_1, SHORT_IMG,
    USHORT_IMG, ensure_absent, finish_new_file,
};
use super::{FitsError, invalid};
use crate::imaging::raster::Raster;

/// How an image is stored on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain image in the primary HDU.
    None,
    /// RICE tile compression (lossless for integer images), in a binary-table
    /// HDU 1 behind an empty primary HDU, as fpack does. `tile` is
    /// (`NAXIS1` pixels, rows), e.g. `(width, 1)` for row tiles like
    /// Pan-STARRS, or `(256, 256)`. Tile sizes larger than the image are
    /// clamped to the image size; zero is rejected.
    Rice {
        /// Tile size as (pixels along x, rows along y).
        tile: (usize, usize),
    },
}

/// Pixels to write, borrowed from the caller; the variant fixes the on-disk
/// type.
#[derive(Debug, Clone, Copy)]
pub enum PixelData<'a> {
    /// BITPIX 8.
    U8(&'a Raster<u8>),
    /// BITPIX 16.
    I16(&'a Raster<i16>),
    /// BITPIX 16 with BZERO = 32768 (the FITS convention for unsigned 16-bit).
    U16(&'a Raster<u16>),
    /// BITPIX 32.
    I32(&'a Raster<i32>),
    /// BITPIX -32 (cannot be RICE-compressed here; see [`write_image`]).
    F32(&'a Raster<f32>),
}

impl PixelData<'_> {
    fn dims_and_len(&self) -> (usize, usize, usize) {
        match self {
            Self::U8(i) => (i.width, i.height, i.data.len()),
            Self::I16(i) => (i.width, i.height, i.data.len()),
            Self::U16(i) => (i.width, i.height, i.data.len()),
            Self::I32(i) => (i.width, i.height, i.data.len()),
            Self::F32(i) => (i.width, i.height, i.data.len()),
        }
    }

    fn bitpix_code(&self) -> c_int {
        match self {
            Self::U8(_) => BYTE_IMG,
            Self::I16(_) => SHORT_IMG,
            Self::U16(_) => USHORT_IMG,
            Self::I32(_) => LONG_IMG,
            Self::F32(_) => FLOAT_IMG,
        }
    }
}

/// Size and type of the image in an HDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    /// `NAXIS1` of the (uncompressed) image.
    pub width: usize,
    /// `NAXIS2` of the (uncompressed) image.
    pub height: usize,
    /// `BITPIX` of the (uncompressed) image as stored, e.g. 16 for unsigned
    /// 16-bit data stored with BZERO = 32768.
    pub bitpix: i32,
    /// Whether the HDU is a tile-compressed image.
    pub compressed: bool,
}

/// Where and how an image HDU's pixels are stored: what a cutout reader needs
/// to fetch a region without going through cfitsio for every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HduLayout {
    /// Size and type of the (uncompressed) image.
    pub info: ImageInfo,
    /// For a plain image: the byte offset of its data unit, whose pixels are
    /// big-endian values of type `BITPIX`, row after row. `None` for a
    /// tile-compressed image.
    pub data_offset: Option<u64>,
    /// For a tile-compressed image: the tile size as (pixels along x, rows),
    /// from `ZTILE1`/`ZTILE2` (default: whole rows, as the convention says).
    pub tile: Option<(usize, usize)>,
}

/// A floating-point type that [`read_region`] can deliver pixel values as,
/// after BSCALE/BZERO. Implemented for `f32` (what display and statistics
/// work in) and `f64` (what cutouts of scaled or compressed data need to get
/// back to the stored values exactly); sealed, since cfitsio must know the
/// type's memory layout.
pub trait ScaledPixel: CfitsioType + Default {
    /// The null value handed to cfitsio when reading the image `info`
    /// describes. A non-zero value (NaN) switches on cfitsio's null check, so
    /// undefined pixels (BLANK / ZBLANK) become NaN, but that check also
    /// turns infinities into NaN and -0.0 and subnormals into 0; zero means
    /// no check.
    fn null_for(info: &ImageInfo) -> Self;
}

impl ScaledPixel for f32 {
    /// NaN (cfitsio maps undefined pixels to it) for integer images (BLANK)
    /// and compressed images (ZBLANK, also for quantised floats); zero (no
    /// check) for plain float images, so that they come back bit-exact:
    /// their NaNs are NaN anyway.
    fn null_for(info: &ImageInfo) -> Self {
        if info.bitpix > 0 || info.compressed {
            f32::NAN
        } else {
            0.0
        }
    }
}

impl ScaledPixel for f64 {
    /// Always NaN, with the null check: f64 reads serve tile-compressed
    /// images, where the check is what turns ZBLANK into NaN, and the values
    /// still go back to their stored type exactly, since every 8-, 16- and
    /// 32-bit integer and every f32 is an f64. (A plain float image read as
    /// f64 therefore has its infinities turned into NaN.)
    fn null_for(_: &ImageInfo) -> Self {
        f64::NAN
    }
}

impl Handle {
    /// NAXIS, NAXISn (first two), BITPIX and compression of the current image
    /// HDU, all of the uncompressed image.
    #[allow(unsafe_code)]
    fn image_params(&self) -> Result<(c_int, [i64; 2], c_int, bool), FitsError> {
        let mut status: c_int = 0;
        let mut naxis: c_int = 0;
        let mut naxes = [0i64; 2];
        let mut bitpix: c_int = 0;
        // SAFETY: valid handle and out-pointers; ffgiszll writes at most
        // `nlen` = 2 values into `naxes`, which has room for 2.
        let compressed = unsafe {
            sys::ffgidm(self.raw(), &mut naxis, &mut status);
            sys::ffgiszll(self.raw(), 2, naxes.as_mut_ptr(), &mut status);
            sys::ffgidt(self.raw(), &mut bitpix, &mut status);
            sys::fits_is_compressed_image(self.raw(), &mut status)
        };
        self.check("read image size", status)?;
        Ok((naxis, naxes, bitpix, compressed != 0))
    }

    /// Requests RICE compression for the next image created with this handle.
    #[allow(unsafe_code)]
    fn request_rice(&self, tile: (usize, usize)) -> Result<(), FitsError> {
        let mut dims: [c_long; 2] = self.c_dims([tile.0, tile.1])?;
        let mut status: c_int = 0;
        // SAFETY: valid handle; `dims` holds the 2 values ndim = 2 announces
        // and is only read.
        unsafe {
            sys::fits_set_compression_type(self.raw(), RICE_1, &mut status);
            sys::fits_set_tile_dim(self.raw(), 2, dims.as_mut_ptr(), &mut status);
        }
        self.check("request RICE compression", status)
    }

    /// Creates an image HDU (the primary one in an empty file, or a
    /// compressed one if requested).
    #[allow(unsafe_code)]
    fn create_image(&self, bitpix: c_int, width: usize, height: usize) -> Result<(), FitsError> {
        let mut naxes: [i64; 2] = self.c_dims([width, height])?;
        let mut status: c_int = 0;
        // SAFETY: valid handle; `naxes` holds NAXIS = 2 values and is only read.
        unsafe { sys::ffcrimll(self.raw(), bitpix, 2, naxes.as_mut_ptr(), &mut status) };
        self.check("create image HDU", status)
    }

    /// Writes all pixels of the current (2-D) image HDU.
    #[allow(unsafe_code)]
    fn write_pixels<T: CfitsioType>(&self, data: &[T]) -> Result<(), FitsError> {
        let mut first: [c_long; 2] = [1, 1];
        let n = self.c_size(data.len())?;
        let mut status: c_int = 0;
        // SAFETY: valid handle; `first` holds NAXIS = 2 values; `data` holds
        // `n` elements of the C type T::TYPE_CODE names. cfitsio documents the
        // array as input only and copies it into its own buffers (also when
        // compressing), so handing out a mutable pointer to shared data is
        // sound.
        unsafe {
            sys::ffppx(
                self.raw(),
                T::TYPE_CODE,
                first.as_mut_ptr(),
                n,
                data.as_ptr().cast::<c_void>().cast_mut(),
                &mut status,
            );
        }
        self.check("write pixels", status)
    }

    /// Reads the rectangle with one-based inclusive corners `blc`..`trc` of
    /// the current image HDU as `T` (f32 or f64), scaled, with the null value
    /// [`ScaledPixel::null_for`] chose for the image.
    #[allow(unsafe_code)]
    fn read_subset<T: ScaledPixel>(
        &self,
        blc: [usize; 2],
        trc: [usize; 2],
        mut nulval: T,
    ) -> Result<Vec<T>, FitsError> {
        let w = trc[0] + 1 - blc[0];
        let h = trc[1] + 1 - blc[1];
        let n = w
            .checked_mul(h)
            .ok_or_else(|| invalid(&self.path, "region too large"))?;
        let mut out = vec![T::default(); n];
        let mut fpixel: [c_long; 2] = self.c_dims(blc)?;
        let mut lpixel: [c_long; 2] = self.c_dims(trc)?;
        let mut inc: [c_long; 2] = [1, 1];
        let mut anynul: c_int = 0;
        let mut status: c_int = 0;
        // SAFETY: valid handle; the corner and increment arrays hold NAXIS = 2
        // values and are only read; `out` has room for exactly the w*h values
        // of the inclusive rectangle; `nulval` and `out` are of the C type
        // `T::TYPE_CODE` names.
        unsafe {
            sys::ffgsv(
                self.raw(),
                T::TYPE_CODE,
                fpixel.as_mut_ptr(),
                lpixel.as_mut_ptr(),
                inc.as_mut_ptr(),
                (&raw mut nulval).cast::<c_void>(),
                out.as_mut_ptr().cast::<c_void>(),
                &mut anynul,
                &mut status,
            );
        }
        self.check("read pixels", status)?;
        Ok(out)
    }

    /// Byte offset of the current HDU's data unit in the file.
    #[allow(unsafe_code)]
    fn data_offset(&self) -> Result<u64, FitsError> {
        let (mut head, mut data, mut end) = (0i64, 0i64, 0i64);
        let mut status: c_int = 0;
        // SAFETY: valid handle and out-pointers.
        unsafe { sys::ffghadll(self.raw(), &mut head, &mut data, &mut end, &mut status) };
        self.check("locate data unit", status)?;
        u64::try_from(data).map_err(|_| invalid(&self.path, "negative data offset"))
    }

    /// An integer keyword of the current HDU's header as stored on disk (for a
    /// compressed image: the binary table's own header, where `ZTILEn`
    /// live); `None` when absent.
    #[allow(unsafe_code)]
    fn raw_int_keyword(&self, key: &str) -> Result<Option<i64>, FitsError> {
        let c_key = CString::new(key).map_err(|_| invalid(&self.path, "bad keyword"))?;
        let mut value: std::ffi::c_longlong = 0;
        let mut status: c_int = 0;
        // SAFETY: valid handle; NUL-terminated key; a null comment pointer is
        // allowed by cfitsio (the comment is then not returned).
        unsafe {
            sys::ffgkyjj(
                self.raw(),
                c_key.as_ptr(),
                &mut value,
                ptr::null_mut(),
                &mut status,
            )
        };
        match status {
            0 => Ok(Some(value)),
            KEY_NO_EXIST => Ok(None),
            s => Err(self.err(&format!("read keyword {key}"), s)),
        }
    }
}

/// Writes a new FITS file (fails with [`FitsError::AlreadyExists`] if the path
/// exists) holding one image and the given extra header cards, and returns the
/// HDU index of the image.
///
/// * [`Compression::None`]: the image is the primary HDU (index 0).
/// * [`Compression::Rice`]: the primary HDU is empty and the image is the
///   tile-compressed HDU 1 (`ZIMAGE = T`), as fpack does. Only integer images
///   can be compressed: float images would need quantisation with a dither
///   seed, which is lossy and (with cfitsio's default seed) not reproducible,
///   so `F32` + RICE is refused.
///
/// The cards follow the mandatory keywords in the given order (see [`Card`]
/// for the rules). The output is byte-for-byte deterministic: no `DATE`, no
/// checksum, nothing derived from the clock. Everything is validated before
/// the file is created, and a file that fails half-way is removed.
pub fn write_image(
    path: &Path,
    pixels: PixelData<'_>,
    cards: &[Card],
    compression: &Compression,
) -> Result<usize, FitsError> {
    let (width, height, len) = pixels.dims_and_len();
    if width == 0 || height == 0 {
        return Err(invalid(
            path,
            format!("cannot write an empty {width}x{height} image"),
        ));
    }
    if width.checked_mul(height) != Some(len) {
        return Err(invalid(
            path,
            format!("image buffer holds {len} pixels, not {width}x{height}"),
        ));
    }
    let tile = match *compression {
        Compression::None => None,
        Compression::Rice { tile } => {
            if matches!(pixels, PixelData::F32(_)) {
                return Err(invalid(
                    path,
                    "RICE compression of float images is not supported: it would be lossy and not \
                     reproducible; write F32 images uncompressed",
                ));
            }
            if tile.0 == 0 || tile.1 == 0 {
                return Err(invalid(path, format!("invalid RICE tile size {tile:?}")));
            }
            // Clamp so ZTILEn never exceeds NAXISn; some readers reject that.
            Some((tile.0.min(width), tile.1.min(height)))
        }
    };
    let records = format_user_cards(path, cards, false)?;
    ensure_absent(path)?;

    let handle = Handle::create(path)?;
    let result = (|| {
        if let Some(tile) = tile {
            handle.request_rice(tile)?;
        }
        // In an empty file with compression requested, cfitsio writes an
        // empty primary HDU and puts the image in a compressed HDU 1.
        handle.create_image(pixels.bitpix_code(), width, height)?;
        handle.write_records(&records)?;
        match pixels {
            PixelData::U8(i) => handle.write_pixels(&i.data)?,
            PixelData::I16(i) => handle.write_pixels(&i.data)?,
            PixelData::U16(i) => handle.write_pixels(&i.data)?,
            PixelData::I32(i) => handle.write_pixels(&i.data)?,
            PixelData::F32(i) => handle.write_pixels(&i.data)?,
        }
        Ok(handle.current_hdu())
    })();
    finish_new_file(handle, result)
}

/// Opens `path` read-only, moves to `hdu` and checks that it is a 2-D image;
/// returns the handle and the image info.
fn open_image(path: &Path, hdu: usize) -> Result<(Handle, ImageInfo), FitsError> {
    let (handle, hdutype) = Handle::open_hdu(path, hdu)?;
    if hdutype != IMAGE_HDU {
        return Err(FitsError::NotAnImage {
            path: path.to_path_buf(),
            hdu,
            detail: "it is a table".to_owned(),
        });
    }
    let (naxis, naxes, bitpix, compressed) = handle.image_params()?;
    if naxis != 2 {
        return Err(FitsError::NotAnImage {
            path: path.to_path_buf(),
            hdu,
            detail: format!("NAXIS = {naxis}"),
        });
    }
    if ![8, 16, 32, 64, -32, -64].contains(&bitpix) {
        return Err(FitsError::UnsupportedBitpix {
            path: path.to_path_buf(),
            detail: format!("BITPIX = {bitpix}"),
        });
    }
    let dim =
        |v: i64| usize::try_from(v).map_err(|_| invalid(path, format!("bad axis length {v}")));
    let info = ImageInfo {
        width: dim(naxes[0])?,
        height: dim(naxes[1])?,
        bitpix,
        compressed,
    };
    Ok((handle, info))
}

/// Reads the whole 2-D image of HDU `hdu` (zero-based) as f32, with
/// BSCALE/BZERO applied by cfitsio and undefined pixels (BLANK in integer
/// images, ZBLANK in compressed ones) as NaN; plain float images come back
/// bit-exact (NaN, infinities, -0.0 included). Works for plain and
/// tile-compressed HDUs. Integers beyond 2^24 are rounded to the nearest f32.
pub fn read_image_f32(path: &Path, hdu: usize) -> Result<Raster<f32>, FitsError> {
    let (handle, info) = open_image(path, hdu)?;
    let data = handle.read_subset([1, 1], [info.width, info.height], f32::null_for(&info))?;
    Ok(Raster::from_vec(info.width, info.height, data))
}

/// Reads only the rectangle `[x0, x0+w) × [y0, y0+h)` (zero-based; it must lie
/// inside the image) of HDU `hdu` as `T`, with BSCALE/BZERO applied by cfitsio
/// and undefined pixels as NaN ([`ScaledPixel::null_for`] says when cfitsio's
/// null check is on). For tile-compressed images cfitsio decompresses only the
/// tiles that overlap the rectangle, which is what makes cutouts of large
/// fpacked images cheap. A zero-sized rectangle gives an empty image. As `f32`
/// the values are converted like [`read_image_f32`]'s; as `f64` they are exact
/// for every stored type but 64-bit integers beyond 2^53.
pub fn read_region<T: ScaledPixel>(
    path: &Path,
    hdu: usize,
    x0: usize,
    y0: usize,
    w: usize,
    h: usize,
) -> Result<Raster<T>, FitsError> {
    let (handle, info) = open_image(path, hdu)?;
    let inside = |start: usize, len: usize, size: usize| {
        start.checked_add(len).is_some_and(|end| end <= size)
    };
    if !inside(x0, w, info.width) || !inside(y0, h, info.height) {
        return Err(invalid(
            path,
            format!(
                "region x {x0}+{w}, y {y0}+{h} lies outside the {}x{} image of HDU {hdu}",
                info.width, info.height
            ),
        ));
    }
    if w == 0 || h == 0 {
        return Ok(Raster::from_vec(w, h, Vec::new()));
    }
    // cfitsio corners are one-based and inclusive.
    let data = handle.read_subset([x0 + 1, y0 + 1], [x0 + w, y0 + h], T::null_for(&info))?;
    Ok(Raster::from_vec(w, h, data))
}

/// The layout of image HDU `hdu` (zero-based).
pub fn hdu_layout(path: &Path, hdu: usize) -> Result<HduLayout, FitsError> {
    let (handle, info) = open_image(path, hdu)?;
    if info.compressed {
        let dim = |key: &str, default: usize| -> Result<usize, FitsError> {
            match handle.raw_int_keyword(key)? {
                None => Ok(default),
                Some(v) if v >= 1 => Ok(usize::try_from(v).unwrap_or(default)),
                Some(v) => Err(invalid(path, format!("{key} = {v} is not a tile size"))),
            }
        };
        let tile = (dim("ZTILE1", info.width)?, dim("ZTILE2", 1)?);
        return Ok(HduLayout {
            info,
            data_offset: None,
            tile: Some(tile),
        });
    }
    Ok(HduLayout {
        info,
        data_offset: Some(handle.data_offset()?),
        tile: None,
    })
}

/// Width (`NAXIS1`), height (`NAXIS2`), `BITPIX` and compression of the 2-D
/// image in HDU `hdu`; for a compressed HDU the values of the uncompressed
/// image.
pub fn image_info(path: &Path, hdu: usize) -> Result<ImageInfo, FitsError> {
    open_image(path, hdu).map(|(_, info)| info)
}

/// The index of the first HDU that holds a 2-D image (NAXIS = 2): 0 for a
/// plain file, 1 for an fpacked one. [`FitsError::NoImage`] if there is none.
pub fn first_image_hdu(path: &Path) -> Result<usize, FitsError> {
    let handle = Handle::open(path, false)?;
    for hdu in 0.. {
        match handle.move_to(hdu) {
            Ok(IMAGE_HDU) => {
                if handle.image_params()?.0 == 2 {
                    return Ok(hdu);
                }
            }
            Ok(_) => {}
            Err(FitsError::NoSuchHdu { .. }) => break,
            Err(e) => return Err(e),
        }
    }
    Err(FitsError::NoImage {
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::fits::test_fixtures::*;
    use crate::imaging::fits::{HeaderValue, hdu_count};
    use std::fs;

    /// Checks that HDU 1 really is a RICE tile-compressed image with the tile
    /// size expected.
    fn assert_rice(path: &Path, tile: (usize, usize)) {
        let hdus = raw_hdus(path);
        assert_eq!(hdus.len(), 2, "primary + compressed HDU");
        assert_eq!(
            raw_value(&hdus[0].0, "NAXIS"),
            Some(HeaderValue::Int(0)),
            "empty primary"
        );
        let cards = &hdus[1].0;
        assert_eq!(raw_value(cards, "XTENSION"), Some("BINTABLE".into()));
        assert_eq!(raw_value(cards, "ZIMAGE"), Some(HeaderValue::Bool(true)));
        assert_eq!(raw_value(cards, "ZCMPTYPE"), Some("RICE_1".into()));
        assert_eq!(
            raw_value(cards, "ZTILE1"),
            Some(HeaderValue::Int(tile.0 as i64))
        );
        assert_eq!(
            raw_value(cards, "ZTILE2"),
            Some(HeaderValue::Int(tile.1 as i64))
        );
        assert_eq!(
            raw_value(cards, "ZDITHER0"),
            None,
            "no clock-derived dither seed"
        );
    }

    #[test]
    fn plain_round_trip_every_pixel_type() {
        let dir = tmp();
        for kind in ALL_KINDS {
            let path = dir.path().join(format!("plain-{kind}.fits"));
            let (hdu, expected, bitpix) =
                write_kind(&path, kind, 37, 23, &[], &Compression::None).unwrap();
            assert_eq!(hdu, 0, "{kind}: plain image is the primary HDU");
            assert_eq!(hdu_count(&path).unwrap(), 1);
            assert_eq!(first_image_hdu(&path).unwrap(), 0);
            let info = image_info(&path, 0).unwrap();
            assert_eq!(
                info,
                ImageInfo {
                    width: 37,
                    height: 23,
                    bitpix,
                    compressed: false
                },
                "{kind}"
            );
            assert_same(&read_image_f32(&path, 0).unwrap(), &expected, kind);
        }
    }

    #[test]
    fn rice_round_trip_integer_types_with_row_and_square_tiles() {
        let dir = tmp();
        let (w, h) = (150, 97); // not multiples of 64: partial edge tiles
        for kind in ["u8", "i16", "u16", "i32"] {
            for (name, tile, expected_tile) in [
                ("rows", (w, 1), (w, 1)),
                ("64", (64, 64), (64, 64)),
                ("huge", (256, 256), (w, h)),
            ] {
                let path = dir.path().join(format!("rice-{kind}-{name}.fits"));
                let c = Compression::Rice { tile };
                let (hdu, expected, bitpix) = write_kind(&path, kind, w, h, &[], &c).unwrap();
                assert_eq!(hdu, 1, "{kind}/{name}: compressed image is HDU 1");
                assert_rice(&path, expected_tile);
                assert_eq!(first_image_hdu(&path).unwrap(), 1);
                assert_eq!(hdu_count(&path).unwrap(), 2);
                assert_eq!(
                    image_info(&path, 1).unwrap(),
                    ImageInfo {
                        width: w,
                        height: h,
                        bitpix,
                        compressed: true
                    }
                );
                assert_same(
                    &read_image_f32(&path, 1).unwrap(),
                    &expected,
                    &format!("{kind}/{name}"),
                );
                // The empty primary is not an image to read.
                assert!(matches!(
                    read_image_f32(&path, 0),
                    Err(FitsError::NotAnImage { .. })
                ));
            }
        }
    }

    #[test]
    fn rice_really_compresses() {
        let dir = tmp();
        let img = make(512, 512, |x, y| ((x / 8 + y / 8) % 50) as i16);
        let plain = dir.path().join("plain.fits");
        let rice = dir.path().join("rice.fits");
        write_image(&plain, PixelData::I16(&img), &[], &Compression::None).unwrap();
        write_image(
            &rice,
            PixelData::I16(&img),
            &[],
            &Compression::Rice { tile: (512, 1) },
        )
        .unwrap();
        let (p, r) = (
            fs::metadata(&plain).unwrap().len(),
            fs::metadata(&rice).unwrap().len(),
        );
        assert!(
            r * 3 < p,
            "RICE file {r} bytes should be much smaller than plain {p}"
        );
    }

    #[test]
    fn u16_extremes_survive_and_use_bzero() {
        let dir = tmp();
        let img = Raster::from_vec(4, 2, vec![0u16, 65535, 32768, 32767, 1, 65534, 0, 65535]);
        for (name, c) in [
            ("plain", Compression::None),
            ("rice", Compression::Rice { tile: (4, 1) }),
        ] {
            let path = dir.path().join(format!("{name}.fits"));
            let hdu = write_image(&path, PixelData::U16(&img), &[], &c).unwrap();
            let back = read_image_f32(&path, hdu).unwrap();
            assert_eq!(
                back.data,
                vec![0.0, 65535.0, 32768.0, 32767.0, 1.0, 65534.0, 0.0, 65535.0],
                "{name}"
            );
            assert_eq!(
                header_value(&path, hdu, "BITPIX"),
                Some(HeaderValue::Int(16)),
                "{name}"
            );
            assert_eq!(
                header_value(&path, hdu, "BZERO").and_then(|v| v.as_f64()),
                Some(32768.0),
                "{name}"
            );
            let region = read_region::<f32>(&path, hdu, 1, 0, 1, 2).unwrap();
            assert_eq!(region.data, vec![65535.0, 65534.0], "{name}");
        }
    }

    #[test]
    fn regions_equal_windows_of_the_full_image() {
        let dir = tmp();
        let (w, h) = (150, 97);
        let cases = [
            ("plain", Compression::None),
            ("rows", Compression::Rice { tile: (w, 1) }),
            ("64", Compression::Rice { tile: (64, 64) }),
        ];
        let windows = [
            (0, 0, 1, 1),
            (0, 0, w, h),
            (w - 1, h - 1, 1, 1),
            (w - 7, 3, 7, 10),
            (5, h - 4, 20, 4),
            (63, 63, 2, 2), // straddles four 64x64 tiles
            (60, 0, 70, h),
            (0, 40, w, 1),
            (149, 0, 1, 97),
        ];
        for kind in ["i16", "u16", "i32", "f32"] {
            for (name, c) in &cases {
                if kind == "f32" && *name != "plain" {
                    continue;
                }
                let path = dir.path().join(format!("{kind}-{name}.fits"));
                let (hdu, _, _) = write_kind(&path, kind, w, h, &[], c).unwrap();
                let full = read_image_f32(&path, hdu).unwrap();
                for &(x0, y0, rw, rh) in &windows {
                    let region = read_region::<f32>(&path, hdu, x0, y0, rw, rh).unwrap();
                    let expected = make(rw, rh, |x, y| full.get(x0 + x, y0 + y));
                    assert_same(
                        &region,
                        &expected,
                        &format!("{kind}/{name} window {x0},{y0} {rw}x{rh}"),
                    );
                }
            }
        }
    }

    #[test]
    fn f64_regions_give_back_the_stored_integers() {
        let dir = tmp();
        let (w, h) = (150, 97);
        // Beyond 2^24, where f32 would round: only f64 keeps these exact.
        let img = make(w, h, |x, y| {
            (1 << 25) + (x as i32) * 1_000_003 - (y as i32) * 77
        });
        for (name, c) in [
            ("plain", Compression::None),
            ("64", Compression::Rice { tile: (64, 64) }),
        ] {
            let path = dir.path().join(format!("{name}.fits"));
            let hdu = write_image(&path, PixelData::I32(&img), &[], &c).unwrap();
            let (x0, y0, rw, rh) = (60, 30, 70, 50);
            let region = read_region::<f64>(&path, hdu, x0, y0, rw, rh).unwrap();
            assert_eq!((region.width, region.height), (rw, rh), "{name}");
            let expected = make(rw, rh, |x, y| f64::from(img.get(x0 + x, y0 + y)));
            assert_eq!(region.data, expected.data, "{name}");
            assert!(
                read_region::<f64>(&path, hdu, w, 0, 1, 1).is_err(),
                "{name}"
            );
        }
    }

    #[test]
    fn region_outside_the_image_is_refused_and_empty_region_is_empty() {
        let dir = tmp();
        let path = dir.path().join("img.fits");
        write_image(
            &path,
            PixelData::U8(&u8_image(10, 8)),
            &[],
            &Compression::None,
        )
        .unwrap();
        for (x0, y0, w, h) in [
            (0, 0, 11, 1),
            (9, 0, 2, 1),
            (0, 8, 1, 1),
            (0, 7, 1, 2),
            (usize::MAX, 0, 2, 1),
        ] {
            let err = read_region::<f32>(&path, 0, x0, y0, w, h).unwrap_err();
            assert!(
                matches!(err, FitsError::Invalid { .. }),
                "{x0},{y0} {w}x{h}: {err}"
            );
        }
        let empty = read_region::<f32>(&path, 0, 3, 3, 0, 5).unwrap();
        assert_eq!((empty.width, empty.height, empty.data.len()), (0, 5, 0));
    }

    /// Overwrites the compressed bytes of the last tile; a read that does not
    /// touch that tile must still succeed and be exact, which proves cfitsio
    /// only decompresses the tiles a region needs.
    fn corrupt_last_tile(path: &Path) {
        let hdus = raw_hdus(path);
        let (cards, data_start) = &hdus[1];
        let get =
            |k: &str| usize::try_from(raw_value(cards, k).unwrap().as_i64().unwrap()).unwrap();
        let (row_len, rows) = (get("NAXIS1"), get("NAXIS2"));
        assert_eq!(raw_value(cards, "TTYPE1"), Some("COMPRESSED_DATA".into()));
        let mut bytes = fs::read(path).unwrap();
        let desc = data_start + (rows - 1) * row_len;
        let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let (len, offset) = (be(desc), be(desc + 4));
        let heap = data_start + row_len * rows;
        assert!(len > 0);
        for (i, b) in bytes[heap + offset..heap + offset + len]
            .iter_mut()
            .enumerate()
        {
            *b = (i as u8).wrapping_mul(37) ^ 0xA5;
        }
        fs::write(path, bytes).unwrap();
    }

    #[test]
    fn compressed_regions_decompress_only_the_tiles_they_need() {
        let dir = tmp();
        let (w, h) = (150, 97);
        let img = make(w, h, |x, y| ((x * 3 + y * 5) % 1000) as i32);
        let expected = img.map(|v| v as f32);
        for (name, tile, safe) in [
            ("rows", (w, 1), (0, 0, w, h - 1)),
            ("64", (64, 64), (0, 0, 128, 64)),
        ] {
            let path = dir.path().join(format!("{name}.fits"));
            write_image(
                &path,
                PixelData::I32(&img),
                &[],
                &Compression::Rice { tile },
            )
            .unwrap();
            corrupt_last_tile(&path);
            let (x0, y0, rw, rh) = safe;
            let region = read_region::<f32>(&path, 1, x0, y0, rw, rh).unwrap();
            assert_same(
                &region,
                &make(rw, rh, |x, y| expected.get(x0 + x, y0 + y)),
                name,
            );
            // Reading everything does touch the damaged tile.
            match read_image_f32(&path, 1) {
                Err(_) => {}
                Ok(full) => assert_ne!(
                    full.data, expected.data,
                    "{name}: corruption must be visible"
                ),
            }
        }
    }

    #[test]
    fn invalid_images_and_f32_rice_are_refused() {
        let dir = tmp();
        let path = dir.path().join("f.fits");
        let err = write_image(
            &path,
            PixelData::F32(&f32_image(8, 8)),
            &[],
            &Compression::Rice { tile: (8, 1) },
        )
        .unwrap_err();
        assert!(matches!(err, FitsError::Invalid { .. }), "{err}");
        assert!(
            err.to_string().starts_with(&path.display().to_string()),
            "{err}"
        );
        assert!(!path.exists(), "nothing written for refused F32 + RICE");
        let bad_len = Raster {
            width: 3,
            height: 3,
            data: vec![0u8; 8],
        };
        assert!(matches!(
            write_image(&path, PixelData::U8(&bad_len), &[], &Compression::None),
            Err(FitsError::Invalid { .. })
        ));
        let empty = Raster {
            width: 0,
            height: 3,
            data: Vec::<u8>::new(),
        };
        assert!(matches!(
            write_image(&path, PixelData::U8(&empty), &[], &Compression::None),
            Err(FitsError::Invalid { .. })
        ));
        let zero_tile = Compression::Rice { tile: (0, 1) };
        assert!(matches!(
            write_image(&path, PixelData::U8(&u8_image(2, 2)), &[], &zero_tile),
            Err(FitsError::Invalid { .. })
        ));
        assert!(!path.exists());
    }

    #[test]
    fn blank_becomes_nan_for_integer_images() {
        let dir = tmp();
        let mut img = i16_image(16, 4);
        img.set(3, 2, -999);
        img.set(0, 0, -999);
        let cards = [Card::new("BLANK", -999, "undefined pixel value")];
        for (name, c) in [
            ("plain", Compression::None),
            ("rice", Compression::Rice { tile: (16, 1) }),
        ] {
            let path = dir.path().join(format!("{name}.fits"));
            let hdu = write_image(&path, PixelData::I16(&img), &cards, &c).unwrap();
            let back = read_image_f32(&path, hdu).unwrap();
            assert!(back.get(3, 2).is_nan() && back.get(0, 0).is_nan(), "{name}");
            assert_eq!(back.get(1, 0), f32::from(img.get(1, 0)), "{name}");
            assert_eq!(back.data.iter().filter(|v| v.is_nan()).count(), 2, "{name}");
            assert!(
                read_region::<f32>(&path, hdu, 2, 2, 2, 1)
                    .unwrap()
                    .get(1, 0)
                    .is_nan(),
                "{name}"
            );
        }
    }

    /// A hand-made FITS file (cards written byte by byte, as another program
    /// might have written them).
    fn handmade(path: &Path, cards: &[&str], data: &[u8]) {
        let mut bytes: Vec<u8> = cards
            .iter()
            .flat_map(|c| format!("{c:<80}").into_bytes())
            .collect();
        bytes.extend(format!("{:<80}", "END").bytes());
        bytes.resize(bytes.len().div_ceil(2880) * 2880, b' ');
        bytes.extend_from_slice(data);
        bytes.resize(bytes.len().div_ceil(2880) * 2880, 0);
        fs::write(path, bytes).unwrap();
    }

    #[test]
    fn foreign_files_scaling_d_exponents_and_bad_bitpix() {
        let dir = tmp();
        let path = dir.path().join("scaled.fits");
        // BITPIX 16 with BSCALE 0.5 and BZERO 100, written with D exponents.
        let raw: [i16; 4] = [0, 1, -2, 1000];
        let data: Vec<u8> = raw.iter().flat_map(|v| v.to_be_bytes()).collect();
        handmade(
            &path,
            &[
                "SIMPLE  =                    T",
                "BITPIX  =                   16",
                "NAXIS   =                    2",
                "NAXIS1  =                    2",
                "NAXIS2  =                    2",
                "BSCALE  =              5.0D-01 / D exponent",
                "BZERO   =              1.0D+02",
                "GAIN    =              1.5d0",
            ],
            &data,
        );
        let img = read_image_f32(&path, 0).unwrap();
        assert_eq!(img.data, vec![100.0, 100.5, 99.0, 600.0]);
        assert_eq!(
            header_value(&path, 0, "BSCALE"),
            Some(HeaderValue::Float(0.5))
        );
        assert_eq!(
            header_value(&path, 0, "GAIN"),
            Some(HeaderValue::Float(1.5))
        );
        assert_eq!(
            read_region::<f32>(&path, 0, 1, 1, 1, 1).unwrap().data,
            vec![600.0]
        );

        let cube = dir.path().join("cube.fits");
        handmade(
            &cube,
            &[
                "SIMPLE  =                    T",
                "BITPIX  =                    8",
                "NAXIS   =                    3",
                "NAXIS1  =                    2",
                "NAXIS2  =                    2",
                "NAXIS3  =                    2",
            ],
            &[0; 8],
        );
        assert!(matches!(
            read_image_f32(&cube, 0),
            Err(FitsError::NotAnImage { .. })
        ));
        assert!(matches!(
            first_image_hdu(&cube),
            Err(FitsError::NoImage { .. })
        ));

        let bad = dir.path().join("bitpix.fits");
        handmade(
            &bad,
            &[
                "SIMPLE  =                    T",
                "BITPIX  =                   12",
                "NAXIS   =                    2",
                "NAXIS1  =                    2",
                "NAXIS2  =                    2",
            ],
            &[0; 6],
        );
        let err = read_image_f32(&bad, 0).unwrap_err();
        assert!(matches!(err, FitsError::UnsupportedBitpix { .. }), "{err}");
        assert!(
            err.to_string().contains(&bad.display().to_string()),
            "{err}"
        );
    }
}
