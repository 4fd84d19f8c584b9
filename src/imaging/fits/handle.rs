//! The cfitsio handle: opening, creating and closing files, moving between
//! HDUs, and turning cfitsio status codes into [`FitsError`]s.
//!
//! Only this file creates or frees a `fitsfile*`, so the lifetime rules of the
//! raw pointer (closed exactly once, never used after close) are checked in
//! one place. The image, header and table methods of [`Handle`] are `impl`
//! blocks in the modules that use them. The new-file lifecycle lives here too,
//! because both image and table writers must remove what a failed write left
//! behind.

use std::ffi::{CStr, CString, c_char, c_int};
use std::path::{Path, PathBuf};
use std::ptr::{self, NonNull};

use fitsio::sys;

use super::{FitsError, invalid};

// cfitsio constants. The bindings export them as `u32` (and some negative ones
// not at all), so the handful used here are restated as `c_int` with the
// values from `fitsio.h` of cfitsio 3.49.

/// `IMAGE_HDU`: also returned for tile-compressed images.
pub(super) const IMAGE_HDU: c_int = 0;
pub(super) const ASCII_TBL: c_int = 1;
pub(super) const BINARY_TBL: c_int = 2;
/// Data type codes for pixel / column transfers.
const TBYTE: c_int = 11;
pub(super) const TSTRING: c_int = 16;
const TUSHORT: c_int = 20;
const TSHORT: c_int = 21;
const TINT: c_int = 31;
const TFLOAT: c_int = 42;
const TLONGLONG: c_int = 81;
const TDOUBLE: c_int = 82;
/// BITPIX codes for `fits_create_img`; `USHORT_IMG` makes cfitsio write
/// BITPIX = 16 with BZERO = 32768 and BSCALE = 1.
pub(super) const BYTE_IMG: c_int = 8;
pub(super) const SHORT_IMG: c_int = 16;
pub(super) const USHORT_IMG: c_int = 20;
pub(super) const LONG_IMG: c_int = 32;
pub(super) const FLOAT_IMG: c_int = -32;
/// Compression algorithm code for `fits_set_compression_type`.
pub(super) const RICE_1: c_int = 11;
/// `iomode` values for `fits_open_diskfile`.
const READONLY: c_int = 0;
const READWRITE: c_int = 1;
/// Status codes that get their own error variant.
const FILE_NOT_OPENED: c_int = 104;
const END_OF_FILE: c_int = 107;
const BAD_BITPIX: c_int = 211;
pub(super) const KEY_NO_EXIST: c_int = 202;
/// Size of the buffer `fits_get_errstatus` writes into (`FLEN_STATUS`).
const FLEN_STATUS: usize = 31;
/// cfitsio's limit on file names (`FLEN_FILENAME` - 1).
const MAX_PATH_LEN: usize = 1024;

/// Rust types that can be handed to cfitsio as pixels or table cells; the
/// code tells cfitsio the memory layout of the buffer, so each impl must name
/// the matching C type. Tying the code to the type (rather than passing both)
/// is what makes the buffer arguments of the unsafe transfers sound by
/// construction.
///
/// `pub` only so that the public [`ScaledPixel`](super::ScaledPixel) can name
/// it as a supertrait; this module is private, so nothing outside `fits` can
/// implement it.
pub trait CfitsioType: Copy {
    /// The cfitsio data type code (`TBYTE`, `TSHORT`, ...) of `Self`.
    const TYPE_CODE: c_int;
}

/// Implements [`CfitsioType`] from a table of Rust type and cfitsio code, so
/// the whole mapping can be checked against `fitsio.h` at a glance.
macro_rules! cfitsio_types {
    ($($ty:ty => $code:ident),* $(,)?) => {
        $(impl CfitsioType for $ty {
            const TYPE_CODE: c_int = $code;
        })*
    };
}

// `c_int` is i32 and `LONGLONG` is a 64-bit `long long` on every platform Rust
// and cfitsio support together.
cfitsio_types! {
    u8 => TBYTE,
    i16 => TSHORT,
    u16 => TUSHORT,
    i32 => TINT,
    i64 => TLONGLONG,
    f32 => TFLOAT,
    f64 => TDOUBLE,
}

/// The short text cfitsio has for a status code.
#[allow(unsafe_code)]
fn status_text(status: c_int) -> String {
    let mut buf = [0 as c_char; FLEN_STATUS];
    // SAFETY: `ffgerr` writes at most FLEN_STATUS bytes including the NUL
    // terminator into the buffer, which has exactly that size.
    unsafe { sys::ffgerr(status, buf.as_mut_ptr()) };
    // SAFETY: the buffer was zero-initialised and ffgerr NUL-terminates, so a
    // NUL lies within it.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

fn status_error(path: &Path, op: &str, status: c_int) -> FitsError {
    if status == BAD_BITPIX {
        return FitsError::UnsupportedBitpix {
            path: path.to_path_buf(),
            detail: format!("{op}: {}", status_text(status)),
        };
    }
    FitsError::Cfitsio {
        path: path.to_path_buf(),
        op: op.to_owned(),
        status,
        message: status_text(status),
    }
}

fn path_cstring(path: &Path) -> Result<CString, FitsError> {
    let s = path
        .to_str()
        .ok_or_else(|| invalid(path, "path is not valid UTF-8"))?;
    // cfitsio skips leading blanks of file names, so such a path would name a
    // different file.
    if s.starts_with(' ') || s.is_empty() {
        return Err(invalid(path, "path is empty or starts with a blank"));
    }
    if s.len() > MAX_PATH_LEN {
        return Err(invalid(
            path,
            "path is longer than cfitsio's 1024-byte limit",
        ));
    }
    CString::new(s).map_err(|_| invalid(path, "path contains a NUL byte"))
}

/// An open cfitsio file. Owns the `fitsfile*`; closed by [`Handle::close`]
/// (checked) or, on error paths, by `Drop` (unchecked). Not `Send`, because of
/// the raw pointer, which is exactly right for cfitsio handles.
pub(super) struct Handle {
    /// `None` only after `close` has taken it.
    ptr: Option<NonNull<sys::fitsfile>>,
    pub(super) path: PathBuf,
}

impl Handle {
    pub(super) fn err(&self, op: &str, status: c_int) -> FitsError {
        status_error(&self.path, op, status)
    }

    pub(super) fn check(&self, op: &str, status: c_int) -> Result<(), FitsError> {
        if status == 0 {
            Ok(())
        } else {
            Err(self.err(op, status))
        }
    }

    pub(super) fn raw(&self) -> *mut sys::fitsfile {
        // `close` consumes the handle, so every other method sees `Some`.
        self.ptr.expect("cfitsio handle used after close").as_ptr()
    }

    /// A size or coordinate in one of cfitsio's C integer types (`long`,
    /// `LONGLONG`), which are signed and, for `long`, narrower than `usize`
    /// on some platforms.
    pub(super) fn c_size<T: TryFrom<usize>>(&self, v: usize) -> Result<T, FitsError> {
        T::try_from(v).map_err(|_| invalid(&self.path, format!("{v} is too large for cfitsio")))
    }

    /// [`Handle::c_size`] for the two axes of an image.
    pub(super) fn c_dims<T: TryFrom<usize>>(&self, v: [usize; 2]) -> Result<[T; 2], FitsError> {
        Ok([self.c_size(v[0])?, self.c_size(v[1])?])
    }

    /// Takes ownership of the pointer cfitsio returned from an open or
    /// create call that reported success.
    fn adopt(path: &Path, fptr: *mut sys::fitsfile) -> Result<Self, FitsError> {
        let ptr = NonNull::new(fptr).ok_or_else(|| invalid(path, "cfitsio returned no handle"))?;
        Ok(Self {
            ptr: Some(ptr),
            path: path.to_path_buf(),
        })
    }

    /// Opens an existing file without extended-filename parsing.
    #[allow(unsafe_code)]
    pub(super) fn open(path: &Path, writable: bool) -> Result<Self, FitsError> {
        let c_path = path_cstring(path)?;
        let mut fptr: *mut sys::fitsfile = ptr::null_mut();
        let mut status: c_int = 0;
        let mode = if writable { READWRITE } else { READONLY };
        // SAFETY: `fptr` and `status` are valid out-pointers and `c_path` is a
        // NUL-terminated string that outlives the call.
        unsafe { sys::ffdkopn(&mut fptr, c_path.as_ptr(), mode, &mut status) };
        if status != 0 {
            if status == FILE_NOT_OPENED && std::fs::symlink_metadata(path).is_err() {
                return Err(FitsError::Io {
                    path: path.to_path_buf(),
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                });
            }
            return Err(status_error(path, "open", status));
        }
        Self::adopt(path, fptr)
    }

    /// Opens `path` read-only and moves to zero-based HDU `hdu`; returns the
    /// handle and the HDU's type (as [`Handle::move_to`]).
    pub(super) fn open_hdu(path: &Path, hdu: usize) -> Result<(Self, c_int), FitsError> {
        let handle = Self::open(path, false)?;
        let hdutype = handle.move_to(hdu)?;
        Ok((handle, hdutype))
    }

    /// Creates a new, empty file; cfitsio itself refuses to overwrite.
    #[allow(unsafe_code)]
    pub(super) fn create(path: &Path) -> Result<Self, FitsError> {
        let c_path = path_cstring(path)?;
        let mut fptr: *mut sys::fitsfile = ptr::null_mut();
        let mut status: c_int = 0;
        // SAFETY: as in `open`.
        unsafe { sys::ffdkinit(&mut fptr, c_path.as_ptr(), &mut status) };
        if status != 0 {
            return Err(status_error(path, "create", status));
        }
        Self::adopt(path, fptr)
    }

    /// Closes the file, flushing buffers, and reports any failure.
    #[allow(unsafe_code)]
    pub(super) fn close(mut self) -> Result<(), FitsError> {
        let Some(fptr) = self.ptr.take() else {
            return Ok(());
        };
        let mut status: c_int = 0;
        // SAFETY: the pointer came from ffdkopn/ffdkinit and was taken out of
        // the handle, so Drop will not close it a second time.
        unsafe { sys::ffclos(fptr.as_ptr(), &mut status) };
        self.check("close", status)
    }

    /// Moves to zero-based HDU `hdu` and returns its type (`IMAGE_HDU` also
    /// for compressed images).
    #[allow(unsafe_code)]
    pub(super) fn move_to(&self, hdu: usize) -> Result<c_int, FitsError> {
        let number = c_int::try_from(hdu)
            .ok()
            .and_then(|h| h.checked_add(1))
            .ok_or_else(|| FitsError::NoSuchHdu {
                path: self.path.clone(),
                hdu,
            })?;
        let mut status: c_int = 0;
        let mut hdutype: c_int = 0;
        // SAFETY: valid handle and out-pointers. ffghdt (rather than the type
        // ffmahd reports) reports compressed images as IMAGE_HDU.
        unsafe {
            sys::ffmahd(self.raw(), number, ptr::null_mut(), &mut status);
            sys::ffghdt(self.raw(), &mut hdutype, &mut status);
        }
        match status {
            0 => Ok(hdutype),
            END_OF_FILE => Err(FitsError::NoSuchHdu {
                path: self.path.clone(),
                hdu,
            }),
            s => Err(self.err(&format!("move to HDU {hdu}"), s)),
        }
    }

    /// Number of HDUs in the file.
    #[allow(unsafe_code)]
    pub(super) fn num_hdus(&self) -> Result<usize, FitsError> {
        let mut status: c_int = 0;
        let mut n: c_int = 0;
        // SAFETY: valid handle and out-pointers.
        unsafe { sys::ffthdu(self.raw(), &mut n, &mut status) };
        self.check("count HDUs", status)?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Zero-based index of the current HDU.
    #[allow(unsafe_code)]
    pub(super) fn current_hdu(&self) -> usize {
        let mut n: c_int = 0;
        // SAFETY: valid handle and out-pointer; ffghdn cannot fail.
        unsafe { sys::ffghdn(self.raw(), &mut n) };
        usize::try_from(n - 1).unwrap_or(0)
    }
}

impl Drop for Handle {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        if let Some(fptr) = self.ptr.take() {
            let mut status: c_int = 0;
            // SAFETY: the pointer came from ffdkopn/ffdkinit and is taken out
            // of the handle, so it is closed exactly once. Errors cannot be
            // reported from Drop; paths that need them call `close`.
            unsafe { sys::ffclos(fptr.as_ptr(), &mut status) };
        }
    }
}

/// Closes a handle of a file this call created; on any failure (of `result`
/// or of the close itself) the partial file is removed, so a failed write
/// never leaves a half-written file that a later run would refuse to replace.
pub(super) fn finish_new_file<T>(
    handle: Handle,
    result: Result<T, FitsError>,
) -> Result<T, FitsError> {
    let path = handle.path.clone();
    let result = match result {
        Ok(v) => handle.close().map(|()| v),
        Err(e) => {
            drop(handle);
            Err(e)
        }
    };
    if result.is_err() {
        // Best effort: the original error is the one worth reporting.
        let _ = std::fs::remove_file(&path);
    }
    result
}

pub(super) fn ensure_absent(path: &Path) -> Result<(), FitsError> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Err(FitsError::AlreadyExists {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(FitsError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The number of HDUs in the file.
pub fn hdu_count(path: &Path) -> Result<usize, FitsError> {
    Handle::open(path, false)?.num_hdus()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::fits::test_fixtures::*;
    use crate::imaging::fits::{
        Compression, PixelData, read_header, read_image_f32, read_region, table_rows, write_image,
    };
    use std::fs;

    #[test]
    fn existing_files_are_not_overwritten() {
        let dir = tmp();
        let path = dir.path().join("exists.fits");
        fs::write(&path, b"precious").unwrap();
        let err = write_image(
            &path,
            PixelData::U8(&u8_image(2, 2)),
            &[],
            &Compression::None,
        )
        .unwrap_err();
        assert!(matches!(err, FitsError::AlreadyExists { .. }), "{err}");
        assert!(err.to_string().contains(&path.display().to_string()));
        assert_eq!(fs::read(&path).unwrap(), b"precious");
    }

    #[test]
    fn paths_are_never_extended_filename_syntax() {
        let dir = tmp();
        // In cfitsio's extended syntax these would be a filter, an HDU
        // selector and a clobber request.
        for name in [
            "a[compress R 4,1].fits",
            "b.fits[1]",
            "!c.fits",
            "d (1).fits",
        ] {
            let path = dir.path().join(name);
            write_image(
                &path,
                PixelData::U8(&u8_image(4, 3)),
                &[],
                &Compression::None,
            )
            .unwrap();
            assert!(path.exists(), "{name}");
            assert_eq!(read_image_f32(&path, 0).unwrap().data.len(), 12, "{name}");
        }
    }

    #[test]
    fn errors_name_the_path() {
        let dir = tmp();
        let missing = dir.path().join("missing.fits");
        for err in [
            read_image_f32(&missing, 0).unwrap_err(),
            read_header(&missing, 0).unwrap_err(),
            hdu_count(&missing).unwrap_err(),
            table_rows(&missing, 1).unwrap_err(),
        ] {
            assert!(matches!(err, FitsError::Io { .. }), "{err}");
            assert_eq!(err.path(), missing);
            assert!(
                err.to_string().contains(&missing.display().to_string()),
                "{err}"
            );
        }
        let garbage = dir.path().join("garbage.fits");
        fs::write(&garbage, vec![b'x'; 2880]).unwrap();
        let err = read_image_f32(&garbage, 0).unwrap_err();
        assert!(matches!(err, FitsError::Cfitsio { .. }), "{err}");
        assert!(
            err.to_string().contains(&garbage.display().to_string()),
            "{err}"
        );

        let path = dir.path().join("img.fits");
        write_image(
            &path,
            PixelData::U8(&u8_image(2, 2)),
            &[],
            &Compression::None,
        )
        .unwrap();
        let err = read_image_f32(&path, 3).unwrap_err();
        assert!(matches!(err, FitsError::NoSuchHdu { hdu: 3, .. }), "{err}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert!(matches!(
            read_header(&path, usize::MAX),
            Err(FitsError::NoSuchHdu { .. })
        ));
    }

    #[test]
    fn concurrent_readers_of_one_file() {
        let dir = tmp();
        let path = dir.path().join("shared.fits");
        let img = i32_image(200, 120);
        write_image(
            &path,
            PixelData::I32(&img),
            &[],
            &Compression::Rice { tile: (64, 64) },
        )
        .unwrap();
        let expected = img.map(|v| v as f32);
        std::thread::scope(|s| {
            for t in 0..4 {
                let (path, expected) = (&path, &expected);
                s.spawn(move || {
                    for i in 0..20 {
                        let (x0, y0) = ((t * 13 + i * 7) % 150, (t * 5 + i * 11) % 80);
                        let region = read_region::<f32>(path, 1, x0, y0, 50, 40).unwrap();
                        assert_same(
                            &region,
                            &make(50, 40, |x, y| expected.get(x0 + x, y0 + y)),
                            "thread",
                        );
                    }
                });
            }
        });
    }
}
